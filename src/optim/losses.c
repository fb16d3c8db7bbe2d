/* Losses, per example (no reduction), as traced value functions.
 * Optax: losses/_regression.py, losses/_classification.py (reference A16). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph/graph_internal.h"
#include "optim_internal.h"

static bool is_none(gv_value v) { return v.graph == NULL && v.id < 0; }

static gv_value fail(gv_value like, gv_status st, const char *msg, gv_value a, gv_value b) {
    /* b may be None: describe it without querying it */
    char *sa = gv_value_ok(a) ? gv_shape_str(gv_value_rank(a), gv_value_shape(a)) : NULL;
    char *sb = gv_value_ok(b) ? gv_shape_str(gv_value_rank(b), gv_value_shape(b)) : NULL;
    gv_graph_fail(like.graph, st, "%s: %s%s and %s%s", msg,
                  gv_value_ok(a) ? gv_dtype_name(gv_value_dtype(a)) : "None", sa ? sa : "",
                  gv_value_ok(b) ? gv_dtype_name(gv_value_dtype(b)) : "None", sb ? sb : "");
    free(sa), free(sb);
    return (gv_value){like.graph, -1};
}

/* predictions - targets, or predictions when targets is None */
static gv_value errors(gv_value p, gv_value t) { return is_none(t) ? p : gv_sub(p, t); }

gv_value gv_squared_error(gv_value predictions, gv_value targets) {
    if (!gv_value_ok(predictions)) return predictions;
    if (!gv_dtype_is_float(gv_value_dtype(predictions)))
        return fail(predictions, GV_ERR_DTYPE, "squared_error: predictions must be float",
                    predictions, predictions);
    if (!is_none(targets)) {
        if (!gv_value_ok(targets)) return targets;
        bool same = gv_value_rank(predictions) == gv_value_rank(targets);
        for (int i = 0; same && i < gv_value_rank(targets); i++)
            same = gv_value_shape(predictions)[i] == gv_value_shape(targets)[i];
        if (!same) /* chex.assert_equal_shape: no broadcasting */
            return fail(predictions, GV_ERR_SHAPE,
                        "squared_error: predictions and targets must have equal shapes",
                        predictions, targets);
    }
    gv_value e = errors(predictions, targets);
    return gv_mul(e, e); /* errors ** 2: lax.integer_pow, an exact square */
}

gv_value gv_l2_loss(gv_value predictions, gv_value targets) {
    return gv_mul_scalar(gv_squared_error(predictions, targets), 0.5);
}

gv_value gv_huber_loss(gv_value predictions, gv_value targets, double delta) {
    if (!gv_value_ok(predictions)) return predictions;
    gv_value a = gv_abs(errors(predictions, targets));
    gv_value q = gv_minimum(a, gv_full_like(a, delta));
    gv_value lin = gv_sub(a, q);
    /* 0.5 * quadratic**2 + delta * linear */
    return gv_add(gv_mul_scalar(gv_mul(q, q), 0.5), gv_mul_scalar(lin, delta));
}

gv_value gv_softmax_cross_entropy(gv_value logits, gv_value labels, int axis) {
    if (!gv_value_ok(logits)) return logits;
    if (!gv_value_ok(labels)) return labels;
    gv_value y = gv_cast(labels, gv_value_dtype(logits));
    /* -sum(labels * log_softmax(logits), axis) */
    return gv_neg(gv_sum(gv_mul(y, gv_log_softmax(logits, axis)), &axis, 1, false));
}

gv_value gv_softmax_cross_entropy_with_integer_labels(gv_value logits, gv_value labels, int axis) {
    if (!gv_value_ok(logits)) return logits;
    if (!gv_value_ok(labels)) return labels;
    gv_dtype ld = gv_value_dtype(labels);
    if (gv_dtype_is_float(ld) || ld == GV_BOOL)
        return fail(logits, GV_ERR_DTYPE,
                    "softmax_cross_entropy_with_integer_labels: labels must be integers",
                    logits, labels);
    int r = gv_value_rank(logits), a = axis < 0 ? axis + r : axis;
    if (a < 0 || a >= r || gv_value_rank(labels) != r - 1)
        return fail(logits, GV_ERR_SHAPE,
                    "softmax_cross_entropy_with_integer_labels: labels must have the logits' "
                    "shape without the class axis",
                    logits, labels);
    /* logits -= stop_gradient(max); lse(logits) - logits[label] */
    gv_value shifted = gv_sub(logits, gv_stop_gradient(gv_max(logits, &a, 1, true)));
    int64_t c = gv_value_shape(logits)[a];
    gv_value lab = gv_cast(labels, GV_I32);
    gv_value cc = gv_full_like(lab, (double)c);
    /* negative labels wrap like numpy; outside [-C, C) JAX's "fill" mode gives NaN */
    gv_value wrapped = gv_select(gv_lt(lab, gv_zeros_like(lab)), gv_add(lab, cc), lab);
    gv_value valid = gv_select(gv_ge(lab, gv_neg(cc)), gv_lt(lab, cc), gv_ne(lab, lab)); /* and */
    gv_value idx = gv_select(valid, wrapped, gv_zeros_like(lab));
    gv_value picked = gv_squeeze(gv_take_along_axis(shifted, gv_expand_dims(idx, a), a), &a, 1);
    picked = gv_select(valid, picked, gv_full_like(picked, NAN));
    return gv_sub(gv_logsumexp(shifted, &a, 1, false), picked);
}

