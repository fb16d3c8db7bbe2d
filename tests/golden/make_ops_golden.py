#!/usr/bin/env python3
"""Regenerates tests/golden/ops_golden.json: forward values and gradients of
every public op in include/grove/ops.h (except the random ones, which have
their own vectors), computed with PyTorch in float64 from float32 inputs.

    /usr/bin/python3 tests/golden/make_ops_golden.py

Each case holds
  op, params      the grove op and its arguments (read by tests/graph/test_ops.c)
  inputs          tensors: float32/float64 as exact hex bit patterns, ints/bools as numbers
  outs            the forward outputs (float64 reference rounded once to the output dtype)
  cts, grads      for differentiable cases: a fixed random cotangent R per output, and
                  the gradient of sum(out * R) with respect to every float input
                  (None for non-float inputs), float64 autograd rounded to float32
  loss            sum(out * R) in float64
  tol             {"fwd": [rtol, atol], "grad": [rtol, atol]}: |got - want| <= atol + rtol |want|

grove mirrors JAX, so where torch's convention differs the reference below
is written by hand to follow JAX (each place says so).
"""
import json
import math
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'ops_golden.json')

rng = np.random.default_rng(20240611)
U = 2.0 ** -24          # float32 unit roundoff: one correctly rounded op errs by <= U relative
F64 = torch.float64

# ---------------------------------------------------------------- tolerances
#
# The reference is the exact (float64) result rounded once; grove computes in
# float32 with the same formula as JAX, so its error is the error of that
# float32 formula:
#   EXACT: a single correctly rounded IEEE operation (+ - * / sqrt, x*x), a
#          comparison, a select or pure data movement: bit-exact.
#   LIBM:  one glibc float call (expf, logf, log1pf, expm1f, tanhf, erff, powf:
#          all < 1 ulp) or two rounded ops (rsqrt = 1/sqrtf): 2 ulp = 4U relative.
#   COMPOSITE: sigmoid, silu, softplus are 2-3 rounded ops on top of expf: 8U.
#   GELU: 0.5 x (1 + tanh(.)) cancels when tanh ~ -1 (x < 0): the absolute error
#          is ~ |x| * 2U, so an absolute part of 1e-6 for |x| <= 4.
#   Sums (reductions, matmul, mean, logsumexp, softmax): recursive float32
#          summation of n terms errs by <= (n-1) U sum|x_i| (Higham 4.2); the
#          bound is computed from the data of each case (see red_tol).
# Gradients: the VJP is a short float32 graph (a few rounded ops per element,
# with 1 - t^2 style cancellation for tanh/sigmoid/gelu, and sums of K terms
# where broadcasting, matmul or a reduction adds them up): 16U relative plus
# (K + 16) U times the gradient's scale.
EXACT = [0.0, 0.0]
LIBM = [4 * U, 1e-38]
COMPOSITE = [8 * U, 1e-38]
GELU = [8 * U, 1e-6]


def grad_tol(g_scale, k=1):
    return [16 * U, (k + 16) * U * max(1.0, g_scale)]


# ---------------------------------------------------------------- encoding

def enc(a):
    a = np.asarray(a)
    if a.dtype == np.float32:
        data = ['%08x' % v for v in a.reshape(-1).view(np.uint32)]
    elif a.dtype == np.float64:
        data = ['%016x' % v for v in a.reshape(-1).view(np.uint64)]
    else:
        data = [int(v) for v in a.reshape(-1)]
    name = 'bool' if a.dtype == np.bool_ else str(a.dtype)
    return {'dtype': name, 'shape': list(a.shape), 'data': data}


def hex64(v):
    return '%016x' % np.array([v], dtype=np.float64).view(np.uint64)[0]


def is_float(a):
    return np.asarray(a).dtype in (np.float32, np.float64)


# ---------------------------------------------------------------- inputs

def uni(shape, lo=-3.0, hi=3.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def away(shape, lo=0.25, hi=2.5):
    """Random sign times a magnitude in [lo, hi]: away from kinks at 0."""
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float32)


def distinct(shape, step=0.25):
    """Values on a grid, shuffled, jittered: no ties (for max/min/argmax)."""
    n = int(np.prod(shape))
    v = (np.arange(n) - n / 2) * step + rng.uniform(-0.05, 0.05, size=n)
    rng.shuffle(v)
    return v.reshape(shape).astype(np.float32)


def ints(shape, lo, hi, dtype=np.int32):
    return rng.integers(lo, hi, size=shape).astype(dtype)


# ---------------------------------------------------------------- cases

CASES = []


def case(family, op, name, inputs, ref, params=None, out_dtypes=None, diff=True,
         fwd_tol=None, k=1, grad_k=None):
    """Record one case. ref(*tensors) computes the outputs in torch float64
    (integer and bool inputs stay as they are); out_dtypes name the output
    dtypes (default: the dtype of the first float input)."""
    params = params or {}
    inputs = [np.asarray(a) for a in inputs]
    ts = []
    for a in inputs:
        if is_float(a):
            ts.append(torch.tensor(a.astype(np.float64), dtype=F64, requires_grad=diff))
        elif a.dtype in (np.uint16, np.uint32, np.uint64):
            ts.append(torch.tensor(a.astype(np.int64)))   # torch lacks these: refs compute by hand
        else:
            ts.append(torch.tensor(a))
    outs = ref(*ts)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    if out_dtypes is None:
        fl = [a.dtype for a in inputs if is_float(a)]
        out_dtypes = [fl[0] if fl else np.float32] * len(outs)
    with np.errstate(over='ignore', invalid='ignore'):   # exp(100) is inf in float32
        outs_np = [o.detach().numpy().astype(dt) for o, dt in zip(outs, out_dtypes)]
    c = {'name': name, 'family': family, 'op': op, 'params': params,
         'inputs': [enc(a) for a in inputs], 'outs': [enc(o) for o in outs_np],
         'tol': {'fwd': list(fwd_tol or EXACT)}}
    if diff:
        cts = [rng.uniform(-1, 1, size=o.shape).astype(np.dtype(dt)) for o, dt in
               zip(outs_np, out_dtypes)]
        loss = torch.zeros((), dtype=F64)
        for o, r in zip(outs, cts):
            loss = loss + (o * torch.tensor(r.astype(np.float64))).sum()
        fts = [t for t in ts if t.is_floating_point()]
        if loss.requires_grad and fts:
            gs = torch.autograd.grad(loss, fts, allow_unused=True)
        else:
            gs = [None] * len(fts)
        grads, it, scale = [], iter(gs), 0.0
        for a, t in zip(inputs, ts):
            if not is_float(a):
                grads.append(None)
                continue
            g = next(it)
            g = np.zeros(a.shape) if g is None else g.detach().numpy()
            if g.size:
                scale = max(scale, float(np.max(np.abs(g[np.isfinite(g)]), initial=0.0)))
            grads.append(enc(g.astype(a.dtype)))
        c['cts'] = [enc(r) for r in cts]
        c['grads'] = grads
        c['loss'] = hex64(loss.item())
        c['tol']['grad'] = grad_tol(scale, grad_k if grad_k is not None else k)
    CASES.append(c)


