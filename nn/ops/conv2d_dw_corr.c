/* The stride-1 depthwise kernel: out[r][c] (+)= sum_{i,j} w[i][j] * p[r + i*dh][c + j*dw] over a
 * zero-padded plane p, so there are no bounds tests at all. Each vector of 16 (AVX-512) or 8
 * (AVX2) outputs accumulates every tap in a register and is stored once. Used for the forward
 * pass (p = padded input) and for the input gradient (p = padded output gradient, w flipped). */
#include <immintrin.h>

#include "nn/nn_impl.h"
#include "nn/ops/conv2d_dw.h"

/* A block of up to 4 output rows x 2 vectors (8 independent accumulators: one chain of dependent
 * FMAs would wait out the FMA latency at every tap). Each output still adds its taps in the order
 * i, j, so the blocking changes no result. `rows` and `nv` are constants after inlining for the
 * full block. */
__attribute__((target("avx512f"), always_inline)) static inline void block_512(
    const float *p, int64_t pw, int64_t rstep, const float *w, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
    float *out, int64_t ow, int64_t r, int64_t c0, int rows, int nv, __mmask16 m0, __mmask16 m1, int accumulate) {
    __m512 a[4][2];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        a[q][0] = accumulate && q < rows ? _mm512_maskz_loadu_ps(m0, out + (r + q) * ow + c0) : _mm512_setzero_ps();
        a[q][1] = accumulate && q < rows && nv > 1 ? _mm512_maskz_loadu_ps(m1, out + (r + q) * ow + c0 + 16)
                                                   : _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < kh; i++) {
        const float *wr = w + i * kw;
        const float *base = p + r * rstep + i * dh * pw + c0;
        for (int64_t j = 0; j < kw; j++) {
            __m512 b = _mm512_set1_ps(wr[j]);
            const float *x = base + j * dw;
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                if (q >= rows) break;
                a[q][0] = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m0, x + q * rstep), a[q][0]);
                if (nv > 1) a[q][1] = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m1, x + q * rstep + 16), a[q][1]);
            }
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        if (q >= rows) break;
        _mm512_mask_storeu_ps(out + (r + q) * ow + c0, m0, a[q][0]);
        if (nv > 1) _mm512_mask_storeu_ps(out + (r + q) * ow + c0 + 16, m1, a[q][1]);
    }
}

/* p [oh + (kh-1)*dh, pw] -> out [oh, ow], ow = pw - (kw-1)*dw */
__attribute__((target("avx512f"))) static void corr_512(const float *p, int64_t pw, int64_t rstep, const float *w, int64_t kh,
                                                        int64_t kw, int64_t dh, int64_t dw, float *out, int64_t oh,
                                                        int64_t ow, int accumulate) {
    for (int64_t c0 = 0; c0 < ow; c0 += 32) {
        int64_t left = ow - c0;
        __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
        int nv = left > 16 ? 2 : 1;
        int64_t r = 0;
        if (nv == 2)
            for (; r + 4 <= oh; r += 4) block_512(p, pw, rstep, w, kh, kw, dh, dw, out, ow, r, c0, 4, 2, m0, m1, accumulate);
        else
            for (; r + 4 <= oh; r += 4) block_512(p, pw, rstep, w, kh, kw, dh, dw, out, ow, r, c0, 4, 1, m0, m1, accumulate);
        for (; r < oh; r++) block_512(p, pw, rstep, w, kh, kw, dh, dw, out, ow, r, c0, 1, nv, m0, m1, accumulate);
    }
}

/* The same with 8 lanes (the x86-64-v3 baseline): blocks of 4 rows x 2 vectors, the columns past
 * the last full vector through a scalar loop. */
