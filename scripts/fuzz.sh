#!/usr/bin/env bash
# Fuzz with libFuzzer: the safetensors reader (tests/fuzz/fuzz_safetensors.c),
# the IDX reader (tests/fuzz/fuzz_idx.c), the Flax msgpack reader
# (tests/fuzz/fuzz_flax_msgpack.c) and the compiler (tests/fuzz/
# fuzz_graphs.c: random graphs compiled and compared with the reference).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 s per target, all targets)
# Builds grove with clang + ASan/UBSan + fuzzer instrumentation in build-fuzz/,
# runs each target from a copy of its committed seed corpus (tests/fuzz/corpus*/),
# and prints one line per target with its executions and coverage. Exits
# non-zero when a fuzzer fails (a crash, a leak, a mismatch) or ran no input;
# crash inputs are left in build-fuzz/artifacts/, the full logs in build-fuzz/*.log.
set -euo pipefail
SECONDS_TO_RUN="${1:-60}"
shift || true
TARGETS=("$@")
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build-fuzz"
CC="${CC:-$(command -v clang-14 || command -v clang)}"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$CC" \
  -DGROVE_BUILD_TESTS=OFF -DGROVE_BUILD_APPS=OFF \
  -DCMAKE_C_FLAGS="$SAN -fsanitize=fuzzer-no-link" >/dev/null
ninja -C "$BUILD" grove_static >/dev/null
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# clang's OpenMP runtime spins 200 ms after each parallel region by default:
# on two cores that starves the next kernel
export KMP_BLOCKTIME=0
wanted() { [ ${#TARGETS[@]} -eq 0 ] || [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
# fuzz <target> <corpus dir> <libgrove.a> [more sources...]
fuzz() {
  local target=$1 seeds=$2 lib=$3
  shift 3
  wanted "$target" || return 0
  "$CC" $SAN -fsanitize=fuzzer -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/tests/compile" \
    "$ROOT/tests/fuzz/$target.c" "$@" "$lib" \
    $(pkg-config --libs json-c libpng zlib msgpack) -fopenmp \
    -L/usr/lib/$(gcc -dumpmachine)/openblas-openmp -lopenblas -lm -o "$BUILD/$target"
  mkdir -p "$BUILD/corpus-$target" "$BUILD/artifacts"
  cp -n "$seeds"/* "$BUILD/corpus-$target/" 2>/dev/null || true
  local log="$BUILD/$target.log" rc=0
  echo "fuzz: $target for $SECONDS_TO_RUN s"
  "$BUILD/$target" "$BUILD/corpus-$target" -seed=1 -max_total_time="$SECONDS_TO_RUN" -max_len=65536 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$target-" >"$log" 2>&1 || rc=$?
  # the fuzzer's own verdict, then its counts (never a grep of the output as the verdict)
  local runs cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target FAILED (libFuzzer exit status $rc); log in $log" >&2
    return 1
  fi
  if [ -z "$runs" ] || [ "$runs" -eq 0 ]; then
    echo "fuzz: $target ran no inputs; log in $log" >&2
    return 1
  fi
  echo "fuzz: $target: $runs executions, coverage ${cov:-?} edges, no failure"
}
fuzz fuzz_safetensors "$ROOT/tests/fuzz/corpus" "$BUILD/libgrove.a"
fuzz fuzz_idx "$ROOT/tests/fuzz/corpus_idx" "$BUILD/libgrove.a"
fuzz fuzz_flax_msgpack "$ROOT/tests/fuzz/corpus_msgpack" "$BUILD/libgrove.a"
# The graph target's bytes reach grove only through the decoder
# (tests/compile/graph_gen.c), so comparisons inside grove give the fuzzer
# nothing to steer by, and tracing them made the runs ~4x slower: that
# target links a grove built with edge coverage only.
if wanted fuzz_graphs; then
  cmake -S "$ROOT" -B "$BUILD/edges" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$CC" \
    -DGROVE_BUILD_TESTS=OFF -DGROVE_BUILD_APPS=OFF \
    -DCMAKE_C_FLAGS="$SAN -fsanitize=fuzzer-no-link -fno-sanitize-coverage=trace-cmp" >/dev/null
  ninja -C "$BUILD/edges" grove_static >/dev/null
fi
fuzz fuzz_graphs "$ROOT/tests/fuzz/corpus_graphs" "$BUILD/edges/libgrove.a" \
  "$ROOT/tests/compile/graph_gen.c"
