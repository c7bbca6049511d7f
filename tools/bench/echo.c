/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* echo.c: scenario "echo", gyre-echo on every backend against the same echo
 * server on raw epoll, raw liburing, libuv, libevent and libev
 * (bench/peers/), under one ping-pong load client (load.c).
 *
 * Trust on a small, noisy machine comes from the method, not the duration:
 *  - the servers run on one core and the client on another (load.h);
 *  - the servers are interleaved: round r runs every server once, starting
 *    one further down the list each round, so a disturbance (another tenant,
 *    a frequency change) hits every server in some round rather than one
 *    server in all; figures are medians over rounds with min-max, and a ratio
 *    to the baseline is taken within each round before its median;
 *  - server-bound mode caps the servers' CPU with a cgroup quota (25% of a
 *    core in 10 ms periods), so the server, not the client, is the
 *    bottleneck; unconstrained (client-bound), a two-core machine shows
 *    mostly the client;
 *  - syscalls and instructions per message are counted, not timed, over two
 *    runs of fixed message counts: (count(N2) - count(N1)) / (N2 - N1), which
 *    cancels start-up, connection set-up and exit. Instructions repeat to
 *    the digit; syscalls follow how many events each wait returns, which
 *    varies with timing under the cap (+-0.2 per message between runs).
 * Every server process is started once for the scenario, always stopped and
 * reaped, and the cgroup always removed.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "load.h"

#define ECHO_MAX_SERVERS 12
#define ECHO_CAP_PERIOD_US 10000
#define ECHO_CAP_QUOTA_US 2500
#define ECHO_READY_NS (3ull * 1000 * 1000 * 1000)
/* Under valgrind a server starts and runs ~50x slower. */
#define ECHO_PROBE_READY_NS (30ull * 1000 * 1000 * 1000)
#define ECHO_PROBE_TIMEOUT_NS (60ull * 1000 * 1000 * 1000)
#define ECHO_STOP_GRACE_NS (2ull * 1000 * 1000 * 1000)
#define ECHO_PROBE_STOP_GRACE_NS (20ull * 1000 * 1000 * 1000)
#define MS (1000ull * 1000)

/* A server under test: gyre-echo on one backend, or a peer. */
typedef struct echo_server {
    char name[16];        /* the table row */
    const char *baseline; /* the row its ratios are to */
    char path[PATH_MAX];
    char backend[16]; /* gyre-echo's --backend, "" for a peer */
    char port_arg[12];
    char exit_arg[12]; /* gyre-echo's --exit-after-clients in counted runs */
    char *argv[8];
    const char *package; /* Debian package of a peer's library, for its version */
    int port;
    pid_t pid;
    bench_outcome out; /* not OK: the server is out of the run */
    char version[96];
} echo_server;

typedef struct echo_config {
    int conns;
    uint32_t size;
} echo_config;

static const echo_config echo_configs[] = {
    {1, 64}, {50, 64}, {500, 64}, {1, 4096}, {50, 4096}, {500, 4096},
};
#define N_CONFIGS (sizeof echo_configs / sizeof echo_configs[0])
/* --quick: the headline only. */
static const echo_config echo_headline = {50, 64};

typedef enum echo_mode {
    MODE_SERVER_BOUND,
    MODE_CLIENT_BOUND,
    N_MODES
} echo_mode;
typedef enum echo_metric {
    M_RATE,
    M_RATIO,
    M_P50,
    M_P99,
    M_CPU,
    N_METRICS
} echo_metric;

static const bench_plot conns_plot = {
    .xlabel = "connections (64-byte messages)",
    .ylabel = "messages/s",
    .logx = 1,
};

#define ECHO_VIEW(id, nm, ttl, un, higher)                                                         \
    static const bench_scenario id = {                                                             \
        .name = nm, .summary = "", .title = ttl, .unit = un, .higher_is_better = higher}

ECHO_VIEW(view_sb_ratio, "echo-sb-ratio", "echo, server-bound: throughput vs baseline",
          "x baseline", 1);
ECHO_VIEW(view_sb_p50, "echo-sb-p50", "echo, server-bound: round trip p50", "us", 0);
ECHO_VIEW(view_sb_p99, "echo-sb-p99", "echo, server-bound: round trip p99", "us", 0);
ECHO_VIEW(view_sb_cpu, "echo-sb-cpu", "echo, server-bound: server CPU per message", "ns/msg", 0);
static const bench_scenario view_cb_rate = {
    .name = "echo-cb",
    .summary = "",
    .title = "echo, client-bound: throughput",
    .unit = "msgs/s",
    .higher_is_better = 1,
    .plot = &conns_plot,
};
ECHO_VIEW(view_cb_ratio, "echo-cb-ratio", "echo, client-bound: throughput vs baseline",
          "x baseline", 1);
