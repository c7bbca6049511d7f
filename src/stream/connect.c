/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* connect.c: gyre_connect, resolve then connect with Happy Eyeballs
 * (RFC 8305).
 *
 * States: RESOLVING (the DNS op is in flight), CONNECTING (attempts run in
 * up to GYRE_CONNECT_PARALLEL slots), DONE (the result is decided: the
 * winner's fd or an error; what is still in flight is cancelled and
 * awaited), IDLE (the callback ran or is running).
 *
 * Addresses are taken alternately from the two families, starting with the
 * family getaddrinfo ranked first (RFC 8305 section 4, with "First Address
 * Family Count" 1). A slot holds one attempt: a connect op, then, unless it
 * won, a close op on the same gyre_op (a close op makes the loop forget the
 * fd before its number can be reused). `pending` counts ops submitted and
 * not yet called back; the user's callback runs only when the result is
 * decided and pending is 0, so the request may be freed inside it and no
 * socket of a losing attempt outlives it.
 *
 * gyre_connect_addr() skips RESOLVING: its one address is copied into the
 * request (`addr`; `res` stays NULL, so next_addr() finds nothing more), the
 * first attempt starts inside
 * the call so that a socket(2) failure is returned rather than called back,
 * and the request is then CONNECTING like any other.
 */
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/un.h>

#include "gyre.h"
#include "sys/net.h"
#include "sys/sys.h"

#define DEFAULT_ATTEMPT_DELAY_NS UINT64_C(250000000)

enum {
    ST_IDLE = 0,
    ST_RESOLVING = 1,
    ST_CONNECTING = 2,
    ST_DONE = 3
};

enum {
    SLOT_FREE = 0,
    SLOT_CONNECTING = 1,
    SLOT_CLOSING = 2
};

#define P(r) (&(r)->gyre__priv)
#define NSLOTS GYRE_CONNECT_PARALLEL

/* "conn" in ASCII: what gyre_connect_req_init() stores, so that garbage is
 * told from a request gyre has seen. */
#define CONNECT_MAGIC 0x636f6e6eu

static int prepared(const gyre_connect_req *req)
{
    assert((req == NULL || P(req)->magic == CONNECT_MAGIC) &&
           "gyre_connect_req used without gyre_connect_req_init()");
    return req != NULL && P(req)->magic == CONNECT_MAGIC;
}

static void start_attempt(gyre_connect_req *req);

static void maybe_done(gyre_connect_req *req)
{
    if (P(req)->state != ST_DONE || P(req)->pending != 0)
        return;
    if (!P(req)->byaddr)
        gyre__sys_net_freeaddrinfo(P(req)->res);
    P(req)->res = NULL;
    gyre_timer_stop(&P(req)->deadline);
    P(req)->state = ST_IDLE;
    P(req)->cb(req, P(req)->result);
}

/* Decides the result and winds down everything else. The callback comes
 * from maybe_done(), here or when the last op is called back. */
static void finish(gyre_connect_req *req, int result)
{
    if (P(req)->state == ST_DONE || P(req)->state == ST_IDLE)
        return;
    P(req)->state = ST_DONE;
    P(req)->result = result;
    gyre_timer_stop(&P(req)->stagger);
    gyre_timer_stop(&P(req)->deadline);
    (void)gyre_getaddrinfo_cancel(&P(req)->dns);
    for (int i = 0; i < NSLOTS; i++) {
        if (P(req)->slot[i].state == SLOT_CONNECTING)
            (void)gyre_cancel(P(req)->loop, &P(req)->slot[i].op);
    }
    maybe_done(req);
}

/* The next address, alternating families: cursor[0] walks the addresses of
 * the first result's family, cursor[1] all the others. */
static const struct addrinfo *next_addr(gyre_connect_req *req)
{
    int first;

    if (P(req)->res == NULL)
        return NULL;
    first = P(req)->res->ai_family;

    for (int k = 0; k < 2; k++) {
        int c = (int)((P(req)->turn + (uint32_t)k) & 1);
        const struct addrinfo *ai = P(req)->cursor[c], *n;

        if (ai == NULL)
            continue;
        for (n = ai->ai_next; n != NULL && (n->ai_family == first) != (c == 0); n = n->ai_next)
            ;
        P(req)->cursor[c] = n;
        P(req)->turn = (uint32_t)c ^ 1;
        return ai;
    }
    return NULL;
}

static int addrs_left(const gyre_connect_req *req)
{
    return P(req)->cursor[0] != NULL || P(req)->cursor[1] != NULL;
}

static int connecting(const gyre_connect_req *req)
{
    for (int i = 0; i < NSLOTS; i++) {
        if (P(req)->slot[i].state == SLOT_CONNECTING)
            return 1;
    }
    return 0;
}

static int slot_of(const gyre_connect_req *req, const gyre_op *op)
{
    for (int i = 0; i < NSLOTS; i++) {
        if (&P(req)->slot[i].op == op)
            return i;
    }
    return -1;
}

static void closed_cb(gyre_op *op)
{
    gyre_connect_req *req = op->data;
    int i = slot_of(req, op);

    P(req)->slot[i].state = SLOT_FREE;
    P(req)->slot[i].fd = -1;
    P(req)->pending--;
    if (P(req)->state == ST_CONNECTING && !gyre_handle_active(&P(req)->stagger.base))
        start_attempt(req);
    maybe_done(req);
}

static void close_slot(gyre_connect_req *req, int i)
{
    int fd = P(req)->slot[i].fd;

    P(req)->slot[i].state = SLOT_CLOSING;
    gyre_op_close(&P(req)->slot[i].op, fd);
    if (gyre_submit(P(req)->loop, &P(req)->slot[i].op, closed_cb) == 0) {
        P(req)->pending++;
        return;
    }
    gyre__sys_close(fd); /* -ENOMEM only; the connect op is over */
    P(req)->slot[i].state = SLOT_FREE;
    P(req)->slot[i].fd = -1;
}

static void connected_cb(gyre_op *op)
{
    gyre_connect_req *req = op->data;
    int i = slot_of(req, op);
    int r = (int)op->result;

    P(req)->pending--;
    if (r == 0 && P(req)->state == ST_CONNECTING) {
        int fd = P(req)->slot[i].fd;

        P(req)->slot[i].state = SLOT_FREE;
        P(req)->slot[i].fd = -1;
        finish(req, fd);
        return;
    }
    close_slot(req, i);
    if (P(req)->state == ST_CONNECTING) {
        P(req)->last_error = r < 0 ? r : -ECANCELED;
        /* RFC 8305 section 5: a failed attempt starts the next at once. */
        start_attempt(req);
    }
    maybe_done(req);
}

static void stagger_cb(gyre_timer *t)
{
    start_attempt(t->base.data);
}

static int free_slot(const gyre_connect_req *req)
{
    for (int i = 0; i < NSLOTS; i++) {
        if (P(req)->slot[i].state == SLOT_FREE)
            return i;
    }
    return -1;
}

/* Makes a socket for addr in slot i and submits its connect: 0, or -errno
 * with nothing left open. addr must stay put until the connect ends. */
static int attempt(gyre_connect_req *req, int i, int protocol, const struct sockaddr *addr,
                   socklen_t len)
{
    int fd, r;

    fd = gyre__sys_net_socket(addr->sa_family, SOCK_STREAM, protocol);
    if (fd < 0)
        return fd;
    P(req)->slot[i].fd = fd;
    gyre_op_connect(&P(req)->slot[i].op, fd, addr, len);
    r = gyre_submit(P(req)->loop, &P(req)->slot[i].op, connected_cb);
    if (r < 0) {
        gyre__sys_close(fd);
        P(req)->slot[i].fd = -1;
        return r;
    }
    P(req)->slot[i].state = SLOT_CONNECTING;
    P(req)->pending++;
    P(req)->attempts++;
    return 0;
}

static void start_attempt(gyre_connect_req *req)
{
    while (P(req)->state == ST_CONNECTING) {
        const struct addrinfo *ai;
        int i = free_slot(req);
        int r;

        if (i < 0)
            return; /* a slot frees when an attempt ends */
        ai = next_addr(req);
        if (ai == NULL) {
            if (!connecting(req))
                finish(req, P(req)->last_error != 0 ? P(req)->last_error : -ENOENT);
            return;
        }
        r = attempt(req, i, ai->ai_protocol, ai->ai_addr, ai->ai_addrlen);
        if (r < 0) {
            P(req)->last_error = r;
            continue;
        }
        if (addrs_left(req))
            (void)gyre_timer_start(&P(req)->stagger, stagger_cb, P(req)->attempt_delay_ns, 0);
        return;
    }
}

static void resolved_cb(gyre_getaddrinfo_req *dns, int status, struct addrinfo *res)
{
    gyre_connect_req *req = dns->data;
    const struct addrinfo *ai;

    P(req)->pending--;
    if (P(req)->state != ST_RESOLVING) {
        gyre_freeaddrinfo(res);
        maybe_done(req);
        return;
    }
    if (status < 0) {
        finish(req, status);
        return;
    }
    P(req)->res = res;
    P(req)->cursor[0] = res;
    for (ai = res->ai_next; ai != NULL && ai->ai_family == res->ai_family; ai = ai->ai_next)
        ;
    P(req)->cursor[1] = ai;
    P(req)->turn = 0;
    P(req)->state = ST_CONNECTING;
    start_attempt(req);
}

static void deadline_cb(gyre_timer *t)
{
    finish(t->base.data, -ETIME);
}

static int check_opts(const gyre_connect_opts *o)
{
    if (o == NULL)
        return 0;
    if (o->reserved32 != 0 ||
        (o->family != AF_UNSPEC && o->family != AF_INET && o->family != AF_INET6))
        return -EINVAL;
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++) {
        if (o->reserved[i] != 0)
            return -EINVAL;
    }
    return 0;
}

