#!/usr/bin/env python3
"""Regenerates tests/golden/optax_schedules_golden.json: the values of every
optax 0.2.8 learning-rate schedule (several parameter sets each) at many
step counts, computed by the real optax, for tests/optim/test_schedules.c.

    sh tests/golden/make-venv.sh        # once: jax 0.10.2, optax 0.2.8
    ~/.cache/grove/venv/bin/python tests/golden/make_optax_schedules_golden.py

Each case is a schedule spec, {"schedule": optax name, "args": keyword
arguments}, that both this script and the C test build the schedule from
(join_schedules' "schedules" and sgdr's "cycles" hold specs and kwargs;
a dict {boundary: scale} is stored as its [boundary, scale] pairs in
insertion order, which is the order the C test passes them in; `call`
repeats the case as optax code for the reader). The schedule is evaluated
as an optimiser evaluates it, inside a jitted function of the int32 count:

    jax.jit(schedule)(jnp.asarray(count, jnp.int32))

with XLA's default flags, at counts that always include 0, every boundary
b of the schedule (transition begins and ends, warmup and decay ends,
dict boundaries, join boundaries, onecycle phase ends) with b - 1 and
b + 1, a sweep of the schedule's active range, -1 and -2 (an optimiser's
count is never negative, but a join feeds its later parts negative steps),
and large counts up to 2**31 - 1. Values are float32 bit patterns
('0x%08x'); the C test compares them bit for bit, allowing `ulps` units in
the last place where a case says so (none does: grove models the
arithmetic XLA's CPU backend emits, cos and pow included, so there is
nothing to allow; see grove/schedules.h, "Numerics").

The numbers are those of XLA's CPU code on this machine's instruction set:
XLA compiles for the host, and on a CPU with FMA (every x86-64 since 2013,
every AArch64) LLVM fuses a multiply feeding an add into one fma, which
grove's schedules reproduce. On a CPU without FMA the reference numbers
would differ in the last bit here and there; `host` records the machine
they were made on. cos and pow are glibc's cosf and powf (exp2f for a
power-of-two base); glibc 2.28 or later computes them the same everywhere.
"""
import json
import os
import platform
import struct

import jax
import jax.numpy as jnp
import numpy as np
import optax

here = os.path.dirname(os.path.abspath(__file__))
INT32_MAX = 2**31 - 1
LARGE = [2**24 - 1, 2**24, 2**24 + 1, 10**8, 2**30, 10**9, 2**31 - 129, 2**31 - 2, INT32_MAX]


def bits(v):
    return '0x%08x' % struct.unpack('<I', struct.pack('<f', float(np.float32(v))))[0]


def build(spec):
    """The optax schedule for a spec."""
    name, a = spec['schedule'], dict(spec['args'])
    if name == 'join_schedules':
        return optax.join_schedules([build(s) for s in a['schedules']], a['boundaries'])
    if name == 'sgdr_schedule':
        return optax.sgdr_schedule(a['cycles'])
    if 'boundaries_and_scales' in a:
        a['boundaries_and_scales'] = {b: s for b, s in a['boundaries_and_scales']}
    return getattr(optax, name)(**a)


def spec_call(spec):
    name, a = spec['schedule'], spec['args']
    if name == 'join_schedules':
        return 'optax.join_schedules([%s], %s)' % (
            ', '.join(spec_call(s) for s in a['schedules']), a['boundaries'])
    parts = []
    for k, v in a.items():
        if k == 'boundaries_and_scales':
            v = '{%s}' % ', '.join('%r: %r' % (b, s) for b, s in v)
        else:
            v = repr(v)
        parts.append('%s=%s' % (k, v))
    return 'optax.%s(%s)' % (name, ', '.join(parts))


