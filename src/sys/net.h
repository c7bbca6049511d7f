/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* sys/net.h: the socket and resolver calls of the network layer
 * (src/stream/listen.c, connect.c, dns.c, udp.c) that operations do not
 * carry. Same rules as sys.h: -errno returns, close-on-exec on every fd made
 * here, faults injected before the kernel acts.
 */
#ifndef GYRE_SYS_NET_H
#define GYRE_SYS_NET_H

#include <stdint.h>
#include <sys/socket.h>

struct addrinfo;
struct mmsghdr;

/* socket(2) with SOCK_CLOEXEC|SOCK_NONBLOCK added. enomem injected. */
int gyre__sys_net_socket(int domain, int type, int protocol);
int gyre__sys_net_setsockopt(int fd, int level, int name, int value);
/* getsockopt of an int option into *value. */
int gyre__sys_net_getsockopt(int fd, int level, int name, int *value);
int gyre__sys_net_bind(int fd, const struct sockaddr *addr, socklen_t len);
int gyre__sys_net_listen(int fd, int backlog);
/* connect(2), retried on EINTR: for datagram sockets, where it never waits. */
int gyre__sys_net_connect(int fd, const struct sockaddr *addr, socklen_t len);
/* sd_listen_fds(3)'s protocol: the count in LISTEN_FDS when LISTEN_PID is
 * this process (its fds, from start on, made close-on-exec), 0 when the
 * variables are unset or for another process, -EINVAL when malformed,
 * -EBADF when a passed fd is not open. */
int gyre__sys_net_listen_fds(int start);
int gyre__sys_net_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
/* Makes fd non-blocking (ioctl FIONBIO: one call, no read-modify-write). */
int gyre__sys_net_nonblock(int fd);
/* Makes an fd another program made fit for gyre: non-blocking and
 * close-on-exec. */
int gyre__sys_net_adopt(int fd);
/* recvmmsg(2) with MSG_DONTWAIT and MSG_CMSG_CLOEXEC added: datagrams read,
 * or -errno. eagain eintr. */
int gyre__sys_net_recvmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags);
/* sendmmsg(2) with MSG_DONTWAIT|MSG_NOSIGNAL added: datagrams sent, or
 * -errno. eagain eintr. */
int gyre__sys_net_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags);
/* getaddrinfo(3), blocking (pool threads), with its EAI_* status turned into
 * -errno (see gyre_getaddrinfo_cb in gyre/net.h). */
int gyre__sys_net_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                              struct addrinfo **res);
void gyre__sys_net_freeaddrinfo(struct addrinfo *res);

#endif
