/* Combinators over other transformations: multi_transform (optax.partition)
 * and apply_if_finite, with the label-tree literal gv_labels.
 * Optax: transforms/_combining.py, transforms/_conditionality.py
 * (reference A11, A12). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "optim_internal.h"
#include "tree/tree_internal.h"

/* ---- gv_labels: a Python literal of containers and quoted strings ---- */

typedef struct lparser {
    const char *s, *p;
} lparser;

static void skip_ws(lparser *ps) {
    while (isspace((unsigned char)*ps->p)) ps->p++;
}

static gv_tree *lfail(lparser *ps, const char *what) {
    gv_error(GV_ERR_ARG, "gv_labels: %s at offset %d of \"%s\"", what, (int)(ps->p - ps->s), ps->s);
    return NULL;
}

/* A quoted string ('...' or "..."), malloc'd; backslash escapes the next char. */
static char *parse_string(lparser *ps) {
    char q = *ps->p;
    if (q != '\'' && q != '"') return lfail(ps, "expected a quoted string"), NULL;
    const char *start = ++ps->p;
    size_t n = 0;
    for (const char *c = start; *c && *c != q; c++, n++)
        if (*c == '\\' && c[1]) c++;
    char *out = malloc(n + 1), *o = out;
    if (!out) return gv_error(GV_ERR_NOMEM, "gv_labels: out of memory"), NULL;
    while (*ps->p && *ps->p != q) {
        if (*ps->p == '\\' && ps->p[1]) ps->p++;
        *o++ = *ps->p++;
    }
    *o = 0;
    if (*ps->p != q) {
        free(out);
        return lfail(ps, "unterminated string"), NULL;
    }
    ps->p++;
    return out;
}

static gv_tree *parse_node(lparser *ps, int depth);

/* The elements of a list/tuple/dict up to close; dict: key ':' value. */
static gv_tree *parse_container(lparser *ps, char close, gv_tree *t, bool dict, int depth) {
    bool any = false, comma = false;
    for (;;) {
        skip_ws(ps);
        if (*ps->p == close) break;
        if (any && !comma) return gv_tree_free(t), lfail(ps, "expected ',' or a closing bracket");
        char *key = NULL;
        if (dict) {
            if (!(key = parse_string(ps))) return gv_tree_free(t), NULL;
            skip_ws(ps);
            if (*ps->p != ':') return free(key), gv_tree_free(t), lfail(ps, "expected ':'");
            ps->p++;
        }
        gv_tree *v = parse_node(ps, depth + 1);
        gv_status st = !v ? gv_last_status() : dict ? gv_tree_insert(t, key, v) : gv_tree_append(t, v);
        free(key);
        if (st != GV_OK) return gv_tree_free(t), NULL;
        any = true;
        skip_ws(ps);
        comma = *ps->p == ',';
        if (comma) ps->p++;
    }
    ps->p++;
    return t;
}

static gv_tree *parse_node(lparser *ps, int depth) {
    if (depth > 64) return lfail(ps, "nested too deeply");
    skip_ws(ps);
    switch (*ps->p) {
    case '{': ps->p++; return parse_container(ps, '}', gv_tree_new_dict(), true, depth);
    case '[': ps->p++; return parse_container(ps, ']', gv_tree_new_list(), false, depth);
    case '(': ps->p++; return parse_container(ps, ')', gv_tree_new_tuple(), false, depth);
    case '\'':
    case '"': {
        char *str = parse_string(ps);
        gv_tree *t = str ? gv_tree_new_label(str) : NULL;
        free(str);
        return t;
    }
    default: return lfail(ps, *ps->p ? "expected a dict, list, tuple or quoted label" : "unexpected end");
    }
}

gv_tree *gv_labels(const char *literal) {
    if (!literal) return gv_error(GV_ERR_ARG, "gv_labels: literal is NULL"), NULL;
    lparser ps = {literal, literal};
    gv_tree *t = parse_node(&ps, 0);
    skip_ws(&ps);
    if (t && *ps.p) {
        gv_tree_free(t);
        return lfail(&ps, "trailing characters");
    }
    return t;
}

/* ---- gv_label_tree: labels by path ---- */

typedef struct label_ctx {
    gv_label_fn fn;
    void *ud;
    char **paths;
    bool failed;
} label_ctx;

