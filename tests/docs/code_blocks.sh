#!/usr/bin/env bash
# Every ```c block of the given Markdown files is compiled against grove's
# headers and linked against libgrove; every whole program among them is run
# and must exit 0. So the README and the guide cannot drift from the API.
#
#   code_blocks.sh CC INCLUDE_DIR LIBGROVE_SO WORK_DIR FILE.md...
#
# CODE_BLOCKS_CFLAGS (environment) adds compiler flags: the sanitizer build
# passes its -fsanitize flags, as a program linked against a sanitized
# libgrove.so needs them too.
#
# How blocks become programs (markers are HTML comments, invisible on a
# rendered page, each on a line of its own):
#   - A block opens with a line that is exactly ```c and closes with ```.
#     A C block opened any other way (indented, ~~~c) is an error, so that
#     no block escapes the test.
#   - Blocks are grouped into units, one C file each. By default every block
#     is a unit of its own.
#   - <!-- doctest: unit NAME ARGS... --> : from here to the end of the file,
#     blocks join unit NAME and are concatenated in the order they appear
#     (the guide's sections, read in order, are one program). ARGS are the
#     command line the program is run with, in an empty directory of its own.
#   - <!-- doctest: separate --> just before a block: that block is a unit of
#     its own all the same.
#   - <!-- doctest: statements --> just before a block: that block is a list
#     of statements (a fragment that declares what it uses), compiled as the
#     body of a function.
#   - A unit that defines `int main(` is a whole program: compiled with
#     -Wall -Wextra -Wpedantic -Werror, linked, and run (time limit 300 s);
#     it must exit 0. Any other unit is a fragment: grove.h and the usual C
#     headers are included before it, unused functions and variables are not
#     warnings, and it is compiled and linked (with an empty main) but not run.
# Each block starts with a #line directive, so a compiler error names the
# Markdown file and line. The generated files stay in WORK_DIR to look at.
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "usage: code_blocks.sh CC INCLUDE_DIR LIBGROVE_SO WORK_DIR FILE.md..." >&2
  exit 2
fi
cc=$1 include=$2 lib=$3 work=$4
shift 4
rm -rf "$work"
mkdir -p "$work"

# shellcheck disable=SC2206
extra_flags=(${CODE_BLOCKS_CFLAGS:-})
common=(-std=c11 -Wall -Wextra -Wpedantic -Werror -Wno-unused-parameter -I"$include"
        "${extra_flags[@]}")
fragment_flags=(-Wno-unused-function -Wno-unused-variable -Wno-unused-but-set-variable)
link=("$lib" -Wl,-rpath,"$(dirname "$lib")" -lm)

failures=0
total=0
for md in "$@"; do
  base=$(basename "$md" .md)
  dir=$work/$base
  mkdir -p "$dir"
  # Extract: writes dir/<unit>.c (blocks with #line directives) and dir/units,
  # one line per unit in order of first appearance: NAME KIND ARGS...
  # (KIND: file or statements).
  if ! awk -v dir="$dir" -v md="$md" -v base="$base" '
    function start_unit(name, kind, args) {
      if (!(name in seen)) {
        seen[name] = 1
        print name " " kind (args == "" ? "" : " " args) >> (dir "/units")
      }
      file = dir "/" name ".c"
    }
    /^<!-- doctest: .* -->[ \t]*$/ {
      spec = $0
      sub(/^<!-- doctest: */, "", spec); sub(/ *-->[ \t]*$/, "", spec)
      n = split(spec, w, " ")
      if (w[1] == "unit" && n >= 2) {
        unit = w[2]; args = ""
        for (i = 3; i <= n; i++) args = args (i > 3 ? " " : "") w[i]
        unit_args[unit] = args
      } else if (spec == "separate" || spec == "statements") {
        pending = spec
      } else {
        printf "%s:%d: unknown doctest marker: %s\n", md, NR, $0 > "/dev/stderr"; bad = 1
      }
      next
    }
    inblock && /^```[ \t]*$/ {
      if (kind == "statements") print "}" >> file
      inblock = 0; next
    }
    inblock { print >> file; next }
    /^```c[ \t]*$/ {
      nblocks++
      kind = "file"
      if (pending == "statements") kind = "statements"
      if (unit != "" && pending == "") name = unit
      else name = sprintf("%s_block%d", base, nblocks)
      start_unit(name, kind, name == unit ? unit_args[unit] : "")
      if (kind == "statements") printf "void doctest_%s(void) {\n", name >> file
      printf "#line %d \"%s\"\n", NR + 1, md >> file
      pending = ""; inblock = 1; next
    }
    /^[ \t]*(```|~~~)[ \t]*[cC][ \t]*$/ {
      printf "%s:%d: a C block must open with ```c at the start of the line\n", md, NR \
        > "/dev/stderr"; bad = 1
    }
    /[^ \t]/ { pending = "" }
    END {
      if (inblock) { printf "%s: a ```c block is not closed\n", md > "/dev/stderr"; bad = 1 }
      if (nblocks == 0) { printf "%s: no ```c blocks\n", md > "/dev/stderr"; bad = 1 }
      exit bad
    }' "$md"; then
    echo "FAIL $md: cannot extract its C blocks" >&2
    failures=$((failures + 1))
    continue
  fi

  while read -r name kind args; do
    total=$((total + 1))
    src=$dir/$name.c
    if grep -q 'int main(' "$src"; then
      if ! "$cc" "${common[@]}" "$src" -o "$dir/$name" "${link[@]}" 2>"$dir/$name.log"; then
        echo "FAIL $md: $name does not compile:" >&2
        cat "$dir/$name.log" >&2
        failures=$((failures + 1))
        continue
      fi
      run=$dir/$name.run
      mkdir -p "$run"
      start=$(date +%s%N)
      # shellcheck disable=SC2086
      if (cd "$run" && timeout 300 "../$name" $args) </dev/null >"$dir/$name.out" 2>&1; then
        echo "ok   $md: $name (program, ran in $((($(date +%s%N) - start) / 1000000)) ms)"
      else
        rc=$?
        echo "FAIL $md: $name exited with $rc:" >&2
        cat "$dir/$name.out" >&2
        failures=$((failures + 1))
      fi
    else
      wrapped=$dir/$name.fragment.c
      {
        printf '#include <grove/grove.h>\n#include <math.h>\n#include <stdio.h>\n'
        printf '#include <stdlib.h>\n#include <string.h>\n'
        cat "$src"
        printf '\nint main(void) { return 0; }\n'
      } >"$wrapped"
      if "$cc" "${common[@]}" "${fragment_flags[@]}" "$wrapped" -o "$dir/$name" "${link[@]}" \
           2>"$dir/$name.log"; then
        echo "ok   $md: $name (fragment, $kind)"
      else
        echo "FAIL $md: $name does not compile:" >&2
        cat "$dir/$name.log" >&2
        failures=$((failures + 1))
      fi
    fi
  done <"$dir/units"
done

if [ "$failures" -ne 0 ]; then
  echo "code_blocks: $failures failure(s) in $*" >&2
  exit 1
fi
echo "all $total C units compiled; every program ran and exited 0"
