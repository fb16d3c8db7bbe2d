/* grove internal: the maths of every float elementwise primitive, defined
 * once. The reference kernels (ops_elementwise.c) and the compiler's fused
 * block loops (src/compile/fused.c) both expand these tables, so a fused
 * result is the reference's arithmetic by construction, and an op missing
 * from a table is one the compiler does not fuse (gv_ew_fusible).
 *
 * Each row is X(opcode, expression): unary rows in x, binary rows in a and
 * b. float32 rows compute in float (expf, 0.5f, ...) and float64 rows in
 * double, so a float32 op never rounds through double. */
#ifndef GROVE_EW_MATH_H
#define GROVE_EW_MATH_H

#include <math.h>

#define GV_SQRT_2_OVER_PI 0.7978845608028654
#define GV_SQRT_2_OVER_PI_F 0.7978845608028654f
#define GV_SQRT_HALF 0.70710678118654752
#define GV_SQRT_HALF_F 0.70710678118654752f

/* maximum(x, 0) keeps a NaN, as jax.nn.relu; softplus is
 * log1p(exp(-|x|)) + max(x, 0), stable for large |x| (jax.nn.softplus). */
#define GV_UNARY_F32_OPS(X)                                                              \
    X(GV_OP_NEG, -x)                                                                     \
    X(GV_OP_ABS, fabsf(x))                                                               \
    X(GV_OP_SIGN, x > 0 ? 1.0f : x < 0 ? -1.0f : x)                                      \
    X(GV_OP_EXP, expf(x))                                                                \
    X(GV_OP_LOG, logf(x))                                                                \
    X(GV_OP_LOG1P, log1pf(x))                                                            \
    X(GV_OP_EXPM1, expm1f(x))                                                            \
    X(GV_OP_SQRT, sqrtf(x))                                                              \
    X(GV_OP_RSQRT, 1.0f / sqrtf(x))                                                      \
    X(GV_OP_SQUARE, x * x)                                                               \
    X(GV_OP_TANH, tanhf(x))                                                              \
    X(GV_OP_SIGMOID, 1.0f / (1.0f + expf(-x)))                                           \
    X(GV_OP_ERF, erff(x))                                                                \
    X(GV_OP_RELU, (x > 0 || x != x) ? x : 0.0f)                                          \
    X(GV_OP_GELU_TANH,                                                                   \
      0.5f * x * (1.0f + tanhf(GV_SQRT_2_OVER_PI_F * (x + 0.044715f * x * x * x)))) \
    X(GV_OP_GELU_ERF, 0.5f * x * (1.0f + erff(x * GV_SQRT_HALF_F)))                 \
    X(GV_OP_SILU, x / (1.0f + expf(-x)))                                                 \
    X(GV_OP_SOFTPLUS, log1pf(expf(-fabsf(x))) + (x > 0 ? x : 0.0f))                      \
    X(GV_OP_STOP_GRADIENT, x)

#define GV_UNARY_F64_OPS(X)                                                              \
    X(GV_OP_NEG, -x)                                                                     \
    X(GV_OP_ABS, fabs(x))                                                                \
    X(GV_OP_SIGN, x > 0 ? 1.0 : x < 0 ? -1.0 : x)                                        \
    X(GV_OP_EXP, exp(x))                                                                 \
    X(GV_OP_LOG, log(x))                                                                 \
    X(GV_OP_LOG1P, log1p(x))                                                             \
    X(GV_OP_EXPM1, expm1(x))                                                             \
    X(GV_OP_SQRT, sqrt(x))                                                               \
    X(GV_OP_RSQRT, 1.0 / sqrt(x))                                                        \
    X(GV_OP_SQUARE, x * x)                                                               \
    X(GV_OP_TANH, tanh(x))                                                               \
    X(GV_OP_SIGMOID, 1.0 / (1.0 + exp(-x)))                                              \
    X(GV_OP_ERF, erf(x))                                                                 \
    X(GV_OP_RELU, (x > 0 || x != x) ? x : 0.0)                                           \
    X(GV_OP_GELU_TANH, 0.5 * x * (1.0 + tanh(GV_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))) \
    X(GV_OP_GELU_ERF, 0.5 * x * (1.0 + erf(x * GV_SQRT_HALF)))                           \
    X(GV_OP_SILU, x / (1.0 + exp(-x)))                                                   \
    X(GV_OP_SOFTPLUS, log1p(exp(-fabs(x))) + (x > 0 ? x : 0.0))                          \
    X(GV_OP_STOP_GRADIENT, x)

/* jnp.maximum/minimum propagate a NaN from either operand: a NaN in a is
 * taken by the test, a NaN in b by the comparison failing. */
#define GV_BINARY_F32_OPS(X)                                                             \
    X(GV_OP_ADD, a + b)                                                                  \
    X(GV_OP_SUB, a - b)                                                                  \
    X(GV_OP_MUL, a * b)                                                                  \
    X(GV_OP_DIV, a / b)                                                                  \
    X(GV_OP_POW, powf(a, b))                                                             \
    X(GV_OP_MAX, (a > b || isnan(a)) ? a : b)                                            \
    X(GV_OP_MIN, (a < b || isnan(a)) ? a : b)

#define GV_BINARY_F64_OPS(X)                                                             \
    X(GV_OP_ADD, a + b)                                                                  \
    X(GV_OP_SUB, a - b)                                                                  \
    X(GV_OP_MUL, a * b)                                                                  \
    X(GV_OP_DIV, a / b)                                                                  \
    X(GV_OP_POW, pow(a, b))                                                              \
    X(GV_OP_MAX, (a > b || isnan(a)) ? a : b)                                            \
    X(GV_OP_MIN, (a < b || isnan(a)) ? a : b)

/* Comparisons of two floats (NaN compares false, except !=). */
#define GV_COMPARE_OPS(X)                                                                \
    X(GV_OP_EQ, a == b)                                                                  \
    X(GV_OP_NE, a != b)                                                                  \
    X(GV_OP_LT, a < b)                                                                   \
    X(GV_OP_LE, a <= b)                                                                  \
    X(GV_OP_GT, a > b)                                                                   \
    X(GV_OP_GE, a >= b)

#endif
