/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* loop.h: the loop's private state, shared by the files of src/core/.
 *
 * Invariants:
 * - fds[fd].watch is the one active watch on fd (or NULL); fds[fd].kmask is
 *   what the backend has registered for fd, 0 when nothing.
 * - fds[fd].gen changes whenever fd's registration changes owner (a watch
 *   starts or stops). Cookies given to the backend carry (gen << 32 | fd), so
 *   an event fetched before a stop can never reach a later owner of the fd,
 *   and dispatch never touches the memory of a stopped watch.
 * - active counts started objects that are not internal; refs counts those of
 *   them that are referenced. The loop is alive while refs > 0.
 */
#ifndef GYRE_CORE_LOOP_H
#define GYRE_CORE_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/engine.h"
#include "gyre.h"

enum gyre__htype {
    GYRE__H_TIMER = 0x6701,
    GYRE__H_WATCH,
    GYRE__H_ASYNC,
    GYRE__H_SIGNAL,
    GYRE__H_HOOK,
};

enum gyre__hflag {
    GYRE__HF_ACTIVE = 1u << 0,
    GYRE__HF_UNREF = 1u << 1,
    GYRE__HF_INTERNAL = 1u << 2, /* the loop's own: never counted */
};

/* A FIFO of ops linked through op->gyre__priv.next/prev; an op is on at most
 * one queue at a time, and its state (enum gyre__opstate) says which. */
struct gyre__opq {
    gyre_op *head, *tail;
};

struct gyre__fdent {
    gyre_watch *watch;
    uint32_t gen;
    uint32_t kmask;
    /* Emulated ops waiting for readiness: read side (IN), write side (OUT),
     * one-shot polls (their own events). Each starts in submission order. */
    struct gyre__opq rq, wq, pq;
    /* Stream order (op.c): per side (0 reads, 1 writes), the data ops that
     * wait for the ones ahead of them, and how many own the side (in the
     * backend, or a multishot recv). */
    struct gyre__opq order_wait[2];
    uint16_t order_busy[2];
    /* Closes of this fd started by gyre; an op notes it at submission
     * (gyre__priv.pending), so one that would start after a close of its
     * fd (behind a link) knows its number may name another file now. */
    uint32_t close_gen;
    /* Closes of this fd started and not yet complete (gyre_try_send() says
     * -EBADF meanwhile); cleared when gyre's own accept or open makes a new
     * file with this number. */
    uint16_t closing;
    uint8_t dirty;    /* on loop->dirty: kmask may differ from what ops want */
    uint8_t kind;     /* enum gyre__fdkind: whether writes may be sends */
    uint8_t blocking; /* O_NONBLOCK clear: 0 not known yet, 1 yes, 2 no */
};

/* What the loop knows of an fd: learnt once (fstat), or from the op that
 * made it (accept: a socket, openat: not), and forgotten when gyre closes it.
 * A stale guess after an fd closed behind gyre's back costs speed, never
 * correctness: a send to a non-socket says ENOTSOCK and gyre redoes it. */
enum gyre__fdkind {
    GYRE__FD_UNKNOWN = 0,
    GYRE__FD_SOCKET,
    GYRE__FD_FILE, /* a regular file or block device */
    GYRE__FD_OTHER
};

