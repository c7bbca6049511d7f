/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* io.c: syscall wrappers for operations: socket and vectored I/O (non-blocking,
 * called by the readiness emulation) and file I/O (blocking, called on pool
 * threads).
 *
 * Invariants: as sys.c. Sockets are always written with MSG_NOSIGNAL, and
 * non-sockets through gyre__sys_writev_nosigpipe, so no write gyre makes can
 * kill the process with SIGPIPE (rule 6).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sys/inject.h"
#include "sys/sys.h"

static ssize_t ret(ssize_t n)
{
    return n < 0 ? -errno : n;
}

/* delay, then eagain/eintr, for calls whose length cannot be shortened in
 * place. */
static int inject_transient(void)
{
    if (!FAULTS_ON())
        return 0;
    inject_delay();
    return inject_again_intr();
}

/* inject_transient for socket messages: also ECONNRESET. */
static int inject_transient_sock(void)
{
    int rc = inject_transient();

    if (rc == 0 && FAULTS_ON())
        rc = inject_reset();
    return rc;
}

/* The faults a blocking file transfer can meet in a pool thread: a delay;
 * an EINTR (retried here, as a signal landing in the pool would be); a short
 * count, made by handing the kernel a shortened copy of the vector (at most
 * SHORT_IOV entries are copied; longer vectors are never shortened). On an
 * O_DIRECT fd the count is whole alignment units (inject_short_file()), and
 * so is every entry the copy cuts: those before it are (the core checked).
 * Returns the vector to use. Only call when FAULTS_ON(). */
#define SHORT_IOV 16
static const struct iovec *inject_file_io(int fd, const struct iovec *iov, int *cnt,
                                          struct iovec copy[SHORT_IOV])
{
    size_t total = 0, keep;
    int i;

    inject_delay();
    while (gyre__fault_hit(GYRE__FAULT_EINTR))
        ; /* the retry loop a real EINTR takes */
    if (*cnt <= 0 || *cnt > SHORT_IOV)
        return iov;
    for (i = 0; i < *cnt; i++)
        total += iov[i].iov_len;
    keep = inject_short_file(fd, total);
    if (keep == total)
        return iov;
    for (i = 0; i < *cnt && keep > 0; i++) {
        copy[i] = iov[i];
        if (copy[i].iov_len > keep)
            copy[i].iov_len = keep;
        keep -= copy[i].iov_len;
    }
    *cnt = i;
    return copy;
}

/* Whether a vector moves nothing: such a call is answered at once, so it is
 * never told EAGAIN. */
static int iov_nothing(const struct iovec *iov, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        if (iov[i].iov_len != 0)
            return 0;
    }
    return 1;
}

ssize_t gyre__sys_readv(int fd, const struct iovec *iov, int cnt)
{
    int rc = FAULTS_ON() && !iov_nothing(iov, cnt > 0 ? (size_t)cnt : 0) ? inject_transient() : 0;

    return rc < 0 ? rc : ret(readv(fd, iov, cnt));
}

ssize_t gyre__sys_recv(int fd, void *buf, size_t len, int flags)
{
    int rc = inject_sock_io(&len);

    return rc < 0 ? rc : ret(recv(fd, buf, len, flags | MSG_DONTWAIT));
}

ssize_t gyre__sys_send(int fd, const void *buf, size_t len, int flags)
{
    int rc = inject_sock_io(&len);

    return rc < 0 ? rc : ret(send(fd, buf, len, flags | MSG_DONTWAIT | MSG_NOSIGNAL));
}

ssize_t gyre__sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
    int rc =
        FAULTS_ON() && msg->msg_iovlen <= IOV_MAX && !iov_nothing(msg->msg_iov, msg->msg_iovlen)
            ? inject_transient_sock()
            : 0;

    return rc < 0 ? rc : ret(recvmsg(fd, msg, flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
}

ssize_t gyre__sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    int rc = inject_transient_sock();

    return rc < 0 ? rc : ret(sendmsg(fd, msg, flags | MSG_DONTWAIT | MSG_NOSIGNAL));
}

int gyre__sys_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int rc = inject_transient();

    if (rc < 0)
        return rc;
    if (inject_enomem())
        return -ENOMEM;
    return (int)ret(accept4(fd, addr, len, flags | SOCK_CLOEXEC | SOCK_NONBLOCK));
}

int gyre__sys_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return (int)ret(connect(fd, addr, len));
}

int gyre__sys_socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

int gyre__sys_socket_type(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno;
    return type;
}

int gyre__sys_shutdown(int fd, int how)
{
    return (int)ret(shutdown(fd, how));
}

int gyre__sys_fd_kind(int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISSOCK(st.st_mode))
        return 1;
    return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) ? 2 : 0;
}

/* The write of gyre__sys_writev_nosigpipe and gyre__sys_write_nosigpipe,
 * after their faults. */
static ssize_t writev_nosigpipe(int fd, const struct iovec *iov, int cnt)
{
    sigset_t pipe_set, old, pending;
    int was_pending;
    ssize_t n;

    /* Block SIGPIPE in this thread around the write, so that a pipe with no
     * reader gives EPIPE instead of killing the process; a SIGPIPE the write
     * raised is then consumed, unless one was pending before (it belongs to
     * someone else and must stay). The standard recipe for libraries that
     * cannot change the process's disposition. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    /* RWF_NOWAIT keeps a blocking pipe from blocking the loop (pipes accept
     * it since Linux 5.8); elsewhere fall back to a plain writev. */
    n = pwritev2(fd, iov, cnt, -1, RWF_NOWAIT);
    if (n < 0 && errno == EOPNOTSUPP)
        n = writev(fd, iov, cnt);
    n = ret(n);
    if (n == -EPIPE && !was_pending) {
        const struct timespec zero = {0, 0};

        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return n;
}

ssize_t gyre__sys_writev_nosigpipe(int fd, const struct iovec *iov, int cnt)
{
    int rc = inject_transient();

    return rc < 0 ? rc : writev_nosigpipe(fd, iov, cnt);
}

ssize_t gyre__sys_write_nosigpipe(int fd, const void *buf, size_t len)
{
    int rc = inject_io(&len);
    struct iovec one = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};

    return rc < 0 ? rc : writev_nosigpipe(fd, &one, 1);
}

