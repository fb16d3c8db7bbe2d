/* grove: parameter initialisers, as jax.nn.initializers (which Flax uses).
 *
 * An initialiser is a small value (no allocation, nothing to free) saying
 * how to draw a parameter; gv_initializer_sample draws one for a key and a
 * shape. The numbers equal JAX's for the same key, shape and PRNG scheme
 * (docs/random.md section 8), evaluated eagerly as model.init does. */
#ifndef GROVE_INITIALIZERS_H
#define GROVE_INITIALIZERS_H

#include "grove/random.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef enum gv_fan_mode { GV_FAN_IN, GV_FAN_OUT, GV_FAN_AVG, GV_FAN_GEO_AVG } gv_fan_mode;

typedef enum gv_distribution {
    GV_DIST_TRUNCATED_NORMAL,
    GV_DIST_NORMAL,
    GV_DIST_UNIFORM
} gv_distribution;

typedef enum gv_init_kind {
    GV_INIT_CONSTANT,         /* every element = value (zeros, ones, constant) */
    GV_INIT_NORMAL,           /* normal(key) * stddev */
    GV_INIT_UNIFORM,          /* uniform(key, [0, 1)) * scale */
    GV_INIT_TRUNCATED_NORMAL, /* truncated_normal(key, lower, upper) * stddev */
    GV_INIT_VARIANCE_SCALING
} gv_init_kind;

typedef struct gv_initializer {
    gv_init_kind kind;
    double value;           /* CONSTANT */
    double stddev;          /* NORMAL, TRUNCATED_NORMAL */
    double scale;           /* UNIFORM, VARIANCE_SCALING */
    double lower, upper;    /* TRUNCATED_NORMAL bounds in units of stddev */
    gv_fan_mode mode;       /* VARIANCE_SCALING */
    gv_distribution distribution;
    int in_axis, out_axis;  /* VARIANCE_SCALING, default -2 and -1 */
} gv_initializer;

gv_initializer gv_init_zeros(void);
gv_initializer gv_init_ones(void);
gv_initializer gv_init_constant(double value);
gv_initializer gv_init_normal(double stddev);            /* jax default 1e-2 */
gv_initializer gv_init_uniform(double scale);            /* jax default 1e-2 */
gv_initializer gv_init_truncated_normal(double stddev, double lower, double upper);
gv_initializer gv_init_variance_scaling(double scale, gv_fan_mode mode,
                                        gv_distribution distribution, int in_axis,
                                        int out_axis);
gv_initializer gv_init_lecun_normal(void);   /* variance_scaling(1, fan_in, truncated_normal) */
gv_initializer gv_init_lecun_uniform(void);  /* variance_scaling(1, fan_in, uniform) */
gv_initializer gv_init_glorot_normal(void);  /* = xavier_normal: (1, fan_avg, truncated_normal) */
gv_initializer gv_init_glorot_uniform(void); /* = xavier_uniform: (1, fan_avg, uniform) */
gv_initializer gv_init_he_normal(void);      /* = kaiming_normal: (2, fan_in, truncated_normal) */
gv_initializer gv_init_he_uniform(void);     /* = kaiming_uniform: (2, fan_in, uniform) */

/* jax.nn.initializers._compute_fans: fan_in and fan_out of a weight shape
 * (rank >= 2; the axes may be negative). */
gv_status gv_compute_fans(int rank, const int64_t *shape, int in_axis, int out_axis,
                          double *fan_in, double *fan_out);

/* Draw a float32 parameter of `shape`. Returns a new tensor (caller frees),
 * NULL with the error set on a bad shape (e.g. variance scaling of rank < 2)
 * or bad initialiser fields. */
gv_tensor *gv_initializer_sample(const gv_initializer *init, gv_prng_impl impl, gv_key key,
                                 int rank, const int64_t *shape);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
