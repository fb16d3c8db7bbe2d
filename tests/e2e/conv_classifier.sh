#!/usr/bin/env bash
# The Fashion-MNIST CNN end to end on a slice (512 training images, 1
# epoch, 500 test images; short enough for the sanitizer build): it learns
# above chance (10%; BatchNorm's running averages, momentum 0.99, have seen
# only 4 steps, so the test accuracy stays low), checkpoints the state
# with its batch_stats, a fresh process restores it and gets the same test
# accuracy (which uses the running averages, so they must have been saved);
# bad arguments are refused with a message and nothing is written.
#   conv_classifier.sh <conv_classifier>
set -euo pipefail
bin=$1
dir=$(mktemp -d /tmp/grove-conv-classifier-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$bin" "$dir/run" 1 512 500 >"$dir/out" 2>&1 || { cat "$dir/out" >&2; exit 1; }
cat "$dir/out"
grep -q '^batch_stats ' "$dir/out"      # the gv_tabulate table lists the collection
acc=$(sed -n 's/^epoch 1: loss [0-9.]* train accuracy [0-9.]* test accuracy \([0-9.]*\)$/\1/p' "$dir/out")
test -n "$acc" || { echo "no test accuracy printed" >&2; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a > 0.2) }' || { echo "test accuracy $acc <= 0.2" >&2; exit 1; }
step=$(sed -n 's/^best step \([0-9]*\)$/\1/p' "$dir/out")
test "$step" -eq 4                      # 512 / 128 steps
test -d "$dir/run/$step"
"$bin" "$dir/run" --restore 500 >"$dir/restored" 2>&1 || { cat "$dir/restored" >&2; exit 1; }
cat "$dir/restored"
grep -qx "restored step $step: test accuracy $acc" "$dir/restored"
# bad arguments: a message naming the problem, the usage, exit 2, nothing written
for bad in "x" "0" "1 100" "1 12abc" "1 70000" "1 1024 0" "1 1024 100 extra" "--restore -1" \
           "--restore 5 6"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" "$dir/bad" $bad >/dev/null 2>"$dir/err"
  rc=$?
  set -e
  test $rc -eq 2 || { echo "conv_classifier DIR $bad: exit $rc, expected 2" >&2; exit 1; }
  grep -q usage "$dir/err"
  grep -q '^conv_classifier: ' "$dir/err" || { echo "DIR $bad: no message" >&2; exit 1; }
  test ! -e "$dir/bad"
done
echo "conv_classifier: ok"
