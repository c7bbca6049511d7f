/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-order.c: the order of data ops on one fd (rule 5).
 *
 * Reads at the current position (read, readv, recv) on one fd take the bytes
 * in the order they were submitted, however many wait at once, and writes put
 * theirs in submission order, on every backend. On io_uring that is gyre's
 * doing, not the kernel's: requests the kernel runs concurrently on one
 * socket are not ordered (two recvs waiting in poll may be woken either way
 * round; a send that found the buffer full is retried from task work that an
 * enter runs after it has issued the sends submitted since), and a write
 * gyre emulates may overtake one in the ring.
 *
 * Each test makes the situation that reordered them and then checks the
 * bytes; results are counted, never timed, so they also hold under
 * GYRE_FAULTS.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"

/* Three reads waiting on one empty fd, then 12 bytes at once. */
static void reads_in_order(gyre_loop *loop, int rfd, int wfd, int sock)
{
    struct test_op t[3];
    char a[4], b[4], c[4];
    struct iovec iov = {c, sizeof c};

    memset(t, 0, sizeof t);
    if (sock)
        gyre_op_recv(&t[0].op, rfd, a, sizeof a, 0);
    else
        gyre_op_read(&t[0].op, rfd, a, sizeof a, GYRE_OFF_CUR);
    test_op_submit(loop, &t[0]);
    test_run_nowait(loop, 2); /* the first is waiting for data */
    gyre_op_read(&t[1].op, rfd, b, sizeof b, GYRE_OFF_CUR);
    test_op_submit(loop, &t[1]);
    gyre_op_readv(&t[2].op, rfd, &iov, 1, GYRE_OFF_CUR);
    test_op_submit(loop, &t[2]);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t[0].calls + t[1].calls + t[2].calls, 0);
    test_write_bytes(wfd, "abcdefghijkl", 12);
    for (int i = 0; i < 3; i++)
        test_run_until(loop, &t[i].calls, 1);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(t[i].result, 4);
    ASSERT_EQ(memcmp(a, "abcd", 4), 0);
    ASSERT_EQ(memcmp(b, "efgh", 4), 0);
    ASSERT_EQ(memcmp(c, "ijkl", 4), 0);
}

