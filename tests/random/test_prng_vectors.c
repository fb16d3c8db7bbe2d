/* Every known-answer vector of tests/data/jax-prng-vectors.json (copied from
 * the reference folder; sources are listed per vector): threefry KATs, seeds,
 * split/fold_in, bits, samplers, Flax's name-based keys and the Flax
 * docstring programs (Dense/Dropout/Embed init, apply and a gradient). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NUM_VECTORS 62

static json_object *vectors(void) {
    char *path = gvt_data_path("jax-prng-vectors.json");
    json_object *root = gvt_load_json(path);
    free(path);
    json_object *v;
    cr_assert(json_object_object_get_ex(root, "vectors", &v));
    json_object_get(v);
    json_object_put(root);
    return v;
}

static gv_prng_impl mode_of(json_object *c) {
    json_object *m;
    if (json_object_object_get_ex(c, "mode", &m) &&
        strcmp(json_object_get_string(m), "partitionable") == 0)
        return GV_PRNG_PARTITIONABLE;
    return GV_PRNG_LEGACY; /* "legacy" and "any" */
}

static json_object *field(json_object *o, const char *name) {
    json_object *v = NULL;
    json_object_object_get_ex(o, name, &v);
    return v;
}

static gv_key key_of(json_object *in) {
    json_object *k = field(in, "key");
    if (k)
        return (gv_key){{(uint32_t)json_object_get_int64(json_object_array_get_idx(k, 0)),
                         (uint32_t)json_object_get_int64(json_object_array_get_idx(k, 1))}};
    json_object *x64 = field(in, "x64");
    int64_t seed = json_object_get_int64(field(in, "seed"));
    return x64 && json_object_get_boolean(x64) ? gv_prng_key_x64(seed) : gv_prng_key(seed);
}

/* Flatten a nested JSON array of numbers/bools into doubles (and uint64s). */
static void flatten(json_object *e, double *d, uint64_t *u, int *n) {
    if (json_object_is_type(e, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(e); i++)
            flatten(json_object_array_get_idx(e, i), d, u, n);
        return;
    }
    if (json_object_is_type(e, json_type_string)) { /* "0x6b200159" */
        u[*n] = strtoull(json_object_get_string(e), NULL, 16);
        d[*n] = (double)u[*n];
    } else if (json_object_is_type(e, json_type_boolean)) {
        u[*n] = json_object_get_boolean(e);
        d[*n] = (double)u[*n];
    } else if (json_object_is_type(e, json_type_int)) {
        u[*n] = json_object_get_uint64(e);
        d[*n] = (double)u[*n];
    } else {
        d[*n] = json_object_get_double(e);
        u[*n] = 0;
    }
    (*n)++;
}

/* nn.Dense: kernel = lecun_normal(fold_in_static(K, path + (1,))), bias 0;
 * y[r][j] = sum_k x[r][k] * W[k][j] accumulated in order with FMA, + bias
 * (reference section 7.3). Returns the kernel; y is rows x f. */
static gv_tensor *dense(gv_prng_impl impl, gv_key root, const char *name, const float *x,
                        int rows, int in, int f, float *y) {
    gv_fold_part parts[2] = {{name, 0}, {NULL, 1}};
    gv_key k = gv_fold_in_static(root, parts, 2, false);
    gv_initializer init = gv_init_lecun_normal();
    gv_tensor *w = GVT_NN(gv_initializer_sample(&init, impl, k, GV_DIMS(in, f)));
    const float *W = gv_tensor_data(w);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < f; j++) {
            float acc = 0.0f;
            for (int i = 0; i < in; i++) acc = fmaf(x[r * in + i], W[i * f + j], acc);
            y[r * f + j] = acc + 0.0f;
        }
    return w;
}

static int get_int(json_object *in, const char *name) {
    return json_object_get_int(field(in, name));
}

