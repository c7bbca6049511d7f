/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* gyre/net.h: listeners, name resolution, connect with Happy Eyeballs, UDP.
 * Part of gyre.h (include that, not this); everything here keeps gyre.h's
 * contract: -errno returns, exactly-once completions, callbacks on the loop
 * thread and never inside the call that started them, caller-owned objects
 * with no allocation per connection or per datagram.
 *
 * Every object below is owned by the caller and embedded wherever the caller
 * likes. Unlike timers and watches, these hold operations the kernel or a
 * worker may still be carrying, so they end with a close (or a final
 * callback) that runs on a later iteration: the memory may be reused from
 * that callback on, not before. Like every gyre object they must be used on
 * the thread running their loop.
 *
 * Requests (gyre_getaddrinfo_req, gyre_connect_req, gyre_udp_send_req) are
 * prepared once with their _init() function, which marks them as gyre's;
 * every call taking a request returns -EINVAL (and asserts in debug builds)
 * for one that was not, so a stack request holding garbage is never taken
 * for one in flight. From their callback on they may be reused as they are,
 * without another _init(). The `data` member is the caller's and is never
 * touched.
 *
 * The descriptors handed out (accepted and connected sockets) belong to the
 * caller. They may be wrapped in a gyre_stream, used with ops or watches, or
 * closed. If operations were used on such an fd, close it with gyre_op_close
 * (or stop using gyre on it) so that the loop forgets the fd before its number
 * is reused.
 */
#ifndef GYRE_NET_H
#define GYRE_NET_H

#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo; /* <netdb.h> */

/* ------------------------------------------------------------------------ */
/* Listener                                                                  */
/* ------------------------------------------------------------------------ */

/* gyre_listen_opts.flags */
#define GYRE_LISTEN_REUSEPORT 0x1u /* SO_REUSEPORT: several listeners share a port */
#define GYRE_LISTEN_V6ONLY 0x2u    /* IPV6_V6ONLY on an IPv6 listener */
/* Hold one spare descriptor (/dev/null) for the listener's life. Out of
 * descriptors, the listener spends it to accept and at once close one
 * pending connection per back-off interval, so that a client sees its
 * connection closed instead of waiting in the backlog until it times out. */
#define GYRE_LISTEN_RESERVE_FD 0x4u

/* Counters of one listener (gyre_listener_stats(), and the event callback). */
typedef struct gyre_listen_stats {
    uint64_t accepted;           /* connections handed to the accept callback */
    uint64_t errors;             /* per-connection accept errors skipped (ECONNABORTED, ...) */
    uint64_t exhaustions;        /* times accepting stopped for lack of descriptors or memory */
    uint64_t resumptions;        /* times it started again */
    uint64_t exhausted_attempts; /* accept calls made while exhausted, the one that
                                    found the exhaustion included */
    uint64_t backoff_ticks;      /* back-off intervals elapsed while exhausted */
    uint64_t shed;               /* connections accepted and closed with the reserve fd */
    int32_t last_error;          /* the error that exhausted the listener (-EMFILE, ...) */
    uint32_t exhausted;          /* 1 while exhausted */
    uint64_t reserved[2];
} gyre_listen_stats;

/* Events for gyre_listen_opts.event_cb. */
#define GYRE_LISTEN_EXHAUSTED 1 /* out of descriptors (or memory): accepting paused */
#define GYRE_LISTEN_RESUMED 2   /* an accept succeeded again: accepting resumed */

typedef struct gyre_listener gyre_listener;
/* fd >= 0: a new connection, owned by the caller, close-on-exec and
 * non-blocking. fd < 0: the listener failed with that -errno and accepts no
 * more (it still needs gyre_listener_close()). Exhaustion (EMFILE, ENFILE,
 * ENOMEM, ENOBUFS) and per-connection errors (ECONNABORTED, EPERM, EPROTO,
 * ...) never reach this callback. */
