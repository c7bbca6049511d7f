/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* main.c: gyre-bench's command line and driver.
 *
 * Runs each selected scenario (the table below) once per selected backend,
 * then prints its table, so a long run shows results as it goes; the JSON
 * file and the charts are written at the end from the same results. Exit
 * status: 0 when every measurement of gyre ran or was not applicable, 1 when
 * one failed or timed out, 2 for a usage error. A failure of a peer or of a
 * measuring tool shows in its cell and in the notes but is not gyre's, so
 * it leaves the status 0 (bench_outcome).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Scenarios run in this order; a new scenario is one file and one line. */
static const bench_scenario *const scenarios[] = {
    &bench_scenario_idle, &bench_scenario_timers, &bench_scenario_echo,
    &bench_scenario_http, &bench_scenario_file,
};
#define N_SCENARIOS (sizeof scenarios / sizeof scenarios[0])

/* The backends "all" means; an explicit --backend may name any backend
 * gyre_backend_supported() knows. */
static const char *const all_backends[] = {"select", "poll", "epoll", "uring"};
#define N_ALL_BACKENDS (sizeof all_backends / sizeof all_backends[0])
#define MAX_BACKENDS 16

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: gyre-bench [--scenario NAME]... [--backend NAME|all]... [--quick]\n"
               "                  [--json FILE] [--plot DIR] [--help]\n"
               "\n"
               "  --scenario NAME  run this scenario (repeatable; default: all)\n"
               "  --backend NAME   run on this backend, or 'all' supported here (default)\n"
               "  --quick          fewer messages per round: well under a minute in all\n"
               "  --json FILE      write every result to FILE as JSON\n"
               "  --plot DIR       write gnuplot charts (DIR/<scenario>.png)\n"
               "\nscenarios:\n");
    for (i = 0; i < N_SCENARIOS; i++)
        fprintf(f, "  %-8s %s\n", scenarios[i]->name, scenarios[i]->summary);
}

static int add_backend(const char **list, size_t *n, const char *name)
{
    size_t i;

    for (i = 0; i < *n; i++)
        if (strcmp(list[i], name) == 0)
            return 0;
    if (*n == MAX_BACKENDS)
        return -1;
    list[(*n)++] = name;
    return 0;
}

/* Adds the backends --backend asked for, or all supported ones when it was
 * not given or was "all". Returns 0, or the exit status for a bad request. */
static int resolve_backends(const char **asked, size_t n_asked, const char **out, size_t *n_out)
{
    size_t i;
    int all = n_asked == 0, sup;

    for (i = 0; i < n_asked; i++) {
        if (strcmp(asked[i], "all") == 0) {
            all = 1;
            continue;
        }
        sup = gyre_backend_supported(asked[i]);
        if (sup < 0) {
            fprintf(stderr, "gyre-bench: unknown backend '%s'\n", asked[i]);
            return 2;
        }
        if (sup == 0) {
            fprintf(stderr, "gyre-bench: backend '%s' is not supported here\n", asked[i]);
            return 1;
        }
        add_backend(out, n_out, asked[i]);
    }
    for (i = 0; all && i < N_ALL_BACKENDS; i++)
        if (gyre_backend_supported(all_backends[i]) == 1)
            add_backend(out, n_out, all_backends[i]);
    if (*n_out == 0) {
        fprintf(stderr, "gyre-bench: no backend is supported here\n");
        return 1;
    }
    return 0;
}

static const bench_scenario *find_scenario(const char *name)
{
    size_t i;

    for (i = 0; i < N_SCENARIOS; i++)
        if (strcmp(scenarios[i]->name, name) == 0)
            return scenarios[i];
    return NULL;
}

/* A scenario's description, its own table and the further ones it fills. */
static void print_scenario(const bench_ctx *ctx, const bench_scenario *s)
{
    const bench_scenario *const *t;

    if (s->describe)
        s->describe();
    bench_print_table(ctx, s);
    for (t = s->tables; t && *t; t++)
        bench_print_table(ctx, *t);
}

static int plot_scenario(const bench_ctx *ctx, const bench_scenario *s, const char *dir)
{
    const bench_scenario *const *t;
    int rc = bench_plot_scenario(ctx, s, dir);

    for (t = s->tables; t && *t; t++)
        if (bench_plot_scenario(ctx, *t, dir) != 0)
            rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"scenario", required_argument, NULL, 's'},
        {"backend", required_argument, NULL, 'b'},
        {"quick", no_argument, NULL, 'q'},
        {"json", required_argument, NULL, 'j'},
        {"plot", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *asked[MAX_BACKENDS], *backends[MAX_BACKENDS];
    size_t n_asked = 0, n_backends = 0, i, b;
    int selected[N_SCENARIOS] = {0}, any_selected = 0;
    const char *json_path = NULL, *plot_dir = NULL;
    const bench_scenario *s;
    bench_ctx ctx = {0};
    int opt, rc = 0;

    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            s = find_scenario(optarg);
            if (!s) {
                fprintf(stderr, "gyre-bench: unknown scenario '%s'\n", optarg);
                return 2;
            }
            for (i = 0; i < N_SCENARIOS; i++)
                selected[i] |= scenarios[i] == s;
            any_selected = 1;
            break;
        case 'b':
            if (add_backend(asked, &n_asked, optarg) != 0) {
                fprintf(stderr, "gyre-bench: too many --backend options\n");
                return 2;
            }
            break;
        case 'q':
            ctx.quick = 1;
            break;
        case 'j':
            json_path = optarg;
            break;
        case 'p':
            plot_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gyre-bench: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    rc = resolve_backends(asked, n_asked, backends, &n_backends);
    if (rc != 0)
        return rc;
    for (i = 0; !any_selected && i < N_SCENARIOS; i++)
        selected[i] = 1;

    /* Helpers that die mid-run must surface as a failed write, not kill the
     * benchmark. */
    signal(SIGPIPE, SIG_IGN);
    /* Five: the median then ignores up to two disturbed rounds (a busy
     * machine), and --quick saves its time on messages instead. */
    ctx.rounds = 5;
    bench_print_header();
    for (i = 0; i < N_SCENARIOS; i++) {
        if (!selected[i])
            continue;
        if (scenarios[i]->run_once && scenarios[i]->run_once(&ctx, backends, n_backends) != 0) {
            bench_progress_clear();
            fprintf(stderr, "gyre-bench: %s could not go on; stopping\n", scenarios[i]->name);
            rc = 1;
        }
        for (b = 0; !scenarios[i]->run_once && b < n_backends; b++) {
            if (scenarios[i]->run(&ctx, backends[b]) != 0) {
                bench_progress_clear();
                fprintf(stderr, "gyre-bench: %s on %s could not go on; stopping\n",
                        scenarios[i]->name, backends[b]);
                rc = 1;
                break;
            }
        }
        bench_progress_clear();
        print_scenario(&ctx, scenarios[i]);
        if (rc != 0)
            break;
    }

    for (i = 0; i < ctx.n_results; i++)
        if (bench_result_is_gyre_failure(&ctx.results[i]))
            rc = 1;
    if (json_path && bench_write_json(&ctx, json_path) != 0) {
        fprintf(stderr, "gyre-bench: cannot write %s: %s\n", json_path, strerror(errno));
        rc = 1;
    }
    for (i = 0; plot_dir && i < N_SCENARIOS; i++)
        if (selected[i] && plot_scenario(&ctx, scenarios[i], plot_dir) != 0)
            rc = 1;
    bench_ctx_free(&ctx);
    return rc;
}
