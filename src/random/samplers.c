/* jax.random samplers in float32, bit-exact with XLA:CPU on an FMA host
 * (docs/random.md sections 5-7). Where XLA contracts a multiply-add into
 * one FMA we call fmaf() explicitly; everything else rounds per operation
 * (this file is built with -ffp-contract=off). Constants are written as
 * (float)<double literal> because the reference rounds decimal -> double ->
 * float, which is not always the same as a direct decimal -> float literal. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor_internal.h"
#include "random_internal.h"

#define F32(c) ((float)(c))

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t bits_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* XLA:CPU's float32 log: Cephes/Eigen polynomial, denormals flushed (6.3). */
static inline __attribute__((always_inline)) float log_f32(float x) {
    if (isnan(x) || x < 0) return NAN;
    if (x == 0) return -INFINITY;
    if (isinf(x)) return INFINITY;
    static const double P[9] = {7.0376836292E-2,  -1.1514610310E-1, 1.1676998740E-1,
                                -1.2420140846E-1, 1.4249322787E-1,  -1.6668057665E-1,
                                2.0000714765E-1,  -2.4999993993E-1, 3.3333331174E-1};
    const float q1 = F32(-2.12194440e-4), q2 = F32(0.693359375);
    const float sqrthf = F32(0.707106781186547524);
    float t = fmaxf(x, f32_from_bits(0x00800000u));
    uint32_t b = bits_from_f32(t);
    float e = 1.0f + (float)((int32_t)(b >> 23) - 0x7F);
    t = f32_from_bits((b & 0x807FFFFFu) | 0x3F000000u);
    int small = t < sqrthf;
    float t1 = small ? t : 0.0f;
    t = t - 1.0f;
    e = e - (small ? 1.0f : 0.0f);
    t = t + t1;
    float x2 = t * t, x3 = x2 * t;
    float y = fmaf(t, F32(P[0]), F32(P[1]));
    float y1 = fmaf(t, F32(P[3]), F32(P[4]));
    float y2 = fmaf(t, F32(P[6]), F32(P[7]));
    y = fmaf(y, t, F32(P[2]));
    y1 = fmaf(y1, t, F32(P[5]));
    y2 = fmaf(y2, t, F32(P[8]));
    y = fmaf(y, x3, y1);
    y = fmaf(y, x3, y2);
    y = fmaf(y, x3, q1 * e);
    t = fmaf(-0.5f, x2, t);
    t = t + y;
    return fmaf(q2, e, t);
}

/* XLA:CPU's float32 log1p: Cephes rational near 0, log(1 + x) elsewhere (6.3). */
static inline __attribute__((always_inline)) float log1p_f32(float x) {
    if (isnan(x) || x < -1.0f) return NAN;
    if (x == -1.0f) return -INFINITY;
    static const double DEN[7] = {1.0,
                                  15.062909083469192043167,
                                  83.047565967967209469434,
                                  221.76239823732856465394,
                                  309.09872225312059774938,
                                  216.42788614495947685003,
                                  60.118660497603843919306};
    static const double NUM[7] = {4.5270000862445199635215e-5, 0.49854102823193375972212,
                                  6.5787325942061044846969,    29.911919328553073277375,
                                  60.949667980987787057556,    57.112963590585538103336,
                                  20.039553499201281259648};
    if (fabsf(x) < F32(0.41421356237309504880)) {
        float x2 = x * x, d = 0.0f, n = 0.0f;
        for (int i = 0; i < 7; i++) d = fmaf(d, x, F32(DEN[i]));
        for (int i = 0; i < 7; i++) n = fmaf(n, x, F32(NUM[i]));
        float s = (x * x2) * (n / d);
        s = fmaf(-0.5f, x2, s);
        return x + s;
    }
    return log_f32(x + 1.0f);
}