ECHO_VIEW(view_cb_p50, "echo-cb-p50", "echo, client-bound: round trip p50", "us", 0);
ECHO_VIEW(view_cb_p99, "echo-cb-p99", "echo, client-bound: round trip p99", "us", 0);
ECHO_VIEW(view_cb_cpu, "echo-cb-cpu", "echo, client-bound: server CPU per message", "ns/msg", 0);
ECHO_VIEW(view_syscalls, "echo-syscalls", "echo, server-bound: syscalls per message", "calls/msg",
          0);
ECHO_VIEW(view_instr, "echo-instr", "echo: user-space instructions per message (callgrind)",
          "instr/msg", 0);

static const bench_scenario *const echo_views[N_MODES][N_METRICS] = {
    [MODE_SERVER_BOUND] = {&bench_scenario_echo, &view_sb_ratio, &view_sb_p50, &view_sb_p99,
                           &view_sb_cpu},
    [MODE_CLIENT_BOUND] = {&view_cb_rate, &view_cb_ratio, &view_cb_p50, &view_cb_p99, &view_cb_cpu},
};

static const bench_scenario *const echo_tables[] = {
    &view_sb_ratio, &view_sb_p50, &view_sb_p99, &view_sb_cpu,   &view_cb_rate, &view_cb_ratio,
    &view_cb_p50,   &view_cb_p99, &view_cb_cpu, &view_syscalls, &view_instr,   NULL,
};

/* The peers, in bench/peers/: binary, row, baseline, Debian package. */
static const struct {
    const char *bin, *name, *baseline, *package;
} echo_peers[] = {
    {"echo-epoll", "raw-epoll", "raw-epoll", NULL},
    {"echo-uring", "raw-uring", "raw-uring", "liburing-dev"},
    {"echo-libuv", "libuv", "raw-epoll", "libuv1-dev"},
    {"echo-libevent", "libevent", "raw-epoll", "libevent-dev"},
    {"echo-libev", "libev", "raw-epoll", "libev-dev"},
};
#define N_PEERS (sizeof echo_peers / sizeof echo_peers[0])

/* The version lines describe() prints, gathered by the run. */
static char echo_versions[ECHO_MAX_SERVERS][160];
static size_t n_echo_versions;

typedef struct echo_run {
    bench_ctx *ctx;
    echo_server servers[ECHO_MAX_SERVERS];
    size_t n;
    server_cap cap;
    int capped; /* 0: no cgroup here; the note says why */
    char cap_note[96];
} echo_run;

static void column_of(char *buf, size_t size, const echo_config *c)
{
    snprintf(buf, size, "%dx%u", c->conns, (unsigned)c->size);
}

/* Where gyre-bench's own binary is: gyre-echo and the peers are built next
 * to it (build/bin). */
static void server_version(echo_server *s)
{
    char cmd[PATH_MAX + 64], pkg[64] = "";

    snprintf(cmd, sizeof cmd, "'%s' --version 2>/dev/null", s->path);
    bench_first_line(cmd, s->version, sizeof s->version);
    if (s->package) {
        snprintf(cmd, sizeof cmd, "dpkg-query -W -f='${Version}' %s 2>/dev/null", s->package);
        bench_first_line(cmd, pkg, sizeof pkg);
    }
    if (n_echo_versions < ECHO_MAX_SERVERS)
        snprintf(echo_versions[n_echo_versions++], sizeof echo_versions[0], "  %-12s %s%s%s%s",
                 s->name, s->version[0] ? s->version : "(no --version)", pkg[0] ? " (Debian " : "",
                 pkg, pkg[0] ? ")" : "");
}

static echo_server *add_server(echo_run *run, const char *dir, const char *bin, const char *name,
                               const char *baseline)
{
    echo_server *s = &run->servers[run->n++];

    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->baseline = baseline;
    /* A path that does not fit is reported like a missing binary. */
    if ((size_t)snprintf(s->path, sizeof s->path, "%.*s/%s", (int)(sizeof s->path / 2), dir, bin) >=
            sizeof s->path ||
        access(s->path, X_OK) != 0)
        bench_fail(&s->out, BENCH_NA, "%s not built", bin);
    return s;
}