static gv_tree *label_leaf(const gv_tree *leaf, size_t index, void *ud) {
    label_ctx *c = ud;
    if (c->failed) return NULL;
    const char *lab = c->fn(c->paths[index], leaf, c->ud);
    if (!lab) {
        c->failed = true;
        gv_error(GV_ERR_ARG, "gv_label_tree: the label function returned NULL at %s",
                 gv_tree_show_path(c->paths[index]));
        return NULL;
    }
    return gv_tree_new_label(lab);
}

gv_tree *gv_label_tree(const gv_tree *tree, gv_label_fn fn, void *userdata) {
    if (!tree || !fn) return gv_error(GV_ERR_ARG, "gv_label_tree: %s is NULL", tree ? "fn" : "tree"), NULL;
    label_ctx c = {fn, userdata, NULL, false};
    size_t n;
    if (gv_tree_leaf_paths(tree, &c.paths, &n) != GV_OK) return NULL;
    gv_tree *out = gv_tree_rebuild_indexed(tree, label_leaf, &c);
    if (c.failed) {
        char *msg = NULL;
        const char *e = gv_last_error();
        if (e) msg = malloc(strlen(e) + 1);
        if (msg) strcpy(msg, e);
        gv_tree_free(out);
        gv_error(GV_ERR_ARG, "%s", msg ? msg : "gv_label_tree: the label function returned NULL");
        free(msg);
        out = NULL;
    }
    gv_tree_paths_free(c.paths, n);
    return out;
}

/* ---- multi_transform ---- */

typedef struct part_cfg {
    char **labels;       /* the transforms' labels, in the order given */
    size_t n;
    gv_tree *param_labels;   /* static labels, or NULL */
    gv_param_labels_fn fn;   /* or a function of the tree */
    void *ud;
} part_cfg;

static void part_cfg_free(void *p) {
    part_cfg *c = p;
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free(c->labels[i]);
    free(c->labels);
    gv_tree_free(c->param_labels);
    free(c);
}

typedef struct label_check {
    const part_cfg *cfg;
    const char *bad_label;
    char *bad_path_copy;
} label_check;

static gv_status check_label(const char *path, const gv_tree *leaf, void *ud) {
    label_check *lc = ud;
    const char *lab = gv_tree_leaf_kind(leaf) == GV_LEAF_LABEL ? gv_tree_leaf_label(leaf) : NULL;
    for (size_t i = 0; lab && i < lc->cfg->n; i++)
        if (!strcmp(lab, lc->cfg->labels[i])) return GV_OK;
    lc->bad_label = lab;
    lc->bad_path_copy = malloc(strlen(path) + 1);
    if (lc->bad_path_copy) strcpy(lc->bad_path_copy, path);
    return GV_ERR_ARG;
}

/* Every leaf of labels is a label naming a transform; else the message. */
static gv_status check_labels(const part_cfg *c, const gv_tree *labels, const char *who) {
    label_check lc = {c, NULL, NULL};
    if (gv_tree_num_leaves(labels) == 0 && !gv_tree_is_leaf(labels)) return GV_OK;
    gv_status st = gv_tree_foreach_leaf(labels, check_label, &lc);
    if (st == GV_OK) return GV_OK;
    const char *path = lc.bad_path_copy ? gv_tree_show_path(lc.bad_path_copy) : "?";
    size_t len = 0;
    for (size_t i = 0; i < c->n; i++) len += strlen(c->labels[i]) + 4;
    char *names = malloc(len + 1);
    if (names) {
        names[0] = 0;
        for (size_t i = 0; i < c->n; i++)
            strcat(names, i ? ", '" : "'"), strcat(names, c->labels[i]), strcat(names, "'");
    }
    if (lc.bad_label)
        gv_error(GV_ERR_ARG, "%s: param_labels at %s is '%s', which names no transformation (the "
                 "labels are %s)", who, path, lc.bad_label, names ? names : "?");
    else
        gv_error(GV_ERR_ARG, "%s: param_labels at %s is not a label string (the labels are %s)",
                 who, path, names ? names : "?");
    free(names), free(lc.bad_path_copy);
    return GV_ERR_ARG;
}

typedef struct eq_ctx {
    const char *label;
} eq_ctx;

static gv_tree *mask_of_label(const gv_tree *leaf, size_t index, void *ud) {
    const eq_ctx *c = ud;
    return gv_tree_new_label(!strcmp(gv_tree_leaf_label(leaf), c->label) ? "true" : "false");
}

