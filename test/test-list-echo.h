/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-list-echo.h: gyre-echo run as a child process and attacked
 * (test-echo.c). Included by test-list.h; same format. The server inherits
 * GYRE_BACKEND, so each runs on the backend under test. */
TEST_ENTRY(echo_half_close, "echo")
TEST_ENTRY(echo_stuck_reader, "echo")
TEST_ENTRY(echo_emfile, "echo")
TEST_ENTRY(echo_try_send, "echo")
