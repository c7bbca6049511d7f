/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-list-net.h: listener, name resolution, connect and UDP tests
 * (test-net-*.c). Format and labels as test-list.h; all are "net" and
 * "ops", so they also run under GYRE_FAULTS and the io_uring profiles.
 */
TEST_ENTRY(net_listen_tcp4, "net;ops")
TEST_ENTRY(net_listen_tcp6, "net;ops")
TEST_ENTRY(net_listen_unix, "net;ops")
TEST_ENTRY(net_listen_bad_args, "net;ops")
TEST_ENTRY(net_listen_close_in_cb, "net;ops")
TEST_ENTRY(net_listen_emfile_reserve, "net;ops")
TEST_ENTRY(net_listen_emfile_backoff, "net;ops")
TEST_ENTRY(net_dns_localhost, "net;ops;threads")
TEST_ENTRY(net_dns_hosts_file, "net;ops;threads")
TEST_ENTRY(net_dns_cancel_queued, "net;ops;threads")
TEST_ENTRY(net_dns_bad_args, "net;ops;threads")
TEST_ENTRY(net_connect_loopback, "net;ops;threads")
TEST_ENTRY(net_connect_refused, "net;ops;threads")
TEST_ENTRY(net_connect_deadline, "net;ops;threads")
TEST_ENTRY(net_connect_cycles, "net;ops;threads;heavy")
TEST_ENTRY(net_udp_round_trip4, "net;ops")
TEST_ENTRY(net_udp_round_trip6, "net;ops")
TEST_ENTRY(net_udp_truncation, "net;ops")
TEST_ENTRY(net_udp_burst, "net;ops")
TEST_ENTRY(net_udp_stop_in_batch, "net;ops")
TEST_ENTRY(net_udp_bad_args, "net;ops")
