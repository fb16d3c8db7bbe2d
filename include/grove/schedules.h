/* grove: learning-rate schedules (optax.schedules), traced functions of the
 * int32 step count that live in an optimiser's state (reference A14).
 * Included by grove/optim.h. */
#ifndef GROVE_SCHEDULES_H
#define GROVE_SCHEDULES_H

#include <stdint.h>

#include "grove/graph.h"
#include "grove/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

/* ---- schedules (optax.schedules) ---------------------------------------- */

/* A schedule maps the int32 step count (a traced scalar) to a float32 scalar
 * (traced): the learning rate at that step. Reference counted. */
typedef struct gv_schedule gv_schedule;

/* User-defined schedule: fn(count, userdata) returns a float32 scalar value
 * of count's graph (or an invalid value after gv_graph_fail).
 * free_userdata (may be NULL) is called on userdata when the schedule goes. */
typedef gv_value (*gv_schedule_fn)(gv_value count, void *userdata);
gv_schedule *gv_schedule_new(const char *name, gv_schedule_fn fn, void *userdata,
                             void (*free_userdata)(void *));

/* optax.constant_schedule(value): (float)value at every count. */
gv_schedule *gv_constant_schedule(double value);
/* optax.polynomial_schedule: c = clip(count - begin, 0, T) (int32),
 * frac = 1 - (float)c / (float)T, value = (init - end) * frac**power + end,
 * where init - end is a Python-float difference (rounded once) and an
 * integral power is lax.integer_pow (repeated multiplication), any other a
 * powf. transition_steps <= 0 gives the constant init (optax warns);
 * a negative transition_begin counts as 0. */
gv_schedule *gv_polynomial_schedule(double init_value, double end_value, double power,
                                    int64_t transition_steps, int64_t transition_begin);
/* optax.linear_schedule: the polynomial schedule with power 1. */
gv_schedule *gv_linear_schedule(double init_value, double end_value, int64_t transition_steps,
                                int64_t transition_begin);

gv_schedule *gv_schedule_retain(gv_schedule *s);
void gv_schedule_free(gv_schedule *s);
/* "constant_schedule", "linear_schedule", ... or the user's name. Borrowed. */
const char *gv_schedule_name(const gv_schedule *s);

/* Traced: the schedule at count (an int32 scalar value). Float32 scalar. */
gv_value gv_schedule_value(const gv_schedule *s, gv_value count);
/* Eager: the schedule at a concrete count. */
gv_status gv_schedule_value_eager(const gv_schedule *s, int32_t count, float *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
