/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-http-rfc.c: gyre-http against RFC 9112/9110, end to end (issue 14,
 * point 3 and the request limits of point 4): Host and absolute-form
 * targets, message framing, syntax limits, --max-body and 100-continue,
 * strict chunked bodies, per-request state, file validators and ranges,
 * and the bounded lingering close.
 *
 * Like test-http.c, each test starts gyre-http as a child on the backend
 * under test and talks to it over blocking sockets with poll() deadlines;
 * the client helpers are a copy of that file's (kept apart so that the two
 * files change independently), except that a response may lack a
 * Content-Length where it has no body (304).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

#define IO_TIMEOUT_MS 5000
#define FIXED_BODY "Hello, World!\n"

static void bin_path(char *out, size_t len, const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash;

    ASSERT_SYS(n);
    self[n] = '\0';
    slash = strrchr(self, '/');
    ASSERT_TRUE(slash != NULL);
    *slash = '\0';
    snprintf(out, len, "%.*s/%s", (int)(sizeof self / 2), self, name);
    if (access(out, X_OK) != 0)
        test_fail(__FILE__, __LINE__, "%s is not built", out);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Connects to the server; -errno if it does not listen. */
static int try_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

    ASSERT_SYS(fd);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

typedef struct server {
    pid_t pid;
    int port;
    int out; /* its stdout, kept open so that its exit lines do not meet EPIPE */
} server;

/* Starts gyre-http with --port 0 and the extra arguments (NULL-terminated),
 * and reads the port it listens on (a port picked here beforehand could be
 * taken by another test's client meanwhile). */
static server server_start(const char *arg, ...)
{
    char path[PATH_MAX], line[128];
    const char *argv[16];
    server s = {0, 0, -1};
    va_list ap;
    int n = 0, pipefd[2];
    size_t len = 0;
    pid_t parent = getpid();

    bin_path(path, sizeof path, "gyre-http");
    argv[n++] = path;
    argv[n++] = "--port";
    argv[n++] = "0";
    va_start(ap, arg);
    for (; arg && n < 15; arg = va_arg(ap, const char *))
        argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    ASSERT_SYS(pipe2(pipefd, O_CLOEXEC));
    fflush(NULL);
    s.pid = fork();
    ASSERT_SYS(s.pid);
    if (s.pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        if (dup2(pipefd[1], STDOUT_FILENO) < 0)
            _exit(127);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    s.out = pipefd[0];
    line[0] = '\0';
    while (!strchr(line, '\n')) {
        struct pollfd p = {.fd = s.out, .events = POLLIN};
        ssize_t r;

        if (poll(&p, 1, IO_TIMEOUT_MS) != 1 || len == sizeof line - 1)
            FAIL("gyre-http did not say where it listens");
        r = read(s.out, line + len, sizeof line - 1 - len);
        if (r <= 0)
            FAIL("gyre-http exited at start");
        len += (size_t)r;
        line[len] = '\0';
    }
    if (sscanf(line, "gyre-http: listening on 127.0.0.1:%d", &s.port) != 1)
        test_fail(__FILE__, __LINE__, "gyre-http said \"%s\"", line);
    return s;
}

/* SIGTERM, and the exit status must be 0 within the deadline. */
static void server_stop(server *s)
{
    int status, i;

    ASSERT_SYS(kill(s->pid, SIGTERM));
    for (i = 0; i < IO_TIMEOUT_MS / 10; i++) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);

        ASSERT_SYS(r);
        if (r == s->pid) {
            close(s->out);
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                test_fail(__FILE__, __LINE__, "gyre-http exit status 0x%x after SIGTERM",
                          (unsigned)status);
            return;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    FAIL("gyre-http did not exit on SIGTERM");
}

/* A client connection with its own receive buffer. */
typedef struct client {
    int fd;
    size_t len;
    char buf[1 << 21];
} client;

typedef struct response {
    int status;
    int close; /* Connection: close */
    long content_length;
    size_t head_len;
    char head[2048];
    size_t body_len;
    char *body; /* into a static buffer, valid until the next response */
} response;

static client *client_open(const server *s)
{
    client *c = malloc(sizeof *c);

    ASSERT_TRUE(c != NULL);
    c->fd = try_connect(s->port);
    ASSERT_GE(c->fd, 0);
    c->len = 0;
    return c;
}

static void client_close(client *c)
{
    close(c->fd);
    free(c);
}

static void client_send(client *c, const char *data, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);

        ASSERT_SYS(n);
        off += (size_t)n;
    }
}

