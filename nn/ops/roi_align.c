/* roi_align with torchvision's semantics (torchvision/csrc/ops/cpu/roi_align_kernel.cpp is the
 * definition followed): bins of size roi/out, sampling_ratio samples per bin side (adaptive:
 * ceil(roi_size / out_size)), bilinear samples averaged; `aligned` shifts coordinates by half a
 * pixel; without it rois are at least 1x1. Samples beyond one pixel outside the map are 0. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "nn/nn_impl.h"

/* One pixel a bin reads (index in its map plane) and its weight, already divided by the
 * bin's sample count. */
typedef struct roi_tap {
    int32_t idx;
    float w;
} roi_tap;

typedef struct roi_align_p {
    int32_t out_h, out_w, sampling, aligned;
    float scale;
    int64_t k;
    /* Made by the forward in the step's arena and read again by the backward: the taps of roi k
     * are taps[start[k] ..], those of its bin b taps[start[k] + first[k * (bins + 1) + b] ..
     * first[k * (bins + 1) + b + 1]) */
    roi_tap *taps;
    int64_t *start, *first;
} roi_align_p;
NN_NODE_PARAMS_FIT(roi_align_p);

/* Bilinear sampling is separable: a sample at (y, x) reads rows y0, y1 with weights (1 - ly, ly)
 * and columns x0, x1 with (1 - lx, lx), and is empty when either coordinate is more than a pixel
 * outside the map (torchvision's bilinear_interpolate, one axis at a time). So the pixels a bin
 * reads are the rows its samples read times the columns they read, with the products of the
 * summed row and column weights. */
typedef struct axis_taps {
    int32_t n;      /* distinct rows (or columns) */
    int32_t *pix;   /* their indices */
    float *w;       /* the weights of all samples of the bin on each, summed */
} axis_taps;

/* The rows (or columns) that the `grid` samples of bin `bin` along an axis of `len` pixels read,
 * starting at `origin` with bins of `size`; pix and w hold 2 * grid entries. */
