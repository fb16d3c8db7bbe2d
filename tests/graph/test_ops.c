/* Every public op (ops.h, random ones aside) against PyTorch: forward values
 * and gradients of sum(out * R) from tests/golden/ops_golden.json, written by
 * tests/golden/make_ops_golden.py (float64 references following JAX's
 * conventions, tolerances justified there). Each case is traced, evaluated
 * with the reference kernels (gv_fn_eval) and differentiated
 * (gv_value_and_grad, gv_grad). Then the trace errors of each op family. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define MAX_IO 8

/* ---- JSON helpers ---- */

static json_object *jget(json_object *o, const char *key) {
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static bool jnull(json_object *o, const char *key) {
    json_object *v = jget(o, key);
    return !v || json_object_get_type(v) == json_type_null;
}

static int64_t jint(json_object *o, const char *key) {
    json_object *v = jget(o, key);
    cr_assert_not_null(v, "missing param '%s'", key);
    return json_object_get_int64(v);
}

static double jdbl(json_object *o, const char *key) {
    json_object *v = jget(o, key);
    cr_assert_not_null(v, "missing param '%s'", key);
    return json_object_get_double(v);
}

/* An integer list param into buf (returns its length; -1 if null). */
static int jints(json_object *o, const char *key, int64_t *buf, int cap) {
    if (jnull(o, key)) return -1;
    json_object *a = jget(o, key);
    int n = (int)json_object_array_length(a);
    cr_assert_leq(n, cap);
    for (int i = 0; i < n; i++) buf[i] = json_object_get_int64(json_object_array_get_idx(a, i));
    return n;
}

static gv_dtype jdtype(json_object *o, const char *key) {
    gv_dtype dt;
    GVT_OK(gv_dtype_from_name(json_object_get_string(jget(o, key)), &dt));
    return dt;
}

/* {"dtype", "shape", "data"}: floats as hex bit patterns, others as numbers. */
static gv_tensor *tensor_from_json(json_object *t) {
    gv_dtype dt = jdtype(t, "dtype");
    int64_t shape[16];
    int rank = jints(t, "shape", shape, 16);
    gv_tensor *x = GVT_NN(gv_tensor_zeros(dt, rank, shape));
    json_object *data = jget(t, "data");
    int64_t n = gv_tensor_size(x);
    cr_assert_eq((int64_t)json_object_array_length(data), n);
    void *p = gv_tensor_data(x);
    for (int64_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(data, (size_t)i);
        if (dt == GV_F32) {
            uint32_t bits = (uint32_t)strtoul(json_object_get_string(e), NULL, 16);
            memcpy((float *)p + i, &bits, 4);
        } else if (dt == GV_F64) {
            uint64_t bits = strtoull(json_object_get_string(e), NULL, 16);
            memcpy((double *)p + i, &bits, 8);
        } else if (dt == GV_I64) {
            ((int64_t *)p)[i] = json_object_get_int64(e);
        } else if (dt == GV_U64) {
            ((uint64_t *)p)[i] = json_object_get_uint64(e);
        } else {
            GVT_OK(gv_tensor_set_flat(x, i, (double)json_object_get_int64(e)));
        }
    }
    return x;
}

/* ---- the op under test ---- */

typedef struct gcase {
    json_object *c;
    const char *name, *op;
    json_object *params;
    int nin, nout;
    bool is_float[MAX_IO];
} gcase;

/* Apply the case's op to x; writes the outputs, returns how many. */
static int apply(gv_graph *g, const gcase *k, const gv_value *x, gv_value *out) {
    const char *op = k->op;
    json_object *p = k->params;
    int64_t l1[16], l2[16], l3[16];
    int ax[16];
#define IS(name) (strcmp(op, name) == 0)
#define AXES(key) (jints(p, key, l1, 16))
    /* unary */
    static const struct { const char *name; gv_value (*fn)(gv_value); } un[] = {
        {"neg", gv_neg}, {"abs", gv_abs}, {"sign", gv_sign}, {"exp", gv_exp},
        {"log", gv_log}, {"log1p", gv_log1p}, {"expm1", gv_expm1}, {"sqrt", gv_sqrt},
        {"rsqrt", gv_rsqrt}, {"square", gv_square}, {"tanh", gv_tanh},
        {"sigmoid", gv_sigmoid}, {"erf", gv_erf}, {"relu", gv_relu}, {"silu", gv_silu},
        {"softplus", gv_softplus}, {"stop_gradient", gv_stop_gradient},
        {"zeros_like", gv_zeros_like}, {"ones_like", gv_ones_like}};
    for (size_t i = 0; i < sizeof un / sizeof un[0]; i++)
        if (IS(un[i].name)) return out[0] = un[i].fn(x[0]), 1;
    static const struct { const char *name; gv_value (*fn)(gv_value, gv_value); } bin[] = {
        {"add", gv_add}, {"sub", gv_sub}, {"mul", gv_mul}, {"div", gv_div}, {"pow", gv_pow},
        {"maximum", gv_maximum}, {"minimum", gv_minimum}, {"eq", gv_eq}, {"ne", gv_ne},
        {"lt", gv_lt}, {"le", gv_le}, {"gt", gv_gt}, {"ge", gv_ge}, {"matmul", gv_matmul},
        {"take_along_axis", NULL}, {"take", NULL}};
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++)
        if (IS(bin[i].name) && bin[i].fn) return out[0] = bin[i].fn(x[0], x[1]), 1;
    if (IS("gelu")) return out[0] = gv_gelu(x[0], json_object_get_boolean(jget(p, "approximate"))), 1;
    if (IS("cast")) return out[0] = gv_cast(x[0], jdtype(p, "dtype")), 1;
    if (IS("select")) return out[0] = gv_select(x[0], x[1], x[2]), 1;
    if (IS("add_scalar")) return out[0] = gv_add_scalar(x[0], jdbl(p, "scalar")), 1;
    if (IS("mul_scalar")) return out[0] = gv_mul_scalar(x[0], jdbl(p, "scalar")), 1;
    if (IS("pow_scalar")) return out[0] = gv_pow_scalar(x[0], jdbl(p, "scalar")), 1;
    /* creation */
    if (IS("full")) {
        int r = jints(p, "shape", l1, 16);
        return out[0] = gv_full(g, jdtype(p, "dtype"), r, l1, jdbl(p, "value")), 1;
    }
    if (IS("scalar")) return out[0] = gv_scalar(g, jdtype(p, "dtype"), jdbl(p, "value")), 1;
    if (IS("full_like")) return out[0] = gv_full_like(x[0], jdbl(p, "value")), 1;
    if (IS("iota")) {
        int r = jints(p, "shape", l1, 16);
        return out[0] = gv_iota(g, jdtype(p, "dtype"), r, l1, (int)jint(p, "axis")), 1;
    }
    if (IS("constant")) {
        gv_tensor *t = tensor_from_json(jget(p, "tensor"));
        out[0] = gv_constant(g, t);
        gv_tensor_free(t);
        return 1;
    }
    /* reductions */
    if (IS("sum") || IS("mean") || IS("max") || IS("min") || IS("logsumexp")) {
        int n = AXES("axes");
        for (int i = 0; i < n; i++) ax[i] = (int)l1[i];
        const int *axes = n < 0 ? NULL : ax;
        bool keep = json_object_get_boolean(jget(p, "keepdims"));
        gv_value (*fn)(gv_value, const int *, int, bool) =
            IS("sum") ? gv_sum : IS("mean") ? gv_mean : IS("max") ? gv_max
            : IS("min") ? gv_min : gv_logsumexp;
        return out[0] = fn(x[0], axes, n < 0 ? 0 : n, keep), 1;
    }
    if (IS("argmax"))
        return out[0] = gv_argmax(x[0], (int)jint(p, "axis"),
                                  json_object_get_boolean(jget(p, "keepdims"))), 1;
    if (IS("softmax")) return out[0] = gv_softmax(x[0], (int)jint(p, "axis")), 1;
    if (IS("log_softmax")) return out[0] = gv_log_softmax(x[0], (int)jint(p, "axis")), 1;
    /* shapes */
    if (IS("reshape")) {
        int r = jints(p, "shape", l1, 16);
        return out[0] = gv_reshape(x[0], r, l1), 1;
    }
    if (IS("transpose")) {
        int n = AXES("perm");
        for (int i = 0; i < n; i++) ax[i] = (int)l1[i];
        return out[0] = gv_transpose(x[0], n < 0 ? NULL : ax), 1;
    }
    if (IS("broadcast_to")) {
        int r = jints(p, "shape", l1, 16);
        return out[0] = gv_broadcast_to(x[0], r, l1), 1;
    }
    if (IS("expand_dims")) return out[0] = gv_expand_dims(x[0], (int)jint(p, "axis")), 1;
    if (IS("squeeze")) {
        int n = AXES("axes");
        for (int i = 0; i < n; i++) ax[i] = (int)l1[i];
        return out[0] = gv_squeeze(x[0], n < 0 ? NULL : ax, n < 0 ? 0 : n), 1;
    }
    if (IS("slice")) {
        jints(p, "start", l1, 16);
        jints(p, "limit", l2, 16);
        int ns = jints(p, "strides", l3, 16);
        return out[0] = gv_slice(x[0], l1, l2, ns < 0 ? NULL : l3), 1;
    }
    if (IS("slice_axis"))
        return out[0] = gv_slice_axis(x[0], (int)jint(p, "axis"), jint(p, "start"),
                                      jint(p, "limit")), 1;
    if (IS("concatenate")) return out[0] = gv_concatenate(x, k->nin, (int)jint(p, "axis")), 1;
    if (IS("split_equal")) {
        int n = (int)jint(p, "n");
        cr_assert_leq(n, MAX_IO);
        gv_split_equal(x[0], n, (int)jint(p, "axis"), out);
        return n;
    }
    if (IS("pad")) {
        jints(p, "lo", l1, 16);
        jints(p, "hi", l2, 16);
        return out[0] = gv_pad(x[0], l1, l2, jdbl(p, "value")), 1;
    }
    /* gather */
    if (IS("take")) return out[0] = gv_take(x[0], x[1], (int)jint(p, "axis")), 1;
    if (IS("take_along_axis"))
        return out[0] = gv_take_along_axis(x[0], x[1], (int)jint(p, "axis")), 1;
    if (IS("one_hot"))
        return out[0] = gv_one_hot(x[0], jint(p, "n"), jdtype(p, "dtype")), 1;
#undef IS
#undef AXES
    gv_graph_fail(g, GV_ERR_UNSUPPORTED, "test_ops: unknown op '%s'", op);
    return 0;
}

