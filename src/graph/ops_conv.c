/* Convolution: lax.conv_general_dilated with dimension numbers
 * ('NHWC', 'HWIO', 'NHWC'), any number of spatial dims (1-d: NWC/WIO).
 *
 * The primitive: lhs [N, S..., C], rhs [K..., C/G, O] (G =
 * feature_group_count, O a multiple of G), out [N, So..., O]. Per spatial
 * dim d (XLA's ConvGeneralDilated semantics): the input is dilated by
 * lhs_dilation (ld - 1 zeros between elements), padded by lo/hi (negative
 * crops), and the kernel dilated by rhs_dilation (rd); then
 *   So = floor(((S-1)*ld + 1 + lo + hi - ((K-1)*rd + 1)) / stride) + 1
 *   out[n, o, f] = sum_k sum_c xp[n, o*stride + k*rd, g*Cg + c] w[k, c, f],
 * g = f / (O/G). Attributes: attr = stride[s], lo[s], hi[s], ld[s], rd[s]
 * (s spatial dims); iattr[0] = G. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grove/nn_conv.h"
#include "ops_internal.h"

static int64_t dilate(int64_t n, int64_t d) { return n == 0 ? 0 : (n - 1) * d + 1; }

gv_status gv_conv_infer(gv_graph *g, gv_node *n, const gv_node *const *ins) {
    const gv_node *x = ins[0], *w = ins[1];
    if (x->dtype != w->dtype || (x->dtype != GV_F32 && x->dtype != GV_F64)) {
        gv_graph_fail(g, GV_ERR_DTYPE, "conv_general_dilated: needs two float32 or two float64 "
                      "operands, got %s and %s", gv_dtype_name(x->dtype), gv_dtype_name(w->dtype));
        return GV_ERR_DTYPE;
    }
    int s = x->rank - 2;
    int64_t G = n->iattr[0];
    const char *why = NULL;
    if (x->rank < 3 || w->rank != x->rank || n->nattr != 5 * s) why = "lhs must be [N, spatial..., C] "
                                                                    "and rhs [spatial..., C/G, O]";
    else if (G < 1 || x->shape[s + 1] % G || w->shape[s + 1] % G)
        why = "feature_group_count must be >= 1 and divide the input and output features";
    else if (w->shape[s] * G != x->shape[s + 1])
        why = "rhs input features times feature_group_count differ from lhs features";
    for (int d = 0; !why && d < s; d++)
        if (n->attr[d] < 1 || n->attr[3 * s + d] < 1 || n->attr[4 * s + d] < 1)
            why = "strides and dilations must be >= 1";
    int64_t oshape[x->rank > 0 ? x->rank : 1];
    for (int d = 0; !why && d < s; d++) {
        int64_t padded = dilate(x->shape[1 + d], n->attr[3 * s + d]) + n->attr[s + d] + n->attr[2 * s + d];
        int64_t kd = dilate(w->shape[d], n->attr[4 * s + d]);
        if (padded < kd || w->shape[d] == 0) why = "the dilated kernel is larger than the padded input";
        else oshape[1 + d] = (padded - kd) / n->attr[d] + 1;
    }
    if (why) {
        char *sx = gv_shape_str(x->rank, x->shape), *sw = gv_shape_str(w->rank, w->shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "conv_general_dilated: %s x %s: %s", sx, sw, why);
        free(sx), free(sw);
        return GV_ERR_SHAPE;
    }
    oshape[0] = x->shape[0];
    oshape[s + 1] = w->shape[s + 1];
    gv_node_set_shape(g, n, x->rank, oshape);
    n->dtype = x->dtype;
    return GV_OK;
}

/* Reference kernel: direct loops. Each output sums over the kernel window in
 * row-major order, then over the group's input channels, one multiply-add
 * per term; padding and dilation holes are zeros that take part in the sum
 * (0 * Inf is NaN, as in XLA, which pads the operand before convolving). */
