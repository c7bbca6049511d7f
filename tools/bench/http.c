/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* http.c: scenario "http", gyre-http on every backend against nginx (Debian's
 * nginx-light), both answering GET / with the same fixed body, loaded by wrk.
 *
 * The method is the echo scenario's (echo.c), with wrk as the client:
 *  - servers run on LOAD_SERVER_CPU, wrk (one thread) on LOAD_CLIENT_CPU,
 *    pinned with sched_setaffinity before exec (what taskset does);
 *  - servers are interleaved: round r runs every server once, starting one
 *    further down the list each round; figures are medians over rounds and
 *    a ratio to nginx is taken within each round before its median;
 *  - server-bound mode caps the servers at 25% of a core with the cgroup
 *    helpers of server.c, so the server is the bottleneck; client-bound
 *    runs uncapped;
 *  - CPU per request is the server's CPU time (all threads, the process
 *    CPU clock) across the wrk run, over wrk's request count.
 * nginx runs as one process (master_process off, daemon off, one worker's
 * worth of connections) from a config written to a fresh temporary folder
 * that also holds its pid file, error log and temp paths; it listens on
 * 127.0.0.1 only, has no access log and unlimited keep-alive requests, and
 * is stopped with SIGQUIT and reaped (SIGKILL after a grace period). Every
 * server started here is stopped and the folder and cgroup removed, also
 * when a round fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "load.h"

#define HTTP_MAX_SERVERS 8
#define HTTP_CAP_PERIOD_US 10000
#define HTTP_CAP_QUOTA_US 2500
#define HTTP_READY_NS (3ull * 1000 * 1000 * 1000)
#define HTTP_STOP_GRACE_NS (3ull * 1000 * 1000 * 1000)
#define NGINX_BIN "/usr/sbin/nginx"
/* The body gyre-http answers GET / with (examples/http/server.c). */
#define HTTP_BODY "Hello, World!\\n"

typedef struct http_server {
    char name[16];
    char path[PATH_MAX];
    char backend[16]; /* gyre-http's --backend; "" for nginx */
    char port_arg[12];
    char conf[PATH_MAX];
    char errlog[PATH_MAX];
    char *argv[10];
    int port;
    int nginx;
    pid_t pid;
    bench_outcome out;
} http_server;

typedef enum http_mode {
    MODE_SERVER_BOUND,
    MODE_CLIENT_BOUND,
    N_MODES
} http_mode;

typedef enum http_metric {
    M_RATE,
    M_RATIO,
    M_CPU,
    M_CPU_RATIO,
    N_METRICS
} http_metric;

static const int http_conns[] = {50, 500};
#define N_CONNS (sizeof http_conns / sizeof http_conns[0])

static const bench_plot conns_plot = {
    .xlabel = "connections",
    .ylabel = "requests/s",
    .logx = 1,
};

#define HTTP_VIEW(id, nm, ttl, un, higher)                                                         \
    static const bench_scenario id = {                                                             \
        .name = nm, .summary = "", .title = ttl, .unit = un, .higher_is_better = higher}

HTTP_VIEW(view_sb_ratio, "http-sb-ratio", "http, server-bound: requests/s vs nginx", "x nginx", 1);
HTTP_VIEW(view_sb_cpu, "http-sb-cpu", "http, server-bound: server CPU per request", "ns/req", 0);
HTTP_VIEW(view_sb_cpu_ratio, "http-sb-cpu-ratio", "http, server-bound: CPU per request vs nginx",
          "x nginx", 0);
static const bench_scenario view_cb_rate = {
    .name = "http-cb",
    .summary = "",
    .title = "http, client-bound: throughput",
    .unit = "req/s",
    .higher_is_better = 1,
    .plot = &conns_plot,
};
HTTP_VIEW(view_cb_ratio, "http-cb-ratio", "http, client-bound: requests/s vs nginx", "x nginx", 1);
HTTP_VIEW(view_cb_cpu, "http-cb-cpu", "http, client-bound: server CPU per request", "ns/req", 0);
HTTP_VIEW(view_cb_cpu_ratio, "http-cb-cpu-ratio", "http, client-bound: CPU per request vs nginx",
          "x nginx", 0);
