/* The VAE of apps/vae against Flax and PyTorch (tests/golden/vae_golden.json,
 * made by make_vae_golden.py): the params Flax's init draws at Flax's paths,
 * the loss and its gradient on one batch, and the compiled train step as
 * value_and_grad + optax.adamw. */
#include <math.h>
#include <string.h>

#include "alloc_count.h"
#include "testutil.h"
#include "vae_model.h"

enum { B = 4 };

static json_object *golden(void) {
    static json_object *g;
    if (!g) {
        char *p = gvt_golden_path("vae_golden.json");
        g = gvt_load_json(p);
        free(p);
    }
    return g;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v;
    cr_assert(json_object_object_get_ex(o, key, &v), "golden: no '%s'", key);
    return v;
}

static vae_cfg cfg;

static gv_tree *init_params(void) {
    vae_cfg_init(&cfg, 32);
    return GVT_NN(vae_init_variables(&cfg, gv_prng_key(0), B));
}

/* The golden batch: x = pixels / 255 (as float32), labels. */
static void batch(gv_tensor **x, gv_tensor **y) {
    *x = gv_tensor_zeros(GV_F32, GV_DIMS(B, 784));
    *y = gv_tensor_zeros(GV_I32, GV_DIMS(B));
    float *px = gv_tensor_data(*x);
    int32_t *py = gv_tensor_data(*y);
    json_object *rows = get(golden(), "x"), *labels = get(golden(), "labels");
    for (int i = 0; i < B; i++) {
        for (int j = 0; j < 784; j++)
            px[i * 784 + j] = (float)(json_object_get_int(json_object_array_get_idx(json_object_array_get_idx(rows, (size_t)i), (size_t)j)) / 255.0);
        py[i] = json_object_get_int(json_object_array_get_idx(labels, (size_t)i));
    }
}

typedef struct compare {
    int bad;
    char first[512];
} compare;

static void note(compare *c, const char *fmt, const char *path, double got, double want) {
    if (!c->bad++) snprintf(c->first, sizeof c->first, fmt, path, got, want);
}

Test(vae_model, init_draws_flax_params_at_flax_paths) {
    gv_tree *vars = init_params();
    json_object *want = get(golden(), "params");
    cr_assert_eq(gv_tree_num_leaves(gv_tree_get(vars, "params")), (size_t)json_object_object_length(want),
                 "18 params: 9 Dense layers");
    cr_assert_eq(gv_tree_size(vars), 491920, "the tutorial's VAE has 491,920 params");
    compare c = {0};
    json_object_object_foreach(want, path, w) {
        char full[256];
        snprintf(full, sizeof full, "params/%s", path);
        gv_tensor *t = GVT_NN(gv_tree_get_tensor(vars, full));
        json_object *shape = get(w, "shape");
        for (int d = 0; d < (int)json_object_array_length(shape); d++)
            cr_assert_eq(gv_tensor_dim(t, d), json_object_get_int64(json_object_array_get_idx(shape, (size_t)d)),
                         "%s: dim %d", path, d);
        const float *p = gv_tensor_data_const(t);
        double sum = 0;
        for (int64_t i = 0; i < gv_tensor_size(t); i++) sum += p[i];
        /* every value bit for bit: the same float32 values summed in the same order */
        if (sum != json_object_get_double(get(w, "sum"))) note(&c, "%s: sum %.17g, Flax %.17g", path, sum, json_object_get_double(get(w, "sum")));
        json_object *idx = get(w, "index"), *vals = get(w, "values");
        for (size_t k = 0; k < json_object_array_length(idx); k++) {
            double v = p[json_object_get_int64(json_object_array_get_idx(idx, k))];
            double e = json_object_get_double(json_object_array_get_idx(vals, k));
            if (v != e) note(&c, "%s: value %.9g, Flax %.9g", path, v, e);
        }
    }
    cr_assert_eq(c.bad, 0, "%d mismatches; first: %s", c.bad, c.first);
    gv_tree_free(vars);
}

/* Runs value_and_grad of the loss on the golden batch: ((loss, (mse, kl)), grads). */
static gv_tree *loss_and_grads(const gv_tree *params, gv_tensor *x, gv_tensor *y) {
    gv_fn *loss = GVT_NN(vae_loss_fn(&cfg, 0.5, params, B));
    gv_fn *vg = GVT_NN(gv_value_and_grad(loss, 0, true));
    gv_plan *plan = GVT_NN(gv_plan_compile(vg, NULL));
    gv_tree *in = gv_tree_new_tuple();
    gv_tree_append(in, gv_tree_clone(params));
    gv_tree_append_tensor(in, x);
    gv_tree_append_tensor(in, y);
    gv_key k = gv_prng_key(7);
    gv_tensor *kt = gv_tensor_from_data(GV_U32, GV_DIMS(2), k.k, sizeof k.k);
    gv_tree_append_tensor(in, kt);
    gv_tensor_free(kt);
    gv_tree *out = GVT_NN(gv_plan_new_outputs(plan));
    GVT_OK(gv_plan_run(plan, in, out));
    gv_tree *res = gv_tree_copy(out);
    gv_tree_free(out), gv_tree_free(in), gv_plan_free(plan), gv_fn_free(vg), gv_fn_free(loss);
    return res;
}

