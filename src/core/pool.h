/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* pool.h: the thread pool's interface to the rest of the core.
 *
 * A gyre_pool has lanes (GYRE_LANE_*), each a FIFO of ops and its own
 * threads, so blocking user work on the slow lane never delays a file read on
 * the fast lane. A worker takes an op, runs it with gyre__op_exec() (file and
 * path ops) or the op's work function (GYRE__OP_WORK), stores the result in
 * op->gyre__priv.res2, and hands the op back to its loop with
 * gyre__loop_post(), which batches completions behind one wakeup.
 *
 * Locking: one mutex per pool guards the lanes. A worker never holds it while
 * running an op or while calling gyre__loop_post (which takes the loop's own
 * lock), so the two locks are never held together.
 */
#ifndef GYRE_CORE_POOL_H
#define GYRE_CORE_POOL_H

#include "gyre.h"

/* A loop starts or stops using a pool (gyre_pool_free is -EBUSY while any
 * loop uses it). */
void gyre__pool_attach(gyre_pool *pool);
void gyre__pool_detach(gyre_pool *pool);

/* Queues op on lane for a worker of pool; starts the lane's threads on first
 * use. op->gyre__priv.loop says where to post it back. Returns 0 or -errno
 * (-EAGAIN if no thread could be started: nothing queued). Loop thread. */
int gyre__pool_submit(gyre_pool *pool, gyre_op *op, int lane);

/* Removes op from its lane if no worker has taken it yet: returns 0 and the
 * caller completes it (-ECANCELED). Returns -EBUSY if a worker is running
 * it (it will be posted back with its real result), -ENOENT if not queued. */
int gyre__pool_cancel(gyre_pool *pool, gyre_op *op);

/* In a child after fork(): hands every op the pool held at the fork, queued
 * or running (their threads are gone), to drop(), in order, and forgets them.
 * drop() gets ops of every loop that shares the pool; each is off every pool
 * list (its state still says queued or running until the core changes it),
 * and drop() may submit to the pool again. The pool's locks and threads were
 * already reset by its pthread_atfork handler; new submits start new
 * threads. Call only in the child, before using the pool there. */
void gyre__pool_fork_child(gyre_pool *pool, void (*drop)(gyre_op *op));

/* Runs a file or path op (READ, WRITE, READV, WRITEV at an offset or at the
 * current position, OPENAT, STATX, FSYNC, CLOSE, and any other op as a
 * blocking syscall) and returns its result (>= 0 or -errno; EINTR retried).
 * Defined in the core (emul.c); called on a worker thread. */
int64_t gyre__op_exec(gyre_op *op);

/* Hands a finished op back to its loop from any thread (result already in
 * op->gyre__priv.res2); the loop completes it on its own thread. Wakes the
 * loop at most once per batch. */
void gyre__loop_post(gyre_loop *loop, gyre_op *op);

#endif
