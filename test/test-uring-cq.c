/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-uring-cq.c: many ops in flight, far more than io_uring's completion
 * queue holds, and cancels issued from the batch that already holds the
 * cancelled op's completion. Named for the backend whose bugs they caught;
 * they run on every backend, as the contract is the same everywhere.
 *
 * The CQ size must not limit how many ops wait: with a ring of 8 entries
 * (a CQ of 32) hundreds of idle reads wait, and a ready read, a timer, a nop
 * and the closes that end the idle reads still complete. A cancel of an op
 * whose completion is already reaped is a no-op: the op completes once, with
 * its real result, and its callback may free it.
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/select.h>
#include <unistd.h>

#include "runner.h"

/* An op that counts its completions by index, in an array that outlives it. */
struct idx_op {
    gyre_op op;
    size_t idx;
    struct batch_ctx *ctx;
};

struct batch_ctx {
    gyre_loop *loop;
    struct idx_op **ops; /* NULL once freed */
    int *calls;
    int64_t *result;
    size_t n;
    int done;
};

static void cancel_next_cb(gyre_op *op)
{
    struct idx_op *o = (struct idx_op *)op;
    struct batch_ctx *c = o->ctx;
    size_t next = o->idx + 1;

    c->calls[o->idx]++;
    c->result[o->idx] = op->result;
    c->done++;
    /* The next op may be in this same batch, its completion reaped: the
     * cancel is accepted (it is in flight until its callback) and must
     * change nothing but, at most, its result. */
    if (next < c->n && c->ops[next] != NULL)
        ASSERT_EQ(gyre_cancel(c->loop, &c->ops[next]->op), 0);
    c->ops[o->idx] = NULL;
    test_poison_free(o, sizeof *o);
}

/* Every op ended once; one that read its byte took it, one cancelled left it. */
static void check_reads(struct batch_ctx *c, const int (*sp)[2])
{
    for (size_t i = 0; i < c->n; i++) {
        char b = 0;

        ASSERT_EQ(c->calls[i], 1);
        ASSERT_TRUE(c->ops[i] == NULL);
        if (c->result[i] == -ECANCELED) {
            test_read_bytes(sp[i][0], &b, 1);
            ASSERT_EQ(b, (char)('a' + i % 26));
        } else {
            ASSERT_EQ(c->result[i], 1);
        }
    }
}

static void batch_cancel_run(size_t n)
{
    gyre_loop *loop = test_loop_new();
    struct batch_ctx c = {0};
    int(*sp)[2] = calloc(n, sizeof *sp);
    char *bufs = calloc(n, 1);

    ASSERT_TRUE(sp != NULL && bufs != NULL);
    c.loop = loop;
    c.n = n;
    c.ops = calloc(n, sizeof *c.ops);
    c.calls = calloc(n, sizeof *c.calls);
    c.result = calloc(n, sizeof *c.result);
    ASSERT_TRUE(c.ops != NULL && c.calls != NULL && c.result != NULL);
    for (size_t i = 0; i < n; i++) {
        char b = (char)('a' + i % 26);

        test_socketpair(sp[i]);
        test_write_bytes(sp[i][1], &b, 1);
        c.ops[i] = calloc(1, sizeof *c.ops[i]);
        ASSERT_TRUE(c.ops[i] != NULL);
        c.ops[i]->idx = i;
        c.ops[i]->ctx = &c;
    }
    /* All submitted before the loop waits: the data is there, so their
     * completions come together and are dispatched in one batch. */
    for (size_t i = 0; i < n; i++) {
        gyre_op_read(&c.ops[i]->op, sp[i][0], &bufs[i], 1, GYRE_OFF_CUR);
        ASSERT_EQ(gyre_submit(loop, &c.ops[i]->op, cancel_next_cb), 0);
    }
    test_run_until(loop, &c.done, (int)n);
    /* A cancel written after the op was freed would show here (ASan), or
     * as a second completion. */
    test_run_nowait(loop, 5);
    ASSERT_EQ(c.done, (int)n);
    check_reads(&c, (const int(*)[2])sp);
    for (size_t i = 0; i < n; i++) {
        if (c.result[i] == 1)
            ASSERT_EQ(bufs[i], (char)('a' + i % 26));
        test_close(sp[i][0]);
        test_close(sp[i][1]);
    }
    test_loop_free(loop);
    free(c.ops);
    free(c.calls);
    free(c.result);
    free(sp);
    free(bufs);
}

