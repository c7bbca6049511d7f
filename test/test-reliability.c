/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-reliability.c: the scenarios of docs/reliability.md (RELIABILITY A1..K4)
 * that the area tests did not cover, one test each (test-list-reliability.h).
 *
 * Every pass criterion is a count, a byte comparison or an exact error code,
 * never a duration: a test may wait for something (a timer to fire, a child
 * to exit) but asserts only on what happened. Conditions this machine cannot
 * produce on demand are made by the test itself: descriptor exhaustion by a
 * lowered RLIMIT_NOFILE filled with /dev/null duplicates, allocation failure
 * by an allocator (gyre_set_allocator) that fails its Nth call, a full SQ
 * and CQ by a one-entry ring, an EINTR storm by a 100 us ITIMER_REAL whose
 * handler is installed without SA_RESTART, and kernel overreach by guard
 * pages. Each test runs in its own process, so rlimits, the allocator,
 * signal dispositions and itimers it changes die with it (and are restored
 * anyway, so that a failing assertion reports the real failure).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/io_uring.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-net-echo.h"

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                            */
/* ------------------------------------------------------------------------ */

/* A counting allocator for gyre_set_allocator(): every block carries a
 * header with its size, so live blocks and bytes are exact, and the call
 * whose 1-based number is fail_at returns NULL (0: none fails). Pool
 * threads free what the loop thread allocated, hence the atomics. */
#define ALLOC_HDR 16

static struct {
    atomic_long calls;   /* malloc, calloc and realloc calls */
    atomic_long fail_at; /* the call to fail, 1-based; 0 = never */
    atomic_long failed;  /* calls refused */
    atomic_long live;    /* blocks allocated and not yet freed */
    atomic_long live_bytes;
    atomic_long peak_bytes;
} ca;

static int ca_refuse(void)
{
    long n = atomic_fetch_add(&ca.calls, 1) + 1;

    if (n == atomic_load(&ca.fail_at)) {
        atomic_fetch_add(&ca.failed, 1);
        return 1;
    }
    return 0;
}

static void ca_account(long blocks, long bytes)
{
    long now = atomic_fetch_add(&ca.live_bytes, bytes) + bytes;
    long peak = atomic_load(&ca.peak_bytes);

    atomic_fetch_add(&ca.live, blocks);
    while (now > peak && !atomic_compare_exchange_weak(&ca.peak_bytes, &peak, now))
        continue;
}

static void *ca_wrap(unsigned char *raw, size_t size)
{
    if (raw == NULL)
        return NULL;
    memcpy(raw, &size, sizeof size);
    return raw + ALLOC_HDR;
}

static void *ca_malloc(size_t size)
{
    void *p;

    if (ca_refuse() || size > SIZE_MAX - ALLOC_HDR)
        return NULL;
    p = ca_wrap(malloc(size + ALLOC_HDR), size);
    if (p != NULL)
        ca_account(1, (long)size);
    return p;
}

static void *ca_calloc(size_t n, size_t size)
{
    void *p;

    if (ca_refuse() || (n != 0 && size > (SIZE_MAX - ALLOC_HDR) / n))
        return NULL;
    p = ca_wrap(calloc(1, n * size + ALLOC_HDR), n * size);
    if (p != NULL)
        ca_account(1, (long)(n * size));
    return p;
}

static void ca_free(void *p)
{
    size_t size;

    if (p == NULL)
        return;
    memcpy(&size, (unsigned char *)p - ALLOC_HDR, sizeof size);
    ca_account(-1, -(long)size);
    free((unsigned char *)p - ALLOC_HDR);
}

static void *ca_realloc(void *p, size_t size)
{
    size_t old = 0;
    void *n;

    if (ca_refuse() || size > SIZE_MAX - ALLOC_HDR)
        return NULL;
    if (p == NULL) {
        n = ca_wrap(malloc(size + ALLOC_HDR), size);
        if (n != NULL)
            ca_account(1, (long)size);
        return n;
    }
    memcpy(&old, (unsigned char *)p - ALLOC_HDR, sizeof old);
    n = ca_wrap(realloc((unsigned char *)p - ALLOC_HDR, size + ALLOC_HDR), size);
    if (n != NULL)
        ca_account(0, (long)size - (long)old);
    return n;
}

static void ca_install(void)
{
    ASSERT_EQ(gyre_set_allocator(ca_malloc, ca_realloc, ca_calloc, ca_free), 0);
}

/* Open descriptors below the RLIMIT_NOFILE soft limit (none can be above it
 * that the test did not open before lowering it), counted with fcntl so
 * that counting needs no descriptor of its own: /proc/self/fd cannot be
 * opened while the table is full. */
static int open_fds(void)
{
    struct rlimit rl;
    int n = 0;

    ASSERT_SYS(getrlimit(RLIMIT_NOFILE, &rl));
    for (int fd = 0; fd < (int)rl.rlim_cur && fd < (1 << 16); fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    }
    return n;
}

static int highest_open_fd(void)
{
    int hi = 0;

    for (int fd = 0; fd < (1 << 16); fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            hi = fd;
    }
    return hi;
}

/* No child process at all (none left running, no zombie). */
static void assert_no_children(void)
{
    siginfo_t si;

    memset(&si, 0, sizeof si);
    ASSERT_EQ(waitid(P_ALL, 0, &si, WEXITED | WNOHANG), -1);
    ASSERT_EQ(errno, ECHILD);
}

/* The options of a loop on the backend under test with the smallest ring
 * io_uring allows (one SQ entry; the CQ is four times the SQ): the ring
 * fills after one submission and its CQ after four completions. Other
 * backends ignore ring_entries. */
static gyre_loop *tiny_ring_loop(void)
{
    gyre_loop_opts o;
    gyre_loop *loop;
    gyre_info info;

    memset(&o, 0, sizeof o);
    o.ring_entries = 1;
    loop = test_loop_new_opts(&o);
    ASSERT_EQ(gyre_loop_info(loop, &info), 0);
    if (test_backend_is("uring")) {
        ASSERT_EQ(info.sq_entries, 1);
        ASSERT_LE(info.cq_entries, 4);
    } else {
        ASSERT_EQ(info.sq_entries, 0);
    }
    return loop;
}

/* A record per op: the op first, so the callback finds the record. */
struct rop {
    gyre_op op;
    int calls;
    int kind;
    int64_t result;
    uint32_t flags;
    unsigned char byte;
};

static int rop_done;

static void rop_cb(gyre_op *op)
{
    struct rop *r = (struct rop *)op;

    r->calls++;
    r->result = op->result;
    r->flags = op->flags;
    if (r->calls == 1)
        rop_done++;
}

/* ------------------------------------------------------------------------ */
/* A4: a full submission queue                                               */
/* ------------------------------------------------------------------------ */

enum {
    K_NOP,
    K_TIMEOUT,
    K_WRITE,
    K_READ,
    K_KINDS
};

static struct {
    gyre_loop *loop;
    struct rop *ops;
    size_t n;
    int p[2];
    int submitted;
} a4;

static unsigned char a4_byte(size_t i)
{
    return (unsigned char)(i * 7u + 3u);
}

/* One callback submits every op: none can reach the kernel before the
 * callback returns, so the one-entry SQ is full from the second on. */
static void a4_burst_cb(gyre_op *op)
{
    ASSERT_EQ(op->result, 0);
    for (size_t i = 0; i < a4.n; i++) {
        struct rop *r = &a4.ops[i];

        r->kind = (int)(i % K_KINDS);
        switch (r->kind) {
        case K_NOP:
            gyre_op_nop(&r->op);
            break;
        case K_TIMEOUT:
            gyre_op_timeout(&r->op, 1);
            break;
        case K_WRITE:
            r->byte = a4_byte(i);
            gyre_op_write(&r->op, a4.p[1], &r->byte, 1, GYRE_OFF_CUR);
            break;
        default:
            gyre_op_read(&r->op, a4.p[0], &r->byte, 1, GYRE_OFF_CUR);
            break;
        }
        ASSERT_EQ(gyre_submit(a4.loop, &r->op, rop_cb), 0);
        ASSERT_EQ(r->calls, 0);
    }
    a4.submitted = 1;
}

void test_rel_a4_sq_full(void)
{
    struct rop kick = {0};
    size_t hist_w[256] = {0}, hist_r[256] = {0};
    char extra;

    memset(&a4, 0, sizeof a4);
    a4.loop = tiny_ring_loop();
    a4.n = test_scale(10000) / K_KINDS * K_KINDS;
    a4.ops = calloc(a4.n, sizeof *a4.ops);
    ASSERT_TRUE(a4.ops != NULL);
    test_pipe(a4.p); /* 2,500 one-byte writes fit in the pipe */
    rop_done = 0;
    gyre_op_nop(&kick.op);
    ASSERT_EQ(gyre_submit(a4.loop, &kick.op, a4_burst_cb), 0);
    test_run_until(a4.loop, &a4.submitted, 1);
    test_run_until(a4.loop, &rop_done, (int)a4.n);
    test_run_nowait(a4.loop, 3);
    ASSERT_EQ(rop_done, (int)a4.n);
    for (size_t i = 0; i < a4.n; i++) {
        struct rop *r = &a4.ops[i];

        if (r->calls != 1)
            test_fail(__FILE__, __LINE__, "op %zu (kind %d) completed %d times", i, r->kind,
                      r->calls);
        ASSERT_EQ(r->flags & GYRE_OP_MORE, 0);
        ASSERT_EQ(r->result, r->kind == K_WRITE || r->kind == K_READ ? 1 : 0);
        if (r->kind == K_WRITE)
            hist_w[a4_byte(i)]++;
        if (r->kind == K_READ)
            hist_r[r->byte]++;
    }
    /* Every byte written was read once: nothing lost, nothing twice. */
    for (int b = 0; b < 256; b++)
        ASSERT_EQ(hist_r[b], hist_w[b]);
    ASSERT_EQ(read(a4.p[0], &extra, 1), -1);
    ASSERT_EQ(errno, EAGAIN);
    test_close(a4.p[0]);
    test_close(a4.p[1]);
    free(a4.ops);
    test_loop_free(a4.loop);
}

/* ------------------------------------------------------------------------ */
/* A5: completion queue overflow                                             */
/* ------------------------------------------------------------------------ */

/* (1) 20,000 one-shot completions produced in one batch: nops and timeouts
 * that have expired before the loop next reaps. */
static struct {
    gyre_loop *loop;
    struct rop *ops;
    size_t n;
    int submitted;
} a5;

static void a5_burst_cb(gyre_op *op)
{
    struct timespec ms = {0, 1000000};

    ASSERT_EQ(op->result, 0);
    for (size_t i = 0; i < a5.n; i++) {
        struct rop *r = &a5.ops[i];

        r->kind = (int)(i % 2);
        if (r->kind == K_NOP)
            gyre_op_nop(&r->op);
        else
            gyre_op_timeout(&r->op, 1);
        ASSERT_EQ(gyre_submit(a5.loop, &r->op, rop_cb), 0);
    }
    /* Every timeout is due before the loop looks again. */
    nanosleep(&ms, NULL);
    a5.submitted = 1;
}

static void a5_batch(void)
{
    struct rop kick = {0};

    a5.n = test_scale(20000) / 2 * 2;
    a5.ops = calloc(a5.n, sizeof *a5.ops);
    ASSERT_TRUE(a5.ops != NULL);
    rop_done = 0;
    gyre_op_nop(&kick.op);
    ASSERT_EQ(gyre_submit(a5.loop, &kick.op, a5_burst_cb), 0);
    test_run_until(a5.loop, &a5.submitted, 1);
    test_run_until(a5.loop, &rop_done, (int)a5.n);
    test_run_nowait(a5.loop, 3);
    ASSERT_EQ(rop_done, (int)a5.n);
    for (size_t i = 0; i < a5.n; i++) {
        ASSERT_EQ(a5.ops[i].calls, 1);
        ASSERT_EQ(a5.ops[i].result, 0);
    }
    free(a5.ops);
}

/* (2) A multishot recv into one-byte buffers with 20,000 bytes already in
 * the socket: the kernel posts a CQE per byte, thousands of times what the
 * CQ holds, and ends the multishot when it cannot post (A7's case too). */
struct msrec {
    gyre_op op;
    gyre_bufpool *pool;
    unsigned char *got;
    size_t n, cap;
    int completions, final;
    int64_t final_result;
};

static void msrec_cb(gyre_op *op)
{
    struct msrec *m = (struct msrec *)op;

    m->completions++;
    if (!(op->flags & GYRE_OP_MORE)) {
        m->final++;
        m->final_result = op->result;
        ASSERT_LE(op->result, 0);
        return;
    }
    if (op->result <= 0)
        test_fail(__FILE__, __LINE__, "multishot completion %d: %jd with MORE", m->completions,
                  (intmax_t)op->result);
    ASSERT_TRUE((op->flags & GYRE_OP_BUFFER) != 0);
    ASSERT_LE(m->n + (size_t)op->result, m->cap);
    memcpy(m->got + m->n, gyre_bufpool_buf(m->pool, op->buf_id), (size_t)op->result);
    m->n += (size_t)op->result;
    /* Given back at once: the pool never runs dry, so every end of the
     * multishot is the kernel's own. */
    ASSERT_EQ(gyre_bufpool_put(m->pool, op->buf_id), 0);
}

