/* gv_checkpointer_*: safetensors round trips (every dtype, rank 0, empty
 * tensors and subtrees, lists and tuples, 10 MB), restore_into and its
 * mismatch messages, every malformed-file case on crafted files, OS errors,
 * the atomic write under a simulated ENOSPC, and interop with Python (numpy
 * reading our files, numpy-written safetensors files read by us). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/format_internal.h"
#include "grove/checkpoint.h"
#include "checkpoint/io_internal.h"
#include "testutil.h"

#define SCRIPT_DIR GROVE_TEST_DATA_DIR "/../checkpoint"

/* ---- helpers -------------------------------------------------------------- */

static void make_tmpdir(void) { gvt_tmpdir_make("ckpt"); }
static void remove_tmpdir(void) { gvt_tmpdir_remove(); }

TestSuite(checkpointer, .init = make_tmpdir, .fini = remove_tmpdir);

static char *tpath(const char *name) { return gvt_tmp_path(name); }


static void put(gv_tree *t, const char *path, gv_tensor *x) {
    GVT_OK(gv_tree_insert_tensor(t, path, x));
    gv_tensor_free(x);
}

/* arange(n) reshaped, in any dtype (bool: alternating). */
static gv_tensor *ar(gv_dtype dt, int rank, const int64_t *shape, double start) {
    gv_tensor *t = GVT_NN(gv_tensor_zeros(dt, rank, shape));
    /* one assertion per tensor, not per element: with --full-stats Criterion
     * reports every passing assertion to its runner */
    gv_status st = GV_OK;
    for (int64_t i = 0; i < gv_tensor_size(t) && !st; i++)
        st = gv_tensor_set_flat(t, i, dt == GV_BOOL ? (double)(i % 2) : start + (double)i);
    GVT_OK(st);
    return t;
}

/* Every leaf equal (dtype, shape, values) and the same structure, kinds included. */
static void assert_same_tree(const gv_tree *a, const gv_tree *b) {
    GVT_OK(gv_tree_check_same(a, b, "round trip"));
    char first[256];
    int n = gvt_tree_diff(a, b, first, sizeof first);
    cr_assert_eq(n, 0, "%d leaves differ, first %s", n, first);
    /* insertion order too: the printed forms agree */
    char *ra = GVT_NN(gv_tree_repr(a, NULL)), *rb = GVT_NN(gv_tree_repr(b, NULL));
    cr_assert_str_eq(ra, rb);
    free(ra), free(rb);
}

/* The tree every interop test uses; read_checkpoint.py knows its values. */
static gv_tree *sample_tree(void) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    put(t, "params/dense/kernel", ar(GV_F32, GV_DIMS(3, 4), 0));
    put(t, "params/dense/bias", ar(GV_F64, GV_DIMS(4), -2));
    put(t, "step", ar(GV_I64, 0, NULL, 7));
    put(t, "ints/i32", ar(GV_I32, GV_DIMS(2, 3), -3));
    put(t, "ints/u8", ar(GV_U8, GV_DIMS(5), 250));
    put(t, "ints/u16", ar(GV_U16, GV_DIMS(2), 65534));
    put(t, "ints/u32", ar(GV_U32, GV_DIMS(2), 4294967294.0));
    put(t, "ints/u64", ar(GV_U64, GV_DIMS(2), 1e15));
    put(t, "ints/i64", ar(GV_I64, GV_DIMS(2), -5e14));
    put(t, "mask", ar(GV_BOOL, GV_DIMS(4), 0));
    put(t, "empty", ar(GV_F32, GV_DIMS(0, 3), 0));
    GVT_OK(gv_tree_insert(t, "nothing", GVT_NN(gv_tree_new_dict())));
    gv_tree *opt = GVT_NN(gv_tree_new_tuple());
    gv_tree *mu = GVT_NN(gv_tree_new_list());
    gv_tensor *x = ar(GV_F32, GV_DIMS(2), 10);
    GVT_OK(gv_tree_append_tensor(mu, x));
    gv_tensor_free(x);
    GVT_OK(gv_tree_append(mu, GVT_NN(gv_tree_new_tuple())));
    GVT_OK(gv_tree_append(opt, mu));
    x = ar(GV_I32, 0, NULL, 3);
    GVT_OK(gv_tree_append_tensor(opt, x));
    gv_tensor_free(x);
    GVT_OK(gv_tree_insert(t, "opt_state", opt));
    return t;
}

/* Save a small valid grove file and return its bytes. */
static unsigned char *sample_bytes(size_t *len) {
    gv_tree *t = sample_tree();
    char *p = tpath("sample.safetensors");
    GVT_OK(gv_checkpointer_save(p, t, true));
    unsigned char *buf = (unsigned char *)gvt_read_file(p, len);
    gv_tree_free(t);
    free(p);
    return buf;
}

/* A safetensors file from a header text (padded with spaces) and data. */
static unsigned char *craft(const char *header, const void *data, size_t dlen, size_t *len) {
    size_t h = strlen(header), padded = (h + 7) & ~(size_t)7;
    *len = 8 + padded + dlen;
    unsigned char *buf = malloc(*len + 1);
    cr_assert_not_null(buf);
    for (int b = 0; b < 8; b++) buf[b] = (unsigned char)(((uint64_t)padded >> (8 * b)) & 0xff);
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', padded - h);
    if (dlen) memcpy(buf + 8 + padded, data, dlen);
    return buf;
}

/* Both readers refuse the bytes with status and a message containing needle. */
static void expect_bad_status(const unsigned char *buf, size_t len, gv_status status,
                              const char *needle) {
    char *p = tpath("bad.safetensors");
    gvt_write_file(p, buf, len);
    GVT_NULL(gv_checkpointer_restore(p), status, needle);
    cr_assert(strstr(gv_last_error(), p), "message '%s' does not name the file", gv_last_error());
    GVT_NULL(gv_safetensors_parse_buffer(buf, len, "buf", NULL), status, needle);
    free(p);
}

