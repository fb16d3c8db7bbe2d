/* Optimised plans against the reference evaluation on generated graphs:
 * random chains of elementwise ops with broadcasting, reductions, reshapes,
 * transposes and matmuls, and their gradients. Within 1e-5 relative (the
 * passes may reorder float operations only in GEMMs and folded constants). */
#include <math.h>
#include <string.h>

#include "testutil.h"

typedef struct rng {
    uint64_t s;
} rng;

static uint32_t next(rng *r) {
    r->s ^= r->s << 13, r->s ^= r->s >> 7, r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 11);
}

/* Keep values in a tame range so exp/div stay finite. */
static gv_value tame(gv_value x) { return gv_tanh(x); }

static gv_value random_op(rng *r, gv_value *pool, int n) {
    gv_value a = pool[next(r) % (uint32_t)n], b = pool[next(r) % (uint32_t)n];
    int ra = gv_value_rank(a);
    switch (next(r) % 16) {
    case 0: return gv_add(a, b);
    case 1: return gv_sub(a, b);
    case 2: return gv_mul(a, b);
    case 3: return gv_div(a, gv_add_scalar(gv_abs(b), 1.0));
    case 4: return gv_maximum(a, b);
    case 5: return gv_minimum(a, gv_mul_scalar(b, 0.5));
    case 6: return gv_exp(tame(a));
    case 7: return gv_sigmoid(a);
    case 8: return gv_relu(gv_sub(a, b));
    case 9: return gv_select(gv_gt(a, b), a, gv_square(b));
    case 10: return gv_sqrt(gv_add_scalar(gv_square(a), 1.0));
    case 11: return ra > 0 ? gv_sum(a, (int[]){ra - 1}, 1, true) : gv_neg(a);
    case 12: return ra > 0 ? gv_mean(a, (int[]){0}, 1, true) : gv_abs(a);
    case 13: return ra == 2 ? gv_transpose(gv_transpose(a, NULL), NULL) : gv_tanh(a);
    case 14:
        if (ra >= 2 && gv_value_shape(a)[ra - 1] == 5 && gv_value_rank(b) <= 2) {
            /* a @ M with M = bb^T bb, [5,5]: batch broadcasting and a folded transpose */
            gv_value bb = gv_tanh(gv_broadcast_to(b, GV_DIMS(4, 5)));
            return gv_matmul(a, gv_matmul(gv_transpose(bb, NULL), bb));
        }
        return gv_log1p(gv_square(a));
    default: return gv_mul_scalar(gv_add_scalar(a, 1.0), 1.0); /* simplifiable */
    }
}

static gv_tree *random_fn(gv_graph *g, const gv_tree *in, void *ud) {
    rng r = {*(uint64_t *)ud};
    gv_value pool[40];
    int n = 0;
    const char *names[] = {"a", "b", "c", "d"};
    for (int k = 0; k < 4; k++) pool[n++] = gv_tree_get_value(in, names[k]);
    int steps = 8 + (int)(next(&r) % 16);
    for (int k = 0; k < steps && n < 40; k++) {
        gv_value v = random_op(&r, pool, n);
        pool[n++] = v;
    }
    /* outputs: the last value, and a scalar loss over everything made */
    gv_tree *out = gv_tree_new_dict();
    gv_tree_insert_value(out, "last", pool[n - 1]);
    gv_value loss = gv_scalar(g, GV_F32, 0.0);
    for (int k = 4; k < n; k++) loss = gv_add(loss, gv_mean(pool[k], NULL, 0, false));
    gv_tree_insert_value(out, "loss", loss);
    return out;
}

static gv_tree *inputs(uint32_t seed) {
    static const int64_t shapes[4][4] = {{3, 2, 4, 5}, {2, 1, 5, 0}, {1, 5, 0, 0}, {2, 4, 1, 0}};
    gv_tree *in = gv_tree_new_dict();
    const char *names[] = {"a", "b", "c", "d"};
    for (int k = 0; k < 4; k++) {
        gv_tensor *t = gv_random_normal(GV_PRNG_DEFAULT, gv_prng_key(seed * 10 + (uint32_t)k),
                                        (int)shapes[k][0], &shapes[k][1]);
        gv_tree_insert_tensor(in, names[k], t);
        gv_tensor_free(t);
    }
    return in;
}

