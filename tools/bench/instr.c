/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* instr.c: gyre-instr, the cost guard behind `make bench-instr`: user-space
 * instructions per echoed 64-byte message, counted by callgrind on the
 * server, for gyre's ways of writing an echo and for the raw loops, in one
 * run; compared with the budgets of bench/instr-budget.txt.
 *
 *   gyre-instr [--budget FILE] [--only NAME[,NAME...]] [--conns N] [--keep DIR]
 *
 * --conns N runs one connection count only: at 50 alone msgs and waits are
 * nearly collinear, and the fit is refused, which shows why both are run.
 *
 * The load is gyre-bench's counted ping-pong client (load.c), the servers
 * are started and stopped by its server.c, pinned as in gyre-bench.
 *
 * Method. A count of one run mixes three costs: per message, per kernel
 * wait (loop iteration), and start-up/teardown. How many messages one wait
 * returns depends on the relative speed of client and server, which drifts
 * on a shared machine (3 to 47 per wait at 50 connections), so one
 * subtraction of two runs moves with it. Each server therefore runs at
 * several message counts at 1 connection (one message per wait or two) and
 * at 50 connections (tens per wait), and the totals are fitted by least
 * squares to
 *     Ir = a * msgs + b * waits + c[conns]
 * with waits = callgrind's call count of the loop's iteration function
 * (gyre: iterate; raw epoll: epoll_wait; raw liburing:
 * io_uring_submit_and_wait) and one start-up constant per connection count
 * (50 connections cost more to accept and close than 1). The 1-connection
 * runs, whose waits move with the messages at a different rate than at 50
 * connections, are what separates a from b; a run whose counts leave msgs
 * and waits collinear (within-group correlation above INSTR_MAX_CORR) is
 * refused, not fitted. R^2 and every residual are printed: the model must
 * hold for the figures to mean anything.
 *
 * The figures gated on: at 1 connection, a + b * (waits per message at 1
 * connection, as measured); at 50 connections, a + b / 30, the batching
 * docs/benchmarks.md's runs see (a fixed regime, so the figure does not
 * move with the machine's drift).
 *
 * Exit status: 0 when every gyre figure is within its budget + tolerance;
 * 1 when one is over, has no budget, or a server failed; 2 on usage.
 * Instruction counts are not timings: they repeat to a fraction of a
 * percent, which is what makes a 5% gate possible.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "load.h"

#define INSTR_MSG_SIZE 64
#define INSTR_REF_BATCH 30.0 /* messages per wait of the 50-connection figure */
#define INSTR_MAX_CORR 0.99  /* refuse a fit above this |correlation| */
#define INSTR_TOLERANCE 0.05
#define INSTR_READY_NS (30ull * 1000 * 1000 * 1000)
#define INSTR_RUN_TIMEOUT_NS (60ull * 1000 * 1000 * 1000)
#define INSTR_STOP_GRACE_NS (20ull * 1000 * 1000 * 1000)
#define MAX_RUNS 8
#define MAX_BUDGETS 64

/* The connection counts and, for each, the message counts of its runs. */
static const struct {
    int conns;
    uint64_t msgs[3];
} instr_groups[] = {
    {1, {400, 800, 1600}},
    {50, {2000, 4000, 8000}},
};
#define N_GROUPS 2
#define N_COUNTS 3

typedef struct instr_server {
    const char *name; /* the table row */
    const char *bin;  /* in build/bin */
    const char *backend;
    const char *extra;   /* a further option, e.g. --try-send */
    const char *wait_fn; /* callgrind's name of the loop iteration */
    int gyre;            /* gated by the budget; exits by --exit-after-clients */
    const char *baseline;
} instr_server;

