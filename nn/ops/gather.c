/* gather: one element per row, out[i] = x[i, idx[i]] (log-probabilities of chosen actions). */
#include "nn/nn_impl.h"

/* x [N,C], idx [N] -> y [N] */
static void gather_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const int32_t *idx = node->saved;
    int64_t n = node->ins[0]->shape[0], c = node->ins[0]->shape[1];
    for (int64_t i = 0; i < n; i++) node->out->data[i] = node->ins[0]->data[i * c + idx[i]];
}

/* dy [N] -> dx[i, idx[i]] += dy[i] */
static void gather_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const int32_t *idx = node->saved;
    int64_t n = node->ins[0]->shape[0], c = node->ins[0]->shape[1];
    for (int64_t i = 0; i < n; i++) dx[i * c + idx[i]] += node->out->grad[i];
}

const nn_op_impl nn_op_gather_impl = {gather_forward, gather_backward};

nn_tensor *nn_gather(nn_ctx *ctx, nn_tensor *x, const int32_t *idx) {
    char sx[64];
    NN_ASSERT(x->ndim == 2, "gather: x %s must be [N,C]", NN_SHAPE_STR(x, sx));
    int64_t n = x->shape[0], c = x->shape[1];
    nn_node *node = nn__node(ctx, NN_OP_GATHER, 1, &x);
    int32_t *copy = node->saved = nn__alloc(ctx, (size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        NN_ASSERT(idx[i] >= 0 && idx[i] < c, "gather: index %d of row %lld outside [0,%lld)", idx[i], (long long)i,
                  (long long)c);
        copy[i] = idx[i];
    }
    node->out = nn__tensor(ctx, 1, NN_SHAPE(n));
    nn__node_run(ctx, node);
    return node->out;
}
