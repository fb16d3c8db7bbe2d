/* grove: Flax-style modules (linen). A module is a hollow shell: a type
 * (a name and call functions) plus a config struct. It holds no parameters.
 *
 *   gv_tree *variables = gv_init(&model, key, example_args, NULL);   // {'params': {...}}
 *   gv_tree *out;  gv_apply_eager(&model, variables, args, NULL, NULL, &out);
 *   // y, updates = model.apply(variables, x, mutable=['batch_stats']): out is (y, updates)
 *   gv_apply_eager(&model, variables, args, NULL, &(gv_module_options){.train = true,
 *       .mutable_collections = (const char *[]){"batch_stats"}, .nmutable = 1}, &out);
 *
 * A call function declares its params and children inline, and the same
 * code runs in both modes: in init mode gv_param draws the initial value
 * (the numbers Flax draws for the same key and module path, see
 * docs/random.md section 9); in apply mode it looks the value up in the
 * variables (a missing path or a wrong shape is a trace error naming the
 * path). Children are named explicitly (Flax `setup` attributes) or
 * automatically per type, "Dense_0", "Dense_1", ... (Flax `@nn.compact`).
 *
 * Inside a traced function (a loss) a module call is just more graph:
 * gv_apply. Variables trees keep Flax's collection level:
 * {"params": ..., "perturbations": ..., "batch_stats": ...}; apply writes
 * a collection only when it is listed as mutable (gv_module_options). */
#ifndef GROVE_NN_H
#define GROVE_NN_H

#include "grove/compile.h"
#include "grove/initializers.h"
#include "grove/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef struct gv_scope gv_scope;

/* A call function: args is a tuple of values (gv_args_get), returns a new
 * tree of values (gv_tree_new_value_leaf for one array) or NULL after a
 * trace error. */
typedef gv_tree *(*gv_method_fn)(gv_scope *s, const void *cfg, const gv_tree *args);

typedef struct gv_method {
    const char *name;   /* "encode", "decode" */
    gv_method_fn fn;
} gv_method;

typedef struct gv_module_type {
    const char *name;          /* the class name: auto-named children are name_0, name_1 */
    gv_method_fn call;         /* __call__ */
    const gv_method *methods;  /* other entry points (Flax's method=) */
    int nmethods;
} gv_module_type;

typedef struct gv_module {
    const gv_module_type *type;
    const void *cfg;           /* borrowed: must outlive every use of the module */
} gv_module;

typedef struct gv_module_options {
    gv_prng_impl impl;         /* the PRNG scheme (default partitionable, JAX's default) */
    const char *method;        /* NULL = __call__ */
    bool train;                /* gv_scope_train(): e.g. Dropout active, BatchNorm on batch stats */
    /* apply: the collections it may write (Flax's mutable=['batch_stats']).
     * With nmutable > 0, gv_apply / gv_apply_eager return the tuple
     * (out, mutated): mutated is {collection: ...} for each listed
     * collection that was given or written, the whole collection with the
     * written variables' new values, as Flax's apply returns
     * (out, {'batch_stats': ...}). nmutable 0 (the default): only out, and
     * writing any variable is a trace error naming its path. init ignores
     * this: every collection is created there. */
    const char *const *mutable_collections;
    int nmutable;
} gv_module_options;

/* ---- top level ---- */

/* model.init(key, *args): runs the method once in init mode and returns the
 * variables {"params": {...}} as tensors (caller frees), NULL with the error
 * set. args: a tuple tree of example tensors. */
gv_tree *gv_init(const gv_module *m, gv_key key, const gv_tree *args, const gv_module_options *o);

/* model.apply(variables, *args, rngs=...): traces, compiles and runs once
 * (a bound module, gv_bind, keeps the compiled plans for repeated calls).
 * rngs: NULL or a dict of uint32[2] key tensors by stream name ("dropout").
 * *out: a new tree of tensors (caller frees); with o->nmutable > 0 the tuple
 * (out, {"batch_stats": ...}), see gv_module_options. */
gv_status gv_apply_eager(const gv_module *m, const gv_tree *variables, const gv_tree *args,
                         const gv_tree *rngs, const gv_module_options *o, gv_tree **out);

/* The same inside a trace: variables, args and rngs are trees of values of g.
 * Returns the outputs as a tree of values owned by g (pack.h), NULL after a
 * trace error; with o->nmutable > 0 the tuple (out, mutated collections). */
gv_tree *gv_apply(gv_graph *g, const gv_module *m, const gv_tree *variables,
                  const gv_tree *args, const gv_tree *rngs, const gv_module_options *o);

/* ---- bind / unbind (interactive use) ---- */

typedef struct gv_bound gv_bound;

