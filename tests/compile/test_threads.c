/* The thread model (docs/engine.md, "Threads"): a plan's `threads` are
 * grove's own OpenMP threads, the BLAS runs one thread per call, and running
 * a plan leaves the host's settings as they were: its OpenMP default team
 * size and OpenBLAS's process-wide thread count. Which results may depend on
 * the thread count is checked too: elementwise and reduction results never
 * do; a GEMM split across threads agrees within float rounding (bit for bit
 * with OpenBLAS's Skylake-X kernels, measured; not promised for every
 * kernel set). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "testutil.h"

/* Big enough for every threaded path: fused blocks split across threads
 * (over 16K elements), a GEMM split across threads (m n k >= 2^20) and one
 * that OpenBLAS itself would thread (>= 2^18 multiply-adds). */
static gv_tree *step(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x"), w = gv_tree_get_value(in, "w");
    gv_tree *out = gv_tree_new_dict();
    gv_value y = gv_matmul(x, w); /* [192,160] x [160,192] */
    gv_tree_insert_value(out, "gemm", y);
    /* the same passes on an input (30,720 elements, split across threads)
     * and on the GEMM's result, whose bits may differ with the BLAS kernel */
    gv_tree_insert_value(out, "ew", gv_tanh(gv_add(gv_mul(x, x), gv_exp(gv_neg(gv_abs(x))))));
    gv_tree_insert_value(out, "sum_rows", gv_sum(gv_square(x), (int[]){1}, 1, false));
    gv_tree_insert_value(out, "mean", gv_mean(gv_sigmoid(x), NULL, 0, false));
    gv_tree_insert_value(out, "ew_of_gemm", gv_tanh(gv_add(gv_mul(y, y), gv_exp(gv_neg(gv_abs(y))))));
    gv_tree_insert_value(out, "sum_rows_of_gemm", gv_sum(gv_square(y), (int[]){1}, 1, false));
    return out;
}

static gv_tree *inputs(void) {
    gv_tree *in = gv_tree_new_dict();
    gv_tensor *x = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(1), GV_DIMS(192, 160)));
    gv_tensor *w = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(2), GV_DIMS(160, 192)));
    GVT_OK(gv_tree_insert_tensor(in, "x", x));
    GVT_OK(gv_tree_insert_tensor(in, "w", w));
    gv_tensor_free(x), gv_tensor_free(w);
    return in;
}

static gv_tree *run(const gv_fn *f, const gv_tree *in, int threads) {
    gv_plan_options o = {.threads = threads};
    gv_plan *p = GVT_NN(gv_plan_compile(f, &o));
    gv_tree *out = GVT_NN(gv_plan_new_outputs(p));
    for (int r = 0; r < 3; r++) GVT_OK(gv_plan_run(p, in, out));
    gv_plan_free(p);
    return out;
}

/* The host's view of its own settings, taken outside any parallel region. */
typedef struct {
    int omp_max, blas;
} host_settings;

static host_settings host_now(void) {
    return (host_settings){omp_get_max_threads(), openblas_get_num_threads()};
}

static void check_host(host_settings want, const char *after) {
    host_settings now = host_now();
    cr_expect_eq(now.omp_max, want.omp_max,
                 "after %s the host's omp_get_max_threads() is %d, was %d", after, now.omp_max,
                 want.omp_max);
    cr_expect_eq(now.blas, want.blas,
                 "after %s openblas_get_num_threads() is %d, was %d", after, now.blas, want.blas);
    /* and a bare parallel region of the host's still gets its default team */
    int team = 0;
#pragma omp parallel
#pragma omp single
    team = omp_get_num_threads();
    cr_expect_eq(team, want.omp_max, "after %s a bare omp parallel got %d threads, not %d", after,
                 team, want.omp_max);
}

