/* Losses and row ops: softmax cross-entropy, log-softmax, gather, embedding, BCE with logits,
 * smooth L1. Labels, indices, targets and weights were copied to host memory by the op's
 * constructor; the forward pass uploads them and keeps the device copies for backward (the
 * node's saved pointers then point at device memory: both passes of an op run on one backend). */
#include "nn/cuda/cuda_common.h"

/* lz[i] = log sum_j exp(x[i, j]) over rows of [n, c]: one block per row, max then sum in double. */
__global__ static void k_row_lse(int64_t n, int64_t c, const float *x, float *lz) {
    __shared__ float smax[32];
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *xr = x + i * c;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) m = fmaxf(m, xr[j]);
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_down_sync(0xffffffffu, m, o));
        __syncthreads();
        if ((threadIdx.x & 31) == 0) smax[threadIdx.x >> 5] = m;
        __syncthreads();
        m = smax[0];
        for (int w = 1; w < (int)(blockDim.x + 31) / 32; w++) m = fmaxf(m, smax[w]);
        double z = 0.0;
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) z += exp((double)xr[j] - m);
        z = nn__block_sum(z);
        if (threadIdx.x == 0) lz[i] = (float)(log(z) + m);
    }
}
static float *row_lse(nn_ctx *ctx, const float *x, int64_t n, int64_t c) {
    float *lz = (float *)nn__dalloc(ctx, (size_t)n * sizeof(float));
    k_row_lse<<<(unsigned)(n > 65536 ? 65536 : n), 128, 0, nn__cu_stream()>>>(n, c, x, lz);
    NN_CU(cudaGetLastError());
    return lz;
}

static void softmax_cross_entropy_fwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_sce_p p = *NN_NODE_P(node, nn__cu_sce_p);
    nn__cu_sce_saved *s = (nn__cu_sce_saved *)node->saved;
    int64_t n = node->ins[0]->shape[0], c = node->ins[0]->shape[1];
    const int32_t *lab = s->labels = (int32_t *)nn__cu_upload(ctx, s->labels, (size_t)n * sizeof(int32_t));
    float *prob = s->prob = (float *)nn__dalloc(ctx, (size_t)(n * c) * sizeof(float));
    const float *x = node->ins[0]->data;
    const float *lz = row_lse(ctx, x, n, c);
    nn__cu_for(n * c, [=] __device__(int64_t e) { prob[e] = expf(x[e] - lz[e / c]); });
    double *rows = (double *)nn__dalloc(ctx, (size_t)n * sizeof(double));
    float sm = p.smoothing;
    nn__cu_rowsum(n, c, [=] __device__(int64_t i, int64_t j) {
        if (lab[i] < 0) return 0.0;
        double q = sm / (double)c + (j == lab[i] ? 1.0 - sm : 0.0);
        return q != 0.0 ? -q * ((double)x[i * c + j] - lz[i]) : 0.0;
    }, rows);
    float *y = node->out->data;
    int64_t count = p.count;
    nn__cu_for(1, [=] __device__(int64_t) {
        double t = 0.0;
        for (int64_t i = 0; i < n; i++) t += rows[i];
        y[0] = count > 0 ? (float)(t / (double)count) : 0.0f;
    });
}
static void softmax_cross_entropy_bwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_sce_p p = *NN_NODE_P(node, nn__cu_sce_p);
    const nn__cu_sce_saved *s = (const nn__cu_sce_saved *)node->saved;
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx || p.count == 0) return;
    int64_t c = node->ins[0]->shape[1];
    const int32_t *lab = s->labels;
    const float *prob = s->prob, *dy = node->out->grad;
    float sm = p.smoothing, cnt = (float)p.count;
    nn__cu_for(node->ins[0]->numel, [=] __device__(int64_t e) {
        int64_t i = e / c, j = e % c;
        if (lab[i] < 0) return;
        float q = sm / (float)c + (j == lab[i] ? 1.0f - sm : 0.0f);
        dx[e] += dy[0] / cnt * (prob[e] - q);
    });
}

static void log_softmax_fwd(nn_ctx *ctx, nn_node *node) {
    int64_t n = node->ins[0]->shape[0], c = node->ins[0]->shape[1];
    const float *x = node->ins[0]->data;
    const float *lz = row_lse(ctx, x, n, c);
    float *y = node->out->data;
    nn__cu_for(n * c, [=] __device__(int64_t e) { y[e] = x[e] - lz[e / c]; });
}
static void log_softmax_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    int64_t n = node->out->shape[0], c = node->out->shape[1];
    const float *y = node->out->data, *g = node->out->grad;
    double *s = (double *)nn__dalloc(ctx, (size_t)n * sizeof(double));
    nn__cu_rowsum(n, c, [=] __device__(int64_t i, int64_t j) { return g[i * c + j]; }, s);
    nn__cu_for(n * c, [=] __device__(int64_t e) { dx[e] += g[e] - expf(y[e]) * (float)s[e / c]; });
}

