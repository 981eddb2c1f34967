/* linear and matmul on cuBLAS. */
#include "nn/cuda/cuda_common.h"

/* x [N,K], w [O,K], b [O] -> y [N,O] = x w^T + b */
static void linear_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const nn_tensor *x = node->ins[0], *w = node->ins[1];
    int64_t n = x->shape[0], k = x->shape[1], o = w->shape[0];
    float *y = node->out->data;
    if (node->nin > 2) {
        const float *b = node->ins[2]->data;
        nn__cu_for(n * o, [=] __device__(int64_t e) { y[e] = b[e % o]; });
    }
    nn__cu_gemm(0, 1, n, o, k, 1.0f, x->data, k, w->data, k, node->nin > 2 ? 1.0f : 0.0f, y, o);
}
static void linear_bwd(nn_ctx *ctx, nn_node *node) {
    nn_tensor *x = node->ins[0], *w = node->ins[1];
    int64_t n = x->shape[0], k = x->shape[1], o = w->shape[0];
    const float *dy = node->out->grad;
    float *dx = nn__grad(ctx, x), *dw = nn__grad(ctx, w);
    float *db = node->nin > 2 ? nn__grad(ctx, node->ins[2]) : NULL;
    if (dx) nn__cu_gemm(0, 0, n, k, o, 1.0f, dy, o, w->data, k, 1.0f, dx, k);
    if (dw) nn__cu_gemm(1, 0, o, k, n, 1.0f, dy, o, x->data, k, 1.0f, dw, k);
    if (db) {
        double *tmp = (double *)nn__dalloc(ctx, (size_t)o * sizeof(double));
        nn__cu_rowsum(o, n, [=] __device__(int64_t c, int64_t i) { return dy[i * o + c]; }, tmp);
        nn__cu_for(o, [=] __device__(int64_t c) { db[c] += (float)tmp[c]; });
    }
}

/* a [M,K], b [K,N] -> y [M,N] */
static void matmul_fwd(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const nn_tensor *a = node->ins[0], *b = node->ins[1];
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    nn__cu_gemm(0, 0, m, n, k, 1.0f, a->data, k, b->data, n, 0.0f, node->out->data, n);
}
static void matmul_bwd(nn_ctx *ctx, nn_node *node) {
    nn_tensor *a = node->ins[0], *b = node->ins[1];
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    const float *dy = node->out->grad;
    float *da = nn__grad(ctx, a), *db = nn__grad(ctx, b);
    if (da) nn__cu_gemm(0, 1, m, k, n, 1.0f, dy, n, b->data, n, 1.0f, da, k);
    if (db) nn__cu_gemm(1, 0, k, n, m, 1.0f, a->data, k, dy, n, 1.0f, db, n);
}

void nn__cu_register_dense(nn_cu_op *ops) {
    ops[NN_OP_LINEAR] = nn_cu_op{linear_fwd, linear_bwd};
    ops[NN_OP_MATMUL] = nn_cu_op{matmul_fwd, matmul_bwd};
}
