/* batch_norm: per-channel normalisation over N,H,W (train: batch statistics + running-average
 * update; eval: running statistics). One thread per channel: the sums over the batch have a
 * fixed order, so results do not depend on the thread count's scheduling. */
#include <math.h>

#include "nn/nn_impl.h"
#include "nn/ops/bn_affine.h"

typedef struct bn_p {
    float eps, momentum;
    int32_t training;
    int32_t gi, bi;            /* input index of gamma / beta, or -1 */
    nn_tensor *rmean, *rvar;   /* running statistics (buffers), may be NULL in training */
} bn_p;
NN_NODE_PARAMS_FIT(bn_p);

/* Saved for backward: per channel mean and 1/sqrt(var + eps) used in the forward pass;
 * m_global > 0 when the statistics were synchronised across replicas (over m_global elements). */
typedef struct bn_saved {
    float *mean, *invstd;
    double m_global;
} bn_saved;

/* Synchronised batch norm (nn_set_batch_norm_sync): set once before training by dist/. */
static nn_replica_sum_fn bn_sync_sum;
static void *bn_sync_user;

void nn_set_batch_norm_sync(nn_replica_sum_fn sum, void *user) {
    bn_sync_sum = sum;
    bn_sync_user = user;
}

nn_replica_sum_fn nn__batch_norm_sync(void **user) {
    *user = bn_sync_user;
    return bn_sync_sum;
}

static void bn_forward_sync(nn_ctx *ctx, nn_node *node);
static void bn_backward_sync(nn_ctx *ctx, nn_node *node);

static void dims(const nn_tensor *x, int64_t *n, int64_t *c, int64_t *hw) {
    *n = x->shape[0];
    *c = x->shape[1];
    *hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
}

/* The per-channel steps both forward paths share (the synchronised one sums the first two
 * across replicas between them): the sum of x, the sum of squared deviations from the mean
 * (two passes in double: exact enough for large N*H*W, no cancellation), the running-average
 * update from m elements, and y = x * scale + shift with the statistics saved for backward. */
static double channel_sum(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch) {
    double sum = 0.0;
    for (int64_t b = 0; b < n; b++) {
        const float *xp = x + (b * c + ch) * hw;
        float ps = 0.0f;
#pragma omp simd reduction(+ : ps)
        for (int64_t i = 0; i < hw; i++) ps += xp[i];
        sum += ps;
    }
    return sum;
}

static double channel_sq_dev(const float *x, int64_t n, int64_t c, int64_t hw, int64_t ch, double mean) {
    double sq = 0.0;
    float fm = (float)mean;
    for (int64_t b = 0; b < n; b++) {
        const float *xp = x + (b * c + ch) * hw;
        float ps = 0.0f;
#pragma omp simd reduction(+ : ps)
        for (int64_t i = 0; i < hw; i++) ps += (xp[i] - fm) * (xp[i] - fm);
        sq += ps;
    }
    return sq;
}

static void update_running(const bn_p *p, int64_t ch, double mean, double sq, double m) {
    if (!p->rmean) return;
    double mom = p->momentum, unbiased = m > 1 ? sq / (m - 1) : sq / m;
    p->rmean->data[ch] = (float)((1.0 - mom) * p->rmean->data[ch] + mom * mean);
    p->rvar->data[ch] = (float)((1.0 - mom) * p->rvar->data[ch] + mom * unbiased);
}

static void normalize_channel(const bn_p *p, bn_saved *s, const float *x, float *y, const float *gamma,
                              const float *beta, int64_t n, int64_t c, int64_t hw, int64_t ch, double mean,
                              double var) {
    float inv, scale, shift;
    nn__bn_affine(mean, var, p->eps, gamma, beta, ch, &inv, &scale, &shift);
    s->mean[ch] = (float)mean;
    s->invstd[ch] = inv;
    for (int64_t b = 0; b < n; b++) {
        const float *xp = x + (b * c + ch) * hw;
        float *yp = y + (b * c + ch) * hw;
#pragma omp simd
        for (int64_t i = 0; i < hw; i++) yp[i] = xp[i] * scale + shift;
    }
}