/* Two reads whose completions come in one batch: the first callback cancels
 * the second, whose callback then frees it. */
void test_op_cancel_in_batch_free(void)
{
    batch_cancel_run(2);
}

/* The same a thousand times over: each callback cancels the next op, which
 * is most often in the same batch, then frees itself. */
void test_op_cancel_in_batch_many(void)
{
    size_t n = test_scale(1000);

    /* select: every fd below FD_SETSIZE. */
    if (test_backend_is("select") && n > (FD_SETSIZE - 64) / 2)
        n = (FD_SETSIZE - 64) / 2;
    test_nofile(2 * n + 64);
    batch_cancel_run(n);
}

/* --- many ops in flight --- */

/* Completions of the ops below, all test_ops, counted together. */
static int counted;

static void count_cb(gyre_op *op)
{
    test_op_cb(op);
    counted++;
}

static void count_submit(gyre_loop *loop, struct test_op *t)
{
    ASSERT_EQ(gyre_submit(loop, &t->op, count_cb), 0);
    ASSERT_EQ(t->calls, 0); /* never called back from inside submit */
}

struct inflight {
    struct test_op *idle;   /* reads on idle sockets */
    struct test_op *closes; /* one per fd */
    int *sp;                /* pairs: sp[2i] reads, sp[2i+1] writes */
    size_t pairs;
    char *bufs;
};

static void inflight_start(gyre_loop *loop, struct inflight *f, size_t pairs)
{
    f->pairs = pairs;
    f->idle = calloc(pairs, sizeof *f->idle);
    f->closes = calloc(2 * pairs, sizeof *f->closes);
    f->sp = calloc(2 * pairs, sizeof *f->sp);
    f->bufs = calloc(pairs, 16);
    ASSERT_TRUE(f->idle != NULL && f->closes != NULL && f->sp != NULL && f->bufs != NULL);
    for (size_t i = 0; i < pairs; i++) {
        test_socketpair(&f->sp[2 * i]);
        gyre_op_read(&f->idle[i].op, f->sp[2 * i], &f->bufs[16 * i], 16, GYRE_OFF_CUR);
        count_submit(loop, &f->idle[i]);
    }
    test_run_nowait(loop, 3);
    for (size_t i = 0; i < pairs; i++)
        ASSERT_EQ(f->idle[i].calls, 0);
}

/* Closes every fd at once (ops in one burst); each read still waiting
 * (from index `waiting` on) then ends -ECANCELED and each close 0, exactly
 * once. */
static void inflight_close_all(gyre_loop *loop, struct inflight *f, size_t waiting)
{
    int start = counted, expect = (int)(2 * f->pairs + (f->pairs - waiting));

    for (size_t i = 0; i < 2 * f->pairs; i++) {
        gyre_op_close(&f->closes[i].op, f->sp[i]);
        count_submit(loop, &f->closes[i]);
    }
    test_run_until(loop, &counted, start + expect);
    test_run_nowait(loop, 3);
    ASSERT_EQ(counted, start + expect);
    for (size_t i = 0; i < f->pairs; i++) {
        ASSERT_EQ(f->idle[i].calls, 1);
        if (i >= waiting)
            ASSERT_EQ(f->idle[i].result, -ECANCELED);
    }
    for (size_t i = 0; i < 2 * f->pairs; i++) {
        ASSERT_EQ(f->closes[i].calls, 1);
        ASSERT_EQ(f->closes[i].result, 0);
    }
    free(f->idle);
    free(f->closes);
    free(f->sp);
    free(f->bufs);
}

static void assert_no_drop(gyre_loop *loop)
{
    gyre_stats st;

    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    ASSERT_EQ(st.cqe_dropped, 0);
}

/* A ring of 8 entries (on io_uring, a CQ of 32): 64 CQs' worth of reads on
 * idle sockets wait (8 on select), and a ready read, a timer, a nop, data
 * for half of them at once and the closes of every fd still complete, each
 * op exactly once, and no completion is dropped. */
