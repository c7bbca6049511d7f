/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* peer.h: what every peer echo server in bench/peers/ shares, so that the
 * peers differ only in the event loop they put around it.
 *
 * Every peer is the same server as gyre-echo (examples/echo/echo.c): it
 * listens on 127.0.0.1:P, echoes each received chunk at once, and keeps only
 * what a short write left over, in buffers of PEER_BUF_SIZE bytes (the chunk
 * size gyre-echo's buffer pool uses too). Each exits with status 0 on SIGTERM
 * or SIGINT, so the harness can tell a clean stop from a crash.
 */
#ifndef GYRE_PEER_H
#define GYRE_PEER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* The most a server reads at once; gyre-echo's pool buffers have this size. */
#define PEER_BUF_SIZE 4096
/* Connections a server holds at once; its per-connection state is one
 * preallocated slab of this many entries. */
#define PEER_MAX_CONNS 1024

/* Parses `--port P`, or `--version` (prints `version`, the library's
 * run-time version, and exits 0); prints usage and exits 2 on anything else.
 * Returns the port. */
int peer_parse_port(int argc, char **argv, const char *name, const char *version);

/* A TCP socket listening on 127.0.0.1:port (SO_REUSEADDR, close-on-exec,
 * non-blocking when `nonblock`). Prints why and exits 1 on failure: a peer
 * that cannot listen has nothing else to do. */
int peer_listen(int port, int nonblock);

/* Prepares an accepted socket: non-blocking when `nonblock`, TCP_NODELAY (a
 * ping-pong load must not wait for Nagle). Returns 0 or -1. */
int peer_setup_conn(int fd, int nonblock);

/* Set to 1 by the SIGTERM/SIGINT handler that peer_catch_term() installs
 * without SA_RESTART, so that the peer's blocking wait returns EINTR and the
 * loop sees the flag. Peers whose library has its own signal watcher use
 * that instead. */
extern volatile sig_atomic_t peer_stop;
void peer_catch_term(void);

/* What a short write left over on a connection. The readiness peers read
 * into one static buffer and write from it at once; only a leftover is
 * copied, here. */
typedef struct peer_pending {
    uint32_t off, len; /* buf[off..len) is still to be written */
    char buf[PEER_BUF_SIZE];
} peer_pending;

/* Writes data[0..n) to fd at once (n <= PEER_BUF_SIZE, p empty) and keeps
 * what a short write leaves in p. Returns 0 when all was written, 1 when p
 * holds a leftover (wait for writability, then peer_flush), -1 when the
 * connection is gone. */
int peer_send_chunk(int fd, const char *data, size_t n, peer_pending *p);
/* Writes what p holds; same returns as peer_send_chunk. */
int peer_flush(int fd, peer_pending *p);

/* A preallocated slab of PEER_MAX_CONNS connection records of one size, so
 * that no peer allocates per connection either: records come from a stack of
 * free indices. */
typedef struct peer_slab {
    char *items;
    size_t item_size;
    unsigned *free_idx;
    unsigned n_free;
} peer_slab;

/* Allocates the slab (zeroed records); exits 1 when out of memory, at start. */
void peer_slab_init(peer_slab *s, size_t item_size);
/* A free record (its old contents as put back), or NULL when all are in use. */
void *peer_slab_get(peer_slab *s);
void peer_slab_put(peer_slab *s, void *item);

/* Prints "name: what: strerror(err)" to stderr; returns 1, the exit status. */
int peer_fail(const char *name, const char *what, int err);

#endif