/* Evaluates one vector into out (flat); returns the element count. */
static int evaluate(json_object *c, double *out, uint64_t *uout) {
    const char *op = json_object_get_string(field(c, "op"));
    json_object *in = field(c, "input");
    gv_prng_impl impl = mode_of(c);
    int n = 0;
    int64_t shape[8];
    int rank = 0;
    json_object *sh = field(in, "shape");
    if (sh)
        for (size_t i = 0; i < json_object_array_length(sh); i++)
            shape[rank++] = json_object_get_int64(json_object_array_get_idx(sh, i));

    if (strcmp(op, "threefry2x32") == 0) {
        json_object *cnt = field(in, "count");
        uint32_t y[2];
        gv_threefry2x32(key_of(in), (uint32_t)json_object_get_int64(json_object_array_get_idx(cnt, 0)),
                        (uint32_t)json_object_get_int64(json_object_array_get_idx(cnt, 1)), y);
        uout[0] = y[0], uout[1] = y[1];
        return 2;
    }
    if (strcmp(op, "prng_key") == 0 || strcmp(op, "fold_in") == 0 ||
        strcmp(op, "fold_in_static") == 0) {
        gv_key k = key_of(in);
        if (strcmp(op, "fold_in") == 0) k = gv_random_fold_in_eager(k, (uint32_t)get_int(in, "data"));
        if (strcmp(op, "fold_in_static") == 0) {
            json_object *p = field(in, "parts");
            gv_fold_part parts[8];
            size_t np = json_object_array_length(p);
            for (size_t i = 0; i < np; i++) {
                json_object *e = json_object_array_get_idx(p, i);
                parts[i] = json_object_is_type(e, json_type_string)
                               ? (gv_fold_part){json_object_get_string(e), 0}
                               : (gv_fold_part){NULL, (uint64_t)json_object_get_int64(e)};
            }
            json_object *fs = field(in, "fix_separator");
            k = gv_fold_in_static(k, parts, np, fs && json_object_get_boolean(fs));
        }
        uout[0] = k.k[0], uout[1] = k.k[1];
        return 2;
    }
    if (strcmp(op, "split") == 0) {
        int num = get_int(in, "num");
        gv_key ks[16];
        GVT_OK(gv_random_split_eager(impl, key_of(in), num, ks));
        for (int i = 0; i < num; i++) uout[n++] = ks[i].k[0], uout[n++] = ks[i].k[1];
        return n;
    }
    gv_tensor *t = NULL;
    gv_key key = key_of(in);
    if (strcmp(op, "bits") == 0) {
        int w = get_int(in, "width");
        gv_dtype dt = w == 8 ? GV_U8 : w == 16 ? GV_U16 : w == 32 ? GV_U32 : GV_U64;
        t = GVT_NN(gv_random_bits_eager(impl, key, dt, rank, shape));
        for (int64_t i = 0; i < gv_tensor_size(t); i++) {
            const void *p = gv_tensor_data_const(t);
            uout[i] = dt == GV_U8 ? ((const uint8_t *)p)[i]
                    : dt == GV_U16 ? ((const uint16_t *)p)[i]
                    : dt == GV_U32 ? ((const uint32_t *)p)[i] : ((const uint64_t *)p)[i];
        }
    } else if (strcmp(op, "uniform") == 0) {
        t = GVT_NN(gv_random_uniform_eager(impl, key, rank, shape, 0.0f, 1.0f));
    } else if (strcmp(op, "normal") == 0) {
        t = GVT_NN(gv_random_normal_eager(impl, key, rank, shape));
    } else if (strcmp(op, "truncated_normal") == 0) {
        t = GVT_NN(gv_random_truncated_normal_eager(
            impl, key, (float)json_object_get_double(field(in, "lower")),
            (float)json_object_get_double(field(in, "upper")), rank, shape));
    } else if (strcmp(op, "bernoulli") == 0) {
        t = GVT_NN(gv_random_bernoulli_eager(impl, key, (float)json_object_get_double(field(in, "p")),
                                             rank, shape));
    } else if (strcmp(op, "randint") == 0) {
        t = GVT_NN(gv_random_randint_eager(impl, key, rank, shape, get_int(in, "minval"),
                                           get_int(in, "maxval")));
    } else if (strcmp(op, "flax") == 0) {
        const char *prog = json_object_get_string(field(in, "program"));
        if (strcmp(prog, "embed_init") == 0) {
            /* nn.Embed: variance_scaling(1, fan_in, normal, out_axis=0) at fold_in_static(K, (1,)) */
            gv_fold_part one = {NULL, 1};
            gv_initializer init =
                gv_init_variance_scaling(1.0, GV_FAN_IN, GV_DIST_NORMAL, -2, 0);
            t = GVT_NN(gv_initializer_sample(&init, impl, gv_fold_in_static(key, &one, 1, false),
                                             GV_DIMS(get_int(in, "num_embeddings"),
                                                     get_int(in, "features"))));
        } else if (strcmp(prog, "dense_dropout_mlp") == 0) {
            int in_f = get_int(in, "in_features"), f = get_int(in, "features");
            float x[64], y[64];
            for (int i = 0; i < in_f; i++) x[i] = 1.0f;
            gv_tensor_free(dense(impl, key, "Dense_0", x, 1, in_f, f, y));
            json_object *train = field(in, "train");
            if (train && json_object_get_boolean(train)) {
                /* nn.Dropout: keep = bernoulli(make_rng('dropout'), 1 - rate); x / keep */
                double rate = json_object_get_double(field(in, "rate"));
                gv_fold_part parts[2] = {{"Dropout_0", 0}, {NULL, 1}};
                gv_key dk = gv_fold_in_static(gv_prng_key(get_int(in, "dropout_seed")), parts,
                                              2, false);
                float keep = (float)(1.0 - rate);
                gv_tensor *mask = GVT_NN(gv_random_bernoulli_eager(impl, dk, keep, GV_DIMS(f)));
                const uint8_t *m = gv_tensor_data_const(mask);
                for (int j = 0; j < f; j++) y[j] = m[j] ? y[j] / keep : 0.0f;
                gv_tensor_free(mask);
            }
            for (int j = 0; j < f; j++) out[n++] = y[j];
            return n;
        } else {
            /* two_dense / two_dense_grad: Dense(f1) -> Dense(f2) on ones((rows, in)) */
            int in_f = get_int(in, "in_features"), f1 = get_int(in, "f1"), f2 = get_int(in, "f2");
            int rows = get_int(in, "rows");
            float x[256], h[256], y[256];
            for (int i = 0; i < rows * in_f; i++) x[i] = 1.0f;
            gv_tensor_free(dense(impl, key, "Dense_0", x, rows, in_f, f1, h));
            gv_tensor *w1 = dense(impl, key, "Dense_1", h, rows, f1, f2, y);
            if (strcmp(prog, "two_dense") == 0) {
                for (int i = 0; i < rows * f2; i++) out[n++] = y[i];
            } else {
                /* d/dh mean((y - 1)^2) = (1/n * 2(y - 1)) @ W1^T, FMA-accumulated */
                const float *W = gv_tensor_data_const(w1);
                float inv = (float)(1.0 / (rows * f2));
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < f1; j++) {
                        float acc = 0.0f;
                        for (int k = 0; k < f2; k++)
                            acc = fmaf(inv * (2.0f * (y[r * f2 + k] - 1.0f)), W[j * f2 + k], acc);
                        out[n++] = acc;
                    }
            }
            gv_tensor_free(w1);
            return n;
        }
    } else {
        cr_assert_fail("unknown op %s", op);
    }
    for (int64_t i = 0; i < gv_tensor_size(t); i++) {
        double v;
        GVT_OK(gv_tensor_get_flat(t, i, &v));
        if (strcmp(op, "bits") != 0) out[i] = v, uout[i] = (uint64_t)(int64_t)v;
    }
    n = (int)gv_tensor_size(t);
    gv_tensor_free(t);
    return n;
}

