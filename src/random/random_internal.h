/* grove internal: PRNG helpers shared by the samplers. */
#ifndef GROVE_RANDOM_INTERNAL_H
#define GROVE_RANDOM_INTERNAL_H

#include "grove/random.h"

/* random_bits of width 8/16/32/64 into out (n elements of that width). */
gv_status gv_random_bits_fill(gv_prng_impl impl, gv_key key, int width, void *out,
                              int64_t n);

/* Samplers into caller memory (n elements), no allocation. */
gv_status gv_random_uniform_fill(gv_prng_impl impl, gv_key key, float *out, int64_t n,
                                 float minval, float maxval);
gv_status gv_random_normal_fill(gv_prng_impl impl, gv_key key, float *out, int64_t n);
gv_status gv_random_truncated_normal_fill(gv_prng_impl impl, gv_key key, float *out,
                                          int64_t n, float lower, float upper);
/* scratch: n floats of working memory */
gv_status gv_random_bernoulli_fill(gv_prng_impl impl, gv_key key, uint8_t *out, int64_t n,
                                   float p, float *scratch);

/* The word gv_fold_in_static folds in: the first 4 bytes of SHA-1 over the
 * parts, big-endian (so a traced key can be folded with the same word). */
uint32_t gv_fold_static_word(const gv_fold_part *parts, size_t nparts, bool fix_separator);

/* Incremental SHA-1 (FIPS 180-4). */
typedef struct gv_sha1_ctx {
    uint32_t h[5];
    uint64_t len;       /* bytes hashed so far */
    uint8_t block[64];
    size_t used;        /* bytes in block */
} gv_sha1_ctx;

void gv_sha1_init(gv_sha1_ctx *c);
void gv_sha1_update(gv_sha1_ctx *c, const void *data, size_t len);
void gv_sha1_final(gv_sha1_ctx *c, uint8_t digest[20]);

#endif
