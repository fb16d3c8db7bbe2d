/* JAX's threefry2x32 PRNG: keys, fold_in, split and random bits in both of
 * JAX's schemes. Every formula cites the section of the spec it implements
 * (docs/random.md, written from the jax sources). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor_internal.h"
#include "random_internal.h"

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

/* Random123 Threefry-2x32 with 20 rounds, as jax's threefry2x32_p (spec 1). */
void gv_threefry2x32(gv_key key, uint32_t x0, uint32_t x1, uint32_t out[2]) {
    static const int rot[2][4] = {{13, 15, 26, 6}, {17, 29, 16, 24}};
    const uint32_t ks[3] = {key.k[0], key.k[1], key.k[0] ^ key.k[1] ^ 0x1BD11BDAu};
    x0 += ks[0];
    x1 += ks[1];
    for (int g = 0; g < 5; g++) {
        for (int r = 0; r < 4; r++) {
            x0 += x1;
            x1 = rotl32(x1, rot[g & 1][r]) ^ x0;
        }
        x0 += ks[(g + 1) % 3];
        x1 += ks[(g + 2) % 3] + (uint32_t)(g + 1);
    }
    out[0] = x0;
    out[1] = x1;
}

/* jax's threefry_2x32(key, iota(n)) (spec 1.1): pad to even length with one
 * 0, pair count j with count h + j, emit all first words then all second
 * words, drop the padding's output. Needs n < 2^32 - 1 (spec 4). */
static void threefry_iota(gv_key key, uint32_t *out, int64_t n) {
    int64_t h = (n + 1) / 2;
    uint32_t y[2];
    for (int64_t j = 0; j < h; j++) {
        uint32_t c1 = h + j < n ? (uint32_t)(h + j) : 0u; /* the padding 0 */
        gv_threefry2x32(key, (uint32_t)j, c1, y);
        out[j] = y[0];
        if (h + j < n) out[h + j] = y[1];
    }
}

gv_key gv_prng_key(int64_t seed) {
    /* x32 mode: the int64 seed is canonicalised to int32 (wraps), then
     * k0 = seed >> 32 (logical) = 0 (spec 2). */
    return (gv_key){{0u, (uint32_t)((uint64_t)seed & 0xFFFFFFFFu)}};
}

gv_key gv_prng_key_x64(int64_t seed) {
    uint64_t s = (uint64_t)seed;
    return (gv_key){{(uint32_t)(s >> 32), (uint32_t)(s & 0xFFFFFFFFu)}};
}

gv_key gv_random_fold_in_eager(gv_key key, uint32_t data) {
    /* threefry_2x32(key, [0, data]) is the single block (0, data) (spec 3). */
    uint32_t y[2];
    gv_threefry2x32(key, 0u, data, y);
    return (gv_key){{y[0], y[1]}};
}

static gv_status check_impl(const char *what, gv_prng_impl impl) {
    if (impl != GV_PRNG_PARTITIONABLE && impl != GV_PRNG_LEGACY)
        return gv_error(GV_ERR_ARG, "%s: unknown PRNG scheme %d (expected GV_PRNG_LEGACY or "
                        "GV_PRNG_PARTITIONABLE)", what, (int)impl);
    return GV_OK;
}

gv_status gv_random_split_eager(gv_prng_impl impl, gv_key key, int64_t n, gv_key *out) {
    gv_status st = check_impl("gv_random_split_eager", impl);
    if (st != GV_OK) return st;
    if (n < 0) return gv_error(GV_ERR_ARG, "gv_random_split_eager: negative number of keys %lld",
                               (long long)n);
    if (n > 0 && !out) return gv_error(GV_ERR_ARG, "gv_random_split_eager: out is NULL");
    if (impl == GV_PRNG_PARTITIONABLE) {
        /* key i = block(key, hi32(i), lo32(i)) (spec 3) */
        for (int64_t i = 0; i < n; i++) {
            uint32_t y[2];
            gv_threefry2x32(key, (uint32_t)((uint64_t)i >> 32), (uint32_t)i, y);
            out[i] = (gv_key){{y[0], y[1]}};
        }
        return GV_OK;
    }
    if (n >= (INT64_C(1) << 31))
        return gv_error(GV_ERR_UNSUPPORTED, "gv_random_split_eager: %lld keys exceed the legacy scheme's "
                        "2^31 limit", (long long)n);
    /* legacy: out = threefry_2x32(key, iota(2n)); key i = (out[2i], out[2i+1]) */
    uint32_t *w = malloc((size_t)(2 * n + 1) * sizeof *w);
    if (!w) return gv_error(GV_ERR_NOMEM, "gv_random_split_eager: out of memory for %lld keys", (long long)n);
    threefry_iota(key, w, 2 * n);
    for (int64_t i = 0; i < n; i++) out[i] = (gv_key){{w[2 * i], w[2 * i + 1]}};
    free(w);
    return GV_OK;
}

