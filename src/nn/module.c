/* Modules: scopes, params, rng streams, child naming, init and apply. The
 * rules mirror flax.core.scope (docs/random.md section 9): a parameter's key
 * is fold_in_static(root key, path + (n,)) where n counts the scope's
 * make_rng('params') calls, and gv_param makes one such call per param. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "graph/graph_internal.h"
#include "grove/nn.h"
#include "random/random_internal.h"
#include "tree/tree_internal.h"

typedef struct counter {
    char *name;
    uint64_t n;
} counter;

typedef struct counters {
    counter *c;
    int n, cap;
} counters;

/* A variable of a collection other than params (Flax's self.variable). */
struct gv_var {
    struct scope_root *root;
    char *path;               /* "batch_stats/BatchNorm_0/mean" */
    char *collection;         /* "batch_stats" */
    gv_value value;           /* the current value: the stored one, then each write */
    bool written;
};

/* Shared by all scopes of one init/apply. */
typedef struct scope_root {
    gv_graph *g;
    bool init;
    bool train;
    gv_prng_impl impl;
    gv_key params_key;        /* init: the concrete key of the params stream */
    gv_tree *built;           /* init: the variables being created (tensors) */
    const gv_tree *variables; /* apply: variables as values */
    const gv_tree *rngs;      /* stream -> key value (may be NULL) */
    const char *const *mutable_cols; /* apply: the collections it may write */
    int nmutable;
    gv_scope **all;           /* every scope, freed at the end */
    int nall, capall;
    gv_var **vars;            /* every declared variable, freed at the end */
    int nvars, capvars;
} scope_root;

struct gv_scope {
    scope_root *root;
    gv_scope *parent;
    char *path;               /* "encoder/Dense_1", "" at the top */
    counters rng;             /* per stream make_rng counts */
    counters auto_names;      /* per type: how many auto-named children */
    gv_scope **kids;          /* explicitly named children, reused on re-entry */
    int nkids, capkids;
};

static uint64_t *counter_slot(counters *cs, const char *name) {
    for (int i = 0; i < cs->n; i++)
        if (strcmp(cs->c[i].name, name) == 0) return &cs->c[i].n;
    if (cs->n == cs->cap) {
        int cap = cs->cap ? 2 * cs->cap : 4;
        counter *c = realloc(cs->c, (size_t)cap * sizeof *c);
        if (!c) return NULL;
        cs->c = c;
        cs->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return NULL;
    cs->c[cs->n] = (counter){copy, 0};
    return &cs->c[cs->n++].n;
}

static void counters_free(counters *cs) {
    for (int i = 0; i < cs->n; i++) free(cs->c[i].name);
    free(cs->c);
}

static gv_scope *scope_new(scope_root *r, gv_scope *parent, const char *name) {
    gv_scope *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->root = r;
    s->parent = parent;
    if (!parent || !parent->path[0]) {
        s->path = strdup(name ? name : "");
    } else {
        size_t n = strlen(parent->path) + strlen(name) + 2;
        s->path = malloc(n);
        if (s->path) snprintf(s->path, n, "%s/%s", parent->path, name);
    }
    if (r->nall == r->capall) {
        int cap = r->capall ? 2 * r->capall : 8;
        gv_scope **all = realloc(r->all, (size_t)cap * sizeof *all);
        if (!all) {
            free(s->path);
            free(s);
            return NULL;
        }
        r->all = all;
        r->capall = cap;
    }
    if (!s->path) {
        free(s);
        return NULL;
    }
    r->all[r->nall++] = s;
    return s;
}

static void root_free(scope_root *r) {
    for (int i = 0; i < r->nall; i++) {
        gv_scope *s = r->all[i];
        counters_free(&s->rng);
        counters_free(&s->auto_names);
        free(s->kids);
        free(s->path);
        free(s);
    }
    free(r->all);
    for (int i = 0; i < r->nvars; i++) {
        free(r->vars[i]->path);
        free(r->vars[i]->collection);
        free(r->vars[i]);
    }
    free(r->vars);
}

gv_graph *gv_scope_graph(const gv_scope *s) { return s->root->g; }
bool gv_scope_is_init(const gv_scope *s) { return s->root->init; }
bool gv_scope_train(const gv_scope *s) { return s->root->train; }
gv_prng_impl gv_scope_prng_impl(const gv_scope *s) { return s->root->impl; }
const char *gv_scope_path(const gv_scope *s) { return s->path; }

/* "collection/path/name" */
static char *var_path(const gv_scope *s, const char *collection, const char *name) {
    size_t n = strlen(collection) + strlen(s->path) + strlen(name) + 3;
    char *p = malloc(n);
    if (p) snprintf(p, n, s->path[0] ? "%s/%s/%s" : "%s%s/%s", collection, s->path, name);
    return p;
}

/* The scope path's parts plus the counter, as fold_in_static parts. False
 * (the graph failed) when out of memory: a key made without the path would
 * be silently wrong. */
static bool rng_word(const gv_scope *s, uint64_t count, uint32_t *out) {
    int np = 1;
    for (const char *c = s->path; *c; c++) np += *c == '/';
    if (!s->path[0]) np = 0;
    gv_fold_part *parts = malloc((size_t)(np + 1) * sizeof *parts);
    char *copy = strdup(s->path);
    if (!parts || !copy) {
        free(parts), free(copy);
        gv_graph_fail(s->root->g, GV_ERR_NOMEM, "%s: out of memory deriving an rng key",
                      s->path[0] ? s->path : "<root>");
        return false;
    }
    int k = 0;
    if (np) {
        char *save = NULL;
        for (char *tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save))
            parts[k++] = (gv_fold_part){tok, 0};
    }
    parts[k++] = (gv_fold_part){NULL, count};
    *out = gv_fold_static_word(parts, (size_t)k, false);
    free(parts), free(copy);
    return true;
}

