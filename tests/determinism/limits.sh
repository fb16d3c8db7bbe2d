#!/usr/bin/env bash
# Resource limits: under an address-space limit (ulimit -v), the vae must
# fail cleanly when memory runs out: a non-zero exit below 128 (no signal),
# a message that says memory ran out and names the file, and nothing
# half-written (an earlier checkpoint intact, no *.tmp-* temporaries).
#
#   limits.sh dataset|restore|save <vae> <ckpt_compare>
#
#   dataset  the training images are a sparse IDX file twice the limit
#   restore  the checkpoint to resume from holds a sparse tensor twice the limit
#   save     the first checkpoint save of a run cannot allocate: a fresh run
#            (the snapshot of the state fails) and a resumed one (the
#            background write fails), at limits a little above what
#            training itself needs; where a save succeeds instead, its
#            checkpoint must equal the unconstrained run's
#
# The limits are measured, not guessed: a calibration run trains without a
# limit and its VmSize while it trains (after the first step, before its
# first save) is the base. Below that base the test never goes: OpenBLAS
# 0.3.21 allocates a 128 MB buffer at the first GEMM of a thread and retries
# a failed allocation forever (OpenBLAS issue 5289, fixed in 0.3.30), a hang
# no caller can turn into an error. A watchdog (SIGKILL after 60 s) turns a
# hang into a failure of this test.
#
# MNIST from $GROVE_MNIST_DIR; exit 77 (skipped) without it, and in
# sanitizer builds (GROVE_SANITIZE set: AddressSanitizer reserves terabytes
# of address space for its shadow memory, so no ulimit -v can apply).
set -euo pipefail
mode=$1 vae=$2 cmp=$3
if [ -n "${GROVE_SANITIZE:-}" ]; then
  echo "skipped: AddressSanitizer reserves terabytes of address space; ulimit -v cannot apply"
  exit 77
fi
mnist=${GROVE_MNIST_DIR:-}
if [ -z "$mnist" ] || [ ! -e "$mnist/train-images-idx3-ubyte" ]; then
  echo "skipped: no MNIST (GROVE_MNIST_DIR='$mnist'; scripts/fetch-mnist.sh prints the directory)"
  exit 77
fi
dir=$(mktemp -d /tmp/grove-limits-XXXXXX)
cal_pid=
trap '[ -z "$cal_pid" ] || kill -9 "$cal_pid" 2>/dev/null; rm -rf "$dir"' EXIT

fail() {
  echo "limits $mode: $*" >&2
  exit 1
}
# 400 steps per epoch, so that a run trains a while before its first save
args=(train --epochs 1 --train-limit 6400 --test-limit 100 --log-every 20)

# calibrate RUN_DIR: VmSize (KB) of an unconstrained run of the vae in
# RUN_DIR (resumed if it holds checkpoints) once it has trained 40 steps
calibrate() {
  local out=$dir/calibrate.out kb=
  "$vae" "${args[@]}" --data-dir "$mnist" --run-dir "$1" >"$out" 2>&1 &
  cal_pid=$!
  for _ in $(seq 1 1200); do
    grep -q " step 40 " "$out" && break
    kill -0 "$cal_pid" 2>/dev/null || break
    sleep 0.05
  done
  grep -q " step 40 " "$out" && kb=$(awk '/^VmSize:/ {print $2}' "/proc/$cal_pid/status")
  kill -9 "$cal_pid" 2>/dev/null || true
  wait "$cal_pid" 2>/dev/null || true
  cal_pid=
  [ -n "$kb" ] || { cat "$out" >&2; fail "the calibration run did not reach step 40"; }
  echo "$kb"
}

# limited KB OUT ARGS...: the vae under ulimit -v KB, stdout+stderr in OUT;
# prints the exit code. A signal (a crash, or the watchdog's SIGKILL) fails.
limited() {
  local kb=$1 out=$2 rc=0
  shift 2
  (ulimit -v "$kb" && exec timeout -s KILL 60 "$vae" "$@") >"$out" 2>&1 || rc=$?
  if [ "$rc" -ge 128 ]; then
    cat "$out" >&2
    fail "ulimit -v $kb: killed by signal $((rc - 128))$([ "$rc" -eq 137 ] &&
      echo " (the 60 s watchdog: a hang, e.g. in OpenBLAS's buffer allocation)")"
  fi
  echo "$rc"
}

