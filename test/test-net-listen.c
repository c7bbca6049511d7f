/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-net-listen.c: gyre_listener on TCP over IPv4 and IPv6 loopback and on
 * Unix sockets (a path and an abstract name): accepted fds are close-on-exec
 * and non-blocking, an echo round trip works on each, SO_REUSEPORT is set
 * when asked, bad arguments are refused, close calls back once and never
 * inside the call.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "test-net-echo.h"

static void round_trips(struct echo_server *s, const struct sockaddr *addr, socklen_t len)
{
    int fds[3];

    for (int i = 0; i < 3; i++)
        fds[i] = echo_client_connect(addr, len);
    for (int i = 0; i < 3; i++) {
        char msg[32];

        snprintf(msg, sizeof msg, "hello %d", i);
        echo_round_trip(s, fds[i], msg);
    }
    ASSERT_EQ(s->accepted, 3);
    for (int i = 0; i < 3; i++)
        test_close(fds[i]);
}

static void listen_tcp(const char *host, int family)
{
    gyre_loop *loop = test_loop_new();
    static struct echo_server s;
    gyre_listen_opts o;
    gyre_listen_stats st;
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    int fd, port, v = 0;

    echo_init(&s, loop);
    memset(&o, 0, sizeof o);
    o.flags = GYRE_LISTEN_REUSEPORT;
    o.backlog = 8;
    ASSERT_EQ(gyre_listen_tcp(loop, &s.l, host, 0, &o, echo_accept_cb), 0);
    fd = gyre_listener_fd(&s.l);
    ASSERT_GE(fd, 0);
    ASSERT_SYS(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &(socklen_t){sizeof v}));
    ASSERT_EQ(v, 1);
    ASSERT_SYS(fcntl(fd, F_GETFD));
    ASSERT_TRUE((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    port = gyre_listener_port(&s.l);
    ASSERT_GT(port, 0);
    ASSERT_SYS(getsockname(fd, (struct sockaddr *)&a, &len));
    ASSERT_EQ(a.ss_family, family);
    round_trips(&s, (struct sockaddr *)&a, len);
    ASSERT_EQ(gyre_listener_stats(&s.l, &st), 0);
    ASSERT_EQ(st.accepted, 3);
    ASSERT_EQ(st.exhausted, 0);
    echo_shutdown(&s);
    ASSERT_EQ(gyre_listener_fd(&s.l), -EBADF);
    test_loop_free(loop);
}

void test_net_listen_tcp4(void)
{
    listen_tcp("127.0.0.1", AF_INET);
}

void test_net_listen_tcp6(void)
{
    listen_tcp("::1", AF_INET6);
}

void test_net_listen_unix(void)
{
    gyre_loop *loop = test_loop_new();
    static struct echo_server s;
    struct sockaddr_un a;
    char path[256], abstract[64];
    socklen_t len;

    /* A path in the test's directory. */
    echo_init(&s, loop);
    test_tmppath(path, sizeof path, "listen.sock");
    ASSERT_EQ(gyre_listen_unix(loop, &s.l, path, NULL, echo_accept_cb), 0);
    ASSERT_EQ(gyre_listener_port(&s.l), -EAFNOSUPPORT);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, path, strlen(path) + 1);
    round_trips(&s, (struct sockaddr *)&a, sizeof a);
    echo_shutdown(&s);
    ASSERT_SYS(access(path, F_OK)); /* the socket file is the caller's */

    /* An abstract name: '@' stands for the leading NUL. */
    echo_init(&s, loop);
    snprintf(abstract, sizeof abstract, "@gyre-test-%ld", (long)getpid());
    ASSERT_EQ(gyre_listen_unix(loop, &s.l, abstract, NULL, echo_accept_cb), 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path + 1, abstract + 1, strlen(abstract) - 1);
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(abstract));
    round_trips(&s, (struct sockaddr *)&a, len);
    echo_shutdown(&s);
    test_loop_free(loop);
}

static void never_cb(gyre_listener *l, int fd)
{
    (void)l;
    (void)fd;
    FAIL("accept callback ran");
}

