/* gv_tensor_repr / gv_tensor_str against numpy 1.24 and JAX.
 *
 * The golden strings in tests/golden/print_cases.json come from
 * tests/golden/make_print_golden.py (numpy's array2string and str, JAX's
 * Array.__repr__ formula); every case is rebuilt here bit for bit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static json_object *field(json_object *obj, const char *key) {
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(obj, key, &v), "golden case lacks \"%s\"", key);
    return v;
}

/* The tensor a golden case describes: floats are hex bit patterns, integers
 * decimal strings, bools "0"/"1". */
static gv_tensor *golden_tensor(json_object *c, const char *name) {
    gv_dtype dtype;
    GVT_OK(gv_dtype_from_name(json_object_get_string(field(c, "dtype")), &dtype));
    json_object *shape_js = field(c, "shape"), *data_js = field(c, "data");
    int rank = (int)json_object_array_length(shape_js);
    int64_t shape[8];
    cr_assert(rank <= 8, "%s: rank %d", name, rank);
    for (int a = 0; a < rank; a++)
        shape[a] = json_object_get_int64(json_object_array_get_idx(shape_js, (size_t)a));
    size_t n = json_object_array_length(data_js), esize = gv_dtype_size(dtype);
    unsigned char *buf = malloc(n * esize + 1);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(data_js, i));
        char *end;
        errno = 0;
        uint64_t u = gv_dtype_is_float(dtype) ? strtoull(s, &end, 16)
                     : s[0] == '-'           ? (uint64_t)strtoll(s, &end, 10)
                                             : strtoull(s, &end, 10);
        cr_assert(errno == 0 && *end == '\0', "%s: bad data item '%s'", name, s);
        /* little-endian store of the low esize bytes keeps every dtype exact */
        switch (esize) {
        case 1: buf[i] = (uint8_t)u; break;
        case 2: ((uint16_t *)buf)[i] = (uint16_t)u; break;
        case 4: ((uint32_t *)buf)[i] = (uint32_t)u; break;
        default: ((uint64_t *)buf)[i] = u; break;
        }
    }
    gv_tensor *t = GVT_NN(gv_tensor_from_data(dtype, rank, shape, buf, n * esize));
    free(buf);
    return t;
}

static gv_print_options golden_options(json_object *c) {
    gv_print_options o = gv_print_options_default();
    json_object *opts;
    if (!json_object_object_get_ex(c, "options", &opts)) return o;
    json_object *v;
    if (json_object_object_get_ex(opts, "precision", &v)) o.precision = json_object_get_int(v);
    if (json_object_object_get_ex(opts, "linewidth", &v)) o.linewidth = json_object_get_int(v);
    if (json_object_object_get_ex(opts, "threshold", &v)) o.threshold = json_object_get_int64(v);
    if (json_object_object_get_ex(opts, "edgeitems", &v)) o.edgeitems = json_object_get_int(v);
    return o;
}

static int check_string(const char *name, const char *what, const char *got,
                        const char *want) {
    if (got && strcmp(got, want) == 0) return 0;
    cr_log_error("%s: %s differs\n--- expected (numpy/JAX) ---\n%s\n--- got ---\n%s\n", name,
                 what, want, got ? got : "(NULL)");
    return 1;
}

/* Runs every case whose options presence matches with_options. */
static void run_golden(bool with_options) {
    char *path = gvt_golden_path("print_cases.json");
    json_object *cases = gvt_load_json(path);
    free(path);
    size_t n = json_object_array_length(cases);
    int failures = 0, ran = 0;
    for (size_t k = 0; k < n; k++) {
        json_object *c = json_object_array_get_idx(cases, k), *opts;
        if (json_object_object_get_ex(c, "options", &opts) != with_options) continue;
        const char *name = json_object_get_string(field(c, "name"));
        gv_tensor *t = golden_tensor(c, name);
        gv_print_options o = golden_options(c);
        /* with default options, NULL must mean the same */
        char *repr = gv_tensor_repr(t, with_options ? &o : NULL);
        char *str = gv_tensor_str(t, with_options ? &o : NULL);
        failures += check_string(name, "repr", repr,
                                 json_object_get_string(field(c, "repr")));
        failures += check_string(name, "str", str, json_object_get_string(field(c, "str")));
        if (!with_options) {
            char *repr2 = gv_tensor_repr(t, &o);
            failures += check_string(name, "repr with explicit defaults", repr2, repr);
            free(repr2);
        }
        free(repr), free(str);
        gv_tensor_free(t);
        ran++;
    }
    json_object_put(cases);
    cr_assert(ran >= (with_options ? 10 : 40), "only %d golden cases ran", ran);
    cr_assert_eq(failures, 0, "%d of %d golden strings differ (see the log above)", failures,
                 2 * ran);
}

Test(print_golden, default_options) { run_golden(false); }
Test(print_golden, with_options) { run_golden(true); }

Test(print, options_default) {
    gv_print_options o = gv_print_options_default();
    cr_assert_eq(o.precision, 8);
    cr_assert_eq(o.linewidth, 75);
    cr_assert_eq(o.threshold, 1000);
    cr_assert_eq(o.edgeitems, 3);
}

