/* Learning-rate schedules: traced functions of the int32 step count
 * (optax/schedules/_schedule.py, reference A14). A schedule is a function
 * pointer with its parameters, so the later ones (cosine, warmup,
 * exponential, piecewise, join) are each one constructor and one function;
 * a join keeps its parts as schedule references in its parameters. */
#include <math.h>
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

/* ---- constant ---- */

static gv_value constant_fn(gv_value count, void *ud) {
    return gv_scalar(count.graph, GV_F32, *(const double *)ud);
}

gv_schedule *gv_constant_schedule(double value) {
    double *v = malloc(sizeof *v);
    if (!v) {
        gv_error(GV_ERR_NOMEM, "constant_schedule: out of memory");
        return NULL;
    }
    *v = value;
    return gv_schedule_new("constant_schedule", constant_fn, v, free);
}

/* ---- polynomial / linear ---- */

typedef struct poly {
    double init, end, power;
    int64_t steps, begin;
} poly;

/* lax.integer_pow: binary exponentiation, the order XLA's lowering uses */
static gv_value integer_pow(gv_value x, int64_t y) {
    gv_value acc = {NULL, -1};
    bool have = false;
    while (y > 0) {
        if (y & 1) acc = have ? gv_mul(acc, x) : x, have = true;
        y >>= 1;
        if (y) x = gv_mul(x, x);
    }
    return have ? acc : gv_ones_like(x);
}

static gv_value poly_fn(gv_value count, void *ud) {
    const poly *p = ud;
    gv_graph *g = count.graph;
    if (p->steps <= 0) return gv_scalar(g, GV_F32, p->init); /* optax warns, returns init */
    /* count = clip(count - begin, 0, T) in int32; frac = 1 - count / T in float32 */
    gv_value c = gv_sub(count, gv_scalar(g, GV_I32, (double)p->begin));
    c = gv_minimum(gv_maximum(c, gv_scalar(g, GV_I32, 0)), gv_scalar(g, GV_I32, (double)p->steps));
    gv_value frac = gv_sub(gv_scalar(g, GV_F32, 1.0),
                           gv_div(gv_cast(c, GV_F32), gv_scalar(g, GV_F32, (double)p->steps)));
    gv_value fp = p->power == floor(p->power) && p->power >= 0 && p->power < 64
                      ? integer_pow(frac, (int64_t)p->power)
                      : gv_pow(frac, gv_scalar(g, GV_F32, p->power));
    /* (init - end) * frac**power + end: init - end on the Python floats */
    return gv_add(gv_mul(gv_scalar(g, GV_F32, p->init - p->end), fp),
                  gv_scalar(g, GV_F32, p->end));
}

gv_schedule *gv_polynomial_schedule(double init_value, double end_value, double power,
                                    int64_t transition_steps, int64_t transition_begin) {
    poly *p = malloc(sizeof *p);
    if (!p) {
        gv_error(GV_ERR_NOMEM, "polynomial_schedule: out of memory");
        return NULL;
    }
    *p = (poly){init_value, end_value, power, transition_steps,
                transition_begin < 0 ? 0 : transition_begin};
    return gv_schedule_new("polynomial_schedule", poly_fn, p, free);
}

gv_schedule *gv_linear_schedule(double init_value, double end_value, int64_t transition_steps,
                                int64_t transition_begin) {
    gv_schedule *s =
        gv_polynomial_schedule(init_value, end_value, 1.0, transition_steps, transition_begin);
    if (s) {
        char *nm = malloc(sizeof "linear_schedule");
        if (nm) strcpy(nm, "linear_schedule"), free(s->name), s->name = nm;
    }
    return s;
}
