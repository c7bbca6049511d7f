/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* exec.c: runs one diff program on one backend and file engine, records its
 * outcome and checks the invariants every run must keep, whatever the
 * backend:
 *  - exactly once: an op whose submit returned 0 completes once (multishot:
 *    until a completion without GYRE_OP_MORE), never twice, and one whose
 *    submit failed never;
 *  - callbacks run from gyre_loop_run() and never inside gyre_submit() or
 *    gyre_cancel();
 *  - per side, reads and writes that moved bytes end in the order they were
 *    submitted (rule 5: ops on one fd start in submission order, each once
 *    the one before it ended);
 *  - per side, the bytes received (read results in completion order, then
 *    what a drain read) equal the bytes written (write results in completion
 *    order); no result above its length; EAGAIN and EINTR never seen;
 *  - the loop frees (nothing left active) once the program is over.
 * Every op lives in its own malloc'd block that its final callback poisons
 * and frees, as the MEMORY contract allows, so ASan sees any later use.
 */
#include "diff.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gyre.h"

enum {
    MAX_CLIENTS = 16,
    BUFPOOL_COUNT = 64,
    BUFPOOL_SIZE = 256,
    DIO = 4096,
    GUARD_MS = 10,
};

struct xop {
    gyre_op op; /* first: the callback finds the record from the op */
    int32_t idx;
    int side;     /* stream side, or -1 */
    int dir;      /* 0 reads, 1 writes */
    uint32_t seq; /* submission order on the side */
    uint8_t *buf;
    struct iovec iov[2];
};

struct xtimer {
    gyre_timer t; /* first */
    int32_t target;
};

struct xside {
    uint32_t sub[2], last[2];
};

static struct {
    const struct diff_prog *p;
    const struct diff_env *env;
    struct diff_outcome *out;
    gyre_loop *loop;
    gyre_bufpool *bufpool;
    gyre_timer guard;
    int (*fd)[2];
    int *closed; /* per res, bit per end: closed by gyre */
    struct sockaddr_in listen_addr;
    int clients[MAX_CLIENTS];
    int nclients;
    int badfd;
    struct xop **mem;
    struct xside *xs;
    int in_api, in_run;
    int timers; /* cancel timers started and not yet fired */
    uint64_t progress_ms;
} S;

static gyre_pool *shared_pool;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;

    if (S.out->failed)
        return;
    S.out->failed = 1;
    va_start(ap, fmt);
    vsnprintf(S.out->why, sizeof S.out->why, fmt, ap);
    va_end(ap);
}

static uint8_t pat_byte(uint32_t pat, size_t i)
{
    return (uint8_t)(pat + i * 131u + (i >> 7));
}

static void append(uint8_t **p, size_t *len, size_t *cap, const uint8_t *src, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;
        uint8_t *q;

        while (c < *len + n)
            c *= 2;
        q = realloc(*p, c);
        if (q == NULL) {
            fail("out of memory recording a stream");
            return;
        }
        *p = q;
        *cap = c;
    }
    memcpy(*p + *len, src, n);
    *len += n;
}

/* The side an op moves bytes of: a read's own end, a write's peer. */
static int op_side(const struct diff_op *o, int *dir)
{
    int kind = S.p->res[o->res];

    switch (o->code) {
    case DOP_READ:
    case DOP_RECV:
    case DOP_READV:
    case DOP_RECV_MS:
        *dir = 0;
        return (int)o->res * 2 + o->end;
    case DOP_WRITE:
    case DOP_SEND:
    case DOP_WRITEV:
        *dir = 1;
        return (int)o->res * 2 + (kind == DRES_PIPE ? 0 : 1 - o->end);
    default:
        return -1;
    }
}

static struct diff_stream *side_stream(int side)
{
    return &S.out->sides[side];
}

