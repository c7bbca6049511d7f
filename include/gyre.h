/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* gyre.h: the one public header of gyre, an event loop for Linux that offers
 * both readiness notification (reactor) and completion callbacks (proactor).
 *
 * THE CONTRACT
 *
 *  1. Every call returns >= 0 on success or -errno on failure; every operation
 *     result is >= 0 or -errno. errno is never the channel. gyre_strerror()
 *     turns a -errno into text.
 *  2. A start or submit call that returns < 0 never calls back. One that
 *     returns 0 calls back as documented for that object: exactly once for a
 *     one-shot operation, until stopped for a watch, timer or signal. Cancel
 *     is a request: the operation still completes once, with -ECANCELED if the
 *     cancel took effect and with its real result otherwise; a deadline gives
 *     -ETIME the same way. A completion callback runs only after the kernel or
 *     worker has let go of the operation's buffers.
 *  3. Callbacks run on the loop's thread, from gyre_loop_run(), never inside
 *     the call that started or submitted them.
 *  4. EAGAIN and EINTR never reach a completion callback; short reads and
 *     writes do (the result says what was done).
 *  5. Operations on one stream fd start in submission order.
 *  6. Every fd gyre makes is close-on-exec. A write to a closed socket or pipe
 *     gives -EPIPE and never raises SIGPIPE.
 *  7. gyre never aborts on an OS error and never prints. Misuse is an assert
 *     with a message in debug builds and -EINVAL or -EBUSY otherwise.
 *     Environment variables are read with secure_getenv().
 *
 * MEMORY
 *
 * Every object (timer, watch, async, signal, hook) is owned by the caller and
 * embedded wherever the caller likes; gyre allocates nothing per operation.
 * Stopping or closing an object is synchronous: once the stop call returns, no
 * callback for it will run and its memory may be freed or reused, even from
 * inside one of its own callbacks, and even when an event for it was already
 * fetched from the kernel in the batch being dispatched.
 *
 * THREADS
 *
 * A loop is run by one thread at a time, and every function taking a loop or
 * an object of a loop must be called on the thread running that loop (or, when
 * the loop is not running, on any one thread at a time). The exceptions are
 * gyre_async_send(), which any thread (and a signal handler) may call, and the
 * process-wide functions gyre_version*(), gyre_strerror() and
 * gyre_backend_supported().
 *
 * TIME
 *
 * Times are in nanoseconds on CLOCK_MONOTONIC, so setting the wall clock never
 * moves a timer. The loop caches the time once per iteration (gyre_now()).
 */
#ifndef GYRE_H
#define GYRE_H

/* Every result is >= 0 or -errno: <errno.h> names them (-EINVAL, ...). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "gyre/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GYRE_BUILDING) && defined(__GNUC__)
#define GYRE_API __attribute__((visibility("default")))
#else
#define GYRE_API
#endif

/* ------------------------------------------------------------------------ */
/* Library                                                                   */
/* ------------------------------------------------------------------------ */

/* The version of the library loaded at run time, as GYRE_VERSION_HEX.
 * Errors: none. */
GYRE_API uint32_t gyre_version(void);
/* The same as a static string, e.g. "0.1.0".
 * Errors: none. */
GYRE_API const char *gyre_version_string(void);

/* Text for a gyre return value (-errno, or errno). Never NULL, thread-safe;
 * the string is static.
 * Errors: none. */
GYRE_API const char *gyre_strerror(int err);

/* Replaces the allocator gyre uses for its own memory (loops, tables, the
 * timer heap). Returns 0, -EINVAL if any function is NULL, or -EBUSY if a loop
 * exists: allocator and memory must match for gyre's lifetime, so call this
 * before the first gyre_loop_new(). Not thread-safe with other gyre calls.
 * Errors: -EINVAL, -EBUSY. */
GYRE_API int gyre_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                                void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *));

/* 1 if backend `name` can run on this machine now, 0 if not, -EINVAL if no
 * backend has that name. Names: "select", "poll", "epoll", "uring".
 * Errors: -EINVAL. */
GYRE_API int gyre_backend_supported(const char *name);

/* ------------------------------------------------------------------------ */
/* Loop                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct gyre_loop gyre_loop;

typedef struct gyre_pool gyre_pool;

/* gyre_loop_opts.flags */
#define GYRE_LOOP_SQPOLL 0x1u /* io_uring: a kernel thread polls the SQ (off by default) */

typedef struct gyre_loop_opts {
    /* "auto" (or NULL) picks the best backend that works here: io_uring, then
     * epoll, poll, select; otherwise "uring", "epoll", "poll" or "select". An
     * explicit backend that cannot start is an error, never a silent
     * fallback. When NULL, the environment variable GYRE_BACKEND is read
     * (secure_getenv) and used the same way. */
    const char *backend;
    /* Maximum readiness events fetched per kernel wait; 0 = default (1024). */
    uint32_t max_events;
    uint32_t flags; /* GYRE_LOOP_* */
    /* Where file operations run: "auto" (NULL: GYRE_FILE_ENGINE, else auto)
     * = "uring" on io_uring and "pool" elsewhere; "pool" = the thread pool;
     * "linuxaio" = Linux kernel AIO for O_DIRECT reads and writes (the rest
     * on the pool); "posixaio" = glibc's aio_*. "uring" on another backend,
     * or an engine this machine lacks, is an error (-EINVAL, -ENOSYS). */
    const char *file_engine;
    /* A thread pool shared with other loops, or NULL: the loop makes its own
     * the first time it needs one. A shared pool must outlive the loop. */
    gyre_pool *pool;
    /* io_uring submission queue size; 0 = 256. The completion queue is four
     * times this when set; when 0, it is sized for the fd limit (at most
     * 65,536). Either way it never limits how many ops are in flight. */
    uint32_t ring_entries;
    uint32_t reserved32;  /* must be 0 */
    uint64_t reserved[3]; /* must be 0: room for later options */
} gyre_loop_opts;

