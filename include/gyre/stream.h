/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* gyre/stream.h: byte streams over TCP, Unix-domain sockets, pipes and any
 * other stream fd, built on gyre's operations (so they run natively on
 * io_uring and emulated on select, poll and epoll). Part of gyre.h: include
 * <gyre.h>, not this file.
 *
 * A gyre_stream owns its fd from gyre_stream_init() until the close callback.
 * It reads with at most one receive in flight (a multishot recv into the
 * caller's gyre_bufpool on sockets; a one-shot read, re-armed per completion,
 * on pipes and other fds, and a one-shot recvmsg on a socket that passes
 * descriptors) and writes with at most one write operation in flight: every
 * write request queued behind it is gathered into the next writev/sendmsg (up
 * to IOV_MAX buffers), so many small writes cost one system call per
 * iteration.
 *
 * CALLBACKS AND MEMORY
 *
 * The contract of gyre.h holds: a call that returns < 0 never calls back; one
 * that returns 0 calls back exactly once; callbacks run on the loop thread
 * from gyre_loop_run(), never inside the call that caused them. A
 * gyre_stream and every gyre_stream_write_req are owned by the caller and
 * embedded wherever the caller likes; the stream layer allocates nothing per
 * operation (a stream that reads without a pool allocates one read buffer of
 * GYRE_STREAM_READ_BUF bytes at its first gyre_stream_read_start(), freed at
 * close; a stream that gathers more than GYRE_STREAM_IOV_INLINE buffers into
 * one write grows one iovec array once, up to IOV_MAX entries).
 *
 * The stream's memory may be freed or reused only in its close callback, or
 * after it. A write request and the buffers, iovec array and fd array it
 * names may be freed or reused in its callback, or after it.
 *
 * THREADS
 *
 * Every function here takes a stream of a loop and must be called on the
 * thread running that loop (or, when the loop is not running, on any one
 * thread at a time).
 */
#ifndef GYRE_STREAM_H
#define GYRE_STREAM_H

#ifndef GYRE_H
#error "include <gyre.h>, which includes gyre/stream.h"
#endif

/* Descriptors carried by one write (gyre_stream_write_fds) or received by
 * one read. */
#define GYRE_STREAM_MAX_FDS 16
/* iovecs a stream gathers into one write without allocating. */
#define GYRE_STREAM_IOV_INLINE 8
/* Bytes of the read buffer of a stream that reads without a pool. */
#define GYRE_STREAM_READ_BUF 65536

/* gyre_stream_init() flags */
/* The fd is a Unix-domain stream socket that passes descriptors: reads use
 * recvmsg and deliver received descriptors (close-on-exec) with their
 * bytes; writes may carry descriptors (gyre_stream_write_fds). */
#define GYRE_STREAM_FDPASS 0x1u

typedef struct gyre_stream gyre_stream;
typedef struct gyre_stream_write_req gyre_stream_write_req;

/* Called once per read result while reading:
 *  nread > 0: buf holds nread bytes. buf is valid until the callback returns
 *             (the stream then gives a pool buffer back to its pool), unless
 *             the callback takes the buffer with gyre_stream_read_keep().
 *             With GYRE_STREAM_FDPASS, fds[0..nfds) are the descriptors that
 *             arrived with these bytes, close-on-exec, now owned by the
 *             callee (close them); otherwise fds is NULL and nfds 0.
 *  nread == 0: end of stream (the peer shut down or closed its side). Reading
 *             stops; the stream may still write.
 *  nread < 0: -errno (-ECONNRESET, ...), and reading stops; -ECANCELED when
 *             gyre_stream_close() ended an active read.
 * buf is NULL when nread <= 0. */
typedef void (*gyre_stream_read_cb)(gyre_stream *s, int64_t nread, void *buf, const int *fds,
                                    uint32_t nfds);
/* status: 0 when every byte of the request was written; otherwise -errno
 * (-EPIPE, -ECONNRESET, ...), -ETIME when the write timeout expired for this
 * request, or -ECANCELED when the stream closed first. Bytes of a failed
 * request may have been partly written. */
typedef void (*gyre_stream_write_cb)(gyre_stream_write_req *req, int status);
/* Shutdown completion: status 0 or -errno (-ECANCELED if the stream closed
 * first). */
