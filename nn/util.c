/* Small shared pieces: SAME padding arithmetic, CPU features, thread count, vector helpers. */
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>

#include "nn/nn_impl.h"

void nn__same_pad(int64_t in, int32_t k, int32_t stride, int32_t dil, int64_t *out, int32_t *before,
                  int32_t *after) {
    int64_t o = (in + stride - 1) / stride;
    int64_t eff = (int64_t)dil * (k - 1) + 1;
    int64_t total = (o - 1) * stride + eff - in;
    if (total < 0) total = 0;
    *out = o;
    *before = (int32_t)(total / 2);
    *after = (int32_t)(total - total / 2);
}

int nn__cpu_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        /* NN_NO_AVX512=1 forces the AVX2 kernels, to test them on an AVX-512 machine. */
        const char *off = getenv("NN_NO_AVX512");
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && !(off && off[0] == '1') ? 1 : 0;
    }
    return cached;
}

int nn__cpu_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

void nn_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int nn_get_threads(void) { return omp_get_max_threads(); }

__attribute__((target("avx512f"))) static void vec_add_512(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_loadu_ps(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

void nn__vec_add(float *y, const float *x, int64_t n) {
    if (nn__cpu_avx512()) {
        vec_add_512(y, x, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void nn__sgemm(int par, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    int64_t nblk = (n + NN_GEMM_COLS - 1) / NN_GEMM_COLS;
    /* One block of columns would leave a team with one busy thread (a linear layer's 256x2352 ->
     * 256 ran at half speed): then C's rows are split too, in blocks fixed by m. */
    int64_t rows = nblk == 1 && m >= 2 * NN_GEMM_ROWS ? NN_GEMM_ROWS : m;
    int64_t mblk = (m + rows - 1) / rows;
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    /* Below NN_PAR_MIN multiply-adds OpenBLAS stays on one thread by itself (its threshold is
     * higher), so small products skip the team. */
#pragma omp parallel for schedule(static) if (par && m * n * k > NN_PAR_MIN && omp_get_max_threads() > 1)
    for (int64_t blk = 0; blk < nblk * mblk; blk++) {
        int64_t i0 = (blk / nblk) * rows, mm = m - i0 < rows ? m - i0 : rows;
        int64_t j0 = (blk % nblk) * NN_GEMM_COLS, nn = n - j0 < NN_GEMM_COLS ? n - j0 : NN_GEMM_COLS;
        cblas_sgemm(CblasRowMajor, ta, tb, (int)mm, (int)nn, (int)k, 1.0f, trans_a ? a + i0 : a + i0 * lda, (int)lda,
                    trans_b ? b + j0 * ldb : b + j0, (int)ldb, beta, c + i0 * ldc + j0, (int)ldc);
    }
}

void nn__vec_put(float *y, const float *x, int64_t n, int fresh) {
    if (fresh)
        memcpy(y, x, (size_t)n * sizeof(float));
    else
        nn__vec_add(y, x, n);
}

void nn__stream_copy(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(y + i) & 31); i++) y[i] = x[i];
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(y + i, _mm256_loadu_ps(x + i));
    for (; i < n; i++) y[i] = x[i];
}

void nn__stream_fence(void) { _mm_sfence(); }

void nn__vec_axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}
