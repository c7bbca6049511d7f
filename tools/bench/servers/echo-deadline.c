/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo-deadline.c: gyre-echo-deadline, gyre-echo's op path (one multishot
 * recv per connection, one send op per chunk from the pool buffer it arrived
 * in) with a deadline on every send (gyre_op_set_deadline): what a server
 * that bounds each write pays for it (make bench-instr). A send that misses
 * its deadline ends the connection.
 *
 *   gyre-echo-deadline --port P [--backend B] [--exit-after-clients N]
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srv.h"

#define SEND_DEADLINE_NS (10ull * 1000 * 1000 * 1000)
#define NONE UINT32_MAX

typedef struct conn {
    int fd;
    gyre_op recv, send;  /* send also carries the final close */
    uint32_t head, tail; /* FIFO of buffer ids; head is being sent */
    uint8_t recv_busy, send_busy, close_busy, ending, in_use;
} conn;

/* What a pool buffer holds while a connection has it. */
typedef struct chunk {
    uint32_t off, len, next;
} chunk;

static conn conns[SRV_MAX_CONNS];
static chunk chunks[SRV_BUFS];

static void on_recv(gyre_op *op);
static void on_send(gyre_op *op);

static void on_closed(gyre_op *op)
{
    conn *c = op->data;

    c->close_busy = 0;
    c->in_use = 0;
    srv_conn_done();
}

/* Ending: once nothing is in flight, drop the FIFO and close (an op, so the
 * loop forgets the fd first). */
static void conn_maybe_close(conn *c)
{
    if (!c->ending || c->recv_busy || c->send_busy || c->close_busy)
        return;
    while (c->head != NONE) {
        uint32_t id = c->head;

        c->head = chunks[id].next;
        gyre_bufpool_put(srv_pool, id);
    }
    gyre_op_close(&c->send, c->fd);
    if (gyre_submit(srv_loop, &c->send, on_closed) == 0) {
        c->close_busy = 1;
        return;
    }
    close(c->fd);
    c->in_use = 0;
    srv_conn_done();
}

static void conn_end(conn *c)
{
    c->ending = 1;
    if (c->recv_busy)
        (void)gyre_cancel(srv_loop, &c->recv);
    if (c->send_busy)
        (void)gyre_cancel(srv_loop, &c->send);
    conn_maybe_close(c);
}

static void send_head(conn *c)
{
    chunk *k = &chunks[c->head];
    char *buf = gyre_bufpool_buf(srv_pool, c->head);

    gyre_op_send(&c->send, c->fd, buf + k->off, k->len - k->off, MSG_NOSIGNAL);
    gyre_op_set_deadline(&c->send, SEND_DEADLINE_NS);
    if (gyre_submit(srv_loop, &c->send, on_send) == 0)
        c->send_busy = 1;
    else
        conn_end(c);
}

static void arm_recv(conn *c)
{
    gyre_op_recv_multishot(&c->recv, c->fd, srv_pool);
    c->recv_busy = gyre_submit(srv_loop, &c->recv, on_recv) == 0;
    if (!c->recv_busy)
        conn_end(c);
}

static void on_send(gyre_op *op)
{
    conn *c = op->data;
    uint32_t id = c->head;

    c->send_busy = 0;
    if (op->result < 0 || c->ending) {
        conn_end(c);
        return;
    }
    chunks[id].off += (uint32_t)op->result;
    if (chunks[id].off < chunks[id].len) {
        send_head(c); /* a short write: the rest goes first */
        return;
    }
    c->head = chunks[id].next;
    gyre_bufpool_put(srv_pool, id);
    if (c->head != NONE)
        send_head(c);
}

static void on_recv(gyre_op *op)
{
    conn *c = op->data;

    if (!(op->flags & GYRE_OP_MORE))
        c->recv_busy = 0;
    if (op->result > 0 && (op->flags & GYRE_OP_BUFFER)) {
        chunks[op->buf_id] = (chunk){.off = 0, .len = (uint32_t)op->result, .next = NONE};
        if (c->head == NONE)
            c->head = op->buf_id;
        else
            chunks[c->tail].next = op->buf_id;
        c->tail = op->buf_id;
        if (c->ending)
            conn_maybe_close(c);
        else if (!c->send_busy)
            send_head(c);
        /* A final completion with data: the recv ended for a reason of its
         * own (pool dry, say), so it goes on. */
        if (!c->recv_busy && !c->ending)
            arm_recv(c);
        return;
    }
    if (c->recv_busy)
        return; /* an error inside a recv that goes on */
    /* End of stream, an error or a cancel: end the connection. (A ping-pong
     * client has read every echo before it closes.) */
    conn_end(c);
}

static void on_accept(int fd)
{
    conn *c = NULL;
    size_t i;

    for (i = 0; i < SRV_MAX_CONNS && !c; i++)
        if (!conns[i].in_use && !conns[i].close_busy)
            c = &conns[i];
    if (!c) {
        close(fd);
        return;
    }
    *c = (conn){.fd = fd, .head = NONE, .tail = NONE, .in_use = 1};
    c->recv.data = c->send.data = c;
    arm_recv(c);
}

static void on_stop(void)
{
    size_t i;

    for (i = 0; i < SRV_MAX_CONNS; i++)
        if (conns[i].in_use && !conns[i].ending)
            conn_end(&conns[i]);
}

int main(int argc, char **argv)
{
    int rc = srv_start("gyre-echo-deadline", argc, argv, on_accept, on_stop);

    return rc != 0 ? rc : srv_run();
}
