/* exp (PPO's probability ratio exp(logp - logp_old)). */
#include <math.h>

#include "nn/nn_impl.h"

/* x [any] -> y [same] */
static void exp_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    for (int64_t i = 0; i < node->out->numel; i++) y[i] = expf(x[i]);
}

/* dy -> dx += dy y */
static void exp_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const float *y = node->out->data, *dy = node->out->grad;
    for (int64_t i = 0; i < node->out->numel; i++) dx[i] += dy[i] * y[i];
}

const nn_op_impl nn_op_exp_impl = {exp_forward, exp_backward};

nn_tensor *nn_exp(nn_ctx *ctx, nn_tensor *x) { return nn__unary(ctx, NN_OP_EXP, x, NULL, 0); }
