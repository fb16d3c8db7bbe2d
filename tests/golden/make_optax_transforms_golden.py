#!/usr/bin/env python3
"""Regenerates tests/golden/optax_transforms_golden.json with the real optax:
clip, clip_by_global_norm, ema, trace, add_decayed_weights with a mask,
apply_if_finite, MultiSteps (every_k as an int and as a function, the sum,
both skip functions), multi_transform (a prefix label tree, a full one and a
labelling function), inject_hyperparams (a value changed between steps and a
scheduled learning rate), and the Flax tutorial's chains.

    sh tests/golden/make-venv.sh
    ~/.cache/grove/venv/bin/python tests/golden/make_optax_transforms_golden.py

Each case runs the jitted update for several steps on fixed gradients and
records, after every step, the updates, the new params (optax.apply_updates)
and every state leaf by its path (dict keys, sequence indices and NamedTuple
field names joined with '/', as grove names them). Floats are float32 bit
patterns; counters are integers; bools 0/1.

Numerics of the reference: as tests/golden/make_optax_optimizers_golden.py
explains, XLA runs with
    XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp
so that it computes optax's formulas one float32 operation after another,
as written and as grove does, the same on every machine; the C test then
compares every case bit for bit ("ulps": 0). With XLA's default flags a
jitted optax run differs from these numbers by the fused multiply-adds
XLA's CPU backend makes of a*b + c; "xla_default_units" records how far
(measured, in units of the last place of each leaf's largest magnitude)."""
import json
import os
import struct

PINNED_FLAGS = '--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp'
os.environ['XLA_FLAGS'] = PINNED_FLAGS

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))


def bits(a):
    a = np.asarray(a, np.float32).ravel()
    return ['0x%08x' % struct.unpack('<I', struct.pack('<f', float(x)))[0] for x in a]


def key_str(k):
    if isinstance(k, jax.tree_util.DictKey):
        return str(k.key)
    if isinstance(k, jax.tree_util.SequenceKey):
        return str(k.idx)
    if isinstance(k, jax.tree_util.GetAttrKey):
        return k.name
    if isinstance(k, jax.tree_util.FlattenedIndexKey):
        return str(k.key)
    raise TypeError(k)


def leaves(tree):
    out = []
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        x = np.asarray(x)
        e = {'path': '/'.join(key_str(k) for k in path), 'shape': list(x.shape),
             'dtype': str(x.dtype)}
        if x.dtype == np.float32:
            e['bits'] = bits(x)
        elif x.dtype == np.bool_:
            e['ints'] = [int(v) for v in x.ravel()]
        else:
            e['ints'] = [int(v) for v in x.ravel()]
        out.append(e)
    return out


# How far grove is from optax run with XLA's DEFAULT flags, per case, in
# units of the last place of each leaf's largest magnitude (measured with
# GROVE_GOLDEN_REPORT=1 against a file made without PINNED_FLAGS; cases not
# listed are bit-exact there too). XLA's CPU backend contracts a*b + c into
# one fused multiply-add (one rounding where grove has two): ema's
# (1-d)*g + d*e and Adam's moments are such sums (jit(lambda g, e: 0.1*g +
# 0.9*e) equals fma(0.1, g, 0.9*e) on every input), one rounding per step.
XLA_DEFAULT_UNITS = {'ema_0.9_debias': 1, 'ema_0.9_nodebias': 1, 'ema_0.999': 2, 'trace_0.9_nesterov': 2,
        'chain_clip_adam': 5, 'chain_clip_adam_ema': 4, 'multi_steps_adam_4': 4,
        'multi_steps_sgd_3_sum': 1, 'multi_steps_every_k_fn': 1, 'multi_steps_skip_not_finite': 1,
        'multi_steps_skip_large': 1, 'multi_steps_nan_poisons': 1,
        'multi_transform_freeze_prefix': 1, 'multi_transform_full_labels': 1, 'adam_head_only': 1,
        'inject_adam': 2, 'inject_sgd_schedule_momentum': 2, 'inject_adamw': 2}


def run(name, tx, params, grads, sets=None, has_updated=None, note=''):
    ulps = 0
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    state = tx.init(params)
    init, params0 = leaves(state), leaves(params)
    upd = jax.jit(tx.update)
    steps = []
    for i, g in enumerate(grads):
        g = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), g)
        rec = {'grads': leaves(g)}
        if sets and i in sets:
            for k, v in sets[i].items():
                state.hyperparams[k] = jnp.asarray(v, state.hyperparams[k].dtype)
            rec['set'] = sets[i]
        u, state = upd(g, state, params)
        params = optax.apply_updates(params, u)
        rec.update(updates=leaves(u), params=leaves(params), state=leaves(state))
        if has_updated is not None:
            rec['has_updated'] = int(has_updated(state))
        steps.append(rec)
    return {'name': name, 'ulps': ulps, 'xla_default_units': XLA_DEFAULT_UNITS.get(name, 0),
            'note': note, 'init': init, 'params': params0,
            'steps': steps}


