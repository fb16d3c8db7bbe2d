#!/usr/bin/env bash
# Interop with the real JAX, Flax, Optax and transformers, both ways:
#   interop.sh jax-to-grove  <flax_resume>          JAX trains, saves; grove continues
#   interop.sh grove-to-flax <vae>                  grove trains; Flax decodes its params
#   interop.sh bert          <bert_msgpack_check>   HF flax_model.msgpack vs model.safetensors
# The reference stack is the pinned venv of tests/golden/make-venv.sh
# ($GROVE_VENV, default ~/.cache/grove/venv); without it (or without the
# data: $GROVE_MNIST_DIR, $GROVE_BERT_DIR) the case is skipped with a
# message (exit 77, which CTest reports as skipped).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
what=$1 bin=$2
py=${GROVE_VENV:-$HOME/.cache/grove/venv}/bin/python
skip() { echo "interop $what: SKIPPED: $*"; exit 77; }
[ -x "$py" ] || skip "no reference venv at $py (make it with: bash tests/golden/make-venv.sh)"
"$py" -c 'import jax, flax, optax, transformers' 2>/dev/null ||
  skip "$py cannot import jax, flax, optax and transformers (rerun tests/golden/make-venv.sh)"
dir=$(mktemp -d /tmp/grove-interop-XXXXXX)
trap 'rm -rf "$dir"' EXIT
export JAX_PLATFORMS=cpu PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}"
case $what in
  jax-to-grove)
    [ -d "${GROVE_MNIST_DIR:-}" ] || skip "GROVE_MNIST_DIR is not set (scripts/fetch-mnist.sh)"
    "$py" "$here/jax_train_vae.py" "$GROVE_MNIST_DIR" "$dir" --before 10 --after 20
    "$bin" "$GROVE_MNIST_DIR" "$dir" 10 20
    ;;
  grove-to-flax)
    [ -d "${GROVE_MNIST_DIR:-}" ] || skip "GROVE_MNIST_DIR is not set (scripts/fetch-mnist.sh)"
    # 300 steps of batch 16
    "$bin" train --data-dir "$GROVE_MNIST_DIR" --run-dir "$dir/run" --epochs 1 --train-limit 4800 \
      --test-limit 100 --log-every 100 > "$dir/train.log" || { cat "$dir/train.log"; exit 1; }
    "$bin" sample --run-dir "$dir/run" --out "$dir/samples.safetensors"
    "$py" "$here/flax_sample.py" "$dir/run" "$dir/samples.safetensors"
    ;;
  bert)
    [ -d "${GROVE_BERT_DIR:-}" ] || skip "GROVE_BERT_DIR is not set (scripts/fetch-bert.sh)"
    "$py" "$here/hf_flax_msgpack.py" "$GROVE_BERT_DIR" "$dir/flax" 2>&1 | tail -1
    "$bin" "$GROVE_BERT_DIR" "$dir/flax"
    ;;
  *) echo "interop.sh: unknown case '$what'" >&2; exit 2 ;;
esac
