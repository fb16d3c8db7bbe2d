/* SHA-1 (FIPS 180-4) and Flax's name-based key derivation built on it. SHA-1
 * is here only because Flax uses it to turn scope paths into fold_in data;
 * it is not used for anything security related. */
#include <string.h>

#include "random_internal.h"

static inline uint32_t rol(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static void compress(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
        else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
        else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
        else f = b ^ c ^ d, k = 0xCA62C1D6u;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void gv_sha1_init(gv_sha1_ctx *c) {
    static const uint32_t iv[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u,
                                   0xC3D2E1F0u};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->used = 0;
}

void gv_sha1_update(gv_sha1_ctx *c, const void *data, size_t len) {
    const uint8_t *p = data;
    c->len += len;
    while (len > 0) {
        size_t take = 64 - c->used < len ? 64 - c->used : len;
        memcpy(c->block + c->used, p, take);
        c->used += take, p += take, len -= take;
        if (c->used == 64) {
            compress(c->h, c->block);
            c->used = 0;
        }
    }
}

void gv_sha1_final(gv_sha1_ctx *c, uint8_t digest[20]) {
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80;
    gv_sha1_update(c, &pad, 1);
    uint8_t zero = 0;
    while (c->used != 56) gv_sha1_update(c, &zero, 1);
    uint8_t lenbe[8];
    for (int i = 0; i < 8; i++) lenbe[i] = (uint8_t)(bits >> (56 - 8 * i));
    gv_sha1_update(c, lenbe, 8);
    for (int i = 0; i < 5; i++) {
        digest[4 * i] = (uint8_t)(c->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void gv_sha1(const void *data, size_t len, uint8_t digest[20]) {
    gv_sha1_ctx c;
    gv_sha1_init(&c);
    gv_sha1_update(&c, data, len);
    gv_sha1_final(&c, digest);
}

/* flax.core.scope._fold_in_static (spec 9.2): the parts are hashed back to
 * back (a 0x00 before each when flax_fix_rng_separator is on); strings as
 * UTF-8, integers as their minimal big-endian bytes (0 -> no bytes); the
 * first 4 digest bytes, big-endian, are folded in once. */
gv_key gv_fold_in_static(gv_key key, const gv_fold_part *parts, size_t nparts,
                         bool fix_separator) {
    if (nparts == 0 || !parts) return key;
    return gv_random_fold_in_eager(key, gv_fold_static_word(parts, nparts, fix_separator));
}

uint32_t gv_fold_static_word(const gv_fold_part *parts, size_t nparts, bool fix_separator) {
    gv_sha1_ctx c;
    gv_sha1_init(&c);
    for (size_t i = 0; i < nparts; i++) {
        if (fix_separator) {
            uint8_t zero = 0;
            gv_sha1_update(&c, &zero, 1);
        }
        if (parts[i].str) {
            gv_sha1_update(&c, parts[i].str, strlen(parts[i].str));
        } else {
            uint8_t be[8];
            int n = 0;
            for (uint64_t v = parts[i].num; v; v >>= 8) n++;
            for (int j = 0; j < n; j++) be[j] = (uint8_t)(parts[i].num >> (8 * (n - 1 - j)));
            gv_sha1_update(&c, be, (size_t)n);
        }
    }
    uint8_t d[20];
    gv_sha1_final(&c, d);
    return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}
