/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-watch.c: readiness watches on every backend -- which bits each kind of
 * fd reports, level and edge triggering, changing and stopping watches from
 * callbacks, stale events after stop/close/reuse, scale, and argument checks.
 *
 * These tests also run under GYRE_FAULTS, where an injected EINTR makes an
 * iteration dispatch nothing: they wait for outcomes (test_run_until) and
 * only use fixed numbers of iterations to show that nothing more happens.
 *
 * select(2) cannot tell hang-up, error or peer shutdown from plain readiness
 * (the kernel folds POLLHUP/POLLERR into the read and write sets), so on the
 * select backend those bits are asserted as "readiness was reported";
 * poll and epoll must report the exact bits.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"

/* A watch that records what it was told. */
struct rec_watch {
    gyre_watch w;
    int fired;
    uint32_t events; /* of the last call */
};

static void rec_cb(gyre_watch *w, uint32_t events)
{
    struct rec_watch *r = (struct rec_watch *)w;

    r->fired++;
    r->events = events;
}

static void rec_stop_cb(gyre_watch *w, uint32_t events)
{
    rec_cb(w, events);
    ASSERT_EQ(gyre_watch_stop(w), 0);
}

static void never_cb(gyre_watch *w, uint32_t events)
{
    (void)w;
    test_fail(__FILE__, __LINE__, "callback that must not run got events 0x%x", events);
}

static void watch_begin(gyre_loop *loop, struct rec_watch *r, int fd, uint32_t events,
                        gyre_watch_cb cb)
{
    ASSERT_EQ(gyre_watch_init(loop, &r->w, fd), 0);
    ASSERT_EQ(gyre_watch_start(&r->w, events, cb), 0);
    ASSERT_EQ(gyre_handle_active(&r->w.base), 1);
}

/* Runs a stopping watch on fd until it fires once and returns its events. */
static uint32_t events_once(gyre_loop *loop, int fd, uint32_t events)
{
    struct rec_watch r = {0};

    watch_begin(loop, &r, fd, events, rec_stop_cb);
    test_run_until(loop, &r.fired, 1);
    ASSERT_EQ(r.fired, 1);
    ASSERT_EQ(gyre_handle_active(&r.w.base), 0);
    return r.events;
}

