/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* server.c: gyre-http, an HTTP/1.1 server on gyre's operations, and the
 * server gyre-bench's http scenario measures against nginx.
 *
 *   gyre-http --port P [--backend auto|uring|epoll|poll|select] [--root DIR]
 *             [--exit-after-clients N] [--no-openat2] [--max-body BYTES]
 *             [--lingering-time T] [--lingering-timeout T]
 *             [--header-timeout T] [--body-timeout T] [--send-timeout T]
 *             [--keepalive-timeout T] [--keepalive-requests N]
 *             [--min-rate BYTES] [--min-rate-grace T] [--max-conns N]
 *             [--max-conns-per-ip N] [--shutdown-timeout T]
 *             [--access-log FILE|-] [--error-log FILE|-|off] [--user NAME]
 *             [--version]
 *
 * Listens on 127.0.0.1:P (0: a port the kernel picks, printed on stdout). GET (or HEAD, or POST) /
 * answers a fixed body; with --root DIR any other path is a file under DIR (GET and HEAD), else
 * 404. Requests are parsed by parser.c; this file is the connection
 * machinery around it.
 *
 * Per connection: one multishot recv drawing from a shared buffer pool, one
 * send at a time from the connection's output buffer, and while a file is
 * being served one read at a time from the file into that same buffer
 * (after what is queued to go out). Nothing is allocated per request or per
 * connection: connections come from a slab made at start, with their input
 * and output buffers inside.
 *
 * Input: a received chunk is parsed where it lies in its pool buffer; only a
 * request split across chunks is copied, into the connection's input buffer
 * (HTTP_MAX_HEAD bytes, which the parser's limit makes enough). Pipelined
 * requests are answered in order: their responses are appended to the
 * output buffer and leave in one send. A chunk that cannot be looked at yet
 * (the output buffer is full, or a file response is going out) waits in the
 * connection's FIFO of pool buffers; past CONN_MAX_HELD such buffers (or two
 * when the pool is down to its last eighth) the recv is cancelled, so one
 * client that sends without reading cannot drain the pool for everyone, and
 * it is armed again once the FIFO is empty.
 *
 * Deadlines: every phase has one, checked by one sweep timer (on_sweep):
 * the head within --header-timeout of its first byte (of the accept for a
 * connection's first request) and, after --min-rate-grace, at no less than
 * --min-rate bytes a second, so a slowloris trickle is cut and not only a
 * silent client; the body and the response must progress every
 * --body-timeout and --send-timeout; between requests a connection lives
 * --keepalive-timeout, and at most --keepalive-requests requests. With
 * every slot (--max-conns) taken, the connection waiting longest for a
 * request is evicted for the newcomer, as nginx reuses idle keep-alive
 * connections. --max-conns-per-ip caps one address. Accepting goes
 * through gyre_listener, which backs off when descriptors run out. Each
 * cut, refusal, 500 and exhaustion is counted (printed at exit) and has
 * an error-log line; see log.h for the logs (SIGUSR1 reopens them).
 *
 * Bodies: Content-Length bodies and chunked bodies (decoded by
 * http_chunked_feed) are read and discarded; any other transfer coding is
 * 501. A body over --max-body (1 MiB by default) is 413: at once when
 * Content-Length says so, without inviting it. While a body is read, its
 * response is held in the output buffer (hold_mark), so a chunked body that
 * turns out malformed or too large gets the error as its one final
 * response. "Expect: 100-continue" (HTTP/1.1 only) gets its interim
 * response when the answer depends on the body (POST /); otherwise the
 * answer goes at once and the connection closes without reading the body.
 *
 * Files carry an ETag ("mtime-size" in hex, as nginx) and Last-Modified;
 * If-None-Match (which takes precedence) and If-Modified-Since give 304;
 * one byte range gives 206 (several are answered with the whole file, an
 * unsatisfiable one 416), kept only while If-Range matches.
 *
 * Files: the path is percent-decoded and opened with openat2(root,
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) (Linux 5.6), so neither ".." nor
 * a symlink can leave the root: the kernel answers EXDEV, which is 403.
 * Where openat2 is ENOSYS (or with --no-openat2, which the tests use to
 * cover it), any ".." segment is 403 and the path is walked one component at
 * a time with O_NOFOLLOW, so every symlink is refused. The open runs on the
 * loop thread (a path lookup, like nginx's); the bytes go through
 * gyre_op_read into the output buffer and out with gyre_op_send, which
 * every backend carries (gyre has no splice or sendfile op, and a sendfile
 * on the pool would block a worker on a slow client).
 *
 * Closing: a malformed request gets its 4xx and then the connection
 * closes, as does a request that asks for it (Connection: close, or
 * HTTP/1.0 without keep-alive). After the last response the write side is
 * shut down and input is drained before close, so the client is not sent a
 * reset (which would destroy the response in its receive queue) for request
 * bytes it had already sent; draining stops after a silence of
 * --lingering-timeout (5 s) or --lingering-time (30 s) in all, as nginx's
 * lingering close does, so a client cannot hold the slot by trickling.
 *
 * SIGTERM, SIGINT or SIGQUIT: stop accepting, let each connection finish
 * the request it is in (its body included) and the response it is sending,
 * close it; after --shutdown-timeout (2 s) whatever is left is cancelled.
 * Further signals change nothing. Exit status 0 once the loop has nothing
 * left. --user NAME drops root after the bind and the opens.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <gyre.h>

#include "log.h"
#include "parser.h"

#define HTTP_BUF_SIZE 4096
#define HTTP_BUFS 2048 /* a power of two, as gyre_bufpool_new requires */
#define HTTP_MAX_CONNS 1024
#define OUT_CAP 16384
/* Room one response head (with an error body) always fits in. */
#define RESP_ROOM 1024
/* The least worth reading a file into. */
#define FILE_READ_MIN 4096
#define CONN_MAX_HELD 8
/* Below this many free pool buffers, a connection holding two or more is
 * paused too: CONN_MAX_HELD x 1,024 connections is four times the pool,
 * and ~230 pipeliners that never read drained it at 9 buffers each. */
#define POOL_RESERVE (HTTP_BUFS / 8)
#define MS_NS (1000ull * 1000)
/* The lingering close, bounded like nginx's: at most LINGER_TIMEOUT_NS
 * between two reads and LINGER_TIME_NS in all (lingering_timeout and
 * lingering_time). */
#define LINGER_TIMEOUT_NS (5000 * MS_NS)
#define LINGER_TIME_NS (30000 * MS_NS)
/* Request bodies larger than this are 413 (nginx's client_max_body_size). */
#define MAX_BODY_DEFAULT (1024ull * 1024)
#define STOP_GRACE_NS (2000ull * 1000 * 1000)
/* Deadlines per phase, nginx's defaults: client_header_timeout and
 * client_body_timeout 60 s, send_timeout 60 s, keepalive_timeout 75 s,
 * keepalive_requests 1000. The minimum header rate is Apache
 * mod_reqtimeout's MinRate=500, enforced after MIN_RATE_GRACE_NS (its
 * "header=20-40" starts counting after 20 s; 10 s here). */
#define HEADER_TIMEOUT_NS (60000 * MS_NS)
#define BODY_TIMEOUT_NS (60000 * MS_NS)
#define SEND_TIMEOUT_NS (60000 * MS_NS)
#define KEEPALIVE_TIMEOUT_NS (75000 * MS_NS)
#define KEEPALIVE_REQUESTS 1000
#define MIN_RATE_DEFAULT 500
#define MIN_RATE_GRACE_NS (10000 * MS_NS)
/* Accepted connections waiting for the slot an eviction is freeing. */
#define PENDING_MAX 64
/* Header-phase connections evicted each time accepting runs out of
 * descriptors. */
#define EXHAUST_EVICT 64
#define NONE UINT32_MAX

/* The body of GET /; gyre-bench gives nginx the same. */
#define FIXED_BODY "Hello, World!\n"

typedef struct conn {
    int fd;
    int file_fd; /* a file response going out, or -1 */
    uint64_t file_off, file_left;
    uint64_t body_left;   /* Content-Length body bytes still to discard */
    uint64_t body_total;  /* chunked data bytes seen, against max_body */
    uint64_t linger_end;  /* gyre_now() past which lingering stops */
    uint64_t last_ns;     /* the last bytes received or sent (gyre_now()) */
    uint64_t head_ns;     /* when the request head being read began */
    uint64_t head_bytes;  /* bytes received since head_ns, for --min-rate */
    uint64_t resp_len;    /* the last response's Content-Length, for the access log */
    uint32_t requests;    /* answered on this connection */
    uint32_t resp_status; /* the last response's status, for the access log */
    uint32_t ip;          /* the client's IPv4 address (network order), if ip_known */
    http_chunked chunked; /* with body_chunked */
    gyre_op recv, send, read;
    gyre_timer linger;
    uint32_t head, tail;       /* FIFO of pool buffers not yet parsed */
    uint32_t held;             /* buffers in the FIFO */
    uint32_t in_len;           /* bytes in `in` */
    uint32_t out_off, out_len; /* out[out_off..out_len) is still to send */
    /* While a request body is read, its response (and all after it) waits
     * at out[hold_mark..): a body that turns out bad replaces it with the
     * error, so the client gets one final response. */
    uint32_t hold_mark;
    uint8_t recv_busy, send_busy, read_busy;
    uint8_t body_chunked;
    uint8_t holding;     /* a body is being read: out[hold_mark..) waits */
    uint8_t paused;      /* recv cancelled for back-pressure */
    uint8_t peer_eof;    /* the client has shut down writing */
    uint8_t close_after; /* close once the queued output is sent */
    uint8_t lingering;   /* write side shut; draining until EOF or the timer */
    uint8_t ip_known;
    uint8_t closing, closed, in_use;
    char in[HTTP_MAX_HEAD];
    char out[OUT_CAP];
} conn;

/* What a pool buffer holds while a connection has it. */
typedef struct chunk {
    uint32_t off, len, next;
} chunk;

static gyre_loop *loop;
static gyre_bufpool *pool;
static chunk chunks[HTTP_BUFS];
static conn conns[HTTP_MAX_CONNS];
static uint32_t free_conns[HTTP_MAX_CONNS], n_free;
static gyre_listener listener;
static gyre_signal sig_term, sig_int, sig_quit, sig_usr1;
static gyre_timer stop_timer, sweep_timer;
static int listen_fd = -1, root_fd = -1, use_openat2 = 1, stopping, failed;
static long exit_after, clients_done;
static uint64_t max_body = MAX_BODY_DEFAULT;
static uint64_t linger_timeout_ns = LINGER_TIMEOUT_NS, linger_time_ns = LINGER_TIME_NS;
static uint64_t header_timeout_ns = HEADER_TIMEOUT_NS, body_timeout_ns = BODY_TIMEOUT_NS;
static uint64_t send_timeout_ns = SEND_TIMEOUT_NS, keepalive_timeout_ns = KEEPALIVE_TIMEOUT_NS;
static uint64_t min_rate = MIN_RATE_DEFAULT, min_rate_grace_ns = MIN_RATE_GRACE_NS;
static uint64_t stop_grace_ns = STOP_GRACE_NS;
static uint32_t keepalive_requests = KEEPALIVE_REQUESTS, max_conns = HTTP_MAX_CONNS, max_per_ip;
static int pending[PENDING_MAX], n_pending;
static http_log access_log, error_log;

/* Why a connection was cut, each counted and logged. */
enum {
    CUT_HEADER,
    CUT_MIN_RATE,
    CUT_KEEPALIVE,
    CUT_BODY,
    CUT_SEND,
    CUT_EVICTED,
    CUT_REASONS
};
static const char *const cut_why[CUT_REASONS] = {
    "client timed out sending the request head (header timeout)",
    "client sent the request head below the minimum rate (min rate)",
    "keep-alive connection idle too long (keep-alive timeout)",
    "client timed out sending the request body (body timeout)",
    "client timed out reading the response (send timeout)",
    "idle connection evicted: every connection slot is taken",
};
static uint64_t cut_count[CUT_REASONS];
static uint64_t n_accepted, n_refused, n_per_ip, n_paused;

/* The fixed response as HTTP/1.1 keep-alive sends it, and the Date header
 * every response carries, both remade once a second. */
static char date_hdr[64];
static uint32_t date_len;
static char fixed_resp[256];
static uint32_t fixed_len;
static time_t date_sec = -1;

/* The decoded path of the request being handled (one at a time). */
static char path_buf[HTTP_MAX_TARGET + 1];

static void shut_down(void);
static void conn_process(conn *c);
static void conn_check_finish(conn *c);
static void on_recv(gyre_op *op);
static void on_send(gyre_op *op);
static void on_file_read(gyre_op *op);

/* --- output --- */

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, s) put(p, s, sizeof(s) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;

    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static void refresh_date(void)
{
    time_t now = time(NULL);
    struct tm tm;
    char *p;

    if (now == date_sec)
        return;
    date_sec = now;
    gmtime_r(&now, &tm);
    date_len =
        (uint32_t)strftime(date_hdr, sizeof date_hdr, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    p = PUT_LIT(fixed_resp, "HTTP/1.1 200 OK\r\nServer: gyre-http\r\n");
    p = put(p, date_hdr, date_len);
    p = PUT_LIT(p, "Content-Type: text/plain\r\nContent-Length: ");
    p = put_u64(p, sizeof FIXED_BODY - 1);
    p = PUT_LIT(p, "\r\n\r\n" FIXED_BODY);
    fixed_len = (uint32_t)(p - fixed_resp);
}

/* --- logs --- */

/* The client's address of c, looked up once (a system call per
 * connection, and only when a log line or the per-IP cap needs it). */
static const char *conn_addr(conn *c, char *out, size_t len)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;

    if (!c->ip_known && getpeername(c->fd, (struct sockaddr *)&sa, &sl) == 0 &&
        sa.sin_family == AF_INET) {
        c->ip = sa.sin_addr.s_addr;
        c->ip_known = 1;
    }
    if (!c->ip_known || !inet_ntop(AF_INET, &c->ip, out, (socklen_t)len))
        snprintf(out, len, "-");
    return out;
}

/* Wall-clock stamps for log lines, remade once a second: the error log's
 * "2026/12/07 15:42:27" and the access log's "07/Dec/2026:15:42:27 +0000". */
static char err_stamp[32], clf_stamp[40];
static time_t stamp_sec = -1;

static void refresh_stamps(void)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now == stamp_sec)
        return;
    stamp_sec = now;
    gmtime_r(&now, &tm);
    strftime(err_stamp, sizeof err_stamp, "%Y/%m/%d %H:%M:%S", &tm);
    strftime(clf_stamp, sizeof clf_stamp, "%d/%b/%Y:%H:%M:%S +0000", &tm);
}

