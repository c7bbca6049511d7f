/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* gyre/process.h: child processes and file-system watches. Part of gyre.h,
 * which includes it; include gyre.h, not this file.
 *
 * Both objects are caller-owned and embedded wherever the caller likes, like
 * every gyre object, and follow gyre.h's contract: -errno returns, callbacks
 * on the loop thread from gyre_loop_run() and never inside the call that
 * started them, every fd gyre makes close-on-exec. Functions taking a
 * gyre_process or gyre_fswatch must be called on the thread running its
 * loop. An active process or fswatch keeps its loop from being freed
 * (gyre_loop_free() says -EBUSY) and, while referenced, keeps
 * gyre_loop_run(GYRE_RUN_DEFAULT) running.
 */
#ifndef GYRE_PROCESS_H
#define GYRE_PROCESS_H

#ifndef GYRE_H
#error "include gyre.h, not gyre/process.h"
#endif

/* ------------------------------------------------------------------------ */
/* Child processes                                                           */
/* ------------------------------------------------------------------------ */

/* What one of the child's fds 0, 1, 2 is (gyre_stdio.how). */
#define GYRE_STDIO_INHERIT 0 /* the parent's own fd of that number (the default) */
#define GYRE_STDIO_NULL 1    /* /dev/null, opened read-write */
#define GYRE_STDIO_PIPE 2    /* a new pipe; the parent's end in gyre_process.stdio_fd[i] */
#define GYRE_STDIO_FD 3      /* the caller's fd gyre_stdio.fd (which it keeps) */
/* A new pipe as GYRE_STDIO_PIPE, whose parent's end gyre_spawn() hands back
 * as the gyre_stream gyre_stdio.stream (gyre_stream_init() on the loop,
 * flags 0): write to the child's stdin, or gyre_stream_read_start() on its
 * stdout or stderr with a NULL pool. The stream owns that end:
 * gyre_process.stdio_fd[i] is -1, and gyre_stream_close() closes it. */
#define GYRE_STDIO_STREAM 4

typedef struct gyre_stdio {
    uint32_t how;        /* GYRE_STDIO_* */
    int32_t fd;          /* with GYRE_STDIO_FD */
    gyre_stream *stream; /* with GYRE_STDIO_STREAM: caller's memory, initialised on success */
} gyre_stdio;

/* gyre_spawn_opts.flags */
/* When the program (opts->path, else argv[0]) has no '/', look for it in the
 * directories of the parent's PATH (read with secure_getenv(), whatever
 * opts->env says), as posix_spawnp() and execvp() do: entries whose execve()
 * fails with ENOENT, ENOTDIR or EACCES are passed over, and the first that
 * succeeds or fails otherwise ends the search; an empty entry is the working
 * directory. With PATH unset or empty the spawn fails with
 * -ENOENT (no default path is made up); when every entry failed, -EACCES if
 * one refused with EACCES, else -ENOENT. Unlike execvp(), a file without a
 * #! line (ENOEXEC) is not handed to /bin/sh. */
#define GYRE_SPAWN_SEARCH_PATH 0x1u

typedef struct gyre_spawn_opts {
    /* The program, a path given to execve() as is unless flags has
     * GYRE_SPAWN_SEARCH_PATH. NULL means argv[0]. */
    const char *path;
    char *const *argv; /* NULL-terminated, with at least argv[0] */
    char *const *env;  /* NULL-terminated "NAME=value" list; NULL: the parent's environ */
    const char *cwd;   /* the child's working directory; NULL: the parent's */
    gyre_stdio stdio[3];
    uint32_t flags;       /* GYRE_SPAWN_* */
    uint32_t reserved32;  /* must be 0 */
    uint64_t reserved[4]; /* must be 0 */
} gyre_spawn_opts;

typedef struct gyre_process gyre_process;
/* exit_status: the child's exit code (0..255) when it exited, 0 when a
 * signal ended it; or -errno when its status could not be had (-ECHILD:
 * something else reaped it, e.g. SIGCHLD set to SIG_IGN or a waitpid(-1)
 * elsewhere in the program). term_signal: the signal that ended it, or 0. */
typedef void (*gyre_process_cb)(gyre_process *p, int64_t exit_status, int term_signal);

struct gyre_process {
    void *data; /* the caller's */
    int32_t pid;
    /* The parent's ends of GYRE_STDIO_PIPE pipes (-1 for the others):
     * O_NONBLOCK and O_CLOEXEC, [0] for writing to the child's stdin, [1]
     * and [2] for reading its stdout and stderr. They belong to the caller
     * from gyre_spawn()'s return: close them yourself, before or after the
     * child exits; gyre never touches them again. */
    int32_t stdio_fd[3];
    int64_t exit_status; /* as given to the callback, once it has run */
    int32_t term_signal;
    struct {
        gyre_loop *loop;
        gyre_process_cb cb;
        gyre_watch watch;    /* on the pidfd: readable once the child exits */
        gyre_signal sigchld; /* without pidfds: SIGCHLD, then waitid(P_PID) */
        gyre_timer check;    /* without pidfds: a first look, for an early exit */
        int32_t pidfd;
        uint32_t state;
        uint32_t unref;
    } gyre__priv;
};

