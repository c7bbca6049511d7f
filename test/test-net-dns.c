/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-net-dns.c: gyre_getaddrinfo and gyre_connect, with names from
 * /etc/hosts only (no outside network, ever): "localhost" and a name the
 * hosts file lists, cancel of a resolution queued behind work that blocks
 * the DNS lane (-ECANCELED exactly once), connect to a loopback listener, to
 * a closed port (-ECONNREFUSED), with a deadline too short to make (-ETIME,
 * or the connection if it won), cancelled, and 4,000 connect/close cycles
 * that leave the descriptor count where it started (RELIABILITY K2).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-net-echo.h"

struct dns {
    gyre_getaddrinfo_req req;
    int calls;
    int status;
    struct addrinfo *res;
};

static void dns_cb(gyre_getaddrinfo_req *req, int status, struct addrinfo *res)
{
    struct dns *d = (struct dns *)req;

    d->calls++;
    d->status = status;
    d->res = res;
    if (status < 0)
        ASSERT_TRUE(res == NULL);
    else
        ASSERT_TRUE(res != NULL);
}

/* Whether res holds the IPv4 address text4 (or IPv6 text6). */
static int has_addr(const struct addrinfo *res, int family, const char *text)
{
    unsigned char want[16];

    ASSERT_EQ(inet_pton(family, text, want), 1);
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family != family)
            continue;
        if (family == AF_INET &&
            memcmp(&((struct sockaddr_in *)ai->ai_addr)->sin_addr, want, 4) == 0)
            return 1;
        if (family == AF_INET6 &&
            memcmp(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, want, 16) == 0)
            return 1;
    }
    return 0;
}

static void resolve(gyre_loop *loop, struct dns *d, const char *name, int family)
{
    struct addrinfo hints;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    d->calls = 0;
    ASSERT_EQ(gyre_getaddrinfo(loop, &d->req, name, "80", &hints, dns_cb), 0);
    ASSERT_EQ(gyre_getaddrinfo(loop, &d->req, name, "80", &hints, dns_cb), -EBUSY);
    ASSERT_EQ(d->calls, 0);
    test_run_until(loop, &d->calls, 1);
    test_run_nowait(loop, 2);
    ASSERT_EQ(d->calls, 1);
}

void test_net_dns_localhost(void)
{
    gyre_loop *loop = test_loop_new();
    static struct dns d;

    ASSERT_EQ(gyre_getaddrinfo_req_init(&d.req), 0);
    resolve(loop, &d, "localhost", AF_INET);
    ASSERT_EQ(d.status, 0);
    ASSERT_TRUE(has_addr(d.res, AF_INET, "127.0.0.1"));
    ASSERT_EQ(ntohs(((struct sockaddr_in *)d.res->ai_addr)->sin_port), 80);
    gyre_freeaddrinfo(d.res);
    gyre_freeaddrinfo(NULL);

    /* Numeric hosts and a service alone. */
    resolve(loop, &d, "::1", AF_UNSPEC);
    ASSERT_EQ(d.status, 0);
    ASSERT_TRUE(has_addr(d.res, AF_INET6, "::1"));
    gyre_freeaddrinfo(d.res);
    d.calls = 0;
    ASSERT_EQ(gyre_getaddrinfo(loop, &d.req, NULL, "443", NULL, dns_cb), 0);
    test_run_until(loop, &d.calls, 1);
    ASSERT_EQ(d.status, 0);
    gyre_freeaddrinfo(d.res);
    test_loop_free(loop);
}

/* A name /etc/hosts lists, with its address: the machine's own hostname
 * when listed, else the first name that is not "localhost", else
 * "localhost". Only a name found there is ever asked for. */