static void expect_bad(const unsigned char *buf, size_t len, const char *needle) {
    expect_bad_status(buf, len, GV_ERR_FORMAT, needle);
}

static void expect_bad_header(const char *header, const void *data, size_t dlen,
                              const char *needle) {
    size_t len;
    unsigned char *buf = craft(header, data, dlen, &len);
    expect_bad(buf, len, needle);
    free(buf);
}

static bool has_tmp_files(void) {
    DIR *d = opendir(gvt_tmpdir);
    cr_assert_not_null(d);
    struct dirent *e;
    bool found = false;
    while ((e = readdir(d)))
        if (strstr(e->d_name, GV_ATOMIC_TMP_MARKER)) found = true;
    closedir(d);
    return found;
}

/* ---- round trips ---------------------------------------------------------- */

Test(checkpointer, round_trip_every_dtype_and_kind) {
    gv_tree *t = sample_tree();
    char *p = tpath("a.safetensors");
    GVT_OK(gv_checkpointer_save(p, t, false));
    gv_tree *r = GVT_NN(gv_checkpointer_restore(p));
    assert_same_tree(t, r);
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(r, "opt_state")), GV_TREE_TUPLE);
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(r, "opt_state/0")), GV_TREE_LIST);
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(r, "opt_state/0/1")), GV_TREE_TUPLE);
    cr_assert_eq(gv_tree_num_children(gv_tree_get(r, "nothing")), 0);
    cr_assert_eq(gv_tensor_rank(gv_tree_get_tensor(r, "step")), 0);
    cr_assert_eq(gv_tensor_size(gv_tree_get_tensor(r, "empty")), 0);
    gv_tree_free(t), gv_tree_free(r);
    free(p);
}

Test(checkpointer, round_trip_root_leaf_and_empty_trees) {
    char *p = tpath("leaf.safetensors");
    gv_tensor *x = ar(GV_F64, 0, NULL, 2.5);
    gv_tree *t = GVT_NN(gv_tree_new_leaf(x));
    GVT_OK(gv_checkpointer_save(p, t, false));
    gv_tree *r = GVT_NN(gv_checkpointer_restore(p));
    assert_same_tree(t, r);
    cr_assert(gv_tree_is_leaf(r));
    size_t len;
    char *bytes = gvt_read_file(p, &len);
    cr_assert(strstr(bytes + 8, "\"" GV_ST_ROOT_NAME "\""));
    free(bytes);
    gv_tree_free(t), gv_tree_free(r), gv_tensor_free(x);

    gv_tree *empties[3] = {gv_tree_new_dict(), gv_tree_new_list(), gv_tree_new_tuple()};
    for (int i = 0; i < 3; i++) {
        GVT_OK(gv_checkpointer_save(p, empties[i], true));
        r = GVT_NN(gv_checkpointer_restore(p));
        assert_same_tree(empties[i], r);
        cr_assert_eq(gv_tree_kind_of(r), gv_tree_kind_of(empties[i]));
        gv_tree_free(r), gv_tree_free(empties[i]);
    }
    free(p);
}

Test(checkpointer, round_trip_10mb) {
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "layers/%d/w", i);
        put(t, name, ar(GV_F32, GV_DIMS(512, 512), i * 1000.0)); /* 1 MiB each */
    }
    char *p = tpath("big.safetensors");
    GVT_OK(gv_checkpointer_save(p, t, false));
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_gt(sb.st_size, 10 * 1024 * 1024);
    gv_tree *r = GVT_NN(gv_checkpointer_restore(p));
    assert_same_tree(t, r);
    gv_tree_free(t), gv_tree_free(r);
    free(p);
}

Test(checkpointer, header_layout_is_safetensors) {
    size_t len;
    unsigned char *buf = sample_bytes(&len);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--) n = (n << 8) | buf[b];
    cr_assert_eq((8 + n) % 8, 0, "header padded to 8");
    char *text = strndup((char *)buf + 8, n);
    json_object *h = GVT_NN(json_tokener_parse(text));
    free(text);
    json_object *meta, *v;
    cr_assert(json_object_object_get_ex(h, "__metadata__", &meta));
    cr_assert(json_object_object_get_ex(meta, "format", &v));
    cr_assert_str_eq(json_object_get_string(v), "grove");
    cr_assert(json_object_object_get_ex(meta, "checksum_algorithm", &v));
    cr_assert_str_eq(json_object_get_string(v), "crc32");
    cr_assert(json_object_object_get_ex(h, "params/dense/kernel", &v));
    cr_assert(!json_object_object_get_ex(h, "nothing", &v), "empty subtrees live in the structure");
    json_object_put(h);
    free(buf);
}

/* ---- restore_into ----------------------------------------------------------- */

Test(checkpointer, restore_into_matches_target) {
    gv_tree *t = sample_tree();
    char *p = tpath("a.safetensors");
    GVT_OK(gv_checkpointer_save(p, t, false));
    gv_tree *target = GVT_NN(gv_tree_zeros_like(t));
    gv_tree *r = GVT_NN(gv_checkpointer_restore_into(p, target));
    assert_same_tree(t, r);
    /* the target is not modified */
    double v;
    GVT_OK(gv_tensor_get_flat(gv_tree_get_tensor(target, "params/dense/kernel"), 5, &v));
    cr_assert_eq(v, 0.0);
    gv_tree_free(t), gv_tree_free(r), gv_tree_free(target);
    free(p);
}

