/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* diff.h: differential execution of random op programs across backends.
 *
 * A *program* is made from a seed (or from fuzzer bytes) by the generator
 * (gen.c): resources (socketpairs, pipes, TCP loopback pairs, regular files,
 * an O_DIRECT file, a listener) and a list of rounds. A round is a list of
 * steps the executor takes outside any callback (submit an op, cancel one,
 * drain a side, connect clients, start a timer that cancels an op), then the
 * loop runs until the round's waits are met (ops completed, multishot counts
 * reached). Ops may carry a callback action (cancel another op) and links.
 *
 * The generator keeps every program deterministic in outcome: a read never
 * waits for bytes that may not come, an op is cancelled only when it cannot
 * have completed (an idle read, a long timeout) unless it is marked racy, a
 * side is closed only when nothing can be in it. What timing may still change
 * is listed, closed, in the allowed-difference table (compare.c,
 * docs/testing.md), each entry citing the contract rule behind it.
 *
 * The executor (exec.c) runs a program on one backend and file engine and
 * records per op its submit and cancel return values, its final result and
 * how many completions it had, and per side (the receiving end of a pair or
 * pipe) the bytes received. It checks the invariants on every run: exactly
 * once, no callback inside a gyre call, start order per side, and the bytes
 * received equal the bytes written.
 *
 * To extend: a new opcode is a new DOP_* (gen.c decides where it is
 * deterministic, exec.c prepares and records it, compare.c needs nothing
 * unless its result may differ, and then only with a new table entry).
 */
#ifndef GYRE_TEST_DIFF_H
#define GYRE_TEST_DIFF_H

#include <stddef.h>
#include <stdint.h>

/* Where the generator's choices come from: a seeded xorshift, or fuzzer
 * bytes (zeros once they run out, so any input is a finite program). */
struct diff_src {
    uint64_t state;
    const uint8_t *in;
    size_t in_len, pos;
};
void diff_src_seed(struct diff_src *src, uint64_t seed);
void diff_src_bytes(struct diff_src *src, const uint8_t *in, size_t len);
/* Uniform in [0, n) for n >= 1. */
uint32_t diff_rand(struct diff_src *src, uint32_t n);

enum diff_res_kind {
    DRES_PAIR,   /* AF_UNIX stream socketpair: side s receives what end 1-s writes */
    DRES_PIPE,   /* end 0 reads, end 1 writes; only side 0 */
    DRES_TCP,    /* TCP loopback pair (TCP_NODELAY) */
    DRES_FILE,   /* regular file, unlinked */
    DRES_DFILE,  /* O_DIRECT regular file (buffered where O_DIRECT is refused) */
    DRES_LISTEN, /* TCP listener for multishot accept; clients come from DST_CONNECT */
    DRES_KINDS
};

enum diff_opcode {
    DOP_NOP,
    DOP_TIMEOUT,   /* ns */
    DOP_READ,      /* stream read at the current position, len */
    DOP_RECV,      /* recv (sockets) */
    DOP_READV,     /* readv in two pieces */
    DOP_WRITE,     /* stream write of len pattern bytes */
    DOP_SEND,      /* send (sockets) */
    DOP_WRITEV,    /* writev in two pieces */
    DOP_RECV_MS,   /* multishot recv into the loop's buffer pool */
    DOP_ACCEPT_MS, /* multishot accept on a listener */
    DOP_FREAD,     /* file read at off */
    DOP_FWRITE,    /* file write at off */
    DOP_FSYNC,
    DOP_CLOSE, /* gyre_op_close of end */
    DOP_BADFD, /* a read on an fd that is not open: -EBADF */
    DOP_KINDS
};

/* diff_op.flags */
#define DF_LINK 0x1u         /* gyre_op_set_link: the next submitted op is its successor */
#define DF_COUNT_VARIES 0x2u /* a stream transfer whose byte count depends on chunking */
#define DF_RACY 0x4u         /* cancelled while it may have completed */
#define DF_FD_RESULT 0x8u    /* the result is a new fd */
#define DF_CHUNKS 0x10u      /* multishot recv: completions depend on chunking */
#define DF_IDLE 0x20u        /* waits until cancelled, closed or its deadline */

struct diff_op {
    uint8_t code;
    uint8_t end; /* which fd of the resource */
    uint16_t flags;
    int32_t res;
    uint32_t len;
    uint32_t pat; /* pattern seed of written bytes */
    uint64_t off; /* file offset */
    uint64_t ns;  /* timeout */
    uint64_t deadline_ns;
    int32_t cb_cancel; /* op to cancel from this op's final callback, or -1 */
    int32_t round;
};

