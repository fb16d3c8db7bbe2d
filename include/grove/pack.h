/* grove: building and taking apart trees in one call, by a pattern.
 *
 * JAX code passes pytrees around as Python literals: `return loss, (mse, kl)`,
 * `(loss, (mse, kl)), grads = value_and_grad(...)`, `{"loss": loss}`. In C
 * the same is one call with the structure written as a pattern:
 *
 *   gv_value loss, mse, kl;
 *   const gv_tree *grads;
 *   gv_unpack(lg, "((loss, (mse, kl)), grads)", &loss, &mse, &kl, &grads);
 *   return gv_pack(g, "(state, {loss, mse, kl})", new_state, loss, mse, kl);
 *
 * Patterns: `(a, b)` a tuple, `[a, b]` a list, `{a, b}` a dict whose keys are
 * the names (`{key: pattern}` nests: `{params: (w, b)}`), a name a leaf or a
 * whole subtree, `_` (unpack only) a part that is skipped. Names are
 * identifiers ([A-Za-z_][A-Za-z0-9_]*); in a tuple or list they only say what
 * the part is, in a dict they are the keys. Unpacking, `()` and `[]` both
 * match any tuple or list of exactly that length (as Python's unpacking
 * does), and `{}` picks the named keys of a dict (others are ignored).
 *
 * Pack items, one per name in pattern order, are chosen by their C type:
 *   gv_value                  a value leaf
 *   gv_tree *, const gv_tree * the subtree, cloned (the caller keeps its own)
 *   gv_tensor *, const gv_tensor *  a tensor leaf holding a new reference
 * Unpack targets, one per name, by their pointer type:
 *   gv_value *                the value of a value leaf
 *   const gv_tree **          the subtree (borrowed from the tree)
 *   gv_tensor **              the tensor of a tensor leaf (borrowed)
 *
 * Ownership. Inside a trace (g not NULL) a packed tree belongs to the
 * graph: it lives until the traced function is freed, is never freed by the
 * caller (gv_tree_free on it does nothing), can be returned from the traced
 * function as its outputs, and is cloned when inserted into another tree.
 * With g NULL (building inputs from tensors) the caller owns the new tree
 * and frees it with gv_tree_free.
 *
 * Failure passes through: a NULL tree or an invalid value among the items
 * makes gv_pack return NULL, and gv_unpack of a NULL tree fails, keeping the
 * first error (the op error that made the value invalid), so traced code
 * need not check each line: the trace fails with that first message. A
 * pattern that does not match is an error naming the pattern and the place
 * ("gv_unpack ((loss, aux), grads): at 0: a tuple of 3, the pattern has 2"),
 * recorded as the trace's error when the tree holds values. On failure
 * every unpack target is set to an invalid value / NULL. */
#ifndef GROVE_PACK_H
#define GROVE_PACK_H

#include "grove/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef enum gv_item_kind {
    GV_ITEM_VALUE,
    GV_ITEM_TREE,
    GV_ITEM_TENSOR
} gv_item_kind;

/* One pack item or unpack target, made by the macros below. */
typedef struct gv_item {
    gv_item_kind kind;
    union {
        gv_value value;
        const gv_tree *tree;
        gv_tensor *tensor;
        gv_value *value_out;
        const gv_tree **tree_out;
        gv_tensor **tensor_out;
    } u;
} gv_item;

gv_tree *gv_pack_items(gv_graph *g, const char *pattern, const gv_item *items, size_t n);
gv_status gv_unpack_items(const gv_tree *tree, const char *pattern, const gv_item *targets,
                          size_t n);

static inline gv_item gv_item_value_(gv_value v) {
    return (gv_item){GV_ITEM_VALUE, {.value = v}};
}
static inline gv_item gv_item_tree_(const gv_tree *t) {
    return (gv_item){GV_ITEM_TREE, {.tree = t}};
}
static inline gv_item gv_item_tensor_(gv_tensor *t) {
    return (gv_item){GV_ITEM_TENSOR, {.tensor = t}};
}
static inline gv_item gv_item_ctensor_(const gv_tensor *t) {
    return (gv_item){GV_ITEM_TENSOR, {.tensor = (gv_tensor *)t}}; /* a new reference, no write */
}
static inline gv_item gv_target_value_(gv_value *v) {
    return (gv_item){GV_ITEM_VALUE, {.value_out = v}};
}
static inline gv_item gv_target_tree_(const gv_tree **t) {
    return (gv_item){GV_ITEM_TREE, {.tree_out = t}};
}
static inline gv_item gv_target_mtree_(gv_tree **t) {
    return (gv_item){GV_ITEM_TREE, {.tree_out = (const gv_tree **)t}};
}
static inline gv_item gv_target_tensor_(gv_tensor **t) {
    return (gv_item){GV_ITEM_TENSOR, {.tensor_out = t}};
}

