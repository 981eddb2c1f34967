/* crop_and_resize with tf.image.crop_and_resize's semantics (bilinear): box (y1, x1, y2, x2)
 * normalised so that 0..1 spans pixel centres 0..H-1; crop row y samples
 * y1 (H-1) + y (y2 - y1)(H-1)/(crop_h-1) (the box centre when crop_h == 1); samples outside
 * [0, H-1] take the extrapolation value. Gradient flows to the image only. */
#include <math.h>

#include "nn/nn_impl.h"

typedef struct cr_p {
    int32_t crop_h, crop_w;
    float extrapolation;
    int64_t k;
} cr_p;

typedef struct cr_saved {
    float *boxes;
    int32_t *ind;
} cr_saved;

/* Source coordinate of crop index i along a dim of size n for a box side [a, b]. */
static float src_coord(float a, float b, int64_t i, int32_t crop, int64_t n) {
    if (crop > 1) return a * (float)(n - 1) + (float)i * ((b - a) * (float)(n - 1) / (float)(crop - 1));
    return 0.5f * (a + b) * (float)(n - 1);
}

/* x [N,C,H,W], boxes [K,4], box_ind [K] -> y [K,C,crop_h,crop_w] */
static void crop_and_resize_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const cr_p *p = NN_NODE_P(node, cr_p);
    const cr_saved *s = node->saved;
    const nn_tensor *x = node->ins[0];
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x);
#pragma omp parallel for schedule(static) if (p->k * c * p->crop_h * p->crop_w > NN_PAR_MIN / 8)
    for (int64_t kc = 0; kc < p->k * c; kc++) {
        int64_t k = kc / c, ch = kc % c;
        const float *bx = s->boxes + k * 4;
        const float *xp = x->data + ((int64_t)s->ind[k] * c + ch) * h * w;
        float *yp = node->out->data + kc * p->crop_h * p->crop_w;
        for (int64_t i = 0; i < p->crop_h; i++) {
            float in_y = src_coord(bx[0], bx[2], i, p->crop_h, h);
            if (in_y < 0.0f || in_y > (float)(h - 1)) {
                for (int64_t j = 0; j < p->crop_w; j++) yp[i * p->crop_w + j] = p->extrapolation;
                continue;
            }
            int64_t ty = (int64_t)floorf(in_y), by = (int64_t)ceilf(in_y);
            float ly = in_y - (float)ty;
            for (int64_t j = 0; j < p->crop_w; j++) {
                float in_x = src_coord(bx[1], bx[3], j, p->crop_w, w);
                if (in_x < 0.0f || in_x > (float)(w - 1)) {
                    yp[i * p->crop_w + j] = p->extrapolation;
                    continue;
                }
                int64_t lx0 = (int64_t)floorf(in_x), rx = (int64_t)ceilf(in_x);
                float lx = in_x - (float)lx0;
                float top = xp[ty * w + lx0] + (xp[ty * w + rx] - xp[ty * w + lx0]) * lx;
                float bot = xp[by * w + lx0] + (xp[by * w + rx] - xp[by * w + lx0]) * lx;
                yp[i * p->crop_w + j] = top + (bot - top) * ly;
            }
        }
    }
}

/* dy [K,C,crop_h,crop_w] -> dx [N,C,H,W] (+=); one thread per channel, boxes in order */
static void crop_and_resize_backward(nn_ctx *ctx, nn_node *node) {
    const cr_p *p = NN_NODE_P(node, cr_p);
    const cr_saved *s = node->saved;
    nn_tensor *x = node->ins[0];
    float *dx = nn__grad(ctx, x);
    if (!dx) return;
    int64_t c = NN_C(x), h = NN_H(x), w = NN_W(x);
#pragma omp parallel for schedule(static) if (p->k * c * p->crop_h * p->crop_w > NN_PAR_MIN / 8)
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t k = 0; k < p->k; k++) {
            const float *bx = s->boxes + k * 4;
            float *dp = dx + ((int64_t)s->ind[k] * c + ch) * h * w;
            const float *gp = node->out->grad + (k * c + ch) * p->crop_h * p->crop_w;
            for (int64_t i = 0; i < p->crop_h; i++) {
                float in_y = src_coord(bx[0], bx[2], i, p->crop_h, h);
                if (in_y < 0.0f || in_y > (float)(h - 1)) continue;
                int64_t ty = (int64_t)floorf(in_y), by = (int64_t)ceilf(in_y);
                float ly = in_y - (float)ty;
                for (int64_t j = 0; j < p->crop_w; j++) {
                    float in_x = src_coord(bx[1], bx[3], j, p->crop_w, w);
                    if (in_x < 0.0f || in_x > (float)(w - 1)) continue;
                    int64_t lx0 = (int64_t)floorf(in_x), rx = (int64_t)ceilf(in_x);
                    float lx = in_x - (float)lx0, g = gp[i * p->crop_w + j];
                    float dtop = (1.0f - ly) * g, dbot = ly * g;
                    dp[ty * w + lx0] += dtop * (1.0f - lx);
                    dp[ty * w + rx] += dtop * lx;
                    dp[by * w + lx0] += dbot * (1.0f - lx);
                    dp[by * w + rx] += dbot * lx;
                }
            }
        }
}

const nn_op_impl nn_op_crop_and_resize_impl = {crop_and_resize_forward, crop_and_resize_backward};

nn_tensor *nn_crop_and_resize(nn_ctx *ctx, nn_tensor *x, const float *boxes, const int32_t *box_ind, int64_t k,
                              int32_t crop_h, int32_t crop_w, float extrapolation_value) {
    char sx[64];
    NN_ASSERT(x->ndim == 4, "crop_and_resize: x %s must be [N,C,H,W]", NN_SHAPE_STR(x, sx));
    NN_ASSERT(k >= 1 && crop_h >= 1 && crop_w >= 1, "crop_and_resize: need k >= 1 boxes and a crop of at least 1x1");
    nn_node *node = nn__node(ctx, NN_OP_CROP_AND_RESIZE, 1, &x);
    cr_saved *s = node->saved = nn__alloc(ctx, sizeof *s);
    s->boxes = nn__alloc(ctx, (size_t)(k * 4) * sizeof(float));
    s->ind = nn__alloc(ctx, (size_t)k * sizeof(int32_t));
    for (int64_t i = 0; i < k; i++) {
        NN_ASSERT(box_ind[i] >= 0 && box_ind[i] < NN_N(x), "crop_and_resize: box %lld index %d outside [0,%lld)",
                  (long long)i, box_ind[i], (long long)NN_N(x));
        for (int j = 0; j < 4; j++)
            NN_ASSERT(isfinite(boxes[i * 4 + j]) && fabsf(boxes[i * 4 + j]) < 1e6f,
                      "crop_and_resize: box %lld has a non-finite or absurd coordinate", (long long)i);
        s->ind[i] = box_ind[i];
    }
    memcpy(s->boxes, boxes, (size_t)(k * 4) * sizeof(float));
    cr_p *p = NN_NODE_P(node, cr_p);
    p->crop_h = crop_h;
    p->crop_w = crop_w;
    p->extrapolation = extrapolation_value;
    p->k = k;
    node->out = nn__tensor(ctx, 4, NN_SHAPE(k, NN_C(x), crop_h, crop_w));
    nn__node_run(ctx, node);
    return node->out;
}
