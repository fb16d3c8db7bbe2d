/* Flax's msgpack serialization (serialization.h) against files the real
 * flax.serialization wrote (tests/golden/make_flax_msgpack_golden.py):
 * grove's to_bytes gives their bytes exactly, they restore as saved and
 * into targets, a Flax TrainState continues training in grove, and every
 * kind of malformed input is an error with a message. */
#include <math.h>
#include <string.h>

#include "checkpoint/format_internal.h"
#include "testutil.h"

static gv_tensor *arange(gv_dtype dt, int rank, const int64_t *shape, double scale, double offset) {
    gv_tensor *t = gv_tensor_zeros(dt, rank, shape);
    int64_t n = gv_tensor_size(t);
    for (int64_t i = 0; i < n; i++) gv_tensor_set_flat(t, i, (double)i * scale + offset);
    return t;
}

static void put(gv_tree *tree, const char *path, gv_tensor *t) {
    GVT_OK(gv_tree_insert_tensor(tree, path, t));
    gv_tensor_free(t);
}

/* Set a new tensor at path, giving the tree the only reference. */
static void set(gv_tree *tree, const char *path, gv_tensor *t) {
    GVT_OK(gv_tree_set_tensor(tree, path, t));
    gv_tensor_free(t);
}

static gv_tensor *from(gv_dtype dt, int64_t n, const void *data) {
    return gv_tensor_from_data(dt, 1, (int64_t[]){n}, data, (size_t)n * gv_dtype_size(dt));
}

/* make_flax_msgpack_golden.py's arrays_tree(), in the same key order */
static gv_tree *arrays_tree(void) {
    gv_tree *t = gv_tree_new_dict();
    put(t, "params/dense/kernel", arange(GV_F32, GV_DIMS(3, 4), 0.25, -1.0));
    put(t, "params/dense/bias", arange(GV_F32, GV_DIMS(4), 1.0, 0.5));
    put(t, "params/a_first_after_dense", arange(GV_F64, GV_DIMS(2, 2), -1.5, 3.0));
    uint8_t bools[5] = {1, 0, 1, 0, 1};
    put(t, "dtypes/bool", from(GV_BOOL, 5, bools));
    put(t, "dtypes/uint8", arange(GV_U8, GV_DIMS(6), 51.0, 0));
    put(t, "dtypes/uint16", arange(GV_U16, GV_DIMS(3), 30000.0, 0));
    put(t, "dtypes/uint32", arange(GV_U32, GV_DIMS(2), 4e9, 0));
    uint64_t u64[2] = {0, UINT64_MAX};
    put(t, "dtypes/uint64", from(GV_U64, 2, u64));
    put(t, "dtypes/int32", arange(GV_I32, GV_DIMS(2, 3), -1000.0, 7.0));
    int64_t i64[3] = {INT64_MIN, INT64_MAX, 0};
    put(t, "dtypes/int64", from(GV_I64, 3, i64));
    float special[7] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 1.5f, -2.25f};
    double special64[7];
    for (int i = 0; i < 7; i++) special64[i] = special[i];
    put(t, "dtypes/float32", from(GV_F32, 7, special));
    put(t, "dtypes/float64", from(GV_F64, 7, special64));
    put(t, "shapes/scalar", gv_tensor_scalar(GV_F32, 2.5));
    put(t, "shapes/empty", gv_tensor_zeros(GV_F32, GV_DIMS(0, 3)));
    put(t, "shapes/bin16", arange(GV_F32, GV_DIMS(300), 0.5, 0));
    put(t, "shapes/bin32", arange(GV_F32, GV_DIMS(20000), 0.001, -5.0));
    put(t, "shapes/rank4", arange(GV_I32, GV_DIMS(2, 1, 3, 2), 1.0, 0));
    static const int order[17] = {16, 3, 9, 0, 12, 5, 1, 14, 7, 10, 2, 15, 8, 4, 13, 6, 11};
    for (int i = 0; i < 17; i++) {
        char path[32];
        snprintf(path, sizeof path, "seventeen_keys/k%02d", order[i]);
        put(t, path, gv_tensor_scalar(GV_I32, order[i]));
    }
    int64_t onetwo[2] = {1, 2};
    put(t, "a_key_longer_than_thirty_one_characters", from(GV_I64, 2, onetwo));
    gv_tree *list = gv_tree_new_list(), *inner = gv_tree_new_dict();
    gv_tensor *a = arange(GV_F32, GV_DIMS(2), 1.0, 0);
    GVT_OK(gv_tree_append_tensor(list, a));
    gv_tensor_free(a);
    put(inner, "inner", arange(GV_I32, GV_DIMS(1), 1.0, 9.0));
    GVT_OK(gv_tree_append(list, inner));
    GVT_OK(gv_tree_append(list, gv_tree_new_label("label")));
    GVT_OK(gv_tree_insert(t, "list", list));
    gv_tree *tuple = gv_tree_new_tuple();
    gv_tensor *b = arange(GV_U8, GV_DIMS(3), 1.0, 1.0), *c = arange(GV_F64, GV_DIMS(1), 1.0, -1.0);
    GVT_OK(gv_tree_append_tensor(tuple, b));
    GVT_OK(gv_tree_append_tensor(tuple, c));
    gv_tensor_free(b), gv_tensor_free(c);
    GVT_OK(gv_tree_insert(t, "tuple", tuple));
    GVT_OK(gv_tree_insert(t, "empty_dict", gv_tree_new_dict()));
    GVT_OK(gv_tree_insert(t, "empty_tuple", gv_tree_new_tuple()));
    GVT_OK(gv_tree_insert(t, "label", gv_tree_new_label("adam")));
    return t;
}