# clean_failure OUT NAME: the message says memory ran out and names NAME
clean_failure() {
  grep -qiE "out of memory|cannot allocate memory" "$1" || { cat "$1" >&2; fail "no 'out of memory' in the message"; }
  grep -qF "$2" "$1" || { cat "$1" >&2; fail "the message does not name '$2'"; }
}

# no_temporaries DIR: nothing half-written is left
no_temporaries() {
  local left
  left=$(find "$1" -name '*.tmp-*' | head -5)
  [ -z "$left" ] || fail "temporaries left behind: $left"
}

u64le() {  # the 8 bytes of $1, little-endian (a safetensors header length)
  local s="" i
  for i in 0 1 2 3 4 5 6 7; do s+=$(printf '\\x%02x' $((($1 >> (8 * i)) & 255))); done
  printf "%b" "$s"
}
u32be() {  # the 4 bytes of $1, big-endian (an IDX dimension)
  local s="" i
  for i in 3 2 1 0; do s+=$(printf '\\x%02x' $((($1 >> (8 * i)) & 255))); done
  printf "%b" "$s"
}

case $mode in
dataset)
  base=$(calibrate "$dir/cal")
  limit=$((base + 65536))
  # train-images: 2 x limit KB of 28x28 images, all zeros (sparse: no disk)
  data=$dir/data
  mkdir -p "$data"
  n=$((2 * limit * 1024 / 784))
  img=$data/train-images-idx3-ubyte lab=$data/train-labels-idx1-ubyte
  { printf '\x00\x00\x08\x03'; u32be "$n"; u32be 28; u32be 28; } >"$img"
  truncate -s $((16 + n * 784)) "$img"
  { printf '\x00\x00\x08\x01'; u32be "$n"; } >"$lab"
  truncate -s $((8 + n)) "$lab"
  ln -s "$mnist"/t10k-* "$data/"
  rc=$(limited "$limit" "$dir/out" "${args[@]}" --data-dir "$data" --run-dir "$dir/run")
  cat "$dir/out"
  [ "$rc" -ne 0 ] || fail "a $((n * 784 >> 20)) MB training set loaded under a $((limit / 1024)) MB limit"
  clean_failure "$dir/out" "$img"
  no_temporaries "$dir/run"
  [ -z "$(ls "$dir/run/checkpoints")" ] || fail "a checkpoint was written: $(ls "$dir/run/checkpoints")"
  echo "limits dataset: ulimit -v $limit: exit $rc, a clean failure naming the file"
  ;;
