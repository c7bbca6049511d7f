/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* error.c: version queries and error text. */
#include <limits.h>
#include <string.h>

#include "gyre.h"

GYRE_API uint32_t gyre_version(void)
{
    return GYRE_VERSION_HEX;
}

GYRE_API const char *gyre_version_string(void)
{
    return GYRE_VERSION_STRING;
}

GYRE_API const char *gyre_strerror(int err)
{
    const char *s;

    /* INT_MIN has no positive counterpart; no errno is that large anyway. */
    if (err == INT_MIN)
        return "Unknown error";
    if (err < 0)
        err = -err;
    /* strerrordesc_np (glibc 2.32) returns static text, unlike strerror,
     * which may format into a shared buffer: safe from any thread. */
    s = strerrordesc_np(err);
    return s != NULL ? s : "Unknown error";
}
