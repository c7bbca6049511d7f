/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-pool.c: the thread pool behind work items and file operations --
 * lanes that do not starve each other, one pool shared by two loops running
 * on two threads, the pool's lifetime rules, and a loop created on one
 * thread and run on another.
 *
 * While the slow lane is blocked, file operations, the other lanes and a
 * real name resolution (RELIABILITY E2) still complete.
 *
 * Blocking work waits on a blocking pipe the test writes to, so "the lane is
 * full" is a fact the test establishes (every blocker has started) rather
 * than a timing guess.
 */
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

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

static int64_t echo_fn(void *arg)
{
    return (int64_t)(intptr_t)arg;
}

static int dns_calls, dns_status;

static void dns_cb(gyre_getaddrinfo_req *req, int status, struct addrinfo *res)
{
    (void)req;
    dns_calls++;
    dns_status = status;
    if (status == 0) {
        ASSERT_TRUE(res != NULL && res->ai_family == AF_INET);
        gyre_freeaddrinfo(res);
    }
}

/* Runs the loop without blocking until *counter reaches target; bounded so a
 * lost worker fails the test instead of hanging it. */
static void wait_atomic(gyre_loop *loop, atomic_int *counter, int target)
{
    struct timespec ms = {0, 1000000};
    int i;

    for (i = 0; i < 20000 && atomic_load(counter) < target; i++) {
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
        nanosleep(&ms, NULL);
    }
    ASSERT_EQ(atomic_load(counter), target);
}

static int make_file(const char *name, const char *content, size_t len)
{
    char path[4096];
    int fd;

    test_tmppath(path, sizeof path, name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_write_bytes(fd, content, len);
    return fd;
}

void test_op_pool_slow_lane_blocked(void)
{
    gyre_pool_opts po;
    gyre_loop_opts lo;
    gyre_pool *pool = NULL;
    gyre_loop *loop;
    struct test_op blockers[3], t = {0};
    unsigned char rel[3] = {1, 2, 3};
    char buf[16];
    int bp[2], fd, i, sum = 0;

    memset(&po, 0, sizeof po);
    po.threads[GYRE_LANE_FAST] = 2;
    po.threads[GYRE_LANE_SLOW] = 2;
    po.threads[GYRE_LANE_DNS] = 1;
    ASSERT_EQ(gyre_pool_new(&pool, &po), 0);
    memset(&lo, 0, sizeof lo);
    lo.pool = pool;
    loop = test_loop_new_opts(&lo);
    memset(blockers, 0, sizeof blockers);
    ASSERT_SYS(pipe2(bp, O_CLOEXEC)); /* blocking on purpose */
    fd = make_file("lanes", "file-data", 9);

    /* Both slow threads blocked, a third blocker queued behind them. */
    for (i = 0; i < 3; i++) {
        gyre_op_work(&blockers[i].op, block_fn, &bp[0], GYRE_LANE_SLOW);
        test_op_submit(loop, &blockers[i]);
    }
    wait_atomic(loop, &blockers_started, 2);

    /* Other lanes and file operations still progress. */
    gyre_op_read(&t.op, fd, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), 9);
    ASSERT_EQ(memcmp(buf, "file-data", 9), 0);
    gyre_op_write(&t.op, fd, "more", 4, 9);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    gyre_op_fsync(&t.op, fd, 1);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_work(&t.op, echo_fn, (void *)(intptr_t)11, GYRE_LANE_FAST);
    ASSERT_EQ(test_op_run(loop, &t), 11);
    gyre_op_work(&t.op, echo_fn, (void *)(intptr_t)22, GYRE_LANE_DNS);
    ASSERT_EQ(test_op_run(loop, &t), 22);
    /* A real resolution too (numeric: no name server involved). */
    {
        static gyre_getaddrinfo_req req;
        struct addrinfo hints;

        ASSERT_EQ(gyre_getaddrinfo_req_init(&req), 0);
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_flags = AI_NUMERICHOST;
        ASSERT_EQ(gyre_getaddrinfo(loop, &req, "127.0.0.1", "80", &hints, dns_cb), 0);
        test_run_until(loop, &dns_calls, 1);
        ASSERT_EQ(dns_status, 0);
    }
    ASSERT_EQ(atomic_load(&blockers_started), 2);
    for (i = 0; i < 3; i++)
        ASSERT_EQ(blockers[i].calls, 0);

    /* Release: every blocker completes once with what it read. */
    test_write_bytes(bp[1], (const char *)rel, 3);
    for (i = 0; i < 3; i++)
        test_run_until(loop, &blockers[i].calls, 1);
    test_run_nowait(loop, 3);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(blockers[i].calls, 1);
        ASSERT_GE(blockers[i].result, 101);
        ASSERT_LE(blockers[i].result, 103);
        sum += (int)blockers[i].result;
    }
    ASSERT_EQ(sum, 101 + 102 + 103);
    ASSERT_EQ(atomic_load(&blockers_started), 3);

    test_close(fd);
    test_close(bp[0]);
    test_close(bp[1]);
    test_loop_free(loop);
    ASSERT_EQ(gyre_pool_free(pool), 0);
}

