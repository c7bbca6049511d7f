/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-http.c: gyre-http and gyre-cp run as child processes, on the backend
 * under test (they inherit GYRE_BACKEND).
 *
 * Each server test starts gyre-http on a free port, talks HTTP to it over
 * plain blocking sockets with poll() deadlines, then stops it with SIGTERM
 * and asserts it exited with status 0. The children die with the test
 * process (PR_SET_PDEATHSIG), so a failed assertion leaves none behind. The
 * binaries are found next to gyre-tests (build/bin).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

#define IO_TIMEOUT_MS 5000
#define FIXED_BODY "Hello, World!\n"
#define SECRET "TOP-SECRET-OUTSIDE-THE-ROOT"
#define HTTP_BIG_SIZE 16384

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
    ASSERT_TRUE(v != NULL);
    r->content_length = strtol(v, NULL, 10);
    v = find_header(r, "Connection");
    r->close = v && strncasecmp(v, "close", 5) == 0;
    need = r->head_len + (head_only || r->status == 100 ? 0 : (size_t)r->content_length);
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

/* One request on a fresh connection; its response. */
static void exchange(const server *s, const char *req, response *r)
{
    client *c = client_open(s);

    client_send_str(c, req);
    client_response(c, r, 0);
    client_close(c);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    ASSERT_SYS(fd);
    test_write_bytes(fd, data, len);
    test_close(fd);
}