/* An error-log line about the server itself; level "error" or "notice". */
static void log_server(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_server(const char *level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!http_log_on(&error_log))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    refresh_stamps();
    http_log_printf(&error_log, "%s [%s] %s", err_stamp, level, msg);
}

/* An error-log line about one client. */
static void log_conn(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_conn(conn *c, const char *fmt, ...)
{
    char msg[512], addr[INET_ADDRSTRLEN];
    va_list ap;

    if (!http_log_on(&error_log))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    refresh_stamps();
    http_log_printf(&error_log, "%s [info] client %s: %s", err_stamp,
                    conn_addr(c, addr, sizeof addr), msg);
}

/* The access log's line for req, in the common log format. */
static void log_access(conn *c, const http_request *req)
{
    char addr[INET_ADDRSTRLEN];

    refresh_stamps();
    http_log_printf(&access_log, "%s - - [%s] \"%.*s %.*s HTTP/1.%d\" %u %llu",
                    conn_addr(c, addr, sizeof addr), clf_stamp, (int)req->method_len,
                    req->method_name, (int)req->target_len, req->target, req->version_minor,
                    c->resp_status, (unsigned long long)c->resp_len);
}

/* How the response leaves the connection. */
enum {
    CONN_KEEP_11 = 0, /* HTTP/1.1 keep-alive: nothing to say */
    CONN_KEEP_10,     /* HTTP/1.0 keep-alive: must say so */
    CONN_CLOSE
};

/* put_head's length for a response that has none (304). */
#define NO_LENGTH UINT64_MAX

/* Appends a response head; the caller made sure of RESP_ROOM. */
static void put_head(conn *c, int status, uint64_t length, const char *type, int how,
                     const char *extra)
{
    char *p = c->out + c->out_len;
    const char *reason = http_reason(status);

    c->resp_status = (uint32_t)status;
    c->resp_len = length == NO_LENGTH ? 0 : length;
    refresh_date();
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put_u64(p, (uint64_t)status);
    *p++ = ' ';
    p = put(p, reason, strlen(reason));
    p = PUT_LIT(p, "\r\nServer: gyre-http\r\n");
    p = put(p, date_hdr, date_len);
    if (type) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, type, strlen(type));
        p = PUT_LIT(p, "\r\n");
    }
    if (length != NO_LENGTH) {
        p = PUT_LIT(p, "Content-Length: ");
        p = put_u64(p, length);
        p = PUT_LIT(p, "\r\n");
    }
    if (how == CONN_CLOSE)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (how == CONN_KEEP_10)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    if (extra)
        p = put(p, extra, strlen(extra));
    p = PUT_LIT(p, "\r\n");
    c->out_len = (uint32_t)(p - c->out);
}

