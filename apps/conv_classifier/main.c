/* A convolutional classifier on Fashion-MNIST: the Flax tutorial's CNN with
 * BatchNorm (conv_model.h), Adam, a jitted train step whose state carries
 * batch_stats, test accuracy each epoch with the running averages, and
 * checkpoints (batch_stats included) in DIR keeping the 2 best by accuracy.
 *
 *   conv_classifier DIR [EPOCHS [N [TEST_N]]]   train EPOCHS (3) on the first N
 *                                               training images (all 60,000),
 *                                               test on the first TEST_N (10,000)
 *   conv_classifier DIR --restore [TEST_N]      evaluate the best checkpoint
 *
 * Measured on the first 10,000 training images, 3 epochs (234 steps): train
 * accuracy 0.8825, test accuracy 0.6440. The test accuracy uses BatchNorm's
 * running averages, which with momentum 0.99 (PyTorch's 0.01, as
 * bench/torch_conv_step.py has it) still carry 10% of their initial (0, 1)
 * after 234 steps. One epoch on all 60,000 images (468 steps): train
 * 0.8562, test 0.8689. docs/conv.md has the runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conv_model.h"

#define EVAL_BATCH 500 /* the test set in slices: a whole-split batch of conv activations is GBs */

/* Test accuracy over the dataset in batches of EVAL_BATCH with the running
 * averages (NaN on error). */
static double evaluate(gv_jit *eval, const gv_tree *state, const gv_dataset *test) {
    int64_t n = gv_dataset_size(test), correct = 0, seen = 0;
    gv_loader *ld = gv_loader_new(test, &(gv_loader_options){
        .batch_size = n < EVAL_BATCH ? n : EVAL_BATCH});
    for (gv_batch b; ld && gv_loader_next(ld, &b) == GV_OK && b.x;) {
        gv_tree *in = gv_pack(NULL, "(params, batch_stats, x, y)", gv_train_state_params(state),
                              gv_train_state_batch_stats(state), b.x, b.y), *out;
        gv_tensor *acc = NULL;
        if (in && gv_jit_call(eval, in, &out) == GV_OK) gv_unpack(out, "(_, accuracy)", &acc);
        gv_tree_free(in);
        if (!acc) break;
        int64_t rows = gv_tensor_shape(b.y)[0];
        correct += (int64_t)(gv_tensor_item(acc) * (double)rows + 0.5), seen += rows;
    }
    gv_loader_free(ld);
    return seen == n ? (double)correct / (double)n : 0.0 / 0.0;
}

static int fail(const char *what) {
    return fprintf(stderr, "conv_classifier: %s: %s\n", what, gv_last_error()), 1;
}

int main(int argc, char **argv) {
    conv_args a;
    int rc = conv_cli_parse(argc, argv, &a);
    if (rc) return rc;
    bool restore = a.restore;
    long epochs = a.epochs, n_train = a.n_train, n_test = a.n_test;
    gv_dataset full, train, full_test, test;
    if (gv_fashion_mnist_load(NULL, "train", &full) != GV_OK ||
        gv_fashion_mnist_load(NULL, "t10k", &full_test) != GV_OK ||
        gv_dataset_take(&full, n_train, &train) != GV_OK ||
        gv_dataset_take(&full_test, n_test, &test) != GV_OK)
        return fail("Fashion-MNIST");

    conv_ctx c = {gv_adam(.learning_rate = 1e-3)};
    char *table = NULL;
    gv_tree *state = conv_create_train_state(c.tx, gv_prng_key(0), restore ? NULL : &table);
    if (table) fputs(table, stdout), free(table);
    /* orbax CheckpointManager(dir, options(max_to_keep=2, best_fn=accuracy)) */
    gv_checkpoint_manager *mgr = gv_checkpoint_manager_new(a.dir, &(gv_checkpoint_options){
        .max_to_keep = 2, .best_metric = "accuracy"});
    /* train_step = jax.jit(train_step, donate_argnums=0); eval_step = jax.jit(eval_step) */
    gv_plan_options po = {.donate_argnums = GV_ARGNUMS(0), .threads = 2};
    gv_jit *step = gv_jit_new(conv_train_step, &c, &po);
    gv_jit *eval = gv_jit_new(conv_eval_step, &c, &(gv_plan_options){.threads = 2});
    if (!state || !mgr || !step || !eval) return fail("setup");
    if (restore) { /* a fresh process: the best step, restored into the state's structure */
        int64_t best = gv_checkpoint_manager_best_step(mgr);
        gv_tree *target = gv_eval_shape_train_state_with_batch_stats(
            c.tx, gv_train_state_params(state), gv_train_state_batch_stats(state));
        gv_tree *saved = target ? gv_checkpoint_manager_restore(mgr, best, "state", target) : NULL;
        if (!saved) return fail(a.dir);
        printf("restored step %lld: test accuracy %.4f\n", (long long)best,
               evaluate(eval, saved, &test));
        gv_tree_free(saved), gv_tree_free(target);
    }
    gv_loader *ld = restore ? NULL : gv_loader_new(&train, &(gv_loader_options){
        .batch_size = 128, .shuffle = true, .key = gv_prng_key(1), .drop_last = true});
    for (long epoch = 1; ld && epoch <= epochs; epoch++) {
        double sum_loss = 0, sum_acc = 0, steps = 0;
        for (gv_batch b; gv_loader_next(ld, &b) == GV_OK && b.x; steps++) {
            /* state, metrics = train_step(state, x, y): the state is donated, so it is updated */
            gv_tree *in = gv_pack(NULL, "(state, x, y)", state, b.x, b.y), *out = NULL;
            gv_tensor *loss = NULL, *acc = NULL;
            if (in && gv_jit_call(step, in, &out) == GV_OK)
                gv_unpack(out, "(_, {loss, accuracy})", &loss, &acc);
            gv_tree_free(in);
            if (!acc) return fail("train step");
            sum_loss += gv_tensor_item(loss), sum_acc += gv_tensor_item(acc);
        }
        gv_tensor *test_acc = gv_tensor_scalar(GV_F32, evaluate(eval, state, &test));
        gv_tree *metrics = gv_pack(NULL, "{accuracy}", test_acc);
        printf("epoch %ld: loss %.4f train accuracy %.4f test accuracy %.4f\n", epoch,
               sum_loss / steps, sum_acc / steps, gv_tensor_item(test_acc));
        fflush(stdout);
        /* mngr.save(step, args=Composite(state=state), metrics): batch_stats are in the state */
        if (gv_checkpoint_manager_save(mgr, gv_train_state_step(state), (const char *[]){"state"},
                                       (const gv_tree *[]){state}, 1, metrics) != GV_OK)
            return fail("checkpoint");
        gv_tree_free(metrics), gv_tensor_free(test_acc);
    }
    if (!restore) printf("best step %lld\n", (long long)gv_checkpoint_manager_best_step(mgr));
    gv_loader_free(ld), gv_tree_free(state), gv_transform_free(c.tx), gv_jit_free(step);
    gv_jit_free(eval), gv_dataset_free(&full), gv_dataset_free(&train);
    gv_dataset_free(&full_test), gv_dataset_free(&test);
    return gv_checkpoint_manager_close(mgr) == GV_OK ? 0 : fail("checkpoint");
}
