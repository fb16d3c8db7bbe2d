/* BERT: the model against Hugging Face transformers' Flax BERT, and the
 * loader of Hugging Face checkpoints.
 *
 * - loader: a small BERT's own params written as a PyTorch state dict
 *   (transposed Linear weights, LayerNorm weight/bias or gamma/beta, the
 *   position_ids buffer, a pretraining head), in float32, float16 and
 *   bfloat16, read back into the Flax tree; the "bert." prefix added and
 *   dropped; every malformed input an error naming the file and tensor.
 * - parity (tests/golden/make_bert_golden.py, the real transformers): the
 *   tiny BERT of tests/golden/tiny-bert loaded by grove equals the params
 *   transformers' own PyTorch-to-Flax conversion made, bit for bit; its
 *   outputs, logits and gradients; and the pretrained all-MiniLM-L6-v2
 *   (GROVE_BERT_DIR, scripts/fetch-bert.sh: skipped without it). */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static void setup(void) { gvt_tmpdir_make("bert"); }
static void teardown(void) { gvt_tmpdir_remove(); }
TestSuite(bert_loader, .init = setup, .fini = teardown);
TestSuite(bert_config, .init = setup, .fini = teardown);

/* ---- a small safetensors writer (any dtype name, raw bytes) ---- */

typedef struct st_item {
    const char *name;
    const char *dtype;
    int rank;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} st_item;

static void write_safetensors(const char *path, const st_item *items, int n) {
    char header[65536];
    size_t h = 0, off = 0;
    h += (size_t)snprintf(header + h, sizeof header - h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        h += (size_t)snprintf(header + h, sizeof header - h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                              items[i].name, items[i].dtype);
        for (int d = 0; d < items[i].rank; d++)
            h += (size_t)snprintf(header + h, sizeof header - h, "%s%lld", d ? "," : "",
                                  (long long)items[i].shape[d]);
        h += (size_t)snprintf(header + h, sizeof header - h, "],\"data_offsets\":[%zu,%zu]}", off,
                              off + items[i].nbytes);
        off += items[i].nbytes;
        cr_assert_lt(h, sizeof header - 256);
    }
    h += (size_t)snprintf(header + h, sizeof header - h, "}");
    while (h % 8) header[h++] = ' ';
    size_t total = 8 + h + off;
    unsigned char *buf = malloc(total);
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)((uint64_t)h >> (8 * b));
    memcpy(buf + 8, header, h);
    size_t pos = 8 + h;
    for (int i = 0; i < n; i++) {
        memcpy(buf + pos, items[i].data, items[i].nbytes);
        pos += items[i].nbytes;
    }
    gvt_write_file(path, buf, total);
    free(buf);
}

/* ---- a small BERT and its params as a PyTorch state dict ---- */

static const char tiny_config[] =
    "{\"architectures\": [\"BertForSequenceClassification\"], \"model_type\": \"bert\",\n"
    " \"vocab_size\": 11, \"hidden_size\": 8, \"num_hidden_layers\": 2,\n"
    " \"num_attention_heads\": 2, \"intermediate_size\": 12, \"hidden_act\": \"gelu\",\n"
    " \"hidden_dropout_prob\": 0.1, \"attention_probs_dropout_prob\": 0.1,\n"
    " \"max_position_embeddings\": 16, \"type_vocab_size\": 2, \"initializer_range\": 0.02,\n"
    " \"layer_norm_eps\": 1e-12, \"pad_token_id\": 0, \"position_embedding_type\": \"absolute\",\n"
    " \"id2label\": {\"0\": \"neg\", \"1\": \"pos\", \"2\": \"neutral\"},\n"
    " \"transformers_version\": \"4.57.6\", \"use_cache\": true}\n";

static char *make_model_dir(const char *name, const char *config) {
    char *dir = gvt_tmp_path(name);
    cr_assert_eq(mkdir(dir, 0700), 0);
    char *cfg = NULL;
    cr_assert(asprintf(&cfg, "%s/config.json", dir) > 0);
    gvt_write_file(cfg, config, strlen(config));
    free(cfg);
    return dir;
}

/* PyTorch's name of a Flax param path, and whether it is a transposed
 * kernel. "bert/encoder/layer/0/attention/self/query/kernel" ->
 * "bert.encoder.layer.0.attention.self.query.weight". */
static char *torch_name(const char *path, bool gamma_beta, bool *transpose) {
    char *n = strdup(path);
    for (char *c = n; *c; c++)
        if (*c == '/') *c = '.';
    char *last = strrchr(n, '.') + 1;
    *transpose = strcmp(last, "kernel") == 0;
    char *out = NULL;
    const char *leaf = last;
    if (strcmp(last, "kernel") == 0 || strcmp(last, "embedding") == 0) leaf = "weight";
    else if (strcmp(last, "scale") == 0) leaf = gamma_beta ? "gamma" : "weight";
    else if (strcmp(last, "bias") == 0 && gamma_beta && strstr(n, "LayerNorm")) leaf = "beta";
    char leafbuf[32];
    snprintf(leafbuf, sizeof leafbuf, "%s", leaf);
    *last = '\0';
    cr_assert(asprintf(&out, "%s%s", n, leafbuf) > 0);
    free(n);
    return out;
}

