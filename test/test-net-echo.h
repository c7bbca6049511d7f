/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-net-echo.h: the echo server the listener tests share -- a
 * gyre_listener whose connections echo what they read, each with its own
 * read, write and close op, closed with gyre_op_close -- and blocking
 * clients for the test's own side of the connection.
 */
#ifndef TEST_NET_ECHO_H
#define TEST_NET_ECHO_H

#include <netinet/in.h>

#include "runner.h"

#define ECHO_CONNS 16

struct echo_conn {
    gyre_op rd, wr, cl;
    struct echo_server *s;
    int fd;
    int used;
    char buf[256];
};

struct echo_server {
    gyre_listener l;
    gyre_loop *loop;
    struct echo_conn c[ECHO_CONNS];
    int accepted;
    int echoed;
    int closed;
    int listener_closed;
    int events[8];
    int nevents;
};

/* Starts the echo service on s->l (already listening with echo_accept_cb). */
void echo_accept_cb(gyre_listener *l, int fd);
void echo_event_cb(gyre_listener *l, int event, const gyre_listen_stats *stats);
void echo_init(struct echo_server *s, gyre_loop *loop);
/* Closes the listener and every connection still open, and runs the loop
 * until all of it has been called back. */
void echo_shutdown(struct echo_server *s);

/* A blocking client: connect to addr, then (when msg) write msg and read its
 * echo back; returns the connected fd. The kernel completes a loopback
 * connect from the backlog, so no loop has to run during the connect. */
int echo_client_connect(const struct sockaddr *addr, socklen_t len);
/* Writes msg on fd, runs loop until the server has echoed one more message,
 * then reads the echo (already there) and compares. */
void echo_round_trip(struct echo_server *s, int fd, const char *msg);

void assert_fd_flags(int fd); /* close-on-exec and non-blocking */
/* Number of open descriptors of this process (/proc/self/fd). */
int count_fds(void);

#endif
