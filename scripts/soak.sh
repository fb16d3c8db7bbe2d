#!/usr/bin/env bash
# Soak: a long training run of each app, showing grove does not leak memory
# or file descriptors while it steps and checkpoints.
#   bash scripts/soak.sh [--minutes M] [--interval S] [--warmup S] [--bound-mib B]
#                        [--out DIR] [--build DIR] [--src DIR] [--no-build]
#                        [--apps "vae classifier"]
# Defaults: 30 minutes per app, a sample every 10 s, 60 s of warm-up, 2 MiB,
# /tmp/soak/<date>, build/h-soak (configured from --src, default this
# checkout, as Release and built; --no-build runs the binaries already there).
#
# Each app trains for M minutes and is then stopped by a signal:
# - vae (MNIST): `vae train --train-limit 16000 --epochs 1000000`: an epoch
#   is 1000 steps of batch 16, and train.c checkpoints at the end of every
#   epoch (async, max_to_keep 3, a ~5.7 MB safetensors state each), so a save
#   every 1-3 s; there is no time-based save flag. SIGINT at the end: the app
#   saves where it is and exits 130, which is the expected exit here.
# - classifier (Fashion-MNIST): `classifier DIR 1000000` on the full training
#   set: an epoch is 468 steps of batch 128, then an eval on the 10,000 test
#   images and a synchronous save (max_to_keep 2, best by accuracy). It has
#   no signal handler: SIGTERM ends it (exit 143, expected).
# Every S seconds /proc/<pid>/status (VmRSS, VmHWM, Threads), the entries of
# /proc/<pid>/fd and the minor page faults (/proc/<pid>/stat) go to
# OUT/<app>.csv, with the steps and checkpoints done so far; the app's own
# output is OUT/<app>.log.
#
# Pass/fail, per app, on the samples after the warm-up:
# - RSS: the median of the last 2 minutes minus the median of the first 2
#   minutes after the warm-up must be at most B MiB. Medians, because a save
#   in flight holds a snapshot of the state (up to 2 queued, ~5.7 MB each
#   for vae) that a single sample may catch. 2 MiB over a 25-30 minute run
#   is 1.7e5 (vae with the CPU shared) to 1e6 steps: any malloc per step that
#   is never freed (>= 32 bytes with glibc) passes it, and so do >= 12 KiB
#   lost per vae checkpoint (~170-300 of them) or >= 3 KiB per classifier
#   checkpoint (~700). Smaller losses are scripts/memcheck.sh's job; RSS
#   itself is flat to the KiB once warm (see the curve), so 2 MiB is no
#   noise margin but a leak's.
# - fds: the fewest open in the last 2 minutes must not exceed the fewest in
#   the first 2 minutes after the warm-up (a save in flight holds a file
#   open for a moment, so the floor, not every sample, is compared).
# Arena growth: the train step runs from one arena sized at compile time
# (gv_plan_stats.arena_bytes, printed by vae at start and repeated here), so
# it cannot grow; allocations per step are counted by tests/testutil/
# alloc_count (test_plan, test_train_step, test_vae_model assert 0) and by
# bench/vae_vs_torch (allocs/step). Here RSS, and minor page faults per step
# (an arena reused in place faults no pages in again), are the measure.
# Exits 0 when every app passed, 1 when one leaked or stopped early, 2 on a
# bad command line.
# The whole script is one { } block, read before it runs: editing this file
# during a 50-minute run does not change the run.
{
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MINUTES=30 INTERVAL=10 WARMUP=60 BOUND_MIB=2 WINDOW=120
OUT="/tmp/soak/$(date +%Y%m%d-%H%M%S)"
BUILD="$ROOT/build/h-soak"
SRC="$ROOT" BUILD_IT=1
APPS="vae classifier"
MNIST_DIR="${MNIST_DIR:-$HOME/.cache/grove/mnist}"
VAE_TRAIN_LIMIT=16000 CLASSIFIER_N=60000

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --interval) INTERVAL="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --bound-mib) BOUND_MIB="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --src) SRC="$2"; shift 2 ;;
    --no-build) BUILD_IT=0; shift ;;
    --apps) APPS="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "soak.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
for v in "$MINUTES" "$INTERVAL" "$WARMUP"; do
  [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "soak.sh: '$v' is not a number" >&2; exit 2; }
done
# the window of each median: 2 minutes, shorter on a short run
DURATION=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
if [ $((DURATION - ${WARMUP%.*})) -lt $((2 * WINDOW)) ]; then WINDOW=$(((DURATION - ${WARMUP%.*}) / 2)); fi
[ "$WINDOW" -ge "${INTERVAL%.*}" ] || { echo "soak.sh: --minutes too short for the warm-up and two windows" >&2; exit 2; }