static uint16_t to_bf16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* the compiler's own conversions (_Float16), independent of grove's */
static uint16_t to_f16(float f) {
    _Float16 h = (_Float16)f;
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

static float from_f16(uint16_t u) {
    _Float16 h;
    memcpy(&h, &u, 2);
    return (float)h;
}

typedef struct sd {  /* a state dict being built */
    st_item items[128];
    void *bufs[128];
    int n;
} sd;

static void sd_add(sd *s, const char *name, const char *dtype, int rank, const int64_t *shape,
                   void *data, size_t nbytes) {
    cr_assert_lt(s->n, 128);
    st_item *it = &s->items[s->n];
    *it = (st_item){strdup(name), dtype, rank, {0}, data, nbytes};
    for (int d = 0; d < rank; d++) it->shape[d] = shape[d];
    s->bufs[s->n++] = data;
}

static void sd_free(sd *s) {
    for (int i = 0; i < s->n; i++) free((void *)s->items[i].name), free(s->bufs[i]);
    s->n = 0;
}

typedef enum { AS_F32, AS_F16, AS_BF16 } store;

typedef struct sd_build {
    sd *s;
    const char *drop_prefix; /* "bert/" to write a BertModel checkpoint */
    bool gamma_beta;
    store as;
} sd_build;

static gv_status add_param(const char *path, const gv_tree *leaf, void *ud) {
    sd_build *b = ud;
    const char *p = path;
    if (b->drop_prefix) {
        if (strncmp(p, b->drop_prefix, strlen(b->drop_prefix)) != 0) return GV_OK;
        p += strlen(b->drop_prefix);
    }
    bool tr;
    char *name = torch_name(p, b->gamma_beta, &tr);
    const gv_tensor *t = gv_tree_leaf_tensor(leaf);
    int rank = gv_tensor_rank(t);
    int64_t shape[4];
    const int64_t *s = gv_tensor_shape(t);
    for (int d = 0; d < rank; d++) shape[d] = tr ? s[rank - 1 - d] : s[d];
    int64_t n = gv_tensor_size(t);
    const float *src = gv_tensor_data_const(t);
    size_t es = b->as == AS_F32 ? 4 : 2;
    unsigned char *buf = malloc((size_t)n * es);
    for (int64_t i = 0; i < n; i++) {
        /* element i of the stored (PyTorch) layout */
        int64_t j = i;
        if (tr) j = (i % shape[1]) * shape[0] + i / shape[1];
        float v = src[j];
        if (b->as == AS_F32) memcpy(buf + 4 * i, &v, 4);
        else {
            uint16_t h = b->as == AS_BF16 ? to_bf16(v) : to_f16(v);
            memcpy(buf + 2 * i, &h, 2);
        }
    }
    sd_add(b->s, name, b->as == AS_F32 ? "F32" : b->as == AS_F16 ? "F16" : "BF16", rank, shape,
           buf, (size_t)n * es);
    free(name);
    return GV_OK;
}

static gv_bert_config tiny_cfg(void) {
    gv_bert_config c;
    char *dir = make_model_dir("cfg", tiny_config);
    GVT_OK(gv_bert_config_load(dir, &c));
    free(dir);
    return c;
}

static gv_tree *init_params(const gv_module *m, uint32_t seed) {
    gv_tensor *ids = gv_tensor_zeros(GV_I32, 2, (int64_t[]){1, 1});
    gv_tree *args = gv_args_tensors(&ids, 1);
    gv_tree *v = GVT_NN(gv_init(m, gv_prng_key(seed), args, NULL));
    gv_tensor_free(ids);
    gv_tree_free(args);
    return v;
}

/* The state dict of variables' params; extras: the position_ids buffer and
 * a pretraining head's bias, which no model uses. */
static void build_sd(sd *s, const gv_tree *variables, const char *drop_prefix, bool gamma_beta,
                     store as, bool extras) {
    sd_build b = {s, drop_prefix, gamma_beta, as};
    GVT_OK(gv_tree_foreach_leaf(gv_tree_get(variables, "params"), add_param, &b));
    if (!extras) return;
    int64_t *pos = malloc(16 * sizeof *pos);
    for (int i = 0; i < 16; i++) pos[i] = i;
    sd_add(s, drop_prefix ? "embeddings.position_ids" : "bert.embeddings.position_ids", "I64", 2,
           (int64_t[]){1, 16}, pos, 16 * sizeof *pos);
    float *bias = calloc(11, sizeof *bias);
    sd_add(s, "cls.predictions.bias", "F32", 1, (int64_t[]){11}, bias, 11 * sizeof *bias);
}

static char *write_model(const char *name, sd *s) {
    char *dir = make_model_dir(name, tiny_config), *file = NULL;
    cr_assert(asprintf(&file, "%s/model.safetensors", dir) > 0);
    write_safetensors(file, s->items, s->n);
    free(file);
    return dir;
}

static bool listed(char *const *v, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0) return true;
    return false;
}

static void expect_same(const gv_tree *a, const gv_tree *b) {
    char first[256] = "";
    int nd = gvt_tree_diff(a, b, first, sizeof first);
    cr_assert_eq(nd, 0, "%d params differ, the first at %s", nd, first);
}

Test(bert_config, defaults_and_config_json) {
    gv_bert_config d = gv_bert_config_defaults();
    cr_assert_eq(d.hidden_size, 768);
    cr_assert_eq(d.num_hidden_layers, 12);
    cr_assert_eq(d.intermediate_size, 3072);
    cr_assert_eq(d.layer_norm_eps, 1e-12);
    cr_assert_lt(d.classifier_dropout, 0);
    GVT_OK(gv_bert_config_check(&d));
    gv_bert_config c = tiny_cfg();
    cr_assert_eq(c.vocab_size, 11);
    cr_assert_eq(c.hidden_size, 8);
    cr_assert_eq(c.num_hidden_layers, 2);
    cr_assert_eq(c.num_attention_heads, 2);
    cr_assert_eq(c.intermediate_size, 12);
    cr_assert_eq(c.max_position_embeddings, 16);
    cr_assert_eq(c.num_labels, 3, "num_labels from id2label");
    cr_assert_eq(c.hidden_act, GV_BERT_GELU);
    cr_assert_eq(c.hidden_dropout_prob, 0.1);
}

static void expect_config_error(const char *json, gv_status st, const char *needle) {
    static int k;
    char name[32];
    snprintf(name, sizeof name, "bad%d", k++);
    char *dir = make_model_dir(name, json);
    gv_bert_config c = gv_bert_config_defaults();
    GVT_FAILS(gv_bert_config_load(dir, &c), st, needle);
    cr_assert(strstr(gv_last_error(), "config.json"), "names the file: %s", gv_last_error());
    cr_assert_eq(c.hidden_size, 768, "the output is untouched on failure");
    free(dir);
}

Test(bert_config, bad_config_files) {
    expect_config_error("{\"hidden_act\": \"gelu_fast\"}", GV_ERR_UNSUPPORTED, "gelu_fast");
    expect_config_error("{\"model_type\": \"gpt2\"}", GV_ERR_UNSUPPORTED, "gpt2");
    expect_config_error("{\"position_embedding_type\": \"relative_key\"}", GV_ERR_UNSUPPORTED,
                        "relative_key");
    expect_config_error("{\"hidden_size\": \"big\"}", GV_ERR_FORMAT, "hidden_size");
    expect_config_error("{\"hidden_size\": 10, \"num_attention_heads\": 3}", GV_ERR_FORMAT,
                        "multiple");
    expect_config_error("{\"layer_norm_eps\": 0}", GV_ERR_FORMAT, "layer_norm_eps");
    expect_config_error("{\"hidden_dropout_prob\": 1.5}", GV_ERR_FORMAT, "hidden_dropout_prob");
    expect_config_error("{\"vocab_size\": 0}", GV_ERR_FORMAT, "vocab_size");
    expect_config_error("{\"hidden_size\": 8,", GV_ERR_FORMAT, "config");
    expect_config_error("[1, 2]", GV_ERR_FORMAT, "object");
    char *missing = gvt_tmp_path("nowhere");
    gv_bert_config c;
    GVT_FAILS(gv_bert_config_load(missing, &c), GV_ERR_NOT_FOUND, "nowhere");
    free(missing);
}

