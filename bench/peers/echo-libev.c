/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo-libev.c: the echo server on libev (its epoll backend on Linux).
 *
 * ev_io watchers embedded in the connection record, one read per readiness
 * into a static buffer, written back at once; a short write keeps the rest
 * (peer_send_chunk) and swaps the read watcher for a write watcher until it
 * is written. Allocation: none per message.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "peer.h"

#define NAME "echo-libev"

typedef struct conn {
    ev_io rd, wr;
    peer_pending left;
} conn;

static struct ev_loop *loop;
static peer_slab slab;
static char rbuf[PEER_BUF_SIZE];

static conn *conn_of_wr(ev_io *w)
{
    return (conn *)(void *)((char *)w - offsetof(conn, wr));
}

static void conn_close(conn *c)
{
    ev_io_stop(loop, &c->rd);
    ev_io_stop(loop, &c->wr);
    close(c->rd.fd);
    peer_slab_put(&slab, c);
}

static void on_writable(struct ev_loop *l, ev_io *w, int revents)
{
    conn *c = conn_of_wr(w);
    int rc = peer_flush(w->fd, &c->left);

    (void)revents;
    if (rc < 0) {
        conn_close(c);
    } else if (rc == 0) {
        ev_io_stop(l, &c->wr);
        ev_io_start(l, &c->rd);
    }
}

static void on_readable(struct ev_loop *l, ev_io *w, int revents)
{
    conn *c = (conn *)w; /* rd is the first member */
    ssize_t n = read(w->fd, rbuf, sizeof rbuf);
    int rc;

    (void)revents;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    rc = peer_send_chunk(w->fd, rbuf, (size_t)n, &c->left);
    if (rc < 0) {
        conn_close(c);
    } else if (rc > 0) {
        ev_io_stop(l, &c->rd);
        ev_io_start(l, &c->wr);
    }
}

static void on_accept(struct ev_loop *l, ev_io *w, int revents)
{
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    conn *c;

    (void)revents;
    if (fd < 0)
        return;
    c = peer_slab_get(&slab);
    if (!c || peer_setup_conn(fd, 0) != 0) {
        if (c)
            peer_slab_put(&slab, c);
        close(fd);
        return;
    }
    ev_io_init(&c->rd, on_readable, fd, EV_READ);
    ev_io_init(&c->wr, on_writable, fd, EV_WRITE);
    ev_io_start(l, &c->rd);
}

static void on_signal(struct ev_loop *l, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(l, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    char version[32];
    int port, lfd;
    ev_io accept_w;
    ev_signal term_w, int_w;

    snprintf(version, sizeof version, "%d.%d", ev_version_major(), ev_version_minor());
    port = peer_parse_port(argc, argv, NAME, version);
    lfd = peer_listen(port, 1);
    peer_catch_term(); /* SIGPIPE; libev's signal watchers replace the rest */
    peer_slab_init(&slab, sizeof(conn));
    loop = ev_default_loop(EVBACKEND_EPOLL);
    if (!loop)
        return peer_fail(NAME, "ev_default_loop", ENOSYS);
    ev_io_init(&accept_w, on_accept, lfd, EV_READ);
    ev_io_start(loop, &accept_w);
    ev_signal_init(&term_w, on_signal, SIGTERM);
    ev_signal_init(&int_w, on_signal, SIGINT);
    ev_signal_start(loop, &term_w);
    ev_signal_start(loop, &int_w);
    ev_run(loop, 0);
    return 0;
}
