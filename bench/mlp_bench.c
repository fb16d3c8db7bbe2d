/* A 3-layer MLP training step (784-256-128-10, relu, softmax cross-entropy,
 * SGD) in grove and in PyTorch, in the same run: grove's step is traced,
 * differentiated and compiled once, with params donated; PyTorch's numbers
 * come from bench/torch_mlp_step.py run as a subprocess. Prints steps/s of
 * each and the ratio, plus grove's plan statistics.
 *
 *   mlp_bench [--seconds S] [--no-torch] [--blas NAME|auto]
 */
#include <stdio.h>
#include <stdlib.h>

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
    return bench_main(argc, argv, "mlp_bench", "MLP 784-256-128-10 train step (value_and_grad + SGD)",
                      GROVE_BENCH_DIR "/torch_mlp_step.py", grove_steps_per_s);
}
