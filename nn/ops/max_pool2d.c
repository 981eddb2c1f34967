/* max_pool2d: max over the in-image part of each window (padding never wins). The forward pass
 * keeps the arg-max (index within the plane) for backward. */
#include <math.h>
#include <omp.h>

#include "nn/nn_impl.h"
#include "nn/ops/pool_geom.h"

/* One plane, separably: a row pass takes the max (and its column) over each window's columns
 * from a -inf-padded copy of the row, a column pass takes the max over the window's rows. The
 * first maximum in row-major order wins, as a direct scan would pick it. Workspace `tmp`:
 * (W + pad_l + pad_r) + 2 * H * OW floats. */
NN_SIMD_CLONES static void plane_max(const float *x, float *y, int32_t *arg, int64_t h, int64_t w, int64_t oh,
                                     int64_t ow, const nn_pool_params *q, float *tmp) {
    int64_t pw = w + q->pad_l + q->pad_r, sw = q->stride_w, sh = q->stride_h;
    float *row = tmp, *rmax = tmp + pw;
    int32_t *rarg = (int32_t *)(rmax + h * ow);
    for (int64_t i = 0; i < pw; i++) row[i] = -INFINITY;
    for (int64_t i = 0; i < h; i++) {
        memcpy(row + q->pad_l, x + i * w, (size_t)w * sizeof(float));
        float *mr = rmax + i * ow;
        int32_t *ar = rarg + i * ow;
        for (int64_t c = 0; c < ow; c++) {
            float m = row[c * sw];
            int32_t a = (int32_t)(c * sw);
            for (int64_t j = 1; j < q->kw; j++) {
                float v = row[c * sw + j];
                if (v > m) {
                    m = v;
                    a = (int32_t)(c * sw + j);
                }
            }
            mr[c] = m;
            ar[c] = a - q->pad_l;
        }
    }
    for (int64_t r = 0; r < oh; r++) {
        int64_t i0 = r * sh - q->pad_t, i1 = i0 + q->kh;
        if (i0 < 0) i0 = 0;
        if (i1 > h) i1 = h;
        float *yr = y + r * ow;
        int32_t *argr = arg ? arg + r * ow : NULL;
        const float *m0 = rmax + i0 * ow;
        const int32_t *a0 = rarg + i0 * ow;
        for (int64_t c = 0; c < ow; c++) yr[c] = m0[c];
        if (argr)
            for (int64_t c = 0; c < ow; c++) argr[c] = (int32_t)(i0 * w) + a0[c];
        for (int64_t i = i0 + 1; i < i1; i++) {
            const float *mi = rmax + i * ow;
            const int32_t *ai = rarg + i * ow;
            if (argr) {
#pragma omp simd
                for (int64_t c = 0; c < ow; c++)
                    if (mi[c] > yr[c]) {
                        yr[c] = mi[c];
                        argr[c] = (int32_t)(i * w) + ai[c];
                    }
            } else {
#pragma omp simd
                for (int64_t c = 0; c < ow; c++) yr[c] = mi[c] > yr[c] ? mi[c] : yr[c];
            }
        }
    }
}

/* x [N,C,H,W] -> y [N,C,OH,OW], saved arg-max int32 [N,C,OH,OW] (index within the plane) */
static void max_pool2d_forward(nn_ctx *ctx, nn_node *node) {
    const nn_pool_params *q = NN_NODE_P(node, nn_pool_params);
    const nn_tensor *x = node->ins[0];
    nn_tensor *y = node->out;
    int64_t h = NN_H(x), w = NN_W(x), oh = NN_H(y), ow = NN_W(y);
    int32_t *arg = NULL;
    if (y->flags & NN_TENSOR_REQUIRES_GRAD) arg = node->saved = nn__alloc(ctx, (size_t)y->numel * sizeof(int32_t));
    int64_t per = w + q->pad_l + q->pad_r + 2 * h * ow + 16;
    int nt = omp_get_max_threads();
    float *ws = nn__scratch(ctx, (size_t)(per * nt) * sizeof(float));
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < NN_N(x) * NN_C(x); nc++)
        plane_max(x->data + nc * h * w, y->data + nc * oh * ow, arg ? arg + nc * oh * ow : NULL, h, w, oh, ow, q,
                  ws + per * omp_get_thread_num());
}

/* dy -> dx (+=) at the arg-max of each window; a fresh gradient is zeroed plane by plane just
 * before its scatter, while the plane is in cache */
static void max_pool2d_backward(nn_ctx *ctx, nn_node *node) {
    nn_tensor *x = node->ins[0];
    int fresh;
    float *dx = nn__grad_first(ctx, x, &fresh);
    if (!dx) return;
    const nn_tensor *y = node->out;
    const int32_t *arg = node->saved;
    int64_t hw = NN_H(x) * NN_W(x), ohw = NN_H(y) * NN_W(y);
#pragma omp parallel for schedule(static) if (x->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < NN_N(x) * NN_C(x); nc++) {
        if (fresh) memset(dx + nc * hw, 0, (size_t)hw * sizeof(float));
        for (int64_t i = 0; i < ohw; i++) dx[nc * hw + arg[nc * ohw + i]] += y->grad[nc * ohw + i];
    }
}

const nn_op_impl nn_op_max_pool2d_impl = {max_pool2d_forward, max_pool2d_backward};

nn_tensor *nn_max_pool2d(nn_ctx *ctx, nn_tensor *x, const nn_pool_params *p) {
    nn_pool_params q = *p;
    int64_t oh, ow;
    nn__pool_resolve("max_pool2d", x, &q, &oh, &ow);
    NN_ASSERT(q.pad_t < q.kh && q.pad_b < q.kh && q.pad_l < q.kw && q.pad_r < q.kw,
              "max_pool2d: padding must be smaller than the window");
    nn_node *node = nn__node(ctx, NN_OP_MAX_POOL2D, 1, &x);
    *NN_NODE_P(node, nn_pool_params) = q;
    node->out = nn__tensor(ctx, 4, NN_SHAPE(NN_N(x), NN_C(x), oh, ow));
    nn__node_run(ctx, node);
    return node->out;
}