static void a5_multishot(gyre_loop *loop)
{
    static struct msrec m;
    size_t total = test_scale(20000);
    unsigned char *want = malloc(total);
    uint64_t rng = 0xa5a5;
    int sp[2];

    ASSERT_TRUE(want != NULL);
    memset(&m, 0, sizeof m);
    m.cap = total;
    m.got = malloc(total);
    ASSERT_TRUE(m.got != NULL);
    for (size_t i = 0; i < total; i++)
        want[i] = (unsigned char)(test_rand(&rng) >> 56);
    test_socketpair(sp);
    test_write_bytes(sp[1], (const char *)want, total);
    ASSERT_EQ(gyre_bufpool_new(loop, &m.pool, 32768, 1), 0);
    gyre_op_recv_multishot(&m.op, sp[0], m.pool);
    ASSERT_EQ(gyre_submit(loop, &m.op, msrec_cb), 0);
    while (m.n < total) {
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
        ASSERT_EQ(m.final, 0);
    }
    ASSERT_EQ(gyre_cancel(loop, &m.op), 0);
    test_run_until(loop, &m.final, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(m.final, 1);
    ASSERT_EQ(m.final_result, -ECANCELED);
    /* One byte per buffer: one completion per byte, plus the final one. */
    ASSERT_EQ(m.completions, (int)total + 1);
    ASSERT_EQ(m.n, total);
    ASSERT_EQ(memcmp(m.got, want, total), 0);
    ASSERT_EQ(gyre_bufpool_available(m.pool), 32768);
    ASSERT_EQ(gyre_bufpool_free(m.pool), 0);
    test_close(sp[0]);
    test_close(sp[1]);
    free(m.got);
    free(want);
}

/* (3) 256 watched pipes made readable at once: 256 readiness completions
 * for a CQ of four. Each watch reads its byte, so it fires exactly once. */
#define A5_PIPES 256

struct a5_watch {
    gyre_watch w;
    int fd[2];
    int fired;
    char byte;
};

static int a5_watch_calls;

static void a5_watch_cb(gyre_watch *w, uint32_t events)
{
    struct a5_watch *x = (struct a5_watch *)w;

    ASSERT_TRUE((events & GYRE_IN) != 0);
    /* A second call in one batch, after the first took the byte, would be
     * a stale readiness event: the condition no longer holds. */
    if (read(x->fd[0], &x->byte, 1) != 1)
        test_fail(__FILE__, __LINE__,
                  "watch on fd %d called again (events 0x%x) after %d call(s), "
                  "with nothing to read: %s",
                  x->fd[0], events, x->fired, strerror(errno));
    x->fired++;
    a5_watch_calls++;
}

static void a5_watches(gyre_loop *loop)
{
    static struct a5_watch ws[A5_PIPES];

    a5_watch_calls = 0;
    for (int i = 0; i < A5_PIPES; i++) {
        memset(&ws[i], 0, sizeof ws[i]);
        test_pipe(ws[i].fd);
        ASSERT_EQ(gyre_watch_init(loop, &ws[i].w, ws[i].fd[0]), 0);
        ASSERT_EQ(gyre_watch_start(&ws[i].w, GYRE_IN, a5_watch_cb), 0);
    }
    test_run_nowait(loop, 2); /* every poll armed before the burst */
    ASSERT_EQ(a5_watch_calls, 0);
    for (int i = 0; i < A5_PIPES; i++) {
        char b = (char)i;

        test_write_bytes(ws[i].fd[1], &b, 1);
    }
    test_run_until(loop, &a5_watch_calls, A5_PIPES);
    test_run_nowait(loop, 3);
    ASSERT_EQ(a5_watch_calls, A5_PIPES);
    for (int i = 0; i < A5_PIPES; i++) {
        ASSERT_EQ(ws[i].fired, 1);
        ASSERT_EQ(ws[i].byte, (char)i);
        ASSERT_EQ(gyre_watch_stop(&ws[i].w), 0);
        test_close(ws[i].fd[0]);
        test_close(ws[i].fd[1]);
    }
}

void test_rel_a5_cq_overflow(void)
{
    memset(&a5, 0, sizeof a5);
    a5.loop = tiny_ring_loop();
    a5_batch();
    a5_multishot(a5.loop);
    a5_watches(a5.loop);
    test_loop_free(a5.loop);
}

/* ------------------------------------------------------------------------ */
/* A7: a multishot ended by the kernel is re-armed once                      */
/* ------------------------------------------------------------------------ */

/* Clients connect and send their 4-byte number before the multishot accept
 * is armed, so the kernel has every connection to post at once and a CQ of
 * four entries ends the multishot again and again. Each number must be
 * accepted exactly once: a re-arm that overlapped the old multishot, or a
 * completion delivered twice, shows up as a duplicate. */
static struct {
    gyre_loop *loop;
    gyre_op op;
    int n, accepted, completions, final;
    int64_t final_result;
    unsigned char *seen;
} a7;

static void a7_accept_cb(gyre_op *op)
{
    uint32_t id;
    int fd;

    a7.completions++;
    if (!(op->flags & GYRE_OP_MORE)) {
        a7.final++;
        a7.final_result = op->result;
        return;
    }
    if (op->result < 0)
        test_fail(__FILE__, __LINE__, "accept completion %d: %s", a7.completions,
                  gyre_strerror((int)op->result));
    fd = (int)op->result;
    /* The client wrote before the accept was armed: the bytes are there. */
    ASSERT_EQ(recv(fd, &id, sizeof id, MSG_DONTWAIT), (ssize_t)sizeof id);
    ASSERT_LT(id, (uint32_t)a7.n);
    if (a7.seen[id]++ != 0)
        test_fail(__FILE__, __LINE__, "client %u accepted twice", id);
    test_close(fd);
    a7.accepted++;
    if (a7.accepted == a7.n)
        ASSERT_EQ(gyre_cancel(a7.loop, op), 0);
}

void test_rel_a7_multishot_cq_full(void)
{
    struct sockaddr_in addr;
    int lfd, *cfd;

    memset(&a7, 0, sizeof a7);
    a7.n = (int)test_scale(200);
    a7.seen = calloc((size_t)a7.n, 1);
    cfd = calloc((size_t)a7.n, sizeof *cfd);
    ASSERT_TRUE(a7.seen != NULL && cfd != NULL);
    a7.loop = tiny_ring_loop();
    lfd = test_tcp_listener(&addr);
    ASSERT_SYS(listen(lfd, a7.n)); /* room for every client in the backlog */
    for (int i = 0; i < a7.n; i++) {
        uint32_t id = (uint32_t)i;

        cfd[i] = echo_client_connect((struct sockaddr *)&addr, sizeof addr);
        test_write_bytes(cfd[i], (const char *)&id, sizeof id);
    }
    gyre_op_accept_multishot(&a7.op, lfd);
    ASSERT_EQ(gyre_submit(a7.loop, &a7.op, a7_accept_cb), 0);
    test_run_until(a7.loop, &a7.final, 1);
    test_run_nowait(a7.loop, 3);
    ASSERT_EQ(a7.accepted, a7.n);
    ASSERT_EQ(a7.final, 1);
    ASSERT_EQ(a7.final_result, -ECANCELED);
    ASSERT_EQ(a7.completions, a7.n + 1);
    for (int i = 0; i < a7.n; i++) {
        ASSERT_EQ(a7.seen[i], 1);
        test_close(cfd[i]);
    }
    test_close(lfd);
    free(cfd);
    free(a7.seen);
    test_loop_free(a7.loop);
}

/* ------------------------------------------------------------------------ */
/* A2: out of descriptors at every fd-making call                            */
/* ------------------------------------------------------------------------ */

/* The descriptor table is filled with /dev/null duplicates up to a lowered
 * RLIMIT_NOFILE, then `free` of them are closed again, for free = 0, 1, 2,
 * ... until the call under test succeeds. Each failure must be -EMFILE with
 * the table exactly as before the call (nothing half-made is left open, no
 * child is left behind); the success is then undone and must also give
 * every descriptor back. A path that needs k descriptors thus fails k times,
 * once at each of them. */
#define A2_MAX_FREE 24

static struct {
    gyre_loop *loop; /* made before the table is filled */
    int devnull;
    int *fill; /* room for rlim_cur entries */
    int nfill, cap;
    int lfd; /* a plain listener with a client waiting in its backlog */
    int client;
    struct sockaddr_in addr;
    char port[16];
    char file[4096];
} a2;

static void a2_fill(void)
{
    for (;;) {
        int fd = fcntl(a2.devnull, F_DUPFD_CLOEXEC, 0);

        if (fd < 0) {
            ASSERT_EQ(errno, EMFILE);
            return;
        }
        ASSERT_LT(a2.nfill, a2.cap);
        a2.fill[a2.nfill++] = fd;
    }
}

/* Frees the `n` lowest filler numbers (the kernel hands out the lowest). */
static void a2_release(int n)
{
    ASSERT_LE(n, a2.nfill);
    for (int i = 0; i < n; i++)
        test_close(a2.fill[i]);
    memmove(a2.fill, a2.fill + n, (size_t)(a2.nfill - n) * sizeof a2.fill[0]);
    a2.nfill -= n;
}

static void a2_unfill(void)
{
    a2_release(a2.nfill);
}

typedef int (*a2_try_fn)(void);
typedef void (*a2_undo_fn)(void);

/* Runs try with 0, 1, 2, ... free descriptors; returns how many it needed. */
static int a2_path(const char *name, a2_try_fn try_fn, a2_undo_fn undo_fn)
{
    int base = open_fds();

    for (int free_fds = 0; free_fds <= A2_MAX_FREE; free_fds++) {
        int before, rc;

        a2_fill();
        a2_release(free_fds);
        before = open_fds();
        rc = try_fn();
        if (rc >= 0) {
            a2_unfill();
            if (undo_fn != NULL)
                undo_fn();
            ASSERT_EQ(open_fds(), base);
            printf("A2 %s: made with %d free descriptor(s), -EMFILE with fewer\n", name, free_fds);
            return free_fds;
        }
        if (rc != -EMFILE)
            test_fail(__FILE__, __LINE__, "%s with %d free descriptors: %s, want -EMFILE", name,
                      free_fds, gyre_strerror(rc));
        if (open_fds() != before)
            test_fail(__FILE__, __LINE__, "%s failed with %d free descriptors and left %d open",
                      name, free_fds, open_fds() - before);
        assert_no_children();
        a2_unfill();
        ASSERT_EQ(open_fds(), base);
    }
    test_fail(__FILE__, __LINE__, "%s: still failing with %d free descriptors", name, A2_MAX_FREE);
}

/* Paths that make no descriptor must work with none free. */
static void a2_needs_none(const char *name, a2_try_fn try_fn, a2_undo_fn undo_fn)
{
    ASSERT_EQ(a2_path(name, try_fn, undo_fn), 0);
}

static gyre_loop *a2_new_loop;
static const char *a2_engine;

static int a2_loop_try(void)
{
    gyre_loop_opts o;

    memset(&o, 0, sizeof o);
    o.file_engine = a2_engine;
    return gyre_loop_new(&a2_new_loop, &o);
}

static void a2_loop_undo(void)
{
    ASSERT_EQ(gyre_loop_free(a2_new_loop), 0);
}

static gyre_listener a2_listener;
static int a2_listener_closed;
static uint32_t a2_listen_flags;

static void a2_accept_cb(gyre_listener *l, int fd)
{
    (void)l;
    if (fd >= 0)
        test_close(fd);
}

static void a2_listener_closed_cb(gyre_listener *l)
{
    (void)l;
    a2_listener_closed++;
}

static int a2_listen_try(void)
{
    gyre_listen_opts o;

    memset(&o, 0, sizeof o);
    o.flags = a2_listen_flags;
    return gyre_listen_tcp(a2.loop, &a2_listener, "127.0.0.1", 0, &o, a2_accept_cb);
}

static void a2_listen_undo(void)
{
    a2_listener_closed = 0;
    ASSERT_EQ(gyre_listener_close(&a2_listener, a2_listener_closed_cb), 0);
    test_run_until(a2.loop, &a2_listener_closed, 1);
}

static gyre_udp a2_udp;
static int a2_udp_closed;

static void a2_udp_closed_cb(gyre_udp *u)
{
    (void)u;
    a2_udp_closed++;
}

static int a2_udp_try(void)
{
    struct sockaddr_in a;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return gyre_udp_open(a2.loop, &a2_udp, (struct sockaddr *)&a, sizeof a, NULL);
}

static void a2_udp_undo(void)
{
    a2_udp_closed = 0;
    ASSERT_EQ(gyre_udp_close(&a2_udp, a2_udp_closed_cb), 0);
    test_run_until(a2.loop, &a2_udp_closed, 1);
}

static struct {
    gyre_connect_req req;
    int calls, result;
} a2_conn;

static void a2_connect_cb(gyre_connect_req *req, int result)
{
    (void)req;
    a2_conn.calls++;
    a2_conn.result = result;
}

/* The result comes through the callback: the call itself cannot know. */
static int a2_connect_try(void)
{
    memset(&a2_conn, 0, sizeof a2_conn);
    ASSERT_EQ(gyre_connect_req_init(&a2_conn.req), 0);
    ASSERT_EQ(gyre_connect(a2.loop, &a2_conn.req, "127.0.0.1", a2.port, NULL, a2_connect_cb), 0);
    test_run_until(a2.loop, &a2_conn.calls, 1);
    return a2_conn.result;
}

static void a2_connect_undo(void)
{
    test_close(a2_conn.result);
}

static struct test_op a2_op;

static int a2_accept_try(void)
{
    gyre_op_accept(&a2_op.op, a2.lfd, NULL, NULL, 0);
    return (int)test_op_run(a2.loop, &a2_op);
}

static int a2_openat_try(void)
{
    gyre_op_openat(&a2_op.op, AT_FDCWD, a2.file, O_RDONLY, 0);
    return (int)test_op_run(a2.loop, &a2_op);
}

static void a2_close_result(void)
{
    gyre_op_close(&a2_op.op, (int)a2_op.result);
    ASSERT_EQ(test_op_run(a2.loop, &a2_op), 0);
}

static struct {
    gyre_process p;
    int calls;
    int64_t status;
} a2_proc;

static void a2_proc_cb(gyre_process *p, int64_t status, int sig)
{
    (void)p;
    ASSERT_EQ(sig, 0);
    a2_proc.calls++;
    a2_proc.status = status;
}

static int a2_spawn_try(void)
{
    static char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
    gyre_spawn_opts o;

    memset(&o, 0, sizeof o);
    o.argv = argv;
    for (int i = 0; i < 3; i++)
        o.stdio[i].how = GYRE_STDIO_PIPE;
    memset(&a2_proc, 0, sizeof a2_proc);
    return gyre_spawn(a2.loop, &a2_proc.p, &o, a2_proc_cb);
}

static void a2_spawn_undo(void)
{
    test_run_until(a2.loop, &a2_proc.calls, 1);
    ASSERT_EQ(a2_proc.status, 3);
    for (int i = 0; i < 3; i++)
        test_close(a2_proc.p.stdio_fd[i]);
    assert_no_children();
}

static gyre_fswatch a2_fsw;

static void a2_fsw_cb(gyre_fswatch *w, uint32_t events, const char *name, uint32_t cookie)
{
    (void)w;
    (void)events;
    (void)name;
    (void)cookie;
}

static int a2_fswatch_try(void)
{
    ASSERT_EQ(gyre_fswatch_init(a2.loop, &a2_fsw), 0);
    return gyre_fswatch_start(&a2_fsw, test_tmpdir(), GYRE_FS_ALL, a2_fsw_cb);
}

static void a2_fswatch_undo(void)
{
    ASSERT_EQ(gyre_fswatch_stop(&a2_fsw), 0);
}

/* Objects that make no descriptor of their own. */
static gyre_signal a2_sig;
static gyre_async a2_async;
static gyre_timer a2_timer;
static gyre_bufpool *a2_pool;

static void a2_sig_cb(gyre_signal *sg, int signo)
{
    (void)sg;
    (void)signo;
}

static void a2_async_cb(gyre_async *a)
{
    (void)a;
}

static void a2_timer_cb(gyre_timer *t)
{
    (void)t;
}

static int a2_none_try(void)
{
    int r;

    ASSERT_EQ(gyre_signal_init(a2.loop, &a2_sig), 0);
    r = gyre_signal_start(&a2_sig, a2_sig_cb, SIGUSR2);
    if (r == 0)
        r = gyre_async_init(a2.loop, &a2_async, a2_async_cb);
    if (r == 0)
        r = gyre_timer_init(a2.loop, &a2_timer);
    if (r == 0)
        r = gyre_timer_start(&a2_timer, a2_timer_cb, SEC(100), 0);
    if (r == 0)
        r = gyre_bufpool_new(a2.loop, &a2_pool, 16, 256);
    return r;
}

static void a2_none_undo(void)
{
    ASSERT_EQ(gyre_signal_stop(&a2_sig), 0);
    ASSERT_EQ(gyre_async_close(&a2_async), 0);
    ASSERT_EQ(gyre_timer_stop(&a2_timer), 0);
    ASSERT_EQ(gyre_bufpool_free(a2_pool), 0);
}

/* An explicit file engine: NULL when this machine lacks it (said, not
 * hidden: the line is printed). */
static const char *a2_engine_if_present(const char *name)
{
    gyre_loop_opts o;
    gyre_loop *l;
    int r;

    memset(&o, 0, sizeof o);
    o.file_engine = name;
    r = gyre_loop_new(&l, &o);
    if (r < 0) {
        printf("A2: file engine %s unavailable here (%s): its loop path not run\n", name,
               gyre_strerror(r));
        return NULL;
    }
    ASSERT_EQ(gyre_loop_free(l), 0);
    return name;
}

void test_rel_a2_fd_exhaustion(void)
{
    struct rlimit old, low;
    socklen_t alen = sizeof a2.addr;
    int baseline, fd;

    memset(&a2, 0, sizeof a2);
    a2.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_SYS(a2.devnull);
    test_tmppath(a2.file, sizeof a2.file, "a2-file");
    fd = open(a2.file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_close(fd);
    a2.lfd = test_tcp_listener(&a2.addr);
    ASSERT_SYS(getsockname(a2.lfd, (struct sockaddr *)&a2.addr, &alen));
    snprintf(a2.port, sizeof a2.port, "%d", ntohs(a2.addr.sin_port));

    /* Room for what the test itself opens below, then filled. */
    ASSERT_SYS(getrlimit(RLIMIT_NOFILE, &old));
    low = old;
    low.rlim_cur = (rlim_t)highest_open_fd() + 1 + 64;
    ASSERT_SYS(setrlimit(RLIMIT_NOFILE, &low));
    a2.cap = (int)low.rlim_cur;
    a2.fill = malloc(sizeof *a2.fill * (size_t)a2.cap);
    ASSERT_TRUE(a2.fill != NULL);
    baseline = open_fds();

    /* The very first loop of the process: io_uring's and the engines' probes
     * run out of descriptors too. */
    a2_engine = NULL;
    a2_path("gyre_loop_new", a2_loop_try, a2_loop_undo);
    ASSERT_EQ(open_fds(), baseline);
    for (int i = 0; i < 2; i++) {
        a2_engine = a2_engine_if_present(i == 0 ? "linuxaio" : "posixaio");
        if (a2_engine != NULL)
            a2_path(i == 0 ? "gyre_loop_new(linuxaio)" : "gyre_loop_new(posixaio)", a2_loop_try,
                    a2_loop_undo);
    }
    ASSERT_EQ(open_fds(), baseline);

    a2.loop = test_loop_new();
    a2.client = echo_client_connect((struct sockaddr *)&a2.addr, sizeof a2.addr);
    baseline = open_fds();
    a2_needs_none("signal, async, timer, buffer pool", a2_none_try, a2_none_undo);
    a2_listen_flags = 0;
    a2_path("gyre_listen_tcp", a2_listen_try, a2_listen_undo);
    a2_listen_flags = GYRE_LISTEN_RESERVE_FD;
    ASSERT_GE(a2_path("gyre_listen_tcp(RESERVE_FD)", a2_listen_try, a2_listen_undo), 2);
    a2_path("gyre_udp_open", a2_udp_try, a2_udp_undo);
    a2_path("gyre_connect", a2_connect_try, a2_connect_undo);
    a2_path("accept op", a2_accept_try, a2_close_result);
    a2_path("openat op", a2_openat_try, a2_close_result);
    ASSERT_GE(a2_path("gyre_spawn(3 pipes)", a2_spawn_try, a2_spawn_undo), 6);
    a2_path("gyre_fswatch_start", a2_fswatch_try, a2_fswatch_undo);
    ASSERT_EQ(open_fds(), baseline);

    test_close(a2.client);
    test_close(a2.lfd);
    test_loop_free(a2.loop);
    test_close(a2.devnull);
    free(a2.fill);
    ASSERT_SYS(setrlimit(RLIMIT_NOFILE, &old));
}

/* ------------------------------------------------------------------------ */
/* A3: allocation failure at the 1st, 2nd, ... allocation                    */
/* ------------------------------------------------------------------------ */

/* Runs scenario with the counting allocator failing its Nth call, for N =
 * 1, 2, ... until a run refuses nothing. A run that hit the refusal must
 * end in -ENOMEM (returned by a call, or as an op's result); whatever it
 * ends in, once the scenario has freed what it made, every block gyre
 * allocated is freed and every descriptor closed. The scenario returns 0
 * or the first error it met, having undone everything either way. */
typedef int (*a3_scenario_fn)(void);

static void a3_run(const char *name, a3_scenario_fn scenario)
{
    int base_fds = open_fds();
    long n;

    for (n = 1; n < 100000; n++) {
        int rc;

        atomic_store(&ca.calls, 0);
        atomic_store(&ca.failed, 0);
        atomic_store(&ca.fail_at, n);
        rc = scenario();
        atomic_store(&ca.fail_at, 0);
        if (atomic_load(&ca.live) != 0)
            test_fail(__FILE__, __LINE__,
                      "%s, allocation %ld refused: %ld blocks (%ld bytes) "
                      "not freed",
                      name, n, atomic_load(&ca.live), atomic_load(&ca.live_bytes));
        ASSERT_EQ(open_fds(), base_fds);
        if (atomic_load(&ca.failed) == 0) {
            ASSERT_EQ(rc, 0);
            break;
        }
        /* A refused allocation may be retried (a probe, a back-off), but
         * never turns into another error or into silent success of a call
         * that needed it. */
        if (rc != 0 && rc != -ENOMEM)
            test_fail(__FILE__, __LINE__, "%s, allocation %ld refused: %s, want -ENOMEM", name, n,
                      gyre_strerror(rc));
    }
    ASSERT_GT(n, 1); /* it does allocate, so failures were exercised */
    printf("A3 %s: %ld allocations, each refused once in turn\n", name, n - 1);
}

static int a3_loop_scenario(void)
{
    gyre_loop *loop;
    int rc = gyre_loop_new(&loop, NULL);

    if (rc < 0)
        return rc;
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
    ASSERT_EQ(gyre_loop_free(loop), 0);
    return 0;
}

/* The first loop of the process: the io_uring and engine probes are in the
 * allocations refused too. */
void test_rel_a3_alloc_loop(void)
{
    ca_install();
    a3_run("gyre_loop_new", a3_loop_scenario);
}

/* A shared pool, a loop on it, file operations on the loop's file engine, a
 * loop that makes its own pool for work, a buffer pool, a growing timer
 * heap. */
static char a3_path[4096];

static int a3_op(gyre_loop *loop, struct test_op *t)
{
    int rc;

    t->calls = 0;
    rc = gyre_submit(loop, &t->op, test_op_cb);
    if (rc < 0)
        return rc;
    test_run_until(loop, &t->calls, 1);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t->calls, 1);
    return (int)(t->result < 0 ? t->result : 0);
}

static int64_t a3_work(void *arg)
{
    return (int64_t)(intptr_t)arg;
}

static void a3_timer_cb(gyre_timer *t)
{
    (void)t;
}

static int a3_pool_scenario(void)
{
    static gyre_timer timers[200];
    gyre_pool_opts po;
    gyre_loop_opts lo;
    gyre_pool *pool = NULL;
    gyre_loop *shared = NULL, *own = NULL;
    gyre_bufpool *bp = NULL;
    struct test_op t = {0};
    char buf[16];
    int rc, fd = -1, ntimers = 0;

    memset(&po, 0, sizeof po);
    po.threads[GYRE_LANE_FAST] = 2;
    po.threads[GYRE_LANE_SLOW] = 1;
    po.threads[GYRE_LANE_DNS] = 1;
    rc = gyre_pool_new(&pool, &po);
    if (rc < 0)
        goto out;
    memset(&lo, 0, sizeof lo);
    lo.pool = pool;
    rc = gyre_loop_new(&shared, &lo);
    if (rc < 0)
        goto out;
    fd = open(a3_path, O_RDWR | O_CLOEXEC);
    ASSERT_SYS(fd);
    gyre_op_write(&t.op, fd, "alloc-fail", 10, 0);
    rc = a3_op(shared, &t);
    if (rc < 0)
        goto out;
    ASSERT_EQ(t.result, 10);
    gyre_op_read(&t.op, fd, buf, sizeof buf, 0);
    rc = a3_op(shared, &t);
    if (rc < 0)
        goto out;
    ASSERT_EQ(t.result, 10);
    ASSERT_EQ(memcmp(buf, "alloc-fail", 10), 0);
    gyre_op_fsync(&t.op, fd, 1);
    rc = a3_op(shared, &t);
    if (rc < 0)
        goto out;

    rc = gyre_loop_new(&own, NULL);
    if (rc < 0)
        goto out;
    gyre_op_work(&t.op, a3_work, (void *)(intptr_t)42, GYRE_LANE_SLOW);
    rc = a3_op(own, &t);
    if (rc < 0)
        goto out;
    ASSERT_EQ(t.result, 42);
    rc = gyre_bufpool_new(own, &bp, 64, 4096);
    if (rc < 0)
        goto out;
    for (; ntimers < (int)(sizeof timers / sizeof timers[0]); ntimers++) {
        ASSERT_EQ(gyre_timer_init(own, &timers[ntimers]), 0);
        rc = gyre_timer_start(&timers[ntimers], a3_timer_cb, SEC(100), 0);
        if (rc < 0)
            goto out;
    }
out:
    for (int i = 0; i < ntimers; i++)
        ASSERT_EQ(gyre_timer_stop(&timers[i]), 0);
    if (bp != NULL)
        ASSERT_EQ(gyre_bufpool_free(bp), 0);
    if (own != NULL)
        ASSERT_EQ(gyre_loop_free(own), 0);
    if (fd >= 0)
        test_close(fd);
    if (shared != NULL)
        ASSERT_EQ(gyre_loop_free(shared), 0);
    if (pool != NULL)
        ASSERT_EQ(gyre_pool_free(pool), 0);
    return rc;
}

void test_rel_a3_alloc_pool_files(void)
{
    int fd;

    test_tmppath(a3_path, sizeof a3_path, "a3-file");
    fd = open(a3_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_close(fd);
    ca_install();
    a3_run("pool, loop on it, file ops, own pool, buffer pool, timers", a3_pool_scenario);
}

/* A listener and what hangs off it: an accepted connection as a stream
 * reading into a buffer pool and writing more iovecs than it gathers
 * without allocating, a pipe stream with its own read buffer, a UDP socket
 * receiving in batches, and a connect by name (whose resolution makes the
 * loop's own thread pool). */
static struct {
    gyre_loop *loop;
    gyre_listener l;
    gyre_stream s, ps;
    gyre_udp u;
    gyre_connect_req conn;
    gyre_stream_write_req wreq;
    int accepted_fd, accept_err, accepts;
    int closed, l_closed, u_closed;
    int wrote, write_status;
    int64_t got, pgot;
    int conn_calls, conn_result;
} a3n;

static void a3n_accept_cb(gyre_listener *l, int fd)
{
    (void)l;
    a3n.accepts++;
    if (fd < 0) {
        a3n.accept_err = fd;
        return;
    }
    if (a3n.accepted_fd >= 0) {
        test_close(fd); /* the connect-by-name one: only its arrival counts */
        return;
    }
    a3n.accepted_fd = fd;
}

static void a3n_close_cb(gyre_stream *st)
{
    (void)st;
    a3n.closed++;
}

static void a3n_read_cb(gyre_stream *st, int64_t nread, void *buf, const int *fds, uint32_t nfds)
{
    (void)buf;
    (void)fds;
    (void)nfds;
    if (nread < 0 && nread != -ECANCELED)
        test_fail(__FILE__, __LINE__, "stream read: %s", gyre_strerror((int)nread));
    if (nread > 0) {
        if (st == &a3n.s)
            a3n.got += nread;
        else
            a3n.pgot += nread;
    }
}

static void a3n_write_cb(gyre_stream_write_req *req, int status)
{
    (void)req;
    a3n.wrote++;
    a3n.write_status = status;
}

static void a3n_l_closed(gyre_listener *l)
{
    (void)l;
    a3n.l_closed++;
}

static void a3n_u_closed(gyre_udp *u)
{
    (void)u;
    a3n.u_closed++;
}

static void a3n_udp_cb(gyre_udp *u, int64_t result, const gyre_udp_msg *msg)
{
    (void)u;
    (void)result;
    (void)msg;
}

static void a3n_conn_cb(gyre_connect_req *req, int result)
{
    (void)req;
    a3n.conn_calls++;
    a3n.conn_result = result;
}

static int a3_net_scenario(void)
{
    static char bytes[16];
    struct iovec iov[16];
    gyre_bufpool *bp = NULL;
    gyre_listen_opts lo;
    struct sockaddr_in a;
    char port[16], got[16];
    int rc, client = -1, p[2] = {-1, -1}, streams = 0, udp = 0, listening = 0;

    memset(&a3n, 0, sizeof a3n);
    a3n.accepted_fd = -1;
    rc = gyre_loop_new(&a3n.loop, NULL);
    if (rc < 0)
        return rc;
    memset(&lo, 0, sizeof lo);
    lo.backoff_ns = MS(1);
    rc = gyre_listen_tcp(a3n.loop, &a3n.l, "127.0.0.1", 0, &lo, a3n_accept_cb);
    if (rc < 0)
        goto out;
    listening = 1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)gyre_listener_port(&a3n.l));
    client = echo_client_connect((struct sockaddr *)&a, sizeof a);
    /* Out of memory in the accept path, the listener backs off and tries
     * again; only a failed listener reports an error. */
    test_run_until(a3n.loop, &a3n.accepts, 1);
    if (a3n.accept_err < 0) {
        rc = a3n.accept_err;
        goto out;
    }

    rc = gyre_bufpool_new(a3n.loop, &bp, 16, 1024);
    if (rc < 0) {
        test_close(a3n.accepted_fd);
        goto out;
    }
    ASSERT_EQ(gyre_stream_init(a3n.loop, &a3n.s, a3n.accepted_fd, 0), 0);
    streams++;
    rc = gyre_stream_read_start(&a3n.s, bp, a3n_read_cb);
    if (rc < 0)
        goto out;
    /* Sixteen one-byte buffers: more than the stream gathers inline. */
    for (int i = 0; i < 16; i++) {
        bytes[i] = (char)('a' + i);
        iov[i].iov_base = &bytes[i];
        iov[i].iov_len = 1;
    }
    rc = gyre_stream_write(&a3n.s, &a3n.wreq, iov, 16, a3n_write_cb);
    if (rc < 0)
        goto out;
    test_run_until(a3n.loop, &a3n.wrote, 1);
    rc = a3n.write_status;
    if (rc < 0)
        goto out;
    test_read_bytes(client, got, 16);
    ASSERT_EQ(memcmp(got, bytes, 16), 0);
    test_write_bytes(client, "pong", 4);
    while (a3n.got < 4)
        ASSERT_GE(gyre_loop_run(a3n.loop, GYRE_RUN_ONCE), 0);

    test_pipe(p);
    ASSERT_EQ(gyre_stream_init(a3n.loop, &a3n.ps, p[0], 0), 0);
    p[0] = -1;
    streams++;
    rc = gyre_stream_read_start(&a3n.ps, NULL, a3n_read_cb);
    if (rc < 0)
        goto out;
    test_write_bytes(p[1], "pipe", 4);
    while (a3n.pgot < 4)
        ASSERT_GE(gyre_loop_run(a3n.loop, GYRE_RUN_ONCE), 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = gyre_udp_open(a3n.loop, &a3n.u, (struct sockaddr *)&a, sizeof a, NULL);
    if (rc < 0)
        goto out;
    udp = 1;
    rc = gyre_udp_recv_start(&a3n.u, 4, 512, a3n_udp_cb);
    if (rc < 0)
        goto out;

    snprintf(port, sizeof port, "%d", gyre_listener_port(&a3n.l));
    (void)gyre_connect_req_init(&a3n.conn);
    rc = gyre_connect(a3n.loop, &a3n.conn, "127.0.0.1", port, NULL, a3n_conn_cb);
    if (rc < 0)
        goto out;
    test_run_until(a3n.loop, &a3n.conn_calls, 1);
    rc = a3n.conn_result < 0 ? a3n.conn_result : 0;
    if (a3n.conn_result >= 0) {
        test_run_until(a3n.loop, &a3n.accepts, 2);
        test_close(a3n.conn_result);
    }
out:
    if (udp) {
        ASSERT_EQ(gyre_udp_close(&a3n.u, a3n_u_closed), 0);
        test_run_until(a3n.loop, &a3n.u_closed, 1);
    }
    if (streams >= 2)
        ASSERT_EQ(gyre_stream_close(&a3n.ps, a3n_close_cb), 0);
    if (streams >= 1)
        ASSERT_EQ(gyre_stream_close(&a3n.s, a3n_close_cb), 0);
    test_run_until(a3n.loop, &a3n.closed, streams);
    if (bp != NULL)
        ASSERT_EQ(gyre_bufpool_free(bp), 0);
    if (listening) {
        ASSERT_EQ(gyre_listener_close(&a3n.l, a3n_l_closed), 0);
        test_run_until(a3n.loop, &a3n.l_closed, 1);
    }
    if (client >= 0)
        test_close(client);
    if (p[0] >= 0)
        test_close(p[0]);
    if (p[1] >= 0)
        test_close(p[1]);
    test_run_nowait(a3n.loop, 2);
    ASSERT_EQ(gyre_loop_free(a3n.loop), 0);
    return rc;
}

void test_rel_a3_alloc_net_stream(void)
{
    ca_install();
    a3_run("listener, streams, UDP, connect by name", a3_net_scenario);
}

/* ------------------------------------------------------------------------ */
/* A8: 100,000 file operations in flight                                     */
/* ------------------------------------------------------------------------ */

/* Half buffered reads of a file whose pages were dropped from the cache,
 * half O_DIRECT reads (the only reads the Linux AIO engine carries), all
 * submitted before the loop runs once. Each completes exactly once with
 * the bytes of its block. docs/design.md promises no allocation per
 * operation: after a warm-up op of each kind (which may start the pool's
 * threads or an engine), the batch must not allocate at all, whatever its
 * size; so gyre's memory stays bounded by what it had before. */
#define A8_BLOCKS 256

struct a8_op {
    gyre_op op;
    uint32_t block, len;
    unsigned char *buf;
    int calls;
};

static int a8_done;

static void a8_cb(gyre_op *op)
{
    struct a8_op *a = (struct a8_op *)op;

    a->calls++;
    a8_done++;
}

static unsigned char a8_byte(uint32_t block, uint32_t i)
{
    return (unsigned char)(block * 31u + i * 7u + 1u);
}

static int a8_file(const char *name, int flags, uint32_t unit)
{
    char path[4096];
    unsigned char *blk = malloc(unit);
    int fd;

    ASSERT_TRUE(blk != NULL);
    test_tmppath(path, sizeof path, name);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    for (uint32_t b = 0; b < A8_BLOCKS; b++) {
        for (uint32_t i = 0; i < unit; i++)
            blk[i] = a8_byte(b, i);
        ASSERT_EQ(pwrite(fd, blk, unit, (off_t)b * unit), (ssize_t)unit);
    }
    ASSERT_SYS(fsync(fd));
    ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    free(blk);
    if (flags == 0)
        return fd;
    test_close(fd);
    fd = open(path, O_RDONLY | O_CLOEXEC | flags);
    if (fd < 0 && errno == EINVAL)
        return -1; /* no O_DIRECT on this file system */
    ASSERT_SYS(fd);
    return fd;
}

void test_rel_a8_file_ops_100k(void)
{
    size_t n = test_scale(100000), nd = 0;
    struct a8_op *ops = calloc(n, sizeof *ops);
    unsigned char *mem;
    uint32_t unit = 512, mem_align = 1, off_align = 1;
    int bfd, dfd;
    long calls0, live0, peak0;
    gyre_loop *loop;

    ASSERT_TRUE(ops != NULL);
    ca_install();
    loop = test_loop_new();
    test_loop_guard(loop, SEC(100));
    bfd = a8_file("a8-buffered", 0, unit);
    dfd = a8_file("a8-direct", O_DIRECT, unit);
    if (dfd >= 0) {
        ASSERT_EQ(gyre_file_alignment(dfd, &mem_align, &off_align), 0);
        ASSERT_LE(off_align, unit);
        ASSERT_EQ(unit % off_align, 0);
        nd = n / 2;
    } else {
        printf("A8: no O_DIRECT in %s: all %zu reads buffered\n", test_tmpdir(), n);
    }
    mem = aligned_alloc(4096, n * unit);
    ASSERT_TRUE(mem != NULL);

    /* Warm-up: one of each kind. */
    for (int k = 0; k < (dfd >= 0 ? 2 : 1); k++) {
        struct a8_op *a = &ops[0];

        memset(a, 0, sizeof *a);
        a->buf = mem;
        gyre_op_read(&a->op, k == 0 ? bfd : dfd, a->buf, unit, 0);
        a8_done = 0;
        ASSERT_EQ(gyre_submit(loop, &a->op, a8_cb), 0);
        test_run_until(loop, &a8_done, 1);
        ASSERT_EQ(a->op.result, unit);
    }
    ASSERT_EQ(posix_fadvise(bfd, 0, 0, POSIX_FADV_DONTNEED), 0);

    calls0 = atomic_load(&ca.calls);
    live0 = atomic_load(&ca.live_bytes);
    atomic_store(&ca.peak_bytes, live0);
    a8_done = 0;
    for (size_t i = 0; i < n; i++) {
        struct a8_op *a = &ops[i];

        memset(a, 0, sizeof *a);
        a->block = (uint32_t)((i * 37u) % A8_BLOCKS);
        a->len = unit;
        a->buf = mem + i * unit;
        memset(a->buf, 0xEE, unit);
        gyre_op_read(&a->op, i < nd ? dfd : bfd, a->buf, unit, (uint64_t)a->block * unit);
        ASSERT_EQ(gyre_submit(loop, &a->op, a8_cb), 0);
    }
    ASSERT_EQ(a8_done, 0); /* never inside a submit */
    test_run_until(loop, &a8_done, (int)n);
    test_run_nowait(loop, 3);
    ASSERT_EQ(a8_done, (int)n);
    peak0 = atomic_load(&ca.peak_bytes);
    for (size_t i = 0; i < n; i++) {
        struct a8_op *a = &ops[i];

        ASSERT_EQ(a->calls, 1);
        if (a->op.result != (int64_t)unit)
            test_fail(__FILE__, __LINE__, "read %zu (%s, block %u): %jd", i,
                      i < nd ? "O_DIRECT" : "buffered", a->block, (intmax_t)a->op.result);
        for (uint32_t k = 0; k < unit; k++) {
            if (a->buf[k] != a8_byte(a->block, k))
                test_fail(__FILE__, __LINE__, "read %zu, block %u: byte %u differs", i, a->block,
                          k);
        }
    }
    printf("A8: %zu reads (%zu O_DIRECT) on engine %s: %ld allocations by gyre during the "
           "batch, peak %ld bytes above the %ld before\n",
           n, nd, test_file_engine(), atomic_load(&ca.calls) - calls0, peak0 - live0, live0);
    if (getenv("GYRE_FAULTS") == NULL) {
        ASSERT_EQ(atomic_load(&ca.calls), calls0);
        ASSERT_EQ(peak0, live0);
    } else {
        /* An injected EAGAIN from aio_read sends its op to the loop's
         * pool, which is made on first use: one allocation, once. */
        ASSERT_LE(atomic_load(&ca.calls) - calls0, 1);
        ASSERT_LE(peak0 - live0, 4096);
    }
    test_close(bfd);
    if (dfd >= 0)
        test_close(dfd);
    free(mem);
    free(ops);
    test_loop_free(loop);
    ASSERT_EQ(atomic_load(&ca.live), 0);
}

/* ------------------------------------------------------------------------ */
/* B3: an EINTR storm                                                        */
/* ------------------------------------------------------------------------ */

/* SIGALRM every 100 us from ITIMER_REAL, caught by a handler installed
 * without SA_RESTART, so every blocking system call of the loop thread
 * (the backend's wait, a spawn waiting for its child's exec, a read or
 * write that sleeps) can return EINTR. Meanwhile, all at once on one loop:
 * a TCP stream transfer, file writes then reads, pool work, child processes
 * with their exit status, DNS on the pool, and timers. Every outcome must
 * be exact; EINTR must never show. */
static atomic_long b3_alarms;

static void b3_alarm(int signo)
{
    (void)signo;
    atomic_fetch_add(&b3_alarms, 1);
}

#define B3_CHUNK 65536
#define B3_FILE_OPS 16
#define B3_WORK 200
#define B3_PROCS 8
#define B3_TICKS 50

static struct {
    gyre_loop *loop;
    gyre_bufpool *pool;
    gyre_stream w, r;
    gyre_stream_write_req wreq[8];
    struct iovec wiov[8];
    unsigned char *src;
    uint64_t total, queued, received;
    int outstanding, streams_closed, eof;
    int fd;
    struct test_op fops[B3_FILE_OPS];
    unsigned char fbuf[B3_FILE_OPS][4096];
    int fwrites, freads;
    struct test_op work[B3_WORK];
    int works;
    gyre_process procs[B3_PROCS];
    int procs_done, procs_started;
    gyre_getaddrinfo_req dns;
    int dns_done;
    gyre_timer tick, chain;
    int ticks, chained;
    int parts;
} b3;

enum {
    B3_PARTS = 7
};

static void b3_stream_closed(gyre_stream *st)
{
    (void)st;
    if (++b3.streams_closed == 2)
        b3.parts++;
}

static void b3_shut_cb(gyre_stream *st, int status)
{
    ASSERT_EQ(status, 0);
    ASSERT_EQ(gyre_stream_close(st, b3_stream_closed), 0);
}

static void b3_queue(int slot);

static void b3_write_cb(gyre_stream_write_req *req, int status)
{
    ASSERT_EQ(status, 0);
    b3.outstanding--;
    if (b3.queued < b3.total)
        b3_queue((int)(req - b3.wreq));
    else if (b3.outstanding == 0)
        ASSERT_EQ(gyre_stream_shutdown(&b3.w, b3_shut_cb), 0);
}

static void b3_queue(int slot)
{
    uint64_t len = b3.total - b3.queued < B3_CHUNK ? b3.total - b3.queued : B3_CHUNK;

    b3.wiov[slot].iov_base = b3.src + b3.queued;
    b3.wiov[slot].iov_len = (size_t)len;
    ASSERT_EQ(gyre_stream_write(&b3.w, &b3.wreq[slot], &b3.wiov[slot], 1, b3_write_cb), 0);
    b3.queued += len;
    b3.outstanding++;
}

static void b3_read_cb(gyre_stream *st, int64_t nread, void *buf, const int *fds, uint32_t nfds)
{
    (void)fds;
    (void)nfds;
    if (nread == 0) {
        b3.eof++;
        ASSERT_EQ(gyre_stream_close(st, b3_stream_closed), 0);
        return;
    }
    if (nread < 0)
        test_fail(__FILE__, __LINE__, "stream read: %s", gyre_strerror((int)nread));
    ASSERT_LE(b3.received + (uint64_t)nread, b3.total);
    if (memcmp(buf, b3.src + b3.received, (size_t)nread) != 0)
        test_fail(__FILE__, __LINE__, "stream bytes at %ju differ", (uintmax_t)b3.received);
    b3.received += (uint64_t)nread;
}

static unsigned char b3_file_byte(int op, int i)
{
    return (unsigned char)(op * 13 + i * 3 + 5);
}

static void b3_file_read_cb(gyre_op *op)
{
    struct test_op *t = (struct test_op *)op;
    int k = (int)(t - b3.fops);

    ASSERT_EQ(op->result, 4096);
    for (int i = 0; i < 4096; i++)
        ASSERT_EQ(b3.fbuf[k][i], b3_file_byte(k, i));
    if (++b3.freads == B3_FILE_OPS)
        b3.parts++;
}

static void b3_file_write_cb(gyre_op *op)
{
    ASSERT_EQ(op->result, 4096);
    if (++b3.fwrites < B3_FILE_OPS)
        return;
    /* Every block is written: read them all back. */
    for (int k = 0; k < B3_FILE_OPS; k++) {
        memset(b3.fbuf[k], 0, sizeof b3.fbuf[k]);
        gyre_op_read(&b3.fops[k].op, b3.fd, b3.fbuf[k], 4096, (uint64_t)k * 4096);
        ASSERT_EQ(gyre_submit(b3.loop, &b3.fops[k].op, b3_file_read_cb), 0);
    }
}

static int64_t b3_square(void *arg)
{
    int64_t v = (int64_t)(intptr_t)arg;

    return v * v;
}

static void b3_work_cb(gyre_op *op)
{
    struct test_op *t = (struct test_op *)op;
    int64_t k = t - b3.work;

    ASSERT_EQ(op->result, k * k);
    if (++b3.works == B3_WORK)
        b3.parts++;
}

static void b3_spawn_next(void);

static void b3_proc_cb(gyre_process *p, int64_t status, int sig)
{
    int k = (int)(p - b3.procs);

    ASSERT_EQ(sig, 0);
    ASSERT_EQ(status, 10 + k);
    if (++b3.procs_done == B3_PROCS)
        b3.parts++;
    else
        b3_spawn_next();
}

/* Children one after another, each spawned from the previous one's exit
 * callback, so that spawns (which wait for the child's execve) happen
 * while the storm runs. */
static void b3_spawn_next(void)
{
    char code[32];
    char *argv[] = {"/bin/sh", "-c", code, NULL};
    gyre_spawn_opts o;
    int k = b3.procs_started++;

    snprintf(code, sizeof code, "exit %d", 10 + k);
    memset(&o, 0, sizeof o);
    o.argv = argv;
    for (int i = 0; i < 3; i++)
        o.stdio[i].how = GYRE_STDIO_NULL;
    ASSERT_EQ(gyre_spawn(b3.loop, &b3.procs[k], &o, b3_proc_cb), 0);
}

static void b3_dns_cb(gyre_getaddrinfo_req *req, int status, struct addrinfo *res)
{
    (void)req;
    ASSERT_EQ(status, 0);
    ASSERT_TRUE(res != NULL && res->ai_family == AF_INET);
    gyre_freeaddrinfo(res);
    b3.dns_done++;
    b3.parts++;
}

static void b3_tick_cb(gyre_timer *t)
{
    if (++b3.ticks == B3_TICKS) {
        ASSERT_EQ(gyre_timer_stop(t), 0);
        b3.parts++;
    }
}

static void b3_chain_cb(gyre_timer *t)
{
    if (++b3.chained < B3_TICKS)
        ASSERT_EQ(gyre_timer_start(t, b3_chain_cb, MS(1), 0), 0);
    else
        b3.parts++;
}

void test_rel_b3_eintr_storm(void)
{
    struct sigaction sa, old_sa;
    struct itimerval it, off;
    struct addrinfo hints;
    char path[4096];
    int c, sfd;

    memset(&b3, 0, sizeof b3);
    b3.loop = test_loop_new();
    test_loop_guard(b3.loop, SEC(100));
    b3.total = test_scale((size_t)8 << 20);
    b3.src = malloc(b3.total);
    ASSERT_TRUE(b3.src != NULL);
    {
        uint64_t rng = 0xb3;

        for (uint64_t i = 0; i < b3.total; i++)
            b3.src[i] = (unsigned char)(test_rand(&rng) >> 56);
    }
    for (int k = 0; k < B3_FILE_OPS; k++)
        for (int i = 0; i < 4096; i++)
            b3.fbuf[k][i] = b3_file_byte(k, i);
    test_tmppath(path, sizeof path, "b3-file");
    b3.fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(b3.fd);
    test_tcp_pair(&c, &sfd);
    ASSERT_EQ(gyre_bufpool_new(b3.loop, &b3.pool, 32, 16384), 0);
    ASSERT_EQ(gyre_stream_init(b3.loop, &b3.w, c, 0), 0);
    ASSERT_EQ(gyre_stream_init(b3.loop, &b3.r, sfd, 0), 0);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = b3_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls fail with EINTR */
    ASSERT_SYS(sigaction(SIGALRM, &sa, &old_sa));
    memset(&it, 0, sizeof it);
    it.it_interval.tv_usec = 100;
    it.it_value.tv_usec = 100;
    ASSERT_SYS(setitimer(ITIMER_REAL, &it, NULL));

    ASSERT_EQ(gyre_stream_read_start(&b3.r, b3.pool, b3_read_cb), 0);
    for (int i = 0; i < 8 && b3.queued < b3.total; i++)
        b3_queue(i);
    for (int k = 0; k < B3_FILE_OPS; k++) {
        gyre_op_write(&b3.fops[k].op, b3.fd, b3.fbuf[k], 4096, (uint64_t)k * 4096);
        ASSERT_EQ(gyre_submit(b3.loop, &b3.fops[k].op, b3_file_write_cb), 0);
    }
    for (int k = 0; k < B3_WORK; k++) {
        gyre_op_work(&b3.work[k].op, b3_square, (void *)(intptr_t)k, GYRE_LANE_SLOW);
        ASSERT_EQ(gyre_submit(b3.loop, &b3.work[k].op, b3_work_cb), 0);
    }
    b3_spawn_next();
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_flags = AI_NUMERICHOST;
    ASSERT_EQ(gyre_getaddrinfo_req_init(&b3.dns), 0);
    ASSERT_EQ(gyre_getaddrinfo(b3.loop, &b3.dns, "127.0.0.1", "80", &hints, b3_dns_cb), 0);
    ASSERT_EQ(gyre_timer_init(b3.loop, &b3.tick), 0);
    ASSERT_EQ(gyre_timer_start(&b3.tick, b3_tick_cb, MS(1), MS(1)), 0);
    ASSERT_EQ(gyre_timer_init(b3.loop, &b3.chain), 0);
    ASSERT_EQ(gyre_timer_start(&b3.chain, b3_chain_cb, MS(1), 0), 0);

    test_run_until(b3.loop, &b3.parts, B3_PARTS);

    memset(&off, 0, sizeof off);
    ASSERT_SYS(setitimer(ITIMER_REAL, &off, NULL));
    ASSERT_SYS(sigaction(SIGALRM, &old_sa, NULL));
    test_run_nowait(b3.loop, 3);
    printf("B3: %ld SIGALRMs caught during the run\n", atomic_load(&b3_alarms));
    ASSERT_GT(atomic_load(&b3_alarms), 0);
    ASSERT_EQ(b3.received, b3.total);
    ASSERT_EQ(b3.eof, 1);
    ASSERT_EQ(b3.streams_closed, 2);
    ASSERT_EQ(b3.fwrites, B3_FILE_OPS);
    ASSERT_EQ(b3.freads, B3_FILE_OPS);
    ASSERT_EQ(b3.works, B3_WORK);
    ASSERT_EQ(b3.procs_done, B3_PROCS);
    ASSERT_EQ(b3.dns_done, 1);
    ASSERT_EQ(b3.ticks, B3_TICKS);
    ASSERT_EQ(b3.chained, B3_TICKS);
    assert_no_children();
    test_close(b3.fd);
    ASSERT_EQ(gyre_bufpool_free(b3.pool), 0);
    free(b3.src);
    test_loop_free(b3.loop);
}

/* ------------------------------------------------------------------------ */
/* B6: iovec edge cases                                                      */
/* ------------------------------------------------------------------------ */

/* gyre.h documents the limits: an op's iovcnt over IOV_MAX is -EINVAL at
 * gyre_submit (the callback never runs); a stream write takes 1..IOV_MAX
 * buffers (0 or more is -EINVAL) and gathers queued writes up to IOV_MAX
 * buffers per system call; zero-length buffers are allowed anywhere. A
 * msghdr is the kernel's: more than IOV_MAX entries is its -EMSGSIZE. */
static unsigned char b6_src[IOV_MAX * 3], b6_dst[IOV_MAX * 3];
static struct iovec b6_iov[IOV_MAX + 1];

static void b6_src_init(void)
{
    for (size_t i = 0; i < sizeof b6_src; i++)
        b6_src[i] = (unsigned char)(i * 11u + 7u);
}

/* iov[i] = one byte of buf each. */
static void b6_bytes(struct iovec *iov, unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = buf + i;
        iov[i].iov_len = 1;
    }
}

