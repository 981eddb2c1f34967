/* dropout: zero each element with probability p, scale the kept ones by 1/(1-p). Training only.
 * The mask is drawn serially from the ctx rng, so it depends on the seed alone. */
#include "nn/nn_impl.h"

typedef struct dropout_p {
    float p;
} dropout_p;

/* x [any] -> y [same]; saved mask (0 or 1/(1-p)) [same] */
static void dropout_forward(nn_ctx *ctx, nn_node *node) {
    const dropout_p *q = NN_NODE_P(node, dropout_p);
    const nn_tensor *x = node->ins[0];
    float *mask = node->saved = nn__alloc(ctx, (size_t)x->numel * sizeof(float));
    float keep = 1.0f - q->p, scale = 1.0f / keep;
    for (int64_t i = 0; i < x->numel; i++) mask[i] = nd_rng_uniform(&ctx->rng) < keep ? scale : 0.0f;
    for (int64_t i = 0; i < x->numel; i++) node->out->data[i] = x->data[i] * mask[i];
}

/* dy -> dx += dy * mask */
static void dropout_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const float *mask = node->saved;
    for (int64_t i = 0; i < node->out->numel; i++) dx[i] += node->out->grad[i] * mask[i];
}

const nn_op_impl nn_op_dropout_impl = {dropout_forward, dropout_backward};

nn_tensor *nn_dropout(nn_ctx *ctx, nn_tensor *x, float p) {
    NN_ASSERT(p >= 0.0f && p < 1.0f, "dropout: p %g outside [0, 1)", (double)p);
    if (!ctx->training || p == 0.0f) return x;
    dropout_p q = {p};
    return nn__unary(ctx, NN_OP_DROPOUT, x, &q, sizeof q);
}
