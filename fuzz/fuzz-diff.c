/* SPDX-License-Identifier: MIT */
/* SPDX-FileCopyrightText: the gyre authors */
/* fuzz-diff.c: libFuzzer target of the differential test (test/diff/): the
 * input bytes are the generator's choices, so every input is a valid,
 * deterministic op program. The first byte picks the backend compared with
 * epoll (poll, select, uring; one this machine lacks becomes poll). Each
 * program runs on epoll and on that backend; any invariant broken on either
 * run (exactly once, no callback inside a gyre call, per-side order, bytes
 * received = bytes written, the loop frees), a hang, or a difference the
 * allowed-difference table does not allow aborts, and libFuzzer reports it.
 * FUZZ_DIFF_CMP=NAME fixes the compared backend. Replay: build-fuzz/fuzz-diff
 * FILE (FUZZ_DIFF_DUMP=1 prints the program).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test/diff/diff.h"
#include "gyre.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cmps[] = {"poll", "select", "uring"};
    static char msg[4096];
    struct diff_gen_opts gopts;
    struct diff_prog prog;
    struct diff_src src;
    struct diff_env env;
    struct diff_outcome a, b;
    const char *cmp;

    if (size < 1)
        return 0;
    cmp = getenv("FUZZ_DIFF_CMP");
    if (cmp == NULL)
        cmp = cmps[data[0] % 3];
    if (gyre_backend_supported(cmp) != 1)
        cmp = "poll";
    memset(&gopts, 0, sizeof gopts);
    /* Never the thousands-of-ops profile: an exec must stay fast. */
    gopts.flags = 0x80000000u;
    memset(&prog, 0, sizeof prog);
    diff_src_bytes(&src, data + 1, size - 1);
    if (diff_gen(&prog, &src, &gopts) != 0)
        return 0;
    if (getenv("FUZZ_DIFF_DUMP") != NULL)
        diff_prog_dump(&prog, stderr);
    memset(&env, 0, sizeof env);
    env.backend = "epoll";
    env.hang_ms = 2000;
    if (diff_run(&prog, &env, &a) != 0)
        abort();
    env.backend = cmp;
    if (diff_run(&prog, &env, &b) != 0)
        abort();
    if (diff_compare(&prog, &a, &b, msg, sizeof msg) != 0) {
        fprintf(stderr, "fuzz-diff: epoll and %s differ:\n%s", cmp, msg);
        abort();
    }
    diff_outcome_free(&a);
    diff_outcome_free(&b);
    diff_prog_free(&prog);
    return 0;
}
