/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* op.c: operations (the proactor API): preparation, submission, routing,
 * links, deadlines, cancellation and completion.
 *
 * The core owns the semantics every backend shares (DESIGN.md rule 2): an op
 * submitted successfully completes exactly once (a multishot op: until a
 * completion without GYRE_OP_MORE), never inside the call that submitted or
 * cancelled it, and only after the kernel or a worker let go of it. Where an
 * op runs is decided once per start by route():
 *   - native: the backend's submit() (io_uring), when it carries the opcode;
 *   - pool: file and path ops off io_uring (or with file_engine "pool"), and
 *     user work;
 *   - emulated: everything else, by readiness plus the non-blocking syscall
 *     (emul.c), which also serves opcodes io_uring lacks.
 * Whatever the route, an op is on exactly one queue at a time, named by its
 * state, so cancel and fork always know where to find it.
 *
 * Stream order (rule 5): on one fd, the data ops at the current position
 * start one after the other per side (reads; writes). The emulation keeps
 * them in its fd queues; an op waits (ORDERWAIT) while an earlier one of its
 * side is in the backend (or, for an op bound there, still in those queues),
 * since the kernel orders nothing between requests it runs concurrently.
 *
 * Links: the successor of a linked op is whatever op is submitted next on
 * the loop. When both go native, the kernel links them (a native op with a
 * link is held until the next submit, or the next flush, to learn that);
 * otherwise the core keeps the successor waiting and starts it when its
 * predecessor completes whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "core/loop.h"
#include "core/pool.h"
#include "sys/sys.h"

#define OPF (op->gyre__priv.sflags)

_Static_assert(sizeof(gyre_work_fn) == sizeof(void *), "work functions are stored in a void *");

/* --- queues --- */

void gyre__opq_push(struct gyre__opq *q, gyre_op *op)
{
    op->gyre__priv.next = NULL;
    op->gyre__priv.prev = q->tail;
    if (q->tail != NULL)
        q->tail->gyre__priv.next = op;
    else
        q->head = op;
    q->tail = op;
}

void gyre__opq_remove(struct gyre__opq *q, gyre_op *op)
{
    gyre_op *n = op->gyre__priv.next, *p = op->gyre__priv.prev;

    if (p != NULL)
        p->gyre__priv.next = n;
    else
        q->head = n;
    if (n != NULL)
        n->gyre__priv.prev = p;
    else
        q->tail = p;
    op->gyre__priv.next = op->gyre__priv.prev = NULL;
}

/* --- preparation --- */

/* Sets every field the core reads, and only those: the op is ~250 bytes,
 * mostly the deadline timer and the backend's area, which are initialised
 * when (and only if) they are used, so a prep costs a few stores, not a
 * memset, on the per-message path. */
static void prep(gyre_op *op, unsigned opcode, int fd, const void *addr, uint32_t len, uint64_t off)
{
    op->result = 0;
    op->flags = 0;
    op->buf_id = 0;
    op->gyre__priv.loop = NULL;
    op->gyre__priv.next = op->gyre__priv.prev = op->gyre__priv.link_next = NULL;
    op->gyre__priv.addr = (void *)(uintptr_t)addr;
    op->gyre__priv.addr2 = op->gyre__priv.addr3 = NULL;
    op->gyre__priv.off = off;
    op->gyre__priv.off2 = 0;
    op->gyre__priv.deadline_ns = 0;
    op->gyre__priv.len = len;
    op->gyre__priv.arg = op->gyre__priv.arg2 = 0;
    op->gyre__priv.fd = fd;
    op->gyre__priv.opcode = (uint16_t)opcode;
    op->gyre__priv.state = GYRE__OS_IDLE;
    op->gyre__priv.sflags = 0;
    op->gyre__priv.pending = 0;
    op->gyre__priv.res2 = 0;
}

GYRE_API void gyre_op_nop(gyre_op *op)
{
    prep(op, GYRE__OP_NOP, -1, NULL, 0, 0);
}

GYRE_API void gyre_op_read(gyre_op *op, int fd, void *buf, uint32_t len, uint64_t offset)
{
    prep(op, GYRE__OP_READ, fd, buf, len, offset);
}

GYRE_API void gyre_op_write(gyre_op *op, int fd, const void *buf, uint32_t len, uint64_t offset)
{
    prep(op, GYRE__OP_WRITE, fd, buf, len, offset);
}

GYRE_API void gyre_op_readv(gyre_op *op, int fd, const struct iovec *iov, uint32_t iovcnt,
                            uint64_t offset)
{
    prep(op, GYRE__OP_READV, fd, iov, iovcnt, offset);
}

GYRE_API void gyre_op_writev(gyre_op *op, int fd, const struct iovec *iov, uint32_t iovcnt,
                             uint64_t offset)
{
    prep(op, GYRE__OP_WRITEV, fd, iov, iovcnt, offset);
}

GYRE_API void gyre_op_recv(gyre_op *op, int fd, void *buf, uint32_t len, int flags)
{
    prep(op, GYRE__OP_RECV, fd, buf, len, 0);
    op->gyre__priv.arg = (uint32_t)flags;
}

GYRE_API void gyre_op_send(gyre_op *op, int fd, const void *buf, uint32_t len, int flags)
{
    prep(op, GYRE__OP_SEND, fd, buf, len, 0);
    op->gyre__priv.arg = (uint32_t)flags | MSG_NOSIGNAL;
}

GYRE_API void gyre_op_recvmsg(gyre_op *op, int fd, struct msghdr *msg, int flags)
{
    prep(op, GYRE__OP_RECVMSG, fd, msg, 0, 0);
    op->gyre__priv.arg = (uint32_t)flags | MSG_CMSG_CLOEXEC;
}

GYRE_API void gyre_op_sendmsg(gyre_op *op, int fd, const struct msghdr *msg, int flags)
{
    prep(op, GYRE__OP_SENDMSG, fd, msg, 0, 0);
    op->gyre__priv.arg = (uint32_t)flags | MSG_NOSIGNAL;
}

GYRE_API void gyre_op_accept(gyre_op *op, int fd, struct sockaddr *addr, socklen_t *addrlen,
                             int flags)
{
    prep(op, GYRE__OP_ACCEPT, fd, addr, 0, 0);
    op->gyre__priv.addr2 = addrlen;
    op->gyre__priv.arg = (uint32_t)flags | SOCK_CLOEXEC;
}

GYRE_API void gyre_op_connect(gyre_op *op, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    prep(op, GYRE__OP_CONNECT, fd, addr, addrlen, 0);
}

GYRE_API void gyre_op_shutdown(gyre_op *op, int fd, int how)
{
    prep(op, GYRE__OP_SHUTDOWN, fd, NULL, 0, 0);
    op->gyre__priv.arg = (uint32_t)how;
}

GYRE_API void gyre_op_close(gyre_op *op, int fd)
{
    prep(op, GYRE__OP_CLOSE, fd, NULL, 0, 0);
}

GYRE_API void gyre_op_openat(gyre_op *op, int dirfd, const char *path, int flags, uint32_t mode)
{
    prep(op, GYRE__OP_OPENAT, dirfd, path, 0, 0);
    op->gyre__priv.arg = (uint32_t)flags | O_CLOEXEC;
    op->gyre__priv.arg2 = mode;
}

