/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-file-scale.c: file operations in bulk and under pressure, on every
 * file engine -- 10,000 ops in flight at once (buffered writes, buffered
 * reads, O_DIRECT reads), each completing exactly once, with gyre's own
 * memory no larger after the first round; cancellation of file ops queued
 * behind a busy pool; and file ops that still complete while the pool's slow
 * lane is blocked.
 *
 * Memory is measured exactly, through gyre_set_allocator(), never by timing
 * or RSS. Blocking work waits on a blocking pipe the test writes to, so "the
 * lane is busy" is a fact the test establishes (the blocker has started)
 * rather than a timing guess.
 */
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

/* --- gyre's memory, counted in usable bytes (pool threads allocate too) --- */

static atomic_llong live_bytes, peak_bytes;

static void account(long long delta)
{
    long long now = atomic_fetch_add(&live_bytes, delta) + delta;
    long long peak = atomic_load(&peak_bytes);

    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
    }
}

static void *cnt_malloc(size_t n)
{
    void *p = malloc(n);

    if (p != NULL)
        account((long long)malloc_usable_size(p));
    return p;
}

static void *cnt_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p != NULL)
        account((long long)malloc_usable_size(p));
    return p;
}

static void *cnt_realloc(void *p, size_t n)
{
    long long old = p != NULL ? (long long)malloc_usable_size(p) : 0;
    void *q = realloc(p, n);

    if (q != NULL)
        account((long long)malloc_usable_size(q) - old);
    else if (p != NULL && n == 0)
        account(-old); /* glibc frees p and returns NULL */
    return q;
}

static void cnt_free(void *p)
{
    if (p != NULL)
        account(-(long long)malloc_usable_size(p));
    free(p);
}

/* --- 10,000 in flight --- */

struct sop {
    gyre_op op; /* first: the callback finds the record from the op */
    int calls;
    int64_t result;
    uint64_t val;
    struct iovec iov;
};

static int sop_done;

static void sop_cb(gyre_op *op)
{
    struct sop *s = (struct sop *)op;

    s->calls++;
    s->result = op->result;
    sop_done++;
}

static uint64_t tag(int round, size_t i)
{
    return ((uint64_t)(round + 1) << 40) ^ (i * 0x9e3779b97f4a7c15ull);
}

/* Submits every prepared op of ops[0..n) before running the loop at all, so
 * all n are in flight together; then each must complete exactly once. */
static void submit_all_run(gyre_loop *loop, struct sop *ops, size_t n)
{
    gyre_stats s0, s1;

    ASSERT_EQ(gyre_loop_stats(loop, &s0), 0);
    sop_done = 0;
    for (size_t i = 0; i < n; i++) {
        ops[i].calls = 0;
        ops[i].result = INT64_MIN;
        ASSERT_EQ(gyre_submit(loop, &ops[i].op, sop_cb), 0);
    }
    ASSERT_EQ(sop_done, 0); /* never inside gyre_submit() */
    ASSERT_EQ(gyre_loop_stats(loop, &s1), 0);
    ASSERT_EQ(s1.active_handles, s0.active_handles + n);
    test_run_until(loop, &sop_done, (int)n);
    test_run_nowait(loop, 3);
    ASSERT_EQ(sop_done, n);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].calls != 1)
            test_fail(__FILE__, __LINE__, "op %zu completed %d times", i, ops[i].calls);
    }
    ASSERT_EQ(gyre_loop_stats(loop, &s1), 0);
    ASSERT_EQ(s1.ops_completed, s0.ops_completed + n);
    ASSERT_EQ(s1.active_handles, s0.active_handles);
}

/* Of the O_DIRECT reads, those at these indices go to a write-only descriptor
 * of the same file and must fail alone, with -EBADF. On linuxaio the reads
 * beyond the engine's depth wait in its FIFO and go to io_submit in batches,
 * which the kernel then takes only in part (it stops at the refused iocb);
 * the rest of each batch must still go in, once. */
static int bad_read(size_t i)
{
    return i % 97 == 96;
}

