/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo.c: gyre-echo, a TCP echo server on gyre's operations, and the server
 * gyre-bench's echo scenario measures against the peers in bench/peers/.
 *
 *   gyre-echo --port P [--backend auto|uring|epoll|poll|select]
 *             [--max-queued N] [--exit-after-clients N] [--try-send] [--version]
 *
 * Listens on 127.0.0.1:P (P = 0: a free port the kernel picks) and says so
 * on stdout, as "gyre-echo: listening on 127.0.0.1:P", before it runs; on a
 * clean exit it prints how many connections it accepted and how many of
 * those it closed at once (no free slot, or shutting down), then how often it
 * paused a connection and ran out of descriptors (see the man page).
 *
 * Accepting is a gyre_listener with a reserve descriptor: out of descriptors
 * (EMFILE), it stops accepting and retries once per back-off interval instead
 * of spinning on accept, and sheds one waiting connection per interval.
 *
 * Each connection has one multishot recv drawing from a shared buffer pool,
 * and each chunk received is sent back at once from the pool buffer it
 * arrived in; the buffer goes back to the pool when its send completes.
 * Nothing is allocated per message or per connection: connections come from
 * a slab made at start, and the record of what each pool buffer holds is
 * indexed by buffer id.
 *
 * Order: a connection has at most one send in flight. Two sends on one
 * stream could otherwise interleave around a short write, so a chunk that
 * arrives while a send is in flight (only when a write was short, or a
 * client pipelines) waits in the connection's FIFO, linked through the
 * per-buffer records.
 *
 * Back-pressure, per connection: a client that sends but does not read
 * fills its FIFO. When --max-queued chunks wait behind the one being sent,
 * the connection's recv is cancelled (paused); when half of them have gone,
 * the recv is armed again. So one client that never reads holds at most its
 * cap (plus the chunks the kernel had already received when the cancel took
 * effect), and everyone else goes on; TCP flow control stops the client.
 * The count is kept only where a chunk has to wait (a send is in flight), so
 * the ping-pong path, where each chunk is sent as it arrives, pays nothing.
 *
 * End of stream (the client shut down its write side): everything queued is
 * still sent, then the socket is closed. Its receive side is empty by then,
 * so the close is a plain FIN, never a reset. An error, or shutting down,
 * drops what is queued and closes at once.
 *
 * --try-send: a chunk that arrives with no send in flight is sent at once
 * with gyre_try_send(), no op at all when the kernel takes it whole (the
 * ping-pong case); only what is left goes with a send op, moved whole
 * (MSG_WAITALL) and carrying its buffer back to the pool itself
 * (gyre_op_set_bufpool_put()). The default path is the op path gyre-bench
 * measures; --try-send is a variant measured beside it.
 *
 * SIGTERM or SIGINT (a gyre_signal): stop accepting, cancel every recv and
 * send, close every connection, and return 0 once the loop has nothing left.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gyre.h>

#define ECHO_BUF_SIZE 4096 /* the chunk size; the peers read this much too */
#define ECHO_BUFS 1024     /* a power of two, as gyre_bufpool_new requires */
/* Room for a client that keeps 1,000 connections in flight and opens the next
 * as soon as it closes one (make soak): a connection the client has closed
 * holds its slot here until the end of stream is read. */
#define ECHO_MAX_CONNS 4096
/* Chunks that may wait behind the one being sent before a connection's
 * reading pauses: 64 KiB, far above what a ping-pong client ever has waiting
 * (none, or one after a short write), and 1/64 of the pool. */
#define ECHO_MAX_QUEUED 16
#define NONE UINT32_MAX

/* conn.end */
#define END_DRAIN 1 /* end of stream read: send the FIFO, then close */
#define END_ABORT 2 /* an error or shutdown: drop the FIFO and close */