/* The label tree for this trace: the static one (borrowed: *owned NULL) or
 * fn's (owned), checked against the transforms and as a prefix of tree. */
static const gv_tree *labels_for(const gv_transform *tx, gv_graph *g, const gv_tree *tree,
                                 gv_tree **owned) {
    const part_cfg *c = tx->cfg;
    *owned = NULL;
    const gv_tree *labels = c->param_labels;
    if (c->fn) {
        unsigned long long before = gv_error_count();
        labels = *owned = c->fn(tree, c->ud);
        if (!labels) {
            if (gv_error_count() == before) gv_error(GV_ERR_ARG, "the param_labels function returned NULL");
            gv_tx_fail(tx, g, gv_last_status(), "param_labels: %s", gv_last_error());
            return NULL;
        }
        if (check_labels(c, labels, "multi_transform") != GV_OK) {
            gv_tx_fail(tx, g, GV_ERR_ARG, "%s", gv_last_error());
            gv_tree_free(*owned), *owned = NULL;
            return NULL;
        }
    }
    gv_tree *full = gv_tree_broadcast_prefix(labels, tree);
    if (!full) {
        gv_tx_fail(tx, g, GV_ERR_STRUCTURE,
                   "param_labels is not the params' structure or a prefix of it: %s",
                   gv_last_error());
        gv_tree_free(*owned), *owned = NULL;
        return NULL;
    }
    gv_tree_free(full);
    return labels;
}

/* labels == group, as a prefix mask tree of "true"/"false" */
static gv_tree *group_mask(const gv_tree *labels, const char *group) {
    eq_ctx e = {group};
    return gv_tree_rebuild_indexed(labels, mask_of_label, &e);
}

static gv_tree *part_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    const part_cfg *c = tx->cfg;
    gv_tree *owned;
    const gv_tree *labels = labels_for(tx, g, params, &owned);
    if (!labels) return NULL;
    gv_tree *inner = gv_tree_new_dict();
    for (size_t i = 0; inner && i < c->n; i++) {
        gv_tree *mask = group_mask(labels, c->labels[i]);
        gv_tree *si = mask ? gv_tx_masked_init(tx, tx->kids[i], mask, g, params) : NULL;
        gv_tree_free(mask);
        if (!si || gv_tree_insert(inner, c->labels[i], si) != GV_OK) gv_tree_free(inner), inner = NULL;
    }
    gv_tree_free(owned);
    gv_tree *s = inner ? gv_tree_new_dict() : NULL;
    if (inner && (!s || gv_tree_insert(s, "inner_states", inner) != GV_OK)) {
        gv_tree_free(s);
        return NULL;
    }
    return s;
}

static gv_status part_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                             const gv_tree *state, const gv_tree *params, gv_tree **nu,
                             gv_tree **ns) {
    const part_cfg *c = tx->cfg;
    const gv_tree *inner = gv_tx_field(tx, g, state, "inner_states");
    if (!inner) return gv_last_status();
    for (size_t i = 0; i < c->n; i++)
        if (!gv_tx_field(tx, g, inner, c->labels[i])) return gv_last_status();
    gv_tree *owned;
    const gv_tree *labels = labels_for(tx, g, updates, &owned);
    if (!labels) return gv_last_status();
    gv_tree *u = gv_tree_clone(updates), *s_inner = gv_tree_new_dict();
    gv_status st = u && s_inner ? GV_OK : gv_last_status();
    for (size_t i = 0; st == GV_OK && i < c->n; i++) {
        gv_tree *mask = group_mask(labels, c->labels[i]), *ui = NULL, *si = NULL;
        st = mask ? gv_tx_masked_update(tx, tx->kids[i], mask, g, u,
                                        gv_tree_child_by_key(inner, c->labels[i]), params, &ui, &si)
                  : gv_last_status();
        gv_tree_free(mask);
        if (st != GV_OK) break;
        gv_tree_free(u);
        u = ui;
        st = gv_tree_insert(s_inner, c->labels[i], si);
    }
    gv_tree_free(owned);
    gv_tree *s = st == GV_OK ? gv_tree_new_dict() : NULL;
    if (s && gv_tree_insert(s, "inner_states", s_inner) == GV_OK) s_inner = NULL;
    else gv_tree_free(s), s = NULL;
    gv_tree_free(s_inner);
    if (st != GV_OK) {
        gv_tree_free(u), gv_tree_free(s);
        return st;
    }
    return gv_tx_finish(u, s, nu, ns);
}

