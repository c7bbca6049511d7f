/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-stream.c: volume through operations -- 64 MiB over TCP loopback
 * and through a pipe, writer and reader both ops on one loop with seeded
 * random chunk sizes, checked by hash on both ends; and 10,000 connections
 * taken by one multishot accept from a child process that connects in
 * batches. Counts scale with GYRE_TEST_SCALE.
 *
 * Every byte is also compared with the pattern at its stream offset, so a
 * mismatch names the first offset that went wrong, not just "hash differs".
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"

/* The stream's byte at offset i is pattern[i % PATTERN_LEN]; the length is
 * odd so chunk boundaries never line up with the repeat. */
#define PATTERN_LEN ((1u << 20) + 7u)
#define MAX_CHUNK (1u << 17)

static unsigned char *pattern;

static void pattern_init(uint64_t seed)
{
    uint32_t i;

    pattern = malloc(PATTERN_LEN);
    ASSERT_TRUE(pattern != NULL);
    for (i = 0; i < PATTERN_LEN; i++)
        pattern[i] = (unsigned char)(test_rand(&seed) >> 56);
}

/* Mostly large chunks, a quarter of them tiny. */
static uint32_t chunk_size(uint64_t *rng)
{
    uint64_t r = test_rand(rng);

    if ((r & 3) == 0)
        return 1 + (uint32_t)((r >> 8) % 64);
    return 1 + (uint32_t)((r >> 8) % MAX_CHUNK);
}

struct stream {
    gyre_loop *loop;
    int wfd, rfd;
    int sock; /* send/recv, else write/read */
    uint64_t total;
    /* writer */
    gyre_op wop;
    uint64_t written;
    uint64_t whash;
    uint64_t wrng;
    int wclosing;
    /* reader */
    gyre_op rop;
    unsigned char *rbuf;
    uint64_t received;
    uint64_t rhash;
    uint64_t rrng;
    int done; /* writer finished + reader saw EOF */
};

static void write_next(struct stream *s);
static void read_next(struct stream *s);

static void write_cb(gyre_op *op)
{
    struct stream *s = op->data;
    uint64_t at = s->written % PATTERN_LEN;

    if (s->wclosing) {
        ASSERT_EQ(op->result, 0);
        s->done++;
        return;
    }
    ASSERT_GT(op->result, 0);
    ASSERT_EQ(op->flags, 0);
    s->whash = test_fnv(s->whash, pattern + at, (size_t)op->result);
    s->written += (uint64_t)op->result;
    ASSERT_LE(s->written, s->total);
    write_next(s);
}

static void write_next(struct stream *s)
{
    uint64_t at = s->written % PATTERN_LEN;
    uint64_t len = chunk_size(&s->wrng);

    s->wop.data = s;
    if (s->written == s->total) {
        /* The end of the stream: a shutdown (socket) or close (pipe) op,
         * so the reader's EOF also comes through an op. */
        s->wclosing = 1;
        if (s->sock)
            gyre_op_shutdown(&s->wop, s->wfd, SHUT_WR);
        else
            gyre_op_close(&s->wop, s->wfd);
        ASSERT_EQ(gyre_submit(s->loop, &s->wop, write_cb), 0);
        return;
    }
    if (len > PATTERN_LEN - at)
        len = PATTERN_LEN - at;
    if (len > s->total - s->written)
        len = s->total - s->written;
    if (s->sock)
        gyre_op_send(&s->wop, s->wfd, pattern + at, (uint32_t)len, 0);
    else
        gyre_op_write(&s->wop, s->wfd, pattern + at, (uint32_t)len, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(s->loop, &s->wop, write_cb), 0);
}

static void check_bytes(const struct stream *s, const unsigned char *buf, size_t len)
{
    uint64_t off = s->received;
    size_t i = 0;

    while (i < len) {
        uint64_t at = (off + i) % PATTERN_LEN;
        size_t n = len - i;

        if (n > PATTERN_LEN - at)
            n = (size_t)(PATTERN_LEN - at);
        if (memcmp(buf + i, pattern + at, n) != 0) {
            size_t j = 0;

            while (buf[i + j] == pattern[at + j])
                j++;
            test_fail(__FILE__, __LINE__, "stream byte %ju differs (got 0x%02x, want 0x%02x)",
                      (uintmax_t)(off + i + j), buf[i + j], pattern[at + j]);
        }
        i += n;
    }
}

static void read_cb(gyre_op *op)
{
    struct stream *s = op->data;

    ASSERT_GE(op->result, 0);
    ASSERT_EQ(op->flags, 0);
    if (op->result == 0) {
        ASSERT_EQ(s->received, s->total);
        s->done++;
        return;
    }
    check_bytes(s, s->rbuf, (size_t)op->result);
    s->rhash = test_fnv(s->rhash, s->rbuf, (size_t)op->result);
    s->received += (uint64_t)op->result;
    ASSERT_LE(s->received, s->total);
    read_next(s);
}

static void read_next(struct stream *s)
{
    uint32_t len = chunk_size(&s->rrng);

    s->rop.data = s;
    if (s->sock)
        gyre_op_recv(&s->rop, s->rfd, s->rbuf, len, 0);
    else
        gyre_op_read(&s->rop, s->rfd, s->rbuf, len, GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(s->loop, &s->rop, read_cb), 0);
}

