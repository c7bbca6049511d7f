/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-link.c: the link rule of gyre.h's table, one test per row that
 * matters, with every op of a chain submitted before the loop runs (so that
 * io_uring gets the whole chain in one submission and links it in the
 * kernel, where a difference from the emulation shows).
 *
 * Outcomes are counted, never timed. Under GYRE_FAULTS (eagain, eintr,
 * delay) nothing here changes; a `short` injection may shorten a transfer
 * that need not be whole, which the table lets through (a recv without
 * MSG_WAITALL still holds its link), so the tests that meet it accept any
 * prefix and assert the same link outcome.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"

struct lop {
    struct test_op t;
    int order;
};

static int lop_seq;

static void lop_cb(gyre_op *op)
{
    struct lop *l = (struct lop *)op;

    test_op_cb(op);
    l->order = ++lop_seq;
}

/* Submits l (prepared), linked to the next op if `linked`. */
static void lop_submit(gyre_loop *loop, struct lop *l, int linked)
{
    l->t.calls = 0;
    l->t.result = INT64_MIN;
    l->order = 0;
    if (linked)
        gyre_op_set_link(&l->t.op);
    ASSERT_EQ(gyre_submit(loop, &l->t.op, lop_cb), 0);
    ASSERT_EQ(l->t.calls, 0);
}

/* Runs until l[0..n) completed, then asserts each did exactly once. */
static void lop_wait(gyre_loop *loop, struct lop *l, int n)
{
    for (int i = 0; i < n; i++)
        test_run_until(loop, &l[i].t.calls, 1);
    test_run_nowait(loop, 3);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(l[i].t.calls, 1);
}

static uint64_t faults_short(gyre_loop *loop)
{
    gyre_stats st;

    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    return st.faults_short;
}

/* Row "timeout": an expired TIMEOUT completes with 0 and holds its link.
 * (io_uring's TIMEOUT ends with -ETIME, which breaks a kernel link unless
 * IORING_TIMEOUT_ETIME_SUCCESS (5.16+) says otherwise; gyre once let the
 * nop fail with -ECANCELED there.) A cancelled one breaks it. */
void test_op_link_timeout_nop(void)
{
    gyre_loop *loop = test_loop_new();
    struct lop l[3];

    memset(l, 0, sizeof l);
    gyre_op_timeout(&l[0].t.op, MS(20));
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 1);
    gyre_op_timeout(&l[2].t.op, MS(1));
    lop_submit(loop, &l[2], 0);
    lop_wait(loop, l, 3);
    ASSERT_EQ(l[0].t.result, 0);
    ASSERT_EQ(l[1].t.result, 0);
    ASSERT_EQ(l[2].t.result, 0);
    ASSERT_LT(l[0].order, l[1].order);
    ASSERT_LT(l[1].order, l[2].order);

    /* A timeout cancelled before it expires breaks the chain. */
    gyre_op_timeout(&l[0].t.op, SEC(3600));
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 0);
    test_run_nowait(loop, 2);
    ASSERT_EQ(l[0].t.calls, 0);
    ASSERT_EQ(gyre_cancel(loop, &l[0].t.op), 0);
    lop_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, -ECANCELED);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    test_loop_free(loop);
}

/* Row "recv without MSG_WAITALL": any count holds the link, a short one
 * and 0 at end of stream included (io_uring's rule: only MSG_WAITALL makes a
 * short recv fail its link; the emulation once broke it). */