def boundaries(spec):
    """The steps where the schedule's formula changes (absolute)."""
    name, a = spec['schedule'], spec['args']
    out = set()
    if name == 'join_schedules':
        bs = [0] + list(a['boundaries'])
        for b, s in zip(bs, a['schedules']):
            out.add(b)
            out |= {b + x for x in boundaries(s)}
    elif name == 'sgdr_schedule':
        step = 0
        for kw in a['cycles']:
            out |= {step, step + kw['warmup_steps'], step + kw['decay_steps']}
            step += kw['decay_steps']
    elif name in ('polynomial_schedule', 'linear_schedule', 'exponential_decay'):
        begin = max(a.get('transition_begin', 0), 0)
        out |= {begin, begin + a['transition_steps']}
    elif name == 'warmup_constant_schedule':
        out.add(a['warmup_steps'])
    elif name == 'cosine_decay_schedule':
        out.add(a['decay_steps'])
    elif name == 'warmup_cosine_decay_schedule':
        out |= {a['warmup_steps'], a['decay_steps']}
    elif name == 'warmup_exponential_decay_schedule':
        w, begin = a['warmup_steps'], max(a.get('transition_begin', 0), 0)
        out |= {w, w + begin, w + begin + a['transition_steps']}
    elif name in ('piecewise_constant_schedule', 'piecewise_interpolate_schedule'):
        out |= {b for b, _ in a.get('boundaries_and_scales') or []}
    elif name == 'linear_onecycle_schedule':
        t = a['transition_steps']
        out |= {int(a.get('pct_start', 0.3) * t), int(a.get('pct_final', 0.85) * t), t}
    elif name == 'cosine_onecycle_schedule':
        t = a['transition_steps']
        out |= {int(a.get('pct_start', 0.3) * t), t}
    if name == 'exponential_decay' and a['transition_steps'] > 0:
        # a few decay periods past the begin, for the staircase's steps
        begin, t = max(a.get('transition_begin', 0), 0), a['transition_steps']
        out |= {begin + k * t for k in range(1, 6)}
    return out


