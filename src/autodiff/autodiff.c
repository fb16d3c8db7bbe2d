/* Reverse-mode autodiff, graph to graph (see autodiff.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "graph/fn_internal.h"
#include "graph/ops_internal.h"
#include "grove/autodiff.h"
#include "grove/eval_shape.h"
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
    if (g->status != GV_OK) return g->status; /* a seed that could not be made */
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
    bool int_zeros; /* vjp: integer leaves get zero cotangents instead of an error */
} grads_ctx;

static gv_tree *grad_leaf(const gv_tree *leaf, size_t index, void *ud) {
    grads_ctx *c = ud;
    gv_value v = gv_tree_leaf_value(leaf);
    if (!gv_value_ok(v)) {
        gv_error(GV_ERR_ARG, "differentiated argument leaf %zu is not a value", index);
        return NULL;
    }
    if (!gv_dtype_is_float(gv_value_dtype(v)) && !c->int_zeros) {
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
 * subtree can be found in a clone. *out is NULL (with GV_OK) when sub is not
 * under root; an allocation failure is an error, not "not here". */
static gv_status find_path(const gv_tree *root, const gv_tree *sub, char **out) {
    *out = NULL;
    if (root == sub) {
        *out = strdup("");
        return *out ? GV_OK : gv_error(GV_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < gv_tree_num_children(root); i++) {
        char *rest = NULL;
        gv_status st = find_path(gv_tree_child(root, i), sub, &rest);
        if (st != GV_OK) return st;
        if (!rest) continue;
        *out = rest[0] ? gv_tree_path_join(gv_tree_key(root, i), rest) : strdup(gv_tree_key(root, i));
        free(rest);
        return *out ? GV_OK : gv_error(GV_ERR_NOMEM, "out of memory");
    }
    return GV_OK;
}

static gv_status path_of(const gv_tree *root, const gv_tree *sub, char **out) {
    gv_status st = find_path(root, sub, out);
    if (st == GV_OK && !*out) /* select_arg returns a subtree of root */
        return gv_error(GV_ERR_INTERNAL, "the differentiated argument is not in the inputs");
    return st;
}

/* (a, b), consuming both; NULL (the error set) if either is NULL or the
 * tuple cannot be made. */
static gv_tree *pair(gv_tree *a, gv_tree *b) {
    return gv_tree_tuple_take(2, (gv_tree *[]){a, b});
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
    if (path_of(f->inputs, arg, &arg_path) != GV_OK) {
        gv_error_prefix("%s: ", what);
        return NULL;
    }
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
    grads_ctx gc = {g, ct, false};
    grads = gv_tree_rebuild_indexed(gv_tree_get(c->inputs, arg_path), grad_leaf, &gc);
    if (!grads) {
        gv_error_prefix("%s: ", what);
        goto fail;
    }
    /* value_and_grad: (loss, grads) or ((loss, aux), grads); grad: grads or
     * (grads, aux). pair() consumes its parts, failed or not. */
    gv_tree *aux_part = has_aux ? gv_tree_rebuild_indexed(aux, rebind_leaf, g) : NULL;
    if (has_aux && !aux_part) {
        gv_error_prefix("%s: aux: ", what);
        goto fail;
    }
    if (mode == WANT_VALUE_AND_GRAD) {
        gv_tree *loss_part = gv_tree_new_value_leaf(L);
        out = pair(has_aux ? pair(loss_part, aux_part) : loss_part, grads);
    } else {
        out = has_aux ? pair(grads, aux_part) : grads;
    }
    grads = NULL;
    if (!out) {
        gv_error_prefix("%s: ", what);
        goto fail;
    }
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

/* ---- vjp and jvp ---- */

typedef struct ct_ctx {
    gv_graph *g;
    size_t first;   /* input index of the first cotangent */
    int32_t *roots; /* per output: its node */
    gv_value *seeds;
    int nroots;
    const gv_fn *f;
} ct_ctx;

/* A cotangent input shaped like output leaf `index`. */
static gv_tree *ct_input(const gv_tree *leaf, size_t index, void *ud) {
    ct_ctx *c = ud;
    gv_value o = gv_tree_leaf_value(leaf);
    gv_node_spec s = {.op = GV_OP_INPUT, .iattr = {(int64_t)(c->first + index), 0},
                      .dtype = gv_value_dtype(o), .rank = gv_value_rank(o),
                      .shape = gv_value_shape(o)};
    gv_value in = gv_emit(c->g, &s);
    if (!gv_value_ok(in)) {
        gv_error(gv_graph_status(c->g), "%s", gv_graph_error(c->g));
        return NULL;
    }
    if (gv_dtype_is_float(gv_value_dtype(o))) {
        c->roots[c->nroots] = o.id;
        c->seeds[c->nroots++] = in;
    }
    return gv_tree_new_value_leaf(in);
}

/* The example tensor for an output leaf (zeros of its shape). */
static gv_tree *ct_example(const gv_tree *leaf, size_t index, void *ud) {
    gv_value o = gv_tree_leaf_value(leaf);
    gv_tensor *t = gv_tensor_zeros(gv_value_dtype(o), gv_value_rank(o), gv_value_shape(o));
    if (!t) return NULL;
    gv_tree *l = gv_tree_new_leaf(t);
    gv_tensor_free(t);
    return l;
}


gv_fn *gv_vjp(const gv_fn *f, const char *wrt) {
    if (!f) {
        gv_error(GV_ERR_ARG, "gv_vjp: fn is NULL");
        return NULL;
    }
    if (!wrt) wrt = "";
    if (!gv_tree_get(f->inputs, wrt)) {
        gv_error_prefix("gv_vjp: differentiating with respect to '%s': ", wrt);
        return NULL;
    }
    gv_fn *c = fn_clone(f);
    if (!c) return NULL;
    gv_graph *g = c->graph;
    ct_ctx cc = {g, c->ninputs, malloc((c->nout + 1) * sizeof(int32_t)),
                 malloc((c->nout + 1) * sizeof(gv_value)), 0, f};
    int32_t *ct = NULL;
    gv_tree *cts = NULL, *grads = NULL, *ex = NULL, *in = NULL, *out = NULL;
    if (!cc.roots || !cc.seeds) {
        gv_error(GV_ERR_NOMEM, "gv_vjp: out of memory");
        goto fail;
    }
    cts = gv_tree_rebuild_indexed(c->outputs, ct_input, &cc);
    if (!cts) {
        gv_error_prefix("gv_vjp: ");
        goto fail;
    }
    ct = malloc((size_t)(g->n + 1) * sizeof *ct);
    if (!ct) {
        gv_error(GV_ERR_NOMEM, "gv_vjp: out of memory");
        goto fail;
    }
    if (cc.nroots > 0) {
        if (backprop(g, cc.roots, cc.seeds, cc.nroots, ct) != GV_OK) {
            gv_error(gv_graph_status(g), "gv_vjp: %s", gv_graph_error(g));
            goto fail;
        }
    } else {
        for (int32_t i = 0; i < g->n; i++) ct[i] = -1;
    }
    grads_ctx gc = {g, ct, true};
    grads = gv_tree_rebuild_indexed(gv_tree_get(c->inputs, wrt), grad_leaf, &gc);
    ex = gv_tree_rebuild_indexed(c->outputs, ct_example, NULL);
    if (!grads || !ex) {
        gv_error_prefix("gv_vjp: ");
        goto fail;
    }
    /* the new function's inputs: (f's inputs, cotangents) */
    gv_tree *old_ex = c->example, *old_in = c->inputs;
    c->example = pair(old_ex, ex);
    c->inputs = pair(old_in, cts);
    ex = cts = NULL;
    out = pair(gv_tree_clone(c->outputs), grads);
    grads = NULL;
    if (!c->example || !c->inputs || !out) goto fail;
    c->ninputs += c->nout;
    if (gv_fn_set_outputs(c, out) != GV_OK) goto fail;
    gv_tree_free(out);
    free(ct), free(cc.roots), free(cc.seeds);
    return c;
fail:
    gv_tree_free(cts), gv_tree_free(grads), gv_tree_free(ex), gv_tree_free(in), gv_tree_free(out);
    free(ct), free(cc.roots), free(cc.seeds);
    gv_fn_free(c);
    return NULL;
}

/* jvp by transposing the (linear) VJP: with V(x, u) = J(x)^T u, the VJP of V
 * with respect to u along a tangent t is J(x) t. */
typedef struct jvp_ctx {
    const gv_fn *f, *v, *w;
} jvp_ctx;

static gv_tree *vjp_part(gv_graph *g, const gv_tree *in, void *ud) {
    jvp_ctx *c = ud;
    gv_tree *r = gv_fn_call(g, c->v, in);
    gv_tree *ctx = r ? gv_tree_pop(r, "1") : NULL;
    gv_tree_free(r);
    return ctx;
}

typedef struct zeros_ctx {
    gv_graph *g;
} zeros_ctx;

static gv_tree *zero_value(const gv_tree *leaf, size_t index, void *ud) {
    zeros_ctx *z = ud;
    gv_value o = gv_tree_leaf_value(leaf);
    gv_value v = gv_full(z->g, gv_value_dtype(o), gv_value_rank(o), gv_value_shape(o), 0.0);
    if (!gv_value_ok(v)) {
        gv_error(gv_graph_status(z->g), "%s", gv_graph_error(z->g));
        return NULL;
    }
    return gv_tree_new_value_leaf(v);
}

static gv_tree *jvp_trace(gv_graph *g, const gv_tree *in, void *ud) {
    jvp_ctx *c = ud;
    const gv_tree *x = gv_tree_get(in, "0"), *t = gv_tree_get(in, "1");
    zeros_ctx z = {g};
    gv_tree *u0 = gv_tree_rebuild_indexed(c->f->outputs, zero_value, &z);
    gv_tree *args = pair(pair(gv_tree_clone(x), u0), gv_tree_clone(t));
    gv_tree *wr = args ? gv_fn_call(g, c->w, args) : NULL; /* (ct_wrt, J t) */
    gv_tree *ys = gv_fn_call(g, c->f, x);
    gv_tree *res = NULL;
    if (wr && ys) res = pair(ys, gv_tree_pop(wr, "1"));
    else gv_tree_free(ys);
    gv_tree_free(wr), gv_tree_free(args);
    return res;
}

gv_fn *gv_jvp(const gv_fn *f, const char *wrt) {
    if (!f) {
        gv_error(GV_ERR_ARG, "gv_jvp: fn is NULL");
        return NULL;
    }
    if (!wrt) wrt = "";
    jvp_ctx c = {f, NULL, NULL};
    gv_fn *g = NULL, *result = NULL;
    gv_tree *ex = NULL;
    c.v = gv_vjp(f, wrt);
    if (!c.v) return NULL;
    g = gv_trace(vjp_part, &c, ((const gv_fn *)c.v)->example);
    if (!g) goto done;
    c.w = gv_vjp(g, "1");
    if (!c.w) goto done;
    /* the jvp's example inputs: (f's inputs, tangents shaped like wrt) */
    ex = pair(gv_tree_clone(f->example), gv_tree_copy(gv_tree_get(f->example, wrt)));
    if (!ex) goto done;
    result = gv_trace(jvp_trace, &c, ex);
done:
    if (!result) gv_error_prefix("gv_jvp: ");
    gv_tree_free(ex);
    gv_fn_free((gv_fn *)c.v), gv_fn_free((gv_fn *)c.w), gv_fn_free(g);
    return result;
}

/* ---- value_and_grad inside a trace ---- */

gv_tree *gv_value_and_grad_call(gv_graph *g, gv_trace_fn loss_fn, void *userdata,
                                const gv_tree *args, int argnum, bool has_aux) {
    if (!g || gv_graph_status(g) != GV_OK) return NULL;
    if (!loss_fn || !args) {
        gv_graph_fail(g, GV_ERR_ARG, "value_and_grad: %s is NULL", loss_fn ? "args" : "loss_fn");
        return NULL;
    }
    /* only shapes and dtypes matter to the trace: no data is allocated */
    gv_tree *example = gv_tree_to_shape_dtype_struct(args);
    gv_fn *f = example ? gv_trace(loss_fn, userdata, example) : NULL;
    gv_fn *vg = f ? gv_value_and_grad(f, argnum, has_aux) : NULL;
    gv_tree_free(example);
    gv_fn_free(f);
    if (!vg) {
        gv_graph_fail(g, gv_last_status() != GV_OK ? gv_last_status() : GV_ERR_NOMEM,
                      "value_and_grad: %s", gv_last_error());
        return NULL;
    }
    gv_tree *out = gv_fn_call(g, vg, args);
    gv_fn_free(vg);
    return out;
}