static double scalar(const gv_tree *t, const char *path) {
    double v;
    GVT_OK(gv_tensor_get(GVT_NN(gv_tree_get_tensor(t, path)), NULL, &v));
    return v;
}

Test(vae_model, loss_and_gradient_match_pytorch_float64) {
    gv_tree *vars = init_params();
    gv_tensor *x, *y;
    batch(&x, &y);
    gv_tree *r = loss_and_grads(gv_tree_get(vars, "params"), x, y);
    const char *names[3] = {"loss", "mse", "kl"}, *paths[3] = {"0/0", "0/1/0", "0/1/1"};
    for (int i = 0; i < 3; i++) {
        double got = scalar(r, paths[i]), want = json_object_get_double(get(golden(), names[i]));
        cr_expect(fabs(got - want) <= 2e-5 * fabs(want) + 1e-5, "%s: %.9g, PyTorch float64 %.9g",
                  names[i], got, want);
    }
    /* float32 against float64 through 12 layers (forward and back): entries
     * within 1e-3 of the gradient's RMS plus 1e-4 relative; sums within 1e-4
     * of sum |g| (bounded by sqrt(n * sum g^2)) */
    compare c = {0};
    json_object_object_foreach(get(golden(), "grads"), path, w) {
        char full[256];
        snprintf(full, sizeof full, "1/%s", path);
        gv_tensor *t = GVT_NN(gv_tree_get_tensor(r, full));
        const float *g = gv_tensor_data_const(t);
        int64_t n = gv_tensor_size(t);
        double sum = 0, sumsq = json_object_get_double(get(w, "sumsq"));
        for (int64_t i = 0; i < n; i++) sum += g[i];
        double rms = sqrt(sumsq / (double)n), want_sum = json_object_get_double(get(w, "sum"));
        if (fabs(sum - want_sum) > 1e-4 * sqrt((double)n * sumsq) + 1e-7)
            note(&c, "%s: gradient sum %.9g, PyTorch %.9g", path, sum, want_sum);
        json_object *idx = get(w, "index"), *vals = get(w, "values");
        for (size_t k = 0; k < json_object_array_length(idx); k++) {
            double v = g[json_object_get_int64(json_object_array_get_idx(idx, k))];
            double e = json_object_get_double(json_object_array_get_idx(vals, k));
            if (fabs(v - e) > 1e-3 * rms + 1e-4 * fabs(e) + 1e-9) note(&c, "%s: gradient entry %.9g, PyTorch %.9g", path, v, e);
        }
    }
    cr_assert_eq(c.bad, 0, "%d mismatches; first: %s", c.bad, c.first);
    gv_tree_free(r), gv_tree_free(vars);
    gv_tensor_free(x), gv_tensor_free(y);
}

/* The compiled step == value_and_grad, then adamw's update and
 * apply_updates run eagerly, bit for bit; and it allocates nothing. */
Test(vae_model, train_step_is_value_and_grad_plus_adamw) {
    gv_tree *vars = init_params();
    const gv_tree *params = gv_tree_get(vars, "params");
    gv_tensor *x, *y;
    batch(&x, &y);
    gv_tree *r = loss_and_grads(params, x, y);
    gv_transform *tx = GVT_NN(gv_adamw(.learning_rate = 1e-4));
    gv_tree *opt = GVT_NN(gv_transform_init_eager(tx, params)), *updates, *opt2;
    GVT_OK(gv_transform_update_eager(tx, gv_tree_get(r, "1"), opt, params, &updates, &opt2));
    gv_tree *want = GVT_NN(gv_apply_updates_eager(params, updates));

    gv_tree *copy = gv_tree_copy(params); /* the step updates its state in place */
    vae_hparams hp = {0.5, 1e-4, 1, false};
    vae_trainer *t = GVT_NN(vae_trainer_new(&cfg, &hp, copy, B));
    vae_metrics m;
    GVT_OK(vae_trainer_step(t, x, y, gv_prng_key(7), &m));
    cr_assert_eq(m.loss, (float)scalar(r, "0/0"), "the step's loss is the loss function's");
    char first[256];
    int n = gvt_tree_diff(want, gv_tree_get(vae_trainer_state(t), "params"), first, sizeof first);
    cr_assert_eq(n, 0, "%d params differ from value_and_grad + adamw, first %s", n, first);
    cr_assert_eq(scalar(vae_trainer_state(t), "step"), 1);
    gv_plan_stats st = vae_trainer_stats(t);
    cr_assert_eq(st.donated_outputs, 18 * 3 + 2, "params, mu, nu, adam's count and the step in place");
    /* a second step against a second eager update from the first's state */
    gv_tree *r2 = loss_and_grads(want, x, y), *updates2, *opt3;
    GVT_OK(gv_transform_update_eager(tx, gv_tree_get(r2, "1"), opt2, want, &updates2, &opt3));
    gv_tree *want2 = GVT_NN(gv_apply_updates_eager(want, updates2));
    GVT_OK(vae_trainer_step(t, x, y, gv_prng_key(7), &m));
    n = gvt_tree_diff(want2, gv_tree_get(vae_trainer_state(t), "params"), first, sizeof first);
    cr_assert_eq(n, 0, "step 2: %d params differ, first %s", n, first);
    n = gvt_tree_diff(opt3, gv_tree_get(vae_trainer_state(t), "opt_state"), first, sizeof first);
    cr_assert_eq(n, 0, "step 2: %d optimiser leaves differ, first %s", n, first);
    cr_assert_eq(scalar(vae_trainer_state(t), "step"), 2);
    gv_tree_free(r2), gv_tree_free(updates2), gv_tree_free(opt3), gv_tree_free(want2);
#ifdef GVT_COUNTING_ALLOCS
    long before = gvt_allocs;
    for (int i = 0; i < 20; i++) vae_trainer_step(t, x, y, gv_prng_key((int64_t)i), &m);
    cr_assert_eq(gvt_allocs - before, 0, "20 train steps allocated %ld times", gvt_allocs - before);
#endif
    vae_trainer_free(t);
    gv_tree_free(copy), gv_tree_free(want), gv_tree_free(updates), gv_tree_free(opt2), gv_tree_free(opt);
    gv_transform_free(tx), gv_tree_free(r), gv_tree_free(vars);
    gv_tensor_free(x), gv_tensor_free(y);
}

