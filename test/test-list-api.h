/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-list-api.h: the API gaps a new user hit (issue 13, point 5),
 * test-api.c. Same format as test-list.h, which includes this file. They run
 * on every backend; none is labelled "ops" or "watch", so none runs again
 * under GYRE_FAULTS seeds (the paths they add are covered there by the net,
 * process and op suites they build on).
 */
TEST_ENTRY(api_timer_cached_time, "api;timers")
TEST_ENTRY(api_errno_header, "api")
TEST_ENTRY(api_connect_addr, "api;net")
TEST_ENTRY(api_udp_connect, "api;net")
TEST_ENTRY(api_listen_fd, "api;net")
TEST_ENTRY(api_listen_fds, "api;net")
TEST_ENTRY(api_spawn_path, "api;process")
TEST_ENTRY(api_spawn_streams, "api;process")
TEST_ENTRY(api_request_init, "api;net;threads")
TEST_ENTRY(api_async_close_in_cb, "api;async;threads")
TEST_ENTRY(api_submit_fd_setsize, "api")
TEST_ENTRY(api_udp_truncation, "api;net")
