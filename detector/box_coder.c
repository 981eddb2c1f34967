/* Box coding with torchvision's BoxCoder semantics. Each expression mirrors torchvision's
 * float32 tensor arithmetic in the same order, so the results agree to the last bit except
 * where libm's logf/expf and PyTorch's vectorised log/exp round differently (1 ulp). */
#include <math.h>

#include "common/status.h"
#include "detector/frcnn.h"

void det_box_coder_default(det_box_coder *c) {
    ND_ASSERT(c != NULL, "NULL coder");
    c->wx = 10.0f;
    c->wy = 10.0f;
    c->ww = 5.0f;
    c->wh = 5.0f;
    c->clip = (float)log(1000.0 / 16.0);
}

void det_box_encode(const det_box_coder *c, const float *target, const float *ref, int64_t n,
                    float *deltas) {
    ND_ASSERT(c != NULL && n >= 0, "bad arguments");
    ND_ASSERT(n == 0 || (target && ref && deltas), "NULL array");
    for (int64_t i = 0; i < n; i++) {
        const float *t = target + 4 * i, *r = ref + 4 * i;
        float rw = r[2] - r[0], rh = r[3] - r[1];
        float rcx = r[0] + 0.5f * rw, rcy = r[1] + 0.5f * rh;
        float tw = t[2] - t[0], th = t[3] - t[1];
        float tcx = t[0] + 0.5f * tw, tcy = t[1] + 0.5f * th;
        float *d = deltas + 4 * i;
        d[0] = c->wx * (tcx - rcx) / rw;
        d[1] = c->wy * (tcy - rcy) / rh;
        d[2] = c->ww * logf(tw / rw);
        d[3] = c->wh * logf(th / rh);
    }
}

/* clamp(max=clip) keeps NaN, as torch.clamp does; fminf would not. */
static float clamp_max(float v, float hi) { return v > hi ? hi : v; }

void det_box_decode(const det_box_coder *c, const float *deltas, const float *ref, int64_t n,
                    float *boxes) {
    ND_ASSERT(c != NULL && n >= 0, "bad arguments");
    ND_ASSERT(n == 0 || (deltas && ref && boxes), "NULL array");
    for (int64_t i = 0; i < n; i++) {
        const float *r = ref + 4 * i, *d = deltas + 4 * i;
        float w = r[2] - r[0], h = r[3] - r[1];
        float cx = r[0] + 0.5f * w, cy = r[1] + 0.5f * h;
        float dx = d[0] / c->wx, dy = d[1] / c->wy;
        float dw = clamp_max(d[2] / c->ww, c->clip), dh = clamp_max(d[3] / c->wh, c->clip);
        float pcx = dx * w + cx, pcy = dy * h + cy;
        float half_w = 0.5f * (expf(dw) * w), half_h = 0.5f * (expf(dh) * h);
        float *b = boxes + 4 * i; /* may alias d: every input was read above */
        b[0] = pcx - half_w;
        b[1] = pcy - half_h;
        b[2] = pcx + half_w;
        b[3] = pcy + half_h;
    }
}
