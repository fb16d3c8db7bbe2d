/* BERT as Hugging Face transformers' Flax BERT (modeling_flax_bert.py)
 * defines it: the same submodule names (so the same params paths, the same
 * make_rng('params') keys at init and the same make_rng('dropout') keys in
 * training), the same initialisers and the same order of float32 operations:
 *
 *   embeddings: word + token_type + position, LayerNorm, dropout
 *   layer:      self attention (query/key/value Dense, heads split, Flax's
 *               dot_product_attention_weights with the mask > 0 attended),
 *               output dense, dropout, LayerNorm(h + x);
 *               intermediate dense + act; output dense, dropout,
 *               LayerNorm(h + attention_output)
 *   pooler:     tanh(Dense(hidden[:, 0]))
 *   classifier: dropout, Dense(num_labels) (Flax's default lecun_normal)
 *
 * Every Dense but the classifier's, and every embedding table, is drawn
 * from normal(initializer_range); biases are zeros; LayerNorm is Flax's. */
#include <math.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "grove/bert.h"

static gv_tree *one(gv_value v) { return gv_value_ok(v) ? gv_tree_new_value_leaf(v) : NULL; }

gv_bert_config gv_bert_config_defaults(void) {
    return (gv_bert_config){
        .vocab_size = 30522,
        .hidden_size = 768,
        .num_hidden_layers = 12,
        .num_attention_heads = 12,
        .intermediate_size = 3072,
        .hidden_act = GV_BERT_GELU,
        .hidden_dropout_prob = 0.1,
        .attention_probs_dropout_prob = 0.1,
        .max_position_embeddings = 512,
        .type_vocab_size = 2,
        .initializer_range = 0.02,
        .layer_norm_eps = 1e-12,
        .pad_token_id = 0,
        .num_labels = 2,
        .classifier_dropout = -1.0,
        .no_pooling_layer = false,
    };
}

gv_status gv_bert_config_check(const gv_bert_config *c) {
    if (!c) return gv_set_error(GV_ERR_ARG, "BERT config is NULL");
    const struct {
        const char *name;
        int64_t v;
    } sizes[] = {{"vocab_size", c->vocab_size},
                 {"hidden_size", c->hidden_size},
                 {"num_hidden_layers", c->num_hidden_layers},
                 {"num_attention_heads", c->num_attention_heads},
                 {"intermediate_size", c->intermediate_size},
                 {"max_position_embeddings", c->max_position_embeddings},
                 {"type_vocab_size", c->type_vocab_size},
                 {"num_labels", c->num_labels}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (sizes[i].v < 1 || sizes[i].v > ((int64_t)1 << 31))
            return gv_set_error(GV_ERR_ARG, "BERT config: %s is %lld (expected 1 to 2^31)",
                                sizes[i].name, (long long)sizes[i].v);
    if (c->hidden_size % c->num_attention_heads)
        return gv_set_error(GV_ERR_ARG, "BERT config: hidden_size %lld is not a multiple of "
                            "num_attention_heads %lld", (long long)c->hidden_size,
                            (long long)c->num_attention_heads);
    const struct {
        const char *name;
        double p;
    } probs[] = {{"hidden_dropout_prob", c->hidden_dropout_prob},
                 {"attention_probs_dropout_prob", c->attention_probs_dropout_prob}};
    for (size_t i = 0; i < 2; i++)
        if (!(probs[i].p >= 0.0 && probs[i].p < 1.0))
            return gv_set_error(GV_ERR_ARG, "BERT config: %s is %g (expected [0, 1))",
                                probs[i].name, probs[i].p);
    if (!(c->classifier_dropout < 1.0)) /* NaN too; negative is None */
        return gv_set_error(GV_ERR_ARG, "BERT config: classifier_dropout is %g (expected [0, 1) "
                            "or negative for None)", c->classifier_dropout);
    if (!(c->initializer_range >= 0.0 && isfinite(c->initializer_range)))
        return gv_set_error(GV_ERR_ARG, "BERT config: initializer_range is %g",
                            c->initializer_range);
    if (!(c->layer_norm_eps > 0.0 && isfinite(c->layer_norm_eps)))
        return gv_set_error(GV_ERR_ARG, "BERT config: layer_norm_eps is %g (expected > 0)",
                            c->layer_norm_eps);
    if ((unsigned)c->hidden_act > GV_BERT_TANH)
        return gv_set_error(GV_ERR_ARG, "BERT config: hidden_act %d is not a gv_bert_activation",
                            (int)c->hidden_act);
    return GV_OK;
}

/* ---- the pieces, each a value function of the current scope ---- */

static gv_value dense(gv_scope *s, const char *name, int64_t features, gv_initializer kinit,
                      gv_value x) {
    gv_dense_cfg c = {features, true, kinit, gv_init_zeros()};
    gv_module m = {&gv_Dense, &c};
    return gv_scope_call1(s, name, &m, x);
}

static gv_value bert_dense(gv_scope *s, const gv_bert_config *c, const char *name,
                           int64_t features, gv_value x) {
    return dense(s, name, features, gv_init_normal(c->initializer_range), x);
}

static gv_value layer_norm(gv_scope *s, const gv_bert_config *c, gv_value x) {
    gv_layer_norm_cfg ln = gv_layer_norm_defaults();
    ln.epsilon = c->layer_norm_eps;
    gv_module m = {&gv_LayerNorm, &ln};
    return gv_scope_call1(s, "LayerNorm", &m, x);
}

static gv_value dropout(gv_scope *s, double rate, gv_value x) {
    gv_dropout_cfg d = {rate, false, NULL, 0};
    gv_module m = {&gv_Dropout, &d};
    return gv_scope_call1(s, "dropout", &m, x);
}

static gv_value embed(gv_scope *s, const gv_bert_config *c, const char *name, int64_t n,
                      gv_value ids) {
    gv_embed_cfg e = {n, c->hidden_size, gv_init_normal(c->initializer_range)};
    gv_module m = {&gv_Embed, &e};
    return gv_scope_call1(s, name, &m, ids);
}

static gv_value activation(gv_bert_activation a, gv_value x) {
    switch (a) {
    case GV_BERT_GELU: return gv_gelu(x, false);
    case GV_BERT_GELU_NEW: return gv_gelu(x, true);
    case GV_BERT_RELU: return gv_relu(x);
    case GV_BERT_SILU: return gv_silu(x);
    case GV_BERT_TANH: return gv_tanh(x);
    }
    return gv_value_fail(x.graph, GV_ERR_ARG, "BERT: unknown activation %d", (int)a);
}

/* The module types below all take the config as cfg; their call args are
 * values (hidden [, mask]) and the mask is already the bool [B, 1, 1, L]. */

/* FlaxBertEmbeddings: args (input_ids, token_type_ids, position_ids) */
static gv_tree *embeddings_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_bert_config *c = cfgp;
    gv_value words = embed(s, c, "word_embeddings", c->vocab_size, gv_args_get(args, 0));
    gv_value pos = embed(s, c, "position_embeddings", c->max_position_embeddings,
                         gv_args_get(args, 2));
    gv_value types = embed(s, c, "token_type_embeddings", c->type_vocab_size,
                           gv_args_get(args, 1));
    gv_value h = gv_add(gv_add(words, types), pos);
    h = layer_norm(s, c, h);
    return one(dropout(s, c->hidden_dropout_prob, h));
}
static const gv_module_type BertEmbeddings = {"FlaxBertEmbeddings", embeddings_call, NULL, 0};

