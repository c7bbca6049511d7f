/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* linuxaio.c: the "linuxaio" file engine: O_DIRECT reads and writes (and
 * fsync where the kernel has it) on Linux kernel AIO, with completions
 * signalled through an eventfd the core watches.
 *
 * Kernel features used, and the first kernel with each (io_setup(2),
 * io_submit(2), fs/aio.c):
 *
 *   feature                                          minimum kernel
 *   io_setup/submit/getevents/destroy, PREAD/PWRITE  2.6
 *   IOCB_CMD_PREADV/PWRITEV                          2.6.19
 *   IOCB_FLAG_RESFD (completion -> eventfd)          2.6.22
 *   io_destroy waits for the context's requests      4.0
 *   aio_rw_flags, RWF_NOWAIT                         4.13 (required)
 *   IOCB_CMD_FSYNC/FDSYNC run (on a workqueue)       4.18 (probed; else pool)
 *
 * Why only O_DIRECT: buffered kernel AIO is synchronous, io_submit does the
 * whole copy (and any device read) before it returns, so it would block the
 * loop; buffered fds go to the pool (accepts() says 0). Even O_DIRECT may
 * block in io_submit on file-system work (block allocation for an extending
 * write, metadata, a contended inode lock), so every read and write carries
 * RWF_NOWAIT. Where that is refused the kernel does not fail io_submit: it
 * takes the iocb and posts a completion with -EAGAIN at once (aio_rw_done()),
 * so reap() reports such an op with res -EAGAIN, which tells the core that
 * the op did not run and belongs to the pool (see "The core" below). A file
 * without FMODE_NOWAIT makes io_submit itself fail with -EOPNOTSUPP: submit()
 * then returns -EAGAIN.
 *
 * Cancellation: Linux AIO cannot cancel file I/O (io_cancel returns -EINVAL
 * for every read, write and sync; only some USB gadget fds implement it). An
 * op still queued here is taken back (cancel() 0); one in the kernel
 * completes with its real result (cancel() -EBUSY).
 *
 * Capacity: fs.aio-max-nr is one budget for the whole machine, and io_setup
 * charges more than asked (max(nr, 4 * possible CPUs) * 2), so a context is
 * small (DEPTH iocbs). Ops beyond it wait on an intrusive FIFO and go in as
 * completions free slots; submit() never refuses for capacity. The kernel
 * guarantees room for DEPTH requests whose events we have not yet reaped,
 * so with inflight <= DEPTH a real io_submit EAGAIN cannot happen; an
 * injected one (GYRE_FAULTS) leaves the ops queued and re-arms the eventfd so
 * reap() retries.
 *
 * Invariants:
 *  - An op is in exactly one place (its state word): the wait FIFO (accepted,
 *    not in the kernel), the kernel (counted in inflight until its event is
 *    reaped), or the done FIFO (ended here, result saved, to report). It is
 *    reported exactly once, and its state is then ST_NONE.
 *  - The wait FIFO keeps submission order: submit() goes straight to the
 *    kernel only when the FIFO is empty.
 *  - io_submit takes a prefix of the iocbs; the ops of that prefix leave the
 *    wait FIFO's head, one failed iocb (its -errno) goes to the done FIFO,
 *    and the rest stay queued in order: never lost, never doubled.
 *  - reap() reads the eventfd before io_getevents, so a completion posted
 *    after the read signals it again; whenever reap() may leave work behind
 *    (output full, done FIFO not empty, queued ops with nothing in flight) it
 *    signals the eventfd itself, so the core calls reap() again.
 *
 * The core: (1) an event with res -EAGAIN means "not run": send the op to the
 * pool, as for a submit() that returned -EAGAIN. (2) fini() drops queued ops
 * and waits for (and discards) those in the kernel: cancel the queued ones and
 * reap the others first. In a child after fork fini() waits for nothing (the
 * parent's context is not in the child's mm) and only frees memory and the
 * eventfd. (3) Deadlines are the core's: the kernel has none.
 */
#include <errno.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>

#include "backend/engine.h"
#include "backend/probe.h"
#include "core/alloc.h"
#include "sys/sys.h"

#define DEPTH 128u /* iocbs in the kernel (completed or not) per engine */
#define BATCH 32u  /* iocbs per io_submit when the wait FIFO drains */
#define PROBE_TRIES 8

/* --- per-op state, in op->gyre__priv.be[] (the core never touches it) --- */

