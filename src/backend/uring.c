/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* uring.c: the io_uring backend: readiness (one-shot POLL_ADD re-armed per
 * event) and native operations on one ring, with one io_uring_enter per
 * wait() that both submits and waits.
 *
 * Kernel features used, and the first kernel with each (io_uring_setup(2),
 * io_uring_register(2), io_uring_enter(2) and liburing's man pages):
 *
 *   feature                                          minimum kernel
 *   io_uring_setup/enter, POLL_ADD, READV/WRITEV     5.1
 *   FEAT_NODROP, CQSIZE, ACCEPT, CONNECT,            5.5
 *     ASYNC_CANCEL, LINK_TIMEOUT, TIMEOUT
 *   FEAT_SUBMIT_STABLE                               5.5
 *   FEAT_RW_CUR_POS (offset -1), READ/WRITE,         5.6
 *     SEND/RECV, OPENAT, CLOSE, STATX, FALLOCATE,
 *     opcode probe
 *   FEAT_FAST_POLL                                   5.7
 *   FEAT_POLL_32BITS (EPOLLRDHUP in poll masks)      5.9
 *   SETUP_R_DISABLED, REGISTER_ENABLE_RINGS          5.10
 *   FEAT_EXT_ARG (timeout in io_uring_enter), SHUTDOWN  5.11
 *   RENAMEAT, UNLINKAT                               5.11
 *   FEAT_RSRC_TAGS (stands for 5.13: the floor)      5.13 (required)
 *   POLL_ADD_MULTI (GYRE_EDGE), POLL_UPDATE          5.13
 *   REGISTER_IOWQ_MAX_WORKERS, MKDIRAT               5.15
 *   TIMEOUT_ETIME_SUCCESS (an expired linked TIMEOUT 5.16
 *     does not break its link; probed by a TIMEOUT)
 *   SETUP_SUBMIT_ALL                                 5.18
 *   SETUP_COOP_TASKRUN, SETUP_TASKRUN_FLAG           5.19
 *   ACCEPT_MULTISHOT, ASYNC_CANCEL_FD/ALL/ANY        5.19
 *   REGISTER_PBUF_RING (provided-buffer rings)       5.19
 *   SETUP_SINGLE_ISSUER, RECV_MULTISHOT              6.0
 *   SETUP_DEFER_TASKRUN                              6.1
 *   FTRUNCATE (kept only by the "full" profile)      6.9
 *   REGISTER_RESIZE_RINGS (with DEFER_TASKRUN; "full")  6.13
 *
 * Features the opcode probe cannot see are inferred from it: IORING_OP_SOCKET
 * (5.19) stands for the 5.19 row, IORING_OP_SEND_ZC (6.0) for the 6.0 row;
 * setup flags are tried on a throwaway ring. GYRE_URING_PROFILE=5.15|6.1|full
 * (read once with secure_getenv) masks all this down to that kernel, so every
 * fallback runs on a new kernel; an unknown value means "full". 5.15 drops
 * the 5.16, 5.18, 5.19, 6.0, 6.1, 6.9 and 6.13 rows; 6.1 drops the 6.9 and 6.13
 * rows.
 *
 * The floor is 5.13 rather than 5.11 (where FEAT_EXT_ARG came) because on
 * 5.11 and 5.12 an enter that submits fails -EBUSY while the kernel's CQ
 * overflow backlog cannot be flushed; gyre lets the CQ overflow (below).
 *
 * The CQ never limits how many ops are in flight. It is sized for the fd
 * limit (ring_entries unset) and may overflow: the kernel keeps overflowed
 * CQEs (FEAT_NODROP) and flushes them on an enter with GETEVENTS, which
 * wait() makes, without blocking, whenever IORING_SQ_CQ_OVERFLOW is set. On
 * 6.13+ (DEFER_TASKRUN rings) an overflow also grows the CQ, up to 65,536.
 * Each overflowed CQE is an atomic, memcg-charged allocation; when it fails
 * the CQE is dropped (the ring's overflow counter; -EBADR from enter, 5.19+)
 * and an op will never complete: wait() returns -EBADR and counts it.
 *
 * user_data: ops are 8-aligned, so the low 3 bits tag what a CQE is about
 * (TAG_*). A poll arm carries no pointer but (fd, arm sequence): an event is
 * reported only if the sequence is still the fd's current one, so a CQE of a
 * removed or replaced registration can never show up with the new cookie.
 *
 * Invariants:
 *  - An op is in exactly one place: the park FIFO (not yet in the ring), the
 *    kernel (possibly also on the cancel FIFO), or the done FIFO (completed
 *    here without the kernel). Its final event is reported only when every
 *    CQE naming it (op, linked timeout, cancel) has arrived; after that it is
 *    never touched again.
 *  - SQEs are written only in wait(), just before the io_uring_enter: whole
 *    link chains at once (the kernel links only within one submission), in
 *    submission order, while the SQ has room. Cancels take at most half the
 *    SQ per flush, so ops, closes and poll arms always get in.
 *  - An op linked behind another in the kernel is ST_LWAIT until that one's
 *    CQE comes (the two point at each other, BE_PRED and BE_SUCC): the kernel
 *    has not issued it, so a cancel of it waits until then.
 *  - A cancel is never written once the op's final CQE has been reaped:
 *    ST_FINAL stays set after the op is reported, until it is submitted
 *    again, so a cancel from an earlier callback of the batch that holds
 *    the op's event (after which the op may be freed) does nothing. A
 *    cancel that says -ENOENT or -EALREADY while the op is still owed waits
 *    on the retry FIFO and is sent again after a wait that blocked (see
 *    reap_op()).
 *  - Per fd: at most one poll arm in the kernel (kseq) and one pending
 *    removal (rmseq); kseq != 0 implies rmseq == 0.
 *  - A CLOSE completes after the ops on its fd that went into the ring before
 *    it (nops, ST_FDCOUNT): if there are any, the close first writes only
 *    the cancel of everything on the fd and waits, off every FIFO, as the
 *    fd's closer; when the last of them has ended it goes back to the head
 *    of the park FIFO. Cancelling an op does not end it at once (a poll-armed
 *    op ends in task work, one in an io-wq worker may run on), so a close
 *    written right behind the cancel would often end first. An op to be
 *    written while the fd has a closer (until the close's CQE) ends here
 *    with -ECANCELED instead: it came after the close (or is a multishot the
 *    kernel ended and the core re-arms), and would only run on a closing
 *    fd. An op linked behind another counts too, though cancel-fd cannot
 *    find it until the kernel issues it: the close waits until then and
 *    cancels it (link_release()), rather than let the kernel issue it after
 *    the close, on a number that may name another file by then.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/probe.h"
#include "backend/uring.h"
#include "core/alloc.h"
#include "sys/inject.h"
#include "sys/sys.h"

_Static_assert(GYRE_IN == POLLIN && GYRE_PRI == POLLPRI && GYRE_OUT == POLLOUT &&
                   GYRE_ERR == POLLERR && GYRE_HUP == POLLHUP && GYRE_RDHUP == POLLRDHUP,
               "GYRE_* event bits must equal POLL* bits");
_Static_assert(GYRE_OFF_CUR == (uint64_t)-1, "offset -1 is the kernel's current position");
_Static_assert(_Alignof(gyre_op) >= 8, "op pointers need 3 free low bits for tags");

#define UR_INTEREST (GYRE_IN | GYRE_PRI | GYRE_OUT | GYRE_RDHUP)

/* user_data tags */
#define TAG_MASK 7u
#define TAG_OP 0u     /* the op's own CQE */
#define TAG_LTO 1u    /* the op's linked timeout */
#define TAG_CANCEL 2u /* a cancel of the op (counted: it names the op) */
#define TAG_POLL 3u   /* a readiness arm: (seq << 32) | (fd << 3) | tag */
#define TAG_IGNORE 4u /* poll removes, fd cancels before a close: nothing to say */

#define FD_LIMIT (1u << 29) /* fds that fit in a poll arm's user_data */

#define DEFAULT_ENTRIES 256u
#define MAX_ENTRIES 32768u      /* IORING_MAX_ENTRIES */
#define MAX_CQ_ENTRIES 65536u   /* IORING_MAX_CQ_ENTRIES */
#define CANCEL_RETRY_NS 1000000 /* the longest wait while a cancel waits to be re-sent */
#define IOWQ_WORKERS 4u

/* --- per-op state, in op->gyre__priv.be[] (the core never touches it) --- */

#define BE_NEXT 0 /* gyre_op *: next on the park, cancel or done FIFO */
#define BE_SUCC 1 /* gyre_op *: the op linked behind it in the kernel, until its CQE */
#define BE_PRED 2 /* gyre_op *: with ST_LWAIT, the op it is linked behind */
/* be[3..4]: a __kernel_timespec, TIMEOUT's own or the deadline's: a TIMEOUT
 * never has a deadline (gyre_submit refuses it, and so does submit()). */
#define BE_TS 3
#define BE_DL 3
#define BE_ST 5 /* state word, below */

/* State word: bits 0-3 CQEs still owed, 4-15 flags, 16-31 saved buffer id,
 * 32-63 the saved result of the op's final CQE. */
#define ST_PENDING 0xfu
#define ST_PARKED 0x10u    /* on the park FIFO */
#define ST_LINKED 0x20u    /* linked to the next submitted op */
#define ST_CANCEL 0x40u    /* cancel requested */
#define ST_CANCELQ 0x80u   /* on the cancel FIFO, cancel SQE not yet written */
#define ST_FIRED 0x100u    /* the linked timeout expired */
#define ST_FINAL 0x200u    /* the op's final CQE arrived and is saved */
#define ST_BUF 0x400u      /* ... and it carried a buffer */
#define ST_DONE 0x800u     /* on the done FIFO */
#define ST_CLOSEFD 0x1000u /* a CLOSE preceded by a cancel of everything on its fd */
#define ST_LWAIT 0x2000u   /* linked behind an op whose CQE has not come yet */
#define ST_FDCOUNT 0x4000u /* counted in its fd's nops */
#define ST_RETRYQ 0x8000u  /* with ST_CANCELQ: on the retry FIFO, not the cancel FIFO */

#define OPST(op) ((op)->gyre__priv.be[BE_ST])

_Static_assert(sizeof(gyre_op *) <= sizeof(uint64_t), "a pointer fits in be[]");
_Static_assert(2 * sizeof(uint64_t) == sizeof(struct __kernel_timespec),
               "a timespec takes two be[] words");

struct opq {
    gyre_op *head, *tail;
};

struct fdent {
    uint64_t cookie;
    uint32_t events; /* current interest (GYRE_EDGE included); 0 = not watched */
    uint32_t seq;    /* current registration; arms with another seq are stale */
    uint32_t kseq;   /* seq of the arm in the kernel, 0 = none */
    uint32_t rmseq;  /* seq of an arm still to be removed, 0 = none */
    uint8_t need_arm;
    uint8_t quiet;   /* level interest, armed multishot until a wanted event */
    uint8_t dirty;   /* on the dirty list */
    uint32_t held;   /* wait_gen of the wait that reaped its arm: no re-arm in it */
    uint32_t nops;   /* ops in the kernel on this fd that a close waits for */
    gyre_op *closer; /* a CLOSE of this fd waiting for them, until its CQE */
};

struct bufring {
    struct io_uring_buf_ring *br; /* NULL = free slot */
    size_t map_len;
    unsigned char *mem;
    uint32_t count, size;
};

struct ur {
    struct io_uring ring;
    uint32_t setup_flags, features;
    uint32_t sq_entries, cq_entries;
    int disabled;        /* created R_DISABLED, not yet enabled */
    uint32_t wait_gen;   /* counts gyre_uring_wait calls (fdent.held) */
    uint64_t enters;     /* io_uring_enter calls */
    struct opq park;     /* submitted, not yet in the ring */
    struct opq cancels;  /* in the kernel, cancel SQE not yet written */
    struct opq retry;    /* in the kernel, a cancel missed it: sent again after a blocking wait */
    int blocked;         /* the last wait could block and carried no re-sent cancel */
    int grow;            /* the CQ overflowed: grow it at the next wait (6.13+) */
    int err;             /* the next wait's error: -EBADR (once), or the ring is gone */
    uint32_t sq_align;   /* the SQ array's alignment in the rings (grow_cq()); 0 = no resize */
    uint32_t koverflow;  /* the ring's dropped-CQE counter, as last seen */
    uint64_t dropped;    /* CQEs the kernel dropped */
    struct opq done;     /* completed here, to report */
    uint32_t open_chain; /* SQEs of the unterminated chain at park's tail */
    struct fdent *fds;
    size_t fds_cap;
    int *dirty; /* fds with an arm or a removal to write */
    size_t ndirty, dirty_cap;
    struct bufring *bufs;
    size_t bufs_cap;
    /* One msghdr per SQ slot, for a writev sent as SENDMSG: the kernel has
     * copied it once it has consumed the SQE (FEAT_SUBMIT_STABLE), which is
     * also when the slot can be written again, so slot i's msghdr lives
     * exactly as long as it must. */
    struct msghdr *msgs;
};

/* --- probe --- */

enum profile {
    PROF_FULL = 0,
    PROF_515,
    PROF_61
};

struct probe {
    int err; /* when the probe failed: the -errno behind reason */
    const char *reason;
    uint32_t features;
    /* setup flags this kernel accepts (profile applied) */
    uint32_t submit_all, coop, single_issuer, defer;
    /* the rest (profile applied) */
    int poll_multi, accept_multi, recv_multi, pbuf_ring, cancel_fd, iowq_max, resize;
    int etime_success; /* IORING_TIMEOUT_ETIME_SUCCESS */
    /* IORING_OP_FTRUNCATE lies past this liburing's IORING_OP_LAST. */
    int ftruncate;
    unsigned char ops[IORING_OP_LAST];
};

/* IORING_OP_FTRUNCATE (6.9) and IORING_REGISTER_RESIZE_RINGS (6.13) are
 * newer than the liburing (2.3) gyre builds with; their numbers are fixed by
 * the kernel ABI. */
#define GYRE__IORING_OP_FTRUNCATE 55
#define GYRE__IORING_REGISTER_RESIZE_RINGS 33

static struct probe probed;
/* The last transient probe failure (-errno), for init() to report. */
static atomic_int probe_transient;
/* 0 = not probed, 1 = probed (probed.* is then immutable). The release store
 * orders every write to `probed` before it; readers load with acquire. */
static struct gyre__probe probe_cache = GYRE__PROBE_INIT;

/* A static reason string for (what, -errno). */
#define REASON(what, err)                                                                          \
    ((err) == -EPERM    ? what ": Operation not permitted"                                         \
     : (err) == -ENOSYS ? what ": Function not implemented"                                        \
     : (err) == -ENOMEM ? what ": Cannot allocate memory"                                          \
     : (err) == -EINVAL ? what ": Invalid argument"                                                \
     : (err) == -EACCES ? what ": Permission denied"                                               \
                        : what ": failed")

static enum profile read_profile(void)
{
    const char *v = secure_getenv("GYRE_URING_PROFILE");

    if (v == NULL)
        return PROF_FULL;
    if (strcmp(v, "5.15") == 0)
        return PROF_515;
    if (strcmp(v, "6.1") == 0)
        return PROF_61;
    /* "full" and anything unknown: no masking (a typo must not make the
     * probe fail, the backend simply runs with what the kernel has). */
    return PROF_FULL;
}

/* 1 if a ring with these setup flags can be made. */
static int setup_accepts(uint32_t flags)
{
    struct io_uring_params p;
    int fd;

    memset(&p, 0, sizeof p);
    p.flags = flags;
    fd = io_uring_setup(2, &p);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* 1 if IORING_REGISTER_RESIZE_RINGS (6.13) grows the CQ of a DEFER_TASKRUN
 * ring (the only kind it resizes): tried on a throwaway ring, which the
 * probing thread owns. Older kernels say -EINVAL for the unknown opcode. */
static int resize_works(void)
{
    struct io_uring_params p;
    int fd, r;

    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    fd = io_uring_setup(2, &p);
    if (fd < 0)
        return 0;
    memset(&p, 0, sizeof p);
    p.sq_entries = 2;
    p.cq_entries = 16;
    p.flags = IORING_SETUP_CQSIZE;
    r = io_uring_register((unsigned)fd, GYRE__IORING_REGISTER_RESIZE_RINGS, &p, 1);
    close(fd);
    return r == 0;
}

static int opcode_ok(const struct io_uring_probe *p, int op)
{
    return op <= p->last_op && (p->ops[op].flags & IO_URING_OP_SUPPORTED);
}

/* 1 if the kernel takes IORING_TIMEOUT_ETIME_SUCCESS (5.16+): a TIMEOUT of
 * 0 ns with it expires at once (-ETIME); older kernels refuse the flag
 * (-EINVAL). No opcode or feature bit tells. */
static int probe_etime_success(struct io_uring *ring)
{
    struct __kernel_timespec ts = {0, 0};
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    struct io_uring_cqe *cqe;
    int r;

    if (sqe == NULL)
        return 0;
    io_uring_prep_timeout(sqe, &ts, 0, IORING_TIMEOUT_ETIME_SUCCESS);
    r = io_uring_submit_and_wait(ring, 1);
    if (r < 0 || io_uring_peek_cqe(ring, &cqe) != 0)
        return 0;
    r = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    return r == -ETIME;
}

/* The real probe: a ring, a NOP round trip, the opcode probe, feature bits.
 * Returns 1 (usable), 0 (not usable: probed.reason says why) or -1 (a
 * transient failure such as EMFILE: not cached). */
static int probe_run(void)
{
    static const int needed[] = {IORING_OP_NOP,          IORING_OP_POLL_ADD,
                                 IORING_OP_POLL_REMOVE,  IORING_OP_ASYNC_CANCEL,
                                 IORING_OP_LINK_TIMEOUT, IORING_OP_TIMEOUT};
    size_t psize = sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op);
    struct io_uring_probe *p;
    struct io_uring_cqe *cqe;
    struct io_uring_sqe *sqe;
    struct io_uring ring;
    enum profile prof = read_profile();
    int r, v5_19, v6_0;

    r = io_uring_queue_init(4, &ring, 0);
    if (r < 0) {
        if (r == -EMFILE || r == -ENFILE) {
            atomic_store_explicit(&probe_transient, r, memory_order_relaxed);
            return -1;
        }
        probed.err = r;
        probed.reason = REASON("io_uring_setup", r);
        return 0;
    }
    probed.features = ring.features;
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    /* A seccomp profile may allow io_uring_setup and forbid io_uring_enter:
     * only a real round trip tells. */
    r = io_uring_submit_and_wait(&ring, 1);
    if (r >= 0)
        r = io_uring_peek_cqe(&ring, &cqe) == 0 ? cqe->res : -EIO;
    if (r < 0) {
        io_uring_queue_exit(&ring);
        probed.err = r;
        probed.reason = REASON("io_uring_enter", r);
        return 0;
    }
    io_uring_cqe_seen(&ring, cqe);
    probed.etime_success = probe_etime_success(&ring);
    p = gyre__calloc(1, psize);
    if (p == NULL) {
        io_uring_queue_exit(&ring);
        atomic_store_explicit(&probe_transient, -ENOMEM, memory_order_relaxed);
        return -1;
    }
    r = io_uring_register_probe(&ring, p, 256);
    io_uring_queue_exit(&ring);
    if (r < 0) {
        gyre__free(p);
        probed.err = r;
        probed.reason = REASON("io_uring_register", r);
        return 0;
    }
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        if (!opcode_ok(p, needed[i])) {
            gyre__free(p);
            probed.err = -ENOSYS;
            probed.reason = "io_uring: kernel lacks a required opcode (before 5.5)";
            return 0;
        }
    }
    for (int i = 0; i < IORING_OP_LAST; i++)
        probed.ops[i] = (unsigned char)opcode_ok(p, i);
    v5_19 = opcode_ok(p, IORING_OP_SOCKET);
    v6_0 = opcode_ok(p, IORING_OP_SEND_ZC);
    probed.ftruncate = opcode_ok(p, GYRE__IORING_OP_FTRUNCATE);
    gyre__free(p);

    {
        /* FEAT_RSRC_TAGS (5.13) stands for the floor: see the header. */
        const uint32_t need = IORING_FEAT_NODROP | IORING_FEAT_SUBMIT_STABLE |
                              IORING_FEAT_RW_CUR_POS | IORING_FEAT_EXT_ARG | IORING_FEAT_RSRC_TAGS;

        if ((probed.features & need) != need) {
            probed.err = -ENOSYS;
            probed.reason = "io_uring: kernel older than 5.13 (no IORING_FEAT_RSRC_TAGS)";
            return 0;
        }
    }
    probed.submit_all = setup_accepts(IORING_SETUP_SUBMIT_ALL) ? IORING_SETUP_SUBMIT_ALL : 0;
    probed.coop = setup_accepts(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG)
                      ? IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG
                      : 0;
    probed.single_issuer = setup_accepts(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED)
                               ? IORING_SETUP_SINGLE_ISSUER
                               : 0;
    probed.defer =
        probed.single_issuer && setup_accepts(IORING_SETUP_SINGLE_ISSUER |
                                              IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED)
            ? IORING_SETUP_DEFER_TASKRUN
            : 0;
    probed.resize = probed.defer && resize_works();
    /* IORING_OP_MKDIRAT (5.15) stands for POLL_ADD_MULTI (5.13) and
     * REGISTER_IOWQ_MAX_WORKERS (5.15). */
    probed.poll_multi = probed.ops[IORING_OP_MKDIRAT];
    probed.iowq_max = probed.ops[IORING_OP_MKDIRAT];
    probed.accept_multi = v5_19;
    probed.cancel_fd = v5_19;
    probed.pbuf_ring = v5_19;
    probed.recv_multi = v6_0 && v5_19;
    if (prof == PROF_515) {
        probed.submit_all = probed.coop = probed.single_issuer = probed.defer = 0;
        probed.accept_multi = probed.cancel_fd = probed.pbuf_ring = probed.recv_multi = 0;
        probed.etime_success = 0;
    }
    if (prof != PROF_FULL)
        probed.ftruncate = probed.resize = 0; /* 6.9, 6.13: newer than both profiles */
    probed.reason = "";
    return 1;
}

static int gyre_uring_probe(void)
{
    return gyre__probe_once(&probe_cache, probe_run);
}

const char *gyre__uring_unavailable_reason(void)
{
    /* Pairs with the release store in gyre__probe_once(). */
    if (!gyre__probe_done(&probe_cache) || probe_cache.ok)
        return "";
    return probed.reason;
}

/* --- small helpers --- */

static gyre_op *op_next(const gyre_op *op)
{
    return (gyre_op *)(uintptr_t)op->gyre__priv.be[BE_NEXT];
}

static void set_next(gyre_op *op, gyre_op *next)
{
    op->gyre__priv.be[BE_NEXT] = (uint64_t)(uintptr_t)next;
}

static gyre_op *op_at(const gyre_op *op, int word)
{
    return (gyre_op *)(uintptr_t)op->gyre__priv.be[word];
}

static void set_op_at(gyre_op *op, int word, gyre_op *to)
{
    op->gyre__priv.be[word] = (uint64_t)(uintptr_t)to;
}

static void opq_push(struct opq *q, gyre_op *op)
{
    set_next(op, NULL);
    if (q->tail == NULL)
        q->head = op;
    else
        set_next(q->tail, op);
    q->tail = op;
}

static gyre_op *opq_pop(struct opq *q)
{
    gyre_op *op = q->head;

    if (op != NULL) {
        q->head = op_next(op);
        if (q->head == NULL)
            q->tail = NULL;
    }
    return op;
}

static void opq_push_front(struct opq *q, gyre_op *op)
{
    set_next(op, q->head);
    q->head = op;
    if (q->tail == NULL)
        q->tail = op;
}

/* O(length); the cancel FIFO is short and this runs only when an op ends
 * before its cancel could be written. */
static void opq_remove(struct opq *q, gyre_op *op)
{
    gyre_op *prev = NULL;

    for (gyre_op *it = q->head; it != NULL; prev = it, it = op_next(it)) {
        if (it != op)
            continue;
        if (prev == NULL)
            q->head = op_next(it);
        else
            set_next(prev, op_next(it));
        if (q->tail == it)
            q->tail = prev;
        return;
    }
}

static void ns_to_ts(uint64_t ns, uint64_t *words)
{
    struct __kernel_timespec ts;

    ts.tv_sec = (long long)(ns / 1000000000u);
    ts.tv_nsec = (long long)(ns % 1000000000u);
    memcpy(words, &ts, sizeof ts);
}

static struct __kernel_timespec *ts_at(gyre_op *op, int word)
{
    return (struct __kernel_timespec *)(void *)&op->gyre__priv.be[word];
}

static uint64_t poll_ud(int fd, uint32_t seq)
{
    return ((uint64_t)seq << 32) | ((uint64_t)(uint32_t)fd << 3) | TAG_POLL;
}

static struct io_uring_sqe *get_sqe(struct ur *u)
{
    return io_uring_get_sqe(&u->ring);
}

static int is_multishot(unsigned opc)
{
    return opc == GYRE__OP_ACCEPT_MULTI || opc == GYRE__OP_RECV_MULTI;
}

/* SQEs an op takes: [cancel-fd] op [link timeout]. */
static uint32_t op_sqes(const gyre_op *op)
{
    return 1u + (gyre__op_kernel_deadline(op) != 0) + ((OPST(op) & ST_CLOSEFD) != 0);
}

/* --- init / fini --- */

static void gyre_uring_fini(void *state)
{
    struct ur *u = state;

    /* Only munmap and close: io_uring_queue_exit does exactly that (liburing
     * 2.3 unregisters nothing unless the ring fd was registered, which this
     * file never does), so a child after fork drops the parent's ring
     * without acting on it. The ring's memory was MADV_DONTFORK'd, so in a
     * child these munmaps find nothing, which is harmless. */
    io_uring_queue_exit(&u->ring);
    for (size_t i = 0; i < u->bufs_cap; i++) {
        if (u->bufs[i].br != NULL)
            munmap(u->bufs[i].br, u->bufs[i].map_len);
    }
    gyre__free(u->bufs);
    gyre__free(u->msgs);
    gyre__free(u->fds);
    gyre__free(u->dirty);
    gyre__free(u);
}

/* Where the kernel puts the SQ array: after the CQEs, aligned to a cache
 * line (rings_size() in io_uring/io_uring.c). A resize does not report it
 * (6.18 says 0), so init() learns the alignment from what setup reported,
 * and grow_cq() computes the new offset with it. */
static uint32_t sq_array_off(uint32_t cqes_off, uint32_t cq_entries, uint32_t align)
{
    uint32_t end = cqes_off + cq_entries * (uint32_t)sizeof(struct io_uring_cqe);

    return (end + align - 1) & ~(align - 1);
}

/* The CQ size: four times the SQ when the program chose the ring size;
 * otherwise as many CQEs as the program can have fds (each may carry an op
 * in flight), within [4 * entries, MAX_CQ_ENTRIES] (CLAMP caps it too). A
 * smaller CQ than the ops in flight is correct, only slower: see the header. */
static uint32_t cq_size(uint32_t asked, uint32_t entries)
{
    struct rlimit rl;
    uint32_t cq = entries * 4;

    if (asked == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= MAX_CQ_ENTRIES)
            cq = MAX_CQ_ENTRIES;
        else if (rl.rlim_cur > cq)
            cq = (uint32_t)rl.rlim_cur;
    }
    return cq;
}

static int gyre_uring_init(void **state, const gyre_loop_opts *opts, const char **reason)
{
    struct io_uring_params p;
    uint32_t entries = opts->ring_entries ? opts->ring_entries : DEFAULT_ENTRIES;
    struct ur *u;
    int r;

    if (!gyre_uring_probe()) {
        *reason = probed.reason;
        return probed.err;
    }
    /* Pairs with the release store in gyre__probe_once(). */
    if (!gyre__probe_done(&probe_cache)) {
        *reason = "io_uring: probe failed for lack of fds or memory";
        return atomic_load_explicit(&probe_transient, memory_order_relaxed);
    }
    if (entries > MAX_ENTRIES)
        entries = MAX_ENTRIES;
    u = gyre__calloc(1, sizeof *u);
    if (u == NULL)
        return -ENOMEM;
    memset(&p, 0, sizeof p);
    p.cq_entries = cq_size(opts->ring_entries, entries);
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP | probed.submit_all;
    if (opts->flags & GYRE_LOOP_SQPOLL) {
        /* DEFER_TASKRUN is refused with SQPOLL; the SQ thread is the one
         * issuer anyway. */
        p.flags |= IORING_SETUP_SQPOLL;
    } else if (probed.defer) {
        /* Enabled by the first wait(), so that the thread that runs the loop,
         * not the one that made it, becomes the single issuer. */
        p.flags |=
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
    } else if (probed.single_issuer) {
        p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_R_DISABLED | probed.coop;
    } else {
        p.flags |= probed.coop;
    }
    r = io_uring_queue_init_params(entries, &u->ring, &p);
    if (r < 0) {
        gyre__free(u);
        *reason = REASON("io_uring_setup", r);
        return r;
    }
    r = io_uring_ring_dontfork(&u->ring);
    if (r < 0) {
        io_uring_queue_exit(&u->ring);
        gyre__free(u);
        *reason = "io_uring: madvise(MADV_DONTFORK) failed";
        return r;
    }
    u->msgs = gyre__calloc(p.sq_entries, sizeof *u->msgs);
    if (u->msgs == NULL) {
        io_uring_queue_exit(&u->ring);
        gyre__free(u);
        *reason = "io_uring: no memory for the ring's state";
        return -ENOMEM;
    }
    if (probed.iowq_max) {
        unsigned int workers[2] = {IOWQ_WORKERS, IOWQ_WORKERS};

        /* The limit is also kept on the ring for threads that attach later
         * (5.15+). Failure only costs the cap, never correctness. */
        (void)io_uring_register_iowq_max_workers(&u->ring, workers);
    }
    if (probed.resize && (p.flags & IORING_SETUP_DEFER_TASKRUN)) {
        for (uint32_t a = 64; a <= 256 && u->sq_align == 0; a *= 2) {
            if (sq_array_off(p.cq_off.cqes, p.cq_entries, a) == p.sq_off.array)
                u->sq_align = a;
        }
    }
    u->setup_flags = p.flags;
    u->features = p.features;
    u->sq_entries = p.sq_entries;
    u->cq_entries = p.cq_entries;
    u->disabled = (p.flags & IORING_SETUP_R_DISABLED) != 0;
    *state = u;
    return 0;
}

/* --- readiness --- */

static int fd_reserve(struct ur *u, int fd)
{
    size_t old = u->fds_cap;
    int r;

    if ((size_t)fd < u->fds_cap)
        return 0;
    r = gyre__grow(&u->fds, &u->fds_cap, (size_t)fd + 1, sizeof *u->fds);
    if (r < 0)
        return r;
    memset(u->fds + old, 0, (u->fds_cap - old) * sizeof *u->fds);
    /* Every fd can be dirty at most once: the list never needs to grow
     * later, so marking an fd dirty (also on removal) cannot fail. */
    return gyre__grow(&u->dirty, &u->dirty_cap, u->fds_cap, sizeof *u->dirty);
}

static void mark_dirty(struct ur *u, int fd)
{
    struct fdent *e = &u->fds[fd];

    if (!e->dirty) {
        e->dirty = 1;
        u->dirty[u->ndirty++] = fd;
    }
}

/* The current arm (if in the kernel) must go: it is removed by user_data
 * and its CQE, whatever it says, is then stale by sequence. */
static void retire_arm(struct ur *u, int fd)
{
    struct fdent *e = &u->fds[fd];

    if (++e->seq == 0)
        e->seq = 1;
    if (e->kseq != 0) {
        e->rmseq = e->kseq;
        e->kseq = 0;
    }
    mark_dirty(u, fd);
}

static int gyre_uring_ctl(void *state, int fd, uint32_t old_events, uint32_t new_events,
                          uint64_t cookie)
{
    struct ur *u = state;
    struct fdent *e;
    int r;

    (void)old_events;
    if (new_events == 0) {
        if (fd < 0 || (size_t)fd >= u->fds_cap || u->fds[fd].events == 0)
            return 0;
        e = &u->fds[fd];
        e->events = 0;
        e->need_arm = 0;
        retire_arm(u, fd);
        return 0;
    }
    if (fd < 0 || (uint32_t)fd >= FD_LIMIT)
        return -EINVAL;
    if ((new_events & GYRE_EDGE) && !probed.poll_multi)
        return -ENOTSUP;
    /* POLL_ADD on a bad fd would fail only in its CQE; say it now, as
     * epoll_ctl does. */
    r = gyre__sys_fcntl_getfd(fd);
    if (r < 0)
        return r;
    r = fd_reserve(u, fd);
    if (r < 0)
        return r;
    e = &u->fds[fd];
    retire_arm(u, fd);
    e->events = new_events & (UR_INTEREST | GYRE_EDGE);
    e->cookie = cookie;
    e->need_arm = 1;
    e->quiet = 0;
    return 0;
}

/* Writes the removals and arms of dirty fds while the SQ has room. */
static void flush_fds(struct ur *u)
{
    size_t i, keep = 0;

    for (i = 0; i < u->ndirty; i++) {
        int fd = u->dirty[i];
        struct fdent *e = &u->fds[fd];
        struct io_uring_sqe *sqe;

        /* Reaped by this wait, not yet dispatched: a new arm now would fire
         * again for the condition the callback has yet to consume, and
         * report it a second time. It goes in with the next wait. */
        if (e->held == u->wait_gen) {
            u->dirty[keep++] = fd;
            continue;
        }
        if (e->rmseq != 0) {
            sqe = get_sqe(u);
            if (sqe == NULL)
                break;
            io_uring_prep_poll_remove(sqe, poll_ud(fd, e->rmseq));
            io_uring_sqe_set_data64(sqe, TAG_IGNORE);
            e->rmseq = 0;
        }
        if (e->need_arm && e->events != 0) {
            sqe = get_sqe(u);
            if (sqe == NULL)
                break;
            io_uring_prep_poll_add(sqe, fd, e->events & UR_INTEREST);
            /* Multishot poll triggers on wakeups, not on state: that is
             * edge-triggered. */
            if ((e->events & GYRE_EDGE) || e->quiet)
                sqe->len = IORING_POLL_ADD_MULTI;
            io_uring_sqe_set_data64(sqe, poll_ud(fd, e->seq));
            e->kseq = e->seq;
        }
        e->need_arm = 0;
        e->dirty = 0;
    }
    for (; i < u->ndirty; i++)
        u->dirty[keep++] = u->dirty[i];
    u->ndirty = keep;
}

/* One CQE of a poll arm; returns 1 if it made an event in *ev. */
static int reap_poll(struct ur *u, const struct io_uring_cqe *cqe, gyre__event *ev)
{
    int fd = (int)((cqe->user_data >> 3) & (FD_LIMIT - 1));
    uint32_t seq = (uint32_t)(cqe->user_data >> 32);
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    struct fdent *e;
    uint32_t events, wanted;

    if ((size_t)fd >= u->fds_cap || u->fds[fd].seq != seq)
        return 0; /* a retired arm */
    e = &u->fds[fd];
    /* What epoll would report: the interest, and ERR and HUP. io_uring polls
     * for RDHUP as well, asked or not (IO_POLL_UNMASK, since 5.1). */
    wanted = (e->events & UR_INTEREST) | GYRE_ERR | GYRE_HUP;
    events = cqe->res < 0 ? GYRE_ERR : (uint32_t)cqe->res & wanted;
    e->held = u->wait_gen;
    if (!more) {
        e->kseq = 0;
        /* Level-triggered: re-armed in the next io_uring_enter while the
         * registration lives; a still-true condition fires again at once.
         * Not an unasked RDHUP, though: a socket whose read side is shut
         * down stays so, and an arm that fired for that alone would fire
         * again at once, forever (a loop waiting for room to write spun).
         * Such an fd gets a multishot arm, which fires on wakeups, until
         * one brings what was asked for. */
        if (e->events != 0 && cqe->res != -EBADF) {
            if (cqe->res >= 0 && events == 0 && !(e->events & GYRE_EDGE) && probed.poll_multi)
                e->quiet = 1;
            else if (events != 0)
                e->quiet = 0;
            e->need_arm = 1;
            mark_dirty(u, fd);
        }
    } else if (e->quiet && events != 0) {
        /* The wakeup came: back to one-shot arms, level-triggered. */
        retire_arm(u, fd);
        e->quiet = 0;
        e->need_arm = 1;
    }
    if (cqe->res == -ECANCELED || cqe->res == -EBADF)
        return 0; /* cancelled by a close on the fd, or the fd is gone */
    if (events == 0)
        return 0;
    ev->cookie = e->cookie;
    ev->events = events;
    ev->kind = GYRE__EV_READY;
    ev->res = 0;
    ev->buf_id = 0;
    ev->pad = 0;
    return 1;
}

static int gyre_uring_fd(void *state)
{
    const struct ur *u = state;

    /* The ring fd is readable while CQEs are pending; with DEFER_TASKRUN
     * also while completions wait as deferred task work (checked on 6.18:
     * a blocking poll(2) on the ring fd wakes when a POLL_ADD fires). */
    return u->ring.ring_fd;
}

/* --- operations --- */

static int gyre_uring_supports(void *state, unsigned opcode)
{
    (void)state;
    switch (opcode) {
    case GYRE__FEAT_CLOSE_CANCELS_FD:
        return probed.cancel_fd;
    case GYRE__FEAT_TIMEOUT_LINKS:
        return probed.etime_success;
    case GYRE__OP_NOP:
        return 1;
    case GYRE__OP_READ:
        return probed.ops[IORING_OP_READ];
    case GYRE__OP_WRITE:
        return probed.ops[IORING_OP_WRITE] && probed.ops[IORING_OP_SEND];
    case GYRE__OP_READV:
        return probed.ops[IORING_OP_READV];
    case GYRE__OP_WRITEV:
        return probed.ops[IORING_OP_WRITEV] && probed.ops[IORING_OP_SENDMSG];
    case GYRE__OP_RECV:
        return probed.ops[IORING_OP_RECV];
    case GYRE__OP_SEND:
        return probed.ops[IORING_OP_SEND];
    case GYRE__OP_RECVMSG:
        return probed.ops[IORING_OP_RECVMSG];
    case GYRE__OP_SENDMSG:
        return probed.ops[IORING_OP_SENDMSG];
    case GYRE__OP_ACCEPT:
        return probed.ops[IORING_OP_ACCEPT];
    case GYRE__OP_CONNECT:
        return probed.ops[IORING_OP_CONNECT];
    case GYRE__OP_SHUTDOWN:
        return probed.ops[IORING_OP_SHUTDOWN];
    case GYRE__OP_CLOSE:
        return probed.ops[IORING_OP_CLOSE];
    case GYRE__OP_OPENAT:
        return probed.ops[IORING_OP_OPENAT];
    case GYRE__OP_STATX:
        return probed.ops[IORING_OP_STATX];
    case GYRE__OP_FSYNC:
        return probed.ops[IORING_OP_FSYNC];
    case GYRE__OP_POLL:
        return probed.ops[IORING_OP_POLL_ADD];
    case GYRE__OP_TIMEOUT:
        return probed.ops[IORING_OP_TIMEOUT];
    case GYRE__OP_ACCEPT_MULTI:
        return probed.accept_multi && probed.ops[IORING_OP_ACCEPT];
    case GYRE__OP_RECV_MULTI:
        return probed.recv_multi && probed.pbuf_ring && probed.ops[IORING_OP_RECV];
    case GYRE__OP_FTRUNCATE:
        return probed.ftruncate;
    case GYRE__OP_FALLOCATE:
        return probed.ops[IORING_OP_FALLOCATE];
    case GYRE__OP_UNLINKAT:
        return probed.ops[IORING_OP_UNLINKAT];
    case GYRE__OP_RENAMEAT:
        return probed.ops[IORING_OP_RENAMEAT];
    case GYRE__OP_MKDIRAT:
        return probed.ops[IORING_OP_MKDIRAT];
    default:
        /* NONE, WORK: the core's; COPY_FILE_RANGE, GETDENTS: io_uring has
         * no opcode for them (as of 6.18), so they go to the pool. */
        return 0;
    }
}

static int inject_op_reset(struct ur *u, gyre_op *op);

static int gyre_uring_submit(void *state, gyre_op *op)
{
    struct ur *u = state;
    unsigned opc = op->gyre__priv.opcode;
    int linked = (op->gyre__priv.sflags & GYRE__OPF_LINK) != 0;
    uint64_t st = ST_PARKED;
    uint32_t need;

    if (!gyre_uring_supports(u, opc))
        return -EINVAL;
    /* A multishot request cannot carry a linked timeout or be linked: its
     * first CQE would end the link. The core carries those itself. */
    if (is_multishot(opc) && (gyre__op_kernel_deadline(op) != 0 || linked))
        return -EINVAL;
    /* TIMEOUT's timespec and a deadline's share be[BE_TS]. */
    if (opc == GYRE__OP_TIMEOUT && gyre__op_kernel_deadline(op) != 0)
        return -EINVAL;
    if (FAULTS_ON() && !u->open_chain && inject_op_reset(u, op))
        return 0;
    if (linked)
        st |= ST_LINKED;
    if (opc == GYRE__OP_CLOSE && probed.cancel_fd)
        st |= ST_CLOSEFD;
    /* The fd's entry counts the op, or holds the close, without failing
     * later. */
    if (op->gyre__priv.fd >= 0) {
        int r = fd_reserve(u, op->gyre__priv.fd);

        if (r < 0)
            return r;
    }
    OPST(op) = st;
    set_op_at(op, BE_SUCC, NULL);
    set_op_at(op, BE_PRED, NULL);
    need = op_sqes(op);
    /* A chain goes into one submission; it cannot be longer than the SQ. */
    if (u->open_chain + need > u->sq_entries)
        return -EINVAL;
    u->open_chain = linked ? u->open_chain + need : 0;
    if (opc == GYRE__OP_TIMEOUT)
        ns_to_ts(op->gyre__priv.off, &op->gyre__priv.be[BE_TS]);
    if (gyre__op_kernel_deadline(op) != 0)
        ns_to_ts(gyre__op_kernel_deadline(op), &op->gyre__priv.be[BE_DL]);
    opq_push(&u->park, op);
    return 0;
}

/* 1 if op is a CLOSE that waited for the ops on its fd (or still does). */
static int is_closer(const struct ur *u, const gyre_op *op)
{
    int fd = op->gyre__priv.fd;

    return op->gyre__priv.opcode == GYRE__OP_CLOSE && fd >= 0 && (size_t)fd < u->fds_cap &&
           u->fds[fd].closer == op;
}

/* op is in the kernel now, issued or about to be: a close of its fd written
 * from here on waits for it, unless one already waits (see the header). */
static void fd_count(struct ur *u, gyre_op *op)
{
    int fd = op->gyre__priv.fd;

    if (fd < 0 || op->gyre__priv.opcode == GYRE__OP_CLOSE || u->fds[fd].closer != NULL)
        return;
    u->fds[fd].nops++;
    OPST(op) |= ST_FDCOUNT;
}

/* A counted op's final CQE came; the close waiting for it may go. */
static void fd_uncount(struct ur *u, const gyre_op *op)
{
    struct fdent *e = &u->fds[op->gyre__priv.fd];

    if (--e->nops == 0 && e->closer != NULL && !(OPST(e->closer) & ST_PARKED)) {
        OPST(e->closer) |= ST_PARKED;
        opq_push_front(&u->park, e->closer);
    }
}

/* Whether op is bound for an fd that has a closer: see the header. */
static int fd_closing(const struct ur *u, const gyre_op *op)
{
    int fd = op->gyre__priv.fd;

    return fd >= 0 && op->gyre__priv.opcode != GYRE__OP_CLOSE && u->fds[fd].closer != NULL;
}

/* Whether the close at the head of the park FIFO must first wait for the
 * ops on its fd: some are in the kernel and no close of the fd waited yet. */
static int close_must_wait(const struct ur *u, const gyre_op *op)
{
    int fd = op->gyre__priv.fd;

    return op->gyre__priv.opcode == GYRE__OP_CLOSE && !(OPST(op) & (ST_LINKED | ST_CANCEL)) &&
           fd >= 0 && u->fds[fd].nops > 0 && u->fds[fd].closer == NULL;
}

/* Puts op (in the kernel, cancel requested) on the cancel FIFO: the SQE is
 * written at the next flush. */
static void queue_cancel(struct ur *u, gyre_op *op)
{
    OPST(op) |= ST_CANCELQ;
    opq_push(&u->cancels, op);
}

/* The CQE of op (linked to the next op in the kernel) came: the kernel now
 * issues that op, or fails it, so a cancel of it can find it from here on. */
static void link_release(struct ur *u, gyre_op *op)
{
    gyre_op *succ = op_at(op, BE_SUCC);

    if (succ == NULL)
        return;
    set_op_at(op, BE_SUCC, NULL);
    set_op_at(succ, BE_PRED, NULL);
    OPST(succ) &= ~(uint64_t)ST_LWAIT;
    /* A close of its fd waits for it: it must end, before it can act on
     * the fd (cancel-fd could not find it until now). */
    if (fd_closing(u, succ))
        OPST(succ) |= ST_CANCEL;
    if ((OPST(succ) & (ST_CANCEL | ST_CANCELQ | ST_FINAL)) == ST_CANCEL)
        queue_cancel(u, succ);
}

static int gyre_uring_cancel(void *state, gyre_op *op)
{
    struct ur *u = state;
    uint64_t st = OPST(op);

    if (st & (ST_CANCEL | ST_DONE | ST_FINAL))
        return 0; /* already asked, or already over */
    if (is_closer(u, op))
        return 0; /* the ops it waits for are being cancelled; it closes */
    if (st & ST_PARKED) {
        /* Never reached the kernel: flush_ops() completes it here. */
        OPST(op) = st | ST_CANCEL;
        return 0;
    }
    if (st & ST_LWAIT) {
        /* The kernel has not issued it yet: a request waiting behind a
         * link is on none of the lists ASYNC_CANCEL searches (io-wq, poll,
         * timeouts), so a cancel now would say -ENOENT and be lost (seen on
         * 6.18). Asked for when the op before it ends: link_release(). */
        OPST(op) = st | ST_CANCEL;
        return 0;
    }
    OPST(op) = st | ST_CANCEL;
    queue_cancel(u, op);
    return 0;
}

/* Writes queued cancels, at most half the SQ per call: ops, closes and poll
 * arms (the loop's wakeup among them) always find room behind them, however
 * many cancels a burst of closes or resets queued. */
static void flush_cancels(struct ur *u)
{
    uint32_t room = (u->sq_entries + 1) / 2;
    gyre_op *op;

    while (u->cancels.head != NULL && room-- > 0) {
        struct io_uring_sqe *sqe = get_sqe(u);

        if (sqe == NULL)
            return;
        op = opq_pop(&u->cancels);
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op | TAG_OP, 0);
        io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | TAG_CANCEL);
        OPST(op) = (OPST(op) & ~(uint64_t)ST_CANCELQ) + 1; /* one more CQE owed */
    }
}

