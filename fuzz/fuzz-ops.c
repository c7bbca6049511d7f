/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* fuzz-ops.c: libFuzzer target that runs each input as a little program of
 * gyre API calls against one loop.
 *
 * The first byte picks the backend (epoll, poll, select, uring; one this
 * machine lacks becomes epoll) unless GYRE_BACKEND is set. The rest is read
 * byte by byte as actions on a fixed set of resources made per input: two
 * non-blocking socketpairs and two pipes with small buffers (so writes do
 * block), and an unlinked temp file. Actions: submit an op into one of
 * NSLOT slots (nop, read/write/recv/send/readv/writev, poll, timeout, file
 * read/write, multishot recv, shutdown; maybe with a deadline, a link, or a
 * nop resubmitted from its own callback), submit an op already in flight,
 * cancel, timers, watches, run NOWAIT or ONCE (ONCE always with a timer due
 * within ~1 ms, so an input never blocks), and close a socketpair with
 * gyre_op_close and make a new one.
 *
 * Invariants, each an abort() that libFuzzer reports as a crash:
 *  - a submit that returned 0 calls back exactly once (a multishot op: until
 *    a completion without GYRE_OP_MORE), never inside gyre_submit(),
 *    gyre_cancel() or another gyre call, and only from gyre_loop_run();
 *  - a submit or cancel of an op in the wrong state fails;
 *  - no callback for a watch or timer after it was stopped; watch events
 *    are within what was asked for (plus ERR/HUP); no EAGAIN/EINTR results;
 *    read and write results within their lengths;
 *  - per-fd order: on each socketpair direction and pipe, the bytes read
 *    (read results concatenated in submission order) are a prefix of the
 *    bytes written (write results concatenated in submission order). A
 *    direction an op reached through a link is not checked: a linked op
 *    starts when its predecessor ends, not in submission order;
 *  - a close completes after every op still on that fd, with result 0;
 *  - at the end, after cancelling everything and closing every fd through
 *    gyre, all ops have completed within a bounded number of iterations and
 *    gyre_loop_free() returns 0. ASan's leak checker covers the rest.
 *
 * Inputs that once found a bug are kept in fuzz/regress/, named after it;
 * each picks the backend it was found on with its first byte. Replay them
 * all (libFuzzer runs every file it is given once):
 *   build-fuzz/fuzz-ops fuzz/regress/crash-*.bin
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gyre.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum {
    NSLOT = 16,  /* slots the input drives */
    NABSORB = 4, /* nops that take a pending link before a close */
    NTIMER = 4,
    NWATCH = 4,
    NTARGET = 6, /* pair0 side0/1, pair1 side0/1, pipe0, pipe1 */
    BUFSZ = 1024,
    DRAIN_ITERS = 3000,
};

/* System slots after the input's: closes and link absorbers. */
#define SL_CLOSE_PAIR(p, s) (NSLOT + 2 * (p) + (s))
#define SL_CLOSE_PIPE(q, e) (NSLOT + 4 + 2 * (q) + (e))
#define SL_CLOSE_FILE (NSLOT + 8)
#define SL_ABSORB (NSLOT + 9)
#define NALL (SL_ABSORB + NABSORB)

enum op_type {
    T_NOP,
    T_READ,
    T_WRITE,
    T_RECV,
    T_SEND,
    T_READV,
    T_WRITEV,
    T_POLL,
    T_TIMEOUT,
    T_FREAD,
    T_FWRITE,
    T_RECVMS,
    T_SHUTDOWN,
    T_CLOSE, /* system slots only */
    NTYPES = T_CLOSE
};

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "fuzz-ops: " __VA_ARGS__);                                                 \
        fprintf(stderr, " [%s:%d, backend %s]\n", __FILE__, __LINE__, S.backend);                  \
        abort();                                                                                   \
    } while (0)