void gv_conv_kernel(const gv_node *n, const gv_node *const *ins, const void *const *in, void *out) {
    const gv_node *x = ins[0], *w = ins[1];
    int s = n->rank - 2;
    const int64_t *st = n->attr, *lo = n->attr + s, *ld = n->attr + 3 * s, *rd = n->attr + 4 * s;
    int64_t N = x->shape[0], C = x->shape[s + 1], O = n->shape[s + 1], G = n->iattr[0];
    int64_t Cg = C / G, Og = O / G, nout = 1, nk = 1;
    for (int d = 0; d < s; d++) nout *= n->shape[1 + d], nk *= w->shape[d];
    int64_t xs[s > 0 ? s : 1]; /* element strides of the input's spatial dims */
    int64_t m = C;
    for (int d = s - 1; d >= 0; d--) xs[d] = m, m *= x->shape[1 + d];
    int64_t xbatch = C, obatch = nout * O;
    for (int d = 0; d < s; d++) xbatch *= x->shape[1 + d];
    int64_t oi[s > 0 ? s : 1], ki[s > 0 ? s : 1];
    for (int64_t b = 0; b < N; b++)
        for (int64_t o = 0; o < nout; o++) {
            int64_t rem = o;
            for (int d = s - 1; d >= 0; d--) oi[d] = rem % n->shape[1 + d], rem /= n->shape[1 + d];
            for (int64_t f = 0; f < O; f++) {
                int64_t g0 = (f / Og) * Cg;
                double acc64 = 0.0;
                float acc32 = 0.0f;
                for (int64_t k = 0; k < nk; k++) {
                    int64_t kr = k, off = 0;
                    bool inside = true;
                    for (int d = s - 1; d >= 0; d--) ki[d] = kr % w->shape[d], kr /= w->shape[d];
                    for (int d = 0; d < s; d++) {
                        int64_t j = oi[d] * st[d] + ki[d] * rd[d] - lo[d];
                        if (j < 0 || j % ld[d] || j / ld[d] >= x->shape[1 + d]) inside = false;
                        else off += j / ld[d] * xs[d];
                    }
                    int64_t wo = k * Cg * O + f;
                    if (n->dtype == GV_F32) {
                        const float *X = (const float *)in[0] + b * xbatch + off + g0;
                        const float *W = (const float *)in[1] + wo;
                        for (int64_t c = 0; c < Cg; c++) acc32 = fmaf(inside ? X[c] : 0.0f, W[c * O], acc32);
                    } else {
                        const double *X = (const double *)in[0] + b * xbatch + off + g0;
                        const double *W = (const double *)in[1] + wo;
                        for (int64_t c = 0; c < Cg; c++) acc64 = fma(inside ? X[c] : 0.0, W[c * O], acc64);
                    }
                }
                if (n->dtype == GV_F32) ((float *)out)[b * obatch + o * O + f] = acc32;
                else ((double *)out)[b * obatch + o * O + f] = acc64;
            }
        }
}

/* x reversed along axis (lax.rev), as a take of K-1, ..., 0. */
static gv_value reverse_axis(gv_value x, int axis) {
    int64_t k = gv_value_shape(x)[axis];
    gv_value idx = gv_add_scalar(gv_mul_scalar(gv_iota(x.graph, GV_I32, 1, &k, 0), -1.0), (double)(k - 1));
    return gv_take(x, idx, axis);
}

static gv_value conv_emit(gv_value x, gv_value w, int s, const int64_t *st, const int64_t *lo,
                          const int64_t *hi, const int64_t *ld, const int64_t *rd, int64_t G) {
    int64_t attr[5 * (s > 0 ? s : 1)];
    for (int d = 0; d < s; d++) {
        attr[d] = st[d], attr[s + d] = lo[d], attr[2 * s + d] = hi[d];
        attr[3 * s + d] = ld[d], attr[4 * s + d] = rd[d];
    }
    gv_value xs[2] = {x, w};
    gv_graph *g = gv_graph_of("conv_general_dilated", xs, 2);
    if (!g) return gv_invalid(x.graph ? x.graph : w.graph);
    gv_node_spec spec = {.op = GV_OP_CONV, .nin = 2, .in = xs, .nattr = 5 * s, .attr = attr,
                         .iattr = {G, 0}};
    return gv_emit(g, &spec);
}

/* The transpose rules of lax (_conv_general_dilated_transpose_lhs/_rhs):
 *   dx = conv(ct, rev(w) with I and O swapped per group, stride = ld,
 *             pad lo' = Kd - 1 - lo, hi' = Sd + Kd - 1 - Od - lo',
 *             lhs_dilation = stride, rhs_dilation = rd, G)
 *   dw = conv(x as [C, S..., N], ct as [So..., N, O], stride = rd,
 *             pad lo, hi'' = (Od - Sd) + (Kd - lo - 1),
 *             lhs_dilation = ld, rhs_dilation = stride), per group
 * with Sd, Kd, Od the dilated input, kernel and output (stride) sizes. lax
 * computes the grouped dw with batch_group_count; here the groups become
 * feature groups of one conv (below). */