__attribute__((always_inline)) static inline void block_256(const float *p, int64_t pw, int64_t rstep, const float *w, int64_t kh,
                                                            int64_t kw, int64_t dh, int64_t dw, float *out, int64_t ow,
                                                            int64_t r, int64_t c0, int rows, int nv, int accumulate) {
    __m256 a[4][2];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        a[q][0] = accumulate && q < rows ? _mm256_loadu_ps(out + (r + q) * ow + c0) : _mm256_setzero_ps();
        a[q][1] = accumulate && q < rows && nv > 1 ? _mm256_loadu_ps(out + (r + q) * ow + c0 + 8) : _mm256_setzero_ps();
    }
    for (int64_t i = 0; i < kh; i++) {
        const float *wr = w + i * kw;
        const float *base = p + r * rstep + i * dh * pw + c0;
        for (int64_t j = 0; j < kw; j++) {
            __m256 b = _mm256_broadcast_ss(wr + j);
            const float *x = base + j * dw;
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                if (q >= rows) break;
                a[q][0] = _mm256_fmadd_ps(b, _mm256_loadu_ps(x + q * rstep), a[q][0]);
                if (nv > 1) a[q][1] = _mm256_fmadd_ps(b, _mm256_loadu_ps(x + q * rstep + 8), a[q][1]);
            }
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        if (q >= rows) break;
        _mm256_storeu_ps(out + (r + q) * ow + c0, a[q][0]);
        if (nv > 1) _mm256_storeu_ps(out + (r + q) * ow + c0 + 8, a[q][1]);
    }
}

static void corr_256(const float *p, int64_t pw, int64_t rstep, const float *w, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                     float *out, int64_t oh, int64_t ow, int accumulate) {
    int64_t c0 = 0;
    for (; c0 + 8 <= ow; c0 += 16) {
        int nv = c0 + 16 <= ow ? 2 : 1;
        int64_t r = 0;
        if (nv == 2)
            for (; r + 4 <= oh; r += 4) block_256(p, pw, rstep, w, kh, kw, dh, dw, out, ow, r, c0, 4, 2, accumulate);
        else
            for (; r + 4 <= oh; r += 4) block_256(p, pw, rstep, w, kh, kw, dh, dw, out, ow, r, c0, 4, 1, accumulate);
        for (; r < oh; r++) block_256(p, pw, rstep, w, kh, kw, dh, dw, out, ow, r, c0, 1, nv, accumulate);
        if (nv == 1) {
            c0 += 8;
            break;
        }
    }
    for (int64_t r = 0; r < oh; r++)
        for (int64_t c = c0; c < ow; c++) {
            float s = accumulate ? out[r * ow + c] : 0.0f;
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++) s += w[i * kw + j] * p[r * rstep + i * dh * pw + c + j * dw];
            out[r * ow + c] = s;
        }
}

void nn__dw_corr_rows(const float *p, int64_t pw, int64_t rstep, const float *w, int64_t kh, int64_t kw, int64_t dh,
                      int64_t dw, float *out, int64_t oh, int64_t ow, int accumulate) {
    if (nn__cpu_avx512())
        corr_512(p, pw, rstep, w, kh, kw, dh, dw, out, oh, ow, accumulate);
    else
        corr_256(p, pw, rstep, w, kh, kw, dh, dw, out, oh, ow, accumulate);
}

void nn__dw_corr_s1(const float *p, int64_t pw, const float *w, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                    float *out, int64_t oh, int64_t ow, int accumulate) {
    nn__dw_corr_rows(p, pw, pw, w, kh, kw, dh, dw, out, oh, ow, accumulate);
}

/* Column phases of rows: ev[r][q] = p[r][2q] (q < (pw+1)/2), od[r][q] = p[r][2q+1] (q < pw/2), for
 * rows r < rows of p (stride pw); AVX-512 splits 32 values with two permutes. */
__attribute__((target("avx512f"))) static void phases_512(const float *p, int64_t pw, int64_t rows, float *ev,
                                                          float *od) {
    int64_t pwe = (pw + 1) / 2, pwo = pw / 2;
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t r = 0; r < rows; r++) {
        const float *s = p + r * pw;
        float *e = ev + r * pwe, *o = od + r * pwo;
        for (int64_t c = 0; c < pw; c += 32) {
            int64_t left = pw - c;
            __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            __m512 a = _mm512_maskz_loadu_ps(m0, s + c), b = _mm512_maskz_loadu_ps(m1, s + c + 16);
            int64_t ne = pwe - c / 2 < 16 ? pwe - c / 2 : 16, no = pwo - c / 2 < 16 ? pwo - c / 2 : 16;
            _mm512_mask_storeu_ps(e + c / 2, (__mmask16)((1u << ne) - 1), _mm512_permutex2var_ps(a, ie, b));
            if (no > 0) _mm512_mask_storeu_ps(o + c / 2, (__mmask16)((1u << no) - 1), _mm512_permutex2var_ps(a, io, b));
        }
    }
}