static char *golden(const char *name, size_t *len) {
    char rel[64];
    snprintf(rel, sizeof rel, "flax/%s", name);
    char *path = gvt_golden_path(rel);
    char *buf = gvt_read_file(path, len);
    free(path);
    return buf;
}

static void assert_same_bytes(const void *mine, size_t n, const char *theirs, size_t m) {
    cr_assert_eq(n, m, "grove wrote %zu bytes, Flax %zu", n, m);
    const unsigned char *a = mine, *b = (const unsigned char *)theirs;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(a[i], b[i], "first difference at byte %zu: grove 0x%02x, Flax 0x%02x", i, a[i], b[i]);
}

static void assert_same_tree(const gv_tree *a, const gv_tree *b) {
    char first[256] = "";
    int n = gvt_tree_diff(a, b, first, sizeof first);
    cr_assert_eq(n, 0, "%d leaves differ, first at %s", n, first);
    cr_assert(gv_tree_structure_equal(a, b), "same leaves, different structure");
}

Test(flax_msgpack, to_bytes_is_flax_byte_for_byte) {
    gv_tree *t = arrays_tree();
    void *buf;
    size_t n, m;
    GVT_OK(gv_flax_to_bytes(t, &buf, &n));
    char *flax = golden("arrays.msgpack", &m);
    assert_same_bytes(buf, n, flax, m);
    free(buf), free(flax);
    gv_tree_free(t);
}

Test(flax_msgpack, chunked_arrays_both_ways) {
    gv_tree *t = arrays_tree();
    size_t m;
    char *flax = golden("chunked.msgpack", &m);
    /* Flax's chunked dicts restore as whole arrays */
    gv_tree *r = gv_flax_from_bytes(t, flax, m);
    cr_assert(r, "%s", gv_last_error());
    assert_same_tree(t, r);
    /* and grove chunks exactly as Flax does at the same threshold */
    uint64_t saved = gv_flax_max_chunk_bytes;
    gv_flax_max_chunk_bytes = 64;
    void *buf;
    size_t n;
    gv_status st = gv_flax_to_bytes(t, &buf, &n);
    gv_flax_max_chunk_bytes = saved;
    GVT_OK(st);
    assert_same_bytes(buf, n, flax, m);
    free(buf), free(flax);
    gv_tree_free(r), gv_tree_free(t);
}

