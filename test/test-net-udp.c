/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-net-udp.c: gyre_udp on loopback -- datagrams both ways with their
 * source addresses (IPv4 and IPv6), truncation flagged for a datagram longer
 * than the buffer, a burst of 1,000 datagrams all received exactly once
 * (windowed, with a receive buffer sized for it), a stop in the middle of a
 * batch that loses nothing, and closing with a send in flight.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#include "runner.h"

struct peer {
    gyre_udp u;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int got;
    int trunc;
    int closed;
    int stop_after;
    uint32_t last_len;
    char last[2048];
    struct sockaddr_storage from;
    socklen_t fromlen;
    unsigned char *seen; /* burst: one flag per sequence number */
    int seen_n;
};

static void recv_cb(gyre_udp *u, int64_t result, const gyre_udp_msg *msg)
{
    struct peer *p = (struct peer *)u;

    if (result < 0)
        test_fail(__FILE__, __LINE__, "udp receive: %s", gyre_strerror((int)result));
    ASSERT_TRUE(msg != NULL);
    ASSERT_EQ(result, msg->len);
    p->got++;
    if (msg->flags & GYRE_UDP_TRUNC)
        p->trunc++;
    p->last_len = msg->len;
    memcpy(p->last, msg->data, msg->len);
    ASSERT_LE(msg->addrlen, sizeof p->from);
    memcpy(&p->from, msg->addr, msg->addrlen);
    p->fromlen = msg->addrlen;
    if (p->seen != NULL) {
        uint32_t seq;

        ASSERT_EQ(msg->len, 32);
        memcpy(&seq, msg->data, sizeof seq);
        ASSERT_LT(seq, (uint32_t)p->seen_n);
        ASSERT_EQ(p->seen[seq], 0);
        p->seen[seq] = 1;
    }
    if (p->stop_after != 0 && p->got == p->stop_after)
        ASSERT_EQ(gyre_udp_recv_stop(u), 0);
}

static void peer_open(gyre_loop *loop, struct peer *p, int family, const gyre_udp_opts *o)
{
    struct sockaddr_storage a;
    socklen_t len;

    memset(p, 0, sizeof *p);
    memset(&a, 0, sizeof a);
    if (family == AF_INET) {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&a;

        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a4;
    } else {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a;

        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
        len = sizeof *a6;
    }
    ASSERT_EQ(gyre_udp_open(loop, &p->u, (struct sockaddr *)&a, len, o), 0);
    p->addrlen = sizeof p->addr;
    ASSERT_EQ(gyre_udp_sockname(&p->u, (struct sockaddr *)&p->addr, &p->addrlen), 0);
}

static void closed_cb(gyre_udp *u)
{
    ((struct peer *)u)->closed++;
}

static void peer_close(gyre_loop *loop, struct peer *p)
{
    ASSERT_EQ(gyre_udp_close(&p->u, closed_cb), 0);
    ASSERT_EQ(gyre_udp_close(&p->u, closed_cb), -EALREADY);
    ASSERT_EQ(p->closed, 0);
    test_run_until(loop, &p->closed, 1);
}

struct send {
    gyre_udp_send_req req;
    int calls;
    int64_t result;
};

static void send_cb(gyre_udp_send_req *req, int64_t result)
{
    struct send *s = (struct send *)req;

    s->calls++;
    s->result = result;
}

