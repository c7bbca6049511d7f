/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* report.c: gyre-bench's results and the two ways they leave the process,
 * the tables on stdout and the JSON file.
 *
 * A table is built from the results alone: rows are backends and columns are
 * result columns, each in the order first recorded, so a scenario decides its
 * layout by the order it records in and needs no printing code of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "bench.h"

static const char *const status_names[] = {
    [BENCH_OK] = "ok",
    [BENCH_NA] = "n/a",
    [BENCH_TIMEOUT] = "timeout",
    [BENCH_ERROR] = "error",
};

int bench_record(bench_ctx *ctx, const bench_scenario *scenario, const char *backend,
                 const char *column, long param, bench_status status, const bench_stats *stats,
                 const char *note)
{
    bench_result *r;

    if (ctx->n_results == ctx->cap_results) {
        size_t cap = ctx->cap_results ? 2 * ctx->cap_results : 32;
        bench_result *p = realloc(ctx->results, cap * sizeof *p);

        if (!p)
            return -1;
        ctx->results = p;
        ctx->cap_results = cap;
    }
    r = &ctx->results[ctx->n_results++];
    memset(r, 0, sizeof *r);
    r->scenario = scenario;
    snprintf(r->backend, sizeof r->backend, "%s", backend);
    snprintf(r->column, sizeof r->column, "%s", column);
    r->param = param;
    r->status = status;
    if (stats && status == BENCH_OK)
        r->stats = *stats;
    snprintf(r->note, sizeof r->note, "%s", note ? note : "");
    return 0;
}

int bench_record_outcome(bench_ctx *ctx, const bench_scenario *scenario, const char *backend,
                         const char *column, long param, const bench_outcome *out,
                         const bench_stats *stats)
{
    if (bench_record(ctx, scenario, backend, column, param, out->status, stats, out->note) != 0)
        return -1;
    ctx->results[ctx->n_results - 1].outside = out->status != BENCH_OK && out->outside;
    return 0;
}

int bench_result_is_gyre_failure(const bench_result *r)
{
    return (r->status == BENCH_TIMEOUT || r->status == BENCH_ERROR) && !r->outside;
}

void bench_ctx_free(bench_ctx *ctx)
{
    free(ctx->results);
    ctx->results = NULL;
    ctx->n_results = ctx->cap_results = 0;
}

void bench_print_header(void)
{
    struct utsname u;

    if (uname(&u) == 0)
        printf("kernel: %s %s %s\n", u.sysname, u.release, u.machine);
    printf("gyre:   %s (headers %s)\n\n", gyre_version_string(), GYRE_VERSION_STRING);
    /* Before any helper is forked, and ahead of the progress line. */
    fflush(stdout);
}

/* Enough digits to compare, whatever the magnitude. */
static void format_number(char *buf, size_t size, double v)
{
    snprintf(buf, size, v < 10 ? "%.2f" : v < 100 ? "%.1f" : "%.0f", v);
}

/* A failed cell says why in the cell itself (the note, clipped so that one
 * failure does not widen its column past reading; the full note follows the
 * table). n/a cells stay short: they are expected on some machines. */
#define CELL_NOTE_MAX 40

static void format_cell(char *buf, size_t size, const bench_result *r)
{
    char med[24], lo[24], hi[24];

    if (r->status == BENCH_NA || (r->status != BENCH_OK && !r->note[0])) {
        snprintf(buf, size, "%s", status_names[r->status]);
        return;
    }
    if (r->status != BENCH_OK) {
        snprintf(buf, size, "%s: %.*s%s", status_names[r->status], CELL_NOTE_MAX, r->note,
                 strlen(r->note) > CELL_NOTE_MAX ? "..." : "");
        return;
    }
    format_number(med, sizeof med, r->stats.median);
    format_number(lo, sizeof lo, r->stats.min);
    format_number(hi, sizeof hi, r->stats.max);
    snprintf(buf, size, "%s [%s-%s]", med, lo, hi);
}

