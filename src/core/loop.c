/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* loop.c: loop life cycle, backend selection, and the iteration.
 *
 * One iteration (DESIGN.md "The loop iteration"):
 *   1. update the cached time; run expired timers; run idle and prepare hooks;
 *   2. wait in the backend, with the nearest timer as the timeout (no wait at
 *      all when there is work already: idle hooks, a stop, RUN_NOWAIT);
 *   3. update the time; run op completions that were ready before the wait,
 *      dispatch readiness and native completions in arrival order, run the
 *      op completions those callbacks produced; run check hooks.
 * Async sends and signals arrive as readiness on the loop's wakeup eventfd,
 * so they need no path of their own through the iteration.
 */
#include "core/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "backend/uring.h"
#include "core/alloc.h"
#include "core/pool.h"
#include "sys/sys.h"

#define DEFAULT_MAX_EVENTS 1024u
/* The longest single kernel wait: a far timer is reached by waiting again.
 * Below INT_MAX ms so that every backend's timeout type holds it. */
#define MAX_WAIT_NS (INT64_C(86400) * 1000000000)

/* Preference order for "auto": the first whose probe succeeds. */
static const struct gyre__backend *const backends[] = {
    &gyre__backend_uring,
    &gyre__backend_epoll,
    &gyre__backend_poll,
    &gyre__backend_select,
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static const struct gyre__backend *backend_by_name(const char *name)
{
    for (size_t i = 0; i < NBACKENDS; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

GYRE_API int gyre_backend_supported(const char *name)
{
    const struct gyre__backend *be;

    if (name == NULL || (be = backend_by_name(name)) == NULL)
        return -EINVAL;
    return be->probe() ? 1 : 0;
}

/* Resolves opts->backend, else GYRE_BACKEND, else "auto". An explicit name
 * that cannot run is an error (-ENOSYS), never a silent fallback. */
static int pick_backend(const gyre_loop_opts *opts, const struct gyre__backend **out,
                        const char **why)
{
    const char *name = opts != NULL ? opts->backend : NULL;

    if (name == NULL)
        name = secure_getenv("GYRE_BACKEND");
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0) {
        for (size_t i = 0; i < NBACKENDS; i++) {
            if (backends[i]->probe()) {
                *out = backends[i];
                return 0;
            }
            if (backends[i] == &gyre__backend_uring)
                *why = gyre__uring_unavailable_reason();
        }
        return -ENOSYS;
    }
    *out = backend_by_name(name);
    if (*out == NULL)
        return -EINVAL;
    return (*out)->probe() ? 0 : -ENOSYS;
}

static int is_auto(const gyre_loop_opts *opts)
{
    const char *name = opts != NULL ? opts->backend : NULL;

    if (name == NULL)
        name = secure_getenv("GYRE_BACKEND");
    return name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0;
}

/* The next backend after be in preference order that probes fine. */
static const struct gyre__backend *next_backend(const struct gyre__backend *be)
{
    size_t i = 0;

    while (backends[i] != be)
        i++;
    while (++i < NBACKENDS - 1 && !backends[i]->probe())
        ;
    return backends[i];
}

static int opts_valid(const gyre_loop_opts *opts)
{
    if (opts == NULL)
        return 1;
    if ((opts->flags & ~GYRE_LOOP_SQPOLL) != 0 || opts->reserved32 != 0)
        return 0;
    for (size_t i = 0; i < sizeof opts->reserved / sizeof opts->reserved[0]; i++)
        if (opts->reserved[i] != 0)
            return 0;
    return 1;
}

/* The wakeup eventfd is level-triggered readable until drained; draining
 * first and then looking at the flags is what makes a concurrent send or
 * signal impossible to lose (see async.c). An injected EINTR/EAGAIN on the
 * read leaves the eventfd readable, so the next iteration comes back here. */
static void wake_cb(gyre_watch *w, uint32_t events)
{
    gyre_loop *loop = w->base.gyre__priv.loop;
    uint64_t v;

    (void)events;
    if (gyre__sys_eventfd_read(loop->wake_fd, &v) == 0)
        loop->stats.wakeups++;
    gyre__signals_dispatch(loop);
    gyre__async_drain(loop);
    /* After async_drain cleared async_armed: a pool thread that posted
     * before that store is seen here, one that posts after it writes the
     * eventfd again. */
    gyre__ops_drain_posted(loop);
}

/* Resolves opts->file_engine, else GYRE_FILE_ENGINE, else "auto": file ops go
 * to the backend when it carries them natively, else to the pool. */
static int pick_file_engine(gyre_loop *loop, const gyre_loop_opts *opts)
{
    const char *name = opts != NULL ? opts->file_engine : NULL;
    int native = (loop->caps & GYRE_CAP_NATIVE_OPS) != 0;

    if (name == NULL)
        name = secure_getenv("GYRE_FILE_ENGINE");
    if (name == NULL || name[0] == '\0' || strcmp(name, "auto") == 0) {
        loop->files_native = native;
        return 0;
    }
    if (strcmp(name, "pool") == 0) {
        loop->files_native = 0;
        return 0;
    }
    if (strcmp(name, "uring") == 0 && native) {
        loop->files_native = 1;
        return 0;
    }
    loop->files_native = 0;
    return gyre__engine_open(loop, name);
}

GYRE_API int gyre_loop_new(gyre_loop **out, const gyre_loop_opts *opts)
{
    const struct gyre__backend *be;
    const char *why = "", *init_why = NULL;
    gyre_loop_opts bo;
    gyre_loop *loop;
    int r;

    if (out == NULL || !opts_valid(opts))
        return -EINVAL;
    r = gyre__faults_init();
    if (r < 0)
        return r;
    r = pick_backend(opts, &be, &why);
    if (r < 0)
        return r;

    loop = gyre__calloc(1, sizeof *loop);
    if (loop == NULL)
        return -ENOMEM;
    loop->be = be;
    loop->caps = be->caps;
    loop->wake_fd = -1;
    loop->sig_slot = -1;
    loop->max_events = opts != NULL && opts->max_events ? opts->max_events : DEFAULT_MAX_EVENTS;
    if (loop->max_events > INT32_MAX / 2) {
        r = -EINVAL;
        goto fail;
    }
    gyre__list_init(&loop->asyncs);
    gyre__list_init(&loop->signals);
    gyre__list_init(&loop->bufpools);
    for (int k = 0; k < 3; k++)
        gyre__list_init(&loop->hooks[k]);
    r = pthread_mutex_init(&loop->post_lock, NULL);
    if (r != 0) {
        r = -r;
        goto fail;
    }
    loop->post_lock_ok = 1;

    loop->events = gyre__calloc(loop->max_events, sizeof *loop->events);
    if (loop->events == NULL) {
        r = -ENOMEM;
        goto fail;
    }
    bo = opts != NULL ? *opts : (gyre_loop_opts){0};
    bo.max_events = loop->max_events;
    r = be->init(&loop->be_state, &bo, &init_why);
    /* "auto" never fails for want of io_uring: a ring that probed fine but
     * cannot be made now (ENOMEM from locked-memory limits, say) gives way to
     * the next backend, and the reason is kept for gyre_loop_info(). */
    while (r < 0 && is_auto(opts) && be != backends[NBACKENDS - 1]) {
        why = init_why != NULL ? init_why : gyre_strerror(r);
        be = next_backend(be);
        loop->be = be;
        loop->caps = be->caps;
        r = be->init(&loop->be_state, &bo, &init_why);
    }
    if (r < 0) {
        loop->be_state = NULL;
        goto fail;
    }
    loop->be_opts = bo;
    r = gyre__sys_eventfd(0, EFD_NONBLOCK);
    if (r < 0)
        goto fail;
    loop->wake_fd = r;
    loop->now_ns = gyre__sys_now_ns();
    r = gyre__watch_start_internal(loop, &loop->wake_watch, loop->wake_fd, wake_cb);
    if (r < 0)
        goto fail;
    r = pick_file_engine(loop, opts);
    if (r < 0)
        goto fail;

    if (opts != NULL && opts->pool != NULL) {
        loop->pool = opts->pool;
        gyre__pool_attach(loop->pool);
    }
    loop->reason = why;
    atomic_fetch_add(&gyre__live_loops, 1);
    *out = loop;
    return 0;

fail:
    gyre__engine_close(loop);
    if (loop->post_lock_ok)
        pthread_mutex_destroy(&loop->post_lock);
    if (loop->wake_fd >= 0)
        gyre__sys_close(loop->wake_fd);
    if (loop->be_state != NULL)
        be->fini(loop->be_state);
    gyre__free(loop->fds);
    gyre__free(loop->events);
    gyre__free(loop);
    return r;
}

GYRE_API int gyre_loop_free(gyre_loop *loop)
{
    if (loop == NULL)
        return -EINVAL;
    if (atomic_load(&loop->running) || loop->active != 0 || !gyre__list_empty(&loop->bufpools))
        return -EBUSY;
    gyre_watch_stop(&loop->wake_watch);
    gyre__engine_close(loop);
    if (loop->pool != NULL) {
        gyre__pool_detach(loop->pool);
        if (loop->pool_owned)
            gyre_pool_free(loop->pool);
    }
    pthread_mutex_destroy(&loop->post_lock);
    gyre__free(loop->dirty);
    gyre__signals_loop_fini(loop);
    loop->be->fini(loop->be_state);
    gyre__sys_close(loop->wake_fd);
    gyre__timers_fini(loop);
    gyre__free(loop->fds);
    gyre__free(loop->events);
    gyre__free(loop);
    atomic_fetch_sub(&gyre__live_loops, 1);
    return 0;
}

/* --- handles --- */

void gyre__handle_init(gyre_loop *loop, gyre_handle *h, enum gyre__htype type)
{
    h->gyre__priv.loop = loop;
    h->gyre__priv.type = (uint16_t)type;
    h->gyre__priv.flags = 0;
    gyre__list_init(&h->gyre__priv.link);
}

void gyre__handle_start(gyre_handle *h)
{
    gyre_loop *loop = h->gyre__priv.loop;
    uint16_t f = h->gyre__priv.flags;

    if (f & GYRE__HF_ACTIVE)
        return;
    h->gyre__priv.flags = (uint16_t)(f | GYRE__HF_ACTIVE);
    if (f & GYRE__HF_INTERNAL)
        return;
    loop->active++;
    if (!(f & GYRE__HF_UNREF))
        loop->refs++;
}

void gyre__handle_stop(gyre_handle *h)
{
    gyre_loop *loop = h->gyre__priv.loop;
    uint16_t f = h->gyre__priv.flags;

    if (!(f & GYRE__HF_ACTIVE))
        return;
    h->gyre__priv.flags = (uint16_t)(f & ~GYRE__HF_ACTIVE);
    if (f & GYRE__HF_INTERNAL)
        return;
    loop->active--;
    if (!(f & GYRE__HF_UNREF))
        loop->refs--;
}

GYRE_API void gyre_handle_ref(gyre_handle *h)
{
    if (h == NULL || h->gyre__priv.loop == NULL || !(h->gyre__priv.flags & GYRE__HF_UNREF))
        return;
    h->gyre__priv.flags = (uint16_t)(h->gyre__priv.flags & ~GYRE__HF_UNREF);
    if ((h->gyre__priv.flags & (GYRE__HF_ACTIVE | GYRE__HF_INTERNAL)) == GYRE__HF_ACTIVE)
        h->gyre__priv.loop->refs++;
}

GYRE_API void gyre_handle_unref(gyre_handle *h)
{
    if (h == NULL || h->gyre__priv.loop == NULL || (h->gyre__priv.flags & GYRE__HF_UNREF))
        return;
    h->gyre__priv.flags = (uint16_t)(h->gyre__priv.flags | GYRE__HF_UNREF);
    if ((h->gyre__priv.flags & (GYRE__HF_ACTIVE | GYRE__HF_INTERNAL)) == GYRE__HF_ACTIVE)
        h->gyre__priv.loop->refs--;
}

GYRE_API int gyre_handle_has_ref(const gyre_handle *h)
{
    return h != NULL && !(h->gyre__priv.flags & GYRE__HF_UNREF);
}

GYRE_API int gyre_handle_active(const gyre_handle *h)
{
    return h != NULL && gyre__handle_active(h);
}

void gyre__list_each(gyre__link *list, void (*fn)(gyre__link *))
{
    gyre__link pending;

    /* Move everything to a private list first: each link goes back to the
     * real list just before its callback, so a stop from inside any callback
     * unlinks it from whichever list it is on, and the walk never follows a
     * pointer out of an unlinked node. */
    if (gyre__list_empty(list))
        return;
    pending.next = list->next;
    pending.prev = list->prev;
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    gyre__list_init(list);
    while (!gyre__list_empty(&pending)) {
        gyre__link *n = pending.next;
        gyre__list_remove(n);
        gyre__list_push(list, n);
        fn(n);
    }
}

/* --- time and state --- */

GYRE_API uint64_t gyre_now(const gyre_loop *loop)
{
    return loop != NULL ? loop->now_ns : 0;
}

GYRE_API void gyre_loop_update_time(gyre_loop *loop)
{
    if (loop != NULL)
        loop->now_ns = gyre__sys_now_ns();
}

GYRE_API const char *gyre_loop_backend(const gyre_loop *loop)
{
    return loop != NULL ? loop->be->name : "";
}

GYRE_API uint32_t gyre_loop_caps(const gyre_loop *loop)
{
    return loop != NULL ? loop->caps & ~GYRE__CAP_RDHUP_NEEDS_IN : 0;
}

GYRE_API int gyre_loop_fd(const gyre_loop *loop)
{
    if (loop == NULL)
        return -EINVAL;
    return loop->be->fd(loop->be_state);
}

GYRE_API int gyre_loop_alive(const gyre_loop *loop)
{
    return loop != NULL && loop->refs > 0;
}

GYRE_API void gyre_loop_stop(gyre_loop *loop)
{
    if (loop != NULL)
        loop->stop_flag = 1;
}

GYRE_API int64_t gyre_loop_timeout(const gyre_loop *loop)
{
    if (loop == NULL)
        return -1;
    if (!gyre__list_empty(&loop->hooks[GYRE_HOOK_IDLE]) || !gyre__opq_empty(&loop->ready))
        return 0;
    return gyre__timers_next(loop);
}

GYRE_API int gyre_loop_stats(const gyre_loop *loop, gyre_stats *out)
{
    if (loop == NULL || out == NULL)
        return -EINVAL;
    *out = loop->stats;
    out->faults_injected = gyre__faults_injected();
    out->faults_eagain = gyre__faults_injected_kind(GYRE__FAULT_EAGAIN);
    out->faults_eintr = gyre__faults_injected_kind(GYRE__FAULT_EINTR);
    out->faults_short = gyre__faults_injected_kind(GYRE__FAULT_SHORT);
    out->faults_enomem = gyre__faults_injected_kind(GYRE__FAULT_ENOMEM);
    out->faults_delay = gyre__faults_injected_kind(GYRE__FAULT_DELAY);
    out->faults_reset = gyre__faults_injected_kind(GYRE__FAULT_RESET);
    if (!(loop->caps & GYRE_CAP_NATIVE_OPS)) {
        out->kernel_enters = loop->stats.kernel_waits;
    } else {
        gyre_info info = {0};

        loop->be->info(loop->be_state, &info);
        out->kernel_enters = info.kernel_enters;
        out->cqe_dropped = info.cqe_dropped;
    }
    out->active_handles = loop->active;
    out->active_refs = loop->refs;
    return 0;
}

/* --- the iteration --- */

static int64_t wait_timeout(const gyre_loop *loop, gyre_run_mode mode, int progressed)
{
    int64_t t;

    /* A once-run that already ran a timer callback has done its one unit of
     * work; blocking on top of that would only delay the caller. */
    if (mode == GYRE_RUN_NOWAIT || loop->stop_flag || loop->refs == 0 ||
        (mode == GYRE_RUN_ONCE && progressed))
        return 0;
    t = gyre_loop_timeout(loop);
    return t > MAX_WAIT_NS ? MAX_WAIT_NS : t;
}

static int iterate(gyre_loop *loop, gyre_run_mode mode)
{
    uint64_t fired = loop->stats.timers_fired;
    int n;

    /* The time was taken after the last wait (or when run began): the
     * wait is where time passes, so one clock read per iteration is enough. */
    if (loop->heap_len != 0)
        gyre__timers_run(loop);
    if (!gyre__list_empty(&loop->hooks[GYRE_HOOK_IDLE]))
        gyre__hooks_run(loop, GYRE_HOOK_IDLE);
    if (!gyre__list_empty(&loop->hooks[GYRE_HOOK_PREPARE]))
        gyre__hooks_run(loop, GYRE_HOOK_PREPARE);

    if (loop->link_hold != NULL)
        gyre__ops_flush(loop);
    if (loop->ndirty != 0)
        gyre__fd_flush(loop);
    n = loop->be->wait(loop->be_state, wait_timeout(loop, mode, loop->stats.timers_fired != fired),
                       loop->events, (int)loop->max_events);
    loop->stats.kernel_waits++;
    loop->now_ns = gyre__sys_now_ns();
    if (n == -EINTR)
        n = 0;
    if (n < 0)
        return n;
    if (!gyre__opq_empty(&loop->ready))
        gyre__ops_dispatch_ready(loop);
    gyre__io_dispatch(loop, n);
    /* Ops that completed inside those callbacks (a send that went out at
     * once, say) are called back now rather than after another kernel
     * wait: an echo costs one wait per message, as a hand-written loop
     * does. */
    if (!gyre__opq_empty(&loop->ready))
        gyre__ops_dispatch_ready(loop);
    if (!gyre__list_empty(&loop->hooks[GYRE_HOOK_CHECK]))
        gyre__hooks_run(loop, GYRE_HOOK_CHECK);
    /* A once-run must make progress on timers even if the wait was cut short
     * by something else, as libuv's UV_RUN_ONCE does. */
    if (mode == GYRE_RUN_ONCE)
        gyre__timers_run(loop);
    loop->stats.iterations++;
    return 0;
}

GYRE_API int gyre_loop_run(gyre_loop *loop, gyre_run_mode mode)
{
    int r = 0;

    if (loop == NULL ||
        (mode != GYRE_RUN_DEFAULT && mode != GYRE_RUN_ONCE && mode != GYRE_RUN_NOWAIT))
        return -EINVAL;
    /* One exchange both refuses re-entry from a callback and a second thread
     * running the same loop. */
    if (atomic_exchange(&loop->running, 1))
        return -EBUSY;
    loop->stop_flag = 0;
    loop->now_ns = gyre__sys_now_ns();
    if (mode == GYRE_RUN_DEFAULT) {
        while (r == 0 && loop->refs > 0 && !loop->stop_flag)
            r = iterate(loop, mode);
    } else {
        r = iterate(loop, mode);
    }
    loop->stop_flag = 0;
    atomic_store(&loop->running, 0);
    if (r < 0)
        return r;
    return loop->refs > 0 ? 1 : 0;
}

GYRE_API int gyre_loop_info(const gyre_loop *loop, gyre_info *out)
{
    if (loop == NULL || out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (loop->be->info != NULL)
        loop->be->info(loop->be_state, out);
    out->backend = loop->be->name;
    out->file_engine = loop->files_native ? loop->be->name
                       : loop->fe != NULL ? loop->fe->name
                                          : "pool";
    out->reason = loop->reason != NULL ? loop->reason : "";
    out->caps = loop->caps & ~GYRE__CAP_RDHUP_NEEDS_IN;
    return 0;
}

static void drop_op(gyre_op *op)
{
    op->gyre__priv.sflags &= ~GYRE__OPF_POOL;
    gyre__op_ready(op->gyre__priv.loop, op, -ECANCELED);
}

GYRE_API int gyre_loop_fork(gyre_loop *loop)
{
    const char *why = NULL;
    int old_wake, r;

    if (loop == NULL)
        return -EINVAL;
    if (atomic_load(&loop->running))
        return -EBUSY;
    /* The inherited kernel objects are shared with the parent: the child
     * only drops its references (fini closes and unmaps, io_uring memory was
     * never mapped here: MADV_DONTFORK) and makes its own. */
    loop->be->fini(loop->be_state);
    loop->be_state = NULL;
    r = loop->be->init(&loop->be_state, &loop->be_opts, &why);
    if (r < 0)
        return r;
    old_wake = loop->wake_fd;
    loop->fds[old_wake].watch = NULL;
    loop->fds[old_wake].kmask = 0;
    gyre__sys_close(old_wake);
    r = gyre__sys_eventfd(0, EFD_NONBLOCK);
    if (r < 0)
        return r;
    loop->wake_fd = r;
    atomic_store(&loop->async_armed, 0);
    pthread_mutex_init(&loop->post_lock, NULL);

    /* Every registration again, in the new kernel object. */
    for (size_t fd = 0; fd < loop->fds_cap; fd++)
        loop->fds[fd].kmask = 0;
    for (size_t fd = 0; fd < loop->fds_cap; fd++)
        gyre__fd_sync(loop, (int)fd, 1);
    r = gyre__watch_start_internal(loop, &loop->wake_watch, loop->wake_fd, wake_cb);
    if (r < 0)
        return r;

    /* Ops that were in the parent's ring or with pool threads (which do not
     * exist here) are the parent's to finish. */
    while (loop->native.head != NULL) {
        gyre_op *op = loop->native.head;

        gyre__opq_remove(&loop->native, op);
        gyre__op_ready(loop, op, -ECANCELED);
    }
    while (loop->closewait.head != NULL) {
        gyre_op *op = loop->closewait.head;

        gyre__opq_remove(&loop->closewait, op);
        gyre__op_start(loop, op);
    }
    if (loop->pool != NULL)
        gyre__pool_fork_child(loop->pool, drop_op);
    gyre__bufpools_fork(loop);
    return gyre__engine_fork(loop);
}