GYRE_API void gyre_op_statx(gyre_op *op, int dirfd, const char *path, int flags, uint32_t mask,
                            struct statx *out)
{
    prep(op, GYRE__OP_STATX, dirfd, path, 0, 0);
    op->gyre__priv.addr2 = out;
    op->gyre__priv.arg = (uint32_t)flags;
    op->gyre__priv.arg2 = mask;
}

GYRE_API void gyre_op_fsync(gyre_op *op, int fd, int datasync)
{
    prep(op, GYRE__OP_FSYNC, fd, NULL, 0, 0);
    op->gyre__priv.arg = datasync ? 1 : 0;
}

GYRE_API void gyre_op_poll(gyre_op *op, int fd, uint32_t events)
{
    prep(op, GYRE__OP_POLL, fd, NULL, 0, 0);
    op->gyre__priv.arg = events;
}

GYRE_API void gyre_op_timeout(gyre_op *op, uint64_t timeout_ns)
{
    prep(op, GYRE__OP_TIMEOUT, -1, NULL, 0, timeout_ns);
}

GYRE_API void gyre_op_accept_multishot(gyre_op *op, int fd)
{
    prep(op, GYRE__OP_ACCEPT_MULTI, fd, NULL, 0, 0);
    op->gyre__priv.arg = SOCK_CLOEXEC;
}

GYRE_API void gyre_op_recv_multishot(gyre_op *op, int fd, gyre_bufpool *pool)
{
    prep(op, GYRE__OP_RECV_MULTI, fd, pool, 0, 0);
}

GYRE_API void gyre_op_work(gyre_op *op, gyre_work_fn fn, void *arg, int lane)
{
    prep(op, GYRE__OP_WORK, -1, NULL, 0, 0);
    memcpy(&op->gyre__priv.addr, &fn, sizeof fn);
    op->gyre__priv.addr2 = arg;
    op->gyre__priv.arg = (uint32_t)lane;
}

GYRE_API void gyre_op_ftruncate(gyre_op *op, int fd, uint64_t len)
{
    prep(op, GYRE__OP_FTRUNCATE, fd, NULL, 0, len);
}

GYRE_API void gyre_op_fallocate(gyre_op *op, int fd, int mode, uint64_t offset, uint64_t len)
{
    prep(op, GYRE__OP_FALLOCATE, fd, NULL, 0, offset);
    op->gyre__priv.arg = (uint32_t)mode;
    op->gyre__priv.off2 = len;
}

GYRE_API void gyre_op_unlinkat(gyre_op *op, int dirfd, const char *path, int flags)
{
    prep(op, GYRE__OP_UNLINKAT, dirfd, path, 0, 0);
    op->gyre__priv.arg = (uint32_t)flags;
}

GYRE_API void gyre_op_renameat(gyre_op *op, int olddirfd, const char *oldpath, int newdirfd,
                               const char *newpath, unsigned flags)
{
    prep(op, GYRE__OP_RENAMEAT, olddirfd, oldpath, 0, 0);
    op->gyre__priv.arg2 = (uint32_t)newdirfd;
    op->gyre__priv.addr2 = (void *)(uintptr_t)newpath;
    op->gyre__priv.arg = flags;
}

GYRE_API void gyre_op_mkdirat(gyre_op *op, int dirfd, const char *path, uint32_t mode)
{
    prep(op, GYRE__OP_MKDIRAT, dirfd, path, 0, 0);
    op->gyre__priv.arg2 = mode;
}

GYRE_API void gyre_op_copy_file_range(gyre_op *op, int fd_in, uint64_t off_in, int fd_out,
                                      uint64_t off_out, uint32_t len, unsigned flags)
{
    prep(op, GYRE__OP_COPY_FILE_RANGE, fd_in, NULL, len, off_in);
    op->gyre__priv.arg2 = (uint32_t)fd_out;
    op->gyre__priv.off2 = off_out;
    op->gyre__priv.arg = flags;
}

GYRE_API void gyre_op_readdir(gyre_op *op, int dirfd, void *buf, uint32_t len)
{
    prep(op, GYRE__OP_GETDENTS, dirfd, buf, len, 0);
}

GYRE_API void gyre_op_set_deadline(gyre_op *op, uint64_t timeout_ns)
{
    if (op != NULL)
        op->gyre__priv.deadline_ns = timeout_ns;
}

GYRE_API void gyre_op_set_link(gyre_op *op)
{
    if (op != NULL)
        OPF |= GYRE__OPF_LINK;
}

GYRE_API void gyre_op_set_bufpool_put(gyre_op *op, gyre_bufpool *pool, uint32_t id)
{
    if (op == NULL)
        return;
    op->gyre__priv.addr3 = pool;
    op->gyre__priv.arg2 = id;
    OPF |= GYRE__OPF_BUFPUT;
}

/* --- classification --- */

static int is_file_op(const gyre_op *op)
{
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_WRITE:
    case GYRE__OP_READV:
    case GYRE__OP_WRITEV:
        return op->gyre__priv.off != GYRE_OFF_CUR;
    case GYRE__OP_OPENAT:
    case GYRE__OP_STATX:
    case GYRE__OP_FSYNC:
    case GYRE__OP_FTRUNCATE:
    case GYRE__OP_FALLOCATE:
    case GYRE__OP_UNLINKAT:
    case GYRE__OP_RENAMEAT:
    case GYRE__OP_MKDIRAT:
    case GYRE__OP_COPY_FILE_RANGE:
    case GYRE__OP_GETDENTS:
        return 1;
    default:
        return 0;
    }
}