def sum_to(x, shape):
    """Sum a broadcast gradient back to shape (numpy broadcasting)."""
    lead = x.dim() - len(shape)
    if lead:
        x = x.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, d in enumerate(shape) if d == 1 and x.shape[i] != 1)
    if dims:
        x = x.sum(dim=dims, keepdim=True)
    return x.reshape(shape)


# ---- JAX conventions written by hand where torch differs ----

def j_abs(x):
    # jax: d|x|/dx = select(x >= 0, 1, -1): +1 at 0 (torch gives 0)
    return torch.where(x >= 0, x, -x)


def j_relu(x):
    # jax.nn.relu = maximum(x, 0) with a custom jvp: gradient 0 at 0, NaN propagates
    return torch.where((x > 0) | torch.isnan(x), x, torch.zeros_like(x))


class JaxMaxMin(torch.autograd.Function):
    """lax.max/min: NaN propagates; the gradient is split 0.5/0.5 on ties
    (jax's _balanced_eq)."""

    @staticmethod
    def forward(ctx, a, b, is_max):
        out = torch.maximum(a, b) if is_max else torch.minimum(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        one, half, zero = (torch.ones_like(out), torch.full_like(out, 0.5),
                           torch.zeros_like(out))
        wa = torch.where(a == out, torch.where(b == out, half, one), zero)
        wb = torch.where(b == out, torch.where(a == out, half, one), zero)
        return sum_to(g * wa, a.shape), sum_to(g * wb, b.shape), None


class JaxPow(torch.autograd.Function):
    """lax.pow's jvp: d/da = b a^(b-1), taken as 0 where b == 0 (jax's
    select(b == 0, ...) so 0^0 has gradient 0, as torch); d/db = out log(a)
    with log(a) replaced by 0 where a == 0 (jax's _replace_zero; torch gives
    -inf * 0 there)."""

    @staticmethod
    def forward(ctx, a, b):
        out = torch.pow(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        da = torch.where(b == 0, torch.zeros_like(out), b * torch.pow(a, b - 1))
        db = out * torch.log(torch.where(a == 0, torch.ones_like(a), a))
        return sum_to(g * da, a.shape), sum_to(g * db, b.shape)


def j_gelu_tanh(x):
    # jax.nn.gelu(approximate=True)
    c = math.sqrt(2 / math.pi)
    return x * (0.5 * (1.0 + torch.tanh(c * (x + 0.044715 * x ** 3))))


def j_gelu_erf(x):
    # jax.nn.gelu(approximate=False)
    return x * (torch.erf(x / math.sqrt(2)) + 1) / 2


def j_softplus(x):
    # jax.nn.softplus = logaddexp(x, 0) (torch's softplus switches to x above 20)
    return torch.logaddexp(x, torch.zeros_like(x))


def take_index(idx, n):
    """grove's jnp.take indices: negative ones count from the end (as numpy and
    jax's default mode), then out-of-range ones are clipped (mode='clip')."""
    i = np.asarray(idx).astype(np.int64)
    i = np.where(i < 0, i + n, i)
    return np.clip(i, 0, n - 1)


# ---------------------------------------------------------------- unary

UNARY = {
    # op: (torch ref, input generator, fwd tol)
    'neg': (lambda x: -x, uni, EXACT),
    'abs': (j_abs, away, EXACT),
    'sign': (lambda x: torch.where(torch.isnan(x), x, torch.sign(x)), uni, EXACT),  # lax.sign(NaN) = NaN
    'exp': (torch.exp, uni, LIBM),
    'log': (torch.log, lambda s: uni(s, 0.05, 5.0), LIBM),
    'log1p': (torch.log1p, lambda s: uni(s, -0.9, 4.0), LIBM),
    'expm1': (torch.expm1, uni, LIBM),
    'sqrt': (torch.sqrt, lambda s: uni(s, 0.05, 5.0), EXACT),
    'rsqrt': (torch.rsqrt, lambda s: uni(s, 0.05, 5.0), LIBM),
    'square': (lambda x: x * x, uni, EXACT),
    'tanh': (torch.tanh, uni, LIBM),
    'sigmoid': (torch.sigmoid, lambda s: uni(s, -6, 6), COMPOSITE),
    'erf': (torch.erf, uni, LIBM),
    'relu': (j_relu, away, EXACT),
    'gelu_tanh': (j_gelu_tanh, lambda s: uni(s, -4, 4), GELU),
    'gelu_erf': (j_gelu_erf, lambda s: uni(s, -4, 4), GELU),
    'silu': (lambda x: x * torch.sigmoid(x), lambda s: uni(s, -6, 6), COMPOSITE),
    'softplus': (j_softplus, lambda s: uni(s, -6, 6), COMPOSITE),
}


def unary_op(name):
    if name.startswith('gelu'):
        return 'gelu', {'approximate': name == 'gelu_tanh'}
    return name, {}


for name, (ref, gen, tol) in UNARY.items():
    op, params = unary_op(name)
    diff = name != 'sign'
    for tag, shape in (('2x3', (2, 3)), ('rank0', ()), ('zero_size', (0, 3)),
                       ('size1', (1, 1, 4))):
        case('unary', op, '%s_%s' % (name, tag), [gen(shape)], ref, params, diff=diff,
             fwd_tol=tol)

# special points, forward only: infinities, NaN, zeros and domain edges
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-30, 100.0, -100.0],
                   dtype=np.float32)
for name, (ref, gen, tol) in UNARY.items():
    op, params = unary_op(name)
    case('unary', op, '%s_special' % name, [SPECIAL], ref, params, diff=False, fwd_tol=tol)

