#!/usr/bin/env python3
"""Regenerates tests/golden/flax_conv_golden.json with the real Flax: nn.Conv
(init params; outputs for SAME, VALID, strided, explicit padding, kernel
dilation, input dilation, grouped, depthwise and 1-d causal configurations;
gradients of sum(out * w) w.r.t. the input, kernel and bias),
nn.max_pool / nn.avg_pool (outputs and input gradients) and nn.ConvTranspose
(SAME, VALID, explicit with kernel dilation, transpose_kernel, 1-d; as
Conv), then Conv with CIRCULAR padding, on small NHWC inputs.

    sh tests/golden/make-venv.sh
    ~/.cache/grove/venv/bin/python tests/golden/make_flax_conv_golden.py

Floats are float32 bit patterns ('0x%08x'), row-major, with their shapes;
params are keyed by their Flax path ('kernel', 'bias'). XLA runs with
    XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp
as tests/golden/make_optax_transforms_golden.py explains; init runs in a
subprocess with XLA's default flags, as model.init runs for users (the
pinned flags change the last bits of jax.random.truncated_normal)."""
import json
import os
import pickle
import struct
import subprocess
import sys

INIT_ONLY = sys.argv[1:] == ['--init-only']
if not INIT_ONLY:
    os.environ['XLA_FLAGS'] = '--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp'

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import flax.linen as nn  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))


def bits(a):
    a = np.asarray(a, dtype=np.float32)
    return [('0x%08x' % struct.unpack('<I', struct.pack('<f', float(v)))[0]) for v in a.reshape(-1)]


def tensor(a):
    a = np.asarray(a, dtype=np.float32)
    return {'shape': list(a.shape), 'bits': bits(a)}


def flat(tree, prefix=''):
    out = {}
    for k in sorted(tree):
        v = tree[k]
        p = prefix + '/' + k if prefix else k
        out.update(flat(v, p) if isinstance(v, dict) else {p: tensor(v)})
    return out


rs = np.random.RandomState(0)
x2 = rs.standard_normal((2, 6, 7, 4)).astype(np.float32)
x1 = rs.standard_normal((2, 9, 3)).astype(np.float32)

# (name, input, Conv kwargs); the grove test builds the same modules by name
CONVS = [
    ('conv_same', x2, dict(features=5, kernel_size=(3, 3))),
    ('conv_valid', x2, dict(features=5, kernel_size=(3, 2), padding='VALID')),
    ('conv_strided', x2, dict(features=6, kernel_size=(3, 3), strides=(2, 2))),
    ('conv_explicit', x2, dict(features=3, kernel_size=(2, 3), strides=(1, 2),
                               padding=((1, 0), (2, 1)))),
    ('conv_kernel_dilated', x2, dict(features=4, kernel_size=(3, 3), kernel_dilation=(2, 1))),
    ('conv_input_dilated', x2, dict(features=4, kernel_size=(2, 2), input_dilation=(2, 2),
                                    padding=((0, 0), (1, 1)))),
    ('conv_grouped', x2, dict(features=6, kernel_size=(3, 3), feature_group_count=2)),
    ('conv_depthwise', x2, dict(features=4, kernel_size=(3, 3), feature_group_count=4,
                                use_bias=False)),
    ('conv1d_causal', x1, dict(features=3, kernel_size=(3,), padding='CAUSAL')),
]

POOLS = [
    ('max_pool_valid', lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))),
    ('max_pool_same', lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding='SAME')),
    ('max_pool_explicit', lambda x: nn.max_pool(x, (2, 2), padding=((1, 0), (0, 1)))),
    ('avg_pool_valid', lambda x: nn.avg_pool(x, (2, 3), strides=(1, 2))),
    ('avg_pool_same', lambda x: nn.avg_pool(x, (3, 3), padding='SAME')),
    ('avg_pool_same_exclude_pad', lambda x: nn.avg_pool(x, (3, 3), padding='SAME',
                                                       count_include_pad=False)),
]

TRANSPOSES = [
    ('conv_transpose_same', x2, dict(features=4, kernel_size=(3, 3), strides=(2, 2))),
    ('conv_transpose_valid', x2, dict(features=3, kernel_size=(2, 3), strides=(2, 1),
                                      padding='VALID')),
    ('conv_transpose_explicit_dilated', x2, dict(features=3, kernel_size=(3, 2),
                                                 padding=((1, 2), (0, 1)),
                                                 kernel_dilation=(1, 2))),
    ('conv_transpose_transpose_kernel', x2, dict(features=5, kernel_size=(3, 3), strides=(2, 2),
                                                 transpose_kernel=True)),
    ('conv_transpose_1d', x1, dict(features=2, kernel_size=(4,), strides=(3,))),
]
MORE_CONVS = [
    ('conv_circular', x2, dict(features=3, kernel_size=(3, 4), padding='CIRCULAR')),
]
MODULES = [(n, x, nn.Conv(**kw)) for n, x, kw in CONVS]
MODULES += [(n, x, nn.ConvTranspose(**kw)) for n, x, kw in TRANSPOSES]
MODULES += [(n, x, nn.Conv(**kw)) for n, x, kw in MORE_CONVS]

if INIT_ONLY:
    inits = {name: jax.tree_util.tree_map(np.asarray,
                                          m.init(jax.random.PRNGKey(0), x)['params'])
             for name, x, m in MODULES}
    sys.stdout.buffer.write(pickle.dumps(inits))
    sys.exit(0)

env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
INITS = pickle.loads(subprocess.run([sys.executable, __file__, '--init-only'], env=env,
                                    check=True, capture_output=True).stdout)


def module_case(name, x, m):
    p = jax.tree_util.tree_map(jnp.asarray, INITS[name])
    y = m.apply({'params': p}, x)
    w = rs.standard_normal(y.shape).astype(np.float32)

    def loss(params, xx):
        return jnp.sum(m.apply({'params': params}, xx) * w)
    gp, gx = jax.grad(loss, argnums=(0, 1))(p, jnp.asarray(x))
    return {'name': name, 'x': tensor(x), 'w': tensor(w), 'init': flat(INITS[name]),
            'out': tensor(y), 'grad_x': tensor(gx), 'grad_params': flat(gp)}


# the cases in this order, so that each case's w stays what it was when a
# later list was added
cases = [module_case(name, x, m) for name, x, m in MODULES[:len(CONVS)]]

for name, f in POOLS:
    y = f(jnp.asarray(x2))
    w = rs.standard_normal(y.shape).astype(np.float32)
    gx = jax.grad(lambda xx: jnp.sum(f(xx) * w))(jnp.asarray(x2))
    cases.append({'name': name, 'x': tensor(x2), 'w': tensor(w), 'out': tensor(y),
                  'grad_x': tensor(gx)})

cases += [module_case(name, x, m) for name, x, m in MODULES[len(CONVS):]]

doc = {'flax': __import__('flax').__version__, 'jax': jax.__version__,
       'xla_flags': os.environ['XLA_FLAGS'], 'cases': cases}
with open(os.path.join(here, 'flax_conv_golden.json'), 'w') as fh:
    json.dump(doc, fh, indent=0, separators=(',', ':'))
    fh.write('\n')
