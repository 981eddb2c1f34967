/* The register-tiled kernels of the direct convolution (nn/ops/conv2d_direct.h): the flat
 * correlation out[co][p] (+)= sum_ci sum_tap w[co][ci][tap] * in[ci][p + off[tap]] and the weight
 * packing it reads. AVX-512 tiles are 8 channels x 48 positions (24 accumulators), AVX2 tiles
 * 4 x 24 (12); full tiles use plain loads (AVX-512: from a packed copy of the input block), the
 * last one masked loads of just enough vectors, so nothing past p1 is read. Input channels go in
 * blocks whose partial sums pass through the output, which leaves each lane's sequence of
 * additions (and so every result) the same whatever the blocking, the tile or the vector width. */
#include <immintrin.h>

#include "nn/nn_impl.h"
#include "nn/ops/conv2d_direct.h"

#define CO512 8
#define CO256 4

int64_t nn__flat_cot(void) { return nn__cpu_avx512() ? CO512 : CO256; }

int64_t nn__flat_packed_size(int64_t cout, int64_t cin, int64_t taps) {
    int64_t cot = nn__flat_cot();
    return (cout + cot - 1) / cot * cot * cin * taps;
}

void nn__flat_pack(const float *w, int64_t cout, int64_t cin, int64_t kh, int64_t kw, int transpose, float *wp) {
    int64_t cot = nn__flat_cot(), taps = kh * kw, nt = (cout + cot - 1) / cot;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t ci = 0; ci < cin; ci++)
            for (int64_t k = 0; k < taps; k++)
                for (int64_t j = 0; j < cot; j++) {
                    int64_t co = t * cot + j;
                    float v = 0.0f;
                    if (co < cout)
                        v = transpose ? w[(ci * cout + co) * taps + (taps - 1 - k)] : w[(co * cin + ci) * taps + k];
                    wp[((t * cin + ci) * taps + k) * cot + j] = v;
                }
}

/* ---- AVX-512 ------------------------------------------------------------------------------ */

/* One tile: channels [0, rows) of the packed tile w, positions [p, p + 48); `full` (a constant
 * after inlining) selects plain loads, else the masks m. */