# kinks, with JAX's gradients: |x|' = +1 at 0, relu' = 0 at 0
case('unary', 'abs', 'abs_grad_at_zero', [np.array([0.0, 1.5, -2.0, 0.0], np.float32)], j_abs)
case('unary', 'relu', 'relu_grad_at_zero', [np.array([0.0, 1.5, -2.0, 0.0], np.float32)],
     j_relu)
case('unary', 'stop_gradient', 'stop_gradient', [uni((2, 3))], lambda x: x.detach())
case('unary', 'neg', 'neg_f64', [uni((3,)).astype(np.float64)], lambda x: -x)
case('unary', 'tanh', 'tanh_f64', [uni((3,)).astype(np.float64)], torch.tanh,
     fwd_tol=[2 ** -52, 1e-300])

# integer unary ops (int32: neg/abs wrap at INT32_MIN as XLA does)
I32 = np.array([0, 5, -7, 2147483647, -2147483648, 46341], dtype=np.int32)


def wrap32(v):
    return ((np.asarray(v, dtype=np.int64) + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)


I64 = I32.astype(np.int64)
for name, fn in (('neg', lambda v: wrap32(-v)), ('abs', lambda v: wrap32(np.abs(v))),
                 ('sign', np.sign), ('square', lambda v: wrap32(v * v)),
                 ('relu', lambda v: np.maximum(v, 0))):
    case('unary', name, '%s_int32' % name, [I32],
         lambda x, fn=fn: torch.tensor(fn(I64).astype(np.int32)), out_dtypes=[np.int32],
         diff=False)

# ---------------------------------------------------------------- cast

case('unary', 'cast', 'cast_f32_to_f64', [uni((2, 3))], lambda x: x * 1.0,
     {'dtype': 'float64'}, out_dtypes=[np.float64])
case('unary', 'cast', 'cast_f64_to_f32', [rng.normal(size=(2, 3))], lambda x: x * 1.0,
     {'dtype': 'float32'}, out_dtypes=[np.float32])
# float -> int: truncation toward zero, saturating, NaN -> 0 (XLA's convert)
F2I = np.array([1.9, -1.9, 0.5, -0.5, 3e9, -3e9, np.nan, np.inf, -np.inf, 7.0], np.float32)


def sat_i32(v):
    v = np.asarray(v, dtype=np.float64)
    out = np.trunc(np.nan_to_num(v, nan=0.0, posinf=2 ** 31 - 1, neginf=-2 ** 31))
    return np.clip(out, -2 ** 31, 2 ** 31 - 1).astype(np.int32)


case('unary', 'cast', 'cast_f32_to_i32', [F2I], lambda x: torch.tensor(sat_i32(F2I)),
     {'dtype': 'int32'}, out_dtypes=[np.int32], diff=False)
case('unary', 'cast', 'cast_f32_to_bool', [np.array([0.0, -0.0, 2.0, np.nan, -1e-30], np.float32)],
     lambda x: x != 0, {'dtype': 'bool'}, out_dtypes=[np.bool_], diff=False)
case('unary', 'cast', 'cast_bool_to_f32', [np.array([True, False, True])],
     lambda x: x.double(), {'dtype': 'float32'}, out_dtypes=[np.float32], diff=False)
case('unary', 'cast', 'cast_i32_to_f32', [np.array([0, -3, 16777217, 2147483647], np.int32)],
     lambda x: x.double(), {'dtype': 'float32'}, out_dtypes=[np.float32], diff=False)
# int -> narrower int wraps (numpy astype, XLA convert)
case('unary', 'cast', 'cast_i32_to_u8', [np.array([0, 255, 256, -1, 300, -200], np.int32)],
     lambda x: torch.tensor(np.array([0, 255, 256, -1, 300, -200]).astype(np.uint8)),
     {'dtype': 'uint8'}, out_dtypes=[np.uint8], diff=False)
case('unary', 'cast', 'cast_u8_to_i32', [np.array([0, 200, 255], np.uint8)],
     lambda x: x.int(), {'dtype': 'int32'}, out_dtypes=[np.int32], diff=False)
case('unary', 'cast', 'cast_i64_to_f32', [np.array([2 ** 53 + 1, -(2 ** 40) - 3, 2 ** 24 + 1],
                                                   np.int64)],
     lambda x: torch.tensor(np.array([2 ** 53 + 1, -(2 ** 40) - 3, 2 ** 24 + 1],
                                     np.int64).astype(np.float32)),
     {'dtype': 'float32'}, out_dtypes=[np.float32], diff=False)
case('unary', 'cast', 'cast_f32_to_f32', [uni((2,))], lambda x: x, {'dtype': 'float32'})

# ---------------------------------------------------------------- binary

BINARY = {
    'add': (lambda a, b: a + b, uni, uni, EXACT),
    'sub': (lambda a, b: a - b, uni, uni, EXACT),
    'mul': (lambda a, b: a * b, uni, uni, EXACT),
    'div': (lambda a, b: a / b, uni, away, EXACT),
    'pow': (JaxPow.apply, lambda s: uni(s, 0.1, 3.0), lambda s: uni(s, -2.0, 2.5), LIBM),
    'maximum': (lambda a, b: JaxMaxMin.apply(a, b, True), distinct, distinct, EXACT),
    'minimum': (lambda a, b: JaxMaxMin.apply(a, b, False), distinct, distinct, EXACT),
}
BSHAPES = [('same', (2, 3), (2, 3)), ('row', (2, 3), (3,)), ('outer', (4, 1), (1, 3)),
           ('scalar_lhs', (), (2, 3)), ('scalar_rhs', (2, 3), ()), ('rank0', (), ()),
           ('zero_size', (0, 3), (1, 3)), ('rank3', (2, 1, 3), (4, 1))]
for name, (ref, ga, gb, tol) in BINARY.items():
    for tag, sa, sb in BSHAPES:
        a, b = ga(sa), gb(sb)
        # the gradient of a broadcast operand sums up to this many terms
        k = max(1, int(np.prod(np.broadcast_shapes(sa, sb))) // max(1, min(a.size, b.size)))
        case('binary', name, '%s_%s' % (name, tag), [a, b], ref, fwd_tol=tol, k=k)

# ties: the gradient is split in half (jax), exact ties on purpose
ta = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.5]], np.float32)
tb = np.array([[1.0, 5.0, 3.0], [-2.0, 0.5, 4.0]], np.float32)
case('binary', 'maximum', 'maximum_ties', [ta, tb], lambda a, b: JaxMaxMin.apply(a, b, True))
case('binary', 'minimum', 'minimum_ties', [ta, tb], lambda a, b: JaxMaxMin.apply(a, b, False))
case('binary', 'maximum', 'maximum_ties_broadcast', [ta, np.array([0.5], np.float32)],
     lambda a, b: JaxMaxMin.apply(a, b, True), k=6)
