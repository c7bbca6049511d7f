/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* log.c: gyre-http's logs, see log.h.
 *
 * Invariants: at most one write op in flight per log, always of the half
 * that is not filling (1 - fill); a half is handed to the kernel whole, and
 * a short write keeps the rest at the front of that half for the next
 * flush, so lines are never split or reordered. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static void flush(gyre_hook *h);

static int open_path(const char *path)
{
    int fd;

    if (strcmp(path, "-") == 0)
        fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    else
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int http_log_open(http_log *l, gyre_loop *loop, const char *path, const char *name)
{
    int rc;

    memset(l, 0, offsetof(http_log, buf));
    l->loop = loop;
    l->path = path;
    l->name = name;
    l->fd = l->old_fd = -1;
    if (path == NULL)
        return 0;
    rc = open_path(path);
    if (rc < 0)
        return rc;
    l->fd = rc;
    l->op.data = l;
    l->hook.base.data = l;
    if ((rc = gyre_hook_init(loop, &l->hook, GYRE_HOOK_PREPARE)) < 0 ||
        (rc = gyre_hook_start(&l->hook, flush)) < 0) {
        close(l->fd);
        l->fd = -1;
        return rc;
    }
    /* The hook alone must not keep the loop running. */
    gyre_handle_unref(&l->hook.base);
    return 0;
}

static int append(http_log *l, const char *fmt, va_list ap)
{
    uint32_t *len = &l->len[l->fill];
    size_t room = HTTP_LOG_BUF - *len;
    int n = vsnprintf(l->buf[l->fill] + *len, room, fmt, ap);

    /* n + 1: the newline takes the place of vsnprintf's NUL. */
    if (n < 0 || (size_t)n + 1 > room)
        return -1;
    l->buf[l->fill][*len + (uint32_t)n] = '\n';
    *len += (uint32_t)n + 1;
    return 0;
}

static int append_note(http_log *l, ...)
{
    va_list ap;
    int rc;

    va_start(ap, l);
    rc = append(l, "gyre-http: %s: %llu lines dropped (the log could not keep up)", ap);
    va_end(ap);
    return rc;
}

void http_log_printf(http_log *l, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (l->fd < 0)
        return;
    if (l->dropped > 0) {
        if (append_note(l, l->name, (unsigned long long)l->dropped) != 0) {
            l->dropped++;
            l->dropped_total++;
            return;
        }
        l->dropped = 0;
    }
    va_start(ap, fmt);
    rc = append(l, fmt, ap);
    va_end(ap);
    if (rc != 0) {
        l->dropped++;
        l->dropped_total++;
        return;
    }
    l->lines++;
}

static void on_written(gyre_op *op)
{
    http_log *l = op->data;
    uint32_t half = 1 - l->fill;

    l->busy = 0;
    if (l->old_fd >= 0) {
        /* The reopen waited for this write to the old file. */
        close(l->old_fd);
        l->old_fd = -1;
    }
    if (op->result > 0 && (uint32_t)op->result < l->len[half]) {
        memmove(l->buf[half], l->buf[half] + op->result, l->len[half] - (uint32_t)op->result);
        l->len[half] -= (uint32_t)op->result;
        return;
    }
    /* Written whole, or failed (a full disk): the lines are lost either
     * way, and a log must not stop the server. */
    l->len[half] = 0;
}

static void flush(gyre_hook *h)
{
    http_log *l = h->base.data;
    uint32_t half;

    if (l->busy || l->fd < 0)
        return;
    half = 1 - l->fill;
    if (l->len[half] == 0) {
        if (l->len[l->fill] == 0)
            return;
        l->fill = (uint8_t)half;
        half = 1 - l->fill;
    }
    gyre_op_write(&l->op, l->fd, l->buf[half], l->len[half], GYRE_OFF_CUR);
    l->busy = gyre_submit(l->loop, &l->op, on_written) == 0;
    if (!l->busy)
        l->len[half] = 0;
}

int http_log_reopen(http_log *l)
{
    int fd;

    if (l->fd < 0 || strcmp(l->path, "-") == 0)
        return 0;
    fd = open_path(l->path);
    if (fd < 0)
        return fd;
    if (l->busy && l->old_fd < 0) {
        /* The half in flight finishes in the old file, closed then; its
         * unwritten rest (after a short write) goes to the new one. */
        l->old_fd = l->fd;
    } else {
        close(l->fd);
    }
    l->fd = fd;
    return 0;
}

void http_log_close(http_log *l)
{
    uint32_t i;

    if (l->fd < 0)
        return;
    for (i = 0; i < 2; i++) {
        uint32_t half = l->fill ^ 1 ^ i, off = 0; /* the older half first */

        while (off < l->len[half]) {
            ssize_t n = write(l->fd, l->buf[half] + off, l->len[half] - off);

            if (n <= 0)
                break;
            off += (uint32_t)n;
        }
        l->len[half] = 0;
    }
    gyre_hook_stop(&l->hook);
    close(l->fd);
    l->fd = -1;
}