static int compare(const gv_tree *a, const gv_tree *b, double tol, char *why, size_t n) {
    gv_tensor **la, **lb;
    size_t na, nb;
    if (gv_tree_flatten(a, &la, &na) != GV_OK || gv_tree_flatten(b, &lb, &nb) != GV_OK) return 1;
    int bad = 0;
    for (size_t i = 0; i < na && !bad; i++)
        for (int64_t k = 0; k < gv_tensor_size(la[i]) && !bad; k++) {
            double x, y;
            gv_tensor_get_flat(la[i], k, &x), gv_tensor_get_flat(lb[i], k, &y);
            if (!(fabs(x - y) <= tol * (1 + fabs(y)))) {
                snprintf(why, n, "leaf %zu element %lld: %.9g vs %.9g", i, (long long)k, x, y);
                bad = 1;
            }
        }
    free(la), free(lb);
    return bad;
}

Test(random_graphs, plan_equals_reference) {
    int checked = 0, failed = 0;
    char first[256] = "";
    for (uint64_t seed = 1; seed <= 60; seed++) {
        gv_tree *in = inputs((uint32_t)seed);
        uint64_t s = seed * 0x9E3779B97F4A7C15ull;
        gv_fn *f = gv_trace(random_fn, &s, in);
        cr_assert_not_null(f, "seed %llu: %s", (unsigned long long)seed, gv_last_error());
        gv_fn *target = f;
        gv_tree *ref = NULL, *out = NULL;
        cr_assert_eq(gv_fn_eval(target, in, &ref), GV_OK, "%s", gv_last_error());
        gv_plan *p = gv_plan_compile(target, NULL);
        cr_assert_not_null(p, "seed %llu: %s", (unsigned long long)seed, gv_last_error());
        out = gv_plan_new_outputs(p);
        cr_assert_eq(gv_plan_run(p, in, out), GV_OK, "%s", gv_last_error());
        char why[200];
        if (compare(out, ref, 1e-5, why, sizeof why)) {
            if (!failed++) snprintf(first, sizeof first, "seed %llu: %s", (unsigned long long)seed, why);
        }
        checked++;
        gv_tree_free(out), gv_tree_free(ref), gv_plan_free(p), gv_fn_free(f);
        gv_tree_free(in);
    }
    cr_assert_eq(failed, 0, "%d of %d graphs differ; first: %s", failed, checked, first);
}

/* The gradient graphs too: loss alone, differentiated, compiled. */
static gv_tree *random_loss(gv_graph *g, const gv_tree *in, void *ud) {
    gv_tree *t = random_fn(g, in, ud);
    gv_tree *l = t ? gv_tree_pop(t, "loss") : NULL;
    gv_tree_free(t);
    return l;
}

Test(random_graphs, gradient_plan_equals_reference) {
    int failed = 0;
    char first[256] = "";
    for (uint64_t seed = 1; seed <= 40; seed++) {
        gv_tree *in = inputs((uint32_t)seed);
        uint64_t s = seed * 0x9E3779B97F4A7C15ull;
        gv_fn *f = gv_trace(random_loss, &s, in);
        cr_assert_not_null(f, "%s", gv_last_error());
        gv_fn *vg = gv_value_and_grad_path(f, "", false);
        cr_assert_not_null(vg, "seed %llu: %s", (unsigned long long)seed, gv_last_error());
        gv_tree *ref = NULL;
        cr_assert_eq(gv_fn_eval(vg, in, &ref), GV_OK, "%s", gv_last_error());
        gv_plan *p = gv_plan_compile(vg, NULL);
        cr_assert_not_null(p, "%s", gv_last_error());
        gv_tree *out = gv_plan_new_outputs(p);
        cr_assert_eq(gv_plan_run(p, in, out), GV_OK, "%s", gv_last_error());
        char why[200];
        if (compare(out, ref, 1e-5, why, sizeof why) && !failed++)
            snprintf(first, sizeof first, "seed %llu: %s", (unsigned long long)seed, why);
        gv_tree_free(out), gv_tree_free(ref), gv_plan_free(p), gv_fn_free(vg), gv_fn_free(f);
        gv_tree_free(in);
    }
    cr_assert_eq(failed, 0, "%d of 40 gradient graphs differ; first: %s", failed, first);
}
