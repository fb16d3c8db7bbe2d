#!/usr/bin/python3
"""PyTorch side of grove's MLP benchmark: one training step of a small MLP.

Default model 784 -> 256 -> 128 -> 10, relu between layers, softmax
cross-entropy on integer labels (mean over the batch), plain SGD with
lr 0.01 written as in-place parameter updates, float32, synthetic data.
Timed at batch 16 and 128 with 1 and 2 PyTorch threads on PyTorch's best
BLAS (see torchbench.py); prints one JSON line per (batch, threads):

  {"impl": "torch", "batch": 16, "threads": 1, "blas": "openblas-serial", "steps_per_s": ...}

Usage: /usr/bin/python3 bench/torch_mlp_step.py [--dims 784,256,128,10] [--blas auto] ...
(--help for the rest). About 30 s with --blas auto, 10 s with one BLAS.
"""
import sys

import torchbench

DIMS = [784, 256, 128, 10]
LR = 0.01


def build_step(batch):
    import torch
    import torch.nn.functional as F

    layers = []
    for i, (d_in, d_out) in enumerate(zip(DIMS[:-1], DIMS[1:])):
        layers.append(torch.nn.Linear(d_in, d_out))
        if i < len(DIMS) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    params = list(model.parameters())
    x = torch.rand(batch, DIMS[0])
    y = torch.randint(0, DIMS[-1], (batch,))

    def step():
        for p in params:
            p.grad = None
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-LR)  # sgd: p <- p - lr * g
        return loss

    return step


if __name__ == "__main__":
    # --dims is ours; the shared parser gets the rest
    if "--dims" in sys.argv:
        i = sys.argv.index("--dims")
        DIMS = [int(d) for d in sys.argv[i + 1].split(",")]
        del sys.argv[i:i + 2]
        # workers get the same dims through the environment
        import os
        os.environ["GROVE_BENCH_MLP_DIMS"] = ",".join(map(str, DIMS))
    else:
        import os
        if os.environ.get("GROVE_BENCH_MLP_DIMS"):
            DIMS = [int(d) for d in os.environ["GROVE_BENCH_MLP_DIMS"].split(",")]
    sys.exit(torchbench.main("mlp-" + "-".join(map(str, DIMS)), build_step, __doc__.splitlines()[0]))