/* A short response whose body is its status line: "404 Not Found\n". */
static void put_status(conn *c, int status, int how, const char *extra, int head_only)
{
    const char *reason = http_reason(status);
    uint64_t len = 4 + strlen(reason) + 1;
    char *p;

    put_head(c, status, len, "text/plain", how, extra);
    if (head_only)
        return;
    p = put_u64(c->out + c->out_len, (uint64_t)status);
    *p++ = ' ';
    p = put(p, reason, strlen(reason));
    *p++ = '\n';
    c->out_len = (uint32_t)(p - c->out);
}

/* A request that cannot be framed or answered further: its error, then the
 * connection closes. */
static void respond_fatal(conn *c, int status)
{
    log_conn(c, "request refused: %d %s", status, http_reason(status));
    put_status(c, status, CONN_CLOSE, NULL, 0);
    c->close_after = 1;
}

/* --- connections --- */

static void put_chunks(conn *c)
{
    while (c->head != NONE) {
        uint32_t id = c->head;

        c->head = chunks[id].next;
        gyre_bufpool_put(pool, id);
    }
    c->held = 0;
}

static void conn_start(int fd, uint32_t ip, int ip_known);

static void conn_release(conn *c)
{
    c->in_use = 0;
    free_conns[n_free++] = (uint32_t)(c - conns);
    if (exit_after > 0 && ++clients_done == exit_after && !stopping)
        shut_down();
    if (n_pending > 0 && !stopping) {
        /* The slot an eviction freed goes to the oldest waiting client. */
        int fd = pending[0];

        memmove(pending, pending + 1, (size_t)--n_pending * sizeof pending[0]);
        conn_start(fd, 0, 0);
    }
}

static void on_close(gyre_op *op)
{
    conn_release(op->data);
}

static void conn_close_if_idle(conn *c)
{
    if (!c->closing || c->closed || c->recv_busy || c->send_busy || c->read_busy)
        return;
    c->closed = 1;
    put_chunks(c);
    if (c->file_fd >= 0)
        close(c->file_fd);
    c->file_fd = -1;
    gyre_timer_stop(&c->linger);
    /* Through gyre, not close(2): on the readiness backends gyre must drop
     * the fd from its table before the number can come back from accept
     * (a close(2) here, with the accept in the same batch, left the new
     * connection unwatched on epoll). The send op is idle by now. */
    gyre_op_close(&c->send, c->fd);
    if (gyre_submit(loop, &c->send, on_close) != 0) {
        close(c->fd);
        conn_release(c);
    }
}

/* Ends c: everything in flight is cancelled, and c is closed once it has
 * all completed. */
static void conn_end(conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->recv_busy)
        (void)gyre_cancel(loop, &c->recv);
    if (c->send_busy)
        (void)gyre_cancel(loop, &c->send);
    if (c->read_busy)
        (void)gyre_cancel(loop, &c->read);
    conn_close_if_idle(c);
}

static void arm_recv(conn *c)
{
    gyre_op_recv_multishot(&c->recv, c->fd, pool);
    c->recv_busy = gyre_submit(loop, &c->recv, on_recv) == 0;
    if (!c->recv_busy)
        conn_end(c);
}

static void kick_send(conn *c)
{
    uint32_t end = c->holding ? c->hold_mark : c->out_len;

    if (c->send_busy || c->closing || c->out_off >= end)
        return;
    gyre_op_send(&c->send, c->fd, c->out + c->out_off, end - c->out_off, MSG_NOSIGNAL);
    c->send_busy = gyre_submit(loop, &c->send, on_send) == 0;
    if (!c->send_busy)
        conn_end(c);
}

/* Makes room at the end of the output buffer, when nothing in flight points
 * into it. */
static void out_compact(conn *c)
{
    if (c->send_busy || c->read_busy || c->out_off == 0)
        return;
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    if (c->holding)
        c->hold_mark -= c->out_off;
    c->out_off = 0;
}

static void pump_file(conn *c)
{
    uint64_t want;

    /* Not while held: a bad body truncates the output back to hold_mark,
     * which a read in flight would write past. */
    if (c->file_fd < 0 || c->read_busy || c->closing || c->holding)
        return;
    if (OUT_CAP - c->out_len < FILE_READ_MIN)
        out_compact(c);
    if (OUT_CAP - c->out_len < FILE_READ_MIN)
        return; /* on_send calls again */
    want = OUT_CAP - c->out_len;
    if (want > c->file_left)
        want = c->file_left;
    gyre_op_read(&c->read, c->file_fd, c->out + c->out_len, (uint32_t)want, c->file_off);
    c->read_busy = gyre_submit(loop, &c->read, on_file_read) == 0;
    if (!c->read_busy)
        conn_end(c);
}

static void on_file_read(gyre_op *op)
{
    conn *c = op->data;

    c->read_busy = 0;
    if (c->closing) {
        conn_close_if_idle(c);
        return;
    }
    if (op->result <= 0) {
        /* The head promised file_left more bytes; an error or a file that
         * shrank leaves no honest way on but to close. */
        conn_end(c);
        return;
    }
    c->out_len += (uint32_t)op->result;
    c->file_off += (uint64_t)op->result;
    c->file_left -= (uint64_t)op->result;
    if (c->file_left == 0) {
        close(c->file_fd);
        c->file_fd = -1;
        conn_process(c); /* pipelined requests waited for this file */
    } else {
        pump_file(c);
    }
    kick_send(c);
    conn_check_finish(c);
}

/* Cuts c for a reason of cut_why[]: counted, logged, closed at once (no
 * lingering: the client is the one not keeping up). */
static void conn_cut(conn *c, int why)
{
    cut_count[why]++;
    log_conn(c, "%s", cut_why[why]);
    conn_end(c);
}

/* What c is waiting for. */
enum {
    PHASE_NONE, /* busy on its own (a file read), closing, or lingering */
    PHASE_HEADER,
    PHASE_BODY,
    PHASE_SEND,
    PHASE_KEEPALIVE
};

static int conn_phase(const conn *c)
{
    if (c->closing || c->lingering)
        return PHASE_NONE;
    if (c->send_busy)
        return PHASE_SEND;
    if (c->body_left > 0 || c->body_chunked)
        return c->peer_eof ? PHASE_NONE : PHASE_BODY;
    if (c->read_busy || c->file_fd >= 0 || c->out_off != c->out_len || c->peer_eof)
        return PHASE_NONE;
    if (c->in_len > 0 || c->head != NONE || c->requests == 0)
        return PHASE_HEADER;
    return PHASE_KEEPALIVE;
}

/* Which deadline c has missed at now, as CUT_*, or -1. The whole head must
 * arrive within header_timeout_ns of its first byte (of the accept, for a
 * connection's first request), and after min_rate_grace_ns at no less
 * than min_rate bytes a second on average, so that a client trickling a
 * byte now and then is cut long before the header timeout; the body and
 * the response must make progress every body_timeout_ns and
 * send_timeout_ns; a connection between requests lives keepalive_timeout_ns. */
static int conn_overdue(const conn *c, uint64_t now)
{
    uint64_t t;

    switch (conn_phase(c)) {
    case PHASE_HEADER:
        t = now - c->head_ns;
        if (header_timeout_ns > 0 && t >= header_timeout_ns)
            return CUT_HEADER;
        if (min_rate > 0 && t >= min_rate_grace_ns && c->head_bytes < min_rate * (t / MS_NS) / 1000)
            return CUT_MIN_RATE;
        return -1;
    case PHASE_BODY:
        return body_timeout_ns > 0 && now - c->last_ns >= body_timeout_ns ? CUT_BODY : -1;
    case PHASE_SEND:
        return send_timeout_ns > 0 && now - c->last_ns >= send_timeout_ns ? CUT_SEND : -1;
    case PHASE_KEEPALIVE:
        return keepalive_timeout_ns > 0 && now - c->last_ns >= keepalive_timeout_ns ? CUT_KEEPALIVE
                                                                                    : -1;
    default:
        return -1;
    }
}

