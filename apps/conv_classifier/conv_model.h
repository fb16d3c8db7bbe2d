/* The Fashion-MNIST CNN of apps/conv_classifier (the Flax tutorial's CNN
 * with BatchNorm, bench/torch_conv_step.py's model in NHWC) and its jitted
 * steps, shared by the program and bench/conv_vs_torch.
 *
 *   Conv(32, 3x3) -> BatchNorm -> relu -> avg_pool 2x2
 *   Conv(64, 3x3) -> BatchNorm -> relu -> avg_pool 2x2
 *   flatten -> Dense(256) -> relu -> Dense(10)
 *
 * The train state is {step, params, opt_state, batch_stats}. */
#ifndef CONV_MODEL_H
#define CONV_MODEL_H

#include <grove/grove.h>

/* The model: takes [B, 784] (the loader's rows) or [B, 28, 28, 1] and
 * returns the logits [B, 10]. In a training apply (gv_module_options.train)
 * BatchNorm normalises with the batch statistics and updates batch_stats,
 * otherwise it uses the running averages (use_running_average = not train). */
extern const gv_module conv_model;

/* The steps' userdata: the optimiser (borrowed). */
typedef struct conv_ctx { gv_transform *tx; } conv_ctx;

/* train_step(state, x, y) -> (state', {loss, accuracy}): value_and_grad of
 * the cross-entropy with batch_stats mutable, apply_gradients, and the new
 * batch_stats written back into the state. Jit it with the state donated. */
gv_tree *conv_train_step(gv_graph *g, const gv_tree *in, void *ud);
/* eval_step(params, batch_stats, x, y) -> (loss, accuracy), running averages. */
gv_tree *conv_eval_step(gv_graph *g, const gv_tree *in, void *ud);

/* model.init on a [1, 784] example, then the train state with batch_stats.
 * If table is not NULL, *table gets gv_tabulate's table (caller frees).
 * A new tree the caller frees, NULL with the error set. */
gv_tree *conv_create_train_state(gv_transform *tx, gv_key key, char **table);

#endif
