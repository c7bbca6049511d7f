/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* process.c: child processes (gyre_spawn) and the reaper of abandoned ones.
 *
 * A child is made with clone3(CLONE_PIDFD), else fork() + pidfd_open(),
 * else fork() alone; the parent learns whether execve worked from a CLOEXEC
 * pipe that the child writes its errno to, so gyre_spawn() answers
 * synchronously. Its end is then seen through a gyre_watch on the pidfd
 * (readable once the child has exited, and from then on: a child that ended
 * before the watch started is still seen) or, without pidfds, through
 * SIGCHLD plus one first look at start.
 *
 * Invariants:
 * - Every child gyre spawns is reaped exactly once, by waitid() naming that
 *   child (P_PIDFD, or P_PID without pidfds) and never P_ALL, so children
 *   the program made itself are left to it. Until reaped, the child's pid
 *   cannot be reused, so P_PID and kill() on it are as exact as the pidfd.
 * - A process is RUNNING (watched, one of watch or sigchld+check active),
 *   DONE (reaped and reported) or CLOSED. The callback runs after every
 *   gyre object of the process is stopped and the pidfd closed, so it may
 *   free p.
 * - A process closed while its child runs hands (pid, pidfd) to the reaper
 *   thread, which owns them from then on.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "gyre.h"
#include "sys/svc.h"
#include "sys/sys.h"

extern char **environ;

enum {
    PROC_IDLE = 0,
    PROC_RUNNING = 0x70726f63,
    PROC_DONE,
    PROC_CLOSED
};

#define PROC_OF(ptr, member)                                                                       \
    ((gyre_process *)(void *)((char *)(ptr)-offsetof(gyre_process, gyre__priv.member)))

/* ------------------------------------------------------------------------ */
/* The reaper: waits for children whose gyre_process was closed early        */
/* ------------------------------------------------------------------------ */

struct orphan {
    int pid;
    int pidfd; /* -1 without pidfds */
};

/* One per process. The thread exists while the list is not empty; it polls
 * the pidfds and its wake eventfd (children without a pidfd are looked at
 * every 100 ms). lock guards everything here; the thread drops it only
 * around poll(), during which the pidfds and wake_fd stay open because only
 * the thread closes them. */
static struct {
    pthread_mutex_t lock;
    pthread_once_t once;
    struct orphan *list;
    size_t len, cap;
    size_t reserved; /* slots promised to hand-overs in progress */
    int running;
    int wake_fd;
} reaper = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_ONCE_INIT, NULL, 0, 0, 0, 0, -1};

/* Reaps what has exited; returns how many are left. Lock held. */
static size_t reaper_sweep(void)
{
    size_t i = 0;

    while (i < reaper.len) {
        struct orphan *o = &reaper.list[i];
        int code, sig;
        int rc = gyre__sys_wait_child(o->pidfd, o->pid, 1, &code, &sig);

        if (rc == -EINVAL && o->pidfd >= 0) /* no P_PIDFD before Linux 5.4 */
            rc = gyre__sys_wait_child(-1, o->pid, 1, &code, &sig);
        if (rc == 0) {
            i++;
            continue;
        }
        if (o->pidfd >= 0)
            gyre__sys_close(o->pidfd);
        *o = reaper.list[--reaper.len];
    }
    return reaper.len;
}

static void *reaper_main(void *arg)
{
    struct pollfd *pfds = NULL;
    size_t pcap = 0;

    (void)arg;
    pthread_mutex_lock(&reaper.lock);
    while (reaper_sweep() > 0) {
        int wake_fd = reaper.wake_fd;
        size_t i, n = 1;
        int pidless = 0;
        uint64_t v;

        if (gyre__grow(&pfds, &pcap, reaper.len + 1, sizeof *pfds) < 0) {
            pidless = 1; /* no room to poll them all: look every 100 ms */
        } else {
            for (i = 0; i < reaper.len; i++) {
                if (reaper.list[i].pidfd < 0) {
                    pidless = 1;
                    continue;
                }
                pfds[n].fd = reaper.list[i].pidfd;
                pfds[n++].events = POLLIN;
            }
        }
        pthread_mutex_unlock(&reaper.lock);
        if (pfds != NULL) {
            pfds[0].fd = wake_fd;
            pfds[0].events = POLLIN;
            pfds[0].revents = 0;
            if (gyre__sys_poll(pfds, n, pidless ? 100000000 : -1) > 0 && pfds[0].revents)
                gyre__sys_eventfd_read(wake_fd, &v);
        } else {
            struct pollfd one = {.fd = wake_fd, .events = POLLIN};

            if (gyre__sys_poll(&one, 1, 100000000) > 0)
                gyre__sys_eventfd_read(wake_fd, &v);
        }
        pthread_mutex_lock(&reaper.lock);
    }
    gyre__sys_close(reaper.wake_fd);
    reaper.wake_fd = -1;
    reaper.running = 0;
    pthread_mutex_unlock(&reaper.lock);
    gyre__free(pfds);
    return NULL;
}