typedef void (*gyre_accept_cb)(gyre_listener *l, int fd);
/* event: GYRE_LISTEN_EXHAUSTED or GYRE_LISTEN_RESUMED; stats: the counters
 * at that moment (valid during the call). */
typedef void (*gyre_listener_event_cb)(gyre_listener *l, int event, const gyre_listen_stats *stats);
typedef void (*gyre_listener_close_cb)(gyre_listener *l);

typedef struct gyre_listen_opts {
    int32_t backlog;                 /* listen(2) backlog; 0 = SOMAXCONN (the kernel caps it at
                                        net.core.somaxconn); negative is -EINVAL */
    uint32_t flags;                  /* GYRE_LISTEN_* */
    uint64_t backoff_ns;             /* pause between accept attempts while exhausted; 0 = 100 ms */
    gyre_listener_event_cb event_cb; /* may be NULL */
    uint64_t reserved[4];            /* must be 0 */
} gyre_listen_opts;

struct gyre_listener {
    void *data; /* the caller's */
    struct {
        gyre_loop *loop;
        gyre_op accept;
        gyre_op close;
        gyre_timer backoff;
        gyre_accept_cb cb;
        gyre_listener_event_cb event_cb;
        gyre_listener_close_cb close_cb;
        gyre_listen_stats stats;
        uint64_t backoff_ns;
        int32_t fd;
        int32_t reserve_fd;
        uint32_t flags;
        uint32_t state;
        uint32_t inflight;
        uint32_t native;
    } gyre__priv;
};

/* Makes a listening socket bound to addr (AF_INET, AF_INET6 or AF_UNIX;
 * SO_REUSEADDR on TCP) and starts accepting with a multishot accept: cb runs
 * once per connection. opts may be NULL. Out of descriptors (EMFILE, ENFILE)
 * or memory (ENOMEM, ENOBUFS), the listener stops accepting without spinning,
 * says so through opts->event_cb (GYRE_LISTEN_EXHAUSTED), and then makes at
 * most two accept calls per back-off interval (one to take a connection, and
 * with GYRE_LISTEN_RESERVE_FD one to shed a connection): the first that
 * succeeds hands its fd to cb, reports GYRE_LISTEN_RESUMED and restarts the
 * multishot accept. Connections already accepted are untouched throughout.
 * A Unix path is not unlinked, before or after.
 * Returns 0 (l is active until gyre_listener_close), -EINVAL (NULL
 * arguments, bad opts, unknown family; on select, a new socket numbered
 * FD_SETSIZE or above, closed again), or the -errno of socket, bind or
 * listen (-EADDRINUSE, -EACCES, -EMFILE, ...); on failure nothing is left
 * open and no callback runs. Loop thread; l must stay put until the close
 * callback.
 * Errors: -EINVAL, -EADDRINUSE, -EADDRNOTAVAIL, -EACCES, -EAFNOSUPPORT, -EMFILE, -ENFILE,
 * -ENOBUFS, -ENOMEM, -ENOENT, -ENOTDIR, -EROFS. */
GYRE_API int gyre_listen(gyre_loop *loop, gyre_listener *l, const struct sockaddr *addr,
                         socklen_t addrlen, const gyre_listen_opts *opts, gyre_accept_cb cb);
/* The same on a numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "0.0.0.0";
 * NULL = "0.0.0.0"; never a name: no resolution happens) and port (0 = an
 * ephemeral port, see gyre_listener_port). -EINVAL for a non-numeric host.
 * Errors: -EINVAL, -EADDRINUSE, -EADDRNOTAVAIL, -EACCES, -EAFNOSUPPORT, -EMFILE, -ENFILE,
 * -ENOBUFS, -ENOMEM. */
GYRE_API int gyre_listen_tcp(gyre_loop *loop, gyre_listener *l, const char *host, uint16_t port,
                             const gyre_listen_opts *opts, gyre_accept_cb cb);