Test(bert_loader, round_trip_float32) {
    gv_bert_config cfg = tiny_cfg();
    gv_module m = {&gv_BertForSequenceClassification, &cfg};
    gv_tree *want = init_params(&m, 1);
    sd s = {0};
    build_sd(&s, want, NULL, false, AS_F32, true);
    char *dir = write_model("f32", &s);
    gv_load_report r;
    gv_tree *got = GVT_NN(gv_bert_from_pretrained(&m, dir, gv_prng_key(2), &r));
    expect_same(want, got);
    cr_assert_eq(r.nloaded, gv_tree_num_leaves(want), "%zu loaded, %zu initialised: %s", r.nloaded,
                 r.ninitialized, r.ninitialized ? r.initialized[0] : "");
    cr_assert_eq(r.ninitialized, 0);
    cr_assert_eq(r.nconverted, 0);
    cr_assert_eq(r.nunused, 2);
    cr_assert(listed(r.unused, r.nunused, "bert.embeddings.position_ids"));
    cr_assert(listed(r.unused, r.nunused, "cls.predictions.bias"));
    cr_assert(listed(r.loaded, r.nloaded, "bert/encoder/layer/1/attention/self/query/kernel"));
    gv_load_report_free(&r);
    cr_assert_eq(r.nloaded, 0);
    gv_load_report_free(&r); /* twice is harmless */
    /* the older LayerNorm names gamma/beta load the same */
    sd s2 = {0};
    build_sd(&s2, want, NULL, true, AS_F32, false);
    char *dir2 = write_model("gamma", &s2);
    gv_tree *got2 = GVT_NN(gv_bert_from_pretrained(&m, dir2, gv_prng_key(2), NULL));
    expect_same(want, got2);
    gv_tree_free(want), gv_tree_free(got), gv_tree_free(got2);
    sd_free(&s), sd_free(&s2);
    free(dir), free(dir2);
}

Test(bert_loader, base_checkpoint_into_classifier_and_back) {
    gv_bert_config cfg = tiny_cfg();
    gv_module cls = {&gv_BertForSequenceClassification, &cfg}, base = {&gv_BertModel, &cfg};
    gv_tree *full = init_params(&cls, 1);
    /* a BertModel checkpoint (no "bert." prefix) into the classifier: the
     * classifier is newly initialised with the given key */
    sd s = {0};
    build_sd(&s, full, "bert/", false, AS_F32, true);
    char *dir = write_model("base", &s);
    gv_load_report r;
    gv_tree *got = GVT_NN(gv_bert_from_pretrained(&cls, dir, gv_prng_key(1), &r));
    expect_same(full, got); /* key 1 draws the same classifier as full's init */
    cr_assert_eq(r.ninitialized, 2);
    cr_assert(listed(r.initialized, r.ninitialized, "classifier/kernel"));
    cr_assert(listed(r.initialized, r.ninitialized, "classifier/bias"));
    cr_assert_eq(r.nunused, 2);
    gv_load_report_free(&r);
    gv_tree *other = GVT_NN(gv_bert_from_pretrained(&cls, dir, gv_prng_key(5), NULL));
    char first[256];
    cr_assert_eq(gvt_tree_diff(full, other, first, sizeof first), 1, "only the kernel differs "
                 "with another key (the bias is zeros)");
    cr_assert_str_eq(first, "params/classifier/kernel");
    /* a classifier checkpoint into BertModel: "bert." is dropped, the head unused */
    sd s2 = {0};
    build_sd(&s2, full, NULL, false, AS_F32, false);
    char *dir2 = write_model("head", &s2);
    gv_tree *b = GVT_NN(gv_bert_from_pretrained(&base, dir2, gv_prng_key(3), &r));
    gv_tree *want = gv_tree_new_dict();
    GVT_OK(gv_tree_insert(want, "params", gv_tree_copy(gv_tree_get(full, "params/bert"))));
    expect_same(want, b);
    cr_assert_eq(r.nunused, 2);
    cr_assert(listed(r.unused, r.nunused, "classifier.weight"));
    cr_assert_eq(r.ninitialized, 0);
    gv_load_report_free(&r);
    gv_tree_free(full), gv_tree_free(got), gv_tree_free(other), gv_tree_free(b),
        gv_tree_free(want);
    sd_free(&s), sd_free(&s2);
    free(dir), free(dir2);
}

static gv_status expect_rounded(const char *path, const gv_tree *leaf, void *ud) {
    const gv_tree *got = ud;
    const gv_tensor *w = gv_tree_leaf_tensor(leaf), *g = gv_tree_get_tensor(got, path);
    cr_assert_not_null(g, "%s missing", path);
    const float *a = gv_tensor_data_const(w), *b = gv_tensor_data_const(g);
    bool bf = strstr(path, "@bf16") != NULL;
    (void)bf;
    for (int64_t i = 0; i < gv_tensor_size(w); i++) {
        float e = from_f16(to_f16(a[i]));
        cr_assert(memcmp(&e, &b[i], 4) == 0, "%s[%lld]: %a, expected %a", path, (long long)i,
                  b[i], e);
    }
    return GV_OK;
}

static gv_status expect_rounded_bf16(const char *path, const gv_tree *leaf, void *ud) {
    const gv_tree *got = ud;
    const gv_tensor *w = gv_tree_leaf_tensor(leaf), *g = gv_tree_get_tensor(got, path);
    const float *a = gv_tensor_data_const(w), *b = gv_tensor_data_const(g);
    for (int64_t i = 0; i < gv_tensor_size(w); i++) {
        float e = from_bf16(to_bf16(a[i]));
        cr_assert(memcmp(&e, &b[i], 4) == 0, "%s[%lld]: %a, expected %a", path, (long long)i,
                  b[i], e);
    }
    return GV_OK;
}