static uint64_t iov_total(const struct iovec *iov, size_t n)
{
    uint64_t total = 0;

    for (size_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

/* Bytes a transfer asked for (links need some of them to be whole). */
uint64_t gyre__op_wanted_bytes(const gyre_op *op)
{
    const struct msghdr *m = op->gyre__priv.addr;

    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_WRITE:
    case GYRE__OP_RECV:
    case GYRE__OP_SEND:
    case GYRE__OP_COPY_FILE_RANGE:
        return op->gyre__priv.len;
    case GYRE__OP_READV:
    case GYRE__OP_WRITEV:
        return iov_total(op->gyre__priv.addr, op->gyre__priv.len);
    case GYRE__OP_RECVMSG:
    case GYRE__OP_SENDMSG:
        return iov_total(m->msg_iov, m->msg_iovlen);
    default:
        return 0;
    }
}

/* The link rule, gyre.h's table (next to gyre_op_set_link), the same on
 * every backend: an error breaks every link; a transfer that must be whole
 * breaks it when short; a recv without MSG_WAITALL, and everything else,
 * holds on any result >= 0 (a TIMEOUT that expired completes with 0). */
static int link_holds(const gyre_op *op, int64_t res)
{
    const struct msghdr *m = op->gyre__priv.addr;

    if (res < 0)
        return 0;
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_RECV:
        if (!(op->gyre__priv.arg & MSG_WAITALL))
            return 1;
        return !(OPF & GYRE__OPF_TRUNC) && (uint64_t)res == gyre__op_wanted_bytes(op);
    case GYRE__OP_RECVMSG:
        /* The kernel wrote msg_flags before the completion. */
        if (!(op->gyre__priv.arg & MSG_WAITALL))
            return 1;
        return !(m->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
               (uint64_t)res == gyre__op_wanted_bytes(op);
    case GYRE__OP_READ:
    case GYRE__OP_READV:
    case GYRE__OP_WRITE:
    case GYRE__OP_WRITEV:
    case GYRE__OP_SEND:
    case GYRE__OP_SENDMSG:
    case GYRE__OP_COPY_FILE_RANGE:
        return (uint64_t)res == gyre__op_wanted_bytes(op);
    default:
        return 1;
    }
}

static int will_be_native(gyre_loop *loop, const gyre_op *op)
{
    unsigned opc = op->gyre__priv.opcode;

    if (loop->be->submit == NULL || (op->gyre__priv.sflags & GYRE__OPF_EMUL) ||
        !loop->be->supports(loop->be_state, opc))
        return 0;
    if (is_file_op(op) && !loop->files_native)
        return 0;
    if (opc == GYRE__OP_RECV_MULTI && !((gyre_bufpool *)op->gyre__priv.addr)->native)
        return 0;
    /* A write or writev at the current position goes to the kernel as a
     * send or sendmsg (MSG_NOSIGNAL) when the fd is a socket; to anything
     * else it takes the emulated pipe path, which guards against SIGPIPE
     * itself (a plain io_uring write to a broken pipe raises it, seen on
     * 6.18). */
    if ((opc == GYRE__OP_WRITE || opc == GYRE__OP_WRITEV) && op->gyre__priv.off == GYRE_OFF_CUR &&
        !gyre__fd_is_socket(loop, op->gyre__priv.fd))
        return 0;
    return 1;
}

/* Whether op may be linked to and from its neighbours in the kernel (the
 * backend then starts it only when the op before it ends). Not a TIMEOUT on
 * a kernel whose expired TIMEOUT breaks its link (before 5.16): gyre's rule
 * is that it holds, so the core carries it. Not a close: the
 * backend holds a close back until the ops on its fd have ended (backend.h),
 * which it cannot do to a request the kernel issues itself. Not a multishot,
 * whose deadline is the core's timer, started by start(). */
static int kernel_linkable(gyre_loop *loop, const gyre_op *op)
{
    unsigned opc = op->gyre__priv.opcode;

    if (opc == GYRE__OP_CLOSE || opc == GYRE__OP_RECV_MULTI || opc == GYRE__OP_ACCEPT_MULTI ||
        !will_be_native(loop, op))
        return 0;
    return opc != GYRE__OP_TIMEOUT || loop->be->supports(loop->be_state, GYRE__FEAT_TIMEOUT_LINKS);
}

/* --- stream order --- */

enum {
    SIDE_NONE = -1,
    SIDE_IN = 0,
    SIDE_OUT = 1
};

/* The side of its fd's byte stream a data op reads or writes, or SIDE_NONE
 * (file offsets, and everything that is not a data transfer). */
static int order_side(const gyre_op *op)
{
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_READV:
        return op->gyre__priv.off == GYRE_OFF_CUR ? SIDE_IN : SIDE_NONE;
    case GYRE__OP_RECV:
    case GYRE__OP_RECVMSG:
    case GYRE__OP_RECV_MULTI:
        return SIDE_IN;
    case GYRE__OP_WRITE:
    case GYRE__OP_WRITEV:
        return op->gyre__priv.off == GYRE_OFF_CUR ? SIDE_OUT : SIDE_NONE;
    case GYRE__OP_SEND:
    case GYRE__OP_SENDMSG:
        return SIDE_OUT;
    default:
        return SIDE_NONE;
    }
}

/* Whether op (of `side`) may start now, ignoring ops waiting on the fd: no op
 * owns its side (one in the backend, or a multishot recv, which owns it until
 * its last completion, also while it waits for buffers off the fd's queue),
 * and a native op also waits for the emulation's queue of its side (the other
 * way round, the emulated op simply queues behind). */
static int order_may_go(gyre_loop *loop, const gyre_op *op, int side)
{
    const struct gyre__fdent *e = &loop->fds[op->gyre__priv.fd];

    if (e->order_busy[side] != 0)
        return 0;
    return (side == SIDE_IN ? e->rq.head : e->wq.head) == NULL || !will_be_native(loop, op);
}

static int order_free(gyre_loop *loop, const gyre_op *op, int side)
{
    return loop->fds[op->gyre__priv.fd].order_wait[side].head == NULL &&
           order_may_go(loop, op, side);
}

/* op goes to the backend (now, or held for a link), or is a multishot recv:
 * it owns its side until it retires. */
static void order_take(gyre_loop *loop, gyre_op *op)
{
    int side = order_side(op);

    if (side != SIDE_NONE && !(OPF & GYRE__OPF_ORDER)) {
        OPF |= GYRE__OPF_ORDER;
        loop->fds[op->gyre__priv.fd].order_busy[side]++;
    }
}

/* --- completion --- */

static void chain_fail(gyre_loop *loop, gyre_op *op);
static void order_pump(gyre_loop *loop, const gyre_op *op);
static void order_wait(gyre_loop *loop, gyre_op *op, int side);
static void order_fail_fd(gyre_loop *loop, int fd, int64_t res);
static int ensure_pool(gyre_loop *loop);
static void hold(gyre_loop *loop, gyre_op *op);
static void release_hold(gyre_loop *loop, int linked_next);

static void deadline_cb(gyre_timer *t);

/* 1 if gyre closed op's fd after op was submitted. */
static int fd_closed_since(const gyre_loop *loop, const gyre_op *op)
{
    int fd = op->gyre__priv.fd;

    return fd >= 0 && (size_t)fd < loop->fds_cap &&
           loop->fds[fd].close_gen != op->gyre__priv.pending;
}

/* Ends op's time in flight: its deadline, its counts, and its link. */
static void retire(gyre_loop *loop, gyre_op *op, int64_t res)
{
    gyre_op *next = op->gyre__priv.link_next;

    if (OPF & GYRE__OPF_TIMER)
        gyre_timer_stop(&op->gyre__priv.timer);
    if (op->gyre__priv.opcode == GYRE__OP_RECV_MULTI)
        ((gyre_bufpool *)op->gyre__priv.addr)->users--;
    op->gyre__priv.state = GYRE__OS_IDLE;
    op->gyre__priv.link_next = NULL;
    if (OPF & GYRE__OPF_ORDER)
        loop->fds[op->gyre__priv.fd].order_busy[order_side(op)]--;
    OPF &= ~(GYRE__OPF_INFLIGHT | GYRE__OPF_CANCEL | GYRE__OPF_NATIVE | GYRE__OPF_TIMEDOUT |
             GYRE__OPF_POOL | GYRE__OPF_TIMER | GYRE__OPF_ORDER | GYRE__OPF_EMUL);
    /* One test for two rare cases: a close of gyre's ends (gyre_try_send()
     * stops saying -EBADF), or a send's pool buffer goes back, whatever the
     * result (the kernel or the emulation's syscall is done with it), once:
     * the flag goes with it. */
    if (OPF & (GYRE__OPF_CLOSING | GYRE__OPF_BUFPUT)) {
        if ((OPF & GYRE__OPF_CLOSING) && loop->fds[op->gyre__priv.fd].closing != 0)
            loop->fds[op->gyre__priv.fd].closing--;
        if (OPF & GYRE__OPF_BUFPUT)
            (void)gyre_bufpool_put(op->gyre__priv.addr3, op->gyre__priv.arg2);
        OPF &= ~(GYRE__OPF_CLOSING | GYRE__OPF_BUFPUT);
    }
    loop->ops_inflight--;
    loop->active--;
    loop->refs--;
    /* Before the successor: the ops waiting on the fd came first. */
    order_pump(loop, op);

    if (loop->chain == GYRE__CHAIN_PENDING && loop->chain_tail == op) {
        loop->chain = link_holds(op, res) ? GYRE__CHAIN_OK : GYRE__CHAIN_FAIL;
        loop->chain_tail = NULL;
    }
    if (next != NULL) {
        if (!link_holds(op, res) || (next->gyre__priv.sflags & GYRE__OPF_CANCEL))
            chain_fail(loop, next);
        else if (fd_closed_since(loop, next))
            gyre__op_ready(loop, next, -EBADF); /* its fd is gone, its number maybe reused */
        else
            gyre__op_start(loop, next);
    }
}