if [ "$BUILD_IT" = 1 ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$BUILD" -j2 --target vae classifier | grep -v '^\[' || true
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "soak.sh: building vae and classifier in $BUILD failed" >&2; exit 1; }
fi
for b in vae classifier; do
  [ -x "$BUILD/$b" ] || { echo "soak.sh: no $BUILD/$b" >&2; exit 1; }
done
mkdir -p "$OUT"
echo "soak: $MINUTES min per app, a sample every $INTERVAL s, warm-up $WARMUP s, RSS bound $BOUND_MIB MiB; output in $OUT"

# one sample of pid: "rss_kib hwm_kib threads fds minflt", or nothing if it is gone
sample() {
  local pid=$1 st stat fds
  st=$(cat "/proc/$pid/status" 2>/dev/null) || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  # minflt is field 10 of stat; the fields after "(comm) " start at 3
  awk -v fds="$fds" -v stat="${stat##*) }" '
    /^VmRSS:/ { rss = $2 } /^VmHWM:/ { hwm = $2 } /^Threads:/ { thr = $2 }
    END { split(stat, f, " "); if (rss == "") exit 1; print rss, hwm, thr, fds, f[8] }' <<<"$st"
}

# progress of the app: "steps checkpoints" so far
progress() {
  local app=$1 dir=$2 log=$3
  case "$app" in
    vae) # metrics.jsonl is flushed per line: a line per 100 steps, one per epoch end (a save)
      awk '/"epoch_end"/ { c++ } { if (match($0, /"step": [0-9]+/)) s = substr($0, RSTART + 8, RLENGTH - 8) }
           END { print s + 0, c + 0 }' "$dir/metrics.jsonl" 2>/dev/null || echo "0 0" ;;
    classifier) # a line per epoch, each followed by its save (stdout is line-buffered)
      awk -v per=$((CLASSIFIER_N / 128)) '/^epoch [0-9]+:/ { c++ } END { print c * per, c + 0 }' "$log" ;;
  esac
}

# the summary of one CSV; prints the report, exits 1 if the app leaked
summarise() {
  awk -F, -v warm="$WARMUP" -v win="$WINDOW" -v bound="$BOUND_MIB" -v app="$1" -v arena="$2" '
    function median(a, n,   i, j, t, b) {
      for (i = 1; i <= n; i++) b[i] = a[i]
      for (i = 2; i <= n; i++) for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
      return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
    }
    function mib(k) { return sprintf("%.1f", k / 1024) }
    NR == 1 { next }
    { n++; t[n] = $1; rss[n] = $2; hwm[n] = $3; thr[n] = $4; fd[n] = $5; flt[n] = $6; steps[n] = $7; ck[n] = $8 }
    END {
      if (n == 0) { print app ": no samples"; exit 1 }
      for (i = 1; i <= n; i++) if (t[i] >= warm) { p[++m] = i }
      if (m < 2) { print app ": too few samples after the warm-up"; exit 1 }
      t0 = t[p[1]]; t1 = t[p[m]]
      for (k = 1; k <= m; k++) {
        i = p[k]
        if (t[i] < t0 + win) { first[++nf] = rss[i]; ffd[nf] = fd[i] }
        if (t[i] > t1 - win) { last[++nl] = rss[i]; lfd[nl] = fd[i] }
        sx += t[i]; sy += rss[i]; sxx += t[i] * t[i]; sxy += t[i] * rss[i]
      }
      slope = (m * sxy - sx * sy) / (m * sxx - sx * sx) # KiB/s
      rmax = 0; fmin = 1e9; fmax = 0; pfmin = 1e9; pfmax = 0; tmax = 0
      for (i = 1; i <= n; i++) {
        if (rss[i] > rmax) rmax = rss[i]
        if (fd[i] < fmin) fmin = fd[i]
        if (fd[i] > fmax) fmax = fd[i]
        if (thr[i] > tmax) tmax = thr[i]
      }
      for (k = 1; k <= m; k++) { i = p[k]; if (fd[i] < pfmin) pfmin = fd[i]; if (fd[i] > pfmax) pfmax = fd[i] }
      ff = 1e9; lf = 1e9
      for (k = 1; k <= nf; k++) if (ffd[k] < ff) ff = ffd[k]
      for (k = 1; k <= nl; k++) if (lfd[k] < lf) lf = lfd[k]
      m0 = median(first, nf); m1 = median(last, nl); growth = m1 - m0
      dsteps = steps[p[m]] - steps[p[1]]
      fps = dsteps > 0 ? (flt[p[m]] - flt[p[1]]) / dsteps : 0
      printf "%s: %d samples over %.0f s (%d after the %d s warm-up)\n", app, n, t[n], m, warm
      printf "  RSS after warm-up %s MiB (t=%d s), at the end %s MiB (t=%d s), max %s MiB, VmHWM %s MiB\n",
             mib(rss[p[1]]), t0, mib(rss[n]), t[n], mib(rmax), mib(hwm[n])
      printf "  RSS median of the first %d s after warm-up %s MiB, of the last %d s %s MiB: growth %+.2f MiB (bound %s MiB)\n",
             win, mib(m0), win, mib(m1), growth / 1024, bound
      printf "  RSS slope after warm-up %+.2f MiB/h (least squares over %d samples)\n", slope * 3600 / 1024, m
      printf "  fds: min %d max %d (after warm-up %d..%d; floor first window %d, last window %d); threads max %d\n",
             fmin, fmax, pfmin, pfmax, ff, lf, tmax
      printf "  steps %d, checkpoints %d (at the last sample); minor faults per step after warm-up %.4f%s\n",
             steps[n], ck[n], fps, arena != "" ? "; train-step arena " arena : ""
      printf "  RSS curve (MiB):"
      for (j = 0; j < 10; j++) { i = 1 + int(j * (n - 1) / 9 + 0.5); printf " %ds:%s", t[i], mib(rss[i]) }
      printf "\n"
      bad = 0
      if (growth > bound * 1024) { printf "  FAIL: RSS grew %.2f MiB after the warm-up (bound %s MiB)\n", growth / 1024, bound; bad = 1 }
      if (lf > ff) { printf "  FAIL: the fd floor grew from %d to %d\n", ff, lf; bad = 1 }
      if (!bad) printf "  PASS\n"
      exit bad
    }' "$OUT/$1.csv"
}

