/* bce_with_logits: sum_i w_i (max(x,0) - x t + log(1 + exp(-|x|))) / denom, the stable form. */
#include <math.h>

#include "nn/nn_impl.h"
#include "nn/ops/weighted_loss.h"

/* x [any], target/weight [same] -> loss [] */
static void bce_with_logits_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const nn__wloss_saved *s = node->saved;
    const float *x = node->ins[0]->data;
    double total = 0.0;
    for (int64_t i = 0; i < node->ins[0]->numel; i++) {
        float w = s->weight ? s->weight[i] : 1.0f;
        if (w == 0.0f) continue;
        double v = x[i];
        total += w * ((v > 0.0 ? v : 0.0) - v * s->target[i] + log1p(exp(-fabs(v))));
    }
    node->out->data[0] = s->denom > 0.0 ? (float)(total / s->denom) : 0.0f;
}

/* dloss -> dx += dloss w (sigmoid(x) - t) / denom */
static void bce_with_logits_backward(nn_ctx *ctx, nn_node *node) {
    const nn__wloss_saved *s = node->saved;
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx || s->denom <= 0.0) return;
    const float *x = node->ins[0]->data;
    float g = (float)(node->out->grad[0] / s->denom);
    for (int64_t i = 0; i < node->ins[0]->numel; i++) {
        float w = s->weight ? s->weight[i] : 1.0f;
        float sig = x[i] >= 0.0f ? 1.0f / (1.0f + expf(-x[i])) : expf(x[i]) / (1.0f + expf(x[i]));
        dx[i] += g * w * (sig - s->target[i]);
    }
}

const nn_op_impl nn_op_bce_with_logits_impl = {bce_with_logits_forward, bce_with_logits_backward};

nn_tensor *nn_bce_with_logits(nn_ctx *ctx, nn_tensor *x, nn_tensor *target, nn_tensor *weight, float denom) {
    nn__wloss_saved *s = nn__wloss_prepare(ctx, "bce_with_logits", x, target, weight, denom);
    nn_node *node = nn__node(ctx, NN_OP_BCE_WITH_LOGITS, 1, &x);
    node->saved = s;
    node->out = nn__tensor(ctx, 0, NULL);
    nn__node_run(ctx, node);
    return node->out;
}
