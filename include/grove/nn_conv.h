/* grove: convolution and pooling, the lax primitive and the Flax layers.
 * Included by grove/nn.h. */
#ifndef GROVE_NN_CONV_H
#define GROVE_NN_CONV_H

#include "grove/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
 * rhs_dilation, dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
 * feature_group_count): lhs [N, spatial..., C], rhs [spatial..., C/G, O],
 * result [N, spatial'..., O], for any number s >= 1 of spatial dims (1-d is
 * NWC / WIO). window_strides, lhs_dilation, rhs_dilation have s entries
 * (NULL = all 1); padding has 2*s: (lo, hi) per spatial dim, as lax's list
 * of pairs flattened (NULL = no padding; negative crops). float32 or
 * float64, both operands alike. Differentiable in both operands (the input
 * gradient is a conv with the flipped kernel and lhs_dilation = stride, the
 * kernel gradient a conv of input and cotangent, as lax does). */
gv_value gv_conv_general_dilated(gv_value lhs, gv_value rhs, const int64_t *window_strides,
                                 const int64_t *padding, const int64_t *lhs_dilation,
                                 const int64_t *rhs_dilation, int feature_group_count);

/* ---- layers (src/nn/conv.c, flax.linen.linear.Conv and flax.linen.pooling) ----
 *
 * Padding, for Conv and the pools: `padding` names lax's rule, "SAME" (the
 * default for Conv, NULL), "VALID" (the default for the pools, NULL),
 * "SAME_LOWER" or, for Conv, "CAUSAL" (1-d: (k-1)*dilation zeros before)
 * and "CIRCULAR" (wrapped around by (k-1)//2 before and k//2 after, k the
 * dilated kernel, then VALID, as Flax does);
 * or `explicit_padding` gives 2*n numbers, (lo, hi) per spatial dim, and
 * then padding is ignored. SAME pads so that out = ceil(in / stride), lo =
 * total // 2, as lax.padtype_to_pads does (on the undilated input, with the
 * dilated kernel). Arrays are borrowed and must outlive the module's uses. */

/* nn.Conv: params "kernel" (kernel_size..., in_features / groups, features)
 * drawn first, then "bias" (features,); y = conv_general_dilated(x, kernel)
 * + bias. x is [batch, spatial..., in_features] or, unbatched, [spatial...,
 * in_features] (Flax adds and removes the batch axis). The default
 * kernel_init is lecun_normal with Flax's fans for a conv kernel: fan_in =
 * in_features / groups * prod(kernel_size). */
typedef struct gv_conv_cfg {
    int64_t features;
    int nspatial;                    /* entries of kernel_size */
    const int64_t *kernel_size;
    const int64_t *strides;          /* NULL = 1 */
    const char *padding;             /* NULL = "SAME" */
    const int64_t *explicit_padding; /* 2 * nspatial, overrides padding */
    const int64_t *input_dilation;   /* NULL = 1 (lhs_dilation) */
    const int64_t *kernel_dilation;  /* NULL = 1 (rhs_dilation) */
    int feature_group_count;         /* 0 or 1 = no groups */
    bool use_bias;                   /* Flax default true */
    gv_initializer kernel_init;      /* default lecun_normal */
    gv_initializer bias_init;        /* default zeros */
} gv_conv_cfg;
/* The Flax defaults with features and kernel_size set. */
gv_conv_cfg gv_conv_defaults(int64_t features, int nspatial, const int64_t *kernel_size);
extern const gv_module_type gv_Conv;
/* nn.Conv as a value function in the current scope. */
gv_value gv_conv_apply(gv_scope *s, const gv_conv_cfg *cfg, gv_value x);

/* nn.ConvTranspose (lax.conv_transpose): params "kernel" (kernel_size...,
 * in_features, features), or (kernel_size..., features, in_features) with
 * transpose_kernel, then "bias" (features,). y = conv_general_dilated(x,
 * kernel, stride 1, pads, lhs_dilation = strides, rhs_dilation =
 * kernel_dilation), the kernel's spatial axes flipped and I/O swapped when
 * transpose_kernel (the gradient of a Conv). "SAME" gives out = in *
 * stride, "VALID" in * stride + max(k - stride, 0), k the dilated kernel
 * (lax._conv_transpose_padding); explicit_padding is lax's, on the dilated
 * input. Batch dims as for Conv. */
typedef struct gv_conv_transpose_cfg {
    int64_t features;
    int nspatial;
    const int64_t *kernel_size;
    const int64_t *strides;          /* NULL = 1 */
    const char *padding;             /* NULL = "SAME"; or "VALID" */
    const int64_t *explicit_padding; /* 2 * nspatial, overrides padding */
    const int64_t *kernel_dilation;  /* NULL = 1 */
    bool use_bias;                   /* Flax default true */
    bool transpose_kernel;           /* Flax default false */
    gv_initializer kernel_init;      /* default lecun_normal */
    gv_initializer bias_init;        /* default zeros */
} gv_conv_transpose_cfg;
gv_conv_transpose_cfg gv_conv_transpose_defaults(int64_t features, int nspatial,
                                                 const int64_t *kernel_size);
extern const gv_module_type gv_ConvTranspose;
gv_value gv_conv_transpose_apply(gv_scope *s, const gv_conv_transpose_cfg *cfg, gv_value x);

/* nn.max_pool(x, window_shape, strides, padding): the maximum over each
 * window (lax.reduce_window with -inf padding). x is [batch..., spatial...,
 * features] with nwindow spatial dims; strides NULL = 1; padding NULL =
 * "VALID". */
gv_value gv_max_pool(gv_value x, int nwindow, const int64_t *window_shape, const int64_t *strides,
                     const char *padding, const int64_t *explicit_padding);
/* nn.avg_pool: the window sums (in the window's row-major order) divided by
 * prod(window_shape) when count_include_pad (Flax's default), else by the
 * number of input elements each window covers. */
gv_value gv_avg_pool(gv_value x, int nwindow, const int64_t *window_shape, const int64_t *strides,
                     const char *padding, const int64_t *explicit_padding,
                     bool count_include_pad);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
