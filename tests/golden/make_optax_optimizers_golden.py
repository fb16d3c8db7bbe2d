#!/usr/bin/env python3
"""Regenerates tests/golden/optax_optimizers_golden.json: five jitted update
steps of the optimisers of include/grove/optimizers.h (and sgd with a
schedule), run by the real optax, for tests/optim/test_optimizers.c.

    sh tests/golden/make-venv.sh        # once: jax 0.10.2, optax 0.2.8
    ~/.cache/grove/venv/bin/python tests/golden/make_optax_optimizers_golden.py

Each case is an optax call (`call`, kept as text for the reader; the C test
has the same optimiser built with grove's API under the case's name), a
params tree and five steps of
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
jitted as one function, as a train step is. After each step the JSON holds
the updates, the new params and every state leaf; `init` holds the state
from tx.init, and `state_structure` the state's nesting as grove spells it
(a NamedTuple is a dict of its fields in field order, a tuple a list,
EmptyState and MaskedNode an empty list, a leaf "dtype[shape]").

Inputs are not stored: they follow a pattern of small integers over powers
of two, exact in float32, that the C test rebuilds (see `pattern`). Leaf k
(in flatten order) of n elements, element i, step s = 0..4:
    param  ((7 i + 3 k) mod 13 - 6) / 8
    grad   ((5 i + 11 k + 3 s) mod 17 - 8) (s mod 3 + 1) / 32 * grad_scale
and a "zeros" leaf has zero params and zero grads on even steps (the
pattern's grads on odd ones). Lookahead's params are
LookaheadParams(fast=P, slow=P), the grads those of fast.

Floats are float32 bit patterns '0x%08x' (a leaf of more than 1024 elements
as one string of 8-hex-digit words, to keep the file small); counts are
ints.

Numerics of the reference. XLA runs here with
    XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp
so that it computes optax's formulas as written, one IEEE float32 operation
after another, the same on every machine. By default XLA's CPU backend
(measured on an AVX-512 Xeon) contracts a*b + c into one FMA where the CPU
has it, computes rsqrt with the hardware estimate plus a Newton step (up to
2 ulp from 1/sqrt), and its algebraic simplifier rewrites (a/b)/c to
a/(b*c), a/sqrt(b) to a*rsqrt(b) and x/const to x*(1/const): each depends
on the machine or is XLA's choice rather than optax's, and grove (built with
-ffp-contract=off) rounds every operation as written. The script also runs
every case under XLA's default flags, in a child process, and stores per
case the largest difference from the pinned run (`xla_default_max_ulp`, per
kind): that is how far a user's default jitted optax moves from these
numbers, and from grove's.

Differences are measured in ulps of the leaf: max |a_i - b_i| over a leaf
divided by the spacing of float32 at the leaf's largest magnitude (so one
rounding in an element near zero counts as small, as it is beside the
leaf's scale). Against the pinned run grove is bit for bit equal except
where the case's `tol_ulp` (per kind: updates, params, state) allows a
difference, for the reason in `tol_note`: XLA's own tanh approximation
against glibc's tanhf, and sums of more than 32 floats, which XLA adds in a
tree-like order and grove from left to right.
"""
import json
import os
import subprocess
import sys

PINNED_FLAGS = '--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp'
CHILD = '--default-xla'
if CHILD not in sys.argv:
    os.environ['XLA_FLAGS'] = PINNED_FLAGS

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'optax_optimizers_golden.json')
STEPS = 5
COMPACT = 1024

# ---------------------------------------------------------------- inputs

BASIC = [('b', (5,), 'pattern'), ('w', (3, 4), 'pattern'), ('z', (3,), 'zeros')]
# (129, 128): both of the two largest dims >= 128, as adafactor's default
# min_dim_size_to_factor needs to factor (one large dim is not enough);
# argsort puts the 129 last (d0 = 0, d1 = 1), so v_row, the mean over axis
# 0, has shape (128,) and v_col (129,).
BIG = [('big', (129, 128), 'pattern'), ('v', (5,), 'pattern'), ('z', (3,), 'zeros')]
# for min_dim_size_to_factor=3: (5,3) and (3,6) factor on either axis order,
# (2,5,3) factors its last two axes, a vector and the zeros do not. (XLA's
# CPU backend adds up a whole leaf whose leading dim is 2 or 4, as (4,3),
# in two parallel parts, not left to right; these shapes it adds as grove.)
SMALL = [('m', (5, 3), 'pattern'), ('r', (3, 6), 'pattern'), ('t', (2, 5, 3), 'pattern'),
         ('v', (5,), 'pattern'), ('z', (3,), 'zeros')]
