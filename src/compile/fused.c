/* Fused elementwise programs: a chain of elementwise ops runs as one pass
 * over memory in blocks of GV_FBLOCK elements, each op a tight loop over
 * the block's registers (which the compiler vectorises). The float maths
 * of each op is the reference kernels' own (graph/ew_math.h), so a fused
 * result equals the unfused one bit for bit. */
#include <math.h>
#include <string.h>

#include "compile_internal.h"
#include "graph/ew_math.h"

static void load(const gv_fload *l, void *const *bases, int64_t start, int64_t len, float *r) {
    const char *base = (const char *)bases[l->buf.base] + l->buf.offset;
    if (l->dtype == GV_BOOL) {
        const uint8_t *p = (const uint8_t *)base;
        for (int64_t i = 0; i < len; i++) {
            int64_t k = start + i, idx = 0;
            switch (l->kind) {
            case GV_LOAD_FULL: idx = k; break;
            case GV_LOAD_SCALAR: idx = 0; break;
            case GV_LOAD_PERIODIC: idx = k % l->period; break;
            case GV_LOAD_REPEAT: idx = k / l->period; break;
            default:
                for (int d = 0; d < l->nd; d++) idx += ((k / l->div[d]) % l->mod[d]) * l->stride[d];
            }
            r[i] = p[idx] ? 1.0f : 0.0f;
        }
        return;
    }
    const float *p = (const float *)base;
    switch (l->kind) {
    case GV_LOAD_FULL: memcpy(r, p + start, (size_t)len * sizeof *r); return;
    case GV_LOAD_SCALAR: {
        float v = p[0];
        for (int64_t i = 0; i < len; i++) r[i] = v;
        return;
    }
    case GV_LOAD_PERIODIC: {
        int64_t j = start % l->period;
        for (int64_t i = 0; i < len; i++) {
            r[i] = p[j];
            if (++j == l->period) j = 0;
        }
        return;
    }
    case GV_LOAD_REPEAT: {
        int64_t j = start / l->period, left = l->period - start % l->period;
        for (int64_t i = 0; i < len;) {
            int64_t n = len - i < left ? len - i : left;
            float v = p[j++];
            for (int64_t q = 0; q < n; q++) r[i + q] = v;
            i += n;
            left = l->period;
        }
        return;
    }
    default:
        for (int64_t i = 0; i < len; i++) {
            int64_t k = start + i, idx = 0;
            for (int d = 0; d < l->nd; d++) idx += ((k / l->div[d]) % l->mod[d]) * l->stride[d];
            r[i] = p[idx];
        }
    }
}

#define LOOP1(EXPR)                                                   \
    for (int64_t i = 0; i < len; i++) {                               \
        float x = A[i];                                               \
        D[i] = (EXPR);                                                \
    }                                                                 \
    break
#define LOOP2(EXPR)                                                   \
    for (int64_t i = 0; i < len; i++) {                               \
        float a = A[i], b = B[i];                                     \
        D[i] = (EXPR);                                                \
    }                                                                 \
    break

/* The block loops are where fused programs spend their time: compiled for
 * AVX-512 and AVX2 besides the baseline, picked at load time by the CPU
 * (the same IEEE operations per element in every version, so the results
 * do not depend on the CPU). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define GV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GV_CLONES
#endif

GV_CLONES static void exec(const gv_finstr *in, float *const *regs, int64_t len) {
    float *D = regs[in->dst];
    const float *A = in->a >= 0 ? regs[in->a] : NULL;
    const float *B = in->b >= 0 ? regs[in->b] : NULL;
    const float *C = in->c >= 0 ? regs[in->c] : NULL;
    switch (in->op) {
    case GV_FOP_COPY: memmove(D, A, (size_t)len * sizeof *D); break;
#define X(OP, EXPR) \
    case OP: LOOP1(EXPR);
        GV_UNARY_F32_OPS(X)
#undef X
#define X(OP, EXPR) \
    case OP: LOOP2(EXPR);
        GV_BINARY_F32_OPS(X)
#undef X
#define X(OP, EXPR) \
    case OP: LOOP2((EXPR) ? 1.0f : 0.0f);
        GV_COMPARE_OPS(X)
#undef X
    case GV_OP_SELECT:
        for (int64_t i = 0; i < len; i++) D[i] = A[i] != 0.0f ? B[i] : C[i];
        break;
    default: break; /* not reached: gv_fused_supports keeps other ops out of fusion */
    }
}

