/* Layout ops: concat, slice, pad, crop, permute. Forward gathers, backward scatters with += into
 * distinct elements (no atomics). */
#include "nn/cuda/cuda_common.h"

#define IN(i) (node->ins[(i)])
#define OUT (node->out)

static void concat_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    nn__cu_concat_p p = *NN_NODE_P(node, nn__cu_concat_p);
    int64_t ylen = OUT->shape[p.axis] * p.inner, off = 0;
    float *y = OUT->data;
    for (int i = 0; i < node->nin; i++) {
        int64_t len = IN(i)->shape[p.axis] * p.inner, o0 = off;
        const float *x = IN(i)->data;
        nn__cu_for(p.outer * len, [=] __device__(int64_t j) { y[(j / len) * ylen + o0 + j % len] = x[j]; });
        off += len;
    }
}
static void concat_bwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_concat_p p = *NN_NODE_P(node, nn__cu_concat_p);
    int64_t ylen = OUT->shape[p.axis] * p.inner, off = 0;
    const float *dy = OUT->grad;
    for (int i = 0; i < node->nin; i++) {
        int64_t len = IN(i)->shape[p.axis] * p.inner, o0 = off;
        float *dx = nn__grad(ctx, IN(i));
        if (dx) nn__cu_for(p.outer * len, [=] __device__(int64_t j) { dx[j] += dy[(j / len) * ylen + o0 + j % len]; });
        off += len;
    }
}

static void slice_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    nn__cu_slice_p p = *NN_NODE_P(node, nn__cu_slice_p);
    int64_t xlen = IN(0)->shape[p.axis] * p.inner, ylen = p.len * p.inner, st = p.start * p.inner;
    const float *x = IN(0)->data;
    float *y = OUT->data;
    nn__cu_for(OUT->numel, [=] __device__(int64_t j) { y[j] = x[(j / ylen) * xlen + st + j % ylen]; });
}
static void slice_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    nn__cu_slice_p p = *NN_NODE_P(node, nn__cu_slice_p);
    int64_t xlen = IN(0)->shape[p.axis] * p.inner, ylen = p.len * p.inner, st = p.start * p.inner;
    const float *dy = OUT->grad;
    nn__cu_for(OUT->numel, [=] __device__(int64_t j) { dx[(j / ylen) * xlen + st + j % ylen] += dy[j]; });
}

static void pad_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    nn__cu_pad_p p = *NN_NODE_P(node, nn__cu_pad_p);
    int64_t h = NN_H(IN(0)), w = NN_W(IN(0)), oh = NN_H(OUT), ow = NN_W(OUT);
    const float *x = IN(0)->data;
    float *y = OUT->data;
    nn__cu_for(OUT->numel, [=] __device__(int64_t j) {
        int64_t c = j % ow, r = (j / ow) % oh, nc = j / (ow * oh);
        int64_t ih = r - p.t, iw = c - p.l;
        y[j] = (ih >= 0 && ih < h && iw >= 0 && iw < w) ? x[(nc * h + ih) * w + iw] : p.value;
    });
}
static void pad_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    nn__cu_pad_p p = *NN_NODE_P(node, nn__cu_pad_p);
    int64_t h = NN_H(IN(0)), w = NN_W(IN(0)), oh = NN_H(OUT), ow = NN_W(OUT);
    const float *dy = OUT->grad;
    nn__cu_for(IN(0)->numel, [=] __device__(int64_t j) {
        int64_t c = j % w, r = (j / w) % h, nc = j / (w * h);
        dx[j] += dy[(nc * oh + r + p.t) * ow + c + p.l];
    });
}

static void crop_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    nn__cu_crop_p p = *NN_NODE_P(node, nn__cu_crop_p);
    int64_t h = NN_H(IN(0)), w = NN_W(IN(0)), oh = NN_H(OUT), ow = NN_W(OUT);
    const float *x = IN(0)->data;
    float *y = OUT->data;
    nn__cu_for(OUT->numel, [=] __device__(int64_t j) {
        int64_t c = j % ow, r = (j / ow) % oh, nc = j / (ow * oh);
        y[j] = x[(nc * h + r + p.top) * w + c + p.left];
    });
}
static void crop_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    nn__cu_crop_p p = *NN_NODE_P(node, nn__cu_crop_p);
    int64_t h = NN_H(IN(0)), w = NN_W(IN(0)), oh = NN_H(OUT), ow = NN_W(OUT);
    const float *dy = OUT->grad;
    nn__cu_for(OUT->numel, [=] __device__(int64_t j) {
        int64_t c = j % ow, r = (j / ow) % oh, nc = j / (ow * oh);
        dx[(nc * h + r + p.top) * w + c + p.left] += dy[j];
    });
}

/* Output index -> input offset: out dims in order, each stepping x by the stride of x's dim perm[d]. */
struct perm_geom {
    int64_t od[NN_MAX_DIMS], s[NN_MAX_DIMS];
};
static perm_geom permute_geom(nn_node *node) {
    nn__cu_permute_p p = *NN_NODE_P(node, nn__cu_permute_p);
    perm_geom g;
    int64_t xs[NN_MAX_DIMS];
    xs[NN_MAX_DIMS - 1] = 1;
    for (int d = NN_MAX_DIMS - 2; d >= 0; d--) xs[d] = xs[d + 1] * IN(0)->shape[d + 1];
    for (int d = 0; d < NN_MAX_DIMS; d++) {
        g.s[d] = xs[p.perm[d]];
        g.od[d] = OUT->shape[d];
    }
    return g;
}
static __device__ inline int64_t perm_src(const perm_geom &g, int64_t k) {
    int64_t d3 = k % g.od[3], d2 = (k / g.od[3]) % g.od[2], d1 = (k / (g.od[3] * g.od[2])) % g.od[1],
            d0 = k / (g.od[3] * g.od[2] * g.od[1]);
    return d0 * g.s[0] + d1 * g.s[1] + d2 * g.s[2] + d3 * g.s[3];
}
static void permute_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    perm_geom g = permute_geom(node);
    const float *x = IN(0)->data;
    float *y = OUT->data;
    nn__cu_for(OUT->numel, [=] __device__(int64_t k) { y[k] = x[perm_src(g, k)]; });
}
static void permute_bwd(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, IN(0));
    if (!dx) return;
    perm_geom g = permute_geom(node);
    const float *dy = OUT->grad;
    nn__cu_for(OUT->numel, [=] __device__(int64_t k) { dx[perm_src(g, k)] += dy[k]; });
}

void nn__cu_register_shape(nn_cu_op *ops) {
#define REG(E, n) ops[NN_OP_##E] = nn_cu_op{n##_fwd, n##_bwd}
    REG(CONCAT, concat);
    REG(SLICE, slice);
    REG(PAD, pad);
    REG(CROP, crop);
    REG(PERMUTE, permute);
#undef REG
}
