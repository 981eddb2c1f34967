/* drop_path: keep or drop each example's whole tensor (ScheduledDropPath); kept examples are
 * divided by keep_prob. Training only. One draw per example from the ctx rng. */
#include "nn/nn_impl.h"

typedef struct drop_path_p {
    float keep;
} drop_path_p;

/* x [N,...] -> y [same]; saved per-example factor (0 or 1/keep) [N] */
static void drop_path_forward(nn_ctx *ctx, nn_node *node) {
    const drop_path_p *q = NN_NODE_P(node, drop_path_p);
    const nn_tensor *x = node->ins[0];
    int64_t n = x->shape[0], per = x->numel / n;
    float *f = node->saved = nn__alloc(ctx, (size_t)n * sizeof(float));
    for (int64_t b = 0; b < n; b++) f[b] = nd_rng_uniform(&ctx->rng) < q->keep ? 1.0f / q->keep : 0.0f;
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < per; i++) node->out->data[b * per + i] = x->data[b * per + i] * f[b];
}

/* dy -> dx += dy * factor[example] */
static void drop_path_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const float *f = node->saved;
    int64_t n = node->out->shape[0], per = node->out->numel / n;
    for (int64_t b = 0; b < n; b++)
        if (f[b] != 0.0f) nn__vec_axpy(dx + b * per, f[b], node->out->grad + b * per, per);
}

const nn_op_impl nn_op_drop_path_impl = {drop_path_forward, drop_path_backward};

nn_tensor *nn_drop_path(nn_ctx *ctx, nn_tensor *x, float keep_prob) {
    NN_ASSERT(keep_prob > 0.0f, "drop_path: keep_prob %g must be > 0", (double)keep_prob);
    NN_ASSERT(x->ndim >= 1, "drop_path: x needs a batch dimension");
    if (!ctx->training || keep_prob >= 1.0f) return x;
    drop_path_p q = {keep_prob};
    return nn__unary(ctx, NN_OP_DROP_PATH, x, &q, sizeof q);
}
