#!/usr/bin/python3
"""PyTorch side of grove's VAE benchmark: one training step of MISSION.md section 5's VAE.

Model: encoder FeedForward(256, 128, 64) (relu after every layer);
pre_latent_proj Dense(64) split into mean and log-variance (latent 32);
z = eps * exp(0.5 * logvar) + mean with eps ~ N(0, 1) drawn each step;
post_latent_proj Dense(64)(z) + class_proj Dense(64)(one_hot(label, 10));
decoder FeedForward(128, 256, 784) with relu after every layer. 491,920 params.
Loss: mse = sum over pixels of l2_loss(recon, x) = 0.5 (recon - x)^2, mean over
the batch; kl = mean over the batch of -0.5 sum(1 + logvar - mean^2 - exp(logvar));
loss = mse + 0.5 kl. Optimiser: optax.adamw(1e-4), i.e. torch AdamW with
optax's defaults (betas 0.9, 0.999, eps 1e-8, weight_decay 1e-4). float32,
synthetic [0, 1) images and random labels.

Timed at batch 16 and 128 with 1 and 2 PyTorch threads on PyTorch's best BLAS
(see torchbench.py); prints one JSON line per (batch, threads):

  {"impl": "torch", "batch": 16, "threads": 1, "blas": "openblas-serial", "steps_per_s": ...}

Usage: /usr/bin/python3 bench/torch_vae_step.py [--blas auto] ... (--help for the rest).
About 30 s with --blas auto, 10 s with one BLAS.
"""
import sys

import torchbench

LATENT = 32
N_PARAMS = 491_920  # shared/reference/performance-baseline.md


def build_step(batch):
    import torch
    import torch.nn.functional as F
    from torch import nn

    def feed_forward(d_in, dims):
        layers = []
        for d in dims:
            layers += [nn.Linear(d_in, d), nn.ReLU()]
            d_in = d
        return nn.Sequential(*layers)

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = feed_forward(784, [256, 128, 64])
            self.pre_latent_proj = nn.Linear(64, 2 * LATENT)
            self.post_latent_proj = nn.Linear(LATENT, 64)
            self.class_proj = nn.Linear(10, 64)
            self.decoder = feed_forward(64, [128, 256, 784])

        def forward(self, x, label):
            mean, logvar = self.pre_latent_proj(self.encoder(x)).chunk(2, dim=-1)
            z = torch.randn_like(mean) * torch.exp(0.5 * logvar) + mean
            h = self.post_latent_proj(z) + self.class_proj(F.one_hot(label, 10).to(x.dtype))
            return self.decoder(h), mean, logvar

    model = VAE()
    assert sum(p.numel() for p in model.parameters()) == N_PARAMS
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    x = torch.rand(batch, 784)
    label = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        recon, mean, logvar = model(x, label)
        mse = (0.5 * (recon - x) ** 2).sum(dim=-1).mean()
        kl = (-0.5 * (1 + logvar - mean ** 2 - torch.exp(logvar)).sum(dim=-1)).mean()
        loss = mse + 0.5 * kl
        loss.backward()
        opt.step()
        return loss

    return step


if __name__ == "__main__":
    sys.exit(torchbench.main("vae", build_step, __doc__.splitlines()[0]))
