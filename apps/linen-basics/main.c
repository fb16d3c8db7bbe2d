/* linen-basics: the first half of the Flax/Optax tutorial, in grove.
 *
 * Models are hollow shells: init returns the params, apply takes them;
 * optimisers are (init, update) pairs over trees.
 * The tutorial ran jax 0.4, so the legacy threefry scheme is used: the
 * numbers printed are the ones Flax prints for the same program. */
#include <stdio.h>
#include <stdlib.h>

#include "grove/grove.h"

static const gv_prng_impl IMPL = GV_PRNG_LEGACY;

static int fail(const char *what) {
    fprintf(stderr, "linen-basics: %s: %s\n", what, gv_last_error());
    return 1;
}

static void print_tree(const gv_tree *t) {
    if (gv_tree_print(stdout, t) != GV_OK) fprintf(stderr, "linen-basics: %s\n", gv_last_error());
}

static void print_tensor(const char *label, const gv_tensor *t) {
    char *s = gv_tensor_repr(t, NULL);
    printf("%s%s\n", label, s ? s : gv_last_error());
    free(s);
}

/* class Model(nn.Module):
 *     def setup(self): self.layer = nn.Dense(4)
 *     def __call__(self, x): return self.layer(x) */
static gv_tree *model_setup(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_dense_cfg d = gv_dense_defaults(4);
    gv_module layer = {&gv_Dense, &d};
    return gv_tree_new_value_leaf(gv_scope_call1(s, "layer", &layer, gv_args_get(args, 0)));
}
static const gv_module_type Model = {"Model", model_setup, NULL, 0};

/* the same with @nn.compact: the Dense is auto-named Dense_0 */
static gv_tree *model_compact(gv_scope *s, const void *cfg, const gv_tree *args) {
    gv_dense_cfg d = gv_dense_defaults(4);
    gv_module layer = {&gv_Dense, &d};
    return gv_tree_new_value_leaf(gv_scope_call1(s, NULL, &layer, gv_args_get(args, 0)));
}
static const gv_module_type CompactModel = {"Model", model_compact, NULL, 0};


static gv_tensor *zeros_like(gv_tensor *leaf, void *ud) {
    return gv_tensor_zeros(gv_tensor_dtype(leaf), gv_tensor_rank(leaf), gv_tensor_shape(leaf));
}

/* {stream: k}; NULL with the error set */
static gv_tree *key_dict(const char *stream, gv_key k) {
    gv_tensor *t = gv_tensor_from_data(GV_U32, GV_DIMS(2), k.k, sizeof k.k);
    gv_tree *r = t ? gv_tree_new_dict() : NULL;
    if (r && gv_tree_insert_tensor(r, stream, t) != GV_OK) gv_tree_free(r), r = NULL;
    gv_tensor_free(t);
    return r;
}

