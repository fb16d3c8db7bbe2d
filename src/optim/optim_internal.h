/* grove internal: the gradient-transformation object and the helpers its
 * implementations share (trees of traced values, errors). */
#ifndef GROVE_OPTIM_INTERNAL_H
#define GROVE_OPTIM_INTERNAL_H

#include <stddef.h>

#include "grove/compile.h"
#include "grove/optim.h"

typedef gv_tree *(*gv_tx_init_fn)(const gv_transform *tx, gv_graph *g, const gv_tree *params);
/* Implementations may assume updates, state and the out pointers are
 * non-NULL; params may be NULL. On failure they set the error (tx_fail) and
 * leave the outputs NULL. */
typedef gv_status (*gv_tx_update_fn)(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                                     const gv_tree *state, const gv_tree *params,
                                     gv_tree **new_updates, gv_tree **new_state);

/* Hyper-parameter slots per transformation. */
#define GV_TX_NHP 6

struct gv_transform {
    const char *name;           /* optax's name, static */
    gv_tx_init_fn init;
    gv_tx_update_fn update;
    double hp[GV_TX_NHP];       /* hyper-parameters, as Python floats */
    /* The factory argument each hp[k] comes from ("learning_rate", "b1",
     * "momentum", ...; NULL: none), so inject_hyperparams can bind it to a
     * float32 scalar of its state: then hp_owner is that inject_hyperparams
     * and hp_slot[k] the index of the value (-1: not bound). Set by the
     * constructors; read through gv_tx_hp* below, never hp[k] directly,
     * in any arithmetic that may be injected. */
    const char *hpname[GV_TX_NHP];
    const gv_transform *hp_owner;
    int hp_slot[GV_TX_NHP];
    bool flag;                  /* nesterov */
    int64_t hp_int;             /* an integer argument (apply_if_finite's maximum) */
    gv_schedule *sched;         /* owned */
    gv_tree *mask;              /* owned (masked) */
    gv_transform **kids;        /* owned (chain, masked) */
    size_t nkids;
    gv_jit *init_jit, *update_jit; /* the eager calls' plan caches */
    struct gv_tx_user *user;    /* owned (gv_transform_new), else NULL */
    void *cfg;                  /* a transformation's own configuration, or NULL */
    void (*free_cfg)(void *);   /* frees cfg (may be NULL) */
};

/* A new transform with name, init and update set, the rest zero. */
gv_transform *gv_tx_new(const char *name, gv_tx_init_fn init, gv_tx_update_fn update);

/* init/update of a part (chain, masked): in the part's graph scope, no
 * argument checks, no "gv_transform_*: " prefix on errors. */
gv_tree *gv_tx_init_inner(const gv_transform *tx, gv_graph *g, const gv_tree *params);
gv_status gv_tx_update_inner(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                             const gv_tree *state, const gv_tree *params, gv_tree **new_updates,
                             gv_tree **new_state);

/* Record an error both as the thread's error and as g's sticky trace error;
 * returns status. The message is prefixed with "<tx name>: ". */
gv_status gv_tx_fail(const gv_transform *tx, gv_graph *g, gv_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* optax.masked's init and update with an explicit mask (a prefix tree of
 * "true"/"false" labels or one-element tensors), errors in who's name: the
 * body of gv_masked, shared with multi_transform. State {"inner_state"}. */
gv_tree *gv_tx_masked_init(const gv_transform *who, const gv_transform *inner,
                           const gv_tree *mask, gv_graph *g, const gv_tree *params);
gv_status gv_tx_masked_update(const gv_transform *who, const gv_transform *inner,
                              const gv_tree *mask, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params, gv_tree **nu,
                              gv_tree **ns);
/* Finish an update: both trees built, or the error of whichever failed. */
gv_status gv_tx_finish(gv_tree *u, gv_tree *s, gv_tree **nu, gv_tree **ns);
/* ---- hyper-parameters (see hpname above) ----
 *
 * Each returns a scalar of dtype dt in g. Not injected: the Python float
 * hp[k] (for the 1 - x and -x forms, that arithmetic done in double) rounded
 * once to dt, JAX's weak typing. Injected: the float32 value from the
 * inject_hyperparams state with that arithmetic in float32, then cast to dt,
 * as optax computes on a float32 array (reference 0.2: 1 - b2 is then
 * 1 - 0.999f, not 0.001f). */
