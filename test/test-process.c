/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-process.c: child processes -- exit status and terminating signal
 * exactly once, a child that ends before the loop looks, 1,000 children
 * reaped with none left, children we made ourselves left to us, a child that
 * sees only its stdio (K1), pipes, exec failure, early close, and the same
 * again with clone3 and then pidfd_open refused by a seccomp filter, as a
 * container's profile does (G2).
 *
 * No zombie may be left: after each scenario waitid(P_ALL, WNOHANG) must
 * find no child of ours at all, and /proc/self/task/ * /children must be
 * empty.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

struct rec_proc {
    gyre_process p; /* first: the callback finds the record from p */
    int calls;
    int64_t status;
    int sig;
    int *done; /* counts every record's first call, when set */
};

static void rec_cb(gyre_process *p, int64_t status, int sig)
{
    struct rec_proc *r = (struct rec_proc *)p;

    r->calls++;
    r->status = status;
    r->sig = sig;
    ASSERT_EQ(p->exit_status, status);
    ASSERT_EQ(p->term_signal, sig);
    if (r->done != NULL)
        (*r->done)++;
}

/* Options running argv with stdio on /dev/null. */
static void opts_init(gyre_spawn_opts *o, char *const *argv)
{
    int i;

    memset(o, 0, sizeof *o);
    o->argv = argv;
    for (i = 0; i < 3; i++)
        o->stdio[i].how = GYRE_STDIO_NULL;
}

static void spawn_ok(gyre_loop *loop, struct rec_proc *r, const gyre_spawn_opts *o)
{
    memset(r, 0, sizeof *r);
    ASSERT_EQ(gyre_spawn(loop, &r->p, o, rec_cb), 0);
    ASSERT_GT(r->p.pid, 0);
    ASSERT_EQ(r->calls, 0); /* never inside the call */
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};

    nanosleep(&ts, NULL);
}

/* 1 if this process has no child at all (running or zombie): waitid says
 * ECHILD, and every thread's /proc children list is empty. */
static int no_children(void)
{
    char path[PATH_MAX], buf[64];
    siginfo_t si;
    struct dirent *d;
    DIR *dir;
    int empty = 1;

    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 || errno != ECHILD)
        return 0;
    dir = opendir("/proc/self/task");
    if (dir == NULL)
        return 1;
    while (empty && (d = readdir(dir)) != NULL) {
        FILE *f;

        if (d->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/children", d->d_name);
        f = fopen(path, "re");
        if (f == NULL)
            continue; /* no CONFIG_PROC_CHILDREN, or the thread is gone */
        if (fgets(buf, sizeof buf, f) != NULL && buf[0] != '\0' && buf[0] != '\n')
            empty = 0;
        fclose(f);
    }
    closedir(dir);
    return empty;
}

static void assert_no_children(void)
{
    if (!no_children())
        FAIL("a child of ours is left (running or zombie)");
}

/* For children reaped by gyre's background reaper. */
static void wait_no_children(void)
{
    uint64_t end = mono_ms() + 10000;

    while (!no_children()) {
        if (mono_ms() > end)
            FAIL("a child of ours is still there after 10 s");
        sleep_ms(2);
    }
}

/* Waits until pid is a zombie: surely dead, not yet reaped. */
static void wait_zombie(int pid)
{
    uint64_t end = mono_ms() + 10000;
    char path[64], buf[512];

    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    for (;;) {
        FILE *f = fopen(path, "re");
        char *rp = NULL;

        ASSERT_TRUE(f != NULL); /* not reaped by anyone */
        if (fgets(buf, sizeof buf, f) != NULL)
            rp = strrchr(buf, ')');
        fclose(f);
        if (rp != NULL && rp[1] == ' ' && rp[2] == 'Z')
            return;
        if (mono_ms() > end)
            FAIL("child not a zombie after 10 s");
        sleep_ms(1);
    }
}