#define CHECK(e)                                                                                   \
    do {                                                                                           \
        if (!(e))                                                                                  \
            DIE("check failed: %s", #e);                                                           \
    } while (0)

/* One write or read of a direction, in submission order. */
struct rec {
    struct rec *next;
    uint8_t *bytes;
    size_t len;
    int done;
};

/* The byte stream of one direction of one socketpair (for one life of the
 * pair) or of one pipe. */
struct model {
    struct model *all_next;
    struct rec *wq, **wq_tail, *rq, **rq_tail;
    uint8_t *wlog, *rlog;
    size_t wlen, wcap, rlen, rcap, checked;
    uint32_t wctr;
    int tainted;
    int reads_inflight; /* one-shot reads */
    int ms_active;      /* a multishot recv */
};

struct slot {
    gyre_op op; /* first: the callback finds the slot from the op */
    int index;
    int inflight;
    int used;
    int type;
    int fd;
    int pair; /* -1, or the socketpair fd belongs to */
    uint32_t epoch;
    int tainted; /* reached through a link */
    int resubmit;
    int deadline;
    int is_read;
    uint32_t len;
    struct model *m;
    struct rec *rec;
    struct iovec iov[2];
    uint8_t buf[BUFSZ];
};

enum {
    PAIR_OPEN,
    PAIR_CLOSING,
    PAIR_CLOSED
};

struct pair {
    int fd[2];
    int state;
    uint32_t epoch;
    struct model *m[2]; /* m[s]: the direction side s writes */
};

struct pipe_res {
    int fd[2]; /* [0] reads, [1] writes */
    int open;
    struct model *m;
};

struct timer_slot {
    gyre_timer t;
    int active;
    int stop_in_cb;
};

struct watch_slot {
    gyre_watch w;
    int inited;
    int active;
    int fd;
    uint32_t events;
    int stop_in_cb;
};

static struct state {
    const char *backend;
    gyre_loop *loop;
    gyre_bufpool *pool;
    const uint8_t *in;
    size_t in_len, pos;
    int in_api; /* depth of gyre calls that must not call back */
    int in_run;
    int link_pending;
    struct slot slots[NALL];
    struct pair pairs[2];
    struct pipe_res pipes[2];
    int file_fd;
    int file_open;
    struct timer_slot timers[NTIMER];
    struct watch_slot watches[NWATCH];
    gyre_timer guard;
    struct model *models;
} S;

static gyre_pool *shared_pool;
static int have_uring;
static int trace; /* FUZZ_OPS_TRACE=1: each action and completion on stderr */

#define TRACE(...)                                                                                 \
    do {                                                                                           \
        if (trace)                                                                                 \
            fprintf(stderr, "  " __VA_ARGS__);                                                     \
    } while (0)

static uint8_t next(void)
{
    return S.pos < S.in_len ? S.in[S.pos++] : 0;
}

/* --- the byte-stream model --- */

static void grow_append(uint8_t **p, size_t *len, size_t *cap, const uint8_t *src, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 1024;

        while (c < *len + n)
            c *= 2;
        *p = realloc(*p, c);
        CHECK(*p != NULL);
        *cap = c;
    }
    if (n > 0)
        memcpy(*p + *len, src, n);
    *len += n;
}

static struct model *model_new(void)
{
    struct model *m = calloc(1, sizeof *m);

    CHECK(m != NULL);
    m->wq_tail = &m->wq;
    m->rq_tail = &m->rq;
    m->all_next = S.models;
    S.models = m;
    return m;
}

static struct rec *rec_add(struct rec ***tail)
{
    struct rec *r = calloc(1, sizeof *r);

    CHECK(r != NULL);
    **tail = r;
    *tail = &r->next;
    return r;
}

/* Moves the completed prefix of each queue into its log, then compares what
 * both logs have. */
static void model_advance(struct model *m)
{
    size_t n;

    while (m->wq != NULL && m->wq->done) {
        struct rec *r = m->wq;

        grow_append(&m->wlog, &m->wlen, &m->wcap, r->bytes, r->len);
        m->wq = r->next;
        free(r->bytes);
        free(r);
    }
    if (m->wq == NULL)
        m->wq_tail = &m->wq;
    while (m->rq != NULL && m->rq->done) {
        struct rec *r = m->rq;

        grow_append(&m->rlog, &m->rlen, &m->rcap, r->bytes, r->len);
        m->rq = r->next;
        free(r->bytes);
        free(r);
    }
    if (m->rq == NULL)
        m->rq_tail = &m->rq;
    if (m->tainted)
        return;
    n = m->rlen < m->wlen ? m->rlen : m->wlen;
    if (n > m->checked) {
        if (memcmp(m->rlog + m->checked, m->wlog + m->checked, n - m->checked) != 0) {
            size_t i = m->checked;

            while (m->rlog[i] == m->wlog[i])
                i++;
            DIE("stream order: byte %zu read as 0x%02x, written as 0x%02x", i, m->rlog[i],
                m->wlog[i]);
        }
        m->checked = n;
    }
    /* Once everything before has completed, no more can be read than was
     * written. */
    if (m->wq == NULL && m->rq == NULL && m->rlen > m->wlen)
        DIE("stream: %zu bytes read but only %zu written", m->rlen, m->wlen);
}

