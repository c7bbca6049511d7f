/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
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

/* What a wait() reports: readiness of a registered fd, or (native-ops
 * backends only) one completion of an op. */
enum gyre__evkind {
    GYRE__EV_READY = 0,
    GYRE__EV_OP = 1
};

typedef struct gyre__event {
    uint64_t cookie; /* READY: as given to ctl(); OP: (uintptr_t)op */
    uint32_t events; /* READY: GYRE_IN|OUT|PRI|ERR|HUP|RDHUP; OP: GYRE_OP_MORE|BUFFER */
    uint32_t kind;   /* enum gyre__evkind */
    int64_t res;     /* OP: the result, already in gyre's terms (see submit) */
    uint32_t buf_id; /* OP with GYRE_OP_BUFFER */
    uint32_t pad;
} gyre__event;

/* Opcodes of gyre_op (op->gyre__priv.opcode). */
enum gyre__opcode {
    GYRE__OP_NONE = 0,
    GYRE__OP_NOP,
    GYRE__OP_READ,
    GYRE__OP_WRITE,
    GYRE__OP_READV,
    GYRE__OP_WRITEV,
    GYRE__OP_RECV,
    GYRE__OP_SEND,
    GYRE__OP_RECVMSG,
    GYRE__OP_SENDMSG,
    GYRE__OP_ACCEPT,
    GYRE__OP_CONNECT,
    GYRE__OP_SHUTDOWN,
    GYRE__OP_CLOSE,
    GYRE__OP_OPENAT,
    GYRE__OP_STATX,
    GYRE__OP_FSYNC,
    GYRE__OP_POLL,
    GYRE__OP_TIMEOUT,
    GYRE__OP_ACCEPT_MULTI,
    GYRE__OP_RECV_MULTI,
    GYRE__OP_WORK,
    GYRE__OP_FTRUNCATE,
    GYRE__OP_FALLOCATE,
    GYRE__OP_UNLINKAT,
    GYRE__OP_RENAMEAT,
    GYRE__OP_MKDIRAT,
    GYRE__OP_COPY_FILE_RANGE,
    GYRE__OP_GETDENTS,
    GYRE__OP_COUNT
};

/* Feature queries answered by supports() beside the opcodes. */
enum gyre__feature {
    /* A native CLOSE first cancels every native op on its fd (io_uring
     * 5.19+); without it the core cancels them itself. Either way the
     * close's final event comes after theirs (see submit()). */
    GYRE__FEAT_CLOSE_CANCELS_FD = 1000,
    /* A TIMEOUT that expires does not break its link (io_uring 5.16+,
     * IORING_TIMEOUT_ETIME_SUCCESS); without it the core carries the link
     * of a TIMEOUT (gyre.h's link table). */
    GYRE__FEAT_TIMEOUT_LINKS = 1001,
};

/* How each op's fields are used (set by gyre_op_<name>(), never changed by a
 * backend):
 *   READ/WRITE    fd, addr=buf, len, off (GYRE_OFF_CUR = current position)
 *   READV/WRITEV  fd, addr=iov, len=iovcnt, off
 *   RECV/SEND     fd, addr=buf, len, arg=msg flags (SEND: MSG_NOSIGNAL added)
 *   RECVMSG/SENDMSG fd, addr=msghdr, arg=msg flags (SENDMSG: MSG_NOSIGNAL added)
 *   ACCEPT        fd, addr=sockaddr, addr2=socklen_t *, arg=flags|SOCK_CLOEXEC
 *   CONNECT       fd, addr=sockaddr, len=addrlen
 *   SHUTDOWN      fd, arg=how
 *   CLOSE         fd
 *   OPENAT        fd=dirfd, addr=path, arg=flags|O_CLOEXEC, arg2=mode
 *   STATX         fd=dirfd, addr=path, addr2=struct statx *, arg=flags, arg2=mask
 *   FSYNC         fd, arg=1 for fdatasync
 *   POLL          fd, arg=GYRE_* events
 *   TIMEOUT       off=timeout ns
 *   ACCEPT_MULTI  fd (new fds SOCK_CLOEXEC)
 *   RECV_MULTI    fd, addr=gyre_bufpool *
 *   WORK          addr=fn, addr2=arg, arg=lane
 *   FTRUNCATE     fd, off=length
 *   FALLOCATE     fd, arg=mode, off=offset, off2=length
 *   UNLINKAT      fd=dirfd, addr=path, arg=flags
 *   RENAMEAT      fd=olddirfd, addr=oldpath, arg2=newdirfd, addr2=newpath, arg=flags
 *   MKDIRAT       fd=dirfd, addr=path, arg2=mode
 *   COPY_FILE_RANGE fd=fd_in, off=off_in, arg2=fd_out, off2=off_out, len, arg=flags
 *   GETDENTS      fd=dirfd, addr=buf, len
 * deadline_ns != 0 asks for a deadline (relative to submission). */

