/* libFuzzer target: a graph decoded from the fuzzer's bytes
 * (tests/compile/graph_gen.c), compiled with the options the bytes choose
 * (threads, donation, optimiser on or off) and run, must give what the
 * reference evaluator gives: bit for bit, except the gradients that pass
 * through a matmul's VJP (graph_gen.c), which must agree within 1e-4
 * relative, NaN and infinities exact. That bound is measured: a gradient
 * through 126 5x5 matmuls (corpus_graphs/deep_matmul_grad) lands 3e-5 from
 * the reference with OpenBLAS's Prescott kernels and this machine's default
 * ones, and exactly on it with the SkylakeX and Haswell kernels: the BLAS's
 * summation order, magnified by cancellation along the chain. A mismatch or
 * a grove call that fails on a valid graph aborts.
 * Built and run by scripts/fuzz.sh. */
#include <stdio.h>
#include <stdlib.h>

#include "graph_gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gvt_stream s = {.data = data, .size = size, .small_matmul = true};
    gvt_graph_case c;
    if (gvt_graph_case_make(&s, (size & 1) != 0, &c) != GV_OK) {
        fprintf(stderr, "a generated graph did not trace: %s\n", gv_last_error());
        abort();
    }
    if (size & 1) { /* odd sizes: the gradient of the loss */
        gv_fn *vg = gv_value_and_grad_path(c.fn, "", false);
        if (!vg) {
            fprintf(stderr, "value_and_grad: %s\n", gv_last_error());
            abort();
        }
        gv_fn_free(c.fn);
        c.fn = vg;
    }
    char why[300];
    int r = gvt_graph_case_check(&c, 1e-4, why, sizeof why);
    if (r != 0) {
        fprintf(stderr, "compiled plan differs from the reference (%d ops, %d threads, %d donated, "
                "no_optimize %d): %s\n", c.ops, c.opts.threads, c.opts.ndonate,
                (int)c.opts.no_optimize, why);
        abort();
    }
    gvt_graph_case_free(&c);
    return 0;
}