void test_op_link_recv_short(void)
{
    gyre_loop *loop = test_loop_new();
    struct lop l[2];
    char buf[16];
    int sp[2];

    memset(l, 0, sizeof l);
    test_socketpair(sp);
    test_write_bytes(sp[1], "abc", 3);
    gyre_op_recv(&l[0].t.op, sp[0], buf, 10, 0);
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 0);
    lop_wait(loop, l, 2);
    if (faults_short(loop) == 0)
        ASSERT_EQ(l[0].t.result, 3);
    ASSERT_TRUE(l[0].t.result >= 1 && l[0].t.result <= 3);
    ASSERT_EQ(memcmp(buf, "abc", (size_t)l[0].t.result), 0);
    ASSERT_EQ(l[1].t.result, 0);
    ASSERT_LT(l[0].order, l[1].order);

    /* End of stream: 0 holds the link too. */
    test_close(sp[1]);
    for (int i = 0; i < 4; i++) {
        gyre_op_recv(&l[0].t.op, sp[0], buf, sizeof buf, 0);
        lop_submit(loop, &l[0], 1);
        gyre_op_nop(&l[1].t.op);
        lop_submit(loop, &l[1], 0);
        lop_wait(loop, l, 2);
        if (l[0].t.result == 0)
            break;
        ASSERT_TRUE(l[0].t.result > 0); /* the rest of "abc" after a short fault */
        ASSERT_EQ(l[1].t.result, 0);
    }
    ASSERT_EQ(l[0].t.result, 0);
    ASSERT_EQ(l[1].t.result, 0);
    test_close(sp[0]);
    test_loop_free(loop);
}

/* Row "recv with MSG_WAITALL" on a stream: it completes whole (retried
 * after a partial receive) and holds; it ends short only at end of stream or
 * on an error, and then breaks the link. */
