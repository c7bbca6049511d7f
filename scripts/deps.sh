#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/deps.sh: makes sure the Debian packages a make target needs are installed.
#
#   scripts/deps.sh GROUP...     groups: build test sanitize format valgrind reuse plot all
#
# Checks with dpkg-query. If a package is missing: as root, runs `apt-get update` (once)
# and `apt-get install -y --no-install-recommends`; otherwise prints the exact sudo command
# and exits 1. The `plot` group (gnuplot-nox) is optional: when it cannot be installed the
# benchmark only skips its plots, so that is a note, not a failure.
# Only nginx-light (the http benchmark's peer, which starts its own) ships a service; a
# policy-rc.d guard makes sure that none starts. Set GYRE_SKIP_DEPS=1 to skip the check
# (e.g. on a machine set up another way).
set -euo pipefail

usage() {
    echo "usage: $0 {build|test|sanitize|format|valgrind|reuse|plot|all}..." >&2
    exit 2
}

# libc6-dev is only a Recommends of gcc-12, so --no-install-recommends would leave gcc
# without libc headers: name it explicitly.
group_pkgs() {
    case "$1" in
    build) echo "cmake gcc libc6-dev make pkg-config liburing-dev" ;;
    # The man_pages test lints every page with mandoc.
    test) echo "mandoc" ;;
    sanitize) echo "clang libclang-rt-14-dev" ;;
    format) echo "clang-format-14" ;;
    valgrind) echo "valgrind" ;;
    reuse) echo "reuse" ;;
    plot) echo "gnuplot-nox libuv1-dev libevent-dev libev-dev liburing-dev fio nginx-light wrk" ;;
    *) usage ;;
    esac
}

[ $# -ge 1 ] || usage
if [ "${GYRE_SKIP_DEPS:-0}" = 1 ]; then
    exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: no dpkg-query (not Debian): assuming the tools for '$*' are installed" >&2
    exit 0
fi

groups=()
for g in "$@"; do
    if [ "$g" = all ]; then
        groups+=(build test sanitize format valgrind reuse plot)
    else
        group_pkgs "$g" >/dev/null
        groups+=("$g")
    fi
done

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

required=()
optional=()
for g in "${groups[@]}"; do
    for p in $(group_pkgs "$g"); do
        installed "$p" && continue
        if [ "$g" = plot ]; then
            optional+=("$p")
        else
            required+=("$p")
        fi
    done
done

missing=("${required[@]}" "${optional[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    if [ ${#required[@]} -eq 0 ]; then
        echo "deps.sh: optional ${optional[*]} not installed (plots are skipped);" \
            "to get them: sudo apt-get install -y --no-install-recommends ${optional[*]}" >&2
        exit 0
    fi
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "deps.sh: install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Forbid service starts for the duration of the install, unless a policy is already set.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    trap 'rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
fi
apt-get update -qq
if [ ${#required[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${required[@]}"
fi
if [ ${#optional[@]} -gt 0 ] &&
    ! apt-get install -y -qq --no-install-recommends "${optional[@]}"; then
    echo "deps.sh: could not install optional ${optional[*]}; plots are skipped" >&2
fi
