/* grove: BERT as Hugging Face transformers' Flax BERT defines it
 * (FlaxBertModel, FlaxBertForSequenceClassification), and loading a
 * pretrained Hugging Face model directory into it.
 *
 *   gv_bert_config cfg;
 *   gv_bert_config_load(dir, &cfg);                 // dir/config.json
 *   cfg.num_labels = 2;
 *   gv_module model = {&gv_BertForSequenceClassification, &cfg};
 *   gv_load_report report = {0};
 *   gv_tree *variables = gv_bert_from_pretrained(&model, dir, gv_prng_key(0), &report);
 *   gv_load_report_print(&report, stderr);          // loaded / newly initialised / unused
 *   // variables: {'params': {'bert': {...}, 'classifier': {'kernel', 'bias'}}}
 *   // logits = model.apply(variables, input_ids, attention_mask, token_type_ids)
 *
 * The params tree has exactly Hugging Face Flax's paths:
 *   embeddings/{word,position,token_type}_embeddings/embedding
 *   embeddings/LayerNorm/{scale,bias}
 *   encoder/layer/N/attention/self/{query,key,value}/{kernel,bias}
 *   encoder/layer/N/attention/output/{dense/{kernel,bias},LayerNorm/{scale,bias}}
 *   encoder/layer/N/intermediate/dense/{kernel,bias}
 *   encoder/layer/N/output/{dense/{kernel,bias},LayerNorm/{scale,bias}}
 *   pooler/dense/{kernel,bias}
 * under "bert/" in BertForSequenceClassification, which adds
 * classifier/{kernel,bias}.
 *
 * Call arguments (a tuple, gv_args_*): (input_ids), (input_ids,
 * attention_mask), (input_ids, attention_mask, token_type_ids) or those and
 * position_ids: int32 [batch, length] each (attention_mask may be float32;
 * nonzero = attend). Absent ones default as in Hugging Face: attention_mask
 * ones, token_type_ids zeros, position_ids arange(length). Dropout (the
 * "dropout" rng stream) runs when the scope trains (gv_module_options.train,
 * Hugging Face's deterministic=False): after the embeddings, on the
 * attention weights, after each dense output and before the classifier.
 * BertModel returns the tuple (last_hidden_state [batch, length, hidden],
 * pooler_output [batch, hidden]; the pooler is tanh(Dense) of the first
 * token); with no_pooling_layer the tuple has last_hidden_state only.
 * BertForSequenceClassification returns logits [batch, num_labels]. */
#ifndef GROVE_BERT_H
#define GROVE_BERT_H

#include <stdio.h>

#include "grove/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* hidden_act: Hugging Face's ACT2FN names in its Flax models. */
typedef enum gv_bert_activation {
    GV_BERT_GELU = 0,            /* "gelu": exact, erf form */
    GV_BERT_GELU_NEW,            /* "gelu_new", "gelu_pytorch_tanh": tanh approximation */
    GV_BERT_RELU,                /* "relu" */
    GV_BERT_SILU,                /* "silu", "swish" */
    GV_BERT_TANH                 /* "tanh" */
} gv_bert_activation;

/* BertConfig. gv_bert_config_defaults() is BertConfig() (bert-base); a
 * zeroed struct is not a valid config. */
typedef struct gv_bert_config {
    int64_t vocab_size;                  /* 30522 */
    int64_t hidden_size;                 /* 768 */
    int64_t num_hidden_layers;           /* 12 */
    int64_t num_attention_heads;         /* 12 */
    int64_t intermediate_size;           /* 3072 */
    gv_bert_activation hidden_act;       /* gelu */
    double hidden_dropout_prob;          /* 0.1 */
    double attention_probs_dropout_prob; /* 0.1 */
    int64_t max_position_embeddings;     /* 512 */
    int64_t type_vocab_size;             /* 2 */
    double initializer_range;            /* 0.02: normal(stddev) for kernels and embeddings */
    double layer_norm_eps;               /* 1e-12 */
    int64_t pad_token_id;                /* 0 */
    int64_t num_labels;                  /* 2 (BertForSequenceClassification) */
    double classifier_dropout;           /* < 0 (None, the default): hidden_dropout_prob */
    bool no_pooling_layer;               /* add_pooling_layer=False (BertModel only) */
} gv_bert_config;

