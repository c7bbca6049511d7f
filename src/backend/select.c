/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* select.c: the select event backend (pselect, for nanosecond timeouts).
 *
 * The most limited backend (fds below FD_SETSIZE only, no edge trigger).
 * State: master read/write/except sets copied into every wait, plus per-fd interest
 * and cookie. Invariants: only fds in [0, FD_SETSIZE) ever reach an fd_set
 * (FD_SET beyond it writes past the struct); mask[fd] != 0 exactly for
 * watched fds, and maxfd is the highest of them or -1.
 *
 * select cannot say "hang-up" or "peer shut down writing": GYRE_RDHUP
 * with GYRE_IN puts the fd in the read set and readiness is reported as
 * GYRE_IN (the reader sees end of file), and GYRE_RDHUP alone is -ENOTSUP; errors and hang-ups show
 * up as readable or writable, as the kernel's select reports them. Except-set readiness is urgent
 * data, so only fds that asked for GYRE_PRI are put there.
 */
#include <errno.h>

#include "backend/backend.h"
#include "core/alloc.h"
#include "sys/sys.h"

struct sel {
    fd_set rd, wr, ex;
    int maxfd;
    /* Where wait() starts looking, so that when more fds are ready than the
     * core asked for, the ones past the cut come first next time. */
    int scan_start;
    uint32_t mask[FD_SETSIZE]; /* GYRE_* interest, 0 = not watched */
    uint64_t cookie[FD_SETSIZE];
};

/* What one wait found; `bad` holds fds found closed after an EBADF. */
struct ready {
    fd_set rd, wr, ex, bad;
};

static int select_probe(void)
{
    return 1;
}

static int select_init(void **state, const gyre_loop_opts *opts, const char **reason)
{
    struct sel *s = gyre__calloc(1, sizeof(*s));

    (void)opts;
    (void)reason;
    if (s == NULL)
        return -ENOMEM;
    FD_ZERO(&s->rd);
    FD_ZERO(&s->wr);
    FD_ZERO(&s->ex);
    s->maxfd = -1;
    *state = s;
    return 0;
}

static void select_fini(void *state)
{
    gyre__free(state);
}

static int select_ctl(void *state, int fd, uint32_t old_events, uint32_t new_events,
                      uint64_t cookie)
{
    struct sel *s = state;

    if (fd < 0 || fd >= FD_SETSIZE)
        return new_events == 0 ? 0 : -EINVAL;
    if (new_events & GYRE_EDGE)
        return -ENOTSUP;
    /* RDHUP alone would be reported as GYRE_IN, a bit the watch did not ask
     * for; the core would mask it and the fd would stay ready forever. */
    if ((new_events & (GYRE_IN | GYRE_RDHUP)) == GYRE_RDHUP)
        return -ENOTSUP;
    /* select() skips fds beyond the process's current descriptor table
     * instead of failing with EBADF (core_sys_select clamps n to max_fds), so
     * a closed fd there would block forever: refuse it here, as epoll_ctl
     * does. */
    if (old_events == 0 && new_events != 0) {
        int r = gyre__sys_fcntl_getfd(fd);

        if (r < 0)
            return r;
    }
    FD_CLR(fd, &s->rd);
    FD_CLR(fd, &s->wr);
    FD_CLR(fd, &s->ex);
    s->mask[fd] = new_events;
    if (new_events == 0) {
        while (s->maxfd >= 0 && s->mask[s->maxfd] == 0)
            s->maxfd--;
        return 0;
    }
    if (new_events & (GYRE_IN | GYRE_RDHUP))
        FD_SET(fd, &s->rd);
    if (new_events & GYRE_OUT)
        FD_SET(fd, &s->wr);
    if (new_events & GYRE_PRI)
        FD_SET(fd, &s->ex);
    s->cookie[fd] = cookie;
    if (fd > s->maxfd)
        s->maxfd = fd;
    return 0;
}

/* select fails the whole call with EBADF when one fd in the sets is closed,
 * and would keep failing: find the closed ones so they can be reported and
 * the core can stop their watches. */
static void find_closed(const struct sel *s, struct ready *r)
{
    FD_ZERO(&r->rd);
    FD_ZERO(&r->wr);
    FD_ZERO(&r->ex);
    for (int fd = 0; fd <= s->maxfd; fd++) {
        if (s->mask[fd] != 0 && gyre__sys_fcntl_getfd(fd) == -EBADF)
            FD_SET(fd, &r->bad);
    }
}

static int select_wait(void *state, int64_t timeout_ns, gyre__event *out, int max)
{
    struct sel *s = state;
    struct ready r = {.rd = s->rd, .wr = s->wr, .ex = s->ex};
    int rc, fd, count = 0;

    rc = gyre__sys_select(s->maxfd + 1, &r.rd, &r.wr, &r.ex, timeout_ns);
    if (rc == -EBADF)
        find_closed(s, &r);
    else if (rc <= 0)
        return rc;
    if (s->maxfd < 0)
        return 0;
    fd = s->scan_start <= s->maxfd ? s->scan_start : 0;
    for (int k = 0; k <= s->maxfd && count < max; k++) {
        uint32_t ev = 0;

        if (FD_ISSET(fd, &r.rd))
            ev |= GYRE_IN;
        if (FD_ISSET(fd, &r.wr))
            ev |= GYRE_OUT;
        if (FD_ISSET(fd, &r.ex))
            ev |= GYRE_PRI;
        if (FD_ISSET(fd, &r.bad))
            ev |= GYRE_ERR | GYRE_HUP;
        if (ev != 0) {
            out[count].cookie = s->cookie[fd];
            out[count].events = ev;
            count++;
        }
        if (++fd > s->maxfd)
            fd = 0;
    }
    s->scan_start = fd;
    return count;
}

static int select_fd(void *state)
{
    (void)state;
    return -ENOTSUP;
}

GYRE__BACKEND_DEFINE(gyre__backend_select, "select", GYRE__CAP_RDHUP_NEEDS_IN, select);