/* Cancels that missed an op still owed go out again, once, after a wait in
 * which the loop could sleep: see reap_op(). */
static int requeue_retries(struct ur *u)
{
    gyre_op *op;
    int n = 0;

    while ((op = opq_pop(&u->retry)) != NULL) {
        OPST(op) &= ~(uint64_t)ST_RETRYQ;
        opq_push(&u->cancels, op);
        n++;
    }
    return n;
}

/* Completes op here, without the kernel, at the next report. */
static void finish_local(struct ur *u, gyre_op *op, int32_t res)
{
    OPST(op) = ((uint64_t)(uint32_t)res << 32) | ST_DONE | ST_FINAL;
    opq_push(&u->done, op);
}

/* GYRE_FAULTS at the ring's boundary, before the kernel sees the SQE: a
 * one-shot transfer is handed a shorter length, as a short read or write
 * would come back (on an O_DIRECT fd, one the kernel takes). Not one the
 * kernel links onward or must move whole (MSG_WAITALL): the kernel would
 * judge its link, or retry, by the shorter length, which the core cannot
 * see. Only call when FAULTS_ON(). */
static void inject_sqe(const gyre_op *op, int link_out, struct io_uring_sqe *sqe)
{
    if (link_out || gyre__op_whole(op))
        return;
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_READ:
    case GYRE__OP_WRITE:
        sqe->len = (uint32_t)inject_short_file(sqe->fd, sqe->len);
        break;
    case GYRE__OP_RECV:
    case GYRE__OP_SEND:
        sqe->len = (uint32_t)inject_short(sqe->len);
        break;
    default:
        break;
    }
}

