/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-api.c: the API gaps a new user hit (issue 13, point 5) -- timers
 * counting from the cached time, <errno.h> from gyre.h alone, connect by
 * address, UDP connect, adopting a listening fd and socket activation, PATH
 * search and stream stdio for children, request init magic, closing an
 * async from its own callback, select's FD_SETSIZE at submit, and what a
 * truncated datagram reports.
 */
/* First, alone: gyre.h must be enough for the -errno names. */
#include "gyre.h"
#ifndef EINVAL
#error "gyre.h does not give <errno.h>"
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Timers count from the cached time                                         */
/* ------------------------------------------------------------------------ */

static struct {
    gyre_timer late, fresh;
    int order[2];
    int fired;
} tc;

static void tc_cb(gyre_timer *t)
{
    tc.order[tc.fired++] = t == &tc.late ? 1 : 2;
}

void test_api_timer_cached_time(void)
{
    gyre_loop *loop = test_loop_new();
    uint64_t cached;

    memset(&tc, 0, sizeof tc);
    ASSERT_EQ(gyre_timer_init(loop, &tc.late), 0);
    ASSERT_EQ(gyre_timer_init(loop, &tc.fresh), 0);
    gyre_loop_update_time(loop);
    cached = gyre_now(loop);
    /* A long callback: the real clock moves on 3 ms, the cached one not. */
    while (mono_ns() < cached + MS(3))
        ;
    ASSERT_EQ(gyre_now(loop), cached);
    /* Counted from the cached time: due 2 ms after `cached`, which has
     * passed already, though gyre_timer_due_in (cached too) says 2 ms. */
    ASSERT_EQ(gyre_timer_start(&tc.late, tc_cb, MS(2), 0), 0);
    ASSERT_EQ(gyre_timer_due_in(&tc.late), MS(2));
    /* After gyre_loop_update_time(): the same timer is due now, and one
     * started from here counts 2 ms from now. */
    gyre_loop_update_time(loop);
    ASSERT_GE(gyre_now(loop), cached + MS(3));
    ASSERT_EQ(gyre_timer_due_in(&tc.late), 0);
    ASSERT_EQ(gyre_timer_start(&tc.fresh, tc_cb, MS(2), 0), 0);
    ASSERT_EQ(gyre_timer_due_in(&tc.fresh), MS(2));
    test_run_until(loop, &tc.fired, 2);
    ASSERT_EQ(tc.order[0], 1);
    ASSERT_EQ(tc.order[1], 2);
    test_loop_free(loop);
}

void test_api_errno_header(void)
{
    /* Compiled above with gyre.h alone; the values are the system's. */
    ASSERT_EQ(gyre_timer_start(NULL, NULL, 0, 0), -EINVAL);
    ASSERT_STREQ(gyre_strerror(-ENOENT), strerror(ENOENT));
}

/* ------------------------------------------------------------------------ */
/* Connect by address                                                         */
/* ------------------------------------------------------------------------ */

struct conn {
    gyre_connect_req req;
    int calls;
    int result;
};

static void conn_cb(gyre_connect_req *req, int result)
{
    struct conn *c = (struct conn *)req;

    c->calls++;
    c->result = result;
}

struct lst {
    gyre_listener l;
    int accepted;
    int fd;
    int closed;
};

static void lst_accept_cb(gyre_listener *l, int fd)
{
    struct lst *s = (struct lst *)l;

    ASSERT_GE(fd, 0);
    if (s->fd >= 0)
        test_close(s->fd);
    s->fd = fd;
    s->accepted++;
}

static void lst_close_cb(gyre_listener *l)
{
    ((struct lst *)l)->closed++;
}

static void lst_close(gyre_loop *loop, struct lst *s)
{
    ASSERT_EQ(gyre_listener_close(&s->l, lst_close_cb), 0);
    test_run_until(loop, &s->closed, 1);
    if (s->fd >= 0)
        test_close(s->fd);
    s->fd = -1;
}

/* Closes fd through the loop, which may have used it for ops. */
static void close_op(gyre_loop *loop, int fd)
{
    struct test_op t;

    memset(&t, 0, sizeof t);
    gyre_op_close(&t.op, fd);
    ASSERT_EQ(test_op_run(loop, &t), 0);
}

/* The peer's end and the connected fd see the same bytes. */
static void check_pair(int a, int b)
{
    char buf[8];

    test_write_bytes(a, "hi!", 3);
    for (int i = 0; i < 1000; i++) {
        ssize_t n = read(b, buf, sizeof buf);

        if (n == 3) {
            ASSERT_TRUE(memcmp(buf, "hi!", 3) == 0);
            return;
        }
        ASSERT_TRUE(n < 0 && errno == EAGAIN);
        usleep(1000);
    }
    FAIL("no bytes");
}

static int conn_run(gyre_loop *loop, struct conn *c, const struct sockaddr *a, socklen_t len,
                    const gyre_connect_opts *o)
{
    c->calls = 0;
    ASSERT_EQ(gyre_connect_addr(loop, &c->req, a, len, o, conn_cb), 0);
    ASSERT_EQ(gyre_connect_addr(loop, &c->req, a, len, o, conn_cb), -EBUSY);
    ASSERT_EQ(c->calls, 0);
    test_run_until(loop, &c->calls, 1);
    test_run_nowait(loop, 2);
    ASSERT_EQ(c->calls, 1);
    return c->result;
}