/* The same on a Unix-domain stream socket at path; a path starting with '@'
 * names an abstract socket (the '@' becomes the leading NUL byte). Returns
 * -ENAMETOOLONG if path does not fit sun_path.
 * Errors: -EINVAL, -ENAMETOOLONG, -EADDRINUSE, -EACCES, -EMFILE, -ENFILE, -ENOBUFS, -ENOMEM,
 * -ENOENT, -ENOTDIR, -EROFS. */
GYRE_API int gyre_listen_unix(gyre_loop *loop, gyre_listener *l, const char *path,
                              const gyre_listen_opts *opts, gyre_accept_cb cb);

/* Adopts fd, a socket already bound and listening (SOCK_STREAM: TCP or
 * Unix; handed over by systemd's socket activation, see gyre_listen_fds(),
 * or by a parent process), and accepts on it exactly as gyre_listen() does.
 * The fd is made non-blocking and close-on-exec (once the checks below have
 * passed) and belongs to the listener from a successful return
 * (gyre_listener_close() closes it); on failure it stays the caller's.
 * opts may be NULL; its backlog must be 0 and its flags may only be
 * GYRE_LISTEN_RESERVE_FD (the socket's options were set by whoever made
 * it). Returns 0, -EINVAL (NULL arguments, fd < 0, bad opts, a socket that
 * is not SOCK_STREAM or not listening, on select an fd >= FD_SETSIZE),
 * -ENOTSOCK (fd is not a socket), -EBADF (fd is not open), -EMFILE, -ENFILE
 * (the reserve fd), -ENOMEM. Loop thread; l must stay put until the close
 * callback.
 * Errors: -EINVAL, -ENOTSOCK, -EBADF, -EMFILE, -ENFILE, -ENOMEM. */
GYRE_API int gyre_listen_fd(gyre_loop *loop, gyre_listener *l, int fd, const gyre_listen_opts *opts,
                            gyre_accept_cb cb);

/* The first fd systemd's socket activation passes (SD_LISTEN_FDS_START). */
#define GYRE_LISTEN_FDS_START 3

/* Socket activation (sd_listen_fds(3)'s protocol without libsystemd): when
 * the environment variable LISTEN_PID is this process's pid, returns
 * LISTEN_FDS, the number of fds passed, which are GYRE_LISTEN_FDS_START,
 * GYRE_LISTEN_FDS_START + 1, ...; they are made close-on-exec. Returns 0 when
 * LISTEN_PID or LISTEN_FDS is unset or LISTEN_PID names another process
 * (the variables were meant for a parent), -EINVAL when one is malformed or
 * the count is past INT_MAX - GYRE_LISTEN_FDS_START, or -EBADF when one of
 * the fds is not open. The variables are read with secure_getenv() and left
 * in place (unsetenv() is not thread-safe; unset them yourself before
 * spawning children if need be). Adopt each fd with gyre_listen_fd(). Any
 * thread.
 * Errors: -EINVAL, -EBADF. */
GYRE_API int gyre_listen_fds(void);

/* The listening fd (owned by the listener: do not close it), or -EBADF once
 * closing.
 * Errors: -EBADF. */
GYRE_API int gyre_listener_fd(const gyre_listener *l);
/* The bound TCP port (host order), or -errno (-EAFNOSUPPORT for Unix).
 * Errors: -EBADF, -EAFNOSUPPORT. */
GYRE_API int gyre_listener_port(const gyre_listener *l);
/* Copies the counters into *out. Returns 0 or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_listener_stats(const gyre_listener *l, gyre_listen_stats *out);

/* Stops accepting and closes the listening socket and the reserve fd. No
 * accept or event callback runs after this returns; cb (may be NULL) runs
 * once on a later iteration, after the kernel has let go of everything, and
 * from then on l may be freed or reused. Safe inside the listener's own
 * callbacks. Returns 0, or -EALREADY if already closing.
 * Errors: -EINVAL, -EALREADY. */