static void input_path(const gcase *k, int i, char *buf, size_t n) {
    snprintf(buf, n, "%d/x%d", k->is_float[i] ? 0 : 1, i);
}

static int case_outputs(gv_graph *g, const gv_tree *in, const gcase *k, gv_value *out) {
    gv_value x[MAX_IO];
    for (int i = 0; i < k->nin; i++) {
        char path[16];
        input_path(k, i, path, sizeof path);
        x[i] = gv_tree_get_value(in, path);
    }
    return apply(g, k, x, out);
}

/* f(inputs) = the op's outputs, as a tuple */
static gv_tree *forward_fn(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value out[MAX_IO];
    int n = case_outputs(g, in, ud, out);
    gv_tree *t = gv_tree_new_tuple();
    for (int i = 0; i < n; i++) gv_tree_append(t, gv_tree_new_value_leaf(out[i]));
    return t;
}

/* loss(inputs) = sum_k sum(out_k * R_k) */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value out[MAX_IO];
    int n = case_outputs(g, in, ud, out);
    gv_value loss = {0};
    for (int i = 0; i < n; i++) {
        char path[16];
        snprintf(path, sizeof path, "2/%d", i);
        gv_value term = gv_sum(gv_mul(out[i], gv_tree_get_value(in, path)), NULL, 0, false);
        loss = i ? gv_add(loss, term) : term;
    }
    return gv_tree_new_value_leaf(loss);
}

