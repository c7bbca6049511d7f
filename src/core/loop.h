/* loop.h: the loop's private state, shared by the files of src/core/.
 *
 * Invariants:
 * - fds[fd].watch is the one active watch on fd (or NULL); fds[fd].kmask is
 *   what the backend has registered for fd, 0 when nothing.
 * - fds[fd].gen changes whenever fd's registration changes owner (a watch
 *   starts or stops). Cookies given to the backend carry (gen << 32 | fd), so
 *   an event fetched before a stop can never reach a later owner of the fd,
 *   and dispatch never touches the memory of a stopped watch.
 * - active counts started objects that are not internal; refs counts those of
 *   them that are referenced. The loop is alive while refs > 0.
 */
#ifndef GYRE_CORE_LOOP_H
#define GYRE_CORE_LOOP_H

#include <stdatomic.h>
#include <stdint.h>

#include "backend/backend.h"
#include "gyre.h"

enum gyre__htype {
    GYRE__H_TIMER = 0x6701,
    GYRE__H_WATCH,
    GYRE__H_ASYNC,
    GYRE__H_SIGNAL,
    GYRE__H_HOOK,
};

enum gyre__hflag {
    GYRE__HF_ACTIVE = 1u << 0,
    GYRE__HF_UNREF = 1u << 1,
    GYRE__HF_INTERNAL = 1u << 2, /* the loop's own: never counted */
};

struct gyre__fdent {
    gyre_watch *watch;
    uint32_t gen;
    uint32_t kmask;
};

#define GYRE__NSIG_WORDS 2 /* bitmask words for signals 1..127 */

struct gyre_loop {
    const struct gyre__backend *be;
    void *be_state;
    uint32_t caps;
    uint64_t now_ns;

    /* readiness */
    struct gyre__fdent *fds;
    size_t fds_cap;
    gyre__event *events;
    uint32_t max_events;

    /* timers: a 4-ary min-heap of (deadline, seq) */
    gyre_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* intrusive lists of started objects */
    gyre__link asyncs;
    gyre__link signals;
    gyre__link hooks[3];

    /* wakeup: one eventfd for async sends and signals */
    int wake_fd;
    gyre_watch wake_watch;
    atomic_uint async_armed; /* 1 once a send wrote wake_fd and before the drain */
    _Atomic uint64_t sig_watched[GYRE__NSIG_WORDS]; /* read by the signal handler */
    _Atomic uint64_t sig_pending[GYRE__NSIG_WORDS];
    uint64_t sig_taken[GYRE__NSIG_WORDS];      /* being dispatched (loop thread) */
    uint16_t sig_count[GYRE__NSIG_WORDS * 64]; /* this loop's watchers per signal */
    int sig_slot;                              /* registry slot, -1 when none */

    /* run state */
    atomic_int running;
    int stop_flag;
    uint32_t active, refs;
    gyre_stats stats;
};

/* --- handles --- */

void gyre__handle_init(gyre_loop *loop, gyre_handle *h, enum gyre__htype type);
void gyre__handle_start(gyre_handle *h);
void gyre__handle_stop(gyre_handle *h);

static inline int gyre__handle_is(const gyre_handle *h, enum gyre__htype type)
{
    return h != NULL && h->gyre__priv.type == type && h->gyre__priv.loop != NULL;
}

static inline int gyre__handle_active(const gyre_handle *h)
{
    return (h->gyre__priv.flags & GYRE__HF_ACTIVE) != 0;
}

/* --- intrusive lists --- */

static inline void gyre__list_init(gyre__link *l)
{
    l->next = l->prev = l;
}

static inline int gyre__list_empty(const gyre__link *l)
{
    return l->next == l;
}

static inline void gyre__list_push(gyre__link *l, gyre__link *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static inline void gyre__list_remove(gyre__link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* Calls fn on every link of list once, in order, so that fn may stop (unlink)
 * any link of the list, itself included, and start new ones (which wait for
 * the next call). */
void gyre__list_each(gyre__link *list, void (*fn)(gyre__link *));

#define gyre__container_of(ptr, type, member)                                                      \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* --- per-subsystem hooks used by loop.c --- */

void gyre__timers_run(gyre_loop *loop);
int64_t gyre__timers_next(const gyre_loop *loop); /* ns, -1 = none */
void gyre__timers_fini(gyre_loop *loop);

int gyre__watch_start_internal(gyre_loop *loop, gyre_watch *w, int fd, gyre_watch_cb cb);
void gyre__io_dispatch(gyre_loop *loop, int n);

void gyre__async_drain(gyre_loop *loop);
void gyre__signals_dispatch(gyre_loop *loop);
void gyre__signals_loop_fini(gyre_loop *loop);

void gyre__hooks_run(gyre_loop *loop, gyre_hook_kind kind);

extern atomic_int gyre__live_loops;

#endif
