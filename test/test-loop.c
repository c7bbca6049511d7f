/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-loop.c: the loop object -- embedding (loop fd, timeout), run modes,
 * ref/unref, stop, re-entrancy, freeing with live handles, creation options,
 * backend identity and capabilities, and the statistics counters.
 *
 * Several tests need a loop with nothing else in it (exact counters, -1
 * timeouts, -EBUSY on free), so they use gyre_loop_new() rather than
 * test_loop_new() and its hang guard; those never block.
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "runner.h"

static gyre_loop *bare_loop_new(void)
{
    gyre_loop *loop = NULL;

    ASSERT_EQ(gyre_loop_new(&loop, NULL), 0);
    return loop;
}

static int fd_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, 0);

    ASSERT_SYS(n);
    return n == 1 && (pfd.revents & POLLIN) != 0;
}

struct rec_watch {
    gyre_watch w;
    int fired;
};

static void read_all_cb(gyre_watch *w, uint32_t events)
{
    char buf[64];

    (void)events;
    ((struct rec_watch *)w)->fired++;
    while (read(gyre_watch_fd(w), buf, sizeof buf) > 0)
        continue;
}

struct rec_async {
    gyre_async a;
    int calls;
};

static void async_count_cb(gyre_async *a)
{
    ((struct rec_async *)a)->calls++;
}

