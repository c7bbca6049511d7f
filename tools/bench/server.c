/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* server.c: the server processes of gyre-bench's server scenarios (see
 * load.h): starting them pinned, waiting until they listen, stopping them,
 * their CPU time, the cgroup that caps them, and the tools that count their
 * syscalls and instructions.
 *
 * No server outlives a run: each gets PR_SET_PDEATHSIG before exec (it
 * survives exec, and valgrind and perf pass the process on), and every stop
 * ends with waitpid, escalating to SIGKILL.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "load.h"

#define CGROUP_V1_CPU "/sys/fs/cgroup/cpu"
#define CGROUP_V2 "/sys/fs/cgroup"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

pid_t server_spawn(char *const argv[])
{
    pid_t parent = getpid(), pid;
    cpu_set_t cpus;
    int null;

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0)
        return pid;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(127);
    CPU_ZERO(&cpus);
    CPU_SET(LOAD_SERVER_CPU, &cpus);
    (void)sched_setaffinity(0, sizeof cpus, &cpus);
    null = open("/dev/null", O_WRONLY);
    if (null >= 0)
        dup2(null, STDOUT_FILENO);
    /* gyre-bench ignores SIGPIPE; a server must start with the default. */
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    _exit(127);
}

/* Connects to 127.0.0.1:port and closes. Returns 0 or -errno. */
static int connect_once(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd, rc;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int server_wait_ready(int port, pid_t pid, uint64_t timeout_ns)
{
    uint64_t deadline = bench_now_ns() + timeout_ns;
    int status;

    while (bench_now_ns() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -ECHILD;
        if (connect_once(port) == 0)
            return 0;
        sleep_ms(10);
    }
    return -ETIMEDOUT;
}

void server_poke(int port)
{
    (void)connect_once(port);
}

/* Waits up to grace_ns for pid to exit. Returns 1 with *status, 0 if it is
 * still running, or -errno. */
static int reap_within(pid_t pid, uint64_t grace_ns, int *status)
{
    uint64_t deadline = bench_now_ns() + grace_ns;
    pid_t r;

    for (;;) {
        r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return -errno;
        if (bench_now_ns() >= deadline)
            return 0;
        sleep_ms(5);
    }
}

int server_stop(pid_t pid, int signo, uint64_t grace_ns)
{
    int status, rc;
    pid_t r;

    if (pid <= 0)
        return -EINVAL;
    if (signo)
        (void)kill(pid, signo);
    rc = reap_within(pid, grace_ns, &status);
    if (rc == 0 && signo == 0) {
        /* It was to exit by itself and did not: now it is told to. */
        (void)kill(pid, SIGTERM);
        rc = reap_within(pid, 1000 * 1000 * 1000, &status);
    }
    if (rc != 0)
        return rc < 0 ? rc : status;
    (void)kill(pid, SIGKILL);
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? status : -errno;
}

uint64_t server_cpu_ns(pid_t pid)
{
    unsigned long long ut, st;
    struct timespec ts;
    clockid_t clk;
    char path[64];
    FILE *f;
    int ok;

    /* The process CPU clock: all threads, in ns. /proc/PID/stat has the same
     * figure in clock ticks (10 ms), too coarse for a 0.5 s round at a 25%
     * cap. */
    if (clock_getcpuclockid(pid, &clk) == 0 && clock_gettime(clk, &ts) == 0)
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    /* Fields 14 and 15; the command name (2) may hold spaces, so skip past
     * its closing parenthesis. */
    ok = fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                &st) == 2;
    fclose(f);
    return ok ? (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK)) : 0;
}

int server_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* --- cgroup CPU cap --- */

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    int fd, rc = 0;
    size_t len = strlen(text);

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (write(fd, text, len) != (ssize_t)len)
        rc = -errno;
    close(fd);
    return rc;
}

/* Our own cgroup in the hierarchy that has the cpu controller: the line
 * "N:cpu:/path" (v1, possibly "cpu,cpuacct") or "0::/path" (v2). */
