/* gv_tree: building and editing by path, key validation, JAX flatten order,
 * structure/unflatten, comparisons, map/map_n/reduce, prefixes, printing,
 * and the error message of every bad argument. Run under ASan too: every
 * test frees everything it makes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h" /* callbacks below set messages as grove code does */
#include "testutil.h"

/* ---- helpers -------------------------------------------------------------- */

/* A float32 vector [start, start+1, ...) of n elements. */
static gv_tensor *vec(int64_t n, double start) {
    return GVT_NN(gv_tensor_arange(GV_F32, start, start + (double)n, 1));
}

static double at(const gv_tensor *t, int64_t i) {
    double v;
    GVT_OK(gv_tensor_get_flat(t, i, &v));
    return v;
}

/* Insert / set a tensor and drop the caller's reference (the tree keeps its own). */
static void put(gv_tree *t, const char *path, gv_tensor *x) {
    GVT_OK(gv_tree_insert_tensor(t, path, x));
    gv_tensor_free(x);
}

/* A leaf that takes over x's reference. */
static gv_tree *leaf_of(gv_tensor *x) {
    gv_tree *t = GVT_NN(gv_tree_new_leaf(x));
    gv_tensor_free(x);
    return t;
}

static void reput(gv_tree *t, const char *path, gv_tensor *x) {
    GVT_OK(gv_tree_set_tensor(t, path, x));
    gv_tensor_free(x);
}

/* {'b': [0], 'a': [10, 11], 'c': {'x': [20, 21, 22], 'a': [30]}} inserted in
 * that (unsorted) order. */
static gv_tree *abc_tree(void) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    put(t, "b", vec(1, 0));
    put(t, "a", vec(2, 10));
    put(t, "c/x", vec(3, 20));
    put(t, "c/a", vec(1, 30));
    return t;
}

/* Flax's linen basics: {'params': {'layer': {'kernel': (2,2), 'bias': (2,)}}} */
static gv_tree *params_tree(void) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    gv_tensor *k = vec(4, 0);
    gv_tensor *k2 = GVT_NN(gv_tensor_reshape(k, GV_DIMS(2, 2)));
    gv_tensor_free(k);
    put(t, "params/layer/kernel", k2);
    put(t, "params/layer/bias", GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2))));
    return t;
}

static void assert_repr(const gv_tree *t, const char *expected) {
    char *s = GVT_NN(gv_tree_repr(t, NULL));
    cr_assert_str_eq(s, expected);
    free(s);
}

static void assert_shapes(const gv_tree *t, const char *expected) {
    char *s = GVT_NN(gv_tree_repr_shapes(t));
    cr_assert_str_eq(s, expected);
    free(s);
}

static void assert_paths(const gv_tree *t, const char *const *expected, size_t n) {
    char **paths;
    size_t np;
    GVT_OK(gv_tree_leaf_paths(t, &paths, &np));
    cr_assert_eq(np, n, "got %zu paths, expected %zu", np, n);
    for (size_t i = 0; i < n; i++) cr_assert_str_eq(paths[i], expected[i], "path %zu", i);
    gv_tree_paths_free(paths, np);
}

/* ---- construction, kinds, ownership --------------------------------------- */

Test(tree, kinds_and_names) {
    gv_tree *d = GVT_NN(gv_tree_new_dict()), *l = GVT_NN(gv_tree_new_list());
    gv_tree *u = GVT_NN(gv_tree_new_tuple()), *lab = GVT_NN(gv_tree_new_label("adam"));
    gv_tensor *x = vec(3, 0);
    gv_tree *leaf = GVT_NN(gv_tree_new_leaf(x));
    cr_assert_eq(gv_tree_kind_of(d), GV_TREE_DICT);
    cr_assert_eq(gv_tree_kind_of(l), GV_TREE_LIST);
    cr_assert_eq(gv_tree_kind_of(u), GV_TREE_TUPLE);
    cr_assert_eq(gv_tree_kind_of(leaf), GV_TREE_LEAF);
    cr_assert(gv_tree_is_leaf(leaf) && gv_tree_is_leaf(lab) && !gv_tree_is_leaf(d));
    cr_assert(!gv_tree_is_leaf(NULL));
    cr_assert_eq(gv_tree_leaf_kind(leaf), GV_LEAF_TENSOR);
    cr_assert_eq(gv_tree_leaf_kind(lab), GV_LEAF_LABEL);
    cr_assert_eq(gv_tree_leaf_kind(d), GV_LEAF_NONE);
    cr_assert_eq(gv_tree_leaf_kind(NULL), GV_LEAF_NONE);
    cr_assert_eq(gv_tree_leaf_tensor(leaf), x);
    cr_assert_str_eq(gv_tree_leaf_label(lab), "adam");
    GVT_NULL(gv_tree_leaf_tensor(lab), GV_ERR_ARG, "is a label, not a tensor leaf");
    GVT_NULL(gv_tree_leaf_tensor(d), GV_ERR_ARG, "is a dict, not a tensor leaf");
    GVT_NULL(gv_tree_leaf_tensor(NULL), GV_ERR_ARG, "tree is NULL");
    GVT_NULL(gv_tree_leaf_label(leaf), GV_ERR_ARG, "is a tensor, not a label leaf");
    GVT_NULL(gv_tree_leaf_label(NULL), GV_ERR_ARG, "tree is NULL");
    gv_clear_error();
    cr_assert_eq(gv_tree_kind_of(NULL), GV_TREE_LEAF);
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    cr_assert_str_eq(gv_tree_kind_name(GV_TREE_TUPLE), "tuple");
    cr_assert_str_eq(gv_tree_kind_name((gv_tree_kind)9), "?");
    cr_assert_str_eq(gv_leaf_kind_name(GV_LEAF_LABEL), "label");
    cr_assert_str_eq(gv_leaf_kind_name(GV_LEAF_NONE), "none");
    cr_assert_str_eq(gv_leaf_kind_name((gv_leaf_kind)9), "?");
    /* the leaf retained x: it survives the caller's free */
    gv_tensor_free(x);
    cr_assert_eq(at(gv_tree_leaf_tensor(leaf), 2), 2.0);
    GVT_NULL(gv_tree_new_leaf(NULL), GV_ERR_ARG, "tensor is NULL");
    GVT_NULL(gv_tree_new_label(NULL), GV_ERR_ARG, "label is NULL");
    GVT_NULL(gv_tree_new_label("a\nb"), GV_ERR_ARG, "non-printable byte 0x0a");
    gv_tree *slash = GVT_NN(gv_tree_new_label("a/b")); /* labels may hold '/' */
    gv_tree *empty = GVT_NN(gv_tree_new_label(""));
    gv_tree *trees[] = {d, l, u, lab, leaf, slash, empty};
    for (size_t i = 0; i < 7; i++) gv_tree_free(trees[i]);
    gv_tree_free(NULL);
}

Test(tree, free_refuses_attached_nodes) {
    gv_tree *t = abc_tree();
    gv_tree *c = GVT_NN(gv_tree_get(t, "c"));
    gv_clear_error();
    gv_tree_free(c); /* refused: c belongs to t */
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    cr_assert(strstr(gv_last_error(), "belongs to a tree"));
    cr_assert_eq(gv_tree_num_leaves(t), 4);
    gv_tree_free(t);
}

/* ---- insert / set / get / remove ------------------------------------------ */

Test(tree, insert_creates_intermediates_and_keeps_order) {
    gv_tree *t = params_tree();
    gv_tree *params = GVT_NN(gv_tree_get(t, "params"));
    gv_tree *layer = GVT_NN(gv_tree_get(t, "params/layer"));
    cr_assert_eq(gv_tree_kind_of(params), GV_TREE_DICT);
    cr_assert_eq(gv_tree_num_children(layer), 2);
    cr_assert_str_eq(gv_tree_key(layer, 0), "kernel"); /* insertion order */
    cr_assert_str_eq(gv_tree_key(layer, 1), "bias");
    cr_assert_eq(gv_tree_child(layer, 1), gv_tree_child_by_key(layer, "bias"));
    gv_tensor *k = GVT_NN(gv_tree_get_tensor(t, "params/layer/kernel"));
    cr_assert_eq(gv_tensor_rank(k), 2);
    cr_assert_eq(at(k, 3), 3.0);
    cr_assert_eq(gv_tree_get(t, ""), t);
    cr_assert(gv_tree_contains(t, "params/layer/bias"));
    cr_assert(gv_tree_contains(t, ""));
    cr_assert(!gv_tree_contains(t, "params/layer/bias/x"));
    cr_assert(!gv_tree_contains(t, "params/nope"));
    cr_assert(!gv_tree_contains(t, "params//layer"));
    gv_clear_error();
    cr_assert(!gv_tree_contains(NULL, "x"));
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    cr_assert(!gv_tree_contains(t, NULL));
    /* an explicit empty dict is a subtree with no leaves */
    GVT_OK(gv_tree_insert(t, "params/empty", gv_tree_new_dict()));
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(t, "params/empty")), GV_TREE_DICT);
    cr_assert_eq(gv_tree_num_leaves(t), 2);
    gv_tree_free(t);
}

