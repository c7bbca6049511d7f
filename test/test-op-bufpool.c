/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-bufpool.c: buffer pools and multishot recv.
 *
 * The pool is deliberately tiny (4 buffers of 64 bytes) and the test keeps
 * the buffers it is given until the pool is dry, so the op must wait for
 * buffers to come back -- without a callback, and never with -ENOBUFS -- and
 * still deliver every byte in order. Bytes are checked against the sender's
 * pattern at their stream offset and by hash; cancelling loses nothing: what
 * the op did not deliver is still in the socket.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"

#define NBUF 4
#define BUFSZ 64

void test_op_bufpool_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_bufpool *pool = NULL;
    void *bufs[NBUF];
    uint32_t i, j;

    ASSERT_EQ(gyre_bufpool_new(NULL, &pool, NBUF, BUFSZ), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, NULL, NBUF, BUFSZ), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, 0, BUFSZ), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, 3, BUFSZ), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, 6, BUFSZ), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, 65536, BUFSZ), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, 1u << 31, BUFSZ), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, NBUF, 0), -EINVAL);
    ASSERT_TRUE(pool == NULL);

    /* The limits themselves are accepted. */
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, 32768, 1), 0);
    ASSERT_EQ(gyre_bufpool_available(pool), 32768);
    ASSERT_EQ(gyre_bufpool_free(pool), 0);
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, 1, 1), 0);
    ASSERT_EQ(gyre_bufpool_available(pool), 1);
    ASSERT_EQ(gyre_bufpool_free(pool), 0);

    ASSERT_EQ(gyre_bufpool_new(loop, &pool, NBUF, BUFSZ), 0);
    ASSERT_EQ(gyre_bufpool_available(pool), NBUF);
    for (i = 0; i < NBUF; i++) {
        bufs[i] = gyre_bufpool_buf(pool, i);
        ASSERT_TRUE(bufs[i] != NULL);
        memset(bufs[i], (int)i, BUFSZ); /* each is writable, all BUFSZ bytes */
        for (j = 0; j < i; j++)
            ASSERT_TRUE(bufs[i] != bufs[j]);
        /* Not handed out: cannot be put back. */
        ASSERT_EQ(gyre_bufpool_put(pool, i), -EINVAL);
    }
    ASSERT_EQ(gyre_bufpool_put(pool, NBUF), -EINVAL);
    ASSERT_EQ(gyre_bufpool_put(pool, UINT32_MAX), -EINVAL);
    ASSERT_EQ(gyre_bufpool_available(pool), NBUF);
    ASSERT_EQ(gyre_bufpool_free(pool), 0);
    test_loop_free(loop);
}

static unsigned char pattern[1 << 15];