/* FlaxBertSelfAttention: args (hidden, mask) */
static gv_tree *self_attention_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_bert_config *c = cfgp;
    gv_value x = gv_args_get(args, 0), mask = gv_args_get(args, 1);
    if (!gv_value_ok(x) || !gv_value_ok(mask)) return NULL;
    const int64_t *xs = gv_value_shape(x);
    int64_t heads = c->num_attention_heads, head_dim = c->hidden_size / heads;
    const int64_t split[4] = {xs[0], xs[1], heads, head_dim};
    gv_value q = gv_reshape(bert_dense(s, c, "query", c->hidden_size, x), 4, split);
    gv_value k = gv_reshape(bert_dense(s, c, "key", c->hidden_size, x), 4, split);
    gv_value v = gv_reshape(bert_dense(s, c, "value", c->hidden_size, x), 4, split);
    gv_attention_options o = gv_attention_options_defaults();
    o.dropout_rate = c->attention_probs_dropout_prob;
    o.deterministic = !gv_scope_train(s);
    o.impl = gv_scope_prng_impl(s);
    if (!o.deterministic && o.dropout_rate > 0.0) o.dropout_rng = gv_make_rng(s, "dropout");
    gv_value out = gv_dot_product_attention(q, k, v, mask, &o);
    return one(gv_reshape(out, 3, (int64_t[]){xs[0], xs[1], c->hidden_size}));
}
static const gv_module_type BertSelfAttention = {"FlaxBertSelfAttention", self_attention_call,
                                                 NULL, 0};

/* FlaxBertSelfOutput and FlaxBertOutput: args (hidden, residual) ->
 * LayerNorm(dropout(dense(hidden)) + residual) */
static gv_tree *output_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_bert_config *c = cfgp;
    gv_value h = bert_dense(s, c, "dense", c->hidden_size, gv_args_get(args, 0));
    h = dropout(s, c->hidden_dropout_prob, h);
    return one(layer_norm(s, c, gv_add(h, gv_args_get(args, 1))));
}
static const gv_module_type BertOutput = {"FlaxBertOutput", output_call, NULL, 0};