gv_value gv_tx_hp(const gv_transform *tx, gv_graph *g, int k, gv_dtype dt);
gv_value gv_tx_hp_1m(const gv_transform *tx, gv_graph *g, int k, gv_dtype dt); /* 1 - hp */
gv_value gv_tx_hp_neg(const gv_transform *tx, gv_graph *g, int k, gv_dtype dt); /* -hp */
/* Whether hp[k] is injected (a traced value): Python-level shortcuts on the
 * float (add_decayed_weights skipping a 0.0) must not be taken then. */
bool gv_tx_hp_injected(const gv_transform *tx, int k);
/* Name slot k (a static string). */
void gv_tx_hp_set(gv_transform *tx, int k, const char *name, double value);

/* The values an inject_hyperparams update binds, visible to the transforms
 * it owns while its inner update runs (a per-thread stack of frames). */
typedef struct gv_tx_hp_frame {
    const gv_transform *owner;
    const gv_value *vals;
    struct gv_tx_hp_frame *prev;
} gv_tx_hp_frame;
void gv_tx_hp_push(gv_tx_hp_frame *f);
void gv_tx_hp_pop(gv_tx_hp_frame *f);

/* A NULL argument that is usually a failed constructor's result: GV_ERR_ARG
 * "<who>: <what> is NULL", followed, when the thread has an error, by that
 * error (the nested constructor's reason: "MultiSteps: inner is NULL; the
 * last error: adamw: no learning rate ..."), so nesting keeps the cause. */
gv_status gv_tx_null_arg(const char *who, const char *what);
/* "no learning rate" for optimiser name, with the last error when there is
 * one (a schedule constructor that failed returned the NULL .schedule). */
gv_status gv_tx_no_learning_rate(const char *name);

/* ---- trees of traced values ---- */

/* The value leaves of t in flatten order: *vals is malloc'd (NULL when
 * there are none); *paths too when paths is not NULL (gv_tree_paths_free).
 * GV_ERR_ARG naming the path for a leaf that is not a value. */
gv_status gv_tx_leaves(const gv_tree *t, gv_value **vals, size_t *n, char ***paths);
/* A new tree with like's structure and key order whose leaves, in flatten
 * order, are vals[0..]. */
gv_tree *gv_tx_rebuild(const gv_tree *like, const gv_value *vals);
/* GV_OK if b has a's structure and every pair of leaves has the same shape
 * (and dtype when check_dtype). Otherwise the tx error "<what_a> and
 * <what_b> differ: <first difference>". */
gv_status gv_tx_check_like(const gv_transform *tx, gv_graph *g, const char *what_a,
                           const gv_tree *a, const char *what_b, const gv_tree *b,
                           bool check_dtype);
/* The graph the tree's values belong to (NULL if it has no value leaf). */
gv_graph *gv_tx_graph_of(const gv_tree *t);
/* A dict state node's child, or a tx error naming the field. */
const gv_tree *gv_tx_field(const gv_transform *tx, gv_graph *g, const gv_tree *state,
                           const char *field);
/* A state that must be EmptyState (an empty tuple); error otherwise. */
gv_status gv_tx_check_empty(const gv_transform *tx, gv_graph *g, const gv_tree *state);

/* optax.tree.norm(u, squared=True) over the leaves u[0..n-1]: the per-leaf
 * sums of squares folded left to right in flatten order (float32 zero for
 * no leaves). */
gv_value gv_tx_global_norm_sq(const gv_value *u, size_t n, gv_graph *g);
/* jnp.isfinite(x): a bool value of x's shape (|x| < inf). */
gv_value gv_tx_isfinite(gv_value x);
/* zeros_like of every leaf of t, as a new tree; it keeps
 * each leaf's dtype when dtype < 0, else every leaf gets dtype. */
gv_tree *gv_tx_zeros_tree(const gv_transform *tx, gv_graph *g, const gv_tree *t, int dtype);

/* A dict state from n (key, subtree) pairs, taking the subtrees (NULL-safe:
 * a NULL subtree fails the whole and frees the others). */
gv_tree *gv_tx_dict_take(size_t n, const char *const *keys, gv_tree *const *kids);
/* A leaf of v, or NULL for an invalid value. */
gv_tree *gv_tx_value_leaf(gv_value v);

/* optax.numerics.safe_increment on an int32 scalar count. */
gv_value gv_tx_safe_increment(gv_value count);

/* The int32 scalar count 0. */
gv_value gv_tx_zero_count(gv_graph *g);
/* The state's "count" field, which must be an int32 scalar (the tx error
 * otherwise). Sets *count; returns GV_OK or the error status. */
gv_status gv_tx_count(const gv_transform *tx, gv_graph *g, const gv_tree *state, gv_value *count);

#endif
