#!/usr/bin/env python3
"""Regenerates tests/golden/flax_norm_golden.json with the real Flax:
nn.LayerNorm (default, use_bias=False, use_scale=False, reduction over two
axes, use_fast_variance=False, a constant row whose fast variance rounds
below zero), nn.RMSNorm (default, use_scale=False) and nn.GroupNorm
(num_groups=2, group_size=2, num_groups=4 over axes 2 and 3 only), and the parameter paths of the three layers
inside a compact module.

    sh tests/golden/make-venv.sh
    ~/.cache/grove/venv/bin/python tests/golden/make_flax_norm_golden.py

Each case records the input x (a fixed pattern), the params init made
(paths, shapes, values), the params the outputs are computed with (init's
shapes, a non-trivial scale and bias set here so that they matter), the
output of model.apply, and the gradients of loss = sum(apply(params, x) * w)
for a fixed w with respect to x and to every param. Floats are float32 bit
patterns ('0x%08x').

Numerics of the reference: as tests/golden/make_optax_optimizers_golden.py
explains, XLA runs with
    XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp
so that it computes Flax's formulas one float32 operation after another, as
written, the same on every machine. Reductions (the means and the parameter
gradients) still add their terms in XLA's order; the C test says how far
grove's order is from it."""
import json
import math
import os
import struct

PINNED_FLAGS = '--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp'
os.environ['XLA_FLAGS'] = PINNED_FLAGS

import flax  # noqa: E402
import flax.linen as nn  # noqa: E402  (after XLA_FLAGS)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))


def bits(a):
    a = np.asarray(a, np.float32).reshape(-1)
    return ['0x%08x' % struct.unpack('<I', struct.pack('<f', float(x)))[0] for x in a]


def pattern(shape, a, b, c):
    n = int(np.prod(shape))
    v = [a * math.sin(b * i + c) + 0.25 * math.cos(0.37 * i * i) for i in range(n)]
    return np.asarray(v, np.float64).astype(np.float32).reshape(shape)


def flat(tree, prefix=''):
    out = {}
    for k, v in tree.items():
        p = prefix + '/' + k if prefix else k
        if isinstance(v, dict):
            out.update(flat(v, p))
        else:
            out[p] = v
    return out


def unflat(d):
    out = {}
    for p, v in d.items():
        cur = out
        parts = p.split('/')
        for k in parts[:-1]:
            cur = cur.setdefault(k, {})
        cur[parts[-1]] = v
    return out


def tensors(d):
    return {p: {'shape': list(v.shape), 'bits': bits(v)} for p, v in sorted(d.items())}


def run(name, model, x, config, note=''):
    x = jnp.asarray(x)
    variables = jax.jit(model.init)(jax.random.key(0), x)
    init = flat(flax.core.unfreeze(variables))
    # non-trivial params of init's shapes: scale near 1, bias near 0
    params = {}
    for i, (p, v) in enumerate(sorted(init.items())):
        if p.endswith('scale'):
            params[p] = jnp.asarray(pattern(v.shape, 0.3, 0.9, 0.2 + i)) + 1.0
        else:
            params[p] = jnp.asarray(pattern(v.shape, 0.2, 1.1, 0.5 + i))
    w = jnp.asarray(pattern(x.shape, 1.0, 0.61, 0.4))

    def f(params, x):
        return model.apply(unflat(params), x)

    def loss(params, x):
        return jnp.sum(f(params, x) * w)

    out = jax.jit(f)(params, x)
    gp, gx = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
    return {
        'name': name, 'config': config, 'note': note,
        'x_shape': list(x.shape), 'x': bits(x), 'w': bits(w),
        'init': tensors(init), 'params': tensors(params),
        'out': bits(out), 'grad_x': bits(gx), 'grad_params': tensors(gp),
    }


def main():
    x3 = pattern((2, 3, 8), 1.5, 0.7, 0.3) + 0.5
    x4 = pattern((2, 4, 4, 8), 1.2, 0.43, 0.1) - 0.25

    # a row of one repeated value, chosen so that the fast variance
    # mean(x^2) - mean(x)^2 rounds below zero and max(0, .) matters
    const = None
    for k in range(1, 4000):
        c = np.float32(0.1 + k * 0.00731)
        row = jnp.full((8,), c, jnp.float32)
        d = jax.jit(lambda r: jnp.mean(jnp.square(r)) - jnp.square(jnp.mean(r)))(row)
        if float(d) < 0:
            const = c
            break
    assert const is not None
    xc = x3.copy()
    xc[0, 1, :] = const

    cases = [
        run('layernorm_default', nn.LayerNorm(), x3, {}),
        run('layernorm_no_bias', nn.LayerNorm(use_bias=False), x3, {'use_bias': False}),
        run('layernorm_no_scale', nn.LayerNorm(use_scale=False), x3, {'use_scale': False}),
        run('layernorm_reduce_1_2', nn.LayerNorm(reduction_axes=(1, 2), feature_axes=-1), x3,
            {'reduction_axes': [1, 2], 'feature_axes': [-1]}),
        run('layernorm_feature_1_2', nn.LayerNorm(reduction_axes=(1, 2), feature_axes=(1, 2)),
            x3, {'reduction_axes': [1, 2], 'feature_axes': [1, 2]}),
        run('layernorm_slow_variance', nn.LayerNorm(use_fast_variance=False), x3,
            {'use_fast_variance': False}),
        run('layernorm_constant_row', nn.LayerNorm(), xc, {},
            note='row [0,1,:] is %r: its fast variance is negative before max(0, .)'
            % float(const)),
        run('rmsnorm_default', nn.RMSNorm(), x3, {}),
        run('rmsnorm_no_scale', nn.RMSNorm(use_scale=False), x3, {'use_scale': False}),
        run('groupnorm_num_groups_2', nn.GroupNorm(num_groups=2), x4, {'num_groups': 2}),
        run('groupnorm_group_size_2', nn.GroupNorm(num_groups=None, group_size=2), x4,
            {'num_groups': None, 'group_size': 2}),
        run('groupnorm_reduce_2_3', nn.GroupNorm(num_groups=4, reduction_axes=(2, 3)), x4,
            {'num_groups': 4, 'reduction_axes': [2, 3]}),
    ]

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.LayerNorm()(x)
            x = nn.RMSNorm()(x)
            x = nn.GroupNorm(num_groups=4)(x)
            return nn.LayerNorm(use_bias=False)(x)

    v = Net().init(jax.random.key(0), jnp.asarray(x4))
    nested = {p: list(a.shape) for p, a in sorted(flat(flax.core.unfreeze(v)).items())}

    doc = {
        'generator': 'tests/golden/make_flax_norm_golden.py',
        'versions': {'jax': jax.__version__, 'flax': flax.__version__},
        'xla_flags': PINNED_FLAGS,
        'loss': 'sum(apply(params, x) * w)',
        'cases': cases,
        'nested_paths': nested,
    }
    with open(os.path.join(here, 'flax_norm_golden.json'), 'w') as fh:
        json.dump(doc, fh, indent=1)
        fh.write('\n')


if __name__ == '__main__':
    main()
