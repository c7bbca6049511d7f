/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* bufpool.c: buffer pools for multishot recv.
 *
 * One API on every backend. On io_uring (when the kernel has provided-buffer
 * rings and multishot recv) the free buffers live in the kernel's ring and
 * the kernel picks one per completion; elsewhere a stack of free ids here
 * does the same for the emulated recv. Either way a buffer handed to the user
 * is marked out until gyre_bufpool_put(), and a multishot recv that finds no
 * buffer waits on the pool (off its fd, so no readiness spins) until one
 * comes back: -ENOBUFS never reaches a callback.
 */
#include <errno.h>
#include <string.h>

#include "core/alloc.h"
#include "core/loop.h"

#define MAX_BUFFERS 32768u

GYRE_API int gyre_bufpool_new(gyre_loop *loop, gyre_bufpool **out, uint32_t count, uint32_t size)
{
    gyre_bufpool *p;
    int r = -ENOMEM;

    if (loop == NULL || out == NULL || count == 0 || count > MAX_BUFFERS ||
        (count & (count - 1)) != 0 || size == 0 || size > INT32_MAX / count)
        return -EINVAL;
    p = gyre__calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->loop = loop;
    p->count = count;
    p->size = size;
    gyre__list_init(&p->link);
    p->mem = gyre__malloc((size_t)count * size);
    p->out = gyre__calloc(count, 1);
    p->free_ids = gyre__malloc((size_t)count * sizeof *p->free_ids);
    if (p->mem == NULL || p->out == NULL || p->free_ids == NULL)
        goto fail;
    /* Ids are popped from the end: push them so that 0 comes out first. */
    for (uint32_t i = 0; i < count; i++)
        p->free_ids[i] = count - 1 - i;
    p->nfree = count;
    if (loop->be->bufring_add != NULL && loop->be->supports(loop->be_state, GYRE__OP_RECV_MULTI)) {
        r = loop->be->bufring_add(loop->be_state, p->mem, count, size, &p->bgid);
        if (r == 0)
            p->native = 1;
        else if (r != -ENOTSUP)
            goto fail;
    }
    gyre__list_push(&loop->bufpools, &p->link);
    *out = p;
    return 0;
fail:
    gyre__free(p->mem);
    gyre__free(p->out);
    gyre__free(p->free_ids);
    gyre__free(p);
    return r;
}

GYRE_API int gyre_bufpool_free(gyre_bufpool *p)
{
    if (p == NULL)
        return -EINVAL;
    if (p->users != 0 || p->nout != 0)
        return -EBUSY;
    if (p->native)
        p->loop->be->bufring_del(p->loop->be_state, p->bgid);
    gyre__list_remove(&p->link);
    gyre__free(p->mem);
    gyre__free(p->out);
    gyre__free(p->free_ids);
    gyre__free(p);
    return 0;
}

GYRE_API void *gyre_bufpool_buf(gyre_bufpool *p, uint32_t id)
{
    if (p == NULL || id >= p->count)
        return NULL;
    return p->mem + (size_t)id * p->size;
}

GYRE_API uint32_t gyre_bufpool_available(const gyre_bufpool *p)
{
    return p != NULL ? p->count - p->nout : 0;
}

int gyre__bufpool_take(gyre_bufpool *p)
{
    uint32_t id;

    if (p->nfree == 0)
        return -ENOBUFS;
    id = p->free_ids[--p->nfree];
    p->out[id] = 1;
    p->nout++;
    return (int)id;
}

void gyre__bufpool_untake(gyre_bufpool *p, uint32_t id)
{
    p->out[id] = 0;
    p->nout--;
    p->free_ids[p->nfree++] = id;
}

void gyre__bufpool_mark_out(gyre_bufpool *p, uint32_t id)
{
    if (id < p->count && !p->out[id]) {
        p->out[id] = 1;
        p->nout++;
    }
}

void gyre__bufpool_wait(gyre_bufpool *p, gyre_op *op)
{
    op->gyre__priv.state = GYRE__OS_BUFWAIT;
    gyre__opq_push(&p->waiters, op);
}

GYRE_API int gyre_bufpool_put(gyre_bufpool *p, uint32_t id)
{
    gyre_op *op;

    if (p == NULL || id >= p->count || !p->out[id])
        return -EINVAL;
    p->out[id] = 0;
    p->nout--;
    if (p->native)
        p->loop->be->bufring_put(p->loop->be_state, p->bgid, id);
    else
        p->free_ids[p->nfree++] = id;
    /* A buffer is back: the first waiting recv goes back to work. */
    op = p->waiters.head;
    if (op != NULL) {
        gyre__opq_remove(&p->waiters, op);
        gyre__op_start(p->loop, op);
    }
    return 0;
}

void gyre__bufpools_fork(gyre_loop *loop)
{
    /* The child's new ring has no buffer rings, and some buffers may be out
     * with the user: the pools go on emulated, their free stacks rebuilt from
     * what is not out. */
    for (gyre__link *l = loop->bufpools.next; l != &loop->bufpools; l = l->next) {
        gyre_bufpool *p = gyre__container_of(l, gyre_bufpool, link);

        p->native = 0;
        p->nfree = 0;
        for (uint32_t i = p->count; i-- > 0;)
            if (!p->out[i])
                p->free_ids[p->nfree++] = i;
    }
}
