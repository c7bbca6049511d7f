/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-list-stream.h: gyre_stream tests (test-stream*.c); same format as test-list.h. */
TEST_ENTRY(stream_volume_tcp, "stream;ops;heavy")
TEST_ENTRY(stream_volume_pipe, "stream;ops;heavy")
TEST_ENTRY(stream_read_stop_backpressure, "stream;ops")
TEST_ENTRY(stream_close_pending_writes, "stream;ops")
TEST_ENTRY(stream_reset, "stream;ops")
TEST_ENTRY(stream_half_close, "stream;ops")
TEST_ENTRY(stream_epipe, "stream;ops")
TEST_ENTRY(stream_idle_timeout, "stream;ops")
TEST_ENTRY(stream_scm_rights, "stream;ops")
TEST_ENTRY(stream_one_byte, "stream;ops")
TEST_ENTRY(stream_read_restart_dry, "stream;ops")
TEST_ENTRY(stream_proxy_resets, "stream;heavy")