void test_http_get_root(void)
{
    server s = server_start(NULL);
    client *c = client_open(&s);
    response r;

    client_send_str(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_TRUE(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ASSERT_EQ(r.content_length, strlen(FIXED_BODY));
    expect_body(&r, FIXED_BODY);
    ASSERT_TRUE(find_header(&r, "Date") != NULL);

    client_send_str(c, "HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client_response(c, &r, 1);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.content_length, strlen(FIXED_BODY));
    ASSERT_EQ(r.body_len, 0);

    /* Without --root every other path is 404, and the connection stays. */
    client_send_str(c, "GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 404);
    client_send_str(c, "DELETE / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 405);
    ASSERT_TRUE(find_header(&r, "Allow") != NULL);
    client_send_str(c, "BREW / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 501);
    client_send_str(c, "GET /?q=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_close(c);
    server_stop(&s);
}

void test_http_pipelined(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    const char *reqs = "GET /one.txt HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /missing HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /two.txt HTTP/1.1\r\nHost: h\r\n\r\n"
                       "HEAD /one.txt HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /one.txt HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *split = "GET /two.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /one.txt HT";
    server s;
    client *c;
    response r;
    int i;

    snprintf(dir, sizeof dir, "%s/root", test_tmpdir());
    ASSERT_SYS(mkdir(dir, 0755));
    snprintf(path, sizeof path, "%s/one.txt", dir);
    write_file(path, "first\n", 6);
    snprintf(path, sizeof path, "%s/two.txt", dir);
    write_file(path, "second\n", 7);
    s = server_start("--root", dir, NULL);
    c = client_open(&s);

    /* Six requests in one write, answered in order. */
    client_send_str(c, reqs);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    expect_body(&r, "first\n");
    client_response(c, &r, 0);
    expect_body(&r, FIXED_BODY);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 404);
    client_response(c, &r, 0);
    expect_body(&r, "second\n");
    client_response(c, &r, 1);
    ASSERT_EQ(r.content_length, 6);
    client_response(c, &r, 0);
    expect_body(&r, "first\n");

    /* A request split across writes (and so across reads), after a whole
     * one in the same write. */
    client_send_str(c, split);
    sleep_ms(50);
    client_send_str(c, "TP/1.1\r\nHo");
    sleep_ms(50);
    client_send_str(c, "st: h\r\n\r\n");
    client_response(c, &r, 0);
    expect_body(&r, "second\n");
    client_response(c, &r, 0);
    expect_body(&r, "first\n");

    /* Many in one go: more responses than the output buffer holds. */
    for (i = 0; i < 400; i++)
        client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    for (i = 0; i < 400; i++) {
        client_response(c, &r, 0);
        expect_body(&r, FIXED_BODY);
    }
    client_close(c);
    server_stop(&s);
}

void test_http_keepalive_close(void)
{
    server s = server_start(NULL);
    client *c = client_open(&s);
    response r;

    /* HTTP/1.1 stays open until the client says close. */
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.close, 0);
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.close, 1);
    expect_body(&r, FIXED_BODY);
    client_expect_eof(c); /* the request after close is not answered */
    client_close(c);

    /* HTTP/1.0 closes unless asked to keep alive. */
    c = client_open(&s);
    client_send_str(c, "GET / HTTP/1.0\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.close, 1);
    client_expect_eof(c);
    client_close(c);
    c = client_open(&s);
    client_send_str(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_TRUE(strstr(r.head, "Connection: keep-alive\r\n") != NULL);
    client_send_str(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);

    /* A client that half-closes still gets its answers, then EOF. */
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_SYS(shutdown(c->fd, SHUT_WR));
    client_response(c, &r, 0);
    client_response(c, &r, 0);
    expect_body(&r, FIXED_BODY);
    client_expect_eof(c);
    client_close(c);

    /* An idle connection does not keep SIGTERM from ending the server. */
    c = client_open(&s);
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 0);
    server_stop(&s);
    client_expect_eof(c);
    client_close(c);
}

void test_http_malformed(void)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400}, /* no Host */
        {"GET / HTTP/1.1\r\nHost: h\r\nBad Header: y\r\n\r\n", 400},
        {"GET / HTTP/1.1\nHost: h\n\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\n continued\r\n\r\n", 400},
        {"GET relative HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400}, /* with --root: a bad escape */
        {"GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
    };
    static char big[HTTP_BIG_SIZE];
    char dir[PATH_MAX];
    server s;
    response r;
    size_t i, n;
    int h;

    snprintf(dir, sizeof dir, "%s/root", test_tmpdir());
    ASSERT_SYS(mkdir(dir, 0755));
    s = server_start("--root", dir, NULL);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        client *c = client_open(&s);

        client_send_str(c, cases[i].req);
        client_response(c, &r, 0);
        if (r.status != cases[i].status)
            test_fail(__FILE__, __LINE__, "case %zu: status %d, want %d", i, r.status,
                      cases[i].status);
        ASSERT_EQ(r.close, 1);
        client_expect_eof(c);
        client_close(c);
    }

    /* 414: a request target past the limit. */
    n = (size_t)snprintf(big, sizeof big, "GET /");
    memset(big + n, 'a', 3000);
    n += 3000;
    n += (size_t)snprintf(big + n, sizeof big - n, " HTTP/1.1\r\nHost: h\r\n\r\n");
    exchange(&s, big, &r);
    ASSERT_EQ(r.status, 414);
    /* 431: too many headers, and a head too long. */
    n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (h = 0; h < 100; h++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-%d: v\r\n", h);
    snprintf(big + n, sizeof big - n, "\r\n");
    exchange(&s, big, &r);
    ASSERT_EQ(r.status, 431);
    n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: h\r\nX-Long: ");
    memset(big + n, 'v', 10000);
    n += 10000;
    snprintf(big + n, sizeof big - n, "\r\n\r\n");
    exchange(&s, big, &r);
    ASSERT_EQ(r.status, 431);

    /* A good request after a bad one on the same connection is never
     * answered: the connection is closed after the 400. */
    {
        client *c = client_open(&s);

        client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\nBAD\r\n\r\n"
                           "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        client_response(c, &r, 0);
        ASSERT_EQ(r.status, 200);
        client_response(c, &r, 0);
        ASSERT_EQ(r.status, 400);
        client_expect_eof(c);
        client_close(c);
    }
    server_stop(&s);
}

void test_http_bodies(void)
{
    server s = server_start(NULL);
    client *c = client_open(&s);
    response r;
    static char body[100000];
    char head[128];
    int i;

    /* A Content-Length body is read and discarded; the next request after
     * it is answered. */
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world"
                       "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);

    /* A large body spread over many reads. */
    memset(body, 'b', sizeof body);
    snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n",
             sizeof body);
    client_send_str(c, head);
    client_send(c, body, sizeof body);
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_response(c, &r, 0);
    expect_body(&r, FIXED_BODY);

    /* Chunked, with an extension and a trailer, sent a piece at a time. */
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (i = 0; i < 20; i++)
        client_send_str(c, "4;ext=1\r\nabcd\r\n");
    client_send_str(c, "0\r\nX-Trailer: t\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_response(c, &r, 0);
    expect_body(&r, FIXED_BODY);

    /* Expect: 100-continue gets its interim response first. */
    client_send_str(c, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                       "Content-Length: 3\r\n\r\n");
    memset(&r, 0, sizeof r);
    while (!memmem(c->buf, c->len, "\r\n\r\n", 4))
        ASSERT_GT(client_fill(c), 0);
    ASSERT_TRUE(strncmp(c->buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    memmove(c->buf, c->buf + 25, c->len - 25);
    c->len -= 25;
    client_send_str(c, "abc");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    client_close(c);
    server_stop(&s);
}

static void fill_random(char *buf, size_t len, uint64_t seed)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (char)(test_rand(&seed) >> 24);
}

void test_http_root_file(void)
{
    static char data[300000];
    char dir[PATH_MAX], path[PATH_MAX + 32];
    server s;
    client *c;
    response r;

    snprintf(dir, sizeof dir, "%s/root", test_tmpdir());
    ASSERT_SYS(mkdir(dir, 0755));
    snprintf(path, sizeof path, "%s/sub", dir);
    ASSERT_SYS(mkdir(path, 0755));
    fill_random(data, sizeof data, 7);
    snprintf(path, sizeof path, "%s/sub/big.bin", dir);
    write_file(path, data, sizeof data);
    snprintf(path, sizeof path, "%s/empty.txt", dir);
    write_file(path, "", 0);
    snprintf(path, sizeof path, "%s/link-inside", dir);
    ASSERT_SYS(symlink("sub/big.bin", path));
    s = server_start("--root", dir, NULL);
    c = client_open(&s);

    /* Larger than the server's output buffer: many reads and sends. */
    client_send_str(c, "GET /sub/big.bin HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /empty.txt HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /sub/%62ig.bin HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.content_length, sizeof data);
    ASSERT_EQ(r.body_len, sizeof data);
    ASSERT_TRUE(memcmp(r.body, data, sizeof data) == 0);
    ASSERT_TRUE(strstr(r.head, "application/octet-stream") != NULL);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.content_length, 0);
    client_response(c, &r, 0); /* percent-decoded */
    ASSERT_EQ(r.body_len, sizeof data);
    ASSERT_TRUE(memcmp(r.body, data, sizeof data) == 0);

    client_send_str(c, "HEAD /sub/big.bin HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 1);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.content_length, sizeof data);

    /* A symlink that stays inside the root is followed (openat2). */
    client_send_str(c, "GET /link-inside HTTP/1.1\r\nHost: h\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_TRUE(r.status == 200 || r.status == 403);
    if (r.status == 200)
        ASSERT_TRUE(r.body_len == sizeof data && memcmp(r.body, data, sizeof data) == 0);

    client_send_str(c, "GET /missing.txt HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /sub/missing/deeper HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /sub HTTP/1.1\r\nHost: h\r\n\r\n"
                       "POST /sub/big.bin HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 404);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 404);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 404); /* a directory is not served */
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 405);
    client_close(c);
    server_stop(&s);
}

/* Every escape attempt is 403 or 404, and the outside file's bytes never
 * come back. */
static void check_escapes(const server *s)
{
    static const char *const targets[] = {
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/%2E%2E%2Foutside.txt",
        "/sub/../../outside.txt",
        "/sub/..%2f..%2foutside.txt",
        "/./../outside.txt",
        "//../outside.txt",
        "/abs-link",
        "/rel-link",
        "/sub/rel-link2",
        "/dir-link/outside.txt",
        "/proc-link",
    };
    char req[256];
    response r;
    size_t i;

    for (i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", targets[i]);
        exchange(s, req, &r);
        if (r.status != 403 && r.status != 404)
            test_fail(__FILE__, __LINE__, "%s: status %d", targets[i], r.status);
        if (r.body_len >= strlen(SECRET) && memmem(r.body, r.body_len, SECRET, strlen(SECRET)))
            test_fail(__FILE__, __LINE__, "%s: the outside file was served", targets[i]);
    }
    /* The root itself still serves. */
    exchange(s, "GET /inside.txt HTTP/1.1\r\nHost: h\r\n\r\n", &r);
    ASSERT_EQ(r.status, 200);
    expect_body(&r, "inside\n");
}

void test_http_root_escape(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], outside[PATH_MAX + 32];
    server s;

    /* tmp/outside.txt and tmp/outdir/outside.txt are outside tmp/top/root. */
    snprintf(path, sizeof path, "%s/top", test_tmpdir());
    ASSERT_SYS(mkdir(path, 0755));
    snprintf(dir, sizeof dir, "%s/top/root", test_tmpdir());
    ASSERT_SYS(mkdir(dir, 0755));
    snprintf(outside, sizeof outside, "%s/top/outside.txt", test_tmpdir());
    write_file(outside, SECRET "\n", strlen(SECRET) + 1);
    snprintf(path, sizeof path, "%s/top/outdir", test_tmpdir());
    ASSERT_SYS(mkdir(path, 0755));
    snprintf(path, sizeof path, "%s/top/outdir/outside.txt", test_tmpdir());
    write_file(path, SECRET "\n", strlen(SECRET) + 1);
    snprintf(path, sizeof path, "%s/inside.txt", dir);
    write_file(path, "inside\n", 7);
    snprintf(path, sizeof path, "%s/sub", dir);
    ASSERT_SYS(mkdir(path, 0755));
    snprintf(path, sizeof path, "%s/abs-link", dir);
    ASSERT_SYS(symlink(outside, path));
    snprintf(path, sizeof path, "%s/rel-link", dir);
    ASSERT_SYS(symlink("../outside.txt", path));
    snprintf(path, sizeof path, "%s/sub/rel-link2", dir);
    ASSERT_SYS(symlink("../../outside.txt", path));
    snprintf(path, sizeof path, "%s/dir-link", dir);
    ASSERT_SYS(symlink("../outdir", path));
    snprintf(path, sizeof path, "%s/proc-link", dir);
    ASSERT_SYS(symlink("/proc/self/root/etc/hostname", path));

    /* openat2(RESOLVE_BENEATH) where the kernel has it... */
    s = server_start("--root", dir, NULL);
    check_escapes(&s);
    server_stop(&s);
    /* ...and the component walk used where it does not. */
    s = server_start("--root", dir, "--no-openat2", NULL);
    check_escapes(&s);
    server_stop(&s);
}

/* --- gyre-cp --- */

static int run_cp(const char *src, const char *dst, const char *extra)
{
    char path[PATH_MAX];
    int status;
    pid_t pid;

    bin_path(path, sizeof path, "gyre-cp");
    fflush(NULL);
    pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (null >= 0)
            dup2(null, STDERR_FILENO); /* progress lines */
        if (extra)
            execl(path, path, extra, src, dst, (char *)NULL);
        else
            execl(path, path, src, dst, (char *)NULL);
        _exit(127);
    }
    ASSERT_SYS(waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Asserts that tree b is a copy of tree a: same entries, types, sizes,
 * bytes and symlink targets. Returns the regular files compared. */
static int compare_trees(const char *a, const char *b)
{
    struct stat sa, sb;
    int files = 0;

    ASSERT_SYS(lstat(a, &sa));
    if (lstat(b, &sb) != 0)
        test_fail(__FILE__, __LINE__, "%s: missing in the copy", b);
    ASSERT_EQ(sa.st_mode & S_IFMT, sb.st_mode & S_IFMT);
    if (S_ISREG(sa.st_mode)) {
        char *da = malloc((size_t)sa.st_size + 1), *db = malloc((size_t)sb.st_size + 1);
        int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);

        ASSERT_EQ(sa.st_size, sb.st_size);
        ASSERT_TRUE(da && db);
        ASSERT_SYS(fa);
        ASSERT_SYS(fb);
        ASSERT_EQ(read(fa, da, (size_t)sa.st_size), sa.st_size);
        ASSERT_EQ(read(fb, db, (size_t)sb.st_size), sb.st_size);
        if (memcmp(da, db, (size_t)sa.st_size) != 0)
            test_fail(__FILE__, __LINE__, "%s: bytes differ", b);
        ASSERT_EQ(sa.st_mode & 0777, sb.st_mode & 0777);
        close(fa);
        close(fb);
        free(da);
        free(db);
        return 1;
    }
    if (S_ISLNK(sa.st_mode)) {
        char ta[PATH_MAX], tb[PATH_MAX];
        ssize_t na = readlink(a, ta, sizeof ta), nb = readlink(b, tb, sizeof tb);

        ASSERT_EQ(na, nb);
        ASSERT_TRUE(memcmp(ta, tb, (size_t)na) == 0);
        return 0;
    }
    if (S_ISDIR(sa.st_mode)) {
        DIR *d = opendir(a);
        struct dirent *e;
        int n_a = 0, n_b = 0;

        ASSERT_TRUE(d != NULL);
        while ((e = readdir(d)) != NULL) {
            char pa[PATH_MAX], pb[PATH_MAX];

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(pa, sizeof pa, "%s/%s", a, e->d_name);
            snprintf(pb, sizeof pb, "%s/%s", b, e->d_name);
            files += compare_trees(pa, pb);
            n_a++;
        }
        closedir(d);
        d = opendir(b);
        ASSERT_TRUE(d != NULL);
        while ((e = readdir(d)) != NULL)
            n_b += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        closedir(d);
        ASSERT_EQ(n_a, n_b); /* nothing extra in the copy */
    }
    return files;
}

void test_http_cp_tree(void)
{
    static const size_t sizes[] = {0,     1,          4095,           4096,
                                   65537, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024 + 17};
    char src[PATH_MAX], dst[PATH_MAX], path[PATH_MAX + 64], *data;
    size_t i, max = 3 * 1024 * 1024 + 17;
    int d;

    data = malloc(max);
    ASSERT_TRUE(data != NULL);
    snprintf(src, sizeof src, "%s/src", test_tmpdir());
    ASSERT_SYS(mkdir(src, 0755));
    for (d = 0; d < 3; d++) {
        snprintf(path, sizeof path, "%s/d%d", src, d);
        ASSERT_SYS(mkdir(path, 0750));
        snprintf(path, sizeof path, "%s/d%d/nested", src, d);
        ASSERT_SYS(mkdir(path, 0755));
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            fill_random(data, sizes[i], (uint64_t)(d * 100 + (int)i + 1));
            snprintf(path, sizeof path, "%s/d%d/%s/f%zu", src, d, i % 2 ? "nested" : ".", i);
            write_file(path, data, sizes[i]);
        }
    }
    snprintf(path, sizeof path, "%s/d0/nested/f7", src);
    ASSERT_SYS(chmod(path, 0600));
    snprintf(path, sizeof path, "%s/link", src);
    ASSERT_SYS(symlink("d0/f0", path));
    snprintf(path, sizeof path, "%s/dangling", src);
    ASSERT_SYS(symlink("nowhere/at/all", path));
    snprintf(path, sizeof path, "%s/empty-dir", src);
    ASSERT_SYS(mkdir(path, 0755));
    free(data);

    /* A tree, with copy_file_range where it works... */
    snprintf(dst, sizeof dst, "%s/dst", test_tmpdir());
    ASSERT_EQ(run_cp(src, dst, NULL), 0);
    ASSERT_EQ(compare_trees(src, dst), 3 * (int)(sizeof sizes / sizeof sizes[0]));
    /* ...and through read and write buffers; DST an existing directory. */
    snprintf(dst, sizeof dst, "%s/into", test_tmpdir());
    ASSERT_SYS(mkdir(dst, 0755));
    ASSERT_EQ(run_cp(src, dst, "--no-copy-range"), 0);
    snprintf(dst, sizeof dst, "%s/into/src", test_tmpdir());
    ASSERT_EQ(compare_trees(src, dst), 3 * (int)(sizeof sizes / sizeof sizes[0]));
    /* A single file. */
    snprintf(path, sizeof path, "%s/d2/nested/f7", src);
    snprintf(dst, sizeof dst, "%s/single", test_tmpdir());
    ASSERT_EQ(run_cp(path, dst, NULL), 0);
    compare_trees(path, dst);
    /* A missing source fails with a non-zero status. */
    snprintf(path, sizeof path, "%s/no-such", test_tmpdir());
    snprintf(dst, sizeof dst, "%s/never", test_tmpdir());
    ASSERT_NE(run_cp(path, dst, NULL), 0);
}

/* --- resets (issue 11, defect 2 as gyre-http shows it on io_uring) --- */

#define RESET_FILE_SIZE (384u << 10)
#define RESET_CLIENTS 300
#define RESET_BATCH 50
/* How long the server may take to let go of the connections of the storm
 * (its linger timers run LINGER_NS = 1 s) before its fds are counted. */
#define RESET_SETTLE_MS 10000

/* Open descriptors of process pid. */
static int proc_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    d = opendir(path);
    ASSERT_TRUE(d != NULL);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The scheduler state of pid's main thread (the loop's): 'S' while it is
 * blocked in its wait, 'R' while it runs. */
static char proc_state(pid_t pid)
{
    char path[64], state = '?';
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    ASSERT_TRUE(f != NULL);
    /* The command name (field 2) may hold spaces: skip past its ')'. */
    if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
        state = '?';
    fclose(f);
    return state;
}

/* pid's fd count once it has held still for longer than gyre-http's
 * LINGER_NS (1 s), so that no connection of an earlier client is still
 * counted. */
static int settled_fds(pid_t pid)
{
    int n = proc_fds(pid), now, still = 0, i;

    for (i = 0; i < RESET_SETTLE_MS / 10 && still < 150; i++) {
        sleep_ms(10);
        now = proc_fds(pid);
        still = now == n ? still + 1 : 0;
        n = now;
    }
    ASSERT_GE(still, 150);
    return n;
}

static void set_linger0(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    ASSERT_SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
}

/* Waits (bounded) for the first bytes of a response on c. */
static void wait_first_bytes(client *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};

    if (poll(&p, 1, IO_TIMEOUT_MS) != 1)
        FAIL("no answer from gyre-http within the deadline");
}

/* Clients that leave mid-response: half of them close while a file
 * response is going out (half of those with SO_LINGER 0, the others with
 * unread bytes, which resets too), the other half reset right after their
 * request. Then the server must be as before: a fresh GET served whole, its
 * fds back to the count before the storm, its loop blocked in its wait
 * (not spinning), and SIGTERM ends it with status 0. */
void test_http_resets(void)
{
    static char data[RESET_FILE_SIZE];
    static client *batch[RESET_BATCH];
    char dir[PATH_MAX], path[PATH_MAX + 32];
    size_t n = test_scale(RESET_CLIENTS), done = 0, i, k;
    const char *get_file = "GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n";
    int base, fds = 0, sleeping = 0;
    server s;
    client *c;
    response r;

    snprintf(dir, sizeof dir, "%s/root", test_tmpdir());
    ASSERT_SYS(mkdir(dir, 0755));
    fill_random(data, sizeof data, 11);
    snprintf(path, sizeof path, "%s/big.bin", dir);
    write_file(path, data, sizeof data);
    s = server_start("--root", dir, NULL);

    /* The baseline, after one whole file response and one fixed one, so
     * that whatever the server makes on first use is counted in it. */
    c = client_open(&s);
    client_send_str(c, get_file);
    client_response(c, &r, 0);
    ASSERT_EQ(r.body_len, sizeof data);
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    client_response(c, &r, 0);
    expect_body(&r, FIXED_BODY);
    client_expect_eof(c);
    client_close(c);
    base = settled_fds(s.pid);

    while (done < n) {
        k = n - done < RESET_BATCH ? n - done : RESET_BATCH;
        for (i = 0; i < k; i++) {
            batch[i] = client_open(&s);
            client_send_str(batch[i],
                            (done + i) % 2 ? "GET / HTTP/1.1\r\nHost: h\r\n\r\n" : get_file);
        }
        for (i = 0; i < k; i++) {
            if ((done + i) % 2 == 0)
                wait_first_bytes(batch[i]); /* the file response is under way */
            if ((done + i) % 4 != 2)
                set_linger0(batch[i]->fd);
            client_close(batch[i]);
        }
        done += k;
    }

    /* The server still serves, whole. */
    c = client_open(&s);
    client_send_str(c, get_file);
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    ASSERT_EQ(r.body_len, sizeof data);
    ASSERT_TRUE(memcmp(r.body, data, sizeof data) == 0);
    client_send_str(c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    client_response(c, &r, 0);
    ASSERT_EQ(r.status, 200);
    expect_body(&r, FIXED_BODY);
    client_expect_eof(c);
    client_close(c);

    /* Every connection let go of: the count comes back to the baseline
     * once the linger timers have run (bounded wait, exact count). */
    for (i = 0; i < RESET_SETTLE_MS / 10 && (fds = proc_fds(s.pid)) != base; i++)
        sleep_ms(10);
    ASSERT_EQ(fds, base);

    /* Idle means blocked in the wait: a loop that keeps resubmitting
     * something (a cancel the kernel answers -ENOENT) is always running.
     * Most samples, not all: a timer of the server may run during one. */
    for (i = 0; i < 20; i++) {
        sleeping += proc_state(s.pid) == 'S';
        sleep_ms(10);
    }
    ASSERT_GE(sleeping, 15);
    server_stop(&s);
}
