/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* load.h: the echo load client and the server processes it measures, the
 * pieces of gyre-bench's server scenarios (echo.c) that do not depend on
 * what is served.
 *
 * The client (load.c) is one process forked from gyre-bench, pinned to its
 * own core and written on raw epoll, so it costs the same for every server.
 * Each connection sends a message, waits for the whole echo, compares every
 * byte with what it sent and sends the next: ping-pong. The server side
 * (server.c) starts servers pinned to another core, caps their CPU with a
 * cgroup quota, reads their CPU time, and runs them under perf/strace or
 * callgrind to count syscalls and instructions.
 */
#ifndef GYRE_BENCH_LOAD_H
#define GYRE_BENCH_LOAD_H

#include <stdint.h>
#include <sys/types.h>

#include "bench.h"

/* The core servers run on, and the one the client runs on. */
#define LOAD_SERVER_CPU 0
#define LOAD_CLIENT_CPU 1

/* Round-trip histogram (bench_hist_bucket()). */
#define LOAD_HIST_BUCKETS BENCH_HIST_BUCKETS

typedef struct load_params {
    int port;
    int conns;
    uint32_t size;        /* bytes per message */
    uint64_t warmup_ns;   /* untimed ping-pong after connecting */
    uint64_t duration_ns; /* the timed window (count mode: 0) */
    /* Count mode (> 0): exactly this many messages in all, no warm-up, and
     * every echo is awaited; the window is then the whole run. */
    uint64_t msgs;
    uint64_t timeout_ns; /* the run fails, never hangs, past this */
    pid_t server;        /* whose CPU time the window is charged with */
} load_params;

typedef struct load_result {
    int ok;
    char note[96];          /* why not ok */
    uint64_t msgs;          /* round trips completed in the window */
    uint64_t elapsed_ns;    /* the window */
    uint64_t server_cpu_ns; /* the server's CPU time in the window */
    uint64_t hist[LOAD_HIST_BUCKETS];
} load_result;

/* Runs the client in a child pinned to LOAD_CLIENT_CPU and waits for it;
 * the child is always reaped. Returns 0 with *r filled (r->ok says whether
 * the run passed), or -errno when the child could not be run. */
int load_run(const load_params *p, load_result *r);

/* The q-quantile (0..1) of the round trips in r, in ns. */
double load_quantile(const load_result *r, double q);

/* --- servers (server.c) --- */

/* Starts argv[0] (a path) with argv, pinned to LOAD_SERVER_CPU, stdout to
 * /dev/null, killed with SIGTERM if gyre-bench dies. Returns the pid or
 * -errno. */
pid_t server_spawn(char *const argv[]);

/* Waits until 127.0.0.1:port accepts a connection or timeout_ns passes or
 * pid exits. Returns 0, -ETIMEDOUT or -ECHILD. */
int server_wait_ready(int port, pid_t pid, uint64_t timeout_ns);

/* Stops pid: signal signo (0: none, it is already exiting, as a tool does
 * once its server has; SIGTERM follows after grace_ns), up to grace_ns for it
 * to exit, then SIGKILL; always waits for it. Returns its wait status or
 * -errno. (bench_reap() with the grace period callgrind's dump at exit
 * needs.) */
int server_stop(pid_t pid, int signo, uint64_t grace_ns);

/* Connects to 127.0.0.1:port and closes at once: wakes a server that was
 * sent a signal while blocked in a syscall valgrind does not interrupt
 * (io_uring_enter), so that the signal is delivered when it returns. */
void server_poke(int port);

/* The process's CPU time (all threads, user + system) in ns, or 0. */
uint64_t server_cpu_ns(pid_t pid);

/* A port nobody listens on now (bound and released; loopback only). */
int server_free_port(void);

/* A cgroup that caps the CPU of the processes moved into it. */
typedef struct server_cap {
    char dir[320];    /* the child cgroup, "" when none */
    char parent[256]; /* where processes go back to */
    int v2;
} server_cap;

/* Creates a child cgroup allowing quota_us of CPU per period_us (v1 cpu
 * controller, else v2 cpu.max). Returns 0 or -errno (no writable cgroup). */
int server_cap_create(server_cap *c, unsigned period_us, unsigned quota_us);
/* Moves every thread of pid into the cap (in = 1) or back out (in = 0). */
int server_cap_move(server_cap *c, pid_t pid, int in);
/* Removes the cgroup; processes still in it are moved out first. */
void server_cap_destroy(server_cap *c);

/* What a server is counted with: syscalls (perf's raw_syscalls:sys_enter,
 * or strace -c) or user-space instructions (callgrind). */
typedef enum server_probe {
    SERVER_PROBE_SYSCALLS,
    SERVER_PROBE_INSTRUCTIONS,
} server_probe;

/* Which tool counts syscalls here ("perf", "strace"), or NULL if none does.
 * Probed once. */
const char *server_syscall_tool(void);
/* 1 if valgrind runs here. */
int server_have_callgrind(void);

/* Starts argv under the probe's tool, writing its figures to out_path
 * (callgrind: its own messages to out_path + ".log", which the caller
 * removes too).
 * *server gets the pid to signal and measure (the server itself), *tool the
 * pid to reap (the tool, or the server when the tool execs into it). */
int server_spawn_probed(char *const argv[], server_probe probe, const char *out_path, pid_t *server,
                        pid_t *tool);
/* Reads the count a finished probe wrote. Returns 0 or -errno. */
int server_probe_read(server_probe probe, const char *out_path, uint64_t *count);

#endif