/* x [N,C,H,W] or [N,C], gamma/beta [C] -> y [same] */
static void batch_norm_forward(nn_ctx *ctx, nn_node *node) {
    const bn_p *p = NN_NODE_P(node, bn_p);
    if (p->training && bn_sync_sum) {
        bn_forward_sync(ctx, node);
        return;
    }
    const nn_tensor *x = node->ins[0];
    int64_t n, c, hw;
    dims(x, &n, &c, &hw);
    const float *gamma = p->gi >= 0 ? node->ins[p->gi]->data : NULL;
    const float *beta = p->bi >= 0 ? node->ins[p->bi]->data : NULL;
    bn_saved *s = node->saved = nn__alloc(ctx, sizeof *s);
    s->m_global = 0;
    s->mean = nn__alloc(ctx, (size_t)c * sizeof(float));
    s->invstd = nn__alloc(ctx, (size_t)c * sizeof(float));
    float *y = node->out->data;
    int64_t m = n * hw;
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) {
        double mean, var;
        if (p->training) {
            mean = channel_sum(x->data, n, c, hw, ch) / (double)m;
            double sq = channel_sq_dev(x->data, n, c, hw, ch, mean);
            var = sq / (double)m;
            update_running(p, ch, mean, sq, (double)m);
        } else {
            mean = p->rmean->data[ch];
            var = p->rvar->data[ch];
        }
        normalize_channel(p, s, x->data, y, gamma, beta, n, c, hw, ch, mean, var);
    }
}

/* dy -> dx (+=), dgamma (+=), dbeta (+=). Train: dx = g*inv/M (M dy - sum dy - xhat sum dy xhat);
 * eval: dx = g*inv dy (statistics are constants). */
static void batch_norm_backward(nn_ctx *ctx, nn_node *node) {
    const bn_p *p = NN_NODE_P(node, bn_p);
    const bn_saved *s = node->saved;
    if (s->m_global > 0) {
        bn_backward_sync(ctx, node);
        return;
    }
    nn_tensor *x = node->ins[0];
    int64_t n, c, hw;
    dims(x, &n, &c, &hw);
    const float *gamma = p->gi >= 0 ? node->ins[p->gi]->data : NULL;
    float *dx = nn__grad(ctx, x);
    float *dg = p->gi >= 0 ? nn__grad(ctx, node->ins[p->gi]) : NULL;
    float *dbeta = p->bi >= 0 ? nn__grad(ctx, node->ins[p->bi]) : NULL;
    const float *dy = node->out->grad;
    int64_t m = n * hw;
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) {
        float mean = s->mean[ch], inv = s->invstd[ch];
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t b = 0; b < n; b++) {
            const float *xp = x->data + (b * c + ch) * hw, *g = dy + (b * c + ch) * hw;
            float a = 0.0f, bsum = 0.0f;
#pragma omp simd reduction(+ : a, bsum)
            for (int64_t i = 0; i < hw; i++) {
                a += g[i];
                bsum += g[i] * (xp[i] - mean);
            }
            sdy += a;
            sdyx += bsum;
        }
        sdyx *= inv; /* sum dy * xhat */
        if (dg) dg[ch] += (float)sdyx;
        if (dbeta) dbeta[ch] += (float)sdy;
        if (!dx) continue;
        float gi = (gamma ? gamma[ch] : 1.0f) * inv;
        if (p->training) {
            float k1 = (float)(sdy / (double)m), k2 = (float)(sdyx / (double)m);
            for (int64_t b = 0; b < n; b++) {
                const float *xp = x->data + (b * c + ch) * hw, *g = dy + (b * c + ch) * hw;
                float *d = dx + (b * c + ch) * hw;
#pragma omp simd
                for (int64_t i = 0; i < hw; i++) d[i] += gi * (g[i] - k1 - (xp[i] - mean) * inv * k2);
            }
        } else {
            for (int64_t b = 0; b < n; b++) {
                const float *g = dy + (b * c + ch) * hw;
                float *d = dx + (b * c + ch) * hw;
#pragma omp simd
                for (int64_t i = 0; i < hw; i++) d[i] += gi * g[i];
            }
        }
    }
}

/* The synchronised path: the same sums in the same order as above, each summed across
 * replicas before use. Phases are separate loops because the sums meet between them. */
static void bn_forward_sync(nn_ctx *ctx, nn_node *node) {
    const bn_p *p = NN_NODE_P(node, bn_p);
    const nn_tensor *x = node->ins[0];
    int64_t n, c, hw;
    dims(x, &n, &c, &hw);
    const float *gamma = p->gi >= 0 ? node->ins[p->gi]->data : NULL;
    const float *beta = p->bi >= 0 ? node->ins[p->bi]->data : NULL;
    bn_saved *s = node->saved = nn__alloc(ctx, sizeof *s);
    s->mean = nn__alloc(ctx, (size_t)c * sizeof(float));
    s->invstd = nn__alloc(ctx, (size_t)c * sizeof(float));
    double *buf = nn__alloc(ctx, (size_t)(c + 1) * sizeof(double)), *mean = nn__alloc(ctx, (size_t)c * sizeof(double));
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) buf[ch] = channel_sum(x->data, n, c, hw, ch);
    buf[c] = (double)(n * hw);
    bn_sync_sum(buf, c + 1, bn_sync_user);
    double m = buf[c];
    for (int64_t ch = 0; ch < c; ch++) mean[ch] = buf[ch] / m;
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) buf[ch] = channel_sq_dev(x->data, n, c, hw, ch, mean[ch]);
    bn_sync_sum(buf, c, bn_sync_user);
    s->m_global = m;
    float *y = node->out->data;
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) {
        update_running(p, ch, mean[ch], buf[ch], m);
        normalize_channel(p, s, x->data, y, gamma, beta, n, c, hw, ch, mean[ch], buf[ch] / m);
    }
}

