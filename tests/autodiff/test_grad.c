/* value_and_grad against central finite differences in float64, grad of
 * grad (a Hessian-vector product), aux outputs, and error paths. */
#include <math.h>
#include <string.h>

#include "testutil.h"

/* loss(params, x) = mean(tanh(x @ w1 + b1) @ w2)^2 ... a small f64 MLP */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "1/x");
    gv_value w1 = gv_tree_get_value(in, "0/w1"), b1 = gv_tree_get_value(in, "0/b1");
    gv_value w2 = gv_tree_get_value(in, "0/w2");
    gv_value h = gv_tanh(gv_add(gv_matmul(x, w1), b1));
    gv_value y = gv_matmul(h, w2);
    gv_value loss = gv_mean(gv_square(gv_sub(y, gv_full_like(y, 0.5))), NULL, 0, false);
    gv_tree *out = gv_tree_new_tuple();
    gv_tree_append(out, gv_tree_new_value_leaf(loss));
    gv_tree_append(out, gv_tree_new_value_leaf(gv_max(y, NULL, 0, false)));
    return out;
}

static gv_tensor *randn(gv_dtype dt, int rank, const int64_t *shape, uint32_t seed) {
    gv_tensor *t = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(seed), rank, shape));
    gv_tensor *c = GVT_NN(gv_tensor_cast(t, dt));
    gv_tensor_free(t);
    return c;
}

static gv_tree *inputs(gv_dtype dt) {
    gv_tree *in = gv_tree_new_tuple();
    gv_tree *params = gv_tree_new_dict(), *batch = gv_tree_new_dict();
    gv_tensor *w1 = randn(dt, GV_DIMS(3, 4), 1), *b1 = randn(dt, GV_DIMS(4), 2),
              *w2 = randn(dt, GV_DIMS(4, 2), 3), *x = randn(dt, GV_DIMS(5, 3), 4);
    GVT_OK(gv_tree_insert_tensor(params, "w1", w1));
    GVT_OK(gv_tree_insert_tensor(params, "b1", b1));
    GVT_OK(gv_tree_insert_tensor(params, "w2", w2));
    GVT_OK(gv_tree_insert_tensor(batch, "x", x));
    GVT_OK(gv_tree_append(in, params));
    GVT_OK(gv_tree_append(in, batch));
    gv_tensor_free(w1), gv_tensor_free(b1), gv_tensor_free(w2), gv_tensor_free(x);
    return in;
}

static double eval_loss(gv_fn *f, gv_tree *in) {
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(f, in, &out));
    double v;
    GVT_OK(gv_tensor_get(gv_tree_get_tensor(out, "0"), NULL, &v));
    gv_tree_free(out);
    return v;
}

Test(grad, value_and_grad_matches_finite_differences_f64) {
    gv_tree *in = inputs(GV_F64);
    gv_fn *f = GVT_NN(gv_trace(loss_fn, NULL, in));
    gv_fn *vg = GVT_NN(gv_value_and_grad(f, 0, true));
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(vg, in, &out));
    double loss, aux;
    GVT_OK(gv_tensor_get(GVT_NN(gv_tree_get_tensor(out, "0/0")), NULL, &loss));
    GVT_OK(gv_tensor_get(GVT_NN(gv_tree_get_tensor(out, "0/1")), NULL, &aux));
    cr_assert_float_eq(loss, eval_loss(f, in), 1e-15);
    const char *names[3] = {"w1", "b1", "w2"};
    for (int p = 0; p < 3; p++) {
        char path[32], gpath[32];
        snprintf(path, sizeof path, "0/%s", names[p]);
        snprintf(gpath, sizeof gpath, "1/%s", names[p]);
        gv_tensor *w = GVT_NN(gv_tree_get_tensor(in, path));
        gv_tensor *gw = GVT_NN(gv_tree_get_tensor(out, gpath));
        cr_assert(gv_tensor_same_shape(w, gw));
        double *pw = gv_tensor_data(w);
        for (int64_t i = 0; i < gv_tensor_size(w); i++) {
            const double h = 1e-6, orig = pw[i];
            pw[i] = orig + h;
            double up = eval_loss(f, in);
            pw[i] = orig - h;
            double down = eval_loss(f, in);
            pw[i] = orig;
            double fd = (up - down) / (2 * h), got;
            GVT_OK(gv_tensor_get_flat(gw, i, &got));
            cr_expect(fabs(got - fd) <= 1e-7 + 1e-6 * fabs(fd), "%s[%lld]: grad %.12g vs fd %.12g",
                      names[p], (long long)i, got, fd);
        }
    }
    gv_tree_free(out);
    gv_fn_free(vg);
    gv_fn_free(f);
    gv_tree_free(in);
}