HTTP_VIEW(view_target, "http-target",
          "http target, server-bound, 50 connections: gyre-http vs nginx "
          "(req/s >= 1.15x, CPU/req <= 0.87x)",
          "x nginx", 1);

static const bench_scenario *const http_views[N_MODES][N_METRICS] = {
    [MODE_SERVER_BOUND] = {&bench_scenario_http, &view_sb_ratio, &view_sb_cpu, &view_sb_cpu_ratio},
    [MODE_CLIENT_BOUND] = {&view_cb_rate, &view_cb_ratio, &view_cb_cpu, &view_cb_cpu_ratio},
};

static const bench_scenario *const http_tables[] = {
    &view_sb_ratio, &view_sb_cpu,       &view_sb_cpu_ratio, &view_cb_rate, &view_cb_ratio,
    &view_cb_cpu,   &view_cb_cpu_ratio, &view_target,       NULL,
};

typedef struct http_run {
    bench_ctx *ctx;
    http_server servers[HTTP_MAX_SERVERS];
    size_t n;
    server_cap cap;
    int capped;
    char cap_note[96];
    char tmpdir[64]; /* nginx's folder, "" when none */
} http_run;

static char http_versions[4][128];

/* nginx's config for one port, in run->tmpdir. Returns 0 or -errno. */
static int nginx_config(http_run *run, http_server *s)
{
    FILE *f = fopen(s->conf, "w");
    const char *d = run->tmpdir;

    if (!f)
        return -errno;
    fprintf(f,
            "daemon off;\n"
            "master_process off;\n"
            "worker_processes 1;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log;\n"
            "events { worker_connections 4096; }\n"
            "http {\n"
            "    access_log off;\n"
            "    keepalive_requests 1000000000;\n"
            "    keepalive_timeout 300s;\n"
            "    client_body_temp_path %s/body;\n"
            "    proxy_temp_path %s/proxy;\n"
            "    fastcgi_temp_path %s/fastcgi;\n"
            "    uwsgi_temp_path %s/uwsgi;\n"
            "    scgi_temp_path %s/scgi;\n"
            "    server {\n"
            "        listen 127.0.0.1:%d;\n"
            "        location / {\n"
            "            default_type text/plain;\n"
            "            return 200 \"" HTTP_BODY "\";\n"
            "        }\n"
            "    }\n"
            "}\n",
            d, d, d, d, d, d, d, s->port);
    return fclose(f) == 0 ? 0 : -errno;
}

static void http_servers(http_run *run, const char *const *backends, size_t n_backends)
{
    char dir[PATH_MAX];
    http_server *s;
    size_t i;

    if (bench_bin_dir(dir, sizeof dir) != 0)
        snprintf(dir, sizeof dir, ".");
    for (i = 0; i < n_backends && run->n < HTTP_MAX_SERVERS - 1; i++) {
        s = &run->servers[run->n++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "gyre-%s", backends[i]);
        snprintf(s->backend, sizeof s->backend, "%s", backends[i]);
        if ((size_t)snprintf(s->path, sizeof s->path, "%.*s/gyre-http", (int)(sizeof s->path / 2),
                             dir) >= sizeof s->path ||
            access(s->path, X_OK) != 0)
            bench_fail(&s->out, BENCH_NA, "gyre-http not built");
        s->argv[0] = s->path;
        s->argv[1] = "--port";
        s->argv[2] = s->port_arg;
        s->argv[3] = "--backend";
        s->argv[4] = s->backend;
    }
    s = &run->servers[run->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "nginx");
    snprintf(s->path, sizeof s->path, "%s", NGINX_BIN);
    s->nginx = 1;
    if (access(s->path, X_OK) != 0)
        bench_fail(&s->out, BENCH_NA, "nginx not installed (scripts/deps.sh plot)");
    else if (!mkdtemp(strcpy(run->tmpdir, "/tmp/gyre-bench-nginx-XXXXXX")))
        bench_fail(&s->out, BENCH_ERROR, "mkdtemp: %s", strerror(errno));
    snprintf(s->conf, sizeof s->conf, "%s/nginx.conf", run->tmpdir);
    snprintf(s->errlog, sizeof s->errlog, "%s/error.log", run->tmpdir);
    s->argv[0] = s->path;
    s->argv[1] = "-p";
    s->argv[2] = run->tmpdir;
    s->argv[3] = "-c";
    s->argv[4] = s->conf;
    /* -e: the error log before the config is read (nginx 1.19.5+), so that
     * nothing is written outside the folder. */
    s->argv[5] = "-e";
    s->argv[6] = s->errlog;
}

