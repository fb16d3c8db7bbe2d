/* Random graphs for differential testing, decoded from a byte stream: the
 * test feeds it a seeded generator, the fuzz target (tests/fuzz/fuzz_graphs.c)
 * the fuzzer's bytes. Plain C on grove's public API (no test framework), so
 * both can link it. */
#ifndef GROVE_TEST_GRAPH_GEN_H
#define GROVE_TEST_GRAPH_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grove/grove.h"

/* Bytes come from data (size bytes, then zeros) or, when data is NULL, from
 * a xorshift generator seeded with seed. */
typedef struct gvt_stream {
    const uint8_t *data;
    size_t size, at;
    uint64_t seed;
    /* matmuls only at the small sizes: under coverage instrumentation the
     * reference's loops take seconds at the large ones (the fuzz target) */
    bool small_matmul;
} gvt_stream;

/* One decoded case: inputs, the traced function and how to compile it. */
typedef struct gvt_graph_case {
    gv_tree *inputs;          /* a, b, c, d: float32 of related shapes */
    gv_fn *fn;
    gv_plan_options opts;     /* threads, no_optimize, donation */
    const char *donate[4];
    int ops;                  /* ops drawn */
    bool loss_only;           /* made for value_and_grad */
    uint8_t under_matmul;     /* bit k: input k reaches an operand of a matmul */
} gvt_graph_case;

/* Decode a case: outputs "loss" (a scalar over every value drawn), "last"
 * and, for some inputs, an output at the input's own path (an update of
 * it, or the input itself); only "loss" with loss_only. Returns GV_OK, or
 * the trace's error. gvt_graph_case_free releases it either way. */
gv_status gvt_graph_case_make(gvt_stream *s, bool loss_only, gvt_graph_case *c);
void gvt_graph_case_free(gvt_graph_case *c);

/* Evaluate with gv_fn_eval and with the compiled plan (on a copy of the
 * inputs, as donation overwrites them) and compare every output leaf bit for
 * bit (any NaN matches any NaN). The one exception: for a loss-only case
 * under value_and_grad, the grads of inputs that reach a matmul go through
 * the BLAS in the matmul's VJP, whose summation order is the BLAS's own;
 * they need only agree within rel relative (|x - y| <= rel (1 + |y|)), NaN
 * where the reference has NaN, infinities equal. Returns 0 when they agree,
 * 1 with a description in why, or -1 if a grove call failed (the message is
 * in why too). */
int gvt_graph_case_check(const gvt_graph_case *c, double rel, char *why, size_t len);

#endif
