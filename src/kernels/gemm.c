/* GEMM through the BLAS (docs/blas.md has the measured choice). A matmul
 * node's transpose flags become CBLAS flags: no transpose is materialised.
 * Batched products loop over the broadcast batch, one GEMM each.
 *
 * Threads (docs/engine.md, "Threads"): the BLAS always runs on one thread
 * per call; a plan's threads are grove's own OpenMP threads. With several,
 * a GEMM of at least 2^20 multiply-adds is split across them in blocks of
 * output columns (or rows when there are few columns), one BLAS call per
 * block, which measured faster than OpenBLAS's own threading on these
 * shapes (docs/blas.md).
 *
 * One BLAS thread without touching the host's settings: OpenBLAS's OpenMP
 * build runs a call on omp_get_max_threads() threads, or on one inside an
 * active parallel region. omp_get_max_threads() reads the nthreads-var ICV,
 * which belongs to the current task (OpenMP 5.2, section 2.4.4): set to 1
 * inside an undeferred task it holds for the calls in that task only and
 * ends with it. openblas_set_num_threads() would instead change OpenBLAS's
 * process-wide count and, in this build, call omp_set_num_threads() on the
 * calling thread: the default team size of the host's own parallel regions. */
#include <cblas.h>
#include <omp.h>

#include "compile/compile_internal.h"

/* C = op(A) op(B) (m x n, row stride ldc) on the calling thread alone. */
static void sgemm_1thread(CBLAS_TRANSPOSE TA, CBLAS_TRANSPOSE TB, int64_t m, int64_t n, int64_t k,
                          const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                          int64_t ldc) {
#pragma omp task if(0)
    {
        omp_set_num_threads(1); /* this task's ICV only, see above */
        cblas_sgemm(CblasRowMajor, TA, TB, (int)m, (int)n, (int)k, 1.0f, A, (int)lda, B, (int)ldb,
                    0.0f, C, (int)ldc);
    }
}

void gv_sgemm_1thread(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc) {
    sgemm_1thread(ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, A, lda,
                  B, ldb, C, ldc);
}

/* One GEMM, or its column/row blocks on `threads` threads. */
static void sgemm_split(bool ta, bool tb, int64_t m, int64_t nn, int64_t k, const float *A,
                        int64_t lda, const float *B, int64_t ldb, float *C, int threads) {
    CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (threads <= 1 || m * nn * k < (INT64_C(1) << 20)) {
        sgemm_1thread(TA, TB, m, nn, k, A, lda, B, ldb, C, nn);
        return;
    }
    bool by_cols = nn >= 64 * threads;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; t++) {
        int64_t len = by_cols ? nn : m;
        int64_t lo = len * t / threads, hi = len * (t + 1) / threads;
        if (hi <= lo) continue;
        if (by_cols) /* C[:, lo:hi] = op(A) op(B)[:, lo:hi] */
            sgemm_1thread(TA, TB, m, hi - lo, k, A, lda, B + (tb ? lo * ldb : lo), ldb, C + lo, nn);
        else /* C[lo:hi, :] = op(A)[lo:hi, :] op(B) */
            sgemm_1thread(TA, TB, hi - lo, nn, k, A + (ta ? lo : lo * lda), lda, B, ldb, C + lo * nn,
                          nn);
    }
}

void gv_sgemm(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
              int64_t ldb, float *C, int threads) {
    sgemm_split(false, false, m, n, k, A, lda, B, ldb, C, threads);
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
