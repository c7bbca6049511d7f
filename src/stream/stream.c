/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* stream.c: gyre_stream, byte streams on gyre's public operations.
 *
 * Each stream embeds three ops and never has more than one of each in
 * flight: rop reads (a multishot recv into the caller's pool on sockets; a
 * one-shot read or recvmsg re-armed per completion otherwise), wop writes
 * (one send/sendmsg/write/writev gathering every queued request), cop
 * shuts down and finally closes the fd. Keeping one write in flight is
 * what orders the bytes (the core starts ops on one fd in submission order,
 * but a short write would let a later op overtake the rest of an earlier
 * request); gathering behind it is what makes many small writes cheap.
 *
 * Invariants:
 *  - S_RBUSY/S_WBUSY/S_CBUSY are set exactly while rop/wop/cop are submitted
 *    and their final completion has not run. The fd is closed (by cop) only
 *    when none is set, so no op ever names a closed or reused fd.
 *  - The write queue head..tail holds every request not yet called back, in
 *    queue order; bytes go out from the head. A request's progress (at, off)
 *    only moves forward, by the byte counts the kernel reports.
 *  - Callbacks run only from op, timer and hook callbacks, never inside a
 *    public call, so every public call may be made from any callback.
 *  - Once S_CLOSING is set nothing is submitted except the close op, and
 *    nothing is delivered to the reader except the final -ECANCELED.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "gyre.h"
#include "sys/stream.h"
#include "sys/sys.h"

/* s->gyre__priv.flags */
#define S_SOCKET 0x1u
#define S_FDPASS 0x2u
#define S_READING 0x4u      /* read_start'ed and not stopped, ended or closed */
#define S_RBUSY 0x8u        /* rop in flight */
#define S_WBUSY 0x10u       /* wop in flight */
#define S_CBUSY 0x20u       /* cop in flight */
#define S_CLOSING 0x40u     /* close asked for */
#define S_SHUT 0x80u        /* shutdown asked for */
#define S_SHUT_WAIT 0x100u  /* ... and not yet submitted */
#define S_RCANCEL 0x200u    /* rop cancel requested */
#define S_CLOSE_SENT 0x400u /* the close op was submitted */
#define S_DELIVER 0x800u    /* inside the read callback with data */
#define S_KEPT 0x1000u      /* ... whose buffer the callback kept */

/* req->gyre__priv.flags */
#define R_FDS_SENT 0x1u

#define NO_BUF UINT32_MAX
/* Bytes gathered into one write at most: well within the core's INT32_MAX. */
#define MAX_OP_BYTES ((uint64_t)1 << 30)

#define P(s) ((s)->gyre__priv)
#define RP(r) ((r)->gyre__priv)

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static void read_done(gyre_op *op);
static void write_done(gyre_op *op);
static void shutdown_done(gyre_op *op);
static void close_done(gyre_op *op);
static void close_step(gyre_stream *s);
static void flush_cb(gyre_hook *h);

static void progress(gyre_stream *s)
{
    P(s).last_progress_ns = gyre_now(P(s).loop);
}

GYRE_API int gyre_stream_init(gyre_loop *loop, gyre_stream *s, int fd, uint32_t flags)
{
    int kind;

    if (loop == NULL || s == NULL || fd < 0 || (flags & ~GYRE_STREAM_FDPASS) != 0)
        return -EINVAL;
    kind = gyre__sys_fd_kind(fd);
    if (kind < 0)
        return kind;
    if ((flags & GYRE_STREAM_FDPASS) && kind != 1)
        return -EINVAL;
    memset(&s->gyre__priv, 0, sizeof s->gyre__priv);
    P(s).loop = loop;
    P(s).fd = fd;
    P(s).flags = (kind == 1 ? S_SOCKET : 0) | ((flags & GYRE_STREAM_FDPASS) ? S_FDPASS : 0);
    P(s).iov = P(s).iov_inline;
    P(s).iov_cap = GYRE_STREAM_IOV_INLINE;
    P(s).keep_id = NO_BUF;
    /* The hook is referenced: queued writes keep the loop running until
     * they are submitted. The timers are not: a stream that does nothing
     * but wait for its idle timeout should not hold gyre_loop_run(). */
    gyre_hook_init(loop, &P(s).flush, GYRE_HOOK_PREPARE);
    gyre_timer_init(loop, &P(s).idle_timer);
    gyre_timer_init(loop, &P(s).write_timer);
    gyre_handle_unref(&P(s).idle_timer.base);
    gyre_handle_unref(&P(s).write_timer.base);
    return 0;
}

