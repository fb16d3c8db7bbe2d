/* Loading a Hugging Face BERT directory (include/grove/bert.h): config.json
 * into a gv_bert_config, and model.safetensors (PyTorch state-dict names)
 * into the Flax params tree, as transformers' own PyTorch-to-Flax
 * conversion (convert_pytorch_state_dict_to_flax) maps them (a directory
 * with flax_model.msgpack instead holds the Flax tree itself, read with
 * serialization.h and matched path for path):
 *
 *   "encoder.layer.0.attention.self.query.weight" [out, in]
 *       -> encoder/layer/0/attention/self/query/kernel [in, out] (transposed)
 *   "...LayerNorm.weight" / ".gamma" -> .../LayerNorm/scale
 *   "...LayerNorm.bias" / ".beta"    -> .../LayerNorm/bias
 *   "embeddings.word_embeddings.weight" -> .../word_embeddings/embedding
 *
 * which of kernel, scale or embedding a ".weight" becomes is decided by the
 * model's own tree, as transformers decides it from its random params. A
 * checkpoint of the bare BertModel loads into BertForSequenceClassification
 * ("bert." prefixed) and the other way round ("bert." dropped). */
#define _GNU_SOURCE
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint/format_internal.h"
#include "core/error.h"
#include "graph/graph_internal.h"
#include "grove/bert.h"
#include "grove/serialization.h"
#include "pretrained_internal.h"

/* ---- config.json ---- */

#define CONFIG_MAX_BYTES (1u << 20)

static char *read_small_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        int err = errno;
        gv_error(err == ENOENT ? GV_ERR_NOT_FOUND : GV_ERR_IO, "cannot open '%s': %s", path,
                 strerror(err));
        return NULL;
    }
    char *buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        gv_error(GV_ERR_NOMEM, "out of memory reading '%s'", path);
        return NULL;
    }
    size_t n = fread(buf, 1, max + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        gv_error(GV_ERR_IO, "read error in '%s'", path);
        return NULL;
    }
    if (n > max) {
        free(buf);
        gv_error(GV_ERR_FORMAT, "'%s' is larger than %zu bytes: not a config file", path, max);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static char *join_path(const char *dir, const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) {
        gv_error(GV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return p;
}

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* An integer key: absent leaves *out alone. */
static gv_status get_int(json_object *o, const char *file, const char *key, bool nullable,
                         int64_t *out) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return GV_OK;
    if (!v && nullable) return GV_OK;
    if (!json_object_is_type(v, json_type_int))
        return gv_error(GV_ERR_FORMAT, "'%s': \"%s\" must be an integer", file, key);
    *out = json_object_get_int64(v);
    return GV_OK;
}

/* A number key; null gives null_value when nullable. */
static gv_status get_num(json_object *o, const char *file, const char *key, bool nullable,
                         double null_value, double *out) {
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v)) return GV_OK;
    if (!v && nullable) {
        *out = null_value;
        return GV_OK;
    }
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return gv_error(GV_ERR_FORMAT, "'%s': \"%s\" must be a number", file, key);
    *out = json_object_get_double(v);
    return GV_OK;
}

static const char *get_str(json_object *o, const char *key, bool *wrong_type) {
    json_object *v;
    *wrong_type = false;
    if (!json_object_object_get_ex(o, key, &v)) return NULL;
    if (!json_object_is_type(v, json_type_string)) {
        *wrong_type = true;
        return NULL;
    }
    return json_object_get_string(v);
}

static const struct {
    const char *name;
    gv_bert_activation act;
} activations[] = {{"gelu", GV_BERT_GELU},         {"gelu_new", GV_BERT_GELU_NEW},
                   {"gelu_pytorch_tanh", GV_BERT_GELU_NEW}, {"relu", GV_BERT_RELU},
                   {"silu", GV_BERT_SILU},         {"swish", GV_BERT_SILU},
                   {"tanh", GV_BERT_TANH}};

