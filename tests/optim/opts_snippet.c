/* User code calling the optimiser macros the way the docs show. Compiled,
 * not run, by opts_warning_free.cmake with -Wall -Wextra -Wpedantic -Werror:
 * the macros must add no warning to a user's build. The GV_SNIPPET_*
 * variants must NOT compile (the script checks that they fail). */
#include <stddef.h>

#include "grove/optim.h"

typedef struct trainer {
    gv_transform *tx;
} trainer;

void user_code(trainer *t, gv_schedule *s, const gv_tree *mask, double lr);

void user_code(trainer *t, gv_schedule *s, const gv_tree *mask, double lr) {
    gv_transform *a = gv_adamw(.learning_rate = 1e-4);
    t->tx = gv_adamw(.learning_rate = lr, .weight_decay = 0, .mask = mask, .b1 = 0);
    gv_transform *parts[4] = {gv_sgd(.learning_rate = 0.1, .momentum = 0.9, .nesterov = true),
                              gv_adam(.schedule = s), gv_nadam(.learning_rate = 1e-3, .b2 = 0.99),
                              gv_scale_by_adam()};
    gv_transform *c = gv_chain(parts, 4);
    gv_transform *d = gv_sgd(); /* fails at run time (no learning rate), compiles cleanly */
    gv_adamw_opts o = {GV_ADAMW_DEFAULTS};
    o.learning_rate = 3e-4;
    gv_transform *e = gv_adamw_with(&o);
    gv_sgd_opts so = gv_sgd_defaults();
    so.learning_rate = 0.5;
    gv_transform *f = gv_sgd_with(&so);
#ifdef GV_SNIPPET_CONTROL
    /* the same overriding initialiser without the macro: -Woverride-init */
    gv_transform *g = gv_adamw_with(&(gv_adamw_opts){GV_ADAMW_DEFAULTS, .learning_rate = 1e-4});
    gv_transform_free(g);
#endif
#ifdef GV_SNIPPET_POSITIONAL
    /* the old positional call shape lands on .schedule: a compile error */
    gv_transform *h = gv_adamw(1e-4, 0.9, 0.999, 1e-8, 0.0, 1e-4, NULL);
    gv_transform_free(h);
#endif
    gv_transform_free(a), gv_transform_free(c), gv_transform_free(d);
    gv_transform_free(e), gv_transform_free(f);
}