GYRE_API int gyre_stream_fd(const gyre_stream *s)
{
    return s != NULL ? P(s).fd : -EINVAL;
}

GYRE_API int gyre_stream_is_closing(const gyre_stream *s)
{
    return s != NULL && (P(s).flags & S_CLOSING) != 0;
}

GYRE_API int gyre_stream_get_stats(const gyre_stream *s, gyre_stream_stats *out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    *out = P(s).stats;
    return 0;
}

GYRE_API uint64_t gyre_stream_write_queue_size(const gyre_stream *s)
{
    return s != NULL ? P(s).queued_bytes : 0;
}

/* --- reading --- */

static int multishot(const gyre_stream *s)
{
    return (P(s).flags & (S_SOCKET | S_FDPASS)) == S_SOCKET;
}

static int read_arm(gyre_stream *s)
{
    gyre_op *op = &P(s).rop;
    int r;

    op->data = s;
    if (multishot(s)) {
        gyre_op_recv_multishot(op, P(s).fd, P(s).pool);
    } else if (P(s).flags & S_FDPASS) {
        P(s).riov.iov_base = P(s).rbuf;
        P(s).riov.iov_len = GYRE_STREAM_READ_BUF;
        memset(&P(s).rmsg, 0, sizeof P(s).rmsg);
        P(s).rmsg.msg_iov = &P(s).riov;
        P(s).rmsg.msg_iovlen = 1;
        P(s).rmsg.msg_control = P(s).rcmsg.buf;
        P(s).rmsg.msg_controllen = sizeof P(s).rcmsg.buf;
        gyre_op_recvmsg(op, P(s).fd, &P(s).rmsg, 0);
    } else {
        gyre_op_read(op, P(s).fd, P(s).rbuf, GYRE_STREAM_READ_BUF, GYRE_OFF_CUR);
    }
    r = gyre_submit(P(s).loop, op, read_done);
    if (r == 0)
        P(s).flags = (P(s).flags | S_RBUSY) & ~S_RCANCEL;
    return r;
}

GYRE_API int gyre_stream_read_start(gyre_stream *s, gyre_bufpool *pool, gyre_stream_read_cb cb)
{
    int r;

    if (s == NULL || cb == NULL)
        return -EINVAL;
    if (P(s).flags & S_CLOSING)
        return -EBADF;
    if (P(s).flags & S_READING)
        return -EALREADY;
    if (multishot(s) && pool == NULL)
        return -EINVAL;
    if (!multishot(s) && P(s).rbuf == NULL) {
        P(s).rbuf = gyre__malloc(GYRE_STREAM_READ_BUF);
        if (P(s).rbuf == NULL)
            return -ENOMEM;
    }
    P(s).read_cb = cb;
    /* An op still winding down from read_stop() re-arms with this pool when
     * its final completion comes; it cannot be replaced before then. */
    if (!(P(s).flags & S_RBUSY)) {
        P(s).pool = pool;
        r = read_arm(s);
        if (r < 0)
            return r;
    } else if (multishot(s) && pool != P(s).pool) {
        return -EBUSY;
    }
    P(s).flags |= S_READING;
    return 0;
}