Test(checkpointer, restore_into_mismatches) {
    gv_tree *t = sample_tree();
    char *p = tpath("a.safetensors");
    GVT_OK(gv_checkpointer_save(p, t, false));

    gv_tree *bad = GVT_NN(gv_tree_zeros_like(t)); /* shape */
    gv_tensor *x = ar(GV_F64, GV_DIMS(5), 0);
    GVT_OK(gv_tree_set_tensor(bad, "params/dense/bias", x));
    gv_tensor_free(x);
    GVT_NULL(gv_checkpointer_restore_into(p, bad), GV_ERR_STRUCTURE, "params/dense/bias");
    cr_assert(strstr(gv_last_error(), "(5,)") && strstr(gv_last_error(), "(4,)"), "%s",
              gv_last_error());
    cr_assert(strstr(gv_last_error(), p));
    gv_tree_free(bad);

    bad = GVT_NN(gv_tree_zeros_like(t)); /* dtype */
    x = ar(GV_I32, GV_DIMS(4), 0);
    GVT_OK(gv_tree_set_tensor(bad, "params/dense/bias", x));
    gv_tensor_free(x);
    GVT_NULL(gv_checkpointer_restore_into(p, bad), GV_ERR_STRUCTURE, "dtype");
    gv_tree_free(bad);

    bad = GVT_NN(gv_tree_zeros_like(t)); /* missing key in the target */
    GVT_OK(gv_tree_remove(bad, "mask"));
    GVT_NULL(gv_checkpointer_restore_into(p, bad), GV_ERR_STRUCTURE, "mask");
    gv_tree_free(bad);

    bad = GVT_NN(gv_tree_zeros_like(t)); /* extra key in the target */
    put(bad, "params/dense/extra", ar(GV_F32, GV_DIMS(1), 0));
    GVT_NULL(gv_checkpointer_restore_into(p, bad), GV_ERR_STRUCTURE, "extra");
    gv_tree_free(bad);

    /* a tuple is never turned into a list: same leaves, other kind */
    bad = GVT_NN(gv_tree_zeros_like(t));
    gv_tree *opt = GVT_NN(gv_tree_pop(bad, "opt_state"));
    gv_tree *as_list = GVT_NN(gv_tree_new_list());
    while (gv_tree_num_children(opt)) GVT_OK(gv_tree_append(as_list, GVT_NN(gv_tree_pop(opt, "0"))));
    gv_tree_free(opt);
    GVT_OK(gv_tree_insert(bad, "opt_state", as_list));
    GVT_NULL(gv_checkpointer_restore_into(p, bad), GV_ERR_STRUCTURE, "opt_state");
    cr_assert(strstr(gv_last_error(), "tuple") && strstr(gv_last_error(), "list"), "%s",
              gv_last_error());
    gv_tree_free(bad);

    GVT_NULL(gv_checkpointer_restore_into(p, NULL), GV_ERR_ARG, "target");
    gv_tree_free(t);
    free(p);
}

/* ---- shape-only (jax.eval_shape) targets ----------------------------------------- */

static const int64_t MLP_DIMS[2] = {16, 3};
static gv_feedforward_cfg MLP_CFG = {MLP_DIMS, 2, NULL, true};
static const gv_module MLP = {&gv_FeedForward, &MLP_CFG};

/* Every element of every leaf set to a value of its own, so that a restore
 * from the wrong place, or zeros, cannot pass for the saved tree. */
static gv_status scribble(const char *path, const gv_tree *leaf, void *ud) {
    gv_tensor *t = gv_tree_leaf_tensor(leaf);
    double *k = ud;
    gv_status st = GV_OK;
    for (int64_t i = 0; i < gv_tensor_size(t) && st == GV_OK; i++)
        st = gv_tensor_set_flat(t, i, (*k += 0.37) - 40.0);
    (void)path;
    return st;
}

/* A train state of the MLP (adamw), its moments written over, and the
 * shape-only target a fresh process would make for it: no init, no data. */
static void train_state_and_target(gv_tree **state, gv_tree **target, int64_t hidden) {
    gv_tensor *x = GVT_NN(gv_tensor_ones(GV_F32, GV_DIMS(4, 5)));
    gv_tree *args = GVT_NN(gv_args_tensors(&x, 1));
    gv_tree *vars = GVT_NN(gv_init(&MLP, gv_prng_key(3), args, NULL));
    gv_transform *tx = GVT_NN(gv_adamw(.learning_rate = 1e-3));
    gv_tree *created = GVT_NN(gv_train_state_create(tx, gv_tree_get(vars, "params")));
    *state = GVT_NN(gv_tree_copy(created)); /* its own tensors: vars' are shared */
    gv_tree_free(created);
    double k = 0;
    GVT_OK(gv_tree_foreach_leaf(*state, scribble, &k));

    int64_t dims[2] = {hidden, 3};
    gv_feedforward_cfg cfg = {dims, 2, NULL, true};
    gv_module other = {&gv_FeedForward, &cfg};
    gv_tensor *xs = GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(4, 5)));
    gv_tree *sargs = GVT_NN(gv_args_tensors(&xs, 1));
    gv_tree *shapes = GVT_NN(gv_eval_shape_init(&other, gv_prng_key(0), sargs, NULL));
    *target = GVT_NN(gv_eval_shape_train_state(tx, gv_tree_get(shapes, "params")));
    gv_tree_free(shapes), gv_tree_free(sargs), gv_tensor_free(xs);
    gv_transform_free(tx);
    gv_tree_free(vars), gv_tree_free(args), gv_tensor_free(x);
}

Test(checkpointer, restore_into_eval_shape_target_is_bit_identical) {
    gv_tree *state, *target;
    train_state_and_target(&state, &target, 16);
    char *p = tpath("state.safetensors");
    GVT_OK(gv_checkpointer_save(p, state, false));
    cr_assert(gv_tensor_is_abstract(gv_tree_get_tensor(target, "params/Dense_0/kernel")));
    gv_tree *got = GVT_NN(gv_checkpointer_restore_into(p, target));
    assert_same_tree(state, got);
    cr_assert(!gv_tensor_is_abstract(gv_tree_get_tensor(got, "params/Dense_0/kernel")));
    gv_tree_free(got);
    gv_tree_free(target);
    gv_tree_free(state);
    free(p);
}