typedef enum gyre_run_mode {
    GYRE_RUN_DEFAULT = 0, /* run until stopped or nothing referenced is active */
    GYRE_RUN_ONCE = 1,    /* one iteration, waiting for events unless a timer
                             already fired in it */
    GYRE_RUN_NOWAIT = 2   /* one iteration, never waiting */
} gyre_run_mode;

/* Backend capability bits (gyre_loop_caps()). */
#define GYRE_CAP_EDGE 0x1u       /* watches may be edge-triggered (GYRE_EDGE) */
#define GYRE_CAP_LOOP_FD 0x2u    /* gyre_loop_fd() gives a pollable fd */
#define GYRE_CAP_ANY_FD 0x4u     /* no FD_SETSIZE limit on watched fds */
#define GYRE_CAP_NATIVE_OPS 0x8u /* the kernel carries operations (io_uring) */

/* Creates a loop in *loop. opts may be NULL for defaults. Returns 0,
 * -EINVAL (bad option, unknown backend name), -ENOSYS or -EPERM (the chosen
 * backend cannot run here), -ENOMEM, -EMFILE/-ENFILE. On failure *loop is
 * untouched and nothing leaks.
 * Errors: -EINVAL, -ENOSYS, -EPERM, -ENOMEM, -EMFILE, -ENFILE, -EAGAIN. */
GYRE_API int gyre_loop_new(gyre_loop **loop, const gyre_loop_opts *opts);

/* Frees a loop. Returns -EBUSY (and frees nothing) while any object of the
 * loop is active, referenced or not, or while the loop is running; 0 once
 * freed.
 * Errors: -EINVAL, -EBUSY. */
GYRE_API int gyre_loop_free(gyre_loop *loop);

/* Runs the loop (see gyre_run_mode). Returns 0 when no referenced object is
 * active any more, 1 when some still are (after gyre_loop_stop() or a
 * once/nowait iteration), or -EBUSY when called while the loop is already
 * running (from one of its callbacks, or from another thread). On io_uring
 * with SINGLE_ISSUER (Linux 6.0+) the first thread that runs the loop becomes
 * its only runner: a loop may be made on one thread and run on another, but
 * once run it is -EBUSY from any other thread. -EBADR: the kernel dropped a
 * completion (io_uring, out of memory for its CQ overflow list), so some op
 * will never complete; gyre_stats.cqe_dropped counts them. The loop is still
 * usable, but the program should treat this as fatal.
 * Errors: -EINVAL, -EBUSY, -ENOMEM, -EBADR. */
GYRE_API int gyre_loop_run(gyre_loop *loop, gyre_run_mode mode);

/* Makes gyre_loop_run() return after the current iteration.
 * Errors: none. */
GYRE_API void gyre_loop_stop(gyre_loop *loop);

/* The cached monotonic time in ns, updated at the start of every iteration.
 * Timers and deadlines count from it.
 * Errors: none. */
GYRE_API uint64_t gyre_now(const gyre_loop *loop);
/* Refreshes the cached time (for long callbacks): a timer started after it
 * counts from now rather than from the start of the iteration.
 * Errors: none. */
GYRE_API void gyre_loop_update_time(gyre_loop *loop);

/* The running backend's name ("epoll", ...); static string.
 * Errors: none. */
GYRE_API const char *gyre_loop_backend(const gyre_loop *loop);
/* The running backend's GYRE_CAP_* bits.
 * Errors: none. */
GYRE_API uint32_t gyre_loop_caps(const gyre_loop *loop);

/* An fd that becomes readable when the loop has events to dispatch, for
 * embedding gyre in another loop: when it is readable, or when
 * gyre_loop_timeout() has passed, call gyre_loop_run(loop, GYRE_RUN_NOWAIT).
 * The fd belongs to the loop; do not close or read it. Returns -ENOTSUP on
 * backends without GYRE_CAP_LOOP_FD (select, poll).
 * Errors: -EINVAL, -ENOTSUP. */
GYRE_API int gyre_loop_fd(const gyre_loop *loop);

/* Nanoseconds until the loop next has timer work: -1 when it would block
 * forever, 0 when it has work now (an expired timer, an idle hook, pending
 * callbacks).
 * Errors: none. */
GYRE_API int64_t gyre_loop_timeout(const gyre_loop *loop);

/* 1 if the loop has active referenced objects (gyre_loop_run would block),
 * 0 otherwise.
 * Errors: none. */
GYRE_API int gyre_loop_alive(const gyre_loop *loop);

typedef struct gyre_stats {
    uint64_t iterations;        /* loop iterations run */
    uint64_t kernel_waits;      /* calls into the backend's wait syscall */
    uint64_t events_dispatched; /* callbacks run for readiness events */
    uint64_t timers_fired;      /* timer callbacks run */
    uint64_t wakeups;           /* times the loop's wakeup fd was drained */
    uint64_t faults_injected;   /* GYRE_FAULTS injections, process-wide */
    uint32_t active_handles;    /* objects started and not stopped, and ops in flight */
    uint32_t active_refs;       /* ... of which referenced */
    uint64_t ops_completed;     /* op callbacks run (each multishot result counts) */
    uint64_t kernel_enters;     /* io_uring_enter calls; readiness backends: waits */
    uint64_t file_inline;       /* file reads answered by the page cache inline */
    uint64_t file_pool;         /* file ops the file engine sent to the pool */
    /* GYRE_FAULTS injections by kind, process-wide (they add up to
     * faults_injected). */
    uint64_t faults_eagain, faults_eintr, faults_short, faults_enomem, faults_delay, faults_reset;
    /* -ECANCELED results nobody asked for that gyre absorbed by doing the op
     * again (io_uring's io-wq cancels work it cannot find a thread for;
     * after two such answers the op goes to the pool or readiness). */
    uint64_t ops_redone;
    /* Completions the kernel dropped (io_uring: no memory to keep a CQ
     * overflow). Each one is an op that will never complete: gyre_loop_run
     * returns -EBADR when it sees one. 0 on other backends. */
    uint64_t cqe_dropped;
    uint64_t reserved[2];
} gyre_stats;

