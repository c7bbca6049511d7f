/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* sys/stream.c: socket-option wrappers for src/stream/ (see sys/stream.h). */
#include <errno.h>
#include <sys/socket.h>

#include "sys/stream.h"

int gyre__sys_setsockopt_int(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof value) < 0 ? -errno : 0;
}
