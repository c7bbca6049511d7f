/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* emul.c: operations emulated by readiness, for select, poll and epoll (and
 * for opcodes io_uring lacks), plus the blocking executor pool threads use.
 *
 * An emulated op waits on its fd's queue in the fd table: reads (and
 * accepts, multishot recvs) on rq, writes (and connects) on wq, one-shot
 * polls on pq. Each queue starts its ops in submission order. When the
 * kernel says the fd is ready, the head of each queue tries its non-blocking
 * syscall; EAGAIN leaves it waiting (EAGAIN and EINTR never reach a callback).
 *
 * No syscall is spent asking "ready yet?": a read waits for readiness before
 * its first try, so a ping-pong server pays exactly one recv per message. A
 * write tries at once when nothing is queued before it (sockets are nearly
 * always writable), and waits for readiness only after EAGAIN. After a short
 * transfer the queue stops trying until the next readiness: the kernel buffer
 * is drained (or full), so another try would only say EAGAIN.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/loop.h"
#include "core/pool.h"
#include "sys/sys.h"

/* Accepts taken per readiness event by one multishot accept, so one busy
 * listener cannot hold the loop for long. */
#define ACCEPT_BURST 64

enum side {
    SIDE_READ,
    SIDE_WRITE,
    SIDE_POLL
};

static enum side side_of(const gyre_op *op)
{
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_WRITE:
    case GYRE__OP_WRITEV:
    case GYRE__OP_SEND:
    case GYRE__OP_SENDMSG:
    case GYRE__OP_CONNECT:
        return SIDE_WRITE;
    case GYRE__OP_POLL:
        return SIDE_POLL;
    default:
        return SIDE_READ;
    }
}

static struct gyre__opq *queue_of(struct gyre__fdent *e, const gyre_op *op)
{
    switch (side_of(op)) {
    case SIDE_WRITE:
        return &e->wq;
    case SIDE_POLL:
        return &e->pq;
    default:
        return &e->rq;
    }
}

/* A write at the current position: a send (MSG_NOSIGNAL) to a socket, the
 * SIGPIPE-guarded pipe path for anything else. */
static ssize_t write_cur(gyre_loop *loop, int fd, const struct iovec *iov, int cnt)
{
    ssize_t n;

    if (gyre__fd_is_socket(loop, fd)) {
        struct msghdr msg = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)cnt};

        n = cnt == 1 ? gyre__sys_send(fd, iov[0].iov_base, iov[0].iov_len, 0)
                     : gyre__sys_sendmsg(fd, &msg, 0);
        if (n != -ENOTSOCK)
            return n;
        gyre__fd_learn(loop, fd, GYRE__FD_OTHER);
    }
    return gyre__sys_writev_nosigpipe(fd, iov, cnt);
}

/* iovecs one try of a retried transfer passes: a longer rest just takes
 * more tries. */
#define WHOLE_IOV 64

/* The part of (iov, n) after `skip` bytes, at most WHOLE_IOV entries. */
static int iov_rest(const struct iovec *iov, size_t n, uint64_t skip, struct iovec *out)
{
    size_t i = 0;
    int k = 0;

    while (i < n && skip >= iov[i].iov_len) {
        skip -= iov[i].iov_len;
        i++;
    }
    for (; i < n && k < WHOLE_IOV; i++, k++) {
        out[k].iov_base = (char *)iov[i].iov_base + skip;
        out[k].iov_len = iov[i].iov_len - skip;
        skip = 0;
    }
    return k;
}

/* A transfer that must be whole (gyre__op_whole(), gyre.h's link table):
 * one non-blocking try of what is left, with what moved so far in off2.
 * Returns the total once whole, at end of stream, for a datagram, or on an
 * error after some bytes moved (as io_uring's MSG_WAITALL retry reports,
 * 5.19+); -EAGAIN to wait for readiness again; -errno if nothing moved. A
 * recv goes through recvmsg to see MSG_TRUNC. Ancillary data goes with the
 * first try only, so fds are neither sent nor received twice. */
