/* grove: the other Optax optimisers, each a chain of gradient
 * transformations as in optax/_src/alias.py (reference A15): rmsprop,
 * adagrad, adafactor, lion, lamb, adabelief, adamax, lookahead, and the
 * scale_by_* primitives they are made of. Included by grove/optim.h (it
 * uses its options machinery: GV_WITH_DEFAULTS_, GV_NONE). */
#ifndef GROVE_OPTIMIZERS_H
#define GROVE_OPTIMIZERS_H

#include "grove/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
