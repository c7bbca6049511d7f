/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* bench.h: the harness shared by gyre-bench's scenarios.
 *
 * A scenario is one entry of the table in main.c: a function that runs once
 * per backend and records its figures with bench_record(). The harness owns
 * everything around that: option parsing, the progress line, statistics over
 * rounds, the tables on stdout, the JSON file and the gnuplot charts, and the
 * helper processes some scenarios need. A scenario never prints; it reports
 * through results, so every output format shows the same numbers.
 *
 * Every loop a scenario runs is bounded in count and in time
 * (BENCH_ROUND_TIMEOUT_NS); a round that overruns is recorded as a timeout,
 * never waited out.
 */
#ifndef GYRE_BENCH_H
#define GYRE_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gyre.h>

#define BENCH_ROUND_TIMEOUT_NS (10ull * 1000 * 1000 * 1000)
#define BENCH_MAX_ROUNDS 16

typedef enum bench_status {
    BENCH_OK = 0,
    BENCH_NA,      /* cannot be measured here (limit, FD_SETSIZE); not a failure */
    BENCH_TIMEOUT, /* a round overran BENCH_ROUND_TIMEOUT_NS */
    BENCH_ERROR    /* something broke; the note says what */
} bench_status;

typedef struct bench_stats {
    double median, min, max;
    int rounds;
} bench_stats;

typedef struct bench_scenario bench_scenario;

/* One cell of a scenario's table: a backend (row) and a column. */
typedef struct bench_result {
    const bench_scenario *scenario;
    char backend[16];
    char column[32]; /* table heading, e.g. "N=100" or "start+fire" */
    long param;      /* the x value when plotted (e.g. N), -1 if none */
    bench_status status;
    bench_stats stats; /* valid when status == BENCH_OK */
    char note[96];     /* why a cell is not BENCH_OK */
    int outside;       /* see bench_outcome */
} bench_result;

/* How a measurement went, and why when not BENCH_OK. `outside`: the failure
 * is not gyre's (a peer server, a measuring tool such as valgrind, perf or
 * fio); it is shown in its cell like any other, but only gyre's own failures
 * make gyre-bench exit 1, so that its status says whether gyre misbehaved.
 * A failure is gyre's unless the code that saw it says otherwise. */
typedef struct bench_outcome {
    bench_status status;
    char note[96];
    int outside;
} bench_outcome;

typedef struct bench_ctx {
    int quick;
    int rounds; /* per measurement, <= BENCH_MAX_ROUNDS; statistics are over these */
    bench_result *results;
    size_t n_results, cap_results;
} bench_ctx;

/* How a scenario's results become a chart: x = result param, y = median
 * with min..max as error bars, one line per backend. */
typedef struct bench_plot {
    const char *xlabel;
    const char *ylabel;
    int logx, logy;
} bench_plot;

struct bench_scenario {
    const char *name;
    const char *summary; /* one line for --help */
    const char *title;   /* table heading, before "(unit, median of R rounds...)" */
    const char *unit;
    /* Runs every measurement of the scenario on `backend` and records each
     * with bench_record(). Returns 0, or -1 if the harness should stop (the
     * process cannot go on, e.g. out of memory); per-measurement failures
     * are recorded as results instead. */
    int (*run)(bench_ctx *ctx, const char *backend);
    const bench_plot *plot; /* NULL: no chart */
    /* Instead of run: called once with every selected backend, for a
     * scenario that compares its subjects within each round (servers
     * interleaved), which one call per backend cannot do. */
    int (*run_once)(bench_ctx *ctx, const char *const *backends, size_t n_backends);
    /* Further tables (NULL-terminated) the scenario records into, each with
     * its own title and unit; printed and plotted after its own. */
    const bench_scenario *const *tables;
    /* The unit grows with speed (msgs/s, a ratio to a baseline). */
    int higher_is_better;
    /* Prints, ahead of the tables, what the figures depend on besides gyre
     * and the kernel (e.g. the versions of the programs compared). */
    void (*describe)(void);
};

extern const bench_scenario bench_scenario_idle;
extern const bench_scenario bench_scenario_timers;
extern const bench_scenario bench_scenario_echo;
extern const bench_scenario bench_scenario_http;
extern const bench_scenario bench_scenario_file;

/* --- results (report.c) --- */

/* Appends a result; a result with `note` set to NULL gets an empty note.
 * Returns 0 or -1 when out of memory. */
int bench_record(bench_ctx *ctx, const bench_scenario *scenario, const char *backend,
                 const char *column, long param, bench_status status, const bench_stats *stats,
                 const char *note);
