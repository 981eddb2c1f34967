/* Depthwise convolution, one channel plane at a time. Kernels up to 16 wide (all NASNet ones) copy
 * the plane into a zero-padded buffer and run the register-accumulating vector kernels of
 * conv2d_dw_corr.c; wider kernels use direct loops that compute, for every tap, the range of
 * output columns whose input lies inside the image. Planes are independent, so threads split
 * them with no shared writes; dw sums over the batch inside one thread per channel, in a fixed
 * order. */
#include "nn/ops/conv2d_dw.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_impl.h"

/* Output columns [*lo, *hi) whose input column ow*s + off lies in [0, w). */
static void col_range(int64_t off, int64_t s, int64_t w, int64_t ow, int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = (w - 1 - off) < 0 ? 0 : (w - 1 - off) / s + 1;
    if (b > ow) b = ow;
    *lo = a;
    *hi = b > a ? b : a;
}

/* one plane: x [H,W], w [KH,KW] -> y [OH,OW] (+=) */
NN_SIMD_CLONES static void plane_forward(const float *x, const float *wk, float *y, int64_t h, int64_t wd, int64_t kh, int64_t kw,
                          int64_t oh, int64_t ow, const nn_conv2d_params *p) {
    int64_t sh = p->stride_h, sw = p->stride_w;
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++) {
            float wv = wk[i * kw + j];
            int64_t off = j * p->dil_w - p->pad_l, lo, hi;
            col_range(off, sw, wd, ow, &lo, &hi);
            for (int64_t r = 0; r < oh; r++) {
                int64_t ih = r * sh - p->pad_t + i * p->dil_h;
                if (ih < 0 || ih >= h) continue;
                const float *xr = x + ih * wd;
                float *yr = y + r * ow;
                if (sw == 1) {
#pragma omp simd
                    for (int64_t c = lo; c < hi; c++) yr[c] += wv * xr[c + off];
                } else {
#pragma omp simd
                    for (int64_t c = lo; c < hi; c++) yr[c] += wv * xr[c * sw + off];
                }
            }
        }
}

void nn__dw_forward(nn_ctx *ctx, const float *x, const float *w, const float *b, float *y, int64_t n, int64_t c,
                    int64_t h, int64_t wd, int64_t kh, int64_t kw, int64_t oh, int64_t ow, const nn_conv2d_params *p) {
    nn__dw_forward_fused(ctx, x, w, b, y, n, c, h, wd, kh, kw, oh, ow, p, 0, NULL);
}