static gv_status parse_config(json_object *o, const char *file, gv_bert_config *c) {
    if (!json_object_is_type(o, json_type_object))
        return gv_error(GV_ERR_FORMAT, "'%s': not a JSON object", file);
    bool wrong;
    const char *type = get_str(o, "model_type", &wrong);
    if (wrong) return gv_error(GV_ERR_FORMAT, "'%s': \"model_type\" must be a string", file);
    if (type && strcmp(type, "bert") != 0)
        return gv_error(GV_ERR_UNSUPPORTED, "'%s': \"model_type\" is \"%.64s\"; grove's BERT "
                        "reads \"bert\"", file, type);
    const char *pos = get_str(o, "position_embedding_type", &wrong);
    if (wrong)
        return gv_error(GV_ERR_FORMAT, "'%s': \"position_embedding_type\" must be a string", file);
    if (pos && strcmp(pos, "absolute") != 0)
        return gv_error(GV_ERR_UNSUPPORTED, "'%s': \"position_embedding_type\" is \"%.64s\"; "
                        "only \"absolute\" is supported", file, pos);
    const char *act = get_str(o, "hidden_act", &wrong);
    if (wrong) return gv_error(GV_ERR_FORMAT, "'%s': \"hidden_act\" must be a string", file);
    if (act) {
        size_t i = 0, n = sizeof activations / sizeof *activations;
        while (i < n && strcmp(activations[i].name, act) != 0) i++;
        if (i == n)
            return gv_error(GV_ERR_UNSUPPORTED, "'%s': unknown \"hidden_act\" \"%.64s\" (grove "
                            "has gelu, gelu_new, gelu_pytorch_tanh, relu, silu, swish, tanh)",
                            file, act);
        c->hidden_act = activations[i].act;
    }
    gv_status st;
    const struct {
        const char *key;
        int64_t *v;
        bool nullable;
    } ints[] = {{"vocab_size", &c->vocab_size, false},
                {"hidden_size", &c->hidden_size, false},
                {"num_hidden_layers", &c->num_hidden_layers, false},
                {"num_attention_heads", &c->num_attention_heads, false},
                {"intermediate_size", &c->intermediate_size, false},
                {"max_position_embeddings", &c->max_position_embeddings, false},
                {"type_vocab_size", &c->type_vocab_size, false},
                {"pad_token_id", &c->pad_token_id, true},
                {"num_labels", &c->num_labels, false}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if ((st = get_int(o, file, ints[i].key, ints[i].nullable, ints[i].v))) return st;
    json_object *labels;
    if (json_object_object_get_ex(o, "id2label", &labels) && labels) {
        if (!json_object_is_type(labels, json_type_object))
            return gv_error(GV_ERR_FORMAT, "'%s': \"id2label\" must be an object", file);
        c->num_labels = json_object_object_length(labels);
    }
    const struct {
        const char *key;
        double *v;
        bool nullable;
        double null_value;
    } nums[] = {{"hidden_dropout_prob", &c->hidden_dropout_prob, false, 0},
                {"attention_probs_dropout_prob", &c->attention_probs_dropout_prob, false, 0},
                {"initializer_range", &c->initializer_range, false, 0},
                {"layer_norm_eps", &c->layer_norm_eps, false, 0},
                {"classifier_dropout", &c->classifier_dropout, true, -1.0}};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        if ((st = get_num(o, file, nums[i].key, nums[i].nullable, nums[i].null_value, nums[i].v)))
            return st;
    if (gv_bert_config_check(c) != GV_OK)
        return gv_error(GV_ERR_FORMAT, "'%s': %s", file, gv_last_error());
    return GV_OK;
}

gv_status gv_bert_config_parse(const char *text, size_t len, const char *file,
                               gv_bert_config *out) {
    json_object *o = gv_parse_json(text, len, GV_HF_CONFIG_JSON_DEPTH, file, "config", 0);
    if (!o) return gv_last_status();
    gv_bert_config c = gv_bert_config_defaults();
    gv_status st = parse_config(o, file, &c);
    json_object_put(o);
    if (st == GV_OK) *out = c;
    return st;
}

gv_status gv_bert_config_load(const char *path, gv_bert_config *out) {
    if (!path || !out) return gv_error(GV_ERR_ARG, "gv_bert_config_load: %s is NULL",
                                       !path ? "path" : "out");
    char *file = is_dir(path) ? join_path(path, "config.json") : strdup(path);
    if (!file) return gv_error(GV_ERR_NOMEM, "out of memory");
    size_t len;
    char *text = read_small_file(file, CONFIG_MAX_BYTES, &len);
    gv_status st = text ? gv_bert_config_parse(text, len, file, out) : gv_last_status();
    free(text);
    free(file);
    return st;
}

/* ---- the load report ---- */

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static bool strlist_add(strlist *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v, l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return false;
    l->n++;
    return true;
}

static void strlist_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    *l = (strlist){0};
}

