/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* signal.c: signal watchers.
 *
 * One process-wide handler per signal (libuv's design). Loops that watch any
 * signal sit in a fixed registry; the handler sets the signal's pending bit
 * in every registered loop whose watched mask has it, and writes that loop's
 * wakeup eventfd. On the loop thread, wake_cb (loop.c) drains the eventfd and
 * calls gyre__signals_dispatch, which takes the pending bits and runs the
 * loop's watchers of each signal.
 *
 * The handler takes no lock (it may interrupt a thread holding one). Instead
 * it counts itself in `in_handler` before reading the registry, and a loop
 * leaving the registry clears its slot and then waits for in_handler to reach
 * zero, so no handler still holds a pointer to a loop being freed. The mutex
 * orders registry changes and per-signal install/restore between threads.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

#include "core/loop.h"
#include "sys/sys.h"

#define MAX_SIGNO (GYRE__NSIG_WORDS * 64 - 1)
#define MAX_LOOPS 128

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static gyre_loop *_Atomic registry[MAX_LOOPS];
static atomic_int in_handler;
static unsigned watchers[MAX_SIGNO + 1]; /* process-wide, under reg_lock */
static struct sigaction saved[MAX_SIGNO + 1];

static void handler(int signo)
{
    int saved_errno = errno;
    uint64_t bit = UINT64_C(1) << (signo % 64);
    int word = signo / 64;

    atomic_fetch_add(&in_handler, 1);
    for (int i = 0; i < MAX_LOOPS; i++) {
        gyre_loop *loop = atomic_load(&registry[i]);

        if (loop == NULL || !(atomic_load(&loop->sig_watched[word]) & bit))
            continue;
        atomic_fetch_or(&loop->sig_pending[word], bit);
        gyre__sys_eventfd_signal(loop->wake_fd);
    }
    atomic_fetch_sub(&in_handler, 1);
    errno = saved_errno;
}

/* Called with reg_lock held. */
static int loop_register(gyre_loop *loop)
{
    if (loop->sig_slot >= 0)
        return 0;
    for (int i = 0; i < MAX_LOOPS; i++) {
        if (atomic_load(&registry[i]) == NULL) {
            atomic_store(&registry[i], loop);
            loop->sig_slot = i;
            return 0;
        }
    }
    return -ENOSPC;
}

/* Called with reg_lock held. */
static void loop_unregister(gyre_loop *loop)
{
    if (loop->sig_slot < 0)
        return;
    atomic_store(&registry[loop->sig_slot], NULL);
    loop->sig_slot = -1;
    /* A handler that read the slot before the store above counted itself
     * first; wait for it to finish with the loop. Handlers never block, so
     * this ends even if one interrupts this very thread. */
    while (atomic_load(&in_handler) != 0)
        sched_yield();
}

/* Whether the loop still watches any signal. Not "its list is empty": while
 * signals are dispatched the list's watchers sit on a private list
 * (gyre__list_each), so a watcher stopping itself there would see an empty
 * list and take the loop out of the registry under its siblings' feet. */
static int loop_watches_none(gyre_loop *loop)
{
    for (int w = 0; w < GYRE__NSIG_WORDS; w++)
        if (atomic_load(&loop->sig_watched[w]) != 0)
            return 0;
    return 1;
}

/* Adds or removes one watcher of signo on loop, installing or restoring the
 * process-wide handler at the first and last watcher. The loop's watched
 * bit is set before the handler goes in, so a signal arriving in between
 * finds the loop (it is cleared again if installing fails). */
static int watcher_add(gyre_loop *loop, int signo)
{
    int r;

    pthread_mutex_lock(&reg_lock);
    r = loop_register(loop);
    if (r < 0) {
        pthread_mutex_unlock(&reg_lock);
        return r;
    }
    if (loop->sig_count[signo]++ == 0)
        atomic_fetch_or(&loop->sig_watched[signo / 64], UINT64_C(1) << (signo % 64));
    if (watchers[signo] == 0) {
        struct sigaction sa;

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler;
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask);
        r = gyre__sys_sigaction(signo, &sa, &saved[signo]);
    }
    if (r == 0) {
        watchers[signo]++;
    } else {
        if (--loop->sig_count[signo] == 0)
            atomic_fetch_and(&loop->sig_watched[signo / 64], ~(UINT64_C(1) << (signo % 64)));
        if (loop_watches_none(loop))
            loop_unregister(loop);
    }
    pthread_mutex_unlock(&reg_lock);
    return r;
}

