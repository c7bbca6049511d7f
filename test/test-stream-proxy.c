/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-stream-proxy.c: a TCP proxy made of gyre_streams, as a program would
 * write one, under clients that reset mid-transfer.
 *
 * One loop runs both the proxy and the echo server behind it: the proxy
 * accepts a client, connects upstream to the echo server and relays bytes
 * both ways; the echo server sends back what it reads. Every relay copies a
 * chunk into its own allocation and queues it as a stream write, stops
 * reading its source while the destination has more than PX_HIGH bytes
 * queued and starts again at PX_LOW, so a client that does not read holds
 * back only its own connection. An end of stream is passed on as a
 * shutdown, an error closes the whole connection (both streams).
 *
 * The clients are plain non-blocking sockets driven by poll() in a thread:
 * healthy ones send PX_BYTES, half-close and read until end of stream, and
 * must get back exactly their bytes (length and FNV hash); resetters use a
 * small receive buffer, so the proxy has a write to them in flight, and
 * close with SO_LINGER 0 after a seeded number of bytes. That is the path
 * of issue 11's defect 2 on io_uring: gyre_stream_close() cancelling a
 * write whose completion is already in the batch being dispatched.
 *
 * Asserted: each healthy client's bytes intact; every connection, reset or
 * not, accepted once by each server and closed (both streams, close
 * callback); every write completed once; every pool buffer back; the
 * process's fd count back to its baseline; gyre_loop_free() == 0.
 *
 * scripts/proxy-asan-loop.sh runs it 100 times in a row under ASan on
 * io_uring.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "test-net-echo.h"

#define PX_HEALTHY 200
#define PX_RESETTERS 40
#define PX_BYTES (1u << 20)
#define PX_HIGH (256u << 10)
#define PX_LOW (64u << 10)
#define PX_POOL_COUNT 256
#define PX_POOL_SIZE 16384
/* The pattern the clients send: a table of a prime length, read from an
 * offset that depends on the client, so no two clients send the same bytes
 * and a misplaced chunk changes the hash. */
#define PX_PATTERN 65521
/* Wall-clock bound of the client thread (a failure, not a measurement). */
#define PX_CLIENT_DEADLINE_S 100

struct px_conn;

/* One stream and the relay that reads it. */
struct px_side {
    gyre_stream s; /* first: the callbacks find the side from the stream */
    struct px_conn *c;
    struct px_side *dst; /* where what it reads goes (itself in the echo server) */
    uint64_t queued;     /* bytes queued for writing on this stream */
    int reading, eof, shut_asked, shut_done;
};

/* A proxied connection (two sides: client, upstream) or an echo server
 * connection (one side). */
struct px_conn {
    struct px_side side[2];
    int nsides;
    int closing, closed;
};

struct px_chunk {
    gyre_stream_write_req req;
    struct iovec iov;
    struct px_side *src, *dst;
    char data[];
};

static struct px {
    gyre_loop *loop;
    gyre_bufpool *pool;
    struct sockaddr_in proxy_addr, echo_addr;
    int proxy_lfd, echo_lfd;
    gyre_op proxy_accept, echo_accept;
    int accepts_active;
    int stopping;
    gyre_async done_async;
    atomic_int clients_done;
    int proxy_accepted, echo_accepted;
    int conns_open, conns_closed;
    int writes_queued, writes_done;
} px;

static void px_on_read(gyre_stream *s, int64_t nread, void *buf, const int *fds, uint32_t nfds);

static void px_on_close(gyre_stream *s)
{
    struct px_conn *c = ((struct px_side *)s)->c;

    if (++c->closed < c->nsides)
        return;
    px.conns_open--;
    px.conns_closed++;
    test_poison_free(c, sizeof *c);
}

/* Ends the whole connection: every stream of it closes, pending writes
 * complete with -ECANCELED. */
static void px_conn_close(struct px_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    for (int i = 0; i < c->nsides; i++)
        ASSERT_EQ(gyre_stream_close(&c->side[i].s, px_on_close), 0);
}

/* Both directions ended cleanly: close. */
static void px_conn_maybe_finish(struct px_conn *c)
{
    for (int i = 0; i < c->nsides; i++)
        if (!c->side[i].eof || !c->side[i].shut_done)
            return;
    px_conn_close(c);
}

static void px_on_shutdown(gyre_stream *s, int status)
{
    struct px_side *y = (struct px_side *)s;

    y->shut_done = 1;
    if (status < 0 && status != -ECANCELED)
        px_conn_close(y->c);
    else if (status == 0)
        px_conn_maybe_finish(y->c);
}

/* The source of y reached end of stream: y's peer gets it once y's writes
 * are out. */