static int64_t try_whole(gyre_loop *loop, gyre_op *op)
{
    unsigned opc = op->gyre__priv.opcode;
    struct msghdr *um = op->gyre__priv.addr;
    struct iovec one = {.iov_base = op->gyre__priv.addr, .iov_len = op->gyre__priv.len};
    const struct iovec *iov = &one;
    size_t n = 1;
    struct iovec rest[WHOLE_IOV];
    struct msghdr m;
    uint64_t done = op->gyre__priv.off2;
    int fd = op->gyre__priv.fd, flags = (int)op->gyre__priv.arg, t;
    int64_t r;

    memset(&m, 0, sizeof m);
    if (opc == GYRE__OP_WRITEV) {
        iov = op->gyre__priv.addr;
        n = op->gyre__priv.len;
    } else if (opc == GYRE__OP_RECVMSG || opc == GYRE__OP_SENDMSG) {
        m = *um;
        iov = um->msg_iov;
        n = um->msg_iovlen;
        if (done != 0) {
            m.msg_control = NULL;
            m.msg_controllen = 0;
        }
    }
    m.msg_iov = rest;
    m.msg_iovlen = (size_t)iov_rest(iov, n, done, rest);
    do {
        switch (opc) {
        case GYRE__OP_WRITE:
        case GYRE__OP_WRITEV:
            r = write_cur(loop, fd, rest, (int)m.msg_iovlen);
            break;
        case GYRE__OP_SEND:
        case GYRE__OP_SENDMSG:
            r = gyre__sys_sendmsg(fd, &m, flags);
            break;
        default: /* RECV, RECVMSG */
            r = gyre__sys_recvmsg(fd, &m, flags);
            break;
        }
    } while (r == -EINTR);
    if (r == -EAGAIN)
        return r;
    if (opc == GYRE__OP_RECVMSG) {
        um->msg_flags = m.msg_flags;
        if (done == 0) {
            um->msg_namelen = m.msg_namelen;
            um->msg_controllen = m.msg_controllen;
        }
    }
    if (r < 0)
        return done != 0 ? (int64_t)done : r;
    if (opc == GYRE__OP_RECV && (m.msg_flags & MSG_TRUNC))
        op->gyre__priv.sflags |= GYRE__OPF_TRUNC;
    done += (uint64_t)r;
    op->gyre__priv.off2 = done;
    if (done == gyre__op_wanted_bytes(op) || r == 0)
        return (int64_t)done;
    if (opc == GYRE__OP_RECV || opc == GYRE__OP_RECVMSG) {
        /* The kernel retries a stream only: a datagram is one message. */
        t = gyre__sys_socket_type(fd);
        if (t != SOCK_STREAM && t != SOCK_SEQPACKET)
            return (int64_t)done;
    }
    return -EAGAIN;
}

/* One non-blocking attempt; -EAGAIN means "wait for readiness again". */
static int64_t try_io(gyre_loop *loop, gyre_op *op)
{
    int fd = op->gyre__priv.fd;
    struct iovec one = {.iov_base = op->gyre__priv.addr, .iov_len = op->gyre__priv.len};
    int64_t r;

    if (gyre__op_whole(op))
        return try_whole(loop, op);
    do {
        switch (op->gyre__priv.opcode) {
        case GYRE__OP_READ:
            r = gyre__sys_read(fd, op->gyre__priv.addr, op->gyre__priv.len);
            break;
        case GYRE__OP_READV:
            r = gyre__sys_readv(fd, op->gyre__priv.addr, (int)op->gyre__priv.len);
            break;
        case GYRE__OP_WRITE:
            r = write_cur(loop, fd, &one, 1);
            break;
        case GYRE__OP_WRITEV:
            r = write_cur(loop, fd, op->gyre__priv.addr, (int)op->gyre__priv.len);
            break;
        case GYRE__OP_RECV:
            r = gyre__sys_recv(fd, op->gyre__priv.addr, op->gyre__priv.len,
                               (int)op->gyre__priv.arg);
            break;
        case GYRE__OP_SEND:
            r = gyre__sys_send(fd, op->gyre__priv.addr, op->gyre__priv.len,
                               (int)op->gyre__priv.arg);
            break;
        case GYRE__OP_RECVMSG:
            r = gyre__sys_recvmsg(fd, op->gyre__priv.addr, (int)op->gyre__priv.arg);
            break;
        case GYRE__OP_SENDMSG:
            r = gyre__sys_sendmsg(fd, op->gyre__priv.addr, (int)op->gyre__priv.arg);
            break;
        case GYRE__OP_ACCEPT:
            r = gyre__sys_accept(fd, op->gyre__priv.addr, op->gyre__priv.addr2,
                                 (int)op->gyre__priv.arg);
            break;
        case GYRE__OP_ACCEPT_MULTI:
            r = gyre__sys_accept(fd, NULL, NULL, (int)op->gyre__priv.arg);
            break;
        case GYRE__OP_CONNECT:
            /* Readiness after EINPROGRESS: the outcome is in SO_ERROR. */
            r = gyre__sys_socket_error(fd);
            break;
        default:
            r = -EINVAL;
            break;
        }
    } while (r == -EINTR);
    return r;
}

