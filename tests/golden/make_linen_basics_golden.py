#!/usr/bin/env python3
"""Regenerates tests/golden/linen_basics.txt, the exact output expected from
apps/linen-basics. The numbers come from the JAX PRNG reference model
(jax_prng_ref.py: legacy threefry as the 2023 tutorial, Flax's name-based
keys, lecun_normal, XLA:CPU's in-order FMA dot products, Dropout); the
printing from numpy's array2string wrapped as jax.Array.__repr__ does.

    /usr/bin/python3 tests/golden/make_linen_basics_golden.py [--ref DIR]"""
import argparse
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument('--ref', default=os.path.join(here, '..', '..', '..', 'shared', 'reference'))
args = ap.parse_args()
sys.path.insert(0, os.path.abspath(args.ref))
import jax_prng_ref as R  # noqa: E402

R.PARTITIONABLE = False


def jax_repr(a):
    """jax.Array.__repr__ (its separator is len(prefix) spaces, not a newline)."""
    prefix, dtype_str = 'Array(', 'dtype=%s)' % a.dtype.name
    s = np.array2string(a, prefix=prefix, suffix=',', separator=', ', max_line_width=75)
    last = len(s) - s.rfind('\n') + 1
    sep = ' ' if last + len(dtype_str) + 1 <= 75 else ' ' * len(prefix)
    return prefix + s + ',' + sep + dtype_str


class JA:
    """A numpy array printed as jax.Array.__repr__."""

    def __init__(self, a):
        self.a = a

    def __repr__(self):
        return jax_repr(self.a)


class A:
    def __init__(self, rows):
        self.a = np.array(rows, np.float32)

    def __repr__(self):
        return jax_repr(self.a)


def dense(root, path, n_in, n_out):
    k, b = R.dense_init(root, path, n_in, n_out)
    return k, b


def relu(rows):
    return [[v if v > 0 else 0.0 for v in r] for r in rows]


out = []
key = R.prng_key(0xffff)
key, model_key = R.split(key, 2)
out.append('key = jax.random.PRNGKey(0xffff); key, model_key = jax.random.split(key)')
out.append('model_key = [%d %d]' % model_key)
out.append('')
k, b = dense(model_key, ('layer',), 8, 4)
out.append('# setup style: self.layer = nn.Dense(4)')
out.append('params = model.init(model_key, jnp.zeros((1, 8)))')
out.append(str({'params': {'layer': {'kernel': A(k), 'bias': A(b)}}}))
ck, cb = dense(model_key, ('Dense_0',), 8, 4)
out.append('')
out.append('# @nn.compact style: nn.Dense(4)(x) is auto-named Dense_0')
out.append(str({'params': {'Dense_0': {'kernel': A(ck), 'bias': A(cb)}}}))

key, x_key = R.split(key, 2)
x = [R.normal(x_key, 8)]
out.append('')
out.append('key, x_key = jax.random.split(key); x = jax.random.normal(x_key, (1, 8))')
out.append('x = ' + jax_repr(np.array(x, np.float32)))
y = R.dense_apply(x, k, b)
out.append('model.apply(params, x) = ' + jax_repr(np.array(y, np.float32)))
out.append('')
out.append('# calling the module without params')
out.append('error: gv_apply_eager(Model): no variables: a module holds no params, call gv_init '
           'first and pass its result')
out.append('')
out.append('# params are just data: an all-zeros tree of the same structure')
out.append('model.apply(zeros, x) = ' + jax_repr(np.zeros((1, 4), np.float32)))

key, ff_key = R.split(key, 2)
dims = [8, 4, 2, 1]
layers = [dense(ff_key, ('Dense_%d' % i,), dims[i], dims[i + 1]) for i in range(3)]
out.append('')
out.append('# FeedForward(dimensions=(4, 2, 1), drop_last_activation=True)')
shapes = {'params': {'Dense_%d' % i: {'kernel': (dims[i], dims[i + 1]), 'bias': (dims[i + 1],)}
                     for i in range(3)}}
