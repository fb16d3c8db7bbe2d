/* grove: Flax's attention layers (flax.linen.attention) and DenseGeneral
 * (flax.linen.linear). Included by grove/nn.h.
 *
 *   gv_mha_cfg c = gv_mha_defaults(8);            // nn.MultiHeadDotProductAttention(8)
 *   c.qkv_features = 64;
 *   gv_module attn = {&gv_MultiHeadDotProductAttention, &c};
 *   // args: (inputs_q), (inputs_q, inputs_kv) or (inputs_q, inputs_kv, mask)
 *
 * Parameter paths, shapes and initial numbers are Flax's: children "query",
 * "key", "value" (DenseGeneral kernel (in, heads, head_dim), bias (heads,
 * head_dim)) and "out" (kernel (heads, head_dim, out), bias (out)). */
#ifndef GROVE_NN_ATTENTION_H
#define GROVE_NN_ATTENTION_H

#include "grove/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* ---- nn.DenseGeneral: contracts x's `axis` dims with the kernel's first ones.
 * kernel: x.shape[axis...] + features, bias: features. The kernel is drawn as
 * Flax does, with kernel_init on the 2-D shape (prod(in dims), prod(features))
 * and reshaped, so a variance-scaling fan_in is the product of the contracted
 * dims. Output: x's other dims (in order) + features. Flax's batch_dims is not
 * supported. */
typedef struct gv_dense_general_cfg {
    const int64_t *features;     /* borrowed; nfeatures >= 1 */
    int nfeatures;
    const int *axis;             /* borrowed; NULL = (-1,), Flax's default */
    int naxis;
    bool use_bias;               /* Flax default true */
    gv_initializer kernel_init;  /* default lecun_normal */
    gv_initializer bias_init;    /* default zeros */
} gv_dense_general_cfg;
/* The defaults with `features` set (axis -1, bias, lecun_normal, zeros). */
gv_dense_general_cfg gv_dense_general_defaults(const int64_t *features, int nfeatures);
extern const gv_module_type gv_DenseGeneral;
/* DenseGeneral as a value function in the current scope (params kernel, bias). */
gv_value gv_dense_general_apply(gv_scope *s, const gv_dense_general_cfg *cfg, gv_value x);

/* ---- dot_product_attention (a traced function, no params) ----
 * q: [batch..., q_len, heads, depth], k: [batch..., kv_len, heads, depth],
 * v: [batch..., kv_len, heads, v_depth]. weights = softmax(where(mask,
 * (q / sqrt(depth)) . k, finfo(float32).min)) of shape [batch..., heads,
 * q_len, kv_len]; the output is weights . v: [batch..., q_len, heads, v_depth].
 * mask: GV_NO_MASK or a bool or float (nonzero = attend) array that
 * broadcasts to the weights' shape (make_causal_mask, make_attention_mask).
 * Dropout on the weights (Flax's): keep = bernoulli(dropout_rng, 1 - rate)
 * over [1..., q_len, kv_len] (broadcast_dropout) or the weights' shape,
 * weights * (keep / (1 - rate)). */
#define GV_NO_MASK ((gv_value){NULL, -1})

typedef struct gv_attention_options {
    double dropout_rate;         /* 0: no dropout (Flax's default) */
    bool deterministic;          /* true: no dropout */
    bool broadcast_dropout;      /* Flax default true: one mask for all batch dims and heads */
    gv_value dropout_rng;        /* a uint32[2] key value, needed when dropping */
    gv_prng_impl impl;           /* its PRNG scheme */
} gv_attention_options;
/* Flax's defaults: rate 0, broadcast_dropout true. NULL options mean these. */
gv_attention_options gv_attention_options_defaults(void);

gv_value gv_dot_product_attention_weights(gv_value q, gv_value k, gv_value mask,
                                          const gv_attention_options *o);
gv_value gv_dot_product_attention(gv_value q, gv_value k, gv_value v, gv_value mask,
                                  const gv_attention_options *o);

/* nn.make_attention_mask(query_input, key_input, pairwise_fn, extra_batch_dims):
 * pairwise(q[..., :, None], k[..., None, :]) with a heads axis of 1 inserted
 * at -3 and extra_batch_dims leading 1s: float32 [1.., batch..., 1, q_len,
 * kv_len]. pairwise NULL = multiply (the inputs are cast to float32 first, so
 * bool inputs give their logical and, as jnp.multiply does). */
typedef gv_value (*gv_pairwise_fn)(gv_value, gv_value);
gv_value gv_make_attention_mask(gv_value query_input, gv_value key_input,
                                gv_pairwise_fn pairwise, int extra_batch_dims);
/* nn.make_causal_mask(x, extra_batch_dims): x is [batch..., len] (only its
 * shape is used); float32 [1.., batch..., 1, len, len], 1 where key <= query. */
gv_value gv_make_causal_mask(gv_value x, int extra_batch_dims);

/* ---- nn.MultiHeadDotProductAttention / nn.MultiHeadAttention / nn.SelfAttention
 * Call args: MultiHeadDotProductAttention (inputs_q), (inputs_q, inputs_kv)
 * or (inputs_q, inputs_kv, mask) (gv_args1/2/3); without inputs_kv it is
 * self attention; for self attention with a mask pass (x, x, mask) or use
 * SelfAttention: (x) or (x, mask). Flax's separate inputs_k and inputs_v
 * are not offered (key and value are both inputs_kv). Inputs are [batch...,
 * length, features] with the same batch dims. Dropout on the attention
 * weights runs when dropout_rate > 0, deterministic is false and the scope
 * trains (gv_module_options.train), with make_rng('dropout') of this module.
 * Errors (trace errors naming the module path): num_heads < 1, qkv_features
 * not divisible by num_heads, a rate outside [0, 1), inputs of rank < 2 or
 * with different batch dims, a mask that does not broadcast. */
typedef struct gv_mha_cfg {
    int64_t num_heads;
    int64_t qkv_features;        /* 0 (Flax None) = inputs_q's last dim */
    int64_t out_features;        /* 0 (Flax None) = inputs_q's last dim */
    double dropout_rate;         /* default 0 */
    bool deterministic;          /* default false (dropout follows the scope's train flag) */
    bool broadcast_dropout;      /* default true */
    bool use_bias;               /* default true */
    gv_initializer kernel_init;  /* default lecun_normal */
    gv_initializer bias_init;    /* default zeros */
    const gv_initializer *out_kernel_init; /* NULL (default) = kernel_init */
    const gv_initializer *out_bias_init;   /* NULL (default) = bias_init */
} gv_mha_cfg;
/* Flax's defaults with num_heads set. */
gv_mha_cfg gv_mha_defaults(int64_t num_heads);
extern const gv_module_type gv_MultiHeadDotProductAttention;
extern const gv_module_type gv_MultiHeadAttention; /* same layer, auto-named MultiHeadAttention_i */
extern const gv_module_type gv_SelfAttention;      /* cfg: gv_mha_cfg; auto-named SelfAttention_i */

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
