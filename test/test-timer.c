/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-timer.c: timer semantics -- ordering (deadline, then start order),
 * repeat, stop/restart/free from inside callbacks, zero and saturating
 * timeouts, gyre_timer_again() and the accessors.
 *
 * Assertions are on order and counts, never on elapsed time: the only clock
 * checks are upper bounds that gyre computes itself (gyre_timer_due_in).
 */
#include <stdlib.h>

#include "runner.h"

/* A timer with a per-test record of when it fired. */
struct rec_timer {
    gyre_timer t;
    int id;
    int fired;
};

/* Fire order shared by the ordering tests. */
static int order[64];
static int norder;

static void record_cb(gyre_timer *t)
{
    struct rec_timer *r = (struct rec_timer *)t;

    r->fired++;
    ASSERT_LT(norder, 64);
    order[norder++] = r->id;
}

void test_timer_order(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_timer r[3] = {{.id = 0}, {.id = 1}, {.id = 2}};
    static const uint64_t due[3] = {MS(30), MS(10), MS(20)};
    int i;

    for (i = 0; i < 3; i++) {
        ASSERT_EQ(gyre_timer_init(loop, &r[i].t), 0);
        ASSERT_EQ(gyre_timer_start(&r[i].t, record_cb, due[i], 0), 0);
    }
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(norder, 3);
    ASSERT_EQ(order[0], 1);
    ASSERT_EQ(order[1], 2);
    ASSERT_EQ(order[2], 0);
    test_loop_free(loop);
}

/* Timers in three deadline groups, started interleaved: each group must
 * fire in start order, groups in deadline order. */
static size_t same_fired;
static size_t same_last_group, same_last_index;

struct same_timer {
    gyre_timer t;
    size_t group, index;
};

static void same_cb(gyre_timer *t)
{
    struct same_timer *s = (struct same_timer *)t;

    if (same_fired > 0) {
        ASSERT_TRUE(s->group >= same_last_group);
        if (s->group == same_last_group)
            ASSERT_GT(s->index, same_last_index);
    }
    same_last_group = s->group;
    same_last_index = s->index;
    same_fired++;
}

void test_timer_same_deadline(void)
{
    gyre_loop *loop = test_loop_new();
    size_t n = test_scale(10000), i;
    struct same_timer *ts = calloc(n, sizeof *ts);

    ASSERT_TRUE(ts != NULL);
    for (i = 0; i < n; i++) {
        ts[i].group = i % 3;
        ts[i].index = i;
        ASSERT_EQ(gyre_timer_init(loop, &ts[i].t), 0);
        ASSERT_EQ(gyre_timer_start(&ts[i].t, same_cb, MS(1 + ts[i].group), 0), 0);
    }
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(same_fired, n);
    free(ts);
    test_loop_free(loop);
}

static void repeat_cb(gyre_timer *t)
{
    struct rec_timer *r = (struct rec_timer *)t;

    r->fired++;
    ASSERT_EQ(gyre_handle_active(&t->base), 1);
    if (r->fired == 5)
        ASSERT_EQ(gyre_timer_stop(t), 0);
}

void test_timer_repeat(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_timer r = {0};

    ASSERT_EQ(gyre_timer_init(loop, &r.t), 0);
    ASSERT_EQ(gyre_timer_start(&r.t, repeat_cb, MS(1), MS(1)), 0);
    ASSERT_EQ(gyre_timer_get_repeat(&r.t), MS(1));
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(r.fired, 5);
    ASSERT_EQ(gyre_handle_active(&r.t.base), 0);
    test_loop_free(loop);
}

static void stop_self_cb(gyre_timer *t)
{
    struct rec_timer *r = (struct rec_timer *)t;

    r->fired++;
    ASSERT_EQ(gyre_timer_stop(t), 0);
    ASSERT_EQ(gyre_timer_stop(t), 0);
}

