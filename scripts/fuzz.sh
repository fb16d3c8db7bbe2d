#!/usr/bin/env bash
# Fuzz the safetensors reader (tests/fuzz/fuzz_safetensors.c) with libFuzzer.
#   bash scripts/fuzz.sh [SECONDS]   (default 60)
# Builds grove with clang + ASan/UBSan + fuzzer instrumentation in build-fuzz/,
# runs from a copy of the committed seed corpus (tests/fuzz/corpus/), and
# exits non-zero on any crash; crash inputs are left in build-fuzz/artifacts/.
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
"$CC" $SAN -fsanitize=fuzzer -I"$ROOT/include" -I"$ROOT/src" \
  "$ROOT/tests/fuzz/fuzz_safetensors.c" "$BUILD/libgrove.a" \
  $(pkg-config --libs json-c zlib) -fopenmp \
  -L/usr/lib/$(gcc -dumpmachine)/openblas-openmp -lopenblas -lm -o "$BUILD/fuzz_safetensors"

mkdir -p "$BUILD/corpus" "$BUILD/artifacts"
cp -n "$ROOT"/tests/fuzz/corpus/* "$BUILD/corpus/" 2>/dev/null || true
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$BUILD/fuzz_safetensors" "$BUILD/corpus" -seed=1 -max_total_time="$SECONDS_TO_RUN" -max_len=65536 \
  -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$BUILD/artifacts/"
