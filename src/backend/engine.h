/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* engine.h: the contract between the core and a file engine.
 *
 * A file engine carries file reads, writes and syncs in some kernel
 * mechanism other than the loop's event backend: Linux kernel AIO
 * (linuxaio.c) or glibc's POSIX AIO (posixaio.c). (The "uring" engine is the
 * io_uring backend's own submit(); the "pool" engine is the core's thread
 * pool; neither uses this contract.) The core asks accepts() per op; what an
 * engine does not take, or refuses with -EAGAIN at submit, goes to the pool.
 *
 * Completions: an engine says how it is woken, either by an fd the core
 * watches for GYRE_IN (linuxaio: an eventfd named in each iocb with
 * IOCB_FLAG_RESFD) or by a signal the core routes through gyre's own signal
 * dispatch (posixaio: SIGEV_SIGNAL). Either way the core then calls reap(),
 * which reports finished ops as GYRE__EV_OP events (cookie = the op, res =
 * its result, events = 0). Engines never call back and never include the
 * core or another backend; all syscalls go through src/sys/.
 */
#ifndef GYRE_ENGINE_H
#define GYRE_ENGINE_H

#include <stdint.h>

#include "backend/backend.h"

struct gyre__file_engine {
    const char *name;

    /* 1 if the engine cannot go on in a forked child (glibc's AIO has no
     * fork handling: requests a child queues soon after the parent's may
     * never run); the child's file ops then go to the pool. */
    int no_fork;

    /* 1 if the engine can run here (cache anything expensive). */
    int (*probe)(void);

    /* Makes the engine's state. Returns 0 or -errno (e.g. -EAGAIN when
     * io_setup finds fs.aio-max-nr used up), with *reason set to a static
     * string saying why. */
    int (*init)(void **state, const char **reason);
    void (*fini)(void *state);

    /* 1 if the engine takes this op (opcode READ/WRITE/READV/WRITEV at an
     * offset, FSYNC, ...), given whether its fd is O_DIRECT. 0 sends it to
     * the pool. */
    int (*accepts)(void *state, const gyre_op *op, int direct);

    /* Queues op. 0: accepted, it will be reported by reap(). -EAGAIN: it
     * cannot go in now without blocking (the core sends it to the pool).
     * Other -errno: that is the op's result. Ops beyond the engine's
     * capacity are queued inside the engine, never refused. */
    int (*submit)(void *state, gyre_op *op);

    /* 0 if op was taken back before the kernel had it (the core completes
     * it with -ECANCELED), -EBUSY if the kernel has it (it completes with
     * its real result: kernel AIO cannot cancel), -ENOENT if unknown. */
    int (*cancel)(void *state, gyre_op *op);

    /* How the engine is woken: an fd readable when reap() has work (>= 0),
     * or -1 and *signo set to the signal it asks to be delivered. */
    int (*wake_fd)(void *state, int *signo);

    /* Reports up to max finished ops into out; returns how many. An event
     * with res -EAGAIN means the op did not run (Linux AIO refuses a
     * RWF_NOWAIT request that would block by completing it so; glibc reports
     * a request it refused or whose signal it lost so): the core sends it to
     * the pool, as for a submit() that returned -EAGAIN. fini() must be safe
     * in a forked child, where the parent's requests are not its own. */
    int (*reap)(void *state, gyre__event *out, int max);
};

extern const struct gyre__file_engine gyre__engine_linuxaio;
extern const struct gyre__file_engine gyre__engine_posixaio;

#endif