/* Two loops, each on its own thread, sharing one pool: a chain of work
 * items on the fast and slow lanes and positioned file reads. */
#define SHARED_OPS 400

struct sharer {
    gyre_loop *loop;
    gyre_op op;
    int fd, id, n, done;
    int64_t sum, want;
    char buf[8];
};

static void sharer_next(struct sharer *s);

static void sharer_cb(gyre_op *op)
{
    struct sharer *s = op->data;

    if (s->n % 3 == 2) {
        ASSERT_EQ(op->result, 1);
        ASSERT_EQ(s->buf[0], (char)('a' + s->n % 26));
    } else {
        s->sum += op->result;
    }
    if (++s->n == SHARED_OPS) {
        s->done = 1;
        return;
    }
    sharer_next(s);
}

static void sharer_next(struct sharer *s)
{
    s->op.data = s;
    if (s->n % 3 == 2) {
        gyre_op_read(&s->op, s->fd, s->buf, 1, (uint64_t)(s->n % 26));
    } else {
        int64_t v = s->id * 100000 + s->n;

        s->want += v;
        gyre_op_work(&s->op, echo_fn, (void *)(intptr_t)v,
                     s->n % 2 ? GYRE_LANE_SLOW : GYRE_LANE_FAST);
    }
    ASSERT_EQ(gyre_submit(s->loop, &s->op, sharer_cb), 0);
}

static void *sharer_thread(void *arg)
{
    struct sharer *s = arg;

    sharer_next(s);
    test_run_until(s->loop, &s->done, 1);
    return NULL;
}

void test_op_pool_shared(void)
{
    static struct sharer s[2];
    gyre_loop_opts lo;
    gyre_pool *pool = NULL;
    pthread_t th[2];
    int fd, i;

    ASSERT_EQ(gyre_pool_new(&pool, NULL), 0);
    fd = make_file("shared", "abcdefghijklmnopqrstuvwxyz", 26);
    memset(&lo, 0, sizeof lo);
    lo.pool = pool;
    for (i = 0; i < 2; i++) {
        memset(&s[i], 0, sizeof s[i]);
        s[i].loop = test_loop_new_opts(&lo);
        s[i].fd = fd;
        s[i].id = i + 1;
    }
    ASSERT_EQ(gyre_pool_free(pool), -EBUSY);
    for (i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, sharer_thread, &s[i]), 0);
    for (i = 0; i < 2; i++)
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
    for (i = 0; i < 2; i++) {
        ASSERT_EQ(s[i].n, SHARED_OPS);
        ASSERT_EQ(s[i].sum, s[i].want);
    }
    /* Still in use by the remaining loop. */
    ASSERT_EQ(gyre_pool_free(pool), -EBUSY);
    test_loop_free(s[0].loop);
    ASSERT_EQ(gyre_pool_free(pool), -EBUSY);
    test_loop_free(s[1].loop);
    ASSERT_EQ(gyre_pool_free(pool), 0);
    test_close(fd);
}