static void watcher_remove(gyre_loop *loop, int signo)
{
    pthread_mutex_lock(&reg_lock);
    if (--loop->sig_count[signo] == 0)
        atomic_fetch_and(&loop->sig_watched[signo / 64], ~(UINT64_C(1) << (signo % 64)));
    if (--watchers[signo] == 0)
        gyre__sys_sigaction(signo, &saved[signo], NULL);
    if (loop_watches_none(loop))
        loop_unregister(loop);
    pthread_mutex_unlock(&reg_lock);
}

GYRE_API int gyre_signal_init(gyre_loop *loop, gyre_signal *s)
{
    if (loop == NULL || s == NULL)
        return -EINVAL;
    gyre__handle_init(loop, &s->base, GYRE__H_SIGNAL);
    s->cb = NULL;
    s->gyre__priv.signo = 0;
    return 0;
}

GYRE_API int gyre_signal_start(gyre_signal *s, gyre_signal_cb cb, int signo)
{
    gyre_loop *loop;
    int r;

    if (s == NULL || !gyre__handle_is(&s->base, GYRE__H_SIGNAL) || cb == NULL || signo <= 0 ||
        signo > MAX_SIGNO || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
        return -EINVAL;
    loop = s->base.gyre__priv.loop;
    if (gyre__handle_active(&s->base) && s->gyre__priv.signo == signo) {
        s->cb = cb;
        return 0;
    }
    /* Add the new registration before dropping the old one, so changing
     * signals never restores a disposition in between. */
    r = watcher_add(loop, signo);
    if (r < 0)
        return r;
    if (gyre__handle_active(&s->base)) {
        /* It stays on the list, so the loop keeps its registry slot. */
        watcher_remove(loop, s->gyre__priv.signo);
    } else {
        gyre__list_push(&loop->signals, &s->base.gyre__priv.link);
        gyre__handle_start(&s->base);
    }
    s->cb = cb;
    s->gyre__priv.signo = signo;
    return 0;
}

GYRE_API int gyre_signal_stop(gyre_signal *s)
{
    if (s == NULL || !gyre__handle_is(&s->base, GYRE__H_SIGNAL))
        return -EINVAL;
    if (!gyre__handle_active(&s->base))
        return 0;
    gyre__list_remove(&s->base.gyre__priv.link);
    gyre__handle_stop(&s->base);
    watcher_remove(s->base.gyre__priv.loop, s->gyre__priv.signo);
    return 0;
}

static void run_one(gyre__link *link)
{
    gyre_signal *s = gyre__container_of(link, gyre_signal, base.gyre__priv.link);
    int signo = s->gyre__priv.signo;

    if (s->base.gyre__priv.loop->sig_taken[signo / 64] & (UINT64_C(1) << (signo % 64)))
        s->cb(s, signo);
}

void gyre__signals_dispatch(gyre_loop *loop)
{
    uint64_t got[GYRE__NSIG_WORDS];
    int any = 0;

    for (int w = 0; w < GYRE__NSIG_WORDS; w++) {
        got[w] = atomic_exchange(&loop->sig_pending[w], 0);
        any |= got[w] != 0;
    }
    if (!any)
        return;
    for (int w = 0; w < GYRE__NSIG_WORDS; w++)
        loop->sig_taken[w] = got[w];
    gyre__list_each(&loop->signals, run_one);
}

void gyre__signals_loop_fini(gyre_loop *loop)
{
    pthread_mutex_lock(&reg_lock);
    loop_unregister(loop);
    pthread_mutex_unlock(&reg_lock);
}