static void http_start(http_run *run, http_server *s)
{
    int rc;

    if (s->out.status != BENCH_OK)
        return;
    s->port = server_free_port();
    if (s->port < 0) {
        bench_fail(&s->out, BENCH_ERROR, "no free port");
        return;
    }
    snprintf(s->port_arg, sizeof s->port_arg, "%d", s->port);
    if (s->nginx && (rc = nginx_config(run, s)) < 0) {
        bench_fail(&s->out, BENCH_ERROR, "nginx config: %s", strerror(-rc));
        return;
    }
    s->pid = server_spawn(s->argv);
    if (s->pid < 0) {
        bench_fail(&s->out, BENCH_ERROR, "start: %s", strerror(-s->pid));
        s->pid = 0;
        return;
    }
    rc = server_wait_ready(s->port, s->pid, HTTP_READY_NS);
    if (rc < 0) {
        bench_fail(&s->out, BENCH_ERROR, "%s",
                   rc == -ECHILD ? "exited at start" : "never listened");
        server_stop(s->pid, SIGKILL, HTTP_STOP_GRACE_NS);
        s->pid = 0;
    }
}

/* gyre-http must exit 0 on SIGTERM; nginx is told to quit gracefully.
 * Returns -1 (with s->out set) when gyre-http did not. */
static int http_finish(http_server *s)
{
    int status;

    if (s->pid <= 0)
        return 0;
    status = server_stop(s->pid, s->nginx ? SIGQUIT : SIGTERM, HTTP_STOP_GRACE_NS);
    s->pid = 0;
    if (!s->nginx && (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        s->out.status = BENCH_OK;
        bench_fail(&s->out, BENCH_ERROR, "did not exit cleanly on SIGTERM (status 0x%x)",
                   (unsigned)status);
        return -1;
    }
    return 0;
}

typedef struct wrk_result {
    uint64_t requests;
    double rate;
    uint64_t cpu_ns;
    char note[96];
} wrk_result;

/* Runs wrk against s for seconds, pinned to the client core, and reads its
 * report. Returns 0, or -1 with r->note saying why. */
static int wrk_run(const http_server *s, int conns, int seconds, wrk_result *r)
{
    char c_arg[16], d_arg[16], url[64], line[256];
    uint64_t cpu0, cpu1;
    unsigned long long errs[4];
    int fds[2], status, non2xx = 0, sock_errs = 0;
    double secs;
    cpu_set_t cpus;
    pid_t pid, parent = getpid();
    FILE *f;

    memset(r, 0, sizeof *r);
    snprintf(c_arg, sizeof c_arg, "%d", conns);
    snprintf(d_arg, sizeof d_arg, "%ds", seconds);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s->port);
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(r->note, sizeof r->note, "pipe: %s", strerror(errno));
        return -1;
    }
    cpu0 = server_cpu_ns(s->pid);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(127);
        CPU_ZERO(&cpus);
        CPU_SET(LOAD_CLIENT_CPU, &cpus);
        (void)sched_setaffinity(0, sizeof cpus, &cpus);
        dup2(fds[1], STDOUT_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execlp("wrk", "wrk", "-t1", "-c", c_arg, "-d", d_arg, "--timeout", "5s", url, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        snprintf(r->note, sizeof r->note, "fork: %s", strerror(errno));
        return -1;
    }
    f = fdopen(fds[0], "r");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long n;

        if (sscanf(line, " %llu requests in %lfs", &n, &secs) == 2)
            r->requests = n;
        else if (sscanf(line, "Requests/sec: %lf", &r->rate) == 1)
            continue;
        else if (sscanf(line, " Non-2xx or 3xx responses: %d", &non2xx) == 1)
            continue;
        else if (sscanf(line, " Socket errors: connect %llu, read %llu, write %llu, timeout %llu",
                        &errs[0], &errs[1], &errs[2], &errs[3]) == 4)
            sock_errs = (int)(errs[0] + errs[1] + errs[2] + errs[3]);
    }
    if (f)
        fclose(f);
    else
        close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    cpu1 = server_cpu_ns(s->pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(r->note, sizeof r->note, "wrk failed (status 0x%x%s)", (unsigned)status,
                 WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ", not installed?" : "");
        return -1;
    }
    if (r->requests == 0 || r->rate <= 0) {
        snprintf(r->note, sizeof r->note, "no request completed");
        return -1;
    }
    if (non2xx > 0 || sock_errs > 0) {
        snprintf(r->note, sizeof r->note, "%d non-2xx responses, %d socket errors", non2xx,
                 sock_errs);
        return -1;
    }
    r->cpu_ns = cpu1 > cpu0 ? cpu1 - cpu0 : 0;
    return 0;
}

