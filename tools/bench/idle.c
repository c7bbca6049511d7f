/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* idle.c: scenario "idle", the round-trip time of one active socket while N
 * idle fds are registered with the loop.
 *
 * This is the workload that made epoll necessary: select and poll hand the
 * kernel every registered fd on every wait, so their cost grows with N even
 * when one fd is busy, while epoll's wait costs the same for any N.
 *
 * The idle fds are the read ends of N pipes. Their write ends must stay open
 * (or the read ends would report HUP) but must not sit in this process, whose
 * fd count should stay ~N so that select's FD_SETSIZE bound is reached where
 * it would be in a real program. Creating all pipes and then forking would
 * need 2N fds here at once, more than RLIMIT_NOFILE allows for N = 10000, so
 * one helper is forked first and each write end is passed to it (SCM_RIGHTS)
 * and closed here as soon as it is made; that also keeps the read ends on
 * consecutive fd numbers. The same helper then echoes the active socketpair:
 * blocking read of one byte, write it back. It exits when its sockets reach
 * EOF, so it ends with this process however that ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* fds this process needs besides the idle ones: stdio, sockets, the loop's
 * own, the JSON file. */
#define IDLE_FD_MARGIN 64

/* Untimed round trips that start each round: they bring the helper and the
 * loop's data back into cache after the previous round or the setup. */
#define IDLE_WARMUP 100

/* Time for the timed part of a round. poll at N = 10000 takes ~1.5 ms per
 * round trip, so a fixed message count would make its rounds last a minute;
 * the budget caps them (a round still times at least one round trip). */
#define IDLE_BUDGET_NS (2ull * 1000 * 1000 * 1000)
#define IDLE_QUICK_BUDGET_NS (500ull * 1000 * 1000)

static const long idle_counts[] = {10, 100, 1000, 10000};
#define N_IDLE_COUNTS (sizeof idle_counts / sizeof idle_counts[0])

typedef struct idle_bench {
    gyre_loop *loop;
    gyre_watch *idle; /* idle[0..n_watches-1] are started */
    int *idle_fds;    /* idle_fds[0..n_fds-1] are open */
    size_t n_watches, n_fds;
    gyre_watch active;
    int active_started;
    bench_guard guard;
    int guard_ready;
    int ctl_fd;  /* parent's end of the fd-passing socket (SOCK_SEQPACKET) */
    int echo_fd; /* parent's end of the active socketpair */
    pid_t helper;

    /* The round being run: round trips 1..warmup are untimed, the timed ones
     * end at `target` or once budget_ns has passed, whichever comes first. */
    uint64_t count, warmup, target, budget_ns;
    uint64_t t_start, t_end;
    int done;
    bench_outcome out;
} idle_bench;

typedef struct idle_helper_args {
    int ctl, echo;               /* the helper's ends */
    int parent_ctl, parent_echo; /* closed in the helper, or EOF never comes */
} idle_helper_args;

/* The helper: keep every fd received on ctl until a message without one,
 * then echo bytes on echo until EOF. The kept fds are never touched; holding
 * them is the helper's purpose. */
