/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* runner.c: the gyre-tests binary and the helpers every test shares.
 *
 * `gyre-tests --list` prints the test names from test-list.h; `gyre-tests
 * NAME` runs one test in this process and exits 0 (pass), 1 (fail) or 77
 * (skip). CTest runs each test once per backend (GYRE_BACKEND) in its own
 * process, so a test may leave signal dispositions, rlimits or fds behind.
 *
 * A skip is accepted only when allowed-skips.txt lists the (test, backend)
 * pair, or (test, backend/engine) for a run with GYRE_FILE_ENGINE set: a
 * capability a backend silently lost must show up as a failure, not as a
 * quiet drop in coverage.
 */
#include "runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef GYRE_TEST_ALLOWED_SKIPS
#error "GYRE_TEST_ALLOWED_SKIPS must name allowed-skips.txt"
#endif

struct test_case {
    const char *name;
    void (*fn)(void);
};

static const struct test_case tests[] = {
#define TEST_ENTRY(name, labels) {#name, test_##name},
#include "test-list.h"
#undef TEST_ENTRY
};

static const char *current_test = "?";

static const char *env_file_engine(void);

/* "backend", or "backend/engine" with an explicit file engine, for messages. */
static const char *run_name(void)
{
    static char name[128];
    const char *engine = env_file_engine();

    if (engine == NULL)
        return test_backend();
    snprintf(name, sizeof name, "%s/%s", test_backend(), engine);
    return name;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "FAIL %s [%s] %s:%d: ", current_test, run_name(), file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* The explicit file engine of this run, or NULL. */
static const char *env_file_engine(void)
{
    const char *env = getenv("GYRE_FILE_ENGINE");

    return env != NULL && *env != '\0' && strcmp(env, "auto") != 0 ? env : NULL;
}

/* Returns 1 if allowed-skips.txt has a line "test backend [# reason]"; with
 * an explicit file engine, "test backend/engine" also matches. */
static int skip_allowed(const char *test, const char *backend)
{
    char both[128] = "";
    const char *engine = env_file_engine();

    char line[512];
    FILE *f = fopen(GYRE_TEST_ALLOWED_SKIPS, "r");
    int found = 0;

    if (f == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", GYRE_TEST_ALLOWED_SKIPS, strerror(errno));
        return 0;
    }
    if (engine != NULL)
        snprintf(both, sizeof both, "%s/%s", backend, engine);
    while (!found && fgets(line, sizeof line, f) != NULL) {
        char name[256], be[128];
        char *hash = strchr(line, '#');

        if (hash != NULL)
            *hash = '\0';
        if (sscanf(line, "%255s %127s", name, be) == 2)
            found = strcmp(name, test) == 0 &&
                    (strcmp(be, backend) == 0 || (both[0] != '\0' && strcmp(be, both) == 0));
    }
    fclose(f);
    return found;
}

void test_skip(const char *file, int line, const char *reason)
{
    const char *backend = test_backend();

    if (!skip_allowed(current_test, backend)) {
        fprintf(stderr, "FAIL %s [%s] %s:%d: unexpected skip (%s); not in %s\n", current_test,
                run_name(), file, line, reason, GYRE_TEST_ALLOWED_SKIPS);
        exit(1);
    }
    printf("SKIP %s [%s]: %s\n", current_test, run_name(), reason);
    exit(77);
}

size_t test_scale(size_t n)
{
    const char *env = getenv("GYRE_TEST_SCALE");
    double scale = 1.0;
    size_t floor = n < 8 ? n : 8;
    size_t scaled;

    if (env != NULL && *env != '\0') {
        char *end;
        double v = strtod(env, &end);

        if (*end == '\0' && v > 0.0)
            scale = v;
    }
    scaled = (size_t)((double)n * scale);
    return scaled < floor ? floor : scaled;
}

const char *test_backend(void)
{
    static const char *name;
    const char *env = getenv("GYRE_BACKEND");
    gyre_loop *probe;

    if (name != NULL)
        return name;
    if (env != NULL && *env != '\0' && strcmp(env, "auto") != 0)
        return name = env;
    /* Asking gyre keeps skips and per-backend assertions right when the
     * binary is run by hand without GYRE_BACKEND. */
    if (gyre_loop_new(&probe, NULL) != 0)
        return "?";
    name = gyre_loop_backend(probe);
    gyre_loop_free(probe);
    return name;
}

int test_backend_is(const char *backend)
{
    return strcmp(test_backend(), backend) == 0;
}

const char *test_file_engine(void)
{
    const char *engine = env_file_engine();

    if (engine != NULL)
        return engine;
    return test_backend_is("uring") ? "uring" : "pool";
}

int test_file_engine_is(const char *name)
{
    return strcmp(test_file_engine(), name) == 0;
}

size_t test_nofile(size_t want)
{
    struct rlimit rl;

    ASSERT_SYS(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur < want && rl.rlim_cur != RLIM_INFINITY) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want) ? want : rl.rlim_max;
        ASSERT_SYS(setrlimit(RLIMIT_NOFILE, &rl));
    }
    return rl.rlim_cur == RLIM_INFINITY ? want : (size_t)rl.rlim_cur;
}