int main(void) {
    gv_module_options opts = {.impl = IMPL};
    gv_key key = gv_prng_key(0xffff), model_key, x_key, ff_key, dropout_key;
    gv_random_split2_eager(IMPL, key, &key, &model_key);
    printf("key = jax.random.PRNGKey(0xffff); key, model_key = jax.random.split(key)\n");
    printf("model_key = [%u %u]\n\n", model_key.k[0], model_key.k[1]);

    /* 1. a Dense layer defined in setup: params/layer/... */
    gv_tensor *zeros_in = gv_tensor_zeros(GV_F32, GV_DIMS(1, 8));
    gv_tree *init_args = gv_args_tensors(&zeros_in, 1);
    gv_module model = {&Model, NULL}, compact = {&CompactModel, NULL};
    gv_tree *params = gv_init(&model, model_key, init_args, &opts);
    if (!params) return fail("init");
    printf("# setup style: self.layer = nn.Dense(4)\n");
    printf("params = model.init(model_key, jnp.zeros((1, 8)))\n");
    print_tree(params);
    gv_tree *cparams = gv_init(&compact, model_key, init_args, &opts);
    if (!cparams) return fail("init (compact)");
    printf("\n# @nn.compact style: nn.Dense(4)(x) is auto-named Dense_0\n");
    print_tree(cparams);

    /* 2. apply on normal(x_key, (1, 8)) */
    gv_random_split2_eager(IMPL, key, &key, &x_key);
    gv_tensor *x = gv_random_normal_eager(IMPL, x_key, GV_DIMS(1, 8));
    gv_tree *args = gv_args_tensors(&x, 1), *y = NULL;
    printf("\nkey, x_key = jax.random.split(key); x = jax.random.normal(x_key, (1, 8))\n");
    print_tensor("x = ", x);
    if (gv_apply_eager(&model, params, args, NULL, &opts, &y) != GV_OK) return fail("apply");
    print_tensor("model.apply(params, x) = ", gv_tree_leaf_tensor(y));
    gv_tree_free(y);

    /* 3. a module holds no params: calling it without them is an error */
    printf("\n# calling the module without params\n");
    if (gv_apply_eager(&model, NULL, args, NULL, &opts, &y) != GV_OK) printf("error: %s\n", gv_last_error());

    /* 4. params are just data: any tree of the right structure works */
    gv_tree *zeros = gv_tree_map(zeros_like, NULL, params);
    if (!zeros || gv_apply_eager(&model, zeros, args, NULL, &opts, &y) != GV_OK) return fail("zeros");
    printf("\n# params are just data: an all-zeros tree of the same structure\n");
    print_tensor("model.apply(zeros, x) = ", gv_tree_leaf_tensor(y));
    gv_tree_free(y);

    /* 5. FeedForward(dimensions=(4, 2, 1), drop_last_activation=True) */
    static const int64_t dims[3] = {4, 2, 1};
    gv_feedforward_cfg ffc = {dims, 3, NULL, true};
    gv_module ff = {&gv_FeedForward, &ffc};
    gv_random_split2_eager(IMPL, key, &key, &ff_key);
    gv_tree *ffp = gv_init(&ff, ff_key, init_args, &opts);
    if (!ffp) return fail("FeedForward init");
    char *shapes = gv_tree_repr_shapes(ffp);
    printf("\n# FeedForward(dimensions=(4, 2, 1), drop_last_activation=True)\n");
    printf("key, ff_key = jax.random.split(key)\nparams shapes = %s\n", shapes ? shapes : "?");
    free(shapes);
    if (gv_apply_eager(&ff, ffp, args, NULL, &opts, &y) != GV_OK) return fail("FeedForward apply");
    print_tensor("feedforward.apply(params, x) = ", gv_tree_leaf_tensor(y));
    gv_tree_free(y);
    char *table = gv_tabulate(&ff, ff_key, init_args, &opts);
    if (table) printf("%s", table);
    free(table);

    /* 6. Dropout with an rng stream */
    gv_dropout_cfg dc = {.rate = 0.5};
    gv_module dropout = {&gv_Dropout, &dc};
    gv_random_split2_eager(IMPL, key, &key, &dropout_key);
    gv_tensor *ones = gv_tensor_ones(GV_F32, GV_DIMS(1, 8));
    gv_tree *oargs = gv_args_tensors(&ones, 1), *noparams = gv_tree_new_dict();
    gv_tree *rngs = key_dict("dropout", dropout_key);
    if (!rngs) return fail("Dropout rngs");
    gv_module_options train = opts;
    train.train = true;
    if (gv_apply_eager(&dropout, noparams, oargs, rngs, &train, &y) != GV_OK) return fail("Dropout");
    printf("\n# nn.Dropout(rate=0.5), deterministic=False, rngs={'dropout': dropout_key}\n");
    print_tensor("dropout.apply({}, jnp.ones((1, 8))) = ", gv_tree_leaf_tensor(y));
    gv_tree_free(y);

    /* 7. bind / unbind */
    gv_bound *bound = gv_bind(&model, params, &opts);
    if (!bound || gv_bound_call(bound, NULL, args, NULL, &y) != GV_OK) return fail("bind");
    printf("\n# bound = model.bind(params); bound(x)\n");
    print_tensor("bound(x) = ", gv_tree_leaf_tensor(y));
    gv_tree_free(y);
    gv_module unbound;
    gv_tree *uvars = NULL;
    if (gv_unbind(bound, &unbound, &uvars) != GV_OK) return fail("unbind");
    printf("module, variables = bound.unbind(); variables has %zu leaves, %lld parameters\n",
           gv_tree_num_leaves(uvars), (long long)gv_tree_size(uvars));

    /* 8. Optax: optimisers are (init, update) pairs over trees */
    gv_transform *sgd = gv_sgd(.learning_rate = 0.01);
    gv_tree *sgd_state = sgd ? gv_transform_init_eager(sgd, params) : NULL;
    if (!sgd_state) return fail("sgd");
    printf("\n# tx = optax.sgd(learning_rate=0.01); tx.init(params)\n");
    print_tree(sgd_state);
    float p0[3] = {0.0f, 1.0f, 2.0f}, g0[3] = {4.0f, 0.6f, -3.0f};
    gv_tensor *pt = gv_tensor_from_data(GV_F32, GV_DIMS(3), p0, sizeof p0);
    gv_tensor *gt = gv_tensor_from_data(GV_F32, GV_DIMS(3), g0, sizeof g0);
    gv_tree *ap = gv_tree_new_leaf(pt), *ag = gv_tree_new_leaf(gt);
    gv_transform *adam = gv_adam(.learning_rate = 0.01);
    gv_tree *adam_state = adam ? gv_transform_init_eager(adam, ap) : NULL;
    if (!adam_state) return fail("adam");
    printf("\n# tx = optax.adam(learning_rate=0.01); params = [0., 1., 2.]\n");
    printf("opt_state = tx.init(params)\n");
    print_tree(adam_state);
    gv_tree *updates = NULL, *adam_state2 = NULL;
    if (gv_transform_update_eager(adam, ag, adam_state, ap, &updates, &adam_state2) != GV_OK)
        return fail("adam update");
    gv_tree *newp = gv_apply_updates_eager(ap, updates);
    if (!newp) return fail("apply_updates");
    printf("updates, opt_state = tx.update(grads=[4., 0.6, -3.], opt_state)\n");
    print_tensor("updates = ", gv_tree_leaf_tensor(updates));
    print_tensor("optax.apply_updates(params, updates) = ", gv_tree_leaf_tensor(newp));
    printf("opt_state = ");
    print_tree(adam_state2);
    gv_tree_free(newp), gv_tree_free(updates), gv_tree_free(adam_state2), gv_tree_free(adam_state);
    gv_transform_free(adam), gv_tree_free(ap), gv_tree_free(ag), gv_tensor_free(pt);
    gv_tensor_free(gt), gv_tree_free(sgd_state), gv_transform_free(sgd);

    gv_tree_free(uvars), gv_tree_free(rngs), gv_tree_free(noparams), gv_tree_free(oargs);
    gv_tensor_free(ones), gv_tree_free(ffp), gv_tree_free(zeros), gv_tree_free(args);
    gv_tensor_free(x), gv_tree_free(cparams), gv_tree_free(params), gv_tree_free(init_args);
    gv_tensor_free(zeros_in);
    return 0;
}
