/* Value leaves: trees whose leaves are symbolic values of a graph being
 * traced (the inputs and outputs of traced functions). */
#include <stdlib.h>

#include "core/error.h"
#include "graph/graph_internal.h"
#include "tree_internal.h"

gv_tree *gv_tree_new_value_leaf(gv_value v) {
    if (!gv_value_ok(v)) {
        gv_error(GV_ERR_ARG, "gv_tree_new_value_leaf: the value is not valid%s%s",
                 v.graph && gv_graph_status(v.graph) != GV_OK ? ": " : "",
                 v.graph ? gv_graph_error(v.graph) : "");
        return NULL;
    }
    gv_tree *t = gv_tree_placeholder_new();
    if (!t) return NULL;
    t->leaf_kind = GV_LEAF_VALUE;
    t->leaf.value = v;
    return t;
}

gv_status gv_tree_insert_value(gv_tree *tree, const char *path, gv_value v) {
    gv_tree *leaf = gv_tree_new_value_leaf(v);
    if (!leaf) return gv_error_prefix("gv_tree_insert_value: %s: ", path ? path : "(null)");
    return gv_tree_insert(tree, path, leaf);
}

gv_status gv_tree_set_value(gv_tree *tree, const char *path, gv_value v) {
    gv_tree *leaf = gv_tree_new_value_leaf(v);
    if (!leaf) return gv_error_prefix("gv_tree_set_value: %s: ", path ? path : "(null)");
    return gv_tree_set(tree, path, leaf);
}

gv_value gv_tree_leaf_value(const gv_tree *leaf) {
    if (!leaf || leaf->kind != GV_TREE_LEAF || leaf->leaf_kind != GV_LEAF_VALUE)
        return (gv_value){NULL, -1};
    return leaf->leaf.value;
}

/* Any value leaf of the tree, to find the graph to report an error into. */
static gv_graph *some_graph(const gv_tree *t) {
    if (!t) return NULL;
    if (t->kind == GV_TREE_LEAF) return t->leaf_kind == GV_LEAF_VALUE ? t->leaf.value.graph : NULL;
    for (size_t i = 0; i < t->n; i++) {
        gv_graph *g = some_graph(t->kids[i]);
        if (g) return g;
    }
    return NULL;
}

gv_value gv_tree_get_value(const gv_tree *tree, const char *path) {
    gv_graph *g = some_graph(tree);
    const gv_tree *node = gv_tree_get(tree, path);
    if (!node) {
        gv_graph_fail(g, gv_last_status(), "%s", gv_last_error());
        return (gv_value){g, -1};
    }
    if (node->kind != GV_TREE_LEAF || node->leaf_kind != GV_LEAF_VALUE) {
        gv_graph_fail(g, GV_ERR_ARG, "the node at %s is a %s, not a traced value",
                      gv_tree_show_path(path), gv_tree_node_name(node));
        return (gv_value){g, -1};
    }
    return node->leaf.value;
}

typedef struct indexed {
    gv_tree_rebuild_indexed_fn fn;
    void *ud;
    size_t index;
} indexed;

static gv_status indexed_leaf(const gv_tree *leaf, const char *path, gv_tree **out, void *ctx) {
    indexed *c = ctx;
    unsigned long long before = gv_error_count();
    *out = c->fn(leaf, c->index++, c->ud);
    if (*out) return GV_OK;
    if (gv_error_count() == before)
        return gv_error(GV_ERR_INTERNAL, "%s: the leaf function failed without a message",
                        gv_tree_show_path(path));
    return gv_error_prefix("%s: ", gv_tree_show_path(path));
}

gv_tree *gv_tree_rebuild_indexed(const gv_tree *src, gv_tree_rebuild_indexed_fn fn, void *ud) {
    indexed c = {fn, ud, 0};
    return gv_tree_rebuild(src, indexed_leaf, &c);
}