void test_op_inflight_tiny_ring(void)
{
    gyre_loop_opts opts = {0};
    gyre_loop *loop;
    gyre_info info;
    struct inflight f;
    struct test_op ready = {0}, timer = {0}, nop = {0};
    int rp[2], start;
    size_t cq, half, pairs;
    char buf[8] = {0};

    opts.ring_entries = 8;
    loop = test_loop_new_opts(&opts);
    ASSERT_EQ(gyre_loop_info(loop, &info), 0);
    /* Readiness backends have no CQ: as many reads as a CQ of 32 needs. */
    cq = info.cq_entries != 0 ? info.cq_entries : 32;
    ASSERT_LE(cq, 64);
    /* Sixty-four CQs' worth, so that the closes bring more completions than
     * one wait reports (1,024) and the CQ overflows behind them (on 6.13+
     * it then grows: seen here, 32 -> 2,048); on select eight, below
     * FD_SETSIZE. */
    pairs = test_backend_is("select") ? 8 * cq : 64 * cq;
    test_nofile(2 * pairs + 64);
    inflight_start(loop, &f, pairs);

    test_socketpair(rp);
    test_write_bytes(rp[1], "r", 1);
    gyre_op_read(&ready.op, rp[0], buf, sizeof buf, GYRE_OFF_CUR);
    start = counted;
    count_submit(loop, &ready);
    gyre_op_timeout(&timer.op, MS(1));
    count_submit(loop, &timer);
    gyre_op_nop(&nop.op);
    count_submit(loop, &nop);
    test_run_until(loop, &counted, start + 3);
    ASSERT_EQ(ready.calls, 1);
    ASSERT_EQ(timer.calls, 1);
    ASSERT_EQ(nop.calls, 1);
    ASSERT_EQ(ready.result, 1);
    ASSERT_EQ(buf[0], 'r');
    ASSERT_EQ(timer.result, 0);
    ASSERT_EQ(nop.result, 0);
    for (size_t i = 0; i < f.pairs; i++)
        ASSERT_EQ(f.idle[i].calls, 0);

    /* Data for half of them at once: 32 CQs' worth of completions (4 on
     * select) in one burst. Each takes its own byte. */
    half = f.pairs / 2;
    start = counted;
    for (size_t i = 0; i < half; i++) {
        char b = (char)('a' + i % 26);

        test_write_bytes(f.sp[2 * i + 1], &b, 1);
    }
    test_run_until(loop, &counted, start + (int)half);
    test_run_nowait(loop, 3);
    ASSERT_EQ(counted, start + (int)half);
    for (size_t i = 0; i < f.pairs; i++) {
        ASSERT_EQ(f.idle[i].calls, i < half ? 1 : 0);
        if (i < half) {
            ASSERT_EQ(f.idle[i].result, 1);
            ASSERT_EQ(f.bufs[16 * i], (char)('a' + i % 26));
        }
    }

    /* Most of these closes have no op to wait for and complete at once:
     * more completions in one wait than it reports, so the CQ overflows
     * behind them. */
    inflight_close_all(loop, &f, half);
    test_run_nowait(loop, 3);
    ASSERT_EQ(ready.calls, 1);
    ASSERT_EQ(timer.calls, 1);
    ASSERT_EQ(nop.calls, 1);
    assert_no_drop(loop);
    test_close(rp[0]);
    test_close(rp[1]);
    test_loop_free(loop);
}

/* As many idle reads as the fd limit allows (up to 20,000 socketpairs), and
 * every fd closed in one burst: on io_uring, far more completions at once
 * than the CQ holds, which go through the kernel's overflow list. */
void test_op_inflight_close_burst(void)
{
    gyre_loop *loop;
    struct inflight f;
    size_t nofile = test_nofile(SIZE_MAX);
    size_t pairs = test_scale(20000);

    ASSERT_GT(nofile, 64);
    if (pairs > (nofile - 64) / 2)
        pairs = (nofile - 64) / 2;
    /* select: every fd below FD_SETSIZE. */
    if (test_backend_is("select") && pairs > (FD_SETSIZE - 64) / 2)
        pairs = (FD_SETSIZE - 64) / 2;
    /* Under GYRE_FAULTS what counts is exactly-once under injected errors,
     * which a thousand pairs show as well; closing 10,000 fds with ops costs
     * seconds (each cancel by fd walks every poll request in the ring, and
     * so does the core on kernels without it), paid once per seed. */
    if (getenv("GYRE_FAULTS") != NULL && pairs > 1000)
        pairs = 1000;
    loop = test_loop_new();
    test_loop_guard(loop, SEC(100));
    inflight_start(loop, &f, pairs);
    inflight_close_all(loop, &f, 0);
    assert_no_drop(loop);
    test_loop_free(loop);
}