Test(tree, insert_conflicts) {
    gv_tree *t = params_tree();
    gv_tensor *x = vec(2, 0);
    GVT_FAILS(gv_tree_insert_tensor(t, "params/layer/bias", x), GV_ERR_EXISTS,
              "params/layer/bias already exists (a tensor)");
    GVT_FAILS(gv_tree_insert_tensor(t, "params/layer", x), GV_ERR_EXISTS,
              "params/layer already exists (a dict)");
    GVT_FAILS(gv_tree_insert_tensor(t, "params/layer/bias/x", x), GV_ERR_EXISTS,
              "cannot create params/layer/bias/x: params/layer/bias is a tensor leaf");
    GVT_FAILS(gv_tree_insert_tensor(t, "params/layer/bias/x/y", x), GV_ERR_EXISTS,
              "params/layer/bias is a tensor leaf");
    /* a consumed subtree is freed on failure (ASan checks that) */
    GVT_FAILS(gv_tree_insert(t, "params", gv_tree_new_dict()), GV_ERR_EXISTS, "already exists");
    GVT_FAILS(gv_tree_insert(t, "a//b", gv_tree_new_dict()), GV_ERR_ARG, "key 2 is empty");
    cr_assert_eq(gv_tree_num_leaves(t), 2);
    cr_assert(!gv_tree_contains(t, "a"), "a failed insert leaves no intermediates");
    cr_assert_eq(gv_tensor_size(gv_tree_get_tensor(t, "params/layer/bias")), 2);
    /* a leaf root cannot take children */
    gv_tree *leaf = GVT_NN(gv_tree_new_leaf(x));
    GVT_FAILS(gv_tree_insert_tensor(leaf, "a", x), GV_ERR_EXISTS, "<root> is a tensor leaf");
    gv_tree_free(leaf);
    gv_tensor_free(x);
    gv_tree_free(t);
}

Test(tree, insert_subtree_ownership_checks) {
    gv_tree *t = abc_tree(), *other = GVT_NN(gv_tree_new_dict());
    gv_tree *c = GVT_NN(gv_tree_get(t, "c"));
    GVT_FAILS(gv_tree_insert(other, "c", c), GV_ERR_ARG, "already belongs to a tree");
    GVT_FAILS(gv_tree_insert(c, "self", t), GV_ERR_ARG, "into itself");
    GVT_FAILS(gv_tree_insert(t, "self", t), GV_ERR_ARG, "into itself");
    GVT_FAILS(gv_tree_append(c, c), GV_ERR_ARG, "cannot append to a dict");
    /* untouched: c still in t, t intact */
    cr_assert_eq(gv_tree_get(t, "c"), c);
    cr_assert_eq(gv_tree_num_leaves(t), 4);
    /* pop detaches c; now it can move */
    gv_tree *popped = GVT_NN(gv_tree_pop(t, "c"));
    cr_assert_eq(popped, c);
    GVT_OK(gv_tree_insert(other, "moved/c", popped));
    cr_assert_eq(gv_tree_num_leaves(other), 2);
    cr_assert_eq(at(gv_tree_get_tensor(other, "moved/c/x"), 0), 20.0);
    cr_assert_eq(gv_tree_num_leaves(t), 2);
    gv_tree_free(t);
    gv_tree_free(other);
}

Test(tree, set_replaces_in_place) {
    gv_tree *t = params_tree();
    gv_tensor *y = vec(5, 100);
    GVT_OK(gv_tree_set_tensor(t, "params/layer/kernel", y));
    gv_tree *layer = gv_tree_get(t, "params/layer");
    cr_assert_str_eq(gv_tree_key(layer, 0), "kernel", "replacing keeps the key's position");
    cr_assert_eq(gv_tree_get_tensor(t, "params/layer/kernel"), y);
    GVT_OK(gv_tree_set_tensor(t, "params/new/w", y)); /* set also inserts */
    GVT_OK(gv_tree_set(t, "params/layer", gv_tree_new_label("frozen")));
    cr_assert_str_eq(gv_tree_leaf_label(gv_tree_get(t, "params/layer")), "frozen");
    cr_assert_eq(gv_tree_num_leaves(t), 2);
    GVT_FAILS(gv_tree_set_tensor(t, "params/layer/x", y), GV_ERR_EXISTS, "is a label leaf");
    GVT_FAILS(gv_tree_set(t, "", gv_tree_new_dict()), GV_ERR_ARG, "the path is empty");
    GVT_FAILS(gv_tree_set(NULL, "x", gv_tree_new_dict()), GV_ERR_ARG, "tree is NULL");
    GVT_FAILS(gv_tree_set(t, "x", NULL), GV_ERR_ARG, "subtree is NULL");
    GVT_FAILS(gv_tree_set_tensor(t, "x", NULL), GV_ERR_ARG, "tensor is NULL");
    GVT_FAILS(gv_tree_set_tensor(NULL, "x", y), GV_ERR_ARG, "tree is NULL");
    cr_assert_eq(at(y, 4), 104.0);
    gv_tensor_free(y);
    gv_tree_free(t);
}

Test(tree, get_not_found_messages) {
    gv_tree *t = params_tree();
    GVT_NULL(gv_tree_get(t, "params/Dense_0/bias"), GV_ERR_NOT_FOUND,
             "gv_tree_get: params/Dense_0/bias not found: no key 'Dense_0' at params");
    GVT_NULL(gv_tree_get(t, "opt"), GV_ERR_NOT_FOUND, "no key 'opt' at <root>");
    GVT_NULL(gv_tree_get(t, "params/layer/bias/x"), GV_ERR_NOT_FOUND,
             "params/layer/bias is a tensor leaf with no key 'x'");
    GVT_NULL(gv_tree_get_tensor(t, "params/layer"), GV_ERR_ARG,
             "params/layer is a dict, not a tensor leaf");
    GVT_NULL(gv_tree_get_tensor(t, "nope"), GV_ERR_NOT_FOUND, "no key 'nope'");
    GVT_NULL(gv_tree_get(NULL, "x"), GV_ERR_ARG, "gv_tree_get: tree is NULL");
    GVT_NULL(gv_tree_get(t, NULL), GV_ERR_ARG, "gv_tree_get: path is NULL");
    GVT_NULL(gv_tree_get_tensor(t, "/x"), GV_ERR_ARG, "key 1 is empty");
    gv_tree_free(t);
}

Test(tree, remove_and_pop) {
    gv_tree *t = abc_tree();
    GVT_OK(gv_tree_remove(t, "c/x"));
    cr_assert_eq(gv_tree_num_leaves(t), 3);
    cr_assert(!gv_tree_contains(t, "c/x"));
    cr_assert(gv_tree_contains(t, "c/a"));
    GVT_OK(gv_tree_remove(t, "b"));
    gv_tree *root = t;
    cr_assert_str_eq(gv_tree_key(root, 0), "a");
    cr_assert_str_eq(gv_tree_key(root, 1), "c");
    cr_assert_eq(gv_tree_num_children(root), 2);
    /* the sorted index stays right after removals: lookups and flatten */
    cr_assert_eq(at(gv_tree_get_tensor(t, "a"), 0), 10.0);
    cr_assert_eq(at(gv_tree_get_tensor(t, "c/a"), 0), 30.0);
    const char *paths[] = {"a", "c/a"};
    assert_paths(t, paths, 2);
    gv_tree *c = GVT_NN(gv_tree_pop(t, "c"));
    cr_assert_eq(gv_tree_num_leaves(c), 1);
    gv_tree_free(c);
    GVT_FAILS(gv_tree_remove(t, "c"), GV_ERR_NOT_FOUND, "no key 'c' at <root>");
    GVT_FAILS(gv_tree_remove(t, ""), GV_ERR_ARG, "cannot remove the root");
    GVT_FAILS(gv_tree_remove(NULL, "a"), GV_ERR_ARG, "tree is NULL");
    GVT_FAILS(gv_tree_remove(t, NULL), GV_ERR_ARG, "path is NULL");
    GVT_NULL(gv_tree_pop(t, ""), GV_ERR_ARG, "cannot pop the root");
    GVT_NULL(gv_tree_pop(t, "zz"), GV_ERR_NOT_FOUND, "no key 'zz'");
    GVT_OK(gv_tree_remove(t, "a"));
    cr_assert_eq(gv_tree_num_children(t), 0);
    assert_repr(t, "{}");
    gv_tree_free(t);
}

