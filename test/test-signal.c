/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-signal.c: signal watchers -- delivery, coalescing, several watchers on
 * one and on several loops (G1), restoring the previous disposition, and
 * argument checks.
 *
 * Signals are process-wide and each test runs in its own process, so tests
 * may install handlers freely. A gyre watcher must be active before the test
 * raises its signal, or the default disposition would end the process.
 */
#include <pthread.h>
#include <signal.h>

#include "runner.h"

struct rec_signal {
    gyre_signal s;
    int calls;
    int signo;
};

static void rec_cb(gyre_signal *s, int signo)
{
    struct rec_signal *r = (struct rec_signal *)s;

    r->calls++;
    r->signo = signo;
}

static void rec_stop_cb(gyre_signal *s, int signo)
{
    rec_cb(s, signo);
    ASSERT_EQ(gyre_signal_stop(s), 0);
}

static void signal_begin(gyre_loop *loop, struct rec_signal *r, gyre_signal_cb cb, int signo)
{
    ASSERT_EQ(gyre_signal_init(loop, &r->s), 0);
    ASSERT_EQ(gyre_signal_start(&r->s, cb, signo), 0);
}

void test_signal_basic(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_signal r = {0};

    signal_begin(loop, &r, rec_cb, SIGUSR1);
    ASSERT_SYS(raise(SIGUSR1));
    ASSERT_EQ(r.calls, 0); /* on the loop thread, from run only */
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.signo, SIGUSR1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 1);
    ASSERT_SYS(raise(SIGUSR1));
    test_run_until(loop, &r.calls, 2);
    ASSERT_EQ(gyre_signal_stop(&r.s), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_loop_free(loop);
}

void test_signal_coalesce(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_signal r = {0};
    int i;

    signal_begin(loop, &r, rec_cb, SIGUSR1);
    for (i = 0; i < 3; i++)
        ASSERT_SYS(raise(SIGUSR1));
    test_run_until(loop, &r.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(gyre_signal_stop(&r.s), 0);
    test_loop_free(loop);
}

void test_signal_two_watchers(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_signal a = {0}, b = {0};

    signal_begin(loop, &a, rec_stop_cb, SIGUSR1);
    signal_begin(loop, &b, rec_stop_cb, SIGUSR1);
    ASSERT_SYS(raise(SIGUSR1));
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(a.calls, 1);
    ASSERT_EQ(b.calls, 1);
    ASSERT_EQ(a.signo, SIGUSR1);
    ASSERT_EQ(b.signo, SIGUSR1);
    test_loop_free(loop);
}

/* One thread alternates between two loops without blocking. */
void test_signal_two_loops(void)
{
    gyre_loop *l1 = test_loop_new();
    gyre_loop *l2 = test_loop_new();
    struct rec_signal a = {0}, b = {0};
    long i;

    signal_begin(l1, &a, rec_stop_cb, SIGUSR1);
    signal_begin(l2, &b, rec_stop_cb, SIGUSR1);
    ASSERT_SYS(kill(getpid(), SIGUSR1));
    for (i = 0; i < 1000000 && (a.calls == 0 || b.calls == 0); i++) {
        ASSERT_GE(gyre_loop_run(l1, GYRE_RUN_NOWAIT), 0);
        ASSERT_GE(gyre_loop_run(l2, GYRE_RUN_NOWAIT), 0);
    }
    ASSERT_EQ(a.calls, 1);
    ASSERT_EQ(b.calls, 1);
    test_loop_free(l2);
    test_loop_free(l1);
}

/* Two threads each block in their own loop; one kill() must wake both,
 * whichever thread the kernel delivers it to. */
static void *run_loop_thread(void *arg)
{
    ASSERT_EQ(gyre_loop_run(arg, GYRE_RUN_DEFAULT), 0);
    return NULL;
}

void test_signal_two_loops_threads(void)
{
    gyre_loop *loops[2] = {test_loop_new(), test_loop_new()};
    struct rec_signal r[2] = {{.calls = 0}, {.calls = 0}};
    pthread_t th[2];
    int i;

    for (i = 0; i < 2; i++)
        signal_begin(loops[i], &r[i], rec_stop_cb, SIGUSR1);
    for (i = 0; i < 2; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, run_loop_thread, loops[i]), 0);
    ASSERT_SYS(kill(getpid(), SIGUSR1));
    for (i = 0; i < 2; i++)
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
    for (i = 0; i < 2; i++) {
        ASSERT_EQ(r[i].calls, 1);
        test_loop_free(loops[i]);
    }
}

static volatile sig_atomic_t custom_calls;

static void custom_handler(int signo)
{
    (void)signo;
    custom_calls++;
}

