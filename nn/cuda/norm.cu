/* Normalisations on the GPU. batch_norm: per-channel sums over N,H,W as one block per channel (in
 * double, two passes as on the CPU), then element-wise normalisation. layer_norm and
 * instance_norm (nn/ops/norm_groups.c): the same over contiguous groups (one per example, or per
 * example and channel) with a per-channel affine. */
#include "nn/cuda/cuda_common.h"

struct bn_saved {
    float *mean, *invstd; /* device [C] */
    double m_global;      /* > 0: synchronised across replicas, over m_global elements */
};

/* Synchronised batch norm (nn_set_batch_norm_sync): the replica sum is host code (MPI), so the
 * per-channel sums go through host memory: dev[0..n) (device doubles) becomes its sum over the
 * replicas. With count >= 0 the element count rides along as one more value (the same buffers,
 * in the same order, as the CPU kernel's, so replicas on either device agree); its global value
 * is returned. */
static double replica_sum(nn_ctx *ctx, double *dev, int64_t n, double count, nn_replica_sum_fn sum, void *user) {
    double *h = (double *)nn__alloc(ctx, (size_t)(n + 1) * sizeof(double));
    nn_backend_cuda.download(h, dev, (size_t)n * sizeof(double));
    h[n] = count;
    sum(h, count >= 0 ? n + 1 : n, user);
    nn_backend_cuda.upload(dev, h, (size_t)n * sizeof(double));
    return h[n];
}

static void dims(const nn_tensor *x, int64_t *n, int64_t *c, int64_t *hw) {
    *n = x->shape[0];
    *c = x->shape[1];
    *hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
}

static void batch_norm_fwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_bn_p p = *NN_NODE_P(node, nn__cu_bn_p);
    const nn_tensor *x = node->ins[0];
    int64_t n, c, hw;
    dims(x, &n, &c, &hw);
    NN_ASSERT(!p.rmean || ((p.rmean->flags & NN_TENSOR_DEVICE) && (p.rvar->flags & NN_TENSOR_DEVICE)),
              "batch_norm: running statistics %s are in host memory: move the parameters with nn_params_to_device",
              p.rmean->name ? p.rmean->name : "");
    const float *gamma = p.gi >= 0 ? node->ins[p.gi]->data : NULL, *beta = p.bi >= 0 ? node->ins[p.bi]->data : NULL;
    bn_saved *s = (bn_saved *)nn__alloc(ctx, sizeof *s);
    node->saved = s;
    float *mean = s->mean = (float *)nn__dalloc(ctx, (size_t)c * sizeof(float));
    float *inv = s->invstd = (float *)nn__dalloc(ctx, (size_t)c * sizeof(float));
    float *scale = (float *)nn__dalloc(ctx, (size_t)c * sizeof(float)), *shift = (float *)nn__dalloc(ctx, (size_t)c * sizeof(float));
    const float *xd = x->data;
    float *rm = p.rmean ? p.rmean->data : NULL, *rv = p.rvar ? p.rvar->data : NULL;
    int64_t m = n * hw;
    float eps = p.eps;
    double mom = p.momentum;
    s->m_global = 0;
    if (p.training) {
        void *su = NULL;
        nn_replica_sum_fn sync = nn__batch_norm_sync(&su);
        double mg = (double)m; /* the elements behind the statistics: this replica's or the global batch's */
        double *sum = (double *)nn__dalloc(ctx, (size_t)c * sizeof(double));
        double *sq = (double *)nn__dalloc(ctx, (size_t)c * sizeof(double));
        nn__cu_rowsum(c, m, [=] __device__(int64_t ch, int64_t j) { return xd[((j / hw) * c + ch) * hw + j % hw]; }, sum);
        if (sync) s->m_global = mg = replica_sum(ctx, sum, c, mg, sync, su);
        nn__cu_for(c, [=] __device__(int64_t ch) { mean[ch] = (float)(sum[ch] / mg); });
        nn__cu_rowsum(c, m, [=] __device__(int64_t ch, int64_t j) {
            float d = xd[((j / hw) * c + ch) * hw + j % hw] - mean[ch];
            return d * d;
        }, sq);
        if (sync) replica_sum(ctx, sq, c, -1.0, sync, su);
        nn__cu_for(c, [=] __device__(int64_t ch) {
            double mu = sum[ch] / mg, var = sq[ch] / mg;
            if (rm) {
                double unbiased = mg > 1 ? sq[ch] / (mg - 1.0) : var;
                rm[ch] = (float)((1.0 - mom) * rm[ch] + mom * mu);
                rv[ch] = (float)((1.0 - mom) * rv[ch] + mom * unbiased);
            }
            float iv = (float)(1.0 / sqrt(var + eps));
            inv[ch] = iv;
            float sc = iv * (gamma ? gamma[ch] : 1.0f);
            scale[ch] = sc;
            shift[ch] = (beta ? beta[ch] : 0.0f) - mean[ch] * sc;
        });
    } else {
        nn__cu_for(c, [=] __device__(int64_t ch) {
            mean[ch] = rm[ch];
            float iv = (float)(1.0 / sqrt((double)rv[ch] + eps));
            inv[ch] = iv;
            float sc = iv * (gamma ? gamma[ch] : 1.0f);
            scale[ch] = sc;
            shift[ch] = (beta ? beta[ch] : 0.0f) - rm[ch] * sc;
        });
    }
    float *y = node->out->data;
    nn__cu_for(x->numel, [=] __device__(int64_t e) {
        int64_t ch = (e / hw) % c;
        y[e] = xd[e] * scale[ch] + shift[ch];
    });
}