static void b6_refused(gyre_loop *loop, struct test_op *t)
{
    t->calls = 0;
    ASSERT_EQ(gyre_submit(loop, &t->op, test_op_cb), -EINVAL);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t->calls, 0);
}

/* On a socketpair (sock) or a regular file (!sock, at offset 0). */
static void b6_ops(gyre_loop *loop, int wfd, int rfd, int file)
{
    struct test_op t = {0};
    uint64_t off = file ? 0 : GYRE_OFF_CUR;
    struct iovec z[6];
    char got[8];

    /* More than IOV_MAX: refused, whatever the lengths. */
    b6_bytes(b6_iov, b6_src, IOV_MAX + 1);
    gyre_op_writev(&t.op, wfd, b6_iov, IOV_MAX + 1, off);
    b6_refused(loop, &t);
    gyre_op_readv(&t.op, rfd, b6_iov, IOV_MAX + 1, off);
    b6_refused(loop, &t);
    gyre_op_writev(&t.op, wfd, b6_iov, UINT32_MAX, off);
    b6_refused(loop, &t);

    /* Exactly IOV_MAX: every byte, in order. */
    gyre_op_writev(&t.op, wfd, b6_iov, IOV_MAX, off);
    ASSERT_EQ(test_op_run(loop, &t), IOV_MAX);
    memset(b6_dst, 0, sizeof b6_dst);
    b6_bytes(b6_iov, b6_dst, IOV_MAX);
    gyre_op_readv(&t.op, rfd, b6_iov, IOV_MAX, file ? 0 : GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), IOV_MAX);
    ASSERT_EQ(memcmp(b6_dst, b6_src, IOV_MAX), 0);

    /* Zero-length buffers between, before and after the others. */
    z[0] = (struct iovec){NULL, 0};
    z[1] = (struct iovec){(void *)"abc", 3};
    z[2] = (struct iovec){(void *)"x", 0};
    z[3] = (struct iovec){NULL, 0};
    z[4] = (struct iovec){(void *)"de", 2};
    z[5] = (struct iovec){NULL, 0};
    gyre_op_writev(&t.op, wfd, z, 6, file ? IOV_MAX : GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    memset(got, 0, sizeof got);
    z[0] = (struct iovec){got + 7, 0};
    z[1] = (struct iovec){got, 2};
    z[2] = (struct iovec){got + 6, 0};
    z[3] = (struct iovec){got + 2, 3};
    z[4] = (struct iovec){NULL, 0};
    gyre_op_readv(&t.op, rfd, z, 5, file ? IOV_MAX : GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    ASSERT_EQ(memcmp(got, "abcde\0\0\0", 8), 0);

    /* No buffers at all: 0 bytes, nothing consumed (a readable fd here;
     * rel_b6_idle_fd_args has the idle one). */
    gyre_op_writev(&t.op, wfd, NULL, 0, off);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    if (!file)
        test_write_bytes(wfd, "q", 1);
    gyre_op_readv(&t.op, rfd, NULL, 0, off);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    if (!file) {
        test_read_bytes(rfd, got, 1);
        ASSERT_EQ(got[0], 'q');
    }
}

static void b6_msg(gyre_loop *loop, int wfd, int rfd)
{
    struct test_op t = {0};
    struct msghdr m;
    char got[4];

    memset(&m, 0, sizeof m);
    b6_bytes(b6_iov, b6_src, IOV_MAX + 1);
    m.msg_iov = b6_iov;
    m.msg_iovlen = IOV_MAX + 1;
    gyre_op_sendmsg(&t.op, wfd, &m, 0);
    ASSERT_EQ(test_op_run(loop, &t), -EMSGSIZE);
    m.msg_iovlen = IOV_MAX;
    gyre_op_sendmsg(&t.op, wfd, &m, 0);
    ASSERT_EQ(test_op_run(loop, &t), IOV_MAX);
    memset(b6_dst, 0, sizeof b6_dst);
    b6_bytes(b6_iov, b6_dst, IOV_MAX);
    gyre_op_recvmsg(&t.op, rfd, &m, 0);
    ASSERT_EQ(test_op_run(loop, &t), IOV_MAX);
    ASSERT_EQ(memcmp(b6_dst, b6_src, IOV_MAX), 0);
    /* On a readable socket: rel_b6_idle_fd_args has the idle case. */
    test_write_bytes(wfd, "s", 1);
    m.msg_iovlen = IOV_MAX + 1;
    gyre_op_recvmsg(&t.op, rfd, &m, 0);
    ASSERT_EQ(test_op_run(loop, &t), -EMSGSIZE);
    test_read_bytes(rfd, got, 1);
    ASSERT_EQ(got[0], 's');
    m.msg_iov = NULL;
    m.msg_iovlen = 0;
    gyre_op_sendmsg(&t.op, wfd, &m, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    test_write_bytes(wfd, "r", 1);
    m.msg_iov = b6_iov;
    m.msg_iovlen = 1;
    b6_iov[0] = (struct iovec){got, 1};
    gyre_op_recvmsg(&t.op, rfd, &m, 0);
    ASSERT_EQ(test_op_run(loop, &t), 1);
    ASSERT_EQ(got[0], 'r');
}

/* Stream writes: the limits, zero-length buffers, and queued requests that
 * together hold more than IOV_MAX buffers. */
static struct {
    int done, status[8];
} b6w;

static void b6_write_cb(gyre_stream_write_req *req, int status)
{
    b6w.status[(int)(intptr_t)req->data] = status;
    b6w.done++;
}

static void b6_stream_closed(gyre_stream *st)
{
    int *closed = st->data;

    (*closed)++;
}

/* Reads exactly n bytes that the loop is meanwhile writing. */
static void b6_drain(gyre_loop *loop, int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);

        if (r < 0) {
            ASSERT_EQ(errno, EAGAIN);
            ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
            continue;
        }
        ASSERT_GT(r, 0);
        got += (size_t)r;
    }
}

