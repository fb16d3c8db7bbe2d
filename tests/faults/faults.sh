#!/usr/bin/env bash
# Every write the vae program makes, failed in turn: nothing is lost.
#
#   faults.sh <vae> <faultwrite.so> [MODE]     MODE: all (default) or quick
#
# A base run trains 1 epoch (20 steps of batch 16 on 320 MNIST images);
# the reference resumes a copy of it to epoch 2. Then, for every write(2) to a
# regular file that resuming the base run to epoch 2 makes (the metrics
# lines, both checkpoints' files through the async writer, loss.svg,
# samples.png), and for every fsync(2), a copy of the base run is resumed
# with that one call failed (tests/faults/faultwrite.c): ENOSPC, EIO, or a
# short write. Then `vae sample` gets the same treatment for its PNG.
#
# After each faulted run:
#   - it must not crash (exit status < 128); a failed write or fsync must
#     make it exit non-zero with a message, a short write must not (it is
#     retried) and the run must then equal the reference;
#   - everything the base run had must be intact: its checkpoint files
#     byte for byte, and every other file either as it was or as the
#     reference has it (complete), never anything in between;
#   - no temporary file may be left;
#   - resuming it without a fault must give the reference run exactly
#     (checkpoints, loss.svg, samples.png byte for byte; metrics.jsonl
#     line for line, the measured steps_per_s aside).
# Prints the counts: faults injected, runs that lost data (must be 0).
# MODE quick samples every third call (CI's sanitizer build).
set -euo pipefail
vae=$1 so=$2 mode=${3:-all}
: "${GROVE_MNIST_DIR:?set GROVE_MNIST_DIR (scripts/fetch-mnist.sh)}"
[ -d "$GROVE_MNIST_DIR" ] || { echo "faults: SKIPPED: no MNIST at $GROVE_MNIST_DIR"; exit 77; }
export GROVE_FAULT_NOSYNC=1  # faultwrite.c: the disk's speed is not under test
tmp=$(mktemp -d /tmp/grove-faults-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/mnist_slice.sh"
mnist_slice "$GROVE_MNIST_DIR" "$tmp/mnist" 320 100
flags=(--data-dir "$tmp/mnist" --log-every 10)
train() { "$vae" train "${flags[@]}" "$@"; }
# a run directory as text to compare: every file's bytes, metrics without the timing
digest() {
  (cd "$1" && find . -type f ! -name metrics.jsonl | sort | xargs sha256sum
   sed 's/, "steps_per_s": [0-9.]*//' metrics.jsonl | sha256sum | sed 's/-$/metrics.jsonl/')
}
fail() { echo "faults: FAILED: $*" >&2; exit 1; }

train --epochs 1 --run-dir "$tmp/base" > /dev/null
# the reference: the base run resumed without a fault, counting its writes and fsyncs
cp -a "$tmp/base" "$tmp/ref"
GROVE_FAULT_LOG=$tmp/n LD_PRELOAD=$so train --epochs 2 --run-dir "$tmp/ref" > /dev/null
read -r _ nwrites _ nfsyncs _ _ < "$tmp/n"
"$vae" sample --run-dir "$tmp/ref" --class 3 --n 4 --out "$tmp/ref/extra.png" > /dev/null
digest "$tmp/ref" > "$tmp/ref.sum"
[ "$nwrites" -gt 20 ] && [ "$nfsyncs" -gt 2 ] || fail "counted only $nwrites writes, $nfsyncs fsyncs"
step=1
[ "$mode" = quick ] && step=3

injected=0 lost=0 cases=0
# check_run <dir> <kind> <rc> <log>: the faulted run's state, then its resume
check_run() {
  local d=$1 kind=$2 rc=$3 log=$4 f
  cases=$((cases + 1))
  [ "$rc" -lt 128 ] || fail "$kind: the run died of signal $((rc - 128)): $(tail -3 "$log")"
  if [ "$kind" = short ]; then
    [ "$rc" -eq 0 ] || fail "short write: exit $rc (a short write must be retried): $(tail -3 "$log")"
  else
    [ "$rc" -ne 0 ] || { echo "$kind: exit 0" > "$tmp/why"; return 1; }
    grep -q "^vae: " "$log" || fail "$kind: exit $rc without a message: $(tail -3 "$log")"
  fi
  if find "$d" -name '*.tmp*' | grep -q .; then
    echo "temporaries left: $(find "$d" -name '*.tmp*')" > "$tmp/why"
    return 1
  fi
  for f in checkpoints/20/state.safetensors checkpoints/20/meta.safetensors; do
    cmp -s "$tmp/base/$f" "$d/$f" || { echo "$f changed" > "$tmp/why"; return 1; }
  done
  for f in loss.svg samples.png; do  # the old file or the complete new one
    cmp -s "$tmp/base/$f" "$d/$f" || cmp -s "$tmp/ref/$f" "$d/$f" ||
      { echo "$f is neither the old nor the new file" > "$tmp/why"; return 1; }
  done
  if [ -d "$d/checkpoints/40" ]; then
    for f in state.safetensors meta.safetensors; do
      cmp -s "$tmp/ref/checkpoints/40/$f" "$d/checkpoints/40/$f" ||
        { echo "checkpoints/40/$f differs from the reference" > "$tmp/why"; return 1; }
    done
  fi
  # the run resumes exactly
  train --epochs 2 --run-dir "$d" > "$log.resume" 2>&1 ||
    { echo "resume failed: $(tail -3 "$log.resume")" > "$tmp/why"; return 1; }
  "$vae" sample --run-dir "$d" --class 3 --n 4 --out "$d/extra.png" > /dev/null
  digest "$d" | cmp -s - "$tmp/ref.sum" || { echo "the resumed run differs from the reference" > "$tmp/why"; return 1; }
}

faulted() {  # faulted <kind> <env...>: one resume of a copy of base with one fault
  local kind=$1
  shift
  rm -rf "$tmp/run"
  cp -a "$tmp/base" "$tmp/run"
  local rc=0
  env "$@" GROVE_FAULT_LOG="$tmp/n" LD_PRELOAD="$so" "$vae" train "${flags[@]}" --epochs 2 \
    --run-dir "$tmp/run" > "$tmp/log" 2>&1 || rc=$?
  read -r _ _ _ _ _ nf < "$tmp/n" || nf=0
  injected=$((injected + nf))
  check_run "$tmp/run" "$kind" "$rc" "$tmp/log" || {
    lost=$((lost + 1))
    echo "faults: $kind ($*): $(cat "$tmp/why")" >&2
  }
}

for kind in enospc eio short; do
  for ((k = 1; k <= nwrites; k += step)); do faulted "$kind" GROVE_FAULT_KIND=$kind GROVE_FAULT_WRITE=$k; done
done
for ((k = 1; k <= nfsyncs; k++)); do faulted fsync GROVE_FAULT_FSYNC=$k; done

# vae sample: its PNG replaces the old one whole, or not at all
sample_cases=0
for kind in enospc eio short; do
  for k in 1 2; do
    cp "$tmp/ref/samples.png" "$tmp/old.png"
    rc=0
    GROVE_FAULT_KIND=$kind GROVE_FAULT_WRITE=$k GROVE_FAULT_LOG="$tmp/n" LD_PRELOAD="$so" \
      "$vae" sample --run-dir "$tmp/ref" --class 7 --n 4 --out "$tmp/old.png" > "$tmp/log" 2>&1 || rc=$?
    read -r nw _ _ _ _ nf < "$tmp/n" || nf=0
    injected=$((injected + nf)) sample_cases=$((sample_cases + 1))
    [ "$rc" -lt 128 ] || fail "sample, $kind at write $k: signal $((rc - 128))"
    if [ "$nf" -eq 0 ] || [ "$kind" = short ]; then
      [ "$rc" -eq 0 ] || fail "sample, $kind at write $k: exit $rc"
    else
      [ "$rc" -ne 0 ] && grep -q "^vae: " "$tmp/log" || fail "sample, $kind at write $k: no error reported"
      cmp -s "$tmp/ref/samples.png" "$tmp/old.png" || { lost=$((lost + 1)); echo "faults: sample: the old PNG changed" >&2; }
    fi
    ! find "$tmp" -maxdepth 1 -name '*.tmp*' | grep -q . || { lost=$((lost + 1)); echo "faults: sample left a temporary" >&2; }
  done
done

echo "faults: resuming makes $nwrites writes and $nfsyncs fsyncs; $cases faulted training runs" \
     "(ENOSPC, EIO, short write at every ${step}th write; EIO at every fsync) and $sample_cases" \
     "faulted samplings: faults injected: $injected, data lost: $lost"
[ "$lost" -eq 0 ]
