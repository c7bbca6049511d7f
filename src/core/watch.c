/* watch.c: readiness watches (the reactor API) and readiness dispatch.
 *
 * The loop keeps a table indexed by fd; each entry names the one active watch
 * on that fd and a generation. The backend is given (gen << 32 | fd) as the
 * cookie of each registration and hands it back with every event, so:
 * - dispatch finds the watch through the table, never through a pointer the
 *   kernel held, and a watch stopped (and maybe freed) by an earlier callback
 *   of the same batch is simply no longer there;
 * - an fd closed, reused and watched again gets a new generation, so events
 *   fetched for the old registration are dropped (libev's generation counter).
 */
#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "core/loop.h"

#define WATCH_EVENTS (GYRE_IN | GYRE_OUT | GYRE_PRI | GYRE_RDHUP)
#define ALWAYS_REPORTED (GYRE_ERR | GYRE_HUP)

static uint64_t cookie(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd;
}

static int table_reserve(gyre_loop *loop, int fd)
{
    size_t old = loop->fds_cap;
    int r;

    if ((size_t)fd < old)
        return 0;
    r = gyre__grow(&loop->fds, &loop->fds_cap, (size_t)fd + 1, sizeof *loop->fds);
    if (r < 0)
        return r;
    memset(loop->fds + old, 0, (loop->fds_cap - old) * sizeof *loop->fds);
    return 0;
}

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
    uint32_t want = events & ~GYRE_EDGE;
    struct gyre__fdent *ent;
    gyre_loop *loop;
    int fd, r;

    if (w == NULL || !gyre__handle_is(&w->base, GYRE__H_WATCH) || cb == NULL || want == 0 ||
        (want & ~WATCH_EVENTS) != 0)
        return -EINVAL;
    loop = w->base.gyre__priv.loop;
    if ((events & GYRE_EDGE) && !(loop->caps & GYRE_CAP_EDGE))
        return -ENOTSUP;
    fd = w->gyre__priv.fd;
    r = table_reserve(loop, fd);
    if (r < 0)
        return r;
    ent = &loop->fds[fd];
    if (ent->watch != NULL && ent->watch != w)
        return -EEXIST;

    if (ent->watch == w) {
        if (events != ent->kmask) {
            r = loop->be->ctl(loop->be_state, fd, ent->kmask, events, cookie(fd, ent->gen));
            if (r < 0)
                return r;
            ent->kmask = events;
        }
    } else {
        uint32_t gen = ent->gen + 1;

        r = loop->be->ctl(loop->be_state, fd, 0, events, cookie(fd, gen));
        if (r < 0)
            return r;
        ent->gen = gen;
        ent->watch = w;
        ent->kmask = events;
        gyre__handle_start(&w->base);
    }
    w->gyre__priv.events = events;
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
    loop->be->ctl(loop->be_state, fd, ent->kmask, 0, cookie(fd, ent->gen));
    ent->watch = NULL;
    ent->kmask = 0;
    ent->gen++;
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

void gyre__io_dispatch(gyre_loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        const gyre__event *ev = &loop->events[i];
        int fd = (int)(uint32_t)ev->cookie;
        uint32_t gen = (uint32_t)(ev->cookie >> 32);
        struct gyre__fdent *ent;
        gyre_watch *w;
        uint32_t revents;

        if ((size_t)fd >= loop->fds_cap)
            continue;
        ent = &loop->fds[fd];
        w = ent->watch;
        if (w == NULL || ent->gen != gen)
            continue; /* stopped (or replaced) earlier in this batch */
        revents = ev->events & ((w->gyre__priv.events & WATCH_EVENTS) | ALWAYS_REPORTED);
        if (revents == 0)
            continue;
        loop->stats.events_dispatched++;
        w->cb(w, revents);
    }
}