GYRE_API int gyre_stream_read_stop(gyre_stream *s)
{
    if (s == NULL)
        return -EINVAL;
    if (!(P(s).flags & S_READING))
        return 0;
    P(s).flags &= ~S_READING;
    if ((P(s).flags & (S_RBUSY | S_RCANCEL)) == S_RBUSY) {
        P(s).flags |= S_RCANCEL;
        gyre_cancel(P(s).loop, &P(s).rop);
    }
    return 0;
}

GYRE_API int gyre_stream_read_keep(gyre_stream *s)
{
    if (s == NULL || !(P(s).flags & S_DELIVER))
        return -EINVAL;
    if (P(s).keep_id == NO_BUF)
        return -ENOTSUP;
    P(s).flags |= S_KEPT;
    return (int)P(s).keep_id;
}

/* The descriptors of a recvmsg, copied out of the control buffer. */
static uint32_t take_fds(gyre_stream *s, int *fds)
{
    struct msghdr *msg = &P(s).rmsg;
    uint32_t n = 0;

    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        size_t k;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (k > GYRE_STREAM_MAX_FDS - n)
            k = GYRE_STREAM_MAX_FDS - n;
        memcpy(fds + n, CMSG_DATA(c), k * sizeof(int));
        n += (uint32_t)k;
    }
    return n;
}

static void read_data(gyre_stream *s, gyre_op *op, int64_t res)
{
    int fds[GYRE_STREAM_MAX_FDS];
    uint32_t nfds = 0;
    uint32_t id = NO_BUF;
    gyre_bufpool *pool = P(s).pool;
    void *buf = P(s).rbuf;

    if (op->flags & GYRE_OP_BUFFER) {
        id = op->buf_id;
        buf = gyre_bufpool_buf(pool, id);
    }
    if (P(s).flags & S_FDPASS)
        nfds = take_fds(s, fds);
    /* Delivered even after read_stop() (the kernel already moved these
     * bytes; holding them would need room without bound), never after
     * close. */
    if (!(P(s).flags & S_CLOSING)) {
        P(s).stats.bytes_read += (uint64_t)res;
        P(s).stats.reads++;
        progress(s);
        P(s).keep_id = id;
        P(s).flags = (P(s).flags | S_DELIVER) & ~S_KEPT;
        P(s).read_cb(s, res, buf, nfds != 0 ? fds : NULL, nfds);
        P(s).flags &= ~S_DELIVER;
        P(s).keep_id = NO_BUF;
        nfds = 0;
    }
    for (uint32_t i = 0; i < nfds; i++)
        gyre__sys_close(fds[i]);
    if (id != NO_BUF && !(P(s).flags & S_KEPT))
        gyre_bufpool_put(pool, id);
    P(s).flags &= ~S_KEPT;
}

static void read_done(gyre_op *op)
{
    gyre_stream *s = op->data;
    int64_t res = op->result;

    if (!(op->flags & GYRE_OP_MORE))
        P(s).flags &= ~S_RBUSY;
    /* A reset the write side saw first (the kernel reports a socket error
     * once) is still a reset to the reader, not a clean end of stream. */
    if (res == 0 && P(s).werr == -ECONNRESET)
        res = -ECONNRESET;
    if (res > 0) {
        read_data(s, op, res);
    } else if (res != -ECANCELED && (P(s).flags & (S_READING | S_CLOSING)) == S_READING) {
        /* End of stream or an error ends reading. One that arrives after
         * read_stop() is not delivered: the next read sees it again (end
         * of stream and a socket's pending error persist). */
        P(s).flags &= ~S_READING;
        P(s).read_cb(s, res, NULL, NULL, 0);
    }
    if (op->flags & GYRE_OP_MORE)
        return;
    if (P(s).flags & S_CLOSING) {
        close_step(s);
        return;
    }
    /* Re-arm after data (one-shot reads, or a multishot the kernel ended)
     * and after a stop that was undone by a read_start before it finished. */
    if ((P(s).flags & (S_READING | S_RBUSY)) == S_READING && (res > 0 || res == -ECANCELED)) {
        int r = read_arm(s);

        if (r < 0) {
            P(s).flags &= ~S_READING;
            P(s).read_cb(s, r, NULL, NULL, 0);
        }
    }
}