GYRE_API int gyre_listener_close(gyre_listener *l, gyre_listener_close_cb cb);

/* ------------------------------------------------------------------------ */
/* Name resolution                                                           */
/* ------------------------------------------------------------------------ */

/* Longest node and service names gyre_getaddrinfo takes (without the NUL). */
#define GYRE_HOSTNAME_MAX 255
#define GYRE_SERVICE_MAX 31

typedef struct gyre_getaddrinfo_req gyre_getaddrinfo_req;
/* status 0: res is the list (never NULL), owned by the caller, freed with
 * gyre_freeaddrinfo(). status < 0: res is NULL and status is -errno:
 * -ENOENT (no such name or service, or no address of the family asked for),
 * -ETIMEDOUT (EAI_AGAIN: the name server did not answer), -EIO (EAI_FAIL),
 * -ENOMEM, -EAFNOSUPPORT (EAI_FAMILY), -ESOCKTNOSUPPORT (EAI_SOCKTYPE),
 * -EINVAL (EAI_BADFLAGS), -ECANCELED, or the errno of EAI_SYSTEM. */
typedef void (*gyre_getaddrinfo_cb)(gyre_getaddrinfo_req *req, int status, struct addrinfo *res);

struct gyre_getaddrinfo_req {
    void *data; /* the caller's */
    struct {
        uint32_t magic; /* set by gyre_getaddrinfo_req_init() */
        gyre_op op;
        gyre_getaddrinfo_cb cb;
        struct addrinfo *res;
        int32_t flags, family, socktype, protocol; /* the hints */
        uint32_t has_node, has_service, active, cancel;
        char node[GYRE_HOSTNAME_MAX + 1];
        char service[GYRE_SERVICE_MAX + 1];
    } gyre__priv;
};

/* Prepares *req for its first use (any contents but `data` are
 * overwritten; `data` is kept). Call it once, not on a request in flight.
 * Returns 0, or -EINVAL (NULL).
 * Errors: -EINVAL. */
GYRE_API int gyre_getaddrinfo_req_init(gyre_getaddrinfo_req *req);

/* Resolves node and/or service with getaddrinfo(3) on the loop's thread
 * pool, lane GYRE_LANE_DNS, so a slow name server never holds up file work.
 * node, service and hints are copied: the caller may reuse them when this
 * returns. hints may be NULL (AF_UNSPEC, any socket type). Returns 0 (cb
 * runs exactly once), or -EINVAL (NULL req/loop/cb, req not prepared by
 * gyre_getaddrinfo_req_init(), both names NULL, a name longer than
 * GYRE_HOSTNAME_MAX / GYRE_SERVICE_MAX), -EBUSY (req in flight), -ENOMEM.
 * Loop thread; req must stay put until cb, and may be reused or freed inside
 * cb.
 * Errors: -EINVAL, -EBUSY, -ENOMEM. */
GYRE_API int gyre_getaddrinfo(gyre_loop *loop, gyre_getaddrinfo_req *req, const char *node,
                              const char *service, const struct addrinfo *hints,
                              gyre_getaddrinfo_cb cb);
/* Asks for req to be cancelled. A resolution still queued on the DNS lane
 * never runs and completes with -ECANCELED. One a worker already runs cannot
 * be interrupted (getaddrinfo has no cancel): it completes with its real
 * result, which the caller then owns as usual. Returns 0, -EINVAL (NULL, or
 * not prepared by gyre_getaddrinfo_req_init()), -ENOENT (not in flight),
 * -EALREADY (already asked). Loop thread.
 * Errors: -EINVAL, -ENOENT, -EALREADY. */
GYRE_API int gyre_getaddrinfo_cancel(gyre_getaddrinfo_req *req);
/* Frees a list from gyre_getaddrinfo (NULL is ignored). Any thread.
 * Errors: none. */