void test_api_connect_addr(void)
{
    gyre_loop *loop = test_loop_new();
    static struct conn c;
    static struct lst s;
    struct sockaddr_in a4;
    struct sockaddr_un un;
    socklen_t unlen;
    gyre_connect_opts o;
    char path[200];
    int fd, flags;

    ASSERT_EQ(gyre_connect_req_init(&c.req), 0);
    memset(&s, 0, sizeof s);
    s.fd = -1;

    /* TCP over IPv4. */
    ASSERT_EQ(gyre_listen_tcp(loop, &s.l, "127.0.0.1", 0, NULL, lst_accept_cb), 0);
    memset(&a4, 0, sizeof a4);
    a4.sin_family = AF_INET;
    a4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a4.sin_port = htons((uint16_t)gyre_listener_port(&s.l));
    fd = conn_run(loop, &c, (struct sockaddr *)&a4, sizeof a4, NULL);
    ASSERT_GE(fd, 0);
    flags = fcntl(fd, F_GETFL);
    ASSERT_TRUE(flags & O_NONBLOCK);
    ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    test_run_until(loop, &s.accepted, 1);
    check_pair(s.fd, fd);
    close_op(loop, fd);
    /* With a deadline that does not come, reusing the request from before. */
    memset(&o, 0, sizeof o);
    o.deadline_ns = SEC(30);
    fd = conn_run(loop, &c, (struct sockaddr *)&a4, sizeof a4, &o);
    ASSERT_GE(fd, 0);
    close_op(loop, fd);
    test_run_until(loop, &s.accepted, 2);
    lst_close(loop, &s);

    /* Refused: the port is free now (nothing listens on it). */
    ASSERT_EQ(conn_run(loop, &c, (struct sockaddr *)&a4, sizeof a4, NULL), -ECONNREFUSED);

    /* A Unix-domain socket, and a path where none is. */
    test_tmppath(path, sizeof path, "api.sock");
    memset(&s, 0, sizeof s);
    s.fd = -1;
    ASSERT_EQ(gyre_listen_unix(loop, &s.l, path, NULL, lst_accept_cb), 0);
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    ASSERT_LT(strlen(path), sizeof un.sun_path);
    memcpy(un.sun_path, path, strlen(path));
    unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
    fd = conn_run(loop, &c, (struct sockaddr *)&un, unlen, NULL);
    ASSERT_GE(fd, 0);
    test_run_until(loop, &s.accepted, 1);
    check_pair(fd, s.fd);
    close_op(loop, fd);
    lst_close(loop, &s);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(conn_run(loop, &c, (struct sockaddr *)&un, unlen, NULL), -ENOENT);

    /* Cancelled at once: -ECANCELED, or the result that came first. */
    c.calls = 0;
    ASSERT_EQ(gyre_connect_addr(loop, &c.req, (struct sockaddr *)&un, unlen, NULL, conn_cb), 0);
    ASSERT_EQ(gyre_connect_cancel(&c.req), 0);
    ASSERT_EQ(gyre_connect_cancel(&c.req), -EALREADY);
    test_run_until(loop, &c.calls, 1);
    ASSERT_EQ(c.result, -ECANCELED);
    ASSERT_EQ(gyre_connect_cancel(&c.req), -ENOENT);

    /* Bad arguments: nothing to call back. */
    c.calls = 0;
    ASSERT_EQ(gyre_connect_addr(NULL, &c.req, (struct sockaddr *)&a4, sizeof a4, NULL, conn_cb),
              -EINVAL);
    ASSERT_EQ(gyre_connect_addr(loop, &c.req, NULL, sizeof a4, NULL, conn_cb), -EINVAL);
    ASSERT_EQ(gyre_connect_addr(loop, &c.req, (struct sockaddr *)&a4, sizeof a4, NULL, NULL),
              -EINVAL);
    ASSERT_EQ(gyre_connect_addr(loop, &c.req, (struct sockaddr *)&a4, sizeof a4 - 1, NULL, conn_cb),
              -EINVAL);
    o.deadline_ns = 0;
    o.family = AF_INET;
    ASSERT_EQ(gyre_connect_addr(loop, &c.req, (struct sockaddr *)&a4, sizeof a4, &o, conn_cb),
              -EINVAL);
    a4.sin_family = AF_APPLETALK;
    ASSERT_EQ(gyre_connect_addr(loop, &c.req, (struct sockaddr *)&a4, sizeof a4, NULL, conn_cb),
              -EINVAL);
    test_run_nowait(loop, 2);
    ASSERT_EQ(c.calls, 0);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* UDP connect                                                                */
/* ------------------------------------------------------------------------ */

struct dgram {
    gyre_udp u;
    struct sockaddr_in addr;
    int got, errors, closed;
    int64_t last_err;
    char last[64];
    uint32_t last_len;
};

static void dgram_cb(gyre_udp *u, int64_t result, const gyre_udp_msg *msg)
{
    struct dgram *d = (struct dgram *)u;

    if (result < 0) {
        d->errors++;
        d->last_err = result;
        return;
    }
    ASSERT_LE(msg->len, sizeof d->last);
    memcpy(d->last, msg->data, msg->len);
    d->last_len = msg->len;
    d->got++;
}

static void dgram_closed(gyre_udp *u)
{
    ((struct dgram *)u)->closed++;
}

static void dgram_open(gyre_loop *loop, struct dgram *d)
{
    socklen_t len = sizeof d->addr;

    memset(d, 0, sizeof *d);
    d->addr.sin_family = AF_INET;
    d->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(gyre_udp_open(loop, &d->u, (struct sockaddr *)&d->addr, sizeof d->addr, NULL), 0);
    ASSERT_EQ(gyre_udp_sockname(&d->u, (struct sockaddr *)&d->addr, &len), 0);
}

static void dgram_close(gyre_loop *loop, struct dgram *d)
{
    ASSERT_EQ(gyre_udp_close(&d->u, dgram_closed), 0);
    test_run_until(loop, &d->closed, 1);
}

/* Sends now, retrying an injected EAGAIN. */
static void dgram_try_send(gyre_loop *loop, struct dgram *from, const struct dgram *to,
                           const char *text)
{
    gyre_udp_msg m;
    int r;

    memset(&m, 0, sizeof m);
    m.data = text;
    m.len = (uint32_t)strlen(text);
    if (to != NULL) {
        m.addr = (const struct sockaddr *)&to->addr;
        m.addrlen = sizeof to->addr;
    }
    while ((r = gyre_udp_try_send(&from->u, &m, 1)) == -EAGAIN)
        test_run_nowait(loop, 1);
    ASSERT_EQ(r, 1);
}

struct usend {
    gyre_udp_send_req req;
    int calls;
    int64_t result;
};

static void usend_cb(gyre_udp_send_req *req, int64_t result)
{
    struct usend *s = (struct usend *)req;

    s->calls++;
    s->result = result;
}

void test_api_udp_connect(void)
{
    gyre_loop *loop = test_loop_new();
    static struct dgram a, b, c;
    static struct usend s;
    struct sockaddr_in6 a6;
    struct sockaddr_in gone;
    int fd;

    dgram_open(loop, &a);
    dgram_open(loop, &b);
    dgram_open(loop, &c);
    ASSERT_EQ(gyre_udp_recv_start(&a.u, 4, 64, dgram_cb), 0);
    ASSERT_EQ(gyre_udp_recv_start(&b.u, 4, 64, dgram_cb), 0);
    ASSERT_EQ(gyre_udp_connect(&a.u, (struct sockaddr *)&b.addr, sizeof b.addr), 0);

    /* a sends with no address, by op and without waiting: b gets both. */
    ASSERT_EQ(gyre_udp_send_req_init(&s.req), 0);
    ASSERT_EQ(gyre_udp_send(&a.u, &s.req, "one", 3, NULL, 0, usend_cb), 0);
    test_run_until(loop, &s.calls, 1);
    ASSERT_EQ(s.result, 3);
    test_run_until(loop, &b.got, 1);
    ASSERT_EQ(b.last_len, 3);
    ASSERT_TRUE(memcmp(b.last, "one", 3) == 0);
    dgram_try_send(loop, &a, NULL, "two");
    test_run_until(loop, &b.got, 2);
    ASSERT_TRUE(memcmp(b.last, "two", 3) == 0);

    /* a hears only b: c's datagram, sent first, is dropped by the kernel
     * (loopback delivers within the send), so b's is the first a gets. */
    dgram_try_send(loop, &c, &a, "from-c");
    dgram_try_send(loop, &b, &a, "from-b");
    test_run_until(loop, &a.got, 1);
    ASSERT_EQ(a.last_len, 6);
    ASSERT_TRUE(memcmp(a.last, "from-b", 6) == 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(a.got, 1);

    /* Dissolved: c is heard again, at the same address (the port the
     * kernel chose is kept). */
    ASSERT_EQ(gyre_udp_connect(&a.u, NULL, 0), 0);
    {
        struct sockaddr_in now;
        socklen_t len = sizeof now;

        ASSERT_EQ(gyre_udp_sockname(&a.u, (struct sockaddr *)&now, &len), 0);
        ASSERT_EQ(now.sin_port, a.addr.sin_port);
        ASSERT_EQ(now.sin_addr.s_addr, a.addr.sin_addr.s_addr);
    }
    dgram_try_send(loop, &c, &a, "again");
    test_run_until(loop, &a.got, 2);
    ASSERT_TRUE(memcmp(a.last, "again", 5) == 0);

    /* Connected to a port nobody has: the ICMP error reaches the receive
     * callback, and receiving goes on. */
    gone = c.addr;
    dgram_close(loop, &c);
    ASSERT_EQ(gyre_udp_connect(&a.u, (struct sockaddr *)&gone, sizeof gone), 0);
    dgram_try_send(loop, &a, NULL, "anyone?");
    test_run_until(loop, &a.errors, 1);
    ASSERT_EQ(a.last_err, -ECONNREFUSED);

    /* Wrong family, NULL: nothing changes. */
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    ASSERT_EQ(gyre_udp_connect(&a.u, (struct sockaddr *)&a6, sizeof a6), -EINVAL);
    ASSERT_EQ(gyre_udp_connect(NULL, (struct sockaddr *)&b.addr, sizeof b.addr), -EINVAL);
    fd = gyre_udp_fd(&a.u);
    ASSERT_GE(fd, 0);
    dgram_close(loop, &a);
    ASSERT_EQ(gyre_udp_connect(&a.u, (struct sockaddr *)&b.addr, sizeof b.addr), -EBADF);
    dgram_close(loop, &b);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* Adopting a listening fd; socket activation                                */
/* ------------------------------------------------------------------------ */

/* A blocking, inheritable TCP listener on 127.0.0.1, as another program
 * would hand it over; its port in *port. */
static int raw_listener(uint16_t *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ASSERT_GE(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_SYS(bind(fd, (struct sockaddr *)&a, sizeof a));
    ASSERT_SYS(listen(fd, 16));
    ASSERT_SYS(getsockname(fd, (struct sockaddr *)&a, &len));
    *port = ntohs(a.sin_port);
    return fd;
}

/* Connects a client to 127.0.0.1:port and waits for the listener's accept. */
static void accept_one(gyre_loop *loop, struct lst *s, uint16_t port)
{
    static struct conn c;
    struct sockaddr_in a;
    int want = s->accepted + 1, fd;

    ASSERT_EQ(gyre_connect_req_init(&c.req), 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    fd = conn_run(loop, &c, (struct sockaddr *)&a, sizeof a, NULL);
    ASSERT_GE(fd, 0);
    test_run_until(loop, &s->accepted, want);
    check_pair(fd, s->fd);
    close_op(loop, fd);
}

void test_api_listen_fd(void)
{
    gyre_loop *loop = test_loop_new();
    static struct lst s;
    gyre_listen_opts o;
    uint16_t port;
    int fd, p[2], u, t;

    memset(&s, 0, sizeof s);
    s.fd = -1;
    fd = raw_listener(&port);
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, fd, NULL, lst_accept_cb), 0);
    ASSERT_EQ(gyre_listener_fd(&s.l), fd);
    ASSERT_EQ(gyre_listener_port(&s.l), port);
    ASSERT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    accept_one(loop, &s, port);
    accept_one(loop, &s, port);
    lst_close(loop, &s);
    /* The listener closed the fd it adopted. */
    ASSERT_EQ(fcntl(fd, F_GETFD), -1);
    ASSERT_EQ(errno, EBADF);

    /* Refused, and left as they came. */
    test_pipe(p);
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, p[0], NULL, lst_accept_cb), -ENOTSOCK);
    test_close(p[0]);
    test_close(p[1]);
    u = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(u, 0);
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, u, NULL, lst_accept_cb), -EINVAL);
    test_close(u);
    t = socket(AF_INET, SOCK_STREAM, 0); /* not listening */
    ASSERT_GE(t, 0);
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, t, NULL, lst_accept_cb), -EINVAL);
    ASSERT_EQ(fcntl(t, F_GETFL) & O_NONBLOCK, 0);
    test_close(t);
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, test_bad_fd(), NULL, lst_accept_cb), -EBADF);
    fd = raw_listener(&port);
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, -1, NULL, lst_accept_cb), -EINVAL);
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, fd, NULL, NULL), -EINVAL);
    memset(&o, 0, sizeof o);
    o.backlog = 10;
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, fd, &o, lst_accept_cb), -EINVAL);
    o.backlog = 0;
    o.flags = GYRE_LISTEN_REUSEPORT;
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, fd, &o, lst_accept_cb), -EINVAL);
    ASSERT_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    /* With a reserve fd, which is the one option that applies. */
    s.closed = 0;
    o.flags = GYRE_LISTEN_RESERVE_FD;
    ASSERT_EQ(gyre_listen_fd(loop, &s.l, fd, &o, lst_accept_cb), 0);
    accept_one(loop, &s, port);
    lst_close(loop, &s);
    test_loop_free(loop);
}