/* GYRE_FAULTS: a stream socket op that stands alone (no link, no deadline)
 * fails with ECONNRESET without reaching the kernel. Returns 1 when it was
 * injected (the op is then done). Only call when FAULTS_ON(). */
static int inject_op_reset(struct ur *u, gyre_op *op)
{
    unsigned opc = op->gyre__priv.opcode;
    int sock = opc == GYRE__OP_RECV || opc == GYRE__OP_SEND || opc == GYRE__OP_RECVMSG ||
               opc == GYRE__OP_SENDMSG ||
               (opc == GYRE__OP_WRITE && op->gyre__priv.off == GYRE_OFF_CUR);

    if (!sock || (op->gyre__priv.sflags & GYRE__OPF_LINK) || gyre__op_kernel_deadline(op) != 0)
        return 0;
    if (inject_reset() == 0)
        return 0;
    finish_local(u, op, -ECONNRESET);
    return 1;
}

/* Writes op's SQEs; returns the last one (the one a link continues from). */
static struct io_uring_sqe *emit_op(struct ur *u, gyre_op *op, int link_out)
{
    const uint64_t ud = (uint64_t)(uintptr_t)op;
    void *addr = op->gyre__priv.addr;
    uint32_t len = op->gyre__priv.len, arg = op->gyre__priv.arg;
    uint64_t off = op->gyre__priv.off;
    int fd = op->gyre__priv.fd;
    struct io_uring_sqe *sqe;
    uint64_t pending = 1;
    /* A linked write moves every byte or breaks its link (gyre.h's link
     * table): MSG_WAITALL has the kernel retry a partial send (5.19+; before,
     * the send ends short and breaks the link all the same). */
    int waitall = (op->gyre__priv.sflags & GYRE__OPF_WHOLE) ? MSG_WAITALL : 0;