Test(print, small_examples) {
    float v[] = {1, 2, 3, 4};
    gv_tensor *t = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(2, 2), v, sizeof v));
    char *r = GVT_NN(gv_tensor_repr(t, NULL)), *s = GVT_NN(gv_tensor_str(t, NULL));
    cr_assert_str_eq(r, "Array([[1., 2.],\n       [3., 4.]], dtype=float32)");
    cr_assert_str_eq(s, "[[1. 2.]\n [3. 4.]]");
    free(r), free(s);
    gv_tensor_free(t);
}

Test(print, precision_option) {
    double v[] = {3.14159265358979, 0.5};
    gv_tensor *t = GVT_NN(gv_tensor_from_data(GV_F64, GV_DIMS(2), v, sizeof v));
    gv_print_options o = gv_print_options_default();
    o.precision = 4;
    char *s = GVT_NN(gv_tensor_str(t, &o));
    cr_assert_str_eq(s, "[3.1416 0.5   ]");
    free(s);
    gv_tensor_free(t);
}

Test(print, linewidth_and_threshold_options) {
    gv_tensor *t = GVT_NN(gv_tensor_arange(GV_I32, 0, 12, 1));
    gv_print_options o = gv_print_options_default();
    o.linewidth = 20;
    char *s = GVT_NN(gv_tensor_str(t, &o));
    cr_assert_str_eq(s, "[ 0  1  2  3  4  5\n  6  7  8  9 10 11]");
    free(s);
    o = gv_print_options_default();
    o.threshold = 5;
    o.edgeitems = 2;
    s = GVT_NN(gv_tensor_repr(t, &o));
    cr_assert_str_eq(s, "Array([ 0,  1, ..., 10, 11], dtype=int32)");
    free(s);
    gv_tensor_free(t);
}

Test(print, null_and_bad_arguments) {
    GVT_NULL(gv_tensor_repr(NULL, NULL), GV_ERR_ARG, "gv_tensor_repr");
    GVT_NULL(gv_tensor_str(NULL, NULL), GV_ERR_ARG, "gv_tensor_str");
    GVT_FAILS(gv_tensor_print(stdout, NULL), GV_ERR_ARG, "gv_tensor_print: tensor is NULL");
    gv_tensor *t = GVT_NN(gv_tensor_scalar(GV_F32, 1));
    GVT_FAILS(gv_tensor_print(NULL, t), GV_ERR_ARG, "FILE");
    gv_print_options o = gv_print_options_default();
    o.precision = -1;
    GVT_NULL(gv_tensor_str(t, &o), GV_ERR_ARG, "precision");
    o = gv_print_options_default();
    o.edgeitems = -2;
    GVT_NULL(gv_tensor_repr(t, &o), GV_ERR_ARG, "edgeitems");
    gv_tensor_free(t);
}

Test(print, print_writes_repr_and_newline) {
    int32_t v[] = {-1, 20, 300};
    gv_tensor *t = GVT_NN(gv_tensor_from_data(GV_I32, GV_DIMS(3), v, sizeof v));
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    GVT_OK(gv_tensor_print(f, t));
    rewind(f);
    char buf[128] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    char *r = GVT_NN(gv_tensor_repr(t, NULL));
    cr_assert_eq(n, strlen(r) + 1);
    cr_assert(strncmp(buf, r, strlen(r)) == 0 && buf[n - 1] == '\n', "wrote '%s'", buf);
    cr_assert_str_eq(r, "Array([ -1,  20, 300], dtype=int32)");
    free(r);
    gv_tensor_free(t);
}

/* print(jax.ShapeDtypeStruct((2, 3), jnp.float32)), whatever the options */
Test(print, shape_dtype_struct) {
    struct {
        gv_tensor *t;
        const char *want;
    } cases[] = {
        {gv_shape_dtype_struct(GV_F32, GV_DIMS(2, 3)),
         "ShapeDtypeStruct(shape=(2, 3), dtype=float32)"},
        {gv_shape_dtype_struct(GV_I64, GV_DIMS(4)), "ShapeDtypeStruct(shape=(4,), dtype=int64)"},
        {gv_shape_dtype_struct(GV_BOOL, 0, NULL), "ShapeDtypeStruct(shape=(), dtype=bool)"},
        {gv_shape_dtype_struct(GV_F64, GV_DIMS(0, 5)),
         "ShapeDtypeStruct(shape=(0, 5), dtype=float64)"},
    };
    gv_print_options o = gv_print_options_default();
    o.threshold = 1;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_not_null(cases[i].t, "%s", gv_last_error());
        char *r = GVT_NN(gv_tensor_repr(cases[i].t, &o));
        char *s = GVT_NN(gv_tensor_str(cases[i].t, NULL));
        cr_assert_str_eq(r, cases[i].want);
        cr_assert_str_eq(s, cases[i].want);
        free(r), free(s);
        gv_tensor_free(cases[i].t);
    }
    /* and inside a tree, as print(jax.eval_shape(...)) shows it */
    gv_tree *t = GVT_NN(gv_tree_new_dict());
    gv_tensor *w = GVT_NN(gv_shape_dtype_struct(GV_F32, GV_DIMS(3)));
    GVT_OK(gv_tree_insert_tensor(t, "w", w));
    char *r = GVT_NN(gv_tree_repr(t, NULL));
    cr_assert_str_eq(r, "{'w': ShapeDtypeStruct(shape=(3,), dtype=float32)}");
    free(r);
    gv_tensor_free(w);
    gv_tree_free(t);
}