static void echo_servers(echo_run *run, const char *const *backends, size_t n_backends)
{
    char dir[PATH_MAX], name[16];
    echo_server *s;
    size_t i;

    if (bench_bin_dir(dir, sizeof dir) != 0)
        snprintf(dir, sizeof dir, ".");
    for (i = 0; i < n_backends && run->n < ECHO_MAX_SERVERS - N_PEERS; i++) {
        snprintf(name, sizeof name, "gyre-%s", backends[i]);
        s = add_server(run, dir, "gyre-echo", name,
                       strcmp(backends[i], "uring") == 0 ? "raw-uring" : "raw-epoll");
        snprintf(s->backend, sizeof s->backend, "%s", backends[i]);
    }
    for (i = 0; i < N_PEERS; i++) {
        s = add_server(run, dir, echo_peers[i].bin, echo_peers[i].name, echo_peers[i].baseline);
        s->package = echo_peers[i].package;
    }
    for (i = 0; i < run->n; i++) {
        s = &run->servers[i];
        s->argv[0] = s->path;
        s->argv[1] = "--port";
        s->argv[2] = s->port_arg;
        if (s->backend[0]) {
            s->argv[3] = "--backend";
            s->argv[4] = s->backend;
        }
        if (s->out.status == BENCH_OK)
            server_version(s);
    }
}

/* Starts s on a fresh port (as itself, or under a probe). Returns 0 or
 * marks s->out. */
static int server_start(echo_server *s, int probe, const char *out_path, pid_t *tool)
{
    int rc;

    s->port = server_free_port();
    if (s->port < 0) {
        bench_fail(&s->out, BENCH_ERROR, "no free port: %s", strerror(-s->port));
        return -1;
    }
    snprintf(s->port_arg, sizeof s->port_arg, "%d", s->port);
    /* s may be a copy (a probed run): argv must name its own port. */
    s->argv[2] = s->port_arg;
    if (probe >= 0) {
        rc = server_spawn_probed(s->argv, (server_probe)probe, out_path, &s->pid, tool);
    } else {
        rc = s->pid = server_spawn(s->argv);
        *tool = s->pid;
    }
    if (rc < 0) {
        s->pid = 0;
        bench_fail(&s->out, BENCH_ERROR, "start: %s", strerror(-rc));
        return -1;
    }
    rc = server_wait_ready(s->port, *tool, probe >= 0 ? ECHO_PROBE_READY_NS : ECHO_READY_NS);
    if (rc < 0) {
        bench_fail(&s->out, BENCH_ERROR, "%s",
                   rc == -ECHILD ? "exited at start" : "never listened");
        /* Under perf or strace the server is the tool's child, which the
         * tool's end would orphan: it goes first. */
        if (s->pid != *tool)
            (void)kill(s->pid, SIGKILL);
        server_stop(*tool, SIGTERM, ECHO_STOP_GRACE_NS);
        s->pid = 0;
        return -1;
    }
    return 0;
}

/* Stops s (`tool` is what to reap) and notes an unclean exit: servers must
 * exit 0, by themselves after --exit-after-clients, else on SIGTERM. */
static void server_finish(echo_server *s, pid_t tool, uint64_t grace_ns)
{
    int status, self = s->argv[5] != NULL;

    if (s->pid <= 0)
        return;
    /* A server started with --exit-after-clients is on its way out once the
     * client's last connection closed; a SIGTERM now would race its exit
     * (under valgrind, killing it before callgrind wrote its counts), so it
     * is waited for, and server_stop sends SIGTERM only if it overstays the
     * grace period. Otherwise the server gets the signal at once; a tool
     * (perf, strace) exits when its server has, after writing its counts,
     * which a signal to the tool first would lose. */
    if (!self) {
        (void)kill(s->pid, SIGTERM);
        server_poke(s->port);
    }
    status = server_stop(tool, 0, grace_ns);
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_fail(&s->out, BENCH_ERROR, "did not exit cleanly%s (status 0x%x)",
                   self ? " after its clients" : " on SIGTERM", (unsigned)status);
    s->pid = 0;
}

/* Per-round figures of one server at one config. */
typedef struct echo_cell {
    double v[N_METRICS][BENCH_MAX_ROUNDS];
    int rounds;
    bench_outcome out;
} echo_cell;

