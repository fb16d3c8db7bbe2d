#!/usr/bin/env bash
# The full test suite: installs what is missing, then builds and runs every
# test twice, in an optimised build and in a debug build with
# AddressSanitizer + UndefinedBehaviorSanitizer. Both must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# the end-to-end tests train on slices of real MNIST
GROVE_MNIST_DIR=$(bash scripts/fetch-mnist.sh)
export GROVE_MNIST_DIR
# the BERT tests and the fine-tuning app read the pretrained MiniLM
GROVE_BERT_DIR=$(bash scripts/fetch-bert.sh)
GROVE_SENTIMENT_DIR=$(bash scripts/fetch-sentiment.sh)
export GROVE_BERT_DIR GROVE_SENTIMENT_DIR
# the interop tests run against the real JAX, Flax, Optax and transformers,
# pinned in a venv (PyPI); they are skipped, with a message, if it cannot be made
bash tests/golden/make-venv.sh ||
  echo "=== the reference venv could not be made: the interop_* tests will be skipped"

jobs=$(nproc 2>/dev/null || echo 2)
run() {  # run <build dir> <cmake args...>
  local dir=$1
  shift
  echo "=== $dir: configure and build"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "=== $dir: tests"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
}

run build/release -DCMAKE_BUILD_TYPE=Release -DGROVE_STATIC_APPS=ON -DGROVE_MPI=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run build/asan -DCMAKE_BUILD_TYPE=Debug -DGROVE_SANITIZE=ON -DGROVE_MPI=ON
echo "=== fuzz the safetensors, IDX and Flax msgpack readers and the compiler (bounded: 35 s each)"
bash scripts/fuzz.sh 35
echo "=== all tests passed in both builds, fuzzing found nothing"
