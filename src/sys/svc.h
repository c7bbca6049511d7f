/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* svc.h: the syscall wrappers of the system handles (src/svc/): child
 * processes (clone3, fork, pidfd_open, waitid, pidfd_send_signal) and
 * inotify.
 *
 * Same rules as sys.h: -errno returns, every fd made close-on-exec from
 * birth. One addition: the child's side of a spawn (from clone to execve)
 * runs in a copy of a possibly multi-threaded parent, so it is
 * async-signal-safe -- raw syscalls only, no allocation, no locks, no fault
 * injection, and it never returns.
 */
#ifndef GYRE_SYS_SVC_H
#define GYRE_SYS_SVC_H

#include <signal.h>
#include <stdint.h>

/* What the child does between clone and execve, prepared by the parent. */
struct gyre__child {
    const char *path;   /* execve's file */
    const char *search; /* PATH to look path up in (it has no '/'), or NULL */
    char *const *argv;  /* NULL-terminated */
    char *const *envp;  /* NULL-terminated; never NULL here */
    const char *cwd;    /* NULL: stay */
    int src[3];         /* the fd to become 0, 1, 2 (src[i] == i: keep it) */
    int errfd;          /* CLOEXEC pipe: a failed step writes its errno here */
    unsigned int maxfd; /* close-all bound when neither close_range nor /proc works */
};

/* Makes a child with clone3(CLONE_PIDFD) (Linux 5.5): returns its pid (> 0)
 * with *pidfd set, or -errno with no child made. -ENOSYS, -EPERM (seccomp
 * profiles refuse clone3 so that libc falls back to clone), -E2BIG and
 * -EINVAL mean clone3 is unusable here: the answer is remembered, and later
 * calls return -ENOSYS at once. The child runs gyre__child's steps and never
 * returns. Never injected. */
int gyre__sys_spawn_clone3(const struct gyre__child *c, int *pidfd);
/* The same with fork (the clone syscall): the pid, or -errno. enomem. */
int gyre__sys_spawn_fork(const struct gyre__child *c);
/* Reads the child's verdict from the read end of errfd (blocking until
 * execve closes the write end or the child writes an errno): 0 when the
 * exec happened, else -errno of the step that failed. Retries EINTR. */
int gyre__sys_spawn_result(int errrd);

/* pidfd_open(pid, 0) (Linux 5.3), O_CLOEXEC by the kernel. Remembers
 * -ENOSYS and -EPERM like spawn_clone3. enomem. */
int gyre__sys_pidfd_open(int pid);
/* pidfd_send_signal(pidfd, signo, NULL, 0) (Linux 5.1). */
int gyre__sys_pidfd_send_signal(int pidfd, int signo);
int gyre__sys_kill(int pid, int signo);

/* waitid(WEXITED) for one child, by pidfd (P_PIDFD, Linux 5.4; -EINVAL
 * before) or by pid (pidfd < 0). nohang: WNOHANG. Returns 1 when the child
 * was reaped, with *code its exit code and *signo 0, or *code 0 and *signo
 * the signal that ended it; 0 when nohang and it is still running; -errno
 * (-ECHILD: not our child, or already reaped, e.g. SIGCHLD set to SIG_IGN).
 * Retries EINTR. Never reaps any other child. */
int gyre__sys_wait_child(int pidfd, int pid, int nohang, int *code, int *signo);

/* Blocks every signal in the calling thread, saving the mask in *old, and
 * puts it back. Around a spawn, so that no handler of the parent runs in the
 * child before execve. */
void gyre__sys_block_signals(sigset_t *old);
void gyre__sys_restore_signals(const sigset_t *old);

/* Sets O_NONBLOCK on fd. */
int gyre__sys_set_nonblock(int fd);
/* The RLIMIT_NOFILE soft limit (at least 1024). */
unsigned int gyre__sys_nofile(void);

/* --- inotify --- */

/* inotify_init1(IN_CLOEXEC | IN_NONBLOCK). enomem. */
int gyre__sys_inotify_init(void);
/* inotify_add_watch: the watch descriptor, or -errno. */
int gyre__sys_inotify_add_watch(int fd, const char *path, uint32_t mask);

#endif
