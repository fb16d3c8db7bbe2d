/* PRNG beyond the public vectors: golden values from the reference model
 * (tests/golden/prng_golden.json), properties JAX guarantees, SHA-1 test
 * vectors, and every error path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "random/random_internal.h"

static json_object *field(json_object *o, const char *name) {
    json_object *v = NULL;
    json_object_object_get_ex(o, name, &v);
    return v;
}

static gv_initializer init_named(const char *name) {
    if (!strcmp(name, "lecun_normal")) return gv_init_lecun_normal();
    if (!strcmp(name, "lecun_uniform")) return gv_init_lecun_uniform();
    if (!strcmp(name, "glorot_uniform")) return gv_init_glorot_uniform();
    if (!strcmp(name, "glorot_normal")) return gv_init_glorot_normal();
    if (!strcmp(name, "he_normal")) return gv_init_he_normal();
    if (!strcmp(name, "he_uniform")) return gv_init_he_uniform();
    if (!strcmp(name, "fan_out_normal"))
        return gv_init_variance_scaling(0.5, GV_FAN_OUT, GV_DIST_NORMAL, -2, -1);
    if (!strcmp(name, "fan_geo_avg_normal"))
        return gv_init_variance_scaling(1.0, GV_FAN_GEO_AVG, GV_DIST_NORMAL, -2, -1);
    cr_assert_fail("unknown initialiser %s", name);
    return gv_init_zeros();
}

/* Compare tensor t with the case's expected list: float32 bit patterns
 * ("0x..."), decimal strings (64-bit), ints or bools. */
static void expect_matches(const char *what, gv_tensor *t, json_object *exp) {
    size_t n = json_object_array_length(exp);
    cr_assert_eq((size_t)gv_tensor_size(t), n, "%s: %lld values, expected %zu", what,
                 (long long)gv_tensor_size(t), n);
    const void *p = gv_tensor_data_const(t);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(exp, i);
        switch (gv_tensor_dtype(t)) {
        case GV_F32: {
            uint32_t want = (uint32_t)strtoul(json_object_get_string(e), NULL, 16), got;
            memcpy(&got, (const float *)p + i, 4);
            cr_expect_eq(got, want, "%s[%zu]: got 0x%08x, expected 0x%08x", what, i, got, want);
            break;
        }
        case GV_U64: case GV_U16: case GV_U8: {
            unsigned long long want = strtoull(json_object_get_string(e), NULL, 10);
            double d;
            GVT_OK(gv_tensor_get_flat(t, (int64_t)i, &d));
            unsigned long long got = gv_tensor_dtype(t) == GV_U64
                                         ? (unsigned long long)((const uint64_t *)p)[i]
                                         : (unsigned long long)d;
            cr_expect_eq(got, want, "%s[%zu]: got %llu, expected %llu", what, i, got, want);
            break;
        }
        default: {
            double d;
            GVT_OK(gv_tensor_get_flat(t, (int64_t)i, &d));
            int64_t want = json_object_is_type(e, json_type_boolean) ? json_object_get_boolean(e)
                                                                     : json_object_get_int64(e);
            cr_expect_eq((int64_t)d, want, "%s[%zu]: got %lld, expected %lld", what, i,
                         (long long)d, (long long)want);
        }
        }
    }
}

static int64_t shape_of(json_object *c, int64_t *shape) {
    json_object *s = field(c, "shape");
    int rank = 0;
    for (size_t i = 0; s && i < json_object_array_length(s); i++)
        shape[rank++] = json_object_get_int64(json_object_array_get_idx(s, i));
    return rank;
}

