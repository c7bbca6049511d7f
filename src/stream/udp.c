/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* udp.c: gyre_udp, datagrams in batches: recvmmsg on readiness, sendmmsg
 * for gyre_udp_try_send, a sendmsg op for gyre_udp_send.
 *
 * Receive memory is one allocation made at the first recv_start: `batch`
 * mmsghdrs, iovecs and source addresses, then `batch` buffers of `size`
 * bytes. Every datagram after that lands in it: nothing is allocated per
 * datagram. A batch read by one recvmmsg is delivered in order; `got` and
 * `next` say how far, so a receive stopped in the middle of a batch keeps
 * the rest (already taken from the kernel) for the next recv_start, which
 * delivers it from a zero timer, never inside the start call.
 *
 * The readiness watch is level-triggered, and one readiness event reads at
 * most READ_ROUNDS batches, so a flooded socket cannot hold the loop.
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "gyre.h"
#include "sys/net.h"
#include "sys/sys.h"

#define READ_ROUNDS 4

enum {
    ST_OPEN = 1,
    ST_RECEIVING = 2,
    ST_CLOSING = 3,
    ST_CLOSED = 4
};

#define P(u) (&(u)->gyre__priv)

/* "udps" in ASCII: what gyre_udp_send_req_init() stores, so that garbage is
 * told from a request gyre has seen. */
#define SEND_MAGIC 0x75647073u

struct slots {
    struct mmsghdr *hdr;
    struct iovec *iov;
    struct sockaddr_storage *addr;
    unsigned char *buf;
};

static struct slots slots_of(const gyre_udp *u)
{
    struct slots s;
    unsigned char *m = P(u)->mem;
    size_t b = P(u)->batch;

    s.hdr = (struct mmsghdr *)(void *)m;
    s.iov = (struct iovec *)(void *)(m + b * sizeof *s.hdr);
    s.addr = (struct sockaddr_storage *)(void *)(m + b * (sizeof *s.hdr + sizeof *s.iov));
    s.buf = m + b * (sizeof *s.hdr + sizeof *s.iov + sizeof *s.addr);
    return s;
}

/* Delivers the datagrams of the current batch not yet delivered, while the
 * receive stays on (a callback may stop it, or close u). */
static void deliver(gyre_udp *u)
{
    struct slots s = slots_of(u);

    while (P(u)->next < P(u)->got && P(u)->state == ST_RECEIVING) {
        uint32_t i = P(u)->next++;
        gyre_udp_msg m;

        memset(&m, 0, sizeof m);
        m.data = s.buf + (size_t)i * P(u)->size;
        m.len = s.hdr[i].msg_len;
        m.flags = (s.hdr[i].msg_hdr.msg_flags & MSG_TRUNC) ? GYRE_UDP_TRUNC : 0;
        m.addr = (const struct sockaddr *)&s.addr[i];
        m.addrlen = s.hdr[i].msg_hdr.msg_namelen;
        P(u)->cb(u, m.len, &m);
    }
}

static int is_fatal(int r)
{
    return r == -EBADF || r == -ENOTSOCK || r == -EINVAL || r == -EFAULT || r == -ENOMEM;
}

static void readable(gyre_watch *w, uint32_t events)
{
    gyre_udp *u = w->base.data;
    struct slots s = slots_of(u);

    (void)events;
    for (int round = 0; round < READ_ROUNDS && P(u)->state == ST_RECEIVING; round++) {
        int n;

        for (uint32_t i = 0; i < P(u)->batch; i++) {
            s.iov[i].iov_base = s.buf + (size_t)i * P(u)->size;
            s.iov[i].iov_len = P(u)->size;
            memset(&s.hdr[i], 0, sizeof s.hdr[i]);
            s.hdr[i].msg_hdr.msg_name = &s.addr[i];
            s.hdr[i].msg_hdr.msg_namelen = sizeof s.addr[i];
            s.hdr[i].msg_hdr.msg_iov = &s.iov[i];
            s.hdr[i].msg_hdr.msg_iovlen = 1;
        }
        do
            n = gyre__sys_net_recvmmsg(P(u)->fd, s.hdr, P(u)->batch, 0);
        while (n == -EINTR);
        if (n == -EAGAIN)
            return;
        if (n < 0) {
            if (is_fatal(n)) {
                gyre_watch_stop(&P(u)->watch);
                P(u)->state = ST_OPEN;
            }
            P(u)->cb(u, n, NULL);
            continue;
        }
        P(u)->got = (uint32_t)n;
        P(u)->next = 0;
        deliver(u);
        if ((uint32_t)n < P(u)->batch)
            return; /* the socket is drained */
    }
}