Test(tree, children_access_errors) {
    gv_tree *t = abc_tree();
    gv_tree *leaf = gv_tree_get(t, "a");
    GVT_NULL(gv_tree_child(t, 3), GV_ERR_ARG, "index 3 is out of range for a dict of 3");
    GVT_NULL(gv_tree_child(leaf, 0), GV_ERR_ARG, "it has no children");
    GVT_NULL(gv_tree_child(NULL, 0), GV_ERR_ARG, "tree is NULL");
    GVT_NULL(gv_tree_key(t, 9), GV_ERR_ARG, "out of range");
    GVT_NULL(gv_tree_child_by_key(t, "c/x"), GV_ERR_ARG, "contains '/'");
    GVT_NULL(gv_tree_child_by_key(t, ""), GV_ERR_ARG, "the path is empty");
    GVT_NULL(gv_tree_child_by_key(t, "zz"), GV_ERR_NOT_FOUND, "no key 'zz' in this dict of 3");
    GVT_NULL(gv_tree_child_by_key(leaf, "zz"), GV_ERR_NOT_FOUND, "is a tensor leaf");
    GVT_NULL(gv_tree_child_by_key(NULL, "a"), GV_ERR_ARG, "tree is NULL");
    GVT_NULL(gv_tree_child_by_key(t, NULL), GV_ERR_ARG, "key is NULL");
    cr_assert_eq(gv_tree_num_children(leaf), 0);
    gv_clear_error();
    cr_assert_eq(gv_tree_num_children(NULL), 0);
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    gv_tree_free(t);
}

Test(tree, key_validation) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    gv_tensor *x = vec(1, 0);
    GVT_FAILS(gv_tree_insert_tensor(t, "", x), GV_ERR_ARG, "the path is empty");
    GVT_FAILS(gv_tree_insert_tensor(t, "a//b", x), GV_ERR_ARG,
              "invalid path 'a//b': key 2 is empty");
    GVT_FAILS(gv_tree_insert_tensor(t, "/a", x), GV_ERR_ARG, "key 1 is empty");
    GVT_FAILS(gv_tree_insert_tensor(t, "a/", x), GV_ERR_ARG, "key 2 is empty");
    GVT_FAILS(gv_tree_insert_tensor(t, "a/b\x01", x), GV_ERR_ARG,
              "invalid path 'a/b\\x01': key 2 has the non-printable byte 0x01");
    GVT_FAILS(gv_tree_insert_tensor(t, "tab\there", x), GV_ERR_ARG, "byte 0x09");
    GVT_FAILS(gv_tree_insert_tensor(t, "del\x7f", x), GV_ERR_ARG, "byte 0x7f");
    GVT_FAILS(gv_tree_insert_tensor(t, "bad\xff", x), GV_ERR_ARG, "byte 0xff");
    GVT_FAILS(gv_tree_insert_tensor(t, "c1\xc2\x85", x), GV_ERR_ARG, "byte 0xc2");
    GVT_FAILS(gv_tree_insert_tensor(t, "overlong\xc0\xaf", x), GV_ERR_ARG, "byte 0xc0");
    GVT_FAILS(gv_tree_insert_tensor(t, NULL, x), GV_ERR_ARG, "path is NULL");
    GVT_FAILS(gv_tree_insert_tensor(NULL, "a", x), GV_ERR_ARG, "tree is NULL");
    GVT_FAILS(gv_tree_insert_tensor(t, "a", NULL), GV_ERR_ARG, "tensor is NULL");
    GVT_FAILS(gv_tree_insert(NULL, "a", gv_tree_new_dict()), GV_ERR_ARG, "tree is NULL");
    GVT_FAILS(gv_tree_insert(t, "a", NULL), GV_ERR_ARG, "subtree is NULL");
    cr_assert_eq(gv_tree_num_children(t), 0);
    /* anything printable goes: spaces, quotes, dots, UTF-8, and no length limit */
    put(t, "h\xc3\xa9llo w\xc3\xb6rld", vec(1, 1));
    put(t, "it's \"quoted\" .~!", vec(1, 2));
    size_t n = 10000;
    char *longkey = malloc(n + 1);
    memset(longkey, 'k', n);
    longkey[n] = '\0';
    GVT_OK(gv_tree_insert_tensor(t, longkey, x));
    cr_assert_eq(gv_tree_get_tensor(t, longkey), x);
    free(longkey);
    cr_assert_eq(at(gv_tree_get_tensor(t, "h\xc3\xa9llo w\xc3\xb6rld"), 0), 1.0);
    gv_tensor_free(x);
    gv_tree_free(t);
}

Test(tree, no_depth_limit) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    size_t depth = 2000;
    char *path = malloc(depth * 2 + 1);
    for (size_t i = 0; i < depth; i++) path[2 * i] = 'd', path[2 * i + 1] = '/';
    path[2 * depth - 1] = '\0';
    put(t, path, vec(1, 7));
    cr_assert_eq(at(gv_tree_get_tensor(t, path), 0), 7.0);
    char **paths;
    size_t np;
    GVT_OK(gv_tree_leaf_paths(t, &paths, &np));
    cr_assert_eq(np, 1);
    cr_assert_str_eq(paths[0], path);
    gv_tree_paths_free(paths, np);
    gv_tree *c = GVT_NN(gv_tree_copy(t));
    cr_assert(gv_tree_structure_equal(t, c));
    gv_tree_free(c);
    free(path);
    gv_tree_free(t);
}

/* ---- lists and tuples ----------------------------------------------------- */

Test(tree, lists_flatten_in_index_order) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(t, "layers", gv_tree_new_list()));
    gv_tree *layers = gv_tree_get(t, "layers");
    for (int i = 0; i < 12; i++) {
        gv_tensor *x = vec(1, i);
        GVT_OK(gv_tree_append_tensor(layers, x));
        gv_tensor_free(x);
    }
    gv_tensor **leaves;
    size_t n;
    GVT_OK(gv_tree_flatten(t, &leaves, &n));
    cr_assert_eq(n, 12);
    for (size_t i = 0; i < n; i++) cr_assert_eq(at(leaves[i], 0), (double)i, "10 after 9");
    free(leaves);
    cr_assert_str_eq(gv_tree_key(layers, 11), "11");
    cr_assert_eq(at(gv_tree_get_tensor(t, "layers/10"), 0), 10.0);
    GVT_NULL(gv_tree_get(t, "layers/12"), GV_ERR_NOT_FOUND,
             "no index '12' in the list of 12 at layers");
    GVT_NULL(gv_tree_get(t, "layers/01"), GV_ERR_NOT_FOUND, "no index '01'");
    GVT_NULL(gv_tree_get(t, "layers/x"), GV_ERR_NOT_FOUND, "no index 'x'");
    /* by path: the index one past the end appends, others exist or are missing */
    put(t, "layers/12", vec(1, 12));
    GVT_FAILS(gv_tree_insert(t, "layers/3", gv_tree_new_dict()), GV_ERR_EXISTS,
              "layers/3 already exists");
    GVT_FAILS(gv_tree_insert(t, "layers/20", gv_tree_new_dict()), GV_ERR_NOT_FOUND,
              "no index '20' in the list of 13 at layers");
    GVT_FAILS(gv_tree_insert(t, "layers/20/w", gv_tree_new_dict()), GV_ERR_NOT_FOUND,
              "no index '20'");
    GVT_OK(gv_tree_set(t, "layers/3", gv_tree_new_dict()));
    put(t, "layers/3/w", vec(1, 33));
    /* remove shifts later elements down */
    GVT_OK(gv_tree_remove(t, "layers/0"));
    cr_assert_eq(gv_tree_num_children(layers), 12);
    cr_assert_str_eq(gv_tree_key(layers, 11), "11");
    cr_assert_eq(at(gv_tree_get_tensor(t, "layers/0"), 0), 1.0);
    cr_assert_eq(at(gv_tree_get_tensor(t, "layers/2/w"), 0), 33.0);
    cr_assert_eq(at(gv_tree_get_tensor(t, "layers/11"), 0), 12.0);
    GVT_FAILS(gv_tree_append_tensor(layers, NULL), GV_ERR_ARG, "tensor is NULL");
    gv_tensor *x = vec(1, 0);
    GVT_FAILS(gv_tree_append_tensor(t, x), GV_ERR_ARG, "cannot append to a dict");
    GVT_FAILS(gv_tree_append_tensor(NULL, x), GV_ERR_ARG, "seq is NULL");
    GVT_FAILS(gv_tree_append(layers, NULL), GV_ERR_ARG, "subtree is NULL");
    GVT_FAILS(gv_tree_append(layers, gv_tree_get(t, "layers/2")), GV_ERR_ARG,
              "already belongs to a tree");
    GVT_FAILS(gv_tree_append(layers, t), GV_ERR_ARG, "into itself");
    cr_assert_eq(gv_tree_num_children(layers), 12);
    gv_tensor_free(x);
    gv_tree_free(t);
}