/* Reduction epilogues: n elements into one output, in order. */
static void reduce_run1(uint8_t op, float *out, const float *src, int64_t n) {
    float acc = *out;
    if (op == GV_OP_REDUCE_SUM)
        for (int64_t i = 0; i < n; i++) acc += src[i];
    else if (op == GV_OP_REDUCE_MAX)
        for (int64_t i = 0; i < n; i++) acc = (src[i] > acc || isnan(src[i])) ? src[i] : acc;
    else
        for (int64_t i = 0; i < n; i++) acc = (src[i] < acc || isnan(src[i])) ? src[i] : acc;
    *out = acc;
}

/* n elements into n consecutive outputs, one each. */
GV_CLONES static void reduce_runn(uint8_t op, float *out, const float *src, int64_t n) {
    if (op == GV_OP_REDUCE_SUM)
        for (int64_t i = 0; i < n; i++) out[i] += src[i];
    else if (op == GV_OP_REDUCE_MAX)
        for (int64_t i = 0; i < n; i++) out[i] = (src[i] > out[i] || isnan(src[i])) ? src[i] : out[i];
    else
        for (int64_t i = 0; i < n; i++) out[i] = (src[i] < out[i] || isnan(src[i])) ? src[i] : out[i];
}

/* Registers are pointers (regs[r], one per register): a register of
 * computed values points into the thread's scratch (R + r * GV_FBLOCK), a
 * full float load points straight at its operand's memory (no copy), and a
 * cast or broadcast that is not stored is a second name for its operand
 * (GV_FOP_ALIAS). Stored values are
 * computed in scratch and copied out at the end of the block, after every
 * read: a donated buffer may be read and written by the same kernel, and
 * computing straight into the outputs measured slower (the outputs' stores
 * and the operands' loads at equal offsets of page-aligned arrays alias in
 * the store buffer). */
static void run_instr(const gv_finstr *in, float **regs, int64_t len) {
    if (in->op == GV_FOP_ALIAS) regs[in->dst] = regs[in->a];
    else exec(in, regs, len);
}

/* The uniform registers (constants, scalar loads, and what is computed from
 * them only) hold the same value in every element of every block: fill them
 * once per run and thread. Each register has one writer, so nothing
 * overwrites them between blocks. */
static void prepare_uniform(const gv_fused *f, void *const *bases, float *R, float **regs) {
    for (int r = 0; r < f->nregs; r++) regs[r] = R + (size_t)r * GV_FBLOCK;
    for (int k = 0; k < f->nload; k++)
        if (f->load[k].kind == GV_LOAD_SCALAR)
            load(&f->load[k], bases, 0, GV_FBLOCK, R + (size_t)f->load[k].reg * GV_FBLOCK);
    for (int r = 0; r < f->nregs; r++)
        if (f->has_const[r]) {
            float v = (float)f->consts[r], *D = R + (size_t)r * GV_FBLOCK;
            for (int64_t i = 0; i < GV_FBLOCK; i++) D[i] = v;
        }
    for (int k = 0; k < f->ninstr; k++)
        if (f->instr[k].uniform) run_instr(&f->instr[k], regs, GV_FBLOCK);
}

static void run_block(const gv_fused *f, void *const *bases, float *R, float **regs,
                      int64_t start) {
    int64_t len = f->size - start < GV_FBLOCK ? f->size - start : GV_FBLOCK;
    for (int k = 0; k < f->nload; k++) {
        const gv_fload *l = &f->load[k];
        if (l->kind == GV_LOAD_SCALAR) continue;
        if (l->kind == GV_LOAD_FULL && l->dtype == GV_F32)
            regs[l->reg] = (float *)((char *)bases[l->buf.base] + l->buf.offset) + start;
        else
            load(l, bases, start, len, regs[l->reg] = R + (size_t)l->reg * GV_FBLOCK);
    }
    for (int k = 0; k < f->ninstr; k++)
        if (!f->instr[k].uniform) run_instr(&f->instr[k], regs, len);
    for (int k = 0; k < f->nred; k++) { /* in domain order: the reference's order */
        const gv_fepi *e = &f->red[k];
        float *out = (float *)((char *)bases[e->buf.base] + e->buf.offset);
        const float *src = regs[e->reg];
        int64_t span = e->dims[1] * e->dims[2], inner = e->dims[2];
        /* element kk of the domain goes to out[(kk / span) * inner + kk % inner];
         * walked in runs: one output per run when inner == 1, consecutive
         * outputs otherwise. Each output still adds its elements in domain
         * order (the reference's), one at a time. */
        for (int64_t i = 0; i < len;) {
            int64_t kk = start + i;
            if (inner == 1) {
                int64_t n = span - kk % span;
                if (n > len - i) n = len - i;
                reduce_run1(e->op, out + kk / span, src + i, n);
                i += n;
            } else {
                int64_t col = kk % inner, n = inner - col;
                if (n > len - i) n = len - i;
                reduce_runn(e->op, out + (kk / span) * inner + col, src + i, n);
                i += n;
            }
        }
    }
    for (int k = 0; k < f->nstore; k++) {
        const gv_fstore *s = &f->store[k];
        char *base = (char *)bases[s->buf.base] + s->buf.offset;
        const float *src = regs[s->reg];
        if (s->dtype == GV_BOOL) {
            uint8_t *d = (uint8_t *)base + start;
            for (int64_t i = 0; i < len; i++) d[i] = src[i] != 0.0f;
        } else {
            memcpy((float *)base + start, src, (size_t)len * sizeof *src);
        }
    }
}

