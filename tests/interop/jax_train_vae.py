#!/usr/bin/env python3
"""JAX -> grove: the tutorial's VAE initialised and trained in real JAX,
Flax and Optax, saved with flax.serialization, for grove to continue.

    python jax_train_vae.py MNIST_DIR OUT [--before 10] [--after 20]

Trains `before` steps of batch 16 on the first MNIST training images in
order (step i takes images [16 i, 16 i + 16)), with the step keys of
`rng, key = jax.random.split(rng)` from PRNGKey(1), and writes

  OUT/jax_state.msgpack   flax.serialization.to_bytes({'state': state,
                          'rng': rng}): the TrainState (step, params,
                          opt_state) and the key stream, as a user saves them
  OUT/jax_after.json      the next `after` steps' loss, mse and kl
  OUT/jax_final.msgpack   to_bytes(state) after those steps

tests/interop/flax_resume.c restores the first, runs the same `after`
steps in grove and compares with the other two."""
import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
from flax import serialization

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tutorial_vae import VAE, create_train_state, mnist_train, train_step  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('mnist')
ap.add_argument('out')
ap.add_argument('--before', type=int, default=10)
ap.add_argument('--after', type=int, default=20)
args = ap.parse_args()
B = 16
x_all, y_all = mnist_train(args.mnist, B * (args.before + args.after))
model = VAE(latent_dim=32)
state = create_train_state(model, jax.random.PRNGKey(0), B)
rng = jax.random.PRNGKey(1)


def step(state, rng, i):
    rng, key = jax.random.split(rng)
    x = jnp.asarray(x_all[B * i:B * (i + 1)])
    c = jax.nn.one_hot(y_all[B * i:B * (i + 1)], 10)
    state, loss, mse, kl = train_step(state, x, c, key)
    return state, rng, (float(loss), float(mse), float(kl))


for i in range(args.before):
    state, rng, _ = step(state, rng, i)
with open(os.path.join(args.out, 'jax_state.msgpack'), 'wb') as f:
    f.write(serialization.to_bytes({'state': state, 'rng': rng}))
metrics = []
for i in range(args.before, args.before + args.after):
    state, rng, m = step(state, rng, i)
    metrics.append(m)
with open(os.path.join(args.out, 'jax_after.json'), 'w') as f:
    json.dump({'loss': [m[0] for m in metrics], 'mse': [m[1] for m in metrics],
               'kl': [m[2] for m in metrics]}, f)
with open(os.path.join(args.out, 'jax_final.msgpack'), 'wb') as f:
    f.write(serialization.to_bytes(state))
print('jax: %d + %d steps, loss %.4f -> %.4f' % (args.before, args.after, metrics[0][0],
                                                  metrics[-1][0]))