Test(checkpointer, abstract_target_mismatch_names_the_path) {
    gv_tree *state, *target;
    train_state_and_target(&state, &target, 12); /* hidden 12, saved 16 */
    char *p = tpath("state.safetensors");
    GVT_OK(gv_checkpointer_save(p, state, false));
    GVT_NULL(gv_checkpointer_restore_into(p, target), GV_ERR_STRUCTURE, "Dense_0/bias");
    cr_assert(strstr(gv_last_error(), "(12,)") && strstr(gv_last_error(), "(16,)"), "%s",
              gv_last_error());
    gv_tree_free(target);
    gv_tree_free(state);
    free(p);
}

Test(checkpointer, shape_only_leaves_are_not_saved) {
    gv_tree *t = sample_tree();
    put(t, "params/dense/ghost", GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(2, 3))));
    char *p = tpath("ghost.safetensors");
    GVT_FAILS(gv_checkpointer_save(p, t, false), GV_ERR_ARG,
              "params/dense/ghost: the leaf is shape-only (ShapeDtypeStruct float32[2,3])");
    cr_assert(strstr(gv_last_error(), p), "%s", gv_last_error());
    cr_assert_neq(access(p, F_OK), 0, "a file was written");
    gv_tree_free(t);
    free(p);
}

/* ---- malformed files --------------------------------------------------------- */

Test(checkpointer, short_files_and_bad_lengths) {
    unsigned char zeros[16] = {0};
    for (size_t n = 0; n < 8; n++) expect_bad(zeros, n, "shorter than the 8-byte");
    /* length 0 */
    expect_bad(zeros, 16, "too short");
    /* wrong magic: a zip file's first bytes read as a huge length */
    unsigned char zip[64] = "PK\x03\x04\x14\x00\x00\x00\x08\x00";
    expect_bad(zip, sizeof zip, "100 MB");
    /* 2^63 */
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    expect_bad(huge, sizeof huge, "100 MB");
    /* over the 100 MB limit but under 2^32 */
    unsigned char big[16] = {0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0, '{', '}'}; /* 100000001 */
    expect_bad(big, sizeof big, "over the 100 MB limit");
    /* longer than the file */
    unsigned char longer[16] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    expect_bad(longer, sizeof longer, "more than the 8 bytes after it");
}

Test(checkpointer, truncated_at_every_offset) {
    size_t len;
    unsigned char *buf = sample_bytes(&len);
    for (size_t cut = 0; cut < len; cut++) {
        gv_clear_error();
        gv_tree *t = gv_safetensors_parse_buffer(buf, cut, "cut", NULL);
        if (t || gv_last_status() != GV_ERR_FORMAT || !strstr(gv_last_error(), "'cut'"))
            cr_assert_fail("truncated at %zu of %zu: %s", cut, len, t ? "accepted" : gv_last_error());
    }
    /* and through the file reader, at a few offsets */
    size_t cuts[] = {3, 8, 20, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        char *p = tpath("cut.safetensors");
        gvt_write_file(p, buf, cuts[i]);
        GVT_NULL(gv_checkpointer_restore(p), GV_ERR_FORMAT, p);
        free(p);
    }
    /* one byte too many */
    unsigned char *more = malloc(len + 1);
    memcpy(more, buf, len);
    more[len] = 0;
    expect_bad(more, len + 1, "trailing or missing bytes");
    free(more), free(buf);
}

Test(checkpointer, flipped_bytes) {
    size_t len;
    unsigned char *buf = sample_bytes(&len);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--) n = (n << 8) | buf[b];
    /* every byte of the data region: the checksum catches it */
    for (size_t i = 8 + n; i < len; i++) {
        buf[i] ^= 0x10;
        gv_clear_error();
        gv_tree *t = gv_safetensors_parse_buffer(buf, len, "flip", NULL);
        if (t || !(strstr(gv_last_error(), "checksum mismatch") || strstr(gv_last_error(), "bool byte")))
            cr_assert_fail("flip at %zu accepted or wrong error: %s", i, gv_last_error());
        buf[i] ^= 0x10;
    }
    char *p = tpath("flip.safetensors");
    buf[len - 1] ^= 1;
    gvt_write_file(p, buf, len);
    GVT_NULL(gv_checkpointer_restore(p), GV_ERR_FORMAT, "checksum mismatch");
    buf[len - 1] ^= 1;
    /* every header byte, every bit: never a crash; most flips are refused */
    for (size_t i = 0; i < 8 + n; i++)
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (unsigned char)(1 << bit);
            gv_tree *t = gv_safetensors_parse_buffer(buf, len, "flip", NULL);
            gv_tree_free(t);
            buf[i] ^= (unsigned char)(1 << bit);
        }
    free(p), free(buf);
}

static const char F32x2[] = "\"dtype\":\"F32\",\"shape\":[2]";

