"""The tutorial's class-conditioned VAE in real Flax, written as the
tutorial writes it (MISSION.md section 5; grove's apps/vae/vae_model.h is
the same model), and its train step with Optax. Imported by the interop
scripts in this directory; nothing here knows about grove."""
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state


class FeedForward(nn.Module):
    dimensions: Sequence[int] = (256, 128, 64)
    activation_fn: Callable = nn.relu
    drop_last_activation: bool = False

    @nn.compact
    def __call__(self, x):
        for i, d in enumerate(self.dimensions):
            x = nn.Dense(d)(x)
            if i != len(self.dimensions) - 1 or not self.drop_last_activation:
                x = self.activation_fn(x)
        return x


class VAE(nn.Module):
    encoder_dimensions: Sequence[int] = (256, 128, 64)
    decoder_dimensions: Sequence[int] = (128, 256, 784)
    latent_dim: int = 32
    activation_fn: Callable = nn.relu

    def setup(self):
        self.encoder = FeedForward(self.encoder_dimensions, self.activation_fn)
        self.pre_latent_proj = nn.Dense(self.latent_dim * 2)
        self.post_latent_proj = nn.Dense(self.encoder_dimensions[-1])
        self.class_proj = nn.Dense(self.encoder_dimensions[-1])
        self.decoder = FeedForward(self.decoder_dimensions, self.activation_fn)

    def reparam(self, mean, logvar, key):
        std = jnp.exp(logvar * 0.5)
        eps = jax.random.normal(key, mean.shape)
        return eps * std + mean

    def encode(self, x):
        x = self.encoder(x)
        mean, logvar = jnp.split(self.pre_latent_proj(x), 2, axis=-1)
        return mean, logvar

    def decode(self, x, c):
        x = self.post_latent_proj(x)
        x = x + self.class_proj(c)
        return self.decoder(x)

    def __call__(self, x, c, key):
        mean, logvar = self.encode(x)
        z = self.reparam(mean, logvar, key)
        return self.decode(z, c), mean, logvar


def create_train_state(model, key, batch_size, learning_rate=1e-4):
    x = jnp.zeros((batch_size, 784), jnp.float32)
    c = jnp.zeros((batch_size, 10), jnp.float32)
    params = model.init(key, x, c, jax.random.PRNGKey(0))['params']
    return train_state.TrainState.create(apply_fn=model.apply, params=params,
                                         tx=optax.adamw(learning_rate))


@jax.jit
def train_step(state, x, c, key):
    def loss_fn(params):
        recon, mean, logvar = state.apply_fn({'params': params}, x, c, key)
        mse = optax.l2_loss(recon, x).sum(-1).mean()
        kl = jnp.mean(-0.5 * jnp.sum(1 + logvar - mean ** 2 - jnp.exp(logvar), axis=-1))
        return mse + 0.5 * kl, (mse, kl)

    (loss, (mse, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    return state.apply_gradients(grads=grads), loss, mse, kl


def mnist_train(directory, n):
    """The first n training images (scaled to [0, 1], flattened) and labels."""
    with open(f'{directory}/train-images-idx3-ubyte', 'rb') as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)[:n * 784]
    with open(f'{directory}/train-labels-idx1-ubyte', 'rb') as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return (images.reshape(n, 784) / 255.0).astype(np.float32), labels.astype(np.int32)