void nn__dw_column_phases(const float *p, int64_t pw, int64_t rows, float *ev, float *od) {
    if (nn__cpu_avx512()) {
        phases_512(p, pw, rows, ev, od);
        return;
    }
    int64_t pwe = (pw + 1) / 2, pwo = pw / 2;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t q = 0; q < pwe; q++) ev[r * pwe + q] = p[r * pw + 2 * q];
        for (int64_t q = 0; q < pwo; q++) od[r * pwo + q] = p[r * pw + 2 * q + 1];
    }
}

/* dst[0, n) = src[0, n) (relu: max(src, 0)), in 8-wide vectors: rows of a small plane are too
 * short for memcpy's call and dispatch to pay off. */
static inline void copy_row(float *dst, const float *src, int64_t n, int relu) {
    int64_t q = 0;
    if (relu) {
        const __m256 z = _mm256_setzero_ps();
        for (; q + 8 <= n; q += 8) _mm256_storeu_ps(dst + q, _mm256_max_ps(_mm256_loadu_ps(src + q), z));
        for (; q < n; q++) dst[q] = src[q] > 0.0f ? src[q] : 0.0f;
        return;
    }
    for (; q + 8 <= n; q += 8) _mm256_storeu_ps(dst + q, _mm256_loadu_ps(src + q));
    for (; q < n; q++) dst[q] = src[q];
}

static inline void zero_row(float *dst, int64_t n) {
    int64_t q = 0;
    for (; q + 8 <= n; q += 8) _mm256_storeu_ps(dst + q, _mm256_setzero_ps());
    for (; q < n; q++) dst[q] = 0.0f;
}

void nn__dw_pad_plane(const float *src, int64_t h, int64_t w, int64_t sh, int64_t sw, float *dst, int64_t ph,
                      int64_t pw, int64_t top, int64_t left, int relu) {
    if (sh != 1 || sw != 1) {
        memset(dst, 0, (size_t)(ph * pw) * sizeof(float));
        for (int64_t i = 0; i < h; i++) {
            int64_t r = top + i * sh;
            if (r < 0 || r >= ph) continue;
            for (int64_t c = 0; c < w; c++) {
                int64_t q = left + c * sw;
                float v = src[i * w + c];
                if (q >= 0 && q < pw) dst[r * pw + q] = relu && !(v > 0.0f) ? 0.0f : v;
            }
        }
        return;
    }
    /* Each row written once: zeros, the source columns that land inside, zeros. */
    int64_t c0 = left < 0 ? -left : 0, c1 = w < pw - left ? w : pw - left;
    for (int64_t r = 0; r < ph; r++) {
        float *d = dst + r * pw;
        int64_t i = r - top;
        if (i < 0 || i >= h || c1 <= c0) {
            zero_row(d, pw);
            continue;
        }
        zero_row(d, c0 + left);
        copy_row(d + c0 + left, src + i * w + c0, c1 - c0, relu);
        zero_row(d + c1 + left, pw - (c1 + left));
    }
}

/* Weight gradient of one plane, stride 1: dwk[i][j] += sum_{r,c} dy[r][c] * p[r + i*dh][c + j*dw]
 * with p the zero-padded input. For each kernel row, vector accumulators per kernel column collect
 * all rows and columns and are reduced once at the end. The common widths 3, 5 and 7 get kernels
 * with the width a constant and two rows in flight (2*kw independent accumulators in registers);
 * other widths (at most NN_DW_FAST_MAXK) the generic loop. */
