/* libFuzzer target: the two JSON files of a Hugging Face BERT directory
 * that grove reads, config.json (gv_bert_config_parse, src/nn/pretrained.c)
 * and tokenizer_config.json (gv_bert_tokenizer_config_parse,
 * src/text/bert_tokenizer.c). Every input is given to both. Any bytes must
 * give a config or a clean error naming the file, never a crash, a leak or
 * undefined behaviour. Built and run by scripts/fuzz.sh.
 *
 * The input sits in a buffer of exactly its size (no NUL after it), so a
 * read past the end is an ASan report. What is checked besides:
 *   config.json: on an error *out is untouched; an accepted config passes
 *   gv_bert_config_check, its string keys are exactly the names grove
 *   accepts (no NUL-truncated "gelu\u0000x"), and written back as JSON it
 *   parses to the same config;
 *   tokenizer_config.json: an accepted file is one JSON object with nothing
 *   after it, its special tokens are exactly grove's (no "[UNK]\u0000x"),
 *   the options are options the loader takes, and a tokenizer made with them
 *   lower-cases exactly when they say so. */
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "grove/bert.h"
#include "grove/tokenizer.h"
#include "nn/pretrained_internal.h"
#include "text/tokenizer_internal.h"

#define CONFIG "fuzz/config.json"
#define TOKCONFIG "fuzz/tokenizer_config.json"

static void check(bool ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "%s (last error: '%s')\n", what, gv_last_error());
    abort();
}

/* A failed parse: a new error, of an expected kind, naming the file. */
static void check_error(unsigned long long before, const char *file) {
    check(gv_error_count() > before, "an error without a message");
    gv_status st = gv_last_status();
    check(st == GV_ERR_FORMAT || st == GV_ERR_UNSUPPORTED || st == GV_ERR_NOMEM,
          "an error of an unexpected kind");
    check(st == GV_ERR_NOMEM || strstr(gv_last_error(), file) != NULL,
          "the error does not name the file");
}

static const char *const act_names[] = {"gelu", "gelu_new", "relu", "silu", "tanh"};

/* Every string key grove reads must be, byte for byte, a value it accepts. */
static void check_string_keys(const char *text, size_t len) {
    /* as deep as grove reads it, not json-c's default of 32 */
    json_tokener *tk = json_tokener_new_ex(GV_HF_CONFIG_JSON_DEPTH);
    check(tk != NULL, "out of memory");
    json_object *o = json_tokener_parse_ex(tk, text, (int)len), *v;
    json_tokener_free(tk);
    check(o != NULL, "gv_bert_config_parse accepted what json-c cannot read");
    static const char *const bert[] = {"bert", NULL}, *const absolute[] = {"absolute", NULL},
                             *const acts[] = {"gelu", "gelu_new", "gelu_pytorch_tanh", "relu",
                                              "silu", "swish", "tanh", NULL};
    static const struct {
        const char *key;
        const char *const *allowed;
    } keys[] = {{"model_type", bert}, {"position_embedding_type", absolute}, {"hidden_act", acts}};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        if (!json_object_object_get_ex(o, keys[k].key, &v)) continue;
        const char *s = json_object_get_string(v);
        size_t n = (size_t)json_object_get_string_len(v);
        bool ok = false;
        for (const char *const *a = keys[k].allowed; *a && !ok; a++)
            ok = strlen(*a) == n && memcmp(*a, s, n) == 0;
        if (!ok) {
            fprintf(stderr, "\"%s\" accepted with %zu bytes: %.*s\n", keys[k].key, n, (int)n, s);
            abort();
        }
    }
    json_object_put(o);
}