void test_timer_stop_in_cb(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_timer r = {0};

    ASSERT_EQ(gyre_timer_init(loop, &r.t), 0);
    /* Repeating every 1 ns: without the stop it would fire on every
     * iteration and run would never return. */
    ASSERT_EQ(gyre_timer_start(&r.t, stop_self_cb, 0, 1), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(r.fired, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.fired, 1);
    test_loop_free(loop);
}

static void restart_cb(gyre_timer *t)
{
    struct rec_timer *r = (struct rec_timer *)t;

    r->fired++;
    if (r->fired < 5)
        ASSERT_EQ(gyre_timer_start(t, restart_cb, MS(1), 0), 0);
}

void test_timer_restart_in_cb(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_timer r = {0};

    ASSERT_EQ(gyre_timer_init(loop, &r.t), 0);
    ASSERT_EQ(gyre_timer_start(&r.t, restart_cb, MS(1), 0), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(r.fired, 5);
    ASSERT_EQ(gyre_handle_active(&r.t.base), 0);
    test_loop_free(loop);
}

static int freed_fired;

static void free_oneshot_cb(gyre_timer *t)
{
    freed_fired++;
    test_poison_free(t, sizeof *t);
}

static void free_repeat_cb(gyre_timer *t)
{
    freed_fired++;
    ASSERT_EQ(gyre_timer_stop(t), 0);
    test_poison_free(t, sizeof *t);
}

void test_timer_free_in_cb(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer *oneshot = malloc(sizeof *oneshot);
    gyre_timer *repeat = malloc(sizeof *repeat);

    ASSERT_TRUE(oneshot != NULL && repeat != NULL);
    ASSERT_EQ(gyre_timer_init(loop, oneshot), 0);
    ASSERT_EQ(gyre_timer_init(loop, repeat), 0);
    ASSERT_EQ(gyre_timer_start(oneshot, free_oneshot_cb, MS(1), 0), 0);
    ASSERT_EQ(gyre_timer_start(repeat, free_repeat_cb, MS(1), MS(1)), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(freed_fired, 2);
    test_loop_free(loop);
}

/* A, B and C are due together and start in that order; A stops and frees B,
 * which must not fire although it is already due in the same pass. */
static gyre_timer *sibling_b;
static int sibling_a_fired, sibling_b_fired, sibling_c_fired;

static void sibling_a_cb(gyre_timer *t)
{
    (void)t;
    sibling_a_fired++;
    ASSERT_EQ(gyre_timer_stop(sibling_b), 0);
    test_poison_free(sibling_b, sizeof *sibling_b);
    sibling_b = NULL;
}

static void sibling_b_cb(gyre_timer *t)
{
    (void)t;
    sibling_b_fired++;
}

static void sibling_c_cb(gyre_timer *t)
{
    (void)t;
    sibling_c_fired++;
}

void test_timer_stop_sibling(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer a, c;

    sibling_b = malloc(sizeof *sibling_b);
    ASSERT_TRUE(sibling_b != NULL);
    ASSERT_EQ(gyre_timer_init(loop, &a), 0);
    ASSERT_EQ(gyre_timer_init(loop, sibling_b), 0);
    ASSERT_EQ(gyre_timer_init(loop, &c), 0);
    ASSERT_EQ(gyre_timer_start(&a, sibling_a_cb, MS(1), 0), 0);
    ASSERT_EQ(gyre_timer_start(sibling_b, sibling_b_cb, MS(1), 0), 0);
    ASSERT_EQ(gyre_timer_start(&c, sibling_c_cb, MS(1), 0), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(sibling_a_fired, 1);
    ASSERT_EQ(sibling_b_fired, 0);
    ASSERT_EQ(sibling_c_fired, 1);
    test_loop_free(loop);
}

/* Each firing records the loop's iteration counter: a timeout of 0 means
 * "next iteration", so a timer (re)started from a callback must never fire
 * again within the iteration that started it. */
struct iter_timer {
    gyre_timer t;
    int fired;
    uint64_t iter[8];
};

static gyre_loop *zero_loop;

static struct iter_timer zero_b;

static void zero_b_cb(gyre_timer *t)
{
    struct iter_timer *it = (struct iter_timer *)t;

    it->iter[it->fired++] = test_iterations(zero_loop);
}

static void zero_a_cb(gyre_timer *t)
{
    struct iter_timer *it = (struct iter_timer *)t;

    it->iter[it->fired++] = test_iterations(zero_loop);
    ASSERT_EQ(gyre_timer_start(&zero_b.t, zero_b_cb, 0, 0), 0);
    ASSERT_EQ(zero_b.fired, 0);
}

static void zero_self_cb(gyre_timer *t)
{
    struct iter_timer *it = (struct iter_timer *)t;

    it->iter[it->fired++] = test_iterations(zero_loop);
    if (it->fired < 5)
        ASSERT_EQ(gyre_timer_start(t, zero_self_cb, 0, 0), 0);
}

void test_timer_zero_next_iteration(void)
{
    gyre_loop *loop = test_loop_new();
    struct iter_timer a = {0}, self = {0};
    int i;

    zero_loop = loop;
    ASSERT_EQ(gyre_timer_init(loop, &a.t), 0);
    ASSERT_EQ(gyre_timer_init(loop, &zero_b.t), 0);
    ASSERT_EQ(gyre_timer_init(loop, &self.t), 0);
    ASSERT_EQ(gyre_timer_start(&a.t, zero_a_cb, 0, 0), 0);
    ASSERT_EQ(gyre_timer_start(&self.t, zero_self_cb, 0, 0), 0);
    ASSERT_EQ(a.fired, 0); /* never inside start */
    ASSERT_EQ(self.fired, 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(a.fired, 1);
    ASSERT_EQ(zero_b.fired, 1);
    ASSERT_EQ(self.fired, 5);
    ASSERT_GT(zero_b.iter[0], a.iter[0]);
    for (i = 1; i < 5; i++)
        ASSERT_GT(self.iter[i], self.iter[i - 1]);
    test_loop_free(loop);
}

static void count_cb(gyre_timer *t)
{
    ((struct rec_timer *)t)->fired++;
}

static gyre_timer *huge_repeat_victim;

static void huge_end_cb(gyre_timer *t)
{
    ((struct rec_timer *)t)->fired++;
    ASSERT_EQ(gyre_timer_stop(huge_repeat_victim), 0);
}

void test_timer_huge_timeout(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_timer a = {0}, b = {0}, c = {0}, end = {0};

    ASSERT_EQ(gyre_timer_init(loop, &a.t), 0);
    ASSERT_EQ(gyre_timer_init(loop, &b.t), 0);
    ASSERT_EQ(gyre_timer_init(loop, &c.t), 0);
    ASSERT_EQ(gyre_timer_init(loop, &end.t), 0);
    ASSERT_EQ(gyre_timer_start(&a.t, count_cb, UINT64_MAX, 0), 0);
    ASSERT_EQ(gyre_timer_start(&b.t, count_cb, UINT64_MAX - 1, UINT64_MAX - 1), 0);
    /* Fires once; its next deadline (now + UINT64_MAX) must saturate, not
     * wrap into the past and fire again at once. */
    ASSERT_EQ(gyre_timer_start(&c.t, count_cb, 1, UINT64_MAX), 0);
    huge_repeat_victim = &c.t;
    ASSERT_EQ(gyre_timer_start(&end.t, huge_end_cb, MS(20), 0), 0);
    ASSERT_TRUE(gyre_timer_due_in(&a.t) > UINT64_MAX / 2);
    ASSERT_TRUE(gyre_timer_due_in(&b.t) > UINT64_MAX / 2);
    gyre_handle_unref(&a.t.base);
    gyre_handle_unref(&b.t.base);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(a.fired, 0);
    ASSERT_EQ(b.fired, 0);
    ASSERT_EQ(c.fired, 1);
    ASSERT_EQ(end.fired, 1);
    ASSERT_EQ(gyre_handle_active(&a.t.base), 1);
    ASSERT_EQ(gyre_handle_active(&b.t.base), 1);
    ASSERT_EQ(gyre_timer_stop(&a.t), 0);
    ASSERT_EQ(gyre_timer_stop(&b.t), 0);
    test_loop_free(loop);
}

static void again_cb(gyre_timer *t)
{
    struct rec_timer *r = (struct rec_timer *)t;

    if (++r->fired == 3)
        ASSERT_EQ(gyre_timer_stop(t), 0);
}

void test_timer_again(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_timer r = {0}, oneshot = {0};

    ASSERT_EQ(gyre_timer_init(loop, &r.t), 0);
    ASSERT_EQ(gyre_timer_again(&r.t), -EINVAL); /* never started */
    ASSERT_EQ(gyre_handle_active(&r.t.base), 0);

    /* A repeating timer restarts from now with its repeat interval, whatever
     * its first timeout was. */
    ASSERT_EQ(gyre_timer_start(&r.t, again_cb, SEC(10), MS(2)), 0);
    ASSERT_EQ(gyre_timer_again(&r.t), 0);
    ASSERT_EQ(gyre_handle_active(&r.t.base), 1);
    ASSERT_LE(gyre_timer_due_in(&r.t), MS(2));
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(r.fired, 3);

    /* Stopped but started before: again uses the current repeat value. */
    gyre_timer_set_repeat(&r.t, MS(3));
    ASSERT_EQ(gyre_timer_get_repeat(&r.t), MS(3));
    ASSERT_EQ(gyre_timer_again(&r.t), 0);
    ASSERT_EQ(gyre_handle_active(&r.t.base), 1);
    ASSERT_LE(gyre_timer_due_in(&r.t), MS(3));
    ASSERT_EQ(gyre_timer_stop(&r.t), 0);

    /* Repeat 0: again stops it. */
    ASSERT_EQ(gyre_timer_init(loop, &oneshot.t), 0);
    ASSERT_EQ(gyre_timer_start(&oneshot.t, count_cb, SEC(10), 0), 0);
    ASSERT_EQ(gyre_timer_again(&oneshot.t), 0);
    ASSERT_EQ(gyre_handle_active(&oneshot.t.base), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(oneshot.fired, 0);
    test_loop_free(loop);
}

void test_timer_start_active(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_timer r = {0};
    gyre_stats st;

    ASSERT_EQ(gyre_timer_init(loop, &r.t), 0);
    ASSERT_EQ(gyre_timer_start(&r.t, count_cb, SEC(10), 0), 0);
    ASSERT_EQ(gyre_timer_start(&r.t, count_cb, 0, 0), 0);
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    ASSERT_EQ(st.active_handles, 2); /* the timer once, and the test's hang guard */
    ASSERT_EQ(st.active_refs, 1);
    /* A stale 10 s heap entry would keep the loop alive (or fire later). */
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(r.fired, 1);
    ASSERT_EQ(gyre_handle_active(&r.t.base), 0);
    test_loop_free(loop);
}

void test_timer_due_in(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer t;
    uint64_t due;

    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    ASSERT_EQ(gyre_timer_due_in(&t), 0);
    ASSERT_EQ(gyre_timer_get_repeat(&t), 0);
    ASSERT_EQ(gyre_timer_start(&t, count_cb, SEC(10), 0), 0);
    due = gyre_timer_due_in(&t);
    ASSERT_GT(due, 0);
    ASSERT_LE(due, SEC(10));
    gyre_timer_set_repeat(&t, MS(7));
    ASSERT_EQ(gyre_timer_get_repeat(&t), MS(7));
    ASSERT_EQ(gyre_timer_stop(&t), 0);
    ASSERT_EQ(gyre_timer_due_in(&t), 0);
    ASSERT_EQ(gyre_timer_start(&t, count_cb, 0, 0), 0);
    ASSERT_EQ(gyre_timer_due_in(&t), 0);
    ASSERT_EQ(gyre_timer_stop(&t), 0);
    test_loop_free(loop);
}

static int active_in_oneshot = -1, active_in_repeat = -1;

static void active_oneshot_cb(gyre_timer *t)
{
    active_in_oneshot = gyre_handle_active(&t->base);
}

static void active_repeat_cb(gyre_timer *t)
{
    active_in_repeat = gyre_handle_active(&t->base);
    ASSERT_EQ(gyre_timer_stop(t), 0);
    ASSERT_EQ(gyre_handle_active(&t->base), 0);
}

void test_timer_active_state(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer oneshot, repeat;

    ASSERT_EQ(gyre_timer_init(loop, &oneshot), 0);
    ASSERT_EQ(gyre_timer_init(loop, &repeat), 0);
    ASSERT_EQ(gyre_handle_active(&oneshot.base), 0);
    ASSERT_EQ(gyre_handle_has_ref(&oneshot.base), 1);
    ASSERT_EQ(gyre_timer_start(&oneshot, active_oneshot_cb, MS(1), 0), 0);
    ASSERT_EQ(gyre_timer_start(&repeat, active_repeat_cb, MS(1), MS(1)), 0);
    ASSERT_EQ(gyre_handle_active(&oneshot.base), 1);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    /* A one-shot timer has last fired when its callback runs. */
    ASSERT_EQ(active_in_oneshot, 0);
    ASSERT_EQ(active_in_repeat, 1);
    ASSERT_EQ(gyre_handle_active(&oneshot.base), 0);
    test_loop_free(loop);
}

void test_timer_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer t, zeroed;

    ASSERT_EQ(gyre_timer_init(NULL, &t), -EINVAL);
    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    ASSERT_EQ(gyre_timer_start(&t, NULL, MS(1), 0), -EINVAL);
    ASSERT_EQ(gyre_handle_active(&t.base), 0);
    memset(&zeroed, 0, sizeof zeroed);
    ASSERT_EQ(gyre_timer_start(&zeroed, count_cb, MS(1), 0), -EINVAL);
    ASSERT_EQ(gyre_timer_stop(&t), 0); /* idempotent on a never-started timer */
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_loop_free(loop);
}