static int own_cgroup(int v2, char *out, size_t size)
{
    char line[512];
    FILE *f = fopen("/proc/self/cgroup", "r");
    int found = 0;

    if (!f)
        return -errno;
    while (!found && fgets(line, sizeof line, f)) {
        char *ctl = strchr(line, ':'), *path = ctl ? strchr(ctl + 1, ':') : NULL;
        char *tok, *save;

        if (!path)
            continue;
        *path++ = '\0';
        path[strcspn(path, "\n")] = '\0';
        ctl++;
        if (v2) {
            found = *ctl == '\0';
        } else {
            for (tok = strtok_r(ctl, ",", &save); tok && !found; tok = strtok_r(NULL, ",", &save))
                found = strcmp(tok, "cpu") == 0;
        }
        if (found)
            snprintf(out, size, "%s%s", v2 ? CGROUP_V2 : CGROUP_V1_CPU,
                     strcmp(path, "/") == 0 ? "" : path);
    }
    fclose(f);
    return found ? 0 : -ENOENT;
}

int server_cap_create(server_cap *c, unsigned period_us, unsigned quota_us)
{
    char text[64];
    int rc;

    memset(c, 0, sizeof *c);
    c->v2 = access(CGROUP_V1_CPU "/cpu.cfs_quota_us", W_OK) != 0;
    if (c->v2 && access(CGROUP_V2 "/cgroup.subtree_control", W_OK) != 0)
        return -ENOTSUP;
    rc = own_cgroup(c->v2, c->parent, sizeof c->parent);
    if (rc < 0)
        return rc;
    snprintf(c->dir, sizeof c->dir, "%s/gyre-bench-%d", c->parent, (int)getpid());
    if (mkdir(c->dir, 0755) != 0 && errno != EEXIST) {
        rc = -errno;
        c->dir[0] = '\0';
        return rc;
    }
    if (c->v2) {
        /* v2 moves a process only into a leaf; the parent must hand the
         * cpu controller down (EBUSY: it already does, or cannot). */
        (void)write_file(c->parent, "cgroup.subtree_control", "+cpu");
        snprintf(text, sizeof text, "%u %u", quota_us, period_us);
        rc = write_file(c->dir, "cpu.max", text);
    } else {
        snprintf(text, sizeof text, "%u", period_us);
        rc = write_file(c->dir, "cpu.cfs_period_us", text);
        snprintf(text, sizeof text, "%u", quota_us);
        if (rc == 0)
            rc = write_file(c->dir, "cpu.cfs_quota_us", text);
    }
    if (rc < 0)
        server_cap_destroy(c);
    return rc;
}

int server_cap_move(server_cap *c, pid_t pid, int in)
{
    char text[32];

    snprintf(text, sizeof text, "%d", (int)pid);
    /* cgroup.procs moves every thread of the process, in v1 too. */
    return write_file(in ? c->dir : c->parent, "cgroup.procs", text);
}

void server_cap_destroy(server_cap *c)
{
    char path[512], line[32];
    FILE *f;
    int i;

    if (!c->dir[0])
        return;
    snprintf(path, sizeof path, "%s/cgroup.procs", c->dir);
    /* A few passes: a process that forks while being moved leaves a child. */
    for (i = 0; i < 3 && rmdir(c->dir) != 0 && errno == EBUSY; i++) {
        f = fopen(path, "r");
        if (!f)
            break;
        while (fgets(line, sizeof line, f))
            (void)write_file(c->parent, "cgroup.procs", line);
        fclose(f);
    }
    c->dir[0] = '\0';
}

/* --- syscall and instruction counts --- */

/* Runs argv to completion with output discarded; returns its exit status or
 * -1. */
static int run_quiet(char *const argv[])
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

const char *server_syscall_tool(void)
{
    static const char *tool;
    static int probed;
    char *perf[] = {"perf", "stat", "-x,", "-o", "/dev/null", "-e", "raw_syscalls:sys_enter",
                    "true", NULL};
    char *strace[] = {"strace", "-c", "-o", "/dev/null", "true", NULL};

    if (!probed) {
        probed = 1;
        /* perf counts in the kernel and barely slows the server; strace
         * stops it at every syscall, so it is only the fallback. */
        if (run_quiet(perf) == 0)
            tool = "perf";
        else if (run_quiet(strace) == 0)
            tool = "strace";
    }
    return tool;
}

