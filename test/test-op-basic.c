/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-op-basic.c: the success path of every operation on every backend --
 * nop, read/write/readv/writev on pipes and on regular files at offsets and
 * at the current position, recv/send, recvmsg/sendmsg with SCM_RIGHTS,
 * accept, connect, shutdown, close, openat, statx, fsync/fdatasync, one-shot
 * poll, timeout and work -- with exact results and bytes.
 *
 * Completions are counted, never timed, so the tests also hold under
 * GYRE_FAULTS (EAGAIN and EINTR are absorbed by gyre and must not show).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"

static void assert_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);

    ASSERT_SYS(flags);
    ASSERT_TRUE((flags & FD_CLOEXEC) != 0);
}

/* An fd opened by the test on a fresh file in the test's directory. */
static int tmpfile_open(const char *name, char *path, size_t len)
{
    int fd;

    test_tmppath(path, len, name);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_SYS(fd);
    return fd;
}

static void resubmit_cb(gyre_op *op)
{
    struct test_op *t = (struct test_op *)op;

    test_op_cb(op);
    ASSERT_EQ(op->result, 0);
    /* The op may be submitted again from its own callback. */
    if (t->calls < 5) {
        gyre_op_nop(op);
        ASSERT_EQ(gyre_submit(op->data, op, resubmit_cb), 0);
    }
}

void test_op_nop(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    int marker;

    t.op.data = &marker;
    gyre_op_nop(&t.op);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_TRUE(t.op.data == &marker); /* preparation keeps `data` */

    /* An op in flight keeps the loop alive: run(DEFAULT) returns only once
     * it completed (five times over, resubmitted from its callback). */
    t.calls = 0;
    t.op.data = loop;
    gyre_op_nop(&t.op);
    ASSERT_EQ(gyre_submit(loop, &t.op, resubmit_cb), 0);
    ASSERT_EQ(gyre_loop_alive(loop), 1);
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(t.calls, 5);
    ASSERT_EQ(gyre_loop_alive(loop), 0);
    test_loop_free(loop);
}

void test_op_pipe_read_write(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op r = {0}, w = {0};
    char buf[64];
    int p[2];

    test_pipe(p);
    gyre_op_write(&w.op, p[1], "hello", 5, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &w), 5);
    gyre_op_read(&r.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &r), 5);
    ASSERT_EQ(memcmp(buf, "hello", 5), 0);

    /* A read submitted on an empty pipe waits for data. */
    memset(buf, 0, sizeof buf);
    gyre_op_read(&r.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(loop, &r);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r.calls, 0);
    gyre_op_write(&w.op, p[1], "world!", 6, GYRE_OFF_CUR);
    test_op_submit(loop, &w);
    test_run_until(loop, &r.calls, 1);
    test_run_until(loop, &w.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(w.calls, 1);
    ASSERT_EQ(w.result, 6);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.result, 6);
    ASSERT_EQ(memcmp(buf, "world!", 6), 0);

    /* A short read is reported as such. */
    test_write_bytes(p[1], "0123456789", 10);
    gyre_op_read(&r.op, p[0], buf, 4, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &r), 4);
    ASSERT_EQ(memcmp(buf, "0123", 4), 0);
    gyre_op_read(&r.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &r), 6);
    ASSERT_EQ(memcmp(buf, "456789", 6), 0);

    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_file_read_write(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char path[4096], buf[16];
    struct stat st;
    int fd = tmpfile_open("rw", path, sizeof path);

    /* Positioned writes leave a hole and do not move the file position. */
    gyre_op_write(&t.op, fd, "AAAA", 4, 4096);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    gyre_op_write(&t.op, fd, "BBBB", 4, 0);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    ASSERT_EQ(lseek(fd, 0, SEEK_CUR), 0);
    ASSERT_SYS(fstat(fd, &st));
    ASSERT_EQ(st.st_size, 4100);

    gyre_op_read(&t.op, fd, buf, 4, 4096);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    ASSERT_EQ(memcmp(buf, "AAAA", 4), 0);
    gyre_op_read(&t.op, fd, buf, 4, 2);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    ASSERT_EQ(memcmp(buf, "BB\0\0", 4), 0);
    /* Short at the end of the file, then 0 at and past it. */
    gyre_op_read(&t.op, fd, buf, sizeof buf, 4098);
    ASSERT_EQ(test_op_run(loop, &t), 2);
    ASSERT_EQ(memcmp(buf, "AA", 2), 0);
    gyre_op_read(&t.op, fd, buf, sizeof buf, 4100);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_read(&t.op, fd, buf, sizeof buf, 1u << 30);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_EQ(lseek(fd, 0, SEEK_CUR), 0);

    /* GYRE_OFF_CUR on a file uses and advances the file position. */
    ASSERT_SYS(lseek(fd, 1, SEEK_SET));
    gyre_op_write(&t.op, fd, "xy", 2, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 2);
    gyre_op_write(&t.op, fd, "z", 1, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 1);
    ASSERT_EQ(lseek(fd, 0, SEEK_CUR), 4);
    ASSERT_SYS(lseek(fd, 0, SEEK_SET));
    gyre_op_read(&t.op, fd, buf, 3, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 3);
    ASSERT_EQ(memcmp(buf, "Bxy", 3), 0);
    gyre_op_read(&t.op, fd, buf, 3, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &t), 3);
    ASSERT_EQ(memcmp(buf, "z\0\0", 3), 0);
    ASSERT_EQ(lseek(fd, 0, SEEK_CUR), 6);

    test_close(fd);
    test_loop_free(loop);
}