/* CHLO float32 erf_inv (M. Giles), w = -log1p(-x*x) as jax >= 0.4.5 (6.1). */
static inline __attribute__((always_inline)) float erf_inv_f32(float x) {
    static const double LT5[9] = {2.81022636e-08,  3.43273939e-07, -3.5233877e-06,
                                  -4.39150654e-06, 0.00021858087,  -0.00125372503,
                                  -0.00417768164,  0.246640727,    1.50140941};
    static const double GE5[9] = {-0.000200214257, 0.000100950558, 0.00134934322,
                                  -0.00367342844,  0.00573950773,  -0.0076224613,
                                  0.00943887047,   1.00167406,     2.83297682};
    if (fabsf(x) == 1.0f) return copysignf(INFINITY, x);
    float w = -log1p_f32(x * -x);
    const double *c;
    if (w < 5.0f) {
        c = LT5;
        w = w - 2.5f;
    } else {
        c = GE5;
        w = sqrtf(w) - 3.0f;
    }
    float p = F32(c[0]);
    for (int i = 1; i < 9; i++) p = fmaf(p, w, F32(c[i]));
    return p * x;
}

float gv_log_f32(float x) { return log_f32(x); }
float gv_log1p_f32(float x) { return log1p_f32(x); }
float gv_erf_inv_f32(float x) { return erf_inv_f32(x); }

/* The samplers' loops, cloned for x86-64-v3/v4: there fmaf() is one FMA
 * instruction instead of a libm call (the same exactly rounded result), the
 * bulk of a normal sample's cost (82 -> ~10 ns per value). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define GV_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GV_CLONES
#endif

GV_CLONES static void sqrt2_erf_inv_inplace(float *p, int64_t n, float sqrt2) {
    for (int64_t i = 0; i < n; i++) p[i] = sqrt2 * erf_inv_f32(p[i]);
}

/* CHLO float32 erf (Eigen's rational approximation on [-4, 4]) (6.2). */
float gv_erf_f32(float x) {
    static const double A[7] = {-2.72614225801306e-10, 2.77068142495902e-08,
                                -2.10102402082508e-06, -5.69250639462346e-05,
                                -7.34990630326855e-04, -2.95459980854025e-03,
                                -1.60960333262415e-02};
    static const double B[5] = {-1.45660718464996e-05, -2.13374055278905e-04,
                                -1.68282697438203e-03, -7.37332916720468e-03,
                                -1.42647390514189e-02};
    x = fminf(fmaxf(x, -4.0f), 4.0f);
    float x2 = x * x;
    float pa = F32(A[0]), pb = F32(B[0]);
    for (int i = 1; i < 7; i++) pa = fmaf(pa, x2, F32(A[i]));
    for (int i = 1; i < 5; i++) pb = fmaf(pb, x2, F32(B[i]));
    return fminf(fmaxf((x * pa) / pb, -1.0f), 1.0f);
}

/* jax.random.uniform (5.1): 23 random mantissa bits give z in [0, 1); then
 * max(lo, fma(z, hi - lo, lo)). Works in place on the bits. */
GV_CLONES static void uniform_inplace(float *p, int64_t n, float lo, float hi) {
    const uint32_t *bits = (const uint32_t *)p;
    float span = hi - lo;
    for (int64_t i = 0; i < n; i++) {
        float z = f32_from_bits((bits[i] >> 9) | 0x3F800000u) - 1.0f;
        p[i] = fmaxf(lo, fmaf(z, span, lo));
    }
}

/* ---- fills into caller memory (no allocation): used by graph kernels ---- */

static const float SQRT2 = F32(1.4142135623730951); /* 0x3FB504F3 */

gv_status gv_random_uniform_fill(gv_prng_impl impl, gv_key key, float *out, int64_t n,
                                 float minval, float maxval) {
    gv_status st = gv_random_bits_fill(impl, key, 32, out, n);
    if (st == GV_OK) uniform_inplace(out, n, minval, maxval);
    return st;
}

gv_status gv_random_normal_fill(gv_prng_impl impl, gv_key key, float *out, int64_t n) {
    /* 5.2: uniform on (nextafter(-1, 0), 1), then sqrt(2) * erf_inv */
    gv_status st = gv_random_uniform_fill(impl, key, out, n, nextafterf(-1.0f, 0.0f), 1.0f);
    if (st != GV_OK) return st;
    sqrt2_erf_inv_inplace(out, n, SQRT2);
    return GV_OK;
}

