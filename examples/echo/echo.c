/* echo.c: gyre-echo, a TCP echo server on gyre's operations, and the server
 * gyre-bench's echo scenario measures against the peers in bench/peers/.
 *
 *   gyre-echo --port P [--backend auto|uring|epoll|poll|select]
 *             [--exit-after-clients N] [--version]
 *
 * Listens on 127.0.0.1:P (P = 0: a free port the kernel picks) and says so
 * on stdout, as "gyre-echo: listening on 127.0.0.1:P", before it runs; on a
 * clean exit it prints how many connections it accepted and how many of
 * those it closed at once (no free slot, or shutting down).
 *
 * One multishot accept; each connection has one multishot recv drawing from
 * a shared buffer pool, and each chunk received is sent back at once from
 * the pool buffer it arrived in; the buffer goes back to the pool when its
 * send completes. Nothing is allocated per message
 * or per connection: connections come from a slab made at start, and the
 * record of what each pool buffer holds is indexed by buffer id.
 *
 * Order: a connection has at most one send in flight. Two sends on one
 * stream could otherwise interleave around a short write, so a chunk that
 * arrives while a send is in flight (only when a write was short, or a
 * client pipelines) waits in the connection's FIFO, linked through the
 * per-buffer records. Backpressure: a client that never reads holds pool
 * buffers until the pool runs dry, and then gyre holds every recv back.
 *
 * SIGTERM or SIGINT (a gyre_signal): stop accepting, cancel every recv, let
 * the sends in flight finish, and return 0 once the loop has nothing left.
 */
#include <arpa/inet.h>
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
#define NONE UINT32_MAX

typedef struct conn {
    int fd;
    gyre_op recv, send;
    uint32_t head, tail; /* FIFO of buffer ids; head is being sent */
    uint8_t recv_busy, send_busy, closing, in_use;
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
static gyre_op accept_op;
static gyre_signal sig_term, sig_int;
static int listen_fd, stopping;
/* --exit-after-clients N: exit once N connections have come and gone. */
static long exit_after, clients_done;
/* Reported at exit, so that a load generator can check the server saw every
 * connection it made (make soak does). */
static unsigned long long n_accepted, n_refused;

static void shut_down(void);

static void on_accept(gyre_op *op);
static void on_recv(gyre_op *op);
static void on_send(gyre_op *op);

static void conn_close_if_idle(conn *c)
{
    if (!c->closing || c->recv_busy || c->send_busy)
        return;
    while (c->head != NONE) {
        uint32_t id = c->head;

        c->head = chunks[id].next;
        gyre_bufpool_put(pool, id);
    }
    close(c->fd);
    c->in_use = 0;
    free_conns[n_free++] = (uint32_t)(c - conns);
    if (exit_after > 0 && ++clients_done == exit_after && !stopping)
        shut_down();
}

/* Ends c: its recv is cancelled, and it is closed once nothing of it is in
 * flight. */
static void conn_end(conn *c)
{
    c->closing = 1;
    if (c->recv_busy)
        (void)gyre_cancel(loop, &c->recv);
    conn_close_if_idle(c);
}

static void send_head(conn *c)
{
    chunk *k = &chunks[c->head];
    char *buf = gyre_bufpool_buf(pool, c->head);

    gyre_op_send(&c->send, c->fd, buf + k->off, k->len - k->off, MSG_NOSIGNAL);
    c->send_busy = gyre_submit(loop, &c->send, on_send) == 0;
    if (!c->send_busy)
        conn_end(c);
}

static void arm_recv(conn *c)
{
    gyre_op_recv_multishot(&c->recv, c->fd, pool);
    c->recv_busy = gyre_submit(loop, &c->recv, on_recv) == 0;
    if (!c->recv_busy)
        conn_end(c);
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
        send_head(c); /* a short write: the rest goes first */
        return;
    }
    c->head = chunks[id].next;
    gyre_bufpool_put(pool, id);
    if (c->head != NONE && !c->closing)
        send_head(c);
    else
        conn_close_if_idle(c);
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
        if (!c->send_busy && !c->closing)
            send_head(c);
        /* A final completion with data: the recv ended for a reason of its
         * own (not end of stream), so it goes on. */
        if (!c->recv_busy && !c->closing)
            arm_recv(c);
        return;
    }
    /* End of stream, an error or a cancel. */
    if (!c->recv_busy)
        conn_end(c);
}

static void on_accept(gyre_op *op)
{
    int fd = (int)op->result, one = 1;
    conn *c;

    if (!(op->flags & GYRE_OP_MORE) && !stopping && gyre_submit(loop, &accept_op, on_accept) != 0) {
        fprintf(stderr, "gyre-echo: cannot accept any more\n");
        gyre_loop_stop(loop);
    }
    if (fd < 0)
        return;
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
    (void)gyre_cancel(loop, &accept_op);
    for (i = 0; i < ECHO_MAX_CONNS; i++)
        if (conns[i].in_use)
            conn_end(&conns[i]);
}

/* Returns the listening socket and sets *port to the port it got. */
static int listen_on(long *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    socklen_t len = sizeof sa;
    int fd, one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Non-blocking: on the readiness backends gyre emulates the multishot
     * accept by accepting until EAGAIN, which a blocking listener never
     * gives (accept4 has no per-call MSG_DONTWAIT). io_uring does not care. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "gyre-echo: listen on 127.0.0.1:%ld: %s\n", *port, strerror(errno));
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static int usage(void)
{
    fprintf(stderr, "usage: gyre-echo --port P [--backend auto|uring|epoll|poll|select]\n"
                    "                 [--exit-after-clients N]\n"
                    "       gyre-echo --version\n");
    return 2;
}

int main(int argc, char **argv)
{
    gyre_loop_opts opts = {0};
    long port = -1;
    int i, rc;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("gyre %s\n", gyre_version_string());
            return 0;
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            opts.backend = argv[++i];
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
    listen_fd = listen_on(&port);
    if (listen_fd < 0)
        return 1;
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
    gyre_signal_init(loop, &sig_term);
    gyre_signal_init(loop, &sig_int);
    gyre_op_accept_multishot(&accept_op, listen_fd);
    if ((rc = gyre_signal_start(&sig_term, on_signal, SIGTERM)) < 0 ||
        (rc = gyre_signal_start(&sig_int, on_signal, SIGINT)) < 0 ||
        (rc = gyre_submit(loop, &accept_op, on_accept)) < 0) {
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
    /* Both fail only while something is still in flight, which the loop
     * returning 0 rules out; a failure is reported, not hidden. */
    if ((rc = gyre_bufpool_free(pool)) < 0 || (rc = gyre_loop_free(loop)) < 0) {
        fprintf(stderr, "gyre-echo: shutdown: %s\n", gyre_strerror(rc));
        return 1;
    }
    close(listen_fd);
    printf("gyre-echo: accepted %llu connections, refused %llu\n", n_accepted, n_refused);
    return 0;
}
