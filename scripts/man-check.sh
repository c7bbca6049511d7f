#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/man-check.sh: the reference manual's test (CTest: man_pages).
#
#   scripts/man-check.sh SRCDIR LIBGYRE_SO [CC [SANITIZERS]]
#
# Fails when an exported function of LIBGYRE_SO (nm -D, version suffixes stripped) has no
# page in man/man3 (its own or a .so link), when a page lacks a section, when a SYNOPSIS
# prototype differs from the header's declaration, or when a page's ERRORS differ from the
# `Errors:` lines of the header (scripts/man-tool.pl does those checks); when a page's EXAMPLE
# does not compile and link against LIBGYRE_SO; or when `mandoc -T lint -W warning` has
# anything to say about a page. Prints "N functions, N pages". The format: man/README.md.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 SRCDIR LIBGYRE_SO [CC [SANITIZERS]]" >&2; exit 2; }
src=$1
lib=$2
cc=${3:-cc}
# A sanitized libgyre.so leaves the runtime to the executable, so the examples link it too.
san=${4:+-fsanitize=$4}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort -u \
    >"$tmp/exported"
perl "$src/scripts/man-tool.pl" check "$src" "$tmp/exported" || status=1

# Every page's EXAMPLE program, compiled as a user would and linked against the library.
mkdir "$tmp/ex"
n=$(perl "$src/scripts/man-tool.pl" examples "$src" "$tmp/ex")
bad=0
for c in "$tmp"/ex/*.c; do
    if ! "$cc" $san -std=c17 -Wall -Wextra -Werror -I "$src/include" "$c" \
        -o "${c%.c}" "$lib" -Wl,-rpath,"$(dirname "$lib")" 2>"$tmp/cc.log"; then
        echo "man-check: the EXAMPLE of $(basename "${c%.c}") does not compile:"
        sed 's/^/    /' "$tmp/cc.log"
        bad=$((bad + 1))
    fi
done
echo "$n examples compiled, $bad failed"
[ "$bad" -eq 0 ] || status=1

# mandoc prints nothing for a clean page; .so link pages are followed from the man/ root.
# Its one remark on a link page, that .so is fragile and ln(1) better, is dropped: the
# links are .so pages by choice (as liburing's), and man-tool.pl has checked their targets.
if ! command -v mandoc >/dev/null 2>&1; then
    echo "man-check: mandoc not installed (scripts/deps.sh test)"
    status=1
else
    (cd "$src/man" && mandoc -T lint -W warning man1/*.1 man3/*.3 man7/*.7) 2>&1 |
        grep -v 'WARNING: \.so is fragile, better use ln(1): so man3/' >"$tmp/lint" || true
    if [ -s "$tmp/lint" ]; then
        sed 's/^/man-check: /' "$tmp/lint"
        status=1
    else
        echo "mandoc -T lint -W warning: clean"
    fi
fi
exit $status