Test(checkpointer, bad_headers) {
    float d[4] = {1, 2, 3, 4};
    char h[512];
    expect_bad_header("not json", NULL, 0, "does not start with '{'");
    expect_bad_header("[1,2]", NULL, 0, "does not start with '{'");
    expect_bad_header("{\"a\":", NULL, 0, "not valid JSON");
    expect_bad_header("{\"a\":{}} x", NULL, 0, "not valid JSON");
    expect_bad_header("{\"a\":1}", NULL, 0, "is not an object");
    expect_bad_header("{'a':{}}", NULL, 0, "bad key"); /* json-c's strict mode takes it */
    expect_bad_header("{\"a\":{\"dtype\":'F32',\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4,
                      "not valid JSON");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],}}", d, 4,
                      "not valid JSON");
    /* duplicate names, also spelled with escapes */
    snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[0,8]},\"a\":{%s,\"data_offsets\":[8,16]}}",
             F32x2, F32x2);
    expect_bad_header(h, d, 16, "duplicate name 'a'");
    snprintf(h, sizeof h, "{\"ab\":{%s,\"data_offsets\":[0,8]},\"\\u0061b\":{%s,\"data_offsets\":[8,16]}}",
             F32x2, F32x2);
    expect_bad_header(h, d, 16, "duplicate name 'ab'");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                      d, 4, "duplicate name 'dtype'");
    expect_bad_header("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4,
                      "\\u0000");
    /* dtype and shape */
    expect_bad_header("{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4,
                      "unknown dtype 'F17'");
    expect_bad_header("{\"a\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4,
                      "dtype is not a string");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", d, 4,
                      "shape[0] is not an integer >= 0");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", d, 4,
                      "shape[0] is not an integer");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", d, 4,
                      "shape is not an array");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                      "\"data_offsets\":[0,4]}}", d, 4, "element count overflows");
    expect_bad_header("{\"a\":{\"dtype\":\"U64\",\"shape\":[4611686018427387904],"
                      "\"data_offsets\":[0,4]}}", d, 4, "need");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],"
                      "\"data_offsets\":[0,4]}}", d, 4, "a");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", d, 4, "missing data_offsets");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", d, 4,
                      "unknown field 'x'");
    /* offsets */
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", d, 4,
                      "outside");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", d, 4,
                      "outside the 4-byte data region");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", d, 4,
                      "not [begin, end]");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", d, 4,
                      "not [begin, end]");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", d, 4,
                      "need 2 elements but data_offsets span 4 bytes");
    snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[0,8]},\"b\":{%s,\"data_offsets\":[4,12]}}",
             F32x2, F32x2);
    expect_bad_header(h, d, 16, "overlap");
    snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[0,8]},\"b\":{%s,\"data_offsets\":[0,8]}}",
             F32x2, F32x2);
    expect_bad_header(h, d, 8, "overlap");
    snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[8,16]}}", F32x2);
    expect_bad_header(h, d, 16, "leave a gap");
    snprintf(h, sizeof h, "{\"a\":{%s,\"data_offsets\":[0,8]}}", F32x2);
    expect_bad_header(h, d, 12, "trailing or missing bytes");
    /* bool bytes */
    unsigned char bools[2] = {1, 2};
    expect_bad_header("{\"m\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", bools, 2,
                      "bool byte 2");
    /* unsupported (valid safetensors) dtype */
    size_t len;
    unsigned char *buf = craft("{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", d,
                               4, &len);
    expect_bad_status(buf, len, GV_ERR_UNSUPPORTED, "BF16");
    free(buf);
    /* a NUL byte inside the header */
    buf = craft("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4, &len);
    buf[12] = 0;
    expect_bad(buf, len, "NUL byte in the header at byte 12");
    free(buf);
    /* invalid UTF-8 in a name */
    expect_bad_header("{\"\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4,
                      "not valid JSON");
}

/* Grove metadata with a fixed data region: a = [1, 2] f32, checksum of it. */
static void bad_meta(const char *meta, const char *needle, gv_status status) {
    float d[2] = {1, 2};
    char h[1024];
    snprintf(h, sizeof h, "{\"__metadata__\":{%s},\"a\":{%s,\"data_offsets\":[0,8]}}", meta, F32x2);
    size_t len;
    unsigned char *buf = craft(h, d, 8, &len);
    expect_bad_status(buf, len, status, needle);
    free(buf);
}

Test(checkpointer, bad_metadata) {
    /* find the real checksum of [1, 2] by saving it */
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    put(t, "a", ar(GV_F32, GV_DIMS(2), 1));
    char *p = tpath("m.safetensors");
    GVT_OK(gv_checkpointer_save(p, t, false));
    size_t len;
    char *bytes = gvt_read_file(p, &len);
    char *c = strstr(bytes + 8, "\"checksum\":\"");
    cr_assert_not_null(c);
    char sum[9];
    memcpy(sum, c + 12, 8);
    sum[8] = '\0';
    free(bytes), free(p);
    gv_tree_free(t);

    char m[512];
#define GROVE_META(structure, checksum)                                                          \
    (snprintf(m, sizeof m,                                                                      \
              "\"format\":\"grove\",\"version\":\"1\",\"byte_order\":\"little\","               \
              "\"checksum_algorithm\":\"crc32\",\"checksum\":\"%s\",\"structure\":\"%s\"",      \
              checksum, structure),                                                             \
     m)
    /* a consistent file restores */
    {
        float d[2] = {1, 2};
        char h[1024];
        snprintf(h, sizeof h, "{\"__metadata__\":{%s},\"a\":{%s,\"data_offsets\":[0,8]}}",
                 GROVE_META("{\\\"dict\\\":[[\\\"a\\\",\\\"a\\\"]]}", sum), F32x2);
        unsigned char *buf = craft(h, d, 8, &len);
        gv_tree *r = GVT_NN(gv_safetensors_parse_buffer(buf, len, "ok", NULL));
        gv_tree_free(r);
        free(buf);
    }
    bad_meta(GROVE_META("{\\\"dict\\\":[[\\\"a\\\",\\\"a\\\"]]}", "00000000"), "checksum mismatch",
             GV_ERR_FORMAT);
    bad_meta(GROVE_META("{\\\"dict\\\":[[\\\"a\\\",\\\"b\\\"]]}", sum), "names tensor 'b'",
             GV_ERR_FORMAT);
    bad_meta(GROVE_META("{\\\"dict\\\":[]}", sum), "entry 'a' is not in the structure", GV_ERR_FORMAT);
    bad_meta(GROVE_META("{\\\"dict\\\":[[\\\"a\\\",\\\"a\\\"],[\\\"a\\\",\\\"a\\\"]]}", sum),
             "used twice", GV_ERR_FORMAT);
    bad_meta(GROVE_META("{\\\"list\\\":[\\\"a\\\"]}", sum), "expected '0'", GV_ERR_FORMAT);
    bad_meta(GROVE_META("{\\\"set\\\":[]}", sum), "bad node at <root>", GV_ERR_FORMAT);
    bad_meta(GROVE_META("{\\\"dict\\\":[[\\\"x/y\\\",\\\"a\\\"]]}", sum), "bad key", GV_ERR_FORMAT);
    bad_meta(GROVE_META("{\\\"dict\\\":[[\\\"a\\\"]]}", sum), "bad dict item", GV_ERR_FORMAT);
    bad_meta(GROVE_META("{\\\"dict\\\":", sum), "structure is not valid JSON", GV_ERR_FORMAT);
    bad_meta("\"format\":\"grove\",\"version\":\"2\"", "version '2'", GV_ERR_UNSUPPORTED);
    bad_meta("\"format\":\"grove\",\"version\":\"1\"", "checksum", GV_ERR_FORMAT);
    bad_meta("\"format\":\"grove\",\"version\":1", "is not a string", GV_ERR_FORMAT);
    /* a deep structure is bounded, not a stack overflow */
    {
        size_t depth = 5000, cap = depth * 20 + 256;
        char *s = malloc(cap), *q = s;
        for (size_t i = 0; i < depth; i++) q += sprintf(q, "{\\\"list\\\":[");
        for (size_t i = 0; i < depth; i++) q += sprintf(q, "]}");
        *q = '\0';
        char *meta = malloc(cap + 512), *h = malloc(cap + 1024);
        sprintf(meta, "\"format\":\"grove\",\"version\":\"1\",\"byte_order\":\"little\","
                      "\"checksum_algorithm\":\"crc32\",\"checksum\":\"00000000\",\"structure\":\"%s\"", s);
        sprintf(h, "{\"__metadata__\":{%s}}", meta);
        unsigned char *buf = craft(h, NULL, 0, &len);
        expect_bad(buf, len, "structure is not valid JSON");
        free(buf), free(s), free(meta), free(h);
    }
#undef GROVE_META
}

