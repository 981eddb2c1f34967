/* clamp: min(max(x, lo), hi) (PPO's clipped ratio). */
#include "nn/nn_impl.h"

typedef struct clamp_p {
    float lo, hi;
} clamp_p;

/* x [any] -> y [same] */
static void clamp_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const clamp_p *p = NN_NODE_P(node, clamp_p);
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    for (int64_t i = 0; i < node->out->numel; i++) y[i] = x[i] < p->lo ? p->lo : (x[i] > p->hi ? p->hi : x[i]);
}

/* dy -> dx += dy where lo <= x <= hi (PyTorch's convention at the bounds) */
static void clamp_backward(nn_ctx *ctx, nn_node *node) {
    const clamp_p *p = NN_NODE_P(node, clamp_p);
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const float *x = node->ins[0]->data, *dy = node->out->grad;
    for (int64_t i = 0; i < node->out->numel; i++)
        if (x[i] >= p->lo && x[i] <= p->hi) dx[i] += dy[i];
}

const nn_op_impl nn_op_clamp_impl = {clamp_forward, clamp_backward};

nn_tensor *nn_clamp(nn_ctx *ctx, nn_tensor *x, float lo, float hi) {
    NN_ASSERT(lo <= hi, "clamp: lo %g > hi %g", (double)lo, (double)hi);
    clamp_p p = {lo, hi};
    return nn__unary(ctx, NN_OP_CLAMP, x, &p, sizeof p);
}
