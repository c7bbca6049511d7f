/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* timer.c: timers on a 4-ary min-heap keyed by (deadline, start sequence).
 *
 * A 4-ary heap is shallower than a binary one and its four children share a
 * cache line of pointers, which is why libev uses it. Ties on the deadline are
 * broken by a per-loop start sequence, so timers due together fire in the
 * order they were started. Each timer stores its own heap index, so stop is
 * O(log n) with no search.
 *
 * A timer started or re-armed while timers are being run gets a sequence
 * number above the pass's limit and waits for the next iteration: that is
 * what makes "timeout 0" mean "next iteration" and stops a zero-repeat or
 * self-restarting timer from spinning inside one pass.
 */
#include <errno.h>

#include "core/alloc.h"
#include "core/loop.h"

#define D 4

static int before(const gyre_timer *a, const gyre_timer *b)
{
    if (a->gyre__priv.deadline_ns != b->gyre__priv.deadline_ns)
        return a->gyre__priv.deadline_ns < b->gyre__priv.deadline_ns;
    return a->gyre__priv.seq < b->gyre__priv.seq;
}

static void place(gyre_timer **heap, size_t i, gyre_timer *t)
{
    heap[i] = t;
    t->gyre__priv.heap_index = (uint32_t)i;
}

static void sift_up(gyre_timer **heap, size_t i)
{
    gyre_timer *t = heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / D;
        if (!before(t, heap[parent]))
            break;
        place(heap, i, heap[parent]);
        i = parent;
    }
    place(heap, i, t);
}

static void sift_down(gyre_timer **heap, size_t len, size_t i)
{
    gyre_timer *t = heap[i];

    for (;;) {
        size_t first = i * D + 1, best = i;
        gyre_timer *bt = t;

        for (size_t c = first; c < first + D && c < len; c++) {
            if (before(heap[c], bt)) {
                best = c;
                bt = heap[c];
            }
        }
        if (best == i)
            break;
        place(heap, i, bt);
        i = best;
    }
    place(heap, i, t);
}

static void heap_remove(gyre_loop *loop, gyre_timer *t)
{
    size_t i = t->gyre__priv.heap_index;
    gyre_timer *last = loop->heap[--loop->heap_len];

    if (last == t)
        return;
    place(loop->heap, i, last);
    if (i > 0 && before(last, loop->heap[(i - 1) / D]))
        sift_up(loop->heap, i);
    else
        sift_down(loop->heap, loop->heap_len, i);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Inserts t due `timeout_ns` after the cached time. The heap has room. */
static void arm(gyre_loop *loop, gyre_timer *t, uint64_t timeout_ns)
{
    t->gyre__priv.deadline_ns = add_sat(loop->now_ns, timeout_ns);
    t->gyre__priv.seq = ++loop->timer_seq;
    place(loop->heap, loop->heap_len, t);
    sift_up(loop->heap, loop->heap_len++);
    gyre__handle_start(&t->base);
}

GYRE_API int gyre_timer_init(gyre_loop *loop, gyre_timer *t)
{
    if (loop == NULL || t == NULL)
        return -EINVAL;
    gyre__handle_init(loop, &t->base, GYRE__H_TIMER);
    t->cb = NULL;
    t->gyre__priv.deadline_ns = 0;
    t->gyre__priv.repeat_ns = 0;
    t->gyre__priv.seq = 0;
    t->gyre__priv.heap_index = 0;
    return 0;
}

GYRE_API int gyre_timer_start(gyre_timer *t, gyre_timer_cb cb, uint64_t timeout_ns,
                              uint64_t repeat_ns)
{
    gyre_loop *loop;
    int r;

    if (t == NULL || !gyre__handle_is(&t->base, GYRE__H_TIMER) || cb == NULL)
        return -EINVAL;
    loop = t->base.gyre__priv.loop;
    if (gyre__handle_active(&t->base)) {
        heap_remove(loop, t);
        gyre__handle_stop(&t->base);
    }
    r = gyre__grow(&loop->heap, &loop->heap_cap, loop->heap_len + 1, sizeof *loop->heap);
    if (r < 0)
        return r;
    t->cb = cb;
    t->gyre__priv.repeat_ns = repeat_ns;
    arm(loop, t, timeout_ns);
    return 0;
}

GYRE_API int gyre_timer_stop(gyre_timer *t)
{
    if (t == NULL || !gyre__handle_is(&t->base, GYRE__H_TIMER))
        return -EINVAL;
    if (gyre__handle_active(&t->base)) {
        heap_remove(t->base.gyre__priv.loop, t);
        gyre__handle_stop(&t->base);
    }
    return 0;
}

GYRE_API int gyre_timer_again(gyre_timer *t)
{
    if (t == NULL || !gyre__handle_is(&t->base, GYRE__H_TIMER) || t->cb == NULL)
        return -EINVAL;
    if (t->gyre__priv.repeat_ns == 0)
        return gyre_timer_stop(t);
    return gyre_timer_start(t, t->cb, t->gyre__priv.repeat_ns, t->gyre__priv.repeat_ns);
}

GYRE_API void gyre_timer_set_repeat(gyre_timer *t, uint64_t repeat_ns)
{
    if (t != NULL)
        t->gyre__priv.repeat_ns = repeat_ns;
}

GYRE_API uint64_t gyre_timer_get_repeat(const gyre_timer *t)
{
    return t != NULL ? t->gyre__priv.repeat_ns : 0;
}

GYRE_API uint64_t gyre_timer_due_in(const gyre_timer *t)
{
    uint64_t now;

    if (t == NULL || !gyre__handle_active(&t->base))
        return 0;
    now = t->base.gyre__priv.loop->now_ns;
    return t->gyre__priv.deadline_ns > now ? t->gyre__priv.deadline_ns - now : 0;
}

void gyre__timers_run(gyre_loop *loop)
{
    uint64_t limit = loop->timer_seq;

    while (loop->heap_len > 0) {
        gyre_timer *t = loop->heap[0];

        if (t->gyre__priv.deadline_ns > loop->now_ns || t->gyre__priv.seq > limit)
            break;
        heap_remove(loop, t);
        gyre__handle_stop(&t->base);
        /* Re-arm before the callback, so the callback sees an active timer it
         * may stop, and a repeat never allocates: the slot just freed is
         * reused. */
        if (t->gyre__priv.repeat_ns > 0)
            arm(loop, t, t->gyre__priv.repeat_ns);
        loop->stats.timers_fired++;
        t->cb(t);
    }
}

int64_t gyre__timers_next(const gyre_loop *loop)
{
    uint64_t d;

    if (loop->heap_len == 0)
        return -1;
    d = loop->heap[0]->gyre__priv.deadline_ns;
    if (d <= loop->now_ns)
        return 0;
    d -= loop->now_ns;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}

void gyre__timers_fini(gyre_loop *loop)
{
    gyre__free(loop->heap);
    loop->heap = NULL;
    loop->heap_len = loop->heap_cap = 0;
}
