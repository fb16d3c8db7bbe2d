#!/usr/bin/env bash
# SIGKILL at random moments of training (saves, resumes, evaluation, the
# samples and the plot included) and of sampling: nothing is lost.
#
#   kills.sh <vae> [KILLS]     (default 30)
#
# A reference run trains 3 epochs uninterrupted. Then a run is started on
# the same flags and SIGKILLed at a random moment of a whole run's
# duration, again and again, each time resumed from whatever the last one
# left, until a resume finishes; its run directory must then equal the
# reference's byte for byte (checkpoints, loss.svg, samples.png;
# metrics.jsonl line for line, the measured steps_per_s aside), with no
# temporary file left. Such cycles repeat until KILLS kills have landed. `vae sample` is killed the same way while it writes
# over an existing PNG: the file must always be the old one or the complete
# new one, and the next sampling removes the killed one's temporary.
set -euo pipefail
vae=$1 kills=${2:-30}
[ -d "${GROVE_MNIST_DIR:-}" ] || { echo "kills: SKIPPED: GROVE_MNIST_DIR is not set"; exit 77; }
tmp=$(mktemp -d /tmp/grove-kills-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "$0")/mnist_slice.sh"
mnist_slice "$GROVE_MNIST_DIR" "$tmp/mnist" 640 200
flags=(--data-dir "$tmp/mnist" --log-every 10 --epochs 3)
digest() {
  (cd "$1" && find . -type f ! -name metrics.jsonl | sort | xargs sha256sum
   sed 's/, "steps_per_s": [0-9.]*//' metrics.jsonl | sha256sum | sed 's/-$/metrics.jsonl/')
}
"$vae" train "${flags[@]}" --run-dir "$tmp/ref" > /dev/null
digest "$tmp/ref" > "$tmp/ref.sum"

# cycles: a fresh run killed and resumed until one resume finishes, then
# compared with the reference; until KILLS kills have landed
killed=0 cycles=0
t0=$(date +%s%N)
"$vae" train "${flags[@]}" --run-dir "$tmp/timing" > /dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 + 50 ))  # a whole run's duration: kills land anywhere in it
while [ "$killed" -lt "$kills" ]; do
  rm -rf "$tmp/run"
  cycles=$((cycles + 1))
  for ((i = 0; ; i++)); do
    "$vae" train "${flags[@]}" --run-dir "$tmp/run" > "$tmp/log" 2>&1 &
    pid=$!
    sleep "$(awk -v r=$((RANDOM % ms)) 'BEGIN { printf "%.3f", r / 1000 }')"
    kill -9 "$pid" 2>/dev/null && killed=$((killed + 1))
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    [ "$rc" -eq 0 ] && break
    if [ "$rc" -ne 137 ]; then
      echo "kills: a run ended with status $rc:" >&2
      cat "$tmp/log" >&2
      exit 1
    fi
  done
  if ! digest "$tmp/run" | cmp -s - "$tmp/ref.sum"; then
    echo "kills: after $killed kills the run differs from the uninterrupted one:" >&2
    diff <(digest "$tmp/run") "$tmp/ref.sum" >&2 || true
    exit 1
  fi
  if find "$tmp/run" -name '*.tmp*' | grep -q .; then
    echo "kills: temporaries left: $(find "$tmp/run" -name '*.tmp*')" >&2
    exit 1
  fi
done

# sampling over an existing PNG
"$vae" sample --run-dir "$tmp/ref" --class 1 --n 400 --out "$tmp/new.png" > /dev/null
"$vae" sample --run-dir "$tmp/ref" --class 2 --n 400 --out "$tmp/old.png" > /dev/null
cp "$tmp/old.png" "$tmp/keep.png"
skilled=0
for ((i = 0; i < kills; i++)); do
  cp "$tmp/keep.png" "$tmp/out.png"
  "$vae" sample --run-dir "$tmp/ref" --class 1 --n 400 --out "$tmp/out.png" > /dev/null 2>&1 &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 80)))"
  kill -9 "$pid" 2>/dev/null && skilled=$((skilled + 1))
  wait "$pid" 2>/dev/null || true
  cmp -s "$tmp/out.png" "$tmp/keep.png" || cmp -s "$tmp/out.png" "$tmp/new.png" ||
    { echo "kills: sampling killed: out.png is neither the old nor the new PNG" >&2; exit 1; }
done
"$vae" sample --run-dir "$tmp/ref" --class 1 --n 400 --out "$tmp/out.png" > /dev/null
cmp -s "$tmp/out.png" "$tmp/new.png" || { echo "kills: the last sampling's PNG is wrong" >&2; exit 1; }
if find "$tmp" -maxdepth 1 -name '*.tmp*' | grep -q .; then
  echo "kills: temporaries left beside the PNG: $(find "$tmp" -maxdepth 1 -name '*.tmp*')" >&2
  exit 1
fi
echo "kills: training killed $killed times in $cycles killed-and-resumed runs (a run takes ~$ms ms):" \
     "each equal to the uninterrupted run, no temporary left; sampling killed $skilled times:" \
     "the PNG always the old or the new one; data lost: 0"