nan2 = np.array([np.nan, 1.0, np.nan, -np.inf], np.float32)
nan2b = np.array([1.0, np.nan, np.nan, 2.0], np.float32)
case('binary', 'maximum', 'maximum_nan', [nan2, nan2b], lambda a, b: torch.maximum(a, b),
     diff=False)
case('binary', 'minimum', 'minimum_nan', [nan2, nan2b], lambda a, b: torch.minimum(a, b),
     diff=False)
# pow at base 0: jax's gradients (see JaxPow)
case('binary', 'pow', 'pow_zero_base',
     [np.zeros(4, np.float32), np.array([0.0, 1.0, 2.0, 3.0], np.float32)], JaxPow.apply,
     fwd_tol=LIBM)
case('binary', 'pow', 'pow_negative_base_int_exponent',
     [np.array([-2.0, -0.5, -3.0], np.float32), np.array([2.0, 3.0, -1.0], np.float32)],
     lambda a, b: torch.pow(a, b), fwd_tol=LIBM, diff=False)
case('binary', 'div', 'div_by_zero', [np.array([1.0, -1.0, 0.0], np.float32),
                                      np.zeros(3, np.float32)], lambda a, b: a / b,
     diff=False)
case('binary', 'mul', 'mul_f64', [rng.normal(size=(2, 2)), rng.normal(size=(2,))],
     lambda a, b: a * b, k=2)

# scalar forms: the scalar takes the value's dtype
case('binary', 'add_scalar', 'add_scalar', [uni((2, 3))], lambda x: x + np.float32(0.1).item(),
     {'scalar': 0.1})
case('binary', 'mul_scalar', 'mul_scalar', [uni((2, 3))], lambda x: x * np.float32(-1.7).item(),
     {'scalar': -1.7})
for s in (2.0, 0.5, -1.0, 3.0):
    case('binary', 'pow_scalar', 'pow_scalar_%g' % s, [uni((2, 3), 0.1, 3.0)],
         lambda x, s=s: JaxPow.apply(x, torch.tensor(s, dtype=F64)), {'scalar': s},
         fwd_tol=LIBM)

# comparisons (bool out), with ties and broadcasting
ca = np.array([[1.0, 2.0, np.nan], [-1.0, 0.0, 3.0]], np.float32)
cb = np.array([2.0, -0.0, np.nan], np.float32)
CMP = {'eq': torch.eq, 'ne': torch.ne, 'lt': torch.lt, 'le': torch.le, 'gt': torch.gt,
       'ge': torch.ge}
for name, fn in CMP.items():
    case('binary', name, '%s_f32' % name, [ca, cb], fn, out_dtypes=[np.bool_], diff=False)
    case('binary', name, '%s_i32' % name,
         [np.array([[1, 5], [-3, 7]], np.int32), np.array([5, 7], np.int32)], fn,
         out_dtypes=[np.bool_], diff=False)
case('binary', 'eq', 'eq_i64_large',
     [np.array([2 ** 53, 2 ** 53 + 1, -(2 ** 62)], np.int64),
      np.array([2 ** 53 + 1, 2 ** 53 + 1, -(2 ** 62) - 1], np.int64)],
     torch.eq, out_dtypes=[np.bool_], diff=False)
case('binary', 'lt', 'lt_u32',
     [np.array([0, 4000000000, 7], np.uint32), np.array([1, 3999999999, 7], np.uint32)],
     lambda a, b: torch.tensor(np.array([0, 4000000000, 7], np.uint64) <
                               np.array([1, 3999999999, 7], np.uint64)),
     out_dtypes=[np.bool_], diff=False)
case('binary', 'eq', 'eq_bool', [np.array([True, False, True]), np.array([True, True, False])],
     torch.eq, out_dtypes=[np.bool_], diff=False)

# integer arithmetic wraps as two's complement (XLA); division truncates,
# x / 0 = -1 and INT_MIN / -1 = INT_MIN (what XLA's CPU backend gives)
A32 = np.array([2147483647, -2147483648, 7, -7, 7, 5, -2147483648, 123456], np.int64)
B32 = np.array([1, -1, 2, 2, -2, 0, -1, 654321], np.int64)


def idiv(a, b):
    out = []
    for x, y in zip(a.tolist(), b.tolist()):
        if y == 0:
            out.append(-1)
        else:
            q = abs(x) // abs(y)
            out.append(q if (x >= 0) == (y > 0) else -q)
    return wrap32(np.array(out))


for name, fn in (('add', lambda a, b: wrap32(a + b)), ('sub', lambda a, b: wrap32(a - b)),
                 ('mul', lambda a, b: wrap32(a * b)), ('div', idiv),
                 ('maximum', np.maximum), ('minimum', np.minimum)):
    case('binary', name, '%s_int32' % name, [A32.astype(np.int32), B32.astype(np.int32)],
         lambda a, b, fn=fn: torch.tensor(np.asarray(fn(A32, B32)).astype(np.int32)),
         out_dtypes=[np.int32], diff=False)
