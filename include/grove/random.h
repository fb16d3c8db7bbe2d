/* grove: explicit PRNG keys, bit-compatible with JAX's threefry2x32.
 *
 * A key is two uint32 words, exactly jax.random.PRNGKey's uint32[2]. Keys are
 * values: nothing here has hidden state. Functions that differ between JAX's
 * two threefry schemes take a gv_prng_impl (see docs/random.md):
 *   GV_PRNG_PARTITIONABLE  jax_threefry_partitionable=True, JAX's default since 0.5.0
 *   GV_PRNG_LEGACY         the scheme of jax <= 0.4.38 (and of the 2023 Flax tutorial)
 * GV_PRNG_DEFAULT is the partitionable scheme.
 *
 * Float samplers reproduce XLA:CPU's float32 arithmetic on an FMA host
 * (eager evaluation), bit for bit. */
#ifndef GROVE_RANDOM_H
#define GROVE_RANDOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grove/status.h"
#include "grove/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef struct gv_key {
    uint32_t k[2];
} gv_key;

typedef enum gv_prng_impl {
    GV_PRNG_PARTITIONABLE = 0,
    GV_PRNG_LEGACY = 1,
    GV_PRNG_DEFAULT = GV_PRNG_PARTITIONABLE
} gv_prng_impl;

/* The threefry2x32 block function (20 rounds): key, counter -> out. */
void gv_threefry2x32(gv_key key, uint32_t x0, uint32_t x1, uint32_t out[2]);

/* jax.random.PRNGKey(seed) in JAX's default 32-bit mode: [0, seed mod 2^32]. */
gv_key gv_prng_key(int64_t seed);
/* PRNGKey(seed) with jax_enable_x64: [high word, low word] of the 64-bit seed. */
gv_key gv_prng_key_x64(int64_t seed);

/* jax.random.fold_in(key, data); the same in both schemes. */
gv_key gv_random_fold_in_eager(gv_key key, uint32_t data);

/* jax.random.split(key, n): writes n keys to out. */
gv_status gv_random_split_eager(gv_prng_impl impl, gv_key key, int64_t n, gv_key *out);
/* Convenience for the common two-way split: `key, sub = split(key)`. */
void gv_random_split2_eager(gv_prng_impl impl, gv_key key, gv_key *first, gv_key *second);

/* jax.random.bits(key, shape, dtype): dtype U8, U16, U32 or U64.
 * Returns a new tensor (caller frees), NULL on error. */
gv_tensor *gv_random_bits_eager(gv_prng_impl impl, gv_key key, gv_dtype dtype, int rank,
                                const int64_t *shape);

/* Raw filling into caller memory (n elements); the tensor functions below
 * are built on these. */
gv_status gv_random_bits32_fill(gv_prng_impl impl, gv_key key, uint32_t *out, int64_t n);

/* jax.random.uniform(key, shape, float32, minval, maxval). */
gv_tensor *gv_random_uniform_eager(gv_prng_impl impl, gv_key key, int rank, const int64_t *shape,
                                   float minval, float maxval);
/* jax.random.normal(key, shape, float32). */
gv_tensor *gv_random_normal_eager(gv_prng_impl impl, gv_key key, int rank, const int64_t *shape);
/* jax.random.truncated_normal(key, lower, upper, shape, float32). */
gv_tensor *gv_random_truncated_normal_eager(gv_prng_impl impl, gv_key key, float lower, float upper,
                                            int rank, const int64_t *shape);
/* jax.random.bernoulli(key, p, shape) with p as float32: a GV_BOOL tensor. */
gv_tensor *gv_random_bernoulli_eager(gv_prng_impl impl, gv_key key, float p, int rank,
                                     const int64_t *shape);
/* jax.random.randint(key, shape, minval, maxval, int32). */
gv_tensor *gv_random_randint_eager(gv_prng_impl impl, gv_key key, int rank, const int64_t *shape,
                                   int32_t minval, int32_t maxval);
/* jax.random.permutation(key, n): a shuffled arange(n) as int32 (int64 when
 * n >= 2^31), by JAX's algorithm (repeated sort by random keys). */
gv_tensor *gv_random_permutation_eager(gv_prng_impl impl, gv_key key, int64_t n);

/* The float32 special functions XLA:CPU uses, exposed for tests and ops. */
float gv_erf_inv_f32(float x);
float gv_erf_f32(float x);
float gv_log_f32(float x);
float gv_log1p_f32(float x);

/* Flax's name-based key derivation (flax.core.scope._fold_in_static):
 * fold_in(key, first 4 bytes of SHA-1 over the parts). A part is a string
 * (its UTF-8 bytes) or, when str is NULL, an integer (its minimal big-endian
 * bytes). fix_separator mirrors the config flag flax_fix_rng_separator. */
typedef struct gv_fold_part {
    const char *str;
    uint64_t num;
} gv_fold_part;
gv_key gv_fold_in_static(gv_key key, const gv_fold_part *parts, size_t nparts,
                         bool fix_separator);

/* SHA-1 of a byte string (20 bytes out). */
void gv_sha1(const void *data, size_t len, uint8_t digest[20]);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