Test(threads, running_a_plan_leaves_the_hosts_settings_alone) {
    gv_tree *in = inputs();
    gv_fn *f = GVT_NN(gv_trace(step, NULL, in));
    /* the host picked 3 OpenMP threads and 3 BLAS threads, on 2 cores or not */
    omp_set_num_threads(3);
    openblas_set_num_threads(3);
    omp_set_num_threads(3); /* OpenBLAS's setter also set it: say it again */
    host_settings want = host_now();
    cr_assert_eq(want.omp_max, 3);
    cr_assert_eq(want.blas, 3);
    for (int t = 1; t <= 2; t++) {
        gv_tree *out = run(f, in, t);
        check_host(want, t == 1 ? "a 1-thread plan" : "a 2-thread plan");
        gv_tree_free(out);
    }
    gv_tree *ref = NULL;
    GVT_OK(gv_fn_eval(f, in, &ref)); /* the reference's matmul is grove's own loop */
    check_host(want, "gv_fn_eval");
    gv_tree_free(ref);
    gv_fn_free(f);
    gv_tree_free(in);
}

Test(threads, results_do_not_depend_on_the_thread_count) {
    gv_tree *in = inputs();
    gv_fn *f = GVT_NN(gv_trace(step, NULL, in));
    gv_tree *one = run(f, in, 1), *two = run(f, in, 2);
    /* fused elementwise passes and reductions: the same arithmetic in the
     * same order whatever the thread count (reductions are never split) */
    const char *exact[] = {"ew", "sum_rows", "mean"};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++) {
        gv_tensor *a = GVT_NN(gv_tree_get_tensor(one, exact[i]));
        gv_tensor *b = GVT_NN(gv_tree_get_tensor(two, exact[i]));
        cr_expect(memcmp(gv_tensor_data_const(a), gv_tensor_data_const(b), gv_tensor_nbytes(a)) == 0,
                  "%s differs between 1 and 2 threads", exact[i]);
    }
    /* a split GEMM: each element is still one BLAS dot product, but the BLAS
     * may choose another kernel for a block's shape than for the whole
     * (OpenBLAS's Haswell kernels do, its Skylake-X ones do not: measured) */
    gv_tensor *a = GVT_NN(gv_tree_get_tensor(one, "gemm")), *b = GVT_NN(gv_tree_get_tensor(two, "gemm"));
    const float *pa = gv_tensor_data_const(a), *pb = gv_tensor_data_const(b);
    int64_t differ = 0;
    for (int64_t i = 0; i < gv_tensor_size(a); i++) {
        cr_assert(fabsf(pa[i] - pb[i]) <= 1e-5f * (1.0f + fabsf(pa[i])),
                  "gemm[%lld]: %.9g with 1 thread, %.9g with 2", (long long)i, pa[i], pb[i]);
        differ += memcmp(&pa[i], &pb[i], sizeof *pa) != 0;
    }
    cr_log_info("split GEMM: %lld of %lld elements differ in their bits between 1 and 2 threads",
                (long long)differ, (long long)gv_tensor_size(a));
    /* what follows the GEMM is exact given its bits: the same bits when
     * the GEMM agreed, within rounding of the difference when it did not */
    const char *after[] = {"ew_of_gemm", "sum_rows_of_gemm"};
    for (size_t i = 0; i < sizeof after / sizeof *after; i++) {
        gv_tensor *ta = GVT_NN(gv_tree_get_tensor(one, after[i]));
        gv_tensor *tb = GVT_NN(gv_tree_get_tensor(two, after[i]));
        const float *qa = gv_tensor_data_const(ta), *qb = gv_tensor_data_const(tb);
        if (differ == 0) {
            cr_expect(memcmp(qa, qb, gv_tensor_nbytes(ta)) == 0,
                      "%s differs between 1 and 2 threads though the GEMM agreed bit for bit",
                      after[i]);
            continue;
        }
        for (int64_t j = 0; j < gv_tensor_size(ta); j++)
            cr_assert(fabsf(qa[j] - qb[j]) <= 1e-4f * (1.0f + fabsf(qa[j])),
                      "%s[%lld]: %.9g with 1 thread, %.9g with 2", after[i], (long long)j, qa[j],
                      qb[j]);
    }
    gv_tree_free(one), gv_tree_free(two);
    gv_fn_free(f);
    gv_tree_free(in);
}
