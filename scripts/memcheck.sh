#!/usr/bin/env bash
# Memcheck: every CTest test labelled unit or parity under valgrind.
#   bash scripts/memcheck.sh [BUILD_DIR] [--src DIR] [--filter REGEX] [--timeout S]
# Builds grove as Debug without sanitizers in BUILD_DIR (default
# build/h-memcheck; configured from --src, default this checkout, if it has
# no CMakeCache.txt yet), then runs each test's own command (ctest's, with its
# working directory and environment) under
#   valgrind --error-exitcode=99 --leak-check=full
#            --errors-for-leak-kinds=definite,indirect --trace-children=yes
# and prints: test | errors | definitely lost | indirectly lost | time.
#
# The tests are Criterion programs, and Criterion 2.4 has no no-fork mode:
# the runner forks and re-executes the test binary as a "boxfort-worker"
# for every test. --trace-children=yes makes valgrind follow those execs,
# so each test runs in its own valgrind process with its own leak check, one
# log per process (BUILD_DIR/memcheck/<test>.<pid>.log); the row of a test
# program adds up its runner, its workers and what they spawn.
# Criterion ignores a worker's exit code 99 (a test with valgrind errors is
# still reported passing), so the logs, not the exit code, decide.
# Not followed: /bin/sh and python3 that a test starts with system() (not
# grove; python is not valgrind-clean without its own suppressions).
# Not run under valgrind, with the reason printed in the table: a test whose
# command is not a Criterion program (a cmake -P script that compiles a
# snippet, a Python suite); a Python suite's C helper named in its
# environment (GROVE_CKPT_TOOL) runs under valgrind instead, so grove's
# side is still checked.
# Suppressions: tests/valgrind.supp (narrow entries for OpenBLAS/OpenMP,
# each with its reason). GROVE_BERT_DIR is set to ~/.cache/grove/
# all-MiniLM-L6-v2 when it exists, so the BERT parity tests run, not skip.
# Exits 0 when every test ran clean, 1 when one had a valgrind error, a
# definite or indirect leak, failed or timed out (default 3600 s per
# program), 2 on a bad command line.
# One { } block, read whole before it runs: editing the file mid-run is safe.
{
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build/h-memcheck" SRC="$ROOT" FILTER="" TIMEOUT=3600
while [ $# -gt 0 ]; do
  case "$1" in
    --src) SRC="$2"; shift 2 ;;
    --filter) FILTER="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    -*) echo "memcheck.sh: unknown flag '$1'" >&2; exit 2 ;;
    *) BUILD="$(mkdir -p "$1" && cd "$1" && pwd)"; shift ;;
  esac
done
SUPP="$ROOT/tests/valgrind.supp"

if ! command -v valgrind >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y valgrind >/dev/null || { apt-get update >/dev/null && apt-get install -y valgrind >/dev/null; }
  else
    echo "memcheck.sh: valgrind is missing (apt-get install -y valgrind)" >&2; exit 1
  fi
fi

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGROVE_SANITIZE=OFF >/dev/null
fi
configured_src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")
if [ "$(cd "$configured_src" 2>/dev/null && pwd -P)" != "$(cd "$SRC" && pwd -P)" ]; then
  echo "memcheck.sh: note: $BUILD was configured from $configured_src, which is what is tested (not $SRC)"
fi
grep -q '^CMAKE_BUILD_TYPE:STRING=Debug$' "$BUILD/CMakeCache.txt" &&
  ! grep -q '^GROVE_SANITIZE:BOOL=ON$' "$BUILD/CMakeCache.txt" ||
  { echo "memcheck.sh: $BUILD is not a Debug build without sanitizers" >&2; exit 2; }
cmake --build "$BUILD" -j2 | grep -v '^\[' || true
[ "${PIPESTATUS[0]}" = 0 ] || { echo "memcheck.sh: the build in $BUILD failed" >&2; exit 1; }

LOGS="$BUILD/memcheck"
rm -rf "$LOGS" && mkdir -p "$LOGS"
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --trace-children=yes --child-silent-after-fork=yes
    --trace-children-skip='/bin/sh,/usr/bin/sh,/bin/bash,/usr/bin/bash,*python3*'
    --num-callers=40 --gen-suppressions=all --suppressions="$SUPP")
[ -f "$SUPP" ] || { echo "memcheck.sh: no $SUPP" >&2; exit 1; }
BERT="$HOME/.cache/grove/all-MiniLM-L6-v2"
[ -n "${GROVE_BERT_DIR:-}" ] || { [ -d "$BERT" ] && export GROVE_BERT_DIR="$BERT"; } || true

# the tests: name, working directory, environment and command, one per line,
# fields split by \x1e and list items by \x1f
TESTS="$LOGS/tests.txt"
(cd "$BUILD" && ctest --show-only=json-v1 -L '^(unit|parity)$') | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tests"]:
    p = {x["name"]: x["value"] for x in t.get("properties", [])}
    env = p.get("ENVIRONMENT", [])
    print("\x1e".join([t["name"], p.get("WORKING_DIRECTORY", "."), "\x1f".join(env),
                       "\x1f".join(t.get("command", []))]))' >"$TESTS"