void gv_conv_vjp(const gv_node *n, const gv_value *ins, gv_value out, gv_value ct, gv_value *cts) {
    (void)out;
    gv_value x = ins[0], w = ins[1];
    int s = n->rank - 2, r = n->rank;
    const int64_t *st = n->attr, *lo = n->attr + s, *ld = n->attr + 3 * s, *rd = n->attr + 4 * s;
    const int64_t *xsh = gv_value_shape(x), *wsh = gv_value_shape(w);
    int64_t G = n->iattr[0], C = xsh[s + 1], O = wsh[s + 1], Cg = C / G, Og = O / G;
    int64_t plo[s], phi[s], qhi[s];
    for (int d = 0; d < s; d++) {
        int64_t Sd = dilate(xsh[1 + d], ld[d]), Kd = dilate(wsh[d], rd[d]);
        int64_t Od = dilate(n->shape[1 + d], st[d]);
        plo[d] = Kd - 1 - lo[d];
        phi[d] = Sd + Kd - 1 - Od - plo[d];
        qhi[d] = (Od - Sd) + (Kd - lo[d] - 1);
    }
    /* dx */
    gv_value wr = w;
    for (int d = 0; d < s; d++) wr = reverse_axis(wr, d);
    int64_t sh5[r + 1];
    memcpy(sh5, wsh, (size_t)s * sizeof *sh5);
    sh5[s] = Cg, sh5[s + 1] = G, sh5[s + 2] = Og;
    int perm5[r + 1];
    for (int d = 0; d < s; d++) perm5[d] = d;
    perm5[s] = s + 2, perm5[s + 1] = s + 1, perm5[s + 2] = s;
    wr = gv_transpose(gv_reshape(wr, r + 1, sh5), perm5);
    int64_t sh4[r];
    memcpy(sh4, wsh, (size_t)s * sizeof *sh4);
    sh4[s] = Og, sh4[s + 1] = C;
    wr = gv_reshape(wr, r, sh4);
    cts[0] = conv_emit(ct, wr, s, ld, plo, phi, st, rd, G);
    /* dw: one conv whose batch is the group's input channels and whose
     * feature groups are the G groups of the batch: x [N, S..., G*Cg] ->
     * [Cg, S..., G*N] (feature g*N + n), ct [N, So..., O] -> [So..., N, O]
     * as the kernel (in features N per group); the result [Cg, K..., O] is
     * the kernel's gradient with its first axis moved behind K */
    int64_t xsh5[r + 1];
    xsh5[0] = xsh[0];
    for (int d = 0; d < s; d++) xsh5[1 + d] = xsh[1 + d];
    xsh5[s + 1] = G, xsh5[s + 2] = Cg;
    int px[r + 1];
    px[0] = s + 2;
    for (int d = 0; d < s; d++) px[1 + d] = 1 + d;
    px[s + 1] = s + 1, px[s + 2] = 0;
    int64_t xsh4[r];
    xsh4[0] = Cg;
    for (int d = 0; d < s; d++) xsh4[1 + d] = xsh[1 + d];
    xsh4[s + 1] = G * xsh[0];
    gv_value xt = gv_reshape(gv_transpose(gv_reshape(x, r + 1, xsh5), px), r, xsh4);
    int pc[r], pw[r];
    for (int d = 0; d < s; d++) pc[d] = 1 + d, pw[d] = 1 + d;
    pc[s] = 0, pc[s + 1] = s + 1, pw[s] = 0, pw[s + 1] = s + 1;
    gv_value y = conv_emit(xt, gv_transpose(ct, pc), s, rd, lo, qhi, ld, st, G);
    cts[1] = gv_transpose(y, pw);
}

gv_value gv_conv_general_dilated(gv_value lhs, gv_value rhs, const int64_t *window_strides,
                                 const int64_t *padding, const int64_t *lhs_dilation,
                                 const int64_t *rhs_dilation, int feature_group_count) {
    gv_value xs[2] = {lhs, rhs};
    gv_graph *g = gv_graph_of("conv_general_dilated", xs, 2);
    if (!g) return gv_invalid(lhs.graph ? lhs.graph : rhs.graph);
    int r = gv_value_rank(lhs);
    if (r < 3 || gv_value_rank(rhs) != r) {
        char *a = gv_shape_str(r, gv_value_shape(lhs)), *b = gv_shape_str(gv_value_rank(rhs), gv_value_shape(rhs));
        gv_graph_fail(g, GV_ERR_SHAPE, "conv_general_dilated: %s x %s: lhs must be [N, spatial..., C] "
                      "and rhs [spatial..., C/G, O] of the same rank", a, b);
        free(a), free(b);
        return gv_invalid(g);
    }
    int s = r - 2;
    int64_t st[s], lo[s], hi[s], ld[s], rd[s];
    for (int d = 0; d < s; d++) {
        st[d] = window_strides ? window_strides[d] : 1;
        lo[d] = padding ? padding[2 * d] : 0;
        hi[d] = padding ? padding[2 * d + 1] : 0;
        ld[d] = lhs_dilation ? lhs_dilation[d] : 1;
        rd[d] = rhs_dilation ? rhs_dilation[d] : 1;
    }
    return conv_emit(lhs, rhs, s, st, lo, hi, ld, rd, feature_group_count);
}
