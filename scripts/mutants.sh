#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/mutants.sh BUILD_ROOT [ID...]: shows that the test suite fails for every seeded bug
# in test/mutants/ (all of them, or the ids given); docs/testing.md describes the mutants.
# `make test-mutants` calls it.
#
# BUILD_ROOT is made afresh: a copy of the work tree (the files git tracks, as they are now,
# and untracked ones that are not ignored) and its build (gcc, Release, -Werror, as `make
# test`). Every mutant's selection first runs on the unmutated build and must pass with at
# least one test run, else a catch would prove nothing. Then, one mutant at a time, the mutant
# text is written over its original in the copy, the build is brought up to date, the
# selection runs under ctest, and the file is put back. The work tree is never touched.
#
# Verdicts: CAUGHT (a selected test failed or timed out), SURVIVED (all passed), STALE (an
# original text is not in its file exactly once), BROKEN (the mutant does not compile),
# BASELINE (the selection fails, or runs no test, unmutated), MALFORMED (unreadable mutant
# file), ERROR (ctest failed without a failing test). The exit status is 0 only if every
# mutant is CAUGHT. Logs stay in BUILD_ROOT/logs/.
#
# A test that hangs fails by its hang guard (20 s for most) or its ctest TIMEOUT (60 s, heavy
# 120 s): a hang is a catch. MUTANT_CAP (seconds) bounds one mutant's whole ctest run as a
# backstop; reaching it counts as a catch too.
#
# Environment: CC (gcc), JOBS (2: build jobs), CTEST_JOBS (2), MUTANT_CAP (300).
set -euo pipefail

