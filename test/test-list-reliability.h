/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-list-reliability.h: the reliability scenarios of docs/reliability.md that no
 * area test covered (test-reliability.c), one test per scenario gap, named
 * rel_<scenario>_<what>. Same format as test-list.h, which includes this file;
 * every entry is labelled "rel" (ctest -L rel runs them) plus its areas.
 */
TEST_ENTRY(rel_a2_fd_exhaustion, "rel;files;net;process")
TEST_ENTRY(rel_a3_alloc_loop, "rel;lib")
TEST_ENTRY(rel_a3_alloc_pool_files, "rel;files;threads")
TEST_ENTRY(rel_a3_alloc_net_stream, "rel;stream;net")
TEST_ENTRY(rel_a4_sq_full, "rel;ops")
TEST_ENTRY(rel_a5_cq_overflow, "rel;ops")
TEST_ENTRY(rel_a7_multishot_cq_full, "rel;ops")
TEST_ENTRY(rel_a8_file_ops_100k, "rel;files;threads;heavy")
TEST_ENTRY(rel_b3_eintr_storm, "rel;files;stream;process;threads")
TEST_ENTRY(rel_b6_iovec_edges, "rel;ops;stream;files")
TEST_ENTRY(rel_b6_idle_fd_args, "rel;ops")
TEST_ENTRY(rel_c4_slow_clients, "rel;stream;net;heavy")
TEST_ENTRY(rel_d1_close_ops_in_flight, "rel;ops")
TEST_ENTRY(rel_d2_buffer_canaries, "rel;ops;files")
TEST_ENTRY(rel_e1_async_8x1m, "rel;async;threads;heavy")
TEST_ENTRY(rel_e3_completion_flood, "rel;ops;timers")
TEST_ENTRY(rel_h2_timers_100k, "rel;timers")
TEST_ENTRY(rel_i4_no_sqpoll, "rel;loop")
TEST_ENTRY(rel_k3_lengths, "rel;ops;files;stream;net")
TEST_ENTRY(rel_k3_iovec_total, "rel")
