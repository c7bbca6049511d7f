#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/spdx.sh [--check] [FILE...]: gives every source, header, script and build file of
# the tree its two SPDX lines (the license, MIT, and the copyright, "the gyre authors") at the
# top, in the comment syntax of its type; `reuse lint` (make reuse-lint) then passes.
#
#   scripts/spdx.sh            adds the lines where they are missing, and prints each file
#                              it changed; a file that has them is left byte for byte as it is
#   scripts/spdx.sh --check    changes nothing; lists the files that lack them (and files of
#                              a type this script does not know) and exits 1 if there are any
#
# Files: those git tracks plus new ones git does not ignore (so a page just written under man/
# is covered before its first commit; outside a git checkout, all but build*/), or the FILEs
# given. Left alone: symbolic links, LICENSE
# and LICENSES/, and the data and documentation that .reuse/dep5 covers; its Files: patterns
# are read here, so that file is the one list of what needs no header.
#
# Where the lines go: at the very top, except after a `#!` line (which must stay first) and,
# in Python, after a coding line. A C comment is two one-line /* */ comments, which
# clang-format leaves as they are. A roff page (man/) gets `.\"` comments; an .so page too, since
# man-db and mandoc follow .so after comment lines.
set -euo pipefail

cd "$(dirname "$0")/.."

# Written in two halves so that `reuse lint` does not read this script's own code as tags.
tag_license="SPDX-""License-Identifier"
tag_copyright="SPDX-""FileCopyrightText"
license="MIT"
holder="the gyre authors"

check=0
if [ "${1:-}" = --check ]; then
    check=1
    shift
fi
case "${1:-}" in
-*)
    echo "usage: $0 [--check] [FILE...]" >&2
    exit 2
    ;;
esac

# The comment style of a file: c, hash, roff; "" when it needs no header; "?" when unknown.
style_of() {
    local f=$1 base=${1##*/}
    case "$f" in
    LICENSE | COPYING | LICENSES/* | .reuse/*) return ;;
    esac
    for pat in "${dep5_patterns[@]}"; do
        # dep5 globs: `*` also matches `/`, as it does in [[ == ]].
        # shellcheck disable=SC2053
        [[ "$f" == $pat ]] && return
    done
    case "$base" in
    *.c | *.h | *.c.in | *.h.in | *.map | *.ld) echo c ;;
    *.sh | *.bash | *.pl | *.pm | *.py | *.cmake | *.cmake.in | *.pc.in | CMakeLists.txt | \
        Makefile | GNUmakefile | *.mk | .gitignore | .gitattributes | .clang-format | \
        .clang-tidy | .editorconfig | *.yml | *.yaml | *.toml | *.gp | *.txt | *.supp | *.dict | \
        *.cfg | *.conf | *.service | *.socket)
        echo hash
        ;;
    *.[1-9] | *.[1-9]gyre | *.man) echo roff ;;
    *)
        # Scripts without an extension (.ci/run): known by their #! line.
        if head -c 2 "$f" 2>/dev/null | grep -q '^#!'; then
            echo hash
        else
            echo "?"
        fi
        ;;
    esac
}

has_tag() { # FILE TAG: the tag appears in the file's first 20 lines
    head -n 20 "$1" | grep -q "$2:"
}

# The lines to add for FILE in STYLE, those it lacks, one per line.
header_lines() {
    local f=$1 style=$2 tag value
    for tag in "$tag_license" "$tag_copyright"; do
        has_tag "$f" "$tag" && continue
        [ "$tag" = "$tag_license" ] && value=$license || value=$holder
        case "$style" in
        c) printf '/* %s: %s */\n' "$tag" "$value" ;;
        hash) printf '# %s: %s\n' "$tag" "$value" ;;
        roff) printf '.\\" %s: %s\n' "$tag" "$value" ;;
        esac
    done
}

# How many leading lines stay above the header: a #! line, then in Python a coding line.
keep_lines() {
    local f=$1 first second
    first=$(head -n 1 "$f")
    case "$first" in
    '#!'*) ;;
    *) echo 0 && return ;;
    esac
    second=$(sed -n 2p "$f")
    if [[ "$f" == *.py || "$first" == *python* ]] && [[ "$second" =~ ^#.*coding[:=] ]]; then
        echo 2
    else
        echo 1
    fi
}

add_header() {
    local f=$1 lines=$2 keep tmp
    keep=$(keep_lines "$f")
    tmp=$(mktemp "$f.spdx.XXXXXX")
    {
        head -n "$keep" "$f"
        printf '%s\n' "$lines"
        tail -n +"$((keep + 1))" "$f"
    } >"$tmp"
    # Keep the file's mode (scripts stay executable).
    chmod --reference="$f" "$tmp"
    mv "$tmp" "$f"
}

dep5_patterns=()
if [ -f .reuse/dep5 ]; then
    # `Files:` fields, with their continuation lines, split on white space.
    while read -r pat; do
        dep5_patterns+=("$pat")
    done < <(awk '
        /^Files:/ { infiles = 1; sub(/^Files:/, ""); print; next }
        infiles && /^[ \t]/ { print; next }
        { infiles = 0 }' .reuse/dep5 | tr -s ' \t' '\n' | sed '/^$/d')
fi

if [ $# -gt 0 ]; then
    files=("$@")
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files --cached --others --exclude-standard | sort -u)
else
    # Not a git checkout (an unpacked release): every file but build output.
    mapfile -t files < <(find . \( -name .git -o -name 'build*' \) -prune -o -type f -print |
        sed 's|^\./||' | sort)
fi

checked=0
missing=()
unknown=()
changed=0
for f in "${files[@]}"; do
    if [ ! -f "$f" ] || [ -L "$f" ]; then
        continue
    fi
    style=$(style_of "$f")
    [ -n "$style" ] || continue
    if [ "$style" = "?" ]; then
        unknown+=("$f")
        continue
    fi
    checked=$((checked + 1))
    lines=$(header_lines "$f" "$style")
    [ -n "$lines" ] || continue
    if [ "$check" = 1 ]; then
        missing+=("$f")
    else
        add_header "$f" "$lines"
        echo "$f"
        changed=$((changed + 1))
    fi
done

for f in "${unknown[@]}"; do
    echo "spdx.sh: $f: unknown file type: give it a comment style here or a dep5 entry" >&2
done
if [ "$check" = 1 ]; then
    [ ${#missing[@]} -eq 0 ] || printf '%s\n' "${missing[@]}"
    echo "spdx.sh: $checked files need the SPDX lines, ${#missing[@]} lack them," \
        "${#unknown[@]} of unknown type" >&2
    [ ${#missing[@]} -eq 0 ] && [ ${#unknown[@]} -eq 0 ]
else
    echo "spdx.sh: $checked files need the SPDX lines, $changed changed now," \
        "${#unknown[@]} of unknown type" >&2
    [ ${#unknown[@]} -eq 0 ]
fi