usage() {
    echo "usage: $0 BUILD_ROOT [MUTANT_ID...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
cd "$(dirname "$0")/.."
top=$PWD
root=$(realpath -m "$1")
shift
cc=${CC:-gcc}
jobs=${JOBS:-2}
cjobs=${CTEST_JOBS:-2}
cap=${MUTANT_CAP:-300}
mutdir=$top/test/mutants
tool=$top/scripts/mutant.pl
src=$root/src
bld=$root/build
logs=$root/logs
started=$SECONDS

note() {
    printf '%s\n' "mutants: $*"
}

die() {
    printf '%s\n' "mutants: $*" >&2
    exit 1
}

# --- which mutants ---

ids=()
if [ $# -gt 0 ]; then
    ids=("$@")
else
    for f in "$mutdir"/*.mutant; do
        [ -e "$f" ] || continue
        f=${f##*/}
        ids+=("${f%.mutant}")
    done
fi
[ ${#ids[@]} -gt 0 ] || die "no mutants in $mutdir"
for id in "${ids[@]}"; do
    [ -f "$mutdir/$id.mutant" ] || die "no mutant $mutdir/$id.mutant"
done

# --- the scratch copy ---

# BUILD_ROOT is removed first, so it must be one this script made (or not exist yet).
if [ -e "$root" ]; then
    [ -f "$root/.gyre-mutants" ] ||
        die "$root exists and was not made by $0; not removing it"
    rm -rf "$root"
fi
git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
    die "$top is not a git work tree: the copy is made from git ls-files"
list=$(mktemp "${TMPDIR:-/tmp}/gyre-mutants.XXXXXX")
trap 'rm -f "$list"' EXIT
git -C "$top" ls-files -z --cached --others --exclude-standard >"$list"
mkdir -p "$src" "$logs"
touch "$root/.gyre-mutants"
# --ignore-failed-read: a tracked file deleted in the work tree is simply not copied.
tar -C "$top" --null -T "$list" --ignore-failed-read -cf - 2>/dev/null | tar -C "$src" -xf -

note "building in $bld (unmutated, $cc -O2, -Werror)"
cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS_RELEASE="-O2 -g -DNDEBUG" -DGYRE_WERROR=ON >"$logs/configure.log" 2>&1 ||
    die "configure failed: $logs/configure.log"
cmake --build "$bld" -j "$jobs" >"$logs/build.log" 2>&1 ||
    die "the unmutated tree does not build: $logs/build.log"

# --- per-mutant state ---

declare -A what file sel nums verdict detail secs
order=()

# Test numbers (as in `ctest -N`) of the tests ctest selects with the given arguments.
test_numbers() {
    ctest --test-dir "$bld" -N "$@" | sed -n 's/^ *Test *#\([0-9]*\): .*/\1/p' | tr '\n' ' '
}

# Per-test outcomes of a ctest log, one "NUMBER NAME STATUS" line each; STATUS is Passed,
# Skipped, or what ctest says of a failure (Failed, Timeout, Exception: SegFault, ...).
outcomes() {
    perl -ne 'if (/Test\s+#(\d+): (\S+) \.*\s*(.*?)\s+[\d.]+ sec\s*$/) {
                  my ($n, $name, $st) = ($1, $2, $3);
                  $st =~ s/\*+/ /g; $st =~ s/^\s+|\s+$//g; $st =~ s/\s+/ /g;
                  print "$n $name $st\n";
              }' "$1"
}

is_pass() {
    [ "$1" = Passed ] || [ "$1" = Skipped ]
}

for id in "${ids[@]}"; do
    order+=("$id")
    secs[$id]=0
    if ! fields=$(perl "$tool" fields "$mutdir/$id.mutant" 2>&1); then
        what[$id]="(unreadable)"
        file[$id]="?"
        verdict[$id]=MALFORMED
        detail[$id]=$fields
        continue
    fi
    {
        IFS= read -r "what[$id]"
        IFS= read -r "file[$id]"
        IFS= read -r "sel[$id]"
    } <<<"$fields"
    if ! why=$(perl "$tool" check "$mutdir/$id.mutant" "$src" 2>&1); then
        verdict[$id]=STALE
        detail[$id]=${why#stale: }
        continue
    fi
    read -r -a args <<<"${sel[$id]}"
    nums[$id]=$(test_numbers "${args[@]}")
    if [ -z "${nums[$id]// /}" ]; then
        verdict[$id]=BASELINE
        detail[$id]="the selection '${sel[$id]}' matches no test"
        continue
    fi
    verdict[$id]=pending
done

# --- the baseline: every selection, unmutated, in one ctest run ---

declare -A base_status base_name
union=$(for id in "${order[@]}"; do
    if [ "${verdict[$id]}" = pending ]; then
        tr ' ' '\n' <<<"${nums[$id]}"
    fi
done | sed '/^$/d' | sort -n -u | tr '\n' ',')
if [ -n "$union" ]; then
    note "baseline: the selected tests on the unmutated build"
    t0=$SECONDS
    ctest --test-dir "$bld" -j "$cjobs" --output-on-failure -I "0,0,0,${union%,}" \
        >"$logs/baseline.log" 2>&1 || true
    while read -r n name st; do
        base_status[$n]=$st
        base_name[$n]=$name
    done < <(outcomes "$logs/baseline.log")
    note "baseline ran in $((SECONDS - t0)) s"
fi
for id in "${order[@]}"; do
    [ "${verdict[$id]}" = pending ] || continue
    passed=0
    bad=""
    for n in ${nums[$id]}; do
        st=${base_status[$n]:-Not run}
        if [ "$st" = Passed ]; then
            passed=$((passed + 1))
        elif ! is_pass "$st"; then
            bad+="${bad:+, }${base_name[$n]:-#$n} ($st)"
        fi
    done
    if [ -n "$bad" ]; then
        verdict[$id]=BASELINE
        detail[$id]="fails unmutated: $bad"
    elif [ "$passed" -eq 0 ]; then
        verdict[$id]=BASELINE
        detail[$id]="every selected test was skipped here"
    fi
done

# --- the mutants ---

total=${#order[@]}
i=0
for id in "${order[@]}"; do
    i=$((i + 1))
    [ "${verdict[$id]}" = pending ] || {
        note "[$i/$total] $id: ${verdict[$id]} (${detail[$id]})"
        continue
    }
    t0=$SECONDS
    target=$src/${file[$id]}
    cp "$target" "$root/saved"
    perl "$tool" apply "$mutdir/$id.mutant" "$src" >/dev/null
    if ! cmake --build "$bld" -j "$jobs" >"$logs/$id.build.log" 2>&1; then
        verdict[$id]=BROKEN
        detail[$id]="does not compile: $logs/$id.build.log"
    else
        rc=0
        timeout -k 10 "$cap" ctest --test-dir "$bld" -j "$cjobs" --output-on-failure \
            --stop-on-failure -I "0,0,0,$(tr ' ' ',' <<<"${nums[$id]% }")" \
            >"$logs/$id.test.log" 2>&1 || rc=$?
        failed=""
        while read -r n name st; do
            is_pass "$st" || failed+="${failed:+, }$name ($st)"
        done < <(outcomes "$logs/$id.test.log")
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            verdict[$id]=CAUGHT
            detail[$id]="hung: ctest killed after ${cap} s${failed:+; $failed}"
        elif [ -n "$failed" ]; then
            verdict[$id]=CAUGHT
            detail[$id]=$failed
        elif [ "$rc" -eq 0 ]; then
            verdict[$id]=SURVIVED
            detail[$id]="every selected test passed"
        else
            verdict[$id]=ERROR
            detail[$id]="ctest exited $rc with no failed test: $logs/$id.test.log"
        fi
    fi
    # A fresh mtime, so the next build compiles the original again.
    cp "$root/saved" "$target"
    secs[$id]=$((SECONDS - t0))
    note "[$i/$total] $id: ${verdict[$id]} in ${secs[$id]} s (${detail[$id]})"
done

# --- the table ---

caught=0
wid=6
wfile=4
for id in "${order[@]}"; do
    [ "${#id}" -le "$wid" ] || wid=${#id}
    [ "${#file[$id]}" -le "$wfile" ] || wfile=${#file[$id]}
done
echo
printf "%-${wid}s  %-9s %5s  %-${wfile}s  %s\n" MUTANT VERDICT SECS FILE "FAILED TESTS / REASON"
for id in "${order[@]}"; do
    [ "${verdict[$id]}" = CAUGHT ] && caught=$((caught + 1))
    printf "%-${wid}s  %-9s %5s  %-${wfile}s  %s\n" "$id" "${verdict[$id]}" "${secs[$id]}" \
        "${file[$id]}" "${detail[$id]}"
    printf '    %s\n' "${what[$id]}"
done
elapsed=$((SECONDS - started))
echo
note "$caught of $total caught; total $((elapsed / 60)) min $((elapsed % 60)) s; logs in $logs"
[ "$caught" -eq "$total" ]