typedef struct http_cell {
    double v[N_METRICS][BENCH_MAX_ROUNDS];
    int rounds;
    bench_outcome out;
} http_cell;

static int record(http_run *run, const bench_scenario *view, const http_server *s, int conns,
                  const char *column, const bench_outcome *out, double *v, int n)
{
    bench_stats st = {0};
    bench_outcome o;
    char col[32];

    if (!column) {
        snprintf(col, sizeof col, "c=%d", conns);
        column = col;
    }
    if (out->status == BENCH_OK)
        st = bench_stats_of(v, n);
    o = *out;
    /* Whatever went wrong with nginx is nginx's. */
    if (s->nginx)
        o.outside = 1;
    return bench_record_outcome(run->ctx, view, s->name, column, conns, &o, &st);
}

static int http_measure(http_run *run, http_mode mode, int conns)
{
    http_cell *cells = calloc(run->n, sizeof *cells);
    size_t i, k, bi = run->n - 1; /* nginx is last */
    int r, m, rc = 0, seconds = run->ctx->quick ? 1 : 3;

    if (!cells)
        return -1;
    for (r = 0; r < run->ctx->rounds; r++) {
        for (k = 0; k < run->n; k++) {
            http_server *s;
            http_cell *c;
            wrk_result w;

            i = (k + (size_t)r) % run->n;
            s = &run->servers[i];
            c = &cells[i];
            if (s->out.status != BENCH_OK || c->out.status != BENCH_OK || s->pid <= 0)
                continue;
            bench_progress("[http] %s c=%d round %d/%d: %s",
                           mode == MODE_SERVER_BOUND ? "server-bound" : "client-bound", conns,
                           r + 1, run->ctx->rounds, s->name);
            if (wrk_run(s, conns, seconds, &w) != 0) {
                bench_fail(&c->out, BENCH_ERROR, "%s", w.note);
                continue;
            }
            c->v[M_RATE][c->rounds] = w.rate;
            c->v[M_CPU][c->rounds] = (double)w.cpu_ns / (double)w.requests;
            c->rounds++;
        }
    }
    for (i = 0; i < run->n && rc == 0; i++) {
        http_cell *c = &cells[i];
        const http_server *s = &run->servers[i];

        if (s->out.status != BENCH_OK && c->out.status == BENCH_OK)
            c->out = s->out;
        for (r = 0; r < c->rounds && r < cells[bi].rounds; r++) {
            c->v[M_RATIO][r] = c->v[M_RATE][r] / cells[bi].v[M_RATE][r];
            c->v[M_CPU_RATIO][r] = c->v[M_CPU][r] / cells[bi].v[M_CPU][r];
        }
        for (m = 0; m < N_METRICS && rc == 0; m++) {
            bench_outcome o = c->out;

            if ((m == M_RATIO || m == M_CPU_RATIO) && o.status == BENCH_OK &&
                cells[bi].rounds != c->rounds)
                bench_fail(&o, BENCH_NA, "nginx has no figures");
            rc = record(run, http_views[mode][m], s, conns, NULL, &o, c->v[m], c->rounds);
        }
        /* The acceptance target: server-bound, 50 connections, gyre vs nginx. */
        if (rc == 0 && mode == MODE_SERVER_BOUND && conns == 50 && i != bi) {
            bench_outcome o = c->out;

            if (o.status == BENCH_OK && cells[bi].rounds != c->rounds)
                bench_fail(&o, BENCH_NA, "nginx has no figures");
            rc = record(run, &view_target, s, conns, "req/s", &o, c->v[M_RATIO], c->rounds);
            if (rc == 0)
                rc = record(run, &view_target, s, conns, "CPU/req", &o, c->v[M_CPU_RATIO],
                            c->rounds);
        }
    }
    free(cells);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static void http_describe(void)
{
    struct utsname u;
    size_t i;

    printf("http servers (GET / with a %zu-byte body; wrk -t1 on cpu %d, servers on cpu %d):\n",
           sizeof "Hello, World!\n" - 1, LOAD_CLIENT_CPU, LOAD_SERVER_CPU);
    for (i = 0; i < sizeof http_versions / sizeof http_versions[0]; i++)
        if (http_versions[i][0])
            printf("  %s\n", http_versions[i]);
    if (uname(&u) == 0)
        printf("  %-12s %s %s\n", "kernel", u.release, u.version);
    printf("\n");
}

static void http_versions_probe(const http_run *run)
{
    char line[96], cmd[PATH_MAX + 64];

    snprintf(cmd, sizeof cmd, "'%s' --version 2>&1", run->servers[0].path);
    bench_first_line(cmd, line, sizeof line);
    snprintf(http_versions[0], sizeof http_versions[0], "%-12s %s", "gyre-http",
             line[0] ? line : "(not built)");
    bench_first_line(NGINX_BIN " -v 2>&1", line, sizeof line);
    snprintf(http_versions[1], sizeof http_versions[1], "%-12s %s", "nginx",
             line[0] ? line : "(not installed)");
    bench_first_line("dpkg-query -W -f='${Package} ${Version}' nginx-light 2>/dev/null", line,
                     sizeof line);
    snprintf(http_versions[2], sizeof http_versions[2], "%-12s %s", "package",
             line[0] ? line : "(nginx-light not installed)");
    bench_first_line("wrk --version 2>&1", line, sizeof line);
    snprintf(http_versions[3], sizeof http_versions[3], "%-12s %s", "wrk",
             line[0] ? line : "(not installed)");
}

static int http_run_all(bench_ctx *ctx, const char *const *backends, size_t n_backends)
{
    http_run *run = calloc(1, sizeof *run);
    size_t n_conns = ctx->quick ? 1 : N_CONNS, i, c;
    int rc = 0, mode, err;

    if (!run)
        return -1;
    run->ctx = ctx;
    bench_raise_nofile();
    http_servers(run, backends, n_backends);
    http_versions_probe(run);
    for (i = 0; i < run->n; i++)
        http_start(run, &run->servers[i]);
    err = server_cap_create(&run->cap, HTTP_CAP_PERIOD_US, HTTP_CAP_QUOTA_US);
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
        for (c = 0; c < n_conns && rc == 0; c++) {
            if (mode == MODE_SERVER_BOUND && !run->capped) {
                bench_outcome na = {BENCH_NA, "", 0};

                snprintf(na.note, sizeof na.note, "%s", run->cap_note);
                for (i = 0; i < run->n && rc == 0; i++)
                    rc = record(run, http_views[mode][M_RATE], &run->servers[i], http_conns[c],
                                NULL, &na, NULL, 0);
                continue;
            }
            rc = http_measure(run, (http_mode)mode, http_conns[c]);
        }
        for (i = 0; mode == MODE_SERVER_BOUND && run->capped && i < run->n; i++)
            if (run->servers[i].pid > 0)
                (void)server_cap_move(&run->cap, run->servers[i].pid, 0);
    }
    /* A server that does not exit cleanly fails the run, in a column of
     * its own. */
    for (i = 0; i < run->n; i++)
        if (http_finish(&run->servers[i]) != 0 && rc == 0)
            rc = record(run, &bench_scenario_http, &run->servers[i], -1, "exit",
                        &run->servers[i].out, NULL, 0);
    server_cap_destroy(&run->cap);
    if (run->tmpdir[0])
        nftw(run->tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(run);
    return rc;
}

const bench_scenario bench_scenario_http = {
    .name = "http",
    .summary = "HTTP/1.1 GET /: gyre-http on each backend vs nginx, loaded by wrk",
    .title = "http, server-bound (server capped at 25% of a core): throughput",
    .unit = "req/s",
    .higher_is_better = 1,
    .plot = &conns_plot,
    .run_once = http_run_all,
    .tables = http_tables,
    .describe = http_describe,
};