ssize_t gyre__sys_preadv(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    struct iovec copy[SHORT_IOV];
    ssize_t n;

    if (FAULTS_ON())
        iov = inject_file_io(fd, iov, &cnt, copy);

    do
        n = off == UINT64_MAX ? readv(fd, iov, cnt) : preadv(fd, iov, cnt, (off_t)off);
    while (n < 0 && errno == EINTR);
    return ret(n);
}

ssize_t gyre__sys_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    struct iovec copy[SHORT_IOV];
    ssize_t n;

    if (FAULTS_ON())
        iov = inject_file_io(fd, iov, &cnt, copy);

    do
        n = off == UINT64_MAX ? writev(fd, iov, cnt) : pwritev(fd, iov, cnt, (off_t)off);
    while (n < 0 && errno == EINTR);
    return ret(n);
}

int gyre__sys_openat(int dirfd, const char *path, int flags, unsigned mode)
{
    int fd;

    if (inject_enomem())
        return -ENOMEM;
    do
        fd = openat(dirfd, path, flags | O_CLOEXEC, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    return (int)ret(fd);
}

int gyre__sys_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out)
{
    return (int)ret(statx(dirfd, path, flags, mask, out));
}

int gyre__sys_fsync(int fd, int datasync)
{
    int r;

    do
        r = datasync ? fdatasync(fd) : fsync(fd);
    while (r < 0 && errno == EINTR);
    return (int)ret(r);
}

int gyre__sys_ftruncate(int fd, uint64_t len)
{
    int r;

    if (len > INT64_MAX)
        return -EINVAL;
    do
        r = ftruncate(fd, (off_t)len);
    while (r < 0 && errno == EINTR);
    return (int)ret(r);
}

int gyre__sys_fallocate(int fd, int mode, uint64_t off, uint64_t len)
{
    int r;

    if (off > INT64_MAX || len > INT64_MAX)
        return -EINVAL;
    do
        r = fallocate(fd, mode, (off_t)off, (off_t)len);
    while (r < 0 && errno == EINTR);
    return (int)ret(r);
}

int gyre__sys_unlinkat(int dirfd, const char *path, int flags)
{
    return (int)ret(unlinkat(dirfd, path, flags));
}

int gyre__sys_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                       unsigned flags)
{
    return (int)ret(renameat2(olddirfd, oldpath, newdirfd, newpath, flags));
}

int gyre__sys_mkdirat(int dirfd, const char *path, unsigned mode)
{
    return (int)ret(mkdirat(dirfd, path, (mode_t)mode));
}

ssize_t gyre__sys_copy_file_range(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out,
                                  size_t len, unsigned flags)
{
    off64_t in, out;
    ssize_t n;

    if (off_in > INT64_MAX || off_out > INT64_MAX)
        return -EINVAL;
    in = (off64_t)off_in;
    out = (off64_t)off_out;
    do
        n = copy_file_range(fd_in, &in, fd_out, &out, len, flags);
    while (n < 0 && errno == EINTR);
    return ret(n);
}

ssize_t gyre__sys_getdents(int fd, void *buf, size_t len)
{
    ssize_t n;

    do
        n = getdents64(fd, buf, len);
    while (n < 0 && errno == EINTR);
    return ret(n);
}

ssize_t gyre__sys_preadv_nowait(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    if (off > INT64_MAX)
        return -EINVAL;
    /* EAGAIN is this call's "not cached": the caller goes to its pool. */
    if (FAULTS_ON() && gyre__fault_hit(GYRE__FAULT_EAGAIN))
        return -EAGAIN;
    return ret(preadv2(fd, iov, cnt, (off_t)off, RWF_NOWAIT));
}

int gyre__sys_fcntl_getfl(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    return flags < 0 ? -errno : flags;
}

int gyre__sys_dio_align(int fd, uint32_t *mem, uint32_t *off)
{
    struct statx stx;
    char path[64];
    unsigned long lbs = 0;
    FILE *f;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) < 0)
        return -errno;
    if ((stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align != 0) {
        *mem = stx.stx_dio_mem_align;
        *off = stx.stx_dio_offset_align;
        return 0;
    }
    if ((stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align == 0)
        return -EINVAL; /* the file system says: no O_DIRECT here */
    /* Before 6.1: the logical block size of the device, for buffer and
     * offset alike (what O_DIRECT required on every file system then). */
    snprintf(path, sizeof path, "/sys/dev/block/%u:%u/queue/logical_block_size", stx.stx_dev_major,
             stx.stx_dev_minor);
    f = fopen(path, "re");
    if (f == NULL) {
        /* A partition: its queue is its parent's. */
        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/../queue/logical_block_size",
                 stx.stx_dev_major, stx.stx_dev_minor);
        f = fopen(path, "re");
    }
    if (f == NULL)
        return -EINVAL;
    if (fscanf(f, "%lu", &lbs) != 1 || lbs == 0 || lbs > 65536)
        lbs = 0;
    fclose(f);
    if (lbs == 0)
        return -EINVAL;
    *mem = *off = (uint32_t)lbs;
    return 0;
}