/* Copies the loop's counters into *out. Returns 0 or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_loop_stats(const gyre_loop *loop, gyre_stats *out);

/* ------------------------------------------------------------------------ */
/* Handles: what every long-lived object starts with                         */
/* ------------------------------------------------------------------------ */

typedef struct gyre__link {
    struct gyre__link *next, *prev;
} gyre__link;

/* The first member of every object. `data` is the caller's; the rest is
 * private to gyre. */
typedef struct gyre_handle {
    void *data;
    struct {
        gyre_loop *loop;
        gyre__link link;
        uint16_t type;
        uint16_t flags;
    } gyre__priv;
} gyre_handle;

/* A referenced active object keeps gyre_loop_run(GYRE_RUN_DEFAULT) running;
 * an unreferenced one does not (but still gets its callbacks while the loop
 * runs). Objects start referenced. Idempotent.
 * Errors: none. */
GYRE_API void gyre_handle_ref(gyre_handle *h);
GYRE_API void gyre_handle_unref(gyre_handle *h);
GYRE_API int gyre_handle_has_ref(const gyre_handle *h);
/* 1 while started (a timer counts until it last fires or is stopped).
 * Errors: none. */
GYRE_API int gyre_handle_active(const gyre_handle *h);

/* ------------------------------------------------------------------------ */
/* Timers                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct gyre_timer gyre_timer;
typedef void (*gyre_timer_cb)(gyre_timer *t);

struct gyre_timer {
    gyre_handle base;
    gyre_timer_cb cb;
    struct {
        uint64_t deadline_ns;
        uint64_t repeat_ns;
        uint64_t seq; /* start order, breaks deadline ties */
        uint32_t heap_index;
    } gyre__priv;
};

/* Prepares *t for use with loop. Returns 0 or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_timer_init(gyre_loop *loop, gyre_timer *t);

/* Fires cb after timeout_ns (0 = on the next iteration), then every repeat_ns
 * if repeat_ns > 0. The timeout counts from the loop's cached time
 * (gyre_now()), taken once at the start of each iteration, not from the
 * moment of this call: a timer started late in a long callback is due that
 * much earlier (libuv's rule). To count from now, call
 * gyre_loop_update_time() first. Timers due at the same time fire in the
 * order they were started. Deadlines saturate: a huge timeout never
 * overflows, it just never comes. Starting an active timer restarts it (it
 * is not an error). Returns 0, -EINVAL (NULL cb, uninitialised timer),
 * -ENOMEM (heap growth failed; the timer is then inactive).
 * Errors: -EINVAL, -ENOMEM. */
GYRE_API int gyre_timer_start(gyre_timer *t, gyre_timer_cb cb, uint64_t timeout_ns,
                              uint64_t repeat_ns);

/* Stops the timer; idempotent. Safe inside its own callback. Returns 0.
 * Errors: -EINVAL. */
GYRE_API int gyre_timer_stop(gyre_timer *t);

/* Restarts a repeating timer from now with its repeat interval. Returns 0,
 * or -EINVAL if it was never started. A timer with repeat 0 is stopped.
 * Errors: -EINVAL, -ENOMEM. */
GYRE_API int gyre_timer_again(gyre_timer *t);

/* Set and read the repeat interval used by gyre_timer_again() and after the
 * next expiry.
 * Errors: none. */
GYRE_API void gyre_timer_set_repeat(gyre_timer *t, uint64_t repeat_ns);
GYRE_API uint64_t gyre_timer_get_repeat(const gyre_timer *t);
/* ns until the timer is due (0 if due or inactive).
 * Errors: none. */
GYRE_API uint64_t gyre_timer_due_in(const gyre_timer *t);

/* ------------------------------------------------------------------------ */
/* Readiness watches (reactor)                                               */
/* ------------------------------------------------------------------------ */

/* Event bits; the values equal POLL* and EPOLL* on Linux. GYRE_ERR and
 * GYRE_HUP are always reported whether asked for or not. */
#define GYRE_IN 0x001u
#define GYRE_PRI 0x002u
#define GYRE_OUT 0x004u
#define GYRE_ERR 0x008u
#define GYRE_HUP 0x010u
#define GYRE_RDHUP 0x2000u /* peer shut down writing (stream sockets) */
/* Flag for gyre_watch_start(): edge-triggered. Backends without
 * GYRE_CAP_EDGE refuse it with -ENOTSUP, never silently level-trigger. */
#define GYRE_EDGE 0x80000000u

typedef struct gyre_watch gyre_watch;
/* events: the GYRE_* bits that hold (a subset of those asked for, plus
 * GYRE_ERR/GYRE_HUP). */
typedef void (*gyre_watch_cb)(gyre_watch *w, uint32_t events);

struct gyre_watch {
    gyre_handle base;
    gyre_watch_cb cb;
    struct {
        int fd;
        uint32_t events;
    } gyre__priv;
};

/* Prepares *w to watch fd (which the caller keeps owning). Returns 0 or
 * -EINVAL (fd < 0).
 * Errors: -EINVAL. */
GYRE_API int gyre_watch_init(gyre_loop *loop, gyre_watch *w, int fd);