/* grad of grad: hvp(params, batch, v) = grad_params <grad_params loss, v>,
 * checked against central differences of the gradient along v. */
/* Copies of inputs `in` with the params (child 0: w1, b1, w2) moved by
 * +e*dir and -e*dir: the two points of a central finite difference. */
static void perturb(const gv_tree *in, const gv_tree *dir, double e, gv_tree **plus,
                    gv_tree **minus) {
    *plus = GVT_NN(gv_tree_copy(in)), *minus = GVT_NN(gv_tree_copy(in));
    const char *names[3] = {"w1", "b1", "w2"};
    for (int p = 0; p < 3; p++) {
        char path[16];
        snprintf(path, sizeof path, "0/%s", names[p]);
        double *pp = gv_tensor_data(gv_tree_get_tensor(*plus, path));
        double *pm = gv_tensor_data(gv_tree_get_tensor(*minus, path));
        const gv_tensor *d = gv_tree_get_tensor(dir, names[p]);
        const double *pd = gv_tensor_data_const(d);
        for (int64_t j = 0; j < gv_tensor_size(d); j++) pp[j] += e * pd[j], pm[j] -= e * pd[j];
    }
}

static gv_tree *scalar_loss(gv_graph *g, const gv_tree *in, void *ud) {
    gv_tree *t = loss_fn(g, in, ud);
    gv_tree *loss = gv_tree_pop(t, "0");
    gv_tree_free(t);
    return loss;
}

static gv_tree *grad_dot_v(gv_graph *g, const gv_tree *in, void *ud) {
    const gv_fn *grad = ud;
    gv_tree *args = gv_tree_new_tuple();
    gv_tree_append(args, gv_tree_clone(gv_tree_get(in, "0")));
    gv_tree_append(args, gv_tree_clone(gv_tree_get(in, "1")));
    gv_tree *gr = gv_fn_call(g, grad, args);
    gv_tree_free(args);
    if (!gr) return NULL;
    const char *names[3] = {"w1", "b1", "w2"};
    gv_value total = gv_scalar(g, GV_F64, 0.0);
    for (int p = 0; p < 3; p++) {
        char vp[16];
        snprintf(vp, sizeof vp, "2/%s", names[p]);
        gv_value prod = gv_mul(gv_tree_get_value(gr, names[p]), gv_tree_get_value(in, vp));
        total = gv_add(total, gv_sum(prod, NULL, 0, false));
    }
    gv_tree_free(gr);
    return gv_tree_new_value_leaf(total);
}

