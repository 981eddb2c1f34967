/* mean of all elements. */
#include "nn/nn_impl.h"

/* x [any] -> y [] (accumulated in double, in index order) */
static void mean_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    double s = 0.0;
    for (int64_t i = 0; i < node->ins[0]->numel; i++) s += node->ins[0]->data[i];
    node->out->data[0] = (float)(s / (double)node->ins[0]->numel);
}

/* dy [] -> dx += dy / numel */
static void mean_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    float g = node->out->grad[0] / (float)node->ins[0]->numel;
    for (int64_t i = 0; i < node->ins[0]->numel; i++) dx[i] += g;
}

const nn_op_impl nn_op_mean_impl = {mean_forward, mean_backward};

nn_tensor *nn_mean(nn_ctx *ctx, nn_tensor *x) {
    nn_node *node = nn__node(ctx, NN_OP_MEAN, 1, &x);
    node->out = nn__tensor(ctx, 0, NULL);
    nn__node_run(ctx, node);
    return node->out;
}
