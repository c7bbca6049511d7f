/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-lib.c: process-wide functions -- the allocator hook, gyre_strerror()
 * and the version functions against the header macros.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "runner.h"

/* Counts live blocks; the test is single-threaded. */
static long live_blocks, total_allocs;

static void *count_malloc(size_t n)
{
    void *p = malloc(n);

    if (p != NULL) {
        live_blocks++;
        total_allocs++;
    }
    return p;
}

static void *count_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p != NULL) {
        live_blocks++;
        total_allocs++;
    }
    return p;
}

static void *count_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (p == NULL && q != NULL) {
        live_blocks++;
        total_allocs++;
    } else if (p != NULL && n == 0) {
        live_blocks--; /* glibc frees p and returns NULL */
    }
    return q;
}

static void count_free(void *p)
{
    if (p != NULL)
        live_blocks--;
    free(p);
}

static void timer_noop_cb(gyre_timer *t)
{
    (void)t;
}

void test_lib_allocator(void)
{
    enum {
        NTIMERS = 200
    };
    static gyre_timer timers[NTIMERS];
    gyre_loop *loop = NULL;
    int i;

    ASSERT_EQ(gyre_set_allocator(NULL, count_realloc, count_calloc, count_free), -EINVAL);
    ASSERT_EQ(gyre_set_allocator(count_malloc, count_realloc, count_calloc, NULL), -EINVAL);
    ASSERT_EQ(gyre_set_allocator(count_malloc, count_realloc, count_calloc, count_free), 0);
    ASSERT_EQ(gyre_loop_new(&loop, NULL), 0);
    ASSERT_GT(total_allocs, 0);
    ASSERT_EQ(gyre_set_allocator(malloc, realloc, calloc, free), -EBUSY);
    /* Enough timers to make the heap grow. */
    for (i = 0; i < NTIMERS; i++) {
        ASSERT_EQ(gyre_timer_init(loop, &timers[i]), 0);
        ASSERT_EQ(gyre_timer_start(&timers[i], timer_noop_cb, (uint64_t)i, 0), 0);
    }
    ASSERT_EQ(gyre_loop_run(loop, GYRE_RUN_DEFAULT), 0);
    ASSERT_EQ(gyre_loop_free(loop), 0);
    ASSERT_EQ(live_blocks, 0);
    ASSERT_EQ(gyre_set_allocator(malloc, realloc, calloc, free), 0);
}

void test_lib_strerror(void)
{
    static const int odd[] = {0, 1, -99999, 99999, INT_MIN, INT_MAX};
    size_t i;

    ASSERT_STREQ(gyre_strerror(-ENOENT), strerror(ENOENT));
    ASSERT_STREQ(gyre_strerror(ENOENT), strerror(ENOENT));
    ASSERT_STREQ(gyre_strerror(-EBUSY), strerror(EBUSY));
    for (i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        const char *s = gyre_strerror(odd[i]);

        ASSERT_TRUE(s != NULL);
        ASSERT_GT(strlen(s), 0);
    }
}

void test_lib_version(void)
{
    char expect[32];

    ASSERT_EQ(gyre_version(), GYRE_VERSION_HEX);
    ASSERT_EQ(GYRE_VERSION_HEX,
              (GYRE_VERSION_MAJOR << 16) | (GYRE_VERSION_MINOR << 8) | GYRE_VERSION_PATCH);
    ASSERT_STREQ(gyre_version_string(), GYRE_VERSION_STRING);
    snprintf(expect, sizeof expect, "%d.%d.%d", GYRE_VERSION_MAJOR, GYRE_VERSION_MINOR,
             GYRE_VERSION_PATCH);
    ASSERT_STREQ(gyre_version_string(), expect);
}
