/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* fswatch.c: file-system watches on inotify.
 *
 * One inotify instance per active fswatch, CLOEXEC|NONBLOCK, watched for
 * readability by an ordinary level-triggered gyre_watch. Each readiness
 * callback makes one read() into a fixed buffer on the stack and hands the
 * events in it to the caller one by one; what does not fit waits for the
 * next iteration, so a busy directory cannot hold the loop.
 *
 * Invariants: gyre__priv.fd >= 0 exactly while active. A callback may stop,
 * restart or free its fswatch: the dispatch keeps a flag on its own stack
 * that a stop clears (found through a per-thread list of dispatch frames,
 * so the caller's memory never holds a stack address), and touches w again
 * only while it is set.
 */
#include <errno.h>
#include <stddef.h>
#include <sys/inotify.h>

#include "gyre.h"
#include "sys/svc.h"
#include "sys/sys.h"

/* gyre's event bits and inotify's, one to one. */
static const struct {
    uint32_t gyre, in;
} fs_bits[] = {
    {GYRE_FS_CREATE, IN_CREATE},
    {GYRE_FS_MODIFY, IN_MODIFY},
    {GYRE_FS_DELETE, IN_DELETE},
    {GYRE_FS_MOVED_FROM, IN_MOVED_FROM},
    {GYRE_FS_MOVED_TO, IN_MOVED_TO},
    {GYRE_FS_ATTRIB, IN_ATTRIB},
    {GYRE_FS_DELETE_SELF, IN_DELETE_SELF},
    {GYRE_FS_MOVE_SELF, IN_MOVE_SELF},
    {GYRE_FS_ISDIR, IN_ISDIR},
    {GYRE_FS_OVERFLOW, IN_Q_OVERFLOW},
};

static uint32_t to_inotify(uint32_t mask)
{
    uint32_t in = 0;
    size_t i;

    for (i = 0; i < sizeof fs_bits / sizeof fs_bits[0]; i++)
        if (mask & fs_bits[i].gyre)
            in |= fs_bits[i].in;
    return in;
}

static uint32_t from_inotify(uint32_t in)
{
    uint32_t mask = 0;
    size_t i;

    for (i = 0; i < sizeof fs_bits / sizeof fs_bits[0]; i++)
        if (in & fs_bits[i].in)
            mask |= fs_bits[i].gyre;
    return mask;
}

#define FSW_OF(ptr)                                                                                \
    ((gyre_fswatch *)(void *)((char *)(ptr)-offsetof(gyre_fswatch, gyre__priv.watch)))

/* A read needs room for at least one event with the longest name (NAME_MAX
 * 255 + NUL), or the kernel says EINVAL; 4 KiB holds dozens. */
#define FS_BUF_LEN 4096

/* The dispatches in progress on this thread, innermost first (a callback may
 * run another loop, which may dispatch another fswatch). A stop clears the
 * flag of every frame that is delivering its fswatch, so the dispatch never
 * touches an fswatch its callback stopped, restarted or freed. */
struct fs_frame {
    gyre_fswatch *w;
    int alive;
    struct fs_frame *prev;
};
static _Thread_local struct fs_frame *fs_frames;

static void deliver(struct fs_frame *f, const char *buf, size_t n)
{
    size_t off = 0;

    while (f->alive && off + sizeof(struct inotify_event) <= n) {
        const struct inotify_event *ev = (const void *)(buf + off);
        uint32_t events = from_inotify(ev->mask);

        off += sizeof *ev + ev->len;
        if (ev->mask & IN_IGNORED) {
            /* The kernel dropped the watch (the object was removed, or its
             * file system unmounted): nothing more can come. */
            gyre_fswatch_cb cb = f->w->gyre__priv.cb;

            gyre_fswatch_stop(f->w);
            cb(f->w, GYRE_FS_GONE, NULL, 0);
            return;
        }
        if (events == 0 || events == GYRE_FS_ISDIR)
            continue; /* IN_UNMOUNT: IN_IGNORED follows */
        f->w->gyre__priv.cb(f->w, events, ev->len > 0 ? ev->name : NULL, ev->cookie);
    }
}

static void on_inotify(gyre_watch *gw, uint32_t revents)
{
    char buf[FS_BUF_LEN] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct fs_frame f = {FSW_OF(gw), 1, fs_frames};
    ssize_t n;

    (void)revents;
    n = gyre__sys_read(f.w->gyre__priv.fd, buf, sizeof buf);
    if (n <= 0)
        return; /* EAGAIN/EINTR: the level-triggered watch calls again */
    fs_frames = &f;
    deliver(&f, buf, (size_t)n);
    fs_frames = f.prev;
}

GYRE_API int gyre_fswatch_init(gyre_loop *loop, gyre_fswatch *w)
{
    if (loop == NULL || w == NULL)
        return -EINVAL;
    w->gyre__priv.loop = loop;
    w->gyre__priv.cb = NULL;
    w->gyre__priv.fd = -1;
    w->gyre__priv.wd = -1;
    w->gyre__priv.unref = 0;
    return 0;
}

GYRE_API int gyre_fswatch_start(gyre_fswatch *w, const char *path, uint32_t mask,
                                gyre_fswatch_cb cb)
{
    int fd, wd, rc;

    if (w == NULL || w->gyre__priv.loop == NULL || path == NULL || cb == NULL || mask == 0 ||
        (mask & ~GYRE_FS_ALL) != 0)
        return -EINVAL;
    if (w->gyre__priv.fd >= 0)
        return -EBUSY;
    if ((fd = gyre__sys_inotify_init()) < 0)
        return fd;
    if ((wd = gyre__sys_inotify_add_watch(fd, path, to_inotify(mask))) < 0) {
        gyre__sys_close(fd);
        return wd;
    }
    if ((rc = gyre_watch_init(w->gyre__priv.loop, &w->gyre__priv.watch, fd)) < 0 ||
        (rc = gyre_watch_start(&w->gyre__priv.watch, GYRE_IN, on_inotify)) < 0) {
        gyre__sys_close(fd);
        return rc;
    }
    if (w->gyre__priv.unref)
        gyre_handle_unref(&w->gyre__priv.watch.base);
    w->gyre__priv.cb = cb;
    w->gyre__priv.fd = fd;
    w->gyre__priv.wd = wd;
    return 0;
}

GYRE_API int gyre_fswatch_stop(gyre_fswatch *w)
{
    struct fs_frame *f;

    if (w == NULL || w->gyre__priv.fd < 0)
        return 0;
    for (f = fs_frames; f != NULL; f = f->prev)
        if (f->w == w)
            f->alive = 0;
    gyre_watch_stop(&w->gyre__priv.watch);
    gyre__sys_close(w->gyre__priv.fd);
    w->gyre__priv.fd = -1;
    w->gyre__priv.wd = -1;
    return 0;
}

GYRE_API void gyre_fswatch_ref(gyre_fswatch *w)
{
    if (w == NULL)
        return;
    w->gyre__priv.unref = 0;
    if (w->gyre__priv.fd >= 0)
        gyre_handle_ref(&w->gyre__priv.watch.base);
}

GYRE_API void gyre_fswatch_unref(gyre_fswatch *w)
{
    if (w == NULL)
        return;
    w->gyre__priv.unref = 1;
    if (w->gyre__priv.fd >= 0)
        gyre_handle_unref(&w->gyre__priv.watch.base);
}