gv_status gv_random_truncated_normal_fill(gv_prng_impl impl, gv_key key, float *out,
                                          int64_t n, float lower, float upper) {
    if (isnan(lower) || isnan(upper) || !(lower < upper))
        return gv_error(GV_ERR_ARG, "truncated_normal: need lower < upper (got %g, %g)",
                        (double)lower, (double)upper);
    /* 5.3: uniform between erf(lower/sqrt2) and erf(upper/sqrt2), back
     * through erf_inv, clipped strictly inside (lower, upper) */
    float a = gv_erf_f32(lower / SQRT2), b = gv_erf_f32(upper / SQRT2);
    float lo = nextafterf(lower, INFINITY), hi = nextafterf(upper, -INFINITY);
    gv_status st = gv_random_uniform_fill(impl, key, out, n, a, b);
    if (st != GV_OK) return st;
    for (int64_t i = 0; i < n; i++) out[i] = fminf(fmaxf(SQRT2 * gv_erf_inv_f32(out[i]), lo), hi);
    return GV_OK;
}

gv_status gv_random_bernoulli_fill(gv_prng_impl impl, gv_key key, uint8_t *out, int64_t n,
                                   float p, float *scratch) {
    if (!(p >= 0.0f && p <= 1.0f))
        return gv_error(GV_ERR_ARG, "bernoulli: p = %g is not in [0, 1]", (double)p);
    gv_status st = gv_random_uniform_fill(impl, key, scratch, n, 0.0f, 1.0f);
    if (st != GV_OK) return st;
    for (int64_t i = 0; i < n; i++) out[i] = scratch[i] < p; /* 5.4: strict < */
    return GV_OK;
}

gv_tensor *gv_random_uniform_eager(gv_prng_impl impl, gv_key key, int rank, const int64_t *shape,
                                   float minval, float maxval) {
    gv_tensor *t = gv_tensor_zeros(GV_F32, rank, shape);
    if (t && gv_random_uniform_fill(impl, key, gv_tensor_data(t), t->size, minval, maxval) !=
                 GV_OK) {
        gv_error_prefix("gv_random_uniform_eager: ");
        gv_tensor_free(t);
        return NULL;
    }
    return t;
}

gv_tensor *gv_random_normal_eager(gv_prng_impl impl, gv_key key, int rank, const int64_t *shape) {
    gv_tensor *t = gv_tensor_zeros(GV_F32, rank, shape);
    if (t && gv_random_normal_fill(impl, key, gv_tensor_data(t), t->size) != GV_OK) {
        gv_error_prefix("gv_random_normal_eager: ");
        gv_tensor_free(t);
        return NULL;
    }
    return t;
}

gv_tensor *gv_random_truncated_normal_eager(gv_prng_impl impl, gv_key key, float lower, float upper,
                                            int rank, const int64_t *shape) {
    gv_tensor *t = gv_tensor_zeros(GV_F32, rank, shape);
    if (t && gv_random_truncated_normal_fill(impl, key, gv_tensor_data(t), t->size, lower,
                                             upper) != GV_OK) {
        gv_error_prefix("gv_random_truncated_normal_eager: ");
        gv_tensor_free(t);
        return NULL;
    }
    return t;
}

gv_tensor *gv_random_bernoulli_eager(gv_prng_impl impl, gv_key key, float p, int rank,
                                     const int64_t *shape) {
    gv_tensor *u = gv_tensor_zeros(GV_F32, rank, shape);
    gv_tensor *t = u ? gv_tensor_zeros(GV_BOOL, rank, shape) : NULL;
    if (t && gv_random_bernoulli_fill(impl, key, gv_tensor_data(t), t->size, p,
                                      gv_tensor_data(u)) != GV_OK) {
        gv_error_prefix("gv_random_bernoulli_eager: ");
        gv_tensor_free(t);
        t = NULL;
    }
    gv_tensor_free(u);
    return t;
}