static int hosts_name(char *name, size_t nlen, char *addr, size_t alen, int *family)
{
    FILE *f = fopen("/etc/hosts", "r");
    char line[512], self[256] = "", best[256] = "", best_addr[64] = "";
    int best_rank = 0;
    unsigned char tmp[16];

    if (f == NULL)
        return -1;
    if (gethostname(self, sizeof self) < 0)
        self[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL) {
        char *save = NULL, *a, *n;

        if (strchr(line, '#') != NULL)
            *strchr(line, '#') = '\0';
        a = strtok_r(line, " \t\r\n", &save);
        if (a == NULL)
            continue;
        while ((n = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
            int rank = strcmp(n, self) == 0 ? 3 : strcmp(n, "localhost") != 0 ? 2 : 1;

            if (rank > best_rank && strlen(n) < sizeof best && strlen(a) < sizeof best_addr &&
                strchr(a, '%') == NULL) {
                best_rank = rank;
                snprintf(best, sizeof best, "%s", n);
                snprintf(best_addr, sizeof best_addr, "%s", a);
            }
        }
    }
    fclose(f);
    if (best_rank == 0)
        return -1;
    snprintf(name, nlen, "%s", best);
    snprintf(addr, alen, "%s", best_addr);
    *family = inet_pton(AF_INET, best_addr, tmp) == 1 ? AF_INET : AF_INET6;
    return 0;
}

void test_net_dns_hosts_file(void)
{
    gyre_loop *loop = test_loop_new();
    static struct dns d;
    char name[256], addr[64];
    int family;

    ASSERT_EQ(gyre_getaddrinfo_req_init(&d.req), 0);
    if (hosts_name(name, sizeof name, addr, sizeof addr, &family) < 0)
        FAIL("/etc/hosts lists no name");
    resolve(loop, &d, name, family);
    if (d.status != 0)
        test_fail(__FILE__, __LINE__, "%s: %s", name, gyre_strerror(d.status));
    ASSERT_TRUE(has_addr(d.res, family, addr));
    gyre_freeaddrinfo(d.res);
    test_loop_free(loop);
}

/* Work that holds the DNS lane until released. */
struct blocker {
    gyre_op op;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, release, calls;
};

static int64_t block_fn(void *arg)
{
    struct blocker *b = arg;

    pthread_mutex_lock(&b->mu);
    b->started = 1;
    pthread_cond_broadcast(&b->cv);
    while (!b->release)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    return 7;
}

static void block_cb(gyre_op *op)
{
    struct blocker *b = op->data;

    ASSERT_EQ(op->result, 7);
    b->calls++;
}

void test_net_dns_cancel_queued(void)
{
    gyre_pool_opts po;
    gyre_pool *pool;
    gyre_loop_opts lo;
    gyre_loop *loop;
    static struct blocker b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    static struct dns d;

    ASSERT_EQ(gyre_getaddrinfo_req_init(&d.req), 0);
    /* One DNS thread, so one blocker holds the lane. */
    memset(&po, 0, sizeof po);
    po.threads[GYRE_LANE_DNS] = 1;
    ASSERT_EQ(gyre_pool_new(&pool, &po), 0);
    memset(&lo, 0, sizeof lo);
    lo.pool = pool;
    loop = test_loop_new_opts(&lo);

    b.op.data = &b;
    gyre_op_work(&b.op, block_fn, &b, GYRE_LANE_DNS);
    ASSERT_EQ(gyre_submit(loop, &b.op, block_cb), 0);
    pthread_mutex_lock(&b.mu);
    while (!b.started)
        pthread_cond_wait(&b.cv, &b.mu);
    pthread_mutex_unlock(&b.mu);

    ASSERT_EQ(gyre_getaddrinfo_cancel(&d.req), -ENOENT);
    ASSERT_EQ(gyre_getaddrinfo(loop, &d.req, "localhost", "80", NULL, dns_cb), 0);
    ASSERT_EQ(gyre_getaddrinfo_cancel(&d.req), 0);
    ASSERT_EQ(gyre_getaddrinfo_cancel(&d.req), -EALREADY);
    ASSERT_EQ(d.calls, 0);
    test_run_until(loop, &d.calls, 1);
    ASSERT_EQ(d.status, -ECANCELED);
    ASSERT_TRUE(d.res == NULL);

    pthread_mutex_lock(&b.mu);
    b.release = 1;
    pthread_cond_broadcast(&b.cv);
    pthread_mutex_unlock(&b.mu);
    test_run_until(loop, &b.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(d.calls, 1);

    /* The lane works on: the same request resolves now. */
    d.calls = 0;
    ASSERT_EQ(gyre_getaddrinfo(loop, &d.req, "localhost", "80", NULL, dns_cb), 0);
    test_run_until(loop, &d.calls, 1);
    ASSERT_EQ(d.status, 0);
    gyre_freeaddrinfo(d.res);
    test_loop_free(loop);
    ASSERT_EQ(gyre_pool_free(pool), 0);
}

void test_net_dns_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    static struct dns d;
    char longname[300];

    ASSERT_EQ(gyre_getaddrinfo_req_init(&d.req), 0);
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ASSERT_EQ(gyre_getaddrinfo(NULL, &d.req, "localhost", NULL, NULL, dns_cb), -EINVAL);
    ASSERT_EQ(gyre_getaddrinfo(loop, NULL, "localhost", NULL, NULL, dns_cb), -EINVAL);
    ASSERT_EQ(gyre_getaddrinfo(loop, &d.req, "localhost", NULL, NULL, NULL), -EINVAL);
    ASSERT_EQ(gyre_getaddrinfo(loop, &d.req, NULL, NULL, NULL, dns_cb), -EINVAL);
    ASSERT_EQ(gyre_getaddrinfo(loop, &d.req, longname, NULL, NULL, dns_cb), -EINVAL);
    ASSERT_EQ(gyre_getaddrinfo(loop, &d.req, "localhost", "a-service-name-longer-than-31-chars",
                               NULL, dns_cb),
              -EINVAL);
    /* A bad flag comes back as a status, through the callback. */
    {
        struct addrinfo hints;

        memset(&hints, 0, sizeof hints);
        hints.ai_flags = 0x40000000;
        ASSERT_EQ(gyre_getaddrinfo(loop, &d.req, "localhost", NULL, &hints, dns_cb), 0);
        test_run_until(loop, &d.calls, 1);
        ASSERT_EQ(d.status, -EINVAL);
    }
    test_loop_free(loop);
}

/* --- connect --- */

struct conn {
    gyre_connect_req req;
    int calls;
    int result;
};

static void connect_cb(gyre_connect_req *req, int result)
{
    struct conn *c = (struct conn *)req;

    c->calls++;
    c->result = result;
}

static int connect_run(gyre_loop *loop, struct conn *c, const char *host, const char *port,
                       const gyre_connect_opts *o)
{
    c->calls = 0;
    ASSERT_EQ(gyre_connect(loop, &c->req, host, port, o, connect_cb), 0);
    ASSERT_EQ(gyre_connect(loop, &c->req, host, port, o, connect_cb), -EBUSY);
    ASSERT_EQ(c->calls, 0);
    test_run_until(loop, &c->calls, 1);
    return c->result;
}

static void close_fd_op(gyre_loop *loop, int fd)
{
    struct test_op t = {0};

    gyre_op_close(&t.op, fd);
    ASSERT_EQ(test_op_run(loop, &t), 0);
}

void test_net_connect_loopback(void)
{
    gyre_loop *loop = test_loop_new();
    static struct echo_server s;
    static struct conn c;
    char port[16];
    int fd;

    ASSERT_EQ(gyre_connect_req_init(&c.req), 0);
    echo_init(&s, loop);
    ASSERT_EQ(gyre_listen_tcp(loop, &s.l, "127.0.0.1", 0, NULL, echo_accept_cb), 0);
    snprintf(port, sizeof port, "%d", gyre_listener_port(&s.l));
    fd = connect_run(loop, &c, "127.0.0.1", port, NULL);
    ASSERT_GE(fd, 0);
    assert_fd_flags(fd);
    test_run_until(loop, &s.accepted, 1);
    ASSERT_SYS(fcntl(fd, F_SETFL, 0)); /* blocking, for the round trip */
    echo_round_trip(&s, fd, "over gyre_connect");
    close_fd_op(loop, fd);

    /* By name, from /etc/hosts. */
    fd = connect_run(loop, &c, "localhost", port, &(gyre_connect_opts){.family = AF_INET});
    ASSERT_GE(fd, 0);
    test_run_until(loop, &s.accepted, 2);
    close_fd_op(loop, fd);
    echo_shutdown(&s);
    test_loop_free(loop);
}

/* A port nobody listens on: bound, then closed. */
static int closed_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ASSERT_SYS(fd);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_SYS(bind(fd, (struct sockaddr *)&a, sizeof a));
    ASSERT_SYS(getsockname(fd, (struct sockaddr *)&a, &len));
    test_close(fd);
    return ntohs(a.sin_port);
}