    if (OPST(op) & ST_CLOSEFD) {
        /* gyre_op_close(): whatever this ring still holds on the fd ends
         * first with -ECANCELED (poll arms included: they pin the file).
         * A hard link, because "nothing to cancel" is an error for it. */
        sqe = get_sqe(u);
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
        sqe->flags |= IOSQE_IO_HARDLINK;
        io_uring_sqe_set_data64(sqe, TAG_IGNORE);
    }
    sqe = get_sqe(u);
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_NOP:
        io_uring_prep_nop(sqe);
        break;
    case GYRE__OP_READ:
        io_uring_prep_read(sqe, fd, addr, len, off);
        break;
    case GYRE__OP_WRITE:
        /* At the current position (pipes, sockets): a send, which never
         * raises SIGPIPE; the core redoes it on -ENOTSOCK. A plain WRITE to
         * a broken pipe or socket raises SIGPIPE (checked on 6.18). */
        if (off == GYRE_OFF_CUR)
            io_uring_prep_send(sqe, fd, addr, len, MSG_NOSIGNAL | waitall);
        else
            io_uring_prep_write(sqe, fd, addr, len, off);
        break;
    case GYRE__OP_READV:
        io_uring_prep_readv(sqe, fd, addr, len, off);
        break;
    case GYRE__OP_WRITEV:
        /* At the current position (the core sends only sockets here): a
         * SENDMSG with MSG_NOSIGNAL, for the reason WRITE is a SEND. */
        if (off == GYRE_OFF_CUR) {
            struct msghdr *m = &u->msgs[sqe - u->ring.sq.sqes];

            memset(m, 0, sizeof *m);
            m->msg_iov = addr;
            m->msg_iovlen = len;
            io_uring_prep_sendmsg(sqe, fd, m, MSG_NOSIGNAL | waitall);
        } else {
            io_uring_prep_writev(sqe, fd, addr, len, off);
        }
        break;
    case GYRE__OP_RECV:
        /* MSG_DONTWAIT would let -EAGAIN through; io_uring waits itself. */
        io_uring_prep_recv(sqe, fd, addr, len, (int)(arg & ~(uint32_t)MSG_DONTWAIT));
        break;
    case GYRE__OP_SEND:
        io_uring_prep_send(sqe, fd, addr, len, (int)(arg & ~(uint32_t)MSG_DONTWAIT) | waitall);
        break;
    case GYRE__OP_RECVMSG:
        io_uring_prep_recvmsg(sqe, fd, addr, arg & ~(uint32_t)MSG_DONTWAIT);
        break;
    case GYRE__OP_SENDMSG:
        io_uring_prep_sendmsg(sqe, fd, addr, (arg & ~(uint32_t)MSG_DONTWAIT) | (uint32_t)waitall);
        break;
    case GYRE__OP_ACCEPT:
        io_uring_prep_accept(sqe, fd, addr, op->gyre__priv.addr2, (int)(arg | SOCK_CLOEXEC));
        break;
    case GYRE__OP_CONNECT:
        io_uring_prep_connect(sqe, fd, addr, len);
        break;
    case GYRE__OP_SHUTDOWN:
        io_uring_prep_shutdown(sqe, fd, (int)arg);
        break;
    case GYRE__OP_CLOSE:
        io_uring_prep_close(sqe, fd);
        break;
    case GYRE__OP_OPENAT:
        io_uring_prep_openat(sqe, fd, addr, (int)arg, op->gyre__priv.arg2);
        break;
    case GYRE__OP_STATX:
        io_uring_prep_statx(sqe, fd, addr, (int)arg, op->gyre__priv.arg2, op->gyre__priv.addr2);
        break;
    case GYRE__OP_FSYNC:
        io_uring_prep_fsync(sqe, fd, arg == 1 ? IORING_FSYNC_DATASYNC : 0);
        break;
    case GYRE__OP_POLL:
        io_uring_prep_poll_add(sqe, fd, arg & UR_INTEREST);
        break;
    case GYRE__OP_TIMEOUT:
        /* An expired TIMEOUT holds its link (gyre.h's link table): the
         * flag says so to the kernel (5.16+); without it the core carries
         * a TIMEOUT's link (GYRE__FEAT_TIMEOUT_LINKS). */
        io_uring_prep_timeout(sqe, ts_at(op, BE_TS), 0,
                              probed.etime_success ? IORING_TIMEOUT_ETIME_SUCCESS : 0);
        break;
    case GYRE__OP_ACCEPT_MULTI:
        io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
        break;
    case GYRE__OP_RECV_MULTI:
        /* The core's gyre_bufpool starts with its uint16_t bgid. */
        io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = *(const uint16_t *)addr;
        break;
    case GYRE__OP_FTRUNCATE:
        /* The length travels in sqe->off; every other field must be 0. */
        io_uring_prep_rw(GYRE__IORING_OP_FTRUNCATE, sqe, fd, NULL, 0, off);
        break;
    case GYRE__OP_FALLOCATE:
        io_uring_prep_fallocate(sqe, fd, (int)arg, (off_t)off, (off_t)op->gyre__priv.off2);
        break;
    case GYRE__OP_UNLINKAT:
        io_uring_prep_unlinkat(sqe, fd, addr, (int)arg);
        break;
    case GYRE__OP_RENAMEAT:
        io_uring_prep_renameat(sqe, fd, addr, (int)op->gyre__priv.arg2, op->gyre__priv.addr2, arg);
        break;
    case GYRE__OP_MKDIRAT:
        io_uring_prep_mkdirat(sqe, fd, addr, op->gyre__priv.arg2);
        break;
    default:
        io_uring_prep_nop(sqe); /* unreachable: submit() checked */
        break;
    }
    io_uring_sqe_set_data64(sqe, ud | TAG_OP);
    if (FAULTS_ON())
        inject_sqe(op, link_out, sqe);
    if (gyre__op_kernel_deadline(op) != 0) {
        sqe->flags |= IOSQE_IO_LINK;
        sqe = get_sqe(u);
        io_uring_prep_link_timeout(sqe, ts_at(op, BE_DL), 0);
        io_uring_sqe_set_data64(sqe, ud | TAG_LTO);
        pending++;
    }
    /* op -> [link timeout] -> next: a link timeout with IOSQE_IO_LINK
     * continues the chain to the next request (io_uring_prep_link_timeout(3)),
     * and times only the request before it. */
    if (link_out)
        sqe->flags |= IOSQE_IO_LINK;
    OPST(op) = (OPST(op) & ~(uint64_t)(ST_PARKED | ST_PENDING)) | pending;
    return sqe;
}

