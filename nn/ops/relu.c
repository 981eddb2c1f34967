/* relu: y = max(x, 0). */
#include "nn/nn_impl.h"

/* x [any] -> y [same] */
static void relu_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    int64_t n = node->out->numel;
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dy [any] -> dx [same] (+=, or = for a fresh gradient), passing where y > 0. When x has no
 * gradient yet, dy's buffer becomes it (nn__grad_pass) and is masked in place: each line is
 * written right after it is read, with no second buffer to fetch. */
static void relu_backward(nn_ctx *ctx, nn_node *node) {
    const float *y = node->out->data;
    int64_t n = node->out->numel;
    if (nn__grad_pass(ctx, node->out, node->ins[0])) {
        float *g = node->ins[0]->grad;
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (int64_t i = 0; i < n; i++) g[i] = y[i] > 0.0f ? g[i] : 0.0f;
        return;
    }
    int fresh;
    float *dx = nn__grad_first(ctx, node->ins[0], &fresh);
    if (!dx) return;
    const float *dy = node->out->grad;
    if (fresh) {
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    } else {
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
    }
}

const nn_op_impl nn_op_relu_impl = {relu_forward, relu_backward};

nn_tensor *nn_relu(nn_ctx *ctx, nn_tensor *x) { return nn__unary(ctx, NN_OP_RELU, x, NULL, 0); }
