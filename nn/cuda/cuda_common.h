/* Shared by the nn/cuda sources: checked CUDA/cuBLAS calls, the stream and cuBLAS handle, launch
 * helpers (grid-stride loops and row reductions over device lambdas), the op registry, and the
 * layouts of the op parameter structs of nn/ops (mirrored here because they are private to their
 * .c files; tests/gpu compares every op against the CPU, so a drifting mirror shows at once). */
#ifndef NN_CUDA_COMMON_H
#define NN_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "nn/nn_impl.h"

/* Every CUDA and cuBLAS call goes through one of these. A failure records ND_ERR_DEVICE with the
 * call, file and line; mid-graph (an op, a copy) it then aborts, as running out of host memory
 * does, because an op has no way to return a status. Entry points (device selection) use
 * NN_CU_TRY, which returns the status instead. */
#define NN_CU(call) nn__cu_check((call), #call, __FILE__, __LINE__)
#define NN_CUBLAS(call) nn__cublas_check((call), #call, __FILE__, __LINE__)
#define NN_CU_TRY(call) nn__cu_status((call), #call, __FILE__, __LINE__)
void nn__cu_check(cudaError_t e, const char *call, const char *file, int line);
void nn__cublas_check(cublasStatus_t s, const char *call, const char *file, int line);
int nn__cu_status(cudaError_t e, const char *call, const char *file, int line);

/* The one stream every kernel, copy and cuBLAS call of the process is queued on (work is ordered,
 * so one device workspace serves all ops), and the cuBLAS handle bound to it. */
cudaStream_t nn__cu_stream(void);
cublasHandle_t nn__cu_blas(void);

/* Row-major GEMM on cuBLAS (column-major): C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C, with
 * lda/ldb/ldc the row strides of A, B, C as stored. Batched: `batch` problems `sa`, `sb`, `sc`
 * floats apart. */
void nn__cu_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nn__cu_gemm_batched(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                         int64_t sa, const float *b, int64_t ldb, int64_t sb, float beta, float *c, int64_t ldc,
                         int64_t sc, int64_t batch);

/* y[i] += x[i] on the device (gradient accumulation). */
void nn__cu_add(float *y, const float *x, int64_t n);
/* Copy host bytes into fresh device memory of the ctx's arena (op inputs given as host arrays). */
void *nn__cu_upload(nn_ctx *ctx, const void *host, size_t bytes);

#define NN_CU_THREADS 256

template <typename F> __global__ void nn__k_for(int64_t n, F f) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) f(i);
}
/* f(i) for i in [0, n), on the stream. */
template <typename F> static inline void nn__cu_for(int64_t n, F f) {
    if (n <= 0) return;
    int64_t blocks = (n + NN_CU_THREADS - 1) / NN_CU_THREADS;
    if (blocks > 65536) blocks = 65536;
    nn__k_for<<<(unsigned)blocks, NN_CU_THREADS, 0, nn__cu_stream()>>>(n, f);
    NN_CU(cudaGetLastError());
}

/* Sum of v over the block's threads, in double; every thread gets the result. */
static __device__ inline double nn__block_sum(double v) {
    __shared__ double sh[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    double s = 0.0;
    for (int i = 0; i < nw; i++) s += sh[i];
    return s;
}

template <typename F> __global__ void nn__k_rowsum(int64_t rows, int64_t len, F f, double *out) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) s += (double)f(r, j);
        s = nn__block_sum(s);
        if (threadIdx.x == 0) out[r] = s;
    }
}
/* out[r] = sum_j f(r, j) for r in [0, rows), j in [0, len): one block per row, in double. */
template <typename F> static inline void nn__cu_rowsum(int64_t rows, int64_t len, F f, double *out) {
    if (rows <= 0) return;
    int64_t blocks = rows > 65536 ? 65536 : rows;
    nn__k_rowsum<<<(unsigned)blocks, 512, 0, nn__cu_stream()>>>(rows, len, f, out);
    NN_CU(cudaGetLastError());
}

/* One op's device implementation: forward and backward with the CPU op's contract. */
typedef void (*nn_cu_fn)(nn_ctx *ctx, nn_node *node);
typedef struct nn_cu_op {
    nn_cu_fn forward, backward;
} nn_cu_op;
/* Each family file fills its ops' rows of the registry. */
void nn__cu_register_elementwise(nn_cu_op *ops);
void nn__cu_register_shape(nn_cu_op *ops);
void nn__cu_register_conv(nn_cu_op *ops);
void nn__cu_register_norm(nn_cu_op *ops);
void nn__cu_register_pool(nn_cu_op *ops);
void nn__cu_register_dense(nn_cu_op *ops);
void nn__cu_register_loss(nn_cu_op *ops);
void nn__cu_register_roi(nn_cu_op *ops);

/* ---- mirrors of nn/ops' private parameter structs (same field order and types) ------------- */
struct nn__cu_scale_p { float s, c; };                                          /* scale.c */
struct nn__cu_clamp_p { float lo, hi; };                                        /* clamp.c */
struct nn__cu_concat_p { int32_t axis; int64_t outer, inner; };                 /* concat.c */
struct nn__cu_slice_p { int32_t axis; int64_t start, len, outer, inner; };      /* slice.c */
struct nn__cu_pad_p { int32_t t, b, l, r; float value; };                       /* pad.c */
struct nn__cu_crop_p { int64_t top, left; };                                    /* crop.c */
struct nn__cu_permute_p { int32_t perm[NN_MAX_DIMS]; };                         /* permute.c */
struct nn__cu_dropout_p { float p; };                                           /* dropout.c */
struct nn__cu_drop_path_p { float keep; };                                      /* drop_path.c */
struct nn__cu_bn_p {                                                            /* batch_norm.c */
    float eps, momentum;
    int32_t training;
    int32_t gi, bi;
    nn_tensor *rmean, *rvar;
};
struct nn__cu_group_norm_p { float eps; int32_t gi, bi; };                    /* layer_norm.c, instance_norm.c */
struct nn__cu_sce_p { float smoothing; int64_t count; };                        /* softmax_cross_entropy.c */
struct nn__cu_sce_saved { float *prob; int32_t *labels; };
struct nn__cu_wloss_saved { float *target, *weight; double denom; };            /* weighted_loss.h */
struct nn__cu_smooth_l1_p { float beta; };                                      /* smooth_l1.c */
struct nn__cu_roi_align_p { int32_t out_h, out_w, sampling, aligned; float scale; int64_t k; }; /* roi_align.c */
struct nn__cu_cr_p { int32_t crop_h, crop_w; float extrapolation; int64_t k; };  /* crop_and_resize.c */
struct nn__cu_cr_saved { float *boxes; int32_t *ind; };

#endif