static void check_order(struct xop *x, int64_t res)
{
    struct xside *xs;

    if (x->side < 0 || res < 0)
        return;
    xs = &S.xs[x->side];
    if (x->seq < xs->last[x->dir])
        fail("order: side %d %s #%d (submitted %u-th) ended after the %u-th", x->side,
             x->dir ? "write" : "read", x->idx, x->seq, xs->last[x->dir]);
    xs->last[x->dir] = x->seq;
}

static void cancel_op(int32_t t)
{
    struct diff_orec *r = &S.out->ops[t];
    int rc;

    if (r->done || S.mem[t] == NULL) {
        r->cancel_rc = DIFF_CANCEL_SKIPPED;
        return;
    }
    S.in_api++;
    rc = gyre_cancel(S.loop, &S.mem[t]->op);
    S.in_api--;
    r->cancel_rc = rc;
}

static void enter_cb(const char *what, int32_t idx)
{
    if (S.in_api)
        fail("callback of %s #%d inside a gyre call", what, idx);
    if (!S.in_run)
        fail("callback of %s #%d outside gyre_loop_run", what, idx);
    S.progress_ms = now_ms();
}

static void op_cb(gyre_op *gop)
{
    struct xop *x = (struct xop *)gop;
    int32_t i = x->idx;
    const struct diff_op *o = &S.p->ops[i];
    struct diff_orec *r = &S.out->ops[i];
    int64_t res = gop->result;
    int more = (gop->flags & GYRE_OP_MORE) != 0;

    enter_cb("op", i);
    if (r->done) {
        fail("op #%d (%s) completed again (result %lld)", i, diff_opcode_name(o->code),
             (long long)res);
        return;
    }
    r->calls++;
    if (res == -EAGAIN || res == -EINTR)
        fail("op #%d (%s) completed with %s", i, diff_opcode_name(o->code),
             res == -EAGAIN ? "-EAGAIN" : "-EINTR");
    if (more && o->code != DOP_RECV_MS && o->code != DOP_ACCEPT_MS)
        fail("op #%d (%s): GYRE_OP_MORE on a one-shot op", i, diff_opcode_name(o->code));
    switch (o->code) {
    case DOP_RECV_MS:
        if (gop->flags & GYRE_OP_BUFFER) {
            if (res > BUFPOOL_SIZE)
                fail("op #%d: recv_ms result %lld over the buffer", i, (long long)res);
            else if (res > 0)
                append(&side_stream(x->side)->r, &side_stream(x->side)->rlen,
                       &side_stream(x->side)->rcap, gyre_bufpool_buf(S.bufpool, gop->buf_id),
                       (size_t)res);
            if (gyre_bufpool_put(S.bufpool, gop->buf_id) != 0)
                fail("op #%d: gyre_bufpool_put(%u) failed", i, gop->buf_id);
        } else if (res > 0) {
            fail("op #%d: recv_ms result %lld without a buffer", i, (long long)res);
        }
        if (res > 0)
            r->amount += (uint64_t)res;
        break;
    case DOP_ACCEPT_MS:
        if (res >= 0) {
            close((int)res);
            r->amount++;
        }
        break;
    case DOP_READ:
    case DOP_RECV:
    case DOP_READV:
        if (res > (int64_t)o->len) {
            fail("op #%d (%s): result %lld over its length %u", i, diff_opcode_name(o->code),
                 (long long)res, o->len);
        } else if (res > 0) {
            struct diff_stream *st = side_stream(x->side);

            append(&st->r, &st->rlen, &st->rcap, x->buf, (size_t)res);
        }
        check_order(x, res);
        break;
    case DOP_WRITE:
    case DOP_SEND:
    case DOP_WRITEV:
        if (res > (int64_t)o->len) {
            fail("op #%d (%s): result %lld over its length %u", i, diff_opcode_name(o->code),
                 (long long)res, o->len);
        } else if (res > 0) {
            struct diff_stream *st = side_stream(x->side);

            append(&st->w, &st->wlen, &st->wcap, x->buf, (size_t)res);
        }
        check_order(x, res);
        break;
    case DOP_FREAD:
        if (res > (int64_t)o->len)
            fail("op #%d: file read result %lld over its length", i, (long long)res);
        else if (res > 0)
            r->data_hash = diff_fnv(0xcbf29ce484222325ull, x->buf, (size_t)res);
        break;
    case DOP_CLOSE:
        if (res == 0)
            S.closed[o->res] |= 1 << o->end;
        break;
    default:
        break;
    }
    if (more)
        return;
    r->done = 1;
    r->result = res;
    S.mem[i] = NULL;
    if (o->cb_cancel >= 0)
        cancel_op(o->cb_cancel);
    /* Poisoned before it is freed, so a use after this shows without ASan. */
    if (x->buf != NULL) {
        memset(x->buf, 0xa5, o->len ? o->len : 64);
        free(x->buf);
    }
    memset(x, 0x5a, sizeof *x);
    free(x);
}

