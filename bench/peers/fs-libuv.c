/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* fs-libuv.c: random reads with libuv's uv_fs_read, the peer of gyre-bench's
 * "file" scenario (tools/bench/file.c).
 *
 *   fs-libuv --file PATH [--direct] [--depth D] [--bs B] [--seed S]
 *            [--warmup-ms W] (--duration-ms T | --count N)
 *   fs-libuv --version
 *
 * Keeps D uv_fs_read requests in flight on libuv's default thread pool (as
 * an application would: UV_THREADPOOL_SIZE as found, 4 unless set), each at
 * a random B-aligned offset from a seeded splitmix64 generator, into its own
 * B-aligned buffer (posix_memalign, so --direct works). Untimed for W ms, then
 * a window of T ms (or N reads), then the requests in flight are drained and
 * one line is printed on stdout:
 *
 *   ios=N elapsed_ns=N iops=X p50_ns=N p99_ns=N cpu_ns=N
 *
 * ios and latencies count the reads that completed inside the window;
 * latency is uv_fs_read() to its callback; cpu_ns is getrusage(RUSAGE_SELF)
 * over the window, so it includes the pool threads. Percentiles are exact:
 * every latency in the window is kept (up to MAX_SAMPLES) and sorted once at
 * the end. Exit status 0, or 1 with the reason on stderr (a short or failed
 * read is a failure: the file is at least as large as every offset read).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <uv.h>

#include "peer.h"

#define NAME "fs-libuv"
#define MAX_DEPTH 1024
/* 16 M latencies (64 MiB): far above what a 3 s window reaches. */
#define MAX_SAMPLES (16u << 20)

typedef struct slot {
    uv_fs_t req;
    uv_buf_t buf;
    uint64_t t_sub;
} slot;