#define BE_NEXT 0 /* gyre_op *: next on the wait or done FIFO */
#define BE_PREV 1 /* gyre_op *: previous (O(1) cancel of a queued op) */
#define BE_ST 2   /* ST_* */
#define BE_RES 3  /* ST_DONE: the result to report */

#define ST_NONE 0u   /* not here (never submitted, or already reported) */
#define ST_WAIT 1u   /* on the wait FIFO */
#define ST_KERNEL 2u /* in the kernel */
#define ST_DONE 3u   /* on the done FIFO */

_Static_assert(sizeof(gyre_op *) <= sizeof(uint64_t), "a pointer fits in be[]");
_Static_assert(sizeof(((gyre_op *)0)->gyre__priv.be) / sizeof(uint64_t) > BE_RES,
               "per-op state fits in be[]");

struct opq {
    gyre_op *head, *tail;
};

struct la {
    uint64_t ctx;
    int efd;
    int fsync;         /* the kernel runs IOCB_CMD_FSYNC/FDSYNC */
    uint32_t inflight; /* iocbs taken by the kernel, events not yet reaped */
    struct opq wait;   /* accepted, not yet in the kernel */
    struct opq done;   /* ended without the kernel, result in be[BE_RES] */
    /* Scratch: io_submit copies each iocb (and its iovec array) before it
     * returns, so one array serves every submission. */
    struct iocb iocbs[BATCH];
    struct iocb *ptrs[BATCH];
    struct io_event evs[DEPTH];
};

/* --- probe --- */

static struct {
    int err; /* when the probe failed: the -errno behind reason */
    int fsync;
    const char *reason;
} probed;
/* 0 = not probed, 1 = probed (probed.* is then immutable). The release store
 * orders every write to `probed` before it; readers load with acquire. */
static struct gyre__probe probe_cache = GYRE__PROBE_INIT;

/* A static reason string for (what, -errno). */
#define REASON(what, err)                                                                          \
    ((err) == -EPERM    ? what ": Operation not permitted"                                         \
     : (err) == -ENOSYS ? what ": Function not implemented"                                        \
     : (err) == -ENOMEM ? what ": Cannot allocate memory"                                          \
     : (err) == -EINVAL ? what ": Invalid argument"                                                \
     : (err) == -EMFILE ? what ": Too many open files"                                             \
     : (err) == -ENFILE ? what ": Too many open files in system"                                   \
                        : what ": failed")

static int transient(int err)
{
    return err == -EAGAIN || err == -ENOMEM || err == -EMFILE || err == -ENFILE;
}

/* io_submit of one iocb, retrying injected EAGAINs a few times: the probe
 * must not be fooled by GYRE_FAULTS (a real EAGAIN cannot happen on a fresh
 * context). */
static int probe_submit(uint64_t ctx, struct iocb *cb)
{
    int r = -EAGAIN;

    for (int i = 0; i < PROBE_TRIES && r == -EAGAIN; i++)
        r = gyre__sys_io_submit(ctx, 1, &cb);
    return r;
}

/* The real probe: a context, then on a memfd an fsync iocb (-EINVAL before
 * 4.18) and a one-byte RWF_NOWAIT read (-EINVAL before 4.13). Returns 1
 * (usable), 0 (not: probed.reason says why) or -1 (transient, such as
 * EMFILE or fs.aio-max-nr used up: not cached). */