/* Index of `name` in names[0..*n-1], appending it when absent. */
static size_t intern(const char **names, size_t *n, const char *name)
{
    size_t i;

    for (i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    names[*n] = name;
    return (*n)++;
}

void bench_print_table(const bench_ctx *ctx, const bench_scenario *s)
{
    size_t n = ctx->n_results, n_rows = 0, n_cols = 0, i, c;
    const char **rows = calloc(n + 1, sizeof *rows);
    const char **cols = calloc(n + 1, sizeof *cols);
    const bench_result **cells = calloc((n + 1) * (n + 1), sizeof *cells);
    int *width = calloc(n + 2, sizeof *width);
    char text[96];
    int rounds = 0;

    if (!rows || !cols || !cells || !width)
        goto out;
    width[0] = (int)strlen("backend");
    for (i = 0; i < n; i++) {
        const bench_result *r = &ctx->results[i];
        size_t row, col;
        int len;

        if (r->scenario != s)
            continue;
        row = intern(rows, &n_rows, r->backend);
        col = intern(cols, &n_cols, r->column);
        cells[row * n + col] = r;
        if (r->status == BENCH_OK && r->stats.rounds > rounds)
            rounds = r->stats.rounds;
        format_cell(text, sizeof text, r);
        len = (int)strlen(text);
        if (len > width[col + 1])
            width[col + 1] = len;
        if ((int)strlen(r->column) > width[col + 1])
            width[col + 1] = (int)strlen(r->column);
        if ((int)strlen(r->backend) > width[0])
            width[0] = (int)strlen(r->backend);
    }
    if (n_rows == 0)
        goto out;

    printf("%s (%s, median of %d rounds [min-max]; %s is better)\n", s->title, s->unit, rounds,
           s->higher_is_better ? "higher" : "lower");
    printf("%-*s", width[0], "backend");
    for (c = 0; c < n_cols; c++)
        printf("   %-*s", width[c + 1], cols[c]);
    printf("\n");
    for (i = 0; i < n_rows; i++) {
        printf("%-*s", width[0], rows[i]);
        for (c = 0; c < n_cols; c++) {
            if (cells[i * n + c])
                format_cell(text, sizeof text, cells[i * n + c]);
            else
                snprintf(text, sizeof text, "-");
            printf("   %-*s", width[c + 1], text);
        }
        printf("\n");
    }
    for (i = 0; i < n; i++) {
        const bench_result *r = &ctx->results[i];

        if (r->scenario == s && r->note[0])
            printf("  %s %s: %s%s: %s\n", r->backend, r->column, status_names[r->status],
                   r->outside ? " (not gyre's)" : "", r->note);
    }
    printf("\n");
    fflush(stdout);
out:
    free(rows);
    free(cols);
    free(cells);
    free(width);
}

/* Writes s as a JSON string; the strings here are ours, but a note may quote
 * an errno text, so every control character is escaped. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

int bench_write_json(const bench_ctx *ctx, const char *path)
{
    FILE *f = fopen(path, "w");
    struct utsname u;
    size_t i;
    int bad;

    if (!f)
        return -1;
    fprintf(f, "{\n  \"gyre_version\": ");
    json_string(f, gyre_version_string());
    if (uname(&u) == 0) {
        fprintf(f, ",\n  \"kernel\": ");
        json_string(f, u.release);
        fprintf(f, ",\n  \"machine\": ");
        json_string(f, u.machine);
    }
    fprintf(f, ",\n  \"quick\": %s,\n  \"results\": [", ctx->quick ? "true" : "false");
    for (i = 0; i < ctx->n_results; i++) {
        const bench_result *r = &ctx->results[i];

        fprintf(f, "%s\n    {\"scenario\": ", i ? "," : "");
        json_string(f, r->scenario->name);
        fprintf(f, ", \"backend\": ");
        json_string(f, r->backend);
        fprintf(f, ", \"column\": ");
        json_string(f, r->column);
        fprintf(f, ", \"param\": %ld, \"status\": ", r->param);
        json_string(f, status_names[r->status]);
        if (r->status != BENCH_OK)
            fprintf(f, ", \"gyre_failure\": %s",
                    bench_result_is_gyre_failure(r) ? "true" : "false");
        fprintf(f, ", \"unit\": ");
        json_string(f, r->scenario->unit);
        if (r->status == BENCH_OK)
            fprintf(f, ", \"median\": %.6g, \"min\": %.6g, \"max\": %.6g, \"rounds\": %d",
                    r->stats.median, r->stats.min, r->stats.max, r->stats.rounds);
        fprintf(f, ", \"note\": ");
        json_string(f, r->note);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    bad = ferror(f);
    return fclose(f) != 0 || bad ? -1 : 0;
}
