/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* churn.c: gyre-churn, a connection-churn load generator for an echo server
 * on loopback (make soak runs it against gyre-echo).
 *
 *   gyre-churn --port P [--connections N] [--concurrency C] [--time-limit S]
 *              [--sources K]
 *
 * Keeps C connections in flight to 127.0.0.1:P. Each one connects
 * (non-blocking), sends a 32-byte message that carries its sequence number,
 * reads the whole echo back, compares it byte for byte and closes; then the
 * next connection takes its place, until N have completed. It stops by
 * itself: after N connections, after S seconds (a failure), or after too many
 * errors (a failure). The last line is a summary of counts; the exit status
 * is 0 only if all N completed with no error of any kind.
 *
 * It runs on plain epoll, not on gyre: a load generator that shared the code
 * under test could hide that code's bugs.
 *
 * Four-tuples: the client closes first, so the TIME_WAIT state (60 s on
 * Linux) is held here and not by the server. A million connections in a few
 * minutes from one source address would run through the ephemeral port
 * range several times over within those 60 s, so each socket binds to one
 * of K source addresses in 127.1.0.0/16 (the whole of 127.0.0.0/8 routes to
 * lo) with IP_BIND_ADDRESS_NO_PORT, which leaves the port choice to
 * connect(): K x ~28,000 ports per minute is far more than any rate here.
 * No sysctl is touched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG_LEN 32
#define MAX_EVENTS 256
/* Errors of any kind after which the run stops: enough to see a pattern,
 * few enough that a dead server ends the run at once. */
#define MAX_ERRORS 100
#define PROGRESS_NS (10 * 1000000000LL)

enum state {
    IDLE,
    CONNECTING,
    SENDING,
    READING
};

typedef struct slot {
    int fd;
    enum state state;
    uint32_t sent, got;
    uint64_t seq;
    unsigned char msg[MSG_LEN], echo[MSG_LEN];
} slot;

/* What went wrong, by kind; all must be zero for a pass. */
static struct {
    uint64_t connect_errors; /* socket, bind or connect failed */
    uint64_t resets;         /* ECONNRESET or another error after connecting */
    uint64_t early_eofs;     /* the server closed before echoing everything */
    uint64_t verify_failures;
} err;

static int epfd;
static struct sockaddr_in server;
/* started: connections begun, each with its sequence number (failed ones too). */
static uint64_t started, completed, target, in_flight;
static uint64_t next_source; /* rotates over the source addresses, per attempt */
static unsigned sources = 256;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t errors(void)
{
    return err.connect_errors + err.resets + err.early_eofs + err.verify_failures;
}

/* The message of connection seq: its number in hex, then bytes that depend
 * on it, so that an echo from the wrong connection or at the wrong offset
 * cannot match. */
static void fill_msg(unsigned char *msg, uint64_t seq)
{
    char head[17];
    size_t i;

    snprintf(head, sizeof head, "%016" PRIx64, seq);
    memcpy(msg, head, 16);
    for (i = 16; i < MSG_LEN; i++)
        msg[i] = (unsigned char)(seq * 131 + i * 7);
}

/* Source address i of 127.1.0.0/16, never ending in .0 or .255. */
static struct sockaddr_in source_addr(uint64_t i)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    unsigned k = (unsigned)(i % sources);

    sa.sin_addr.s_addr = htonl((127u << 24) | (1u << 16) | ((1 + k / 254) << 8) | (1 + k % 254));
    return sa;
}

static void slot_close(slot *s)
{
    close(s->fd); /* also leaves the epoll set: no one else holds the file */
    s->fd = -1;
    s->state = IDLE;
    in_flight--;
}

/* Starts the next connection in s, unless the connections in flight will
 * make up the target when they complete. A failure is counted and the slot
 * tries again with the next source address; a failed connection is never
 * counted as completed, so it is made up for by another. */
static void slot_open(slot *s)
{
    int one = 1;

    while (completed + in_flight < target && errors() < MAX_ERRORS) {
        struct sockaddr_in src = source_addr(next_source++);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0) {
            fprintf(stderr, "gyre-churn: socket: %s\n", strerror(errno));
            err.connect_errors++;
            continue;
        }
        if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0 ||
            bind(fd, (struct sockaddr *)&src, sizeof src) != 0 ||
            (connect(fd, (struct sockaddr *)&server, sizeof server) != 0 && errno != EINPROGRESS)) {
            fprintf(stderr, "gyre-churn: connect from %s: %s\n", inet_ntoa(src.sin_addr),
                    strerror(errno));
            err.connect_errors++;
            close(fd);
            continue;
        }
        ev.data.ptr = s;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            fprintf(stderr, "gyre-churn: epoll_ctl: %s\n", strerror(errno));
            exit(1);
        }
        s->fd = fd;
        s->state = CONNECTING;
        s->sent = s->got = 0;
        s->seq = started++;
        in_flight++;
        fill_msg(s->msg, s->seq);
        return;
    }
}

/* A failed connection: counted by kind, closed, and its slot reused. */
static void slot_fail(slot *s, int e)
{
    if (s->state == CONNECTING)
        err.connect_errors++;
    else if (e == 0)
        err.early_eofs++;
    else
        err.resets++;
    if (errors() <= 10)
        fprintf(stderr, "gyre-churn: connection %" PRIu64 ": %s\n", s->seq,
                e == 0 ? "closed by the server before the whole echo" : strerror(e));
    slot_close(s);
    slot_open(s);
}

