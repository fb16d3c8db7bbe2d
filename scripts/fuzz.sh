#!/usr/bin/env bash
# Fuzz the file readers with libFuzzer: safetensors checkpoints
# (tests/fuzz/fuzz_safetensors.c) and IDX datasets (tests/fuzz/fuzz_idx.c).
#   bash scripts/fuzz.sh [SECONDS]   (default 60, per target)
# Builds grove with clang + ASan/UBSan + fuzzer instrumentation in build-fuzz/,
# runs each target from a copy of its committed seed corpus (tests/fuzz/corpus/,
# tests/fuzz/corpus_idx/), and exits non-zero on any crash; crash inputs are
# left in build-fuzz/artifacts/.
set -euo pipefail
SECONDS_TO_RUN="${1:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build-fuzz"
CC="${CC:-$(command -v clang-14 || command -v clang)}"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$CC" \
  -DGROVE_BUILD_TESTS=OFF -DGROVE_BUILD_APPS=OFF \
  -DCMAKE_C_FLAGS="$SAN -fsanitize=fuzzer-no-link" >/dev/null
ninja -C "$BUILD" grove_static >/dev/null
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# fuzz <target> <corpus dir>
fuzz() {
  local target=$1 seeds=$2
  "$CC" $SAN -fsanitize=fuzzer -I"$ROOT/include" -I"$ROOT/src" \
    "$ROOT/tests/fuzz/$target.c" "$BUILD/libgrove.a" \
    $(pkg-config --libs json-c libpng zlib) -fopenmp \
    -L/usr/lib/$(gcc -dumpmachine)/openblas-openmp -lopenblas -lm -o "$BUILD/$target"
  mkdir -p "$BUILD/corpus-$target" "$BUILD/artifacts"
  cp -n "$seeds"/* "$BUILD/corpus-$target/" 2>/dev/null || true
  echo "fuzz: $target for $SECONDS_TO_RUN s"
  "$BUILD/$target" "$BUILD/corpus-$target" -seed=1 -max_total_time="$SECONDS_TO_RUN" -max_len=65536 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$target-"
}
fuzz fuzz_safetensors "$ROOT/tests/fuzz/corpus"
fuzz fuzz_idx "$ROOT/tests/fuzz/corpus_idx"