static void echo_round(echo_run *run, echo_server *s, const echo_config *cfg, echo_cell *cell)
{
    load_params p = {
        .port = s->port,
        .conns = cfg->conns,
        .size = cfg->size,
        .warmup_ns = (run->ctx->quick ? 200 : 500) * MS,
        .duration_ns = (run->ctx->quick ? 500 : 2000) * MS,
        .server = s->pid,
    };
    load_result *r = malloc(sizeof *r);
    int status, i = cell->rounds;

    p.timeout_ns = p.warmup_ns + p.duration_ns + 10000 * MS;
    if (!r || load_run(&p, r) < 0) {
        bench_fail(&cell->out, BENCH_ERROR, "cannot run the load client");
    } else if (!r->ok) {
        bench_fail(&cell->out, BENCH_ERROR, "%s", r->note);
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            bench_fail(&s->out, BENCH_ERROR, "died (status 0x%x)", (unsigned)status);
            s->pid = 0;
        }
    } else if (r->msgs == 0) {
        bench_fail(&cell->out, BENCH_ERROR, "no message in the window");
    } else {
        cell->v[M_RATE][i] = (double)r->msgs * 1e9 / (double)r->elapsed_ns;
        cell->v[M_P50][i] = load_quantile(r, 0.50) / 1000.0;
        cell->v[M_P99][i] = load_quantile(r, 0.99) / 1000.0;
        cell->v[M_CPU][i] = (double)r->server_cpu_ns / (double)r->msgs;
        cell->rounds++;
    }
    free(r);
}

static int record(echo_run *run, const bench_scenario *view, const echo_server *s,
                  const echo_config *cfg, const bench_outcome *out, double *v, int n)
{
    bench_stats st = {0};
    bench_outcome o = *out;
    char column[32];

    column_of(column, sizeof column, cfg);
    if (o.status == BENCH_OK)
        st = bench_stats_of(v, n);
    /* Whatever went wrong with a peer's server is the peer's. */
    if (!s->backend[0])
        o.outside = 1;
    return bench_record_outcome(run->ctx, view, s->name, column, cfg->size == 64 ? cfg->conns : -1,
                                &o, &st);
}

static const echo_server *find_server(const echo_run *run, const char *name)
{
    size_t i;

    for (i = 0; i < run->n; i++)
        if (strcmp(run->servers[i].name, name) == 0)
            return &run->servers[i];
    return NULL;
}

/* All rounds of one config in one mode, then its results. */
static int echo_measure(echo_run *run, echo_mode mode, const echo_config *cfg)
{
    echo_cell *cells = calloc(run->n, sizeof *cells);
    char column[32];
    size_t i, k;
    int r, m, rc = 0;

    if (!cells)
        return -1;
    column_of(column, sizeof column, cfg);
    for (r = 0; r < run->ctx->rounds; r++) {
        for (k = 0; k < run->n; k++) {
            i = (k + (size_t)r) % run->n;
            if (run->servers[i].out.status != BENCH_OK || cells[i].out.status != BENCH_OK)
                continue;
            bench_progress("[echo] %s %s round %d/%d: %s",
                           mode == MODE_SERVER_BOUND ? "server-bound" : "client-bound", column,
                           r + 1, run->ctx->rounds, run->servers[i].name);
            echo_round(run, &run->servers[i], cfg, &cells[i]);
        }
    }
    for (i = 0; i < run->n && rc == 0; i++) {
        const echo_server *s = &run->servers[i], *b = find_server(run, s->baseline);
        echo_cell *c = &cells[i];
        size_t bi = b ? (size_t)(b - run->servers) : i;

        if (s->out.status != BENCH_OK && c->out.status == BENCH_OK)
            c->out = s->out;
        /* Ratios pair the rounds of the server and its baseline. */
        for (r = 0; r < c->rounds && r < cells[bi].rounds; r++)
            c->v[M_RATIO][r] = c->v[M_RATE][r] / cells[bi].v[M_RATE][r];
        for (m = 0; m < N_METRICS && rc == 0; m++) {
            bench_outcome o = c->out;

            if (m == M_RATIO && o.status == BENCH_OK && (!b || cells[bi].rounds != c->rounds))
                bench_fail(&o, BENCH_NA, "baseline %s has no figures", s->baseline);
            rc = record(run, echo_views[mode][m], s, cfg, &o, c->v[m], c->rounds);
        }
    }
    free(cells);
    return rc;
}

