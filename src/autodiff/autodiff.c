/* Reverse-mode autodiff, graph to graph (see autodiff.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "graph/fn_internal.h"
#include "graph/ops_internal.h"
#include "grove/autodiff.h"
#include "tree/tree_internal.h"

/* Append the backward pass of `root` (seeded with `seed`) to g. ct[i] gets
 * the cotangent id of node i (-1: none) for every node i < g->n at entry.
 * Nodes are visited in reverse order, so each node's cotangent is complete
 * (all its consumers come later) before its VJP runs. */
static gv_status backprop(gv_graph *g, const int32_t *roots, const gv_value *seeds, int nroots,
                          int32_t *ct) {
    int32_t n = g->n;
    for (int32_t i = 0; i < n; i++) ct[i] = -1;
    int32_t top = -1;
    for (int r = 0; r < nroots; r++) {
        int32_t id = roots[r];
        ct[id] = ct[id] < 0 ? seeds[r].id : gv_add((gv_value){g, ct[id]}, seeds[r]).id;
        if (id > top) top = id;
    }
    for (int32_t i = top; i >= 0; i--) {
        if (ct[i] < 0) continue;
        gv_node nd = g->nodes[i]; /* a copy: the node array may move as we append */
        const gv_opdef *def = &gv_opdefs[nd.op];
        if (nd.nin == 0 || (def->flags & GV_OPF_NONDIFF)) continue;
        gv_value ins[nd.nin], cts[nd.nin];
        for (int k = 0; k < nd.nin; k++) {
            ins[k] = (gv_value){g, nd.in[k]};
            cts[k] = gv_invalid(g);
        }
        def->vjp(&nd, ins, (gv_value){g, i}, (gv_value){g, ct[i]}, cts);
        if (g->status != GV_OK) return g->status;
        for (int k = 0; k < nd.nin; k++) {
            if (!gv_value_ok(cts[k])) continue;
            int32_t j = nd.in[k];
            if (!gv_dtype_is_float(g->nodes[j].dtype)) continue;
            gv_value c = cts[k];
            if (gv_value_dtype(c) != g->nodes[j].dtype) c = gv_cast(c, g->nodes[j].dtype);
            ct[j] = ct[j] < 0 ? c.id : gv_add((gv_value){g, ct[j]}, c).id;
        }
        if (g->status != GV_OK) return g->status;
    }
    return GV_OK;
}

/* Build the tree of cotangents for the input subtree `sub` (value leaves,
 * INPUT nodes): each leaf's cotangent, or zeros where none flowed. */
typedef struct grads_ctx {
    gv_graph *g;
    const int32_t *ct;
} grads_ctx;

static gv_tree *grad_leaf(const gv_tree *leaf, size_t index, void *ud) {
    grads_ctx *c = ud;
    gv_value v = gv_tree_leaf_value(leaf);
    if (!gv_value_ok(v)) {
        gv_error(GV_ERR_ARG, "differentiated argument leaf %zu is not a value", index);
        return NULL;
    }
    if (!gv_dtype_is_float(gv_value_dtype(v))) {
        gv_error(GV_ERR_DTYPE, "grad requires float inputs, but leaf %zu of the differentiated "
                 "argument is %s", index, gv_dtype_name(gv_value_dtype(v)));
        return NULL;
    }
    gv_value gr = c->ct[v.id] >= 0 ? (gv_value){c->g, c->ct[v.id]} : gv_zeros_like(v);
    if (!gv_value_ok(gr)) {
        gv_error(gv_graph_status(c->g), "%s", gv_graph_error(c->g));
        return NULL;
    }
    return gv_tree_new_value_leaf(gr);
}

/* The selected input subtree (borrowed). */
static const gv_tree *select_arg(const gv_fn *f, int argnum, const char *path) {
    if (path) {
        const gv_tree *t = gv_tree_get(f->inputs, path);
        if (!t) gv_error_prefix("differentiating with respect to '%s': ", path);
        return t;
    }
    if (gv_tree_is_leaf(f->inputs) || argnum < 0 ||
        (size_t)argnum >= gv_tree_num_children(f->inputs)) {
        gv_error(GV_ERR_ARG, "argnum %d: the inputs have %zu top-level arguments", argnum,
                 gv_tree_is_leaf(f->inputs) ? (size_t)0 : gv_tree_num_children(f->inputs));
        return NULL;
    }
    return gv_tree_child(f->inputs, (size_t)argnum);
}

/* A copy of f with its graph cloned and its trees rebuilt onto the clone. */
static gv_tree *rebind_leaf(const gv_tree *leaf, size_t index, void *ud) {
    gv_value v = gv_tree_leaf_value(leaf);
    if (!gv_tree_is_leaf(leaf) || gv_tree_leaf_kind(leaf) != GV_LEAF_VALUE)
        return gv_tree_clone(leaf);
    return gv_tree_new_value_leaf((gv_value){(gv_graph *)ud, v.id});
}

