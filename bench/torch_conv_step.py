#!/usr/bin/python3
"""PyTorch side of grove's convolutional benchmark: one training step of the
Fashion-MNIST CNN of apps/ (the Flax tutorial's CNN with BatchNorm).

Model, NCHW here and NHWC in grove (the same arithmetic):
  Conv(1->32, 3x3, SAME) -> BatchNorm -> relu -> avg_pool 2x2
  Conv(32->64, 3x3, SAME) -> BatchNorm -> relu -> avg_pool 2x2
  flatten -> Dense(3136 -> 256) -> relu -> Dense(256 -> 10)
softmax cross-entropy on integer labels (mean over the batch), plain SGD
with lr 0.01 written as in-place parameter updates, BatchNorm in training
mode (batch statistics, running averages updated), float32, synthetic
28x28 images. Timed at batch 16 and 128 with 1 and 2 PyTorch threads on
PyTorch's best BLAS (see torchbench.py); prints one JSON line per
(batch, threads):

  {"impl": "torch", "batch": 16, "threads": 1, "blas": "openblas-serial", "steps_per_s": ...}

Usage: /usr/bin/python3 bench/torch_conv_step.py [--blas auto] ... (--help
for the rest).
"""
import sys

import torchbench

LR = 0.01


def build_step(batch):
    import torch
    import torch.nn.functional as F

    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.BatchNorm2d(32, momentum=0.01, eps=1e-5),
        torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.BatchNorm2d(64, momentum=0.01, eps=1e-5),
        torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10))
    model.train()
    params = list(model.parameters())
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))

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
    sys.exit(torchbench.main("conv-fashion-mnist", build_step, __doc__.splitlines()[0]))
