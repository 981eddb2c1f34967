/* The parameter store on the device: optimizer updates (the formulas of nn/optim.c, element by
 * element), EMA, gradient-norm clipping and fills. */
#include "nn/cuda/cuda_common.h"

void nn__cuda_sgd(float *w, const float *g, float *m, int64_t n, float lr, float wd, float mom, int nesterov) {
    nn__cu_for(n, [=] __device__(int64_t i) {
        float gi = g[i] + wd * w[i];
        if (mom != 0.0f) {
            m[i] = mom * m[i] + gi;
            gi = nesterov ? gi + mom * m[i] : m[i];
        }
        w[i] -= lr * gi;
    });
}

void nn__cuda_rmsprop(float *w, const float *g, float *ms, float *mom, int64_t n, float lr, float wd, float decay,
                      float momentum, float eps) {
    nn__cu_for(n, [=] __device__(int64_t i) {
        float gi = g[i] + wd * w[i];
        ms[i] = decay * ms[i] + (1.0f - decay) * gi * gi;
        mom[i] = momentum * mom[i] + lr * gi / sqrtf(ms[i] + eps);
        w[i] -= mom[i];
    });
}

void nn__cuda_adam(float *w, const float *g, float *m, float *v, int64_t n, float lr, float wd, float b1, float b2,
                   float eps, float c1, float c2) {
    nn__cu_for(n, [=] __device__(int64_t i) {
        float gi = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
    });
}

void nn__cuda_ema(float *shadow, const float *w, int64_t n, float decay) {
    nn__cu_for(n, [=] __device__(int64_t i) { shadow[i] = decay * shadow[i] + (1.0f - decay) * w[i]; });
}

void nn__cuda_fill(float *x, float v, int64_t n) {
    nn__cu_for(n, [=] __device__(int64_t i) { x[i] = v; });
}

void nn__cuda_scale(float *x, float s, int64_t n) {
    nn__cu_for(n, [=] __device__(int64_t i) { x[i] *= s; });
}

/* Sum of squares over many tensors: each call adds its blocks' partial sums into one device
 * accumulator (atomics in double), read back once by nn__cuda_sumsq_end. */
static double *g_acc;

__global__ static void k_sumsq(const float *x, int64_t n, double *acc) {
    double s = 0.0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = nn__block_sum(s);
    if (threadIdx.x == 0) atomicAdd(acc, s);
}

void nn__cuda_sumsq_begin(void) {
    if (!g_acc) NN_CU(cudaMalloc((void **)&g_acc, sizeof(double)));
    NN_CU(cudaMemsetAsync(g_acc, 0, sizeof(double), nn__cu_stream()));
}

void nn__cuda_sumsq_add(const float *x, int64_t n) {
    if (n <= 0) return;
    int64_t blocks = (n + 1023) / 1024;
    if (blocks > 1024) blocks = 1024;
    k_sumsq<<<(unsigned)blocks, 256, 0, nn__cu_stream()>>>(x, n, g_acc);
    NN_CU(cudaGetLastError());
}

double nn__cuda_sumsq_end(void) {
    double v = 0.0;
    NN_CU(cudaMemcpyAsync(&v, g_acc, sizeof v, cudaMemcpyDeviceToHost, nn__cu_stream()));
    NN_CU(cudaStreamSynchronize(nn__cu_stream()));
    return v;
}