/* Starts watching for `events` (GYRE_IN|GYRE_OUT|GYRE_PRI|GYRE_RDHUP, maybe
 * with GYRE_EDGE), or, on an active watch, replaces its events and callback.
 * select cannot see GYRE_RDHUP: there it is accepted with GYRE_IN (and the
 * reader sees end of file) and refused alone with -ENOTSUP.
 * Level-triggered by default: cb runs every iteration while a condition holds.
 * Returns 0; -EINVAL (NULL cb, no event bit, unknown bits, on select an fd >=
 * FD_SETSIZE); -ENOTSUP (GYRE_EDGE without GYRE_CAP_EDGE); -EEXIST (another
 * active watch has this fd on this loop); -EBADF, -EPERM (epoll: an fd that
 * cannot be polled, such as a regular file), -ENOMEM from the kernel. On
 * failure an active watch stays as it was.
 * Errors: -EINVAL, -ENOTSUP, -EEXIST, -EBADF, -EPERM, -ENOMEM, -ENOSPC. */
GYRE_API int gyre_watch_start(gyre_watch *w, uint32_t events, gyre_watch_cb cb);

/* Stops watching; idempotent, safe from any callback, including for a watch
 * whose event is already in the batch being dispatched (it is dropped).
 * Call it before closing the fd: an fd closed and reused while a watch is
 * active keeps that watch. Returns 0.
 * Errors: -EINVAL. */
GYRE_API int gyre_watch_stop(gyre_watch *w);

/* The watched fd, or -EINVAL for NULL.
 * Errors: -EINVAL. */
GYRE_API int gyre_watch_fd(const gyre_watch *w);

/* ------------------------------------------------------------------------ */
/* Cross-thread wakeup                                                       */
/* ------------------------------------------------------------------------ */

typedef struct gyre_async gyre_async;
typedef void (*gyre_async_cb)(gyre_async *a);

struct gyre_async {
    gyre_handle base;
    gyre_async_cb cb;
    struct {
        uint32_t pending; /* accessed only with atomic builtins */
    } gyre__priv;
};

/* Prepares and starts *a: from now until gyre_async_close(), each
 * gyre_async_send() makes cb run on the loop thread. Returns 0, -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_async_init(gyre_loop *loop, gyre_async *a, gyre_async_cb cb);

/* Asks for cb to run. Any thread, and async-signal-safe. Sends coalesce:
 * several sends before cb runs give one call; a send made after cb has begun
 * gives another call. Never waits for the loop. Returns 0 (also when
 * coalesced) or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_async_send(gyre_async *a);

/* Stops *a; idempotent. Loop thread only, which includes a's own callback
 * (and any other callback of the loop). Once it returns, cb will not run
 * again and the memory of *a may be freed or reused at once.
 *
 * What is required first: no thread is inside gyre_async_send(a), and none
 * will call it again. Knowing that a thread stored "this is my last send"
 * before sending is not enough, since the callback may see the store before
 * the send has begun; knowing that the send has returned is. The usual ways:
 * the sending thread stores its last message, sends, and exits, and the
 * callback that reads the last message joins it (pthread_join() there
 * returns at once, because a send never waits for the loop) and then
 * closes; or the thread stores "done" after its last send returned, and a
 * later wakeup (another async, a timer) looks at it. A signal handler that
 * sends must be uninstalled (or the signal blocked) first. Returns 0, or
 * -EINVAL (NULL, or not an async).
 * Errors: -EINVAL. */
GYRE_API int gyre_async_close(gyre_async *a);

/* ------------------------------------------------------------------------ */
/* Signals                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct gyre_signal gyre_signal;
typedef void (*gyre_signal_cb)(gyre_signal *s, int signo);

struct gyre_signal {
    gyre_handle base;
    gyre_signal_cb cb;
    struct {
        int signo;
    } gyre__priv;
};

/* Prepares *s for use with loop. Returns 0 or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_signal_init(gyre_loop *loop, gyre_signal *s);

/* Calls cb on the loop thread after signo is delivered to the process. One
 * process-wide handler per signal wakes every loop watching it, so several
 * watchers on one or several loops all see it. Deliveries of one signal that
 * arrive before the loop runs coalesce into one call. The first start for a
 * signal installs gyre's handler (SA_RESTART); stopping the last watcher of
 * that signal in the process restores the disposition found then. Returns 0,
 * -EINVAL (signo out of range, SIGKILL, SIGSTOP, NULL cb). On an active
 * watcher, changes its signal and callback.
 * Errors: -EINVAL, -ENOSPC. */
GYRE_API int gyre_signal_start(gyre_signal *s, gyre_signal_cb cb, int signo);
/* Stops the watcher; idempotent, safe inside its callback. Returns 0, or
 * -EINVAL for NULL or a watcher never initialised.
 * Errors: -EINVAL. */
GYRE_API int gyre_signal_stop(gyre_signal *s);

/* ------------------------------------------------------------------------ */
/* Hooks: prepare (before waiting), check (after dispatch), idle             */
/* ------------------------------------------------------------------------ */

typedef enum gyre_hook_kind {
    GYRE_HOOK_PREPARE = 0, /* every iteration, before the kernel wait */
    GYRE_HOOK_CHECK = 1,   /* every iteration, after events are dispatched */
    GYRE_HOOK_IDLE = 2     /* every iteration; while any is active the loop
                              polls without blocking */
} gyre_hook_kind;

typedef struct gyre_hook gyre_hook;
typedef void (*gyre_hook_cb)(gyre_hook *h);

struct gyre_hook {
    gyre_handle base;
    gyre_hook_cb cb;
    struct {
        int kind;
    } gyre__priv;
};

