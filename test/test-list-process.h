/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* test-list-process.h: child processes and file-system watches (issue 6,
 * items 5 and 6). Same format as test-list.h, which includes this file. */
TEST_ENTRY(process_exit_status, "process")
TEST_ENTRY(process_kill, "process")
TEST_ENTRY(process_early_exit, "process")
TEST_ENTRY(process_many, "process;heavy")
TEST_ENTRY(process_not_ours, "process")
TEST_ENTRY(process_stdio_only, "process")
TEST_ENTRY(process_pipes_cat, "process")
TEST_ENTRY(process_env_cwd, "process")
TEST_ENTRY(process_exec_fail, "process")
TEST_ENTRY(process_close_early, "process;threads")
TEST_ENTRY(process_bad_args, "process")
TEST_ENTRY(process_no_clone3, "process")
TEST_ENTRY(process_no_pidfd, "process")
TEST_ENTRY(fswatch_dir_events, "fswatch")
TEST_ENTRY(fswatch_file, "fswatch")
TEST_ENTRY(fswatch_overflow, "fswatch")
TEST_ENTRY(fswatch_stop_in_cb, "fswatch")
TEST_ENTRY(fswatch_unref, "fswatch")
TEST_ENTRY(fswatch_bad_args, "fswatch")
