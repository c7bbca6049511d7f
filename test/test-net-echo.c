/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-net-echo.c: the echo server and clients of test-net-echo.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-net-echo.h"

static void echo_read(struct echo_conn *c);

static void closed_cb(gyre_op *op)
{
    struct echo_conn *c = op->data;

    ASSERT_EQ(op->result, 0);
    c->used = 0;
    c->s->closed++;
}

static void conn_close(struct echo_conn *c)
{
    c->cl.data = c;
    gyre_op_close(&c->cl, c->fd);
    ASSERT_EQ(gyre_submit(c->s->loop, &c->cl, closed_cb), 0);
}

static void wrote_cb(gyre_op *op)
{
    struct echo_conn *c = op->data;

    if (op->result < 0) {
        conn_close(c);
        return;
    }
    c->s->echoed++;
    echo_read(c);
}

static void read_cb(gyre_op *op)
{
    struct echo_conn *c = op->data;

    if (op->result <= 0) {
        conn_close(c);
        return;
    }
    c->wr.data = c;
    /* Messages are short: a loopback send takes them whole. */
    gyre_op_send(&c->wr, c->fd, c->buf, (uint32_t)op->result, 0);
    ASSERT_EQ(gyre_submit(c->s->loop, &c->wr, wrote_cb), 0);
}

static void echo_read(struct echo_conn *c)
{
    c->rd.data = c;
    gyre_op_recv(&c->rd, c->fd, c->buf, sizeof c->buf, 0);
    ASSERT_EQ(gyre_submit(c->s->loop, &c->rd, read_cb), 0);
}

void assert_fd_flags(int fd)
{
    int fdfl = fcntl(fd, F_GETFD), fl = fcntl(fd, F_GETFL);

    ASSERT_SYS(fdfl);
    ASSERT_SYS(fl);
    ASSERT_TRUE((fdfl & FD_CLOEXEC) != 0);
    ASSERT_TRUE((fl & O_NONBLOCK) != 0);
}

void echo_accept_cb(gyre_listener *l, int fd)
{
    struct echo_server *s = l->data;

    if (fd < 0)
        test_fail(__FILE__, __LINE__, "listener failed: %s", gyre_strerror(fd));
    assert_fd_flags(fd);
    s->accepted++;
    for (int i = 0; i < ECHO_CONNS; i++) {
        if (!s->c[i].used) {
            s->c[i].used = 1;
            s->c[i].fd = fd;
            s->c[i].s = s;
            echo_read(&s->c[i]);
            return;
        }
    }
    FAIL("echo server: out of connection slots");
}

void echo_event_cb(gyre_listener *l, int event, const gyre_listen_stats *stats)
{
    struct echo_server *s = l->data;

    ASSERT_TRUE(stats != NULL);
    ASSERT_LT(s->nevents, 8);
    s->events[s->nevents++] = event;
}

void echo_init(struct echo_server *s, gyre_loop *loop)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->l.data = s;
}

static void listener_closed_cb(gyre_listener *l)
{
    struct echo_server *s = l->data;

    s->listener_closed++;
}

void echo_shutdown(struct echo_server *s)
{
    for (int i = 0; i < ECHO_CONNS; i++) {
        /* The read waiting on each open connection ends with -ECANCELED
         * and read_cb closes it; one already ending is closing anyway. */
        if (s->c[i].used) {
            int r = gyre_cancel(s->loop, &s->c[i].rd);

            ASSERT_TRUE(r == 0 || r == -ENOENT);
        }
    }
    ASSERT_EQ(gyre_listener_close(&s->l, listener_closed_cb), 0);
    ASSERT_EQ(gyre_listener_close(&s->l, listener_closed_cb), -EALREADY);
    ASSERT_EQ(s->listener_closed, 0); /* never inside the call */
    test_run_until(s->loop, &s->closed, s->accepted);
    test_run_until(s->loop, &s->listener_closed, 1);
    test_run_nowait(s->loop, 3);
    ASSERT_EQ(s->listener_closed, 1);
}

int echo_client_connect(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ASSERT_SYS(fd);
    ASSERT_SYS(connect(fd, addr, len));
    return fd;
}

void echo_round_trip(struct echo_server *s, int fd, const char *msg)
{
    size_t n = strlen(msg);
    char buf[256];

    test_write_bytes(fd, msg, n);
    test_run_until(s->loop, &s->echoed, s->echoed + 1);
    test_read_bytes(fd, buf, n);
    ASSERT_TRUE(memcmp(buf, msg, n) == 0);
}

int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    ASSERT_TRUE(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1; /* the directory's own fd */
}
