/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo-libevent.c: the echo server on libevent's event API (the epoll
 * backend it picks on Linux).
 *
 * Raw events rather than bufferevents: a bufferevent copies every chunk
 * into evbuffer chains it allocates, which would measure evbuffer more than
 * the loop; event_assign() into the connection record allocates nothing.
 * One read per readiness into a static buffer, written back at once; a short
 * write keeps the rest (peer_send_chunk) and swaps the read event for a write
 * event until it is written. Allocation: none per message.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
/* struct event's layout, so events can be embedded in the connection slab
 * instead of event_new()'d per connection; libevent installs this header for
 * that purpose, at the price of tying the binary to its ABI. */
#include <event2/event_struct.h>

#include "peer.h"

#define NAME "echo-libevent"

typedef struct conn {
    int fd;
    struct event rd, wr;
    peer_pending left;
} conn;

static struct event_base *base;
static peer_slab slab;
static char rbuf[PEER_BUF_SIZE];

static void conn_close(conn *c)
{
    event_del(&c->rd);
    event_del(&c->wr);
    close(c->fd);
    peer_slab_put(&slab, c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    int rc = peer_flush(fd, &c->left);

    (void)what;
    if (rc < 0)
        conn_close(c);
    else if (rc == 0 && (event_del(&c->wr) != 0 || event_add(&c->rd, NULL) != 0))
        conn_close(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    ssize_t n = read(fd, rbuf, sizeof rbuf);
    int rc;

    (void)what;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    rc = peer_send_chunk(fd, rbuf, (size_t)n, &c->left);
    if (rc < 0)
        conn_close(c);
    else if (rc > 0 && (event_del(&c->rd) != 0 || event_add(&c->wr, NULL) != 0))
        conn_close(c);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    conn *c;

    (void)what;
    (void)arg;
    if (fd < 0)
        return;
    c = peer_slab_get(&slab);
    if (!c || peer_setup_conn(fd, 0) != 0) {
        if (c)
            peer_slab_put(&slab, c);
        close(fd);
        return;
    }
    c->fd = fd;
    event_assign(&c->rd, base, fd, EV_READ | EV_PERSIST, on_readable, c);
    event_assign(&c->wr, base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    if (event_add(&c->rd, NULL) != 0) {
        close(fd);
        peer_slab_put(&slab, c);
    }
}

static void on_signal(evutil_socket_t signo, short what, void *arg)
{
    (void)signo;
    (void)what;
    (void)arg;
    event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
    int port = peer_parse_port(argc, argv, NAME, event_get_version());
    int lfd = peer_listen(port, 1);
    struct event accept_ev, term_ev, int_ev;

    peer_catch_term(); /* SIGPIPE; libevent's signal events replace the rest */
    peer_slab_init(&slab, sizeof(conn));
    base = event_base_new();
    if (!base)
        return peer_fail(NAME, "event_base_new", ENOMEM);
    event_assign(&accept_ev, base, lfd, EV_READ | EV_PERSIST, on_accept, NULL);
    evsignal_assign(&term_ev, base, SIGTERM, on_signal, NULL);
    evsignal_assign(&int_ev, base, SIGINT, on_signal, NULL);
    if (event_add(&accept_ev, NULL) != 0 || event_add(&term_ev, NULL) != 0 ||
        event_add(&int_ev, NULL) != 0)
        return peer_fail(NAME, "event_add", EINVAL);
    if (event_base_dispatch(base) < 0)
        return peer_fail(NAME, "event_base_dispatch", EIO);
    return 0;
}