Test(tree, tuples_print_and_stay_tuples) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    gv_tree *tup = GVT_NN(gv_tree_new_tuple()), *one = GVT_NN(gv_tree_new_tuple());
    gv_tensor *x = vec(2, 0), *y = vec(1, 5);
    GVT_OK(gv_tree_append_tensor(tup, x));
    GVT_OK(gv_tree_append_tensor(tup, y));
    GVT_OK(gv_tree_append_tensor(one, y));
    GVT_OK(gv_tree_insert(t, "pair", tup));
    GVT_OK(gv_tree_insert(t, "single", one));
    GVT_OK(gv_tree_insert(t, "none", gv_tree_new_tuple()));
    GVT_OK(gv_tree_insert(t, "list", gv_tree_new_list()));
    GVT_OK(gv_tree_append(gv_tree_get(t, "list"), gv_tree_new_label("l")));
    GVT_OK(gv_tree_insert(t, "empty", gv_tree_new_list()));
    assert_shapes(t, "{'pair': ((2,), (1,)), 'single': ((1,),), 'none': (), "
                     "'list': ['l'], 'empty': []}");
    gv_treedef *def = GVT_NN(gv_tree_structure(t));
    char *r = GVT_NN(gv_treedef_repr(def));
    cr_assert_str_eq(r, "PyTreeDef({'empty': [], 'list': [*], 'none': (), 'pair': (*, *), "
                        "'single': (*,)})");
    free(r);
    gv_treedef_free(def);
    /* the copy keeps tuples as tuples; a dict with keys "0", "1" is different */
    gv_tree *c = GVT_NN(gv_tree_clone(t));
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(c, "pair")), GV_TREE_TUPLE);
    gv_tree *d = GVT_NN(gv_tree_clone(t));
    GVT_OK(gv_tree_remove(d, "pair"));
    put(d, "pair/0", vec(2, 0));
    put(d, "pair/1", vec(1, 5));
    cr_assert(!gv_tree_structure_equal(c, d));
    GVT_FAILS(gv_tree_check_same(c, d, NULL), GV_ERR_STRUCTURE, "tuple vs dict at pair");
    gv_tree *l = GVT_NN(gv_tree_clone(t));
    GVT_OK(gv_tree_set(l, "pair", gv_tree_new_list()));
    GVT_OK(gv_tree_append_tensor(gv_tree_get(l, "pair"), x));
    GVT_OK(gv_tree_append_tensor(gv_tree_get(l, "pair"), y));
    GVT_FAILS(gv_tree_check_same(c, l, NULL), GV_ERR_STRUCTURE, "tuple vs list at pair");
    gv_tensor_free(x);
    gv_tensor_free(y);
    gv_tree_free(t);
    gv_tree_free(c);
    gv_tree_free(d);
    gv_tree_free(l);
}

/* ---- flatten, paths, foreach, counts -------------------------------------- */

Test(tree, flatten_uses_jax_order) {
    gv_tree *t = abc_tree(); /* inserted b, a, c/x, c/a */
    gv_tensor **leaves;
    size_t n;
    GVT_OK(gv_tree_flatten(t, &leaves, &n));
    cr_assert_eq(n, 4);
    double first[] = {10, 0, 30, 20}; /* a, b, c/a, c/x */
    for (size_t i = 0; i < 4; i++) cr_assert_eq(at(leaves[i], 0), first[i], "leaf %zu", i);
    cr_assert_eq(leaves[0], gv_tree_get_tensor(t, "a"), "borrowed, not copied");
    free(leaves);
    const char *paths[] = {"a", "b", "c/a", "c/x"};
    assert_paths(t, paths, 4);
    /* printing keeps insertion order */
    assert_shapes(t, "{'b': (1,), 'a': (2,), 'c': {'x': (3,), 'a': (1,)}}");
    cr_assert_eq(gv_tree_num_leaves(t), 4);
    cr_assert_eq(gv_tree_size(t), 7);
    cr_assert_eq(gv_tree_nbytes(t), 28);
    GVT_FAILS(gv_tree_flatten(NULL, &leaves, &n), GV_ERR_ARG, "tree is NULL");
    cr_assert_null(leaves);
    GVT_FAILS(gv_tree_flatten(t, NULL, &n), GV_ERR_ARG, "leaves is NULL");
    GVT_FAILS(gv_tree_flatten(t, &leaves, NULL), GV_ERR_ARG, "n is NULL");
    char **p;
    GVT_FAILS(gv_tree_leaf_paths(NULL, &p, &n), GV_ERR_ARG, "tree is NULL");
    GVT_FAILS(gv_tree_leaf_paths(t, NULL, &n), GV_ERR_ARG, "paths is NULL");
    GVT_FAILS(gv_tree_leaf_paths(t, &p, NULL), GV_ERR_ARG, "n is NULL");
    gv_tree_paths_free(NULL, 0);
    gv_clear_error();
    cr_assert_eq(gv_tree_num_leaves(NULL), 0);
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    cr_assert_eq(gv_tree_size(NULL), 0);
    cr_assert_eq(gv_tree_nbytes(NULL), 0);
    gv_tree_free(t);
}

Test(tree, flatten_edge_cases) {
    gv_tree *e = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(e, "params/empty", gv_tree_new_dict()));
    gv_tensor **leaves = (gv_tensor **)&leaves;
    size_t n = 99;
    GVT_OK(gv_tree_flatten(e, &leaves, &n));
    cr_assert_null(leaves);
    cr_assert_eq(n, 0);
    /* a root leaf has the path "" */
    gv_tensor *x = vec(3, 0);
    gv_tree *leaf = GVT_NN(gv_tree_new_leaf(x));
    const char *root[] = {""};
    assert_paths(leaf, root, 1);
    /* label leaves are leaves, but not tensors */
    GVT_OK(gv_tree_insert(e, "params/lab", gv_tree_new_label("adam")));
    cr_assert_eq(gv_tree_num_leaves(e), 1);
    cr_assert_eq(gv_tree_size(e), 0);
    GVT_FAILS(gv_tree_flatten(e, &leaves, &n), GV_ERR_ARG,
              "gv_tree_flatten: the leaf at params/lab is a label, not a tensor");
    const char *lp[] = {"params/lab"};
    assert_paths(e, lp, 1);
    gv_tensor_free(x);
    gv_tree_free(leaf);
    gv_tree_free(e);
}

typedef struct {
    char seen[256];
    int stop_at, calls;
} visit_log;

static gv_status visit(const char *path, const gv_tree *leaf, void *ud) {
    visit_log *v = ud;
    if (v->calls++ == v->stop_at) return gv_error(GV_ERR_SHAPE, "bad leaf");
    if (v->stop_at == -2) return GV_ERR_DTYPE; /* fails without a message */
    strcat(v->seen, path);
    strcat(v->seen, gv_tree_leaf_kind(leaf) == GV_LEAF_TENSOR ? ";" : "?;");
    return GV_OK;
}

Test(tree, foreach_leaf_order_and_errors) {
    gv_tree *t = abc_tree();
    GVT_OK(gv_tree_insert(t, "c/lab", gv_tree_new_label("x")));
    visit_log v = {.stop_at = -1};
    GVT_OK(gv_tree_foreach_leaf(t, visit, &v));
    cr_assert_str_eq(v.seen, "a;b;c/a;c/lab?;c/x;");
    visit_log w = {.stop_at = 2};
    GVT_FAILS(gv_tree_foreach_leaf(t, visit, &w), GV_ERR_SHAPE,
              "gv_tree_foreach_leaf: c/a: bad leaf");
    cr_assert_eq(w.calls, 3, "the walk stops at the failing leaf");
    visit_log q = {.stop_at = -2};
    GVT_FAILS(gv_tree_foreach_leaf(t, visit, &q), GV_ERR_DTYPE,
              "a: the callback returned GV_ERR_DTYPE without setting an error");
    /* a walk that succeeds keeps the caller's pending error; one whose
     * callback fails silently still gets a message of its own */
    gv_error(GV_ERR_IO, "the caller's own error");
    visit_log ok = {.stop_at = -1};
    GVT_OK(gv_tree_foreach_leaf(t, visit, &ok));
    cr_expect_eq(gv_last_status(), GV_ERR_IO);
    cr_expect_str_eq(gv_last_error(), "the caller's own error");
    visit_log q2 = {.stop_at = -2};
    GVT_FAILS(gv_tree_foreach_leaf(t, visit, &q2), GV_ERR_DTYPE,
              "a: the callback returned GV_ERR_DTYPE without setting an error");
    GVT_FAILS(gv_tree_foreach_leaf(NULL, visit, &v), GV_ERR_ARG, "tree is NULL");
    GVT_FAILS(gv_tree_foreach_leaf(t, NULL, &v), GV_ERR_ARG, "fn is NULL");
    gv_tree_free(t);
}

