/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* compare.c: compares two outcomes of one program.
 *
 * Everything recorded must be identical, except what the table below
 * allows. The table is closed: each entry names the contract rule that lets
 * the difference happen, and docs/testing.md mirrors it. A difference that
 * no entry allows is a bug in gyre, or, if the same backend differs from
 * itself, in the generator (a program whose outcome depends on timing).
 */
#include "diff.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
    AD_SHORT_COUNT,
    AD_MULTISHOT_CHUNKS,
    AD_CANCEL_RACE,
    AD_ACCEPT_FD,
};

const struct diff_allowed diff_allowed_table[] = {
    [AD_SHORT_COUNT] = {"short-count",
                        "the byte count (> 0 on both) of a stream read that runs while its "
                        "bytes are still being written, or on TCP (DF_COUNT_VARIES); the bytes "
                        "of the side, in order, stay identical",
                        "gyre.h rule 4 (short reads reach the callback, the result says what was "
                        "done) and Operations: only how work is chunked may differ"},
    [AD_MULTISHOT_CHUNKS] = {"multishot-chunks",
                             "how many completions a multishot recv had (how its bytes were "
                             "chunked); its final result and the bytes stay identical",
                             "gyre.h gyre_op_recv_multishot (one completion per result) and "
                             "Operations: only how work is chunked may differ"},
    [AD_CANCEL_RACE] = {"cancel-race",
                        "an op cancelled while its completion may already have happened "
                        "(DF_RACY: cancelled from an earlier callback of the same batch): "
                        "-ECANCELED on one side and its real result on the other, and the "
                        "cancel made (0) or not (the op had already completed)",
                        "gyre.h rule 2: cancel is a request; the op completes with -ECANCELED "
                        "if the cancel took effect and with its real result otherwise"},
    [AD_ACCEPT_FD] = {"accept-fd", "the number of an fd an accept returned (both >= 0)",
                      "gyre.h gyre_op_accept (the result is the new fd; the kernel picks the "
                      "number, and each backend holds different fds of its own)"},
};
const size_t diff_allowed_count = sizeof diff_allowed_table / sizeof diff_allowed_table[0];

struct msgbuf {
    char *p;
    size_t len, used;
    int n;
};

static void say(struct msgbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct msgbuf *m, const char *fmt, ...)
{
    va_list ap;
    int w;

    m->n++;
    if (m->n > 12 || m->used + 1 >= m->len)
        return;
    va_start(ap, fmt);
    w = vsnprintf(m->p + m->used, m->len - m->used, fmt, ap);
    va_end(ap);
    if (w > 0)
        m->used += (size_t)w < m->len - m->used ? (size_t)w : m->len - m->used - 1;
}

/* 1 if results ra and rb of op o may differ under the table. */
static int result_allowed(const struct diff_op *o, int64_t ra, int64_t rb)
{
    if (ra == rb)
        return 1;
    if ((o->flags & DF_COUNT_VARIES) && ra > 0 && rb > 0)
        return 1; /* AD_SHORT_COUNT */
    if ((o->flags & DF_RACY) && (ra == -ECANCELED || rb == -ECANCELED))
        return 1; /* AD_CANCEL_RACE */
    if ((o->flags & DF_FD_RESULT) && ra >= 0 && rb >= 0)
        return 1; /* AD_ACCEPT_FD */
    return 0;
}

static void op_name(char *buf, size_t len, const struct diff_prog *p, uint32_t i)
{
    const struct diff_op *o = &p->ops[i];

    if (o->res >= 0)
        snprintf(buf, len, "#%u %s (res %d end %u, round %d%s)", i, diff_opcode_name(o->code),
                 o->res, o->end, o->round, o->flags & DF_LINK ? ", linked" : "");
    else if (i > 0 && (p->ops[i - 1].flags & DF_LINK))
        snprintf(buf, len, "#%u %s (round %d%s, linked after #%u %s)", i, diff_opcode_name(o->code),
                 o->round, o->flags & DF_LINK ? ", linked" : "", i - 1,
                 diff_opcode_name(p->ops[i - 1].code));
    else
        snprintf(buf, len, "#%u %s (round %d%s)", i, diff_opcode_name(o->code), o->round,
                 o->flags & DF_LINK ? ", linked" : "");
}

int diff_compare(const struct diff_prog *p, const struct diff_outcome *a,
                 const struct diff_outcome *b, char *msg, size_t len)
{
    struct msgbuf m = {msg, len, 0, 0};
    char name[160];

    msg[0] = '\0';
    if (a->hang || a->failed || b->hang || b->failed) {
        if (a->hang || a->failed)
            say(&m, "  %s/%s: %s\n", a->backend, a->engine, a->why);
        if (b->hang || b->failed)
            say(&m, "  %s/%s: %s\n", b->backend, b->engine, b->why);
        return m.n;
    }
    for (uint32_t i = 0; i < p->nop; i++) {
        const struct diff_op *o = &p->ops[i];
        const struct diff_orec *x = &a->ops[i], *y = &b->ops[i];
        int racy = (o->flags & DF_RACY) != 0;

        op_name(name, sizeof name, p, i);
        if (x->submit_rc != y->submit_rc)
            say(&m, "  op %s: submit returned %d vs %d\n", name, x->submit_rc, y->submit_rc);
        if (!result_allowed(o, x->result, y->result))
            say(&m, "  op %s: result %lld vs %lld\n", name, (long long)x->result,
                (long long)y->result);
        if (x->cancel_rc != y->cancel_rc && !racy)
            say(&m, "  op %s: gyre_cancel returned %d vs %d\n", name, x->cancel_rc, y->cancel_rc);
        if (x->calls != y->calls && !(o->flags & DF_CHUNKS))
            say(&m, "  op %s: %u vs %u completions\n", name, x->calls, y->calls);
        if (x->amount != y->amount)
            say(&m, "  op %s: delivered %llu vs %llu\n", name, (unsigned long long)x->amount,
                (unsigned long long)y->amount);
        if (x->data_hash != y->data_hash)
            say(&m, "  op %s: read different bytes\n", name);
    }
    for (uint32_t s = 0; s < a->nside; s++) {
        const struct diff_stream *x = &a->sides[s], *y = &b->sides[s];

        if (x->rlen != y->rlen || (x->rlen && memcmp(x->r, y->r, x->rlen) != 0))
            say(&m, "  res %u side %u: received %zu vs %zu bytes%s\n", s / 2, s % 2, x->rlen,
                y->rlen, x->rlen == y->rlen ? " (different bytes)" : "");
    }
    if (m.n > 12)
        say(&m, "  ... %d differences in all\n", m.n);
    return m.n;
}
