/* Direct convolution (groups 1), used by nn/ops/conv2d.c for the forward pass of dense and 1x1
 * convolutions (stride 1 to 4: a strided one reads its input's stride phases, see
 * conv2d_direct.c) and the input gradient of stride-1 ones: no im2col columns, no GEMM packing.
 *
 * The "flat" formulation: a zero-padded input plane [PH, PW] is read as one row of PH*PW values;
 * output position p = r*PW + c (c < OW valid, the rest are discarded) is
 *   out[co][p] = sum_ci sum_taps w[co][ci][tap] * in[ci][p + off[tap]],  off = i*dh*PW + j*dw,
 * a one-dimensional correlation, so a vector of consecutive positions needs one load per input
 * channel and tap whatever the kernel size. Register tiles hold 8 output channels x 48 positions
 * (AVX-512) or 4 x 24 (AVX2); every lane adds its products in the same order (input channel,
 * then tap) whatever the tile, the thread split or the vector width, so results depend on
 * nothing but the data. */
#ifndef NN_OPS_CONV2D_DIRECT_H
#define NN_OPS_CONV2D_DIRECT_H

#include <stdint.h>

#include "nn/nn_impl.h"
#include "nn/ops/conv2d_epi.h"

/* Output channels per register tile of the kernel the CPU runs (8 with AVX-512, else 4). */
int64_t nn__flat_cot(void);
/* Packed weights, for the input gradient: [ceil(cout/cot)][cin][taps][cot], zeros in the missing
 * channels of the last tile, from w [cin', cout', kh, kw] read as w'[co][ci][i][j] =
 * w[ci][co][kh-1-i][kw-1-j] (transpose 1: cout = cin', cin = cout'; transpose 0 packs w [cout,
 * cin, kh, kw] as it is, for tests). wp holds nn__flat_packed_size floats. */
int64_t nn__flat_packed_size(int64_t cout, int64_t cin, int64_t taps);
void nn__flat_pack(const float *w, int64_t cout, int64_t cin, int64_t kh, int64_t kw, int transpose, float *wp);
/* The forward direction reads w [cout, cin, kh, kw] in place; only the last register tile, when
 * cout is not a multiple of cot, needs its rows copied next to zero rows (a tile always computes
 * cot channels): nn__flat_last_size floats (0 when none), filled by nn__flat_last. */
int64_t nn__flat_last_size(int64_t cout, int64_t cin, int64_t taps);
void nn__flat_last(const float *w, int64_t cout, int64_t cin, int64_t taps, float *last);

/* The weights a correlation reads: packed (nn__flat_pack), or in place with `last`. */
typedef struct nn_flat_w {
    const float *w;
    const float *last; /* in place: the last tile's rows (nn__flat_last), or NULL when whole */
    int packed;
} nn_flat_w;

/* out[co * os + p] (= or, with accumulate, +=) the flat correlation above for p in [p0, p1) and
 * output channels [c0, c1) (whole register tiles: c0 a multiple of nn__flat_cot, c1 too or
 * cout): in [cin] planes of stride is, off[taps] offsets, weights w for cout channels. relu_in:
 * the input passes through max(x, 0) as it is read; epi (NULL: none, never with accumulate):
 * applied as each value is stored. Reads in[ci][p + off] only for p < p1. */
void nn__flat_corr(const float *in, int64_t is, int64_t cin, const int64_t *off, int64_t taps, const nn_flat_w *w,
                   int64_t cout, int64_t c0, int64_t c1, float *out, int64_t os, int64_t p0, int64_t p1,
                   int accumulate, int relu_in, const nn_conv_epi *epi);

/* NN_CONV_GEMM=1 in the environment: every dense convolution goes through im2col + GEMM (the
 * direct forward, input-gradient and weight-gradient paths decline), for tests and comparisons. */
int nn__conv_force_gemm(void);
/* Whether the direct path takes this convolution's forward pass (groups 1, stride 1 to 4, a
 * workspace of at most 32 MiB per image: the padded planes and the output buffer, or its band),
 * and, for nn__direct_ok, its input gradient too (stride 1 only; either direction's workspace
 * within the bound). Functions of shapes only, so the choice never depends on threads. */
int nn__direct_ok(const nn_conv2d_params *p, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw,
                  int64_t oh, int64_t ow);
int nn__direct_forward_ok(const nn_conv2d_params *p, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kh,
                          int64_t kw, int64_t oh, int64_t ow);
/* x [N,Cin,H,W], w [Cout,Cin,KH,KW] -> y [N,Cout,OH,OW] (overwritten), stride and explicit pads in p.
 * relu_in: convolve max(x, 0); epi (NULL: none): applied to every output value. */
void nn__direct_forward(nn_ctx *ctx, const float *x, const float *w, float *y, int64_t n, int64_t cin, int64_t h,
                        int64_t wd, int64_t cout, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                        const nn_conv2d_params *p, int relu_in, const nn_conv_epi *epi);
/* dy [N,Cout,OH,OW] -> dx [N,Cin,H,W] (= when fresh, else +=): the correlation of the padded output
 * gradient with the flipped, transposed kernel. */
void nn__direct_backward_dx(nn_ctx *ctx, const float *dy, const float *w, float *dx, int fresh, int64_t n, int64_t cin,
                            int64_t h, int64_t wd, int64_t cout, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                            const nn_conv2d_params *p);

#endif