U8A = np.array([200, 0, 255, 10], np.int64)
U8B = np.array([100, 1, 255, 3], np.int64)
for name, fn in (('add', lambda a, b: (a + b) % 256), ('sub', lambda a, b: (a - b) % 256),
                 ('mul', lambda a, b: (a * b) % 256), ('div', lambda a, b: a // b),
                 ('maximum', np.maximum)):
    case('binary', name, '%s_uint8' % name, [U8A.astype(np.uint8), U8B.astype(np.uint8)],
         lambda a, b, fn=fn: torch.tensor(np.asarray(fn(U8A, U8B)).astype(np.uint8)),
         out_dtypes=[np.uint8], diff=False)
I64A = np.array([2 ** 62, -(2 ** 63), 2 ** 53 + 1], np.int64)
I64B = np.array([2 ** 62, -1, 1], np.int64)
case('binary', 'add', 'add_int64', [I64A, I64B],
     lambda a, b: torch.tensor(np.array([-(2 ** 63), 2 ** 63 - 1, 2 ** 53 + 2], np.int64)),
     out_dtypes=[np.int64], diff=False)
case('binary', 'div', 'div_int64_overflow', [I64A, I64B],
     lambda a, b: torch.tensor(np.array([1, -(2 ** 63), 2 ** 53 + 1], np.int64)),
     out_dtypes=[np.int64], diff=False)

# select(cond, a, b), broadcasting all three
case('binary', 'select', 'select_same', [np.array([[True, False, True], [False, False, True]]),
                                         uni((2, 3)), uni((2, 3))],
     lambda c, a, b: torch.where(c, a, b))
case('binary', 'select', 'select_broadcast', [np.array([[True], [False]]), uni((3,)), uni(())],
     lambda c, a, b: torch.where(c, a, b), k=6)
case('binary', 'select', 'select_scalar_cond', [np.array(True), uni((2, 2)), uni((2, 2))],
     lambda c, a, b: torch.where(c, a, b))
case('binary', 'select', 'select_int32', [np.array([True, False]), np.array([1, 2], np.int32),
                                          np.array([3, 4], np.int32)],
     lambda c, a, b: torch.where(c, a, b), out_dtypes=[np.int32], diff=False)

# ---------------------------------------------------------------- creation

case('creation', 'full', 'full_f32', [], lambda: torch.full((2, 3), np.float32(1.3).item()),
     {'dtype': 'float32', 'shape': [2, 3], 'value': 1.3}, out_dtypes=[np.float32], diff=False)
case('creation', 'full', 'full_i32_rank0', [], lambda: torch.tensor(-4, dtype=torch.int32),
     {'dtype': 'int32', 'shape': [], 'value': -4}, out_dtypes=[np.int32], diff=False)
case('creation', 'scalar', 'scalar_f64', [], lambda: torch.tensor(0.1, dtype=F64),
     {'dtype': 'float64', 'value': 0.1}, out_dtypes=[np.float64], diff=False)
case('creation', 'full_like', 'full_like', [uni((2, 2))], lambda x: torch.full_like(x, 2.5),
     {'value': 2.5})
case('creation', 'zeros_like', 'zeros_like', [uni((3,))], torch.zeros_like)
case('creation', 'ones_like', 'ones_like', [uni((0, 2))], torch.ones_like)
case('creation', 'iota', 'iota_axis1', [],
     lambda: torch.arange(4, dtype=torch.int32).expand(3, 4),
     {'dtype': 'int32', 'shape': [3, 4], 'axis': 1}, out_dtypes=[np.int32], diff=False)
case('creation', 'iota', 'iota_axis0_f32', [],
     lambda: torch.arange(2, dtype=F64).reshape(2, 1, 1).expand(2, 3, 2),
     {'dtype': 'float32', 'shape': [2, 3, 2], 'axis': -3}, out_dtypes=[np.float32], diff=False)
CONST = uni((2, 2))
case('creation', 'constant', 'constant', [], lambda: torch.tensor(CONST.astype(np.float64)),
     {'tensor': enc(CONST)}, out_dtypes=[np.float32], diff=False)

# ---------------------------------------------------------------- matmul


def mm_tol(a, b):
    """(K + 1) U max_ij sum_k |a_ik b_kj|: recursive summation bound."""
    s = torch.matmul(torch.tensor(np.abs(a).astype(np.float64)),
                     torch.tensor(np.abs(b).astype(np.float64)))
    k = a.shape[-1]
    return [2 * U, (k + 1) * U * float(s.max()) if s.numel() else 0.0]


MM = [('2d', (2, 3), (3, 4)), ('vec_mat', (3,), (3, 4)), ('mat_vec', (2, 3), (3,)),
      ('vec_vec', (5,), (5,)), ('batched', (2, 2, 3), (2, 3, 4)),
      ('batch_broadcast_rhs', (2, 2, 3), (3, 4)), ('batch_broadcast_lhs', (3, 4), (2, 4, 2)),
      ('batch_broadcast_both', (2, 1, 2, 3), (3, 3, 2)), ('vec_batched', (3,), (2, 3, 4)),
      ('batched_vec', (2, 3, 4), (4,)), ('k_zero', (2, 0), (0, 3)), ('m_zero', (0, 3), (3, 2)),
      ('size1', (1, 1), (1, 1)), ('long_k', (2, 16), (16, 3))]
for tag, sa, sb in MM:
    a, b = uni(sa, -2, 2), uni(sb, -2, 2)
    # gradient sums: over N (dA), over M and the broadcast batch (dB)
    k = max(sa[-1] if sa else 1, sb[-1] if len(sb) > 1 else 1) * 4
    case('linalg', 'matmul', 'matmul_%s' % tag, [a, b], torch.matmul, fwd_tol=mm_tol(a, b), k=k)
case('linalg', 'matmul', 'matmul_f64', [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))],
     torch.matmul, fwd_tol=[1e-15, 1e-15])

# ---------------------------------------------------------------- reductions


def red_len(shape, axes):
    if axes is None:
        return int(np.prod(shape))
    return int(np.prod([shape[a] for a in axes])) if axes else 1


def red_tol(x, axes, mean=False):
    """(n + 1) U max(group sum |x|) (/ n for mean, + U for its division)."""
    n = red_len(x.shape, axes)
    t = torch.tensor(np.abs(x).astype(np.float64))
    dims = tuple(range(x.ndim)) if axes is None else tuple(axes)
    s = t.sum(dim=dims) if dims else t
    m = float(s.max()) if s.numel() else 0.0
    if mean:
        return [2 * U, (n + 2) * U * m / max(n, 1)]
    return [U, (n + 1) * U * m]


def tdims(x, axes):
    return tuple(range(x.dim())) if axes is None else tuple(axes)


def t_sum(x, axes, keep):
    d = tdims(x, axes)
    return x.sum(dim=d, keepdim=keep) if d else x.clone()


def t_mean(x, axes, keep):
    d = tdims(x, axes)
    return x.mean(dim=d, keepdim=keep) if d else x.clone()


def t_max(x, axes, keep):
    # torch.amax splits the gradient evenly among equal maxima, as jax
    d = tdims(x, axes)
    return torch.amax(x, dim=d, keepdim=keep) if d else x.clone()