static void set_env(const char *pid, const char *fds)
{
    if (pid != NULL)
        ASSERT_SYS(setenv("LISTEN_PID", pid, 1));
    else
        ASSERT_SYS(unsetenv("LISTEN_PID"));
    if (fds != NULL)
        ASSERT_SYS(setenv("LISTEN_FDS", fds, 1));
    else
        ASSERT_SYS(unsetenv("LISTEN_FDS"));
}

void test_api_listen_fds(void)
{
    char me[32], other[32];
    static struct lst s;
    gyre_loop *loop;
    uint16_t port;
    int fd, saved = -1, r;

    snprintf(me, sizeof me, "%ld", (long)getpid());
    snprintf(other, sizeof other, "%ld", (long)getpid() + 1);
    /* Not for us, or not there. */
    set_env(NULL, NULL);
    ASSERT_EQ(gyre_listen_fds(), 0);
    set_env(me, NULL);
    ASSERT_EQ(gyre_listen_fds(), 0);
    set_env(other, "1");
    ASSERT_EQ(gyre_listen_fds(), 0);
    /* Malformed. */
    set_env(me, "x");
    ASSERT_EQ(gyre_listen_fds(), -EINVAL);
    set_env(me, "-1");
    ASSERT_EQ(gyre_listen_fds(), -EINVAL);
    set_env("12a", "1");
    ASSERT_EQ(gyre_listen_fds(), -EINVAL);
    set_env(me, "99999999999");
    ASSERT_EQ(gyre_listen_fds(), -EINVAL);
    set_env(me, "0");
    ASSERT_EQ(gyre_listen_fds(), 0);

    /* One socket at fd 3, as systemd passes it: whatever the test process
     * had there moves away for the while. */
    fd = raw_listener(&port);
    if (fd != GYRE_LISTEN_FDS_START) {
        if (fcntl(GYRE_LISTEN_FDS_START, F_GETFD) >= 0) {
            saved = fcntl(GYRE_LISTEN_FDS_START, F_DUPFD_CLOEXEC, 10);
            ASSERT_GE(saved, 0);
        }
        ASSERT_EQ(dup2(fd, GYRE_LISTEN_FDS_START), GYRE_LISTEN_FDS_START);
        test_close(fd);
    }
    ASSERT_EQ(fcntl(GYRE_LISTEN_FDS_START, F_GETFD) & FD_CLOEXEC, 0);
    set_env(me, "1");
    ASSERT_EQ(gyre_listen_fds(), 1);
    ASSERT_TRUE(fcntl(GYRE_LISTEN_FDS_START, F_GETFD) & FD_CLOEXEC);
    /* A count past what is open: the next fd is not. */
    if (fcntl(GYRE_LISTEN_FDS_START + 1, F_GETFD) < 0) {
        set_env(me, "2");
        ASSERT_EQ(gyre_listen_fds(), -EBADF);
    }
    set_env(NULL, NULL);

    loop = test_loop_new();
    memset(&s, 0, sizeof s);
    s.fd = -1;
    r = gyre_listen_fd(loop, &s.l, GYRE_LISTEN_FDS_START, NULL, lst_accept_cb);
    ASSERT_EQ(r, 0);
    accept_one(loop, &s, port);
    lst_close(loop, &s);
    test_loop_free(loop);
    if (saved >= 0) {
        ASSERT_EQ(dup2(saved, GYRE_LISTEN_FDS_START), GYRE_LISTEN_FDS_START);
        test_close(saved);
    }
}

