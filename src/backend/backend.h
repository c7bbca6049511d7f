/* backend.h: the contract between the core and an event backend.
 *
 * The core owns semantics: which watch wants which events, generations that
 * make stale events impossible, timers, dispatch order. A backend owns only
 * the mechanics of telling the kernel what to watch and of waiting. It never
 * sees a gyre_watch, never calls back into the core and never includes
 * another backend; it reports what the kernel said as (cookie, events) pairs,
 * where the cookie is an opaque 64-bit value the core gave it in ctl().
 *
 * Every backend is defined with GYRE__BACKEND_DEFINE(), which names each of
 * its functions, so a backend that misses one (or gives it the wrong type)
 * does not compile.
 */
#ifndef GYRE_BACKEND_H
#define GYRE_BACKEND_H

#include <stdint.h>

#include "gyre.h"

typedef struct gyre__event {
    uint64_t cookie;
    uint32_t events; /* GYRE_IN|GYRE_OUT|GYRE_PRI|GYRE_ERR|GYRE_HUP|GYRE_RDHUP */
} gyre__event;

struct gyre__backend {
    const char *name;
    uint32_t caps; /* GYRE_CAP_* */

    /* 1 if this backend can run on this machine, 0 if not. May be called
     * often: cache anything expensive. */
    int (*probe)(void);

    /* Creates the backend's state (kernel objects made CLOEXEC). max_events
     * is the most events one wait() will be asked for. Returns 0 or -errno;
     * on failure nothing is left behind. */
    int (*init)(void **state, uint32_t max_events);

    /* Frees the state and closes the backend's own fds. */
    void (*fini)(void *state);

    /* Changes what is watched on fd: old_events == 0 adds, new_events == 0
     * removes, otherwise modifies. Event masks are GYRE_IN|GYRE_OUT|GYRE_PRI|
     * GYRE_RDHUP, possibly with GYRE_EDGE (only if caps has GYRE_CAP_EDGE).
     * cookie is reported back with every event for this fd until the next
     * ctl() on it. Returns 0 or -errno; a failed add or modify leaves the
     * previous registration in place. A remove never fails in a way the core
     * must handle (an fd already closed is simply forgotten). */
    int (*ctl)(void *state, int fd, uint32_t old_events, uint32_t new_events, uint64_t cookie);

    /* Waits up to timeout_ns (-1: forever, 0: do not block) and stores up to
     * max events in out. Returns how many (>= 0), or -errno; -EINTR is a
     * normal return the core absorbs. A timeout is rounded up, never down, so
     * a timer is never woken early into a busy loop. */
    int (*wait)(void *state, int64_t timeout_ns, gyre__event *out, int max);

    /* A pollable fd that is readable when wait() would return events, or
     * -ENOTSUP. */
    int (*fd)(void *state);
};

#define GYRE__BACKEND_DEFINE(ident, name_str, caps_, prefix)                                       \
    const struct gyre__backend ident = {                                                           \
        .name = name_str,                                                                          \
        .caps = caps_,                                                                             \
        .probe = prefix##_probe,                                                                   \
        .init = prefix##_init,                                                                     \
        .fini = prefix##_fini,                                                                     \
        .ctl = prefix##_ctl,                                                                       \
        .wait = prefix##_wait,                                                                     \
        .fd = prefix##_fd,                                                                         \
    }

extern const struct gyre__backend gyre__backend_epoll;
extern const struct gyre__backend gyre__backend_poll;
extern const struct gyre__backend gyre__backend_select;

#endif
