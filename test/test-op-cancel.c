/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-cancel.c: cancellation, deadlines and linked operations.
 *
 * Cancel is a request: the op completes exactly once, with -ECANCELED if the
 * cancel took effect and with its real result if that came first. The race
 * test checks "exactly once" by accounting, not by timing: every read that
 * reports a byte took one byte out of the pipe, every work item that reports
 * its value ran its function, and nothing else did.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"

enum {
    V_NOP,
    V_TIMEOUT,
    V_READ,
    V_WORK,
    V_POLL,
    V_COUNT
};

struct race_slot {
    gyre_op op;
    int kind;
    int on_q;  /* a read or poll on the initially empty pipe */
    int state; /* 0 idle, 1 in flight, 2 completed */
};

static struct {
    int completed, cancelled, real[V_COUNT], q_reads;
    atomic_int work_ran;
    char readbuf[1];
} race;

static int64_t race_work_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&race.work_ran, 1);
    return 7;
}

static void race_cb(gyre_op *op)
{
    struct race_slot *s = (struct race_slot *)op;
    int64_t want = 0;

    if (s->state != 1)
        test_fail(__FILE__, __LINE__, "slot kind %d completed in state %d", s->kind, s->state);
    s->state = 2;
    race.completed++;
    ASSERT_EQ(op->flags, 0);
    if (op->result == -ECANCELED) {
        race.cancelled++;
        return;
    }
    switch (s->kind) {
    case V_READ:
        want = 1;
        break;
    case V_WORK:
        want = 7;
        break;
    case V_POLL:
        want = GYRE_IN;
        break;
    default:
        want = 0;
    }
    if (op->result != want)
        test_fail(__FILE__, __LINE__, "kind %d: result %jd, want %jd or -ECANCELED", s->kind,
                  (intmax_t)op->result, (intmax_t)want);
    race.real[s->kind]++;
    if (s->on_q && s->kind == V_READ)
        race.q_reads++;
}

static void race_prep(struct race_slot *s, int kind, int rfd)
{
    s->kind = kind;
    switch (kind) {
    case V_NOP:
        gyre_op_nop(&s->op);
        break;
    case V_TIMEOUT:
        gyre_op_timeout(&s->op, 0);
        break;
    case V_READ:
        gyre_op_read(&s->op, rfd, race.readbuf, 1, GYRE_OFF_CUR);
        break;
    case V_WORK:
        gyre_op_work(&s->op, race_work_fn, NULL, GYRE_LANE_SLOW);
        break;
    default:
        gyre_op_poll(&s->op, rfd, GYRE_IN);
    }
}

#define RACE_BATCH 64

static long pipe_bytes(int fd)
{
    int avail = 0;

    ASSERT_SYS(ioctl(fd, FIONREAD, &avail));
    return avail;
}

/* Phase 3: reads and polls waiting on an empty pipe, armed in the kernel (or
 * registered for readiness) by one non-waiting iteration; then bytes arrive
 * for about half of them and every op still in flight is cancelled, so
 * cancels meet completions the kernel is producing at that moment. */
static void race_armed_batch(gyre_loop *loop, struct race_slot *slots, int n, uint64_t *rng,
                             const int q[2], long *q_in)
{
    static char fill[RACE_BATCH];
    char drain[RACE_BATCH];
    ssize_t got;
    int i;

    while ((got = read(q[0], drain, sizeof drain)) > 0)
        *q_in -= got;
    ASSERT_EQ(got, -1);
    ASSERT_EQ(errno, EAGAIN);
    for (i = 0; i < n; i++) {
        struct race_slot *s = &slots[i];

        race_prep(s, test_rand(rng) % 2 ? V_READ : V_POLL, q[0]);
        s->on_q = 1;
        s->state = 1;
        ASSERT_EQ(gyre_submit(loop, &s->op, race_cb), 0);
    }
    ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
    test_write_bytes(q[1], fill, (size_t)(n / 2 + 1));
    *q_in += n / 2 + 1;
    for (i = 0; i < n; i++)
        ASSERT_EQ(gyre_cancel(loop, &slots[i].op), slots[i].state == 2 ? -ENOENT : 0);
}