static void b6_stream(gyre_loop *loop)
{
    static struct iovec many[3][700];
    static gyre_stream_write_req req[3];
    struct iovec z[5];
    gyre_stream st;
    int sp[2], closed = 0;
    unsigned char tail;

    test_socketpair(sp);
    ASSERT_EQ(gyre_stream_init(loop, &st, sp[0], 0), 0);
    st.data = &closed;
    b6_bytes(b6_iov, b6_src, IOV_MAX + 1);
    memset(&b6w, 0, sizeof b6w);
    ASSERT_EQ(gyre_stream_write(&st, &req[0], b6_iov, IOV_MAX + 1, b6_write_cb), -EINVAL);
    ASSERT_EQ(gyre_stream_write(&st, &req[0], b6_iov, 0, b6_write_cb), -EINVAL);
    ASSERT_EQ(gyre_stream_write(&st, &req[0], b6_iov, UINT32_MAX, b6_write_cb), -EINVAL);
    test_run_nowait(loop, 2);
    ASSERT_EQ(b6w.done, 0);

    /* IOV_MAX one-byte buffers in one request. */
    req[0].data = (void *)(intptr_t)0;
    ASSERT_EQ(gyre_stream_write(&st, &req[0], b6_iov, IOV_MAX, b6_write_cb), 0);
    b6_drain(loop, sp[1], b6_dst, IOV_MAX);
    test_run_until(loop, &b6w.done, 1);
    ASSERT_EQ(b6w.status[0], 0);
    ASSERT_EQ(memcmp(b6_dst, b6_src, IOV_MAX), 0);

    /* Zero-length buffers among others, then a request of nothing but
     * zero-length buffers: it completes and sends nothing. */
    z[0] = (struct iovec){(void *)"ab", 2};
    z[1] = (struct iovec){NULL, 0};
    z[2] = (struct iovec){(void *)"", 0};
    z[3] = (struct iovec){(void *)"cd", 2};
    z[4] = (struct iovec){NULL, 0};
    req[1].data = (void *)(intptr_t)1;
    req[2].data = (void *)(intptr_t)2;
    ASSERT_EQ(gyre_stream_write(&st, &req[1], z, 5, b6_write_cb), 0);
    ASSERT_EQ(gyre_stream_write(&st, &req[2], z + 1, 2, b6_write_cb), 0);
    test_run_until(loop, &b6w.done, 3);
    ASSERT_EQ(b6w.status[1], 0);
    ASSERT_EQ(b6w.status[2], 0);
    test_write_bytes(sp[0], "", 0);
    memset(b6_dst, 0, 8);
    b6_drain(loop, sp[1], b6_dst, 4);
    ASSERT_EQ(memcmp(b6_dst, "abcd", 4), 0);
    ASSERT_EQ(read(sp[1], &tail, 1), -1);
    ASSERT_EQ(errno, EAGAIN);

    /* Three requests of 700 buffers queued together: 2,100 buffers are
     * more than one writev takes; they go out split, in order. */
    memset(&b6w, 0, sizeof b6w);
    for (int k = 0; k < 3; k++) {
        b6_bytes(many[k], b6_src + k * 700, 700);
        req[k].data = (void *)(intptr_t)k;
        ASSERT_EQ(gyre_stream_write(&st, &req[k], many[k], 700, b6_write_cb), 0);
    }
    memset(b6_dst, 0, sizeof b6_dst);
    b6_drain(loop, sp[1], b6_dst, 2100);
    test_run_until(loop, &b6w.done, 3);
    for (int k = 0; k < 3; k++)
        ASSERT_EQ(b6w.status[k], 0);
    ASSERT_EQ(memcmp(b6_dst, b6_src, 2100), 0);
    ASSERT_EQ(read(sp[1], &tail, 1), -1);
    ASSERT_EQ(errno, EAGAIN);

    ASSERT_EQ(gyre_stream_close(&st, b6_stream_closed), 0);
    test_run_until(loop, &closed, 1);
    test_close(sp[1]);
}

