/* A 3-layer MLP training step (value_and_grad + plain SGD as graph ops),
 * shared by the compiler tests and the benchmark. */
#ifndef GROVE_TEST_MLP_STEP_H
#define GROVE_TEST_MLP_STEP_H

#include "grove/grove.h"

typedef struct mlp_dims {
    int64_t batch, in, h1, h2, out;
    double lr;
} mlp_dims;

/* inputs: (params {w1,b1,w2,b2,w3,b3}, batch {x [B,in] f32, y [B] i32}) */
gv_tree *mlp_example_inputs(const mlp_dims *d, uint32_t seed);
/* loss(params, batch): mean softmax cross-entropy with integer labels */
gv_fn *mlp_loss_fn(const gv_tree *example);
/* step(params, batch) -> (params', loss): value_and_grad + SGD, one graph */
gv_fn *mlp_train_step(const gv_tree *example, double lr);

#endif
