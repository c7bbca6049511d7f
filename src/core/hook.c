/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* hook.c: prepare, check and idle hooks.
 *
 * Each kind is an intrusive list run in start order by gyre__list_each, which
 * lets a hook stop itself or any other hook from its callback. An active idle
 * hook makes the loop poll without blocking (loop.c asks
 * gyre_loop_timeout()).
 */
#include <errno.h>

#include "core/loop.h"

GYRE_API int gyre_hook_init(gyre_loop *loop, gyre_hook *h, gyre_hook_kind kind)
{
    if (loop == NULL || h == NULL ||
        (kind != GYRE_HOOK_PREPARE && kind != GYRE_HOOK_CHECK && kind != GYRE_HOOK_IDLE))
        return -EINVAL;
    gyre__handle_init(loop, &h->base, GYRE__H_HOOK);
    h->cb = NULL;
    h->gyre__priv.kind = (int)kind;
    return 0;
}

GYRE_API int gyre_hook_start(gyre_hook *h, gyre_hook_cb cb)
{
    gyre_loop *loop;

    if (h == NULL || !gyre__handle_is(&h->base, GYRE__H_HOOK) || cb == NULL)
        return -EINVAL;
    h->cb = cb;
    if (gyre__handle_active(&h->base))
        return 0;
    loop = h->base.gyre__priv.loop;
    gyre__list_push(&loop->hooks[h->gyre__priv.kind], &h->base.gyre__priv.link);
    gyre__handle_start(&h->base);
    return 0;
}

GYRE_API int gyre_hook_stop(gyre_hook *h)
{
    if (h == NULL || !gyre__handle_is(&h->base, GYRE__H_HOOK))
        return -EINVAL;
    if (!gyre__handle_active(&h->base))
        return 0;
    gyre__list_remove(&h->base.gyre__priv.link);
    gyre__handle_stop(&h->base);
    return 0;
}

static void run_one(gyre__link *link)
{
    gyre_hook *h = gyre__container_of(link, gyre_hook, base.gyre__priv.link);

    h->cb(h);
}

void gyre__hooks_run(gyre_loop *loop, gyre_hook_kind kind)
{
    gyre__list_each(&loop->hooks[kind], run_one);
}