static void px_shut(struct px_side *y)
{
    if (y->shut_asked || y->c->closing)
        return;
    y->shut_asked = 1;
    if (gyre_stream_shutdown(&y->s, px_on_shutdown) < 0)
        px_conn_close(y->c);
}

static void px_read_start(struct px_side *x)
{
    ASSERT_EQ(gyre_stream_read_start(&x->s, px.pool, px_on_read), 0);
    x->reading = 1;
}

static void px_on_write(gyre_stream_write_req *req, int status)
{
    struct px_chunk *k = req->data;
    struct px_side *src = k->src, *dst = k->dst;

    px.writes_done++;
    dst->queued -= k->iov.iov_len;
    free(k);
    if (status < 0) {
        if (status != -ECANCELED)
            px_conn_close(dst->c);
        return;
    }
    if (!src->c->closing && !src->reading && !src->eof && dst->queued <= PX_LOW)
        px_read_start(src);
}

static void px_on_read(gyre_stream *s, int64_t nread, void *buf, const int *fds, uint32_t nfds)
{
    struct px_side *x = (struct px_side *)s;
    struct px_chunk *k;

    ASSERT_TRUE(fds == NULL);
    ASSERT_EQ(nfds, 0);
    if (nread <= 0) {
        x->reading = 0;
        if (nread == 0) {
            x->eof = 1;
            px_shut(x->dst);
        } else if (nread != -ECANCELED) {
            px_conn_close(x->c);
        }
        return;
    }
    if (x->c->closing)
        return;
    k = malloc(sizeof *k + (size_t)nread);
    ASSERT_TRUE(k != NULL);
    memcpy(k->data, buf, (size_t)nread);
    k->iov = (struct iovec){k->data, (size_t)nread};
    k->src = x;
    k->dst = x->dst;
    k->req.data = k;
    if (gyre_stream_write(&x->dst->s, &k->req, &k->iov, 1, px_on_write) < 0) {
        free(k);
        px_conn_close(x->c);
        return;
    }
    px.writes_queued++;
    x->dst->queued += (uint64_t)nread;
    /* Data the kernel had already handed over still arrives after a stop,
     * so this may run with reading already 0. */
    if (x->reading && x->dst->queued > PX_HIGH) {
        ASSERT_EQ(gyre_stream_read_stop(&x->s), 0);
        x->reading = 0;
    }
}

static void px_side_init(struct px_conn *c, struct px_side *x, int fd, struct px_side *dst)
{
    int fl = fcntl(fd, F_GETFL);

    ASSERT_SYS(fl);
    ASSERT_SYS(fcntl(fd, F_SETFL, fl | O_NONBLOCK));
    x->c = c;
    x->dst = dst;
    ASSERT_EQ(gyre_stream_init(px.loop, &x->s, fd, 0), 0);
    px_read_start(x);
}

static struct px_conn *px_conn_new(int nsides)
{
    struct px_conn *c = calloc(1, sizeof *c);

    ASSERT_TRUE(c != NULL);
    c->nsides = nsides;
    px.conns_open++;
    return c;
}

static void px_accept_again(gyre_op *op, gyre_op_cb cb)
{
    if (op->flags & GYRE_OP_MORE)
        return;
    if (px.stopping) {
        px.accepts_active--;
        return;
    }
    ASSERT_EQ(gyre_submit(px.loop, op, cb), 0);
}

static void px_on_echo_accept(gyre_op *op)
{
    struct px_conn *c;

    px_accept_again(op, px_on_echo_accept);
    if (op->result < 0) {
        if (op->result != -ECANCELED)
            test_fail(__FILE__, __LINE__, "echo accept: %s", gyre_strerror((int)op->result));
        return;
    }
    px.echo_accepted++;
    c = px_conn_new(1);
    px_side_init(c, &c->side[0], (int)op->result, &c->side[0]);
}

static void px_on_proxy_accept(gyre_op *op)
{
    struct px_conn *c;
    int up;

    px_accept_again(op, px_on_proxy_accept);
    if (op->result < 0) {
        if (op->result != -ECANCELED)
            test_fail(__FILE__, __LINE__, "proxy accept: %s", gyre_strerror((int)op->result));
        return;
    }
    px.proxy_accepted++;
    /* A blocking connect on loopback completes from the echo listener's
     * backlog (SOMAXCONN deep), without the loop accepting first. */
    up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_SYS(up);
    ASSERT_SYS(connect(up, (struct sockaddr *)&px.echo_addr, sizeof px.echo_addr));
    c = px_conn_new(2);
    px_side_init(c, &c->side[0], (int)op->result, &c->side[1]);
    px_side_init(c, &c->side[1], up, &c->side[0]);
}

static int px_listener(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    ASSERT_SYS(fd);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_SYS(bind(fd, (struct sockaddr *)addr, sizeof *addr));
    /* Every client may connect before the loop accepts any. */
    ASSERT_SYS(listen(fd, SOMAXCONN));
    ASSERT_SYS(getsockname(fd, (struct sockaddr *)addr, &len));
    return fd;
}