static void timer_cb(gyre_timer *t)
{
    struct xtimer *xt = (struct xtimer *)t;

    enter_cb("timer", xt->target);
    S.timers--;
    cancel_op(xt->target);
    /* One-shot: inactive once fired, so its memory may go now. */
    memset(xt, 0x5a, sizeof *xt);
    free(xt);
}

static void guard_cb(gyre_timer *t)
{
    (void)t;
}

static uint8_t *op_buf(uint32_t len, int direct)
{
    size_t n = len ? len : 1;

    if (direct) {
        n = (n + DIO - 1) / DIO * DIO;
        return aligned_alloc(DIO, n);
    }
    return malloc(n);
}

static void submit_op(int32_t i)
{
    const struct diff_op *o = &S.p->ops[i];
    struct diff_orec *r = &S.out->ops[i];
    struct xop *x = calloc(1, sizeof *x);
    int fd = o->res >= 0 ? S.fd[o->res][o->end] : -1;
    int direct = o->res >= 0 && S.p->res[o->res] == DRES_DFILE;
    int rc;

    if (x == NULL) {
        fail("out of memory");
        return;
    }
    x->idx = i;
    x->side = -1;
    if (o->res >= 0)
        x->side = op_side(o, &x->dir);
    if (o->len > 0 || o->code == DOP_BADFD) {
        x->buf = op_buf(o->len ? o->len : 64, direct);
        if (x->buf == NULL) {
            free(x);
            fail("out of memory");
            return;
        }
    }
    if (o->code == DOP_WRITE || o->code == DOP_SEND || o->code == DOP_WRITEV ||
        o->code == DOP_FWRITE) {
        for (uint32_t k = 0; k < o->len; k++)
            x->buf[k] = pat_byte(o->pat, k);
    }
    if (x->buf != NULL) {
        x->iov[0].iov_base = x->buf;
        x->iov[0].iov_len = o->len / 2;
        x->iov[1].iov_base = x->buf + o->len / 2;
        x->iov[1].iov_len = o->len - o->len / 2;
    }
    switch (o->code) {
    case DOP_NOP:
        gyre_op_nop(&x->op);
        break;
    case DOP_TIMEOUT:
        gyre_op_timeout(&x->op, o->ns);
        break;
    case DOP_READ:
        gyre_op_read(&x->op, fd, x->buf, o->len, GYRE_OFF_CUR);
        break;
    case DOP_RECV:
        gyre_op_recv(&x->op, fd, x->buf, o->len, 0);
        break;
    case DOP_READV:
        gyre_op_readv(&x->op, fd, x->iov, 2, GYRE_OFF_CUR);
        break;
    case DOP_WRITE:
        gyre_op_write(&x->op, fd, x->buf, o->len, GYRE_OFF_CUR);
        break;
    case DOP_SEND:
        gyre_op_send(&x->op, fd, x->buf, o->len, 0);
        break;
    case DOP_WRITEV:
        gyre_op_writev(&x->op, fd, x->iov, 2, GYRE_OFF_CUR);
        break;
    case DOP_RECV_MS:
        gyre_op_recv_multishot(&x->op, fd, S.bufpool);
        break;
    case DOP_ACCEPT_MS:
        gyre_op_accept_multishot(&x->op, fd);
        break;
    case DOP_FREAD:
        gyre_op_read(&x->op, fd, x->buf, o->len, o->off);
        break;
    case DOP_FWRITE:
        gyre_op_write(&x->op, fd, x->buf, o->len, o->off);
        break;
    case DOP_FSYNC:
        gyre_op_fsync(&x->op, fd, 0);
        break;
    case DOP_CLOSE:
        gyre_op_close(&x->op, fd);
        break;
    case DOP_BADFD:
        gyre_op_read(&x->op, S.badfd, x->buf, 64, GYRE_OFF_CUR);
        break;
    }
    if (o->deadline_ns)
        gyre_op_set_deadline(&x->op, o->deadline_ns);
    if (o->flags & DF_LINK)
        gyre_op_set_link(&x->op);
    if (x->side >= 0)
        x->seq = ++S.xs[x->side].sub[x->dir];
    S.mem[i] = x;
    S.in_api++;
    rc = gyre_submit(S.loop, &x->op, op_cb);
    S.in_api--;
    r->submit_rc = rc;
    if (rc < 0) {
        S.mem[i] = NULL;
        r->done = 1;
        r->result = rc;
        free(x->buf);
        free(x);
    }
}

