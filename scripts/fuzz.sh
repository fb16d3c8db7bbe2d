#!/usr/bin/env bash
# Fuzz with libFuzzer. The targets (tests/fuzz/<target>.c), each run from a
# copy of its committed seed corpus (tests/fuzz/corpus*/):
#   fuzz_safetensors   the safetensors reader
#   fuzz_idx           the IDX reader, plain and gzip
#   fuzz_flax_msgpack  the Flax msgpack reader
#   fuzz_graphs        the compiler: random graphs compiled and compared with the reference
#   fuzz_json          the strict JSON scanner (safetensors headers, structure, config.json)
#   fuzz_bert_config   config.json and tokenizer_config.json of a Hugging Face BERT directory
#   fuzz_tokenizer     vocab.txt, and the BERT tokenizer and encoder on any text
#   fuzz_cli           the command-line parsers of the apps
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 s)
# Named targets run SECONDS each. With none named (every target, as the test
# command runs it) the first four run SECONDS each and the four parser
# targets, whose inputs are small and whose coverage levels off within
# seconds, SECONDS/7 each, rounded up (5 s of scripts/test.sh's 35): 20 s
# more than the first four alone took.
#   FUZZ_RUNS=N  N executions per target instead of a time; fuzz_graphs
#                (~90 executions/s) still runs SECONDS (scripts/fuzz-long.sh)
#   FUZZ_CAP_SECONDS=S  with FUZZ_RUNS: stop a target after S seconds even
#                if it has not made N executions yet
#   FUZZ_OUT=DIR where the corpora, logs and crash inputs go (default build-fuzz)
# Builds grove with clang + ASan/UBSan + fuzzer instrumentation in build-fuzz/,
# and prints one line per target with its executions and coverage. Exits
# non-zero when a fuzzer failed (a crash, a leak, a mismatch) or ran no input,
# after running the others; crash inputs are left in $FUZZ_OUT/artifacts/,
# the full logs in $FUZZ_OUT/<target>.log.
set -euo pipefail
SECONDS_TO_RUN="${1:-60}"
shift || true
TARGETS=("$@")
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build-fuzz"
OUT="${FUZZ_OUT:-$BUILD}"
RUNS="${FUZZ_RUNS:-}"
CAP="${FUZZ_CAP_SECONDS:-}"
SHORT_SECONDS=$(( (SECONDS_TO_RUN + 6) / 7 ))
CC="${CC:-$(command -v clang-14 || command -v clang)}"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$CC" \
  -DGROVE_BUILD_TESTS=OFF -DGROVE_BUILD_APPS=OFF \
  -DCMAKE_C_FLAGS="$SAN -fsanitize=fuzzer-no-link" >/dev/null
ninja -C "$BUILD" grove_static >/dev/null
mkdir -p "$OUT/artifacts"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# clang's OpenMP runtime spins 200 ms after each parallel region by default:
# on two cores that starves the next kernel
export KMP_BLOCKTIME=0
wanted() { [ ${#TARGETS[@]} -eq 0 ] || [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
FAILED=()
# fuzz <target> <short|long|slow> <corpus dir> <libgrove.a> [more sources and flags...]
#   long: SECONDS in the test command; short: SECONDS/7 there; slow: SECONDS
#   even under FUZZ_RUNS. Extra libFuzzer flags of a target: FLAGS_<target>.
fuzz() {
  local target=$1 kind=$2 seeds=$3 lib=$4
  shift 4
  wanted "$target" || return 0
  "$CC" $SAN -fsanitize=fuzzer -I"$ROOT/include" -I"$ROOT/src" -I"$ROOT/tests/compile" \
    "$ROOT/tests/fuzz/$target.c" "$@" "$lib" \
    $(pkg-config --libs json-c libpng zlib msgpack libutf8proc) -fopenmp \
    -L/usr/lib/$(gcc -dumpmachine)/openblas-openmp -lopenblas -lm -o "$BUILD/$target"
  mkdir -p "$OUT/corpus-$target"
  cp -n "$seeds"/* "$OUT/corpus-$target/" 2>/dev/null || true
  local log="$OUT/$target.log" rc=0 limit extra="FLAGS_$target"
  if [ -n "$RUNS" ] && [ "$kind" != slow ]; then
    limit="-runs=$RUNS${CAP:+ -max_total_time=$CAP}"
  elif [ ${#TARGETS[@]} -eq 0 ] && [ "$kind" = short ]; then
    limit="-max_total_time=$SHORT_SECONDS"
  else
    limit="-max_total_time=$SECONDS_TO_RUN"
  fi
  echo "fuzz: $target (${limit#-})"
  # shellcheck disable=SC2086
  "$BUILD/$target" "$OUT/corpus-$target" -seed=1 $limit -max_len=65536 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 ${!extra:-} \
    -artifact_prefix="$OUT/artifacts/$target-" >"$log" 2>&1 || rc=$?
  # the fuzzer's own verdict, then its counts (never a grep of the output as the verdict)
  local runs cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target FAILED (libFuzzer exit status $rc); log in $log" >&2
    FAILED+=("$target")
    return 0
  fi
  if [ -z "$runs" ] || [ "$runs" -eq 0 ]; then
    echo "fuzz: $target ran no inputs; log in $log" >&2
    FAILED+=("$target")
    return 0
  fi
  echo "fuzz: $target: $runs executions, coverage ${cov:-?} edges, no failure"
}
fuzz fuzz_safetensors long "$ROOT/tests/fuzz/corpus" "$BUILD/libgrove.a"
fuzz fuzz_idx long "$ROOT/tests/fuzz/corpus_idx" "$BUILD/libgrove.a"
# Trees larger than 4 KB reach no code that smaller ones do not (the chunked
# form starts at 2^30 bytes), and with -max_len=65536 its inputs grew to tens
# of KB and its speed fell from ~45,000 to ~1,000 executions/s.
FLAGS_fuzz_flax_msgpack="-max_len=4096"
fuzz fuzz_flax_msgpack long "$ROOT/tests/fuzz/corpus_msgpack" "$BUILD/libgrove.a"
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
fuzz fuzz_graphs slow "$ROOT/tests/fuzz/corpus_graphs" "$BUILD/edges/libgrove.a" \
  "$ROOT/tests/compile/graph_gen.c"
fuzz fuzz_json short "$ROOT/tests/fuzz/corpus_json" "$BUILD/libgrove.a"
fuzz fuzz_bert_config short "$ROOT/tests/fuzz/corpus_bert_config" "$BUILD/libgrove.a"
fuzz fuzz_tokenizer short "$ROOT/tests/fuzz/corpus_tokenizer" "$BUILD/libgrove.a"
# the parsers print their usage and messages: to /dev/null (libFuzzer keeps its own stderr)
FLAGS_fuzz_cli="-close_fd_mask=3"
fuzz fuzz_cli short "$ROOT/tests/fuzz/corpus_cli" "$BUILD/libgrove.a" -I"$ROOT/apps" \
  "$ROOT/apps/vae/cli.c" "$ROOT/apps/classifier/cli.c" "$ROOT/apps/conv_classifier/cli.c" \
  "$ROOT/apps/bert_finetune/cli.c"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${FAILED[*]}" >&2
  exit 1
fi
