/* gv_fn: tracing a C function into a graph, evaluating it, dumping it. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fn_internal.h"
#include "grove/eval_shape.h"
#include "ops_internal.h"
#include "tree/tree_internal.h"

/* Input placeholders: leaf i of the examples becomes INPUT node i. */
static gv_tree *make_input_leaf(const gv_tree *leaf, size_t index, void *ud) {
    gv_graph *g = ud;
    gv_tensor *t = gv_tree_leaf_tensor(leaf);
    if (!t) return NULL;
    gv_node_spec s = {.op = GV_OP_INPUT, .iattr = {(int64_t)index, 0},
                      .dtype = gv_tensor_dtype(t), .rank = gv_tensor_rank(t),
                      .shape = gv_tensor_shape(t)};
    gv_value v = gv_emit(g, &s);
    if (!gv_value_ok(v)) {
        gv_error(gv_graph_status(g), "%s", gv_graph_error(g));
        return NULL;
    }
    return gv_tree_new_value_leaf(v);
}

typedef struct collect {
    gv_graph *g;
    int32_t *ids;
    size_t n;
} collect;

static gv_tree *collect_output(const gv_tree *leaf, size_t index, void *ud) {
    collect *c = ud;
    gv_value v = gv_tree_leaf_value(leaf);
    if (!gv_value_ok(v) || v.graph != c->g) {
        gv_error(GV_ERR_ARG, "output leaf %zu is not a value of the traced graph", index);
        return NULL;
    }
    c->ids[index] = v.id;
    return gv_tree_new_value_leaf(v);
}

gv_fn *gv_trace(gv_trace_fn fn, void *userdata, const gv_tree *example_inputs) {
    if (!fn || !example_inputs) {
        gv_error(GV_ERR_ARG, "gv_trace: %s is NULL", fn ? "example_inputs" : "fn");
        return NULL;
    }
    gv_fn *f = calloc(1, sizeof *f);
    if (!f || !(f->graph = gv_graph_new())) {
        free(f);
        gv_error(GV_ERR_NOMEM, "gv_trace: out of memory");
        return NULL;
    }
    f->example = gv_tree_clone(example_inputs);
    if (!f->example) goto fail;
    f->ninputs = gv_tree_num_leaves(example_inputs);
    f->inputs = gv_tree_rebuild_indexed(example_inputs, make_input_leaf, f->graph);
    if (!f->inputs) {
        gv_error_prefix("gv_trace: example inputs: ");
        goto fail;
    }
    gv_tree *out = fn(f->graph, f->inputs, userdata);
    if (gv_graph_status(f->graph) != GV_OK) {
        gv_tree_free(out);
        gv_error(gv_graph_status(f->graph), "gv_trace: %s", gv_graph_error(f->graph));
        goto fail;
    }
    if (!out) {
        if (gv_last_status() == GV_OK)
            gv_error(GV_ERR_ARG, "gv_trace: the traced function returned no outputs");
        else
            gv_error_prefix("gv_trace: the traced function failed: ");
        goto fail;
    }
    gv_status st = gv_fn_set_outputs(f, out);
    gv_tree_free(out);
    if (st != GV_OK) goto fail;
    return f;
fail:
    gv_fn_free(f);
    return NULL;
}

gv_status gv_fn_set_outputs(gv_fn *f, const gv_tree *out) {
    collect c = {f->graph, NULL, 0};
    c.n = gv_tree_num_leaves(out);
    c.ids = malloc((c.n ? c.n : 1) * sizeof *c.ids);
    if (!c.ids) return gv_error(GV_ERR_NOMEM, "gv_trace: out of memory");
    gv_tree *copy = gv_tree_rebuild_indexed(out, collect_output, &c);
    if (!copy) {
        free(c.ids);
        return gv_error_prefix("gv_trace: ");
    }
    gv_tree_free(f->outputs);
    free(f->out_ids);
    f->outputs = copy;
    f->out_ids = c.ids;
    f->nout = c.n;
    return GV_OK;
}

void gv_fn_free(gv_fn *f) {
    if (!f) return;
    gv_tree_free(f->example);
    gv_tree_free(f->inputs);
    gv_tree_free(f->outputs);
    free(f->out_ids);
    gv_graph_free(f->graph);
    free(f);
}

const gv_tree *gv_fn_inputs(const gv_fn *fn) { return fn ? fn->example : NULL; }
const gv_tree *gv_fn_outputs(const gv_fn *fn) { return fn ? fn->outputs : NULL; }
gv_graph *gv_fn_graph(const gv_fn *fn) { return fn ? fn->graph : NULL; }

typedef struct fill_out {
    gv_tensor **tensors;
} fill_out;

static gv_tree *tensor_leaf(const gv_tree *leaf, size_t index, void *ud) {
    fill_out *o = ud;
    return gv_tree_new_leaf(o->tensors[index]);
}