/* ---- comparing ---- */

typedef struct tol {
    double rtol, atol;
} tol;

static tol json_tol(json_object *c, const char *which) {
    json_object *t = jget(jget(c, "tol"), which);
    return (tol){json_object_get_double(json_object_array_get_idx(t, 0)),
                 json_object_get_double(json_object_array_get_idx(t, 1))};
}

/* Elementwise comparison; prints the first few mismatches, returns their count. */
static int compare(const char *cname, const char *what, const gv_tensor *got,
                   const gv_tensor *want, tol t) {
    if (!got) {
        fprintf(stderr, "%s: %s: missing\n", cname, what);
        return 1;
    }
    if (gv_tensor_dtype(got) != gv_tensor_dtype(want) || !gv_tensor_same_shape(got, want)) {
        char *a = gv_tensor_repr(got, NULL), *b = gv_tensor_repr(want, NULL);
        fprintf(stderr, "%s: %s: dtype/shape differ:\n  got  %s\n  want %s\n", cname, what, a, b);
        free(a), free(b);
        return 1;
    }
    int bad = 0;
    bool fl = gv_dtype_is_float(gv_tensor_dtype(want));
    for (int64_t i = 0; i < gv_tensor_size(want); i++) {
        double g, w;
        gv_tensor_get_flat(got, i, &g);
        gv_tensor_get_flat(want, i, &w);
        bool ok;
        if (!fl) {
            /* integers: compare the stored bits (64-bit values exceed double) */
            size_t es = gv_dtype_size(gv_tensor_dtype(want));
            ok = memcmp((const char *)gv_tensor_data_const(got) + i * es,
                        (const char *)gv_tensor_data_const(want) + i * es, es) == 0;
        } else if (isnan(w) || isinf(w)) {
            ok = isnan(w) ? isnan(g) : g == w;
        } else {
            ok = isfinite(g) && fabs(g - w) <= t.atol + t.rtol * fabs(w);
        }
        if (!ok && bad++ < 4)
            fprintf(stderr, "%s: %s[%lld]: got %.9g, want %.9g (diff %.3g, tol %.3g)\n", cname,
                    what, (long long)i, g, w, fabs(g - w), t.atol + t.rtol * fabs(w));
    }
    if (bad > 4) fprintf(stderr, "%s: %s: ... %d mismatches in all\n", cname, what, bad);
    return bad;
}