/* Prepares *h as a hook of the given kind. Returns 0 or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_hook_init(gyre_loop *loop, gyre_hook *h, gyre_hook_kind kind);
/* Hooks of one kind run in start order. Returns 0 or -EINVAL. Starting an
 * active hook only replaces cb.
 * Errors: -EINVAL. */
GYRE_API int gyre_hook_start(gyre_hook *h, gyre_hook_cb cb);
GYRE_API int gyre_hook_stop(gyre_hook *h);

/* ------------------------------------------------------------------------ */
/* Operations (proactor)                                                     */
/* ------------------------------------------------------------------------ */

/* An operation is prepared with one gyre_op_<name>() call, optionally given a
 * deadline or a link, then submitted with gyre_submit(). It completes exactly
 * once (a multishot operation: once per result, every completion but the last
 * with GYRE_OP_MORE), with op->result set to a byte count or other value >= 0
 * or to -errno. On io_uring the kernel does the work; on select, poll and
 * epoll (and on io_uring for an opcode the kernel lacks) gyre emulates it:
 * sockets and pipes by readiness plus the non-blocking syscall, files and
 * path operations on the thread pool. Results, bytes, ordering per fd and
 * exactly-once completion are the same on every backend; only how work is
 * chunked and interleaved across different fds may differ.
 *
 * The caller owns the gyre_op and every buffer, iovec, msghdr, sockaddr,
 * path and statx it names, and must keep them valid and unmoved from
 * gyre_submit() until the final callback. The callback runs after the kernel
 * or worker has let go of them, so the op and its buffers may be freed or
 * reused inside the callback (including by submitting the op again).
 *
 * Error results are those of the matching syscall (-EBADF, -EPIPE, ...).
 * EAGAIN and EINTR never reach a callback. Writes to a socket never raise
 * SIGPIPE (MSG_NOSIGNAL); writes to a pipe whose reader is gone give -EPIPE
 * without a signal on every backend. */

struct statx; /* <sys/stat.h> declares it only with _GNU_SOURCE */
typedef struct gyre_op gyre_op;
typedef void (*gyre_op_cb)(gyre_op *op);
typedef struct gyre_bufpool gyre_bufpool;

/* Offset meaning "the fd's current position" (pipes, sockets, or a file
 * read sequentially). */
#define GYRE_OFF_CUR UINT64_MAX

/* op->flags, set at each completion */
#define GYRE_OP_MORE 0x1u   /* multishot: more completions follow */
#define GYRE_OP_BUFFER 0x2u /* op->buf_id names a gyre_bufpool buffer with the data */

struct gyre_op {
    void *data;      /* the caller's */
    gyre_op_cb cb;   /* set by gyre_submit */
    int64_t result;  /* >= 0 or -errno, valid in the callback */
    uint32_t flags;  /* GYRE_OP_MORE | GYRE_OP_BUFFER, valid in the callback */
    uint32_t buf_id; /* with GYRE_OP_BUFFER */
    struct {
        gyre_loop *loop;
        gyre_op *next, *prev; /* the one queue the op is on */
        gyre_op *link_next;   /* emulated link chains */
        void *addr, *addr2, *addr3;
        uint64_t off;         /* offset, or timeout/deadline ns */
        uint64_t off2;        /* a second offset or a 64-bit length */
        uint64_t deadline_ns; /* relative, 0 = none */
        uint32_t len;
        uint32_t arg;  /* msg flags, open flags, poll events, how, ... */
        uint32_t arg2; /* open mode, statx mask, fsync flags */
        int32_t fd;
        uint16_t opcode;
        uint16_t state;
        uint32_t sflags;
        uint32_t pending; /* kernel or worker completions still to come */
        int64_t res2;     /* result kept while other completions arrive */
        gyre_timer timer; /* emulated deadline or timeout */
        uint64_t be[6];   /* the backend's per-op state */
    } gyre__priv;
};

/* Preparation: fill in *op (any previous contents are overwritten; the
 * caller's `data` is kept). They cannot fail; arguments are checked at
 * gyre_submit(). `flags` arguments are the syscall's own flags.
 * Errors: none. */
GYRE_API void gyre_op_nop(gyre_op *op);
GYRE_API void gyre_op_read(gyre_op *op, int fd, void *buf, uint32_t len, uint64_t offset);
GYRE_API void gyre_op_write(gyre_op *op, int fd, const void *buf, uint32_t len, uint64_t offset);
GYRE_API void gyre_op_readv(gyre_op *op, int fd, const struct iovec *iov, uint32_t iovcnt,
                            uint64_t offset);
GYRE_API void gyre_op_writev(gyre_op *op, int fd, const struct iovec *iov, uint32_t iovcnt,
                             uint64_t offset);
GYRE_API void gyre_op_recv(gyre_op *op, int fd, void *buf, uint32_t len, int flags);
GYRE_API void gyre_op_send(gyre_op *op, int fd, const void *buf, uint32_t len, int flags);
GYRE_API void gyre_op_recvmsg(gyre_op *op, int fd, struct msghdr *msg, int flags);
GYRE_API void gyre_op_sendmsg(gyre_op *op, int fd, const struct msghdr *msg, int flags);
/* Result: the new fd (always SOCK_CLOEXEC). addr/addrlen may be NULL.
 * Errors: none. */
GYRE_API void gyre_op_accept(gyre_op *op, int fd, struct sockaddr *addr, socklen_t *addrlen,
                             int flags);
/* The socket should be non-blocking on readiness backends. Result 0.
 * Errors: none. */
GYRE_API void gyre_op_connect(gyre_op *op, int fd, const struct sockaddr *addr, socklen_t addrlen);
GYRE_API void gyre_op_shutdown(gyre_op *op, int fd, int how);
/* Closes fd. Ops gyre still holds on fd complete first, with -ECANCELED.
 * Close fds that ops have used with this op rather than close(2): epoll
 * forgets a closed fd by itself, and if the number is reused for a new fd
 * with new ops before the loop next waits, gyre cannot tell the new file from
 * the old one and would wait for readiness never registered.
 * Errors: none. */