# soak one app; prints its summary; returns non-zero if it failed
soak() {
  local app=$1 dir="$OUT/$1-run" log="$OUT/$1.log" csv="$OUT/$1.csv" pid sig expect
  rm -rf "$dir"
  case "$app" in
    vae)
      [ -f "$MNIST_DIR/train-images-idx3-ubyte" ] || [ -f "$MNIST_DIR/train-images-idx3-ubyte.gz" ] ||
        { echo "soak: no MNIST in $MNIST_DIR (bash scripts/fetch-mnist.sh)" >&2; return 1; }
      "$BUILD/vae" train --run-dir "$dir" --data-dir "$MNIST_DIR" --train-limit "$VAE_TRAIN_LIMIT" \
        --epochs 1000000 >"$log" 2>&1 &
      pid=$! sig=INT expect=130 ;;
    classifier)
      mkdir -p "$dir"
      stdbuf -oL "$BUILD/classifier" "$dir" 1000000 "$CLASSIFIER_N" >"$log" 2>&1 &
      pid=$! sig=TERM expect=143 ;;
    *) echo "soak: unknown app '$app'" >&2; return 1 ;;
  esac
  echo "t_s,rss_kib,hwm_kib,threads,fds,minflt,steps,checkpoints" >"$csv"
  local start now t s early=0
  start=$(date +%s.%N)
  while :; do
    now=$(date +%s.%N)
    t=$(awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
    if ! s=$(sample "$pid"); then early=1; break; fi
    read -r steps ck <<<"$(progress "$app" "$dir" "$log")"
    echo "$t,${s// /,},$steps,$ck" >>"$csv"
    awk -v t="$t" -v d="$DURATION" 'BEGIN { exit !(t >= d) }' && break
    # sleep to the next multiple of INTERVAL, not INTERVAL after this sample
    sleep "$(awk -v a="$start" -v i="$INTERVAL" -v n="$(date +%s.%N)" -v t="$t" -v d="$DURATION" 'BEGIN {
      next_t = (int(t / i) + 1) * i; if (next_t > d) next_t = d; s = next_t - (n - a); print (s > 0 ? s : 0) }')"
  done
  local rc=0
  if [ "$early" = 1 ]; then
    wait "$pid" || rc=$?
    echo "$app: stopped by itself (exit $rc) before $MINUTES min; see $log" >&2
    tail -n 5 "$log" >&2
    return 1
  fi
  kill -"$sig" "$pid"
  wait "$pid" || rc=$?
  if [ "$rc" != "$expect" ]; then
    echo "$app: exit $rc after SIG$sig, expected $expect; see $log" >&2
    tail -n 5 "$log" >&2
    return 1
  fi
  local arena=""
  if [ "$app" = vae ]; then
    arena=$(sed -n 's/.*arena \([0-9.]* MB\).*/\1/p' "$log" | head -n 1)
    sed -n 's/^interrupted at step \([0-9]*\).*/  stopped at step \1 (SIGINT), checkpoint saved/p' "$log"
    echo "  checkpoints kept in $dir/checkpoints: $(ls "$dir/checkpoints" | tr '\n' ' ')"
  fi
  summarise "$app" "$arena"
}

status=0
for app in $APPS; do
  soak "$app" | tee "$OUT/$app.summary" || status=1
done
[ "$status" = 0 ] && echo "soak: PASS ($OUT)" || echo "soak: FAIL ($OUT)"
exit "$status"
}