static void gather_fwd(nn_ctx *ctx, nn_node *node) {
    int64_t n = node->ins[0]->shape[0], c = node->ins[0]->shape[1];
    const int32_t *idx = (const int32_t *)(node->saved = nn__cu_upload(ctx, node->saved, (size_t)n * sizeof(int32_t)));
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    nn__cu_for(n, [=] __device__(int64_t i) { y[i] = x[i * c + idx[i]]; });
}
static void gather_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    int64_t n = node->ins[0]->shape[0], c = node->ins[0]->shape[1];
    const int32_t *idx = (const int32_t *)node->saved;
    const float *dy = node->out->grad;
    nn__cu_for(n, [=] __device__(int64_t i) { dx[i * c + idx[i]] += dy[i]; });
}

static void embedding_fwd(nn_ctx *ctx, nn_node *node) {
    int64_t n = node->out->shape[0], d = node->out->shape[1];
    const int32_t *idx = (const int32_t *)(node->saved = nn__cu_upload(ctx, node->saved, (size_t)n * sizeof(int32_t)));
    const float *t = node->ins[0]->data;
    float *y = node->out->data;
    nn__cu_for(n * d, [=] __device__(int64_t e) { y[e] = t[(int64_t)idx[e / d] * d + e % d]; });
}
static void embedding_bwd(nn_ctx *ctx, nn_node *node) {
    float *dt = nn__grad(ctx, node->ins[0]);
    if (!dt) return;
    int64_t n = node->out->shape[0], d = node->out->shape[1];
    const int32_t *idx = (const int32_t *)node->saved;
    const float *dy = node->out->grad;
    /* repeated indices add into one row */
    nn__cu_for(n * d, [=] __device__(int64_t e) { atomicAdd(&dt[(int64_t)idx[e / d] * d + e % d], dy[e]); });
}

/* ---- weighted element-wise losses ------------------------------------------------------------- */
static nn__cu_wloss_saved *wloss_upload(nn_ctx *ctx, nn_node *node) {
    nn__cu_wloss_saved *s = (nn__cu_wloss_saved *)node->saved;
    size_t bytes = (size_t)node->ins[0]->numel * sizeof(float);
    s->target = (float *)nn__cu_upload(ctx, s->target, bytes);
    if (s->weight) s->weight = (float *)nn__cu_upload(ctx, s->weight, bytes);
    return s;
}
template <typename F> static void wloss_fwd(nn_ctx *ctx, nn_node *node, F term) {
    const nn__cu_wloss_saved *s = wloss_upload(ctx, node);
    const float *x = node->ins[0]->data, *t = s->target, *w = s->weight;
    double *tot = (double *)nn__dalloc(ctx, sizeof(double));
    nn__cu_rowsum(1, node->ins[0]->numel, [=] __device__(int64_t, int64_t i) {
        float wi = w ? w[i] : 1.0f;
        return wi == 0.0f ? 0.0 : wi * term((double)x[i], (double)t[i]);
    }, tot);
    float *y = node->out->data;
    double denom = s->denom;
    nn__cu_for(1, [=] __device__(int64_t) { y[0] = denom > 0.0 ? (float)(tot[0] / denom) : 0.0f; });
}
template <typename F> static void wloss_bwd(nn_ctx *ctx, nn_node *node, F dterm) {
    const nn__cu_wloss_saved *s = (const nn__cu_wloss_saved *)node->saved;
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx || s->denom <= 0.0) return;
    const float *x = node->ins[0]->data, *t = s->target, *w = s->weight, *dy = node->out->grad;
    double denom = s->denom;
    nn__cu_for(node->ins[0]->numel, [=] __device__(int64_t i) {
        float g = (float)(dy[0] / denom);
        dx[i] += g * (w ? w[i] : 1.0f) * dterm(x[i], t[i]);
    });
}

static void bce_with_logits_fwd(nn_ctx *ctx, nn_node *node) {
    wloss_fwd(ctx, node, [] __device__(double v, double t) { return (v > 0.0 ? v : 0.0) - v * t + log1p(exp(-fabs(v))); });
}
static void bce_with_logits_bwd(nn_ctx *ctx, nn_node *node) {
    wloss_bwd(ctx, node, [] __device__(float v, float t) {
        float sig = v >= 0.0f ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v));
        return sig - t;
    });
}
static void smooth_l1_fwd(nn_ctx *ctx, nn_node *node) {
    double beta = NN_NODE_P(node, nn__cu_smooth_l1_p)->beta;
    wloss_fwd(ctx, node, [=] __device__(double v, double t) {
        double d = fabs(v - t);
        return d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
    });
}
static void smooth_l1_bwd(nn_ctx *ctx, nn_node *node) {
    float beta = NN_NODE_P(node, nn__cu_smooth_l1_p)->beta;
    wloss_bwd(ctx, node, [=] __device__(float v, float t) {
        float d = v - t;
        return fabsf(d) < beta ? d / beta : (d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f));
    });
}

void nn__cu_register_loss(nn_cu_op *ops) {
#define REG(E, n) ops[NN_OP_##E] = nn_cu_op{n##_fwd, n##_bwd}
    REG(SOFTMAX_CROSS_ENTROPY, softmax_cross_entropy);
    REG(LOG_SOFTMAX, log_softmax);
    REG(GATHER, gather);
    REG(EMBEDDING, embedding);
    REG(BCE_WITH_LOGITS, bce_with_logits);
    REG(SMOOTH_L1, smooth_l1);
#undef REG
}