/* FlaxBertAttention: args (hidden, mask) */
static gv_tree *attention_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    gv_module self = {&BertSelfAttention, cfgp}, out = {&BertOutput, cfgp};
    gv_value x = gv_args_get(args, 0);
    gv_tree *a = gv_scope_call(s, "self", &self, NULL, args);
    if (!a) return NULL;
    gv_value attn = gv_tree_leaf_value(a);
    gv_tree_free(a);
    gv_tree *r = gv_args2(attn, x);
    gv_tree *o = r ? gv_scope_call(s, "output", &out, NULL, r) : NULL;
    gv_tree_free(r);
    return o;
}
static const gv_module_type BertAttention = {"FlaxBertAttention", attention_call, NULL, 0};

/* FlaxBertIntermediate: act(dense(hidden)) */
static gv_tree *intermediate_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_bert_config *c = cfgp;
    gv_value h = bert_dense(s, c, "dense", c->intermediate_size, gv_args_get(args, 0));
    return one(activation(c->hidden_act, h));
}
static const gv_module_type BertIntermediate = {"FlaxBertIntermediate", intermediate_call, NULL,
                                                0};

/* call a child whose result is one value; args are consumed */
static gv_value call_value(gv_scope *s, const char *name, const gv_module *m, gv_tree *args) {
    if (!args) return gv_invalid(gv_scope_graph(s));
    gv_tree *o = gv_scope_call(s, name, m, NULL, args);
    gv_tree_free(args);
    if (!o) return gv_invalid(gv_scope_graph(s));
    gv_value v = gv_tree_leaf_value(o);
    gv_tree_free(o);
    return v;
}

/* FlaxBertLayer: args (hidden, mask) */
static gv_tree *layer_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    gv_module att = {&BertAttention, cfgp}, mid = {&BertIntermediate, cfgp},
              out = {&BertOutput, cfgp};
    gv_value mask = gv_args_get(args, 1);
    gv_value a = call_value(s, "attention", &att, gv_args2(gv_args_get(args, 0), mask));
    gv_value h = gv_scope_call1(s, "intermediate", &mid, a);
    return one(call_value(s, "output", &out, gv_args2(h, a)));
}
static const gv_module_type BertLayer = {"FlaxBertLayer", layer_call, NULL, 0};

/* FlaxBertLayerCollection: layers named "0", "1", ... */
static gv_tree *layers_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_bert_config *c = cfgp;
    gv_module layer = {&BertLayer, cfgp};
    gv_value h = gv_args_get(args, 0), mask = gv_args_get(args, 1);
    for (int64_t i = 0; i < c->num_hidden_layers && gv_value_ok(h); i++) {
        char name[24];
        snprintf(name, sizeof name, "%lld", (long long)i);
        h = call_value(s, name, &layer, gv_args2(h, mask));
    }
    return one(h);
}
static const gv_module_type BertLayerCollection = {"FlaxBertLayerCollection", layers_call, NULL,
                                                   0};

/* FlaxBertEncoder: the collection as "layer" */
static gv_tree *encoder_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    gv_module layers = {&BertLayerCollection, cfgp};
    return gv_scope_call(s, "layer", &layers, NULL, args);
}
static const gv_module_type BertEncoder = {"FlaxBertEncoder", encoder_call, NULL, 0};

/* FlaxBertPooler: tanh(dense(hidden[:, 0])) */
static gv_tree *pooler_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_bert_config *c = cfgp;
    gv_value h = gv_args_get(args, 0);
    gv_value cls = gv_squeeze(gv_slice_axis(h, 1, 0, 1), (int[]){1}, 1);
    return one(gv_tanh(bert_dense(s, c, "dense", c->hidden_size, cls)));
}
static const gv_module_type BertPooler = {"FlaxBertPooler", pooler_call, NULL, 0};

/* An integer [B, L] argument of the user's, checked and cast to int32. */
static gv_value int_arg(gv_graph *g, const char *what, gv_value v, const int64_t *shape) {
    if (!gv_value_ok(v)) return v;
    if (gv_value_rank(v) != 2 || gv_value_shape(v)[0] != shape[0] ||
        gv_value_shape(v)[1] != shape[1])
        return gv_value_fail(g, GV_ERR_SHAPE, "BERT: %s must be [batch, length] = [%lld, %lld] "
                             "like input_ids", what, (long long)shape[0], (long long)shape[1]);
    gv_dtype d = gv_value_dtype(v);
    if (d == GV_I32) return v;
    if (d == GV_I64 || d == GV_U8 || d == GV_U16 || d == GV_U32 || d == GV_BOOL)
        return gv_cast(v, GV_I32);
    return gv_value_fail(g, GV_ERR_DTYPE, "BERT: %s must be integer, not %s", what,
                         gv_dtype_name(d));
}

