/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* svc.c: the syscall wrappers declared in svc.h -- spawning and reaping
 * children, and inotify.
 *
 * Invariants: the parent-side wrappers follow sys.c (-errno, CLOEXEC from
 * birth, faults injected before the kernel acts). The child side
 * (child_run) is async-signal-safe: it runs in a copy of a parent that may
 * have other threads holding locks, so it makes raw syscalls only, touches
 * no lock or allocator, and ends in execve or _exit. It never injects
 * faults: a fault there would be a child that fails for no reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys/inject.h"
#include "sys/svc.h"

/* New syscalls share one number on every architecture but alpha. */
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif

/* struct clone_args as of Linux 5.3 (CLONE_ARGS_SIZE_VER0, 64 bytes); our
 * own copy, since <linux/sched.h> clashes with <sched.h>. */
struct clone_args_v0 {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
};

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Set once clone3 or pidfd_open turned out unusable here; relaxed is
 * enough, a thread that misses the store only tries the call once more. */
static atomic_int clone3_off;
static atomic_int pidfd_open_off;

/* --- the child's side: async-signal-safe from here to execve --- */

static _Noreturn void child_fail(int errfd, int err)
{
    ssize_t n;

    do {
        n = write(errfd, &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    _exit(127);
}

/* Closes every fd >= 3 but keep, by listing /proc/self/fd (before Linux
 * 5.9, or where seccomp refuses close_range). Rereads the directory until a
 * pass closes nothing, since closing while reading may skip entries.
 * Returns 0, or -1 when /proc is not there. */
static int child_close_proc(int keep)
{
    char buf[1024] __attribute__((aligned(8)));
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int closed = 1;
    long n = 0;

    if (dfd < 0)
        return -1;
    while (closed && n >= 0) {
        closed = 0;
        lseek(dfd, 0, SEEK_SET);
        while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0) {
            long off = 0;

            while (off < n) {
                const struct dirent64_raw *d = (const void *)(buf + off);
                const char *s = d->d_name;
                int fd = 0;

                off += d->d_reclen;
                if (*s < '0' || *s > '9')
                    continue;
                while (*s >= '0' && *s <= '9')
                    fd = fd * 10 + (*s++ - '0');
                if (fd >= 3 && fd != keep && fd != dfd) {
                    close(fd);
                    closed = 1;
                }
            }
        }
    }
    close(dfd);
    return n < 0 ? -1 : 0;
}

/* Every fd but 0, 1, 2 and keep (the CLOEXEC error pipe, which execve
 * closes) is closed, so the program sees only its stdio (K1). */
static void child_close_others(int keep, unsigned int maxfd)
{
    unsigned int fd;

    if ((keep == 3 || syscall(__NR_close_range, 3u, (unsigned int)keep - 1, 0u) == 0) &&
        syscall(__NR_close_range, (unsigned int)keep + 1, ~0u, 0u) == 0)
        return;
    if (child_close_proc(keep) == 0)
        return;
    for (fd = 3; fd < maxfd; fd++)
        if ((int)fd != keep)
            close((int)fd);
}

/* execve of c->path, or of the first match along c->search (posix_spawnp's
 * rules: ENOENT, ENOTDIR and EACCES move on, EACCES is remembered, any
 * other error stops). Returns only on failure, with the errno to report. */
static int child_exec(const struct gyre__child *c)
{
    char buf[PATH_MAX];
    size_t nlen;
    int seen_eacces = 0;
    const char *dir = c->search;

    if (dir == NULL) {
        execve(c->path, c->argv, c->envp);
        return errno;
    }
    nlen = strlen(c->path);
    for (;;) {
        const char *end = strchr(dir, ':');
        size_t dlen = end != NULL ? (size_t)(end - dir) : strlen(dir);

        /* An empty entry is the working directory, as in execvp(). */
        if (dlen + 1 + nlen + 1 <= sizeof buf) {
            size_t at = 0;

            if (dlen != 0) {
                memcpy(buf, dir, dlen);
                buf[dlen] = '/';
                at = dlen + 1;
            }
            memcpy(buf + at, c->path, nlen + 1);
            execve(buf, c->argv, c->envp);
            if (errno == EACCES)
                seen_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR)
                return errno;
        }
        if (end == NULL)
            break;
        dir = end + 1;
    }
    return seen_eacces ? EACCES : ENOENT;
}

