/* grove: Flax's normalisation layers LayerNorm, RMSNorm and GroupNorm
 * (flax.linen.normalization), with Flax's parameter names ("scale",
 * "bias"), shapes (the feature axes), defaults and arithmetic order
 * (reference C2, C7). Included by grove/nn.h.
 *
 *   gv_layer_norm_cfg c = gv_layer_norm_defaults();
 *   gv_module ln = {&gv_LayerNorm, &c};
 *   y = gv_scope_call1(s, NULL, &ln, x);          // params LayerNorm_0/{scale,bias}
 *
 * The statistics are Flax's _compute_stats: mean and mean of squares over the
 * reduction axes, var = max(0, E[x^2] - E[x]^2) (use_fast_variance, the
 * default) or E[(x - E[x])^2], in float32 (float64 for a float64 input).
 * Then Flax's _normalize: y = (x - mean) * (rsqrt(var + epsilon) * scale)
 * + bias, the epsilon inside the rsqrt.
 *
 * Axes lists: NULL (or n = 0) means the Flax default; negative axes count
 * from the end; duplicates are dropped, as Flax's _canonicalize_axes does.
 * The cfg struct and the axes arrays are borrowed and must outlive the
 * module's uses. Shape and argument errors are trace errors naming the
 * module path. */
#ifndef GROVE_NN_NORM_H
#define GROVE_NN_NORM_H

#include "grove/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* nn.LayerNorm. */
typedef struct gv_layer_norm_cfg {
    double epsilon;               /* 1e-6 */
    bool use_bias;                /* true: param "bias" */
    bool use_scale;               /* true: param "scale" */
    gv_initializer bias_init;     /* zeros */
    gv_initializer scale_init;    /* ones */
    const int *reduction_axes;    /* NULL = {-1} */
    int nreduction_axes;
    const int *feature_axes;      /* NULL = {-1}: scale and bias have these axes' sizes */
    int nfeature_axes;
    bool use_fast_variance;       /* true: var = max(0, E[x^2] - E[x]^2) */
} gv_layer_norm_cfg;
gv_layer_norm_cfg gv_layer_norm_defaults(void);
extern const gv_module_type gv_LayerNorm;

/* nn.RMSNorm: y = x * rsqrt(E[x^2] + epsilon) * scale (no mean, no bias). */
typedef struct gv_rms_norm_cfg {
    double epsilon;               /* 1e-6 */
    bool use_scale;               /* true: param "scale" */
    gv_initializer scale_init;    /* ones */
    const int *reduction_axes;    /* NULL = {-1} */
    int nreduction_axes;
    const int *feature_axes;      /* NULL = {-1} */
    int nfeature_axes;
    bool use_fast_variance;       /* true; no effect (no mean is taken), kept as Flax has it */
} gv_rms_norm_cfg;
gv_rms_norm_cfg gv_rms_norm_defaults(void);
extern const gv_module_type gv_RMSNorm;

/* nn.GroupNorm: the last axis (channels) split into num_groups groups of
 * group_size; statistics per group over the reduction axes; scale and bias
 * of shape (channels,). Exactly one of num_groups and group_size is set
 * (Flax: num_groups=32, group_size=None; pass .num_groups = 0 with
 * .group_size = k for Flax's num_groups=None, group_size=k). */
typedef struct gv_group_norm_cfg {
    int64_t num_groups;           /* 32; 0 = None */
    int64_t group_size;           /* 0 = None */
    double epsilon;               /* 1e-6 */
    bool use_bias;                /* true */
    bool use_scale;               /* true */
    gv_initializer bias_init;     /* zeros */
    gv_initializer scale_init;    /* ones */
    const int *reduction_axes;    /* NULL = every axis but the leading one (batch);
                                     must include the last */
    int nreduction_axes;
    bool use_fast_variance;       /* true */
} gv_group_norm_cfg;
gv_group_norm_cfg gv_group_norm_defaults(void);
extern const gv_module_type gv_GroupNorm;

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