static void drain_side(int32_t res, int s)
{
    int fd = S.fd[res][s];
    struct diff_stream *st = side_stream((int)res * 2 + s);
    uint64_t until = now_ms() + 2000;
    uint8_t buf[4096];

    while (st->rlen < st->wlen) {
        size_t want = st->wlen - st->rlen;
        ssize_t n = read(fd, buf, want < sizeof buf ? want : sizeof buf);

        if (n > 0) {
            append(&st->r, &st->rlen, &st->rcap, buf, (size_t)n);
            continue;
        }
        if (n == 0) {
            fail("drain res %d side %d: end of file with %zu bytes owed", res, s, want);
            return;
        }
        if (errno != EAGAIN && errno != EINTR) {
            fail("drain res %d side %d: %s", res, s, strerror(errno));
            return;
        }
        if (now_ms() > until) {
            fail("drain res %d side %d: %zu bytes written never arrived", res, s, want);
            return;
        }
        {
            struct pollfd pfd = {fd, POLLIN, 0};

            poll(&pfd, 1, 50);
        }
    }
    /* Nothing more may be there: more received than written would be a
     * duplicated byte (the final check sees it too). */
    {
        ssize_t n = recv(fd, buf, 1, MSG_DONTWAIT);

        if (n > 0 || (n < 0 && errno == ENOTSOCK && read(fd, buf, 1) > 0))
            fail("drain res %d side %d: more bytes than were written", res, s);
    }
}

static void connect_clients(int32_t res, int k)
{
    for (int i = 0; i < k; i++) {
        int fd;

        if (S.nclients >= MAX_CLIENTS) {
            fail("too many clients");
            return;
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&S.listen_addr, sizeof S.listen_addr) < 0) {
            fail("connect to res %d: %s", res, strerror(errno));
            if (fd >= 0)
                close(fd);
            return;
        }
        S.clients[S.nclients++] = fd;
    }
}

static void timer_cancel(int32_t target)
{
    struct xtimer *xt = calloc(1, sizeof *xt);

    if (xt == NULL || gyre_timer_init(S.loop, &xt->t) != 0) {
        free(xt);
        fail("timer_init");
        return;
    }
    xt->target = target;
    if (gyre_timer_start(&xt->t, timer_cb, 1000000u, 0) != 0)
        fail("timer_start");
    else
        S.timers++;
}

static int nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int tcp_pair(int fd[2])
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    fd[0] = fd[1] = -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) < 0)
        goto fail;
    fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd[0] < 0 || connect(fd[0], (struct sockaddr *)&a, sizeof a) < 0)
        goto fail;
    fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (fd[1] < 0)
        goto fail;
    close(l);
    for (int e = 0; e < 2; e++) {
        setsockopt(fd[e], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        nonblock(fd[e]);
    }
    return 0;
fail:
    if (l >= 0)
        close(l);
    if (fd[0] >= 0)
        close(fd[0]);
    return -errno;
}

