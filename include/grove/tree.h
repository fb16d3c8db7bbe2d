/* grove: trees (JAX pytrees, Flax params dicts).
 *
 * A gv_tree is a node of a nested container: a dict (string keys), a list or
 * a tuple (children by index), or a leaf. Everything a training loop passes
 * around (params, grads, optimiser state) is a tree of tensors.
 *
 * Node kinds
 *   dict    keys in insertion order for iteration and printing (Flax creates
 *           `kernel` before `bias`, and prints them so), but flattened in
 *           sorted key order (strcmp, i.e. Python's sorted() on the keys), as
 *           jax.tree_util does for dicts. An empty dict is a valid subtree: it
 *           has no leaves but it has structure, like Flax's `{}`.
 *   list,   children by index; their keys in paths are "0", "1", ... and they
 *   tuple   flatten in index order. List and tuple are distinct kinds, and
 *           neither is ever equal to a dict: a tuple-like subtree never
 *           silently turns into a dict (or a list) on a round trip.
 *   leaf    one of the gv_leaf_kind below.
 *
 * Leaf kinds
 *   GV_LEAF_TENSOR  a gv_tensor. The tree owns a reference to it.
 *   GV_LEAF_LABEL   a short string. Label leaves exist for trees that name
 *                   things rather than hold numbers: Optax's multi_transform
 *                   takes `param_labels`, a tree (or tree prefix) of strings
 *                   such as {"bert": "frozen", "classifier": "adam"}, and a
 *                   label tree says it the same way in C. Scalar int tensors
 *                   as label ids would work too, but they would need a
 *                   separate id -> name table and print as numbers; a label
 *                   prints as the Python string it mirrors.
 *   The next milestone adds symbolic graph values as a third kind; the tree
 *   code keeps every per-kind operation (release, copy, compare, print) in a
 *   few switch statements, so a kind is added in one place per file.
 *
 * Paths and keys
 *   A path names a node by its keys joined with '/': "params/Dense_0/kernel",
 *   "layers/2/bias" (list indices are written in decimal without leading
 *   zeros). A key is any non-empty string of printable characters other than
 *   '/': printable ASCII or valid UTF-8, no control characters. There is no
 *   limit on key length, path length, depth or number of children. The empty
 *   path "" names the root itself (gv_tree_get, gv_tree_foreach_leaf callbacks
 *   for a tree that is a single leaf).
 *
 * Ownership
 *   - Functions returning a new gv_tree * (gv_tree_new_*, clone, copy, map,
 *     unflatten, ...) return a root the caller owns and frees with
 *     gv_tree_free(), which frees the whole tree and releases its tensors.
 *   - Lookups (gv_tree_get, gv_tree_child, ...) return borrowed pointers into
 *     the tree, valid until that part of the tree is removed, replaced or
 *     freed. Do not gv_tree_free them (that is refused; use gv_tree_pop).
 *   - A subtree passed to gv_tree_insert/set/append is consumed: on success
 *     it becomes part of the tree, on failure it is freed. The one exception
 *     is a subtree the call refuses to touch because it is not a free-standing
 *     root (it already belongs to a tree, or the destination lies inside it):
 *     then it is left as it was and the call fails with GV_ERR_ARG. This lets
 *     builders chain: gv_tree_insert(t, "x", gv_tree_new_dict()).
 *   - Tensors passed in (gv_tree_new_leaf, *_tensor, unflatten) are retained:
 *     the caller keeps its own reference and still frees it.
 *
 * Errors: every function checks its arguments (NULL tree, NULL path, bad key)
 * and fails with GV_ERR_ARG and a message naming the argument and the path.
 * Status-returning calls return the status; pointer-returning calls return
 * NULL; either way gv_last_error() has the message (see status.h). */
#ifndef GROVE_TREE_H
#define GROVE_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "grove/status.h"
#include "grove/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef struct gv_tree gv_tree;
typedef struct gv_treedef gv_treedef;

typedef enum gv_tree_kind {
    GV_TREE_DICT = 0,
    GV_TREE_LIST = 1,
    GV_TREE_TUPLE = 2,
    GV_TREE_LEAF = 3
} gv_tree_kind;