void test_op_link_recv_waitall(void)
{
    gyre_loop *loop = test_loop_new();
    struct lop l[2];
    char buf[16];
    int sp[2];

    memset(l, 0, sizeof l);
    test_socketpair(sp);
    test_write_bytes(sp[1], "abc", 3);
    gyre_op_recv(&l[0].t.op, sp[0], buf, 6, MSG_WAITALL);
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 0);
    test_run_nowait(loop, 4);
    ASSERT_EQ(l[0].t.calls, 0); /* half there: it waits for the rest */
    ASSERT_EQ(l[1].t.calls, 0);
    test_write_bytes(sp[1], "def", 3);
    lop_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, 6);
    ASSERT_EQ(memcmp(buf, "abcdef", 6), 0);
    ASSERT_EQ(l[1].t.result, 0);
    ASSERT_LT(l[0].order, l[1].order);

    /* End of stream after 2 of 6 bytes: short, and the link breaks. */
    test_write_bytes(sp[1], "gh", 2);
    ASSERT_SYS(shutdown(sp[1], SHUT_WR));
    gyre_op_recv(&l[0].t.op, sp[0], buf, 6, MSG_WAITALL);
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 0);
    lop_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, 2);
    ASSERT_EQ(memcmp(buf, "gh", 2), 0);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* Row "recv with MSG_WAITALL" on datagrams: one datagram, never retried; the
 * link holds only if it filled the buffer exactly (a shorter one, or a
 * truncated longer one, breaks it: io_uring's rule). */
void test_op_link_recv_waitall_dgram(void)
{
    static const struct {
        const char *msg;
        size_t len;
        int64_t res;
        int64_t next;
    } cases[] = {
        {"abcd", 4, 4, 0},
        {"ab", 2, 2, -ECANCELED},
        {"abcdefgh", 8, 4, -ECANCELED},
    };
    gyre_loop *loop = test_loop_new();
    struct lop l[2];
    char buf[16];
    int sp[2];

    memset(l, 0, sizeof l);
    ASSERT_SYS(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ASSERT_EQ(send(sp[1], cases[i].msg, cases[i].len, 0), (ssize_t)cases[i].len);
        memset(buf, 0, sizeof buf);
        gyre_op_recv(&l[0].t.op, sp[0], buf, 4, MSG_WAITALL);
        lop_submit(loop, &l[0], 1);
        gyre_op_nop(&l[1].t.op);
        lop_submit(loop, &l[1], 0);
        lop_wait(loop, l, 2);
        ASSERT_EQ(l[0].t.result, cases[i].res);
        ASSERT_EQ(memcmp(buf, cases[i].msg, (size_t)cases[i].res), 0);
        ASSERT_EQ(l[1].t.result, cases[i].next);
    }
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* Row "write/writev/send/sendmsg at the current position, linked": moved
 * whole (retried after a partial transfer, on a socket by MSG_WAITALL) and
 * the link holds. 1 MiB does not fit a socketpair's buffer, so every
 * backend meets a partial transfer; the reader is an unlinked recv loop. */
struct drain {
    struct test_op t;
    gyre_loop *loop;
    int fd;
    size_t got, want;
    uint64_t hash;
    char buf[65536];
};

static void drain_cb(gyre_op *op)
{
    struct drain *d = (struct drain *)op;

    ASSERT_TRUE(op->result > 0);
    d->hash = test_fnv(d->hash, d->buf, (size_t)op->result);
    d->got += (size_t)op->result;
    if (d->got == d->want) {
        d->t.calls = 1;
        return;
    }
    gyre_op_recv(&d->t.op, d->fd, d->buf, sizeof d->buf, 0);
    ASSERT_EQ(gyre_submit(d->loop, &d->t.op, drain_cb), 0);
}

void test_op_link_write_whole(void)
{
    const size_t len = (size_t)1 << 20;
    gyre_loop *loop = test_loop_new();
    struct drain *d = calloc(1, sizeof *d);
    char *data = malloc(len);
    struct iovec iov[3];
    struct msghdr msg;
    struct lop l[2];
    int sp[2];

    ASSERT_TRUE(d != NULL && data != NULL);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 7 + (i >> 12));
    test_socketpair(sp);
    for (int kind = 0; kind < 4; kind++) {
        memset(l, 0, sizeof l);
        switch (kind) {
        case 0:
            gyre_op_write(&l[0].t.op, sp[1], data, (uint32_t)len, GYRE_OFF_CUR);
            break;
        case 1:
            iov[0] = (struct iovec){data, 1000};
            iov[1] = (struct iovec){data + 1000, len / 2 - 1000};
            iov[2] = (struct iovec){data + len / 2, len / 2};
            gyre_op_writev(&l[0].t.op, sp[1], iov, 3, GYRE_OFF_CUR);
            break;
        case 2:
            gyre_op_send(&l[0].t.op, sp[1], data, (uint32_t)len, 0);
            break;
        default:
            iov[0] = (struct iovec){data, len / 3};
            iov[1] = (struct iovec){data + len / 3, len - len / 3};
            memset(&msg, 0, sizeof msg);
            msg.msg_iov = iov;
            msg.msg_iovlen = 2;
            gyre_op_sendmsg(&l[0].t.op, sp[1], &msg, 0);
            break;
        }
        lop_submit(loop, &l[0], 1);
        gyre_op_nop(&l[1].t.op);
        lop_submit(loop, &l[1], 0);
        d->loop = loop;
        d->fd = sp[0];
        d->got = 0;
        d->want = len;
        d->hash = TEST_FNV_INIT;
        d->t.calls = 0;
        gyre_op_recv(&d->t.op, sp[0], d->buf, sizeof d->buf, 0);
        ASSERT_EQ(gyre_submit(loop, &d->t.op, drain_cb), 0);
        lop_wait(loop, l, 2);
        ASSERT_EQ(l[0].t.result, (int64_t)len);
        ASSERT_EQ(l[1].t.result, 0);
        ASSERT_LT(l[0].order, l[1].order);
        test_run_until(loop, &d->t.calls, 1);
        ASSERT_EQ(d->got, len);
        ASSERT_EQ(d->hash, test_fnv(TEST_FNV_INIT, data, len));
    }
    test_close(sp[0]);
    test_close(sp[1]);
    free(data);
    free(d);
    test_loop_free(loop);
}

/* Row "read at an offset": a short read (end of file) breaks the link, a
 * whole one holds it. */
void test_op_link_file_short(void)
{
    gyre_loop *loop = test_loop_new();
    struct lop l[2];
    char path[256], buf[16];
    int fd;

    test_tmppath(path, sizeof path, "link-short");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_write_bytes(fd, "hello", 5);
    memset(l, 0, sizeof l);
    gyre_op_read(&l[0].t.op, fd, buf, 5, 0);
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 0);
    lop_wait(loop, l, 2);
    if (faults_short(loop) == 0)
        ASSERT_EQ(l[0].t.result, 5);
    ASSERT_EQ(l[1].t.result, l[0].t.result == 5 ? 0 : -ECANCELED);

    gyre_op_read(&l[0].t.op, fd, buf, 10, 0);
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 0);
    lop_wait(loop, l, 2);
    if (faults_short(loop) == 0)
        ASSERT_EQ(l[0].t.result, 5);
    ASSERT_TRUE(l[0].t.result >= 0 && l[0].t.result <= 5);
    ASSERT_EQ(memcmp(buf, "hello", (size_t)l[0].t.result), 0);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    test_close(fd);
    test_loop_free(loop);
}

