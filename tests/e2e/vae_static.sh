#!/usr/bin/env bash
# vae-static is one self-contained binary: no shared library is needed (the
# dynamic section lists none), and it trains, checkpoints and samples.
#   vae_static.sh <vae-static> (MNIST from $GROVE_MNIST_DIR)
set -euo pipefail
bin=$1
if readelf -d "$bin" | grep -q NEEDED; then
  echo "vae_static: $bin needs shared libraries:" >&2
  readelf -d "$bin" | grep NEEDED >&2
  exit 1
fi
: "${GROVE_MNIST_DIR:?set GROVE_MNIST_DIR to the MNIST directory (scripts/fetch-mnist.sh)}"
dir=$(mktemp -d /tmp/grove-vae-static-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$bin" train --data-dir "$GROVE_MNIST_DIR" --run-dir "$dir/run" --epochs 1 --train-limit 320 \
  --test-limit 100 --log-every 10 >"$dir/out" 2>&1 || { cat "$dir/out" >&2; exit 1; }
grep -q "epoch 0 | step 20 | loss: " "$dir/out"
test -s "$dir/run/samples.png" && test -s "$dir/run/loss.svg" && test -d "$dir/run/checkpoints/20"
"$bin" sample --run-dir "$dir/run" --class 5 --n 4 >/dev/null
test -s "$dir/run/samples-class5.png"
echo "vae_static: static, trained 20 steps, checkpointed and sampled"