static void resume_cb(gyre_timer *t)
{
    deliver(t->base.data);
}

static int check_opts(const gyre_udp_opts *o)
{
    if (o == NULL)
        return 0;
    if (o->reserved32 != 0 ||
        (o->flags & ~(GYRE_UDP_REUSEADDR | GYRE_UDP_REUSEPORT | GYRE_UDP_V6ONLY)) != 0 ||
        o->rcvbuf > INT32_MAX || o->sndbuf > INT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++) {
        if (o->reserved[i] != 0)
            return -EINVAL;
    }
    return 0;
}

static int set_opts(int fd, int family, const gyre_udp_opts *o)
{
    int r = 0;

    if (o == NULL)
        return 0;
    if (o->flags & GYRE_UDP_REUSEADDR)
        r = gyre__sys_net_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (r == 0 && (o->flags & GYRE_UDP_REUSEPORT))
        r = gyre__sys_net_setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (r == 0 && family == AF_INET6)
        r = gyre__sys_net_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
                                     (o->flags & GYRE_UDP_V6ONLY) != 0);
    if (r == 0 && o->rcvbuf != 0)
        r = gyre__sys_net_setsockopt(fd, SOL_SOCKET, SO_RCVBUF, (int)o->rcvbuf);
    if (r == 0 && o->sndbuf != 0)
        r = gyre__sys_net_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, (int)o->sndbuf);
    return r;
}