GYRE_API void gyre_freeaddrinfo(struct addrinfo *res);

/* ------------------------------------------------------------------------ */
/* Connect by name (Happy Eyeballs, RFC 8305)                                */
/* ------------------------------------------------------------------------ */

/* Connection attempts a gyre_connect_req keeps in flight at once. */
#define GYRE_CONNECT_PARALLEL 4

typedef struct gyre_connect_req gyre_connect_req;
/* result >= 0: the connected socket, owned by the caller, close-on-exec and
 * non-blocking. result < 0: -errno: the last attempt's error (-ECONNREFUSED,
 * -ENETUNREACH, ...), a resolution error (see gyre_getaddrinfo_cb), -ETIME
 * (the deadline passed) or -ECANCELED (gyre_connect_cancel). */
typedef void (*gyre_connect_cb)(gyre_connect_req *req, int result);

typedef struct gyre_connect_opts {
    uint64_t deadline_ns;      /* for the whole connect, resolution included; 0 = none */
    uint64_t attempt_delay_ns; /* RFC 8305 "Connection Attempt Delay"; 0 = 250 ms */
    int32_t family;            /* AF_UNSPEC (0), AF_INET or AF_INET6 */
    uint32_t reserved32;       /* must be 0 */
    uint64_t reserved[4];      /* must be 0 */
} gyre_connect_opts;

struct gyre_connect_req {
    void *data; /* the caller's */
    struct {
        uint32_t magic;  /* set by gyre_connect_req_init() */
        uint32_t byaddr; /* gyre_connect_addr(): one address, no resolution */
        gyre_loop *loop;
        gyre_connect_cb cb;
        gyre_getaddrinfo_req dns;
        struct addrinfo *res;
        const struct addrinfo *cursor[2]; /* next address of each family */
        gyre_timer stagger;
        gyre_timer deadline;
        struct {
            gyre_op op;
            int32_t fd;
            uint32_t state;
        } slot[GYRE_CONNECT_PARALLEL];
        uint64_t attempt_delay_ns;
        int32_t result;
        int32_t last_error;
        uint32_t pending; /* operations not yet called back */
        uint32_t turn;    /* which family goes next */
        uint32_t state;
        uint32_t attempts;
        struct sockaddr_storage addr; /* gyre_connect_addr's one address */
        socklen_t addrlen;
    } gyre__priv;
};

/* Prepares *req for its first use (any contents but `data` are
 * overwritten; `data` is kept). Call it once, not on a request in flight.
 * Returns 0, or -EINVAL (NULL).
 * Errors: -EINVAL. */
GYRE_API int gyre_connect_req_init(gyre_connect_req *req);

/* Resolves host and port (a number or a service name) on the DNS lane, then
 * connects TCP to the addresses found, IPv6 and IPv4 interleaved as RFC 8305
 * asks: the first attempt starts at once, each next one when the previous
 * has failed or after attempt_delay_ns without an answer, up to
 * GYRE_CONNECT_PARALLEL at a time. The first to connect wins; the others are
 * cancelled and their sockets closed before cb runs. cb runs exactly once.
 * Returns 0, -EINVAL (NULL arguments, req not prepared by
 * gyre_connect_req_init(), bad opts, names too long), -EBUSY (req in
 * flight), -ENOMEM. Loop thread; req must stay put until cb, and may be
 * reused or freed inside it.
 * Errors: -EINVAL, -EBUSY, -ENOMEM. */
GYRE_API int gyre_connect(gyre_loop *loop, gyre_connect_req *req, const char *host,
                          const char *port, const gyre_connect_opts *opts, gyre_connect_cb cb);
