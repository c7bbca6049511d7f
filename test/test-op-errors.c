/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-errors.c: operation error results and gyre_submit()'s argument
 * checks on every backend -- the syscall's own -errno (EBADF, ECONNREFUSED,
 * EPIPE, ECONNRESET, ENOENT), end of file as 0, writes to a closed pipe that
 * must not raise SIGPIPE, and submits that fail (-EINVAL, -EBUSY) and so must
 * never call back. Callbacks never run inside gyre_submit(), including for
 * ops whose result is known at once.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"

void test_op_bad_fd(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    int bad = test_bad_fd();
    char buf[8] = "abcdefg";

    gyre_op_read(&t.op, bad, buf, sizeof buf, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    gyre_op_read(&t.op, bad, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    gyre_op_write(&t.op, bad, buf, sizeof buf, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    gyre_op_write(&t.op, bad, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    gyre_op_recv(&t.op, bad, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    gyre_op_send(&t.op, bad, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    gyre_op_fsync(&t.op, bad, 0);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    gyre_op_fsync(&t.op, bad, 1);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    gyre_op_close(&t.op, bad);
    ASSERT_EQ(test_op_run(loop, &t), -EBADF);
    test_loop_free(loop);
}

void test_op_connect_refused(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    /* A port that was just bound and released, with nobody listening. */
    ASSERT_SYS(probe);
    ASSERT_SYS(fd);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_SYS(bind(probe, (struct sockaddr *)&addr, sizeof addr));
    ASSERT_SYS(getsockname(probe, (struct sockaddr *)&addr, &len));
    test_close(probe);
    gyre_op_connect(&t.op, fd, (struct sockaddr *)&addr, sizeof addr);
    ASSERT_EQ(test_op_run(loop, &t), -ECONNREFUSED);
    test_close(fd);
    test_loop_free(loop);
}

void test_op_read_eof(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    int p[2], sp[2];
    char buf[8];

    /* Pipe: the last bytes, then 0, and 0 again. */
    test_pipe(p);
    test_write_bytes(p[1], "end", 3);
    test_close(p[1]);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 3);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    test_close(p[0]);

    /* A read waiting when the writer goes away. */
    test_pipe(p);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 0);
    test_close(p[1]);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, 0);
    test_close(p[0]);

    /* Socket after the peer's shutdown. */
    test_socketpair(sp);
    ASSERT_SYS(shutdown(sp[0], SHUT_WR));
    gyre_op_recv(&t.op, sp[1], buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* SIGPIPE at its default disposition (which kills) and not blocked, so a
 * signal raised by a write would end the test process. */
static void sigpipe_default(void)
{
    sigset_t set;

    ASSERT_TRUE(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    ASSERT_EQ(sigprocmask(SIG_UNBLOCK, &set, NULL), 0);
}

/* Still default, still unblocked, and none pending that a later unblock
 * would deliver. */
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

void test_op_write_epipe(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct iovec iov = {(void *)"vec", 3};
    int p[2];

    sigpipe_default();
    test_pipe(p);
    test_close(p[0]);
    gyre_op_write(&t.op, p[1], "x", 1, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), -EPIPE);
    assert_sigpipe_untouched();
    gyre_op_writev(&t.op, p[1], &iov, 1, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), -EPIPE);
    assert_sigpipe_untouched();

    /* A write waiting on a full pipe when the reader goes away. */
    test_close(p[1]);
    test_pipe(p);
    {
        static char fill[1 << 16];
        ssize_t n;

        while ((n = write(p[1], fill, sizeof fill)) > 0)
            continue;
        ASSERT_EQ(errno, EAGAIN);
        gyre_op_write(&t.op, p[1], fill, sizeof fill, GYRE_OFF_CUR);
        test_op_submit(loop, &t);
        test_run_nowait(loop, 3);
        ASSERT_EQ(t.calls, 0);
        test_close(p[0]);
        test_run_until(loop, &t.calls, 1);
        test_run_nowait(loop, 3);
        ASSERT_EQ(t.calls, 1);
        ASSERT_EQ(t.result, -EPIPE);
    }
    assert_sigpipe_untouched();
    test_close(p[1]);
    test_loop_free(loop);
}

static int run_for_done;

static void run_for_cb(gyre_timer *t)
{
    (void)t;
    run_for_done = 1;
}

/* Runs the loop (blocking) until ns have passed. */
static void run_for(gyre_loop *loop, uint64_t ns)
{
    gyre_timer t;

    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    run_for_done = 0;
    ASSERT_EQ(gyre_timer_start(&t, run_for_cb, ns, 0), 0);
    test_run_until(loop, &run_for_done, 1);
}

/* -EAGAIN never reaches a callback, also where io_uring lets one through: a
 * sendmsg (gyre's writev to a socket, or a sendmsg) on a socket whose own
 * read side is shut down, with no room. Its poll wakes at once (the socket
 * reads as hung up), so io_uring retries it until it gives it to io-wq,
 * which runs it without MSG_DONTWAIT but honours O_NONBLOCK: -EAGAIN, in the
 * CQE (6.18). The op must wait for room instead, as it does elsewhere. */
void test_op_write_no_eagain(void)
{
    gyre_loop *loop = test_loop_new();
    static char fill[1 << 16], sink[1 << 20];
    struct test_op t[2];
    struct iovec iov[2] = {{fill, 500}, {fill + 500, 501}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    int sp[2], sz = 1;

    memset(t, 0, sizeof t);
    test_socketpair(sp);
    ASSERT_SYS(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz));
    ASSERT_SYS(shutdown(sp[0], SHUT_RD));
    while (write(sp[0], fill, sizeof fill) > 0)
        continue;
    ASSERT_EQ(errno, EAGAIN);
    gyre_op_writev(&t[0].op, sp[0], iov, 2, GYRE_OFF_CUR);
    test_op_submit(loop, &t[0]);
    gyre_op_sendmsg(&t[1].op, sp[0], &msg, 0);
    test_op_submit(loop, &t[1]);
    /* Long enough for io_uring to start a worker and for it to answer. */
    run_for(loop, MS(100));
    ASSERT_EQ(t[0].calls, 0);
    ASSERT_EQ(t[1].calls, 0);
    /* Room: both go out. */
    while (t[0].calls + t[1].calls < 2) {
        while (read(sp[1], sink, sizeof sink) > 0)
            continue;
        test_run_nowait(loop, 1);
    }
    ASSERT_GT(t[0].result, 0);
    ASSERT_GT(t[1].result, 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

static int half_watch_calls;

static void half_watch_cb(gyre_watch *w, uint32_t events)
{
    ASSERT_TRUE(events & GYRE_OUT);
    ASSERT_EQ(events & GYRE_RDHUP, 0); /* not asked for */
    half_watch_calls++;
    ASSERT_EQ(gyre_watch_stop(w), 0);
}

/* Waiting for room on a socket whose read side is shut down: io_uring polls
 * for RDHUP always, and that state lasts, so an arm re-armed after firing for
 * it alone fires again at once; the loop once spun there (hundreds of
 * thousands of iterations a second), and a poll op for GYRE_OUT completed
 * with only RDHUP. Nothing may happen until there is room, and then the
 * watch, the poll and the write all see it. */
void test_op_half_shut_waits(void)
{
    gyre_loop *loop = test_loop_new();
    static char fill[1 << 16], sink[1 << 20];
    struct test_op t[2];
    struct iovec iov[2] = {{fill, 10}, {fill + 10, 11}};
    gyre_watch w;
    gyre_stats st;
    uint64_t before;
    int sp[2], sz = 1;

    memset(t, 0, sizeof t);
    half_watch_calls = 0;
    test_socketpair(sp);
    ASSERT_SYS(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz));
    ASSERT_SYS(shutdown(sp[0], SHUT_RD));
    while (write(sp[0], fill, sizeof fill) > 0)
        continue;
    ASSERT_EQ(errno, EAGAIN);
    gyre_op_writev(&t[0].op, sp[0], iov, 2, GYRE_OFF_CUR);
    test_op_submit(loop, &t[0]);
    gyre_op_poll(&t[1].op, sp[0], GYRE_OUT);
    test_op_submit(loop, &t[1]);
    ASSERT_EQ(gyre_watch_init(loop, &w, sp[0]), 0);
    ASSERT_EQ(gyre_watch_start(&w, GYRE_OUT, half_watch_cb), 0);
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    before = st.iterations;
    run_for(loop, MS(100));
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    ASSERT_LT(st.iterations - before, 1000);
    ASSERT_EQ(t[0].calls + t[1].calls + half_watch_calls, 0);
    while (t[0].calls + t[1].calls + half_watch_calls < 3) {
        while (read(sp[1], sink, sizeof sink) > 0)
            continue;
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
    }
    ASSERT_EQ(t[0].result, 21);
    ASSERT_TRUE(t[1].result & GYRE_OUT);
    ASSERT_EQ(t[1].result & GYRE_RDHUP, 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

void test_op_send_reset(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    int c, s, i;

    sigpipe_default();
    test_tcp_pair(&c, &s);
    ASSERT_SYS(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    test_close(s); /* sends RST */
    /* The first send may report the reset, later ones the broken pipe;
     * both are errors and neither may raise SIGPIPE. Also a write and a
     * writev, which io_uring carries as a send and a sendmsg. */
    for (i = 0; i < 5; i++) {
        struct iovec iov[2] = {{(void *)"da", 2}, {(void *)"ta", 2}};
        int64_t r;

        if (i == 3)
            gyre_op_write(&t.op, c, "data", 4, GYRE_OFF_CUR);
        else if (i == 4)
            gyre_op_writev(&t.op, c, iov, 2, GYRE_OFF_CUR);
        else
            gyre_op_send(&t.op, c, "data", 4, 0);
        r = test_op_run(loop, &t);
        if (r != -EPIPE && r != -ECONNRESET)
            test_fail(__FILE__, __LINE__,
                      "send %d to a reset socket: %jd, want -EPIPE or "
                      "-ECONNRESET",
                      i, (intmax_t)r);
        assert_sigpipe_untouched();
    }
    test_close(c);
    test_loop_free(loop);
}

void test_op_openat_missing(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char path[4096];

    test_tmppath(path, sizeof path, "missing");
    gyre_op_openat(&t.op, AT_FDCWD, path, O_RDONLY, 0);
    ASSERT_EQ(test_op_run(loop, &t), -ENOENT);
    test_tmppath(path, sizeof path, "no-dir/file");
    gyre_op_openat(&t.op, AT_FDCWD, path, O_WRONLY | O_CREAT, 0600);
    ASSERT_EQ(test_op_run(loop, &t), -ENOENT);
    test_loop_free(loop);
}

void test_op_statx_missing(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct statx stx;
    char path[4096];

    test_tmppath(path, sizeof path, "missing");
    gyre_op_statx(&t.op, AT_FDCWD, path, 0, STATX_SIZE, &stx);
    ASSERT_EQ(test_op_run(loop, &t), -ENOENT);
    test_loop_free(loop);
}

static int never_calls;

static void never_cb(gyre_op *op)
{
    (void)op;
    never_calls++;
}

static int64_t zero_fn(void *arg)
{
    (void)arg;
    return 0;
}

void test_op_submit_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    static struct iovec iov[IOV_MAX + 1];
    gyre_bufpool *pool = NULL;
    gyre_op op;
    char buf[8];
    int p[2];

    memset(&op, 0, sizeof op);
    test_pipe(p);
    gyre_op_nop(&op);
    ASSERT_EQ(gyre_submit(NULL, &op, never_cb), -EINVAL);
    ASSERT_EQ(gyre_submit(loop, NULL, never_cb), -EINVAL);
    ASSERT_EQ(gyre_submit(loop, &op, NULL), -EINVAL);

    /* fd < 0, for each kind of op that names one. */
    gyre_op_read(&op, -1, buf, sizeof buf, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_write(&op, -2, buf, sizeof buf, 0);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_recv(&op, -1, buf, sizeof buf, 0);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_send(&op, -1, buf, sizeof buf, 0);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_readv(&op, -1, iov, 1, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_accept(&op, -1, NULL, NULL, 0);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_poll(&op, -1, GYRE_IN);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_fsync(&op, -1, 0);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_close(&op, -1);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_accept_multishot(&op, -1);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);

    /* Lengths over INT32_MAX. */
    gyre_op_read(&op, p[0], buf, (uint32_t)INT32_MAX + 1u, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_write(&op, p[1], buf, UINT32_MAX, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_recv(&op, p[0], buf, UINT32_MAX, 0);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_send(&op, p[1], buf, (uint32_t)INT32_MAX + 1u, 0);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);

    /* iovcnt over IOV_MAX. */
    gyre_op_readv(&op, p[0], iov, IOV_MAX + 1, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_writev(&op, p[1], iov, IOV_MAX + 1, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_writev(&op, p[1], iov, UINT32_MAX, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);

    /* Unknown lanes, a missing work function. */
    gyre_op_work(&op, zero_fn, NULL, GYRE_LANES);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_work(&op, zero_fn, NULL, -1);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    gyre_op_work(&op, NULL, NULL, GYRE_LANE_SLOW);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);

    /* Multishot recv without a pool. */
    gyre_op_recv_multishot(&op, p[0], NULL);
    ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
    /* ... or with another loop's pool. */
    {
        gyre_loop *other = test_loop_new();

        ASSERT_EQ(gyre_bufpool_new(other, &pool, 4, 64), 0);
        gyre_op_recv_multishot(&op, p[0], pool);
        ASSERT_EQ(gyre_submit(loop, &op, never_cb), -EINVAL);
        ASSERT_EQ(gyre_bufpool_free(pool), 0);
        test_loop_free(other);
    }

    /* Nothing was queued: no callback, nothing alive, the loop frees. */
    ASSERT_EQ(gyre_loop_alive(loop), 0);
    test_run_nowait(loop, 5);
    ASSERT_EQ(never_calls, 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_submit_busy(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[8];
    int p[2];

    test_pipe(p);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    /* In flight: resubmitting is refused and changes nothing. */
    ASSERT_EQ(gyre_submit(loop, &t.op, never_cb), -EBUSY);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t.calls, 0);
    test_write_bytes(p[1], "abc", 3);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, 3);
    ASSERT_EQ(never_calls, 0);

    /* Also while its completion is due but not yet delivered: a nop. */
    gyre_op_nop(&t.op);
    test_op_submit(loop, &t);
    ASSERT_EQ(gyre_submit(loop, &t.op, never_cb), -EBUSY);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, 0);
    ASSERT_EQ(never_calls, 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* Callbacks run from gyre_loop_run(), never from gyre_submit(): even for
 * ops whose result is known at once, and for submits made inside another
 * op's callback. */
static int in_submit;
static int nested_calls;

static void flag_cb(gyre_op *op)
{
    if (in_submit)
        FAIL("callback ran inside gyre_submit()");
    test_op_cb(op);
}

static int checked_submit(gyre_loop *loop, gyre_op *op, gyre_op_cb cb)
{
    int rc;

    in_submit = 1;
    rc = gyre_submit(loop, op, cb);
    in_submit = 0;
    return rc;
}

static struct test_op nested_child;

static void nesting_cb(gyre_op *op)
{
    if (in_submit)
        FAIL("callback ran inside gyre_submit()");
    test_op_cb(op);
    gyre_op_nop(&nested_child.op);
    ASSERT_EQ(checked_submit(op->data, &nested_child.op, flag_cb), 0);
    ASSERT_EQ(nested_child.calls, 0);
    nested_calls++;
}

void test_op_cb_not_in_submit(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t[8];
    struct test_op parent = {0};
    struct sockaddr_in addr;
    char path[4096], buf[4];
    int p[2], lfd, cfd, fd, i, done = 0;

    memset(t, 0, sizeof t);
    test_pipe(p);
    test_write_bytes(p[1], "abcd", 4);
    lfd = test_tcp_listener(&addr);
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_SYS(cfd);
    ASSERT_SYS(connect(cfd, (struct sockaddr *)&addr, sizeof addr));
    test_tmppath(path, sizeof path, "f");
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);

    gyre_op_nop(&t[0].op);
    gyre_op_read(&t[1].op, p[0], buf, 4, GYRE_OFF_CUR); /* data is there */
    gyre_op_read(&t[2].op, test_bad_fd(), buf, 4, GYRE_OFF_CUR);
    gyre_op_timeout(&t[3].op, 0);
    gyre_op_work(&t[4].op, zero_fn, NULL, GYRE_LANE_FAST);
    gyre_op_accept(&t[5].op, lfd, NULL, NULL, 0); /* connection queued */
    gyre_op_fsync(&t[6].op, fd, 0);
    gyre_op_poll(&t[7].op, p[1], GYRE_OUT);
    for (i = 0; i < 8; i++)
        ASSERT_EQ(checked_submit(loop, &t[i].op, flag_cb), 0);
    for (i = 0; i < 8; i++)
        ASSERT_EQ(t[i].calls, 0);
    for (i = 0; i < 8; i++)
        test_run_until(loop, &t[i].calls, 1);
    test_run_nowait(loop, 3);
    for (i = 0; i < 8; i++) {
        ASSERT_EQ(t[i].calls, 1);
        done++;
    }
    ASSERT_EQ(done, 8);
    ASSERT_EQ(t[1].result, 4);
    ASSERT_EQ(t[2].result, -EBADF);
    ASSERT_GE(t[5].result, 0);
    test_close((int)t[5].result);
    ASSERT_EQ(t[7].result, GYRE_OUT);

    parent.op.data = loop;
    gyre_op_nop(&parent.op);
    ASSERT_EQ(checked_submit(loop, &parent.op, nesting_cb), 0);
    test_run_until(loop, &nested_child.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(parent.calls, 1);
    ASSERT_EQ(nested_calls, 1);
    ASSERT_EQ(nested_child.calls, 1);

    test_close(fd);
    test_close(cfd);
    test_close(lfd);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}
