#!/usr/bin/env python3
"""grove -> Flax: the params of a VAE trained by `vae train`, loaded from
its checkpoint directory with grove_ckpt (python/) into the tutorial's own
Flax module, decode the same z and c as grove's sampler.

    python flax_sample.py RUN_DIR SAMPLES.safetensors [SEED]

SAMPLES is `vae sample --out SAMPLES.safetensors`: {images, z, labels}.
Checks that JAX draws the same z from the run's noise key
(split(PRNGKey(seed), 4)[3], as the `vae` program does) and that
model.apply({'params': params}, z, one_hot(labels), method=model.decode)
equals grove's images within TOL. Exit status 0 iff both hold."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grove_ckpt  # noqa: E402  (python/, on PYTHONPATH)
from tutorial_vae import VAE  # noqa: E402

TOL = 1e-5  # measured: docs/interop.md (grove -> Flax)

run_dir, samples_path = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0

# Orbax's side of the tutorial: list the steps, restore the latest
mngr = grove_ckpt.CheckpointManager(os.path.join(run_dir, 'checkpoints'))
step = mngr.latest_step()
state = mngr.restore(step, item='state')
params = jax.tree.map(jnp.asarray, state['params'])
print('grove checkpoint steps %s, restored step %d' % (mngr.all_steps(), step))

samples = grove_ckpt.load(samples_path)
z, labels, images = samples['z'], samples['labels'], samples['images']

key = jax.random.split(jax.random.PRNGKey(seed), 4)[3]
z_jax = np.asarray(jax.random.normal(key, z.shape))
z_diff = float(np.max(np.abs(z_jax - z)))

model = VAE(latent_dim=z.shape[1])
out = np.asarray(model.apply({'params': params}, jnp.asarray(z),
                             jax.nn.one_hot(labels, 10), method=model.decode))
diff = float(np.max(np.abs(out - images)))
print('z: JAX draws grove\'s noise: max |diff| %.3g; decode: %d images, max |Flax - grove| %.3g '
      '(tolerance %.0e, values up to %.3g)' % (z_diff, len(images), diff, TOL, float(np.max(out))))
sys.exit(0 if z_diff == 0 and diff <= TOL else 1)
