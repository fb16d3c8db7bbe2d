/* The graph under construction: nodes, arena, sticky errors, scopes, and
 * gv_emit, the one place where a node is validated and appended. */
#define _GNU_SOURCE /* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor_internal.h"
#include "tree/tree_internal.h"
#include "graph_internal.h"

typedef struct gv_arena_block {
    struct gv_arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} gv_arena_block;

gv_graph *gv_graph_new(void) {
    gv_graph *g = calloc(1, sizeof *g);
    if (!g) gv_error(GV_ERR_NOMEM, "gv_graph_new: out of memory");
    return g;
}

void gv_graph_free(gv_graph *g) {
    if (!g) return;
    for (int32_t i = 0; i < g->n; i++) gv_tensor_free(g->nodes[i].tensor);
    free(g->nodes);
    for (gv_arena_block *b = g->arena, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    for (int32_t i = 0; i < g->nscopes; i++) free(g->scopes[i]);
    free(g->scopes);
    free(g->scope_stack);
    free(g->error);
    for (size_t i = 0; i < g->nowned; i++) gv_tree_release_owned(g->owned[i]);
    free(g->owned);
    free(g);
}

gv_value gv_value_fail(gv_graph *g, gv_status status, const char *fmt, ...) {
    if (g && g->status == GV_OK) {
        va_list ap;
        va_start(ap, fmt);
        char *msg = NULL;
        if (!fmt || vasprintf(&msg, fmt, ap) < 0) msg = NULL;
        va_end(ap);
        gv_graph_fail(g, status != GV_OK ? status : GV_ERR_ARG, "%s", msg ? msg : "failed");
        free(msg);
    }
    return gv_invalid(g);
}

gv_tree *gv_graph_own(gv_graph *g, gv_tree *tree) {
    if (!tree || tree->owner == g) return tree;
    if (!g) {
        gv_tree_free(tree);
        gv_error(GV_ERR_ARG, "gv_graph_own: graph is NULL");
        return NULL;
    }
    if (tree->parent || tree->owner) {
        gv_graph_fail(g, GV_ERR_ARG, "gv_graph_own: the tree is not a root the caller owns");
        return NULL;
    }
    if (g->nowned == g->owned_cap) {
        size_t cap = g->owned_cap ? 2 * g->owned_cap : 16;
        gv_tree **o = realloc(g->owned, cap * sizeof *o);
        if (!o) {
            gv_tree_free(tree);
            gv_graph_fail(g, GV_ERR_NOMEM, "gv_graph_own: out of memory");
            return NULL;
        }
        g->owned = o, g->owned_cap = cap;
    }
    tree->owner = g;
    g->owned[g->nowned++] = tree;
    return tree;
}

void *gv_graph_alloc(gv_graph *g, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    if (bytes == 0) bytes = 16;
    gv_arena_block *b = g->arena;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = bytes > 16384 ? bytes : 16384;
        gv_arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        g->arena = b = nb;
    }
    void *p = b->data + b->used;
    b->used += bytes;
    return p;
}

gv_node *gv_graph_node(const gv_graph *g, int32_t id) { return &g->nodes[id]; }

int64_t *gv_node_set_shape(gv_graph *g, gv_node *n, int rank, const int64_t *shape) {
    n->rank = rank;
    n->shape = gv_graph_alloc(g, (size_t)(rank > 0 ? rank : 1) * sizeof(int64_t));
    if (n->shape && shape && rank > 0) memcpy(n->shape, shape, (size_t)rank * sizeof *shape);
    return n->shape;
}

gv_status gv_graph_status(const gv_graph *g) { return g ? g->status : GV_ERR_ARG; }
const char *gv_graph_error(const gv_graph *g) {
    return g && g->error ? g->error : "";
}

const char *gv_graph_scope_prefix(const gv_graph *g) {
    if (!g || g->depth == 0) return "";
    return g->scopes[g->scope_stack[g->depth - 1]];
}

void gv_graph_fail(gv_graph *g, gv_status status, const char *fmt, ...) {
    if (!g || g->status != GV_OK) return; /* the first error sticks */
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    const char *scope = gv_graph_scope_prefix(g);
    size_t slen = strlen(scope);
    char *msg = malloc(slen + 2 + (size_t)(n > 0 ? n : 0) + 1);
    if (msg) {
        size_t off = 0;
        if (slen) {
            memcpy(msg, scope, slen);
            memcpy(msg + slen, ": ", 2);
            off = slen + 2;
        }
        vsnprintf(msg + off, (size_t)(n > 0 ? n : 0) + 1, fmt, ap2);
    }
    va_end(ap2);
    g->status = status;
    g->error = msg;
}

