/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* listen.c: gyre_listener, a listening socket with a multishot accept and a
 * policy for running out of descriptors.
 *
 * States: ACCEPTING (the multishot accept is in flight), EXHAUSTED (it ended
 * with EMFILE/ENFILE/ENOMEM/ENOBUFS; the back-off timer runs, nothing
 * watches the listening fd, so a full backlog cannot wake the loop), FAILED
 * (a fatal accept error was reported; waiting for close), CLOSING (a close op
 * on the fd is in flight; it ends the accept op first).
 *
 * Bound on accept calls while exhausted: the multishot's failing call, one
 * shed at entry, then at most two per back-off tick (a real accept, and a
 * shed when it found no descriptor). So exhausted_attempts <= 2 * (ticks +
 * 1), whatever the clients do. Nothing here spins: every accept call is
 * paced by the timer.
 *
 * The listener never calls back after gyre_listener_close() returns; the
 * close callback waits until both its ops (accept, close) are called back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "gyre.h"
#include "sys/net.h"
#include "sys/sys.h"

#define DEFAULT_BACKOFF_NS UINT64_C(100000000)

enum {
    ST_ACCEPTING = 1,
    ST_EXHAUSTED = 2,
    ST_FAILED = 3,
    ST_CLOSING = 4
};

#define P(l) (&(l)->gyre__priv)

static void accept_cb(gyre_op *op);

static int is_exhaustion(int64_t r)
{
    return r == -EMFILE || r == -ENFILE || r == -ENOMEM || r == -ENOBUFS;
}

/* Errors that concern one connection (it is gone) or are passing: accept(2)
 * asks callers to retry them. They never stop the listener. */
static int is_per_connection(int64_t r)
{
    switch (r) {
    case -ECONNABORTED:
    case -EPERM:
    case -EPROTO:
    case -ENETDOWN:
    case -ENOPROTOOPT:
    case -EHOSTDOWN:
    case -ENONET:
    case -EHOSTUNREACH:
    case -EOPNOTSUPP:
    case -ENETUNREACH:
    case -ETIMEDOUT:
    case -EAGAIN:
    case -EINTR:
        return 1;
    default:
        return 0;
    }
}

static void maybe_closed(gyre_listener *l)
{
    if (P(l)->state == ST_CLOSING && P(l)->inflight == 0 && P(l)->close_cb != NULL)
        P(l)->close_cb(l);
}

static int arm(gyre_listener *l)
{
    int r;

    gyre_op_accept_multishot(&P(l)->accept, P(l)->fd);
    r = gyre_submit(P(l)->loop, &P(l)->accept, accept_cb);
    if (r == 0)
        P(l)->inflight++;
    return r;
}

static void tell(gyre_listener *l, int event)
{
    if (P(l)->event_cb != NULL)
        P(l)->event_cb(l, event, &P(l)->stats);
}

/* A connection taken: io_uring's accept has no SOCK_NONBLOCK (the emulated
 * one adds it), so the fd is made non-blocking here when the kernel may have
 * carried the accept. */
static void deliver(gyre_listener *l, int fd)
{
    if (P(l)->native)
        (void)gyre__sys_net_nonblock(fd);
    P(l)->stats.accepted++;
    P(l)->cb(l, fd);
}

/* Spends the reserve descriptor on one pending connection, which is closed
 * at once so that its client is not left waiting. */
static void shed(gyre_listener *l)
{
    int fd;

    if (P(l)->reserve_fd < 0)
        return;
    gyre__sys_close(P(l)->reserve_fd);
    P(l)->reserve_fd = -1;
    P(l)->stats.exhausted_attempts++;
    fd = gyre__sys_accept(P(l)->fd, NULL, NULL, 0);
    if (fd >= 0) {
        P(l)->stats.shed++;
        gyre__sys_close(fd);
    }
    /* May fail if another thread took the number meanwhile: the listener
     * then goes on without a reserve. */
    fd = gyre__sys_openat(AT_FDCWD, "/dev/null", O_RDONLY, 0);
    P(l)->reserve_fd = fd >= 0 ? fd : -1;
}

