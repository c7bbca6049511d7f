/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* trysend.c: gyre_try_send() and gyre_try_write(), a write made now with
 * no op (libuv's uv_try_write): an echo that can send at once pays one
 * syscall and no op state, and submits an op only for what is left.
 *
 * Order (DESIGN.md rule 5) is kept by refusing, not by queueing: while an op
 * of gyre's holds the fd's write side, the try says -EAGAIN without a
 * syscall, so its bytes never overtake an op submitted before it. What holds
 * the side is what op.c and emul.c already count: the emulation's write
 * queue, the ops waiting their turn on the side, and the ops in the backend
 * (order_busy). Ops still behind a link have not started, and a try is an
 * op that starts and ends at once, so it may go before them as a later op
 * could. Everything goes through src/sys/, so GYRE_FAULTS injects here as
 * into the emulation's own sends (EINTR is retried, EAGAIN returned, a short
 * count returned as the kernel's would be).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "sys/sys.h"

enum {
    WRITE_SIDE = 1 /* order_wait[] and order_busy[] index of writes (op.c) */
};

/* 0 when a write to fd may go now; -EAGAIN while an op holds its write side;
 * -EBADF while a close of gyre's on it is under way. */
static int write_side_free(const gyre_loop *loop, int fd)
{
    const struct gyre__fdent *e;

    if ((size_t)fd >= loop->fds_cap)
        return 0; /* no op ever named it */
    e = &loop->fds[fd];
    if (e->closing != 0)
        return -EBADF;
    if (e->wq.head != NULL || e->order_wait[WRITE_SIDE].head != NULL ||
        e->order_busy[WRITE_SIDE] != 0)
        return -EAGAIN;
    return 0;
}

static int64_t send_now(int fd, const void *buf, size_t len, int flags)
{
    int64_t n;

    do
        n = gyre__sys_send(fd, buf, len, flags);
    while (n == -EINTR);
    return n;
}

GYRE_API int64_t gyre_try_send(gyre_loop *loop, int fd, const void *buf, size_t len, int flags)
{
    int r;

    if (loop == NULL || (buf == NULL && len != 0))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    r = write_side_free(loop, fd);
    if (r < 0)
        return r;
    return send_now(fd, buf, len, flags);
}

GYRE_API int64_t gyre_try_write(gyre_loop *loop, int fd, const void *buf, size_t len)
{
    struct gyre__fdent *e;
    int64_t n;
    int r;

    if (loop == NULL || (buf == NULL && len != 0))
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    r = write_side_free(loop, fd);
    if (r < 0)
        return r;
    /* A socket, as learnt (a stale guess says ENOTSOCK and is corrected),
     * is sent to: the fast path. */
    r = gyre__fd_reserve(loop, fd);
    if (r < 0)
        return r;
    e = &loop->fds[fd];
    if (e->kind == GYRE__FD_SOCKET || e->kind == GYRE__FD_UNKNOWN) {
        int k = e->kind == GYRE__FD_SOCKET ? 1 : gyre__sys_fd_kind(fd);

        if (k < 0)
            return k; /* not open: nothing learnt for a number not in use */
        if (k == 1) {
            e->kind = GYRE__FD_SOCKET;
            n = send_now(fd, buf, len, 0);
            if (n != -ENOTSOCK)
                return n;
        }
    }
    /* Anything else is asked every time, kind and O_NONBLOCK, not taken from
     * the table: a number closed with close(2) and reused, or an fcntl(2),
     * would otherwise let a write block the loop (a tty, a character device;
     * a pipe before Linux 5.8, where RWF_NOWAIT is refused), or a write to a
     * file overtake a file op at the current position, which the order
     * rules do not track. Only O_NONBLOCK keeps every such kind from
     * blocking; a regular file's write never waits for readiness, so there
     * is nothing to try (gyre_op_write() is the way). */
    r = gyre__sys_fd_kind(fd);
    if (r < 0)
        return r;
    if (r == 1) /* a socket after all: the number changed hands */
        return send_now(fd, buf, len, 0);
    e->kind = r == 2 ? GYRE__FD_FILE : GYRE__FD_OTHER;
    if (r == 2)
        return -EINVAL;
    r = gyre__sys_fcntl_getfl(fd);
    if (r < 0)
        return r;
    if (!(r & O_NONBLOCK))
        return -EINVAL;
    do
        n = gyre__sys_write_nosigpipe(fd, buf, len);
    while (n == -EINTR);
    return n;
}
