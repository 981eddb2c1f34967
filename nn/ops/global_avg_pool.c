/* global_avg_pool: mean over H,W. */
#include "nn/nn_impl.h"

/* x [N,C,H,W] -> y [N,C] */
static void global_avg_pool_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const nn_tensor *x = node->ins[0];
    int64_t hw = NN_H(x) * NN_W(x);
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < NN_N(x) * NN_C(x); nc++) {
        const float *xp = x->data + nc * hw;
        float s = 0.0f;
        for (int64_t i = 0; i < hw; i++) s += xp[i];
        node->out->data[nc] = s / (float)hw;
    }
}

/* dy [N,C] -> dx [N,C,H,W] (+= dy / HW) */
static void global_avg_pool_backward(nn_ctx *ctx, nn_node *node) {
    nn_tensor *x = node->ins[0];
    float *dx = nn__grad(ctx, x);
    if (!dx) return;
    int64_t hw = NN_H(x) * NN_W(x);
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < NN_N(x) * NN_C(x); nc++) {
        float g = node->out->grad[nc] / (float)hw;
        for (int64_t i = 0; i < hw; i++) dx[nc * hw + i] += g;
    }
}

const nn_op_impl nn_op_global_avg_pool_impl = {global_avg_pool_forward, global_avg_pool_backward};

nn_tensor *nn_global_avg_pool(nn_ctx *ctx, nn_tensor *x) {
    NN_ASSERT(x->ndim == 4, "global_avg_pool: x must be [N,C,H,W], has rank %d", x->ndim);
    nn_node *node = nn__node(ctx, NN_OP_GLOBAL_AVG_POOL, 1, &x);
    node->out = nn__tensor(ctx, 2, NN_SHAPE(NN_N(x), NN_C(x)));
    nn__node_run(ctx, node);
    return node->out;
}