typedef void (*gyre_stream_shutdown_cb)(gyre_stream *s, int status);
/* The stream is closed: its fd is closed, every callback it owed has run,
 * and its memory may be freed from here on. */
typedef void (*gyre_stream_close_cb)(gyre_stream *s);
/* No read or write progress for the idle timeout. */
typedef void (*gyre_stream_idle_cb)(gyre_stream *s);

/* A write: caller-owned, linked into the stream's queue, one callback. */
struct gyre_stream_write_req {
    void *data;          /* the caller's */
    gyre_stream *stream; /* set by the write call */
    struct {
        gyre_stream_write_req *next;
        gyre_stream_write_cb cb;
        const struct iovec *iov;
        const int *fds;
        uint64_t off; /* bytes of iov[at] already written */
        uint64_t deadline_ns;
        uint32_t iovcnt;
        uint32_t at; /* the first iovec not fully written */
        uint32_t nfds;
        uint32_t flags;
    } gyre__priv;
};

typedef struct gyre_stream_stats {
    uint64_t bytes_read;    /* bytes delivered to the read callback */
    uint64_t bytes_written; /* bytes the kernel took */
    uint64_t reads;         /* read callbacks with data */
    uint64_t write_reqs;    /* write requests accepted */
    uint64_t write_ops;     /* write operations submitted (writev/sendmsg) */
    uint64_t reserved[3];
} gyre_stream_stats;

/* Control-message room for GYRE_STREAM_MAX_FDS descriptors, aligned. */
typedef union gyre__stream_cmsg {
    size_t align; /* struct cmsghdr has a flexible array member */
    char buf[CMSG_SPACE(sizeof(int) * GYRE_STREAM_MAX_FDS)];
} gyre__stream_cmsg;

struct gyre_stream {
    void *data; /* the caller's */
    struct {
        gyre_loop *loop;
        int fd;
        uint32_t flags;
        int werr; /* the error that broke the write side, or 0 */
        uint32_t inflight;
        gyre_bufpool *pool;
        gyre_stream_read_cb read_cb;
        gyre_stream_shutdown_cb shutdown_cb;
        gyre_stream_close_cb close_cb;
        gyre_stream_close_cb wtimeout_close_cb;
        gyre_stream_idle_cb idle_cb;
        gyre_stream_write_req *head, *tail;
        gyre_stream_write_req *timed_out;
        uint64_t queued_bytes;
        uint64_t idle_ns, write_timeout_ns, last_progress_ns;
        gyre_op rop, wop, cop; /* read, write, shutdown then close */
        gyre_hook flush;       /* gathers queued writes once per iteration */
        gyre_timer idle_timer, write_timer;
        struct iovec *iov; /* iov_inline or a grown array */
        uint32_t iov_cap;
        uint32_t keep_id; /* the buffer being delivered, for read_keep */
        void *rbuf;       /* own read buffer (no pool) */
        struct iovec riov;
        struct msghdr rmsg, wmsg;
        struct iovec iov_inline[GYRE_STREAM_IOV_INLINE];
        gyre__stream_cmsg rcmsg, wcmsg;
        gyre_stream_stats stats;
    } gyre__priv;
};

/* Prepares *s to carry fd, which the stream owns from now on: it is closed by
 * gyre_stream_close() (or by the write timeout), never by the caller. The fd
 * should be non-blocking (select, poll and epoll would otherwise block the
 * loop on it); every kind of stream fd works (TCP and Unix sockets, pipes,
 * ttys, character devices). flags: 0 or GYRE_STREAM_FDPASS (a Unix-domain
 * stream socket). Returns 0; -EINVAL (NULL loop or s, fd < 0, unknown flags,
 * FDPASS on something that is not a socket); -EBADF (fd not open). On
 * failure the caller keeps the fd.
 * Errors: -EINVAL, -EBADF. */
GYRE_API int gyre_stream_init(gyre_loop *loop, gyre_stream *s, int fd, uint32_t flags);

/* The stream's fd (for getsockname and the like; do not close or read it).
 * Errors: -EINVAL. */
GYRE_API int gyre_stream_fd(const gyre_stream *s);