__attribute__((target("avx512f"), always_inline)) static inline void wgrad_fixed_512(
    const float *p, int64_t pw, const float *dy, int64_t oh, int64_t ow, int64_t kh, const int kw, int64_t dh,
    int64_t dw, float *dwk) {
    for (int64_t i = 0; i < kh; i++) {
        __m512 a0[7], a1[7];
#pragma GCC unroll 7
        for (int j = 0; j < kw; j++) a0[j] = a1[j] = _mm512_setzero_ps();
        int64_t r = 0;
        for (; r + 2 <= oh; r += 2) {
            const float *row0 = p + (r + i * dh) * pw, *row1 = row0 + pw, *g0 = dy + r * ow, *g1 = g0 + ow;
            for (int64_t c0 = 0; c0 < ow; c0 += 16) {
                __mmask16 m = ow - c0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ow - c0)) - 1);
                __m512 gv0 = _mm512_maskz_loadu_ps(m, g0 + c0), gv1 = _mm512_maskz_loadu_ps(m, g1 + c0);
#pragma GCC unroll 7
                for (int j = 0; j < kw; j++) {
                    a0[j] = _mm512_fmadd_ps(gv0, _mm512_maskz_loadu_ps(m, row0 + c0 + j * dw), a0[j]);
                    a1[j] = _mm512_fmadd_ps(gv1, _mm512_maskz_loadu_ps(m, row1 + c0 + j * dw), a1[j]);
                }
            }
        }
        if (r < oh) {
            const float *row0 = p + (r + i * dh) * pw, *g0 = dy + r * ow;
            for (int64_t c0 = 0; c0 < ow; c0 += 16) {
                __mmask16 m = ow - c0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ow - c0)) - 1);
                __m512 gv0 = _mm512_maskz_loadu_ps(m, g0 + c0);
#pragma GCC unroll 7
                for (int j = 0; j < kw; j++)
                    a0[j] = _mm512_fmadd_ps(gv0, _mm512_maskz_loadu_ps(m, row0 + c0 + j * dw), a0[j]);
            }
        }
#pragma GCC unroll 7
        for (int j = 0; j < kw; j++) dwk[i * kw + j] += _mm512_reduce_add_ps(_mm512_add_ps(a0[j], a1[j]));
    }
}

__attribute__((target("avx512f"))) static void wgrad_512(const float *p, int64_t pw, const float *dy, int64_t oh,
                                                         int64_t ow, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                                                         float *dwk) {
    switch (kw) {
    case 3: wgrad_fixed_512(p, pw, dy, oh, ow, kh, 3, dh, dw, dwk); return;
    case 5: wgrad_fixed_512(p, pw, dy, oh, ow, kh, 5, dh, dw, dwk); return;
    case 7: wgrad_fixed_512(p, pw, dy, oh, ow, kh, 7, dh, dw, dwk); return;
    default: break;
    }
    for (int64_t i = 0; i < kh; i++) {
        __m512 acc[NN_DW_FAST_MAXK];
        for (int64_t j = 0; j < kw; j++) acc[j] = _mm512_setzero_ps();
        for (int64_t r = 0; r < oh; r++) {
            const float *row = p + (r + i * dh) * pw, *g = dy + r * ow;
            for (int64_t c0 = 0; c0 < ow; c0 += 16) {
                __mmask16 m = ow - c0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ow - c0)) - 1);
                __m512 gv = _mm512_maskz_loadu_ps(m, g + c0);
                for (int64_t j = 0; j < kw; j++)
                    acc[j] = _mm512_fmadd_ps(gv, _mm512_maskz_loadu_ps(m, row + c0 + j * dw), acc[j]);
            }
        }
        for (int64_t j = 0; j < kw; j++) dwk[i * kw + j] += _mm512_reduce_add_ps(acc[j]);
    }
}

