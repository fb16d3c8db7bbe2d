/* Pre-compiled shapes of fused programs: a fused pass whose program has
 * exactly one of the structures listed here runs as one C loop over its
 * elements instead of the block interpreter (fused.c).
 *
 * Why: the interpreter runs a program op by op over blocks of 256 elements,
 * so ops that are slow per element (division, sqrt) run alone and cannot
 * overlap with the rest of the program. AdamW's update has three divisions
 * and a square root among 17 ops: interpreted it costs 1.65 ns per
 * parameter on this machine's kind, as one loop 0.9 (docs/performance.md).
 *
 * A shape is one list, expanded twice: into the kernel (one loop whose body
 * is the program, each op the ew_math.h expression the interpreter and the
 * reference kernels use, in program order) and into the table the matcher
 * compares a program with. The structure is everything but the values and
 * the register names: the op of every per-element instruction, in order,
 * and which value each reads (a full float32 load, a uniform value, the same
 * for every element: a constant, a scalar load or what the program computes
 * from them once per run, or an earlier op's result), and which values are
 * stored. A program matches only when all of that is equal (matches()
 * follows the values through the program's registers), so the kernel
 * computes what the interpreter would, bit for bit, for any constants
 * (every Adam/AdamW hyper-parameter, a learning-rate schedule) and buffers.
 *
 * Rows, over the shape's own value numbers (each defined once): LD(k, r)
 * value r is full load k; UN(k, r) value r is uniform value k; OP1(d, OP, a)
 * / OP2(d, OP, a, b) value d = OP(a[, b]) per element, in program order;
 * ST(k, r) value r is store k. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compile_internal.h"
#include "graph/ew_math.h"

/* optax.adamw as gv_adamw traces it (mu, nu, then the update, decayed
 * weights, scaled by -lr, added to the param): loads mu r2, g r5, nu r9,
 * param r26; stores mu r6, nu r13, param r30. Uniform: b1, 1-b1, b2, 1-b2,
 * the two bias corrections, eps_root, eps, weight decay, -lr. */
#define GV_SHAPE_ADAMW(LD, UN, OP1, OP2, ST)                                        \
    LD(0, 2) LD(1, 5) LD(2, 9) LD(3, 26)                                            \
    UN(0, 0) UN(1, 3) UN(2, 7) UN(3, 11) UN(4, 15) UN(5, 17) UN(6, 18) UN(7, 21)    \
    UN(8, 24) UN(9, 28)                                                             \
    OP2(1, GV_OP_MUL, 0, 2) OP2(4, GV_OP_MUL, 3, 5) OP2(6, GV_OP_ADD, 4, 1)         \
    OP2(8, GV_OP_MUL, 7, 9) OP2(10, GV_OP_MUL, 5, 5) OP2(12, GV_OP_MUL, 11, 10)     \
    OP2(13, GV_OP_ADD, 12, 8) OP2(14, GV_OP_DIV, 6, 15) OP2(16, GV_OP_DIV, 13, 17)  \
    OP2(19, GV_OP_ADD, 16, 18) OP1(20, GV_OP_SQRT, 19) OP2(22, GV_OP_ADD, 20, 21)   \
    OP2(23, GV_OP_DIV, 14, 22) OP2(25, GV_OP_MUL, 24, 26) OP2(27, GV_OP_ADD, 23, 25) \
    OP2(29, GV_OP_MUL, 28, 27) OP2(30, GV_OP_ADD, 26, 29)                           \
    ST(0, 6) ST(1, 13) ST(2, 30)

/* optax.adam (no weight decay): the same up to the update, then -lr * u
 * added to the param r27. */
#define GV_SHAPE_ADAM(LD, UN, OP1, OP2, ST)                                         \
    LD(0, 2) LD(1, 5) LD(2, 9) LD(3, 27)                                            \
    UN(0, 0) UN(1, 3) UN(2, 7) UN(3, 11) UN(4, 15) UN(5, 17) UN(6, 18) UN(7, 21)    \
    UN(8, 24)                                                                       \
    OP2(1, GV_OP_MUL, 0, 2) OP2(4, GV_OP_MUL, 3, 5) OP2(6, GV_OP_ADD, 4, 1)         \
    OP2(8, GV_OP_MUL, 7, 9) OP2(10, GV_OP_MUL, 5, 5) OP2(12, GV_OP_MUL, 11, 10)     \
    OP2(13, GV_OP_ADD, 12, 8) OP2(14, GV_OP_DIV, 6, 15) OP2(16, GV_OP_DIV, 13, 17)  \
    OP2(19, GV_OP_ADD, 16, 18) OP1(20, GV_OP_SQRT, 19) OP2(22, GV_OP_ADD, 20, 21)   \
    OP2(23, GV_OP_DIV, 14, 22) OP2(25, GV_OP_MUL, 24, 23) OP2(26, GV_OP_ADD, 27, 25) \
    ST(0, 6) ST(1, 13) ST(2, 26)

