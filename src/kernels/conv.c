/* float32 conv_general_dilated in a compiled plan: im2col + one BLAS GEMM
 * per batch element and feature group.
 *
 * For batch element b and group g the patches matrix P has one row per
 * output position (row-major over the output's spatial dims) and one
 * column per (kernel position, input channel of the group), the order of
 * the HWIO kernel's rows, so the kernel is used where it lies: the group's
 * block of output columns W[:, g*Og : (g+1)*Og] with row stride O, and the
 * product goes straight into the output's columns with row stride O.
 * Padding and dilation holes are zeros in P, as in the reference kernel
 * (src/graph/ops_conv.c), which this is tested against
 * (tests/compile/test_differential.c): the terms are the same, only the
 * BLAS's summation order differs. The patches are built on one thread;
 * without groups the GEMM is split across the plan's threads as matmul's
 * are (gemm.c), with groups it is one single-thread BLAS call per group. */
#include <string.h>

#include "compile/compile_internal.h"

int64_t gv_conv_scratch_floats(const gv_node *n, const gv_node *w) {
    int s = n->rank - 2;
    int64_t rows = 1, cols = w->shape[s];
    for (int d = 0; d < s; d++) rows *= n->shape[1 + d], cols *= w->shape[d];
    return rows * cols;
}

void gv_conv_run(const gv_node *n, const gv_node *x, const gv_node *w, const float *X,
                 const float *W, float *Y, float *scratch, int threads) {
    int s = n->rank - 2;
    const int64_t *st = n->attr, *lo = n->attr + s, *ld = n->attr + 3 * s, *rd = n->attr + 4 * s;
    int64_t N = x->shape[0], C = x->shape[s + 1], O = n->shape[s + 1], G = n->iattr[0];
    int64_t Cg = C / G, Og = O / G, nout = 1, nk = 1, xbatch = C;
    for (int d = 0; d < s; d++) nout *= n->shape[1 + d], nk *= w->shape[d], xbatch *= x->shape[1 + d];
    int64_t xs[s], oi[s], ki[s];
    int64_t m = C;
    for (int d = s - 1; d >= 0; d--) xs[d] = m, m *= x->shape[1 + d];
    int64_t kc = nk * Cg;
    if (nout * O == 0) return;
    for (int64_t b = 0; b < N; b++)
        for (int64_t g = 0; g < G; g++) {
            const float *Xb = X + b * xbatch + g * Cg;
            /* P[o, k*Cg + c] */
            for (int d = 0; d < s; d++) oi[d] = 0;
            for (int64_t o = 0; o < nout; o++) {
                float *row = scratch + o * kc;
                for (int d = 0; d < s; d++) ki[d] = 0;
                for (int64_t k = 0; k < nk; k++) {
                    int64_t off = 0;
                    bool inside = true;
                    for (int d = 0; d < s; d++) {
                        int64_t j = oi[d] * st[d] + ki[d] * rd[d] - lo[d];
                        if (j < 0 || j % ld[d] || j / ld[d] >= x->shape[1 + d]) inside = false;
                        else off += j / ld[d] * xs[d];
                    }
                    float *dst = row + k * Cg;
                    if (inside) memcpy(dst, Xb + off, (size_t)Cg * sizeof *dst);
                    else memset(dst, 0, (size_t)Cg * sizeof *dst);
                    for (int d = s - 1; d >= 0 && ++ki[d] == w->shape[d]; d--) ki[d] = 0;
                }
                for (int d = s - 1; d >= 0 && ++oi[d] == n->shape[1 + d]; d--) oi[d] = 0;
            }
            float *Yb = Y + b * nout * O + g * Og;
            if (kc == 0) {
                for (int64_t o = 0; o < nout; o++) memset(Yb + o * O, 0, (size_t)Og * sizeof *Yb);
                continue;
            }
            if (G == 1) /* the output rows are whole: gemm.c may split it across threads */
                gv_sgemm(nout, O, kc, scratch, kc, W, O, Yb, threads);
            else
                gv_sgemm_1thread(false, false, nout, Og, kc, scratch, kc, W + g * Og, O, Yb, O);
        }
}