GYRE_API int gyre_udp_open(gyre_loop *loop, gyre_udp *u, const struct sockaddr *addr,
                           socklen_t addrlen, const gyre_udp_opts *opts)
{
    void *data;
    int fd, r;

    if (loop == NULL || u == NULL || addr == NULL || check_opts(opts) < 0 ||
        (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
        return -EINVAL;
    fd = gyre__sys_net_socket(addr->sa_family, SOCK_DGRAM, 0);
    if (fd < 0)
        return fd;
    r = set_opts(fd, addr->sa_family, opts);
    if (r == 0)
        r = gyre__sys_net_bind(fd, addr, addrlen);
    if (r < 0) {
        gyre__sys_close(fd);
        return r;
    }
    data = u->data;
    memset(&u->gyre__priv, 0, sizeof u->gyre__priv);
    u->data = data;
    gyre_watch_init(loop, &P(u)->watch, fd);
    P(u)->watch.base.data = u;
    gyre_timer_init(loop, &P(u)->resume);
    P(u)->resume.base.data = u;
    P(u)->close.data = u;
    P(u)->loop = loop;
    P(u)->fd = fd;
    P(u)->state = ST_OPEN;
    return 0;
}

GYRE_API int gyre_udp_fd(const gyre_udp *u)
{
    if (u == NULL || P(u)->state == 0 || P(u)->state >= ST_CLOSING)
        return -EBADF;
    return P(u)->fd;
}

GYRE_API int gyre_udp_sockname(const gyre_udp *u, struct sockaddr *addr, socklen_t *len)
{
    int fd = gyre_udp_fd(u);

    if (fd < 0)
        return fd;
    if (addr == NULL || len == NULL)
        return -EINVAL;
    return gyre__sys_net_getsockname(fd, addr, len);
}

GYRE_API int gyre_udp_recv_start(gyre_udp *u, uint32_t batch, uint32_t size, gyre_udp_recv_cb cb)
{
    int r;

    if (u == NULL || cb == NULL || batch == 0 || batch > GYRE_UDP_BATCH_MAX || size == 0 ||
        size > GYRE_UDP_SIZE_MAX)
        return -EINVAL;
    if (P(u)->state != ST_OPEN && P(u)->state != ST_RECEIVING)
        return -EBUSY;
    if (P(u)->mem == NULL || batch != P(u)->batch || size != P(u)->size) {
        size_t per =
            sizeof(struct mmsghdr) + sizeof(struct iovec) + sizeof(struct sockaddr_storage) + size;
        void *mem;

        if (P(u)->next < P(u)->got)
            return -EBUSY;
        mem = gyre__malloc(per * batch);
        if (mem == NULL)
            return -ENOMEM;
        gyre__free(P(u)->mem);
        P(u)->mem = mem;
        P(u)->batch = batch;
        P(u)->size = size;
        P(u)->got = P(u)->next = 0;
    }
    P(u)->cb = cb;
    if (P(u)->state == ST_RECEIVING)
        return 0;
    r = gyre_watch_start(&P(u)->watch, GYRE_IN, readable);
    if (r < 0)
        return r;
    if (P(u)->next < P(u)->got && gyre_timer_start(&P(u)->resume, resume_cb, 0, 0) < 0) {
        gyre_watch_stop(&P(u)->watch);
        return -ENOMEM;
    }
    P(u)->state = ST_RECEIVING;
    return 0;
}

GYRE_API int gyre_udp_recv_stop(gyre_udp *u)
{
    if (u == NULL)
        return -EINVAL;
    if (P(u)->state == ST_RECEIVING) {
        gyre_watch_stop(&P(u)->watch);
        gyre_timer_stop(&P(u)->resume);
        P(u)->state = ST_OPEN;
    }
    return 0;
}

GYRE_API int gyre_udp_connect(gyre_udp *u, const struct sockaddr *addr, socklen_t addrlen)
{
    struct sockaddr unspec;
    struct sockaddr_storage own;
    socklen_t ownlen = sizeof own;
    int r;

    if (u == NULL)
        return -EINVAL;
    if (P(u)->state != ST_OPEN && P(u)->state != ST_RECEIVING)
        return -EBADF;
    r = gyre__sys_net_getsockname(P(u)->fd, (struct sockaddr *)&own, &ownlen);
    if (r < 0)
        return r;
    if (addr == NULL || addr->sa_family == AF_UNSPEC) {
        struct sockaddr_storage now;
        socklen_t nowlen = sizeof now;

        /* connect(2) to AF_UNSPEC dissolves a datagram association, but
         * Linux's udp_disconnect() also gives back a port the kernel chose
         * (bind to port 0), and the address with it: the socket would no
         * longer receive at the address the program handed out. Bind it
         * again to what it had. */
        memset(&unspec, 0, sizeof unspec);
        unspec.sa_family = AF_UNSPEC;
        r = gyre__sys_net_connect(P(u)->fd, &unspec, sizeof unspec);
        if (r == 0)
            r = gyre__sys_net_getsockname(P(u)->fd, (struct sockaddr *)&now, &nowlen);
        if (r == 0 && (nowlen != ownlen || memcmp(&now, &own, ownlen) != 0))
            r = gyre__sys_net_bind(P(u)->fd, (struct sockaddr *)&own, ownlen);
        return r;
    }
    /* An IPv4 address on an IPv6 socket would be a mapped-address question
     * connect(2) answers differently per socket option: ask for the
     * family the socket has. */
    if (addr->sa_family != own.ss_family)
        return -EINVAL;
    return gyre__sys_net_connect(P(u)->fd, addr, addrlen);
}

GYRE_API int gyre_udp_send_req_init(gyre_udp_send_req *req)
{
    if (req == NULL)
        return -EINVAL;
    memset(&req->gyre__priv, 0, sizeof req->gyre__priv);
    req->gyre__priv.magic = SEND_MAGIC;
    return 0;
}

static void sent_cb(gyre_op *op)
{
    gyre_udp_send_req *req = op->data;

    req->gyre__priv.active = 0;
    req->gyre__priv.cb(req, op->result);
}

GYRE_API int gyre_udp_send(gyre_udp *u, gyre_udp_send_req *req, const void *buf, uint32_t len,
                           const struct sockaddr *addr, socklen_t addrlen, gyre_udp_send_cb cb)
{
    int r;

    assert((req == NULL || req->gyre__priv.magic == SEND_MAGIC) &&
           "gyre_udp_send_req used without gyre_udp_send_req_init()");
    if (u == NULL || req == NULL || req->gyre__priv.magic != SEND_MAGIC || cb == NULL ||
        (buf == NULL && len != 0))
        return -EINVAL;
    if (P(u)->state != ST_OPEN && P(u)->state != ST_RECEIVING)
        return -EBADF;
    if (req->gyre__priv.active)
        return -EBUSY;
    memset(&req->gyre__priv.msg, 0, sizeof req->gyre__priv.msg);
    req->gyre__priv.iov.iov_base = (void *)(uintptr_t)buf;
    req->gyre__priv.iov.iov_len = len;
    req->gyre__priv.msg.msg_name = (void *)(uintptr_t)addr;
    req->gyre__priv.msg.msg_namelen = addr != NULL ? addrlen : 0;
    req->gyre__priv.msg.msg_iov = &req->gyre__priv.iov;
    req->gyre__priv.msg.msg_iovlen = 1;
    req->gyre__priv.cb = cb;
    req->gyre__priv.op.data = req;
    gyre_op_sendmsg(&req->gyre__priv.op, P(u)->fd, &req->gyre__priv.msg, 0);
    r = gyre_submit(P(u)->loop, &req->gyre__priv.op, sent_cb);
    if (r == 0)
        req->gyre__priv.active = 1;
    return r;
}

GYRE_API int gyre_udp_try_send(gyre_udp *u, const gyre_udp_msg *msgs, uint32_t count)
{
    struct mmsghdr hdr[GYRE_UDP_BATCH_MAX];
    struct iovec iov[GYRE_UDP_BATCH_MAX];
    uint32_t sent = 0;

    if (u == NULL || (msgs == NULL && count != 0) || count > INT32_MAX)
        return -EINVAL;
    if (P(u)->state != ST_OPEN && P(u)->state != ST_RECEIVING)
        return -EBADF;
    while (sent < count) {
        uint32_t n = count - sent < GYRE_UDP_BATCH_MAX ? count - sent : GYRE_UDP_BATCH_MAX;
        int r;

        for (uint32_t i = 0; i < n; i++) {
            const gyre_udp_msg *m = &msgs[sent + i];

            iov[i].iov_base = (void *)(uintptr_t)m->data;
            iov[i].iov_len = m->len;
            memset(&hdr[i], 0, sizeof hdr[i]);
            hdr[i].msg_hdr.msg_name = (void *)(uintptr_t)m->addr;
            hdr[i].msg_hdr.msg_namelen = m->addr != NULL ? m->addrlen : 0;
            hdr[i].msg_hdr.msg_iov = &iov[i];
            hdr[i].msg_hdr.msg_iovlen = 1;
        }
        do
            r = gyre__sys_net_sendmmsg(P(u)->fd, hdr, n, 0);
        while (r == -EINTR);
        if (r < 0)
            return sent > 0 ? (int)sent : r;
        sent += (uint32_t)r;
        if ((uint32_t)r < n)
            break;
    }
    return (int)sent;
}

static void closed_cb(gyre_op *op)
{
    gyre_udp *u = op->data;

    gyre__free(P(u)->mem);
    P(u)->mem = NULL;
    P(u)->state = ST_CLOSED;
    if (P(u)->close_cb != NULL)
        P(u)->close_cb(u);
}

GYRE_API int gyre_udp_close(gyre_udp *u, gyre_udp_close_cb cb)
{
    int r;

    if (u == NULL || P(u)->state == 0)
        return -EINVAL;
    if (P(u)->state >= ST_CLOSING)
        return -EALREADY;
    gyre_udp_recv_stop(u);
    P(u)->state = ST_CLOSING;
    P(u)->close_cb = cb;
    /* A close op: sends in flight on the fd end first (-ECANCELED), and the
     * loop forgets the fd while its number still names the socket. */
    gyre_op_close(&P(u)->close, P(u)->fd);
    r = gyre_submit(P(u)->loop, &P(u)->close, closed_cb);
    if (r < 0) {
        /* -ENOMEM only: close directly, and call back from a nop. */
        gyre__sys_close(P(u)->fd);
        gyre_op_nop(&P(u)->close);
        if (gyre_submit(P(u)->loop, &P(u)->close, closed_cb) < 0) {
            gyre__free(P(u)->mem);
            P(u)->mem = NULL;
            P(u)->state = ST_CLOSED;
        }
    }
    return 0;
}
