/* roi_align with torchvision's semantics (torchvision/csrc/ops/cpu/roi_align_kernel.cpp is the
 * definition followed): bins of size roi/out, sampling_ratio samples per bin side (adaptive:
 * ceil(roi_size / out_size)), bilinear samples averaged; `aligned` shifts coordinates by half a
 * pixel; without it rois are at least 1x1. Samples beyond one pixel outside the map are 0. */
#include <math.h>

#include "nn/nn_impl.h"

typedef struct roi_align_p {
    int32_t out_h, out_w, sampling, aligned;
    float scale;
    int64_t k;
} roi_align_p;

/* The four neighbours and weights of (y, x) in an h x w map, as torchvision's
 * bilinear_interpolate; returns 0 when the sample is empty. */
static int bilinear(int64_t h, int64_t w, float y, float x, int64_t idx[4], float wt[4]) {
    if (y < -1.0f || y > (float)h || x < -1.0f || x > (float)w) return 0;
    if (y <= 0.0f) y = 0.0f;
    if (x <= 0.0f) x = 0.0f;
    int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
    if (y0 >= h - 1) {
        y1 = y0 = h - 1;
        y = (float)y0;
    } else {
        y1 = y0 + 1;
    }
    if (x0 >= w - 1) {
        x1 = x0 = w - 1;
        x = (float)x0;
    } else {
        x1 = x0 + 1;
    }
    float ly = y - (float)y0, lx = x - (float)x0, hy = 1.0f - ly, hx = 1.0f - lx;
    idx[0] = y0 * w + x0; idx[1] = y0 * w + x1; idx[2] = y1 * w + x0; idx[3] = y1 * w + x1;
    wt[0] = hy * hx; wt[1] = hy * lx; wt[2] = ly * hx; wt[3] = ly * lx;
    return 1;
}

typedef struct roi_geom {
    int64_t b;
    float y0, x0, bin_h, bin_w;
    int64_t grid_h, grid_w;
    float count;
} roi_geom;

static roi_geom roi_geometry(const roi_align_p *p, const float *roi) {
    roi_geom g;
    float off = p->aligned ? 0.5f : 0.0f;
    g.b = (int64_t)roi[0];
    g.x0 = roi[1] * p->scale - off;
    g.y0 = roi[2] * p->scale - off;
    float rw = roi[3] * p->scale - off - g.x0, rh = roi[4] * p->scale - off - g.y0;
    if (!p->aligned) {
        rw = rw > 1.0f ? rw : 1.0f;
        rh = rh > 1.0f ? rh : 1.0f;
    }
    g.bin_h = rh / (float)p->out_h;
    g.bin_w = rw / (float)p->out_w;
    g.grid_h = p->sampling > 0 ? p->sampling : (int64_t)ceilf(rh / (float)p->out_h);
    g.grid_w = p->sampling > 0 ? p->sampling : (int64_t)ceilf(rw / (float)p->out_w);
    int64_t cnt = g.grid_h * g.grid_w;
    g.count = (float)(cnt > 1 ? cnt : 1);
    return g;
}

/* x [N,C,H,W], rois [K,5] -> y [K,C,OH,OW] */
static void roi_align_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const roi_align_p *p = NN_NODE_P(node, roi_align_p);
    const float *rois = node->saved;
    const nn_tensor *x = node->ins[0];
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x);
#pragma omp parallel for schedule(static) if (p->k * c * p->out_h * p->out_w > NN_PAR_MIN / 8)
    for (int64_t kc = 0; kc < p->k * c; kc++) {
        int64_t k = kc / c, ch = kc % c;
        roi_geom g = roi_geometry(p, rois + k * 5);
        const float *xp = x->data + (g.b * c + ch) * h * w;
        float *yp = node->out->data + kc * p->out_h * p->out_w;
        for (int64_t ph = 0; ph < p->out_h; ph++)
            for (int64_t pw = 0; pw < p->out_w; pw++) {
                float acc = 0.0f;
                for (int64_t iy = 0; iy < g.grid_h; iy++) {
                    float y = g.y0 + (float)ph * g.bin_h + ((float)iy + 0.5f) * g.bin_h / (float)g.grid_h;
                    for (int64_t ix = 0; ix < g.grid_w; ix++) {
                        float xx = g.x0 + (float)pw * g.bin_w + ((float)ix + 0.5f) * g.bin_w / (float)g.grid_w;
                        int64_t idx[4];
                        float wt[4];
                        if (!bilinear(h, w, y, xx, idx, wt)) continue;
                        acc += wt[0] * xp[idx[0]] + wt[1] * xp[idx[1]] + wt[2] * xp[idx[2]] + wt[3] * xp[idx[3]];
                    }
                }
                yp[ph * p->out_w + pw] = acc / g.count;
            }
    }
}