out.append('key, ff_key = jax.random.split(key)')
out.append('params shapes = ' + str(shapes))
h = x
for i, (lk, lb) in enumerate(layers):
    h = R.dense_apply(h, lk, lb)
    if i < 2:
        h = relu(h)
out.append('feedforward.apply(params, x) = ' + jax_repr(np.array(h, np.float32)))
# the tabulate table: name (indented), shape, dtype, params "n (bytes B)"
rows = [('name', 'shape', 'dtype', 'params'), ('params', '', '', '49 (196 B)')]
for i in range(3):
    n_k, n_b = dims[i] * dims[i + 1], dims[i + 1]
    rows.append(('  Dense_%d' % i, '', '', '%d (%d B)' % (n_k + n_b, 4 * (n_k + n_b))))
    rows.append(('    kernel', str((dims[i], dims[i + 1])), 'float32', '%d (%d B)' % (n_k, 4 * n_k)))
    rows.append(('    bias', str((dims[i + 1],)), 'float32', '%d (%d B)' % (n_b, 4 * n_b)))
w = [max(len(r[c]) for r in rows) for c in range(4)]
for r in rows:
    out.append('  '.join(r[c].ljust(w[c]) for c in range(4)).rstrip())
out.append('Total Parameters: 49 (196 B)')

key, dropout_key = R.split(key, 2)
# a top-level Dropout: make_rng('dropout') in the root scope, counter 1
mask_key = R.fold_in_static(dropout_key, (1,))
dropped = R.dropout(mask_key, [1.0] * 8, 0.5)
out.append('')
out.append("# nn.Dropout(rate=0.5), deterministic=False, rngs={'dropout': dropout_key}")
out.append('dropout.apply({}, jnp.ones((1, 8))) = ' + jax_repr(np.array([dropped], np.float32)))
out.append('')
out.append('# bound = model.bind(params); bound(x)')
out.append('bound(x) = ' + jax_repr(np.array(y, np.float32)))
out.append('module, variables = bound.unbind(); variables has 2 leaves, 36 parameters')

# optax: sgd has no state of its own (EmptyState, printed as () in grove)
out.append('')
out.append('# tx = optax.sgd(learning_rate=0.01); tx.init(params)')
out.append('((), ())')
# optax.adam(0.01), one update, every operation in float32 (reference A6)
f32 = np.float32
p = np.array([0, 1, 2], f32)
g = np.array([4, 0.6, -3], f32)
zero = np.zeros(3, f32)
out.append('')
out.append('# tx = optax.adam(learning_rate=0.01); params = [0., 1., 2.]')
out.append('opt_state = tx.init(params)')
out.append(str(({'count': JA(np.array(0, np.int32)), 'mu': JA(zero), 'nu': JA(zero)}, ())))
b1, b2 = f32(0.9), f32(0.999)
mu = f32(1 - 0.9) * g + b1 * zero          # (1 - b1) on the Python float
nu = f32(1 - 0.999) * (g * g) + b2 * zero
mu_hat = mu / (f32(1) - b1 ** np.int32(1))  # b1 ** count in float32
nu_hat = nu / (f32(1) - b2 ** np.int32(1))
u = mu_hat / (np.sqrt(nu_hat + f32(0)) + f32(1e-8))
u = u * f32(-0.01)
out.append('updates, opt_state = tx.update(grads=[4., 0.6, -3.], opt_state)')
out.append('updates = ' + jax_repr(u.astype(f32)))
out.append('optax.apply_updates(params, updates) = ' + jax_repr((p + u).astype(f32)))
out.append('opt_state = ' + str(({'count': JA(np.array(1, np.int32)), 'mu': JA(mu), 'nu': JA(nu)}, ())))

with open(os.path.join(here, 'linen_basics.txt'), 'w') as f:
    f.write('\n'.join(out) + '\n')
print('\n'.join(out))