MASK = {'b': False, 'w': True, 'z': True}
MASK_SMALL = {'m': True, 'r': False, 't': True, 'v': False, 'z': True}


def leaf_param(shape, k, kind):
    n = int(np.prod(shape))
    if kind == 'zeros':
        return np.zeros(shape, np.float32)
    i = np.arange(n, dtype=np.int64)
    return (((7 * i + 3 * k) % 13 - 6) / 8).astype(np.float32).reshape(shape)


def leaf_grad(shape, k, kind, s, scale):
    n = int(np.prod(shape))
    if kind == 'zeros' and s % 2 == 0:
        return np.zeros(shape, np.float32)
    i = np.arange(n, dtype=np.int64)
    g = ((5 * i + 11 * k + 3 * s) % 17 - 8) * (s % 3 + 1) / 32 * scale
    return g.astype(np.float32).reshape(shape)


def make_tree(leaves, fn):
    return {path: jnp.asarray(fn(shape, k, kind)) for k, (path, shape, kind) in enumerate(leaves)}


# ---------------------------------------------------------------- cases

sched = optax.linear_schedule(0.1, 0.01, 4)


def case(name, call, make, leaves=BASIC, *, lookahead=False, grad_scale=1, mask=None,
         tol=None, note=''):
    return dict(name=name, call=call, make=make, leaves=leaves, lookahead=lookahead,
                grad_scale=grad_scale, mask=mask, tol=tol or {}, note=note)


# Tolerances in ulps of the leaf's largest magnitude, as measured against
# grove (GROVE_GOLDEN_REPORT=1 build/<dir>/tests/test_optim_optimizers prints
# them): 0 unless said here.
TANH = ('tanh: XLA evaluates its own rational approximation of tanh, grove glibc tanhf '
        '(up to 2 ulp in the updates)')
SUMS = ('the means over the whole 129 x 128 leaf in clip_by_block_rms and '
        'scale_by_param_block_rms: XLA adds 16512 floats in a tree-like order (0.5 ulp from '
        'the exact mean at step 1), grove from left to right (71 ulp from it), which moves the '
        'clipped update by up to 61 ulp of the leaf. The statistics v_row and v_col are exact: '
        'the squared pattern grads are multiples of 2^-10 and add up exactly in any order')