def t_min(x, axes, keep):
    d = tdims(x, axes)
    return torch.amin(x, dim=d, keepdim=keep) if d else x.clone()


RED = {'sum': t_sum, 'mean': t_mean, 'max': t_max, 'min': t_min}
RSHAPES = [('all', (2, 3, 4), None), ('axis0', (2, 3, 4), [0]), ('axis_neg1', (2, 3, 4), [-1]),
           ('axes02', (2, 3, 4), [0, 2]), ('axes_neg', (2, 3, 4), [-1, 0, 1]),
           ('no_axes', (2, 3), []), ('rank0', (), None), ('size1', (1, 4), [0]),
           ('zero_size_kept', (0, 3), [1])]
for name, fn in RED.items():
    for tag, shape, axes in RSHAPES:
        for keep in (False, True):
            x = distinct(shape) if name in ('max', 'min') else uni(shape)
            n = red_len(shape, axes)
            if name in ('max', 'min'):
                tol = EXACT
            else:
                tol = red_tol(x, [a % len(shape) for a in axes] if axes else axes,
                              name == 'mean')
            case('reduce', name, '%s_%s%s' % (name, tag, '_keep' if keep else ''), [x],
                 lambda t, fn=fn, axes=axes, keep=keep: fn(t, axes, keep),
                 {'axes': axes, 'keepdims': keep}, fwd_tol=tol, k=n)
# summing/averaging over a zero-size axis: sum 0, mean NaN (0/0 as jnp.mean)
for name in ('sum', 'mean'):
    case('reduce', name, '%s_over_zero_axis' % name, [uni((2, 0))],
         lambda t, fn=RED[name]: fn(t, [1], False), {'axes': [1], 'keepdims': False})
# ties: max/min split the gradient equally among the maxima
tie = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], np.float32)
for name in ('max', 'min'):
    case('reduce', name, '%s_ties' % name, [tie], lambda t, fn=RED[name]: fn(t, [1], False),
         {'axes': [1], 'keepdims': False})
    case('reduce', name, '%s_ties_all' % name, [tie], lambda t, fn=RED[name]: fn(t, None, True),
         {'axes': None, 'keepdims': True})
case('reduce', 'max', 'max_nan', [np.array([[1.0, np.nan, 3.0], [-np.inf, -np.inf, -np.inf]],
                                           np.float32)],
     lambda t: torch.amax(t, dim=1), {'axes': [1], 'keepdims': False}, diff=False)
case('reduce', 'sum', 'sum_f64', [rng.normal(size=(3, 4))], lambda t: t.sum(dim=1),
     {'axes': [1], 'keepdims': False}, fwd_tol=[1e-15, 1e-15])
# integer reductions wrap like integer adds
IS = np.array([[2147483647, 1, 5], [-3, -4, 7]], np.int32)
case('reduce', 'sum', 'sum_int32_wraps', [IS],
     lambda t: torch.tensor(wrap32(IS.astype(np.int64).sum(axis=1))),
     {'axes': [1], 'keepdims': False}, out_dtypes=[np.int32], diff=False)
case('reduce', 'max', 'max_int32', [IS], lambda t: torch.amax(t, dim=0),
     {'axes': [0], 'keepdims': False}, out_dtypes=[np.int32], diff=False)
case('reduce', 'min', 'min_uint32', [np.array([4000000000, 3, 4294967295], np.uint32)],
     lambda t: torch.tensor(3, dtype=torch.int64), {'axes': None, 'keepdims': False},
     out_dtypes=[np.uint32], diff=False)

# argmax: first maximum; a NaN counts as the maximum (jnp.argmax)
for tag, x, axis, keep in (('axis0', distinct((3, 4)), 0, False),
                           ('axis_neg1_keep', distinct((2, 3, 4)), -1, True),
                           ('ties_first', np.array([[1, 3, 3], [2, 2, 2]], np.float32), 1, False),
                           ('nan', np.array([[1, np.nan, 5, np.nan], [0, 1, 2, 2]], np.float32),
                            1, False),
                           ('int32', np.array([[5, -1], [5, 9]], np.int32), 0, False),
                           ('size1', distinct((1, 3)), 0, True)):
    ref = np.argmax(x, axis=axis)
    if keep:
        ref = np.expand_dims(ref, axis)
    case('reduce', 'argmax', 'argmax_%s' % tag, [x],
         lambda t, ref=ref: torch.tensor(ref.astype(np.int32)), {'axis': axis, 'keepdims': keep},
         out_dtypes=[np.int32], diff=False)


# logsumexp: jax subtracts the max, replaced by 0 where it is not finite
def lse_tol(x, axes):
    n = red_len(x.shape, axes)
    return [4 * U, (n + 4) * U]


for tag, shape, axes in (('all', (2, 3, 4), None), ('axis1', (2, 3, 4), [1]),
                         ('axes02', (2, 3, 4), [0, 2]), ('axis_neg1', (3, 5), [-1]),
                         ('rank0', (), None), ('size1', (4, 1), [1])):
    for keep in (False, True):
        x = uni(shape, -4, 4)
        case('reduce', 'logsumexp', 'logsumexp_%s%s' % (tag, '_keep' if keep else ''), [x],
             lambda t, axes=axes, keep=keep: torch.logsumexp(t, dim=tdims(t, axes), keepdim=keep)
             if tdims(t, axes) else t.clone(),
             {'axes': axes, 'keepdims': keep}, fwd_tol=lse_tol(x, axes),
             k=red_len(shape, axes))
case('reduce', 'logsumexp', 'logsumexp_large', [np.array([[1000.0, 1000.5], [-1000.0, -999.0]],
                                                         np.float32)],
     lambda t: torch.logsumexp(t, dim=1), {'axes': [1], 'keepdims': False}, fwd_tol=[4 * U, 0])
INF_ROWS = np.array([[-np.inf, -np.inf, -np.inf], [np.inf, 1.0, 2.0], [-np.inf, 0.0, 1.0],
                     [np.nan, 0.0, 1.0]], np.float32)
case('reduce', 'logsumexp', 'logsumexp_infinite', [INF_ROWS],
     lambda t: torch.logsumexp(t, dim=1), {'axes': [1], 'keepdims': False},
     fwd_tol=[4 * U, 6 * U], diff=False)
case('reduce', 'logsumexp', 'logsumexp_empty_axis', [uni((2, 0))],
     lambda t: torch.full((2,), -math.inf, dtype=F64), {'axes': [1], 'keepdims': False},
     diff=False)

