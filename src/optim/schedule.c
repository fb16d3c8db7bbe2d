/* Learning-rate schedules: traced functions of the int32 step count
 * (optax/schedules/_schedule.py, _join.py; reference A14). A schedule is a
 * function pointer with its parameters; a join keeps its parts as schedule
 * references in its parameters.
 *
 * Each schedule emits the float32 arithmetic XLA's CPU backend runs for
 * optax's expression under jax.jit (grove/schedules.h, "Numerics"): the
 * helpers in the first half model what XLA and LLVM make of it (constant
 * factors folded, x / c as x * (1/c), a multiply feeding an add fused,
 * cos and pow as glibc computes them), the schedules in the second half
 * are optax's formulas written with them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "optim_internal.h"

struct gv_schedule {
    int refs;
    char *name;
    gv_schedule_fn fn;
    void *ud;
    void (*free_ud)(void *);
};

gv_schedule *gv_schedule_new(const char *name, gv_schedule_fn fn, void *userdata,
                             void (*free_userdata)(void *)) {
    if (!fn) {
        gv_error(GV_ERR_ARG, "gv_schedule_new: fn is NULL");
        if (free_userdata) free_userdata(userdata);
        return NULL;
    }
    gv_schedule *s = calloc(1, sizeof *s);
    const char *nm = name ? name : "schedule";
    char *copy = malloc(strlen(nm) + 1);
    if (!s || !copy) {
        free(s), free(copy);
        if (free_userdata) free_userdata(userdata);
        gv_error(GV_ERR_NOMEM, "gv_schedule_new: out of memory");
        return NULL;
    }
    strcpy(copy, nm);
    *s = (gv_schedule){1, copy, fn, userdata, free_userdata};
    return s;
}

gv_schedule *gv_schedule_retain(gv_schedule *s) {
    if (s) s->refs++;
    return s;
}

void gv_schedule_free(gv_schedule *s) {
    if (!s || --s->refs > 0) return;
    if (s->free_ud) s->free_ud(s->ud);
    free(s->name);
    free(s);
}

const char *gv_schedule_name(const gv_schedule *s) { return s ? s->name : "(null)"; }

gv_value gv_schedule_value(const gv_schedule *s, gv_value count) {
    if (!gv_value_ok(count)) return count;
    if (!s) {
        gv_graph_fail(count.graph, GV_ERR_ARG, "schedule: the schedule is NULL");
        return (gv_value){count.graph, -1};
    }
    if (gv_value_dtype(count) != GV_I32 || gv_value_rank(count) != 0) {
        gv_graph_fail(count.graph, GV_ERR_DTYPE, "%s: the count must be an int32 scalar, got %s[rank %d]",
                      s->name, gv_dtype_name(gv_value_dtype(count)), gv_value_rank(count));
        return (gv_value){count.graph, -1};
    }
    gv_value v = s->fn(count, s->ud);
    if (gv_value_ok(v) && (gv_value_dtype(v) != GV_F32 || gv_value_rank(v) != 0)) {
        gv_graph_fail(count.graph, GV_ERR_DTYPE, "%s: a schedule must give a float32 scalar, got %s[rank %d]",
                      s->name, gv_dtype_name(gv_value_dtype(v)), gv_value_rank(v));
        return (gv_value){count.graph, -1};
    }
    return v;
}

static gv_tree *eval_trace(gv_graph *g, const gv_tree *in, void *ud) {
    gv_value v = gv_schedule_value(ud, gv_tree_leaf_value(in));
    return gv_value_ok(v) ? gv_tree_new_value_leaf(v) : NULL;
}

gv_status gv_schedule_value_eager(const gv_schedule *s, int32_t count, float *out) {
    if (!s || !out) return gv_error(GV_ERR_ARG, "gv_schedule_value_eager: %s is NULL", s ? "out" : "s");
    gv_tensor *c = gv_tensor_scalar(GV_I32, count);
    gv_tree *in = c ? gv_tree_new_leaf(c) : NULL;
    gv_fn *f = in ? gv_trace(eval_trace, (void *)s, in) : NULL;
    gv_tree *res = NULL;
    gv_status st = f ? gv_fn_eval(f, in, &res) : gv_last_status();
    if (st == GV_OK) {
        double v;
        st = gv_tensor_get(gv_tree_leaf_tensor(res), NULL, &v);
        *out = (float)v;
    }
    gv_tree_free(res), gv_fn_free(f), gv_tree_free(in), gv_tensor_free(c);
    if (st != GV_OK) gv_error_prefix("gv_schedule_value_eager: %s: ", s->name);
    return st;
}

/* A schedule made of a function and a malloc'd parameter block, freed with
 * free_ud (free when NULL). On failure the block is freed too. */
