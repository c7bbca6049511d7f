/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* epoll.c: the epoll event backend.
 *
 * The kernel keeps the interest list, so this file keeps no per-fd state:
 * the core's cookie rides in epoll_event.data.u64 and GYRE_* bits are EPOLL*
 * bits (checked below), so masks pass through unchanged in both directions.
 *
 * epoll registers an open file description, not an fd number: an entry lives
 * until the last fd referring to the file is closed, and is keyed by
 * (file, fd number). ctl() absorbs the two mismatches that follow between
 * the core's view (by fd number) and the kernel's; see ep_ctl().
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>

#include "backend/backend.h"
#include "core/alloc.h"
#include "sys/sys.h"

_Static_assert(GYRE_IN == EPOLLIN && GYRE_PRI == EPOLLPRI && GYRE_OUT == EPOLLOUT &&
                   GYRE_ERR == EPOLLERR && GYRE_HUP == EPOLLHUP && GYRE_RDHUP == EPOLLRDHUP &&
                   GYRE_EDGE == (uint32_t)EPOLLET,
               "GYRE_* event bits must equal EPOLL* bits");

#define EP_INTEREST (GYRE_IN | GYRE_PRI | GYRE_OUT | GYRE_RDHUP | GYRE_EDGE)
#define EP_REPORTED (GYRE_IN | GYRE_PRI | GYRE_OUT | GYRE_ERR | GYRE_HUP | GYRE_RDHUP)
/* epoll_wait refuses maxevents above this (EINVAL). */
#define EP_MAX_EVENTS ((uint32_t)(INT_MAX / sizeof(struct epoll_event)))

struct ep {
    int epfd;
    int max;
    /* The kernel's layout (packed on x86-64) differs from gyre__event, so
     * the kernel writes here and wait() converts. */
    struct epoll_event evs[];
};

/* 0 = not probed, 1 = works, -1 = cannot work here. A cache of a fact about
 * the kernel, publishing nothing else: relaxed. */
static atomic_int probed;

static int ep_probe(void)
{
    int v = atomic_load_explicit(&probed, memory_order_relaxed);
    int fd;

    if (v != 0)
        return v > 0;
    fd = gyre__sys_epoll_create();
    if (fd >= 0) {
        gyre__sys_close(fd);
        v = 1;
    } else if (fd == -ENOSYS || fd == -EPERM) {
        /* EPERM: a seccomp profile that forbids epoll. */
        v = -1;
    } else {
        /* Out of fds or memory right now: epoll exists, and init() will
         * report the real error. Not cached, it may pass. */
        return 1;
    }
    atomic_store_explicit(&probed, v, memory_order_relaxed);
    return v > 0;
}

static int ep_init(void **state, const gyre_loop_opts *opts, const char **reason)
{
    uint32_t max_events = opts->max_events;
    struct ep *ep;
    int fd;

    (void)reason;
    if (max_events == 0)
        return -EINVAL;
    if (max_events > EP_MAX_EVENTS)
        max_events = EP_MAX_EVENTS;
    ep = gyre__malloc(sizeof(*ep) + max_events * sizeof(struct epoll_event));
    if (ep == NULL)
        return -ENOMEM;
    fd = gyre__sys_epoll_create();
    if (fd < 0) {
        gyre__free(ep);
        return fd;
    }
    ep->epfd = fd;
    ep->max = (int)max_events;
    *state = ep;
    return 0;
}

static void ep_fini(void *state)
{
    struct ep *ep = state;

    gyre__sys_close(ep->epfd);
    gyre__free(ep);
}

static int ep_ctl(void *state, int fd, uint32_t old_events, uint32_t new_events, uint64_t cookie)
{
    struct ep *ep = state;
    struct epoll_event ev = {.events = new_events & EP_INTEREST, .data.u64 = cookie};
    int rc;

    if (new_events == 0) {
        /* EBADF/ENOENT: the fd was closed first, and the kernel dropped the
         * entry with the file (or a dup keeps it alive, unreachable by this
         * number; its events carry a cookie the core has retired). EPERM:
         * the fd could never be added. ev is passed because kernels before
         * 2.6.9 reject a NULL event even for DEL. */
        rc = gyre__sys_epoll_ctl(ep->epfd, EPOLL_CTL_DEL, fd, &ev);
        return rc == -EBADF || rc == -ENOENT || rc == -EPERM ? 0 : rc;
    }
    if (old_events == 0) {
        rc = gyre__sys_epoll_ctl(ep->epfd, EPOLL_CTL_ADD, fd, &ev);
        /* The same file is still registered under this number: the core's
         * remove failed with EBADF while a dup kept the file open, and the
         * file came back on the same number (dup2). Take it over. */
        if (rc == -EEXIST)
            rc = gyre__sys_epoll_ctl(ep->epfd, EPOLL_CTL_MOD, fd, &ev);
    } else {
        rc = gyre__sys_epoll_ctl(ep->epfd, EPOLL_CTL_MOD, fd, &ev);
        /* The fd was closed and the number reopened: the kernel dropped the
         * old entry with its file, and the new file was never added. */
        if (rc == -ENOENT)
            rc = gyre__sys_epoll_ctl(ep->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    return rc;
}

static int ep_wait(void *state, int64_t timeout_ns, gyre__event *out, int max)
{
    struct ep *ep = state;
    int n;

    if (max > ep->max)
        max = ep->max;
    n = gyre__sys_epoll_wait(ep->epfd, ep->evs, max, timeout_ns);
    for (int i = 0; i < n; i++) {
        out[i].cookie = ep->evs[i].data.u64;
        out[i].events = ep->evs[i].events & EP_REPORTED;
    }
    return n;
}

static int ep_fd(void *state)
{
    const struct ep *ep = state;

    return ep->epfd;
}

GYRE__BACKEND_DEFINE(gyre__backend_epoll, "epoll",
                     GYRE_CAP_EDGE | GYRE_CAP_LOOP_FD | GYRE_CAP_ANY_FD, ep);
