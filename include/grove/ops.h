/* grove: array ops on traced values, named as in jax.numpy / jax.lax.
 *
 * Every op records one primitive (or a few) into the graph of its inputs
 * and returns the result value. Binary elementwise ops broadcast as numpy
 * does and need equal dtypes (no implicit promotion: use gv_cast, or the
 * *_scalar forms, whose scalar takes the value's dtype). Axes may be
 * negative. A bad shape, axis or dtype is a sticky trace error (graph.h). */
#ifndef GROVE_OPS_H
#define GROVE_OPS_H

#include "grove/graph.h"
#include "grove/random.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* ---- creation ----------------------------------------------------------- */
gv_value gv_constant(gv_graph *g, const gv_tensor *t);   /* copies t's data */
gv_value gv_full(gv_graph *g, gv_dtype dtype, int rank, const int64_t *shape, double value);
gv_value gv_scalar(gv_graph *g, gv_dtype dtype, double value);
gv_value gv_full_like(gv_value x, double value);
gv_value gv_zeros_like(gv_value x);
gv_value gv_ones_like(gv_value x);
/* lax.broadcasted_iota: values 0..shape[axis]-1 along axis. */
gv_value gv_iota(gv_graph *g, gv_dtype dtype, int rank, const int64_t *shape, int axis);

/* ---- elementwise, unary --------------------------------------------------- */
gv_value gv_neg(gv_value x);
gv_value gv_abs(gv_value x);
gv_value gv_sign(gv_value x);
gv_value gv_exp(gv_value x);
gv_value gv_log(gv_value x);
gv_value gv_log1p(gv_value x);
gv_value gv_expm1(gv_value x);
gv_value gv_sqrt(gv_value x);
gv_value gv_rsqrt(gv_value x);
gv_value gv_square(gv_value x);
gv_value gv_tanh(gv_value x);
gv_value gv_sigmoid(gv_value x);      /* jax.nn.sigmoid */
gv_value gv_erf(gv_value x);
gv_value gv_relu(gv_value x);         /* jax.nn.relu: max(x, 0), gradient 0 at 0 */
gv_value gv_gelu(gv_value x, bool approximate); /* jax.nn.gelu; approximate = tanh form */
gv_value gv_silu(gv_value x);         /* x * sigmoid(x) */
gv_value gv_softplus(gv_value x);     /* log(1 + exp(x)), stable */

/* ---- elementwise, binary (numpy broadcasting) ---------------------------- */
gv_value gv_add(gv_value a, gv_value b);
gv_value gv_sub(gv_value a, gv_value b);
gv_value gv_mul(gv_value a, gv_value b);
gv_value gv_div(gv_value a, gv_value b);
gv_value gv_pow(gv_value a, gv_value b);
gv_value gv_maximum(gv_value a, gv_value b);
gv_value gv_minimum(gv_value a, gv_value b);
gv_value gv_add_scalar(gv_value a, double s);
gv_value gv_mul_scalar(gv_value a, double s);
gv_value gv_pow_scalar(gv_value a, double s);

/* comparisons give bool; select(cond, a, b) = cond ? a : b (broadcasting) */
gv_value gv_eq(gv_value a, gv_value b);
gv_value gv_ne(gv_value a, gv_value b);
gv_value gv_lt(gv_value a, gv_value b);
gv_value gv_le(gv_value a, gv_value b);
gv_value gv_gt(gv_value a, gv_value b);
gv_value gv_ge(gv_value a, gv_value b);
gv_value gv_select(gv_value cond, gv_value a, gv_value b);
gv_value gv_cast(gv_value x, gv_dtype dtype);
/* lax.stop_gradient: the value, with no gradient flowing through it. */
gv_value gv_stop_gradient(gv_value x);

/* ---- linear algebra ------------------------------------------------------- */
/* jnp.matmul: 1-d operands are promoted and the added dim removed; leading
 * (batch) dims broadcast. */
gv_value gv_matmul(gv_value a, gv_value b);

/* ---- reductions (axes NULL = all axes) ----------------------------------- */
gv_value gv_sum(gv_value x, const int *axes, int naxes, bool keepdims);
gv_value gv_mean(gv_value x, const int *axes, int naxes, bool keepdims);
gv_value gv_max(gv_value x, const int *axes, int naxes, bool keepdims);
gv_value gv_min(gv_value x, const int *axes, int naxes, bool keepdims);
gv_value gv_argmax(gv_value x, int axis, bool keepdims);   /* int32 */
gv_value gv_logsumexp(gv_value x, const int *axes, int naxes, bool keepdims);
gv_value gv_softmax(gv_value x, int axis);
gv_value gv_log_softmax(gv_value x, int axis);

/* ---- shapes --------------------------------------------------------------- */
gv_value gv_reshape(gv_value x, int rank, const int64_t *shape); /* one dim may be -1 */
gv_value gv_transpose(gv_value x, const int *perm);              /* NULL = reverse */
gv_value gv_broadcast_to(gv_value x, int rank, const int64_t *shape);
gv_value gv_expand_dims(gv_value x, int axis);
gv_value gv_squeeze(gv_value x, const int *axes, int naxes);     /* NULL = all size-1 */
/* lax.slice: [start, limit) with stride (strides NULL = 1) on every axis. */
gv_value gv_slice(gv_value x, const int64_t *start, const int64_t *limit,
                  const int64_t *strides);
/* Slice along one axis: x[..., start:limit, ...]; negative start/limit count
 * from the end (lax.slice_in_dim). */
gv_value gv_slice_axis(gv_value x, int axis, int64_t start, int64_t limit);
gv_value gv_concatenate(const gv_value *xs, int n, int axis);
/* jnp.split into n equal parts along axis; writes n values. */
gv_status gv_split_equal(gv_value x, int n, int axis, gv_value *out);
/* lax.pad with a constant: lo/hi padding per axis (may be negative). */
gv_value gv_pad(gv_value x, const int64_t *lo, const int64_t *hi, double value);
/* jnp.take(x, idx, axis): idx integer, any shape; out-of-range clamps as
 * JAX's default mode does for take (fill/clip: clip here). */
gv_value gv_take(gv_value x, gv_value idx, int axis);
/* jnp.take_along_axis(x, idx, axis). */
gv_value gv_take_along_axis(gv_value x, gv_value idx, int axis);
/* jax.nn.one_hot(labels, n): float32 with a new last axis. */
gv_value gv_one_hot(gv_value labels, int64_t n, gv_dtype dtype);

/* ---- random (a key is a uint32[2] value) ---------------------------------- */
gv_value gv_key_constant(gv_graph *g, gv_key key);
/* split(key, n): uint32[n, 2]; gv_key_at picks key i of such a batch. */
gv_value gv_random_split(gv_prng_impl impl, gv_value key, int64_t n);
gv_value gv_key_at(gv_value keys, int64_t i);
gv_value gv_random_fold_in(gv_value key, uint32_t data);
gv_value gv_random_uniform(gv_prng_impl impl, gv_value key, int rank, const int64_t *shape,
                           float minval, float maxval);
gv_value gv_random_normal(gv_prng_impl impl, gv_value key, int rank, const int64_t *shape);
gv_value gv_random_truncated_normal(gv_prng_impl impl, gv_value key, float lower,
                                    float upper, int rank, const int64_t *shape);
gv_value gv_random_bernoulli(gv_prng_impl impl, gv_value key, float p, int rank,
                             const int64_t *shape);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
