/* tanh. */
#include <math.h>

#include "nn/nn_impl.h"

/* x [any] -> y [same] */
static void tanh_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    for (int64_t i = 0; i < node->out->numel; i++) y[i] = tanhf(x[i]);
}

/* dy -> dx += dy (1 - y^2) */
static void tanh_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const float *y = node->out->data, *dy = node->out->grad;
    for (int64_t i = 0; i < node->out->numel; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

const nn_op_impl nn_op_tanh_impl = {tanh_forward, tanh_backward};

nn_tensor *nn_tanh(nn_ctx *ctx, nn_tensor *x) { return nn__unary(ctx, NN_OP_TANH, x, NULL, 0); }