gv_bert_config gv_bert_config_defaults(void);
/* Read a Hugging Face config.json (path, or a directory holding one) over
 * the defaults: the keys above, "hidden_act" one of the names of
 * gv_bert_activation, "num_labels" or the length of "id2label".
 * "model_type" must be "bert" and "position_embedding_type" "absolute" when
 * present. Errors name the file and the key: GV_ERR_NOT_FOUND, GV_ERR_IO,
 * GV_ERR_FORMAT (malformed JSON, a key of the wrong type or out of range),
 * GV_ERR_UNSUPPORTED (an unknown hidden_act, another model_type or
 * position embedding). */
gv_status gv_bert_config_load(const char *path, gv_bert_config *out);
/* GV_OK, or GV_ERR_ARG naming the field that is out of range (sizes >= 1,
 * hidden_size divisible by num_attention_heads, probabilities in [0, 1),
 * layer_norm_eps > 0). Every module call checks it. */
gv_status gv_bert_config_check(const gv_bert_config *cfg);

extern const gv_module_type gv_BertModel;                      /* cfg: gv_bert_config */
extern const gv_module_type gv_BertForSequenceClassification;  /* cfg: gv_bert_config */

/* What gv_bert_from_pretrained did, as Hugging Face's loading warnings say
 * it: which params came from the checkpoint, which were newly initialised
 * (the model's own initialisers, with the given key) and which checkpoint
 * tensors the model does not use (pretraining heads, buffers). Paths are
 * grove's ("bert/pooler/dense/kernel"); unused names are the file's. */
typedef struct gv_load_report {
    char **loaded;
    size_t nloaded;
    char **initialized;
    size_t ninitialized;
    char **unused;
    size_t nunused;
    size_t nconverted;           /* tensors converted from float16 or bfloat16 */
} gv_load_report;
/* Hugging Face's summary lines: counts, and the newly initialised and the
 * unused names in full. */
void gv_load_report_print(const gv_load_report *r, FILE *f);
/* Frees the lists and zeroes the struct. */
void gv_load_report_free(gv_load_report *r);

/* from_pretrained(dir): initialises the model (m: gv_BertModel or
 * gv_BertForSequenceClassification with its config; key draws what the
 * checkpoint lacks, as gv_init(m, key, ...) would) and replaces every param
 * the checkpoint holds with its values, mapping PyTorch's state-dict names
 * to the Flax tree: a Linear's weight, transposed, into kernel; LayerNorm's
 * weight/bias (and the older gamma/beta) into scale/bias; an Embedding's
 * weight into embedding; the "bert." prefix added or dropped as the model
 * needs. Float16 and bfloat16 tensors are converted to float32. Reads
 * dir/model.safetensors, or, when there is none, dir/flax_model.msgpack
 * (what transformers' Flax save_pretrained writes: the Flax params tree
 * itself, read with serialization.h; paths match as they are, kernels are
 * not transposed). Returns {'params': ...} (caller frees); report may
 * be NULL, else it is filled (free it with gv_load_report_free). Errors
 * name the file and the tensor: GV_ERR_NOT_FOUND, GV_ERR_IO, GV_ERR_FORMAT
 * (a malformed or truncated file), GV_ERR_SHAPE (a tensor whose shape
 * contradicts the config: both shapes are named), GV_ERR_DTYPE (a dtype that
 * cannot be converted to float32), GV_ERR_ARG (no param loaded at all: not a
 * BERT checkpoint). */
gv_tree *gv_bert_from_pretrained(const gv_module *m, const char *dir, gv_key key,
                                 gv_load_report *report);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