/* The next make_rng count of a stream and its fold_in word. */
static bool next_word(gv_scope *s, const char *stream, uint32_t *word) {
    uint64_t *c = counter_slot(&s->rng, stream);
    if (!c) {
        gv_graph_fail(s->root->g, GV_ERR_NOMEM, "%s: out of memory counting rng stream '%s'",
                      s->path[0] ? s->path : "<root>", stream);
        return false;
    }
    return rng_word(s, ++*c, word);
}

gv_value gv_make_rng(gv_scope *s, const char *stream) {
    gv_graph *g = s->root->g;
    if (!stream) stream = "params";
    /* a quiet lookup: a missing stream is an answer (fall back), not an error */
    const gv_tree *key_leaf = strchr(stream, '/') ? NULL : gv_tree_find(s->root->rngs, stream);
    if (!key_leaf && strcmp(stream, "params") != 0) { /* Flax >= 0.8.2: fall back to params */
        stream = "params";
        key_leaf = gv_tree_find(s->root->rngs, "params");
    }
    gv_value key;
    if (key_leaf) {
        key = gv_tree_leaf_value(key_leaf);
    } else if (s->root->init) {
        key = gv_key_constant(g, s->root->params_key);
    } else {
        gv_graph_fail(g, GV_ERR_NOT_FOUND, "make_rng('%s') in %s: no such rng stream was given "
                      "(pass rngs={'%s': key})", stream, s->path[0] ? s->path : "<root>", stream);
        return gv_invalid(g);
    }
    uint32_t word;
    if (!next_word(s, stream, &word)) return gv_invalid(g);
    return gv_random_fold_in(key, word);
}

gv_value gv_param(gv_scope *s, const char *name, gv_initializer init, int rank,
                  const int64_t *shape) {
    scope_root *r = s->root;
    gv_graph *g = r->g;
    if (!g || gv_graph_status(g) != GV_OK) return gv_invalid(g);
    char *path = var_path(s, "params", name);
    if (!path) {
        gv_graph_fail(g, GV_ERR_NOMEM, "param %s in %s: out of memory", name,
                      s->path[0] ? s->path : "<root>");
        return gv_invalid(g);
    }
    gv_value v = gv_invalid(g);
    if (r->init) {
        /* self.param: one make_rng('params') per param, then init(key, shape) */
        uint32_t word;
        if (!next_word(s, "params", &word)) goto done;
        gv_key key = gv_random_fold_in_eager(r->params_key, word);
        gv_tensor *t = gv_initializer_sample(&init, r->impl, key, rank, shape);
        if (!t) {
            gv_graph_fail(g, gv_last_status(), "%s: %s", path, gv_last_error());
            goto done;
        }
        if (gv_tree_insert_tensor(r->built, path, t) != GV_OK)
            gv_graph_fail(g, gv_last_status(), "param %s: %s", path, gv_last_error());
        else
            v = gv_constant(g, t);
        gv_tensor_free(t);
    } else {
        const gv_tree *leaf = gv_tree_find(r->variables, path); /* absent: reported below */
        if (!leaf || gv_tree_leaf_kind(leaf) != GV_LEAF_VALUE) {
            gv_graph_fail(g, GV_ERR_NOT_FOUND, "param %s not found in the variables (apply "
                          "needs the params that init made for this module)", path);
            goto done;
        }
        v = gv_tree_leaf_value(leaf);
        bool same = gv_value_rank(v) == rank;
        for (int i = 0; same && i < rank; i++) same = gv_value_shape(v)[i] == shape[i];
        if (!same) {
            char *have = gv_shape_str(gv_value_rank(v), gv_value_shape(v));
            char *want = gv_shape_str(rank, shape);
            gv_graph_fail(g, GV_ERR_SHAPE, "param %s has shape %s, the module expects %s", path,
                          have, want);
            free(have), free(want);
            v = gv_invalid(g);
        }
    }
done:
    free(path);
    return v;
}