static void scale_round(gyre_loop *loop, struct sop *ops, size_t n, int round, int fd, int dfd,
                        int dfd_wronly, unsigned char *dbuf, uint32_t unit)
{
    uint64_t *file = malloc(n * 8 + 8);

    ASSERT_TRUE(file != NULL);
    /* n buffered writes of 8 bytes each, alternating write and writev. */
    for (size_t i = 0; i < n; i++) {
        ops[i].val = tag(round, i);
        ops[i].iov.iov_base = &ops[i].val;
        ops[i].iov.iov_len = 8;
        if (i % 2 == 0)
            gyre_op_write(&ops[i].op, fd, &ops[i].val, 8, i * 8);
        else
            gyre_op_writev(&ops[i].op, fd, &ops[i].iov, 1, i * 8);
    }
    submit_all_run(loop, ops, n);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(ops[i].result, 8);
    ASSERT_EQ(pread(fd, file, n * 8 + 8, 0), n * 8);
    for (size_t i = 0; i < n; i++)
        ASSERT_TRUE(file[i] == tag(round, i));

    /* n buffered reads back, alternating read and readv. */
    for (size_t i = 0; i < n; i++) {
        ops[i].val = 0;
        if (i % 2 == 0)
            gyre_op_read(&ops[i].op, fd, &ops[i].val, 8, i * 8);
        else
            gyre_op_readv(&ops[i].op, fd, &ops[i].iov, 1, i * 8);
    }
    submit_all_run(loop, ops, n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(ops[i].result, 8);
        ASSERT_TRUE(ops[i].val == tag(round, i));
    }

    /* n O_DIRECT reads of one unit each, into n separate aligned slots. */
    if (dfd >= 0) {
        memset(dbuf, 0, n * unit);
        for (size_t i = 0; i < n; i++)
            gyre_op_read(&ops[i].op, bad_read(i) ? dfd_wronly : dfd, dbuf + i * unit, unit,
                         (uint64_t)i * unit);
        submit_all_run(loop, ops, n);
        for (size_t i = 0; i < n; i++) {
            uint64_t v;

            if (bad_read(i)) {
                ASSERT_EQ(ops[i].result, -EBADF);
                continue;
            }
            ASSERT_EQ(ops[i].result, unit);
            memcpy(&v, dbuf + i * unit, 8);
            ASSERT_TRUE(v == tag(-1, i));
        }
    }
    free(file);
}

void test_file_scale(void)
{
    size_t n = test_scale(10000);
    struct sop *ops;
    unsigned char *dbuf = NULL, *block;
    gyre_loop *loop;
    char path[4096], dpath[4096];
    long long live1, peak1;
    uint32_t mem = 0, unit = 0;
    int fd, dfd, dfd_wronly = -1;

    (void)test_backend(); /* may make (and free) a probe loop: before counting */
    ASSERT_EQ(gyre_set_allocator(cnt_malloc, cnt_realloc, cnt_calloc, cnt_free), 0);
    loop = test_loop_new();
    test_loop_guard(loop, SEC(100));
    ops = calloc(n, sizeof *ops);
    ASSERT_TRUE(ops != NULL);

    test_tmppath(path, sizeof path, "scale");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    /* The O_DIRECT file: n units, unit i starting with tag(-1, i). Where the
     * file system has no O_DIRECT, the buffered rounds still run. */
    test_tmppath(dpath, sizeof dpath, "scale-direct");
    dfd = open(dpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0600);
    if (dfd >= 0) {
        int wfd = open(dpath, O_WRONLY | O_CLOEXEC);

        ASSERT_EQ(gyre_file_alignment(dfd, &mem, &unit), 0);
        unit = unit > mem ? unit : mem;
        ASSERT_SYS(wfd);
        ASSERT_EQ(posix_memalign((void **)&dbuf, mem, n * unit), 0);
        block = calloc(1, unit);
        ASSERT_TRUE(block != NULL);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = tag(-1, i);

            memcpy(block, &v, 8);
            ASSERT_EQ(pwrite(wfd, block, unit, (off_t)(i * unit)), unit);
        }
        ASSERT_SYS(fsync(wfd));
        test_close(wfd);
        free(block);
        dfd_wronly = open(dpath, O_WRONLY | O_CLOEXEC | O_DIRECT);
        ASSERT_SYS(dfd_wronly);
    } else {
        ASSERT_EQ(errno, EINVAL);
    }

    scale_round(loop, ops, n, 0, fd, dfd, dfd_wronly, dbuf, unit);
    live1 = atomic_load(&live_bytes);
    peak1 = atomic_load(&peak_bytes);
    for (int round = 1; round < 3; round++) {
        scale_round(loop, ops, n, round, fd, dfd, dfd_wronly, dbuf, unit);
        if (atomic_load(&live_bytes) > live1 || atomic_load(&peak_bytes) > peak1)
            test_fail(__FILE__, __LINE__,
                      "gyre's memory grew after round 1: live %lld -> %lld, peak %lld -> %lld",
                      live1, (long long)atomic_load(&live_bytes), peak1,
                      (long long)atomic_load(&peak_bytes));
    }

    test_close(fd);
    if (dfd >= 0) {
        test_close(dfd);
        test_close(dfd_wronly);
    }
    test_loop_free(loop);
    ASSERT_EQ(gyre_set_allocator(malloc, realloc, calloc, free), 0);
    free(ops);
    free(dbuf);
}

