/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-clock.c: scenario H1 -- the wall clock is set back and forward while
 * timers run, and the timers do not notice.
 *
 * A shared test machine must never call clock_settime, so the jump is
 * injected instead: this file defines clock_gettime, gettimeofday and time
 * for the whole test executable (gyre is linked statically into it, so its
 * calls bind here), adding wall_offset to every CLOCK_REALTIME reading and
 * passing every other clock through to libc. A timer implementation that
 * took any deadline from the wall clock would fire early, late or twice
 * after the jumps; gyre's take only CLOCK_MONOTONIC. Assertions are on order
 * and counts; the one clock check is that gyre_now() did not move by the
 * size of a jump.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "runner.h"

#define NS_PER_SEC INT64_C(1000000000)

/* Seconds added to CLOCK_REALTIME readings; 0 outside this test. */
static volatile int64_t wall_offset;
static volatile uint64_t realtime_reads;

typedef int (*clock_fn)(clockid_t, struct timespec *);

static clock_fn real_clock(void)
{
    static clock_fn fn;

    if (fn == NULL) {
        void *sym = dlsym(RTLD_NEXT, "clock_gettime");

        /* POSIX requires dlsym's result to convert to a function pointer;
         * ISO C does not, hence the copy. */
        if (sym == NULL)
            abort();
        memcpy(&fn, &sym, sizeof fn);
    }
    return fn;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    int r = real_clock()(id, ts);

    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        realtime_reads++;
        ts->tv_sec += (time_t)wall_offset;
    }
    return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timespec ts;

    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (out != NULL)
        *out = ts.tv_sec;
    return ts.tv_sec;
}

#define H1_TIMERS 60

struct h1_timer {
    gyre_timer t;
    int id;
    int fired;
};

static int h1_order[H1_TIMERS];
static int h1_norder, h1_repeats;

static void h1_cb(gyre_timer *t)
{
    struct h1_timer *r = (struct h1_timer *)t;

    r->fired++;
    ASSERT_LT(h1_norder, H1_TIMERS);
    h1_order[h1_norder++] = r->id;
    /* The wall clock goes back an hour, then forward two. */
    if (r->id == 10)
        wall_offset = -3600;
    else if (r->id == 30)
        wall_offset = 7200;
}

static void h1_repeat_cb(gyre_timer *t)
{
    if (++h1_repeats == 10)
        ASSERT_EQ(gyre_timer_stop(t), 0);
}

void test_rel_h1_wall_clock(void)
{
    gyre_loop *loop = test_loop_new();
    static struct h1_timer r[H1_TIMERS];
    gyre_timer rep;
    struct timespec wall0, wall1;
    uint64_t now0, now1;
    int i;

    /* The interposer is live: a wall-clock reading moves with the offset. */
    ASSERT_EQ(clock_gettime(CLOCK_REALTIME, &wall0), 0);
    wall_offset = 100000;
    ASSERT_EQ(clock_gettime(CLOCK_REALTIME, &wall1), 0);
    ASSERT_GE(wall1.tv_sec - wall0.tv_sec, 100000);
    ASSERT_GE(time(NULL) - wall0.tv_sec, 100000);
    wall_offset = 0;

    now0 = gyre_now(loop);
    /* Deadlines 2, 4, ... 120 ms, started in reverse so that the heap, not
     * the start order, decides. */
    for (i = H1_TIMERS - 1; i >= 0; i--) {
        r[i].id = i;
        ASSERT_EQ(gyre_timer_init(loop, &r[i].t), 0);
        ASSERT_EQ(gyre_timer_start(&r[i].t, h1_cb, MS(2) * (uint64_t)(i + 1), 0), 0);
    }
    ASSERT_EQ(gyre_timer_init(loop, &rep), 0);
    ASSERT_EQ(gyre_timer_start(&rep, h1_repeat_cb, MS(5), MS(5)), 0);
    test_run_until(loop, &h1_norder, H1_TIMERS);
    test_run_until(loop, &h1_repeats, 10);
    test_run_nowait(loop, 3);
    now1 = gyre_now(loop);
    wall_offset = 0;

    ASSERT_EQ(h1_norder, H1_TIMERS);
    for (i = 0; i < H1_TIMERS; i++) {
        ASSERT_EQ(h1_order[i], i);
        ASSERT_EQ(r[i].fired, 1);
    }
    ASSERT_EQ(h1_repeats, 10);
    /* gyre's clock moved by the test's run time, not by either jump. */
    ASSERT_LT(now1 - now0, (uint64_t)600 * (uint64_t)NS_PER_SEC);
    /* The three readings above were the test's own: gyre read no wall clock. */
    ASSERT_EQ(realtime_reads, 3);
    test_loop_free(loop);
}
