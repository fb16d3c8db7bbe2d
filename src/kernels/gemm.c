/* GEMM through the BLAS (docs/blas.md has the measured choice). A matmul
 * node's transpose flags become CBLAS flags: no transpose is materialised.
 * Batched products loop over the broadcast batch, one GEMM each. The BLAS
 * itself stays single-threaded; with several threads, a GEMM of at least
 * 2^20 multiply-adds is split across grove's OpenMP threads in blocks of
 * output columns (or rows when there are few columns), which measured
 * faster than OpenBLAS's own threading on these shapes. */
#include <cblas.h>

#include "compile/compile_internal.h"

void openblas_set_num_threads(int);

void gv_blas_set_threads(int threads) {
    (void)threads;
    static int done; /* OpenBLAS's count is process-wide: pin it to 1 once */
    if (!done) {
        openblas_set_num_threads(1);
        done = 1;
    }
}

/* One GEMM, or its column/row blocks on `threads` threads. */
static void sgemm_split(bool ta, bool tb, int64_t m, int64_t nn, int64_t k, const float *A,
                        int64_t lda, const float *B, int64_t ldb, float *C, int threads) {
    CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (threads <= 1 || m * nn * k < (INT64_C(1) << 20)) {
        cblas_sgemm(CblasRowMajor, TA, TB, (int)m, (int)nn, (int)k, 1.0f, A, (int)lda, B,
                    (int)ldb, 0.0f, C, (int)nn);
        return;
    }
    bool by_cols = nn >= 64 * threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) {
        int64_t len = by_cols ? nn : m;
        int64_t lo = len * t / threads, hi = len * (t + 1) / threads;
        if (hi <= lo) continue;
        if (by_cols) /* C[:, lo:hi] = op(A) op(B)[:, lo:hi] */
            cblas_sgemm(CblasRowMajor, TA, TB, (int)m, (int)(hi - lo), (int)k, 1.0f, A, (int)lda,
                        B + (tb ? lo * ldb : lo), (int)ldb, 0.0f, C + lo, (int)nn);
        else /* C[lo:hi, :] = op(A)[lo:hi, :] op(B) */
            cblas_sgemm(CblasRowMajor, TA, TB, (int)(hi - lo), (int)nn, (int)k, 1.0f,
                        A + (ta ? lo : lo * lda), (int)lda, B, (int)ldb, 0.0f, C + lo * nn,
                        (int)nn);
    }
}

void gv_gemm_run(const gv_node *n, const gv_node *a, const gv_node *b, const float *A,
                 const float *B, float *C, int threads) {
    bool ta = n->iattr[0], tb = n->iattr[1];
    int64_t m = n->shape[n->rank - 2], nn = n->shape[n->rank - 1];
    int64_t k = ta ? a->shape[a->rank - 2] : a->shape[a->rank - 1];
    int64_t lda = a->shape[a->rank - 1], ldb = b->shape[b->rank - 1];
    int64_t nbatch = 1;
    for (int i = 0; i < n->rank - 2; i++) nbatch *= n->shape[i];
    for (int64_t bi = 0; bi < nbatch; bi++) {
        const float *pa = A + (nbatch > 1 ? gv_matmul_batch_offset(a, n, bi) : 0);
        const float *pb = B + (nbatch > 1 ? gv_matmul_batch_offset(b, n, bi) : 0);
        float *pc = C + bi * m * nn;
        if (k == 0) {
            for (int64_t i = 0; i < m * nn; i++) pc[i] = 0.0f;
            continue;
        }
        sgemm_split(ta, tb, m, nn, k, pa, lda, pb, ldb, pc, threads);
    }
}