static int make_file(int direct)
{
    char path[256];
    const char *dir = getenv("TMPDIR");
    int fd, dfd;

    snprintf(path, sizeof path, "%s/gyre-diff-XXXXXX", dir && *dir ? dir : "/tmp");
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (direct) {
        /* Where the file system refuses O_DIRECT the same aligned ops run
         * buffered: the results are the same. */
        dfd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
        if (dfd >= 0) {
            close(fd);
            fd = dfd;
        }
    }
    unlink(path);
    return fd;
}

static int make_res(void)
{
    const struct diff_prog *p = S.p;

    for (uint32_t r = 0; r < p->nres; r++) {
        int *fd = S.fd[r];
        int rc = 0;

        switch (p->res[r]) {
        case DRES_PAIR:
            rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd);
            break;
        case DRES_PIPE:
            rc = pipe2(fd, O_NONBLOCK | O_CLOEXEC);
            break;
        case DRES_TCP:
            if (tcp_pair(fd) < 0)
                rc = -1;
            break;
        case DRES_FILE:
        case DRES_DFILE:
            fd[0] = make_file(p->res[r] == DRES_DFILE);
            rc = fd[0] < 0 ? -1 : 0;
            S.closed[r] |= 2;
            break;
        case DRES_LISTEN: {
            socklen_t alen = sizeof S.listen_addr;

            memset(&S.listen_addr, 0, sizeof S.listen_addr);
            S.listen_addr.sin_family = AF_INET;
            S.listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd[0] < 0 ||
                bind(fd[0], (struct sockaddr *)&S.listen_addr, sizeof S.listen_addr) < 0 ||
                listen(fd[0], 64) < 0 ||
                getsockname(fd[0], (struct sockaddr *)&S.listen_addr, &alen) < 0)
                rc = -1;
            S.closed[r] |= 2;
            break;
        }
        }
        if (rc < 0)
            return -errno;
    }
    /* An fd number that is not open and that no fd made later in the run
     * can take (the kernel hands out the lowest free number): 1000, below
     * FD_SETSIZE for select, unless fds left behind by a hung run reach
     * near it. */
    S.badfd = 1000;
    for (int fd = 4096; fd > 0; fd--) {
        if (fcntl(fd, F_GETFD) >= 0) {
            if (fd + 100 > S.badfd)
                S.badfd = fd + 100;
            break;
        }
    }
    return 0;
}

static int round_done(const struct diff_round *rd)
{
    for (uint32_t i = 0; i < rd->nwait; i++) {
        const struct diff_wait *w = &S.p->waits[rd->wait0 + i];
        const struct diff_orec *r = &S.out->ops[w->op];

        if (r->done)
            continue;
        if (w->amount == 0 || r->amount < w->amount)
            return 0;
    }
    return 1;
}

static void run_step(const struct diff_step *st)
{
    switch (st->kind) {
    case DST_SUBMIT:
        submit_op(st->a);
        break;
    case DST_CANCEL:
        cancel_op(st->a);
        break;
    case DST_DRAIN:
        drain_side(st->a, st->b);
        break;
    case DST_CONNECT:
        connect_clients(st->a, st->b);
        break;
    case DST_TIMER_CANCEL:
        timer_cancel(st->a);
        break;
    }
}

/* Runs the loop until the round's waits hold, or (weak mode) until nothing
 * has happened for a while. Returns -1 on a hang. */
