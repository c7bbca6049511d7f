/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-seccomp.c: io_uring blocked by a seccomp filter, as container runtimes
 * do. In a forked child (the filter cannot be removed), a BPF filter makes
 * io_uring_setup -- or, separately, only io_uring_enter -- fail with EPERM.
 * Then "auto" must fall back to epoll and say why, a TCP round trip with ops
 * must work there, and an explicit "uring" must fail rather than quietly run
 * on epoll.
 *
 * These tests choose backends themselves, so they are registered once, not
 * once per backend. The parent never calls gyre before forking, so the child
 * probes io_uring under its filter rather than inheriting a cached answer.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"

#if defined(__x86_64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define AUDIT_ARCH_NATIVE AUDIT_ARCH_RISCV64
#endif

#ifdef AUDIT_ARCH_NATIVE
/* Syscall `nr` fails with EPERM; everything else of the native ABI is
 * allowed; a foreign ABI (e.g. int 0x80 on x86-64) kills the process, since
 * its numbers mean other calls. */
static void block_syscall(long nr)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};

    ASSERT_SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    ASSERT_SYS(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
}
#endif

struct conn {
    struct test_op acc, con, snd, rcv;
};

/* A TCP round trip on loop, every step an op. */
static void tcp_ops_round_trip(gyre_loop *loop)
{
    struct conn c;
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    char buf[16];
    int sfd;

    ASSERT_SYS(cfd);
    memset(&c, 0, sizeof c);
    gyre_op_accept(&c.acc.op, lfd, NULL, NULL, SOCK_NONBLOCK);
    test_op_submit(loop, &c.acc);
    gyre_op_connect(&c.con.op, cfd, (struct sockaddr *)&addr, sizeof addr);
    test_op_submit(loop, &c.con);
    test_run_until(loop, &c.acc.calls, 1);
    test_run_until(loop, &c.con.calls, 1);
    ASSERT_EQ(c.con.result, 0);
    ASSERT_GE(c.acc.result, 0);
    sfd = (int)c.acc.result;
    gyre_op_send(&c.snd.op, cfd, "through", 7, 0);
    ASSERT_EQ(test_op_run(loop, &c.snd), 7);
    gyre_op_recv(&c.rcv.op, sfd, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &c.rcv), 7);
    ASSERT_EQ(memcmp(buf, "through", 7), 0);
    gyre_op_send(&c.snd.op, sfd, "back", 4, 0);
    ASSERT_EQ(test_op_run(loop, &c.snd), 4);
    gyre_op_recv(&c.rcv.op, cfd, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &c.rcv), 4);
    ASSERT_EQ(memcmp(buf, "back", 4), 0);
    test_close(sfd);
    test_close(cfd);
    test_close(lfd);
}

static void child_checks(void)
{
    gyre_loop_opts opts;
    gyre_loop *loop = NULL;
    gyre_info info;
    int rc;

    /* "auto" falls back to epoll, with a reason. */
    memset(&opts, 0, sizeof opts);
    opts.backend = "auto";
    loop = test_loop_new_opts(&opts);
    ASSERT_STREQ(gyre_loop_backend(loop), "epoll");
    ASSERT_EQ(gyre_loop_info(loop, &info), 0);
    ASSERT_STREQ(info.backend, "epoll");
    ASSERT_STREQ(info.file_engine, "pool");
    ASSERT_TRUE(info.reason != NULL && info.reason[0] != '\0');
    printf("auto fell back to epoll: %s\n", info.reason);
    tcp_ops_round_trip(loop);
    test_loop_free(loop);

    /* Default options and GYRE_BACKEND unset: the same. */
    loop = test_loop_new();
    ASSERT_STREQ(gyre_loop_backend(loop), "epoll");
    test_loop_free(loop);

    /* An explicit "uring" is an error, never a silent epoll. */
    ASSERT_EQ(gyre_backend_supported("uring"), 0);
    ASSERT_EQ(gyre_backend_supported("epoll"), 1);
    opts.backend = "uring";
    loop = NULL;
    rc = gyre_loop_new(&loop, &opts);
    if (rc >= 0)
        test_fail(__FILE__, __LINE__, "backend \"uring\" under seccomp: %d, backend %s", rc,
                  loop != NULL ? gyre_loop_backend(loop) : "?");
    ASSERT_TRUE(loop == NULL);
    printf("explicit uring refused: %s\n", gyre_strerror(rc));
    /* So is an explicit uring file engine. */
    opts.backend = NULL;
    opts.file_engine = "uring";
    ASSERT_LT(gyre_loop_new(&loop, &opts), 0);
    ASSERT_TRUE(loop == NULL);
}

static void run_blocked(long nr)
{
#ifdef AUDIT_ARCH_NATIVE
    pid_t pid;
    int status;

    fflush(stdout);
    pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        ASSERT_SYS(unsetenv("GYRE_BACKEND"));
        ASSERT_SYS(unsetenv("GYRE_FILE_ENGINE"));
        ASSERT_SYS(unsetenv("GYRE_URING_PROFILE"));
        block_syscall(nr);
        /* The filter works: the raw syscall is refused. */
        ASSERT_EQ(syscall(nr, 0, NULL, 0, 0, NULL, 0), -1);
        ASSERT_EQ(errno, EPERM);
        child_checks();
        fflush(stdout);
        _exit(0);
    }
    ASSERT_SYS(waitpid(pid, &status, 0));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        test_fail(__FILE__, __LINE__, "child status 0x%x (exit %d, signal %d)", status,
                  WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
#else
    (void)nr;
    SKIP("no seccomp audit arch known for this architecture");
#endif
}

void test_seccomp_uring_setup_blocked(void)
{
    run_blocked(SYS_io_uring_setup);
}

/* Setup allowed, every enter refused: a ring can be made but never used,
 * which only a real round trip in the probe notices. */
void test_seccomp_uring_enter_blocked(void)
{
    run_blocked(SYS_io_uring_enter);
}
