"""Shared harness for grove's PyTorch reference benchmarks (torch_*_step.py).

PyTorch 1.13 from Debian calls whatever BLAS ``libblas.so.3`` resolves to, so
the BLAS is chosen per process, before it starts, with LD_LIBRARY_PATH. Each
(BLAS, thread count) pair therefore runs in a worker subprocess of its own;
the parent collects the workers' results and, with ``--blas auto``, reports
PyTorch's best BLAS for each batch size and thread count, as grove's
benchmarks compare against PyTorch's best configuration
(shared/reference/performance-baseline.md).

Output: one JSON line per (batch, threads) on stdout (steps_per_s is the median
over ~25 ms chunks; best_steps_per_s the fastest chunk):
  {"impl": "torch", "model": ..., "batch": B, "threads": T, "blas": ...,
   "kernels": ..., "steps_per_s": ..., "rss_mib": ..., "first_step_s": ...}
rss_mib is the worker's peak RSS after that batch (a worker runs the batches in
order); first_step_s the time from the worker's launch (its first batch) or
from the model's build (later batches) to its first finished step.
Progress and the losing candidates go to stderr (``--all``: stdout too).

Two settings of the process matter as much as the BLAS here (docs/blas.md):
OPENBLAS_CORETYPE, which this machine's environment sets to Haswell (AVX2
kernels, about half OpenBLAS's speed on these shapes); ``--coretype env``
(default) keeps it, so PyTorch runs the kernels a grove binary started from the
same environment runs, ``--coretype auto`` unsets it. And glibc malloc's mmap
threshold (``--malloc``, below).
Run with /usr/bin/python3 (Debian's python3-torch and python3-numpy).
"""

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"

# name -> (LD_LIBRARY_PATH, how the BLAS threads): openmp BLASes share
# PyTorch's OpenMP runtime, so PyTorch's thread count is theirs; the others
# are held at one thread so they never compete with PyTorch's own threads.
# BLIS's directory has no liblapack.so.3, and the default one (OpenBLAS
# pthread's) would load a second BLAS; the reference LAPACK avoids that.
BLAS = {
    "openblas-serial": (f"{LIBDIR}/openblas-serial", "serial"),
    "openblas-openmp": (f"{LIBDIR}/openblas-openmp", "openmp"),
    "openblas-pthread": (f"{LIBDIR}/openblas-pthread", "pthread"),
    "blis-openmp": (f"{LIBDIR}/blis-openmp:{LIBDIR}/lapack", "openmp"),
    "blis-pthread": (f"{LIBDIR}/blis-pthread:{LIBDIR}/lapack", "pthread"),
    "blis-serial": (f"{LIBDIR}/blis-serial:{LIBDIR}/lapack", "serial"),
    "netlib": (f"{LIBDIR}/blas:{LIBDIR}/lapack", "serial"),
}
# PyTorch allocates each step's temporaries afresh; glibc serves blocks over
# its mmap threshold (128 KiB to start) with mmap and gives them back with
# munmap, so every step page-faults its large temporaries in again (AdamW's
# 800 KB ones for the VAE), and page faults are slow in this sandbox: 88 VAE
# steps/s at batch 16 instead of ~400. Keeping freed memory in the heap is
# PyTorch's best configuration here, as grove's arena-allocated plans would
# otherwise be compared against an allocator artefact.
MALLOC_TUNED = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),  # the largest value glibc accepts on 64-bit
    "MALLOC_TRIM_THRESHOLD_": str((4 << 30) - 1),
    "MALLOC_TOP_PAD_": str(64 << 20),
}

# tried by --blas auto; pthread builds are left out: with more than one
# PyTorch thread they oversubscribe the cores (baseline doc: 3x slower)
AUTO = ["openblas-serial", "openblas-openmp", "blis-openmp"]


def parse_list(text, conv=int):
    return [conv(t) for t in text.split(",") if t]


def add_arguments(p):
    p.add_argument("--batch", default="16,128", help="batch sizes (default 16,128)")
    p.add_argument("--threads", default="1,2", help="PyTorch thread counts (default 1,2)")
    p.add_argument("--blas", default="auto",
                   help="auto (best of %s per thread count), or one of: %s" % (",".join(AUTO), ",".join(BLAS)))
    p.add_argument("--seconds", type=float, default=1.2, help="timed seconds per (batch, threads) (default 1.2)")
    p.add_argument("--warmup", type=float, default=0.3, help="warm-up seconds per (batch, threads)")
    p.add_argument("--coretype", default="env",
                   help="OpenBLAS kernels: env (leave OPENBLAS_CORETYPE as the environment has it), "
                        "auto (unset it: OpenBLAS detects the CPU), or a name such as Haswell, SkylakeX")
    p.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                   help="tuned (default): glibc malloc keeps freed memory instead of returning it to the "
                        "kernel (MALLOC_TUNED below); PyTorch's temporaries then stop page-faulting, "
                        "4-5x faster for the VAE here. default: glibc as it comes")
    p.add_argument("--all", action="store_true", help="also print every candidate's line on stdout")
    p.add_argument("--json", action="store_true", help="accepted for callers' sake: the output is always JSON lines")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--t0", type=float, default=None, help=argparse.SUPPRESS)