/* A resumed state is loaded into the trainer only when it has the same
 * structure and shapes. */
Test(vae_model, load_state_checks_the_structure) {
    gv_tree *vars = init_params();
    vae_hparams hp = {0.5, 1e-4, 1, false};
    vae_trainer *t = GVT_NN(vae_trainer_new(&cfg, &hp, gv_tree_get(vars, "params"), B));
    gv_tree *good = gv_tree_copy(vae_trainer_state(t));
    GVT_OK(vae_trainer_load_state(t, good));
    gv_tree *bad = gv_tree_copy(good);
    gv_tensor *wrong = gv_tensor_zeros(GV_F32, GV_DIMS(3, 3));
    GVT_OK(gv_tree_set_tensor(bad, "params/class_proj/kernel", wrong));
    cr_assert_neq(vae_trainer_load_state(t, bad), GV_OK);
    cr_assert(strstr(gv_last_error(), "class_proj"), "%s", gv_last_error());
    gv_tensor_free(wrong);
    gv_tree_free(bad), gv_tree_free(good);
    vae_trainer_free(t);
    gv_tree_free(vars);
}

/* vae_decode writes one one-hot row per label, by index: a label outside
 * 0..9 (from a caller, or a file's byte) is an error naming it and its
 * index, and nothing is written; an in-range batch decodes. */
Test(vae_model, decode_refuses_labels_outside_the_classes) {
    gv_tree *vars = init_params();
    gv_module m = vae_module(&cfg);
    gv_bound *bound = GVT_NN(gv_bind(&m, vars, &(gv_module_options){0}));
    gv_tensor *z = GVT_NN(gv_tensor_zeros(GV_F32, GV_DIMS(B, 32)));
    gv_tensor *labels = GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(B)));
    int32_t *lab = gv_tensor_data(labels);
    char err[256];

    const int32_t bad[] = {10, 255, -1, INT32_MAX};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        for (int i = 0; i < B; i++) lab[i] = i;
        int at = (int)(k % 2 ? B - 1 : 1); /* the last row too: past the end of the buffer */
        lab[at] = bad[k];
        err[0] = 0;
        gv_tensor *img = vae_decode(bound, z, labels, err, sizeof err);
        cr_assert_null(img, "label %d at index %d decoded", bad[k], at);
        char want[64];
        snprintf(want, sizeof want, "label %d at index %d", bad[k], at);
        cr_assert(strstr(err, want), "expected '%s' in: %s", want, err);
        cr_assert_null(vae_decode(bound, z, labels, NULL, 0), "err may be NULL");
    }

    /* labels of another dtype or length are refused too */
    gv_tensor *short_labels = GVT_NN(gv_tensor_zeros(GV_I32, GV_DIMS(B - 1)));
    cr_assert_null(vae_decode(bound, z, short_labels, err, sizeof err));
    cr_assert(strstr(err, "int32 [4]"), "%s", err);
    gv_tensor *u8_labels = GVT_NN(gv_tensor_zeros(GV_U8, GV_DIMS(B)));
    cr_assert_null(vae_decode(bound, z, u8_labels, err, sizeof err));
    cr_assert(strstr(err, "int32 [4]"), "%s", err);

    for (int i = 0; i < B; i++) lab[i] = 9 - i;
    gv_tensor *img = vae_decode(bound, z, labels, err, sizeof err);
    cr_assert_not_null(img, "%s", err);
    cr_assert_eq(gv_tensor_dim(img, 0), B);
    cr_assert_eq(gv_tensor_dim(img, 1), 784);

    gv_tensor_free(img), gv_tensor_free(u8_labels), gv_tensor_free(short_labels);
    gv_tensor_free(labels), gv_tensor_free(z);
    gv_bound_free(bound);
    gv_tree_free(vars);
}
