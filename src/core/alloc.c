/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* alloc.c: the allocator hook (gyre_set_allocator) and growth helper.
 *
 * The hook is process-wide and may change only while no loop exists, because
 * memory must be freed by the allocator that made it. The count of live loops
 * is kept here for that check.
 */
#include "core/alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gyre.h"
#include "sys/sys.h"

static struct {
    void *(*malloc_fn)(size_t);
    void *(*realloc_fn)(void *, size_t);
    void *(*calloc_fn)(size_t, size_t);
    void (*free_fn)(void *);
} allocator = {malloc, realloc, calloc, free};

/* Live loops; gyre_set_allocator refuses while any exists. */
atomic_int gyre__live_loops;

static int inject_enomem(void)
{
    return __builtin_expect(gyre__faults.on, 0) && gyre__fault_hit(GYRE__FAULT_ENOMEM);
}

void *gyre__malloc(size_t size)
{
    if (inject_enomem())
        return NULL;
    return allocator.malloc_fn(size);
}

void *gyre__calloc(size_t n, size_t size)
{
    if (inject_enomem())
        return NULL;
    return allocator.calloc_fn(n, size);
}

void *gyre__realloc(void *p, size_t size)
{
    if (inject_enomem())
        return NULL;
    return allocator.realloc_fn(p, size);
}

void gyre__free(void *p)
{
    if (p != NULL)
        allocator.free_fn(p);
}

int gyre__grow(void *arrp, size_t *cap, size_t need, size_t elem_size)
{
    size_t ncap = *cap ? *cap : 16;
    void *old, *n;

    if (need <= *cap)
        return 0;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -ENOMEM;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem_size)
        return -ENOMEM;
    /* The caller's pointer has type T *, so it is copied through memcpy
     * rather than accessed as a void *, which C's aliasing rules forbid. */
    memcpy(&old, arrp, sizeof old);
    n = gyre__realloc(old, ncap * elem_size);
    if (n == NULL)
        return -ENOMEM;
    memcpy(arrp, &n, sizeof n);
    *cap = ncap;
    return 0;
}

GYRE_API int gyre_set_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                                void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *))
{
    if (malloc_fn == NULL || realloc_fn == NULL || calloc_fn == NULL || free_fn == NULL)
        return -EINVAL;
    if (atomic_load(&gyre__live_loops) != 0)
        return -EBUSY;
    allocator.malloc_fn = malloc_fn;
    allocator.realloc_fn = realloc_fn;
    allocator.calloc_fn = calloc_fn;
    allocator.free_fn = free_fn;
    return 0;
}
