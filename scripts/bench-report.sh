#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/bench-report.sh BUILD_DIR: runs every gyre-bench scenario in full and rewrites
# docs/benchmarks.md (tables as printed, plots under docs/bench/, the machine, the method).
# `make bench` calls it. Every figure in the page comes from this one run.
set -euo pipefail

build=${1:-build}
cd "$(dirname "$0")/.."
out=docs/benchmarks.md
plots=docs/bench
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gyre-bench-report.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$plots"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
# A failed measurement is reported in the tables (and the exit status), not a
# reason to keep the rest from the page.
status=0
"$build/bin/gyre-bench" --json "$plots/results.json" --plot "$plots" | tee "$tmp/tables.txt" ||
    status=$?

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
    echo "# gyre benchmarks"
    echo
    echo "Written by \`make bench\` (scripts/bench-report.sh) on $started; every figure below comes"
    echo "from that one run. Rerun it on your machine: the ratios matter, the absolute figures"
    echo "depend on the machine and on what else runs on it."
    echo
    echo "## Machine"
    echo
    echo "- $(nproc) CPUs ($cpu), $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)"
    echo "- gyre $(git describe --always --dirty 2>/dev/null || echo unknown), gcc $(gcc -dumpfullversion), -O2"
    echo
    echo "## Method"
    echo
    echo "- **idle**: the round-trip time of one active socketpair while N idle pipes are"
    echo "  watched (their write ends live in a child process), per backend; median of rounds."
    echo "  This is the scenario that made epoll necessary: select and poll pay for every"
    echo "  watched fd on every wait, epoll only for the ready ones."
    echo "- **timers**: 1,000,000 timers started and fired, then started and stopped."
    echo "- **echo**: each server (gyre-echo on every backend, and the same echo server written"
    echo "  on raw epoll, raw liburing, libuv, libevent and libev, under bench/peers/) is loaded"
    echo "  by one ping-pong client written on raw epoll that checks every echoed byte. Server"
    echo "  and client are pinned to different cores; servers are interleaved over rounds and"
    echo "  medians are shown with their spread. *Server-bound* caps the server at 25% of a core"
    echo "  with a cgroup CPU quota (10 ms period), so that the server, not the client, limits"
    echo "  throughput on 2 cores. Syscalls per message come from perf's"
    echo "  raw_syscalls:sys_enter (or strace -c), user-space instructions per message from"
    echo "  valgrind's callgrind over two runs of fixed message counts, subtracted (repeatable"
    echo "  where timings are not). Ratios are to the raw loop of the same backend."
    echo
    echo "## Results"
    echo
    if [ "$status" -ne 0 ]; then
        echo "gyre-bench exited with status $status: the cells marked error or n/a say why."
        echo
    fi
    echo '```'
    cat "$tmp/tables.txt"
    echo '```'
    echo
    echo "## Plots"
    echo
    for png in "$plots"/*.png; do
        [ -e "$png" ] || continue
        name=$(basename "$png" .png)
        echo "![$name](bench/$name.png)"
        echo
    done
    echo "## What the numbers mean"
    echo
    echo "- Throughput under the server-bound cap is CPU per message in disguise; it moves by"
    echo "  several percent between runs on this shared VM, so look at the spread before"
    echo "  reading a ratio near 1.0."
    echo "- Syscalls per message show batching: io_uring servers submit and reap many messages"
    echo "  per kernel entry when several connections are busy; readiness servers pay at least"
    echo "  a receive and a send per message."
    echo "- Instructions per message count user-space work only (kernel time is in the CPU"
    echo "  figure). gyre's figure includes its op bookkeeping (exactly-once completion,"
    echo "  cancellation, links, the buffer pool) that the raw loops do not do; the closing notes"
    echo "  of the benchmark issue say where it goes."
} > "$out"
echo "wrote $out"
if [ "$status" -ne 0 ]; then
    echo "gyre-bench exited $status: some measurements failed (see the tables)" >&2
fi
exit "$status"