static int idle_helper(void *arg)
{
    const idle_helper_args *a = arg;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    char byte;
    ssize_t n;

    close(a->parent_ctl);
    close(a->parent_echo);
    for (;;) {
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        struct msghdr msg = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control.buf,
            .msg_controllen = sizeof control.buf,
        };

        n = recvmsg(a->ctl, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 0 : 1;
        /* A dropped fd (our own fd limit) would close a write end; leaving
         * makes every idle fd report HUP, which the parent reports. */
        if (msg.msg_flags & MSG_CTRUNC)
            return 1;
        if (!CMSG_FIRSTHDR(&msg))
            break;
    }
    for (;;) {
        n = read(a->echo, &byte, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 0 : 1;
        if (send(a->echo, &byte, 1, MSG_NOSIGNAL) != 1)
            return 1;
    }
}

static void idle_ready_cb(gyre_watch *w, uint32_t events)
{
    idle_bench *b = w->base.data;

    /* Level-triggered: without the stop it would fire every iteration until
     * the loop returns. */
    gyre_watch_stop(w);
    bench_fail(&b->out, BENCH_ERROR, "idle fd %d became ready (events 0x%x)", gyre_watch_fd(w),
               (unsigned)events);
    gyre_loop_stop(b->loop);
}

/* One byte came back: that is one round trip; send the next byte unless the
 * round is complete. Reading the clock every time costs ~20 ns against
 * round trips of several us. */
static void idle_active_cb(gyre_watch *w, uint32_t events)
{
    idle_bench *b = w->base.data;
    uint64_t now;
    char byte;
    ssize_t n;

    (void)events;
    n = recv(b->echo_fd, &byte, 1, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        bench_fail(&b->out, BENCH_ERROR, "echo helper %s",
                   n == 0 ? "closed its end" : strerror(errno));
        gyre_loop_stop(b->loop);
        return;
    }
    b->count++;
    now = bench_now_ns();
    if (b->count == b->warmup) {
        b->t_start = now;
    } else if (b->count > b->warmup &&
               (b->count == b->target || now - b->t_start >= b->budget_ns)) {
        b->t_end = now;
        b->done = 1;
        gyre_loop_stop(b->loop);
        return;
    }
    if (send(b->echo_fd, &byte, 1, MSG_NOSIGNAL) != 1) {
        bench_fail(&b->out, BENCH_ERROR, "send to echo helper: %s", strerror(errno));
        gyre_loop_stop(b->loop);
    }
}

static void idle_teardown(idle_bench *b)
{
    size_t i;

    if (b->active_started)
        gyre_watch_stop(&b->active);
    for (i = 0; i < b->n_watches; i++)
        gyre_watch_stop(&b->idle[i]);
    if (b->guard_ready)
        bench_guard_disarm(&b->guard);
    /* Everything of the loop is stopped, so -EBUSY here is a gyre bug; the
     * loop is then leaked rather than freed under gyre's feet. */
    if (b->loop)
        (void)gyre_loop_free(b->loop);
    for (i = 0; i < b->n_fds; i++)
        close(b->idle_fds[i]);
    /* Closing the sockets first lets the helper leave on EOF by itself. */
    if (b->ctl_fd >= 0)
        close(b->ctl_fd);
    if (b->echo_fd >= 0)
        close(b->echo_fd);
    if (b->helper > 0)
        (void)bench_reap(b->helper);
    free(b->idle);
    free(b->idle_fds);
}

/* Starts the helper, the loop and the n idle watches; b->out says how that
 * went. The caller tears down either way. */
static void idle_setup(idle_bench *b, const char *backend, long n)
{
    gyre_loop_opts opts = {0};
    idle_helper_args args;
    int ctl[2], echo[2], p[2], rc;
    long i;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) != 0)
        goto sys_error;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, echo) != 0) {
        close(ctl[0]);
        close(ctl[1]);
        goto sys_error;
    }
    b->ctl_fd = ctl[0];
    b->echo_fd = echo[0];
    /* Forked before the loop and the pipes exist, so the helper holds no fd
     * of ours besides its two sockets. */
    args = (idle_helper_args){ctl[1], echo[1], ctl[0], echo[0]};
    b->helper = bench_spawn(idle_helper, &args);
    close(ctl[1]);
    close(echo[1]);
    if (b->helper < 0) {
        errno = -b->helper;
        goto sys_error;
    }
    /* Only this end: the helper's reads are meant to block. */
    if (fcntl(b->echo_fd, F_SETFL, O_NONBLOCK) != 0)
        goto sys_error;

    opts.backend = backend;
    rc = gyre_loop_new(&b->loop, &opts);
    if (rc < 0) {
        b->loop = NULL;
        bench_fail(&b->out, BENCH_ERROR, "gyre_loop_new: %s", gyre_strerror(rc));
        return;
    }
    b->idle = calloc((size_t)n, sizeof *b->idle);
    b->idle_fds = calloc((size_t)n, sizeof *b->idle_fds);
    if (!b->idle || !b->idle_fds)
        goto sys_error;

    for (i = 0; i < n; i++) {
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
            goto sys_error;
        b->idle_fds[b->n_fds++] = p[0];
        rc = bench_send_fd(b->ctl_fd, p[1]);
        close(p[1]);
        if (rc < 0) {
            errno = -rc;
            goto sys_error;
        }
        gyre_watch_init(b->loop, &b->idle[i], p[0]);
        b->idle[i].base.data = b;
        rc = gyre_watch_start(&b->idle[i], GYRE_IN, idle_ready_cb);
        if (rc == -EINVAL && p[0] >= FD_SETSIZE) {
            bench_fail(&b->out, BENCH_NA, "fd %d >= FD_SETSIZE (%d)", p[0], FD_SETSIZE);
            return;
        }
        if (rc < 0) {
            bench_fail(&b->out, BENCH_ERROR, "gyre_watch_start(fd %d): %s", p[0],
                       gyre_strerror(rc));
            return;
        }
        b->n_watches++;
    }
    /* The message without an fd: the helper switches to echoing. */
    if (send(b->ctl_fd, "E", 1, MSG_NOSIGNAL) != 1)
        goto sys_error;

    gyre_watch_init(b->loop, &b->active, b->echo_fd);
    b->active.base.data = b;
    rc = gyre_watch_start(&b->active, GYRE_IN, idle_active_cb);
    if (rc < 0) {
        bench_fail(&b->out, BENCH_ERROR, "gyre_watch_start(active): %s", gyre_strerror(rc));
        return;
    }
    b->active_started = 1;
    bench_guard_init(&b->guard, b->loop, &b->out);
    b->guard_ready = 1;
    return;