static int probe_run(void)
{
    struct iocb fs, rd;
    struct io_event evs[2];
    unsigned char byte;
    uint64_t ctx;
    int r, fd, taken = 0, ok = 1;

    r = gyre__sys_io_setup(2, &ctx);
    if (r < 0) {
        if (transient(r))
            return -1;
        probed.err = r;
        probed.reason = REASON("io_setup", r);
        return 0;
    }
    fd = gyre__sys_memfd("gyre-aio-probe");
    if (fd < 0) {
        gyre__sys_io_destroy(ctx);
        if (transient(fd))
            return -1;
        /* No file to try fsync on (memfd blocked): the engine works, fsync
         * goes to the pool. */
        probed.fsync = 0;
        return 1;
    }
    memset(&fs, 0, sizeof fs);
    fs.aio_lio_opcode = IOCB_CMD_FSYNC;
    fs.aio_fildes = (uint32_t)fd;
    r = probe_submit(ctx, &fs);
    probed.fsync = r == 1;
    taken += r == 1;
    if (r == -EAGAIN)
        ok = -1; /* GYRE_FAULTS said EAGAIN every time: ask again later */
    memset(&rd, 0, sizeof rd);
    rd.aio_lio_opcode = IOCB_CMD_PREAD;
    rd.aio_fildes = (uint32_t)fd;
    rd.aio_buf = (uint64_t)(uintptr_t)&byte;
    rd.aio_nbytes = 1;
    rd.aio_rw_flags = RWF_NOWAIT;
    r = probe_submit(ctx, &rd);
    if (r == 1) {
        taken++;
    } else if (r == -EINVAL || r == -EPERM || r == -ENOSYS) {
        /* -EOPNOTSUPP (a memfd without FMODE_NOWAIT) means the flag is
         * understood; -EINVAL that aio_rw_flags is not (before 4.13). */
        probed.err = r == -EINVAL ? -ENOSYS : r;
        probed.reason = r == -EINVAL ? "io_submit: kernel AIO lacks RWF_NOWAIT (before 4.13)"
                                     : REASON("io_submit", r);
        ok = 0;
    } else if (r == -EAGAIN) {
        ok = -1;
    }
    if (taken > 0)
        gyre__sys_io_getevents(ctx, taken, taken, evs, INT64_C(1000000000));
    gyre__sys_io_destroy(ctx);
    gyre__sys_close(fd);
    return ok;
}

static int la_probe(void)
{
    return gyre__probe_once(&probe_cache, probe_run);
}

/* --- FIFOs through be[] --- */

static gyre_op *op_next(const gyre_op *op)
{
    return (gyre_op *)(uintptr_t)op->gyre__priv.be[BE_NEXT];
}

static gyre_op *op_prev(const gyre_op *op)
{
    return (gyre_op *)(uintptr_t)op->gyre__priv.be[BE_PREV];
}

static void set_next(gyre_op *op, gyre_op *next)
{
    op->gyre__priv.be[BE_NEXT] = (uint64_t)(uintptr_t)next;
}

static void set_prev(gyre_op *op, gyre_op *prev)
{
    op->gyre__priv.be[BE_PREV] = (uint64_t)(uintptr_t)prev;
}

static void opq_push(struct opq *q, gyre_op *op)
{
    set_next(op, NULL);
    set_prev(op, q->tail);
    if (q->tail == NULL)
        q->head = op;
    else
        set_next(q->tail, op);
    q->tail = op;
}

static void opq_remove(struct opq *q, gyre_op *op)
{
    gyre_op *next = op_next(op), *prev = op_prev(op);

    if (prev == NULL)
        q->head = next;
    else
        set_next(prev, next);
    if (next == NULL)
        q->tail = prev;
    else
        set_prev(next, prev);
}

static gyre_op *opq_pop(struct opq *q)
{
    gyre_op *op = q->head;

    if (op != NULL)
        opq_remove(q, op);
    return op;
}

/* --- submission --- */

/* Makes the core call reap() soon, with no completion to wait for. */
static void kick(const struct la *la)
{
    gyre__sys_eventfd_signal(la->efd);
}

static void enqueue(struct la *la, gyre_op *op)
{
    op->gyre__priv.be[BE_ST] = ST_WAIT;
    opq_push(&la->wait, op);
}

/* Ends op here with res (reported by the next reap()). */
static void finish(struct la *la, gyre_op *op, int64_t res)
{
    op->gyre__priv.be[BE_ST] = ST_DONE;
    op->gyre__priv.be[BE_RES] = (uint64_t)res;
    opq_push(&la->done, op);
}

static int is_rw(unsigned opc)
{
    return opc == GYRE__OP_READ || opc == GYRE__OP_WRITE || opc == GYRE__OP_READV ||
           opc == GYRE__OP_WRITEV;
}

static int carries(const struct la *la, const gyre_op *op, int direct)
{
    unsigned opc = op->gyre__priv.opcode;

    /* GYRE_OFF_CUR (UINT64_MAX) is above INT64_MAX: kernel AIO has no
     * "current position", such ops go to the pool. */
    if (is_rw(opc))
        return direct == 1 && op->gyre__priv.off <= (uint64_t)INT64_MAX;
    return opc == GYRE__OP_FSYNC && la->fsync;
}