static struct {
    uv_loop_t *loop;
    uv_file fd;
    uint32_t bs;
    uint64_t blocks; /* offsets are drawn from [0, blocks) * bs */
    uint64_t rng;
    uint64_t warmup_ns, duration_ns, count;
    uint64_t t_window, t_end, ios, cpu_start, cpu_end;
    int measuring, stopping, in_flight, failed;
    uint32_t *lat; /* ns of the reads completed in the window */
    uint64_t n_lat;
} g;

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t cpu_ns(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static void on_read(uv_fs_t *req);

static int submit(slot *s)
{
    int64_t off = (int64_t)((splitmix64(&g.rng) % g.blocks) * g.bs);
    int rc;

    s->t_sub = uv_hrtime();
    rc = uv_fs_read(g.loop, &s->req, g.fd, &s->buf, 1, off, on_read);
    if (rc < 0) {
        fprintf(stderr, "%s: uv_fs_read: %s\n", NAME, uv_strerror(rc));
        g.failed = 1;
        return -1;
    }
    g.in_flight++;
    return 0;
}

static void on_read(uv_fs_t *req)
{
    slot *s = (slot *)req;
    uint64_t now = uv_hrtime();
    ssize_t res = req->result;

    uv_fs_req_cleanup(req);
    g.in_flight--;
    if (res != (ssize_t)g.bs && !g.failed) {
        fprintf(stderr, "%s: read gave %zd of %u bytes%s%s\n", NAME, res, (unsigned)g.bs,
                res < 0 ? ": " : "", res < 0 ? uv_strerror((int)res) : "");
        g.failed = 1;
    }
    if (g.failed || g.stopping)
        return;
    if (!g.measuring && now >= g.t_window) {
        g.measuring = 1;
        g.t_window = now;
        g.t_end = now + g.duration_ns;
        g.cpu_start = cpu_ns();
    } else if (g.measuring) {
        if (g.n_lat < MAX_SAMPLES)
            g.lat[g.n_lat++] =
                (uint32_t)(now - s->t_sub > UINT32_MAX ? UINT32_MAX : now - s->t_sub);
        g.ios++;
        if ((g.count && g.ios >= g.count) || (!g.count && now >= g.t_end)) {
            g.t_end = now;
            g.cpu_end = cpu_ns();
            g.stopping = 1;
            return;
        }
    }
    (void)submit(s);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

static uint32_t quantile(double q)
{
    uint64_t i = (uint64_t)(q * (double)g.n_lat);

    return g.n_lat == 0 ? 0 : g.lat[i < g.n_lat ? i : g.n_lat - 1];
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --file PATH [--direct] [--depth D] [--bs B] [--seed S]\n"
            "       [--warmup-ms W] (--duration-ms T | --count N)\n"
            "       %s --version\n",
            NAME, NAME);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"direct", no_argument, NULL, 'd'},
        {"depth", required_argument, NULL, 'q'},
        {"bs", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 's'},
        {"warmup-ms", required_argument, NULL, 'w'},
        {"duration-ms", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    unsigned long depth = 1;
    int direct = 0, opt, i, rc;
    slot *slots;
    uv_fs_t open_req, close_req;
    struct stat st;
    uint64_t t0;

    g.bs = 4096;
    g.rng = 1;
    g.warmup_ns = 200ull * 1000 * 1000;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            path = optarg;
            break;
        case 'd':
            direct = 1;
            break;
        case 'q':
            depth = strtoul(optarg, NULL, 10);
            break;
        case 'b':
            g.bs = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            g.rng = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            g.warmup_ns = strtoull(optarg, NULL, 10) * 1000 * 1000;
            break;
        case 't':
            g.duration_ns = strtoull(optarg, NULL, 10) * 1000 * 1000;
            break;
        case 'n':
            g.count = strtoull(optarg, NULL, 10);
            break;
        case 'v':
            printf("libuv %s\n", uv_version_string());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path || optind < argc || depth == 0 || depth > MAX_DEPTH || g.bs == 0 ||
        (g.duration_ns == 0) == (g.count == 0)) {
        usage(stderr);
        return 2;
    }

    g.loop = uv_default_loop();
    rc = uv_fs_open(g.loop, &open_req, path, O_RDONLY | (direct ? UV_FS_O_DIRECT : 0), 0, NULL);
    uv_fs_req_cleanup(&open_req);
    if (rc < 0) {
        fprintf(stderr, "%s: open %s: %s\n", NAME, path, uv_strerror(rc));
        return 1;
    }
    g.fd = rc;
    if (fstat(g.fd, &st) != 0)
        return peer_fail(NAME, "fstat", errno);
    g.blocks = (uint64_t)st.st_size / g.bs;
    if (g.blocks == 0) {
        fprintf(stderr, "%s: %s is smaller than one block\n", NAME, path);
        return 1;
    }
    slots = calloc(depth, sizeof *slots);
    g.lat = malloc(MAX_SAMPLES * sizeof *g.lat);
    if (!slots || !g.lat)
        return peer_fail(NAME, "allocating", ENOMEM);
    for (i = 0; i < (int)depth; i++) {
        void *mem;

        rc = posix_memalign(&mem, g.bs < 4096 ? 4096 : g.bs, g.bs);
        if (rc != 0)
            return peer_fail(NAME, "posix_memalign", rc);
        memset(mem, 0, g.bs);
        slots[i].buf = uv_buf_init(mem, g.bs);
    }

    t0 = uv_hrtime();
    g.t_window = t0 + g.warmup_ns;
    for (i = 0; i < (int)depth && !g.failed; i++)
        (void)submit(&slots[i]);
    /* The loop ends when the last request in flight has come back: after
     * the window, or at the first failure. */
    uv_run(g.loop, UV_RUN_DEFAULT);
    if (g.failed || !g.measuring || g.ios == 0) {
        if (!g.failed)
            fprintf(stderr, "%s: no read completed in the window\n", NAME);
        return 1;
    }
    uv_fs_close(g.loop, &close_req, g.fd, NULL);
    uv_fs_req_cleanup(&close_req);

    qsort(g.lat, g.n_lat, sizeof *g.lat, cmp_u32);
    printf("ios=%llu elapsed_ns=%llu iops=%.1f p50_ns=%u p99_ns=%u cpu_ns=%llu\n",
           (unsigned long long)g.ios, (unsigned long long)(g.t_end - g.t_window),
           (double)g.ios * 1e9 / (double)(g.t_end - g.t_window), (unsigned)quantile(0.50),
           (unsigned)quantile(0.99), (unsigned long long)(g.cpu_end - g.cpu_start));
    for (i = 0; i < (int)depth; i++)
        free(slots[i].buf.base);
    free(slots);
    free(g.lat);
    uv_loop_close(g.loop);
    return 0;
}
