/* Direct weight gradient of a dense convolution (groups 1, any kernel, stride and dilation), used
 * by nn/ops/conv2d.c instead of im2col + GEMM:
 *   dW[co][ci][i][j] += sum_n sum_{r<OH, c<OW} dY[n][co][r][c] * Xp[n][ci][r*sh + i*dh][c*sw + j*dw]
 * with Xp the zero-padded input. The sum is vectorised across output channels (see
 * conv2d_wgrad.c), so that each weight's gradient is a fixed sequence of multiply-adds (each image's
 * rows and columns in order, then the images' sums in order): the result depends on nothing but the
 * data (not on threads, image blocks or vector width). */
#ifndef NN_OPS_CONV2D_WGRAD_H
#define NN_OPS_CONV2D_WGRAD_H

#include <stdint.h>

#include "nn/nn_impl.h"

/* Whether the direct weight gradient can take this convolution: groups 1, at least 8 input
 * channels, a CPU with AVX2 and FMA, and NN_CONV_GEMM unset (a function of shapes and the CPU
 * only). The caller keeps 1x1 stride-1 unpadded convolutions on GEMM, which reads those tensors
 * in place (45% faster than this kernel on bench-nn's 1x1 cases). Pads are >= 0 (negative ones
 * exist only in the fused inference pass). */
int nn__wgrad_ok(const nn_conv2d_params *p, int64_t cin);
/* x [N,Cin,H,W], dy [N,Cout,OH,OW] -> dw [Cout,Cin,KH,KW] (+=). */
void nn__wgrad_direct(nn_ctx *ctx, const float *x, const float *dy, float *dw, int64_t n, int64_t cin, int64_t h,
                      int64_t wd, int64_t cout, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                      const nn_conv2d_params *p);

#endif
