/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo-libuv.c: the echo server on libuv, written as libuv's documentation
 * suggests for speed: uv_read_start with an alloc_cb that hands out one
 * static buffer (libuv reads into it and calls read_cb before it asks for a
 * buffer again, so one serves every connection), uv_try_write of each chunk
 * at once, and uv_write only for what a short write left, copied into the
 * connection's own buffer. Reading stops while that write is pending, the
 * same backpressure as the other peers.
 *
 * Allocation: none per message. Connection handles live in the slab; the
 * uv_write_t is embedded in the connection.
 */
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "peer.h"

#define NAME "echo-libuv"

typedef struct conn {
    uv_tcp_t tcp; /* first: the handle pointer is the connection pointer */
    uv_write_t req;
    char left[PEER_BUF_SIZE];
} conn;

static uv_loop_t *loop;
static peer_slab slab;
static char rbuf[PEER_BUF_SIZE];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_closed(uv_handle_t *h)
{
    peer_slab_put(&slab, h);
}

static void conn_close(conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
    conn *c = req->data;

    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = (conn *)s;
    uv_buf_t rest;
    int w;

    if (n == 0) /* libuv's EAGAIN */
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    rest = uv_buf_init(buf->base, (unsigned)n);
    w = uv_try_write(s, &rest, 1);
    if (w == UV_EAGAIN)
        w = 0;
    if (w < 0) {
        conn_close(c);
        return;
    }
    if (w == n)
        return;
    memcpy(c->left, buf->base + w, (size_t)(n - w));
    rest = uv_buf_init(c->left, (unsigned)(n - w));
    c->req.data = c;
    if (uv_read_stop(s) != 0 || uv_write(&c->req, s, &rest, 1, on_written) != 0)
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    conn *c;

    if (status < 0)
        return;
    c = peer_slab_get(&slab);
    if (!c)
        return; /* the connection waits in the backlog */
    if (uv_tcp_init(loop, &c->tcp) != 0) {
        peer_slab_put(&slab, c);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || uv_tcp_nodelay(&c->tcp, 1) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

static void on_signal(uv_signal_t *s, int signo)
{
    (void)signo;
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    int port = peer_parse_port(argc, argv, NAME, uv_version_string());
    uv_signal_t sigterm, sigint;
    struct sockaddr_in sa;
    uv_tcp_t server;
    int rc;

    peer_catch_term(); /* SIGPIPE; the uv_signal watchers replace the rest */
    peer_slab_init(&slab, sizeof(conn));
    loop = uv_default_loop();
    uv_ip4_addr("127.0.0.1", port, &sa);
    if ((rc = uv_tcp_init(loop, &server)) != 0 ||
        (rc = uv_tcp_bind(&server, (const struct sockaddr *)&sa, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&server, SOMAXCONN, on_connection)) != 0)
        return peer_fail(NAME, "listen", -rc);
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
