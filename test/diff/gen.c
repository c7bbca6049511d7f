/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* gen.c: makes a deterministic op program from a seed or fuzzer bytes.
 *
 * The generator keeps a model of every side (the receiving end of a pair or
 * pipe): `known` says the bytes in it are known exactly (`avail`), else
 * `avail` is a lower bound. Each action below is taken only where its
 * outcome cannot depend on timing:
 *  - a read never asks for more than the side is sure to get (the sum of the
 *    lengths of the reads of a side stays within what was written), so every
 *    read completes with at least one byte; its count is exact only when the
 *    side is known and nothing is written to it in the round (else
 *    DF_COUNT_VARIES);
 *  - an idle read (DF_IDLE) is made only on a known empty side that no one
 *    writes to until it has ended: by its deadline (-ETIME), a cancel (from
 *    outside callbacks, from a timer, from another op's callback) or a close
 *    of its fd (-ECANCELED);
 *  - a cancel of an op that may already have completed is marked DF_RACY
 *    (only ops that move no bytes: nops, short timeouts);
 *  - an end is closed only when its own side is known empty and its peer's
 *    side has no op waiting (which would see end of file or a reset);
 *  - a side that has anything linked on it in a round has nothing else in
 *    that round (a linked op starts when its predecessor ends, not in
 *    submission order);
 *  - file reads read only what rounds before wrote.
 * The last two rounds cancel what is pending, drain and close everything.
 */
#include "diff.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds that keep every write whole: the bytes a side may hold stay well
 * within a socketpair's, pipe's and loopback TCP connection's buffers. */
enum {
    MAX_SIDE_BYTES = 24 * 1024,
    MAX_TCP_BYTES = 8 * 1024,
    MAX_WRITE = 2048,
    BIG_PAIRS = 150,
    BIG_TIMEOUTS = 2200,
    DIO = 4096,
    MAX_CLIENTS = 8,
};

#define LONG_NS (30ull * 1000000000ull)
#define MS_NS 1000000ull

void diff_src_seed(struct diff_src *src, uint64_t seed)
{
    memset(src, 0, sizeof *src);
    src->state = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
    if (src->state == 0)
        src->state = 1;
}

void diff_src_bytes(struct diff_src *src, const uint8_t *in, size_t len)
{
    memset(src, 0, sizeof *src);
    src->in = in;
    src->in_len = len;
}

uint32_t diff_rand(struct diff_src *src, uint32_t n)
{
    uint64_t x;

    if (n <= 1)
        return 0;
    if (src->in != NULL) {
        /* One byte for small ranges, two for larger ones: a fuzzer mutates
         * bytes, and a choice it can flip with one byte is one it finds. */
        x = src->pos < src->in_len ? src->in[src->pos++] : 0;
        if (n > 256) {
            x = x << 8 | (src->pos < src->in_len ? src->in[src->pos++] : 0);
        }
        return (uint32_t)(x % n);
    }
    x = src->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    src->state = x;
    return (uint32_t)(((x * 0x2545f4914f6cdd1dull) >> 32) % n);
}

uint64_t diff_fnv(uint64_t h, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* --- the model --- */

struct gside {
    int known;
    uint32_t avail;
    uint32_t written; /* in all, against the buffer bound */
    int idle;         /* idle ops waiting on this side */
    int32_t ms;       /* multishot recv op, or -1 */
    uint32_t ms_total;
    int touched;   /* round in which an op used it (-1 never) */
    int exclusive; /* round in which it is reserved for one action */
    int wrote;     /* round of the last write */
    int mixed;     /* round in which reads and writes met */
    int eof;       /* the writer end is closed */
};

struct gres {
    uint8_t kind;
    int closed[2];
    int closed_round[2];
    int end_used[2]; /* round of the last op on the end */
    struct gside side[2];
    uint64_t fsize, committed; /* files */
    int fwrote, fread_past;    /* rounds */
    int32_t accept_ms;
    uint32_t accepts, op_accepts; /* in all, and by the current multishot accept */
};

struct pend {
    int32_t op;
    int32_t res, side; /* side -1: not on a side (timeouts, chain nops) */
    int32_t chain;     /* a nop linked behind it, or -1 */
};

struct gen {
    struct diff_prog *p;
    struct diff_src *src;
    const struct diff_gen_opts *o;
    struct gres *res;
    struct pend *pend;
    uint32_t npend, cap_pend;
    int round;
    int oom;
    int32_t listener;
};

static void *grow(void *ptr, uint32_t *cap, uint32_t need, size_t size, int *oom)
{
    uint32_t c = *cap ? *cap : 64;
    void *n;

    if (need <= *cap)
        return ptr;
    while (c < need)
        c *= 2;
    n = realloc(ptr, c * size);
    if (n == NULL) {
        *oom = 1;
        return ptr;
    }
    *cap = c;
    return n;
}

static uint32_t R(struct gen *g, uint32_t n)
{
    return diff_rand(g->src, n);
}

static int32_t add_op(struct gen *g, int code, int32_t res, int end, uint32_t len)
{
    struct diff_prog *p = g->p;
    struct diff_op *op;

    p->ops = grow(p->ops, &p->cap_op, p->nop + 1, sizeof *p->ops, &g->oom);
    if (g->oom)
        return -1;
    op = &p->ops[p->nop];
    memset(op, 0, sizeof *op);
    op->code = (uint8_t)code;
    op->res = res;
    op->end = (uint8_t)end;
    op->len = len;
    op->pat = (uint32_t)(p->seed * 31u + p->nop * 2654435761u);
    op->cb_cancel = -1;
    op->round = g->round;
    if (res >= 0)
        g->res[res].end_used[end] = g->round;
    return (int32_t)p->nop++;
}

static void add_step(struct gen *g, int kind, int32_t a, int32_t b)
{
    struct diff_prog *p = g->p;

    if (a < 0 && kind != DST_DRAIN)
        return;
    p->steps = grow(p->steps, &p->cap_step, p->nstep + 1, sizeof *p->steps, &g->oom);
    if (g->oom)
        return;
    p->steps[p->nstep].kind = (uint8_t)kind;
    p->steps[p->nstep].a = a;
    p->steps[p->nstep].b = b;
    p->nstep++;
    p->rounds[p->nround - 1].nstep++;
}

static void add_wait(struct gen *g, int32_t op, uint32_t amount)
{
    struct diff_prog *p = g->p;

    if (op < 0)
        return;
    p->waits = grow(p->waits, &p->cap_wait, p->nwait + 1, sizeof *p->waits, &g->oom);
    if (g->oom)
        return;
    p->waits[p->nwait].op = op;
    p->waits[p->nwait].amount = amount;
    p->nwait++;
    p->rounds[p->nround - 1].nwait++;
}

/* Submits op and waits for it in this round. */
static void submit_wait(struct gen *g, int32_t op)
{
    add_step(g, DST_SUBMIT, op, 0);
    add_wait(g, op, 0);
}

static void add_pend(struct gen *g, int32_t op, int32_t res, int32_t side, int32_t chain)
{
    g->pend = grow(g->pend, &g->cap_pend, g->npend + 1, sizeof *g->pend, &g->oom);
    if (g->oom)
        return;
    g->pend[g->npend].op = op;
    g->pend[g->npend].res = res;
    g->pend[g->npend].side = side;
    g->pend[g->npend].chain = chain;
    g->npend++;
}

static int is_stream(int kind)
{
    return kind == DRES_PAIR || kind == DRES_PIPE || kind == DRES_TCP;
}

static int is_sock(int kind)
{
    return kind == DRES_PAIR || kind == DRES_TCP;
}

/* The end that writes into side s, and the end that reads it. */
static int writer_end(int kind, int s)
{
    return kind == DRES_PIPE ? 1 : 1 - s;
}

static int reader_end(int s)
{
    return s;
}

static int nsides(int kind)
{
    return kind == DRES_PIPE ? 1 : (is_stream(kind) ? 2 : 0);
}

/* A random stream side, or -1 in *res. */
static void pick_side(struct gen *g, int32_t *res, int *side)
{
    uint32_t n = g->p->nres;

    *res = -1;
    for (int tries = 0; tries < 8; tries++) {
        uint32_t r = R(g, n);
        int k = g->res[r].kind;

        if (!is_stream(k))
            continue;
        *res = (int32_t)r;
        *side = (int)R(g, (uint32_t)nsides(k));
        return;
    }
}

static int side_open(struct gen *g, int32_t r, int s)
{
    struct gres *x = &g->res[r];

    return !x->closed[reader_end(s)] && !x->closed[writer_end(x->kind, s)];
}

/* Nothing else happens on this side in this round. */
static int side_free(struct gen *g, int32_t r, int s)
{
    struct gside *d = &g->res[r].side[s];

    return d->exclusive != g->round && d->idle == 0 && d->ms < 0 && side_open(g, r, s);
}

static uint32_t side_cap(struct gen *g, int32_t r)
{
    return g->res[r].kind == DRES_TCP ? MAX_TCP_BYTES : MAX_SIDE_BYTES;
}

static int write_code(struct gen *g, int kind)
{
    uint32_t c = R(g, 3);

    if (c == 1 && !is_sock(kind))
        c = 0;
    return c == 0 ? DOP_WRITE : (c == 1 ? DOP_SEND : DOP_WRITEV);
}

static int read_code(struct gen *g, int kind)
{
    uint32_t c = R(g, 3);

    if (c == 1 && !is_sock(kind))
        c = 0;
    return c == 0 ? DOP_READ : (c == 1 ? DOP_RECV : DOP_READV);
}

/* A deadline that never fires (the op ends long before): the op's result
 * must be its own, and the deadline's timer or linked timeout must go away
 * with it. */
static void long_deadline(struct gen *g, int32_t op)
{
    if (R(g, 4) == 0)
        g->p->ops[op].deadline_ns = LONG_NS;
}

/* A write of up to max bytes into side s; returns the op or -1. */
static int32_t gen_write(struct gen *g, int32_t r, int s, uint32_t max, int submit)
{
    struct gres *x = &g->res[r];
    struct gside *d = &x->side[s];
    uint32_t room = side_cap(g, r) - d->written;
    uint32_t len;
    int32_t op;

    if (room == 0 || max == 0)
        return -1;
    len = 1 + R(g, max < room ? max : room);
    op = add_op(g, write_code(g, x->kind), r, writer_end(x->kind, s), len);
    if (op < 0)
        return -1;
    long_deadline(g, op);
    d->written += len;
    d->avail += len;
    d->wrote = g->round;
    d->touched = g->round;
    if (d->ms >= 0)
        d->ms_total += len;
    if (submit)
        submit_wait(g, op);
    return op;
}

static void act_write(struct gen *g)
{
    int32_t r;
    int s;
    struct gside *d;

    pick_side(g, &r, &s);
    if (r < 0)
        return;
    d = &g->res[r].side[s];
    if (d->exclusive == g->round || d->idle > 0 || !side_open(g, r, s))
        return;
    gen_write(g, r, s, MAX_WRITE, 1);
}

/* Reads: exact when the side's bytes are known and nothing is written to it
 * in this round; then maybe linked to a nop, which shows whether a short
 * read breaks the link. */
static void act_read(struct gen *g)
{
    int32_t r, op, nop;
    int s;
    struct gside *d;
    struct gres *x;

    pick_side(g, &r, &s);
    if (r < 0)
        return;
    x = &g->res[r];
    d = &x->side[s];
    if (d->exclusive == g->round || d->idle > 0 || d->ms >= 0 || !side_open(g, r, s) ||
        d->avail == 0)
        return;
    if (d->known && d->wrote != g->round && d->touched != g->round) {
        int link = R(g, 3) == 0;
        /* A linked read is short half the time: whether a short read breaks
         * the link is the rule under test. */
        uint32_t len = link && R(g, 2) ? d->avail + 1 + R(g, 64) : 1 + R(g, d->avail + 64);
        uint32_t got = len < d->avail ? len : d->avail;

        op = add_op(g, read_code(g, x->kind), r, reader_end(s), len);
        if (op < 0)
            return;
        long_deadline(g, op);
        d->avail -= got;
        /* Nothing may be written to it later in this round: the read must
         * find exactly what is there. */
        d->exclusive = g->round;
        d->touched = g->round;
        if (link) {
            g->p->ops[op].flags |= DF_LINK;
            nop = add_op(g, DOP_NOP, -1, 0, 0);
            submit_wait(g, op);
            submit_wait(g, nop);
        } else {
            submit_wait(g, op);
        }
        return;
    }
    {
        uint32_t max = d->avail < 1024 ? d->avail : 1024;
        uint32_t len = 1 + R(g, max);

        op = add_op(g, read_code(g, x->kind), r, reader_end(s), len);
        if (op < 0)
            return;
        g->p->ops[op].flags |= DF_COUNT_VARIES;
        long_deadline(g, op);
        d->avail -= len;
        d->known = 0;
        d->mixed = g->round;
        d->touched = g->round;
        submit_wait(g, op);
    }
}

/* Ends pending op pe in this round, by one of the ways a program does. */
static void end_pending(struct gen *g, const struct pend *pe, int how)
{
    int32_t nop;

    switch (how) {
    case 0:
        add_step(g, DST_CANCEL, pe->op, 0);
        break;
    case 1:
        add_step(g, DST_TIMER_CANCEL, pe->op, 0);
        break;
    default:
        nop = add_op(g, DOP_NOP, -1, 0, 0);
        if (nop < 0)
            return;
        g->p->ops[nop].cb_cancel = pe->op;
        submit_wait(g, nop);
        break;
    }
    add_wait(g, pe->op, 0);
    if (pe->chain >= 0)
        add_wait(g, pe->chain, 0);
    if (pe->side >= 0) {
        struct gside *d = &g->res[pe->res].side[pe->side];

        d->idle--;
        /* Still waiting until the cancel lands: nothing else this round. */
        d->exclusive = g->round;
    }
}

static void drop_pend(struct gen *g, uint32_t i)
{
    g->pend[i] = g->pend[--g->npend];
}

static void act_idle(struct gen *g)
{
    int32_t r, op, chain = -1;
    int s;
    struct gside *d;
    struct gres *x;
    uint32_t how;

    pick_side(g, &r, &s);
    if (r < 0)
        return;
    x = &g->res[r];
    d = &x->side[s];
    if (!d->known || d->avail != 0 || d->wrote == g->round || d->ms >= 0 ||
        d->exclusive == g->round || !side_open(g, r, s))
        return;
    op = add_op(g, read_code(g, x->kind), r, reader_end(s), 1 + R(g, 512));
    if (op < 0)
        return;
    g->p->ops[op].flags |= DF_IDLE;
    d->touched = g->round;
    how = R(g, 6);
    if (how == 0) {
        /* Its deadline ends it: -ETIME, whatever the backend. */
        g->p->ops[op].deadline_ns = (1 + R(g, 4)) * MS_NS;
        submit_wait(g, op);
        d->exclusive = g->round;
        return;
    }
    if (how == 5) {
        /* A nop linked behind it waits with it, and ends with it. */
        g->p->ops[op].flags |= DF_LINK;
        chain = add_op(g, DOP_NOP, -1, 0, 0);
    }
    add_step(g, DST_SUBMIT, op, 0);
    if (chain >= 0)
        add_step(g, DST_SUBMIT, chain, 0);
    d->idle++;
    if (how <= 2) {
        struct pend pe = {op, r, s, chain};

        end_pending(g, &pe, (int)how);
        return;
    }
    add_pend(g, op, r, s, chain);
}

static void act_end_pending(struct gen *g)
{
    uint32_t i;
    struct pend pe;

    if (g->npend == 0)
        return;
    i = R(g, g->npend);
    pe = g->pend[i];
    if (pe.side >= 0 && g->res[pe.res].side[pe.side].exclusive == g->round)
        return;
    drop_pend(g, i);
    end_pending(g, &pe, (int)R(g, 3));
}

/* Two nops; the first's callback cancels the second, whose completion is
 * usually in the same batch: -ECANCELED or 0 (DF_RACY), and the executor
 * frees the op in its callback either way. */
static void act_nop_pair(struct gen *g)
{
    if (g->o->without & (1u << diff_gen_action("nop_pair")))
        return;
    int32_t a = add_op(g, DOP_NOP, -1, 0, 0);
    int32_t b = add_op(g, R(g, 4) == 0 ? DOP_TIMEOUT : DOP_NOP, -1, 0, 0);

    if (a < 0 || b < 0)
        return;
    if (g->p->ops[b].code == DOP_TIMEOUT)
        g->p->ops[b].ns = R(g, 2) * MS_NS;
    g->p->ops[a].cb_cancel = b;
    g->p->ops[b].flags |= DF_RACY;
    submit_wait(g, a);
    submit_wait(g, b);
}

static void act_timeout(struct gen *g)
{
    int32_t op = add_op(g, DOP_TIMEOUT, -1, 0, 0);

    if (op < 0)
        return;
    if (R(g, 3) == 0) {
        g->p->ops[op].ns = LONG_NS;
        g->p->ops[op].flags |= DF_IDLE;
        add_step(g, DST_SUBMIT, op, 0);
        add_pend(g, op, -1, -1, -1);
        return;
    }
    g->p->ops[op].ns = R(g, 3) * MS_NS;
    submit_wait(g, op);
}

static void act_nop(struct gen *g)
{
    submit_wait(g, add_op(g, DOP_NOP, -1, 0, 0));
}

/* Link chains whose every outcome is fixed. */
static void act_link(struct gen *g)
{
    int32_t ops[3] = {-1, -1, -1};
    int n = 0;

    switch (R(g, 4)) {
    case 0: /* a timeout that expires is a success: the nop runs */
        ops[n++] = add_op(g, DOP_TIMEOUT, -1, 0, 0);
        if (ops[0] >= 0)
            g->p->ops[ops[0]].ns = (1 + R(g, 3)) * MS_NS;
        ops[n++] = add_op(g, DOP_NOP, -1, 0, 0);
        break;
    case 1:
        ops[n++] = add_op(g, DOP_NOP, -1, 0, 0);
        ops[n++] = add_op(g, DOP_NOP, -1, 0, 0);
        ops[n++] = add_op(g, DOP_NOP, -1, 0, 0);
        break;
    case 2: /* a failure cancels the rest */
        ops[n++] = add_op(g, DOP_BADFD, -1, 0, 64);
        ops[n++] = add_op(g, DOP_NOP, -1, 0, 0);
        ops[n++] = add_op(g, DOP_NOP, -1, 0, 0);
        break;
    default: { /* a nop, then a whole write on a side reserved for it */
        int32_t r;
        int s;

        pick_side(g, &r, &s);
        if (r < 0 || !side_free(g, r, s) || g->res[r].side[s].touched == g->round)
            return;
        ops[n++] = add_op(g, DOP_NOP, -1, 0, 0);
        ops[n] = gen_write(g, r, s, 512, 0);
        if (ops[n] < 0)
            return;
        n++;
        g->res[r].side[s].exclusive = g->round;
        break;
    }
    }
    for (int i = 0; i < n; i++) {
        if (ops[i] < 0)
            return;
    }
    for (int i = 0; i < n; i++) {
        if (i + 1 < n)
            g->p->ops[ops[i]].flags |= DF_LINK;
        submit_wait(g, ops[i]);
    }
}

static int32_t find_res(struct gen *g, int kind)
{
    uint32_t start = R(g, g->p->nres);

    for (uint32_t i = 0; i < g->p->nres; i++) {
        uint32_t r = (start + i) % g->p->nres;

        if (g->res[r].kind == kind && !g->res[r].closed[0])
            return (int32_t)r;
    }
    return -1;
}

static void act_file(struct gen *g)
{
    int32_t r = find_res(g, R(g, 2) ? DRES_FILE : DRES_DFILE);
    struct gres *x;
    uint32_t unit, len;
    int32_t op, rd;
    uint64_t off;

    if (r < 0)
        return;
    x = &g->res[r];
    unit = x->kind == DRES_DFILE ? DIO : 1;
    switch (R(g, 5)) {
    case 0:
    case 1: /* a write at the end of what rounds before and this one wrote */
        if (x->fread_past == g->round || x->fsize > (1u << 20))
            return;
        len = x->kind == DRES_DFILE ? DIO * (1 + R(g, 4)) : 1 + R(g, 8192);
        op = add_op(g, DOP_FWRITE, r, 0, len);
        if (op < 0)
            return;
        g->p->ops[op].off = x->fsize;
        x->fsize += len;
        x->fwrote = g->round;
        if (R(g, 4) == 0 && x->committed > 0) {
            /* Linked to a read of what an earlier round wrote, and no
             * further: past it, other writes of this round may be under
             * way, and the read would see them or not by timing. */
            off = R(g, (uint32_t)(x->committed / unit)) * (uint64_t)unit;
            len = unit * (1 + R(g, 2));
            if (off + len > x->committed)
                len = (uint32_t)(x->committed - off);
            rd = add_op(g, DOP_FREAD, r, 0, len);
            if (rd < 0)
                return;
            g->p->ops[rd].off = off;
            g->p->ops[op].flags |= DF_LINK;
            submit_wait(g, op);
            submit_wait(g, rd);
            return;
        }
        submit_wait(g, op);
        return;
    case 2:
    case 3: /* a read of what rounds before wrote; past the end only when
               nothing writes in this round */
        if (x->committed == 0)
            return;
        off = R(g, (uint32_t)((x->committed + unit - 1) / unit)) * (uint64_t)unit;
        len = x->kind == DRES_DFILE ? DIO * (1 + R(g, 3)) : 1 + R(g, 8192);
        if (off + len > x->committed) {
            if (x->fwrote == g->round)
                return;
            x->fread_past = g->round;
        }
        op = add_op(g, DOP_FREAD, r, 0, len);
        if (op < 0)
            return;
        g->p->ops[op].off = off;
        submit_wait(g, op);
        return;
    default:
        submit_wait(g, add_op(g, DOP_FSYNC, r, 0, 0));
        return;
    }
}

/* A multishot recv on a known empty socket side; later writes to the side
 * raise what the round waits for. */
static void act_recv_ms(struct gen *g)
{
    int32_t r, op;
    int s;
    struct gside *d;

    if (g->o->no_multishot)
        return;
    pick_side(g, &r, &s);
    if (r < 0 || !is_sock(g->res[r].kind))
        return;
    d = &g->res[r].side[s];
    if (!side_free(g, r, s) || !d->known || d->avail != 0 || d->touched == g->round)
        return;
    op = add_op(g, DOP_RECV_MS, r, reader_end(s), 0);
    if (op < 0)
        return;
    g->p->ops[op].flags |= DF_CHUNKS;
    add_step(g, DST_SUBMIT, op, 0);
    d->ms = op;
    d->ms_total = 0;
    d->touched = g->round;
    /* The writes that feed it this round. */
    for (uint32_t i = R(g, 4); i > 0; i--)
        gen_write(g, r, s, MAX_WRITE, 1);
}

static void act_end_ms(struct gen *g)
{
    int32_t r;
    int s;
    struct gside *d;

    pick_side(g, &r, &s);
    if (r < 0)
        return;
    d = &g->res[r].side[s];
    if (d->ms < 0 || d->touched == g->round)
        return;
    add_step(g, R(g, 2) ? DST_CANCEL : DST_TIMER_CANCEL, d->ms, 0);
    add_wait(g, d->ms, 0);
    d->ms = -1;
    d->known = 1;
    d->avail = 0;
    d->exclusive = g->round;
    d->touched = g->round;
}

static void act_accept(struct gen *g)
{
    struct gres *x;
    uint32_t k;

    if (g->o->no_multishot || g->listener < 0)
        return;
    x = &g->res[g->listener];
    if (x->closed[0] || x->end_used[0] == g->round)
        return;
    if (x->accept_ms < 0) {
        x->accept_ms = add_op(g, DOP_ACCEPT_MS, g->listener, 0, 0);
        if (x->accept_ms < 0)
            return;
        g->p->ops[x->accept_ms].flags |= DF_FD_RESULT;
        add_step(g, DST_SUBMIT, x->accept_ms, 0);
        x->op_accepts = 0;
    } else if (R(g, 3) == 0) {
        add_step(g, DST_CANCEL, x->accept_ms, 0);
        add_wait(g, x->accept_ms, 0);
        x->accept_ms = -1;
        x->end_used[0] = g->round;
        return;
    }
    k = 1 + R(g, 3);
    if (x->accepts + k > MAX_CLIENTS)
        return;
    x->accepts += k;
    x->op_accepts += k;
    add_step(g, DST_CONNECT, g->listener, (int32_t)k);
    add_wait(g, x->accept_ms, x->op_accepts);
}

static void act_drain(struct gen *g)
{
    int32_t r;
    int s;
    struct gside *d;

    pick_side(g, &r, &s);
    if (r < 0)
        return;
    d = &g->res[r].side[s];
    if (!side_free(g, r, s) || (d->known && d->avail == 0) || d->touched == g->round)
        return;
    add_step(g, DST_DRAIN, r, s);
    d->known = 1;
    d->avail = 0;
    d->touched = g->round;
    d->exclusive = g->round;
}

/* Can end e of r be closed now without a race? Its own side must be known
 * empty (idle reads and a multishot on it end with -ECANCELED), the peer's
 * side must have nothing waiting, and nothing else used the end this round. */
static int can_close(struct gen *g, int32_t r, int e)
{
    struct gres *x = &g->res[r];

    if (x->closed[e] || x->end_used[e] == g->round)
        return 0;
    if (!is_stream(x->kind))
        return 1;
    for (int s = 0; s < nsides(x->kind); s++) {
        struct gside *d = &x->side[s];

        if (d->touched == g->round || d->exclusive == g->round)
            return 0;
        if (reader_end(s) == e) {
            if (!d->known || d->avail != 0)
                return 0;
        } else if (d->idle > 0 || d->ms >= 0) {
            return 0;
        }
    }
    return 1;
}

static void close_end(struct gen *g, int32_t r, int e)
{
    struct gres *x = &g->res[r];
    int32_t op = add_op(g, DOP_CLOSE, r, e, 0);

    if (op < 0)
        return;
    submit_wait(g, op);
    x->closed[e] = 1;
    x->closed_round[e] = g->round;
    for (uint32_t i = 0; i < g->npend;) {
        struct pend *pe = &g->pend[i];

        if (pe->res == r && pe->side >= 0 && reader_end(pe->side) == e) {
            add_wait(g, pe->op, 0);
            if (pe->chain >= 0)
                add_wait(g, pe->chain, 0);
            drop_pend(g, i);
            continue;
        }
        i++;
    }
    for (int s = 0; s < nsides(x->kind); s++) {
        struct gside *d = &x->side[s];

        if (reader_end(s) == e) {
            if (d->ms >= 0)
                add_wait(g, d->ms, 0);
            d->ms = -1;
            d->idle = 0;
        } else {
            d->eof = 1;
        }
        d->touched = g->round;
        d->exclusive = g->round;
    }
}

static void act_close(struct gen *g)
{
    int32_t r;
    int s, e;

    pick_side(g, &r, &s);
    if (r < 0)
        return;
    e = (int)R(g, 2);
    if (g->res[r].kind == DRES_LISTEN || !can_close(g, r, e))
        return;
    close_end(g, r, e);
}

/* A write into a side whose reader is closed: -EPIPE on a socketpair or pipe,
 * and never SIGPIPE (a TCP peer may first take it, so not there). */
static void act_epipe(struct gen *g)
{
    int32_t r;
    int s;
    struct gres *x;

    pick_side(g, &r, &s);
    if (r < 0)
        return;
    x = &g->res[r];
    /* Only once the close has completed, in a round before: ops on two fds
     * are not ordered against each other (a write to a pipe is tried at
     * once, a close may wait for the next kernel entry). */
    if (x->kind == DRES_TCP || !x->closed[reader_end(s)] ||
        x->closed_round[reader_end(s)] == g->round || x->closed[writer_end(x->kind, s)])
        return;
    submit_wait(g, add_op(g, write_code(g, x->kind), r, writer_end(x->kind, s), 1 + R(g, 256)));
}

static void new_round(struct gen *g)
{
    struct diff_prog *p = g->p;

    p->rounds = grow(p->rounds, &p->cap_round, p->nround + 1, sizeof *p->rounds, &g->oom);
    if (g->oom)
        return;
    p->rounds[p->nround].step0 = p->nstep;
    p->rounds[p->nround].wait0 = p->nwait;
    p->rounds[p->nround].nstep = 0;
    p->rounds[p->nround].nwait = 0;
    p->nround++;
    g->round = (int)p->nround - 1;
}

/* After a round: a side where reads met writes, or a TCP side written to, is
 * no longer known exactly; a multishot recv has had all that was written. */
static void end_round(struct gen *g)
{
    for (uint32_t r = 0; r < g->p->nres; r++) {
        struct gres *x = &g->res[r];

        x->committed = x->fsize;
        for (int s = 0; s < nsides(x->kind); s++) {
            struct gside *d = &x->side[s];

            if (d->mixed == g->round || (x->kind == DRES_TCP && d->wrote == g->round))
                d->known = 0;
            if (d->ms >= 0 && d->wrote == g->round)
                add_wait(g, d->ms, d->ms_total);
            if (d->ms >= 0) {
                d->known = 1;
                d->avail = 0;
            }
        }
    }
}

/* The last two rounds: end everything pending, then drain and close. */
static void finish(struct gen *g)
{
    new_round(g);
    while (g->npend > 0) {
        struct pend pe = g->pend[g->npend - 1];

        g->npend--;
        end_pending(g, &pe, (int)R(g, 3));
    }
    for (uint32_t r = 0; r < g->p->nres; r++) {
        struct gres *x = &g->res[r];

        for (int s = 0; s < nsides(x->kind); s++) {
            if (x->side[s].ms >= 0) {
                add_step(g, DST_CANCEL, x->side[s].ms, 0);
                add_wait(g, x->side[s].ms, 0);
                x->side[s].ms = -1;
            }
        }
        if (x->kind == DRES_LISTEN && x->accept_ms >= 0) {
            add_step(g, DST_CANCEL, x->accept_ms, 0);
            add_wait(g, x->accept_ms, 0);
            x->accept_ms = -1;
        }
    }
    end_round(g);
    new_round(g);
    for (uint32_t r = 0; r < g->p->nres; r++) {
        struct gres *x = &g->res[r];

        for (int s = 0; s < nsides(x->kind); s++) {
            if (!x->closed[reader_end(s)] && (!x->side[s].known || x->side[s].avail > 0))
                add_step(g, DST_DRAIN, (int32_t)r, s);
        }
    }
    for (uint32_t r = 0; r < g->p->nres; r++) {
        struct gres *x = &g->res[r];

        for (int e = 0; e < (is_stream(x->kind) ? 2 : 1); e++) {
            if (!x->closed[e])
                close_end(g, (int32_t)r, e);
        }
    }
}

typedef void (*act_fn)(struct gen *g);

/* Weighted: each action's share of a round. The names serve --without. */
static const struct {
    const char *name;
    act_fn fn;
    uint32_t weight;
} actions[] = {
    {"write", act_write, 10},      {"read", act_read, 10},
    {"idle", act_idle, 5},         {"end_pending", act_end_pending, 4},
    {"nop_pair", act_nop_pair, 4}, {"timeout", act_timeout, 3},
    {"nop", act_nop, 2},           {"link", act_link, 5},
    {"file", act_file, 4},         {"recv_ms", act_recv_ms, 2},
    {"end_ms", act_end_ms, 2},     {"accept", act_accept, 2},
    {"drain", act_drain, 3},       {"close", act_close, 2},
    {"epipe", act_epipe, 2},
};
#define NACTIONS (sizeof actions / sizeof actions[0])

int diff_gen_action(const char *name)
{
    for (size_t i = 0; i < NACTIONS; i++) {
        if (strcmp(actions[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

static void act_any(struct gen *g)
{
    uint32_t total = 0, x;

    for (size_t i = 0; i < NACTIONS; i++)
        total += actions[i].weight;
    x = R(g, total);
    for (size_t i = 0; i < NACTIONS; i++) {
        if (x < actions[i].weight) {
            if (!(g->o->without & (1u << i)))
                actions[i].fn(g);
            return;
        }
        x -= actions[i].weight;
    }
}

/* Thousands in flight on a tiny ring: an idle read on each of many
 * socketpairs and long timeouts, then in the same round ops that must
 * complete (a nop, a short timeout, a write and an exact read of it, a file
 * write); the next round cancels everything, some from callbacks. */
static void gen_big(struct gen *g, uint32_t pairs)
{
    int32_t data = 0;

    new_round(g);
    for (uint32_t r = 1; r < pairs; r++) {
        int32_t op = add_op(g, read_code(g, DRES_PAIR), (int32_t)r, 0, 64);

        if (op < 0)
            return;
        g->p->ops[op].flags |= DF_IDLE;
        add_step(g, DST_SUBMIT, op, 0);
        g->res[r].side[0].idle++;
        add_pend(g, op, (int32_t)r, 0, -1);
    }
    for (uint32_t i = 0; i < BIG_TIMEOUTS; i++) {
        int32_t op = add_op(g, DOP_TIMEOUT, -1, 0, 0);

        if (op < 0)
            return;
        g->p->ops[op].ns = LONG_NS;
        g->p->ops[op].flags |= DF_IDLE;
        add_step(g, DST_SUBMIT, op, 0);
        add_pend(g, op, -1, -1, -1);
    }
    act_nop(g);
    g->p->ops[add_op(g, DOP_TIMEOUT, -1, 0, 0)].ns = 2 * MS_NS;
    submit_wait(g, (int32_t)g->p->nop - 1);
    gen_write(g, data, 1, 256, 1);
    act_nop_pair(g);
    for (int i = g->p->flags & DP_FILES ? 24 : 1; i > 0; i--)
        act_file(g);
    end_round(g);
    new_round(g);
    for (int i = g->p->flags & DP_FILES ? 24 : 0; i > 0; i--)
        act_file(g);
    {
        uint32_t len = g->res[data].side[1].avail;
        int32_t op = add_op(g, DOP_READ, data, 1, len);

        g->res[data].side[1].avail = 0;
        submit_wait(g, op);
    }
    for (uint32_t i = 0; i < 20; i++)
        act_nop_pair(g);
    end_round(g);
}

int diff_gen(struct diff_prog *p, struct diff_src *src, const struct diff_gen_opts *o)
{
    static const struct diff_gen_opts defaults;
    struct gen g;
    uint32_t flags, nrounds, npair = 0, npipe = 0, ntcp = 0;
    uint64_t seed = p->seed;

    memset(p, 0, sizeof *p);
    p->seed = seed;
    memset(&g, 0, sizeof g);
    g.p = p;
    g.src = src;
    g.o = o != NULL ? o : &defaults;
    g.listener = -1;
    flags = g.o->flags;
    /* One program in ten has thousands of ops in flight, in the file
     * profile too (with file ops among them). */
    if ((flags == 0 || flags == DP_FILES) && R(&g, 10) == 0)
        flags |= DP_BIG;
    p->flags = flags;
    {
        static const uint32_t rings[] = {0, 8, 16, 64};

        p->ring_entries = flags & DP_BIG ? 8 : rings[R(&g, 4)];
    }
    if (flags & DP_BIG) {
        p->nres = BIG_PAIRS + 2;
    } else {
        npair = 2 + R(&g, 5);
        npipe = 1 + R(&g, 2);
        ntcp = R(&g, 3);
        p->nres = npair + npipe + ntcp + 3;
    }
    p->res = calloc(p->nres, 1);
    g.res = calloc(p->nres, sizeof *g.res);
    if (p->res == NULL || g.res == NULL) {
        free(g.res);
        diff_prog_free(p);
        return -ENOMEM;
    }
    if (flags & DP_BIG) {
        for (uint32_t r = 0; r < BIG_PAIRS; r++)
            p->res[r] = DRES_PAIR;
        p->res[BIG_PAIRS] = DRES_FILE;
        p->res[BIG_PAIRS + 1] = DRES_DFILE;
    } else {
        uint32_t i = 0;

        while (npair-- > 0)
            p->res[i++] = DRES_PAIR;
        while (npipe-- > 0)
            p->res[i++] = DRES_PIPE;
        while (ntcp-- > 0)
            p->res[i++] = DRES_TCP;
        p->res[i++] = DRES_FILE;
        p->res[i++] = DRES_DFILE;
        p->res[i++] = DRES_LISTEN;
        g.listener = (int32_t)(i - 1);
    }
    for (uint32_t r = 0; r < p->nres; r++) {
        g.res[r].kind = p->res[r];
        g.res[r].accept_ms = -1;
        g.res[r].end_used[0] = g.res[r].end_used[1] = -1;
        g.res[r].fwrote = g.res[r].fread_past = -1;
        for (int s = 0; s < 2; s++) {
            struct gside *d = &g.res[r].side[s];

            d->known = 1;
            d->ms = -1;
            d->touched = d->exclusive = d->wrote = d->mixed = -1;
        }
    }
    if (flags & DP_BIG) {
        gen_big(&g, BIG_PAIRS);
    } else {
        nrounds = 2 + R(&g, 9);
        for (uint32_t k = 0; k < nrounds && !g.oom; k++) {
            uint32_t nact = 1 + R(&g, 10);

            new_round(&g);
            for (uint32_t a = 0; a < nact && !g.oom; a++) {
                if ((flags & DP_FILES) && R(&g, 2) == 0)
                    act_file(&g);
                else
                    act_any(&g);
            }
            end_round(&g);
        }
    }
    if (!g.oom)
        finish(&g);
    free(g.res);
    free(g.pend);
    if (g.oom) {
        diff_prog_free(p);
        return -ENOMEM;
    }
    return 0;
}

void diff_prog_free(struct diff_prog *p)
{
    free(p->res);
    free(p->ops);
    free(p->steps);
    free(p->rounds);
    free(p->waits);
    p->res = NULL;
    p->ops = NULL;
    p->steps = NULL;
    p->rounds = NULL;
    p->waits = NULL;
    p->nop = p->nstep = p->nround = p->nwait = 0;
}

const char *diff_opcode_name(int code)
{
    static const char *const names[DOP_KINDS] = {
        "nop",     "timeout",   "read",      "recv",       "readv", "write", "send",       "writev",
        "recv_ms", "accept_ms", "file_read", "file_write", "fsync", "close", "badfd_read",
    };

    return code >= 0 && code < DOP_KINDS ? names[code] : "?";
}

void diff_prog_dump(const struct diff_prog *p, void *file)
{
    static const char *const kinds[DRES_KINDS] = {"socketpair", "pipe",    "tcp",
                                                  "file",       "odirect", "listener"};
    FILE *f = file;

    fprintf(f, "program seed %llu: %u resources, %u ops, %u rounds, ring_entries %u\n",
            (unsigned long long)p->seed, p->nres, p->nop, p->nround, p->ring_entries);
    for (uint32_t r = 0; r < p->nres; r++)
        fprintf(f, "  res %u: %s\n", r, kinds[p->res[r]]);
    for (uint32_t k = 0; k < p->nround; k++) {
        const struct diff_round *rd = &p->rounds[k];

        fprintf(f, " round %u\n", k);
        for (uint32_t i = 0; i < rd->nstep; i++) {
            const struct diff_step *st = &p->steps[rd->step0 + i];
            const struct diff_op *op;

            switch (st->kind) {
            case DST_SUBMIT:
                op = &p->ops[st->a];
                fprintf(f, "  submit #%d %s res %d end %u len %u off %llu ns %llu dl %llu%s%s%s%s",
                        st->a, diff_opcode_name(op->code), op->res, op->end, op->len,
                        (unsigned long long)op->off, (unsigned long long)op->ns,
                        (unsigned long long)op->deadline_ns, op->flags & DF_LINK ? " LINK" : "",
                        op->flags & DF_RACY ? " racy" : "", op->flags & DF_IDLE ? " idle" : "",
                        op->flags & DF_COUNT_VARIES ? " count-varies" : "");
                if (op->cb_cancel >= 0)
                    fprintf(f, " cb-cancels #%d", op->cb_cancel);
                fputc('\n', f);
                break;
            case DST_CANCEL:
                fprintf(f, "  cancel #%d\n", st->a);
                break;
            case DST_TIMER_CANCEL:
                fprintf(f, "  timer(1ms) cancels #%d\n", st->a);
                break;
            case DST_DRAIN:
                fprintf(f, "  drain res %d side %d\n", st->a, st->b);
                break;
            case DST_CONNECT:
                fprintf(f, "  connect %d clients to res %d\n", st->b, st->a);
                break;
            }
        }
        for (uint32_t i = 0; i < rd->nwait; i++) {
            const struct diff_wait *w = &p->waits[rd->wait0 + i];

            if (w->amount)
                fprintf(f, "  wait #%d to deliver %u\n", w->op, w->amount);
        }
    }
}
