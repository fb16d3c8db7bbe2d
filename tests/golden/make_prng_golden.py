#!/usr/bin/env python3
"""Regenerates tests/golden/prng_golden.json: values beyond the public vectors
(permutation, every initialiser, partitionable randint/bernoulli, other
truncation bounds), computed with the JAX PRNG reference model
(jax_prng_ref.py, which passes all public vectors).

    /usr/bin/python3 tests/golden/make_prng_golden.py [--ref DIR]

DIR is the folder holding jax_prng_ref.py (default: ../shared/reference
beside the repository). Floats are stored as float32 bit patterns so the C
test compares bit for bit."""
import argparse
import json
import math
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument('--ref', default=os.path.join(here, '..', '..', '..', 'shared', 'reference'))
args = ap.parse_args()
sys.path.insert(0, os.path.abspath(args.ref))
import jax_prng_ref as R  # noqa: E402


def bits(xs):
    return ['0x%08x' % R.bits_from_f32(x) for x in xs]


def permutation(key, n, partitionable):
    """jax.random.permutation(key, n): jax.random._shuffle with
    ceil(3 ln n / ln(2^32-1)) rounds of a stable sort by fresh random bits."""
    rounds = int(math.ceil(3 * math.log(max(1, n)) / math.log(0xFFFFFFFF)))
    x = list(range(n))
    for _ in range(rounds):
        key, sub = R.split(key, 2, partitionable)
        k = R.random_bits(sub, 32, n, partitionable)
        order = sorted(range(n), key=lambda i: k[i])  # Python's sort is stable
        x = [x[i] for i in order]
    return x


cases = []
for mode in ('legacy', 'partitionable'):
    R.PARTITIONABLE = mode == 'partitionable'
    part = R.PARTITIONABLE
    key = R.prng_key(42)
    for n in (1, 2, 10, 100, 1000):
        cases.append({'op': 'permutation', 'mode': mode, 'seed': 42, 'n': n,
                      'expected': permutation(key, n, part)})
    inits = [
        ('lecun_normal', (8, 4), lambda k, s: R.lecun_normal(k, s)),
        ('lecun_uniform', (8, 4), lambda k, s: R.variance_scaling(k, s, 1.0, 'fan_in', 'uniform')),
        ('glorot_uniform', (6, 5), lambda k, s: R.variance_scaling(k, s, 1.0, 'fan_avg', 'uniform')),
        ('glorot_normal', (6, 5), lambda k, s: R.variance_scaling(k, s, 1.0, 'fan_avg', 'truncated_normal')),
        ('he_normal', (3, 3, 2, 4), lambda k, s: R.variance_scaling(k, s, 2.0, 'fan_in', 'truncated_normal')),
        ('he_uniform', (7, 3), lambda k, s: R.variance_scaling(k, s, 2.0, 'fan_in', 'uniform')),
        ('fan_out_normal', (5, 9), lambda k, s: R.variance_scaling(k, s, 0.5, 'fan_out', 'normal')),
        ('fan_geo_avg_normal', (4, 16), lambda k, s: R.variance_scaling(k, s, 1.0, 'fan_geo_avg', 'normal')),
    ]
    for name, shape, fn in inits:
        k = R.fold_in_static(key, ('layer', 1))
        cases.append({'op': 'init', 'mode': mode, 'init': name, 'seed': 42,
                      'parts': ['layer', 1], 'shape': list(shape),
                      'expected': bits(fn(k, shape))})
    cases.append({'op': 'randint', 'mode': mode, 'seed': 42, 'shape': [12],
                  'minval': -5, 'maxval': 1000, 'expected': R.randint32(key, 12, -5, 1000)})
    cases.append({'op': 'bernoulli', 'mode': mode, 'seed': 42, 'p': 0.3, 'shape': [20],
                  'expected': R.bernoulli(key, 0.3, 20)})
    cases.append({'op': 'truncated_normal', 'mode': mode, 'seed': 42, 'lower': -1.0,
                  'upper': 3.0, 'shape': [16],
                  'expected': bits(R.truncated_normal(key, -1.0, 3.0, 16))})
    cases.append({'op': 'uniform', 'mode': mode, 'seed': 42, 'minval': -3.0, 'maxval': 0.5,
                  'shape': [9], 'expected': bits(R.uniform(key, 9, -3.0, 0.5))})
    cases.append({'op': 'normal', 'mode': mode, 'seed': 42, 'shape': [257],
                  'expected': bits(R.normal(key, 257))})
    for w in (8, 16, 64):
        cases.append({'op': 'bits', 'mode': mode, 'seed': 42, 'width': w, 'shape': [7],
                      'expected': [str(v) for v in R.random_bits(key, w, 7)]})
    cases.append({'op': 'split', 'mode': mode, 'seed': 42, 'num': 5,
                  'expected': [list(k) for k in R.split(key, 5)]})

out = os.path.join(here, 'prng_golden.json')
with open(out, 'w') as f:
    json.dump({'generator': 'tests/golden/make_prng_golden.py (jax_prng_ref.py model)',
               'cases': cases}, f, indent=1)
print('wrote %d cases to %s' % (len(cases), out))