Test(flax_msgpack, restore_as_saved_gives_state_dicts) {
    size_t m;
    char *flax = golden("arrays.msgpack", &m);
    gv_tree *r = gv_flax_msgpack_restore(flax, m);
    cr_assert(r, "%s", gv_last_error());
    /* lists and tuples come back as dicts keyed "0", "1", ... (msgpack_restore) */
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(r, "list")), GV_TREE_DICT);
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(r, "tuple")), GV_TREE_DICT);
    cr_assert_str_eq(gv_tree_leaf_label(gv_tree_get(r, "list/2")), "label");
    cr_assert_eq(gv_tree_num_children(gv_tree_get(r, "empty_tuple")), 0);
    /* key order as written */
    cr_assert_str_eq(gv_tree_key(gv_tree_get(r, "params/dense"), 0), "kernel");
    cr_assert_str_eq(gv_tree_key(gv_tree_get(r, "seventeen_keys"), 0), "k16");
    /* values bit for bit, -0.0 and NaN included */
    const float *f = gv_tensor_data_const(gv_tree_get_tensor(r, "dtypes/float32"));
    cr_assert(isnan(f[0]) && isinf(f[1]) && f[2] < 0 && signbit(f[3]) && !signbit(f[4]));
    const uint64_t *u = gv_tensor_data_const(gv_tree_get_tensor(r, "dtypes/uint64"));
    cr_assert_eq(u[1], UINT64_MAX);
    cr_assert_eq(gv_tensor_rank(gv_tree_get_tensor(r, "shapes/scalar")), 0);
    cr_assert_eq(gv_tensor_shape(gv_tree_get_tensor(r, "shapes/empty"))[0], 0);
    /* into the target, the lists and tuples are themselves again */
    gv_tree *t = arrays_tree();
    gv_tree *into = gv_flax_from_bytes(t, flax, m);
    cr_assert(into, "%s", gv_last_error());
    assert_same_tree(t, into);
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(into, "tuple")), GV_TREE_TUPLE);
    /* and a shape-only target does as well */
    gv_tree *abstract = gv_tree_to_shape_dtype_struct(t);
    gv_tree *into2 = gv_flax_from_bytes(abstract, flax, m);
    cr_assert(into2, "%s", gv_last_error());
    assert_same_tree(t, into2);
    gv_tree_free(into2), gv_tree_free(abstract), gv_tree_free(into), gv_tree_free(t);
    gv_tree_free(r);
    free(flax);
}

Test(flax_msgpack, python_scalars) {
    size_t m;
    char *flax = golden("scalars.msgpack", &m);
    gv_tree *r = gv_flax_msgpack_restore(flax, m);
    cr_assert(r, "%s", gv_last_error());
    cr_assert_eq(gv_tensor_dtype(gv_tree_get_tensor(r, "small")), GV_I64);
    cr_assert_eq(*(const int64_t *)gv_tensor_data_const(gv_tree_get_tensor(r, "negative")), -3);
    cr_assert_eq(*(const uint64_t *)gv_tensor_data_const(gv_tree_get_tensor(r, "huge")), UINT64_MAX);
    cr_assert_eq(*(const double *)gv_tensor_data_const(gv_tree_get_tensor(r, "float")), 0.1);
    cr_assert_eq(gv_tensor_dtype(gv_tree_get_tensor(r, "yes")), GV_BOOL);
    cr_assert_eq(*(const float *)gv_tensor_data_const(gv_tree_get_tensor(r, "np_f32")), 1.5f);
    cr_assert_eq(*(const int64_t *)gv_tensor_data_const(gv_tree_get_tensor(r, "np_i64")), -9);
    cr_assert_str_eq(gv_tree_leaf_label(gv_tree_get(r, "name")), "grove");

    /* into a target a Python scalar takes the target's dtype when it fits */
    gv_tensor *i32 = gv_tensor_scalar(GV_I32, 0), *f32 = gv_tensor_scalar(GV_F32, 0),
              *u8 = gv_tensor_scalar(GV_U8, 0), *b = gv_tensor_scalar(GV_BOOL, 0),
              *f32b = gv_tensor_scalar(GV_F32, 0), *i64 = gv_tensor_scalar(GV_I64, 0),
              *i64b = gv_tensor_scalar(GV_I64, 0);
    gv_tree *target = gv_tree_new_dict();
    const char *keys[8] = {"small", "negative", "huge", "float", "yes", "np_f32", "np_i64", "step"};
    gv_tensor *leaves[8] = {u8, i32, i64, f32, b, f32b, i64b, i32};
    for (int i = 0; i < 8; i++) GVT_OK(gv_tree_insert_tensor(target, keys[i], leaves[i]));
    GVT_OK(gv_tree_insert(target, "name", gv_tree_new_label("x")));
    cr_assert(target, "%s", gv_last_error());
    gv_tree *into = gv_flax_from_bytes(target, flax, m);
    cr_assert_null(into, "2^64 - 1 must not fit an int64");
    cr_assert_eq(gv_last_status(), GV_ERR_STRUCTURE);
    cr_assert(strstr(gv_last_error(), "huge"), "%s", gv_last_error());
    set(target, "huge", gv_tensor_scalar(GV_U64, 0));
    into = gv_flax_from_bytes(target, flax, m);
    cr_assert(into, "%s", gv_last_error());
    cr_assert_eq(*(const float *)gv_tensor_data_const(gv_tree_get_tensor(into, "float")), 0.1f);
    cr_assert_eq(*(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(into, "step")), 12);
    cr_assert_eq(*(const uint8_t *)gv_tensor_data_const(gv_tree_get_tensor(into, "small")), 7);
    gv_tree_free(into);
    /* a negative int into an unsigned target, a float into an int: refused by path */
    set(target, "negative", gv_tensor_scalar(GV_U32, 0));
    cr_assert_null(gv_flax_from_bytes(target, flax, m));
    cr_assert(strstr(gv_last_error(), "negative"), "%s", gv_last_error());
    set(target, "negative", gv_tensor_scalar(GV_I32, 0));
    set(target, "float", gv_tensor_scalar(GV_I32, 0));
    cr_assert_null(gv_flax_from_bytes(target, flax, m));
    cr_assert(strstr(gv_last_error(), "float"), "%s", gv_last_error());
    /* a numpy scalar is a real dtype: float32 into a float64 target is refused */
    set(target, "float", gv_tensor_scalar(GV_F32, 0));
    set(target, "np_f32", gv_tensor_scalar(GV_F64, 0));
    cr_assert_null(gv_flax_from_bytes(target, flax, m));
    cr_assert(strstr(gv_last_error(), "np_f32: target float64 () vs file float32 ()"), "%s",
              gv_last_error());
    gv_tree_free(target), gv_tree_free(r);
    gv_tensor_free(i32), gv_tensor_free(f32), gv_tensor_free(u8), gv_tensor_free(b);
    gv_tensor_free(f32b), gv_tensor_free(i64), gv_tensor_free(i64b);
    free(flax);
}