void gv_load_report_free(gv_load_report *r) {
    if (!r) return;
    strlist a = {r->loaded, r->nloaded, 0}, b = {r->initialized, r->ninitialized, 0},
            c = {r->unused, r->nunused, 0};
    strlist_free(&a), strlist_free(&b), strlist_free(&c);
    *r = (gv_load_report){0};
}

static void print_list(FILE *f, char *const *v, size_t n) {
    fputc('[', f);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s'%s'", i ? ", " : "", v[i]);
    fputs("]\n", f);
}

void gv_load_report_print(const gv_load_report *r, FILE *f) {
    if (!r || !f) return;
    fprintf(f, "loaded %zu params from the checkpoint", r->nloaded);
    if (r->nconverted) fprintf(f, " (%zu converted to float32)", r->nconverted);
    fputc('\n', f);
    if (r->nunused) {
        fprintf(f, "Some weights of the model checkpoint were not used (%zu): ", r->nunused);
        print_list(f, r->unused, r->nunused);
    }
    if (r->ninitialized) {
        fprintf(f, "Some weights were not initialized from the model checkpoint and are newly "
                "initialized (%zu): ", r->ninitialized);
        print_list(f, r->initialized, r->ninitialized);
        fputs("You should probably TRAIN this model on a down-stream task to be able to use it "
              "for predictions and inference.\n", f);
    } else {
        fputs("All the weights of the model were initialized from the model checkpoint.\n", f);
    }
}

/* ---- the state dict -> the Flax tree ---- */

typedef struct leaf_list {
    char **paths;
    gv_tensor **tensors;
    size_t n, cap;
} leaf_list;

static gv_status collect_leaf(const char *path, const gv_tree *leaf, void *ud) {
    leaf_list *l = ud;
    gv_tensor *t = gv_tree_leaf_tensor(leaf);
    if (!t) return GV_OK; /* a label leaf: nothing to load */
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->paths, cap * sizeof *p);
        if (!p) return GV_ERR_NOMEM;
        l->paths = p;
        gv_tensor **ts = realloc(l->tensors, cap * sizeof *ts);
        if (!ts) return GV_ERR_NOMEM;
        l->tensors = ts;
        l->cap = cap;
    }
    if (!(l->paths[l->n] = strdup(path))) return GV_ERR_NOMEM;
    l->tensors[l->n++] = gv_tensor_retain(t); /* kept while the tree's leaf is replaced */
    return GV_OK;
}

static void leaf_list_free(leaf_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->paths[i]), gv_tensor_free(l->tensors[i]);
    free(l->paths);
    free(l->tensors);
}

static int find_path(const leaf_list *l, const char *path) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->paths[i], path) == 0) return (int)i;
    return -1;
}

/* "a.b.0.weight" with the prefix rule applied -> "a/b/0/weight" (malloc'd). */
static char *flax_path_of(const char *name, int prefix_rule) {
    const char *n = name;
    char *p = NULL;
    if (prefix_rule < 0) {
        if (strncmp(n, "bert.", 5) == 0) n += 5;
        p = strdup(n);
    } else if (prefix_rule > 0) {
        if (asprintf(&p, "bert.%s", n) < 0) p = NULL;
    } else {
        p = strdup(n);
    }
    if (!p) return NULL;
    for (char *c = p; *c; c++)
        if (*c == '.') *c = '/';
    return p;
}