typedef struct conn {
    int fd;
    gyre_op recv, send;  /* send also carries the final close */
    uint32_t head, tail; /* FIFO of buffer ids; head is being sent */
    uint32_t waiting;    /* buffers in the FIFO behind the head */
    uint8_t recv_busy, send_busy, close_busy;
    uint8_t paused; /* reading stopped by the cap */
    uint8_t end;    /* END_*: one byte, so the send path tests it once */
    uint8_t in_use;
} conn;

/* What a pool buffer holds while a connection has it. */
typedef struct chunk {
    uint32_t off, len, next;
} chunk;

static gyre_loop *loop;
static gyre_bufpool *pool;
static chunk chunks[ECHO_BUFS];
static conn conns[ECHO_MAX_CONNS];
static uint32_t free_conns[ECHO_MAX_CONNS], n_free;
static gyre_listener listener;
static gyre_signal sig_term, sig_int;
static int stopping, failed;
/* --max-queued N: a connection pauses when N buffers wait behind the one
 * being sent, and resumes at N / 2. */
static uint32_t max_queued = ECHO_MAX_QUEUED, resume_at = ECHO_MAX_QUEUED / 2;
/* --exit-after-clients N: exit once N connections have come and gone. */
static long exit_after, clients_done;
/* Reported at exit, so that a load generator can check the server saw every
 * connection it made (make soak does), and a test that a client which never
 * reads was paused without draining the pool. pool_low and most_waiting
 * are sampled only when a connection is at its cap (the slow path). */
static unsigned long long n_accepted, n_refused, n_paused;
static uint32_t pool_low = ECHO_BUFS, most_waiting;

static void shut_down(void);

static void on_recv(gyre_op *op);
/* The recv callback: on_recv, or on_recv_try with --try-send. */
static gyre_op_cb recv_cb = on_recv;

static void on_send(gyre_op *op);
static void on_closed(gyre_op *op);

static void conn_free(conn *c)
{
    c->in_use = 0;
    free_conns[n_free++] = (uint32_t)(c - conns);
    if (exit_after > 0 && ++clients_done == exit_after && !stopping)
        shut_down();
}

/* Closes c once nothing of it is in flight and it is done: ended by an error
 * or shutdown, or at end of stream with its FIFO sent. The close is an op
 * (on the idle send op) so that the loop forgets the fd before the number is
 * handed out again. */
static void conn_maybe_close(conn *c)
{
    if (c->recv_busy || c->send_busy || c->close_busy)
        return;
    if (c->end != END_ABORT && !(c->end == END_DRAIN && c->head == NONE))
        return;
    while (c->head != NONE) {
        uint32_t id = c->head;

        c->head = chunks[id].next;
        gyre_bufpool_put(pool, id);
    }
    c->waiting = 0;
    gyre_op_close(&c->send, c->fd);
    if (gyre_submit(loop, &c->send, on_closed) == 0) {
        c->close_busy = 1;
        return;
    }
    /* -ENOMEM only; no op of c is in flight, so close(2) is safe. */
    close(c->fd);
    conn_free(c);
}

/* Ends c at once: its ops are cancelled, its FIFO dropped, and it is closed
 * once they have completed. */
static void conn_end(conn *c)
{
    c->end = END_ABORT;
    if (c->recv_busy)
        (void)gyre_cancel(loop, &c->recv);
    if (c->send_busy)
        (void)gyre_cancel(loop, &c->send);
    conn_maybe_close(c);
}

static void send_head(conn *c)
{
    chunk *k = &chunks[c->head];
    char *buf = gyre_bufpool_buf(pool, c->head);

    gyre_op_send(&c->send, c->fd, buf + k->off, k->len - k->off, MSG_NOSIGNAL);
    if (gyre_submit(loop, &c->send, on_send) == 0)
        c->send_busy = 1;
    else
        conn_end(c);
}

static void arm_recv(conn *c)
{
    gyre_op_recv_multishot(&c->recv, c->fd, pool);
    c->recv_busy = gyre_submit(loop, &c->recv, recv_cb) == 0;
    if (!c->recv_busy)
        conn_end(c);
}

