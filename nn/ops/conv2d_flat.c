/* The register-tiled kernels of the direct convolution (nn/ops/conv2d_direct.h): the flat
 * correlation out[co][p] (+)= sum_ci sum_tap w[co][ci][tap] * in[ci][p + off[tap]] and the weight
 * packing of its transposed direction (the input gradient). The forward direction reads the
 * weights where they are, rows of cin * taps values, so a call copies nothing per weight and no
 * copy can go stale when the weights change. AVX-512 tiles are 8 channels x 48 positions (24
 * accumulators), AVX2 tiles 4 x 24 (12). AVX-512 tiles read a packed copy of their input block
 * (a short last block packed through masked loads, zeros after it, and stored through masks);
 * AVX2 full tiles use plain loads, the last one masked loads; nothing past p1 is read. Input channels go in blocks whose partial sums pass through the output, which leaves
 * each lane's sequence of additions (and so every result) the same whatever the blocking, the
 * tile, the channel split or the vector width. For inference the input may pass through a ReLU
 * as it is read, and each finished output through a per-channel scale and shift (batch norm) and
 * a ReLU as it is stored. */
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

int64_t nn__flat_last_size(int64_t cout, int64_t cin, int64_t taps) {
    int64_t cot = nn__flat_cot();
    return cout % cot ? cot * cin * taps : 0;
}

void nn__flat_last(const float *w, int64_t cout, int64_t cin, int64_t taps, float *last) {
    int64_t cot = nn__flat_cot(), rows = cout % cot, row = cin * taps;
    if (!rows) return;
    memcpy(last, w + (cout - rows) * row, (size_t)(rows * row) * sizeof(float));
    memset(last + rows * row, 0, (size_t)((cot - rows) * row) * sizeof(float));
}

/* Tile t's weights from input channel c0 on, as (base, js, ks): row j, step k = ci * taps + tap
 * at base[j * js + k * ks]. */
typedef struct wtile {
    const float *w;
    int64_t js, ks;
} wtile;

static inline wtile weights_of(const nn_flat_w *fw, int64_t cout, int64_t cin, int64_t taps, int cot, int64_t t,
                               int64_t c0) {
    wtile r;
    if (fw->packed) {
        r.w = fw->w + (t * cin + c0) * taps * cot;
        r.js = 1;
        r.ks = cot;
    } else {
        int64_t row = cin * taps;
        r.w = ((t + 1) * cot > cout ? fw->last : fw->w + t * cot * row) + c0 * taps;
        r.js = row;
        r.ks = 1;
    }
    return r;
}

/* ---- AVX-512 ------------------------------------------------------------------------------ */

/* The store of a finished tile row j (channel `ch` of the layer): the epilogue, if any, then a
 * plain or masked store. The scale and shift are a multiply and an add, rounded apart, as
 * nn/ops/batch_norm.c computes them, so the fused result equals the separate ops bit for bit. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 epi_512(__m512 v, const nn_conv_epi *e,
                                                                              int64_t ch) {
    if (e->scale) v = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(e->scale[ch])), _mm512_set1_ps(e->shift[ch]));
    if (e->relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
    return v;
}

/* One tile: channels [0, rows) of the weights wt, positions [p, p + 16*nv); `full` and `ofull`
 * (constants after inlining) select plain loads of the input and plain loads and stores of the
 * output, else the masks m. relu_in: max(x, 0) on every input load (the packed input blocks are
 * already rectified). epi (NULL: none) applies to the stored values of channels ch0 + j; the
 * caller passes it only with the last channel block. */