/* op->gyre__priv.sflags bits */
#define GYRE__OPF_LINK 0x1u      /* the next submitted op is linked to this one */
#define GYRE__OPF_INFLIGHT 0x2u  /* submitted, final completion not yet delivered */
#define GYRE__OPF_CANCEL 0x4u    /* cancel requested */
#define GYRE__OPF_NATIVE 0x8u    /* carried by the backend's submit() */
#define GYRE__OPF_TIMEDOUT 0x10u /* its deadline fired */
#define GYRE__OPF_POOL 0x20u     /* with a pool lane (loop thread's view) */
#define GYRE__OPF_TIMER 0x40u    /* gyre__priv.timer was initialised for this op */
#define GYRE__OPF_DIRECT 0x80u   /* a file read or write on an O_DIRECT fd */
#define GYRE__OPF_ORDER 0x100u   /* counted in its fd's order_busy (core) */
#define GYRE__OPF_EMUL 0x200u    /* off the backend: it said -EAGAIN (or op.c's redo_off()) */
#define GYRE__OPF_WHOLE 0x400u   /* a linked write: moves every byte or fails (MSG_WAITALL) */
#define GYRE__OPF_TRUNC 0x800u   /* emulated MSG_WAITALL recv: the datagram was truncated */
/* A close counted in its fd's `closing` (core). */
#define GYRE__OPF_CLOSING 0x1000u
/* gyre_op_set_bufpool_put(): at the final completion buffer arg2 goes back
 * to the pool in addr3 (sends and writes only, which use neither field). */
#define GYRE__OPF_BUFPUT 0x2000u
/* In a chain the kernel links (it has a kernel predecessor or successor):
 * its -ECANCELED may be the chain's, which gyre cannot tell from io-wq's. */
#define GYRE__OPF_KCHAIN 0x100000u
/* How often the core redid the op after an -ECANCELED nobody asked for
 * (two bits, op.c's unasked_cancel()). */
#define GYRE__OPF_REDO_ONE 0x200000u
#define GYRE__OPF_REDO_MASK 0x600000u

/* Whether op moves every byte it asked for before it completes, retried
 * after a partial transfer (gyre.h's link table): a recv, send, recvmsg or
 * sendmsg with MSG_WAITALL, and a linked write, writev, send or sendmsg
 * (GYRE__OPF_WHOLE, which io_uring carries as MSG_WAITALL). A recv retries
 * only on a stream socket (a datagram is one message). */
static inline int gyre__op_whole(const gyre_op *op)
{
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_RECV:
    case GYRE__OP_SEND:
    case GYRE__OP_RECVMSG:
    case GYRE__OP_SENDMSG:
        return (op->gyre__priv.arg & MSG_WAITALL) || (op->gyre__priv.sflags & GYRE__OPF_WHOLE);
    case GYRE__OP_WRITE:
    case GYRE__OP_WRITEV:
        return (op->gyre__priv.sflags & GYRE__OPF_WHOLE) != 0;
    default:
        return 0;
    }
}

/* The deadline a backend must carry for op: none when the core's timer keeps
 * it (multishot ops, which the kernel cannot give a linked timeout, and ops
 * whose deadline started while they waited in the core). */
static inline uint64_t gyre__op_kernel_deadline(const gyre_op *op)
{
    unsigned opc = op->gyre__priv.opcode;

    if (op->gyre__priv.sflags & GYRE__OPF_TIMER)
        return 0;
    return opc == GYRE__OP_ACCEPT_MULTI || opc == GYRE__OP_RECV_MULTI ? 0
                                                                      : op->gyre__priv.deadline_ns;
}

/* A backend capability bit the core uses but does not report: GYRE_RDHUP
 * can only be watched together with GYRE_IN (select has no hang-up set). */