static _Noreturn void child_run(const struct gyre__child *c)
{
    struct sigaction dfl, old;
    sigset_t none;
    int errfd = c->errfd;
    int src[3];
    int i, sig;

    /* A handler of the parent must not run in the child once the mask
     * opens: caught signals go back to their default (execve would do the
     * same); ignored ones stay ignored, as execve keeps them. */
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (sig = 1; sig < _NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_IGN &&
            old.sa_handler != SIG_DFL)
            sigaction(sig, &dfl, NULL);
    }
    /* Any source fd below 3 that is not already in place moves above 2
     * first, so that no dup2 onto 0..2 clobbers a source still needed. */
    if (errfd < 3 && (errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 3)) < 0)
        child_fail(c->errfd, errno);
    for (i = 0; i < 3; i++) {
        src[i] = c->src[i];
        if (src[i] >= 0 && src[i] < 3 && src[i] != i &&
            (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3)) < 0)
            child_fail(errfd, errno);
    }
    for (i = 0; i < 3; i++) {
        if (src[i] == i) {
            /* Inherited as is: it must survive execve. A closed fd stays
             * closed. */
            if (fcntl(i, F_SETFD, 0) < 0 && errno != EBADF)
                child_fail(errfd, errno);
        } else if (dup2(src[i], i) < 0) { /* dup2 clears CLOEXEC on i */
            child_fail(errfd, errno);
        }
    }
    child_close_others(errfd, c->maxfd);
    if (c->cwd != NULL && chdir(c->cwd) < 0)
        child_fail(errfd, errno);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    child_fail(errfd, child_exec(c));
}

/* --- the parent's side --- */

int gyre__sys_spawn_clone3(const struct gyre__child *c, int *pidfd)
{
    struct clone_args_v0 a;
    int fd = -1;
    long pid;

    if (atomic_load_explicit(&clone3_off, memory_order_relaxed))
        return -ENOSYS;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_PIDFD;
    a.pidfd = (uint64_t)(uintptr_t)&fd;
    /* SIGCHLD keeps it an ordinary child: waitid finds it without __WALL. */
    a.exit_signal = SIGCHLD;
    /* No CLONE_VM: fork semantics, so the child has its own stack and the
     * parent's memory is never written by it. */
    pid = syscall(__NR_clone3, &a, sizeof a);
    if (pid == 0)
        child_run(c);
    if (pid < 0) {
        int err = errno;

        if (err == ENOSYS || err == EPERM || err == E2BIG || err == EINVAL) {
            atomic_store_explicit(&clone3_off, 1, memory_order_relaxed);
            return -ENOSYS;
        }
        return -err;
    }
    *pidfd = fd;
    return (int)pid;
}

int gyre__sys_spawn_fork(const struct gyre__child *c)
{
    pid_t pid;

    if (inject_enomem())
        return -ENOMEM;
    pid = fork();
    if (pid == 0)
        child_run(c);
    return pid < 0 ? -errno : (int)pid;
}

int gyre__sys_spawn_result(int errrd)
{
    int err = 0;
    size_t got = 0;

    while (got < sizeof err) {
        ssize_t n = read(errrd, (char *)&err + got, sizeof err - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got == 0)
        return 0; /* execve closed the pipe */
    return got == sizeof err && err > 0 ? -err : -EIO;
}

int gyre__sys_pidfd_open(int pid)
{
    long fd;

    if (atomic_load_explicit(&pidfd_open_off, memory_order_relaxed))
        return -ENOSYS;
    if (inject_enomem())
        return -ENOMEM;
    fd = syscall(__NR_pidfd_open, pid, 0u);
    if (fd < 0) {
        if (errno == ENOSYS || errno == EPERM) {
            atomic_store_explicit(&pidfd_open_off, 1, memory_order_relaxed);
            return -ENOSYS;
        }
        return -errno;
    }
    return (int)fd;
}

int gyre__sys_pidfd_send_signal(int pidfd, int signo)
{
    return syscall(__NR_pidfd_send_signal, pidfd, signo, NULL, 0u) < 0 ? -errno : 0;
}

int gyre__sys_kill(int pid, int signo)
{
    return kill(pid, signo) < 0 ? -errno : 0;
}

int gyre__sys_wait_child(int pidfd, int pid, int nohang, int *code, int *signo)
{
    int options = WEXITED | (nohang ? WNOHANG : 0);
    siginfo_t si;
    int rc;

    memset(&si, 0, sizeof si);
    do {
        if (pidfd >= 0)
            rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, options);
        else
            rc = waitid(P_PID, (id_t)pid, &si, options);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (si.si_pid == 0)
        return 0; /* WNOHANG and still running */
    if (si.si_code == CLD_EXITED) {
        *code = si.si_status;
        *signo = 0;
    } else {
        *code = 0;
        *signo = si.si_status;
    }
    return 1;
}

void gyre__sys_block_signals(sigset_t *old)
{
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, old);
}

void gyre__sys_restore_signals(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

int gyre__sys_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

unsigned int gyre__sys_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < 1024)
        return 1024;
    return rl.rlim_cur > (1u << 20) ? 1u << 20 : (unsigned int)rl.rlim_cur;
}

/* --- inotify --- */

int gyre__sys_inotify_init(void)
{
    int fd;

    if (inject_enomem())
        return -ENOMEM;
    fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int gyre__sys_inotify_add_watch(int fd, const char *path, uint32_t mask)
{
    int wd = inotify_add_watch(fd, path, mask);

    return wd < 0 ? -errno : wd;
}
