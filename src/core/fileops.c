/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* fileops.c: file and path operations as blocking syscalls (for pool
 * threads), the O_DIRECT alignment rules, and what the core checks before a
 * file read or write goes anywhere.
 */
#include <errno.h>
#include <fcntl.h>

#include "core/loop.h"
#include "core/pool.h"
#include "sys/sys.h"

GYRE_API int gyre_file_alignment(int fd, uint32_t *mem, uint32_t *off)
{
    if (fd < 0 || mem == NULL || off == NULL)
        return -EINVAL;
    return gyre__sys_dio_align(fd, mem, off);
}

int64_t gyre__fileop_exec(gyre_op *op)
{
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_FTRUNCATE:
        return gyre__sys_ftruncate(op->gyre__priv.fd, op->gyre__priv.off);
    case GYRE__OP_FALLOCATE:
        return gyre__sys_fallocate(op->gyre__priv.fd, (int)op->gyre__priv.arg, op->gyre__priv.off,
                                   op->gyre__priv.off2);
    case GYRE__OP_UNLINKAT:
        return gyre__sys_unlinkat(op->gyre__priv.fd, op->gyre__priv.addr, (int)op->gyre__priv.arg);
    case GYRE__OP_RENAMEAT:
        return gyre__sys_renameat(op->gyre__priv.fd, op->gyre__priv.addr, (int)op->gyre__priv.arg2,
                                  op->gyre__priv.addr2, op->gyre__priv.arg);
    case GYRE__OP_MKDIRAT:
        return gyre__sys_mkdirat(op->gyre__priv.fd, op->gyre__priv.addr, op->gyre__priv.arg2);
    case GYRE__OP_COPY_FILE_RANGE:
        return gyre__sys_copy_file_range(op->gyre__priv.fd, op->gyre__priv.off,
                                         (int)op->gyre__priv.arg2, op->gyre__priv.off2,
                                         op->gyre__priv.len, op->gyre__priv.arg);
    case GYRE__OP_GETDENTS:
        return gyre__sys_getdents(op->gyre__priv.fd, op->gyre__priv.addr, op->gyre__priv.len);
    default:
        return -EINVAL;
    }
}

static int is_rw(unsigned opc)
{
    return opc == GYRE__OP_READ || opc == GYRE__OP_WRITE || opc == GYRE__OP_READV ||
           opc == GYRE__OP_WRITEV;
}

/* O_DIRECT is asked of the kernel at every file read or write (one
 * fcntl), never cached: the file behind a number changes without gyre when
 * a program closes it and opens another (test file_direct_fd_reuse), and a
 * wrong guess would send an O_DIRECT read down the inline path (where the
 * device read runs on the loop thread) or skip the alignment check. */
int gyre__fd_is_direct(gyre_loop *loop, int fd)
{
    int fl = gyre__sys_fcntl_getfl(fd);

    (void)loop;
    return fl >= 0 && (fl & O_DIRECT);
}

/* Whether a read may block is cached: a wrong guess costs at most a spare
 * try per readiness (told blocking) or is the program's own doing (a
 * blocking fd swapped in under a number gyre saw non-blocking). */
int gyre__fd_is_blocking(gyre_loop *loop, int fd)
{
    struct gyre__fdent *e = &loop->fds[fd];

    if (e->blocking == 0) {
        int fl = gyre__sys_fcntl_getfl(fd);

        e->blocking = fl >= 0 && !(fl & O_NONBLOCK) ? 1 : 2;
    }
    return e->blocking == 1;
}

/* Whether every buffer, the offset and every length of a read or write on an
 * O_DIRECT fd follow its rules: a misaligned request fails here, before any
 * engine sees it, because the kernel's answer differs by engine and file
 * system and a user must never see memory outside the buffer touched. */
static int aligned(const gyre_op *op)
{
    struct iovec one = {.iov_base = op->gyre__priv.addr, .iov_len = op->gyre__priv.len};
    const struct iovec *iov = &one;
    uint32_t cnt = 1, mem, off;

    /* The rules of the file there now (see gyre__fd_is_direct): one statx
     * per O_DIRECT op, small next to the device I/O it guards. */
    if (gyre__sys_dio_align(op->gyre__priv.fd, &mem, &off) < 0)
        return 1; /* no rules known: let the kernel judge */
    if (op->gyre__priv.opcode == GYRE__OP_READV || op->gyre__priv.opcode == GYRE__OP_WRITEV) {
        iov = op->gyre__priv.addr;
        cnt = op->gyre__priv.len;
    }
    if (op->gyre__priv.off != GYRE_OFF_CUR && op->gyre__priv.off % off != 0)
        return 0;
    for (uint32_t i = 0; i < cnt; i++) {
        if ((uintptr_t)iov[i].iov_base % mem != 0 || iov[i].iov_len % off != 0)
            return 0;
    }
    return 1;
}

int gyre__file_precheck(gyre_loop *loop, gyre_op *op)
{
    unsigned opc = op->gyre__priv.opcode;
    struct iovec one = {.iov_base = op->gyre__priv.addr, .iov_len = op->gyre__priv.len};
    const struct iovec *iov = &one;
    int cnt = 1;
    int64_t r;

    if (!is_rw(opc))
        return 0;
    if (gyre__fd_is_direct(loop, op->gyre__priv.fd)) {
        op->gyre__priv.sflags |= GYRE__OPF_DIRECT;
        if (!aligned(op)) {
            gyre__op_ready(loop, op, -EINVAL);
            return 1;
        }
        return 0;
    }
    if ((opc != GYRE__OP_READ && opc != GYRE__OP_READV) || op->gyre__priv.off == GYRE_OFF_CUR)
        return 0;
    /* The inline fast path: a buffered read the page cache can answer whole
     * completes here (its callback still runs from the loop), with no
     * thread hop and no ring round trip. A partial answer is not a short
     * read: the engine then does the whole read (the cached part again). */
    if (opc == GYRE__OP_READV) {
        iov = op->gyre__priv.addr;
        cnt = (int)op->gyre__priv.len;
    }
    r = gyre__sys_preadv_nowait(op->gyre__priv.fd, iov, cnt, op->gyre__priv.off);
    if (r == 0 || (r > 0 && (uint64_t)r == gyre__op_wanted_bytes(op)) || r == -EBADF ||
        r == -EISDIR || r == -ESPIPE) {
        loop->stats.file_inline++;
        gyre__op_ready(loop, op, r);
        return 1;
    }
    return 0;
}