/* Where an op is (op->gyre__priv.state). 1 and 2 belong to pool.c. */
enum gyre__opstate {
    GYRE__OS_IDLE = 0,
    GYRE__OS_POOL_QUEUED = 1,
    GYRE__OS_POOL_RUNNING = 2,
    GYRE__OS_FDQ = 10,  /* on an fd's rq/wq/pq, waiting for readiness */
    GYRE__OS_READY,     /* on loop->ready: completes at the next dispatch */
    GYRE__OS_NATIVE,    /* carried by the backend, on loop->native */
    GYRE__OS_TIMER,     /* an emulated TIMEOUT op waiting for its timer */
    GYRE__OS_LINKWAIT,  /* waiting for the op it is linked behind */
    GYRE__OS_BUFWAIT,   /* a multishot recv waiting for a pool buffer */
    GYRE__OS_POSTED,    /* back from a pool worker, on loop->posted */
    GYRE__OS_HOLD,      /* a native op with a link, held to see what follows */
    GYRE__OS_REARM,     /* a multishot the kernel ended, in its callback before re-arming */
    GYRE__OS_CLOSEWAIT, /* a close waiting for the ops it cancelled, on loop->closewait */
    GYRE__OS_ENGINE,    /* with the file engine, on loop->engine_ops */
    GYRE__OS_ORDERWAIT, /* behind an earlier data op on its fd, on its order_wait */
};

/* The state of the chain of linked ops still open on a loop. */
enum gyre__chain {
    GYRE__CHAIN_NONE = 0,
    GYRE__CHAIN_PENDING,
    GYRE__CHAIN_OK,
    GYRE__CHAIN_FAIL
};

#define GYRE__NSIG_WORDS 2 /* bitmask words for signals 1..127 */

struct gyre_loop {
    const struct gyre__backend *be;
    void *be_state;
    uint32_t caps;
    uint64_t now_ns;

    /* readiness */
    struct gyre__fdent *fds;
    size_t fds_cap;
    gyre__event *events;
    uint32_t max_events;

    /* timers: a 4-ary min-heap of (deadline, seq) */
    gyre_timer **heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* intrusive lists of started objects */
    gyre__link asyncs;
    gyre__link signals;
    gyre__link hooks[3];

    /* wakeup: one eventfd for async sends and signals */
    int wake_fd;
    gyre_watch wake_watch;
    atomic_uint async_armed; /* 1 once a send wrote wake_fd and before the drain */
    _Atomic uint64_t sig_watched[GYRE__NSIG_WORDS]; /* read by the signal handler */
    _Atomic uint64_t sig_pending[GYRE__NSIG_WORDS];
    uint64_t sig_taken[GYRE__NSIG_WORDS];      /* being dispatched (loop thread) */
    uint16_t sig_count[GYRE__NSIG_WORDS * 64]; /* this loop's watchers per signal */
    int sig_slot;                              /* registry slot, -1 when none */

    /* operations */
    struct gyre__opq ready;  /* completed, callback at the next dispatch */
    struct gyre__opq native; /* in the backend */
    struct gyre__opq closewait;
    int *dirty; /* fds whose registration must be recomputed */
    size_t ndirty, dirty_cap;
    pthread_mutex_t post_lock; /* guards posted (pool threads append) */
    int post_lock_ok;
    struct gyre__opq posted;
    gyre_pool *pool; /* NULL until first needed, unless opts.pool */
    int pool_owned;
    int files_native;    /* file ops go to the backend, not the pool */
    gyre_op *link_hold;  /* first GYRE__OS_HOLD op (a chain through link_next) */
    gyre_op *hold_tail;  /* last one */
    gyre_op *chain_tail; /* with chain == PENDING: the op the next submit follows */
    int chain;
    gyre__link bufpools;
    const char *reason;     /* why auto did not take io_uring */
    gyre_loop_opts be_opts; /* what the backend was made with (fork remakes it) */

    /* file engine other than uring and pool (linuxaio, posixaio), or NULL */
    const struct gyre__file_engine *fe;
    void *fe_state;
    gyre_watch fe_watch;         /* on its wake fd, or */
    gyre_signal fe_signal;       /* on its signal */
    struct gyre__opq engine_ops; /* ops the engine holds */
    uint32_t ops_inflight;

    /* run state */
    atomic_int running;
    int stop_flag;
    uint32_t active, refs;
    gyre_stats stats;
};

/* --- handles --- */

