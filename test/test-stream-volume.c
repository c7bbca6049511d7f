/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-stream-volume.c: 64 MiB through gyre_stream over TCP loopback and a
 * pipe, writer and reader both streams on one loop. The writer keeps many
 * write requests queued (seeded random sizes) so that they pile up behind
 * the one write in flight faster than the reader drains them: the stream
 * must gather them (fewer write ops than requests) and still deliver every
 * byte in order, checked by FNV-1a on both ends and against the pattern at
 * each offset, so a mismatch names the first bad byte. The TCP writer has a
 * small fixed SO_SNDBUF (RELIABILITY B1), so most writes are short, and
 * neither run may spin on writability: the loop's iterations are bounded
 * by the write ops and reads that made progress. Sizes scale with
 * GYRE_TEST_SCALE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runner.h"

#define PATTERN_LEN ((1u << 20) + 7u) /* odd: chunks never line up with the repeat */
#define MAX_CHUNK (1u << 17)
#define QUEUED 64 /* write requests kept queued */

static unsigned char *pattern;

struct vol {
    gyre_loop *loop;
    gyre_bufpool *pool;
    gyre_stream w, r;
    gyre_stream_write_req reqs[QUEUED];
    struct iovec iovs[QUEUED][2];
    uint64_t total, queued, written, received;
    uint64_t whash, rhash, wrng;
    int sock, outstanding, eof, closed, shut;
};

static uint32_t chunk_size(uint64_t *rng)
{
    uint64_t r = test_rand(rng);

    if ((r & 3) == 0)
        return 1 + (uint32_t)((r >> 8) % 64);
    return 1 + (uint32_t)((r >> 8) % MAX_CHUNK);
}

static void on_close(gyre_stream *s)
{
    struct vol *v = s->data;

    v->closed++;
}

static void on_shutdown(gyre_stream *s, int status)
{
    struct vol *v = s->data;

    ASSERT_EQ(status, 0);
    v->shut++;
    ASSERT_EQ(gyre_stream_close(s, on_close), 0);
}

static void queue_one(struct vol *v, int slot);

static void on_write(gyre_stream_write_req *req, int status)
{
    struct vol *v = req->data;
    int slot = (int)(req - v->reqs);

    ASSERT_EQ(status, 0);
    v->written += v->iovs[slot][0].iov_len + v->iovs[slot][1].iov_len;
    v->outstanding--;
    if (v->queued < v->total) {
        queue_one(v, slot);
        return;
    }
    if (v->outstanding > 0)
        return;
    ASSERT_EQ(v->written, v->total);
    /* The end of the stream: half-close a socket, close a pipe. */
    if (v->sock)
        ASSERT_EQ(gyre_stream_shutdown(&v->w, on_shutdown), 0);
    else
        ASSERT_EQ(gyre_stream_close(&v->w, on_close), 0);
}

/* A request of two buffers (the pattern wraps inside some of them). */
static void queue_one(struct vol *v, int slot)
{
    uint64_t at = v->queued % PATTERN_LEN;
    uint64_t len = chunk_size(&v->wrng);
    uint64_t first;

    if (len > v->total - v->queued)
        len = v->total - v->queued;
    first = len < PATTERN_LEN - at ? len : PATTERN_LEN - at;
    v->iovs[slot][0].iov_base = pattern + at;
    v->iovs[slot][0].iov_len = (size_t)first;
    v->iovs[slot][1].iov_base = pattern;
    v->iovs[slot][1].iov_len = (size_t)(len - first);
    v->whash = test_fnv(v->whash, pattern + at, (size_t)first);
    v->whash = test_fnv(v->whash, pattern, (size_t)(len - first));
    v->reqs[slot].data = v;
    ASSERT_EQ(gyre_stream_write(&v->w, &v->reqs[slot], v->iovs[slot], 2, on_write), 0);
    v->queued += len;
    v->outstanding++;
}

static void check_bytes(uint64_t off, const unsigned char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint64_t at = (off + i) % PATTERN_LEN;
        size_t n = len - i;

        if (n > PATTERN_LEN - at)
            n = (size_t)(PATTERN_LEN - at);
        if (memcmp(buf + i, pattern + at, n) != 0) {
            size_t j = 0;

            while (buf[i + j] == pattern[at + j])
                j++;
            test_fail(__FILE__, __LINE__, "stream byte %ju differs (got 0x%02x, want 0x%02x)",
                      (uintmax_t)(off + i + j), buf[i + j], pattern[at + j]);
        }
        i += n;
    }
}