static char *shape_text(const gv_tensor *t) {
    return gv_shape_str(gv_tensor_rank(t), gv_tensor_shape(t));
}

/* The checkpoint tensor as the param: transposed for a kernel, float32. */
static gv_tensor *as_param(const gv_tensor *src, bool transpose) {
    gv_tensor *f = gv_tensor_dtype(src) == GV_F32 ? gv_tensor_retain((gv_tensor *)src)
                                                  : gv_tensor_cast(src, GV_F32);
    if (!f || !transpose) return f;
    const int64_t *s = gv_tensor_shape(f);
    int64_t rows = s[0], cols = s[1];
    gv_tensor *t = gv_tensor_zeros(GV_F32, 2, (int64_t[]){cols, rows});
    if (t) {
        const float *a = gv_tensor_data_const(f);
        float *b = gv_tensor_data(t);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) b[j * rows + i] = a[i * cols + j];
    }
    gv_tensor_free(f);
    return t;
}

static bool same_shape(const gv_tensor *a, int rank, const int64_t *shape) {
    if (gv_tensor_rank(a) != rank) return false;
    for (int i = 0; i < rank; i++)
        if (gv_tensor_shape(a)[i] != shape[i]) return false;
    return true;
}

typedef struct loader {
    const char *file;
    gv_tree *params;     /* the initialised params (modified in place) */
    leaf_list target;    /* their paths */
    bool *loaded;        /* per target leaf */
    strlist unused;
    size_t nloaded;
} loader;

static gv_status load_one(loader *L, const char *name, const gv_tensor *t, int prefix_rule) {
    char *base = flax_path_of(name, prefix_rule);
    if (!base) return gv_error(GV_ERR_NOMEM, "out of memory");
    char *slash = strrchr(base, '/');
    const char *last = slash ? slash + 1 : base;
    size_t stem_len = slash ? (size_t)(slash - base) : 0;
    /* candidates: (flax leaf name, transposed) in transformers' order */
    struct {
        const char *leaf;
        bool transpose;
    } cand[3];
    int nc = 0;
    if (strcmp(last, "weight") == 0 || strcmp(last, "gamma") == 0) {
        cand[nc++] = (typeof(cand[0])){"scale", false};
        if (strcmp(last, "weight") == 0) {
            cand[nc++] = (typeof(cand[0])){"embedding", false};
            cand[nc++] = (typeof(cand[0])){"kernel", true};
        }
    } else if (strcmp(last, "bias") == 0 || strcmp(last, "beta") == 0) {
        cand[nc++] = (typeof(cand[0])){"bias", false};
    }
    int hit = -1;
    bool transpose = false;
    char *path = NULL;
    for (int i = 0; i < nc && hit < 0; i++) {
        free(path);
        if (asprintf(&path, "%.*s%s%s", (int)stem_len, base, stem_len ? "/" : "", cand[i].leaf) < 0) {
            path = NULL;
            free(base);
            return gv_error(GV_ERR_NOMEM, "out of memory");
        }
        hit = find_path(&L->target, path);
        transpose = cand[i].transpose;
    }
    if (hit < 0 && nc == 0) { /* a name that is already the Flax leaf's */
        free(path);
        path = strdup(base);
        if (!path) return free(base), gv_error(GV_ERR_NOMEM, "out of memory");
        hit = find_path(&L->target, path);
    }
    free(base);
    gv_status st = GV_OK;
    if (hit < 0) {
        st = strlist_add(&L->unused, name) ? GV_OK : gv_error(GV_ERR_NOMEM, "out of memory");
        free(path);
        return st;
    }
    const gv_tensor *want = L->target.tensors[hit];
    gv_dtype d = gv_tensor_dtype(t);
    if (d != GV_F32 && d != GV_F64) {
        st = gv_error(GV_ERR_DTYPE, "'%s': tensor '%s' is %s; the param %s is float32 and grove "
                      "converts only floating-point tensors", L->file, name, gv_dtype_name(d),
                      path);
        free(path);
        return st;
    }
    if (transpose && gv_tensor_rank(t) != 2) transpose = false; /* the shape check reports it */
    int64_t expect[8];
    int rank = gv_tensor_rank(want);
    for (int i = 0; i < rank && i < 8; i++)
        expect[i] = transpose ? gv_tensor_shape(want)[rank - 1 - i] : gv_tensor_shape(want)[i];
    if (rank > 8 || !same_shape(t, rank, expect)) {
        char *a = shape_text(t), *b = gv_shape_str(rank, expect), *c = shape_text(want);
        st = gv_error(GV_ERR_SHAPE, "'%s': tensor '%s' has shape %s, but the model's config "
                      "expects %s for it (param %s %s%s)", L->file, name, a ? a : "?",
                      b ? b : "?", path, c ? c : "?",
                      transpose ? ", stored transposed as PyTorch's Linear weight" : "");
        free(a), free(b), free(c), free(path);
        return st;
    }
    if (L->loaded[hit]) {
        st = gv_error(GV_ERR_FORMAT, "'%s': tensor '%s' maps to %s, which another tensor of the "
                      "file already gave", L->file, name, path);
        free(path);
        return st;
    }
    gv_tensor *v = as_param(t, transpose);
    if (!v) {
        free(path);
        return gv_last_status() ? gv_last_status() : GV_ERR_NOMEM;
    }
    st = gv_tree_set(L->params, path, gv_tree_new_leaf(v));
    gv_tensor_free(v);
    free(path);
    if (st) return st;
    L->loaded[hit] = true;
    L->nloaded++;
    return GV_OK;
}