/* Reads a non-blocking fd until end of file. Returns the length. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;

        ASSERT_SYS(poll(&pfd, 1, 10000));
        n = read(fd, buf + len, cap - len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        ASSERT_SYS(n);
        if (n == 0)
            return len;
        len += (size_t)n;
        ASSERT_LT(len, cap);
    }
}

static int count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *d;
    int n = 0;

    ASSERT_TRUE(dir != NULL);
    while ((d = readdir(dir)) != NULL)
        if (d->d_name[0] != '.')
            n++;
    closedir(dir);
    return n - 1; /* the directory's own fd */
}

/* ------------------------------------------------------------------------ */
/* Scenarios, run by the plain tests and again under the seccomp filters     */
/* ------------------------------------------------------------------------ */

static void scen_exit_status(gyre_loop *loop)
{
    char *argv[] = {"/bin/sh", "-c", "exit 7", NULL};
    gyre_spawn_opts o;
    struct rec_proc r;

    opts_init(&o, argv);
    spawn_ok(loop, &r, &o);
    ASSERT_EQ(r.p.stdio_fd[0], -1);
    ASSERT_EQ(r.p.stdio_fd[1], -1);
    ASSERT_EQ(r.p.stdio_fd[2], -1);
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.status, 7);
    ASSERT_EQ(r.sig, 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(gyre_process_close(&r.p), 0);
    ASSERT_EQ(gyre_process_close(&r.p), 0);
    assert_no_children();
}

/* /bin/cat on an open pipe waits for input until a signal ends it. */
static void kill_one(gyre_loop *loop, int signo)
{
    char *argv[] = {"/bin/cat", NULL};
    gyre_spawn_opts o;
    struct rec_proc r;

    opts_init(&o, argv);
    o.stdio[0].how = GYRE_STDIO_PIPE;
    spawn_ok(loop, &r, &o);
    ASSERT_GE(r.p.stdio_fd[0], 0);
    ASSERT_EQ(gyre_process_kill(&r.p, 0), 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 0);
    ASSERT_EQ(gyre_process_kill(&r.p, signo), 0);
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.sig, signo);
    ASSERT_EQ(gyre_process_kill(&r.p, signo), -ESRCH);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 1);
    test_close(r.p.stdio_fd[0]);
    assert_no_children();
}

static void scen_kill(gyre_loop *loop)
{
    kill_one(loop, SIGKILL);
    kill_one(loop, SIGTERM);
}

/* The child is dead (a zombie) before the loop first runs: still reported,
 * once. */
static void scen_early_exit(gyre_loop *loop)
{
    char *argv[] = {"/bin/sh", "-c", "echo bye; exit 3", NULL};
    gyre_spawn_opts o;
    struct rec_proc r;
    char buf[64];

    opts_init(&o, argv);
    o.stdio[1].how = GYRE_STDIO_PIPE;
    spawn_ok(loop, &r, &o);
    ASSERT_EQ(read_all(r.p.stdio_fd[1], buf, sizeof buf), 4);
    wait_zombie(r.p.pid);
    ASSERT_EQ(r.calls, 0);
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.status, 3);
    ASSERT_EQ(r.sig, 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 1);
    test_close(r.p.stdio_fd[1]);
    assert_no_children();
}

/* Children the program forked itself, one already a zombie and one still
 * running while gyre reaps its own, are left to it. */