for name, fn in (('softmax', torch.softmax), ('log_softmax', torch.log_softmax)):
    for tag, shape, axis in (('last', (3, 5), -1), ('axis0', (3, 5), 0), ('rank1', (6,), 0),
                             ('size1_axis', (4, 1), 1), ('rank3', (2, 3, 4), 1)):
        x = uni(shape, -4, 4)
        n = shape[axis]
        tol = [2 * (n + 4) * U, 1e-38] if name == 'softmax' else [2 * U, 2 * (n + 4) * U]
        case('reduce', name, '%s_%s' % (name, tag), [x],
             lambda t, fn=fn, axis=axis: fn(t, axis), {'axis': axis}, fwd_tol=tol, k=n)
    case('reduce', name, '%s_large' % name,
         [np.array([[1000.0, 1001.0, 999.0], [-50.0, -51.0, -52.0]], np.float32)],
         lambda t, fn=fn: fn(t, 1), {'axis': 1}, fwd_tol=[16 * U, 16 * U], k=3)

# masked rows (attention): -inf entries get probability 0 and gradient 0
MASKED = np.array([[0.5, -np.inf, 1.0, -2.0], [-np.inf, 3.0, -np.inf, -np.inf]], np.float32)
case('reduce', 'softmax', 'softmax_masked', [MASKED], lambda t: torch.softmax(t, 1), {'axis': 1},
     fwd_tol=[16 * U, 1e-38], k=4)
case('reduce', 'log_softmax', 'log_softmax_masked', [MASKED], lambda t: torch.log_softmax(t, 1),
     {'axis': 1}, fwd_tol=[2 * U, 16 * U], diff=False)
case('reduce', 'logsumexp', 'logsumexp_masked', [MASKED], lambda t: torch.logsumexp(t, 1),
     {'axes': [1], 'keepdims': False}, fwd_tol=[4 * U, 8 * U], k=4)

# ---------------------------------------------------------------- shapes

X234 = uni((2, 3, 4))
for tag, x, shape, ref in (('merge', X234, [6, 4], [6, 4]), ('infer', X234, [-1], [24]),
                           ('infer_mid', X234, [2, -1, 2], [2, 6, 2]),
                           ('to_rank0', uni((1, 1)), [], []), ('from_rank0', uni(()), [1, 1, 1],
                                                               [1, 1, 1]),
                           ('zero_size', uni((0, 3)), [3, 0], [3, 0]),
                           ('same', uni((2, 2)), [2, 2], [2, 2])):
    case('shape', 'reshape', 'reshape_%s' % tag, [x], lambda t, s=ref: t.reshape(s),
         {'shape': shape})
for tag, x, perm in (('2d', uni((2, 3)), [1, 0]), ('cycle', X234, [2, 0, 1]),
                     ('reverse_null', X234, None), ('swap_last', X234, [0, 2, 1]),
                     ('negative', X234, [-1, 0, -2]), ('identity', uni((3,)), [0]),
                     ('size1', uni((1, 3, 1)), [2, 1, 0]), ('zero_size', uni((0, 2, 3)), [1, 2, 0]),
                     ('rank0', uni(()), [])):
    p = list(reversed(range(x.ndim))) if perm is None else [q % max(x.ndim, 1) for q in perm]
    case('shape', 'transpose', 'transpose_%s' % tag, [x], lambda t, p=p: t.permute(p),
         {'perm': perm})
