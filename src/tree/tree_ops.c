/* Trees as JAX sees them: leaves in flatten order, structure (treedef),
 * comparisons, map/reduce, and tree prefixes. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tree_internal.h"

/* ---- walking and counting ------------------------------------------------- */

gv_status gv_tree_walk(const gv_tree *t, gv_tree_sb *path, gv_tree_walk_fn fn, void *ctx) {
    if (t->kind == GV_TREE_LEAF) return fn(gv_tree_sb_str(path), t, ctx);
    for (size_t j = 0; j < t->n; j++) {
        size_t i = gv_tree_flat_index(t, j);
        size_t old = gv_tree_path_push(path, t->keys[i]);
        gv_status st = gv_tree_walk(t->kids[i], path, fn, ctx);
        gv_tree_path_pop(path, old);
        if (st != GV_OK) return st;
    }
    return GV_OK;
}

typedef struct {
    size_t leaves, nbytes;
    int64_t size;
} counts;

static void count(const gv_tree *t, counts *c) {
    if (t->kind == GV_TREE_LEAF) {
        c->leaves++;
        if (t->leaf_kind == GV_LEAF_TENSOR) {
            c->size += gv_tensor_size(t->leaf.tensor);
            c->nbytes += gv_tensor_nbytes(t->leaf.tensor);
        }
        return;
    }
    for (size_t i = 0; i < t->n; i++) count(t->kids[i], c);
}

static counts count_of(const char *what, const gv_tree *tree) {
    counts c = {0};
    if (!tree) gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
    else count(tree, &c);
    return c;
}

size_t gv_tree_num_leaves(const gv_tree *tree) {
    return count_of("gv_tree_num_leaves", tree).leaves;
}
int64_t gv_tree_size(const gv_tree *tree) { return count_of("gv_tree_size", tree).size; }
size_t gv_tree_nbytes(const gv_tree *tree) { return count_of("gv_tree_nbytes", tree).nbytes; }

/* A user callback failed with st: make sure a message exists (the error
 * count was `before` when it was called), and put "what: path: " in front. */
static gv_status callback_failed(gv_status st, unsigned long long before, const char *what,
                                 const char *path) {
    if (gv_error_count() == before)
        gv_error(st, "the callback returned %s without setting an error", gv_status_name(st));
    gv_error_prefix("%s: %s: ", what, gv_tree_show_path(path));
    return st;
}

/* ---- iteration, flatten, paths -------------------------------------------- */

typedef struct {
    gv_tree_leaf_fn fn;
    void *ud;
} foreach_ctx;

static gv_status foreach_leaf(const char *path, const gv_tree *leaf, void *vc) {
    foreach_ctx *c = vc;
    unsigned long long before = gv_error_count();
    gv_status st = c->fn(path, leaf, c->ud);
    return st == GV_OK ? GV_OK : callback_failed(st, before, "gv_tree_foreach_leaf", path);
}

gv_status gv_tree_foreach_leaf(const gv_tree *tree, gv_tree_leaf_fn fn, void *userdata) {
    if (!tree || !fn)
        return gv_error(GV_ERR_ARG, "gv_tree_foreach_leaf: %s is NULL", tree ? "fn" : "tree");
    foreach_ctx c = {fn, userdata};
    gv_tree_sb path = {0};
    gv_status st = gv_tree_walk(tree, &path, foreach_leaf, &c);
    gv_tree_sb_free(&path);
    return st;
}

typedef struct {
    const char *what;
    gv_tensor **out;
    size_t k;
} collect_ctx;

static gv_status collect(const char *path, const gv_tree *leaf, void *vc) {
    collect_ctx *c = vc;
    gv_tensor *t = gv_tree_need_tensor(c->what, leaf, path);
    if (!t) return GV_ERR_ARG;
    c->out[c->k++] = t;
    return GV_OK;
}

/* The tensors of tree in flatten order (borrowed) in a malloc'd array. */
static gv_status flatten(const char *what, const gv_tree *tree, gv_tensor ***leaves, size_t *n) {
    size_t count = gv_tree_num_leaves(tree);
    gv_tensor **arr = NULL;
    if (count) {
        arr = malloc(count * sizeof *arr);
        if (!arr) return gv_error(GV_ERR_NOMEM, "%s: out of memory for %zu leaves", what, count);
    }
    collect_ctx c = {what, arr, 0};
    gv_tree_sb path = {0};
    gv_status st = gv_tree_walk(tree, &path, collect, &c);
    gv_tree_sb_free(&path);
    if (st != GV_OK) {
        free(arr);
        return st;
    }
    *leaves = arr;
    *n = count;
    return GV_OK;
}

