/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-trysend.c: gyre_try_send(), gyre_try_write() and
 * gyre_op_set_bufpool_put().
 *
 * A try either moves bytes now or says why not, with no op and no callback;
 * these tests check the bytes on the other end, the -EAGAIN of a full buffer
 * and of a write side an op holds (and that the op's bytes come first), the
 * errors of a gone peer without SIGPIPE, and that a buffer given to a send
 * comes back to its pool exactly once, whatever the send's result. Under
 * GYRE_FAULTS a try may be told EAGAIN: where a success is expected the
 * tests retry (try_until()), a bounded number of times.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"

/* A try retried while it says -EAGAIN (an injected fault): for a write the
 * kernel has room for. */
static int64_t try_until(gyre_loop *loop, int fd, const void *buf, size_t len, int use_write)
{
    int64_t n = -EAGAIN;

    for (int i = 0; i < 1000 && n == -EAGAIN; i++)
        n = use_write ? gyre_try_write(loop, fd, buf, len) : gyre_try_send(loop, fd, buf, len, 0);
    return n;
}

/* Reads what is there now (the fd is non-blocking). */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t n;

    while (got < cap && (n = read(fd, buf + got, cap - got)) > 0)
        got += (size_t)n;
    return got;
}

/* Fills fd's socket buffer with tries of 'A' until the kernel says EAGAIN
 * (bounded); returns the bytes it took. */
static size_t fill(gyre_loop *loop, int fd)
{
    static char chunk[1 << 16];
    size_t total = 0;
    int again = 0;

    memset(chunk, 'A', sizeof chunk);
    /* Injected EAGAINs come singly; the kernel's stays: 50 in a row is it. */
    for (int i = 0; i < 100000 && again < 50; i++) {
        int64_t n = gyre_try_send(loop, fd, chunk, sizeof chunk, 0);

        if (n == -EAGAIN) {
            again++;
            continue;
        }
        ASSERT_GT(n, 0);
        again = 0;
        total += (size_t)n;
    }
    ASSERT_EQ(again, 50);
    return total;
}