/* Starts opts->argv as a child process of this one, and calls cb exactly
 * once on loop's thread when it has ended, with its exit status or the
 * signal that ended it (and the same in p->exit_status, p->term_signal).
 * The child is reaped by then: gyre waits only for the children it spawned
 * (never waitpid(-1)), so other children of the program are left to it.
 * A child that ends before the loop next runs is reported all the same.
 *
 * In the child, fds 0, 1 and 2 are set as opts->stdio says and every other
 * fd is closed before execve (close_range, else a walk of /proc/self/fd),
 * whether or not it was close-on-exec; signals the parent catches go back
 * to their defaults, ignored ones stay ignored, and the signal mask is empty.
 *
 * The pid and a pidfd come from one clone3(CLONE_PIDFD) (Linux 5.5); where
 * clone3 is refused (ENOSYS, or EPERM from a container's seccomp profile)
 * gyre uses fork() and pidfd_open() (5.3), and without pidfds it watches
 * SIGCHLD (through gyre_signal_start(), so the SIGCHLD disposition is gyre's
 * while such a child runs) and asks waitid(P_PID) about each of its own
 * children. The answer is learnt once per process.
 *
 * gyre_spawn() returns when execve has happened in the child or failed: 0,
 * or -errno and nothing to call back, no child left behind (a child whose
 * execve failed is reaped before the return) and no fd leaked: -EINVAL
 * (NULL loop, p, opts, argv, argv[0] or cb; unknown stdio.how, a negative
 * GYRE_STDIO_FD fd, a NULL GYRE_STDIO_STREAM stream; unknown flags, reserved
 * not 0), -ENOENT (also: GYRE_SPAWN_SEARCH_PATH without PATH, or no entry of
 * PATH has the program), -EACCES, -ENOEXEC, -ENOTDIR, ... (execve's,
 * chdir's or dup2's errno in the child), -EMFILE, -ENFILE, -ENOMEM, -EAGAIN
 * (fork's). On the select backend a pidfd at FD_SETSIZE or above cannot be
 * watched: the child is killed and reaped and -EINVAL returned.
 * opts and the strings it points to may be reused once gyre_spawn()
 * returns. p must stay valid and unmoved until cb has run or
 * gyre_process_close() is called.
 * Errors: -EINVAL, -ENOENT, -EACCES, -ENOEXEC, -ENOTDIR, -ELOOP, -ENAMETOOLONG, -E2BIG,
 * -ETXTBSY, -EMFILE, -ENFILE, -ENOMEM, -EAGAIN, -EPERM, -ENOSPC. */
GYRE_API int gyre_spawn(gyre_loop *loop, gyre_process *p, const gyre_spawn_opts *opts,
                        gyre_process_cb cb);

/* Sends signo to the child: through its pidfd (pidfd_send_signal), so
 * never to a process that reused its pid. Returns 0, -ESRCH (it has ended
 * and been reported, or the process is closed), -EINVAL (bad signo, p not
 * spawned), -EPERM. Signal 0 checks that the child is still there.
 * Errors: -EINVAL, -ESRCH, -EPERM. */
GYRE_API int gyre_process_kill(gyre_process *p, int signo);

/* Stops watching the child; idempotent; safe inside the callback. After
 * it returns no callback runs for p and its memory may be reused. A child
 * still running is not killed (gyre_process_kill() first if that is
 * wanted): gyre hands it to a reaper thread of its own that waits for it
 * and reaps it, so it never stays a zombie. Returns 0, or -ENOMEM (no
 * room to hand the child over: nothing changed, p is still watched). p must
 * have been given to a gyre_spawn() that succeeded.
 * Errors: -EINVAL, -ENOMEM. */
GYRE_API int gyre_process_close(gyre_process *p);

/* Like gyre_handle_ref()/unref() for the process: an unreferenced process
 * does not keep gyre_loop_run(GYRE_RUN_DEFAULT) running, but its callback
 * still runs while the loop runs. Processes start referenced. Valid from
 * gyre_spawn()'s success on; idempotent.
 * Errors: none. */
GYRE_API void gyre_process_ref(gyre_process *p);
GYRE_API void gyre_process_unref(gyre_process *p);

/* ------------------------------------------------------------------------ */
/* File-system watches (inotify)                                             */
/* ------------------------------------------------------------------------ */