/* Starts reading: cb runs for each chunk of bytes, then once at end of stream
 * or error (see gyre_stream_read_cb). Sockets (without GYRE_STREAM_FDPASS)
 * read with a multishot recv into buffers of pool, which must belong to the
 * stream's loop and may be shared by many streams; when the pool runs dry the
 * stream waits for a buffer to come back, which is back-pressure too. Other
 * fds and FDPASS sockets read one chunk at a time into the stream's own
 * buffer, and pool may be NULL for them. Returns 0; -EINVAL (NULL s or cb,
 * NULL pool for a socket, a pool of another loop); -EALREADY (already
 * reading); -EBUSY (a socket's previous receive is still winding down from
 * gyre_stream_read_stop() with another pool); -EBADF (the stream is closing);
 * -ENOMEM (the own buffer).
 * Errors: -EINVAL, -EALREADY, -EBUSY, -EBADF, -ENOMEM. */
GYRE_API int gyre_stream_read_start(gyre_stream *s, gyre_bufpool *pool, gyre_stream_read_cb cb);

/* Stops reading: the receive in flight is cancelled, so nothing more is taken
 * from the kernel and the peer's writes block once the socket or pipe
 * buffers fill. Data the kernel had already handed over before the cancel
 * took effect (completions of the multishot recv that were already posted,
 * or a read that finished first) is still DELIVERED to the read callback,
 * after this call returns and before the stop is complete; none is held
 * back or lost. An end of stream or error that the cancelled receive ran into
 * is not delivered: the next read meets it again. No callback marks the stop. Idempotent; returns
 * 0, or -EINVAL for NULL. gyre_stream_read_start() may be called again at once.
 * Errors: -EINVAL. */
GYRE_API int gyre_stream_read_stop(gyre_stream *s);

/* Inside the read callback for nread > 0 only: takes ownership of the pool
 * buffer being delivered, so that it is not given back when the callback
 * returns. Returns its id (give it back with gyre_bufpool_put() on the pool
 * passed to gyre_stream_read_start(), at any later time), -ENOTSUP when the
 * bytes are in the stream's own buffer (no pool), or -EINVAL outside a read
 * callback with data.
 * Errors: -EINVAL, -ENOTSUP. */
GYRE_API int gyre_stream_read_keep(gyre_stream *s);

/* Queues a write of iov[0..iovcnt) (at most IOV_MAX buffers, at most
 * INT32_MAX bytes in all; zero-length buffers are allowed). Writes go out in
 * the order they were queued and each completes whole or fails: short writes
 * are resubmitted by the stream. cb runs once (see gyre_stream_write_cb).
 * The caller keeps req, iov and the buffers valid and unchanged until cb.
 * Returns 0; -EINVAL (NULL argument, iovcnt 0 or over IOV_MAX, too many
 * bytes); -EBADF (the stream is closing); -EPIPE (after
 * gyre_stream_shutdown()); or the error that already broke the write side
 * (-EPIPE, -ECONNRESET, ...). Never raises SIGPIPE.
 * Errors: -EINVAL, -EBADF, -EPIPE, -ECONNRESET, -ETIMEDOUT, -EHOSTUNREACH, -ENETUNREACH, -EIO. */
GYRE_API int gyre_stream_write(gyre_stream *s, gyre_stream_write_req *req, const struct iovec *iov,
                               uint32_t iovcnt, gyre_stream_write_cb cb);

/* gyre_stream_write() that also passes descriptors fds[0..nfds) (1 to
 * GYRE_STREAM_MAX_FDS) over a GYRE_STREAM_FDPASS stream (SCM_RIGHTS). They
 * travel with the first byte of this request, which must have at least one
 * byte. The caller keeps owning its descriptors (the receiver gets
 * duplicates) and keeps the fds array valid until cb. Returns as
 * gyre_stream_write(), and -EINVAL also for a stream without FDPASS, nfds 0 or
 * over GYRE_STREAM_MAX_FDS, or no bytes.
 * Errors: -EINVAL, -EBADF, -EPIPE, -ECONNRESET, -ETIMEDOUT, -EHOSTUNREACH, -ENETUNREACH, -EIO. */