static void round_trip(int family)
{
    gyre_loop *loop = test_loop_new();
    static struct peer a, b;
    static struct send s;
    gyre_udp_msg m;

    ASSERT_EQ(gyre_udp_send_req_init(&s.req), 0);
    peer_open(loop, &a, family, NULL);
    peer_open(loop, &b, family, NULL);
    ASSERT_EQ(gyre_udp_recv_start(&a.u, 8, 2048, recv_cb), 0);
    ASSERT_EQ(gyre_udp_recv_start(&b.u, 8, 2048, recv_cb), 0);

    /* a -> b by an op; b sees a's address. */
    ASSERT_EQ(
        gyre_udp_send(&a.u, &s.req, "ping", 4, (struct sockaddr *)&b.addr, b.addrlen, send_cb), 0);
    ASSERT_EQ(
        gyre_udp_send(&a.u, &s.req, "ping", 4, (struct sockaddr *)&b.addr, b.addrlen, send_cb),
        -EBUSY);
    test_run_until(loop, &s.calls, 1);
    ASSERT_EQ(s.result, 4);
    test_run_until(loop, &b.got, 1);
    ASSERT_EQ(b.last_len, 4);
    ASSERT_TRUE(memcmp(b.last, "ping", 4) == 0);
    ASSERT_EQ(b.fromlen, a.addrlen);
    ASSERT_TRUE(memcmp(&b.from, &a.addr, a.addrlen) == 0);
    ASSERT_EQ(b.trunc, 0);

    /* b -> the address it saw, without waiting. */
    memset(&m, 0, sizeof m);
    m.data = "pong!";
    m.len = 5;
    m.addr = (struct sockaddr *)&b.from;
    m.addrlen = b.fromlen;
    {
        int r;

        while ((r = gyre_udp_try_send(&b.u, &m, 1)) == -EAGAIN) /* injected */
            test_run_nowait(loop, 1);
        ASSERT_EQ(r, 1);
    }
    test_run_until(loop, &a.got, 1);
    ASSERT_EQ(a.last_len, 5);
    ASSERT_TRUE(memcmp(a.last, "pong!", 5) == 0);
    ASSERT_TRUE(memcmp(&a.from, &b.addr, b.addrlen) == 0);

    peer_close(loop, &a);
    peer_close(loop, &b);
    ASSERT_EQ(gyre_udp_fd(&a.u), -EBADF);
    test_loop_free(loop);
}

void test_net_udp_round_trip4(void)
{
    round_trip(AF_INET);
}

void test_net_udp_round_trip6(void)
{
    round_trip(AF_INET6);
}

static void send_all(gyre_loop *loop, struct peer *from, const struct peer *to, const void *buf,
                     uint32_t len)
{
    gyre_udp_msg m;
    int r;

    memset(&m, 0, sizeof m);
    m.data = buf;
    m.len = len;
    m.addr = (const struct sockaddr *)&to->addr;
    m.addrlen = to->addrlen;
    while ((r = gyre_udp_try_send(&from->u, &m, 1)) == -EAGAIN)
        test_run_nowait(loop, 1);
    ASSERT_EQ(r, 1);
}

void test_net_udp_truncation(void)
{
    gyre_loop *loop = test_loop_new();
    static struct peer a, b;
    char big[100];

    peer_open(loop, &a, AF_INET, NULL);
    peer_open(loop, &b, AF_INET, NULL);
    ASSERT_EQ(gyre_udp_recv_start(&b.u, 4, 16, recv_cb), 0);
    for (int i = 0; i < (int)sizeof big; i++)
        big[i] = (char)i;
    send_all(loop, &a, &b, big, sizeof big);
    send_all(loop, &a, &b, big, 16); /* exactly the buffer: not cut */
    test_run_until(loop, &b.got, 2);
    ASSERT_EQ(b.trunc, 1);
    ASSERT_EQ(b.last_len, 16);
    ASSERT_TRUE(memcmp(b.last, big, 16) == 0);
    peer_close(loop, &a);
    peer_close(loop, &b);
    test_loop_free(loop);
}

/* 1,000 datagrams of 32 bytes, sent in batches of up to 64 with at most 256
 * outstanding, so the receive buffer (asked for 1 MiB, and at least the
 * system default) never overflows: UDP on loopback drops only then. */
void test_net_udp_burst(void)
{
    gyre_loop *loop = test_loop_new();
    static struct peer a, b;
    static unsigned char seen[1000];
    static char data[1000][32];
    static gyre_udp_msg msgs[1000];
    gyre_udp_opts o;
    int n = (int)test_scale(1000), sent = 0;

    memset(&o, 0, sizeof o);
    o.rcvbuf = 1 << 20;
    peer_open(loop, &a, AF_INET, NULL);
    peer_open(loop, &b, AF_INET, &o);
    b.seen = seen;
    b.seen_n = n;
    ASSERT_EQ(gyre_udp_recv_start(&b.u, 32, 64, recv_cb), 0);
    for (int i = 0; i < n; i++) {
        uint32_t seq = (uint32_t)i;

        memset(data[i], 'x', sizeof data[i]);
        memcpy(data[i], &seq, sizeof seq);
        msgs[i].data = data[i];
        msgs[i].len = sizeof data[i];
        msgs[i].addr = (struct sockaddr *)&b.addr;
        msgs[i].addrlen = b.addrlen;
    }
    while (sent < n) {
        int want = n - sent < 64 ? n - sent : 64, r;

        if (sent - b.got >= 256) {
            test_run_until(loop, &b.got, sent - 128);
            continue;
        }
        r = gyre_udp_try_send(&a.u, &msgs[sent], (uint32_t)want);
        if (r == -EAGAIN) {
            test_run_nowait(loop, 1);
            continue;
        }
        ASSERT_GT(r, 0);
        sent += r;
    }
    test_run_until(loop, &b.got, n);
    test_run_nowait(loop, 3);
    ASSERT_EQ(b.got, n);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(seen[i], 1);
    ASSERT_EQ(b.trunc, 0);
    peer_close(loop, &a);
    peer_close(loop, &b);
    test_loop_free(loop);
}