static void models_free(void)
{
    while (S.models != NULL) {
        struct model *m = S.models;
        struct rec *r, *n;

        for (r = m->wq; r != NULL; r = n) {
            n = r->next;
            free(r->bytes);
            free(r);
        }
        for (r = m->rq; r != NULL; r = n) {
            n = r->next;
            free(r->bytes);
            free(r);
        }
        free(m->wlog);
        free(m->rlog);
        S.models = m->all_next;
        free(m);
    }
}

static void rec_append(struct rec *r, const uint8_t *p, size_t n)
{
    r->bytes = realloc(r->bytes, r->len + n ? r->len + n : 1);
    CHECK(r->bytes != NULL);
    memcpy(r->bytes + r->len, p, n);
    r->len += n;
}

/* --- callbacks --- */

static void enter(void)
{
    S.in_api++;
}

static void leave(void)
{
    S.in_api--;
}

static void callback_allowed(const char *what)
{
    if (S.in_api != 0)
        DIE("%s callback inside a gyre call that must not call back", what);
    if (!S.in_run)
        DIE("%s callback outside gyre_loop_run", what);
}

static void op_cb(gyre_op *op);

static int submit(struct slot *s, int link)
{
    int r;

    if (link)
        gyre_op_set_link(&s->op);
    s->tainted = S.link_pending;
    enter();
    r = gyre_submit(S.loop, &s->op, op_cb);
    leave();
    TRACE("submit slot %d type %d fd %d len %u link %d tainted %d -> %d\n", s->index, s->type,
          s->fd, s->len, link, s->tainted, r);
    if (r > 0)
        DIE("gyre_submit returned %d", r);
    if (r == 0) {
        s->inflight = 1;
        s->used = 1;
        S.link_pending = link;
        if (s->m != NULL) {
            if (s->tainted)
                s->m->tainted = 1;
            s->rec = rec_add(s->is_read ? &s->m->rq_tail : &s->m->wq_tail);
            if (s->is_read && s->type == T_RECVMS)
                s->m->ms_active = 1;
            else if (s->is_read)
                s->m->reads_inflight++;
        }
    }
    return r;
}

static void close_done(struct slot *s)
{
    int i;

    if (s->op.result != 0)
        DIE("close of fd %d completed with %lld", s->fd, (long long)s->op.result);
    for (i = 0; i < NSLOT; i++) {
        struct slot *o = &S.slots[i];

        if (o->inflight && !o->tainted && o->fd == s->fd && o->pair == s->pair &&
            o->epoch == s->epoch)
            DIE("close of fd %d completed before slot %d (type %d) on that fd", s->fd, i, o->type);
    }
}