/* Batches of ops of mixed kinds, each cancelled right after its submit, or
 * after the whole batch was submitted, or after one more non-waiting
 * iteration (so some completions are already in the loop's hands), or, in
 * phase 3, while completions are being produced. */
void test_op_cancel_race(void)
{
    static struct race_slot slots[RACE_BATCH];
    static char fill[RACE_BATCH];
    gyre_loop *loop = test_loop_new();
    size_t total = test_scale(100000), submitted = 0, batch = 0;
    uint64_t rng = 0xca9ce1;
    long wrote = 0, q_in = 0;
    int p[2], q[2], i;

    test_loop_guard(loop, SEC(100));
    test_pipe(p);
    test_pipe(q);
    while (submitted < total) {
        int n = total - submitted < RACE_BATCH ? (int)(total - submitted) : RACE_BATCH;
        int phase = (int)(batch++ % 4);
        int target = race.completed + n;

        if (phase == 3) {
            int q_reads = race.q_reads;

            race_armed_batch(loop, slots, n, &rng, q, &q_in);
            submitted += (size_t)n;
            test_run_until(loop, &race.completed, target);
            for (i = 0; i < n; i++)
                ASSERT_EQ(slots[i].state, 2);
            /* The reads that reported a byte took exactly those bytes. */
            ASSERT_EQ(q_in - pipe_bytes(q[0]), race.q_reads - q_reads);
            q_in = pipe_bytes(q[0]);
            continue;
        }

        /* Keep the pipe readable for every read and poll of the batch. */
        if (pipe_bytes(p[0]) < RACE_BATCH) {
            test_write_bytes(p[1], fill, sizeof fill);
            wrote += RACE_BATCH;
        }
        for (i = 0; i < n; i++) {
            struct race_slot *s = &slots[i];

            race_prep(s, (int)(test_rand(&rng) % V_COUNT), p[0]);
            s->on_q = 0;
            s->state = 1;
            ASSERT_EQ(gyre_submit(loop, &s->op, race_cb), 0);
            ASSERT_EQ(s->state, 1); /* never completed inside submit */
            if (phase == 0)
                ASSERT_EQ(gyre_cancel(loop, &s->op), 0);
        }
        if (phase == 2)
            ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
        if (phase != 0) {
            /* In flight until its callback has run, whatever the kernel
             * or worker has done meanwhile; -ENOENT only after. */
            for (i = 0; i < n; i++) {
                int rc = gyre_cancel(loop, &slots[i].op);

                ASSERT_EQ(rc, slots[i].state == 2 ? -ENOENT : 0);
            }
        }
        submitted += (size_t)n;
        test_run_until(loop, &race.completed, target);
        for (i = 0; i < n; i++)
            ASSERT_EQ(slots[i].state, 2);
        /* Nothing is in flight now: the reads that reported a byte took
         * exactly those bytes, and only the work that reported ran. */
        ASSERT_EQ(wrote - pipe_bytes(p[0]), race.real[V_READ] - race.q_reads);
        ASSERT_EQ(atomic_load(&race.work_ran), race.real[V_WORK]);
    }
    test_run_nowait(loop, 3);
    ASSERT_EQ(race.completed, (int)total);
    ASSERT_EQ(wrote - pipe_bytes(p[0]), race.real[V_READ] - race.q_reads);
    ASSERT_EQ(atomic_load(&race.work_ran), race.real[V_WORK]);
    printf("cancel race: %d ops, %d cancelled; real results: nop %d timeout %d read %d "
           "(%d on the armed pipe) work %d poll %d\n",
           race.completed, race.cancelled, race.real[V_NOP], race.real[V_TIMEOUT],
           race.real[V_READ], race.q_reads, race.real[V_WORK], race.real[V_POLL]);
    test_close(q[0]);
    test_close(q[1]);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_cancel_pending(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[8], c;
    int p[2];

    test_pipe(p);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 0);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, -ECANCELED);
    ASSERT_EQ(t.flags, 0);
    /* Completed: no longer in flight. */
    ASSERT_EQ(gyre_cancel(loop, &t.op), -ENOENT);
    /* The cancelled read took nothing: a byte written now is still there. */
    test_write_bytes(p[1], "z", 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    test_read_bytes(p[0], &c, 1);
    ASSERT_EQ(c, 'z');

    /* The same for a long timeout and a waiting poll. */
    gyre_op_timeout(&t.op, SEC(3600));
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    test_run_until(loop, &t.calls, 1);
    ASSERT_EQ(t.result, -ECANCELED);
    gyre_op_poll(&t.op, p[0], GYRE_IN);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, -ECANCELED);

    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_cancel_not_in_flight(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_loop *other = test_loop_new();
    struct test_op t = {0};
    char buf[4];
    int p[2];

    /* Prepared but never submitted. */
    gyre_op_nop(&t.op);
    ASSERT_EQ(gyre_cancel(loop, &t.op), -ENOENT);
    /* Completed. */
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_EQ(gyre_cancel(loop, &t.op), -ENOENT);
    /* In flight, but on another loop. */
    test_pipe(p);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(loop, &t);
    ASSERT_EQ(gyre_cancel(other, &t.op), -ENOENT);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t.calls, 0);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    test_run_until(loop, &t.calls, 1);
    ASSERT_EQ(t.result, -ECANCELED);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(other);
    test_loop_free(loop);
}

