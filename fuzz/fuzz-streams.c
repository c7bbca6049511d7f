/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* fuzz-streams.c: libFuzzer target for the stream layer under resets and
 * closes with writes in flight (the path of issue 11's defect 2: a
 * gyre_stream_close() with a write in flight while peers reset).
 *
 * The first byte picks the backend (epoll, poll, select, uring; one this
 * machine lacks becomes epoll) unless GYRE_BACKEND is set. Each input makes
 * NPAIR connected pairs (TCP loopback and Unix socketpairs), wraps both ends
 * in heap-allocated gyre_streams reading into a buffer pool, and reads the
 * rest byte by byte as actions: queue a write (a heap-allocated request and
 * buffer, freed in its callback) on an end, reset an end (SO_LINGER 0 on TCP,
 * or a close with unread bytes on a socketpair, then gyre_stream_close),
 * close an end with writes queued, close from inside a write or read
 * callback, shut down writing, stop and restart reading, run the loop
 * (NOWAIT, or ONCE with a timer due in 1 ms).
 *
 * Invariants, each an abort():
 *  - every write request's callback runs exactly once, every close callback
 *    exactly once and last: no callback of a stream after its close callback
 *    (whose memory is then poisoned and freed);
 *  - no callback inside a gyre call; statuses are 0 or -errno, never
 *    -EAGAIN/-EINTR;
 *  - the bytes an end receives are a prefix of the bytes queued to the other
 *    end, in request order (a failed request may be partly written, nothing
 *    after it is);
 *  - once every stream is closed the loop frees (gyre_loop_free() == 0) and
 *    every pool buffer is back.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gyre.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    NPAIR = 3,
    NEND = 2 * NPAIR,
    MAXW = 4096,
    DRAIN_ITERS = 3000,
};

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "fuzz-streams: " __VA_ARGS__);                                             \
        fprintf(stderr, " [%s:%d, backend %s]\n", __FILE__, __LINE__, backend);                    \
        abort();                                                                                   \
    } while (0)
#define CHECK(e)                                                                                   \
    do {                                                                                           \
        if (!(e))                                                                                  \
            DIE("check failed: %s", #e);                                                           \
    } while (0)

struct end;

struct wreq {
    gyre_stream_write_req req; /* first */
    struct end *e;
    struct iovec iov;
    int close_in_cb;
    uint8_t buf[];
};

struct end {
    gyre_stream *s; /* NULL once its close callback ran */
    int idx;
    int closing;
    int reading;
    int reset_on_read; /* close from inside the next read callback */
    uint32_t writes_owed;
    /* What this end queued to its peer, and what it received. */
    uint8_t *sent, *got;
    size_t sent_len, sent_cap, got_len, got_cap;
};

static const char *backend = "epoll";
static gyre_loop *loop;
static gyre_bufpool *pool;
static struct end ends[NEND];
static int in_api;
static uint32_t closes_owed;
static uint32_t wctr;

static void grow_append(uint8_t **p, size_t *len, size_t *cap, const uint8_t *src, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;

        while (c < *len + n)
            c *= 2;
        *p = realloc(*p, c);
        CHECK(*p != NULL);
        *cap = c;
    }
    memcpy(*p + *len, src, n);
    *len += n;
}

static struct end *peer(struct end *e)
{
    return &ends[e->idx ^ 1];
}

static void enter(void)
{
    if (in_api)
        DIE("callback inside a gyre call");
}

static void close_cb(gyre_stream *s)
{
    struct end *e = s->data;

    enter();
    CHECK(e != NULL && e->s == s && e->closing);
    CHECK(e->writes_owed == 0);
    memset(s, 0x5a, sizeof *s);
    free(s);
    e->s = NULL;
    closes_owed--;
}