static void axis_bin_taps(float origin, float size, int64_t grid, int64_t bin, int64_t len, axis_taps *a) {
    a->n = 0;
    for (int64_t i = 0; i < grid; i++) {
        float v = origin + (float)bin * size + ((float)i + 0.5f) * size / (float)grid;
        if (v < -1.0f || v > (float)len) continue; /* an empty sample */
        if (v <= 0.0f) v = 0.0f;
        int64_t v0 = (int64_t)v, v1;
        if (v0 >= len - 1) {
            v1 = v0 = len - 1;
            v = (float)v0;
        } else {
            v1 = v0 + 1;
        }
        float l = v - (float)v0;
        int64_t pix[2] = {v0, v1};
        float w[2] = {1.0f - l, l};
        for (int q = 0; q < 2; q++) {
            int32_t t = 0;
            while (t < a->n && a->pix[t] != (int32_t)pix[q]) t++;
            if (t == a->n) a->pix[a->n] = (int32_t)pix[q], a->w[a->n++] = 0.0f;
            a->w[t] += w[q];
        }
    }
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

/* The most taps one roi can have: every sample of every bin reading four pixels of its own. */
static int64_t roi_tap_capacity(const roi_align_p *p, const roi_geom *g) {
    return (int64_t)p->out_h * p->out_w * g->grid_h * g->grid_w * 4;
}

/* The bilinear taps of one roi, computed once and used for all its channels (as torchvision's
 * pre_calc): for each output bin, the pixels its samples read, each once (the samples of a bin
 * narrower than a pixel share their neighbours). Taps of bin b are taps[first[b] .. first[b + 1])
 * (offsets from this roi's first tap); first has out_h * out_w + 1 entries. */
static void roi_taps(const roi_align_p *p, const roi_geom *g, int64_t h, int64_t w, roi_tap *taps,
                     int64_t *first) {
    /* rows of each bin row, then columns of each bin column: 2 * grid entries each */
    int32_t *pix = malloc((size_t)(p->out_h * g->grid_h + p->out_w * g->grid_w) * 2 * sizeof *pix);
    float *wt = malloc((size_t)(p->out_h * g->grid_h + p->out_w * g->grid_w) * 2 * sizeof *wt);
    axis_taps *ys = malloc((size_t)(p->out_h + p->out_w) * sizeof *ys), *xs = ys + p->out_h;
    NN_ASSERT(pix && wt && ys, "roi_align: out of memory for the taps of a roi");
    int64_t used = 0;
    for (int64_t ph = 0; ph < p->out_h; ph++, used += 2 * g->grid_h) {
        ys[ph].pix = pix + used, ys[ph].w = wt + used;
        axis_bin_taps(g->y0, g->bin_h, g->grid_h, ph, h, &ys[ph]);
    }
    for (int64_t pw = 0; pw < p->out_w; pw++, used += 2 * g->grid_w) {
        xs[pw].pix = pix + used, xs[pw].w = wt + used;
        axis_bin_taps(g->x0, g->bin_w, g->grid_w, pw, w, &xs[pw]);
    }
    int64_t n = 0, b = 0;
    for (int64_t ph = 0; ph < p->out_h; ph++)
        for (int64_t pw = 0; pw < p->out_w; pw++, b++) {
            first[b] = n;
            for (int32_t i = 0; i < ys[ph].n; i++)
                for (int32_t j = 0; j < xs[pw].n; j++) {
                    taps[n].idx = (int32_t)(ys[ph].pix[i] * w + xs[pw].pix[j]);
                    taps[n++].w = ys[ph].w[i] * xs[pw].w[j] / g->count;
                }
        }
    first[b] = n;
    free(pix);
    free(wt);
    free(ys);
}

/* src [N,C,HW] -> dst [N,HW,C]. Channels last, every tap reads (and the backward writes) one
 * contiguous row of channels, which vectorises, instead of C pixels a whole plane apart. */
static void to_channels_last(const float *src, int64_t n, int64_t c, int64_t hw, float *dst) {
#pragma omp parallel for collapse(2) schedule(static) if (n * c * hw > NN_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int64_t p0 = 0; p0 < hw; p0 += 64) {
            int64_t p1 = p0 + 64 < hw ? p0 + 64 : hw;
            for (int64_t ch = 0; ch < c; ch++)
                for (int64_t p = p0; p < p1; p++) dst[(i * hw + p) * c + ch] = src[(i * c + ch) * hw + p];
        }
}

/* The taps of every roi, into the step's arena (one thread per roi). */
static void roi_all_taps(nn_ctx *ctx, roi_align_p *p, const float *rois, int64_t h, int64_t w) {
    int64_t nb = (int64_t)p->out_h * p->out_w;
    p->start = nn__alloc(ctx, (size_t)(p->k + 1) * sizeof *p->start);
    p->first = nn__alloc(ctx, (size_t)(p->k * (nb + 1)) * sizeof *p->first);
    p->start[0] = 0;
    for (int64_t k = 0; k < p->k; k++) {
        roi_geom g = roi_geometry(p, rois + k * 5);
        p->start[k + 1] = p->start[k] + roi_tap_capacity(p, &g);
    }
    p->taps = nn__alloc(ctx, (size_t)p->start[p->k] * sizeof *p->taps + 1);
#pragma omp parallel for schedule(dynamic, 8) if (p->k > 16)
    for (int64_t k = 0; k < p->k; k++) {
        roi_geom g = roi_geometry(p, rois + k * 5);
        roi_taps(p, &g, h, w, p->taps + p->start[k], p->first + k * (nb + 1));
    }
}

/* x [N,C,H,W], rois [K,5] -> y [K,C,OH,OW]. One thread per roi: each bin sums its taps'
 * channel rows. */