gv_value gv_softmax_cross_entropy_with_integer_labels_axes(gv_value logits, gv_value labels,
                                                           const int *axes, int naxes) {
    if (!gv_value_ok(logits)) return logits;
    int r = gv_value_rank(logits);
    if (!axes || naxes < 1 || naxes > r)
        return fail(logits, GV_ERR_ARG,
                    "softmax_cross_entropy_with_integer_labels: bad axes", logits, labels);
    /* move the class axes to the end (in the order given), then flatten them */
    int perm[r], np = 0;
    bool used[r];
    for (int i = 0; i < r; i++) used[i] = false;
    for (int k = 0; k < naxes; k++) {
        int a = axes[k] < 0 ? axes[k] + r : axes[k];
        if (a < 0 || a >= r || used[a])
            return fail(logits, GV_ERR_ARG,
                        "softmax_cross_entropy_with_integer_labels: bad or repeated axis",
                        logits, labels);
        used[a] = true;
    }
    for (int i = 0; i < r; i++)
        if (!used[i]) perm[np++] = i;
    int64_t shape[r];
    for (int i = 0; i < np; i++) shape[i] = gv_value_shape(logits)[perm[i]];
    shape[np] = -1;
    for (int k = 0; k < naxes; k++) perm[np + k] = axes[k] < 0 ? axes[k] + r : axes[k];
    gv_value x = gv_reshape(gv_transpose(logits, perm), np + 1, shape);
    return gv_softmax_cross_entropy_with_integer_labels(x, labels, -1);
}

gv_value gv_sigmoid_binary_cross_entropy(gv_value logits, gv_value labels) {
    if (!gv_value_ok(logits)) return logits;
    if (!gv_value_ok(labels)) return labels;
    gv_value y = gv_cast(labels, gv_value_dtype(logits));
    /* log_sigmoid(x) = -softplus(-x) */
    gv_value log_p = gv_neg(gv_softplus(gv_neg(logits)));
    gv_value log_not_p = gv_neg(gv_softplus(logits));
    /* -labels * log_p - (1. - labels) * log_not_p */
    return gv_sub(gv_mul(gv_neg(y), log_p),
                  gv_mul(gv_sub(gv_ones_like(y), y), log_not_p));
}

/* ---- metrics ---- */

static bool shape_is_prefix(gv_value labels, gv_value logits) {
    int r = gv_value_rank(labels);
    if (r != gv_value_rank(logits) - 1) return false;
    for (int i = 0; i < r; i++)
        if (gv_value_shape(labels)[i] != gv_value_shape(logits)[i]) return false;
    return true;
}

gv_value gv_accuracy(gv_value logits, gv_value labels) {
    if (!gv_value_ok(logits)) return logits;
    if (!gv_value_ok(labels)) return labels;
    gv_dtype ld = gv_value_dtype(labels);
    if (!gv_dtype_is_float(gv_value_dtype(logits)) || gv_dtype_is_float(ld) || ld == GV_BOOL)
        return fail(logits, GV_ERR_DTYPE, "accuracy: logits must be float and labels integers",
                    logits, labels);
    if (gv_value_rank(logits) < 1 || !shape_is_prefix(labels, logits))
        return fail(logits, GV_ERR_SHAPE,
                    "accuracy: labels must have the logits' shape without the last (class) axis",
                    logits, labels);
    gv_value pred = gv_argmax(logits, -1, false); /* int32, the first maximum */
    /* == on numpy's promoted type; int64 holds every label exactly (a uint64
     * past INT64_MAX turns negative and, like any label outside [0, C),
     * matches no class) */
    gv_value hit = ld == GV_I32 ? gv_eq(pred, labels)
                                : gv_eq(gv_cast(pred, GV_I64), gv_cast(labels, GV_I64));
    return gv_mean(gv_cast(hit, GV_F32), NULL, 0, false);
}