gv_status gv_tree_flatten(const gv_tree *tree, gv_tensor ***leaves, size_t *n) {
    const char *what = "gv_tree_flatten";
    if (!leaves || !n) return gv_error(GV_ERR_ARG, "%s: %s is NULL", what, n ? "leaves" : "n");
    *leaves = NULL;
    *n = 0;
    if (!tree) return gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
    return flatten(what, tree, leaves, n);
}

typedef struct {
    char **paths;
    size_t k;
} paths_ctx;

static gv_status collect_path(const char *path, const gv_tree *leaf, void *vc) {
    paths_ctx *c = vc;
    c->paths[c->k] = strdup(path);
    if (!c->paths[c->k])
        return gv_error(GV_ERR_NOMEM, "gv_tree_leaf_paths: out of memory copying %s", path);
    c->k++;
    return GV_OK;
}

gv_status gv_tree_leaf_paths(const gv_tree *tree, char ***paths, size_t *n) {
    const char *what = "gv_tree_leaf_paths";
    if (!paths || !n) return gv_error(GV_ERR_ARG, "%s: %s is NULL", what, n ? "paths" : "n");
    *paths = NULL;
    *n = 0;
    if (!tree) return gv_error(GV_ERR_ARG, "%s: tree is NULL", what);
    size_t count = gv_tree_num_leaves(tree);
    paths_ctx c = {calloc(count ? count : 1, sizeof(char *)), 0};
    if (!c.paths) return gv_error(GV_ERR_NOMEM, "%s: out of memory", what);
    gv_tree_sb path = {0};
    gv_status st = gv_tree_walk(tree, &path, collect_path, &c);
    if (st == GV_OK && path.oom) st = gv_error(GV_ERR_NOMEM, "%s: out of memory", what);
    gv_tree_sb_free(&path);
    if (st != GV_OK) {
        gv_tree_paths_free(c.paths, c.k);
        return st;
    }
    *paths = c.paths;
    *n = count;
    return GV_OK;
}

void gv_tree_paths_free(char **paths, size_t n) {
    if (!paths) return;
    for (size_t i = 0; i < n; i++) free(paths[i]);
    free(paths);
}

/* ---- comparing trees ------------------------------------------------------ */

enum { CMP_STRUCTURE, CMP_LEAVES };

/* Leaves: the one place to extend for a new leaf kind. */
static bool same_leaf(const gv_tree *a, const gv_tree *b, const char *p, gv_tree_sb *msg) {
    if (a->leaf_kind != b->leaf_kind) {
        gv_tree_sb_printf(msg, "%s vs %s at %s", gv_tree_node_name(a), gv_tree_node_name(b),
                          p);
        return false;
    }
    if (a->leaf_kind == GV_LEAF_TENSOR) {
        const gv_tensor *x = a->leaf.tensor, *y = b->leaf.tensor;
        if (!gv_tensor_same_shape(x, y)) {
            gv_tree_sb_printf(msg, "%s: shape ", p);
            gv_tree_sb_shape(msg, gv_tensor_rank(x), gv_tensor_shape(x));
            gv_tree_sb_puts(msg, " vs ");
            gv_tree_sb_shape(msg, gv_tensor_rank(y), gv_tensor_shape(y));
            return false;
        }
        if (gv_tensor_dtype(x) != gv_tensor_dtype(y)) {
            gv_tree_sb_printf(msg, "%s: dtype %s vs %s", p, gv_dtype_name(gv_tensor_dtype(x)),
                              gv_dtype_name(gv_tensor_dtype(y)));
            return false;
        }
    } else if (a->leaf_kind == GV_LEAF_VALUE) {
        gv_value x = a->leaf.value, y = b->leaf.value;
        if (gv_value_rank(x) != gv_value_rank(y) ||
            memcmp(gv_value_shape(x), gv_value_shape(y), (size_t)gv_value_rank(x) * 8) != 0) {
            gv_tree_sb_printf(msg, "%s: shape ", p);
            gv_tree_sb_shape(msg, gv_value_rank(x), gv_value_shape(x));
            gv_tree_sb_puts(msg, " vs ");
            gv_tree_sb_shape(msg, gv_value_rank(y), gv_value_shape(y));
            return false;
        }
        if (gv_value_dtype(x) != gv_value_dtype(y)) {
            gv_tree_sb_printf(msg, "%s: dtype %s vs %s", p, gv_dtype_name(gv_value_dtype(x)),
                              gv_dtype_name(gv_value_dtype(y)));
            return false;
        }
    } else if (a->leaf_kind == GV_LEAF_LABEL && strcmp(a->leaf.label, b->leaf.label) != 0) {
        gv_tree_sb_printf(msg, "%s: label ", p);
        gv_tree_sb_repr(msg, a->leaf.label, strlen(a->leaf.label));
        gv_tree_sb_puts(msg, " vs ");
        gv_tree_sb_repr(msg, b->leaf.label, strlen(b->leaf.label));
        return false;
    }
    return true;
}