Test(prng_vectors, all_62_present) {
    json_object *v = vectors();
    cr_assert_eq(json_object_array_length(v), NUM_VECTORS);
    json_object_put(v);
}

ParameterizedTestParameters(prng_vectors, vector) {
    static int idx[NUM_VECTORS];
    for (int i = 0; i < NUM_VECTORS; i++) idx[i] = i;
    return cr_make_param_array(int, idx, NUM_VECTORS);
}

ParameterizedTest(int *index, prng_vectors, vector) {
    json_object *all = vectors();
    json_object *c = json_object_array_get_idx(all, (size_t)*index);
    const char *id = json_object_get_string(field(c, "id"));
    double got[256], want[256];
    uint64_t ugot[256], uwant[256];
    int n = evaluate(c, got, ugot);
    int m = 0;
    flatten(field(c, "expected"), want, uwant, &m);
    cr_assert_eq(n, m, "%s: %d values, expected %d", id, n, m);
    json_object *tol = field(c, "tolerance");
    json_object *first = field(c, "expected");
    while (json_object_is_type(first, json_type_array)) first = json_object_array_get_idx(first, 0);
    bool integral = !json_object_is_type(first, json_type_double);
    for (int i = 0; i < n; i++) {
        if (integral && !tol) {
            cr_expect_eq(ugot[i], uwant[i], "%s[%d]: got %llu, expected %llu", id, i,
                         (unsigned long long)ugot[i], (unsigned long long)uwant[i]);
        } else if (!tol || json_object_is_type(tol, json_type_string)) {
            const char *how = tol ? json_object_get_string(tol) : "printed";
            if (strcmp(how, "f32") == 0)
                cr_expect_eq((float)got[i], (float)want[i], "%s[%d]: got %.9g, expected %.9g",
                             id, i, got[i], want[i]);
            else
                cr_expect_eq(gvt_numpy_printed((float)got[i]), want[i],
                             "%s[%d]: prints as %.9g, expected %.9g", id, i,
                             gvt_numpy_printed((float)got[i]), want[i]);
        } else {
            double atol = json_object_get_double(field(tol, "atol"));
            double rtol = json_object_get_double(field(tol, "rtol"));
            cr_expect_leq(fabs(got[i] - want[i]), atol + rtol * fabs(want[i]),
                          "%s[%d]: got %.9g, expected %.9g", id, i, got[i], want[i]);
        }
    }
    json_object_put(all);
}