/* The measured programs. The order is the table's. */
static const instr_server instr_servers[] = {
    {"gyre-echo-epoll", "gyre-echo", "epoll", NULL, "iterate", 1, "raw-epoll"},
    {"gyre-echo-uring", "gyre-echo", "uring", NULL, "iterate", 1, "raw-uring"},
    /* SLOT: gyre-echo --try-send (gyre_try_send, issue 12 point 5). Skipped
     * with a note until gyre-echo accepts the option; then its budget lines
     * go into bench/instr-budget.txt. */
    {"gyre-trysend-epoll", "gyre-echo", "epoll", "--try-send", "iterate", 1, "raw-epoll"},
    {"gyre-trysend-uring", "gyre-echo", "uring", "--try-send", "iterate", 1, "raw-uring"},
    {"gyre-watch-epoll", "gyre-echo-watch", "epoll", NULL, "iterate", 1, "raw-epoll"},
    {"gyre-watch-uring", "gyre-echo-watch", "uring", NULL, "iterate", 1, "raw-uring"},
    {"gyre-stream-epoll", "gyre-echo-stream", "epoll", NULL, "iterate", 1, "raw-epoll"},
    {"gyre-stream-uring", "gyre-echo-stream", "uring", NULL, "iterate", 1, "raw-uring"},
    {"gyre-deadline-epoll", "gyre-echo-deadline", "epoll", NULL, "iterate", 1, "raw-epoll"},
    {"gyre-deadline-uring", "gyre-echo-deadline", "uring", NULL, "iterate", 1, "raw-uring"},
    {"raw-epoll", "echo-epoll", NULL, NULL, "epoll_wait", 0, "raw-epoll"},
    {"raw-uring", "echo-uring", NULL, NULL, "io_uring_submit_and_wait", 0, "raw-uring"},
};
#define N_SERVERS (sizeof instr_servers / sizeof instr_servers[0])

typedef struct instr_run {
    int conns;
    uint64_t msgs, waits, ir;
    double fit;
} instr_run;

typedef struct instr_fig {
    int ok;
    char note[128];
    instr_run runs[MAX_RUNS];
    int n_runs;
    double a, b, c[N_GROUPS], r2, corr, max_res;
    double wpm1;               /* waits per message at 1 connection (slope) */
    double batch_lo, batch_hi; /* messages per wait seen at 50 connections */
    double fig[N_GROUPS];      /* the gated figures */
} instr_fig;

typedef struct budget {
    char name[48];
    double value;
    int used;
} budget;

static budget budgets[MAX_BUDGETS];
static int n_budgets;
static int only_conns; /* --conns: 0 = every group */

/* --- running one server under callgrind --- */

/* Sums callgrind's call counts of fn in the out file (name compression
 * on: "cfn=(id) name" names an id the first time, "cfn=(id)" after), and
 * reads the total. Returns 0 or -errno. */
static int read_callgrind(const char *path, const char *fn, uint64_t *calls, uint64_t *total)
{
    char line[4096];
    static char is_fn[1 << 16];
    long id, cur = -1;
    int have_total = 0;
    FILE *f = fopen(path, "r");

    if (!f)
        return -errno;
    memset(is_fn, 0, sizeof is_fn);
    *calls = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "cfn=(", 5) == 0 || strncmp(line, "fn=(", 4) == 0) {
            char *p = strchr(line, '(') + 1, *end;

            id = strtol(p, &end, 10);
            if (*end != ')' || id < 0 || id >= (long)sizeof is_fn)
                continue;
            if (end[1] == ' ') {
                char *name = end + 2;

                name[strcspn(name, "\n")] = '\0';
                is_fn[id] = strcmp(name, fn) == 0;
            }
            if (line[0] == 'c')
                cur = id;
        } else if (strncmp(line, "calls=", 6) == 0) {
            if (cur >= 0 && is_fn[cur])
                *calls += strtoull(line + 6, NULL, 10);
            cur = -1;
        } else if (sscanf(line, "totals: %" SCNu64, total) == 1 ||
                   sscanf(line, "summary: %" SCNu64, total) == 1) {
            have_total = 1;
        } else if (strncmp(line, "fn=", 3) == 0 || strncmp(line, "cfn=", 4) == 0) {
            /* names without compression: not what valgrind writes by default */
            cur = -1;
        }
    }
    fclose(f);
    return have_total ? 0 : -ENODATA;
}