/* ---- a Flax TrainState continues in grove ---- */

typedef struct step_ctx {
    gv_transform *tx;
} step_ctx;

/* loss(params, x, y) = mean((x @ kernel + bias - y)^2), as the golden script */
static gv_tree *loss_fn(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "1"), y = gv_tree_get_value(in, "2");
    gv_value pred = gv_add(gv_matmul(x, gv_tree_get_value(in, "0/kernel")),
                           gv_tree_get_value(in, "0/bias"));
    gv_value d = gv_sub(pred, y);
    return gv_tree_new_value_leaf(gv_mean(gv_mul(d, d), NULL, 0, false));
}

static gv_tree *train_step(gv_graph *g, const gv_tree *in, void *ud) {
    step_ctx *c = ud;
    const gv_tree *state = gv_tree_get(in, "0");
    gv_tree *args = gv_pack(g, "(params, x, y)", gv_tree_get(state, "params"),
                            gv_tree_get_value(in, "1"), gv_tree_get_value(in, "2"));
    gv_tree *lg = gv_value_and_grad_call(g, loss_fn, NULL, args, 0, false);
    if (!lg) return NULL;
    gv_tree *next = gv_train_state_apply_gradients(g, c->tx, state, gv_tree_get(lg, "1"));
    return next ? gv_pack(g, "(next)", next) : NULL;
}