gv_value gv_perturb(gv_scope *s, const char *name, gv_value x) {
    scope_root *r = s->root;
    if (!gv_value_ok(x)) return x;
    char *path = var_path(s, "perturbations", name);
    if (!path) {
        gv_graph_fail(r->g, GV_ERR_NOMEM, "perturb %s in %s: out of memory", name,
                      s->path[0] ? s->path : "<root>");
        return gv_invalid(r->g);
    }
    gv_value out = x;
    if (r->init) {
        gv_tensor *z = gv_tensor_zeros(gv_value_dtype(x), gv_value_rank(x), gv_value_shape(x));
        if (!z || gv_tree_insert_tensor(r->built, path, z) != GV_OK)
            gv_graph_fail(r->g, gv_last_status(), "perturb %s: %s", path, gv_last_error());
        gv_tensor_free(z);
    } else {
        /* no perturbation given is the usual case: x passes through */
        const gv_tree *leaf = gv_tree_find(r->variables, path);
        if (leaf) out = gv_add(x, gv_tree_leaf_value(leaf));
    }
    free(path);
    return out;
}

/* ---- variables of other collections (Flax's self.variable, reference C2/C8) ---- */

bool gv_scope_is_mutable(const gv_scope *s, const char *collection) {
    const scope_root *r = s->root;
    if (r->init) return true; /* init: every collection is mutable */
    for (int i = 0; collection && i < r->nmutable; i++)
        if (r->mutable_cols[i] && strcmp(r->mutable_cols[i], collection) == 0) return true;
    return false;
}

