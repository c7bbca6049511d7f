/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* engine.c: the core's side of the file engines (linuxaio, posixaio):
 * choosing one, waking on its completions, routing file ops to it, and
 * cancel and fork for the ops it holds.
 *
 * An engine is woken either through an fd, watched like any other internal
 * watch, or through a signal, taken by gyre's own signal dispatch (one
 * process-wide handler that wakes the loop); either way the loop thread then
 * calls reap() until it has nothing more, since signals and eventfd counts
 * coalesce. Ops the engine holds sit on loop->engine_ops (state ENGINE) so
 * that fork can find them.
 */
#include <errno.h>
#include <string.h>

#include "core/loop.h"
#include "core/pool.h"

#define REAP_BATCH 64

static const struct gyre__file_engine *const engines[] = {
    &gyre__engine_linuxaio,
    &gyre__engine_posixaio,
};
#define NENGINES (sizeof engines / sizeof engines[0])

void gyre__engine_reap(gyre_loop *loop)
{
    gyre__event ev[REAP_BATCH];
    int n;

    do {
        n = loop->fe->reap(loop->fe_state, ev, REAP_BATCH);
        for (int i = 0; i < n; i++) {
            gyre_op *op = (gyre_op *)(uintptr_t)ev[i].cookie;

            gyre__opq_remove(&loop->engine_ops, op);
            /* glibc answers EAGAIN when it refused a request, or lost its
             * completion signal (the queue of signals was full). Every op an
             * engine takes has an explicit offset or is a sync, so doing it
             * again on the pool is safe. */
            if (ev[i].res == -EAGAIN && gyre__op_to_pool(loop, op, GYRE_LANE_FAST) == 0) {
                loop->stats.file_pool++;
                continue;
            }
            gyre__op_complete(loop, op, ev[i].res, 0, 0);
        }
    } while (n == REAP_BATCH && loop->fe != NULL);
}

static void wake_watch_cb(gyre_watch *w, uint32_t events)
{
    (void)events;
    gyre__engine_reap(w->base.gyre__priv.loop);
}

static void wake_signal_cb(gyre_signal *s, int signo)
{
    (void)signo;
    gyre__engine_reap(s->base.gyre__priv.loop);
}

static int wire(gyre_loop *loop)
{
    int signo = 0;
    int fd = loop->fe->wake_fd(loop->fe_state, &signo);
    int r;

    if (fd >= 0)
        return gyre__watch_start_internal(loop, &loop->fe_watch, fd, wake_watch_cb);
    r = gyre_signal_init(loop, &loop->fe_signal);
    if (r < 0)
        return r;
    loop->fe_signal.base.gyre__priv.flags |= GYRE__HF_INTERNAL;
    return gyre_signal_start(&loop->fe_signal, wake_signal_cb, signo);
}

static void unwire(gyre_loop *loop)
{
    if (gyre__handle_is(&loop->fe_watch.base, GYRE__H_WATCH))
        gyre_watch_stop(&loop->fe_watch);
    if (gyre__handle_is(&loop->fe_signal.base, GYRE__H_SIGNAL))
        gyre_signal_stop(&loop->fe_signal);
}

int gyre__engine_open(gyre_loop *loop, const char *name)
{
    const struct gyre__file_engine *fe = NULL;
    const char *why = NULL;
    int r;

    for (size_t i = 0; i < NENGINES; i++)
        if (strcmp(engines[i]->name, name) == 0)
            fe = engines[i];
    if (fe == NULL)
        return -EINVAL;
    if (!fe->probe())
        return -ENOSYS;
    r = fe->init(&loop->fe_state, &why);
    if (r < 0) {
        if (why != NULL)
            loop->reason = why;
        return r;
    }
    loop->fe = fe;
    r = wire(loop);
    if (r < 0)
        gyre__engine_close(loop);
    return r;
}

void gyre__engine_close(gyre_loop *loop)
{
    if (loop->fe == NULL)
        return;
    unwire(loop);
    loop->fe->fini(loop->fe_state);
    loop->fe = NULL;
    loop->fe_state = NULL;
}

int gyre__engine_take(gyre_loop *loop, gyre_op *op)
{
    int direct = 0;
    int r;

    /* Engines are for files: on a pipe or socket glibc's AIO falls back to
     * a read that can block forever. */
    if (op->gyre__priv.fd < 0 || !gyre__fd_is_file(loop, op->gyre__priv.fd))
        return 0;
    direct = (op->gyre__priv.sflags & GYRE__OPF_DIRECT) != 0; /* from the precheck */
    if (!loop->fe->accepts(loop->fe_state, op, direct))
        return 0;
    r = loop->fe->submit(loop->fe_state, op);
    if (r == -EAGAIN)
        return 0; /* it would block in the kernel: the pool's job */
    if (r < 0) {
        gyre__op_ready(loop, op, r);
        return 1;
    }
    op->gyre__priv.state = GYRE__OS_ENGINE;
    gyre__opq_push(&loop->engine_ops, op);
    return 1;
}

void gyre__engine_cancel(gyre_loop *loop, gyre_op *op, int64_t res)
{
    if (loop->fe->cancel(loop->fe_state, op) == 0) {
        gyre__opq_remove(&loop->engine_ops, op);
        gyre__op_ready(loop, op, res);
    }
}

int gyre__engine_fork(gyre_loop *loop)
{
    const char *why = NULL;

    if (loop->fe == NULL)
        return 0;
    /* The parent's requests are the parent's: they end here unseen. */
    while (loop->engine_ops.head != NULL) {
        gyre_op *op = loop->engine_ops.head;

        gyre__opq_remove(&loop->engine_ops, op);
        gyre__op_ready(loop, op, -ECANCELED);
    }
    /* fini() in a child only lets go of the parent's objects (engine.h); an
     * engine that cannot go on in a child leaves its files to the pool. */
    unwire(loop);
    loop->fe->fini(loop->fe_state);
    loop->fe_state = NULL;
    if (loop->fe->no_fork) {
        loop->fe = NULL;
        return 0;
    }
    if (loop->fe->init(&loop->fe_state, &why) < 0) {
        loop->fe = NULL;
        return -ENOMEM;
    }
    return wire(loop);
}
