/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* sys.h: the one door from gyre to the kernel.
 *
 * Every syscall gyre makes goes through a wrapper declared here. Wrappers
 * return -errno (never set errno for the caller to read), add CLOEXEC to every
 * fd they make, and are where GYRE_FAULTS injects faults: always before the
 * kernel acts, so an injected fault never loses data the kernel already
 * moved. Each wrapper injects only the faults the real call can produce (an
 * eventfd write is never told EAGAIN, since gyre's eventfds cannot overflow).
 *
 * GYRE_FAULTS="seed=N,eagain=P,eintr=P,short=P,enomem=P,delay=P,reset=P"
 * with P in [0,1] (read once, with secure_getenv); docs/design.md says what
 * each kind does at each boundary. The decision for the k-th injectable call
 * in the process is a pure function of (seed, k), so a single-threaded run is
 * reproducible. When GYRE_FAULTS is unset each wrapper pays one
 * predictable branch.
 */
#ifndef GYRE_SYS_H
#define GYRE_SYS_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

/* --- fault injection --- */

enum gyre__fault {
    GYRE__FAULT_EAGAIN = 0,
    GYRE__FAULT_EINTR = 1,
    GYRE__FAULT_SHORT = 2,
    GYRE__FAULT_ENOMEM = 3,
    GYRE__FAULT_DELAY = 4, /* the call waits 1-200 us before it is made */
    GYRE__FAULT_RESET = 5, /* a stream socket call fails with ECONNRESET */
    GYRE__FAULT_KINDS = 6
};

struct gyre__faults {
    int on; /* nonzero when GYRE_FAULTS set something; read on hot paths */
    uint64_t seed;
    uint32_t prob[GYRE__FAULT_KINDS]; /* probability scaled to 2^32-1 */
};
extern struct gyre__faults gyre__faults;

/* Parses GYRE_FAULTS once per process (thread-safe, idempotent). Called by
 * gyre_loop_new(). Returns 0, or -EINVAL for a malformed value (the loop is
 * then not created, so a typo never silently disables testing). */
int gyre__faults_init(void);
/* Parses a GYRE_FAULTS-format string into *f (for tests). 0 or -EINVAL. */
int gyre__faults_parse(const char *spec, struct gyre__faults *f);
/* Decides whether to inject `kind` now; counts injections. Only call when
 * gyre__faults.on. Returns 0 (no fault) or a pseudo-random value in
 * [1, 2^30] drawn from the same hash, which a wrapper may use to pick a short
 * length. */
int gyre__fault_hit(enum gyre__fault kind);
/* Total injections so far in this process. */
uint64_t gyre__faults_injected(void);
/* Injections of one kind so far in this process. */
uint64_t gyre__faults_injected_kind(enum gyre__fault kind);

/* --- time --- */

/* CLOCK_MONOTONIC in ns. */
uint64_t gyre__sys_now_ns(void);

/* --- fds --- */

int gyre__sys_close(int fd);
ssize_t gyre__sys_read(int fd, void *buf, size_t len);        /* eagain eintr short */
ssize_t gyre__sys_write(int fd, const void *buf, size_t len); /* eagain eintr short */
int gyre__sys_pipe(int fds[2], int flags);                    /* O_CLOEXEC added; enomem */
int gyre__sys_eventfd(unsigned int initval, int flags);       /* EFD_CLOEXEC added; enomem */
/* Reads an eventfd's counter (8 bytes); eintr/eagain injected, never short. */
int gyre__sys_eventfd_read(int fd, uint64_t *value);
/* Adds 1 to an eventfd; retries EINTR itself, so it always succeeds on a
 * valid eventfd. Async-signal-safe. */
int gyre__sys_eventfd_signal(int fd);
/* fcntl(fd, F_GETFD): the fd flags, or -EBADF for a closed fd; never injected
 * (select uses it to find which registered fd was closed). */
int gyre__sys_fcntl_getfd(int fd);

/* --- waiting --- */

int gyre__sys_epoll_create(void); /* EPOLL_CLOEXEC added; enomem */
int gyre__sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev); /* enomem */
/* epoll_pwait2 when the kernel has it (5.11+, ns resolution), else epoll_wait
 * with the timeout rounded up to ms. timeout_ns -1 = forever. eintr. */
