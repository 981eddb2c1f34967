/* smooth_l1 (PyTorch's definition with beta): 0.5 d^2 / beta for |d| < beta, else |d| - beta/2,
 * weighted and divided by denom. */
#include <math.h>

#include "nn/nn_impl.h"
#include "nn/ops/weighted_loss.h"

typedef struct smooth_l1_p {
    float beta;
} smooth_l1_p;

/* x [any], target/weight [same] -> loss [] */
static void smooth_l1_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const nn__wloss_saved *s = node->saved;
    float beta = NN_NODE_P(node, smooth_l1_p)->beta;
    const float *x = node->ins[0]->data;
    double total = 0.0;
    for (int64_t i = 0; i < node->ins[0]->numel; i++) {
        float w = s->weight ? s->weight[i] : 1.0f;
        if (w == 0.0f) continue;
        double d = fabs((double)x[i] - s->target[i]);
        total += w * (d < beta ? 0.5 * d * d / beta : d - 0.5 * beta);
    }
    node->out->data[0] = s->denom > 0.0 ? (float)(total / s->denom) : 0.0f;
}

/* dloss -> dx += dloss w (|d| < beta ? d / beta : sign(d)) / denom */
static void smooth_l1_backward(nn_ctx *ctx, nn_node *node) {
    const nn__wloss_saved *s = node->saved;
    float beta = NN_NODE_P(node, smooth_l1_p)->beta;
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx || s->denom <= 0.0) return;
    const float *x = node->ins[0]->data;
    float g = (float)(node->out->grad[0] / s->denom);
    for (int64_t i = 0; i < node->ins[0]->numel; i++) {
        float w = s->weight ? s->weight[i] : 1.0f;
        float d = x[i] - s->target[i];
        float dd = fabsf(d) < beta ? d / beta : (d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f));
        dx[i] += g * w * dd;
    }
}

const nn_op_impl nn_op_smooth_l1_impl = {smooth_l1_forward, smooth_l1_backward};

nn_tensor *nn_smooth_l1(nn_ctx *ctx, nn_tensor *x, nn_tensor *target, nn_tensor *weight, float beta, float denom) {
    NN_ASSERT(beta >= 0.0f, "smooth_l1: beta %g must be >= 0", (double)beta);
    nn__wloss_saved *s = nn__wloss_prepare(ctx, "smooth_l1", x, target, weight, denom);
    nn_node *node = nn__node(ctx, NN_OP_SMOOTH_L1, 1, &x);
    node->saved = s;
    NN_NODE_P(node, smooth_l1_p)->beta = beta;
    node->out = nn__tensor(ctx, 0, NULL);
    nn__node_run(ctx, node);
    return node->out;
}