/* --- writing --- */

static void write_timer_cb(gyre_timer *t);

/* The write timer follows the head request, the oldest pending one. */
static void write_timer_arm(gyre_stream *s)
{
    gyre_stream_write_req *head = P(s).head;
    uint64_t now = gyre_now(P(s).loop);

    if (head == NULL || RP(head).deadline_ns == 0) {
        gyre_timer_stop(&P(s).write_timer);
        return;
    }
    gyre_timer_start(&P(s).write_timer, write_timer_cb,
                     RP(head).deadline_ns > now ? RP(head).deadline_ns - now : 0, 0);
}

static int write_common(gyre_stream *s, gyre_stream_write_req *req, const struct iovec *iov,
                        uint32_t iovcnt, const int *fds, uint32_t nfds, gyre_stream_write_cb cb)
{
    uint64_t total = 0;

    if (s == NULL || req == NULL || iov == NULL || cb == NULL || iovcnt == 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    for (uint32_t i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > INT32_MAX || iov[i].iov_len > INT32_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    if (nfds != 0 && total == 0)
        return -EINVAL;
    if (P(s).flags & S_CLOSING)
        return -EBADF;
    if (P(s).flags & S_SHUT)
        return -EPIPE;
    if (P(s).werr != 0)
        return P(s).werr;
    req->stream = s;
    memset(&req->gyre__priv, 0, sizeof req->gyre__priv);
    RP(req).cb = cb;
    RP(req).iov = iov;
    RP(req).iovcnt = iovcnt;
    RP(req).fds = fds;
    RP(req).nfds = nfds;
    if (P(s).write_timeout_ns != 0)
        RP(req).deadline_ns = gyre_now(P(s).loop) + P(s).write_timeout_ns;
    if (P(s).tail != NULL)
        RP(P(s).tail).next = req;
    else
        P(s).head = req;
    P(s).tail = req;
    P(s).queued_bytes += total;
    P(s).stats.write_reqs++;
    if (P(s).head == req)
        write_timer_arm(s);
    if (!(P(s).flags & S_WBUSY))
        gyre_hook_start(&P(s).flush, flush_cb);
    return 0;
}

GYRE_API int gyre_stream_write(gyre_stream *s, gyre_stream_write_req *req, const struct iovec *iov,
                               uint32_t iovcnt, gyre_stream_write_cb cb)
{
    return write_common(s, req, iov, iovcnt, NULL, 0, cb);
}

GYRE_API int gyre_stream_write_fds(gyre_stream *s, gyre_stream_write_req *req,
                                   const struct iovec *iov, uint32_t iovcnt, const int *fds,
                                   uint32_t nfds, gyre_stream_write_cb cb)
{
    if (s == NULL || !(P(s).flags & S_FDPASS) || fds == NULL || nfds == 0 ||
        nfds > GYRE_STREAM_MAX_FDS)
        return -EINVAL;
    return write_common(s, req, iov, iovcnt, fds, nfds, cb);
}

/* Room for IOV_MAX iovecs, grown once, keeping the n already gathered; on
 * failure the inline array serves. */
static void iov_grow(gyre_stream *s, uint32_t n)
{
    struct iovec *big;

    if (P(s).iov != P(s).iov_inline)
        return;
    big = gyre__malloc(sizeof *big * IOV_MAX);
    if (big == NULL)
        return;
    memcpy(big, P(s).iov_inline, sizeof *big * n);
    P(s).iov = big;
    P(s).iov_cap = IOV_MAX;
}

/* Gathers the queue from its head into s->iov; returns the iovec count (0
 * when the head requests have no bytes left). A request whose descriptors
 * have not gone yet only leads a write, so they travel with its first byte. */
static uint32_t gather(gyre_stream *s, const int **fds, uint32_t *nfds)
{
    uint32_t n = 0;
    uint64_t bytes = 0;

    *fds = NULL;
    *nfds = 0;
    for (gyre_stream_write_req *req = P(s).head; req != NULL; req = RP(req).next) {
        if (RP(req).nfds != 0 && !(RP(req).flags & R_FDS_SENT)) {
            if (req != P(s).head)
                break;
            *fds = RP(req).fds;
            *nfds = RP(req).nfds;
        }
        if (n + (RP(req).iovcnt - RP(req).at) > P(s).iov_cap)
            iov_grow(s, n);
        for (uint32_t i = RP(req).at; i < RP(req).iovcnt; i++) {
            uint64_t skip = i == RP(req).at ? RP(req).off : 0;
            uint64_t len = RP(req).iov[i].iov_len - skip;

            if (len == 0)
                continue;
            if (n == P(s).iov_cap || bytes == MAX_OP_BYTES)
                return n;
            if (len > MAX_OP_BYTES - bytes)
                len = MAX_OP_BYTES - bytes;
            P(s).iov[n].iov_base = (char *)RP(req).iov[i].iov_base + skip;
            P(s).iov[n].iov_len = (size_t)len;
            bytes += len;
            n++;
        }
    }
    return n;
}

/* Moves the head requests forward by n bytes; returns the chain of those
 * now complete (unlinked, in order). Requests with nothing left (zero-length
 * buffers) complete as soon as everything before them has. */
static gyre_stream_write_req *advance(gyre_stream *s, uint64_t n)
{
    gyre_stream_write_req *done = NULL, **tailp = &done;
    gyre_stream_write_req *req;

    while ((req = P(s).head) != NULL) {
        while (RP(req).at < RP(req).iovcnt) {
            uint64_t left = RP(req).iov[RP(req).at].iov_len - RP(req).off;

            if (n < left) {
                RP(req).off += n;
                return done;
            }
            n -= left;
            RP(req).at++;
            RP(req).off = 0;
        }
        P(s).head = RP(req).next;
        if (P(s).head == NULL)
            P(s).tail = NULL;
        RP(req).next = NULL;
        *tailp = req;
        tailp = &RP(req).next;
    }
    return done;
}

/* Calls back a chain of finished requests. A callback may queue writes or
 * close the stream; the chain is already off the queue, so neither matters. */
static void complete_chain(gyre_stream *s, gyre_stream_write_req *req, int status)
{
    while (req != NULL) {
        gyre_stream_write_req *next = RP(req).next;
        int st = status;

        if (req == P(s).timed_out) {
            P(s).timed_out = NULL;
            if (st == -ECANCELED)
                st = -ETIME;
        }
        RP(req).cb(req, st);
        req = next;
    }
}

static int shutdown_submit(gyre_stream *s)
{
    int r;

    P(s).cop.data = s;
    gyre_op_shutdown(&P(s).cop, P(s).fd, SHUT_WR);
    r = gyre_submit(P(s).loop, &P(s).cop, shutdown_done);
    if (r == 0)
        P(s).flags = (P(s).flags | S_CBUSY) & ~S_SHUT_WAIT;
    return r;
}

/* From a callback: a shutdown waiting for the queue to drain goes now. */
static void shutdown_if_drained(gyre_stream *s)
{
    int r;

    if ((P(s).flags & (S_SHUT_WAIT | S_CLOSING | S_WBUSY | S_CBUSY)) != S_SHUT_WAIT ||
        P(s).head != NULL)
        return;
    r = shutdown_submit(s);
    if (r < 0) {
        P(s).flags &= ~S_SHUT_WAIT;
        if (P(s).shutdown_cb != NULL)
            P(s).shutdown_cb(s, r);
    }
}

static void write_submit(gyre_stream *s)
{
    gyre_op *op = &P(s).wop;
    const int *fds;
    uint32_t nfds, n;
    int r;

    n = gather(s, &fds, &nfds);
    if (n == 0) {
        /* Only empty requests at the head: they are complete. */
        complete_chain(s, advance(s, 0), 0);
        if (!(P(s).flags & S_CLOSING)) {
            write_timer_arm(s);
            shutdown_if_drained(s);
        }
        return;
    }
    op->data = s;
    if (P(s).flags & S_SOCKET) {
        if (n == 1 && nfds == 0) {
            gyre_op_send(op, P(s).fd, P(s).iov[0].iov_base, (uint32_t)P(s).iov[0].iov_len, 0);
        } else {
            memset(&P(s).wmsg, 0, sizeof P(s).wmsg);
            P(s).wmsg.msg_iov = P(s).iov;
            P(s).wmsg.msg_iovlen = n;
            if (nfds != 0) {
                struct cmsghdr *c;

                memset(&P(s).wcmsg, 0, sizeof P(s).wcmsg);
                P(s).wmsg.msg_control = P(s).wcmsg.buf;
                P(s).wmsg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
                c = CMSG_FIRSTHDR(&P(s).wmsg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
            }
            gyre_op_sendmsg(op, P(s).fd, &P(s).wmsg, 0);
        }
    } else if (n == 1) {
        gyre_op_write(op, P(s).fd, P(s).iov[0].iov_base, (uint32_t)P(s).iov[0].iov_len,
                      GYRE_OFF_CUR);
    } else {
        gyre_op_writev(op, P(s).fd, P(s).iov, n, GYRE_OFF_CUR);
    }
    r = gyre_submit(P(s).loop, op, write_done);
    if (r == 0) {
        P(s).flags |= S_WBUSY;
        P(s).stats.write_ops++;
        return;
    }
    /* Nothing went: the write side is broken with that error. */
    P(s).werr = r;
    {
        gyre_stream_write_req *all = P(s).head;

        P(s).head = P(s).tail = NULL;
        P(s).queued_bytes = 0;
        complete_chain(s, all, r);
    }
    if (!(P(s).flags & S_CLOSING))
        shutdown_if_drained(s);
}

static void flush_cb(gyre_hook *h)
{
    gyre_stream *s = container_of(h, gyre_stream, gyre__priv.flush);

    gyre_hook_stop(h);
    if ((P(s).flags & (S_CLOSING | S_WBUSY)) || P(s).head == NULL)
        return;
    write_submit(s);
}

static void write_done(gyre_op *op)
{
    gyre_stream *s = op->data;
    int64_t res = op->result;
    gyre_stream_write_req *done = NULL;
    int status = 0;

    P(s).flags &= ~S_WBUSY;
    if (res > 0) {
        gyre_stream_write_req *head = P(s).head;

        if (head != NULL && RP(head).nfds != 0)
            RP(head).flags |= R_FDS_SENT;
        P(s).stats.bytes_written += (uint64_t)res;
        P(s).queued_bytes -= (uint64_t)res;
        progress(s);
        done = advance(s, (uint64_t)res);
    } else if (res == 0) {
        /* Nothing taken from a non-empty write: no kernel does this for a
         * stream, and retrying could spin. */
        res = -EIO;
    }
    if (res < 0 && !(P(s).flags & S_CLOSING)) {
        /* The write side is broken: every pending request fails once with
         * the error, and later writes are refused with it. */
        P(s).werr = (int)res;
        done = P(s).head;
        P(s).head = P(s).tail = NULL;
        P(s).queued_bytes = 0;
        status = (int)res;
    }
    complete_chain(s, done, status);
    if (P(s).flags & S_CLOSING) {
        close_step(s);
        return;
    }
    write_timer_arm(s);
    if (P(s).head != NULL) {
        if (!(P(s).flags & S_WBUSY))
            gyre_hook_start(&P(s).flush, flush_cb);
    } else {
        shutdown_if_drained(s);
    }
}

/* --- shutdown --- */

GYRE_API int gyre_stream_shutdown(gyre_stream *s, gyre_stream_shutdown_cb cb)
{
    int r;

    if (s == NULL)
        return -EINVAL;
    if (P(s).flags & S_CLOSING)
        return -EBADF;
    if (P(s).flags & S_SHUT)
        return -EALREADY;
    if (!(P(s).flags & S_SOCKET))
        return -ENOTSOCK;
    P(s).shutdown_cb = cb;
    P(s).flags |= S_SHUT | S_SHUT_WAIT;
    if ((P(s).flags & (S_WBUSY | S_CBUSY)) || P(s).head != NULL)
        return 0;
    r = shutdown_submit(s);
    if (r < 0)
        P(s).flags &= ~(S_SHUT | S_SHUT_WAIT);
    return r;
}

static void shutdown_done(gyre_op *op)
{
    gyre_stream *s = op->data;

    P(s).flags &= ~S_CBUSY;
    if (P(s).shutdown_cb != NULL)
        P(s).shutdown_cb(s, (int)op->result);
    if (P(s).flags & S_CLOSING)
        close_step(s);
}

/* --- close --- */

static void start_close(gyre_stream *s, gyre_stream_close_cb cb)
{
    P(s).flags |= S_CLOSING;
    P(s).close_cb = cb;
    gyre_hook_stop(&P(s).flush);
    gyre_timer_stop(&P(s).idle_timer);
    gyre_timer_stop(&P(s).write_timer);
    if (P(s).flags & S_RBUSY)
        gyre_cancel(P(s).loop, &P(s).rop);
    if (P(s).flags & S_WBUSY)
        gyre_cancel(P(s).loop, &P(s).wop);
    if (P(s).flags & S_CBUSY)
        gyre_cancel(P(s).loop, &P(s).cop);
    close_step(s);
}

GYRE_API int gyre_stream_close(gyre_stream *s, gyre_stream_close_cb cb)
{
    if (s == NULL || cb == NULL)
        return -EINVAL;
    if (P(s).flags & S_CLOSING)
        return -EALREADY;
    start_close(s, cb);
    return 0;
}

static void finish_close(gyre_stream *s)
{
    gyre_stream_write_req *all = P(s).head;

    P(s).head = P(s).tail = NULL;
    P(s).queued_bytes = 0;
    complete_chain(s, all, -ECANCELED);
    if (P(s).flags & S_READING) {
        P(s).flags &= ~S_READING;
        P(s).read_cb(s, -ECANCELED, NULL, NULL, 0);
    }
    if (P(s).flags & S_SHUT_WAIT) {
        P(s).flags &= ~S_SHUT_WAIT;
        if (P(s).shutdown_cb != NULL)
            P(s).shutdown_cb(s, -ECANCELED);
    }
    gyre__free(P(s).rbuf);
    P(s).rbuf = NULL;
    if (P(s).iov != P(s).iov_inline)
        gyre__free(P(s).iov);
    P(s).iov = P(s).iov_inline;
    P(s).fd = -1;
    P(s).close_cb(s);
}

static void close_done(gyre_op *op)
{
    gyre_stream *s = op->data;

    P(s).flags &= ~S_CBUSY;
    finish_close(s);
}

/* Finishes the close on a timer when the close op cannot be submitted: the
 * callbacks it owes must not run inside gyre_stream_close(). */
static void close_late_cb(gyre_timer *t)
{
    finish_close(container_of(t, gyre_stream, gyre__priv.idle_timer));
}

static void close_step(gyre_stream *s)
{
    if ((P(s).flags & (S_RBUSY | S_WBUSY | S_CBUSY | S_CLOSE_SENT)) != 0)
        return;
    P(s).flags |= S_CLOSE_SENT;
    P(s).cop.data = s;
    gyre_op_close(&P(s).cop, P(s).fd);
    if (gyre_submit(P(s).loop, &P(s).cop, close_done) == 0) {
        P(s).flags |= S_CBUSY;
        return;
    }
    gyre__sys_close(P(s).fd);
    gyre_handle_ref(&P(s).idle_timer.base);
    gyre_timer_start(&P(s).idle_timer, close_late_cb, 0, 0);
}

/* --- timeouts --- */

static void idle_timer_cb(gyre_timer *t)
{
    gyre_stream *s = container_of(t, gyre_stream, gyre__priv.idle_timer);
    uint64_t now = gyre_now(P(s).loop);
    uint64_t quiet = now - P(s).last_progress_ns;

    /* Progress only records the time; the timer catches up here, so busy
     * streams never touch the timer heap per read or write. */
    if (quiet < P(s).idle_ns) {
        gyre_timer_start(t, idle_timer_cb, P(s).idle_ns - quiet, 0);
        return;
    }
    P(s).last_progress_ns = now;
    gyre_timer_start(t, idle_timer_cb, P(s).idle_ns, 0);
    P(s).idle_cb(s);
}

GYRE_API int gyre_stream_set_idle_timeout(gyre_stream *s, uint64_t timeout_ns,
                                          gyre_stream_idle_cb cb)
{
    if (s == NULL || (timeout_ns != 0 && cb == NULL))
        return -EINVAL;
    if (P(s).flags & S_CLOSING)
        return -EBADF;
    P(s).idle_ns = timeout_ns;
    P(s).idle_cb = cb;
    if (timeout_ns == 0)
        return gyre_timer_stop(&P(s).idle_timer);
    progress(s);
    return gyre_timer_start(&P(s).idle_timer, idle_timer_cb, timeout_ns, 0);
}

static void write_timer_cb(gyre_timer *t)
{
    gyre_stream *s = container_of(t, gyre_stream, gyre__priv.write_timer);
    gyre_stream_write_req *head = P(s).head;
    uint64_t now = gyre_now(P(s).loop);

    if ((P(s).flags & S_CLOSING) || head == NULL || RP(head).deadline_ns == 0)
        return;
    if (now < RP(head).deadline_ns) {
        gyre_timer_start(t, write_timer_cb, RP(head).deadline_ns - now, 0);
        return;
    }
    P(s).timed_out = head;
    start_close(s, P(s).wtimeout_close_cb);
}

GYRE_API int gyre_stream_set_write_timeout(gyre_stream *s, uint64_t timeout_ns,
                                           gyre_stream_close_cb close_cb)
{
    if (s == NULL || (timeout_ns != 0 && close_cb == NULL))
        return -EINVAL;
    if (P(s).flags & S_CLOSING)
        return -EBADF;
    P(s).write_timeout_ns = timeout_ns;
    P(s).wtimeout_close_cb = close_cb;
    return 0;
}

/* --- socket options --- */

GYRE_API int gyre_stream_set_nodelay(gyre_stream *s, int on)
{
    if (s == NULL)
        return -EINVAL;
    return gyre__sys_setsockopt_int(P(s).fd, IPPROTO_TCP, TCP_NODELAY, on != 0);
}

GYRE_API int gyre_stream_set_keepalive(gyre_stream *s, int on, uint32_t idle_s)
{
    int r;

    if (s == NULL || idle_s > INT32_MAX)
        return -EINVAL;
    r = gyre__sys_setsockopt_int(P(s).fd, SOL_SOCKET, SO_KEEPALIVE, on != 0);
    if (r == 0 && on && idle_s > 0)
        r = gyre__sys_setsockopt_int(P(s).fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)idle_s);
    return r;
}
