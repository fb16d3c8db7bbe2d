/* Convolution and pooling layers: nn.Conv (flax.linen.linear._Conv),
 * nn.ConvTranspose and
 * nn.max_pool / nn.avg_pool (flax.linen.pooling), with Flax's parameter
 * names, shapes, creation order, initialisers and padding rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "grove/nn.h"
#include "grove/nn_conv.h"

static gv_tree *one(gv_value v) { return gv_value_ok(v) ? gv_tree_new_value_leaf(v) : NULL; }

/* lax.padtype_to_pads for one dim: "SAME" pads to out = ceil(in / stride),
 * the extra element at the end ("SAME_LOWER": at the start); "VALID" none. */
static bool pads_for(const char *mode, int64_t in, int64_t window, int64_t stride, int64_t *lo,
                     int64_t *hi) {
    if (!strcmp(mode, "VALID")) return *lo = *hi = 0, true;
    bool same = !strcmp(mode, "SAME"), lower = !strcmp(mode, "SAME_LOWER");
    if (!same && !lower) return false;
    int64_t out = (in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + window - in;
    if (total < 0) total = 0;
    *lo = lower ? total - total / 2 : total / 2;
    *hi = total - *lo;
    return true;
}

/* ---- Conv ---- */

gv_conv_cfg gv_conv_defaults(int64_t features, int nspatial, const int64_t *kernel_size) {
    return (gv_conv_cfg){.features = features, .nspatial = nspatial, .kernel_size = kernel_size,
                         .feature_group_count = 1, .use_bias = true,
                         .kernel_init = gv_init_lecun_normal(), .bias_init = gv_init_zeros()};
}

gv_value gv_conv_apply(gv_scope *s, const gv_conv_cfg *cfg, gv_value x) {
    gv_graph *g = gv_scope_graph(s);
    if (!gv_value_ok(x)) return x;
    int n = cfg->nspatial, r = gv_value_rank(x);
    if (n < 1 || !cfg->kernel_size)
        return gv_value_fail(g, GV_ERR_ARG, "Conv: kernel_size needs at least one entry");
    if (r < n + 1) {
        char *sx = gv_shape_str(r, gv_value_shape(x));
        gv_value v = gv_value_fail(g, GV_ERR_SHAPE, "Conv: input %s has fewer than the %d "
                                   "spatial dims and a feature dim", sx, n);
        free(sx);
        return v;
    }
    int64_t G = cfg->feature_group_count > 0 ? cfg->feature_group_count : 1;
    const int64_t *xs = gv_value_shape(x);
    int64_t in = xs[r - 1];
    if (in % G || cfg->features % G)
        return gv_value_fail(g, GV_ERR_SHAPE, "Conv: input features %lld and features %lld "
                             "must be multiples of feature_group_count %lld", (long long)in,
                             (long long)cfg->features, (long long)G);
    /* batch dims: none (Flax adds one) or several (Flax flattens them) */
    int nbatch = r - n - 1;
    int64_t shp[n + 2];
    shp[0] = 1;
    for (int i = 0; i < nbatch; i++) shp[0] *= xs[i];
    for (int i = 0; i <= n; i++) shp[1 + i] = xs[nbatch + i];
    gv_value x4 = nbatch == 1 ? x : gv_reshape(x, n + 2, shp);
    int64_t st[n], ld[n], rd[n], pad[2 * n];
    for (int i = 0; i < n; i++) {
        st[i] = cfg->strides ? cfg->strides[i] : 1;
        ld[i] = cfg->input_dilation ? cfg->input_dilation[i] : 1;
        rd[i] = cfg->kernel_dilation ? cfg->kernel_dilation[i] : 1;
    }
    const char *mode = cfg->padding ? cfg->padding : "SAME";
    bool dilated_input = false;
    for (int i = 0; i < n; i++) dilated_input |= ld[i] != 1;
    if (dilated_input && !cfg->explicit_padding && strcmp(mode, "CAUSAL"))
        return gv_value_fail(g, GV_ERR_ARG, "Conv: padding \"%s\" with input_dilation: lax has no "
                             "string padding for a dilated input; give explicit_padding", mode);
    bool circular = !cfg->explicit_padding && !strcmp(mode, "CIRCULAR");
    for (int i = 0; i < n; i++) {
        if (cfg->explicit_padding) {
            pad[2 * i] = cfg->explicit_padding[2 * i], pad[2 * i + 1] = cfg->explicit_padding[2 * i + 1];
        } else if (circular) {
            /* Flax: jnp.pad(x, ((k-1)//2, k//2), mode='wrap') with k the dilated
             * kernel, then VALID */
            int64_t kd = (cfg->kernel_size[i] - 1) * rd[i] + 1, lo = (kd - 1) / 2, hi = kd / 2;
            int64_t len = shp[1 + i];
            if (lo > len || hi > len)
                return gv_value_fail(g, GV_ERR_SHAPE, "Conv: circular padding of %lld and %lld "
                                     "wraps more than the %lld elements of spatial dim %d",
                                     (long long)lo, (long long)hi, (long long)len, i);
            gv_value parts[3] = {gv_slice_axis(x4, 1 + i, len - lo, len), x4,
                                 gv_slice_axis(x4, 1 + i, 0, hi)};
            x4 = gv_concatenate(parts, 3, 1 + i);
            pad[2 * i] = pad[2 * i + 1] = 0;
        } else if (!strcmp(mode, "CAUSAL")) {
            if (n != 1)
                return gv_value_fail(g, GV_ERR_ARG, "Conv: causal padding is only implemented "
                                     "for 1-d convolutions");
            pad[0] = (cfg->kernel_size[0] - 1) * rd[0], pad[1] = 0;
        } else {
            int64_t kd = (cfg->kernel_size[i] - 1) * rd[i] + 1;
            if (!pads_for(mode, shp[1 + i], kd, st[i], &pad[2 * i], &pad[2 * i + 1]))
                return gv_value_fail(g, GV_ERR_ARG, "Conv: padding \"%s\" is not SAME, "
                                     "SAME_LOWER, VALID, CAUSAL, CIRCULAR or explicit", mode);
        }
    }
    int64_t ksh[n + 2];
    memcpy(ksh, cfg->kernel_size, (size_t)n * sizeof *ksh);
    ksh[n] = in / G, ksh[n + 1] = cfg->features;
    /* kernel first, then bias: make_rng('params') #1 and #2, as in Flax */
    gv_value w = gv_param(s, "kernel", cfg->kernel_init, n + 2, ksh);
    gv_value y = gv_conv_general_dilated(x4, w, st, pad, ld, rd, (int)G);
    if (cfg->use_bias) y = gv_add(y, gv_param(s, "bias", cfg->bias_init, GV_DIMS(cfg->features)));
    if (!gv_value_ok(y) || nbatch == 1) return y;
    int64_t osh[r];
    memcpy(osh, xs, (size_t)nbatch * sizeof *osh);
    for (int i = 0; i <= n; i++) osh[nbatch + i] = gv_value_shape(y)[1 + i];
    return gv_reshape(y, r, osh);
}

static gv_tree *conv_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    return one(gv_conv_apply(s, cfg, gv_args_get(args, 0)));
}
const gv_module_type gv_Conv = {"Conv", conv_call, NULL, 0};