int gyre__sys_epoll_wait(int epfd, struct epoll_event *evs, int max, int64_t timeout_ns);
int gyre__sys_poll(struct pollfd *fds, nfds_t n, int64_t timeout_ns); /* ppoll; eintr */
int gyre__sys_select(int nfds, fd_set *r, fd_set *w, fd_set *e,
                     int64_t timeout_ns); /* pselect; eintr */

/* --- I/O for operations (io.c) ---
 * The non-blocking ones are what the readiness emulation calls after the
 * kernel said "ready": eagain and eintr are injected, and short where the
 * call moves one buffer. The blocking ones run on pool threads and retry
 * EINTR themselves, so EINTR never leaves them. */

ssize_t gyre__sys_readv(int fd, const struct iovec *iov, int cnt); /* eagain eintr */
ssize_t gyre__sys_recv(int fd, void *buf, size_t len, int flags);  /* MSG_DONTWAIT added */
/* MSG_DONTWAIT|MSG_NOSIGNAL added. */
ssize_t gyre__sys_send(int fd, const void *buf, size_t len, int flags);
ssize_t gyre__sys_recvmsg(int fd, struct msghdr *msg,
                          int flags); /* MSG_DONTWAIT, MSG_CMSG_CLOEXEC */
ssize_t gyre__sys_sendmsg(int fd, const struct msghdr *msg, int flags); /* DONTWAIT|NOSIGNAL */
/* accept4 with SOCK_CLOEXEC|SOCK_NONBLOCK added; eagain eintr enomem. */
int gyre__sys_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int gyre__sys_connect(int fd, const struct sockaddr *addr, socklen_t len);
int gyre__sys_socket_error(int fd); /* SO_ERROR as -errno, or 0 */
int gyre__sys_socket_type(int fd);  /* SO_TYPE (SOCK_STREAM, ...) or -errno */
int gyre__sys_shutdown(int fd, int how);
/* What fd is (fstat): 1 a socket, 2 a regular file or block device, 0
 * anything else, -errno. */
int gyre__sys_fd_kind(int fd);
/* Writes to a non-socket (pipe, tty, file) at its current position without
 * blocking where the kernel allows (RWF_NOWAIT) and without SIGPIPE: a
 * SIGPIPE the write raises is taken back from this thread, unless one was
 * already pending. eagain eintr. */
ssize_t gyre__sys_writev_nosigpipe(int fd, const struct iovec *iov, int cnt);
/* The same for one buffer, with the faults of a non-blocking write: eagain
 * eintr short (gyre_try_write()). */
ssize_t gyre__sys_write_nosigpipe(int fd, const void *buf, size_t len);

/* Blocking (pool threads). off == UINT64_MAX: the current position. */
ssize_t gyre__sys_preadv(int fd, const struct iovec *iov, int cnt, uint64_t off);
ssize_t gyre__sys_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off);
int gyre__sys_openat(int dirfd, const char *path, int flags, unsigned mode); /* O_CLOEXEC; enomem */
int gyre__sys_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *out);
int gyre__sys_fsync(int fd, int datasync);
int gyre__sys_ftruncate(int fd, uint64_t len);
int gyre__sys_fallocate(int fd, int mode, uint64_t off, uint64_t len);
int gyre__sys_unlinkat(int dirfd, const char *path, int flags);
int gyre__sys_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                       unsigned flags);
int gyre__sys_mkdirat(int dirfd, const char *path, unsigned mode);
ssize_t gyre__sys_copy_file_range(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out,
                                  size_t len, unsigned flags);
ssize_t gyre__sys_getdents(int fd, void *buf, size_t len);
/* One non-blocking try at a buffered read (preadv2 RWF_NOWAIT): the page
 * cache's answer, or -EAGAIN when the data would have to come from the
 * device. Never blocks, never injected (a miss is a normal outcome). */
