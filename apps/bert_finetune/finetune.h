/* The fine-tuning step of apps/bert_finetune, shared with
 * bench/bert_freeze_bench: BertForSequenceClassification trained with
 * softmax cross-entropy, either the classifier head alone (the backbone
 * frozen through optax.multi_transform) or every param. */
#ifndef GROVE_APPS_BERT_FINETUNE_H
#define GROVE_APPS_BERT_FINETUNE_H

#include <grove/grove.h>

typedef struct bert_ft {
    gv_bert_config cfg;
    gv_module model;     /* BertForSequenceClassification of cfg */
    gv_transform *tx;    /* frozen: multi_transform({'train': adam(lr), 'freeze': set_to_zero()},
                            {'bert': 'freeze', 'classifier': 'train'}); else adam(lr) */
    gv_jit *step;        /* train_step(state, batch, key) -> (state', {loss, accuracy}), the
                            state donated */
    gv_jit *eval;        /* eval_step(params, batch) -> {loss, accuracy, correct} */
} bert_ft;

/* cfg is copied; lr: Adam's learning rate; threads: the plans' OpenMP
 * threads (gv_plan_options.threads, 0 = 1). */
gv_status bert_ft_init(bert_ft *f, const gv_bert_config *cfg, bool freeze, double lr,
                       int threads);
void bert_ft_free(bert_ft *f);

/* loss_fn(params, batch, key) -> (loss, accuracy) with dropout on, the
 * function the train step differentiates (a gv_trace_fn; userdata: the
 * bert_ft). */
gv_tree *bert_ft_loss_fn(gv_graph *g, const gv_tree *in, void *ud);

/* The batch tree both steps take: {input_ids, attention_mask, token_type_ids,
 * labels}, the tensors retained (labels int32 [n]). */
gv_tree *bert_ft_batch(const gv_bert_batch *b, gv_tensor *labels);

/* One step; state (gv_train_state_create) is donated and holds the next
 * state after it. Dropout draws from key. *loss and *accuracy (may be NULL)
 * get the batch's. */
gv_status bert_ft_step(bert_ft *f, gv_tree *state, const gv_tree *batch, gv_key key,
                       float *loss, float *accuracy);
/* Loss and number of correct predictions of params on a batch (deterministic). */
gv_status bert_ft_evaluate(bert_ft *f, const gv_tree *params, const gv_tree *batch, float *loss,
                           int64_t *correct);

#endif
