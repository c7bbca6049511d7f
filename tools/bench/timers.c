/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* timers.c: scenario "timers", the cost of gyre's timer heap with a million
 * timers in it.
 *
 * Two patterns: timers that all fire (deadlines scattered over 0..1 ms, with
 * one in eight sharing a single deadline, the tie-breaking case) and timers
 * that are all stopped before they are due, as request timeouts usually are.
 * Both are measured from the first start to the last fire or stop, so the
 * figures are heap work per timer. Timers live in the core, so backends
 * should differ little; running all of them shows that they do.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

#define TIMERS_COUNT 1000000u
#define TIMERS_SPREAD_NS 1000000u         /* deadlines in 0..1 ms */
#define TIMERS_SHARED_NS 500000u          /* the shared deadline */
#define TIMERS_STOP_OFFSET_NS 1000000000u /* far enough never to fire */
/* Stop order: index j*STRIDE mod n visits every timer once as long as the
 * stride (a prime) does not divide n, and scatters the stops over the heap
 * the way unrelated requests finishing would. */
#define TIMERS_STOP_STRIDE 7919u

typedef struct timers_bench {
    gyre_loop *loop;
    gyre_timer *t;
    uint64_t *timeout_ns;
    size_t n, fired;
    bench_guard guard;
    bench_outcome out;
} timers_bench;

static void timers_fire_cb(gyre_timer *t)
{
    timers_bench *b = t->base.data;

    b->fired++;
}

/* Starts every timer with timeout_ns[i] + offset. Returns 0, or -1 with
 * b->out set and every timer stopped. */
static int timers_start_all(timers_bench *b, uint64_t offset_ns)
{
    size_t i, j;
    int rc;

    for (i = 0; i < b->n; i++) {
        rc = gyre_timer_start(&b->t[i], timers_fire_cb, b->timeout_ns[i] + offset_ns, 0);
        if (rc < 0) {
            bench_fail(&b->out, BENCH_ERROR, "gyre_timer_start #%zu: %s", i, gyre_strerror(rc));
            for (j = 0; j < i; j++)
                gyre_timer_stop(&b->t[j]);
            return -1;
        }
    }
    return 0;
}

/* One round of start + fire; returns ns per timer. */
static double timers_fire_round(timers_bench *b)
{
    uint64_t t0, t1;
    size_t i;
    int rc;

    b->fired = 0;
    gyre_loop_update_time(b->loop);
    t0 = bench_now_ns();
    if (timers_start_all(b, 0) != 0)
        return 0;
    rc = bench_guard_arm(&b->guard);
    if (rc < 0)
        bench_fail(&b->out, BENCH_ERROR, "guard timer: %s", gyre_strerror(rc));
    else if ((rc = gyre_loop_run(b->loop, GYRE_RUN_DEFAULT)) < 0)
        bench_fail(&b->out, BENCH_ERROR, "gyre_loop_run: %s", gyre_strerror(rc));
    t1 = bench_now_ns();
    bench_guard_disarm(&b->guard);
    if (b->fired != b->n) {
        bench_fail(&b->out, BENCH_ERROR, "%zu of %zu timers fired", b->fired, b->n);
        for (i = 0; i < b->n; i++)
            gyre_timer_stop(&b->t[i]);
    }
    return (double)(t1 - t0) / (double)b->n;
}

/* One round of start + stop before due; returns ns per timer. */
static double timers_stop_round(timers_bench *b)
{
    uint64_t t0, t1;
    size_t j;

    b->fired = 0;
    gyre_loop_update_time(b->loop);
    t0 = bench_now_ns();
    if (timers_start_all(b, TIMERS_STOP_OFFSET_NS) != 0)
        return 0;
    for (j = 0; j < b->n; j++)
        gyre_timer_stop(&b->t[(uint64_t)j * TIMERS_STOP_STRIDE % b->n]);
    t1 = bench_now_ns();
    if (gyre_loop_alive(b->loop))
        bench_fail(&b->out, BENCH_ERROR, "the loop is still alive after every timer stopped");
    return (double)(t1 - t0) / (double)b->n;
}

static const struct timers_phase {
    const char *column;
    double (*round)(timers_bench *b);
} timers_phases[] = {
    {"start+fire", timers_fire_round},
    {"start+stop", timers_stop_round},
};
#define N_TIMERS_PHASES (sizeof timers_phases / sizeof timers_phases[0])

/* Deadlines from a fixed seed, so every backend and every run sees the same
 * heap. */
static void timers_make_timeouts(uint64_t *timeout_ns, size_t n)
{
    uint64_t seed = 42;
    size_t i;

    for (i = 0; i < n; i++)
        timeout_ns[i] = i % 8 == 0 ? TIMERS_SHARED_NS : bench_rand(&seed) % (TIMERS_SPREAD_NS + 1);
}

static int timers_run(bench_ctx *ctx, const char *backend)
{
    timers_bench b = {.n = TIMERS_COUNT};
    gyre_loop_opts opts = {0};
    double ns[BENCH_MAX_ROUNDS];
    bench_stats stats = {0};
    size_t p, i;
    int r, rc, fatal = 0;

    b.t = calloc(b.n, sizeof *b.t);
    b.timeout_ns = calloc(b.n, sizeof *b.timeout_ns);
    if (!b.t || !b.timeout_ns) {
        free(b.t);
        free(b.timeout_ns);
        return -1;
    }
    timers_make_timeouts(b.timeout_ns, b.n);
    opts.backend = backend;
    rc = gyre_loop_new(&b.loop, &opts);
    if (rc < 0)
        bench_fail(&b.out, BENCH_ERROR, "gyre_loop_new: %s", gyre_strerror(rc));
    for (i = 0; rc == 0 && i < b.n; i++) {
        gyre_timer_init(b.loop, &b.t[i]);
        b.t[i].base.data = &b;
    }
    if (rc == 0)
        bench_guard_init(&b.guard, b.loop, &b.out);

    for (p = 0; p < N_TIMERS_PHASES && !fatal; p++) {
        /* Each phase is its own measurement; a failure in one does not
         * hide the other. Setup failures apply to both. */
        if (rc == 0)
            b.out.status = BENCH_OK;
        for (r = 0; b.out.status == BENCH_OK && r < ctx->rounds; r++) {
            bench_progress("[timers] %s %s round %d/%d", backend, timers_phases[p].column, r + 1,
                           ctx->rounds);
            ns[r] = timers_phases[p].round(&b);
        }
        if (b.out.status == BENCH_OK)
            stats = bench_stats_of(ns, r);
        fatal = bench_record(ctx, &bench_scenario_timers, backend, timers_phases[p].column, -1,
                             b.out.status, &stats, b.out.note) != 0;
    }
    if (b.loop)
        (void)gyre_loop_free(b.loop);
    free(b.t);
    free(b.timeout_ns);
    return fatal ? -1 : 0;
}

const bench_scenario bench_scenario_timers = {
    .name = "timers",
    .summary = "1,000,000 timers started and fired, then started and stopped",
    .title = "timers, 1000000 per round",
    .unit = "ns per timer",
    .run = timers_run,
    .plot = NULL,
};