void gyre__op_complete(gyre_loop *loop, gyre_op *op, int64_t res, uint32_t flags, uint32_t buf_id)
{
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_ACCEPT:
    case GYRE__OP_ACCEPT_MULTI:
        if (res >= 0) {
            gyre__fd_learn(loop, (int)res, GYRE__FD_SOCKET);
            /* Emulated accepts add SOCK_NONBLOCK, io_uring's do not. A
             * close of the number's old file still to be reaped is done in
             * the kernel: it no longer makes this one closing. */
            if ((size_t)res < loop->fds_cap) {
                loop->fds[res].blocking = 0;
                loop->fds[res].closing = 0;
            }
        }
        break;
    case GYRE__OP_OPENAT:
        if (res >= 0) {
            /* Not surely a regular file (a FIFO opens too): learnt when
             * it matters. */
            gyre__fd_learn(loop, (int)res, GYRE__FD_UNKNOWN);
            if ((size_t)res < loop->fds_cap) {
                loop->fds[res].blocking = (op->gyre__priv.arg & O_NONBLOCK) ? 2 : 1;
                loop->fds[res].closing = 0;
            }
        }
        break;
    default:
        break;
    }
    op->result = res;
    op->flags = flags;
    op->buf_id = buf_id;
    if (!(flags & GYRE_OP_MORE))
        retire(loop, op, res);
    loop->stats.ops_completed++;
    op->cb(op);
}

void gyre__op_ready(gyre_loop *loop, gyre_op *op, int64_t res)
{
    op->gyre__priv.res2 = res;
    op->gyre__priv.state = GYRE__OS_READY;
    gyre__opq_push(&loop->ready, op);
}

/* op (waiting behind a link that failed) and everything linked behind it
 * complete with -ECANCELED, as io_uring fails the rest of a broken chain. */
static void chain_fail(gyre_loop *loop, gyre_op *op)
{
    gyre__op_ready(loop, op, -ECANCELED);
}

void gyre__ops_dispatch_ready(gyre_loop *loop)
{
    /* Only what was ready when dispatch began: ops completed by these
     * callbacks wait for the next iteration, so a callback that keeps
     * submitting ops that complete at once cannot starve the kernel wait. */
    struct gyre__opq batch = loop->ready;

    loop->ready.head = loop->ready.tail = NULL;
    while (batch.head != NULL) {
        gyre_op *op = batch.head;

        gyre__opq_remove(&batch, op);
        gyre__op_complete(loop, op, op->gyre__priv.res2, 0, 0);
    }
}

void gyre__loop_post(gyre_loop *loop, gyre_op *op)
{
    /* The op's state stays the pool's (running) until the loop thread takes
     * it off this list: fields the loop thread reads without a lock are
     * never written here. */
    pthread_mutex_lock(&loop->post_lock);
    gyre__opq_push(&loop->posted, op);
    /* The same wakeup protocol as gyre_async_send (async.c): the loop clears
     * async_armed before it drains, so either it sees this op or this write
     * wakes it. Done before the unlock: the loop drains under this lock, so
     * once it can see the op (and complete it, and maybe free the loop) this
     * thread no longer touches the loop (TSan: op_pool_slow_lane_blocked). */
    if (atomic_exchange(&loop->async_armed, 1) == 0)
        gyre__sys_eventfd_signal(loop->wake_fd);
    pthread_mutex_unlock(&loop->post_lock);
}

void gyre__ops_drain_posted(gyre_loop *loop)
{
    struct gyre__opq batch;

    pthread_mutex_lock(&loop->post_lock);
    batch = loop->posted;
    loop->posted.head = loop->posted.tail = NULL;
    pthread_mutex_unlock(&loop->post_lock);
    while (batch.head != NULL) {
        gyre_op *op = batch.head;

        gyre__opq_remove(&batch, op);
        OPF &= ~GYRE__OPF_POOL;
        gyre__op_complete(loop, op, op->gyre__priv.res2, 0, 0);
    }
}

/* Hands op to a pool lane. GYRE__OPF_POOL, which only the loop thread
 * touches, says "the pool has it" until the op comes back, so the loop
 * never reads the state a worker writes. */
int gyre__op_to_pool(gyre_loop *loop, gyre_op *op, int lane)
{
    int r = ensure_pool(loop);

    if (r == 0)
        r = gyre__pool_submit(loop->pool, op, lane);
    if (r == 0)
        OPF |= GYRE__OPF_POOL;
    return r;
}

/* --- routing --- */

static int ensure_pool(gyre_loop *loop)
{
    int r;

    if (loop->pool != NULL)
        return 0;
    r = gyre_pool_new(&loop->pool, NULL);
    if (r < 0)
        return r;
    loop->pool_owned = 1;
    gyre__pool_attach(loop->pool);
    return 0;
}

static void native_submit(gyre_loop *loop, gyre_op *op)
{
    int r;

    op->gyre__priv.state = GYRE__OS_NATIVE;
    OPF |= GYRE__OPF_NATIVE;
    order_take(loop, op);
    gyre__opq_push(&loop->native, op);
    r = loop->be->submit(loop->be_state, op);
    if (r < 0) {
        gyre__opq_remove(&loop->native, op);
        OPF &= ~GYRE__OPF_NATIVE;
        gyre__op_ready(loop, op, r);
    }
}

static void timeout_cb(gyre_timer *t)
{
    gyre_op *op = gyre__container_of(t, gyre_op, gyre__priv.timer);
    gyre_loop *loop = op->gyre__priv.loop;

    gyre__op_complete(loop, op, 0, 0, 0);
}

static void start_timer(gyre_loop *loop, gyre_op *op, gyre_timer_cb cb, uint64_t ns)
{
    gyre_timer *t = &op->gyre__priv.timer;

    /* The heap has room: gyre_submit reserved it. The timer is the op's own,
     * so it is not counted as a handle of its own. */
    gyre_timer_init(loop, t);
    t->base.gyre__priv.flags |= GYRE__HF_INTERNAL;
    gyre_timer_start(t, cb, ns, 0);
    op->gyre__priv.sflags |= GYRE__OPF_TIMER;
}

/* Asks the kernel to cancel every native op on fd; their completions come
 * before the close's, since the kernel handles submissions in order. A walk
 * of all native ops, needed only on kernels whose close cannot do it. */
