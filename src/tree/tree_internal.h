/* grove internal: the tree node layout and helpers shared by src/tree. */
#ifndef GROVE_TREE_INTERNAL_H
#define GROVE_TREE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "grove/graph.h"
#include "grove/tree.h"

/* The leaves of a treedef's skeleton: a place for a leaf, holding nothing. */
enum { GV_LEAF_PLACEHOLDER = 100 };

struct gv_tree {
    gv_tree_kind kind;
    gv_tree *parent;  /* NULL for a root: only roots may be freed or inserted */
    struct gv_graph *owner; /* a root the graph owns (gv_graph_own): gv_tree_free
                               leaves it alone, insertion clones it */
    /* containers */
    size_t n, cap;
    char **keys;      /* n keys in insertion order; in a sequence keys[i] is "i" */
    gv_tree **kids;   /* n children, in the order of keys */
    size_t *sorted;   /* dicts only: kid indices in strcmp order of their keys,
                         i.e. JAX's flatten order; also the lookup index */
    /* leaves */
    int leaf_kind;    /* a gv_leaf_kind, or GV_LEAF_PLACEHOLDER */
    union {
        gv_tensor *tensor; /* one reference owned by the tree */
        char *label;       /* owned */
        gv_value value;    /* a traced value: plain data, owned by its graph */
    } leaf;
};

/* Free a tree the graph owned (the graph is being freed). */
void gv_tree_release_owned(gv_tree *tree);

struct gv_treedef {
    gv_tree *skel;    /* the structure, with placeholder leaves */
    size_t nleaves;
};

/* Kid index of the j-th child in flatten order. */
static inline size_t gv_tree_flat_index(const gv_tree *t, size_t j) {
    return t->sorted ? t->sorted[j] : j;
}

/* Kid index of the key s[0..n) in container t (a decimal index in a
 * sequence), or SIZE_MAX if absent. */
size_t gv_tree_find_kid(const gv_tree *t, const char *s, size_t n);

/* Length of the valid, printable UTF-8 character at s (n bytes left), or 0. */
size_t gv_tree_printable_char(const unsigned char *s, size_t n);

/* ---- a growable string (no length limits anywhere) ---- */
typedef struct gv_tree_sb {
    char *buf;
    size_t len, cap;
    bool oom;         /* an append failed: the content is incomplete */
} gv_tree_sb;

void gv_tree_sb_putn(gv_tree_sb *sb, const char *s, size_t n);
void gv_tree_sb_puts(gv_tree_sb *sb, const char *s);
void gv_tree_sb_printf(gv_tree_sb *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The content so far ("" when empty). */
const char *gv_tree_sb_str(const gv_tree_sb *sb);
/* Hand the buffer over (malloc'd, never NULL on success); NULL with
 * GV_ERR_NOMEM (naming `what`) if an append failed. The builder is reset. */
char *gv_tree_sb_finish(gv_tree_sb *sb, const char *what);
void gv_tree_sb_free(gv_tree_sb *sb);

/* Python's repr() of a string: quotes chosen as Python chooses them,
 * backslash escapes, control characters and invalid UTF-8 as \xNN. */
void gv_tree_sb_repr(gv_tree_sb *sb, const char *s, size_t n);
/* Python's repr() of a shape tuple: "()", "(4,)", "(8, 4)". */
void gv_tree_sb_shape(gv_tree_sb *sb, int rank, const int64_t *shape);

/* Path building: append "/key" (or "key" at the root); returns the length to
 * restore with gv_tree_path_pop. */
size_t gv_tree_path_push(gv_tree_sb *path, const char *key);
void gv_tree_path_pop(gv_tree_sb *path, size_t len);
/* The same as a new string: "parent/key", or "key" when parent is "".
 * Malloc'd; NULL when out of memory (no error set). */
char *gv_tree_path_join(const char *parent, const char *key);
/* A path for messages: the path, or "<root>" for the empty path. */
const char *gv_tree_show_path(const char *path);

/* Walk the leaves in flatten order with their paths (the path builder is
 * restored on return). Stops at, and returns, the first non-OK status. */
typedef gv_status (*gv_tree_walk_fn)(const char *path, const gv_tree *leaf, void *ctx);
gv_status gv_tree_walk(const gv_tree *t, gv_tree_sb *path, gv_tree_walk_fn fn, void *ctx);

/* Build a new tree with src's containers and keys, replacing every leaf with
 * what fn makes of it. fn is called in flatten order and stores a new root in
 * *out, or returns an error with the message set. NULL on failure. */
typedef gv_status (*gv_tree_rebuild_fn)(const gv_tree *leaf, const char *path, gv_tree **out,
                                        void *ctx);
gv_tree *gv_tree_rebuild(const gv_tree *src, gv_tree_rebuild_fn fn, void *ctx);

/* gv_tree_rebuild with the leaf's flatten index instead of its path; fn
 * returns the new leaf (a root) or NULL with the error set. */
typedef gv_tree *(*gv_tree_rebuild_indexed_fn)(const gv_tree *leaf, size_t index, void *ud);
gv_tree *gv_tree_rebuild_indexed(const gv_tree *src, gv_tree_rebuild_indexed_fn fn, void *ud);

/* The node at path (borrowed), or NULL if there is none; never sets an
 * error. For internal lookups where "absent" is an answer, not a failure
 * (gv_tree_get would leave a GV_ERR_NOT_FOUND message behind). */
gv_tree *gv_tree_find(const gv_tree *tree, const char *path);

/* A tuple of the n kids (each a root, consumed). A NULL kid is a
 * constructor that failed and set the error: then every kid is freed and
 * the result is NULL with that message kept (gv_tree_append would replace
 * it with "subtree is NULL"). */
gv_tree *gv_tree_tuple_take(size_t n, gv_tree *const *kids);

/* Leaf nodes. gv_tree_leaf_take takes over the caller's reference to t. */
gv_tree *gv_tree_leaf_take(gv_tensor *t);
gv_tree *gv_tree_placeholder_new(void);
/* A copy of a leaf node: tensors retained (deep: copied), labels copied. */
gv_tree *gv_tree_leaf_dup(const gv_tree *leaf, bool deep);
/* The name of a node for messages: "dict", "list", "tuple", or the leaf kind. */
const char *gv_tree_node_name(const gv_tree *t);

/* Set GV_ERR_ARG saying what a tensor-only operation found at path, unless
 * leaf is a tensor leaf; returns its tensor or NULL. */
gv_tensor *gv_tree_need_tensor(const char *what, const gv_tree *leaf, const char *path);

#endif