typedef enum gv_leaf_kind {
    GV_LEAF_NONE = -1, /* not a leaf (what gv_tree_leaf_kind says of a container) */
    GV_LEAF_TENSOR = 0,
    GV_LEAF_LABEL = 1,
    GV_LEAF_VALUE = 2  /* a symbolic value of a graph being traced (graph.h) */
} gv_leaf_kind;

/* "dict", "list", "tuple", "leaf" ("?" if unknown). */
const char *gv_tree_kind_name(gv_tree_kind kind);
/* "tensor", "label", "value" ("none" for GV_LEAF_NONE, "?" if unknown). */
const char *gv_leaf_kind_name(gv_leaf_kind kind);

/* ---- construction and destruction ---------------------------------------- */

/* New empty containers. The caller owns the result. NULL on GV_ERR_NOMEM. */
gv_tree *gv_tree_new_dict(void);
gv_tree *gv_tree_new_list(void);
gv_tree *gv_tree_new_tuple(void);

/* A tree that is one tensor leaf. The tree retains t (the caller keeps its
 * reference). GV_ERR_ARG if t is NULL. */
gv_tree *gv_tree_new_leaf(gv_tensor *t);

/* A tree that is one label leaf holding a copy of label. The label may be
 * empty and may contain '/', but must be printable (GV_ERR_ARG otherwise). */
gv_tree *gv_tree_new_label(const char *label);

/* Free a whole tree: every node, and one reference to every tensor leaf.
 * NULL is a no-op. A node that belongs to another tree (one obtained from a
 * lookup) is not freed: the call sets GV_ERR_ARG and does nothing. */
void gv_tree_free(gv_tree *tree);

/* A new tree with the same structure, keys and key order whose tensor leaves
 * are the SAME tensors (retained, like jax.tree.map(lambda x: x, t)): a write
 * through one tree's tensor is seen by the other. Labels are copied. The
 * caller owns the result. tree may be any node; the copy is a root. */
gv_tree *gv_tree_clone(const gv_tree *tree);

/* Like gv_tree_clone, but every tensor leaf is copied (gv_tensor_copy): the
 * new tree shares no data with the old one. */
gv_tree *gv_tree_copy(const gv_tree *tree);

/* ---- kinds and leaves ---------------------------------------------------- */

/* The node's kind. For a NULL tree: GV_TREE_LEAF with GV_ERR_ARG set. */
gv_tree_kind gv_tree_kind_of(const gv_tree *tree);
/* True for a leaf node (false for NULL). */
bool gv_tree_is_leaf(const gv_tree *tree);
/* The kind of a leaf; GV_LEAF_NONE for a container or NULL. */
gv_leaf_kind gv_tree_leaf_kind(const gv_tree *tree);
/* The tensor of a tensor leaf, borrowed (retain it to keep it past the
 * tree). NULL with GV_ERR_ARG if tree is not a tensor leaf. */
gv_tensor *gv_tree_leaf_tensor(const gv_tree *tree);
/* Put t in a tensor leaf in place of its tensor (t retained, the old one
 * released): no lookup, no allocation, so a loop can feed each batch into an
 * input tree through a leaf handle taken once (gv_unpack). GV_ERR_ARG if
 * leaf is not a tensor leaf or t is NULL. */
gv_status gv_tree_leaf_set_tensor(gv_tree *leaf, gv_tensor *t);
/* The string of a label leaf, borrowed. NULL with GV_ERR_ARG otherwise. */
const char *gv_tree_leaf_label(const gv_tree *tree);

/* ---- building and editing by path ---------------------------------------- */

/* Insert subtree (consumed, see Ownership) at path, creating the missing
 * intermediate dicts. Errors: GV_ERR_ARG for a NULL tree/path/subtree, an
 * empty path or a bad key; GV_ERR_EXISTS if the path is taken or an
 * intermediate is a leaf (the message names that path); GV_ERR_NOT_FOUND if an
 * intermediate inside a list/tuple does not exist (sequences only grow at the
 * end: the last component may be the index one past the end, which appends).
 * On failure the tree is unchanged. */
gv_status gv_tree_insert(gv_tree *tree, const char *path, gv_tree *subtree);
/* Insert a tensor leaf at path; the tree retains t. Errors as gv_tree_insert. */
gv_status gv_tree_insert_tensor(gv_tree *tree, const char *path, gv_tensor *t);

