/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo-epoll.c: the echo server on raw epoll, the baseline for gyre's
 * readiness backends (epoll, poll, select) and for the peers built on epoll.
 *
 * Level-triggered, one read per readiness, as a plain epoll program is
 * written: read up to PEER_BUF_SIZE and write it back at once. A short write
 * keeps the rest (peer_send_chunk) and switches the connection from EPOLLIN
 * to EPOLLOUT until it is written, which is also the backpressure: nothing
 * more is read while a leftover waits. Nothing is allocated after start.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

#define NAME "echo-epoll"
#define MAX_EVENTS 256

typedef struct conn {
    int fd;
    peer_pending left;
} conn;

static int epfd;
static peer_slab slab;
static char rbuf[PEER_BUF_SIZE];

static void conn_close(conn *c)
{
    /* close() drops the fd from the epoll set: it is its only reference. */
    close(c->fd);
    peer_slab_put(&slab, c);
}

/* Watches c for `events`; closes it if that fails. */
static void conn_watch(conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        conn_close(c);
}

static void on_conn(conn *c, uint32_t events)
{
    ssize_t n;
    int rc;

    if (events & EPOLLOUT) {
        rc = peer_flush(c->fd, &c->left);
        if (rc < 0)
            conn_close(c);
        else if (rc == 0)
            conn_watch(c, EPOLLIN);
        return;
    }
    n = read(c->fd, rbuf, sizeof rbuf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    rc = peer_send_chunk(c->fd, rbuf, (size_t)n, &c->left);
    if (rc < 0)
        conn_close(c);
    else if (rc > 0)
        conn_watch(c, EPOLLOUT);
}

static void on_accept(int lfd)
{
    struct epoll_event ev = {.events = EPOLLIN};
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    conn *c;

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
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        conn_close(c);
}

int main(int argc, char **argv)
{
    static struct epoll_event events[MAX_EVENTS];
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int port = peer_parse_port(argc, argv, NAME, "raw epoll (no library)");
    int lfd = peer_listen(port, 1), n, i;

    peer_catch_term();
    peer_slab_init(&slab, sizeof(conn));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0)
        return peer_fail(NAME, "epoll", errno);
    while (!peer_stop) {
        n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return peer_fail(NAME, "epoll_wait", errno);
        }
        /* Each fd appears at most once per batch, and a slot is reused
         * only after its own event closed it, so no event here is stale. */
        for (i = 0; i < n; i++) {
            if (events[i].data.ptr)
                on_conn(events[i].data.ptr, events[i].events);
            else
                on_accept(lfd);
        }
    }
    return 0;
}