/* One server at one config counted by a probe over two fixed message counts.
 * Returns the per-message figure, or marks *out. */
static double echo_count(echo_run *run, echo_server *s, const echo_config *cfg, server_probe probe,
                         bench_outcome *out)
{
    /* Enough messages per connection that the difference is steady state;
     * valgrind runs the server ~50x slower, so fewer for it. */
    uint64_t base = probe == SERVER_PROBE_INSTRUCTIONS ? 1000 : 5000;
    uint64_t n1 = base > 4u * (uint64_t)cfg->conns ? base : 4u * (uint64_t)cfg->conns;
    uint64_t msgs[2] = {n1, 3 * n1}, count[2] = {0, 0};
    char path[64];
    echo_server probed = *s;
    load_result *r = malloc(sizeof *r);
    pid_t tool;
    int i, rc;

    snprintf(path, sizeof path, "/tmp/gyre-bench-%d.%s", (int)getpid(),
             probe == SERVER_PROBE_INSTRUCTIONS ? "callgrind" : "syscalls");
    for (i = 0; i < 2 && r && out->status == BENCH_OK; i++) {
        load_params p = {
            .conns = cfg->conns,
            .size = cfg->size,
            .msgs = msgs[i],
            .timeout_ns = ECHO_PROBE_TIMEOUT_NS,
        };

        bench_progress("[echo] %s %dx%u: %s (%llu msgs)",
                       probe == SERVER_PROBE_INSTRUCTIONS ? "callgrind" : "syscalls", cfg->conns,
                       (unsigned)cfg->size, s->name, (unsigned long long)msgs[i]);
        probed.out.status = BENCH_OK;
        unlink(path);
        /* gyre-echo ends the counted run by itself once the client's
         * connections are gone: under valgrind a signal cannot reach a
         * thread blocked in io_uring_enter, so SIGTERM alone would wait
         * forever there. (Peers still get SIGTERM.) */
        if (probed.backend[0]) {
            /* The client's connections, plus the one server_wait_ready
             * makes to see that the server listens. */
            snprintf(probed.exit_arg, sizeof probed.exit_arg, "%d", cfg->conns + 1);
            probed.argv[5] = "--exit-after-clients";
            probed.argv[6] = probed.exit_arg;
            probed.argv[7] = NULL;
        }
        if (server_start(&probed, (int)probe, path, &tool) != 0) {
            *out = probed.out;
            break;
        }
        p.port = probed.port;
        p.server = probed.pid;
        /* Syscalls in the headline regime: batching differs with load. */
        if (probe == SERVER_PROBE_SYSCALLS && run->capped)
            (void)server_cap_move(&run->cap, probed.pid, 1);
        if (load_run(&p, r) < 0 || !r->ok)
            bench_fail(out, BENCH_ERROR, "%s", r->note[0] ? r->note : "load client failed");
        server_finish(&probed, tool, ECHO_PROBE_STOP_GRACE_NS);
        if (probed.out.status != BENCH_OK)
            *out = probed.out;
        if (out->status == BENCH_OK && (rc = server_probe_read(probe, path, &count[i])) < 0)
            bench_fail_outside(out, BENCH_ERROR, "no count from the tool: %s", strerror(-rc));
    }
    unlink(path);
    if (probe == SERVER_PROBE_INSTRUCTIONS) {
        char log[sizeof path + 4];

        snprintf(log, sizeof log, "%s.log", path);
        unlink(log);
    }
    free(r);
    if (!r)
        bench_fail(out, BENCH_ERROR, "out of memory");
    if (out->status != BENCH_OK)
        return 0;
    return ((double)count[1] - (double)count[0]) / (double)(msgs[1] - msgs[0]);
}

static int echo_counts(echo_run *run, const echo_config *cfg, server_probe probe)
{
    const bench_scenario *view = probe == SERVER_PROBE_INSTRUCTIONS ? &view_instr : &view_syscalls;
    int have = probe == SERVER_PROBE_INSTRUCTIONS ? server_have_callgrind()
                                                  : server_syscall_tool() != NULL;
    size_t i;

    for (i = 0; i < run->n; i++) {
        echo_server *s = &run->servers[i];
        bench_outcome out = s->out;
        double v = 0;

        if (out.status == BENCH_OK && !have)
            bench_fail(&out, BENCH_NA, "%s",
                       probe == SERVER_PROBE_INSTRUCTIONS ? "valgrind not installed"
                                                          : "neither perf nor strace works here");
        if (out.status == BENCH_OK)
            v = echo_count(run, s, cfg, probe, &out);
        if (record(run, view, s, cfg, &out, &v, 1) != 0)
            return -1;
    }
    return 0;
}