Test(flax_msgpack, flax_train_state_continues_in_grove) {
    gv_transform *tx = gv_adamw(.learning_rate = 1e-2);
    gv_tree *params = gv_tree_new_dict();
    put(params, "kernel", gv_tensor_zeros(GV_F32, GV_DIMS(4, 3)));
    put(params, "bias", gv_tensor_zeros(GV_F32, GV_DIMS(3)));
    gv_tree *target = gv_train_state_create(tx, params);
    cr_assert(target, "%s", gv_last_error());
    size_t m;
    char *flax = golden("train_state.msgpack", &m);
    gv_tree *state = gv_flax_from_bytes(target, flax, m);
    cr_assert(state, "%s", gv_last_error());
    cr_assert_eq(*(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(state, "step")), 2);

    gv_tensor *x = arange(GV_F32, GV_DIMS(2, 4), 0.3, -1.0), *y = arange(GV_F32, GV_DIMS(2, 3), -0.2, 0.5);
    step_ctx ctx = {tx};
    gv_jit *jit = gv_jit_new(train_step, &ctx, NULL);
    gv_tree *in = gv_tree_new_tuple(), *out = NULL;
    GVT_OK(gv_tree_append(in, gv_tree_clone(state)));
    GVT_OK(gv_tree_append_tensor(in, x));
    GVT_OK(gv_tree_append_tensor(in, y));
    GVT_OK(gv_jit_call(jit, in, &out));
    size_t mnext;
    char *next = golden("train_state_next.msgpack", &mnext);
    gv_tree *want = gv_flax_msgpack_restore(next, mnext);
    cr_assert(want, "%s", gv_last_error());
    const char *names[2] = {"kernel", "bias"};
    for (int k = 0; k < 2; k++) {
        char path[32];
        snprintf(path, sizeof path, "0/params/%s", names[k]);
        const gv_tensor *a = gv_tree_get_tensor(out, path), *b = gv_tree_get_tensor(want, names[k]);
        cr_assert(a && b && gv_tensor_same_shape(a, b));
        const float *pa = gv_tensor_data_const(a), *pb = gv_tensor_data_const(b);
        for (int64_t i = 0; i < gv_tensor_size(a); i++)
            cr_assert(fabsf(pa[i] - pb[i]) <= 1e-6f, "%s[%lld]: grove %.9g, Flax %.9g", names[k],
                      (long long)i, pa[i], pb[i]);
    }
    cr_assert_eq(*(const int32_t *)gv_tensor_data_const(gv_tree_get_tensor(out, "0/step")), 3);
    /* and grove writes it back in Flax's layout */
    void *buf;
    size_t n;
    GVT_OK(gv_flax_to_bytes(state, &buf, &n));
    gv_tree *again = gv_flax_from_bytes(target, buf, n);
    cr_assert(again, "%s", gv_last_error());
    cr_assert_eq(n, m); /* the same tree; only the key order of params differs */
    assert_same_tree(state, again);
    free(buf);
    gv_tree_free(again);
    gv_tree_free(want), free(next), gv_tree_free(in), gv_jit_free(jit);
    gv_tensor_free(x), gv_tensor_free(y);
    gv_tree_free(state), free(flax), gv_tree_free(target), gv_tree_free(params);
    gv_transform_free(tx);
}

/* ---- files ---- */

TestSuite(flax_file, .init = NULL);

Test(flax_file, save_restore_and_refusals) {
    gvt_tmpdir_make("flax");
    char *path = gvt_tmp_path("state.msgpack");
    gv_tree *t = arrays_tree();
    GVT_OK(gv_flax_save(path, t, false));
    cr_assert_eq(gv_flax_save(path, t, false), GV_ERR_EXISTS);
    GVT_OK(gv_flax_save(path, t, true));
    gv_tree *r = gv_flax_restore(path, t);
    cr_assert(r, "%s", gv_last_error());
    assert_same_tree(t, r);
    gv_tree_free(r);
    char *missing = gvt_tmp_path("missing.msgpack");
    cr_assert_null(gv_flax_restore(missing, NULL));
    cr_assert_eq(gv_last_status(), GV_ERR_NOT_FOUND);
    cr_assert(strstr(gv_last_error(), missing), "%s", gv_last_error());
    cr_assert_null(gv_flax_restore(gvt_tmpdir, NULL));
    cr_assert_eq(gv_last_status(), GV_ERR_IO);
    /* a shape-only tree has nothing to write, and nothing is written */
    gv_tree *abstract = gv_tree_to_shape_dtype_struct(t);
    char *other = gvt_tmp_path("abstract.msgpack");
    cr_assert_eq(gv_flax_save(other, abstract, false), GV_ERR_ARG);
    cr_assert_null(gv_flax_restore(other, NULL));
    cr_assert_eq(gv_last_status(), GV_ERR_NOT_FOUND);
    /* a truncated file names itself */
    size_t n;
    char *bytes = gvt_read_file(path, &n);
    gvt_write_file(other, bytes, n - 1);
    cr_assert_null(gv_flax_restore(other, NULL));
    cr_assert_eq(gv_last_status(), GV_ERR_FORMAT);
    cr_assert(strstr(gv_last_error(), other) && strstr(gv_last_error(), "truncated"), "%s",
              gv_last_error());
    free(bytes), free(other), gv_tree_free(abstract), free(missing), gv_tree_free(t), free(path);
    gvt_tmpdir_remove();
}