Test(grad, grad_of_grad_hessian_vector_product) {
    gv_tree *in = inputs(GV_F64);
    gv_fn *f = GVT_NN(gv_trace(scalar_loss, NULL, in));
    gv_fn *gf = GVT_NN(gv_grad(f, 0, false));
    /* (params, batch, v): v a direction shaped like params */
    gv_tree *in3 = GVT_NN(gv_tree_clone(in));
    gv_tree *v = GVT_NN(gv_tree_copy(gv_tree_get(in, "0")));
    gv_tensor **vl;
    size_t nv;
    GVT_OK(gv_tree_flatten(v, &vl, &nv));
    for (size_t i = 0; i < nv; i++) { /* a fixed, non-trivial direction */
        double *p = gv_tensor_data(vl[i]);
        for (int64_t j = 0; j < gv_tensor_size(vl[i]); j++) p[j] = sin(1.0 + (double)(7 * i + j));
    }
    free(vl);
    GVT_OK(gv_tree_append(in3, v));
    gv_fn *h = GVT_NN(gv_trace(grad_dot_v, gf, in3));
    gv_fn *hvp = GVT_NN(gv_grad(h, 0, false));
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(hvp, in3, &out));
    /* finite differences: (grad(w + e v) - grad(w - e v)) / 2e */
    const double e = 1e-5;
    gv_tree *plus, *minus;
    const char *names[3] = {"w1", "b1", "w2"};
    perturb(in, v, e, &plus, &minus);
    gv_tree *gp = NULL, *gm = NULL;
    GVT_OK(gv_fn_eval(gf, plus, &gp));
    GVT_OK(gv_fn_eval(gf, minus, &gm));
    int checked = 0;
    for (int p = 0; p < 3; p++) {
        gv_tensor *a = gv_tree_get_tensor(gp, names[p]), *b = gv_tree_get_tensor(gm, names[p]);
        gv_tensor *got = GVT_NN(gv_tree_get_tensor(out, names[p]));
        for (int64_t j = 0; j < gv_tensor_size(a); j++, checked++) {
            double x, y, z;
            gv_tensor_get_flat(a, j, &x), gv_tensor_get_flat(b, j, &y);
            gv_tensor_get_flat(got, j, &z);
            double fd = (x - y) / (2 * e);
            cr_expect(fabs(z - fd) <= 1e-6 + 1e-5 * fabs(fd), "%s[%lld]: hvp %.10g vs fd %.10g",
                      names[p], (long long)j, z, fd);
        }
    }
    cr_assert_eq(checked, 12 + 4 + 8);
    gv_tree_free(gp), gv_tree_free(gm), gv_tree_free(plus), gv_tree_free(minus);
    gv_tree_free(out);
    gv_fn_free(hvp), gv_fn_free(h), gv_fn_free(gf), gv_fn_free(f);
    gv_tree_free(in3), gv_tree_free(in);
}

Test(grad, errors) {
    gv_tree *in = inputs(GV_F32);
    gv_fn *f = GVT_NN(gv_trace(loss_fn, NULL, in));
    GVT_NULL(gv_value_and_grad(f, 0, false), GV_ERR_SHAPE, "the loss must be a float scalar");
    GVT_NULL(gv_value_and_grad(f, 5, true), GV_ERR_ARG, "argnum 5: the inputs have 2");
    GVT_NULL(gv_value_and_grad_path(f, "0/nope", true), GV_ERR_NOT_FOUND, "nope");
    gv_fn_free(f);
    gv_tree_free(in);
}

/* y = tanh(x @ w1 + b1) @ w2: vector valued */
static gv_tree *vec_fn(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "1/x");
    gv_value h = gv_tanh(gv_add(gv_matmul(x, gv_tree_get_value(in, "0/w1")),
                                gv_tree_get_value(in, "0/b1")));
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "y", gv_matmul(h, gv_tree_get_value(in, "0/w2")));
    gv_tree_insert_value(out, "n", gv_argmax(h, -1, false)); /* an integer output */
    return out;
}

