#!/usr/bin/env bash
# The data-parallel table of docs/distributed.md: the VAE's train step on 1
# process (1 and 2 threads) and on 2 processes of 1 thread, at global
# batches 16 and 128, through mpirun on this machine; and 2 processes with
# the AdamW state sharded (ZeRO-1).
#   bash bench/dist_scaling.sh [BUILD_DIR] [STEPS]
# BUILD_DIR is a build configured with -DGROVE_MPI=ON -DGROVE_BUILD_BENCH=ON.
set -euo pipefail
build=${1:-build/release}
steps=${2:-400}
bin=$build/bench/dist_vae
[ -x "$bin" ] || { echo "dist_scaling.sh: no $bin (configure with -DGROVE_MPI=ON -DGROVE_BUILD_BENCH=ON)" >&2; exit 1; }
mpirun=$(command -v mpirun) || { echo "dist_scaling.sh: no mpirun (Debian: openmpi-bin)" >&2; exit 1; }
# root in a container: Open MPI wants to be told twice
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "| global batch | processes x threads | steps/s | samples/s | time in all-reduce | all-reduce bytes/step |"
echo "|---:|---|---:|---:|---:|---:|"
for batch in 16 128; do
  for cfg in "1 1" "1 2" "2 1" "2 1 zero1"; do
    set -- $cfg
    line=$(OMP_NUM_THREADS=$2 "$mpirun" --oversubscribe --mca btl self,vader -x OMP_NUM_THREADS \
           -np "$1" "$bin" "$batch" "$steps" "$2" ${3:-})
    python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print("| %d | %d x %d%s | %.0f | %.0f | %.1f%% | %s |" % (r["batch"], r["processes"], r["threads"],
      ", ZeRO-1" if r["zero1"] else "",
      r["steps_per_s"], r["samples_per_s"], 100 * r["comm_share"],
      "%.2f MB" % (r["allreduce_bytes_per_step"] / 1e6) if r["processes"] > 1 else "-"))
PY
  done
done
