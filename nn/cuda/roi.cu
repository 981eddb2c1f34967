/* ROIAlign (torchvision semantics) and crop_and_resize (TF semantics) on the GPU: one thread per
 * output element forward; backward scatters bilinear weights into the image gradient with
 * atomics (boxes overlap). Rois and boxes are uploaded from the host copies the constructor made. */
#include "nn/cuda/cuda_common.h"

/* As roi_align.c's bilinear(): the four neighbours and weights of (y, x), 0 when empty. */
static __device__ inline int bilinear(int64_t h, int64_t w, float y, float x, int64_t idx[4], float wt[4]) {
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

struct roi_geom {
    int64_t b;
    float y0, x0, bin_h, bin_w;
    int64_t grid_h, grid_w;
    float count;
};
static __device__ inline roi_geom roi_geometry(const nn__cu_roi_align_p &p, const float *roi) {
    roi_geom g;
    float off = p.aligned ? 0.5f : 0.0f;
    g.b = (int64_t)roi[0];
    g.x0 = roi[1] * p.scale - off;
    g.y0 = roi[2] * p.scale - off;
    float rw = roi[3] * p.scale - off - g.x0, rh = roi[4] * p.scale - off - g.y0;
    if (!p.aligned) {
        rw = rw > 1.0f ? rw : 1.0f;
        rh = rh > 1.0f ? rh : 1.0f;
    }
    g.bin_h = rh / (float)p.out_h;
    g.bin_w = rw / (float)p.out_w;
    g.grid_h = p.sampling > 0 ? p.sampling : (int64_t)ceilf(rh / (float)p.out_h);
    g.grid_w = p.sampling > 0 ? p.sampling : (int64_t)ceilf(rw / (float)p.out_w);
    int64_t cnt = g.grid_h * g.grid_w;
    g.count = (float)(cnt > 1 ? cnt : 1);
    return g;
}

static void roi_align_fwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_roi_align_p p = *NN_NODE_P(node, nn__cu_roi_align_p);
    const float *rois = (const float *)(node->saved = nn__cu_upload(ctx, node->saved, (size_t)(p.k * 5) * sizeof(float)));
    const nn_tensor *x = node->ins[0];
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x), ohw = (int64_t)p.out_h * p.out_w;
    const float *xd = x->data;
    float *y = node->out->data;
    nn__cu_for(node->out->numel, [=] __device__(int64_t e) {
        int64_t pw = e % p.out_w, ph = (e / p.out_w) % p.out_h, kc = e / ohw, k = kc / c, ch = kc % c;
        roi_geom g = roi_geometry(p, rois + k * 5);
        const float *xp = xd + (g.b * c + ch) * h * w;
        float acc = 0.0f;
        for (int64_t iy = 0; iy < g.grid_h; iy++) {
            float yy = g.y0 + (float)ph * g.bin_h + ((float)iy + 0.5f) * g.bin_h / (float)g.grid_h;
            for (int64_t ix = 0; ix < g.grid_w; ix++) {
                float xx = g.x0 + (float)pw * g.bin_w + ((float)ix + 0.5f) * g.bin_w / (float)g.grid_w;
                int64_t idx[4];
                float wt[4];
                if (!bilinear(h, w, yy, xx, idx, wt)) continue;
                acc += wt[0] * xp[idx[0]] + wt[1] * xp[idx[1]] + wt[2] * xp[idx[2]] + wt[3] * xp[idx[3]];
            }
        }
        y[e] = acc / g.count;
    });
}
static void roi_align_bwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_roi_align_p p = *NN_NODE_P(node, nn__cu_roi_align_p);
    const float *rois = (const float *)node->saved;
    nn_tensor *x = node->ins[0];
    float *dx = nn__grad(ctx, x);
    if (!dx) return;
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x), ohw = (int64_t)p.out_h * p.out_w;
    const float *dy = node->out->grad;
    nn__cu_for(node->out->numel, [=] __device__(int64_t e) {
        int64_t pw = e % p.out_w, ph = (e / p.out_w) % p.out_h, kc = e / ohw, k = kc / c, ch = kc % c;
        roi_geom g = roi_geometry(p, rois + k * 5);
        float *dp = dx + (g.b * c + ch) * h * w;
        float gv = dy[e] / g.count;
        for (int64_t iy = 0; iy < g.grid_h; iy++) {
            float yy = g.y0 + (float)ph * g.bin_h + ((float)iy + 0.5f) * g.bin_h / (float)g.grid_h;
            for (int64_t ix = 0; ix < g.grid_w; ix++) {
                float xx = g.x0 + (float)pw * g.bin_w + ((float)ix + 0.5f) * g.bin_w / (float)g.grid_w;
                int64_t idx[4];
                float wt[4];
                if (!bilinear(h, w, yy, xx, idx, wt)) continue;
                for (int q = 0; q < 4; q++) atomicAdd(&dp[idx[q]], gv * wt[q]);
            }
        }
    });
}

