/* GEMM through the BLAS (docs/blas.md has the measured choice). A matmul
 * node's transpose flags become CBLAS flags: no transpose is materialised.
 * Batched products loop over the broadcast batch, one GEMM each. */
#include <cblas.h>

#include "compile/compile_internal.h"

void openblas_set_num_threads(int);

void gv_blas_set_threads(int threads) {
    static int current = -1; /* OpenBLAS's count is process-wide */
    if (threads < 1) threads = 1;
    if (threads != current) {
        openblas_set_num_threads(threads);
        current = threads;
    }
}

static int64_t batch_offset(const gv_node *x, const gv_node *out, int64_t bi) {
    int obr = out->rank - 2, xbr = x->rank - 2;
    int64_t off = 0, stride = x->shape[x->rank - 2] * x->shape[x->rank - 1];
    for (int i = obr - 1; i >= 0; i--) {
        int64_t idx = bi % out->shape[i];
        bi /= out->shape[i];
        int xi = i - (obr - xbr);
        if (xi < 0) continue;
        if (x->shape[xi] != 1) off += idx * stride;
        stride *= x->shape[xi];
    }
    return off;
}

void gv_gemm_run(const gv_node *n, const gv_node *a, const gv_node *b, const float *A,
                 const float *B, float *C) {
    bool ta = n->iattr[0], tb = n->iattr[1];
    int64_t m = n->shape[n->rank - 2], nn = n->shape[n->rank - 1];
    int64_t k = ta ? a->shape[a->rank - 2] : a->shape[a->rank - 1];
    int64_t lda = a->shape[a->rank - 1], ldb = b->shape[b->rank - 1];
    int64_t nbatch = 1;
    for (int i = 0; i < n->rank - 2; i++) nbatch *= n->shape[i];
    for (int64_t bi = 0; bi < nbatch; bi++) {
        const float *pa = A + (nbatch > 1 ? batch_offset(a, n, bi) : 0);
        const float *pb = B + (nbatch > 1 ? batch_offset(b, n, bi) : 0);
        float *pc = C + bi * m * nn;
        if (k == 0) {
            for (int64_t i = 0; i < m * nn; i++) pc[i] = 0.0f;
            continue;
        }
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)m, (int)nn, (int)k, 1.0f, pa, (int)lda, pb, (int)ldb, 0.0f, pc, (int)nn);
    }
}