#define GV_SHAPES(X) X(adamw, GV_SHAPE_ADAMW) X(adam, GV_SHAPE_ADAM)

/* ---- the ops, from the tables every other kernel uses ---- */
#define X(OP, EXPR) static inline float ew1_##OP(float x) { return (EXPR); }
GV_UNARY_F32_OPS(X)
#undef X
#define X(OP, EXPR) static inline float ew2_##OP(float a, float b) { return (EXPR); }
GV_BINARY_F32_OPS(X)
#undef X

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define GV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GV_CLONES
#endif

/* ---- the kernels ---- */
#define K_NONE(...)
#define K_PTR_LD(k, r) const float *P##r = in[k];
#define K_PTR_ST(k, r) float *Q##k = out[k];
#define K_UN(k, r) const float v##r = u[k];
#define K_LD(k, r) float v##r = P##r[i];
#define K_OP1(d, OP, a) float v##d = ew1_##OP(v##a);
#define K_OP2(d, OP, a, b) float v##d = ew2_##OP(v##a, v##b);
#define K_ST(k, r) Q##k[i] = v##r;

/* Each element is read before it is written and by its own iteration only,
 * so a store into the buffer a load reads (a donated param) is safe: ivdep
 * tells the vectoriser there is no dependence between iterations. */
#define X(NAME, SHAPE)                                                                   \
    GV_CLONES static void kernel_##NAME(const float *const *in, float *const *out,        \
                                        const float *u, int64_t n) {                     \
        SHAPE(K_PTR_LD, K_NONE, K_NONE, K_NONE, K_PTR_ST)                                \
        SHAPE(K_NONE, K_UN, K_NONE, K_NONE, K_NONE)                                      \
        _Pragma("GCC ivdep") for (int64_t i = 0; i < n; i++) {                           \
            SHAPE(K_LD, K_NONE, K_OP1, K_OP2, K_ST)                                      \
        }                                                                                \
    }
GV_SHAPES(X)
#undef X

/* ---- the table the matcher reads ---- */
enum { R_LD, R_UN, R_OP, R_ST };
typedef struct shape_row {
    uint8_t kind, op;
    int16_t k, d, a, b; /* LD/UN/ST: k, register d; OP: d = op(a, b) */
} shape_row;

#define T_LD(k, r) {R_LD, 0, k, r, -1, -1},
#define T_UN(k, r) {R_UN, 0, k, r, -1, -1},
#define T_OP1(d, OP, a) {R_OP, OP, 0, d, a, -1},
#define T_OP2(d, OP, a, b) {R_OP, OP, 0, d, a, b},
#define T_ST(k, r) {R_ST, 0, k, r, -1, -1},
#define X(NAME, SHAPE) static const shape_row rows_##NAME[] = {SHAPE(T_LD, T_UN, T_OP1, T_OP2, T_ST)};
GV_SHAPES(X)
#undef X

typedef struct shape {
    const char *name;
    const shape_row *rows;
    int nrows;
    gv_fshape_kernel kernel;
} shape;

#define X(NAME, SHAPE) {#NAME, rows_##NAME, (int)(sizeof rows_##NAME / sizeof *rows_##NAME), kernel_##NAME},
static const shape shapes[] = {GV_SHAPES(X)};
#undef X

/* Whether program f computes what shape s computes, register names aside:
 * its per-element instructions, in order, are the shape's ops, each reading
 * the program register that holds the value the shape's op reads. A shape
 * register is one value (defined once); a program register's value is
 * tracked as the program runs (a register may be reused, renamed by an
 * alias or overwritten). Shape loads bind to full float32 loads and shape
 * uniforms to uniform registers on first use; several shape values may bind
 * to one program register (equal constants folded into one, say), which
 * computes the same. */
enum { SHAPE_REGS = 64 };
enum { P_NONE = -1, P_LOAD = -2, P_UNIFORM = -3 }; /* program register states; >= 0: shape value */

static bool bind(const int8_t *skind, int16_t *bound, const int *state,
                 const gv_fused *f, int16_t sr, int16_t pr) {
    if (sr < 0 || pr < 0) return sr == pr;
    if (sr >= SHAPE_REGS || pr >= f->nregs) return false;
    switch (skind[sr]) {
    case R_LD:
        if (state[pr] != P_LOAD) return false;
        break;
    case R_UN:
        if (state[pr] != P_UNIFORM) return false;
        break;
    case R_OP: return state[pr] == sr;
    default: return false;
    }
    if (bound[sr] < 0) bound[sr] = pr;
    return bound[sr] == pr;
}