void gv_random_split2_eager(gv_prng_impl impl, gv_key key, gv_key *first, gv_key *second) {
    gv_key k[2];
    if (impl != GV_PRNG_LEGACY) impl = GV_PRNG_PARTITIONABLE;
    gv_random_split_eager(impl, key, 2, k); /* cannot fail for n = 2 */
    if (first) *first = k[0];
    if (second) *second = k[1];
}

/* Legacy random_bits needs ceil(width * n / 32) words in one threefry call. */
static gv_status legacy_words(const char *what, int width, int64_t n, int64_t *words) {
    if (n > (INT64_C(1) << 56))
        return gv_error(GV_ERR_UNSUPPORTED, "%s: %lld elements is too many", what,
                        (long long)n);
    int64_t w = (width * n + 31) / 32;
    if (w >= INT64_C(0xFFFFFFFF))
        return gv_error(GV_ERR_UNSUPPORTED, "%s: %lld random words exceed the legacy "
                        "scheme's single-call limit of 2^32-1", what, (long long)w);
    *words = w;
    return GV_OK;
}

gv_status gv_random_bits_fill(gv_prng_impl impl, gv_key key, int width, void *out,
                              int64_t n) {
    const char *what = "gv_random_bits_eager";
    gv_status st = check_impl(what, impl);
    if (st != GV_OK) return st;
    if (width != 8 && width != 16 && width != 32 && width != 64)
        return gv_error(GV_ERR_ARG, "%s: bit width %d is not 8, 16, 32 or 64", what, width);
    if (n < 0) return gv_error(GV_ERR_ARG, "%s: negative count %lld", what, (long long)n);
    if (n > 0 && !out) return gv_error(GV_ERR_ARG, "%s: out is NULL", what);
    if (impl == GV_PRNG_PARTITIONABLE) {
        /* one block per element at counter (hi32(i), lo32(i)) (spec 4) */
        for (int64_t i = 0; i < n; i++) {
            uint32_t y[2];
            gv_threefry2x32(key, (uint32_t)((uint64_t)i >> 32), (uint32_t)i, y);
            switch (width) {
            case 8: ((uint8_t *)out)[i] = (uint8_t)(y[0] ^ y[1]); break;
            case 16: ((uint16_t *)out)[i] = (uint16_t)(y[0] ^ y[1]); break;
            case 32: ((uint32_t *)out)[i] = y[0] ^ y[1]; break;
            default: ((uint64_t *)out)[i] = ((uint64_t)y[0] << 32) | y[1]; break;
            }
        }
        return GV_OK;
    }
    int64_t words = 0;
    if ((st = legacy_words(what, width, n, &words)) != GV_OK) return st;
    if (width == 32) {
        threefry_iota(key, out, n);
        return GV_OK;
    }
    uint32_t *w = malloc((size_t)(words + 1) * sizeof *w);
    if (!w) return gv_error(GV_ERR_NOMEM, "%s: out of memory", what);
    threefry_iota(key, w, words);
    if (width == 64) {
        /* first half of the words are the high halves (spec 4) */
        for (int64_t i = 0; i < n; i++)
            ((uint64_t *)out)[i] = ((uint64_t)w[i] << 32) | w[n + i];
    } else {
        /* 8/16 bits: the little-endian pieces of each word, lowest first */
        int per = 32 / width;
        uint32_t mask = (1u << width) - 1u;
        for (int64_t i = 0; i < n; i++) {
            uint32_t piece = (w[i / per] >> (width * (int)(i % per))) & mask;
            if (width == 8) ((uint8_t *)out)[i] = (uint8_t)piece;
            else ((uint16_t *)out)[i] = (uint16_t)piece;
        }
    }
    free(w);
    return GV_OK;
}

gv_status gv_random_bits32_fill(gv_prng_impl impl, gv_key key, uint32_t *out, int64_t n) {
    return gv_random_bits_fill(impl, key, 32, out, n);
}

gv_tensor *gv_random_bits_eager(gv_prng_impl impl, gv_key key, gv_dtype dtype, int rank,
                                const int64_t *shape) {
    int width;
    switch (dtype) {
    case GV_U8: width = 8; break;
    case GV_U16: width = 16; break;
    case GV_U32: width = 32; break;
    case GV_U64: width = 64; break;
    default:
        gv_error(GV_ERR_DTYPE, "gv_random_bits_eager: dtype %s is not uint8, uint16, uint32 or "
                 "uint64", gv_dtype_name(dtype));
        return NULL;
    }
    gv_tensor *t = gv_tensor_zeros(dtype, rank, shape);
    if (!t) return NULL;
    if (gv_random_bits_fill(impl, key, width, gv_tensor_data(t), t->size) != GV_OK) {
        gv_tensor_free(t);
        return NULL;
    }
    return t;
}
