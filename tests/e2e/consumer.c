/* A program outside the grove tree, built against an installed grove. */
#include <grove/grove.h>
#include <stdio.h>

static gv_status show(const char *path, const gv_tree *leaf, void *ud) {
    gv_tensor *t = gv_tree_leaf_tensor(leaf);
    printf("%s (%lld, %lld) %s\n", path, (long long)gv_tensor_dim(t, 0),
           (long long)gv_tensor_dim(t, 1), gv_dtype_name(gv_tensor_dtype(t)));
    return GV_OK;
}

int main(void) {
    gv_initializer init = gv_init_lecun_normal();
    gv_tensor *w = gv_initializer_sample(&init, GV_PRNG_DEFAULT, gv_prng_key(0), GV_DIMS(8, 4));
    gv_tree *params = gv_tree_new_dict();
    if (!w || !params || gv_tree_insert_tensor(params, "params/layer/kernel", w) != GV_OK) {
        fprintf(stderr, "consumer: %s\n", gv_last_error());
        return 1;
    }
    gv_tree_foreach_leaf(params, show, NULL);
    gv_tensor_free(w);
    gv_tree_free(params);
    return 0;
}