static void scen_not_ours(gyre_loop *loop)
{
    char *argv[] = {"/bin/sh", "-c", "exit 1", NULL};
    struct rec_proc r[4];
    gyre_spawn_opts o;
    int gate[2], st, done = 0, i;
    pid_t zombie, running;
    siginfo_t si;
    char c;

    ASSERT_SYS(pipe2(gate, O_CLOEXEC));
    zombie = fork();
    ASSERT_SYS(zombie);
    if (zombie == 0)
        _exit(42);
    running = fork();
    ASSERT_SYS(running);
    if (running == 0) {
        close(gate[1]);
        while (read(gate[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(43);
    }
    test_close(gate[0]);
    wait_zombie(zombie);

    opts_init(&o, argv);
    for (i = 0; i < 4; i++) {
        spawn_ok(loop, &r[i], &o);
        r[i].done = &done;
    }
    test_run_until(loop, &done, 4);
    for (i = 0; i < 4; i++) {
        ASSERT_EQ(r[i].calls, 1);
        ASSERT_EQ(r[i].status, 1);
    }
    test_run_nowait(loop, 3);

    ASSERT_EQ(waitpid(zombie, &st, 0), zombie);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 42);
    memset(&si, 0, sizeof si);
    ASSERT_SYS(waitid(P_PID, (id_t)running, &si, WEXITED | WNOHANG | WNOWAIT));
    ASSERT_EQ(si.si_pid, 0); /* still running, still ours */
    test_close(gate[1]);
    ASSERT_EQ(waitpid(running, &st, 0), running);
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 43);
    assert_no_children();
}

/* K1: fds the parent leaked on purpose (no CLOEXEC, one at a high number)
 * are not in the child, which lists its /proc/self/fd: 0, 1, 2 and the fd
 * ls opens to read that directory, which is the lowest free one, 3. */
static void scen_stdio_only(gyre_loop *loop)
{
    char *argv[] = {"/bin/ls", "-1", "/proc/self/fd", NULL};
    gyre_spawn_opts o;
    struct rec_proc r;
    int leak[2], high;
    char buf[256];
    size_t len;

    ASSERT_SYS(pipe(leak));
    high = fcntl(leak[0], F_DUPFD, 200);
    ASSERT_SYS(high);
    opts_init(&o, argv);
    o.stdio[1].how = GYRE_STDIO_PIPE;
    spawn_ok(loop, &r, &o);
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.status, 0);
    len = read_all(r.p.stdio_fd[1], buf, sizeof buf);
    buf[len] = '\0';
    ASSERT_STREQ(buf, "0\n1\n2\n3\n");
    test_close(r.p.stdio_fd[1]);
    test_close(leak[0]);
    test_close(leak[1]);
    test_close(high);
    assert_no_children();
}

/* Exec failures come back from gyre_spawn itself, with no child left and
 * no fd leaked; the callback never runs. */
static void scen_exec_fail(gyre_loop *loop)
{
    char *missing[] = {"/nonexistent", NULL};
    char *sh[] = {"/bin/sh", "-c", "exit 0", NULL};
    char file[PATH_MAX];
    char *notexec[] = {file, NULL};
    gyre_spawn_opts o;
    struct rec_proc r;
    int before = count_fds(), fd;

    memset(&r, 0, sizeof r);
    opts_init(&o, missing);
    o.stdio[0].how = GYRE_STDIO_PIPE;
    o.stdio[1].how = GYRE_STDIO_PIPE;
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -ENOENT);
    assert_no_children();

    opts_init(&o, sh);
    o.cwd = "/nonexistent";
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -ENOENT);
    assert_no_children();

    test_tmppath(file, sizeof file, "not-executable");
    fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_SYS(fd);
    test_close(fd);
    opts_init(&o, notexec);
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -EACCES);
    assert_no_children();

    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 0);
    ASSERT_EQ(count_fds(), before);
}

/* n children, up to batch alive at once (each holds a pidfd), each exiting
 * with its own status. */
static void scen_many(gyre_loop *loop, size_t n, size_t batch)
{
    struct rec_proc *r = calloc(n, sizeof *r);
    char(*code)[8] = calloc(n, sizeof *code);
    size_t spawned = 0, i;
    int done = 0;

    ASSERT_TRUE(r != NULL && code != NULL);
    test_loop_guard(loop, SEC(100));
    while ((size_t)done < n) {
        while (spawned < n && spawned - (size_t)done < batch) {
            char *argv[] = {"/bin/sh", "-c", "exit $0", code[spawned], NULL};
            gyre_spawn_opts o;

            snprintf(code[spawned], sizeof code[spawned], "%zu", spawned % 256);
            opts_init(&o, argv);
            spawn_ok(loop, &r[spawned], &o);
            r[spawned].done = &done;
            spawned++;
        }
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
    }
    test_run_nowait(loop, 3);
    for (i = 0; i < n; i++) {
        ASSERT_EQ(r[i].calls, 1);
        ASSERT_EQ(r[i].status, (int64_t)(i % 256));
        ASSERT_EQ(r[i].sig, 0);
    }
    ASSERT_EQ(done, n);
    assert_no_children();
    free(code);
    free(r);
}