/* c's FIFO reached the cap: stop reading it. The cancel takes effect on a
 * later iteration (io_uring may have posted more chunks by then, which are
 * queued like any other); the recv's final completion then finds c paused
 * and leaves it. */
static void conn_at_cap(conn *c)
{
    uint32_t avail = gyre_bufpool_available(pool);

    if (avail < pool_low)
        pool_low = avail;
    if (c->waiting > most_waiting)
        most_waiting = c->waiting;
    if (c->paused)
        return;
    c->paused = 1;
    n_paused++;
    if (c->recv_busy)
        (void)gyre_cancel(loop, &c->recv); /* -EALREADY: an earlier pause's cancel */
}

/* c's FIFO drained to resume_at: read again. If the pause's cancel has not
 * completed yet, its completion re-arms instead (the op is still busy). */
static void conn_resume(conn *c)
{
    c->paused = 0;
    if (!c->recv_busy && !c->end)
        arm_recv(c);
}

static void on_send(gyre_op *op)
{
    conn *c = op->data;
    uint32_t id = c->head;

    c->send_busy = 0;
    if (op->result < 0) {
        conn_end(c);
        return;
    }
    chunks[id].off += (uint32_t)op->result;
    if (chunks[id].off < chunks[id].len) {
        if (c->end != END_ABORT)
            send_head(c); /* a short write: the rest goes first */
        else
            conn_maybe_close(c);
        return;
    }
    c->head = chunks[id].next;
    gyre_bufpool_put(pool, id);
    if (c->head != NONE && c->end != END_ABORT) {
        /* The next chunk waited: it stops waiting. Sent before resuming,
         * so that a failed re-arm finds the send busy and cancels it
         * rather than closing on the idle op. */
        c->waiting--;
        send_head(c);
        if (c->paused && c->waiting <= resume_at)
            conn_resume(c);
    } else if (c->end) {
        conn_maybe_close(c);
    }
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
        if (!c->send_busy && c->end != END_ABORT)
            send_head(c);
        else if (++c->waiting >= max_queued && c->end != END_ABORT)
            conn_at_cap(c); /* it waits behind a send */
        /* A final completion with data: the recv ended for a reason of its
         * own (not end of stream), so it goes on unless paused. */
        if (!c->recv_busy && !c->paused && c->end != END_ABORT)
            arm_recv(c);
        return;
    }
    if (c->recv_busy)
        return; /* an error inside a recv that goes on: nothing to do */
    if (op->result == 0) {
        /* End of stream: send what is queued, then close. */
        if (!c->end)
            c->end = END_DRAIN;
        conn_maybe_close(c);
    } else if (op->result == -ECANCELED && c->end != END_ABORT) {
        /* A pause's cancel. Resumed meanwhile: read again now. */
        if (!c->paused)
            arm_recv(c);
    } else {
        conn_end(c); /* an error, or the cancel of conn_end */
    }
}

/* --try-send. */

static void on_send_try(gyre_op *op);

/* Sends c's FIFO from its head: each chunk by gyre_try_send() while the
 * kernel takes it whole; the first it does not goes (from where the try
 * left it) with a send op that gives the buffer back when it completes. */
static void send_fifo_try(conn *c)
{
    for (;;) {
        uint32_t id = c->head;
        chunk *k = &chunks[id];
        char *buf = gyre_bufpool_buf(pool, id);
        int64_t n = gyre_try_send(loop, c->fd, buf + k->off, k->len - k->off, 0);

        if (n == (int64_t)(k->len - k->off)) {
            c->head = k->next;
            gyre_bufpool_put(pool, id);
            if (c->head == NONE)
                return;
            c->waiting--;
            continue;
        }
        if (n < 0 && n != -EAGAIN) {
            conn_end(c);
            return;
        }
        if (n > 0)
            k->off += (uint32_t)n;
        gyre_op_send(&c->send, c->fd, buf + k->off, k->len - k->off, MSG_NOSIGNAL | MSG_WAITALL);
        gyre_op_set_bufpool_put(&c->send, pool, id);
        if (gyre_submit(loop, &c->send, on_send_try) == 0)
            c->send_busy = 1;
        else
            conn_end(c); /* the buffer is still c's: the close puts it */
        return;
    }
}