/* Like gv_tree_insert, but an existing node at path is replaced (and freed),
 * keeping its position in the key order (Python's d[k] = v). */
gv_status gv_tree_set(gv_tree *tree, const char *path, gv_tree *subtree);
/* Set a tensor leaf at path; the tree retains t. */
gv_status gv_tree_set_tensor(gv_tree *tree, const char *path, gv_tensor *t);

/* Append subtree (consumed) / a tensor leaf (retained) to a list or tuple.
 * GV_ERR_ARG if seq is not a list or tuple. */
gv_status gv_tree_append(gv_tree *seq, gv_tree *subtree);
gv_status gv_tree_append_tensor(gv_tree *seq, gv_tensor *t);

/* The node at path (borrowed); "" gives tree itself. NULL on failure:
 * GV_ERR_NOT_FOUND naming the first missing component and the full path. */
gv_tree *gv_tree_get(const gv_tree *tree, const char *path);
/* The tensor at path (borrowed). GV_ERR_NOT_FOUND as gv_tree_get; GV_ERR_ARG
 * if the node there is not a tensor leaf. */
gv_tensor *gv_tree_get_tensor(const gv_tree *tree, const char *path);
/* True if path names a node (no error is set either way, except GV_ERR_ARG
 * for a NULL argument, which gives false). */
bool gv_tree_contains(const gv_tree *tree, const char *path);

/* Detach the node at path and return it as a root the caller owns. Later
 * list/tuple elements move down one index. GV_ERR_NOT_FOUND as gv_tree_get;
 * GV_ERR_ARG for the empty path. */
gv_tree *gv_tree_pop(gv_tree *tree, const char *path);
/* Remove and free the node at path. Errors as gv_tree_pop. */
gv_status gv_tree_remove(gv_tree *tree, const char *path);

/* ---- children ------------------------------------------------------------ */

/* Number of children (0 for a leaf and for NULL, with GV_ERR_ARG for NULL). */
size_t gv_tree_num_children(const gv_tree *tree);
/* Child i (borrowed), in insertion order for dicts, index order otherwise.
 * NULL with GV_ERR_ARG if i is out of range or tree is a leaf. */
gv_tree *gv_tree_child(const gv_tree *tree, size_t i);
/* Key of child i ("0", "1", ... in a list or tuple), borrowed. */
const char *gv_tree_key(const gv_tree *tree, size_t i);
/* The child under one key (borrowed); key must not contain '/'.
 * GV_ERR_NOT_FOUND if absent. */
gv_tree *gv_tree_child_by_key(const gv_tree *tree, const char *key);

/* ---- leaves: iterate, count, flatten ------------------------------------- */

/* Called with the leaf's full path ("" for a root leaf) and the leaf node
 * (borrowed). Return GV_OK to go on; any other status stops the walk. */
typedef gv_status (*gv_tree_leaf_fn)(const char *path, const gv_tree *leaf, void *userdata);

/* Call fn on every leaf in flatten order (dict keys sorted, depth first). A
 * failing fn stops the walk; its status is returned and its message gets
 * "gv_tree_foreach_leaf: <path>: " in front. */
gv_status gv_tree_foreach_leaf(const gv_tree *tree, gv_tree_leaf_fn fn, void *userdata);

/* Number of leaves of every kind (0 for NULL, with GV_ERR_ARG). */
size_t gv_tree_num_leaves(const gv_tree *tree);
/* Total number of tensor elements, i.e. the parameter count (0 for NULL). */
int64_t gv_tree_size(const gv_tree *tree);
/* Total bytes of tensor data (0 for NULL). Shared tensors count each time. */
size_t gv_tree_nbytes(const gv_tree *tree);

/* jax.tree.leaves: *leaves gets a malloc'd array of the *n tensors in flatten
 * order. The array is the caller's (free() it); the tensors are BORROWED from
 * the tree (retain any you keep past the tree). A tree without leaves gives
 * *leaves = NULL, *n = 0. GV_ERR_ARG if a leaf is not a tensor (naming its
 * path). On failure *leaves = NULL, *n = 0. */