case = run


inf, nan = float('inf'), float('nan')
P2 = {'w': np.array([[0.5, -1.0, 2.0], [0.0, 1.5, -0.25]], np.float32),
      'b': np.array([0.1, -0.2, 0.3], np.float32)}


def gseq(n, scale=1.0, specials=None):
    """n gradient trees like P2 with a changing pattern."""
    out = []
    for i in range(n):
        w = np.array([[1.0, -2.0, 0.5], [0.25, -0.75, 3.0]], np.float32) * (scale * (1 + 0.37 * i))
        w = w * np.float32((-1) ** i)
        b = np.array([0.6, -0.1, -1.2], np.float32) * (scale / (1 + i))
        if specials and i in specials:
            for (leaf, idx), v in specials[i].items():
                (w if leaf == 'w' else b)[idx] = v
        out.append({'w': w, 'b': b})
    return out


cases = []
# clip by value, with the special values
cases.append(case('clip_0.5', optax.clip(0.5), P2,
                  gseq(3, specials={1: {('w', (0, 0)): nan, ('b', 1): -inf, ('b', 2): -0.0}})))
# clip_by_global_norm: above, below, exactly at, zero, NaN, Inf
g_at = [{'w': np.array([[3.0, 0, 0], [0, 0, 0]], np.float32), 'b': np.array([4.0, 0, 0], np.float32)}]
zeros = [{'w': np.zeros((2, 3), np.float32), 'b': np.zeros(3, np.float32)}]
cases.append(case('clip_by_global_norm_1', optax.clip_by_global_norm(1.0), P2,
                  gseq(2) + gseq(1, 0.01) + zeros + g_at))
cases.append(case('clip_by_global_norm_5_at', optax.clip_by_global_norm(5.0), P2, g_at + g_at))
cases.append(case('clip_by_global_norm_special', optax.clip_by_global_norm(1.0), P2,
                  gseq(2, specials={0: {('w', (1, 1)): nan}, 1: {('b', 0): inf}})))
cases.append(case('clip_by_global_norm_0_zero', optax.clip_by_global_norm(0.0), P2, zeros))
# ema
cases.append(case('ema_0.9_debias', optax.ema(0.9), P2, gseq(5)))
cases.append(case('ema_0.9_nodebias', optax.ema(0.9, debias=False), P2, gseq(5)))
cases.append(case('ema_0.999', optax.ema(0.999), P2, gseq(4)))
# trace (momentum) and add_decayed_weights with a mask
cases.append(case('trace_0.9_nesterov', optax.trace(0.9, nesterov=True), P2, gseq(3)))
cases.append(case('add_decayed_weights_mask', optax.add_decayed_weights(0.1, mask={'b': False, 'w': True}),
                  P2, gseq(2)))
# the Flax tutorial's chains
cases.append(case('chain_clip_adam', optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2)),
                  P2, gseq(5)))
cases.append(case('chain_clip_adam_ema', optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2),
                                                     optax.ema(0.999)), P2, gseq(5)))
# apply_if_finite (reference O18's pattern on a tree)
bad = {('w', (0, 1)): nan}
cases.append(case('apply_if_finite_sgd_2', optax.apply_if_finite(optax.sgd(1.0), 2), P2,
                  gseq(8, specials={1: bad, 2: bad, 4: bad, 5: bad, 6: bad})))
# MultiSteps
ms = optax.MultiSteps(optax.adam(1e-2), 4)
cases.append(case('multi_steps_adam_4', ms.gradient_transformation(), P2, gseq(9),
                  has_updated=ms.has_updated))
ms_sum = optax.MultiSteps(optax.sgd(0.1), 3, use_grad_mean=False)
cases.append(case('multi_steps_sgd_3_sum', ms_sum.gradient_transformation(), P2, gseq(7),
                  has_updated=ms_sum.has_updated))
ms_k = optax.MultiSteps(optax.sgd(1e-1), lambda s: jnp.where(s < 2, 1, 3))
cases.append(case('multi_steps_every_k_fn', ms_k.gradient_transformation(), P2, gseq(9),
                  has_updated=ms_k.has_updated))