/* module.bind(variables): an instance holding a copy of the variables (the
 * tensors are shared). Free with gv_bound_free or gv_unbind. */
gv_bound *gv_bind(const gv_module *m, const gv_tree *variables, const gv_module_options *o);
/* bound(*args) / bound.method(*args): method NULL = __call__. *out: new tree.
 * Each method is traced and compiled once per input signature (jit cache
 * inside the bound module); later calls rerun the plan. */
gv_status gv_bound_call(gv_bound *b, const char *method, const gv_tree *args,
                        const gv_tree *rngs, gv_tree **out);
/* How many traces+compiles the bound module's calls have needed. */
int gv_bound_num_compiles(const gv_bound *b);
/* bound.<name>: the child `name` (of module type child) bound to its part of
 * every collection, as Flax's setup submodules of a bound module. */
gv_bound *gv_bound_child(const gv_bound *b, const char *name, const gv_module *child);
/* The bound module's variables (borrowed). */
const gv_tree *gv_bound_variables(const gv_bound *b);
/* bound.unbind(): the module and its variables (*variables: new tree the
 * caller frees); frees b. */
gv_status gv_unbind(gv_bound *b, gv_module *m, gv_tree **variables);
void gv_bound_free(gv_bound *b);

/* model.tabulate: init with these args and a table of the params (paths,
 * shapes, dtypes, counts, total). Malloc'd; caller frees. */
char *gv_tabulate(const gv_module *m, gv_key key, const gv_tree *args, const gv_module_options *o);

/* ---- inside a call function ---- */

/* self.param(name, init, shape): float32. */
gv_value gv_param(gv_scope *s, const char *name, gv_initializer init, int rank,
                  const int64_t *shape);
/* self.make_rng(stream): a uint32[2] key value; falls back to "params" when
 * the stream was not given (Flax >= 0.8.2). */
gv_value gv_make_rng(gv_scope *s, const char *stream);
/* self.perturb(name, x): x plus a zero variable of the "perturbations"
 * collection, so its gradient is the gradient w.r.t. this intermediate. */
gv_value gv_perturb(gv_scope *s, const char *name, gv_value x);

/* self.variable(collection, name, init_fn, shape): a variable of a
 * collection other than "params" ("batch_stats"), created in init from init
 * (Flax's init_fn gets no rng: use zeros, ones or a constant) and looked up
 * in apply (missing: a trace error naming the path, unless the collection is
 * mutable, then it is created as in init; a wrong shape: a trace error).
 * The handle belongs to the scope's init/apply; NULL after a trace error. A
 * variable declared twice at the same path is the same handle. */
typedef struct gv_var gv_var;
gv_var *gv_variable(gv_scope *s, const char *collection, const char *name, gv_initializer init,
                    int rank, const int64_t *shape);
/* var.value: the stored value, or the last one written (invalid for NULL). */
gv_value gv_variable_value(const gv_var *v);
/* var.value = value: false after a trace error, which names the variable's
 * path when its collection is not mutable in this apply (Flax's
 * ModifyScopeVariableError). In init every collection is mutable and
 * gv_init returns the variable with its last written value (it then
 * evaluates the trace once); Flax's BatchNorm guards its writes with
 * gv_scope_is_init so that init keeps the initial statistics. */
bool gv_variable_set(gv_var *v, gv_value value);
/* "batch_stats/BatchNorm_0/mean" (borrowed). */
const char *gv_variable_path(const gv_var *v);
/* self.is_mutable_collection(collection): always true in init. */
bool gv_scope_is_mutable(const gv_scope *s, const char *collection);

/* Call a child module: name NULL = auto-named from its type per parent
 * (Dense_0, ...). method NULL = __call__. Returns the child's outputs. */
gv_tree *gv_scope_call(gv_scope *s, const char *name, const gv_module *child,
                       const char *method, const gv_tree *args);
/* The one-array case: gv_scope_call with args (x) and a single value out. */
gv_value gv_scope_call1(gv_scope *s, const char *name, const gv_module *child, gv_value x);

gv_graph *gv_scope_graph(const gv_scope *s);
bool gv_scope_is_init(const gv_scope *s);
bool gv_scope_train(const gv_scope *s);
/* The PRNG scheme of this init/apply (gv_module_options.impl). */
gv_prng_impl gv_scope_prng_impl(const gv_scope *s);
/* "encoder/Dense_1" ("" at the top). */
const char *gv_scope_path(const gv_scope *s);

/* Arguments: a tuple of values; arg i (invalid value and a trace error if
 * absent). gv_args1/2/3 build tuples of values, gv_args_tensors of tensors. */
gv_value gv_args_get(const gv_tree *args, int i);
gv_tree *gv_args1(gv_value a);
gv_tree *gv_args2(gv_value a, gv_value b);
gv_tree *gv_args3(gv_value a, gv_value b, gv_value c);
gv_tree *gv_args_tensors(gv_tensor *const *ts, int n);

