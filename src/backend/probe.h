/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* probe.h: a backend's or engine's probe, run once per process.
 *
 * A probe makes real kernel objects (a ring, an AIO context) to learn what
 * works, so its verdict is cached; the first caller runs it under a mutex
 * and publishes the verdict with a release store that every later reader's
 * acquire load pairs with, so fields the probe filled in next to its verdict
 * are complete for whoever sees `done`. A probe that fails for want of fds
 * or memory right now is not cached: the backend may well work, and its
 * init() will report the real error.
 */
#ifndef GYRE_BACKEND_PROBE_H
#define GYRE_BACKEND_PROBE_H

#include <pthread.h>
#include <stdatomic.h>

struct gyre__probe {
    atomic_int done; /* 1 once `ok` (and what run() filled in) is final */
    pthread_mutex_t lock;
    int ok;
};

#define GYRE__PROBE_INIT                                                                           \
    {                                                                                              \
        0, PTHREAD_MUTEX_INITIALIZER, 0                                                            \
    }

/* The cached verdict of run(): 1 usable, 0 not. run() returns 1, 0, or < 0
 * for a transient failure (then this returns 1 and caches nothing). */
int gyre__probe_once(struct gyre__probe *p, int (*run)(void));

/* 1 once a verdict is cached (acquire: what run() filled in is visible). */
static inline int gyre__probe_done(struct gyre__probe *p)
{
    return atomic_load_explicit(&p->done, memory_order_acquire);
}

#endif