GYRE_API int gyre_connect_req_init(gyre_connect_req *req)
{
    if (req == NULL)
        return -EINVAL;
    memset(&req->gyre__priv, 0, sizeof req->gyre__priv);
    P(req)->magic = CONNECT_MAGIC;
    return gyre_getaddrinfo_req_init(&P(req)->dns);
}

/* Resets an idle request for a new connect and starts its deadline. */
static int prepare(gyre_loop *loop, gyre_connect_req *req, const gyre_connect_opts *opts,
                   gyre_connect_cb cb)
{
    memset(&req->gyre__priv, 0, sizeof req->gyre__priv);
    P(req)->magic = CONNECT_MAGIC;
    (void)gyre_getaddrinfo_req_init(&P(req)->dns);
    P(req)->loop = loop;
    P(req)->cb = cb;
    P(req)->attempt_delay_ns = opts != NULL && opts->attempt_delay_ns != 0
                                   ? opts->attempt_delay_ns
                                   : DEFAULT_ATTEMPT_DELAY_NS;
    for (int i = 0; i < NSLOTS; i++) {
        P(req)->slot[i].fd = -1;
        P(req)->slot[i].op.data = req;
    }
    gyre_timer_init(loop, &P(req)->stagger);
    gyre_timer_init(loop, &P(req)->deadline);
    P(req)->stagger.base.data = req;
    P(req)->deadline.base.data = req;
    P(req)->dns.data = req;
    if (opts != NULL && opts->deadline_ns != 0)
        return gyre_timer_start(&P(req)->deadline, deadline_cb, opts->deadline_ns, 0);
    return 0;
}