static void reaper_prepare(void)
{
    pthread_mutex_lock(&reaper.lock);
}

static void reaper_parent(void)
{
    pthread_mutex_unlock(&reaper.lock);
}

/* A forked child has no reaper thread, and the orphans are its parent's
 * children, not its own: it forgets them. */
static void reaper_child(void)
{
    size_t i;

    for (i = 0; i < reaper.len; i++)
        if (reaper.list[i].pidfd >= 0)
            gyre__sys_close(reaper.list[i].pidfd);
    reaper.len = 0;
    reaper.reserved = 0;
    if (reaper.wake_fd >= 0)
        gyre__sys_close(reaper.wake_fd);
    reaper.wake_fd = -1;
    reaper.running = 0;
    pthread_mutex_unlock(&reaper.lock);
}

static void reaper_once(void)
{
    pthread_atfork(reaper_prepare, reaper_parent, reaper_child);
}

/* Makes room for one more orphan, so that the hand-over after the loop has
 * let go of the pidfd cannot fail for memory. 0 or -ENOMEM. */
static int reaper_reserve(void)
{
    int rc;

    pthread_once(&reaper.once, reaper_once);
    pthread_mutex_lock(&reaper.lock);
    rc = gyre__grow(&reaper.list, &reaper.cap, reaper.len + reaper.reserved + 1,
                    sizeof *reaper.list);
    if (rc == 0)
        reaper.reserved++;
    pthread_mutex_unlock(&reaper.lock);
    return rc;
}

/* Hands the child to the reaper (after reaper_reserve(), and only once the
 * loop no longer watches the pidfd: from here on the reaper may close it).
 * Should no thread start (pthread_create's EAGAIN), the orphan waits in the
 * list for the next hand-over to start one. */
static void reaper_add(int pid, int pidfd)
{
    pthread_mutex_lock(&reaper.lock);
    reaper.reserved--;
    reaper.list[reaper.len++] = (struct orphan){pid, pidfd};
    if (reaper.running) {
        gyre__sys_eventfd_signal(reaper.wake_fd);
    } else if ((reaper.wake_fd = gyre__sys_eventfd(0, 0)) >= 0) {
        pthread_attr_t attr;
        pthread_t th;
        sigset_t old;

        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* The thread takes none of the program's signals. */
        gyre__sys_block_signals(&old);
        reaper.running = pthread_create(&th, &attr, reaper_main, NULL) == 0;
        gyre__sys_restore_signals(&old);
        pthread_attr_destroy(&attr);
        if (!reaper.running) {
            gyre__sys_close(reaper.wake_fd);
            reaper.wake_fd = -1;
        }
    }
    pthread_mutex_unlock(&reaper.lock);
}

/* ------------------------------------------------------------------------ */
/* Processes                                                                 */
/* ------------------------------------------------------------------------ */

/* Kills and reaps a child gyre_spawn() cannot hand over (blocking: a killed
 * child ends at once). */
static void spawn_undo(int pid, int pidfd, int kill_it)
{
    int code, sig, rc;

    if (kill_it)
        gyre__sys_kill(pid, SIGKILL);
    rc = gyre__sys_wait_child(pidfd, pid, 0, &code, &sig);
    if (rc == -EINVAL && pidfd >= 0)
        gyre__sys_wait_child(-1, pid, 0, &code, &sig);
}