/* Row "any op that fails": it breaks the chain, and every op behind it
 * completes with -ECANCELED without running (an openat that fails, then a
 * write and a poll that must not happen); a poll's mask holds a link. */
void test_op_link_fail_rest(void)
{
    gyre_loop *loop = test_loop_new();
    struct lop l[4];
    char c;
    int p[2];

    memset(l, 0, sizeof l);
    test_pipe(p);
    gyre_op_openat(&l[0].t.op, AT_FDCWD, "/nonexistent/gyre-link", O_RDONLY, 0);
    lop_submit(loop, &l[0], 1);
    gyre_op_write(&l[1].t.op, p[1], "never", 5, GYRE_OFF_CUR);
    lop_submit(loop, &l[1], 1);
    gyre_op_poll(&l[2].t.op, p[1], GYRE_OUT);
    lop_submit(loop, &l[2], 1);
    gyre_op_nop(&l[3].t.op);
    lop_submit(loop, &l[3], 0);
    lop_wait(loop, l, 4);
    ASSERT_EQ(l[0].t.result, -ENOENT);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    ASSERT_EQ(l[2].t.result, -ECANCELED);
    ASSERT_EQ(l[3].t.result, -ECANCELED);
    ASSERT_EQ(read(p[0], &c, 1), -1);
    ASSERT_EQ(errno, EAGAIN);

    /* The same chain from a poll that succeeds: it holds. */
    gyre_op_poll(&l[0].t.op, p[1], GYRE_OUT);
    lop_submit(loop, &l[0], 1);
    gyre_op_write(&l[1].t.op, p[1], "ok", 2, GYRE_OFF_CUR);
    lop_submit(loop, &l[1], 1);
    gyre_op_nop(&l[2].t.op);
    lop_submit(loop, &l[2], 0);
    lop_wait(loop, l, 3);
    ASSERT_EQ(l[0].t.result, GYRE_OUT);
    ASSERT_EQ(l[1].t.result, 2);
    ASSERT_EQ(l[2].t.result, 0);
    test_read_bytes(p[0], &c, 1);
    ASSERT_EQ(c, 'o');
    test_read_bytes(p[0], &c, 1);

    /* A close heads a chain too, though io_uring never links one in the
     * kernel (the core carries its link): its failure breaks the chain.
     * (gyre once dropped the link of a close being submitted on io_uring,
     * and the nop ran on its own.) */
    gyre_op_close(&l[0].t.op, test_bad_fd());
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 0);
    lop_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, -EBADF);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* Row "deadline": an op whose deadline fires completes with -ETIME and the
 * rest of its chain with -ECANCELED (a fired LINK_TIMEOUT on io_uring). */
void test_op_link_deadline_fires(void)
{
    gyre_loop *loop = test_loop_new();
    struct lop l[3];
    char buf[8], c;
    int sp[2];

    memset(l, 0, sizeof l);
    test_socketpair(sp);
    gyre_op_recv(&l[0].t.op, sp[0], buf, sizeof buf, 0);
    gyre_op_set_deadline(&l[0].t.op, MS(10));
    lop_submit(loop, &l[0], 1);
    gyre_op_nop(&l[1].t.op);
    lop_submit(loop, &l[1], 1);
    gyre_op_send(&l[2].t.op, sp[0], "x", 1, 0);
    lop_submit(loop, &l[2], 0);
    lop_wait(loop, l, 3);
    ASSERT_EQ(l[0].t.result, -ETIME);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    ASSERT_EQ(l[2].t.result, -ECANCELED);
    ASSERT_EQ(read(sp[1], &c, 1), -1); /* the send never ran */
    ASSERT_EQ(errno, EAGAIN);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}