/* The config as config.json text, every key written. */
static char *config_json(const gv_bert_config *c) {
    json_object *o = json_object_new_object();
    check(o != NULL, "out of memory");
    json_object_object_add(o, "model_type", json_object_new_string("bert"));
    json_object_object_add(o, "hidden_act", json_object_new_string(act_names[c->hidden_act]));
    const struct {
        const char *key;
        int64_t v;
    } ints[] = {{"vocab_size", c->vocab_size},
                {"hidden_size", c->hidden_size},
                {"num_hidden_layers", c->num_hidden_layers},
                {"num_attention_heads", c->num_attention_heads},
                {"intermediate_size", c->intermediate_size},
                {"max_position_embeddings", c->max_position_embeddings},
                {"type_vocab_size", c->type_vocab_size},
                {"pad_token_id", c->pad_token_id},
                {"num_labels", c->num_labels}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        json_object_object_add(o, ints[i].key, json_object_new_int64(ints[i].v));
    const struct {
        const char *key;
        double v;
    } nums[] = {{"hidden_dropout_prob", c->hidden_dropout_prob},
                {"attention_probs_dropout_prob", c->attention_probs_dropout_prob},
                {"initializer_range", c->initializer_range},
                {"layer_norm_eps", c->layer_norm_eps},
                {"classifier_dropout", c->classifier_dropout}};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        json_object_object_add(o, nums[i].key, json_object_new_double(nums[i].v));
    char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    check(s != NULL, "out of memory");
    json_object_put(o);
    return s;
}

static bool same_config(const gv_bert_config *a, const gv_bert_config *b) {
    return a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size &&
           a->num_hidden_layers == b->num_hidden_layers &&
           a->num_attention_heads == b->num_attention_heads &&
           a->intermediate_size == b->intermediate_size && a->hidden_act == b->hidden_act &&
           a->hidden_dropout_prob == b->hidden_dropout_prob &&
           a->attention_probs_dropout_prob == b->attention_probs_dropout_prob &&
           a->max_position_embeddings == b->max_position_embeddings &&
           a->type_vocab_size == b->type_vocab_size &&
           a->initializer_range == b->initializer_range &&
           a->layer_norm_eps == b->layer_norm_eps && a->pad_token_id == b->pad_token_id &&
           a->num_labels == b->num_labels && a->classifier_dropout == b->classifier_dropout &&
           a->no_pooling_layer == b->no_pooling_layer;
}

static void fuzz_config(const char *text, size_t len) {
    gv_bert_config c, poison;
    memset(&poison, 0xa5, sizeof poison);
    c = poison;
    unsigned long long before = gv_error_count();
    if (gv_bert_config_parse(text, len, CONFIG, &c) != GV_OK) {
        check_error(before, CONFIG);
        check(memcmp(&c, &poison, sizeof c) == 0, "a failed parse wrote the config");
        return;
    }
    check(gv_bert_config_check(&c) == GV_OK, "an accepted config fails gv_bert_config_check");
    check((unsigned)c.hidden_act < sizeof act_names / sizeof *act_names, "hidden_act out of range");
    check_string_keys(text, len);
    char *again = config_json(&c);
    gv_bert_config d = poison;
    check(gv_bert_config_parse(again, strlen(again), CONFIG, &d) == GV_OK,
          "the config written back is refused");
    check(same_config(&c, &d), "written back, the config reads differently");
    free(again);
}

/* An accepted tokenizer_config.json is one JSON object and nothing after it
 * but whitespace (as json.load, which transformers uses, wants it), and its
 * special tokens are byte for byte the ones grove has. */
static void check_tokenizer_config(const char *text, size_t len) {
    json_tokener *tk = json_tokener_new();
    check(tk != NULL, "out of memory");
    json_object *o = json_tokener_parse_ex(tk, text, (int)len), *v, *c;
    size_t end = json_tokener_get_parse_end(tk);
    json_tokener_free(tk);
    check(o != NULL, "an accepted tokenizer config json-c cannot read");
    while (end < len && strchr(" \t\r\n", text[end]) && text[end]) end++;
    check(end == len, "a tokenizer config with characters after its JSON accepted");
    static const char *const keys[][2] = {{"unk_token", "[UNK]"}, {"sep_token", "[SEP]"},
                                          {"pad_token", "[PAD]"}, {"cls_token", "[CLS]"},
                                          {"mask_token", "[MASK]"}};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        if (!json_object_object_get_ex(o, keys[k][0], &v) || !v) continue;
        if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "content", &c))
            v = c;
        check(json_object_is_type(v, json_type_string) &&
                  (size_t)json_object_get_string_len(v) == strlen(keys[k][1]) &&
                  memcmp(json_object_get_string(v), keys[k][1], strlen(keys[k][1])) == 0,
              "a special token other than grove's accepted");
    }
    json_object_put(o);
}

static void fuzz_tokenizer_config(const char *text, size_t len) {
    gv_bert_tokenizer_options o = {0};
    unsigned long long before = gv_error_count();
    if (gv_bert_tokenizer_config_parse(text, len, TOKCONFIG, &o) != GV_OK) {
        check_error(before, TOKCONFIG);
        return;
    }
    check(o.strip_accents >= -1 && o.strip_accents <= 1 && o.model_max_length >= 0 &&
              o.max_input_chars_per_word == 0,
          "options out of range");
    check_tokenizer_config(text, len);
    static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n";
    gv_bert_tokenizer *t = gv_bert_tokenizer_load_buffer(vocab, sizeof vocab - 1, "vocab", &o);
    check(t != NULL, "the loader refuses the options of an accepted config");
    int32_t *ids = NULL;
    size_t n = 0;
    check(gv_bert_tokenize(t, "HELLO", &ids, &n) == GV_OK && n == 1, "tokenize");
    check(ids[0] == (o.keep_case ? gv_bert_unk_id(t) : gv_bert_token_to_id(t, "hello")),
          "do_lower_case not applied as the options say");
    free(ids);
    gv_bert_tokenizer_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size ? size : 1);
    if (!text) abort();
    memcpy(text, data, size);
    fuzz_config(text, size);
    fuzz_tokenizer_config(text, size);
    free(text);
    return 0;
}