static void on_send_try(gyre_op *op)
{
    conn *c = op->data;

    c->send_busy = 0;
    /* Whole or failed (MSG_WAITALL); either way its buffer is back. */
    c->head = chunks[c->head].next;
    if (op->result < 0) {
        conn_end(c);
        return;
    }
    if (c->head != NONE && c->end != END_ABORT) {
        c->waiting--;
        send_fifo_try(c);
        if (c->paused && c->waiting <= resume_at)
            conn_resume(c);
    }
    if (c->end)
        conn_maybe_close(c);
}

static void on_recv_try(gyre_op *op)
{
    conn *c = op->data;
    uint32_t id = op->buf_id;

    /* Anything but a chunk for an idle connection (nothing queued or in
     * flight) takes the op path's handling: it queues behind the send in
     * flight, whose callback sends it on. */
    if (op->result <= 0 || !(op->flags & GYRE_OP_BUFFER) || c->send_busy || c->head != NONE ||
        c->end == END_ABORT) {
        on_recv(op);
        return;
    }
    if (!(op->flags & GYRE_OP_MORE))
        c->recv_busy = 0;
    chunks[id] = (chunk){.off = 0, .len = (uint32_t)op->result, .next = NONE};
    c->head = c->tail = id;
    send_fifo_try(c);
    if (!c->recv_busy && !c->paused && c->end != END_ABORT)
        arm_recv(c);
}

static void on_closed(gyre_op *op)
{
    conn *c = op->data;

    c->close_busy = 0;
    conn_free(c);
}

