/* Pools on the GPU: one thread per output (forward) or per input element (average-pool input
 * gradient, a gather); max-pool keeps the arg-max as the CPU does and scatters its gradient with
 * atomics (windows overlap). */
#include "nn/cuda/cuda_common.h"

struct pool_geom {
    int64_t h, w, oh, ow;
    int32_t kh, kw, sh, sw, pt, pl, incl;
};
static pool_geom geometry(const nn_node *node) {
    const nn_pool_params *q = NN_NODE_P(node, nn_pool_params);
    pool_geom g = {NN_H(node->ins[0]), NN_W(node->ins[0]), NN_H(node->out), NN_W(node->out), q->kh, q->kw,
                   q->stride_h, q->stride_w, q->pad_t, q->pad_l, q->count_include_pad};
    return g;
}
/* The window of output (r, c) clipped to the image, and its divisor. */
static __device__ inline void window(const pool_geom &g, int64_t r, int64_t c, int64_t *h0, int64_t *h1, int64_t *w0,
                                     int64_t *w1) {
    int64_t a = r * g.sh - g.pt, b = c * g.sw - g.pl;
    *h0 = a < 0 ? 0 : a;
    *h1 = a + g.kh > g.h ? g.h : a + g.kh;
    *w0 = b < 0 ? 0 : b;
    *w1 = b + g.kw > g.w ? g.w : b + g.kw;
}
static __device__ inline float inv_count(const pool_geom &g, int64_t r, int64_t c) {
    int64_t h0, h1, w0, w1;
    window(g, r, c, &h0, &h1, &w0, &w1);
    int64_t cnt = g.incl ? (int64_t)g.kh * g.kw : (h1 - h0) * (w1 - w0);
    return cnt > 0 ? 1.0f / (float)cnt : 0.0f;
}

static void avg_pool2d_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    pool_geom g = geometry(node);
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    nn__cu_for(node->out->numel, [=] __device__(int64_t e) {
        int64_t c = e % g.ow, r = (e / g.ow) % g.oh, nc = e / (g.ow * g.oh);
        int64_t h0, h1, w0, w1;
        window(g, r, c, &h0, &h1, &w0, &w1);
        const float *xp = x + nc * g.h * g.w;
        float s = 0.0f;
        for (int64_t i = h0; i < h1; i++)
            for (int64_t j = w0; j < w1; j++) s += xp[i * g.w + j];
        y[e] = s * inv_count(g, r, c);
    });
}
static void avg_pool2d_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    pool_geom g = geometry(node);
    const float *dy = node->out->grad;
    nn__cu_for(node->ins[0]->numel, [=] __device__(int64_t e) {
        int64_t iw = e % g.w, ih = (e / g.w) % g.h, nc = e / (g.w * g.h);
        const float *gp = dy + nc * g.oh * g.ow;
        float s = 0.0f;
        /* outputs whose window [r*sh - pt, +kh) holds ih */
        int64_t r0 = ih + g.pt - g.kh + 1, c0 = iw + g.pl - g.kw + 1;
        r0 = r0 <= 0 ? 0 : (r0 + g.sh - 1) / g.sh;
        c0 = c0 <= 0 ? 0 : (c0 + g.sw - 1) / g.sw;
        for (int64_t r = r0; r < g.oh && r * g.sh - g.pt <= ih; r++)
            for (int64_t c = c0; c < g.ow && c * g.sw - g.pl <= iw; c++) s += gp[r * g.ow + c] * inv_count(g, r, c);
        dx[e] += s;
    });
}

static void max_pool2d_fwd(nn_ctx *ctx, nn_node *node) {
    pool_geom g = geometry(node);
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    int32_t *arg = NULL;
    if (node->out->flags & NN_TENSOR_REQUIRES_GRAD)
        arg = (int32_t *)(node->saved = nn__dalloc(ctx, (size_t)node->out->numel * sizeof(int32_t)));
    nn__cu_for(node->out->numel, [=] __device__(int64_t e) {
        int64_t c = e % g.ow, r = (e / g.ow) % g.oh, nc = e / (g.ow * g.oh);
        int64_t h0, h1, w0, w1;
        window(g, r, c, &h0, &h1, &w0, &w1);
        const float *xp = x + nc * g.h * g.w;
        float m = -INFINITY;
        int64_t a = h0 * g.w + w0;
        /* the first maximum in row-major order wins, as on the CPU */
        for (int64_t i = h0; i < h1; i++)
            for (int64_t j = w0; j < w1; j++)
                if (xp[i * g.w + j] > m) {
                    m = xp[i * g.w + j];
                    a = i * g.w + j;
                }
        y[e] = m;
        if (arg) arg[e] = (int32_t)a;
    });
}
static void max_pool2d_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    int64_t hw = NN_H(node->ins[0]) * NN_W(node->ins[0]), ohw = NN_H(node->out) * NN_W(node->out);
    const int32_t *arg = (const int32_t *)node->saved;
    const float *dy = node->out->grad;
    nn__cu_for(node->out->numel, [=] __device__(int64_t e) { atomicAdd(&dx[(e / ohw) * hw + arg[e]], dy[e]); });
}

static void global_avg_pool_fwd(nn_ctx *ctx, nn_node *node) {
    const nn_tensor *x = node->ins[0];
    int64_t hw = NN_H(x) * NN_W(x), rows = NN_N(x) * NN_C(x);
    const float *xd = x->data;
    float *y = node->out->data;
    double *tmp = (double *)nn__dalloc(ctx, (size_t)rows * sizeof(double));
    nn__cu_rowsum(rows, hw, [=] __device__(int64_t r, int64_t j) { return xd[r * hw + j]; }, tmp);
    nn__cu_for(rows, [=] __device__(int64_t r) { y[r] = (float)(tmp[r] / (double)hw); });
}
static void global_avg_pool_bwd(nn_ctx *ctx, nn_node *node) {
    nn_tensor *x = node->ins[0];
    float *dx = nn__grad(ctx, x);
    if (!dx) return;
    int64_t hw = NN_H(x) * NN_W(x);
    const float *dy = node->out->grad;
    nn__cu_for(x->numel, [=] __device__(int64_t e) { dx[e] += dy[e / hw] / (float)hw; });
}

void nn__cu_register_pool(nn_cu_op *ops) {
    ops[NN_OP_AVG_POOL2D] = nn_cu_op{avg_pool2d_fwd, avg_pool2d_bwd};
    ops[NN_OP_MAX_POOL2D] = nn_cu_op{max_pool2d_fwd, max_pool2d_bwd};
    ops[NN_OP_GLOBAL_AVG_POOL] = nn_cu_op{global_avg_pool_fwd, global_avg_pool_bwd};
}