Test(prng_golden, every_case) {
    char *path = gvt_golden_path("prng_golden.json");
    json_object *root = gvt_load_json(path);
    free(path);
    json_object *cases = field(root, "cases");
    size_t ncases = json_object_array_length(cases);
    cr_assert_geq(ncases, 40);
    for (size_t ci = 0; ci < ncases; ci++) {
        json_object *c = json_object_array_get_idx(cases, ci);
        const char *op = json_object_get_string(field(c, "op"));
        gv_prng_impl impl = strcmp(json_object_get_string(field(c, "mode")), "legacy") == 0
                                ? GV_PRNG_LEGACY : GV_PRNG_PARTITIONABLE;
        gv_key key = gv_prng_key(json_object_get_int64(field(c, "seed")));
        int64_t shape[8];
        int rank = (int)shape_of(c, shape);
        char what[128];
        snprintf(what, sizeof what, "case %zu %s/%s", ci, op,
                 json_object_get_string(field(c, "mode")));
        json_object *exp = field(c, "expected");
        gv_tensor *t = NULL;
        if (!strcmp(op, "permutation")) {
            t = GVT_NN(gv_random_permutation_eager(impl, key, json_object_get_int64(field(c, "n"))));
        } else if (!strcmp(op, "init")) {
            gv_fold_part parts[2] = {{"layer", 0}, {NULL, 1}};
            gv_initializer in = init_named(json_object_get_string(field(c, "init")));
            t = GVT_NN(gv_initializer_sample(&in, impl, gv_fold_in_static(key, parts, 2, false),
                                             rank, shape));
        } else if (!strcmp(op, "randint")) {
            t = GVT_NN(gv_random_randint_eager(impl, key, rank, shape,
                                               json_object_get_int(field(c, "minval")),
                                               json_object_get_int(field(c, "maxval"))));
        } else if (!strcmp(op, "bernoulli")) {
            t = GVT_NN(gv_random_bernoulli_eager(impl, key, (float)json_object_get_double(field(c, "p")),
                                                 rank, shape));
        } else if (!strcmp(op, "truncated_normal")) {
            t = GVT_NN(gv_random_truncated_normal_eager(
                impl, key, (float)json_object_get_double(field(c, "lower")),
                (float)json_object_get_double(field(c, "upper")), rank, shape));
        } else if (!strcmp(op, "uniform")) {
            t = GVT_NN(gv_random_uniform_eager(impl, key, rank, shape,
                                               (float)json_object_get_double(field(c, "minval")),
                                               (float)json_object_get_double(field(c, "maxval"))));
        } else if (!strcmp(op, "normal")) {
            t = GVT_NN(gv_random_normal_eager(impl, key, rank, shape));
        } else if (!strcmp(op, "bits")) {
            int w = json_object_get_int(field(c, "width"));
            t = GVT_NN(gv_random_bits_eager(impl, key, w == 8 ? GV_U8 : w == 16 ? GV_U16 : GV_U64,
                                            rank, shape));
        } else if (!strcmp(op, "split")) {
            int num = json_object_get_int(field(c, "num"));
            gv_key ks[8];
            GVT_OK(gv_random_split_eager(impl, key, num, ks));
            for (int i = 0; i < num; i++)
                for (int j = 0; j < 2; j++)
                    cr_expect_eq(ks[i].k[j],
                                 (uint32_t)json_object_get_int64(json_object_array_get_idx(
                                     json_object_array_get_idx(exp, (size_t)i), (size_t)j)),
                                 "%s: key %d word %d", what, i, j);
            continue;
        } else {
            cr_assert_fail("unknown op %s", op);
        }
        expect_matches(what, t, exp);
        gv_tensor_free(t);
    }
    json_object_put(root);
}

Test(prng, partitionable_split_equals_fold_in) {
    /* JAX tests this symmetry: split(key, n)[i] == fold_in(key, i) */
    gv_key k = gv_prng_key(123), ks[6];
    GVT_OK(gv_random_split_eager(GV_PRNG_PARTITIONABLE, k, 6, ks));
    for (uint32_t i = 0; i < 6; i++) {
        gv_key f = gv_random_fold_in_eager(k, i);
        cr_assert(f.k[0] == ks[i].k[0] && f.k[1] == ks[i].k[1], "index %u", i);
    }
    gv_key a, b;
    gv_random_split2_eager(GV_PRNG_LEGACY, gv_prng_key(0), &a, &b);
    cr_assert_eq(a.k[0], 4146024105u);
    cr_assert_eq(b.k[1], 1272950319u);
}