__attribute__((target("avx512f"), always_inline)) static inline void tile_512(
    const float *in, int64_t is, int64_t cin, const int64_t *off, int64_t taps, wtile wt, int64_t rows,
    float *out, int64_t os, const __mmask16 *m, int full, int ofull, int nv, int accumulate, int relu_in,
    const nn_conv_epi *epi, int64_t ch0) {
    __m512 a[CO512][3];
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int j = 0; j < CO512; j++)
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++) {
            const float *o = out + j * os + 16 * v;
            if (accumulate && j < rows && v < nv)
                a[j][v] = ofull ? _mm512_loadu_ps(o) : _mm512_maskz_loadu_ps(m[v], o);
            else
                a[j][v] = _mm512_setzero_ps();
        }
    const float *w = wt.w;
    for (int64_t ci = 0; ci < cin; ci++) {
        const float *xc = in + ci * is;
        for (int64_t t = 0; t < taps; t++, w += wt.ks) {
            const float *xt = xc + off[t];
            __m512 x0 = full ? _mm512_loadu_ps(xt) : _mm512_maskz_loadu_ps(m[0], xt);
            __m512 x1 = nv < 2 ? x0 : full ? _mm512_loadu_ps(xt + 16) : _mm512_maskz_loadu_ps(m[1], xt + 16);
            __m512 x2 = nv < 3 ? x0 : full ? _mm512_loadu_ps(xt + 32) : _mm512_maskz_loadu_ps(m[2], xt + 32);
            if (relu_in) {
                x0 = _mm512_max_ps(x0, zero);
                x1 = _mm512_max_ps(x1, zero);
                x2 = _mm512_max_ps(x2, zero);
            }
#pragma GCC unroll 8
            for (int j = 0; j < CO512; j++) {
                __m512 b = _mm512_set1_ps(w[j * wt.js]);
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
            __m512 r = epi ? epi_512(a[j][v], epi, ch0 + j) : a[j][v];
            if (ofull)
                _mm512_storeu_ps(o, r);
            else
                _mm512_mask_storeu_ps(o, m[v], r);
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

/* One packed block of the AVX-512 correlation: positions [p, p + 48) (fewer at the end of the
 * range, through masks), input channels [c0, c0 + nc), every channel tile in [t0, t1): the block's
 * input is packed [channel][tap][48] into pack, then each tile adds its products to the output
 * (stores them, for the first channel block without accumulate), applying epi after the last. */
__attribute__((target("avx512f"))) static void packed_block(const float *in, int64_t is, int64_t cin,
                                                            const int64_t *off, int64_t taps, const nn_flat_w *fw,
                                                            int64_t cout, int64_t t0, int64_t t1, float *out,
                                                            int64_t os, int64_t p, int64_t p1, int64_t c0,
                                                            int64_t nc, int accumulate, int relu_in,
                                                            const nn_conv_epi *epi, float *pack,
                                                            const int64_t *poff) {
    const __m512 zero = _mm512_setzero_ps();
    int64_t np = p1 - p < 48 ? p1 - p : 48;
    int nv = (int)((np + 15) / 16);
    __mmask16 m[3];
    for (int v = 0; v < 3; v++) {
        int64_t r = np - 16 * v;
        m[v] = r >= 16 ? (__mmask16)0xFFFF : r <= 0 ? (__mmask16)0 : (__mmask16)((1u << r) - 1);
    }
    for (int64_t c = 0; c < nc; c++)
        for (int64_t t = 0; t < taps; t++) {
            const float *src = in + (c0 + c) * is + p + off[t];
            float *dst = pack + (c * taps + t) * 48;
            __m512 v0, v1, v2;
            if (np == 48) {
                v0 = _mm512_loadu_ps(src);
                v1 = _mm512_loadu_ps(src + 16);
                v2 = _mm512_loadu_ps(src + 32);
            } else {
                v0 = _mm512_maskz_loadu_ps(m[0], src);
                v1 = _mm512_maskz_loadu_ps(m[1], src + 16);
                v2 = _mm512_maskz_loadu_ps(m[2], src + 32);
            }
            if (relu_in) {
                v0 = _mm512_max_ps(v0, zero);
                v1 = _mm512_max_ps(v1, zero);
                v2 = _mm512_max_ps(v2, zero);
            }
            _mm512_store_ps(dst, v0);
            _mm512_store_ps(dst + 16, v1);
            _mm512_store_ps(dst + 32, v2);
        }
    const nn_conv_epi *e = c0 + nc >= cin ? epi : NULL;
    int acc = accumulate || c0 > 0;
    for (int64_t t = t0; t < t1; t++) {
        int64_t rows = cout - t * CO512 < CO512 ? cout - t * CO512 : CO512;
        wtile w = weights_of(fw, cout, cin, taps, CO512, t, c0);
        float *o = out + t * CO512 * os + p;
        int64_t ch = t * CO512;
        /* 1x1 and 3x3 get copies with the tap count a constant (no inner loop, or a fully
         * unrolled one); accumulate is a constant in each. */
#define TILE(TAPS, ACC)                                                                                           \
    do {                                                                                                          \
        if (np == 48)                                                                                             \
            tile_512(pack, (TAPS) * 48, nc, poff, TAPS, w, rows, o, os, m, 1, 1, 3, ACC, 0, e, ch);               \
        else if (nv == 1)                                                                                         \
            tile_512(pack, (TAPS) * 48, nc, poff, TAPS, w, rows, o, os, m, 1, 0, 1, ACC, 0, e, ch);               \
        else if (nv == 2)                                                                                         \
            tile_512(pack, (TAPS) * 48, nc, poff, TAPS, w, rows, o, os, m, 1, 0, 2, ACC, 0, e, ch);               \
        else                                                                                                      \
            tile_512(pack, (TAPS) * 48, nc, poff, TAPS, w, rows, o, os, m, 1, 0, 3, ACC, 0, e, ch);               \
    } while (0)
        if (taps == 1 && acc)
            TILE(1, 1);
        else if (taps == 1)
            TILE(1, 0);
        else if (taps == 9 && acc)
            TILE(9, 1);
        else if (taps == 9)
            TILE(9, 0);
        else if (acc)
            TILE(taps, 1);
        else
            TILE(taps, 0);
#undef TILE
    }
}

/* The loop order of the packed path. Position-major (each 48-position block through every
 * channel block, the output block staying in L1) re-reads all the tiles' weights for every
 * position block: fine while they stay in L2, but a detector box head's 300 x 4704 "weights"
 * (5.6 MB: x's rows, see nn/ops/linear.c) streamed from memory 6 times a call. Past WEIGHT_L2
 * bytes of weights, positions go in spans whose output stays in L2 (OUT_L2 bytes), channel
 * block outermost within a span: each block of weights is read once per span, the partial sums
 * pass through the output between channel blocks, and every lane adds its products in the same
 * order as before (channel, then tap), so the results do not change. */
#define WEIGHT_L2 ((int64_t)512 << 10)
#define OUT_L2 ((int64_t)384 << 10)

__attribute__((target("avx512f"))) static void corr_512(const float *in, int64_t is, int64_t cin, const int64_t *off,
                                                        int64_t taps, const nn_flat_w *fw, int64_t cout, int64_t t0,
                                                        int64_t t1, float *out, int64_t os, int64_t p0, int64_t p1,
                                                        int accumulate, int relu_in, const nn_conv_epi *epi) {
    const __mmask16 all[3] = {0xFFFF, 0xFFFF, 0xFFFF};
    int64_t p = p0;
    int64_t pcb = PACK_FLOATS / (taps * 48);
    if (pcb > 0) {
        _Alignas(64) float pack[PACK_FLOATS];
        int64_t poff[taps];
        for (int64_t t = 0; t < taps; t++) poff[t] = t * 48;
        /* Spans of one block (position-major) while the weights fit L2, else of OUT_L2. */
        int64_t wbytes = (t1 - t0) * CO512 * cin * taps * (int64_t)sizeof(float), span = 48;
        if (wbytes > WEIGHT_L2 && cin > pcb) {
            span = OUT_L2 / ((t1 - t0) * CO512 * (int64_t)sizeof(float)) / 48 * 48;
            if (span < 48) span = 48;
        }
        for (int64_t s0 = p0; s0 < p1; s0 += span) {
            int64_t s1 = s0 + span < p1 ? s0 + span : p1;
            for (int64_t c0 = 0; c0 < cin; c0 += pcb)
                for (int64_t q = s0; q < s1; q += 48)
                    packed_block(in, is, cin, off, taps, fw, cout, t0, t1, out, os, q, s1, c0,
                                 cin - c0 < pcb ? cin - c0 : pcb, accumulate, relu_in, epi, pack, poff);
        }
        p = p1;
    }
    /* Kernels too large to pack (over 128 taps): unpacked full tiles, in channel blocks that keep the input
     * slab within 16 KiB; the partial sums pass through the output between blocks, which leaves
     * each lane's sequence of additions unchanged. */
    int64_t cb = channel_block(off, taps, 48);
    for (; p + 48 <= p1; p += 48)
        for (int64_t c0 = 0; c0 < cin; c0 += cb) {
            int64_t nc = cin - c0 < cb ? cin - c0 : cb;
            const float *inb = in + c0 * is + p;
            const nn_conv_epi *e = c0 + nc >= cin ? epi : NULL;
            for (int64_t t = t0; t < t1; t++) {
                int64_t rows = cout - t * CO512 < CO512 ? cout - t * CO512 : CO512;
                wtile w = weights_of(fw, cout, cin, taps, CO512, t, c0);
                float *o = out + t * CO512 * os + p;
                if (accumulate || c0 > 0)
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, all, 1, 1, 3, 1, relu_in, e, t * CO512);
                else
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, all, 1, 1, 3, 0, relu_in, e, t * CO512);
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
            const nn_conv_epi *e = c0 + nc >= cin ? epi : NULL;
            for (int64_t t = t0; t < t1; t++) {
                int64_t rows = cout - t * CO512 < CO512 ? cout - t * CO512 : CO512;
                wtile w = weights_of(fw, cout, cin, taps, CO512, t, c0);
                float *o = out + t * CO512 * os + p;
                int acc = accumulate || c0 > 0;
                if (nv == 1)
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, m, 0, 0, 1, acc, relu_in, e, t * CO512);
                else if (nv == 2)
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, m, 0, 0, 2, acc, relu_in, e, t * CO512);
                else
                    tile_512(inb, is, nc, off, taps, w, rows, o, os, m, 0, 0, 3, acc, relu_in, e, t * CO512);
            }
        }
    }
}