static int run_round(const struct diff_round *rd, uint32_t hang_ms)
{
    S.progress_ms = now_ms();
    while (!round_done(rd) && !S.out->failed) {
        int rc;

        /* Weak: a round whose reads wait for bytes a fault kept back ends
         * once nothing has happened for a while. */
        if (S.env->weak && now_ms() - S.progress_ms > 200)
            return 0;
        if (now_ms() - S.progress_ms > hang_ms)
            return -1;
        S.in_run = 1;
        rc = gyre_loop_run(S.loop, GYRE_RUN_ONCE);
        S.in_run = 0;
        if (rc < 0) {
            fail("gyre_loop_run: %s", gyre_strerror(rc));
            return 0;
        }
    }
    return 0;
}

static void describe_hang(const struct diff_round *rd, uint32_t k)
{
    uint32_t owed = 0;
    int32_t first = -1;

    for (uint32_t i = 0; i < rd->nwait; i++) {
        const struct diff_wait *w = &S.p->waits[rd->wait0 + i];

        if (!S.out->ops[w->op].done && (w->amount == 0 || S.out->ops[w->op].amount < w->amount)) {
            if (first < 0)
                first = w->op;
            owed++;
        }
    }
    S.out->hang = 1;
    snprintf(S.out->why, sizeof S.out->why,
             "hang: round %u never ended: %u op(s) owed, the first #%d (%s)", k, owed, first,
             first >= 0 ? diff_opcode_name(S.p->ops[first].code) : "?");
}