void test_op_order_reads(void)
{
    gyre_loop *loop = test_loop_new();
    int sp[2], p[2];

    test_socketpair(sp);
    reads_in_order(loop, sp[0], sp[1], 1);
    test_pipe(p);
    reads_in_order(loop, p[0], p[1], 0);
    test_close(p[0]);
    test_close(p[1]);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

static struct {
    gyre_bufpool *pool;
    int calls, final;
    size_t got;
    char buf[16];
} ms;

static void ms_cb(gyre_op *op)
{
    ms.calls++;
    if (op->flags & GYRE_OP_BUFFER) {
        ASSERT_LE(ms.got + (size_t)op->result, sizeof ms.buf);
        memcpy(ms.buf + ms.got, gyre_bufpool_buf(ms.pool, op->buf_id), (size_t)op->result);
        ms.got += (size_t)op->result;
        ASSERT_EQ(gyre_bufpool_put(ms.pool, op->buf_id), 0);
    }
    if (!(op->flags & GYRE_OP_MORE))
        ms.final = 1;
}

/* A read submitted behind a multishot recv starts when the multishot ends:
 * until then the multishot gets every byte. */
void test_op_order_after_multishot(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op ms_op = {0}, t = {0};
    char buf[8];
    int sp[2];

    memset(&ms, 0, sizeof ms);
    test_socketpair(sp);
    ASSERT_EQ(gyre_bufpool_new(loop, &ms.pool, 2, 8), 0);
    gyre_op_recv_multishot(&ms_op.op, sp[0], ms.pool);
    ASSERT_EQ(gyre_submit(loop, &ms_op.op, ms_cb), 0);
    test_run_nowait(loop, 2);
    gyre_op_recv(&t.op, sp[0], buf, sizeof buf, 0);
    test_op_submit(loop, &t);
    test_write_bytes(sp[1], "hello", 5);
    while (ms.got < 5)
        test_run_until(loop, &ms.calls, ms.calls + 1);
    ASSERT_EQ(memcmp(ms.buf, "hello", 5), 0);
    ASSERT_EQ(t.calls, 0);
    ASSERT_EQ(gyre_cancel(loop, &ms_op.op), 0);
    test_run_until(loop, &ms.final, 1);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t.calls, 0);
    test_write_bytes(sp[1], "xyz", 3);
    test_run_until(loop, &t.calls, 1);
    ASSERT_EQ(t.result, 3);
    ASSERT_EQ(memcmp(buf, "xyz", 3), 0);
    ASSERT_EQ(ms.got, 5);
    ASSERT_EQ(gyre_bufpool_free(ms.pool), 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* Reads everything the peer has, without waiting; returns how much. */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t n;

    while (got < cap && (n = read(fd, buf + got, cap - got)) > 0)
        got += (size_t)n;
    return got;
}

void test_op_order_writes(void)
{
    gyre_loop *loop = test_loop_new();
    static char fill[1 << 16], sink[1 << 20];
    struct test_op t[3];
    struct iovec iov[2] = {{(void *)"33", 2}, {(void *)"33", 2}};
    char got[12];
    int sp[2], sz = 1;
    size_t filled = 0, n;
    ssize_t w;

    memset(t, 0, sizeof t);
    test_socketpair(sp);
    ASSERT_SYS(setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz));
    while ((w = write(sp[0], fill, sizeof fill)) > 0)
        filled += (size_t)w;
    ASSERT_EQ(errno, EAGAIN);

    /* The first send finds the buffer full and waits. */
    gyre_op_send(&t[0].op, sp[0], "1111", 4, 0);
    test_op_submit(loop, &t[0]);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t[0].calls, 0);
    /* Room again; then two more writes before the loop runs. (Where the
     * kernel runs task work on the way out of any syscall, the first send
     * may already go out during the drain.) */
    n = drain(sp[1], sink, sizeof sink);
    ASSERT_GE(n, filled);
    ASSERT_LE(n, filled + 4);
    memcpy(got, sink + filled, n - filled);
    gyre_op_write(&t[1].op, sp[0], "2222", 4, GYRE_OFF_CUR);
    test_op_submit(loop, &t[1]);
    gyre_op_writev(&t[2].op, sp[0], iov, 2, GYRE_OFF_CUR);
    test_op_submit(loop, &t[2]);
    /* The reader keeps reading while the writes go: with a tiny SO_SNDBUF a
     * send the kernel would take can still find POLLOUT off, so a send told
     * EAGAIN (GYRE_FAULTS) waits for the reader to make room. */
    n -= filled;
    for (int k = 0; k < 100000 && (t[0].calls + t[1].calls + t[2].calls < 3 || n < 12); k++) {
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
        n += drain(sp[1], got + n, sizeof got - n);
    }
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(t[i].calls, 1);
        ASSERT_EQ(t[i].result, 4);
    }
    ASSERT_EQ(n, 12);
    ASSERT_EQ(memcmp(got, "111122223333", 12), 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* A write and a writev on one socket, submitted together: the writev once
 * went by the emulation (native WRITEV on a socket raises SIGPIPE), which
 * tried it at once, while the write went to the kernel only at the next
 * enter. */
void test_op_order_write_writev(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t[3];
    struct iovec iov[2] = {{(void *)"bb", 2}, {(void *)"bb", 2}};
    char got[12];
    int sp[2];

    memset(t, 0, sizeof t);
    test_socketpair(sp);
    gyre_op_write(&t[0].op, sp[0], "aaaa", 4, GYRE_OFF_CUR);
    test_op_submit(loop, &t[0]);
    gyre_op_writev(&t[1].op, sp[0], iov, 2, GYRE_OFF_CUR);
    test_op_submit(loop, &t[1]);
    gyre_op_send(&t[2].op, sp[0], "cccc", 4, 0);
    test_op_submit(loop, &t[2]);
    for (int i = 0; i < 3; i++)
        test_run_until(loop, &t[i].calls, 1);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(t[i].result, 4);
    test_read_bytes(sp[1], got, sizeof got);
    ASSERT_EQ(memcmp(got, "aaaabbbbcccc", 12), 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}