/* Run one case; returns the number of mismatches (0 = pass). */
static int run_case(json_object *c) {
    gcase k = {.c = c};
    k.name = json_object_get_string(jget(c, "name"));
    k.op = json_object_get_string(jget(c, "op"));
    k.params = jget(c, "params");
    json_object *ins = jget(c, "inputs"), *outs = jget(c, "outs");
    k.nin = (int)json_object_array_length(ins);
    k.nout = (int)json_object_array_length(outs);
    cr_assert_leq(k.nin, MAX_IO);
    gv_tree *in = gv_tree_new_tuple(), *floats = gv_tree_new_dict(), *others = gv_tree_new_dict(),
            *cts = gv_tree_new_tuple();
    for (int i = 0; i < k.nin; i++) {
        gv_tensor *t = tensor_from_json(json_object_array_get_idx(ins, (size_t)i));
        k.is_float[i] = gv_dtype_is_float(gv_tensor_dtype(t));
        char key[16];
        snprintf(key, sizeof key, "x%d", i);
        GVT_OK(gv_tree_insert_tensor(k.is_float[i] ? floats : others, key, t));
        gv_tensor_free(t);
    }
    json_object *jcts = jget(c, "cts");
    for (int i = 0; jcts && i < (int)json_object_array_length(jcts); i++) {
        gv_tensor *t = tensor_from_json(json_object_array_get_idx(jcts, (size_t)i));
        GVT_OK(gv_tree_append_tensor(cts, t));
        gv_tensor_free(t);
    }
    GVT_OK(gv_tree_append(in, floats));
    GVT_OK(gv_tree_append(in, others));
    GVT_OK(gv_tree_append(in, cts));

    int bad = 0;
    gv_fn *f = gv_trace(forward_fn, &k, in);
    if (!f) {
        fprintf(stderr, "%s: trace failed: %s\n", k.name, gv_last_error());
        gv_tree_free(in);
        return 1;
    }
    gv_tree *out = NULL;
    if (gv_fn_eval(f, in, &out) != GV_OK) {
        fprintf(stderr, "%s: eval failed: %s\n", k.name, gv_last_error());
        bad++;
    } else {
        tol t = json_tol(c, "fwd");
        for (int i = 0; i < k.nout; i++) {
            char path[16], what[16];
            snprintf(path, sizeof path, "%d", i);
            snprintf(what, sizeof what, "out%d", i);
            gv_tensor *want = tensor_from_json(json_object_array_get_idx(outs, (size_t)i));
            bad += compare(k.name, what, gv_tree_get_tensor(out, path), want, t);
            gv_tensor_free(want);
        }
    }
    gv_tree_free(out);
    gv_fn_free(f);

    json_object *grads = jget(c, "grads");
    if (grads) {
        gv_fn *lf = GVT_NN(gv_trace(loss_fn, &k, in));
        gv_fn *vg = gv_value_and_grad(lf, 0, false), *gr = gv_grad(lf, 0, false);
        gv_tree *vo = NULL, *go = NULL;
        if (!vg || !gr || gv_fn_eval(vg, in, &vo) != GV_OK || gv_fn_eval(gr, in, &go) != GV_OK) {
            fprintf(stderr, "%s: gradient failed: %s\n", k.name, gv_last_error());
            bad++;
        } else {
            tol t = json_tol(c, "grad");
            for (int i = 0; i < k.nin; i++) {
                json_object *jg = json_object_array_get_idx(grads, (size_t)i);
                if (!jg || json_object_get_type(jg) == json_type_null) continue;
                char path[24], what[24];
                snprintf(path, sizeof path, "1/x%d", i);
                snprintf(what, sizeof what, "grad x%d", i);
                gv_tensor *want = tensor_from_json(jg);
                gv_tensor *got = gv_tree_get_tensor(vo, path);
                bad += compare(k.name, what, got, want, t);
                /* jax.grad is value_and_grad without the value: the same numbers */
                gv_tensor *got2 = gv_tree_get_tensor(go, path + 2);
                if (got && (!got2 || !gv_tensor_equal(got, got2))) {
                    fprintf(stderr, "%s: gv_grad and gv_value_and_grad differ for x%d\n",
                            k.name, i);
                    bad++;
                }
                gv_tensor_free(want);
            }
            /* the value: sum(out * R), with the forward tolerance carried through */
            uint64_t bits = strtoull(json_object_get_string(jget(c, "loss")), NULL, 16);
            double want_loss, got_loss, bound = 0;
            memcpy(&want_loss, &bits, 8);
            GVT_OK(gv_tensor_get(gv_tree_get_tensor(vo, "0"), NULL, &got_loss));
            tol ft = json_tol(c, "fwd");
            for (int i = 0; i < k.nout; i++) {
                gv_tensor *o = tensor_from_json(json_object_array_get_idx(outs, (size_t)i));
                gv_tensor *r = tensor_from_json(json_object_array_get_idx(jcts, (size_t)i));
                for (int64_t j = 0; j < gv_tensor_size(o); j++) {
                    double ov, rv;
                    gv_tensor_get_flat(o, j, &ov), gv_tensor_get_flat(r, j, &rv);
                    /* the output's error, the product's and the sum's roundings */
                    bound += fabs(rv) * (ft.atol + ft.rtol * fabs(ov)) +
                             (double)(gv_tensor_size(o) + 2) * 0x1p-24 * fabs(ov * rv);
                }
                gv_tensor_free(o), gv_tensor_free(r);
            }
            bool same = isnan(want_loss)   ? isnan(got_loss)
                        : isinf(want_loss) ? got_loss == want_loss
                                           : fabs(got_loss - want_loss) <= bound + 1e-30;
            if (!same) {
                fprintf(stderr, "%s: loss %.9g, want %.9g (tol %.3g)\n", k.name, got_loss,
                        want_loss, bound);
                bad++;
            }
        }
        gv_tree_free(vo), gv_tree_free(go);
        gv_fn_free(vg), gv_fn_free(gr), gv_fn_free(lf);
    }
    gv_tree_free(in);
    return bad;
}

