/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-net-emfile.c: a listener out of descriptors (RELIABILITY A1).
 *
 * The test lowers its own RLIMIT_NOFILE to a little above what it uses and
 * later fills the rest with /dev/null, while a child process (not limited)
 * plays the clients on the test's command: an already-accepted client keeps
 * getting its echoes, a client that connects meanwhile is shed (reserve
 * descriptor) or waits in the backlog (back-off only), the accept calls
 * made while exhausted stay within two per back-off tick (counted, never
 * timed), and once descriptors are freed a new client gets its round trip
 * and the application has seen EXHAUSTED then RESUMED.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-net-echo.h"

struct ctl {
    gyre_watch w;
    int fd;
    int replies;
    char reply;
};

static void ctl_cb(gyre_watch *w, uint32_t events)
{
    struct ctl *c = w->base.data;
    char b;

    (void)events;
    if (recv(c->fd, &b, 1, MSG_DONTWAIT) == 1) {
        c->reply = b;
        c->replies++;
    }
}

static void command(gyre_loop *loop, struct ctl *c, char cmd, char want)
{
    int target = c->replies + 1;

    ASSERT_EQ(write(c->fd, &cmd, 1), 1);
    test_run_until(loop, &c->replies, target);
    if (c->reply != want)
        test_fail(__FILE__, __LINE__, "child answered '%c' to '%c', wanted '%c'", c->reply, cmd,
                  want);
}

/* --- the child: blocking sockets, one command at a time --- */

static int child_connect(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};

    if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof *a) < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int child_echo(int fd, const char *msg)
{
    size_t n = strlen(msg), got = 0;
    char buf[64];

    if (write(fd, msg, n) != (ssize_t)n)
        return -1;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);

        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return memcmp(buf, msg, n) == 0 ? 0 : -1;
}

static void child(int ctl, const struct sockaddr_in *a, int reserve)
{
    int fa = -1, fb = -1, fd = -1;
    char cmd, ok;

    while (read(ctl, &cmd, 1) == 1) {
        ok = 'F';
        switch (cmd) {
        case 'A': /* a client, accepted before the exhaustion */
            fa = child_connect(a);
            if (fa >= 0 && child_echo(fa, "a1") == 0)
                ok = 'a';
            break;
        case 'P': /* the same client during the exhaustion */
            if (child_echo(fa, "a2") == 0)
                ok = 'p';
            break;
        case 'B': /* a client arriving during the exhaustion */
            fb = child_connect(a);
            if (fb < 0)
                break;
            if (!reserve) {
                ok = 'b';
                break;
            }
            {
                /* Shed: accepted and closed at once, never served. */
                char x;
                ssize_t r = read(fb, &x, 1);

                if (r == 0 || (r < 0 && errno == ECONNRESET))
                    ok = 'b';
            }
            break;
        case 'D': /* after descriptors came back */
            if (!reserve && child_echo(fb, "b1") != 0)
                break;
            fd = child_connect(a);
            if (fd >= 0 && child_echo(fd, "d1") == 0 && child_echo(fa, "a3") == 0)
                ok = 'd';
            break;
        case 'Q':
            _exit(0);
        default:
            break;
        }
        if (write(ctl, &ok, 1) != 1 || ok == 'F')
            _exit(1);
    }
    _exit(2);
}

/* --- the parent --- */

static int highest_fd(void)
{
    int hi = 0;

    for (int fd = 0; fd < 4096; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            hi = fd;
    }
    return hi;
}