static void proc_stop(gyre_process *p)
{
    if (p->gyre__priv.pidfd >= 0) {
        gyre_watch_stop(&p->gyre__priv.watch);
    } else {
        gyre_signal_stop(&p->gyre__priv.sigchld);
        gyre_timer_stop(&p->gyre__priv.check);
    }
}

/* Asks the kernel about the child without blocking; on an answer, stops
 * watching and calls back. p may be freed by the callback. */
static void proc_poll(gyre_process *p)
{
    int pidfd = p->gyre__priv.pidfd;
    int code = 0, sig = 0;
    int rc = gyre__sys_wait_child(pidfd, p->pid, 1, &code, &sig);

    if (rc == -EINVAL && pidfd >= 0)
        rc = gyre__sys_wait_child(-1, p->pid, 1, &code, &sig);
    if (rc == 0)
        return;
    proc_stop(p);
    if (pidfd >= 0)
        gyre__sys_close(pidfd);
    p->gyre__priv.pidfd = -1;
    p->gyre__priv.state = PROC_DONE;
    p->exit_status = rc < 0 ? rc : code;
    p->term_signal = rc < 0 ? 0 : sig;
    p->gyre__priv.cb(p, p->exit_status, p->term_signal);
}

static void on_pidfd(gyre_watch *w, uint32_t events)
{
    (void)events;
    proc_poll(PROC_OF(w, watch));
}

static void on_check(gyre_timer *t)
{
    proc_poll(PROC_OF(t, check));
}

/* The look itself waits for the check timer on the next iteration rather
 * than running here: stopping a signal watcher from inside a signal callback
 * while the loop's other watchers are being dispatched takes the loop out of
 * the core's signal registry (src/core/signal.c judges "no watcher left" by
 * its list, which gyre__list_each has emptied for the walk), and later
 * SIGCHLDs would not reach it. */
static void on_sigchld(gyre_signal *s, int signo)
{
    gyre_process *p = PROC_OF(s, sigchld);

    (void)signo;
    if (gyre_timer_start(&p->gyre__priv.check, on_check, 0, 0) < 0)
        proc_poll(p);
}

static void proc_apply_ref(gyre_process *p)
{
    void (*fn)(gyre_handle *) = p->gyre__priv.unref ? gyre_handle_unref : gyre_handle_ref;

    if (p->gyre__priv.pidfd >= 0) {
        fn(&p->gyre__priv.watch.base);
    } else {
        fn(&p->gyre__priv.sigchld.base);
        fn(&p->gyre__priv.check.base);
    }
}

static int proc_watch(gyre_loop *loop, gyre_process *p)
{
    int rc;

    if (p->gyre__priv.pidfd >= 0) {
        rc = gyre_watch_init(loop, &p->gyre__priv.watch, p->gyre__priv.pidfd);
        if (rc == 0)
            rc = gyre_watch_start(&p->gyre__priv.watch, GYRE_IN, on_pidfd);
        return rc;
    }
    /* Without a pidfd: SIGCHLD for every later exit, and one look on the
     * next iteration for a child that ended before the handler was there
     * (its SIGCHLD went to the old disposition). */
    if ((rc = gyre_signal_init(loop, &p->gyre__priv.sigchld)) < 0 ||
        (rc = gyre_timer_init(loop, &p->gyre__priv.check)) < 0 ||
        (rc = gyre_signal_start(&p->gyre__priv.sigchld, on_sigchld, SIGCHLD)) < 0)
        return rc;
    rc = gyre_timer_start(&p->gyre__priv.check, on_check, 0, 0);
    if (rc < 0)
        gyre_signal_stop(&p->gyre__priv.sigchld);
    return rc;
}

static int spawn_check(gyre_loop *loop, gyre_process *p, const gyre_spawn_opts *o,
                       gyre_process_cb cb)
{
    int i;

    if (loop == NULL || p == NULL || o == NULL || cb == NULL || o->argv == NULL ||
        o->argv[0] == NULL || (o->flags & ~GYRE_SPAWN_SEARCH_PATH) != 0 || o->reserved32 != 0)
        return -EINVAL;
    for (i = 0; i < 4; i++)
        if (o->reserved[i] != 0)
            return -EINVAL;
    for (i = 0; i < 3; i++) {
        if (o->stdio[i].how > GYRE_STDIO_STREAM)
            return -EINVAL;
        if (o->stdio[i].how == GYRE_STDIO_STREAM && o->stdio[i].stream == NULL)
            return -EINVAL;
        if (o->stdio[i].how == GYRE_STDIO_FD && o->stdio[i].fd < 0)
            return -EINVAL;
    }
    return 0;
}