gv_status gv_tree_flatten(const gv_tree *tree, gv_tensor ***leaves, size_t *n);

/* The paths of the leaves, in the same order as gv_tree_flatten ("" for a
 * root leaf). Works for every leaf kind. *paths is a malloc'd array of
 * malloc'd strings: free it with gv_tree_paths_free. */
gv_status gv_tree_leaf_paths(const gv_tree *tree, char ***paths, size_t *n);
void gv_tree_paths_free(char **paths, size_t n);

/* ---- structure (treedef) ------------------------------------------------- */

/* jax.tree.structure: the tree's shape without its leaves (containers, keys,
 * key order, where the leaves are). The caller owns it (gv_treedef_free). */
gv_treedef *gv_tree_structure(const gv_tree *tree);
void gv_treedef_free(gv_treedef *def);
/* Number of leaves the structure takes (0 for NULL, with GV_ERR_ARG). */
size_t gv_treedef_num_leaves(const gv_treedef *def);
/* Same containers, kinds and keys (insertion order does not matter). */
bool gv_treedef_equal(const gv_treedef *a, const gv_treedef *b);
/* JAX's repr: "PyTreeDef({'a': *, 'b': [*, *]})" (dict keys sorted, as JAX
 * stores them). Malloc'd; the caller frees it. */
char *gv_treedef_repr(const gv_treedef *def);

/* jax.tree.unflatten: a new tree with def's structure (and dict insertion
 * order) whose leaves, in flatten order, are leaves[0..n-1], retained. The
 * caller owns the result. GV_ERR_STRUCTURE if n differs from the number of
 * leaves def takes; GV_ERR_ARG if a leaf is NULL. */
gv_tree *gv_tree_unflatten(const gv_treedef *def, gv_tensor *const *leaves, size_t n);

/* True if a and b have the same containers, kinds and keys (leaf kinds,
 * shapes and dtypes do not matter; nor does dict insertion order). */
bool gv_tree_structure_equal(const gv_tree *a, const gv_tree *b);

/* GV_OK if b has a's structure and every pair of leaves has the same kind,
 * and for tensors and traced values the same shape and dtype (labels must be
 * equal). Otherwise
 * GV_ERR_STRUCTURE with a message, prefixed by "what: " when what is not
 * NULL, naming the FIRST difference in flatten order, a being the reference:
 *   "params/Dense_0/bias: shape (4,) vs (5,)"   "params/w: dtype float32 vs int32"
 *   "missing key 'bias' at params/Dense_0"      "unexpected key 'b' at <root>"
 *   "dict vs list at params/layers"             "list length 2 vs 3 at x" */
gv_status gv_tree_check_same(const gv_tree *a, const gv_tree *b, const char *what);

/* ---- transformations ----------------------------------------------------- */

/* Returns a NEW reference (the tree takes it over), or NULL with the error
 * set. To keep a leaf as it is, return gv_tensor_retain(leaf). */
typedef gv_tensor *(*gv_tree_map_fn)(gv_tensor *leaf, void *userdata);

/* jax.tree.map(fn, tree): a new tree of the same structure and key order
 * whose leaves are fn(leaf), called in flatten order. The caller owns it.
 * Errors: GV_ERR_ARG for a non-tensor leaf; a failing fn's error, with
 * "gv_tree_map: <path>: " in front of its message. */
gv_tree *gv_tree_map(gv_tree_map_fn fn, void *userdata, const gv_tree *tree);

/* leaves[k] is the leaf of trees[k] at the same path; n is ntrees. */
typedef gv_tensor *(*gv_tree_map_n_fn)(gv_tensor *const *leaves, size_t n, void *userdata);

/* jax.tree.map(fn, t0, t1, ...): all trees must have trees[0]'s structure
 * (GV_ERR_STRUCTURE naming the tree index and the first differing path,
 * before fn is ever called). The result has trees[0]'s key order. Errors of fn
 * as gv_tree_map. GV_ERR_ARG if ntrees is 0 or a tree is NULL. */
gv_tree *gv_tree_map_n(gv_tree_map_n_fn fn, void *userdata, const gv_tree *const *trees,
                       size_t ntrees);

