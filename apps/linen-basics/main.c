/* linen-basics: the first steps of the Flax "linen basics" tutorial in grove.
 *
 *   key = jax.random.PRNGKey(0xffff)
 *   key, model_key = jax.random.split(key)
 *   params = Model().init(model_key, jnp.zeros((1, 8)))   # Model.setup: self.layer = nn.Dense(4)
 *   print(params)
 *
 * The tutorial ran jax 0.4, so the legacy threefry scheme is used; the
 * numbers are those Flax prints for the same program. This program grows
 * into the tutorial's whole first half once modules land. */
#include <stdio.h>
#include <stdlib.h>

#include "grove/grove.h"

static int fail(const char *what) {
    fprintf(stderr, "linen-basics: %s: %s\n", what, gv_last_error());
    return 1;
}

int main(void) {
    const gv_prng_impl impl = GV_PRNG_LEGACY;
    gv_key key = gv_prng_key(0xffff), model_key;
    gv_split2(impl, key, &key, &model_key);
    printf("key = PRNGKey(0xffff); key, model_key = split(key)\n");
    printf("model_key = [%u %u]\n\n", model_key.k[0], model_key.k[1]);

    /* nn.Dense(4) assigned to `self.layer` in setup: its kernel comes from the
     * first make_rng('params') in scope ('layer',), its bias (zeros) from the
     * second (docs/random.md section 9). */
    gv_fold_part kernel_path[] = {{"layer", 0}, {NULL, 1}};
    gv_key kernel_key = gv_fold_in_static(model_key, kernel_path, 2, false);
    gv_initializer lecun = gv_init_lecun_normal(), zeros = gv_init_zeros();
    gv_tensor *kernel = gv_initializer_sample(&lecun, impl, kernel_key, GV_DIMS(8, 4));
    gv_tensor *bias = gv_initializer_sample(&zeros, impl, kernel_key, GV_DIMS(4));
    if (!kernel || !bias) return fail("initialising the Dense layer");

    gv_tree *params = gv_tree_new_dict();
    if (!params || gv_tree_insert_tensor(params, "params/layer/kernel", kernel) != GV_OK ||
        gv_tree_insert_tensor(params, "params/layer/bias", bias) != GV_OK)
        return fail("building the params tree");
    gv_tensor_free(kernel); /* the tree holds its own references */
    gv_tensor_free(bias);

    printf("params = Model().init(model_key, jnp.zeros((1, 8)))\n");
    if (gv_tree_print(stdout, params) != GV_OK) return fail("printing params");

    char *shapes = gv_tree_repr_shapes(params);
    if (!shapes) return fail("printing shapes");
    printf("\nparam shapes\n%s\n", shapes);
    printf("parameters: %lld\n", (long long)gv_tree_size(params));
    free(shapes);
    gv_tree_free(params);
    return 0;
}