GYRE_API void gyre_op_close(gyre_op *op, int fd);
/* Result: the new fd (always O_CLOEXEC).
 * Errors: none. */
GYRE_API void gyre_op_openat(gyre_op *op, int dirfd, const char *path, int flags, uint32_t mode);
GYRE_API void gyre_op_statx(gyre_op *op, int dirfd, const char *path, int flags, uint32_t mask,
                            struct statx *out);
/* datasync = 1 for fdatasync.
 * Errors: none. */
GYRE_API void gyre_op_fsync(gyre_op *op, int fd, int datasync);
/* One-shot readiness: result is the GYRE_* events that hold.
 * Errors: none. */
GYRE_API void gyre_op_poll(gyre_op *op, int fd, uint32_t events);
/* Completes with 0 after timeout_ns (or -ECANCELED if cancelled first); an
 * expired timeout holds its link (see gyre_op_set_link).
 * Errors: none. */
GYRE_API void gyre_op_timeout(gyre_op *op, uint64_t timeout_ns);
/* Multishot accept: one completion per connection (result = new fd), with
 * GYRE_OP_MORE until cancelled or the listener fails.
 * Errors: none. */
GYRE_API void gyre_op_accept_multishot(gyre_op *op, int fd);
/* Multishot recv into buffers of pool: each completion has result = bytes,
 * GYRE_OP_BUFFER and buf_id (give it back with gyre_bufpool_put); result 0
 * without GYRE_OP_MORE is end of stream. When the pool runs dry the op waits
 * for a buffer to be returned (no -ENOBUFS reaches the callback).
 * Errors: none. */
GYRE_API void gyre_op_recv_multishot(gyre_op *op, int fd, gyre_bufpool *pool);
/* Runs fn(arg) on the pool's lane (GYRE_LANE_*) and completes with its
 * return value. Cancel succeeds only before fn starts.
 * Errors: none. */
typedef int64_t (*gyre_work_fn)(void *arg);
GYRE_API void gyre_op_work(gyre_op *op, gyre_work_fn fn, void *arg, int lane);

/* More file and path operations (each is a syscall on the pool where the
 * file engine cannot carry it; gyre_loop_stats() counts those).
 * Errors: none. */
GYRE_API void gyre_op_ftruncate(gyre_op *op, int fd, uint64_t len);
GYRE_API void gyre_op_fallocate(gyre_op *op, int fd, int mode, uint64_t offset, uint64_t len);
GYRE_API void gyre_op_unlinkat(gyre_op *op, int dirfd, const char *path, int flags);
GYRE_API void gyre_op_renameat(gyre_op *op, int olddirfd, const char *oldpath, int newdirfd,
                               const char *newpath, unsigned flags);
GYRE_API void gyre_op_mkdirat(gyre_op *op, int dirfd, const char *path, uint32_t mode);
/* Copies len bytes (at most INT32_MAX) from fd_in at off_in to fd_out at
 * off_out; result: bytes copied.
 * Errors: none. */
GYRE_API void gyre_op_copy_file_range(gyre_op *op, int fd_in, uint64_t off_in, int fd_out,
                                      uint64_t off_out, uint32_t len, unsigned flags);
/* Reads directory entries of dirfd into buf as struct linux_dirent64
 * records (getdents64); result: bytes filled, 0 at the end.
 * Errors: none. */
GYRE_API void gyre_op_readdir(gyre_op *op, int dirfd, void *buf, uint32_t len);

/* The O_DIRECT rules of fd: buffer address alignment in *mem, offset and
 * length alignment in *off (statx STATX_DIOALIGN, else the device's logical
 * block size). Returns 0, -EINVAL (fd does not allow O_DIRECT, or NULL
 * pointers) or -errno. On every file engine a read or write on an O_DIRECT
 * fd that breaks these rules completes with -EINVAL before it is submitted:
 * nothing reads or writes the memory.
 * Errors: -EINVAL, -EBADF, -ENOMEM. */
GYRE_API int gyre_file_alignment(int fd, uint32_t *mem, uint32_t *off);

/* Gives the op a deadline: if not complete timeout_ns after it starts (its
 * submission, or for a linked op the end of the op before it, as io_uring's
 * linked timeouts count) it is cancelled and completes with -ETIME (or with
 * its real result if that came first). Call after the gyre_op_<name>() and
 * before gyre_submit(). Not for TIMEOUT ops (-EINVAL at submit).
 * Errors: none. */
