/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-fswatch.c: inotify watches -- create, modify, delete and rename in a
 * directory with names and cookie pairing, a watched file and its removal,
 * queue overflow reported once, stop and free from inside the callback,
 * unreferenced watches, argument checks.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"

#define MAX_EVENTS 64

struct fs_event {
    uint32_t events;
    uint32_t cookie;
    char name[64]; /* "" for NULL */
};

struct rec_fs {
    gyre_fswatch w; /* first: the callback finds the record from w */
    int calls;
    int overflows;
    int gone;
    int stop_at; /* stop (and free, if heap) at this call when > 0 */
    int heap;
    struct fs_event ev[MAX_EVENTS];
};

static void rec_fs_cb(gyre_fswatch *w, uint32_t events, const char *name, uint32_t cookie)
{
    struct rec_fs *r = (struct rec_fs *)w;
    int i = r->calls++;

    if (events & GYRE_FS_OVERFLOW) {
        ASSERT_EQ(events, GYRE_FS_OVERFLOW);
        ASSERT_TRUE(name == NULL);
        r->overflows++;
        return;
    }
    if (events & GYRE_FS_GONE)
        r->gone++;
    if (i < MAX_EVENTS) {
        r->ev[i].events = events;
        r->ev[i].cookie = cookie;
        snprintf(r->ev[i].name, sizeof r->ev[i].name, "%s", name != NULL ? name : "");
    }
    if (r->stop_at > 0 && r->calls == r->stop_at) {
        ASSERT_EQ(gyre_fswatch_stop(w), 0);
        if (r->heap) {
            r->heap = 0;
            test_poison_free(r, sizeof *r);
        }
    }
}

static void assert_ev(const struct rec_fs *r, int i, uint32_t events, const char *name)
{
    ASSERT_EQ(r->ev[i].events, events);
    ASSERT_STREQ(r->ev[i].name, name);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    ASSERT_SYS(fd);
    test_write_bytes(fd, text, strlen(text));
    test_close(fd);
}

static void sub_path(char *out, size_t len, const char *dir, const char *name)
{
    ASSERT_LT(snprintf(out, len, "%s/%s", dir, name), (int)len);
}

void test_fswatch_dir_events(void)
{
    gyre_loop *loop = test_loop_new();
    char dir[PATH_MAX], a[PATH_MAX], b[PATH_MAX], d[PATH_MAX];
    struct rec_fs r;

    test_tmppath(dir, sizeof dir, "watched");
    ASSERT_SYS(mkdir(dir, 0755));
    sub_path(a, sizeof a, dir, "a");
    sub_path(b, sizeof b, dir, "b");
    sub_path(d, sizeof d, dir, "d");
    memset(&r, 0, sizeof r);
    ASSERT_EQ(gyre_fswatch_init(loop, &r.w), 0);
    ASSERT_EQ(gyre_fswatch_start(&r.w, dir,
                                 GYRE_FS_CREATE | GYRE_FS_MODIFY | GYRE_FS_DELETE |
                                     GYRE_FS_MOVED_FROM | GYRE_FS_MOVED_TO,
                                 rec_fs_cb),
              0);
    write_file(a, "hello");     /* CREATE a, MODIFY a */
    ASSERT_SYS(rename(a, b));   /* MOVED_FROM a, MOVED_TO b */
    ASSERT_SYS(unlink(b));      /* DELETE b */
    ASSERT_SYS(mkdir(d, 0755)); /* CREATE|ISDIR d */
    ASSERT_SYS(rmdir(d));       /* DELETE|ISDIR d */
    ASSERT_EQ(r.calls, 0);
    test_run_until(loop, &r.calls, 7);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 7);
    assert_ev(&r, 0, GYRE_FS_CREATE, "a");
    assert_ev(&r, 1, GYRE_FS_MODIFY, "a");
    assert_ev(&r, 2, GYRE_FS_MOVED_FROM, "a");
    assert_ev(&r, 3, GYRE_FS_MOVED_TO, "b");
    assert_ev(&r, 4, GYRE_FS_DELETE, "b");
    assert_ev(&r, 5, GYRE_FS_CREATE | GYRE_FS_ISDIR, "d");
    assert_ev(&r, 6, GYRE_FS_DELETE | GYRE_FS_ISDIR, "d");
    ASSERT_NE(r.ev[2].cookie, 0);
    ASSERT_EQ(r.ev[2].cookie, r.ev[3].cookie);
    ASSERT_EQ(r.ev[0].cookie, 0);
    ASSERT_EQ(r.ev[4].cookie, 0);
    /* A second rename has a cookie of its own. */
    write_file(a, "x");
    ASSERT_SYS(rename(a, b));
    test_run_until(loop, &r.calls, 11);
    assert_ev(&r, 9, GYRE_FS_MOVED_FROM, "a");
    assert_ev(&r, 10, GYRE_FS_MOVED_TO, "b");
    ASSERT_EQ(r.ev[9].cookie, r.ev[10].cookie);
    ASSERT_NE(r.ev[9].cookie, r.ev[2].cookie);
    ASSERT_EQ(gyre_fswatch_stop(&r.w), 0);
    ASSERT_EQ(gyre_fswatch_stop(&r.w), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    test_loop_free(loop);
}