/* Whether a transfer that moved r bytes probably emptied (or filled) the
 * kernel's buffer, so that the next op on the queue would only get EAGAIN. */
static int drained(const gyre_op *op, int64_t r)
{
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_WRITE:
    case GYRE__OP_RECV:
    case GYRE__OP_SEND:
        return r < (int64_t)op->gyre__priv.len;
    default:
        return 0;
    }
}

static void enqueue(gyre_loop *loop, gyre_op *op)
{
    op->gyre__priv.state = GYRE__OS_FDQ;
    gyre__opq_push(queue_of(&loop->fds[op->gyre__priv.fd], op), op);
    gyre__fd_dirty(loop, op->gyre__priv.fd);
}

static int iov_empty(const struct iovec *iov, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (iov[i].iov_len != 0)
            return 0;
    }
    return 1;
}

/* A read the kernel answers without waiting for data: nothing to read
 * into, or a msghdr it refuses (more than IOV_MAX entries). Waiting for
 * readiness first would leave it pending on an idle fd, where io_uring
 * answers at once; it is tried at submit like a write. */
static int answered_without_data(const gyre_op *op)
{
    const struct msghdr *m;

    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
        return op->gyre__priv.len == 0;
    case GYRE__OP_READV:
        return iov_empty(op->gyre__priv.addr, op->gyre__priv.len);
    case GYRE__OP_RECVMSG:
        m = op->gyre__priv.addr;
        return m->msg_iovlen > IOV_MAX || iov_empty(m->msg_iov, m->msg_iovlen);
    default:
        return 0;
    }
}

int gyre__emul_queue(gyre_loop *loop, gyre_op *op)
{
    int fd = op->gyre__priv.fd;
    struct gyre__fdent *e = &loop->fds[fd];
    int64_t r;

    switch (op->gyre__priv.opcode) {
    case GYRE__OP_CLOSE:
        /* gyre__op_start already ended the ops waiting on fd. */
        gyre__op_ready(loop, op, gyre__sys_close(fd));
        return 0;
    case GYRE__OP_SHUTDOWN:
        gyre__op_ready(loop, op, gyre__sys_shutdown(fd, (int)op->gyre__priv.arg));
        return 0;
    case GYRE__OP_CONNECT:
        r = gyre__sys_connect(fd, op->gyre__priv.addr, (socklen_t)op->gyre__priv.len);
        if (r == -EINPROGRESS || r == -EINTR)
            enqueue(loop, op);
        else
            gyre__op_ready(loop, op, r);
        return 0;
    case GYRE__OP_RECV_MULTI:
    case GYRE__OP_ACCEPT_MULTI:
        enqueue(loop, op);
        return 0;
    default:
        break;
    }
    if ((side_of(op) == SIDE_WRITE && e->wq.head == NULL) ||
        (side_of(op) == SIDE_READ && e->rq.head == NULL && answered_without_data(op))) {
        r = try_io(loop, op);
        if (r != -EAGAIN) {
            gyre__op_ready(loop, op, r);
            return 0;
        }
    }
    enqueue(loop, op);
    return 0;
}