/* dy [K,C,OH,OW] -> dx [N,C,H,W] (+=). One thread per channel; rois in order. */
static void roi_align_backward(nn_ctx *ctx, nn_node *node) {
    const roi_align_p *p = NN_NODE_P(node, roi_align_p);
    const float *rois = node->saved;
    nn_tensor *x = node->ins[0];
    float *dx = nn__grad(ctx, x);
    if (!dx) return;
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x);
#pragma omp parallel for schedule(static) if (p->k * c * p->out_h * p->out_w > NN_PAR_MIN / 8)
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t k = 0; k < p->k; k++) {
            roi_geom g = roi_geometry(p, rois + k * 5);
            float *dp = dx + (g.b * c + ch) * h * w;
            const float *gp = node->out->grad + (k * c + ch) * p->out_h * p->out_w;
            for (int64_t ph = 0; ph < p->out_h; ph++)
                for (int64_t pw = 0; pw < p->out_w; pw++) {
                    float gv = gp[ph * p->out_w + pw] / g.count;
                    for (int64_t iy = 0; iy < g.grid_h; iy++) {
                        float y = g.y0 + (float)ph * g.bin_h + ((float)iy + 0.5f) * g.bin_h / (float)g.grid_h;
                        for (int64_t ix = 0; ix < g.grid_w; ix++) {
                            float xx = g.x0 + (float)pw * g.bin_w + ((float)ix + 0.5f) * g.bin_w / (float)g.grid_w;
                            int64_t idx[4];
                            float wt[4];
                            if (!bilinear(h, w, y, xx, idx, wt)) continue;
                            for (int q = 0; q < 4; q++) dp[idx[q]] += gv * wt[q];
                        }
                    }
                }
        }
}

const nn_op_impl nn_op_roi_align_impl = {roi_align_forward, roi_align_backward};

nn_tensor *nn_roi_align(nn_ctx *ctx, nn_tensor *x, const float *rois, int64_t k, int32_t out_h, int32_t out_w,
                        float spatial_scale, int32_t sampling_ratio, int aligned) {
    char sx[64];
    NN_ASSERT(x->ndim == 4, "roi_align: x %s must be [N,C,H,W]", NN_SHAPE_STR(x, sx));
    NN_ASSERT(k >= 1 && out_h >= 1 && out_w >= 1, "roi_align: need k >= 1 rois and an output of at least 1x1");
    nn_node *node = nn__node(ctx, NN_OP_ROI_ALIGN, 1, &x);
    float *copy = node->saved = nn__alloc(ctx, (size_t)(k * 5) * sizeof(float));
    for (int64_t i = 0; i < k * 5; i++) {
        NN_ASSERT(isfinite(rois[i]) && fabsf(rois[i]) < 1e7f, "roi_align: roi %lld has a non-finite or absurd coordinate", (long long)(i / 5));
        copy[i] = rois[i];
    }
    for (int64_t i = 0; i < k; i++)
        NN_ASSERT(rois[i * 5] >= 0.0f && (int64_t)rois[i * 5] < NN_N(x), "roi_align: roi %lld batch index %g outside [0,%lld)",
                  (long long)i, (double)rois[i * 5], (long long)NN_N(x));
    roi_align_p *p = NN_NODE_P(node, roi_align_p);
    p->out_h = out_h;
    p->out_w = out_w;
    p->sampling = sampling_ratio;
    p->aligned = aligned != 0;
    p->scale = spatial_scale;
    p->k = k;
    node->out = nn__tensor(ctx, 4, NN_SHAPE(k, NN_C(x), out_h, out_w));
    nn__node_run(ctx, node);
    return node->out;
}