/* A watched file: changes to it have no name; removing it ends the watch. */
void test_fswatch_file(void)
{
    gyre_loop *loop = test_loop_new();
    char path[PATH_MAX], moved[PATH_MAX];
    struct rec_fs r;
    int fd;

    test_tmppath(path, sizeof path, "file");
    test_tmppath(moved, sizeof moved, "file-moved");
    write_file(path, "one");
    memset(&r, 0, sizeof r);
    ASSERT_EQ(gyre_fswatch_init(loop, &r.w), 0);
    ASSERT_EQ(gyre_fswatch_start(
                  &r.w, path, GYRE_FS_MODIFY | GYRE_FS_DELETE_SELF | GYRE_FS_MOVE_SELF, rec_fs_cb),
              0);
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_SYS(fd);
    test_write_bytes(fd, "two", 3);
    test_close(fd);
    test_run_until(loop, &r.calls, 1);
    assert_ev(&r, 0, GYRE_FS_MODIFY, "");
    ASSERT_SYS(rename(path, moved)); /* the watch follows the file */
    test_run_until(loop, &r.calls, 2);
    assert_ev(&r, 1, GYRE_FS_MOVE_SELF, "");
    ASSERT_SYS(unlink(moved));
    test_run_until(loop, &r.gone, 1);
    ASSERT_EQ(r.calls, 4);
    assert_ev(&r, 2, GYRE_FS_DELETE_SELF, "");
    assert_ev(&r, 3, GYRE_FS_GONE, "");
    /* Stopped by gyre: the loop has nothing left. */
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(gyre_fswatch_stop(&r.w), 0);
    test_loop_free(loop);
}

static int read_int_file(const char *path, int dflt)
{
    FILE *f = fopen(path, "re");
    int v = dflt;

    if (f != NULL) {
        if (fscanf(f, "%d", &v) != 1)
            v = dflt;
        fclose(f);
    }
    return v;
}

/* More events than fs.inotify.max_queued_events before the loop reads any:
 * exactly that many arrive, then one GYRE_FS_OVERFLOW. */
void test_fswatch_overflow(void)
{
    gyre_loop *loop = test_loop_new();
    int max = read_int_file("/proc/sys/fs/inotify/max_queued_events", 16384);
    char dir[PATH_MAX], f[PATH_MAX];
    struct rec_fs *r = calloc(1, sizeof *r);
    int i, fd;

    ASSERT_TRUE(r != NULL);
    if (max > 1000000)
        SKIP("fs.inotify.max_queued_events is too large to fill");
    test_tmppath(dir, sizeof dir, "flood");
    ASSERT_SYS(mkdir(dir, 0755));
    sub_path(f, sizeof f, dir, "f");
    ASSERT_EQ(gyre_fswatch_init(loop, &r->w), 0);
    ASSERT_EQ(gyre_fswatch_start(&r->w, dir, GYRE_FS_CREATE | GYRE_FS_DELETE, rec_fs_cb), 0);
    /* CREATE and DELETE alternate, so the kernel merges none of them. */
    for (i = 0; i < max / 2 + 100; i++) {
        fd = open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ASSERT_SYS(fd);
        test_close(fd);
        ASSERT_SYS(unlink(f));
    }
    test_loop_guard(loop, SEC(60));
    test_run_until(loop, &r->overflows, 1);
    test_run_nowait(loop, 5);
    ASSERT_EQ(r->overflows, 1);
    ASSERT_EQ(r->calls, max + 1);
    /* The watch still works after the overflow. */
    write_file(f, "");
    test_run_until(loop, &r->calls, max + 2);
    ASSERT_EQ(r->overflows, 1);
    ASSERT_EQ(gyre_fswatch_stop(&r->w), 0);
    free(r);
    test_loop_free(loop);
}