ms_skip = optax.MultiSteps(optax.sgd(1.0), 2, should_skip_update_fn=optax.skip_not_finite)
cases.append(case('multi_steps_skip_not_finite', ms_skip.gradient_transformation(), P2,
                  gseq(7, specials={2: {('w', (0, 0)): inf}, 3: {('b', 2): nan}}),
                  has_updated=ms_skip.has_updated))
ms_large = optax.MultiSteps(optax.sgd(1.0), 2, should_skip_update_fn=lambda u, s, p:
                            optax.skip_large_updates(u, s, p, 30.0))
cases.append(case('multi_steps_skip_large', ms_large.gradient_transformation(), P2,
                  gseq(6, specials={4: {('b', 0): nan}}), has_updated=ms_large.has_updated))
ms_nan = optax.MultiSteps(optax.adam(1e-2), 2)
cases.append(case('multi_steps_nan_poisons', ms_nan.gradient_transformation(), P2,
                  gseq(5, specials={1: {('b', 1): nan}}), has_updated=ms_nan.has_updated))
# multi_transform: the tutorial's freeze with a prefix label tree
P3 = {'backbone': {'dense': {'kernel': np.array([[0.2, -0.4], [0.6, 0.8]], np.float32),
                             'bias': np.array([0.0, 0.1], np.float32)}},
      'head': {'kernel': np.array([[1.0], [-1.0]], np.float32), 'bias': np.array([0.5], np.float32)}}


def g3(n):
    out = []
    for i in range(n):
        s = np.float32(1 + 0.5 * i)
        out.append({'backbone': {'dense': {'kernel': np.array([[1.0, -1.0], [0.5, 2.0]], np.float32) * s,
                                           'bias': np.array([0.3, -0.3], np.float32) * s}},
                    'head': {'kernel': np.array([[0.7], [-0.2]], np.float32) / s,
                             'bias': np.array([1.5], np.float32) * s}})
    return out


cases.append(case('multi_transform_freeze_prefix',
                  optax.multi_transform({'train': optax.adam(1e-3), 'freeze': optax.set_to_zero()},
                                        {'backbone': 'freeze', 'head': 'train'}), P3, g3(4)))
cases.append(case('adam_head_only', optax.adam(1e-3), {'head': P3['head']},
                  [{'head': g['head']} for g in g3(4)]))
cases.append(case('multi_transform_full_labels',
                  optax.multi_transform({'a': optax.sgd(0.1, momentum=0.9), 'b': optax.adam(1e-2),
                                         'unused': optax.adam(1.0)},
                                        {'backbone': {'dense': {'kernel': 'a', 'bias': 'b'}},
                                         'head': {'kernel': 'b', 'bias': 'a'}}), P3, g3(3)))
# reference O20: labels from a function (the first letter of each key)
P20 = {'a1': np.float32(1.0), 'b1': np.float32(2.0), 'z1': {'a2': np.float32(3.0),
                                                          'z2': {'c1': np.float32(4.0)}}}


def first_letter(tree):
    return jax.tree_util.tree_map_with_path(lambda p, _: key_str(p[-1])[0], tree)


cases.append(case('partition_label_fn',
                  optax.partition({'a': optax.scale(-1.0), 'b': optax.ema(0.0), 'c': optax.scale(2.0)},
                                  first_letter), P20,
                  [jax.tree.map(lambda x: x / 10, P20), jax.tree.map(lambda x: x / 5, P20)]))
# inject_hyperparams: a value changed between steps, and a schedule
cases.append(case('inject_adam', optax.inject_hyperparams(optax.adam)(learning_rate=1e-2), P2, gseq(5),
                  sets={3: {'learning_rate': 1e-3}}))
cases.append(case('inject_sgd_schedule_momentum',
                  optax.inject_hyperparams(optax.sgd)(learning_rate=optax.linear_schedule(0.1, 0.0, 4),
                                                      momentum=0.9), P2, gseq(5),
                  sets={2: {'momentum': 0.5}}))
cases.append(case('inject_adamw', optax.inject_hyperparams(optax.adamw)(learning_rate=1e-2,
                                                                        weight_decay=0.1), P2, gseq(3),
                  sets={1: {'weight_decay': 0.0, 'b1': 0.5}}))

with open(os.path.join(here, 'optax_transforms_golden.json'), 'w') as f:
    json.dump({'optax': optax.__version__, 'jax': jax.__version__, 'xla_flags': PINNED_FLAGS,
               'cases': cases}, f, indent=0)
print('wrote', len(cases), 'cases')