restore)
  "$vae" "${args[@]}" --data-dir "$mnist" --run-dir "$dir/run" --max-steps 1 >"$dir/first.out" 2>&1 ||
    { cat "$dir/first.out" >&2; fail "the first run failed"; }
  base=$(calibrate "$dir/cal")
  limit=$((base + 65536))
  # the step to resume from: its meta as written, its state a plain
  # safetensors file holding one float32 tensor of 2 x limit KB (sparse)
  state=$dir/run/checkpoints/1/state.safetensors
  elems=$((2 * limit * 256))
  hdr=$(printf '{"params/x":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}' "$elems" $((4 * elems)))
  while ((${#hdr} % 8)); do hdr+=" "; done
  { u64le ${#hdr}; printf '%s' "$hdr"; } >"$state"
  truncate -s $((8 + ${#hdr} + 4 * elems)) "$state"
  size=$(stat -c %s "$state")
  cp "$dir/run/checkpoints/1/meta.safetensors" "$dir/meta.before"
  rc=$(limited "$limit" "$dir/out" "${args[@]}" --data-dir "$mnist" --run-dir "$dir/run" --max-steps 1)
  cat "$dir/out"
  [ "$rc" -ne 0 ] || fail "a $((4 * elems >> 20)) MB checkpoint restored under a $((limit / 1024)) MB limit"
  clean_failure "$dir/out" "$state"
  no_temporaries "$dir/run"
  [ "$(ls "$dir/run/checkpoints")" = 1 ] || fail "steps on disk: $(ls "$dir/run/checkpoints")"
  [ "$(stat -c %s "$state")" = "$size" ] && cmp -s "$dir/meta.before" "$dir/run/checkpoints/1/meta.safetensors" ||
    fail "checkpoint 1 changed"
  echo "limits restore: ulimit -v $limit: exit $rc, a clean failure naming the file"
  ;;
save)
  # the unconstrained runs every probe is compared with: step 1, and a run
  # resumed from it to step 2
  "$vae" "${args[@]}" --data-dir "$mnist" --run-dir "$dir/ref" --max-steps 1 >"$dir/ref1.out" 2>&1 ||
    { cat "$dir/ref1.out" >&2; fail "the reference run failed"; }
  cp -r "$dir/ref" "$dir/base"   # step 1, to resume from
  "$vae" "${args[@]}" --data-dir "$mnist" --run-dir "$dir/ref" --max-steps 1 >"$dir/ref2.out" 2>&1 ||
    { cat "$dir/ref2.out" >&2; fail "the resumed reference run failed"; }
  state_kb=$(($(stat -c %s "$dir/base/checkpoints/1/state.safetensors") / 1024))
  fresh_base=$(calibrate "$dir/cal-fresh")
  cp -r "$dir/base" "$dir/cal-resumed"
  resumed_base=$(calibrate "$dir/cal-resumed")
  echo "VmSize while training: $fresh_base KB (fresh), $resumed_base KB (resumed); the state is $state_kb KB"
  save_failures=0
  for kind in fresh resumed; do
    base=$([ $kind = fresh ] && echo "$fresh_base" || echo "$resumed_base")
    step=$([ $kind = fresh ] && echo 1 || echo 2)
    kind_failures=0
    for eighths in 1 2 4 8 16 24; do  # base + the state x 1/8 .. 3
      limit=$((base + state_kb * eighths / 8))
      run=$dir/$kind-$eighths
      if [ $kind = resumed ]; then cp -r "$dir/base" "$run"; fi
      rc=$(limited "$limit" "$dir/out" "${args[@]}" --data-dir "$mnist" --run-dir "$run" --max-steps 1)
      no_temporaries "$run"
      if [ "$rc" -eq 0 ]; then
        "$cmp" "$run/checkpoints/$step" "$dir/ref/checkpoints/$step" >"$dir/cmp" 2>&1 ||
          { cat "$dir/cmp" >&2; fail "$kind, ulimit -v $limit: saved a checkpoint unlike the unconstrained run's"; }
        echo "$kind, ulimit -v $limit: saved step $step, identical to the unconstrained run's"
        continue
      fi
      clean_failure "$dir/out" "$run/checkpoints"
      [ ! -e "$run/checkpoints/$step" ] || fail "$kind, ulimit -v $limit: step $step exists after a failed save"
      if [ $kind = resumed ]; then
        "$cmp" "$run/checkpoints/1" "$dir/base/checkpoints/1" >"$dir/cmp" 2>&1 ||
          { cat "$dir/cmp" >&2; fail "resumed, ulimit -v $limit: checkpoint 1 changed"; }
      fi
      grep -q "checkpoint" "$dir/out" && kind_failures=$((kind_failures + 1))
      echo "$kind, ulimit -v $limit: exit $rc: $(grep '^vae: ' "$dir/out" | head -1)"
    done
    [ $kind_failures -gt 0 ] || fail "$kind: no probe made the save fail (limits $base + up to 3 x $state_kb KB)"
    save_failures=$((save_failures + kind_failures))
  done
  echo "limits save: $save_failures clean save failures, nothing half-written"
  ;;
*)
  echo "limits.sh: unknown mode '$mode'" >&2
  exit 2
  ;;
esac