Test(bert_loader, float16_and_bfloat16_become_float32) {
    gv_bert_config cfg = tiny_cfg();
    gv_module m = {&gv_BertForSequenceClassification, &cfg};
    gv_tree *want = init_params(&m, 1);
    sd s = {0}, s2 = {0};
    build_sd(&s, want, NULL, false, AS_F16, true);
    build_sd(&s2, want, NULL, false, AS_BF16, false);
    char *dir = write_model("f16", &s), *dir2 = write_model("bf16", &s2);
    gv_load_report r;
    gv_tree *got = GVT_NN(gv_bert_from_pretrained(&m, dir, gv_prng_key(2), &r));
    cr_assert_eq(r.nconverted, gv_tree_num_leaves(want), "every half tensor of the file");
    GVT_OK(gv_tree_foreach_leaf(want, expect_rounded, got));
    gv_load_report_free(&r);
    gv_tree *got2 = GVT_NN(gv_bert_from_pretrained(&m, dir2, gv_prng_key(2), NULL));
    GVT_OK(gv_tree_foreach_leaf(want, expect_rounded_bf16, got2));
    gv_tree_free(want), gv_tree_free(got), gv_tree_free(got2);
    sd_free(&s), sd_free(&s2);
    free(dir), free(dir2);
}

/* Every kind of half: zeros, subnormals, the largest, infinities, NaNs. */
Test(bert_loader, float16_special_values) {
    gv_bert_config cfg = tiny_cfg();
    gv_module m = {&gv_BertForSequenceClassification, &cfg};
    gv_tree *want = init_params(&m, 1);
    sd s = {0};
    build_sd(&s, want, NULL, false, AS_F32, false);
    static const uint16_t bits[8] = {0x0000, 0x8000, 0x0001, 0x83ff, 0x7bff, 0xfc00, 0x7e01, 0x3555};
    for (int i = 0; i < s.n; i++)
        if (strcmp(s.items[i].name, "bert.pooler.dense.bias") == 0) {
            uint16_t *h = malloc(sizeof bits);
            memcpy(h, bits, sizeof bits);
            free(s.bufs[i]);
            s.bufs[i] = h;
            s.items[i].data = h, s.items[i].dtype = "F16", s.items[i].nbytes = sizeof bits;
        }
    char *dir = write_model("special", &s);
    gv_tree *got = GVT_NN(gv_bert_from_pretrained(&m, dir, gv_prng_key(2), NULL));
    const float *b = gv_tensor_data_const(gv_tree_get_tensor(got, "params/bert/pooler/dense/bias"));
    for (int i = 0; i < 8; i++) {
        float e = from_f16(bits[i]);
        uint32_t eb, gb;
        memcpy(&eb, &e, 4), memcpy(&gb, &b[i], 4);
        cr_assert_eq(gb, eb, "half 0x%04x: got 0x%08x, expected 0x%08x", bits[i], gb, eb);
    }
    gv_tree_free(want), gv_tree_free(got);
    sd_free(&s);
    free(dir);
}

static void replace_item(sd *s, const char *name, const char *dtype, int rank,
                         const int64_t *shape, size_t nbytes) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0) {
            free(s->bufs[i]);
            s->bufs[i] = calloc(1, nbytes ? nbytes : 1);
            s->items[i].data = s->bufs[i], s->items[i].dtype = dtype, s->items[i].rank = rank;
            for (int d = 0; d < rank; d++) s->items[i].shape[d] = shape[d];
            s->items[i].nbytes = nbytes;
            return;
        }
    cr_assert_fail("no tensor %s", name);
}

Test(bert_loader, bad_checkpoints_name_the_file_and_tensor) {
    gv_bert_config cfg = tiny_cfg();
    gv_module m = {&gv_BertForSequenceClassification, &cfg};
    gv_tree *vars = init_params(&m, 1);
    /* no model.safetensors */
    char *empty = make_model_dir("empty", tiny_config);
    GVT_NULL(gv_bert_from_pretrained(&m, empty, gv_prng_key(0), NULL), GV_ERR_NOT_FOUND,
             "model.safetensors");
    /* not a directory */
    char *nodir = gvt_tmp_path("no-such-model");
    GVT_NULL(gv_bert_from_pretrained(&m, nodir, gv_prng_key(0), NULL), GV_ERR_NOT_FOUND,
             "no-such-model");
    /* a shape the config contradicts */
    sd s = {0};
    build_sd(&s, vars, NULL, false, AS_F32, false);
    replace_item(&s, "bert.embeddings.word_embeddings.weight", "F32", 2, (int64_t[]){12, 8},
                 12 * 8 * 4);
    char *dir = write_model("shape", &s);
    GVT_NULL(gv_bert_from_pretrained(&m, dir, gv_prng_key(0), NULL), GV_ERR_SHAPE,
             "'bert.embeddings.word_embeddings.weight' has shape [12,8]");
    cr_assert(strstr(gv_last_error(), "[11,8]") && strstr(gv_last_error(), "model.safetensors"),
              "%s", gv_last_error());
    sd_free(&s);
    /* a kernel not transposed */
    build_sd(&s, vars, NULL, false, AS_F32, false);
    replace_item(&s, "bert.encoder.layer.0.intermediate.dense.weight", "F32", 2,
                 (int64_t[]){8, 12}, 8 * 12 * 4);
    char *dir2 = write_model("transposed", &s);
    GVT_NULL(gv_bert_from_pretrained(&m, dir2, gv_prng_key(0), NULL), GV_ERR_SHAPE,
             "intermediate.dense.weight' has shape [8,12]");
    sd_free(&s);
    /* an integer tensor for a weight; a dtype grove cannot convert */
    build_sd(&s, vars, NULL, false, AS_F32, false);
    replace_item(&s, "bert.pooler.dense.bias", "I32", 1, (int64_t[]){8}, 32);
    char *dir3 = write_model("int", &s);
    GVT_NULL(gv_bert_from_pretrained(&m, dir3, gv_prng_key(0), NULL), GV_ERR_DTYPE,
             "'bert.pooler.dense.bias' is int32");
    sd_free(&s);
    build_sd(&s, vars, NULL, false, AS_F32, false);
    replace_item(&s, "bert.pooler.dense.bias", "I8", 1, (int64_t[]){8}, 8);
    char *dir4 = write_model("i8", &s);
    GVT_NULL(gv_bert_from_pretrained(&m, dir4, gv_prng_key(0), NULL), GV_ERR_DTYPE,
             "bert.pooler.dense.bias");
    sd_free(&s);
    /* truncated: the file ends inside the data */
    build_sd(&s, vars, NULL, false, AS_F32, false);
    char *dir5 = write_model("trunc", &s), *file = NULL;
    cr_assert(asprintf(&file, "%s/model.safetensors", dir5) > 0);
    size_t len;
    char *bytes = gvt_read_file(file, &len);
    gvt_write_file(file, bytes, len - 100);
    GVT_NULL(gv_bert_from_pretrained(&m, dir5, gv_prng_key(0), NULL), GV_ERR_FORMAT,
             "model.safetensors");
    free(bytes), free(file);
    sd_free(&s);
    /* two tensors for one param (weight and gamma of the same LayerNorm) */
    build_sd(&s, vars, NULL, false, AS_F32, false);
    float *dup = calloc(8, 4);
    sd_add(&s, "bert.embeddings.LayerNorm.gamma", "F32", 1, (int64_t[]){8}, dup, 32);
    char *dir6 = write_model("dup", &s);
    GVT_NULL(gv_bert_from_pretrained(&m, dir6, gv_prng_key(0), NULL), GV_ERR_FORMAT,
             "embeddings/LayerNorm/scale");
    sd_free(&s);
    /* nothing of BERT in it */
    float *w = calloc(4, 4);
    sd_add(&s, "decoder.weight", "F32", 2, (int64_t[]){2, 2}, w, 16);
    char *dir7 = write_model("other", &s);
    GVT_NULL(gv_bert_from_pretrained(&m, dir7, gv_prng_key(0), NULL), GV_ERR_ARG,
             "not a BERT checkpoint");
    sd_free(&s);
    /* not a BERT module */
    gv_dense_cfg dc = gv_dense_defaults(2);
    gv_module dense = {&gv_Dense, &dc};
    GVT_NULL(gv_bert_from_pretrained(&dense, dir, gv_prng_key(0), NULL), GV_ERR_ARG, "Dense");
    gv_tree_free(vars);
    free(empty), free(nodir), free(dir), free(dir2), free(dir3), free(dir4), free(dir5),
        free(dir6), free(dir7);
}