Test(prng, seeds) {
    gv_key k = gv_prng_key(INT64_C(0x1234567890));
    cr_assert(k.k[0] == 0 && k.k[1] == 0x34567890u, "x32 mode wraps to int32");
    k = gv_prng_key_x64(INT64_C(0x1234567890));
    cr_assert(k.k[0] == 0x12 && k.k[1] == 0x34567890u);
    k = gv_prng_key(0xffff);
    cr_assert(k.k[0] == 0 && k.k[1] == 0xffff);
}

Test(prng, permutation_is_a_permutation) {
    for (gv_prng_impl impl = GV_PRNG_PARTITIONABLE; impl <= GV_PRNG_LEGACY; impl++) {
        gv_tensor *p = GVT_NN(gv_random_permutation_eager(impl, gv_prng_key(1), 60000));
        cr_assert_eq(gv_tensor_dtype(p), GV_I32);
        const int32_t *v = gv_tensor_data_const(p);
        char *seen = calloc(60000, 1);
        int moved = 0;
        int bad = 0;
        for (int i = 0; i < 60000; i++) {
            if (v[i] < 0 || v[i] >= 60000 || seen[v[i]]) {
                bad++;
                continue;
            }
            seen[v[i]] = 1;
            moved += v[i] != i;
        }
        cr_assert_eq(bad, 0, "%d entries out of range or repeated", bad);
        cr_assert_gt(moved, 59000, "a shuffle moves almost everything");
        gv_tensor *q = GVT_NN(gv_random_permutation_eager(impl, gv_prng_key(1), 60000));
        cr_assert(gv_tensor_equal(p, q), "same key, same order");
        free(seen);
        gv_tensor_free(p), gv_tensor_free(q);
    }
    gv_tensor *e = GVT_NN(gv_random_permutation_eager(GV_PRNG_DEFAULT, gv_prng_key(1), 0));
    cr_assert_eq(gv_tensor_size(e), 0);
    gv_tensor_free(e);
}

Test(prng, sampler_ranges_and_stats) {
    gv_tensor *u = GVT_NN(gv_random_uniform_eager(GV_PRNG_DEFAULT, gv_prng_key(5), GV_DIMS(100000),
                                                  2.0f, 3.0f));
    gv_tensor *n = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(5), GV_DIMS(100000)));
    gv_tensor *t = GVT_NN(gv_random_truncated_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(5), -2.0f,
                                                           2.0f, GV_DIMS(100000)));
    const float *pu = gv_tensor_data_const(u), *pn = gv_tensor_data_const(n),
                *pt = gv_tensor_data_const(t);
    double su = 0, sn = 0, sn2 = 0;
    int outside = 0;
    for (int i = 0; i < 100000; i++) {
        outside += !(pu[i] >= 2.0f && pu[i] < 3.0f);
        outside += !(pt[i] > -2.0f && pt[i] < 2.0f); /* strictly inside the bounds */
        su += pu[i], sn += pn[i], sn2 += (double)pn[i] * pn[i];
    }
    cr_assert_eq(outside, 0);
    cr_assert_float_eq(su / 1e5, 2.5, 0.01);
    cr_assert_float_eq(sn / 1e5, 0.0, 0.01);
    cr_assert_float_eq(sn2 / 1e5, 1.0, 0.02);
    gv_tensor_free(u), gv_tensor_free(n), gv_tensor_free(t);
    gv_tensor *r = GVT_NN(gv_random_randint_eager(GV_PRNG_DEFAULT, gv_prng_key(3), GV_DIMS(1000), 5, 5));
    const int32_t *pr = gv_tensor_data_const(r);
    int not5 = 0;
    for (int i = 0; i < 1000; i++) not5 += pr[i] != 5;
    cr_assert_eq(not5, 0, "empty range gives minval");
    gv_tensor_free(r);
}

