/* See conv_model.h. */
#include "conv_model.h"

static const char *const MUTABLE[] = {"batch_stats"};
static const int64_t K3[] = {3, 3}, W2[] = {2, 2};

/* CNN.__call__(x, train):
 *   x = x.reshape((-1, 28, 28, 1))
 *   for f in (32, 64):
 *     x = nn.avg_pool(nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Conv(f, (3, 3))(x))),
 *                     (2, 2), strides=(2, 2))
 *   x = x.reshape((x.shape[0], -1))
 *   return nn.Dense(10)(nn.relu(nn.Dense(256)(x))) */
static gv_tree *cnn_call(gv_scope *s, const void *cfg, const gv_tree *args) {
    (void)cfg;
    gv_value x = gv_reshape(gv_args_get(args, 0), 4, (int64_t[]){-1, 28, 28, 1});
    gv_batchnorm_cfg bn = gv_batchnorm_defaults(); /* momentum 0.99 = torch's 0.01, eps 1e-5 */
    bn.use_running_average = !gv_scope_train(s);
    const int64_t features[] = {32, 64};
    for (int i = 0; i < 2; i++) {
        gv_conv_cfg conv = gv_conv_defaults(features[i], 2, K3); /* padding SAME */
        x = gv_scope_call1(s, NULL, &(gv_module){&gv_Conv, &conv}, x);          /* Conv_i */
        x = gv_relu(gv_scope_call1(s, NULL, &(gv_module){&gv_BatchNorm, &bn}, x)); /* BatchNorm_i */
        x = gv_avg_pool(x, 2, W2, W2, NULL, NULL, true);
    }
    x = gv_reshape(x, 2, (int64_t[]){-1, 7 * 7 * 64});
    gv_dense_cfg hidden = gv_dense_defaults(256), out = gv_dense_defaults(10);
    x = gv_relu(gv_scope_call1(s, NULL, &(gv_module){&gv_Dense, &hidden}, x)); /* Dense_0 */
    x = gv_scope_call1(s, NULL, &(gv_module){&gv_Dense, &out}, x);             /* Dense_1 */
    return gv_pack(gv_scope_graph(s), "logits", x);
}
static const gv_module_type CNN = {"CNN", cnn_call, NULL, 0};
const gv_module conv_model = {&CNN, NULL};

/* loss_fn(params, batch_stats, x, y) -> (loss, (accuracy, batch_stats')): a training
 * apply, model.apply(..., mutable=['batch_stats']) */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    (void)ud;
    const gv_tree *params, *stats, *mutated;
    gv_value x, y, logits;
    gv_unpack(in, "(params, batch_stats, x, y)", &params, &stats, &x, &y);
    gv_module_options o = {.train = true, .mutable_collections = MUTABLE, .nmutable = 1};
    gv_tree *out = gv_apply(g, &conv_model, gv_pack(g, "{params, batch_stats}", params, stats),
                            gv_tuple(g, x), NULL, &o);
    if (gv_unpack(out, "(logits, mutated)", &logits, &mutated) != GV_OK) return NULL;
    gv_value xent = gv_softmax_cross_entropy_with_integer_labels(logits, y, -1);
    return gv_pack(g, "(loss, (accuracy, stats))", gv_mean(xent, NULL, 0, false),
                   gv_accuracy(logits, y), gv_tree_get(mutated, "batch_stats"));
}

gv_tree *conv_train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const conv_ctx *c = ud;
    const gv_tree *state, *stats, *grads;
    gv_value x, y, loss, acc;
    gv_unpack(in, "(state, x, y)", &state, &x, &y);
    gv_tree *args = gv_pack(g, "(params, batch_stats, x, y)", gv_train_state_params(state),
                            gv_train_state_batch_stats(state), x, y);
    if (gv_unpack(gv_value_and_grad_call(g, loss_fn, ud, args, 0, true),
                  "((loss, (acc, stats)), grads)", &loss, &acc, &stats, &grads) != GV_OK)
        return NULL;
    /* state.apply_gradients(grads=grads).replace(batch_stats=updates['batch_stats']) */
    gv_tree *next = gv_train_state_replace(
        g, gv_train_state_apply_gradients(g, c->tx, state, grads), "batch_stats", stats);
    return gv_pack(g, "(state, {loss, accuracy})", next, loss, acc);
}

gv_tree *conv_eval_step(gv_graph *g, const gv_tree *in, void *ud) {
    (void)ud;
    const gv_tree *params, *stats;
    gv_value x, y, logits;
    gv_unpack(in, "(params, batch_stats, x, y)", &params, &stats, &x, &y);
    gv_tree *out = gv_apply(g, &conv_model, gv_pack(g, "{params, batch_stats}", params, stats),
                            gv_tuple(g, x), NULL, NULL);
    if (gv_unpack(out, "logits", &logits) != GV_OK) return NULL;
    gv_value xent = gv_softmax_cross_entropy_with_integer_labels(logits, y, -1);
    return gv_pack(g, "(loss, accuracy)", gv_mean(xent, NULL, 0, false), gv_accuracy(logits, y));
}

gv_tree *conv_create_train_state(gv_transform *tx, gv_key key, char **table) {
    gv_tensor *x0 = gv_tensor_zeros(GV_F32, GV_DIMS(1, 784));
    gv_tree *example = x0 ? gv_pack(NULL, "(x)", x0) : NULL;
    gv_tree *vars = example ? gv_init(&conv_model, key, example, NULL) : NULL;
    gv_tree *state = vars ? gv_train_state_create_with_batch_stats(
                                tx, gv_tree_get(vars, "params"), gv_tree_get(vars, "batch_stats"))
                          : NULL;
    if (state && table) *table = gv_tabulate(&conv_model, key, example, NULL);
    gv_tree_free(vars), gv_tree_free(example), gv_tensor_free(x0);
    return state;
}