gv_status gv_fn_eval(const gv_fn *fn, const gv_tree *inputs, gv_tree **outputs) {
    if (!fn || !inputs || !outputs)
        return gv_error(GV_ERR_ARG, "gv_fn_eval: NULL argument");
    *outputs = NULL;
    gv_status st = gv_tree_check_same(fn->example, inputs, "gv_fn_eval: inputs");
    if (st == GV_OK) st = gv_tree_check_concrete(inputs, "gv_fn_eval: inputs");
    if (st != GV_OK) return st;
    gv_tensor **in = NULL;
    size_t nin = 0;
    if ((st = gv_tree_flatten(inputs, &in, &nin)) != GV_OK) return st;
    gv_tensor **out = calloc(fn->nout ? fn->nout : 1, sizeof *out);
    if (!out) {
        free(in);
        return gv_error(GV_ERR_NOMEM, "gv_fn_eval: out of memory");
    }
    st = gv_graph_eval(fn->graph, in, (int)nin, fn->out_ids, (int)fn->nout, out);
    if (st == GV_OK) {
        fill_out o = {out};
        *outputs = gv_tree_rebuild_indexed(fn->outputs, tensor_leaf, &o);
        if (!*outputs) st = gv_last_status();
    }
    for (size_t i = 0; i < fn->nout; i++) gv_tensor_free(out[i]);
    free(out);
    free(in);
    return st;
}

int32_t gv_fn_num_nodes(const gv_fn *fn) {
    if (!fn) return 0;
    const gv_graph *g = fn->graph;
    char *need = calloc((size_t)g->n + 1, 1);
    if (!need) return g->n;
    for (size_t i = 0; i < fn->nout; i++) need[fn->out_ids[i]] = 1;
    int32_t count = 0;
    for (int32_t i = g->n - 1; i >= 0; i--) {
        if (!need[i]) continue;
        count++;
        for (int k = 0; k < g->nodes[i].nin; k++) need[g->nodes[i].in[k]] = 1;
    }
    free(need);
    return count;
}

/* ---- dumps ---- */

typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool oom;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)n;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            va_end(ap2);
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
    va_end(ap2);
}

static void sb_node(strbuf *b, const gv_graph *g, int32_t i) {
    const gv_node *n = &g->nodes[i];
    char *shape = gv_shape_str(n->rank, n->shape);
    sb_printf(b, "%%%d = %s", i, gv_opdefs[n->op].name);
    for (int k = 0; k < n->nin; k++) sb_printf(b, "%s%%%d", k ? ", " : " ", n->in[k]);
    if (n->nattr) {
        sb_printf(b, " {");
        for (int k = 0; k < n->nattr; k++) sb_printf(b, k ? ",%lld" : "%lld", (long long)n->attr[k]);
        sb_printf(b, "}");
    }
    if (n->op == GV_OP_INPUT) sb_printf(b, " #%lld", (long long)n->iattr[0]);
    if (n->op == GV_OP_FULL) sb_printf(b, " value=%g", n->fattr[0]);
    sb_printf(b, " : %s%s", gv_dtype_name(n->dtype), shape ? shape : "?");
    if (n->scope >= 0) sb_printf(b, "  @%s", g->scopes[n->scope]);
    free(shape);
}

char *gv_fn_dump(const gv_fn *fn) {
    if (!fn) {
        gv_error(GV_ERR_ARG, "gv_fn_dump: fn is NULL");
        return NULL;
    }
    strbuf b = {0};
    const gv_graph *g = fn->graph;
    for (int32_t i = 0; i < g->n; i++) {
        sb_node(&b, g, i);
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "outputs:");
    for (size_t i = 0; i < fn->nout; i++) sb_printf(&b, " %%%d", fn->out_ids[i]);
    sb_printf(&b, "\n");
    if (b.oom) {
        free(b.s);
        gv_error(GV_ERR_NOMEM, "gv_fn_dump: out of memory");
        return NULL;
    }
    return b.s;
}

char *gv_fn_dump_dot(const gv_fn *fn) {
    if (!fn) {
        gv_error(GV_ERR_ARG, "gv_fn_dump_dot: fn is NULL");
        return NULL;
    }
    strbuf b = {0};
    const gv_graph *g = fn->graph;
    sb_printf(&b, "digraph grove {\n  node [shape=box, fontname=monospace];\n");
    for (int32_t i = 0; i < g->n; i++) {
        const gv_node *n = &g->nodes[i];
        char *shape = gv_shape_str(n->rank, n->shape);
        sb_printf(&b, "  n%d [label=\"%%%d %s\\n%s%s\"%s];\n", i, i, gv_opdefs[n->op].name,
                  gv_dtype_name(n->dtype), shape ? shape : "?",
                  n->op == GV_OP_INPUT ? ", style=filled, fillcolor=lightblue" : "");
        free(shape);
        for (int k = 0; k < n->nin; k++) sb_printf(&b, "  n%d -> n%d;\n", n->in[k], i);
    }
    for (size_t i = 0; i < fn->nout; i++)
        sb_printf(&b, "  out%zu [shape=ellipse, label=\"out %zu\"];\n  n%d -> out%zu;\n", i, i,
                  fn->out_ids[i], i);
    sb_printf(&b, "}\n");
    if (b.oom) {
        free(b.s);
        gv_error(GV_ERR_NOMEM, "gv_fn_dump_dot: out of memory");
        return NULL;
    }
    return b.s;
}

