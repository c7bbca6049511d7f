/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* net.c: the wrappers declared in sys/net.h.
 *
 * Invariants: as sys.c -- -errno returns, every fd close-on-exec from birth,
 * injected faults decided before the call so the kernel never acted on an
 * injected error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sys/inject.h"
#include "sys/net.h"

static int ret(int n)
{
    return n < 0 ? -errno : n;
}

int gyre__sys_net_socket(int domain, int type, int protocol)
{
    if (inject_enomem())
        return -ENOMEM;
    return ret(socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol));
}

int gyre__sys_net_setsockopt(int fd, int level, int name, int value)
{
    return ret(setsockopt(fd, level, name, &value, sizeof value));
}

int gyre__sys_net_getsockopt(int fd, int level, int name, int *value)
{
    socklen_t len = sizeof *value;

    return ret(getsockopt(fd, level, name, value, &len));
}

int gyre__sys_net_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    return ret(bind(fd, addr, len));
}

int gyre__sys_net_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    int r;

    /* A datagram connect never waits; EINTR only from a signal that came
     * first, and the call may simply be made again. */
    do
        r = ret(connect(fd, addr, len));
    while (r == -EINTR);
    return r;
}

int gyre__sys_net_listen(int fd, int backlog)
{
    return ret(listen(fd, backlog));
}

int gyre__sys_net_adopt(int fd)
{
    int r = gyre__sys_net_nonblock(fd);

    if (r == 0)
        r = ret(fcntl(fd, F_SETFD, FD_CLOEXEC));
    return r;
}

int gyre__sys_net_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    return ret(getsockname(fd, addr, len));
}

int gyre__sys_net_nonblock(int fd)
{
    int on = 1;

    return ret(ioctl(fd, FIONBIO, &on));
}

int gyre__sys_net_recvmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags)
{
    if (FAULTS_ON()) {
        int rc = inject_again_intr();

        if (rc < 0)
            return rc;
    }
    return ret(recvmmsg(fd, msgs, n, flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL));
}

int gyre__sys_net_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags)
{
    if (FAULTS_ON()) {
        int rc = inject_again_intr();

        if (rc < 0)
            return rc;
    }
    return ret(sendmmsg(fd, msgs, n, flags | MSG_DONTWAIT | MSG_NOSIGNAL));
}

/* EAI_* to -errno. EAI_AGAIN is not -EAGAIN, which never reaches a
 * completion callback (rule 4): a name server that did not answer in time
 * reads best as -ETIMEDOUT. */
static int eai_errno(int eai, int saved_errno)
{
    switch (eai) {
    case 0:
        return 0;
    case EAI_NONAME:
    case EAI_SERVICE:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENOENT;
    case EAI_AGAIN:
        return -ETIMEDOUT;
    case EAI_FAIL:
        return -EIO;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SOCKTYPE:
        return -ESOCKTNOSUPPORT;
    case EAI_BADFLAGS:
        return -EINVAL;
    case EAI_OVERFLOW:
        return -ENAMETOOLONG;
    case EAI_SYSTEM:
        return saved_errno > 0 ? -saved_errno : -EIO;
    default:
        return -EIO;
    }
}

int gyre__sys_net_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                              struct addrinfo **res)
{
    int eai;

    if (inject_enomem())
        return -ENOMEM;
    errno = 0;
    eai = getaddrinfo(node, service, hints, res);
    if (eai != 0)
        *res = NULL;
    return eai_errno(eai, errno);
}

void gyre__sys_net_freeaddrinfo(struct addrinfo *res)
{
    if (res != NULL)
        freeaddrinfo(res);
}

/* LISTEN_PID and LISTEN_FDS as sd_listen_fds(3) reads them: decimal, no
 * sign, no trailing text. */
static int parse_uint(const char *s, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

int gyre__sys_net_listen_fds(int start)
{
    const char *pid_s = secure_getenv("LISTEN_PID");
    const char *fds_s = secure_getenv("LISTEN_FDS");
    long pid, n;

    if (pid_s == NULL || fds_s == NULL)
        return 0;
    if (parse_uint(pid_s, &pid) < 0 || parse_uint(fds_s, &n) < 0 || n > INT_MAX - start)
        return -EINVAL;
    if (pid != (long)getpid())
        return 0;
    for (int fd = start; fd < start + (int)n; fd++) {
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
            return -errno;
    }
    return (int)n;
}
