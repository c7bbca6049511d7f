/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* peer.c: the listening socket, option parsing and stop signal that every
 * peer echo server shares (see peer.h). Nothing here runs per message.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

volatile sig_atomic_t peer_stop;

int peer_parse_port(int argc, char **argv, const char *name, const char *version)
{
    char *end;
    long port;

    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%s\n", version);
        exit(0);
    }
    if (argc != 3 || strcmp(argv[1], "--port") != 0) {
        fprintf(stderr, "usage: %s --port P | --version\n", name);
        exit(2);
    }
    errno = 0;
    port = strtol(argv[2], &end, 10);
    if (errno != 0 || *end != '\0' || port <= 0 || port > 65535) {
        fprintf(stderr, "%s: bad port '%s'\n", name, argv[2]);
        exit(2);
    }
    return (int)port;
}

int peer_listen(int port, int nonblock)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd, one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, SOMAXCONN) != 0) {
        fprintf(stderr, "peer: listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        exit(1);
    }
    return fd;
}

int peer_setup_conn(int fd, int nonblock)
{
    int one = 1;

    if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        return -1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void on_term(int signo)
{
    (void)signo;
    peer_stop = 1;
}

void peer_catch_term(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the wait must return EINTR for the flag to be seen. */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A client that resets its connection must cost an EPIPE, not the
     * process. */
    signal(SIGPIPE, SIG_IGN);
}

int peer_fail(const char *name, const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", name, what, strerror(err));
    return 1;
}

void peer_slab_init(peer_slab *s, size_t item_size)
{
    unsigned i;

    s->items = calloc(PEER_MAX_CONNS, item_size);
    s->free_idx = calloc(PEER_MAX_CONNS, sizeof *s->free_idx);
    if (!s->items || !s->free_idx) {
        fprintf(stderr, "peer: out of memory for %d connections\n", PEER_MAX_CONNS);
        exit(1);
    }
    s->item_size = item_size;
    /* Pushed in reverse so records are handed out from the start of the
     * slab, the part already in cache. */
    for (i = 0; i < PEER_MAX_CONNS; i++)
        s->free_idx[i] = PEER_MAX_CONNS - 1 - i;
    s->n_free = PEER_MAX_CONNS;
}

void *peer_slab_get(peer_slab *s)
{
    if (s->n_free == 0)
        return NULL;
    return s->items + (size_t)s->free_idx[--s->n_free] * s->item_size;
}

void peer_slab_put(peer_slab *s, void *item)
{
    s->free_idx[s->n_free++] = (unsigned)(((char *)item - s->items) / s->item_size);
}

/* send() with MSG_NOSIGNAL: a reset connection is an EPIPE, not SIGPIPE.
 * Returns bytes written (0 when the socket is full) or -1. */
static ssize_t send_some(int fd, const char *data, size_t n)
{
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL);

    if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return w;
}

int peer_send_chunk(int fd, const char *data, size_t n, peer_pending *p)
{
    ssize_t w = send_some(fd, data, n);

    if (w < 0)
        return -1;
    if ((size_t)w == n)
        return 0;
    memcpy(p->buf, data + w, n - (size_t)w);
    p->off = 0;
    p->len = (uint32_t)(n - (size_t)w);
    return 1;
}

int peer_flush(int fd, peer_pending *p)
{
    ssize_t w = send_some(fd, p->buf + p->off, p->len - p->off);

    if (w < 0)
        return -1;
    p->off += (uint32_t)w;
    return p->off < p->len;
}
