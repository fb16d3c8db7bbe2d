/* The Flax/Optax tutorial's MLP classifier on Fashion-MNIST: Adam, jitted train and eval
 * steps, test accuracy each epoch, checkpoints in DIR keeping the 2 best by accuracy.
 *   classifier DIR [EPOCHS [N]]   train (on N examples)   classifier DIR --restore
 * Data-parallel: `mpirun -np P classifier DIR ... [--distributed]` trains the
 * same steps on P processes, each on 128/P rows of every batch (distributed.h);
 * process 0 evaluates, prints and writes the checkpoints. */
#include <grove/grove.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct mlp_cfg { gv_dense_cfg hidden, out; } mlp_cfg;

/* MLP.__call__(x) = Dense(10)(relu(Dense(128)(x))) */
static gv_tree *mlp_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const mlp_cfg *cfg = cfgp;
    gv_module hidden = {&gv_Dense, &cfg->hidden}, out = {&gv_Dense, &cfg->out};
    gv_value h = gv_relu(gv_scope_call1(s, "Dense_0", &hidden, gv_args_get(args, 0)));
    return gv_pack(gv_scope_graph(s), "logits", gv_scope_call1(s, "Dense_1", &out, h));
}
static const gv_module_type MLP = {"MLP", mlp_call, NULL, 0};

typedef struct ctx { gv_module model; gv_transform *tx; } ctx;

/* loss_fn(params, x, y) -> (loss, accuracy) */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const ctx *c = ud;
    const gv_tree *params;
    gv_value x, y, logits;
    gv_unpack(in, "(params, x, y)", &params, &x, &y);
    gv_tree *vars = gv_pack(g, "{params}", params);
    gv_unpack(gv_apply(g, &c->model, vars, gv_tuple(g, x), NULL, NULL), "logits", &logits);
    gv_value xent = gv_softmax_cross_entropy_with_integer_labels(logits, y, -1);
    return gv_pack(g, "(loss, accuracy)", gv_mean(xent, NULL, 0, false), gv_accuracy(logits, y));
}

/* train_step(state, x, y) -> (state', {loss, accuracy}); on P processes the
 * grads are averaged by apply_gradients, the metrics here (pmean: x itself
 * for one process) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *state, *grads;
    gv_value x, y, loss, acc;
    gv_unpack(in, "(state, x, y)", &state, &x, &y);
    gv_tree *args = gv_pack(g, "(params, x, y)", gv_train_state_params(state), x, y);
    gv_unpack(gv_value_and_grad_call(g, loss_fn, ud, args, 0, true), "((loss, acc), grads)",
              &loss, &acc, &grads);
    gv_tree *next = gv_train_state_apply_gradients(g, ((const ctx *)ud)->tx, state, grads);
    return gv_pack(g, "(state, {loss, accuracy})", next, gv_pmean(loss), gv_pmean(acc));
}

/* Test accuracy on the whole split in one batch (NaN on error); the eval
 * step is loss_fn itself, jitted. */
static double evaluate(gv_jit *eval, const gv_tree *state, const gv_dataset *test) {
    gv_loader *ld = gv_loader_new(test, &(gv_loader_options){.batch_size = gv_dataset_size(test)});
    gv_batch b = {0};
    gv_tree *in = NULL, *out;
    if (ld && gv_loader_next(ld, &b) == GV_OK && b.x)
        in = gv_pack(NULL, "(params, x, y)", gv_train_state_params(state), b.x, b.y);
    gv_tensor *acc = NULL;
    if (in && gv_jit_call(eval, in, &out) == GV_OK) gv_unpack(out, "(_, accuracy)", &acc);
    double a = acc ? gv_tensor_item(acc) : 0.0 / 0.0;
    gv_tree_free(in), gv_loader_free(ld);
    return a;
}

/* An error ends the whole job: the other processes would wait for this
 * one at their next step. */
static int fail(const char *what) {
    if (gv_process_count() > 1)
        fprintf(stderr, "classifier: rank %d: %s: %s\n", gv_process_index(), what, gv_last_error());
    else
        fprintf(stderr, "classifier: %s: %s\n", what, gv_last_error());
    if (gv_process_count() > 1) gv_distributed_abort(1);
    return 1;
}