for tag, x, shape in (('row', uni((3,)), [2, 3]), ('col', uni((2, 1)), [2, 4]),
                      ('rank0', uni(()), [2, 2]), ('new_and_stretch', uni((1, 3)), [4, 2, 3]),
                      ('to_zero', uni((1, 3)), [0, 3]), ('same', uni((2, 2)), [2, 2])):
    case('shape', 'broadcast_to', 'broadcast_to_%s' % tag, [x],
         lambda t, s=shape: t.expand(s), {'shape': shape},
         k=int(np.prod(shape)) // max(1, x.size))
for tag, x, axis in (('front', uni((2, 3)), 0), ('back', uni((2, 3)), -1), ('mid', uni((2, 3)), 1),
                     ('rank0', uni(()), 0), ('neg_mid', uni((2, 3)), -2)):
    case('shape', 'expand_dims', 'expand_dims_%s' % tag, [x],
         lambda t, a=axis: t.unsqueeze(a), {'axis': axis})
for tag, x, axes, ref in (('all', uni((1, 3, 1)), None, [3]), ('one', uni((1, 3, 1)), [2], [1, 3]),
                          ('neg', uni((1, 3, 1)), [-3], [3, 1]),
                          ('to_rank0', uni((1, 1)), None, []), ('none_size1', uni((2, 3)), None,
                                                                [2, 3])):
    case('shape', 'squeeze', 'squeeze_%s' % tag, [x], lambda t, s=ref: t.reshape(s),
         {'axes': axes})


def t_slice(t, start, limit, strides):
    idx = tuple(slice(s, l, st) for s, l, st in zip(start, limit, strides or [1] * len(start)))
    return t[idx]


for tag, x, start, limit, strides in (
        ('plain', uni((4, 5)), [1, 0], [3, 4], None),
        ('strided', uni((5, 6)), [1, 0], [5, 6], [2, 3]),
        ('strided_uneven', uni((7,)), [0], [7], [3]),
        ('strided_offset', uni((3, 8)), [0, 1], [3, 8], [1, 4]),
        ('empty', uni((3, 4)), [1, 2], [1, 4], None),
        ('full', uni((2, 2)), [0, 0], [2, 2], [1, 1]),
        ('rank0', uni(()), [], [], None),
        ('rank3', uni((3, 4, 5)), [1, 0, 1], [3, 4, 5], [1, 2, 2])):
    case('shape', 'slice', 'slice_%s' % tag, [x],
         lambda t, a=start, b=limit, c=strides: t_slice(t, a, b, c),
         {'start': start, 'limit': limit, 'strides': strides})
for tag, x, axis, start, limit in (('axis1', uni((3, 5)), 1, 1, 3), ('neg_axis', X234, -1, 2, 4),
                                   ('axis0_empty', uni((3, 2)), 0, 2, 2),
                                   ('negative_indices', uni((6,)), 0, -4, -1)):
    def ref_sa(t, axis=axis, start=start, limit=limit):
        n = t.shape[axis]
        s, l = start + n if start < 0 else start, limit + n if limit < 0 else limit
        return t.narrow(axis % t.dim(), s, l - s)
    case('shape', 'slice_axis', 'slice_axis_%s' % tag, [x], ref_sa,
         {'axis': axis, 'start': start, 'limit': limit})
for tag, xs, axis in (('two_axis0', [uni((2, 3)), uni((1, 3))], 0),
                      ('three_axis1', [uni((2, 1)), uni((2, 3)), uni((2, 2))], 1),
                      ('neg_axis', [uni((2, 2, 2)), uni((2, 2, 1))], -1),
                      ('with_empty', [uni((0, 3)), uni((2, 3)), uni((0, 3))], 0),
                      ('one', [uni((2, 3))], 1)):
    case('shape', 'concatenate', 'concatenate_%s' % tag, xs,
         lambda *ts, axis=axis: torch.cat(ts, dim=axis), {'axis': axis})
for tag, x, n, axis in (('axis1_3', uni((2, 6)), 3, 1), ('axis0_2', uni((4, 3)), 2, 0),
                        ('neg_axis', X234, 2, -1), ('one', uni((2, 2)), 1, 0),
                        ('zero_size', uni((0, 4)), 2, 1)):
    case('shape', 'split_equal', 'split_equal_%s' % tag, [x],
         lambda t, n=n, axis=axis: list(torch.chunk(t, n, dim=axis)) if t.numel() else
         [t.narrow(axis % t.dim(), i * (t.shape[axis] // n), t.shape[axis] // n)
          for i in range(n)],
         {'n': n, 'axis': axis})


def t_pad(t, lo, hi, value):
    # lax.pad with a constant: negative amounts crop. torch's F.pad takes
    # (last_lo, last_hi, ..., first_lo, first_hi) and crops on negatives too.
    spec = []
    for a in reversed(range(t.dim())):
        spec += [lo[a], hi[a]]
    return torch.nn.functional.pad(t, spec, value=value) if spec else t.clone()


for tag, x, lo, hi, value in (('both', uni((2, 3)), [1, 0], [2, 1], 0.0),
                              ('value', uni((3,)), [2], [1], 1.5),
                              ('negative_lo', uni((4, 3)), [-1, 0], [1, -2], 0.0),
                              ('crop_all_but_one', uni((3,)), [-2], [0], 0.0),
                              ('zero', uni((2, 2)), [0, 0], [0, 0], 0.0),
                              ('zero_size', uni((0, 2)), [1, 0], [1, 1], -2.0),
                              ('rank0', uni(()), [], [], 0.0)):
    case('shape', 'pad', 'pad_%s' % tag, [x],
         lambda t, lo=lo, hi=hi, v=value: t_pad(t, lo, hi, v),
         {'lo': lo, 'hi': hi, 'value': value})

# ---------------------------------------------------------------- gather

for tag, x, idx, axis in (('axis0', uni((4, 3)), np.array([0, 3, 1], np.int32), 0),
                          ('repeated', uni((3, 2)), np.array([1, 1, 2, 1], np.int32), 0),
                          ('negative', uni((5,)), np.array([-1, -5, 2], np.int32), 0),
                          ('clip', uni((4, 2)), np.array([7, -9, 3, 4], np.int32), 0),
                          ('idx_rank2', uni((2, 5)), np.array([[0, 4], [4, 1]], np.int32), 1),
                          ('scalar_idx', uni((3, 4)), np.array(2, np.int32), -1),
                          ('idx_int64', X234, np.array([2, 0], np.int64), 1),
                          ('empty_idx', uni((3, 2)), np.zeros((0,), np.int32), 0)):
    def ref_take(t, i, axis=axis, idx=idx):
        a = axis % t.dim()
        n = t.shape[a]
        eff = torch.tensor(take_index(idx, n))
        out = torch.index_select(t, a, eff.reshape(-1))
        shape = list(t.shape[:a]) + list(idx.shape) + list(t.shape[a + 1:])
        return out.reshape(shape)
    case('gather', 'take', 'take_%s' % tag, [x, idx], ref_take, {'axis': axis}, k=4)
for tag, x, idx, axis in (('axis1', uni((2, 4)), np.array([[0, 3, 3], [1, 1, 2]], np.int32), 1),
                          ('axis0', uni((3, 2)), np.array([[2, 0], [2, 2]], np.int32), 0),
                          ('negative_clip', uni((2, 3)), np.array([[-1, 5], [-4, 0]], np.int32), 1),
                          ('rank3', X234, ints((2, 3, 2), 0, 4), -1)):
    def ref_tal(t, i, axis=axis, idx=idx):
        a = axis % t.dim()
        eff = torch.tensor(take_index(idx, t.shape[a]))
        return torch.gather(t, a, eff)
    case('gather', 'take_along_axis', 'take_along_axis_%s' % tag, [x, idx], ref_tal,
         {'axis': axis}, k=4)


def ref_one_hot(labels, n, dtype):
    # jax.nn.one_hot: labels[..., None] == arange(n); out-of-range labels give zeros
    lab = np.asarray(labels)
    return torch.tensor((lab[..., None] == np.arange(n)).astype(dtype))


for tag, labels, n, dtype in (('basic', np.array([0, 2, 1, 3], np.int32), 4, np.float32),
                              ('out_of_range', np.array([-1, 4, 2], np.int32), 4, np.float32),
                              ('rank2_f64', np.array([[1, 0], [2, 2]], np.int32), 3, np.float64),
                              ('rank0', np.array(1, np.int32), 2, np.float32),
                              ('int64_labels', np.array([5, 0], np.int64), 6, np.float32)):
    case('gather', 'one_hot', 'one_hot_%s' % tag, [labels],
         lambda t, lab=labels, n=n, dt=dtype: ref_one_hot(lab, n, dt),
         {'n': n, 'dtype': np.dtype(dtype).name}, out_dtypes=[dtype], diff=False)

# ---------------------------------------------------------------- write

with open(OUT, 'w') as f:
    json.dump({'generator': 'tests/golden/make_ops_golden.py', 'torch': torch.__version__,
               'cases': CASES}, f, separators=(',', ':'))
    f.write('\n')
ops = sorted({c['op'] for c in CASES})
print('%d cases, %d ops -> %s' % (len(CASES), len(ops), OUT))
