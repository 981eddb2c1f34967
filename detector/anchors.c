/* Grid anchors in TF object detection's GridAnchorGenerator convention (see frcnn.h). The
 * arithmetic follows TF's float32 graph step by step (sqrt, divide, multiply; centre minus
 * half size), so the anchors equal TF's bit for bit where the libm sqrt is correctly rounded. */
#include <math.h>

#include "common/status.h"
#include "detector/frcnn.h"

void det_anchor_params_default(det_anchor_params *p) {
    static const float scales[] = {0.25f, 0.5f, 1.0f, 2.0f};
    static const float ratios[] = {0.5f, 1.0f, 2.0f};
    ND_ASSERT(p != NULL, "NULL params");
    *p = (det_anchor_params){0};
    for (int i = 0; i < 4; i++) p->scales[i] = scales[i];
    for (int i = 0; i < 3; i++) p->ratios[i] = ratios[i];
    p->n_scales = 4;
    p->n_ratios = 3;
    p->base_h = p->base_w = 256.0f;
    p->stride_y = p->stride_x = 16.0f;
    p->offset_y = p->offset_x = 0.0f;
}

int64_t det_anchors_per_location(const det_anchor_params *p) {
    ND_ASSERT(p != NULL, "NULL params");
    return (int64_t)p->n_scales * p->n_ratios;
}

static int positive_finite(float v) { return isfinite(v) && v > 0.0f; }

static int check_params(const det_anchor_params *p) {
    if (p->n_scales < 1 || p->n_scales > DET_ANCHOR_MAX_SCALES)
        return nd_fail(ND_ERR_INVALID, "anchors: %d scales (expected 1..%d)", p->n_scales,
                       DET_ANCHOR_MAX_SCALES);
    if (p->n_ratios < 1 || p->n_ratios > DET_ANCHOR_MAX_RATIOS)
        return nd_fail(ND_ERR_INVALID, "anchors: %d aspect ratios (expected 1..%d)", p->n_ratios,
                       DET_ANCHOR_MAX_RATIOS);
    for (int i = 0; i < p->n_scales; i++)
        if (!positive_finite(p->scales[i]))
            return nd_fail(ND_ERR_INVALID, "anchors: scale %d is %g (expected > 0)", i,
                           (double)p->scales[i]);
    for (int i = 0; i < p->n_ratios; i++)
        if (!positive_finite(p->ratios[i]))
            return nd_fail(ND_ERR_INVALID, "anchors: aspect ratio %d is %g (expected > 0)", i,
                           (double)p->ratios[i]);
    if (!positive_finite(p->base_h) || !positive_finite(p->base_w))
        return nd_fail(ND_ERR_INVALID, "anchors: base size %gx%g (expected > 0)",
                       (double)p->base_h, (double)p->base_w);
    if (!positive_finite(p->stride_y) || !positive_finite(p->stride_x))
        return nd_fail(ND_ERR_INVALID, "anchors: stride %gx%g (expected > 0)",
                       (double)p->stride_y, (double)p->stride_x);
    if (!isfinite(p->offset_y) || !isfinite(p->offset_x))
        return nd_fail(ND_ERR_INVALID, "anchors: offset is not finite");
    return ND_OK;
}

int det_anchors_grid(const det_anchor_params *p, int64_t feat_h, int64_t feat_w, float *anchors) {
    ND_ASSERT(p != NULL, "NULL params");
    int st = check_params(p);
    if (st) return st;
    /* 2^40 anchors would already be terabytes: anything larger is a corrupt size. */
    if (feat_h < 0 || feat_w < 0 || feat_h > (1 << 20) || feat_w > (1 << 20))
        return nd_fail(ND_ERR_INVALID, "anchors: feature map %lldx%lld out of range",
                       (long long)feat_h, (long long)feat_w);
    if (feat_h * feat_w == 0) return ND_OK;
    ND_ASSERT(anchors != NULL, "NULL output");

    float half_h[DET_ANCHOR_MAX_SCALES * DET_ANCHOR_MAX_RATIOS];
    float half_w[DET_ANCHOR_MAX_SCALES * DET_ANCHOR_MAX_RATIOS];
    int k_count = 0;
    for (int r = 0; r < p->n_ratios; r++) {
        float rs = sqrtf(p->ratios[r]);
        for (int s = 0; s < p->n_scales; s++, k_count++) {
            float h = p->scales[s] / rs * p->base_h;
            float w = p->scales[s] * rs * p->base_w;
            half_h[k_count] = 0.5f * h;
            half_w[k_count] = 0.5f * w;
        }
    }
    float *out = anchors;
    for (int64_t i = 0; i < feat_h; i++) {
        float cy = (float)i * p->stride_y + p->offset_y;
        for (int64_t j = 0; j < feat_w; j++) {
            float cx = (float)j * p->stride_x + p->offset_x;
            for (int k = 0; k < k_count; k++) {
                out[0] = cx - half_w[k];
                out[1] = cy - half_h[k];
                out[2] = cx + half_w[k];
                out[3] = cy + half_h[k];
                out += 4;
            }
        }
    }
    return ND_OK;
}