static void client_send_str(client *c, const char *s)
{
    client_send(c, s, strlen(s));
}

/* Reads more into c->buf; returns the bytes read, 0 at EOF. Fails on a
 * timeout. */
static size_t client_fill(client *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    ssize_t n;

    ASSERT_TRUE(c->len < sizeof c->buf);
    if (poll(&p, 1, IO_TIMEOUT_MS) != 1)
        FAIL("no answer from gyre-http within the deadline");
    n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    ASSERT_SYS(n);
    c->len += (size_t)n;
    return (size_t)n;
}

static const char *find_header(const response *r, const char *name)
{
    size_t nl = strlen(name);
    const char *p = r->head;

    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return p + nl + 1 + strspn(p + nl + 1, " ");
    }
    return NULL;
}

/* Reads one whole response; with head_only, a response to HEAD (no body
 * whatever Content-Length says). */
static void client_response(client *c, response *r, int head_only)
{
    static char body[1 << 21];
    const char *end, *v;
    size_t need;

    memset(r, 0, sizeof *r);
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (client_fill(c) == 0)
            FAIL("connection closed before a whole response head");
    r->head_len = (size_t)(end - c->buf) + 4;
    ASSERT_LT(r->head_len, sizeof r->head);
    memcpy(r->head, c->buf, r->head_len);
    r->head[r->head_len] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
        test_fail(__FILE__, __LINE__, "bad status line: %.40s", r->head);
    v = find_header(r, "Content-Length");
    /* 1xx and 304 carry no body; every other response here has a length. */
    if (r->status == 304 || r->status / 100 == 1)
        ASSERT_TRUE(v == NULL);
    else
        ASSERT_TRUE(v != NULL);
    r->content_length = v ? strtol(v, NULL, 10) : 0;
    v = find_header(r, "Connection");
    r->close = v && strncasecmp(v, "close", 5) == 0;
    need = r->head_len + (head_only ? 0 : (size_t)r->content_length);
    while (c->len < need)
        if (client_fill(c) == 0)
            FAIL("connection closed before a whole response body");
    r->body_len = need - r->head_len;
    ASSERT_LE(r->body_len, sizeof body);
    memcpy(body, c->buf + r->head_len, r->body_len);
    r->body = body;
    memmove(c->buf, c->buf + need, c->len - need);
    c->len -= need;
}

/* The server must close: EOF (not a reset) with nothing more before it. */
static void client_expect_eof(client *c)
{
    size_t before = c->len;

    while (client_fill(c) > 0)
        ;
    ASSERT_EQ(c->len, before);
}

static void expect_body(const response *r, const char *body)
{
    if (r->body_len != strlen(body) || memcmp(r->body, body, r->body_len) != 0)
        test_fail(__FILE__, __LINE__, "body %.*s, want %s", (int)r->body_len, r->body, body);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    ASSERT_SYS(fd);
    test_write_bytes(fd, data, len);
    test_close(fd);
}

/* The body of a short status response: "404 Not Found\n" starts "404 ". */
static void expect_status_body(const response *r, int status)
{
    char want[8];

    snprintf(want, sizeof want, "%d ", status);
    if (r->body_len < 4 || memcmp(r->body, want, 4) != 0)
        test_fail(__FILE__, __LINE__, "body %.*s for status %d", (int)r->body_len, r->body, status);
}

