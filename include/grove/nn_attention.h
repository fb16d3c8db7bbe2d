/* grove: Flax layers (being written). Included by grove/nn.h. */
#ifndef GROVE_NN_ATTENTION_H
#define GROVE_NN_ATTENTION_H

#include "grove/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