static uint32_t cancel_native_on(gyre_loop *loop, int fd)
{
    uint32_t n = 0;

    for (gyre_op *o = loop->native.head; o != NULL; o = o->gyre__priv.next) {
        if (o->gyre__priv.fd != fd)
            continue;
        n++;
        if (!(o->gyre__priv.sflags & GYRE__OPF_CANCEL)) {
            o->gyre__priv.sflags |= GYRE__OPF_CANCEL;
            loop->be->cancel(loop->be_state, o);
        }
    }
    return n;
}

/* The kernel may post a cancelled op's completion after a close submitted
 * behind it, so a close that had to cancel waits (CLOSEWAIT, its count of
 * ops still to end in res2) until they have all been called back. */
static void closewait_release(gyre_loop *loop, int fd)
{
    gyre_op *op = loop->closewait.head;

    while (op != NULL) {
        gyre_op *next = op->gyre__priv.next;

        if (op->gyre__priv.fd == fd && --op->gyre__priv.res2 == 0) {
            gyre__opq_remove(&loop->closewait, op);
            gyre__op_start(loop, op);
        }
        op = next;
    }
}

static int is_multishot(const gyre_op *op)
{
    return op->gyre__priv.opcode == GYRE__OP_ACCEPT_MULTI ||
           op->gyre__priv.opcode == GYRE__OP_RECV_MULTI;
}

enum start_how {
    START_LATER,  /* behind a link, after a close's wait, a re-arm, ... */
    START_SUBMIT, /* being submitted: a native op with a link may be held */
    START_TURN    /* its turn on its fd came (order_pump) */
};

/* Routes op. */
static void start(gyre_loop *loop, gyre_op *op, enum start_how how)
{
    unsigned opc = op->gyre__priv.opcode;
    int side = order_side(op);
    int r;

    /* Whatever carries the close, ops the core still holds on the fd end
     * first (io_uring before 5.19 cannot cancel by fd, and the emulated ones
     * are the core's anyway), and the fd leaves the readiness registry while
     * its number still names this file. */
    if (opc == GYRE__OP_CLOSE && (size_t)op->gyre__priv.fd < loop->fds_cap) {
        struct gyre__fdent *e = &loop->fds[op->gyre__priv.fd];

        gyre__emul_fail_fd(loop, op->gyre__priv.fd, -ECANCELED);
        order_fail_fd(loop, op->gyre__priv.fd, -ECANCELED);
        e->close_gen++;
        if (!(OPF & GYRE__OPF_CLOSING)) {
            OPF |= GYRE__OPF_CLOSING;
            e->closing++;
        }
        if (loop->be->supports != NULL &&
            !loop->be->supports(loop->be_state, GYRE__FEAT_CLOSE_CANCELS_FD)) {
            uint32_t n = cancel_native_on(loop, op->gyre__priv.fd);

            if (n != 0) {
                op->gyre__priv.res2 = n;
                op->gyre__priv.state = GYRE__OS_CLOSEWAIT;
                gyre__opq_push(&loop->closewait, op);
                return;
            }
        }
        if (e->kmask != 0) {
            loop->be->ctl(loop->be_state, op->gyre__priv.fd, e->kmask, 0, 0);
            e->kmask = 0;
        }
        e->kind = GYRE__FD_UNKNOWN;
        e->blocking = 0;
    }
    /* An op that holds its side already (a re-armed multishot, a write
     * redone off the kernel) keeps its place. */
    if (side != SIDE_NONE && how != START_TURN && !(OPF & GYRE__OPF_ORDER) &&
        !order_free(loop, op, side)) {
        order_wait(loop, op, side);
        return;
    }
    if (is_file_op(op) && gyre__file_precheck(loop, op))
        return;
    if (will_be_native(loop, op)) {
        /* The kernel has no linked timeout for a multishot: the core's timer
         * cancels it instead. */
        if (op->gyre__priv.deadline_ns != 0 && is_multishot(op) && !(OPF & GYRE__OPF_TIMER))
            start_timer(loop, op, deadline_cb, op->gyre__priv.deadline_ns);
        if (OPF & GYRE__OPF_LINK) {
            if (how == START_SUBMIT && kernel_linkable(loop, op)) {
                hold(loop, op);
                return;
            }
            /* Started later (behind a link, say): what follows it was
             * settled by the submits since, in its link_next or in the
             * loop's chain state, so the core carries its link. Holding it
             * now would make it the head of a new chain and drop the
             * successor already waiting behind it. A close is never in a
             * kernel chain either (kernel_linkable()). */
            OPF &= ~GYRE__OPF_LINK;
            /* Being submitted but not linkable in the kernel (a close, a
             * TIMEOUT before 5.16): the core carries its link to the op
             * submitted next, as for the tail of a released hold. */
            if (how == START_SUBMIT) {
                loop->chain = GYRE__CHAIN_PENDING;
                loop->chain_tail = op;
            }
        }
        native_submit(loop, op);
        return;
    }
    if (op->gyre__priv.deadline_ns != 0 && !(OPF & GYRE__OPF_TIMER))
        start_timer(loop, op, deadline_cb, op->gyre__priv.deadline_ns);
    switch (opc) {
    case GYRE__OP_NOP:
        gyre__op_ready(loop, op, 0);
        return;
    case GYRE__OP_TIMEOUT:
        op->gyre__priv.state = GYRE__OS_TIMER;
        start_timer(loop, op, timeout_cb, op->gyre__priv.off);
        return;
    case GYRE__OP_WORK:
        r = gyre__op_to_pool(loop, op, (int)op->gyre__priv.arg);
        if (r < 0)
            gyre__op_ready(loop, op, r);
        return;
    default:
        break;
    }
    if (opc == GYRE__OP_RECV_MULTI)
        order_take(loop, op);
    if (is_file_op(op)) {
        if (loop->fe != NULL && gyre__engine_take(loop, op))
            return;
        loop->stats.file_pool++;
        r = gyre__op_to_pool(loop, op, GYRE_LANE_FAST);
        if (r < 0)
            gyre__op_ready(loop, op, r);
        return;
    }
    r = gyre__emul_queue(loop, op);
    if (r < 0)
        gyre__op_ready(loop, op, r);
}

void gyre__op_start(gyre_loop *loop, gyre_op *op)
{
    start(loop, op, START_LATER);
}

/* op waits on its fd behind earlier ops of its side. Its deadline runs from
 * now, as it would in the emulation's queue: the core's timer keeps it, also
 * once the op is in the kernel. */
static void order_wait(gyre_loop *loop, gyre_op *op, int side)
{
    op->gyre__priv.state = GYRE__OS_ORDERWAIT;
    gyre__opq_push(&loop->fds[op->gyre__priv.fd].order_wait[side], op);
    if (op->gyre__priv.deadline_ns != 0 && !(OPF & GYRE__OPF_TIMER))
        start_timer(loop, op, deadline_cb, op->gyre__priv.deadline_ns);
}

/* Starts, in order, the ops waiting on the fd and side of op (which just
 * ended or left) that may go now. */
static void order_pump(gyre_loop *loop, const gyre_op *op)
{
    int side = order_side(op);
    struct gyre__opq *q;

    if (side == SIDE_NONE)
        return;
    q = &loop->fds[op->gyre__priv.fd].order_wait[side];
    while (q->head != NULL && order_may_go(loop, q->head, side)) {
        gyre_op *next = q->head;

        gyre__opq_remove(q, next);
        start(loop, next, START_TURN);
    }
}