/* ------------------------------------------------------------------------ */
/* Spawn: PATH search, stdio as streams                                      */
/* ------------------------------------------------------------------------ */

struct proc {
    gyre_process p;
    int calls;
    int64_t status;
};

static void proc_cb(gyre_process *p, int64_t status, int sig)
{
    struct proc *r = (struct proc *)p;

    ASSERT_EQ(sig, 0);
    r->calls++;
    r->status = status;
}

static void spawn_opts(gyre_spawn_opts *o, char *const *argv, uint32_t flags)
{
    memset(o, 0, sizeof *o);
    o->argv = argv;
    o->flags = flags;
    for (int i = 0; i < 3; i++)
        o->stdio[i].how = GYRE_STDIO_NULL;
}

/* Spawns and, when it started, waits for the exit status. */
static int spawn_run(gyre_loop *loop, const gyre_spawn_opts *o, int64_t *status)
{
    static struct proc r;
    int rc;

    memset(&r, 0, sizeof r);
    rc = gyre_spawn(loop, &r.p, o, proc_cb);
    if (rc < 0)
        return rc;
    ASSERT_EQ(r.calls, 0);
    test_run_until(loop, &r.calls, 1);
    *status = r.status;
    return 0;
}

void test_api_spawn_path(void)
{
    gyre_loop *loop = test_loop_new();
    char *sh_true[] = {"sh", "-c", "exit 7", NULL};
    char *noexec[] = {"gyre-api-noexec", NULL};
    char *missing[] = {"gyre-api-no-such-program", NULL};
    const char *old = getenv("PATH");
    char *saved = old != NULL ? strdup(old) : NULL;
    char file[256], path[512];
    gyre_spawn_opts o;
    int64_t status = -1;
    int fd;

    /* Found along PATH, past entries that do not exist or are not
     * directories. */
    ASSERT_SYS(setenv("PATH", "/nonexistent-gyre:/dev/null:/usr/bin:/bin", 1));
    spawn_opts(&o, sh_true, GYRE_SPAWN_SEARCH_PATH);
    ASSERT_EQ(spawn_run(loop, &o, &status), 0);
    ASSERT_EQ(status, 7);
    /* Without the flag a bare name is a path, relative to the working
     * directory, where there is no "sh". */
    o.cwd = test_tmpdir();
    o.flags = 0;
    ASSERT_EQ(chdir(test_tmpdir()), 0);
    ASSERT_EQ(spawn_run(loop, &o, &status), -ENOENT);
    ASSERT_EQ(chdir("/"), 0);
    o.cwd = NULL;
    /* A name with a '/' is never searched. */
    spawn_opts(&o, sh_true, GYRE_SPAWN_SEARCH_PATH);
    o.path = "./sh";
    ASSERT_EQ(spawn_run(loop, &o, &status), -ENOENT);
    /* Nowhere along PATH. */
    spawn_opts(&o, missing, GYRE_SPAWN_SEARCH_PATH);
    ASSERT_EQ(spawn_run(loop, &o, &status), -ENOENT);
    /* Only a file without execute permission: -EACCES (unless root, whom
     * execve refuses only when no execute bit is set at all, as here). */
    test_tmppath(file, sizeof file, "gyre-api-noexec");
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    test_write_bytes(fd, "#!/bin/sh\nexit 0\n", 17);
    test_close(fd);
    snprintf(path, sizeof path, "/nonexistent-gyre:%s", test_tmpdir());
    ASSERT_SYS(setenv("PATH", path, 1));
    spawn_opts(&o, noexec, GYRE_SPAWN_SEARCH_PATH);
    ASSERT_EQ(spawn_run(loop, &o, &status), -EACCES);
    /* No PATH at all, or an empty one: -ENOENT, no default path. */
    ASSERT_SYS(unsetenv("PATH"));
    spawn_opts(&o, sh_true, GYRE_SPAWN_SEARCH_PATH);
    ASSERT_EQ(spawn_run(loop, &o, &status), -ENOENT);
    ASSERT_SYS(setenv("PATH", "", 1));
    ASSERT_EQ(spawn_run(loop, &o, &status), -ENOENT);
    /* An absolute path needs no PATH. */
    o.path = "/bin/sh";
    ASSERT_EQ(spawn_run(loop, &o, &status), 0);
    ASSERT_EQ(status, 7);

    if (saved != NULL) {
        ASSERT_SYS(setenv("PATH", saved, 1));
        free(saved);
    }
    test_loop_free(loop);
}

