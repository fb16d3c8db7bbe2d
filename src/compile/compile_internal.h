/* grove internal: the compiler's intermediate forms and the plan layout. */
#ifndef GROVE_COMPILE_INTERNAL_H
#define GROVE_COMPILE_INTERNAL_H

#include "graph/fn_internal.h"
#include "graph/ops_internal.h"
#include "grove/compile.h"

/* ---- optimize.c: fold, simplify, CSE and DCE into a fresh graph ---- */
typedef struct gv_opt_result {
    gv_graph *graph;  /* owned by the caller */
    int32_t *out_ids; /* nout entries */
    int32_t nodes_before, nodes_after;
} gv_opt_result;

gv_status gv_optimize(const gv_fn *fn, bool enabled, gv_opt_result *res);

/* ---- buffers: where a value lives at run time ---- */
enum { GV_BASE_ARENA = 0 };
typedef struct gv_bufref {
    int32_t base;    /* index into the run's base pointer table */
    size_t offset;   /* bytes from the base */
} gv_bufref;

/* ---- fused elementwise programs (fused.c) ---- */
typedef struct gv_finstr {
    uint8_t op;      /* a gv_opcode (elementwise) or GV_FOP_* below */
    bool uniform;    /* every operand is the same for all elements (scalars,
                      * constants): computed once per run, not per block */
    int16_t dst, a, b, c;
} gv_finstr;

/* GV_FOP_COPY copies its operand (a cast or broadcast that is stored);
 * GV_FOP_ALIAS makes its register a second name for the operand (one that
 * is not stored: no data moves). */
enum { GV_FOP_LOAD = 200, GV_FOP_COPY, GV_FOP_ALIAS };

typedef struct gv_fload {
    gv_bufref buf;
    gv_dtype dtype;      /* F32 or BOOL */
    int16_t reg;
    /* broadcasting: element i of the output domain reads
     * src[ sum_k ((i / div[k]) % mod[k]) * stride[k] ]; fast paths below */
    int kind;            /* GV_LOAD_FULL, GV_LOAD_SCALAR, GV_LOAD_PERIODIC, GV_LOAD_REPEAT,
                          * GV_LOAD_GENERAL */
    int64_t period;      /* PERIODIC: index = i % period; REPEAT: index = i / period */
    int nd;
    int64_t *div, *mod, *stride;
} gv_fload;

enum { GV_LOAD_FULL, GV_LOAD_SCALAR, GV_LOAD_PERIODIC, GV_LOAD_REPEAT, GV_LOAD_GENERAL };

typedef struct gv_fstore {
    gv_bufref buf;
    gv_dtype dtype;
    int16_t reg;
} gv_fstore;

/* A reduction fed by a fused chain, accumulated inside the same pass: the
 * chain's value is never stored. Domain index k maps to output
 * (k / (red * inner)) * inner + k % inner. */
typedef struct gv_fepi {
    int16_t reg;
    uint8_t op;          /* GV_OP_REDUCE_SUM / MAX / MIN */
    int64_t dims[3];     /* outer, reduced, inner */
    gv_bufref buf;
} gv_fepi;

/* A program with one of fused_shapes.c's pre-compiled structures: run as
 * one loop, kernel(in, out, u, n) over n elements of the full loads in[] and
 * stores out[], with the uniform values u[]. */
enum { GV_FSHAPE_MAX = 16 };
typedef void (*gv_fshape_kernel)(const float *const *in, float *const *out, const float *u,
                                 int64_t n);
typedef struct gv_fshape {
    const char *name;
    gv_fshape_kernel kernel;
    int nuniform, nload, nstore;
    int16_t ureg[GV_FSHAPE_MAX];  /* uniform value k is register ureg[k] */
    int16_t load[GV_FSHAPE_MAX];  /* full load k is f->load[load[k]] */
} gv_fshape;

typedef struct gv_fused {
    int64_t size;        /* elements of the domain */
    bool specialised;    /* runs shape.kernel instead of the interpreter */
    struct gv_fshape shape;
    int nred;
    gv_fepi *red;
    int nregs;
    int ninstr, nload, nstore;
    gv_finstr *instr;
    gv_fload *load;
    gv_fstore *store;
    double *consts;      /* per register: the constant of a FULL node folded in,
                          * where has_const[r] (any double, NaN and -0 included) */
    bool *has_const;
    bool *uniform;       /* per register: the same value for every element */
} gv_fused;

/* Run a fused program over its domain; scratch: threads * nregs * GV_FBLOCK floats. */
enum { GV_FBLOCK = 256 };
void gv_fused_run(const gv_fused *f, void *const *bases, float *scratch, int threads);
/* Whether the fused block loops implement op (a gv_opcode): the compiler
 * fuses nothing else, so an op without a fused form runs its reference kernel. */
