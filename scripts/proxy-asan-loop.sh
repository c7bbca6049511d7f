#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/proxy-asan-loop.sh [BUILD_ASAN_DIR [RUNS [BACKEND]]]: the acceptance loop of issue 11
# for defect 2, the stream proxy test (test/test-stream-proxy.c: 200 clients x 1 MiB through a
# gyre_stream proxy while 40 more reset mid-transfer) RUNS times in a row (default 100) on
# BACKEND (default uring) under ASan+UBSan, stopping at the first failure with its output.
# The full counts, not GYRE_TEST_SCALE's sanitizer reduction: the acceptance names them.
#
# The ASan tree is the one `make sanitize` configures (clang, -DGYRE_SANITIZE=address,undefined);
# only gyre-tests is built here:
#   cmake -S . -B build-asan -DCMAKE_C_COMPILER=clang -DGYRE_SANITIZE=address,undefined
#   scripts/proxy-asan-loop.sh build-asan 100 uring
set -u
build=${1:-build-asan}
runs=${2:-100}
backend=${3:-uring}
bin=$build/bin/gyre-tests
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if [ ! -x "$bin" ]; then
    echo "proxy-asan-loop: $bin is not built (configure an ASan tree first; see the header)" >&2
    exit 2
fi
export GYRE_BACKEND=$backend
export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for i in $(seq "$runs"); do
    start=$(date +%s)
    timeout 300 "$bin" stream_proxy_resets >"$log" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "run $i/$runs on $backend: FAILED (status $rc) after $(($(date +%s) - start)) s"
        cat "$log"
        exit 1
    fi
    echo "run $i/$runs on $backend: ok ($(($(date +%s) - start)) s)"
done
echo "proxy-asan-loop: $runs runs in a row on $backend passed"