Test(bert_loader, bad_calls_are_trace_errors) {
    gv_bert_config cfg = tiny_cfg();
    gv_module m = {&gv_BertForSequenceClassification, &cfg};
    gv_tree *vars = init_params(&m, 1);
    gv_tree *out = NULL;
    gv_tensor *ids1 = gv_tensor_zeros(GV_I32, 1, (int64_t[]){4});
    gv_tree *a1 = gv_args_tensors(&ids1, 1);
    GVT_FAILS(gv_apply_eager(&m, vars, a1, NULL, NULL, &out), GV_ERR_SHAPE, "[batch, length]");
    gv_tensor *long_ids = gv_tensor_zeros(GV_I32, 2, (int64_t[]){1, 17});
    gv_tree *a2 = gv_args_tensors(&long_ids, 1);
    GVT_FAILS(gv_apply_eager(&m, vars, a2, NULL, NULL, &out), GV_ERR_SHAPE,
              "max_position_embeddings 16");
    gv_tensor *fids = gv_tensor_zeros(GV_F32, 2, (int64_t[]){1, 4});
    gv_tree *a3 = gv_args_tensors(&fids, 1);
    GVT_FAILS(gv_apply_eager(&m, vars, a3, NULL, NULL, &out), GV_ERR_DTYPE, "input_ids");
    gv_tensor *ids = gv_tensor_zeros(GV_I32, 2, (int64_t[]){2, 4}),
              *mask = gv_tensor_zeros(GV_I32, 2, (int64_t[]){2, 3});
    gv_tree *a4 = gv_args_tensors((gv_tensor *[]){ids, mask}, 2);
    GVT_FAILS(gv_apply_eager(&m, vars, a4, NULL, NULL, &out), GV_ERR_SHAPE, "attention_mask");
    gv_bert_config bad = cfg;
    bad.num_attention_heads = 3;
    gv_module mb = {&gv_BertForSequenceClassification, &bad};
    gv_tree *a5 = gv_args_tensors(&ids, 1);
    GVT_FAILS(gv_apply_eager(&mb, vars, a5, NULL, NULL, &out), GV_ERR_ARG, "num_attention_heads");
    gv_tensor_free(ids1), gv_tensor_free(long_ids), gv_tensor_free(fids), gv_tensor_free(ids),
        gv_tensor_free(mask);
    gv_tree_free(a1), gv_tree_free(a2), gv_tree_free(a3), gv_tree_free(a4), gv_tree_free(a5);
    gv_tree_free(vars);
}

/* ---- parity with transformers (tests/golden/make_bert_golden.py) ---- */

TestSuite(bert_parity);

static gv_tree *golden_tree(const char *name) {
    char *p = gvt_golden_path(name);
    gv_tree *t = GVT_NN(gv_checkpointer_restore(p));
    free(p);
    return t;
}

/* max |a - b| over all elements, and max |a| (a the reference) */
static double max_diff(const gv_tensor *a, const gv_tensor *b, double *amax) {
    cr_assert_eq(gv_tensor_size(a), gv_tensor_size(b));
    const float *x = gv_tensor_data_const(a), *y = gv_tensor_data_const(b);
    double d = 0, m = 0;
    for (int64_t i = 0; i < gv_tensor_size(a); i++) {
        double e = fabs((double)x[i] - (double)y[i]);
        if (!(e <= d)) d = e; /* NaN counts as the largest */
        if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    }
    if (amax) *amax = m;
    return d;
}

static void expect_close(const char *what, const gv_tensor *want, const gv_tensor *got,
                         double tol) {
    cr_assert_not_null(got, "%s: no output", what);
    cr_assert_eq(gv_tensor_rank(want), gv_tensor_rank(got), "%s: rank", what);
    for (int d = 0; d < gv_tensor_rank(want); d++)
        cr_assert_eq(gv_tensor_shape(want)[d], gv_tensor_shape(got)[d], "%s: dim %d", what, d);
    double amax, d = max_diff(want, got, &amax);
    cr_log_info("%s: max |diff| %.3g (max |ref| %.3g, tolerance %.3g)", what, d, amax, tol);
    cr_assert(d <= tol, "%s: max |diff| %.3g over the tolerance %.3g (max |ref| %.3g)", what, d,
              tol, amax);
}

static char *tiny_dir(void) { return gvt_golden_path("tiny-bert"); }

static gv_tree *variables_of(const gv_tree *params) {
    gv_tree *v = gv_tree_new_dict();
    GVT_OK(gv_tree_insert(v, "params", gv_tree_copy(params)));
    return v;
}