sys_error:
    bench_fail(&b->out, BENCH_ERROR, "setup: %s", strerror(errno));
}

/* One round: up to `msgs` timed round trips within budget_ns, after
 * IDLE_WARMUP untimed ones. Returns the mean round-trip time in us; b->out
 * says whether it is valid. */
static double idle_round(idle_bench *b, uint64_t msgs, uint64_t budget_ns)
{
    int rc;

    b->count = 0;
    b->warmup = IDLE_WARMUP;
    b->target = IDLE_WARMUP + msgs;
    b->budget_ns = budget_ns;
    b->done = 0;
    rc = bench_guard_arm(&b->guard);
    if (rc < 0) {
        bench_fail(&b->out, BENCH_ERROR, "guard timer: %s", gyre_strerror(rc));
        return 0;
    }
    if (send(b->echo_fd, "x", 1, MSG_NOSIGNAL) != 1)
        bench_fail(&b->out, BENCH_ERROR, "send to echo helper: %s", strerror(errno));
    else if ((rc = gyre_loop_run(b->loop, GYRE_RUN_DEFAULT)) < 0)
        bench_fail(&b->out, BENCH_ERROR, "gyre_loop_run: %s", gyre_strerror(rc));
    else if (!b->done)
        bench_fail(&b->out, BENCH_ERROR, "loop returned after %llu of %llu round trips",
                   (unsigned long long)b->count, (unsigned long long)b->target);
    bench_guard_disarm(&b->guard);
    if (!b->done)
        return 0;
    return (double)(b->t_end - b->t_start) / (double)(b->count - b->warmup) / 1000.0;
}

/* Measures one N on one backend and records the result. Returns 0 or -1
 * when the result cannot be recorded. */
static int idle_measure(bench_ctx *ctx, const char *backend, long n, long fd_limit)
{
    idle_bench b = {.ctl_fd = -1, .echo_fd = -1};
    uint64_t msgs = ctx->quick ? 2000 : 20000;
    uint64_t budget_ns = ctx->quick ? IDLE_QUICK_BUDGET_NS : IDLE_BUDGET_NS;
    double rtt[BENCH_MAX_ROUNDS];
    bench_stats stats = {0};
    char column[32];
    int r;

    snprintf(column, sizeof column, "N=%ld", n);
    if (n + IDLE_FD_MARGIN > fd_limit) {
        bench_fail(&b.out, BENCH_NA, "needs %ld fds, RLIMIT_NOFILE is %ld", n + IDLE_FD_MARGIN,
                   fd_limit);
        return bench_record(ctx, &bench_scenario_idle, backend, column, n, b.out.status, NULL,
                            b.out.note);
    }
    bench_progress("[idle] %s N=%ld setup", backend, n);
    idle_setup(&b, backend, n);
    for (r = 0; b.out.status == BENCH_OK && r < ctx->rounds; r++) {
        bench_progress("[idle] %s N=%ld round %d/%d", backend, n, r + 1, ctx->rounds);
        rtt[r] = idle_round(&b, msgs, budget_ns);
    }
    if (b.out.status == BENCH_OK)
        stats = bench_stats_of(rtt, r);
    else if (r > 0)
        /* Setup passed, so a round failed: say which. */
        snprintf(b.out.note + strlen(b.out.note), sizeof b.out.note - strlen(b.out.note),
                 " (round %d)", r);
    idle_teardown(&b);
    return bench_record(ctx, &bench_scenario_idle, backend, column, n, b.out.status, &stats,
                        b.out.note);
}

static int idle_run(bench_ctx *ctx, const char *backend)
{
    long fd_limit = bench_raise_nofile();
    size_t i;

    for (i = 0; i < N_IDLE_COUNTS; i++)
        if (idle_measure(ctx, backend, idle_counts[i], fd_limit) != 0)
            return -1;
    return 0;
}

static const bench_plot idle_plot = {
    .xlabel = "idle fds registered (N)",
    .ylabel = "round trip (us)",
    /* Both axes: the figures span 10 us to over 1 ms, and on a linear y
     * axis epoll's flat line would sit on the x axis. */
    .logx = 1,
    .logy = 1,
};

const bench_scenario bench_scenario_idle = {
    .name = "idle",
    .summary = "round trip of one active socketpair with N idle fds watched",
    .title = "idle-fd round trip",
    .unit = "us",
    .run = idle_run,
    .plot = &idle_plot,
};