static json_object *golden(void) {
    char *path = gvt_golden_path("ops_golden.json");
    json_object *root = gvt_load_json(path);
    free(path);
    return root;
}

static void run_family(const char *family) {
    json_object *root = golden(), *cases = jget(root, "cases");
    int ncases = 0, nfail = 0;
    const char *first = NULL;
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        if (strcmp(json_object_get_string(jget(c, "family")), family) != 0) continue;
        ncases++;
        if (run_case(c)) {
            nfail++;
            if (!first) first = json_object_get_string(jget(c, "name"));
        }
    }
    cr_expect_gt(ncases, 0, "no '%s' cases in ops_golden.json", family);
    cr_expect_eq(nfail, 0, "%s: %d of %d cases failed (first: %s; details on stderr)", family,
                 nfail, ncases, first ? first : "-");
    json_object_put(root);
}

Test(ops_golden, unary) { run_family("unary"); }
Test(ops_golden, binary) { run_family("binary"); }
Test(ops_golden, creation) { run_family("creation"); }
Test(ops_golden, linalg) { run_family("linalg"); }
Test(ops_golden, reduce) { run_family("reduce"); }
Test(ops_golden, shape) { run_family("shape"); }
Test(ops_golden, gather) { run_family("gather"); }

/* Every public non-random op of ops.h has golden cases. */
Test(ops_golden, covers_every_op) {
    static const char *ops[] = {
        "constant", "full", "scalar", "full_like", "zeros_like", "ones_like", "iota", "neg",
        "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "square", "tanh",
        "sigmoid", "erf", "relu", "gelu", "silu", "softplus", "add", "sub", "mul", "div", "pow",
        "maximum", "minimum", "add_scalar", "mul_scalar", "pow_scalar", "eq", "ne", "lt", "le",
        "gt", "ge", "select", "cast", "stop_gradient", "matmul", "sum", "mean", "max", "min",
        "argmax", "logsumexp", "softmax", "log_softmax", "reshape", "transpose",
        "broadcast_to", "expand_dims", "squeeze", "slice", "slice_axis", "concatenate",
        "split_equal", "pad", "take", "take_along_axis", "one_hot"};
    json_object *root = golden(), *cases = jget(root, "cases");
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        int n = 0;
        for (size_t i = 0; i < json_object_array_length(cases); i++)
            n += strcmp(json_object_get_string(jget(json_object_array_get_idx(cases, i), "op")),
                        ops[o]) == 0;
        cr_expect_gt(n, 0, "op %s has no golden case", ops[o]);
    }
    json_object_put(root);
}

/* ---- trace errors: a bad shape, axis or dtype is a sticky error naming the
 * op and the operands' shapes; the ops after it are no-ops ---- */

typedef gv_value (*bad_op)(gv_graph *g, const gv_tree *in);
typedef struct bad_case {
    bad_op fn;
} bad_case;

static gv_tree *run_bad(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value v = ((const bad_case *)ud)->fn(g, in);
    /* stickiness: more ops on the invalid value change nothing */
    v = gv_exp(gv_add(v, gv_tree_get_value(in, "x")));
    gv_value w = gv_matmul(gv_tree_get_value(in, "x"), gv_tree_get_value(in, "x"));
    cr_expect(!gv_value_ok(w), "an op after the error still produced a value");
    return gv_tree_new_value_leaf(v);
}

