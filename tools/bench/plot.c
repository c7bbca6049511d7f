/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* plot.c: gyre-bench's charts, drawn by gnuplot from the recorded results.
 *
 * The data and the script are written next to the PNG and kept, so a chart
 * can be restyled or redrawn on another machine without rerunning the
 * benchmark. gnuplot is optional: without it the files are still written and
 * the run goes on.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench.h"

extern char **environ;

/* Writes one data block per backend (gnuplot's `index`), each line
 * "x median min max"; fills backends[] with the blocks' names in order. */
static void write_data(const bench_ctx *ctx, const bench_scenario *s, FILE *f,
                       const char **backends, size_t *n_backends)
{
    size_t i, j, b;

    *n_backends = 0;
    for (i = 0; i < ctx->n_results; i++) {
        const bench_result *r = &ctx->results[i];

        if (r->scenario != s || r->status != BENCH_OK || r->param < 0)
            continue;
        for (b = 0; b < *n_backends; b++)
            if (strcmp(backends[b], r->backend) == 0)
                break;
        if (b < *n_backends)
            continue;
        backends[(*n_backends)++] = r->backend;
        fprintf(f, "%s# backend %s\n", b ? "\n\n" : "", r->backend);
        for (j = i; j < ctx->n_results; j++) {
            const bench_result *q = &ctx->results[j];

            if (q->scenario == s && q->status == BENCH_OK && q->param >= 0 &&
                strcmp(q->backend, r->backend) == 0)
                fprintf(f, "%ld %.6g %.6g %.6g\n", q->param, q->stats.median, q->stats.min,
                        q->stats.max);
        }
    }
}

static void write_script(const bench_scenario *s, FILE *f, const char *dat, const char *png,
                         const char **backends, size_t n_backends)
{
    size_t b;

    /* pngcairo draws better, but plain png (libgd) is the one more builds
     * have. */
    fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
               "    set terminal pngcairo size 900,560\n"
               "} else {\n"
               "    set terminal png size 900,560\n"
               "}\n");
    fprintf(f, "set output '%s'\n", png);
    fprintf(f, "set title '%s (%s, median, bars min-max)'\n", s->title, s->unit);
    fprintf(f, "set xlabel '%s'\nset ylabel '%s'\n", s->plot->xlabel, s->plot->ylabel);
    if (s->plot->logx)
        fprintf(f, "set logscale x\n");
    if (s->plot->logy)
        fprintf(f, "set logscale y\n");
    /* The margins keep a flat line off the frame, where it would hide. */
    fprintf(f, "set grid\nset key top left\n"
               "set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05\n");
    fprintf(f, "plot");
    for (b = 0; b < n_backends; b++)
        fprintf(f, "%s '%s' index %zu using 1:2:3:4 with yerrorlines lw 2 title '%s'",
                b ? ", \\\n    " : "", dat, b, backends[b]);
    fprintf(f, "\n");
}

static int run_gnuplot(const char *script)
{
    char *argv[] = {"gnuplot", (char *)script, NULL};
    pid_t pid;
    int err, status;

    err = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (err == ENOENT) {
        fprintf(stderr, "gyre-bench: note: gnuplot is not installed; %s written, no PNG\n", script);
        return 0;
    }
    if (err != 0) {
        fprintf(stderr, "gyre-bench: cannot run gnuplot: %s\n", strerror(err));
        return -1;
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "gyre-bench: gnuplot failed on %s\n", script);
        return -1;
    }
    return 0;
}

/* Closes f, reporting a failed write of path. Returns 0 or -1. */
static int close_file(FILE *f, const char *path)
{
    int bad = ferror(f);

    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "gyre-bench: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

static FILE *open_file(const char *path)
{
    FILE *f = fopen(path, "w");

    if (!f)
        fprintf(stderr, "gyre-bench: cannot create %s: %s\n", path, strerror(errno));
    return f;
}

int bench_plot_scenario(const bench_ctx *ctx, const bench_scenario *s, const char *dir)
{
    char dat[4096], gp[4096], png[4096];
    const char **backends;
    size_t n_backends = 0;
    FILE *f;
    int rc = -1;

    if (!s->plot)
        return 0;
    /* The paths go into the script between single quotes. */
    if (strchr(dir, '\'')) {
        fprintf(stderr, "gyre-bench: --plot directory must not contain a quote\n");
        return -1;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "gyre-bench: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    snprintf(dat, sizeof dat, "%s/%s.dat", dir, s->name);
    snprintf(gp, sizeof gp, "%s/%s.gp", dir, s->name);
    snprintf(png, sizeof png, "%s/%s.png", dir, s->name);

    backends = calloc(ctx->n_results + 1, sizeof *backends);
    if (!backends)
        return -1;
    f = open_file(dat);
    if (!f)
        goto out;
    write_data(ctx, s, f, backends, &n_backends);
    if (close_file(f, dat) != 0)
        goto out;
    if (n_backends == 0) {
        fprintf(stderr, "gyre-bench: note: no results to plot for %s\n", s->name);
        rc = 0;
        goto out;
    }
    f = open_file(gp);
    if (!f)
        goto out;
    write_script(s, f, dat, png, backends, n_backends);
    if (close_file(f, gp) != 0)
        goto out;
    rc = run_gnuplot(gp);
out:
    free(backends);
    return rc;
}