static void close_end(struct end *e, int reset)
{
    int rc;

    if (e->s == NULL || e->closing)
        return;
    if (reset) {
        struct linger l = {1, 0};

        /* TCP sends RST; a socketpair's peer sees ECONNRESET when this end
         * closes with bytes unread. */
        setsockopt(gyre_stream_fd(e->s), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    e->closing = 1;
    in_api++;
    rc = gyre_stream_close(e->s, close_cb);
    in_api--;
    CHECK(rc == 0);
    closes_owed++;
}

static void write_cb(gyre_stream_write_req *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct end *e = w->e;

    enter();
    CHECK(e->s != NULL);
    CHECK(e->writes_owed > 0);
    CHECK(status <= 0 && status != -EAGAIN && status != -EINTR);
    e->writes_owed--;
    if (w->close_in_cb)
        close_end(e, 0);
    memset(w, 0x5a, sizeof *w + w->iov.iov_len);
    free(w);
}

static void check_prefix(struct end *e)
{
    struct end *p = peer(e);

    if (e->got_len > p->sent_len)
        DIE("end %d received %zu bytes, only %zu were queued to it", e->idx, e->got_len,
            p->sent_len);
    if (e->got_len > 0 && memcmp(e->got, p->sent, e->got_len) != 0)
        DIE("end %d received bytes that differ from what was queued", e->idx);
}

static void read_cb(gyre_stream *s, int64_t nread, void *buf, const int *fds, uint32_t nfds)
{
    struct end *e = s->data;

    (void)fds;
    (void)nfds;
    enter();
    CHECK(e != NULL && e->s == s);
    CHECK(nread != -EAGAIN && nread != -EINTR);
    if (nread > 0) {
        grow_append(&e->got, &e->got_len, &e->got_cap, buf, (size_t)nread);
        check_prefix(e);
    } else {
        e->reading = 0;
    }
    if (e->reset_on_read) {
        e->reset_on_read = 0;
        close_end(e, 1);
    }
}

static void queue_write(struct end *e, uint32_t len, int close_in_cb)
{
    struct wreq *w;
    int rc;

    if (e->s == NULL || e->closing)
        return;
    w = calloc(1, sizeof *w + len);
    CHECK(w != NULL);
    w->e = e;
    w->close_in_cb = close_in_cb;
    for (uint32_t i = 0; i < len; i++)
        w->buf[i] = (uint8_t)(wctr * 7u + i * 131u + (i >> 8));
    wctr++;
    w->iov.iov_base = w->buf;
    w->iov.iov_len = len;
    in_api++;
    rc = gyre_stream_write(e->s, &w->req, &w->iov, 1, write_cb);
    in_api--;
    if (rc < 0) {
        CHECK(rc != -EINVAL);
        free(w);
        return;
    }
    e->writes_owed++;
    grow_append(&e->sent, &e->sent_len, &e->sent_cap, w->buf, len);
}

static void guard_cb(gyre_timer *t)
{
    (void)t;
}

static int tcp_pair(int fd[2])
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd[0] >= 0 && connect(fd[0], (struct sockaddr *)&a, sizeof a) == 0);
    fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    CHECK(fd[1] >= 0);
    close(l);
    CHECK(fcntl(fd[0], F_SETFL, O_NONBLOCK) == 0);
    setsockopt(fd[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

static void start_read(struct end *e)
{
    int rc;

    if (e->s == NULL || e->closing || e->reading)
        return;
    in_api++;
    rc = gyre_stream_read_start(e->s, pool, read_cb);
    in_api--;
    if (rc == 0)
        e->reading = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"epoll", "poll", "select", "uring"};
    const char *env = getenv("GYRE_BACKEND");
    gyre_loop_opts opts;
    gyre_timer guard;
    size_t pos = 1;

    if (size < 1)
        return 0;
    backend = env != NULL ? env : names[data[0] % 4];
    if (gyre_backend_supported(backend) != 1)
        backend = "epoll";
    memset(&opts, 0, sizeof opts);
    opts.backend = backend;
    CHECK(gyre_loop_new(&loop, &opts) == 0);
    CHECK(gyre_bufpool_new(loop, &pool, 64, 512) == 0);
    memset(ends, 0, sizeof ends);
    closes_owed = 0;
    for (int p = 0; p < NPAIR; p++) {
        int fd[2];

        if (p == 0)
            CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) == 0);
        else
            CHECK(tcp_pair(fd) == 0);
        for (int k = 0; k < 2; k++) {
            struct end *e = &ends[2 * p + k];

            e->idx = 2 * p + k;
            e->s = calloc(1, sizeof *e->s);
            CHECK(e->s != NULL);
            CHECK(gyre_stream_init(loop, e->s, fd[k], 0) == 0);
            e->s->data = e;
            start_read(e);
        }
    }
    CHECK(gyre_timer_init(loop, &guard) == 0);

    while (pos < size) {
        uint8_t b = data[pos++];
        uint8_t arg = pos < size ? data[pos++] : 0;
        struct end *e = &ends[arg % NEND];

        switch (b % 10) {
        case 0:
        case 1:
        case 2:
            queue_write(e, 1 + (uint32_t)arg * 17u % MAXW, 0);
            break;
        case 3:
            queue_write(e, 1 + (uint32_t)arg * 131u % MAXW, 1);
            break;
        case 4:
            close_end(e, 1);
            break;
        case 5:
            close_end(e, 0);
            break;
        case 6:
            e->reset_on_read = 1;
            break;
        case 7:
            if (e->s != NULL && !e->closing) {
                in_api++;
                if (arg & 0x80) {
                    gyre_stream_shutdown(e->s, NULL);
                } else {
                    gyre_stream_read_stop(e->s);
                    e->reading = 0;
                }
                in_api--;
            }
            start_read(e);
            break;
        case 8:
            gyre_loop_run(loop, GYRE_RUN_NOWAIT);
            break;
        default:
            gyre_timer_start(&guard, guard_cb, 1000000u, 0);
            gyre_loop_run(loop, GYRE_RUN_ONCE);
            break;
        }
    }
    /* The end: close everything, with whatever is still queued. */
    for (int i = 0; i < NEND; i++)
        close_end(&ends[i], 0);
    for (int it = 0; it < DRAIN_ITERS && closes_owed > 0; it++) {
        gyre_timer_start(&guard, guard_cb, 1000000u, 0);
        gyre_loop_run(loop, GYRE_RUN_ONCE);
    }
    if (closes_owed > 0)
        DIE("%u close callbacks never ran", closes_owed);
    for (int i = 0; i < NEND; i++) {
        CHECK(ends[i].s == NULL);
        check_prefix(&ends[i]);
    }
    for (int i = 0; i < NEND; i++) {
        free(ends[i].sent);
        free(ends[i].got);
    }
    gyre_timer_stop(&guard);
    CHECK(gyre_bufpool_available(pool) == 64);
    CHECK(gyre_bufpool_free(pool) == 0);
    CHECK(gyre_loop_free(loop) == 0);
    return 0;
}