enum diff_step_kind {
    DST_SUBMIT,       /* a = op */
    DST_CANCEL,       /* a = op, from outside callbacks */
    DST_DRAIN,        /* a = res, b = side: read what is left with plain syscalls */
    DST_CONNECT,      /* a = listener res, b = clients to connect */
    DST_TIMER_CANCEL, /* a = op: a gyre_timer of 1 ms cancels it from its callback */
};

struct diff_step {
    uint8_t kind;
    int32_t a, b;
};

/* The round ends when op a has completed for good (amount 0), or has
 * delivered `amount` bytes (multishot recv) or connections (multishot accept). */
struct diff_wait {
    int32_t op;
    uint32_t amount;
};

struct diff_round {
    uint32_t step0, nstep, wait0, nwait;
};

/* diff_prog.flags */
#define DP_BIG 0x1u   /* thousands of ops in flight, tiny ring */
#define DP_FILES 0x2u /* weighted towards file ops (file-engine comparisons) */

struct diff_prog {
    uint64_t seed;
    uint32_t flags;
    uint32_t ring_entries; /* gyre_loop_opts.ring_entries */
    uint32_t nres, nop, nstep, nround, nwait;
    uint8_t *res; /* enum diff_res_kind */
    struct diff_op *ops;
    struct diff_step *steps;
    struct diff_round *rounds;
    struct diff_wait *waits;
    uint32_t cap_op, cap_step, cap_wait, cap_round;
};

/* Generator options. */
struct diff_gen_opts {
    uint32_t flags;   /* DP_*: force a profile; 0 lets the source choose */
    int no_multishot; /* no multishot accept/recv (the fuzzer's fast mode) */
    uint32_t without; /* bit diff_gen_action(name): actions left out (to isolate a finding) */
};
/* The index of a generator action by name ("nop_pair", "link", ...), or -1. */
int diff_gen_action(const char *name);

/* Builds *p from src; returns 0 or -ENOMEM. diff_prog_free releases it. */
int diff_gen(struct diff_prog *p, struct diff_src *src, const struct diff_gen_opts *o);
void diff_prog_free(struct diff_prog *p);
/* Prints the program, one line per step, for a failing seed. */
void diff_prog_dump(const struct diff_prog *p, void *file);
const char *diff_opcode_name(int code);

/* What one run records. */
#define DIFF_CANCEL_NONE 1    /* never cancelled */
#define DIFF_CANCEL_SKIPPED 2 /* the cancel was not made: the op had already completed */

struct diff_orec {
    int submit_rc;
    int cancel_rc; /* DIFF_CANCEL_*, or gyre_cancel's return */
    int done;
    uint32_t calls;     /* completions, MORE ones included */
    int64_t result;     /* final */
    uint64_t amount;    /* multishot: bytes or connections delivered */
    uint64_t data_hash; /* file reads: FNV of the bytes read */
};

struct diff_stream {
    uint8_t *w, *r; /* written (in write completion order), received */
    size_t wlen, wcap, rlen, rcap;
};

struct diff_outcome {
    uint32_t nop, nside;
    struct diff_orec *ops;
    struct diff_stream *sides; /* nres * 2 */
    int hang;                  /* 1: a round never ended; the loop was abandoned */
    int failed;                /* an invariant failed (the message is in `why`) */
    char why[512];
    char backend[16], engine[16];
};

struct diff_env {
    const char *backend;     /* "epoll", ... */
    const char *file_engine; /* NULL: the backend's default */
    int weak;                /* faults that change results: check invariants only, end rounds
                                on quiescence */
    uint32_t hang_ms;        /* no completion for this long: a hang (0: 3000) */
    int verbose;
};

/* Runs p once. Returns 0 when the run could be made (the outcome then says
 * whether it hung or broke an invariant), -errno when the setup failed (no
 * such backend or engine here). */
int diff_run(const struct diff_prog *p, const struct diff_env *env, struct diff_outcome *out);
void diff_outcome_free(struct diff_outcome *out);
/* Frees the thread pool the runs share (for a clean exit under LSan). */
void diff_exec_cleanup(void);

/* Compares two outcomes of one program under the allowed-difference table.
 * Returns 0 when equal, else the number of differences, described into
 * msg (truncated to len). */
int diff_compare(const struct diff_prog *p, const struct diff_outcome *a,
                 const struct diff_outcome *b, char *msg, size_t len);

/* The allowed-difference table, for the docs check and --list-allowed. */
struct diff_allowed {
    const char *id;
    const char *what;
    const char *rule;
};
extern const struct diff_allowed diff_allowed_table[];
extern const size_t diff_allowed_count;

uint64_t diff_fnv(uint64_t h, const void *buf, size_t len);

#endif