/* One timer for every connection's deadlines, rather than a timer per
 * connection restarted on every read and write: the hot path only stores
 * gyre_now() (no heap operation per request), and a pass over the slab a
 * few times per shortest timeout costs little next to a thousand timer
 * updates per second. Deadlines are honoured to within one period. */
static void on_sweep(gyre_timer *t)
{
    uint64_t now = gyre_now(loop);
    uint32_t i;
    int why;

    (void)t;
    for (i = 0; i < max_conns; i++)
        if (conns[i].in_use && (why = conn_overdue(&conns[i], now)) >= 0)
            conn_cut(&conns[i], why);
}

/* The period of on_sweep: a quarter of the shortest deadline, between
 * 10 ms and 1 s. */
static uint64_t sweep_period(void)
{
    uint64_t t[] = {header_timeout_ns, body_timeout_ns, send_timeout_ns, keepalive_timeout_ns,
                    min_rate > 0 ? min_rate_grace_ns : 0};
    uint64_t p = 1000 * MS_NS;
    size_t i;

    for (i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i] > 0 && t[i] / 4 < p)
            p = t[i] / 4;
    return p < 10 * MS_NS ? 10 * MS_NS : p;
}

/* Slots are full: ends the connection that has waited longest for a
 * request (idle keep-alive, or still sending its head; with header_only,
 * only the latter), as nginx reuses its idle keep-alive connections.
 * Returns 1 if one is on its way out. */
static int evict_oldest(int header_only)
{
    conn *oldest = NULL;
    uint64_t age = UINT64_MAX, a;
    uint32_t i;
    int ph;

    for (i = 0; i < max_conns; i++) {
        if (!conns[i].in_use)
            continue;
        ph = conn_phase(&conns[i]);
        if (ph != PHASE_HEADER && (ph != PHASE_KEEPALIVE || header_only))
            continue;
        a = ph == PHASE_HEADER ? conns[i].head_ns : conns[i].last_ns;
        if (a < age) {
            age = a;
            oldest = &conns[i];
        }
    }
    if (oldest == NULL)
        return 0;
    conn_cut(oldest, CUT_EVICTED);
    return 1;
}

static void on_linger(gyre_timer *t)
{
    conn_end(t->base.data);
}

/* (Re)starts the lingering timer after a read: linger_timeout_ns more,
 * but never past linger_end. */
static void linger_again(conn *c)
{
    uint64_t now = gyre_now(loop), wait = linger_timeout_ns;

    if (now >= c->linger_end) {
        conn_end(c);
        return;
    }
    if (wait > c->linger_end - now)
        wait = c->linger_end - now;
    if (gyre_timer_start(&c->linger, on_linger, wait, 0) != 0)
        conn_end(c);
}

/* The last response is out: shut the write side, drain what the client
 * still sends until its EOF, a silence of linger_timeout_ns or
 * linger_time_ns in all, then close. */
static void start_linger(conn *c)
{
    c->lingering = 1;
    put_chunks(c);
    c->in_len = 0;
    (void)shutdown(c->fd, SHUT_WR);
    c->linger_end = gyre_now(loop) + linger_time_ns;
    linger_again(c);
    if (c->closing)
        return;
    if (!c->recv_busy)
        arm_recv(c);
}

/* Closes c if it has nothing more to do. */
static void conn_check_finish(conn *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->peer_eof && (c->body_left > 0 || c->body_chunked) && c->head == NONE && c->in_len == 0) {
        /* The client stopped inside a body: the held response is not owed;
         * what came before it is sent first. */
        if (!c->send_busy && !c->read_busy && c->out_off >= c->hold_mark)
            conn_end(c);
        return;
    }
    if (c->send_busy || c->read_busy || c->file_fd >= 0 || c->out_len != c->out_off)
        return;
    if (c->close_after && !c->peer_eof && !stopping)
        start_linger(c);
    else if (c->close_after || c->peer_eof)
        conn_end(c);
}

/* --- requests --- */

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes the path of target[0..len) (up to '?') into path_buf,
 * without its leading slashes. Returns 0, or -1 for a bad escape or a NUL. */
static int decode_path(const char *target, uint32_t len)
{
    uint32_t i = 0, n = 0;
    int hi, lo;

    while (i < len && target[i] == '/')
        i++;
    for (; i < len && target[i] != '?' && target[i] != '#'; i++) {
        char ch = target[i];

        if (ch == '%') {
            if (i + 2 >= len || (hi = hex_digit(target[i + 1])) < 0 ||
                (lo = hex_digit(target[i + 2])) < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
            if (ch == '\0')
                return -1;
        }
        path_buf[n++] = ch;
    }
    path_buf[n] = '\0';
    return 0;
}

/* 1 if path has a ".." segment. */
static int has_dotdot(const char *path)
{
    const char *p = path;

    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);

        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 1;
        p += n;
        while (*p == '/')
            p++;
    }
    return 0;
}

/* Without openat2: one component at a time, never following a symlink
 * (O_NOFOLLOW on the last, O_PATH|O_DIRECTORY|O_NOFOLLOW on the others, so a
 * symlinked directory is ENOTDIR). Returns an fd or -errno. */
static int open_walk(char *path)
{
    int dir = root_fd, fd = -EINVAL;
    char *seg = path, *slash;

    for (;;) {
        while (*seg == '/')
            seg++;
        slash = strchr(seg, '/');
        if (slash)
            *slash = '\0';
        while (slash && slash[1] == '/')
            slash++;
        if (!slash || slash[1] == '\0') {
            /* "name/" names a directory, as the kernel's own lookup says
             * (ENOTDIR for a file): dropping the slash served
             * /index.html/. */
            fd = openat(dir, seg,
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (slash ? O_DIRECTORY : 0));
            fd = fd < 0 ? -errno : fd;
            break;
        }
        fd = openat(dir, seg, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            fd = -errno;
            break;
        }
        if (dir != root_fd)
            close(dir);
        dir = fd;
        seg = slash + 1;
    }
    if (dir != root_fd)
        close(dir);
    return fd;
}