static void roi_align_forward(nn_ctx *ctx, nn_node *node) {
    roi_align_p *p = NN_NODE_P(node, roi_align_p);
    const float *rois = node->saved;
    const nn_tensor *x = node->ins[0];
    int64_t n = NN_N(x), c = NN_C(x), h = NN_H(x), w = NN_W(x), hw = h * w, nb = (int64_t)p->out_h * p->out_w;
    roi_all_taps(ctx, p, rois, h, w);
    float *xt = nn__scratch(ctx, (size_t)(n * hw * c) * sizeof *xt); /* the taps stay in the arena */
    to_channels_last(x->data, n, c, hw, xt);
#pragma omp parallel for schedule(dynamic, 4) if (p->k * c * nb > NN_PAR_MIN / 8)
    for (int64_t k = 0; k < p->k; k++) {
        float acc[256];
        const roi_tap *taps = p->taps + p->start[k];
        const int64_t *first = p->first + k * (nb + 1);
        const float *xb = xt + (int64_t)rois[k * 5] * hw * c;
        float *yk = node->out->data + k * c * nb;
        for (int64_t b = 0; b < nb; b++)
            for (int64_t c0 = 0; c0 < c; c0 += 256) { /* channels in chunks that stay in registers or L1 */
                int64_t cn = c - c0 < 256 ? c - c0 : 256;
                for (int64_t j = 0; j < cn; j++) acc[j] = 0.0f;
                for (int64_t t = first[b]; t < first[b + 1]; t++) {
                    const float *row = xb + (int64_t)taps[t].idx * c + c0;
                    float wt = taps[t].w;
#pragma omp simd
                    for (int64_t j = 0; j < cn; j++) acc[j] += wt * row[j];
                }
                for (int64_t j = 0; j < cn; j++) yk[(c0 + j) * nb + b] = acc[j];
            }
    }
}

/* dy [K,C,OH,OW] -> dx [N,C,H,W] (+=), with the forward's taps. dy goes channels-last (one
 * thread per roi), then each thread scatters every roi, in order, into its own chunk of channels
 * of a channels-last dx: no two threads write the same value, and each value sums its terms in
 * the same order whatever the thread count. */
static void roi_align_backward(nn_ctx *ctx, nn_node *node) {
    const roi_align_p *p = NN_NODE_P(node, roi_align_p);
    const float *rois = node->saved;
    nn_tensor *x = node->ins[0];
    float *dx = nn__grad(ctx, x);
    if (!dx) return;
    int64_t n = NN_N(x), c = NN_C(x), h = NN_H(x), w = NN_W(x), hw = h * w, nb = (int64_t)p->out_h * p->out_w;
    float *dyt = nn__scratch(ctx, (size_t)(p->k * nb * c + n * hw * c) * sizeof *dyt), *dxt = dyt + p->k * nb * c;
    const float *dy = node->out->grad;
    int par = p->k * c * nb > NN_PAR_MIN / 8;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t k = 0; k < p->k; k++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t b = 0; b < nb; b++) dyt[(k * nb + b) * c + ch] = dy[(k * c + ch) * nb + b];
    /* One chunk of channels per thread, whole vectors where there are enough channels: the
     * fewer chunks, the fewer times each tap is visited. */
    int64_t nthr = par ? omp_get_max_threads() : 1, per = (c + nthr - 1) / nthr;
    per = (per + 7) / 8 * 8;
    int64_t nchunk = (c + per - 1) / per;
#pragma omp parallel for schedule(static) if (par && nchunk > 1)
    for (int64_t chunk = 0; chunk < nchunk; chunk++) {
        int64_t c0 = chunk * per, c1 = c0 + per < c ? c0 + per : c;
        for (int64_t q = 0; q < n * hw; q++)
            for (int64_t ch = c0; ch < c1; ch++) dxt[q * c + ch] = 0.0f;
        for (int64_t k = 0; k < p->k; k++) {
            float *dk = dxt + (int64_t)rois[k * 5] * hw * c;
            const roi_tap *tk = p->taps + p->start[k];
            const int64_t *fk = p->first + k * (nb + 1);
            for (int64_t b = 0; b < nb; b++) {
                const float *gv = dyt + (k * nb + b) * c;
                for (int64_t t = fk[b]; t < fk[b + 1]; t++) {
                    float *row = dk + (int64_t)tk[t].idx * c, wt = tk[t].w;
#pragma omp simd
                    for (int64_t ch = c0; ch < c1; ch++) row[ch] += gv[ch] * wt;
                }
            }
        }
    }
#pragma omp parallel for collapse(2) schedule(static) if (n * c * hw > NN_PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++) {
            float *d = dx + (i * c + ch) * hw;
            const float *s = dxt + i * hw * c + ch;
            for (int64_t q = 0; q < hw; q++) d[q] += s[q * c];
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