/* Loops made by test_loop_new() and their guards; a test uses at most a few. */
static struct {
    gyre_loop *loop;
    gyre_timer guard;
} guarded[8];

static void guard_cb(gyre_timer *t)
{
    (void)t;
    FAIL("hang guard fired: the loop did not reach the expected state in time");
}

gyre_loop *test_loop_new(void)
{
    return test_loop_new_opts(NULL);
}

gyre_loop *test_loop_new_opts(const gyre_loop_opts *opts)
{
    gyre_loop *loop = NULL;
    size_t i;

    ASSERT_EQ(gyre_loop_new(&loop, opts), 0);
    ASSERT_TRUE(loop != NULL);
    for (i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
        if (guarded[i].loop == NULL)
            break;
    }
    ASSERT_LT(i, sizeof guarded / sizeof guarded[0]);
    guarded[i].loop = loop;
    ASSERT_EQ(gyre_timer_init(loop, &guarded[i].guard), 0);
    ASSERT_EQ(gyre_timer_start(&guarded[i].guard, guard_cb, SEC(20), 0), 0);
    gyre_handle_unref(&guarded[i].guard.base);
    return loop;
}

void test_loop_free(gyre_loop *loop)
{
    size_t i;

    for (i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
        if (guarded[i].loop == loop) {
            ASSERT_EQ(gyre_timer_stop(&guarded[i].guard), 0);
            guarded[i].loop = NULL;
        }
    }
    ASSERT_EQ(gyre_loop_free(loop), 0);
}

void test_loop_guard(gyre_loop *loop, uint64_t timeout_ns)
{
    size_t i;

    for (i = 0; i < sizeof guarded / sizeof guarded[0]; i++) {
        if (guarded[i].loop == loop) {
            ASSERT_EQ(gyre_timer_start(&guarded[i].guard, guard_cb, timeout_ns, 0), 0);
            return;
        }
    }
    FAIL("test_loop_guard: loop not made by test_loop_new");
}

void test_run_until(gyre_loop *loop, const volatile int *count, int target)
{
    long i;

    for (i = 0; i < 10000000 && *count < target; i++) {
        int rc = gyre_loop_run(loop, GYRE_RUN_ONCE);

        ASSERT_GE(rc, 0);
        if (rc == 0 && *count < target)
            test_fail(__FILE__, __LINE__, "loop went idle with count %d < %d", *count, target);
    }
    ASSERT_GE(*count, target);
}

void test_run_nowait(gyre_loop *loop, int n)
{
    int i;

    for (i = 0; i < n; i++)
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_NOWAIT), 0);
}

uint64_t test_iterations(gyre_loop *loop)
{
    gyre_stats st;

    ASSERT_EQ(gyre_loop_stats(loop, &st), 0);
    return st.iterations;
}

void test_poison_free(void *p, size_t len)
{
    memset(p, 0xA5, len);
    free(p);
}

void test_pipe(int fds[2])
{
    ASSERT_SYS(pipe2(fds, O_NONBLOCK | O_CLOEXEC));
}

void test_socketpair(int fds[2])
{
    ASSERT_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds));
}

int test_tcp_listener(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    ASSERT_SYS(fd);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_SYS(bind(fd, (struct sockaddr *)addr, sizeof *addr));
    ASSERT_SYS(listen(fd, 16));
    ASSERT_SYS(getsockname(fd, (struct sockaddr *)addr, &len));
    return fd;
}

