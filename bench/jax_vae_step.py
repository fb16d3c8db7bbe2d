"""JAX side of grove's VAE benchmark: the tutorial's train step under jax.jit.

The same model, loss and optimiser as apps/vae and bench/torch_vae_step.py,
written as the Flax tutorial writes it: a linen VAE (encoder FeedForward(256,
128, 64), pre_latent_proj Dense(64) split into mean and log-variance,
z = eps * exp(0.5 logvar) + mean, post_latent_proj(z) + class_proj(one_hot),
decoder FeedForward(128, 256, 784), relu after every layer), loss = mse +
0.5 kl, optax.adamw(1e-4), and one jitted step

    state, metrics = train_step(state, x, c, key)

with the state donated (donate_argnums=0), as grove's step donates it.

Threads: XLA:CPU runs a jitted step's ops on its own thread pool (Eigen) and
takes every core it is allowed. One thread means both: the pool switched off
(--xla_cpu_multi_thread_eigen=false, intra_op_parallelism_threads=1) and the
process pinned to one core (sched_setaffinity before jax is imported). Two
threads: the pool on both cores. Each (threads) runs in a worker process of
its own, since XLA reads its flags once.

Output: one JSON line per (batch, threads) on stdout, the format of
torchbench.py (steps_per_s the median over ~25 ms chunks), with the process's
peak RSS and the time from the worker's start to its first finished step:

  {"impl": "jax", "batch": 16, "threads": 1, "steps_per_s": ..., "rss_mib": ...,
   "first_step_s": ...}

Run with the virtual environment of tests/golden/make-venv.sh (pinned jax,
flax, optax): ~/.cache/grove/venv/bin/python bench/jax_vae_step.py
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

LATENT = 32
N_PARAMS = 491_920


def worker(args):
    t_start = time.clock_gettime(time.CLOCK_MONOTONIC) if args.t0 is None else args.t0
    if args.threads == 1:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax
    import jax.numpy as jnp
    import flax.linen as nn
    import optax
    from flax.training import train_state

    jax.config.update("jax_platforms", "cpu")

    class FeedForward(nn.Module):
        dims: tuple

        @nn.compact
        def __call__(self, x):
            for d in self.dims:
                x = nn.relu(nn.Dense(d)(x))
            return x

    class VAE(nn.Module):
        def setup(self):
            self.encoder = FeedForward((256, 128, 64))
            self.pre_latent_proj = nn.Dense(2 * LATENT)
            self.post_latent_proj = nn.Dense(64)
            self.class_proj = nn.Dense(64)
            self.decoder = FeedForward((128, 256, 784))

        def __call__(self, x, c, key):
            mean, logvar = jnp.split(self.pre_latent_proj(self.encoder(x)), 2, axis=-1)
            z = jax.random.normal(key, mean.shape) * jnp.exp(0.5 * logvar) + mean
            return self.decoder(self.post_latent_proj(z) + self.class_proj(c)), mean, logvar

    model = VAE()

    def loss_fn(params, x, c, key):
        recon, mean, logvar = model.apply({"params": params}, x, jax.nn.one_hot(c, 10), key)
        mse = optax.l2_loss(recon, x).sum(-1).mean()
        kl = (-0.5 * (1 + logvar - mean ** 2 - jnp.exp(logvar)).sum(-1)).mean()
        return mse + 0.5 * kl, (mse, kl)

    def train_step(state, x, c, key):
        (loss, (mse, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, x, c, key)
        return state.apply_gradients(grads=grads), {"loss": loss, "mse": mse, "kl": kl}

    step_fn = jax.jit(train_step, donate_argnums=0)
    for batch in [int(b) for b in args.batch.split(",")]:
        rng = jax.random.PRNGKey(args.seed)
        x = jax.random.uniform(jax.random.PRNGKey(1), (batch, 784))
        c = jax.random.randint(jax.random.PRNGKey(2), (batch,), 0, 10)
        params = model.init(jax.random.PRNGKey(0), x, jax.nn.one_hot(c, 10), rng)["params"]
        assert sum(p.size for p in jax.tree_util.tree_leaves(params)) == N_PARAMS
        state = train_state.TrainState.create(apply_fn=model.apply, params=params,
                                              tx=optax.adamw(1e-4))
        holder = {"state": state, "key": rng}

        def step():
            holder["key"], sub = jax.random.split(holder["key"])
            holder["state"], m = step_fn(holder["state"], x, c, sub)
            return m

        jax.block_until_ready(step())
        first = time.clock_gettime(time.CLOCK_MONOTONIC) - t_start

        def timed():
            jax.block_until_ready(step())

        sps, best = measure(timed, args.warmup, args.seconds)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps({"impl": "jax", "model": "vae", "batch": batch, "threads": args.threads,
                          "blas": "xla", "steps_per_s": round(sps, 2), "best_steps_per_s": round(best, 2),
                          "rss_mib": round(rss, 1), "first_step_s": round(first, 4),
                          "jax": jax.__version__}), flush=True)
        t_start = time.clock_gettime(time.CLOCK_MONOTONIC)  # the next batch compiles afresh


def measure(step, warmup_s, seconds):
    """(median, fastest) steps/s over ~25 ms chunks after a warm-up, as torchbench.py."""
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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", default="16,128")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--seconds", type=float, default=1.2)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--json", action="store_true", help="accepted: the output is always JSON lines")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--t0", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        worker(args)
        return 0
    ok = False
    for threads in [int(t) for t in args.threads.split(",")]:
        for batch in args.batch.split(","):
            # one process per (batch, threads): its peak RSS and first step are its own
            t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                                  "--threads", str(threads), "--batch", batch, "--seconds",
                                  str(args.seconds), "--warmup", str(args.warmup), "--seed",
                                  str(args.seed), "--t0", repr(t0)],
                                 stdout=subprocess.PIPE, text=True)
            if out.returncode:
                print(f"jax_vae_step: worker threads={threads} batch={batch} failed "
                      f"({out.returncode})", file=sys.stderr)
                continue
            for line in out.stdout.splitlines():
                if line.startswith("{"):
                    print(line, flush=True)
                    ok = True
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
