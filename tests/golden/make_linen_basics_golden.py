#!/usr/bin/env python3
"""Regenerates tests/golden/linen_basics.txt, the exact output expected from
apps/linen-basics: the values come from the JAX PRNG reference model
(jax_prng_ref.py, legacy scheme as the 2023 tutorial), the printing from
numpy's array2string wrapped the way jax.Array.__repr__ does.

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


class JaxArray:
    """Prints like jax.Array.__repr__."""

    def __init__(self, a):
        self.a = a

    def __repr__(self):
        prefix, dtype_str = 'Array(', 'dtype=%s)' % self.a.dtype.name
        s = np.array2string(self.a, prefix=prefix, suffix=',', separator=', ',
                            max_line_width=75)
        last = len(s) - s.rfind('\n') + 1
        sep = ' ' if last + len(dtype_str) + 1 <= 75 else ' ' * len(prefix)
        return prefix + s + ',' + sep + dtype_str


key = R.prng_key(0xffff)
key, model_key = R.split(key, 2)
kernel, bias = R.dense_init(model_key, ('layer',), 8, 4)
params = {'params': {'layer': {'kernel': JaxArray(np.array(kernel, np.float32)),
                               'bias': JaxArray(np.array(bias, np.float32))}}}
shapes = {'params': {'layer': {'kernel': (8, 4), 'bias': (4,)}}}
out = []
out.append('key = PRNGKey(0xffff); key, model_key = split(key)')
out.append('model_key = [%d %d]' % model_key)
out.append('')
out.append('params = Model().init(model_key, jnp.zeros((1, 8)))')
out.append(str(params))
out.append('')
out.append('param shapes')
out.append(str(shapes))
out.append('parameters: 36')
with open(os.path.join(here, 'linen_basics.txt'), 'w') as f:
    f.write('\n'.join(out) + '\n')
print('\n'.join(out))