/* Moves whole chains from the park FIFO into the SQ, in order, while the SQ
 * has room. How many CQEs they will bring does not matter: see the header. */
static void flush_ops(struct ur *u)
{
    while (u->park.head != NULL) {
        gyre_op *op = u->park.head, *end = op, *prev = NULL;
        uint32_t sqes = 0, n = 0;
        struct io_uring_sqe *last = NULL;
        int dead = 0;

        for (;;) {
            sqes += op_sqes(end);
            n++;
            if (!(OPST(end) & ST_LINKED))
                break;
            if (op_next(end) == NULL)
                return; /* the chain is not terminated yet: its rest comes later */
            end = op_next(end);
        }
        if (sqes > io_uring_sq_space_left(&u->ring))
            return;
        if (n == 1 && close_must_wait(u, op)) {
            /* Only the cancel now (on kernels that cancel by fd; older
             * ones had the core cancel them one by one), and the close
             * when they have ended: fd_uncount(). */
            opq_pop(&u->park);
            OPST(op) &= ~(uint64_t)ST_PARKED;
            u->fds[op->gyre__priv.fd].closer = op;
            if (probed.cancel_fd) {
                struct io_uring_sqe *sqe = get_sqe(u);

                io_uring_prep_cancel_fd(sqe, op->gyre__priv.fd, IORING_ASYNC_CANCEL_ALL);
                io_uring_sqe_set_data64(sqe, TAG_IGNORE);
            }
            continue;
        }
        /* Emit the chain. An op cancelled before it reached the kernel (or
         * bound for an fd being closed) ends with -ECANCELED here, and so
         * does the rest of its chain, as the kernel would do; the op before
         * it then ends the chain. */
        for (uint32_t i = 0; i < n; i++) {
            gyre_op *cur = opq_pop(&u->park);
            int link_out;

            if ((OPST(cur) & ST_CANCEL) || fd_closing(u, cur))
                dead = 1;
            if (dead) {
                if (last != NULL)
                    last->flags &= (uint8_t) ~(IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
                last = NULL;
                finish_local(u, cur, -ECANCELED);
                continue;
            }
            if (prev != NULL) {
                /* Linked behind prev: the kernel issues it when prev ends. */
                set_op_at(prev, BE_SUCC, cur);
                set_op_at(cur, BE_PRED, prev);
                OPST(cur) |= ST_LWAIT;
            }
            link_out = (OPST(cur) & ST_LINKED) && i + 1 < n;
            last = emit_op(u, cur, link_out);
            fd_count(u, cur);
            prev = link_out ? cur : NULL;
        }
    }
}

/* One CQE naming an op; returns 1 if it made an event in *ev. */
static int reap_op(struct ur *u, const struct io_uring_cqe *cqe, gyre__event *ev)
{
    gyre_op *op = (gyre_op *)(uintptr_t)(cqe->user_data & ~(uint64_t)TAG_MASK);
    unsigned tag = (unsigned)(cqe->user_data & TAG_MASK);
    uint64_t st = OPST(op);
    uint32_t flags = 0, buf_id = 0;
    int64_t res;

    if (tag == TAG_OP && (cqe->flags & IORING_CQE_F_MORE)) {
        /* One of many: reported as it comes. */
        ev->cookie = (uint64_t)(uintptr_t)op;
        ev->events = GYRE_OP_MORE;
        ev->kind = GYRE__EV_OP;
        ev->res = cqe->res;
        ev->buf_id = 0;
        ev->pad = 0;
        if (cqe->flags & IORING_CQE_F_BUFFER) {
            ev->events |= GYRE_OP_BUFFER;
            ev->buf_id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        }
        return 1;
    }
    if (tag == TAG_LTO && cqe->res == -ETIME)
        st |= ST_FIRED;
    if (tag == TAG_OP) {
        st = (st & 0xffffu) | ((uint64_t)(uint32_t)cqe->res << 32) | ST_FINAL;
        if (cqe->flags & IORING_CQE_F_BUFFER)
            st |= ST_BUF | ((uint64_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) << 16);
        if (st & ST_CANCELQ) {
            /* Over before its cancel was written: the cancel must never be,
             * or it could hit the op's next life at the same address. */
            opq_remove((st & ST_RETRYQ) ? &u->retry : &u->cancels, op);
            st &= ~(uint64_t)(ST_CANCELQ | ST_RETRYQ);
        }
        if (st & ST_LWAIT) {
            /* Ended before the op it was linked behind said so (a broken
             * chain): that op must not reach this one any more. */
            set_op_at(op_at(op, BE_PRED), BE_SUCC, NULL);
            set_op_at(op, BE_PRED, NULL);
            st &= ~(uint64_t)ST_LWAIT;
        }
        link_release(u, op);
    }
    if ((st & ST_PENDING) == 0)
        return 0; /* cannot happen: every CQE naming an op was counted */
    st--;         /* one CQE fewer owed */
    if (tag == TAG_CANCEL && (cqe->res == -ENOENT || cqe->res == -EALREADY) &&
        (st & (ST_LWAIT | ST_FINAL | ST_CANCELQ)) == 0) {
        /* The cancel missed an op that is still owed: the kernel had it in
         * task work, on none of the lists ASYNC_CANCEL searches. An op that
         * was linked is issued from task work queued when the op before it
         * ended; a send on a socket that polls as hung up (its read side
         * shut down) but has no room bounces between its poll and task work
         * dozens of times before io-wq takes it (seen on 6.18 with
         * DEFER_TASKRUN, where an enter submits first and runs task work
         * when it waits). -EALREADY: found running in io-wq, and maybe not
         * interrupted. Ask again: every enter runs task work, so a later
         * try finds the op (or its CQE comes first). Not at once, though:
         * an op unfindable for long (a buffered read waiting for a page)
         * would have its cancel bounce every iteration, at 100% CPU. The
         * retry FIFO goes out after a wait in which the loop could sleep
         * (which it then does for at most CANCEL_RETRY_NS); no fixed cap on
         * retries, as an op re-armed after the last one could never be
         * cancelled. */
        st |= ST_CANCELQ | ST_RETRYQ;
        opq_push(&u->retry, op);
    }
    OPST(op) = st;
    if ((st & ST_PENDING) != 0 || !(st & ST_FINAL))
        return 0;

    res = (int32_t)(uint32_t)(st >> 32);
    switch (op->gyre__priv.opcode) {
    case GYRE__OP_TIMEOUT:
        if (res == -ETIME)
            res = 0;
        break;
    case GYRE__OP_POLL:
        /* The events asked for, and ERR and HUP. One that fired only for
         * an RDHUP nobody asked for (io_uring polls for it always) says
         * -EAGAIN: the core waits again, by readiness (reap_poll()). */
        if (res > 0) {
            res &= (op->gyre__priv.arg & UR_INTEREST) | GYRE_ERR | GYRE_HUP;
            if (res == 0)
                res = -EAGAIN;
        }
        break;
    default:
        break;
    }
    /* A request cut short while running (io-wq) ends with -EINTR, which
     * must never reach a callback; one that said -EAGAIN after its deadline
     * fired is over too (the core redoes other -EAGAINs). */
    if ((res == -ECANCELED || res == -EINTR || res == -EAGAIN) && (st & ST_FIRED))
        res = -ETIME;
    else if (res == -EINTR)
        res = -ECANCELED;
    if (st & ST_BUF) {
        flags |= GYRE_OP_BUFFER;
        buf_id = (uint32_t)(st >> 16) & 0xffffu;
    }
    if (st & ST_FDCOUNT)
        fd_uncount(u, op);
    else if (is_closer(u, op))
        u->fds[op->gyre__priv.fd].closer = NULL;
    /* Reported, but its callback has not run: a cancel from an earlier
     * callback of this batch must see it is over (gyre_uring_cancel()), as
     * the op may be freed right after. Cleared by the next submit. */
    OPST(op) = ST_FINAL;
    ev->cookie = (uint64_t)(uintptr_t)op;
    ev->events = flags;
    ev->kind = GYRE__EV_OP;
    ev->res = res;
    ev->buf_id = buf_id;
    ev->pad = 0;
    return 1;
}

/* Reaps up to max - n CQEs into out[n..]; returns the new n. */
static int reap(struct ur *u, gyre__event *out, int n, int max)
{
    struct io_uring_cq *cq = &u->ring.cq;
    unsigned head = *cq->khead, seen = 0;
    /* Acquire: the CQE contents are read after the tail that covers them. */
    unsigned tail = io_uring_smp_load_acquire(cq->ktail);

    while (head != tail && n < max) {
        const struct io_uring_cqe *cqe = &cq->cqes[head & cq->ring_mask];
        unsigned tag = (unsigned)(cqe->user_data & TAG_MASK);

        if (tag == TAG_POLL)
            n += reap_poll(u, cqe, &out[n]);
        else if (tag != TAG_IGNORE)
            n += reap_op(u, cqe, &out[n]);
        head++;
        seen++;
    }
    /* Release: our reads of the CQEs are done before the kernel may reuse
     * their slots. */
    if (seen)
        io_uring_cq_advance(&u->ring, seen);
    return n;
}

static int drain_done(struct ur *u, gyre__event *out, int n, int max)
{
    while (n < max && u->done.head != NULL) {
        gyre_op *op = opq_pop(&u->done);
        gyre__event *ev = &out[n++];

        ev->cookie = (uint64_t)(uintptr_t)op;
        ev->events = 0;
        ev->kind = GYRE__EV_OP;
        ev->res = (int32_t)(uint32_t)(OPST(op) >> 32);
        ev->buf_id = 0;
        ev->pad = 0;
        OPST(op) = ST_FINAL; /* as in reap_op() */
    }
    return n;
}

/* Publishes the SQ tail; returns how many SQEs the kernel has not consumed. */
static unsigned sq_publish(struct ur *u)
{
    struct io_uring_sq *sq = &u->ring.sq;
    unsigned head;

    /* Release: the SQE contents are visible before the tail that covers
     * them (to an SQPOLL thread; otherwise the syscall orders it too). */
    io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
    sq->sqe_head = sq->sqe_tail;
    if (u->setup_flags & IORING_SETUP_SQPOLL)
        head = io_uring_smp_load_acquire(sq->khead); /* the SQ thread moves it */
    else
        head = *sq->khead;
    return sq->sqe_tail - head;
}

static int enter(struct ur *u, unsigned to_submit, int64_t timeout_ns)
{
    struct __kernel_timespec ts;
    struct io_uring_getevents_arg arg;
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    unsigned min = 0;

    memset(&arg, 0, sizeof arg);
    arg.sigmask_sz = _NSIG / 8;
    if (timeout_ns != 0) {
        min = 1;
        if (timeout_ns > 0) {
            ts.tv_sec = timeout_ns / 1000000000;
            ts.tv_nsec = timeout_ns % 1000000000;
            arg.ts = (uint64_t)(uintptr_t)&ts;
        }
    }
    if (u->setup_flags & IORING_SETUP_SQPOLL) {
        /* Full barrier: the kernel sees the new SQ tail before we read
         * whether its thread sleeps (liburing's reasoning in sq_ring_needs_enter). */
        io_uring_smp_mb();
        if (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_NEED_WAKEUP)
            flags |= IORING_ENTER_SQ_WAKEUP;
    }
    /* GYRE_FAULTS: the transient errors io_uring_enter can give, before
     * the kernel acts (nothing submitted, nothing reaped), so the retry
     * below is exercised on every run with faults. */
    if (FAULTS_ON()) {
        int rc;

        inject_delay();
        rc = inject_again_intr();
        /* Half of the injected EAGAINs are EBUSY: both mean "reap first". */
        if (rc == -EAGAIN && (gyre__faults_injected() & 1))
            rc = -EBUSY;
        if (rc < 0)
            return rc;
    }
    u->enters++;
    return io_uring_enter2((unsigned)u->ring.ring_fd, to_submit, min, flags, (sigset_t *)&arg,
                           sizeof arg);
}

/* After a CQ overflow, on a ring that can be resized (6.13+, DEFER_TASKRUN):
 * a CQ four times as large, up to MAX_CQ_ENTRIES. Called at the top of
 * wait(), when every SQE written is published: the kernel copies what it
 * has not consumed, and the CQEs not yet reaped, into the new rings, which
 * it maps at the old offsets. A failed resize costs only speed (the
 * overflow list keeps every CQE); failing to map the new rings after the
 * kernel switched to them leaves nothing to run on, so every later wait()
 * fails with that error. */
static void grow_cq(struct ur *u)
{
    struct io_uring_params p;
    struct io_uring fresh;
    struct io_uring_sq *sq = &u->ring.sq;
    struct io_uring_cq *cq = &u->ring.cq;
    unsigned sqe_head = sq->sqe_head, sqe_tail = sq->sqe_tail;
    int r;

    u->grow = 0;
    if (u->cq_entries >= MAX_CQ_ENTRIES || u->sq_align == 0)
        return;
    memset(&p, 0, sizeof p);
    p.sq_entries = u->sq_entries;
    p.cq_entries = u->cq_entries >= MAX_CQ_ENTRIES / 4 ? MAX_CQ_ENTRIES : u->cq_entries * 4;
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    r = io_uring_register((unsigned)u->ring.ring_fd, GYRE__IORING_REGISTER_RESIZE_RINGS, &p, 1);
    if (r < 0) {
        u->cq_entries = MAX_CQ_ENTRIES; /* do not try again */
        return;
    }
    /* The kernel filled in the new offsets but the SQ array's; what
     * liburing's mmap reads from the rest must describe this ring. */
    if (p.sq_off.array == 0)
        p.sq_off.array = sq_array_off(p.cq_off.cqes, p.cq_entries, u->sq_align);
    p.features = u->features;
    r = io_uring_queue_mmap(u->ring.ring_fd, &p, &fresh);
    if (r < 0) {
        u->err = r;
        return;
    }
    munmap(sq->sqes, (size_t)u->sq_entries * sizeof(struct io_uring_sqe));
    if (cq->ring_ptr != NULL && cq->ring_ptr != sq->ring_ptr)
        munmap(cq->ring_ptr, cq->ring_sz);
    munmap(sq->ring_ptr, sq->ring_sz);
    u->ring.sq = fresh.sq;
    u->ring.cq = fresh.cq;
    u->ring.sq.sqe_head = sqe_head;
    u->ring.sq.sqe_tail = sqe_tail;
    /* The new SQ array starts zeroed; liburing maps slot i to SQE i. */
    for (unsigned i = 0; i < p.sq_entries; i++)
        u->ring.sq.array[i] = i;
    (void)io_uring_ring_dontfork(&u->ring);
    u->cq_entries = p.cq_entries;
}

static int gyre_uring_wait(void *state, int64_t timeout_ns, gyre__event *out, int max)
{
    struct ur *u = state;
    int n = 0, r, badr = 0, resent = 0;
    uint32_t ko;

    if (max <= 0)
        return 0;
    u->wait_gen++;
    if (u->disabled) {
        /* The first thread to run the loop becomes its single issuer.
         * io_uring_enable_rings() is missing from liburing 2.3's shared
         * library (its symbol map), hence the raw register call. */
        r = io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
        if (r < 0)
            return r == -EEXIST ? -EBUSY : r;
        u->disabled = 0;
    }
    if (u->err != 0) {
        /* A dropped CQE is said once; a ring that could not be mapped
         * again is gone for good. */
        r = u->err;
        if (r == -EBADR)
            u->err = 0;
        return r;
    }
    if (u->grow)
        grow_cq(u);
    /* A wait the caller asked not to block counts as one that could: the
     * program turns the loop itself. */
    if (u->retry.head != NULL && (u->blocked || timeout_ns == 0))
        resent = requeue_retries(u);
    flush_fds(u);
    flush_cancels(u);
    flush_ops(u);
    /* More to write than the SQ holds (say 1,000 watches started at once
     * into a 256-entry SQ), or more cancels than the half of it they may
     * take: submit what is there without waiting and write the rest, before
     * ever blocking. A poll arm or cancel left out of the ring would be
     * waited on forever. */
    for (int rounds = 0;
         rounds < 1024 && (io_uring_sq_space_left(&u->ring) == 0 || u->cancels.head != NULL) &&
         (u->ndirty > 0 || u->cancels.head != NULL || u->park.head != NULL);
         rounds++) {
        r = enter(u, sq_publish(u), 0);
        if (r == -EBADR)
            badr = 1;
        else if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            break;
        n = reap(u, out, n, max);
        flush_fds(u);
        flush_cancels(u);
        flush_ops(u);
    }

    for (int tries = 0;; tries++) {
        unsigned to_submit = sq_publish(u);
        unsigned kflags = IO_URING_READ_ONCE(*u->ring.sq.kflags);
        int64_t t = timeout_ns;

        /* Something to report already: only submit, reap and run task work.
         * Overflowed CQEs, too, are flushed by an enter with GETEVENTS that
         * does not block, before any wait that may. */
        if (n > 0 || u->done.head != NULL || io_uring_cq_ready(&u->ring) > 0 ||
            (kflags & IORING_SQ_CQ_OVERFLOW))
            t = 0;
        if ((kflags & IORING_SQ_CQ_OVERFLOW) && u->sq_align != 0)
            u->grow = 1;
        /* A cancel waits to be sent again: sleep, but not for long, as the
         * op it missed may be findable by then with nothing else to wake
         * the loop (a close waiting for it, say). */
        if (u->retry.head != NULL && (t < 0 || t > CANCEL_RETRY_NS))
            t = CANCEL_RETRY_NS;
        u->blocked = t != 0 && !resent;
        /* Nothing to submit, CQEs waiting and no kernel-side backlog: reaping
         * needs no kernel entry. */
        if (to_submit == 0 && t == 0 && io_uring_cq_ready(&u->ring) > 0 &&
            !(kflags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) &&
            !(u->setup_flags & IORING_SETUP_DEFER_TASKRUN))
            break;
        r = enter(u, to_submit, t);
        if (r >= 0 || r == -ETIME)
            break;
        if (r == -EEXIST)
            return n > 0 ? n : -EBUSY; /* SINGLE_ISSUER: not the loop's thread */
        if (r == -EBADR) {
            badr = 1; /* CQEs were dropped (5.19+): counted below */
            break;
        }
        if (tries >= 3) {
            /* Still transient: let the loop turn; nothing was lost. */
            if (r == -EINTR || r == -EAGAIN || r == -EBUSY)
                return n;
            return n > 0 ? n : r;
        }
        if (r == -EINTR) {
            /* A signal: retry without blocking so pending SQEs still go in
             * and the loop turns to see what the signal did. */
            timeout_ns = 0;
            continue;
        }
        if (r == -EAGAIN || r == -EBUSY) {
            /* Out of request memory, or the CQ backlog must shrink first:
             * free CQ room and try again without blocking. */
            n = reap(u, out, n, max);
            timeout_ns = 0;
            continue;
        }
        return n > 0 ? n : r;
    }
    n = drain_done(u, out, n, max);
    n = reap(u, out, n, max);
    /* A CQE the kernel could not keep (no memory for the overflow list) is
     * an op that will never complete: say so loudly, after the events
     * already reaped have been reported. */
    ko = IO_URING_READ_ONCE(*u->ring.cq.koverflow);
    if (ko != u->koverflow || badr) {
        u->dropped += ko != u->koverflow ? ko - u->koverflow : 1;
        u->koverflow = ko;
        if (n == 0)
            return -EBADR;
        u->err = -EBADR;
    }
    return n;
}

/* --- buffer rings --- */

static int gyre_uring_bufring_add(void *state, void *mem, uint32_t count, uint32_t size,
                                  uint16_t *bgid)
{
    struct ur *u = state;
    struct io_uring_buf_reg reg;
    struct bufring *b = NULL;
    size_t slot, len;
    void *ring;
    int r;

    if (!probed.pbuf_ring)
        return -ENOTSUP;
    if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || size == 0)
        return -EINVAL;
    for (slot = 0; slot < u->bufs_cap; slot++) {
        if (u->bufs[slot].br == NULL)
            break;
    }
    if (slot == u->bufs_cap) {
        size_t old = u->bufs_cap;

        if (slot > UINT16_MAX)
            return -ENOSPC;
        r = gyre__grow(&u->bufs, &u->bufs_cap, slot + 1, sizeof *u->bufs);
        if (r < 0)
            return r;
        memset(u->bufs + old, 0, (u->bufs_cap - old) * sizeof *u->bufs);
    }
    b = &u->bufs[slot];
    /* The kernel wants the ring page-aligned: mmap gives that. */
    len = (size_t)count * sizeof(struct io_uring_buf);
    ring = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED)
        return -ENOMEM;
    /* Pinned by the kernel for the parent; a child must not share it. */
    (void)madvise(ring, len, MADV_DONTFORK);
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)ring;
    reg.ring_entries = count;
    reg.bgid = (uint16_t)slot;
    r = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (r < 0) {
        munmap(ring, len);
        return r == -EINVAL && !probed.pbuf_ring ? -ENOTSUP : r;
    }
    b->br = ring;
    b->map_len = len;
    b->mem = mem;
    b->count = count;
    b->size = size;
    io_uring_buf_ring_init(b->br);
    for (uint32_t i = 0; i < count; i++)
        io_uring_buf_ring_add(b->br, b->mem + (size_t)i * size, size, (unsigned short)i,
                              io_uring_buf_ring_mask(count), (int)i);
    /* Release store of the tail: the entries are visible before it. */
    io_uring_buf_ring_advance(b->br, (int)count);
    *bgid = (uint16_t)slot;
    return 0;
}