void test_op_pool_free_busy(void)
{
    gyre_pool_opts po;
    gyre_loop_opts lo;
    gyre_pool *pool = NULL;
    gyre_loop *loop;
    struct test_op t = {0};

    memset(&po, 0, sizeof po);
    ASSERT_EQ(gyre_pool_new(NULL, &po), -EINVAL);
    po.reserved[0] = 1;
    ASSERT_EQ(gyre_pool_new(&pool, &po), -EINVAL);
    ASSERT_TRUE(pool == NULL);
    po.reserved[0] = 0;
    ASSERT_EQ(gyre_pool_new(&pool, &po), 0);
    /* A pool no loop uses frees at once, threads started or not. */
    ASSERT_EQ(gyre_pool_free(pool), 0);

    ASSERT_EQ(gyre_pool_new(&pool, NULL), 0);
    memset(&lo, 0, sizeof lo);
    lo.pool = pool;
    loop = test_loop_new_opts(&lo);
    ASSERT_EQ(gyre_pool_free(pool), -EBUSY);
    gyre_op_work(&t.op, echo_fn, (void *)(intptr_t)5, GYRE_LANE_FAST);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    ASSERT_EQ(gyre_pool_free(pool), -EBUSY);
    test_loop_free(loop);
    ASSERT_EQ(gyre_pool_free(pool), 0);
}

/* Made and loaded with ops on the main thread, run on another. */
struct other {
    gyre_loop *loop;
    struct test_op nop, w, r, work, tmo;
    gyre_timer timer;
    int timer_fired;
    pthread_t runner;
    int cb_on_runner;
};

static struct other oth;

static void other_timer_cb(gyre_timer *t)
{
    (void)t;
    oth.timer_fired++;
    oth.cb_on_runner = pthread_equal(pthread_self(), oth.runner);
}

static void *other_thread(void *arg)
{
    (void)arg;
    oth.runner = pthread_self();
    test_run_until(oth.loop, &oth.nop.calls, 1);
    test_run_until(oth.loop, &oth.r.calls, 1);
    test_run_until(oth.loop, &oth.w.calls, 1);
    test_run_until(oth.loop, &oth.work.calls, 1);
    test_run_until(oth.loop, &oth.tmo.calls, 1);
    test_run_until(oth.loop, &oth.timer_fired, 1);
    ASSERT_EQ(gyre_loop_run(oth.loop, GYRE_RUN_DEFAULT), 0);
    return NULL;
}

void test_op_loop_other_thread(void)
{
    pthread_t th;
    char buf[8];
    int p[2];

    oth.loop = test_loop_new();
    test_pipe(p);
    gyre_op_nop(&oth.nop.op);
    test_op_submit(oth.loop, &oth.nop);
    gyre_op_read(&oth.r.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(oth.loop, &oth.r);
    gyre_op_write(&oth.w.op, p[1], "thread", 6, GYRE_OFF_CUR);
    test_op_submit(oth.loop, &oth.w);
    gyre_op_work(&oth.work.op, echo_fn, (void *)(intptr_t)77, GYRE_LANE_SLOW);
    test_op_submit(oth.loop, &oth.work);
    gyre_op_timeout(&oth.tmo.op, MS(1));
    test_op_submit(oth.loop, &oth.tmo);
    ASSERT_EQ(gyre_timer_init(oth.loop, &oth.timer), 0);
    ASSERT_EQ(gyre_timer_start(&oth.timer, other_timer_cb, MS(1), 0), 0);

    ASSERT_EQ(pthread_create(&th, NULL, other_thread, NULL), 0);
    ASSERT_EQ(pthread_join(th, NULL), 0);
    ASSERT_EQ(oth.nop.calls, 1);
    ASSERT_EQ(oth.nop.result, 0);
    ASSERT_EQ(oth.w.calls, 1);
    ASSERT_EQ(oth.w.result, 6);
    ASSERT_EQ(oth.r.calls, 1);
    ASSERT_EQ(oth.r.result, 6);
    ASSERT_EQ(memcmp(buf, "thread", 6), 0);
    ASSERT_EQ(oth.work.calls, 1);
    ASSERT_EQ(oth.work.result, 77);
    ASSERT_EQ(oth.tmo.calls, 1);
    ASSERT_EQ(oth.tmo.result, 0);
    ASSERT_EQ(oth.timer_fired, 1);
    ASSERT_EQ(oth.cb_on_runner, 1);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(oth.loop);
}
