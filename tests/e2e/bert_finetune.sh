#!/usr/bin/env bash
# bert_finetune end to end on a slice: the pretrained all-MiniLM-L6-v2
# (GROVE_BERT_DIR, scripts/fetch-bert.sh) with a new head, the backbone
# frozen, 320 training and 200 test sentences of the UCI sentiment data
# (GROVE_SENTIMENT_DIR, scripts/fetch-sentiment.sh), 2 epochs at lr 1e-2
# and 32 tokens (short enough for the sanitizer build), on one thread (ctest
# runs other tests beside it, and a 2-thread OpenMP plan sharing its cores
# with another process is several times slower). It must load the
# checkpoint with the report Hugging Face gives, learn (train and test
# accuracy up from the untrained head's), show every backbone update zero,
# save and restore the classifier identically; bad arguments and bad
# inputs are refused with a message naming them and nothing is written.
# Exit 77 (skipped) when the model or the data is not there.
#   bert_finetune.sh <bert_finetune>
set -euo pipefail
bin=$1
model=${GROVE_BERT_DIR:-$HOME/.cache/grove/all-MiniLM-L6-v2}
data=${GROVE_SENTIMENT_DIR:-$HOME/.cache/grove/sentiment-sentences}
if [ ! -f "$model/model.safetensors" ] || [ ! -f "$data/imdb.json" ]; then
  echo "skipped: no model in '$model' or no data in '$data' (scripts/fetch-bert.sh," \
       "scripts/fetch-sentiment.sh; GROVE_BERT_DIR, GROVE_SENTIMENT_DIR)"
  exit 77
fi
dir=$(mktemp -d /tmp/grove-bert-finetune-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$bin" --model "$model" --data "$data" --out "$dir/run" --train-limit 320 --test-limit 200 \
  --epochs 2 --max-length 32 --lr 1e-2 --threads 1 >"$dir/out" 2>&1 || { cat "$dir/out" >&2; exit 1; }
cat "$dir/out"
grep -qx "loaded 103 params from the checkpoint" "$dir/out"
grep -qF "were not used (1): ['embeddings.position_ids']" "$dir/out"
grep -qF "newly initialized (2): ['classifier/bias', 'classifier/kernel']" "$dir/out"
acc() {  # acc before|after train|test
  sed -n "s/^$1: *train accuracy \([0-9.]*\) (loss [0-9.]*), test accuracy \([0-9.]*\) .*/\1 \2/p" \
    "$dir/out" | cut -d' ' -f"$([ "$2" = train ] && echo 1 || echo 2)"
}
for split in train test; do
  b=$(acc before $split) a=$(acc after $split)
  test -n "$b" && test -n "$a" || { echo "no $split accuracy printed" >&2; exit 1; }
  awk -v a="$a" -v b="$b" 'BEGIN { exit !(a >= b + 0.05) }' ||
    { echo "$split accuracy $b -> $a: did not learn" >&2; exit 1; }
done
grep -qx "  tree_reduce(count_nonzero(u) == 0, updates\['bert'\]): True" "$dir/out"
grep -qF "  updates['classifier']['kernel'] (384, 2): -0.00999" "$dir/out"   # adam's first step: -lr
grep -q "restored: identical$" "$dir/out"
test -f "$dir/run/classifier.safetensors"
# bad arguments: a message naming the flag, exit 2, nothing written
for bad in "--epochs x" "--batch 0" "--lr -1" "--max-length 9999" "--train-limit 3" "--bogus" \
           "--epochs"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" --model "$model" --data "$data" --out "$dir/bad" $bad >/dev/null 2>"$dir/err"
  rc=$?
  set -e
  test $rc -eq 2 || { echo "bert_finetune $bad: exit $rc, expected 2" >&2; cat "$dir/err" >&2; exit 1; }
  grep -q '^bert_finetune: ' "$dir/err" || { echo "$bad: no message" >&2; exit 1; }
  test ! -e "$dir/bad"
done
# bad inputs: exit 1 with the path in the message
mkdir -p "$dir/nomodel" "$dir/badjson"
cp "$data"/*.json "$dir/badjson/"
printf '[{"text": "fine", "class": 7}]' >"$dir/badjson/yelp.json"
for case in "--model $dir/nomodel --data $data:$dir/nomodel" \
            "--model $model --data $dir/missing:$dir/missing/amazon.json" \
            "--model $model --data $dir/badjson:yelp.json': entry 0: class must be 0 or 1"; do
  args=${case%%:*} want=${case#*:}
  set +e
  # shellcheck disable=SC2086
  "$bin" $args --out "$dir/bad" >/dev/null 2>"$dir/err"
  rc=$?
  set -e
  test $rc -eq 1 || { echo "bert_finetune $args: exit $rc, expected 1" >&2; cat "$dir/err" >&2; exit 1; }
  grep -qF "$want" "$dir/err" || { echo "$args: message lacks '$want':" >&2; cat "$dir/err" >&2; exit 1; }
  test ! -e "$dir/bad"
done
echo "bert_finetune: ok"
