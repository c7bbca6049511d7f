/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo-stream.c: gyre-echo-stream, the echo on gyre_stream (what gyre-http
 * and a proxy build on): reading from the shared pool, each chunk kept
 * (gyre_stream_read_keep) and written back from its pool buffer, the buffer
 * returned when the write completes. No copy, no allocation per message
 * (make bench-instr).
 *
 *   gyre-echo-stream --port P [--backend B] [--exit-after-clients N]
 */
#include <sys/uio.h>
#include <unistd.h>

#include "srv.h"

typedef struct conn {
    gyre_stream s;
    int in_use, closing;
} conn;

/* The write of each pool buffer, indexed by its id: a buffer is in at most
 * one write. */
typedef struct chunk {
    gyre_stream_write_req req;
    struct iovec iov;
} chunk;

static conn conns[SRV_MAX_CONNS];
static chunk chunks[SRV_BUFS];

static void on_closed(gyre_stream *s)
{
    conn *c = (conn *)s;

    c->in_use = 0;
    srv_conn_done();
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    (void)gyre_stream_close(&c->s, on_closed);
}

static void on_write(gyre_stream_write_req *req, int status)
{
    chunk *k = (chunk *)req;

    gyre_bufpool_put(srv_pool, (uint32_t)(k - chunks));
    if (status < 0)
        conn_close((conn *)req->stream);
}

static void on_read(gyre_stream *s, int64_t nread, void *buf, const int *fds, uint32_t nfds)
{
    conn *c = (conn *)s;
    int id;

    (void)fds;
    (void)nfds;
    if (nread <= 0) {
        conn_close(c);
        return;
    }
    id = gyre_stream_read_keep(s);
    if (id < 0) {
        conn_close(c);
        return;
    }
    chunks[id].iov.iov_base = buf;
    chunks[id].iov.iov_len = (size_t)nread;
    if (gyre_stream_write(s, &chunks[id].req, &chunks[id].iov, 1, on_write) < 0) {
        gyre_bufpool_put(srv_pool, (uint32_t)id);
        conn_close(c);
    }
}

static void on_accept(int fd)
{
    conn *c = NULL;
    size_t i;

    for (i = 0; i < SRV_MAX_CONNS && !c; i++)
        if (!conns[i].in_use)
            c = &conns[i];
    if (!c || gyre_stream_init(srv_loop, &c->s, fd, 0) < 0) {
        close(fd);
        return;
    }
    c->in_use = 1;
    c->closing = 0;
    if (gyre_stream_read_start(&c->s, srv_pool, on_read) < 0)
        conn_close(c);
}

static void on_stop(void)
{
    size_t i;

    for (i = 0; i < SRV_MAX_CONNS; i++)
        if (conns[i].in_use)
            conn_close(&conns[i]);
}

int main(int argc, char **argv)
{
    int rc = srv_start("gyre-echo-stream", argc, argv, on_accept, on_stop);

    return rc != 0 ? rc : srv_run();
}