/* --- the clients (their own thread) --- */

static unsigned char px_pattern[PX_PATTERN];

struct px_client {
    int fd;
    int resetter;
    int shut;   /* healthy: sent everything and half-closed */
    int done;   /* healthy: end of stream read; resetter: reset */
    int failed; /* errno of an unexpected failure, or -1 for a short stream */
    uint64_t total;
    uint64_t sent, recvd;
    uint64_t hash_sent, hash_recvd;
    size_t start; /* where in px_pattern its bytes begin */
};

struct px_clients {
    struct px_client *c;
    size_t n;
    const char *error; /* set when the thread gave up */
};

static void px_client_connect(struct px_client *c)
{
    int small = 4096;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->failed = errno;
        return;
    }
    /* A resetter reads slowly: the proxy then has writes to it waiting in
     * the kernel when the reset comes. Set before connect, so the window
     * is small from the start. */
    if (c->resetter)
        (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (connect(c->fd, (struct sockaddr *)&px.proxy_addr, sizeof px.proxy_addr) != 0 ||
        fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0)
        c->failed = errno;
}

static void px_client_send(struct px_client *c)
{
    size_t at = (size_t)((c->start + c->sent) % PX_PATTERN);
    size_t len = PX_PATTERN - at;
    ssize_t n;

    if (len > c->total - c->sent)
        len = (size_t)(c->total - c->sent);
    n = send(c->fd, px_pattern + at, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN)
            c->failed = errno;
        return;
    }
    c->hash_sent = test_fnv(c->hash_sent, px_pattern + at, (size_t)n);
    c->sent += (uint64_t)n;
    if (c->sent < c->total)
        return;
    if (c->resetter) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
            c->failed = errno;
        close(c->fd);
        c->fd = -1;
        c->done = 1;
    } else if (shutdown(c->fd, SHUT_WR) != 0) {
        c->failed = errno;
    } else {
        c->shut = 1;
    }
}

static void px_client_recv(struct px_client *c)
{
    static char buf[65536];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);

    if (n < 0) {
        if (errno != EAGAIN)
            c->failed = errno;
        return;
    }
    if (n == 0) {
        if (!c->shut)
            c->failed = -1;
        close(c->fd);
        c->fd = -1;
        c->done = 1;
        return;
    }
    c->hash_recvd = test_fnv(c->hash_recvd, buf, (size_t)n);
    c->recvd += (uint64_t)n;
}

