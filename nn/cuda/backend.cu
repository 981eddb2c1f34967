/* The CUDA backend: device selection, checked calls, device memory (cudaMalloc; never managed
 * memory), host/device copies on one stream, cuBLAS GEMM helpers and the op registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cuda/cuda_common.h"
extern "C" { /* common/log.h has no C++ guard of its own */
#include "common/log.h"
}

static int g_device = -1;               /* the selected device, -1 before nn__cuda_select */
static cudaStream_t g_stream;
static cublasHandle_t g_blas;
static nn_cu_op g_ops[NN_OP_COUNT];

static void fail_abort(const char *what, const char *call, const char *file, int line) {
    nd_fail(ND_ERR_DEVICE, "cuda: %s failed: %s (%s:%d)", call, what, file, line);
    nd_assert_fail(file, line, call, "cuda: %s failed: %s", call, what);
}

void nn__cu_check(cudaError_t e, const char *call, const char *file, int line) {
    if (e != cudaSuccess) fail_abort(cudaGetErrorString(e), call, file, line);
}

void nn__cublas_check(cublasStatus_t s, const char *call, const char *file, int line) {
    if (s != CUBLAS_STATUS_SUCCESS) fail_abort(cublasGetStatusString(s), call, file, line);
}

int nn__cu_status(cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return ND_OK;
    return nd_fail(ND_ERR_DEVICE, "cuda: %s failed: %s (%s:%d)", call, cudaGetErrorString(e), file, line);
}

cudaStream_t nn__cu_stream(void) { return g_stream; }
cublasHandle_t nn__cu_blas(void) { return g_blas; }

int nn__cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return n;
}

/* "cuda" or "cuda:N". The first call picks the device for the process and creates the stream and
 * the cuBLAS handle; later calls must name the same device. */
int nn__cuda_select(const char *spec) {
    int dev = 0;
    if (spec[4] == ':') {
        char *end;
        long v = strtol(spec + 5, &end, 10);
        if (end == spec + 5 || *end || v < 0 || v > 1024)
            return nd_fail(ND_ERR_INVALID, "nn: device '%s': expected cuda:N with N a device number", spec);
        dev = (int)v;
    }
    if (g_device >= 0) {
        if (dev != g_device)
            return nd_fail(ND_ERR_UNSUPPORTED, "nn: device '%s': this process already uses cuda:%d (one GPU per process)",
                           spec, g_device);
        return ND_OK;
    }
    int n = nn__cuda_device_count();
    if (n == 0) return nd_fail(ND_ERR_DEVICE, "nn: device '%s': no CUDA device found (cudaGetDeviceCount)", spec);
    if (dev >= n) return nd_fail(ND_ERR_DEVICE, "nn: device '%s': only %d CUDA device(s) present", spec, n);
    int rc = NN_CU_TRY(cudaSetDevice(dev));
    if (!rc) rc = NN_CU_TRY(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    if (rc) return rc;
    cublasStatus_t bs = cublasCreate(&g_blas);
    if (bs != CUBLAS_STATUS_SUCCESS)
        return nd_fail(ND_ERR_DEVICE, "cuda: cublasCreate failed: %s (%s:%d)", cublasGetStatusString(bs), __FILE__,
                       __LINE__);
    NN_CUBLAS(cublasSetStream(g_blas, g_stream));
    /* Full fp32 GEMMs (no TF32): results comparable with the CPU's within float rounding. */
    NN_CUBLAS(cublasSetMathMode(g_blas, CUBLAS_DEFAULT_MATH));
    nn__cu_register_elementwise(g_ops);
    nn__cu_register_shape(g_ops);
    nn__cu_register_conv(g_ops);
    nn__cu_register_norm(g_ops);
    nn__cu_register_pool(g_ops);
    nn__cu_register_dense(g_ops);
    nn__cu_register_loss(g_ops);
    nn__cu_register_roi(g_ops);
    g_device = dev;
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
        ND_INFO("nn: cuda:%d is %s (%d SMs, %.1f GiB)", dev, prop.name, prop.multiProcessorCount,
                (double)prop.totalGlobalMem / (1 << 30));
    return ND_OK;
}

void nn__cuda_sync(void) {
    if (g_device >= 0) NN_CU(cudaStreamSynchronize(g_stream));
}

void *nn__cuda_stream_handle(void) { return g_device >= 0 ? (void *)g_stream : NULL; }

static void *cu_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 64) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return p;
}
static void cu_free(void *p) {
    if (p) NN_CU(cudaFree(p));
}
static void cu_zero(void *p, size_t bytes) {
    if (bytes) NN_CU(cudaMemsetAsync(p, 0, bytes, g_stream));
}
/* From pageable host memory the copy has read the source when the call returns, so the caller
 * may reuse its buffer at once. */
static void cu_upload(void *dst, const void *src, size_t bytes) {
    if (bytes) NN_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_stream));
}
static void cu_download(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    NN_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_stream));
    NN_CU(cudaStreamSynchronize(g_stream));
}
static void cu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) NN_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_stream));
}
static int cu_supports(nn_op op) { return op >= 0 && op < NN_OP_COUNT && g_ops[op].forward && g_ops[op].backward; }

static void cu_run(nn_ctx *ctx, nn_node *node, int backward) {
    const nn_cu_op *o = &g_ops[node->op];
    if (backward)
        o->backward(ctx, node);
    else
        o->forward(ctx, node);
}

extern "C" const nn_backend nn_backend_cuda = {
    "cuda", 0, cu_alloc, cu_free, cu_zero, cu_upload, cu_download, cu_copy, cu_supports, cu_run,
};

void *nn__cu_upload(nn_ctx *ctx, const void *host, size_t bytes) {
    void *d = nn__dalloc(ctx, bytes);
    cu_upload(d, host, bytes);
    return d;
}

void nn__cu_add(float *y, const float *x, int64_t n) {
    nn__cu_for(n, [=] __device__(int64_t i) { y[i] += x[i]; });
}

static cublasOperation_t op_of(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

/* Row-major C = A B is column-major C^T = B^T A^T: swap the operands and the sizes. */
void nn__cu_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    NN_CUBLAS(cublasSgemm(g_blas, op_of(tb), op_of(ta), (int)n, (int)m, (int)k, &alpha, b, (int)ldb, a, (int)lda, &beta,
                          c, (int)ldc));
}

void nn__cu_gemm_batched(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                         int64_t sa, const float *b, int64_t ldb, int64_t sb, float beta, float *c, int64_t ldc,
                         int64_t sc, int64_t batch) {
    if (m <= 0 || n <= 0 || batch <= 0) return;
    NN_CUBLAS(cublasSgemmStridedBatched(g_blas, op_of(tb), op_of(ta), (int)n, (int)m, (int)k, &alpha, b, (int)ldb, sb, a,
                                        (int)lda, sa, &beta, c, (int)ldc, sc, (int)batch));
}