/* ---- structure and unflatten ---------------------------------------------- */

Test(tree, structure_unflatten_round_trip) {
    gv_tree *t = params_tree();
    GVT_OK(gv_tree_insert(t, "params/empty", gv_tree_new_dict()));
    gv_tensor **leaves;
    size_t n;
    GVT_OK(gv_tree_flatten(t, &leaves, &n));
    cr_assert_eq(n, 2);
    gv_treedef *def = GVT_NN(gv_tree_structure(t));
    cr_assert_eq(gv_treedef_num_leaves(def), 2);
    char *r = GVT_NN(gv_treedef_repr(def));
    cr_assert_str_eq(r, "PyTreeDef({'params': {'empty': {}, 'layer': {'bias': *, 'kernel': *}}})");
    free(r);
    gv_tree *u = GVT_NN(gv_tree_unflatten(def, leaves, n));
    GVT_OK(gv_tree_check_same(t, u, "round trip"));
    cr_assert_eq(gv_tree_get_tensor(u, "params/layer/kernel"),
                 gv_tree_get_tensor(t, "params/layer/kernel"), "leaves are retained, shared");
    assert_shapes(u, "{'params': {'layer': {'kernel': (2, 2), 'bias': (2,)}, 'empty': {}}}");
    /* the new tree holds its own references */
    gv_tree_free(t);
    cr_assert_eq(at(gv_tree_get_tensor(u, "params/layer/kernel"), 3), 3.0);
    /* structure of the unflattened tree equals the original */
    gv_treedef *def2 = GVT_NN(gv_tree_structure(u));
    cr_assert(gv_treedef_equal(def, def2));
    /* errors */
    GVT_NULL(gv_tree_unflatten(def, leaves, 1), GV_ERR_STRUCTURE,
             "the structure takes 2 leaves, but 1 were given");
    GVT_NULL(gv_tree_unflatten(def, NULL, 2), GV_ERR_ARG, "leaves is NULL");
    gv_tensor *bad[2] = {leaves[0], NULL};
    GVT_NULL(gv_tree_unflatten(def, bad, 2), GV_ERR_ARG,
             "leaves[1] (for params/layer/kernel) is NULL");
    GVT_NULL(gv_tree_unflatten(NULL, leaves, 2), GV_ERR_ARG, "def is NULL");
    GVT_NULL(gv_tree_structure(NULL), GV_ERR_ARG, "tree is NULL");
    GVT_NULL(gv_treedef_repr(NULL), GV_ERR_ARG, "def is NULL");
    gv_clear_error();
    cr_assert_eq(gv_treedef_num_leaves(NULL), 0);
    cr_assert_eq(gv_last_status(), GV_ERR_ARG);
    cr_assert(!gv_treedef_equal(def, NULL));
    free(leaves);
    gv_treedef_free(def);
    gv_treedef_free(def2);
    gv_treedef_free(NULL);
    gv_tree_free(u);
}

Test(tree, structure_of_empty_and_leaf_trees) {
    gv_tree *e = GVT_NN(gv_tree_new_dict());
    gv_treedef *de = GVT_NN(gv_tree_structure(e));
    gv_tree *ue = GVT_NN(gv_tree_unflatten(de, NULL, 0));
    assert_repr(ue, "{}");
    gv_tensor *x = vec(2, 0);
    gv_tree *leaf = GVT_NN(gv_tree_new_leaf(x));
    gv_treedef *dl = GVT_NN(gv_tree_structure(leaf));
    char *r = GVT_NN(gv_treedef_repr(dl));
    cr_assert_str_eq(r, "PyTreeDef(*)");
    free(r);
    cr_assert(!gv_treedef_equal(de, dl));
    gv_tree *ul = GVT_NN(gv_tree_unflatten(dl, &x, 1));
    cr_assert_eq(gv_tree_leaf_tensor(ul), x);
    gv_tensor_free(x);
    gv_tree *trees[] = {e, ue, leaf, ul};
    for (int i = 0; i < 4; i++) gv_tree_free(trees[i]);
    gv_treedef_free(de);
    gv_treedef_free(dl);
}

Test(tree, structure_equal_cases) {
    gv_tree *a = abc_tree(), *b = GVT_NN(gv_tree_new_dict());
    /* other insertion order, other shapes and dtypes, label leaves: still equal */
    put(b, "c/a", GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(5, 5))));
    GVT_OK(gv_tree_insert(b, "c/x", gv_tree_new_label("lab")));
    put(b, "a", vec(9, 0));
    put(b, "b", vec(1, 0));
    cr_assert(gv_tree_structure_equal(a, b));
    cr_assert(gv_tree_structure_equal(b, a));
    GVT_OK(gv_tree_remove(b, "c/x"));
    cr_assert(!gv_tree_structure_equal(a, b));
    GVT_OK(gv_tree_insert(b, "c/x", gv_tree_new_dict()));
    cr_assert(!gv_tree_structure_equal(a, b), "leaf vs empty dict");
    GVT_OK(gv_tree_set(b, "c/x", gv_tree_new_list()));
    cr_assert(!gv_tree_structure_equal(a, b), "leaf vs empty list");
    gv_clear_error();
    cr_assert(!gv_tree_structure_equal(a, NULL));
    cr_assert(strstr(gv_last_error(), "b is NULL"));
    cr_assert(!gv_tree_structure_equal(NULL, a));
    gv_tree_free(a);
    gv_tree_free(b);
}

Test(tree, check_same_names_first_difference) {
    gv_tree *a = GVT_NN(gv_tree_new_dict()), *b;
    put(a, "params/Dense_0/kernel", GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(3, 4))));
    put(a, "params/Dense_0/bias", GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(4))));
    put(a, "params/Dense_1/bias", GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(2))));
    b = GVT_NN(gv_tree_copy(a));
    GVT_OK(gv_tree_check_same(a, b, "grads"));
    put(b, "params/Dense_1/bias2", vec(2, 0)); /* later in flatten order */
    reput(b, "params/Dense_0/bias", vec(5, 0));
    GVT_FAILS(gv_tree_check_same(a, b, "grads vs params"), GV_ERR_STRUCTURE,
              "grads vs params: params/Dense_0/bias: shape (4,) vs (5,)");
    reput(b, "params/Dense_0/bias", GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(4))));
    GVT_FAILS(gv_tree_check_same(a, b, NULL), GV_ERR_STRUCTURE,
              "unexpected key 'bias2' at params/Dense_1");
    GVT_FAILS(gv_tree_check_same(b, a, NULL), GV_ERR_STRUCTURE,
              "missing key 'bias2' at params/Dense_1");
    GVT_OK(gv_tree_remove(b, "params/Dense_1/bias2"));
    GVT_OK(gv_tree_remove(b, "params/Dense_0/bias"));
    gv_clear_error();
    cr_assert_eq(gv_tree_check_same(a, b, NULL), GV_ERR_STRUCTURE);
    cr_assert_str_eq(gv_last_error(), "missing key 'bias' at params/Dense_0");
    put(b, "params/Dense_0/bias", GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(4))));
    GVT_FAILS(gv_tree_check_same(a, b, NULL), GV_ERR_STRUCTURE,
              "params/Dense_0/bias: dtype float32 vs int32");
    GVT_OK(gv_tree_set(b, "params/Dense_0/bias", gv_tree_new_label("x")));
    GVT_FAILS(gv_tree_check_same(a, b, NULL), GV_ERR_STRUCTURE,
              "tensor vs label at params/Dense_0/bias");
    GVT_OK(gv_tree_set(b, "params/Dense_0", gv_tree_new_list()));
    GVT_FAILS(gv_tree_check_same(a, b, NULL), GV_ERR_STRUCTURE,
              "dict vs list at params/Dense_0");
    GVT_FAILS(gv_tree_check_same(NULL, b, NULL), GV_ERR_ARG, "a is NULL");
    GVT_FAILS(gv_tree_check_same(a, NULL, NULL), GV_ERR_ARG, "b is NULL");
    gv_tree *l1 = GVT_NN(gv_tree_new_list()), *l2 = GVT_NN(gv_tree_new_list());
    GVT_OK(gv_tree_append(l1, gv_tree_new_label("a")));
    GVT_OK(gv_tree_append(l2, gv_tree_new_label("b")));
    GVT_FAILS(gv_tree_check_same(l1, l2, NULL), GV_ERR_STRUCTURE, "0: label 'a' vs 'b'");
    GVT_OK(gv_tree_append(l2, gv_tree_new_label("c")));
    GVT_FAILS(gv_tree_check_same(l1, l2, NULL), GV_ERR_STRUCTURE,
              "list length 1 vs 2 at <root>");
    gv_tree *trees[] = {a, b, l1, l2};
    for (int i = 0; i < 4; i++) gv_tree_free(trees[i]);
}

