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

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