static int gyre_uring_bufring_put(void *state, uint16_t bgid, uint32_t id)
{
    struct ur *u = state;
    struct bufring *b;

    if (bgid >= u->bufs_cap || u->bufs[bgid].br == NULL)
        return -EINVAL;
    b = &u->bufs[bgid];
    if (id >= b->count)
        return -EINVAL;
    io_uring_buf_ring_add(b->br, b->mem + (size_t)id * b->size, b->size, (unsigned short)id,
                          io_uring_buf_ring_mask(b->count), 0);
    /* Release store of the tail: the entry is visible before it. */
    io_uring_buf_ring_advance(b->br, 1);
    return 0;
}

static void gyre_uring_bufring_del(void *state, uint16_t bgid)
{
    struct ur *u = state;
    struct bufring *b;

    if (bgid >= u->bufs_cap || u->bufs[bgid].br == NULL)
        return;
    b = &u->bufs[bgid];
    (void)io_uring_unregister_buf_ring(&u->ring, bgid);
    munmap(b->br, b->map_len);
    memset(b, 0, sizeof *b);
}

static void gyre_uring_info(void *state, gyre_info *out)
{
    const struct ur *u = state;

    out->ring_flags = u->setup_flags;
    out->ring_features = u->features;
    out->sq_entries = u->sq_entries;
    out->cq_entries = u->cq_entries;
    out->kernel_enters = u->enters;
    out->cqe_dropped = u->dropped;
}

GYRE__BACKEND_DEFINE_NATIVE(gyre__backend_uring, "uring",
                            GYRE_CAP_EDGE | GYRE_CAP_LOOP_FD | GYRE_CAP_ANY_FD, gyre_uring);