GYRE_API int gyre_connect(gyre_loop *loop, gyre_connect_req *req, const char *host,
                          const char *port, const gyre_connect_opts *opts, gyre_connect_cb cb)
{
    struct addrinfo hints;
    int r;

    if (loop == NULL || !prepared(req) || host == NULL || port == NULL || cb == NULL ||
        check_opts(opts) < 0)
        return -EINVAL;
    if (P(req)->loop != NULL && P(req)->state != ST_IDLE)
        return -EBUSY;
    r = prepare(loop, req, opts, cb);
    if (r < 0)
        return r;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = opts != NULL ? opts->family : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    r = gyre_getaddrinfo(loop, &P(req)->dns, host, port, &hints, resolved_cb);
    if (r < 0) {
        gyre_timer_stop(&P(req)->deadline);
        return r;
    }
    P(req)->pending = 1;
    P(req)->state = ST_RESOLVING;
    return 0;
}

/* Whether addrlen fits what family needs: enough for the address, no more
 * than the storage the request copies it into. */
static int addrlen_ok(int family, socklen_t len)
{
    switch (family) {
    case AF_INET:
        return len >= sizeof(struct sockaddr_in) && len <= sizeof(struct sockaddr_storage);
    case AF_INET6:
        return len >= sizeof(struct sockaddr_in6) && len <= sizeof(struct sockaddr_storage);
    case AF_UNIX:
        return len > offsetof(struct sockaddr_un, sun_path) && len <= sizeof(struct sockaddr_un);
    default:
        return 0;
    }
}

GYRE_API int gyre_connect_addr(gyre_loop *loop, gyre_connect_req *req, const struct sockaddr *addr,
                               socklen_t addrlen, const gyre_connect_opts *opts, gyre_connect_cb cb)
{
    int r;

    if (loop == NULL || !prepared(req) || addr == NULL || cb == NULL || check_opts(opts) < 0 ||
        (opts != NULL && (opts->family != AF_UNSPEC || opts->attempt_delay_ns != 0)) ||
        !addrlen_ok(addr->sa_family, addrlen))
        return -EINVAL;
    if (P(req)->loop != NULL && P(req)->state != ST_IDLE)
        return -EBUSY;
    r = prepare(loop, req, opts, cb);
    if (r < 0)
        return r;
    /* The connect op reads the address until it ends: the copy in the
     * request, so the caller's may go at once. */
    memcpy(&P(req)->addr, addr, addrlen);
    P(req)->addrlen = addrlen;
    P(req)->byaddr = 1;
    r = attempt(req, 0, 0, (const struct sockaddr *)&P(req)->addr, addrlen);
    if (r < 0) {
        gyre_timer_stop(&P(req)->deadline);
        P(req)->state = ST_IDLE;
        return r;
    }
    P(req)->state = ST_CONNECTING;
    return 0;
}

GYRE_API int gyre_connect_cancel(gyre_connect_req *req)
{
    if (!prepared(req))
        return -EINVAL;
    if (P(req)->loop == NULL || P(req)->state == ST_IDLE)
        return -ENOENT;
    if (P(req)->state == ST_DONE)
        return -EALREADY;
    /* Never the callback inside this call: while not DONE, some op is always
     * in flight (a state is left only from a callback, which either starts
     * an op or decides), so finish() only cancels here. */
    finish(req, -ECANCELED);
    return 0;
}
