/* grove: JAX + Flax + Optax + Orbax-style neural network training in C.
 * One include for the whole public API. */
#ifndef GROVE_H
#define GROVE_H

#include "grove/status.h"
#include "grove/tensor.h"
#include "grove/tree.h"
#include "grove/random.h"
#include "grove/initializers.h"
#include "grove/graph.h"
#include "grove/ops.h"
#include "grove/autodiff.h"
#include "grove/compile.h"
#include "grove/optim.h"
#include "grove/nn.h"
#include "grove/bert.h"
#include "grove/tokenizer.h"
#include "grove/train_state.h"
#include "grove/checkpoint.h"
#include "grove/serialization.h"
#include "grove/data.h"
#include "grove/distributed.h"
#include "grove/image.h"
#include "grove/eval_shape.h"
#include "grove/pack.h"
#include "grove/deprecated.h"

#endif