static gv_var *var_new(scope_root *r, const char *collection, char *path) {
    if (r->nvars == r->capvars) {
        int cap = r->capvars ? 2 * r->capvars : 4;
        gv_var **v = realloc(r->vars, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        r->vars = v;
        r->capvars = cap;
    }
    gv_var *v = calloc(1, sizeof *v);
    char *col = strdup(collection);
    if (!v || !col) {
        free(v), free(col);
        return NULL;
    }
    *v = (gv_var){r, path, col, gv_invalid(r->g), false};
    r->vars[r->nvars++] = v;
    return v;
}

/* Flax's init_fn takes no rng, so neither does the initializer here: the
 * zeros/ones/constant kinds are the ones that make sense (a random kind
 * draws from a fixed key 0). */
static gv_value var_initial(scope_root *r, const char *path, const gv_initializer *init,
                            int rank, const int64_t *shape, bool store) {
    gv_tensor *t = gv_initializer_sample(init, r->impl, gv_prng_key(0), rank, shape);
    if (!t) {
        gv_graph_fail(r->g, gv_last_status(), "%s: %s", path, gv_last_error());
        return gv_invalid(r->g);
    }
    gv_value v = gv_invalid(r->g);
    if (store && gv_tree_insert_tensor(r->built, path, t) != GV_OK)
        gv_graph_fail(r->g, gv_last_status(), "variable %s: %s", path, gv_last_error());
    else
        v = gv_constant(r->g, t);
    gv_tensor_free(t);
    return v;
}

gv_var *gv_variable(gv_scope *s, const char *collection, const char *name, gv_initializer init,
                    int rank, const int64_t *shape) {
    scope_root *r = s->root;
    gv_graph *g = r->g;
    if (!g || gv_graph_status(g) != GV_OK) return NULL;
    if (!collection || !name || strchr(collection, '/') || !strcmp(collection, "params")) {
        gv_graph_fail(g, GV_ERR_ARG, "variable %s in %s: %s", name ? name : "(null)",
                      s->path[0] ? s->path : "<root>",
                      !collection || strchr(collection, '/') ? "bad collection name"
                      : "params are declared with gv_param");
        return NULL;
    }
    char *path = var_path(s, collection, name);
    if (!path) {
        gv_graph_fail(g, GV_ERR_NOMEM, "variable %s in %s: out of memory", name,
                      s->path[0] ? s->path : "<root>");
        return NULL;
    }
    /* declared again (a shared scope called twice): the same variable,
     * holding its latest value, as Flax's self.variable */
    for (int i = 0; i < r->nvars; i++)
        if (!strcmp(r->vars[i]->path, path)) {
            free(path);
            return r->vars[i];
        }
    gv_var *v = var_new(r, collection, path);
    if (!v) {
        gv_graph_fail(g, GV_ERR_NOMEM, "variable %s: out of memory", path);
        free(path);
        return NULL;
    }
    if (r->init) {
        v->value = var_initial(r, path, &init, rank, shape, true);
        return gv_value_ok(v->value) ? v : NULL;
    }
    const gv_tree *leaf = gv_tree_find(r->variables, path); /* absent: handled below */
    if (!leaf || gv_tree_leaf_kind(leaf) != GV_LEAF_VALUE) {
        if (!gv_scope_is_mutable(s, collection)) {
            gv_graph_fail(g, GV_ERR_NOT_FOUND, "variable %s not found in the variables (pass "
                          "the '%s' collection that init made, or make it mutable)", path,
                          collection);
            return NULL;
        }
        /* a mutable collection may be created by apply (Flax does the same) */
        v->value = var_initial(r, path, &init, rank, shape, false);
        v->written = true;
        return gv_value_ok(v->value) ? v : NULL;
    }
    v->value = gv_tree_leaf_value(leaf);
    bool same = gv_value_rank(v->value) == rank;
    for (int i = 0; same && i < rank; i++) same = gv_value_shape(v->value)[i] == shape[i];
    if (!same) {
        char *have = gv_shape_str(gv_value_rank(v->value), gv_value_shape(v->value));
        char *want = gv_shape_str(rank, shape);
        gv_graph_fail(g, GV_ERR_SHAPE, "variable %s has shape %s, the module expects %s", path,
                      have, want);
        free(have), free(want);
        return NULL;
    }
    return v;
}

gv_value gv_variable_value(const gv_var *v) {
    return v ? v->value : (gv_value){NULL, -1};
}

const char *gv_variable_path(const gv_var *v) { return v ? v->path : NULL; }

bool gv_variable_set(gv_var *v, gv_value value) {
    if (!v) return false;
    gv_graph *g = v->root->g;
    if (gv_graph_status(g) != GV_OK) return false;
    if (!gv_value_ok(value)) {
        gv_graph_fail(g, GV_ERR_ARG, "variable %s: the new value is invalid", v->path);
        return false;
    }
    /* init: every collection is mutable; gv_init evaluates the written values */
    bool ok = v->root->init;
    for (int i = 0; i < v->root->nmutable && !ok; i++)
        ok = v->root->mutable_cols[i] && !strcmp(v->root->mutable_cols[i], v->collection);
    if (!ok) {
        /* Flax: ModifyScopeVariableError */
        gv_graph_fail(g, GV_ERR_ARG, "cannot update variable %s: collection '%s' is immutable "
                      "in this apply (list it in gv_module_options.mutable_collections, "
                      "Flax's mutable=['%s'])", v->path, v->collection, v->collection);
        return false;
    }
    v->value = value;
    v->written = true;
    return true;
}

/* apply with mutable collections: {collection: the whole collection as
 * given, with each written variable's new value}, for the mutable
 * collections that exist (Flax's mutated variables). */
static gv_tree *mutated_collections(const scope_root *r) {
    gv_tree *m = gv_tree_new_dict();
    for (int c = 0; m && c < r->nmutable; c++) {
        const char *col = r->mutable_cols[c];
        if (!col || gv_tree_find(m, col)) continue; /* listed twice */
        const gv_tree *given = gv_tree_find(r->variables, col);
        gv_tree *t = given ? gv_tree_clone(given) : gv_tree_new_dict();
        bool any = given != NULL;
        for (int i = 0; t && i < r->nvars; i++) {
            const gv_var *v = r->vars[i];
            if (!v->written || strcmp(v->collection, col)) continue;
            any = true;
            if (gv_tree_set(t, v->path + strlen(col) + 1, gv_tree_new_value_leaf(v->value)) != GV_OK) {
                gv_tree_free(t);
                t = NULL;
            }
        }
        if (t && !any) { /* neither given nor written: not in the result */
            gv_tree_free(t);
            continue;
        }
        if (!t || gv_tree_insert(m, col, t) != GV_OK) { /* insert consumes t */
            gv_tree_free(m);
            m = NULL;
        }
    }
    if (!m) gv_graph_fail(r->g, gv_last_status(), "apply: collecting the mutated variables: %s",
                          gv_last_error());
    return m;
}

/* The scope of a child: an explicit name is reused on re-entry (a setup
 * submodule called twice keeps its counters); auto names count per type. */
static gv_scope *child_scope(gv_scope *s, const char *name, const char *type) {
    char *auto_name = NULL;
    if (!name) {
        uint64_t *c = counter_slot(&s->auto_names, type);
        if (!c) return NULL;
        size_t n = strlen(type) + 22; /* "_" + a uint64 + NUL */
        auto_name = malloc(n);
        if (!auto_name) return NULL;
        snprintf(auto_name, n, "%s_%llu", type, (unsigned long long)(*c)++);
        name = auto_name;
    } else {
        for (int i = 0; i < s->nkids; i++) {
            const char *p = strrchr(s->kids[i]->path, '/');
            if (strcmp(p ? p + 1 : s->kids[i]->path, name) == 0) return s->kids[i];
        }
    }
    gv_scope *c = scope_new(s->root, s, name);
    free(auto_name);
    if (!c) return NULL;
    if (s->nkids == s->capkids) {
        int cap = s->capkids ? 2 * s->capkids : 4;
        gv_scope **k = realloc(s->kids, (size_t)cap * sizeof *k);
        if (!k) return NULL;
        s->kids = k;
        s->capkids = cap;
    }
    s->kids[s->nkids++] = c;
    return c;
}

static gv_method_fn find_method(const gv_module *m, const char *method) {
    if (!method) return m->type->call;
    for (int i = 0; i < m->type->nmethods; i++)
        if (strcmp(m->type->methods[i].name, method) == 0) return m->type->methods[i].fn;
    return NULL;
}

static gv_tree *call_in(gv_scope *s, const gv_module *m, const char *method, const gv_tree *args) {
    gv_graph *g = s->root->g;
    gv_method_fn fn = m && m->type ? find_method(m, method) : NULL;
    if (!fn) {
        gv_graph_fail(g, GV_ERR_ARG, "%s: module %s has no method '%s'",
                      s->path[0] ? s->path : "<root>", m && m->type ? m->type->name : "(null)",
                      method ? method : "__call__");
        return NULL;
    }
    return fn(s, m->cfg, args);
}

gv_tree *gv_scope_call(gv_scope *s, const char *name, const gv_module *child, const char *method,
                       const gv_tree *args) {
    gv_graph *g = s->root->g;
    if (gv_graph_status(g) != GV_OK) return NULL;
    if (!child || !child->type) {
        gv_graph_fail(g, GV_ERR_ARG, "%s: child module is NULL", s->path[0] ? s->path : "<root>");
        return NULL;
    }
    gv_scope *c = child_scope(s, name, child->type->name);
    if (!c) {
        gv_graph_fail(g, GV_ERR_NOMEM, "%s: out of memory making the scope of child %s",
                      s->path[0] ? s->path : "<root>", name ? name : child->type->name);
        return NULL;
    }
    const char *leaf = strrchr(c->path, '/');
    gv_graph_push_scope(g, leaf ? leaf + 1 : c->path);
    gv_tree *out = call_in(c, child, method, args);
    gv_graph_pop_scope(g);
    return out;
}

gv_value gv_scope_call1(gv_scope *s, const char *name, const gv_module *child, gv_value x) {
    gv_tree *args = gv_args1(x);
    gv_tree *out = args ? gv_scope_call(s, name, child, NULL, args) : NULL;
    gv_tree_free(args);
    gv_value v = out ? gv_tree_leaf_value(out) : gv_invalid(s->root->g);
    if (out && !gv_value_ok(v))
        gv_graph_fail(s->root->g, GV_ERR_STRUCTURE, "%s: expected one array from the child",
                      s->path[0] ? s->path : "<root>");
    gv_tree_free(out);
    return v;
}

/* ---- args ---- */

gv_value gv_args_get(const gv_tree *args, int i) {
    const gv_tree *c = args && !gv_tree_is_leaf(args) && i >= 0 && (size_t)i < gv_tree_num_children(args)
                           ? gv_tree_child(args, (size_t)i) : NULL;
    if (!c && args && gv_tree_is_leaf(args) && i == 0) c = args;
    return c ? gv_tree_leaf_value(c) : (gv_value){NULL, -1};
}

static gv_tree *tuple_of(const gv_value *v, int n) {
    gv_tree *kids[3];
    for (int i = 0; i < n; i++) kids[i] = gv_tree_new_value_leaf(v[i]);
    return gv_tree_tuple_take((size_t)n, kids);
}
gv_tree *gv_args1(gv_value a) { return tuple_of(&a, 1); }
gv_tree *gv_args2(gv_value a, gv_value b) { return tuple_of((gv_value[]){a, b}, 2); }
gv_tree *gv_args3(gv_value a, gv_value b, gv_value c) { return tuple_of((gv_value[]){a, b, c}, 3); }
gv_tree *gv_args_tensors(gv_tensor *const *ts, int n) {
    gv_tree *t = gv_tree_new_tuple();
    for (int i = 0; t && i < n; i++)
        if (gv_tree_append_tensor(t, ts[i]) != GV_OK) {
            gv_tree_free(t);
            return NULL;
        }
    return t;
}

/* ---- init and apply ---- */

typedef struct init_ctx {
    const gv_module *m;
    gv_module_options o;
    gv_key key;
    gv_tree *built;
    bool wrote;               /* some variable was written: evaluate the trace */
} init_ctx;

/* Returns (out, written): written is {path: value} of every variable
 * written during init, whose values gv_init then evaluates into built. */
static gv_tree *init_trace(gv_graph *g, const gv_tree *in, void *ud) {
    init_ctx *c = ud;
    scope_root r = {.g = g, .init = true, .train = c->o.train, .impl = c->o.impl,
                    .params_key = c->key, .built = c->built};
    gv_scope *top = scope_new(&r, NULL, "");
    gv_tree *out = top ? call_in(top, c->m, c->o.method, in) : NULL;
    gv_tree *written = out ? gv_tree_new_dict() : NULL;
    for (int i = 0; written && i < r.nvars; i++) {
        if (!r.vars[i]->written) continue;
        c->wrote = true;
        if (gv_tree_insert(written, r.vars[i]->path, gv_tree_new_value_leaf(r.vars[i]->value))
            != GV_OK) {
            gv_tree_free(written);
            written = NULL;
        }
    }
    if (out && !written && gv_graph_status(g) == GV_OK)
        gv_graph_fail(g, gv_last_status(), "init: collecting the written variables: %s",
                      gv_last_error());
    root_free(&r);
    return out ? gv_tree_tuple_take(2, (gv_tree *[]){out, written}) : NULL;
}

/* built[prefix/path] = each evaluated value in written, recursively */
static gv_status set_written(gv_tree *built, const gv_tree *written, const char *prefix) {
    for (size_t i = 0; i < gv_tree_num_children(written); i++) {
        const gv_tree *kid = gv_tree_child(written, i);
        const char *k = gv_tree_key(written, i);
        size_t n = strlen(prefix) + strlen(k) + 2;
        char *path = malloc(n);
        if (!path) return gv_error(GV_ERR_NOMEM, "out of memory");
        snprintf(path, n, prefix[0] ? "%s/%s" : "%s%s", prefix, k);
        gv_status st = gv_tree_is_leaf(kid) ? gv_tree_set_tensor(built, path, gv_tree_leaf_tensor(kid))
                                            : set_written(built, kid, path);
        free(path);
        if (st != GV_OK) return st;
    }
    return GV_OK;
}

gv_tree *gv_init(const gv_module *m, gv_key key, const gv_tree *args, const gv_module_options *o) {
    if (!m || !m->type || !args) {
        gv_error(GV_ERR_ARG, "gv_init: %s is NULL", !args ? "args" : "module");
        return NULL;
    }
    init_ctx c = {m, o ? *o : (gv_module_options){0}, key, gv_tree_new_dict(), false};
    if (!c.built) return NULL;
    gv_fn *f = gv_trace(init_trace, &c, args);
    gv_tree *res = NULL;
    /* Flax returns a variable written during init with its written value */
    gv_status st = !f ? gv_last_status()
                 : c.wrote && gv_fn_eval(f, args, &res) != GV_OK ? gv_last_status() : GV_OK;
    if (st == GV_OK && res) st = set_written(c.built, gv_tree_get(res, "1"), "");
    gv_tree_free(res);
    gv_fn_free(f);
    if (st != GV_OK) {
        gv_error_prefix("gv_init(%s): ", m->type->name);
        gv_tree_free(c.built);
        return NULL;
    }
    return c.built;
}

gv_tree *gv_apply(gv_graph *g, const gv_module *m, const gv_tree *variables,
                  const gv_tree *args, const gv_tree *rngs, const gv_module_options *o) {
    if (!g || gv_graph_status(g) != GV_OK) return NULL;
    gv_module_options opts = o ? *o : (gv_module_options){0};
    scope_root r = {.g = g, .init = false, .train = opts.train, .impl = opts.impl,
                    .variables = variables, .rngs = rngs,
                    .mutable_cols = opts.mutable_collections, .nmutable = opts.nmutable};
    if (!m || !m->type) {
        gv_graph_fail(g, GV_ERR_ARG, "apply: module is NULL");
        return NULL;
    }
    if (opts.nmutable < 0 || (opts.nmutable > 0 && !opts.mutable_collections)) {
        gv_graph_fail(g, GV_ERR_ARG, "apply: nmutable is %d with mutable_collections %s",
                      opts.nmutable, opts.mutable_collections ? "set" : "NULL");
        return NULL;
    }
    gv_scope *top = scope_new(&r, NULL, "");
    gv_tree *out = top ? call_in(top, m, opts.method, args) : NULL;
    if (out && opts.nmutable > 0 && gv_graph_status(g) == GV_OK) {
        /* Flax: apply(..., mutable=[...]) returns (out, mutated) */
        gv_tree *mutated = mutated_collections(&r);
        out = mutated ? gv_tree_tuple_take(2, (gv_tree *[]){out, mutated})
                      : (gv_tree_free(out), NULL);
        if (!out && gv_graph_status(g) == GV_OK)
            gv_graph_fail(g, GV_ERR_NOMEM, "apply: out of memory");
    }
    root_free(&r);
    return gv_graph_own(g, out);
}

typedef struct apply_ctx {
    const gv_module *m;
    gv_module_options o;
} apply_ctx;

static gv_tree *apply_trace(gv_graph *g, const gv_tree *in, void *ud) {
    apply_ctx *c = ud;
    return gv_apply(g, c->m, gv_tree_get(in, "0"), gv_tree_get(in, "1"),
                    gv_tree_get(in, "2"), &c->o);
}

gv_status gv_apply_eager(const gv_module *m, const gv_tree *variables, const gv_tree *args,
                         const gv_tree *rngs, const gv_module_options *o, gv_tree **out) {
    if (!out) return gv_error(GV_ERR_ARG, "gv_apply_eager: out is NULL");
    *out = NULL;
    if (!m || !m->type || !args)
        return gv_error(GV_ERR_ARG, "gv_apply_eager: %s is NULL", !args ? "args" : "module");
    if (!variables)
        return gv_error(GV_ERR_ARG, "gv_apply_eager(%s): no variables: a module holds no params, "
                        "call gv_init first and pass its result", m->type->name);
    apply_ctx c = {m, o ? *o : (gv_module_options){0}};
    gv_tree *in = gv_tree_tuple_take(3, (gv_tree *[]){gv_tree_clone(variables),
        gv_tree_clone(args), rngs ? gv_tree_clone(rngs) : gv_tree_new_dict()});
    if (!in) return gv_error_prefix("gv_apply_eager(%s): ", m->type->name);
    gv_status st = GV_OK;
    gv_fn *f = gv_trace(apply_trace, &c, in);
    gv_plan *p = f ? gv_plan_compile(f, NULL) : NULL;
    gv_tree *res = p ? gv_plan_new_outputs(p) : NULL;
    if (!res || gv_plan_run(p, in, res) != GV_OK) {
        st = gv_error_prefix("gv_apply_eager(%s): ", m->type->name);
        gv_tree_free(res);
        res = NULL;
    }
    gv_plan_free(p), gv_fn_free(f), gv_tree_free(in);
    *out = res;
    return st;
}