static void resume(gyre_listener *l, int fd)
{
    gyre_timer_stop(&P(l)->backoff);
    P(l)->state = ST_ACCEPTING;
    P(l)->stats.exhausted = 0;
    P(l)->stats.resumptions++;
    tell(l, GYRE_LISTEN_RESUMED);
    if (P(l)->state != ST_ACCEPTING)
        return; /* closed from the event callback: the fd is the caller's */
    deliver(l, fd);
    if (P(l)->state == ST_ACCEPTING) {
        int r = arm(l);

        if (r < 0) {
            P(l)->state = ST_FAILED;
            P(l)->cb(l, r);
        }
    }
}

/* One back-off interval passed: at most two accept calls. */
static void backoff_cb(gyre_timer *t)
{
    gyre_listener *l = t->base.data;
    int fd;

    P(l)->stats.backoff_ticks++;
    P(l)->stats.exhausted_attempts++;
    fd = gyre__sys_accept(P(l)->fd, NULL, NULL, 0);
    if (fd >= 0) {
        resume(l, fd);
        return;
    }
    if (is_exhaustion(fd))
        shed(l);
    /* -EAGAIN (nobody waiting) proves nothing about descriptors: stay
     * exhausted until an accept succeeds. Other errors concern one
     * connection and are retried on the next tick. */
}

static void exhaust(gyre_listener *l, int err)
{
    P(l)->state = ST_EXHAUSTED;
    P(l)->stats.exhausted = 1;
    P(l)->stats.exhaustions++;
    P(l)->stats.exhausted_attempts++;
    P(l)->stats.last_error = err;
    if (err == -EMFILE || err == -ENFILE)
        shed(l);
    /* Cannot fail on an initialised timer but for -ENOMEM (heap growth); the
     * listener would then be stuck, so say it failed instead. */
    if (gyre_timer_start(&P(l)->backoff, backoff_cb, P(l)->backoff_ns, P(l)->backoff_ns) < 0) {
        P(l)->state = ST_FAILED;
        P(l)->cb(l, -ENOMEM);
        return;
    }
    tell(l, GYRE_LISTEN_EXHAUSTED);
}

static void accept_cb(gyre_op *op)
{
    gyre_listener *l = op->data;
    int64_t r = op->result;
    int more = (op->flags & GYRE_OP_MORE) != 0;

    if (!more)
        P(l)->inflight--;
    if (P(l)->state != ST_ACCEPTING) {
        /* Closing: a connection the kernel handed over after the close was
         * asked for has nobody to go to. */
        if (r >= 0)
            gyre__sys_close((int)r);
        maybe_closed(l);
        return;
    }
    if (r >= 0) {
        deliver(l, (int)r);
        if (!more && P(l)->state == ST_ACCEPTING && (r = arm(l)) < 0) {
            P(l)->state = ST_FAILED;
            P(l)->cb(l, (int)r);
        }
        return;
    }
    if (more) {
        /* An error inside a multishot that goes on: one connection lost. */
        P(l)->stats.errors++;
        return;
    }
    if (is_exhaustion(r)) {
        exhaust(l, (int)r);
        return;
    }
    if (is_per_connection(r)) {
        P(l)->stats.errors++;
        if ((r = arm(l)) < 0) {
            P(l)->state = ST_FAILED;
            P(l)->cb(l, (int)r);
        }
        return;
    }
    P(l)->state = ST_FAILED;
    P(l)->cb(l, (int)r);
}

static void close_done(gyre_op *op)
{
    gyre_listener *l = op->data;

    P(l)->inflight--;
    maybe_closed(l);
}

static int check_opts(const gyre_listen_opts *o)
{
    if (o == NULL)
        return 0;
    if (o->backlog < 0 ||
        (o->flags & ~(GYRE_LISTEN_REUSEPORT | GYRE_LISTEN_V6ONLY | GYRE_LISTEN_RESERVE_FD)) != 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++) {
        if (o->reserved[i] != 0)
            return -EINVAL;
    }
    return 0;
}