/* Closes the open ones and marks them closed, so that an error path that
 * closes again cannot hit an fd number another thread has been given. */
static void close_fds(int *fds, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        if (fds[i] >= 0)
            gyre__sys_close(fds[i]);
        fds[i] = -1;
    }
}

/* Fills c->src with the child's fds 0..2, making /dev/null and pipes:
 * theirs[] gets what the parent closes after the spawn, ours[] the parent's
 * pipe ends. */
static int spawn_stdio(const gyre_spawn_opts *o, struct gyre__child *c, int theirs[3], int ours[3])
{
    int i, fds[2], rc;

    for (i = 0; i < 3; i++) {
        switch (o->stdio[i].how) {
        case GYRE_STDIO_INHERIT:
            c->src[i] = i;
            break;
        case GYRE_STDIO_NULL:
            if ((rc = gyre__sys_openat(AT_FDCWD, "/dev/null", O_RDWR, 0)) < 0)
                return rc;
            c->src[i] = theirs[i] = rc;
            break;
        case GYRE_STDIO_PIPE:
        case GYRE_STDIO_STREAM:
            if ((rc = gyre__sys_pipe(fds, 0)) < 0)
                return rc;
            /* The child reads its stdin and writes the others. */
            c->src[i] = theirs[i] = fds[i == 0 ? 0 : 1];
            ours[i] = fds[i == 0 ? 1 : 0];
            break;
        default:
            c->src[i] = o->stdio[i].fd;
            break;
        }
    }
    return 0;
}

GYRE_API int gyre_spawn(gyre_loop *loop, gyre_process *p, const gyre_spawn_opts *opts,
                        gyre_process_cb cb)
{
    struct gyre__child c;
    int theirs[3] = {-1, -1, -1}, ours[3] = {-1, -1, -1};
    int errpipe[2] = {-1, -1};
    int pidfd = -1, pid = -1, rc, i;
    sigset_t old;

    if ((rc = spawn_check(loop, p, opts, cb)) < 0)
        return rc;
    memset(&c, 0, sizeof c);
    c.path = opts->path != NULL ? opts->path : opts->argv[0];
    if ((opts->flags & GYRE_SPAWN_SEARCH_PATH) && strchr(c.path, '/') == NULL) {
        /* Read here, not in the child: getenv is not async-signal-safe
         * against a setenv in another thread, and the child only copies. */
        c.search = secure_getenv("PATH");
        if (c.search == NULL || c.search[0] == '\0')
            return -ENOENT;
    }
    c.argv = opts->argv;
    c.envp = opts->env != NULL ? opts->env : environ;
    c.cwd = opts->cwd;
    c.maxfd = gyre__sys_nofile();
    if ((rc = spawn_stdio(opts, &c, theirs, ours)) < 0 || (rc = gyre__sys_pipe(errpipe, 0)) < 0)
        goto fail;
    c.errfd = errpipe[1];

    /* Every signal stays blocked from before the clone until the child has
     * reset its handlers, so no handler of ours runs in the child. */
    gyre__sys_block_signals(&old);
    pid = gyre__sys_spawn_clone3(&c, &pidfd);
    if (pid == -ENOSYS)
        pid = gyre__sys_spawn_fork(&c);
    gyre__sys_restore_signals(&old);
    close_fds(theirs, 3);
    close_fds(&errpipe[1], 1);
    if (pid < 0) {
        rc = pid;
        goto fail;
    }
    if (pidfd < 0) {
        /* Our unreaped child: its pid cannot be reused, so pidfd_open names
         * it exactly (unless the program reaps children it did not make). */
        pidfd = gyre__sys_pidfd_open(pid);
        if (pidfd == -ENOSYS) {
            pidfd = -1;
        } else if (pidfd < 0) {
            rc = pidfd;
            pidfd = -1;
            spawn_undo(pid, -1, 1);
            goto fail;
        }
    }
    rc = gyre__sys_spawn_result(errpipe[0]);
    if (rc < 0) {
        spawn_undo(pid, pidfd, 0); /* it has _exit()ed or is about to */
        goto fail;
    }
    for (i = 0; i < 3; i++)
        if (ours[i] >= 0 && (rc = gyre__sys_set_nonblock(ours[i])) < 0)
            goto undo;

    memset(&p->gyre__priv, 0, sizeof p->gyre__priv);
    p->gyre__priv.loop = loop;
    p->gyre__priv.cb = cb;
    p->gyre__priv.pidfd = pidfd;
    if ((rc = proc_watch(loop, p)) < 0)
        goto undo;
    p->gyre__priv.state = PROC_RUNNING;
    p->pid = pid;
    p->exit_status = 0;
    p->term_signal = 0;
    /* Streams last: gyre_stream_init() on a fresh pipe end cannot fail once
     * the arguments were checked, and nothing after it can. */
    for (i = 0; i < 3; i++) {
        if (opts->stdio[i].how == GYRE_STDIO_STREAM) {
            /* Checked above (loop, stream) or just made (the fd), so it
             * cannot fail; if it ever did, the end must not leak. */
            if (gyre_stream_init(loop, opts->stdio[i].stream, ours[i], 0) < 0)
                gyre__sys_close(ours[i]);
            ours[i] = -1;
        }
        p->stdio_fd[i] = ours[i];
    }
    close_fds(errpipe, 2);
    return 0;

undo:
    spawn_undo(pid, pidfd, 1);
fail:
    if (pidfd >= 0)
        gyre__sys_close(pidfd);
    close_fds(theirs, 3);
    close_fds(ours, 3);
    close_fds(errpipe, 2);
    return rc;
}