Test(prng, special_functions) {
    cr_assert(isinf(gv_erf_inv_f32(1.0f)) && gv_erf_inv_f32(-1.0f) < 0);
    cr_assert(isnan(gv_log_f32(-1.0f)));
    cr_assert(isinf(gv_log_f32(0.0f)) && gv_log_f32(0.0f) < 0);
    cr_assert(isinf(gv_log_f32(INFINITY)));
    cr_assert_eq(gv_log_f32(1.0f), 0.0f);
    cr_assert(isnan(gv_log1p_f32(-2.0f)));
    cr_assert(isinf(gv_log1p_f32(-1.0f)));
    cr_assert_float_eq(gv_log1p_f32(1e-3f), log1p(1e-3), 1e-9);
    cr_assert_eq(gv_erf_f32(10.0f), 1.0f);
    /* reference 5.3: erf(-2/sqrt2) is exactly 0xBF745A18 */
    float a = gv_erf_f32(-2.0f / 1.41421354f);
    uint32_t bits;
    memcpy(&bits, &a, 4);
    cr_assert_eq(bits, 0xBF745A18u);
    for (float x = -0.99f; x < 1.0f; x += 0.01f)
        cr_assert_float_eq(gv_erf_f32(gv_erf_inv_f32(x)), x, 2e-6);
}