void test_net_connect_refused(void)
{
    gyre_loop *loop = test_loop_new();
    static struct conn c;
    char port[16];
    int base = count_fds();

    ASSERT_EQ(gyre_connect_req_init(&c.req), 0);
    snprintf(port, sizeof port, "%d", closed_port());
    ASSERT_EQ(connect_run(loop, &c, "127.0.0.1", port, NULL), -ECONNREFUSED);
    /* Both loopback families, in turn: the last error is reported. */
    ASSERT_EQ(connect_run(loop, &c, "::1", port, NULL), -ECONNREFUSED);
    /* A name that /etc/hosts gives, but not as IPv6: nothing to try. */
    ASSERT_EQ(connect_run(loop, &c, "127.0.0.1", port, &(gyre_connect_opts){.family = AF_INET6}),
              -ENOENT);
    test_run_nowait(loop, 2);
    ASSERT_EQ(count_fds(), base);
    test_loop_free(loop);
}

void test_net_connect_deadline(void)
{
    gyre_loop *loop = test_loop_new();
    static struct echo_server s;
    static struct conn c;
    gyre_connect_opts o;
    char port[16];
    int r;

    ASSERT_EQ(gyre_connect_req_init(&c.req), 0);
    echo_init(&s, loop);
    ASSERT_EQ(gyre_listen_tcp(loop, &s.l, "127.0.0.1", 0, NULL, echo_accept_cb), 0);
    snprintf(port, sizeof port, "%d", gyre_listener_port(&s.l));

    /* 1 ns: the deadline passes before the resolution is back. */
    memset(&o, 0, sizeof o);
    o.deadline_ns = 1;
    r = connect_run(loop, &c, "127.0.0.1", port, &o);
    if (r >= 0)
        close_fd_op(loop, r);
    else
        ASSERT_EQ(r, -ETIME);

    /* Cancelled before anything came back. */
    c.calls = 0;
    ASSERT_EQ(gyre_connect_cancel(&c.req), -ENOENT);
    ASSERT_EQ(gyre_connect(loop, &c.req, "127.0.0.1", port, NULL, connect_cb), 0);
    ASSERT_EQ(gyre_connect_cancel(&c.req), 0);
    ASSERT_EQ(gyre_connect_cancel(&c.req), -EALREADY);
    ASSERT_EQ(c.calls, 0);
    test_run_until(loop, &c.calls, 1);
    ASSERT_EQ(c.result, -ECANCELED);

    /* A generous deadline does not get in the way. */
    o.deadline_ns = SEC(10);
    r = connect_run(loop, &c, "127.0.0.1", port, &o);
    ASSERT_GE(r, 0);
    close_fd_op(loop, r);
    echo_shutdown(&s);
    test_loop_free(loop);
}