static void pattern_init(void)
{
    uint64_t rng = 0xb0f;
    size_t i;

    for (i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(test_rand(&rng) >> 56);
}

struct ms {
    gyre_op op;
    gyre_bufpool *pool;
    uint32_t held[NBUF];
    int nheld;
    uint64_t got, hash;
    int completions, dry, final;
    int64_t final_result;
    uint32_t min_avail;
};

static void ms_cb(gyre_op *op)
{
    struct ms *m = (struct ms *)op;

    m->completions++;
    if (!(op->flags & GYRE_OP_MORE)) {
        m->final++;
        m->final_result = op->result;
        if (op->result <= 0)
            return;
    }
    if (op->result <= 0)
        test_fail(__FILE__, __LINE__, "multishot recv completion %d: %jd with MORE", m->completions,
                  (intmax_t)op->result);
    ASSERT_TRUE((op->flags & GYRE_OP_BUFFER) != 0);
    ASSERT_LE(op->result, BUFSZ);
    ASSERT_LT(m->nheld, NBUF);
    {
        const unsigned char *b = gyre_bufpool_buf(m->pool, op->buf_id);
        size_t n = (size_t)op->result;

        ASSERT_LE(m->got + n, sizeof pattern);
        if (memcmp(b, pattern + m->got, n) != 0)
            test_fail(__FILE__, __LINE__, "bytes at %ju..%ju differ", (uintmax_t)m->got,
                      (uintmax_t)(m->got + n));
        m->hash = test_fnv(m->hash, b, n);
        m->got += n;
    }
    m->held[m->nheld++] = op->buf_id;
    if (gyre_bufpool_available(m->pool) < m->min_avail)
        m->min_avail = gyre_bufpool_available(m->pool);
    if (m->nheld == NBUF)
        m->dry++;
}

static void ms_put_all(struct ms *m)
{
    int i;

    for (i = 0; i < m->nheld; i++)
        ASSERT_EQ(gyre_bufpool_put(m->pool, m->held[i]), 0);
    /* Put twice: no longer out. */
    if (m->nheld > 0)
        ASSERT_EQ(gyre_bufpool_put(m->pool, m->held[0]), -EINVAL);
    m->nheld = 0;
}

/* Writes what fits of pattern[*sent .. total). */
static void pump(int fd, size_t *sent, size_t total)
{
    while (*sent < total) {
        ssize_t n = write(fd, pattern + *sent, total - *sent);

        if (n < 0) {
            ASSERT_EQ(errno, EAGAIN);
            return;
        }
        *sent += (size_t)n;
    }
}

static void ms_start(gyre_loop *loop, struct ms *m, int fd)
{
    memset(m, 0, sizeof *m);
    m->hash = TEST_FNV_INIT;
    m->min_avail = NBUF;
    ASSERT_EQ(gyre_bufpool_new(loop, &m->pool, NBUF, BUFSZ), 0);
    gyre_op_recv_multishot(&m->op, fd, m->pool);
    ASSERT_EQ(gyre_submit(loop, &m->op, ms_cb), 0);
    ASSERT_EQ(m->completions, 0);
}

void test_op_recv_multishot_exhaust(void)
{
    gyre_loop *loop = test_loop_new();
    static struct ms m;
    size_t sent = 0, total = sizeof pattern;
    int c, s, rounds = 0;

    pattern_init();
    test_tcp_pair(&c, &s);
    ms_start(loop, &m, s);
    while (m.got < total) {
        int before;

        pump(c, &sent, total);
        test_run_until(loop, &m.dry, rounds + 1);
        rounds++;
        /* Dry: the op waits for buffers without telling the callback. */
        ASSERT_EQ(gyre_bufpool_available(m.pool), 0);
        ASSERT_EQ(m.final, 0);
        ASSERT_EQ(gyre_bufpool_free(m.pool), -EBUSY);
        before = m.completions;
        pump(c, &sent, total);
        test_run_nowait(loop, 5);
        ASSERT_EQ(m.completions, before);
        ms_put_all(&m);
        ASSERT_EQ(gyre_bufpool_available(m.pool), NBUF);
        if (total - m.got < NBUF * BUFSZ)
            break;
    }
    /* The tail (less than a poolful), then end of stream. */
    ASSERT_EQ(sent, total);
    ASSERT_SYS(shutdown(c, SHUT_WR));
    while (m.final == 0) {
        int target = m.completions + 1;

        test_run_until(loop, &m.completions, target);
        ms_put_all(&m);
    }
    test_run_nowait(loop, 3);
    ASSERT_EQ(m.final, 1);
    ASSERT_EQ(m.final_result, 0);
    ASSERT_EQ(m.got, total);
    ASSERT_EQ(m.hash, test_fnv(TEST_FNV_INIT, pattern, total));
    ASSERT_EQ(m.min_avail, 0);
    ASSERT_GE(rounds, (int)(total / (NBUF * BUFSZ)) - 1);
    ASSERT_EQ(gyre_bufpool_available(m.pool), NBUF);
    ASSERT_EQ(gyre_bufpool_free(m.pool), 0);
    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

void test_op_recv_multishot_cancel(void)
{
    gyre_loop *loop = test_loop_new();
    static struct ms m;
    size_t sent = 0, total = 8192;
    unsigned char rest[8192];
    ssize_t n;
    int c, s;

    pattern_init();
    test_tcp_pair(&c, &s);

    /* Idle: nothing sent, the cancel ends it at once. */
    ms_start(loop, &m, s);
    test_run_nowait(loop, 3);
    ASSERT_EQ(m.completions, 0);
    ASSERT_EQ(gyre_cancel(loop, &m.op), 0);
    test_run_until(loop, &m.final, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(m.completions, 1);
    ASSERT_EQ(m.final_result, -ECANCELED);
    ASSERT_EQ(gyre_cancel(loop, &m.op), -ENOENT);
    ASSERT_EQ(gyre_bufpool_free(m.pool), 0);

    /* Busy: the sender has sent everything (and stopped), the pool is dry,
     * then the cancel. Buffers go back at once; completions already due may
     * still carry data before the final -ECANCELED. */
    ms_start(loop, &m, s);
    pump(c, &sent, total);
    ASSERT_EQ(sent, total);
    test_run_until(loop, &m.dry, 1);
    ASSERT_EQ(gyre_bufpool_available(m.pool), 0);
    ASSERT_EQ(gyre_cancel(loop, &m.op), 0);
    ASSERT_EQ(gyre_cancel(loop, &m.op), -EALREADY);
    while (m.final == 0) {
        ms_put_all(&m);
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
    }
    ms_put_all(&m);
    test_run_nowait(loop, 3);
    ASSERT_EQ(m.final, 1);
    ASSERT_EQ(m.final_result, -ECANCELED);
    /* What was not delivered is still in the socket, in order. */
    n = read(s, rest, sizeof rest);
    if (n < 0) {
        ASSERT_EQ(errno, EAGAIN);
        n = 0;
    }
    ASSERT_EQ(m.got + (uint64_t)n, total);
    ASSERT_EQ(memcmp(rest, pattern + m.got, (size_t)n), 0);
    ASSERT_EQ(test_fnv(m.hash, rest, (size_t)n), test_fnv(TEST_FNV_INIT, pattern, total));
    ASSERT_EQ(gyre_bufpool_available(m.pool), NBUF);
    ASSERT_EQ(gyre_bufpool_free(m.pool), 0);
    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

/* The op asked to end in the batch whose last CQE ends it for want of a
 * buffer (io_uring: data for more than the pool, one submission; the
 * callback that took the last buffer cancels): the final result is
 * -ECANCELED, never -ENOBUFS (issue 11's proxy: a stream that stopped and
 * restarted reading took it for its socket's error). */
static gyre_loop *dry_loop;

static void ms_cancel_dry_cb(gyre_op *op)
{
    struct ms *m = (struct ms *)op;

    ms_cb(op);
    if (m->dry == 1 && (op->flags & GYRE_OP_MORE)) {
        m->dry++;
        ASSERT_EQ(gyre_cancel(dry_loop, op), 0);
    }
}

void test_op_recv_multishot_cancel_dry(void)
{
    static struct ms m;
    size_t sent = 0, total = 8192;
    unsigned char rest[8192];
    ssize_t n;
    int c, s;

    dry_loop = test_loop_new();
    pattern_init();
    test_tcp_pair(&c, &s);
    pump(c, &sent, total);
    ASSERT_EQ(sent, total);
    memset(&m, 0, sizeof m);
    m.hash = TEST_FNV_INIT;
    m.min_avail = NBUF;
    ASSERT_EQ(gyre_bufpool_new(dry_loop, &m.pool, NBUF, BUFSZ), 0);
    gyre_op_recv_multishot(&m.op, s, m.pool);
    ASSERT_EQ(gyre_submit(dry_loop, &m.op, ms_cancel_dry_cb), 0);
    test_run_until(dry_loop, &m.final, 1);
    test_run_nowait(dry_loop, 3);
    ASSERT_EQ(m.final, 1);
    ASSERT_EQ(m.final_result, -ECANCELED);
    ASSERT_EQ(m.completions, NBUF + 1);
    ASSERT_EQ(m.got, NBUF * BUFSZ);
    ASSERT_EQ(gyre_bufpool_available(m.pool), 0);
    ms_put_all(&m);
    /* What was not delivered is still in the socket, in order. */
    n = read(s, rest, sizeof rest);
    ASSERT_EQ(n, (ssize_t)(total - NBUF * BUFSZ));
    ASSERT_EQ(memcmp(rest, pattern + m.got, (size_t)n), 0);
    ASSERT_EQ(gyre_bufpool_available(m.pool), NBUF);
    ASSERT_EQ(gyre_bufpool_free(m.pool), 0);
    test_close(c);
    test_close(s);
    test_loop_free(dry_loop);
}
