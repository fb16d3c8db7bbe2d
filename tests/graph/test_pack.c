/* gv_pack / gv_unpack: trees built and taken apart by a pattern, failures
 * passed through with the first error, graph-owned trees inside a trace. */
#include <string.h>

#include "testutil.h"

static gv_tensor *scalar(float v) {
    return GVT_NN(gv_tensor_from_data(GV_F32, 0, NULL, &v, sizeof v));
}

Test(pack, eager_trees_of_tensors_follow_the_pattern) {
    gv_tensor *a = scalar(1), *b = scalar(2), *c = scalar(3);
    gv_tree *t = GVT_NN(gv_pack(NULL, "((a, [b]), {x: c, y: (a,)})", a, b, c, a));
    char *s = GVT_NN(gv_tree_repr_shapes(t));
    cr_expect_str_eq(s, "(((), [()]), {'x': (), 'y': ((),)})");
    free(s);
    /* tensors are shared, not copied: one more reference each */
    cr_expect_eq(gv_tree_get_tensor(t, "0/0"), a);
    cr_expect_eq(gv_tree_get_tensor(t, "1/x"), c);

    gv_tensor *ga, *gb, *gc;
    const gv_tree *y;
    GVT_OK(gv_unpack(t, "((a, [b]), {y, x: c})", &ga, &gb, &y, &gc));
    cr_expect_eq(ga, a);
    cr_expect_eq(gb, b);
    cr_expect_eq(gc, c);
    cr_expect_eq(gv_tree_kind_of(y), GV_TREE_TUPLE);
    /* () matches a list too, and _ skips a part */
    GVT_OK(gv_unpack(t, "((_, (b)), _)", &gb));
    cr_expect_eq(gb, b);
    gv_tree_free(t);
    gv_tensor_free(a), gv_tensor_free(b), gv_tensor_free(c);
}

Test(pack, a_subtree_item_is_cloned_and_the_caller_keeps_it) {
    gv_tensor *a = scalar(1);
    gv_tree *inner = GVT_NN(gv_pack(NULL, "{w, b}", a, a));
    gv_tree *outer = GVT_NN(gv_pack(NULL, "{params: p}", inner));
    cr_expect(gv_tree_get(outer, "params") != inner);
    gv_tree_free(inner); /* the caller's: still ours to free */
    cr_expect_eq(gv_tree_get_tensor(outer, "params/w"), a);
    gv_tree_free(outer);
    gv_tensor_free(a);
}

Test(pack, gv_tuple_is_a_flat_tuple) {
    gv_tensor *a = scalar(1), *b = scalar(2);
    const gv_tensor *cb = b; /* a const tensor is an item too */
    gv_tree *t = GVT_NN(gv_tuple(NULL, a, cb));
    cr_expect_eq(gv_tree_num_children(t), 2);
    cr_expect_eq(gv_tree_get_tensor(t, "1"), b);
    gv_tree_free(t);
    gv_tensor_free(a), gv_tensor_free(b);
}

Test(pack, mismatches_name_the_pattern_and_the_place) {
    gv_tensor *a = scalar(1);
    gv_tree *t = GVT_NN(gv_pack(NULL, "((a, a), a)", a, a, a));
    gv_tensor *x = a, *y = a, *z = a;
    cr_expect_eq(gv_unpack(t, "((x, y, z))", &x, &y, &z), GV_ERR_STRUCTURE);
    cr_expect(strstr(gv_last_error(), "gv_unpack ((x, y, z)): a tuple of 2, the pattern has 1"),
              "%s", gv_last_error());
    cr_expect_null(x, "targets are cleared on failure");
    cr_expect_eq(gv_unpack(t, "((x, y, z), _)", &x, &y, &z), GV_ERR_STRUCTURE);
    cr_expect(strstr(gv_last_error(), "at 0: a tuple of 2, the pattern has 3"), "%s",
              gv_last_error());
    cr_expect_eq(gv_unpack(t, "{x}", &x), GV_ERR_STRUCTURE);
    cr_expect(strstr(gv_last_error(), "a tuple, the pattern has a dict"), "%s", gv_last_error());
    gv_value v;
    cr_expect_eq(gv_unpack(t, "((x, _), _)", &v), GV_ERR_STRUCTURE);
    cr_expect(strstr(gv_last_error(), "'x' is a tensor, its target a gv_value"), "%s",
              gv_last_error());
    cr_expect_eq(gv_unpack(t, "((x, y), z)", &x, &y), GV_ERR_ARG);
    cr_expect(strstr(gv_last_error(), "more names than the 2 targets"), "%s", gv_last_error());
    cr_expect_eq(gv_unpack(t, "((x, y), z", &x, &y, &z), GV_ERR_ARG);
    cr_expect(strstr(gv_last_error(), "bad pattern"), "%s", gv_last_error());
    gv_tree *d = GVT_NN(gv_pack(NULL, "{x, y}", a, a));
    cr_expect_eq(gv_unpack(d, "{x, z}", &x, &z), GV_ERR_STRUCTURE);
    cr_expect(strstr(gv_last_error(), "the dict has no key 'z'"), "%s", gv_last_error());
    cr_expect_null(gv_pack(NULL, "(a, b)", a));
    cr_expect(strstr(gv_last_error(), "more names than the 1 items"), "%s", gv_last_error());
    cr_expect_null(gv_pack(NULL, "(a)", a, a));
    cr_expect(strstr(gv_last_error(), "1 names for 2 items"), "%s", gv_last_error());
    gv_tree_free(t), gv_tree_free(d);
    gv_tensor_free(a);
}