# sum the valgrind logs of one test: "errors definite_bytes definite_blocks indirect_bytes indirect_blocks incomplete"
sum_logs() {
  awk '
    FNR == 1 { files++; seen = 0 }
    /ERROR SUMMARY:/ { e += $4; seen = 1; done++ }
    /definitely lost:/ { gsub(",", "", $4); gsub(",", "", $7); db += $4; dn += $7 }
    /indirectly lost:/ { gsub(",", "", $4); gsub(",", "", $7); ib += $4; in_ += $7 }
    END { print e + 0, db + 0, dn + 0, ib + 0, in_ + 0, files - done }' "$@"
}

printf '%-30s | %-6s | %-22s | %-22s | %8s | %s\n' test errors "definitely lost" "indirectly lost" time result \
  | tee "$LOGS/table.txt"
printf -- '-%.0s' {1..110} | tee -a "$LOGS/table.txt"; echo | tee -a "$LOGS/table.txt"
row() { printf '%-30s | %-6s | %-22s | %-22s | %8s | %s\n' "$@" | tee -a "$LOGS/table.txt"; }
bad=0 total_start=$(date +%s)
while IFS=$'\x1e' read -r name wd envs cmds; do
  [ -z "$FILTER" ] || [[ "$name" =~ $FILTER ]] || continue
  IFS=$'\x1f' read -r -a cmd <<<"$cmds"
  IFS=$'\x1f' read -r -a env <<<"$envs"
  if [ ${#cmd[@]} -eq 0 ] || [ ! -x "${cmd[0]}" ]; then
    row "$name" - - - - "FAIL: not built"; bad=1; continue
  fi
  wrapped=()
  if ! "${cmd[0]}" --version 2>&1 | grep -q 'compiled with Criterion'; then
    # not a Criterion program: run its C helper under valgrind if it names one
    helper=""
    for i in "${!env[@]}"; do
      case "${env[$i]}" in GROVE_CKPT_TOOL=*)
        helper="${env[$i]#GROVE_CKPT_TOOL=}"
        w="$LOGS/$name.valgrind-wrapper"
        printf '#!/bin/sh\nexec %s --log-file=%q "%s" "$@"\n' "$(printf '%q ' "${VG[@]}")" \
          "$LOGS/$name.%p.log" "$helper" >"$w"
        chmod +x "$w"
        env[$i]="GROVE_CKPT_TOOL=$w" ;;
      esac
    done
    if [ -z "$helper" ]; then
      row "$name" - - - - "skipped: $(basename "${cmd[0]}") is not a Criterion program (runs no grove code of its own)"
      continue
    fi
    run=("${cmd[@]}")
    note=" ($(basename "${cmd[0]}") natively, $(basename "$helper") under valgrind)"
  else
    run=("${VG[@]}" --log-file="$LOGS/$name.%p.log" "${cmd[@]}")
    note=""
  fi
  start=$(date +%s.%N)
  rc=0
  (cd "$wd" && env "${env[@]}" timeout -k 30 "$TIMEOUT" "${run[@]}") >"$LOGS/$name.out" 2>&1 || rc=$?
  if [ -n "$note" ] && [ "$rc" = 77 ]; then row "$name" - - - - "skipped by the test itself (exit 77)"; continue; fi
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f s", b - a }')
  shopt -s nullglob
  logs=("$LOGS/$name".*.log)
  shopt -u nullglob
  if [ ${#logs[@]} -eq 0 ]; then
    row "$name" - - - "$secs" "FAIL: no valgrind log (exit $rc)$note"; bad=1; continue
  fi
  read -r e db dn ib in_ inc <<<"$(sum_logs "${logs[@]}")"
  result="ok, ${#logs[@]} processes$note"
  # (no `a && b` or `a || b` here: under set -e one whose last part fails ends the script)
  if [ "$rc" = 124 ]; then result="FAIL: timed out after $TIMEOUT s, ${#logs[@]} processes$note"
  elif [ "$rc" != 0 ]; then result="FAIL: exit $rc, ${#logs[@]} processes$note"; fi
  if [ "$inc" != 0 ]; then result="$result, $inc without a leak summary"; fi
  if [ "$rc" != 0 ] || [ "$e" != 0 ] || [ "$db" != 0 ] || [ "$ib" != 0 ] || [ "$inc" != 0 ]; then
    bad=1
    if [ "$rc" = 0 ]; then result="FAIL: valgrind, ${#logs[@]} processes$note"; fi
  fi
  if grep -q 'Synthesis' "$LOGS/$name.out"; then result="$result; $(grep -o 'Tested: [0-9]* | Passing: [0-9]* | Failing: [0-9]* | Crashing: [0-9]*' "$LOGS/$name.out" | tail -n 1 | tr -d '|' | tr -s ' ')"; fi
  row "$name" "$e" "$db B in $dn blocks" "$ib B in $in_ blocks" "$secs" "$result"
done <"$TESTS"
echo "total $(( $(date +%s) - total_start )) s; logs in $LOGS" | tee -a "$LOGS/table.txt"
if [ "$bad" = 0 ]; then echo "memcheck: PASS"; else
  echo "memcheck: FAIL (the stacks: grep -l 'definitely lost in\|indirectly lost in\|Invalid\|uninitialised' $LOGS/*.log)"
fi
exit "$bad"
}
