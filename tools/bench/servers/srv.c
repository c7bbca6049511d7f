/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* srv.c: the frame of the bench-instr echo servers (srv.h). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srv.h"

gyre_loop *srv_loop;
gyre_bufpool *srv_pool;
int srv_stopping;

static const char *srv_name;
static gyre_listener listener;
static gyre_signal sig_term, sig_int;
static void (*accept_fn)(int fd);
static void (*stop_fn)(void);
static long exit_after, clients_done;

static void stop(void)
{
    if (srv_stopping)
        return;
    srv_stopping = 1;
    gyre_signal_stop(&sig_term);
    gyre_signal_stop(&sig_int);
    /* As gyre-echo: a second SIGTERM from a harness must not kill the
     * process mid-shutdown. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    (void)gyre_listener_close(&listener, NULL);
    stop_fn();
}

static void on_signal(gyre_signal *s, int signo)
{
    (void)s;
    (void)signo;
    stop();
}

static void on_accept(gyre_listener *l, int fd)
{
    int one = 1;

    (void)l;
    if (fd < 0) {
        fprintf(stderr, "%s: accept: %s\n", srv_name, gyre_strerror(fd));
        stop();
        return;
    }
    if (srv_stopping) {
        close(fd);
        return;
    }
    /* Ping-pong must not wait for Nagle (gyre-echo does the same). */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    accept_fn(fd);
}

void srv_conn_done(void)
{
    /* Under valgrind a signal cannot interrupt a thread blocked in
     * io_uring_enter: a counted run ends by itself. */
    if (exit_after > 0 && ++clients_done == exit_after)
        stop();
}

static int usage(void)
{
    fprintf(stderr,
            "usage: %s --port P [--backend auto|uring|epoll|poll|select] "
            "[--exit-after-clients N]\n",
            srv_name);
    return 2;
}

int srv_start(const char *name, int argc, char **argv, void (*on_acc)(int fd),
              void (*on_stop)(void))
{
    gyre_loop_opts opts = {0};
    long port = -1;
    int i, rc;

    srv_name = name;
    accept_fn = on_acc;
    stop_fn = on_stop;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("gyre %s\n", gyre_version_string());
            exit(0);
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            opts.backend = argv[++i];
        } else if (strcmp(argv[i], "--exit-after-clients") == 0 && i + 1 < argc) {
            exit_after = strtol(argv[++i], NULL, 10);
        } else {
            return usage();
        }
    }
    if (port < 0 || port > 65535)
        return usage();
    if ((rc = gyre_loop_new(&srv_loop, &opts)) < 0 ||
        (rc = gyre_bufpool_new(srv_loop, &srv_pool, SRV_BUFS, SRV_BUF_SIZE)) < 0 ||
        (rc = gyre_listen_tcp(srv_loop, &listener, "127.0.0.1", (uint16_t)port, NULL, on_accept)) <
            0) {
        fprintf(stderr, "%s: start: %s\n", name, gyre_strerror(rc));
        return 1;
    }
    gyre_signal_init(srv_loop, &sig_term);
    gyre_signal_init(srv_loop, &sig_int);
    if ((rc = gyre_signal_start(&sig_term, on_signal, SIGTERM)) < 0 ||
        (rc = gyre_signal_start(&sig_int, on_signal, SIGINT)) < 0) {
        fprintf(stderr, "%s: signals: %s\n", name, gyre_strerror(rc));
        return 1;
    }
    printf("%s: listening on 127.0.0.1:%d\n", name, gyre_listener_port(&listener));
    fflush(stdout);
    return 0;
}

int srv_run(void)
{
    int rc = gyre_loop_run(srv_loop, GYRE_RUN_DEFAULT);

    if (rc < 0) {
        fprintf(stderr, "%s: gyre_loop_run: %s\n", srv_name, gyre_strerror(rc));
        return 1;
    }
    if ((rc = gyre_bufpool_free(srv_pool)) < 0 || (rc = gyre_loop_free(srv_loop)) < 0) {
        fprintf(stderr, "%s: shutdown: %s\n", srv_name, gyre_strerror(rc));
        return 1;
    }
    return 0;
}