static gv_tree *bad_inputs(void) {
    gv_tree *in = gv_tree_new_dict();
    gv_tensor *x = gv_tensor_zeros(GV_F32, GV_DIMS(2, 3)), *y = gv_tensor_zeros(GV_F32, GV_DIMS(3, 4)),
              *i = gv_tensor_zeros(GV_I32, GV_DIMS(2)), *e = gv_tensor_zeros(GV_F32, GV_DIMS(2, 0)),
              *s = gv_tensor_zeros(GV_F32, 0, NULL), *b = gv_tensor_zeros(GV_BOOL, GV_DIMS(2)),
              *v = gv_tensor_zeros(GV_F32, GV_DIMS(4));
    GVT_OK(gv_tree_insert_tensor(in, "x", x));
    GVT_OK(gv_tree_insert_tensor(in, "y", y));
    GVT_OK(gv_tree_insert_tensor(in, "i", i));
    GVT_OK(gv_tree_insert_tensor(in, "e", e));
    GVT_OK(gv_tree_insert_tensor(in, "s", s));
    GVT_OK(gv_tree_insert_tensor(in, "b", b));
    GVT_OK(gv_tree_insert_tensor(in, "v", v));
    gv_tensor_free(x), gv_tensor_free(y), gv_tensor_free(i), gv_tensor_free(e);
    gv_tensor_free(s), gv_tensor_free(b), gv_tensor_free(v);
    return in;
}

#define V(name) gv_tree_get_value(in, name)
/* One bad op per function: BAD(name, expression using g and the inputs in). */
#define BAD(name, ...)                                                   \
    static gv_value name(gv_graph *g, const gv_tree *in) {               \
        (void)g;                                                         \
        return __VA_ARGS__;                                              \
    }

static void expect_trace_error(bad_op fn, gv_status status, const char *needle) {
    gv_tree *in = bad_inputs();
    bad_case bc = {fn};
    GVT_NULL(gv_trace(run_bad, &bc, in), status, needle);
    gv_tree_free(in);
}

BAD(add_shapes, gv_add(V("x"), V("y")))
BAD(mul_dtypes, gv_mul(V("x"), V("i")))
BAD(pow_ints, gv_pow(V("i"), V("i")))
BAD(sub_bools, gv_sub(V("b"), V("b")))
BAD(exp_int, gv_exp(V("i")))
BAD(neg_bool, gv_neg(V("b")))
BAD(select_float_cond, gv_select(V("x"), V("x"), V("x")))
BAD(select_shapes, gv_select(V("b"), V("x"), V("x")))
BAD(select_dtypes, gv_select(V("b"), V("v"), V("i")))
BAD(cast_bad_dtype, gv_cast(V("x"), (gv_dtype)99))
BAD(ge_shapes, gv_ge(V("x"), V("v")))

Test(ops_errors, elementwise) {
    expect_trace_error(add_shapes, GV_ERR_SHAPE, "add: shapes [2,3] and [3,4] do not broadcast");
    expect_trace_error(mul_dtypes, GV_ERR_DTYPE, "mul: dtype float32 vs int32 (shapes [2,3] and [2])");
    expect_trace_error(pow_ints, GV_ERR_DTYPE, "pow: dtype int32 vs int32 (shapes [2] and [2]): needs float");
    expect_trace_error(sub_bools, GV_ERR_DTYPE, "sub: dtype bool vs bool (shapes [2] and [2]): bool operands");
    expect_trace_error(exp_int, GV_ERR_DTYPE, "exp: needs a float operand, got int32[2]");
    expect_trace_error(neg_bool, GV_ERR_DTYPE, "neg: needs a numeric operand, got bool[2]");
    expect_trace_error(select_float_cond, GV_ERR_DTYPE, "select: condition must be bool, got float32");
    expect_trace_error(select_shapes, GV_ERR_SHAPE, "select: shapes [2], [2,3] and [2,3] do not broadcast");
    expect_trace_error(select_dtypes, GV_ERR_DTYPE, "select: dtype float32 vs int32");
    expect_trace_error(cast_bad_dtype, GV_ERR_DTYPE, "cast: invalid dtype 99");
    expect_trace_error(ge_shapes, GV_ERR_SHAPE, "ge: shapes [2,3] and [4] do not broadcast");
}

BAD(matmul_k, gv_matmul(V("x"), V("x")))
BAD(matmul_vec_lhs, gv_matmul(V("v"), V("x")))
BAD(matmul_vec_rhs, gv_matmul(V("x"), V("v")))
BAD(matmul_scalar, gv_matmul(V("s"), V("y")))
BAD(matmul_batch, gv_matmul(gv_broadcast_to(V("x"), GV_DIMS(2, 2, 3)),
                            gv_broadcast_to(V("y"), GV_DIMS(3, 3, 4))))
BAD(matmul_ints, gv_matmul(gv_reshape(V("i"), GV_DIMS(1, 2)), gv_reshape(V("i"), GV_DIMS(2, 1))))