/* Opens path beneath the root. Returns an fd or -errno. */
static int open_beneath(char *path)
{
    struct open_how how = {
        .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd;

    if (use_openat2) {
        /* O_NONBLOCK: a FIFO put under the root must not block the loop in
         * open(); it is cleared again for regular files (io_uring would
         * otherwise answer reads of uncached pages with EAGAIN). */
        fd = syscall(SYS_openat2, root_fd, path, &how, sizeof how);
        return fd < 0 ? -errno : (int)fd;
    }
    if (has_dotdot(path))
        return -EXDEV;
    return open_walk(path);
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html"},     {".txt", "text/plain"},        {".css", "text/css"},
        {".js", "text/javascript"}, {".json", "application/json"}, {".png", "image/png"},
        {".jpg", "image/jpeg"},     {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(path, '.');
    size_t i;

    for (i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* An HTTP-date (RFC 9110 5.6.7, IMF-fixdate) for t into out[30]. */
static void http_date(char *out, time_t t)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Whether the If-None-Match list v[0..len) names etag (weak comparison,
 * RFC 9110 8.8.3.2: a W/ prefix does not matter) or is "*". */
static int etag_listed(const char *v, uint32_t len, const char *etag, size_t etag_len)
{
    uint32_t i = 0;

    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        if (i < len && v[i] == '*')
            return 1;
        if (len - i >= 2 && v[i] == 'W' && v[i + 1] == '/')
            i += 2;
        if (len - i >= etag_len && memcmp(v + i, etag, etag_len) == 0 &&
            (len - i == etag_len || v[i + etag_len] == ',' || v[i + etag_len] == ' ' ||
             v[i + etag_len] == '\t'))
            return 1;
        while (i < len && v[i] != ',')
            i++;
    }
    return 0;
}

/* Parses a decimal at v[*i..len) into *out; 0, or -1 if there is none or it
 * is too long to be a file offset. */
static int range_num(const char *v, uint32_t len, uint32_t *i, uint64_t *out)
{
    uint32_t start = *i;
    uint64_t n = 0;

    while (*i < len && v[*i] >= '0' && v[*i] <= '9') {
        if (*i - start == 18)
            return -1;
        n = n * 10 + (uint64_t)(v[(*i)++] - '0');
    }
    *out = n;
    return *i > start ? 0 : -1;
}

/* What a Range header asks of a file of `size` bytes (RFC 9110 14.2): 1 with
 * [*first, *last] for one satisfiable range; 0 to ignore it (not bytes,
 * malformed, or several ranges: this server sends no multipart); -1 if
 * unsatisfiable (416). */
static int parse_range(const char *v, uint32_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
    uint32_t i = 6;
    uint64_t a, b;

    if (len < 7 || strncasecmp(v, "bytes=", 6) != 0 || memchr(v, ',', len) != NULL)
        return 0;
    if (v[i] == '-') {
        i++;
        if (range_num(v, len, &i, &b) != 0 || i != len)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (range_num(v, len, &i, &a) != 0 || i == len || v[i++] != '-')
        return 0;
    if (i == len) {
        b = UINT64_MAX;
    } else if (range_num(v, len, &i, &b) != 0 || i != len || b < a) {
        return 0;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 1;
}

/* The validators of a file: its ETag (nginx's form, "mtime-size" in hex)
 * and Last-Modified. */
typedef struct validators {
    char etag[48], date[32];
    size_t etag_len;
} validators;

/* Whether the conditional headers turn a 200 for this file into a 304
 * (RFC 9110 13.2.2): If-None-Match decides when present, If-Modified-Since
 * only when it is not. */
static int not_modified(const http_request *req, const struct stat *st, const validators *val)
{
    const char *v;
    uint32_t len;
    struct tm tm;
    char date[32];

    if ((v = http_header_get(req, "if-none-match", &len)) != NULL)
        return etag_listed(v, len, val->etag, val->etag_len);
    if ((v = http_header_get(req, "if-modified-since", &len)) != NULL && len < sizeof date) {
        memcpy(date, v, len);
        date[len] = '\0';
        memset(&tm, 0, sizeof tm);
        v = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        /* An invalid date is ignored, as RFC 9110 13.1.3 says. */
        if (v != NULL && *v == '\0')
            return st->st_mtime <= timegm(&tm);
    }
    return 0;
}

static void serve_file(conn *c, const http_request *req, int how)
{
    int head_only = req->method == HTTP_HEAD, fd, status, r;
    uint64_t size, first = 0, last = 0;
    char extra[256], *e;
    validators val;
    struct stat st;
    const char *v, *type;
    uint32_t len;

    if (decode_path(req->path, req->path_len) != 0) {
        respond_fatal(c, 400);
        return;
    }
    /* Before the open: the component walk cuts path_buf at its slashes
     * (which gave sub/a.txt the type of "sub" with --no-openat2). */
    type = content_type(path_buf);
    fd = open_beneath(path_buf);
    if (fd < 0) {
        /* EXDEV: resolution would leave the root (".." or a symlink);
         * ELOOP: a symlink where none may be followed; ENAMETOOLONG: a
         * name past NAME_MAX, which no file under the root can have. */
        status = fd == -ENOENT || fd == -ENOTDIR || fd == -ENAMETOOLONG          ? 404
                 : fd == -EXDEV || fd == -ELOOP || fd == -EACCES || fd == -EPERM ? 403
                                                                                 : 500;
        if (status == 500)
            log_conn(c, "500 opening \"%s\": %s", path_buf, strerror(-fd));
        put_status(c, status, how, NULL, head_only);
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, 0) != 0) {
        close(fd);
        put_status(c, 404, how, NULL, head_only);
        return;
    }
    size = (uint64_t)st.st_size;
    val.etag_len = (size_t)snprintf(val.etag, sizeof val.etag, "\"%llx-%llx\"",
                                    (unsigned long long)st.st_mtime, (unsigned long long)size);
    http_date(val.date, st.st_mtime);
    e = extra +
        snprintf(extra, sizeof extra, "ETag: %s\r\nLast-Modified: %s\r\n", val.etag, val.date);
    if (not_modified(req, &st, &val)) {
        close(fd);
        put_head(c, 304, NO_LENGTH, NULL, how, extra);
        return;
    }
    r = 0;
    /* Ranges are defined for GET only (RFC 9110 14.2); If-Range keeps the
     * range only while the client's copy is current: the same strong ETag
     * or exactly the Last-Modified date. */
    if (req->method == HTTP_GET && (v = http_header_get(req, "range", &len)) != NULL) {
        const char *ir;
        uint32_t ir_len;

        r = parse_range(v, len, size, &first, &last);
        if ((ir = http_header_get(req, "if-range", &ir_len)) != NULL &&
            !(ir_len == val.etag_len && memcmp(ir, val.etag, ir_len) == 0) &&
            !(ir_len == strlen(val.date) && memcmp(ir, val.date, ir_len) == 0))
            r = 0;
    }
    if (r < 0) {
        close(fd);
        snprintf(e, sizeof extra - (size_t)(e - extra), "Content-Range: bytes */%llu\r\n",
                 (unsigned long long)size);
        put_status(c, 416, how, extra, 0);
        return;
    }
    if (r > 0) {
        snprintf(e, sizeof extra - (size_t)(e - extra), "Content-Range: bytes %llu-%llu/%llu\r\n",
                 (unsigned long long)first, (unsigned long long)last, (unsigned long long)size);
        size = last - first + 1;
    } else {
        first = 0; /* parse_range may have set it for a range If-Range dropped */
        snprintf(e, sizeof extra - (size_t)(e - extra), "Accept-Ranges: bytes\r\n");
    }
    put_head(c, r > 0 ? 206 : 200, size, type, how, extra);
    if (head_only || size == 0) {
        close(fd);
        return;
    }
    c->file_fd = fd;
    c->file_off = first;
    c->file_left = size;
    pump_file(c);
}

/* Answers req (its response goes into the output buffer). Returns 1 if
 * its body is to be read (and the response is held until it has been), 0
 * if it has none or it is not wanted. */
static int handle_request(conn *c, const http_request *req)
{
    int how = !req->keep_alive ? CONN_CLOSE : req->version_minor == 0 ? CONN_KEEP_10 : CONN_KEEP_11;
    const char *path = req->path;
    uint32_t path_len = req->path_len;
    int is_root =
        path_len == 0 || path[0] == '?' || (path[0] == '/' && (path_len == 1 || path[1] == '?'));
    int get_head = req->method == HTTP_GET || req->method == HTTP_HEAD;
    int body = req->chunked || req->content_length > 0;

    /* nginx's keepalive_requests: a connection is not kept forever (it
     * bounds what one client's connection can pin, e.g. memory held by
     * its state). */
    if (++c->requests == keepalive_requests)
        how = CONN_CLOSE;
    if (body && req->expect_continue) {
        if (is_root && req->method == HTTP_POST) {
            c->out_len =
                (uint32_t)(PUT_LIT(c->out + c->out_len, "HTTP/1.1 100 Continue\r\n\r\n") - c->out);
        } else {
            /* The answer does not depend on the body: it goes now, without
             * inviting the body, and the connection closes rather than
             * read a body the client may never send (RFC 9110 10.1.1). */
            how = CONN_CLOSE;
            body = 0;
        }
    }
    if (how == CONN_CLOSE)
        c->close_after = 1;
    if (body) {
        c->hold_mark = c->out_len;
        c->holding = 1;
    }
    if (req->method == HTTP_OTHER) {
        put_status(c, 501, how, NULL, 0);
    } else if (path_len == 1 && path[0] == '*') {
        put_status(c, 405, how, "Allow: GET, HEAD, POST\r\n", 0); /* OPTIONS * */
    } else if (is_root && (get_head || req->method == HTTP_POST)) {
        if (how == CONN_KEEP_11 && req->method != HTTP_HEAD) {
            /* The common case, one copy. */
            c->resp_status = 200;
            c->resp_len = sizeof FIXED_BODY - 1;
            refresh_date();
            memcpy(c->out + c->out_len, fixed_resp, fixed_len);
            c->out_len += fixed_len;
        } else {
            put_head(c, 200, sizeof FIXED_BODY - 1, "text/plain", how, NULL);
            if (req->method != HTTP_HEAD)
                c->out_len = (uint32_t)(PUT_LIT(c->out + c->out_len, FIXED_BODY) - c->out);
        }
    } else if (is_root) {
        put_status(c, 405, how, "Allow: GET, HEAD, POST\r\n", req->method == HTTP_HEAD);
    } else if (root_fd < 0) {
        put_status(c, 404, how, NULL, req->method == HTTP_HEAD);
    } else if (!get_head) {
        put_status(c, 405, how, "Allow: GET, HEAD\r\n", 0);
    } else {
        serve_file(c, req, how);
    }
    if (http_log_on(&access_log))
        log_access(c, req);
    return body;
}

/* Drops n bytes from the front of the input: the carried-over buffer or the
 * head pool buffer. */
static void consume(conn *c, int from_in, uint32_t n)
{
    if (from_in) {
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        return;
    }
    chunks[c->head].off += n;
    if (chunks[c->head].off == chunks[c->head].len) {
        uint32_t id = c->head;

        c->head = chunks[id].next;
        c->held--;
        gyre_bufpool_put(pool, id);
    }
}

/* Discards body bytes from p[0..n). Returns the bytes used, or the status
 * that ends the connection, negated: -400 for a malformed chunked body,
 * -413 for one past max_body. */
static int64_t discard_body(conn *c, const char *p, uint32_t n)
{
    uint64_t used = 0;
    size_t off, len;
    int64_t r;
    int done;

    if (!c->body_chunked) {
        used = n < c->body_left ? n : c->body_left;
        c->body_left -= used;
        return (int64_t)used;
    }
    while (used < n) {
        r = http_chunked_feed(&c->chunked, p + used, n - used, &done, &off, &len);
        if (r < 0)
            return r;
        c->body_total += len;
        if (c->body_total > max_body)
            return -413;
        used += (uint64_t)r;
        if (done) {
            c->body_chunked = 0;
            break;
        }
    }
    return (int64_t)used;
}

static int in_body(const conn *c)
{
    return c->body_left > 0 || c->body_chunked;
}

/* The body has been read: its response may go. */
static void body_done(conn *c)
{
    c->holding = 0;
    pump_file(c);
}

/* The body was bad: the held response is dropped for the error, and the
 * connection closes (its framing is lost). */
static void body_failed(conn *c, int status)
{
    c->out_len = c->hold_mark;
    c->holding = 0;
    c->body_left = 0;
    c->body_chunked = 0;
    if (c->file_fd >= 0)
        close(c->file_fd);
    c->file_fd = -1;
    respond_fatal(c, status);
}

/* Parses and answers every whole request the input holds, as far as the
 * output buffer has room; a file response holds the rest back until it is
 * out. A body is read to its end whatever follows (its response waits for
 * it). */
static void conn_process(conn *c)
{
    http_request req;

    while (!c->closing && !c->lingering && (in_body(c) || (!c->close_after && c->file_fd < 0))) {
        const char *p;
        uint32_t n, take;
        int from_in = c->in_len > 0, rc, body;
        int64_t used;

        if (!in_body(c) && OUT_CAP - c->out_len < RESP_ROOM)
            out_compact(c);
        if (!in_body(c) && OUT_CAP - c->out_len < RESP_ROOM)
            break; /* on_send comes back here */
        if (from_in) {
            p = c->in;
            n = c->in_len;
        } else if (c->head != NONE) {
            p = (const char *)gyre_bufpool_buf(pool, c->head) + chunks[c->head].off;
            n = chunks[c->head].len - chunks[c->head].off;
        } else {
            break;
        }
        if (in_body(c)) {
            used = discard_body(c, p, n);
            if (used < 0) {
                body_failed(c, (int)-used);
                break;
            }
            consume(c, from_in, (uint32_t)used);
            if (!in_body(c))
                body_done(c);
            continue;
        }
        rc = http_parse_request(p, n, &req);
        if (rc == HTTP_INCOMPLETE) {
            /* Gather the rest of the head in `in`; the parser's limit ends
             * this before `in` is full (HTTP_MAX_HEAD). */
            if (c->head == NONE)
                break;
            take = chunks[c->head].len - chunks[c->head].off;
            if (take > sizeof c->in - c->in_len)
                take = (uint32_t)(sizeof c->in - c->in_len);
            memcpy(c->in + c->in_len,
                   (const char *)gyre_bufpool_buf(pool, c->head) + chunks[c->head].off, take);
            c->in_len += take;
            consume(c, 0, take);
            continue;
        }
        if (rc < 0) {
            respond_fatal(c, -rc);
            break;
        }
        if (req.content_length > max_body) {
            /* Known from the head: refused before any of the body is
             * invited or read; the lingering close drains what was sent. */
            consume(c, from_in, (uint32_t)rc);
            respond_fatal(c, 413);
            break;
        }
        body = handle_request(c, &req);
        consume(c, from_in, (uint32_t)rc); /* req points into it: after */
        if (body) {
            c->body_left = req.content_length;
            c->body_chunked = req.chunked;
            c->body_total = 0;
            if (req.chunked)
                http_chunked_init(&c->chunked);
        }
    }
    if (c->paused && !c->recv_busy && c->head == NONE && !c->closing && !c->peer_eof) {
        c->paused = 0;
        arm_recv(c);
    }
}

static void on_send(gyre_op *op)
{
    conn *c = op->data;

    c->send_busy = 0;
    if (c->closing) {
        conn_close_if_idle(c);
        return;
    }
    if (op->result < 0) {
        conn_end(c);
        return;
    }
    c->out_off += (uint32_t)op->result;
    c->last_ns = gyre_now(loop);
    if (c->out_off == c->out_len && !c->read_busy)
        c->out_off = c->out_len = 0;
    pump_file(c);
    conn_process(c);
    kick_send(c);
    conn_check_finish(c);
}

static void on_recv(gyre_op *op)
{
    conn *c = op->data;

    if (!(op->flags & GYRE_OP_MORE))
        c->recv_busy = 0;
    if (op->result > 0 && (op->flags & GYRE_OP_BUFFER)) {
        if (c->closing || c->lingering) {
            gyre_bufpool_put(pool, op->buf_id);
            if (c->lingering && !c->closing)
                linger_again(c);
        } else {
            c->last_ns = gyre_now(loop);
            if (!in_body(c)) {
                /* The first bytes of a new head start its clock (the
                 * first request's runs from the accept). */
                if (c->head == NONE && c->in_len == 0 && c->requests > 0) {
                    c->head_ns = c->last_ns;
                    c->head_bytes = 0;
                }
                c->head_bytes += (uint64_t)op->result;
            }
            chunks[op->buf_id] = (chunk){.off = 0, .len = (uint32_t)op->result, .next = NONE};
            if (c->head == NONE)
                c->head = op->buf_id;
            else
                chunks[c->tail].next = op->buf_id;
            c->tail = op->buf_id;
            c->held++;
            conn_process(c);
            kick_send(c);
            if (c->held > 1 && c->recv_busy && !c->paused &&
                (c->held > CONN_MAX_HELD || gyre_bufpool_available(pool) < POOL_RESERVE)) {
                c->paused = 1;
                n_paused++;
                (void)gyre_cancel(loop, &c->recv);
            }
        }
        /* A final completion with data: the recv ended for a reason of its
         * own (not end of stream), so it goes on. */
        if (!c->recv_busy && !c->closing && !c->paused)
            arm_recv(c);
        else if (c->closing)
            conn_close_if_idle(c);
        else
            conn_check_finish(c);
        return;
    }
    if (c->recv_busy)
        return;
    if (c->closing) {
        conn_close_if_idle(c);
    } else if (op->result == -ECANCELED && c->paused) {
        conn_process(c); /* re-armed there once the FIFO is empty */
    } else if (op->result == 0 && !c->lingering) {
        /* The client is done sending; what it sent is still answered. */
        c->peer_eof = 1;
        c->paused = 0;
        conn_process(c);
        kick_send(c);
        conn_check_finish(c);
    } else {
        conn_end(c);
    }
}

/* Takes a free slot for fd (ip: its address when already known). */
static void conn_start(int fd, uint32_t ip, int ip_known)
{
    int one = 1;
    conn *c = &conns[free_conns[--n_free]];

    /* The header fields only: the buffers are written before they are read. */
    memset(c, 0, offsetof(conn, in));
    c->fd = fd;
    c->file_fd = -1;
    c->head = c->tail = NONE;
    c->in_use = 1;
    c->ip = ip;
    c->ip_known = (uint8_t)ip_known;
    c->last_ns = c->head_ns = gyre_now(loop);
    c->recv.data = c->send.data = c->read.data = c;
    gyre_timer_init(loop, &c->linger);
    c->linger.base.data = c;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    arm_recv(c);
}

/* With --max-conns-per-ip: 1 if fd's address already has that many
 * connections (the new one is refused). *ip is set for conn_start. */
static int over_ip_cap(int fd, uint32_t *ip)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    uint32_t i, n = 0;

    if (getpeername(fd, (struct sockaddr *)&sa, &sl) != 0 || sa.sin_family != AF_INET)
        return 0;
    *ip = sa.sin_addr.s_addr;
    for (i = 0; i < max_conns; i++) {
        if (!conns[i].in_use || conns[i].closing)
            continue;
        if (!conns[i].ip_known) {
            char tmp[INET_ADDRSTRLEN];

            (void)conn_addr(&conns[i], tmp, sizeof tmp);
        }
        n += conns[i].ip == *ip;
    }
    return n >= max_per_ip;
}

static void on_accept(gyre_listener *l, int fd)
{
    char addr[INET_ADDRSTRLEN];
    uint32_t ip = 0;

    (void)l;
    if (fd < 0) {
        /* The listener failed for good (running out of descriptors is not
         * this: gyre_listener backs off and tries again by itself). */
        log_server("error", "accept: %s; stopping", gyre_strerror(fd));
        failed = 1;
        shut_down();
        return;
    }
    n_accepted++;
    if (stopping) {
        close(fd);
        return;
    }
    if (max_per_ip > 0 && over_ip_cap(fd, &ip)) {
        n_per_ip++;
        log_server("error",
                   "client %s: connection refused: %u connections from this address "
                   "(--max-conns-per-ip)",
                   inet_ntop(AF_INET, &ip, addr, sizeof addr) ? addr : "-", max_per_ip);
        close(fd);
        return;
    }
    if (n_free > 0) {
        conn_start(fd, ip, max_per_ip > 0);
        return;
    }
    /* Full. The client waits for the slot of an idle connection, which
     * closes on its way out; with none to evict it is refused. */
    if (n_pending < PENDING_MAX && evict_oldest(0)) {
        pending[n_pending++] = fd;
        return;
    }
    n_refused++;
    log_server("error", "connection refused: all %u connection slots are busy", max_conns);
    close(fd); /* the client sees the connection close */
}

static void on_listener_event(gyre_listener *l, int event, const gyre_listen_stats *st)
{
    (void)l;
    if (event == GYRE_LISTEN_EXHAUSTED) {
        /* Out of descriptors, slots or not: connections that have not sent
         * a whole request yet (silent or trickling ones, which is what
         * a descriptor attack opens) give theirs back, so that accepting
         * resumes after the back-off. Clients that have been served keep
         * theirs. */
        for (int i = 0; i < EXHAUST_EVICT && evict_oldest(1); i++)
            ;
        log_server("error",
                   "accept: out of descriptors (or memory), %llu times so far; accepting "
                   "again after a back-off",
                   (unsigned long long)st->exhaustions);
    } else {
        log_server("notice", "accept: descriptors available again; accepting");
    }
}

static void on_stop_timer(gyre_timer *t)
{
    size_t i;

    (void)t;
    for (i = 0; i < HTTP_MAX_CONNS; i++)
        if (conns[i].in_use && !conns[i].closing) {
            log_conn(&conns[i], "shutting down: connection cut after the shutdown timeout");
            conn_end(&conns[i]);
        }
}

static void on_signal(gyre_signal *s, int signo)
{
    (void)s;
    if (signo == SIGUSR1) {
        /* Log rotation: the files were renamed; write new ones. */
        int a = http_log_reopen(&access_log), e = http_log_reopen(&error_log);

        if (a < 0 || e < 0)
            log_server("error", "reopening the logs: %s", gyre_strerror(a < 0 ? a : e));
        return;
    }
    if (!stopping)
        log_server("notice", "%s: shutting down gracefully", strsignal(signo));
    shut_down();
}

/* Stop accepting; idle connections close now, busy ones after the response
 * they are sending, and anything left after STOP_GRACE_NS is cancelled. */
static void shut_down(void)
{
    size_t i;

    if (stopping)
        return;
    stopping = 1;
    /* The watchers stay (stopping one restores the default action, and a
     * second SIGTERM during the shutdown would then kill the process and
     * lose its exit status); they no longer keep the loop running. */
    gyre_handle_unref(&sig_term.base);
    gyre_handle_unref(&sig_int.base);
    gyre_handle_unref(&sig_quit.base);
    gyre_handle_unref(&sig_usr1.base);
    (void)gyre_listener_close(&listener, NULL);
    while (n_pending > 0)
        close(pending[--n_pending]);
    for (i = 0; i < HTTP_MAX_CONNS; i++) {
        conn *c = &conns[i];

        if (!c->in_use || c->closing)
            continue;
        c->close_after = 1;
        if (c->lingering)
            conn_end(c);
        else
            conn_check_finish(c);
    }
    /* Unreferenced: the loop ends as soon as the connections have. */
    if (gyre_timer_start(&stop_timer, on_stop_timer, stop_grace_ns, 0) == 0)
        gyre_handle_unref(&stop_timer.base);
}

static int listen_on(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd, one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Non-blocking: the readiness backends emulate multishot accept by
     * accepting until EAGAIN (see gyre-echo). */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, SOMAXCONN) != 0) {
        fprintf(stderr, "gyre-http: listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return -1;
    }
    return fd;
}

static int open_root(const char *dir)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    long fd;

    root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        fprintf(stderr, "gyre-http: --root %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (use_openat2) {
        fd = syscall(SYS_openat2, root_fd, ".", &how, sizeof how);
        if (fd >= 0)
            close((int)fd);
        else if (errno == ENOSYS)
            use_openat2 = 0; /* before Linux 5.6, or filtered by seccomp */
    }
    return 0;
}

/* --user: after everything that needs root (the bind, the logs, the
 * root directory) is open. glibc's setuid() changes every thread of the
 * process (it signals each one to make the system call, which by itself
 * changes only the calling thread on Linux), so gyre's pool threads,
 * started or not, end up with the new ids too; the test reads each
 * thread's /proc status to check it. */
static int drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);

    if (pw == NULL) {
        fprintf(stderr, "gyre-http: --user %s: no such user\n", user);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "gyre-http: --user %s: %s\n", user, strerror(errno));
        return -1;
    }
    if (pw->pw_uid != 0 && setuid(0) == 0) {
        fprintf(stderr, "gyre-http: --user %s: root could be regained\n", user);
        return -1;
    }
    return 0;
}