#define GV_ITEM(x)                                                                      \
    _Generic((x), gv_value: gv_item_value_, gv_tree *: gv_item_tree_,                   \
             const gv_tree *: gv_item_tree_, gv_tensor *: gv_item_tensor_,              \
             const gv_tensor *: gv_item_ctensor_)(x)
#define GV_TARGET(p)                                                                    \
    _Generic((p), gv_value *: gv_target_value_, const gv_tree **: gv_target_tree_,      \
             gv_tree **: gv_target_mtree_, gv_tensor **: gv_target_tensor_)(p)

/* A map over up to 16 macro arguments, comma separated. */
#define GV_PP_NARG_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, N,  \
                    ...)                                                                      \
    N
#define GV_PP_NARG(...)                                                                       \
    GV_PP_NARG_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define GV_PP_CAT_(a, b) a##b
#define GV_PP_CAT(a, b) GV_PP_CAT_(a, b)
#define GV_PP_MAP1(f, x) f(x)
#define GV_PP_MAP2(f, x, ...) f(x), GV_PP_MAP1(f, __VA_ARGS__)
#define GV_PP_MAP3(f, x, ...) f(x), GV_PP_MAP2(f, __VA_ARGS__)
#define GV_PP_MAP4(f, x, ...) f(x), GV_PP_MAP3(f, __VA_ARGS__)
#define GV_PP_MAP5(f, x, ...) f(x), GV_PP_MAP4(f, __VA_ARGS__)
#define GV_PP_MAP6(f, x, ...) f(x), GV_PP_MAP5(f, __VA_ARGS__)
#define GV_PP_MAP7(f, x, ...) f(x), GV_PP_MAP6(f, __VA_ARGS__)
#define GV_PP_MAP8(f, x, ...) f(x), GV_PP_MAP7(f, __VA_ARGS__)
#define GV_PP_MAP9(f, x, ...) f(x), GV_PP_MAP8(f, __VA_ARGS__)
#define GV_PP_MAP10(f, x, ...) f(x), GV_PP_MAP9(f, __VA_ARGS__)
#define GV_PP_MAP11(f, x, ...) f(x), GV_PP_MAP10(f, __VA_ARGS__)
#define GV_PP_MAP12(f, x, ...) f(x), GV_PP_MAP11(f, __VA_ARGS__)
#define GV_PP_MAP13(f, x, ...) f(x), GV_PP_MAP12(f, __VA_ARGS__)
#define GV_PP_MAP14(f, x, ...) f(x), GV_PP_MAP13(f, __VA_ARGS__)
#define GV_PP_MAP15(f, x, ...) f(x), GV_PP_MAP14(f, __VA_ARGS__)
#define GV_PP_MAP16(f, x, ...) f(x), GV_PP_MAP15(f, __VA_ARGS__)
#define GV_PP_MAP(f, ...) GV_PP_CAT(GV_PP_MAP, GV_PP_NARG(__VA_ARGS__))(f, __VA_ARGS__)

/* gv_pack(g, pattern, items...): a new tree (graph-owned when g is not NULL),
 * NULL with the error set. 1 to 16 items. */
#define gv_pack(g, pattern, ...)                                                        \
    gv_pack_items((g), (pattern), (const gv_item[]){GV_PP_MAP(GV_ITEM, __VA_ARGS__)},   \
                  (size_t)GV_PP_NARG(__VA_ARGS__))
/* gv_tuple(g, items...): gv_pack with the pattern (a, b, ...). */
#define gv_tuple(g, ...)                                                                \
    gv_pack_items((g), NULL, (const gv_item[]){GV_PP_MAP(GV_ITEM, __VA_ARGS__)},        \
                  (size_t)GV_PP_NARG(__VA_ARGS__))
/* gv_unpack(tree, pattern, &targets...): GV_OK, or the error (targets
 * invalid / NULL). 1 to 16 targets. */
#define gv_unpack(tree, pattern, ...)                                                   \
    gv_unpack_items((tree), (pattern), (const gv_item[]){GV_PP_MAP(GV_TARGET, __VA_ARGS__)}, \
                    (size_t)GV_PP_NARG(__VA_ARGS__))

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