static void prep(const struct la *la, const gyre_op *op, struct iocb *cb)
{
    memset(cb, 0, sizeof *cb);
    cb->aio_data = (uint64_t)(uintptr_t)op;
    cb->aio_fildes = (uint32_t)op->gyre__priv.fd;
    cb->aio_flags = IOCB_FLAG_RESFD;
    cb->aio_resfd = (uint32_t)la->efd;
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_FSYNC:
        /* The kernel refuses any buffer, offset or rw flag on a sync. */
        cb->aio_lio_opcode = op->gyre__priv.arg ? IOCB_CMD_FDSYNC : IOCB_CMD_FSYNC;
        return;
    case GYRE__OP_READ:
        cb->aio_lio_opcode = IOCB_CMD_PREAD;
        break;
    case GYRE__OP_WRITE:
        cb->aio_lio_opcode = IOCB_CMD_PWRITE;
        break;
    case GYRE__OP_READV:
        cb->aio_lio_opcode = IOCB_CMD_PREADV;
        break;
    default: /* GYRE__OP_WRITEV: carries() let nothing else in */
        cb->aio_lio_opcode = IOCB_CMD_PWRITEV;
        break;
    }
    cb->aio_buf = (uint64_t)(uintptr_t)op->gyre__priv.addr;
    cb->aio_nbytes = op->gyre__priv.len; /* READV/WRITEV: the iovec count */
    cb->aio_offset = (int64_t)op->gyre__priv.off;
    cb->aio_rw_flags = RWF_NOWAIT;
}

/* An io_submit error for one iocb, as the op's outcome: a file without
 * FMODE_NOWAIT (-EOPNOTSUPP) means "not here, use the pool". */
static int64_t submit_error(int r)
{
    return r == -EOPNOTSUPP ? -EAGAIN : r;
}

/* Moves ops from the wait FIFO into the kernel while it has room, in order,
 * BATCH per io_submit. */
static void refill(struct la *la)
{
    while (la->wait.head != NULL && la->inflight < DEPTH) {
        uint32_t room = DEPTH - la->inflight, n = 0, taken = 0;

        for (gyre_op *op = la->wait.head; op != NULL && n < BATCH && n < room;
             op = op_next(op), n++) {
            prep(la, op, &la->iocbs[n]);
            la->ptrs[n] = &la->iocbs[n];
        }
        while (taken < n) {
            int r = gyre__sys_io_submit(la->ctx, (long)(n - taken), la->ptrs + taken);

            if (r > 0) {
                /* The kernel took iocbs [taken, taken + r): the first r ops
                 * of the FIFO, in the order they were prepared. */
                for (int i = 0; i < r; i++)
                    opq_pop(&la->wait)->gyre__priv.be[BE_ST] = ST_KERNEL;
                la->inflight += (uint32_t)r;
                taken += (uint32_t)r;
            } else if (r == 0 || r == -EAGAIN) {
                /* Nothing taken (injected, or the context is full): the rest
                 * stays queued in order. With nothing in flight no completion
                 * will bring us back, so ask for a reap() ourselves. */
                if (la->inflight == 0)
                    kick(la);
                return;
            } else {
                /* iocbs[taken] was refused (-EBADF, -EINVAL, ...): that is
                 * its op's result; go on with the next one. */
                finish(la, opq_pop(&la->wait), submit_error(r));
                taken++;
            }
        }
    }
}

/* --- the engine --- */

static int la_init(void **state, const char **reason)
{
    struct la *la;
    int r;

    *reason = "";
    if (!la_probe()) {
        *reason = probed.reason;
        return probed.err;
    }
    la = gyre__calloc(1, sizeof *la);
    if (la == NULL) {
        *reason = "linuxaio: Cannot allocate memory";
        return -ENOMEM;
    }
    r = gyre__sys_io_setup(DEPTH, &la->ctx);
    if (r < 0) {
        gyre__free(la);
        *reason = r == -EAGAIN ? "io_setup: Resource temporarily unavailable (fs.aio-max-nr)"
                               : REASON("io_setup", r);
        return r;
    }
    r = gyre__sys_eventfd(0, EFD_NONBLOCK);
    if (r < 0) {
        gyre__sys_io_destroy(la->ctx);
        gyre__free(la);
        *reason = REASON("eventfd", r);
        return r;
    }
    la->efd = r;
    /* Pairs with the release store in gyre__probe_once(); a probe not
     * cached (transient failure) leaves fsync to the pool. */
    la->fsync = gyre__probe_done(&probe_cache) && probed.fsync;
    *state = la;
    return 0;
}