static int64_t pool_warm_fn(void *arg)
{
    (void)arg;
    return 0;
}

static void pool_warm_cb(gyre_op *op)
{
    (void)op;
}

/* Runs one job on gyre's pool so that its threads exist (they start when
 * first needed) before --user drops privileges: the drop must reach
 * threads already running, not only those started after it, and the test
 * checks exactly that. */
static int warm_pool(void)
{
    gyre_op op;
    int rc;

    gyre_op_work(&op, pool_warm_fn, NULL, GYRE_LANE_FAST);
    if ((rc = gyre_submit(loop, &op, pool_warm_cb)) < 0 ||
        (rc = gyre_loop_run(loop, GYRE_RUN_DEFAULT)) < 0)
        return rc;
    return 0;
}

static int parse_count(const char *s, uint64_t max, uint32_t *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: gyre-http --port P [--backend auto|uring|epoll|poll|select]\n"
                    "                 [--root DIR] [--exit-after-clients N] [--no-openat2]\n"
                    "                 [--max-body BYTES] [--lingering-time T]\n"
                    "                 [--lingering-timeout T] [--header-timeout T]\n"
                    "                 [--body-timeout T] [--send-timeout T]\n"
                    "                 [--keepalive-timeout T] [--keepalive-requests N]\n"
                    "                 [--min-rate BYTES] [--min-rate-grace T]\n"
                    "                 [--max-conns N] [--max-conns-per-ip N]\n"
                    "                 [--shutdown-timeout T] [--access-log FILE|-]\n"
                    "                 [--error-log FILE|-|off] [--user NAME]\n"
                    "       gyre-http --version\n");
    return 2;
}