gv_tensor *gv_random_randint_eager(gv_prng_impl impl, gv_key key, int rank, const int64_t *shape,
                                   int32_t minval, int32_t maxval) {
    gv_key k[2];
    if (gv_random_split_eager(impl, key, 2, k) != GV_OK) {
        gv_error_prefix("gv_random_randint_eager: ");
        return NULL;
    }
    gv_tensor *t = gv_tensor_zeros(GV_I32, rank, shape);
    uint32_t *lo = t ? malloc((size_t)t->size * sizeof *lo + 1) : NULL;
    if (!t || !lo) {
        if (t) gv_error(GV_ERR_NOMEM, "gv_random_randint_eager: out of memory");
        gv_tensor_free(t);
        free(lo);
        return NULL;
    }
    uint32_t *hi = gv_tensor_data(t);
    gv_random_bits_fill(impl, k[0], 32, hi, t->size);
    gv_random_bits_fill(impl, k[1], 32, lo, t->size);
    /* 5.5: two 32-bit draws combined modulo span with u32 wrap-around */
    uint32_t span = maxval > minval ? (uint32_t)maxval - (uint32_t)minval : 1u;
    uint32_t mult = (65536u % span);
    mult = (mult * mult) % span;
    int32_t *out = gv_tensor_data(t);
    for (int64_t i = 0; i < t->size; i++) {
        uint32_t off = ((hi[i] % span) * mult + (lo[i] % span)) % span;
        out[i] = (int32_t)((uint32_t)minval + off);
    }
    free(lo);
    return t;
}

/* Stable LSD radix sort of (key, value) pairs by key, as lax.sort_key_val
 * with is_stable=True. */
static void sort_key_val(uint32_t *keys, int64_t *vals, uint32_t *tk, int64_t *tv, int64_t n) {
    for (int shift = 0; shift < 32; shift += 8) {
        int64_t count[257] = {0};
        for (int64_t i = 0; i < n; i++) count[((keys[i] >> shift) & 0xFF) + 1]++;
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (int64_t i = 0; i < n; i++) {
            int64_t d = count[(keys[i] >> shift) & 0xFF]++;
            tk[d] = keys[i];
            tv[d] = vals[i];
        }
        memcpy(keys, tk, (size_t)n * sizeof *keys);
        memcpy(vals, tv, (size_t)n * sizeof *vals);
    }
}

gv_tensor *gv_random_permutation_eager(gv_prng_impl impl, gv_key key, int64_t n) {
    if (n < 0) {
        gv_error(GV_ERR_ARG, "gv_random_permutation_eager: negative length %lld", (long long)n);
        return NULL;
    }
    gv_dtype dtype = n < (INT64_C(1) << 31) ? GV_I32 : GV_I64;
    gv_tensor *t = gv_tensor_zeros(dtype, 1, &n);
    if (!t) return NULL;
    size_t m = (size_t)n + 1;
    uint32_t *keys = malloc(m * sizeof *keys), *tk = malloc(m * sizeof *tk);
    int64_t *vals = malloc(m * sizeof *vals), *tv = malloc(m * sizeof *tv);
    gv_status st = GV_OK;
    if (!keys || !tk || !vals || !tv) {
        st = gv_error(GV_ERR_NOMEM, "gv_random_permutation_eager: out of memory for %lld items",
                      (long long)n);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) vals[i] = i;
    /* jax.random._shuffle: ceil(3 ln(n) / ln(2^32 - 1)) rounds, each sorting
     * by fresh 32-bit keys from `key, subkey = split(key)`. */
    int rounds = (int)ceil(3.0 * log(n > 1 ? (double)n : 1.0) / log(4294967295.0));
    for (int r = 0; r < rounds; r++) {
        gv_key sub;
        gv_random_split2_eager(impl, key, &key, &sub);
        if ((st = gv_random_bits_fill(impl, sub, 32, keys, n)) != GV_OK) goto done;
        sort_key_val(keys, vals, tk, tv, n);
    }
    for (int64_t i = 0; i < n; i++) gv_store_f64(dtype, gv_tensor_data(t), i, (double)vals[i]);
done:
    free(keys), free(tk), free(vals), free(tv);
    if (st != GV_OK) {
        gv_tensor_free(t);
        return NULL;
    }
    return t;
}