/* The callback stops its watch and frees it at the second of several
 * events already read in one batch: nothing more is delivered. */
void test_fswatch_stop_in_cb(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_fs *r = calloc(1, sizeof *r);
    char dir[PATH_MAX], f[PATH_MAX];
    int i;

    ASSERT_TRUE(r != NULL);
    test_tmppath(dir, sizeof dir, "stop");
    ASSERT_SYS(mkdir(dir, 0755));
    ASSERT_EQ(gyre_fswatch_init(loop, &r->w), 0);
    ASSERT_EQ(gyre_fswatch_start(&r->w, dir, GYRE_FS_CREATE, rec_fs_cb), 0);
    for (i = 0; i < 5; i++) {
        char name[16];

        snprintf(name, sizeof name, "f%d", i);
        sub_path(f, sizeof f, dir, name);
        write_file(f, "");
    }
    r->stop_at = 2;
    r->heap = 1;
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    /* r is freed; the loop returned because nothing is active. */
    test_loop_free(loop);
}

void test_fswatch_unref(void)
{
    gyre_loop *loop = test_loop_new();
    struct rec_fs r;

    memset(&r, 0, sizeof r);
    ASSERT_EQ(gyre_fswatch_init(loop, &r.w), 0);
    gyre_fswatch_unref(&r.w);
    ASSERT_EQ(gyre_fswatch_start(&r.w, test_tmpdir(), GYRE_FS_CREATE, rec_fs_cb), 0);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    gyre_fswatch_ref(&r.w);
    ASSERT_EQ(gyre_loop_alive(loop), 1);
    gyre_fswatch_unref(&r.w);
    ASSERT_EQ(gyre_loop_alive(loop), 0);
    ASSERT_EQ(gyre_loop_free(loop) < 0, 1); /* still active */
    ASSERT_EQ(gyre_fswatch_stop(&r.w), 0);
    test_loop_free(loop);
}

void test_fswatch_bad_args(void)
{
    gyre_loop *loop = test_loop_new();
    char missing[PATH_MAX];
    struct rec_fs r;

    memset(&r, 0, sizeof r);
    test_tmppath(missing, sizeof missing, "missing");
    ASSERT_EQ(gyre_fswatch_init(NULL, &r.w), -EINVAL);
    ASSERT_EQ(gyre_fswatch_init(loop, NULL), -EINVAL);
    ASSERT_EQ(gyre_fswatch_init(loop, &r.w), 0);
    ASSERT_EQ(gyre_fswatch_start(&r.w, test_tmpdir(), 0, rec_fs_cb), -EINVAL);
    ASSERT_EQ(gyre_fswatch_start(&r.w, test_tmpdir(), GYRE_FS_OVERFLOW, rec_fs_cb), -EINVAL);
    ASSERT_EQ(gyre_fswatch_start(&r.w, test_tmpdir(), GYRE_FS_CREATE, NULL), -EINVAL);
    ASSERT_EQ(gyre_fswatch_start(&r.w, NULL, GYRE_FS_CREATE, rec_fs_cb), -EINVAL);
    ASSERT_EQ(gyre_fswatch_start(&r.w, missing, GYRE_FS_CREATE, rec_fs_cb), -ENOENT);
    ASSERT_EQ(gyre_fswatch_stop(&r.w), 0);
    ASSERT_EQ(gyre_fswatch_start(&r.w, test_tmpdir(), GYRE_FS_ALL, rec_fs_cb), 0);
    ASSERT_EQ(gyre_fswatch_start(&r.w, test_tmpdir(), GYRE_FS_ALL, rec_fs_cb), -EBUSY);
    ASSERT_EQ(gyre_fswatch_stop(&r.w), 0);
    ASSERT_EQ(r.calls, 0);
    test_loop_free(loop);
}
