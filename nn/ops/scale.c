/* scale: y = s x + c. */
#include "nn/nn_impl.h"

typedef struct scale_p {
    float s, c;
} scale_p;

/* x [any] -> y [same] */
static void scale_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const scale_p *p = NN_NODE_P(node, scale_p);
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    int64_t n = node->out->numel;
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = p->s * x[i] + p->c;
}

/* dy -> dx += s dy */
static void scale_backward(nn_ctx *ctx, nn_node *node) {
    const scale_p *p = NN_NODE_P(node, scale_p);
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    nn__vec_axpy(dx, p->s, node->out->grad, node->out->numel);
}

const nn_op_impl nn_op_scale_impl = {scale_forward, scale_backward};

nn_tensor *nn_scale(nn_ctx *ctx, nn_tensor *x, float s, float c) {
    scale_p p = {s, c};
    return nn__unary(ctx, NN_OP_SCALE, x, &p, sizeof p);
}
