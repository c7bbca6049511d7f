/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-async.c: cross-thread wakeups -- coalescing, sends from the loop
 * thread and from callbacks, close, and the rule that the final send of a
 * storm from many threads is never lost.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "runner.h"

struct rec_async {
    gyre_async a;
    int calls;
};

static void count_cb(gyre_async *a)
{
    ((struct rec_async *)a)->calls++;
}

/* E1: each thread bumps `seq` before every send, then bumps `done` and
 * sends once more. That last send follows the thread's `done`, so the
 * callback it must cause sees every thread done and every send counted; the
 * test ends only from such a callback, so a lost final wakeup hangs (and the
 * guard fails it) instead of passing. (Without the send after `done`, a
 * thread's last send could be called back before it bumped `done`, and the
 * test itself would wait forever.) */
enum {
    STORM_THREADS = 8
};

static struct {
    gyre_async a;
    size_t per_thread, total;
    atomic_size_t seq;
    atomic_int done;
    size_t calls, last_seen;
} storm;

static void *storm_thread(void *arg)
{
    size_t i;

    (void)arg;
    for (i = 0; i < storm.per_thread; i++) {
        atomic_fetch_add(&storm.seq, 1);
        ASSERT_EQ(gyre_async_send(&storm.a), 0);
    }
    atomic_fetch_add(&storm.done, 1);
    ASSERT_EQ(gyre_async_send(&storm.a), 0);
    return NULL;
}

static void storm_cb(gyre_async *a)
{
    /* done before seq: done == all means every increment of seq (and every
     * send) happened before this load. */
    int done = atomic_load(&storm.done);
    size_t seen = atomic_load(&storm.seq);

    storm.calls++;
    storm.last_seen = seen;
    ASSERT_LE(seen, storm.total);
    if (done == STORM_THREADS) {
        ASSERT_EQ(seen, storm.total);
        ASSERT_EQ(gyre_async_close(a), 0);
    }
}

void test_async_threads(void)
{
    gyre_loop *loop = test_loop_new();
    pthread_t th[STORM_THREADS];
    int i;

    storm.per_thread = test_scale(100000);
    storm.total = storm.per_thread * STORM_THREADS;
    ASSERT_EQ(gyre_async_init(loop, &storm.a, storm_cb), 0);
    for (i = 0; i < STORM_THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, storm_thread, NULL), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    for (i = 0; i < STORM_THREADS; i++)
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
    ASSERT_GE(storm.calls, 1);
    ASSERT_LE(storm.calls, storm.total);
    ASSERT_EQ(storm.last_seen, storm.total);
    test_loop_free(loop);
}

static struct rec_async self_async;

static void self_timer_cb(gyre_timer *t)
{
    (void)t;
    ASSERT_EQ(gyre_async_send(&self_async.a), 0);
    ASSERT_EQ(self_async.calls, 1); /* not inside send */
}

static void self_cb(gyre_async *a)
{
    if (++self_async.calls == 2)
        ASSERT_EQ(gyre_async_close(a), 0);
}

void test_async_self_send(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer t;

    ASSERT_EQ(gyre_async_init(loop, &self_async.a, self_cb), 0);
    ASSERT_EQ(gyre_async_send(&self_async.a), 0);
    ASSERT_EQ(self_async.calls, 0);
    test_run_until(loop, &self_async.calls, 1);
    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    ASSERT_EQ(gyre_timer_start(&t, self_timer_cb, MS(1), 0), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(self_async.calls, 2);
    test_loop_free(loop);
}

void test_async_coalesce(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_async r = {0};
    int i;

    ASSERT_EQ(gyre_async_init(loop, &r.a, count_cb), 0);
    for (i = 0; i < 10; i++)
        ASSERT_EQ(gyre_async_send(&r.a), 0);
    test_run_until(loop, &r.calls, 1);
    test_run_nowait(loop, 5);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(gyre_async_close(&r.a), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_loop_free(loop);
}

static void resend_cb(gyre_async *a)
{
    struct rec_async *r = (struct rec_async *)a;

    if (++r->calls < 3)
        ASSERT_EQ(gyre_async_send(a), 0);
    else
        ASSERT_EQ(gyre_async_close(a), 0);
}

void test_async_send_in_cb(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_async r = {0};

    ASSERT_EQ(gyre_async_init(loop, &r.a, resend_cb), 0);
    ASSERT_EQ(gyre_async_send(&r.a), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(r.calls, 3);
    test_loop_free(loop);
}

void test_async_close(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_async idle = {0}, pending = {0};

    ASSERT_EQ(gyre_async_init(loop, &idle.a, count_cb), 0);
    ASSERT_EQ(gyre_handle_active(&idle.a.base), 1);
    ASSERT_EQ(gyre_loop_alive(loop), 1);
    ASSERT_EQ(gyre_async_close(&idle.a), 0);
    ASSERT_EQ(gyre_handle_active(&idle.a.base), 0);
    /* A send made before close must not call back after it. */
    ASSERT_EQ(gyre_async_init(loop, &pending.a, count_cb), 0);
    ASSERT_EQ(gyre_async_send(&pending.a), 0);
    ASSERT_EQ(gyre_async_close(&pending.a), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(idle.calls, 0);
    ASSERT_EQ(pending.calls, 0);
    test_loop_free(loop);
}
