/* reshape: a view with a new shape; the output aliases the input's data (no copy). Its gradient
 * is a separate buffer added back into the input's, or, when the input has none yet, handed to
 * the input as it is (nn__grad_pass). */
#include "nn/nn_impl.h"

/* x [any] -> y [new shape, same numel], y->data == x->data */
static void reshape_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    (void)node;
}

/* dy -> dx (+=, or the buffer itself when dx is new) */
static void reshape_backward(nn_ctx *ctx, nn_node *node) {
    if (nn__grad_pass(ctx, node->out, node->ins[0])) return;
    int fresh;
    float *dx = nn__grad_first(ctx, node->ins[0], &fresh);
    if (dx) nn__vec_put(dx, node->out->grad, node->out->numel, fresh);
}

const nn_op_impl nn_op_reshape_impl = {reshape_forward, reshape_backward};

nn_tensor *nn_reshape(nn_ctx *ctx, nn_tensor *x, int ndim, const int64_t *shape) {
    char sx[64];
    NN_ASSERT(ndim >= 0 && ndim <= NN_MAX_DIMS, "reshape: rank %d", ndim);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    NN_ASSERT(numel == x->numel, "reshape: %s has %lld elements, new shape %lld", NN_SHAPE_STR(x, sx),
              (long long)x->numel, (long long)numel);
    nn_node *node = nn__node(ctx, NN_OP_RESHAPE, 1, &x);
    nn_tensor *y = nn__alloc(ctx, sizeof *y);
    *y = *x;
    y->ndim = ndim;
    for (int i = 0; i < NN_MAX_DIMS; i++) y->shape[i] = i < ndim ? shape[i] : 1;
    y->flags = NN_TENSOR_VIEW;
    y->grad = NULL;
    y->name = NULL;
    node->out = y;
    nn__node_run(ctx, node);
    return y;
}