int diff_run(const struct diff_prog *p, const struct diff_env *env, struct diff_outcome *out)
{
    gyre_loop_opts opts;
    uint32_t hang_ms = env->hang_ms ? env->hang_ms : 3000;
    int rc;

    memset(out, 0, sizeof *out);
    memset(&S, 0, sizeof S);
    S.p = p;
    S.env = env;
    S.out = out;
    snprintf(out->backend, sizeof out->backend, "%s", env->backend);
    snprintf(out->engine, sizeof out->engine, "%s",
             env->file_engine ? env->file_engine : "default");
    out->nop = p->nop;
    out->nside = p->nres * 2;
    out->ops = calloc(p->nop ? p->nop : 1, sizeof *out->ops);
    out->sides = calloc(out->nside, sizeof *out->sides);
    S.fd = malloc(p->nres * sizeof *S.fd);
    S.closed = calloc(p->nres, sizeof *S.closed);
    S.mem = calloc(p->nop ? p->nop : 1, sizeof *S.mem);
    S.xs = calloc(out->nside, sizeof *S.xs);
    if (out->ops == NULL || out->sides == NULL || S.fd == NULL || S.closed == NULL ||
        S.mem == NULL || S.xs == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < p->nop; i++)
        out->ops[i].cancel_rc = DIFF_CANCEL_NONE;
    for (uint32_t r = 0; r < p->nres; r++)
        S.fd[r][0] = S.fd[r][1] = -1;
    if (shared_pool == NULL && gyre_pool_new(&shared_pool, NULL) != 0) {
        rc = -ENOMEM;
        goto fail;
    }
    memset(&opts, 0, sizeof opts);
    opts.backend = env->backend;
    opts.file_engine = env->file_engine;
    opts.ring_entries = p->ring_entries;
    opts.pool = shared_pool;
    rc = gyre_loop_new(&S.loop, &opts);
    if (rc < 0) {
        S.loop = NULL;
        goto fail;
    }
    rc = make_res();
    if (rc < 0)
        goto fail;
    for (uint32_t i = 0; i < p->nop; i++) {
        if (p->ops[i].code == DOP_RECV_MS) {
            rc = gyre_bufpool_new(S.loop, &S.bufpool, BUFPOOL_COUNT, BUFPOOL_SIZE);
            if (rc < 0)
                goto fail;
            break;
        }
    }
    gyre_timer_init(S.loop, &S.guard);
    gyre_timer_start(&S.guard, guard_cb, GUARD_MS * 1000000u, GUARD_MS * 1000000u);
    gyre_handle_unref(&S.guard.base);

    for (uint32_t k = 0; k < p->nround && !out->failed; k++) {
        const struct diff_round *rd = &p->rounds[k];

        for (uint32_t i = 0; i < rd->nstep && !out->failed; i++)
            run_step(&p->steps[rd->step0 + i]);
        if (run_round(rd, hang_ms) < 0) {
            describe_hang(rd, k);
            /* The loop cannot be freed with ops owed: it is left behind,
             * with its fds; the caller reports and stops. */
            return 0;
        }
    }
    if (env->weak) {
        /* Faults that change results may leave a read waiting for bytes
         * that never came: cancel what is left and let it end. */
        for (uint32_t i = 0; i < p->nop; i++) {
            if (S.mem[i] != NULL)
                cancel_op((int32_t)i);
        }
        S.progress_ms = now_ms();
        for (;;) {
            int left = 0;

            for (uint32_t i = 0; i < p->nop; i++)
                left += S.mem[i] != NULL;
            /* A cancel timer of the last round may still be due (its op
             * may have ended first): it fires within 1 ms, and the loop
             * can be freed only after it. */
            if (left == 0 && S.timers == 0)
                break;
            if (now_ms() - S.progress_ms > hang_ms) {
                S.out->hang = 1;
                snprintf(out->why, sizeof out->why, "hang: %d op(s) never ended after cancel",
                         left);
                return 0;
            }
            S.in_run = 1;
            gyre_loop_run(S.loop, GYRE_RUN_ONCE);
            S.in_run = 0;
        }
    }
    for (uint32_t i = 0; i < p->nop && !out->failed; i++) {
        if (out->ops[i].submit_rc == 0 && !out->ops[i].done)
            fail("op #%d (%s) never completed", i, diff_opcode_name(p->ops[i].code));
    }
    for (uint32_t s = 0; s < out->nside && !out->failed; s++) {
        struct diff_stream *st = &out->sides[s];

        /* Under faults that change results (weak), a round may end with a
         * read still waiting and the side is not drained: what was received
         * must then be a prefix of what was written. */
        int short_ok = S.env->weak && st->rlen < st->wlen;

        if ((st->rlen != st->wlen && !short_ok) ||
            (st->rlen && st->rlen <= st->wlen && memcmp(st->r, st->w, st->rlen) != 0) ||
            st->rlen > st->wlen) {
            size_t at = 0;

            while (at < st->rlen && at < st->wlen && st->r[at] == st->w[at])
                at++;
            fail("stream res %u side %u: %zu bytes received, %zu written, first difference "
                 "at byte %zu",
                 s / 2, s % 2, st->rlen, st->wlen, at);
        }
    }
    rc = 0;
fail:
    if (S.loop != NULL && !out->hang) {
        int frc;

        gyre_timer_stop(&S.guard);
        if (S.bufpool != NULL && (frc = gyre_bufpool_free(S.bufpool)) != 0 && rc == 0)
            fail("gyre_bufpool_free: %s", gyre_strerror(frc));
        frc = gyre_loop_free(S.loop);
        if (frc != 0 && rc == 0) {
            fail("gyre_loop_free: %s (something was left active)", gyre_strerror(frc));
        }
    }
    if (S.fd != NULL) {
        for (uint32_t r = 0; r < p->nres; r++) {
            for (int e = 0; e < 2; e++) {
                if (S.fd[r][e] >= 0 && !(S.closed[r] & (1 << e)))
                    close(S.fd[r][e]);
            }
        }
    }
    for (int i = 0; i < S.nclients; i++)
        close(S.clients[i]);
    free(S.fd);
    free(S.closed);
    free(S.mem);
    free(S.xs);
    return rc;
}

void diff_outcome_free(struct diff_outcome *out)
{
    if (out->sides != NULL) {
        for (uint32_t s = 0; s < out->nside; s++) {
            free(out->sides[s].w);
            free(out->sides[s].r);
        }
    }
    free(out->sides);
    free(out->ops);
    out->sides = NULL;
    out->ops = NULL;
}

void diff_exec_cleanup(void)
{
    if (shared_pool != NULL && gyre_pool_free(shared_pool) == 0)
        shared_pool = NULL;
}
