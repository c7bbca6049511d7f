/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* dns.c: gyre_getaddrinfo, getaddrinfo(3) as a work op on the pool's DNS
 * lane.
 *
 * The request carries copies of the names and hints, so the worker reads
 * only memory the request owns. The worker stores the list in the request
 * before its op completes; the pool's completion hand-off (a mutex) orders
 * that store before the loop thread's read in the callback. Cancel is the
 * op's: it takes effect only while the op is queued, since getaddrinfo
 * cannot be interrupted once running; a run that finished is reported as it
 * is, and the caller owns its list.
 */
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "gyre.h"
#include "sys/net.h"

#define P(r) (&(r)->gyre__priv)

/* "gai!" in ASCII: what gyre_getaddrinfo_req_init() stores, so that garbage
 * is told from a request gyre has seen. */
#define GAI_MAGIC 0x67616921u

static int prepared(const gyre_getaddrinfo_req *req)
{
    assert((req == NULL || P(req)->magic == GAI_MAGIC) &&
           "gyre_getaddrinfo_req used without gyre_getaddrinfo_req_init()");
    return req != NULL && P(req)->magic == GAI_MAGIC;
}

static int64_t resolve(void *arg)
{
    gyre_getaddrinfo_req *req = arg;
    struct addrinfo hints;

    memset(&hints, 0, sizeof hints);
    hints.ai_flags = P(req)->flags;
    hints.ai_family = P(req)->family;
    hints.ai_socktype = P(req)->socktype;
    hints.ai_protocol = P(req)->protocol;
    return gyre__sys_net_getaddrinfo(P(req)->has_node ? P(req)->node : NULL,
                                     P(req)->has_service ? P(req)->service : NULL, &hints,
                                     &P(req)->res);
}

static void resolved(gyre_op *op)
{
    gyre_getaddrinfo_req *req = op->data;
    struct addrinfo *res = P(req)->res;
    int status = (int)op->result;

    P(req)->res = NULL;
    P(req)->active = 0;
    if (status < 0) {
        gyre__sys_net_freeaddrinfo(res); /* NULL unless a worker raced a failure */
        res = NULL;
    } else if (res == NULL) {
        status = -ENOENT;
    }
    P(req)->cb(req, status, res);
}

static int copy_name(char *dst, size_t cap, const char *src, uint32_t *has)
{
    size_t n;

    *has = src != NULL;
    if (src == NULL)
        return 0;
    n = strlen(src);
    if (n >= cap)
        return -EINVAL;
    memcpy(dst, src, n + 1);
    return 0;
}

GYRE_API int gyre_getaddrinfo_req_init(gyre_getaddrinfo_req *req)
{
    if (req == NULL)
        return -EINVAL;
    memset(&req->gyre__priv, 0, sizeof req->gyre__priv);
    P(req)->magic = GAI_MAGIC;
    return 0;
}

GYRE_API int gyre_getaddrinfo(gyre_loop *loop, gyre_getaddrinfo_req *req, const char *node,
                              const char *service, const struct addrinfo *hints,
                              gyre_getaddrinfo_cb cb)
{
    int r;

    if (loop == NULL || !prepared(req) || cb == NULL || (node == NULL && service == NULL))
        return -EINVAL;
    if (P(req)->active)
        return -EBUSY;
    if (copy_name(P(req)->node, sizeof P(req)->node, node, &P(req)->has_node) < 0 ||
        copy_name(P(req)->service, sizeof P(req)->service, service, &P(req)->has_service) < 0)
        return -EINVAL;
    P(req)->flags = hints != NULL ? hints->ai_flags : 0;
    P(req)->family = hints != NULL ? hints->ai_family : AF_UNSPEC;
    P(req)->socktype = hints != NULL ? hints->ai_socktype : 0;
    P(req)->protocol = hints != NULL ? hints->ai_protocol : 0;
    P(req)->res = NULL;
    P(req)->cb = cb;
    P(req)->cancel = 0;
    P(req)->op.data = req;
    gyre_op_work(&P(req)->op, resolve, req, GYRE_LANE_DNS);
    r = gyre_submit(loop, &P(req)->op, resolved);
    if (r == 0)
        P(req)->active = 1;
    return r;
}

GYRE_API int gyre_getaddrinfo_cancel(gyre_getaddrinfo_req *req)
{
    if (!prepared(req))
        return -EINVAL;
    if (!P(req)->active)
        return -ENOENT;
    if (P(req)->cancel)
        return -EALREADY;
    P(req)->cancel = 1;
    return gyre_cancel(P(req)->op.gyre__priv.loop, &P(req)->op);
}

GYRE_API void gyre_freeaddrinfo(struct addrinfo *res)
{
    gyre__sys_net_freeaddrinfo(res);
}