/* Connects a stream socket to one address, without the DNS lane: addr is
 * AF_INET, AF_INET6 or AF_UNIX (addrlen bytes, copied: the caller may reuse
 * it on return). The socket is made here (SOCK_STREAM, non-blocking,
 * close-on-exec) and connected by a connect operation; cb runs exactly once
 * with the connected socket or -errno (-ECONNREFUSED, -ENOENT for a Unix
 * path with no socket, -ETIME past opts->deadline_ns, -ECANCELED), as for
 * gyre_connect(). opts may be NULL; its family and attempt_delay_ns must be
 * 0 (there is nothing to choose between). gyre_connect_cancel() works as for
 * gyre_connect(). Returns 0, -EINVAL (NULL arguments, req not prepared by
 * gyre_connect_req_init(), an unknown family or addrlen, bad opts; on
 * select, a new socket numbered FD_SETSIZE or above), -EBUSY (req in
 * flight), or the -errno of socket(2) (-EMFILE, -ENFILE, -ENOMEM, -ENOBUFS,
 * -EAFNOSUPPORT), with nothing to call back. Loop thread; req must stay put
 * until cb, and may be reused or freed inside it.
 * Errors: -EINVAL, -EBUSY, -EMFILE, -ENFILE, -ENOMEM, -ENOBUFS, -EAFNOSUPPORT. */
GYRE_API int gyre_connect_addr(gyre_loop *loop, gyre_connect_req *req, const struct sockaddr *addr,
                               socklen_t addrlen, const gyre_connect_opts *opts,
                               gyre_connect_cb cb);

/* Ends req with -ECANCELED (unless it already has its result, which cb then
 * gets). cb still runs once, on a later iteration. Returns 0, -EINVAL (NULL,
 * or not prepared by gyre_connect_req_init()), -ENOENT (not in flight),
 * -EALREADY (already decided). Loop thread.
 * Errors: -EINVAL, -ENOENT, -EALREADY. */
GYRE_API int gyre_connect_cancel(gyre_connect_req *req);

/* ------------------------------------------------------------------------ */
/* UDP                                                                       */
/* ------------------------------------------------------------------------ */

/* gyre_udp_opts.flags */
#define GYRE_UDP_REUSEADDR 0x1u /* SO_REUSEADDR */
#define GYRE_UDP_REUSEPORT 0x2u /* SO_REUSEPORT */
#define GYRE_UDP_V6ONLY 0x4u    /* IPV6_V6ONLY */

/* gyre_udp_msg.flags on receive */
/* The datagram was longer than the receive buffer (gyre_udp_recv_start's
 * size): it was cut. The callback's result and msg->len are then the bytes
 * delivered, which equal the buffer size, never the datagram's length; the
 * rest of the datagram is discarded by the kernel and the next callback is
 * the next datagram. The same on every backend (receiving is recvmmsg on
 * readiness everywhere). Operations on a datagram socket report as their
 * syscalls, also the same on every backend: gyre_op_recv() and
 * gyre_op_recvmsg() give the bytes kept, the latter with MSG_TRUNC in
 * msg_flags, and MSG_TRUNC among the op's flags makes the result the
 * datagram's full length. */
#define GYRE_UDP_TRUNC 0x1u

/* Most datagrams one recvmmsg or sendmmsg call moves. */
#define GYRE_UDP_BATCH_MAX 64

/* One datagram. On receive gyre fills it and it is valid during the
 * callback only (data and addr point into memory gyre reuses). For
 * gyre_udp_try_send the caller fills it. */
typedef struct gyre_udp_msg {
    const void *data;
    uint32_t len;                /* bytes in data */
    uint32_t flags;              /* GYRE_UDP_TRUNC */
    const struct sockaddr *addr; /* source (receive) or destination (send) */
    socklen_t addrlen;
    uint32_t reserved;
} gyre_udp_msg;

typedef struct gyre_udp gyre_udp;
/* result >= 0: one datagram of result bytes (after a cut, the bytes kept:
 * see GYRE_UDP_TRUNC), described by msg. result < 0:
 * an error the socket reported (msg NULL): an ICMP error on a connected
 * socket (-ECONNREFUSED) and the like, after which receiving goes on, or a
 * fatal one (-EBADF, -ENOMEM) after which receiving has stopped. */