static struct {
    gyre_stream in, out;
    gyre_stream_write_req wr;
    char got[64];
    size_t len;
    int eof, wrote, closed;
} ps;

static void ps_closed(gyre_stream *s)
{
    (void)s;
    ps.closed++;
}

static void ps_wrote(gyre_stream_write_req *req, int status)
{
    ASSERT_EQ(status, 0);
    ps.wrote++;
    /* A pipe has no half-close: closing the stream is the child's EOF. */
    ASSERT_EQ(gyre_stream_close(req->stream, ps_closed), 0);
}

static void ps_read(gyre_stream *s, int64_t nread, void *buf, const int *fds, uint32_t nfds)
{
    (void)fds;
    (void)nfds;
    if (nread <= 0) {
        ASSERT_EQ(nread, 0);
        ps.eof++;
        ASSERT_EQ(gyre_stream_close(s, ps_closed), 0);
        return;
    }
    ASSERT_LE(ps.len + (size_t)nread, sizeof ps.got);
    memcpy(ps.got + ps.len, buf, (size_t)nread);
    ps.len += (size_t)nread;
}

void test_api_spawn_streams(void)
{
    gyre_loop *loop = test_loop_new();
    char *cat[] = {"/bin/cat", NULL};
    static struct proc r;
    gyre_spawn_opts o;
    struct iovec iov = {.iov_base = "through cat", .iov_len = 11};

    memset(&ps, 0, sizeof ps);
    memset(&r, 0, sizeof r);
    spawn_opts(&o, cat, 0);
    o.stdio[0].how = GYRE_STDIO_STREAM;
    o.stdio[0].stream = &ps.in;
    o.stdio[1].how = GYRE_STDIO_STREAM;
    o.stdio[1].stream = &ps.out;
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, proc_cb), 0);
    ASSERT_EQ(r.p.stdio_fd[0], -1);
    ASSERT_EQ(r.p.stdio_fd[1], -1);
    ASSERT_EQ(r.p.stdio_fd[2], -1);
    ASSERT_TRUE(fcntl(gyre_stream_fd(&ps.in), F_GETFL) & O_NONBLOCK);
    ASSERT_TRUE(fcntl(gyre_stream_fd(&ps.out), F_GETFD) & FD_CLOEXEC);
    ASSERT_EQ(gyre_stream_read_start(&ps.out, NULL, ps_read), 0);
    ASSERT_EQ(gyre_stream_write(&ps.in, &ps.wr, &iov, 1, ps_wrote), 0);
    test_run_until(loop, &ps.closed, 2);
    ASSERT_EQ(ps.wrote, 1);
    ASSERT_EQ(ps.eof, 1);
    ASSERT_EQ(ps.len, 11);
    ASSERT_TRUE(memcmp(ps.got, "through cat", 11) == 0);
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.status, 0);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* Request init magic                                                        */
/* ------------------------------------------------------------------------ */

