#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/valgrind.sh BUILD_DIR: the stream and network tests on epoll under valgrind memcheck
# (scenario K4: no uninitialised byte reaches a socket, no invalid access, no leak), then the
# file tests on epoll with the linuxaio file engine.
#
# Runs BUILD_DIR/bin/gyre-tests once per test labelled `stream` or `net`, each in its own
# process as CTest would, with GYRE_BACKEND=epoll (memcheck cannot see memory the kernel
# fills through io_uring, so that backend would only give false reports) and
# GYRE_TEST_SCALE=0.05 (valgrind runs code ~30x slower; the assertions stay the same on the
# smaller counts); then once per test labelled `files` with GYRE_FILE_ENGINE=linuxaio, the
# engine whose kernel AIO calls memcheck follows (the pool engine's syscalls are checked in
# the first pass). scripts/gyre.supp, the suppression file gyre installs, is used: it holds
# the false report that valgrind's io_getevents handler makes of linuxaio's reused iocbs.
# A memcheck error makes valgrind exit 99, a failed test exits 1: either fails the run,
# which prints every failing test and its log at the end.
set -euo pipefail

build="${1:?usage: $0 BUILD_DIR}"
tests="$build/bin/gyre-tests"
[ -x "$tests" ] || { echo "valgrind.sh: $tests not built" >&2; exit 2; }
logs="$(mktemp -d "${TMPDIR:-/tmp}/gyre-valgrind.XXXXXX")"

# The test names come from the same lists CMake reads.
tests_labelled() { # LABEL_REGEX
    grep -h '^TEST_ENTRY(' test/test-list*.h | grep -E "\"([a-z;]*;)?($1)(;[a-z;]*)?\"\\)\$" |
        sed 's/^TEST_ENTRY(\([a-z0-9_]*\),.*/\1/'
}
mapfile -t names < <(tests_labelled 'stream|net')
mapfile -t file_names < <(tests_labelled files)
[ ${#names[@]} -gt 0 ] || { echo "valgrind.sh: no stream/net tests found" >&2; exit 2; }
[ ${#file_names[@]} -gt 0 ] || { echo "valgrind.sh: no file tests found" >&2; exit 2; }
# Not under valgrind, with the reason; they run in every other stage:
#  - the EMFILE tests (and rel_a2) run the process out of descriptors on purpose, and valgrind keeps
#    descriptors of its own at the top of the range, so their exact counts no longer hold;
#  - rel_b3_eintr_storm takes a signal every 100 us, which valgrind delivers so slowly that
#    the test cannot finish in its time;
#  - rel_k3_lengths moves 2^31-1 bytes for real, which memcheck's shadow memory turns into
#    minutes.
not_here=(net_listen_emfile_reserve net_listen_emfile_backoff rel_a2_fd_exhaustion
    rel_b3_eintr_storm rel_k3_lengths)

failed=()
start=$SECONDS
# run_one NAME ENGINE: one test under memcheck on epoll, with file engine ENGINE ("" = the
# default, the pool); its log is $logs/NAME[-ENGINE].log.
run_one() {
    local name=$1 engine=$2 id t0 rc=0
    id=$name${engine:+/$engine}
    if printf '%s\n' "${not_here[@]}" | grep -qx "$name"; then
        printf '%-45s not run (see not_here in this script)\n' "$id"
        return
    fi
    t0=$SECONDS
    env GYRE_BACKEND=epoll ${engine:+GYRE_FILE_ENGINE=$engine} GYRE_TEST_SCALE=0.05 \
        timeout 600 valgrind --quiet --error-exitcode=99 --suppressions=scripts/gyre.supp \
        --leak-check=full --errors-for-leak-kinds=definite,indirect --track-origins=yes \
        --track-fds=no --child-silent-after-fork=yes \
        "$tests" "$name" >"$logs/${id//\//-}.log" 2>&1 || rc=$?
    if [ "$rc" -eq 77 ]; then
        # A skip must be one the suite allows; the runner itself checks the list.
        printf '%-45s skipped %4ss\n' "$id" $((SECONDS - t0))
    elif [ "$rc" -ne 0 ]; then
        printf '%-45s FAILED  %4ss (exit %d)\n' "$id" $((SECONDS - t0)) "$rc"
        failed+=("$id")
    else
        printf '%-45s ok      %4ss\n' "$id" $((SECONDS - t0))
    fi
}
for name in "${names[@]}"; do
    run_one "$name" ""
done
for name in "${file_names[@]}"; do
    run_one "$name" linuxaio
done
echo "valgrind: ${#names[@]} tests on epoll and ${#file_names[@]} on epoll/linuxaio," \
    "${#failed[@]} failed, $((SECONDS - start))s"
for id in "${failed[@]}"; do
    echo "==== $id"
    cat "$logs/${id//\//-}.log"
done
[ ${#failed[@]} -eq 0 ]
