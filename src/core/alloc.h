/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* alloc.h: gyre's own allocations, through the user's allocator hook.
 *
 * Every allocation gyre makes goes through these four, so that
 * gyre_set_allocator() sees all of it and GYRE_FAULTS' enomem can fail any of
 * them. They return NULL on failure like malloc; callers turn that into
 * -ENOMEM and leave nothing half-built.
 */
#ifndef GYRE_ALLOC_H
#define GYRE_ALLOC_H

#include <stddef.h>

void *gyre__malloc(size_t size);
void *gyre__calloc(size_t n, size_t size);
void *gyre__realloc(void *p, size_t size);
void gyre__free(void *p);

/* Grows the array whose pointer (of any type T *) is at arrp, of *cap
 * elements of elem_size, to hold at least `need`, doubling. Returns 0 or
 * -ENOMEM (array and *cap unchanged). New elements are uninitialised. */
int gyre__grow(void *arrp, size_t *cap, size_t need, size_t elem_size);

#endif