static void on_read(gyre_stream *s, int64_t nread, void *buf, const int *fds, uint32_t nfds)
{
    struct vol *v = s->data;

    ASSERT_TRUE(fds == NULL);
    ASSERT_EQ(nfds, 0);
    if (nread == 0) {
        ASSERT_EQ(v->received, v->total);
        v->eof++;
        ASSERT_EQ(gyre_stream_close(s, on_close), 0);
        return;
    }
    ASSERT_GT(nread, 0);
    check_bytes(v->received, buf, (size_t)nread);
    v->rhash = test_fnv(v->rhash, buf, (size_t)nread);
    v->received += (uint64_t)nread;
    ASSERT_LE(v->received, v->total);
}

static void volume_run(int wfd, int rfd, int sock, uint64_t seed)
{
    static struct vol v;
    gyre_stream_stats ws, rs;
    gyre_stats st;
    uint64_t prng = seed;
    int i;

    memset(&v, 0, sizeof v);
    pattern = malloc(PATTERN_LEN);
    ASSERT_TRUE(pattern != NULL);
    for (uint32_t k = 0; k < PATTERN_LEN; k++)
        pattern[k] = (unsigned char)(test_rand(&prng) >> 56);
    v.loop = test_loop_new();
    test_loop_guard(v.loop, SEC(100));
    ASSERT_EQ(gyre_bufpool_new(v.loop, &v.pool, 64, 16384), 0);
    v.sock = sock;
    v.total = test_scale((size_t)64 << 20);
    v.whash = v.rhash = TEST_FNV_INIT;
    v.wrng = seed * 3 + 1;
    ASSERT_EQ(gyre_stream_init(v.loop, &v.w, wfd, 0), 0);
    ASSERT_EQ(gyre_stream_init(v.loop, &v.r, rfd, 0), 0);
    v.w.data = v.r.data = &v;
    ASSERT_EQ(gyre_stream_read_start(&v.r, v.pool, on_read), 0);
    for (i = 0; i < QUEUED && v.queued < v.total; i++)
        queue_one(&v, i);
    test_run_until(v.loop, &v.closed, 2);
    test_run_nowait(v.loop, 3);
    ASSERT_EQ(v.closed, 2);
    ASSERT_EQ(v.eof, 1);
    ASSERT_EQ(v.shut, sock ? 1 : 0);
    ASSERT_EQ(v.received, v.total);
    if (v.whash != v.rhash)
        test_fail(__FILE__, __LINE__, "hash written %016jx != read %016jx", (uintmax_t)v.whash,
                  (uintmax_t)v.rhash);
    ASSERT_EQ(gyre_stream_get_stats(&v.w, &ws), 0);
    ASSERT_EQ(gyre_stream_get_stats(&v.r, &rs), 0);
    ASSERT_EQ(ws.bytes_written, v.total);
    ASSERT_EQ(rs.bytes_read, v.total);
    /* Requests piled up behind the write in flight and were gathered. */
    if (!(ws.write_ops < ws.write_reqs))
        test_fail(__FILE__, __LINE__, "no coalescing: %ju write ops for %ju requests",
                  (uintmax_t)ws.write_ops, (uintmax_t)ws.write_reqs);
    /* No spin on POLLOUT (or on anything): every iteration but a few
     * dispatches a write or a read that moved bytes. The factor 2 leaves
     * room for the iterations GYRE_FAULTS' injected EINTR makes empty. */
    ASSERT_EQ(gyre_loop_stats(v.loop, &st), 0);
    if (st.iterations > 2 * (ws.write_ops + rs.reads) + 64)
        test_fail(__FILE__, __LINE__, "%ju loop iterations for %ju write ops and %ju reads",
                  (uintmax_t)st.iterations, (uintmax_t)ws.write_ops, (uintmax_t)rs.reads);
    printf("%ju requests in %ju write ops; %ju reads; %ju iterations\n", (uintmax_t)ws.write_reqs,
           (uintmax_t)ws.write_ops, (uintmax_t)rs.reads, (uintmax_t)st.iterations);
    ASSERT_EQ(gyre_bufpool_available(v.pool), 64);
    ASSERT_EQ(gyre_bufpool_free(v.pool), 0);
    free(pattern);
    test_loop_free(v.loop);
}

void test_stream_volume_tcp(void)
{
    /* 64 KiB (the kernel doubles it) instead of the autotuned megabytes: a
     * write takes at most that much. Not smaller: below about 32 KiB the
     * kernel's own loopback TCP stalls for milliseconds on every refill
     * (a plain blocking writer and reader take 30 s for 64 MiB there). */
    int c, s, sndbuf = 65536;

    test_tcp_pair(&c, &s);
    ASSERT_SYS(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf));
    volume_run(c, s, 1, 0x57ea0001); /* both fds now belong to the streams */
}

void test_stream_volume_pipe(void)
{
    int p[2];

    test_pipe(p);
    volume_run(p[1], p[0], 0, 0x57ea0002);
}
