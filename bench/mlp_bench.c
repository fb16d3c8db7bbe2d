/* A 3-layer MLP training step (784-256-128-10, relu, softmax cross-entropy,
 * SGD) in grove and in PyTorch, in the same run: grove's step is traced,
 * differentiated and compiled once, with params donated; PyTorch's numbers
 * come from bench/torch_mlp_step.py run as a subprocess. Prints steps/s of
 * each and the ratio, plus grove's plan statistics.
 *
 *   mlp_bench [--seconds S] [--no-torch]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/compile/mlp_step.h"
#include "grove/grove.h"
#include "benchutil.h"

typedef struct mlp_run {
    gv_plan *plan;
    gv_tree *in, *out;
} mlp_run;

static void mlp_step(void *ctx) {
    mlp_run *r = ctx;
    gv_plan_run(r->plan, r->in, r->out);
}

static double grove_steps_per_s(int64_t batch, int threads, double seconds, gv_plan_stats *st) {
    mlp_dims d = {batch, 784, 256, 128, 10, 0.01};
    gv_tree *in = mlp_example_inputs(&d, 1);
    gv_fn *step = mlp_train_step(in, d.lr);
    const char *donate[] = {"0"};
    gv_plan_options o = {.threads = threads, .donate = donate, .ndonate = 1};
    gv_plan *plan = step ? gv_plan_compile(step, &o) : NULL;
    gv_tree *out = plan ? gv_plan_new_outputs(plan) : NULL;
    if (!out) {
        fprintf(stderr, "mlp_bench: %s\n", gv_last_error());
        exit(1);
    }
    *st = gv_plan_get_stats(plan);
    mlp_run r = {plan, in, out};
    double rate = bench_steps_per_s(mlp_step, &r, seconds);
    gv_tree_free(out), gv_plan_free(plan), gv_fn_free(step), gv_tree_free(in);
    return rate;
}

int main(int argc, char **argv) {
    double seconds = 3.0;
    bool torch = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = false;
        else {
            fprintf(stderr, "usage: mlp_bench [--seconds S] [--no-torch]\n");
            return 2;
        }
    }
    torch_row rows[32];
    int nrows = torch ? torch_run(GROVE_BENCH_DIR "/torch_mlp_step.py", NULL, rows, 32) : 0;
    if (torch && nrows == 0)
        fprintf(stderr, "mlp_bench: no PyTorch numbers (is python3-torch installed?)\n");
    printf("MLP 784-256-128-10 train step (value_and_grad + SGD), steps/s\n");
    printf("%6s %8s %12s %12s %8s  %s\n", "batch", "threads", "grove", "pytorch", "ratio",
           "pytorch BLAS");
    gv_plan_stats st = {0};
    int64_t batches[2] = {16, 128};
    for (int b = 0; b < 2; b++)
        for (int t = 1; t <= 2; t++) {
            double g = grove_steps_per_s(batches[b], t, seconds, &st);
            const torch_row *best = torch_best(rows, nrows, (int)batches[b], t);
            if (best)
                printf("%6lld %8d %12.0f %12.0f %7.2fx  %s\n", (long long)batches[b], t, g,
                       best->rate, g / best->rate, best->blas);
            else
                printf("%6lld %8d %12.0f %12s %8s\n", (long long)batches[b], t, g, "-", "-");
        }
    printf("plan (batch 128): %d traced nodes -> %d, %d kernels (%d fused, %d GEMM), arena %zu B "
           "(all intermediates %zu B), %d params updated in place\n",
           st.nodes_traced, st.nodes_optimized, st.kernels, st.fused_kernels, st.gemms,
           st.arena_bytes, st.intermediate_bytes, st.donated_outputs);
    return 0;
}
