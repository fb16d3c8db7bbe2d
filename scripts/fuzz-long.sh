#!/usr/bin/env bash
# The long fuzzing run: every target of scripts/fuzz.sh, one process at a
# time, for RUNS executions each (libFuzzer -runs; default 10 million) from
# a fresh copy of its committed seed corpus. fuzz_graphs runs ~90
# executions/s (each input is a graph compiled and run twice), so 10 million
# would take more than a day: it gets a time budget instead, GRAPHS_SECONDS
# (default 600). Every other target stops at CAP_SECONDS (default 2400) if
# it has not made RUNS executions by then, and the table names it: a safety
# net, which none of them needed in the last run (docs/reliability.md). Prints the
# full libFuzzer output of every target, then a markdown table of what
# libFuzzer itself reported at the end of each run:
#   executions   stat::number_of_executed_units
#   seconds      "Done N runs in S second(s)"
#   exec/s       stat::average_exec_per_sec
#   coverage     cov: of the last status line (edges of the instrumented code:
#                grove, the target and the apps' parsers; not json-c, zlib,
#                libpng, msgpack-c or utf8proc, which are not instrumented)
#   corpus       corp: of the last status line (inputs / their total size)
#   crashes/leaks  the inputs libFuzzer wrote for a crash, a leak, a timeout
#                or running out of memory (build-fuzz/long/artifacts/)
#
#   bash scripts/fuzz-long.sh [RUNS] [TARGET...] 2>&1 | tee /tmp/fuzz-long.log
# Takes about two hours on one core. Exits non-zero when a target failed.
set -uo pipefail
RUNS="${1:-10000000}"
shift || true
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/build-fuzz/long"
ALL=(fuzz_safetensors fuzz_idx fuzz_flax_msgpack fuzz_graphs fuzz_json fuzz_bert_config
     fuzz_tokenizer fuzz_cli)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
GRAPHS_SECONDS="${GRAPHS_SECONDS:-600}"
CAP_SECONDS="${CAP_SECONDS:-2400}"

rm -rf "$OUT" # every run starts from the committed seeds
mkdir -p "$OUT"
start=$(date +%s)
status=0
FUZZ_RUNS="$RUNS" FUZZ_CAP_SECONDS="$CAP_SECONDS" FUZZ_OUT="$OUT" bash "$ROOT/scripts/fuzz.sh" "$GRAPHS_SECONDS" "${TARGETS[@]}" ||
  status=$?
end=$(date +%s)

for t in "${TARGETS[@]}"; do
  echo
  echo "==== $t: libFuzzer's output ($OUT/$t.log) ===="
  cat "$OUT/$t.log" 2>/dev/null || echo "(no log: the target was not built or not run)"
done

# last "<key> <value>" of a libFuzzer status line ("#N DONE cov: 123 ft: ... corp: 45/6Kb ...")
capped=()
status_field() { sed -n "s/^#[0-9].* $2: \([^ ]*\).*/\1/p" "$1" | tail -n 1; }
echo
echo "libFuzzer's final statistics: $RUNS executions per target or $CAP_SECONDS s, whichever" \
     "came first (fuzz_graphs: $GRAPHS_SECONDS s); $(date -u +%Y-%m-%d), $((end - start)) s in all:"
echo
echo "| target | limit | executions | seconds | exec/s | coverage (edges) | corpus (inputs/size) | crashes/leaks |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for t in "${TARGETS[@]}"; do
  log="$OUT/$t.log"
  limit="$RUNS runs / $CAP_SECONDS s"
  [ "$t" = fuzz_graphs ] && limit="$GRAPHS_SECONDS s"
  if [ ! -f "$log" ]; then
    echo "| $t | $limit | - | - | - | - | - | not run |"
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  persec=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  cov=$(status_field "$log" cov)
  corp=$(status_field "$log" corp)
  bad=$(find "$OUT/artifacts" -name "$t-crash-*" -o -name "$t-leak-*" -o -name "$t-timeout-*" \
          -o -name "$t-oom-*" 2>/dev/null | wc -l)
  echo "| $t | $limit | ${execs:--} | ${secs:--} | ${persec:--} | ${cov:--} | ${corp:--} | $bad |"
  if [ "$t" != fuzz_graphs ] && [ "$bad" -eq 0 ] && [ -n "$execs" ] && [ "$execs" -lt "$RUNS" ]; then
    capped+=("$t")
  fi
done
if [ ${#capped[@]} -gt 0 ]; then
  echo
  echo "Stopped at the $CAP_SECONDS s cap before $RUNS executions: ${capped[*]}"
fi
exit "$status"
