/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* proc.c: the helper processes and fd plumbing of gyre-bench's scenarios.
 *
 * Helpers hold the far ends of what the benchmark process watches, so that
 * its own fd table (which is what select and poll scan) holds only what is
 * measured. A helper must never outlive a run: it gets PR_SET_PDEATHSIG, and
 * bench_reap() always ends with a waitpid, escalating to SIGKILL.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

long bench_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        /* Failure leaves the old soft limit, which the caller re-reads. */
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? (long)1 << 30 : (long)rl.rlim_cur;
}

pid_t bench_spawn(int (*fn)(void *arg), void *arg)
{
    pid_t parent = getpid();
    pid_t pid;

    /* Pending stdio output would otherwise be written twice. */
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0)
        return pid;
    /* The parent may have died between fork and prctl; then the death
     * signal never comes, which the getppid() check covers. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(1);
    _exit(fn(arg));
}

int bench_reap(pid_t pid)
{
    const struct timespec tick = {0, 10 * 1000 * 1000};
    int status, i;
    pid_t r;

    if (pid <= 0)
        return -EINVAL;
    (void)kill(pid, SIGTERM);
    /* 100 x 10 ms: helpers exit at once on SIGTERM, so the grace period only
     * matters for a wedged one, which SIGKILL then ends. */
    for (i = 0; i < 100; i++) {
        r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -errno;
        nanosleep(&tick, NULL);
    }
    (void)kill(pid, SIGKILL);
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? status : -errno;
}

int bench_send_fd(int sock, int fd)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    char byte = 'F';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof control.buf,
    };
    struct cmsghdr *cm;
    ssize_t n;

    memset(&control, 0, sizeof control);
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    do
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : n < 0 ? -errno : -EIO;
}

int bench_bin_dir(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    char *slash;

    if (n <= 0)
        return -1;
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

void bench_first_line(const char *cmd, char *buf, size_t size)
{
    FILE *f = popen(cmd, "r");

    buf[0] = '\0';
    if (!f)
        return;
    if (fgets(buf, (int)size, f))
        buf[strcspn(buf, "\n")] = '\0';
    pclose(f);
}