void gv_graph_push_scope(gv_graph *g, const char *name) {
    if (!g || !name) return;
    char *path = gv_tree_path_join(gv_graph_scope_prefix(g), name);
    if (!path) goto oom;
    if (g->nscopes == g->scopes_cap) {
        int32_t cap = g->scopes_cap ? 2 * g->scopes_cap : 16;
        char **s = realloc(g->scopes, (size_t)cap * sizeof *s);
        if (!s) {
            free(path);
            goto oom;
        }
        g->scopes = s;
        g->scopes_cap = cap;
    }
    if (g->depth == g->stack_cap) {
        int32_t cap = g->stack_cap ? 2 * g->stack_cap : 16;
        int32_t *s = realloc(g->scope_stack, (size_t)cap * sizeof *s);
        if (!s) {
            free(path);
            goto oom;
        }
        g->scope_stack = s;
        g->stack_cap = cap;
    }
    g->scopes[g->nscopes] = path;
    g->scope_stack[g->depth++] = g->nscopes++;
    return;
oom:
    gv_graph_fail(g, GV_ERR_NOMEM, "out of memory pushing scope '%s'", name);
}

void gv_graph_pop_scope(gv_graph *g) {
    if (g && g->depth > 0) g->depth--;
}

gv_value gv_invalid(gv_graph *g) { return (gv_value){g, -1}; }

bool gv_value_ok(gv_value v) {
    return v.graph && v.id >= 0 && v.id < v.graph->n;
}

gv_graph *gv_graph_of(const char *op, const gv_value *xs, int n) {
    gv_graph *g = NULL;
    for (int i = 0; i < n; i++)
        if (xs[i].graph) {
            g = xs[i].graph;
            break;
        }
    if (!g) return NULL;
    for (int i = 0; i < n; i++) {
        if (xs[i].graph && xs[i].graph != g) {
            gv_graph_fail(g, GV_ERR_ARG, "%s: operand %d belongs to another graph", op, i);
            return NULL;
        }
        if (!gv_value_ok(xs[i])) {
            if (g->status == GV_OK)
                gv_graph_fail(g, GV_ERR_ARG, "%s: operand %d is not a valid value", op, i);
            return NULL;
        }
    }
    return g->status == GV_OK ? g : NULL;
}

char *gv_shape_str(int rank, const int64_t *shape) {
    if (rank < 0 || (rank > 0 && !shape)) return strdup("[?]"); /* an invalid value */
    size_t cap = 3 + (size_t)rank * 21;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t off = 0;
    s[off++] = '[';
    for (int i = 0; i < rank; i++)
        off += (size_t)snprintf(s + off, cap - off, i ? ",%lld" : "%lld", (long long)shape[i]);
    s[off++] = ']';
    s[off] = '\0';
    return s;
}

gv_value gv_emit(gv_graph *g, const gv_node_spec *spec) {
    if (!g || g->status != GV_OK) return gv_invalid(g);
    const gv_opdef *def = &gv_opdefs[spec->op];
    if (def->nin >= 0 && spec->nin != def->nin) {
        gv_graph_fail(g, GV_ERR_INTERNAL, "%s: %d operands, expected %d", def->name, spec->nin,
                      def->nin);
        return gv_invalid(g);
    }
    for (int i = 0; i < spec->nin; i++)
        if (spec->in[i].graph != g || !gv_value_ok(spec->in[i])) {
            gv_graph_fail(g, GV_ERR_ARG, "%s: operand %d is not a valid value of this graph",
                          def->name, i);
            return gv_invalid(g);
        }
    if (g->n == g->cap) {
        int32_t cap = g->cap ? 2 * g->cap : 256;
        gv_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            gv_graph_fail(g, GV_ERR_NOMEM, "%s: out of memory growing the graph", def->name);
            return gv_invalid(g);
        }
        g->nodes = nodes;
        g->cap = cap;
    }
    gv_node n = {0};
    n.op = spec->op;
    n.nin = spec->nin;
    n.in = gv_graph_alloc(g, (size_t)(spec->nin ? spec->nin : 1) * sizeof(int32_t));
    n.nattr = spec->nattr;
    n.attr = gv_graph_alloc(g, (size_t)(spec->nattr ? spec->nattr : 1) * sizeof(int64_t));
    if (!n.in || !n.attr) {
        gv_graph_fail(g, GV_ERR_NOMEM, "%s: out of memory", def->name);
        return gv_invalid(g);
    }
    for (int i = 0; i < spec->nin; i++) n.in[i] = spec->in[i].id;
    if (spec->nattr) memcpy(n.attr, spec->attr, (size_t)spec->nattr * sizeof(int64_t));
    memcpy(n.fattr, spec->fattr, sizeof n.fattr);
    memcpy(n.iattr, spec->iattr, sizeof n.iattr);
    n.scope = g->depth ? g->scope_stack[g->depth - 1] : -1;
    /* the requested type, for rules that take it from the spec */
    n.dtype = spec->dtype;
    if (spec->rank > 0 || spec->shape) {
        if (!gv_node_set_shape(g, &n, spec->rank, spec->shape)) {
            gv_graph_fail(g, GV_ERR_NOMEM, "%s: out of memory", def->name);
            return gv_invalid(g);
        }
    } else {
        n.rank = 0;
        n.shape = gv_graph_alloc(g, sizeof(int64_t));
    }
    const gv_node *ins[spec->nin ? spec->nin : 1];
    for (int i = 0; i < spec->nin; i++) ins[i] = &g->nodes[spec->in[i].id];
    if (def->infer(g, &n, ins) != GV_OK || g->status != GV_OK) {
        if (g->status == GV_OK)
            gv_graph_fail(g, GV_ERR_INTERNAL, "%s: shape rule failed without a message",
                          def->name);
        return gv_invalid(g);
    }
    if (spec->tensor) n.tensor = gv_tensor_retain(spec->tensor);
    g->nodes[g->n] = n;
    return (gv_value){g, g->n++};
}