typedef void (*gyre_udp_recv_cb)(gyre_udp *u, int64_t result, const gyre_udp_msg *msg);
typedef void (*gyre_udp_close_cb)(gyre_udp *u);

typedef struct gyre_udp_opts {
    uint32_t flags;       /* GYRE_UDP_* */
    uint32_t rcvbuf;      /* SO_RCVBUF bytes, 0 = the system's (capped by rmem_max) */
    uint32_t sndbuf;      /* SO_SNDBUF bytes, 0 = the system's */
    uint32_t reserved32;  /* must be 0 */
    uint64_t reserved[4]; /* must be 0 */
} gyre_udp_opts;

struct gyre_udp {
    void *data; /* the caller's */
    struct {
        gyre_loop *loop;
        gyre_watch watch;
        gyre_timer resume; /* delivers what a stopped receive left over */
        gyre_op close;
        gyre_udp_recv_cb cb;
        gyre_udp_close_cb close_cb;
        void *mem; /* recv slots: one allocation at the first recv_start */
        uint32_t batch, size;
        uint32_t got, next; /* datagrams read in the batch, next to deliver */
        int32_t fd;
        uint32_t state;
    } gyre__priv;
};

typedef struct gyre_udp_send_req gyre_udp_send_req;
/* result: bytes sent (the whole datagram) or -errno. */
typedef void (*gyre_udp_send_cb)(gyre_udp_send_req *req, int64_t result);

struct gyre_udp_send_req {
    void *data; /* the caller's */
    struct {
        uint32_t magic; /* set by gyre_udp_send_req_init() */
        gyre_op op;
        struct msghdr msg;
        struct iovec iov;
        gyre_udp_send_cb cb;
        uint32_t active;
    } gyre__priv;
};

/* Makes a UDP socket of addr's family bound to addr (port 0: ephemeral).
 * opts may be NULL. Returns 0 (u is open until gyre_udp_close), -EINVAL,
 * or the -errno of socket, setsockopt or bind. On failure nothing is left
 * open. Loop thread; u must stay put until the close callback.
 * Errors: -EINVAL, -EADDRINUSE, -EADDRNOTAVAIL, -EACCES, -EAFNOSUPPORT, -EMFILE, -ENFILE,
 * -ENOBUFS, -ENOMEM. */
GYRE_API int gyre_udp_open(gyre_loop *loop, gyre_udp *u, const struct sockaddr *addr,
                           socklen_t addrlen, const gyre_udp_opts *opts);
/* The socket (owned by u: do not close it).
 * Errors: -EBADF. */
GYRE_API int gyre_udp_fd(const gyre_udp *u);
/* getsockname(2) into addr (*len in: its size, out: the address's). 0 or
 * -errno.
 * Errors: -EINVAL, -EBADF, -ENOBUFS. */
GYRE_API int gyre_udp_sockname(const gyre_udp *u, struct sockaddr *addr, socklen_t *len);

/* Starts receiving: cb runs once per datagram with its source address, read
 * `batch` (1..GYRE_UDP_BATCH_MAX) at a time with recvmmsg into buffers of
 * `size` bytes; a longer datagram is cut and flagged GYRE_UDP_TRUNC. The
 * buffers are allocated once, at the first start (or when batch or size
 * change), and reused for every datagram. On an active receive, replaces
 * cb. Returns 0, -EINVAL (batch 0 or over GYRE_UDP_BATCH_MAX, size 0 or over
 * GYRE_UDP_SIZE_MAX, NULL cb), -ENOMEM, -EBUSY (closing, or changing batch
 * or size while datagrams read before a stop wait to be delivered).
 * Errors: -EINVAL, -EBUSY, -ENOMEM. */
