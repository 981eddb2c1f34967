/* slice: the range [start, start+len) of one axis; nn_split is a row of slices. */
#include "nn/nn_impl.h"

typedef struct slice_p {
    int32_t axis;
    int64_t start, len, outer, inner;
} slice_p;

/* x [..., D, ...] -> y [..., len, ...] */
static void slice_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const slice_p *p = NN_NODE_P(node, slice_p);
    int64_t xlen = node->ins[0]->shape[p->axis] * p->inner, ylen = p->len * p->inner;
    for (int64_t o = 0; o < p->outer; o++)
        memcpy(node->out->data + o * ylen, node->ins[0]->data + o * xlen + p->start * p->inner,
               (size_t)ylen * sizeof(float));
}

/* dy -> dx (+=) in the window */
static void slice_backward(nn_ctx *ctx, nn_node *node) {
    const slice_p *p = NN_NODE_P(node, slice_p);
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    int64_t xlen = node->ins[0]->shape[p->axis] * p->inner, ylen = p->len * p->inner;
    for (int64_t o = 0; o < p->outer; o++)
        nn__vec_add(dx + o * xlen + p->start * p->inner, node->out->grad + o * ylen, ylen);
}

const nn_op_impl nn_op_slice_impl = {slice_forward, slice_backward};

nn_tensor *nn_slice(nn_ctx *ctx, nn_tensor *x, int axis, int64_t start, int64_t len) {
    char sx[64];
    NN_ASSERT(axis >= 0 && axis < x->ndim, "slice: axis %d outside rank %d", axis, x->ndim);
    NN_ASSERT(start >= 0 && len >= 1 && start + len <= x->shape[axis], "slice: [%lld, %lld) outside axis %d of %s",
              (long long)start, (long long)(start + len), axis, NN_SHAPE_STR(x, sx));
    nn_node *node = nn__node(ctx, NN_OP_SLICE, 1, &x);
    slice_p *p = NN_NODE_P(node, slice_p);
    p->axis = axis;
    p->start = start;
    p->len = len;
    p->outer = 1;
    p->inner = 1;
    for (int d = 0; d < axis; d++) p->outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++) p->inner *= x->shape[d];
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[axis] = len;
    node->out = nn__tensor(ctx, x->ndim, shape);
    nn__node_run(ctx, node);
    return node->out;
}

void nn_split(nn_ctx *ctx, nn_tensor *x, int axis, int n, const int64_t *sizes, nn_tensor **outs) {
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        outs[i] = nn_slice(ctx, x, axis, start, sizes[i]);
        start += sizes[i];
    }
    NN_ASSERT(start == x->shape[axis], "split: sizes sum to %lld, axis %d has %lld", (long long)start, axis,
              (long long)x->shape[axis]);
}