Test(ops_errors, linalg) {
    expect_trace_error(matmul_k, GV_ERR_SHAPE, "matmul: [2,3] x [2,3]: contracting dims differ");
    expect_trace_error(matmul_vec_lhs, GV_ERR_SHAPE, "matmul: [4] x [2,3]: contracting dims differ");
    expect_trace_error(matmul_vec_rhs, GV_ERR_SHAPE, "matmul: [2,3] x [4]: contracting dims differ");
    expect_trace_error(matmul_scalar, GV_ERR_SHAPE, "matmul: [] x [3,4]: scalar operand");
    expect_trace_error(matmul_batch, GV_ERR_SHAPE,
                       "matmul: [2,2,3] x [3,3,4]: batch dims do not broadcast");
    expect_trace_error(matmul_ints, GV_ERR_DTYPE,
                       "matmul: needs two float32 or two float64 operands, got int32 and int32");
}

BAD(sum_axis, gv_sum(V("x"), (int[]){2}, 1, false))
BAD(max_repeated, gv_max(V("x"), (int[]){0, -2}, 2, true))
BAD(min_empty, gv_min(V("e"), (int[]){1}, 1, false))
BAD(sum_bool, gv_sum(V("b"), NULL, 0, false))
BAD(argmax_axis, gv_argmax(V("x"), -3, false))
BAD(argmax_empty, gv_argmax(V("e"), 1, false))
BAD(mean_axis, gv_mean(V("x"), (int[]){5}, 1, false))
BAD(logsumexp_axis, gv_logsumexp(V("x"), (int[]){0, 2}, 2, false))
BAD(softmax_axis, gv_softmax(V("x"), 2))
BAD(log_softmax_axis, gv_log_softmax(V("x"), -3))

Test(ops_errors, reduce) {
    expect_trace_error(sum_axis, GV_ERR_ARG, "reduce_sum: axis 2 is out of range for [2,3]");
    expect_trace_error(max_repeated, GV_ERR_ARG, "reduce_max: axis -2 is repeated for [2,3]");
    expect_trace_error(min_empty, GV_ERR_SHAPE, "reduce_min: reducing the zero-size axis 1 of [2,0]");
    expect_trace_error(sum_bool, GV_ERR_DTYPE, "reduce_sum: bool operand");
    expect_trace_error(argmax_axis, GV_ERR_ARG, "argmax: axis -3 is out of range for [2,3]");
    expect_trace_error(argmax_empty, GV_ERR_SHAPE, "argmax: axis 1 has size 0 in [2,0]");
    expect_trace_error(mean_axis, GV_ERR_ARG, "mean: axis 5 is out of range for [2,3]");
    expect_trace_error(logsumexp_axis, GV_ERR_ARG, "logsumexp: axis 2 is out of range for [2,3]");
    expect_trace_error(softmax_axis, GV_ERR_ARG, "softmax: axis 2 is out of range for [2,3]");
    expect_trace_error(log_softmax_axis, GV_ERR_ARG, "log_softmax: axis -3 is out of range for [2,3]");
}

static gv_value split_first(gv_value x, int n, int axis) {
    gv_value parts[4] = {x, x, x, x};
    gv_split_equal(x, n, axis, parts);
    return parts[0];
}

BAD(reshape_size, gv_reshape(V("x"), GV_DIMS(4, 2)))
BAD(reshape_two_infer, gv_reshape(V("x"), GV_DIMS(-1, -1)))
BAD(reshape_infer, gv_reshape(V("x"), GV_DIMS(4, -1)))
BAD(transpose_perm, gv_transpose(V("x"), (int[]){0, 0}))
BAD(broadcast_shape, gv_broadcast_to(V("x"), GV_DIMS(3, 3)))
BAD(broadcast_negative, gv_broadcast_to(V("x"), GV_DIMS(-2, 3)))
BAD(expand_dims_axis, gv_expand_dims(V("x"), 3))
BAD(squeeze_not_one, gv_squeeze(V("x"), (int[]){1}, 1))
BAD(slice_limit, gv_slice(V("x"), (int64_t[]){0, 0}, (int64_t[]){2, 4}, NULL))
BAD(slice_stride, gv_slice(V("x"), (int64_t[]){1, 0}, (int64_t[]){2, 3}, (int64_t[]){0, 1}))
BAD(slice_axis_axis, gv_slice_axis(V("x"), 2, 0, 1))
BAD(slice_axis_order, gv_slice_axis(V("x"), 1, 2, 1))
BAD(concat_shapes, gv_concatenate((gv_value[]){V("x"), V("y")}, 2, 0))
BAD(concat_one_axis, gv_concatenate((gv_value[]){V("x")}, 1, 2))
BAD(split_unequal, split_first(V("x"), 2, 1))
BAD(split_zero_parts, split_first(V("x"), 0, 1))
BAD(pad_negative, gv_pad(V("x"), (int64_t[]){-2, 0}, (int64_t[]){-1, 0}, 0.0))