static bool matches(const gv_fused *f, const shape *s, gv_fshape *out) {
    if (f->nred || f->nregs <= 0) return false;
    int8_t skind[SHAPE_REGS];
    int16_t bound[SHAPE_REGS];
    memset(skind, -1, sizeof skind);
    int nop = 0;
    for (int j = 0; j < s->nrows; j++) {
        const shape_row *r = &s->rows[j];
        if (r->kind == R_ST) continue;
        skind[r->d] = (int8_t)r->kind, bound[r->d] = -1;
        nop += r->kind == R_OP;
    }
    int *state = malloc((size_t)f->nregs * 2 * sizeof *state), *root = state + f->nregs;
    if (!state) return false;
    for (int r = 0; r < f->nregs; r++) state[r] = f->uniform[r] ? P_UNIFORM : P_NONE, root[r] = r;
    for (int q = 0; q < f->nload; q++) {
        const gv_fload *l = &f->load[q];
        if (l->reg >= 0 && l->reg < f->nregs && !f->uniform[l->reg])
            state[l->reg] = l->kind == GV_LOAD_FULL && l->dtype == GV_F32 ? P_LOAD : P_NONE;
    }
    bool ok = true;
    int j = 0; /* the next shape row */
    for (int q = 0; q < f->ninstr && ok; q++) {
        const gv_finstr *in = &f->instr[q];
        if (in->uniform) continue;
        if (in->dst < 0 || in->dst >= f->nregs) {
            ok = false;
            break;
        }
        int16_t a = in->a >= 0 && in->a < f->nregs ? (int16_t)root[in->a] : in->a;
        int16_t b = in->b >= 0 && in->b < f->nregs ? (int16_t)root[in->b] : in->b;
        int newstate = P_NONE, newroot = in->dst;
        if (in->op == GV_FOP_ALIAS) {
            if (a < 0 || a >= f->nregs) {
                ok = false;
                break;
            }
            newroot = a, newstate = state[a];
        } else {
            while (j < s->nrows && s->rows[j].kind != R_OP) j++;
            if (j == s->nrows) {
                ok = false;
                break;
            }
            const shape_row *r = &s->rows[j++];
            ok = in->op == r->op && in->c == -1 && bind(skind, bound, state, f, r->a, a) &&
                 bind(skind, bound, state, f, r->b, b);
            newstate = r->d;
        }
        /* the write ends the value every name of dst held */
        for (int x = 0; x < f->nregs; x++)
            if (root[x] == in->dst && x != in->dst) state[x] = P_NONE, root[x] = x;
        state[in->dst] = newstate, root[in->dst] = newroot;
    }
    int done = 0;
    for (int t = 0; t < s->nrows; t++) done += t < j && s->rows[t].kind == R_OP;
    ok = ok && done == nop;
    /* stores: the shape's, in order, of the values it names */
    int nst = 0;
    for (int t = 0; t < s->nrows && ok; t++) {
        const shape_row *r = &s->rows[t];
        if (r->kind != R_ST) continue;
        if (nst >= f->nstore || r->k != nst) {
            ok = false;
            break;
        }
        const gv_fstore *st = &f->store[nst++];
        ok = st->dtype == GV_F32 && st->reg >= 0 && st->reg < f->nregs && state[root[st->reg]] == r->d;
    }
    ok = ok && nst == f->nstore && nst <= GV_FSHAPE_MAX;
    /* every shape load and uniform bound: the kernel's arguments */
    int nld = 0, nun = 0;
    for (int t = 0; t < s->nrows && ok; t++) {
        const shape_row *r = &s->rows[t];
        if (r->kind != R_LD && r->kind != R_UN) continue;
        int16_t pr = bound[r->d];
        if (pr < 0 || r->k >= GV_FSHAPE_MAX) {
            ok = false;
            break;
        }
        if (r->kind == R_UN) {
            out->ureg[r->k] = pr, nun++;
            continue;
        }
        int found = -1;
        for (int q = 0; q < f->nload && found < 0; q++)
            if (f->load[q].reg == pr && f->load[q].kind == GV_LOAD_FULL) found = q;
        if (found < 0) ok = false;
        else out->load[r->k] = (int16_t)found, nld++;
    }
    free(state);
    if (!ok) return false;
    out->nuniform = nun;
    out->nload = nld;
    out->nstore = nst;
    out->kernel = s->kernel;
    out->name = s->name;
    return true;
}

bool gv_fused_specialise(const gv_fused *f, gv_fshape *out) {
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        gv_fshape s = {0};
        if (matches(f, &shapes[i], &s)) {
            *out = s;
            return true;
        }
    }
    return false;
}
