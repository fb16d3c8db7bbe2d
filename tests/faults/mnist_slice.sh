# mnist_slice SRC DST NTRAIN NTEST: the first examples of MNIST's IDX files
# as IDX files of their own, so that a program loading "MNIST" from DST
# starts in milliseconds (sourced by faults.sh and kills.sh).
be32() {  # a 32-bit big-endian count
  local b
  for b in $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); do
    printf "\\$(printf '%03o' "$b")"
  done
}
mnist_slice() {
  local src=$1 dst=$2 ntrain=$3 ntest=$4 split n
  mkdir -p "$dst"
  for split in train:$ntrain t10k:$ntest; do
    n=${split#*:} split=${split%:*}
    { printf '\0\0\10\3'; be32 "$n"; be32 28; be32 28
      head -c $((16 + n * 784)) "$src/$split-images-idx3-ubyte" | tail -c +17; } > "$dst/$split-images-idx3-ubyte"
    { printf '\0\0\10\1'; be32 "$n"
      head -c $((8 + n)) "$src/$split-labels-idx1-ubyte" | tail -c +9; } > "$dst/$split-labels-idx1-ubyte"
  done
}