/* ---- malformed input ---- */

typedef struct bytes {
    unsigned char b[512];
    size_t n;
} bytes;

static void add(bytes *s, const char *hex) { /* "82 a1 61" */
    for (const char *p = hex; *p;) {
        if (*p == ' ') { p++; continue; }
        unsigned v;
        sscanf(p, "%2x", &v);
        s->b[s->n++] = (unsigned char)v;
        p += 2;
    }
}

static void add_str(bytes *s, const char *str) {
    size_t n = strlen(str);
    s->b[s->n++] = (unsigned char)(0xa0 | n);
    memcpy(s->b + s->n, str, n);
    s->n += n;
}

/* {"w": ndarray(shape, dtype, data)} with the payload written by hand */
static bytes ndarray_doc(const char *shape_hex, const char *dtype, const char *data_hex) {
    bytes payload = {0}, doc = {0};
    add(&payload, "93");
    add(&payload, shape_hex);
    add_str(&payload, dtype);
    add(&payload, data_hex);
    add(&doc, "81");
    add_str(&doc, "w");
    doc.b[doc.n++] = 0xc7;
    doc.b[doc.n++] = (unsigned char)payload.n;
    doc.b[doc.n++] = 1;
    memcpy(doc.b + doc.n, payload.b, payload.n);
    doc.n += payload.n;
    return doc;
}

static void refused(const bytes *s, gv_status want, const char *words) {
    gv_tree *t = gv_flax_msgpack_restore(s->b, s->n);
    cr_assert_null(t, "accepted input that should fail with '%s'", words);
    cr_assert_eq(gv_last_status(), want, "%s: got %s: %s", words, gv_status_name(gv_last_status()),
                 gv_last_error());
    cr_assert(strstr(gv_last_error(), words), "expected '%s' in: %s", words, gv_last_error());
}

Test(flax_malformed, every_kind_is_an_error_with_a_message) {
    bytes s = {0};
    refused(&s, GV_ERR_FORMAT, "empty");
    s = (bytes){0}, add(&s, "dd ff ff ff ff");
    refused(&s, GV_ERR_FORMAT, "elements, but only");
    s = (bytes){0}, add(&s, "df 7f ff ff ff");
    refused(&s, GV_ERR_FORMAT, "elements, but only");
    s = (bytes){0}, add(&s, "c6 ff ff ff ff 00");
    refused(&s, GV_ERR_FORMAT, "truncated");
    s = (bytes){0}, add(&s, "c1");
    refused(&s, GV_ERR_FORMAT, "not a msgpack type");
    s = (bytes){0}, add(&s, "80 00");
    refused(&s, GV_ERR_FORMAT, "after the end");
    s = (bytes){0}, add(&s, "81 01 02");
    refused(&s, GV_ERR_FORMAT, "str keys");
    s = (bytes){0}, add(&s, "82 a1 61 01 a1 61 02");
    refused(&s, GV_ERR_FORMAT, "appears twice");
    s = (bytes){0}, add(&s, "81 a3 61 2f 62 01");
    refused(&s, GV_ERR_FORMAT, "holds '/'");
    s = (bytes){0}, add(&s, "81 a1 61 c0");
    refused(&s, GV_ERR_UNSUPPORTED, "None");
    s = (bytes){0}, add(&s, "81 a1 61 c4 01 00");
    refused(&s, GV_ERR_UNSUPPORTED, "bytes");
    s = (bytes){0}, add(&s, "81 a1 61 d4 09 00");
    refused(&s, GV_ERR_FORMAT, "ext type 9");
    s = (bytes){0}, add(&s, "81 a1 61 d4 01 00");
    refused(&s, GV_ERR_FORMAT, "[shape, dtype, bytes]");
    s = ndarray_doc("91 02", "float32", "c4 04 00 00 80 3f");
    refused(&s, GV_ERR_FORMAT, "needs 8 bytes");
    s = ndarray_doc("91 02", "float16", "c4 04 00 3c 00 3c");
    refused(&s, GV_ERR_UNSUPPORTED, "float16");
    s = ndarray_doc("91 02", "floot32", "c4 08 00 00 00 00 00 00 00 00");
    refused(&s, GV_ERR_FORMAT, "not a numpy dtype");
    s = ndarray_doc("91 ff", "float32", "c4 00");
    refused(&s, GV_ERR_FORMAT, "dim 0");
    s = ndarray_doc("92 cf 7f ff ff ff ff ff ff ff 04", "float32", "c4 00");
    refused(&s, GV_ERR_FORMAT, "more than 2^64");
    s = ndarray_doc("91 02", "bool", "c4 02 01 02");
    refused(&s, GV_ERR_FORMAT, "not 0 or 1");
    s = ndarray_doc("91 02", "float32", "c4 09 00 00 00 00 00 00 00 00");
    refused(&s, GV_ERR_FORMAT, "'msgpack bytes': w: ndarray payload: truncated at byte 11");
    /* accepted: the same document well formed */
    s = ndarray_doc("91 02", "float32", "c4 08 00 00 80 3f 00 00 00 c0");
    gv_tree *ok = gv_flax_msgpack_restore(s.b, s.n);
    cr_assert(ok, "%s", gv_last_error());
    const float *w = gv_tensor_data_const(gv_tree_get_tensor(ok, "w"));
    cr_assert(w[0] == 1.0f && w[1] == -2.0f);
    gv_tree_free(ok);
}