void test_rel_b6_iovec_edges(void)
{
    gyre_loop *loop = test_loop_new();
    char path[4096];
    int sp[2], fd;

    b6_src_init();
    test_socketpair(sp);
    b6_ops(loop, sp[0], sp[1], 0);
    b6_msg(loop, sp[0], sp[1]);
    test_close(sp[0]);
    test_close(sp[1]);
    test_tmppath(path, sizeof path, "b6-file");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    b6_ops(loop, fd, fd, 1);
    test_close(fd);
    b6_stream(loop);
    test_loop_free(loop);
}

/* Reads that ask for nothing, or that the kernel refuses for their
 * arguments, on an fd with nothing to read: the kernel answers them at once
 * (0, -EMSGSIZE, -EINVAL), and so must every backend, since gyre promises
 * the same results everywhere. Each is given a bounded number of loop
 * iterations (not a time); all are tried before the verdict, so a failure
 * names every one that is still waiting. */
struct b6_idle {
    const char *what;
    int64_t want;
    struct test_op t;
};

void test_rel_b6_idle_fd_args(void)
{
    static struct iovec iov[IOV_MAX + 1];
    static char buf[IOV_MAX + 1];
    static struct b6_idle cases[3];
    gyre_loop *loop = test_loop_new();
    struct msghdr m;
    int sp[2], p[2], waiting = 0;

    test_socketpair(sp);
    test_pipe(p);
    b6_bytes(iov, (unsigned char *)buf, IOV_MAX + 1);
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = IOV_MAX + 1;
    memset(cases, 0, sizeof cases);
    cases[0] = (struct b6_idle){.what = "recvmsg of IOV_MAX+1 entries", .want = -EMSGSIZE};
    gyre_op_recvmsg(&cases[0].t.op, sp[0], &m, 0);
    cases[1] = (struct b6_idle){.what = "readv of 0 entries", .want = 0};
    gyre_op_readv(&cases[1].t.op, p[0], iov, 0, GYRE_OFF_CUR);
    cases[2] = (struct b6_idle){.what = "read of 0 bytes", .want = 0};
    gyre_op_read(&cases[2].t.op, p[0], buf, 0, GYRE_OFF_CUR);
    /* (A recv of 0 bytes is not here: the kernel itself says EAGAIN to it
     * on an idle socket, so waiting is the right answer. A readv of one
     * SIZE_MAX buffer is refused by gyre_submit: rel_k3_iovec_total.) */
    for (int i = 0; i < 3; i++) {
        struct b6_idle *c = &cases[i];

        test_op_submit(loop, &c->t);
        for (int k = 0; k < 50 && c->t.calls == 0; k++)
            ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
        if (c->t.calls == 0) {
            printf("B6: %s on an idle fd: still waiting after 50 iterations\n", c->what);
            waiting++;
            ASSERT_EQ(gyre_cancel(loop, &c->t.op), 0);
            test_run_until(loop, &c->t.calls, 1);
            continue;
        }
        ASSERT_EQ(c->t.calls, 1);
        if (c->t.result != c->want)
            test_fail(__FILE__, __LINE__, "%s on an idle fd: %jd, want %jd", c->what,
                      (intmax_t)c->t.result, (intmax_t)c->want);
    }
    if (waiting > 0)
        test_fail(__FILE__, __LINE__,
                  "%d read(s) on an idle fd waited for readiness instead of completing at once "
                  "as the kernel answers them (see above)",
                  waiting);
    test_close(sp[0]);
    test_close(sp[1]);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* C4: 1,000 slow clients with idle timeouts                                 */
/* ------------------------------------------------------------------------ */

/* A child process (plain blocking sockets) opens the slow connections,
 * each sending 'S' and then nothing, and a few healthy ones, each sending
 * 'H' and then echo rounds. The server gives every stream a 30 s idle
 * timeout, cut to 200 ms once a stream says 'S': each slow stream's timeout
 * must fire exactly once (and its callback closes it, so the client reads
 * end of stream), no healthy stream's ever, and every echo must come back
 * byte for byte. On select the server's descriptors must stay below
 * FD_SETSIZE, so there it holds as many slow clients as fit (printed). */
#define C4_HEALTHY 16
#define C4_MAX_SLOW 4096
#define C4_ROUNDS 20
#define C4_MSG 64

struct c4_conn {
    gyre_stream s;
    int kind; /* 0 unknown, 'S' or 'H' */
    int idle_fired;
    gyre_stream_write_req req[8];
    struct iovec iov[8];
    unsigned char out[8][C4_MSG];
    int busy[8];
};

static struct {
    gyre_loop *loop;
    gyre_listener l;
    gyre_bufpool *pool;
    int accepted, closed, slow_idle, healthy_idle, eofs, echoed;
    int n_slow;
    int ctl, child_done;
    char child_says;
    gyre_watch ctl_w;
} c4;

static void c4_closed(gyre_stream *st)
{
    struct c4_conn *c = st->data;

    c4.closed++;
    free(c);
}

static void c4_idle(gyre_stream *st)
{
    struct c4_conn *c = st->data;

    c->idle_fired++;
    ASSERT_EQ(c->idle_fired, 1);
    if (c->kind == 'S')
        c4.slow_idle++;
    else
        c4.healthy_idle++;
    ASSERT_EQ(gyre_stream_close(st, c4_closed), 0);
}

static void c4_wrote(gyre_stream_write_req *req, int status)
{
    struct c4_conn *c = req->data;

    ASSERT_EQ(status, 0);
    c->busy[req - c->req] = 0;
}

static void c4_echo(struct c4_conn *c, const unsigned char *buf, size_t n)
{
    int k = 0;

    while (k < 8 && c->busy[k])
        k++;
    ASSERT_LT(k, 8);
    ASSERT_LE(n, C4_MSG);
    memcpy(c->out[k], buf, n);
    c->iov[k].iov_base = c->out[k];
    c->iov[k].iov_len = n;
    c->req[k].data = c;
    c->busy[k] = 1;
    ASSERT_EQ(gyre_stream_write(&c->s, &c->req[k], &c->iov[k], 1, c4_wrote), 0);
    c4.echoed += (int)n;
}

static void c4_read(gyre_stream *st, int64_t nread, void *buf, const int *fds, uint32_t nfds)
{
    struct c4_conn *c = st->data;
    const unsigned char *b = buf;

    (void)fds;
    (void)nfds;
    if (nread == 0) {
        /* Only a healthy client hangs up on its own. */
        ASSERT_EQ(c->kind, 'H');
        c4.eofs++;
        ASSERT_EQ(gyre_stream_close(st, c4_closed), 0);
        return;
    }
    if (nread == -ECANCELED && gyre_stream_is_closing(st))
        return; /* the idle callback's close ended the read */
    if (nread < 0)
        test_fail(__FILE__, __LINE__, "server read: %s", gyre_strerror((int)nread));
    if (c->kind == 0) {
        c->kind = b[0];
        ASSERT_TRUE(c->kind == 'S' || c->kind == 'H');
        if (c->kind == 'S')
            ASSERT_EQ(gyre_stream_set_idle_timeout(st, MS(200), c4_idle), 0);
        b++;
        nread--;
    }
    if (nread > 0) {
        ASSERT_EQ(c->kind, 'H'); /* a slow client sends its one byte only */
        c4_echo(c, b, (size_t)nread);
    }
}

static void c4_accept(gyre_listener *l, int fd)
{
    struct c4_conn *c;

    (void)l;
    if (fd < 0)
        test_fail(__FILE__, __LINE__, "listener: %s", gyre_strerror(fd));
    c = calloc(1, sizeof *c);
    ASSERT_TRUE(c != NULL);
    ASSERT_EQ(gyre_stream_init(c4.loop, &c->s, fd, 0), 0);
    c->s.data = c;
    ASSERT_EQ(gyre_stream_read_start(&c->s, c4.pool, c4_read), 0);
    ASSERT_EQ(gyre_stream_set_idle_timeout(&c->s, SEC(30), c4_idle), 0);
    c4.accepted++;
}

static void c4_ctl_cb(gyre_watch *w, uint32_t events)
{
    (void)events;
    if (read(c4.ctl, &c4.child_says, 1) == 1) {
        c4.child_done = 1;
        ASSERT_EQ(gyre_watch_stop(w), 0);
    }
}

/* The clients. Exit status 0, or the step that failed. */
static _Noreturn void c4_child(const struct sockaddr_in *a, int n_slow, int ctl)
{
    /* Static, not malloc'd: the child ends in _exit, and a block only its
     * stack pointed to would be reported as lost by memcheck. */
    static int slow[C4_MAX_SLOW];
    int healthy[C4_HEALTHY];
    struct timeval tv = {60, 0};
    unsigned char msg[C4_MSG], back[C4_MSG];
    char ok = 'y';

    if (n_slow > C4_MAX_SLOW)
        _exit(20);
    for (int i = 0; i < n_slow + C4_HEALTHY; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof *a) < 0)
            _exit(21);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (write(fd, i < n_slow ? "S" : "H", 1) != 1)
            _exit(22);
        if (i < n_slow)
            slow[i] = fd;
        else
            healthy[i - n_slow] = fd;
    }
    /* Healthy traffic while the slow ones sit in their idle time. */
    for (int r = 0; r < C4_ROUNDS; r++) {
        for (int h = 0; h < C4_HEALTHY; h++) {
            size_t got = 0;

            for (int i = 0; i < C4_MSG; i++)
                msg[i] = (unsigned char)(r * 7 + h * 3 + i);
            if (write(healthy[h], msg, C4_MSG) != C4_MSG)
                _exit(23);
            while (got < C4_MSG) {
                ssize_t n = read(healthy[h], back + got, C4_MSG - got);

                if (n <= 0)
                    _exit(24);
                got += (size_t)n;
            }
            if (memcmp(msg, back, C4_MSG) != 0)
                _exit(25);
        }
    }
    /* Every slow connection is closed by the server: end of stream. */
    for (int i = 0; i < n_slow; i++) {
        char b;

        if (read(slow[i], &b, 1) != 0)
            _exit(26);
        close(slow[i]);
    }
    for (int h = 0; h < C4_HEALTHY; h++)
        close(healthy[h]);
    if (write(ctl, &ok, 1) != 1)
        _exit(27);
    _exit(0);
}

