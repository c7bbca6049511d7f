/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* probe.c: gyre__probe_once (see probe.h). */
#include "backend/probe.h"

int gyre__probe_once(struct gyre__probe *p, int (*run)(void))
{
    int r;

    /* Pairs with the release store below: what run() filled in is complete. */
    if (atomic_load_explicit(&p->done, memory_order_acquire))
        return p->ok;
    pthread_mutex_lock(&p->lock);
    if (!atomic_load_explicit(&p->done, memory_order_relaxed)) {
        r = run();
        if (r < 0) {
            pthread_mutex_unlock(&p->lock);
            return 1;
        }
        p->ok = r;
        /* Publishes p->ok and everything run() wrote before it. */
        atomic_store_explicit(&p->done, 1, memory_order_release);
    }
    pthread_mutex_unlock(&p->lock);
    return p->ok;
}