static void stream_run(int wfd, int rfd, int sock, uint64_t seed)
{
    static struct stream s;
    gyre_loop *loop = test_loop_new();

    test_loop_guard(loop, SEC(100));
    pattern_init(seed);
    memset(&s, 0, sizeof s);
    s.loop = loop;
    s.wfd = wfd;
    s.rfd = rfd;
    s.sock = sock;
    s.total = test_scale((size_t)64 << 20);
    s.whash = s.rhash = TEST_FNV_INIT;
    s.wrng = seed * 3 + 1;
    s.rrng = seed * 5 + 2;
    s.rbuf = malloc(MAX_CHUNK);
    ASSERT_TRUE(s.rbuf != NULL);
    read_next(&s);
    write_next(&s);
    test_run_until(loop, &s.done, 2);
    test_run_nowait(loop, 3);
    ASSERT_EQ(s.done, 2);
    ASSERT_EQ(s.written, s.total);
    ASSERT_EQ(s.received, s.total);
    if (s.whash != s.rhash)
        test_fail(__FILE__, __LINE__, "hash written %016jx != read %016jx", (uintmax_t)s.whash,
                  (uintmax_t)s.rhash);
    free(s.rbuf);
    free(pattern);
    test_loop_free(loop);
}

void test_op_stream_tcp(void)
{
    int c, s;

    test_tcp_pair(&c, &s);
    stream_run(c, s, 1, 0x5eed0001);
    test_close(c);
    test_close(s);
}

void test_op_stream_pipe(void)
{
    int p[2];

    test_pipe(p);
    stream_run(p[1], p[0], 0, 0x5eed0002); /* the writer's close op closes p[1] */
    test_close(p[0]);
}

/* Multishot accept of many connections. The client is a child process that
 * connects in batches smaller than the backlog and waits, per batch, for a
 * token the server writes once it has accepted that whole batch, so the
 * backlog never overflows (an overflow would drop SYNs and make the count
 * depend on retransmission timing). */
struct acceptor {
    gyre_loop *loop;
    gyre_op op;
    int target, batch, token_fd;
    int accepted, completions, final;
    int64_t final_result;
};

static void accept_cb(gyre_op *op)
{
    struct acceptor *a = op->data;

    a->completions++;
    if (!(op->flags & GYRE_OP_MORE)) {
        a->final++;
        a->final_result = op->result;
        return;
    }
    if (op->result < 0)
        test_fail(__FILE__, __LINE__, "accept completion %d: %s", a->completions,
                  gyre_strerror((int)op->result));
    {
        int fd = (int)op->result;
        int fl = fcntl(fd, F_GETFD);

        ASSERT_SYS(fl);
        ASSERT_TRUE((fl & FD_CLOEXEC) != 0);
        test_close(fd);
    }
    a->accepted++;
    ASSERT_LE(a->accepted, a->target);
    if (a->accepted % a->batch == 0 || a->accepted == a->target)
        ASSERT_EQ(write(a->token_fd, "t", 1), 1);
    if (a->accepted == a->target)
        ASSERT_EQ(gyre_cancel(a->loop, op), 0);
}

/* The child: plain blocking sockets, no gyre. Exit codes say where it
 * failed. */
static _Noreturn void connector(const struct sockaddr_in *addr, int n, int batch, int token_fd)
{
    int *fds = malloc(sizeof(int) * (size_t)batch);
    int done = 0;

    if (fds == NULL)
        _exit(10);
    while (done < n) {
        int k = n - done < batch ? n - done : batch;
        int i;
        char c;

        for (i = 0; i < k; i++) {
            fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fds[i] < 0)
                _exit(11);
            if (connect(fds[i], (const struct sockaddr *)addr, sizeof *addr) < 0)
                _exit(12);
        }
        if (read(token_fd, &c, 1) != 1)
            _exit(13);
        for (i = 0; i < k; i++)
            close(fds[i]);
        done += k;
    }
    _exit(0);
}

void test_op_accept_multishot_many(void)
{
    static struct acceptor a;
    struct sockaddr_in addr;
    int somaxconn = 128, backlog, tok[2], lfd, status;
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    pid_t pid;
    gyre_loop *loop;

    if (f != NULL) {
        if (fscanf(f, "%d", &somaxconn) != 1)
            somaxconn = 128;
        fclose(f);
    }
    backlog = somaxconn < 128 ? somaxconn : 128;
    memset(&a, 0, sizeof a);
    a.target = (int)test_scale(10000);
    a.batch = backlog / 2 > 0 ? backlog / 2 : 1;
    test_nofile(SIZE_MAX);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_SYS(lfd);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_SYS(bind(lfd, (struct sockaddr *)&addr, sizeof addr));
    ASSERT_SYS(listen(lfd, backlog));
    {
        socklen_t len = sizeof addr;

        ASSERT_SYS(getsockname(lfd, (struct sockaddr *)&addr, &len));
    }
    ASSERT_SYS(pipe2(tok, O_CLOEXEC));
    pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        close(lfd);
        close(tok[1]);
        connector(&addr, a.target, a.batch, tok[0]);
    }
    test_close(tok[0]);

    loop = test_loop_new();
    test_loop_guard(loop, SEC(100));
    a.loop = loop;
    a.token_fd = tok[1];
    a.op.data = &a;
    gyre_op_accept_multishot(&a.op, lfd);
    ASSERT_EQ(gyre_submit(loop, &a.op, accept_cb), 0);
    test_run_until(loop, &a.final, 1);
    test_run_nowait(loop, 3);

    ASSERT_SYS(waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    ASSERT_EQ(a.accepted, a.target);
    ASSERT_EQ(a.final, 1);
    ASSERT_EQ(a.final_result, -ECANCELED);
    ASSERT_EQ(a.completions, a.target + 1);
    test_close(tok[1]);
    test_close(lfd);
    test_loop_free(loop);
}