int main(int argc, char **argv) {
    /* --distributed (anywhere): insist on an MPI launch; one is detected without it */
    bool want_dist = classifier_cli_take_distributed(&argc, argv);
    if (want_dist && !gv_distributed_launched())
        return fprintf(stderr, "classifier: --distributed: not started by an MPI launcher "
                       "(run it as: mpirun -np N classifier DIR ...)\n"), 2;
    if (gv_distributed_init(&argc, &argv) != GV_OK) return fail("--distributed");
    int rank = gv_process_index();
    classifier_args a;
    int rc = classifier_cli_parse(argc, argv, &a);
    if (rc) return rc;
    bool restore = a.restore;
    long epochs = a.epochs, n_train = a.n_train;
    if (restore && gv_process_count() > 1)
        return fprintf(stderr, "classifier: --restore evaluates on one process; run it "
                       "without mpirun\n"), 2;
    gv_dataset full, train, test;
    if (gv_fashion_mnist_load(NULL, "train", &full) != GV_OK ||
        gv_fashion_mnist_load(NULL, "t10k", &test) != GV_OK ||
        gv_dataset_take(&full, n_train ? n_train : gv_dataset_size(&full), &train) != GV_OK)
        return fail("Fashion-MNIST");
    mlp_cfg cfg = {gv_dense_defaults(128), gv_dense_defaults(10)};
    ctx c = {{&MLP, &cfg}, gv_adam(.learning_rate = 1e-3)};
    gv_tensor *x0 = gv_tensor_zeros(GV_F32, GV_DIMS(1, 784));
    gv_tree *example = gv_pack(NULL, "(x)", x0);
    gv_tree *vars = example ? gv_init(&c.model, gv_prng_key(0), example, NULL) : NULL;
    gv_tree *state = vars ? gv_train_state_create(c.tx, gv_tree_get(vars, "params")) : NULL;
    gv_tree_free(example), gv_tensor_free(x0), gv_tree_free(vars);
    /* orbax CheckpointManager(dir, options(max_to_keep=2, best_fn=accuracy)), on
     * process 0: the others hold the same state */
    gv_checkpoint_manager *mgr = rank ? NULL : gv_checkpoint_manager_new(a.dir,
        &(gv_checkpoint_options){.max_to_keep = 2, .best_metric = "accuracy"});
    gv_jit *step = gv_jit_new(train_step, &c, &(gv_plan_options){.donate_argnums = GV_ARGNUMS(0)});
    gv_jit *eval = gv_jit_new(loss_fn, &c, NULL);
    if (!state || (!rank && !mgr) || !step || !eval) return fail("setup");
    if (restore) { /* a fresh process: the best step, restored into the state's structure */
        int64_t best = gv_checkpoint_manager_best_step(mgr);
        gv_tree *saved = gv_checkpoint_manager_restore(mgr, best, "state", state);
        if (!saved) return fail(a.dir);
        printf("restored step %lld: test accuracy %.4f\n", (long long)best,
               evaluate(eval, saved, &test));
        gv_tree_free(saved);
    }
    gv_loader *ld = restore ? NULL : gv_loader_new(&train, &(gv_loader_options){
        .batch_size = 128, .shuffle = true, .key = gv_prng_key(1), .drop_last = true,
        .shard = gv_shard_by_process()});
    if (!restore && !ld) return fail("loader");
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
        if (rank) continue; /* process 0 evaluates and saves */
        gv_tensor *test_acc = gv_tensor_scalar(GV_F32, evaluate(eval, state, &test));
        gv_tree *metrics = gv_pack(NULL, "{accuracy}", test_acc);
        printf("epoch %ld: loss %.4f train accuracy %.4f test accuracy %.4f\n", epoch,
               sum_loss / steps, sum_acc / steps, gv_tensor_item(test_acc));
        if (gv_checkpoint_manager_save(mgr, gv_train_state_step(state), (const char *[]){"state"},
                                       (const gv_tree *[]){state}, 1, metrics) != GV_OK)
            return fail("checkpoint");
        gv_tree_free(metrics), gv_tensor_free(test_acc);
    }
    if (!restore && !rank)
        printf("best step %lld\n", (long long)gv_checkpoint_manager_best_step(mgr));
    gv_loader_free(ld), gv_tree_free(state), gv_transform_free(c.tx), gv_jit_free(step);
    gv_jit_free(eval), gv_dataset_free(&full), gv_dataset_free(&train), gv_dataset_free(&test);
    if (mgr && gv_checkpoint_manager_close(mgr) != GV_OK) return fail("checkpoint");
    gv_distributed_shutdown();
    return 0;
}
