/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* watch.c: readiness watches, the reactor API.
 *
 * A watch lives in its fd's entry of the loop's fd table (fdtable.c), which
 * also explains why a stopped watch can never be called: dispatch goes
 * through the table and its generation. Starting and stopping register with
 * the backend at once, so the caller gets the kernel's error.
 */
#include <errno.h>

#include "core/loop.h"

#define WATCH_EVENTS (GYRE_IN | GYRE_OUT | GYRE_PRI | GYRE_RDHUP)

GYRE_API int gyre_watch_init(gyre_loop *loop, gyre_watch *w, int fd)
{
    if (loop == NULL || w == NULL || fd < 0)
        return -EINVAL;
    gyre__handle_init(loop, &w->base, GYRE__H_WATCH);
    w->cb = NULL;
    w->gyre__priv.fd = fd;
    w->gyre__priv.events = 0;
    return 0;
}

GYRE_API int gyre_watch_fd(const gyre_watch *w)
{
    return w != NULL ? w->gyre__priv.fd : -EINVAL;
}

GYRE_API int gyre_watch_start(gyre_watch *w, uint32_t events, gyre_watch_cb cb)
{
    uint32_t want = events & ~GYRE_EDGE, old_events;
    struct gyre__fdent *ent;
    gyre_loop *loop;
    int fd, r;

    if (w == NULL || !gyre__handle_is(&w->base, GYRE__H_WATCH) || cb == NULL || want == 0 ||
        (want & ~WATCH_EVENTS) != 0)
        return -EINVAL;
    loop = w->base.gyre__priv.loop;
    if ((events & GYRE_EDGE) && !(loop->caps & GYRE_CAP_EDGE))
        return -ENOTSUP;
    /* Refused whatever ops on the fd want now: once they are gone the
     * registration could not be made (found by fuzz-ops). */
    if ((loop->caps & GYRE__CAP_RDHUP_NEEDS_IN) && (want & (GYRE_IN | GYRE_RDHUP)) == GYRE_RDHUP)
        return -ENOTSUP;
    fd = w->gyre__priv.fd;
    r = gyre__fd_reserve(loop, fd);
    if (r < 0)
        return r;
    ent = &loop->fds[fd];
    if (ent->watch != NULL && ent->watch != w)
        return -EEXIST;

    old_events = w->gyre__priv.events;
    w->gyre__priv.events = events;
    if (ent->watch == w) {
        r = gyre__fd_sync(loop, fd, 0);
        if (r < 0) {
            w->gyre__priv.events = old_events;
            return r;
        }
    } else {
        ent->watch = w;
        ent->gen++;
        r = gyre__fd_sync(loop, fd, 1);
        if (r < 0) {
            ent->watch = NULL;
            w->gyre__priv.events = old_events;
            return r;
        }
        gyre__handle_start(&w->base);
    }
    w->cb = cb;
    return 0;
}

GYRE_API int gyre_watch_stop(gyre_watch *w)
{
    struct gyre__fdent *ent;
    gyre_loop *loop;
    int fd;

    if (w == NULL || !gyre__handle_is(&w->base, GYRE__H_WATCH))
        return -EINVAL;
    if (!gyre__handle_active(&w->base))
        return 0;
    loop = w->base.gyre__priv.loop;
    fd = w->gyre__priv.fd;
    ent = &loop->fds[fd];
    ent->watch = NULL;
    ent->gen++;
    /* A removal cannot fail in a way that matters (a closed fd is already
     * gone from the kernel); with ops still queued on the fd this is a
     * modify carrying the new generation. */
    gyre__fd_sync(loop, fd, 1);
    gyre__handle_stop(&w->base);
    return 0;
}

int gyre__watch_start_internal(gyre_loop *loop, gyre_watch *w, int fd, gyre_watch_cb cb)
{
    int r = gyre_watch_init(loop, w, fd);

    if (r < 0)
        return r;
    w->base.gyre__priv.flags |= GYRE__HF_INTERNAL;
    return gyre_watch_start(w, GYRE_IN, cb);
}
