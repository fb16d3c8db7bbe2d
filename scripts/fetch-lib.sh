# Shared by scripts/fetch-bert.sh and scripts/fetch-sentiment.sh (sourced,
# not run): a verified cache directory of files with known SHA-256s.
# The caller sets prog, dir, FILES (names) and SHA (name -> SHA-256).

log() { echo "$prog: $*" >&2; }

sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# fetch_init TOOL...: checks the tools, creates $dir and a work directory
# ($work) removed at exit together with any temporary file left in $dir.
fetch_init() {
  local tool
  for tool in sha256sum mktemp "$@"; do
    command -v "$tool" >/dev/null || { log "error: '$tool' is needed (scripts/install-deps.sh)"; exit 1; }
  done
  if ! mkdir -p -- "$dir"; then
    log "error: cannot create the cache directory '$dir'"
    exit 1
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/grove-fetch.XXXXXX")
  trap 'rm -rf -- "$work"; rm -f -- "$dir"/.*.tmp.$$' EXIT
  trap 'exit 130' INT TERM
}

# The files of FILES missing from $dir or with another SHA-256, space-separated.
fetch_missing() {
  local f out=()
  for f in "${FILES[@]}"; do
    if [ ! -f "$dir/$f" ] || [ "$(sha_of "$dir/$f")" != "${SHA[$f]}" ]; then out+=("$f"); fi
  done
  echo "${out[*]:-}"
}

# fetch_install SRC NAME SOURCE: copies SRC to $dir/NAME under a temporary
# name and renames it into place if its SHA-256 is NAME's; else exits 1.
fetch_install() {
  local src=$1 name=$2 source=$3 got
  if [ ! -f "$src" ]; then
    log "error: $source has no $name"
    exit 1
  fi
  got=$(sha_of "$src")
  if [ "$got" != "${SHA[$name]}" ]; then
    log "error: $source: $name has SHA-256 $got, expected ${SHA[$name]}"
    exit 1
  fi
  cp -- "$src" "$dir/.$name.tmp.$$"
  mv -f -- "$dir/.$name.tmp.$$" "$dir/$name"
  log "$source: $name verified"
}