/* The same from an outcome: its status, its note and whose failure it is. */
int bench_record_outcome(bench_ctx *ctx, const bench_scenario *scenario, const char *backend,
                         const char *column, long param, const bench_outcome *out,
                         const bench_stats *stats);
/* Whether a result is a failure of gyre's (an error or timeout not marked
 * outside): what makes gyre-bench exit 1. */
int bench_result_is_gyre_failure(const bench_result *r);
void bench_print_header(void);
void bench_print_table(const bench_ctx *ctx, const bench_scenario *s);
int bench_write_json(const bench_ctx *ctx, const char *path);
void bench_ctx_free(bench_ctx *ctx);

/* --- charts (plot.c) --- */

/* Writes DIR/<scenario>.dat and .gp and runs gnuplot to make
 * DIR/<scenario>.png. A missing gnuplot is a note on stderr, not a failure.
 * Returns 0, or -1 when the files cannot be written or gnuplot fails. */
int bench_plot_scenario(const bench_ctx *ctx, const bench_scenario *s, const char *dir);

/* --- time and statistics (stats.c) --- */

uint64_t bench_now_ns(void);
/* Median, min and max of v[0..n-1] (n >= 1); v is reordered. */
bench_stats bench_stats_of(double *v, int n);
/* A small deterministic generator, so that runs are comparable. */
uint64_t bench_rand(uint64_t *state);

/* Latency histogram, an array of BENCH_HIST_BUCKETS counts: exact below
 * 64 ns, then 32 buckets per power of two (3% wide) up to 2^40 ns. Binning
 * is inline: it runs once per message or I/O inside measured windows. */
#define BENCH_HIST_BUCKETS (64 + 35 * 32)

static inline unsigned bench_hist_bucket(uint64_t ns)
{
    unsigned e;

    if (ns < 64)
        return (unsigned)ns;
    e = 63u - (unsigned)__builtin_clzll(ns);
    if (e > 40)
        return BENCH_HIST_BUCKETS - 1;
    return 64 + (e - 6) * 32 + (unsigned)((ns >> (e - 5)) & 31);
}

/* The q-quantile (0..1) of the histogram, in ns (the middle of its bucket);
 * 0 when it is empty. */
double bench_hist_quantile(const uint64_t *hist, double q);

/* --- the progress line on stderr (stats.c) --- */

/* Replaces the progress line; printf-style. */
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Erases it, before anything else is written. */
void bench_progress_clear(void);

/* --- bounding a round (round.c) --- */

/* Marks *o failed unless it already is: the first reason is the one kept,
 * since later ones are usually its consequences. printf-style note. */
void bench_fail(bench_outcome *o, bench_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a failure that is not gyre's (see bench_outcome). */
void bench_fail_outside(bench_outcome *o, bench_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A timer that ends a round running too long: it records BENCH_TIMEOUT in
 * *out and stops the loop. Unreferenced, so it never keeps a loop alive by
 * itself. */
typedef struct bench_guard {
    gyre_timer timer;
    gyre_loop *loop;
    bench_outcome *out;
} bench_guard;

void bench_guard_init(bench_guard *g, gyre_loop *loop, bench_outcome *out);
/* Starts the guard for BENCH_ROUND_TIMEOUT_NS from now. Returns 0 or -errno. */
int bench_guard_arm(bench_guard *g);
void bench_guard_disarm(bench_guard *g);

/* --- helper processes and fds (proc.c) --- */

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit
 * now in force. */
long bench_raise_nofile(void);

/* The folder of gyre-bench's own binary (build/bin), where the example
 * servers and peers are built too. Returns 0 or -1. */
int bench_bin_dir(char *buf, size_t size);

/* The first line of a shell command's output into buf ("" if none): peer
 * and tool versions. */
void bench_first_line(const char *cmd, char *buf, size_t size);

/* Forks a child that runs fn(arg) and exits with its return value; the child
 * also dies with SIGTERM when the parent does, so no run leaves it behind.
 * Returns the pid, or -errno. */
pid_t bench_spawn(int (*fn)(void *arg), void *arg);

/* Ends a child started with bench_spawn: SIGTERM, a short grace period, then
 * SIGKILL; always waits for it. Returns its wait status, or -errno. */
int bench_reap(pid_t pid);

/* Passes fd to the process at the other end of the AF_UNIX socket `sock`
 * (SCM_RIGHTS); the caller may close its copy at once. Returns 0 or -errno. */
int bench_send_fd(int sock, int fd);

#endif