/* req on a fresh connection gets exactly one response, `status` with
 * Connection: close, and then EOF: nothing after it. */
static void expect_fatal(const server *s, const char *req, int status)
{
    client *c = client_open(s);
    response r;

    client_send_str(c, req);
    client_response(c, &r, 0);
    if (r.status != status)
        test_fail(__FILE__, __LINE__, "%.60s: status %d, want %d", req, r.status, status);
    ASSERT_EQ(r.close, 1);
    expect_status_body(&r, status);
    client_expect_eof(c);
    client_close(c);
}

/* req on c gets `status` and the connection stays open. */
static void expect_keep(client *c, const char *req, int status, response *r)
{
    client_send_str(c, req);
    client_response(c, r, strncmp(req, "HEAD ", 5) == 0);
    if (r->status != status)
        test_fail(__FILE__, __LINE__, "%.60s: status %d, want %d", req, r->status, status);
    ASSERT_EQ(r->close, 0);
}

static void make_root(char *dir, size_t len)
{
    snprintf(dir, len, "%s/root", test_tmpdir());
    ASSERT_SYS(mkdir(dir, 0755));
}

static void root_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX + 64];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, data, len);
}

/* Host (RFC 9112 3.2) and absolute-form targets (3.2.2). */
void test_http_rfc_host_target(void)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: user@h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h/x\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: h\r\nHost: i\r\n\r\n",
        "GET http://h/ HTTP/1.1\r\n\r\n", /* absolute-form still needs Host on 1.1 */
        "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http:///a.txt HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET h/a.txt HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    char dir[PATH_MAX];
    server s;
    client *c;
    response r;
    size_t i;

    make_root(dir, sizeof dir);
    root_file(dir, "a.txt", "0123456789", 10);
    s = server_start("--root", dir, NULL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_fatal(&s, bad[i], 400);

    c = client_open(&s);
    expect_keep(c, "GET http://example.com/ HTTP/1.1\r\nHost: other\r\n\r\n", 200, &r);
    expect_body(&r, FIXED_BODY);
    expect_keep(c, "GET http://example.com HTTP/1.1\r\nHost: other\r\n\r\n", 200, &r);
    expect_body(&r, FIXED_BODY);
    expect_keep(c, "GET HTTP://h:8080?q=1 HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    expect_body(&r, FIXED_BODY);
    expect_keep(c, "GET http://h/a.txt?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    expect_body(&r, "0123456789");
    expect_keep(c, "HEAD https://[::1]:1/a.txt HTTP/1.1\r\nHost: [::1]:1\r\n\r\n", 200, &r);
    ASSERT_EQ(r.content_length, 10);
    ASSERT_EQ(r.body_len, 0);
    expect_keep(c, "GET http://h/missing HTTP/1.1\r\nHost: h\r\n\r\n", 404, &r);
    expect_keep(c, "GET /a.txt HTTP/1.1\r\nHost:\r\n\r\n", 200, &r); /* empty Host is valid */
    expect_body(&r, "0123456789");
    expect_keep(c, "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, &r);
    expect_body(&r, "0123456789");
    client_close(c);
    server_stop(&s);
}

/* Message framing (RFC 9112 6): each of these is its status and a close,
 * with nothing answered after it. */
void test_http_rfc_framing(void)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
         "0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
         "abcGET / HTTP/1.1\r\nHost: h\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: br\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         501},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\nabcd", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551617\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\rX-A: 1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\n\r\n", 505},
    };
    static char big[16384];
    server s = server_start(NULL);
    client *c;
    response r;
    size_t i, n;
    int h;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_fatal(&s, cases[i].req, cases[i].status);

    n = (size_t)snprintf(big, sizeof big, "GET /");
    memset(big + n, 'a', 2100);
    n += 2100;
    snprintf(big + n, sizeof big - n, " HTTP/1.1\r\nHost: h\r\n\r\n");
    expect_fatal(&s, big, 414);
    n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (h = 0; h < 70; h++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-%d: v\r\n", h);
    snprintf(big + n, sizeof big - n, "\r\n");
    expect_fatal(&s, big, 431);
    n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: h\r\nX-Long: ");
    memset(big + n, 'v', 9000);
    snprintf(big + n + 9000, sizeof big - n - 9000, "\r\n\r\n");
    expect_fatal(&s, big, 431);

    /* Equal repeated lengths are one length; the connection goes on. */
    c = client_open(&s);
    expect_keep(c,
                "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 003\r\n\r\n"
                "abc",
                200, &r);
    expect_keep(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", 200,
                &r);
    expect_keep(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    expect_body(&r, FIXED_BODY);
    client_close(c);
    server_stop(&s);
}

/* Reads exactly the interim "100 Continue" from c. */
static void expect_continue(client *c)
{
    static const char want[] = "HTTP/1.1 100 Continue\r\n\r\n";

    while (c->len < sizeof want - 1)
        if (client_fill(c) == 0)
            FAIL("EOF before 100 Continue");
    if (memcmp(c->buf, want, sizeof want - 1) != 0)
        test_fail(__FILE__, __LINE__, "not 100 Continue: %.30s", c->buf);
    memmove(c->buf, c->buf + sizeof want - 1, c->len - (sizeof want - 1));
    c->len -= sizeof want - 1;
}

/* --max-body and Expect: 100-continue (RFC 9110 10.1.1, 15.5.14). */
void test_http_rfc_max_body(void)
{
    static char body[1024 * 1024 + 1];
    char head[256];
    server s;
    client *c;
    response r;

    memset(body, 'b', sizeof body);
    s = server_start(NULL); /* the default limit, 1 MiB */

    /* 10^12 announced: 413 at once, no 100 Continue, and what the client
     * sends anyway is drained, not answered. */
    c = client_open(&s);
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                       "Content-Length: 1000000000000\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 413);
    ASSERT_EQ(r.close, 1);
    expect_status_body(&r, 413);
    client_send(c, body, 65536);
    client_expect_eof(c);
    client_close(c);
    expect_fatal(&s, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 413);

    /* Exactly the limit is read and answered. */
    c = client_open(&s);
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n",
             1024 * 1024);
    client_send_str(c, head);
    client_send(c, body, 1024 * 1024);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    expect_body(&r, FIXED_BODY);

    /* 100 Continue when the answer waits for the body... */
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                       "Content-Length: 3\r\n\r\n");
    expect_continue(c);
    client_send_str(c, "abc");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    /* ...never on a request without a body... */
    expect_keep(c, "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", 200, &r);
    ASSERT_EQ(c->len, 0);
    client_close(c);
    /* ...nor on HTTP/1.0, which predates it: the body follows the head
     * and the only response is the final one. */
    c = client_open(&s);
    client_send_str(c, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    expect_body(&r, FIXED_BODY);
    client_expect_eof(c);
    client_close(c);
    /* An answer that does not depend on the body goes at once, and the
     * connection closes instead of inviting the body. */
    expect_fatal(
        &s, "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 404);
    server_stop(&s);

    /* A smaller limit, and a chunked body that passes it: one 413. */
    s = server_start("--max-body", "100", NULL);
    c = client_open(&s);
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n");
    client_send(c, body, 100);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3c\r\n");
    client_send(c, body, 60);
    client_send_str(c, "\r\n28\r\n");
    client_send(c, body, 40);
    client_send_str(c, "\r\n0\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3c\r\n");
    client_send(c, body, 60);
    client_send_str(c, "\r\n29\r\n");
    client_send(c, body, 41);
    client_send_str(c, "\r\n0\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 413);
    ASSERT_EQ(r.close, 1);
    client_expect_eof(c);
    client_close(c);
    expect_fatal(&s, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", 413);
    server_stop(&s);
}

/* A chunked body is answered once: its error replaces the response it
 * would have had. */
void test_http_rfc_chunked_strict(void)
{
    static const char *const bad[] = {
        "5\r\nhello\r\nZZ\r\n\r\n", "FFFFFFFFFFFFFFFFF\r\n", "3\r\nabcX\r\n0\r\n\r\n",
        "3\nabc\r\n0\r\n\r\n",      "0\r\nTrailer: x\n\r\n",
    };
    server s = server_start(NULL);
    char req[256];
    client *c;
    response r;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(req, sizeof req,
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%s"
                 "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                 bad[i]);
        expect_fatal(&s, req, 400);
    }

    /* A good one, with a response pipelined before it, and one after. */
    c = client_open(&s);
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
                       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "0005;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    for (i = 0; i < 3; i++) {
        client_response(c, &r, 0);
        ASSERT_EQ(r.status, 200);
        expect_body(&r, FIXED_BODY);
    }
    /* A response earlier on the connection still goes out when a later
     * body is bad; only the bad body's response is replaced. */
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
                       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nQ\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 400);
    ASSERT_EQ(r.close, 1);
    client_expect_eof(c);
    client_close(c);

    /* A body cut short by the client's EOF is not answered. */
    c = client_open(&s);
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    ASSERT_SYS(shutdown(c->fd, SHUT_WR));
    client_expect_eof(c);
    ASSERT_EQ(c->len, 0);
    client_close(c);
    c = client_open(&s);
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
                       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    ASSERT_SYS(shutdown(c->fd, SHUT_WR));
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_expect_eof(c);
    client_close(c);
    server_stop(&s);
}

/* Nothing of one request carries into the next on a connection: a bodiless
 * request behind a POST gets no 100 Continue and no body is read for it. */
void test_http_rfc_pipeline_state(void)
{
    server s = server_start(NULL);
    client *c = client_open(&s);
    response r;
    int i;

    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                       "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"
                       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "0\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
                       "HEAD / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
    for (i = 0; i < 4; i++) {
        client_response(c, &r, 0);
        if (r.status != 200)
            test_fail(__FILE__, __LINE__, "response %d: status %d", i, r.status);
        expect_body(&r, FIXED_BODY);
    }
    client_response(c, &r, 1);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(c->len, 0);
    client_close(c);
    server_stop(&s);
}

static void get_header(const response *r, const char *name, char *out, size_t len)
{
    const char *v = find_header(r, name), *end;

    if (v == NULL)
        test_fail(__FILE__, __LINE__, "no %s in %s", name, r->head);
    end = strstr(v, "\r\n");
    ASSERT_TRUE(end != NULL && (size_t)(end - v) < len);
    memcpy(out, v, (size_t)(end - v));
    out[end - v] = '\0';
}

static void expect_header(const response *r, const char *name, const char *value)
{
    char got[256];

    get_header(r, name, got, sizeof got);
    if (strcmp(got, value) != 0)
        test_fail(__FILE__, __LINE__, "%s: %s, want %s", name, got, value);
}

static void files_on(const char *dir, const char *big, size_t big_len, const char *extra)
{
    static char req[1024];
    char etag[64], lm[64], name[300];
    server s = server_start("--root", dir, extra, NULL);
    client *c = client_open(&s);
    response r;

    /* A trailing slash names a directory; a name past NAME_MAX is 404. */
    expect_keep(c, "GET /index.html/ HTTP/1.1\r\nHost: h\r\n\r\n", 404, &r);
    expect_keep(c, "GET /sub/a.txt/ HTTP/1.1\r\nHost: h\r\n\r\n", 404, &r);
    expect_keep(c, "GET /sub/ HTTP/1.1\r\nHost: h\r\n\r\n", 404, &r);
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: h\r\n\r\n", name);
    expect_keep(c, req, 404, &r);
    snprintf(req, sizeof req, "GET /sub/%s/x HTTP/1.1\r\nHost: h\r\n\r\n", name);
    expect_keep(c, req, 404, &r);

    /* Content types, Date, validators. */
    expect_keep(c, "GET /index.html HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    expect_body(&r, "<p>hi</p>\n");
    expect_header(&r, "Content-Type", "text/html");
    expect_header(&r, "Accept-Ranges", "bytes");
    ASSERT_TRUE(find_header(&r, "Date") != NULL);
    expect_keep(c, "GET /s.css HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    expect_header(&r, "Content-Type", "text/css");
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    expect_header(&r, "Content-Type", "text/plain");
    expect_body(&r, "0123456789");
    get_header(&r, "ETag", etag, sizeof etag);
    get_header(&r, "Last-Modified", lm, sizeof lm);
    ASSERT_TRUE(etag[0] == '"' && etag[strlen(etag) - 1] == '"');
    expect_keep(c, "HEAD /sub/a.txt HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    ASSERT_EQ(r.content_length, 10);
    expect_header(&r, "ETag", etag);

    /* If-None-Match: a match, weak or in a list, or "*", is 304 with the
     * validators and no body; it takes precedence over If-Modified-Since. */
    snprintf(req, sizeof req, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: %s\r\n\r\n",
             etag);
    expect_keep(c, req, 304, &r);
    ASSERT_EQ(r.body_len, 0);
    expect_header(&r, "ETag", etag);
    expect_header(&r, "Last-Modified", lm);
    ASSERT_TRUE(find_header(&r, "Date") != NULL);
    snprintf(req, sizeof req,
             "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\", W/%s\r\n\r\n", etag);
    expect_keep(c, req, 304, &r);
    expect_keep(c, "HEAD /sub/a.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: *\r\n\r\n", 304, &r);
    snprintf(req, sizeof req,
             "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"other\"\r\n"
             "If-Modified-Since: %s\r\n\r\n",
             lm);
    expect_keep(c, req, 200, &r);
    expect_body(&r, "0123456789");
    snprintf(req, sizeof req, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: %s\r\n\r\n",
             lm);
    expect_keep(c, req, 304, &r);
    expect_keep(c,
                "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\n"
                "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n",
                200, &r);
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: yesterday\r\n\r\n",
                200, &r);
    expect_body(&r, "0123456789");

    /* One range: 206 with Content-Range; unsatisfiable: 416 with
     * "bytes * /len"; several, or not bytes, or malformed: the whole file. */
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-4\r\n\r\n", 206, &r);
    expect_body(&r, "01234");
    expect_header(&r, "Content-Range", "bytes 0-4/10");
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=-3\r\n\r\n", 206, &r);
    expect_body(&r, "789");
    expect_header(&r, "Content-Range", "bytes 7-9/10");
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=5-\r\n\r\n", 206, &r);
    expect_body(&r, "56789");
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=8-100\r\n\r\n", 206, &r);
    expect_body(&r, "89");
    expect_header(&r, "Content-Range", "bytes 8-9/10");
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=-20\r\n\r\n", 206, &r);
    expect_body(&r, "0123456789");
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=10-\r\n\r\n", 416, &r);
    expect_header(&r, "Content-Range", "bytes */10");
    expect_status_body(&r, 416);
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=-0\r\n\r\n", 416, &r);
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1,3-4\r\n\r\n", 200, &r);
    expect_body(&r, "0123456789");
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=4-2\r\n\r\n", 200, &r);
    expect_keep(c, "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: items=0-1\r\n\r\n", 200, &r);
    expect_keep(c, "HEAD /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n", 200, &r);
    ASSERT_EQ(r.content_length, 10);

    /* If-Range: the range holds only for the current ETag (strong) or
     * Last-Modified. */
    snprintf(req, sizeof req,
             "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\nIf-Range: %s\r\n\r\n",
             etag);
    expect_keep(c, req, 206, &r);
    expect_body(&r, "12");
    snprintf(req, sizeof req,
             "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\nIf-Range: %s\r\n\r\n", lm);
    expect_keep(c, req, 206, &r);
    snprintf(req, sizeof req,
             "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\nIf-Range: W/%s\r\n\r\n",
             etag);
    expect_keep(c, req, 200, &r);
    expect_body(&r, "0123456789");
    expect_keep(c,
                "GET /sub/a.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\n"
                "If-Range: \"stale\"\r\n\r\n",
                200, &r);

    /* A range deep in a file larger than the server's buffer. */
    expect_keep(c, "GET /big.bin HTTP/1.1\r\nHost: h\r\nRange: bytes=100000-250000\r\n\r\n", 206,
                &r);
    ASSERT_EQ(r.body_len, 150001);
    ASSERT_TRUE(memcmp(r.body, big + 100000, 150001) == 0);
    expect_header(&r, "Content-Type", "application/octet-stream");
    expect_keep(c, "GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    ASSERT_EQ(r.body_len, big_len);
    ASSERT_TRUE(memcmp(r.body, big, big_len) == 0);
    client_close(c);
    server_stop(&s);
}

/* Files: names, validators, conditionals and ranges, with openat2 and with
 * the component walk. */
void test_http_rfc_files(void)
{
    static char big[300000];
    char dir[PATH_MAX], path[PATH_MAX + 16];
    uint64_t seed = 11;
    size_t i;

    for (i = 0; i < sizeof big; i++)
        big[i] = (char)(test_rand(&seed) >> 24);
    make_root(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sub", dir);
    ASSERT_SYS(mkdir(path, 0755));
    root_file(dir, "index.html", "<p>hi</p>\n", 10);
    root_file(dir, "s.css", "p{}\n", 4);
    root_file(dir, "sub/a.txt", "0123456789", 10);
    root_file(dir, "big.bin", big, sizeof big);
    files_on(dir, big, sizeof big, NULL);
    files_on(dir, big, sizeof big, "--no-openat2");
}

/* Sends a byte every gap_ms until the server's close shows (EPIPE or a
 * reset); returns the sends that went through, or -1 after max_sends. */
static int sends_until_closed(client *c, int max_sends, long gap_ms)
{
    int i;

    for (i = 0; i < max_sends; i++) {
        sleep_ms(gap_ms);
        if (send(c->fd, "x", 1, MSG_NOSIGNAL) < 0) {
            if (errno != EPIPE && errno != ECONNRESET)
                test_fail(__FILE__, __LINE__, "send: %s", strerror(errno));
            return i;
        }
    }
    return -1;
}

/* The lingering close: the response arrives whole (no reset) though the
 * client sent more, and the draining is bounded both by silence
 * (--lingering-timeout) and in all (--lingering-time), so a client cannot
 * hold the slot by trickling bytes. */
void test_http_rfc_linger(void)
{
    server s = server_start("--lingering-timeout", "200ms", NULL);
    client *c = client_open(&s);
    response r;

    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: h\r\n\r\nmore bytes the server never answers");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.close, 1);
    expect_body(&r, FIXED_BODY);
    client_expect_eof(c);
    /* Silent past the timeout: closed (the first send after it gets the
     * reset, the next EPIPE). */
    ASSERT_GE(sends_until_closed(c, 25, 400), 0);
    client_close(c);
    server_stop(&s);

    /* Trickling every 50 ms keeps under the 5 s timeout, but not past the
     * 0.5 s total. */
    s = server_start("--lingering-time", "0.5", NULL);
    c = client_open(&s);
    client_send_str(c, "GET / HTTP/1.0\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_expect_eof(c);
    ASSERT_GE(sends_until_closed(c, 100, 50), 0);
    client_close(c);
    server_stop(&s);
}