#define GYRE__CAP_RDHUP_NEEDS_IN 0x80000000u

struct gyre__backend {
    const char *name;
    uint32_t caps; /* GYRE_CAP_*, and GYRE__CAP_* */

    /* 1 if this backend can run on this machine, 0 if not. May be called
     * often: cache anything expensive. */
    int (*probe)(void);

    /* Creates the backend's state (kernel objects made CLOEXEC). opts gives
     * max_events (the most events one wait() will be asked for), flags and
     * ring_entries. Returns 0 or -errno; on failure nothing is left behind,
     * and *reason may be set to a static string saying why. */
    int (*init)(void **state, const gyre_loop_opts *opts, const char **reason);

    /* Frees the state: only unmaps memory and closes the backend's own fds,
     * never otherwise acts on its kernel objects, so that it is also how a
     * child after fork() drops objects it shares with its parent. */
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

    /* --- native operations: NULL unless caps has GYRE_CAP_NATIVE_OPS --- */

    /* 1 if submit() can carry this gyre__opcode now (after probing and
     * GYRE_URING_PROFILE masking); the core emulates the others. Also
     * answers the gyre__feature queries. */
    int (*supports)(void *state, unsigned opcode);

    /* Queues op for the kernel; it goes in at the next wait() (one kernel
     * entry submits and waits). Never calls back, never fails for a full
     * queue (the backend parks the op and submits it later). The backend
     * reports the op's completions from wait() as GYRE__EV_OP events, each
     * already in gyre's terms: the linked-timeout and cancel completions are
     * absorbed (an op whose deadline fired reports -ETIME), TIMEOUT reports 0
     * on expiry, and the op's final event (no GYRE_OP_MORE) comes only after
     * every completion naming the op has arrived, so the core may hand the op
     * back to the caller at once. A GYRE__OPF_LINK op is linked to the next
     * submit() natively (never to or from a CLOSE: the core carries those
     * links). A CLOSE's final event comes after the final events of the ops
     * on its fd that this backend took before it. Returns 0 or -errno
     * (nothing queued). */
    int (*submit)(void *state, gyre_op *op);

    /* Queues a cancel of op (in flight in this backend). The op's own final
     * event says how it ended. Returns 0 or -errno. */
    int (*cancel)(void *state, gyre_op *op);

    /* Buffer pools on the kernel side (provided-buffer ring). add() makes
     * the ring for `count` buffers of `size` bytes at `mem` and hands all of
     * them to the kernel, giving back a handle; put() gives buffer id back to
     * the kernel; del() removes the ring. Return 0 or -errno. */
    int (*bufring_add)(void *state, void *mem, uint32_t count, uint32_t size, uint16_t *bgid);
    int (*bufring_put)(void *state, uint16_t bgid, uint32_t id);
    void (*bufring_del)(void *state, uint16_t bgid);

    /* Fills what gyre_loop_info() reports about the backend. */
    void (*info)(void *state, gyre_info *out);
};

/* A readiness-only backend: every native-ops member is NULL. */
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

/* A backend with GYRE_CAP_NATIVE_OPS: must name every member. */
#define GYRE__BACKEND_DEFINE_NATIVE(ident, name_str, caps_, prefix)                                \
    const struct gyre__backend ident = {                                                           \
        .name = name_str,                                                                          \
        .caps = (caps_) | GYRE_CAP_NATIVE_OPS,                                                     \
        .probe = prefix##_probe,                                                                   \
        .init = prefix##_init,                                                                     \
        .fini = prefix##_fini,                                                                     \
        .ctl = prefix##_ctl,                                                                       \
        .wait = prefix##_wait,                                                                     \
        .fd = prefix##_fd,                                                                         \
        .supports = prefix##_supports,                                                             \
        .submit = prefix##_submit,                                                                 \
        .cancel = prefix##_cancel,                                                                 \
        .bufring_add = prefix##_bufring_add,                                                       \
        .bufring_put = prefix##_bufring_put,                                                       \
        .bufring_del = prefix##_bufring_del,                                                       \
        .info = prefix##_info,                                                                     \
    }

extern const struct gyre__backend gyre__backend_epoll;
extern const struct gyre__backend gyre__backend_poll;
extern const struct gyre__backend gyre__backend_select;
extern const struct gyre__backend gyre__backend_uring;

#endif