Test(ops_errors, shape) {
    expect_trace_error(reshape_size, GV_ERR_SHAPE, "reshape: cannot reshape [2,3] into [4,2]");
    expect_trace_error(reshape_two_infer, GV_ERR_ARG,
                       "reshape: cannot reshape [2,3] into [-1,-1]: only one");
    expect_trace_error(reshape_infer, GV_ERR_SHAPE,
                       "reshape: cannot reshape [2,3] into [4,-1]: cannot infer");
    expect_trace_error(transpose_perm, GV_ERR_ARG,
                       "transpose: [0,0] is not a permutation of the axes of [2,3]");
    expect_trace_error(broadcast_shape, GV_ERR_SHAPE, "broadcast_to: cannot broadcast [2,3] to [3,3]");
    expect_trace_error(broadcast_negative, GV_ERR_ARG, "broadcast_to: dimension 0 is negative");
    expect_trace_error(expand_dims_axis, GV_ERR_ARG, "expand_dims: axis 3 is out of range for [2,3]");
    expect_trace_error(squeeze_not_one, GV_ERR_SHAPE, "squeeze: axis 1 is not of size 1 in [2,3]");
    expect_trace_error(slice_limit, GV_ERR_ARG, "slice: [0:4:1] on axis 1 of [2,3] is out of range");
    expect_trace_error(slice_stride, GV_ERR_ARG, "slice: [1:2:0] on axis 0 of [2,3] is out of range");
    expect_trace_error(slice_axis_axis, GV_ERR_ARG, "slice_axis: axis 2 is out of range for [2,3]");
    expect_trace_error(slice_axis_order, GV_ERR_ARG,
                       "slice: [2:1:1] on axis 1 of [2,3] is out of range");
    expect_trace_error(concat_shapes, GV_ERR_SHAPE,
                       "concatenate: operand 1 [3,4] float32 does not match operand 0 [2,3] "
                       "float32 on the axes other than 0");
    expect_trace_error(concat_one_axis, GV_ERR_ARG,
                       "concatenate: axis 2 is out of range for operand 0 [2,3]");
    expect_trace_error(split_unequal, GV_ERR_SHAPE,
                       "split: axis 1 of [2,3] (size 3) does not split into 2 equal parts");
    expect_trace_error(split_zero_parts, GV_ERR_ARG, "split: 0 parts");
    expect_trace_error(pad_negative, GV_ERR_ARG,
                       "pad: padding (-2, -1) leaves axis 0 of [2,3] with negative size -1");
}

BAD(take_float_idx, gv_take(V("x"), V("v"), 0))
BAD(take_axis, gv_take(V("x"), V("i"), 2))
BAD(take_empty_axis, gv_take(V("e"), V("i"), 1))
BAD(take_along_shapes, gv_take_along_axis(V("x"), V("i"), 1))
BAD(take_along_bool_idx, gv_take_along_axis(V("x"), V("b"), 1))
BAD(one_hot_negative, gv_one_hot(V("i"), -1, GV_F32))

Test(ops_errors, gather) {
    expect_trace_error(take_float_idx, GV_ERR_DTYPE, "take: indices must be integers, got float32");
    expect_trace_error(take_axis, GV_ERR_ARG, "take: axis 2 is out of range for [2,3]");
    expect_trace_error(take_empty_axis, GV_ERR_SHAPE, "take: axis 1 has size 0 in [2,0]");
    expect_trace_error(take_along_shapes, GV_ERR_SHAPE,
                       "take_along_axis: indices [2] do not match x [2,3] along axis 1");
    expect_trace_error(take_along_bool_idx, GV_ERR_DTYPE,
                       "take_along_axis: indices must be integers, got bool");
    expect_trace_error(one_hot_negative, GV_ERR_ARG, "one_hot: int32 labels [2] and -1 classes");
}

BAD(full_negative, gv_full(g, GV_F32, GV_DIMS(2, -3), 1.0))
BAD(full_dtype, gv_full(g, (gv_dtype)42, 0, NULL, 0))
BAD(iota_axis, gv_iota(g, GV_I32, GV_DIMS(2, 3), 2))
BAD(constant_null, gv_constant(g, NULL))

Test(ops_errors, creation) {
    expect_trace_error(full_negative, GV_ERR_ARG, "full: dimension 1 is negative (-3)");
    expect_trace_error(full_dtype, GV_ERR_DTYPE, "full: invalid dtype 42");
    expect_trace_error(iota_axis, GV_ERR_ARG, "iota: axis 2 is out of range for [2,3]");
    expect_trace_error(constant_null, GV_ERR_ARG, "constant: tensor is NULL");
}

/* The scope path prefixes the message, as a module's name would. */
static gv_value scoped_add(gv_graph *g, const gv_tree *in) {
    gv_graph_push_scope(g, "encoder");
    gv_graph_push_scope(g, "Dense_0");
    gv_value r = gv_add(V("x"), V("y"));
    gv_graph_pop_scope(g);
    gv_graph_pop_scope(g);
    return r;
}

Test(ops_errors, scope_prefix) {
    expect_trace_error(scoped_add, GV_ERR_SHAPE, "encoder/Dense_0: add: shapes [2,3] and [3,4]");
}