/* ---- the OS ------------------------------------------------------------------ */

Test(checkpointer, missing_paths_and_existing_files) {
    char *p = tpath("none.safetensors");
    GVT_NULL(gv_checkpointer_restore(p), GV_ERR_NOT_FOUND, p);
    cr_assert(strstr(gv_last_error(), "No such file"));
    GVT_NULL(gv_checkpointer_restore(gvt_tmpdir), GV_ERR_IO, "directory");
    free(p);

    gv_tree *t = sample_tree();
    p = tpath("no/such/dir/x.safetensors");
    GVT_FAILS(gv_checkpointer_save(p, t, false), GV_ERR_NOT_FOUND, "no/such/dir/x.safetensors");
    cr_assert(strstr(gv_last_error(), "No such file"));
    free(p);

    /* an existing file is refused without force, and left as it was */
    p = tpath("exists.safetensors");
    gvt_write_file(p, "keep", 4);
    GVT_FAILS(gv_checkpointer_save(p, t, false), GV_ERR_EXISTS, "already exists");
    size_t len;
    char *bytes = gvt_read_file(p, &len);
    cr_assert_eq(len, 4);
    free(bytes);
    GVT_OK(gv_checkpointer_save(p, t, true));
    gv_tree *r = GVT_NN(gv_checkpointer_restore(p));
    assert_same_tree(t, r);
    gv_tree_free(r);
    cr_assert(!has_tmp_files());
    free(p);

    GVT_FAILS(gv_checkpointer_save(NULL, t, false), GV_ERR_ARG, "path");
    GVT_FAILS(gv_checkpointer_save("x", NULL, false), GV_ERR_ARG, "tree is NULL");
    gv_tree_free(t);
}

Test(checkpointer, unwritable_directory) {
    gv_tree *t = sample_tree();
    char *p;
    if (geteuid() == 0) {
        /* root ignores permissions: a path under a regular file gives ENOTDIR */
        char *file = tpath("plain");
        gvt_write_file(file, "x", 1);
        p = tpath("plain/x.safetensors");
        GVT_FAILS(gv_checkpointer_save(p, t, false), GV_ERR_IO, "Not a directory");
        free(file);
    } else {
        char *dir = tpath("ro");
        cr_assert_eq(mkdir(dir, 0555), 0);
        p = tpath("ro/x.safetensors");
        GVT_FAILS(gv_checkpointer_save(p, t, false), GV_ERR_IO, "Permission denied");
        free(dir);
    }
    cr_assert(strstr(gv_last_error(), p), "%s", gv_last_error());
    free(p);
    gv_tree_free(t);
}

Test(checkpointer, label_leaves_and_reserved_names_are_refused) {
    char *p = tpath("x.safetensors");
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    GVT_OK(gv_tree_insert(t, "lr", GVT_NN(gv_tree_new_label("adam"))));
    GVT_FAILS(gv_checkpointer_save(p, t, false), GV_ERR_ARG, "lr");
    gv_tree_free(t);
    t = GVT_NN(gv_tree_new_dict());
    put(t, "__metadata__", ar(GV_F32, GV_DIMS(1), 0));
    GVT_FAILS(gv_checkpointer_save(p, t, false), GV_ERR_ARG, "reserved");
    gv_tree_free(t);
    cr_assert_eq(access(p, F_OK), -1);
    cr_assert(!has_tmp_files());
    free(p);
}

/* Fault injection: write(2) fails with ENOSPC once `budget` bytes are written. */
typedef struct fault {
    size_t budget;
    int write_errno, fsync_errno;
} fault;

static ssize_t failing_write(int fd, const void *buf, size_t count, void *ud) {
    fault *f = ud;
    if (f->budget == 0) {
        errno = f->write_errno;
        return -1;
    }
    size_t n = count < f->budget ? count : f->budget; /* a short write first */
    f->budget -= n;
    return write(fd, buf, n);
}

