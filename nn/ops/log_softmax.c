/* log_softmax along the last dim of [N,C]. */
#include <math.h>

#include "nn/nn_impl.h"

/* x [N,C] -> y [N,C] = x - logsumexp(x) */
static void log_softmax_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const nn_tensor *x = node->ins[0];
    int64_t n = x->shape[0], c = x->shape[1];
    for (int64_t i = 0; i < n; i++) {
        const float *xr = x->data + i * c;
        float mx = xr[0];
        for (int64_t j = 1; j < c; j++) mx = xr[j] > mx ? xr[j] : mx;
        double z = 0.0;
        for (int64_t j = 0; j < c; j++) z += exp((double)xr[j] - mx);
        float lz = (float)(log(z) + mx);
        for (int64_t j = 0; j < c; j++) node->out->data[i * c + j] = xr[j] - lz;
    }
}

/* dy -> dx += dy - softmax * sum(dy) per row */
static void log_softmax_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    int64_t n = node->out->shape[0], c = node->out->shape[1];
    for (int64_t i = 0; i < n; i++) {
        const float *y = node->out->data + i * c, *g = node->out->grad + i * c;
        double s = 0.0;
        for (int64_t j = 0; j < c; j++) s += g[j];
        for (int64_t j = 0; j < c; j++) dx[i * c + j] += g[j] - expf(y[j]) * (float)s;
    }
}

const nn_op_impl nn_op_log_softmax_impl = {log_softmax_forward, log_softmax_backward};

nn_tensor *nn_log_softmax(nn_ctx *ctx, nn_tensor *x) {
    char sx[64];
    NN_ASSERT(x->ndim == 2, "log_softmax: x %s must be [N,C]", NN_SHAPE_STR(x, sx));
    return nn__unary(ctx, NN_OP_LOG_SOFTMAX, x, NULL, 0);
}
