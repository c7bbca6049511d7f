#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/http-attack.sh: gyre-http attacked as a hostile client would (issue 14's acceptance).
#
#   scripts/http-attack.sh [BUILD_DIR]     (default build; needs gyre-http, gyre-attack, curl)
#
# For each backend (BACKENDS, default "uring epoll") and each attack, against one gyre-http with
# its default 1,024 slots and default timeouts:
#   slowloris  2,000 connections trickling a request head a byte a second;
#   idle       5,000 idle keep-alive connections;
#   fds        1,000 silent connections, gyre-http under `ulimit -n 256`;
#   pipeline   300 connections pipelining GETs and never reading.
# The attacker (tools/attack/attack.c) reconnects whatever the server closes, at once or after
# RECONNECT_MS (default 0: a flood of reconnections, harsher than holding connections). During the attack
# a fresh client's GET / is probed once a second (curl, PROBE_TIMEOUT s); afterwards the
# server's exit counters (evictions, cuts, descriptor exhaustion) are read. Printed per row: the
# probes that succeeded, CPU of the server over the attack and after it, while it settles
# (from /proc/PID/stat), descriptors
# before, at most during (sampled with each probe) and after the attack settled, and RSS
# before and after (the connection slab is static: pages it touches stay resident, so RSS
# after an attack is the slab's touched size, not a leak; compare it across attacks).
#
# DURATION (default 30) is each attack's length in seconds; SETTLE (default 3) the wait after.
# It only prints figures; it asserts nothing (the tests do that, test/test-http-limits.c).
set -uo pipefail
build=${1:-build}
bin=$build/bin
dur=${DURATION:-30}
settle=${SETTLE:-3}
probe_timeout=${PROBE_TIMEOUT:-2}
backends=${BACKENDS:-"uring epoll"}
attacks=${ATTACKS:-"slowloris idle fds pipeline"}
port=${PORT:-18580}
tmp=$(mktemp -d)
server=
attacker=
cleanup() {
    [ -n "$attacker" ] && kill "$attacker" 2>/dev/null
    [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
for b in gyre-http gyre-attack; do
    [ -x "$bin/$b" ] || { echo "http-attack: $bin/$b is not built" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "http-attack: needs curl" >&2; exit 1; }
# The attacker holds up to 5,000 connections.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
fds() { ls "/proc/$1/fd" | wc -l; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

printf '%-6s %-9s %7s %6s %6s %14s %14s %s\n' backend attack probes cpu after \
    fds:0/max/end rss-KiB:0/end counters
for backend in $backends; do
    for attack in $attacks; do
        case $attack in
        slowloris) args=(--mode slowloris --conns 2000) nofile=4096 ;;
        idle) args=(--mode idle --conns 5000) nofile=4096 ;;
        fds) args=(--mode silent --conns 1000) nofile=256 ;;
        pipeline) args=(--mode pipeline --conns 300) nofile=4096 ;;
        *) echo "http-attack: unknown attack $attack" >&2; exit 2 ;;
        esac
        port=$((port + 1))
        (ulimit -n "$nofile" && exec env GYRE_BACKEND="$backend" "$bin/gyre-http" --port "$port" \
            --error-log "$tmp/error.log") >"$tmp/out" 2>&1 &
        server=$!
        for _ in $(seq 100); do
            curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && break
            sleep 0.05
        done
        sleep 0.5
        fd0=$(fds "$server") rss0=$(rss_kib "$server")
        "$bin/gyre-attack" --port "$port" "${args[@]}" --reconnect-ms "${RECONNECT_MS:-0}" --seconds $((dur + 2)) >"$tmp/attack" &
        attacker=$!
        sleep 2
        c0=$(cpu_ticks "$server") t0=$(date +%s%N)
        ok=0 n=0 fd1=0
        while [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt "$dur" ]; do
            start=$(date +%s%N)
            n=$((n + 1))
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "$probe_timeout" \
                "http://127.0.0.1:$port/" 2>/dev/null)
            [ "$code" = 200 ] && ok=$((ok + 1))
            f=$(fds "$server")
            [ "$f" -gt "$fd1" ] && fd1=$f
            left=$(( 1000000000 - ($(date +%s%N) - start) ))
            [ "$left" -gt 0 ] && sleep "0.$(printf '%09d' "$left")"
        done
        c1=$(cpu_ticks "$server") t1=$(date +%s%N)
        wait "$attacker"
        attacker=
        c2=$(cpu_ticks "$server") t2=$(date +%s%N)
        sleep "$settle"
        fd2=$(fds "$server") rss2=$(rss_kib "$server")
        after=$(awk -v c=$(($(cpu_ticks "$server") - c2)) -v t=$(($(date +%s%N) - t2)) -v hz="$tck" \
            'BEGIN { printf "%.1f%%", 100 * c / (t / 1e9 * hz) }')
        cpu=$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) -v hz="$tck" \
            'BEGIN { printf "%.1f%%", 100 * c / (t / 1e9 * hz) }')
        kill -TERM "$server"
        wait "$server"
        status=$?
        server=
        counters=$(sed -n 's/^gyre-http: cut //p' "$tmp/out" | tr -d '\n')
        exh=$(sed -n 's/^gyre-http: out of descriptors \([0-9]*\) times.*/\1/p' "$tmp/out")
        paused=$(sed -n 's/^gyre-http: paused reading \([0-9]*\).*/\1/p' "$tmp/out")
        refused=$(sed -n 's/^gyre-http: accepted [0-9]* connections, refused \([0-9]*\).*/\1/p' "$tmp/out")
        printf '%-6s %-9s %7s %6s %6s %14s %14s %s; refused %s, exhausted %s, paused %s, exit %s\n' \
            "$backend" "$attack" "$ok/$n" "$cpu" "$after" "$fd0/$fd1/$fd2" "$rss0/$rss2" "$counters" \
            "${refused:-?}" "${exh:-?}" "${paused:-?}" "$status"
        sed 's/^/    /' "$tmp/attack"
    done
done