GYRE_API int gyre_process_kill(gyre_process *p, int signo)
{
    int rc;

    if (p == NULL || signo < 0 || signo >= _NSIG)
        return -EINVAL;
    if (p->gyre__priv.state == PROC_DONE || p->gyre__priv.state == PROC_CLOSED)
        return -ESRCH;
    if (p->gyre__priv.state != PROC_RUNNING)
        return -EINVAL;
    if (p->gyre__priv.pidfd >= 0) {
        rc = gyre__sys_pidfd_send_signal(p->gyre__priv.pidfd, signo);
        if (rc != -ENOSYS)
            return rc;
    }
    /* Not reaped yet, so the pid is still this child's. */
    return gyre__sys_kill(p->pid, signo);
}

GYRE_API int gyre_process_close(gyre_process *p)
{
    int code, sig, rc;

    if (p == NULL)
        return -EINVAL;
    if (p->gyre__priv.state != PROC_RUNNING) {
        if (p->gyre__priv.state == PROC_DONE)
            p->gyre__priv.state = PROC_CLOSED;
        return 0;
    }
    /* Ended already (unreported): reap it here rather than wake the reaper. */
    rc = gyre__sys_wait_child(p->gyre__priv.pidfd, p->pid, 1, &code, &sig);
    if (rc == -EINVAL && p->gyre__priv.pidfd >= 0)
        rc = gyre__sys_wait_child(-1, p->pid, 1, &code, &sig);
    if (rc == 0 && reaper_reserve() < 0)
        return -ENOMEM;
    proc_stop(p);
    if (rc == 0)
        reaper_add(p->pid, p->gyre__priv.pidfd);
    else if (p->gyre__priv.pidfd >= 0)
        gyre__sys_close(p->gyre__priv.pidfd);
    p->gyre__priv.pidfd = -1;
    p->gyre__priv.state = PROC_CLOSED;
    return 0;
}

GYRE_API void gyre_process_ref(gyre_process *p)
{
    if (p == NULL || p->gyre__priv.state != PROC_RUNNING)
        return;
    p->gyre__priv.unref = 0;
    proc_apply_ref(p);
}

GYRE_API void gyre_process_unref(gyre_process *p)
{
    if (p == NULL || p->gyre__priv.state != PROC_RUNNING)
        return;
    p->gyre__priv.unref = 1;
    proc_apply_ref(p);
}
