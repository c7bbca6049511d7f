/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* round.c: what keeps every round of gyre-bench bounded and its failures
 * explained: the outcome record and the guard timer.
 *
 * The guard runs on the loop being measured, so a round stuck in the kernel
 * wait (a lost wakeup, a helper that stopped answering) still ends; a round
 * stuck in a callback would not, which is why scenario callbacks do bounded
 * work only.
 */
#include <stdarg.h>
#include <stdio.h>

#include "bench.h"

static void fail(bench_outcome *o, bench_status status, int outside, const char *fmt, va_list ap)
{
    if (o->status != BENCH_OK)
        return;
    o->status = status;
    o->outside = outside;
    vsnprintf(o->note, sizeof o->note, fmt, ap);
}

void bench_fail(bench_outcome *o, bench_status status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fail(o, status, 0, fmt, ap);
    va_end(ap);
}

void bench_fail_outside(bench_outcome *o, bench_status status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fail(o, status, 1, fmt, ap);
    va_end(ap);
}

static void guard_cb(gyre_timer *t)
{
    bench_guard *g = t->base.data;

    bench_fail(g->out, BENCH_TIMEOUT, "a round exceeded %llu s",
               (unsigned long long)(BENCH_ROUND_TIMEOUT_NS / 1000000000u));
    gyre_loop_stop(g->loop);
}

void bench_guard_init(bench_guard *g, gyre_loop *loop, bench_outcome *out)
{
    gyre_timer_init(loop, &g->timer);
    g->timer.base.data = g;
    g->loop = loop;
    g->out = out;
}

int bench_guard_arm(bench_guard *g)
{
    int rc;

    /* The cached time may be as old as the previous round's end. */
    gyre_loop_update_time(g->loop);
    rc = gyre_timer_start(&g->timer, guard_cb, BENCH_ROUND_TIMEOUT_NS, 0);
    if (rc == 0)
        gyre_handle_unref(&g->timer.base);
    return rc;
}

void bench_guard_disarm(bench_guard *g)
{
    gyre_timer_stop(&g->timer);
}
