/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* posixaio.c: the "posixaio" file engine: file reads, writes and syncs
 * carried by glibc's POSIX AIO (aio_read/aio_write/aio_fsync), completions
 * reported on the loop thread through a realtime signal and a sweep.
 *
 * What glibc does (glibc 2.36, rt/aio_misc.c, aio_notify.c, aio_cancel.c;
 * POSIX AIO is in libc itself since 2.34, no -lrt):
 *
 *  - Every request is a plain pread/pwrite/fsync/fdatasync done by a helper
 *    thread: at most 20 of them (aio_init's default aio_threads), each
 *    leaving after 1 s idle (aio_idle_time). Helper threads block every
 *    signal, so the notification lands on some other thread.
 *  - Requests on one fd are served one at a time: __aio_enqueue_request puts
 *    a request for an fd that already has one queued or running behind it,
 *    and the helper that runs the fd's head request then runs the rest in
 *    turn. Queue depth 32 on one file behaves like depth 1. Measured (4 KiB
 *    O_DIRECT random reads, ext4 on a virtio disk): QD32 on one fd gave
 *    35k IOPS with one helper thread, as fast as a plain pread loop on one
 *    thread (40k); the same 32 spread over 32 fds of the file ran on 20
 *    helpers.
 *  - SIGEV_THREAD costs, per completion, a malloc (struct notify_func) and a
 *    pthread_create of a detached thread that runs the callback once
 *    (__aio_notify_only). Measured at depth 1 on a cached 4 KiB read:
 *    48 us and 50 us of CPU per op, against 15 us and 8 us with
 *    SIGEV_SIGNAL. Hence SIGEV_SIGNAL here: one rt_sigqueueinfo per
 *    completion from the helper thread, nothing allocated in user space.
 *  - aio_cancel only removes a request no helper has picked up: that one
 *    gets error ECANCELED and its notification is still sent. A running
 *    request cannot be stopped (AIO_NOTCANCELED) and completes with its real
 *    result.
 *  - aio_error reads the result under glibc's request mutex, which the
 *    helper holds from storing the result until after it has notified: once
 *    aio_error says "done", glibc never touches that aiocb again, so its
 *    slot can be reused at once.
 *  - A realtime signal that does not fit the signal queue (RLIMIT_SIGPENDING,
 *    per user) fails with EAGAIN, and __aio_notify then overwrites the
 *    request's result with that error although the read or write was done
 *    (seen with RLIMIT_SIGPENDING at 3: 20 reads filled their buffers, 17
 *    reported EAGAIN). No signal arrives for those either. reap() reports
 *    such a request as -EAGAIN, which the core redoes on the pool: every op
 *    this engine takes has an explicit offset (or is a sync), so doing it
 *    again is harmless.
 *  - pread/pwrite failing with ESPIPE (pipe, socket) makes glibc fall back
 *    to read/write at the current position, which may block forever; only
 *    regular files and block devices belong here.
 *  - glibc's request entries are allocated in rows (64, then 32 at a time)
 *    and kept for reuse, so after warm-up nothing is allocated per op.
 *  - glibc has no fork handler for this state: a child inherits the count
 *    of idle helpers but not the helpers, so in a child forked within a
 *    helper's idle second after the parent's last request, aio_read succeeds
 *    and the request never runs (seen: nothing after 3 s). A child must not
 *    use this engine unless the parent's helpers are known to be gone.
 *
 * Completion path: sigev_notify = SIGEV_SIGNAL, sigev_signo = SIGRTMIN+2,
 * sigev_value = the op (unused by gyre's handler, but it names the op in
 * strace and gdb). wake_fd() returns -1 with that signal; the core routes it
 * through gyre's process-wide signal dispatch, which wakes the loop, and the
 * loop calls reap(). Why a realtime signal: no standard signal is free
 * (SIGIO is what O_ASYNC fds raise, SIGUSR1/2 are the application's), and a
 * realtime one has no meaning to the system. Why SIGRTMIN+2 (36 with glibc,
 * whose NPTL keeps kernel signals 32 and 33 for itself; that is why SIGRTMIN
 * is a function call): SIGRTMIN and SIGRTMIN+1 are what an application that
 * needs "a realtime signal" takes first (timer_create(2)'s example uses
 * SIGRTMIN). A program that uses SIGRTMIN+2 itself cannot use this engine.
 * The handler must be installed before the first submit: the default action
 * of a realtime signal ends the process. The signal goes to the process, so
 * it interrupts whichever thread does not block it; with SA_RESTART most
 * calls resume, but those signal(7) lists as never restarted (epoll_wait,
 * poll, nanosleep, ...) return EINTR in that thread.
 *
 * Realtime signals queue, one per completion, and the core's handler turns
 * them into loop wakeups that coalesce, so one reap() cannot tell which
 * requests finished: it sweeps, asking aio_error of every request in glibc
 * (one lock of glibc's mutex each). That O(in flight) sweep, a signal and a
 * handler run per completion, and the per-fd serialization are the costs the
 * file benchmark shows.
 *
 * Limit: at most SLOTS (256) requests in glibc per engine, in a slab of
 * aiocbs made by init() (an aiocb, 168 bytes on x86_64, does not fit the
 * op's 48-byte private area): 48 KiB per loop. Ops beyond that wait in
 * an intrusive FIFO through op->gyre__priv.be[] (never refused, never an
 * allocation) and go to glibc in submission order as slots free. 256 is far
 * more than glibc's 20 helpers can run at once; it bounds the sweep and this
 * engine's share of the signal queue.
 *
 * Invariants:
 *  - An op the engine holds is in exactly one place, named by its state
 *    word: the wait FIFO (not yet in glibc), a slot (in glibc), or the done
 *    FIFO (finished without glibc: refused when taken from the wait FIFO).
 *  - A slot is reused only after aio_error said its request is finished.
 *  - An op is reported exactly once, and its state is cleared before it is
 *    reported, so the engine never touches it again.
 */
#include <aio.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "backend/engine.h"
#include "core/alloc.h"
#include "sys/sys.h"

#define SLOTS 256u

/* --- per-op state, in op->gyre__priv.be[] while the engine holds the op --- */

#define BE_NEXT 0  /* gyre_op *: next on the wait or done FIFO */
#define BE_PREV 1  /* gyre_op *: previous on it */
#define BE_OWNER 2 /* the engine state holding the op, 0 when none */
#define BE_ST 3    /* state word, below */
#define BE_RES 4   /* on the done FIFO: the result to report */

/* State word: bits 0-1 where the op is, bit 2 cancel asked, 16-31 slot. */
#define ST_WHERE 0x3u
#define ST_WAIT 0x1u  /* on the wait FIFO */
#define ST_GLIBC 0x2u /* in glibc, in slot ST_SLOT() */
#define ST_DONE 0x3u  /* on the done FIFO */
#define ST_CANCEL 0x4u
#define ST_SLOT(st) ((uint32_t)((st) >> 16) & 0xffffu)

#define BE(op, i) ((op)->gyre__priv.be[i])

_Static_assert(sizeof(gyre_op *) <= sizeof(uint64_t), "a pointer fits in be[]");
_Static_assert(sizeof(((gyre_op *)0)->gyre__priv.be) / sizeof(uint64_t) > BE_RES,
               "the per-op state fits in be[]");
_Static_assert(SLOTS <= 0x10000u, "a slot index fits in 16 bits of the state word");

struct opq {
    gyre_op *head, *tail;
};

struct slot {
    struct aiocb cb;   /* glibc's while the request runs */
    gyre_op *op;       /* NULL when free */
    uint32_t live_pos; /* index in live[] */
};

struct pa {
    int signo;
    int pid; /* the process that made it (fini's fork test) */
    uint32_t nlive, nfree;
    struct opq wait; /* taken, waiting for a slot, in submission order */
    struct opq done; /* finished without glibc, to report */
    uint32_t live[SLOTS];
    uint32_t freel[SLOTS];
    struct slot slots[SLOTS];
};

static gyre_op *q_ptr(uint64_t v)
{
    return (gyre_op *)(uintptr_t)v;
}

static void q_push(struct opq *q, gyre_op *op)
{
    BE(op, BE_NEXT) = 0;
    BE(op, BE_PREV) = (uintptr_t)q->tail;
    if (q->tail != NULL)
        BE(q->tail, BE_NEXT) = (uintptr_t)op;
    else
        q->head = op;
    q->tail = op;
}

static void q_remove(struct opq *q, gyre_op *op)
{
    gyre_op *next = q_ptr(BE(op, BE_NEXT)), *prev = q_ptr(BE(op, BE_PREV));

    if (prev != NULL)
        BE(prev, BE_NEXT) = (uintptr_t)next;
    else
        q->head = next;
    if (next != NULL)
        BE(next, BE_PREV) = (uintptr_t)prev;
    else
        q->tail = prev;
}

static gyre_op *q_pop(struct opq *q)
{
    gyre_op *op = q->head;

    if (op != NULL)
        q_remove(q, op);
    return op;
}

static void op_forget(gyre_op *op)
{
    BE(op, BE_OWNER) = 0;
    BE(op, BE_ST) = 0;
}

/* 1 if off is a file offset glibc can take (not GYRE_OFF_CUR: an aiocb has
 * no "current position"). */
static int off_ok(uint64_t off)
{
    return off <= (uint64_t)INT64_MAX && (uint64_t)(off_t)off == off;
}

/* --- handing requests to glibc --- */

/* Starts op in a free slot. 0, or -errno with the slot free again. */
static int start(struct pa *pa, gyre_op *op)
{
    uint32_t i = pa->freel[--pa->nfree];
    struct slot *s = &pa->slots[i];
    struct aiocb *cb = &s->cb;
    int rc;

    memset(cb, 0, sizeof *cb);
    cb->aio_fildes = op->gyre__priv.fd;
    cb->aio_sigevent.sigev_notify = SIGEV_SIGNAL;
    cb->aio_sigevent.sigev_signo = pa->signo;
    cb->aio_sigevent.sigev_value.sival_ptr = op;
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_WRITE:
        cb->aio_offset = (off_t)op->gyre__priv.off;
        cb->aio_buf = op->gyre__priv.addr;
        cb->aio_nbytes = op->gyre__priv.len;
        rc = op->gyre__priv.opcode == GYRE__OP_READ ? gyre__sys_aio_read(cb)
                                                    : gyre__sys_aio_write(cb);
        break;
    default: /* GYRE__OP_FSYNC */
        rc = gyre__sys_aio_fsync(cb, op->gyre__priv.arg == 1);
        break;
    }
    if (rc < 0) {
        pa->freel[pa->nfree++] = i;
        return rc;
    }
    s->op = op;
    s->live_pos = pa->nlive;
    pa->live[pa->nlive++] = i;
    BE(op, BE_ST) = ST_GLIBC | (uint64_t)i << 16;
    return 0;
}

/* Frees slot i (its request finished) and hands waiting ops to glibc while
 * slots are free. An op glibc refuses goes to the done FIFO with its error;
 * -EAGAIN among them tells the core to carry the op on the pool. */
static void slot_free(struct pa *pa, uint32_t i)
{
    struct slot *s = &pa->slots[i];
    uint32_t last = pa->live[--pa->nlive];

    pa->live[s->live_pos] = last;
    pa->slots[last].live_pos = s->live_pos;
    s->op = NULL;
    pa->freel[pa->nfree++] = i;
}

static void refill(struct pa *pa)
{
    gyre_op *op;
    int rc;

    while (pa->nfree > 0 && (op = q_pop(&pa->wait)) != NULL) {
        rc = start(pa, op);
        if (rc < 0) {
            BE(op, BE_ST) = ST_DONE;
            BE(op, BE_RES) = (uint64_t)(int64_t)rc;
            q_push(&pa->done, op);
        }
    }
}

/* --- the engine contract --- */

/* 1 unless glibc says POSIX AIO is not implemented: one read of /dev/null,
 * waited for. Cached; a race runs it twice, harmlessly. */
static int pa_probe(void)
{
    /* Relaxed: the value is all there is, nothing else is published. */
    static atomic_int cached = -1;
    int r = atomic_load_explicit(&cached, memory_order_relaxed);

    if (r < 0) {
        const struct aiocb *list[1];
        struct aiocb cb;
        char byte;
        int rc, fd = gyre__sys_openat(AT_FDCWD, "/dev/null", O_RDONLY, 0);

        r = 1;
        if (fd >= 0) {
            memset(&cb, 0, sizeof cb);
            cb.aio_fildes = fd;
            cb.aio_buf = &byte;
            cb.aio_nbytes = 1;
            cb.aio_sigevent.sigev_notify = SIGEV_NONE;
            rc = gyre__sys_aio_read(&cb);
            if (rc == -ENOSYS)
                r = 0;
            if (rc == 0) {
                /* Started: cb is glibc's until the read is over. */
                list[0] = &cb;
                while (gyre__sys_aio_error(&cb) == -EINPROGRESS)
                    gyre__sys_aio_suspend(list, 1, -1);
                (void)gyre__sys_aio_return(&cb);
            }
            gyre__sys_close(fd);
        }
        atomic_store_explicit(&cached, r, memory_order_relaxed);
    }
    return r;
}

static int pa_init(void **state, const char **reason)
{
    struct pa *pa;
    int signo = SIGRTMIN + 2;

    if (signo > SIGRTMAX) {
        *reason = "posixaio: no realtime signal SIGRTMIN+2";
        return -ENOSYS;
    }
    pa = gyre__calloc(1, sizeof *pa);
    if (pa == NULL) {
        *reason = "posixaio: Cannot allocate memory";
        return -ENOMEM;
    }
    pa->signo = signo;
    pa->pid = gyre__sys_getpid();
    for (uint32_t i = 0; i < SLOTS; i++)
        pa->freel[i] = SLOTS - 1 - i;
    pa->nfree = SLOTS;
    *state = pa;
    return 0;
}

/* Forgets every op it holds (none is reported), after cancelling what glibc
 * has not started and waiting for the rest: glibc's helpers write into the
 * slab's aiocbs and the ops' buffers until their requests finish. In a child
 * after fork() the slots are copies of the parent's requests that no helper
 * of this process runs: they are only forgotten (waiting would never end). */
static void pa_fini(void *state)
{
    struct pa *pa = state;
    const struct aiocb *list[SLOTS];
    gyre_op *op;

    if (pa == NULL)
        return;
    while ((op = q_pop(&pa->wait)) != NULL)
        op_forget(op);
    while ((op = q_pop(&pa->done)) != NULL)
        op_forget(op);
    if (gyre__sys_getpid() != pa->pid) {
        gyre__free(pa);
        return;
    }
    for (uint32_t k = 0; k < pa->nlive; k++) {
        struct slot *s = &pa->slots[pa->live[k]];

        gyre__sys_aio_cancel(s->cb.aio_fildes, &s->cb);
    }
    while (pa->nlive > 0) {
        uint32_t k = 0, n = 0;

        while (k < pa->nlive) {
            uint32_t i = pa->live[k];
            struct slot *s = &pa->slots[i];

            if (gyre__sys_aio_error(&s->cb) == -EINPROGRESS) {
                list[n++] = &s->cb;
                k++;
                continue;
            }
            (void)gyre__sys_aio_return(&s->cb);
            op_forget(s->op);
            slot_free(pa, i);
        }
        /* -EINTR (our own completion signal, say) just sweeps again. */
        if (n > 0)
            gyre__sys_aio_suspend(list, (int)n, -1);
    }
    gyre__free(pa);
}

static int pa_accepts(void *state, const gyre_op *op, int direct)
{
    (void)state;
    /* O_DIRECT or not is all one to glibc: its helper just calls pread or
     * pwrite (the core has checked O_DIRECT alignment before submission). */
    (void)direct;
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_WRITE:
        return off_ok(op->gyre__priv.off);
    case GYRE__OP_FSYNC:
        return 1;
    default:
        /* READV/WRITEV: glibc's AIO has no vectored request, and splitting
         * one into a request per iovec (lio_listio) would lose what a short
         * transfer means; the pool's preadv does it in one call. */
        return 0;
    }
}

static int pa_submit(void *state, gyre_op *op)
{
    struct pa *pa = state;
    int rc;

    if (!pa_accepts(state, op, 0)) {
        assert(!"posixaio: submit() of an op that accepts() refused");
        return -EINVAL;
    }
    BE(op, BE_OWNER) = (uintptr_t)pa;
    /* Behind waiting ops, so that ops reach glibc in submission order. */
    if (pa->wait.head != NULL || pa->nfree == 0) {
        BE(op, BE_ST) = ST_WAIT;
        q_push(&pa->wait, op);
        return 0;
    }
    rc = start(pa, op);
    if (rc < 0)
        op_forget(op);
    return rc;
}

static int pa_cancel(void *state, gyre_op *op)
{
    struct pa *pa = state;
    uint64_t st = BE(op, BE_ST);
    struct slot *s;

    if (BE(op, BE_OWNER) != (uintptr_t)pa)
        return -ENOENT;
    switch (st & ST_WHERE) {
    case ST_WAIT:
        q_remove(&pa->wait, op);
        op_forget(op);
        return 0;
    case ST_GLIBC:
        /* glibc removes it only if no helper has started it; either way
         * reap() reports it once, with -ECANCELED or its real result (a
         * removed request still gets its signal). */
        if (!(st & ST_CANCEL)) {
            BE(op, BE_ST) = st | ST_CANCEL;
            s = &pa->slots[ST_SLOT(st)];
            gyre__sys_aio_cancel(s->cb.aio_fildes, &s->cb);
        }
        return -EBUSY;
    case ST_DONE:
        return -EBUSY;
    default:
        return -ENOENT;
    }
}

static int pa_wake_fd(void *state, int *signo)
{
    struct pa *pa = state;

    *signo = pa->signo;
    return -1;
}

static void report(gyre__event *ev, gyre_op *op, int64_t res)
{
    op_forget(op);
    ev->cookie = (uint64_t)(uintptr_t)op;
    ev->events = 0;
    ev->kind = GYRE__EV_OP;
    ev->res = res;
    ev->buf_id = 0;
    ev->pad = 0;
}

/* Reports up to max finished ops. The core calls it again while it returns
 * max: what is left is found by the next call (finished requests stay
 * finished, and the done FIFO keeps its ops). A result of -EAGAIN means the
 * engine did not carry the op after all (glibc refused it when it left the
 * wait FIFO, or lost its signal and with it the result): the core carries it
 * on the pool, as for -EAGAIN from submit(). */
static int pa_reap(void *state, gyre__event *out, int max)
{
    struct pa *pa = state;
    gyre_op *op;
    uint32_t k = 0;
    int n = 0;

    while (n < max && k < pa->nlive) {
        uint32_t i = pa->live[k];
        struct slot *s = &pa->slots[i];
        int err = gyre__sys_aio_error(&s->cb);
        int64_t res;

        if (err == -EINPROGRESS) {
            k++;
            continue;
        }
        /* aio_return's error is aio_error's: -ECANCELED for a request
         * aio_cancel removed, -EAGAIN for one whose signal was lost. */
        res = gyre__sys_aio_return(&s->cb);
        op = s->op;
        /* live[k] now holds another slot (or k == nlive): do not advance. */
        slot_free(pa, i);
        refill(pa);
        report(&out[n++], op, res);
    }
    while (n < max && (op = q_pop(&pa->done)) != NULL)
        report(&out[n++], op, (int64_t)BE(op, BE_RES));
    return n;
}

const struct gyre__file_engine gyre__engine_posixaio = {
    .name = "posixaio",
    .no_fork = 1,
    .probe = pa_probe,
    .init = pa_init,
    .fini = pa_fini,
    .accepts = pa_accepts,
    .submit = pa_submit,
    .cancel = pa_cancel,
    .wake_fd = pa_wake_fd,
    .reap = pa_reap,
};