void test_watch_pipe_in(void)
{
    gyre_loop *loop = test_loop_new();
    int p[2];
    char c;

    test_pipe(p);
    test_write_bytes(p[1], "x", 1);
    ASSERT_EQ(events_once(loop, p[0], GYRE_IN), GYRE_IN);
    test_read_bytes(p[0], &c, 1);
    ASSERT_EQ(c, 'x');
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_watch_pipe_out(void)
{
    gyre_loop *loop = test_loop_new();
    int p[2];

    test_pipe(p);
    ASSERT_EQ(events_once(loop, p[1], GYRE_OUT), GYRE_OUT);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_watch_pipe_hup(void)
{
    gyre_loop *loop = test_loop_new();
    int p[2];
    uint32_t ev;
    char c;

    test_pipe(p);
    test_close(p[1]);
    ev = events_once(loop, p[0], GYRE_IN);
    if (test_backend_is("select"))
        ASSERT_TRUE(ev != 0 && (ev & ~(GYRE_IN | GYRE_HUP)) == 0);
    else
        ASSERT_EQ(ev, GYRE_HUP);
    ASSERT_EQ(read(p[0], &c, 1), 0);
    test_close(p[0]);
    test_loop_free(loop);
}

void test_watch_pipe_err(void)
{
    gyre_loop *loop = test_loop_new();
    int p[2];
    uint32_t ev;

    /* The test's own write below must see EPIPE rather than die. */
    signal(SIGPIPE, SIG_IGN);
    test_pipe(p);
    test_close(p[0]);
    ev = events_once(loop, p[1], GYRE_OUT);
    if (test_backend_is("select"))
        ASSERT_TRUE(ev != 0 && (ev & ~(GYRE_OUT | GYRE_ERR)) == 0);
    else
        ASSERT_TRUE((ev & GYRE_ERR) != 0 && (ev & ~(GYRE_OUT | GYRE_ERR)) == 0);
    ASSERT_EQ(write(p[1], "x", 1), -1);
    ASSERT_EQ(errno, EPIPE);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_watch_socketpair_inout(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch r = {0};
    int sp[2], before;
    char buf[3];

    test_socketpair(sp);
    test_write_bytes(sp[0], "abc", 3);
    watch_begin(loop, &r, sp[1], GYRE_IN | GYRE_OUT, rec_cb);
    test_run_until(loop, &r.fired, 1);
    ASSERT_EQ(r.events, GYRE_IN | GYRE_OUT);
    test_read_bytes(sp[1], buf, 3);
    ASSERT_EQ(memcmp(buf, "abc", 3), 0);
    before = r.fired;
    test_run_until(loop, &r.fired, before + 1);
    ASSERT_EQ(r.events, GYRE_OUT);
    ASSERT_EQ(gyre_watch_stop(&r.w), 0);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

void test_watch_rdhup(void)
{
    gyre_loop *loop = test_loop_new();
    int asked[2], unasked[2];
    uint32_t ev;
    char c;

    test_socketpair(asked);
    test_socketpair(unasked);
    ASSERT_SYS(shutdown(asked[0], SHUT_WR));
    ASSERT_SYS(shutdown(unasked[0], SHUT_WR));

    ev = events_once(loop, asked[1], GYRE_IN | GYRE_RDHUP);
    if (test_backend_is("select"))
        ASSERT_TRUE((ev & GYRE_IN) != 0 && (ev & ~(GYRE_IN | GYRE_RDHUP)) == 0);
    else
        ASSERT_EQ(ev, GYRE_IN | GYRE_RDHUP);
    ASSERT_EQ(read(asked[1], &c, 1), 0);

    /* Not asked for, so not reported: only GYRE_ERR and GYRE_HUP are implied. */
    ev = events_once(loop, unasked[1], GYRE_IN);
    ASSERT_EQ(ev, GYRE_IN);

    test_close(asked[0]);
    test_close(asked[1]);
    test_close(unasked[0]);
    test_close(unasked[1]);
    test_loop_free(loop);
}

void test_watch_tcp_connect(void)
{
    gyre_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int sfd, err = -1;
    socklen_t len = sizeof err;

    ASSERT_SYS(cfd);
    if (connect(cfd, (struct sockaddr *)&addr, sizeof addr) < 0)
        ASSERT_EQ(errno, EINPROGRESS);
    /* Connect completion is writability; acceptance is the listener's IN. */
    ASSERT_EQ(events_once(loop, cfd, GYRE_OUT), GYRE_OUT);
    ASSERT_SYS(getsockopt(cfd, SOL_SOCKET, SO_ERROR, &err, &len));
    ASSERT_EQ(err, 0);
    ASSERT_EQ(events_once(loop, lfd, GYRE_IN), GYRE_IN);
    sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_SYS(sfd);
    test_close(sfd);
    test_close(cfd);
    test_close(lfd);
    test_loop_free(loop);
}

void test_watch_tcp_accept_data(void)
{
    gyre_loop *loop = test_loop_new();
    int cfd, sfd;
    char buf[16];
    uint32_t ev;

    test_tcp_pair(&cfd, &sfd);
    test_write_bytes(cfd, "hello", 5);
    ASSERT_EQ(events_once(loop, sfd, GYRE_IN), GYRE_IN);
    test_read_bytes(sfd, buf, 5);
    ASSERT_EQ(memcmp(buf, "hello", 5), 0);
    test_write_bytes(sfd, "world!", 6);
    ASSERT_EQ(events_once(loop, cfd, GYRE_IN), GYRE_IN);
    test_read_bytes(cfd, buf, 6);
    ASSERT_EQ(memcmp(buf, "world!", 6), 0);

    /* Peer closes: EOF is readable, and RDHUP appears where asked and known. */
    test_close(cfd);
    ev = events_once(loop, sfd, GYRE_IN | GYRE_RDHUP);
    ASSERT_TRUE((ev & GYRE_IN) != 0);
    if (!test_backend_is("select"))
        ASSERT_TRUE((ev & GYRE_RDHUP) != 0);
    ASSERT_EQ(read(sfd, buf, sizeof buf), 0);
    test_close(sfd);
    test_loop_free(loop);
}

static void read_one_cb(gyre_watch *w, uint32_t events)
{
    char c;

    rec_cb(w, events);
    ASSERT_EQ(read(gyre_watch_fd(w), &c, 1), 1);
}

void test_watch_level(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch r = {0};
    int p[2];

    test_pipe(p);
    test_write_bytes(p[1], "abc", 3);
    watch_begin(loop, &r, p[0], GYRE_IN, read_one_cb);
    /* One byte per call: the unread rest must bring the callback back
     * without any new data arriving. */
    test_run_until(loop, &r.fired, 3);
    test_run_nowait(loop, 5);
    ASSERT_EQ(r.fired, 3);
    ASSERT_EQ(gyre_watch_stop(&r.w), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_watch_edge(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch r = {0};
    int p[2];

    test_pipe(p);
    ASSERT_EQ(gyre_watch_init(loop, &r.w, p[0]), 0);
    if (!(gyre_loop_caps(loop) & GYRE_CAP_EDGE)) {
        ASSERT_EQ(gyre_watch_start(&r.w, GYRE_IN | GYRE_EDGE, rec_cb), -ENOTSUP);
        ASSERT_EQ(gyre_handle_active(&r.w.base), 0);
        SKIP("backend lacks GYRE_CAP_EDGE");
    }
    test_write_bytes(p[1], "ab", 2);
    ASSERT_EQ(gyre_watch_start(&r.w, GYRE_IN | GYRE_EDGE, read_one_cb), 0);
    test_run_until(loop, &r.fired, 1);
    /* One byte is still unread, but no new edge: no call. */
    test_run_nowait(loop, 5);
    ASSERT_EQ(r.fired, 1);
    test_write_bytes(p[1], "c", 1);
    test_run_until(loop, &r.fired, 2);
    test_run_nowait(loop, 5);
    ASSERT_EQ(r.fired, 2);
    ASSERT_EQ(r.events, GYRE_IN);
    ASSERT_EQ(gyre_watch_stop(&r.w), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_watch_modify(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch r = {0};
    int sp[2];

    test_socketpair(sp);
    watch_begin(loop, &r, sp[1], GYRE_IN, never_cb);
    test_run_nowait(loop, 3);
    /* Same watch, new events and callback: IN -> OUT. */
    ASSERT_EQ(gyre_watch_start(&r.w, GYRE_OUT, rec_stop_cb), 0);
    test_run_until(loop, &r.fired, 1);
    ASSERT_EQ(r.events, GYRE_OUT);
    /* And back to IN, which data now satisfies. */
    test_write_bytes(sp[0], "x", 1);
    ASSERT_EQ(gyre_watch_start(&r.w, GYRE_IN, rec_stop_cb), 0);
    test_run_until(loop, &r.fired, 2);
    ASSERT_EQ(r.events, GYRE_IN);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

void test_watch_failed_modify_keeps(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch r = {0};
    int p[2];

    test_pipe(p);
    test_write_bytes(p[1], "x", 1);
    watch_begin(loop, &r, p[0], GYRE_IN, rec_stop_cb);
    ASSERT_EQ(gyre_watch_start(&r.w, 0x100u, never_cb), -EINVAL);
    ASSERT_EQ(gyre_watch_start(&r.w, GYRE_OUT, NULL), -EINVAL);
    ASSERT_EQ(gyre_watch_start(&r.w, 0, never_cb), -EINVAL);
    if (!(gyre_loop_caps(loop) & GYRE_CAP_EDGE))
        ASSERT_EQ(gyre_watch_start(&r.w, GYRE_OUT | GYRE_EDGE, never_cb), -ENOTSUP);
    ASSERT_EQ(gyre_handle_active(&r.w.base), 1);
    test_run_until(loop, &r.fired, 1);
    ASSERT_EQ(r.events, GYRE_IN);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_watch_stop_self(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch r = {0};
    int p[2];

    test_pipe(p);
    test_write_bytes(p[1], "x", 1);
    /* Data stays unread, so only the stop keeps it from firing again. */
    watch_begin(loop, &r, p[0], GYRE_IN, rec_stop_cb);
    test_run_until(loop, &r.fired, 1);
    test_run_nowait(loop, 5);
    ASSERT_EQ(r.fired, 1);
    ASSERT_EQ(gyre_watch_stop(&r.w), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* Two fds readable in one batch; whichever callback runs first stops and
 * frees the other watch, whose event is already fetched. */
static gyre_watch *sibling[2];
static int sibling_calls;

static void sibling_cb(gyre_watch *w, uint32_t events)
{
    int self = *(int *)w->base.data;

    (void)events;
    sibling_calls++;
    ASSERT_TRUE(sibling[1 - self] != NULL);
    ASSERT_EQ(gyre_watch_stop(sibling[1 - self]), 0);
    test_poison_free(sibling[1 - self], sizeof(gyre_watch));
    sibling[1 - self] = NULL;
    ASSERT_EQ(gyre_watch_stop(w), 0);
}

void test_watch_stop_sibling(void)
{
    static int ids[2] = {0, 1};
    gyre_loop *loop = test_loop_new();
    int p[2][2], i;

    for (i = 0; i < 2; i++) {
        test_pipe(p[i]);
        test_write_bytes(p[i][1], "x", 1);
        sibling[i] = malloc(sizeof(gyre_watch));
        ASSERT_TRUE(sibling[i] != NULL);
        ASSERT_EQ(gyre_watch_init(loop, sibling[i], p[i][0]), 0);
        sibling[i]->base.data = &ids[i];
        ASSERT_EQ(gyre_watch_start(sibling[i], GYRE_IN, sibling_cb), 0);
    }
    test_run_until(loop, &sibling_calls, 1);
    test_run_nowait(loop, 5);
    ASSERT_EQ(sibling_calls, 1);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    for (i = 0; i < 2; i++) {
        free(sibling[i]);
        test_close(p[i][0]);
        test_close(p[i][1]);
    }
    test_loop_free(loop);
}

/* Replaces the pipe read end `fd` by the read end of a fresh, empty pipe
 * under the same number, keeping the old pipe's description alive (and
 * readable) through *old_dup: a registration that survived the stop would
 * still be reported by the kernel (epoll keys on the description). */
static void reuse_fd_number(int fd, int *old_dup, int fresh[2])
{
    *old_dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    ASSERT_SYS(*old_dup);
    test_close(fd);
    test_pipe(fresh);
    /* The lowest free number is usually fd itself; force it otherwise. */
    if (fresh[0] != fd) {
        ASSERT_EQ(dup3(fresh[0], fd, O_CLOEXEC), fd);
        test_close(fresh[0]);
        fresh[0] = fd;
    }
}

void test_watch_fd_reuse(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch old = {0}, fresh = {0};
    int p[2], q[2], old_dup;

    test_pipe(p);
    test_write_bytes(p[1], "x", 1);
    watch_begin(loop, &old, p[0], GYRE_IN, rec_stop_cb);
    test_run_until(loop, &old.fired, 1);
    reuse_fd_number(p[0], &old_dup, q);
    watch_begin(loop, &fresh, q[0], GYRE_IN, rec_stop_cb);
    test_run_nowait(loop, 5);
    ASSERT_EQ(old.fired, 1);
    ASSERT_EQ(fresh.fired, 0);
    /* The new registration itself works. */
    test_write_bytes(q[1], "y", 1);
    test_run_until(loop, &fresh.fired, 1);
    ASSERT_EQ(fresh.events, GYRE_IN);
    test_close(old_dup);
    test_close(p[1]);
    test_close(q[0]);
    test_close(q[1]);
    test_loop_free(loop);
}

/* As above, but inside the batch: the first callback stops the other watch
 * (whose event is already fetched), closes its fd, reuses the number and
 * watches it again. The fetched event must not reach the new watch. */
static struct {
    gyre_watch w[2];
    int rfd[2], old_dup, fresh_pipe[2];
    struct rec_watch fresh;
    int calls;
} inb;

static void inb_cb(gyre_watch *w, uint32_t events)
{
    int self = w == &inb.w[0] ? 0 : 1;
    int other = 1 - self;

    (void)events;
    inb.calls++;
    ASSERT_EQ(gyre_watch_stop(&inb.w[other]), 0);
    reuse_fd_number(inb.rfd[other], &inb.old_dup, inb.fresh_pipe);
    ASSERT_EQ(gyre_watch_init(w->base.data, &inb.fresh.w, inb.fresh_pipe[0]), 0);
    ASSERT_EQ(gyre_watch_start(&inb.fresh.w, GYRE_IN, rec_stop_cb), 0);
    ASSERT_EQ(gyre_watch_stop(w), 0);
}

void test_watch_fd_reuse_in_batch(void)
{
    gyre_loop *loop = test_loop_new();
    int p[2][2], i;

    for (i = 0; i < 2; i++) {
        test_pipe(p[i]);
        test_write_bytes(p[i][1], "x", 1);
        inb.rfd[i] = p[i][0];
        ASSERT_EQ(gyre_watch_init(loop, &inb.w[i], p[i][0]), 0);
        inb.w[i].base.data = loop;
        ASSERT_EQ(gyre_watch_start(&inb.w[i], GYRE_IN, inb_cb), 0);
    }
    test_run_until(loop, &inb.calls, 1);
    test_run_nowait(loop, 5);
    ASSERT_EQ(inb.calls, 1);
    ASSERT_EQ(inb.fresh.fired, 0);
    test_write_bytes(inb.fresh_pipe[1], "y", 1);
    test_run_until(loop, &inb.fresh.fired, 1);
    ASSERT_EQ(inb.fresh.events, GYRE_IN);
    test_close(inb.old_dup);
    test_close(inb.fresh_pipe[0]);
    test_close(inb.fresh_pipe[1]);
    for (i = 0; i < 2; i++) {
        if (p[i][0] != inb.fresh_pipe[0])
            test_close(p[i][0]);
        test_close(p[i][1]);
    }
    test_loop_free(loop);
}

/* Watches every fd in fds (dups of a few pipes' read ends), makes them all
 * readable at once and checks each watch fires exactly once. */
struct many_watch {
    gyre_watch w;
    int fired;
};

static int many_total;

static void many_cb(gyre_watch *w, uint32_t events)
{
    ASSERT_EQ(events, GYRE_IN);
    ((struct many_watch *)w)->fired++;
    many_total++;
    ASSERT_EQ(gyre_watch_stop(w), 0);
}

enum {
    FDS_PER_PIPE = 64
};

/* first_fd < 0: lowest free numbers; otherwise numbers from first_fd up. */
static void many_fire(gyre_loop *loop, size_t n, int first_fd)
{
    size_t npipes = (n + FDS_PER_PIPE - 1) / FDS_PER_PIPE, i;
    int(*pipes)[2] = calloc(npipes, sizeof *pipes);
    struct many_watch *ws = calloc(n, sizeof *ws);
    int *fds = calloc(n, sizeof *fds);

    ASSERT_TRUE(pipes != NULL && ws != NULL && fds != NULL);
    many_total = 0;
    for (i = 0; i < npipes; i++)
        test_pipe(pipes[i]);
    for (i = 0; i < n; i++) {
        int min = first_fd < 0 ? 0 : first_fd + (int)i;

        fds[i] = fcntl(pipes[i / FDS_PER_PIPE][0], F_DUPFD_CLOEXEC, min);
        ASSERT_SYS(fds[i]);
        ASSERT_EQ(gyre_watch_init(loop, &ws[i].w, fds[i]), 0);
        ASSERT_EQ(gyre_watch_start(&ws[i].w, GYRE_IN, many_cb), 0);
    }
    for (i = 0; i < npipes; i++)
        test_write_bytes(pipes[i][1], "x", 1);
    test_run_until(loop, &many_total, (int)n);
    test_run_nowait(loop, 3);
    ASSERT_EQ(many_total, n);
    for (i = 0; i < n; i++) {
        if (ws[i].fired != 1)
            test_fail(__FILE__, __LINE__, "watch %zu (fd %d) fired %d times", i, fds[i],
                      ws[i].fired);
        test_close(fds[i]);
    }
    for (i = 0; i < npipes; i++) {
        test_close(pipes[i][0]);
        test_close(pipes[i][1]);
    }
    free(fds);
    free(ws);
    free(pipes);
}

void test_watch_many(void)
{
    gyre_loop *loop = test_loop_new();
    size_t want = test_scale(2000);
    size_t nofile = test_nofile(want + 256);

    ASSERT_GT(nofile, 256);
    if (want > nofile - 256)
        want = nofile - 256;
    /* select can only watch fds below FD_SETSIZE: as many as fit there. */
    if (!(gyre_loop_caps(loop) & GYRE_CAP_ANY_FD) && want > FD_SETSIZE - 128)
        want = FD_SETSIZE - 128;
    many_fire(loop, want, -1);
    test_loop_free(loop);
}

void test_watch_high_fds(void)
{
    gyre_loop *loop = test_loop_new();
    size_t n = 200;

    if (!(gyre_loop_caps(loop) & GYRE_CAP_ANY_FD))
        SKIP("backend lacks GYRE_CAP_ANY_FD");
    ASSERT_GE(test_nofile(FD_SETSIZE + n + 64), FD_SETSIZE + n + 64);
    /* Straddles FD_SETSIZE, where fd_set-sized tables would end. */
    many_fire(loop, n, FD_SETSIZE - (int)n / 2);
    test_loop_free(loop);
}

void test_watch_eexist(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_loop *other = test_loop_new();
    struct rec_watch a = {0}, b = {0}, c = {0};
    int p[2];

    test_pipe(p);
    watch_begin(loop, &a, p[0], GYRE_IN, never_cb);
    ASSERT_EQ(gyre_watch_init(loop, &b.w, p[0]), 0);
    ASSERT_EQ(gyre_watch_start(&b.w, GYRE_OUT, never_cb), -EEXIST);
    ASSERT_EQ(gyre_handle_active(&b.w.base), 0);
    /* Another loop may watch the same fd. */
    watch_begin(other, &c, p[0], GYRE_IN, never_cb);
    /* Once the first stops, the fd is free on this loop. */
    ASSERT_EQ(gyre_watch_stop(&a.w), 0);
    ASSERT_EQ(gyre_watch_start(&b.w, GYRE_IN, never_cb), 0);
    test_run_nowait(loop, 2);
    ASSERT_EQ(gyre_watch_stop(&b.w), 0);
    ASSERT_EQ(gyre_watch_stop(&c.w), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(other);
    test_loop_free(loop);
}

void test_watch_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    gyre_watch w;
    int p[2];

    test_pipe(p);
    ASSERT_EQ(gyre_watch_init(loop, &w, -1), -EINVAL);
    ASSERT_EQ(gyre_watch_init(loop, &w, p[0]), 0);
    ASSERT_EQ(gyre_watch_fd(&w), p[0]);
    ASSERT_EQ(gyre_watch_stop(&w), 0); /* idempotent, never started */
    ASSERT_EQ(gyre_watch_start(&w, GYRE_IN, NULL), -EINVAL);
    ASSERT_EQ(gyre_watch_start(&w, 0, never_cb), -EINVAL);
    ASSERT_EQ(gyre_watch_start(&w, GYRE_IN | 0x100u, never_cb), -EINVAL);
    ASSERT_EQ(gyre_watch_start(&w, GYRE_IN | 0x40000000u, never_cb), -EINVAL);
    if (gyre_loop_caps(loop) & GYRE_CAP_EDGE)
        ASSERT_EQ(gyre_watch_start(&w, GYRE_EDGE, never_cb), -EINVAL);
    ASSERT_EQ(gyre_handle_active(&w.base), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_watch_fd_setsize(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch below = {0}, at = {0};
    int p[2], fd_below, fd_at;

    ASSERT_GE(test_nofile(FD_SETSIZE + 64), FD_SETSIZE + 64);
    test_pipe(p);
    fd_below = fcntl(p[0], F_DUPFD_CLOEXEC, FD_SETSIZE - 1);
    fd_at = fcntl(p[0], F_DUPFD_CLOEXEC, FD_SETSIZE);
    ASSERT_EQ(fd_below, FD_SETSIZE - 1);
    ASSERT_EQ(fd_at, FD_SETSIZE);
    test_write_bytes(p[1], "x", 1);
    watch_begin(loop, &below, fd_below, GYRE_IN, rec_stop_cb);
    ASSERT_EQ(gyre_watch_init(loop, &at.w, fd_at), 0);
    if (gyre_loop_caps(loop) & GYRE_CAP_ANY_FD) {
        ASSERT_EQ(gyre_watch_start(&at.w, GYRE_IN, rec_stop_cb), 0);
        test_run_until(loop, &at.fired, 1);
        ASSERT_EQ(at.events, GYRE_IN);
    } else {
        ASSERT_EQ(gyre_watch_start(&at.w, GYRE_IN, rec_stop_cb), -EINVAL);
        ASSERT_EQ(gyre_handle_active(&at.w.base), 0);
    }
    test_run_until(loop, &below.fired, 1);
    ASSERT_EQ(below.events, GYRE_IN);
    test_close(fd_at);
    test_close(fd_below);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_watch_regular_file(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_watch r = {0};
    char path[] = "/tmp/gyre-test-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);

    ASSERT_SYS(fd);
    ASSERT_SYS(unlink(path));
    ASSERT_EQ(gyre_watch_init(loop, &r.w, fd), 0);
    if (test_backend_is("epoll")) {
        ASSERT_EQ(gyre_watch_start(&r.w, GYRE_IN, rec_stop_cb), -EPERM);
        ASSERT_EQ(gyre_handle_active(&r.w.base), 0);
    } else {
        /* poll and select report regular files as always ready. */
        ASSERT_EQ(gyre_watch_start(&r.w, GYRE_IN, rec_stop_cb), 0);
        test_run_until(loop, &r.fired, 1);
        ASSERT_EQ(r.events, GYRE_IN);
    }
    test_close(fd);
    test_loop_free(loop);
}

/* Many clients connect at once; the listener's callback accepts until
 * EAGAIN. Sized by somaxconn and RLIMIT_NOFILE (two fds per connection). */
enum {
    ACCEPT_MAX = 1024
};
static int accept_lfd, accepted, accept_fds[ACCEPT_MAX];

static void accept_cb(gyre_watch *w, uint32_t events)
{
    int fd;

    (void)w;
    ASSERT_EQ(events, GYRE_IN);
    while ((fd = accept4(accept_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        ASSERT_LT(accepted, ACCEPT_MAX);
        accept_fds[accepted++] = fd;
    }
    ASSERT_EQ(errno, EAGAIN);
}

static size_t somaxconn(void)
{
    FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
    unsigned long v = 128;

    if (f != NULL) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 128;
        fclose(f);
    }
    return v;
}

void test_watch_tcp_accept_many(void)
{
    gyre_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    struct rec_watch lw = {0};
    size_t n = test_scale(200), i;
    size_t nofile = test_nofile(2 * n + 64);
    int *clients;

    if (n > somaxconn())
        n = somaxconn();
    if (n > ACCEPT_MAX)
        n = ACCEPT_MAX;
    if (2 * n + 64 > nofile)
        n = (nofile - 64) / 2;
    if (!(gyre_loop_caps(loop) & GYRE_CAP_ANY_FD) && 2 * n + 64 > FD_SETSIZE)
        n = (FD_SETSIZE - 64) / 2;
    clients = calloc(n, sizeof *clients);
    ASSERT_TRUE(clients != NULL);
    accept_lfd = test_tcp_listener(&addr);
    ASSERT_SYS(listen(accept_lfd, (int)n));
    watch_begin(loop, &lw, accept_lfd, GYRE_IN, accept_cb);
    for (i = 0; i < n; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ASSERT_SYS(clients[i]);
        if (connect(clients[i], (struct sockaddr *)&addr, sizeof addr) < 0)
            ASSERT_EQ(errno, EINPROGRESS);
    }
    test_run_until(loop, &accepted, (int)n);
    test_run_nowait(loop, 3);
    ASSERT_EQ(accepted, n);
    ASSERT_EQ(gyre_watch_stop(&lw.w), 0);
    for (i = 0; i < n; i++) {
        test_close(clients[i]);
        test_close(accept_fds[i]);
    }
    test_close(accept_lfd);
    free(clients);
    test_loop_free(loop);
}

/* Many idle watches started at once, more than an io_uring SQ holds, then
 * one active fd started last: the active one must still be told. (io_uring
 * once wrote the first SQ-full of poll arms, then blocked waiting for a
 * completion, with the rest, the active fd's among them, never submitted.) */
static int idle_fired;

static void idle_never_cb(gyre_watch *w, uint32_t events)
{
    (void)w;
    (void)events;
    idle_fired++;
}

void test_watch_many_idle(void)
{
    gyre_loop *loop = test_loop_new();
    size_t want = test_scale(1000), n, i;
    struct rec_watch r = {0};
    gyre_watch *ws;
    int(*pipes)[2];
    int p[2];

    /* Two fds per idle pipe, within the descriptor limit and, on select,
     * below FD_SETSIZE. */
    n = test_nofile(2 * want + 64);
    n = n > 2 * want + 64 ? want : (n - 64) / 2;
    if (test_backend_is("select") && n > 400)
        n = 400;
    ws = calloc(n, sizeof *ws);
    pipes = calloc(n, sizeof *pipes);
    ASSERT_TRUE(ws != NULL && pipes != NULL);
    for (i = 0; i < n; i++) {
        test_pipe(pipes[i]);
        ASSERT_EQ(gyre_watch_init(loop, &ws[i], pipes[i][0]), 0);
        ASSERT_EQ(gyre_watch_start(&ws[i], GYRE_IN, idle_never_cb), 0);
    }
    test_pipe(p);
    test_write_bytes(p[1], "x", 1);
    watch_begin(loop, &r, p[0], GYRE_IN, rec_stop_cb);
    test_run_until(loop, &r.fired, 1);
    ASSERT_EQ(r.events, GYRE_IN);
    ASSERT_EQ(idle_fired, 0);
    for (i = 0; i < n; i++) {
        ASSERT_EQ(gyre_watch_stop(&ws[i]), 0);
        test_close(pipes[i][0]);
        test_close(pipes[i][1]);
    }
    test_close(p[0]);
    test_close(p[1]);
    free(ws);
    free(pipes);
    test_loop_free(loop);
}