/* ---- map, map_n, reduce, zeros_like --------------------------------------- */

/* x * scale (+ fail on a size-3 leaf if asked) */
static gv_tensor *scale_fn(gv_tensor *x, void *ud) {
    double s = *(double *)ud;
    if (s < 0 && gv_tensor_size(x) == 3) {
        gv_error(GV_ERR_SHAPE, "size 3 is not allowed");
        return NULL;
    }
    if (s == 0) return NULL; /* fails without setting an error */
    gv_tensor *y = gv_tensor_copy(x);
    for (int64_t i = 0; y && i < gv_tensor_size(y); i++) gv_tensor_set_flat(y, i, at(x, i) * s);
    return y;
}

Test(tree, map_one_tree) {
    gv_tree *t = abc_tree();
    GVT_OK(gv_tree_insert(t, "e", gv_tree_new_dict()));
    double two = 2;
    gv_tree *m = GVT_NN(gv_tree_map(scale_fn, &two, t));
    GVT_OK(gv_tree_check_same(t, m, NULL));
    assert_shapes(m, "{'b': (1,), 'a': (2,), 'c': {'x': (3,), 'a': (1,)}, 'e': {}}");
    gv_tensor *cx = gv_tree_get_tensor(m, "c/x");
    cr_assert_eq(at(cx, 0), 40.0);
    cr_assert_eq(at(cx, 2), 44.0);
    cr_assert_eq(at(gv_tree_get_tensor(m, "a"), 1), 22.0);
    cr_assert_eq(at(gv_tree_get_tensor(t, "a"), 1), 11.0, "the input is unchanged");
    gv_tree_free(m);
    double neg = -1, zero = 0;
    GVT_NULL(gv_tree_map(scale_fn, &neg, t), GV_ERR_SHAPE,
             "gv_tree_map: c/x: size 3 is not allowed");
    GVT_NULL(gv_tree_map(scale_fn, &zero, t), GV_ERR_ARG,
             "gv_tree_map: a: the function returned NULL without setting an error");
    GVT_NULL(gv_tree_map(NULL, &two, t), GV_ERR_ARG, "fn is NULL");
    GVT_NULL(gv_tree_map(scale_fn, &two, NULL), GV_ERR_ARG, "tree is NULL");
    GVT_OK(gv_tree_insert(t, "lab", gv_tree_new_label("x")));
    GVT_NULL(gv_tree_map(scale_fn, &two, t), GV_ERR_ARG,
             "gv_tree_map: the leaf at lab is a label, not a tensor");
    gv_tree_free(t);
}

static gv_tensor *sum_fn(gv_tensor *const *xs, size_t n, void *ud) {
    (*(int *)ud)++;
    gv_tensor *y = gv_tensor_zeros(GV_F32, gv_tensor_rank(xs[0]), gv_tensor_shape(xs[0]));
    for (int64_t i = 0; y && i < gv_tensor_size(y); i++) {
        double s = 0;
        for (size_t k = 0; k < n; k++) s += at(xs[k], i);
        gv_tensor_set_flat(y, i, s);
    }
    return y;
}

Test(tree, map_n_over_three_trees) {
    gv_tree *a = abc_tree();
    double ten = 10, hundred = 100;
    gv_tree *b = GVT_NN(gv_tree_map(scale_fn, &ten, a));
    gv_tree *c = GVT_NN(gv_tree_map(scale_fn, &hundred, a));
    const gv_tree *trees[] = {a, b, c};
    int calls = 0;
    gv_tree *s = GVT_NN(gv_tree_map_n(sum_fn, &calls, trees, 3));
    cr_assert_eq(calls, 4);
    GVT_OK(gv_tree_check_same(a, s, NULL));
    cr_assert_eq(at(gv_tree_get_tensor(s, "c/x"), 2), 22 * 111.0);
    cr_assert_eq(at(gv_tree_get_tensor(s, "a"), 0), 10 * 111.0);
    cr_assert_eq(at(gv_tree_get_tensor(s, "b"), 0), 0.0);
    cr_assert_eq(at(gv_tree_get_tensor(s, "c/a"), 0), 30 * 111.0);
    gv_tree_free(s);
    /* one tree works too */
    gv_tree *one = GVT_NN(gv_tree_map_n(sum_fn, &calls, trees, 1));
    cr_assert_eq(at(gv_tree_get_tensor(one, "c/x"), 1), 21.0);
    gv_tree_free(one);
    /* mismatch: names the tree and the first differing path, fn never called */
    GVT_OK(gv_tree_remove(c, "c/a"));
    calls = 0;
    GVT_NULL(gv_tree_map_n(sum_fn, &calls, trees, 3), GV_ERR_STRUCTURE,
             "gv_tree_map_n: trees[2] differs from trees[0]: missing key 'a' at c");
    cr_assert_eq(calls, 0);
    GVT_OK(gv_tree_insert(c, "c/a", gv_tree_new_label("lab")));
    GVT_NULL(gv_tree_map_n(sum_fn, &calls, trees, 3), GV_ERR_ARG,
             "gv_tree_map_n: the leaf at c/a is a label, not a tensor");
    GVT_OK(gv_tree_set(c, "c", gv_tree_new_list()));
    GVT_NULL(gv_tree_map_n(sum_fn, &calls, trees, 3), GV_ERR_STRUCTURE,
             "trees[2] differs from trees[0]: dict vs list at c");
    GVT_NULL(gv_tree_map_n(sum_fn, &calls, trees, 0), GV_ERR_ARG, "ntrees is 0");
    GVT_NULL(gv_tree_map_n(sum_fn, &calls, NULL, 2), GV_ERR_ARG, "trees is NULL");
    GVT_NULL(gv_tree_map_n(NULL, &calls, trees, 2), GV_ERR_ARG, "fn is NULL");
    const gv_tree *holes[] = {a, NULL};
    GVT_NULL(gv_tree_map_n(sum_fn, &calls, holes, 2), GV_ERR_ARG, "trees[1] is NULL");
    gv_tree_free(a);
    gv_tree_free(b);
    gv_tree_free(c);
}

static gv_status sum_all(void *acc, gv_tensor *x, void *ud) {
    double *sum = acc;
    for (int64_t i = 0; i < gv_tensor_size(x); i++) *sum += at(x, i);
    if (ud && *sum > 50) return gv_error(GV_ERR_OVERFLOW, "sum over 50");
    return GV_OK;
}

static gv_status count_leaves(void *acc, gv_tensor *x, void *ud) {
    (*(int64_t *)acc)++;
    return GV_OK;
}

Test(tree, reduce_folds_in_flatten_order) {
    gv_tree *t = abc_tree();
    double sum = 0.5; /* the initial value */
    GVT_OK(gv_tree_reduce(sum_all, NULL, t, &sum));
    cr_assert_eq(sum, 0.5 + 0 + 10 + 11 + 20 + 21 + 22 + 30);
    int64_t n = 0;
    GVT_OK(gv_tree_reduce(count_leaves, NULL, t, &n));
    cr_assert_eq(n, 4);
    sum = 0;
    int stop = 1;
    /* a (21) then b (21) then c/a (51): fails at c/a */
    GVT_FAILS(gv_tree_reduce(sum_all, &stop, t, &sum), GV_ERR_OVERFLOW,
              "gv_tree_reduce: c/a: sum over 50");
    cr_assert_eq(sum, 51.0);
    GVT_FAILS(gv_tree_reduce(NULL, NULL, t, &sum), GV_ERR_ARG, "fn is NULL");
    GVT_FAILS(gv_tree_reduce(sum_all, NULL, NULL, &sum), GV_ERR_ARG, "tree is NULL");
    GVT_OK(gv_tree_insert(t, "lab", gv_tree_new_label("x")));
    GVT_FAILS(gv_tree_reduce(count_leaves, NULL, t, &n), GV_ERR_ARG,
              "the leaf at lab is a label, not a tensor");
    gv_tree_free(t);
}