Test(flax_malformed, nesting_depth_is_bounded) {
    bytes s = {0};
    for (int d = 0; d < GV_FLAX_MAX_DEPTH; d++) add(&s, "81 a1 61");
    add(&s, "07");
    gv_tree *t = gv_flax_msgpack_restore(s.b, s.n); /* exactly the limit: fine */
    cr_assert(t, "%s", gv_last_error());
    gv_tree_free(t);
    s = (bytes){0};
    for (int d = 0; d <= GV_FLAX_MAX_DEPTH; d++) add(&s, "81 a1 61");
    add(&s, "07");
    refused(&s, GV_ERR_FORMAT, "nested more than");
    s = (bytes){0};
    for (int d = 0; d < 100; d++) add(&s, "91");
    add(&s, "07");
    refused(&s, GV_ERR_FORMAT, "nested more than");
}

Test(flax_malformed, every_truncation_of_a_flax_file) {
    size_t m;
    char *flax = golden("train_state.msgpack", &m);
    for (size_t n = 0; n < m; n++) {
        gv_tree *t = gv_flax_msgpack_restore(flax, n);
        cr_assert_null(t, "a %zu-byte prefix of a %zu-byte file was accepted", n, m);
        cr_assert_eq(gv_last_status(), GV_ERR_FORMAT, "prefix %zu: %s", n, gv_last_error());
    }
    /* and every single-byte change is either an error or a tree, never a crash */
    for (size_t i = 0; i < m; i++) {
        unsigned char saved = (unsigned char)flax[i];
        flax[i] = (char)(saved ^ 0xff);
        gv_tree_free(gv_flax_msgpack_restore(flax, m));
        flax[i] = (char)saved;
    }
    free(flax);
}

Test(flax_malformed, target_mismatches_name_the_path) {
    size_t m;
    char *flax = golden("arrays.msgpack", &m);
    gv_tree *t = arrays_tree();
    GVT_OK(gv_tree_insert_tensor(t, "params/dense/extra", gv_tree_get_tensor(t, "params/dense/bias")));
    cr_assert_null(gv_flax_from_bytes(t, flax, m));
    cr_assert_eq(gv_last_status(), GV_ERR_STRUCTURE);
    cr_assert(strstr(gv_last_error(), "params/dense"), "%s", gv_last_error());
    GVT_OK(gv_tree_remove(t, "params/dense/extra"));
    GVT_OK(gv_tree_remove(t, "params/dense/bias"));
    cr_assert_null(gv_flax_from_bytes(t, flax, m));
    cr_assert(strstr(gv_last_error(), "key 'bias' is in the file but not in the target"), "%s",
              gv_last_error());
    gv_tree_free(t);
    t = arrays_tree();
    set(t, "params/dense/bias", gv_tensor_zeros(GV_F32, GV_DIMS(5)));
    cr_assert_null(gv_flax_from_bytes(t, flax, m));
    cr_assert(strstr(gv_last_error(), "params/dense/bias: target float32 (5,) vs file float32 (4,)"),
              "%s", gv_last_error());
    gv_tree_free(t);
    free(flax);
}
