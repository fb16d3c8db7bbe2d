/* A Hugging Face BERT in both of its forms loads into the same grove model:
 *
 *   bert_msgpack_check ST_DIR FLAX_DIR
 *
 * ST_DIR holds model.safetensors (PyTorch names), FLAX_DIR the
 * flax_model.msgpack transformers' Flax save_pretrained made from it
 * (tests/interop/hf_flax_msgpack.py). Both load into
 * BertForSequenceClassification (2 labels, the new head drawn from the same
 * key): every param must be bit for bit the same, and so the logits of
 * "[CLS] hello world [SEP]". Exit status 0 iff they are. */
#include <grove/grove.h>
#include <stdio.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "bert_msgpack_check: %s: %s\n", what, gv_last_error());
    return 1;
}

static int64_t ndiff;

static gv_status cmp(const char *path, const gv_tree *leaf, void *ud) {
    const gv_tensor *a = gv_tree_leaf_tensor(leaf), *b = gv_tree_get_tensor(ud, path);
    if (!b || gv_tensor_nbytes(a) != gv_tensor_nbytes(b) ||
        memcmp(gv_tensor_data_const(a), gv_tensor_data_const(b), gv_tensor_nbytes(a)) != 0) {
        if (!ndiff) fprintf(stderr, "bert_msgpack_check: first difference at %s\n", path);
        ndiff++;
    }
    return GV_OK;
}

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: bert_msgpack_check ST_DIR FLAX_DIR\n"), 2;
    gv_bert_config cfg;
    if (gv_bert_config_load(argv[2], &cfg) != GV_OK) return fail(argv[2]);
    cfg.num_labels = 2;
    gv_module m = {&gv_BertForSequenceClassification, &cfg};
    gv_load_report ra, rb;
    gv_tree *a = gv_bert_from_pretrained(&m, argv[1], gv_prng_key(0), &ra);
    if (!a) return fail(argv[1]);
    gv_tree *b = gv_bert_from_pretrained(&m, argv[2], gv_prng_key(0), &rb);
    if (!b) return fail(argv[2]);
    printf("safetensors: %zu params loaded, %zu new; flax_model.msgpack: %zu loaded, %zu new\n",
           ra.nloaded, ra.ninitialized, rb.nloaded, rb.ninitialized);
    gv_tree_foreach_leaf(a, cmp, b);
    int64_t n = (int64_t)gv_tree_num_leaves(a);
    int32_t ids[4] = {101, 7592, 2088, 102};
    gv_tensor *x = gv_tensor_from_data(GV_I32, GV_DIMS(1, 4), ids, sizeof ids);
    gv_tree *args = gv_args_tensors(&x, 1), *la = NULL, *lb = NULL;
    if (gv_apply_eager(&m, a, args, NULL, NULL, &la) || gv_apply_eager(&m, b, args, NULL, NULL, &lb))
        return fail("apply");
    const float *pa = gv_tensor_data_const(gv_tree_leaf_tensor(la)),
                *pb = gv_tensor_data_const(gv_tree_leaf_tensor(lb));
    bool same = memcmp(pa, pb, 2 * sizeof(float)) == 0;
    printf("%lld of %lld params differ; logits %.7g %.7g (safetensors) vs %.7g %.7g (msgpack): %s\n",
           (long long)ndiff, (long long)n, pa[0], pa[1], pb[0], pb[1], same ? "equal" : "DIFFERENT");
    int rc = ndiff == 0 && same && ra.nloaded == rb.nloaded && ra.nloaded > 0 ? 0 : 1;
    gv_tree_free(la), gv_tree_free(lb), gv_tree_free(args), gv_tensor_free(x);
    gv_tree_free(a), gv_tree_free(b);
    gv_load_report_free(&ra), gv_load_report_free(&rb);
    return rc;
}