static void op_cb(gyre_op *op)
{
    struct slot *s = (struct slot *)op;
    int more = (op->flags & GYRE_OP_MORE) != 0;
    int64_t res = op->result;

    callback_allowed("op");
    TRACE("complete slot %d type %d fd %d result %lld flags 0x%x\n", s->index, s->type, s->fd,
          (long long)res, op->flags);
    if (!s->inflight)
        DIE("slot %d (type %d): completion of an op not in flight (result %lld)", s->index, s->type,
            (long long)res);
    if (more && s->type != T_RECVMS)
        DIE("slot %d (type %d): GYRE_OP_MORE on a one-shot op", s->index, s->type);
    if (res == -EAGAIN || res == -EINTR)
        DIE("slot %d (type %d): result %lld reached the callback", s->index, s->type,
            (long long)res);

    if (s->type == T_RECVMS) {
        if (op->flags & GYRE_OP_BUFFER) {
            CHECK(S.pool != NULL);
            if (res <= 0 || res > 256)
                DIE("multishot recv: result %lld with a buffer", (long long)res);
            rec_append(s->rec, gyre_bufpool_buf(S.pool, op->buf_id), (size_t)res);
            CHECK(gyre_bufpool_put(S.pool, op->buf_id) == 0);
        } else if (res > 0) {
            DIE("multishot recv: %lld bytes without a buffer", (long long)res);
        }
    } else if (s->m != NULL && res > 0) {
        if ((uint64_t)res > s->len)
            DIE("slot %d (type %d): result %lld over length %u", s->index, s->type, (long long)res,
                s->len);
        rec_append(s->rec, s->buf, (size_t)res);
    } else if ((s->type == T_FREAD || s->type == T_FWRITE) && res > (int64_t)s->len) {
        DIE("file op: result %lld over length %u", (long long)res, s->len);
    }
    if (more)
        return;

    s->inflight = 0;
    if (s->m != NULL) {
        s->rec->done = 1;
        s->rec = NULL;
        if (s->is_read && s->type == T_RECVMS)
            s->m->ms_active = 0;
        else if (s->is_read)
            s->m->reads_inflight--;
        model_advance(s->m);
        s->m = NULL;
    }
    if (s->type == T_CLOSE)
        close_done(s);
    if (s->resubmit) {
        /* The op may be reused inside its own callback (gyre.h). */
        s->resubmit = 0;
        s->type = s->index & 1 ? T_NOP : T_TIMEOUT;
        s->deadline = 0;
        s->fd = -1;
        s->pair = -1;
        s->is_read = 0;
        if (s->type == T_NOP)
            gyre_op_nop(&s->op);
        else
            gyre_op_timeout(&s->op, 0);
        submit(s, 0);
    }
}

static void timer_cb(gyre_timer *t)
{
    struct timer_slot *ts = t->base.data;

    callback_allowed("timer");
    if (!ts->active)
        DIE("timer %d fired after it was stopped", (int)(ts - S.timers));
    if (ts->stop_in_cb || gyre_timer_get_repeat(t) == 0) {
        if (ts->stop_in_cb)
            gyre_timer_stop(t);
        ts->active = 0;
    }
}

static void guard_cb(gyre_timer *t)
{
    (void)t;
    callback_allowed("guard timer");
}

static void watch_cb(gyre_watch *w, uint32_t events)
{
    struct watch_slot *ws = w->base.data;

    callback_allowed("watch");
    if (!ws->active)
        DIE("watch %d called after it was stopped", (int)(ws - S.watches));
    if (events & ~((ws->events & ~GYRE_EDGE) | GYRE_ERR | GYRE_HUP))
        DIE("watch %d: events 0x%x, asked 0x%x", (int)(ws - S.watches), events, ws->events);
    if (ws->stop_in_cb) {
        CHECK(gyre_watch_stop(w) == 0);
        ws->active = 0;
    }
}

/* --- resources --- */

