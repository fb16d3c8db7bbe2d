/* Exactness: where a plan does the same float operations in the same order
 * as the reference evaluation (fused elementwise chains, reductions), the
 * results are identical bit for bit; and the PRNG as graph ops gives exactly
 * the numbers of the eager samplers (random.h). */
#include <string.h>

#include "testutil.h"

static gv_tree *chain(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x = gv_tree_get_value(in, "x"), b = gv_tree_get_value(in, "b");
    gv_value h = gv_relu(gv_add(x, b));
    gv_value s = gv_sigmoid(gv_mul(h, gv_tanh(x)));
    gv_value e = gv_exp(gv_sub(s, gv_max(s, (int[]){1}, 1, true)));
    gv_value sm = gv_div(e, gv_sum(e, (int[]){1}, 1, true));
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "softmax", sm);
    gv_tree_insert_value(out, "colsum", gv_sum(gv_square(gv_sub(h, x)), (int[]){0}, 1, false));
    gv_tree_insert_value(out, "sel", gv_select(gv_gt(x, b), gv_sqrt(gv_abs(x)), gv_neg(b)));
    /* a middle axis: reductions into consecutive outputs per outer index,
     * and a [10, 1, 257] operand broadcast back */
    gv_value r = gv_reshape(gv_mul(h, x), GV_DIMS(10, 30, 257));
    gv_value m = gv_exp(gv_sub(r, gv_max(r, (int[]){1}, 1, true)));
    gv_tree_insert_value(out, "mid", gv_add(gv_sum(m, (int[]){1}, 1, false), gv_min(r, (int[]){1}, 1, false)));
    return out;
}

Test(exact, fused_plan_is_bit_identical_to_reference) {
    gv_tensor *x = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(1), GV_DIMS(300, 257)));
    gv_tensor *b = GVT_NN(gv_random_normal_eager(GV_PRNG_DEFAULT, gv_prng_key(2), GV_DIMS(257)));
    gv_tree *in = gv_tree_new_dict();
    GVT_OK(gv_tree_insert_tensor(in, "x", x));
    GVT_OK(gv_tree_insert_tensor(in, "b", b));
    gv_fn *f = GVT_NN(gv_trace(chain, NULL, in));
    gv_tree *ref = NULL;
    GVT_OK(gv_fn_eval(f, in, &ref));
    for (int threads = 1; threads <= 2; threads++) {
        gv_plan_options o = {.threads = threads};
        gv_plan *p = GVT_NN(gv_plan_compile(f, &o));
        gv_plan_stats st = gv_plan_get_stats(p);
        cr_assert_eq(st.gemms, 0);
        cr_assert_lt(st.kernels, st.nodes_optimized, "fusion merged kernels");
        gv_tree *out = GVT_NN(gv_plan_new_outputs(p));
        GVT_OK(gv_plan_run(p, in, out));
        const char *names[4] = {"softmax", "colsum", "sel", "mid"};
        for (int k = 0; k < 4; k++) {
            gv_tensor *a = gv_tree_get_tensor(out, names[k]), *r = gv_tree_get_tensor(ref, names[k]);
            cr_assert(memcmp(gv_tensor_data_const(a), gv_tensor_data_const(r), gv_tensor_nbytes(r)) == 0,
                      "%s differs from the reference (%d threads)", names[k], threads);
        }
        gv_tree_free(out);
        gv_plan_free(p);
    }
    gv_tree_free(ref), gv_fn_free(f), gv_tree_free(in);
    gv_tensor_free(x), gv_tensor_free(b);
}

static gv_tree *sample(gv_graph *g, const gv_tree *in, void *ud) {
    gv_prng_impl impl = *(gv_prng_impl *)ud;
    gv_value key = gv_tree_get_value(in, "key");
    gv_value keys = gv_random_split(impl, key, 3);
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "keys", keys);
    gv_tree_insert_value(out, "u", gv_random_uniform(impl, gv_key_at(keys, 0), GV_DIMS(4, 5), -1.0f, 2.0f));
    gv_tree_insert_value(out, "n", gv_random_normal(impl, gv_key_at(keys, 1), GV_DIMS(33)));
    gv_tree_insert_value(out, "t", gv_random_truncated_normal(impl, gv_key_at(keys, 2), -2.0f, 2.0f, GV_DIMS(7)));
    gv_tree_insert_value(out, "b", gv_random_bernoulli(impl, gv_random_fold_in(key, 7), 0.3f, GV_DIMS(50)));
    return out;
}

Test(exact, prng_ops_match_eager_samplers) {
    for (gv_prng_impl impl = GV_PRNG_PARTITIONABLE; impl <= GV_PRNG_LEGACY; impl++) {
        gv_key k = gv_prng_key(42), ks[3];
        gv_tensor *kt = GVT_NN(gv_tensor_from_data(GV_U32, GV_DIMS(2), k.k, sizeof k.k));
        gv_tree *in = gv_tree_new_dict();
        GVT_OK(gv_tree_insert_tensor(in, "key", kt));
        gv_fn *f = GVT_NN(gv_trace(sample, &impl, in));
        gv_plan *p = GVT_NN(gv_plan_compile(f, NULL));
        gv_tree *out = GVT_NN(gv_plan_new_outputs(p));
        GVT_OK(gv_plan_run(p, in, out));
        GVT_OK(gv_random_split_eager(impl, k, 3, ks));
        gv_tensor *want[4] = {
            gv_random_uniform_eager(impl, ks[0], GV_DIMS(4, 5), -1.0f, 2.0f),
            gv_random_normal_eager(impl, ks[1], GV_DIMS(33)),
            gv_random_truncated_normal_eager(impl, ks[2], -2.0f, 2.0f, GV_DIMS(7)),
            gv_random_bernoulli_eager(impl, gv_random_fold_in_eager(k, 7), 0.3f, GV_DIMS(50))};
        const char *names[4] = {"u", "n", "t", "b"};
        for (int i = 0; i < 4; i++)
            cr_assert(gv_tensor_equal(gv_tree_get_tensor(out, names[i]), want[i]),
                      "%s differs (scheme %d)", names[i], (int)impl);
        const uint32_t *pk = gv_tensor_data_const(gv_tree_get_tensor(out, "keys"));
        for (int i = 0; i < 3; i++) cr_assert(pk[2 * i] == ks[i].k[0] && pk[2 * i + 1] == ks[i].k[1]);
        for (int i = 0; i < 4; i++) gv_tensor_free(want[i]);
        gv_tree_free(out), gv_plan_free(p), gv_fn_free(f), gv_tree_free(in), gv_tensor_free(kt);
    }
}