void test_tcp_pair(int *client, int *server)
{
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int sfd;

    ASSERT_SYS(cfd);
    /* Blocking connect on loopback completes within the call once the
     * listener's backlog has room, so the pair needs no event loop. */
    ASSERT_SYS(connect(cfd, (struct sockaddr *)&addr, sizeof addr));
    ASSERT_SYS(fcntl(cfd, F_SETFL, O_NONBLOCK));
    sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_SYS(sfd);
    test_close(lfd);
    *client = cfd;
    *server = sfd;
}

int test_bad_fd(void)
{
    /* High enough that neither the test nor gyre reaches it by allocating
     * lowest-free numbers, below FD_SETSIZE (1024) for select. */
    const int fd = 1000;

    ASSERT_EQ(fcntl(fd, F_GETFD), -1);
    ASSERT_EQ(errno, EBADF);
    return fd;
}

static char tmpdir[PATH_MAX];
static pid_t tmpdir_owner;

static int tmpdir_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0; /* keep going: remove as much as possible */
}

/* Depth first (FTW_DEPTH), so a directory is empty when its turn comes; file
 * tests make subdirectories (mkdirat, readdir). Only the process that made
 * it removes it: a forked child that exits must not pull the files from
 * under its parent. */
static void tmpdir_remove(void)
{
    if (tmpdir[0] == '\0' || getpid() != tmpdir_owner)
        return;
    nftw(tmpdir, tmpdir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
}

const char *test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");

    if (tmpdir[0] != '\0')
        return tmpdir;
    if (base == NULL || *base == '\0')
        base = "/tmp";
    ASSERT_LT(snprintf(tmpdir, sizeof tmpdir, "%s/gyre-test-XXXXXX", base), sizeof tmpdir);
    if (mkdtemp(tmpdir) == NULL)
        test_fail(__FILE__, __LINE__, "mkdtemp %s: %s", tmpdir, strerror(errno));
    tmpdir_owner = getpid();
    atexit(tmpdir_remove);
    return tmpdir;
}

void test_tmppath(char *out, size_t len, const char *name)
{
    ASSERT_LT(snprintf(out, len, "%s/%s", test_tmpdir(), name), len);
}

void test_op_cb(gyre_op *op)
{
    struct test_op *t = (struct test_op *)op;

    t->calls++;
    t->result = op->result;
    t->flags = op->flags;
}

static int op_submitting;

static void op_not_in_submit_cb(gyre_op *op)
{
    if (op_submitting)
        FAIL("an op callback ran inside gyre_submit()");
    test_op_cb(op);
}

void test_op_submit(gyre_loop *loop, struct test_op *t)
{
    int rc;

    t->calls = 0;
    t->result = INT64_MIN;
    t->flags = 0;
    op_submitting = 1;
    rc = gyre_submit(loop, &t->op, op_not_in_submit_cb);
    op_submitting = 0;
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(t->calls, 0);
}

int64_t test_op_run(gyre_loop *loop, struct test_op *t)
{
    test_op_submit(loop, t);
    test_run_until(loop, &t->calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t->calls, 1);
    ASSERT_EQ(t->flags & GYRE_OP_MORE, 0);
    return t->result;
}

uint64_t test_fnv(uint64_t h, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t test_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

void test_write_bytes(int fd, const char *buf, size_t len)
{
    ssize_t n = write(fd, buf, len);

    ASSERT_SYS(n);
    ASSERT_EQ(n, len);
}

void test_read_bytes(int fd, char *buf, size_t len)
{
    ssize_t n = read(fd, buf, len);

    ASSERT_SYS(n);
    ASSERT_EQ(n, len);
}

void test_close(int fd)
{
    ASSERT_SYS(close(fd));
}

int main(int argc, char **argv)
{
    size_t i;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < sizeof tests / sizeof tests[0]; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s --list | TEST\n", argv[0]);
        return 2;
    }
    for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (strcmp(tests[i].name, argv[1]) == 0) {
            current_test = tests[i].name;
            tests[i].fn();
            printf("ok %s\n", current_test);
            return 0;
        }
    }
    fprintf(stderr, "unknown test: %s\n", argv[1]);
    return 2;
}