static void pair_open(struct pair *p)
{
    int sz = 1, s;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd) != 0)
        DIE("socketpair: %s", strerror(errno));
    for (s = 0; s < 2; s++) {
        /* The kernel's minimum, so that a few writes fill the buffers. */
        setsockopt(p->fd[s], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(p->fd[s], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        p->m[s] = model_new();
    }
    p->state = PAIR_OPEN;
    p->epoch++;
}

static void resources_open(void)
{
    int q;

    pair_open(&S.pairs[0]);
    pair_open(&S.pairs[1]);
    for (q = 0; q < 2; q++) {
        if (pipe2(S.pipes[q].fd, O_NONBLOCK | O_CLOEXEC) != 0)
            DIE("pipe2: %s", strerror(errno));
        fcntl(S.pipes[q].fd[1], F_SETPIPE_SZ, 4096);
        S.pipes[q].open = 1;
        S.pipes[q].m = model_new();
    }
    S.file_fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (S.file_fd < 0) {
        char path[] = "/tmp/gyre-fuzz-XXXXXX";

        S.file_fd = mkostemp(path, O_CLOEXEC);
        if (S.file_fd < 0)
            DIE("temp file: %s", strerror(errno));
        unlink(path);
    }
    S.file_open = 1;
}

/* Where target t reads (is_read) or writes, and which direction's model;
 * -1 if that end is not open now. */
static int target_fd(int t, int is_read, int *pair, struct model **m)
{
    *pair = -1;
    *m = NULL;
    if (t < 4) {
        struct pair *p = &S.pairs[t >> 1];
        int side = t & 1;

        if (p->state != PAIR_OPEN)
            return -1;
        *pair = t >> 1;
        *m = p->m[is_read ? 1 - side : side];
        return p->fd[side];
    }
    if (!S.pipes[t - 4].open)
        return -1;
    *m = S.pipes[t - 4].m;
    return S.pipes[t - 4].fd[is_read ? 0 : 1];
}

/* --- actions --- */

static void act_submit(void)
{
    struct slot *s = &S.slots[next() % NSLOT];
    int type = next() % NTYPES, t = next() % NTARGET;
    uint8_t size = next(), flags = next();
    uint32_t len = 1u + 4u * size, i;
    struct model *m;
    int fd = -1, pair = -1, r;

    if (s->inflight) {
        /* Submitting an op in flight is refused and changes nothing. */
        enter();
        r = gyre_submit(S.loop, &s->op, op_cb);
        leave();
        if (r >= 0)
            DIE("gyre_submit of an op in flight returned %d", r);
        return;
    }
    s->is_read = type == T_READ || type == T_RECV || type == T_READV || type == T_RECVMS;
    s->m = NULL;
    s->resubmit = (flags & 4) != 0;
    s->len = len;
    if (type != T_NOP && type != T_TIMEOUT && type != T_FREAD && type != T_FWRITE) {
        fd = target_fd(t, s->is_read || type == T_POLL, &pair, &m);
        if (fd < 0) {
            type = T_NOP;
        } else if (type == T_RECVMS && m->reads_inflight > 0) {
            type = T_RECV; /* multishot data is ordered only when it is alone */
        } else if (s->is_read && m->ms_active) {
            type = T_POLL;
            s->is_read = 0;
        }
        if (type == T_POLL || type == T_SHUTDOWN)
            m = NULL;
        s->m = type == T_NOP ? NULL : m;
    }
    if (type == T_NOP)
        s->is_read = 0;
    s->type = type;
    s->fd = fd;
    s->pair = pair;
    s->epoch = pair >= 0 ? S.pairs[pair].epoch : 0;
    if (!s->is_read && s->m != NULL) {
        /* A pattern that does not repeat within a stream of this size. */
        for (i = 0; i < len; i++) {
            uint32_t c = s->m->wctr++;

            s->buf[i] = (uint8_t)((c * 2654435761u) >> 24);
        }
    }
    s->iov[0].iov_base = s->buf;
    s->iov[0].iov_len = len / 2;
    s->iov[1].iov_base = s->buf + len / 2;
    s->iov[1].iov_len = len - len / 2;
    switch (type) {
    case T_NOP:
        gyre_op_nop(&s->op);
        break;
    case T_READ:
        gyre_op_read(&s->op, fd, s->buf, len, GYRE_OFF_CUR);
        break;
    case T_WRITE:
        gyre_op_write(&s->op, fd, s->buf, len, GYRE_OFF_CUR);
        break;
    case T_RECV:
        gyre_op_recv(&s->op, fd, s->buf, len, 0);
        break;
    case T_SEND:
        gyre_op_send(&s->op, fd, s->buf, len, 0);
        break;
    case T_READV:
        gyre_op_readv(&s->op, fd, s->iov, 2, GYRE_OFF_CUR);
        break;
    case T_WRITEV:
        gyre_op_writev(&s->op, fd, s->iov, 2, GYRE_OFF_CUR);
        break;
    case T_POLL: {
        uint32_t ev =
            (size & 1 ? GYRE_IN : 0) | (size & 2 ? GYRE_OUT : 0) | (size & 4 ? GYRE_RDHUP : 0);

        gyre_op_poll(&s->op, fd, ev ? ev : GYRE_IN);
        break;
    }
    case T_TIMEOUT:
        gyre_op_timeout(&s->op, (uint64_t)size * 4000u);
        break;
    case T_FREAD:
        s->fd = S.file_fd;
        gyre_op_read(&s->op, S.file_fd, s->buf, len, (uint64_t)t * 512u);
        break;
    case T_FWRITE:
        s->fd = S.file_fd;
        gyre_op_write(&s->op, S.file_fd, s->buf, len, (uint64_t)t * 512u);
        break;
    case T_RECVMS:
        if (S.pool == NULL && gyre_bufpool_new(S.loop, &S.pool, 4, 256) != 0)
            S.pool = NULL;
        if (S.pool == NULL) {
            s->type = T_NOP;
            s->m = NULL;
            s->is_read = 0;
            gyre_op_nop(&s->op);
        } else {
            gyre_op_recv_multishot(&s->op, fd, S.pool);
        }
        break;
    case T_SHUTDOWN:
        gyre_op_shutdown(&s->op, fd, size % 3);
        break;
    }
    s->deadline = flags & 1;
    if (flags & 1)
        gyre_op_set_deadline(&s->op, 1u + (uint64_t)next() * 4000u);
    submit(s, (flags & 2) != 0);
}

static void act_cancel(void)
{
    struct slot *s = &S.slots[next() % NSLOT];
    int r;

    if (!s->used)
        return;
    enter();
    r = gyre_cancel(S.loop, &s->op);
    leave();
    TRACE("cancel slot %d (in flight %d) -> %d\n", s->index, s->inflight, r);
    if (s->inflight) {
        if (r != 0 && r != -EALREADY && r != -ENOENT)
            DIE("gyre_cancel of an op in flight returned %d", r);
    } else if (r != -ENOENT) {
        DIE("gyre_cancel of a completed op returned %d", r);
    }
}

static void run(gyre_run_mode mode)
{
    int r;

    TRACE("run %s\n", mode == GYRE_RUN_ONCE ? "once" : "nowait");
    S.in_run = 1;
    r = gyre_loop_run(S.loop, mode);
    S.in_run = 0;
    if (r < 0 || r > 1)
        DIE("gyre_loop_run returned %d", r);
}

/* One blocking iteration, bounded by a timer due within timeout_ns. */
static void run_once(uint64_t timeout_ns)
{
    enter();
    CHECK(gyre_timer_start(&S.guard, guard_cb, timeout_ns, 0) == 0);
    leave();
    run(GYRE_RUN_ONCE);
    gyre_timer_stop(&S.guard);
}

static void act_timer_start(void)
{
    struct timer_slot *ts = &S.timers[next() % NTIMER];
    uint64_t timeout = (uint64_t)next() * 4000u;
    uint8_t rb = next();
    uint64_t repeat = rb & 1 ? (uint64_t)(rb >> 1) * 4000u + 4000u : 0;
    int r;

    ts->stop_in_cb = (rb & 0x80) != 0;
    enter();
    r = gyre_timer_start(&ts->t, timer_cb, timeout, repeat);
    leave();
    if (r != 0)
        DIE("gyre_timer_start returned %d", r);
    ts->active = 1;
}

static void act_timer_stop(void)
{
    struct timer_slot *ts = &S.timers[next() % NTIMER];

    enter();
    CHECK(gyre_timer_stop(&ts->t) == 0);
    leave();
    ts->active = 0;
}

static void act_watch_start(void)
{
    struct watch_slot *ws = &S.watches[next() % NWATCH];
    int t = next() % NTARGET, pair, fd, r;
    uint8_t eb = next();
    uint32_t ev = (eb & 1 ? GYRE_IN : 0) | (eb & 2 ? GYRE_OUT : 0) | (eb & 4 ? GYRE_RDHUP : 0);
    struct model *m;

    if (ev == 0)
        ev = GYRE_IN;
    if (eb & 8)
        ev |= GYRE_EDGE;
    ws->stop_in_cb = (eb & 16) != 0;
    if (!ws->active) {
        fd = target_fd(t, (ev & GYRE_OUT) == 0, &pair, &m);
        if (fd < 0)
            return;
        CHECK(gyre_watch_init(S.loop, &ws->w, fd) == 0);
        ws->w.base.data = ws;
        ws->fd = fd;
        ws->inited = 1;
    }
    enter();
    r = gyre_watch_start(&ws->w, ev, watch_cb);
    leave();
    if (r == 0) {
        ws->active = 1;
        ws->events = ev;
    } else if (r != -EEXIST && r != -ENOTSUP && r != -EINVAL) {
        DIE("gyre_watch_start returned %d", r);
    }
}

static void watch_stop(struct watch_slot *ws)
{
    if (!ws->inited)
        return;
    enter();
    CHECK(gyre_watch_stop(&ws->w) == 0);
    leave();
    ws->active = 0;
}

/* Takes a pending link with a nop, so that the next op (a close) is not a
 * link's successor. Returns 0, or -1 if no absorber is free. */
static int absorb_link(void)
{
    int i;

    if (!S.link_pending)
        return 0;
    for (i = 0; i < NABSORB; i++) {
        struct slot *s = &S.slots[SL_ABSORB + i];

        if (s->inflight)
            continue;
        s->type = T_NOP;
        s->deadline = 0;
        s->fd = -1;
        s->pair = -1;
        s->m = NULL;
        s->is_read = 0;
        gyre_op_nop(&s->op);
        if (submit(s, 0) != 0)
            DIE("absorbing nop refused");
        return 0;
    }
    return -1;
}

static void submit_close(int slot, int fd, int pair)
{
    struct slot *s = &S.slots[slot];

    CHECK(!s->inflight);
    s->type = T_CLOSE;
    s->deadline = 0;
    s->fd = fd;
    s->pair = pair;
    s->epoch = pair >= 0 ? S.pairs[pair].epoch : 0;
    s->m = NULL;
    s->is_read = 0;
    s->resubmit = 0;
    gyre_op_close(&s->op, fd);
    if (submit(s, 0) != 0)
        DIE("close of fd %d refused", fd);
}

/* Stops watches on fd (gyre.h: before closing it). */
static void watches_off(int fd)
{
    int i;

    for (i = 0; i < NWATCH; i++)
        if (S.watches[i].active && S.watches[i].fd == fd)
            watch_stop(&S.watches[i]);
}

static void pairs_update(void)
{
    int p;

    for (p = 0; p < 2; p++)
        if (S.pairs[p].state == PAIR_CLOSING && !S.slots[SL_CLOSE_PAIR(p, 0)].inflight &&
            !S.slots[SL_CLOSE_PAIR(p, 1)].inflight)
            S.pairs[p].state = PAIR_CLOSED;
}

static void pair_close(int p)
{
    struct pair *pr = &S.pairs[p];

    if (absorb_link() != 0)
        return;
    watches_off(pr->fd[0]);
    watches_off(pr->fd[1]);
    pr->state = PAIR_CLOSING;
    submit_close(SL_CLOSE_PAIR(p, 0), pr->fd[0], p);
    submit_close(SL_CLOSE_PAIR(p, 1), pr->fd[1], p);
}

static void act_pair(void)
{
    int p = next() % 2;

    pairs_update();
    if (S.pairs[p].state == PAIR_OPEN)
        pair_close(p);
    else if (S.pairs[p].state == PAIR_CLOSED)
        pair_open(&S.pairs[p]);
}

static int any_inflight(void)
{
    int i;

    for (i = 0; i < NALL; i++)
        if (S.slots[i].inflight)
            return 1;
    return 0;
}

/* Runs until no op is in flight, cancelling the input's ops each time. */
static void drain(const char *phase)
{
    int it, i;

    for (it = 0; it < DRAIN_ITERS && any_inflight(); it++) {
        for (i = 0; i < NSLOT; i++) {
            if (S.slots[i].inflight) {
                int r;

                enter();
                r = gyre_cancel(S.loop, &S.slots[i].op);
                leave();
                if (it < 3 || it == DRAIN_ITERS - 1)
                    TRACE("drain %d: cancel slot %d -> %d\n", it, i, r);
                if (r != 0 && r != -EALREADY && r != -ENOENT)
                    DIE("gyre_cancel in drain returned %d", r);
            }
        }
        run_once(1000000u);
    }
    if (any_inflight()) {
        for (i = 0; i < NALL; i++)
            if (S.slots[i].inflight)
                fprintf(stderr, "fuzz-ops: %s: slot %d (type %d, fd %d) still in flight\n", phase,
                        i, S.slots[i].type, S.slots[i].fd);
        DIE("%s: ops still in flight after %d iterations", phase, DRAIN_ITERS);
    }
}

static void teardown(void)
{
    struct model *m;
    int i, p, q, r;

    drain("drain");
    for (i = 0; i < NWATCH; i++)
        if (S.watches[i].active)
            watch_stop(&S.watches[i]);
    for (i = 0; i < NTIMER; i++) {
        gyre_timer_stop(&S.timers[i].t);
        S.timers[i].active = 0;
    }
    /* Every fd through gyre_op_close, as gyre.h asks for fds ops used. */
    if (absorb_link() != 0)
        DIE("no free absorber after the drain");
    pairs_update();
    for (p = 0; p < 2; p++)
        if (S.pairs[p].state == PAIR_OPEN)
            pair_close(p);
    for (q = 0; q < 2; q++) {
        submit_close(SL_CLOSE_PIPE(q, 0), S.pipes[q].fd[0], -1);
        submit_close(SL_CLOSE_PIPE(q, 1), S.pipes[q].fd[1], -1);
        S.pipes[q].open = 0;
    }
    submit_close(SL_CLOSE_FILE, S.file_fd, -1);
    S.file_open = 0;
    drain("close");
    for (m = S.models; m != NULL; m = m->all_next)
        model_advance(m);
    if (S.pool != NULL) {
        r = gyre_bufpool_free(S.pool);
        if (r != 0)
            DIE("gyre_bufpool_free returned %d with nothing in flight", r);
        S.pool = NULL;
    }
    r = gyre_loop_free(S.loop);
    if (r != 0) {
        gyre_stats st;

        gyre_loop_stats(S.loop, &st);
        DIE("gyre_loop_free returned %d at the end (active handles %u, refs %u)", r,
            st.active_handles, st.active_refs);
    }
    S.loop = NULL;
}

static void on_sigpipe(int sig)
{
    static const char msg[] = "fuzz-ops: SIGPIPE raised (rule 6)\n";

    (void)sig;
    (void)!write(2, msg, sizeof msg - 1);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sigaction sa;

    (void)argc;
    (void)argv;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    sigaction(SIGPIPE, &sa, NULL);
    have_uring = gyre_backend_supported("uring") == 1;
    trace = secure_getenv("FUZZ_OPS_TRACE") != NULL;
    if (gyre_pool_new(&shared_pool, NULL) != 0)
        shared_pool = NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"epoll", "poll", "select", "uring"};
    gyre_loop_opts opts;
    int i, r, steps;

    memset(&S, 0, sizeof S);
    S.backend = "?";
    S.in = data;
    S.in_len = size;
    memset(&opts, 0, sizeof opts);
    opts.pool = shared_pool;
    if (secure_getenv("GYRE_BACKEND") == NULL) {
        opts.backend = names[next() % 4];
        if (strcmp(opts.backend, "uring") == 0 && !have_uring)
            opts.backend = "epoll";
    } else {
        next();
    }
    r = gyre_loop_new(&S.loop, &opts);
    if (r != 0)
        DIE("gyre_loop_new(%s) returned %d", opts.backend ? opts.backend : "env", r);
    S.backend = gyre_loop_backend(S.loop);
    for (i = 0; i < NALL; i++) {
        S.slots[i].index = i;
        S.slots[i].fd = -1;
        S.slots[i].pair = -1;
    }
    for (i = 0; i < NTIMER; i++) {
        CHECK(gyre_timer_init(S.loop, &S.timers[i].t) == 0);
        S.timers[i].t.base.data = &S.timers[i];
    }
    CHECK(gyre_timer_init(S.loop, &S.guard) == 0);
    resources_open();

    for (steps = 0; S.pos < S.in_len && steps < 4096; steps++) {
        pairs_update();
        switch (next() % 12) {
        case 0:
        case 1:
        case 2:
            act_submit();
            break;
        case 3:
            act_cancel();
            break;
        case 4:
        case 5:
            run(GYRE_RUN_NOWAIT);
            break;
        case 6:
            run_once((uint64_t)next() * 4000u);
            break;
        case 7:
            act_timer_start();
            break;
        case 8:
            act_timer_stop();
            break;
        case 9:
            act_watch_start();
            break;
        case 10:
            watch_stop(&S.watches[next() % NWATCH]);
            break;
        case 11:
            act_pair();
            break;
        }
    }
    teardown();
    models_free();
    return 0;
}