def loaded_blas():
    """Which BLAS this process really loaded, and the kernel set it runs."""
    paths = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if line.count("/") else ""
            base = os.path.basename(path)
            if base.startswith(("libblas.so", "libopenblas", "libblis.so")):
                paths.add(path)
    kernels = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if "blis" in path and not hasattr(lib, "bli_arch_query_id"):
            # BLIS's libblas.so.3 exports only the BLAS; ask its libblis for the kernels
            try:
                lib = ctypes.CDLL(os.path.join(os.path.dirname(path), "libblis.so.4"))
            except OSError:
                kernels.append("BLIS ?")
                continue
        if hasattr(lib, "openblas_get_corename"):
            lib.openblas_get_corename.restype = ctypes.c_char_p
            kernels.append("OpenBLAS " + lib.openblas_get_corename().decode())
        elif hasattr(lib, "bli_arch_query_id"):
            lib.bli_arch_string.restype = ctypes.c_char_p
            lib.bli_arch_string.argtypes = [ctypes.c_int]
            kernels.append("BLIS " + lib.bli_arch_string(lib.bli_arch_query_id()).decode())
    return sorted(os.path.realpath(p) for p in paths), ", ".join(sorted(set(kernels))) or "reference"


def measure(step, warmup_s, seconds):
    """(median, fastest) steps/s over ~25 ms chunks, after a warm-up (the machine is shared
    and noisy: the fastest chunk shows what an uncontended machine does)."""
    t0 = time.perf_counter()
    n = 0
    while n < 5 or time.perf_counter() - t0 < warmup_s:
        step()
        n += 1
    per_step = (time.perf_counter() - t0) / n
    chunk = max(1, int(0.025 / per_step))
    rates = []
    t_end = time.perf_counter() + seconds
    while len(rates) < 5 or (time.perf_counter() < t_end and len(rates) < 1000):
        a = time.perf_counter()
        for _ in range(chunk):
            step()
        rates.append(chunk / (time.perf_counter() - a))
    return statistics.median(rates), max(rates)


def worker(args, model, build_step):
    import torch
    threads = parse_list(args.threads)
    assert len(threads) == 1
    torch.set_num_threads(threads[0])
    torch.manual_seed(args.seed)
    libs, kernels = loaded_blas()
    import resource
    t_start = args.t0 if args.t0 is not None else time.clock_gettime(time.CLOCK_MONOTONIC)
    for batch in parse_list(args.batch):
        step = build_step(batch)
        step()
        first = time.clock_gettime(time.CLOCK_MONOTONIC) - t_start
        sps, best = measure(step, args.warmup, args.seconds)
        # the worker's peak so far: batches run in the order given, the larger last
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps({"impl": "torch", "model": model, "batch": batch, "threads": threads[0],
                          "blas": args.blas, "kernels": kernels, "steps_per_s": round(sps, 2),
                          "best_steps_per_s": round(best, 2), "rss_mib": round(rss, 1),
                          "first_step_s": round(first, 4),
                          "torch": torch.__version__, "blas_libs": libs}), flush=True)
        t_start = time.clock_gettime(time.CLOCK_MONOTONIC)  # the next batch: from its model's build


def run_worker(script, args, blas, threads):
    path, kind = BLAS[blas]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = path + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    blas_threads = threads if kind == "openmp" else 1
    # read at load time; OpenBLAS's OpenMP build keeps a first count of 1 for good
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    env["BLIS_NUM_THREADS"] = str(blas_threads)
    if args.malloc == "tuned":
        env.update(MALLOC_TUNED)
    if args.coretype == "auto":
        env.pop("OPENBLAS_CORETYPE", None)
    elif args.coretype != "env":
        env["OPENBLAS_CORETYPE"] = args.coretype
    cmd = [sys.executable, script, "--worker", "--blas", blas, "--threads", str(threads),
           "--batch", args.batch, "--seconds", str(args.seconds), "--warmup", str(args.warmup),
           "--seed", str(args.seed), "--t0", repr(time.clock_gettime(time.CLOCK_MONOTONIC))]
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if out.returncode:
        print(f"torchbench: worker {blas} threads={threads} failed ({out.returncode})", file=sys.stderr)
        return []
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    for r in rows:
        r["coretype"] = args.coretype
        r["malloc"] = args.malloc
        foreign = [p for p in r.pop("blas_libs") if os.path.dirname(p) not in path.split(":")]
        if foreign:
            print(f"torchbench: warning: {blas} asked, but PyTorch also loaded {foreign}", file=sys.stderr)
    return rows


def main(model, build_step, description):
    p = argparse.ArgumentParser(description=description)
    add_arguments(p)
    args = p.parse_args()
    if args.worker:
        worker(args, model, build_step)
        return 0
    if args.blas != "auto" and args.blas not in BLAS:
        p.error(f"unknown --blas {args.blas}")
    script = os.path.abspath(sys.argv[0])
    best = {}
    for threads in parse_list(args.threads):
        for blas in (AUTO if args.blas == "auto" else [args.blas]):
            for r in run_worker(script, args, blas, threads):
                line = json.dumps(r)
                print(line, file=sys.stderr, flush=True)
                if args.all:
                    print(json.dumps(dict(r, candidate=True)), flush=True)
                key = (r["batch"], r["threads"])
                if key not in best or r["steps_per_s"] > best[key]["steps_per_s"]:
                    best[key] = r
    for key in sorted(best):
        print(json.dumps(best[key]), flush=True)
    return 0 if best else 1