CASES = [
    case('rmsprop', 'optax.rmsprop(0.01)', lambda: optax.rmsprop(0.01)),
    case('rmsprop_centered_momentum_nesterov',
         'optax.rmsprop(0.01, centered=True, momentum=0.9, nesterov=True)',
         lambda: optax.rmsprop(0.01, centered=True, momentum=0.9, nesterov=True)),
    case('rmsprop_bias_correction',
         'optax.rmsprop(0.01, decay=0.95, eps=1e-6, initial_scale=0.1, eps_in_sqrt=False, '
         'momentum=0.5, bias_correction=True)',
         lambda: optax.rmsprop(0.01, decay=0.95, eps=1e-6, initial_scale=0.1,
                               eps_in_sqrt=False, momentum=0.5, bias_correction=True)),
    case('rmsprop_centered_bias_correction',
         'optax.rmsprop(0.02, initial_scale=0.5, eps_in_sqrt=False, centered=True, '
         'bias_correction=True)',
         lambda: optax.rmsprop(0.02, initial_scale=0.5, eps_in_sqrt=False, centered=True,
                               bias_correction=True)),
    case('rmsprop_schedule', 'optax.rmsprop(optax.linear_schedule(0.1, 0.01, 4), momentum=0.9)',
         lambda: optax.rmsprop(sched, momentum=0.9)),
    case('adagrad', 'optax.adagrad(0.1)', lambda: optax.adagrad(0.1)),
    case('adagrad_zero_init', 'optax.adagrad(0.05, initial_accumulator_value=0.0, eps=1e-6)',
         lambda: optax.adagrad(0.05, initial_accumulator_value=0.0, eps=1e-6)),
    case('adafactor', 'optax.adafactor()', lambda: optax.adafactor(), BIG,
         tol={'updates': 61, 'params': 35}, note=SUMS),
    case('adafactor_small_factored',
         'optax.adafactor(0.01, min_dim_size_to_factor=3, decay_rate=0.7, decay_offset=-3, '
         'clipping_threshold=0.5, momentum=0.9, weight_decay_rate=1e-3, '
         'weight_decay_mask=MASK_SMALL)',
         lambda: optax.adafactor(0.01, min_dim_size_to_factor=3, decay_rate=0.7,
                                 decay_offset=-3, clipping_threshold=0.5, momentum=0.9,
                                 weight_decay_rate=1e-3, weight_decay_mask=MASK_SMALL),
         SMALL, mask=MASK_SMALL),
    case('adafactor_unfactored_schedule',
         'optax.adafactor(optax.linear_schedule(0.1, 0.01, 4), multiply_by_parameter_scale=False, '
         'clipping_threshold=None, eps=1e-20, factored=False)',
         lambda: optax.adafactor(sched, multiply_by_parameter_scale=False,
                                 clipping_threshold=None, eps=1e-20, factored=False), SMALL),
    case('lion', 'optax.lion(0.001)', lambda: optax.lion(0.001)),
    case('lion_masked', 'optax.lion(0.01, b1=0.8, b2=0.95, weight_decay=0.1, mask=MASK)',
         lambda: optax.lion(0.01, b1=0.8, b2=0.95, weight_decay=0.1, mask=MASK), mask=MASK),
    case('scale_by_lion_smooth', "optax.scale_by_lion(b1=0.5, mode='smooth', smooth_beta=2.0)",
         lambda: optax.scale_by_lion(b1=0.5, mode='smooth', smooth_beta=2.0),
         tol={'updates': 2, 'params': 1}, note=TANH),
    case('scale_by_lion_refined', "optax.scale_by_lion(b1=0.5, mode='refined'), grads x 4",
         lambda: optax.scale_by_lion(b1=0.5, mode='refined'), grad_scale=4),
    case('lamb', 'optax.lamb(0.01)', lambda: optax.lamb(0.01)),
    case('lamb_masked',
         'optax.lamb(0.01, b1=0.8, eps=1e-4, eps_root=1e-8, weight_decay=0.01, mask=MASK)',
         lambda: optax.lamb(0.01, b1=0.8, eps=1e-4, eps_root=1e-8, weight_decay=0.01,
                            mask=MASK), mask=MASK),
    case('scale_by_trust_ratio',
         'optax.scale_by_trust_ratio(min_norm=0.5, trust_coefficient=0.9, eps=1e-3)',
         lambda: optax.scale_by_trust_ratio(min_norm=0.5, trust_coefficient=0.9, eps=1e-3)),
    case('adabelief', 'optax.adabelief(0.01)', lambda: optax.adabelief(0.01)),
    case('adabelief_nesterov',
         'optax.adabelief(0.01, b1=0.8, b2=0.99, eps=1e-8, eps_root=1e-12, nesterov=True)',
         lambda: optax.adabelief(0.01, b1=0.8, b2=0.99, eps=1e-8, eps_root=1e-12,
                                 nesterov=True)),
    case('adamax', 'optax.adamax(0.01)', lambda: optax.adamax(0.01)),
    case('adamax_custom', 'optax.adamax(0.02, b1=0.8, b2=0.99, eps=1e-4)',
         lambda: optax.adamax(0.02, b1=0.8, b2=0.99, eps=1e-4)),
    case('sgd_schedule',
         'optax.sgd(optax.linear_schedule(0.1, 0.01, 4), momentum=0.9, nesterov=True)',
         lambda: optax.sgd(sched, momentum=0.9, nesterov=True)),
    case('lookahead_adam', 'optax.lookahead(optax.adam(0.01), sync_period=2, slow_step_size=0.5)',
         lambda: optax.lookahead(optax.adam(0.01), sync_period=2, slow_step_size=0.5),
         lookahead=True),
    case('lookahead_sgd_reset',
         'optax.lookahead(optax.sgd(0.1, momentum=0.9), sync_period=3, slow_step_size=0.3, '
         'reset_state=True)',
         lambda: optax.lookahead(optax.sgd(0.1, momentum=0.9), sync_period=3,
                                 slow_step_size=0.3, reset_state=True),
         lookahead=True),
]

# ---------------------------------------------------------------- encoding


def key_str(k):
    if isinstance(k, jax.tree_util.DictKey):
        return str(k.key)
    if isinstance(k, jax.tree_util.SequenceKey):
        return str(k.idx)
    if isinstance(k, jax.tree_util.GetAttrKey):
        return k.name
    raise TypeError(f'unexpected key {k!r}')


def path_str(path):
    return '/'.join(key_str(k) for k in path)


def bits(x):
    a = np.asarray(x)
    if a.dtype == np.int32:
        assert a.shape == (), a.shape
        return int(a)
    assert a.dtype == np.float32, a.dtype
    words = a.reshape(-1).view(np.uint32)
    if words.size > COMPACT:
        return '0x' + ''.join('%08x' % w for w in words)
    return ['0x%08x' % w for w in words]


def leaves_by_path(tree):
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {path_str(p): bits(v) for p, v in flat}


