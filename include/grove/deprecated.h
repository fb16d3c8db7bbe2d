/* grove: the names functions had before the naming rule, kept as aliases.
 *
 * The rule (docs/guide.md, "Names"): a function that works on TRACED values
 * (gv_value, gv_graph) has the JAX / Flax / Optax name, gv_random_normal for
 * jax.random.normal, gv_apply for model.apply; the form of the same operation
 * on concrete tensors, which traces, compiles and runs it, is that name with
 * _eager: gv_random_normal_eager, gv_apply_eager, gv_transform_update_eager.
 *
 * The aliases below will be removed in a later release. Two old names could
 * not be kept because the rule gives them to the traced form:
 *   gv_random_uniform / _normal / _truncated_normal / _bernoulli (eager,
 *     gv_key argument)  ->  gv_random_*_eager
 *   gv_apply (eager, writes *out)  ->  gv_apply_eager
 * Code calling them with the old arguments no longer compiles (the argument
 * types differ), so nothing changes meaning silently.
 *
 * Removed, with no alias because the call shape changed (optim.h): the
 * positional optimisers gv_sgd(lr, momentum, nesterov), gv_adam(lr, b1, b2,
 * eps, eps_root), gv_nadam(...), gv_adamw(..., weight_decay, mask) and
 * gv_scale_by_adam(b1, b2, eps, eps_root), and their twins gv_sgd_schedule,
 * gv_adam_schedule, gv_adamw_schedule and gv_scale_by_adam_nesterov. They
 * are now options with Optax's defaults, the learning rate a constant or a
 * schedule in one call: gv_adamw(.learning_rate = 1e-4),
 * gv_sgd(.schedule = s, .momentum = 0.9), gv_scale_by_adam(.nesterov = true).
 * An old positional call fails to compile; note that the old gv_sgd's
 * momentum 0 meant None, which is now the default (.momentum = 0 is optax's
 * momentum=0.0, a trace of zeros).
 *
 * Define GROVE_NO_DEPRECATED before including grove to drop the aliases. */
#ifndef GROVE_DEPRECATED_H
#define GROVE_DEPRECATED_H

#ifndef GROVE_NO_DEPRECATED

/* traced ops */
#define gv_random_uniform_op gv_random_uniform
#define gv_random_normal_op gv_random_normal
#define gv_random_truncated_normal_op gv_random_truncated_normal
#define gv_random_bernoulli_op gv_random_bernoulli
#define gv_apply_traced gv_apply

/* eager forms */
#define gv_split gv_random_split_eager
#define gv_split2 gv_random_split2_eager
#define gv_fold_in gv_random_fold_in_eager
#define gv_random_bits gv_random_bits_eager
#define gv_random_randint gv_random_randint_eager
#define gv_random_permutation gv_random_permutation_eager
#define gv_schedule_eval gv_schedule_value_eager

#endif
#endif
