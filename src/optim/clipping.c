/* Clipping: clip (by value) and clip_by_global_norm, both stateless.
 * Optax: transforms/_clipping.py, tree_utils/_tree_math.py (reference A8). */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "optim_internal.h"

static gv_tree *empty_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    return gv_tree_new_tuple();
}

/* The updates' leaves, or the tx error. */
static gv_status leaves(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                        gv_value **u, size_t *n) {
    if (gv_tx_leaves(updates, u, n, NULL) != GV_OK)
        return gv_tx_fail(tx, g, gv_last_status(), "updates: %s", gv_last_error());
    return GV_OK;
}

/* ---- clip ---- */

static gv_status clip_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                             const gv_tree *state, const gv_tree *params, gv_tree **nu,
                             gv_tree **ns) {
    if (gv_tx_check_empty(tx, g, state) != GV_OK) return gv_last_status();
    gv_value *u;
    size_t n;
    if (leaves(tx, g, updates, &u, &n) != GV_OK) return gv_last_status();
    for (size_t i = 0; i < n; i++) {
        /* jnp.clip(u, -max_delta, max_delta) = minimum(maximum(u, lo), hi) */
        gv_dtype dt = gv_value_dtype(u[i]);
        u[i] = gv_minimum(gv_maximum(u[i], gv_tx_hp_neg(tx, g, 0, dt)), gv_tx_hp(tx, g, 0, dt));
    }
    gv_tree *out = gv_graph_status(g) == GV_OK ? gv_tx_rebuild(updates, u) : NULL;
    free(u);
    return gv_tx_finish(out, gv_tree_new_tuple(), nu, ns);
}

static bool bad_bound(const char *name, const char *arg, double x) {
    if (!isnan(x) && x >= 0) return false;
    gv_error(GV_ERR_ARG, "%s: %s is %g; it must be >= 0", name, arg, x);
    return true;
}

gv_transform *gv_clip(double max_delta) {
    if (bad_bound("clip", "max_delta", max_delta)) return NULL;
    gv_transform *tx = gv_tx_new("clip", empty_init, clip_update);
    if (tx) gv_tx_hp_set(tx, 0, "max_delta", max_delta);
    return tx;
}

/* ---- clip_by_global_norm ---- */

/* optax.tree.norm: sqrt of the sum over leaves (flatten order, folded left
 * to right from the first) of sum(square(x)); float32 for float32 leaves.
 * The square's "+ square(imag)" is + 0, which changes no bit of x*x >= +0. */
gv_value gv_tx_global_norm_sq(const gv_value *u, size_t n, gv_graph *g) {
    gv_value acc = {NULL, -1};
    for (size_t i = 0; i < n; i++) {
        gv_value s = gv_sum(gv_mul(u[i], u[i]), NULL, 0, false);
        acc = i ? gv_add(acc, s) : s;
    }
    return n ? acc : gv_scalar(g, GV_F32, 0.0);
}

static gv_status gnorm_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                              const gv_tree *state, const gv_tree *params, gv_tree **nu,
                              gv_tree **ns) {
    if (gv_tx_check_empty(tx, g, state) != GV_OK) return gv_last_status();
    gv_value *u;
    size_t n;
    if (leaves(tx, g, updates, &u, &n) != GV_OK) return gv_last_status();
    gv_value gn = gv_sqrt(gv_tx_global_norm_sq(u, n, g));
    /* trigger = g_norm < max_norm: the weak max_norm takes g_norm's dtype */
    gv_value trigger = gv_lt(gn, gv_tx_hp(tx, g, 0, gv_value_dtype(gn)));
    for (size_t i = 0; i < n; i++) {
        gv_dtype dt = gv_value_dtype(u[i]);
        gv_value clipped = gv_mul(gv_div(u[i], gv_cast(gn, dt)), gv_tx_hp(tx, g, 0, dt));
        u[i] = gv_select(trigger, u[i], clipped);
    }
    gv_tree *out = gv_graph_status(g) == GV_OK ? gv_tx_rebuild(updates, u) : NULL;
    free(u);
    return gv_tx_finish(out, gv_tree_new_tuple(), nu, ns);
}

gv_transform *gv_clip_by_global_norm(double max_norm) {
    if (bad_bound("clip_by_global_norm", "max_norm", max_norm)) return NULL;
    gv_transform *tx = gv_tx_new("clip_by_global_norm", empty_init, gnorm_update);
    if (tx) gv_tx_hp_set(tx, 0, "max_norm", max_norm);
    return tx;
}
