/* sigmoid: y = 1 / (1 + exp(-x)). */
#include <math.h>

#include "nn/nn_impl.h"

/* x [any] -> y [same]; the two branches keep exp() from overflowing. */
static void sigmoid_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    for (int64_t i = 0; i < node->out->numel; i++) {
        float v = x[i];
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            float e = expf(v);
            y[i] = e / (1.0f + e);
        }
    }
}

/* dy -> dx += dy * y (1 - y) */
static void sigmoid_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const float *y = node->out->data, *dy = node->out->grad;
    for (int64_t i = 0; i < node->out->numel; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

const nn_op_impl nn_op_sigmoid_impl = {sigmoid_forward, sigmoid_backward};

nn_tensor *nn_sigmoid(nn_ctx *ctx, nn_tensor *x) { return nn__unary(ctx, NN_OP_SIGMOID, x, NULL, 0); }
