/* jax.nn.initializers in float32 (docs/random.md section 8). Built with
 * -ffp-contract=off: each float operation rounds as JAX's does. */
#include <math.h>

#include "core/error.h"
#include "grove/initializers.h"

gv_initializer gv_init_constant(double value) {
    return (gv_initializer){.kind = GV_INIT_CONSTANT, .value = value};
}
gv_initializer gv_init_zeros(void) { return gv_init_constant(0.0); }
gv_initializer gv_init_ones(void) { return gv_init_constant(1.0); }
gv_initializer gv_init_normal(double stddev) {
    return (gv_initializer){.kind = GV_INIT_NORMAL, .stddev = stddev};
}
gv_initializer gv_init_uniform(double scale) {
    return (gv_initializer){.kind = GV_INIT_UNIFORM, .scale = scale};
}
gv_initializer gv_init_truncated_normal(double stddev, double lower, double upper) {
    return (gv_initializer){.kind = GV_INIT_TRUNCATED_NORMAL, .stddev = stddev,
                            .lower = lower, .upper = upper};
}
gv_initializer gv_init_variance_scaling(double scale, gv_fan_mode mode,
                                        gv_distribution distribution, int in_axis,
                                        int out_axis) {
    return (gv_initializer){.kind = GV_INIT_VARIANCE_SCALING, .scale = scale, .mode = mode,
                            .distribution = distribution, .in_axis = in_axis,
                            .out_axis = out_axis};
}
gv_initializer gv_init_lecun_normal(void) {
    return gv_init_variance_scaling(1.0, GV_FAN_IN, GV_DIST_TRUNCATED_NORMAL, -2, -1);
}
gv_initializer gv_init_lecun_uniform(void) {
    return gv_init_variance_scaling(1.0, GV_FAN_IN, GV_DIST_UNIFORM, -2, -1);
}
gv_initializer gv_init_glorot_normal(void) {
    return gv_init_variance_scaling(1.0, GV_FAN_AVG, GV_DIST_TRUNCATED_NORMAL, -2, -1);
}
gv_initializer gv_init_glorot_uniform(void) {
    return gv_init_variance_scaling(1.0, GV_FAN_AVG, GV_DIST_UNIFORM, -2, -1);
}
gv_initializer gv_init_he_normal(void) {
    return gv_init_variance_scaling(2.0, GV_FAN_IN, GV_DIST_TRUNCATED_NORMAL, -2, -1);
}
gv_initializer gv_init_he_uniform(void) {
    return gv_init_variance_scaling(2.0, GV_FAN_IN, GV_DIST_UNIFORM, -2, -1);
}

gv_status gv_compute_fans(int rank, const int64_t *shape, int in_axis, int out_axis,
                          double *fan_in, double *fan_out) {
    if (rank < 2 || !shape)
        return gv_error(GV_ERR_SHAPE, "variance scaling needs a weight of rank >= 2 to compute "
                        "fan-in and fan-out, got rank %d", rank);
    int ia = in_axis < 0 ? in_axis + rank : in_axis;
    int oa = out_axis < 0 ? out_axis + rank : out_axis;
    if (ia < 0 || ia >= rank || oa < 0 || oa >= rank)
        return gv_error(GV_ERR_ARG, "variance scaling: in_axis %d / out_axis %d out of range "
                        "for rank %d", in_axis, out_axis, rank);
    /* Python float arithmetic, in this order (jax _compute_fans) */
    double total = 1.0;
    for (int i = 0; i < rank; i++) total *= (double)shape[i];
    double receptive = total / (double)shape[ia] / (double)shape[oa] / 1.0;
    *fan_in = (double)shape[ia] * receptive;
    *fan_out = (double)shape[oa] * receptive;
    return GV_OK;
}

static gv_tensor *scaled(gv_tensor *t, float s) {
    if (!t) return NULL;
    float *p = gv_tensor_data(t);
    for (int64_t i = 0, n = gv_tensor_size(t); i < n; i++) p[i] = p[i] * s;
    return t;
}

static gv_tensor *variance_scaling(const gv_initializer *in, gv_prng_impl impl, gv_key key,
                                   int rank, const int64_t *shape) {
    double fan_in, fan_out;
    if (gv_compute_fans(rank, shape, in->in_axis, in->out_axis, &fan_in, &fan_out) != GV_OK)
        return NULL;
    double den;
    switch (in->mode) {
    case GV_FAN_IN: den = fan_in; break;
    case GV_FAN_OUT: den = fan_out; break;
    case GV_FAN_AVG: den = (fan_in + fan_out) / 2.0; break;
    case GV_FAN_GEO_AVG: den = sqrt(fan_in * fan_out); break;
    default:
        gv_error(GV_ERR_ARG, "variance scaling: unknown fan mode %d", (int)in->mode);
        return NULL;
    }
    if (!(den > 0)) {
        gv_error(GV_ERR_SHAPE, "variance scaling: fan is %g for a zero-size weight", den);
        return NULL;
    }
    float variance = (float)(in->scale / den); /* Python division, then float32 */
    switch (in->distribution) {
    case GV_DIST_TRUNCATED_NORMAL: {
        /* stddev of N(0,1) truncated to (-2, 2); eager IEEE division (7.2) */
        float stddev = sqrtf(variance) / (float)0.87962566103423978;
        return scaled(gv_random_truncated_normal_eager(impl, key, -2.0f, 2.0f, rank, shape), stddev);
    }
    case GV_DIST_NORMAL:
        return scaled(gv_random_normal_eager(impl, key, rank, shape), sqrtf(variance));
    case GV_DIST_UNIFORM:
        return scaled(gv_random_uniform_eager(impl, key, rank, shape, -1.0f, 1.0f),
                      sqrtf(3.0f * variance));
    }
    gv_error(GV_ERR_ARG, "variance scaling: unknown distribution %d", (int)in->distribution);
    return NULL;
}

gv_tensor *gv_initializer_sample(const gv_initializer *in, gv_prng_impl impl, gv_key key,
                                 int rank, const int64_t *shape) {
    if (!in) {
        gv_error(GV_ERR_ARG, "gv_initializer_sample: initializer is NULL");
        return NULL;
    }
    switch (in->kind) {
    case GV_INIT_CONSTANT: return gv_tensor_full(GV_F32, rank, shape, in->value);
    case GV_INIT_NORMAL:
        return scaled(gv_random_normal_eager(impl, key, rank, shape), (float)in->stddev);
    case GV_INIT_UNIFORM:
        return scaled(gv_random_uniform_eager(impl, key, rank, shape, 0.0f, 1.0f), (float)in->scale);
    case GV_INIT_TRUNCATED_NORMAL:
        return scaled(gv_random_truncated_normal_eager(impl, key, (float)in->lower,
                                                       (float)in->upper, rank, shape),
                      (float)in->stddev);
    case GV_INIT_VARIANCE_SCALING: return variance_scaling(in, impl, key, rank, shape);
    }
    gv_error(GV_ERR_ARG, "gv_initializer_sample: unknown initializer kind %d", (int)in->kind);
    return NULL;
}