def counts_for(spec, extra=()):
    bs = sorted(b for b in boundaries(spec) if abs(b) < 2**40)
    cs = set(range(-2, 25)) | set(extra) | set(LARGE)
    for b in bs:
        cs |= {b - 1, b, b + 1}
    hi = max([b for b in bs if b < 10**7] + [20])
    step = max(1, hi // 150)
    cs |= set(range(0, hi + 2 * step, step))
    return sorted(c for c in cs if -2**31 <= c <= INT32_MAX)


cases = []


def case(name, schedule, extra=(), ulps=0, **args):
    spec = {'schedule': schedule, 'args': args}
    cases.append({'name': name, 'spec': spec, 'extra': extra, 'ulps': ulps})


# ---- constant, polynomial, linear, warmup_constant ----
case('constant', 'constant_schedule', value=0.1)
case('constant_negative', 'constant_schedule', value=-3.5)
case('S1_polynomial_linear', 'polynomial_schedule', init_value=10.0, end_value=20.0, power=1,
     transition_steps=10)
case('S2_polynomial_power2', 'polynomial_schedule', init_value=25.0, end_value=10.0, power=2,
     transition_steps=10)
case('S3_polynomial_begin', 'polynomial_schedule', init_value=30.0, end_value=10.0, power=2,
     transition_steps=10, transition_begin=4)
case('S4_polynomial_steps_-1', 'polynomial_schedule', init_value=10.0, end_value=20.0, power=1,
     transition_steps=-1)
case('S4_polynomial_steps_0', 'polynomial_schedule', init_value=10.0, end_value=20.0, power=1,
     transition_steps=0)
case('polynomial_power3', 'polynomial_schedule', init_value=1.0, end_value=0.01, power=3,
     transition_steps=1000, transition_begin=50)
case('polynomial_power5', 'polynomial_schedule', init_value=0.3, end_value=1e-4, power=5,
     transition_steps=777)
case('polynomial_power0', 'polynomial_schedule', init_value=0.7, end_value=0.2, power=0,
     transition_steps=10)
case('polynomial_power-2', 'polynomial_schedule', init_value=1.0, end_value=0.5, power=-2,
     transition_steps=10)
case('polynomial_power0.5', 'polynomial_schedule', init_value=1.0, end_value=0.0, power=0.5,
     transition_steps=300)
case('polynomial_power1.5', 'polynomial_schedule', init_value=2e-3, end_value=1e-5, power=1.5,
     transition_steps=12345, transition_begin=10)
case('polynomial_begin_negative', 'polynomial_schedule', init_value=1.0, end_value=2.0, power=1,
     transition_steps=7, transition_begin=-5)
case('polynomial_steps_1', 'polynomial_schedule', init_value=3.0, end_value=-1.0, power=2,
     transition_steps=1)
case('S5_linear', 'linear_schedule', init_value=1.0, end_value=0.0, transition_steps=10)
case('linear_warmup_flax', 'linear_schedule', init_value=0.0, end_value=0.1, transition_steps=500)
case('linear_decay_begin', 'linear_schedule', init_value=1e-3, end_value=1e-5,
     transition_steps=10000, transition_begin=100)
case('linear_huge_steps', 'linear_schedule', init_value=1.0, end_value=0.0,
     transition_steps=2**31 - 1)
case('linear_init_equals_end', 'linear_schedule', init_value=0.25, end_value=0.25,
     transition_steps=10)
# (init - end) * frac + end is one fma in XLA's code; at these counts (1 and
# 47) float64 arithmetic rounded to float32 would round twice and miss it
case('linear_fma_not_double', 'linear_schedule', init_value=0.076446197926998138,
     end_value=1.7347234759768071e-18, transition_steps=4)
case('linear_fma_not_double_2', 'linear_schedule', init_value=0.83453029372978094,
     end_value=-2.1171683850518264e-10, transition_steps=480, extra=[47])
case('warmup_constant', 'warmup_constant_schedule', init_value=0.0, peak_value=1e-3,
     warmup_steps=100)
case('warmup_constant_no_warmup', 'warmup_constant_schedule', init_value=0.1, peak_value=1.0,
     warmup_steps=0)

# ---- cosine decay ----
case('S10_cosine', 'cosine_decay_schedule', init_value=0.1, decay_steps=10)
case('S11_cosine_alpha', 'cosine_decay_schedule', init_value=0.1, decay_steps=5, alpha=0.1)
case('S12_cosine_exponent2', 'cosine_decay_schedule', init_value=0.1, decay_steps=100, alpha=0.0,
     exponent=2)
case('S13_cosine_giant_steps', 'cosine_decay_schedule', init_value=1000.0, decay_steps=10**10)
case('cosine_init1', 'cosine_decay_schedule', init_value=1.0, decay_steps=1000)
case('cosine_steps1', 'cosine_decay_schedule', init_value=0.5, decay_steps=1, alpha=0.25)
case('cosine_exponent1.5_alpha', 'cosine_decay_schedule', init_value=1.0, decay_steps=1000,
     alpha=0.01, exponent=1.5)
case('cosine_exponent0.5', 'cosine_decay_schedule', init_value=0.1, decay_steps=300,
     exponent=0.5)
case('cosine_exponent3_alpha', 'cosine_decay_schedule', init_value=0.1, decay_steps=100,
     alpha=0.1, exponent=3.0)
case('cosine_exponent2_alpha', 'cosine_decay_schedule', init_value=2.0, decay_steps=100,
     alpha=0.3, exponent=2.0)
case('cosine_exponent4', 'cosine_decay_schedule', init_value=0.1, decay_steps=64, exponent=4.0)
case('cosine_exponent-1', 'cosine_decay_schedule', init_value=0.1, decay_steps=100, alpha=0.05,
     exponent=-1.0)
case('cosine_exponent-0.5', 'cosine_decay_schedule', init_value=0.1, decay_steps=100,
     exponent=-0.5)
case('cosine_exponent0', 'cosine_decay_schedule', init_value=0.3, decay_steps=100, alpha=0.1,
     exponent=0.0)
case('cosine_alpha1', 'cosine_decay_schedule', init_value=0.3, decay_steps=100, alpha=1.0)
case('cosine_million', 'cosine_decay_schedule', init_value=3e-4, decay_steps=10**6, alpha=0.1)
case('cosine_odd_steps', 'cosine_decay_schedule', init_value=1e-3, decay_steps=7919,
     alpha=1e-3)

# ---- warmup cosine decay, sgdr ----
case('S14_warmup_cosine_exponent', 'warmup_cosine_decay_schedule', init_value=0.2,
     peak_value=1.21, end_value=-3.0, warmup_steps=50, decay_steps=100, exponent=2)
case('S15_warmup_cosine_zero_peak', 'warmup_cosine_decay_schedule', init_value=0.2,
     peak_value=0.0, end_value=-3.0, warmup_steps=50, decay_steps=100, exponent=2)
case('S16_warmup_cosine_limits', 'warmup_cosine_decay_schedule', init_value=10.0,
     peak_value=0.5, warmup_steps=100, decay_steps=1000, end_value=1e-4)
case('S17_warmup_cosine', 'warmup_cosine_decay_schedule', init_value=0.0, peak_value=1.0,
     warmup_steps=10, decay_steps=110)
case('warmup_cosine_typical', 'warmup_cosine_decay_schedule', init_value=1e-6, peak_value=1e-3,
     warmup_steps=1000, decay_steps=100000, end_value=1e-5)
case('warmup_cosine_no_warmup', 'warmup_cosine_decay_schedule', init_value=0.0,
     peak_value=0.1, warmup_steps=0, decay_steps=50)
case('warmup_cosine_exponent1.5', 'warmup_cosine_decay_schedule', init_value=0.01,
     peak_value=0.1, warmup_steps=7, decay_steps=40, end_value=0.001, exponent=1.5)
case('S24_sgdr', 'sgdr_schedule', cycles=[
    dict(init_value=0.0, peak_value=1.6, warmup_steps=500, decay_steps=2000),
    dict(init_value=0.0, peak_value=0.8, warmup_steps=500, decay_steps=3000),
    dict(init_value=0.0, peak_value=0.4, warmup_steps=500, decay_steps=5000)])
case('sgdr_mixed', 'sgdr_schedule', cycles=[
    dict(init_value=0.01, peak_value=0.1, warmup_steps=5, decay_steps=20, end_value=0.001),
    dict(init_value=0.001, peak_value=0.05, warmup_steps=0, decay_steps=33, exponent=2.0),
    dict(init_value=0.0, peak_value=0.02, warmup_steps=10, decay_steps=11, end_value=0.002)])

# ---- exponential decay ----
case('S8_exponential', 'exponential_decay', init_value=32.0, transition_steps=1, decay_rate=0.5)
case('S9_exponential', 'exponential_decay', init_value=1.0, transition_steps=2, decay_rate=0.5)
case('S9_exponential_staircase', 'exponential_decay', init_value=1.0, transition_steps=2,
     decay_rate=0.5, staircase=True)
case('exponential_0.96', 'exponential_decay', init_value=0.1, transition_steps=1000,
     decay_rate=0.96)
case('exponential_0.96_staircase_begin', 'exponential_decay', init_value=0.1,
     transition_steps=1000, decay_rate=0.96, transition_begin=300, staircase=True)
case('exponential_0.1_end', 'exponential_decay', init_value=1e-2, transition_steps=7,
     decay_rate=0.1, end_value=1e-6)
case('exponential_growth_end', 'exponential_decay', init_value=1.0, transition_steps=3,
     decay_rate=1.5, end_value=3.0)
case('exponential_rate8', 'exponential_decay', init_value=1e-3, transition_steps=3, decay_rate=8.0)
case('exponential_rate0.125', 'exponential_decay', init_value=2.0, transition_steps=5,
     decay_rate=0.125)
case('exponential_rate0.25_staircase', 'exponential_decay', init_value=3.0, transition_steps=4,
     decay_rate=0.25, staircase=True, end_value=1e-3)
case('exponential_rate2', 'exponential_decay', init_value=1e-4, transition_steps=10,
     decay_rate=2.0, end_value=1.0)
case('exponential_rate10', 'exponential_decay', init_value=1e-4, transition_steps=9,
     decay_rate=10.0)
case('exponential_rate1', 'exponential_decay', init_value=0.5, transition_steps=9,
     decay_rate=1.0)
case('exponential_rate_negative_staircase', 'exponential_decay', init_value=1.0,
     transition_steps=3, decay_rate=-0.5, staircase=True)
case('exponential_rate0', 'exponential_decay', init_value=0.5, transition_steps=9,
     decay_rate=0.0)
case('exponential_steps0', 'exponential_decay', init_value=0.5, transition_steps=0,
     decay_rate=0.5)
case('exponential_begin_negative', 'exponential_decay', init_value=1.0, transition_steps=4,
     decay_rate=0.7, transition_begin=-3)
case('warmup_exponential', 'warmup_exponential_decay_schedule', init_value=0.0, peak_value=1.0,
     warmup_steps=10, transition_steps=5, decay_rate=0.5)
case('warmup_exponential_staircase', 'warmup_exponential_decay_schedule', init_value=1e-4,
     peak_value=1e-2, warmup_steps=100, transition_steps=250, decay_rate=0.9,
     transition_begin=50, staircase=True, end_value=1e-3)

# ---- piecewise constant ----
case('S6_piecewise_constant', 'piecewise_constant_schedule', init_value=0.1,
     boundaries_and_scales=[[3, 2.0], [6, 0.5]])
case('S7_piecewise_constant_negative', 'piecewise_constant_schedule', init_value=-0.1,
     boundaries_and_scales=[[3, 2.0], [6, 0.5]])
case('piecewise_constant_doc', 'piecewise_constant_schedule', init_value=1.0,
     boundaries_and_scales=[[100, 0.1], [200, 0.01]])
case('piecewise_constant_unsorted', 'piecewise_constant_schedule', init_value=0.3,
     boundaries_and_scales=[[5000, 0.3], [10, 0.7], [2**30, 1.5], [0, 0.9], [777, 0.0]])
case('piecewise_constant_none', 'piecewise_constant_schedule', init_value=0.3)
case('piecewise_constant_overflow', 'piecewise_constant_schedule', init_value=1e38,
     boundaries_and_scales=[[5, 10.0], [8, 0.5]])

# ---- piecewise interpolate, onecycles ----
case('S20_interpolate_linear', 'piecewise_interpolate_schedule', interpolate_type='linear',
     init_value=200.0, boundaries_and_scales=[[5, 1.5], [10, 0.25]])
case('S21_interpolate_cosine', 'piecewise_interpolate_schedule', interpolate_type='cosine',
     init_value=400.0, boundaries_and_scales=[[5, 1.2], [3, 0.6], [7, 1.0]])
case('interpolate_linear_doc', 'piecewise_interpolate_schedule', interpolate_type='linear',
     init_value=1.0, boundaries_and_scales=[[4, 0.1], [8, 0.01]])
case('interpolate_linear_unequal', 'piecewise_interpolate_schedule', interpolate_type='linear',
     init_value=0.3, boundaries_and_scales=[[40, 1.7], [100, 0.3], [1000, 0.11]])
case('interpolate_linear_equal_diffs', 'piecewise_interpolate_schedule',
     interpolate_type='linear', init_value=1.0, boundaries_and_scales=[[2, 2.0], [5, 1.5]])
case('interpolate_linear_one', 'piecewise_interpolate_schedule', interpolate_type='linear',
     init_value=0.1, boundaries_and_scales=[[300, 0.3]])
case('interpolate_linear_none', 'piecewise_interpolate_schedule', interpolate_type='linear',
     init_value=0.1)
case('interpolate_linear_at0', 'piecewise_interpolate_schedule', interpolate_type='linear',
     init_value=0.1, boundaries_and_scales=[[0, 3.0], [10, 0.5]])
case('interpolate_linear_many', 'piecewise_interpolate_schedule', interpolate_type='linear',
     init_value=0.7, boundaries_and_scales=[[b, s] for b, s in zip(
         [3, 10, 11, 50, 51, 90, 200, 201], [1.3, 0.7, 1.1, 0.9, 1.7, 0.3, 1.9, 0.1])])
case('interpolate_cosine_equal', 'piecewise_interpolate_schedule', interpolate_type='cosine',
     init_value=200.0, boundaries_and_scales=[[4, 1.5], [8, 2.0]])
case('interpolate_cosine_one', 'piecewise_interpolate_schedule', interpolate_type='cosine',
     init_value=0.3, boundaries_and_scales=[[77, 0.1]])
case('interpolate_cosine_many', 'piecewise_interpolate_schedule', interpolate_type='cosine',
     init_value=0.7, boundaries_and_scales=[[b, s] for b, s in zip(
         [3, 10, 11, 50, 51, 90, 200, 201], [1.3, 0.7, 1.1, 0.9, 1.7, 0.3, 1.9, 0.1])])
case('S22_linear_onecycle', 'linear_onecycle_schedule', transition_steps=10, peak_value=1000.0,
     pct_start=0.3, pct_final=0.7, div_factor=10.0, final_div_factor=100.0)
case('linear_onecycle_defaults', 'linear_onecycle_schedule', transition_steps=1000,
     peak_value=0.1)
case('linear_onecycle_tiny', 'linear_onecycle_schedule', transition_steps=1, peak_value=0.1)
case('linear_onecycle_3', 'linear_onecycle_schedule', transition_steps=3, peak_value=0.5,
     pct_start=0.2)
case('S23_cosine_onecycle', 'cosine_onecycle_schedule', transition_steps=5, peak_value=1000.0,
     pct_start=0.4, div_factor=10.0, final_div_factor=100.0)
case('cosine_onecycle_defaults', 'cosine_onecycle_schedule', transition_steps=1000,
     peak_value=0.1)
case('cosine_onecycle_tiny', 'cosine_onecycle_schedule', transition_steps=1, peak_value=0.1)

# ---- join ----
C = lambda v: {'schedule': 'constant_schedule', 'args': {'value': v}}  # noqa: E731
case('S19_join', 'join_schedules', schedules=[C(1.0), C(2.0), C(1.0)], boundaries=[3, 6])
for warmup, decay in [(5, 20), (100, 900), (1000, 49000)]:
    case('join_flax_warmup_cosine_%d_%d' % (warmup, decay), 'join_schedules', schedules=[
        {'schedule': 'linear_schedule',
         'args': {'init_value': 0.0, 'end_value': 0.1, 'transition_steps': warmup}},
        {'schedule': 'cosine_decay_schedule', 'args': {'init_value': 0.1, 'decay_steps': decay}}],
        boundaries=[warmup])
case('join_three', 'join_schedules', schedules=[
    {'schedule': 'linear_schedule',
     'args': {'init_value': 0.0, 'end_value': 1.0, 'transition_steps': 10}},
    {'schedule': 'exponential_decay',
     'args': {'init_value': 1.0, 'transition_steps': 5, 'decay_rate': 0.8}},
    {'schedule': 'piecewise_constant_schedule',
     'args': {'init_value': 0.2, 'boundaries_and_scales': [[3, 0.5]]}}],
    boundaries=[10, 40])
case('join_boundary0', 'join_schedules', schedules=[C(5.0), {
    'schedule': 'cosine_decay_schedule', 'args': {'init_value': 1.0, 'decay_steps': 10}}],
    boundaries=[0])
case('join_negative_boundary', 'join_schedules', schedules=[C(5.0), {
    'schedule': 'linear_schedule',
    'args': {'init_value': 1.0, 'end_value': 0.0, 'transition_steps': 10}}],
    boundaries=[-4])
case('join_nested', 'join_schedules', schedules=[
    {'schedule': 'warmup_cosine_decay_schedule',
     'args': {'init_value': 0.0, 'peak_value': 1.0, 'warmup_steps': 3, 'decay_steps': 13}},
    {'schedule': 'join_schedules', 'args': {'schedules': [C(0.5), C(0.25)], 'boundaries': [7]}}],
    boundaries=[13])

out = []
for c in cases:
    spec = c['spec']
    sched = build(spec)
    f = jax.jit(sched)
    counts = counts_for(spec, c['extra'])
    vals = [bits(f(jnp.asarray(n, jnp.int32))) for n in counts]
    out.append({'name': c['name'], 'call': spec_call(spec), 'spec': spec, 'ulps': c['ulps'],
                'counts': counts, 'values': vals})

import jaxlib  # noqa: E402

header = {
    'generator': 'tests/golden/make_optax_schedules_golden.py',
    'versions': {'jax': jax.__version__, 'jaxlib': jaxlib.__version__,
                 'optax': optax.__version__},
    'host': {'machine': platform.machine(), 'libc': ' '.join(platform.libc_ver()),
             'cpu_fma': 'fma' in open('/proc/cpuinfo').read().split()
             if os.path.exists('/proc/cpuinfo') else None},
    'evaluation': 'jax.jit(schedule)(jnp.asarray(count, jnp.int32)), XLA default flags',
}
# one line per field of a case, so the file diffs and reads line by line
compact = dict(separators=(', ', ': '))
lines = ['{']
for k, v in header.items():
    lines.append(' %s: %s,' % (json.dumps(k), json.dumps(v, **compact)))
lines.append(' "cases": [')
for i, c in enumerate(out):
    fields = ['  %s: %s' % (json.dumps(k), json.dumps(v, **compact)) for k, v in c.items()]
    lines.append(' {\n' + ',\n'.join(fields) + '\n }' + (',' if i + 1 < len(out) else ''))
lines.append(' ]')
lines.append('}')
path = os.path.join(here, 'optax_schedules_golden.json')
with open(path, 'w') as fh:
    fh.write('\n'.join(lines) + '\n')
json.load(open(path))  # well-formed
print('wrote %s: %d cases, %d values' % (path, len(out), sum(len(c['counts']) for c in out)))
