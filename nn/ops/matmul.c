/* matmul: y = a b; OpenBLAS sgemm (nn__sgemm). */
#include "nn/nn_impl.h"

/* a [M,K], b [K,N] -> y [M,N] */
static void matmul_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const nn_tensor *a = node->ins[0], *b = node->ins[1];
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    nn__sgemm(1, 0, 0, m, n, k, a->data, k, b->data, n, 0.0f, node->out->data, n);
}

/* dy [M,N] -> da [M,K] += dy b^T, db [K,N] += a^T dy */
static void matmul_backward(nn_ctx *ctx, nn_node *node) {
    nn_tensor *a = node->ins[0], *b = node->ins[1];
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    const float *dy = node->out->grad;
    float *da = nn__grad(ctx, a), *db = nn__grad(ctx, b);
    if (da)
        nn__sgemm(1, 0, 1, m, k, n, dy, n, b->data, n, 1.0f, da, k);
    if (db)
        nn__sgemm(1, 1, 0, k, n, m, a->data, k, dy, n, 1.0f, db, n);
}

const nn_op_impl nn_op_matmul_impl = {matmul_forward, matmul_backward};

nn_tensor *nn_matmul(nn_ctx *ctx, nn_tensor *a, nn_tensor *b) {
    char sa[64], sb[64];
    NN_ASSERT(a->ndim == 2 && b->ndim == 2 && a->shape[1] == b->shape[0], "matmul: a %s and b %s do not fit [M,K] [K,N]",
              NN_SHAPE_STR(a, sa), NN_SHAPE_STR(b, sb));
    nn_tensor *ins[2] = {a, b};
    nn_node *node = nn__node(ctx, NN_OP_MATMUL, 2, ins);
    node->out = nn__tensor(ctx, 2, NN_SHAPE(a->shape[0], b->shape[1]));
    nn__node_run(ctx, node);
    return node->out;
}