static void hex(const uint8_t *d, char *out) {
    for (int i = 0; i < 20; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

Test(sha1, fips_vectors) {
    uint8_t d[20];
    char h[41];
    gv_sha1("abc", 3, d);
    hex(d, h);
    cr_assert_str_eq(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    gv_sha1("", 0, d);
    hex(d, h);
    cr_assert_str_eq(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    gv_sha1(m, strlen(m), d);
    hex(d, h);
    cr_assert_str_eq(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    gv_sha1(million, 1000000, d);
    hex(d, h);
    cr_assert_str_eq(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(million);
}

Test(prng, fold_in_static_parts) {
    /* the reference's example: ('Dense_0', 1) hashes "Dense_0\x01" -> 0xB2B71315 */
    gv_key k = gv_prng_key(0);
    gv_fold_part parts[2] = {{"Dense_0", 0}, {NULL, 1}};
    gv_key a = gv_fold_in_static(k, parts, 2, false);
    gv_key b = gv_random_fold_in_eager(k, 0xB2B71315u);
    cr_assert(a.k[0] == b.k[0] && a.k[1] == b.k[1]);
    gv_key same = gv_fold_in_static(k, NULL, 0, false);
    cr_assert(same.k[0] == k.k[0] && same.k[1] == k.k[1], "no parts: key unchanged");
    /* integer 0 contributes no bytes; 256 contributes two */
    gv_fold_part z[2] = {{"x", 0}, {NULL, 0}}, x1[1] = {{"x", 0}};
    gv_key kz = gv_fold_in_static(k, z, 2, false), kx = gv_fold_in_static(k, x1, 1, false);
    cr_assert(kz.k[0] == kx.k[0] && kz.k[1] == kx.k[1]);
    gv_fold_part big[1] = {{NULL, 256}};
    uint8_t d[20];
    gv_sha1("\x01\x00", 2, d);
    uint32_t u = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
    gv_key kb = gv_fold_in_static(k, big, 1, false), want = gv_random_fold_in_eager(k, u);
    cr_assert(kb.k[0] == want.k[0] && kb.k[1] == want.k[1]);
}

Test(prng, errors) {
    gv_key k = gv_prng_key(0), out[2];
    GVT_FAILS(gv_random_split_eager((gv_prng_impl)7, k, 2, out), GV_ERR_ARG, "unknown PRNG scheme 7");
    GVT_FAILS(gv_random_split_eager(GV_PRNG_LEGACY, k, -1, out), GV_ERR_ARG, "negative number of keys");
    GVT_FAILS(gv_random_split_eager(GV_PRNG_LEGACY, k, 2, NULL), GV_ERR_ARG, "out is NULL");
    GVT_NULL(gv_random_bits_eager(GV_PRNG_LEGACY, k, GV_F32, GV_DIMS(3)), GV_ERR_DTYPE,
             "dtype float32 is not uint8");
    GVT_NULL(gv_random_bits_eager(GV_PRNG_LEGACY, k, GV_U32, GV_DIMS(-3)), GV_ERR_ARG, "negative");
    uint32_t buf[4];
    GVT_FAILS(gv_random_bits_fill(GV_PRNG_LEGACY, k, 12, buf, 4), GV_ERR_ARG,
              "bit width 12");
    GVT_FAILS(gv_random_bits32_fill(GV_PRNG_LEGACY, k, NULL, 4), GV_ERR_ARG, "out is NULL");
    GVT_NULL(gv_random_bernoulli_eager(GV_PRNG_LEGACY, k, 1.5f, GV_DIMS(3)), GV_ERR_ARG,
             "p = 1.5 is not in [0, 1]");
    GVT_NULL(gv_random_truncated_normal_eager(GV_PRNG_LEGACY, k, 2.0f, -2.0f, GV_DIMS(3)),
             GV_ERR_ARG, "need lower < upper");
    GVT_NULL(gv_random_uniform_eager((gv_prng_impl)9, k, GV_DIMS(3), 0, 1), GV_ERR_ARG,
             "gv_random_uniform_eager: gv_random_bits_eager: unknown PRNG scheme 9");
    GVT_NULL(gv_random_permutation_eager(GV_PRNG_LEGACY, k, -5), GV_ERR_ARG, "negative length");
}

Test(initializers, fans_and_errors) {
    double fi, fo;
    GVT_OK(gv_compute_fans(GV_DIMS(3, 3, 16, 32), -2, -1, &fi, &fo));
    cr_assert_eq(fi, 144.0);
    cr_assert_eq(fo, 288.0);
    GVT_OK(gv_compute_fans(GV_DIMS(5, 3), -2, 0, &fi, &fo)); /* nn.Embed: out_axis=0 */
    cr_assert_float_eq(fi, 3.0, 1e-12);
    GVT_FAILS(gv_compute_fans(GV_DIMS(5), -2, -1, &fi, &fo), GV_ERR_SHAPE, "rank >= 2");
    GVT_FAILS(gv_compute_fans(GV_DIMS(5, 3), 2, -1, &fi, &fo), GV_ERR_ARG, "out of range");
    gv_initializer in = gv_init_lecun_normal();
    GVT_NULL(gv_initializer_sample(&in, GV_PRNG_LEGACY, gv_prng_key(0), GV_DIMS(4)),
             GV_ERR_SHAPE, "rank >= 2");
    GVT_NULL(gv_initializer_sample(&in, GV_PRNG_LEGACY, gv_prng_key(0), GV_DIMS(0, 4)),
             GV_ERR_SHAPE, "zero-size");
    GVT_NULL(gv_initializer_sample(NULL, GV_PRNG_LEGACY, gv_prng_key(0), GV_DIMS(4)), GV_ERR_ARG,
             "initializer is NULL");
    gv_initializer c = gv_init_constant(0.25);
    gv_tensor *t = GVT_NN(gv_initializer_sample(&c, GV_PRNG_LEGACY, gv_prng_key(0), GV_DIMS(2, 2)));
    cr_assert_eq(((const float *)gv_tensor_data_const(t))[3], 0.25f);
    gv_tensor_free(t);
    gv_initializer nrm = gv_init_normal(0.02), uni = gv_init_uniform(0.5);
    gv_tensor *a = GVT_NN(gv_initializer_sample(&nrm, GV_PRNG_DEFAULT, gv_prng_key(0), GV_DIMS(5)));
    gv_tensor *b = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(0), GV_DIMS(5)));
    gv_tensor *u = GVT_NN(gv_initializer_sample(&uni, GV_PRNG_DEFAULT, gv_prng_key(0), GV_DIMS(5)));
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(((const float *)gv_tensor_data_const(a))[i],
                     ((const float *)gv_tensor_data_const(b))[i] * 0.02f);
        float v = ((const float *)gv_tensor_data_const(u))[i];
        cr_assert(v >= 0.0f && v < 0.5f);
    }
    gv_tensor_free(a), gv_tensor_free(b), gv_tensor_free(u);
}
