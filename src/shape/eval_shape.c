/* Shape-only trees and jax.eval_shape (eval_shape.h). The shape-only
 * tensor itself lives in src/core/tensor.c; this file works on trees of
 * them, and traces a function for its output shapes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "grove/eval_shape.h"
#include "tree/tree_internal.h"

/* ---- a tree's shape-only twin --------------------------------------------- */

static gv_tree *shape_leaf(const gv_tree *leaf, const char *path) {
    gv_dtype dtype;
    int rank;
    const int64_t *shape;
    switch (gv_tree_leaf_kind(leaf)) {
    case GV_LEAF_TENSOR: {
        const gv_tensor *t = gv_tree_leaf_tensor(leaf);
        dtype = gv_tensor_dtype(t), rank = gv_tensor_rank(t), shape = gv_tensor_shape(t);
        break;
    }
    case GV_LEAF_VALUE: {
        gv_value v = gv_tree_leaf_value(leaf);
        if (!gv_value_ok(v)) {
            gv_error(GV_ERR_ARG, "%s: an invalid traced value (a failed op)",
                     gv_tree_show_path(path));
            return NULL;
        }
        dtype = gv_value_dtype(v), rank = gv_value_rank(v), shape = gv_value_shape(v);
        break;
    }
    case GV_LEAF_LABEL:
        return gv_tree_new_label(gv_tree_leaf_label(leaf));
    default:
        gv_error(GV_ERR_INTERNAL, "%s: unknown leaf kind", gv_tree_show_path(path));
        return NULL;
    }
    gv_tensor *s = gv_shape_dtype_struct(dtype, rank, shape);
    gv_tree *out = s ? gv_tree_new_leaf(s) : NULL;
    gv_tensor_free(s);
    if (!out) gv_error_prefix("%s: ", gv_tree_show_path(path));
    return out;
}

static gv_tree *new_container(gv_tree_kind kind) {
    return kind == GV_TREE_DICT ? gv_tree_new_dict()
         : kind == GV_TREE_LIST ? gv_tree_new_list()
                                : gv_tree_new_tuple();
}

/* The same containers, keys and key order (empty subtrees too). */
static gv_tree *shape_node(const gv_tree *t, const char *path) {
    gv_tree_kind kind = gv_tree_kind_of(t);
    if (kind == GV_TREE_LEAF) return shape_leaf(t, path);
    gv_tree *out = new_container(kind);
    if (!out) return NULL;
    size_t n = gv_tree_num_children(t);
    for (size_t i = 0; i < n; i++) {
        const char *key = gv_tree_key(t, i);
        char *cpath = gv_tree_path_join(path, key);
        gv_tree *child = cpath ? shape_node(gv_tree_child(t, i), cpath) : NULL;
        free(cpath);
        /* insert and append consume the child, failed or not */
        if (!child || (kind == GV_TREE_DICT ? gv_tree_insert(out, key, child)
                                            : gv_tree_append(out, child)) != GV_OK) {
            if (!cpath) gv_error(GV_ERR_NOMEM, "out of memory");
            gv_tree_free(out);
            return NULL;
        }
    }
    return out;
}

gv_tree *gv_tree_to_shape_dtype_struct(const gv_tree *tree) {
    if (!tree) {
        gv_error(GV_ERR_ARG, "gv_tree_to_shape_dtype_struct: tree is NULL");
        return NULL;
    }
    gv_tree *out = shape_node(tree, "");
    if (!out) gv_error_prefix("gv_tree_to_shape_dtype_struct: ");
    return out;
}

/* ---- refusing shape-only leaves where data is needed ----------------------- */

/* The first shape-only tensor leaf in insertion order, or NULL; its path is
 * built (malloc'd) only when there is one. */
static const gv_tensor *first_abstract(const gv_tree *t, char **path) {
    if (gv_tree_is_leaf(t)) {
        const gv_tensor *x = gv_tree_leaf_kind(t) == GV_LEAF_TENSOR ? gv_tree_leaf_tensor(t) : NULL;
        if (!gv_tensor_is_abstract(x)) return NULL;
        *path = strdup("");
        return x;
    }
    for (size_t i = 0, n = gv_tree_num_children(t); i < n; i++) {
        const gv_tensor *x = first_abstract(gv_tree_child(t, i), path);
        if (!x) continue;
        const char *key = gv_tree_key(t, i);
        char *full = !*path ? NULL : **path ? gv_tree_path_join(key, *path) : strdup(key);
        free(*path);
        *path = full;
        return x;
    }
    return NULL;
}

/* "2,3" for a shape (malloc'd; NULL without memory). */
static char *dims_text(const gv_tensor *t) {
    int rank = gv_tensor_rank(t);
    size_t cap = 2 + 21 * (size_t)rank, n = 0;
    char *s = malloc(cap);
    for (int i = 0; s && i < rank; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%lld", i ? "," : "",
                              (long long)gv_tensor_shape(t)[i]);
    if (s) s[n] = '\0';
    return s;
}

gv_status gv_tree_check_concrete(const gv_tree *tree, const char *what) {
    const char *w = what ? what : "gv_tree_check_concrete";
    if (!tree) return gv_error(GV_ERR_ARG, "%s: tree is NULL", w);
    char *path = NULL;
    const gv_tensor *x = first_abstract(tree, &path);
    if (!x) return GV_OK;
    char *dims = dims_text(x);
    gv_status st = gv_error(GV_ERR_ARG, "%s: %s: the leaf is shape-only (ShapeDtypeStruct "
                            "%s[%s]) and has no data", w, path ? gv_tree_show_path(path) : "?",
                            gv_dtype_name(gv_tensor_dtype(x)), dims ? dims : "?");
    free(dims);
    free(path);
    return st;
}

/* ---- jax.eval_shape -------------------------------------------------------- */

gv_tree *gv_eval_shape(gv_trace_fn fn, void *userdata, const gv_tree *example_inputs) {
    gv_fn *f = gv_trace(fn, userdata, example_inputs);
    if (!f) {
        gv_error_prefix("gv_eval_shape: ");
        return NULL;
    }
    gv_tree *out = gv_tree_to_shape_dtype_struct(gv_fn_outputs(f));
    if (!out) gv_error_prefix("gv_eval_shape: outputs: ");
    gv_fn_free(f);
    return out;
}
