/* Element-wise ops, reshape, dropout, drop-path and the full reductions (sum, mean). Masks are
 * drawn on the host from the ctx rng in the CPU op's order, so both backends drop the same
 * elements for the same seed. */
#include "nn/cuda/cuda_common.h"

#define IN(i) (node->ins[(i)])
#define OUT (node->out)

/* dst[0] += scale * sum_i f(i), summed in double on the device. */
template <typename F> static void add_sum(nn_ctx *ctx, float *dst, int64_t n, double scale, F f) {
    double *tmp = (double *)nn__dalloc(ctx, sizeof(double));
    nn__cu_rowsum(1, n, [=] __device__(int64_t, int64_t j) { return (double)f(j); }, tmp);
    nn__cu_for(1, [=] __device__(int64_t) { dst[0] += (float)(tmp[0] * scale); });
}

/* ---- unary -------------------------------------------------------------------------------- */
#define UNARY(name, FWD, BWD)                                                                     \
    static void name##_fwd(nn_ctx *ctx, nn_node *node) {                                         \
        (void)ctx;                                                                                \
        const float *x = IN(0)->data;                                                             \
        float *y = OUT->data;                                                                     \
        nn__cu_for(OUT->numel, [=] __device__(int64_t i) { float v = x[i]; y[i] = (FWD); });      \
    }                                                                                             \
    static void name##_bwd(nn_ctx *ctx, nn_node *node) {                                         \
        float *dx = nn__grad(ctx, IN(0));                                                         \
        if (!dx) return;                                                                          \
        const float *x = IN(0)->data, *y = OUT->data, *dy = OUT->grad;                            \
        nn__cu_for(OUT->numel, [=] __device__(int64_t i) {                                        \
            float v = x[i], yv = y[i], g = dy[i];                                                 \
            (void)v, (void)yv;                                                                    \
            dx[i] += (BWD);                                                                       \
        });                                                                                       \
    }

UNARY(relu, v > 0.0f ? v : 0.0f, yv > 0.0f ? g : 0.0f)
UNARY(sigmoid, v >= 0.0f ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v)), g * yv * (1.0f - yv))
UNARY(tanh, tanhf(v), g * (1.0f - yv * yv))
UNARY(exp, expf(v), g * yv)

static void scale_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    nn__cu_scale_p p = *NN_NODE_P(node, nn__cu_scale_p);
    const float *x = IN(0)->data;
    float *y = OUT->data;
    nn__cu_for(OUT->numel, [=] __device__(int64_t i) { y[i] = p.s * x[i] + p.c; });
}
static void scale_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    float s = NN_NODE_P(node, nn__cu_scale_p)->s;
    const float *dy = OUT->grad;
    nn__cu_for(OUT->numel, [=] __device__(int64_t i) { dx[i] += s * dy[i]; });
}

static void clamp_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    nn__cu_clamp_p p = *NN_NODE_P(node, nn__cu_clamp_p);
    const float *x = IN(0)->data;
    float *y = OUT->data;
    nn__cu_for(OUT->numel, [=] __device__(int64_t i) { y[i] = fminf(fmaxf(x[i], p.lo), p.hi); });
}
static void clamp_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    nn__cu_clamp_p p = *NN_NODE_P(node, nn__cu_clamp_p);
    const float *x = IN(0)->data, *dy = OUT->grad;
    nn__cu_for(OUT->numel, [=] __device__(int64_t i) {
        if (x[i] >= p.lo && x[i] <= p.hi) dx[i] += dy[i];
    });
}

/* ---- binary (b of a's shape or one element) --------------------------------------------------- */
#define BINARY(name, Y, DA, DB)                                                                   \
    static void name##_fwd(nn_ctx *ctx, nn_node *node) {                                         \
        (void)ctx;                                                                                \
        const float *a = IN(0)->data, *b = IN(1)->data;                                           \
        int64_t bs = IN(1)->numel == 1 ? 0 : 1;                                                   \
        float *y = OUT->data;                                                                     \
        nn__cu_for(OUT->numel, [=] __device__(int64_t i) {                                        \
            float av = a[i], bv = b[i * bs];                                                      \
            y[i] = (Y);                                                                           \
        });                                                                                       \
    }                                                                                             \
    static void name##_bwd(nn_ctx *ctx, nn_node *node) {                                         \
        const float *a = IN(0)->data, *b = IN(1)->data, *dy = OUT->grad;                          \
        float *da = nn__grad(ctx, IN(0)), *db = nn__grad(ctx, IN(1));                             \
        int64_t bs = IN(1)->numel == 1 ? 0 : 1, n = OUT->numel;                                   \
        if (da)                                                                                   \
            nn__cu_for(n, [=] __device__(int64_t i) {                                             \
                float av = a[i], bv = b[i * bs], g = dy[i];                                       \
                (void)av, (void)bv;                                                               \
                da[i] += (DA);                                                                    \
            });                                                                                   \
        if (db && bs)                                                                             \
            nn__cu_for(n, [=] __device__(int64_t i) {                                             \
                float av = a[i], bv = b[i], g = dy[i];                                            \
                (void)av, (void)bv;                                                               \
                db[i] += (DB);                                                                    \
            });                                                                                   \
        else if (db)                                                                              \
            add_sum(ctx, db, n, 1.0, [=] __device__(int64_t i) {                                  \
                float av = a[i], bv = b[0], g = dy[i];                                            \
                (void)av, (void)bv;                                                               \
                return (DB);                                                                      \
            });                                                                                   \
    }

