#!/usr/bin/env bash
# The main job: install what is missing, build grove, fetch MNIST, train the
# class-conditioned VAE for the tutorial's 10 epochs and draw samples.png (a
# 10x10 grid, one row per digit). Run it again to resume an interrupted run;
# a finished run is re-evaluated and redrawn. Extra arguments go to
# `vae train` (see `build/release/vae --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target vae
# OpenBLAS 0.3.21 falls back to its generic Prescott kernels on CPUs it does
# not know (Intel family 6 model 207, for one), which makes GEMM 3-4x slower
# (docs/blas.md, "CPUs OpenBLAS does not know"). On such a CPU with AVX-512,
# use its Skylake-X kernels, unless OPENBLAS_CORETYPE is already set. The
# vae binary reports the kernel set its OpenBLAS picked at load time.
if [ -z "${OPENBLAS_CORETYPE+set}" ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  core=$(OPENBLAS_VERBOSE=2 ./build/release/vae --help 2>&1 >/dev/null | sed -n 's/^Core: //p') || true
  if [ "$core" = "Prescott" ]; then
    export OPENBLAS_CORETYPE=SkylakeX
    echo "main: OpenBLAS does not know this CPU (it picked Prescott); using OPENBLAS_CORETYPE=SkylakeX" >&2
  fi
fi
data=$(bash scripts/fetch-mnist.sh)
./build/release/vae train --data-dir "$data" --run-dir runs/vae "$@"
echo "main: digits in runs/vae/samples.png, loss curve in runs/vae/loss.svg"
