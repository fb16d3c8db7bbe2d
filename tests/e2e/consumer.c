/* A program outside the grove tree, built against an installed grove: a
 * params tree and a batch of the user's own arrays. */
#include <grove/grove.h>
#include <stdio.h>

static gv_status show(const char *path, const gv_tree *leaf, void *ud) {
    gv_tensor *t = gv_tree_leaf_tensor(leaf);
    printf("%s (%lld, %lld) %s\n", path, (long long)gv_tensor_dim(t, 0),
           (long long)gv_tensor_dim(t, 1), gv_dtype_name(gv_tensor_dtype(t)));
    return GV_OK;
}

/* The first batch of x float32 [5, 2] and y int32 [5] = 0..4, in order. */
static int show_batch(void) {
    gv_tensor *x = gv_tensor_zeros(GV_F32, GV_DIMS(5, 2));
    gv_tensor *y = gv_tensor_arange(GV_I32, 0, 5, 1);
    gv_loader *ld = x && y ? gv_loader_new_arrays((gv_tensor *[]){x, y}, 2,
                                                  &(gv_loader_options){.batch_size = 3})
                           : NULL;
    gv_batch b;
    int ok = ld && gv_loader_next(ld, &b) == GV_OK && b.x;
    if (ok)
        printf("batch 0: x (%lld, %lld) %s, y %s starting %d\n", (long long)gv_tensor_dim(b.x, 0),
               (long long)gv_tensor_dim(b.x, 1), gv_dtype_name(gv_tensor_dtype(b.x)),
               gv_dtype_name(gv_tensor_dtype(b.arrays[1])),
               ((const int *)gv_tensor_data_const(b.arrays[1]))[0]);
    gv_loader_free(ld);
    gv_tensor_free(x);
    gv_tensor_free(y);
    return ok;
}

int main(void) {
    gv_initializer init = gv_init_lecun_normal();
    gv_tensor *w = gv_initializer_sample(&init, GV_PRNG_DEFAULT, gv_prng_key(0), GV_DIMS(8, 4));
    gv_tree *params = gv_tree_new_dict();
    if (!w || !params || gv_tree_insert_tensor(params, "params/layer/kernel", w) != GV_OK ||
        !show_batch()) {
        fprintf(stderr, "consumer: %s\n", gv_last_error());
        return 1;
    }
    gv_tree_foreach_leaf(params, show, NULL);
    gv_tensor_free(w);
    gv_tree_free(params);
    return 0;
}
