/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* poll.c: the poll event backend (ppoll, for nanosecond timeouts).
 *
 * State: a dense pollfd array handed to ppoll as is, a parallel cookie
 * array, and an fd -> slot map. Invariants: slots [0, n) are exactly the
 * watched fds, each fd at most once; slot_of[fd] == slot + 1 for a watched
 * fd and 0 otherwise. Removal moves the last slot into the hole, so ctl() is
 * O(1) and the array stays dense. A failed growth leaves the registration
 * unchanged (an array may have grown, which is harmless).
 */
#include <errno.h>
#include <string.h>

#include "backend/backend.h"
#include "core/alloc.h"
#include "sys/sys.h"

_Static_assert(GYRE_IN == POLLIN && GYRE_PRI == POLLPRI && GYRE_OUT == POLLOUT &&
                   GYRE_ERR == POLLERR && GYRE_HUP == POLLHUP && GYRE_RDHUP == POLLRDHUP,
               "GYRE_* event bits must equal POLL* bits");

#define POLL_INTEREST (GYRE_IN | GYRE_PRI | GYRE_OUT | GYRE_RDHUP)
#define POLL_REPORTED (GYRE_IN | GYRE_PRI | GYRE_OUT | GYRE_ERR | GYRE_HUP | GYRE_RDHUP)

struct pl {
    struct pollfd *pfds; /* [n], given to ppoll */
    uint64_t *cookies;   /* [n], parallel to pfds */
    uint32_t *slot_of;   /* [map_cap], fd -> slot + 1, 0 = not watched */
    size_t n;
    size_t pfd_cap, cookie_cap, map_cap;
    /* Where wait() starts looking, so that when more fds are ready than the
     * core asked for, the ones past the cut come first next time. */
    size_t scan_start;
};

static int poll_probe(void)
{
    return 1;
}

static int poll_init(void **state, const gyre_loop_opts *opts, const char **reason)
{
    struct pl *pl = gyre__calloc(1, sizeof(*pl));

    (void)opts;
    (void)reason;
    if (pl == NULL)
        return -ENOMEM;
    *state = pl;
    return 0;
}

static void poll_fini(void *state)
{
    struct pl *pl = state;

    gyre__free(pl->pfds);
    gyre__free(pl->cookies);
    gyre__free(pl->slot_of);
    gyre__free(pl);
}

/* Appends fd with no interest yet. Returns its slot or -ENOMEM. */
static int add_slot(struct pl *pl, int fd)
{
    size_t old_map_cap = pl->map_cap;

    if (gyre__grow(&pl->slot_of, &pl->map_cap, (size_t)fd + 1, sizeof(*pl->slot_of)) < 0)
        return -ENOMEM;
    /* Zeroed at once, so a later failure leaves a valid (larger) map. */
    memset(pl->slot_of + old_map_cap, 0, (pl->map_cap - old_map_cap) * sizeof(*pl->slot_of));
    if (gyre__grow(&pl->pfds, &pl->pfd_cap, pl->n + 1, sizeof(*pl->pfds)) < 0 ||
        gyre__grow(&pl->cookies, &pl->cookie_cap, pl->n + 1, sizeof(*pl->cookies)) < 0)
        return -ENOMEM;
    pl->pfds[pl->n] = (struct pollfd){.fd = fd};
    pl->slot_of[fd] = (uint32_t)pl->n + 1;
    return (int)pl->n++;
}

static void remove_slot(struct pl *pl, size_t slot)
{
    size_t last = pl->n - 1;

    pl->slot_of[pl->pfds[slot].fd] = 0;
    if (slot != last) {
        pl->pfds[slot] = pl->pfds[last];
        pl->cookies[slot] = pl->cookies[last];
        pl->slot_of[pl->pfds[slot].fd] = (uint32_t)slot + 1;
    }
    pl->n = last;
}

static int poll_ctl(void *state, int fd, uint32_t old_events, uint32_t new_events, uint64_t cookie)
{
    struct pl *pl = state;
    size_t slot = fd >= 0 && (size_t)fd < pl->map_cap ? pl->slot_of[fd] : 0;

    /* old_events is not trusted: the slot map is the truth here, so an add
     * of a watched fd modifies and a modify of an unknown fd adds. */
    (void)old_events;
    if (new_events == 0) {
        if (slot != 0)
            remove_slot(pl, slot - 1);
        return 0;
    }
    if (fd < 0)
        return -EINVAL;
    if (new_events & GYRE_EDGE)
        return -ENOTSUP;
    if (slot == 0) {
        int rc = add_slot(pl, fd);

        if (rc < 0)
            return rc;
        slot = (size_t)rc + 1;
    }
    pl->pfds[slot - 1].events = (short)(new_events & POLL_INTEREST);
    pl->cookies[slot - 1] = cookie;
    return 0;
}

static uint32_t events_of(short revents)
{
    uint32_t ev = (uint16_t)revents & POLL_REPORTED;

    /* POLLNVAL: the fd was closed while watched. Reported as ERR|HUP, as
     * select reports its EBADF, so the core stops the watch; poll would
     * otherwise return at once on every wait and the loop would spin. */
    if (revents & POLLNVAL)
        ev |= GYRE_ERR | GYRE_HUP;
    return ev;
}

static int poll_wait(void *state, int64_t timeout_ns, gyre__event *out, int max)
{
    struct pl *pl = state;
    size_t i, seen = 0;
    int ready, count = 0;

    ready = gyre__sys_poll(pl->pfds, pl->n, timeout_ns);
    if (ready <= 0)
        return ready;
    i = pl->scan_start < pl->n ? pl->scan_start : 0;
    /* ppoll's count is of pollfds with revents != 0, so the scan can stop
     * once it has seen them all. */
    for (size_t k = 0; k < pl->n && seen < (size_t)ready && count < max; k++) {
        if (pl->pfds[i].revents != 0) {
            seen++;
            out[count].cookie = pl->cookies[i];
            out[count].events = events_of(pl->pfds[i].revents);
            count++;
        }
        if (++i == pl->n)
            i = 0;
    }
    pl->scan_start = i;
    return count;
}

static int poll_fd(void *state)
{
    (void)state;
    return -ENOTSUP;
}

GYRE__BACKEND_DEFINE(gyre__backend_poll, "poll", GYRE_CAP_ANY_FD, poll);
