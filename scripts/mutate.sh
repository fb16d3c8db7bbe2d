#!/usr/bin/env bash
# Proves that the compiler's tests bite: applies single-point mutations to the
# fused kernels, the shared float maths and the planner, one at a time, to a
# copy of the tree; rebuilds; runs the compiler, op and autodiff tests; and
# reports which tests caught each mutation. Every mutation must be caught.
#   bash scripts/mutate.sh            (about 10 minutes on 2 cores)
#   bash scripts/mutate.sh 3 7        (only mutations 3 and 7)
# Works in build-mutate/ (a copy of the tracked files, as they are in the
# working tree, and its own build); the tree itself is never modified.
# The list is documented in docs/engine.md ("Mutations the tests catch").
# Needs python3 (the replacement step: an exact, unique match or it stops).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$ROOT/build-mutate"
SRC="$WORK/src"
BUILD="$WORK/build"
TESTS='test_compile_|test_graph_ops|test_autodiff_|test_optim_losses|test_nn_modules'

# id ~ file ~ exact text ~ replacement ~ what it breaks
MUTATIONS=$(cat <<'EOF'
1~src/graph/ew_math.h~X(GV_OP_RSQRT, 1.0f / sqrtf(x))~X(GV_OP_RSQRT, 2.0f / sqrtf(x))~rsqrt computes 2/sqrt(x) (float32, fused and reference alike)
2~src/graph/ew_math.h~(x + 0.044715f * x * x * x)~(x + 0.04471f * x * x * x)~GELU (tanh) constant changed (float32)
3~src/graph/ew_math.h~X(GV_OP_SOFTPLUS, log1pf(expf(-fabsf(x))) + (x > 0 ? x : 0.0f))~X(GV_OP_SOFTPLUS, log1pf(expf(-fabsf(x))) + (x > 1 ? x : 0.0f))~softplus takes the wrong branch for 0 < x <= 1 (float32)
4~src/compile/fused.c~for (int64_t b = 0; b < nblocks; b++) run_block(f, bases, scratch, regs, b * GV_FBLOCK);~for (int64_t b = 0; b < nblocks - 1; b++) run_block(f, bases, scratch, regs, b * GV_FBLOCK);~off by one in the block loop: the last block is skipped
5~src/compile/fused.c~int64_t nblocks = (f->size + GV_FBLOCK - 1) / GV_FBLOCK;~int64_t nblocks = f->size / GV_FBLOCK;~block count rounds down: a partial last block is dropped
6~src/compile/fused.c~for (int k = 0; k < f->nred; k++) { /* in domain order: the reference's order */~for (int k = 1; k < f->nred; k++) { /* in domain order: the reference's order */~a fused reduction epilogue is dropped
7~src/compile/fused.c~e->op == GV_OP_REDUCE_MAX ? -INFINITY : INFINITY;~e->op == GV_OP_REDUCE_MAX ? 0.0f : INFINITY;~the max epilogue starts from 0 instead of -inf
8~src/compile/fused.c~for (int64_t i = 0; i < n; i++) out[i] = (src[i] > out[i] || isnan(src[i])) ? src[i] : out[i];~for (int64_t i = 0; i < n; i++) out[i] = (src[i] > out[i]) ? src[i] : out[i];~max epilogue over consecutive outputs drops NaN
9~src/compile/fused.c~if (f->has_const[r]) {~if (f->has_const[r] && f->consts[r] == f->consts[r]) {~NaN constants skipped again (the old sentinel bug)
10~src/compile/fused.c~if (++j == l->period) j = 0;~if (++j == l->period - 1) j = 0;~periodic (broadcast) load wraps one element early
11~src/compile/fused.c~int64_t j = start / l->period, left = l->period - start % l->period;~int64_t j = start / l->period, left = l->period;~repeat (broadcast) load ignores the block's phase
12~src/compile/fused.c~D[i] = A[i] != 0.0f ? B[i] : C[i];~D[i] = A[i] != 0.0f ? C[i] : B[i];~select swaps its branches in fused code
13~src/compile/fused.c~if (threads > 1 && nblocks >= 64 && f->nred == 0) {~if (threads > 1 && nblocks >= 64) {~passes with reduction epilogues run threaded (racing on the outputs)
14~src/compile/plan.c~bool ok = last < v->def;~bool ok = last <= v->def;~a donated buffer is aliased one step too early (the old epilogue bug)
15~src/compile/plan.c~v->epi_group < 0 && same_shape(on, &g->nodes[p->steps[v->def].node]))~same_shape(on, &g->nodes[p->steps[v->def].node]))~donation allowed into a reduction epilogue's output
16~src/compile/plan.c~if ((n->op != GV_OP_FULL || b->is_out[i]) && !same_shape(n, &b->g->nodes[root[cg]]))~if ((n->op != GV_OP_FULL) && !same_shape(n, &b->g->nodes[root[cg]]))~a constant output joins a larger fused group (writes past its buffer)
17~src/compile/plan.c~for (int k = 0; k < n->nin && k < 3; k++) uniform = uniform && reg_uniform(f, ops[k]);~for (int k = 0; k < n->nin && k < 3; k++) uniform = uniform || reg_uniform(f, ops[k]);~an op with one uniform operand is treated as uniform (computed once per run)
18~src/graph/ew_math.h~X(GV_OP_SIGMOID, 1.0f / (1.0f + expf(-x)))~X(GV_OP_SIGMOID, 1.0f / (1.0f + expf(x)))~sigmoid sign flipped (float32)
EOF
)

wanted() { local id=$1; shift; [ $# -eq 0 ] && return 0; for w in "$@"; do [ "$w" = "$id" ] && return 0; done; return 1; }

echo "mutate: copying the tree to $SRC"
rm -rf "$SRC"
mkdir -p "$SRC"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$SRC")
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGROVE_BUILD_APPS=OFF >/dev/null

run_tests() {  # prints the names of the failing tests, one per line
  local log="$WORK/ctest.log"
  (cd "$BUILD" && ctest -R "$TESTS" -j2 --timeout 300 >"$log" 2>&1) || true
  sed -n 's/^[[:space:]]*[0-9]* - \(test_[a-z_]*\) (.*/\1/p' "$log"
}

echo "mutate: baseline build and tests"
ninja -C "$BUILD" >/dev/null
base=$(run_tests)
if [ -n "$base" ]; then
  echo "mutate: the unmutated tree already fails: $base" >&2
  exit 1
fi

caught=0 total=0 missed=()
printf '%-3s %-8s %s\n' id result "what (tests that caught it)"
while IFS='~' read -r id file old new what; do
  [ -n "$id" ] || continue
  wanted "$id" "$@" || continue
  total=$((total + 1))
  cp "$SRC/$file" "$WORK/saved"
  MUT_OLD="$old" MUT_NEW="$new" python3 - "$SRC/$file" <<'PY'
import os, sys
p = sys.argv[1]
s = open(p).read()
old, new = os.environ["MUT_OLD"], os.environ["MUT_NEW"]
n = s.count(old)
if n != 1:
    sys.exit(f"mutate: {p}: the text to mutate occurs {n} times, not once: {old}")
open(p, "w").write(s.replace(old, new))
PY
  if ! ninja -C "$BUILD" >"$WORK/build.log" 2>&1; then
    result="INVALID"; by="the mutated tree does not build: $WORK/build.log"
  else
    by=$(run_tests | tr '\n' ' ')
    if [ -n "$by" ]; then result="caught"; else result="MISSED"; fi
  fi
  cp "$WORK/saved" "$SRC/$file"
  touch "$SRC/$file"
  if [ "$result" = "caught" ]; then caught=$((caught + 1)); else missed+=("$id"); fi
  printf '%-3s %-8s %s (%s)\n' "$id" "$result" "$what" "${by:-none}"
done <<<"$MUTATIONS"

ninja -C "$BUILD" >/dev/null
echo "mutate: $caught of $total mutations caught"
if [ ${#missed[@]} -gt 0 ]; then
  echo "mutate: not caught: ${missed[*]}" >&2
  exit 1
fi