static void *px_client_thread(void *arg)
{
    struct px_clients *cs = arg;
    struct pollfd *p = calloc(cs->n, sizeof *p);
    size_t *idx = calloc(cs->n, sizeof *idx);
    time_t deadline = time(NULL) + PX_CLIENT_DEADLINE_S;
    size_t i, np;

    if (!p || !idx) {
        cs->error = "out of memory";
        goto out;
    }
    for (i = 0; i < cs->n; i++)
        px_client_connect(&cs->c[i]);
    for (;;) {
        np = 0;
        for (i = 0; i < cs->n; i++) {
            struct px_client *c = &cs->c[i];

            if (c->done || c->failed)
                continue;
            p[np] = (struct pollfd){.fd = c->fd, .events = POLLIN};
            if (c->sent < c->total)
                p[np].events |= POLLOUT;
            idx[np++] = i;
        }
        if (np == 0)
            break;
        if (time(NULL) > deadline) {
            cs->error = "the transfers did not end within the deadline";
            break;
        }
        if (poll(p, np, 1000) < 0 && errno != EINTR) {
            cs->error = "poll failed";
            break;
        }
        for (i = 0; i < np; i++) {
            struct px_client *c = &cs->c[idx[i]];

            if (p[i].revents & POLLOUT)
                px_client_send(c);
            if (!c->done && !c->failed && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                px_client_recv(c);
        }
    }
out:
    for (i = 0; i < cs->n; i++)
        if (cs->c[i].fd >= 0)
            close(cs->c[i].fd);
    free(p);
    free(idx);
    atomic_store(&px.clients_done, 1);
    gyre_async_send(&px.done_async);
    return NULL;
}

static void px_on_done(gyre_async *a)
{
    (void)a;
}

void test_stream_proxy_resets(void)
{
    size_t n_healthy = test_scale(PX_HEALTHY), n_reset = test_scale(PX_RESETTERS), i;
    size_t n = n_healthy + n_reset;
    struct px_clients cs = {0};
    uint64_t seed = 11;
    pthread_t thread;
    int base_fds;

    /* Four fds per connection (client, proxy's two, echo server's) plus the
     * loop's own must stay below FD_SETSIZE on select. */
    if (4 * n + 64 > FD_SETSIZE && test_backend_is("select")) {
        n = (FD_SETSIZE - 64) / 4;
        n_healthy = n - n_reset;
    }
    ASSERT_GE(test_nofile(4 * n + 64), 4 * n + 64);
    for (i = 0; i < PX_PATTERN; i++)
        px_pattern[i] = (unsigned char)test_rand(&seed);

    base_fds = count_fds();
    memset(&px, 0, sizeof px);
    px.loop = test_loop_new();
    test_loop_guard(px.loop, SEC(PX_CLIENT_DEADLINE_S + 20));
    ASSERT_EQ(gyre_bufpool_new(px.loop, &px.pool, PX_POOL_COUNT, PX_POOL_SIZE), 0);
    ASSERT_EQ(gyre_async_init(px.loop, &px.done_async, px_on_done), 0);
    px.proxy_lfd = px_listener(&px.proxy_addr);
    px.echo_lfd = px_listener(&px.echo_addr);
    gyre_op_accept_multishot(&px.proxy_accept, px.proxy_lfd);
    gyre_op_accept_multishot(&px.echo_accept, px.echo_lfd);
    ASSERT_EQ(gyre_submit(px.loop, &px.proxy_accept, px_on_proxy_accept), 0);
    ASSERT_EQ(gyre_submit(px.loop, &px.echo_accept, px_on_echo_accept), 0);
    px.accepts_active = 2;

    /* Resetters spread among the healthy clients, each resetting after its
     * own seeded count: some while still sending, some with the echo of
     * hundreds of KiB waiting for them. */
    cs.n = n;
    cs.c = calloc(n, sizeof *cs.c);
    ASSERT_TRUE(cs.c != NULL);
    for (i = 0; i < n; i++) {
        struct px_client *c = &cs.c[i];

        c->fd = -1;
        c->resetter = i % (n / n_reset) == 0 && i / (n / n_reset) < n_reset;
        c->total = c->resetter ? 16384 + test_rand(&seed) % (512u << 10) : PX_BYTES;
        c->start = (size_t)(test_rand(&seed) % PX_PATTERN);
        c->hash_sent = c->hash_recvd = TEST_FNV_INIT;
    }
    ASSERT_EQ(pthread_create(&thread, NULL, px_client_thread, &cs), 0);
    while (!atomic_load(&px.clients_done) || px.conns_open > 0 || px.proxy_accepted < (int)n ||
           px.echo_accepted < (int)n)
        ASSERT_GE(gyre_loop_run(px.loop, GYRE_RUN_ONCE), 0);
    ASSERT_EQ(pthread_join(thread, NULL), 0);
    if (cs.error)
        FAIL(cs.error);

    {
        size_t resets = 0;

        for (i = 0; i < n; i++) {
            struct px_client *c = &cs.c[i];

            if (c->failed)
                test_fail(__FILE__, __LINE__, "client %zu%s: %s after %ju sent, %ju received", i,
                          c->resetter ? " (resetter)" : "",
                          c->failed < 0 ? "end of stream before its half-close"
                                        : strerror(c->failed),
                          (uintmax_t)c->sent, (uintmax_t)c->recvd);
            ASSERT_EQ(c->done, 1);
            if (c->resetter) {
                resets++;
                continue;
            }
            ASSERT_EQ(c->sent, PX_BYTES);
            ASSERT_EQ(c->recvd, PX_BYTES);
            ASSERT_TRUE(c->hash_recvd == c->hash_sent);
        }
        ASSERT_EQ(resets, n_reset);
    }
    /* Every connection came once to each server and was closed by both. */
    ASSERT_EQ(px.proxy_accepted, n);
    ASSERT_EQ(px.echo_accepted, n);
    ASSERT_EQ(px.conns_closed, 2 * n);
    ASSERT_EQ(px.writes_done, px.writes_queued);

    px.stopping = 1;
    ASSERT_EQ(gyre_cancel(px.loop, &px.proxy_accept), 0);
    ASSERT_EQ(gyre_cancel(px.loop, &px.echo_accept), 0);
    while (px.accepts_active > 0)
        ASSERT_GE(gyre_loop_run(px.loop, GYRE_RUN_ONCE), 0);
    ASSERT_EQ(gyre_async_close(&px.done_async), 0);
    test_run_nowait(px.loop, 3);
    ASSERT_EQ(px.writes_done, px.writes_queued);
    ASSERT_EQ(gyre_bufpool_available(px.pool), PX_POOL_COUNT);
    ASSERT_EQ(gyre_bufpool_free(px.pool), 0);
    test_close(px.proxy_lfd);
    test_close(px.echo_lfd);
    test_loop_free(px.loop);
    free(cs.c);
    ASSERT_EQ(count_fds(), base_fds);
}