/* Fold one leaf into *acc. */
typedef gv_status (*gv_tree_reduce_fn)(void *acc, gv_tensor *leaf, void *userdata);

/* jax.tree.reduce: calls fn(acc, leaf, userdata) on every leaf in flatten
 * order. The accumulator is whatever acc points to, updated in place, so any
 * type works: a double for a sum of squares, an int64_t for a count, a
 * gv_tensor * for an elementwise total; the caller sets it to the initial
 * value before the call. A failing fn stops the fold (message prefixed with
 * "gv_tree_reduce: <path>: "). GV_ERR_ARG for a non-tensor leaf. */
gv_status gv_tree_reduce(gv_tree_reduce_fn fn, void *userdata, const gv_tree *tree,
                         void *acc);

/* jax.tree.map(jnp.zeros_like, tree): same structure, zero tensors of the
 * same shapes and dtypes. The caller owns the result. */
gv_tree *gv_tree_zeros_like(const gv_tree *tree);

/* ---- tree prefixes (Optax multi_transform labels) ------------------------- */

/* Called once per leaf of the prefix tree with the path of that leaf, the
 * leaf (typically a label) and the subtree of the full tree it covers (both
 * borrowed; the subtree may be a single leaf or an empty dict). */
typedef gv_status (*gv_tree_prefix_fn)(const char *path, const gv_tree *prefix_leaf,
                                       const gv_tree *subtree, void *userdata);

/* Match a tree prefix against a full tree, as JAX does for a prefix tree
 * argument: every container of prefix must be a container of the same kind and
 * keys (or length) in full; where prefix has a leaf, full may have any subtree.
 * E.g. {"bert": 'frozen', "classifier": 'adam'} against the params
 * {"bert": {...}, "classifier": {...}}. The whole match is checked first
 * (GV_ERR_STRUCTURE naming the path, e.g. "key 'pooler' at <root> is not in
 * the prefix"), then fn is called for each prefix leaf in flatten order. A
 * failing fn stops the walk ("gv_tree_match_prefix: <path>: " in front). */
gv_status gv_tree_match_prefix(const gv_tree *prefix, const gv_tree *full,
                               gv_tree_prefix_fn fn, void *userdata);

/* A new tree with full's structure (and key order) in which every leaf is a
 * copy of the prefix leaf covering it (tensors retained, labels copied): the
 * full label tree that multi_transform needs. Errors as gv_tree_match_prefix.
 * The caller owns the result. */
gv_tree *gv_tree_broadcast_prefix(const gv_tree *prefix, const gv_tree *full);

/* ---- printing ------------------------------------------------------------ */

/* What Python's print(tree) shows for a nested dict of jax Arrays, i.e.
 * str(dict): keys in insertion order as Python strings, ": " and ", "
 * separators, each tensor as gv_tensor_repr (opts may be NULL), lists in
 * [...], tuples in (...) ("(x,)" for one element), labels as 'strings':
 *   {'params': {'bias': Array([0., 0.], dtype=float32)}}
 * A multi-line array keeps its own continuation lines, exactly as Python
 * embeds it. Malloc'd; the caller frees it. */
char *gv_tree_repr(const gv_tree *tree, const gv_print_options *opts);
/* Write gv_tree_repr(tree, NULL) and a newline to f (Python's print). */
gv_status gv_tree_print(FILE *f, const gv_tree *tree);

/* print(jax.tree.map(jnp.shape, tree)): each tensor as its shape tuple,
 * {'params': {'layer': {'bias': (4,), 'kernel': (8, 4)}}}. Caller frees. */
char *gv_tree_repr_shapes(const gv_tree *tree);

/* A table in insertion order, one row per node: indented name, shape and
 * dtype for leaves, and parameter count with size (Flax's tabulate format,
 * "36 (144 B)") for every leaf and subtree, then the total:
 *   name        shape   dtype    params
 *   params                       36 (144 B)
 *     layer                      36 (144 B)
 *       kernel  (8, 4)  float32  32 (128 B)
 *       bias    (4,)    float32  4 (16 B)
 *   Total Parameters: 36 (144 B)
 * Each line ends in '\n' with no trailing spaces. Caller frees. */
char *gv_tree_summary(const gv_tree *tree);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