void test_op_cancel_twice(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[4];
    int p[2];

    test_pipe(p);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    ASSERT_EQ(gyre_cancel(loop, &t.op), -EALREADY);
    test_run_nowait(loop, 1);
    if (t.calls == 0)
        ASSERT_EQ(gyre_cancel(loop, &t.op), -EALREADY);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, -ECANCELED);
    ASSERT_EQ(gyre_cancel(loop, &t.op), -ENOENT);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_deadline_expires(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[4], c;
    int p[2], sp[2];

    test_pipe(p);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    gyre_op_set_deadline(&t.op, MS(1));
    ASSERT_EQ(test_op_run(loop, &t), -ETIME);
    /* It took nothing from the pipe. */
    test_write_bytes(p[1], "q", 1);
    test_run_nowait(loop, 3);
    test_read_bytes(p[0], &c, 1);
    ASSERT_EQ(c, 'q');

    /* Also on a socket recv and on a poll. */
    test_socketpair(sp);
    gyre_op_recv(&t.op, sp[0], buf, sizeof buf, 0);
    gyre_op_set_deadline(&t.op, MS(1));
    ASSERT_EQ(test_op_run(loop, &t), -ETIME);
    gyre_op_poll(&t.op, sp[0], GYRE_IN);
    gyre_op_set_deadline(&t.op, MS(1));
    ASSERT_EQ(test_op_run(loop, &t), -ETIME);
    /* Cancel before the deadline: -ECANCELED, not -ETIME. */
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    gyre_op_set_deadline(&t.op, SEC(3600));
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, -ECANCELED);
    test_close(sp[0]);
    test_close(sp[1]);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

static int64_t seven_fn(void *arg)
{
    (void)arg;
    return 7;
}

void test_op_deadline_ready(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[8];
    int p[2];

    test_pipe(p);
    test_write_bytes(p[1], "ready", 5);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    gyre_op_set_deadline(&t.op, SEC(10));
    ASSERT_EQ(test_op_run(loop, &t), 5);
    ASSERT_EQ(memcmp(buf, "ready", 5), 0);
    /* Data arriving later but well within the deadline. */
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    gyre_op_set_deadline(&t.op, SEC(10));
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    test_write_bytes(p[1], "later", 5);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, 5);
    ASSERT_EQ(memcmp(buf, "later", 5), 0);
    /* A deadline on work that finishes first by itself. */
    gyre_op_work(&t.op, seven_fn, NULL, GYRE_LANE_FAST);
    gyre_op_set_deadline(&t.op, SEC(10));
    ASSERT_EQ(test_op_run(loop, &t), 7);
    /* Not for TIMEOUT ops: refused at submit, and never calls back. */
    gyre_op_timeout(&t.op, 0);
    gyre_op_set_deadline(&t.op, SEC(10));
    t.calls = 0;
    ASSERT_EQ(gyre_submit(loop, &t.op, test_op_cb), -EINVAL);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 0);
    test_close(p[0]);
    test_close(p[1]);
    /* The deadlines' timers are gone with their ops. */
    test_loop_free(loop);
}

