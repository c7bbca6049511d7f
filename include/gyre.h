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

#include <stddef.h>
#include <stdint.h>

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

/* The version of the library loaded at run time, as GYRE_VERSION_HEX. */
GYRE_API uint32_t gyre_version(void);
/* The same as a static string, e.g. "0.1.0". */
GYRE_API const char *gyre_version_string(void);

/* Text for a gyre return value (-errno, or errno). Never NULL, thread-safe;
 * the string is static. */
GYRE_API const char *gyre_strerror(int err);

/* Replaces the allocator gyre uses for its own memory (loops, tables, the
 * timer heap). Returns 0, -EINVAL if any function is NULL, or -EBUSY if a loop
 * exists: allocator and memory must match for gyre's lifetime, so call this
 * before the first gyre_loop_new(). Not thread-safe with other gyre calls. */
GYRE_API int gyre_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                                void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *));

/* 1 if backend `name` can run on this machine now, 0 if not, -EINVAL if no
 * backend has that name. Names: "select", "poll", "epoll". */
GYRE_API int gyre_backend_supported(const char *name);

/* ------------------------------------------------------------------------ */
/* Loop                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct gyre_loop gyre_loop;

typedef struct gyre_loop_opts {
    /* "auto" (or NULL) picks the best backend that works here; otherwise
     * "epoll", "poll" or "select". An explicit backend that cannot start is an
     * error, never a silent fallback. When NULL, the environment variable
     * GYRE_BACKEND is read (secure_getenv) and used the same way. */
    const char *backend;
    /* Maximum readiness events fetched per kernel wait; 0 = default (1024). */
    uint32_t max_events;
    uint32_t flags;       /* reserved, must be 0 */
    uint64_t reserved[6]; /* must be 0: room for later options */
} gyre_loop_opts;

typedef enum gyre_run_mode {
    GYRE_RUN_DEFAULT = 0, /* run until stopped or nothing referenced is active */
    GYRE_RUN_ONCE = 1,    /* one iteration, waiting for events unless a timer
                             already fired in it */
    GYRE_RUN_NOWAIT = 2   /* one iteration, never waiting */
} gyre_run_mode;

/* Backend capability bits (gyre_loop_caps()). */
#define GYRE_CAP_EDGE 0x1u    /* watches may be edge-triggered (GYRE_EDGE) */
#define GYRE_CAP_LOOP_FD 0x2u /* gyre_loop_fd() gives a pollable fd */
#define GYRE_CAP_ANY_FD 0x4u  /* no FD_SETSIZE limit on watched fds */

/* Creates a loop in *loop. opts may be NULL for defaults. Returns 0,
 * -EINVAL (bad option, unknown backend name), -ENOSYS or -EPERM (the chosen
 * backend cannot run here), -ENOMEM, -EMFILE/-ENFILE. On failure *loop is
 * untouched and nothing leaks. */
GYRE_API int gyre_loop_new(gyre_loop **loop, const gyre_loop_opts *opts);

/* Frees a loop. Returns -EBUSY (and frees nothing) while any object of the
 * loop is active, referenced or not, or while the loop is running; 0 once
 * freed. */
GYRE_API int gyre_loop_free(gyre_loop *loop);

/* Runs the loop (see gyre_run_mode). Returns 0 when no referenced object is
 * active any more, 1 when some still are (after gyre_loop_stop() or a
 * once/nowait iteration), or -EBUSY when called while the loop is already
 * running (from one of its callbacks, or from another thread). */
GYRE_API int gyre_loop_run(gyre_loop *loop, gyre_run_mode mode);

/* Makes gyre_loop_run() return after the current iteration. */
GYRE_API void gyre_loop_stop(gyre_loop *loop);

/* The cached monotonic time in ns, updated at the start of every iteration. */
GYRE_API uint64_t gyre_now(const gyre_loop *loop);
/* Refreshes the cached time (for long callbacks). */
GYRE_API void gyre_loop_update_time(gyre_loop *loop);

/* The running backend's name ("epoll", ...); static string. */
GYRE_API const char *gyre_loop_backend(const gyre_loop *loop);
/* The running backend's GYRE_CAP_* bits. */
GYRE_API uint32_t gyre_loop_caps(const gyre_loop *loop);

/* An fd that becomes readable when the loop has events to dispatch, for
 * embedding gyre in another loop: when it is readable, or when
 * gyre_loop_timeout() has passed, call gyre_loop_run(loop, GYRE_RUN_NOWAIT).
 * The fd belongs to the loop; do not close or read it. Returns -ENOTSUP on
 * backends without GYRE_CAP_LOOP_FD (select, poll). */
GYRE_API int gyre_loop_fd(const gyre_loop *loop);

/* Nanoseconds until the loop next has timer work: -1 when it would block
 * forever, 0 when it has work now (an expired timer, an idle hook, pending
 * callbacks). */
GYRE_API int64_t gyre_loop_timeout(const gyre_loop *loop);