GYRE_API int gyre_stream_write_fds(gyre_stream *s, gyre_stream_write_req *req,
                                   const struct iovec *iov, uint32_t iovcnt, const int *fds,
                                   uint32_t nfds, gyre_stream_write_cb cb);

/* Bytes queued for writing and not yet taken by the kernel (back-pressure on
 * the write side: stop producing while this is large).
 * Errors: none. */
GYRE_API uint64_t gyre_stream_write_queue_size(const gyre_stream *s);

/* Half-closes a socket: once every write queued before this call has
 * completed, shuts down the sending side (SHUT_WR), so the peer reads end of
 * stream; this stream can still read, and its reader still gets its own end
 * of stream. cb (may be NULL) runs once with the result. Writes after this
 * call return -EPIPE. Returns 0; -EALREADY (shutdown already asked for: a
 * second shutdown is harmless and has no callback); -ENOTSOCK (not a socket:
 * close a pipe instead); -EBADF (closing); -EINVAL (NULL s); -ENOMEM (the
 * shutdown could not be submitted).
 * Errors: -EINVAL, -EALREADY, -ENOTSOCK, -EBADF, -ENOMEM. */
GYRE_API int gyre_stream_shutdown(gyre_stream *s, gyre_stream_shutdown_cb cb);

/* Closes the stream: cancels its read and write operations, completes every
 * pending write once with -ECANCELED (a request the kernel had already taken
 * whole completes with 0), calls an active read callback once with
 * -ECANCELED, a pending shutdown callback with -ECANCELED, closes the fd, and
 * then calls cb (required), after which the memory may be freed. Safe from
 * any of the stream's callbacks. Returns 0; -EINVAL (NULL); -EALREADY
 * (already closing: cb will not run twice).
 * Errors: -EINVAL, -EALREADY. */
GYRE_API int gyre_stream_close(gyre_stream *s, gyre_stream_close_cb cb);

/* 1 from gyre_stream_close() (or a write timeout) until the memory may be
 * freed, i.e. while closing; 0 otherwise.
 * Errors: none. */
GYRE_API int gyre_stream_is_closing(const gyre_stream *s);

/* Calls cb when neither reading nor writing has made progress (bytes read,
 * bytes written) for timeout_ns, counted from this call and from each
 * progress; then again after each further timeout_ns of silence, until the
 * stream closes (the usual cb closes it). 0 turns it off. The timer does not
 * keep gyre_loop_run() running by itself. Returns 0, -EINVAL (NULL s, or a
 * NULL cb with a timeout), -EBADF (closing).
 * Errors: -EINVAL, -EBADF. */
GYRE_API int gyre_stream_set_idle_timeout(gyre_stream *s, uint64_t timeout_ns,
                                          gyre_stream_idle_cb cb);

/* Gives each write queued from now on timeout_ns to complete. When the
 * oldest pending write misses its time, it completes with -ETIME and the
 * stream closes as gyre_stream_close(s, close_cb) would (the other writes
 * -ECANCELED, then close_cb). 0 turns it off for later writes. Returns 0,
 * -EINVAL (NULL s, or NULL close_cb with a timeout), -EBADF (closing).
 * Errors: -EINVAL, -EBADF. */
GYRE_API int gyre_stream_set_write_timeout(gyre_stream *s, uint64_t timeout_ns,
                                           gyre_stream_close_cb close_cb);

/* TCP_NODELAY on (1) or off (0). Returns 0 or -errno (-ENOTSOCK,
 * -EOPNOTSUPP for a socket that is not TCP).
 * Errors: -EINVAL, -ENOTSOCK, -EOPNOTSUPP, -EBADF. */
GYRE_API int gyre_stream_set_nodelay(gyre_stream *s, int on);

/* SO_KEEPALIVE on or off; with on and idle_s > 0 also TCP_KEEPIDLE (seconds
 * of silence before the first probe). Returns 0 or -errno.
 * Errors: -EINVAL, -ENOTSOCK, -EOPNOTSUPP, -EBADF. */
GYRE_API int gyre_stream_set_keepalive(gyre_stream *s, int on, uint32_t idle_s);

/* Copies the stream's counters into *out. Returns 0 or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_stream_get_stats(const gyre_stream *s, gyre_stream_stats *out);

#endif