void gyre__emul_cancel(gyre_loop *loop, gyre_op *op)
{
    gyre__opq_remove(queue_of(&loop->fds[op->gyre__priv.fd], op), op);
    gyre__fd_dirty(loop, op->gyre__priv.fd);
}

/* Takes op off its queue and delivers a completion; for the final one the op
 * leaves the fd, so its registration is recomputed at the next flush. */
static void finish(gyre_loop *loop, gyre_op *op, int64_t r, uint32_t flags, uint32_t buf_id)
{
    int fd = op->gyre__priv.fd;

    if (!(flags & GYRE_OP_MORE)) {
        gyre__opq_remove(queue_of(&loop->fds[fd], op), op);
        gyre__fd_dirty(loop, fd);
    }
    gyre__op_complete(loop, op, r, flags, buf_id);
}

/* A multishot recv's turn: one recv into a pool buffer. Returns 1 to go on
 * with the queue, 0 to stop until the next readiness. */
static int recv_multi(gyre_loop *loop, gyre_op *op)
{
    gyre_bufpool *pool = op->gyre__priv.addr;
    int fd = op->gyre__priv.fd;
    int id = gyre__bufpool_take(pool);
    int64_t r;

    if (id < 0) {
        /* Out of buffers: off the fd (no busy readiness) until one returns. */
        gyre__opq_remove(&loop->fds[fd].rq, op);
        gyre__fd_dirty(loop, fd);
        gyre__bufpool_wait(pool, op);
        return 1;
    }
    do
        r = gyre__sys_recv(fd, pool->mem + (size_t)id * pool->size, pool->size, 0);
    while (r == -EINTR);
    if (r == -EAGAIN) {
        gyre__bufpool_untake(pool, (uint32_t)id);
        return 0;
    }
    if (r <= 0) {
        gyre__bufpool_untake(pool, (uint32_t)id);
        finish(loop, op, r, 0, 0);
        return 0;
    }
    finish(loop, op, r, GYRE_OP_MORE | GYRE_OP_BUFFER, (uint32_t)id);
    return r == (int64_t)pool->size;
}

/* Queues are drained only as far as the op that was last when readiness
 * came: an op its callbacks submit waits for the next readiness, since the
 * data that woke us was just consumed (trying it now is the EAGAIN the
 * emulation exists to avoid). Only compared, never dereferenced. */
static void run_reads(gyre_loop *loop, int fd)
{
    const gyre_op *last = loop->fds[fd].rq.tail;
    int accepts = 0;
    gyre_op *op;

    while ((op = loop->fds[fd].rq.head) != NULL) {
        int was_last = op == last;

        unsigned opc = op->gyre__priv.opcode;
        int64_t r;
        int stop;

        if (opc == GYRE__OP_RECV_MULTI) {
            if (!recv_multi(loop, op))
                return;
            continue;
        }
        r = try_io(loop, op);
        if (r == -EAGAIN)
            return;
        if (opc == GYRE__OP_ACCEPT_MULTI) {
            /* Each connection is one of many; an error ends the multishot,
             * as the kernel's does. On a blocking listener a second accept
             * could block the loop: one per readiness there. */
            stop = r < 0 || ++accepts == ACCEPT_BURST || gyre__fd_is_blocking(loop, fd);
            finish(loop, op, r, r >= 0 ? GYRE_OP_MORE : 0, 0);
            if (stop)
                return;
            continue;
        }
        /* Decide before the callback, which may free or reuse op. A
         * blocking fd (a pipe the user did not make non-blocking) gets one
         * try per readiness: a second could block the loop. Sockets are
         * read with MSG_DONTWAIT and need no such care. */
        stop = drained(op, r) || was_last ||
               ((opc == GYRE__OP_READ || opc == GYRE__OP_READV) && gyre__fd_is_blocking(loop, fd));
        finish(loop, op, r, 0, 0);
        if (stop)
            return;
    }
}

static void run_writes(gyre_loop *loop, int fd)
{
    const gyre_op *last = loop->fds[fd].wq.tail;
    gyre_op *op;

    while ((op = loop->fds[fd].wq.head) != NULL) {
        int64_t r = try_io(loop, op);
        int stop;

        if (r == -EAGAIN)
            return;
        stop = drained(op, r) || op == last;
        finish(loop, op, r, 0, 0);
        if (stop)
            return;
    }
}