void test_rel_c4_slow_clients(void)
{
    struct sockaddr_in a;
    int sv[2], status;
    pid_t pid;

    memset(&c4, 0, sizeof c4);
    test_nofile(8192);
    c4.n_slow = (int)test_scale(1000);
    if (test_backend_is("select")) {
        int room = FD_SETSIZE - 64 - C4_HEALTHY - open_fds();

        if (c4.n_slow > room)
            c4.n_slow = room;
    }
    printf("C4: %d slow clients, %d healthy\n", c4.n_slow, C4_HEALTHY);
    c4.loop = test_loop_new();
    test_loop_guard(c4.loop, SEC(100));
    ASSERT_EQ(gyre_bufpool_new(c4.loop, &c4.pool, 256, 2048), 0);
    ASSERT_EQ(gyre_listen_tcp(c4.loop, &c4.l, "127.0.0.1", 0, NULL, c4_accept), 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)gyre_listener_port(&c4.l));
    ASSERT_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    fflush(stdout);
    pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        close(sv[0]);
        c4_child(&a, c4.n_slow, sv[1]);
    }
    test_close(sv[1]);
    c4.ctl = sv[0];
    ASSERT_EQ(gyre_watch_init(c4.loop, &c4.ctl_w, c4.ctl), 0);
    ASSERT_EQ(gyre_watch_start(&c4.ctl_w, GYRE_IN, c4_ctl_cb), 0);
    test_run_until(c4.loop, &c4.child_done, 1);
    ASSERT_EQ(c4.child_says, 'y');
    test_run_until(c4.loop, &c4.closed, c4.n_slow + C4_HEALTHY);
    test_run_nowait(c4.loop, 3);
    ASSERT_SYS(waitpid(pid, &status, 0));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        test_fail(__FILE__, __LINE__, "client process: status 0x%x", status);
    ASSERT_EQ(c4.accepted, c4.n_slow + C4_HEALTHY);
    ASSERT_EQ(c4.slow_idle, c4.n_slow);
    ASSERT_EQ(c4.healthy_idle, 0);
    ASSERT_EQ(c4.eofs, C4_HEALTHY);
    ASSERT_EQ(c4.echoed, C4_HEALTHY * C4_ROUNDS * C4_MSG);
    ASSERT_EQ(c4.closed, c4.n_slow + C4_HEALTHY);
    ASSERT_EQ(gyre_listener_close(&c4.l, NULL), 0);
    test_run_nowait(c4.loop, 3);
    test_close(c4.ctl);
    ASSERT_EQ(gyre_bufpool_available(c4.pool), 256);
    ASSERT_EQ(gyre_bufpool_free(c4.pool), 0);
    test_loop_free(c4.loop);
}

/* ------------------------------------------------------------------------ */
/* D1: close with operations in flight                                       */
/* ------------------------------------------------------------------------ */

/* Five kinds of operation wait on one socket (a recv, a one-shot poll, a
 * readv, a send blocked by a full socket buffer, a multishot recv) when a
 * close op is submitted for it: each completes exactly once with
 * -ECANCELED (the multishot with its final completion), all before the
 * close's own callback, which says 0. A read waiting on another fd is not
 * touched and still gets its bytes. */
static int d1_seq;

struct d1_op {
    gyre_op op;
    int calls, order;
    int64_t result;
    uint32_t flags;
};

static void d1_cb(gyre_op *op)
{
    struct d1_op *d = (struct d1_op *)op;

    d->calls++;
    d->order = ++d1_seq;
    d->result = op->result;
    d->flags = op->flags;
}