static void wgrad_256(const float *p, int64_t pw, const float *dy, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
                      int64_t dh, int64_t dw, float *dwk) {
    for (int64_t i = 0; i < kh; i++) {
        __m256 acc[NN_DW_FAST_MAXK];
        float tail[NN_DW_FAST_MAXK] = {0};
        for (int64_t j = 0; j < kw; j++) acc[j] = _mm256_setzero_ps();
        for (int64_t r = 0; r < oh; r++) {
            const float *row = p + (r + i * dh) * pw, *g = dy + r * ow;
            int64_t c0 = 0;
            for (; c0 + 8 <= ow; c0 += 8) {
                __m256 gv = _mm256_loadu_ps(g + c0);
                for (int64_t j = 0; j < kw; j++)
                    acc[j] = _mm256_fmadd_ps(gv, _mm256_loadu_ps(row + c0 + j * dw), acc[j]);
            }
            for (; c0 < ow; c0++)
                for (int64_t j = 0; j < kw; j++) tail[j] += g[c0] * row[c0 + j * dw];
        }
        for (int64_t j = 0; j < kw; j++) {
            float v[8];
            _mm256_storeu_ps(v, acc[j]);
            dwk[i * kw + j] += ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])) + tail[j];
        }
    }
}

int nn__dw_wgrad_s1(const float *p, int64_t pw, const float *dy, int64_t oh, int64_t ow, int64_t kh, int64_t kw,
                    int64_t dh, int64_t dw, float *dwk) {
    if (kw > NN_DW_FAST_MAXK) return 0;
    if (nn__cpu_avx512())
        wgrad_512(p, pw, dy, oh, ow, kh, kw, dh, dw, dwk);
    else
        wgrad_256(p, pw, dy, oh, ow, kh, kw, dh, dw, dwk);
    return 1;
}

/* ---- the flat stride-1 plane kernel (AVX-512) ----------------------------------------------
 * A padded plane [ph, pw] read as one row: output position p = r*pw + c is
 *   out[p] = sum_{i,j} w[i][j] * pad[p + i*dh*pw + j*dw],
 * so each vector of 16 consecutive positions needs one load and one FMA per tap, whatever the
 * plane's width. The row kernel above fills a vector with one output row, which leaves most
 * lanes idle on the 7x7 and 14x14 maps of a network's last stages; the flat one wastes only the
 * kw - 1 padding columns per row. The positions past each row's end are computed and dropped
 * when the rows are copied out. Each lane adds its taps in the order i, j from zero, as the row
 * kernel does, so both give the same values. */

/* nv vectors (a constant after inlining) of positions [q, q + 16*nv), the last ones masked to n. */
__attribute__((target("avx512f"), always_inline)) static inline void flat_block_512(
    const float *pad, const int64_t *off, const float *w, int64_t taps, float *out, int64_t q, int64_t n, int nv,
    int full) {
    __m512 a[8];
    __mmask16 m[8];
#pragma GCC unroll 8
    for (int v = 0; v < 8; v++) {
        a[v] = _mm512_setzero_ps();
        int64_t r = n - q - 16 * v;
        m[v] = full || r >= 16 ? (__mmask16)0xFFFF : r <= 0 ? (__mmask16)0 : (__mmask16)((1u << r) - 1);
    }
    for (int64_t t = 0; t < taps; t++) {
        __m512 b = _mm512_set1_ps(w[t]);
        const float *x = pad + q + off[t];
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) {
            if (v >= nv) break;
            __m512 xv = full ? _mm512_loadu_ps(x + 16 * v) : _mm512_maskz_loadu_ps(m[v], x + 16 * v);
            a[v] = _mm512_fmadd_ps(b, xv, a[v]);
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < 8; v++) {
        if (v >= nv) break;
        if (full)
            _mm512_storeu_ps(out + q + 16 * v, a[v]);
        else
            _mm512_mask_storeu_ps(out + q + 16 * v, m[v], a[v]);
    }
}

__attribute__((target("avx512f"))) static void flat_corr_512(const float *pad, const int64_t *off, const float *w,
                                                             int64_t taps, float *out, int64_t n) {
    int64_t q = 0;
    for (; q + 128 <= n; q += 128) flat_block_512(pad, off, w, taps, out, q, n, 8, 1);
    int nv = (int)((n - q + 15) / 16);
    switch (nv) {
    case 0: break;
    case 1: flat_block_512(pad, off, w, taps, out, q, n, 1, 0); break;
    case 2: flat_block_512(pad, off, w, taps, out, q, n, 2, 0); break;
    case 3: flat_block_512(pad, off, w, taps, out, q, n, 3, 0); break;
    case 4: flat_block_512(pad, off, w, taps, out, q, n, 4, 0); break;
    case 5: flat_block_512(pad, off, w, taps, out, q, n, 5, 0); break;
    case 6: flat_block_512(pad, off, w, taps, out, q, n, 6, 0); break;
    case 7: flat_block_512(pad, off, w, taps, out, q, n, 7, 0); break;
    default: flat_block_512(pad, off, w, taps, out, q, n, 8, 0); break;
    }
}