/* dgamma, dbeta get this replica's share (the parameter gradients are averaged later, like every
 * other gradient); dx uses the sums over all replicas, as PyTorch's SyncBatchNorm. */
static void bn_backward_sync(nn_ctx *ctx, nn_node *node) {
    const bn_p *p = NN_NODE_P(node, bn_p);
    const bn_saved *s = node->saved;
    nn_tensor *x = node->ins[0];
    int64_t n, c, hw;
    dims(x, &n, &c, &hw);
    const float *gamma = p->gi >= 0 ? node->ins[p->gi]->data : NULL;
    float *dx = nn__grad(ctx, x);
    float *dg = p->gi >= 0 ? nn__grad(ctx, node->ins[p->gi]) : NULL;
    float *dbeta = p->bi >= 0 ? nn__grad(ctx, node->ins[p->bi]) : NULL;
    const float *dy = node->out->grad;
    double *buf = nn__alloc(ctx, (size_t)(2 * c) * sizeof(double));
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) {
        float mean = s->mean[ch], inv = s->invstd[ch];
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t b = 0; b < n; b++) {
            const float *xp = x->data + (b * c + ch) * hw, *g = dy + (b * c + ch) * hw;
            float a = 0.0f, bsum = 0.0f;
#pragma omp simd reduction(+ : a, bsum)
            for (int64_t i = 0; i < hw; i++) {
                a += g[i];
                bsum += g[i] * (xp[i] - mean);
            }
            sdy += a;
            sdyx += bsum;
        }
        sdyx *= inv;
        if (dg) dg[ch] += (float)sdyx;
        if (dbeta) dbeta[ch] += (float)sdy;
        buf[ch] = sdy;
        buf[c + ch] = sdyx;
    }
    if (!dx) return; /* every replica makes the same choice: the graphs are the same */
    bn_sync_sum(buf, 2 * c, bn_sync_user);
    double m = s->m_global;
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t ch = 0; ch < c; ch++) {
        float mean = s->mean[ch], inv = s->invstd[ch];
        float gi = (gamma ? gamma[ch] : 1.0f) * inv;
        float k1 = (float)(buf[ch] / m), k2 = (float)(buf[c + ch] / m);
        for (int64_t b = 0; b < n; b++) {
            const float *xp = x->data + (b * c + ch) * hw, *g = dy + (b * c + ch) * hw;
            float *d = dx + (b * c + ch) * hw;
#pragma omp simd
            for (int64_t i = 0; i < hw; i++) d[i] += gi * (g[i] - k1 - (xp[i] - mean) * inv * k2);
        }
    }
}

const nn_op_impl nn_op_batch_norm_impl = {batch_norm_forward, batch_norm_backward};

nn_tensor *nn_batch_norm(nn_ctx *ctx, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, nn_tensor *running_mean,
                         nn_tensor *running_var, const nn_bn_params *p) {
    char sx[64];
    NN_ASSERT(x->ndim == 4 || x->ndim == 2, "batch_norm: x %s must be [N,C,H,W] or [N,C]", NN_SHAPE_STR(x, sx));
    int64_t c = x->shape[1];
    NN_ASSERT(!gamma || gamma->numel == c, "batch_norm: gamma must have %lld elements", (long long)c);
    NN_ASSERT(!beta || beta->numel == c, "batch_norm: beta must have %lld elements", (long long)c);
    NN_ASSERT((running_mean == NULL) == (running_var == NULL), "batch_norm: give both running statistics or neither");
    NN_ASSERT(!running_mean || (running_mean->numel == c && running_var->numel == c),
              "batch_norm: running statistics must have %lld elements", (long long)c);
    NN_ASSERT(ctx->training || running_mean, "batch_norm: evaluation mode needs running statistics");
    NN_ASSERT(p->eps > 0.0f, "batch_norm: eps must be > 0");
    nn_tensor *ins[3] = {x, NULL, NULL};
    int nin = 1;
    bn_p q = {p->eps, p->momentum, ctx->training, -1, -1, running_mean, running_var};
    if (gamma) {
        q.gi = nin;
        ins[nin++] = gamma;
    }
    if (beta) {
        q.bi = nin;
        ins[nin++] = beta;
    }
    nn_node *node = nn__node(ctx, NN_OP_BATCH_NORM, nin, ins);
    *NN_NODE_P(node, bn_p) = q;
    node->out = nn__tensor_like(ctx, x);
    nn__node_run(ctx, node);
    return node->out;
}