static void echo_describe(void)
{
    struct utsname u;
    size_t i;

    printf("echo servers (gyre-echo and bench/peers/):\n");
    for (i = 0; i < n_echo_versions; i++)
        printf("%s\n", echo_versions[i]);
    if (uname(&u) == 0)
        printf("  %-12s %s %s\n", "kernel", u.release, u.version);
    printf("  %-12s %s\n\n", "syscalls by",
           server_syscall_tool() ? server_syscall_tool() : "(nothing here)");
}

static void echo_stop_all(echo_run *run)
{
    size_t i;

    for (i = 0; i < run->n; i++)
        server_finish(&run->servers[i], run->servers[i].pid, ECHO_STOP_GRACE_NS);
    server_cap_destroy(&run->cap);
}

static int echo_run_all(bench_ctx *ctx, const char *const *backends, size_t n_backends)
{
    echo_run *run = calloc(1, sizeof *run);
    const echo_config *cfgs = ctx->quick ? &echo_headline : echo_configs;
    size_t n_cfgs = ctx->quick ? 1 : N_CONFIGS, i, c;
    int rc = 0, mode, err;
    pid_t tool;

    if (!run)
        return -1;
    run->ctx = ctx;
    n_echo_versions = 0;
    echo_servers(run, backends, n_backends);
    for (i = 0; i < run->n; i++)
        if (run->servers[i].out.status == BENCH_OK)
            server_start(&run->servers[i], -1, NULL, &tool);
    err = server_cap_create(&run->cap, ECHO_CAP_PERIOD_US, ECHO_CAP_QUOTA_US);
    run->capped = err == 0;
    if (err < 0)
        snprintf(run->cap_note, sizeof run->cap_note, "no CPU cap: cgroup: %s", strerror(-err));

    for (mode = 0; mode < N_MODES && rc == 0; mode++) {
        if (mode == MODE_CLIENT_BOUND && ctx->quick)
            break;
        for (i = 0; mode == MODE_SERVER_BOUND && run->capped && i < run->n; i++)
            if (run->servers[i].pid > 0 &&
                (err = server_cap_move(&run->cap, run->servers[i].pid, 1)) < 0)
                bench_fail(&run->servers[i].out, BENCH_ERROR, "into the cgroup: %s",
                           strerror(-err));
        for (c = 0; c < n_cfgs && rc == 0; c++) {
            if (mode == MODE_SERVER_BOUND && !run->capped) {
                bench_outcome na = {BENCH_NA, "", 0};

                snprintf(na.note, sizeof na.note, "%s", run->cap_note);
                for (i = 0; i < run->n && rc == 0; i++)
                    rc = record(run, echo_views[mode][M_RATE], &run->servers[i], &cfgs[c], &na,
                                NULL, 0);
                continue;
            }
            rc = echo_measure(run, (echo_mode)mode, &cfgs[c]);
        }
        for (i = 0; mode == MODE_SERVER_BOUND && run->capped && i < run->n; i++)
            if (run->servers[i].pid > 0)
                (void)server_cap_move(&run->cap, run->servers[i].pid, 0);
    }
    /* The counted runs start their own server processes. */
    for (i = 0; i < run->n; i++)
        server_finish(&run->servers[i], run->servers[i].pid, ECHO_STOP_GRACE_NS);
    for (c = 0; c < n_cfgs && rc == 0; c++) {
        rc = echo_counts(run, &cfgs[c], SERVER_PROBE_SYSCALLS);
        if (rc == 0)
            rc = echo_counts(run, &cfgs[c], SERVER_PROBE_INSTRUCTIONS);
    }
    echo_stop_all(run);
    free(run);
    return rc;
}

const bench_scenario bench_scenario_echo = {
    .name = "echo",
    .summary = "echo server: gyre on each backend vs raw epoll/liburing, libuv, libevent, libev",
    .title = "echo, server-bound (server capped at 25% of a core): throughput",
    .unit = "msgs/s",
    .higher_is_better = 1,
    .plot = &conns_plot,
    .run_once = echo_run_all,
    .tables = echo_tables,
    .describe = echo_describe,
};