ssize_t gyre__sys_preadv_nowait(int fd, const struct iovec *iov, int cnt, uint64_t off);
int gyre__sys_fcntl_getfl(int fd);
/* O_DIRECT alignment of fd: statx STATX_DIOALIGN (6.1+), else the logical
 * block size of the device under it (sysfs). 0 or -errno. */
int gyre__sys_dio_align(int fd, uint32_t *mem, uint32_t *off);

/* --- Linux kernel AIO (aio.c) ---
 * Raw syscalls (no libaio). A context is an opaque 64-bit handle, so this
 * header needs no <linux/aio_abi.h> (whose <linux/fs.h> clashes with some
 * libc headers); struct iocb and struct io_event come from it in the files
 * that build them. */

struct iocb;
struct io_event;

/* io_setup(nr, &ctx). enomem injected; -EAGAIN is fs.aio-max-nr used up. */
int gyre__sys_io_setup(unsigned nr, uint64_t *ctx);
/* io_destroy: waits for the context's in-flight I/O (Linux 4.0+); -EINVAL
 * for a context this process does not have (a child after fork). Never
 * injected. */
int gyre__sys_io_destroy(uint64_t ctx);
/* io_submit: how many of the nr iocbs the kernel took (the first n), or
 * -errno for iocbs[0] when it took none. eagain injected for the whole call,
 * before the kernel sees any iocb. */
int gyre__sys_io_submit(uint64_t ctx, long nr, struct iocb **iocbs);
/* io_getevents with timeout_ns (-1 forever, 0 poll): how many events, or
 * -errno. Never injected (a zero-timeout call cannot be interrupted). */
int gyre__sys_io_getevents(uint64_t ctx, long min_nr, long nr, struct io_event *evs,
                           int64_t timeout_ns);
/* io_cancel: 0 with *result filled, or -errno (-EINVAL for every file read,
 * write and sync: only some USB gadget fds implement cancellation). Never
 * injected. */
int gyre__sys_io_cancel(uint64_t ctx, struct iocb *iocb, struct io_event *result);
/* memfd_create(name, MFD_CLOEXEC): a throwaway file for feature probes.
 * enomem injected. */
int gyre__sys_memfd(const char *name);

/* --- signals --- */

int gyre__sys_sigaction(int signo, const struct sigaction *act, struct sigaction *old);

/* --- POSIX AIO (paio.c): glibc's aio_*, for the posixaio file engine ---
 * The aiocb must stay put and untouched from a successful start until
 * gyre__sys_aio_error() says the request is finished: glibc's helper thread
 * reads and writes it (and the buffer) until then. */

struct aiocb; /* <aio.h> */

/* Hand a request to glibc: 0, or -errno and the request never runs (-EAGAIN:
 * glibc cannot take it now). eagain injected, and short for reads and
 * writes (aio_nbytes is shrunk in place before glibc sees it). */
int gyre__sys_aio_read(struct aiocb *cb);
int gyre__sys_aio_write(struct aiocb *cb);
int gyre__sys_aio_fsync(struct aiocb *cb, int datasync); /* O_DSYNC or O_SYNC; eagain */
/* 0: finished without error; -EINPROGRESS: not finished; else the
 * request's error as -errno (-ECANCELED when aio_cancel removed it). */
int gyre__sys_aio_error(const struct aiocb *cb);
/* The result of a finished request (bytes, 0, or -errno); call once. */
int64_t gyre__sys_aio_return(struct aiocb *cb);
/* AIO_CANCELED, AIO_NOTCANCELED or AIO_ALLDONE (all >= 0), or -errno. */
int gyre__sys_aio_cancel(int fd, struct aiocb *cb);
/* Waits until one of list[0..n) (NULLs ignored) is finished or timeout_ns
 * passes (-1: forever): 0, -EAGAIN (timeout), -EINTR. */
int gyre__sys_aio_suspend(const struct aiocb *const list[], int n, int64_t timeout_ns);
/* getpid(): the engine's test for "a child after fork", whose copies of the
 * parent's requests no glibc helper will ever finish. Never fails. */
int gyre__sys_getpid(void);

#endif