static void run_polls(gyre_loop *loop, int fd, uint32_t events)
{
    gyre_op *op = loop->fds[fd].pq.head;

    /* Each callback may add or cancel polls on this fd: walk by taking the
     * next op only from the queue as it is after the callback. */
    while (op != NULL) {
        uint32_t got = events & (op->gyre__priv.arg | GYRE_ERR | GYRE_HUP);
        gyre_op *next = op->gyre__priv.next;

        if (got != 0) {
            finish(loop, op, got, 0, 0);
            next = loop->fds[fd].pq.head;
        }
        op = next;
    }
}

void gyre__emul_ready(gyre_loop *loop, int fd, uint32_t events)
{
    if (loop->fds[fd].rq.head != NULL && (events & (GYRE_IN | GYRE_ERR | GYRE_HUP | GYRE_RDHUP)))
        run_reads(loop, fd);
    if (loop->fds[fd].wq.head != NULL && (events & (GYRE_OUT | GYRE_ERR | GYRE_HUP)))
        run_writes(loop, fd);
    if (loop->fds[fd].pq.head != NULL)
        run_polls(loop, fd, events);
}

void gyre__emul_fail_fd(gyre_loop *loop, int fd, int64_t res)
{
    struct gyre__opq *qs[3];

    qs[0] = &loop->fds[fd].rq;
    qs[1] = &loop->fds[fd].wq;
    qs[2] = &loop->fds[fd].pq;
    for (int i = 0; i < 3; i++) {
        while (qs[i]->head != NULL) {
            gyre_op *op = qs[i]->head;
            unsigned opc = op->gyre__priv.opcode;

            gyre__opq_remove(qs[i], op);
            if (res == -EPERM && opc == GYRE__OP_POLL) {
                /* A regular file is always ready, as poll(2) says. */
                gyre__op_ready(loop, op, op->gyre__priv.arg & (GYRE_IN | GYRE_OUT));
            } else if (res == -EPERM && (opc == GYRE__OP_READ || opc == GYRE__OP_READV ||
                                         opc == GYRE__OP_WRITE || opc == GYRE__OP_WRITEV)) {
                /* epoll refuses regular files: at the current position
                 * they want a plain blocking read or write, on the pool. */
                if (gyre__op_to_pool(loop, op, GYRE_LANE_FAST) < 0)
                    gyre__op_ready(loop, op, res);
            } else {
                gyre__op_ready(loop, op, res);
            }
        }
    }
    gyre__fd_dirty(loop, fd);
}

int64_t gyre__op_exec(gyre_op *op)
{
    struct iovec one = {.iov_base = op->gyre__priv.addr, .iov_len = op->gyre__priv.len};
    const struct iovec *iov = &one;
    int cnt = 1;

    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READV:
    case GYRE__OP_WRITEV:
        iov = op->gyre__priv.addr;
        cnt = (int)op->gyre__priv.len;
        break;
    default:
        break;
    }
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_READV:
        return gyre__sys_preadv(op->gyre__priv.fd, iov, cnt, op->gyre__priv.off);
    case GYRE__OP_WRITE:
    case GYRE__OP_WRITEV:
        return gyre__sys_pwritev(op->gyre__priv.fd, iov, cnt, op->gyre__priv.off);
    case GYRE__OP_OPENAT:
        return gyre__sys_openat(op->gyre__priv.fd, op->gyre__priv.addr, (int)op->gyre__priv.arg,
                                op->gyre__priv.arg2);
    case GYRE__OP_STATX:
        return gyre__sys_statx(op->gyre__priv.fd, op->gyre__priv.addr, (int)op->gyre__priv.arg,
                               op->gyre__priv.arg2, op->gyre__priv.addr2);
    case GYRE__OP_FSYNC:
        return gyre__sys_fsync(op->gyre__priv.fd, (int)op->gyre__priv.arg);
    default:
        return gyre__fileop_exec(op);
    }
}
