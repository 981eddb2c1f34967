/* linear: y = x w^T + b with w [O,K] as PyTorch stores it; OpenBLAS sgemm (nn__sgemm). */
#include "nn/nn_impl.h"

/* x [N,K], w [O,K], b [O] -> y [N,O] */
static void linear_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const nn_tensor *x = node->ins[0], *w = node->ins[1];
    int64_t n = x->shape[0], k = x->shape[1], o = w->shape[0];
    float *y = node->out->data;
    if (node->nin > 2) {
        for (int64_t i = 0; i < n; i++) memcpy(y + i * o, node->ins[2]->data, (size_t)o * sizeof(float));
    }
    nn__sgemm(1, 0, 1, n, o, k, x->data, k, w->data, k, node->nin > 2 ? 1.0f : 0.0f, y, o);
}

/* dy [N,O] -> dx [N,K] += dy w, dw [O,K] += dy^T x, db [O] += column sums of dy */
static void linear_backward(nn_ctx *ctx, nn_node *node) {
    nn_tensor *x = node->ins[0], *w = node->ins[1];
    int64_t n = x->shape[0], k = x->shape[1], o = w->shape[0];
    const float *dy = node->out->grad;
    float *dx = nn__grad(ctx, x), *dw = nn__grad(ctx, w);
    float *db = node->nin > 2 ? nn__grad(ctx, node->ins[2]) : NULL;
    if (dx)
        nn__sgemm(1, 0, 0, n, k, o, dy, o, w->data, k, 1.0f, dx, k);
    if (dw)
        nn__sgemm(1, 1, 0, o, k, n, dy, o, x->data, k, 1.0f, dw, k);
    if (db)
        for (int64_t i = 0; i < n; i++) nn__vec_add(db, dy + i * o, o);
}

const nn_op_impl nn_op_linear_impl = {linear_forward, linear_backward};

nn_tensor *nn_linear(nn_ctx *ctx, nn_tensor *x, nn_tensor *w, nn_tensor *b) {
    char sx[64], sw[64];
    NN_ASSERT(x->ndim == 2 && w->ndim == 2 && x->shape[1] == w->shape[1], "linear: x %s and w %s do not fit [N,K] [O,K]",
              NN_SHAPE_STR(x, sx), NN_SHAPE_STR(w, sw));
    NN_ASSERT(!b || b->numel == w->shape[0], "linear: bias must have %lld elements", (long long)w->shape[0]);
    nn_tensor *ins[3] = {x, w, b};
    nn_node *node = nn__node(ctx, NN_OP_LINEAR, b ? 3 : 2, ins);
    node->out = nn__tensor(ctx, 2, NN_SHAPE(x->shape[0], w->shape[0]));
    nn__node_run(ctx, node);
    return node->out;
}
