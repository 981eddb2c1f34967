/* The stride-1 depthwise kernel: out[r][c] (+)= sum_{i,j} w[i][j] * p[r + i*dh][c + j*dw] over a
 * zero-padded plane p, so there are no bounds tests at all. Each vector of 16 (AVX-512) or 8
 * (AVX2) outputs accumulates every tap in a register and is stored once. Used for the forward
 * pass (p = padded input) and for the input gradient (p = padded output gradient, w flipped). */
#include <immintrin.h>

#include "nn/nn_impl.h"
#include "nn/ops/conv2d_dw.h"

/* p [oh + (kh-1)*dh, pw] -> out [oh, ow], ow = pw - (kw-1)*dw */
__attribute__((target("avx512f"))) static void corr_512(const float *p, int64_t pw, const float *w, int64_t kh,
                                                        int64_t kw, int64_t dh, int64_t dw, float *out, int64_t oh,
                                                        int64_t ow, int accumulate) {
    for (int64_t r = 0; r < oh; r++)
        for (int64_t c0 = 0; c0 < ow; c0 += 16) {
            __mmask16 m = ow - c0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (ow - c0)) - 1);
            float *o = out + r * ow + c0;
            __m512 acc = accumulate ? _mm512_maskz_loadu_ps(m, o) : _mm512_setzero_ps();
            for (int64_t i = 0; i < kh; i++) {
                const float *row = p + (r + i * dh) * pw + c0;
                const float *wr = w + i * kw;
                for (int64_t j = 0; j < kw; j++)
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(wr[j]), _mm512_maskz_loadu_ps(m, row + j * dw), acc);
            }
            _mm512_mask_storeu_ps(o, m, acc);
        }
}

/* The same with 8 lanes (the x86-64-v3 baseline); the tail columns go through a scalar loop. */
static void corr_256(const float *p, int64_t pw, const float *w, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                     float *out, int64_t oh, int64_t ow, int accumulate) {
    for (int64_t r = 0; r < oh; r++) {
        int64_t c0 = 0;
        for (; c0 + 8 <= ow; c0 += 8) {
            float *o = out + r * ow + c0;
            __m256 acc = accumulate ? _mm256_loadu_ps(o) : _mm256_setzero_ps();
            for (int64_t i = 0; i < kh; i++) {
                const float *row = p + (r + i * dh) * pw + c0;
                for (int64_t j = 0; j < kw; j++)
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(w[i * kw + j]), _mm256_loadu_ps(row + j * dw), acc);
            }
            _mm256_storeu_ps(o, acc);
        }
        for (; c0 < ow; c0++) {
            float s = accumulate ? out[r * ow + c0] : 0.0f;
            for (int64_t i = 0; i < kh; i++)
                for (int64_t j = 0; j < kw; j++) s += w[i * kw + j] * p[(r + i * dh) * pw + c0 + j * dw];
            out[r * ow + c0] = s;
        }
    }
}

void nn__dw_corr_s1(const float *p, int64_t pw, const float *w, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                    float *out, int64_t oh, int64_t ow, int accumulate) {
    if (nn__cpu_avx512())
        corr_512(p, pw, w, kh, kw, dh, dw, out, oh, ow, accumulate);
    else
        corr_256(p, pw, w, kh, kw, dh, dw, out, oh, ow, accumulate);
}

void nn__dw_pad_plane(const float *src, int64_t h, int64_t w, int64_t sh, int64_t sw, float *dst, int64_t ph,
                      int64_t pw, int64_t top, int64_t left) {
    memset(dst, 0, (size_t)(ph * pw) * sizeof(float));
    for (int64_t i = 0; i < h; i++) {
        int64_t r = top + i * sh;
        if (r < 0 || r >= ph) continue;
        float *d = dst + r * pw;
        const float *s = src + i * w;
        if (sw == 1) {
            /* Columns of src that land inside dst. */
            int64_t c0 = left < 0 ? -left : 0, c1 = w < pw - left ? w : pw - left;
            if (c1 > c0) memcpy(d + c0 + left, s + c0, (size_t)(c1 - c0) * sizeof(float));
        } else {
            for (int64_t c = 0; c < w; c++) {
                int64_t q = left + c * sw;
                if (q >= 0 && q < pw) d[q] = s[c];
            }
        }
    }
}

/* Weight gradient of one plane, stride 1: dwk[i][j] += sum_{r,c} dy[r][c] * p[r + i*dh][c + j*dw]
 * with p the zero-padded input. For each kernel row, one vector accumulator per kernel column
 * (at most NN_DW_FAST_MAXK) collects all rows and columns; they are reduced once at the end. */
__attribute__((target("avx512f"))) static void wgrad_512(const float *p, int64_t pw, const float *dy, int64_t oh,
                                                         int64_t ow, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                                                         float *dwk) {
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