static gv_transform *make_partition(const gv_labelled_transform *txs, size_t n, gv_tree *labels,
                                    gv_param_labels_fn fn, void *ud) {
    const char *why = NULL;
    char null_label[96] = "";
    if (n == 0 || !txs) why = "no transformations (txs is empty)";
    for (size_t i = 0; !why && i < n; i++) {
        if (!txs[i].tx) {
            why = "null";
            snprintf(null_label, sizeof null_label, "the transformation of label '%s'",
                     txs[i].label ? txs[i].label : "(NULL)");
        }
        else if (!txs[i].label || !txs[i].label[0]) why = "a label is NULL or empty";
        for (size_t j = 0; !why && j < i; j++)
            if (!strcmp(txs[i].label, txs[j].label)) why = "two transformations have the same label";
    }
    if (!why && !fn && !labels) why = "param_labels is NULL (a failed gv_labels?)";
    part_cfg *c = why ? NULL : calloc(1, sizeof *c);
    gv_transform *tx = c ? gv_tx_new("multi_transform", part_init, part_update) : NULL;
    if (c) c->labels = calloc(n, sizeof *c->labels), c->n = n;
    if (tx) tx->kids = malloc(n * sizeof *tx->kids);
    bool ok = tx && c->labels && tx->kids;
    for (size_t i = 0; ok && i < n; i++)
        ok = (c->labels[i] = malloc(strlen(txs[i].label) + 1)) != NULL &&
             strcpy(c->labels[i], txs[i].label);
    if (ok) {
        c->param_labels = labels, c->fn = fn, c->ud = ud;
        labels = NULL;
        tx->cfg = c, tx->free_cfg = part_cfg_free;
        for (size_t i = 0; i < n; i++) tx->kids[i] = txs[i].tx;
        tx->nkids = n;
        if (c->param_labels && check_labels(c, c->param_labels, "multi_transform") != GV_OK) {
            gv_transform_free(tx);
            return NULL;
        }
        return tx;
    }
    if (!why) gv_error(GV_ERR_NOMEM, "multi_transform: out of memory");
    else if (null_label[0]) gv_tx_null_arg("multi_transform", null_label);
    else gv_error(GV_ERR_ARG, "multi_transform: %s", why);
    if (tx) free(tx->kids), free(tx);
    part_cfg_free(c);
    for (size_t i = 0; txs && i < n; i++) gv_transform_free(txs[i].tx);
    gv_tree_free(labels);
    return NULL;
}

gv_transform *gv_multi_transform(const gv_labelled_transform *txs, size_t n,
                                 gv_tree *param_labels) {
    return make_partition(txs, n, param_labels, NULL, NULL);
}

gv_transform *gv_multi_transform_fn(const gv_labelled_transform *txs, size_t n,
                                    gv_param_labels_fn fn, void *userdata) {
    if (!fn) {
        for (size_t i = 0; txs && i < n; i++) gv_transform_free(txs[i].tx);
        gv_error(GV_ERR_ARG, "multi_transform: the param_labels function is NULL");
        return NULL;
    }
    return make_partition(txs, n, NULL, fn, userdata);
}

/* ---- apply_if_finite ---- */

static const char *const AIF_KEYS[4] = {"inner_state", "last_finite", "notfinite_count",
                                        "total_notfinite"};
#define AIF_STATE(a, b, c, d) gv_tx_dict_take(4, AIF_KEYS, (gv_tree *[]){a, b, c, d})

static gv_tree *aif_init(const gv_transform *tx, gv_graph *g, const gv_tree *params) {
    return AIF_STATE(gv_tx_init_inner(tx->kids[0], g, params), gv_tx_value_leaf(gv_scalar(g, GV_BOOL, 1.0)),
                 gv_tx_value_leaf(gv_tx_zero_count(g)), gv_tx_value_leaf(gv_tx_zero_count(g)));
}