/* Does b match a (the reference)? If not, describe the first difference in
 * flatten order (a node before its children) in msg. */
static bool same(const gv_tree *a, const gv_tree *b, int mode, gv_tree_sb *path,
                 gv_tree_sb *msg) {
    const char *p = gv_tree_show_path(gv_tree_sb_str(path));
    if (a->kind != b->kind) {
        gv_tree_sb_printf(msg, "%s vs %s at %s", gv_tree_node_name(a), gv_tree_node_name(b),
                          p);
        return false;
    }
    if (a->kind == GV_TREE_LEAF) return mode == CMP_STRUCTURE || same_leaf(a, b, p, msg);
    if (a->kind != GV_TREE_DICT && a->n != b->n) {
        gv_tree_sb_printf(msg, "%s length %zu vs %zu at %s", gv_tree_kind_name(a->kind), a->n,
                          b->n, p);
        return false;
    }
    if (a->kind == GV_TREE_DICT) {
        /* both key lists in sorted order: merge them */
        size_t i = 0, j = 0;
        while (i < a->n || j < b->n) {
            const char *ka = i < a->n ? a->keys[a->sorted[i]] : NULL;
            const char *kb = j < b->n ? b->keys[b->sorted[j]] : NULL;
            int c = !ka ? 1 : !kb ? -1 : strcmp(ka, kb);
            if (c != 0) {
                const char *k = c < 0 ? ka : kb;
                gv_tree_sb_puts(msg, c < 0 ? "missing key " : "unexpected key ");
                gv_tree_sb_repr(msg, k, strlen(k));
                gv_tree_sb_printf(msg, " at %s", p);
                return false;
            }
            i++, j++;
        }
    }
    for (size_t j = 0; j < a->n; j++) {
        size_t ia = gv_tree_flat_index(a, j), ib = gv_tree_flat_index(b, j);
        size_t old = gv_tree_path_push(path, a->keys[ia]);
        bool ok = same(a->kids[ia], b->kids[ib], mode, path, msg);
        gv_tree_path_pop(path, old);
        if (!ok) return false;
    }
    return true;
}

/* GV_OK, or GV_ERR_STRUCTURE with "<prefix>: <difference>" (or just the
 * difference if prefix is NULL). */
static gv_status compare(const gv_tree *a, const gv_tree *b, int mode, const char *prefix) {
    gv_tree_sb path = {0}, msg = {0};
    gv_status st = GV_OK;
    if (!same(a, b, mode, &path, &msg)) {
        const char *m = msg.oom ? "the trees differ" : gv_tree_sb_str(&msg);
        st = gv_error(GV_ERR_STRUCTURE, "%s%s%s", prefix ? prefix : "", prefix ? ": " : "", m);
    }
    gv_tree_sb_free(&path);
    gv_tree_sb_free(&msg);
    return st;
}

bool gv_tree_structure_equal(const gv_tree *a, const gv_tree *b) {
    if (!a || !b) {
        gv_error(GV_ERR_ARG, "gv_tree_structure_equal: %s is NULL", a ? "b" : "a");
        return false;
    }
    gv_tree_sb path = {0}, msg = {0};
    bool eq = same(a, b, CMP_STRUCTURE, &path, &msg);
    gv_tree_sb_free(&path);
    gv_tree_sb_free(&msg);
    return eq;
}

gv_status gv_tree_check_same(const gv_tree *a, const gv_tree *b, const char *what) {
    if (!a || !b) return gv_error(GV_ERR_ARG, "gv_tree_check_same: %s is NULL", a ? "b" : "a");
    return compare(a, b, CMP_LEAVES, what);
}

/* ---- structure ------------------------------------------------------------ */

