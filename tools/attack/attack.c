/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* attack.c: gyre-attack, the hostile clients of scripts/http-attack.sh.
 *
 *   gyre-attack --port P --mode slowloris|idle|silent|pipeline --conns N
 *               --seconds S [--interval-ms MS] [--reconnect-ms MS]
 *
 * Keeps N connections to 127.0.0.1:P open for S seconds, reconnecting each
 * one the server closes (as a real attacker would; after --reconnect-ms,
 * default 0: at once), and then prints what
 * happened on one line. Modes:
 *   slowloris  a request head that never ends, one byte per connection
 *              every MS milliseconds (default 1000);
 *   idle       one GET / answered, then an idle keep-alive connection;
 *   silent     connects and sends nothing (with the server's descriptors
 *              limited, the descriptor attack);
 *   pipeline   pipelined GET / sent as fast as the socket takes them, and
 *              never a byte read.
 * Plain epoll and libc, like gyre-churn, so that it shares no code with
 * the server it attacks. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    SLOWLORIS,
    IDLE,
    SILENT,
    PIPELINE
};

#define GET "GET / HTTP/1.1\r\nHost: attack\r\n\r\n"
#define SLOW_HEAD "GET / HTTP/1.1\r\nHost: attack\r\nX-Slow: "

typedef struct conn {
    int fd;
    uint64_t reopen_ms; /* lost: when to connect again (0: connected or connecting) */
    uint32_t sent;      /* slowloris: bytes of the head sent */
    uint8_t connected;
} conn;

static int mode, port, epfd;
static long n_conns, seconds, interval_ms = 1000, reconnect_ms;
static conn *conns;
static unsigned long long n_connects, n_cut, n_connect_fail, n_responses;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void conn_open(long i)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct epoll_event ev = {.data.u64 = (uint64_t)i};
    conn *c = &conns[i];

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        n_connect_fail++;
        return;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        n_connect_fail++;
        close(c->fd);
        c->fd = -1;
        return;
    }
    /* pipeline never reads: only a hang-up or an error ends it. */
    ev.events = EPOLLOUT | EPOLLRDHUP | (mode == PIPELINE ? 0 : EPOLLIN);
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    n_connects++;
}

/* The server closed c (or it never connected): count and reconnect. */
static void conn_lost(long i, int cut)
{
    conn *c = &conns[i];

    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    if (cut)
        n_cut++;
    else
        n_connect_fail++;
    if (reconnect_ms > 0)
        c->reopen_ms = now_ms() + (uint64_t)reconnect_ms;
    else
        conn_open(i);
}

static void on_writable(long i)
{
    static char batch[64 * (sizeof GET - 1)];
    conn *c = &conns[i];
    struct epoll_event ev = {.data.u64 = (uint64_t)i};
    int err = 0;
    socklen_t len = sizeof err;

    if (!c->connected) {
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            conn_lost(i, 0);
            return;
        }
        c->connected = 1;
        if (mode == IDLE && send(c->fd, GET, sizeof GET - 1, MSG_NOSIGNAL) < 0) {
            conn_lost(i, 1);
            return;
        }
    }
    if (mode == PIPELINE) {
        if (batch[0] == '\0')
            for (size_t k = 0; k < 64; k++)
                memcpy(batch + k * (sizeof GET - 1), GET, sizeof GET - 1);
        while (send(c->fd, batch, sizeof batch, MSG_NOSIGNAL) > 0)
            ;
        if (errno != EAGAIN) {
            conn_lost(i, 1);
            return;
        }
        return; /* EPOLLOUT stays: more when the socket takes it */
    }
    ev.events = EPOLLRDHUP | EPOLLIN;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_readable(long i)
{
    char buf[4096];
    ssize_t n;

    while ((n = recv(conns[i].fd, buf, sizeof buf, 0)) > 0)
        n_responses += memmem(buf, (size_t)n, "HTTP/1.1 ", 9) != NULL;
    if (n == 0 || (n < 0 && errno != EAGAIN))
        conn_lost(i, 1);
}

/* slowloris: one more byte of a head that never ends, on every connection. */
static void trickle(void)
{
    for (long i = 0; i < n_conns; i++) {
        conn *c = &conns[i];
        char ch;

        if (c->fd < 0 || !c->connected)
            continue;
        ch = c->sent < sizeof SLOW_HEAD - 1 ? SLOW_HEAD[c->sent] : 'a';
        if (send(c->fd, &ch, 1, MSG_NOSIGNAL) == 1)
            c->sent++;
        else if (errno != EAGAIN)
            conn_lost(i, 1);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: gyre-attack --port P --mode slowloris|idle|silent|pipeline "
                    "--conns N --seconds S [--interval-ms MS] [--reconnect-ms MS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static struct epoll_event evs[256];
    const char *mode_name = NULL;
    uint64_t end, next_tick;
    long open_now = 0;
    int i;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--mode") == 0)
            mode_name = argv[i + 1];
        else if (strcmp(argv[i], "--conns") == 0)
            n_conns = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--interval-ms") == 0)
            interval_ms = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--reconnect-ms") == 0)
            reconnect_ms = atol(argv[i + 1]);
        else
            return usage();
    }
    if (i != argc || port <= 0 || n_conns <= 0 || seconds <= 0 || interval_ms <= 0 || !mode_name)
        return usage();
    if (strcmp(mode_name, "slowloris") == 0)
        mode = SLOWLORIS;
    else if (strcmp(mode_name, "idle") == 0)
        mode = IDLE;
    else if (strcmp(mode_name, "silent") == 0)
        mode = SILENT;
    else if (strcmp(mode_name, "pipeline") == 0)
        mode = PIPELINE;
    else
        return usage();
    conns = calloc((size_t)n_conns, sizeof *conns);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || epfd < 0) {
        perror("gyre-attack");
        return 1;
    }
    for (long k = 0; k < n_conns; k++)
        conn_open(k);
    end = now_ms() + (uint64_t)seconds * 1000;
    next_tick = now_ms() + (uint64_t)interval_ms;
    while (now_ms() < end) {
        int n = epoll_wait(epfd, evs, 256, 50);

        for (int k = 0; k < n; k++) {
            long c = (long)evs[k].data.u64;

            if (conns[c].fd < 0)
                continue;
            if (evs[k].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
                conn_lost(c, conns[c].connected);
                continue;
            }
            if (evs[k].events & EPOLLOUT)
                on_writable(c);
            if (conns[c].fd >= 0 && (evs[k].events & EPOLLIN))
                on_readable(c);
        }
        if (reconnect_ms > 0)
            for (long k = 0; k < n_conns; k++)
                if (conns[k].fd < 0 && conns[k].reopen_ms != 0 && now_ms() >= conns[k].reopen_ms)
                    conn_open(k);
        if (mode == SLOWLORIS && now_ms() >= next_tick) {
            trickle();
            next_tick += (uint64_t)interval_ms;
        }
    }
    for (long k = 0; k < n_conns; k++)
        open_now += conns[k].fd >= 0 && conns[k].connected;
    printf("gyre-attack: %s x %ld for %lds: %llu connects, %llu cut by the server, %llu failed, "
           "%ld open at the end, %llu responses read\n",
           mode_name, n_conns, seconds, n_connects, n_cut, n_connect_fail, open_now, n_responses);
    return 0;
}