/* Linked ops: submit order, completion accounting, and that a link only
 * reaches the op submitted right after it. */
static int link_seq;

struct link_op {
    struct test_op t;
    int order;
};

static void link_cb(gyre_op *op)
{
    struct link_op *l = (struct link_op *)op;

    test_op_cb(op);
    l->order = ++link_seq;
}

static void link_submit(gyre_loop *loop, struct link_op *l, int linked)
{
    l->t.calls = 0;
    l->order = 0;
    if (linked)
        gyre_op_set_link(&l->t.op);
    ASSERT_EQ(gyre_submit(loop, &l->t.op, link_cb), 0);
}

static void link_wait(gyre_loop *loop, struct link_op *l, int n)
{
    int i;

    for (i = 0; i < n; i++)
        test_run_until(loop, &l[i].t.calls, 1);
    test_run_nowait(loop, 3);
    for (i = 0; i < n; i++)
        ASSERT_EQ(l[i].t.calls, 1);
}

void test_op_link_write_read(void)
{
    gyre_loop *loop = test_loop_new();
    struct link_op l[2];
    char buf[16];
    int p[2];

    memset(l, 0, sizeof l);
    test_pipe(p);
    gyre_op_write(&l[0].t.op, p[1], "linked", 6, GYRE_OFF_CUR);
    link_submit(loop, &l[0], 1);
    gyre_op_read(&l[1].t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    link_submit(loop, &l[1], 0);
    link_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, 6);
    ASSERT_EQ(l[1].t.result, 6);
    ASSERT_EQ(memcmp(buf, "linked", 6), 0);
    ASSERT_LT(l[0].order, l[1].order);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_link_fail_cancels(void)
{
    gyre_loop *loop = test_loop_new();
    struct link_op l[3];
    char buf[16], c;
    int p[2];

    memset(l, 0, sizeof l);
    test_pipe(p);
    gyre_op_write(&l[0].t.op, test_bad_fd(), "x", 1, GYRE_OFF_CUR);
    link_submit(loop, &l[0], 1);
    gyre_op_write(&l[1].t.op, p[1], "never", 5, GYRE_OFF_CUR);
    link_submit(loop, &l[1], 0);
    link_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, -EBADF);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    /* The cancelled write wrote nothing. */
    ASSERT_EQ(read(p[0], &c, 1), -1);
    ASSERT_EQ(errno, EAGAIN);

    /* The chain ended with l[1]: an op submitted after it is independent. */
    gyre_op_write(&l[2].t.op, p[1], "free", 4, GYRE_OFF_CUR);
    link_submit(loop, &l[2], 0);
    link_wait(loop, &l[2], 1);
    ASSERT_EQ(l[2].t.result, 4);
    test_read_bytes(p[0], buf, 4);
    ASSERT_EQ(memcmp(buf, "free", 4), 0);

    /* A cancelled head cancels the rest too. */
    gyre_op_read(&l[0].t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    link_submit(loop, &l[0], 1);
    gyre_op_write(&l[1].t.op, p[1], "never", 5, GYRE_OFF_CUR);
    link_submit(loop, &l[1], 0);
    test_run_nowait(loop, 2);
    ASSERT_EQ(l[0].t.calls, 0);
    ASSERT_EQ(gyre_cancel(loop, &l[0].t.op), 0);
    link_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, -ECANCELED);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    ASSERT_EQ(read(p[0], &c, 1), -1);
    ASSERT_EQ(errno, EAGAIN);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_link_chain3(void)
{
    gyre_loop *loop = test_loop_new();
    struct link_op l[3];
    char buf[16], c;
    int p[2];

    memset(l, 0, sizeof l);
    test_pipe(p);
    gyre_op_write(&l[0].t.op, p[1], "abc", 3, GYRE_OFF_CUR);
    link_submit(loop, &l[0], 1);
    gyre_op_write(&l[1].t.op, p[1], "def", 3, GYRE_OFF_CUR);
    link_submit(loop, &l[1], 1);
    gyre_op_read(&l[2].t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    link_submit(loop, &l[2], 0);
    link_wait(loop, l, 3);
    ASSERT_EQ(l[0].t.result, 3);
    ASSERT_EQ(l[1].t.result, 3);
    ASSERT_EQ(l[2].t.result, 6);
    ASSERT_EQ(memcmp(buf, "abcdef", 6), 0);
    ASSERT_LT(l[0].order, l[1].order);
    ASSERT_LT(l[1].order, l[2].order);

    /* Failure in the middle: the head's result stands, the tail is
     * cancelled. */
    gyre_op_write(&l[0].t.op, p[1], "ok", 2, GYRE_OFF_CUR);
    link_submit(loop, &l[0], 1);
    gyre_op_read(&l[1].t.op, test_bad_fd(), buf, sizeof buf, GYRE_OFF_CUR);
    link_submit(loop, &l[1], 1);
    gyre_op_write(&l[2].t.op, p[1], "never", 5, GYRE_OFF_CUR);
    link_submit(loop, &l[2], 0);
    link_wait(loop, l, 3);
    ASSERT_EQ(l[0].t.result, 2);
    ASSERT_EQ(l[1].t.result, -EBADF);
    ASSERT_EQ(l[2].t.result, -ECANCELED);
    test_read_bytes(p[0], buf, 2);
    ASSERT_EQ(memcmp(buf, "ok", 2), 0);
    ASSERT_EQ(read(p[0], &c, 1), -1);
    ASSERT_EQ(errno, EAGAIN);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* "A read or write must also be whole": a short read breaks the chain. */
void test_op_link_short_breaks(void)
{
    gyre_loop *loop = test_loop_new();
    struct link_op l[2];
    char buf[16], c;
    int p[2];

    memset(l, 0, sizeof l);
    test_pipe(p);
    test_write_bytes(p[1], "abc", 3);
    gyre_op_read(&l[0].t.op, p[0], buf, 10, GYRE_OFF_CUR);
    link_submit(loop, &l[0], 1);
    gyre_op_write(&l[1].t.op, p[1], "never", 5, GYRE_OFF_CUR);
    link_submit(loop, &l[1], 0);
    link_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, 3);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    ASSERT_EQ(read(p[0], &c, 1), -1);
    ASSERT_EQ(errno, EAGAIN);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* A chain that grows after its head went to the kernel: the head's link is
 * then the core's, and so is every link behind it. (On io_uring the second op
 * was once held as the head of a new chain when the first ended, and the
 * third, already waiting behind it, never completed.) */
void test_op_link_chain_late(void)
{
    gyre_loop *loop = test_loop_new();
    struct link_op l[4];

    memset(l, 0, sizeof l);
    gyre_op_timeout(&l[0].t.op, MS(1));
    link_submit(loop, &l[0], 1);
    test_run_nowait(loop, 1); /* the head is in flight, its successor unknown */
    ASSERT_EQ(l[0].t.calls, 0);
    gyre_op_nop(&l[1].t.op);
    link_submit(loop, &l[1], 1);
    gyre_op_nop(&l[2].t.op);
    link_submit(loop, &l[2], 0);
    link_wait(loop, l, 3);
    ASSERT_EQ(l[0].t.result, 0);
    ASSERT_EQ(l[1].t.result, 0);
    ASSERT_EQ(l[2].t.result, 0);
    ASSERT_LT(l[0].order, l[1].order);
    ASSERT_LT(l[1].order, l[2].order);

    /* The same with the middle op's successor still unknown when the head
     * ends: the op submitted next follows the middle op, not the head. */
    gyre_op_timeout(&l[0].t.op, MS(1));
    link_submit(loop, &l[0], 1);
    test_run_nowait(loop, 1);
    gyre_op_nop(&l[1].t.op);
    link_submit(loop, &l[1], 1);
    test_run_until(loop, &l[1].t.calls, 1);
    gyre_op_nop(&l[2].t.op);
    link_submit(loop, &l[2], 1);
    gyre_op_nop(&l[3].t.op);
    link_submit(loop, &l[3], 0);
    link_wait(loop, l, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(l[i].t.result, 0);
    ASSERT_LT(l[2].order, l[3].order);
    test_loop_free(loop);
}

static struct link_op *cancel_in_cb_target;

static void cancel_successor_cb(gyre_op *op)
{
    link_cb(op);
    ASSERT_EQ(gyre_cancel(op->gyre__priv.loop, &cancel_in_cb_target->t.op), 0);
}

/* A cancel of an op linked behind one still running takes effect. (On
 * io_uring the kernel has not issued such an op yet, so ASYNC_CANCEL does not
 * find it; gyre once let the cancel go, and the recv then waited for data
 * forever.) Also just after the op before it ended, before the kernel's task
 * work issued it. */
void test_op_cancel_link_successor(void)
{
    gyre_loop *loop = test_loop_new();
    struct link_op l[2];
    char buf[8], c;
    int p[2], sp[2];

    memset(l, 0, sizeof l);
    test_pipe(p);
    test_socketpair(sp);
    gyre_op_read(&l[0].t.op, p[0], &c, 1, GYRE_OFF_CUR);
    link_submit(loop, &l[0], 1);
    gyre_op_recv(&l[1].t.op, sp[0], buf, sizeof buf, 0);
    link_submit(loop, &l[1], 0);
    test_run_nowait(loop, 2);
    ASSERT_EQ(gyre_cancel(loop, &l[1].t.op), 0);
    ASSERT_EQ(gyre_cancel(loop, &l[1].t.op), -EALREADY);
    test_run_nowait(loop, 2);
    ASSERT_EQ(l[0].t.calls, 0);
    ASSERT_EQ(l[1].t.calls, 0);
    test_write_bytes(p[1], "a", 1);
    link_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, 1);
    ASSERT_EQ(l[1].t.result, -ECANCELED);
    ASSERT_LT(l[0].order, l[1].order);

    /* Cancelled from the callback of the op before it. */
    gyre_op_read(&l[0].t.op, p[0], &c, 1, GYRE_OFF_CUR);
    l[0].t.calls = 0;
    gyre_op_set_link(&l[0].t.op);
    cancel_in_cb_target = &l[1];
    ASSERT_EQ(gyre_submit(loop, &l[0].t.op, cancel_successor_cb), 0);
    gyre_op_recv(&l[1].t.op, sp[0], buf, sizeof buf, 0);
    link_submit(loop, &l[1], 0);
    test_run_nowait(loop, 2);
    test_write_bytes(p[1], "b", 1);
    link_wait(loop, l, 2);
    ASSERT_EQ(l[0].t.result, 1);
    ASSERT_EQ(l[1].t.result, -ECANCELED);

    /* Neither recv took anything. */
    test_write_bytes(sp[1], "z", 1);
    test_run_nowait(loop, 2);
    test_read_bytes(sp[0], &c, 1);
    ASSERT_EQ(c, 'z');
    test_close(sp[0]);
    test_close(sp[1]);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* A cancel of a send the kernel is moving around takes effect. A send on a
 * socket whose own read side is shut down, with the buffer full: its poll
 * wakes at once (the socket reads as hung up), and io_uring retries it from
 * task work, dozens of times before it hands it to a worker, where it blocks.
 * A cancel in between finds it nowhere (-ENOENT; seen on 6.18 with
 * DEFER_TASKRUN), and gyre once let that cancel go: the send never ended. */
void test_op_cancel_send_in_transit(void)
{
    gyre_loop *loop = test_loop_new();
    static char fill[1 << 16];
    struct test_op t = {0};
    int sp[2], sz = 1;

    test_socketpair(sp);
    ASSERT_SYS(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz));
    ASSERT_SYS(shutdown(sp[0], SHUT_RD));
    while (write(sp[0], fill, sizeof fill) > 0)
        continue;
    ASSERT_EQ(errno, EAGAIN);
    gyre_op_send(&t.op, sp[0], fill, 1001, 0);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t.calls, 0);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, -ECANCELED);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* io_uring's io-wq cancels, with -ECANCELED, work it cannot find a thread
 * for (op.c, unasked_cancel(); rel_b3_eintr_storm met it under a signal
 * storm). gyre must redo such an op, and after two tries carry it itself.
 * RLIMIT_NPROC makes io-wq fail every time: a child drops to an unprivileged
 * user (root's CAP_SYS_RESOURCE would ignore the limit) whose limit is 1,
 * once the pool's threads run. A SHUTDOWN (always run in io-wq) and an fsync
 * (io-wq on io_uring, a glibc helper or the pool on the other engines) must
 * complete with 0; on io_uring each op the kernel carried is counted three
 * times in ops_redone (two redos in the kernel, then off it). */
static int64_t unasked_nothing(void *arg)
{
    return (int64_t)(intptr_t)arg;
}

static void *unasked_thread(void *arg)
{
    return arg;
}

static void unasked_child(int fd)
{
    gyre_loop *loop = test_loop_new();
    struct test_op warm = {0}, sh = {0}, fs = {0};
    struct rlimit rl;
    pthread_t tid;
    gyre_stats st;
    gyre_info info;
    uint64_t want = 0;
    int sv[2], limited, done = 0;
    char c;

    test_loop_guard(loop, SEC(20));
    test_socketpair(sv);
    /* The fast lane starts all its threads at its first op. */
    gyre_op_work(&warm.op, unasked_nothing, (void *)(intptr_t)7, GYRE_LANE_FAST);
    ASSERT_EQ(test_op_run(loop, &warm), 7);
    if (geteuid() == 0 &&
        (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0))
        printf("cannot leave root (%s): the limit may not hold\n", strerror(errno));
    ASSERT_SYS(getrlimit(RLIMIT_NPROC, &rl));
    rl.rlim_cur = 1;
    ASSERT_SYS(setrlimit(RLIMIT_NPROC, &rl));
    limited = pthread_create(&tid, NULL, unasked_thread, NULL) != 0;
    if (!limited) {
        ASSERT_EQ(pthread_join(tid, NULL), 0);
        printf("RLIMIT_NPROC does not hold here: no cancel from io-wq to absorb\n");
    }

    gyre_op_shutdown(&sh.op, sv[0], SHUT_WR);
    test_op_submit(loop, &sh);
    gyre_op_fsync(&fs.op, fd, 0);
    test_op_submit(loop, &fs);
    while (done < 2) {
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
        done = sh.calls + fs.calls;
    }
    test_run_nowait(loop, 2);
    ASSERT_EQ(sh.calls, 1);
    ASSERT_EQ(sh.result, 0);
    ASSERT_EQ(fs.calls, 1);
    ASSERT_EQ(fs.result, 0);
    ASSERT_EQ(read(sv[1], &c, 1), 0); /* the shutdown happened */

    ASSERT_EQ(gyre_loop_info(loop, &info), 0);
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    if (limited && test_backend_is("uring"))
        want = strcmp(info.file_engine, "uring") == 0 ? 6 : 3;
    printf("limited %d, file engine %s, ops_redone %ju\n", limited, info.file_engine,
           (uintmax_t)st.ops_redone);
    ASSERT_EQ(st.ops_redone, want);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}

void test_op_unasked_cancel_redone(void)
{
    char path[4096];
    int fd, status;
    pid_t pid;

    test_tmppath(path, sizeof path, "unasked");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    fflush(stdout);
    pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        unasked_child(fd);
        fflush(stdout);
        _exit(0);
    }
    ASSERT_SYS(waitpid(pid, &status, 0));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        test_fail(__FILE__, __LINE__, "child status 0x%x", status);
    test_close(fd);
}