/* ---- layers ---- */

typedef struct gv_dense_cfg {
    int64_t features;
    bool use_bias;               /* Flax default true */
    gv_initializer kernel_init;  /* default lecun_normal */
    gv_initializer bias_init;    /* default zeros */
} gv_dense_cfg;
/* The defaults with `features` set. */
gv_dense_cfg gv_dense_defaults(int64_t features);
extern const gv_module_type gv_Dense;
/* nn.Dense as a value function in the current scope: kernel (in, features). */
gv_value gv_dense_apply(gv_scope *s, const gv_dense_cfg *cfg, gv_value x);

typedef struct gv_embed_cfg {
    int64_t num_embeddings, features;
    gv_initializer embedding_init; /* default variance_scaling(1, fan_in, normal, out_axis=0) */
} gv_embed_cfg;
gv_embed_cfg gv_embed_defaults(int64_t num_embeddings, int64_t features);
extern const gv_module_type gv_Embed;

typedef struct gv_dropout_cfg {
    double rate;
    bool deterministic;          /* true: identity (also when the scope is not training) */
    const int *broadcast_dims;
    int nbroadcast;
} gv_dropout_cfg;
extern const gv_module_type gv_Dropout;

/* nn.Sequential: children layers_0, layers_1, ... each fed the previous output. */
typedef struct gv_sequential_cfg {
    const gv_module *layers;
    int nlayers;
} gv_sequential_cfg;
extern const gv_module_type gv_Sequential;

/* The tutorial's FeedForward: Dense(d) for d in dims with an activation
 * after each (optionally not after the last); compact-named Dense_0... */
typedef gv_value (*gv_activation_fn)(gv_value);
typedef struct gv_feedforward_cfg {
    const int64_t *dims;
    int ndims;
    gv_activation_fn activation;   /* NULL = relu */
    bool drop_last_activation;
} gv_feedforward_cfg;
extern const gv_module_type gv_FeedForward;

/* ---- BatchNorm (src/nn/batchnorm.c, reference C8) ---- */

/* nn.BatchNorm: variables {"params": {"scale", "bias"}, "batch_stats":
 * {"mean", "var"}}, each (features,) of axis. In training (the scope trains,
 * gv_module_options.train, and not use_running_average) it normalises with
 * the batch mean and biased variance over every other axis and, unless
 * initialising, writes ra = momentum * ra + (1 - momentum) * batch_stat to
 * both running averages: batch_stats must then be mutable in the apply
 * (mutable_collections = {"batch_stats"}), which returns (out,
 * {"batch_stats": ...}). Otherwise it normalises with the running averages
 * and writes nothing. y = (x - mean) * rsqrt(var + epsilon) * scale + bias. */
typedef struct gv_batchnorm_cfg {
    bool use_running_average;    /* eval; also when the scope is not training */
    int axis;                    /* the feature axis, default -1 */
    double momentum;             /* default 0.99: the weight of the old value */
    double epsilon;              /* default 1e-5 */
    bool use_bias, use_scale;    /* default true */
    gv_initializer bias_init;    /* default zeros */
    gv_initializer scale_init;   /* default ones */
    bool use_fast_variance;      /* default true: var = max(0, E[x^2] - E[x]^2) */
} gv_batchnorm_cfg;
/* Flax's defaults (a zero cfg is not them: momentum would be 0). */
gv_batchnorm_cfg gv_batchnorm_defaults(void);
extern const gv_module_type gv_BatchNorm;
/* nn.BatchNorm as a value function in the current scope (its variables are
 * declared in s, not in a child). */
gv_value gv_batchnorm_apply(gv_scope *s, const gv_batchnorm_cfg *cfg, gv_value x);

/* ---- shapes without data (eval_shape.h) ---- */

/* jax.eval_shape(model.init, key, *args): the variables gv_init would
 * return ({"params": {...}}, same paths, shapes and dtypes), as a new tree
 * of shape-only tensors (gv_shape_dtype_struct) the caller frees: a restore
 * target without a dummy init. args may be shape-only. The numbers are not
 * kept (today they are still drawn while tracing, then freed: the call
 * costs one init, not its memory). NULL with gv_init's error. */
gv_tree *gv_eval_shape_init(const gv_module *m, gv_key key, const gv_tree *args,
                            const gv_module_options *o);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

/* The other Flax layers: normalisation (LayerNorm, RMSNorm, GroupNorm,
 * BatchNorm), attention, convolution and pooling. */
#include "grove/nn_norm.h"
#include "grove/nn_attention.h"
#include "grove/nn_conv.h"
#endif