static gv_status make_placeholder(const gv_tree *leaf, const char *path, gv_tree **out,
                                  void *ctx) {
    *out = gv_tree_placeholder_new();
    return *out ? GV_OK : GV_ERR_NOMEM;
}

gv_treedef *gv_tree_structure(const gv_tree *tree) {
    if (!tree) {
        gv_error(GV_ERR_ARG, "gv_tree_structure: tree is NULL");
        return NULL;
    }
    gv_treedef *def = malloc(sizeof *def);
    gv_tree *skel = def ? gv_tree_rebuild(tree, make_placeholder, NULL) : NULL;
    if (!skel) {
        free(def);
        gv_error(GV_ERR_NOMEM, "gv_tree_structure: out of memory");
        return NULL;
    }
    def->skel = skel;
    def->nleaves = gv_tree_num_leaves(tree);
    return def;
}

void gv_treedef_free(gv_treedef *def) {
    if (!def) return;
    gv_tree_free(def->skel);
    free(def);
}

size_t gv_treedef_num_leaves(const gv_treedef *def) {
    if (!def) {
        gv_error(GV_ERR_ARG, "gv_treedef_num_leaves: def is NULL");
        return 0;
    }
    return def->nleaves;
}

bool gv_treedef_equal(const gv_treedef *a, const gv_treedef *b) {
    if (!a || !b) {
        gv_error(GV_ERR_ARG, "gv_treedef_equal: %s is NULL", a ? "b" : "a");
        return false;
    }
    return gv_tree_structure_equal(a->skel, b->skel);
}

typedef struct {
    gv_tensor *const *leaves;
    size_t k;
} unflatten_ctx;

static gv_status place_leaf(const gv_tree *leaf, const char *path, gv_tree **out, void *vc) {
    unflatten_ctx *c = vc;
    gv_tensor *t = c->leaves[c->k];
    if (!t)
        return gv_error(GV_ERR_ARG, "gv_tree_unflatten: leaves[%zu] (for %s) is NULL", c->k,
                        gv_tree_show_path(path));
    c->k++;
    *out = gv_tree_leaf_take(gv_tensor_retain(t));
    return *out ? GV_OK : GV_ERR_NOMEM;
}

gv_tree *gv_tree_unflatten(const gv_treedef *def, gv_tensor *const *leaves, size_t n) {
    const char *what = "gv_tree_unflatten";
    if (!def) {
        gv_error(GV_ERR_ARG, "%s: def is NULL", what);
        return NULL;
    }
    if (n != def->nleaves) {
        gv_error(GV_ERR_STRUCTURE, "%s: the structure takes %zu leaves, but %zu were given",
                 what, def->nleaves, n);
        return NULL;
    }
    if (n && !leaves) {
        gv_error(GV_ERR_ARG, "%s: leaves is NULL", what);
        return NULL;
    }
    unflatten_ctx c = {leaves, 0};
    return gv_tree_rebuild(def->skel, place_leaf, &c);
}

/* ---- map, reduce ---------------------------------------------------------- */

typedef struct {
    const char *what;
    gv_tree_map_fn fn;
    gv_tree_map_n_fn fn_n;
    void *ud;
    gv_tensor ***flat; /* map_n: the leaves of each tree */
    gv_tensor **args;  /* map_n: one leaf per tree */
    size_t ntrees, k;
} map_ctx;

static gv_status map_leaf(const gv_tree *leaf, const char *path, gv_tree **out, void *vc) {
    map_ctx *c = vc;
    gv_tensor *y;
    unsigned long long before = gv_error_count();
    if (c->fn) {
        gv_tensor *x = gv_tree_need_tensor(c->what, leaf, path);
        if (!x) return GV_ERR_ARG;
        y = c->fn(x, c->ud);
    } else {
        for (size_t t = 0; t < c->ntrees; t++) c->args[t] = c->flat[t][c->k];
        c->k++;
        y = c->fn_n(c->args, c->ntrees, c->ud);
    }
    if (!y) {
        if (gv_error_count() == before)
            gv_error(GV_ERR_ARG, "the function returned NULL without setting an error");
        return callback_failed(gv_last_status(), before, c->what, path);
    }
    *out = gv_tree_leaf_take(y);
    return *out ? GV_OK : GV_ERR_NOMEM;
}