Test(tree, zeros_like) {
    gv_tree *t = abc_tree();
    put(t, "i", GVT_NN(gv_tensor_full(GV_I64, GV_DIMS(2, 3), 7)));
    gv_tree *z = GVT_NN(gv_tree_zeros_like(t));
    GVT_OK(gv_tree_check_same(t, z, NULL));
    gv_tensor **leaves;
    size_t n;
    GVT_OK(gv_tree_flatten(z, &leaves, &n));
    cr_assert_eq(n, 5);
    for (size_t k = 0; k < n; k++)
        for (int64_t i = 0; i < gv_tensor_size(leaves[k]); i++) cr_assert_eq(at(leaves[k], i), 0);
    cr_assert_eq(gv_tensor_dtype(gv_tree_get_tensor(z, "i")), GV_I64);
    cr_assert_eq(at(gv_tree_get_tensor(t, "i"), 5), 7.0);
    free(leaves);
    gv_tree_free(z);
    GVT_NULL(gv_tree_zeros_like(NULL), GV_ERR_ARG, "tree is NULL");
    GVT_OK(gv_tree_insert(t, "c/lab", gv_tree_new_label("x")));
    GVT_NULL(gv_tree_zeros_like(t), GV_ERR_ARG, "the leaf at c/lab is a label");
    gv_tree_free(t);
}

/* ---- clone vs copy -------------------------------------------------------- */

Test(tree, clone_shares_copy_copies) {
    gv_tree *t = params_tree();
    GVT_OK(gv_tree_insert(t, "labels/x", gv_tree_new_label("adam")));
    gv_tree *cl = GVT_NN(gv_tree_clone(t)), *cp = GVT_NN(gv_tree_copy(t));
    GVT_OK(gv_tree_check_same(t, cl, NULL));
    GVT_OK(gv_tree_check_same(t, cp, NULL));
    gv_tensor *orig = gv_tree_get_tensor(t, "params/layer/bias");
    cr_assert_eq(gv_tree_get_tensor(cl, "params/layer/bias"), orig);
    cr_assert_neq(gv_tree_get_tensor(cp, "params/layer/bias"), orig);
    GVT_OK(gv_tensor_set_flat(orig, 1, 5.0));
    cr_assert_eq(at(gv_tree_get_tensor(cl, "params/layer/bias"), 1), 5.0, "shared");
    cr_assert_eq(at(gv_tree_get_tensor(cp, "params/layer/bias"), 1), 0.0, "copied");
    cr_assert_str_eq(gv_tree_leaf_label(gv_tree_get(cp, "labels/x")), "adam");
    /* editing a copy's structure leaves the original alone */
    GVT_OK(gv_tree_remove(cl, "params"));
    cr_assert_eq(gv_tree_num_leaves(t), 3);
    /* a clone of a subtree is a free-standing root */
    gv_tree *sub = GVT_NN(gv_tree_clone(gv_tree_get(t, "params/layer")));
    assert_shapes(sub, "{'kernel': (2, 2), 'bias': (2,)}");
    GVT_OK(gv_tree_insert(cl, "again", sub));
    GVT_NULL(gv_tree_clone(NULL), GV_ERR_ARG, "gv_tree_clone: tree is NULL");
    GVT_NULL(gv_tree_copy(NULL), GV_ERR_ARG, "gv_tree_copy: tree is NULL");
    gv_tree_free(t);
    cr_assert_eq(at(gv_tree_get_tensor(cl, "again/bias"), 1), 5.0, "clone holds references");
    gv_tree_free(cl);
    gv_tree_free(cp);
}

/* ---- prefixes -------------------------------------------------------------- */

/* {'bert': {'emb': (4,), 'layers': [(2,), (2,)]}, 'classifier': {'w': (3,)}} */
static gv_tree *bert_params(void) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    put(t, "bert/emb", vec(4, 0));
    GVT_OK(gv_tree_insert(t, "bert/layers", gv_tree_new_list()));
    GVT_OK(gv_tree_append(gv_tree_get(t, "bert/layers"), leaf_of(vec(2, 0))));
    GVT_OK(gv_tree_append(gv_tree_get(t, "bert/layers"), leaf_of(vec(2, 0))));
    put(t, "classifier/w", vec(3, 0));
    return t;
}

typedef struct {
    char log[256];
    bool fail;
} prefix_log;

static gv_status on_prefix(const char *path, const gv_tree *label, const gv_tree *sub, void *ud) {
    prefix_log *l = ud;
    if (l->fail) return gv_error(GV_ERR_UNSUPPORTED, "no transform for this label");
    char line[96];
    snprintf(line, sizeof line, "%s=%s:%lld;", path, gv_tree_leaf_label(label),
             (long long)gv_tree_size(sub));
    strcat(l->log, line);
    return GV_OK;
}

Test(tree, match_prefix_with_labels) {
    gv_tree *params = bert_params();
    gv_tree *labels = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(labels, "classifier", gv_tree_new_label("adam")));
    GVT_OK(gv_tree_insert(labels, "bert", gv_tree_new_label("frozen")));
    prefix_log l = {0};
    GVT_OK(gv_tree_match_prefix(labels, params, on_prefix, &l));
    cr_assert_str_eq(l.log, "bert=frozen:8;classifier=adam:3;");
    /* a finer prefix: labels down to list elements */
    gv_tree *fine = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(fine, "bert/emb", gv_tree_new_label("frozen")));
    GVT_OK(gv_tree_insert(fine, "bert/layers", gv_tree_new_list()));
    GVT_OK(gv_tree_append(gv_tree_get(fine, "bert/layers"), gv_tree_new_label("sgd")));
    GVT_OK(gv_tree_append(gv_tree_get(fine, "bert/layers"), gv_tree_new_label("adam")));
    GVT_OK(gv_tree_insert(fine, "classifier/w", gv_tree_new_label("adam")));
    prefix_log f = {0};
    GVT_OK(gv_tree_match_prefix(fine, params, on_prefix, &f));
    cr_assert_str_eq(f.log, "bert/emb=frozen:4;bert/layers/0=sgd:2;bert/layers/1=adam:2;"
                            "classifier/w=adam:3;");
    /* the full tree itself is a prefix of itself; a root leaf labels everything */
    gv_tree *all = GVT_NN(gv_tree_new_label("all"));
    prefix_log r = {0};
    GVT_OK(gv_tree_match_prefix(all, params, on_prefix, &r));
    cr_assert_str_eq(r.log, "=all:11;");
    /* callback failure */
    prefix_log bad = {.fail = true};
    GVT_FAILS(gv_tree_match_prefix(labels, params, on_prefix, &bad), GV_ERR_UNSUPPORTED,
              "gv_tree_match_prefix: bert: no transform for this label");
    GVT_FAILS(gv_tree_match_prefix(labels, params, NULL, &l), GV_ERR_ARG, "fn is NULL");
    GVT_FAILS(gv_tree_match_prefix(NULL, params, on_prefix, &l), GV_ERR_ARG, "prefix is NULL");
    GVT_FAILS(gv_tree_match_prefix(labels, NULL, on_prefix, &l), GV_ERR_ARG, "full is NULL");
    gv_tree_free(all);
    gv_tree_free(fine);
    gv_tree_free(labels);
    gv_tree_free(params);
}

Test(tree, match_prefix_mismatches) {
    gv_tree *params = bert_params();
    gv_tree *p = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(p, "bert", gv_tree_new_label("frozen")));
    prefix_log l = {0};
    GVT_FAILS(gv_tree_match_prefix(p, params, on_prefix, &l), GV_ERR_STRUCTURE,
              "gv_tree_match_prefix: key 'classifier' at <root> is not in the prefix");
    cr_assert_str_eq(l.log, "", "nothing is called before the whole match is checked");
    GVT_OK(gv_tree_insert(p, "classifier", gv_tree_new_label("adam")));
    GVT_OK(gv_tree_insert(p, "pooler", gv_tree_new_label("adam")));
    GVT_FAILS(gv_tree_match_prefix(p, params, on_prefix, &l), GV_ERR_STRUCTURE,
              "key 'pooler' of the prefix is not in the tree at <root>");
    GVT_OK(gv_tree_remove(p, "pooler"));
    GVT_OK(gv_tree_set(p, "classifier", gv_tree_new_dict()));
    GVT_OK(gv_tree_insert(p, "classifier/w/deeper", gv_tree_new_label("x")));
    GVT_FAILS(gv_tree_match_prefix(p, params, on_prefix, &l), GV_ERR_STRUCTURE,
              "the prefix has a dict but the tree has a tensor at classifier/w");
    GVT_OK(gv_tree_set(p, "classifier", gv_tree_new_label("adam")));
    GVT_OK(gv_tree_set(p, "bert", gv_tree_new_dict()));
    GVT_OK(gv_tree_insert(p, "bert/emb", gv_tree_new_label("a")));
    GVT_OK(gv_tree_insert(p, "bert/layers", gv_tree_new_list()));
    GVT_OK(gv_tree_append(gv_tree_get(p, "bert/layers"), gv_tree_new_label("a")));
    GVT_FAILS(gv_tree_match_prefix(p, params, on_prefix, &l), GV_ERR_STRUCTURE,
              "the prefix has a list of 1 but the tree has 2 elements at bert/layers");
    GVT_OK(gv_tree_set(p, "bert/layers", gv_tree_new_tuple()));
    GVT_FAILS(gv_tree_match_prefix(p, params, on_prefix, &l), GV_ERR_STRUCTURE,
              "the prefix has a tuple but the tree has a list at bert/layers");
    GVT_NULL(gv_tree_broadcast_prefix(p, params), GV_ERR_STRUCTURE,
             "gv_tree_broadcast_prefix: the prefix has a tuple but the tree has a list");
    gv_tree_free(p);
    gv_tree_free(params);
}

