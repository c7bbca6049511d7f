/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* fdtable.c: the loop's per-fd table, the one place readiness is registered
 * and dispatched, for user watches and emulated ops alike.
 *
 * Each entry names the active watch on the fd, the emulated ops queued on
 * it, a generation, and what the backend has registered (kmask). The backend
 * gets (gen << 32 | fd) as the cookie of each registration and hands it back
 * with every event, so:
 * - dispatch finds the watch through the table, never through a pointer the
 *   kernel held, and a watch stopped (and maybe freed) by an earlier callback
 *   of the same batch is simply no longer there;
 * - an fd closed, reused and watched again gets a new generation, so events
 *   fetched for the old registration never reach the new watch (libev's
 *   generation counter).
 * Emulated ops need no such guard: a stale event only makes them retry their
 * non-blocking syscall, which says EAGAIN.
 *
 * A watch registers at once (its caller wants the error). Ops only mark
 * their fd dirty; the registration is brought up to date once, just before
 * the kernel wait, so a recv completed and re-submitted in one iteration
 * costs no epoll_ctl at all.
 */
#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "core/loop.h"
#include "core/pool.h"
#include "sys/sys.h"

#define ALWAYS_REPORTED (GYRE_ERR | GYRE_HUP)
#define WATCH_EVENTS (GYRE_IN | GYRE_OUT | GYRE_PRI | GYRE_RDHUP)

static uint64_t cookie(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd;
}

int gyre__fd_reserve(gyre_loop *loop, int fd)
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

/* What the watch and the queued ops of an entry want from the backend. Ops
 * need level-triggered readiness, so an edge-triggered watch sharing its fd
 * with queued ops is level-triggered meanwhile. */
static uint32_t wanted(const struct gyre__fdent *e)
{
    uint32_t m = e->watch != NULL ? e->watch->gyre__priv.events : 0;

    if (e->rq.head == NULL && e->wq.head == NULL && e->pq.head == NULL)
        return m;
    m &= ~GYRE_EDGE;
    if (e->rq.head != NULL)
        m |= GYRE_IN;
    if (e->wq.head != NULL)
        m |= GYRE_OUT;
    for (const gyre_op *op = e->pq.head; op != NULL; op = op->gyre__priv.next)
        m |= op->gyre__priv.arg & WATCH_EVENTS;
    return m;
}

int gyre__fd_sync(gyre_loop *loop, int fd, int force)
{
    struct gyre__fdent *e = &loop->fds[fd];
    uint32_t want = wanted(e);
    int r;

    if (want == e->kmask && !(force && want != 0))
        return 0;
    r = loop->be->ctl(loop->be_state, fd, e->kmask, want, cookie(fd, e->gen));
    if (r < 0 && want != 0)
        return r;
    e->kmask = want;
    return 0;
}

static int fd_kind(gyre_loop *loop, int fd)
{
    struct gyre__fdent *e = &loop->fds[fd];

    if (e->kind == GYRE__FD_UNKNOWN) {
        int k = gyre__sys_fd_kind(fd);

        e->kind = k == 1 ? GYRE__FD_SOCKET : k == 2 ? GYRE__FD_FILE : GYRE__FD_OTHER;
    }
    return e->kind;
}

int gyre__fd_is_socket(gyre_loop *loop, int fd)
{
    return fd_kind(loop, fd) == GYRE__FD_SOCKET;
}

int gyre__fd_is_file(gyre_loop *loop, int fd)
{
    return fd_kind(loop, fd) == GYRE__FD_FILE;
}

void gyre__fd_learn(gyre_loop *loop, int fd, enum gyre__fdkind kind)
{
    struct gyre__fdent *e;

    if (fd < 0 || gyre__fd_reserve(loop, fd) < 0)
        return;
    e = &loop->fds[fd];
    e->kind = (uint8_t)kind;
    /* The number is a new file's (gyre's own accept or open made it): a
     * registration still on record with nothing of gyre's on the fd belongs
     * to an old file closed with close(2), which epoll has already forgotten.
     * Forget it too, so the new file's ops register afresh instead of
     * waiting on readiness nobody asked the kernel for. */
    if (e->kmask != 0 && e->watch == NULL && e->rq.head == NULL && e->wq.head == NULL &&
        e->pq.head == NULL) {
        loop->be->ctl(loop->be_state, fd, e->kmask, 0, (uint64_t)e->gen << 32 | (uint32_t)fd);
        e->kmask = 0;
        e->gen++;
    }
}

void gyre__fd_dirty(gyre_loop *loop, int fd)
{
    struct gyre__fdent *e = &loop->fds[fd];

    if (e->dirty)
        return;
    /* The dirty list only grows to the number of distinct fds; if it cannot
     * grow, register now instead (errors then surface at the next flush via
     * the same path, since the entry stays out of line). */
    if (gyre__grow(&loop->dirty, &loop->dirty_cap, loop->ndirty + 1, sizeof *loop->dirty) < 0) {
        if (gyre__fd_sync(loop, fd, 0) < 0)
            gyre__emul_fail_fd(loop, fd, -ENOMEM);
        return;
    }
    e->dirty = 1;
    loop->dirty[loop->ndirty++] = fd;
}

void gyre__fd_flush(gyre_loop *loop)
{
    /* Failing ops may queue more work (their successors), so take one fd at
     * a time off the end rather than walking a list that can change. */
    while (loop->ndirty > 0) {
        int fd = loop->dirty[--loop->ndirty];
        int r = gyre__fd_sync(loop, fd, 0);

        /* The entry stays marked dirty while its ops fail, so failing them
         * cannot put it back on the list (that spun forever when the
         * registration kept failing); one more try registers what is left
         * (a watch), and if even that fails the old registration stands. */
        if (r < 0) {
            gyre__emul_fail_fd(loop, fd, r);
            (void)gyre__fd_sync(loop, fd, 0);
        }
        loop->fds[fd].dirty = 0;
    }
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

        if (ev->kind == GYRE__EV_OP) {
            gyre__op_native_event(loop, ev);
            continue;
        }
        if ((size_t)fd >= loop->fds_cap)
            continue;
        ent = &loop->fds[fd];
        if (ent->rq.head != NULL || ent->wq.head != NULL || ent->pq.head != NULL) {
            gyre__emul_ready(loop, fd, ev->events);
            ent = &loop->fds[fd]; /* callbacks may have grown the table */
        }
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