gv_tree *gv_tree_map(gv_tree_map_fn fn, void *userdata, const gv_tree *tree) {
    if (!fn || !tree) {
        gv_error(GV_ERR_ARG, "gv_tree_map: %s is NULL", fn ? "tree" : "fn");
        return NULL;
    }
    map_ctx c = {.what = "gv_tree_map", .fn = fn, .ud = userdata};
    return gv_tree_rebuild(tree, map_leaf, &c);
}

gv_tree *gv_tree_map_n(gv_tree_map_n_fn fn, void *userdata, const gv_tree *const *trees,
                       size_t ntrees) {
    const char *what = "gv_tree_map_n";
    if (!fn || !trees || ntrees == 0) {
        gv_error(GV_ERR_ARG, "%s: %s", what, !fn ? "fn is NULL" : !trees ? "trees is NULL"
                 : "ntrees is 0");
        return NULL;
    }
    for (size_t t = 0; t < ntrees; t++)
        if (!trees[t]) {
            gv_error(GV_ERR_ARG, "%s: trees[%zu] is NULL", what, t);
            return NULL;
        }
    for (size_t t = 1; t < ntrees; t++)
        if (compare(trees[0], trees[t], CMP_STRUCTURE, NULL) != GV_OK) {
            gv_error_prefix("%s: trees[%zu] differs from trees[0]: ", what, t);
            return NULL;
        }
    map_ctx c = {.what = what, .fn_n = fn, .ud = userdata, .ntrees = ntrees};
    c.flat = calloc(ntrees, sizeof *c.flat);
    c.args = calloc(ntrees, sizeof *c.args);
    gv_tree *out = NULL;
    size_t n;
    if (!c.flat || !c.args) {
        gv_error(GV_ERR_NOMEM, "%s: out of memory", what);
        goto done;
    }
    for (size_t t = 0; t < ntrees; t++)
        if (flatten(what, trees[t], &c.flat[t], &n) != GV_OK) goto done;
    out = gv_tree_rebuild(trees[0], map_leaf, &c);
done:
    for (size_t t = 0; c.flat && t < ntrees; t++) free(c.flat[t]);
    free(c.flat);
    free(c.args);
    return out;
}

typedef struct {
    gv_tree_reduce_fn fn;
    void *ud, *acc;
} reduce_ctx;

static gv_status reduce_leaf(const char *path, const gv_tree *leaf, void *vc) {
    reduce_ctx *c = vc;
    gv_tensor *x = gv_tree_need_tensor("gv_tree_reduce", leaf, path);
    if (!x) return GV_ERR_ARG;
    unsigned long long before = gv_error_count();
    gv_status st = c->fn(c->acc, x, c->ud);
    return st == GV_OK ? GV_OK : callback_failed(st, before, "gv_tree_reduce", path);
}

gv_status gv_tree_reduce(gv_tree_reduce_fn fn, void *userdata, const gv_tree *tree,
                         void *acc) {
    if (!fn || !tree)
        return gv_error(GV_ERR_ARG, "gv_tree_reduce: %s is NULL", fn ? "tree" : "fn");
    reduce_ctx c = {fn, userdata, acc};
    gv_tree_sb path = {0};
    gv_status st = gv_tree_walk(tree, &path, reduce_leaf, &c);
    gv_tree_sb_free(&path);
    return st;
}

static gv_status zeros_leaf(const gv_tree *leaf, const char *path, gv_tree **out, void *ctx) {
    gv_tensor *x = gv_tree_need_tensor("gv_tree_zeros_like", leaf, path);
    if (!x) return GV_ERR_ARG;
    gv_tensor *z = gv_tensor_zeros(gv_tensor_dtype(x), gv_tensor_rank(x), gv_tensor_shape(x));
    if (!z) return gv_error_prefix("gv_tree_zeros_like: %s: ", gv_tree_show_path(path));
    *out = gv_tree_leaf_take(z);
    return *out ? GV_OK : GV_ERR_NOMEM;
}

gv_tree *gv_tree_zeros_like(const gv_tree *tree) {
    if (!tree) {
        gv_error(GV_ERR_ARG, "gv_tree_zeros_like: tree is NULL");
        return NULL;
    }
    return gv_tree_rebuild(tree, zeros_leaf, NULL);
}

/* ---- tree prefixes -------------------------------------------------------- */

typedef struct {
    const char *what;
    gv_tree_prefix_fn fn; /* NULL: only check the match */
    void *ud;
} prefix_ctx;