static int gai_calls, gai_status;

static void gai_cb(gyre_getaddrinfo_req *req, int status, struct addrinfo *res)
{
    (void)req;
    gai_calls++;
    gai_status = status;
    gyre_freeaddrinfo(res);
}

void test_api_request_init(void)
{
    gyre_loop *loop = test_loop_new();
    static gyre_getaddrinfo_req dns;
    static struct conn c;
    static struct usend s;
    static struct dgram d;
    struct sockaddr_in a;

    dgram_open(loop, &d);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(9);
    ASSERT_EQ(gyre_getaddrinfo_req_init(NULL), -EINVAL);
    ASSERT_EQ(gyre_connect_req_init(NULL), -EINVAL);
    ASSERT_EQ(gyre_udp_send_req_init(NULL), -EINVAL);
#ifdef NDEBUG
    /* Stack garbage, and the zero fill that used to be the rule: -EINVAL
     * from every entry point, never -EBUSY, nothing called back. (Debug
     * builds assert instead.) */
    for (int fill = 0; fill < 2; fill++) {
        memset(&dns, fill ? 0xa5 : 0, sizeof dns);
        memset(&c, fill ? 0xa5 : 0, sizeof c);
        memset(&s, fill ? 0xa5 : 0, sizeof s);
        c.calls = s.calls = 0;
        ASSERT_EQ(gyre_getaddrinfo(loop, &dns, "127.0.0.1", NULL, NULL, gai_cb), -EINVAL);
        ASSERT_EQ(gyre_getaddrinfo_cancel(&dns), -EINVAL);
        ASSERT_EQ(gyre_connect(loop, &c.req, "127.0.0.1", "9", NULL, conn_cb), -EINVAL);
        ASSERT_EQ(gyre_connect_addr(loop, &c.req, (struct sockaddr *)&a, sizeof a, NULL, conn_cb),
                  -EINVAL);
        ASSERT_EQ(gyre_connect_cancel(&c.req), -EINVAL);
        ASSERT_EQ(gyre_udp_send(&d.u, &s.req, "x", 1, (struct sockaddr *)&a, sizeof a, usend_cb),
                  -EINVAL);
    }
    test_run_nowait(loop, 2);
    ASSERT_EQ(gai_calls, 0);
    ASSERT_EQ(c.calls, 0);
    ASSERT_EQ(s.calls, 0);
#endif
    /* Prepared (the caller's data kept), they work, and are reused from
     * their callbacks on without another init. */
    dns.data = &dns;
    ASSERT_EQ(gyre_getaddrinfo_req_init(&dns), 0);
    ASSERT_TRUE(dns.data == &dns);
    ASSERT_EQ(gyre_getaddrinfo_cancel(&dns), -ENOENT);
    for (int round = 1; round <= 2; round++) {
        struct addrinfo hints;

        memset(&hints, 0, sizeof hints);
        hints.ai_flags = AI_NUMERICHOST;
        ASSERT_EQ(gyre_getaddrinfo(loop, &dns, "127.0.0.1", NULL, &hints, gai_cb), 0);
        ASSERT_EQ(gyre_getaddrinfo(loop, &dns, "127.0.0.1", NULL, &hints, gai_cb), -EBUSY);
        test_run_until(loop, &gai_calls, round);
        ASSERT_EQ(gai_status, 0);
    }
    ASSERT_EQ(gyre_connect_req_init(&c.req), 0);
    ASSERT_EQ(gyre_connect_cancel(&c.req), -ENOENT);
    ASSERT_EQ(gyre_udp_send_req_init(&s.req), 0);
    s.calls = 0;
    for (int round = 1; round <= 2; round++) {
        ASSERT_EQ(gyre_udp_send(&d.u, &s.req, "x", 1, (struct sockaddr *)&d.addr, sizeof d.addr,
                                usend_cb),
                  0);
        test_run_until(loop, &s.calls, round);
        ASSERT_EQ(s.result, 1);
    }
    dgram_close(loop, &d);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* Closing an async from its own callback                                    */
/* ------------------------------------------------------------------------ */

struct closer {
    gyre_async a;
    pthread_t thread;
    atomic_int seq; /* the sender's progress, stored before each send */
    int last;       /* the final value of seq */
    int calls;
    int *done;
};

static void *closer_thread(void *arg)
{
    struct closer *c = arg;

    for (int i = 1; i <= c->last; i++) {
        atomic_store(&c->seq, i);
        ASSERT_EQ(gyre_async_send(&c->a), 0);
    }
    return NULL;
}

static void closer_cb(gyre_async *a)
{
    struct closer *c = (struct closer *)a;
    int *done = c->done;

    c->calls++;
    if (atomic_load(&c->seq) != c->last)
        return;
    /* The last message is here, but its send may still be running: join
     * the thread (a send never waits for the loop, so this returns at
     * once), after which nothing can touch *a. Then close it and free it,
     * inside its own callback. */
    ASSERT_EQ(pthread_join(c->thread, NULL), 0);
    ASSERT_EQ(gyre_async_close(a), 0);
    ASSERT_EQ(gyre_async_close(a), 0);
    test_poison_free(c, sizeof *c);
    (*done)++;
}

void test_api_async_close_in_cb(void)
{
    gyre_loop *loop = test_loop_new();
    int rounds = (int)test_scale(50), done = 0;

    for (int i = 0; i < rounds; i++) {
        struct closer *c = calloc(1, sizeof *c);

        ASSERT_TRUE(c != NULL);
        c->last = 1 + i % 8;
        c->done = &done;
        ASSERT_EQ(gyre_async_init(loop, &c->a, closer_cb), 0);
        ASSERT_EQ(pthread_create(&c->thread, NULL, closer_thread, c), 0);
        test_run_until(loop, &done, i + 1);
    }
    ASSERT_EQ(done, rounds);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* select: an fd at FD_SETSIZE is refused at submit                          */
/* ------------------------------------------------------------------------ */

void test_api_submit_fd_setsize(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t, c;
    char buf[8];
    int sp[2], high;

    ASSERT_GE(test_nofile(FD_SETSIZE + 64), FD_SETSIZE + 64);
    test_socketpair(sp);
    high = fcntl(sp[0], F_DUPFD_CLOEXEC, FD_SETSIZE);
    ASSERT_EQ(high, FD_SETSIZE);
    test_write_bytes(sp[1], "abc", 3);
    memset(&t, 0, sizeof t);
    gyre_op_recv(&t.op, high, buf, sizeof buf, 0);
    if (gyre_loop_caps(loop) & GYRE_CAP_ANY_FD) {
        ASSERT_EQ(test_op_run(loop, &t), 3);
        ASSERT_TRUE(memcmp(buf, "abc", 3) == 0);
    } else {
        /* Refused at once: nothing queued, no callback, for every op that
         * would wait for readiness. */
        ASSERT_EQ(gyre_submit(loop, &t.op, test_op_cb), -EINVAL);
        gyre_op_poll(&t.op, high, GYRE_IN);
        ASSERT_EQ(gyre_submit(loop, &t.op, test_op_cb), -EINVAL);
        gyre_op_send(&t.op, high, "x", 1, 0);
        ASSERT_EQ(gyre_submit(loop, &t.op, test_op_cb), -EINVAL);
        gyre_op_read(&t.op, high, buf, sizeof buf, GYRE_OFF_CUR);
        ASSERT_EQ(gyre_submit(loop, &t.op, test_op_cb), -EINVAL);
        gyre_op_accept_multishot(&t.op, high);
        ASSERT_EQ(gyre_submit(loop, &t.op, test_op_cb), -EINVAL);
        test_run_nowait(loop, 2);
        ASSERT_EQ(t.calls, 0);
        /* The bytes are still there, for the fd below FD_SETSIZE. */
        gyre_op_recv(&t.op, sp[0], buf, sizeof buf, 0);
        ASSERT_EQ(test_op_run(loop, &t), 3);
    }
    /* What needs no readiness works on every backend: shutdown, close. */
    memset(&c, 0, sizeof c);
    gyre_op_shutdown(&c.op, high, SHUT_WR);
    ASSERT_EQ(test_op_run(loop, &c), 0);
    gyre_op_close(&c.op, high);
    ASSERT_EQ(test_op_run(loop, &c), 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* UDP truncation                                                            */
/* ------------------------------------------------------------------------ */

static struct {
    int got, trunc;
    int64_t result[2];
    uint32_t len[2], flags[2];
    char first[8];
} tr;

static void tr_cb(gyre_udp *u, int64_t result, const gyre_udp_msg *msg)
{
    (void)u;
    ASSERT_GE(result, 0);
    ASSERT_LT(tr.got, 2);
    tr.result[tr.got] = result;
    tr.len[tr.got] = msg->len;
    tr.flags[tr.got] = msg->flags;
    if (tr.got == 0)
        memcpy(tr.first, msg->data, msg->len);
    tr.got++;
}

void test_api_udp_truncation(void)
{
    gyre_loop *loop = test_loop_new();
    static struct dgram a, b;
    struct test_op t;
    struct msghdr mh;
    struct iovec iov;
    char big[100], buf[8];

    for (int i = 0; i < (int)sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    dgram_open(loop, &a);
    dgram_open(loop, &b);

    /* gyre_udp: result == msg->len == the buffer size, GYRE_UDP_TRUNC, the
     * rest of the datagram gone; the next datagram is whole. */
    memset(&tr, 0, sizeof tr);
    ASSERT_EQ(gyre_udp_recv_start(&b.u, 4, 8, tr_cb), 0);
    {
        gyre_udp_msg m[2];

        memset(m, 0, sizeof m);
        m[0].data = big;
        m[0].len = sizeof big;
        m[1].data = "short";
        m[1].len = 5;
        m[0].addr = m[1].addr = (struct sockaddr *)&b.addr;
        m[0].addrlen = m[1].addrlen = sizeof b.addr;
        for (int i = 0; i < 2; i++) {
            int r;

            while ((r = gyre_udp_try_send(&a.u, &m[i], 1)) == -EAGAIN) /* injected */
                test_run_nowait(loop, 1);
            ASSERT_EQ(r, 1);
        }
    }
    test_run_until(loop, &tr.got, 2);
    ASSERT_EQ(tr.result[0], 8);
    ASSERT_EQ(tr.len[0], 8);
    ASSERT_EQ(tr.flags[0], GYRE_UDP_TRUNC);
    ASSERT_TRUE(memcmp(tr.first, big, 8) == 0);
    ASSERT_EQ(tr.result[1], 5);
    ASSERT_EQ(tr.flags[1], 0);
    ASSERT_EQ(gyre_udp_recv_stop(&b.u), 0);

    /* The recv and recvmsg ops on a UDP socket are the syscalls': the result
     * is the bytes kept, MSG_TRUNC in msg_flags says it was cut, and
     * MSG_TRUNC as a flag of the call makes the result the datagram's full
     * length. The same on every backend. */
    dgram_try_send(loop, &a, &b, "0123456789abcdef");
    memset(&t, 0, sizeof t);
    memset(&mh, 0, sizeof mh);
    iov.iov_base = buf;
    iov.iov_len = sizeof buf;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    gyre_op_recvmsg(&t.op, gyre_udp_fd(&b.u), &mh, 0);
    ASSERT_EQ(test_op_run(loop, &t), 8);
    ASSERT_TRUE(memcmp(buf, "01234567", 8) == 0);
    ASSERT_TRUE(mh.msg_flags & MSG_TRUNC);
    dgram_try_send(loop, &a, &b, "0123456789abcdef");
    gyre_op_recv(&t.op, gyre_udp_fd(&b.u), buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), 8);
    dgram_try_send(loop, &a, &b, "0123456789abcdef");
    gyre_op_recv(&t.op, gyre_udp_fd(&b.u), buf, sizeof buf, MSG_TRUNC);
    ASSERT_EQ(test_op_run(loop, &t), 16);
    ASSERT_TRUE(memcmp(buf, "01234567", 8) == 0);

    dgram_close(loop, &a);
    dgram_close(loop, &b);
    test_loop_free(loop);
}
