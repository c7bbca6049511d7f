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