int server_have_callgrind(void)
{
    static int have = -1;
    char *argv[] = {"valgrind", "--version", NULL};

    if (have < 0)
        have = run_quiet(argv) == 0;
    return have;
}

/* The pid of tool's only child (the server it started), or -1. */
static pid_t child_of(pid_t tool, uint64_t timeout_ns)
{
    uint64_t deadline = bench_now_ns() + timeout_ns;
    char path[64];
    int child;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)tool, (int)tool);
    while (bench_now_ns() < deadline) {
        f = fopen(path, "r");
        if (!f)
            return -1;
        child = -1;
        if (fscanf(f, "%d", &child) != 1)
            child = -1;
        fclose(f);
        if (child > 0)
            return child;
        sleep_ms(5);
    }
    return -1;
}

int server_spawn_probed(char *const argv[], server_probe probe, const char *out_path, pid_t *server,
                        pid_t *tool)
{
    char *full[32], out_opt[512], log_opt[512];
    const char *sys = server_syscall_tool();
    int n = 0, i;

    if (probe == SERVER_PROBE_INSTRUCTIONS) {
        snprintf(out_opt, sizeof out_opt, "--callgrind-out-file=%s", out_path);
        /* valgrind's own messages (such as its warning about epoll_pwait2,
         * a syscall valgrind 3.19 does not know, once per process) go to a
         * file beside the counts, not into the report; the server's stderr
         * stays. */
        snprintf(log_opt, sizeof log_opt, "--log-file=%s.log", out_path);
        full[n++] = "/usr/bin/env";
        full[n++] = "valgrind";
        full[n++] = "--tool=callgrind";
        full[n++] = "--quiet";
        full[n++] = out_opt;
        full[n++] = log_opt;
    } else if (sys && strcmp(sys, "perf") == 0) {
        full[n++] = "/usr/bin/env";
        full[n++] = "perf";
        full[n++] = "stat";
        full[n++] = "-x,";
        full[n++] = "-e";
        full[n++] = "raw_syscalls:sys_enter";
        full[n++] = "-o";
        full[n++] = (char *)out_path;
        full[n++] = "--";
    } else if (sys) {
        full[n++] = "/usr/bin/env";
        full[n++] = "strace";
        full[n++] = "-c";
        full[n++] = "-f";
        full[n++] = "-o";
        full[n++] = (char *)out_path;
        full[n++] = "--";
    } else {
        return -ENOTSUP;
    }
    for (i = 0; argv[i] && n < 31; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    *tool = server_spawn(full);
    if (*tool < 0)
        return *tool;
    /* valgrind runs the server in its own process (same pid); perf and
     * strace start it as a child, and it is the child that must get the
     * SIGTERM so that the tool can write its counts. */
    if (probe == SERVER_PROBE_INSTRUCTIONS) {
        *server = *tool;
        return 0;
    }
    *server = child_of(*tool, 5ull * 1000 * 1000 * 1000);
    if (*server < 0) {
        server_stop(*tool, SIGTERM, 1000000000ull);
        return -ECHILD;
    }
    return 0;
}

int server_probe_read(server_probe probe, const char *out_path, uint64_t *count)
{
    char line[512];
    FILE *f = fopen(out_path, "r");
    unsigned long long v;
    int found = 0;

    if (!f)
        return -errno;
    while (fgets(line, sizeof line, f)) {
        if (probe == SERVER_PROBE_INSTRUCTIONS) {
            /* callgrind's last lines: "summary: N" (and "totals: N"). */
            found |=
                sscanf(line, "summary: %llu", &v) == 1 || sscanf(line, "totals: %llu", &v) == 1;
        } else if (strstr(line, "raw_syscalls:sys_enter")) {
            found = sscanf(line, "%llu,", &v) == 1; /* perf -x, : "count,unit,event,..." */
        } else if (strstr(line, " total")) {
            /* strace -c: "100.00 secs usecs/call calls [errors] total". */
            found = sscanf(line, "%*f %*f %*u %llu", &v) == 1;
        }
        if (found)
            break;
    }
    fclose(f);
    if (!found)
        return -ENODATA;
    *count = v;
    return 0;
}
