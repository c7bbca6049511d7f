/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* stats.c: gyre-bench's clock, statistics over rounds, latency histograms,
 * random numbers and progress line.
 *
 * Rounds are summarised by median and min..max rather than mean and standard
 * deviation: a run on a shared machine has outliers (a preempted round), and
 * the median ignores them while the spread still shows they happened.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

bench_stats bench_stats_of(double *v, int n)
{
    bench_stats s = {0};

    if (n <= 0)
        return s;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s.min = v[0];
    s.max = v[n - 1];
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s.rounds = n;
    return s;
}

/* splitmix64: one multiply-xorshift chain per call, good enough to scatter
 * timer deadlines and cheap enough to stay out of the figures. */
uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The middle of bucket b, in ns. */
static double hist_value(unsigned b)
{
    unsigned e;

    if (b < 64)
        return b;
    e = (b - 64) / 32 + 6;
    return (double)(32 + (b - 64) % 32) * (double)(1ull << (e - 5)) + (double)(1ull << (e - 5)) / 2;
}

double bench_hist_quantile(const uint64_t *hist, double q)
{
    uint64_t total = 0, want, seen = 0;
    unsigned b;

    for (b = 0; b < BENCH_HIST_BUCKETS; b++)
        total += hist[b];
    if (total == 0)
        return 0;
    want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (b = 0; b < BENCH_HIST_BUCKETS; b++) {
        seen += hist[b];
        if (seen > want)
            return hist_value(b);
    }
    return hist_value(BENCH_HIST_BUCKETS - 1);
}

/* Length of the line now shown, so a shorter one can blank out its tail. */
static int progress_len;

void bench_progress(const char *fmt, ...)
{
    char line[160];
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if (len >= (int)sizeof line)
        len = (int)sizeof line - 1;
    fprintf(stderr, "\r%s%*s", line, progress_len > len ? progress_len - len : 0, "");
    fflush(stderr);
    progress_len = len;
}

void bench_progress_clear(void)
{
    if (progress_len == 0)
        return;
    fprintf(stderr, "\r%*s\r", progress_len, "");
    fflush(stderr);
    progress_len = 0;
}
