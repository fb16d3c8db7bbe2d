#!/usr/bin/env bash
# The Fashion-MNIST classifier end to end on a slice: it learns, keeps the
# two best checkpoints by accuracy, a fresh process restores the best one
# and measures the accuracy it was saved with; bad arguments are refused.
#   classifier.sh <classifier>
set -euo pipefail
bin=$1
dir=$(mktemp -d /tmp/grove-classifier-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$bin" "$dir/run" 3 3000 >"$dir/out" 2>&1 || { cat "$dir/out" >&2; exit 1; }
cat "$dir/out"
# accuracies per epoch, and the best step
accs=$(sed -n 's/^epoch [0-9]*: .* test accuracy \([0-9.]*\)$/\1/p' "$dir/out")
test "$(echo "$accs" | wc -l)" -eq 3
best=$(echo "$accs" | sort -g | tail -1)
awk -v a="$best" 'BEGIN { exit !(a > 0.70) }' || { echo "best accuracy $best <= 0.70" >&2; exit 1; }
step=$(sed -n 's/^best step \([0-9]*\)$/\1/p' "$dir/out")
# max_to_keep = 2: two steps on disk, the best among them
test "$(ls "$dir/run" | grep -c '^[0-9]*$')" -eq 2
test -d "$dir/run/$step"
"$bin" "$dir/run" --restore >"$dir/restored" 2>&1 || { cat "$dir/restored" >&2; exit 1; }
cat "$dir/restored"
grep -qx "restored step $step: test accuracy $best" "$dir/restored"
# bad arguments: usage and exit 2, nothing written
for bad in "x" "0" "3 -5" "3 12abc" "3 100 extra"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" "$dir/bad" $bad >/dev/null 2>"$dir/err"
  rc=$?
  set -e
  test $rc -eq 2 || { echo "classifier DIR $bad: exit $rc, expected 2" >&2; exit 1; }
  grep -q usage "$dir/err"
  test ! -e "$dir/bad"
done
echo "classifier: ok"