void gyre__handle_init(gyre_loop *loop, gyre_handle *h, enum gyre__htype type);
void gyre__handle_start(gyre_handle *h);
void gyre__handle_stop(gyre_handle *h);

static inline int gyre__handle_is(const gyre_handle *h, enum gyre__htype type)
{
    return h != NULL && h->gyre__priv.type == type && h->gyre__priv.loop != NULL;
}

static inline int gyre__handle_active(const gyre_handle *h)
{
    return (h->gyre__priv.flags & GYRE__HF_ACTIVE) != 0;
}

/* --- intrusive lists --- */

static inline void gyre__list_init(gyre__link *l)
{
    l->next = l->prev = l;
}

static inline int gyre__list_empty(const gyre__link *l)
{
    return l->next == l;
}

static inline void gyre__list_push(gyre__link *l, gyre__link *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}

static inline void gyre__list_remove(gyre__link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

/* Calls fn on every link of list once, in order, so that fn may stop (unlink)
 * any link of the list, itself included, and start new ones (which wait for
 * the next call). */
void gyre__list_each(gyre__link *list, void (*fn)(gyre__link *));

#define gyre__container_of(ptr, type, member)                                                      \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* --- per-subsystem hooks used by loop.c --- */

void gyre__timers_run(gyre_loop *loop);
int64_t gyre__timers_next(const gyre_loop *loop); /* ns, -1 = none */
void gyre__timers_fini(gyre_loop *loop);

int gyre__watch_start_internal(gyre_loop *loop, gyre_watch *w, int fd, gyre_watch_cb cb);
void gyre__io_dispatch(gyre_loop *loop, int n);

void gyre__async_drain(gyre_loop *loop);
void gyre__signals_dispatch(gyre_loop *loop);
void gyre__signals_loop_fini(gyre_loop *loop);

void gyre__hooks_run(gyre_loop *loop, gyre_hook_kind kind);

/* --- fd table (watch.c) --- */

/* Makes sure fds[fd] exists. 0 or -ENOMEM. */
int gyre__fd_reserve(gyre_loop *loop, int fd);
/* Brings the backend registration of fd in line with what its watch and
 * queued ops want; `force` also when only the generation changed. */
int gyre__fd_sync(gyre_loop *loop, int fd, int force);
/* 1 if fd is a socket (cached in the table), 0 if not. */
int gyre__fd_is_socket(gyre_loop *loop, int fd);
/* 1 if fd is a regular file or block device (cached). */
int gyre__fd_is_file(gyre_loop *loop, int fd);
/* Records what an op's result fd is. */
void gyre__fd_learn(gyre_loop *loop, int fd, enum gyre__fdkind kind);
/* Marks fd for gyre__fd_sync at the next flush (before the kernel wait). */
void gyre__fd_dirty(gyre_loop *loop, int fd);
/* Syncs every dirty fd; ops whose registration fails complete with the
 * error (or move to the pool, for regular files epoll refuses). */
void gyre__fd_flush(gyre_loop *loop);

/* --- operations (op.c, emul.c) --- */

void gyre__opq_push(struct gyre__opq *q, gyre_op *op);
void gyre__opq_remove(struct gyre__opq *q, gyre_op *op);
static inline int gyre__opq_empty(const struct gyre__opq *q)
{
    return q->head == NULL;
}

/* Delivers one completion of op (final unless flags has GYRE_OP_MORE) and
 * runs its callback. The op must be off every queue. */
void gyre__op_complete(gyre_loop *loop, gyre_op *op, int64_t res, uint32_t flags, uint32_t buf_id);
/* Queues the final completion for the next dispatch (never calls back). */
void gyre__op_ready(gyre_loop *loop, gyre_op *op, int64_t res);
/* Files (fileops.c). */
int gyre__fd_is_direct(gyre_loop *loop, int fd);
/* 1 if fd lacks O_NONBLOCK (learnt once with F_GETFL). */
int gyre__fd_is_blocking(gyre_loop *loop, int fd);
/* Before a file op goes anywhere: an O_DIRECT read or write that breaks the
 * fd's alignment rules, or a buffered read the page cache answers whole, is
 * completed here (ready). Returns 1 if so. */
int gyre__file_precheck(gyre_loop *loop, gyre_op *op);
/* The blocking syscall of a file op that gyre__op_exec does not know. */
int64_t gyre__fileop_exec(gyre_op *op);
/* Bytes a read or write asks for. */
uint64_t gyre__op_wanted_bytes(const gyre_op *op);

/* Hands op to a lane of the loop's pool (made on first use). 0 or -errno. */
int gyre__op_to_pool(gyre_loop *loop, gyre_op *op, int lane);
/* The file engine has completions: report them (loop.c calls it). */
void gyre__engine_reap(gyre_loop *loop);
/* Makes and wires the loop's file engine for `name`; 0 or -errno. */
int gyre__engine_open(gyre_loop *loop, const char *name);
void gyre__engine_close(gyre_loop *loop);
/* Takes a file op if the engine carries it: 1 taken (or completed), 0 for
 * the pool. */
int gyre__engine_take(gyre_loop *loop, gyre_op *op);
/* Cancel of an op the engine holds (completes it with res if it can). */
void gyre__engine_cancel(gyre_loop *loop, gyre_op *op, int64_t res);
/* In a fork child: the engine's ops end -ECANCELED, the engine is remade. */
int gyre__engine_fork(gyre_loop *loop);
/* Routes an op that may start now (after submit, or after its link). */
void gyre__op_start(gyre_loop *loop, gyre_op *op);
/* Runs ready and posted completions (dispatch step). */
void gyre__ops_dispatch_ready(gyre_loop *loop);
void gyre__ops_drain_posted(gyre_loop *loop);
/* Handles one GYRE__EV_OP event from the backend. */
void gyre__op_native_event(gyre_loop *loop, const gyre__event *ev);
/* Submits held native ops (before the kernel wait). */
void gyre__ops_flush(gyre_loop *loop);

/* Emulation by readiness (emul.c). */
int gyre__emul_queue(gyre_loop *loop, gyre_op *op);   /* FDQ or ready; 0 or -errno */
void gyre__emul_cancel(gyre_loop *loop, gyre_op *op); /* takes a FDQ op off its queue */
void gyre__emul_ready(gyre_loop *loop, int fd, uint32_t events);
/* Takes every queued op off fd, completing each with res (close, errors). */
void gyre__emul_fail_fd(gyre_loop *loop, int fd, int64_t res);

/* Buffer pools (bufpool.c). */
struct gyre_bufpool {
    uint16_t bgid;   /* first member: the io_uring backend reads it */
    uint16_t native; /* the kernel's buffer ring holds the free buffers */
    uint32_t count, size;
    gyre_loop *loop;
    unsigned char *mem;
    uint32_t *free_ids; /* emulated: stack of free buffer ids */
    uint32_t nfree;
    uint8_t *out; /* per buffer: handed to the user */
    uint32_t nout;
    uint32_t users;           /* in-flight ops naming the pool */
    struct gyre__opq waiters; /* multishot recvs waiting for a buffer */
    gyre__link link;          /* on loop->bufpools */
};
/* Emulated pools: takes a free buffer (-ENOBUFS if none) / gives it back
 * unused. */
int gyre__bufpool_take(gyre_bufpool *pool);
void gyre__bufpool_untake(gyre_bufpool *pool, uint32_t id);
/* A native completion handed buffer id to the user. */
void gyre__bufpool_mark_out(gyre_bufpool *pool, uint32_t id);
/* Parks a multishot recv until a buffer comes back. */
void gyre__bufpool_wait(gyre_bufpool *pool, gyre_op *op);
void gyre__bufpools_fork(gyre_loop *loop);

extern atomic_int gyre__live_loops;

#endif