void test_rel_d1_close_ops_in_flight(void)
{
    static char fill[65536], rbuf[4][64], sbuf[4096];
    struct d1_op ops[5], cl, other;
    gyre_loop *loop = test_loop_new();
    gyre_bufpool *pool;
    struct iovec iov[2] = {{rbuf[2], 32}, {rbuf[2] + 32, 32}};
    int sp[2], p[2];

    memset(ops, 0, sizeof ops);
    memset(&cl, 0, sizeof cl);
    memset(&other, 0, sizeof other);
    d1_seq = 0;
    test_socketpair(sp);
    test_pipe(p);
    /* The send direction full before anything is submitted. */
    while (write(sp[0], fill, sizeof fill) > 0)
        continue;
    ASSERT_EQ(errno, EAGAIN);
    ASSERT_EQ(gyre_bufpool_new(loop, &pool, 8, 256), 0);
    gyre_op_recv(&ops[0].op, sp[0], rbuf[0], sizeof rbuf[0], 0);
    gyre_op_poll(&ops[1].op, sp[0], GYRE_IN);
    gyre_op_readv(&ops[2].op, sp[0], iov, 2, GYRE_OFF_CUR);
    gyre_op_send(&ops[3].op, sp[0], sbuf, sizeof sbuf, 0);
    gyre_op_recv_multishot(&ops[4].op, sp[0], pool);
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(gyre_submit(loop, &ops[i].op, d1_cb), 0);
    gyre_op_read(&other.op, p[0], rbuf[3], sizeof rbuf[3], GYRE_OFF_CUR);
    ASSERT_EQ(gyre_submit(loop, &other.op, d1_cb), 0);
    test_run_nowait(loop, 3); /* all of them waiting in the kernel or the loop */
    ASSERT_EQ(d1_seq, 0);

    gyre_op_close(&cl.op, sp[0]);
    ASSERT_EQ(gyre_submit(loop, &cl.op, d1_cb), 0);
    test_run_until(loop, &cl.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(cl.result, 0);
    for (int i = 0; i < 5; i++) {
        if (ops[i].calls != 1 || ops[i].result != -ECANCELED)
            test_fail(__FILE__, __LINE__, "op %d: %d call(s), result %jd; want one, -ECANCELED", i,
                      ops[i].calls, (intmax_t)ops[i].result);
        ASSERT_EQ(ops[i].flags & GYRE_OP_MORE, 0);
        ASSERT_LT(ops[i].order, cl.order);
    }
    ASSERT_EQ(fcntl(sp[0], F_GETFD), -1);
    ASSERT_EQ(errno, EBADF);
    /* The read on the pipe was left alone. */
    ASSERT_EQ(other.calls, 0);
    test_write_bytes(p[1], "still", 5);
    test_run_until(loop, &other.calls, 1);
    ASSERT_EQ(other.result, 5);
    ASSERT_EQ(memcmp(rbuf[3], "still", 5), 0);
    ASSERT_EQ(gyre_bufpool_available(pool), 8);
    ASSERT_EQ(gyre_bufpool_free(pool), 0);
    test_close(sp[1]);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* D2: buffers are not touched after completion                              */
/* ------------------------------------------------------------------------ */

/* ASan cannot see what the kernel writes, so each buffer ends exactly where
 * a PROT_NONE page begins (a write past it faults) and canary bytes precede
 * it (a write before it shows). After a read completes or is cancelled,
 * more data is made available and the loop runs on: the buffer and the
 * canaries must stay as they were and the new data must still be in the
 * kernel. After a write completes (or is cancelled), its buffer is
 * overwritten: the peer must receive only what was there before. */
#define D2_LEN 1000
#define D2_CANARY 0xC5
#define D2_FILL 0x3C

static struct {
    unsigned char *map;
    size_t page;
} d2;

/* A buffer of D2_LEN bytes that ends at the guard page, filled with
 * D2_FILL, with 64 canary bytes before it. */
static unsigned char *d2_buf(int slot)
{
    unsigned char *end = d2.map + (size_t)(2 * slot + 1) * d2.page;
    unsigned char *b = end - D2_LEN;

    memset(b - 64, D2_CANARY, 64);
    memset(b, D2_FILL, D2_LEN);
    return b;
}

static void d2_check(const unsigned char *b, const unsigned char *want, const char *what)
{
    for (int i = 1; i <= 64; i++)
        if (b[-i] != D2_CANARY)
            test_fail(__FILE__, __LINE__, "%s: canary %d bytes before the buffer changed", what, i);
    for (int i = 0; i < D2_LEN; i++) {
        unsigned char w = want != NULL ? want[i] : D2_FILL;

        if (b[i] != w)
            test_fail(__FILE__, __LINE__, "%s: buffer byte %d is 0x%02x, want 0x%02x", what, i,
                      b[i], w);
    }
}

static void d2_pattern(unsigned char *p, unsigned char seed)
{
    for (int i = 0; i < D2_LEN; i++)
        p[i] = (unsigned char)(seed + i * 5);
}

/* Reads of every kind into guarded buffers on a socketpair. */
static void d2_reads(gyre_loop *loop)
{
    static unsigned char data[D2_LEN], later[D2_LEN], rest[D2_LEN + 1];
    struct test_op t = {0};
    int sp[2];

    test_socketpair(sp);
    d2_pattern(data, 1);
    d2_pattern(later, 99);
    for (int kind = 0; kind < 3; kind++) {
        unsigned char *b = d2_buf(kind);
        struct iovec iov[2] = {{b, 400}, {b + 400, D2_LEN - 400}};

        /* Completed. */
        test_write_bytes(sp[1], (const char *)data, D2_LEN);
        if (kind == 0)
            gyre_op_read(&t.op, sp[0], b, D2_LEN, GYRE_OFF_CUR);
        else if (kind == 1)
            gyre_op_recv(&t.op, sp[0], b, D2_LEN, 0);
        else
            gyre_op_readv(&t.op, sp[0], iov, 2, GYRE_OFF_CUR);
        ASSERT_EQ(test_op_run(loop, &t), D2_LEN);
        d2_check(b, data, "completed read");
        test_write_bytes(sp[1], (const char *)later, D2_LEN);
        test_run_nowait(loop, 5);
        d2_check(b, data, "completed read, after more data");
        ASSERT_EQ(read(sp[0], rest, sizeof rest), D2_LEN);
        ASSERT_EQ(memcmp(rest, later, D2_LEN), 0);

        /* Cancelled while waiting. */
        b = d2_buf(kind);
        if (kind == 0)
            gyre_op_read(&t.op, sp[0], b, D2_LEN, GYRE_OFF_CUR);
        else if (kind == 1)
            gyre_op_recv(&t.op, sp[0], b, D2_LEN, 0);
        else
            gyre_op_readv(&t.op, sp[0], iov, 2, GYRE_OFF_CUR);
        test_op_submit(loop, &t);
        test_run_nowait(loop, 3);
        ASSERT_EQ(t.calls, 0);
        ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
        test_run_until(loop, &t.calls, 1);
        ASSERT_EQ(t.result, -ECANCELED);
        test_write_bytes(sp[1], (const char *)later, D2_LEN);
        test_run_nowait(loop, 5);
        d2_check(b, NULL, "cancelled read, after data came");
        ASSERT_EQ(read(sp[0], rest, sizeof rest), D2_LEN);
        ASSERT_EQ(memcmp(rest, later, D2_LEN), 0);
    }
    test_close(sp[0]);
    test_close(sp[1]);
}

/* A multishot recv cancelled: its pool's buffers stay as they were when
 * the final completion came, whatever arrives afterwards. */
static void d2_multishot(gyre_loop *loop)
{
    static struct msrec m;
    static unsigned char snap[8 * 256], later[D2_LEN], rest[D2_LEN + 1];
    int sp[2];

    test_socketpair(sp);
    memset(&m, 0, sizeof m);
    m.cap = 64;
    m.got = malloc(m.cap);
    ASSERT_TRUE(m.got != NULL);
    ASSERT_EQ(gyre_bufpool_new(loop, &m.pool, 8, 256), 0);
    for (uint32_t i = 0; i < 8; i++)
        memset(gyre_bufpool_buf(m.pool, i), D2_FILL, 256);
    gyre_op_recv_multishot(&m.op, sp[0], m.pool);
    ASSERT_EQ(gyre_submit(loop, &m.op, msrec_cb), 0);
    test_write_bytes(sp[1], "abc", 3);
    while (m.n < 3)
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
    ASSERT_EQ(gyre_cancel(loop, &m.op), 0);
    test_run_until(loop, &m.final, 1);
    ASSERT_EQ(m.final_result, -ECANCELED);
    for (uint32_t i = 0; i < 8; i++)
        memcpy(snap + i * 256, gyre_bufpool_buf(m.pool, i), 256);
    d2_pattern(later, 7);
    test_write_bytes(sp[1], (const char *)later, D2_LEN);
    test_run_nowait(loop, 5);
    for (uint32_t i = 0; i < 8; i++)
        ASSERT_EQ(memcmp(snap + i * 256, gyre_bufpool_buf(m.pool, i), 256), 0);
    ASSERT_EQ(read(sp[0], rest, sizeof rest), D2_LEN);
    ASSERT_EQ(memcmp(rest, later, D2_LEN), 0);
    ASSERT_EQ(m.n, 3);
    ASSERT_EQ(memcmp(m.got, "abc", 3), 0);
    ASSERT_EQ(gyre_bufpool_free(m.pool), 0);
    free(m.got);
    test_close(sp[0]);
    test_close(sp[1]);
}

/* A file read completed, then the file rewritten: the buffer keeps the
 * old bytes. On every file engine. */
static void d2_file(gyre_loop *loop)
{
    static unsigned char data[D2_LEN], later[D2_LEN];
    struct test_op t = {0};
    unsigned char *b = d2_buf(3);
    char path[4096];
    int fd;

    d2_pattern(data, 3);
    d2_pattern(later, 200);
    test_tmppath(path, sizeof path, "d2-file");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    ASSERT_EQ(pwrite(fd, data, D2_LEN, 0), D2_LEN);
    gyre_op_read(&t.op, fd, b, D2_LEN, 0);
    ASSERT_EQ(test_op_run(loop, &t), D2_LEN);
    d2_check(b, data, "completed file read");
    ASSERT_EQ(pwrite(fd, later, D2_LEN, 0), D2_LEN);
    test_run_nowait(loop, 5);
    d2_check(b, data, "completed file read, after the file changed");
    test_close(fd);
}

/* Writes: completed, then overwritten; and cancelled on a full socket. */
static void d2_writes(gyre_loop *loop)
{
    static unsigned char data[D2_LEN], got[1 << 20];
    static char fill[65536];
    struct test_op t = {0};
    unsigned char *b = d2_buf(4);
    size_t filled = 0, n = 0;
    int sp[2];

    test_socketpair(sp);
    d2_pattern(data, 5);
    memcpy(b, data, D2_LEN);
    gyre_op_send(&t.op, sp[0], b, D2_LEN, 0);
    ASSERT_EQ(test_op_run(loop, &t), D2_LEN);
    memset(b, 'X', D2_LEN);
    test_run_nowait(loop, 5);
    ASSERT_EQ(read(sp[1], got, sizeof got), D2_LEN);
    ASSERT_EQ(memcmp(got, data, D2_LEN), 0);

    /* Cancelled while the socket is full: whatever of it went out went
     * before the cancel, so the overwrite never reaches the peer. */
    memset(fill, 'f', sizeof fill);
    for (;;) {
        ssize_t w = write(sp[0], fill, sizeof fill);

        if (w < 0) {
            ASSERT_EQ(errno, EAGAIN);
            break;
        }
        filled += (size_t)w;
    }
    memcpy(b, data, D2_LEN);
    gyre_op_write(&t.op, sp[0], b, D2_LEN, GYRE_OFF_CUR);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 3);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    test_run_until(loop, &t.calls, 1);
    ASSERT_TRUE(t.result == -ECANCELED || (t.result >= 0 && t.result <= D2_LEN));
    memset(b, 'X', D2_LEN);
    test_run_nowait(loop, 5);
    for (;;) {
        ssize_t r = read(sp[1], got + n, sizeof got - n);

        if (r < 0) {
            ASSERT_EQ(errno, EAGAIN);
            break;
        }
        n += (size_t)r;
        ASSERT_LT(n, sizeof got);
    }
    ASSERT_EQ(n, filled + (t.result > 0 ? (size_t)t.result : 0));
    for (size_t i = 0; i < filled; i++)
        ASSERT_EQ(got[i], 'f');
    ASSERT_EQ(memcmp(got + filled, data, n - filled), 0);
    test_close(sp[0]);
    test_close(sp[1]);
}

void test_rel_d2_buffer_canaries(void)
{
    gyre_loop *loop = test_loop_new();

    d2.page = (size_t)sysconf(_SC_PAGESIZE);
    /* Five guarded slots: [buffer page][PROT_NONE page] each. */
    d2.map = mmap(NULL, 10 * d2.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_TRUE(d2.map != MAP_FAILED);
    for (int i = 0; i < 5; i++)
        ASSERT_SYS(mprotect(d2.map + (size_t)(2 * i + 1) * d2.page, d2.page, PROT_NONE));
    d2_reads(loop);
    d2_multishot(loop);
    d2_file(loop);
    d2_writes(loop);
    ASSERT_SYS(munmap(d2.map, 10 * d2.page));
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* E1: 8 threads x 1,000,000 wakeups                                         */
/* ------------------------------------------------------------------------ */

/* Each thread counts a send in `sent` before making it, and after its last
 * one marks itself finished and sends once more. That final send comes
 * after the mark, so some callback must run after every thread's mark and
 * see all of them, and with them every send counted: the test ends only in
 * such a callback, so a lost final wakeup hangs (the guard fails it). The
 * callback count is bounded by the sends (coalescing only ever merges). */
#define E1_THREADS 8

static struct {
    gyre_async a;
    size_t per_thread;
    atomic_size_t sent;
    atomic_int finished;
    size_t calls;
    int closed;
} e1;

static void *e1_thread(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < e1.per_thread; i++) {
        atomic_fetch_add(&e1.sent, 1);
        ASSERT_EQ(gyre_async_send(&e1.a), 0);
    }
    atomic_fetch_add(&e1.finished, 1);
    ASSERT_EQ(gyre_async_send(&e1.a), 0);
    return NULL;
}

static void e1_cb(gyre_async *a)
{
    /* finished before sent: all finished means all their sends counted. */
    int finished = atomic_load(&e1.finished);
    size_t sent = atomic_load(&e1.sent);

    e1.calls++;
    ASSERT_LE(sent, e1.per_thread * E1_THREADS);
    if (finished == E1_THREADS) {
        ASSERT_EQ(sent, e1.per_thread * E1_THREADS);
        ASSERT_EQ(gyre_async_close(a), 0);
        e1.closed = 1;
    }
}

void test_rel_e1_async_8x1m(void)
{
    gyre_loop *loop = test_loop_new();
    pthread_t th[E1_THREADS];

    test_loop_guard(loop, SEC(100));
    memset(&e1, 0, sizeof e1);
    e1.per_thread = test_scale(1000000);
    ASSERT_EQ(gyre_async_init(loop, &e1.a, e1_cb), 0);
    for (int i = 0; i < E1_THREADS; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, e1_thread, NULL), 0);
    test_run_until(loop, &e1.closed, 1);
    for (int i = 0; i < E1_THREADS; i++)
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
    ASSERT_GE(e1.calls, 1);
    ASSERT_LE(e1.calls, e1.per_thread * E1_THREADS + E1_THREADS);
    printf("E1: %zu sends from %d threads, %zu callbacks\n", e1.per_thread * E1_THREADS + 8,
           E1_THREADS, e1.calls);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* E3: a completion flood does not starve timers                             */
/* ------------------------------------------------------------------------ */

/* 64 nops that resubmit themselves from their callbacks and an async that
 * sends itself again from its callback: the loop is never idle. A 1 ms
 * repeating timer must still fire its 20 times (it then ends the flood),
 * and the work of one iteration must stay bounded: an iteration dispatches
 * ready completions at two points (before and after the readiness events,
 * see iterate() in src/core/loop.c), each over what was ready when it
 * began, so a nop resubmitted from its callback completes at most twice per
 * iteration, and an async sent from its own callback runs at most once. An
 * unbounded pass would keep the timers from ever running. */
#define E3_OPS 64
#define E3_TICKS 20

static struct {
    gyre_loop *loop;
    gyre_op ops[E3_OPS];
    gyre_async a;
    gyre_timer tick;
    gyre_hook check;
    int stop, inflight, ticks;
    uint64_t completed, async_calls, last_completed, last_async;
    uint64_t max_completed, max_async, iterations;
} e3;

static void e3_nop_cb(gyre_op *op)
{
    ASSERT_EQ(op->result, 0);
    e3.completed++;
    e3.inflight--;
    if (e3.stop)
        return;
    gyre_op_nop(op);
    ASSERT_EQ(gyre_submit(e3.loop, op, e3_nop_cb), 0);
    e3.inflight++;
}

static void e3_async_cb(gyre_async *a)
{
    e3.async_calls++;
    if (!e3.stop)
        ASSERT_EQ(gyre_async_send(a), 0);
}

static void e3_tick_cb(gyre_timer *t)
{
    if (++e3.ticks < E3_TICKS)
        return;
    ASSERT_EQ(gyre_timer_stop(t), 0);
    ASSERT_EQ(gyre_async_close(&e3.a), 0);
    e3.stop = 1;
}

static void e3_check_cb(gyre_hook *h)
{
    uint64_t dc = e3.completed - e3.last_completed;
    uint64_t da = e3.async_calls - e3.last_async;

    (void)h;
    e3.iterations++;
    if (dc > e3.max_completed)
        e3.max_completed = dc;
    if (da > e3.max_async)
        e3.max_async = da;
    e3.last_completed = e3.completed;
    e3.last_async = e3.async_calls;
}

void test_rel_e3_completion_flood(void)
{
    memset(&e3, 0, sizeof e3);
    e3.loop = test_loop_new();
    ASSERT_EQ(gyre_hook_init(e3.loop, &e3.check, GYRE_HOOK_CHECK), 0);
    ASSERT_EQ(gyre_hook_start(&e3.check, e3_check_cb), 0);
    ASSERT_EQ(gyre_async_init(e3.loop, &e3.a, e3_async_cb), 0);
    ASSERT_EQ(gyre_async_send(&e3.a), 0);
    for (int i = 0; i < E3_OPS; i++) {
        gyre_op_nop(&e3.ops[i]);
        ASSERT_EQ(gyre_submit(e3.loop, &e3.ops[i], e3_nop_cb), 0);
        e3.inflight++;
    }
    ASSERT_EQ(gyre_timer_init(e3.loop, &e3.tick), 0);
    ASSERT_EQ(gyre_timer_start(&e3.tick, e3_tick_cb, MS(1), MS(1)), 0);
    test_run_until(e3.loop, &e3.ticks, E3_TICKS);
    while (e3.inflight > 0)
        ASSERT_GE(gyre_loop_run(e3.loop, GYRE_RUN_ONCE), 0);
    test_run_nowait(e3.loop, 3);
    ASSERT_EQ(e3.ticks, E3_TICKS);
    ASSERT_EQ(e3.inflight, 0);
    printf("E3: %ju nop completions and %ju async callbacks over %ju iterations; at most %ju and "
           "%ju in one\n",
           (uintmax_t)e3.completed, (uintmax_t)e3.async_calls, (uintmax_t)e3.iterations,
           (uintmax_t)e3.max_completed, (uintmax_t)e3.max_async);
    ASSERT_GE(e3.completed, E3_OPS * E3_TICKS);
    ASSERT_LE(e3.max_completed, 2 * E3_OPS);
    ASSERT_LE(e3.max_async, 1);
    ASSERT_EQ(gyre_hook_stop(&e3.check), 0);
    test_loop_free(e3.loop);
}

/* ------------------------------------------------------------------------ */
/* H2: 100,000 timers at one deadline keep their start order                 */
/* ------------------------------------------------------------------------ */

/* All started with one timeout while the loop's cached time stands still,
 * so they share one deadline; then every seventh is started again, which
 * (a restart being a new start) moves it behind all the others, in the
 * order of the restarts. The firing order must be exactly that. */
struct h2_timer {
    gyre_timer t;
    uint32_t idx;
};

static uint32_t *h2_order;
static size_t h2_fired;

static void h2_cb(gyre_timer *t)
{
    h2_order[h2_fired++] = ((struct h2_timer *)t)->idx;
}

void test_rel_h2_timers_100k(void)
{
    size_t n = test_scale(100000), k = 0;
    struct h2_timer *ts = calloc(n, sizeof *ts);
    gyre_loop *loop = test_loop_new();
    uint64_t now;

    h2_order = calloc(n, sizeof *h2_order);
    ASSERT_TRUE(ts != NULL && h2_order != NULL);
    h2_fired = 0;
    now = gyre_now(loop);
    for (size_t i = 0; i < n; i++) {
        ts[i].idx = (uint32_t)i;
        ASSERT_EQ(gyre_timer_init(loop, &ts[i].t), 0);
        ASSERT_EQ(gyre_timer_start(&ts[i].t, h2_cb, MS(5), 0), 0);
    }
    for (size_t i = 0; i < n; i += 7)
        ASSERT_EQ(gyre_timer_start(&ts[i].t, h2_cb, MS(5), 0), 0);
    ASSERT_EQ(gyre_now(loop), now); /* one deadline for all */
    test_loop_guard(loop, SEC(100));
    while (h2_fired < n)
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(h2_fired, n);
    for (size_t i = 0; i < n; i++) {
        if (i % 7 != 0) {
            if (h2_order[k] != i)
                test_fail(__FILE__, __LINE__, "firing %zu was timer %u, want %zu", k, h2_order[k],
                          i);
            k++;
        }
    }
    for (size_t i = 0; i < n; i += 7, k++) {
        if (h2_order[k] != i)
            test_fail(__FILE__, __LINE__, "firing %zu was timer %u, want restarted %zu", k,
                      h2_order[k], i);
    }
    ASSERT_EQ(k, n);
    free(h2_order);
    free(ts);
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* I4: no SQPOLL unless asked                                                */
/* ------------------------------------------------------------------------ */

/* Threads of this process named iou-sqp-* (the kernel's SQ poll threads,
 * process threads since Linux 5.12). */
static int sqpoll_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    ASSERT_TRUE(d != NULL);
    while ((e = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue; /* the thread has just exited */
        if (fgets(comm, sizeof comm, f) != NULL && strncmp(comm, "iou-sqp", 7) == 0)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

static void i4_round_trip(gyre_loop *loop)
{
    struct test_op t = {0};

    gyre_op_nop(&t.op);
    ASSERT_EQ(test_op_run(loop, &t), 0);
}

/* The ring flags in gyre_loop_info() say whether the ring polls; the
 * thread list says whether the kernel made a polling thread. */
void test_rel_i4_no_sqpoll(void)
{
    gyre_loop_opts o;
    gyre_loop *loop = test_loop_new();
    gyre_info info;
    int r;

    i4_round_trip(loop);
    ASSERT_EQ(gyre_loop_info(loop, &info), 0);
    ASSERT_EQ(info.ring_flags & IORING_SETUP_SQPOLL, 0);
    if (!test_backend_is("uring"))
        ASSERT_EQ(info.ring_flags, 0);
    ASSERT_EQ(sqpoll_threads(), 0);
    test_loop_free(loop);

    /* Asked for: on io_uring the ring polls (a kernel that refuses SQPOLL
     * says so, it is never silently dropped); elsewhere there is no ring. */
    memset(&o, 0, sizeof o);
    o.flags = GYRE_LOOP_SQPOLL;
    r = gyre_loop_new(&loop, &o);
    if (test_backend_is("uring") && r == -EPERM) {
        printf("I4: this kernel refuses SQPOLL to an unprivileged process (-EPERM)\n");
        return;
    }
    ASSERT_EQ(r, 0);
    i4_round_trip(loop);
    ASSERT_EQ(gyre_loop_info(loop, &info), 0);
    if (test_backend_is("uring")) {
        ASSERT_TRUE((info.ring_flags & IORING_SETUP_SQPOLL) != 0);
        ASSERT_GE(sqpoll_threads(), 1);
    } else {
        ASSERT_EQ(info.ring_flags, 0);
        ASSERT_EQ(sqpoll_threads(), 0);
    }
    ASSERT_EQ(gyre_loop_free(loop), 0);
}

/* ------------------------------------------------------------------------ */
/* K3: lengths at 2^31-1, 2^32 and SIZE_MAX                                  */
/* ------------------------------------------------------------------------ */

/* Every length and size the API takes, at the edges. Lengths gyre bounds
 * (an op's len, a stream write's total, buffer pool and UDP sizes, option
 * counts) are refused with -EINVAL one past the bound and at the type's
 * maximum; the bound itself is taken. A length gyre hands to the kernel
 * unchanged (a msghdr's, a datagram's) gets the kernel's answer. 2^31-1 is
 * tried for real where the kernel caps the transfer: the memory behind it
 * is a MAP_NORESERVE mapping, so the kernel can touch any byte of it but
 * only pays for what it writes, and the result must be exactly the bytes
 * there were. (An op's len is a uint32_t: 2^32 and SIZE_MAX cannot reach
 * it unconverted, so UINT32_MAX stands for them there; C truncates a wider
 * value at the call, which -Wconversion reports in the caller's code.)
 * Reads here are on fds with data ready: rel_b6_idle_fd_args covers idle
 * ones. The whole test must also run clean under UBSan. */
#define K3_BIG ((size_t)1 << 32) /* mapped, never all touched */

static unsigned char *k3_big;

static int64_t k3_submit_rc(gyre_loop *loop, struct test_op *t)
{
    int rc;

    t->calls = 0;
    rc = gyre_submit(loop, &t->op, test_op_cb);
    if (rc < 0) {
        test_run_nowait(loop, 2);
        ASSERT_EQ(t->calls, 0);
        return rc;
    }
    test_run_until(loop, &t->calls, 1);
    test_run_nowait(loop, 2);
    ASSERT_EQ(t->calls, 1);
    return t->result;
}

/* Bytes waiting in fd, read out and counted (they must all be zero: they
 * came from the untouched part of the big mapping). */
static uint64_t k3_drain_zeros(int fd)
{
    static unsigned char buf[65536];
    uint64_t n = 0;

    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);

        if (r < 0) {
            ASSERT_EQ(errno, EAGAIN);
            return n;
        }
        ASSERT_GT(r, 0);
        for (ssize_t i = 0; i < r; i++)
            ASSERT_EQ(buf[i], 0);
        n += (uint64_t)r;
    }
}

static void k3_stream_pipe_ops(gyre_loop *loop)
{
    struct test_op t = {0};
    int p[2], sp[2];
    int64_t r;

    /* read and recv: the bound is taken and gives what was there. */
    test_pipe(p);
    test_socketpair(sp);
    test_write_bytes(p[1], "0123456789", 10);
    gyre_op_read(&t.op, p[0], k3_big, INT32_MAX, GYRE_OFF_CUR);
    ASSERT_EQ(k3_submit_rc(loop, &t), 10);
    ASSERT_EQ(memcmp(k3_big, "0123456789", 10), 0);
    test_write_bytes(sp[1], "abcdefghij", 10);
    gyre_op_recv(&t.op, sp[0], k3_big, INT32_MAX, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), 10);
    ASSERT_EQ(memcmp(k3_big, "abcdefghij", 10), 0);
    memset(k3_big, 0, 16);

    /* One past it and the type's maximum: refused at submit. */
    gyre_op_read(&t.op, p[0], k3_big, (uint32_t)INT32_MAX + 1, GYRE_OFF_CUR);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_read(&t.op, p[0], k3_big, UINT32_MAX, GYRE_OFF_CUR);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_write(&t.op, p[1], k3_big, (uint32_t)INT32_MAX + 1, GYRE_OFF_CUR);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_write(&t.op, p[1], k3_big, UINT32_MAX, GYRE_OFF_CUR);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_recv(&t.op, sp[0], k3_big, UINT32_MAX, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_send(&t.op, sp[0], k3_big, (uint32_t)INT32_MAX + 1, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_send(&t.op, sp[0], k3_big, UINT32_MAX, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);

    /* write and send of 2^31-1 bytes into a pipe and a socket that hold
     * far less: a short count, and exactly that many bytes arrive. */
    gyre_op_write(&t.op, p[1], k3_big, INT32_MAX, GYRE_OFF_CUR);
    r = k3_submit_rc(loop, &t);
    ASSERT_GT(r, 0);
    ASSERT_LT(r, INT32_MAX);
    ASSERT_EQ(k3_drain_zeros(p[0]), (uint64_t)r);
    gyre_op_send(&t.op, sp[0], k3_big, INT32_MAX, 0);
    r = k3_submit_rc(loop, &t);
    ASSERT_GT(r, 0);
    ASSERT_LT(r, INT32_MAX);
    ASSERT_EQ(k3_drain_zeros(sp[1]), (uint64_t)r);

    /* A msghdr is the kernel's to judge. */
    {
        struct iovec iov = {k3_big, SIZE_MAX};
        struct msghdr m;

        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        gyre_op_sendmsg(&t.op, sp[0], &m, 0);
        ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
        test_write_bytes(sp[1], "m", 1);
        gyre_op_recvmsg(&t.op, sp[0], &m, 0);
        ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
        iov.iov_len = INT32_MAX;
        gyre_op_recvmsg(&t.op, sp[0], &m, 0);
        ASSERT_EQ(k3_submit_rc(loop, &t), 1);
        ASSERT_EQ(k3_big[0], 'm');
        k3_big[0] = 0;
        m.msg_iovlen = SIZE_MAX;
        gyre_op_sendmsg(&t.op, sp[0], &m, 0);
        ASSERT_EQ(k3_submit_rc(loop, &t), -EMSGSIZE);
    }

    /* An op deadline of UINT64_MAX saturates: it never expires. */
    test_write_bytes(p[1], "dl", 2);
    gyre_op_read(&t.op, p[0], k3_big, 16, GYRE_OFF_CUR);
    gyre_op_set_deadline(&t.op, UINT64_MAX);
    ASSERT_EQ(k3_submit_rc(loop, &t), 2);
    test_close(p[0]);
    test_close(p[1]);
    test_close(sp[0]);
    test_close(sp[1]);
}

static void k3_file_ops(gyre_loop *loop)
{
    struct test_op t = {0};
    char path[4096];
    int fd, fd2, dfd;

    test_tmppath(path, sizeof path, "k3-file");
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    test_write_bytes(fd, "0123456789", 10);
    test_tmppath(path, sizeof path, "k3-copy");
    fd2 = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd2);

    /* pread of 2^31-1 at offset 0 of a 10-byte file: 10. */
    gyre_op_read(&t.op, fd, k3_big, INT32_MAX, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), 10);
    ASSERT_EQ(memcmp(k3_big, "0123456789", 10), 0);
    memset(k3_big, 0, 16);
    gyre_op_read(&t.op, fd, k3_big, (uint32_t)INT32_MAX + 1, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_read(&t.op, fd, k3_big, UINT32_MAX, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_write(&t.op, fd, k3_big, (uint32_t)INT32_MAX + 1, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_write(&t.op, fd, k3_big, UINT32_MAX, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    /* Offsets past what a loff_t holds: the kernel's -EINVAL. */
    gyre_op_read(&t.op, fd, k3_big, 10, UINT64_C(1) << 63);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_write(&t.op, fd, "x", 1, UINT64_C(1) << 63);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);

    /* copy_file_range: at most INT32_MAX (documented). */
    gyre_op_copy_file_range(&t.op, fd, 0, fd2, 0, INT32_MAX, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), 10);
    gyre_op_copy_file_range(&t.op, fd, 0, fd2, 0, (uint32_t)INT32_MAX + 1, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_copy_file_range(&t.op, fd, 0, fd2, 0, UINT32_MAX, 0);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);

    /* ftruncate and fallocate take 64-bit lengths: past INT64_MAX the
     * kernel's -EINVAL. */
    gyre_op_ftruncate(&t.op, fd2, UINT64_MAX);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_ftruncate(&t.op, fd2, UINT64_C(1) << 63);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_fallocate(&t.op, fd2, 0, 0, UINT64_MAX);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_fallocate(&t.op, fd2, 0, UINT64_MAX, 1);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);

    /* readdir of 2^31-1 bytes: the directory's few records. */
    dfd = open(test_tmpdir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_SYS(dfd);
    gyre_op_readdir(&t.op, dfd, k3_big, INT32_MAX);
    ASSERT_GT(k3_submit_rc(loop, &t), 0);
    gyre_op_readdir(&t.op, dfd, k3_big, (uint32_t)INT32_MAX + 1);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    gyre_op_readdir(&t.op, dfd, k3_big, UINT32_MAX);
    ASSERT_EQ(k3_submit_rc(loop, &t), -EINVAL);
    test_close(dfd);
    test_close(fd2);
    test_close(fd);
}

static int k3_closed;

static void k3_stream_closed(gyre_stream *st)
{
    (void)st;
    k3_closed++;
}

static void k3_write_cb(gyre_stream_write_req *req, int status)
{
    (void)req;
    (void)status;
    FAIL("a refused stream write called back");
}

static void k3_idle_cb(gyre_stream *st)
{
    (void)st;
    FAIL("an idle timeout of UINT64_MAX fired");
}

static void k3_streams(gyre_loop *loop)
{
    static const size_t lens[][3] = {
        {(size_t)INT32_MAX + 1, 0, 1},
        {(size_t)1 << 32, 0, 1},
        {SIZE_MAX, 0, 1},
        {INT32_MAX, 1, 2},
        {SIZE_MAX, 2, 2},                        /* the sum wraps to 1 */
        {SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, 2}, /* the sum wraps to 0 */
    };
    gyre_stream_write_req req;
    struct iovec iov[2];
    gyre_stream st;
    int sp[2], fd = 0;

    test_socketpair(sp);
    ASSERT_EQ(gyre_stream_init(loop, &st, sp[0], 0), 0);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        iov[0] = (struct iovec){k3_big, lens[i][0]};
        iov[1] = (struct iovec){k3_big, lens[i][1]};
        ASSERT_EQ(gyre_stream_write(&st, &req, iov, (uint32_t)lens[i][2], k3_write_cb), -EINVAL);
    }
    iov[0] = (struct iovec){k3_big, 1};
    ASSERT_EQ(gyre_stream_write(&st, &req, iov, UINT32_MAX, k3_write_cb), -EINVAL);
    ASSERT_EQ(gyre_stream_write_fds(&st, &req, iov, 1, &fd, 1, k3_write_cb), -EINVAL);
    ASSERT_EQ(gyre_stream_set_keepalive(&st, 1, UINT32_MAX), -EINVAL);
    ASSERT_EQ(gyre_stream_set_keepalive(&st, 1, (uint32_t)INT32_MAX + 1), -EINVAL);
    ASSERT_EQ(gyre_stream_set_idle_timeout(&st, UINT64_MAX, k3_idle_cb), 0);
    ASSERT_EQ(gyre_stream_set_write_timeout(&st, UINT64_MAX, k3_stream_closed), 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(gyre_stream_write_queue_size(&st), 0);
    k3_closed = 0;
    ASSERT_EQ(gyre_stream_close(&st, k3_stream_closed), 0);
    test_run_until(loop, &k3_closed, 1);
    test_close(sp[1]);
}

static void k3_udp_cb(gyre_udp *u, int64_t result, const gyre_udp_msg *msg)
{
    (void)u;
    (void)result;
    (void)msg;
}

static int k3_udp_sent;

static void k3_udp_send_cb(gyre_udp_send_req *req, int64_t result)
{
    (void)req;
    ASSERT_EQ(result, -EMSGSIZE);
    k3_udp_sent++;
}

static void k3_udp(gyre_loop *loop)
{
    static const uint32_t lens[] = {INT32_MAX, (uint32_t)INT32_MAX + 1, UINT32_MAX};
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    gyre_udp_send_req req;
    gyre_udp_opts o;
    gyre_udp_msg m;
    gyre_udp u;
    int r;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(&o, 0, sizeof o);
    o.rcvbuf = (uint32_t)INT32_MAX + 1;
    ASSERT_EQ(gyre_udp_open(loop, &u, (struct sockaddr *)&a, sizeof a, &o), -EINVAL);
    o.rcvbuf = 0;
    o.sndbuf = UINT32_MAX;
    ASSERT_EQ(gyre_udp_open(loop, &u, (struct sockaddr *)&a, sizeof a, &o), -EINVAL);
    ASSERT_EQ(gyre_udp_open(loop, &u, (struct sockaddr *)&a, sizeof a, NULL), 0);
    ASSERT_EQ(gyre_udp_sockname(&u, (struct sockaddr *)&a, &alen), 0);
    ASSERT_EQ(gyre_udp_recv_start(&u, 1, INT32_MAX, k3_udp_cb), -EINVAL);
    ASSERT_EQ(gyre_udp_recv_start(&u, 1, UINT32_MAX, k3_udp_cb), -EINVAL);
    ASSERT_EQ(gyre_udp_recv_start(&u, UINT32_MAX, 512, k3_udp_cb), -EINVAL);
    ASSERT_EQ(gyre_udp_recv_start(&u, 1, GYRE_UDP_SIZE_MAX, k3_udp_cb), 0);
    ASSERT_EQ(gyre_udp_recv_stop(&u), 0);
    /* A datagram longer than UDP can carry is the kernel's -EMSGSIZE, and
     * nothing is sent. */
    k3_udp_sent = 0;
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        ASSERT_EQ(gyre_udp_send_req_init(&req), 0);
        ASSERT_EQ(
            gyre_udp_send(&u, &req, k3_big, lens[i], (struct sockaddr *)&a, alen, k3_udp_send_cb),
            0);
        test_run_until(loop, &k3_udp_sent, (int)i + 1);
        memset(&m, 0, sizeof m);
        m.data = k3_big;
        m.len = lens[i];
        m.addr = (struct sockaddr *)&a;
        m.addrlen = alen;
        /* -EAGAIN is try_send's "try again" (GYRE_FAULTS injects it). */
        do
            r = gyre_udp_try_send(&u, &m, 1);
        while (r == -EAGAIN);
        ASSERT_EQ(r, -EMSGSIZE);
    }
    ASSERT_EQ(gyre_udp_try_send(&u, &m, UINT32_MAX), -EINVAL);
    ASSERT_EQ(gyre_udp_close(&u, NULL), 0);
    test_run_nowait(loop, 3);
}

/* Callbacks that must never run: the calls are refused, or nobody connects. */
static void k3_never_accept(gyre_listener *l, int fd)
{
    (void)l;
    (void)fd;
    FAIL("a listener nobody connects to called back");
}

static void k3_never_dns(gyre_getaddrinfo_req *req, int status, struct addrinfo *res)
{
    (void)req;
    (void)status;
    (void)res;
    FAIL("a refused resolution called back");
}

static void k3_never_connect(gyre_connect_req *req, int result)
{
    (void)req;
    (void)result;
    FAIL("a refused connect called back");
}

static void k3_objects(gyre_loop *loop)
{
    gyre_loop_opts lo;
    gyre_pool_opts po;
    gyre_listen_opts so;
    gyre_bufpool *bp = NULL;
    gyre_pool *pool = NULL;
    gyre_listener l;
    gyre_loop *l2;
    gyre_info info;
    gyre_getaddrinfo_req dreq;
    gyre_connect_req creq;
    char name[300];
    int r;

    /* Buffer pools: count x size at most INT32_MAX. */
    ASSERT_EQ(gyre_bufpool_new(loop, &bp, 1, (uint32_t)INT32_MAX + 1), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &bp, 1, UINT32_MAX), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &bp, 2, 1u << 30), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &bp, UINT32_MAX, 1), -EINVAL);
    ASSERT_EQ(gyre_bufpool_new(loop, &bp, 1u << 31, 1), -EINVAL);
    r = gyre_bufpool_new(loop, &bp, 1, INT32_MAX);
    ASSERT_TRUE(r == 0 || r == -ENOMEM);
    if (r == 0)
        ASSERT_EQ(gyre_bufpool_free(bp), 0);

    /* Loop and pool options. */
    memset(&lo, 0, sizeof lo);
    lo.max_events = UINT32_MAX;
    ASSERT_EQ(gyre_loop_new(&l2, &lo), -EINVAL);
    lo.max_events = INT32_MAX;
    ASSERT_EQ(gyre_loop_new(&l2, &lo), -EINVAL);
    lo.max_events = 0;
    lo.ring_entries = UINT32_MAX; /* clamped to what io_uring allows */
    ASSERT_EQ(gyre_loop_new(&l2, &lo), 0);
    ASSERT_EQ(gyre_loop_info(l2, &info), 0);
    ASSERT_LE(info.sq_entries, 32768);
    ASSERT_EQ(gyre_loop_free(l2), 0);
    memset(&po, 0, sizeof po);
    po.threads[GYRE_LANE_FAST] = UINT32_MAX;
    ASSERT_EQ(gyre_pool_new(&pool, &po), -EINVAL);
    po.threads[GYRE_LANE_FAST] = INT32_MAX;
    ASSERT_EQ(gyre_pool_new(&pool, &po), -EINVAL);

    /* A listen backlog of INT32_MAX is the kernel's to cap; negative is
     * refused. */
    memset(&so, 0, sizeof so);
    so.backlog = INT32_MAX;
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "127.0.0.1", 0, &so, k3_never_accept), 0);
    ASSERT_EQ(gyre_listener_close(&l, NULL), 0);
    test_run_nowait(loop, 3);
    so.backlog = INT32_MIN;
    ASSERT_EQ(gyre_listen_tcp(loop, &l, "127.0.0.1", 0, &so, k3_never_accept), -EINVAL);

    /* Names one byte over their bound. */
    memset(name, 'a', sizeof name);
    name[GYRE_HOSTNAME_MAX + 1] = '\0';
    ASSERT_EQ(gyre_getaddrinfo_req_init(&dreq), 0);
    ASSERT_EQ(gyre_getaddrinfo(loop, &dreq, name, NULL, NULL, k3_never_dns), -EINVAL);
    ASSERT_EQ(gyre_connect_req_init(&creq), 0);
    ASSERT_EQ(gyre_connect(loop, &creq, name, "80", NULL, k3_never_connect), -EINVAL);
    name[GYRE_SERVICE_MAX + 1] = '\0';
    ASSERT_EQ(gyre_getaddrinfo(loop, &dreq, "localhost", name, NULL, k3_never_dns), -EINVAL);
    ASSERT_EQ(gyre_connect(loop, &creq, "localhost", name, NULL, k3_never_connect), -EINVAL);
    memset(name, 'u', sizeof name);
    name[sizeof name - 1] = '\0';
    ASSERT_EQ(gyre_listen_unix(loop, &l, name, NULL, k3_never_accept), -ENAMETOOLONG);
}