static inline __mmask16 tail_mask(int64_t r) { return r >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << r) - 1); }

/* dst[0, n) = src[0, n), or max(src, 0) with relu. */
__attribute__((target("avx512f"), always_inline)) static inline void copy_row_512(float *dst, const float *src,
                                                                                 int64_t n, int relu) {
    const __m512 z = _mm512_setzero_ps();
    for (int64_t q = 0; q < n; q += 16) {
        __mmask16 m = tail_mask(n - q);
        __m512 v = _mm512_maskz_loadu_ps(m, src + q);
        if (relu) v = _mm512_max_ps(v, z);
        _mm512_mask_storeu_ps(dst + q, m, v);
    }
}

/* out row [0, n) = flat row, + bias, then the epilogue (multiply, add and ReLU apart, as
 * nn__conv_epi_apply). */
__attribute__((target("avx512f"), always_inline)) static inline void store_row_512(float *dst, const float *src,
                                                                                  int64_t n, const float *bias,
                                                                                  float sc, float sh, int scale,
                                                                                  int relu) {
    const __m512 z = _mm512_setzero_ps();
    for (int64_t q = 0; q < n; q += 16) {
        __mmask16 m = tail_mask(n - q);
        __m512 v = _mm512_maskz_loadu_ps(m, src + q);
        if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(*bias));
        if (scale) v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(sc)), _mm512_set1_ps(sh));
        if (relu) v = _mm512_max_ps(v, z);
        _mm512_mask_storeu_ps(dst + q, m, v);
    }
}

int nn__dw_flat_ok(void) { return nn__cpu_avx512(); }

__attribute__((target("avx512f"))) void nn__dw_flat_plane(const float *x, int64_t h, int64_t wd, int relu,
                                                          float *pad, int64_t ph, int64_t pw, int64_t top,
                                                          int64_t left, const float *w, int64_t kh, int64_t kw,
                                                          int64_t dh, int64_t dw, float *tmp, float *y, int64_t oh,
                                                          int64_t ow, const float *bias, const nn_conv_epi *epi,
                                                          int64_t ch) {
    /* The interior: the source rows and columns that land inside the padded plane. */
    int64_t c0 = left < 0 ? -left : 0, c1 = wd < pw - left ? wd : pw - left;
    int64_t r0 = top < 0 ? -top : 0, r1 = h < ph - top ? h : ph - top;
    /* The flags are constants in each loop (the row helpers are inlined). */
    if (c1 > c0 && relu)
        for (int64_t i = r0; i < r1; i++) copy_row_512(pad + (top + i) * pw + left + c0, x + i * wd + c0, c1 - c0, 1);
    else if (c1 > c0)
        for (int64_t i = r0; i < r1; i++) copy_row_512(pad + (top + i) * pw + left + c0, x + i * wd + c0, c1 - c0, 0);
    int64_t taps = kh * kw, off[taps];
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++) off[i * kw + j] = i * dh * pw + j * dw;
    flat_corr_512(pad, off, w, taps, tmp, (oh - 1) * pw + ow);
    int scale = epi && epi->scale, rl = epi && epi->relu;
    float sc = scale ? epi->scale[ch] : 1.0f, sh = scale ? epi->shift[ch] : 0.0f;
    if (!bias && !scale && !rl)
        for (int64_t r = 0; r < oh; r++) store_row_512(y + r * ow, tmp + r * pw, ow, NULL, 1.0f, 0.0f, 0, 0);
    else
        for (int64_t r = 0; r < oh; r++) store_row_512(y + r * ow, tmp + r * pw, ow, bias, sc, sh, scale, rl);
}