/* ---- value queries ---- */

/* The node of v, or NULL with the error recorded (see graph.h). */
static const gv_node *query(const char *what, gv_value v) {
    if (gv_value_ok(v)) return &v.graph->nodes[v.id];
    if (!v.graph)
        gv_error(GV_ERR_ARG, "%s: the value belongs to no graph (an invalid value)", what);
    else
        gv_graph_fail(v.graph, GV_ERR_ARG, "%s: value %d is not a valid value of this graph",
                      what, (int)v.id);
    return NULL;
}

gv_dtype gv_value_dtype(gv_value v) {
    const gv_node *n = query("gv_value_dtype", v);
    return n ? n->dtype : GV_DTYPE_INVALID;
}
int gv_value_rank(gv_value v) {
    const gv_node *n = query("gv_value_rank", v);
    return n ? n->rank : -1;
}
const int64_t *gv_value_shape(gv_value v) {
    const gv_node *n = query("gv_value_shape", v);
    return n ? n->shape : NULL;
}
int64_t gv_value_size(gv_value v) {
    const gv_node *n = query("gv_value_size", v);
    if (!n) return -1;
    int64_t s = 1;
    for (int i = 0; i < n->rank; i++) s *= n->shape[i];
    return s;
}
int64_t gv_dim(gv_value v, int axis) {
    if (!query("gv_dim", v)) return -1;
    const gv_node *n = &v.graph->nodes[v.id];
    int a = axis < 0 ? axis + n->rank : axis;
    if (a < 0 || a >= n->rank) {
        gv_graph_fail(v.graph, GV_ERR_ARG, "dim: axis %d is out of range for rank %d", axis,
                      n->rank);
        return -1;
    }
    return n->shape[a];
}

/* A deep copy: nodes, arena contents, constants (retained), scopes. */
gv_graph *gv_graph_clone(const gv_graph *src) {
    gv_graph *g = gv_graph_new();
    if (!g) return NULL;
    g->nodes = malloc((size_t)(src->cap ? src->cap : 1) * sizeof *g->nodes);
    g->cap = src->cap;
    if (!g->nodes) goto oom;
    for (int32_t i = 0; i < src->n; i++) {
        gv_node n = src->nodes[i];
        int64_t *shape = gv_graph_alloc(g, (size_t)(n.rank ? n.rank : 1) * 8);
        int32_t *in = gv_graph_alloc(g, (size_t)(n.nin ? n.nin : 1) * 4);
        int64_t *attr = gv_graph_alloc(g, (size_t)(n.nattr ? n.nattr : 1) * 8);
        if (!shape || !in || !attr) goto oom;
        memcpy(shape, n.shape, (size_t)n.rank * 8);
        memcpy(in, n.in, (size_t)n.nin * 4);
        memcpy(attr, n.attr, (size_t)n.nattr * 8);
        n.shape = shape, n.in = in, n.attr = attr;
        n.tensor = gv_tensor_retain(n.tensor);
        g->nodes[i] = n;
        g->n = i + 1;
    }
    for (int32_t i = 0; i < src->nscopes; i++) {
        gv_graph_push_scope(g, src->scopes[i]); /* interns a copy at index i */
        if (g->status != GV_OK) goto oom;
        g->depth = 0;
        free(g->scopes[i]);
        g->scopes[i] = strdup(src->scopes[i]);
        if (!g->scopes[i]) goto oom;
    }
    g->ninputs = src->ninputs;
    return g;
oom:
    gv_graph_free(g);
    gv_error(GV_ERR_NOMEM, "gv_graph_clone: out of memory");
    return NULL;
}