/* Elements [lo, hi) of a program with a pre-compiled shape (after its
 * uniform registers are filled). */
static void run_shape(const gv_fused *f, void *const *bases, float *const *regs, int64_t lo,
                      int64_t hi) {
    const gv_fshape *s = &f->shape;
    const float *in[GV_FSHAPE_MAX];
    float *out[GV_FSHAPE_MAX], u[GV_FSHAPE_MAX];
    for (int k = 0; k < s->nload; k++) {
        const gv_fload *l = &f->load[s->load[k]];
        in[k] = (const float *)((char *)bases[l->buf.base] + l->buf.offset) + lo;
    }
    for (int k = 0; k < s->nstore; k++)
        out[k] = (float *)((char *)bases[f->store[k].buf.base] + f->store[k].buf.offset) + lo;
    for (int k = 0; k < s->nuniform; k++) u[k] = regs[s->ureg[k]][0];
    if (hi > lo) s->kernel(in, out, u, hi - lo);
}

void gv_fused_run(const gv_fused *f, void *const *bases, float *scratch, int threads) {
    int64_t nblocks = (f->size + GV_FBLOCK - 1) / GV_FBLOCK;
    size_t per_thread = (size_t)f->nregs * GV_FBLOCK;
    for (int k = 0; k < f->nred; k++) {
        const gv_fepi *e = &f->red[k];
        float *out = (float *)((char *)bases[e->buf.base] + e->buf.offset);
        float init = e->op == GV_OP_REDUCE_SUM ? 0.0f : e->op == GV_OP_REDUCE_MAX ? -INFINITY : INFINITY;
        for (int64_t i = 0, n = e->dims[0] * e->dims[2]; i < n; i++) out[i] = init;
    }
    if (f->specialised) {
        if (threads > 1 && nblocks >= 64) {
#pragma omp parallel num_threads(threads)
            {
                int tid = 0, nt = 1;
#ifdef _OPENMP
                extern int omp_get_thread_num(void), omp_get_num_threads(void);
                tid = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
                float *R = scratch + (size_t)tid * per_thread, *regs[f->nregs];
                prepare_uniform(f, bases, R, regs);
                /* contiguous halves, split at a multiple of 16 elements (a cache line) */
                int64_t lo = (f->size * tid / nt) & ~(int64_t)15;
                int64_t hi = tid == nt - 1 ? f->size : (f->size * (tid + 1) / nt) & ~(int64_t)15;
                run_shape(f, bases, regs, lo, hi);
            }
            return;
        }
        float *regs[f->nregs];
        prepare_uniform(f, bases, scratch, regs);
        run_shape(f, bases, regs, 0, f->size);
        return;
    }
    if (threads > 1 && nblocks >= 64 && f->nred == 0) { /* below 16K elements a fork/join costs more */
#pragma omp parallel num_threads(threads)
        {
            int tid = 0;
#ifdef _OPENMP
            extern int omp_get_thread_num(void);
            tid = omp_get_thread_num();
#endif
            float *R = scratch + (size_t)tid * per_thread, *regs[f->nregs];
            prepare_uniform(f, bases, R, regs);
#pragma omp for schedule(static)
            for (int64_t b = 0; b < nblocks; b++) run_block(f, bases, R, regs, b * GV_FBLOCK);
        }
        return;
    }
    float *regs[f->nregs];
    prepare_uniform(f, bases, scratch, regs);
    for (int64_t b = 0; b < nblocks; b++) run_block(f, bases, scratch, regs, b * GV_FBLOCK);
}

bool gv_fused_supports(int op) {
    switch (op) {
#define X(OP, EXPR) case OP:
        GV_UNARY_F32_OPS(X)
        GV_BINARY_F32_OPS(X)
        GV_COMPARE_OPS(X)
#undef X
    case GV_OP_SELECT:
    case GV_OP_CAST:
    case GV_OP_BROADCAST:
    case GV_OP_FULL: return true;
    default: return false;
    }
}