Test(tree, broadcast_prefix_labels_every_leaf) {
    gv_tree *params = bert_params();
    GVT_OK(gv_tree_insert(params, "bert/empty", gv_tree_new_dict()));
    gv_tree *labels = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(labels, "bert", gv_tree_new_label("frozen")));
    GVT_OK(gv_tree_insert(labels, "classifier", gv_tree_new_label("adam")));
    gv_tree *full = GVT_NN(gv_tree_broadcast_prefix(labels, params));
    cr_assert(gv_tree_structure_equal(full, params));
    assert_repr(full, "{'bert': {'emb': 'frozen', 'layers': ['frozen', 'frozen'], 'empty': {}}, "
                      "'classifier': {'w': 'adam'}}");
    /* tensor leaves in a prefix are shared into the result */
    gv_tensor *s = GVT_NN(gv_tensor_scalar(GV_I32, 1));
    gv_tree *ids = GVT_NN(gv_tree_new_leaf(s));
    gv_tree *fid = GVT_NN(gv_tree_broadcast_prefix(ids, params));
    cr_assert_eq(gv_tree_get_tensor(fid, "bert/layers/1"), s);
    cr_assert_eq(gv_tree_num_leaves(fid), 4);
    gv_tensor_free(s);
    GVT_NULL(gv_tree_broadcast_prefix(NULL, params), GV_ERR_ARG, "prefix is NULL");
    GVT_NULL(gv_tree_broadcast_prefix(labels, NULL), GV_ERR_ARG, "full is NULL");
    gv_tree *trees[] = {params, labels, full, ids, fid};
    for (int i = 0; i < 5; i++) gv_tree_free(trees[i]);
}

/* ---- printing --------------------------------------------------------------- */

Test(tree, repr_like_python_print) {
    gv_tree *t = params_tree();
    assert_repr(t, "{'params': {'layer': {'kernel': Array([[0., 1.],\n"
                   "       [2., 3.]], dtype=float32), "
                   "'bias': Array([0., 0.], dtype=float32)}}}");
    assert_shapes(t, "{'params': {'layer': {'kernel': (2, 2), 'bias': (2,)}}}");
    /* print() adds a newline */
    FILE *f = tmpfile();
    GVT_OK(gv_tree_print(f, t));
    rewind(f);
    char buf[256] = {0};
    cr_assert(fread(buf, 1, sizeof buf - 1, f) > 0);
    fclose(f);
    cr_assert_str_eq(buf, "{'params': {'layer': {'kernel': Array([[0., 1.],\n"
                          "       [2., 3.]], dtype=float32), "
                          "'bias': Array([0., 0.], dtype=float32)}}}\n");
    /* the brief's example: four zeros */
    gv_tree *z = GVT_NN(gv_tree_new_dict());
    put(z, "params/layer/bias", GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(4))));
    put(z, "step", GVT_NN(gv_tensor_scalar(GV_I32, 3)));
    assert_repr(z, "{'params': {'layer': {'bias': Array([0., 0., 0., 0.], dtype=float32)}}, "
                   "'step': Array(3, dtype=int32)}");
    assert_shapes(z, "{'params': {'layer': {'bias': (4,)}}, 'step': ()}");
    /* keys are Python string reprs */
    gv_tree *q = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(q, "it's", gv_tree_new_label("a\"b")));
    GVT_OK(gv_tree_insert(q, "both'\"", gv_tree_new_label("back\\slash")));
    GVT_OK(gv_tree_insert(q, "h\xc3\xa9", gv_tree_new_label("")));
    assert_repr(q, "{\"it's\": 'a\"b', 'both\\'\"': 'back\\\\slash', 'h\xc3\xa9': ''}");
    GVT_NULL(gv_tree_repr(NULL, NULL), GV_ERR_ARG, "gv_tree_repr: tree is NULL");
    GVT_NULL(gv_tree_repr_shapes(NULL), GV_ERR_ARG, "gv_tree_repr_shapes: tree is NULL");
    GVT_FAILS(gv_tree_print(NULL, t), GV_ERR_ARG, "f is NULL");
    FILE *ro = fopen("/dev/null", "r");
    cr_assert_not_null(ro);
    GVT_FAILS(gv_tree_print(ro, t), GV_ERR_IO, "gv_tree_print: write failed");
    fclose(ro);
    GVT_FAILS(gv_tree_print(stdout, NULL), GV_ERR_ARG, "tree is NULL");
    gv_tree_free(q);
    gv_tree_free(z);
    gv_tree_free(t);
}

Test(tree, summary_table) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    put(t, "params/layer/kernel", GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(8, 4))));
    put(t, "params/layer/bias", GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(4))));
    char *s = GVT_NN(gv_tree_summary(t));
    cr_assert_str_eq(s, "name        shape   dtype    params\n"
                        "params                       36 (144 B)\n"
                        "  layer                      36 (144 B)\n"
                        "    kernel  (8, 4)  float32  32 (128 B)\n"
                        "    bias    (4,)    float32  4 (16 B)\n"
                        "Total Parameters: 36 (144 B)\n");
    free(s);
    /* Flax's units: KB/MB past 1e3/1e6 bytes, thousands separators */
    put(t, "big", GVT_NN(gv_tensor_zeros(GV_F64, GV_DIMS(1000, 251))));
    GVT_OK(gv_tree_insert(t, "opt", gv_tree_new_list()));
    GVT_OK(gv_tree_append(gv_tree_get(t, "opt"), gv_tree_new_label("adam")));
    s = GVT_NN(gv_tree_summary(t));
    cr_assert_str_eq(s, "name        shape        dtype    params\n"
                        "params                            36 (144 B)\n"
                        "  layer                           36 (144 B)\n"
                        "    kernel  (8, 4)       float32  32 (128 B)\n"
                        "    bias    (4,)         float32  4 (16 B)\n"
                        "big         (1000, 251)  float64  251,000 (2.0 MB)\n"
                        "opt                               0 (0 B)\n"
                        "  0         'adam'       label    0 (0 B)\n"
                        "Total Parameters: 251,036 (2.0 MB)\n");
    free(s);
    gv_tree *small = GVT_NN(gv_tree_new_leaf(gv_tree_get_tensor(t, "params/layer/kernel")));
    s = GVT_NN(gv_tree_summary(small));
    cr_assert_str_eq(s, "name    shape   dtype    params\n"
                        "<root>  (8, 4)  float32  32 (128 B)\n"
                        "Total Parameters: 32 (128 B)\n");
    free(s);
    gv_tree *kb = GVT_NN(gv_tree_new_dict());
    put(kb, "w", GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(1001))));
    s = GVT_NN(gv_tree_summary(kb));
    cr_assert(strstr(s, "Total Parameters: 1,001 (1.0 KB)\n"), "%s", s);
    free(s);
    GVT_NULL(gv_tree_summary(NULL), GV_ERR_ARG, "gv_tree_summary: tree is NULL");
    gv_tree_free(kb);
    gv_tree_free(small);
    gv_tree_free(t);
}

/* accessors given the NULL a failed call returned keep that call's error */
Test(tree, accessors_of_a_failed_result_keep_its_error) {
    gv_tree *none = gv_tree_get(NULL, "x");
    gv_clear_error();
    gv_error(GV_ERR_FORMAT, "ckpt.safetensors: truncated");
    cr_expect_null(gv_tree_get(none, "params"));
    cr_expect_null(gv_tree_child(none, 0));
    cr_expect_null(gv_tree_leaf_tensor(none));
    cr_expect_null(gv_train_state_params(none));
    cr_expect_eq(gv_last_status(), GV_ERR_FORMAT);
    cr_expect(strstr(gv_last_error(), "ckpt.safetensors: truncated"), "%s", gv_last_error());
    gv_clear_error();
    cr_expect_null(gv_tree_get(NULL, "params"));
    cr_expect(strstr(gv_last_error(), "tree is NULL"), "%s", gv_last_error());
}
