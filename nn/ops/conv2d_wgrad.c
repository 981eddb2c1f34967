/* Direct weight gradient (nn/ops/conv2d_wgrad.h).
 *
 * im2col + GEMM writes every input value KH*KW times into columns that the BLAS then packs again;
 * here nothing is expanded. Per image, the padded input is laid out channels-last, Xh [PH][PW][CIP],
 * and the output gradient transposed, Dt [OH*OW][CoP] (CIP, CoP: the channel counts rounded up to
 * whole tiles, zeros after the real channels). A work item is one tap (i, j), a block of CT input
 * channels and a block of 2 vectors of output channels; for every output position it loads the two
 * gradient vectors and multiplies them by CT broadcast input values, into 2 x CT accumulators:
 *   acc[cc][co] += Xh[r*sh + i*dh][c*sw + j*dw][ci0 + cc] * Dt[r*OW + c][co].
 * No horizontal sums, no unaligned input vectors, and every output channel is its own lane, so each
 * weight's gradient is a chain of fused multiply-adds over each image's positions in order (row,
 * column), the images' sums added in order into a [taps][CIP][CoP] buffer, and that added to dW:
 * the same whatever the thread count, the image blocking or the vector width (AVX-512: 16-lane
 * vectors, CT = 8; AVX2: 8 lanes, CT = 4). */
#include "nn/ops/conv2d_wgrad.h"

#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "nn/ops/conv2d_direct.h"

/* Images per block are limited to this much workspace (their Xh and Dt). */
#define WGRAD_BLOCK_BYTES ((int64_t)16 << 20)

typedef struct wgeom {
    int64_t cin, cout, kh, kw, oh, ow, sh, sw, dh, dw;
    int64_t ph, pw;   /* padded input rows and columns that the kernel reads */
    int64_t cip, cop; /* channel counts rounded up to tiles */
    int64_t ct, cot;  /* input channels and output channels per tile */
} wgeom;

int nn__wgrad_ok(const nn_conv2d_params *p, int64_t cin) {
    /* Under 8 input channels most of a tile's rows are padding (an RGB stem, 3 of 8: 25% slower
     * than GEMM in bench-nn). */
    return cin >= 8 && p->groups == 1 && nn__cpu_fma() && !nn__conv_force_gemm();
}

/* ---- kernels: one work item on one image ---------------------------------------------------- */

/* acc [CT][2 vectors] at a (row stride cop) += the item's products summed over all output positions
 * of the image (a sum per image, then added: one chain over all images' positions lost 1e-3 to
 * cancellation on a 15,000-term test case). x0 = Xh at the tap's offset and the block's first input channel, d = Dt at the block's first
 * output channel. */
__attribute__((target("avx512f"))) static void item_512(const float *x0, const float *d, float *a,
                                                        const wgeom *g) {
    enum { CT = 8 };
    __m512 acc[CT][2];
    for (int cc = 0; cc < CT; cc++) acc[cc][0] = acc[cc][1] = _mm512_setzero_ps();
    const int64_t rstep = g->sh * g->pw * g->cip, cstep = g->sw * g->cip, cop = g->cop;
    for (int64_t r = 0; r < g->oh; r++) {
        const float *xc = x0 + r * rstep;
        for (int64_t c = 0; c < g->ow; c++, xc += cstep, d += cop) {
            __m512 d0 = _mm512_loadu_ps(d), d1 = _mm512_loadu_ps(d + 16);
#pragma GCC unroll 8
            for (int cc = 0; cc < CT; cc++) {
                __m512 b = _mm512_set1_ps(xc[cc]);
                acc[cc][0] = _mm512_fmadd_ps(b, d0, acc[cc][0]);
                acc[cc][1] = _mm512_fmadd_ps(b, d1, acc[cc][1]);
            }
        }
    }
    for (int cc = 0; cc < CT; cc++) {
        _mm512_storeu_ps(a + cc * g->cop, _mm512_add_ps(_mm512_loadu_ps(a + cc * g->cop), acc[cc][0]));
        _mm512_storeu_ps(a + cc * g->cop + 16, _mm512_add_ps(_mm512_loadu_ps(a + cc * g->cop + 16), acc[cc][1]));
    }
}

__attribute__((target("avx2,fma"))) static void item_256(const float *x0, const float *d, float *a,
                                                         const wgeom *g) {
    enum { CT = 4 };
    __m256 acc[CT][2];
    for (int cc = 0; cc < CT; cc++) acc[cc][0] = acc[cc][1] = _mm256_setzero_ps();
    const int64_t rstep = g->sh * g->pw * g->cip, cstep = g->sw * g->cip, cop = g->cop;
    for (int64_t r = 0; r < g->oh; r++) {
        const float *xc = x0 + r * rstep;
        for (int64_t c = 0; c < g->ow; c++, xc += cstep, d += cop) {
            __m256 d0 = _mm256_loadu_ps(d), d1 = _mm256_loadu_ps(d + 8);
#pragma GCC unroll 4
            for (int cc = 0; cc < CT; cc++) {
                __m256 b = _mm256_set1_ps(xc[cc]);
                acc[cc][0] = _mm256_fmadd_ps(b, d0, acc[cc][0]);
                acc[cc][1] = _mm256_fmadd_ps(b, d1, acc[cc][1]);
            }
        }
    }
    for (int cc = 0; cc < CT; cc++) {
        _mm256_storeu_ps(a + cc * g->cop, _mm256_add_ps(_mm256_loadu_ps(a + cc * g->cop), acc[cc][0]));
        _mm256_storeu_ps(a + cc * g->cop + 8, _mm256_add_ps(_mm256_loadu_ps(a + cc * g->cop + 8), acc[cc][1]));
    }
}