/* A close: the ops still waiting on fd never started; they end with res. */
static void order_fail_fd(gyre_loop *loop, int fd, int64_t res)
{
    for (int side = 0; side < 2; side++) {
        struct gyre__opq *q = &loop->fds[fd].order_wait[side];

        while (q->head != NULL) {
            gyre_op *op = q->head;

            gyre__opq_remove(q, op);
            gyre__op_ready(loop, op, res);
        }
    }
}

/* Native ops with a link are held, as a chain, until the op after the
 * last one is known: the whole chain then goes to the backend in one run of
 * submit() calls with nothing in between, which is what lets the backend link
 * each to the next. The last op's link is carried by the core instead when
 * what follows is not native (or nothing follows before the kernel wait). */
static void hold(gyre_loop *loop, gyre_op *op)
{
    op->gyre__priv.state = GYRE__OS_HOLD;
    order_take(loop, op);
    if (loop->link_hold == NULL)
        loop->link_hold = op;
    else
        loop->hold_tail->gyre__priv.link_next = op;
    loop->hold_tail = op;
}

/* Submits the held chain. With `linked_next` the tail keeps its link for the
 * op about to be submitted natively; otherwise the core carries it. */
static void release_hold(gyre_loop *loop, int linked_next)
{
    gyre_op *op = loop->link_hold, *tail = loop->hold_tail;
    int kchain = op != tail || linked_next;

    loop->link_hold = loop->hold_tail = NULL;
    if (!linked_next) {
        tail->gyre__priv.sflags &= ~GYRE__OPF_LINK;
        loop->chain = GYRE__CHAIN_PENDING;
        loop->chain_tail = tail;
    }
    while (op != NULL) {
        gyre_op *next = op == tail ? NULL : op->gyre__priv.link_next;

        op->gyre__priv.link_next = NULL;
        if (kchain)
            op->gyre__priv.sflags |= GYRE__OPF_KCHAIN;
        native_submit(loop, op);
        op = next;
    }
}

void gyre__ops_flush(gyre_loop *loop)
{
    if (loop->link_hold != NULL)
        release_hold(loop, 0);
}

/* --- submit and cancel --- */

/* Whether n iovecs hold more than INT32_MAX bytes in all (a result must
 * fit the int32 every backend reports): summed without overflow. */
static int iov_over_int32(const struct iovec *iov, uint32_t n)
{
    size_t total = 0;

    for (uint32_t i = 0; i < n; i++) {
        if (iov[i].iov_len > (size_t)INT32_MAX - total)
            return 1;
        total += iov[i].iov_len;
    }
    return 0;
}

/* Whether op may wait for readiness on its fd (the emulation's path for
 * sockets, pipes and reads or writes at the current position). */
static int may_wait_ready(const gyre_op *op)
{
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_WRITE:
    case GYRE__OP_READV:
    case GYRE__OP_WRITEV:
        return !is_file_op(op);
    case GYRE__OP_RECV:
    case GYRE__OP_SEND:
    case GYRE__OP_RECVMSG:
    case GYRE__OP_SENDMSG:
    case GYRE__OP_ACCEPT:
    case GYRE__OP_CONNECT:
    case GYRE__OP_POLL:
    case GYRE__OP_ACCEPT_MULTI:
    case GYRE__OP_RECV_MULTI:
        return 1;
    default:
        return 0;
    }
}

static int check(const gyre_loop *loop, const gyre_op *op)
{
    unsigned opc = op->gyre__priv.opcode;
    const gyre_bufpool *pool;

    if (opc == GYRE__OP_NONE || opc >= GYRE__OP_COUNT)
        return -EINVAL;
    switch (opc) {
    case GYRE__OP_NOP:
    case GYRE__OP_TIMEOUT:
        return opc == GYRE__OP_TIMEOUT && op->gyre__priv.deadline_ns != 0 ? -EINVAL : 0;
    case GYRE__OP_WORK:
        return op->gyre__priv.addr != NULL && op->gyre__priv.arg < GYRE_LANES ? 0 : -EINVAL;
    case GYRE__OP_OPENAT:
    case GYRE__OP_STATX:
    case GYRE__OP_UNLINKAT:
    case GYRE__OP_MKDIRAT:
    case GYRE__OP_RENAMEAT:
        if (op->gyre__priv.addr == NULL ||
            (opc == GYRE__OP_STATX && op->gyre__priv.addr2 == NULL) ||
            (opc == GYRE__OP_RENAMEAT &&
             (op->gyre__priv.addr2 == NULL ||
              ((int)op->gyre__priv.arg2 < 0 && (int)op->gyre__priv.arg2 != AT_FDCWD))))
            return -EINVAL;
        return op->gyre__priv.fd >= 0 || op->gyre__priv.fd == AT_FDCWD ? 0 : -EINVAL;
    case GYRE__OP_COPY_FILE_RANGE:
        if ((int)op->gyre__priv.arg2 < 0 || op->gyre__priv.len > INT32_MAX)
            return -EINVAL;
        break;
    default:
        break;
    }
    if (op->gyre__priv.fd < 0)
        return -EINVAL;
    switch (opc) {
    case GYRE__OP_READ:
    case GYRE__OP_WRITE:
    case GYRE__OP_RECV:
    case GYRE__OP_SEND:
    case GYRE__OP_GETDENTS:
        if (op->gyre__priv.len > INT32_MAX ||
            (op->gyre__priv.addr == NULL && op->gyre__priv.len != 0))
            return -EINVAL;
        break;
    case GYRE__OP_READV:
    case GYRE__OP_WRITEV:
        if (op->gyre__priv.len > IOV_MAX || (op->gyre__priv.addr == NULL && op->gyre__priv.len))
            return -EINVAL;
        if (iov_over_int32(op->gyre__priv.addr, op->gyre__priv.len))
            return -EINVAL;
        break;
    case GYRE__OP_RECVMSG:
    case GYRE__OP_SENDMSG:
    case GYRE__OP_CONNECT:
        if (op->gyre__priv.addr == NULL)
            return -EINVAL;
        break;
    case GYRE__OP_RECV_MULTI:
        pool = op->gyre__priv.addr;
        if (pool == NULL || pool->loop != loop)
            return -EINVAL;
        break;
    default:
        break;
    }
    /* select's fd_set ends at FD_SETSIZE: refuse at submit, as
     * gyre_watch_start() does, what would fail only when registered. */
    if (!(loop->be->caps & GYRE_CAP_ANY_FD) && op->gyre__priv.fd >= FD_SETSIZE &&
        may_wait_ready(op))
        return -EINVAL;
    if (op->gyre__priv.sflags & GYRE__OPF_BUFPUT) {
        pool = op->gyre__priv.addr3;
        if ((opc != GYRE__OP_SEND && opc != GYRE__OP_SENDMSG && opc != GYRE__OP_WRITE &&
             opc != GYRE__OP_WRITEV) ||
            pool == NULL || pool->loop != loop || op->gyre__priv.arg2 >= pool->count ||
            !pool->out[op->gyre__priv.arg2])
            return -EINVAL;
    }
    /* A multishot never ends on its own, so nothing could follow it. */
    if ((opc == GYRE__OP_ACCEPT_MULTI || opc == GYRE__OP_RECV_MULTI) &&
        (op->gyre__priv.sflags & GYRE__OPF_LINK))
        return -EINVAL;
    return 0;
}