void nn__dw_forward_fused(nn_ctx *ctx, const float *x, const float *w, const float *b, float *y, int64_t n, int64_t c,
                          int64_t h, int64_t wd, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                          const nn_conv2d_params *p, int relu_in, const nn_conv_epi *epi) {
    if (relu_in && kw > NN_DW_FAST_MAXK) {
        /* The direct loops read x in place: rectify a copy first (no NASNet kernel is this wide). */
        float *r = nn__alloc(ctx, (size_t)(n * c * h * wd) * sizeof(float));
        for (int64_t i = 0; i < n * c * h * wd; i++) r[i] = x[i] > 0.0f ? x[i] : 0.0f;
        x = r;
    }
    /* Stride 1: the flat kernel computes the kw - 1 padding columns of every row and drops them
     * (none for kw = 1, where it stays); the row kernel's blocks of 2 vectors x 4 rows waste nothing when rows are whole multiples
     * of 32 columns (the 32x32 maps of CIFAR cells: 16% fewer products at 7x7). Both give the same
     * values. */
    int rows_whole = ow % 32 == 0 && kw > 1;
    if (kw <= NN_DW_FAST_MAXK && p->stride_h == 1 && p->stride_w == 1 && nn__dw_flat_ok() && !rows_whole) {
        /* Every plane of the call has the same padded geometry, so each thread zeroes its padded
         * plane once and then only copies each plane's interior. */
        int64_t ph = oh + (kh - 1) * p->dil_h, pw = ow + (kw - 1) * p->dil_w;
        int64_t per = (ph * pw + (oh - 1) * pw + ow + 31) / 16 * 16;
        int64_t work = n * c * oh * ow * kh * kw;
        float *ws = nn__scratch(ctx, (size_t)(per * omp_get_max_threads()) * sizeof(float));
#pragma omp parallel if (work > NN_PAR_MIN)
        {
            float *pad = ws + per * omp_get_thread_num(), *tmp = pad + ph * pw;
            memset(pad, 0, (size_t)(ph * pw) * sizeof(float));
#pragma omp for schedule(static)
            for (int64_t nc = 0; nc < n * c; nc++) {
                int64_t ch = nc % c;
                nn__dw_flat_plane(x + nc * h * wd, h, wd, relu_in, pad, ph, pw, p->pad_t, p->pad_l, w + ch * kh * kw,
                                  kh, kw, p->dil_h, p->dil_w, tmp, y + nc * oh * ow, oh, ow, b ? b + ch : NULL, epi, ch);
            }
        }
        return;
    }
    if (kw <= NN_DW_FAST_MAXK) {
        /* Pad each plane once, then the register-accumulating stride-1 kernel; a strided
         * convolution computes only its own rows (4 at a time) at every column, then keeps every
         * stride-th column. */
        int64_t sh = p->stride_h, sw = p->stride_w;
        int64_t ph = (oh - 1) * sh + (kh - 1) * p->dil_h + 1, pw = (ow - 1) * sw + (kw - 1) * p->dil_w + 1;
        /* Stride 2 across (dilation 1): the padded plane's even and odd columns as two planes,
         * and the kernel's even and odd columns as two kernels; each output is then two stride-1
         * correlations, of (kw+1)/2 and kw/2 columns, with no column computed to be dropped. */
        int phases = sw == 2 && p->dil_w == 1;
        int64_t pwe = (pw + 1) / 2, pwo = pw / 2, kwe = (kw + 1) / 2, kwo = kw / 2;
        int64_t ow1 = (ow - 1) * sw + 1;
        int64_t per = ph * pw + (phases ? ph * (pwe + pwo) + kh * kw : sw > 1 ? oh * ow1 : 0);
        float *ws = nn__scratch(ctx, (size_t)(per * omp_get_max_threads()) * sizeof(float));
        /* The padded plane has one geometry for the whole call: each thread zeroes its own once,
         * then each plane only overwrites the interior. */
        int64_t c0 = p->pad_l < 0 ? -p->pad_l : 0, c1 = wd < pw - p->pad_l ? wd : pw - p->pad_l;
        int64_t r0 = p->pad_t < 0 ? -p->pad_t : 0, r1 = h < ph - p->pad_t ? h : ph - p->pad_t;
#pragma omp parallel if (n * c * oh * ow * kh * kw > NN_PAR_MIN)
        {
            memset(ws + per * omp_get_thread_num(), 0, (size_t)(ph * pw) * sizeof(float));
#pragma omp for schedule(static)
            for (int64_t nc = 0; nc < n * c; nc++) {
                int64_t ch = nc % c;
                float *pad = ws + per * omp_get_thread_num(), *tmp = pad + ph * pw, *yp = y + nc * oh * ow;
                const float *xp = x + nc * h * wd;
                for (int64_t i = r0; i < r1 && c1 > c0; i++) {
                    const float *src = xp + i * wd + c0;
                    float *dst = pad + (p->pad_t + i) * pw + p->pad_l + c0;
                    if (relu_in)
                        for (int64_t q = 0; q < c1 - c0; q++) dst[q] = src[q] > 0.0f ? src[q] : 0.0f;
                    else
                        memcpy(dst, src, (size_t)(c1 - c0) * sizeof(float));
                }
                if (sw == 1) {
                    nn__dw_corr_rows(pad, pw, sh * pw, w + ch * kh * kw, kh, kw, p->dil_h, p->dil_w, yp, oh, ow, 0);
                } else if (phases) {
                    float *ev = tmp, *od = ev + ph * pwe, *we = od + ph * pwo, *wo = we + kh * kwe;
                    const float *wk = w + ch * kh * kw;
                    nn__dw_column_phases(pad, pw, ph, ev, od);
                    for (int64_t i = 0; i < kh; i++) {
                        for (int64_t t = 0; t < kwe; t++) we[i * kwe + t] = wk[i * kw + 2 * t];
                        for (int64_t t = 0; t < kwo; t++) wo[i * kwo + t] = wk[i * kw + 2 * t + 1];
                    }
                    nn__dw_corr_rows(ev, pwe, sh * pwe, we, kh, kwe, p->dil_h, 1, yp, oh, ow, 0);
                    if (kwo) nn__dw_corr_rows(od, pwo, sh * pwo, wo, kh, kwo, p->dil_h, 1, yp, oh, ow, 1);
                } else {
                    nn__dw_corr_rows(pad, pw, sh * pw, w + ch * kh * kw, kh, kw, p->dil_h, p->dil_w, tmp, oh, ow1, 0);
                    for (int64_t r = 0; r < oh; r++)
                        for (int64_t q = 0; q < ow; q++) yp[r * ow + q] = tmp[r * ow1 + q * sw];
                }
                if (b)
                    for (int64_t i = 0; i < oh * ow; i++) yp[i] += b[ch];
                if (epi) nn__conv_epi_apply(yp, oh * ow, epi, ch);
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (n * c * oh * ow * kh * kw > NN_PAR_MIN)
    for (int64_t nc = 0; nc < n * c; nc++) {
        int64_t ch = nc % c;
        float *yp = y + nc * oh * ow;
        float bv = b ? b[ch] : 0.0f;
        for (int64_t i = 0; i < oh * ow; i++) yp[i] = bv;
        plane_forward(x + nc * h * wd, w + ch * kh * kw, yp, h, wd, kh, kw, oh, ow, p);
        if (epi) nn__conv_epi_apply(yp, oh * ow, epi, ch);
    }
}

/* one plane: dy [OH,OW], w [KH,KW] -> dx [H,W] (+=) */
NN_SIMD_CLONES static void plane_backward_dx(const float *g, const float *wk, float *d, int64_t h, int64_t wd,
                                             int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                                             const nn_conv2d_params *p) {
    int64_t sh = p->stride_h, sw = p->stride_w;
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++) {
            float wv = wk[i * kw + j];
            int64_t off = j * p->dil_w - p->pad_l, lo, hi;
            col_range(off, sw, wd, ow, &lo, &hi);
            for (int64_t r = 0; r < oh; r++) {
                int64_t ih = r * sh - p->pad_t + i * p->dil_h;
                if (ih < 0 || ih >= h) continue;
                float *dr = d + ih * wd;
                const float *gr = g + r * ow;
                if (sw == 1) {
#pragma omp simd
                    for (int64_t q = lo; q < hi; q++) dr[q + off] += wv * gr[q];
                } else {
                    /* Strided scatter: a vector loop would need conflict-free scatters; keep it scalar. */
                    for (int64_t q = lo; q < hi; q++) dr[q * sw + off] += wv * gr[q];
                }
            }
        }
}

/* one plane's contribution to dw [KH,KW] (+=): x [H,W], dy [OH,OW] */
NN_SIMD_CLONES static void plane_backward_dw(const float *xp, const float *g, float *dwk, int64_t h, int64_t wd,
                                             int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                                             const nn_conv2d_params *p) {
    int64_t sh = p->stride_h, sw = p->stride_w;
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++) {
            int64_t off = j * p->dil_w - p->pad_l, lo, hi;
            col_range(off, sw, wd, ow, &lo, &hi);
            float acc = 0.0f;
            for (int64_t r = 0; r < oh; r++) {
                int64_t ih = r * sh - p->pad_t + i * p->dil_h;
                if (ih < 0 || ih >= h) continue;
                const float *xr = xp + ih * wd, *gr = g + r * ow;
                float s = 0.0f;
                if (sw == 1) {
#pragma omp simd reduction(+ : s)
                    for (int64_t q = lo; q < hi; q++) s += xr[q + off] * gr[q];
                } else {
#pragma omp simd reduction(+ : s)
                    for (int64_t q = lo; q < hi; q++) s += xr[q * sw + off] * gr[q];
                }
                acc += s;
            }
            dwk[i * kw + j] += acc;
        }
}

/* ---- stride > 1, dilation 1: one stride-1 problem per phase ----------------------------------
 * Spreading dy out by the stride (zeros between) makes the backward pass stride-1, but then
 * (sh*sw - 1)/(sh*sw) of the multiply-adds are by zero. Split by phase instead: the rows of dx
 * with a == pa (mod sh) receive only the taps i == (pa + pad_t) (mod sh), and with
 * i = i0 + sh*t, a = pa + sh*u they read dy row (pa + pad_t - i0)/sh + u - t, a stride-1
 * correlation over u with that sub-kernel; columns alike. For dw, the taps i = i0 + sh*t read
 * x rows sh*(r + t) + i0 - pad_t: the stride-1 weight gradient of dy against the (i0, j0) phase
 * plane of the padded input. */
/* NN_DW_SPREAD=1: the spread path for strided kernels too (A/B runs); read once. */
static int spread_forced(void) {
    static int forced = -1;
    if (forced < 0) {
        const char *v = getenv("NN_DW_SPREAD");
        forced = v && v[0] == '1';
    }
    return forced;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

/* Floats of per-thread scratch that dx_phases needs. */
static int64_t dx_phases_scratch(int64_t h, int64_t wd, int64_t kh, int64_t kw, int64_t sh, int64_t sw) {
    int64_t hu = ceil_div(h, sh), wu = ceil_div(wd, sw), kt = ceil_div(kh, sh), kq = ceil_div(kw, sw);
    return (hu + kt) * (wu + kq) + hu * wu + kt * kq;
}

/* One plane: dy [OH,OW], w [KH,KW] -> dx [H,W] (+=, or = when fresh). */
static void dx_phases(const float *g, const float *wk, float *d, int fresh, int64_t h, int64_t wd, int64_t kh,
                      int64_t kw, int64_t oh, int64_t ow, const nn_conv2d_params *p, float *ws) {
    int64_t sh = p->stride_h, sw = p->stride_w;
    for (int64_t pa = 0; pa < sh && pa < h; pa++) {
        int64_t hu = ceil_div(h - pa, sh), i0 = (pa + p->pad_t) % sh, kt = ceil_div(kh - i0, sh);
        int64_t r0 = (pa + p->pad_t - i0) / sh; /* dy row of u = 0, t = 0 */
        for (int64_t pb = 0; pb < sw && pb < wd; pb++) {
            int64_t wu = ceil_div(wd - pb, sw), j0 = (pb + p->pad_l) % sw, kq = ceil_div(kw - j0, sw);
            int64_t c0 = (pb + p->pad_l - j0) / sw;
            if (kt == 0 || kq == 0) { /* no tap reaches this phase */
                if (fresh)
                    for (int64_t u = 0; u < hu; u++)
                        for (int64_t v = 0; v < wu; v++) d[(pa + sh * u) * wd + pb + sw * v] = 0.0f;
                continue;
            }
            int64_t ph = hu + kt - 1, pw = wu + kq - 1;
            float *pad = ws, *out = pad + ph * pw, *fk = out + hu * wu;
            for (int64_t t = 0; t < kt; t++) /* the phase's taps, flipped: a correlation */
                for (int64_t q = 0; q < kq; q++) fk[t * kq + q] = wk[(i0 + sh * (kt - 1 - t)) * kw + j0 + sw * (kq - 1 - q)];
            nn__dw_pad_plane(g, oh, ow, 1, 1, pad, ph, pw, kt - 1 - r0, kq - 1 - c0, 0);
            nn__dw_corr_s1(pad, pw, fk, kt, kq, 1, 1, out, hu, wu, 0);
            for (int64_t u = 0; u < hu; u++) {
                float *row = d + (pa + sh * u) * wd + pb;
                const float *o = out + u * wu;
                if (fresh)
                    for (int64_t v = 0; v < wu; v++) row[sw * v] = o[v];
                else
                    for (int64_t v = 0; v < wu; v++) row[sw * v] += o[v];
            }
        }
    }
}

/* Floats of per-thread scratch that dw_phases needs. */
static int64_t dw_phases_scratch(int64_t oh, int64_t ow, int64_t kh, int64_t kw, int64_t sh, int64_t sw) {
    int64_t kt = ceil_div(kh, sh), kq = ceil_div(kw, sw);
    return (oh + kt) * (ow + kq) + kt * kq;
}

/* One plane's contribution to dw [KH,KW] (+=): x [H,W], dy [OH,OW]. */
static void dw_phases(const float *x, const float *g, float *dwk, int64_t h, int64_t wd, int64_t kh, int64_t kw,
                      int64_t oh, int64_t ow, const nn_conv2d_params *p, float *ws) {
    int64_t sh = p->stride_h, sw = p->stride_w;
    for (int64_t i0 = 0; i0 < sh && i0 < kh; i0++) {
        int64_t kt = ceil_div(kh - i0, sh), ph = oh + kt - 1;
        for (int64_t j0 = 0; j0 < sw && j0 < kw; j0++) {
            int64_t kq = ceil_div(kw - j0, sw), pw = ow + kq - 1;
            float *pl = ws, *sub = pl + ph * pw;
            for (int64_t y = 0; y < ph; y++) { /* pl[y][c] = x[sh*y + i0 - pad_t][sw*c + j0 - pad_l], 0 outside */
                int64_t iy = sh * y + i0 - p->pad_t;
                float *row = pl + y * pw;
                if (iy < 0 || iy >= h) {
                    memset(row, 0, (size_t)pw * sizeof(float));
                    continue;
                }
                const float *xr = x + iy * wd;
                for (int64_t c = 0; c < pw; c++) {
                    int64_t ix = sw * c + j0 - p->pad_l;
                    row[c] = ix >= 0 && ix < wd ? xr[ix] : 0.0f;
                }
            }
            memset(sub, 0, (size_t)(kt * kq) * sizeof(float));
            nn__dw_wgrad_s1(pl, pw, g, oh, ow, kt, kq, 1, 1, sub);
            for (int64_t t = 0; t < kt; t++)
                for (int64_t q = 0; q < kq; q++) dwk[(i0 + sh * t) * kw + j0 + sw * q] += sub[t * kq + q];
        }
    }
}

static void dw_backward_phases(nn_ctx *ctx, const float *x, const float *w, const float *dy, float *dx, int dx_fresh,
                               float *dw, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t kh, int64_t kw,
                               int64_t oh, int64_t ow, const nn_conv2d_params *p) {
    int64_t sh = p->stride_h, sw = p->stride_w;
    if (dx) {
        int64_t per = dx_phases_scratch(h, wd, kh, kw, sh, sw);
        float *ws = nn__scratch(ctx, (size_t)(per * omp_get_max_threads()) * sizeof(float));
#pragma omp parallel for schedule(static) if (n * c * oh * ow * kh * kw > NN_PAR_MIN)
        for (int64_t nc = 0; nc < n * c; nc++)
            dx_phases(dy + nc * oh * ow, w + (nc % c) * kh * kw, dx + nc * h * wd, dx_fresh, h, wd, kh, kw, oh, ow, p,
                      ws + per * omp_get_thread_num());
    }
    if (dw) {
        /* One thread per channel sums the batch in order: the result does not depend on threads. */
        int64_t per = dw_phases_scratch(oh, ow, kh, kw, sh, sw);
        float *ws = nn__scratch(ctx, (size_t)(per * omp_get_max_threads()) * sizeof(float));
#pragma omp parallel for schedule(static) if (n * c * oh * ow * kh * kw > NN_PAR_MIN)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t b = 0; b < n; b++)
                dw_phases(x + (b * c + ch) * h * wd, dy + (b * c + ch) * oh * ow, dw + ch * kh * kw, h, wd, kh, kw, oh,
                          ow, p, ws + per * omp_get_thread_num());
    }
}

void nn__dw_backward(nn_ctx *ctx, const float *x, const float *w, const float *dy, float *dx, int dx_fresh, float *dw,
                     int64_t n, int64_t c, int64_t h, int64_t wd, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                     const nn_conv2d_params *p) {
    /* Phases on large output planes only: on the detector stem's 159x159 -> 80x80 (7x7) they took
     * forward+backward from 6.0 to 5.0 ms, but on 32x32 -> 16x16 (5x5) they lost 16% (6.1 -> 7.1
     * ms; bench-nn, one thread, 2026-12-05) to their per-phase copies; the threshold lies between
     * the two measured sizes. NN_DW_SPREAD=1 forces the spread path (for A/B runs). */
    if ((p->stride_h > 1 || p->stride_w > 1) && p->dil_h == 1 && p->dil_w == 1 && kw <= NN_DW_FAST_MAXK &&
        oh * ow >= 1024 && !spread_forced()) {
        dw_backward_phases(ctx, x, w, dy, dx, dx_fresh, dw, n, c, h, wd, kh, kw, oh, ow, p);
        return;
    }
    if (dx && kw <= NN_DW_FAST_MAXK) {
        /* dx[a][b] = sum w[i][j] dy[(a + pad_t - i*dh)/sh][(b + pad_l - j*dw)/sw] (where divisible): a
         * stride-1 correlation, with the flipped kernel, of the output gradient spread out by the
         * stride and shifted by (kh-1)*dh - pad_t rows and (kw-1)*dw - pad_l columns. */
        int64_t ph = h + (kh - 1) * p->dil_h, pw = wd + (kw - 1) * p->dil_w;
        float *ws = nn__scratch(ctx, (size_t)((ph * pw + kh * kw) * omp_get_max_threads()) * sizeof(float));
#pragma omp parallel for schedule(static) if (n * c * oh * ow * kh * kw > NN_PAR_MIN)
        for (int64_t nc = 0; nc < n * c; nc++) {
            float *pad = ws + (ph * pw + kh * kw) * omp_get_thread_num(), *flip = pad + ph * pw;
            const float *wk = w + (nc % c) * kh * kw;
            for (int64_t i = 0; i < kh * kw; i++) flip[i] = wk[kh * kw - 1 - i];
            nn__dw_pad_plane(dy + nc * oh * ow, oh, ow, p->stride_h, p->stride_w, pad, ph, pw,
                             (kh - 1) * p->dil_h - p->pad_t, (kw - 1) * p->dil_w - p->pad_l, 0);
            nn__dw_corr_s1(pad, pw, flip, kh, kw, p->dil_h, p->dil_w, dx + nc * h * wd, h, wd, !dx_fresh);
        }
        dx = NULL; /* done */
    }
    if (dx) {
#pragma omp parallel for schedule(static) if (n * c * oh * ow * kh * kw > NN_PAR_MIN)
        for (int64_t nc = 0; nc < n * c; nc++) {
            if (dx_fresh) memset(dx + nc * h * wd, 0, (size_t)(h * wd) * sizeof(float));
            plane_backward_dx(dy + nc * oh * ow, w + (nc % c) * kh * kw, dx + nc * h * wd, h, wd, kh, kw, oh, ow, p);
        }
    }
    if (dw && kw <= NN_DW_FAST_MAXK) {
        /* dw[i][j] = sum dy[r][c] x_pad[r*sh + i*dh][c*sw + j*dw]: the output gradient spread out by
         * the stride (zeros between) against the padded input, stride 1. One thread per channel
         * sums the batch in order: the result does not depend on the thread count. */
        int64_t sh = p->stride_h, sw = p->stride_w, oh1 = (oh - 1) * sh + 1, ow1 = (ow - 1) * sw + 1;
        int64_t ph = oh1 + (kh - 1) * p->dil_h, pw = ow1 + (kw - 1) * p->dil_w;
        int64_t per = ph * pw + ((sh > 1 || sw > 1) ? oh1 * ow1 : 0);
        float *ws = nn__scratch(ctx, (size_t)(per * omp_get_max_threads()) * sizeof(float));
#pragma omp parallel for schedule(static) if (n * c * oh * ow * kh * kw > NN_PAR_MIN)
        for (int64_t ch = 0; ch < c; ch++) {
            float *pad = ws + per * omp_get_thread_num(), *up = pad + ph * pw;
            for (int64_t b = 0; b < n; b++) {
                const float *g = dy + (b * c + ch) * oh * ow;
                nn__dw_pad_plane(x + (b * c + ch) * h * wd, h, wd, 1, 1, pad, ph, pw, p->pad_t, p->pad_l, 0);
                if (sh > 1 || sw > 1) {
                    nn__dw_pad_plane(g, oh, ow, sh, sw, up, oh1, ow1, 0, 0, 0);
                    g = up;
                }
                nn__dw_wgrad_s1(pad, pw, g, oh1, ow1, kh, kw, p->dil_h, p->dil_w, dw + ch * kh * kw);
            }
        }
        dw = NULL; /* done */
    }
    if (dw) {
        /* One thread per channel sums the batch in order: the result does not depend on threads. */
#pragma omp parallel for schedule(static) if (n * c * oh * ow * kh * kw > NN_PAR_MIN)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t b = 0; b < n; b++)
                plane_backward_dw(x + (b * c + ch) * h * wd, dy + (b * c + ch) * oh * ow, dw + ch * kh * kw, h, wd, kh,
                                  kw, oh, ow, p);
    }
}