static gv_schedule *make(const char *name, gv_schedule_fn fn, void *ud, void (*free_ud)(void *)) {
    if (!ud) {
        gv_error(GV_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    return gv_schedule_new(name, fn, ud, free_ud ? free_ud : free);
}

/* ---- argument checks ---- */

/* math.pi, which jnp.pi is */
#define GV_PI 3.141592653589793

static bool fits_i32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

/* A step count optax turns into an int32 constant (jax.jit raises
 * OverflowError beyond). */
static bool check_i32(const char *fn, const char *arg, int64_t v) {
    if (fits_i32(v)) return true;
    gv_error(GV_ERR_ARG, "%s: %s = %lld does not fit an int32 (jax.jit's OverflowError)", fn, arg,
             (long long)v);
    return false;
}

static bool check_given(const char *fn, const char *arg, double v) {
    if (!isnan(v)) return true;
    gv_error(GV_ERR_ARG, "%s: %s is required (it is GV_NONE)", fn, arg);
    return false;
}

static bool check_given_steps(const char *fn, const char *arg, int64_t v) {
    if (v != GV_STEPS_NONE) return true;
    gv_error(GV_ERR_ARG, "%s: %s is required (it is GV_STEPS_NONE)", fn, arg);
    return false;
}

/* ---- float32 as XLA's CPU code computes it ---------------------------- */

static gv_value c32(gv_graph *g, float v) { return gv_scalar(g, GV_F32, v); }
static gv_value c64(gv_graph *g, double v) { return gv_scalar(g, GV_F64, v); }
static gv_value ci32(gv_graph *g, int32_t v) { return gv_scalar(g, GV_I32, v); }
static gv_value to64(gv_value x) { return gv_cast(x, GV_F64); }
static gv_value to32(gv_value x) { return gv_cast(x, GV_F32); }
static gv_value and_(gv_value a, gv_value b) { return gv_select(a, b, a); }
static gv_value or_(gv_value a, gv_value b) { return gv_select(a, a, b); }

/* a * b + c rounded once: what LLVM makes of an fmul whose only use is an
 * fadd when it compiles XLA's code for an FMA machine. Emulated in float64:
 * the product of two floats is exact there; s = p + c rounds once and
 * TwoSum gives its error e exactly (p + c = s + e). (float)s is the
 * correctly rounded result unless s lies exactly halfway between two
 * floats and e != 0: then e says which of the two the exact sum is nearer.
 * With t = (float)s, d = s - t (exact), 2s - t (exact: every term a
 * multiple of the smaller ulp, within t's binade) is the other float
 * exactly when s is halfway, and no float otherwise. */
static gv_value fma32(gv_value a, gv_value b, gv_value c) {
    gv_graph *g = a.graph;
    gv_value C = to64(c), p = gv_mul(to64(a), to64(b));
    gv_value s = gv_add(p, C), bb = gv_sub(s, p);
    gv_value e = gv_add(gv_sub(p, gv_sub(s, bb)), gv_sub(C, bb));
    gv_value r = to32(s), t = to64(r);
    gv_value d = gv_sub(s, t), other = gv_add(t, gv_add(d, d));
    gv_value zero = c64(g, 0.0);
    gv_value halfway = and_(gv_ne(d, zero), gv_eq(to64(to32(other)), other));
    gv_value beyond = gv_select(gv_gt(d, zero), gv_gt(e, zero), gv_lt(e, zero));
    return gv_select(and_(halfway, beyond), to32(other), r);
}

/* glibc's cosf (sysdeps/ieee754/flt-32/s_cosf.c, from ARM's
 * optimized-routines; glibc >= 2.28), the libm call XLA's code makes for
 * cos. It works in float64: below 120, x is reduced to r = x - n*pi/2, n
 * the nearest integer to x*2/pi computed as glibc does,
 * ((int32)(x * 2^24 * 2/pi) + 2^23) >> 24, and the sine or the cosine
 * polynomial of r is taken by quadrant, negated in quadrants 2 and 3 (the
 * coefficients are glibc's __sincosf_table). glibc's shortcuts for
 * |x| < 0.75 (the cosine polynomial of x) and |x| < 2^-12 (1) are the n = 0
 * case of this and what it rounds to, so they need no branch here. On
 * x86-64 glibc runs its FMA build, whose reduction is one fma: here
 * n*pi/2 = ph + pl exactly (Dekker's product, pi/2 split in 26-bit halves,
 * n a few bits) and r = (ph + x) + pl. The polynomials are plain float64.
 * This gives glibc 2.36's cosf exactly for every float32 |x| < 120 (checked
 * for all 1.1e9 of them); schedules need |x| <= pi, and a larger argument
 * is clamped below 120 (a finite stand-in). */
static const double COS_C0 = 1.0, COS_C1 = -0x1.ffffffd0c621cp-2, COS_C2 = 0x1.55553e1068f19p-5,
                    COS_C3 = -0x1.6c087e89a359dp-10, COS_C4 = 0x1.99343027bf8c3p-16;
static const double SIN_S1 = -0x1.555545995a603p-3, SIN_S2 = 0x1.1107605230bc4p-7,
                    SIN_S3 = -0x1.994eb3774cf24p-13;
static const double HPI_INV_2P24 = 0x1.45f306dc9c883p+23, HPI = 0x1.921fb54442d18p+0;
static const double HPI_HI = 0x1.921fb58p+0, HPI_LO = -0x1.dde974p-27; /* Veltkamp halves */

static gv_value cos_poly(gv_value x2) {
    gv_graph *g = x2.graph;
    gv_value x4 = gv_mul(x2, x2), x6 = gv_mul(x4, x2);
    gv_value c2 = gv_add(c64(g, COS_C3), gv_mul(x2, c64(g, COS_C4)));
    gv_value c1 = gv_add(c64(g, COS_C0), gv_mul(x2, c64(g, COS_C1)));
    gv_value c = gv_add(c1, gv_mul(x4, c64(g, COS_C2)));
    return gv_add(c, gv_mul(x6, c2));
}

static gv_value sin_poly(gv_value x, gv_value x2) {
    gv_graph *g = x.graph;
    gv_value x3 = gv_mul(x, x2), x7 = gv_mul(x3, x2);
    gv_value s1 = gv_add(c64(g, SIN_S2), gv_mul(x2, c64(g, SIN_S3)));
    gv_value s = gv_add(x, gv_mul(x3, c64(g, SIN_S1)));
    return gv_add(s, gv_mul(x7, s1));
}

static gv_value cos32(gv_value y) {
    gv_graph *g = y.graph;
    gv_value x = to64(gv_minimum(gv_abs(y), c32(g, 0x1.dffffep+6f)));
    gv_value ni = gv_cast(gv_mul(x, c64(g, HPI_INV_2P24)), GV_I32);
    gv_value n = gv_div(gv_add(ni, ci32(g, 0x800000)), ci32(g, 0x1000000)); /* >= 0: >> 24 */
    gv_value mn = to64(gv_neg(n));
    gv_value ph = gv_mul(mn, c64(g, HPI));
    gv_value pl = gv_add(gv_sub(gv_mul(mn, c64(g, HPI_HI)), ph), gv_mul(mn, c64(g, HPI_LO)));
    gv_value r = gv_add(gv_add(ph, x), pl), r2 = gv_mul(r, r);
    gv_value q = gv_sub(n, gv_mul(gv_div(n, ci32(g, 4)), ci32(g, 4))); /* n & 3 */
    gv_value q1 = gv_eq(q, ci32(g, 1)), q2 = gv_eq(q, ci32(g, 2)), q3 = gv_eq(q, ci32(g, 3));
    gv_value sign = gv_select(or_(q1, q2), c64(g, -1.0), c64(g, 1.0));
    gv_value cr = cos_poly(r2);
    return to32(gv_select(or_(q1, q3), sin_poly(gv_mul(r, sign), r2),
                          gv_select(or_(q2, q3), gv_neg(cr), cr)));
}

/* floorf (XLA's floor): every float of magnitude >= 2^23 is an integer, and
 * 0 and NaN are their own floor; the others go through int32 truncation. */
static gv_value floor32(gv_value x) {
    gv_graph *g = x.graph;
    gv_value big = c32(g, 0x1p23f);
    gv_value xc = gv_minimum(gv_maximum(x, gv_neg(big)), big);
    gv_value t = to32(gv_cast(xc, GV_I32));
    gv_value fl = gv_select(gv_gt(t, xc), gv_sub(t, c32(g, 1.0f)), t);
    return gv_select(and_(gv_lt(gv_abs(x), big), gv_ne(x, c32(g, 0.0f))), fl, x);
}

/* lax.integer_pow(x, y) as JAX lowers it: binary exponentiation, acc * x
 * in that order, 1 / acc for y < 0, ones for y == 0. */
static gv_value integer_pow(gv_value x, int64_t y) {
    if (y == 0) return gv_ones_like(x);
    bool recip = y < 0;
    uint64_t u = recip ? 0 - (uint64_t)y : (uint64_t)y;
    gv_value acc = {NULL, -1};
    bool have = false;
    while (u > 0) {
        if (u & 1) acc = have ? gv_mul(acc, x) : x, have = true;
        u >>= 1;
        if (u) x = gv_mul(x, x);
    }
    return recip ? gv_div(gv_ones_like(acc), acc) : acc;
}

/* x ** e for a Python-float e (a float32 constant in the HLO): XLA's
 * simplifier makes 0, 1, 2, 3 and -1 into 1, x, x*x, x*(x*x) and 1/x; LLVM
 * makes powf(x, 0.5) a square root (fabs(sqrt(x)), +inf at -inf); anything
 * else is glibc's powf, which gv_pow calls. */
static gv_value pow_float_exponent(gv_value x, double e) {
    float ef = (float)e;
    gv_graph *g = x.graph;
    if (ef == 0.0f) return gv_ones_like(x);
    if (ef == 1.0f) return x;
    if (ef == 2.0f) return gv_mul(x, x);
    if (ef == 3.0f) return gv_mul(x, gv_mul(x, x));
    if (ef == -1.0f) return gv_div(gv_ones_like(x), x);
    if (ef == 0.5f)
        return gv_select(gv_eq(x, c32(g, -INFINITY)), c32(g, INFINITY), gv_abs(gv_sqrt(x)));
    return gv_pow(x, c32(g, ef));
}

/* base ** x for a constant float32 base: LLVM rewrites powf(2^k, x) as
 * exp2f(k * x) (float32 product); glibc's exp2f(q) and powf(2, q) agree on
 * every float32 q (checked on [-200, 200]; beyond both over- or underflow),
 * so that is powf(2, k * x). Any other base stays powf. */
static gv_value pow_const_base(float base, gv_value x) {
    gv_graph *g = x.graph;
    int ex;
    float m = frexpf(base, &ex);
    if (isnormal(base) && base > 0 && m == 0.5f && ex != 1) {
        float k = (float)(ex - 1);
        gv_value kx = k == 1.0f ? x : k == -1.0f ? gv_neg(x) : gv_mul(x, c32(g, k));
        return gv_pow(c32(g, 2.0f), kx);
    }
    return gv_pow(c32(g, base), x);
}

/* A value x times a constant factor k that XLA's simplifier has not yet
 * multiplied in. It folds constant factors: Mul(Mul(x, k1), k2) is
 * Mul(x, k1*k2) and Mul(Mul(x, k1), Mul(y, k2)) is Mul(Mul(x, y), k1*k2)
 * (the product of the constants in float32), drops a factor 1, and an add
 * of x * k contracts into one fma. In piecewise_interpolate's vectors a
 * constant is either a broadcast scalar (all elements equal; XLA turns such
 * literals into broadcasts) or a true array; factors fold only with their
 * own kind, as observed in XLA's optimised HLO. */
typedef enum { K_NONE, K_SCALAR, K_ARRAY } kfactor;
typedef struct scaled {
    gv_value x;
    float k;
    kfactor kind;
} scaled;

static scaled plain(gv_value x) { return (scaled){x, 1.0f, K_NONE}; }

static gv_value sc_value(scaled s) {
    return s.kind == K_NONE ? s.x : gv_mul(s.x, c32(s.x.graph, s.k));
}

static scaled sc_mul(scaled s, float k, kfactor kind) {
    if (kind == K_SCALAR && k == 1.0f) return s;
    if (s.kind == K_NONE) return (scaled){s.x, k, kind};
    if (s.kind == kind) {
        float kk = s.k * k;
        return kind == K_SCALAR && kk == 1.0f ? plain(s.x) : (scaled){s.x, kk, kind};
    }
    return (scaled){sc_value(s), k, kind};
}

/* s + b, b a constant (all_zero: XLA drops an add of zeros). */
static gv_value sc_add(scaled s, float b, bool all_zero) {
    gv_graph *g = s.x.graph;
    if (all_zero) return sc_value(s);
    if (s.kind == K_NONE) return gv_add(s.x, c32(g, b));
    return fma32(s.x, c32(g, s.k), c32(g, b));
}

/* ---- constant ---------------------------------------------------------- */

static gv_value constant_fn(gv_value count, void *ud) {
    return c32(count.graph, (float)*(const double *)ud);
}

gv_schedule *gv_constant_schedule(double value) {
    double *v = malloc(sizeof *v);
    if (v) *v = value;
    return make("constant_schedule", constant_fn, v, NULL);
}

/* ---- polynomial, linear, warmup_constant ------------------------------- */

typedef struct poly {
    float init, diff, end;  /* diff = init - end on the Python floats */
    double power;
    int32_t steps, begin;
} poly;

static gv_value poly_fn(gv_value count, void *ud) {
    const poly *p = ud;
    gv_graph *g = count.graph;
    if (p->steps <= 0) return c32(g, p->init);
    /* c = clip(count - begin, 0, T) in int32; frac = 1 - c * (1/T): the
     * division by a constant is a multiply by its float32 reciprocal, and
     * the subtraction fuses with it */
    gv_value c = gv_sub(count, ci32(g, p->begin));
    c = gv_minimum(gv_maximum(c, ci32(g, 0)), ci32(g, p->steps));
    gv_value frac = fma32(gv_neg(to32(c)), c32(g, 1.0f / (float)p->steps), c32(g, 1.0f));
    gv_value fp = p->power == floor(p->power) && fabs(p->power) < 0x1p62
                      ? integer_pow(frac, (int64_t)p->power)
                      : pow_float_exponent(frac, p->power);
    /* (init - end) * frac**power + end */
    return sc_add(sc_mul(plain(fp), p->diff, K_SCALAR), p->end, p->end == 0.0f);
}

static gv_schedule *poly_new(const char *name, double init_value, double end_value, double power,
                             int64_t transition_steps, int64_t transition_begin) {
    if (transition_begin < 0) transition_begin = 0; /* optax logs it */
    if (transition_steps > 0 && (!check_i32(name, "transition_steps", transition_steps) ||
                                 !check_i32(name, "transition_begin", transition_begin)))
        return NULL;
    poly *p = malloc(sizeof *p);
    if (p)
        *p = (poly){(float)init_value, (float)(init_value - end_value), (float)end_value, power,
                    transition_steps > 0 ? (int32_t)transition_steps : 0, (int32_t)transition_begin};
    return make(name, poly_fn, p, NULL);
}

gv_schedule *gv_polynomial_schedule(double init_value, double end_value, double power,
                                    int64_t transition_steps, int64_t transition_begin) {
    return poly_new("polynomial_schedule", init_value, end_value, power, transition_steps,
                    transition_begin);
}

gv_schedule *gv_linear_schedule(double init_value, double end_value, int64_t transition_steps,
                                int64_t transition_begin) {
    return poly_new("linear_schedule", init_value, end_value, 1.0, transition_steps,
                    transition_begin);
}

gv_schedule *gv_warmup_constant_schedule(double init_value, double peak_value,
                                         int64_t warmup_steps) {
    return poly_new("warmup_constant_schedule", init_value, peak_value, 1.0, warmup_steps, 0);
}

/* ---- join --------------------------------------------------------------- */

typedef struct join {
    size_t n;
    gv_schedule **parts;
    int32_t *bounds; /* n - 1 */
} join;

static void join_free(void *ud) {
    join *j = ud;
    for (size_t i = 0; i < j->n; i++) gv_schedule_free(j->parts[i]);
    free(j->parts), free(j->bounds), free(j);
}

static gv_value join_fn(gv_value step, void *ud) {
    const join *j = ud;
    gv_graph *g = step.graph;
    gv_value out = gv_schedule_value(j->parts[0], step);
    for (size_t i = 1; i < j->n; i++) {
        gv_value b = ci32(g, j->bounds[i - 1]);
        gv_value next = gv_schedule_value(j->parts[i], gv_sub(step, b));
        out = gv_select(gv_lt(step, b), out, next);
    }
    return out;
}

static bool join_args_ok(const char *name, gv_schedule *const *schedules, size_t n,
                         const int64_t *boundaries, size_t nboundaries) {
    if (!schedules) return gv_error(GV_ERR_ARG, "%s: schedules is NULL", name), false;
    if (n == 0) return gv_error(GV_ERR_ARG, "%s: schedules is empty (n is 0)", name), false;
    for (size_t i = 0; i < n; i++)
        if (!schedules[i]) return gv_error(GV_ERR_ARG, "%s: schedules[%zu] is NULL", name, i), false;
    if (nboundaries != n - 1)
        return gv_error(GV_ERR_ARG, "%s: nboundaries is %zu for %zu schedules; it must be n - 1",
                        name, nboundaries, n),
               false;
    if (nboundaries > 0 && !boundaries)
        return gv_error(GV_ERR_ARG, "%s: boundaries is NULL", name), false;
    for (size_t i = 0; i < nboundaries; i++) {
        char arg[40];
        snprintf(arg, sizeof arg, "boundaries[%zu]", i);
        if (!check_i32(name, arg, boundaries[i])) return false;
        if (i > 0 && boundaries[i] <= boundaries[i - 1])
            return gv_error(GV_ERR_ARG,
                            "%s: boundaries must be strictly increasing: boundaries[%zu] = %lld "
                            "after %lld",
                            name, i, (long long)boundaries[i], (long long)boundaries[i - 1]),
                   false;
    }
    return true;
}

/* The join under name; the parts are taken over (freed on failure). */
static gv_schedule *join_new(const char *name, gv_schedule *const *schedules, size_t n,
                             const int64_t *boundaries, size_t nboundaries) {
    join *j = NULL;
    if (!join_args_ok(name, schedules, n, boundaries, nboundaries)) goto fail;
    j = calloc(1, sizeof *j);
    if (j) j->parts = malloc(n * sizeof *j->parts), j->bounds = malloc(n * sizeof *j->bounds);
    if (!j || !j->parts || !j->bounds) {
        gv_error(GV_ERR_NOMEM, "%s: out of memory", name);
        if (j) free(j->parts), free(j->bounds), free(j);
        goto fail;
    }
    j->n = n;
    for (size_t i = 0; i < n; i++) j->parts[i] = schedules[i];
    for (size_t i = 0; i < nboundaries; i++) j->bounds[i] = (int32_t)boundaries[i];
    return gv_schedule_new(name, join_fn, j, join_free);
fail:
    for (size_t i = 0; schedules && i < n; i++) gv_schedule_free(schedules[i]);
    return NULL;
}

gv_schedule *gv_join_schedules(gv_schedule *const *schedules, size_t n,
                               const int64_t *boundaries, size_t nboundaries) {
    return join_new("join_schedules", schedules, n, boundaries, nboundaries);
}

/* A two-part join named name: first before boundary, second from it on.
 * Takes over both; either may be NULL after a failed constructor, whose
 * error then gets fn's prefix. */
static gv_schedule *join2(const char *name, const char *fn, gv_schedule *first,
                          gv_schedule *second, int64_t boundary) {
    if (!first || !second) {
        gv_schedule_free(first), gv_schedule_free(second);
        gv_error_prefix("%s: ", fn);
        return NULL;
    }
    return join_new(name, (gv_schedule *[]){first, second}, 2, &boundary, 1);
}

/* ---- cosine decay, warmup cosine decay, sgdr ---------------------------- */

typedef struct cosine {
    float init, decay_steps, theta_step; /* pi * (1 / decay_steps) */
    float one_minus_alpha, alpha;
    double exponent;
} cosine;

static gv_value cosine_fn(gv_value count, void *ud) {
    const cosine *p = ud;
    gv_graph *g = count.graph;
    float ef = (float)p->exponent;
    if (ef == 0.0f) /* pow(x, 0) is 1, and XLA folds the rest */
        return c32(g, (p->one_minus_alpha + p->alpha) * p->init);
    /* decay_steps is a Python float: min((float)count, d); pi * c / d is
     * c * (pi * (1/d)), both constants folded in float32 */
    gv_value c = gv_minimum(to32(count), c32(g, p->decay_steps));
    gv_value g1 = gv_add(cos32(gv_mul(c, c32(g, p->theta_step))), c32(g, 1.0f));
    /* (0.5 * g1)**e: XLA's integral cases keep the 0.5s as a factor */
    scaled pw;
    if (ef == 1.0f) pw = (scaled){g1, 0.5f, K_SCALAR};
    else if (ef == 2.0f) pw = (scaled){gv_mul(g1, g1), 0.25f, K_SCALAR};
    else if (ef == 3.0f) pw = (scaled){gv_mul(g1, gv_mul(g1, g1)), 0.125f, K_SCALAR};
    else pw = plain(pow_float_exponent(gv_mul(g1, c32(g, 0.5f)), p->exponent));
    /* init * ((1 - alpha) * pw + alpha) */
    scaled decayed = sc_mul(pw, p->one_minus_alpha, K_SCALAR);
    if (p->alpha != 0.0f) decayed = plain(sc_add(decayed, p->alpha, false));
    return sc_value(sc_mul(decayed, p->init, K_SCALAR));
}

static gv_schedule *cosine_new(const char *name, double init_value, int64_t decay_steps,
                               double alpha, double exponent) {
    if (decay_steps <= 0) {
        gv_error(GV_ERR_ARG, "%s: .decay_steps must be positive, got %lld (optax: ValueError)",
                 name, (long long)decay_steps);
        return NULL;
    }
    cosine *p = malloc(sizeof *p);
    if (p) {
        float d = (float)(double)decay_steps;
        *p = (cosine){(float)init_value, d, (float)GV_PI * (1.0f / d), (float)(1.0 - alpha),
                      (float)alpha, exponent};
    }
    return make(name, cosine_fn, p, NULL);
}

gv_cosine_decay_schedule_opts gv_cosine_decay_schedule_defaults(void) {
    return (gv_cosine_decay_schedule_opts){GV_COSINE_DECAY_SCHEDULE_DEFAULTS};
}

gv_schedule *gv_cosine_decay_schedule_with(const gv_cosine_decay_schedule_opts *o) {
    const char *fn = "cosine_decay_schedule";
    if (!o) return gv_error(GV_ERR_ARG, "%s: opts is NULL", fn), NULL;
    if (!check_given(fn, ".init_value", o->init_value) ||
        !check_given_steps(fn, ".decay_steps", o->decay_steps))
        return NULL;
    return cosine_new(fn, o->init_value, o->decay_steps, o->alpha, o->exponent);
}

gv_warmup_cosine_decay_schedule_opts gv_warmup_cosine_decay_schedule_defaults(void) {
    return (gv_warmup_cosine_decay_schedule_opts){GV_WARMUP_COSINE_DECAY_SCHEDULE_DEFAULTS};
}

static gv_schedule *warmup_cosine_new(const char *fn, const gv_warmup_cosine_decay_schedule_opts *o) {
    if (!check_given(fn, ".init_value", o->init_value) ||
        !check_given(fn, ".peak_value", o->peak_value) ||
        !check_given_steps(fn, ".warmup_steps", o->warmup_steps) ||
        !check_given_steps(fn, ".decay_steps", o->decay_steps) ||
        !check_i32(fn, ".warmup_steps", o->warmup_steps))
        return NULL;
    int64_t cosine_steps;
    if (__builtin_sub_overflow(o->decay_steps, o->warmup_steps, &cosine_steps) || cosine_steps <= 0) {
        gv_error(GV_ERR_ARG,
                 "%s: .decay_steps (%lld) must exceed .warmup_steps (%lld): the cosine part has "
                 "decay_steps - warmup_steps steps (optax: ValueError)",
                 fn, (long long)o->decay_steps, (long long)o->warmup_steps);
        return NULL;
    }
    double alpha = o->peak_value == 0.0 ? 0.0 : o->end_value / o->peak_value;
    gv_schedule *warm = poly_new("linear_schedule", o->init_value, o->peak_value, 1.0,
                                 o->warmup_steps, 0);
    gv_schedule *decay = warm ? cosine_new("cosine_decay_schedule", o->peak_value, cosine_steps,
                                           alpha, o->exponent)
                              : NULL;
    return join2("warmup_cosine_decay_schedule", fn, warm, decay, o->warmup_steps);
}

gv_schedule *gv_warmup_cosine_decay_schedule_with(const gv_warmup_cosine_decay_schedule_opts *o) {
    const char *fn = "warmup_cosine_decay_schedule";
    if (!o) return gv_error(GV_ERR_ARG, "%s: opts is NULL", fn), NULL;
    return warmup_cosine_new(fn, o);
}

gv_schedule *gv_sgdr_schedule(const gv_warmup_cosine_decay_schedule_opts *cycles, size_t n) {
    const char *fn = "sgdr_schedule";
    if (!cycles || n == 0)
        return gv_error(GV_ERR_ARG, "%s: %s", fn, cycles ? "no cycles (n is 0)" : "cycles is NULL"),
               NULL;
    gv_schedule **parts = calloc(n, sizeof *parts);
    int64_t *bounds = malloc(n * sizeof *bounds);
    if (!parts || !bounds) {
        free(parts), free(bounds);
        return gv_error(GV_ERR_NOMEM, "%s: out of memory", fn), NULL;
    }
    int64_t step = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s: cycles[%zu]", fn, i);
        parts[i] = warmup_cosine_new(what, &cycles[i]);
        ok = parts[i] != NULL;
        /* optax's boundaries: the running sum of decay_steps (int32 but the last) */
        if (ok && (__builtin_add_overflow(step, cycles[i].decay_steps, &step) ||
                   (i + 1 < n && !fits_i32(step)))) {
            gv_error(GV_ERR_ARG, "%s: the cycle ends at step %lld (the sum of .decay_steps so "
                     "far), which does not fit an int32", what, (long long)step);
            ok = false;
        }
        bounds[i] = step;
    }
    gv_schedule *s = NULL;
    if (ok) s = join_new(fn, parts, n, bounds, n - 1);
    else
        for (size_t i = 0; i < n; i++) gv_schedule_free(parts[i]);
    free(parts), free(bounds);
    return s;
}

/* ---- exponential decay -------------------------------------------------- */

typedef struct expo {
    float init, rate, recip, end; /* recip = 1 / (float)T */
    int32_t steps, begin;
    bool constant, staircase, has_end, lower_bound;
} expo;

static gv_value expo_fn(gv_value count, void *ud) {
    const expo *p = ud;
    gv_graph *g = count.graph;
    if (p->constant) return c32(g, p->init);
    gv_value d = gv_sub(count, ci32(g, p->begin));
    gv_value e = gv_mul(to32(d), c32(g, p->recip)); /* d / T */
    if (p->staircase) e = floor32(e);
    gv_value decayed = gv_mul(c32(g, p->init), pow_const_base(p->rate, e));
    gv_value v = gv_select(gv_le(d, ci32(g, 0)), c32(g, p->init), decayed);
    if (p->has_end)
        v = p->lower_bound ? gv_maximum(v, c32(g, p->end)) : gv_minimum(v, c32(g, p->end));
    return v;
}

static gv_schedule *expo_new(const char *fn, double init_value, int64_t transition_steps,
                             double decay_rate, int64_t transition_begin, bool staircase,
                             double end_value) {
    bool constant = transition_steps <= 0 || decay_rate == 0; /* optax logs it */
    if (transition_begin < 0) transition_begin = 0;
    if (!constant && (!check_i32(fn, "transition_steps", transition_steps) ||
                      !check_i32(fn, "transition_begin", transition_begin)))
        return NULL;
    expo *p = malloc(sizeof *p);
    if (p)
        *p = (expo){(float)init_value, (float)decay_rate,
                    constant ? 1.0f : 1.0f / (float)transition_steps, (float)end_value,
                    constant ? 0 : (int32_t)transition_steps, (int32_t)transition_begin,
                    constant, staircase, !isnan(end_value), decay_rate < 1.0};
    return make("exponential_decay", expo_fn, p, NULL);
}

gv_exponential_decay_opts gv_exponential_decay_defaults(void) {
    return (gv_exponential_decay_opts){GV_EXPONENTIAL_DECAY_DEFAULTS};
}

gv_schedule *gv_exponential_decay_with(const gv_exponential_decay_opts *o) {
    const char *fn = "exponential_decay";
    if (!o) return gv_error(GV_ERR_ARG, "%s: opts is NULL", fn), NULL;
    if (!check_given(fn, ".init_value", o->init_value) ||
        !check_given_steps(fn, ".transition_steps", o->transition_steps) ||
        !check_given(fn, ".decay_rate", o->decay_rate))
        return NULL;
    return expo_new(fn, o->init_value, o->transition_steps, o->decay_rate, o->transition_begin,
                    o->staircase, o->end_value);
}

gv_warmup_exponential_decay_schedule_opts gv_warmup_exponential_decay_schedule_defaults(void) {
    return (gv_warmup_exponential_decay_schedule_opts){
        GV_WARMUP_EXPONENTIAL_DECAY_SCHEDULE_DEFAULTS};
}

gv_schedule *gv_warmup_exponential_decay_schedule_with(
    const gv_warmup_exponential_decay_schedule_opts *o) {
    const char *fn = "warmup_exponential_decay_schedule";
    if (!o) return gv_error(GV_ERR_ARG, "%s: opts is NULL", fn), NULL;
    if (!check_given(fn, ".init_value", o->init_value) ||
        !check_given(fn, ".peak_value", o->peak_value) ||
        !check_given_steps(fn, ".warmup_steps", o->warmup_steps) ||
        !check_given_steps(fn, ".transition_steps", o->transition_steps) ||
        !check_given(fn, ".decay_rate", o->decay_rate) ||
        !check_i32(fn, ".warmup_steps", o->warmup_steps))
        return NULL;
    gv_schedule *warm = poly_new("linear_schedule", o->init_value, o->peak_value, 1.0,
                                 o->warmup_steps, 0);
    gv_schedule *decay = warm ? expo_new(fn, o->peak_value, o->transition_steps, o->decay_rate,
                                         o->transition_begin, o->staircase, o->end_value)
                              : NULL;
    return join2(fn, fn, warm, decay, o->warmup_steps);
}

/* ---- piecewise constant and interpolated --------------------------------- */

typedef struct dict_entry {
    int64_t boundary;
    double scale;
    size_t index; /* in the caller's arrays, for messages and a stable order */
} dict_entry;

static int by_boundary(const void *pa, const void *pb) {
    const dict_entry *a = pa, *b = pb;
    if (a->boundary != b->boundary) return a->boundary < b->boundary ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* The dict {boundaries[i]: scales[i]} as sorted(d.items()): checked
 * (scales >= 0, int32 boundaries, no key twice) and sorted into *b, *s
 * (malloc'd; NULL for n = 0). */
static bool sorted_dict(const char *fn, const int64_t *boundaries, const double *scales,
                        size_t n, int32_t **b, double **s) {
    *b = NULL, *s = NULL;
    if (n == 0) return true;
    if (!boundaries || !scales) {
        gv_error(GV_ERR_ARG, "%s: %s is NULL with n = %zu", fn, boundaries ? "scales" : "boundaries", n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char arg[40];
        snprintf(arg, sizeof arg, "boundaries[%zu]", i);
        if (!check_i32(fn, arg, boundaries[i])) return false;
        if (!(scales[i] >= 0.0)) {
            gv_error(GV_ERR_ARG, "%s: scales[%zu] = %g; scales must be >= 0 (optax: ValueError)", fn,
                     i, scales[i]);
            return false;
        }
    }
    dict_entry *e = malloc(n * sizeof *e);
    *b = malloc(n * sizeof **b), *s = malloc(n * sizeof **s);
    if (!e || !*b || !*s) {
        free(e), free(*b), free(*s), *b = NULL, *s = NULL;
        gv_error(GV_ERR_NOMEM, "%s: out of memory", fn);
        return false;
    }
    for (size_t i = 0; i < n; i++) e[i] = (dict_entry){boundaries[i], scales[i], i};
    qsort(e, n, sizeof *e, by_boundary);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && e[i].boundary == e[i - 1].boundary) {
            gv_error(GV_ERR_ARG, "%s: boundaries[%zu] and boundaries[%zu] are both %lld (a dict key "
                     "appears once)", fn, e[i - 1].index, e[i].index, (long long)e[i].boundary);
            free(e), free(*b), free(*s), *b = NULL, *s = NULL;
            return false;
        }
        (*b)[i] = (int32_t)e[i].boundary, (*s)[i] = e[i].scale;
    }
    free(e);
    return true;
}

typedef struct pconst {
    float init;
    size_t n;
    int32_t *bounds;
    float *scales;
} pconst;

static void pconst_free(void *ud) {
    pconst *p = ud;
    free(p->bounds), free(p->scales), free(p);
}

static gv_value pconst_fn(gv_value count, void *ud) {
    const pconst *p = ud;
    gv_graph *g = count.graph;
    gv_value v = c32(g, p->init), one = c32(g, 1.0f);
    for (size_t i = 0; i < p->n; i++) {
        /* ind = max(0, sign(b - count)); v = v * ind + (1 - ind) * scale * v.
         * While v is still the constant init, XLA folds scale * init. The
         * products with ind in {0, 1} are exact, so fusing changes nothing. */
        gv_value sg = gv_sign(gv_sub(ci32(g, p->bounds[i]), count));
        gv_value ind = gv_maximum(to32(sg), c32(g, 0.0f));
        gv_value rest = i == 0 ? gv_mul(gv_sub(one, ind), c32(g, p->scales[0] * p->init))
                               : gv_mul(gv_mul(gv_sub(one, ind), c32(g, p->scales[i])), v);
        v = gv_add(gv_mul(v, ind), rest);
    }
    return v;
}

gv_schedule *gv_piecewise_constant_schedule(double init_value, const int64_t *boundaries,
                                            const double *scales, size_t n) {
    const char *fn = "piecewise_constant_schedule";
    int32_t *b;
    double *s;
    if (!sorted_dict(fn, boundaries, scales, n, &b, &s)) return NULL;
    pconst *p = calloc(1, sizeof *p);
    float *sf = n ? malloc(n * sizeof *sf) : NULL;
    if (!p || (n && !sf)) {
        free(p), free(sf), free(b), free(s);
        return gv_error(GV_ERR_NOMEM, "%s: out of memory", fn), NULL;
    }
    for (size_t i = 0; i < n; i++) sf[i] = (float)s[i];
    free(s);
    *p = (pconst){(float)init_value, n, b, sf};
    return make(fn, pconst_fn, p, pconst_free);
}

/* piecewise_interpolate_schedule's arrays, all float32 constants XLA
 * folds: per interval i in [0, n): lo = bounds[i], hi = bounds[i + 1],
 * recip = 1 / (float)max(hi - lo, 1), and k = end - start (linear) or
 * (start - end) / 2 (cosine); values[0..n]. The kinds say which of them XLA
 * keeps as a broadcast scalar (sc_mul). */
typedef struct interp {
    bool cosine;
    size_t n;
    int32_t *lo, *hi;
    float *recip, *k, *values;
    kfactor recip_kind, k_kind;
    bool start_zero; /* every addend (start or end) is 0 */
} interp;

static void interp_free(void *ud) {
    interp *p = ud;
    free(p->lo), free(p->hi), free(p->recip), free(p->k), free(p->values), free(p);
}

static kfactor kind_of(const float *v, size_t n) {
    if (n == 1) return K_SCALAR;
    for (size_t i = 1; i < n; i++)
        if (memcmp(&v[i], &v[0], sizeof *v)) return K_ARRAY;
    return K_SCALAR;
}

static gv_value interp_fn(gv_value count, void *ud) {
    const interp *p = ud;
    gv_graph *g = count.graph;
    gv_value zero = c32(g, 0.0f);
    gv_value last = gv_select(gv_ge(count, ci32(g, p->n ? p->hi[p->n - 1] : 0)),
                              c32(g, p->values[p->n]), zero);
    if (p->n == 0) return last;
    /* indicator.dot(interp_vals) is, after XLA, a sum of selects (from 0
     * when there is more than one interval) */
    gv_value acc = p->n > 1 ? zero : (gv_value){NULL, -1};
    for (size_t i = 0; i < p->n; i++) {
        gv_value x = to32(gv_sub(count, ci32(g, p->lo[i])));
        scaled pct = sc_mul(plain(x), p->recip[i], p->recip_kind);
        gv_value v;
        if (p->cosine) { /* end + (start - end) / 2 * (cos(pi * pct) + 1) */
            gv_value theta = sc_value(sc_mul(pct, (float)GV_PI, K_SCALAR));
            gv_value g1 = gv_add(cos32(theta), c32(g, 1.0f));
            v = sc_add(sc_mul(plain(g1), p->k[i], p->k_kind), p->values[i + 1], p->start_zero);
        } else { /* (end - start) * pct + start */
            v = sc_add(sc_mul(pct, p->k[i], p->k_kind), p->values[i], p->start_zero);
        }
        gv_value in = and_(gv_le(ci32(g, p->lo[i]), count), gv_lt(count, ci32(g, p->hi[i])));
        gv_value term = gv_select(in, v, zero);
        acc = p->n > 1 ? gv_add(acc, term) : term;
    }
    return gv_add(acc, last);
}

/* The schedule for type and the sorted dict b, s (n entries, taken over). */
static gv_schedule *interp_new(const char *name, bool is_cosine, double init_value, int32_t *b,
                               double *s, size_t n) {
    interp *p = calloc(1, sizeof *p);
    size_t m = n ? n : 1;
    if (p) {
        p->lo = malloc(m * sizeof *p->lo), p->hi = malloc(m * sizeof *p->hi);
        p->recip = malloc(m * sizeof *p->recip), p->k = malloc(m * sizeof *p->k);
        p->values = malloc((n + 1) * sizeof *p->values);
    }
    if (!p || !p->lo || !p->hi || !p->recip || !p->k || !p->values) {
        if (p) interp_free(p);
        free(b), free(s);
        return gv_error(GV_ERR_NOMEM, "%s: out of memory", name), NULL;
    }
    p->cosine = is_cosine, p->n = n;
    /* values = cumprod([init, s0, s1, ...]) in float32: XLA folds the
     * reduce_window JAX lowers cumprod to, left to right */
    p->values[0] = (float)init_value;
    for (size_t i = 0; i < n; i++) p->values[i + 1] = p->values[i] * (float)s[i];
    p->start_zero = true;
    for (size_t i = 0; i < n; i++) {
        p->lo[i] = i ? b[i - 1] : 0, p->hi[i] = b[i];
        /* max(hi - lo, 1) in int32 (wrapping as XLA's) */
        int32_t size = (int32_t)((uint32_t)p->hi[i] - (uint32_t)p->lo[i]);
        p->recip[i] = 1.0f / (float)(size > 1 ? size : 1);
        float start = p->values[i], end = p->values[i + 1];
        p->k[i] = is_cosine ? (start - end) * 0.5f : end - start;
        p->start_zero &= (is_cosine ? end : start) == 0.0f;
    }
    p->recip_kind = kind_of(p->recip, n), p->k_kind = kind_of(p->k, n);
    free(b), free(s);
    return make(name, interp_fn, p, interp_free);
}

gv_schedule *gv_piecewise_interpolate_schedule(const char *interpolate_type, double init_value,
                                               const int64_t *boundaries, const double *scales,
                                               size_t n) {
    const char *fn = "piecewise_interpolate_schedule";
    bool linear = interpolate_type && !strcmp(interpolate_type, "linear");
    if (!linear && !(interpolate_type && !strcmp(interpolate_type, "cosine")))
        return gv_error(GV_ERR_ARG, "%s: interpolate_type must be either 'cosine' or 'linear', got %s%s%s",
                        fn, interpolate_type ? "'" : "", interpolate_type ? interpolate_type : "NULL",
                        interpolate_type ? "'" : ""),
               NULL;
    int32_t *b;
    double *s;
    if (!sorted_dict(fn, boundaries, scales, n, &b, &s)) return NULL;
    return interp_new(fn, !linear, init_value, b, s, n);
}

/* A onecycle's dict built as the Python literal builds it: a key given
 * again replaces the earlier entry's value and keeps its place. */
static size_t dict_put(int64_t *keys, double *vals, size_t n, int64_t key, double val) {
    for (size_t i = 0; i < n; i++)
        if (keys[i] == key) return vals[i] = val, n;
    keys[n] = key, vals[n] = val;
    return n + 1;
}

/* int(pct * T) for an int32 boundary; false with the error set. */
static bool pct_boundary(const char *fn, const char *arg, double pct, int64_t steps, int64_t *out) {
    double b = trunc(pct * (double)steps);
    if (!(b >= INT32_MIN && b <= INT32_MAX)) {
        gv_error(GV_ERR_ARG, "%s: int(%s * transition_steps) = %g does not fit an int32", fn, arg, b);
        return false;
    }
    *out = (int64_t)b;
    return true;
}

static bool check_onecycle(const char *fn, int64_t steps, double peak, double div, double final_div) {
    if (!check_given_steps(fn, ".transition_steps", steps) || !check_given(fn, ".peak_value", peak))
        return false;
    if (steps <= 0) {
        gv_error(GV_ERR_ARG, "%s: .transition_steps must be positive, got %lld (optax: ValueError)",
                 fn, (long long)steps);
        return false;
    }
    if (!check_i32(fn, ".transition_steps", steps)) return false;
    /* peak / div, 1 / div, 1 / final_div: Python divides (ZeroDivisionError at 0) and
     * piecewise_interpolate_schedule wants scales >= 0 */
    const char *bad = !(div > 0) ? ".div_factor" : !(final_div > 0) ? ".final_div_factor" : NULL;
    if (bad) {
        gv_error(GV_ERR_ARG, "%s: %s is %g; it must be > 0 (the scales are it or its reciprocal)",
                 fn, bad, bad[1] == 'd' ? div : final_div);
        return false;
    }
    return true;
}

gv_linear_onecycle_schedule_opts gv_linear_onecycle_schedule_defaults(void) {
    return (gv_linear_onecycle_schedule_opts){GV_LINEAR_ONECYCLE_SCHEDULE_DEFAULTS};
}

gv_schedule *gv_linear_onecycle_schedule_with(const gv_linear_onecycle_schedule_opts *o) {
    const char *fn = "linear_onecycle_schedule";
    if (!o) return gv_error(GV_ERR_ARG, "%s: opts is NULL", fn), NULL;
    int64_t k[3], b1, b2;
    double v[3];
    if (!check_onecycle(fn, o->transition_steps, o->peak_value, o->div_factor, o->final_div_factor) ||
        !pct_boundary(fn, ".pct_start", o->pct_start, o->transition_steps, &b1) ||
        !pct_boundary(fn, ".pct_final", o->pct_final, o->transition_steps, &b2))
        return NULL;
    size_t n = dict_put(k, v, 0, b1, o->div_factor);
    n = dict_put(k, v, n, b2, 1.0 / o->div_factor);
    n = dict_put(k, v, n, o->transition_steps, 1.0 / o->final_div_factor);
    int32_t *b;
    double *s;
    if (!sorted_dict(fn, k, v, n, &b, &s)) return NULL;
    return interp_new(fn, false, o->peak_value / o->div_factor, b, s, n);
}

gv_cosine_onecycle_schedule_opts gv_cosine_onecycle_schedule_defaults(void) {
    return (gv_cosine_onecycle_schedule_opts){GV_COSINE_ONECYCLE_SCHEDULE_DEFAULTS};
}

gv_schedule *gv_cosine_onecycle_schedule_with(const gv_cosine_onecycle_schedule_opts *o) {
    const char *fn = "cosine_onecycle_schedule";
    if (!o) return gv_error(GV_ERR_ARG, "%s: opts is NULL", fn), NULL;
    int64_t k[2], b1;
    double v[2];
    if (!check_onecycle(fn, o->transition_steps, o->peak_value, o->div_factor, o->final_div_factor) ||
        !pct_boundary(fn, ".pct_start", o->pct_start, o->transition_steps, &b1))
        return NULL;
    size_t n = dict_put(k, v, 0, b1, o->div_factor);
    n = dict_put(k, v, n, o->transition_steps, 1.0 / (o->div_factor * o->final_div_factor));
    int32_t *b;
    double *s;
    if (!sorted_dict(fn, k, v, n, &b, &s)) return NULL;
    return interp_new(fn, true, o->peak_value / o->div_factor, b, s, n);
}