void test_rel_k3_lengths(void)
{
    gyre_loop *loop = test_loop_new();

    k3_big = mmap(NULL, K3_BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
    ASSERT_TRUE(k3_big != MAP_FAILED);
    k3_stream_pipe_ops(loop);
    k3_file_ops(loop);
    k3_streams(loop);
    k3_udp(loop);
    k3_objects(loop);
    ASSERT_SYS(munmap(k3_big, K3_BIG));
    test_loop_free(loop);
}

/* readv and writev whose buffers add up to more than INT32_MAX bytes.
 * gyre_submit() documents "-EINVAL (... length over INT32_MAX ...)", and a
 * stream write refuses such a total, so an op's iovec total must be
 * refused the same way, whatever the single lengths are and however their
 * sum wraps around. Every case is tried (on fds with data ready) before the
 * verdict, which names each one that did not give -EINVAL. */
void test_rel_k3_iovec_total(void)
{
    static const struct {
        const char *what;
        size_t len[3];
        uint32_t n;
    } cases[] = {
        {"one buffer of 2^31", {(size_t)INT32_MAX + 1}, 1},
        {"one buffer of 2^32", {(size_t)1 << 32}, 1},
        {"one buffer of SIZE_MAX", {SIZE_MAX}, 1},
        {"2^31-1 + 1", {INT32_MAX, 1}, 2},
        {"two halves of 2^64 (the sum wraps to 0)", {SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1}, 2},
        {"INT64_MAX + INT64_MAX + 2 (the sum wraps to 0)", {INT64_MAX, INT64_MAX, 2}, 3},
    };
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    int p[2], wrong = 0;

    k3_big = mmap(NULL, K3_BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
    ASSERT_TRUE(k3_big != MAP_FAILED);
    test_pipe(p);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct iovec iov[3];
        int64_t r;

        for (uint32_t k = 0; k < cases[i].n; k++)
            iov[k] = (struct iovec){k3_big, cases[i].len[k]};
        for (int dir = 0; dir < 2; dir++) {
            if (dir == 0) {
                test_write_bytes(p[1], "0123456789", 10);
                gyre_op_readv(&t.op, p[0], iov, cases[i].n, GYRE_OFF_CUR);
            } else {
                gyre_op_writev(&t.op, p[1], iov, cases[i].n, GYRE_OFF_CUR);
            }
            r = k3_submit_rc(loop, &t);
            if (r != -EINVAL) {
                printf("K3: %s of %s: %jd, want -EINVAL\n", dir == 0 ? "readv" : "writev",
                       cases[i].what, (intmax_t)r);
                wrong++;
            }
            /* Whatever is left (the readv's bytes, if it was refused). */
            while (read(p[0], k3_big, 65536) > 0)
                continue;
            memset(k3_big, 0, 16);
        }
    }
    if (wrong > 0)
        test_fail(__FILE__, __LINE__,
                  "%d readv/writev with more than INT32_MAX bytes in all not "
                  "refused (see above)",
                  wrong);
    test_close(p[0]);
    test_close(p[1]);
    ASSERT_SYS(munmap(k3_big, K3_BIG));
    test_loop_free(loop);
}
