/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo-uring.c: the echo server on raw liburing, the baseline for gyre's
 * io_uring backend.
 *
 * It sets the ring up the way gyre does (SINGLE_ISSUER|DEFER_TASKRUN, or
 * COOP_TASKRUN on kernels without them), keeps one multishot accept and one
 * multishot recv per connection armed, with buffers from a provided-buffer
 * ring (liburing 2.3's io_uring_register_buf_ring), and sends each received
 * chunk from the buffer it arrived in, returning the buffer to the ring when
 * the send completes. One kernel entry per loop iteration: submit and wait
 * are one io_uring_enter.
 *
 * Order: a connection has at most one send in flight. io_uring may run two
 * sends on one socket out of order (one parked on poll, the next going
 * straight through), and a short send must be finished before the next chunk
 * starts, so chunks that arrive while a send is in flight wait in the
 * connection's FIFO (linked through the per-buffer records, so it needs no
 * memory of its own). In ping-pong the FIFO is always empty.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "peer.h"

#define NAME "echo-uring"
#define RING_ENTRIES 1024
#define N_BUFS 1024 /* power of two, as the buffer ring needs */
#define BGID 0
#define NONE UINT32_MAX

enum {
    OP_ACCEPT = 1,
    OP_RECV,
    OP_SEND,
    OP_SIGNAL
};

typedef struct conn {
    int fd;
    uint32_t head, tail;   /* FIFO of buffer ids to send; head is being sent */
    uint32_t next_starved; /* link in the list of recvs waiting for buffers */
    uint8_t recv_armed, send_busy, closing, starved;
} conn;

/* What a buffer holds while it is out of the ring. */
typedef struct buf_rec {
    uint32_t off, len, next;
} buf_rec;

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *buf_mem;
static buf_rec bufs[N_BUFS];
static peer_slab slab;
static uint32_t starved_head = NONE;
static int lfd;

static uint64_t tag(int op, uint32_t idx)
{
    return (uint64_t)op << 32 | idx;
}

static uint32_t conn_idx(const conn *c)
{
    return (uint32_t)(((const char *)c - slab.items) / sizeof(conn));
}

static conn *conn_at(uint32_t idx)
{
    return (conn *)(slab.items + (size_t)idx * sizeof(conn));
}

/* An SQE, submitting the queued ones first when the SQ is full; the SQ has
 * room again after that, since submission only fails on a broken ring. */
static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

    if (!sqe) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    if (!sqe)
        exit(peer_fail(NAME, "io_uring_get_sqe", EBUSY));
    return sqe;
}

static void arm_accept(void)
{
    struct io_uring_sqe *sqe = get_sqe();

    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(OP_ACCEPT, 0));
}

static void arm_recv(conn *c)
{
    struct io_uring_sqe *sqe = get_sqe();

    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, tag(OP_RECV, conn_idx(c)));
    c->recv_armed = 1;
}

static void send_head(conn *c)
{
    struct io_uring_sqe *sqe = get_sqe();
    buf_rec *b = &bufs[c->head];

    io_uring_prep_send(sqe, c->fd, buf_mem + (size_t)c->head * PEER_BUF_SIZE + b->off,
                       b->len - b->off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(OP_SEND, conn_idx(c)));
    c->send_busy = 1;
}

/* Gives buffer bid back to the kernel, and the recvs that ran dry a chance
 * to go on. */
static void put_buf(uint32_t bid)
{
    io_uring_buf_ring_add(br, buf_mem + (size_t)bid * PEER_BUF_SIZE, PEER_BUF_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(N_BUFS), 0);
    io_uring_buf_ring_advance(br, 1);
    while (starved_head != NONE) {
        conn *c = conn_at(starved_head);

        starved_head = c->next_starved;
        c->starved = 0;
        if (!c->closing)
            arm_recv(c);
    }
}

static void conn_drop_queue(conn *c)
{
    while (c->head != NONE) {
        uint32_t bid = c->head;

        c->head = bufs[bid].next;
        put_buf(bid);
    }
}

/* Frees c once the kernel holds nothing of it any more. */
static void conn_maybe_close(conn *c)
{
    if (!c->closing || c->recv_armed || c->send_busy || c->starved)
        return;
    conn_drop_queue(c);
    close(c->fd);
    peer_slab_put(&slab, c);
}

static void on_accept(struct io_uring_cqe *cqe)
{
    conn *c;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        arm_accept();
    if (cqe->res < 0)
        return;
    c = peer_slab_get(&slab);
    if (!c || peer_setup_conn(cqe->res, 0) != 0) {
        if (c)
            peer_slab_put(&slab, c);
        close(cqe->res);
        return;
    }
    memset(c, 0, sizeof *c);
    c->fd = cqe->res;
    c->head = c->tail = NONE;
    arm_recv(c);
}