/* How many children may live at once: each holds a pidfd, and select
 * cannot watch an fd at FD_SETSIZE or above. */
static size_t many_batch(size_t n)
{
    size_t limit = test_nofile(n + 256);
    size_t batch = limit > 128 ? limit - 64 : 8;

    if (test_backend_is("select") && batch > FD_SETSIZE - 128)
        batch = FD_SETSIZE - 128;
    return batch;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */
/* ------------------------------------------------------------------------ */

void test_process_exit_status(void)
{
    gyre_loop *loop = test_loop_new();

    scen_exit_status(loop);
    test_loop_free(loop);
}

void test_process_kill(void)
{
    gyre_loop *loop = test_loop_new();

    scen_kill(loop);
    test_loop_free(loop);
}

void test_process_early_exit(void)
{
    gyre_loop *loop = test_loop_new();

    scen_early_exit(loop);
    test_loop_free(loop);
}

void test_process_many(void)
{
    gyre_loop *loop = test_loop_new();
    size_t n = test_scale(1000);

    scen_many(loop, n, many_batch(n));
    printf("%zu children, at most %zu at once\n", n, many_batch(n));
    test_loop_free(loop);
}

void test_process_not_ours(void)
{
    gyre_loop *loop = test_loop_new();

    scen_not_ours(loop);
    test_loop_free(loop);
}

void test_process_stdio_only(void)
{
    gyre_loop *loop = test_loop_new();

    scen_stdio_only(loop);
    test_loop_free(loop);
}

struct cat_io {
    gyre_watch in, out; /* our ends: out writes the child's stdin */
    const char *data;
    size_t len, sent, got;
    uint64_t hash;
    int eof;
};

static void cat_out_cb(gyre_watch *w, uint32_t events)
{
    struct cat_io *io = (struct cat_io *)((char *)w - offsetof(struct cat_io, out));
    size_t chunk = io->len - io->sent < 65536 ? io->len - io->sent : 65536;
    ssize_t n;

    (void)events;
    n = write(gyre_watch_fd(w), io->data + io->sent, chunk);
    if (n < 0 && errno == EAGAIN)
        return;
    ASSERT_SYS(n);
    io->sent += (size_t)n;
    if (io->sent == io->len) {
        int fd = gyre_watch_fd(w);

        ASSERT_EQ(gyre_watch_stop(w), 0);
        test_close(fd); /* end of file for cat */
    }
}

static void cat_in_cb(gyre_watch *w, uint32_t events)
{
    struct cat_io *io = (struct cat_io *)((char *)w - offsetof(struct cat_io, in));
    char buf[65536];
    ssize_t n;

    (void)events;
    n = read(gyre_watch_fd(w), buf, sizeof buf);
    if (n < 0 && errno == EAGAIN)
        return;
    ASSERT_SYS(n);
    if (n == 0) {
        io->eof = 1;
        ASSERT_EQ(gyre_watch_stop(w), 0);
        return;
    }
    io->hash = test_fnv(io->hash, buf, (size_t)n);
    io->got += (size_t)n;
}

/* 1 MiB through /bin/cat and back, the loop writing and reading at once. */
void test_process_pipes_cat(void)
{
    gyre_loop *loop = test_loop_new();
    char *argv[] = {"/bin/cat", NULL};
    size_t len = 1u << 20, i;
    char *data = malloc(len);
    uint64_t seed = 6, want;
    struct cat_io io;
    gyre_spawn_opts o;
    struct rec_proc r;

    ASSERT_TRUE(data != NULL);
    for (i = 0; i < len; i++)
        data[i] = (char)test_rand(&seed);
    want = test_fnv(TEST_FNV_INIT, data, len);
    memset(&io, 0, sizeof io);
    io.data = data;
    io.len = len;
    io.hash = TEST_FNV_INIT;
    opts_init(&o, argv);
    o.stdio[0].how = GYRE_STDIO_PIPE;
    o.stdio[1].how = GYRE_STDIO_PIPE;
    spawn_ok(loop, &r, &o);
    ASSERT_EQ(fcntl(r.p.stdio_fd[0], F_GETFD), FD_CLOEXEC);
    ASSERT_TRUE(fcntl(r.p.stdio_fd[1], F_GETFL) & O_NONBLOCK);
    ASSERT_EQ(gyre_watch_init(loop, &io.out, r.p.stdio_fd[0]), 0);
    ASSERT_EQ(gyre_watch_start(&io.out, GYRE_OUT, cat_out_cb), 0);
    ASSERT_EQ(gyre_watch_init(loop, &io.in, r.p.stdio_fd[1]), 0);
    ASSERT_EQ(gyre_watch_start(&io.in, GYRE_IN, cat_in_cb), 0);
    test_run_until(loop, &io.eof, 1);
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(io.sent, len);
    ASSERT_EQ(io.got, len);
    ASSERT_TRUE(io.hash == want);
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(r.sig, 0);
    test_close(r.p.stdio_fd[1]);
    free(data);
    assert_no_children();
    test_loop_free(loop);
}

/* The environment given replaces the parent's; cwd is the child's. */
void test_process_env_cwd(void)
{
    gyre_loop *loop = test_loop_new();
    char *argv[] = {"/bin/sh", "-c", "printf '%s|%s|%s' \"$FOO\" \"${HOME-unset}\" \"$(pwd -P)\"",
                    NULL};
    char *env[] = {"FOO=bar baz", "PATH=/bin:/usr/bin", NULL};
    char real[PATH_MAX], want[PATH_MAX + 32], buf[PATH_MAX + 64];
    gyre_spawn_opts o;
    struct rec_proc r;
    size_t len;

    ASSERT_TRUE(realpath(test_tmpdir(), real) != NULL);
    snprintf(want, sizeof want, "bar baz|unset|%s", real);
    opts_init(&o, argv);
    o.env = env;
    o.cwd = test_tmpdir();
    o.stdio[1].how = GYRE_STDIO_PIPE;
    spawn_ok(loop, &r, &o);
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.status, 0);
    len = read_all(r.p.stdio_fd[1], buf, sizeof buf);
    buf[len] = '\0';
    ASSERT_STREQ(buf, want);
    test_close(r.p.stdio_fd[1]);
    assert_no_children();
    test_loop_free(loop);
}

