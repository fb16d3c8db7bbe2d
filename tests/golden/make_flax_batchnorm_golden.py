"""Regenerates tests/golden/flax_batchnorm_golden.json with the real Flax:
nn.BatchNorm's init (params and batch_stats), its output in training mode
and its batch_stats after each of 3 applies with mutable=['batch_stats'],
then the output with use_running_average=True from the final stats, and
the gradient of sum(y * w) in training mode w.r.t. x, scale and bias.

Three cases: x (8, 5) with the defaults, NHWC x (4, 3, 3, 2) (axis -1,
momentum 0.9), and x (6, 4, 3) with axis 1, use_fast_variance=False and
use_bias=False (the other paths). The applies use non-trivial scale and bias (drawn here and
stored) so the affine part is tested too; the inputs are stored as float32
values.

XLA runs without FMA contraction and without the algebraic simplifier
(XLA_FLAGS below) so that each jnp op is the float32 operation it names,
as grove's reference evaluator computes it.

    ~/.cache/grove/venv/bin/python tests/golden/make_flax_batchnorm_golden.py"""
import json
import os

os.environ['XLA_FLAGS'] = '--xla_cpu_max_isa=SSE4_2 --xla_disable_hlo_passes=algsimp'
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import flax  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))


def tolist(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64).tolist()


def tree(t):
    return jax.tree_util.tree_map(tolist, flax.core.unfreeze(t))


def case(name, shape, momentum, seed, **kw):
    rs = np.random.RandomState(seed)
    axis = kw.get('axis', -1)
    feats = shape[axis]
    bshape = [1] * len(shape)
    bshape[axis] = feats
    # a per-feature offset and spread so the statistics are not trivial
    off = rs.uniform(-2, 2, size=feats).astype(np.float32)
    spread = rs.uniform(0.5, 3, size=feats).astype(np.float32)
    off, spread = off.reshape(bshape), spread.reshape(bshape)
    xs = [(rs.standard_normal(shape).astype(np.float32) * spread + off).astype(np.float32)
          for _ in range(3)]
    x_eval = rs.standard_normal(shape).astype(np.float32) * spread + off
    x_eval = x_eval.astype(np.float32)
    model = nn.BatchNorm(use_running_average=False, momentum=momentum, **kw)
    init_vars = model.init(jax.random.PRNGKey(0), jnp.asarray(xs[0]))
    params = {'scale': rs.uniform(0.5, 1.5, size=feats).astype(np.float32),
              'bias': rs.uniform(-1, 1, size=feats).astype(np.float32)}
    params = {k: v for k, v in params.items() if k in init_vars['params']}
    stats = init_vars['batch_stats']
    steps = []
    for x in xs:
        y, upd = model.apply({'params': params, 'batch_stats': stats}, jnp.asarray(x),
                             mutable=['batch_stats'])
        stats = upd['batch_stats']
        steps.append({'x': tolist(x), 'y': tolist(y), 'batch_stats': tree(stats)})
    # the gradient of sum(y * w) in training mode (through the batch
    # statistics) w.r.t. x, scale and bias, at the first step's input
    w = rs.standard_normal(shape).astype(np.float32)

    def loss(p, x):
        y, _ = model.apply({'params': p, 'batch_stats': init_vars['batch_stats']}, x,
                           mutable=['batch_stats'])
        return jnp.sum(y * w)

    gp, gx = jax.grad(loss, argnums=(0, 1))(params, jnp.asarray(xs[0]))
    grad = {'w': tolist(w), 'x': tolist(gx), 'params': tree(gp)}
    eval_model = nn.BatchNorm(use_running_average=True, momentum=momentum, **kw)
    y_eval = eval_model.apply({'params': params, 'batch_stats': stats}, jnp.asarray(x_eval))
    return {'name': name, 'shape': list(shape), 'momentum': momentum, 'cfg': kw,
            'init': tree(init_vars), 'params': tree(params), 'steps': steps,
            'x_eval': tolist(x_eval), 'y_eval': tolist(y_eval), 'grad': grad}


out = {'flax': flax.__version__, 'jax': jax.__version__,
       'xla_flags': os.environ['XLA_FLAGS'],
       'cases': [case('dense_8x5', (8, 5), 0.99, 1), case('nhwc_4x3x3x2', (4, 3, 3, 2), 0.9, 2),
                 case('axis1_slow_variance_no_bias_6x4x3', (6, 4, 3), 0.9, 3, axis=1,
                      use_fast_variance=False, use_bias=False)]}
with open(os.path.join(here, 'flax_batchnorm_golden.json'), 'w') as f:
    json.dump(out, f, indent=1)
    f.write('\n')