static void emfile(int reserve)
{
    gyre_loop *loop = test_loop_new();
    static struct echo_server s;
    static struct ctl c;
    gyre_listen_opts o;
    gyre_listen_stats st;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    struct rlimit old, low;
    static int fill[4200];
    int sv[2], nfill = 0, status;
    pid_t pid;

    /* The limit goes down first, a little above what the test uses now:
     * io_uring's accept reads RLIMIT_NOFILE when the request is prepared
     * (io_accept_prep, still so in 6.x), so a multishot accept armed before
     * the limit went down would keep allocating below the old one. */
    ASSERT_SYS(getrlimit(RLIMIT_NOFILE, &old));
    low = old;
    low.rlim_cur = (rlim_t)highest_fd() + 1 + 16;
    ASSERT_SYS(setrlimit(RLIMIT_NOFILE, &low));

    echo_init(&s, loop);
    memset(&o, 0, sizeof o);
    o.backoff_ns = MS(20);
    o.event_cb = echo_event_cb;
    o.flags = reserve ? GYRE_LISTEN_RESERVE_FD : 0;
    ASSERT_EQ(gyre_listen_tcp(loop, &s.l, "127.0.0.1", 0, &o, echo_accept_cb), 0);
    ASSERT_SYS(getsockname(gyre_listener_fd(&s.l), (struct sockaddr *)&a, &alen));

    ASSERT_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    pid = fork();
    ASSERT_SYS(pid);
    if (pid == 0) {
        setrlimit(RLIMIT_NOFILE, &old);
        close(sv[0]);
        child(sv[1], &a, reserve);
    }
    test_close(sv[1]);
    memset(&c, 0, sizeof c);
    c.fd = sv[0];
    ASSERT_EQ(gyre_watch_init(loop, &c.w, c.fd), 0);
    c.w.base.data = &c;
    ASSERT_EQ(gyre_watch_start(&c.w, GYRE_IN, ctl_cb), 0);

    command(loop, &c, 'A', 'a');
    ASSERT_EQ(s.accepted, 1);

    /* Out of descriptors: every free number below the limit taken. */
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
            ASSERT_EQ(errno, EMFILE);
            break;
        }
        ASSERT_LT(nfill, 4200);
        fill[nfill++] = fd;
    }

    command(loop, &c, 'B', 'b');
    test_run_until(loop, &s.nevents, 1);
    ASSERT_EQ(s.events[0], GYRE_LISTEN_EXHAUSTED);
    ASSERT_EQ(gyre_listener_stats(&s.l, &st), 0);
    ASSERT_EQ(st.exhausted, 1);
    ASSERT_EQ(st.exhaustions, 1);
    ASSERT_TRUE(st.last_error == -EMFILE);
    if (reserve)
        ASSERT_GE(st.shed, 1);

    /* The client accepted before is still served. */
    command(loop, &c, 'P', 'p');

    /* A few back-off ticks: no spinning, the accept calls counted. */
    do {
        ASSERT_GE(gyre_loop_run(loop, GYRE_RUN_ONCE), 0);
        ASSERT_EQ(gyre_listener_stats(&s.l, &st), 0);
        ASSERT_LE(st.exhausted_attempts, 2 * (st.backoff_ticks + 1));
    } while (st.backoff_ticks < 3);
    ASSERT_EQ(st.exhausted, 1);
    ASSERT_EQ(s.accepted, 1);
    ASSERT_EQ(s.nevents, 1);

    /* Descriptors come back: accepting resumes. */
    for (int i = 0; i < nfill; i++)
        test_close(fill[i]);
    ASSERT_SYS(setrlimit(RLIMIT_NOFILE, &old));
    command(loop, &c, 'D', 'd');
    ASSERT_EQ(s.nevents, 2);
    ASSERT_EQ(s.events[1], GYRE_LISTEN_RESUMED);
    ASSERT_EQ(gyre_listener_stats(&s.l, &st), 0);
    ASSERT_EQ(st.exhausted, 0);
    ASSERT_EQ(st.resumptions, 1);
    ASSERT_LE(st.exhausted_attempts, 2 * (st.backoff_ticks + 1));
    ASSERT_GE(st.exhausted_attempts, 1);
    ASSERT_EQ(s.accepted, reserve ? 2 : 3);
    ASSERT_EQ(st.accepted, (uint64_t)s.accepted);

    echo_shutdown(&s);
    ASSERT_EQ(write(c.fd, "Q", 1), 1);
    ASSERT_SYS(waitpid(pid, &status, 0));
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    gyre_watch_stop(&c.w);
    test_close(c.fd);
    test_loop_free(loop);
}

void test_net_listen_emfile_reserve(void)
{
    emfile(1);
}

void test_net_listen_emfile_backoff(void)
{
    emfile(0);
}