static int failing_fsync(int fd, void *ud) {
    fault *f = ud;
    if (f->fsync_errno) {
        errno = f->fsync_errno;
        return -1;
    }
    return fsync(fd);
}

Test(checkpointer, write_failure_keeps_the_previous_file) {
    gv_tree *old = sample_tree();
    char *p = tpath("state.safetensors");
    GVT_OK(gv_checkpointer_save(p, old, false));
    gv_tree *next = GVT_NN(gv_tree_new_dict());
    put(next, "w", ar(GV_F32, GV_DIMS(1000), 5));

    size_t budgets[] = {0, 1, 8, 100, 3000};
    for (size_t i = 0; i < sizeof budgets / sizeof *budgets; i++) {
        fault f = {.budget = budgets[i], .write_errno = ENOSPC};
        gv_atomic_io_set_hooks(&(gv_atomic_io_hooks){.write = failing_write, .userdata = &f});
        GVT_FAILS(gv_checkpointer_save(p, next, true), GV_ERR_IO, "No space left on device");
        gv_atomic_io_set_hooks(NULL);
        cr_assert(strstr(gv_last_error(), p), "%s", gv_last_error());
        gv_tree *r = GVT_NN(gv_checkpointer_restore(p));
        assert_same_tree(old, r);
        gv_tree_free(r);
        cr_assert(!has_tmp_files(), "temporary file left after budget %zu", budgets[i]);
    }
    /* EIO from fsync */
    fault f = {.budget = SIZE_MAX, .fsync_errno = EIO};
    gv_atomic_io_set_hooks(&(gv_atomic_io_hooks){.write = failing_write, .fsync = failing_fsync,
                                                 .userdata = &f});
    GVT_FAILS(gv_checkpointer_save(p, next, true), GV_ERR_IO, "fsync");
    gv_atomic_io_set_hooks(NULL);
    cr_assert(strstr(gv_last_error(), "Input/output error"), "%s", gv_last_error());
    gv_tree *r = GVT_NN(gv_checkpointer_restore(p));
    assert_same_tree(old, r);
    gv_tree_free(r);
    cr_assert(!has_tmp_files());
    /* and a save that works replaces it */
    GVT_OK(gv_checkpointer_save(p, next, true));
    r = GVT_NN(gv_checkpointer_restore(p));
    assert_same_tree(next, r);
    gv_tree_free(r), gv_tree_free(old), gv_tree_free(next);
    free(p);
}

Test(checkpointer, atomic_write_helper) {
    char *p = tpath("blob");
    const void *chunks[] = {"abc", NULL, "defg"};
    size_t sizes[] = {3, 0, 4};
    GVT_OK(gv_atomic_write_file(p, chunks, sizes, 3, false));
    size_t len;
    char *b = gvt_read_file(p, &len);
    cr_assert_eq(len, 7);
    cr_assert_str_eq(b, "abcdefg");
    free(b);
    GVT_FAILS(gv_atomic_write_file(p, chunks, sizes, 3, false), GV_ERR_EXISTS, "already exists");
    GVT_OK(gv_atomic_write_file(p, chunks, sizes, 1, true));
    b = gvt_read_file(p, &len);
    cr_assert_str_eq(b, "abc");
    free(b);
    GVT_OK(gv_atomic_write_file(p, NULL, NULL, 0, true));
    b = gvt_read_file(p, &len);
    cr_assert_eq(len, 0);
    free(b);
    const void *bad[] = {NULL};
    size_t bad_size[] = {1};
    GVT_FAILS(gv_atomic_write_file(p, bad, bad_size, 1, true), GV_ERR_ARG, "chunk 0");
    free(p);
}

/* ---- Python interop -------------------------------------------------------------- */

static void need_numpy(void) {
    if (access("/usr/bin/python3", X_OK) != 0) cr_skip_test("no /usr/bin/python3");
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
        cr_skip_test("python3-numpy is not installed");
}

Test(checkpointer, python_numpy_reads_grove_files) {
    need_numpy();
    gv_tree *t = sample_tree();
    char *p = tpath("for_python.safetensors");
    GVT_OK(gv_checkpointer_save(p, t, false));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/read_checkpoint.py %s", SCRIPT_DIR, p);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    gv_tree_free(t);
    free(p);
}