static gv_status aif_update(const gv_transform *tx, gv_graph *g, const gv_tree *updates,
                            const gv_tree *state, const gv_tree *params, gv_tree **nu,
                            gv_tree **ns) {
    const gv_tree *inner_s = gv_tx_field(tx, g, state, "inner_state");
    const gv_tree *nf = inner_s ? gv_tx_field(tx, g, state, "notfinite_count") : NULL;
    const gv_tree *tot = nf ? gv_tx_field(tx, g, state, "total_notfinite") : NULL;
    if (!tot || !gv_tx_field(tx, g, state, "last_finite")) return gv_last_status();
    gv_value nfc = gv_tree_leaf_value(nf), totc = gv_tree_leaf_value(tot);
    if (!gv_value_ok(nfc) || gv_value_dtype(nfc) != GV_I32 || !gv_value_ok(totc) ||
        gv_value_dtype(totc) != GV_I32)
        return gv_tx_fail(tx, g, GV_ERR_DTYPE, "state.notfinite_count and state.total_notfinite "
                          "must be int32 scalars");
    gv_value *u = NULL, *iu = NULL, *so = NULL, *sn = NULL;
    size_t n, niu, nso, nsn;
    gv_tree *inner_u = NULL, *inner_state = NULL, *out = NULL, *s = NULL;
    gv_status st = gv_tx_leaves(updates, &u, &n, NULL);
    if (st != GV_OK) return gv_tx_fail(tx, g, st, "updates: %s", gv_last_error());
    /* isfinite = all leaves all finite */
    gv_value fin = gv_scalar(g, GV_BOOL, 1.0);
    for (size_t i = 0; i < n; i++) {
        gv_value f = gv_tx_isfinite(u[i]);
        gv_value all = gv_eq(gv_min(gv_cast(f, GV_I32), NULL, 0, false), gv_scalar(g, GV_I32, 1.0));
        fin = i ? gv_select(fin, all, fin) : all;
    }
    gv_value zero = gv_tx_zero_count(g);
    gv_value nfc2 = gv_select(fin, zero, gv_tx_safe_increment(nfc));
    gv_value apply = gv_select(fin, fin, gv_gt(nfc2, gv_scalar(g, GV_I32, (double)tx->hp_int)));
    st = gv_tx_update_inner(tx->kids[0], g, updates, inner_s, params, &inner_u, &inner_state);
    if (st == GV_OK) st = gv_tx_leaves(inner_u, &iu, &niu, NULL);
    if (st == GV_OK) st = gv_tx_leaves(inner_s, &so, &nso, NULL);
    if (st == GV_OK) st = gv_tx_leaves(inner_state, &sn, &nsn, NULL);
    if (st == GV_OK && (nso != nsn || niu != n || !gv_tree_structure_equal(inner_s, inner_state)))
        st = gv_tx_fail(tx, g, GV_ERR_STRUCTURE,
                        "the inner transformation changed the structure of its state or updates");
    if (st == GV_OK) {
        /* lax.cond(apply, inner update, (zeros_like(updates), inner_state)) */
        for (size_t i = 0; i < n; i++) iu[i] = gv_select(apply, iu[i], gv_zeros_like(u[i]));
        for (size_t i = 0; i < nso; i++) sn[i] = gv_select(apply, sn[i], so[i]);
        out = gv_tx_rebuild(updates, iu);
        s = AIF_STATE(gv_tx_rebuild(inner_s, sn), gv_tx_value_leaf(fin), gv_tx_value_leaf(nfc2),
                  gv_tx_value_leaf(gv_select(fin, totc, gv_tx_safe_increment(totc))));
    }
    free(u), free(iu), free(so), free(sn);
    gv_tree_free(inner_u), gv_tree_free(inner_state);
    if (st != GV_OK) {
        gv_tree_free(out), gv_tree_free(s);
        return st;
    }
    return gv_tx_finish(out, s, nu, ns);
}

gv_transform *gv_apply_if_finite(gv_transform *inner, int32_t max_consecutive_errors) {
    if (!inner || max_consecutive_errors < 0) {
        if (!inner) gv_tx_null_arg("apply_if_finite", "inner");
        else gv_error(GV_ERR_ARG, "apply_if_finite: max_consecutive_errors is %d; it must be >= 0",
                      (int)max_consecutive_errors);
        gv_transform_free(inner);
        return NULL;
    }
    gv_transform *tx = gv_tx_new("apply_if_finite", aif_init, aif_update);
    if (tx) tx->kids = malloc(sizeof *tx->kids);
    if (!tx || !tx->kids) {
        free(tx);
        gv_transform_free(inner);
        gv_error(GV_ERR_NOMEM, "apply_if_finite: out of memory");
        return NULL;
    }
    tx->kids[0] = inner, tx->nkids = 1;
    tx->hp_int = max_consecutive_errors;
    return tx;
}