static void count_accept_cb(gyre_listener *l, int fd)
{
    int *n = l->data;

    ASSERT_GE(fd, 0);
    test_close(fd);
    (*n)++;
}

/* RELIABILITY K2: connect/close cycles leave no descriptor behind. */
void test_net_connect_cycles(void)
{
    gyre_loop *loop = test_loop_new();
    static gyre_listener l;
    static struct conn c;
    size_t cycles = test_scale(4000);
    int accepted = 0, base;
    char port[16];

    ASSERT_EQ(gyre_connect_req_init(&c.req), 0);
    test_loop_guard(loop, SEC(100));
    l.data = &accepted;
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "127.0.0.1", 0, NULL, count_accept_cb), 0);
    snprintf(port, sizeof port, "%d", gyre_listener_port(&l));
    base = count_fds();
    for (size_t i = 0; i < cycles; i++) {
        int fd = connect_run(loop, &c, "127.0.0.1", port, NULL);

        if (fd < 0)
            test_fail(__FILE__, __LINE__, "cycle %zu: %s", i, gyre_strerror(fd));
        test_close(fd);
    }
    test_run_until(loop, &accepted, (int)cycles);
    test_run_nowait(loop, 3);
    ASSERT_EQ(count_fds(), base);
    ASSERT_EQ(gyre_listener_close(&l, NULL), 0);
    test_run_nowait(loop, 3);
    test_loop_free(loop);
}
