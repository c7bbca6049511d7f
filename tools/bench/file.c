/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* file.c: scenario "file", random 4 KiB reads of one file by every gyre file
 * engine, by fio with the matching engines and by libuv's uv_fs_read
 * (bench/peers/fs-libuv.c), in the same run on the same file.
 *
 * The file: 1 GiB (--quick: 256 MiB) of pseudo-random data, written once and
 * fsynced, on the file system of /var/tmp (else /tmp). It is made with
 * O_TMPFILE in a mkdtemp folder that is removed at once, so it has no name
 * and nothing is left behind however gyre-bench ends (a crash, SIGKILL): the
 * one fd gyre-bench holds keeps it, and every reader opens it anew through
 * /proc/<gyre-bench>/fd/<fd>, with O_DIRECT or without as the mode asks.
 *
 * The grid: O_DIRECT, and buffered with a warm cache (the file is read whole
 * before those measurements); queue depth 1 and 32. The subjects:
 *  - gyre: a driver in this process keeps D gyre_op_read()s in flight at
 *    random block-aligned offsets (splitmix64, a seed per round), each into
 *    its own posix_memalign'd 4 KiB buffer; engine uring on the uring
 *    backend, pool, linuxaio and posixaio on epoll. linuxaio carries O_DIRECT
 *    only: its buffered reads go to the pool by design, shown anyway;
 *  - fio: io_uring, libaio, posixaio, psync with 1 and 4 jobs (psync is
 *    synchronous: its depth is its job count, whatever the column says);
 *  - libuv: fs-libuv, D uv_fs_read()s in flight on libuv's default pool.
 * Latency is the whole of one read, submit to completion: gyre_submit() to
 * its callback, uv_fs_read() to its callback, and for fio `lat` (slat +
 * clat, --lat_percentiles=1), since fio's clat starts after the submit call.
 * CPU per I/O is the process's user + system time over the window
 * (getrusage, so every thread, the pools' included) over the reads done;
 * fio reports the same from its own getrusage.
 *
 * Method, as in echo.c: each measurement is an untimed warm-up and then a
 * fixed window; rounds run every subject once, starting one further down the
 * list each round, figures are medians over rounds with min..max, and a ratio
 * to a baseline is taken within each round before its median. The targets
 * of issue 5's acceptance list are two further tables of such ratios, each
 * cell noting whether its target was met.
 *
 * Bounds: a gyre round ends by its guard timer; fio and fs-libuv run in
 * children that die with gyre-bench, are killed past their deadline and are
 * always reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "load.h"

#define MS (1000ull * 1000)
#define FILE_BS 4096u
#define FILE_SIZE (1ull << 30)
#define FILE_SIZE_QUICK (256ull << 20)
#define FILE_ROUNDS 3
#define FILE_CHUNK (1u << 20)
/* A child gets its warm-up and window plus this to start and report. */
#define FILE_CHILD_SLACK_NS (20000 * MS)
/* Writing or reading the whole file: far above what a disk needs. */
#define FILE_PREP_TIMEOUT_NS (120000 * MS)
#define FILE_MAX_DEPTH 32

typedef enum file_kind {
    KIND_GYRE,
    KIND_FIO,
    KIND_LIBUV
} file_kind;

/* The subjects, in table order: a gyre engine (and the backend it runs on),
 * a fio engine (and its job count), or the libuv peer. */
static const struct file_subject_def {
    const char *name;
    file_kind kind;
    const char *engine;  /* gyre's file_engine or fio's ioengine */
    const char *backend; /* gyre: the backend it runs on */
    int jobs;            /* fio */
} subject_defs[] = {
    {"gyre-uring", KIND_GYRE, "uring", "uring", 0},
    {"gyre-pool", KIND_GYRE, "pool", "epoll", 0},
    {"gyre-linuxaio", KIND_GYRE, "linuxaio", "epoll", 0},
    {"gyre-posixaio", KIND_GYRE, "posixaio", "epoll", 0},
    {"fio-io_uring", KIND_FIO, "io_uring", NULL, 1},
    {"fio-libaio", KIND_FIO, "libaio", NULL, 1},
    {"fio-posixaio", KIND_FIO, "posixaio", NULL, 1},
    {"fio-psync", KIND_FIO, "psync", NULL, 1},
    {"fio-psync-4j", KIND_FIO, "psync", NULL, 4},
    {"libuv", KIND_LIBUV, NULL, NULL, 0},
};
#define N_SUBJECTS (sizeof subject_defs / sizeof subject_defs[0])

typedef struct file_config {
    int direct;
    int depth;
    const char *column;       /* in the tables of all four */
    const char *short_column; /* in the IOPS table of its mode */
} file_config;

enum {
    CFG_D1,
    CFG_D32,
    CFG_C1,
    CFG_C32,
    N_CONFIGS
};
static const file_config file_configs[N_CONFIGS] = {
    [CFG_D1] = {1, 1, "direct QD1", "QD1"},
    [CFG_D32] = {1, 32, "direct QD32", "QD32"},
    [CFG_C1] = {0, 1, "cached QD1", "QD1"},
    [CFG_C32] = {0, 32, "cached QD32", "QD32"},
};

typedef enum file_metric {
    M_IOPS,
    M_P50,    /* us */
    M_P99,    /* us */
    M_CPU,    /* ns per I/O */
    M_INLINE, /* gyre: % of reads answered inline from the page cache */
    M_POOL,   /* gyre: % of reads the engine sent to the pool */
    N_METRICS
} file_metric;

static const bench_plot depth_plot = {
    .xlabel = "queue depth (random 4 KiB reads)",
    .ylabel = "IOPS",
    .logx = 1,
};

static const bench_scenario view_cached = {
    .name = "file-cached",
    .summary = "",
    .title = "file, buffered with a warm cache: random 4 KiB reads",
    .unit = "IOPS",
    .higher_is_better = 1,
    .plot = &depth_plot,
};

#define FILE_VIEW(id, nm, ttl, un, higher)                                                         \
    static const bench_scenario id = {                                                             \
        .name = nm, .summary = "", .title = ttl, .unit = un, .higher_is_better = higher}

FILE_VIEW(view_p50, "file-p50", "file: latency p50, submit to completion", "us", 0);
FILE_VIEW(view_p99, "file-p99", "file: latency p99, submit to completion", "us", 0);
FILE_VIEW(view_cpu, "file-cpu", "file: CPU time (user + system, all threads) per read", "ns/IO", 0);
FILE_VIEW(view_inline, "file-inline", "file, gyre: reads answered inline from the page cache",
          "% of reads", 1);
FILE_VIEW(view_pool, "file-pool", "file, gyre: reads the engine sent to the thread pool",
          "% of reads", 0);
FILE_VIEW(view_tgt_more, "file-targets-rate",
          "file: targets, gyre's throughput vs its baseline (issue 5)", "x baseline", 1);
FILE_VIEW(view_tgt_less, "file-targets-cost",
          "file: targets, gyre's CPU per read and latency vs its baseline (issue 5)", "x baseline",
          0);

static const bench_scenario *const file_tables[] = {
    &view_cached, &view_p50,      &view_p99,      &view_cpu, &view_inline,
    &view_pool,   &view_tgt_more, &view_tgt_less, NULL,
};

/* The acceptance list of issue 5: subject / baseline at one config, the
 * ratio of one metric, and the bound it must meet. */
static const struct file_target {
    const char *row, *subject, *baseline;
    int cfg;
    file_metric metric;
    double bound;
    const bench_scenario *view;
    const char *column;
} file_targets[] = {
    {"uring/io_uring", "gyre-uring", "fio-io_uring", CFG_D32, M_IOPS, 0.97, &view_tgt_more,
     "direct QD32 IOPS"},
    {"linuxaio/libaio", "gyre-linuxaio", "fio-libaio", CFG_D32, M_IOPS, 0.97, &view_tgt_more,
     "direct QD32 IOPS"},
    {"uring/libuv", "gyre-uring", "libuv", CFG_C32, M_IOPS, 3.0, &view_tgt_more,
     "cached QD32 IOPS"},
    {"pool/libuv", "gyre-pool", "libuv", CFG_C32, M_IOPS, 3.0, &view_tgt_more, "cached QD32 IOPS"},
    {"uring/psync", "gyre-uring", "fio-psync", CFG_C32, M_IOPS, 0.8, &view_tgt_more,
     "cached QD32 IOPS"},
    {"pool/psync", "gyre-pool", "fio-psync", CFG_C32, M_IOPS, 0.8, &view_tgt_more,
     "cached QD32 IOPS"},
    {"uring/io_uring", "gyre-uring", "fio-io_uring", CFG_D32, M_CPU, 1.1, &view_tgt_less,
     "direct QD32 CPU/IO"},
    {"uring/io_uring", "gyre-uring", "fio-io_uring", CFG_D1, M_P50, 1.05, &view_tgt_less,
     "direct QD1 p50"},
    {"linuxaio/libaio", "gyre-linuxaio", "fio-libaio", CFG_D32, M_CPU, 1.1, &view_tgt_less,
     "direct QD32 CPU/IO"},
    {"linuxaio/libaio", "gyre-linuxaio", "fio-libaio", CFG_D1, M_P50, 1.05, &view_tgt_less,
     "direct QD1 p50"},
};
#define N_TARGETS (sizeof file_targets / sizeof file_targets[0])

typedef struct file_subject {
    const struct file_subject_def *def;
    char backend[16];  /* gyre: the backend it runs on */
    bench_outcome out; /* not OK: out of the run */
} file_subject;

/* Per-round figures of one subject at one config. */
typedef struct file_cell {
    double v[N_METRICS][BENCH_MAX_ROUNDS];
    int rounds;
    bench_outcome out;
} file_cell;

typedef struct file_run {
    bench_ctx *ctx;
    file_subject subjects[N_SUBJECTS];
    file_cell cells[N_CONFIGS][N_SUBJECTS];
    int fd;        /* the data file, read-write, no name */
    char path[64]; /* /proc/<gyre-bench>/fd/<fd> */
    uint64_t size; /* bytes */
    uint64_t warmup_ns, window_ns;
    int rounds;
    bench_outcome direct; /* not OK: no O_DIRECT here */
    char peer[PATH_MAX];  /* fs-libuv */
    char *fio;            /* "fio" when it runs here */
} file_run;

/* What describe() prints, gathered by the run. */
static char file_lines[12][200];
static size_t n_file_lines;

static void describe_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void describe_line(const char *fmt, ...)
{
    va_list ap;

    if (n_file_lines == sizeof file_lines / sizeof file_lines[0])
        return;
    va_start(ap, fmt);
    vsnprintf(file_lines[n_file_lines++], sizeof file_lines[0], fmt, ap);
    va_end(ap);
}

static uint64_t cpu_now_ns(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/* --- children: fio and fs-libuv --------------------------------------- */

typedef struct child_args {
    char *const *argv;
    int out_fd, err_fd;
} child_args;

static int child_exec(void *arg)
{
    const child_args *a = arg;

    if (dup2(a->out_fd, STDOUT_FILENO) < 0 || dup2(a->err_fd, STDERR_FILENO) < 0)
        return 127;
    execvp(a->argv[0], a->argv);
    fprintf(stderr, "exec %s: %s\n", a->argv[0], strerror(errno));
    return 127;
}

/* The whole of a memfd, NUL-terminated, or NULL. */
static char *memfd_text(int fd)
{
    struct stat st;
    char *buf;
    ssize_t n;

    if (fstat(fd, &st) != 0 || st.st_size < 0 || st.st_size > (64 << 20))
        return NULL;
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return NULL;
    n = pread(fd, buf, (size_t)st.st_size, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Runs argv to its end within timeout_ns (killed past it, always reaped).
 * Returns its stdout (malloc'd) when it exited 0, else NULL with *out
 * marked, quoting its stderr. */
static char *child_run(char *const *argv, uint64_t timeout_ns, bench_outcome *out)
{
    int out_fd = memfd_create("gyre-bench-out", MFD_CLOEXEC);
    int err_fd = memfd_create("gyre-bench-err", MFD_CLOEXEC);
    child_args a = {argv, out_fd, err_fd};
    char *text = NULL, *err;
    uint64_t t0 = bench_now_ns();
    int status;
    pid_t pid;

    if (out_fd < 0 || err_fd < 0) {
        bench_fail(out, BENCH_ERROR, "memfd_create: %s", strerror(errno));
        goto done;
    }
    pid = bench_spawn(child_exec, &a);
    if (pid < 0) {
        bench_fail(out, BENCH_ERROR, "fork: %s", strerror(-pid));
        goto done;
    }
    status = server_stop(pid, 0, timeout_ns);
    if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        text = memfd_text(out_fd);
        if (!text)
            bench_fail(out, BENCH_ERROR, "cannot read the output of %s", argv[0]);
        goto done;
    }
    if (bench_now_ns() - t0 >= timeout_ns) {
        bench_fail(out, BENCH_TIMEOUT, "%s ran over %llu s", argv[0],
                   (unsigned long long)(timeout_ns / 1000000000u));
        goto done;
    }
    err = memfd_text(err_fd);
    if (err)
        err[strcspn(err, "\n")] = '\0';
    bench_fail(out, BENCH_ERROR, "%s: status 0x%x: %.60s", argv[0], (unsigned)status,
               err ? err : "");
    free(err);
done:
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    return text;
}

/* The number after "key" (with its quotes) at or after `from` and before
 * `end` (NULL: anywhere); returns a pointer past it, or NULL. */
static const char *json_number(const char *from, const char *end, const char *key, double *v)
{
    char quoted[64];
    const char *p;
    char *num_end;

    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    p = strstr(from, quoted);
    if (!p || (end && p >= end))
        return NULL;
    p += strlen(quoted);
    while (*p == ' ' || *p == ':')
        p++;
    *v = strtod(p, &num_end);
    return num_end == p ? NULL : num_end;
}

/* The fio figures of one run: the one (group-reported) job's reads. */
static int fio_parse(const char *json, double sample[N_METRICS])
{
    double runtime_ms, usr, sys, iops, ios, p50, p99;
    const char *job = strstr(json, "\"jobs\""), *rd, *lat, *open, *close_;

    if (!job || !json_number(job, NULL, "job_runtime", &runtime_ms) ||
        !json_number(job, NULL, "usr_cpu", &usr) || !json_number(job, NULL, "sys_cpu", &sys))
        return -1;
    rd = strstr(job, "\"read\"");
    if (!rd || !json_number(rd, NULL, "iops", &iops) || !json_number(rd, NULL, "total_ios", &ios))
        return -1;
    /* "lat_ns" (with its quotes; "clat_ns" does not match) holds the
     * percentiles only under --lat_percentiles=1, flat before its close. */
    lat = strstr(rd, "\"lat_ns\"");
    open = lat ? strchr(lat, '{') : NULL;
    close_ = open ? strchr(open + 1, '}') : NULL;
    if (!close_ || !json_number(open, close_, "50.000000", &p50) ||
        !json_number(open, close_, "99.000000", &p99) || ios <= 0)
        return -1;
    sample[M_IOPS] = iops;
    sample[M_P50] = p50 / 1000.0;
    sample[M_P99] = p99 / 1000.0;
    /* usr_cpu and sys_cpu are percentages of job_runtime (summed over the
     * jobs when group-reported), both without the ramp. */
    sample[M_CPU] = (usr + sys) / 100.0 * runtime_ms * 1e6 / ios;
    return 0;
}

static void fio_measure(file_run *run, const file_subject *s, const file_config *cfg, int round,
                        double sample[N_METRICS], bench_outcome *out)
{
    char filename[96], size[32], engine[32], depth[32], jobs[32], direct[16], runtime[32], ramp[32],
        seed[32];
    char *argv[] = {
        run->fio,
        "--name=gyre-bench",
        filename,
        size,
        "--rw=randread",
        "--bs=4096",
        engine,
        depth,
        jobs,
        direct,
        "--thread",
        "--group_reporting",
        "--readonly",
        "--invalidate=0",
        "--time_based",
        runtime,
        ramp,
        "--norandommap",
        seed,
        "--lat_percentiles=1",
        "--output-format=json",
        NULL,
    };
    int sync = strcmp(s->def->engine, "psync") == 0;
    char *json;

    snprintf(filename, sizeof filename, "--filename=%s", run->path);
    snprintf(size, sizeof size, "--size=%llu", (unsigned long long)run->size);
    snprintf(engine, sizeof engine, "--ioengine=%s", s->def->engine);
    snprintf(depth, sizeof depth, "--iodepth=%d", sync ? 1 : cfg->depth);
    snprintf(jobs, sizeof jobs, "--numjobs=%d", s->def->jobs);
    snprintf(direct, sizeof direct, "--direct=%d", cfg->direct);
    snprintf(runtime, sizeof runtime, "--runtime=%llums",
             (unsigned long long)(run->window_ns / MS));
    snprintf(ramp, sizeof ramp, "--ramp_time=%llums", (unsigned long long)(run->warmup_ns / MS));
    snprintf(seed, sizeof seed, "--randseed=%d", 1000 + round);
    json = child_run(argv, run->warmup_ns + run->window_ns + FILE_CHILD_SLACK_NS, out);
    if (json && fio_parse(json, sample) != 0)
        bench_fail(out, BENCH_ERROR, "cannot parse fio's JSON");
    free(json);
}

static void libuv_measure(file_run *run, const file_config *cfg, int round,
                          double sample[N_METRICS], bench_outcome *out)
{
    char depth[16], warmup[32], window[32], seed[32];
    char *argv[16];
    unsigned long long ios, elapsed, p50, p99, cpu;
    double iops;
    char *line;
    int n = 0;

    snprintf(depth, sizeof depth, "%d", cfg->depth);
    snprintf(warmup, sizeof warmup, "%llu", (unsigned long long)(run->warmup_ns / MS));
    snprintf(window, sizeof window, "%llu", (unsigned long long)(run->window_ns / MS));
    snprintf(seed, sizeof seed, "%d", 1000 + round);
    argv[n++] = run->peer;
    argv[n++] = "--file";
    argv[n++] = run->path;
    argv[n++] = "--depth";
    argv[n++] = depth;
    argv[n++] = "--seed";
    argv[n++] = seed;
    argv[n++] = "--warmup-ms";
    argv[n++] = warmup;
    argv[n++] = "--duration-ms";
    argv[n++] = window;
    if (cfg->direct)
        argv[n++] = "--direct";
    argv[n] = NULL;
    line = child_run(argv, run->warmup_ns + run->window_ns + FILE_CHILD_SLACK_NS, out);
    if (!line)
        return;
    if (sscanf(line, "ios=%llu elapsed_ns=%llu iops=%lf p50_ns=%llu p99_ns=%llu cpu_ns=%llu", &ios,
               &elapsed, &iops, &p50, &p99, &cpu) != 6 ||
        ios == 0) {
        bench_fail(out, BENCH_ERROR, "fs-libuv said: %.60s", line);
    } else {
        sample[M_IOPS] = iops;
        sample[M_P50] = (double)p50 / 1000.0;
        sample[M_P99] = (double)p99 / 1000.0;
        sample[M_CPU] = (double)cpu / (double)ios;
    }
    free(line);
}

/* --- the gyre driver ---------------------------------------------------- */

typedef struct drv drv;

typedef struct drv_slot {
    gyre_op op;
    drv *d;
    void *buf;
    uint64_t t_sub;
} drv_slot;

struct drv {
    gyre_loop *loop;
    int fd;
    uint64_t blocks, rng;
    uint64_t window_ns, t_window, t_end;
    uint64_t cpu_start, cpu_end, ios;
    int measuring, stopping;
    bench_outcome out;
    uint64_t hist[BENCH_HIST_BUCKETS];
    drv_slot slots[FILE_MAX_DEPTH];
};

static void drv_done(gyre_op *op);

static void drv_submit(drv *d, drv_slot *s, uint64_t now)
{
    int rc;

    gyre_op_read(&s->op, d->fd, s->buf, FILE_BS, (bench_rand(&d->rng) % d->blocks) * FILE_BS);
    s->t_sub = now;
    rc = gyre_submit(d->loop, &s->op, drv_done);
    if (rc < 0)
        bench_fail(&d->out, BENCH_ERROR, "gyre_submit: %s", gyre_strerror(rc));
}

static void drv_done(gyre_op *op)
{
    drv_slot *s = op->data;
    drv *d = s->d;
    uint64_t now = bench_now_ns();

    if (op->result != FILE_BS)
        bench_fail(&d->out, BENCH_ERROR, "read gave %lld: %s", (long long)op->result,
                   op->result < 0 ? gyre_strerror((int)op->result) : "short");
    /* Once stopping or failed, the reads still in flight only come back;
     * the loop ends with the last of them. */
    if (d->stopping || d->out.status != BENCH_OK)
        return;
    if (!d->measuring) {
        if (now >= d->t_window) {
            d->measuring = 1;
            d->t_window = now;
            d->t_end = now + d->window_ns;
            d->cpu_start = cpu_now_ns();
        }
    } else {
        d->hist[bench_hist_bucket(now - s->t_sub)]++;
        d->ios++;
        if (now >= d->t_end) {
            d->cpu_end = cpu_now_ns();
            d->t_end = now;
            d->stopping = 1;
            return;
        }
    }
    drv_submit(d, s, now);
}

/* One measurement of a gyre engine. A round that times out leaves its loop
 * and buffers allocated: reads may still be in the kernel or a worker. */
static void gyre_measure(file_run *run, const file_subject *s, const file_config *cfg, int round,
                         double sample[N_METRICS], bench_outcome *out)
{
    gyre_loop_opts opts = {.backend = s->backend, .file_engine = s->def->engine};
    drv *d = calloc(1, sizeof *d);
    bench_guard guard;
    gyre_stats st;
    int i, rc, leak = 0;

    if (!d) {
        bench_fail(out, BENCH_ERROR, "out of memory");
        return;
    }
    d->fd = -1;
    d->blocks = run->size / FILE_BS;
    d->rng = 1000 + (uint64_t)round;
    d->window_ns = run->window_ns;
    rc = gyre_loop_new(&d->loop, &opts);
    if (rc < 0) {
        bench_fail(out, BENCH_ERROR, "gyre_loop_new: %s", gyre_strerror(rc));
        free(d);
        return;
    }
    d->fd = open(run->path, O_RDONLY | O_CLOEXEC | (cfg->direct ? O_DIRECT : 0));
    if (d->fd < 0)
        bench_fail(&d->out, BENCH_ERROR, "open: %s", strerror(errno));
    for (i = 0; i < cfg->depth && d->out.status == BENCH_OK; i++) {
        d->slots[i].d = d;
        d->slots[i].op.data = &d->slots[i];
        if ((rc = posix_memalign(&d->slots[i].buf, FILE_BS, FILE_BS)) != 0)
            bench_fail(&d->out, BENCH_ERROR, "posix_memalign: %s", strerror(rc));
        else
            memset(d->slots[i].buf, 0, FILE_BS);
    }
    bench_guard_init(&guard, d->loop, &d->out);
    if (d->out.status == BENCH_OK && (rc = bench_guard_arm(&guard)) < 0)
        bench_fail(&d->out, BENCH_ERROR, "guard: %s", gyre_strerror(rc));
    if (d->out.status == BENCH_OK) {
        d->t_window = bench_now_ns() + run->warmup_ns;
        for (i = 0; i < cfg->depth && d->out.status == BENCH_OK; i++)
            drv_submit(d, &d->slots[i], bench_now_ns());
        rc = gyre_loop_run(d->loop, GYRE_RUN_DEFAULT);
        if (rc < 0)
            bench_fail(&d->out, BENCH_ERROR, "gyre_loop_run: %s", gyre_strerror(rc));
        /* 1: the guard stopped it with reads in flight. */
        leak = rc == 1;
        bench_guard_disarm(&guard);
    }
    if (d->out.status == BENCH_OK && d->ios == 0)
        bench_fail(&d->out, BENCH_ERROR, "no read completed in the window");
    if (d->out.status == BENCH_OK) {
        sample[M_IOPS] = (double)d->ios * 1e9 / (double)(d->t_end - d->t_window);
        sample[M_P50] = bench_hist_quantile(d->hist, 0.50) / 1000.0;
        sample[M_P99] = bench_hist_quantile(d->hist, 0.99) / 1000.0;
        sample[M_CPU] = (double)(d->cpu_end - d->cpu_start) / (double)d->ios;
        if (gyre_loop_stats(d->loop, &st) == 0 && st.ops_completed > 0) {
            sample[M_INLINE] = 100.0 * (double)st.file_inline / (double)st.ops_completed;
            sample[M_POOL] = 100.0 * (double)st.file_pool / (double)st.ops_completed;
        }
    }
    *out = d->out;
    if (leak)
        return;
    if (d->fd >= 0)
        close(d->fd);
    for (i = 0; i < cfg->depth; i++)
        free(d->slots[i].buf);
    (void)gyre_loop_free(d->loop);
    free(d);
}

/* --- the file ------------------------------------------------------------- */

static const char *fs_name(long type)
{
    switch (type) {
    case 0xEF53:
        return "ext4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x01021994:
        return "tmpfs";
    case 0x794c7630:
        return "overlay";
    case 0x2fc12fc1:
        return "zfs";
    default:
        return "another file system";
    }
}

/* Makes the data file in a mkdtemp folder of the first of /var/tmp, /tmp
 * that takes one, and removes the folder at once (see the top). Returns 0,
 * or -1 with *out marked. */
static int file_make(file_run *run, bench_outcome *out)
{
    static const char *const roots[] = {"/var/tmp", "/tmp"};
    char dir[64] = "", named[96];
    unsigned char *chunk = NULL;
    uint64_t rng = 42, done, t0, *w;
    struct statfs sfs;
    uint32_t mem, off;
    size_t i;
    int dfd;

    run->fd = -1;
    for (i = 0; i < sizeof roots / sizeof roots[0] && run->fd < 0; i++) {
        snprintf(dir, sizeof dir, "%s/gyre-bench-file.XXXXXX", roots[i]);
        if (!mkdtemp(dir))
            continue;
        run->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (run->fd < 0) {
            /* No O_TMPFILE there: a name, unlinked at once. */
            snprintf(named, sizeof named, "%s/data", dir);
            run->fd = open(named, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
            if (run->fd >= 0)
                unlink(named);
        }
        rmdir(dir);
    }
    if (run->fd < 0) {
        bench_fail(out, BENCH_ERROR, "no temporary file under /var/tmp or /tmp: %s",
                   strerror(errno));
        return -1;
    }
    *strrchr(dir, '/') = '\0';
    snprintf(run->path, sizeof run->path, "/proc/%d/fd/%d", (int)getpid(), run->fd);
    chunk = malloc(FILE_CHUNK);
    if (!chunk) {
        bench_fail(out, BENCH_ERROR, "out of memory");
        return -1;
    }
    t0 = bench_now_ns();
    for (done = 0; done < run->size; done += FILE_CHUNK) {
        bench_progress("[file] writing the %llu MiB file: %llu%%",
                       (unsigned long long)(run->size >> 20),
                       (unsigned long long)(100 * done / run->size));
        for (w = (uint64_t *)(void *)chunk; (unsigned char *)w < chunk + FILE_CHUNK; w++)
            *w = bench_rand(&rng);
        if (pwrite(run->fd, chunk, FILE_CHUNK, (off_t)done) != (ssize_t)FILE_CHUNK) {
            bench_fail(out, BENCH_ERROR, "writing the file: %s", strerror(errno));
            break;
        }
        if (bench_now_ns() - t0 > FILE_PREP_TIMEOUT_NS) {
            bench_fail(out, BENCH_TIMEOUT, "writing the file took over %llu s",
                       (unsigned long long)(FILE_PREP_TIMEOUT_NS / 1000000000u));
            break;
        }
    }
    free(chunk);
    if (out->status == BENCH_OK && fsync(run->fd) != 0)
        bench_fail(out, BENCH_ERROR, "fsync: %s", strerror(errno));
    if (out->status != BENCH_OK)
        return -1;
    /* Written pages leave the cache: the cached mode warms it itself. */
    (void)posix_fadvise(run->fd, 0, 0, POSIX_FADV_DONTNEED);

    dfd = open(run->path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (dfd < 0) {
        bench_fail(&run->direct, BENCH_NA, "no O_DIRECT on %s: %s",
                   fstatfs(run->fd, &sfs) == 0 ? fs_name((long)sfs.f_type) : "this fs",
                   strerror(errno));
    } else {
        if (gyre_file_alignment(dfd, &mem, &off) == 0 && (FILE_BS % mem != 0 || FILE_BS % off != 0))
            bench_fail(&run->direct, BENCH_NA, "O_DIRECT needs %u-byte alignment here",
                       (unsigned)off);
        close(dfd);
    }
    describe_line("  %-12s %llu MiB of random data on %s, under %s (no name: O_TMPFILE)", "file",
                  (unsigned long long)(run->size >> 20),
                  fstatfs(run->fd, &sfs) == 0 ? fs_name((long)sfs.f_type) : "?", dir);
    return 0;
}

/* Reads the whole file through the page cache, so the buffered reads that
 * follow find it there. */
static int file_warm(file_run *run, bench_outcome *out)
{
    unsigned char *chunk = malloc(FILE_CHUNK);
    uint64_t done, t0 = bench_now_ns();

    if (!chunk) {
        bench_fail(out, BENCH_ERROR, "out of memory");
        return -1;
    }
    bench_progress("[file] warming the page cache");
    for (done = 0; done < run->size; done += FILE_CHUNK) {
        if (pread(run->fd, chunk, FILE_CHUNK, (off_t)done) != (ssize_t)FILE_CHUNK) {
            bench_fail(out, BENCH_ERROR, "warming the cache: %s", strerror(errno));
            break;
        }
        if (bench_now_ns() - t0 > FILE_PREP_TIMEOUT_NS) {
            bench_fail(out, BENCH_TIMEOUT, "warming the cache took too long");
            break;
        }
    }
    free(chunk);
    return out->status == BENCH_OK ? 0 : -1;
}

/* --- the run -------------------------------------------------------------- */

static int have_backend(const char *const *backends, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(backends[i], name) == 0)
            return 1;
    return 0;
}

/* Sets up every subject, or marks why it is out of the run. */
static void file_subjects(file_run *run, const char *const *backends, size_t n_backends)
{
    char dir[PATH_MAX], ver[96], pkg[64], cmd[PATH_MAX + 64];
    const char *readiness = NULL;
    gyre_loop_opts opts;
    gyre_loop *loop;
    size_t i;
    int rc;

    for (i = 0; i < n_backends && !readiness; i++)
        if (strcmp(backends[i], "uring") != 0)
            readiness = backends[i];
    if (have_backend(backends, n_backends, "epoll"))
        readiness = "epoll";
    if (bench_bin_dir(dir, sizeof dir) != 0)
        snprintf(dir, sizeof dir, ".");
    bench_first_line("fio --version 2>/dev/null", ver, sizeof ver);
    run->fio = ver[0] ? "fio" : NULL;
    describe_line("  %-12s %s", "fio", ver[0] ? ver : "(not installed: Debian package fio)");
    snprintf(run->peer, sizeof run->peer, "%.*s/fs-libuv", (int)(sizeof run->peer - 16), dir);
    snprintf(cmd, sizeof cmd, "'%s' --version 2>/dev/null", run->peer);
    bench_first_line(cmd, ver, sizeof ver);
    bench_first_line("dpkg-query -W -f='${Version}' libuv1-dev 2>/dev/null", pkg, sizeof pkg);
    describe_line("  %-12s %s%s%s%s", "fs-libuv", ver[0] ? ver : "(not built: needs libuv1-dev)",
                  pkg[0] ? " (Debian " : "", pkg, pkg[0] ? ")" : "");

    for (i = 0; i < N_SUBJECTS; i++) {
        file_subject *s = &run->subjects[i];

        s->def = &subject_defs[i];
        switch (s->def->kind) {
        case KIND_GYRE:
            if (strcmp(s->def->backend, "uring") == 0) {
                if (!have_backend(backends, n_backends, "uring")) {
                    bench_fail(&s->out, BENCH_NA, "backend uring not selected");
                    break;
                }
                snprintf(s->backend, sizeof s->backend, "uring");
            } else if (!readiness) {
                bench_fail(&s->out, BENCH_NA, "no readiness backend selected");
                break;
            } else {
                snprintf(s->backend, sizeof s->backend, "%s", readiness);
            }
            memset(&opts, 0, sizeof opts);
            opts.backend = s->backend;
            opts.file_engine = s->def->engine;
            rc = gyre_loop_new(&loop, &opts);
            if (rc < 0) {
                bench_fail(&s->out, BENCH_NA, "engine %s on %s: %s", s->def->engine, s->backend,
                           gyre_strerror(rc));
                break;
            }
            (void)gyre_loop_free(loop);
            describe_line("  %-12s file engine %s on the %s backend%s", s->def->name,
                          s->def->engine, s->backend,
                          strcmp(s->def->engine, "linuxaio") == 0
                              ? " (buffered reads: on the pool, by design)"
                              : "");
            break;
        case KIND_FIO:
            if (!run->fio)
                bench_fail(&s->out, BENCH_NA, "fio not installed");
            break;
        case KIND_LIBUV:
            if (access(run->peer, X_OK) != 0)
                bench_fail(&s->out, BENCH_NA, "fs-libuv not built (libuv1-dev)");
            break;
        }
    }
}

static void file_round(file_run *run, size_t k, int cfg, int round)
{
    file_subject *s = &run->subjects[k];
    file_cell *c = &run->cells[cfg][k];
    double sample[N_METRICS] = {0};
    bench_outcome out = {BENCH_OK, "", 0};
    int m;

    switch (s->def->kind) {
    case KIND_GYRE:
        gyre_measure(run, s, &file_configs[cfg], round, sample, &out);
        break;
    case KIND_FIO:
        fio_measure(run, s, &file_configs[cfg], round, sample, &out);
        break;
    case KIND_LIBUV:
        libuv_measure(run, &file_configs[cfg], round, sample, &out);
        break;
    }
    if (out.status != BENCH_OK) {
        c->out = out;
        /* A gyre round that timed out left its loop behind: no more. */
        if (out.status == BENCH_TIMEOUT)
            s->out = out;
        return;
    }
    for (m = 0; m < N_METRICS; m++)
        c->v[m][c->rounds] = sample[m];
    c->rounds++;
}

static size_t subject_index(const char *name)
{
    size_t k;

    for (k = 0; k < N_SUBJECTS; k++)
        if (strcmp(subject_defs[k].name, name) == 0)
            break;
    return k;
}

static int record(file_run *run, const bench_scenario *view, const char *row, const char *column,
                  long param, const bench_outcome *out, double *v, int n, const char *note)
{
    bench_stats st = {0};
    bench_outcome o = *out;
    size_t k;

    if (o.status == BENCH_OK) {
        st = bench_stats_of(v, n);
        snprintf(o.note, sizeof o.note, "%s", note ? note : "");
    }
    /* Whatever went wrong with fio or the libuv peer is theirs; a target row
     * (gyre vs a peer) stays gyre's. */
    k = subject_index(row);
    if (k < N_SUBJECTS && subject_defs[k].kind != KIND_GYRE)
        o.outside = 1;
    return bench_record_outcome(run->ctx, view, row, column, param, &o, &st);
}

static int file_record(file_run *run, int cfg)
{
    const file_config *fc = &file_configs[cfg];
    static const struct {
        file_metric m;
        const bench_scenario *view;
    } shared[] = {{M_P50, &view_p50}, {M_P99, &view_p99}, {M_CPU, &view_cpu}};
    size_t k, j;
    int rc = 0;

    for (k = 0; k < N_SUBJECTS && rc == 0; k++) {
        const file_subject *s = &run->subjects[k];
        file_cell *c = &run->cells[cfg][k];
        const char *note = NULL;
        double v[BENCH_MAX_ROUNDS];

        if (c->out.status == BENCH_OK && s->out.status != BENCH_OK)
            c->out = s->out;
        if (!fc->direct && s->def->kind == KIND_GYRE && strcmp(s->def->engine, "linuxaio") == 0)
            note = "buffered: on the pool by design";
        memcpy(v, c->v[M_IOPS], sizeof v);
        rc = record(run, fc->direct ? &bench_scenario_file : &view_cached, s->def->name,
                    fc->short_column, fc->depth, &c->out, v, c->rounds, note);
        for (j = 0; j < sizeof shared / sizeof shared[0] && rc == 0; j++) {
            memcpy(v, c->v[shared[j].m], sizeof v);
            rc = record(run, shared[j].view, s->def->name, fc->column, -1, &c->out, v, c->rounds,
                        NULL);
        }
        if (s->def->kind != KIND_GYRE || rc != 0)
            continue;
        memcpy(v, c->v[M_INLINE], sizeof v);
        rc = record(run, &view_inline, s->def->name, fc->column, -1, &c->out, v, c->rounds, NULL);
        memcpy(v, c->v[M_POOL], sizeof v);
        if (rc == 0)
            rc = record(run, &view_pool, s->def->name, fc->column, -1, &c->out, v, c->rounds, NULL);
    }
    return rc;
}

/* The acceptance targets: per-round ratios, their median judged. */
static int file_targets_record(file_run *run)
{
    size_t t;
    int r, rc = 0;

    for (t = 0; t < N_TARGETS && rc == 0; t++) {
        const struct file_target *tg = &file_targets[t];
        const file_cell *a = &run->cells[tg->cfg][subject_index(tg->subject)];
        const file_cell *b = &run->cells[tg->cfg][subject_index(tg->baseline)];
        int higher = tg->view->higher_is_better;
        bench_outcome out = a->out;
        double v[BENCH_MAX_ROUNDS];
        bench_stats st;
        char note[96];
        int met;

        if (out.status == BENCH_OK && b->out.status != BENCH_OK)
            bench_fail(&out, BENCH_NA, "baseline %s: %s", tg->baseline, b->out.note);
        if (out.status == BENCH_OK && (a->rounds != b->rounds || a->rounds == 0))
            bench_fail(&out, BENCH_NA, "%s or %s lacks rounds", tg->subject, tg->baseline);
        if (out.status != BENCH_OK) {
            rc = record(run, tg->view, tg->row, tg->column, -1, &out, NULL, 0, NULL);
            continue;
        }
        for (r = 0; r < a->rounds; r++)
            v[r] = b->v[tg->metric][r] > 0 ? a->v[tg->metric][r] / b->v[tg->metric][r] : 0;
        st = bench_stats_of(v, a->rounds);
        met = higher ? st.median >= tg->bound : st.median <= tg->bound;
        snprintf(note, sizeof note, "%s vs %s, target %s %.2fx: %s", tg->subject, tg->baseline,
                 higher ? ">=" : "<=", tg->bound, met ? "met" : "MISSED");
        rc = bench_record(run->ctx, tg->view, tg->row, tg->column, -1, BENCH_OK, &st, note);
    }
    return rc;
}

static void file_describe(void)
{
    size_t i;

    printf("file benchmark (random 4 KiB reads; bench/peers/fs-libuv for libuv):\n");
    for (i = 0; i < n_file_lines; i++)
        printf("%s\n", file_lines[i]);
    printf("  %-12s fio's lat (slat + clat) like the others' submit-to-callback; fio psync\n"
           "  %-12s is synchronous: its depth is its job count in every column\n\n",
           "latency", "");
}

static int file_run_all(bench_ctx *ctx, const char *const *backends, size_t n_backends)
{
    file_run *run = calloc(1, sizeof *run);
    bench_outcome prep = {BENCH_OK, "", 0};
    int cfg, r, rc = 0;
    size_t i, k;

    if (!run)
        return -1;
    run->ctx = ctx;
    run->fd = -1;
    run->size = ctx->quick ? FILE_SIZE_QUICK : FILE_SIZE;
    run->warmup_ns = (ctx->quick ? 200 : 500) * MS;
    run->window_ns = (ctx->quick ? 1000 : 3000) * MS;
    run->rounds = ctx->quick ? 1 : FILE_ROUNDS;
    n_file_lines = 0;
    describe_line("  %-12s %s: %llu MiB file, %llu ms warm-up + %llu ms window, %d round%s", "run",
                  ctx->quick ? "--quick" : "full", (unsigned long long)(run->size >> 20),
                  (unsigned long long)(run->warmup_ns / MS),
                  (unsigned long long)(run->window_ns / MS), run->rounds,
                  run->rounds == 1 ? "" : "s");
    file_subjects(run, backends, n_backends);
    (void)file_make(run, &prep);

    for (cfg = 0; cfg < N_CONFIGS && rc == 0; cfg++) {
        const file_config *fc = &file_configs[cfg];
        bench_outcome cfg_out = prep;

        if (cfg_out.status == BENCH_OK && fc->direct && run->direct.status != BENCH_OK)
            cfg_out = run->direct;
        if (cfg_out.status == BENCH_OK && !fc->direct)
            (void)file_warm(run, &cfg_out);
        for (k = 0; k < N_SUBJECTS; k++)
            run->cells[cfg][k].out = cfg_out;
        for (r = 0; r < run->rounds && cfg_out.status == BENCH_OK; r++) {
            for (i = 0; i < N_SUBJECTS; i++) {
                k = (i + (size_t)r) % N_SUBJECTS;
                if (run->subjects[k].out.status != BENCH_OK ||
                    run->cells[cfg][k].out.status != BENCH_OK)
                    continue;
                bench_progress("[file] %s round %d/%d: %s", fc->column, r + 1, run->rounds,
                               run->subjects[k].def->name);
                file_round(run, k, cfg, r);
            }
        }
        rc = file_record(run, cfg);
    }
    if (rc == 0)
        rc = file_targets_record(run);
    /* The file has no name: closing its one fd frees it. */
    if (run->fd >= 0)
        close(run->fd);
    free(run);
    return rc;
}

const bench_scenario bench_scenario_file = {
    .name = "file",
    .summary = "random 4 KiB file reads: every gyre file engine vs fio and libuv uv_fs_read",
    .title = "file, O_DIRECT: random 4 KiB reads",
    .unit = "IOPS",
    .higher_is_better = 1,
    .plot = &depth_plot,
    .run_once = file_run_all,
    .tables = file_tables,
    .describe = file_describe,
};