#define GYRE_UDP_SIZE_MAX 65536u
GYRE_API int gyre_udp_recv_start(gyre_udp *u, uint32_t batch, uint32_t size, gyre_udp_recv_cb cb);
/* Stops receiving; synchronous: no recv callback runs after it returns
 * (safe inside one). Datagrams already read in the current batch are kept
 * and delivered first after the next gyre_udp_recv_start. Returns 0.
 * Errors: -EINVAL. */
GYRE_API int gyre_udp_recv_stop(gyre_udp *u);

/* Connects u to addr (connect(2) on a datagram socket: nothing is sent):
 * from then on the socket sends to addr when a send names no address
 * (gyre_udp_send() with addr NULL, gyre_udp_try_send() with msg.addr NULL),
 * receives only from addr, and reports ICMP errors for it to the receive
 * callback (-ECONNREFUSED). addr NULL (or of family AF_UNSPEC) dissolves the
 * association; the socket keeps the address and port it had (Linux gives
 * back a port the kernel chose when a datagram socket disconnects: gyre
 * binds it again, and -EADDRINUSE says another socket took it meanwhile).
 * Returns 0, -EINVAL (NULL u, a family other than u's), -EBADF (u closing
 * or closed), or connect(2)'s -errno (-ENETUNREACH, -EADDRNOTAVAIL;
 * -EACCES for a broadcast address without SO_BROADCAST). Loop thread.
 * Errors: -EINVAL, -EBADF, -ENETUNREACH, -EADDRNOTAVAIL, -EACCES, -EADDRINUSE. */
GYRE_API int gyre_udp_connect(gyre_udp *u, const struct sockaddr *addr, socklen_t addrlen);

/* Prepares *req for its first use (any contents but `data` are
 * overwritten; `data` is kept). Call it once, not on a request in flight.
 * Returns 0, or -EINVAL (NULL).
 * Errors: -EINVAL. */
GYRE_API int gyre_udp_send_req_init(gyre_udp_send_req *req);

/* Sends one datagram of len bytes from buf to addr (NULL on a connected
 * socket) as an operation: cb runs once with the bytes sent or -errno. buf
 * and addr stay the caller's and must stay valid until cb. Returns 0, or
 * -EINVAL (NULL u, req or cb, req not prepared by gyre_udp_send_req_init()),
 * -EBUSY (req in flight), -EBADF (closing). Loop thread.
 * Errors: -EINVAL, -EBUSY, -EBADF, -ENOMEM. */
GYRE_API int gyre_udp_send(gyre_udp *u, gyre_udp_send_req *req, const void *buf, uint32_t len,
                           const struct sockaddr *addr, socklen_t addrlen, gyre_udp_send_cb cb);
/* Sends count datagrams now, without waiting, with one sendmmsg per
 * GYRE_UDP_BATCH_MAX of them. Returns how many went (the first n; 0 <= n
 * <= count), or -errno when none did (-EAGAIN: the socket buffer is full,
 * try again later; -EMSGSIZE, ...). The memory may be reused on return.
 * Loop thread.
 * Errors: -EINVAL, -EBADF, -EAGAIN, -EMSGSIZE, -ENOBUFS, -ENOMEM, -EACCES, -ECONNREFUSED,
 * -EDESTADDRREQ, -EHOSTUNREACH, -ENETUNREACH, -EPERM. */
GYRE_API int gyre_udp_try_send(gyre_udp *u, const gyre_udp_msg *msgs, uint32_t count);

/* Stops receiving and closes the socket; sends in flight complete first
 * with -ECANCELED (or their result). cb (may be NULL) runs once on a later
 * iteration; from then on u may be freed or reused. Returns 0 or -EALREADY.
 * Errors: -EINVAL, -EALREADY. */
GYRE_API int gyre_udp_close(gyre_udp *u, gyre_udp_close_cb cb);

#ifdef __cplusplus
}
#endif

#endif