Test(grad, jvp_matches_finite_differences_and_vjp_is_its_transpose) {
    gv_tree *in = inputs(GV_F64);
    gv_fn *f = GVT_NN(gv_trace(vec_fn, NULL, in));
    gv_fn *jvp = GVT_NN(gv_jvp(f, "0"));
    gv_fn *vjp = GVT_NN(gv_vjp(f, "0"));
    /* tangent t and cotangent u */
    gv_tree *t = GVT_NN(gv_tree_copy(gv_tree_get(in, "0")));
    gv_tensor **tl;
    size_t nt;
    GVT_OK(gv_tree_flatten(t, &tl, &nt));
    for (size_t i = 0; i < nt; i++) {
        double *p = gv_tensor_data(tl[i]);
        for (int64_t j = 0; j < gv_tensor_size(tl[i]); j++) p[j] = cos(0.3 + (double)(5 * i + j));
    }
    free(tl);
    gv_tree *jin = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(jin, gv_tree_clone(in)));
    GVT_OK(gv_tree_append(jin, gv_tree_clone(t)));
    gv_tree *jout = NULL;
    GVT_OK(gv_fn_eval(jvp, jin, &jout));
    gv_tensor *jy = GVT_NN(gv_tree_get_tensor(jout, "1/y"));
    /* finite differences of y along t */
    const double e = 1e-6;
    gv_tree *plus, *minus;
    const char *names[3] = {"w1", "b1", "w2"};
    perturb(in, t, e, &plus, &minus);
    gv_tree *yp = NULL, *ym = NULL;
    GVT_OK(gv_fn_eval(f, plus, &yp));
    GVT_OK(gv_fn_eval(f, minus, &ym));
    gv_tensor *a = gv_tree_get_tensor(yp, "y"), *b = gv_tree_get_tensor(ym, "y");
    cr_assert_eq(gv_tensor_size(jy), 10);
    for (int64_t j = 0; j < 10; j++) {
        double x, y, z;
        gv_tensor_get_flat(a, j, &x), gv_tensor_get_flat(b, j, &y), gv_tensor_get_flat(jy, j, &z);
        double fd = (x - y) / (2 * e);
        cr_expect(fabs(z - fd) <= 1e-7 + 1e-6 * fabs(fd), "jvp[%lld] %.10g vs fd %.10g",
                  (long long)j, z, fd);
    }
    /* <u, J t> == <J^T u, t> for u = ones over y */
    gv_tree *uin = gv_tree_new_tuple();
    GVT_OK(gv_tree_append(uin, gv_tree_clone(in)));
    gv_tree *u = gv_tree_new_dict();
    gv_tensor *ones = GVT_NN(gv_tensor_ones(GV_F64, GV_DIMS(5, 2)));
    gv_tensor *nz = GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(5)));
    GVT_OK(gv_tree_insert_tensor(u, "y", ones));
    GVT_OK(gv_tree_insert_tensor(u, "n", nz));
    GVT_OK(gv_tree_append(uin, u));
    gv_tree *vout = NULL;
    GVT_OK(gv_fn_eval(vjp, uin, &vout));
    double lhs = 0, rhs = 0;
    for (int64_t j = 0; j < 10; j++) {
        double z;
        gv_tensor_get_flat(jy, j, &z);
        lhs += z;
    }
    for (int p = 0; p < 3; p++) {
        char gp[16];
        snprintf(gp, sizeof gp, "1/%s", names[p]);
        gv_tensor *gt = GVT_NN(gv_tree_get_tensor(vout, gp)), *tt = gv_tree_get_tensor(t, names[p]);
        for (int64_t j = 0; j < gv_tensor_size(gt); j++) {
            double x, y;
            gv_tensor_get_flat(gt, j, &x), gv_tensor_get_flat(tt, j, &y);
            rhs += x * y;
        }
    }
    cr_assert_float_eq(lhs, rhs, 1e-10 * (1 + fabs(lhs)), "<u, Jt> %.15g vs <J^T u, t> %.15g", lhs, rhs);
    gv_tensor_free(ones), gv_tensor_free(nz);
    gv_tree_free(vout), gv_tree_free(uin), gv_tree_free(yp), gv_tree_free(ym);
    gv_tree_free(plus), gv_tree_free(minus), gv_tree_free(jout), gv_tree_free(jin), gv_tree_free(t);
    gv_fn_free(vjp), gv_fn_free(jvp), gv_fn_free(f), gv_tree_free(in);
}