static void on_accept(gyre_listener *l, int fd)
{
    int one = 1;
    conn *c;

    (void)l;
    if (fd < 0) {
        /* The listener failed for good (not for lack of descriptors, which
         * it rides out by itself). */
        fprintf(stderr, "gyre-echo: accept: %s\n", gyre_strerror(fd));
        failed = 1;
        if (!stopping)
            shut_down();
        return;
    }
    n_accepted++;
    if (n_free == 0 || stopping) {
        close(fd); /* full: the client sees the connection close */
        n_refused++;
        return;
    }
    c = &conns[free_conns[--n_free]];
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->head = c->tail = NONE;
    c->in_use = 1;
    c->recv.data = c->send.data = c;
    /* Ping-pong must not wait for Nagle. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    arm_recv(c);
}

static void on_signal(gyre_signal *s, int signo)
{
    (void)s;
    (void)signo;
    shut_down();
}

/* Stop accepting, end every connection; the loop returns when the last op
 * has completed. */
static void shut_down(void)
{
    size_t i;

    stopping = 1;
    gyre_signal_stop(&sig_term);
    gyre_signal_stop(&sig_int);
    /* Stopping the watchers restored the default action; a second SIGTERM
     * (a harness that stops a server whose --exit-after-clients run is
     * already ending) would kill the process mid-shutdown and lose its exit
     * status. Shutdown is underway: further signals change nothing. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    (void)gyre_listener_close(&listener, NULL);
    for (i = 0; i < ECHO_MAX_CONNS; i++)
        if (conns[i].in_use && !conns[i].close_busy)
            conn_end(&conns[i]);
}

static int usage(void)
{
    fprintf(stderr, "usage: gyre-echo --port P [--backend auto|uring|epoll|poll|select]\n"
                    "                 [--max-queued N] [--exit-after-clients N] [--try-send]\n"
                    "       gyre-echo --version\n");
    return 2;
}

int main(int argc, char **argv)
{
    gyre_loop_opts opts = {0};
    gyre_listen_opts lopts = {.flags = GYRE_LISTEN_RESERVE_FD};
    gyre_listen_stats ls;
    long port = -1, queued;
    int i, rc;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("gyre %s\n", gyre_version_string());
            return 0;
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            opts.backend = argv[++i];
        } else if (strcmp(argv[i], "--max-queued") == 0 && i + 1 < argc) {
            queued = strtol(argv[++i], NULL, 10);
            if (queued < 1 || queued > ECHO_BUFS / 2)
                return usage();
            max_queued = (uint32_t)queued;
            resume_at = max_queued / 2;
        } else if (strcmp(argv[i], "--try-send") == 0) {
            recv_cb = on_recv_try;
        } else if (strcmp(argv[i], "--exit-after-clients") == 0 && i + 1 < argc) {
            /* For measuring under valgrind, where a signal cannot interrupt
             * a thread blocked in io_uring_enter: the run ends by itself. */
            exit_after = strtol(argv[++i], NULL, 10);
        } else {
            return usage();
        }
    }
    if (port < 0 || port > 65535)
        return usage();
    rc = gyre_loop_new(&loop, &opts);
    if (rc < 0) {
        fprintf(stderr, "gyre-echo: gyre_loop_new: %s\n", gyre_strerror(rc));
        return 1;
    }
    rc = gyre_bufpool_new(loop, &pool, ECHO_BUFS, ECHO_BUF_SIZE);
    if (rc < 0) {
        fprintf(stderr, "gyre-echo: gyre_bufpool_new: %s\n", gyre_strerror(rc));
        return 1;
    }
    for (i = 0; i < ECHO_MAX_CONNS; i++)
        free_conns[n_free++] = (uint32_t)(ECHO_MAX_CONNS - 1 - i);
    rc = gyre_listen_tcp(loop, &listener, "127.0.0.1", (uint16_t)port, &lopts, on_accept);
    if (rc < 0) {
        fprintf(stderr, "gyre-echo: listen on 127.0.0.1:%ld: %s\n", port, gyre_strerror(rc));
        return 1;
    }
    gyre_signal_init(loop, &sig_term);
    gyre_signal_init(loop, &sig_int);
    rc = gyre_listener_port(&listener);
    if (rc >= 0) {
        port = rc;
        rc = gyre_signal_start(&sig_term, on_signal, SIGTERM);
    }
    if (rc >= 0)
        rc = gyre_signal_start(&sig_int, on_signal, SIGINT);
    if (rc < 0) {
        fprintf(stderr, "gyre-echo: start: %s\n", gyre_strerror(rc));
        return 1;
    }
    printf("gyre-echo: listening on 127.0.0.1:%ld\n", port);
    fflush(stdout);
    rc = gyre_loop_run(loop, GYRE_RUN_DEFAULT);
    if (rc < 0) {
        fprintf(stderr, "gyre-echo: gyre_loop_run: %s\n", gyre_strerror(rc));
        return 1;
    }
    /* Read before the loop is freed; the listener is closed but keeps its
     * counters. */
    (void)gyre_listener_stats(&listener, &ls);
    /* Both fail only while something is still in flight, which the loop
     * returning 0 rules out; a failure is reported, not hidden. */
    if ((rc = gyre_bufpool_free(pool)) < 0 || (rc = gyre_loop_free(loop)) < 0) {
        fprintf(stderr, "gyre-echo: shutdown: %s\n", gyre_strerror(rc));
        return 1;
    }
    printf("gyre-echo: accepted %llu connections, refused %llu\n", n_accepted, n_refused);
    printf("gyre-echo: paused reading %llu times, fewest free buffers at a cap %u of %u, "
           "most waiting on one connection %u\n",
           n_paused, pool_low, ECHO_BUFS, most_waiting);
    printf("gyre-echo: out of descriptors %llu times, %llu accept calls in %llu back-off "
           "intervals, shed %llu\n",
           (unsigned long long)ls.exhaustions, (unsigned long long)ls.exhausted_attempts,
           (unsigned long long)ls.backoff_ticks, (unsigned long long)ls.shed);
    return failed;
}
