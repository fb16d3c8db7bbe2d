#!/usr/bin/env python3
"""Regenerates tests/golden/flax/*.msgpack with the real flax.serialization
(the pinned venv of tests/golden/make-venv.sh):

    ~/.cache/grove/venv/bin/python tests/golden/make_flax_msgpack_golden.py

  arrays.msgpack     to_bytes of a tree of numpy arrays of every dtype grove
                     holds (NaN, Inf, -0.0, 0-d, empty, bin8/16/32 sizes),
                     nested dicts in a non-sorted key order, a map of 17 keys,
                     a list, a tuple, empty containers and a str. The values
                     are formulas tests/checkpoint/test_flax_msgpack.c
                     repeats, so grove's to_bytes of the same tree must give
                     these bytes exactly.
  chunked.msgpack    the same with flax.serialization.MAX_CHUNK_SIZE = 64, so
                     arrays above 64 bytes are Flax's chunked dicts.
  scalars.msgpack    Python int (small, negative, above INT64_MAX), float,
                     bool, numpy scalars (ext 3) and a str.
  train_state.msgpack  flax.training TrainState of nn.Dense(3) with
                     optax.adamw(1e-2) after two steps of an MSE loss;
  train_state_next.msgpack  its params after a third step (the test restores
                     the first into grove, steps once, and compares).
"""
import os

import numpy as np
import flax
import flax.linen as nn
import flax.serialization as ser
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'flax')
os.makedirs(here, exist_ok=True)


def arange(dtype, shape, scale=1.0, offset=0.0):
    n = int(np.prod(shape)) if shape else 1
    return (np.arange(n, dtype=np.float64) * scale + offset).astype(dtype).reshape(shape)


def arrays_tree():
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.25], np.float32)
    return {
        'params': {
            'dense': {'kernel': arange(np.float32, (3, 4), 0.25, -1.0),
                      'bias': arange(np.float32, (4,), 1.0, 0.5)},
            'a_first_after_dense': arange(np.float64, (2, 2), -1.5, 3.0),
        },
        'dtypes': {
            'bool': (np.arange(5) % 2 == 0),
            'uint8': arange(np.uint8, (6,), 51.0),
            'uint16': arange(np.uint16, (3,), 30000.0),
            'uint32': arange(np.uint32, (2,), 4e9),
            'uint64': np.array([0, 2**64 - 1], np.uint64),
            'int32': arange(np.int32, (2, 3), -1000.0, 7.0),
            'int64': np.array([-2**63, 2**63 - 1, 0], np.int64),
            'float32': special,
            'float64': special.astype(np.float64),
        },
        'shapes': {
            'scalar': np.array(2.5, np.float32),
            'empty': np.zeros((0, 3), np.float32),
            'bin16': arange(np.float32, (300,), 0.5),           # 1200 bytes
            'bin32': arange(np.float32, (20000,), 0.001, -5.0),  # 80000 bytes
            'rank4': arange(np.int32, (2, 1, 3, 2), 1.0),
        },
        'seventeen_keys': {'k%02d' % i: np.array(i, np.int32) for i in (16, 3, 9, 0, 12, 5, 1, 14,
                                                                        7, 10, 2, 15, 8, 4, 13, 6, 11)},
        'a_key_longer_than_thirty_one_characters': np.array([1, 2], np.int64),
        'list': [arange(np.float32, (2,)), {'inner': arange(np.int32, (1,), 1.0, 9.0)}, 'label'],
        'tuple': (arange(np.uint8, (3,), 1.0, 1.0), arange(np.float64, (1,), 1.0, -1.0)),
        'empty_dict': {},
        'empty_tuple': (),
        'label': 'adam',
    }


def write(name, data):
    with open(os.path.join(here, name), 'wb') as f:
        f.write(data)
    print(name, len(data), 'bytes')


write('arrays.msgpack', ser.to_bytes(arrays_tree()))
saved = ser.MAX_CHUNK_SIZE
ser.MAX_CHUNK_SIZE = 64
write('chunked.msgpack', ser.to_bytes(arrays_tree()))
ser.MAX_CHUNK_SIZE = saved

write('scalars.msgpack', ser.to_bytes({
    'small': 7, 'negative': -3, 'huge': 2**64 - 1, 'float': 0.1, 'yes': True,
    'np_f32': np.float32(1.5), 'np_i64': np.int64(-9), 'step': 12, 'name': 'grove'}))

# A TrainState after two adamw steps: Dense(3) on x (2, 4)
model = nn.Dense(3)
x = jnp.asarray(arange(np.float32, (2, 4), 0.3, -1.0))
y = jnp.asarray(arange(np.float32, (2, 3), -0.2, 0.5))
params = model.init(jax.random.PRNGKey(0), x)['params']
state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adamw(1e-2))


@jax.jit
def step(state):
    def loss_fn(p):
        return jnp.mean((state.apply_fn({'params': p}, x) - y) ** 2)
    return state.apply_gradients(grads=jax.grad(loss_fn)(state.params))


for _ in range(2):
    state = step(state)
write('train_state.msgpack', ser.to_bytes(state))
state = step(state)
write('train_state_next.msgpack', ser.to_bytes(state.params))
print('flax', flax.__version__, 'jax', jax.__version__, 'optax', optax.__version__)