void test_op_try_send_bytes(void)
{
    gyre_loop *loop = test_loop_new();
    int sp[2], p[2], fl;
    char buf[64];
    char path[256];
    int file;

    test_socketpair(sp);
    ASSERT_EQ(try_until(loop, sp[0], "hello", 5, 0), 5);
    ASSERT_EQ(try_until(loop, sp[0], " world", 6, 1), 6);
    ASSERT_EQ(drain(sp[1], buf, sizeof buf), 11);
    ASSERT_EQ(memcmp(buf, "hello world", 11), 0);
    ASSERT_EQ(try_until(loop, sp[0], "", 0, 0), 0);

    /* The arguments. */
    ASSERT_EQ(gyre_try_send(NULL, sp[0], "x", 1, 0), -EINVAL);
    ASSERT_EQ(gyre_try_send(loop, sp[0], NULL, 1, 0), -EINVAL);
    ASSERT_EQ(gyre_try_send(loop, -1, "x", 1, 0), -EBADF);
    ASSERT_EQ(gyre_try_write(NULL, sp[0], "x", 1), -EINVAL);
    ASSERT_EQ(gyre_try_write(loop, sp[0], NULL, 1), -EINVAL);
    ASSERT_EQ(gyre_try_write(loop, -1, "x", 1), -EBADF);
    ASSERT_EQ(try_until(loop, test_bad_fd(), "x", 1, 0), -EBADF);
    ASSERT_EQ(try_until(loop, test_bad_fd(), "x", 1, 1), -EBADF);

    /* A pipe: gyre_try_send says what send(2) says; gyre_try_write writes. */
    test_pipe(p);
    ASSERT_EQ(try_until(loop, p[1], "x", 1, 0), -ENOTSOCK);
    ASSERT_EQ(try_until(loop, p[1], "pipe", 4, 1), 4);
    ASSERT_EQ(drain(p[0], buf, sizeof buf), 4);
    ASSERT_EQ(memcmp(buf, "pipe", 4), 0);
    test_close(p[0]);
    test_close(p[1]);
    /* A blocking pipe is refused, and heard once made non-blocking. */
    ASSERT_SYS(pipe2(p, O_CLOEXEC));
    ASSERT_EQ(gyre_try_write(loop, p[1], "x", 1), -EINVAL);
    ASSERT_EQ(gyre_try_write(loop, p[1], "x", 1), -EINVAL);
    fl = fcntl(p[1], F_GETFL);
    ASSERT_SYS(fcntl(p[1], F_SETFL, fl | O_NONBLOCK));
    ASSERT_SYS(fcntl(p[0], F_SETFL, fl | O_NONBLOCK));
    ASSERT_EQ(try_until(loop, p[1], "y", 1, 1), 1);
    ASSERT_EQ(drain(p[0], buf, sizeof buf), 1);
    ASSERT_EQ(buf[0], 'y');
    /* A regular file never waits for readiness: not for a try. */
    test_tmppath(path, sizeof path, "f");
    file = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
    ASSERT_SYS(file);
    ASSERT_EQ(gyre_try_write(loop, file, "x", 1), -EINVAL);
    test_close(file);

    test_close(p[0]);
    test_close(p[1]);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

void test_op_try_send_full(void)
{
    gyre_loop *loop = test_loop_new();
    static char buf[1 << 16];
    int c, s, p[2];
    size_t total, got = 0;
    int64_t n, first;

    test_tcp_pair(&c, &s);
    total = fill(loop, c);
    ASSERT_GT(total, 0);
    /* Every byte taken is there, and nothing after the EAGAINs. */
    for (int i = 0; i < 100000 && got < total; i++) {
        size_t k = drain(s, buf, sizeof buf);

        for (size_t j = 0; j < k; j++)
            ASSERT_EQ(buf[j], 'A');
        got += k;
        if (k == 0)
            usleep(100);
    }
    ASSERT_EQ(got, total);
    ASSERT_EQ(drain(s, buf, sizeof buf), 0);

    /* A partial count: a non-blocking pipe (64 KiB) takes what fits of a
     * write longer than PIPE_BUF. */
    test_pipe(p);
    memset(buf, 'P', sizeof buf);
    first = try_until(loop, p[1], buf, 40000, 1);
    ASSERT_EQ(first, 40000);
    n = try_until(loop, p[1], buf, 40000, 1);
    ASSERT_GT(n, 0);
    ASSERT_LT(n, 40000);
    ASSERT_EQ(gyre_try_write(loop, p[1], buf, 40000), -EAGAIN);
    ASSERT_EQ(drain(p[0], buf, sizeof buf), (size_t)(first + n));

    test_close(p[0]);
    test_close(p[1]);
    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

/* Counts a stream of 'A's, then 'B's, then 'Z's, failing on any other order. */
struct abz {
    size_t a, b, z;
};

static void abz_feed(struct abz *x, const char *buf, size_t k)
{
    for (size_t j = 0; j < k; j++) {
        if (buf[j] == 'A') {
            ASSERT_EQ(x->b + x->z, 0);
            x->a++;
        } else if (buf[j] == 'B') {
            ASSERT_EQ(x->z, 0);
            x->b++;
        } else {
            ASSERT_EQ(buf[j], 'Z');
            x->z++;
        }
    }
}

/* An op holds the write side: tries say -EAGAIN until it completes, and its
 * bytes come before theirs. */
void test_op_try_send_order(void)
{
    gyre_loop *loop = test_loop_new();
    static char buf[1 << 16];
    static char op_bytes[1000];
    struct test_op t = {0};
    struct abz x = {0};
    int c, s;
    size_t total;

    test_tcp_pair(&c, &s);
    total = fill(loop, c);
    memset(op_bytes, 'B', sizeof op_bytes);
    gyre_op_send(&t.op, c, op_bytes, sizeof op_bytes, 0);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t.calls, 0);
    ASSERT_EQ(gyre_try_send(loop, c, "Z", 1, 0), -EAGAIN);
    /* Drain while the loop runs until the op is done: the socket has room
     * again, but the send op is ahead of any try. */
    for (int i = 0; i < 100000 && t.calls == 0; i++) {
        size_t k = drain(s, buf, sizeof buf);

        abz_feed(&x, buf, k);
        if (gyre_loop_run(loop, GYRE_RUN_NOWAIT) < 0)
            FAIL("loop run");
        if (t.calls == 0) {
            ASSERT_EQ(gyre_try_send(loop, c, "Z", 1, 0), -EAGAIN);
            ASSERT_EQ(gyre_try_write(loop, c, "Z", 1), -EAGAIN);
            if (k == 0)
                usleep(100);
        }
    }
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, (int64_t)sizeof op_bytes);
    ASSERT_EQ(try_until(loop, c, "Z", 1, 0), 1);
    for (int i = 0; i < 100000 && x.z == 0; i++) {
        size_t k = drain(s, buf, sizeof buf);

        abz_feed(&x, buf, k);
        if (k == 0)
            usleep(100);
    }
    ASSERT_EQ(x.a, total);
    ASSERT_EQ(x.b, sizeof op_bytes);
    ASSERT_EQ(x.z, 1);

    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

static void sigpipe_default(void)
{
    sigset_t set;

    ASSERT_TRUE(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    ASSERT_EQ(sigprocmask(SIG_UNBLOCK, &set, NULL), 0);
}

static void assert_sigpipe_untouched(void)
{
    struct sigaction sa;
    sigset_t set;

    ASSERT_EQ(sigaction(SIGPIPE, NULL, &sa), 0);
    ASSERT_TRUE(sa.sa_handler == SIG_DFL);
    ASSERT_EQ(sigprocmask(SIG_BLOCK, NULL, &set), 0);
    ASSERT_EQ(sigismember(&set, SIGPIPE), 0);
    ASSERT_EQ(sigpending(&set), 0);
    ASSERT_EQ(sigismember(&set, SIGPIPE), 0);
}

void test_op_try_send_epipe(void)
{
    gyre_loop *loop = test_loop_new();
    int sp[2], p[2];

    sigpipe_default();
    test_socketpair(sp);
    ASSERT_SYS(shutdown(sp[0], SHUT_WR));
    ASSERT_EQ(try_until(loop, sp[0], "x", 1, 0), -EPIPE);
    assert_sigpipe_untouched();
    ASSERT_EQ(try_until(loop, sp[0], "x", 1, 1), -EPIPE);
    assert_sigpipe_untouched();
    test_pipe(p);
    test_close(p[0]);
    ASSERT_EQ(try_until(loop, p[1], "x", 1, 1), -EPIPE);
    assert_sigpipe_untouched();
    test_close(p[1]);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* A close of gyre's under way: -EBADF, before the kernel closed the fd. */
void test_op_try_send_closing(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    int sp[2];

    test_socketpair(sp);
    gyre_op_close(&t.op, sp[0]);
    test_op_submit(loop, &t);
    ASSERT_EQ(gyre_try_send(loop, sp[0], "x", 1, 0), -EBADF);
    ASSERT_EQ(gyre_try_write(loop, sp[0], "x", 1), -EBADF);
    test_run_until(loop, &t.calls, 1);
    ASSERT_EQ(t.result, 0);
    ASSERT_EQ(try_until(loop, sp[0], "x", 1, 0), -EBADF);
    test_close(sp[1]);
    test_loop_free(loop);
}

#define NBUF 4
#define BUFSZ 64

struct ms {
    gyre_op op;
    int calls, final;
    uint32_t ids[NBUF];
    int nids;
    size_t bytes;
};

static void ms_cb(gyre_op *op)
{
    struct ms *m = (struct ms *)op;

    m->calls++;
    if (op->flags & GYRE_OP_BUFFER) {
        ASSERT_LT(m->nids, NBUF);
        m->ids[m->nids++] = op->buf_id;
        m->bytes += (size_t)op->result;
    }
    if (!(op->flags & GYRE_OP_MORE))
        m->final = 1;
}

/* Takes `want` buffers of pool out, each with BUFSZ bytes of `c`, through
 * a multishot recv on rfd (written through wfd), which then ends. */
static void take_buffers(gyre_loop *loop, gyre_bufpool *pool, int rfd, int wfd, int want,
                         struct ms *m, char c)
{
    char data[NBUF * BUFSZ];

    memset(m, 0, sizeof *m);
    memset(data, c, sizeof data);
    gyre_op_recv_multishot(&m->op, rfd, pool);
    ASSERT_EQ(gyre_submit(loop, &m->op, ms_cb), 0);
    test_write_bytes(wfd, data, (size_t)want * BUFSZ);
    for (int i = 0; i < 100000 && m->bytes < (size_t)want * BUFSZ; i++)
        gyre_loop_run(loop, GYRE_RUN_ONCE);
    ASSERT_EQ(m->bytes, (size_t)want * BUFSZ);
    ASSERT_EQ(m->nids, want);
    ASSERT_EQ(gyre_cancel(loop, &m->op), 0);
    test_run_until(loop, &m->final, 1);
    ASSERT_EQ(m->nids, want);
    ASSERT_EQ(gyre_bufpool_available(pool), NBUF - want);
}

struct put_op {
    gyre_op op;
    int calls;
    int64_t result;
    gyre_bufpool *pool;
    uint32_t id;
    uint32_t avail_in_cb;
};

static void put_cb(gyre_op *op)
{
    struct put_op *p = (struct put_op *)op;

    p->calls++;
    p->result = op->result;
    p->avail_in_cb = gyre_bufpool_available(p->pool);
    /* Already back: a second put is refused. */
    ASSERT_EQ(gyre_bufpool_put(p->pool, p->id), -EINVAL);
}

void test_op_send_bufpool_put(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_bufpool *pool;
    struct ms m;
    struct put_op s[NBUF];
    char buf[NBUF * BUFSZ];
    static char fillbuf[1 << 16];
    int a[2], b[2];

    ASSERT_EQ(gyre_bufpool_new(loop, &pool, NBUF, BUFSZ), 0);
    test_socketpair(a);
    test_socketpair(b);
    take_buffers(loop, pool, a[1], a[0], 3, &m, 'e');
    memset(s, 0, sizeof s);
    for (int i = 0; i < NBUF; i++)
        s[i].pool = pool;

    /* Refused at submit (the buffer stays out): not a send, not out, another
     * id range. */
    gyre_op_recv(&s[0].op, b[0], gyre_bufpool_buf(pool, m.ids[0]), BUFSZ, 0);
    gyre_op_set_bufpool_put(&s[0].op, pool, m.ids[0]);
    ASSERT_EQ(gyre_submit(loop, &s[0].op, put_cb), -EINVAL);
    gyre_op_send(&s[0].op, b[0], "x", 1, 0);
    gyre_op_set_bufpool_put(&s[0].op, pool, NBUF);
    ASSERT_EQ(gyre_submit(loop, &s[0].op, put_cb), -EINVAL);
    gyre_op_set_bufpool_put(&s[0].op, NULL, m.ids[0]);
    ASSERT_EQ(gyre_submit(loop, &s[0].op, put_cb), -EINVAL);
    {
        uint32_t in_pool = 0;

        while (in_pool == m.ids[0] || in_pool == m.ids[1] || in_pool == m.ids[2])
            in_pool++;
        gyre_op_set_bufpool_put(&s[0].op, pool, in_pool);
        ASSERT_EQ(gyre_submit(loop, &s[0].op, put_cb), -EINVAL);
    }
    ASSERT_EQ(gyre_bufpool_available(pool), NBUF - 3);

    /* A whole send: the bytes go, the buffer comes back before the callback. */
    s[0].id = m.ids[0];
    gyre_op_send(&s[0].op, b[0], gyre_bufpool_buf(pool, m.ids[0]), BUFSZ, 0);
    gyre_op_set_bufpool_put(&s[0].op, pool, m.ids[0]);
    ASSERT_EQ(gyre_submit(loop, &s[0].op, put_cb), 0);
    test_run_until(loop, &s[0].calls, 1);
    ASSERT_EQ(s[0].result, BUFSZ);
    ASSERT_EQ(s[0].avail_in_cb, NBUF - 2);
    ASSERT_EQ(drain(b[1], buf, sizeof buf), BUFSZ);
    for (int j = 0; j < BUFSZ; j++)
        ASSERT_EQ(buf[j], 'e');

    /* A failed send (peer shut down for writing on our side): back too. */
    {
        int c[2];

        test_socketpair(c);
        ASSERT_SYS(shutdown(c[0], SHUT_WR));
        s[1].id = m.ids[1];
        gyre_op_send(&s[1].op, c[0], gyre_bufpool_buf(pool, m.ids[1]), BUFSZ, 0);
        gyre_op_set_bufpool_put(&s[1].op, pool, m.ids[1]);
        ASSERT_EQ(gyre_submit(loop, &s[1].op, put_cb), 0);
        test_run_until(loop, &s[1].calls, 1);
        ASSERT_EQ(s[1].result, -EPIPE);
        ASSERT_EQ(s[1].avail_in_cb, NBUF - 1);
        test_close(c[0]);
        test_close(c[1]);
    }

    /* A cancelled send (the socket is full): back too, once. */
    {
        int c, d;
        size_t filled = 0;
        ssize_t n;

        test_tcp_pair(&c, &d);
        while ((n = send(c, fillbuf, sizeof fillbuf, MSG_DONTWAIT)) > 0)
            filled += (size_t)n;
        ASSERT_GT(filled, 0);
        s[2].id = m.ids[2];
        gyre_op_send(&s[2].op, c, gyre_bufpool_buf(pool, m.ids[2]), BUFSZ, 0);
        gyre_op_set_bufpool_put(&s[2].op, pool, m.ids[2]);
        ASSERT_EQ(gyre_submit(loop, &s[2].op, put_cb), 0);
        test_run_nowait(loop, 2);
        ASSERT_EQ(s[2].calls, 0);
        ASSERT_EQ(gyre_bufpool_available(pool), NBUF - 1);
        ASSERT_EQ(gyre_cancel(loop, &s[2].op), 0);
        test_run_until(loop, &s[2].calls, 1);
        ASSERT_EQ(s[2].result, -ECANCELED);
        ASSERT_EQ(s[2].avail_in_cb, NBUF);
        test_close(c);
        test_close(d);
    }
    test_run_nowait(loop, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(s[i].calls, 1);
    ASSERT_EQ(gyre_bufpool_available(pool), NBUF);
    ASSERT_EQ(gyre_bufpool_free(pool), 0);
    test_close(a[0]);
    test_close(a[1]);
    test_close(b[0]);
    test_close(b[1]);
    test_loop_free(loop);
}