__attribute__((target("avx512f"), always_inline)) static inline void tile_512(
    const float *in, int64_t is, int64_t cin, const int64_t *off, int64_t taps, const float *w, int64_t rows,
    float *out, int64_t os, const __mmask16 *m, int full, int nv, int accumulate) {
    __m512 a[CO512][3];
#pragma GCC unroll 8
    for (int j = 0; j < CO512; j++)
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++) {
            const float *o = out + j * os + 16 * v;
            if (accumulate && j < rows && v < nv)
                a[j][v] = full ? _mm512_loadu_ps(o) : _mm512_maskz_loadu_ps(m[v], o);
            else
                a[j][v] = _mm512_setzero_ps();
        }
    for (int64_t ci = 0; ci < cin; ci++) {
        const float *xc = in + ci * is;
        for (int64_t t = 0; t < taps; t++, w += CO512) {
            const float *xt = xc + off[t];
            __m512 x0 = full ? _mm512_loadu_ps(xt) : _mm512_maskz_loadu_ps(m[0], xt);
            __m512 x1 = nv < 2 ? x0 : full ? _mm512_loadu_ps(xt + 16) : _mm512_maskz_loadu_ps(m[1], xt + 16);
            __m512 x2 = nv < 3 ? x0 : full ? _mm512_loadu_ps(xt + 32) : _mm512_maskz_loadu_ps(m[2], xt + 32);
#pragma GCC unroll 8
            for (int j = 0; j < CO512; j++) {
                __m512 b = _mm512_set1_ps(w[j]);
                a[j][0] = _mm512_fmadd_ps(b, x0, a[j][0]);
                if (nv > 1) a[j][1] = _mm512_fmadd_ps(b, x1, a[j][1]);
                if (nv > 2) a[j][2] = _mm512_fmadd_ps(b, x2, a[j][2]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < CO512; j++) {
        if (j >= rows) break;
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            float *o = out + j * os + 16 * v;
            if (full)
                _mm512_storeu_ps(o, a[j][v]);
            else
                _mm512_mask_storeu_ps(o, m[v], a[j][v]);
        }
    }
}

/* Input channels per pass over an unpacked tile: the block's slab of the input (positions plus
 * the widest tap offset) stays within 16 KiB of L1 while every channel tile reads it. */
static int64_t channel_block(const int64_t *off, int64_t taps, int64_t positions) {
    int64_t span = (positions + off[taps - 1]) * (int64_t)sizeof(float);
    int64_t cb = ((int64_t)16 << 10) / span;
    return cb < 8 ? 8 : cb;
}

/* Full AVX-512 tiles read a packed copy of their input block, [channel][tap][48 positions]
 * contiguous and aligned: the kernel's loads then neither split cache lines (the taps' shifts make
 * nearly every direct load unaligned) nor hop between planes, and the block stays in L1 while
 * every channel tile reads it. At most this many floats (24 KiB) per block. */
#define PACK_FLOATS 6144

__attribute__((target("avx512f"))) static void corr_512(const float *in, int64_t is, int64_t cin, const int64_t *off,
                                                        int64_t taps, const float *wp, int64_t cout, float *out,
                                                        int64_t os, int64_t p0, int64_t p1, int accumulate) {
    int64_t nt = (cout + CO512 - 1) / CO512, wstride = cin * taps * CO512;
    const __mmask16 all[3] = {0xFFFF, 0xFFFF, 0xFFFF};
    int64_t p = p0;
    int64_t pcb = PACK_FLOATS / (taps * 48);
    if (pcb > 0 && p + 48 <= p1) {
        _Alignas(64) float pack[PACK_FLOATS];
        int64_t poff[taps];
        for (int64_t t = 0; t < taps; t++) poff[t] = t * 48;
        /* Position-major: one packed block serves every channel tile. */
        for (; p + 48 <= p1; p += 48)
            for (int64_t c0 = 0; c0 < cin; c0 += pcb) {
                int64_t nc = cin - c0 < pcb ? cin - c0 : pcb;
                for (int64_t c = 0; c < nc; c++)
                    for (int64_t t = 0; t < taps; t++) {
                        const float *src = in + (c0 + c) * is + p + off[t];
                        float *dst = pack + (c * taps + t) * 48;
                        _mm512_store_ps(dst, _mm512_loadu_ps(src));
                        _mm512_store_ps(dst + 16, _mm512_loadu_ps(src + 16));
                        _mm512_store_ps(dst + 32, _mm512_loadu_ps(src + 32));
                    }
                for (int64_t t = 0; t < nt; t++) {
                    int64_t rows = cout - t * CO512 < CO512 ? cout - t * CO512 : CO512;
                    const float *w = wp + t * wstride + c0 * taps * CO512;
                    float *o = out + t * CO512 * os + p;
                    int acc = accumulate || c0 > 0;
                    /* 1x1 and 3x3 get copies with the tap count a constant (no inner loop,
                     * or a fully unrolled one). */
                    if (taps == 1 && acc)
                        tile_512(pack, 48, nc, poff, 1, w, rows, o, os, all, 1, 3, 1);
                    else if (taps == 1)
                        tile_512(pack, 48, nc, poff, 1, w, rows, o, os, all, 1, 3, 0);
                    else if (taps == 9 && acc)
                        tile_512(pack, 9 * 48, nc, poff, 9, w, rows, o, os, all, 1, 3, 1);
                    else if (taps == 9)
                        tile_512(pack, 9 * 48, nc, poff, 9, w, rows, o, os, all, 1, 3, 0);
                    else if (acc)
                        tile_512(pack, taps * 48, nc, poff, taps, w, rows, o, os, all, 1, 3, 1);
                    else
                        tile_512(pack, taps * 48, nc, poff, taps, w, rows, o, os, all, 1, 3, 0);
                }
            }
    }
    /* Unpacked full tiles (kernels too large to pack), in channel blocks that keep the input
     * slab within 16 KiB; the partial sums pass through the output between blocks, which leaves
     * each lane's sequence of additions unchanged. */
    int64_t cb = channel_block(off, taps, 48);
    for (; p + 48 <= p1; p += 48)
        for (int64_t c0 = 0; c0 < cin; c0 += cb) {
            int64_t nc = cin - c0 < cb ? cin - c0 : cb;
            const float *inb = in + c0 * is + p;
            for (int64_t t = 0; t < nt; t++) {
                int64_t rows = cout - t * CO512 < CO512 ? cout - t * CO512 : CO512;
                const float *w = wp + t * wstride + c0 * taps * CO512;
                float *o = out + t * CO512 * os + p;
                if (accumulate || c0 > 0)
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, all, 1, 3, 1);
                else
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, all, 1, 3, 0);
            }
        }
    if (p < p1) {
        /* The last positions: a tile of just enough vectors (1 to 3), masked. */
        __mmask16 m[3];
        for (int v = 0; v < 3; v++) {
            int64_t r = p1 - p - 16 * v;
            m[v] = r >= 16 ? (__mmask16)0xFFFF : r <= 0 ? (__mmask16)0 : (__mmask16)((1u << r) - 1);
        }
        int nv = (int)((p1 - p + 15) / 16);
        for (int64_t c0 = 0; c0 < cin; c0 += cb) {
            int64_t nc = cin - c0 < cb ? cin - c0 : cb;
            const float *inb = in + c0 * is + p;
            for (int64_t t = 0; t < nt; t++) {
                int64_t rows = cout - t * CO512 < CO512 ? cout - t * CO512 : CO512;
                const float *w = wp + t * wstride + c0 * taps * CO512;
                float *o = out + t * CO512 * os + p;
                int acc = accumulate || c0 > 0;
                if (nv == 1)
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, m, 0, 1, acc);
                else if (nv == 2)
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, m, 0, 2, acc);
                else
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, m, 0, 3, acc);
            }
        }
    }
}