GYRE_API int gyre_submit(gyre_loop *loop, gyre_op *op, gyre_op_cb cb)
{
    int r;

    if (loop == NULL || op == NULL || cb == NULL)
        return -EINVAL;
    if (OPF & GYRE__OPF_INFLIGHT)
        return -EBUSY;
    r = check(loop, op);
    if (r < 0)
        return r;
    /* Reserve now what starting may need, so that nothing after this point
     * can fail for lack of memory: a timer slot, the fd's table entry. */
    if (op->gyre__priv.opcode == GYRE__OP_TIMEOUT || op->gyre__priv.deadline_ns != 0) {
        r = gyre__grow(&loop->heap, &loop->heap_cap, loop->heap_len + 1, sizeof *loop->heap);
        if (r < 0)
            return r;
    }
    if (op->gyre__priv.fd >= 0) {
        r = gyre__fd_reserve(loop, op->gyre__priv.fd);
        if (r < 0)
            return r;
        /* An op's own field for this (ops use `pending` for nothing else). */
        op->gyre__priv.pending = loop->fds[op->gyre__priv.fd].close_gen;
    }

    op->cb = cb;
    op->result = 0;
    op->flags = 0;
    op->gyre__priv.loop = loop;
    op->gyre__priv.link_next = NULL;
    OPF = (OPF & (GYRE__OPF_LINK | GYRE__OPF_BUFPUT)) | GYRE__OPF_INFLIGHT;
    /* A linked write moves every byte or breaks the link (gyre.h's link
     * table): it is retried after a partial transfer, as MSG_WAITALL makes
     * io_uring retry a send. off2 counts what an emulated retry moved so far
     * (data transfers use it for nothing else). */
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_WRITE:
    case GYRE__OP_WRITEV:
    case GYRE__OP_SEND:
    case GYRE__OP_SENDMSG:
        if ((OPF & GYRE__OPF_LINK) && order_side(op) == SIDE_OUT)
            OPF |= GYRE__OPF_WHOLE;
        /* fall through */
    case GYRE__OP_READ:
    case GYRE__OP_READV:
    case GYRE__OP_RECV:
    case GYRE__OP_RECVMSG:
        op->gyre__priv.off2 = 0;
        break;
    default:
        break;
    }
    if (op->gyre__priv.opcode == GYRE__OP_RECV_MULTI)
        ((gyre_bufpool *)op->gyre__priv.addr)->users++;
    loop->ops_inflight++;
    loop->active++;
    loop->refs++;

    /* Links. A held native predecessor goes to the kernel now, linked there
     * if this op goes native too. */
    if (loop->link_hold != NULL) {
        int side = order_side(op);

        /* Into the kernel's chain only if nothing on its fd must go first
         * (the kernel would start it when the chain says, not when they
         * end). */
        if (kernel_linkable(loop, op) && (side == SIDE_NONE || order_free(loop, op, side))) {
            if (OPF & GYRE__OPF_LINK) {
                hold(loop, op);
            } else {
                release_hold(loop, 1);
                OPF |= GYRE__OPF_KCHAIN;
                native_submit(loop, op);
            }
            return 0;
        }
        release_hold(loop, 0);
    }
    switch (loop->chain) {
    case GYRE__CHAIN_PENDING:
        loop->chain_tail->gyre__priv.link_next = op;
        op->gyre__priv.state = GYRE__OS_LINKWAIT;
        loop->chain = GYRE__CHAIN_NONE;
        loop->chain_tail = NULL;
        break;
    case GYRE__CHAIN_FAIL:
        loop->chain = GYRE__CHAIN_NONE;
        chain_fail(loop, op);
        break;
    default:
        loop->chain = GYRE__CHAIN_NONE;
        start(loop, op, START_SUBMIT);
        break;
    }
    /* An op that links to what follows opens a chain, unless it is held
     * (then the next submit decides) or already finished. */
    if ((OPF & GYRE__OPF_LINK) && op->gyre__priv.state != GYRE__OS_HOLD) {
        if (op->gyre__priv.state == GYRE__OS_READY) {
            loop->chain = link_holds(op, op->gyre__priv.res2) ? GYRE__CHAIN_OK : GYRE__CHAIN_FAIL;
        } else {
            loop->chain = GYRE__CHAIN_PENDING;
            loop->chain_tail = op;
        }
    }
    return 0;
}

/* Takes op off wherever it waits and completes it with res, if it has not
 * reached a point of no return; returns 0 either way (the op will complete
 * once, with res or its real result). */
static void cancel_with(gyre_loop *loop, gyre_op *op, int64_t res)
{
    /* In the pool, only the pool (under its lock) knows whether a worker has
     * taken the op: it unlinks it if not, and then it is ours to complete. */
    if (OPF & GYRE__OPF_POOL) {
        if (gyre__pool_cancel(loop->pool, op) == 0) {
            OPF &= ~GYRE__OPF_POOL;
            gyre__op_ready(loop, op, res);
        }
        return;
    }
    switch (op->gyre__priv.state) {
    case GYRE__OS_FDQ:
        gyre__emul_cancel(loop, op);
        gyre__op_ready(loop, op, res);
        break;
    case GYRE__OS_TIMER:
        gyre_timer_stop(&op->gyre__priv.timer);
        gyre__op_ready(loop, op, res);
        break;
    case GYRE__OS_BUFWAIT:
        gyre__opq_remove(&((gyre_bufpool *)op->gyre__priv.addr)->waiters, op);
        gyre__op_ready(loop, op, res);
        break;
    case GYRE__OS_ORDERWAIT:
        gyre__opq_remove(&loop->fds[op->gyre__priv.fd].order_wait[order_side(op)], op);
        gyre__op_ready(loop, op, res);
        /* What waited behind it may be free to go (an emulated op behind a
         * native one that waited for the emulation's queue). */
        order_pump(loop, op);
        break;
    case GYRE__OS_HOLD:
        /* Let the chain go to the kernel and cancel it there, so its links
         * fail the way the kernel fails them. */
        release_hold(loop, 0);
        loop->be->cancel(loop->be_state, op);
        break;
    case GYRE__OS_NATIVE:
        loop->be->cancel(loop->be_state, op);
        break;
    case GYRE__OS_ENGINE:
        gyre__engine_cancel(loop, op, res);
        break;
    default:
        /* READY, POSTED, POOL_RUNNING: its real result stands. LINKWAIT and
         * REARM: the CANCEL flag decides when it would next start. */
        break;
    }
}

static void deadline_cb(gyre_timer *t)
{
    gyre_op *op = gyre__container_of(t, gyre_op, gyre__priv.timer);

    OPF |= GYRE__OPF_TIMEDOUT;
    cancel_with(op->gyre__priv.loop, op, -ETIME);
}

GYRE_API int gyre_cancel(gyre_loop *loop, gyre_op *op)
{
    if (loop == NULL || op == NULL)
        return -EINVAL;
    if (!(OPF & GYRE__OPF_INFLIGHT) || op->gyre__priv.loop != loop)
        return -ENOENT;
    if (OPF & GYRE__OPF_CANCEL)
        return -EALREADY;
    OPF |= GYRE__OPF_CANCEL;
    cancel_with(loop, op, -ECANCELED);
    return 0;
}

