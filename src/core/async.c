/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* async.c: cross-thread wakeups.
 *
 * Protocol (every access sequentially consistent, so one total order holds):
 *   send:  if exchange(a.pending, 1) was 0,
 *            and exchange(loop.async_armed, 1) was 0: write the eventfd.
 *   loop:  read the eventfd (wake_cb in loop.c), then store async_armed = 0,
 *          then for each async: if exchange(a.pending, 0) was 1, call back.
 * A sender that skips the eventfd write saw async_armed == 1, so its store
 * to pending came before the loop's store of 0, which comes before the loop's
 * scan: the scan sees it. A sender that writes the eventfd wakes the next
 * iteration. pending is cleared before the callback, so a send made while the
 * callback runs calls it again: the final send is never lost.
 */
#include <errno.h>

#include "core/loop.h"
#include "sys/sys.h"

GYRE_API int gyre_async_init(gyre_loop *loop, gyre_async *a, gyre_async_cb cb)
{
    if (loop == NULL || a == NULL || cb == NULL)
        return -EINVAL;
    gyre__handle_init(loop, &a->base, GYRE__H_ASYNC);
    a->cb = cb;
    __atomic_store_n(&a->gyre__priv.pending, 0, __ATOMIC_SEQ_CST);
    gyre__list_push(&loop->asyncs, &a->base.gyre__priv.link);
    gyre__handle_start(&a->base);
    return 0;
}

GYRE_API int gyre_async_send(gyre_async *a)
{
    gyre_loop *loop;

    if (a == NULL || !gyre__handle_is(&a->base, GYRE__H_ASYNC))
        return -EINVAL;
    if (__atomic_exchange_n(&a->gyre__priv.pending, 1, __ATOMIC_SEQ_CST) != 0)
        return 0;
    loop = a->base.gyre__priv.loop;
    if (atomic_exchange(&loop->async_armed, 1) == 0)
        gyre__sys_eventfd_signal(loop->wake_fd);
    return 0;
}

GYRE_API int gyre_async_close(gyre_async *a)
{
    if (a == NULL || !gyre__handle_is(&a->base, GYRE__H_ASYNC))
        return -EINVAL;
    if (!gyre__handle_active(&a->base))
        return 0;
    gyre__list_remove(&a->base.gyre__priv.link);
    gyre__handle_stop(&a->base);
    return 0;
}

static void run_one(gyre__link *link)
{
    gyre_async *a = gyre__container_of(link, gyre_async, base.gyre__priv.link);

    if (__atomic_exchange_n(&a->gyre__priv.pending, 0, __ATOMIC_SEQ_CST) != 0)
        a->cb(a);
}

void gyre__async_drain(gyre_loop *loop)
{
    atomic_store(&loop->async_armed, 0);
    gyre__list_each(&loop->asyncs, run_one);
}