void test_signal_restore(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_signal a = {0}, b = {0};
    struct sigaction sa, cur;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = custom_handler;
    sigemptyset(&sa.sa_mask);
    ASSERT_SYS(sigaction(SIGUSR1, &sa, NULL));

    signal_begin(loop, &a, rec_cb, SIGUSR1);
    signal_begin(loop, &b, rec_cb, SIGUSR1);
    ASSERT_SYS(sigaction(SIGUSR1, NULL, &cur));
    ASSERT_TRUE(cur.sa_handler != custom_handler);
    ASSERT_TRUE((cur.sa_flags & SA_RESTART) != 0);

    /* Not the last watcher: gyre's handler stays. */
    ASSERT_EQ(gyre_signal_stop(&a.s), 0);
    ASSERT_SYS(sigaction(SIGUSR1, NULL, &cur));
    ASSERT_TRUE(cur.sa_handler != custom_handler);
    ASSERT_SYS(raise(SIGUSR1));
    test_run_until(loop, &b.calls, 1);
    ASSERT_EQ(custom_calls, 0);

    ASSERT_EQ(gyre_signal_stop(&b.s), 0);
    ASSERT_SYS(sigaction(SIGUSR1, NULL, &cur));
    ASSERT_TRUE(cur.sa_handler == custom_handler);
    ASSERT_SYS(raise(SIGUSR1));
    ASSERT_EQ(custom_calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(a.calls, 0);
    ASSERT_EQ(b.calls, 1);
    test_loop_free(loop);
}

void test_signal_change(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_signal r = {0};
    struct sigaction sa;

    /* Once the watcher moves to SIGUSR2, SIGUSR1 goes back to this. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = custom_handler;
    sigemptyset(&sa.sa_mask);
    ASSERT_SYS(sigaction(SIGUSR1, &sa, NULL));

    signal_begin(loop, &r, rec_cb, SIGUSR1);
    ASSERT_EQ(gyre_signal_start(&r.s, rec_stop_cb, SIGUSR2), 0);
    ASSERT_SYS(raise(SIGUSR1));
    ASSERT_EQ(custom_calls, 1);
    ASSERT_SYS(raise(SIGUSR2));
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.signo, SIGUSR2);
    ASSERT_EQ(gyre_handle_active(&r.s.base), 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 1);
    test_loop_free(loop);
}

void test_signal_bad_args(void)
{
    static const int bad[] = {0, -1, SIGKILL, SIGSTOP, 65, 1000};
    gyre_loop *loop = test_loop_new();
    struct rec_signal r = {0};
    size_t i;

    ASSERT_EQ(gyre_signal_init(loop, &r.s), 0);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (gyre_signal_start(&r.s, rec_cb, bad[i]) != -EINVAL)
            test_fail(__FILE__, __LINE__, "signo %d not refused with -EINVAL", bad[i]);
    }
    ASSERT_EQ(gyre_signal_start(&r.s, NULL, SIGUSR1), -EINVAL);
    ASSERT_EQ(gyre_handle_active(&r.s.base), 0);
    ASSERT_EQ(gyre_signal_stop(&r.s), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_loop_free(loop);
}

/* A watcher that stops itself inside its callback while a sibling watches the
 * same signal on the same loop: the sibling must go on being told. (The loop
 * once left the signal registry here, since dispatch had moved the sibling
 * off the loop's list.) */
static struct rec_signal sib_a, sib_b;

static void sib_stop_cb(gyre_signal *s, int signo)
{
    sib_a.calls++;
    sib_a.signo = signo;
    ASSERT_EQ(gyre_signal_stop(s), 0);
}

void test_signal_stop_sibling_stays(void)
{
    gyre_loop *loop = test_loop_new();

    ASSERT_EQ(gyre_signal_init(loop, &sib_a.s), 0);
    ASSERT_EQ(gyre_signal_init(loop, &sib_b.s), 0);
    ASSERT_EQ(gyre_signal_start(&sib_a.s, sib_stop_cb, SIGUSR2), 0);
    sib_b.s.base.data = &sib_b;
    ASSERT_EQ(gyre_signal_start(&sib_b.s, rec_cb, SIGUSR2), 0);
    ASSERT_SYS(raise(SIGUSR2));
    test_run_until(loop, &sib_b.calls, 1);
    ASSERT_EQ(sib_a.calls, 1);
    ASSERT_SYS(raise(SIGUSR2));
    test_run_until(loop, &sib_b.calls, 2);
    ASSERT_EQ(sib_a.calls, 1);
    ASSERT_EQ(gyre_signal_stop(&sib_b.s), 0);
    test_loop_free(loop);
}