bool gv_fused_supports(int op);
/* Whether f has a pre-compiled shape (fused_shapes.c); fills *out if so. */
bool gv_fused_specialise(const gv_fused *f, gv_fshape *out);

/* ---- steps ---- */
typedef enum gv_step_kind {
    GV_STEP_FUSED,
    GV_STEP_GEMM,
    GV_STEP_CONV,    /* a float32 conv: im2col + GEMM (src/kernels/conv.c) */
    GV_STEP_REDUCE,  /* a float32 reduction over one block of axes */
    GV_STEP_REF,     /* a registry reference kernel */
    GV_STEP_COPY,
    GV_STEP_PSUM_ASYNC /* a psum handed to the communication thread; waited for before
                          step `deadline`, its first reader (src/dist/distributed.c) */
} gv_step_kind;

typedef struct gv_step {
    gv_step_kind kind;
    int32_t node;            /* the optimised graph's node (REF/GEMM) */
    gv_bufref out;
    int nin;
    gv_bufref *in;
    size_t copy_bytes;       /* COPY */
    int64_t rdims[3];        /* REDUCE: outer, reduced, inner */
    int32_t deadline;        /* PSUM_ASYNC: the first step that reads the sum */
    bool pending;            /* PSUM_ASYNC, while running: started, not yet waited for */
    uint64_t ticket;
    gv_fused fused;          /* FUSED */
} gv_step;

/* A donated input that holds an output after the run: copied back. */
typedef struct gv_carry {
    int32_t in, out;
    size_t bytes;
} gv_carry;

struct gv_plan {
    gv_opt_result opt;
    gv_tree *out_structure;  /* the fn's output tree (values): structure only */
    gv_tree *in_structure;   /* example inputs */
    size_t nin, nout;
    gv_step *steps;
    int32_t nsteps;
    void *arena;
    size_t arena_bytes, intermediate_bytes;
    gv_tensor **consts;      /* CONST tensors referenced by steps */
    int32_t nconsts;
    void **bases;            /* 1 + nin + nout + nconsts, filled per run */
    int32_t nbases;
    int32_t *out_alias;      /* output j aliases input out_alias[j] (or -1) */
    gv_carry *carry;         /* copies after the run (donated inputs kept current) */
    int32_t ncarry;
    gv_tensor **out_flat;    /* per-run flattening of the output tree */
    int threads;
    float *scratch;          /* fused kernels' registers */
    float *conv_scratch;     /* the largest conv step's im2col patches */
    gv_tensor **sig;         /* the compiled input signature (example leaves, borrowed) */
    gv_tensor **out_sig;     /* output shapes and dtypes (owned) */
    gv_tensor **in_flat;     /* per-run flattening of the input tree */
    gv_tree **in_leaves;     /* per-run leaf nodes */
    gv_tree **out_leaves;
    int32_t fused_kernels, gemms, donated;
    double *prof_ns;         /* per step: total ns while profiling (NULL: off) */
    int32_t *async_steps;    /* the PSUM_ASYNC steps, in order */
    int32_t nasync;
    int64_t prof_runs;
};

/* Base indices. */
static inline int32_t gv_base_input(int32_t i) { return 1 + i; }
static inline int32_t gv_base_output(const gv_plan *p, int32_t j) { return 1 + (int32_t)p->nin + j; }
static inline int32_t gv_base_const(const gv_plan *p, int32_t k) {
    return 1 + (int32_t)(p->nin + p->nout) + k;
}

/* ---- kernels used by plans (src/kernels) ---- */
void gv_gemm_run(const gv_node *n, const gv_node *a, const gv_node *b, const float *A,
                 const float *B, float *C, int threads);
/* One BLAS sgemm (row-major) on the calling thread alone (gemm.c). */
void gv_sgemm_1thread(bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                      int64_t ldc);
/* C = A B (m x n, row stride n), split across threads as matmul's GEMMs are. */
void gv_sgemm(int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B,
              int64_t ldb, float *C, int threads);
/* float32 conv_general_dilated as im2col + GEMM (conv.c): scratch holds
 * gv_conv_scratch_floats(n, w) floats. */
int64_t gv_conv_scratch_floats(const gv_node *n, const gv_node *w);
void gv_conv_run(const gv_node *n, const gv_node *x, const gv_node *w, const float *X,
                 const float *W, float *Y, float *scratch, int threads);
bool gv_reduce_collapse(const gv_node *n, const gv_node *x, int64_t dims[3]);
void gv_reduce_run(gv_opcode op, const int64_t dims[3], const float *x, float *y);

#endif