void test_process_exec_fail(void)
{
    gyre_loop *loop = test_loop_new();

    scen_exec_fail(loop);
    test_loop_free(loop);
}

/* A process closed while its child runs: no callback, the loop can be
 * freed, and gyre's reaper reaps the child once it ends. */
void test_process_close_early(void)
{
    gyre_loop *loop = test_loop_new();
    char *argv[] = {"/bin/cat", NULL};
    gyre_spawn_opts o;
    struct rec_proc r[3];
    int i;

    opts_init(&o, argv);
    o.stdio[0].how = GYRE_STDIO_PIPE;
    for (i = 0; i < 3; i++)
        spawn_ok(loop, &r[i], &o);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(gyre_process_close(&r[i].p), 0);
        ASSERT_EQ(gyre_process_kill(&r[i].p, SIGTERM), -ESRCH);
        ASSERT_EQ(gyre_process_close(&r[i].p), 0);
    }
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    for (i = 0; i < 3; i++)
        ASSERT_EQ(r[i].calls, 0);
    test_loop_free(loop);
    ASSERT_TRUE(!no_children()); /* the three cats still run */
    for (i = 0; i < 3; i++)
        test_close(r[i].p.stdio_fd[0]); /* cat reads end of file and exits */
    wait_no_children();
}