/* Zero-length iovecs anywhere in the vector are legal and move no bytes. */
static void vec_roundtrip(gyre_loop *loop, int rfd, int wfd, uint64_t off)
{
    static char nothing[1];
    char a[1], b[16];
    struct iovec wv[5] = {
        {nothing, 0}, {(void *)"ab", 2}, {NULL, 0}, {(void *)"cde", 3}, {nothing, 0},
    };
    struct iovec rv[4] = {{a, 1}, {NULL, 0}, {b, sizeof b}, {nothing, 0}};
    struct test_op t = {0};

    memset(b, 0, sizeof b);
    gyre_op_writev(&t.op, wfd, wv, 5, off);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    gyre_op_readv(&t.op, rfd, rv, 4, off);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    ASSERT_EQ(a[0], 'a');
    ASSERT_EQ(memcmp(b, "bcde", 4), 0);

    /* Only zero-length buffers: nothing to move, result 0. */
    gyre_op_writev(&t.op, wfd, wv, 1, off);
    ASSERT_EQ(test_op_run(loop, &t), 0);
}

void test_op_readv_writev(void)
{
    gyre_loop *loop = test_loop_new();
    int p[2], sp[2];

    test_pipe(p);
    vec_roundtrip(loop, p[0], p[1], GYRE_OFF_CUR);
    test_socketpair(sp);
    vec_roundtrip(loop, sp[1], sp[0], GYRE_OFF_CUR);
    test_close(p[0]);
    test_close(p[1]);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

void test_op_file_readv_writev(void)
{
    gyre_loop *loop = test_loop_new();
    char path[4096], buf[8];
    int fd = tmpfile_open("vec", path, sizeof path);

    vec_roundtrip(loop, fd, fd, 100);
    ASSERT_EQ(pread(fd, buf, sizeof buf, 100), 5);
    ASSERT_EQ(memcmp(buf, "abcde", 5), 0);
    ASSERT_EQ(lseek(fd, 0, SEEK_CUR), 0);
    test_close(fd);
    test_loop_free(loop);
}

static void send_recv_pair(gyre_loop *loop, int a, int b)
{
    struct test_op t = {0};
    char buf[32];

    gyre_op_send(&t.op, a, "hello", 5, 0);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    /* Flags reach the syscall: a peek leaves the bytes in place. */
    gyre_op_recv(&t.op, b, buf, sizeof buf, MSG_PEEK);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    ASSERT_EQ(memcmp(buf, "hello", 5), 0);
    memset(buf, 0, sizeof buf);
    gyre_op_recv(&t.op, b, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    ASSERT_EQ(memcmp(buf, "hello", 5), 0);

    /* The other way, recv waiting first. */
    {
        struct test_op r = {0};

        gyre_op_recv(&r.op, a, buf, sizeof buf, 0);
        test_op_submit(loop, &r);
        test_run_nowait(loop, 3);
        ASSERT_EQ(r.calls, 0);
        gyre_op_send(&t.op, b, "world", 5, 0);
        ASSERT_EQ(test_op_run(loop, &t), 5);
        test_run_until(loop, &r.calls, 1);
        ASSERT_EQ(r.result, 5);
        ASSERT_EQ(memcmp(buf, "world", 5), 0);
    }
}

void test_op_recv_send(void)
{
    gyre_loop *loop = test_loop_new();
    int sp[2], c, s;

    test_socketpair(sp);
    send_recv_pair(loop, sp[0], sp[1]);
    test_tcp_pair(&c, &s);
    send_recv_pair(loop, c, s);
    test_close(sp[0]);
    test_close(sp[1]);
    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

void test_op_recvmsg_sendmsg(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } wctl, rctl;
    struct iovec wv[2] = {{(void *)"head", 4}, {(void *)"-tail", 5}};
    char rbuf[32], c;
    struct iovec rv = {rbuf, sizeof rbuf};
    struct msghdr wmsg = {0}, rmsg = {0};
    struct cmsghdr *cm;
    int sp[2], p[2], got = -1;

    test_socketpair(sp);
    test_pipe(p);

    memset(&wctl, 0, sizeof wctl);
    wmsg.msg_iov = wv;
    wmsg.msg_iovlen = 2;
    wmsg.msg_control = wctl.buf;
    wmsg.msg_controllen = sizeof wctl.buf;
    cm = CMSG_FIRSTHDR(&wmsg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    gyre_op_sendmsg(&t.op, sp[0], &wmsg, 0);
    ASSERT_EQ(test_op_run(loop, &t), 9);

    memset(&rctl, 0, sizeof rctl);
    rmsg.msg_iov = &rv;
    rmsg.msg_iovlen = 1;
    rmsg.msg_control = rctl.buf;
    rmsg.msg_controllen = sizeof rctl.buf;
    gyre_op_recvmsg(&t.op, sp[1], &rmsg, MSG_CMSG_CLOEXEC);
    ASSERT_EQ(test_op_run(loop, &t), 9);
    ASSERT_EQ(memcmp(rbuf, "head-tail", 9), 0);
    ASSERT_EQ(rmsg.msg_flags & (MSG_CTRUNC | MSG_TRUNC), 0);
    cm = CMSG_FIRSTHDR(&rmsg);
    ASSERT_TRUE(cm != NULL);
    ASSERT_EQ(cm->cmsg_level, SOL_SOCKET);
    ASSERT_EQ(cm->cmsg_type, SCM_RIGHTS);
    ASSERT_EQ(cm->cmsg_len, CMSG_LEN(sizeof(int)));
    memcpy(&got, CMSG_DATA(cm), sizeof(int));
    ASSERT_GE(got, 0);
    ASSERT_NE(got, p[1]);
    assert_cloexec(got);
    /* The received fd is the pipe's write end. */
    test_write_bytes(got, "!", 1);
    test_read_bytes(p[0], &c, 1);
    ASSERT_EQ(c, '!');

    test_close(got);
    test_close(p[0]);
    test_close(p[1]);
    test_close(sp[0]);
    test_close(sp[1]);
    test_loop_free(loop);
}

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    ASSERT_SYS(fd);
    return fd;
}

void test_op_accept(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct sockaddr_in laddr, peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    int lfd = test_tcp_listener(&laddr);
    int c1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int c2 = tcp_socket();
    int s1, s2, fl;
    char c;

    /* A connection already queued. */
    ASSERT_SYS(c1);
    ASSERT_SYS(connect(c1, (struct sockaddr *)&laddr, sizeof laddr));
    memset(&peer, 0, sizeof peer);
    gyre_op_accept(&t.op, lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK);
    s1 = (int)test_op_run(loop, &t);
    ASSERT_GE(s1, 0);
    assert_cloexec(s1);
    fl = fcntl(s1, F_GETFL);
    ASSERT_SYS(fl);
    ASSERT_TRUE((fl & O_NONBLOCK) != 0);
    ASSERT_EQ(plen, sizeof peer);
    ASSERT_EQ(peer.sin_family, AF_INET);
    ASSERT_SYS(getsockname(c1, (struct sockaddr *)&local, &llen));
    ASSERT_EQ(peer.sin_port, local.sin_port);
    test_write_bytes(c1, "1", 1);
    ASSERT_EQ(read(s1, &c, 1), 1);
    ASSERT_EQ(c, '1');

    /* An accept waiting for its connection; no address asked for. */
    gyre_op_accept(&t.op, lfd, NULL, NULL, 0);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 0);
    if (connect(c2, (struct sockaddr *)&laddr, sizeof laddr) < 0)
        ASSERT_EQ(errno, EINPROGRESS);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    s2 = (int)t.result;
    ASSERT_GE(s2, 0);
    assert_cloexec(s2);

    test_close(s1);
    test_close(s2);
    test_close(c1);
    test_close(c2);
    test_close(lfd);
    test_loop_free(loop);
}

void test_op_connect(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct sockaddr_in laddr;
    int lfd = test_tcp_listener(&laddr);
    int cfd = tcp_socket();
    int sfd, err = -1;
    socklen_t len = sizeof err;
    char buf[4];

    gyre_op_connect(&t.op, cfd, (struct sockaddr *)&laddr, sizeof laddr);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_SYS(getsockopt(cfd, SOL_SOCKET, SO_ERROR, &err, &len));
    ASSERT_EQ(err, 0);
    sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_SYS(sfd);
    gyre_op_send(&t.op, cfd, "ping", 4, 0);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    gyre_op_recv(&t.op, sfd, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    ASSERT_EQ(memcmp(buf, "ping", 4), 0);
    test_close(sfd);
    test_close(cfd);
    test_close(lfd);
    test_loop_free(loop);
}

void test_op_shutdown(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    int c, s;
    char buf[8];

    test_tcp_pair(&c, &s);
    gyre_op_shutdown(&t.op, c, SHUT_WR);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    /* The peer sees end of file, and can still send the other way. */
    gyre_op_recv(&t.op, s, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_send(&t.op, s, "back", 4, 0);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    gyre_op_recv(&t.op, c, buf, sizeof buf, 0);
    ASSERT_EQ(test_op_run(loop, &t), 4);
    ASSERT_EQ(memcmp(buf, "back", 4), 0);
    test_close(c);
    test_close(s);
    test_loop_free(loop);
}

static struct test_op close_pending;

static void close_after_read_cb(gyre_op *op)
{
    /* "Complete first": the held read's callback has already run. */
    ASSERT_EQ(close_pending.calls, 1);
    test_op_cb(op);
}

void test_op_close(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0}, *r = &close_pending;
    int p[2];
    char buf[4];

    test_pipe(p);
    gyre_op_close(&t.op, p[1]);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_EQ(fcntl(p[1], F_GETFD), -1);
    ASSERT_EQ(errno, EBADF);

    /* Ops gyre holds on the fd complete first, with -ECANCELED: a read
     * waiting on an idle pipe (the write end stays open elsewhere). */
    test_pipe(p);
    gyre_op_read(&r->op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(loop, r);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r->calls, 0);
    gyre_op_close(&t.op, p[0]);
    t.calls = 0;
    ASSERT_EQ(gyre_submit(loop, &t.op, close_after_read_cb), 0);
    test_run_until(loop, &t.calls, 1);
    ASSERT_EQ(r->result, -ECANCELED);
    ASSERT_EQ(t.result, 0);
    test_run_nowait(loop, 3);
    ASSERT_EQ(r->calls, 1);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(fcntl(p[0], F_GETFD), -1);
    ASSERT_EQ(errno, EBADF);
    test_close(p[1]);
    test_loop_free(loop);
}

/* A close completes after every op gyre took before it on the fd, however
 * those end. (On io_uring the close once came first: a READ with a deadline
 * is linked to a LINK_TIMEOUT and ends in task work after the close has run,
 * and a SHUTDOWN runs in an io-wq worker that nothing cancels.) */
static struct test_op *close_follows[2];

static void close_follows_cb(gyre_op *op)
{
    for (int i = 0; i < 2; i++)
        if (close_follows[i] != NULL)
            ASSERT_EQ(close_follows[i]->calls, 1);
    test_op_cb(op);
}

static gyre_bufpool *close_pool;

/* A multishot recv's callback: buffers go back at once; calls counts only the
 * final completion. */
static void close_ms_cb(gyre_op *op)
{
    struct test_op *t = (struct test_op *)op;

    if (op->flags & GYRE_OP_BUFFER)
        ASSERT_EQ(gyre_bufpool_put(close_pool, op->buf_id), 0);
    if (!(op->flags & GYRE_OP_MORE)) {
        t->calls++;
        t->result = op->result;
    }
}

static void close_after(gyre_loop *loop, struct test_op *cl, int fd, struct test_op *a,
                        struct test_op *b)
{
    close_follows[0] = a;
    close_follows[1] = b;
    gyre_op_close(&cl->op, fd);
    cl->calls = 0;
    ASSERT_EQ(gyre_submit(loop, &cl->op, close_follows_cb), 0);
    test_run_until(loop, &cl->calls, 1);
    ASSERT_EQ(cl->result, 0);
    ASSERT_EQ(fcntl(fd, F_GETFD), -1);
    ASSERT_EQ(errno, EBADF);
}

void test_op_close_after_ops(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op rd = {0}, sh = {0}, cl = {0};
    char buf[8];
    int sp[2];

    /* A read with a deadline and the close, in one batch. */
    test_socketpair(sp);
    gyre_op_read(&rd.op, sp[0], buf, sizeof buf, GYRE_OFF_CUR);
    gyre_op_set_deadline(&rd.op, SEC(3600));
    test_op_submit(loop, &rd);
    close_after(loop, &cl, sp[0], &rd, NULL);
    ASSERT_EQ(rd.result, -ECANCELED);
    test_close(sp[1]);

    /* The same read already waiting when the close comes. */
    test_socketpair(sp);
    gyre_op_read(&rd.op, sp[0], buf, sizeof buf, GYRE_OFF_CUR);
    gyre_op_set_deadline(&rd.op, SEC(3600));
    test_op_submit(loop, &rd);
    test_run_nowait(loop, 2);
    ASSERT_EQ(rd.calls, 0);
    close_after(loop, &cl, sp[0], &rd, NULL);
    ASSERT_EQ(rd.result, -ECANCELED);
    test_close(sp[1]);

    /* A shutdown (and a read the shutdown ends) before the close. */
    test_socketpair(sp);
    gyre_op_recv(&rd.op, sp[0], buf, sizeof buf, 0);
    test_op_submit(loop, &rd);
    gyre_op_shutdown(&sh.op, sp[0], SHUT_RDWR);
    test_op_submit(loop, &sh);
    close_after(loop, &cl, sp[0], &rd, &sh);
    ASSERT_TRUE(sh.result == 0 || sh.result == -ECANCELED);
    ASSERT_TRUE(rd.result == 0 || rd.result == -ECANCELED);
    test_close(sp[1]);

    /* A send linked to the close ("answer, then hang up"): the close runs
     * once the send has ended, and the peer reads the answer, then EOF. */
    test_socketpair(sp);
    gyre_op_send(&sh.op, sp[0], "bye", 3, 0);
    gyre_op_set_link(&sh.op);
    test_op_submit(loop, &sh);
    close_after(loop, &cl, sp[0], &sh, NULL);
    ASSERT_EQ(sh.result, 3);
    test_read_bytes(sp[1], buf, 3);
    ASSERT_EQ(memcmp(buf, "bye", 3), 0);
    ASSERT_EQ(read(sp[1], buf, 1), 0);
    test_close(sp[1]);

    /* A multishot recv that runs out of buffers at once (on io_uring the
     * kernel ends it and gyre re-arms it, while the close waits for it). */
    test_socketpair(sp);
    ASSERT_EQ(gyre_bufpool_new(loop, &close_pool, 2, 8), 0);
    test_write_bytes(sp[1], "0123456789abcdefghijklmnopqrstuvwxyz", 36);
    gyre_op_recv_multishot(&rd.op, sp[0], close_pool);
    rd.calls = 0;
    ASSERT_EQ(gyre_submit(loop, &rd.op, close_ms_cb), 0);
    close_after(loop, &cl, sp[0], &rd, NULL);
    ASSERT_TRUE(rd.result == 0 || rd.result == -ECANCELED);
    ASSERT_EQ(gyre_bufpool_free(close_pool), 0);
    test_close(sp[1]);
    test_loop_free(loop);
}

/* An op linked behind another on a different fd, with its own fd closed
 * (through gyre) while it waits: it must not start on whatever file has that
 * number by then. (It once did, on every backend: the core started it on the
 * number when the op before it ended, and on io_uring the kernel issued it
 * there; a send wrote into the next socketpair made.) */
void test_op_close_link_successor(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op a = {0}, b = {0}, cl = {0};
    char c, buf[4];
    int p[2], sp[2], np[2];

    test_pipe(p);
    test_socketpair(sp);
    gyre_op_read(&a.op, p[0], &c, 1, GYRE_OFF_CUR);
    gyre_op_set_link(&a.op);
    test_op_submit(loop, &a);
    gyre_op_send(&b.op, sp[0], "x", 1, 0);
    test_op_submit(loop, &b);
    test_run_nowait(loop, 2);
    gyre_op_close(&cl.op, sp[0]);
    test_op_submit(loop, &cl);
    test_run_nowait(loop, 2);
    /* The closed number is free again if the close has completed. */
    test_socketpair(np);
    test_write_bytes(p[1], "a", 1);
    test_run_until(loop, &a.calls, 1);
    test_run_until(loop, &b.calls, 1);
    test_run_until(loop, &cl.calls, 1);
    ASSERT_EQ(a.result, 1);
    ASSERT_EQ(cl.result, 0);
    /* Nothing reached the new pair. The send either never ran, or ran
     * before the close (io_uring: the close waits for it, and its cancel may
     * come after it went out) and the old peer has its byte. */
    ASSERT_EQ(read(np[1], buf, sizeof buf), -1);
    ASSERT_EQ(errno, EAGAIN);
    ASSERT_EQ(read(np[0], buf, sizeof buf), -1);
    ASSERT_EQ(errno, EAGAIN);
    if (b.result == 1) {
        ASSERT_EQ(read(sp[1], buf, sizeof buf), 1);
        ASSERT_EQ(buf[0], 'x');
    } else {
        ASSERT_TRUE(b.result == -EBADF || b.result == -ECANCELED);
    }
    ASSERT_EQ(read(sp[1], buf, sizeof buf), 0);
    test_close(np[0]);
    test_close(np[1]);
    test_close(sp[1]);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_openat(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char path[4096], buf[8];
    struct stat st;
    mode_t old = umask(022);
    int dfd, fd;

    dfd = open(test_tmpdir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_SYS(dfd);
    /* Relative to a directory fd, creating with a mode; no O_CLOEXEC asked. */
    gyre_op_openat(&t.op, dfd, "made", O_WRONLY | O_CREAT | O_EXCL, 0640);
    fd = (int)test_op_run(loop, &t);
    ASSERT_GE(fd, 0);
    assert_cloexec(fd);
    ASSERT_SYS(fstat(fd, &st));
    ASSERT_EQ(st.st_mode & 0777, 0640);
    ASSERT_TRUE(S_ISREG(st.st_mode));
    test_write_bytes(fd, "data", 4);
    test_close(fd);

    /* By absolute path with AT_FDCWD, read-only. */
    test_tmppath(path, sizeof path, "made");
    gyre_op_openat(&t.op, AT_FDCWD, path, O_RDONLY, 0);
    fd = (int)test_op_run(loop, &t);
    ASSERT_GE(fd, 0);
    assert_cloexec(fd);
    ASSERT_EQ(read(fd, buf, sizeof buf), 4);
    ASSERT_EQ(memcmp(buf, "data", 4), 0);
    test_close(fd);
    test_close(dfd);
    umask(old);
    test_loop_free(loop);
}

void test_op_statx(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct statx stx;
    struct stat st;
    char path[4096];
    int fd = tmpfile_open("sized", path, sizeof path);

    ASSERT_SYS(ftruncate(fd, 12345));
    ASSERT_SYS(fstat(fd, &st));
    memset(&stx, 0, sizeof stx);
    gyre_op_statx(&t.op, AT_FDCWD, path, 0, STATX_SIZE | STATX_INO, &stx);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_TRUE((stx.stx_mask & STATX_SIZE) != 0);
    ASSERT_EQ(stx.stx_size, 12345);
    ASSERT_EQ(stx.stx_ino, st.st_ino);

    /* On the fd itself. */
    memset(&stx, 0, sizeof stx);
    gyre_op_statx(&t.op, fd, "", AT_EMPTY_PATH, STATX_SIZE, &stx);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_EQ(stx.stx_size, 12345);
    test_close(fd);
    test_loop_free(loop);
}

void test_op_fsync(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char path[4096], buf[5];
    int fd = tmpfile_open("sync", path, sizeof path);

    gyre_op_write(&t.op, fd, "synced", 6, 0);
    ASSERT_EQ(test_op_run(loop, &t), 6);
    gyre_op_fsync(&t.op, fd, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_write(&t.op, fd, "datas", 5, 6);
    ASSERT_EQ(test_op_run(loop, &t), 5);
    gyre_op_fsync(&t.op, fd, 1);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    ASSERT_EQ(pread(fd, buf, 5, 6), 5);
    ASSERT_EQ(memcmp(buf, "datas", 5), 0);
    test_close(fd);
    test_loop_free(loop);
}

void test_op_poll(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0}, w = {0};
    int p[2];
    char c;

    test_pipe(p);
    gyre_op_poll(&t.op, p[1], GYRE_OUT);
    ASSERT_EQ(test_op_run(loop, &t), GYRE_OUT);

    /* One-shot: waits for data, reports exactly what was asked and holds. */
    gyre_op_poll(&t.op, p[0], GYRE_IN);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 0);
    gyre_op_write(&w.op, p[1], "x", 1, GYRE_OFF_CUR);
    ASSERT_EQ(test_op_run(loop, &w), 1);
    test_run_until(loop, &t.calls, 1);
    test_run_nowait(loop, 3);
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.result, GYRE_IN);
    ASSERT_EQ(t.flags & GYRE_OP_MORE, 0);
    /* Polling consumed nothing. */
    test_read_bytes(p[0], &c, 1);
    ASSERT_EQ(c, 'x');

    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

void test_op_timeout(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};

    gyre_op_timeout(&t.op, MS(1));
    ASSERT_EQ(test_op_run(loop, &t), 0);
    gyre_op_timeout(&t.op, 0);
    ASSERT_EQ(test_op_run(loop, &t), 0);
    test_loop_free(loop);
}

struct work_arg {
    pthread_t loop_thread;
    int ran_elsewhere;
    int64_t ret;
};

static int64_t work_fn(void *arg)
{
    struct work_arg *a = arg;

    a->ran_elsewhere = !pthread_equal(pthread_self(), a->loop_thread);
    return a->ret;
}

void test_op_work(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    struct work_arg a = {.loop_thread = pthread_self()};
    int lane;

    for (lane = 0; lane < GYRE_LANES; lane++) {
        a.ran_elsewhere = 0;
        a.ret = ((int64_t)1 << 40) + lane; /* all 64 bits come back */
        gyre_op_work(&t.op, work_fn, &a, lane);
        ASSERT_EQ(test_op_run(loop, &t), a.ret);
        ASSERT_EQ(a.ran_elsewhere, 1);
    }
    /* A negative return is passed through as the result too. */
    a.ret = -ENOENT;
    gyre_op_work(&t.op, work_fn, &a, GYRE_LANE_SLOW);
    ASSERT_EQ(test_op_run(loop, &t), -ENOENT);
    test_loop_free(loop);
}

/* An op in flight is a live object: the loop refuses to be freed. */
void test_op_loop_free_busy(void)
{
    gyre_loop *loop = test_loop_new();
    struct test_op t = {0};
    char buf[4];
    int p[2];

    test_pipe(p);
    gyre_op_read(&t.op, p[0], buf, sizeof buf, GYRE_OFF_CUR);
    test_op_submit(loop, &t);
    test_run_nowait(loop, 2);
    ASSERT_EQ(gyre_loop_free(loop), -EBUSY);
    ASSERT_EQ(gyre_cancel(loop, &t.op), 0);
    test_run_until(loop, &t.calls, 1);
    ASSERT_EQ(t.result, -ECANCELED);
    test_close(p[0]);
    test_close(p[1]);
    test_loop_free(loop);
}

/* A server closes a connection with close(2) on end of stream, and in the
 * same batch its multishot accept gets the same fd number for a new client:
 * a recv on the new fd must still be told of data. (The emulation once kept
 * the old file's registration on record, epoll had forgotten it with the
 * close, and the new fd's recv waited on readiness never registered.) */
static struct {
    struct test_op acc, rd, rd2;
    int first, second;
    char buf[8], buf2[8];
} reuse;

static void reuse_rd_cb(gyre_op *op)
{
    test_op_cb(op);
    if (op->result == 0) {
        ASSERT_SYS(close(reuse.first)); /* behind gyre's back, on purpose */
        reuse.first = -1;
    }
}

static void reuse_acc_cb(gyre_op *op)
{
    gyre_loop *loop = op->gyre__priv.loop;

    test_op_cb(op);
    if (op->result < 0)
        return;
    if (reuse.first < 0 && reuse.acc.calls == 1) {
        reuse.first = (int)op->result;
        gyre_op_recv(&reuse.rd.op, reuse.first, reuse.buf, sizeof reuse.buf, 0);
        ASSERT_EQ(gyre_submit(loop, &reuse.rd.op, reuse_rd_cb), 0);
    } else {
        reuse.second = (int)op->result;
        gyre_op_recv(&reuse.rd2.op, reuse.second, reuse.buf2, sizeof reuse.buf2, 0);
        ASSERT_EQ(gyre_submit(loop, &reuse.rd2.op, test_op_cb), 0);
    }
}

void test_op_close_reuse_in_batch(void)
{
    gyre_loop *loop = test_loop_new();
    struct sockaddr_in addr;
    int lfd = test_tcp_listener(&addr), c1, c2;

    memset(&reuse, 0, sizeof reuse);
    reuse.first = reuse.second = -1;
    gyre_op_accept_multishot(&reuse.acc.op, lfd);
    ASSERT_EQ(gyre_submit(loop, &reuse.acc.op, reuse_acc_cb), 0);
    c1 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_SYS(c1);
    ASSERT_SYS(connect(c1, (struct sockaddr *)&addr, sizeof addr));
    test_run_until(loop, &reuse.acc.calls, 1);
    test_run_nowait(loop, 3); /* the recv on the first fd is registered */
    /* End of the first connection and a second client, both before the loop
     * runs again, so they arrive in one batch. */
    ASSERT_SYS(close(c1));
    c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_SYS(c2);
    ASSERT_SYS(connect(c2, (struct sockaddr *)&addr, sizeof addr));
    test_run_until(loop, &reuse.acc.calls, 2);
    /* The EOF usually comes in the same batch; an EAGAIN injected into its
     * recv moves it to a later one. */
    test_run_until(loop, &reuse.rd.calls, 1);
    ASSERT_EQ(reuse.rd.calls, 1);
    ASSERT_EQ(reuse.rd.result, 0);
    test_write_bytes(c2, "hi", 2);
    test_run_until(loop, &reuse.rd2.calls, 1);
    ASSERT_EQ(reuse.rd2.result, 2);
    ASSERT_EQ(memcmp(reuse.buf2, "hi", 2), 0);
    ASSERT_EQ(gyre_cancel(loop, &reuse.acc.op), 0);
    test_run_until(loop, &reuse.acc.calls, 3);
    test_close(c2);
    test_close(reuse.second);
    test_close(lfd);
    test_loop_free(loop);
}
