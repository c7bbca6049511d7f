/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* paio.c: wrappers for glibc's POSIX AIO (aio_read(3) and friends), used by
 * the posixaio file engine.
 *
 * These are library calls, not syscalls: glibc (in libc itself since 2.34,
 * before that in librt) queues each request for one of its helper threads,
 * which does a plain pread/pwrite/fsync. They go through src/sys/ all the
 * same, so that GYRE_FAULTS reaches them and the engine sees -errno only.
 *
 * Invariants: as sys.c. Faults are injected only into the calls that hand a
 * request to glibc, and only those glibc itself can return there: EAGAIN
 * (glibc could not allocate its request entry or start a helper thread) and,
 * for reads and writes, a shorter aio_nbytes, written into the aiocb before
 * glibc sees it. aio_read/aio_write/aio_fsync never fail with EINTR (they do
 * not block), so EINTR is never injected; the calls that only look at a
 * request (error, return, cancel, suspend) are never injected.
 */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "sys/inject.h"
#include "sys/sys.h"

#define NS_PER_SEC INT64_C(1000000000)

/* EAGAIN as glibc gives it when it cannot take a request now. */
static int inject_paio_again(void)
{
    return FAULTS_ON() && gyre__fault_hit(GYRE__FAULT_EAGAIN);
}

static void inject_paio_short(struct aiocb *cb)
{
    if (FAULTS_ON())
        cb->aio_nbytes = inject_short_file(cb->aio_fildes, cb->aio_nbytes);
}

int gyre__sys_aio_read(struct aiocb *cb)
{
    if (inject_paio_again())
        return -EAGAIN;
    inject_paio_short(cb);
    return aio_read(cb) < 0 ? -errno : 0;
}

int gyre__sys_aio_write(struct aiocb *cb)
{
    if (inject_paio_again())
        return -EAGAIN;
    inject_paio_short(cb);
    return aio_write(cb) < 0 ? -errno : 0;
}

int gyre__sys_aio_fsync(struct aiocb *cb, int datasync)
{
    if (inject_paio_again())
        return -EAGAIN;
    return aio_fsync(datasync ? O_DSYNC : O_SYNC, cb) < 0 ? -errno : 0;
}

int gyre__sys_aio_error(const struct aiocb *cb)
{
    /* glibc reads the error under its request mutex, the one its helper
     * thread holds while it stores the result and sends the notification:
     * once this says "done", glibc is finished with the aiocb. */
    int err = aio_error(cb);

    if (err < 0)
        return -errno;
    return -err;
}

int64_t gyre__sys_aio_return(struct aiocb *cb)
{
    ssize_t n = aio_return(cb);

    if (n >= 0)
        return (int64_t)n;
    /* aio_return's -1 only says that the request failed; its error is the
     * one aio_error reports. */
    n = aio_error(cb);
    return n > 0 ? -(int64_t)n : -EIO;
}

int gyre__sys_aio_cancel(int fd, struct aiocb *cb)
{
    int r = aio_cancel(fd, cb);

    return r < 0 ? -errno : r;
}

int gyre__sys_aio_suspend(const struct aiocb *const list[], int n, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;

    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / NS_PER_SEC);
        ts.tv_nsec = (long)(timeout_ns % NS_PER_SEC);
        tsp = &ts;
    }
    return aio_suspend(list, n, tsp) < 0 ? -errno : 0;
}

int gyre__sys_getpid(void)
{
    return (int)getpid();
}