Test(bert_parity, tiny_params_are_transformers_own_conversion) {
    char *dir = tiny_dir();
    gv_bert_config cfg;
    GVT_OK(gv_bert_config_load(dir, &cfg));
    cr_assert_eq(cfg.num_labels, 3);
    gv_module m = {&gv_BertForSequenceClassification, &cfg};
    gv_load_report r;
    gv_tree *vars = GVT_NN(gv_bert_from_pretrained(&m, dir, gv_prng_key(0), &r));
    gv_tree *g = golden_tree("bert_tiny_golden.safetensors");
    const gv_tree *want = gv_tree_get(g, "params");
    expect_same(want, gv_tree_get(vars, "params"));
    expect_same(gv_tree_get(vars, "params"), want);
    cr_assert_eq(r.ninitialized, 0);
    cr_assert_eq(r.nunused, 2, "transformers drops position_ids and cls.predictions.bias");
    cr_assert(listed(r.unused, r.nunused, "bert.embeddings.position_ids"));
    cr_assert(listed(r.unused, r.nunused, "cls.predictions.bias"));
    gv_load_report_free(&r);
    gv_tree_free(vars), gv_tree_free(g);
    free(dir);
}

/* The same tiny model saved by transformers' Flax save_pretrained
 * (tests/golden/tiny-bert-flax/flax_model.msgpack, made by
 * tests/interop/hf_flax_msgpack.py --head): the Flax tree itself, read
 * through serialization.h, gives the params the safetensors file gives, bit
 * for bit, so the logits are equal; and into the bare BertModel the
 * classifier is reported unused, as from model.safetensors. */
Test(bert_parity, tiny_flax_msgpack_loads_as_safetensors_does) {
    char *dir = tiny_dir(), *fdir = gvt_golden_path("tiny-bert-flax");
    gv_bert_config cfg;
    GVT_OK(gv_bert_config_load(fdir, &cfg));
    gv_module m = {&gv_BertForSequenceClassification, &cfg};
    gv_load_report r;
    gv_tree *from_st = GVT_NN(gv_bert_from_pretrained(&m, dir, gv_prng_key(0), NULL));
    gv_tree *from_mp = GVT_NN(gv_bert_from_pretrained(&m, fdir, gv_prng_key(1), &r));
    expect_same(gv_tree_get(from_st, "params"), gv_tree_get(from_mp, "params"));
    expect_same(gv_tree_get(from_mp, "params"), gv_tree_get(from_st, "params"));
    cr_assert_eq(r.ninitialized, 0, "every param, the head included, comes from the file");
    cr_assert_eq(r.nunused, 0);
    cr_assert_eq(r.nloaded, gv_tree_num_leaves(gv_tree_get(from_mp, "params")));
    gv_load_report_free(&r);
    gv_tree *g = golden_tree("bert_tiny_golden.safetensors");
    gv_tensor *ids = gv_tree_get_tensor(g, "inputs/input_ids"), *mask = gv_tree_get_tensor(g, "inputs/attention_mask");
    gv_tree *args = gv_args_tensors((gv_tensor *[]){ids, mask}, 2), *a = NULL, *b = NULL;
    GVT_OK(gv_apply_eager(&m, from_st, args, NULL, NULL, &a));
    GVT_OK(gv_apply_eager(&m, from_mp, args, NULL, NULL, &b));
    expect_same(a, b);
    gv_tree_free(a), gv_tree_free(b), gv_tree_free(args), gv_tree_free(g);
    /* the bare model takes bert/... and reports the classifier unused */
    gv_module base = {&gv_BertModel, &cfg};
    gv_tree *bare = GVT_NN(gv_bert_from_pretrained(&base, fdir, gv_prng_key(0), &r));
    expect_same(gv_tree_get(bare, "params"), gv_tree_get(from_st, "params/bert"));
    cr_assert(listed(r.unused, r.nunused, "classifier.kernel"), "unused: %zu", r.nunused);
    gv_load_report_free(&r);
    gv_tree_free(bare), gv_tree_free(from_mp), gv_tree_free(from_st);
    /* a flax_model.msgpack cut short is an error naming it */
    gvt_tmpdir_make("bert-flax");
    char *src = gvt_golden_path("tiny-bert-flax/flax_model.msgpack"), *dst = gvt_tmp_path("flax_model.msgpack");
    size_t n;
    char *bytes = gvt_read_file(src, &n);
    gvt_write_file(dst, bytes, n / 2);
    cr_assert_null(gv_bert_from_pretrained(&m, gvt_tmpdir, gv_prng_key(0), NULL));
    cr_assert_eq(gv_last_status(), GV_ERR_FORMAT);
    cr_assert(strstr(gv_last_error(), "flax_model.msgpack") && strstr(gv_last_error(), "truncated"),
              "%s", gv_last_error());
    gvt_tmpdir_remove();
    free(bytes), free(dst), free(src);
    free(fdir), free(dir);
}

typedef struct tiny {
    gv_bert_config cfg;
    gv_tree *golden, *vars;
    gv_tensor *ids, *mask, *types, *pos, *labels;
} tiny;

static void tiny_load(tiny *t) {
    char *dir = tiny_dir();
    GVT_OK(gv_bert_config_load(dir, &t->cfg));
    free(dir);
    t->golden = golden_tree("bert_tiny_golden.safetensors");
    t->vars = variables_of(gv_tree_get(t->golden, "params"));
    t->ids = gv_tree_get_tensor(t->golden, "inputs/input_ids");
    t->mask = gv_tree_get_tensor(t->golden, "inputs/attention_mask");
    t->types = gv_tree_get_tensor(t->golden, "inputs/token_type_ids");
    t->pos = gv_tree_get_tensor(t->golden, "inputs/position_ids");
    t->labels = gv_tree_get_tensor(t->golden, "inputs/labels");
    cr_assert(t->ids && t->mask && t->types && t->pos && t->labels);
}

static void tiny_free(tiny *t) { gv_tree_free(t->golden), gv_tree_free(t->vars); }

/* Measured on the machine the golden files were made on (x86-64, AVX-512):
 * hidden states 8.3e-7 of values up to 3.0, pooler and logits 3.6e-7,
 * training logits (dropout) 2.4e-7, gradients at most 2.1e-7. */
#define TINY_TOL 1e-5

