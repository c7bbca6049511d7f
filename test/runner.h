/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* runner.h: what every gyre test file may use -- the assertion and skip macros
 * and the shared helpers (loops with a hang guard, fd pairs, bounded runs).
 *
 * A test is `void test_NAME(void)` listed in test-list.h; it returns to pass,
 * and fails or skips by exiting the process (one process per test), so a
 * failing assertion never leaves half-torn-down state to confuse the next
 * test. Every helper that can fail asserts itself, so test bodies stay about
 * the behaviour under test.
 */
#ifndef GYRE_TEST_RUNNER_H
#define GYRE_TEST_RUNNER_H

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gyre.h"

#define TEST_ENTRY(name, labels) void test_##name(void);
#include "test-list.h"
#undef TEST_ENTRY

_Noreturn void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void test_skip(const char *file, int line, const char *reason);

/* Integers of any width are compared as intmax_t so that -errno returns,
 * sizes and uint64_t counters all print readably; values above INTMAX_MAX
 * are compared with ASSERT_TRUE instead. */
#define ASSERT_CMP(a, op, b)                                                                       \
    do {                                                                                           \
        intmax_t a_ = (intmax_t)(a);                                                               \
        intmax_t b_ = (intmax_t)(b);                                                               \
        if (!(a_ op b_))                                                                           \
            test_fail(__FILE__, __LINE__, "%s %s %s: got %jd vs %jd", #a, #op, #b, a_, b_);        \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP(a, >=, b)
#define ASSERT_TRUE(e)                                                                             \
    do {                                                                                           \
        if (!(e))                                                                                  \
            test_fail(__FILE__, __LINE__, "%s is false", #e);                                      \
    } while (0)
#define ASSERT_STREQ(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a);                                                                      \
        const char *b_ = (b);                                                                      \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                                       \
            test_fail(__FILE__, __LINE__, "%s == %s: got \"%s\" vs \"%s\"", #a, #b,                \
                      a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                     \
    } while (0)
/* For calls outside gyre that report through errno (the test's own syscalls). */
#define ASSERT_SYS(e)                                                                              \
    do {                                                                                           \
        if ((e) < 0)                                                                               \
            test_fail(__FILE__, __LINE__, "%s failed: %s", #e, strerror(errno));                   \
    } while (0)
#define FAIL(msg) test_fail(__FILE__, __LINE__, "%s", msg)
#define SKIP(reason) test_skip(__FILE__, __LINE__, reason)

#define MS(n) ((uint64_t)(n)*1000000u)
#define SEC(n) ((uint64_t)(n)*1000000000u)

/* n multiplied by GYRE_TEST_SCALE (default 1.0), never below min(n, 8) so a
 * tiny scale still exercises more than one element. */
size_t test_scale(size_t n);

/* The backend under test: GYRE_BACKEND if set, else what "auto" picks. */
const char *test_backend(void);
int test_backend_is(const char *name);

/* The file engine under test: GYRE_FILE_ENGINE if set (and not "auto"),
 * else what "auto" picks for the backend under test ("uring" on uring, else
 * "pool"). */
const char *test_file_engine(void);
int test_file_engine_is(const char *name);

/* Raises the RLIMIT_NOFILE soft limit towards `want` (never above the hard
 * limit) and returns the soft limit now in force. */
size_t test_nofile(size_t want);

/* A loop with NULL opts (backend from GYRE_BACKEND) and an unreferenced
 * hang guard timer that fails the test if it fires, so every run is bounded
 * without changing what gyre_loop_run() returns. test_loop_free() stops the
 * guard and asserts gyre_loop_free() returns 0 (nothing leaked or active).
 * The guard is one active handle and one timer: tests asserting exact
 * counters or timeouts use gyre_loop_new() directly. */
gyre_loop *test_loop_new(void);
void test_loop_free(gyre_loop *loop);
/* The same with options (opts->backend NULL still means GYRE_BACKEND). */
gyre_loop *test_loop_new_opts(const gyre_loop_opts *opts);
/* Restarts the loop's hang guard to fire timeout_ns from now, for tests
 * whose legitimate work (tens of MiB, thousands of connections, under
 * sanitizers and GYRE_FAULTS) may approach the default 20 s. */
void test_loop_guard(gyre_loop *loop, uint64_t timeout_ns);

/* Runs GYRE_RUN_ONCE iterations until *count >= target (bounded by the
 * guard and an iteration cap). Counting the outcome instead of iterations
 * keeps tests valid under GYRE_FAULTS, where an injected EINTR makes an
 * iteration return with nothing dispatched. */
void test_run_until(gyre_loop *loop, const volatile int *count, int target);
/* Runs n GYRE_RUN_NOWAIT iterations: for asserting that nothing (more) happens. */
void test_run_nowait(gyre_loop *loop, int n);
/* The loop's iteration counter (gyre_stats.iterations). */
uint64_t test_iterations(gyre_loop *loop);

/* Poisons memory before freeing it, so that a library write after a
 * callback freed its own object shows up without a sanitizer too. */
void test_poison_free(void *p, size_t len);

/* fd pairs, all O_NONBLOCK|O_CLOEXEC; [0] reads, [1] writes. */
void test_pipe(int fds[2]);
void test_socketpair(int fds[2]);
/* A connected TCP pair over 127.0.0.1. */
void test_tcp_pair(int *client, int *server);
/* A listening TCP socket on 127.0.0.1 with an ephemeral port, returned in *addr. */
int test_tcp_listener(struct sockaddr_in *addr);

/* A descriptor number that is not open (and below FD_SETSIZE, so that every
 * backend can be asked about it): for -EBADF paths. */
int test_bad_fd(void);

/* A private directory for the test's files (mkdtemp under $TMPDIR or /tmp),
 * made on first use and removed with everything in it (subdirectories
 * included) when the process that made it exits, including on a failed
 * assertion. test_tmppath() names a file in it. */
const char *test_tmpdir(void);
void test_tmppath(char *out, size_t len, const char *name);

/* An op that records its completions: `op` is the first member, so the
 * callback finds the record from the gyre_op it is given. */
struct test_op {
    gyre_op op;
    int calls;
    int64_t result;
    uint32_t flags;
};
void test_op_cb(gyre_op *op);
/* Submits t->op (already prepared) with test_op_cb, asserts the submit
 * returns 0 and that the callback did not run inside it, runs the loop until
 * it completes, asserts it completed exactly once without GYRE_OP_MORE (a
 * few more iterations bring no second call) and returns the result. */
int64_t test_op_run(gyre_loop *loop, struct test_op *t);
/* Only the submit half, with the same checks; test_run_until(loop,
 * &t->calls, 1) waits for it. */
void test_op_submit(gyre_loop *loop, struct test_op *t);

/* FNV-1a, 64 bits: streams are compared by hash on both ends. Start with
 * TEST_FNV_INIT and feed chunks in order. */
#define TEST_FNV_INIT 0xcbf29ce484222325ull
uint64_t test_fnv(uint64_t h, const void *buf, size_t len);
/* xorshift64*: deterministic sizes and contents from a seed. */
uint64_t test_rand(uint64_t *state);

void test_write_bytes(int fd, const char *buf, size_t len);
/* Reads exactly len bytes that must already be there. */
void test_read_bytes(int fd, char *buf, size_t len);
void test_close(int fd);

#endif
