/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* pool.c: the thread pool that carries file ops and user work off the loop.
 *
 * A pool has GYRE_LANES lanes. Each lane is a FIFO of queued ops (linked
 * through op->gyre__priv.next/prev, so queueing never allocates), a list of
 * the ops its workers are running, a condition variable and its own threads.
 * Lanes share nothing but the pool mutex, which is only held for list and
 * counter updates, so a lane whose every thread is blocked in user work never
 * delays another lane.
 *
 * Invariants (under pool->mu):
 * - An op is on at most one list of at most one lane. Its state is OP_QUEUED
 *   while it is on a lane's queue, and OP_RUNNING from the moment a worker
 *   takes it until the core sets a value of its own after the op is posted
 *   back. An op the pool takes off a list is left with next == prev == NULL.
 * - started counts the lane's live threads: 0 until the first submit to the
 *   lane (a loop that never does file I/O costs no thread), and 0 again in a
 *   child after fork(), where the threads do not exist.
 * - stopping is set once, by gyre_pool_free(), when nothing is queued or
 *   running and no loop is attached, and the pool then leaves the global
 *   list: a pool on the global list is never stopping.
 *
 * Lock order: pools_mu, then a pool's mu. A pool's mu is never held while an
 * op runs or while calling gyre__loop_post() (which takes the loop's lock), so
 * it is never held together with a loop's lock, and a worker can never block
 * the loop thread for longer than a list update.
 *
 * Fork: every pool is on a global list so that pthread_atfork handlers can
 * reach it. The prepare handler takes pools_mu and every pool's mu, so the
 * child inherits consistent lists; the child handler releases them, makes
 * fresh condition variables (waiters recorded in the old ones do not exist
 * in the child) and marks every lane as having no threads, leaving the ops
 * where they were until the core calls gyre__pool_fork_child(). One gap: an
 * op whose worker had finished it (taken it off the running list) but not yet
 * returned from gyre__loop_post() at the fork is on no pool list in the
 * child; whether the child's loop holds it depends on how far the post got. Closing that would mean
 * waiting in the prepare handler for posts, which take the loop's lock, and so deadlocking against
 * any prepare handler that holds a loop lock.
 */
#include "core/pool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "core/alloc.h"
#include "core/loop.h"

/* The work function travels in op->gyre__priv.addr as memcpy'd bytes (ISO C
 * has no conversion between object and function pointers). */
_Static_assert(sizeof(gyre_work_fn) == sizeof(void *), "gyre_work_fn must fit in a void *");

/* op->gyre__priv.state values owned by the pool; the core uses others. */
enum {
    OP_QUEUED = GYRE__OS_POOL_QUEUED,   /* on a lane's queue: cancel unlinks it */
    OP_RUNNING = GYRE__OS_POOL_RUNNING, /* taken by a worker: cancel is too late */
};

#define DEFAULT_FAST 4
#define DEFAULT_SLOW 2
#define DEFAULT_DNS 2
#define MAX_THREADS 256 /* per lane */

struct lane {
    gyre_pool *pool;
    struct gyre__opq queued;  /* oldest first */
    struct gyre__opq running; /* taken by workers */
    uint32_t max;             /* threads wanted */
    uint32_t started;         /* threads alive */
    pthread_t *tids;          /* max entries, in pool->tids */
    /* Workers wait here for "queue not empty or pool stopping". */
    pthread_cond_t cond;
    const char *name; /* thread name (at most 15 chars) */
};

struct gyre_pool {
    pthread_mutex_t mu;
    struct lane lanes[GYRE_LANES];
    uint32_t loops; /* attached loops */
    int stopping;
    gyre_pool *next_pool; /* global list, under pools_mu */
    pthread_t tids[];     /* every lane's threads */
};

static pthread_mutex_t pools_mu = PTHREAD_MUTEX_INITIALIZER;
static gyre_pool *pools; /* every live pool, for the fork handlers */
static int atfork_done;  /* handlers registered (under pools_mu) */

static const char *const lane_names[GYRE_LANES] = {"gyre-fast", "gyre-slow", "gyre-dns"};

/* --- lane lists (pool->mu held) ---
 * The core's op queues (loop.h). While an op is queued here its res2 holds
 * its lane, so a cancel unlinks it without searching. */

static gyre_op *queue_pop(struct lane *l)
{
    gyre_op *op = l->queued.head;

    gyre__opq_remove(&l->queued, op);
    return op;
}

/* --- workers --- */

static int64_t run_op(gyre_op *op)
{
    if (op->gyre__priv.opcode == GYRE__OP_WORK) {
        gyre_work_fn fn;

        memcpy(&fn, &op->gyre__priv.addr, sizeof fn);
        return fn(op->gyre__priv.addr2);
    }
    return gyre__op_exec(op);
}

static void *worker(void *arg)
{
    struct lane *l = arg;
    gyre_pool *pool = l->pool;

    pthread_mutex_lock(&pool->mu);
    for (;;) {
        /* Predicate: an op is queued on this lane (take it) or the pool is
         * stopping (exit). gyre_pool_free only stops an empty pool and
         * submit refuses a stopping one, so the two never hold together.
         * Spurious wakeups and a wakeup whose op another worker took first
         * just recheck. */
        while (l->queued.head == NULL && !pool->stopping)
            pthread_cond_wait(&l->cond, &pool->mu);
        if (pool->stopping)
            break;

        gyre_op *op = queue_pop(l);
        gyre__opq_push(&l->running, op);
        op->gyre__priv.state = OP_RUNNING;
        pthread_mutex_unlock(&pool->mu);

        int64_t res = run_op(op);

        pthread_mutex_lock(&pool->mu);
        gyre__opq_remove(&l->running, op);
        pthread_mutex_unlock(&pool->mu);

        /* The op stays OP_RUNNING: a cancel from now until the loop
         * completes it is -EBUSY, and the real result is delivered. After
         * the post the op is the loop's; it is never touched again here. */
        op->gyre__priv.res2 = res;
        gyre__loop_post(op->gyre__priv.loop, op);

        pthread_mutex_lock(&pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

/* Starts the missing threads of a lane (pool->mu held). Threads are created
 * with every signal blocked so that signals meant for the process reach the
 * loop threads, and a worker writing to a pipe whose reader is gone gets
 * -EPIPE instead of a process-killing SIGPIPE. Returns 0 if at least one
 * thread runs, -EAGAIN otherwise. */
static int lane_start(struct lane *l)
{
    sigset_t all, old;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (l->started < l->max) {
        if (pthread_create(&l->tids[l->started], NULL, worker, l) != 0)
            break;
        pthread_setname_np(l->tids[l->started], l->name);
        l->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return l->started > 0 ? 0 : -EAGAIN;
}

/* --- fork --- */

static void fork_prepare(void)
{
    pthread_mutex_lock(&pools_mu);
    for (gyre_pool *p = pools; p != NULL; p = p->next_pool)
        pthread_mutex_lock(&p->mu);
}

static void fork_parent(void)
{
    for (gyre_pool *p = pools; p != NULL; p = p->next_pool)
        pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&pools_mu);
}

/* The child's one thread is the copy of the thread that forked, which holds
 * every lock taken in fork_prepare, so it can release them. Condition
 * variables are made anew because the waiters they record are gone. */
static void fork_child(void)
{
    for (gyre_pool *p = pools; p != NULL; p = p->next_pool) {
        for (int i = 0; i < GYRE_LANES; i++) {
            struct lane *l = &p->lanes[i];

            pthread_cond_init(&l->cond, NULL);
            l->started = 0;
        }
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&pools_mu);
}

void gyre__pool_fork_child(gyre_pool *pool, void (*drop)(gyre_op *op))
{
    gyre_op *chain = NULL, **tailp = &chain;

    /* Gather the ops into one chain (through next) so drop() runs without
     * the mutex and may submit to the pool again. Running ops come first:
     * they were taken before anything still queued on their lane. */
    pthread_mutex_lock(&pool->mu);
    for (int i = 0; i < GYRE_LANES; i++) {
        struct lane *l = &pool->lanes[i];

        while (l->running.head != NULL) {
            gyre_op *op = l->running.head;
            gyre__opq_remove(&l->running, op);
            *tailp = op;
            tailp = &op->gyre__priv.next;
        }
        while (l->queued.head != NULL) {
            gyre_op *op = queue_pop(l);
            *tailp = op;
            tailp = &op->gyre__priv.next;
        }
    }
    pthread_mutex_unlock(&pool->mu);

    while (chain != NULL) {
        gyre_op *op = chain;
        chain = op->gyre__priv.next;
        op->gyre__priv.next = NULL;
        drop(op);
    }
}

/* --- public --- */

GYRE_API int gyre_pool_new(gyre_pool **pool, const gyre_pool_opts *opts)
{
    static const uint32_t defaults[GYRE_LANES] = {DEFAULT_FAST, DEFAULT_SLOW, DEFAULT_DNS};
    uint32_t n[GYRE_LANES], total = 0;

    if (pool == NULL)
        return -EINVAL;
    for (int i = 0; i < GYRE_LANES; i++) {
        n[i] = opts != NULL && opts->threads[i] != 0 ? opts->threads[i] : defaults[i];
        if (n[i] > MAX_THREADS)
            return -EINVAL;
        total += n[i];
    }
    if (opts != NULL) {
        for (size_t i = 0; i < sizeof opts->reserved / sizeof opts->reserved[0]; i++)
            if (opts->reserved[i] != 0)
                return -EINVAL;
    }

    gyre_pool *p = gyre__calloc(1, sizeof *p + total * sizeof p->tids[0]);
    if (p == NULL)
        return -ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        gyre__free(p);
        return -ENOMEM;
    }
    int ncond = 0;
    for (uint32_t i = 0, off = 0; i < GYRE_LANES; off += n[i], i++) {
        struct lane *l = &p->lanes[i];

        l->pool = p;
        l->max = n[i];
        l->tids = p->tids + off;
        l->name = lane_names[i];
        if (pthread_cond_init(&l->cond, NULL) != 0)
            break;
        ncond++;
    }

    pthread_mutex_lock(&pools_mu);
    int err = ncond == GYRE_LANES ? 0 : -ENOMEM;
    if (err == 0 && !atfork_done) {
        if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
            err = -ENOMEM;
        else
            atfork_done = 1;
    }
    if (err == 0) {
        p->next_pool = pools;
        pools = p;
    }
    pthread_mutex_unlock(&pools_mu);

    if (err != 0) {
        for (int i = 0; i < ncond; i++)
            pthread_cond_destroy(&p->lanes[i].cond);
        pthread_mutex_destroy(&p->mu);
        gyre__free(p);
        return err;
    }
    *pool = p;
    return 0;
}

GYRE_API int gyre_pool_free(gyre_pool *pool)
{
    uint32_t started[GYRE_LANES];

    if (pool == NULL)
        return -EINVAL;

    pthread_mutex_lock(&pools_mu);
    pthread_mutex_lock(&pool->mu);
    int busy = pool->loops > 0;
    for (int i = 0; i < GYRE_LANES; i++)
        busy |= pool->lanes[i].queued.head != NULL || pool->lanes[i].running.head != NULL;
    if (busy) {
        pthread_mutex_unlock(&pool->mu);
        pthread_mutex_unlock(&pools_mu);
        return -EBUSY;
    }
    pool->stopping = 1;
    for (int i = 0; i < GYRE_LANES; i++) {
        started[i] = pool->lanes[i].started;
        pthread_cond_broadcast(&pool->lanes[i].cond);
    }
    gyre_pool **pp = &pools;
    while (*pp != pool)
        pp = &(*pp)->next_pool;
    *pp = pool->next_pool;
    pthread_mutex_unlock(&pool->mu);
    pthread_mutex_unlock(&pools_mu);

    /* Off the global list, so no fork handler reaches the pool any more; a
     * worker may still be finishing a gyre__loop_post, which join waits
     * for. */
    for (int i = 0; i < GYRE_LANES; i++) {
        for (uint32_t t = 0; t < started[i]; t++)
            pthread_join(pool->lanes[i].tids[t], NULL);
        pthread_cond_destroy(&pool->lanes[i].cond);
    }
    pthread_mutex_destroy(&pool->mu);
    gyre__free(pool);
    return 0;
}

void gyre__pool_attach(gyre_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    pool->loops++;
    pthread_mutex_unlock(&pool->mu);
}

void gyre__pool_detach(gyre_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    assert(pool->loops > 0 && "gyre__pool_detach: pool has no attached loop");
    if (pool->loops > 0)
        pool->loops--;
    pthread_mutex_unlock(&pool->mu);
}

int gyre__pool_submit(gyre_pool *pool, gyre_op *op, int lane)
{
    if (pool == NULL || op == NULL || lane < 0 || lane >= GYRE_LANES)
        return -EINVAL;

    struct lane *l = &pool->lanes[lane];
    int err = 0;

    pthread_mutex_lock(&pool->mu);
    if (pool->stopping)
        err = -EINVAL;
    else if (l->started == 0)
        err = lane_start(l);
    if (err == 0) {
        gyre__opq_push(&l->queued, op);
        op->gyre__priv.state = OP_QUEUED;
        op->gyre__priv.res2 = lane;
        /* One op, one waiter: if every thread is busy, the next one to
         * finish rechecks the queue before waiting. */
        pthread_cond_signal(&l->cond);
    }
    pthread_mutex_unlock(&pool->mu);
    return err;
}

int gyre__pool_cancel(gyre_pool *pool, gyre_op *op)
{
    int err = -ENOENT;

    if (pool == NULL || op == NULL)
        return -EINVAL;
    pthread_mutex_lock(&pool->mu);
    if (op->gyre__priv.state == OP_RUNNING) {
        err = -EBUSY;
    } else if (op->gyre__priv.state == OP_QUEUED) {
        gyre__opq_remove(&pool->lanes[op->gyre__priv.res2].queued, op);
        err = 0;
    }
    pthread_mutex_unlock(&pool->mu);
    return err;
}
