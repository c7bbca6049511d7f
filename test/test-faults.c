/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-faults.c: the GYRE_FAULTS switch -- the parser on good and malformed
 * specs (a typo must be an error, never silently disable injection), and,
 * when the environment sets it, that faults are actually injected while
 * watches still deliver every event.
 *
 * The parser is internal (src/sys/sys.h); the runner links the static
 * library, so the hidden symbol is reachable here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"
#include "sys/sys.h"

/* Probabilities are scaled to 2^32-1; allow one unit of rounding. */
static void assert_prob(uint32_t got, double p, const char *spec)
{
    double want = p * 4294967295.0;
    double diff = (double)got - want;

    if (diff < -1.0 || diff > 1.0)
        test_fail(__FILE__, __LINE__, "\"%s\": probability %u, want %.0f", spec, got, want);
}

static void parse_ok(const char *spec, uint64_t seed, double eagain, double eintr, double short_p,
                     double enomem)
{
    struct gyre__faults f;

    memset(&f, 0x5A, sizeof f);
    if (gyre__faults_parse(spec, &f) != 0)
        test_fail(__FILE__, __LINE__, "\"%s\" refused", spec);
    ASSERT_TRUE(f.seed == seed);
    assert_prob(f.prob[GYRE__FAULT_EAGAIN], eagain, spec);
    assert_prob(f.prob[GYRE__FAULT_EINTR], eintr, spec);
    assert_prob(f.prob[GYRE__FAULT_SHORT], short_p, spec);
    assert_prob(f.prob[GYRE__FAULT_ENOMEM], enomem, spec);
    if (eagain + eintr + short_p + enomem > 0)
        ASSERT_NE(f.on, 0);
}

void test_faults_parse(void)
{
    static const char *const bad[] = {
        "eagain=1.5", "eagain=-0.1", "eagain=abc", "eagain=",           "eagain",
        "bogus=0.1",  "seed=x",      "eintr=0.1x", "seed=1;eagain=0.1", "eagain=0.1,eintr",
    };
    struct gyre__faults f;
    size_t i;

    parse_ok("seed=1,eagain=0.05,eintr=0.1", 1, 0.05, 0.1, 0, 0);
    parse_ok("seed=42,short=0.5,enomem=0.25", 42, 0, 0, 0.5, 0.25);
    parse_ok("eintr=1,seed=7", 7, 0, 1, 0, 0);
    parse_ok("seed=18446744073709551615,eagain=0", UINT64_MAX, 0, 0, 0, 0);
    memset(&f, 0, sizeof f);
    ASSERT_EQ(gyre__faults_parse("seed=3,delay=0.5,reset=0.25", &f), 0);
    assert_prob(f.prob[GYRE__FAULT_DELAY], 0.5, "delay");
    assert_prob(f.prob[GYRE__FAULT_RESET], 0.25, "reset");
    ASSERT_NE(f.on, 0);
    ASSERT_EQ(gyre__faults_parse("delay=0.5x", &f), -EINVAL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (gyre__faults_parse(bad[i], &f) != -EINVAL)
            test_fail(__FILE__, __LINE__, "\"%s\" not refused with -EINVAL", bad[i]);
    }
}

static void read_one_cb(gyre_watch *w, uint32_t events)
{
    char c;

    ASSERT_EQ(events, GYRE_IN);
    ASSERT_EQ(read(gyre_watch_fd(w), &c, 1), 1);
    ++*(int *)w->base.data;
}

/* Level-triggered reads of one byte per call: with eintr injected into the
 * waits some iterations dispatch nothing, but every byte is still read
 * exactly once. */
void test_faults_injected(void)
{
    const char *env = getenv("GYRE_FAULTS");
    gyre_loop *loop = test_loop_new();
    gyre_watch w;
    gyre_stats st;
    char buf[200];
    int p[2], reads = 0;

    test_pipe(p);
    memset(buf, 'x', sizeof buf);
    test_write_bytes(p[1], buf, sizeof buf);
    ASSERT_EQ(gyre_watch_init(loop, &w, p[0]), 0);
    w.base.data = &reads;
    ASSERT_EQ(gyre_watch_start(&w, GYRE_IN, read_one_cb), 0);
    test_run_until(loop, &reads, (int)sizeof buf);
    test_run_nowait(loop, 3);
    ASSERT_EQ(reads, sizeof buf);
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    if (env != NULL && *env != '\0')
        ASSERT_GT(st.faults_injected, 0);
    else
        ASSERT_EQ(st.faults_injected, 0);
    ASSERT_EQ(st.faults_injected, gyre__faults_injected());
    ASSERT_EQ(st.faults_injected, st.faults_eagain + st.faults_eintr + st.faults_short +
                                      st.faults_enomem + st.faults_delay + st.faults_reset);
    ASSERT_EQ(gyre_watch_stop(&w), 0);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* reset=P: a message's send or recv fails with -ECONNRESET before the kernel
 * sees it, so it moved no byte. Over a stream socketpair, 2,000 messages are
 * each sent until a send succeeds and received until a recv succeeds: every
 * op completes exactly once with its full length or -ECONNRESET, the
 * -ECONNRESET results are exactly the injected resets, and the bytes arrive
 * whole and in order. The test sets its own GYRE_FAULTS (before its loop
 * reads it) unless the environment already has one. */
void test_faults_reset(void)
{
    size_t n = test_scale(2000), resets = 0;
    gyre_loop *loop;
    gyre_stats st;
    int sv[2];

    setenv("GYRE_FAULTS", "seed=11,reset=0.2,delay=0.01", 0);
    loop = test_loop_new();
    test_socketpair(sv);
    for (size_t i = 0; i < n; i++) {
        char out[32], in[32];
        struct test_op t = {0};
        int64_t r;

        snprintf(out, sizeof out, "msg %019zu", i);
        while ((r = (gyre_op_send(&t.op, sv[1], out, sizeof out, 0), test_op_run(loop, &t))) ==
               -ECONNRESET)
            resets++;
        ASSERT_EQ(r, (int64_t)sizeof out);
        memset(in, 0, sizeof in);
        while ((r = (gyre_op_recv(&t.op, sv[0], in, sizeof in, 0), test_op_run(loop, &t))) ==
               -ECONNRESET)
            resets++;
        ASSERT_EQ(r, (int64_t)sizeof in);
        ASSERT_EQ(memcmp(in, out, sizeof in), 0);
    }
    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    if (strstr(getenv("GYRE_FAULTS"), "reset=0.2") != NULL)
        ASSERT_GT(resets, 0);
    ASSERT_EQ(st.faults_reset, resets);
    test_close(sv[0]);
    test_close(sv[1]);
    test_loop_free(loop);
}