static gv_fn *fn_clone(const gv_fn *f) {
    gv_fn *c = calloc(1, sizeof *c);
    if (!c) {
        gv_error(GV_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->graph = gv_graph_clone(f->graph);
    if (!c->graph) goto fail;
    c->example = gv_tree_clone(f->example);
    c->inputs = gv_tree_rebuild_indexed(f->inputs, rebind_leaf, c->graph);
    c->ninputs = f->ninputs;
    if (!c->example || !c->inputs) goto fail;
    gv_tree *out = gv_tree_rebuild_indexed(f->outputs, rebind_leaf, c->graph);
    if (!out || gv_fn_set_outputs(c, out) != GV_OK) {
        gv_tree_free(out);
        goto fail;
    }
    gv_tree_free(out);
    return c;
fail:
    gv_fn_free(c);
    return NULL;
}

/* Path of a subtree of the input tree relative to f->inputs, so the same
 * subtree can be found in a clone. */
static gv_status path_of(const gv_tree *root, const gv_tree *sub, char **out) {
    if (root == sub) {
        *out = strdup("");
        return *out ? GV_OK : gv_error(GV_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < gv_tree_num_children(root); i++) {
        const gv_tree *c = gv_tree_child(root, i);
        char *rest = NULL;
        if (path_of(c, sub, &rest) == GV_OK && rest) {
            const char *key = gv_tree_key(root, i);
            size_t n = strlen(key) + strlen(rest) + 2;
            *out = malloc(n);
            if (!*out) {
                free(rest);
                return gv_error(GV_ERR_NOMEM, "out of memory");
            }
            snprintf(*out, n, rest[0] ? "%s/%s" : "%s%s", key, rest);
            free(rest);
            return GV_OK;
        }
        free(rest);
    }
    *out = NULL;
    return GV_ERR_NOT_FOUND;
}

typedef enum { WANT_VALUE_AND_GRAD, WANT_GRAD } grad_mode;

static gv_fn *make_grad(const gv_fn *f, int argnum, const char *wrt, bool has_aux,
                        grad_mode mode) {
    const char *what = mode == WANT_GRAD ? "gv_grad" : "gv_value_and_grad";
    if (!f) {
        gv_error(GV_ERR_ARG, "%s: fn is NULL", what);
        return NULL;
    }
    const gv_tree *arg = select_arg(f, argnum, wrt);
    if (!arg) {
        gv_error_prefix("%s: ", what);
        return NULL;
    }
    char *arg_path = NULL;
    if (path_of(f->inputs, arg, &arg_path) != GV_OK) return NULL;
    /* the loss: a float scalar leaf, or child 0 of (loss, aux) */
    const gv_tree *loss_leaf = f->outputs, *aux = NULL;
    if (has_aux) {
        if (gv_tree_is_leaf(f->outputs) || gv_tree_num_children(f->outputs) != 2) {
            gv_error(GV_ERR_STRUCTURE, "%s: has_aux needs the function to return (loss, aux)",
                     what);
            free(arg_path);
            return NULL;
        }
        loss_leaf = gv_tree_child(f->outputs, 0);
        aux = gv_tree_child(f->outputs, 1);
    }
    gv_value loss = gv_tree_leaf_value(loss_leaf);
    if (!gv_value_ok(loss) || gv_value_rank(loss) != 0 || !gv_dtype_is_float(gv_value_dtype(loss))) {
        gv_error(GV_ERR_SHAPE, "%s: the loss must be a float scalar%s", what,
                 gv_value_ok(loss) ? " (got a non-scalar or integer value)" : " leaf");
        free(arg_path);
        return NULL;
    }
    gv_fn *c = fn_clone(f);
    if (!c) {
        free(arg_path);
        return NULL;
    }
    gv_graph *g = c->graph;
    int32_t *ct = malloc((size_t)(g->n + 1) * sizeof *ct);
    gv_tree *grads = NULL, *out = NULL;
    if (!ct) {
        gv_error(GV_ERR_NOMEM, "%s: out of memory", what);
        goto fail;
    }
    gv_value L = {g, loss.id};
    gv_value seed = gv_ones_like(L);
    if (backprop(g, &L.id, &seed, 1, ct) != GV_OK) {
        gv_error(gv_graph_status(g), "%s: %s", what, gv_graph_error(g));
        goto fail;
    }
    grads_ctx gc = {g, ct};
    grads = gv_tree_rebuild_indexed(gv_tree_get(c->inputs, arg_path), grad_leaf, &gc);
    if (!grads) {
        gv_error_prefix("%s: ", what);
        goto fail;
    }
    out = gv_tree_new_tuple();
    if (!out) goto fail;
    gv_tree *value_part = has_aux ? gv_tree_new_tuple() : gv_tree_new_value_leaf(L);
    if (has_aux) {
        gv_tree_append(value_part, gv_tree_new_value_leaf(L));
        gv_tree_append(value_part, gv_tree_rebuild_indexed(aux, rebind_leaf, g));
    }
    if (mode == WANT_VALUE_AND_GRAD) {
        gv_tree_append(out, value_part);
        gv_tree_append(out, grads);
    } else if (has_aux) { /* (grads, aux) */
        gv_tree_append(out, grads);
        gv_tree_append(out, gv_tree_pop(value_part, "1"));
        gv_tree_free(value_part);
    } else {
        gv_tree_free(value_part);
        gv_tree_free(out);
        out = grads;
    }
    grads = NULL;
    if (gv_fn_set_outputs(c, out) != GV_OK) goto fail;
    gv_tree_free(out);
    free(ct);
    free(arg_path);
    return c;
fail:
    gv_tree_free(grads);
    gv_tree_free(out);
    free(ct);
    free(arg_path);
    gv_fn_free(c);
    return NULL;
}

gv_fn *gv_value_and_grad(const gv_fn *f, int argnum, bool has_aux) {
    return make_grad(f, argnum, NULL, has_aux, WANT_VALUE_AND_GRAD);
}
gv_fn *gv_value_and_grad_path(const gv_fn *f, const char *wrt, bool has_aux) {
    return make_grad(f, -1, wrt ? wrt : "", has_aux, WANT_VALUE_AND_GRAD);
}
gv_fn *gv_grad(const gv_fn *f, int argnum, bool has_aux) {
    return make_grad(f, argnum, NULL, has_aux, WANT_GRAD);
}