/* Events (gyre_fswatch_start()'s mask and the callback's events). For a
 * directory, CREATE, MODIFY, DELETE, ATTRIB and the MOVED pair are about
 * entries in it (the callback gets the entry's name); for a file, MODIFY
 * and ATTRIB are about the file itself. */
#define GYRE_FS_CREATE 0x0001u      /* an entry was created */
#define GYRE_FS_MODIFY 0x0002u      /* a file was written */
#define GYRE_FS_DELETE 0x0004u      /* an entry was removed */
#define GYRE_FS_MOVED_FROM 0x0008u  /* an entry was renamed away (cookie pairs it) */
#define GYRE_FS_MOVED_TO 0x0010u    /* an entry was renamed in (same cookie) */
#define GYRE_FS_ATTRIB 0x0020u      /* metadata changed */
#define GYRE_FS_DELETE_SELF 0x0040u /* the watched file or directory was removed */
#define GYRE_FS_MOVE_SELF 0x0080u   /* the watched file or directory was renamed */
#define GYRE_FS_ALL 0x00ffu
/* Only in the callback's events: */
#define GYRE_FS_ISDIR 0x0100u    /* the entry is a directory */
#define GYRE_FS_OVERFLOW 0x0200u /* the kernel's queue overflowed: events were lost */
#define GYRE_FS_GONE 0x0400u     /* the watched object is gone; the fswatch has stopped */

typedef struct gyre_fswatch gyre_fswatch;
/* events: one GYRE_FS_* event, maybe with GYRE_FS_ISDIR; or GYRE_FS_OVERFLOW
 * or GYRE_FS_GONE alone. name: the entry's name inside a watched directory
 * (a NUL-terminated string valid only during the call), or NULL for events
 * about the watched object itself and for OVERFLOW and GONE. cookie: the
 * same non-zero value in a MOVED_FROM and the MOVED_TO of the same rename
 * (a rename out of or into the watched directory has only one half), else
 * 0. */
typedef void (*gyre_fswatch_cb)(gyre_fswatch *w, uint32_t events, const char *name,
                                uint32_t cookie);

struct gyre_fswatch {
    void *data; /* the caller's */
    struct {
        gyre_loop *loop;
        gyre_fswatch_cb cb;
        gyre_watch watch; /* on the inotify fd */
        int32_t fd;       /* the inotify instance, -1 when stopped */
        int32_t wd;
        uint32_t unref;
    } gyre__priv;
};

/* Prepares *w for loop. Returns 0 or -EINVAL.
 * Errors: -EINVAL. */
GYRE_API int gyre_fswatch_init(gyre_loop *loop, gyre_fswatch *w);

/* Watches path (a file or a directory; not recursive; a symlink is
 * followed) for the GYRE_FS_* events in mask, calling cb once per event in
 * the order the kernel reports them. The watch is of the object path names
 * now: renaming it keeps the watch (GYRE_FS_MOVE_SELF); removing it ends it
 * (GYRE_FS_DELETE_SELF, then GYRE_FS_GONE, after which the fswatch is
 * stopped). When the kernel's queue (fs.inotify.max_queued_events) fills
 * before gyre reads it, the events after it are lost and cb gets one
 * GYRE_FS_OVERFLOW for that overflow. Each active fswatch holds one inotify
 * instance (fs.inotify.max_user_instances, 128 by default, counts them).
 * Events are read into a fixed buffer on the stack; nothing is allocated.
 * Returns 0; -EINVAL (NULL cb, no event or an unknown bit in mask, not
 * initialised), -EBUSY (already active), -ENOENT, -EACCES, -ENOTDIR (from
 * inotify_add_watch), -EMFILE (fds or inotify instances used up), -ENOSPC
 * (fs.inotify.max_user_watches), -ENOMEM. path may be reused on return.
 * Errors: -EINVAL, -EBUSY, -ENOENT, -EACCES, -ENOTDIR, -ELOOP, -ENAMETOOLONG, -EMFILE, -ENFILE,
 * -ENOSPC, -ENOMEM. */
GYRE_API int gyre_fswatch_start(gyre_fswatch *w, const char *path, uint32_t mask,
                                gyre_fswatch_cb cb);

/* Stops watching and frees the inotify instance; idempotent; safe inside
 * the callback (later events of the batch are dropped). Then the memory
 * may be reused, or the fswatch started again. Returns 0.
 * Errors: none. */
GYRE_API int gyre_fswatch_stop(gyre_fswatch *w);

/* As gyre_process_ref()/unref(), for an fswatch (kept across restarts).
 * Errors: none. */
GYRE_API void gyre_fswatch_ref(gyre_fswatch *w);
GYRE_API void gyre_fswatch_unref(gyre_fswatch *w);

#endif
