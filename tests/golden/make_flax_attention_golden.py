#!/usr/bin/env python3
"""Regenerates tests/golden/flax_attention_golden.json with the real Flax:
DenseGeneral, SelfAttention and MultiHeadDotProductAttention (init params,
outputs with no mask, a causal mask, a padding mask and different query and
key/value lengths, gradients of sum(out * w) w.r.t. the params, attention
dropout with a fixed 'dropout' key), in both threefry schemes.

    sh tests/golden/make-venv.sh
    ~/.cache/grove/venv/bin/python tests/golden/make_flax_attention_golden.py

Floats are float32 bit patterns ('0x%08x'), row-major, with their shapes.
Params are keyed by their Flax path ('query/kernel').

XLA runs with its default flags, not the pinned ones of
tests/golden/make_optax_transforms_golden.py: on this layer those change
what Flax computes, and grove follows the default. With
--xla_cpu_max_isa=SSE4_2 jax.random.truncated_normal (so every kernel's
init) moves by an ulp or two and the small dots lose their fused
multiply-adds; grove's init and its reference evaluator's dots are JAX's
defaults (docs/random.md). With the defaults, XLA's algebraic simplifier
makes softmax's division by the sum a product with its reciprocal, which
grove's attention writes out (src/nn/attention.c).

Made on an x86-64 CPU with AVX-512 and FMA; XLA's default code depends on
the CPU's instruction set, so another machine may write other last bits."""
import json
import os
import struct
import warnings

# XLA's default flags, as a Flax user runs it (see the docstring)
os.environ.pop('XLA_FLAGS', None)

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import flax.linen as nn  # noqa: E402

warnings.simplefilter('ignore', DeprecationWarning)  # SelfAttention's notice

here = os.path.dirname(os.path.abspath(__file__))


def bits(a):
    a = np.asarray(a, dtype=np.float32)
    return {'shape': list(a.shape),
            'bits': ['0x%08x' % struct.unpack('<I', struct.pack('<f', float(v)))[0]
                     for v in a.reshape(-1)]}


def flat(tree, prefix=''):
    out = {}
    for k in sorted(tree):
        v = tree[k]
        p = prefix + '/' + k if prefix else k
        if isinstance(v, dict):
            out.update(flat(v, p))
        else:
            out[p] = bits(v)
    return out


rs = np.random.RandomState(0)
x = rs.standard_normal((2, 4, 6)).astype(np.float32)
xq = rs.standard_normal((2, 3, 4)).astype(np.float32)
xkv = rs.standard_normal((2, 5, 7)).astype(np.float32)
xd = rs.standard_normal((2, 3, 4, 5)).astype(np.float32)
w_self = rs.standard_normal((2, 4, 6)).astype(np.float32)
w_cross = rs.standard_normal((2, 3, 5)).astype(np.float32)
lengths = np.array([4, 2])
# dot_product_attention on its own: depth 3, so 1/sqrt(depth) is inexact and
# scaling the query before the einsum differs from scaling the logits after
fq = rs.standard_normal((2, 3, 2, 3)).astype(np.float32)
fk = rs.standard_normal((2, 5, 2, 3)).astype(np.float32)
fv = rs.standard_normal((2, 5, 2, 4)).astype(np.float32)
fmask = (rs.uniform(size=(2, 1, 3, 5)) > 0.3).astype(np.float32)
# logits near float32's limit: q . k overflows (4e38) but (q / sqrt(3)) . k
# does not, so only the query scaled before the einsum stays finite
big = np.float32(np.sqrt(4e38 / 3))
lq = np.full((1, 1, 1, 3), big, np.float32)
lk = (big * np.array([1, 0.5, 0.25], np.float32)[:, None] * np.ones(3, np.float32))
lk = lk.astype(np.float32).reshape(1, 3, 1, 3)

causal = nn.make_causal_mask(jnp.ones((2, 4)))
valid = jnp.arange(4)[None, :] < lengths[:, None]
padding = nn.make_attention_mask(valid, valid)

inputs = {'x': bits(x), 'xq': bits(xq), 'xkv': bits(xkv), 'xd': bits(xd),
          'w_self': bits(w_self), 'w_cross': bits(w_cross),
          'causal_mask': bits(causal), 'padding_mask': bits(padding),
          'fq': bits(fq), 'fk': bits(fk), 'fv': bits(fv), 'fmask': bits(fmask),
          'lq': bits(lq), 'lk': bits(lk)}
functions = {
    'weights': bits(nn.dot_product_attention_weights(fq, fk)),
    'weights_masked': bits(nn.dot_product_attention_weights(fq, fk, mask=fmask)),
    'attention_masked': bits(nn.dot_product_attention(fq, fk, fv, mask=fmask)),
    'weights_large': bits(nn.dot_product_attention_weights(lq, lk)),
}


def init(scheme, name, module, *args):
    del scheme, name
    return module.init(jax.random.PRNGKey(0), *args)['params']


def scheme_cases(scheme):
    cases = {}

    dg = nn.DenseGeneral(features=(3, 2), axis=(1, -1))
    p = init(scheme, 'dense_general', dg, xd)
    cases['dense_general'] = {'params': flat(p), 'out': bits(dg.apply({'params': p}, xd))}

    sa = nn.SelfAttention(num_heads=2, qkv_features=8)
    p = init(scheme, 'self', sa, x)
    c = {'params': flat(p)}
    for name, m in (('none', None), ('causal', causal), ('padding', padding)):
        c['out_' + name] = bits(sa.apply({'params': p}, x, mask=m))

    def loss(params, m):
        return jnp.sum(sa.apply({'params': params}, x, mask=m) * w_self)
    c['grad_causal'] = flat(jax.grad(loss)(p, causal))
    cases['self'] = c

    mha = nn.MultiHeadDotProductAttention(num_heads=3, qkv_features=6, out_features=5,
                                          bias_init=nn.initializers.normal(1.0))
    p = init(scheme, 'cross', mha, xq, xkv)
    c = {'params': flat(p), 'out': bits(mha.apply({'params': p}, xq, xkv))}

    def loss_cross(params):
        return jnp.sum(mha.apply({'params': params}, xq, xkv) * w_cross)
    c['grad'] = flat(jax.grad(loss_cross)(p))
    cases['cross'] = c

    for bd in (True, False):
        drop = nn.SelfAttention(num_heads=2, qkv_features=8, dropout_rate=0.5,
                                deterministic=False, broadcast_dropout=bd)
        p = init(scheme, 'dropout%d' % bd, drop, x)
        cases['dropout_broadcast' if bd else 'dropout'] = {
            'params': flat(p),
            'out': bits(drop.apply({'params': p}, x, rngs={'dropout': jax.random.PRNGKey(1)}))}
    return cases


def all_schemes():
    out = {}
    for name, part in (('legacy', False), ('partitionable', True)):
        jax.config.update('jax_threefry_partitionable', part)
        out[name] = scheme_cases(name)
    return out


schemes = all_schemes()

doc = {'flax': __import__('flax').__version__, 'jax': jax.__version__,
       'xla_flags': '', 'inputs': inputs, 'functions': functions, 'schemes': schemes}
with open(os.path.join(here, 'flax_attention_golden.json'), 'w') as f:
    json.dump(doc, f, indent=1)
    f.write('\n')
print('wrote flax_attention_golden.json')