static void batch_norm_bwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_bn_p p = *NN_NODE_P(node, nn__cu_bn_p);
    const bn_saved *s = (const bn_saved *)node->saved;
    nn_tensor *x = node->ins[0];
    int64_t n, c, hw;
    dims(x, &n, &c, &hw);
    const float *gamma = p.gi >= 0 ? node->ins[p.gi]->data : NULL;
    float *dx = nn__grad(ctx, x);
    float *dg = p.gi >= 0 ? nn__grad(ctx, node->ins[p.gi]) : NULL;
    float *dbeta = p.bi >= 0 ? nn__grad(ctx, node->ins[p.bi]) : NULL;
    const float *dy = node->out->grad, *xd = x->data, *mean = s->mean, *inv = s->invstd;
    int64_t m = n * hw;
    double *sdy = (double *)nn__dalloc(ctx, (size_t)c * sizeof(double));
    double *sdyx = (double *)nn__dalloc(ctx, (size_t)c * sizeof(double));
    nn__cu_rowsum(c, m, [=] __device__(int64_t ch, int64_t j) { return dy[((j / hw) * c + ch) * hw + j % hw]; }, sdy);
    nn__cu_rowsum(c, m, [=] __device__(int64_t ch, int64_t j) {
        int64_t e = ((j / hw) * c + ch) * hw + j % hw;
        return dy[e] * (xd[e] - mean[ch]);
    }, sdyx);
    float *k1 = (float *)nn__dalloc(ctx, (size_t)c * sizeof(float)), *k2 = (float *)nn__dalloc(ctx, (size_t)c * sizeof(float));
    if (s->m_global > 0) {
        /* Synchronised (as the CPU kernel): dgamma and dbeta get this replica's share (averaged
         * later with every other gradient); dx uses the sums over all replicas. */
        nn__cu_for(c, [=] __device__(int64_t ch) {
            double sx = sdyx[ch] * inv[ch]; /* sum dy * xhat */
            if (dg) dg[ch] += (float)sx;
            if (dbeta) dbeta[ch] += (float)sdy[ch];
            sdyx[ch] = sx;
        });
        if (!dx) return; /* every replica makes the same choice: the graphs are the same */
        void *su = NULL;
        nn_replica_sum_fn sync = nn__batch_norm_sync(&su);
        NN_ASSERT(sync != NULL, "batch_norm: synchronised forward, but the replica sum was switched off before backward");
        double *both = (double *)nn__dalloc(ctx, (size_t)(2 * c) * sizeof(double));
        NN_CU(cudaMemcpyAsync(both, sdy, (size_t)c * sizeof(double), cudaMemcpyDeviceToDevice, nn__cu_stream()));
        NN_CU(cudaMemcpyAsync(both + c, sdyx, (size_t)c * sizeof(double), cudaMemcpyDeviceToDevice, nn__cu_stream()));
        replica_sum(ctx, both, 2 * c, -1.0, sync, su);
        double mg = s->m_global;
        nn__cu_for(c, [=] __device__(int64_t ch) {
            k1[ch] = (float)(both[ch] / mg);
            k2[ch] = (float)(both[c + ch] / mg);
        });
    } else {
        nn__cu_for(c, [=] __device__(int64_t ch) {
            double sx = sdyx[ch] * inv[ch]; /* sum dy * xhat */
            if (dg) dg[ch] += (float)sx;
            if (dbeta) dbeta[ch] += (float)sdy[ch];
            k1[ch] = (float)(sdy[ch] / (double)m);
            k2[ch] = (float)(sx / (double)m);
        });
    }
    if (!dx) return;
    int training = p.training;
    nn__cu_for(x->numel, [=] __device__(int64_t e) {
        int64_t ch = (e / hw) % c;
        float gi = (gamma ? gamma[ch] : 1.0f) * inv[ch];
        if (training)
            dx[e] += gi * (dy[e] - k1[ch] - (xd[e] - mean[ch]) * inv[ch] * k2[ch]);
        else
            dx[e] += gi * dy[e];
    });
}