static void on_recv(conn *c, struct io_uring_cqe *cqe)
{
    uint32_t bid;

    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_armed = 0;
    if (cqe->res > 0) {
        bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        bufs[bid] = (buf_rec){.off = 0, .len = (uint32_t)cqe->res, .next = NONE};
        if (c->head == NONE)
            c->head = bid;
        else
            bufs[c->tail].next = bid;
        c->tail = bid;
        if (!c->send_busy && !c->closing)
            send_head(c);
        /* The kernel ends a multishot recv now and then (a full CQ); it is
         * re-armed, not a close. */
        if (!c->recv_armed && !c->closing)
            arm_recv(c);
        return;
    }
    if (cqe->res == -ENOBUFS && !c->closing) {
        /* Every buffer is out: wait for one to come back (put_buf). */
        c->starved = 1;
        c->next_starved = starved_head;
        starved_head = conn_idx(c);
        return;
    }
    if (cqe->res <= 0 && !c->recv_armed) {
        c->closing = 1;
        conn_maybe_close(c);
    }
}

static void on_send(conn *c, struct io_uring_cqe *cqe)
{
    buf_rec *b = &bufs[c->head];
    uint32_t bid = c->head;

    c->send_busy = 0;
    if (cqe->res < 0) {
        c->closing = 1;
        if (c->recv_armed) {
            /* The recv holds the connection open: end it. */
            struct io_uring_sqe *sqe = get_sqe();

            io_uring_prep_cancel64(sqe, tag(OP_RECV, conn_idx(c)), 0);
            io_uring_sqe_set_data64(sqe, 0);
        }
        conn_maybe_close(c);
        return;
    }
    b->off += (uint32_t)cqe->res;
    if (b->off < b->len) {
        send_head(c); /* a short write: the rest first */
        return;
    }
    c->head = b->next;
    put_buf(bid);
    if (c->head != NONE && !c->closing)
        send_head(c);
    conn_maybe_close(c);
}

/* SIGTERM and SIGINT arrive as a read on a signalfd, a completion like any
 * other. A handler would also do natively, but under valgrind (which
 * delivers a handler only between its time slices) an idle ring would never
 * run it, and callgrind's counts are written only at a clean exit. */
static void arm_signals(void)
{
    static struct signalfd_siginfo info;
    struct io_uring_sqe *sqe;
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0)
        exit(peer_fail(NAME, "signalfd", errno));
    sqe = get_sqe();
    io_uring_prep_read(sqe, fd, &info, sizeof info, 0);
    io_uring_sqe_set_data64(sqe, tag(OP_SIGNAL, 0));
}

static void setup(void)
{
    struct io_uring_params p;
    struct io_uring_buf_reg reg;
    size_t ring_size = N_BUFS * sizeof(struct io_uring_buf);
    int rc, i;

    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    rc = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
    if (rc == -EINVAL) {
        /* Before 6.1: no DEFER_TASKRUN; gyre falls back the same way. */
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_COOP_TASKRUN;
        rc = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
    }
    if (rc < 0)
        exit(peer_fail(NAME, "io_uring_queue_init_params", -rc));

    /* The buffer ring must be page-aligned, hence mmap rather than malloc. */
    br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    buf_mem = malloc((size_t)N_BUFS * PEER_BUF_SIZE);
    if (br == MAP_FAILED || !buf_mem)
        exit(peer_fail(NAME, "buffer ring memory", ENOMEM));
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = N_BUFS;
    reg.bgid = BGID;
    rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc < 0)
        exit(peer_fail(NAME, "io_uring_register_buf_ring", -rc));
    io_uring_buf_ring_init(br);
    for (i = 0; i < N_BUFS; i++)
        io_uring_buf_ring_add(br, buf_mem + (size_t)i * PEER_BUF_SIZE, PEER_BUF_SIZE,
                              (unsigned short)i, io_uring_buf_ring_mask(N_BUFS), i);
    io_uring_buf_ring_advance(br, N_BUFS);
}

int main(int argc, char **argv)
{
    /* liburing before 2.4 has no run-time version call; gyre-bench adds
     * the Debian package's version. */
    int port = peer_parse_port(argc, argv, NAME, "liburing");
    struct io_uring_cqe *cqe;
    unsigned head, seen;
    int rc;

    lfd = peer_listen(port, 0);
    peer_catch_term(); /* SIGPIPE; arm_signals() takes SIGTERM and SIGINT over */
    peer_slab_init(&slab, sizeof(conn));
    setup();
    arm_signals();
    arm_accept();
    while (!peer_stop) {
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            return peer_fail(NAME, "io_uring_submit_and_wait", -rc);
        seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            uint32_t idx = (uint32_t)ud;

            seen++;
            switch (ud >> 32) {
            case OP_ACCEPT:
                on_accept(cqe);
                break;
            case OP_RECV:
                on_recv(conn_at(idx), cqe);
                break;
            case OP_SEND:
                on_send(conn_at(idx), cqe);
                break;
            case OP_SIGNAL:
                peer_stop = 1;
                break;
            default: /* a cancel's own completion */
                break;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    return 0;
}