def structure(x):
    if isinstance(x, tuple) and hasattr(x, '_fields'):  # a NamedTuple
        if not x._fields:
            return []  # EmptyState(), MaskedNode()
        return {f: structure(getattr(x, f)) for f in x._fields}
    if isinstance(x, (tuple, list)):
        return [structure(v) for v in x]
    if isinstance(x, dict):
        return {str(k): structure(v) for k, v in x.items()}
    a = np.asarray(x)
    return '%s[%s]' % (a.dtype.name, ','.join(str(d) for d in a.shape))


# ---------------------------------------------------------------- running


def run(c):
    tx = c['make']()
    p = make_tree(c['leaves'], lambda shape, k, kind: leaf_param(shape, k, kind))
    params = optax.LookaheadParams.init_synced(p) if c['lookahead'] else p
    state = jax.jit(tx.init)(params)
    out = dict(init=leaves_by_path(state), state_structure=structure(state), steps=[])

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return updates, optax.apply_updates(params, updates), state

    for s in range(STEPS):
        grads = make_tree(c['leaves'],
                          lambda shape, k, kind: leaf_grad(shape, k, kind, s, c['grad_scale']))
        updates, params, state = step(params, state, grads)
        out['steps'].append(dict(updates=leaves_by_path(updates), params=leaves_by_path(params),
                                 state=leaves_by_path(state)))
    out['update_structure'] = structure(updates)
    return out


def words(v):
    if isinstance(v, int):
        return None
    if isinstance(v, str):
        return np.array([int(v[i:i + 8], 16) for i in range(2, len(v), 8)], np.uint32)
    return np.array([int(w, 16) for w in v], np.uint32)


def ulp_diff(a, b):
    """The largest |a_i - b_i| of two float32 leaves (word arrays), in ulps of
    the leaf's largest magnitude |a_i| (a difference of one rounding in an
    element near zero counts as small, as it is next to the leaf's scale)."""
    if a.size == 0:
        return 0
    fa, fb = a.view(np.float32).astype(np.float64), b.view(np.float32).astype(np.float64)
    if np.array_equal(a, b):
        return 0
    if not (np.isfinite(fa).all() and np.isfinite(fb).all()):
        return -1
    scale = np.abs(fa).max()
    ulp = np.spacing(np.float32(scale)) if scale > 0 else np.float32(2.0 ** -149)
    return int(np.ceil(np.abs(fa - fb).max() / float(ulp)))


def max_ulp(pinned, default):
    worst = {'updates': 0, 'params': 0, 'state': 0}
    for sp, sd in zip(pinned['steps'], default['steps']):
        for kind in worst:
            for path, v in sp[kind].items():
                w = words(v)
                if w is not None:
                    worst[kind] = max(worst[kind], ulp_diff(w, words(sd[kind][path])))
                elif v != sd[kind][path]:
                    worst[kind] = -1  # a count differs: never expected
    return worst


def main():
    if CHILD in sys.argv:  # XLA's default flags: the results only
        json.dump({c['name']: run(c) for c in CASES}, sys.stdout)
        return
    results = {c['name']: run(c) for c in CASES}
    env = dict(os.environ)
    env.pop('XLA_FLAGS', None)
    child = subprocess.run([sys.executable, os.path.abspath(__file__), CHILD], env=env,
                           check=True, capture_output=True, text=True)
    default = json.loads(child.stdout)
    cases = []
    for c in CASES:
        r = results[c['name']]
        cases.append(dict(
            name=c['name'], call=c['call'],
            params=[dict(path=p, shape=list(s), kind=k) for p, s, k in c['leaves']],
            lookahead=c['lookahead'], grad_scale=c['grad_scale'], mask=c['mask'],
            tol_ulp={k: c['tol'].get(k, 0) for k in ('updates', 'params', 'state')},
            tol_note=c['note'],
            xla_default_max_ulp=max_ulp(r, default[c['name']]),
            state_structure=r['state_structure'], update_structure=r['update_structure'],
            init=r['init'], steps=r['steps']))
    doc = dict(
        about='optax %s optimisers, 5 jitted steps each (see make_optax_optimizers_golden.py)'
              % optax.__version__,
        versions=dict(jax=jax.__version__, optax=optax.__version__),
        xla_flags=PINNED_FLAGS,
        pattern=dict(
            param='((7 i + 3 k) mod 13 - 6) / 8',
            grad='((5 i + 11 k + 3 s) mod 17 - 8) (s mod 3 + 1) / 32 * grad_scale',
            zeros='params 0; grads 0 on even steps, the grad pattern on odd ones',
            k='the leaf index in flatten order', i='the element index (row-major)',
            s='the step, 0..4'),
        cases=cases)
    with open(OUT, 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    for c in cases:
        print('%-36s xla default vs pinned: %s' % (c['name'], c['xla_default_max_ulp']))
    print('wrote', OUT)


if __name__ == '__main__':
    main()