/* socket, options, bind, listen: the fd, or -errno with nothing left open. */
static int open_listener(const struct sockaddr *addr, socklen_t len, const gyre_listen_opts *o)
{
    int family = addr->sa_family;
    uint32_t flags = o != NULL ? o->flags : 0;
    int backlog = o != NULL && o->backlog > 0 ? o->backlog : SOMAXCONN;
    int fd, r = 0;

    fd = gyre__sys_net_socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return fd;
    if (family != AF_UNIX)
        r = gyre__sys_net_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (r == 0 && (flags & GYRE_LISTEN_REUSEPORT))
        r = gyre__sys_net_setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (r == 0 && family == AF_INET6)
        r = gyre__sys_net_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
                                     (flags & GYRE_LISTEN_V6ONLY) != 0);
    if (r == 0)
        r = gyre__sys_net_bind(fd, addr, len);
    if (r == 0)
        r = gyre__sys_net_listen(fd, backlog);
    if (r < 0) {
        gyre__sys_close(fd);
        return r;
    }
    return fd;
}

/* Takes fd (listening) into l and arms the accept: 0, or -errno with the
 * fd left to the caller and nothing else open. */
static int start_listener(gyre_loop *loop, gyre_listener *l, int fd, const gyre_listen_opts *opts,
                          gyre_accept_cb cb)
{
    void *data;
    int r;

    data = l->data;
    memset(&l->gyre__priv, 0, sizeof l->gyre__priv);
    l->data = data;
    P(l)->loop = loop;
    P(l)->fd = fd;
    P(l)->reserve_fd = -1;
    P(l)->cb = cb;
    P(l)->flags = opts != NULL ? opts->flags : 0;
    P(l)->event_cb = opts != NULL ? opts->event_cb : NULL;
    P(l)->backoff_ns =
        opts != NULL && opts->backoff_ns != 0 ? opts->backoff_ns : DEFAULT_BACKOFF_NS;
    P(l)->native = (gyre_loop_caps(loop) & GYRE_CAP_NATIVE_OPS) != 0;
    P(l)->accept.data = l;
    P(l)->close.data = l;
    gyre_timer_init(loop, &P(l)->backoff);
    P(l)->backoff.base.data = l;
    if (P(l)->flags & GYRE_LISTEN_RESERVE_FD) {
        r = gyre__sys_openat(AT_FDCWD, "/dev/null", O_RDONLY, 0);
        if (r < 0) {
            P(l)->state = 0;
            return r;
        }
        P(l)->reserve_fd = r;
    }
    P(l)->state = ST_ACCEPTING;
    r = arm(l);
    if (r < 0) {
        if (P(l)->reserve_fd >= 0)
            gyre__sys_close(P(l)->reserve_fd);
        P(l)->state = 0;
        return r;
    }
    return 0;
}

GYRE_API int gyre_listen(gyre_loop *loop, gyre_listener *l, const struct sockaddr *addr,
                         socklen_t addrlen, const gyre_listen_opts *opts, gyre_accept_cb cb)
{
    int fd, r;

    if (loop == NULL || l == NULL || addr == NULL || cb == NULL || check_opts(opts) < 0)
        return -EINVAL;
    if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6 && addr->sa_family != AF_UNIX)
        return -EINVAL;
    fd = open_listener(addr, addrlen, opts);
    if (fd < 0)
        return fd;
    r = start_listener(loop, l, fd, opts, cb);
    if (r < 0)
        gyre__sys_close(fd);
    return r;
}

GYRE_API int gyre_listen_fd(gyre_loop *loop, gyre_listener *l, int fd, const gyre_listen_opts *opts,
                            gyre_accept_cb cb)
{
    int type, listening, r;

    if (loop == NULL || l == NULL || fd < 0 || cb == NULL || check_opts(opts) < 0 ||
        (opts != NULL && (opts->backlog != 0 || (opts->flags & ~GYRE_LISTEN_RESERVE_FD) != 0)))
        return -EINVAL;
    /* SO_TYPE answers -ENOTSOCK for a file or pipe and -EBADF for a closed
     * fd; SO_ACCEPTCONN says whether listen(2) was called. */
    r = gyre__sys_net_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type);
    if (r < 0)
        return r;
    if (type != SOCK_STREAM)
        return -EINVAL;
    r = gyre__sys_net_getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening);
    if (r < 0)
        return r;
    if (!listening)
        return -EINVAL;
    /* Made by someone else: the readiness backends need it non-blocking, and
     * contract 6 wants every fd gyre holds close-on-exec. */
    r = gyre__sys_net_adopt(fd);
    if (r < 0)
        return r;
    return start_listener(loop, l, fd, opts, cb);
}