/* Moves s on as far as its socket allows; edge-triggered, so every step
 * runs until EAGAIN. */
static void slot_step(slot *s, uint32_t events)
{
    ssize_t n;

    if (s->state == CONNECTING) {
        int e = 0;
        socklen_t len = sizeof e;

        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
            e = errno;
        if (e != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            slot_fail(s, e != 0 ? e : ECONNRESET);
            return;
        }
        s->state = SENDING;
    }
    while (s->state == SENDING) {
        n = send(s->fd, s->msg + s->sent, MSG_LEN - s->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN)
                slot_fail(s, errno);
            return;
        }
        s->sent += (uint32_t)n;
        if (s->sent == MSG_LEN)
            s->state = READING;
    }
    while (s->state == READING) {
        n = recv(s->fd, s->echo + s->got, MSG_LEN - s->got, 0);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN)
                return;
            slot_fail(s, n == 0 ? 0 : errno);
            return;
        }
        s->got += (uint32_t)n;
        if (s->got < MSG_LEN)
            continue;
        if (memcmp(s->msg, s->echo, MSG_LEN) != 0) {
            err.verify_failures++;
            fprintf(stderr, "gyre-churn: connection %" PRIu64 ": echo differs\n", s->seq);
        } else {
            completed++;
        }
        slot_close(s);
        slot_open(s);
    }
}

/* A C-connection client needs C fds and a few; raise the soft limit that
 * far if the hard one allows. */
static int raise_nofile(unsigned long want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
            fprintf(stderr, "gyre-churn: RLIMIT_NOFILE hard limit %lu < %lu\n",
                    (unsigned long)rl.rlim_max, want);
            return -1;
        }
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: gyre-churn --port P [--connections N (1000000)] [--concurrency C "
                    "(1000)]\n"
                    "                  [--time-limit SECONDS (600)] [--sources K (256)]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct epoll_event events[MAX_EVENTS];
    unsigned long concurrency = 1000;
    long port = -1, time_limit_s = 600;
    int64_t start, deadline, next_progress;
    double secs;
    slot *slots;
    int i, timed_out = 0;

    target = 1000000;
    for (i = 1; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        unsigned long long v;

        if (val == NULL)
            return usage();
        errno = 0;
        v = strtoull(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0')
            return usage();
        i++;
        if (strcmp(opt, "--port") == 0 && v > 0 && v <= 65535)
            port = (long)v;
        else if (strcmp(opt, "--connections") == 0 && v > 0)
            target = v;
        else if (strcmp(opt, "--concurrency") == 0 && v > 0 && v <= 100000)
            concurrency = (unsigned long)v;
        else if (strcmp(opt, "--time-limit") == 0 && v > 0 && v <= 86400)
            time_limit_s = (long)v;
        else if (strcmp(opt, "--sources") == 0 && v > 0 && v <= 254 * 254)
            sources = (unsigned)v;
        else
            return usage();
    }
    if (port < 0)
        return usage();
    if (concurrency > target)
        concurrency = (unsigned long)target;
    if (raise_nofile(concurrency + 64) != 0)
        return 1;
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    slots = calloc(concurrency, sizeof *slots);
    if (epfd < 0 || slots == NULL) {
        fprintf(stderr, "gyre-churn: setup: %s\n", strerror(errno));
        return 1;
    }

    start = now_ns();
    deadline = start + time_limit_s * 1000000000LL;
    next_progress = start + PROGRESS_NS;
    for (i = 0; (unsigned long)i < concurrency; i++) {
        slots[i].fd = -1;
        slot_open(&slots[i]);
    }
    while (in_flight > 0 && errors() < MAX_ERRORS) {
        int64_t t = now_ns();
        int n, k;

        if (t >= deadline) {
            timed_out = 1;
            break;
        }
        if (t >= next_progress) {
            fprintf(stderr, "gyre-churn: %" PRIu64 " of %" PRIu64 " after %.0f s\n", completed,
                    target, (double)(t - start) / 1e9);
            next_progress += PROGRESS_NS;
        }
        n = epoll_wait(epfd, events, MAX_EVENTS, 100);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "gyre-churn: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (k = 0; k < n; k++)
            slot_step(events[k].data.ptr, events[k].events);
    }
    secs = (double)(now_ns() - start) / 1e9;

    for (i = 0; (unsigned long)i < concurrency; i++)
        if (slots[i].state != IDLE)
            slot_close(&slots[i]);
    printf("gyre-churn: completed=%" PRIu64 " target=%" PRIu64 " attempts=%" PRIu64
           " concurrency=%lu "
           "verify_failures=%" PRIu64 " connect_errors=%" PRIu64 " resets=%" PRIu64
           " early_eofs=%" PRIu64 " timed_out=%d seconds=%.1f rate=%.0f/s\n",
           completed, target, started, concurrency, err.verify_failures, err.connect_errors,
           err.resets, err.early_eofs, timed_out, secs, secs > 0 ? (double)completed / secs : 0.0);
    if (timed_out)
        fprintf(stderr, "gyre-churn: time limit of %ld s reached\n", time_limit_s);
    return completed == target && errors() == 0 && !timed_out ? 0 : 1;
}
