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
data=$(bash scripts/fetch-mnist.sh)
./build/release/vae train --data-dir "$data" --run-dir runs/vae "$@"
echo "main: digits in runs/vae/samples.png, loss curve in runs/vae/loss.svg"