void test_net_listen_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    static gyre_listener l, l2, l3;
    gyre_listen_opts o;
    struct sockaddr_in a;
    char longpath[200];
    int port;

    memset(&o, 0, sizeof o);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    ASSERT_EQ(gyre_listen(NULL, &l, (struct sockaddr *)&a, sizeof a, NULL, never_cb), -EINVAL);
    ASSERT_EQ(gyre_listen(loop, NULL, (struct sockaddr *)&a, sizeof a, NULL, never_cb), -EINVAL);
    ASSERT_EQ(gyre_listen(loop, &l, NULL, sizeof a, NULL, never_cb), -EINVAL);
    ASSERT_EQ(gyre_listen(loop, &l, (struct sockaddr *)&a, sizeof a, NULL, NULL), -EINVAL);
    o.backlog = -1;
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "127.0.0.1", 0, &o, never_cb), -EINVAL);
    o.backlog = 0;
    o.flags = 0x100;
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "127.0.0.1", 0, &o, never_cb), -EINVAL);
    o.flags = 0;
    o.reserved[0] = 1;
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "127.0.0.1", 0, &o, never_cb), -EINVAL);
    o.reserved[0] = 0;
    /* Names are never resolved by the listener. */
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "localhost", 0, &o, never_cb), -EINVAL);
    ASSERT_EQ(gyre_listen_unix(loop, &l, "", NULL, never_cb), -EINVAL);
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    ASSERT_EQ(gyre_listen_unix(loop, &l, longpath, NULL, never_cb), -ENAMETOOLONG);

    /* A taken port: -EADDRINUSE, unless both listeners ask for REUSEPORT. */
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "127.0.0.1", 0, NULL, never_cb), 0);
    port = gyre_listener_port(&l);
    ASSERT_GT(port, 0);
    ASSERT_EQ(gyre_listen_tcp(loop, &l2, "127.0.0.1", (uint16_t)port, NULL, never_cb), -EADDRINUSE);
    ASSERT_EQ(gyre_listener_close(&l, NULL), 0);
    test_run_nowait(loop, 3);
    o.flags = GYRE_LISTEN_REUSEPORT;
    ASSERT_EQ(gyre_listen_tcp(loop, &l2, "127.0.0.1", 0, &o, never_cb), 0);
    port = gyre_listener_port(&l2);
    ASSERT_EQ(gyre_listen_tcp(loop, &l3, "127.0.0.1", (uint16_t)port, &o, never_cb), 0);
    ASSERT_EQ(gyre_listener_close(&l2, NULL), 0);
    ASSERT_EQ(gyre_listener_close(&l3, NULL), 0);
    ASSERT_EQ(gyre_listener_close(&l3, NULL), -EALREADY);
    test_run_nowait(loop, 3);
    test_loop_free(loop);
}

static void close_in_cb(gyre_listener *l, int fd)
{
    int *closed = l->data;

    ASSERT_GE(fd, 0);
    test_close(fd);
    ASSERT_EQ(gyre_listener_close(l, NULL), 0);
    (*closed)++;
}

/* Closing from inside the accept callback, with more connections queued:
 * no callback after the close. */
void test_net_listen_close_in_cb(void)
{
    gyre_loop *loop = test_loop_new();
    static gyre_listener l;
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    int calls = 0, fds[3];

    l.data = &calls;
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "127.0.0.1", 0, NULL, close_in_cb), 0);
    ASSERT_SYS(getsockname(gyre_listener_fd(&l), (struct sockaddr *)&a, &len));
    for (int i = 0; i < 3; i++)
        fds[i] = echo_client_connect((struct sockaddr *)&a, len);
    test_run_until(loop, &calls, 1);
    test_run_nowait(loop, 5);
    ASSERT_EQ(calls, 1);
    ASSERT_EQ(gyre_loop_alive(loop), 0);
    for (int i = 0; i < 3; i++)
        test_close(fds[i]);
    test_loop_free(loop);
}