/* ---- ConvTranspose: lax.conv_transpose ---- */

gv_conv_transpose_cfg gv_conv_transpose_defaults(int64_t features, int nspatial,
                                                 const int64_t *kernel_size) {
    return (gv_conv_transpose_cfg){.features = features, .nspatial = nspatial,
                                   .kernel_size = kernel_size, .use_bias = true,
                                   .kernel_init = gv_init_lecun_normal(),
                                   .bias_init = gv_init_zeros()};
}

/* lax._conv_transpose_padding: the padding of the stride-dilated input that
 * gives out = in * stride ("SAME") or in * stride + max(k - stride, 0)
 * ("VALID"), k the dilated kernel size. */
static bool transpose_pads(const char *mode, int64_t k, int64_t s, int64_t *lo, int64_t *hi) {
    int64_t len, a;
    if (!strcmp(mode, "SAME")) {
        len = k + s - 2;
        a = s > k - 1 ? k - 1 : (len + 1) / 2;
    } else if (!strcmp(mode, "VALID")) {
        len = k + s - 2 + (k - s > 0 ? k - s : 0);
        a = k - 1;
    } else {
        return false;
    }
    *lo = a, *hi = len - a;
    return true;
}

static gv_value reverse_axis(gv_value x, int axis) {
    int64_t k = gv_value_shape(x)[axis];
    gv_value idx = gv_add_scalar(gv_mul_scalar(gv_iota(x.graph, GV_I32, 1, &k, 0), -1.0), (double)(k - 1));
    return gv_take(x, idx, axis);
}

