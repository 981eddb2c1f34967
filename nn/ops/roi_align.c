/* roi_align with torchvision's semantics (torchvision/csrc/ops/cpu/roi_align_kernel.cpp is the
 * definition followed): bins of size roi/out, sampling_ratio samples per bin side (adaptive:
 * ceil(roi_size / out_size)), bilinear samples averaged; `aligned` shifts coordinates by half a
 * pixel; without it rois are at least 1x1. Samples beyond one pixel outside the map are 0. */
#include <math.h>
#include <stdlib.h>

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

/* The bilinear taps of one roi, computed once and used for all its channels (as
 * torchvision's pre_calc): for each output bin, the pixels its samples read, merged by pixel
 * (the samples of a bin narrower than a pixel share their neighbours, so a bin reads 4 to 16
 * distinct pixels), each with its weight already divided by the sample count. */
typedef struct roi_tap {
    int32_t idx;
    float w;
} roi_tap;

static int64_t roi_tap_capacity(const roi_align_p *p, const roi_geom *g) {
    return (int64_t)p->out_h * p->out_w * g->grid_h * g->grid_w * 4;
}

/* taps of bin b are taps[first[b] .. first[b + 1]); first has out_h * out_w + 1 entries */
static void roi_taps(const roi_align_p *p, const roi_geom *g, int64_t h, int64_t w, roi_tap *taps,
                     int64_t *first) {
    int64_t n = 0, b = 0;
    for (int64_t ph = 0; ph < p->out_h; ph++)
        for (int64_t pw = 0; pw < p->out_w; pw++, b++) {
            first[b] = n;
            for (int64_t iy = 0; iy < g->grid_h; iy++) {
                float y = g->y0 + (float)ph * g->bin_h + ((float)iy + 0.5f) * g->bin_h / (float)g->grid_h;
                for (int64_t ix = 0; ix < g->grid_w; ix++) {
                    float xx = g->x0 + (float)pw * g->bin_w + ((float)ix + 0.5f) * g->bin_w / (float)g->grid_w;
                    int64_t idx[4];
                    float wt[4];
                    if (!bilinear(h, w, y, xx, idx, wt)) continue;
                    for (int q = 0; q < 4; q++) {
                        int64_t t = first[b];
                        while (t < n && taps[t].idx != (int32_t)idx[q]) t++;
                        if (t == n) taps[n].idx = (int32_t)idx[q], taps[n++].w = 0.0f;
                        taps[t].w += wt[q];
                    }
                }
            }
            for (int64_t t = first[b]; t < n; t++) taps[t].w /= g->count;
        }
    first[b] = n;
}

/* x [N,C,H,W], rois [K,5] -> y [K,C,OH,OW]. One thread per roi: its taps, then every channel. */
static void roi_align_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const roi_align_p *p = NN_NODE_P(node, roi_align_p);
    const float *rois = node->saved;
    const nn_tensor *x = node->ins[0];
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x), nb = (int64_t)p->out_h * p->out_w;
#pragma omp parallel for schedule(dynamic, 4) if (p->k * c * nb > NN_PAR_MIN / 8)
    for (int64_t k = 0; k < p->k; k++) {
        roi_geom g = roi_geometry(p, rois + k * 5);
        roi_tap *taps = malloc((size_t)roi_tap_capacity(p, &g) * sizeof *taps + 1);
        int64_t *first = malloc((size_t)(nb + 1) * sizeof *first);
        NN_ASSERT(taps && first, "roi_align: out of memory for the taps of roi %lld", (long long)k);
        roi_taps(p, &g, h, w, taps, first);
        /* eight channels at a time: eight independent sums per tap keep the FPU busy */
        int64_t ch = 0, hw = h * w;
        for (; ch + 8 <= c; ch += 8) {
            const float *xp = x->data + (g.b * c + ch) * hw;
            float *yp = node->out->data + (k * c + ch) * nb;
            for (int64_t b = 0; b < nb; b++) {
                float acc[8] = {0};
                for (int64_t t = first[b]; t < first[b + 1]; t++) {
                    const float *xq = xp + taps[t].idx;
                    float wt = taps[t].w;
                    for (int j = 0; j < 8; j++) acc[j] += wt * xq[j * hw];
                }
                for (int j = 0; j < 8; j++) yp[j * nb + b] = acc[j];
            }
        }
        for (; ch < c; ch++) {
            const float *xp = x->data + (g.b * c + ch) * hw;
            float *yp = node->out->data + (k * c + ch) * nb;
            for (int64_t b = 0; b < nb; b++) {
                float acc = 0.0f;
                for (int64_t t = first[b]; t < first[b + 1]; t++) acc += taps[t].w * xp[taps[t].idx];
                yp[b] = acc;
            }
        }
        free(taps);
        free(first);
    }
}

/* dy [K,C,OH,OW] -> dx [N,C,H,W] (+=). The taps of all rois first (one thread per roi), then
 * one thread per channel scattering the rois in order (deterministic, no two threads write the
 * same pixel). */
static void roi_align_backward(nn_ctx *ctx, nn_node *node) {
    const roi_align_p *p = NN_NODE_P(node, roi_align_p);
    const float *rois = node->saved;
    nn_tensor *x = node->ins[0];
    float *dx = nn__grad(ctx, x);
    if (!dx) return;
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x), nb = (int64_t)p->out_h * p->out_w;
    int64_t *start = malloc((size_t)(p->k + 1) * sizeof *start), *bimg = malloc((size_t)p->k * sizeof *bimg);
    NN_ASSERT(start && bimg, "roi_align: out of memory");
    start[0] = 0;
    for (int64_t k = 0; k < p->k; k++) {
        roi_geom g = roi_geometry(p, rois + k * 5);
        start[k + 1] = start[k] + roi_tap_capacity(p, &g);
        bimg[k] = g.b;
    }
    roi_tap *taps = malloc((size_t)start[p->k] * sizeof *taps + 1);
    int64_t *first = malloc((size_t)(p->k * (nb + 1)) * sizeof *first);
    NN_ASSERT(taps && first, "roi_align: out of memory for the taps of %lld rois", (long long)p->k);
#pragma omp parallel for schedule(dynamic, 4) if (p->k * c * nb > NN_PAR_MIN / 8)
    for (int64_t k = 0; k < p->k; k++) {
        roi_geom g = roi_geometry(p, rois + k * 5);
        roi_taps(p, &g, h, w, taps + start[k], first + k * (nb + 1));
    }
#pragma omp parallel for schedule(static) if (p->k * c * nb > NN_PAR_MIN / 8)
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t k = 0; k < p->k; k++) {
            float *dp = dx + (bimg[k] * c + ch) * h * w;
            const float *gp = node->out->grad + (k * c + ch) * nb;
            const roi_tap *tk = taps + start[k];
            const int64_t *fk = first + k * (nb + 1);
            for (int64_t b = 0; b < nb; b++) {
                float gv = gp[b];
                for (int64_t t = fk[b]; t < fk[b + 1]; t++) dp[tk[t].idx] += gv * tk[t].w;
            }
        }
    free(taps);
    free(first);
    free(start);
    free(bimg);
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
