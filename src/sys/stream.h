/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* sys/stream.h: the socket-option wrappers the stream layer needs beyond what
 * operations give it. Same rules as sys.h: -errno on failure, no fault
 * injection (an option call has no transient failure a kernel would give).
 */
#ifndef GYRE_SYS_STREAM_H
#define GYRE_SYS_STREAM_H

/* setsockopt(fd, level, name, &value, sizeof value): 0 or -errno. */
int gyre__sys_setsockopt_int(int fd, int level, int name, int value);

#endif
