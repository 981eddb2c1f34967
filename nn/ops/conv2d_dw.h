/* Depthwise convolution kernels (groups == Cin == Cout), used by nn/ops/conv2d.c. */
#ifndef NN_OPS_CONV2D_DW_H
#define NN_OPS_CONV2D_DW_H

#include <stdint.h>

#include "nn/nn_impl.h"
#include "nn/ops/conv2d_epi.h"

/* x [N,C,H,W], w [C,1,KH,KW], b [C] or NULL -> y [N,C,OH,OW] (overwritten); p has explicit pads.
 * Uses ctx's scratch workspace (nn__scratch). */
void nn__dw_forward(nn_ctx *ctx, const float *x, const float *w, const float *b, float *y, int64_t n, int64_t c, int64_t h,
                    int64_t wd, int64_t kh, int64_t kw, int64_t oh, int64_t ow, const nn_conv2d_params *p);
/* The same for a fused inference convolution: relu_in convolves max(x, 0); epi (NULL: none) is
 * applied to every output value after the bias. */
void nn__dw_forward_fused(nn_ctx *ctx, const float *x, const float *w, const float *b, float *y, int64_t n, int64_t c,
                          int64_t h, int64_t wd, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                          const nn_conv2d_params *p, int relu_in, const nn_conv_epi *epi);
/* dy [N,C,OH,OW] -> dx [N,C,H,W] (+=, or = when dx_fresh; skipped when NULL), dw [C,1,KH,KW] (+=,
 * skipped when NULL). */
void nn__dw_backward(nn_ctx *ctx, const float *x, const float *w, const float *dy, float *dx, int dx_fresh, float *dw,
                     int64_t n, int64_t c,
                     int64_t h, int64_t wd, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                     const nn_conv2d_params *p);

/* Kernels up to this width take the padded-plane vector path; wider ones the direct loops. */
#define NN_DW_FAST_MAXK 16

/* Stride-1 correlation over a zero-padded plane p [oh+(kh-1)*dh, pw]:
 * out [oh, ow] (+)= sum_{i,j} w[i*kw+j] * p[r+i*dh][c+j*dw], ow = pw - (kw-1)*dw. */
void nn__dw_corr_s1(const float *p, int64_t pw, const float *w, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                    float *out, int64_t oh, int64_t ow, int accumulate);
/* As nn__dw_corr_s1 with output row r starting at p + r*rstep (kernel row i at + i*dh*pw): rstep
 * is pw for stride 1 and sh*pw for a row stride sh. */
void nn__dw_corr_rows(const float *p, int64_t pw, int64_t rstep, const float *w, int64_t kh, int64_t kw, int64_t dh,
                      int64_t dw, float *out, int64_t oh, int64_t ow, int accumulate);
/* The even and odd columns of rows [0, rows) of p [rows, pw]: ev [rows, (pw+1)/2] and od [rows,
 * pw/2] (a stride-2 correlation across is then two stride-1 ones). */
void nn__dw_column_phases(const float *p, int64_t pw, int64_t rows, float *ev, float *od);
/* Stride-1 weight gradient of one plane: dwk [kh,kw] += sum dy[r][c] * p[r+i*dh][c+j*dw] with p the
 * padded input [oh+(kh-1)*dh, pw]. Returns 0 (and does nothing) when kw is too wide for it. */
int nn__dw_wgrad_s1(const float *p, int64_t pw, const float *dy, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
                    int64_t dh, int64_t dw, float *dwk);
/* The flat stride-1 plane kernel (AVX-512 only: nn__dw_flat_ok): x [h, wd] (max(x, 0) with relu)
 * goes into the interior of pad [ph, pw] at (top, left), whose other values must already be
 * zero (they stay so: a caller zeroes its pad buffer once for all planes of one geometry); then
 * y [oh, ow] = the correlation with w [kh, kw] (dilation dh, dw; ph = oh + (kh-1)*dh,
 * pw = ow + (kw-1)*dw), plus *bias (if bias), then epi's channel ch (if epi). tmp holds
 * (oh-1)*pw + ow floats. The same values as nn__dw_pad_plane + nn__dw_corr_s1 + the bias and
 * the epilogue. */
int nn__dw_flat_ok(void);
void nn__dw_flat_plane(const float *x, int64_t h, int64_t wd, int relu, float *pad, int64_t ph, int64_t pw,
                       int64_t top, int64_t left, const float *w, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                       float *tmp, float *y, int64_t oh, int64_t ow, const float *bias, const nn_conv_epi *epi,
                       int64_t ch);
/* dst [ph, pw] = zeros with src[r][c] placed at (top + r*sh, left + c*sw) (parts outside dst are
 * dropped; top/left may be negative). sh = sw = 1 pads; larger strides also spread src out.
 * relu: places max(src, 0) instead (the padding zeros are their own ReLU). */
void nn__dw_pad_plane(const float *src, int64_t h, int64_t w, int64_t sh, int64_t sw, float *dst, int64_t ph,
                      int64_t pw, int64_t top, int64_t left, int relu);

#endif