Test(pack, a_null_item_or_tree_passes_its_first_error_through) {
    gv_tensor *a = scalar(1);
    gv_tree *none = gv_tree_get(NULL, "x"); /* fails with its own message */
    char *first = strdup(gv_last_error());
    cr_expect_null(gv_pack(NULL, "(a, b)", a, none));
    cr_expect_str_eq(gv_last_error(), first, "the first error is kept");
    gv_tensor *x = a;
    cr_expect_neq(gv_unpack(none, "(x)", &x), GV_OK);
    cr_expect_str_eq(gv_last_error(), first);
    cr_expect_null(x);
    free(first);
    gv_tensor_free(a);
}

/* a step written with pack/unpack and nothing else */
static gv_tree *step(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x, w;
    const gv_tree *params;
    gv_unpack(in, "{params, x}", &params, &x);
    gv_unpack(params, "{w}", &w);
    gv_value y = gv_mul(x, w);
    gv_tree *aux = gv_pack(g, "(y, w)", y, w);
    return gv_pack(g, "{loss: l, aux: a}", gv_sum(y, NULL, 0, false), aux);
}

static gv_tree *step_inputs(void) {
    float xv[3] = {1, 2, 3}, wv[3] = {2, 2, 2};
    gv_tensor *x = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(3), xv, sizeof xv));
    gv_tensor *w = GVT_NN(gv_tensor_from_data(GV_F32, GV_DIMS(3), wv, sizeof wv));
    gv_tree *in = GVT_NN(gv_pack(NULL, "{params: {w}, x}", w, x));
    gv_tensor_free(x), gv_tensor_free(w);
    return in;
}

Test(pack, traced_code_packs_without_freeing) {
    gv_tree *in = step_inputs();
    gv_fn *f = GVT_NN(gv_trace(step, NULL, in));
    gv_tree *out = NULL;
    GVT_OK(gv_fn_eval(f, in, &out));
    gv_tensor *loss, *y;
    GVT_OK(gv_unpack(out, "{loss, aux: (y, _)}", &loss, &y));
    cr_expect_float_eq(*(const float *)gv_tensor_data_const(loss), 12.0f, 0);
    cr_expect_float_eq(((const float *)gv_tensor_data_const(y))[2], 6.0f, 0);
    gv_tree_free(out);
    gv_fn_free(f);
    gv_tree_free(in);
}

/* a graph-owned tree inserted elsewhere is cloned; freeing it does nothing */
static gv_tree *owned_inserted(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x;
    gv_unpack(in, "{params: _, x}", &x);
    gv_tree *inner = gv_pack(g, "(x)", x);
    gv_tree_free(inner); /* a no-op: the graph owns it */
    gv_tree *out = gv_tree_new_dict();
    if (gv_tree_insert(out, "a", inner) != GV_OK || gv_tree_insert(out, "b", inner) != GV_OK)
        return gv_tree_free(out), NULL;
    return out;
}

Test(pack, graph_owned_trees_are_cloned_on_insert) {
    gv_tree *in = step_inputs();
    gv_fn *f = GVT_NN(gv_trace(owned_inserted, NULL, in));
    char *s = GVT_NN(gv_tree_repr_shapes(gv_fn_outputs(f)));
    cr_expect_str_eq(s, "{'a': ((3,),), 'b': ((3,),)}");
    free(s);
    gv_fn_free(f);
    gv_tree_free(in);
}

/* an op error inside the trace is the error the trace fails with, even
 * though the code goes on packing and unpacking the invalid value */
static gv_tree *bad_step(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x, w;
    gv_unpack(in, "{params: {w}, x}", &w, &x);
    int axis = 3;
    gv_value y = gv_sum(gv_mul(x, w), &axis, 1, false); /* rank 1: axis 3 is an error */
    gv_value a, b;
    gv_unpack(gv_pack(g, "(y, x)", y, x), "(a, b)", &a, &b);
    return gv_pack(g, "{a, b}", a, b);
}

Test(pack, the_first_trace_error_wins) {
    gv_tree *in = step_inputs();
    cr_expect_null(gv_trace(bad_step, NULL, in));
    cr_expect(strstr(gv_last_error(), "axis 3"), "%s", gv_last_error());
    gv_tree_free(in);
}

/* a pattern mismatch inside a trace fails the trace with its message */
static gv_tree *mismatched(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value x, w;
    gv_unpack(in, "{params, x: (w)}", &w, &x);
    return gv_pack(g, "(x)", x);
}

Test(pack, a_mismatch_in_a_trace_fails_the_trace) {
    gv_tree *in = step_inputs();
    cr_expect_null(gv_trace(mismatched, NULL, in));
    cr_expect(strstr(gv_last_error(), "gv_unpack {params, x: (w)}"), "%s", gv_last_error());
    gv_tree_free(in);
}