/* ---- layouts --------------------------------------------------------------------------------- */

/* Xh [ph][pw][cip] of one image x [cin][h][w]: the input at (pad_t, pad_l), zeros elsewhere
 * (rows and columns past the last one the kernel reads are left out). */
static void to_channels_last(const float *x, int64_t h, int64_t w, int64_t top, int64_t left, const wgeom *g,
                             float *xh) {
    memset(xh, 0, (size_t)(g->ph * g->pw * g->cip) * sizeof(float));
    int64_t c0 = left, c1 = left + w < g->pw ? left + w : g->pw;
    for (int64_t pr = top; pr < g->ph && pr - top < h; pr++) {
        float *row = xh + pr * g->pw * g->cip;
        for (int64_t ci = 0; ci < g->cin; ci++) {
            const float *src = x + (ci * h + (pr - top)) * w;
            for (int64_t pc = c0; pc < c1; pc++) row[pc * g->cip + ci] = src[pc - left];
        }
    }
}

/* Dt [oh*ow][cop] of one image dy [cout][oh*ow], zeros in channels past cout. */
static void to_positions_major(const float *dy, const wgeom *g, float *dt) {
    int64_t ohw = g->oh * g->ow;
    if (g->cop > g->cout)
        for (int64_t q = 0; q < ohw; q++) memset(dt + q * g->cop + g->cout, 0, (size_t)(g->cop - g->cout) * sizeof(float));
    for (int64_t co = 0; co < g->cout; co++) {
        const float *s = dy + co * ohw;
        for (int64_t q = 0; q < ohw; q++) dt[q * g->cop + co] = s[q];
    }
}

void nn__wgrad_direct(nn_ctx *ctx, const float *x, const float *dy, float *dw, int64_t n, int64_t cin, int64_t h,
                      int64_t wd, int64_t cout, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                      const nn_conv2d_params *p) {
    int wide = nn__cpu_avx512();
    wgeom g = {cin, cout, kh, kw, oh, ow, p->stride_h, p->stride_w, p->dil_h, p->dil_w, 0, 0, 0, 0, 0, 0};
    g.ph = (oh - 1) * g.sh + (kh - 1) * g.dh + 1;
    g.pw = (ow - 1) * g.sw + (kw - 1) * g.dw + 1;
    g.ct = wide ? 8 : 4;
    g.cot = wide ? 32 : 16;
    g.cip = (cin + g.ct - 1) / g.ct * g.ct;
    g.cop = (cout + g.cot - 1) / g.cot * g.cot;
    int64_t taps = kh * kw, ohw = oh * ow;
    int64_t xh_floats = g.ph * g.pw * g.cip, dt_floats = ohw * g.cop, per_image = xh_floats + dt_floats;
    int64_t nb = WGRAD_BLOCK_BYTES / (per_image * (int64_t)sizeof(float));
    if (nb < 1) nb = 1;
    if (nb > n) nb = n;
    int64_t acc_floats = taps * g.cip * g.cop;
    float *acc = nn__scratch(ctx, (size_t)(acc_floats + nb * per_image) * sizeof(float));
    float *blk = acc + acc_floats;
    memset(acc, 0, (size_t)acc_floats * sizeof(float));

    /* Items: output-channel block outermost, so that a thread's consecutive items read the same
     * columns of Dt. The same static schedule maps an item to the same thread for every image,
     * so the images' loops need no barrier between them (nowait): an item's accumulators are
     * only ever touched by one thread. */
    int64_t ncib = g.cip / g.ct, ncob = g.cop / g.cot, items = ncob * ncib * taps;
    int par = omp_get_max_threads() > 1 && n * cout * cin * taps * ohw > NN_PAR_MIN;
    for (int64_t b0 = 0; b0 < n; b0 += nb) {
        int64_t m = n - b0 < nb ? n - b0 : nb;
#pragma omp parallel if (par)
        {
#pragma omp for schedule(static)
            for (int64_t q = 0; q < 2 * m; q++) {
                int64_t b = q % m;
                if (q < m)
                    to_channels_last(x + (b0 + b) * cin * h * wd, h, wd, p->pad_t, p->pad_l, &g,
                                     blk + b * per_image);
                else
                    to_positions_major(dy + (b0 + b) * cout * ohw, &g, blk + b * per_image + xh_floats);
            }
            for (int64_t b = 0; b < m; b++) {
                const float *xh = blk + b * per_image, *dt = xh + xh_floats;
#pragma omp for schedule(static) nowait
                for (int64_t it = 0; it < items; it++) {
                    int64_t tap = it % taps, cib = it / taps % ncib, cob = it / taps / ncib;
                    int64_t i = tap / kw, j = tap % kw, ci0 = cib * g.ct, co0 = cob * g.cot;
                    const float *x0 = xh + (i * g.dh * g.pw + j * g.dw) * g.cip + ci0;
                    float *a = acc + (tap * g.cip + ci0) * g.cop + co0;
                    if (wide)
                        item_512(x0, dt + co0, a, &g);
                    else
                        item_256(x0, dt + co0, a, &g);
                }
            }
        }
    }
#pragma omp parallel for schedule(static) if (par)
    for (int64_t co = 0; co < cout; co++)
        for (int64_t ci = 0; ci < cin; ci++)
            for (int64_t t = 0; t < taps; t++) dw[(co * cin + ci) * taps + t] += acc[(t * g.cip + ci) * g.cop + co];
}
