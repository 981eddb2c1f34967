/* Box geometry with torchvision.ops semantics: IoU, clipping, minimum size. */
#include "common/status.h"
#include "detector/frcnn.h"

void det_box_iou(const float *a, int64_t n, const float *b, int64_t m, float *iou) {
    ND_ASSERT(n >= 0 && m >= 0, "negative count");
    ND_ASSERT((n == 0 || m == 0) || (a && b && iou), "NULL array");
    for (int64_t i = 0; i < n; i++) {
        const float *p = a + 4 * i;
        float area_a = (p[2] - p[0]) * (p[3] - p[1]);
        float *row = iou + i * m;
        for (int64_t j = 0; j < m; j++) {
            const float *q = b + 4 * j;
            float area_b = (q[2] - q[0]) * (q[3] - q[1]);
            /* torch.max/min/clamp, written so that the float ops match theirs one for one */
            float lx = p[0] > q[0] ? p[0] : q[0], ly = p[1] > q[1] ? p[1] : q[1];
            float rx = p[2] < q[2] ? p[2] : q[2], ry = p[3] < q[3] ? p[3] : q[3];
            float w = rx - lx, h = ry - ly;
            w = w < 0.0f ? 0.0f : w;
            h = h < 0.0f ? 0.0f : h;
            float inter = w * h;
            row[j] = inter / (area_a + area_b - inter);
        }
    }
}

/* torch.clamp(min, max): NaN passes through; fminf/fmaxf would replace it. */
static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void det_boxes_clip(float *boxes, int64_t n, float img_w, float img_h) {
    ND_ASSERT(n >= 0 && (n == 0 || boxes), "bad arguments");
    for (int64_t i = 0; i < n; i++) {
        float *b = boxes + 4 * i;
        b[0] = clampf(b[0], 0.0f, img_w);
        b[1] = clampf(b[1], 0.0f, img_h);
        b[2] = clampf(b[2], 0.0f, img_w);
        b[3] = clampf(b[3], 0.0f, img_h);
    }
}

int64_t det_boxes_keep_min_size(const float *boxes, int64_t n, float min_size, int64_t *keep) {
    ND_ASSERT(n >= 0 && (n == 0 || (boxes && keep)), "bad arguments");
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *b = boxes + 4 * i;
        if (b[2] - b[0] >= min_size && b[3] - b[1] >= min_size) keep[k++] = i;
    }
    return k;
}
