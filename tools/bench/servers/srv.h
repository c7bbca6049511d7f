/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* srv.h: what the small echo servers of make bench-instr share (see
 * srv.c): options, the loop, a listener on 127.0.0.1, SIGTERM, and the
 * --exit-after-clients count. Each server is one way of writing an echo on
 * gyre's public API, measured by gyre-instr against gyre-echo and the raw
 * loops; they are measured programs, not examples, and stay as plain as the
 * API allows so that what they cost is gyre's.
 */
#ifndef GYRE_BENCH_SRV_H
#define GYRE_BENCH_SRV_H

#include <gyre.h>

/* The chunk size; the peers and gyre-echo read this much too. */
#define SRV_BUF_SIZE 4096
#define SRV_BUFS 1024
#define SRV_MAX_CONNS 1024

extern gyre_loop *srv_loop;
/* A shared pool of SRV_BUFS buffers of SRV_BUF_SIZE (multishot recv). */
extern gyre_bufpool *srv_pool;
/* Set once SIGTERM/SIGINT came or the last client left: connections end. */
extern int srv_stopping;

/* Parses --port P [--backend B] [--exit-after-clients N] [--version], makes
 * the loop, the pool and the listener; on_accept gets each connection (a
 * non-blocking fd the callee owns). on_stop runs once when the server is to
 * stop: it must end every connection, so that the loop runs out. Returns 0,
 * or an exit status. */
int srv_start(const char *name, int argc, char **argv, void (*on_accept)(int fd),
              void (*on_stop)(void));
/* Runs the loop until it has nothing left; frees it. Returns the exit
 * status. */
int srv_run(void);
/* A connection is gone (closed): counts towards --exit-after-clients. */
void srv_conn_done(void);

#endif
