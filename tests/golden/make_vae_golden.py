#!/usr/bin/python3
"""Regenerates tests/golden/vae_golden.json: the tutorial's VAE as Flax would
initialise it and the value and gradient of its loss on one small batch.

Init: model.init(PRNGKey(0), x, c, key) in JAX's default (partitionable)
threefry scheme. Every Dense kernel comes from the JAX PRNG reference model
(jax_prng_ref.py: lecun_normal from make_rng('params') #1 of the layer's
scope, Flax's name-based keys), at the paths Flax gives the setup-style
children: encoder/Dense_0..2, pre_latent_proj, post_latent_proj, class_proj,
decoder/Dense_0..2. Biases are zeros.

Loss: eps = jax.random.normal(PRNGKey(7), (4, 32)) from the reference model,
then the forward pass, loss = mse + 0.5 kl and its gradient in float64 with
PyTorch autograd (the float32 values of params, x and eps as inputs).

The kernels are large (491,920 params), so the file keeps per param its
shape, the float64 sum of its float32 values and 16 entries at fixed
positions (init), and for the gradient the sum, the sum of squares and the
same 16 entries. About a minute (the reference model is pure Python).

    /usr/bin/python3 tests/golden/make_vae_golden.py [--ref DIR]"""
import argparse
import json
import os
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument('--ref', default=os.path.join(here, '..', '..', '..', 'shared', 'reference'))
args = ap.parse_args()
sys.path.insert(0, os.path.abspath(args.ref))
import jax_prng_ref as R  # noqa: E402

R.set_profile(partitionable=True)

LATENT, BATCH = 32, 4
LAYERS = [  # (Flax scope path, in, out)
    (('encoder', 'Dense_0'), 784, 256), (('encoder', 'Dense_1'), 256, 128),
    (('encoder', 'Dense_2'), 128, 64), (('pre_latent_proj',), 64, 2 * LATENT),
    (('post_latent_proj',), LATENT, 64), (('class_proj',), 10, 64),
    (('decoder', 'Dense_0'), 64, 128), (('decoder', 'Dense_1'), 128, 256),
    (('decoder', 'Dense_2'), 256, 784),
]


def picks(size):
    """16 fixed positions spread over a flat array (first, last, and between)."""
    return sorted(set([0, size - 1] + [(size * k) // 15 for k in range(1, 15)] + [1, 2]))[:16]


def summary(a, grad=False):
    flat = a.astype(np.float64).ravel()
    idx = picks(flat.size)
    d = {'shape': list(a.shape), 'sum': float(flat.sum()), 'index': idx,
         'values': [float(flat[i]) for i in idx]}
    if grad:
        d['sumsq'] = float((flat * flat).sum())
    return d


root = R.prng_key(0)
params = {}
for path, n_in, n_out in LAYERS:
    k, b = R.dense_init(root, path, n_in, n_out)
    params['/'.join(path)] = (np.array(k, np.float32), np.array(b, np.float32))
    print('init', '/'.join(path), file=sys.stderr)

rs = np.random.RandomState(6)
x = (rs.randint(0, 256, size=(BATCH, 784)) / 255.0).astype(np.float32)
labels = np.array([3, 1, 4, 1], np.int32)
eps = np.array(R.normal(R.prng_key(7), BATCH * LATENT), np.float32).reshape(BATCH, LATENT)

t = {k: (torch.tensor(w, dtype=torch.float64, requires_grad=True),
         torch.tensor(b, dtype=torch.float64, requires_grad=True)) for k, (w, b) in params.items()}


def dense(name, h):
    w, b = t[name]
    return h @ w + b


def ff(prefix, h):
    for i in range(3):
        h = torch.relu(dense('%s/Dense_%d' % (prefix, i), h))
    return h


xt = torch.tensor(x, dtype=torch.float64)
c = torch.nn.functional.one_hot(torch.tensor(labels, dtype=torch.long), 10).to(torch.float64)
h = dense('pre_latent_proj', ff('encoder', xt))
mean, logvar = h[:, :LATENT], h[:, LATENT:]
z = torch.tensor(eps, dtype=torch.float64) * torch.exp(0.5 * logvar) + mean
recon = ff('decoder', dense('post_latent_proj', z) + dense('class_proj', c))
mse = (0.5 * (recon - xt) ** 2).sum(-1).mean()
kl = (-0.5 * (1 + logvar - mean ** 2 - torch.exp(logvar)).sum(-1)).mean()
loss = mse + 0.5 * kl
loss.backward()

out = {
    'about': 'tests/golden/make_vae_golden.py: Flax init of the VAE from PRNGKey(0) and the '
             'float64 loss and gradient on one batch',
    'init_key': 0, 'step_key': 7, 'latent': LATENT,
    'x': [[int(round(v * 255)) for v in row] for row in x], 'labels': labels.tolist(),
    'loss': float(loss), 'mse': float(mse), 'kl': float(kl),
    'params': {}, 'grads': {},
}
for name, (w, b) in params.items():
    out['params'][name + '/kernel'] = summary(w)
    out['params'][name + '/bias'] = summary(b)
    out['grads'][name + '/kernel'] = summary(t[name][0].grad.numpy(), True)
    out['grads'][name + '/bias'] = summary(t[name][1].grad.numpy(), True)
with open(os.path.join(here, 'vae_golden.json'), 'w') as f:
    json.dump(out, f, indent=1)
    f.write('\n')
print('loss %.6f mse %.6f kl %.6f' % (loss, mse, kl), file=sys.stderr)