Test(checkpointer, reads_files_written_by_python) {
    need_numpy();
    char *p = tpath("from_python.safetensors");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/write_checkpoint.py %s", SCRIPT_DIR, p);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    bool grove = true;
    gv_tree *r = GVT_NN(gv_safetensors_read_file(p, &grove));
    cr_assert(!grove);
    gv_tree_free(r);
    r = GVT_NN(gv_checkpointer_restore(p));
    /* nested dicts from the names */
    cr_assert_eq(gv_tree_kind_of(gv_tree_get(r, "encoder/layer_0")), GV_TREE_DICT);
    gv_tensor *w = GVT_NN(gv_tree_get_tensor(r, "encoder/layer_0/weight"));
    cr_assert_eq(gv_tensor_dtype(w), GV_F32);
    cr_assert_eq(gv_tensor_rank(w), 2);
    cr_assert_eq(gv_tensor_shape(w)[0], 2);
    cr_assert_eq(gv_tensor_shape(w)[1], 3);
    double v;
    for (int64_t i = 0; i < 6; i++) {
        GVT_OK(gv_tensor_get_flat(w, i, &v));
        cr_assert_eq(v, 0.5 * (double)i);
    }
    gv_tensor *b = GVT_NN(gv_tree_get_tensor(r, "encoder/layer_0/bias"));
    cr_assert_eq(gv_tensor_dtype(b), GV_F64);
    GVT_OK(gv_tensor_get_flat(b, 2, &v));
    cr_assert_eq(v, -1.0);
    gv_tensor *h = GVT_NN(gv_tree_get_tensor(r, "head/w"));
    cr_assert_eq(gv_tensor_dtype(h), GV_I64);
    GVT_OK(gv_tensor_get_flat(h, 3, &v));
    cr_assert_eq(v, 3e12);
    gv_tensor *c = GVT_NN(gv_tree_get_tensor(r, "count"));
    cr_assert_eq(gv_tensor_rank(c), 0);
    GVT_OK(gv_tensor_get_flat(c, 0, &v));
    cr_assert_eq(v, 42);
    gv_tensor *m = GVT_NN(gv_tree_get_tensor(r, "mask"));
    cr_assert_eq(gv_tensor_dtype(m), GV_BOOL);
    GVT_OK(gv_tensor_get_flat(m, 1, &v));
    cr_assert_eq(v, 0);
    gv_tensor *u = GVT_NN(gv_tree_get_tensor(r, "u8"));
    GVT_OK(gv_tensor_get_flat(u, 2, &v));
    cr_assert_eq(v, 255);
    gv_tensor *e = GVT_NN(gv_tree_get_tensor(r, "empty"));
    cr_assert_eq(gv_tensor_size(e), 0);

    /* restore_into a target with a tuple: matched by path, the kind comes
     * from the target (the file has no kinds to contradict it) */
    gv_tree *target = GVT_NN(gv_tree_zeros_like(r));
    gv_tree *hd = GVT_NN(gv_tree_pop(target, "head"));
    gv_tree_free(hd);
    gv_tree *tup = GVT_NN(gv_tree_new_tuple());
    gv_tensor *z = GVT_NN(gv_tensor_zeros(GV_I64, GV_DIMS(2, 2)));
    GVT_OK(gv_tree_append_tensor(tup, z));
    gv_tensor_free(z);
    GVT_OK(gv_tree_insert(target, "head", tup));
    /* "head/0" is not in the file: refused, naming the path */
    GVT_NULL(gv_checkpointer_restore_into(p, target), GV_ERR_STRUCTURE, "head/0");
    gv_tree_free(target);
    target = GVT_NN(gv_tree_zeros_like(r));
    gv_tree *into = GVT_NN(gv_checkpointer_restore_into(p, target));
    assert_same_tree(r, into);
    gv_tree_free(into);
    z = GVT_NN(gv_tensor_zeros(GV_I64, GV_DIMS(4)));
    GVT_OK(gv_tree_set_tensor(target, "head/w", z));
    gv_tensor_free(z);
    GVT_NULL(gv_checkpointer_restore_into(p, target), GV_ERR_STRUCTURE, "head/w");
    cr_assert(strstr(gv_last_error(), "(4,)") && strstr(gv_last_error(), "(2, 2)"), "%s",
              gv_last_error());
    gv_tree_free(target);
    gv_tree_free(r);
    free(p);
}

/* gv_write_file_atomic: any bytes, with the checkpoints' protocol */
Test(checkpointer, write_file_atomic) {
    char *p = gvt_tmp_path("notes.txt");
    GVT_OK(gv_write_file_atomic(p, "one", 3, false));
    cr_assert_eq(gv_write_file_atomic(p, "two", 3, false), GV_ERR_EXISTS);
    GVT_OK(gv_write_file_atomic(p, "three", 5, true));
    size_t n;
    char *text = gvt_read_file(p, &n);
    cr_assert(n == 5 && memcmp(text, "three", 5) == 0);
    free(text);
    char *missing = gvt_tmp_path("no-such-dir/notes.txt");
    cr_assert_eq(gv_write_file_atomic(missing, "x", 1, false), GV_ERR_NOT_FOUND);
    cr_assert(strstr(gv_last_error(), "no-such-dir"), "%s", gv_last_error());
    free(missing), free(p);
}

/* Only the temporaries of writers that are gone are removed, and only ours */
Test(checkpointer, remove_stale_temporaries) {
    char self[96];
    snprintf(self, sizeof self, "b.png.tmp-%ld-0123456789abcdef", (long)getpid());
    const char *stale[] = {"a.safetensors.tmp-999999999-0123456789abcdef", self,
                           "x.tmp-y.tmp-999999999-fedcba9876543210"};
    const char *kept[] = {"c.png.tmp-1-0123456789abcdef",     /* pid 1 runs */
                          "d.png.tmp-999999999-0123456789abcdeg", /* not hex */
                          "e.png.tmp-999999999-0123456789abcde",  /* 15 digits */
                          ".tmp-999999999-0123456789abcdef",      /* no name before it */
                          "f.txt", "g.tmp.12345"};
    for (size_t i = 0; i < 3; i++) {
        char *p = gvt_tmp_path(stale[i]);
        gvt_write_file(p, "x", 1);
        free(p);
    }
    for (size_t i = 0; i < 6; i++) {
        char *p = gvt_tmp_path(kept[i]);
        gvt_write_file(p, "x", 1);
        free(p);
    }
    char *dir = gvt_tmp_path("h.tmp-999999999-0123456789abcdef"); /* a directory: not ours */
    cr_assert_eq(mkdir(dir, 0755), 0);
    size_t n = 99;
    GVT_OK(gv_remove_stale_temporaries(gvt_tmpdir, &n));
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < 3; i++) {
        char *p = gvt_tmp_path(stale[i]);
        cr_assert_neq(access(p, F_OK), 0, "%s was not removed", stale[i]);
        free(p);
    }
    for (size_t i = 0; i < 6; i++) {
        char *p = gvt_tmp_path(kept[i]);
        cr_assert_eq(access(p, F_OK), 0, "%s was removed", kept[i]);
        free(p);
    }
    cr_assert_eq(access(dir, F_OK), 0);
    free(dir);
    cr_assert_eq(gv_remove_stale_temporaries("/nonexistent-grove-dir", NULL), GV_ERR_NOT_FOUND);
}