GYRE_API void gyre_op_set_deadline(gyre_op *op, uint64_t timeout_ns);
/* Links op to the next op submitted on the same loop: that one starts only
 * after op's result holds the link (the table below); otherwise it, and the
 * rest of the chain, completes with -ECANCELED without starting. Any number
 * of ops may be chained; a chain ends at the first op submitted without a
 * link. Not for multishot ops (-EINVAL at submit: they never end alone).
 *
 * THE LINK TABLE, the same on every backend (io_uring links in the kernel,
 * with the flags named here; elsewhere, and where the kernel cannot say it,
 * the core carries the link). A result < 0 breaks every link: an error, a
 * cancel (-ECANCELED), a fired deadline (-ETIME). For a result >= 0:
 *
 *  op                         fd kind     holds when     why
 *  read, readv at an offset   file        res == asked   short is end of file; what follows
 *                                                        counted on the bytes (io_uring READ)
 *  read, readv at the         pipe, tty,  res == asked   io_uring READ's rule; no MSG_WAITALL
 *    current position         socket                     exists for it, so short breaks
 *  write, writev at an offset file        res == asked   short means a full disk: stop there
 *  write, writev at the       socket      res == asked,  a linked write is moved whole (sent
 *    current position;                    retried until  with MSG_WAITALL, the emulation
 *    send, sendmsg                        whole (*)      retries alike): the next op never
 *                                                        writes after a gap in the stream
 *  write, writev (current)    pipe, other as above (*)   the same, by the emulated retry
 *  recv, recvmsg              socket      any res >= 0   a stream recv answers with what is
 *                                                        there, 0 at end of stream: the
 *                                                        kernel's rule without MSG_WAITALL
 *  recv, recvmsg with         stream      res == asked   retried until whole (linked or not),
 *    MSG_WAITALL              socket                     so short is end of stream or error
 *  recv, recvmsg with         datagram    res == asked,  one datagram, never retried: it must
 *    MSG_WAITALL              socket      not truncated  fill the buffer exactly (the kernel's
 *                                                        MSG_WAITALL rule)
 *  copy_file_range            file        res == len     as a write at an offset
 *  readdir                    directory   any res >= 0   a partial fill is the normal answer
 *  timeout                    -           any (it        expiry is what was asked for (io_uring
 *                                         expired: 0)    5.16+: IORING_TIMEOUT_ETIME_SUCCESS;
 *                                                        before, the core carries the link)
 *  nop, poll, accept,         any         any res >= 0   the result is a value (an fd, a mask,
 *    connect, shutdown,                                  0), not a count: success is whole
 *    close, openat, statx,
 *    fsync, ftruncate,
 *    fallocate, unlinkat,
 *    renameat, mkdirat, work
 *
 * (*) Whole: such an op completes with every byte, or short only when an
 * error ends it after some bytes moved (the count says how many), which
 * breaks the link. io_uring retries a MSG_WAITALL transfer from 5.19; on an
 * older kernel it may end short, and breaks the link the same way. A send
 * or recv with MSG_WAITALL is moved whole in the same way when not linked.
 *
 * Errors: none. */
GYRE_API void gyre_op_set_link(gyre_op *op);

/* Submits a prepared op; cb runs on the loop thread, never inside this call.
 * Returns 0 (cb will run), or -EINVAL (NULL op/loop/cb, fd < 0, length over
 * INT32_MAX, iovcnt over IOV_MAX or iovecs over INT32_MAX bytes in all,
 * unknown lane or NULL work function,
 * multishot recv without a pool of this loop, a link on a multishot, a
 * deadline on a timeout; on select, an op that may wait for readiness on
 * an fd >= FD_SETSIZE: recv, send, recvmsg, sendmsg, accept, connect, poll,
 * the multishots, and read, write, readv, writev at GYRE_OFF_CUR), -EBUSY
 * (the op is in flight), -ENOMEM. On error nothing is queued and cb never
 * runs. A full io_uring submission queue is not an error: the op waits its
 * turn.
 * Errors: -EINVAL, -EBUSY, -ENOMEM. */
GYRE_API int gyre_submit(gyre_loop *loop, gyre_op *op, gyre_op_cb cb);

/* Asks for op to be cancelled. Returns 0 if the request was made (op still
 * completes once: -ECANCELED if the cancel took effect, its real result
 * otherwise), -ENOENT if op is not in flight on loop, -EALREADY if a cancel
 * was already requested.
 * Errors: -EINVAL, -ENOENT, -EALREADY. */
GYRE_API int gyre_cancel(gyre_loop *loop, gyre_op *op);

/* Gives buffer id of pool back to pool when op completes, whatever its
 * result (bytes, an error, -ECANCELED, -ETIME, a broken link), before op's
 * callback runs: the callback must not touch the buffer, and need not call
 * gyre_bufpool_put(). For a send, sendmsg, write or writev whose data lies
 * in the buffer (a multishot recv's, echoed). Call after the
 * gyre_op_<name>() and before gyre_submit(), which returns -EINVAL for
 * another opcode, a pool of another loop, or an id not handed out; if
 * gyre_submit() fails the buffer stays the caller's. At most one op in
 * flight may name a buffer.
 * Errors: none. */
GYRE_API void gyre_op_set_bufpool_put(gyre_op *op, gyre_bufpool *pool, uint32_t id);

/* Sends on a socket now, without an op and without waiting (libuv's
 * uv_try_write): send(2) with MSG_DONTWAIT | MSG_NOSIGNAL added to flags, so
 * a blocking socket does not block and a peer gone gives -EPIPE, never
 * SIGPIPE. Returns the bytes the kernel took, maybe fewer than len (send the
 * rest with an op), or -errno with nothing sent: -EAGAIN when the socket
 * buffer is full, and also, without a syscall, while an op of gyre's holds
 * fd's write side (a send, sendmsg, or write or writev at GYRE_OFF_CUR
 * submitted and not yet complete; one still waiting behind a link has not
 * started and does not), so bytes never overtake an op submitted before
 * them: retry after its completion. -EBADF while a gyre_op_close() of fd is
 * under way. EINTR is retried. Never runs a callback; callable from
 * callbacks; loop thread only. The same results on every backend (a syscall
 * on io_uring too). Under GYRE_FAULTS it meets the faults of the emulation's
 * sends (EAGAIN, a short count, ECONNRESET).
 * Errors: -EINVAL, -EBADF, -EAGAIN, -EPIPE, -ECONNRESET, -ENOTSOCK, -ENOTCONN, -EDESTADDRREQ,
 * -EMSGSIZE, -ENOBUFS, -ENOMEM, -EOPNOTSUPP, -EACCES, -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH,
 * -ENETUNREACH. */