static __device__ inline float src_coord(float a, float b, int64_t i, int32_t crop, int64_t n) {
    if (crop > 1) return a * (float)(n - 1) + (float)i * ((b - a) * (float)(n - 1) / (float)(crop - 1));
    return 0.5f * (a + b) * (float)(n - 1);
}

static void crop_and_resize_fwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_cr_p p = *NN_NODE_P(node, nn__cu_cr_p);
    nn__cu_cr_saved *s = (nn__cu_cr_saved *)node->saved;
    const float *boxes = s->boxes = (float *)nn__cu_upload(ctx, s->boxes, (size_t)(p.k * 4) * sizeof(float));
    const int32_t *ind = s->ind = (int32_t *)nn__cu_upload(ctx, s->ind, (size_t)p.k * sizeof(int32_t));
    const nn_tensor *x = node->ins[0];
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x), chw = (int64_t)p.crop_h * p.crop_w;
    const float *xd = x->data;
    float *y = node->out->data;
    nn__cu_for(node->out->numel, [=] __device__(int64_t e) {
        int64_t j = e % p.crop_w, i = (e / p.crop_w) % p.crop_h, kc = e / chw, k = kc / c, ch = kc % c;
        const float *bx = boxes + k * 4;
        const float *xp = xd + ((int64_t)ind[k] * c + ch) * h * w;
        float in_y = src_coord(bx[0], bx[2], i, p.crop_h, h), in_x = src_coord(bx[1], bx[3], j, p.crop_w, w);
        if (in_y < 0.0f || in_y > (float)(h - 1) || in_x < 0.0f || in_x > (float)(w - 1)) {
            y[e] = p.extrapolation;
            return;
        }
        int64_t ty = (int64_t)floorf(in_y), by = (int64_t)ceilf(in_y), lx0 = (int64_t)floorf(in_x), rx = (int64_t)ceilf(in_x);
        float ly = in_y - (float)ty, lx = in_x - (float)lx0;
        float top = xp[ty * w + lx0] + (xp[ty * w + rx] - xp[ty * w + lx0]) * lx;
        float bot = xp[by * w + lx0] + (xp[by * w + rx] - xp[by * w + lx0]) * lx;
        y[e] = top + (bot - top) * ly;
    });
}
static void crop_and_resize_bwd(nn_ctx *ctx, nn_node *node) {
    nn__cu_cr_p p = *NN_NODE_P(node, nn__cu_cr_p);
    const nn__cu_cr_saved *s = (const nn__cu_cr_saved *)node->saved;
    nn_tensor *x = node->ins[0];
    float *dx = nn__grad(ctx, x);
    if (!dx) return;
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x), chw = (int64_t)p.crop_h * p.crop_w;
    const float *boxes = s->boxes, *dy = node->out->grad;
    const int32_t *ind = s->ind;
    nn__cu_for(node->out->numel, [=] __device__(int64_t e) {
        int64_t j = e % p.crop_w, i = (e / p.crop_w) % p.crop_h, kc = e / chw, k = kc / c, ch = kc % c;
        const float *bx = boxes + k * 4;
        float *dp = dx + ((int64_t)ind[k] * c + ch) * h * w;
        float in_y = src_coord(bx[0], bx[2], i, p.crop_h, h), in_x = src_coord(bx[1], bx[3], j, p.crop_w, w);
        if (in_y < 0.0f || in_y > (float)(h - 1) || in_x < 0.0f || in_x > (float)(w - 1)) return;
        int64_t ty = (int64_t)floorf(in_y), by = (int64_t)ceilf(in_y), lx0 = (int64_t)floorf(in_x), rx = (int64_t)ceilf(in_x);
        float ly = in_y - (float)ty, lx = in_x - (float)lx0, g = dy[e];
        float dtop = (1.0f - ly) * g, dbot = ly * g;
        atomicAdd(&dp[ty * w + lx0], dtop * (1.0f - lx));
        atomicAdd(&dp[ty * w + rx], dtop * lx);
        atomicAdd(&dp[by * w + lx0], dbot * (1.0f - lx));
        atomicAdd(&dp[by * w + rx], dbot * lx);
    });
}

void nn__cu_register_roi(nn_cu_op *ops) {
    ops[NN_OP_ROI_ALIGN] = nn_cu_op{roi_align_fwd, roi_align_bwd};
    ops[NN_OP_CROP_AND_RESIZE] = nn_cu_op{crop_and_resize_fwd, crop_and_resize_bwd};
}