/* FlaxBertModule: args (input_ids [, attention_mask [, token_type_ids [, position_ids]]]) */
static gv_tree *bert_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_bert_config *c = cfgp;
    gv_graph *g = gv_scope_graph(s);
    if (gv_bert_config_check(c) != GV_OK) {
        gv_graph_fail(g, gv_last_status(), "%s", gv_last_error());
        return NULL;
    }
    size_t nargs = args ? gv_tree_num_children(args) : 0;
    if (nargs < 1 || nargs > 4) {
        gv_graph_fail(g, GV_ERR_ARG, "BERT: expected (input_ids [, attention_mask [, "
                      "token_type_ids [, position_ids]]]), got %zu arguments", nargs);
        return NULL;
    }
    gv_value ids = gv_args_get(args, 0);
    if (!gv_value_ok(ids)) return NULL;
    if (gv_value_rank(ids) != 2) {
        gv_graph_fail(g, GV_ERR_SHAPE, "BERT: input_ids must be [batch, length], not rank %d",
                      gv_value_rank(ids));
        return NULL;
    }
    const int64_t *shape = gv_value_shape(ids);
    if (shape[1] > c->max_position_embeddings) {
        gv_graph_fail(g, GV_ERR_SHAPE, "BERT: length %lld is longer than "
                      "max_position_embeddings %lld", (long long)shape[1],
                      (long long)c->max_position_embeddings);
        return NULL;
    }
    ids = int_arg(g, "input_ids", ids, shape);
    gv_value mask = nargs > 1 ? gv_args_get(args, 1) : gv_full(g, GV_F32, 2, shape, 1.0);
    gv_value types = nargs > 2 ? int_arg(g, "token_type_ids", gv_args_get(args, 2), shape)
                               : gv_full(g, GV_I32, 2, shape, 0.0);
    gv_value pos = nargs > 3 ? int_arg(g, "position_ids", gv_args_get(args, 3), shape)
                             : gv_iota(g, GV_I32, 2, shape, 1);
    if (!gv_value_ok(mask)) return NULL;
    if (gv_value_rank(mask) != 2 || gv_value_shape(mask)[0] != shape[0] ||
        gv_value_shape(mask)[1] != shape[1]) {
        gv_graph_fail(g, GV_ERR_SHAPE, "BERT: attention_mask must be [batch, length] like "
                      "input_ids");
        return NULL;
    }
    /* Hugging Face: expand_dims(mask, (-3, -2)); attend where mask > 0 */
    gv_value attend = gv_gt(gv_cast(mask, GV_F32), gv_scalar(g, GV_F32, 0.0));
    attend = gv_reshape(attend, 4, (int64_t[]){shape[0], 1, 1, shape[1]});

    gv_module emb = {&BertEmbeddings, c}, enc = {&BertEncoder, c}, pool = {&BertPooler, c};
    gv_value h = call_value(s, "embeddings", &emb, gv_args3(ids, types, pos));
    h = call_value(s, "encoder", &enc, gv_args2(h, attend));
    if (!gv_value_ok(h)) return NULL;
    if (c->no_pooling_layer) return gv_args1(h);
    gv_value pooled = gv_scope_call1(s, "pooler", &pool, h);
    if (!gv_value_ok(pooled)) return NULL;
    return gv_args2(h, pooled);
}
const gv_module_type gv_BertModel = {"FlaxBertModule", bert_call, NULL, 0};

/* FlaxBertForSequenceClassificationModule: bert, dropout, classifier */
static gv_tree *classifier_call(gv_scope *s, const void *cfgp, const gv_tree *args) {
    const gv_bert_config *c = cfgp;
    gv_graph *g = gv_scope_graph(s);
    if (c && c->no_pooling_layer) {
        gv_graph_fail(g, GV_ERR_ARG, "BertForSequenceClassification: the classifier reads "
                      "the pooler (no_pooling_layer must be false)");
        return NULL;
    }
    gv_module bert = {&gv_BertModel, c};
    gv_tree *o = gv_scope_call(s, "bert", &bert, NULL, args);
    if (!o) return NULL;
    gv_value pooled = gv_tree_leaf_value(gv_tree_child(o, 1));
    gv_tree_free(o);
    double rate = c->classifier_dropout >= 0.0 ? c->classifier_dropout : c->hidden_dropout_prob;
    pooled = dropout(s, rate, pooled);
    return one(dense(s, "classifier", c->num_labels, gv_init_lecun_normal(), pooled));
}
const gv_module_type gv_BertForSequenceClassification = {
    "FlaxBertForSequenceClassificationModule", classifier_call, NULL, 0};