GYRE_API int64_t gyre_try_send(gyre_loop *loop, int fd, const void *buf, size_t len, int flags);
/* gyre_try_send() (flags 0) for any stream fd: a socket is sent to as
 * there; a pipe, FIFO, tty or character device is written with write(2),
 * which needs O_NONBLOCK set on fd (-EINVAL if clear: only that keeps every
 * kind from blocking the loop; a non-socket's kind and flags are asked at
 * every try, fstat(2) and fcntl(2), since a program may change them), and a
 * pipe whose reader is gone gives -EPIPE without SIGPIPE. A regular file or block device: -EINVAL
 * (its writes never wait for readiness; use gyre_op_write()). The rest as gyre_try_send(): -EAGAIN
 * while an op holds fd's write side, -EBADF while gyre closes it, a short count returned as is.
 * Errors: -EINVAL, -EBADF, -EAGAIN, -EPIPE, -ECONNRESET, -ENOTCONN, -EDESTADDRREQ, -EMSGSIZE,
 * -ENOBUFS, -ENOMEM, -EOPNOTSUPP, -EACCES, -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH,
 * -ENETUNREACH, -EIO, -ENOSPC, -EPERM. */
GYRE_API int64_t gyre_try_write(gyre_loop *loop, int fd, const void *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Buffer pool (for multishot recv)                                          */
/* ------------------------------------------------------------------------ */

/* A loop-owned set of `count` buffers of `size` bytes (count a power of two,
 * at most 32768; size > 0). On io_uring it is a provided-buffer ring the
 * kernel picks from; elsewhere gyre picks. Returns 0, -EINVAL, -ENOMEM, or
 * -ENOSPC (io_uring: the loop has 65536 pools already).
 * Errors: -EINVAL, -ENOMEM, -ENOSPC. */
GYRE_API int gyre_bufpool_new(gyre_loop *loop, gyre_bufpool **pool, uint32_t count, uint32_t size);
/* Frees the pool; -EBUSY while an op uses it or buffers are out.
 * Errors: -EINVAL, -EBUSY. */
GYRE_API int gyre_bufpool_free(gyre_bufpool *pool);
/* The memory of buffer id (size bytes).
 * Errors: none. */
GYRE_API void *gyre_bufpool_buf(gyre_bufpool *pool, uint32_t id);
/* Returns buffer id to the pool. Returns 0 or -EINVAL (not out).
 * Errors: -EINVAL. */
GYRE_API int gyre_bufpool_put(gyre_bufpool *pool, uint32_t id);
/* Buffers currently in the pool (not handed out).
 * Errors: none. */
GYRE_API uint32_t gyre_bufpool_available(const gyre_bufpool *pool);

/* ------------------------------------------------------------------------ */
/* Thread pool                                                               */
/* ------------------------------------------------------------------------ */

/* Lanes: work on one lane never waits behind work on another. */
#define GYRE_LANE_FAST 0 /* short file operations (gyre's own file ops run here) */
#define GYRE_LANE_SLOW 1 /* blocking or long user work */
#define GYRE_LANE_DNS 2  /* name resolution */
#define GYRE_LANES 3

typedef struct gyre_pool_opts {
    uint32_t threads[GYRE_LANES]; /* per lane; 0 = default (4, 2, 2) */
    uint64_t reserved[4];         /* must be 0 */
} gyre_pool_opts;

/* Makes a thread pool that any number of loops may share (opts may be NULL).
 * Threads start when first needed. Returns 0, -EINVAL, -ENOMEM. Any thread.
 * Errors: -EINVAL, -ENOMEM. */
GYRE_API int gyre_pool_new(gyre_pool **pool, const gyre_pool_opts *opts);
/* Frees the pool; -EBUSY while a loop uses it.
 * Errors: -EINVAL, -EBUSY. */
GYRE_API int gyre_pool_free(gyre_pool *pool);

/* ------------------------------------------------------------------------ */
/* Loop information and fork                                                 */
/* ------------------------------------------------------------------------ */

typedef struct gyre_info {
    const char *backend;     /* as gyre_loop_backend() */
    const char *file_engine; /* "uring" or "pool" */
    /* Why "auto" did not take io_uring ("" if it did or was not asked):
     * e.g. "io_uring_setup: Operation not permitted". Static or loop-owned. */
    const char *reason;
    uint32_t caps;          /* GYRE_CAP_* */
    uint32_t ring_flags;    /* io_uring setup flags in use, 0 elsewhere */
    uint32_t ring_features; /* io_uring feature bits, 0 elsewhere */
    uint32_t sq_entries, cq_entries;
    uint32_t reserved32;
    uint64_t kernel_enters; /* io_uring_enter calls so far */
    uint64_t cqe_dropped;   /* as gyre_stats.cqe_dropped */
    uint64_t reserved[2];
} gyre_info;

/* Fills *out. Returns 0 or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_loop_info(const gyre_loop *loop, gyre_info *out);

/* In a child after fork(): gives loop new kernel objects (wakeup eventfd,
 * epoll fd or ring) without touching the parent's, re-registers every watch,
 * and completes every op that was in the kernel or a worker with -ECANCELED
 * (they belong to the parent). Returns 0 or -errno.
 * Errors: -EINVAL, -EBUSY, -ENOMEM, -EMFILE, -ENFILE. */
GYRE_API int gyre_loop_fork(gyre_loop *loop);

/* ------------------------------------------------------------------------ */
/* Streams, servers and system handles (declared in their own headers, part  */
/* of this one)                                                              */
/* ------------------------------------------------------------------------ */

#if __has_include("gyre/stream.h")
#include "gyre/stream.h"
#endif
#if __has_include("gyre/net.h")
#include "gyre/net.h"
#endif
#if __has_include("gyre/process.h")
#include "gyre/process.h"
#endif

#ifdef __cplusplus
}
#endif

#endif