/* 1 if the loop has active referenced objects (gyre_loop_run would block),
 * 0 otherwise. */
GYRE_API int gyre_loop_alive(const gyre_loop *loop);

typedef struct gyre_stats {
    uint64_t iterations;        /* loop iterations run */
    uint64_t kernel_waits;      /* calls into the backend's wait syscall */
    uint64_t events_dispatched; /* callbacks run for readiness events */
    uint64_t timers_fired;      /* timer callbacks run */
    uint64_t wakeups;           /* times the loop's wakeup fd was drained */
    uint64_t faults_injected;   /* GYRE_FAULTS injections, process-wide */
    uint32_t active_handles;    /* objects started and not stopped */
    uint32_t active_refs;       /* ... of which referenced */
    uint64_t reserved[8];
} gyre_stats;

/* Copies the loop's counters into *out. Returns 0 or -EINVAL. */
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
 * runs). Objects start referenced. Idempotent. */
GYRE_API void gyre_handle_ref(gyre_handle *h);
GYRE_API void gyre_handle_unref(gyre_handle *h);
GYRE_API int gyre_handle_has_ref(const gyre_handle *h);
/* 1 while started (a timer counts until it last fires or is stopped). */
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

/* Prepares *t for use with loop. Returns 0 or -EINVAL. */
GYRE_API int gyre_timer_init(gyre_loop *loop, gyre_timer *t);

/* Fires cb after timeout_ns (0 = on the next iteration), then every repeat_ns
 * if repeat_ns > 0. Timers due at the same time fire in the order they were
 * started. Deadlines saturate: a huge timeout never overflows, it just never
 * comes. Starting an active timer restarts it (it is not an error). Returns 0,
 * -EINVAL (NULL cb, uninitialised timer), -ENOMEM (heap growth failed; the
 * timer is then inactive). */
GYRE_API int gyre_timer_start(gyre_timer *t, gyre_timer_cb cb, uint64_t timeout_ns,
                              uint64_t repeat_ns);

/* Stops the timer; idempotent. Safe inside its own callback. Returns 0. */
GYRE_API int gyre_timer_stop(gyre_timer *t);

/* Restarts a repeating timer from now with its repeat interval. Returns 0,
 * or -EINVAL if it was never started. A timer with repeat 0 is stopped. */
GYRE_API int gyre_timer_again(gyre_timer *t);

GYRE_API void gyre_timer_set_repeat(gyre_timer *t, uint64_t repeat_ns);
GYRE_API uint64_t gyre_timer_get_repeat(const gyre_timer *t);
/* ns until the timer is due (0 if due or inactive). */
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
 * -EINVAL (fd < 0). */
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
 * failure an active watch stays as it was. */
GYRE_API int gyre_watch_start(gyre_watch *w, uint32_t events, gyre_watch_cb cb);

/* Stops watching; idempotent, safe from any callback, including for a watch
 * whose event is already in the batch being dispatched (it is dropped).
 * Call it before closing the fd: an fd closed and reused while a watch is
 * active keeps that watch. Returns 0. */
GYRE_API int gyre_watch_stop(gyre_watch *w);

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
 * gyre_async_send() makes cb run on the loop thread. Returns 0, -EINVAL. */
GYRE_API int gyre_async_init(gyre_loop *loop, gyre_async *a, gyre_async_cb cb);

/* Asks for cb to run. Any thread, and async-signal-safe. Sends coalesce:
 * several sends before cb runs give one call; a send made after cb has begun
 * gives another call. Returns 0 (also when coalesced) or -EINVAL. */
GYRE_API int gyre_async_send(gyre_async *a);

/* Stops *a. Loop thread only; no send may run concurrently or later. Once it
 * returns, the memory may be reused. Returns 0. */
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

GYRE_API int gyre_signal_init(gyre_loop *loop, gyre_signal *s);

/* Calls cb on the loop thread after signo is delivered to the process. One
 * process-wide handler per signal wakes every loop watching it, so several
 * watchers on one or several loops all see it. Deliveries of one signal that
 * arrive before the loop runs coalesce into one call. The first start for a
 * signal installs gyre's handler (SA_RESTART); stopping the last watcher of
 * that signal in the process restores the disposition found then. Returns 0,
 * -EINVAL (signo out of range, SIGKILL, SIGSTOP, NULL cb). On an active
 * watcher, changes its signal and callback. */
GYRE_API int gyre_signal_start(gyre_signal *s, gyre_signal_cb cb, int signo);
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

GYRE_API int gyre_hook_init(gyre_loop *loop, gyre_hook *h, gyre_hook_kind kind);
/* Hooks of one kind run in start order. Returns 0 or -EINVAL. Starting an
 * active hook only replaces cb. */
GYRE_API int gyre_hook_start(gyre_hook *h, gyre_hook_cb cb);
GYRE_API int gyre_hook_stop(gyre_hook *h);

#ifdef __cplusplus
}
#endif

#endif
