/* The Fashion-MNIST CNN's training step (apps/conv_classifier: two convs
 * with BatchNorm in training mode, batch_stats mutable and written back
 * into the state, two dense layers, softmax cross-entropy, SGD lr 0.01,
 * state donated) in grove and in PyTorch (bench/torch_conv_step.py, the
 * same model in NCHW, loss and optimiser), in the same run, at batch 16 and
 * 128 on 1 and 2 threads. Prints steps/s of each and the ratio.
 *
 *   conv_vs_torch [--seconds S] [--no-torch] [--blas NAME|auto]
 */
#include <stdio.h>
#include <stdlib.h>

#include "benchutil.h"
#include "conv_model.h"

typedef struct conv_run {
    gv_jit *step;
    gv_tree *in;
} conv_run;

static void conv_step(void *ctx) {
    conv_run *r = ctx;
    if (gv_jit_call(r->step, r->in, NULL) != GV_OK) {
        fprintf(stderr, "conv_vs_torch: %s\n", gv_last_error());
        exit(1);
    }
}

static double grove_steps_per_s(int64_t batch, int threads, double seconds, gv_plan_stats *st) {
    conv_ctx c = {gv_sgd(.learning_rate = 0.01)}; /* torch_conv_step.py's p -= lr * g */
    gv_tree *state = conv_create_train_state(c.tx, gv_prng_key(0), NULL);
    /* synthetic [0, 1) images and random labels, as the PyTorch side uses */
    gv_tensor *x = gv_random_uniform_eager(GV_PRNG_DEFAULT, gv_prng_key(1), GV_DIMS(batch, 784), 0, 1);
    gv_tensor *y = gv_random_randint_eager(GV_PRNG_DEFAULT, gv_prng_key(2), GV_DIMS(batch), 0, 10);
    gv_jit *step = gv_jit_new(conv_train_step, &c, &(gv_plan_options){
        .donate_argnums = GV_ARGNUMS(0), .threads = threads});
    gv_tree *in = state && x && y ? gv_pack(NULL, "(state, x, y)", state, x, y) : NULL;
    const gv_plan *plan = in && step ? gv_jit_plan(step, in) : NULL;
    if (!plan) {
        fprintf(stderr, "conv_vs_torch: %s\n", gv_last_error());
        exit(1);
    }
    *st = gv_plan_get_stats(plan);
    conv_run r = {step, in};
    double rate = bench_steps_per_s(conv_step, &r, seconds);
    gv_tree_free(in), gv_jit_free(step), gv_tensor_free(x), gv_tensor_free(y);
    gv_tree_free(state), gv_transform_free(c.tx);
    return rate;
}

int main(int argc, char **argv) {
    return bench_main(argc, argv, "conv_vs_torch",
                      "Fashion-MNIST CNN train step (conv+BatchNorm x2, dense x2, value_and_grad, sgd)",
                      GROVE_BENCH_DIR "/torch_conv_step.py", grove_steps_per_s);
}