Test(bert_parity, tiny_outputs) {
    tiny t;
    tiny_load(&t);
    gv_module base = {&gv_BertModel, &t.cfg}, cls = {&gv_BertForSequenceClassification, &t.cfg};
    gv_tree *bvars = variables_of(gv_tree_get(t.golden, "params/bert"));
    gv_tree *args = gv_args_tensors((gv_tensor *[]){t.ids, t.mask, t.types, t.pos}, 4), *out;
    GVT_OK(gv_apply_eager(&base, bvars, args, NULL, NULL, &out));
    expect_close("last_hidden_state", gv_tree_get_tensor(t.golden, "outputs/last_hidden_state"),
                 gv_tree_get_tensor(out, "0"), TINY_TOL);
    expect_close("pooler_output", gv_tree_get_tensor(t.golden, "outputs/pooler_output"),
                 gv_tree_get_tensor(out, "1"), TINY_TOL);
    gv_tree_free(out);
    GVT_OK(gv_apply_eager(&cls, t.vars, args, NULL, NULL, &out));
    expect_close("logits", gv_tree_get_tensor(t.golden, "outputs/logits"),
                 gv_tree_leaf_tensor(out), TINY_TOL);
    gv_tree_free(out), gv_tree_free(args);
    /* token_type_ids and position_ids default to zeros and arange; the mask to ones */
    gv_tree *a3 = gv_args_tensors((gv_tensor *[]){t.ids, t.mask, t.types}, 3);
    GVT_OK(gv_apply_eager(&cls, t.vars, a3, NULL, NULL, &out));
    expect_close("logits, position_ids omitted", gv_tree_get_tensor(t.golden, "outputs/logits"),
                 gv_tree_leaf_tensor(out), TINY_TOL);
    gv_tree_free(out);
    gv_tree *a1 = gv_args_tensors(&t.ids, 1);
    GVT_OK(gv_apply_eager(&cls, t.vars, a1, NULL, NULL, &out));
    expect_close("logits, only input_ids", gv_tree_get_tensor(t.golden, "outputs_defaults/logits"),
                 gv_tree_leaf_tensor(out), TINY_TOL);
    gv_tree_free(out), gv_tree_free(a3), gv_tree_free(a1), gv_tree_free(bvars);
    tiny_free(&t);
}

/* Dropout in training: the same make_rng('dropout') keys as transformers'
 * modules (embeddings, attention weights, both outputs, the classifier), so
 * the same masks; a wrong mask moves the logits by whole values. */
Test(bert_parity, tiny_dropout_logits) {
    tiny t;
    tiny_load(&t);
    gv_module cls = {&gv_BertForSequenceClassification, &t.cfg};
    gv_tree *args = gv_args_tensors((gv_tensor *[]){t.ids, t.mask, t.types, t.pos}, 4), *out;
    gv_key k = gv_prng_key(7);
    gv_tensor *kt = gv_tensor_from_data(GV_U32, GV_DIMS(2), k.k, sizeof k.k);
    gv_tree *rngs = gv_pack(NULL, "{dropout}", kt);
    GVT_OK(gv_apply_eager(&cls, t.vars, args, rngs, &(gv_module_options){.train = true}, &out));
    expect_close("train logits", gv_tree_get_tensor(t.golden, "train/logits"),
                 gv_tree_leaf_tensor(out), TINY_TOL);
    gv_tree_free(out), gv_tree_free(args), gv_tree_free(rngs);
    gv_tensor_free(kt);
    tiny_free(&t);
}

typedef struct grad_ctx {
    gv_module m;
} grad_ctx;

static gv_tree *tiny_loss(gv_graph *g, const gv_tree *in, void *ud) {
    const grad_ctx *c = ud;
    const gv_tree *params;
    gv_value ids, mask, types, pos, labels;
    gv_unpack(in, "(params, ids, mask, types, pos, labels)", &params, &ids, &mask, &types, &pos,
              &labels);
    gv_tree *out = gv_apply(g, &c->m, gv_pack(g, "{params}", params),
                            gv_tuple(g, ids, mask, types, pos), NULL, NULL);
    gv_value logits = gv_tree_leaf_value(out);
    gv_value xent = gv_softmax_cross_entropy_with_integer_labels(logits, labels, -1);
    return gv_pack(g, "loss", gv_mean(xent, NULL, 0, false));
}

static gv_tree *tiny_grad_step(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value loss;
    const gv_tree *grads;
    gv_unpack(gv_value_and_grad_call(g, tiny_loss, ud, in, 0, false), "(loss, grads)", &loss,
              &grads);
    return gv_pack(g, "(loss, grads)", loss, grads);
}

static gv_status grad_close(const char *path, const gv_tree *leaf, void *ud) {
    const gv_tree *got = ud;
    char what[256];
    snprintf(what, sizeof what, "grad %s", path);
    expect_close(what, gv_tree_leaf_tensor(leaf), gv_tree_get_tensor(got, path), 2e-6);
    return GV_OK;
}

Test(bert_parity, tiny_gradients) {
    tiny t;
    tiny_load(&t);
    grad_ctx c = {{&gv_BertForSequenceClassification, &t.cfg}};
    gv_jit *j = gv_jit_new(tiny_grad_step, &c, NULL);
    gv_tree *in = gv_pack(NULL, "(params, ids, mask, types, pos, labels)",
                          gv_tree_get(t.golden, "params"), t.ids, t.mask, t.types, t.pos,
                          t.labels),
            *out;
    GVT_OK(gv_jit_call(j, in, &out));
    gv_tensor *loss;
    gv_tree *grads;
    gv_unpack(out, "(loss, grads)", &loss, &grads);
    expect_close("loss", gv_tree_get_tensor(t.golden, "outputs/loss"), loss, TINY_TOL);
    GVT_OK(gv_tree_foreach_leaf(gv_tree_get(t.golden, "grads"), grad_close, grads));
    cr_assert_eq(gv_tree_num_leaves(grads), gv_tree_num_leaves(gv_tree_get(t.golden, "grads")));
    gv_tree_free(in), gv_jit_free(j);
    tiny_free(&t);
}

/* ---- the pretrained all-MiniLM-L6-v2 ---- */

static char *minilm_dir(void) {
    const char *env = getenv("GROVE_BERT_DIR");
    char *dir = NULL;
    if (env && *env) dir = strdup(env);
    else if (getenv("HOME") && asprintf(&dir, "%s/.cache/grove/all-MiniLM-L6-v2", getenv("HOME")) < 0)
        dir = NULL;
    char *f = NULL;
    struct stat sb;
    if (!dir || asprintf(&f, "%s/model.safetensors", dir) < 0 || stat(f, &sb) != 0) {
        free(f), free(dir);
        return NULL;
    }
    free(f);
    return dir;
}

#define SKIP_WITHOUT_MINILM(dir)                                                               \
    char *dir = minilm_dir();                                                                  \
    if (!dir)                                                                                  \
        cr_skip_test("all-MiniLM-L6-v2 not found: run scripts/fetch-bert.sh and set "         \
                     "GROVE_BERT_DIR to the directory it prints")

/* Measured on the machine the golden files were made on: hidden states
 * 2.1e-5 of values up to 6.06 (3.5e-6 relative: grove's GEMMs and XLA's add
 * in other orders, over 6 layers of 384-wide sums), pooler output and
 * logits 1.2e-7. */
#define MINILM_HIDDEN_TOL 5e-5
#define MINILM_TOL 1e-5

