/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* uring.h: what the io_uring backend tells the core beyond the vtable.
 *
 * The vtable (gyre__backend_uring, backend.h) says whether io_uring works;
 * this says why it does not, for gyre_info.reason.
 */
#ifndef GYRE_BACKEND_URING_H
#define GYRE_BACKEND_URING_H

/* Why probe() found io_uring unusable, as a static string such as
 * "io_uring_setup: Operation not permitted" or "io_uring_enter: Operation not
 * permitted"; "" if it is usable or was not probed yet. Any thread. */
const char *gyre__uring_unavailable_reason(void);

#endif