gv_value gv_conv_transpose_apply(gv_scope *s, const gv_conv_transpose_cfg *cfg, gv_value x) {
    gv_graph *g = gv_scope_graph(s);
    if (!gv_value_ok(x)) return x;
    int n = cfg->nspatial, r = gv_value_rank(x);
    if (n < 1 || !cfg->kernel_size)
        return gv_value_fail(g, GV_ERR_ARG, "ConvTranspose: kernel_size needs at least one entry");
    if (r < n + 1) {
        char *sx = gv_shape_str(r, gv_value_shape(x));
        gv_value v = gv_value_fail(g, GV_ERR_SHAPE, "ConvTranspose: input %s has fewer than the "
                                   "%d spatial dims and a feature dim", sx, n);
        free(sx);
        return v;
    }
    const int64_t *xs = gv_value_shape(x);
    int64_t in = xs[r - 1];
    int nbatch = r - n - 1;
    int64_t shp[n + 2];
    shp[0] = 1;
    for (int i = 0; i < nbatch; i++) shp[0] *= xs[i];
    for (int i = 0; i <= n; i++) shp[1 + i] = xs[nbatch + i];
    gv_value x4 = nbatch == 1 ? x : gv_reshape(x, n + 2, shp);
    int64_t st[n], rd[n], pad[2 * n];
    const char *mode = cfg->padding ? cfg->padding : "SAME";
    for (int i = 0; i < n; i++) {
        st[i] = cfg->strides ? cfg->strides[i] : 1;
        rd[i] = cfg->kernel_dilation ? cfg->kernel_dilation[i] : 1;
        if (cfg->explicit_padding) {
            pad[2 * i] = cfg->explicit_padding[2 * i], pad[2 * i + 1] = cfg->explicit_padding[2 * i + 1];
        } else if (!transpose_pads(mode, (cfg->kernel_size[i] - 1) * rd[i] + 1, st[i], &pad[2 * i],
                                   &pad[2 * i + 1])) {
            return gv_value_fail(g, GV_ERR_ARG, "ConvTranspose: padding \"%s\" is not SAME, VALID "
                                 "or explicit", mode);
        }
    }
    int64_t ksh[n + 2];
    memcpy(ksh, cfg->kernel_size, (size_t)n * sizeof *ksh);
    ksh[n] = cfg->transpose_kernel ? cfg->features : in;
    ksh[n + 1] = cfg->transpose_kernel ? in : cfg->features;
    gv_value w = gv_param(s, "kernel", cfg->kernel_init, n + 2, ksh);
    if (cfg->transpose_kernel && gv_value_ok(w)) {
        /* lax: flip the spatial axes, swap I and O */
        for (int i = 0; i < n; i++) w = reverse_axis(w, i);
        int perm[n + 2];
        for (int i = 0; i < n + 2; i++) perm[i] = i;
        perm[n] = n + 1, perm[n + 1] = n;
        w = gv_transpose(w, perm);
    }
    gv_value y = gv_conv_general_dilated(x4, w, NULL, pad, st, rd, 1);
    if (cfg->use_bias) y = gv_add(y, gv_param(s, "bias", cfg->bias_init, GV_DIMS(cfg->features)));
    if (!gv_value_ok(y) || nbatch == 1) return y;
    int64_t osh[r];
    memcpy(osh, xs, (size_t)nbatch * sizeof *osh);
    for (int i = 0; i <= n; i++) osh[nbatch + i] = gv_value_shape(y)[1 + i];
    return gv_reshape(y, r, osh);
}

static gv_tree *conv_transpose_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    return one(gv_conv_transpose_apply(s, cfg, gv_args_get(args, 0)));
}
const gv_module_type gv_ConvTranspose = {"ConvTranspose", conv_transpose_call, NULL, 0};

/* ---- pooling: lax.reduce_window as a chain of strided slices ----
 *
 * out[o] = reduce over k in the window (row-major) of xp[o * stride + k],
 * xp the input padded with the reduction's identity. Each window offset is
 * one strided slice of xp; the slices are combined left to right from the
 * first, so a sum adds the window's elements in row-major order (XLA's
 * reduce_window starts from init = 0 and adds them in the same order;
 * 0 + a = a for every a except -0, which only the sign of a zero shows). */