/* --- blocked pools --- */

static atomic_int blockers_started;

/* Takes one byte from the blocking pipe *arg and returns 100 + the byte. */
static int64_t block_fn(void *arg)
{
    int fd = *(int *)arg;
    unsigned char c;

    atomic_fetch_add(&blockers_started, 1);
    if (read(fd, &c, 1) != 1)
        return -EIO;
    return 100 + c;
}

/* Runs the loop without blocking until *counter reaches target; bounded so a
 * lost worker fails the test instead of hanging it. */
static void wait_atomic(gyre_loop *loop, atomic_int *counter, int target)
{
    struct timespec ms = {0, 1000000};

    for (int i = 0; i < 20000 && atomic_load(counter) < target; i++) {
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
        nanosleep(&ms, NULL);
    }
    ASSERT_EQ(atomic_load(counter), target);
}

static gyre_loop *loop_with_pool(gyre_pool **pool, uint32_t fast, uint32_t slow)
{
    gyre_pool_opts po;
    gyre_loop_opts lo;

    memset(&po, 0, sizeof po);
    po.threads[GYRE_LANE_FAST] = fast;
    po.threads[GYRE_LANE_SLOW] = slow;
    po.threads[GYRE_LANE_DNS] = 1;
    ASSERT_EQ(gyre_pool_new(pool, &po), 0);
    memset(&lo, 0, sizeof lo);
    lo.pool = *pool;
    return test_loop_new_opts(&lo);
}

#define CQ_OPS 64
#define CQ_LEN 16

/* The one fast-lane thread is held by a work item, so file ops that go to
 * the pool queue behind it; the last half of them is cancelled. Each op
 * completes exactly once, with -ECANCELED or its real result, and the file
 * shows exactly the writes that report success. Where the pool carries
 * buffered writes (the pool engine; linuxaio sends buffered fds there) every
 * cancel of a queued op must take effect. */