/* ---- group normalisation: x [G, M] as groups of M elements, element e of channel (e / hw) % c --- */
struct group_geom {
    int64_t groups, m, c, hw;
};
static group_geom layer_norm_geom(const nn_tensor *x) {
    group_geom g = {x->shape[0], x->numel / x->shape[0], x->shape[1], x->ndim == 4 ? x->shape[2] * x->shape[3] : 1};
    return g;
}
static group_geom instance_norm_geom(const nn_tensor *x) {
    int64_t hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
    group_geom g = {x->shape[0] * x->shape[1], x->shape[2] * x->shape[3], x->shape[1], hw};
    return g;
}

static void groups_fwd(nn_ctx *ctx, nn_node *node, group_geom g) {
    nn__cu_group_norm_p p = *NN_NODE_P(node, nn__cu_group_norm_p);
    const float *gamma = p.gi >= 0 ? node->ins[p.gi]->data : NULL, *beta = p.bi >= 0 ? node->ins[p.bi]->data : NULL;
    const float *x = node->ins[0]->data;
    float *y = node->out->data;
    bn_saved *s = (bn_saved *)nn__alloc(ctx, sizeof *s);
    node->saved = s;
    float *mean = s->mean = (float *)nn__dalloc(ctx, (size_t)g.groups * sizeof(float));
    float *inv = s->invstd = (float *)nn__dalloc(ctx, (size_t)g.groups * sizeof(float));
    double *sum = (double *)nn__dalloc(ctx, (size_t)g.groups * sizeof(double));
    double *sq = (double *)nn__dalloc(ctx, (size_t)g.groups * sizeof(double));
    int64_t m = g.m, c = g.c, hw = g.hw;
    float eps = p.eps;
    nn__cu_rowsum(g.groups, m, [=] __device__(int64_t gi, int64_t i) { return x[gi * m + i]; }, sum);
    nn__cu_rowsum(g.groups, m, [=] __device__(int64_t gi, int64_t i) {
        double d = (double)x[gi * m + i] - sum[gi] / (double)m;
        return d * d;
    }, sq);
    nn__cu_for(g.groups, [=] __device__(int64_t gi) {
        mean[gi] = (float)(sum[gi] / (double)m);
        inv[gi] = (float)(1.0 / sqrt(sq[gi] / (double)m + eps));
    });
    nn__cu_for(g.groups * m, [=] __device__(int64_t e) {
        int64_t gi = e / m, ch = (e / hw) % c;
        float v = (x[e] - mean[gi]) * inv[gi];
        y[e] = v * (gamma ? gamma[ch] : 1.0f) + (beta ? beta[ch] : 0.0f);
    });
}