/* BYTES with an optional k, m or g (powers of 1024). Returns 0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    int shift = 0;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (shift)
        end++;
    if (errno != 0 || *end != '\0' || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* A duration: seconds, with a fraction or an "ms" suffix ("5", "0.2",
 * "200ms"). Returns 0 or -1. */
static int parse_duration(const char *s, uint64_t *ns)
{
    char *end;
    double v;

    if (*s < '0' || *s > '9')
        return -1;
    v = strtod(s, &end);
    if (strcmp(end, "ms") == 0)
        v /= 1000;
    else if (strcmp(end, "s") != 0 && *end != '\0')
        return -1;
    if (!(v >= 0 && v < 1e6))
        return -1;
    *ns = (uint64_t)(v * 1e9);
    return 0;
}

int main(int argc, char **argv)
{
    gyre_loop_opts opts = {0};
    gyre_listen_opts lopts = {.flags = GYRE_LISTEN_RESERVE_FD, .event_cb = on_listener_event};
    gyre_listen_stats ls = {0};
    const char *root = NULL, *user = NULL, *access_path = NULL, *error_path = "-";
    struct rlimit rl;
    long port = -1;
    int i, rc;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("gyre-http (gyre %s)\n", gyre_version_string());
            return 0;
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            opts.backend = argv[++i];
        } else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
            root = argv[++i];
        } else if (strcmp(argv[i], "--exit-after-clients") == 0 && i + 1 < argc) {
            /* For valgrind, where a signal cannot interrupt io_uring_enter. */
            exit_after = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--no-openat2") == 0) {
            /* The fallback path resolution, for testing it where openat2 works. */
            use_openat2 = 0;
        } else if (strcmp(argv[i], "--max-body") == 0 && i + 1 < argc) {
            if (parse_size(argv[++i], &max_body) != 0)
                return usage();
        } else if (strcmp(argv[i], "--lingering-time") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &linger_time_ns) != 0)
                return usage();
        } else if (strcmp(argv[i], "--lingering-timeout") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &linger_timeout_ns) != 0)
                return usage();
        } else if (strcmp(argv[i], "--header-timeout") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &header_timeout_ns) != 0)
                return usage();
        } else if (strcmp(argv[i], "--body-timeout") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &body_timeout_ns) != 0)
                return usage();
        } else if (strcmp(argv[i], "--send-timeout") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &send_timeout_ns) != 0)
                return usage();
        } else if (strcmp(argv[i], "--keepalive-timeout") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &keepalive_timeout_ns) != 0)
                return usage();
        } else if (strcmp(argv[i], "--min-rate-grace") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &min_rate_grace_ns) != 0)
                return usage();
        } else if (strcmp(argv[i], "--shutdown-timeout") == 0 && i + 1 < argc) {
            if (parse_duration(argv[++i], &stop_grace_ns) != 0)
                return usage();
        } else if (strcmp(argv[i], "--min-rate") == 0 && i + 1 < argc) {
            if (parse_size(argv[++i], &min_rate) != 0 || min_rate > 1000000000)
                return usage();
        } else if (strcmp(argv[i], "--keepalive-requests") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], UINT32_MAX, &keepalive_requests) != 0)
                return usage();
        } else if (strcmp(argv[i], "--max-conns") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], HTTP_MAX_CONNS, &max_conns) != 0 || max_conns == 0)
                return usage();
        } else if (strcmp(argv[i], "--max-conns-per-ip") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], HTTP_MAX_CONNS, &max_per_ip) != 0)
                return usage();
        } else if (strcmp(argv[i], "--access-log") == 0 && i + 1 < argc) {
            access_path = argv[++i];
        } else if (strcmp(argv[i], "--error-log") == 0 && i + 1 < argc) {
            error_path = strcmp(argv[i + 1], "off") == 0 ? NULL : argv[i + 1];
            i++;
        } else if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
            user = argv[++i];
        } else {
            return usage();
        }
    }
    if (port < 0 || port > 65535)
        return usage();
    if (root && open_root(root) != 0)
        return 1;
    /* A slab of HTTP_MAX_CONNS connections needs as many descriptors. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    listen_fd = listen_on((int)port);
    if (listen_fd < 0)
        return 1;
    if (port == 0) {
        /* The kernel's pick, for whoever started us (the tests: a port
         * chosen beforehand can be taken by another test's client). */
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;

        if (getsockname(listen_fd, (struct sockaddr *)&sa, &sl) != 0)
            return 1;
        printf("gyre-http: listening on 127.0.0.1:%d\n", ntohs(sa.sin_port));
        fflush(stdout);
    }
    rc = gyre_loop_new(&loop, &opts);
    if (rc < 0) {
        fprintf(stderr, "gyre-http: gyre_loop_new: %s\n", gyre_strerror(rc));
        return 1;
    }
    rc = gyre_bufpool_new(loop, &pool, HTTP_BUFS, HTTP_BUF_SIZE);
    if (rc < 0) {
        fprintf(stderr, "gyre-http: gyre_bufpool_new: %s\n", gyre_strerror(rc));
        return 1;
    }
    for (i = 0; i < (int)max_conns; i++)
        free_conns[n_free++] = (uint32_t)(max_conns - 1 - (uint32_t)i);
    refresh_date();
    if ((rc = http_log_open(&access_log, loop, access_path, "access log")) < 0 ||
        (rc = http_log_open(&error_log, loop, error_path, "error log")) < 0) {
        fprintf(stderr, "gyre-http: opening the logs: %s\n", gyre_strerror(rc));
        return 1;
    }
    if (user && (rc = warm_pool()) < 0) {
        fprintf(stderr, "gyre-http: starting the thread pool: %s\n", gyre_strerror(rc));
        return 1;
    }
    gyre_signal_init(loop, &sig_term);
    gyre_signal_init(loop, &sig_int);
    gyre_signal_init(loop, &sig_quit);
    gyre_signal_init(loop, &sig_usr1);
    gyre_timer_init(loop, &stop_timer);
    gyre_timer_init(loop, &sweep_timer);
    /* gyre_listener, not a bare multishot accept: out of descriptors it
     * backs off (and sheds with its reserve fd) instead of retrying at
     * once, which spun a core under "ulimit -n 256". */
    rc = gyre_listen_fd(loop, &listener, listen_fd, &lopts, on_accept);
    if (rc < 0) {
        fprintf(stderr, "gyre-http: listen: %s\n", gyre_strerror(rc));
        return 1;
    }
    listen_fd = -1; /* the listener's now */
    if ((rc = gyre_signal_start(&sig_term, on_signal, SIGTERM)) < 0 ||
        (rc = gyre_signal_start(&sig_int, on_signal, SIGINT)) < 0 ||
        (rc = gyre_signal_start(&sig_quit, on_signal, SIGQUIT)) < 0 ||
        (rc = gyre_signal_start(&sig_usr1, on_signal, SIGUSR1)) < 0 ||
        (rc = gyre_timer_start(&sweep_timer, on_sweep, sweep_period(), sweep_period())) < 0) {
        fprintf(stderr, "gyre-http: start: %s\n", gyre_strerror(rc));
        return 1;
    }
    gyre_handle_unref(&sweep_timer.base);
    gyre_handle_unref(&sig_usr1.base);
    if (user && drop_privileges(user) != 0)
        return 1;
    rc = gyre_loop_run(loop, GYRE_RUN_DEFAULT);
    if (rc < 0) {
        fprintf(stderr, "gyre-http: gyre_loop_run: %s\n", gyre_strerror(rc));
        return 1;
    }
    gyre_timer_stop(&stop_timer);
    gyre_timer_stop(&sweep_timer);
    /* Ignored first: a signal arriving once its watcher is gone must not
     * kill the process on its way to exit 0. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    gyre_signal_stop(&sig_term);
    gyre_signal_stop(&sig_int);
    gyre_signal_stop(&sig_quit);
    gyre_signal_stop(&sig_usr1);
    (void)gyre_listener_stats(&listener, &ls);
    http_log_close(&access_log);
    http_log_close(&error_log);
    if ((rc = gyre_bufpool_free(pool)) < 0 || (rc = gyre_loop_free(loop)) < 0) {
        fprintf(stderr, "gyre-http: shutdown: %s\n", gyre_strerror(rc));
        return 1;
    }
    if (root_fd >= 0)
        close(root_fd);
    /* What the server refused and cut, for tests and attack scripts. */
    printf("gyre-http: accepted %llu connections, refused %llu (slots full), %llu (per-IP cap)\n",
           (unsigned long long)n_accepted, (unsigned long long)n_refused,
           (unsigned long long)n_per_ip);
    printf("gyre-http: cut %llu header timeout, %llu min rate, %llu keep-alive timeout, %llu body "
           "timeout, %llu send timeout, %llu evicted\n",
           (unsigned long long)cut_count[CUT_HEADER], (unsigned long long)cut_count[CUT_MIN_RATE],
           (unsigned long long)cut_count[CUT_KEEPALIVE], (unsigned long long)cut_count[CUT_BODY],
           (unsigned long long)cut_count[CUT_SEND], (unsigned long long)cut_count[CUT_EVICTED]);
    printf("gyre-http: out of descriptors %llu times, %llu accept calls in %llu back-off "
           "intervals, shed %llu\n",
           (unsigned long long)ls.exhaustions, (unsigned long long)ls.exhausted_attempts,
           (unsigned long long)ls.backoff_ticks, (unsigned long long)ls.shed);
    printf("gyre-http: paused reading %llu times (held buffers)\n", (unsigned long long)n_paused);
    printf("gyre-http: log lines dropped: %llu error, %llu access\n",
           (unsigned long long)error_log.dropped_total,
           (unsigned long long)access_log.dropped_total);
    return failed;
}