BINARY(add, av + bv, g, g)
BINARY(sub, av - bv, g, -g)
BINARY(mul, av * bv, g * bv, g * av)
BINARY(minimum, av <= bv ? av : bv, av <= bv ? g : 0.0f, av <= bv ? 0.0f : g)

/* ---- reshape: a view; only the gradient moves ------------------------------------------------- */
static void reshape_fwd(nn_ctx *ctx, nn_node *node) { (void)ctx, (void)node; }
static void reshape_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (dx) nn__cu_add(dx, OUT->grad, OUT->numel);
}

/* ---- dropout and drop-path: host-drawn masks ------------------------------------------------- */
static void dropout_fwd(nn_ctx *ctx, nn_node *node) {
    float keep = 1.0f - NN_NODE_P(node, nn__cu_dropout_p)->p, scale = 1.0f / keep;
    int64_t n = IN(0)->numel;
    float *h = (float *)nn__alloc(ctx, (size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) h[i] = nd_rng_uniform(&ctx->rng) < keep ? scale : 0.0f;
    float *mask = (float *)nn__cu_upload(ctx, h, (size_t)n * sizeof(float));
    node->saved = mask;
    const float *x = IN(0)->data;
    float *y = OUT->data;
    nn__cu_for(n, [=] __device__(int64_t i) { y[i] = x[i] * mask[i]; });
}
static void dropout_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    const float *mask = (const float *)node->saved, *dy = OUT->grad;
    nn__cu_for(OUT->numel, [=] __device__(int64_t i) { dx[i] += dy[i] * mask[i]; });
}

static void drop_path_fwd(nn_ctx *ctx, nn_node *node) {
    float keep = NN_NODE_P(node, nn__cu_drop_path_p)->keep;
    int64_t n = IN(0)->shape[0], per = IN(0)->numel / n;
    float *h = (float *)nn__alloc(ctx, (size_t)n * sizeof(float));
    for (int64_t b = 0; b < n; b++) h[b] = nd_rng_uniform(&ctx->rng) < keep ? 1.0f / keep : 0.0f;
    float *f = (float *)nn__cu_upload(ctx, h, (size_t)n * sizeof(float));
    node->saved = f;
    const float *x = IN(0)->data;
    float *y = OUT->data;
    nn__cu_for(IN(0)->numel, [=] __device__(int64_t i) { y[i] = x[i] * f[i / per]; });
}
static void drop_path_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    int64_t per = OUT->numel / OUT->shape[0];
    const float *f = (const float *)node->saved, *dy = OUT->grad;
    nn__cu_for(OUT->numel, [=] __device__(int64_t i) { dx[i] += dy[i] * f[i / per]; });
}

/* ---- sum and mean of all elements ------------------------------------------------------------ */
static void reduce_fwd(nn_ctx *ctx, nn_node *node, double scale) {
    const float *x = IN(0)->data;
    float *y = OUT->data;
    ctx->backend->zero(y, sizeof(float));
    add_sum(ctx, y, IN(0)->numel, scale, [=] __device__(int64_t i) { return x[i]; });
}
static void reduce_bwd(nn_ctx *ctx, nn_node *node, float scale) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    const float *dy = OUT->grad;
    nn__cu_for(IN(0)->numel, [=] __device__(int64_t i) { dx[i] += dy[0] * scale; });
}
static void sum_fwd(nn_ctx *ctx, nn_node *node) { reduce_fwd(ctx, node, 1.0); }
static void sum_bwd(nn_ctx *ctx, nn_node *node) { reduce_bwd(ctx, node, 1.0f); }
static void mean_fwd(nn_ctx *ctx, nn_node *node) { reduce_fwd(ctx, node, 1.0 / (double)IN(0)->numel); }
static void mean_bwd(nn_ctx *ctx, nn_node *node) { reduce_bwd(ctx, node, 1.0f / (float)IN(0)->numel); }

void nn__cu_register_elementwise(nn_cu_op *ops) {
#define REG(E, n) ops[NN_OP_##E] = nn_cu_op{n##_fwd, n##_bwd}
    REG(RELU, relu);
    REG(SIGMOID, sigmoid);
    REG(TANH, tanh);
    REG(EXP, exp);
    REG(SCALE, scale);
    REG(CLAMP, clamp);
    REG(ADD, add);
    REG(SUB, sub);
    REG(MUL, mul);
    REG(MINIMUM, minimum);
    REG(RESHAPE, reshape);
    REG(DROPOUT, dropout);
    REG(DROP_PATH, drop_path);
    REG(SUM, sum);
    REG(MEAN, mean);
#undef REG
}