static gv_status match(const gv_tree *p, const gv_tree *f, gv_tree_sb *path,
                       const prefix_ctx *c) {
    const char *ps = gv_tree_sb_str(path), *at = gv_tree_show_path(ps);
    if (p->kind == GV_TREE_LEAF) {
        if (!c->fn) return GV_OK;
        unsigned long long before = gv_error_count();
        gv_status st = c->fn(ps, p, f, c->ud);
        return st == GV_OK ? GV_OK : callback_failed(st, before, c->what, ps);
    }
    if (p->kind != f->kind)
        return gv_error(GV_ERR_STRUCTURE, "%s: the prefix has a %s but the tree has a %s at %s",
                        c->what, gv_tree_node_name(p), gv_tree_node_name(f), at);
    if (p->kind != GV_TREE_DICT && p->n != f->n)
        return gv_error(GV_ERR_STRUCTURE, "%s: the prefix has a %s of %zu but the tree has "
                        "%zu elements at %s", c->what, gv_tree_kind_name(p->kind), p->n, f->n,
                        at);
    if (p->kind == GV_TREE_DICT) {
        size_t i = 0, j = 0;
        while (i < p->n || j < f->n) {
            const char *kp = i < p->n ? p->keys[p->sorted[i]] : NULL;
            const char *kf = j < f->n ? f->keys[f->sorted[j]] : NULL;
            int cmp = !kp ? 1 : !kf ? -1 : strcmp(kp, kf);
            if (cmp < 0)
                return gv_error(GV_ERR_STRUCTURE, "%s: key '%s' of the prefix is not in the "
                                "tree at %s", c->what, kp, at);
            if (cmp > 0)
                return gv_error(GV_ERR_STRUCTURE, "%s: key '%s' at %s is not in the prefix",
                                c->what, kf, at);
            i++, j++;
        }
    }
    for (size_t j = 0; j < p->n; j++) {
        size_t ip = gv_tree_flat_index(p, j), jf = gv_tree_flat_index(f, j);
        size_t old = gv_tree_path_push(path, p->keys[ip]);
        gv_status st = match(p->kids[ip], f->kids[jf], path, c);
        gv_tree_path_pop(path, old);
        if (st != GV_OK) return st;
    }
    return GV_OK;
}

static gv_status match_all(const char *what, const gv_tree *prefix, const gv_tree *full,
                           gv_tree_prefix_fn fn, void *ud) {
    if (!prefix || !full)
        return gv_error(GV_ERR_ARG, "%s: %s is NULL", what, prefix ? "full" : "prefix");
    gv_tree_sb path = {0};
    prefix_ctx check = {what, NULL, NULL}, call = {what, fn, ud};
    gv_status st = match(prefix, full, &path, &check);
    if (st == GV_OK && fn) st = match(prefix, full, &path, &call);
    gv_tree_sb_free(&path);
    return st;
}

gv_status gv_tree_match_prefix(const gv_tree *prefix, const gv_tree *full,
                               gv_tree_prefix_fn fn, void *userdata) {
    if (!fn) return gv_error(GV_ERR_ARG, "gv_tree_match_prefix: fn is NULL");
    return match_all("gv_tree_match_prefix", prefix, full, fn, userdata);
}

/* The leaf of full at path gets a copy of the prefix leaf above it: follow
 * the path down the prefix until it reaches a leaf (the match is checked). */
static gv_status broadcast_leaf(const gv_tree *leaf, const char *path, gv_tree **out,
                                void *ctx) {
    const gv_tree *p = ctx;
    const char *s = path;
    while (p->kind != GV_TREE_LEAF) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        size_t i = gv_tree_find_kid(p, s, n);
        if (i == SIZE_MAX) /* cannot happen after the match */
            return gv_error(GV_ERR_INTERNAL, "gv_tree_broadcast_prefix: lost at %s", path);
        p = p->kids[i];
        s = slash ? slash + 1 : s + n;
    }
    *out = gv_tree_leaf_dup(p, false);
    return *out ? GV_OK : GV_ERR_NOMEM;
}

gv_tree *gv_tree_broadcast_prefix(const gv_tree *prefix, const gv_tree *full) {
    const char *what = "gv_tree_broadcast_prefix";
    if (match_all(what, prefix, full, NULL, NULL) != GV_OK) return NULL;
    /* a prefix leaf covering an empty container has no leaf to label: rebuild
     * keeps the container, as jax.tree.map would */
    return gv_tree_rebuild(full, broadcast_leaf, (void *)prefix);
}
