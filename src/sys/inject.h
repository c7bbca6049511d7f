/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* inject.h: the fault-injection steps shared by the wrappers of src/sys/.
 *
 * Each helper decides one fault for one call, before the kernel acts, and
 * costs one predictable branch when GYRE_FAULTS is unset. Only wrappers
 * include this; the rest of gyre sees faults only as the errors they cause.
 */
#ifndef GYRE_SYS_INJECT_H
#define GYRE_SYS_INJECT_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <time.h>

#include "sys/sys.h"

#define FAULTS_ON() __builtin_expect(gyre__faults.on, 0)

/* The transient errors of a non-blocking read or write, in a fixed order so
 * a seed replays the same way. Only call when FAULTS_ON(). */
static inline int inject_again_intr(void)
{
    if (gyre__fault_hit(GYRE__FAULT_EAGAIN))
        return -EAGAIN;
    if (gyre__fault_hit(GYRE__FAULT_EINTR))
        return -EINTR;
    return 0;
}

/* A short length in [1, len-1]; len itself when not injected or when len < 2
 * (a transfer of one byte cannot be short without being zero, which would
 * read as end of file). Only call when FAULTS_ON(). */
static inline size_t inject_short(size_t len)
{
    int r;

    if (len < 2)
        return len;
    r = gyre__fault_hit(GYRE__FAULT_SHORT);
    return r ? 1 + (size_t)r % (len - 1) : len;
}

/* inject_short for a file read or write on fd. On an O_DIRECT fd a length
 * must be a multiple of the fd's offset alignment: the kernel refuses any
 * other with EINVAL, which no real kernel answers the valid request the
 * caller made, and a short O_DIRECT transfer the kernel does make moves
 * whole blocks. So there the short length is a multiple of the alignment,
 * in [unit, len - unit], and a length under two units is left whole. Asks
 * the kernel (fcntl, statx) only when a fault could be injected. Only call
 * when FAULTS_ON(). */
static inline size_t inject_short_file(int fd, size_t len)
{
    uint32_t mem, unit;
    int fl, r;

    if (len < 2)
        return len;
    fl = gyre__sys_fcntl_getfl(fd);
    if (fl < 0 || !(fl & O_DIRECT) || gyre__sys_dio_align(fd, &mem, &unit) < 0 || unit < 2)
        return inject_short(len);
    if (len < 2 * (size_t)unit)
        return len;
    r = gyre__fault_hit(GYRE__FAULT_SHORT);
    return r ? (size_t)unit * (1 + (size_t)r % (len / unit - 1)) : len;
}

static inline int inject_enomem(void)
{
    return FAULTS_ON() && gyre__fault_hit(GYRE__FAULT_ENOMEM);
}

static inline int inject_eintr(void)
{
    return FAULTS_ON() && gyre__fault_hit(GYRE__FAULT_EINTR);
}

/* A late call: the calling thread sleeps 1-200 us before the call is made,
 * which moves this call against other threads, peers and timers the way a
 * slow kernel or a preempted thread would. Only call when FAULTS_ON(). */
static inline void inject_delay(void)
{
    int r = gyre__fault_hit(GYRE__FAULT_DELAY);

    if (r) {
        struct timespec ts = {0, 1000L * (1 + r % 200)};

        nanosleep(&ts, NULL); /* an interrupted sleep is still a delay */
    }
}

/* The peer reset the connection: only for calls on stream sockets, where
 * ECONNRESET is a real answer. Only call when FAULTS_ON(). */
static inline int inject_reset(void)
{
    return gyre__fault_hit(GYRE__FAULT_RESET) ? -ECONNRESET : 0;
}

/* The faults a read or write can meet before the kernel acts: a delay, then
 * EAGAIN or EINTR instead of the call, or a shorter length. */
static inline int inject_io(size_t *len)
{
    int rc;

    /* A transfer of nothing is answered at once, never with EAGAIN. */
    if (!FAULTS_ON() || *len == 0)
        return 0;
    inject_delay();
    rc = inject_again_intr();
    if (rc < 0)
        return rc;
    *len = inject_short(*len);
    return 0;
}

/* inject_io for a socket that may be a stream: also ECONNRESET. */
static inline int inject_sock_io(size_t *len)
{
    int rc = inject_io(len);

    if (rc == 0 && FAULTS_ON())
        rc = inject_reset();
    return rc;
}

#endif