/* --- native completions --- */

/* Native redos of an op after an -ECANCELED nobody asked for; the next one
 * takes the op off the kernel. */
#define REDO_NATIVE_MAX 2u

/* Whether op's -ECANCELED is one nobody asked for. io_uring's io-wq cancels
 * work itself: when it cannot create a worker thread and the queue has none
 * left, it completes everything pending there with -ECANCELED without having
 * issued it (io_uring/io-wq.c: io_wq_enqueue() for the first worker,
 * create_worker_cont() once io_should_retry_thread() gives up; since 5.12,
 * io-wq's own threads). A signal storm does that: copy_process() answers
 * -ERESTARTNOINTR while a signal is pending, and the worker is tried only
 * WORKER_INIT_LIMIT (3) times (rel_b3_eintr_storm: a SHUTDOWN, which always
 * runs in io-wq, 1 run in 100 on 6.18); so does RLIMIT_NPROC. Such an op
 * did nothing: one that had moved bytes before io-wq got it reports them
 * instead (io_rw_fail(), io_sendrecv_fail()). The cancels a program asks
 * for still say -ECANCELED: gyre_cancel, a deadline, a close of the fd (its
 * cancel by fd; a close itself may be redone), and a broken link, which
 * gyre cannot tell from io-wq's in a chain the kernel links. Multishot ops
 * are left alone: their re-arm has its own rules. */
static int unasked_cancel(const gyre_loop *loop, const gyre_op *op, int64_t res)
{
    if (res != -ECANCELED || is_multishot(op) ||
        (OPF & (GYRE__OPF_CANCEL | GYRE__OPF_TIMEDOUT | GYRE__OPF_KCHAIN)))
        return 0;
    return op->gyre__priv.opcode == GYRE__OP_CLOSE || !fd_closed_since(loop, op);
}

/* Starts op again after an unasked -ECANCELED: in the kernel twice, then off
 * it (a file op to the file engine or the pool, the rest by readiness), so
 * a kernel that keeps failing io-wq cannot keep the op from ending. Its
 * place on its fd stays held (ORDER), as for the -EAGAIN redo below. */
static void redo_unasked(gyre_loop *loop, gyre_op *op)
{
    loop->stats.ops_redone++;
    if ((OPF & GYRE__OPF_REDO_MASK) < REDO_NATIVE_MAX * GYRE__OPF_REDO_ONE)
        OPF += GYRE__OPF_REDO_ONE;
    else
        OPF |= GYRE__OPF_EMUL;
    gyre__op_start(loop, op);
}

void gyre__op_native_event(gyre_loop *loop, const gyre__event *ev)
{
    gyre_op *op = (gyre_op *)(uintptr_t)ev->cookie;
    unsigned opc = op->gyre__priv.opcode;
    uint32_t flags = ev->events & (GYRE_OP_MORE | GYRE_OP_BUFFER);
    int64_t res = ev->res;
    int multishot = opc == GYRE__OP_ACCEPT_MULTI || opc == GYRE__OP_RECV_MULTI;

    if (flags & GYRE_OP_BUFFER)
        gyre__bufpool_mark_out(op->gyre__priv.addr, ev->buf_id);
    if (flags & GYRE_OP_MORE) {
        gyre__op_complete(loop, op, res, flags, ev->buf_id);
        return;
    }
    gyre__opq_remove(&loop->native, op);
    OPF &= ~GYRE__OPF_NATIVE;
    /* A multishot's deadline is the core's timer, which cancels it. */
    if ((OPF & GYRE__OPF_TIMEDOUT) && res == -ECANCELED)
        res = -ETIME;
    if (multishot) {
        /* Asked to end (gyre_cancel, a close, the deadline's timer): an
         * end the kernel chose first is reported as the one asked for. */
        int64_t asked = (OPF & GYRE__OPF_TIMEDOUT) ? -ETIME
                        : (OPF & GYRE__OPF_CANCEL) ? -ECANCELED
                                                   : 0;

        /* Out of buffers: wait for one to come back, then re-arm; the
         * callback never sees -ENOBUFS, also not when the op was asked to
         * end and the kernel ran dry before the cancel reached it (or a
         * callback earlier in this batch asked): a stream that stopped and
         * restarted reading took that -ENOBUFS for its socket's error. */
        if (res == -ENOBUFS && opc == GYRE__OP_RECV_MULTI && asked != 0) {
            res = asked;
        } else if (res == -ENOBUFS && opc == GYRE__OP_RECV_MULTI) {
            gyre_bufpool *p = op->gyre__priv.addr;

            /* The buffers' own completions come in the same batch, just
             * before this one; if their callbacks already gave buffers back,
             * no later put will wake a waiter: re-arm now. */
            if (p->nout < p->count)
                gyre__op_start(loop, op);
            else
                gyre__bufpool_wait(p, op);
            return;
        }
        /* The kernel ended the multishot on its own (a full CQ, say) after a
         * good result: deliver it as one of many and re-arm once. */
        if (!(OPF & GYRE__OPF_CANCEL) && (res > 0 || (opc == GYRE__OP_ACCEPT_MULTI && res >= 0))) {
            op->gyre__priv.state = GYRE__OS_REARM;
            gyre__op_complete(loop, op, res, flags | GYRE_OP_MORE, ev->buf_id);
            if (OPF & GYRE__OPF_CANCEL)
                gyre__op_ready(loop, op, -ECANCELED);
            else
                native_submit(loop, op);
            return;
        }
    }
    if (unasked_cancel(loop, op, res)) {
        redo_unasked(loop, op);
        return;
    }
    /* -EAGAIN must not reach a callback (rule 4), and io_uring lets one
     * through: a sendmsg (or recvmsg) on a non-blocking socket that io_uring
     * gave to io-wq, which runs it without MSG_DONTWAIT but honours
     * O_NONBLOCK, answers -EAGAIN in the CQE. It goes there after its poll
     * woke for something other than room: io_uring always wakes a poll for
     * RDHUP, so a socket whose read side is shut down wakes a send at once,
     * again and again (6.18). The op did nothing; the emulation redoes it,
     * waiting for readiness, or it ends here if it was to end anyway. */
    if (res == -EAGAIN && !multishot) {
        if (!(OPF & (GYRE__OPF_CANCEL | GYRE__OPF_TIMEDOUT))) {
            OPF |= GYRE__OPF_EMUL;
            gyre__op_start(loop, op);
            return;
        }
        res = (OPF & GYRE__OPF_TIMEDOUT) ? -ETIME : -ECANCELED;
    }
    /* A write sent as a send (a writev as a sendmsg) to something that is
     * not a socket: redo it by the emulated pipe path, which guards against
     * SIGPIPE. */
    if (res == -ENOTSOCK && (opc == GYRE__OP_WRITE || opc == GYRE__OP_WRITEV) &&
        op->gyre__priv.off == GYRE_OFF_CUR) {
        gyre__fd_learn(loop, op->gyre__priv.fd, GYRE__FD_OTHER);
        gyre__op_start(loop, op);
        return;
    }
    {
        int fd = op->gyre__priv.fd;

        gyre__op_complete(loop, op, res, flags, ev->buf_id);
        if (loop->closewait.head != NULL)
            closewait_release(loop, fd);
    }
}