static bool has_top(const leaf_list *l, const char *top) {
    size_t n = strlen(top);
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->paths[i], top, n) == 0 && (l->paths[i][n] == '.' || l->paths[i][n] == '/'))
            return true;
    return false;
}

gv_tree *gv_bert_from_pretrained(const gv_module *m, const char *dir, gv_key key,
                                 gv_load_report *report) {
    if (report) *report = (gv_load_report){0};
    if (!m || !dir)
        return gv_error(GV_ERR_ARG, "gv_bert_from_pretrained: %s is NULL", !m ? "model" : "dir"),
               NULL;
    if (m->type != &gv_BertModel && m->type != &gv_BertForSequenceClassification)
        return gv_error(GV_ERR_ARG, "gv_bert_from_pretrained: the model is a %s, not "
                        "gv_BertModel or gv_BertForSequenceClassification",
                        m->type && m->type->name ? m->type->name : "(no type)"),
               NULL;
    if (gv_bert_config_check(m->cfg) != GV_OK) return NULL;
    if (!is_dir(dir))
        return gv_error(GV_ERR_NOT_FOUND, "'%s' is not a directory (a Hugging Face model directory "
                        "holds config.json and model.safetensors or flax_model.msgpack)", dir),
               NULL;
    /* model.safetensors (PyTorch names) if present, else flax_model.msgpack
     * (a Flax params tree, transformers' save_pretrained of a Flax model) */
    char *file = join_path(dir, "model.safetensors");
    struct stat sb;
    bool msgpack = false;
    if (file && stat(file, &sb) != 0) {
        char *flax = join_path(dir, "flax_model.msgpack");
        if (flax && stat(flax, &sb) == 0) free(file), file = flax, msgpack = true;
        else free(flax);
    }
    if (!file) return gv_error(GV_ERR_NOMEM, "out of memory"), NULL;
    size_t nconverted = 0;
    gv_tree *ckpt = msgpack ? gv_flax_restore(file, NULL)
                            : gv_safetensors_read_file_widening(file, &nconverted);
    if (!ckpt) {
        gv_status st = gv_last_status();
        if (st == GV_ERR_NOT_FOUND) {
            char *idx = join_path(dir, "model.safetensors.index.json");
            if (idx && stat(idx, &sb) == 0)
                gv_error(GV_ERR_UNSUPPORTED, "'%s': a sharded checkpoint "
                         "(model.safetensors.index.json); grove reads one model.safetensors", dir);
            else
                gv_error(GV_ERR_NOT_FOUND, "'%s' not found, nor flax_model.msgpack beside it (grove "
                         "reads Hugging Face checkpoints in safetensors or Flax msgpack format)", file);
            free(idx);
        } else if (st == GV_ERR_UNSUPPORTED) {
            gv_error(GV_ERR_DTYPE, "%s (grove converts float16 and bfloat16 to float32%s)",
                     gv_last_error(), msgpack ? " in model.safetensors only" : "");
        }
        free(file);
        return NULL;
    }
    /* the model's own params, drawn with key: what the checkpoint lacks stays */
    gv_tensor *ids = gv_tensor_zeros(GV_I32, 2, (int64_t[]){1, 1});
    gv_tree *args = ids ? gv_args_tensors(&ids, 1) : NULL;
    gv_tensor_free(ids);
    gv_tree *variables = args ? gv_init(m, key, args, NULL) : NULL;
    gv_tree_free(args);
    loader L = {.file = file};
    leaf_list src = {0};
    gv_status st = GV_OK;
    if (!variables) goto fail;
    L.params = gv_tree_get(variables, "params");
    if (!L.params || gv_tree_foreach_leaf(L.params, collect_leaf, &L.target) != GV_OK ||
        gv_tree_foreach_leaf(ckpt, collect_leaf, &src) != GV_OK) {
        st = gv_error(gv_last_status() ? gv_last_status() : GV_ERR_NOMEM, "%s", gv_last_error());
        goto fail;
    }
    /* a Flax tree's paths as the dotted names the mapping below reads
     * ("encoder/layer/0/.../kernel" -> "encoder.layer.0....kernel"): its
     * leaves already have Flax's names and layout, so none is transposed */
    for (size_t i = 0; msgpack && i < src.n; i++)
        for (char *c = src.paths[i]; *c; c++)
            if (*c == '/') *c = '.';
    if (!(L.loaded = calloc(L.target.n ? L.target.n : 1, sizeof *L.loaded))) {
        st = gv_error(GV_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* transformers' rule: a head checkpoint into the base model drops the
     * "bert." prefix; a base checkpoint into the model with a head adds it */
    bool model_has_bert = m->type == &gv_BertForSequenceClassification;
    bool ckpt_has_bert = has_top(&src, "bert");
    int prefix_rule = !model_has_bert && ckpt_has_bert ? -1 : model_has_bert && !ckpt_has_bert;
    for (size_t i = 0; i < src.n && st == GV_OK; i++) {
        if (prefix_rule < 0 && strncmp(src.paths[i], "bert.", 5) != 0) {
            /* the head of a head checkpoint: the base model has no place for it */
            if (!strlist_add(&L.unused, src.paths[i])) st = gv_error(GV_ERR_NOMEM, "out of memory");
            continue;
        }
        st = load_one(&L, src.paths[i], src.tensors[i], prefix_rule);
    }
    if (st) goto fail;
    if (L.nloaded == 0) {
        st = gv_error(GV_ERR_ARG, "'%s': none of its %zu tensors is a param of the model (not a "
                      "BERT checkpoint? its first tensor is '%s')", file, src.n,
                      src.n ? src.paths[0] : "none");
        goto fail;
    }
    if (report) {
        strlist loaded = {0}, init = {0};
        for (size_t i = 0; i < L.target.n; i++)
            if (!strlist_add(L.loaded[i] ? &loaded : &init, L.target.paths[i])) {
                strlist_free(&loaded), strlist_free(&init);
                st = gv_error(GV_ERR_NOMEM, "out of memory");
                goto fail;
            }
        *report = (gv_load_report){loaded.v, loaded.n, init.v, init.n, L.unused.v, L.unused.n,
                                   nconverted};
        L.unused = (strlist){0};
    }
fail:
    if (st != GV_OK) gv_tree_free(variables), variables = NULL;
    strlist_free(&L.unused);
    free(L.loaded);
    leaf_list_free(&L.target);
    leaf_list_free(&src);
    gv_tree_free(ckpt);
    free(file);
    return variables;
}
