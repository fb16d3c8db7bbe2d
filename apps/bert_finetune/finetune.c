/* The fine-tuning step (finetune.h), as the Flax tutorial writes it:
 *
 *   def loss_fn(params, batch, key):
 *       logits = model.apply({'params': params}, batch['input_ids'], batch['attention_mask'],
 *                            batch['token_type_ids'], train=True, rngs={'dropout': key})
 *       return optax.softmax_cross_entropy_with_integer_labels(logits, batch['labels']).mean()
 *   grads = jax.grad(loss_fn)(state.params, batch, key); state = state.apply_gradients(grads=grads)
 *
 * With the backbone frozen its updates are constant zeros: apply_updates
 * passes those params through, their gradients are never used, and the
 * compiled step computes none of them. */
#include "finetune.h"

#include <stdlib.h>

/* logits of params on batch; train: dropout from key */
static gv_value logits_of(gv_graph *g, const bert_ft *f, const gv_tree *params,
                          const gv_tree *batch, const gv_value *key) {
    bool train = key != NULL;
    gv_value ids, mask, types, labels;
    gv_unpack(batch, "{input_ids, attention_mask, token_type_ids, labels}", &ids, &mask, &types,
              &labels);
    gv_tree *vars = gv_pack(g, "{params}", params);
    gv_tree *rngs = train ? gv_pack(g, "{dropout}", *key) : NULL;
    gv_tree *out = gv_apply(g, &f->model, vars, gv_tuple(g, ids, mask, types), rngs,
                            &(gv_module_options){.train = train});
    return out ? gv_tree_leaf_value(out) : (gv_value){g, -1}; /* the error is g's */
}

/* loss_fn(params, batch, key) -> (loss, accuracy) */
gv_tree *bert_ft_loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *params, *batch;
    gv_value key, labels;
    gv_unpack(in, "(params, batch, key)", &params, &batch, &key);
    gv_unpack(batch, "{labels}", &labels);
    gv_value logits = logits_of(g, ud, params, batch, &key);
    gv_value xent = gv_softmax_cross_entropy_with_integer_labels(logits, labels, -1);
    return gv_pack(g, "(loss, accuracy)", gv_mean(xent, NULL, 0, false),
                   gv_accuracy(logits, labels));
}

/* train_step(state, batch, key) -> (state', {loss, accuracy}) */
static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    const bert_ft *f = ud;
    const gv_tree *state, *batch, *grads;
    gv_value key, loss, acc;
    gv_unpack(in, "(state, batch, key)", &state, &batch, &key);
    gv_tree *args = gv_pack(g, "(params, batch, key)", gv_train_state_params(state), batch, key);
    gv_unpack(gv_value_and_grad_call(g, bert_ft_loss_fn, ud, args, 0, true), "((loss, acc), grads)",
              &loss, &acc, &grads);
    gv_tree *next = gv_train_state_apply_gradients(g, f->tx, state, grads);
    return gv_pack(g, "(state, {loss, accuracy})", next, loss, acc);
}

/* eval_step(params, batch) -> {loss, correct} */
static gv_tree *eval_step(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_tree *params, *batch;
    gv_value labels;
    gv_unpack(in, "(params, batch)", &params, &batch);
    gv_unpack(batch, "{labels}", &labels);
    gv_value logits = logits_of(g, ud, params, batch, NULL);
    gv_value xent = gv_softmax_cross_entropy_with_integer_labels(logits, labels, -1);
    gv_value hit = gv_cast(gv_eq(gv_argmax(logits, -1, false), gv_cast(labels, GV_I32)), GV_I32);
    return gv_pack(g, "{loss, correct}", gv_mean(xent, NULL, 0, false),
                   gv_sum(hit, NULL, 0, false));
}

gv_status bert_ft_init(bert_ft *f, const gv_bert_config *cfg, bool freeze, double lr,
                       int threads) {
    *f = (bert_ft){.cfg = *cfg};
    f->model = (gv_module){&gv_BertForSequenceClassification, &f->cfg};
    if (freeze) {
        gv_tree *labels = gv_labels("{'bert': 'freeze', 'classifier': 'train'}");
        f->tx = labels ? gv_multi_transform(GV_TRANSFORMS({"train", gv_adam(.learning_rate = lr)},
                                                          {"freeze", gv_set_to_zero()}),
                                            labels)
                       : NULL;
    } else {
        f->tx = gv_adam(.learning_rate = lr);
    }
    f->step = f->tx ? gv_jit_new(train_step, f, &(gv_plan_options){
                          .donate_argnums = GV_ARGNUMS(0), .threads = threads})
                    : NULL;
    f->eval = f->step ? gv_jit_new(eval_step, f, &(gv_plan_options){.threads = threads}) : NULL;
    if (!f->eval) {
        gv_status st = gv_last_status() ? gv_last_status() : GV_ERR_NOMEM;
        bert_ft_free(f);
        return st;
    }
    return GV_OK;
}

void bert_ft_free(bert_ft *f) {
    gv_jit_free(f->step), gv_jit_free(f->eval), gv_transform_free(f->tx);
    f->step = f->eval = NULL, f->tx = NULL;
}

gv_tree *bert_ft_batch(const gv_bert_batch *b, gv_tensor *labels) {
    return gv_pack(NULL, "{input_ids, attention_mask, token_type_ids, labels}", b->input_ids,
                   b->attention_mask, b->token_type_ids, labels);
}

gv_status bert_ft_step(bert_ft *f, gv_tree *state, const gv_tree *batch, gv_key key,
                       float *loss, float *accuracy) {
    gv_tensor *k = gv_tensor_from_data(GV_U32, GV_DIMS(2), key.k, sizeof key.k);
    gv_tree *in = k ? gv_pack(NULL, "(state, batch, key)", state, batch, k) : NULL;
    gv_tensor_free(k);
    gv_tree *out = NULL; /* the jit's; the donated state holds the new state */
    gv_status st = in ? gv_jit_call(f->step, in, &out) : gv_last_status();
    gv_tree_free(in);
    if (st) return st;
    gv_tensor *l, *a;
    gv_unpack(out, "(_, {loss, accuracy})", &l, &a);
    if (loss) *loss = (float)gv_tensor_item(l);
    if (accuracy) *accuracy = (float)gv_tensor_item(a);
    return GV_OK;
}

gv_status bert_ft_evaluate(bert_ft *f, const gv_tree *params, const gv_tree *batch, float *loss,
                           int64_t *correct) {
    gv_tree *in = gv_pack(NULL, "(params, batch)", params, batch), *out = NULL;
    gv_status st = in ? gv_jit_call(f->eval, in, &out) : gv_last_status();
    gv_tree_free(in);
    if (st) return st;
    gv_tensor *l, *c;
    gv_unpack(out, "{loss, correct}", &l, &c);
    if (loss) *loss = (float)gv_tensor_item(l);
    if (correct) *correct = (int64_t)gv_tensor_item(c);
    return GV_OK;
}
