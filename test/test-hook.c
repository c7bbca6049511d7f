/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-hook.c: prepare, check and idle hooks -- where they run in an
 * iteration, start order, idle keeping the loop from blocking, and hooks
 * stopping themselves.
 */
#include "runner.h"

/* Trace of one iteration, one letter per callback. */
static char trace[32];
static size_t ntrace;

static void mark(char c)
{
    ASSERT_LT(ntrace, sizeof trace - 1);
    trace[ntrace++] = c;
}

static void prepare_cb(gyre_hook *h)
{
    (void)h;
    mark('P');
}

static void check_cb(gyre_hook *h)
{
    (void)h;
    mark('C');
}

static void timer_cb(gyre_timer *t)
{
    (void)t;
    mark('T');
}

static void watch_cb(gyre_watch *w, uint32_t events)
{
    (void)events;
    mark('W');
    ASSERT_EQ(gyre_watch_stop(w), 0);
}

static void hook_begin(gyre_loop *loop, gyre_hook *h, gyre_hook_kind kind, gyre_hook_cb cb)
{
    ASSERT_EQ(gyre_hook_init(loop, h, kind), 0);
    ASSERT_EQ(gyre_hook_start(h, cb), 0);
}

/* The documented iteration: timers, prepare, wait, dispatch, check. */
void test_hook_order(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_hook prep, check;
    gyre_timer t;
    gyre_watch w;
    int p[2];

    test_pipe(p);
    test_write_bytes(p[1], "x", 1);
    hook_begin(loop, &check, GYRE_HOOK_CHECK, check_cb);
    hook_begin(loop, &prep, GYRE_HOOK_PREPARE, prepare_cb);
    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    ASSERT_EQ(gyre_timer_start(&t, timer_cb, 0, 0), 0);
    ASSERT_EQ(gyre_watch_init(loop, &w, p[0]), 0);
    ASSERT_EQ(gyre_watch_start(&w, GYRE_IN, watch_cb), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_ONCE), 1);
    ASSERT_STREQ(trace, "TPWC");
    ASSERT_EQ(gyre_hook_stop(&prep), 0);
    ASSERT_EQ(gyre_hook_stop(&check), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

struct id_hook {
    gyre_hook h;
    char id;
};

static void id_cb(gyre_hook *h)
{
    mark(((struct id_hook *)h)->id);
}

static void id_alt_cb(gyre_hook *h)
{
    mark((char)(((struct id_hook *)h)->id - 'a' + 'A'));
}

void test_hook_start_order(void)
{
    gyre_loop *loop = test_loop_new();
    struct id_hook hooks[3] = {{.id = 'c'}, {.id = 'a'}, {.id = 'b'}};
    int i;

    for (i = 0; i < 3; i++)
        hook_begin(loop, &hooks[i].h, GYRE_HOOK_PREPARE, id_cb);
    /* Restarting an active hook replaces its callback, not its place. */
    ASSERT_EQ(gyre_hook_start(&hooks[0].h, id_alt_cb), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 1);
    ASSERT_STREQ(trace, "Cab");
    for (i = 0; i < 3; i++)
        ASSERT_EQ(gyre_hook_stop(&hooks[i].h), 0);
    test_loop_free(loop);
}

/* An idle hook runs ten times while a 10 s timer is pending: if the loop
 * blocked on the timer even once, the timer would fire first. */
static gyre_timer idle_blocker;
static gyre_loop *idle_loop;
static int idle_calls, blocker_fired;
static uint64_t idle_last_iteration;

static void blocker_cb(gyre_timer *t)
{
    (void)t;
    blocker_fired++;
}

static void idle_cb(gyre_hook *h)
{
    uint64_t iteration = test_iterations(idle_loop);

    if (idle_calls > 0)
        ASSERT_GT(iteration, idle_last_iteration); /* once per iteration */
    idle_last_iteration = iteration;
    if (++idle_calls == 10) {
        ASSERT_EQ(gyre_hook_stop(h), 0);
        ASSERT_EQ(gyre_timer_stop(&idle_blocker), 0);
    }
}

void test_hook_idle_no_block(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_hook idle;

    idle_loop = loop;
    ASSERT_EQ(gyre_timer_init(loop, &idle_blocker), 0);
    ASSERT_EQ(gyre_timer_start(&idle_blocker, blocker_cb, SEC(10), 0), 0);
    hook_begin(loop, &idle, GYRE_HOOK_IDLE, idle_cb);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(idle_calls, 10);
    ASSERT_EQ(blocker_fired, 0);
    ASSERT_GE(test_iterations(loop), 10);
    test_loop_free(loop);
}

static int self_calls[3];

static void stop_self_cb(gyre_hook *h)
{
    self_calls[*(int *)h->base.data]++;
    ASSERT_EQ(gyre_hook_stop(h), 0);
    ASSERT_EQ(gyre_hook_stop(h), 0);
}

void test_hook_stop_self(void)
{
    static int kinds[3] = {GYRE_HOOK_PREPARE, GYRE_HOOK_CHECK, GYRE_HOOK_IDLE};
    gyre_loop *loop = test_loop_new();
    gyre_hook hooks[3];
    gyre_timer t;
    int i;

    for (i = 0; i < 3; i++) {
        hook_begin(loop, &hooks[i], kinds[i], stop_self_cb);
        hooks[i].base.data = &kinds[i];
    }
    /* Once idle has stopped, the first iteration may block in its wait:
     * the timer bounds that wait, so check runs and the loop drains. */
    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    ASSERT_EQ(gyre_timer_start(&t, timer_cb, MS(1), 0), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_STREQ(trace, "T");
    test_run_nowait(loop, 3);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(self_calls[i], 1);
        ASSERT_EQ(gyre_handle_active(&hooks[i].base), 0);
    }
    test_loop_free(loop);
}