void test_file_cancel_queued(void)
{
    gyre_pool *pool = NULL;
    gyre_loop *loop = loop_with_pool(&pool, 1, 1);
    struct test_op blocker = {0}, w[CQ_OPS], r[CQ_OPS];
    unsigned char wbuf[CQ_OPS][CQ_LEN], rbuf[CQ_OPS][CQ_LEN], content[CQ_OPS * CQ_LEN];
    unsigned char file[CQ_OPS * CQ_LEN + 1];
    int exact = test_file_engine_is("pool") || test_file_engine_is("linuxaio");
    char path[4096], rpath[4096];
    int bp[2], fd, rfd, total = 0;
    uint64_t seed = 0x5eed0005u;

    memset(w, 0, sizeof w);
    memset(r, 0, sizeof r);
    ASSERT_SYS(pipe2(bp, O_CLOEXEC)); /* blocking on purpose */
    test_tmppath(path, sizeof path, "cancel-w");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    ASSERT_SYS(ftruncate(fd, CQ_OPS * CQ_LEN));
    test_tmppath(rpath, sizeof rpath, "cancel-r");
    rfd = open(rpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(rfd);
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (unsigned char)test_rand(&seed);
    test_write_bytes(rfd, (const char *)content, sizeof content);
    /* Out of the page cache, so that the reads are not answered inline
     * (best effort: a read answered inline just completes with its data). */
    ASSERT_SYS(fdatasync(rfd));
    ASSERT_EQ(posix_fadvise(rfd, 0, 0, POSIX_FADV_DONTNEED), 0);

    gyre_op_work(&blocker.op, block_fn, &bp[0], GYRE_LANE_FAST);
    test_op_submit(loop, &blocker);
    wait_atomic(loop, &blockers_started, 1);

    for (int i = 0; i < CQ_OPS; i++) {
        memset(wbuf[i], 'a' + i % 26, CQ_LEN);
        gyre_op_write(&w[i].op, fd, wbuf[i], CQ_LEN, (uint64_t)i * CQ_LEN);
        test_op_submit(loop, &w[i]);
        memset(rbuf[i], 0xEE, CQ_LEN);
        gyre_op_read(&r[i].op, rfd, rbuf[i], CQ_LEN, (uint64_t)i * CQ_LEN);
        test_op_submit(loop, &r[i]);
    }
    for (int i = CQ_OPS / 2; i < CQ_OPS; i++) {
        int rc = gyre_cancel(loop, &w[i].op);

        ASSERT_EQ(rc, 0);
        ASSERT_EQ(gyre_cancel(loop, &w[i].op), -EALREADY);
        rc = gyre_cancel(loop, &r[i].op);
        /* A read answered inline is done but not yet called back: still in
         * flight, so the request is made and has no effect. */
        ASSERT_EQ(rc, 0);
    }
    ASSERT_EQ(blocker.calls, 0);

    test_write_bytes(bp[1], "\x07", 1);
    for (int i = 0; i < CQ_OPS; i++) {
        test_run_until(loop, &w[i].calls, 1);
        test_run_until(loop, &r[i].calls, 1);
    }
    test_run_until(loop, &blocker.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(blocker.calls, 1);
    ASSERT_EQ(blocker.result, 107);

    ASSERT_EQ(pread(fd, file, sizeof file, 0), CQ_OPS * CQ_LEN);
    for (int i = 0; i < CQ_OPS; i++) {
        int cancelled = i >= CQ_OPS / 2;

        ASSERT_EQ(w[i].calls, 1);
        ASSERT_EQ(r[i].calls, 1);
        if (!cancelled) {
            ASSERT_EQ(w[i].result, CQ_LEN);
            ASSERT_EQ(r[i].result, CQ_LEN);
        } else if (exact) {
            ASSERT_EQ(w[i].result, -ECANCELED);
        }
        if (w[i].result == CQ_LEN) {
            ASSERT_EQ(memcmp(file + i * CQ_LEN, wbuf[i], CQ_LEN), 0);
        } else {
            ASSERT_EQ(w[i].result, -ECANCELED);
            for (int k = 0; k < CQ_LEN; k++)
                ASSERT_EQ(file[i * CQ_LEN + k], 0);
        }
        if (r[i].result == CQ_LEN) {
            ASSERT_EQ(memcmp(rbuf[i], content + i * CQ_LEN, CQ_LEN), 0);
        } else {
            ASSERT_EQ(r[i].result, -ECANCELED);
            for (int k = 0; k < CQ_LEN; k++)
                ASSERT_EQ(rbuf[i][k], 0xEE);
        }
        total += w[i].result == -ECANCELED;
    }
    if (exact)
        ASSERT_EQ(total, CQ_OPS / 2);

    test_close(fd);
    test_close(rfd);
    test_close(bp[0]);
    test_close(bp[1]);
    test_loop_free(loop);
    ASSERT_EQ(gyre_pool_free(pool), 0);
}

/* Both slow-lane threads blocked and a third blocker queued: every kind of
 * file op still completes, with its exact result. */
void test_file_slow_lane_blocked(void)
{
    gyre_pool *pool = NULL;
    gyre_loop *loop = loop_with_pool(&pool, 2, 2);
    struct test_op blockers[3], t = {0};
    unsigned char rel[3] = {1, 2, 3};
    char buf[64], a[3], b[5];
    struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    struct statx stx;
    uint64_t dents[64];
    int bp[2], dfd, fd, fd2, sum = 0;
    int64_t n;

    memset(blockers, 0, sizeof blockers);
    ASSERT_SYS(pipe2(bp, O_CLOEXEC)); /* blocking on purpose */
    dfd = open(test_tmpdir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_SYS(dfd);
    fd = openat(dfd, "lanes", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);

    for (int i = 0; i < 3; i++) {
        gyre_op_work(&blockers[i].op, block_fn, &bp[0], GYRE_LANE_SLOW);
        test_op_submit(loop, &blockers[i]);
    }
    wait_atomic(loop, &blockers_started, 2);

    gyre_op_write(&t.op, fd, "file-data", 9, 0);
    ASSERT_EQ(test_op_run(loop, &t), 9);
    gyre_op_writev(&t.op, fd, iov, 0, 9);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_read(&t.op, fd, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), 9);
    ASSERT_EQ(memcmp(buf, "file-data", 9), 0);
    gyre_op_readv(&t.op, fd, iov, 2, 1);
    ASSERT_EQ(test_op_run(loop, &t), 8);
    ASSERT_EQ(memcmp(a, "ile", 3), 0);
    ASSERT_EQ(memcmp(b, "-data", 5), 0);
    gyre_op_fsync(&t.op, fd, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_fsync(&t.op, fd, 1);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_openat(&t.op, dfd, "lanes-copy", O_RDWR | O_CREAT | O_EXCL, 0600);
    fd2 = (int)test_op_run(loop, &t);
    ASSERT_GE(fd2, 0);
    gyre_op_copy_file_range(&t.op, fd, 0, fd2, 0, 9, 0);
    ASSERT_EQ(test_op_run(loop, &t), 9);
    gyre_op_ftruncate(&t.op, fd2, 4);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_fallocate(&t.op, fd2, 0, 0, 8192);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_statx(&t.op, dfd, "lanes-copy", 0, STATX_SIZE, &stx);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_EQ(stx.stx_size, 8192);
    ASSERT_EQ(pread(fd2, buf, 5, 0), 5);
    ASSERT_EQ(memcmp(buf, "file\0", 5), 0);
    gyre_op_mkdirat(&t.op, dfd, "lanes-dir", 0700);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_renameat(&t.op, dfd, "lanes-copy", dfd, "lanes-dir/moved", 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    {
        int ld = openat(dfd, "lanes-dir", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        ASSERT_SYS(ld);
        gyre_op_readdir(&t.op, ld, dents, sizeof dents);
        n = test_op_run(loop, &t);
        ASSERT_GT(n, 0); /* ".", ".." and "moved": 3 records */
        gyre_op_readdir(&t.op, ld, dents, sizeof dents);
        ASSERT_EQ(test_op_run(loop, &t), 0);
        test_close(ld);
    }
    gyre_op_unlinkat(&t.op, dfd, "lanes-dir/moved", 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_unlinkat(&t.op, dfd, "lanes-dir", AT_REMOVEDIR);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_close(&t.op, fd2);
    ASSERT_EQ(test_op_run(loop, &t), 0);

    ASSERT_EQ(atomic_load(&blockers_started), 2);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(blockers[i].calls, 0);

    /* Release: every blocker completes once with what it read. */
    test_write_bytes(bp[1], (const char *)rel, 3);
    for (int i = 0; i < 3; i++)
        test_run_until(loop, &blockers[i].calls, 1);
    test_run_nowait(loop, 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(blockers[i].calls, 1);
        sum += (int)blockers[i].result;
    }
    ASSERT_EQ(sum, 101 + 102 + 103);

    test_close(fd);
    test_close(dfd);
    test_close(bp[0]);
    test_close(bp[1]);
    test_loop_free(loop);
    ASSERT_EQ(gyre_pool_free(pool), 0);
}
