/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* log.h: gyre-http's access and error logs, written without ever blocking
 * the loop or allocating per line.
 *
 * A log formats lines into the filling half of a double buffer; once per
 * loop iteration (a prepare hook) the filled half goes out with one
 * gyre_op_write while the other half fills. A line that finds no room is
 * dropped and counted, and the next line that fits is preceded by a line
 * saying how many were dropped: a log that cannot keep up costs lines,
 * never latency. A disabled log (path NULL) is a flag test: no formatting,
 * no hook, no system call. */
#ifndef GYRE_HTTP_LOG_H
#define GYRE_HTTP_LOG_H

#include <stdint.h>

#include <gyre.h>

/* Each half of a log's buffer. */
#define HTTP_LOG_BUF 65536

typedef struct http_log {
    gyre_loop *loop;
    const char *path; /* NULL: off; "-": stderr (never reopened) */
    const char *name; /* in messages: "access log", "error log" */
    int fd;
    int old_fd;       /* replaced by a reopen while a write was in flight */
    uint8_t busy;     /* the write op is in flight */
    uint8_t fill;     /* the half being filled */
    uint32_t len[2];  /* bytes in each half; the other half's are in flight */
    uint64_t dropped; /* lines dropped since the last note */
    uint64_t dropped_total;
    uint64_t lines;
    gyre_op op;
    gyre_hook hook;
    char buf[2][HTTP_LOG_BUF];
} http_log;

/* Opens path for appending ("-" is stderr; NULL leaves the log off).
 * Returns 0 or -errno. Call before the loop runs. */
int http_log_open(http_log *l, gyre_loop *loop, const char *path, const char *name);

/* 1 if the log is on: test this before formatting anything. */
static inline int http_log_on(const http_log *l)
{
    return l->fd >= 0;
}

/* Appends one line (fmt has no newline; it is added), or drops it. */
void http_log_printf(http_log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens the path again (after a rename by logrotate) and writes there from
 * now on; the old file gets what was already in flight. On failure the old
 * file is kept and -errno returned. */
int http_log_reopen(http_log *l);

/* Writes what is buffered synchronously (at exit, after the loop) and
 * closes the file. */
void http_log_close(http_log *l);

#endif