/* ---- calling a traced function inside another trace (inlining) ---- */

typedef struct call_ctx {
    gv_graph *g;
    const int32_t *map; /* callee node id -> caller node id */
} call_ctx;

static gv_tree *mapped_output(const gv_tree *leaf, size_t index, void *ud) {
    call_ctx *c = ud;
    gv_value v = gv_tree_leaf_value(leaf);
    return gv_tree_new_value_leaf((gv_value){c->g, c->map[v.id]});
}

gv_tree *gv_fn_call(gv_graph *g, const gv_fn *fn, const gv_tree *args) {
    if (!g || g->status != GV_OK) return NULL;
    if (!fn || !args) {
        gv_graph_fail(g, GV_ERR_ARG, "gv_fn_call: %s is NULL", fn ? "args" : "fn");
        return NULL;
    }
    /* args must match the callee's inputs: same structure, shapes, dtypes */
    if (gv_tree_check_same(fn->inputs, args, "gv_fn_call: arguments") != GV_OK) {
        gv_graph_fail(g, gv_last_status(), "%s", gv_last_error());
        return NULL;
    }
    const gv_graph *src = fn->graph;
    int32_t *map = malloc((size_t)(src->n + 1) * sizeof *map);
    char *need = calloc((size_t)src->n + 1, 1);
    gv_value *argv = malloc((fn->ninputs + 1) * sizeof *argv);
    gv_tree *out = NULL;
    if (!map || !need || !argv) {
        gv_graph_fail(g, GV_ERR_NOMEM, "gv_fn_call: out of memory");
        goto done;
    }
    size_t k = 0;
    for (int32_t i = 0; i < src->n; i++) map[i] = -1;
    /* the argument values in flatten order stand for the callee's INPUT nodes */
    char **paths = NULL;
    size_t np = 0;
    if (gv_tree_leaf_paths(args, &paths, &np) != GV_OK || np != fn->ninputs) {
        gv_graph_fail(g, GV_ERR_STRUCTURE, "gv_fn_call: %zu arguments for %zu inputs", np,
                      fn->ninputs);
        gv_tree_paths_free(paths, np);
        goto done;
    }
    for (k = 0; k < np; k++) {
        argv[k] = gv_tree_leaf_value(gv_tree_get(args, paths[k]));
        if (!gv_value_ok(argv[k]) || argv[k].graph != g) {
            gv_graph_fail(g, GV_ERR_ARG, "gv_fn_call: argument %s is not a value of this graph",
                          gv_tree_show_path(paths[k]));
            gv_tree_paths_free(paths, np);
            goto done;
        }
    }
    gv_tree_paths_free(paths, np);
    for (size_t i = 0; i < fn->nout; i++) need[fn->out_ids[i]] = 1;
    for (int32_t i = src->n - 1; i >= 0; i--)
        if (need[i])
            for (int j = 0; j < src->nodes[i].nin; j++) need[src->nodes[i].in[j]] = 1;
    for (int32_t i = 0; i < src->n && g->status == GV_OK; i++) {
        if (!need[i]) continue;
        const gv_node *nd = &src->nodes[i];
        if (nd->op == GV_OP_INPUT) {
            map[i] = argv[nd->iattr[0]].id;
            continue;
        }
        gv_value ins[nd->nin > 0 ? nd->nin : 1];
        for (int j = 0; j < nd->nin; j++) ins[j] = (gv_value){g, map[nd->in[j]]};
        gv_node_spec s = {.op = nd->op, .nin = nd->nin, .in = ins, .nattr = nd->nattr,
                          .attr = nd->attr, .tensor = nd->tensor, .dtype = nd->dtype,
                          .rank = nd->rank, .shape = nd->shape};
        memcpy(s.fattr, nd->fattr, sizeof s.fattr);
        memcpy(s.iattr, nd->iattr, sizeof s.iattr);
        map[i] = gv_emit(g, &s).id;
    }
    if (g->status == GV_OK) {
        call_ctx c = {g, map};
        out = gv_tree_rebuild_indexed(fn->outputs, mapped_output, &c);
        if (!out) gv_graph_fail(g, gv_last_status(), "gv_fn_call: %s", gv_last_error());
    }
done:
    free(map);
    free(need);
    free(argv);
    return gv_graph_own(g, out);
}