/* ---- AVX2 (the x86-64-v3 baseline) ---------------------------------------------------------- */

static inline __m256 load_256(const float *x, __m256i m, int full) {
    return full ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, m);
}

__attribute__((always_inline)) static inline void tile_256(const float *in, int64_t is, int64_t cin,
                                                           const int64_t *off, int64_t taps, const float *w,
                                                           int64_t rows, float *out, int64_t os, int64_t p,
                                                           const __m256i *m, int full, int accumulate) {
    __m256 a[CO256][3];
#pragma GCC unroll 4
    for (int j = 0; j < CO256; j++)
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++)
            a[j][v] = accumulate && j < rows ? load_256(out + j * os + p + 8 * v, m[v], full) : _mm256_setzero_ps();
    for (int64_t ci = 0; ci < cin; ci++) {
        const float *xc = in + ci * is + p;
        for (int64_t t = 0; t < taps; t++, w += CO256) {
            const float *xt = xc + off[t];
            __m256 x0 = load_256(xt, m[0], full), x1 = load_256(xt + 8, m[1], full), x2 = load_256(xt + 16, m[2], full);
#pragma GCC unroll 4
            for (int j = 0; j < CO256; j++) {
                __m256 b = _mm256_broadcast_ss(w + j);
                a[j][0] = _mm256_fmadd_ps(b, x0, a[j][0]);
                a[j][1] = _mm256_fmadd_ps(b, x1, a[j][1]);
                a[j][2] = _mm256_fmadd_ps(b, x2, a[j][2]);
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < CO256; j++) {
        if (j >= rows) break;
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++) {
            float *o = out + j * os + p + 8 * v;
            if (full)
                _mm256_storeu_ps(o, a[j][v]);
            else
                _mm256_maskstore_ps(o, m[v], a[j][v]);
        }
    }
}

static void corr_256(const float *in, int64_t is, int64_t cin, const int64_t *off, int64_t taps, const float *wp,
                     int64_t cout, float *out, int64_t os, int64_t p0, int64_t p1, int accumulate) {
    int64_t nt = (cout + CO256 - 1) / CO256, wstride = cin * taps * CO256, cb = channel_block(off, taps, 24);
    const __m256i all[3] = {_mm256_set1_epi32(-1), _mm256_set1_epi32(-1), _mm256_set1_epi32(-1)};
    int64_t p = p0;
    for (; p + 24 <= p1; p += 24)
        for (int64_t c0 = 0; c0 < cin; c0 += cb) {
            int64_t nc = cin - c0 < cb ? cin - c0 : cb;
            const float *inb = in + c0 * is;
            for (int64_t t = 0; t < nt; t++) {
                int64_t rows = cout - t * CO256 < CO256 ? cout - t * CO256 : CO256;
                const float *w = wp + t * wstride + c0 * taps * CO256;
                if (accumulate || c0 > 0)
                    tile_256(inb, is, nc, off, taps, w, rows, out + t * CO256 * os, os, p, all, 1, 1);
                else
                    tile_256(inb, is, nc, off, taps, w, rows, out + t * CO256 * os, os, p, all, 1, 0);
            }
        }
    if (p < p1) {
        __m256i m[3];
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (int v = 0; v < 3; v++) {
            int64_t r = p1 - p - 8 * v;
            m[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r < 0 ? 0 : r > 8 ? 8 : r)), lane);
        }
        for (int64_t c0 = 0; c0 < cin; c0 += cb) {
            int64_t nc = cin - c0 < cb ? cin - c0 : cb;
            for (int64_t t = 0; t < nt; t++) {
                int64_t rows = cout - t * CO256 < CO256 ? cout - t * CO256 : CO256;
                tile_256(in + c0 * is, is, nc, off, taps, wp + t * wstride + c0 * taps * CO256, rows,
                         out + t * CO256 * os, os, p, m, 0, accumulate || c0 > 0);
            }
        }
    }
}

void nn__flat_corr(const float *in, int64_t is, int64_t cin, const int64_t *off, int64_t taps, const float *wp,
                   int64_t cout, float *out, int64_t os, int64_t p0, int64_t p1, int accumulate) {
    if (p1 <= p0) return;
    if (nn__cpu_avx512())
        corr_512(in, is, cin, off, taps, wp, cout, out, os, p0, p1, accumulate);
    else
        corr_256(in, is, cin, off, taps, wp, cout, out, os, p0, p1, accumulate);
}