/* A stop inside the callback, mid-batch: nothing more until the restart,
 * then the rest of the batch in order, nothing lost. */
void test_net_udp_stop_in_batch(void)
{
    gyre_loop *loop = test_loop_new();
    static struct peer a, b;

    peer_open(loop, &a, AF_INET, NULL);
    peer_open(loop, &b, AF_INET, NULL);
    for (int i = 0; i < 10; i++) {
        char c = (char)('0' + i);

        send_all(loop, &a, &b, &c, 1);
    }
    b.stop_after = 3;
    ASSERT_EQ(gyre_udp_recv_start(&b.u, 16, 8, recv_cb), 0);
    test_run_until(loop, &b.got, 3);
    test_run_nowait(loop, 5);
    ASSERT_EQ(b.got, 3);
    ASSERT_EQ(b.last[0], '2');
    b.stop_after = 0;
    /* Changing the buffers while datagrams wait is refused. */
    ASSERT_EQ(gyre_udp_recv_start(&b.u, 16, 16, recv_cb), -EBUSY);
    ASSERT_EQ(gyre_udp_recv_start(&b.u, 16, 8, recv_cb), 0);
    ASSERT_EQ(b.got, 3); /* never inside the start call */
    test_run_until(loop, &b.got, 10);
    ASSERT_EQ(b.last[0], '9');
    peer_close(loop, &a);
    peer_close(loop, &b);
    test_loop_free(loop);
}

void test_net_udp_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    static struct peer a;
    static struct send s;
    struct sockaddr_in addr;
    gyre_udp_opts o;

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_UNIX;
    ASSERT_EQ(gyre_udp_open(loop, &a.u, (struct sockaddr *)&addr, sizeof addr, NULL), -EINVAL);
    memset(&o, 0, sizeof o);
    o.flags = 0x80;
    addr.sin_family = AF_INET;
    ASSERT_EQ(gyre_udp_open(loop, &a.u, (struct sockaddr *)&addr, sizeof addr, &o), -EINVAL);
    peer_open(loop, &a, AF_INET, NULL);
    ASSERT_EQ(gyre_udp_recv_start(&a.u, 0, 64, recv_cb), -EINVAL);
    ASSERT_EQ(gyre_udp_recv_start(&a.u, GYRE_UDP_BATCH_MAX + 1, 64, recv_cb), -EINVAL);
    ASSERT_EQ(gyre_udp_recv_start(&a.u, 4, 0, recv_cb), -EINVAL);
    ASSERT_EQ(gyre_udp_recv_start(&a.u, 4, GYRE_UDP_SIZE_MAX + 1, recv_cb), -EINVAL);
    ASSERT_EQ(gyre_udp_recv_start(&a.u, 4, 64, NULL), -EINVAL);
    /* A send in flight when the socket closes completes once. */
    ASSERT_EQ(gyre_udp_send_req_init(&s.req), 0);
    ASSERT_EQ(gyre_udp_send(&a.u, &s.req, "x", 1, (struct sockaddr *)&a.addr, a.addrlen, send_cb),
              0);
    peer_close(loop, &a);
    test_run_until(loop, &s.calls, 1);
    ASSERT_TRUE(s.result == 1 || s.result == -ECANCELED);
    ASSERT_EQ(gyre_udp_send(&a.u, &s.req, "x", 1, NULL, 0, send_cb), -EBADF);
    test_loop_free(loop);
}
