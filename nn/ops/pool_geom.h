/* Pool window geometry shared by avg_pool2d.c and max_pool2d.c. */
#ifndef NN_OPS_POOL_GEOM_H
#define NN_OPS_POOL_GEOM_H

#include "nn/nn_impl.h"

/* Resolve SAME into explicit pads and compute the output size; asserts on a bad window. */
static inline void nn__pool_resolve(const char *op, const nn_tensor *x, nn_pool_params *q, int64_t *oh, int64_t *ow) {
    NN_ASSERT(x->ndim == 4, "%s: x must be [N,C,H,W], has rank %d", op, x->ndim);
    NN_ASSERT(q->kh >= 1 && q->kw >= 1 && q->stride_h >= 1 && q->stride_w >= 1, "%s: window and stride must be >= 1",
              op);
    if (q->same) {
        nn__same_pad(NN_H(x), q->kh, q->stride_h, 1, oh, &q->pad_t, &q->pad_b);
        nn__same_pad(NN_W(x), q->kw, q->stride_w, 1, ow, &q->pad_l, &q->pad_r);
        q->same = 0;
    } else {
        NN_ASSERT(q->pad_t >= 0 && q->pad_b >= 0 && q->pad_l >= 0 && q->pad_r >= 0, "%s: negative padding", op);
        NN_ASSERT(NN_H(x) + q->pad_t + q->pad_b >= q->kh && NN_W(x) + q->pad_l + q->pad_r >= q->kw,
                  "%s: window larger than padded input", op);
        *oh = (NN_H(x) + q->pad_t + q->pad_b - q->kh) / q->stride_h + 1;
        *ow = (NN_W(x) + q->pad_l + q->pad_r - q->kw) / q->stride_w + 1;
    }
}

/* The window of output (r, c) clipped to the image: rows [*h0,*h1), cols [*w0,*w1). */
static inline void nn__pool_window(const nn_pool_params *q, int64_t h, int64_t w, int64_t r, int64_t c, int64_t *h0,
                                   int64_t *h1, int64_t *w0, int64_t *w1) {
    int64_t a = r * q->stride_h - q->pad_t, b = c * q->stride_w - q->pad_l;
    *h0 = a < 0 ? 0 : a;
    *h1 = a + q->kh > h ? h : a + q->kh;
    *w0 = b < 0 ? 0 : b;
    *w1 = b + q->kw > w ? w : b + q->kw;
}

#endif