void test_process_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    char *argv[] = {"/bin/true", NULL};
    char *empty[] = {NULL};
    gyre_spawn_opts o;
    struct rec_proc r;

    memset(&r, 0, sizeof r);
    opts_init(&o, argv);
    ASSERT_EQ(gyre_spawn(NULL, &r.p, &o, rec_cb), -EINVAL);
    ASSERT_EQ(gyre_spawn(loop, NULL, &o, rec_cb), -EINVAL);
    ASSERT_EQ(gyre_spawn(loop, &r.p, NULL, rec_cb), -EINVAL);
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, NULL), -EINVAL);
    o.argv = empty;
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -EINVAL);
    o.argv = NULL;
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -EINVAL);
    opts_init(&o, argv);
    o.stdio[1].how = 9;
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -EINVAL);
    opts_init(&o, argv);
    o.stdio[2].how = GYRE_STDIO_FD;
    o.stdio[2].fd = -1;
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -EINVAL);
    opts_init(&o, argv);
    o.flags = 0x80000000u;
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -EINVAL);
    opts_init(&o, argv);
    o.stdio[0].how = GYRE_STDIO_STREAM; /* without a stream */
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -EINVAL);
    opts_init(&o, argv);
    o.reserved[3] = 1;
    ASSERT_EQ(gyre_spawn(loop, &r.p, &o, rec_cb), -EINVAL);
    ASSERT_EQ(gyre_process_kill(NULL, 0), -EINVAL);
    /* A caller's own fd as stdout, and the real program. */
    opts_init(&o, argv);
    o.stdio[1].how = GYRE_STDIO_FD;
    o.stdio[1].fd = 1;
    spawn_ok(loop, &r, &o);
    ASSERT_EQ(gyre_process_kill(&r.p, -1), -EINVAL);
    ASSERT_EQ(gyre_process_kill(&r.p, 4096), -EINVAL);
    test_run_until(loop, &r.calls, 1);
    ASSERT_EQ(r.status, 0);
    test_run_nowait(loop, 2);
    assert_no_children();
    test_loop_free(loop);
}

/* ------------------------------------------------------------------------ */
/* The fallbacks, under a seccomp filter in a forked child                   */
/* ------------------------------------------------------------------------ */

#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_RISCV64
#endif

#ifdef AUDIT_ARCH_NATIVE
/* Syscalls a and b fail with ENOSYS, as a container's profile makes clone3
 * fail (so that libc falls back to clone); the rest of the native ABI is
 * allowed. */
static void filter_enosys(long a, long b)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)a, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)b, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};

    ASSERT_SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    ASSERT_SYS(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}

/* Every scenario again in a child whose clone3 (and, with no_pidfd, whose
 * pidfd_open) says ENOSYS. gyre has spawned nothing in this process before
 * the fork, so the child learns the fallback under its filter. */
static void run_filtered(int no_pidfd)
{
    pid_t pid = fork();
    int st;

    ASSERT_SYS(pid);
    if (pid == 0) {
        gyre_loop *loop;

        filter_enosys(__NR_clone3, no_pidfd ? __NR_pidfd_open : __NR_clone3);
        ASSERT_EQ(syscall(__NR_clone3, NULL, 0), -1);
        ASSERT_EQ(errno, ENOSYS);
        loop = test_loop_new();
        scen_exit_status(loop);
        scen_kill(loop);
        scen_early_exit(loop);
        scen_not_ours(loop);
        scen_stdio_only(loop);
        scen_exec_fail(loop);
        scen_many(loop, test_scale(200), many_batch(test_scale(200)));
        test_loop_free(loop);
        if (no_pidfd) {
            ASSERT_EQ(syscall(__NR_pidfd_open, getpid(), 0), -1);
            ASSERT_EQ(errno, ENOSYS);
        }
        exit(0);
    }
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        SKIP("skipped in the filtered child");
    ASSERT_TRUE(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    assert_no_children();
}
#endif

void test_process_no_clone3(void)
{
#ifdef AUDIT_ARCH_NATIVE
    run_filtered(0);
#else
    SKIP("no seccomp arch constant for this CPU");
#endif
}

void test_process_no_pidfd(void)
{
#ifdef AUDIT_ARCH_NATIVE
    run_filtered(1);
#else
    SKIP("no seccomp arch constant for this CPU");
#endif
}
