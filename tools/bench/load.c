/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* load.c: the echo load client (see load.h).
 *
 * One process, one thread, raw level-triggered epoll: every server gets the
 * same client, so differences in the figures are the server's. Each
 * connection has one message in flight; its first 8 bytes carry the
 * connection and sequence number and the rest a per-connection pattern, so
 * an echo from the wrong connection, a stale one or a corrupted one fails
 * the byte comparison. The round-trip time (send to last byte back) goes into
 * a log-linear histogram; two clock reads per message cost the same for
 * every server.
 *
 * Bounds: the run ends at its window or message count, and fails at
 * timeout_ns or when no echo has come back for LOAD_STALL_NS, so a wedged
 * server is a failed round, never a hung benchmark.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "load.h"

#define LOAD_STALL_NS (5ull * 1000 * 1000 * 1000)
#define LOAD_MAX_EVENTS 512

typedef struct load_conn {
    int fd;
    uint32_t sent, got; /* bytes of the message in flight */
    uint64_t seq;
    uint64_t t_sent;
    unsigned char *tx, *rx;
} load_conn;

typedef struct load_state {
    const load_params *p;
    load_result *r;
    load_conn *conns;
    unsigned char *mem;
    int ep;
    uint64_t started, done; /* messages sent / echoed in all (count mode) */
    uint64_t t_window, t_end, cpu_start;
    int measuring, stopping;
} load_state;

static int load_fail(load_state *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int load_fail(load_state *s, const char *fmt, ...)
{
    va_list ap;

    if (s->r->ok) {
        s->r->ok = 0;
        va_start(ap, fmt);
        vsnprintf(s->r->note, sizeof s->r->note, fmt, ap);
        va_end(ap);
    }
    return -1;
}

double load_quantile(const load_result *r, double q)
{
    return bench_hist_quantile(r->hist, q);
}

static int conn_events(load_state *s, load_conn *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    if (epoll_ctl(s->ep, op, c->fd, &ev) != 0)
        return load_fail(s, "epoll_ctl: %s", strerror(errno));
    return 0;
}

/* Writes what is left of c's message; waits for EPOLLOUT if the socket is
 * full. */
static int conn_push(load_state *s, load_conn *c)
{
    ssize_t n = send(c->fd, c->tx + c->sent, s->p->size - c->sent, MSG_NOSIGNAL);

    if (n < 0 && errno != EAGAIN && errno != EINTR)
        return load_fail(s, "send: %s", strerror(errno));
    if (n > 0)
        c->sent += (uint32_t)n;
    if (c->sent < s->p->size)
        return conn_events(s, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    return 0;
}

/* Starts c's next message, unless the run is ending. */
static int conn_next(load_state *s, load_conn *c)
{
    uint64_t tag;

    if (s->stopping || (s->p->msgs && s->started == s->p->msgs))
        return 0;
    s->started++;
    tag = (uint64_t)(c - s->conns) << 40 | ++c->seq;
    memcpy(c->tx, &tag, sizeof tag < s->p->size ? sizeof tag : s->p->size);
    c->sent = c->got = 0;
    c->t_sent = bench_now_ns();
    return conn_push(s, c);
}

static void window_open(load_state *s, uint64_t now)
{
    s->measuring = 1;
    s->t_window = now;
    s->cpu_start = server_cpu_ns(s->p->server);
    s->t_end = s->p->msgs ? 0 : now + s->p->duration_ns;
}

/* One read per readiness, as the servers do. */
static int conn_pull(load_state *s, load_conn *c)
{
    ssize_t n = recv(c->fd, c->rx + c->got, s->p->size - c->got, 0);
    uint64_t now;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return load_fail(s, "connection %d: %s", (int)(c - s->conns),
                         n == 0 ? "server closed it" : strerror(errno));
    c->got += (uint32_t)n;
    if (c->got < s->p->size)
        return 0;
    if (c->sent < s->p->size)
        return load_fail(s, "connection %d: echo ahead of the send", (int)(c - s->conns));
    if (memcmp(c->rx, c->tx, s->p->size) != 0)
        return load_fail(s, "connection %d: echo differs from message %llu", (int)(c - s->conns),
                         (unsigned long long)c->seq);
    now = bench_now_ns();
    s->done++;
    if (!s->measuring && now - s->t_window >= s->p->warmup_ns)
        window_open(s, now);
    if (s->measuring) {
        s->r->msgs++;
        s->r->hist[bench_hist_bucket(now - c->t_sent)]++;
        if (s->t_end && now >= s->t_end)
            s->stopping = 1;
    }
    return conn_next(s, c);
}

static int load_connect(load_state *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->p->port)};
    int i, one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (i = 0; i < s->p->conns; i++) {
        load_conn *c = &s->conns[i];
        uint32_t k;

        /* Blocking connect: loopback completes it in the kernel, before
         * the server accepts, so this is quick however loaded it is. */
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            return load_fail(s, "socket: %s", strerror(errno));
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            return load_fail(s, "connect to port %d: %s", s->p->port, strerror(errno));
        if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
            fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0)
            return load_fail(s, "socket options: %s", strerror(errno));
        c->tx = s->mem + (size_t)i * 2 * s->p->size;
        c->rx = c->tx + s->p->size;
        for (k = 0; k < s->p->size; k++)
            c->tx[k] = (unsigned char)(i * 131 + k * 7 + 1);
        if (conn_events(s, c, EPOLLIN, EPOLL_CTL_ADD) != 0)
            return -1;
    }
    return 0;
}