/* One counted run. Returns 0 or -1 with fig->note set. */
static int run_once(const instr_server *sv, const char *path, int conns, uint64_t msgs,
                    const char *out_path, instr_fig *fig, instr_run *run)
{
    char port_arg[12], exit_arg[12], *argv[12];
    load_params p = {
        .conns = conns, .size = INSTR_MSG_SIZE, .msgs = msgs, .timeout_ns = INSTR_RUN_TIMEOUT_NS};
    load_result *r = malloc(sizeof *r);
    pid_t server, tool;
    int n = 0, port, rc, status, failed = 0;

    if (!r) {
        snprintf(fig->note, sizeof fig->note, "out of memory");
        return -1;
    }
    port = server_free_port();
    snprintf(port_arg, sizeof port_arg, "%d", port);
    /* The client's connections, plus the one server_wait_ready makes. */
    snprintf(exit_arg, sizeof exit_arg, "%d", conns + 1);
    argv[n++] = (char *)path;
    argv[n++] = "--port";
    argv[n++] = port_arg;
    if (sv->backend) {
        argv[n++] = "--backend";
        argv[n++] = (char *)sv->backend;
    }
    if (sv->extra)
        argv[n++] = (char *)sv->extra;
    if (sv->gyre) {
        /* Under valgrind a signal cannot reach a thread blocked in
         * io_uring_enter: gyre's servers end the run by themselves. */
        argv[n++] = "--exit-after-clients";
        argv[n++] = exit_arg;
    }
    argv[n] = NULL;
    unlink(out_path);
    rc = server_spawn_probed(argv, SERVER_PROBE_INSTRUCTIONS, out_path, &server, &tool);
    if (rc < 0) {
        snprintf(fig->note, sizeof fig->note, "start: %s", strerror(-rc));
        free(r);
        return -1;
    }
    rc = server_wait_ready(port, tool, INSTR_READY_NS);
    if (rc < 0) {
        snprintf(fig->note, sizeof fig->note, "%s",
                 rc == -ECHILD ? "exited at start" : "never listened");
        server_stop(tool, SIGTERM, INSTR_STOP_GRACE_NS);
        free(r);
        return -1;
    }
    p.port = port;
    p.server = server;
    if (load_run(&p, r) < 0 || !r->ok) {
        snprintf(fig->note, sizeof fig->note, "load: %s", r->note[0] ? r->note : "failed");
        failed = 1;
    }
    if (!sv->gyre || failed) {
        (void)kill(server, SIGTERM);
        server_poke(port);
    }
    status = server_stop(tool, 0, INSTR_STOP_GRACE_NS);
    if (!failed && (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        snprintf(fig->note, sizeof fig->note, "did not exit cleanly (status 0x%x)",
                 (unsigned)status);
        failed = 1;
    }
    free(r);
    if (failed)
        return -1;
    rc = read_callgrind(out_path, sv->wait_fn, &run->waits, &run->ir);
    if (rc < 0) {
        snprintf(fig->note, sizeof fig->note, "no callgrind counts: %s", strerror(-rc));
        return -1;
    }
    if (run->waits == 0) {
        snprintf(fig->note, sizeof fig->note, "no call of %s in the profile", sv->wait_fn);
        return -1;
    }
    run->conns = conns;
    run->msgs = msgs;
    return 0;
}

/* --- the fit --- */

static int group_of(int conns)
{
    int g;

    for (g = 0; g < N_GROUPS; g++)
        if (instr_groups[g].conns == conns)
            return g;
    return 0;
}

/* Least squares of Ir on msgs and waits with one intercept per group:
 * within-group centring removes the intercepts, leaving a 2x2 system. */
static int fit(instr_fig *f)
{
    double mean[N_GROUPS][3] = {{0}}, cnt[N_GROUPS] = {0};
    double smm = 0, sww = 0, smw = 0, smy = 0, swy = 0, syy = 0, det, ss_res = 0;
    double w1_mm = 0, w1_mw = 0;
    int i, g;

    for (i = 0; i < f->n_runs; i++) {
        g = group_of(f->runs[i].conns);
        mean[g][0] += (double)f->runs[i].msgs;
        mean[g][1] += (double)f->runs[i].waits;
        mean[g][2] += (double)f->runs[i].ir;
        cnt[g]++;
    }
    for (g = 0; g < N_GROUPS; g++)
        if (cnt[g] > 0)
            mean[g][0] /= cnt[g], mean[g][1] /= cnt[g], mean[g][2] /= cnt[g];
    f->batch_lo = 1e9;
    f->batch_hi = 0;
    for (i = 0; i < f->n_runs; i++) {
        const instr_run *r = &f->runs[i];
        double m, w, y, batch = (double)r->msgs / (double)r->waits;

        g = group_of(r->conns);
        m = (double)r->msgs - mean[g][0];
        w = (double)r->waits - mean[g][1];
        y = (double)r->ir - mean[g][2];
        smm += m * m, sww += w * w, smw += m * w, smy += m * y, swy += w * y, syy += y * y;
        if (r->conns == 1)
            w1_mm += m * m, w1_mw += m * w;
        else if (batch < f->batch_lo)
            f->batch_lo = batch;
        if (r->conns != 1 && batch > f->batch_hi)
            f->batch_hi = batch;
    }
    f->corr = smw / sqrt(smm * sww);
    if (!(fabs(f->corr) <= INSTR_MAX_CORR)) {
        snprintf(f->note, sizeof f->note,
                 "refused: msgs and waits collinear (correlation %.4f > %.2f): a and b cannot "
                 "be told apart",
                 f->corr, INSTR_MAX_CORR);
        return -1;
    }
    det = smm * sww - smw * smw;
    f->a = (smy * sww - swy * smw) / det;
    f->b = (swy * smm - smy * smw) / det;
    for (g = 0; g < N_GROUPS; g++)
        f->c[g] = mean[g][2] - f->a * mean[g][0] - f->b * mean[g][1];
    f->max_res = 0;
    for (i = 0; i < f->n_runs; i++) {
        instr_run *r = &f->runs[i];
        double res;

        g = group_of(r->conns);
        r->fit = f->a * (double)r->msgs + f->b * (double)r->waits + f->c[g];
        res = (double)r->ir - r->fit;
        ss_res += res * res;
        if (fabs(res) > fabs(f->max_res))
            f->max_res = res;
    }
    f->r2 = syy > 0 ? 1 - ss_res / syy : 0;
    f->wpm1 = w1_mm > 0 ? w1_mw / w1_mm : 0;
    f->fig[0] = f->a + f->b * f->wpm1;
    f->fig[1] = f->a + f->b / INSTR_REF_BATCH;
    return 0;
}

/* --- budgets --- */

static int load_budgets(const char *path)
{
    char line[256], name[48];
    double v;
    FILE *f = fopen(path, "r");
    int ln = 0;

    if (!f) {
        fprintf(stderr, "gyre-instr: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        char *p = line;

        ln++;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || *p == '\0')
            continue;
        if (sscanf(p, "%47s %lf", name, &v) != 2 || v <= 0 || n_budgets == MAX_BUDGETS) {
            fprintf(stderr, "gyre-instr: %s:%d: expected \"NAME INSTR_PER_MSG\"\n", path, ln);
            fclose(f);
            return -1;
        }
        snprintf(budgets[n_budgets].name, sizeof budgets[0].name, "%s", name);
        budgets[n_budgets++].value = v;
    }
    fclose(f);
    return 0;
}

static budget *find_budget(const char *name)
{
    int i;

    for (i = 0; i < n_budgets; i++)
        if (strcmp(budgets[i].name, name) == 0)
            return &budgets[i];
    return NULL;
}

/* --- the run --- */

static int selected(const char *only, const char *name)
{
    size_t len = strlen(name);
    const char *p = only;

    if (!only)
        return 1;
    while ((p = strstr(p, name)) != NULL) {
        if ((p == only || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
            return 1;
        p += len;
    }
    return 0;
}

/* gyre-echo knows an option if it takes it before --version (an unknown
 * option is a usage error first). */
static int knows_option(const char *path, const char *opt)
{
    char cmd[PATH_MAX + 128];

    snprintf(cmd, sizeof cmd, "'%s' %s --version >/dev/null 2>&1", path, opt);
    return system(cmd) == 0;
}

/* valgrind's messages of a run (server.c puts them in OUT.log): shown when
 * the run failed, since they may say why. */
static void show_log(const char *out_path)
{
    char log[PATH_MAX + 80], line[512];
    FILE *f;
    int n = 0;

    snprintf(log, sizeof log, "%s.log", out_path);
    f = fopen(log, "r");
    if (!f)
        return;
    bench_progress_clear();
    while (fgets(line, sizeof line, f) && n++ < 40)
        fprintf(stderr, "  valgrind: %s", line);
    fclose(f);
}

static void drop_log(const char *out_path, int keep)
{
    char log[PATH_MAX + 80];

    snprintf(log, sizeof log, "%s.log", out_path);
    if (!keep)
        unlink(log);
}

static void measure(const instr_server *sv, const char *dir, const char *keep, instr_fig *f)
{
    char path[PATH_MAX], out_path[PATH_MAX + 64];
    int g, k, rc;

    memset(f, 0, sizeof *f);
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, sv->bin) >= sizeof path ||
        access(path, X_OK) != 0) {
        snprintf(f->note, sizeof f->note, "skipped: %s not built", sv->bin);
        return;
    }
    if (sv->extra && !knows_option(path, sv->extra)) {
        snprintf(f->note, sizeof f->note, "skipped: %s has no %s yet (slot kept)", sv->bin,
                 sv->extra);
        return;
    }
    for (g = 0; g < N_GROUPS; g++) {
        if (only_conns && instr_groups[g].conns != only_conns)
            continue;
        for (k = 0; k < N_COUNTS; k++) {
            instr_run *r = &f->runs[f->n_runs];
            uint64_t msgs = instr_groups[g].msgs[k];

            if (keep)
                snprintf(out_path, sizeof out_path, "%s/%s.%dx%llu.callgrind", keep, sv->name,
                         instr_groups[g].conns, (unsigned long long)msgs);
            else
                snprintf(out_path, sizeof out_path, "/tmp/gyre-instr-%d.callgrind", (int)getpid());
            if (isatty(STDERR_FILENO))
                bench_progress("[instr] %s: %d conns, %llu msgs", sv->name, instr_groups[g].conns,
                               (unsigned long long)msgs);
            rc = run_once(sv, path, instr_groups[g].conns, msgs, out_path, f, r);
            if (rc < 0)
                show_log(out_path);
            drop_log(out_path, keep != NULL);
            if (!keep)
                unlink(out_path);
            if (rc < 0)
                return;
            f->n_runs++;
        }
    }
    bench_progress_clear();
    f->ok = fit(f) == 0;
}

static void row_name(char *buf, size_t size, const instr_server *sv, int g)
{
    snprintf(buf, size, "%s/%d", sv->name, instr_groups[g].conns);
}

static const instr_fig *fig_of(const instr_fig *figs, const char *name)
{
    size_t i;

    for (i = 0; i < N_SERVERS; i++)
        if (strcmp(instr_servers[i].name, name) == 0)
            return &figs[i];
    return NULL;
}

static int report(const instr_fig *figs, int have_budget, const char *only)
{
    char row[64], verdict[64];
    size_t i;
    int g, k, bad = 0;

    printf("\nuser-space instructions per echoed %d-byte message (callgrind, server only)\n",
           INSTR_MSG_SIZE);
    printf("fit per server: Ir = a*msgs + b*waits + c[conns]; instr/msg at 1 connection = a + "
           "b*(waits/msg there), at 50 = a + b/%.0f\n\n",
           INSTR_REF_BATCH);
    printf("%-24s %9s %8s %8s %9s %8s %11s %9s %8s  %s\n", "server/conns", "instr/msg", "a", "b",
           "msgs/wait", "vs raw", "R^2", "max res", "budget", "verdict");
    for (i = 0; i < N_SERVERS; i++) {
        const instr_server *sv = &instr_servers[i];
        const instr_fig *f = &figs[i], *base = fig_of(figs, sv->baseline);

        if (!selected(only, sv->name))
            continue;
        for (g = 0; g < N_GROUPS; g++) {
            budget *bu;
            char batch[24], ratio[16] = "-", limit[24] = "-";

            row_name(row, sizeof row, sv, g);
            bu = find_budget(row);
            if (bu)
                bu->used = 1;
            if (!f->ok) {
                /* A slot not filled yet is a note; any other failure fails
                 * the run, a raw peer's too: the figures are compared in
                 * one run, and a peer that is not built means missing
                 * packages. */
                int skip = strncmp(f->note, "skipped:", 8) == 0;

                printf("%-24s %9s  %s\n", row, "-", f->note);
                if (!(skip && sv->extra) && g == 0)
                    bad++;
                continue;
            }
            if (only_conns && instr_groups[g].conns != only_conns) {
                printf("%-24s %9s  not measured (--conns %d)\n", row, "-", only_conns);
                continue;
            }
            if (g == 0)
                snprintf(batch, sizeof batch, "%.2f", f->wpm1 > 0 ? 1 / f->wpm1 : 0);
            else
                snprintf(batch, sizeof batch, "%.0f*", INSTR_REF_BATCH);
            if (base && base->ok && base != f)
                snprintf(ratio, sizeof ratio, "%.2fx", f->fig[g] / base->fig[g]);
            verdict[0] = '\0';
            if (bu)
                snprintf(limit, sizeof limit, "%.0f", bu->value);
            if (sv->gyre && have_budget) {
                if (!bu) {
                    snprintf(verdict, sizeof verdict, "FAIL: no budget");
                    bad++;
                } else if (f->fig[g] > bu->value * (1 + INSTR_TOLERANCE)) {
                    snprintf(verdict, sizeof verdict, "FAIL: +%.1f%% over budget",
                             100 * (f->fig[g] / bu->value - 1));
                    bad++;
                } else {
                    snprintf(verdict, sizeof verdict, "ok (%+.1f%%)",
                             100 * (f->fig[g] / bu->value - 1));
                }
            }
            printf("%-24s %9.1f %8.1f %8.1f %9s %8s %11.9f %9.0f %8s  %s\n", row, f->fig[g], f->a,
                   f->b, batch, ratio, f->r2, f->max_res, limit, verdict);
        }
    }
    printf("* the 50-connection figure is taken at %.0f messages per wait; the runs saw:\n",
           INSTR_REF_BATCH);
    for (i = 0; i < N_SERVERS; i++)
        if (figs[i].ok && selected(only, instr_servers[i].name))
            printf("  %-22s %.1f-%.1f msgs/wait at 50 conns, corr(msgs, waits) %.3f\n",
                   instr_servers[i].name, figs[i].batch_lo, figs[i].batch_hi, figs[i].corr);
    printf("\nruns (residual = measured - fitted Ir):\n");
    printf("%-22s %5s %7s %7s %12s %9s %9s\n", "server", "conns", "msgs", "waits", "Ir", "residual",
           "res/Ir");
    for (i = 0; i < N_SERVERS; i++) {
        const instr_fig *f = &figs[i];

        for (k = 0; f->ok && k < f->n_runs; k++) {
            const instr_run *r = &f->runs[k];
            double res = (double)r->ir - r->fit;

            printf("%-22s %5d %7llu %7llu %12llu %9.0f %8.4f%%\n", instr_servers[i].name, r->conns,
                   (unsigned long long)r->msgs, (unsigned long long)r->waits,
                   (unsigned long long)r->ir, res, 100 * res / (double)r->ir);
        }
    }
    for (k = 0; k < n_budgets; k++)
        if (!budgets[k].used && !only && !only_conns)
            printf("note: budget %s names no measured row\n", budgets[k].name);
    if (have_budget)
        printf("\n%s: %d gyre figure(s) over budget by more than %.0f%% or not measured\n",
               bad ? "bench-instr FAILED" : "bench-instr ok", bad, 100 * INSTR_TOLERANCE);
    return bad;
}

static int usage(void)
{
    fprintf(stderr, "usage: gyre-instr [--budget FILE] [--only NAME[,NAME...]] [--conns 1|50] "
                    "[--keep DIR]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *budget_path = NULL, *only = NULL, *keep = NULL;
    static instr_fig figs[N_SERVERS];
    char dir[PATH_MAX];
    size_t i;
    int a, bad;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--budget") == 0 && a + 1 < argc)
            budget_path = argv[++a];
        else if (strcmp(argv[a], "--only") == 0 && a + 1 < argc)
            only = argv[++a];
        else if (strcmp(argv[a], "--keep") == 0 && a + 1 < argc)
            keep = argv[++a];
        else if (strcmp(argv[a], "--conns") == 0 && a + 1 < argc &&
                 ((only_conns = atoi(argv[++a])) == instr_groups[0].conns ||
                  only_conns == instr_groups[1].conns))
            ;
        else
            return usage();
    }
    if (budget_path && load_budgets(budget_path) < 0)
        return 1;
    if (!server_have_callgrind()) {
        fprintf(stderr, "gyre-instr: valgrind does not run here\n");
        return 1;
    }
    if (keep && mkdir(keep, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gyre-instr: %s: %s\n", keep, strerror(errno));
        return 1;
    }
    if (bench_bin_dir(dir, sizeof dir) != 0)
        snprintf(dir, sizeof dir, ".");
    signal(SIGPIPE, SIG_IGN);
    bench_raise_nofile();
    for (i = 0; i < N_SERVERS; i++) {
        if (!selected(only, instr_servers[i].name))
            continue;
        measure(&instr_servers[i], dir, keep, &figs[i]);
        bench_progress_clear();
        fprintf(stderr, "[instr] %s: %s\n", instr_servers[i].name,
                figs[i].ok ? "measured" : figs[i].note);
    }
    bad = report(figs, budget_path != NULL, only);
    return bad ? 1 : 0;
}
