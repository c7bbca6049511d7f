/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* sys.c: the syscall wrappers declared in sys.h.
 *
 * Invariants: every wrapper returns -errno on failure (errno itself is left
 * however libc left it, except in the async-signal-safe eventfd_signal, which
 * restores it); every fd made here is close-on-exec from birth, never by a
 * later fcntl, so a concurrent fork+exec cannot leak it; faults are injected
 * before the syscall, so an injected error means the kernel did nothing, and
 * all injection hides behind one __builtin_expect branch per call.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sys/inject.h"
#include "sys/sys.h"

#define NS_PER_SEC INT64_C(1000000000)
#define NS_PER_MS INT64_C(1000000)

/* NULL (wait forever) for a negative timeout; *ts otherwise. */
static struct timespec *ns_to_timespec(int64_t ns, struct timespec *ts)
{
    int64_t sec;

    if (ns < 0)
        return NULL;
    sec = ns / NS_PER_SEC;
    /* A 32-bit time_t cannot hold 2^63 ns; 68 years is forever enough. */
    if (sizeof(time_t) < sizeof(int64_t) && sec > INT32_MAX)
        sec = INT32_MAX;
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)(ns % NS_PER_SEC);
    return ts;
}

/* Milliseconds rounded up, so 0.3 ms waits 1 ms and a timer is never woken
 * early into a busy loop of zero-timeout waits. Past INT_MAX ms (24.8 days)
 * the wait ends early; the core just waits again. */
static int ns_to_ms_up(int64_t ns)
{
    int64_t ms;

    if (ns < 0)
        return -1;
    ms = ns / NS_PER_MS + (ns % NS_PER_MS != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

uint64_t gyre__sys_now_ns(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * (uint64_t)NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

int gyre__sys_close(int fd)
{
    /* Linux frees the fd number before it can report EINTR, so the fd is
     * closed either way; retrying could close an fd another thread has just
     * been given. EINTR therefore counts as success. */
    if (close(fd) < 0 && errno != EINTR)
        return -errno;
    return 0;
}

ssize_t gyre__sys_read(int fd, void *buf, size_t len)
{
    int rc = inject_io(&len);
    ssize_t n;

    if (rc < 0)
        return rc;
    n = read(fd, buf, len);
    return n < 0 ? -errno : n;
}

ssize_t gyre__sys_write(int fd, const void *buf, size_t len)
{
    int rc = inject_io(&len);
    ssize_t n;

    if (rc < 0)
        return rc;
    n = write(fd, buf, len);
    return n < 0 ? -errno : n;
}

int gyre__sys_pipe(int fds[2], int flags)
{
    if (inject_enomem())
        return -ENOMEM;
    return pipe2(fds, flags | O_CLOEXEC) < 0 ? -errno : 0;
}

int gyre__sys_eventfd(unsigned int initval, int flags)
{
    int fd;

    if (inject_enomem())
        return -ENOMEM;
    fd = eventfd(initval, flags | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int gyre__sys_eventfd_read(int fd, uint64_t *value)
{
    ssize_t n;

    if (FAULTS_ON()) {
        int rc = inject_again_intr();

        if (rc < 0)
            return rc;
    }
    /* An eventfd read is all 8 bytes or an error, never short. */
    n = read(fd, value, sizeof(*value));
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(*value) ? 0 : -EIO;
}

int gyre__sys_eventfd_signal(int fd)
{
    const uint64_t one = 1;
    int saved_errno = errno;
    int rc = 0;
    ssize_t n;

    /* Called from signal handlers: write() is async-signal-safe, nothing is
     * injected (the faults state is not ours to touch here), and errno is
     * restored so the interrupted code does not see it change. */
    do
        n = write(fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        rc = -errno;
    errno = saved_errno;
    return rc;
}

int gyre__sys_fcntl_getfd(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    return flags < 0 ? -errno : flags;
}

int gyre__sys_epoll_create(void)
{
    int fd;

    if (inject_enomem())
        return -ENOMEM;
    fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int gyre__sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    /* Only ADD allocates in the kernel (an epitem), so only ADD can really
     * fail with ENOMEM; an injected failure of DEL would leave a registration
     * behind that no real kernel would. */
    if (op == EPOLL_CTL_ADD && inject_enomem())
        return -ENOMEM;
    return epoll_ctl(epfd, op, fd, ev) < 0 ? -errno : 0;
}

#ifdef SYS_epoll_pwait2
/* struct __kernel_timespec: 64-bit fields on every architecture, unlike
 * struct timespec with a 32-bit time_t. */
struct kernel_timespec {
    int64_t tv_sec;
    int64_t tv_nsec;
};

/* 0 = not tried yet, 1 = epoll_pwait2 works, -1 = fall back to epoll_wait.
 * Only this value is shared, nothing is published with it, so relaxed
 * ordering suffices; two threads racing to the first call both probe, which
 * is harmless. */
static atomic_int have_pwait2;
#endif

int gyre__sys_epoll_wait(int epfd, struct epoll_event *evs, int max, int64_t timeout_ns)
{
    int n;

    if (inject_eintr())
        return -EINTR;
#ifdef SYS_epoll_pwait2
    if (atomic_load_explicit(&have_pwait2, memory_order_relaxed) >= 0) {
        struct kernel_timespec ts, *tsp = NULL;

        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / NS_PER_SEC;
            ts.tv_nsec = timeout_ns % NS_PER_SEC;
            tsp = &ts;
        }
        /* No sigmask, so the kernel ignores the sigset size. */
        n = (int)syscall(SYS_epoll_pwait2, epfd, evs, max, tsp, NULL, (size_t)0);
        if (n >= 0 || (errno != ENOSYS && errno != EPERM)) {
            atomic_store_explicit(&have_pwait2, 1, memory_order_relaxed);
            return n < 0 ? -errno : n;
        }
        /* ENOSYS before Linux 5.11; EPERM from seccomp profiles written
         * before the syscall existed (older container defaults refuse unknown
         * syscalls that way). epoll_pwait2 has no EPERM of its own. */
        atomic_store_explicit(&have_pwait2, -1, memory_order_relaxed);
    }
#endif
    n = epoll_wait(epfd, evs, max, ns_to_ms_up(timeout_ns));
    return n < 0 ? -errno : n;
}

int gyre__sys_poll(struct pollfd *fds, nfds_t n, int64_t timeout_ns)
{
    struct timespec ts;
    int rc;

    if (inject_eintr())
        return -EINTR;
    rc = ppoll(fds, n, ns_to_timespec(timeout_ns, &ts), NULL);
    return rc < 0 ? -errno : rc;
}

int gyre__sys_select(int nfds, fd_set *r, fd_set *w, fd_set *e, int64_t timeout_ns)
{
    struct timespec ts;
    int rc;

    if (inject_eintr())
        return -EINTR;
    rc = pselect(nfds, r, w, e, ns_to_timespec(timeout_ns, &ts), NULL);
    return rc < 0 ? -errno : rc;
}

int gyre__sys_sigaction(int signo, const struct sigaction *act, struct sigaction *old)
{
    return sigaction(signo, act, old) < 0 ? -errno : 0;
}