Test(bert_parity, minilm_hidden_states_and_pooler) {
    SKIP_WITHOUT_MINILM(dir);
    gv_bert_config cfg;
    GVT_OK(gv_bert_config_load(dir, &cfg));
    gv_module base = {&gv_BertModel, &cfg};
    gv_load_report r;
    gv_tree *vars = GVT_NN(gv_bert_from_pretrained(&base, dir, gv_prng_key(0), &r));
    cr_assert_eq(r.nloaded, 103, "%zu loaded", r.nloaded); /* 6 layers x 16, 5 embeddings, 2 pooler */
    cr_assert_eq(r.ninitialized, 0);
    cr_assert_eq(r.nunused, 1);
    gv_load_report_free(&r);
    gv_tree *g = golden_tree("bert_minilm_golden.safetensors");
    gv_tree *args = gv_args_tensors((gv_tensor *[]){gv_tree_get_tensor(g, "inputs/input_ids"),
                                                    gv_tree_get_tensor(g, "inputs/attention_mask"),
                                                    gv_tree_get_tensor(g, "inputs/token_type_ids")},
                                    3),
            *out;
    GVT_OK(gv_apply_eager(&base, vars, args, NULL, NULL, &out));
    expect_close("MiniLM last_hidden_state", gv_tree_get_tensor(g, "outputs/last_hidden_state"),
                 gv_tree_get_tensor(out, "0"), MINILM_HIDDEN_TOL);
    expect_close("MiniLM pooler_output", gv_tree_get_tensor(g, "outputs/pooler_output"),
                 gv_tree_get_tensor(out, "1"), MINILM_TOL);
    gv_tree_free(out), gv_tree_free(args), gv_tree_free(vars), gv_tree_free(g);
    free(dir);
}

/* from_pretrained(dir, num_labels=2, seed=0): transformers draws the head
 * it adds with module.init({'params': split(PRNGKey(0))[0], ...}); grove's
 * init with that key gives the same numbers. */
Test(bert_parity, minilm_new_head_as_transformers_draws_it) {
    SKIP_WITHOUT_MINILM(dir);
    gv_bert_config cfg;
    GVT_OK(gv_bert_config_load(dir, &cfg));
    cfg.num_labels = 2;
    gv_module cls = {&gv_BertForSequenceClassification, &cfg};
    gv_key params_rng, dropout_rng;
    gv_random_split2_eager(GV_PRNG_DEFAULT, gv_prng_key(0), &params_rng, &dropout_rng);
    gv_load_report r;
    gv_tree *vars = GVT_NN(gv_bert_from_pretrained(&cls, dir, params_rng, &r));
    cr_assert_eq(r.nloaded, 103);
    cr_assert_eq(r.ninitialized, 2);
    gv_load_report_free(&r);
    gv_tree *g = golden_tree("bert_minilm_golden.safetensors");
    gv_tree *head = gv_tree_new_dict();
    GVT_OK(gv_tree_insert(head, "classifier", gv_tree_copy(gv_tree_get(g, "init/classifier"))));
    gv_tree *want = variables_of(head);
    gv_tree *mine = gv_tree_new_dict();
    GVT_OK(gv_tree_insert(mine, "params/classifier",
                          gv_tree_copy(gv_tree_get(vars, "params/classifier"))));
    expect_same(want, mine);
    gv_tree *args = gv_args_tensors((gv_tensor *[]){gv_tree_get_tensor(g, "inputs/input_ids"),
                                                    gv_tree_get_tensor(g, "inputs/attention_mask"),
                                                    gv_tree_get_tensor(g, "inputs/token_type_ids")},
                                    3),
            *out;
    GVT_OK(gv_apply_eager(&cls, vars, args, NULL, NULL, &out));
    expect_close("MiniLM logits (seed 0 head)", gv_tree_get_tensor(g, "outputs/logits_seed0"),
                 gv_tree_leaf_tensor(out), MINILM_TOL);
    gv_tree_free(out), gv_tree_free(args), gv_tree_free(vars), gv_tree_free(g),
        gv_tree_free(head), gv_tree_free(want), gv_tree_free(mine);
    free(dir);
}

/* Each config field the forward pass reads changes its output (the golden
 * files fix one value of each: a field read from the wrong place, or a
 * default used in its stead, would pass them at 1e-12 but not here). */
Test(bert_parity, config_fields_reach_the_forward_pass) {
    tiny t;
    tiny_load(&t);
    gv_tree *args = gv_args_tensors((gv_tensor *[]){t.ids, t.mask, t.types}, 3);
    gv_key k = gv_prng_key(7);
    gv_tensor *kt = gv_tensor_from_data(GV_U32, GV_DIMS(2), k.k, sizeof k.k);
    gv_tree *rngs = gv_pack(NULL, "{dropout}", kt);
    gv_tree *base_out = NULL;
    gv_module m = {&gv_BertForSequenceClassification, &t.cfg};
    GVT_OK(gv_apply_eager(&m, t.vars, args, rngs, &(gv_module_options){.train = true}, &base_out));
    const gv_tensor *base = gv_tree_leaf_tensor(base_out);
    struct {
        const char *what;
        gv_bert_config c;
    } cases[6];
    for (int i = 0; i < 6; i++) cases[i].c = t.cfg;
    cases[0].what = "layer_norm_eps 0.5", cases[0].c.layer_norm_eps = 0.5;
    cases[1].what = "hidden_act gelu_new", cases[1].c.hidden_act = GV_BERT_GELU_NEW;
    cases[2].what = "hidden_act relu", cases[2].c.hidden_act = GV_BERT_RELU;
    cases[3].what = "hidden_dropout_prob 0.3", cases[3].c.hidden_dropout_prob = 0.3;
    cases[4].what = "attention_probs_dropout_prob 0", cases[4].c.attention_probs_dropout_prob = 0;
    cases[5].what = "classifier_dropout 0", cases[5].c.classifier_dropout = 0;
    for (int i = 0; i < 6; i++) {
        gv_module mi = {&gv_BertForSequenceClassification, &cases[i].c};
        gv_tree *out = NULL;
        GVT_OK(gv_apply_eager(&mi, t.vars, args, rngs, &(gv_module_options){.train = true}, &out));
        double d = max_diff(base, gv_tree_leaf_tensor(out), NULL);
        cr_assert_gt(d, 1e-4, "%s: the logits moved by %.3g only", cases[i].what, d);
        gv_tree_free(out);
    }
    gv_tree_free(base_out), gv_tree_free(args), gv_tree_free(rngs);
    gv_tensor_free(kt);
    tiny_free(&t);
}
