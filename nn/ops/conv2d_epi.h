/* The epilogue of a fused inference convolution (nn_conv2d_fused): what happens to each finished
 * output value of channel c before it is stored. Shared by the direct, depthwise and GEMM paths
 * of nn/ops/conv2d.c. */
#ifndef NN_OPS_CONV2D_EPI_H
#define NN_OPS_CONV2D_EPI_H

#include <stdint.h>

#include "nn/nn_impl.h"

/* v = v * scale[c] + shift[c] when scale is set (a multiply and an add rounded apart, as batch
 * norm's own pass computes them, so the fused result equals the separate ops bit for bit), then
 * max(v, 0) when relu. */
typedef struct nn_conv_epi {
    const float *scale, *shift;
    int relu;
} nn_conv_epi;

/* The epilogue over n values of channel c, in place. */
static inline void nn__conv_epi_apply(float *y, int64_t n, const nn_conv_epi *e, int64_t c) {
    if (e->scale) {
        float s = e->scale[c], t = e->shift[c];
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float m = y[i] * s; /* rounded before the add: no contraction into an FMA */
            y[i] = m + t;
        }
    }
    if (e->relu)
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

/* nn/ops/conv2d.c's forward pass over a conv2d-shaped node (inputs x, w[, b]; nn_conv2d_params
 * with explicit pads at the start of its parameters) into node->out: relu_in convolves max(x, 0),
 * epi (NULL: none) applies to every output value after the bias. */
void nn__conv2d_forward_ex(nn_ctx *ctx, nn_node *node, int relu_in, const nn_conv_epi *epi);
/* nn_conv2d's shape checks (aborting on a caller's mistake) and its parameters with SAME padding
 * resolved into explicit pads; the output's height and width under such parameters. */
nn_conv2d_params nn__conv2d_resolve(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                                    const nn_conv2d_params *p);
void nn__conv2d_out_hw(const nn_tensor *x, const nn_tensor *w, const nn_conv2d_params *q, int64_t *oh, int64_t *ow);

#endif
