/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* aio.c: syscall wrappers for Linux kernel AIO (io_setup, io_destroy,
 * io_submit, io_getevents, io_cancel) and the memfd its feature probe uses.
 *
 * Invariants: as sys.c. glibc has no wrappers for these, so they go through
 * syscall(2) with the kernel's own types from <linux/aio_abi.h> (no libaio).
 * A context crosses sys.h as a uint64_t so callers need not include that
 * header. Faults are injected before the kernel acts: an injected io_submit
 * EAGAIN means the kernel saw none of the iocbs, exactly like a real
 * "context full" EAGAIN, so the caller resubmits them all; or the kernel is
 * handed only a prefix, and the count says how many it took, as when it runs
 * out of room part way; io_getevents may be told EINTR.
 */
#include <errno.h>
#include <linux/aio_abi.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sys/inject.h"
#include "sys/sys.h"

#define NS_PER_SEC INT64_C(1000000000)

/* The timespec io_getevents takes: the kernel's old one, two longs on every
 * ABI that has SYS_io_getevents. */
struct old_timespec {
    long tv_sec;
    long tv_nsec;
};

int gyre__sys_io_setup(unsigned nr, uint64_t *ctx)
{
    aio_context_t c = 0; /* the kernel requires 0 on entry */

    if (inject_enomem())
        return -ENOMEM;
    if (syscall(SYS_io_setup, nr, &c) < 0)
        return -errno;
    *ctx = (uint64_t)c;
    return 0;
}

int gyre__sys_io_destroy(uint64_t ctx)
{
    return syscall(SYS_io_destroy, (aio_context_t)ctx) < 0 ? -errno : 0;
}

int gyre__sys_io_submit(uint64_t ctx, long nr, struct iocb **iocbs)
{
    long n;

    if (FAULTS_ON()) {
        int r;

        inject_delay();
        /* A real EAGAIN comes when the kernel runs out of room part way: it
         * took none of the iocbs (the error) or a prefix (the count). Both
         * are injected, half and half. */
        r = gyre__fault_hit(GYRE__FAULT_EAGAIN);
        if (r && (nr < 2 || (r & 1)))
            return -EAGAIN;
        if (r)
            nr = 1 + (r >> 1) % (nr - 1);
    }
    n = syscall(SYS_io_submit, (aio_context_t)ctx, nr, iocbs);
    return n < 0 ? -errno : (int)n;
}

int gyre__sys_io_getevents(uint64_t ctx, long min_nr, long nr, struct io_event *evs,
                           int64_t timeout_ns)
{
    struct old_timespec ts, *tsp = NULL;
    long n;

    if (inject_eintr())
        return -EINTR;
    if (timeout_ns >= 0) {
        ts.tv_sec = (long)(timeout_ns / NS_PER_SEC);
        ts.tv_nsec = (long)(timeout_ns % NS_PER_SEC);
        tsp = &ts;
    }
    n = syscall(SYS_io_getevents, (aio_context_t)ctx, min_nr, nr, evs, tsp);
    return n < 0 ? -errno : (int)n;
}

int gyre__sys_io_cancel(uint64_t ctx, struct iocb *iocb, struct io_event *result)
{
    return syscall(SYS_io_cancel, (aio_context_t)ctx, iocb, result) < 0 ? -errno : 0;
}

int gyre__sys_memfd(const char *name)
{
    int fd;

    if (inject_enomem())
        return -ENOMEM;
    fd = memfd_create(name, MFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}
