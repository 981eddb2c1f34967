/* avg_pool2d: mean over a window; divides by the in-image count (TF SAME, PyTorch
 * count_include_pad=False) or by KH*KW. */
#include "nn/nn_impl.h"
#include "nn/ops/conv2d_dw.h"
#include "nn/ops/pool_geom.h"

NN_NODE_PARAMS_FIT(nn_pool_params);

nn_pool_params nn_pool_same(int32_t k, int32_t stride) {
    nn_pool_params p = {k, k, stride, stride, 0, 0, 0, 0, 1, 0};
    return p;
}

nn_pool_params nn_pool_valid(int32_t k, int32_t stride) {
    nn_pool_params p = {k, k, stride, stride, 0, 0, 0, 0, 0, 0};
    return p;
}

/* A pooling window is a depthwise convolution with all-one weights followed by a division by
 * the window's count; the vectorised depthwise kernels (conv2d_dw.c) do the summing. */
static nn_conv2d_params as_conv(const nn_pool_params *q) {
    nn_conv2d_params c = {q->stride_h, q->stride_w, 1, 1, 1, q->pad_t, q->pad_b, q->pad_l, q->pad_r, 0};
    return c;
}

/* 1 / count for every output cell of a plane [OH,OW] (the same for all planes). */
static float *inv_counts(nn_ctx *ctx, const nn_pool_params *q, int64_t h, int64_t w, int64_t oh, int64_t ow) {
    float *inv = nn__alloc(ctx, (size_t)(oh * ow) * sizeof(float));
    for (int64_t r = 0; r < oh; r++)
        for (int64_t c = 0; c < ow; c++) {
            int64_t h0, h1, w0, w1;
            nn__pool_window(q, h, w, r, c, &h0, &h1, &w0, &w1);
            int64_t cnt = q->count_include_pad ? (int64_t)q->kh * q->kw : (h1 - h0) * (w1 - w0);
            inv[r * ow + c] = cnt > 0 ? 1.0f / (float)cnt : 0.0f;
        }
    return inv;
}

static float *ones(nn_ctx *ctx, int64_t c, int64_t k) {
    float *o = nn__alloc(ctx, (size_t)(c * k) * sizeof(float));
    for (int64_t i = 0; i < c * k; i++) o[i] = 1.0f;
    return o;
}

/* x [N,C,H,W] -> y [N,C,OH,OW] */
static void avg_pool2d_forward(nn_ctx *ctx, nn_node *node) {
    const nn_pool_params *q = NN_NODE_P(node, nn_pool_params);
    const nn_tensor *x = node->ins[0];
    nn_tensor *y = node->out;
    int64_t n = NN_N(x), c = NN_C(x), h = NN_H(x), w = NN_W(x), oh = NN_H(y), ow = NN_W(y);
    nn_conv2d_params cp = as_conv(q);
    nn__dw_forward(ctx, x->data, ones(ctx, c, (int64_t)q->kh * q->kw), NULL, y->data, n, c, h, w, q->kh, q->kw, oh, ow, &cp);
    float *inv = node->saved = inv_counts(ctx, q, h, w, oh, ow);
#pragma omp parallel for schedule(static) if (y->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < n * c; nc++) {
        float *yp = y->data + nc * oh * ow;
#pragma omp simd
        for (int64_t i = 0; i < oh * ow; i++) yp[i] *= inv[i];
    }
}

/* dy [N,C,OH,OW] -> dx [N,C,H,W] (+=, or = when fresh): scale by 1/count, then the depthwise input gradient */
static void avg_pool2d_backward(nn_ctx *ctx, nn_node *node) {
    const nn_pool_params *q = NN_NODE_P(node, nn_pool_params);
    nn_tensor *x = node->ins[0];
    int fresh;
    float *dx = nn__grad_first(ctx, x, &fresh);
    if (!dx) return;
    const nn_tensor *y = node->out;
    int64_t n = NN_N(x), c = NN_C(x), h = NN_H(x), w = NN_W(x), oh = NN_H(y), ow = NN_W(y);
    const float *inv = node->saved;
    size_t gs_bytes = (size_t)y->numel * sizeof(float);
    float *gs = nn__host_temp(ctx, gs_bytes); /* not scratch: the kernel uses that */
#pragma omp parallel for schedule(static) if (y->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < n * c; nc++) {
        const float *g = y->grad + nc * oh * ow;
        float *d = gs + nc * oh * ow;
#pragma omp simd
        for (int64_t i = 0; i < oh * ow; i++) d[i] = g[i] * inv[i];
    }
    nn_conv2d_params cp = as_conv(q);
    nn__dw_backward(ctx, x->data, ones(ctx, c, (int64_t)q->kh * q->kw), gs, dx, fresh, NULL, n, c, h, w, q->kh, q->kw, oh, ow, &cp);
    nn__host_temp_release(ctx, gs, gs_bytes);
}

const nn_op_impl nn_op_avg_pool2d_impl = {avg_pool2d_forward, avg_pool2d_backward};

nn_tensor *nn_avg_pool2d(nn_ctx *ctx, nn_tensor *x, const nn_pool_params *p) {
    nn_pool_params q = *p;
    int64_t oh, ow;
    nn__pool_resolve("avg_pool2d", x, &q, &oh, &ow);
    nn_node *node = nn__node(ctx, NN_OP_AVG_POOL2D, 1, &x);
    *NN_NODE_P(node, nn_pool_params) = q;
    node->out = nn__tensor(ctx, 4, NN_SHAPE(NN_N(x), NN_C(x), oh, ow));
    nn__node_run(ctx, node);
    return node->out;
}