void test_loop_fd(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch r = {0};
    struct rec_async as = {0};
    int p[2], fd = gyre_loop_fd(loop);

    if (!(gyre_loop_caps(loop) & GYRE_CAP_LOOP_FD)) {
        ASSERT_EQ(fd, -ENOTSUP);
        SKIP("backend lacks GYRE_CAP_LOOP_FD");
    }
    ASSERT_GE(fd, 0);
    test_pipe(p);
    ASSERT_EQ(gyre_watch_init(loop, &r.w, p[0]), 0);
    ASSERT_EQ(gyre_watch_start(&r.w, GYRE_IN, read_all_cb), 0);
    ASSERT_EQ(gyre_async_init(loop, &as.a, async_count_cb), 0);
    /* Registrations may be queued until an iteration flushes them. */
    test_run_nowait(loop, 1);
    ASSERT_EQ(fd_readable(fd), 0);

    test_write_bytes(p[1], "x", 1);
    ASSERT_EQ(fd_readable(fd), 1);
    test_run_until(loop, &r.fired, 1);
    ASSERT_EQ(fd_readable(fd), 0);

    /* Wakeups from gyre_async_send() reach an embedding loop the same way. */
    ASSERT_EQ(gyre_async_send(&as.a), 0);
    ASSERT_EQ(fd_readable(fd), 1);
    test_run_until(loop, &as.calls, 1);
    ASSERT_EQ(fd_readable(fd), 0);

    ASSERT_EQ(gyre_async_close(&as.a), 0);
    ASSERT_EQ(gyre_watch_stop(&r.w), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

static void timer_count_cb(gyre_timer *t)
{
    ++*(int *)t->base.data;
}

static void idle_noop_cb(gyre_hook *h)
{
    (void)h;
}

void test_loop_timeout(void)
{
    gyre_loop *loop = bare_loop_new();
    gyre_timer t;
    gyre_hook idle;
    int64_t to;
    int fired = 0;

    ASSERT_EQ(gyre_loop_timeout(loop), -1);
    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    t.base.data = &fired;
    ASSERT_EQ(gyre_timer_start(&t, timer_count_cb, SEC(10), 0), 0);
    to = gyre_loop_timeout(loop);
    ASSERT_GT(to, 0);
    ASSERT_LE(to, (int64_t)SEC(10));
    ASSERT_EQ(gyre_timer_stop(&t), 0);
    ASSERT_EQ(gyre_loop_timeout(loop), -1);

    ASSERT_EQ(gyre_hook_init(loop, &idle, GYRE_HOOK_IDLE), 0);
    ASSERT_EQ(gyre_hook_start(&idle, idle_noop_cb), 0);
    ASSERT_EQ(gyre_loop_timeout(loop), 0);
    ASSERT_EQ(gyre_hook_stop(&idle), 0);

    ASSERT_EQ(gyre_timer_start(&t, timer_count_cb, 0, 0), 0);
    ASSERT_EQ(gyre_loop_timeout(loop), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(fired, 1);
    ASSERT_EQ(gyre_loop_timeout(loop), -1);
    ASSERT_EQ(gyre_loop_free(loop), 0);
}

void test_loop_run_nowait(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer t;
    uint64_t before;
    int fired = 0;

    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    t.base.data = &fired;
    ASSERT_EQ(gyre_timer_start(&t, timer_count_cb, SEC(10), 0), 0);
    before = test_iterations(loop);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 1);
    ASSERT_EQ(test_iterations(loop), before + 1);
    ASSERT_EQ(fired, 0);
    ASSERT_EQ(gyre_timer_stop(&t), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
    test_loop_free(loop);
}

/* One iteration: due timers run, the wait returns at once for the ready
 * pipe, and run reports the 10 s timer still active. (With nothing ready,
 * the wait would last until the next timer, as in libuv.) */
void test_loop_run_once(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer now, later;
    struct rec_watch r = {0};
    uint64_t before;
    int fired_now = 0, fired_later = 0, p[2];

    test_pipe(p);
    test_write_bytes(p[1], "x", 1);
    ASSERT_EQ(gyre_watch_init(loop, &r.w, p[0]), 0);
    ASSERT_EQ(gyre_watch_start(&r.w, GYRE_IN, read_all_cb), 0);
    ASSERT_EQ(gyre_timer_init(loop, &now), 0);
    ASSERT_EQ(gyre_timer_init(loop, &later), 0);
    now.base.data = &fired_now;
    later.base.data = &fired_later;
    ASSERT_EQ(gyre_timer_start(&now, timer_count_cb, 0, 0), 0);
    ASSERT_EQ(gyre_timer_start(&later, timer_count_cb, SEC(10), 0), 0);
    before = test_iterations(loop);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_ONCE), 1);
    ASSERT_EQ(test_iterations(loop), before + 1);
    ASSERT_EQ(fired_now, 1);
    ASSERT_EQ(r.fired, 1);
    ASSERT_EQ(fired_later, 0);
    ASSERT_EQ(gyre_timer_stop(&later), 0);
    ASSERT_EQ(gyre_watch_stop(&r.w), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_loop_run_default_empty(void)
{
    gyre_loop *loop = bare_loop_new();

    ASSERT_EQ(gyre_loop_alive(loop), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
    ASSERT_EQ(gyre_loop_free(loop), 0);
}

void test_loop_unref(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer idle_timer, soon, keeper;
    int fired_idle = 0, fired_soon = 0, fired_keeper = 0;

    ASSERT_EQ(gyre_timer_init(loop, &idle_timer), 0);
    idle_timer.base.data = &fired_idle;
    ASSERT_EQ(gyre_timer_start(&idle_timer, timer_count_cb, SEC(10), 0), 0);
    gyre_handle_unref(&idle_timer.base);
    gyre_handle_unref(&idle_timer.base);
    ASSERT_EQ(gyre_handle_has_ref(&idle_timer.base), 0);
    ASSERT_EQ(gyre_handle_active(&idle_timer.base), 1);
    ASSERT_EQ(gyre_loop_alive(loop), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(fired_idle, 0);

    gyre_handle_ref(&idle_timer.base);
    gyre_handle_ref(&idle_timer.base);
    ASSERT_EQ(gyre_handle_has_ref(&idle_timer.base), 1);
    ASSERT_EQ(gyre_loop_alive(loop), 1);
    gyre_handle_unref(&idle_timer.base);

    /* Unreferenced timers still fire while something else keeps the loop
     * running. */
    ASSERT_EQ(gyre_timer_init(loop, &soon), 0);
    ASSERT_EQ(gyre_timer_init(loop, &keeper), 0);
    soon.base.data = &fired_soon;
    keeper.base.data = &fired_keeper;
    ASSERT_EQ(gyre_timer_start(&soon, timer_count_cb, 0, 0), 0);
    gyre_handle_unref(&soon.base);
    ASSERT_EQ(gyre_timer_start(&keeper, timer_count_cb, MS(5), 0), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(fired_soon, 1);
    ASSERT_EQ(fired_keeper, 1);
    ASSERT_EQ(fired_idle, 0);
    ASSERT_EQ(gyre_timer_stop(&idle_timer), 0);
    test_loop_free(loop);
}

static void stop_loop_cb(gyre_timer *t)
{
    gyre_loop_stop(t->base.data);
}

void test_loop_stop(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer stopper, later;
    int fired_later = 0;

    ASSERT_EQ(gyre_timer_init(loop, &stopper), 0);
    ASSERT_EQ(gyre_timer_init(loop, &later), 0);
    stopper.base.data = loop;
    later.base.data = &fired_later;
    ASSERT_EQ(gyre_timer_start(&stopper, stop_loop_cb, 0, 0), 0);
    ASSERT_EQ(gyre_timer_start(&later, timer_count_cb, SEC(10), 0), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 1);
    ASSERT_EQ(fired_later, 0);
    ASSERT_EQ(gyre_timer_stop(&later), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_loop_free(loop);
}

static int reentrant_checked;

static void reentrant_cb(gyre_timer *t)
{
    gyre_loop *loop = t->base.data;

    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), -EBUSY);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_ONCE), -EBUSY);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_NOWAIT), -EBUSY);
    ASSERT_EQ(gyre_loop_free(loop), -EBUSY);
    reentrant_checked++;
}

void test_loop_run_reentrant(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer t;

    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    t.base.data = loop;
    ASSERT_EQ(gyre_timer_start(&t, reentrant_cb, 0, 0), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(reentrant_checked, 1);
    test_loop_free(loop);
}

/* Another thread calling run while the loop runs gets -EBUSY. */
static void *run_from_thread(void *arg)
{
    ASSERT_EQ(gyre_loop_run(arg, GYRE_RUN_NOWAIT), -EBUSY);
    return NULL;
}

static void other_thread_cb(gyre_timer *t)
{
    pthread_t th;

    ASSERT_EQ(pthread_create(&th, NULL, run_from_thread, t->base.data), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    reentrant_checked++;
}

void test_loop_run_other_thread(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_timer t;

    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    t.base.data = loop;
    ASSERT_EQ(gyre_timer_start(&t, other_thread_cb, 0, 0), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(reentrant_checked, 1);
    test_loop_free(loop);
}

static void never_timer_cb(gyre_timer *t)
{
    (void)t;
    FAIL("timer must not fire");
}

static void never_watch_cb(gyre_watch *w, uint32_t events)
{
    (void)w;
    (void)events;
    FAIL("watch must not fire");
}

static void never_async_cb(gyre_async *a)
{
    (void)a;
    FAIL("async must not fire");
}

void test_loop_free_busy(void)
{
    gyre_loop *loop = bare_loop_new();
    gyre_timer t;
    gyre_watch w;
    gyre_async a;
    gyre_hook h;
    int p[2];

    test_pipe(p);
    ASSERT_EQ(gyre_timer_init(loop, &t), 0);
    ASSERT_EQ(gyre_timer_start(&t, never_timer_cb, SEC(10), 0), 0);
    ASSERT_EQ(gyre_loop_free(loop), -EBUSY);
    gyre_handle_unref(&t.base); /* referenced or not */
    ASSERT_EQ(gyre_loop_free(loop), -EBUSY);
    ASSERT_EQ(gyre_timer_stop(&t), 0);

    ASSERT_EQ(gyre_watch_init(loop, &w, p[0]), 0);
    ASSERT_EQ(gyre_watch_start(&w, GYRE_IN, never_watch_cb), 0);
    ASSERT_EQ(gyre_loop_free(loop), -EBUSY);
    ASSERT_EQ(gyre_watch_stop(&w), 0);

    ASSERT_EQ(gyre_async_init(loop, &a, never_async_cb), 0);
    ASSERT_EQ(gyre_loop_free(loop), -EBUSY);
    ASSERT_EQ(gyre_async_close(&a), 0);

    ASSERT_EQ(gyre_hook_init(loop, &h, GYRE_HOOK_CHECK), 0);
    ASSERT_EQ(gyre_hook_start(&h, idle_noop_cb), 0);
    ASSERT_EQ(gyre_loop_free(loop), -EBUSY);
    ASSERT_EQ(gyre_hook_stop(&h), 0);

    /* The loop still works after refused frees. */
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
    ASSERT_EQ(gyre_loop_free(loop), 0);
    test_close(p[0]);
    test_close(p[1]);
}

/* Asserts that gyre_loop_new(opts) fails with `expect` and leaves the
 * out-pointer alone. */
static void new_fails(const gyre_loop_opts *opts, int expect)
{
    gyre_loop *sentinel = (gyre_loop *)&sentinel;
    gyre_loop *loop = sentinel;

    ASSERT_EQ(gyre_loop_new(&loop, opts), expect);
    ASSERT_TRUE(loop == sentinel);
}

void test_loop_new_bad_args(void)
{
    const char *backend = test_backend();
    gyre_loop_opts opts;
    gyre_loop *loop;

    memset(&opts, 0, sizeof opts);
    opts.backend = "nope";
    new_fails(&opts, -EINVAL);
    memset(&opts, 0, sizeof opts);
    opts.flags = 0x80000000u;
    new_fails(&opts, -EINVAL);
    memset(&opts, 0, sizeof opts);
    opts.reserved[2] = 1;
    new_fails(&opts, -EINVAL);
    memset(&opts, 0, sizeof opts);
    opts.reserved32 = 1;
    new_fails(&opts, -EINVAL);
    ASSERT_EQ(gyre_loop_new(NULL, NULL), -EINVAL);

    /* The environment is read only when opts.backend is NULL. */
    ASSERT_SYS(setenv("GYRE_BACKEND", "nope", 1));
    new_fails(NULL, -EINVAL);
    memset(&opts, 0, sizeof opts);
    opts.backend = backend;
    ASSERT_EQ(gyre_loop_new(&loop, &opts), 0);
    ASSERT_STREQ(gyre_loop_backend(loop), backend);
    ASSERT_EQ(gyre_loop_free(loop), 0);
    opts.backend = "auto";
    ASSERT_EQ(gyre_loop_new(&loop, &opts), 0);
    ASSERT_EQ(gyre_loop_free(loop), 0);
}

void test_loop_backend_name(void)
{
    static const char *const names[] = {"select", "poll", "epoll"};
    const char *env = getenv("GYRE_BACKEND");
    gyre_loop *loop = bare_loop_new();
    gyre_loop_opts opts;
    size_t i;

    if (env != NULL && *env != '\0' && strcmp(env, "auto") != 0)
        ASSERT_STREQ(gyre_loop_backend(loop), env);
    ASSERT_EQ(gyre_backend_supported(gyre_loop_backend(loop)), 1);
    ASSERT_EQ(gyre_loop_free(loop), 0);
    ASSERT_EQ(gyre_backend_supported("nope"), -EINVAL);
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        ASSERT_EQ(gyre_backend_supported(names[i]), 1); /* all three on any Linux */
        memset(&opts, 0, sizeof opts);
        opts.backend = names[i];
        ASSERT_EQ(gyre_loop_new(&loop, &opts), 0);
        ASSERT_STREQ(gyre_loop_backend(loop), names[i]);
        ASSERT_EQ(gyre_loop_free(loop), 0);
    }
}

void test_loop_caps(void)
{
    gyre_loop *loop = bare_loop_new();
    uint32_t caps = gyre_loop_caps(loop);
    uint32_t want;

    if (test_backend_is("select"))
        want = 0;
    else if (test_backend_is("poll"))
        want = GYRE_CAP_ANY_FD;
    else if (test_backend_is("uring"))
        want = GYRE_CAP_EDGE | GYRE_CAP_LOOP_FD | GYRE_CAP_ANY_FD | GYRE_CAP_NATIVE_OPS;
    else
        want = GYRE_CAP_EDGE | GYRE_CAP_LOOP_FD | GYRE_CAP_ANY_FD;
    ASSERT_EQ(caps, want);
    if (caps & GYRE_CAP_LOOP_FD)
        ASSERT_GE(gyre_loop_fd(loop), 0);
    else
        ASSERT_EQ(gyre_loop_fd(loop), -ENOTSUP);
    ASSERT_EQ(gyre_loop_free(loop), 0);
}

static void read_two_cb(gyre_watch *w, uint32_t events)
{
    struct rec_watch *r = (struct rec_watch *)w;
    char c;

    (void)events;
    ASSERT_EQ(read(gyre_watch_fd(w), &c, 1), 1);
    if (++r->fired == 2)
        ASSERT_EQ(gyre_watch_stop(w), 0);
}

void test_loop_stats(void)
{
    gyre_loop *loop = bare_loop_new();
    gyre_timer timers[7];
    struct rec_watch r = {0};
    gyre_stats st;
    int fired = 0, p[2], i;

    ASSERT_EQ(gyre_loop_stats(loop, NULL), -EINVAL);
    ASSERT_EQ(gyre_loop_stats(NULL, &st), -EINVAL);
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    ASSERT_EQ(st.timers_fired, 0);
    ASSERT_EQ(st.events_dispatched, 0);
    ASSERT_EQ(st.active_handles, 0);

    for (i = 0; i < 7; i++) {
        ASSERT_EQ(gyre_timer_init(loop, &timers[i]), 0);
        timers[i].base.data = &fired;
        ASSERT_EQ(gyre_timer_start(&timers[i], timer_count_cb, MS(i), 0), 0);
    }
    gyre_handle_unref(&timers[0].base);
    test_pipe(p);
    test_write_bytes(p[1], "ab", 2);
    ASSERT_EQ(gyre_watch_init(loop, &r.w, p[0]), 0);
    ASSERT_EQ(gyre_watch_start(&r.w, GYRE_IN, read_two_cb), 0);
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    ASSERT_EQ(st.active_handles, 8);
    ASSERT_EQ(st.active_refs, 7);

    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(fired, 7);
    ASSERT_EQ(r.fired, 2);
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    ASSERT_GT(st.iterations, 0);
    ASSERT_GT(st.kernel_waits, 0);
    ASSERT_EQ(st.timers_fired, 7);
    ASSERT_EQ(st.events_dispatched, 2);
    ASSERT_EQ(st.active_handles, 0);
    ASSERT_EQ(st.active_refs, 0);
    if (getenv("GYRE_FAULTS") == NULL)
        ASSERT_EQ(st.faults_injected, 0);
    test_close(p[0]);
    test_close(p[1]);
    ASSERT_EQ(gyre_loop_free(loop), 0);
}

static void stop_self_cb(gyre_watch *w, uint32_t events)
{
    ASSERT_EQ(events, GYRE_IN);
    ((struct rec_watch *)w)->fired++;
    ASSERT_EQ(gyre_watch_stop(w), 0);
}

/* max_events 1: three ready fds take three waits, and none is lost or
 * reported twice. */
void test_loop_max_events_one(void)
{
    gyre_loop *loop;
    gyre_loop_opts opts;
    struct rec_watch r[3];
    int p[3][2], i;

    memset(&opts, 0, sizeof opts);
    opts.max_events = 1;
    loop = test_loop_new_opts(&opts); /* with the hang guard: a lost event fails, not hangs */
    memset(r, 0, sizeof r);
    for (i = 0; i < 3; i++) {
        test_pipe(p[i]);
        test_write_bytes(p[i][1], "x", 1);
        ASSERT_EQ(gyre_watch_init(loop, &r[i].w, p[i][0]), 0);
        ASSERT_EQ(gyre_watch_start(&r[i].w, GYRE_IN, stop_self_cb), 0);
    }
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(r[i].fired, 1);
        test_close(p[i][0]);
        test_close(p[i][1]);
    }
    test_loop_free(loop);
}
