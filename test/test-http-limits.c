/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-http-limits.c: gyre-http against hostile and careless clients
 * (issue 14): the deadline of every phase, eviction when the slots run
 * out, the keep-alive and per-IP caps, running out of descriptors, the
 * error and access logs (and their reopening), graceful shutdown, and the
 * privilege drop.
 *
 * gyre-http runs as a child process on the backend under test (it
 * inherits GYRE_BACKEND), with its timeouts scaled down. No test asserts
 * how long anything took: each asserts that the connection was closed (or
 * served) and that the server's exit counters and error log say why. */
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

#define IO_TIMEOUT_MS 5000
#define GET_ROOT "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
#define FIXED_RESP_BODY "Hello, World!\n"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A blocking connection to the server, or -errno. */
static int try_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

    ASSERT_SYS(fd);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static int must_connect(int port)
{
    int fd = try_connect(port);

    ASSERT_GE(fd, 0);
    return fd;
}

typedef struct server {
    pid_t pid;
    int port;
    int out;         /* its stdout: the exit counters */
    char text[4096]; /* what it printed, after server_stop */
} server;

/* Starts gyre-http with the arguments (NULL-terminated) and waits until it
 * accepts. nofile > 0: its RLIMIT_NOFILE (soft and hard). */
static void server_start(server *s, rlim_t nofile, ...)
{
    char path[PATH_MAX], self[PATH_MAX];
    const char *argv[40], *arg;
    int pipefd[2], n = 0;
    size_t len_out = 0;
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    pid_t parent = getpid();
    va_list ap;

    ASSERT_SYS(len);
    self[len] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(path, sizeof path, "%.*s/gyre-http", (int)(sizeof path - 16), self);
    if (access(path, X_OK) != 0)
        test_fail(__FILE__, __LINE__, "%s is not built", path);
    memset(s, 0, sizeof *s);
    argv[n++] = path;
    argv[n++] = "--port";
    argv[n++] = "0"; /* its pick, printed: a port chosen here could be taken meanwhile */
    va_start(ap, nofile);
    while ((arg = va_arg(ap, const char *)) != NULL && n < 39)
        argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    ASSERT_SYS(pipe2(pipefd, O_CLOEXEC));
    fflush(NULL);
    s->pid = fork();
    ASSERT_SYS(s->pid);
    if (s->pid == 0) {
        struct rlimit rl = {nofile, nofile};

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        if (dup2(pipefd[1], STDOUT_FILENO) < 0)
            _exit(127);
        if (nofile > 0 && setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(127);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    s->out = pipefd[0];
    while (!strchr(s->text, '\n')) {
        struct pollfd p = {.fd = s->out, .events = POLLIN};
        ssize_t r;

        if (poll(&p, 1, IO_TIMEOUT_MS) != 1 || len_out == sizeof s->text - 1)
            FAIL("gyre-http did not say where it listens");
        r = read(s->out, s->text + len_out, sizeof s->text - 1 - len_out);
        if (r <= 0)
            FAIL("gyre-http exited at start");
        len_out += (size_t)r;
        s->text[len_out] = '\0';
    }
    if (sscanf(s->text, "gyre-http: listening on 127.0.0.1:%d", &s->port) != 1)
        test_fail(__FILE__, __LINE__, "gyre-http said \"%s\"", s->text);
}

/* Waits for the exit (status 0) after a signal already sent, and reads
 * what it printed. */
static void server_wait(server *s)
{
    size_t len = 0;
    int status, i;
    ssize_t n;

    for (i = 0; i < IO_TIMEOUT_MS / 10; i++) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);

        ASSERT_SYS(r);
        if (r == s->pid) {
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                test_fail(__FILE__, __LINE__, "gyre-http exit status 0x%x", (unsigned)status);
            while ((n = read(s->out, s->text + len, sizeof s->text - 1 - len)) > 0)
                len += (size_t)n;
            s->text[len] = '\0';
            close(s->out);
            return;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    FAIL("gyre-http did not exit");
}

static void server_stop(server *s)
{
    ASSERT_SYS(kill(s->pid, SIGTERM));
    server_wait(s);
}

/* The numbers of the exit line that the scanf format fmt reads n of. */
static void counters(const server *s, const char *fmt, int n, ...)
{
    const char *line = s->text;
    unsigned long long v[6] = {0};
    va_list ap;

    while (line != NULL && sscanf(line, fmt, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != n) {
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    if (line == NULL)
        test_fail(__FILE__, __LINE__, "no line \"%s\" in gyre-http's output: \"%s\"", fmt, s->text);
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        *va_arg(ap, unsigned long long *) = v[i];
    va_end(ap);
}

#define CUT_FMT                                                                                    \
    "gyre-http: cut %llu header timeout, %llu min rate, %llu keep-alive timeout, %llu body "       \
    "timeout, %llu send timeout, %llu evicted"

/* The cut counters, in CUT_FMT's order. */
static void cuts(const server *s, unsigned long long v[6])
{
    counters(s, CUT_FMT, 6, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
}

static void send_str(int fd, const char *str)
{
    size_t off = 0, len = strlen(str);

    while (off < len) {
        ssize_t n = send(fd, str + off, len - off, MSG_NOSIGNAL);

        ASSERT_SYS(n);
        off += (size_t)n;
    }
}

/* Reads until the server closes; the bytes read (a reset counts as a
 * close). Fails if it does not close within the deadline. */
static size_t read_to_close(int fd, char *buf, size_t cap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t len = 0;
    ssize_t n;

    for (;;) {
        if (poll(&p, 1, IO_TIMEOUT_MS) != 1)
            FAIL("gyre-http did not close the connection within the deadline");
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == ECONNRESET)
            break;
        ASSERT_SYS(n);
        if (n == 0 || len + (size_t)n == cap - 1)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

/* Reads one response to GET / (the fixed body) into buf; returns its
 * length, or 0 if the server closed first. */
static size_t read_response(int fd, char *buf, size_t cap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    size_t len = 0;
    ssize_t n;
    char *end;

    for (;;) {
        buf[len] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strstr(buf, "Content-Length: ");
            size_t want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 16, NULL, 10) : 0);

            if (len >= want)
                return len;
        }
        if (poll(&p, 1, IO_TIMEOUT_MS) != 1)
            FAIL("no response from gyre-http within the deadline");
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t)n;
    }
}

/* GET / on fd, which must be answered 200. */
static void get_ok(int fd, const char *what)
{
    char buf[2048];

    send_str(fd, GET_ROOT);
    if (read_response(fd, buf, sizeof buf) == 0)
        test_fail(__FILE__, __LINE__, "%s: closed instead of answering", what);
    if (strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) != 0 || !strstr(buf, FIXED_RESP_BODY))
        test_fail(__FILE__, __LINE__, "%s: got \"%.60s\"", what, buf);
}

/* The file's contents (at most cap - 1 bytes), "" if it does not exist. */
static const char *slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t n;

    buf[0] = '\0';
    if (fd < 0)
        return buf;
    while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* Waits until the file holds `needle` (the logs are written
 * asynchronously, a loop iteration or so after the event). */
static void await_in_file(const char *path, const char *needle)
{
    static char buf[1 << 16];
    int i;

    for (i = 0; i < IO_TIMEOUT_MS / 10; i++) {
        if (strstr(slurp(path, buf, sizeof buf), needle) != NULL)
            return;
        sleep_ms(10);
    }
    test_fail(__FILE__, __LINE__, "no \"%s\" in %s: \"%s\"", needle, path, buf);
}

/* A connection that sends part of a head and then nothing is cut by the
 * header timeout, with no response, and the error log says so. The min
 * rate is off, so that it is the header timeout that cuts. */
void test_http_limits_header_timeout(void)
{
    char log[PATH_MAX], buf[512];
    unsigned long long v[6];
    server s;
    int fd;

    test_tmppath(log, sizeof log, "error.log");
    server_start(&s, 0, "--header-timeout", "300ms", "--min-rate", "0", "--error-log", log, NULL);
    fd = must_connect(s.port);
    send_str(fd, "GET / HTTP/1.1\r\nHost: t\r\n");
    ASSERT_EQ(read_to_close(fd, buf, sizeof buf), 0);
    close(fd);
    /* A connection that sends nothing at all is cut the same way. */
    fd = must_connect(s.port);
    ASSERT_EQ(read_to_close(fd, buf, sizeof buf), 0);
    close(fd);
    /* and a whole request is still served. */
    fd = must_connect(s.port);
    get_ok(fd, "after the timeouts");
    close(fd);
    await_in_file(log, "client timed out sending the request head (header timeout)");
    server_stop(&s);
    cuts(&s, v);
    ASSERT_EQ(v[0], 2);
    ASSERT_EQ(v[1], 0);
    ASSERT_EQ(v[5], 0);
}

/* Slowloris: a head trickled a byte every 50 ms keeps beating any idle
 * timeout; the minimum rate (100 bytes/s after 200 ms) cuts it long before
 * the header timeout (60 s, so it cannot be what cuts), and before the
 * head is whole. */
void test_http_limits_min_rate(void)
{
    const char *head =
        "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    char log[PATH_MAX], buf[512];
    unsigned long long v[6];
    size_t i;
    server s;
    int fd, cut = 0;

    test_tmppath(log, sizeof log, "error.log");
    server_start(&s, 0, "--header-timeout", "60s", "--min-rate", "100", "--min-rate-grace", "200ms",
                 "--error-log", log, NULL);
    fd = must_connect(s.port);
    for (i = 0; head[i] != '\0' && !cut; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        if (send(fd, head + i, 1, MSG_NOSIGNAL) != 1)
            cut = 1;
        else if (poll(&p, 1, 50) == 1)
            cut = 1; /* nothing but the close can come: the head is not whole */
    }
    if (!cut)
        FAIL("a head trickled at 20 bytes/s was whole before being cut");
    ASSERT_EQ(read_to_close(fd, buf, sizeof buf), 0);
    close(fd);
    await_in_file(log, "below the minimum rate (min rate)");
    server_stop(&s);
    cuts(&s, v);
    ASSERT_EQ(v[0], 0);
    ASSERT_EQ(v[1], 1);
}

/* Between requests: the keep-alive timeout ends an idle connection, and
 * the keep-alive request cap closes one after its Nth response. */
void test_http_limits_keepalive(void)
{
    char log[PATH_MAX], buf[2048];
    unsigned long long v[6];
    server s;
    int fd, i;

    test_tmppath(log, sizeof log, "error.log");
    server_start(&s, 0, "--keepalive-timeout", "300ms", "--keepalive-requests", "3", "--error-log",
                 log, NULL);
    fd = must_connect(s.port);
    get_ok(fd, "first request");
    ASSERT_EQ(read_to_close(fd, buf, sizeof buf), 0);
    close(fd);
    await_in_file(log, "keep-alive connection idle too long (keep-alive timeout)");
    fd = must_connect(s.port);
    for (i = 0; i < 3; i++) {
        send_str(fd, GET_ROOT);
        ASSERT_GT(read_response(fd, buf, sizeof buf), 0);
        ASSERT_EQ(strstr(buf, "Connection: close\r\n") != NULL, i == 2);
    }
    ASSERT_EQ(read_to_close(fd, buf, sizeof buf), 0);
    close(fd);
    server_stop(&s);
    cuts(&s, v);
    ASSERT_EQ(v[2], 1);
    ASSERT_EQ(v[5], 0);
}

/* Every slot held by an idle keep-alive client: a fresh client is still
 * served, because the oldest idle connection is evicted for it. */
#define EVICT_SLOTS 16

void test_http_limits_evict(void)
{
    int fds[EVICT_SLOTS], fd, i;
    char log[PATH_MAX], buf[2048];
    unsigned long long v[6], acc, refused, per_ip;
    server s;

    test_tmppath(log, sizeof log, "error.log");
    server_start(&s, 0, "--max-conns", "16", "--error-log", log, NULL);
    for (i = 0; i < EVICT_SLOTS; i++) {
        fds[i] = must_connect(s.port);
        get_ok(fds[i], "filling the slots");
    }
    fd = must_connect(s.port);
    get_ok(fd, "fresh client with every slot idle");
    close(fd);
    /* The oldest, fds[0], was the one evicted. */
    ASSERT_EQ(read_to_close(fds[0], buf, sizeof buf), 0);
    for (i = 1; i < EVICT_SLOTS; i++)
        get_ok(fds[i], "the others are still served");
    for (i = 0; i < EVICT_SLOTS; i++)
        close(fds[i]);
    await_in_file(log, "idle connection evicted: every connection slot is taken");
    server_stop(&s);
    cuts(&s, v);
    ASSERT_EQ(v[5], 1);
    counters(&s,
             "gyre-http: accepted %llu connections, refused %llu (slots full), %llu (per-IP cap)",
             3, &acc, &refused, &per_ip);
    ASSERT_EQ(refused, 0);
}

/* --max-conns-per-ip 2: a third connection from 127.0.0.1 is closed
 * unanswered, logged and counted; the first two are served. */
void test_http_limits_per_ip(void)
{
    char log[PATH_MAX], buf[512];
    unsigned long long acc, refused, per_ip;
    server s;
    int a, b, c;

    test_tmppath(log, sizeof log, "error.log");
    server_start(&s, 0, "--max-conns-per-ip", "2", "--error-log", log, NULL);
    a = must_connect(s.port);
    get_ok(a, "first");
    b = must_connect(s.port);
    get_ok(b, "second");
    c = must_connect(s.port);
    send(c, GET_ROOT, strlen(GET_ROOT), MSG_NOSIGNAL);
    ASSERT_EQ(read_to_close(c, buf, sizeof buf), 0);
    close(c);
    get_ok(a, "first, again");
    close(a);
    close(b);
    await_in_file(log, "connections from this address (--max-conns-per-ip)");
    server_stop(&s);
    counters(&s,
             "gyre-http: accepted %llu connections, refused %llu (slots full), %llu (per-IP cap)",
             3, &acc, &refused, &per_ip);
    ASSERT_EQ(per_ip, 1);
    ASSERT_EQ(refused, 0);
}

/* Issue 14, defect 2: under RLIMIT_NOFILE 64, 150 connection attempts.
 * Out of descriptors, gyre-http must wait (gyre_listener's back-off)
 * rather than retry accept at once, keep serving what it has, and serve
 * again once descriptors are free; it evicts connections that have not
 * sent a request to get descriptors back. Not spinning is asserted exactly from
 * the listener's counters: accept calls while exhausted <= 2 x (back-off
 * intervals + exhaustions), the bound listen.c keeps (an immediate retry
 * breaks it at once). */
#define EMFILE_LIMIT 64
#define EMFILE_CONNS 150

void test_http_limits_emfile(void)
{
    static int fds[EMFILE_CONNS];
    char log[PATH_MAX];
    unsigned long long out, calls, ticks, shed, v[6];
    int i, served = 0;
    server s;

    test_nofile(EMFILE_CONNS + 64);
    test_tmppath(log, sizeof log, "error.log");
    server_start(&s, EMFILE_LIMIT, "--error-log", log, NULL);
    fds[0] = must_connect(s.port);
    get_ok(fds[0], "before the limit");
    for (i = 1; i < EMFILE_CONNS; i++)
        fds[i] = must_connect(s.port);
    /* Exhausted (the error log says so once it happens), it evicts the
     * silent connections, accepts more, and runs out again. */
    await_in_file(log, "accept: out of descriptors");
    /* Some back-off intervals pass while exhausted. */
    sleep_ms(500);
    get_ok(fds[0], "while exhausted");
    for (i = 0; i < EMFILE_CONNS; i++)
        close(fds[i]);
    /* A client arriving while the server is still exhausted may be shed:
     * try again, a bounded number of times. */
    for (i = 0; i < 100 && !served; i++) {
        char buf[2048];
        int fd = must_connect(s.port);

        send(fd, GET_ROOT, strlen(GET_ROOT), MSG_NOSIGNAL);
        served = read_response(fd, buf, sizeof buf) > 0;
        close(fd);
        if (!served)
            sleep_ms(50);
    }
    ASSERT_TRUE(served);
    server_stop(&s);
    cuts(&s, v);
    /* Only silent connections were evicted: fds[0], served, was kept. */
    ASSERT_GE(v[5], 1);
    counters(&s,
             "gyre-http: out of descriptors %llu times, %llu accept calls in %llu back-off "
             "intervals, shed %llu",
             4, &out, &calls, &ticks, &shed);
    ASSERT_GE(out, 1);
    ASSERT_LE(calls, 2 * (ticks + out));
}

/* The access log in the common log format, an error-log line per refusal,
 * and both reopened on SIGUSR1 after a rename (logrotate's way). */
void test_http_limits_logs(void)
{
    char alog[PATH_MAX], elog[PATH_MAX], old[PATH_MAX], buf[4096], line[512];
    int fd, day, year, hh, mm, ss, n = 0;
    char mon[4];
    server s;

    test_tmppath(alog, sizeof alog, "access.log");
    test_tmppath(elog, sizeof elog, "error.log");
    server_start(&s, 0, "--access-log", alog, "--error-log", elog, NULL);
    fd = must_connect(s.port);
    get_ok(fd, "logged");
    send_str(fd, "GET /nothing-here HTTP/1.0\r\n\r\n");
    ASSERT_GT(read_to_close(fd, buf, sizeof buf), 0);
    close(fd);
    await_in_file(alog, "\"GET /nothing-here HTTP/1.0\" 404 14\n");
    slurp(alog, buf, sizeof buf);
    /* host ident authuser [date] "request" status bytes */
    ASSERT_EQ(sscanf(buf,
                     "127.0.0.1 - - [%d/%3[A-Za-z]/%d:%d:%d:%d +0000] \"GET / HTTP/1.1\" 200 "
                     "14\n%n",
                     &day, mon, &year, &hh, &mm, &ss, &n),
              6);
    ASSERT_GT(n, 0);
    ASSERT_TRUE(strncmp(buf + n, "127.0.0.1 - - [", 15) == 0);
    ASSERT_EQ(strchr(buf + n, '\n') - buf + 1, (long)strlen(buf)); /* two lines */

    /* Refusals: the reason in the error log. */
    fd = must_connect(s.port);
    send_str(fd, "GET / HTTP/1.1\r\n\r\n"); /* no Host */
    ASSERT_GT(read_to_close(fd, buf, sizeof buf), 0);
    ASSERT_TRUE(strncmp(buf, "HTTP/1.1 400 ", 13) == 0);
    close(fd);
    fd = must_connect(s.port);
    send_str(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n");
    ASSERT_GT(read_to_close(fd, buf, sizeof buf), 0);
    ASSERT_TRUE(strncmp(buf, "HTTP/1.1 413 ", 13) == 0);
    close(fd);
    await_in_file(elog, "[info] client 127.0.0.1: request refused: 400 Bad Request\n");
    await_in_file(elog, "[info] client 127.0.0.1: request refused: 413 Content Too Large\n");

    /* Rotation. */
    snprintf(old, sizeof old, "%.4000s.1", alog);
    ASSERT_SYS(rename(alog, old));
    ASSERT_SYS(kill(s.pid, SIGUSR1));
    for (n = 0; access(alog, F_OK) != 0; n++) {
        if (n == IO_TIMEOUT_MS / 10)
            FAIL("no new access log after SIGUSR1");
        sleep_ms(10);
    }
    fd = must_connect(s.port);
    send_str(fd, "GET /after-rotation HTTP/1.0\r\n\r\n");
    ASSERT_GT(read_to_close(fd, buf, sizeof buf), 0);
    close(fd);
    await_in_file(alog, "\"GET /after-rotation HTTP/1.0\" 404 14\n");
    ASSERT_TRUE(strstr(slurp(old, buf, sizeof buf), "after-rotation") == NULL);
    ASSERT_TRUE(strstr(buf, "nothing-here") != NULL);
    snprintf(line, sizeof line, "%s", slurp(alog, buf, sizeof buf));
    ASSERT_TRUE(strstr(line, "nothing-here") == NULL);
    server_stop(&s);
}

/* SIGTERM with a request in flight (its body half sent): the server stops
 * accepting, still answers that request, and exits 0; a second SIGTERM
 * during the shutdown changes nothing, and so does SIGQUIT. */
void test_http_limits_graceful(void)
{
    char buf[2048];
    server s;
    int fd, i, rc;

    server_start(&s, 0, "--shutdown-timeout", "30s", NULL);
    fd = must_connect(s.port);
    send_str(fd,
             "POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    /* The interim response: the server has the head. */
    {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        const char *cont = "HTTP/1.1 100 Continue\r\n\r\n";
        size_t got = 0;

        while (got < strlen(cont)) {
            ssize_t n;

            ASSERT_EQ(poll(&p, 1, IO_TIMEOUT_MS), 1);
            n = recv(fd, buf + got, strlen(cont) - got, 0);
            ASSERT_GT(n, 0);
            got += (size_t)n;
        }
        ASSERT_EQ(memcmp(buf, cont, got), 0);
    }
    send_str(fd, "01234");
    ASSERT_SYS(kill(s.pid, SIGTERM));
    ASSERT_SYS(kill(s.pid, SIGTERM));
    ASSERT_SYS(kill(s.pid, SIGQUIT));
    /* Stops accepting (bounded wait: the signal is handled a moment later). */
    for (i = 0; (rc = try_connect(s.port)) >= 0; i++) {
        close(rc);
        if (i == IO_TIMEOUT_MS / 10)
            FAIL("gyre-http still accepts after SIGTERM");
        sleep_ms(10);
    }
    ASSERT_EQ(rc, -ECONNREFUSED);
    ASSERT_EQ(waitpid(s.pid, &rc, WNOHANG), 0); /* still finishing the request */
    send_str(fd, "56789");
    ASSERT_GT(read_response(fd, buf, sizeof buf), 0);
    ASSERT_TRUE(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ASSERT_TRUE(strstr(buf, FIXED_RESP_BODY) != NULL);
    close(fd);
    server_wait(&s);
}

/* --user nobody: after the bind, every thread of the server (the loop's
 * and gyre's pool threads, which read the file on the readiness backends)
 * runs as nobody; files under the root are still served. */
void test_http_limits_user(void)
{
    char root[PATH_MAX], file[PATH_MAX], path[PATH_MAX], buf[4096];
    const char *req = "GET /f.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    struct dirent *de;
    int fd, threads = 0;
    DIR *d;
    server s;

    if (getuid() != 0)
        SKIP("--user needs root");
    snprintf(root, sizeof root, "%s", test_tmpdir());
    ASSERT_SYS(chmod(root, 0755));
    test_tmppath(file, sizeof file, "f.txt");
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_SYS(fd);
    test_write_bytes(fd, "file body\n", 10);
    test_close(fd);
    server_start(&s, 0, "--user", "nobody", "--root", root, NULL);
    fd = must_connect(s.port);
    send_str(fd, req);
    ASSERT_GT(read_response(fd, buf, sizeof buf), 0);
    ASSERT_TRUE(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ASSERT_TRUE(strstr(buf, "\r\n\r\nfile body\n") != NULL);
    snprintf(path, sizeof path, "/proc/%d/task", (int)s.pid);
    d = opendir(path);
    ASSERT_TRUE(d != NULL);
    while ((de = readdir(d)) != NULL) {
        char status[PATH_MAX + 64], text[4096];
        unsigned r, e, sv, fs;
        const char *uid;

        if (de->d_name[0] == '.')
            continue;
        snprintf(status, sizeof status, "%.64s/%.64s/status", path, de->d_name);
        uid = strstr(slurp(status, text, sizeof text), "\nUid:");
        ASSERT_TRUE(uid != NULL);
        ASSERT_EQ(sscanf(uid, "\nUid: %u %u %u %u", &r, &e, &sv, &fs), 4);
        if (r != 65534 || e != 65534 || sv != 65534 || fs != 65534)
            test_fail(__FILE__, __LINE__, "thread %s of gyre-http has uids %u %u %u %u", de->d_name,
                      r, e, sv, fs);
        uid = strstr(text, "\nGid:");
        ASSERT_TRUE(uid != NULL);
        ASSERT_EQ(sscanf(uid, "\nGid: %u %u %u %u", &r, &e, &sv, &fs), 4);
        ASSERT_EQ(r, 65534);
        ASSERT_EQ(e, 65534);
        threads++;
    }
    closedir(d);
    /* The loop's thread and the pool's, which gyre-http starts before it
     * drops privileges. */
    ASSERT_GE(threads, 2);
    close(fd);
    server_stop(&s);
}