/* ---- AVX2 (the x86-64-v3 baseline) ---------------------------------------------------------- */

static inline __m256 load_256(const float *x, __m256i m, int full) {
    return full ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, m);
}

static inline __m256 epi_256(__m256 v, const nn_conv_epi *e, int64_t ch) {
    if (e->scale) v = _mm256_add_ps(_mm256_mul_ps(v, _mm256_set1_ps(e->scale[ch])), _mm256_set1_ps(e->shift[ch]));
    if (e->relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
    return v;
}

__attribute__((always_inline)) static inline void tile_256(const float *in, int64_t is, int64_t cin,
                                                           const int64_t *off, int64_t taps, wtile wt,
                                                           int64_t rows, float *out, int64_t os, int64_t p,
                                                           const __m256i *m, int full, int accumulate, int relu_in,
                                                           const nn_conv_epi *epi, int64_t ch0) {
    __m256 a[CO256][3];
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int j = 0; j < CO256; j++)
#pragma GCC unroll 3
        for (int v = 0; v < 3; v++)
            a[j][v] = accumulate && j < rows ? load_256(out + j * os + p + 8 * v, m[v], full) : _mm256_setzero_ps();
    const float *w = wt.w;
    for (int64_t ci = 0; ci < cin; ci++) {
        const float *xc = in + ci * is + p;
        for (int64_t t = 0; t < taps; t++, w += wt.ks) {
            const float *xt = xc + off[t];
            __m256 x0 = load_256(xt, m[0], full), x1 = load_256(xt + 8, m[1], full), x2 = load_256(xt + 16, m[2], full);
            if (relu_in) {
                x0 = _mm256_max_ps(x0, zero);
                x1 = _mm256_max_ps(x1, zero);
                x2 = _mm256_max_ps(x2, zero);
            }
#pragma GCC unroll 4
            for (int j = 0; j < CO256; j++) {
                __m256 b = _mm256_broadcast_ss(w + j * wt.js);
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
            __m256 r = epi ? epi_256(a[j][v], epi, ch0 + j) : a[j][v];
            if (full)
                _mm256_storeu_ps(o, r);
            else
                _mm256_maskstore_ps(o, m[v], r);
        }
    }
}

static void corr_256(const float *in, int64_t is, int64_t cin, const int64_t *off, int64_t taps, const nn_flat_w *fw,
                     int64_t cout, int64_t t0, int64_t t1, float *out, int64_t os, int64_t p0, int64_t p1,
                     int accumulate, int relu_in, const nn_conv_epi *epi) {
    int64_t cb = channel_block(off, taps, 24);
    const __m256i all[3] = {_mm256_set1_epi32(-1), _mm256_set1_epi32(-1), _mm256_set1_epi32(-1)};
    int64_t p = p0;
    for (; p + 24 <= p1; p += 24)
        for (int64_t c0 = 0; c0 < cin; c0 += cb) {
            int64_t nc = cin - c0 < cb ? cin - c0 : cb;
            const float *inb = in + c0 * is;
            const nn_conv_epi *e = c0 + nc >= cin ? epi : NULL;
            for (int64_t t = t0; t < t1; t++) {
                int64_t rows = cout - t * CO256 < CO256 ? cout - t * CO256 : CO256;
                wtile w = weights_of(fw, cout, cin, taps, CO256, t, c0);
                if (accumulate || c0 > 0)
                    tile_256(inb, is, nc, off, taps, w, rows, out + t * CO256 * os, os, p, all, 1, 1, relu_in, e,
                             t * CO256);
                else
                    tile_256(inb, is, nc, off, taps, w, rows, out + t * CO256 * os, os, p, all, 1, 0, relu_in, e,
                             t * CO256);
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
            const nn_conv_epi *e = c0 + nc >= cin ? epi : NULL;
            for (int64_t t = t0; t < t1; t++) {
                int64_t rows = cout - t * CO256 < CO256 ? cout - t * CO256 : CO256;
                tile_256(in + c0 * is, is, nc, off, taps, weights_of(fw, cout, cin, taps, CO256, t, c0), rows,
                         out + t * CO256 * os, os, p, m, 0, accumulate || c0 > 0, relu_in, e, t * CO256);
            }
        }
    }
}

void nn__flat_corr(const float *in, int64_t is, int64_t cin, const int64_t *off, int64_t taps, const nn_flat_w *w,
                   int64_t cout, int64_t c0, int64_t c1, float *out, int64_t os, int64_t p0, int64_t p1,
                   int accumulate, int relu_in, const nn_conv_epi *epi) {
    if (p1 <= p0 || c1 <= c0) return;
    int64_t cot = nn__flat_cot();
    NN_ASSERT(c0 % cot == 0 && (c1 % cot == 0 || c1 == cout), "flat_corr: channels [%lld, %lld) not whole tiles",
              (long long)c0, (long long)c1);
    if (cot == CO512)
        corr_512(in, is, cin, off, taps, w, cout, c0 / cot, (c1 + cot - 1) / cot, out, os, p0, p1, accumulate, relu_in,
                 epi);
    else
        corr_256(in, is, cin, off, taps, w, cout, c0 / cot, (c1 + cot - 1) / cot, out, os, p0, p1, accumulate, relu_in,
                 epi);
}
