#include "mlp_step.h"

#include <stdlib.h>

static gv_tensor *init(uint32_t seed, int64_t r, int64_t c, bool bias) {
    if (bias) return gv_tensor_zeros(GV_F32, GV_DIMS(c));
    gv_initializer in = gv_init_lecun_normal();
    return gv_initializer_sample(&in, GV_PRNG_DEFAULT, gv_prng_key(seed), GV_DIMS(r, c));
}

gv_tree *mlp_example_inputs(const mlp_dims *d, uint32_t seed) {
    gv_tree *in = gv_tree_new_tuple(), *params = gv_tree_new_dict(), *batch = gv_tree_new_dict();
    int64_t dims[4] = {d->in, d->h1, d->h2, d->out};
    for (int l = 0; l < 3; l++) {
        char w[8], b[8];
        snprintf(w, sizeof w, "w%d", l + 1);
        snprintf(b, sizeof b, "b%d", l + 1);
        gv_tensor *tw = init(seed + (uint32_t)l, dims[l], dims[l + 1], false);
        gv_tensor *tb = init(0, 0, dims[l + 1], true);
        gv_tree_insert_tensor(params, w, tw);
        gv_tree_insert_tensor(params, b, tb);
        gv_tensor_free(tw), gv_tensor_free(tb);
    }
    gv_tensor *x = gv_random_uniform_eager(GV_PRNG_DEFAULT, gv_prng_key(seed + 100), GV_DIMS(d->batch, d->in), 0, 1);
    gv_tensor *y = gv_random_randint_eager(GV_PRNG_DEFAULT, gv_prng_key(seed + 200), GV_DIMS(d->batch), 0, (int32_t)d->out);
    gv_tree_insert_tensor(batch, "x", x);
    gv_tree_insert_tensor(batch, "y", y);
    gv_tensor_free(x), gv_tensor_free(y);
    gv_tree_append(in, params);
    gv_tree_append(in, batch);
    return in;
}

static gv_tree *loss(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value h = gv_tree_get_value(in, "1/x");
    for (int l = 1; l <= 3; l++) {
        char w[8], b[8];
        snprintf(w, sizeof w, "0/w%d", l);
        snprintf(b, sizeof b, "0/b%d", l);
        h = gv_add(gv_matmul(h, gv_tree_get_value(in, w)), gv_tree_get_value(in, b));
        if (l < 3) h = gv_relu(h);
    }
    /* optax.softmax_cross_entropy_with_integer_labels, averaged */
    gv_value labels = gv_tree_get_value(in, "1/y");
    gv_value logp = gv_log_softmax(h, -1);
    gv_value picked = gv_take_along_axis(logp, gv_expand_dims(labels, -1), -1);
    return gv_tree_new_value_leaf(gv_neg(gv_mean(picked, NULL, 0, false)));
}

gv_fn *mlp_loss_fn(const gv_tree *example) { return gv_trace(loss, NULL, example); }

typedef struct step_ctx {
    gv_fn *vg;
    double lr;
} step_ctx;

static gv_tree *step(gv_graph *g, const gv_tree *in, void *ud) {
    step_ctx *c = ud;
    gv_tree *out = gv_fn_call(g, c->vg, in); /* (loss, grads) */
    if (!out) return NULL;
    gv_tree *res = gv_tree_new_tuple(), *params = gv_tree_new_dict();
    static const char *names[6] = {"b1", "b2", "b3", "w1", "w2", "w3"};
    for (int k = 0; k < 6; k++) {
        char pp[8], gp[8];
        snprintf(pp, sizeof pp, "0/%s", names[k]);
        snprintf(gp, sizeof gp, "1/%s", names[k]);
        gv_value p = gv_tree_get_value(in, pp), gr = gv_tree_get_value(out, gp);
        gv_tree_insert_value(params, names[k], gv_sub(p, gv_mul_scalar(gr, c->lr)));
    }
    gv_tree_append(res, params);
    gv_tree_append(res, gv_tree_new_value_leaf(gv_tree_get_value(out, "0")));
    gv_tree_free(out);
    return res;
}

gv_fn *mlp_train_step(const gv_tree *example, double lr) {
    gv_fn *l = mlp_loss_fn(example);
    if (!l) return NULL;
    step_ctx c = {gv_value_and_grad(l, 0, false), lr};
    gv_fn_free(l);
    if (!c.vg) return NULL;
    gv_fn *s = gv_trace(step, &c, example);
    gv_fn_free(c.vg);
    return s;
}
