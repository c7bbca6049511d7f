/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo-watch.c: gyre-echo-watch, the echo on gyre's reactor API: one
 * level-triggered gyre_watch per connection, recv and send by hand into a
 * per-connection buffer, as the raw epoll peer does. What gyre's loop, fd
 * table and dispatch cost without the op layer (make bench-instr).
 *
 *   gyre-echo-watch --port P [--backend B] [--exit-after-clients N]
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srv.h"

typedef struct conn {
    gyre_watch w;
    int fd, in_use;
    uint32_t off, len; /* what a short send left in buf */
    char buf[SRV_BUF_SIZE];
} conn;

static conn conns[SRV_MAX_CONNS];

static void on_io(gyre_watch *w, uint32_t events);

static void conn_close(conn *c)
{
    gyre_watch_stop(&c->w);
    close(c->fd);
    c->in_use = 0;
    srv_conn_done();
}

/* Sends what is left in buf. Returns 1 when it all went, 0 when the rest
 * waits for GYRE_OUT, -1 on an error. */
static int flush(conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->off += (uint32_t)n;
    }
    return 1;
}

static void on_io(gyre_watch *w, uint32_t events)
{
    conn *c = (conn *)w;
    ssize_t n;
    int r;

    (void)events;
    if (c->off < c->len) { /* writable again after a short send */
        r = flush(c);
        if (r < 0)
            conn_close(c);
        else if (r > 0 && gyre_watch_start(&c->w, GYRE_IN, on_io) < 0)
            conn_close(c);
        return;
    }
    n = recv(c->fd, c->buf, sizeof c->buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->off = 0;
    c->len = (uint32_t)n;
    r = flush(c);
    if (r < 0 || (r == 0 && gyre_watch_start(&c->w, GYRE_OUT, on_io) < 0))
        conn_close(c);
}

static void on_accept(int fd)
{
    conn *c = NULL;
    size_t i;

    for (i = 0; i < SRV_MAX_CONNS && !c; i++)
        if (!conns[i].in_use)
            c = &conns[i];
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->off = c->len = 0;
    c->in_use = 1;
    if (gyre_watch_init(srv_loop, &c->w, fd) < 0 || gyre_watch_start(&c->w, GYRE_IN, on_io) < 0)
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
    int rc = srv_start("gyre-echo-watch", argc, argv, on_accept, on_stop);

    return rc != 0 ? rc : srv_run();
}
