/* Compiled plans against the reference evaluation on random graphs
 * (graph_gen.c): chains of elementwise ops with broadcasting, reductions
 * fused as epilogues, reshapes, transposes, matmuls, constants with special
 * values, outputs at donated inputs' paths, on one-block and threaded sizes
 * with 1 and 2 threads, optimised and not; and their gradients. Equal bit
 * for bit (any NaN matches any NaN): the matmuls' operands are drawn so that
 * the BLAS's summation order cannot show. The one exception is a gradient
 * that passes through a matmul's VJP, where the BLAS multiplies cotangents
 * in its own order (which differs between OpenBLAS's kernel sets): within
 * 1e-5 relative there, NaN and infinities exact. */
#include <string.h>

#include "graph_gen.h"
#include "testutil.h"

static void run_seeds(const char *what, uint64_t first, uint64_t last, bool grad) {
    int failed = 0, large = 0, threaded = 0, donated = 0, unopt = 0;
    char first_bad[400] = "";
    for (uint64_t seed = first; seed <= last; seed++) {
        gvt_stream s = {.seed = seed * 0x9E3779B97F4A7C15ull | 1};
        gvt_graph_case c;
        gv_status st = gvt_graph_case_make(&s, grad, &c);
        cr_assert_eq(st, GV_OK, "%s seed %llu: %s", what, (unsigned long long)seed, gv_last_error());
        if (grad) {
            gv_fn *vg = gv_value_and_grad_path(c.fn, "", false);
            cr_assert_not_null(vg, "seed %llu: %s", (unsigned long long)seed, gv_last_error());
            gv_fn_free(c.fn);
            c.fn = vg;
        }
        large += gv_tensor_size(gv_tree_get_tensor(c.inputs, "a")) > 10000;
        threaded += c.opts.threads > 1;
        donated += c.opts.ndonate > 0;
        unopt += c.opts.no_optimize;
        char why[256];
        int r = gvt_graph_case_check(&c, 1e-5, why, sizeof why);
        cr_assert_geq(r, 0, "%s seed %llu: %s", what, (unsigned long long)seed, why);
        if (r && !failed++)
            snprintf(first_bad, sizeof first_bad, "seed %llu (%d ops, %d threads, %d donated, "
                     "no_optimize %d): %s", (unsigned long long)seed, c.ops, c.opts.threads,
                     c.opts.ndonate, (int)c.opts.no_optimize, why);
        gvt_graph_case_free(&c);
    }
    int n = (int)(last - first + 1);
    fprintf(stderr, "%s: %d graphs (%d large, %d on 2 threads, %d with donation, %d unoptimised)\n",
            what, n, large, threaded, donated, unopt);
    cr_assert_eq(failed, 0, "%d of %d %s differ; first: %s", failed, n, what, first_bad);
}

Test(random_graphs, plan_equals_reference, .timeout = 600) { run_seeds("graphs", 1, 300, false); }

Test(random_graphs, gradient_plan_equals_reference, .timeout = 600) {
    run_seeds("gradient graphs", 1, 80, true);
}