static int load_loop(load_state *s)
{
    static struct epoll_event ev[LOAD_MAX_EVENTS];
    uint64_t t0 = bench_now_ns(), last = t0, done = 0, now;
    int n, i;

    s->t_window = t0;
    if (s->p->msgs)
        window_open(s, t0);
    for (i = 0; i < s->p->conns; i++)
        if (conn_next(s, &s->conns[i]) != 0)
            return -1;
    while (s->r->ok) {
        if (s->p->msgs ? s->done == s->p->msgs : s->stopping)
            break;
        n = epoll_wait(s->ep, ev, LOAD_MAX_EVENTS, 100);
        if (n < 0 && errno != EINTR)
            return load_fail(s, "epoll_wait: %s", strerror(errno));
        for (i = 0; i < n && s->r->ok; i++) {
            load_conn *c = ev[i].data.ptr;

            if ((ev[i].events & EPOLLOUT) && c->sent < s->p->size) {
                if (conn_push(s, c) == 0 && c->sent == s->p->size)
                    conn_events(s, c, EPOLLIN, EPOLL_CTL_MOD);
            }
            if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_pull(s, c);
        }
        now = bench_now_ns();
        if (s->done != done) {
            done = s->done;
            last = now;
        } else if (now - last > LOAD_STALL_NS) {
            return load_fail(s, "no echo for %llu s (%llu done)",
                             (unsigned long long)(LOAD_STALL_NS / 1000000000u),
                             (unsigned long long)done);
        }
        if (now - t0 > s->p->timeout_ns)
            return load_fail(s, "run exceeded %llu ms",
                             (unsigned long long)(s->p->timeout_ns / 1000000));
    }
    if (!s->r->ok)
        return -1;
    now = bench_now_ns();
    s->r->elapsed_ns = now - s->t_window;
    s->r->server_cpu_ns = server_cpu_ns(s->p->server) - s->cpu_start;
    return 0;
}

/* The child: runs the client and writes *r to fd. */
static int load_child(const load_params *p, load_result *r, int fd)
{
    load_state s = {.p = p, .r = r, .ep = -1};
    cpu_set_t cpus;
    size_t off = 0;
    ssize_t n;
    int i;

    CPU_ZERO(&cpus);
    CPU_SET(LOAD_CLIENT_CPU, &cpus);
    /* On a one-core machine the client shares the core: slower, still fair. */
    (void)sched_setaffinity(0, sizeof cpus, &cpus);
    memset(r, 0, sizeof *r);
    r->ok = 1;
    bench_raise_nofile();
    s.conns = calloc((size_t)p->conns, sizeof *s.conns);
    s.mem = malloc((size_t)p->conns * 2 * p->size);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!s.conns || !s.mem || s.ep < 0)
        load_fail(&s, "setup: %s", strerror(errno));
    for (i = 0; s.conns && i < p->conns; i++)
        s.conns[i].fd = -1;
    if (r->ok && load_connect(&s) == 0)
        load_loop(&s);
    /* The process exits right after; closing is for the server, which sees
     * EOF on every connection now rather than when the exit gets to it. */
    for (i = 0; s.conns && i < p->conns; i++)
        if (s.conns[i].fd >= 0)
            close(s.conns[i].fd);
    while (off < sizeof *r) {
        n = write(fd, (char *)r + off, sizeof *r - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 1;
        off += (size_t)n;
    }
    return 0;
}

typedef struct load_spawn_args {
    const load_params *p;
    int fd, other_fd;
} load_spawn_args;

static int load_child_main(void *arg)
{
    const load_spawn_args *a = arg;
    /* static: the histogram is too big for a comfortable stack. */
    static load_result r;

    close(a->other_fd);
    return load_child(a->p, &r, a->fd);
}

int load_run(const load_params *p, load_result *r)
{
    load_spawn_args args;
    struct pollfd pfd;
    uint64_t deadline;
    size_t off = 0;
    int fds[2], rc = 0;
    pid_t pid;
    ssize_t n;

    memset(r, 0, sizeof *r);
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    args = (load_spawn_args){p, fds[1], fds[0]};
    pid = bench_spawn(load_child_main, &args);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return pid;
    }
    /* The child bounds itself; this bound is for a child that broke. */
    deadline = bench_now_ns() + p->timeout_ns + 10ull * 1000 * 1000 * 1000;
    pfd = (struct pollfd){.fd = fds[0], .events = POLLIN};
    while (off < sizeof *r) {
        uint64_t now = bench_now_ns();

        if (now >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        n = poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n == 0 ? -ETIMEDOUT : -errno;
            break;
        }
        n = read(fds[0], (char *)r + off, sizeof *r - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n == 0 ? -EPIPE : -errno;
            break;
        }
        off += (size_t)n;
    }
    close(fds[0]);
    bench_reap(pid);
    if (rc < 0) {
        memset(r, 0, sizeof *r);
        snprintf(r->note, sizeof r->note, "load client: %s", strerror(-rc));
        return 0;
    }
    return 0;
}