static void la_fini(void *state)
{
    struct la *la = state;

    /* io_destroy waits until the kernel has let go of every iocb's buffers
     * (4.0+). In a child after fork the context is the parent's and not in
     * this mm (aio rings are VM_DONTCOPY): io_destroy fails with -EINVAL and
     * touches nothing, which is what we want. Ops still queued are dropped. */
    gyre__sys_io_destroy(la->ctx);
    gyre__sys_close(la->efd);
    gyre__free(la);
}

static int la_accepts(void *state, const gyre_op *op, int direct)
{
    return carries(state, op, direct);
}

static int la_submit(void *state, gyre_op *op)
{
    struct la *la = state;
    struct iocb *cb = &la->iocbs[0];
    int r;

    /* The core asks accepts() first; anything else belongs to the pool. */
    if (!carries(la, op, 1))
        return -EAGAIN;
    if (la->wait.head != NULL || la->inflight >= DEPTH) {
        enqueue(la, op);
        return 0;
    }
    prep(la, op, cb);
    la->ptrs[0] = cb;
    r = gyre__sys_io_submit(la->ctx, 1, la->ptrs);
    if (r == 1) {
        op->gyre__priv.be[BE_ST] = ST_KERNEL;
        la->inflight++;
        return 0;
    }
    if (r == 0 || r == -EAGAIN) {
        enqueue(la, op);
        if (la->inflight == 0)
            kick(la);
        return 0;
    }
    return (int)submit_error(r);
}

static int la_cancel(void *state, gyre_op *op)
{
    struct la *la = state;

    switch (op->gyre__priv.be[BE_ST]) {
    case ST_WAIT:
        opq_remove(&la->wait, op);
        op->gyre__priv.be[BE_ST] = ST_NONE;
        return 0;
    case ST_KERNEL: /* io_cancel cannot stop file I/O: see the top */
    case ST_DONE:   /* already ended; reported with its result */
        return -EBUSY;
    default:
        return -ENOENT;
    }
}

static int la_wake_fd(void *state, int *signo)
{
    const struct la *la = state;

    if (signo != NULL)
        *signo = 0;
    return la->efd;
}

static void report(gyre__event *ev, gyre_op *op, int64_t res)
{
    op->gyre__priv.be[BE_ST] = ST_NONE;
    memset(ev, 0, sizeof *ev);
    ev->cookie = (uint64_t)(uintptr_t)op;
    ev->kind = GYRE__EV_OP;
    ev->res = res;
}

static int la_reap(void *state, gyre__event *out, int max)
{
    struct la *la = state;
    uint64_t count;
    int k = 0, more = 0;
    gyre_op *op;

    if (max <= 0)
        return 0;
    /* Cleared before io_getevents: an event posted after this read signals
     * the eventfd again, so none can be left without a wakeup. A failed
     * read (injected) leaves the counter set: only an extra reap(). */
    gyre__sys_eventfd_read(la->efd, &count);
    while (k < max && (op = opq_pop(&la->done)) != NULL)
        report(&out[k++], op, (int64_t)op->gyre__priv.be[BE_RES]);
    if (k < max && la->inflight > 0) {
        int want = max - k < (int)DEPTH ? max - k : (int)DEPTH;
        int n = gyre__sys_io_getevents(la->ctx, 0, want, la->evs, 0);

        if (n < 0) {
            n = 0;
            more = 1;
        }
        more |= n == want;
        for (int i = 0; i < n; i++) {
            int64_t res = la->evs[i].res;

            la->inflight--;
            /* EINTR (the kernel's restart codes, turned into -EINTR by
             * aio_rw_done) is as transient as EAGAIN and must not reach a
             * callback: both mean "not done", for the pool to redo. */
            report(&out[k++], (gyre_op *)(uintptr_t)la->evs[i].data, res == -EINTR ? -EAGAIN : res);
        }
    } else if (k == max) {
        more = 1;
    }
    refill(la);
    if (more || la->done.head != NULL)
        kick(la);
    return k;
}

const struct gyre__file_engine gyre__engine_linuxaio = {
    .name = "linuxaio",
    .probe = la_probe,
    .init = la_init,
    .fini = la_fini,
    .accepts = la_accepts,
    .submit = la_submit,
    .cancel = la_cancel,
    .wake_fd = la_wake_fd,
    .reap = la_reap,
};