GYRE_API int gyre_listen_fds(void)
{
    return gyre__sys_net_listen_fds(GYRE_LISTEN_FDS_START);
}

GYRE_API int gyre_listen_tcp(gyre_loop *loop, gyre_listener *l, const char *host, uint16_t port,
                             const gyre_listen_opts *opts, gyre_accept_cb cb)
{
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;

    if (host == NULL)
        host = "0.0.0.0";
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons(port);
        return gyre_listen(loop, l, (struct sockaddr *)&a4, sizeof a4, opts, cb);
    }
    if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(port);
        return gyre_listen(loop, l, (struct sockaddr *)&a6, sizeof a6, opts, cb);
    }
    return -EINVAL;
}

GYRE_API int gyre_listen_unix(gyre_loop *loop, gyre_listener *l, const char *path,
                              const gyre_listen_opts *opts, gyre_accept_cb cb)
{
    struct sockaddr_un a;
    size_t n;

    if (path == NULL || path[0] == '\0')
        return -EINVAL;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    n = strlen(path);
    if (n >= sizeof a.sun_path)
        return -ENAMETOOLONG;
    memcpy(a.sun_path, path, n);
    if (path[0] == '@') {
        /* Abstract: the name is the bytes after the NUL, exactly addrlen
         * long (no terminator), as ss(8) and systemd spell it with '@'. */
        a.sun_path[0] = '\0';
        return gyre_listen(loop, l, (struct sockaddr *)&a,
                           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n), opts, cb);
    }
    return gyre_listen(loop, l, (struct sockaddr *)&a,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1), opts, cb);
}

GYRE_API int gyre_listener_fd(const gyre_listener *l)
{
    if (l == NULL || P(l)->state == 0 || P(l)->state == ST_CLOSING)
        return -EBADF;
    return P(l)->fd;
}

GYRE_API int gyre_listener_port(const gyre_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int r = gyre_listener_fd(l);

    if (r < 0)
        return r;
    r = gyre__sys_net_getsockname(P(l)->fd, (struct sockaddr *)&ss, &len);
    if (r < 0)
        return r;
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

GYRE_API int gyre_listener_stats(const gyre_listener *l, gyre_listen_stats *out)
{
    if (l == NULL || out == NULL)
        return -EINVAL;
    *out = P(l)->stats;
    return 0;
}

GYRE_API int gyre_listener_close(gyre_listener *l, gyre_listener_close_cb cb)
{
    int r;

    if (l == NULL || P(l)->state == 0)
        return -EINVAL;
    if (P(l)->state == ST_CLOSING)
        return -EALREADY;
    P(l)->state = ST_CLOSING;
    P(l)->close_cb = cb;
    gyre_timer_stop(&P(l)->backoff);
    if (P(l)->reserve_fd >= 0) {
        gyre__sys_close(P(l)->reserve_fd);
        P(l)->reserve_fd = -1;
    }
    /* A close op, not close(2): it ends the accept op first (-ECANCELED) and
     * makes the loop forget the fd while its number still names it. */
    gyre_op_close(&P(l)->close, P(l)->fd);
    r = gyre_submit(P(l)->loop, &P(l)->close, close_done);
    if (r == 0) {
        P(l)->inflight++;
        return 0;
    }
    /* Only -ENOMEM can get here: cancel the accept and close directly. */
    if (P(l)->inflight != 0)
        (void)gyre_cancel(P(l)->loop, &P(l)->accept);
    gyre__sys_close(P(l)->fd);
    if (P(l)->inflight == 0) {
        /* Nothing will call back: the close callback must still run on a
         * later iteration, never inside this call; a nop carries it. */
        gyre_op_nop(&P(l)->close);
        if (gyre_submit(P(l)->loop, &P(l)->close, close_done) == 0)
            P(l)->inflight++;
    }
    return 0;
}