static void groups_bwd(nn_ctx *ctx, nn_node *node, group_geom g) {
    nn__cu_group_norm_p p = *NN_NODE_P(node, nn__cu_group_norm_p);
    const bn_saved *s = (const bn_saved *)node->saved;
    const float *gamma = p.gi >= 0 ? node->ins[p.gi]->data : NULL;
    const float *x = node->ins[0]->data, *dy = node->out->grad, *mean = s->mean, *inv = s->invstd;
    float *dx = nn__grad(ctx, node->ins[0]);
    float *dg = p.gi >= 0 ? nn__grad(ctx, node->ins[p.gi]) : NULL, *db = p.bi >= 0 ? nn__grad(ctx, node->ins[p.bi]) : NULL;
    int64_t m = g.m, c = g.c, hw = g.hw;
    if (dx) {
        double *s1 = (double *)nn__dalloc(ctx, (size_t)g.groups * sizeof(double));
        double *s2 = (double *)nn__dalloc(ctx, (size_t)g.groups * sizeof(double));
        nn__cu_rowsum(g.groups, m, [=] __device__(int64_t gi, int64_t i) {
            int64_t e = gi * m + i;
            return (double)dy[e] * (gamma ? gamma[(e / hw) % c] : 1.0f);
        }, s1);
        nn__cu_rowsum(g.groups, m, [=] __device__(int64_t gi, int64_t i) {
            int64_t e = gi * m + i;
            return (double)dy[e] * (gamma ? gamma[(e / hw) % c] : 1.0f) * (x[e] - mean[gi]) * inv[gi];
        }, s2);
        nn__cu_for(g.groups * m, [=] __device__(int64_t e) {
            int64_t gi = e / m;
            float dxh = dy[e] * (gamma ? gamma[(e / hw) % c] : 1.0f);
            float k1 = (float)(s1[gi] / (double)m), k2 = (float)(s2[gi] / (double)m);
            dx[e] += inv[gi] * (dxh - k1 - (x[e] - mean[gi]) * inv[gi] * k2);
        });
    }
    if (dg || db) {
        /* per channel over the elements e = (q * c + ch) * hw + r */
        int64_t per = g.groups * m / (c * hw) * hw;
        double *sg = (double *)nn__dalloc(ctx, (size_t)c * sizeof(double));
        double *sb = (double *)nn__dalloc(ctx, (size_t)c * sizeof(double));
        nn__cu_rowsum(c, per, [=] __device__(int64_t ch, int64_t j) {
            int64_t e = ((j / hw) * c + ch) * hw + j % hw, gi = e / m;
            return dy[e] * (x[e] - mean[gi]) * inv[gi];
        }, sg);
        nn__cu_rowsum(c, per, [=] __device__(int64_t ch, int64_t j) { return dy[((j / hw) * c + ch) * hw + j % hw]; }, sb);
        nn__cu_for(c, [=] __device__(int64_t ch) {
            if (dg) dg[ch] += (float)sg[ch];
            if (db) db[ch] += (float)sb[ch];
        });
    }
}

static void layer_norm_fwd(nn_ctx *ctx, nn_node *node) { groups_fwd(ctx, node, layer_norm_geom(node->ins[0])); }
static void layer_norm_bwd(nn_ctx *ctx, nn_node *node) { groups_bwd(ctx, node, layer_norm_geom(node->ins[0])); }
static void instance_norm_fwd(nn_ctx *ctx, nn_node *node) { groups_fwd(ctx, node, instance_norm_geom(node->ins[0])); }
static void instance_norm_bwd(nn_ctx *ctx, nn_node *node) { groups_bwd(ctx, node, instance_norm_geom(node->ins[0])); }

void nn__cu_register_norm(nn_cu_op *ops) {
    ops[NN_OP_BATCH_NORM] = nn_cu_op{batch_norm_fwd, batch_norm_bwd};
    ops[NN_OP_LAYER_NORM] = nn_cu_op{layer_norm_fwd, layer_norm_bwd};
    ops[NN_OP_INSTANCE_NORM] = nn_cu_op{instance_norm_fwd, instance_norm_bwd};
}