static gv_value pool(gv_value x, int nw, const int64_t *window, const int64_t *strides,
                     const char *padding, const int64_t *explicit_padding, bool is_max,
                     const char *name) {
    gv_graph *g = x.graph;
    if (!gv_value_ok(x)) return x;
    int r = gv_value_rank(x);
    if (nw < 1 || !window || r < nw + 1) {
        char *sx = gv_shape_str(r, gv_value_shape(x));
        gv_value v = gv_value_fail(g, GV_ERR_SHAPE, "%s: input %s needs the %d window dims and a "
                                   "feature dim", name, sx, nw);
        free(sx);
        return v;
    }
    const int64_t *xs = gv_value_shape(x);
    int b = r - nw - 1; /* first window axis */
    int64_t lo[r], hi[r], start[r], limit[r], step[r], out[r];
    const char *mode = padding ? padding : "VALID";
    for (int a = 0; a < r; a++) lo[a] = hi[a] = 0, step[a] = 1;
    for (int i = 0; i < nw; i++) {
        int a = b + i;
        step[a] = strides ? strides[i] : 1;
        if (explicit_padding) lo[a] = explicit_padding[2 * i], hi[a] = explicit_padding[2 * i + 1];
        else if (!pads_for(mode, xs[a], window[i], step[a], &lo[a], &hi[a]))
            return gv_value_fail(g, GV_ERR_ARG, "%s: padding \"%s\" is not SAME, SAME_LOWER, "
                                 "VALID or explicit", name, mode);
        int64_t padded = xs[a] + lo[a] + hi[a];
        if (window[i] < 1 || step[a] < 1 || padded < window[i])
            return gv_value_fail(g, GV_ERR_SHAPE, "%s: window %lld (stride %lld) does not fit "
                                 "the padded size %lld of axis %d", name, (long long)window[i],
                                 (long long)step[a], (long long)padded, a);
        out[a] = (padded - window[i]) / step[a] + 1;
    }
    gv_value xp = gv_pad(x, lo, hi, is_max ? -INFINITY : 0.0);
    const int64_t *ps = gv_value_shape(xp);
    int64_t nk = 1;
    for (int i = 0; i < nw; i++) nk *= window[i];
    gv_value acc = gv_invalid(g);
    int64_t ki[nw];
    for (int i = 0; i < nw; i++) ki[i] = 0;
    for (int64_t k = 0; k < nk && gv_value_ok(xp); k++) {
        for (int a = 0; a < r; a++) start[a] = 0, limit[a] = ps[a];
        for (int i = 0; i < nw; i++) {
            int a = b + i;
            start[a] = ki[i];
            limit[a] = ki[i] + (out[a] - 1) * step[a] + 1;
        }
        gv_value sl = gv_slice(xp, start, limit, step);
        acc = k == 0 ? sl : is_max ? gv_maximum(acc, sl) : gv_add(acc, sl);
        for (int i = nw - 1; i >= 0 && ++ki[i] == window[i]; i--) ki[i] = 0;
    }
    return gv_value_ok(xp) ? acc : xp;
}

gv_value gv_max_pool(gv_value x, int nwindow, const int64_t *window_shape, const int64_t *strides,
                     const char *padding, const int64_t *explicit_padding) {
    return pool(x, nwindow, window_shape, strides, padding, explicit_padding, true, "max_pool");
}

gv_value gv_avg_pool(gv_value x, int nwindow, const int64_t *window_shape, const int64_t *strides,
                     const char *padding, const int64_t *explicit_padding,
                     bool count_include_pad) {
    gv_value y = pool(x, nwindow, window_shape, strides, padding, explicit_padding, false, "avg_pool");
    if (!gv_value_ok(y)) return y;
    if (count_include_pad) {
        int64_t nk = 1;
        for (int i = 0; i < nwindow; i++) nk *= window_shape[i];
        return gv_div(y, gv_scalar(y.graph, gv_value_dtype(y), (double)nk));
    }
    /* Flax: y / pool(ones(x.shape[:-1] + (1,))) with the batch dims as 1 */
    int r = gv_value_rank(x);
    int64_t ones_shape[r];
    for (int a = 0; a < r; a++) ones_shape[a] = a < r - nwindow - 1 ? 1 : gv_value_shape(x)[a];
    ones_shape[r - 1] = 1;
    gv_value ones = gv_full(x.graph, gv_value_dtype(x), r, ones_shape, 1.0);
    gv_value counts = pool(ones, nwindow, window_shape, strides, padding, explicit_padding, false,
                           "avg_pool");
    return gv_div(y, counts);
}
