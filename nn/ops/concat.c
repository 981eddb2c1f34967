/* concat along one axis (channels: axis 1). */
#include <omp.h>

#include "nn/nn_impl.h"

#define CONCAT_PIECE 16384
/* Outputs from this size on are written with streaming stores (nn__stream_copy): far larger
 * than L2, their lines would be fetched only to be overwritten, and a following read finds them
 * in memory either way (a one-thread copy-then-read loop on 16-25 MB: 5-11% faster streamed,
 * 1-8 MB: 4-20% slower). */
#define CONCAT_STREAM_BYTES ((int64_t)16 << 20)

typedef struct concat_p {
    int32_t axis;
    int64_t outer, inner; /* product of dims before / after the axis */
} concat_p;
NN_NODE_PARAMS_FIT(concat_p);

/* xs[i] [..., Ci, ...] -> y [..., sum Ci, ...] */
static void concat_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const concat_p *p = NN_NODE_P(node, concat_p);
    int64_t ylen = node->out->shape[p->axis] * p->inner;
    if (p->outer >= 4 * omp_get_max_threads() || node->out->numel <= NN_PAR_MIN) {
        int stream = node->out->numel * (int64_t)sizeof(float) >= CONCAT_STREAM_BYTES;
#pragma omp parallel if (node->out->numel > NN_PAR_MIN)
        {
#pragma omp for schedule(static)
            for (int64_t o = 0; o < p->outer; o++) {
                int64_t off = 0;
                for (int i = 0; i < node->nin; i++) {
                    int64_t len = node->ins[i]->shape[p->axis] * p->inner;
                    float *dst = node->out->data + o * ylen + off;
                    if (stream)
                        nn__stream_copy(dst, node->ins[i]->data + o * len, len);
                    else
                        memcpy(dst, node->ins[i]->data + o * len, (size_t)len * sizeof(float));
                    off += len;
                }
            }
            if (stream) nn__stream_fence();
        }
        return;
    }
    /* Few outer slabs (batch 1 along channels): the threads share out pieces of every input's
     * copies instead, CONCAT_PIECE floats each, so a three-input concat is not split 2:1. */
    int64_t pieces = 0;
    for (int i = 0; i < node->nin; i++)
        pieces += (node->ins[i]->shape[p->axis] * p->inner + CONCAT_PIECE - 1) / CONCAT_PIECE;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t q = 0; q < p->outer * pieces; q++) {
        int64_t o = q / pieces, k = q % pieces, off = 0;
        for (int i = 0; i < node->nin; i++) {
            int64_t len = node->ins[i]->shape[p->axis] * p->inner, np = (len + CONCAT_PIECE - 1) / CONCAT_PIECE;
            if (k < np) {
                int64_t a = k * CONCAT_PIECE, n = len - a < CONCAT_PIECE ? len - a : CONCAT_PIECE;
                memcpy(node->out->data + o * ylen + off + a, node->ins[i]->data + o * len + a, (size_t)n * sizeof(float));
                break;
            }
            k -= np;
            off += len;
        }
    }
}

/* dy -> each dx_i (+=, or = into a fresh gradient) from its slab. Inputs one after the other:
 * one tensor may appear twice, and its second slab must add to what the first stored. */
static void concat_backward(nn_ctx *ctx, nn_node *node) {
    const concat_p *p = NN_NODE_P(node, concat_p);
    int64_t ylen = node->out->shape[p->axis] * p->inner, off = 0;
    const float *dy = node->out->grad;
    for (int i = 0; i < node->nin; i++) {
        int64_t len = node->ins[i]->shape[p->axis] * p->inner;
        int fresh;
        float *dx = nn__grad_first(ctx, node->ins[i], &fresh);
        if (dx) {
#pragma omp parallel for schedule(static) if (p->outer * len > NN_PAR_MIN && p->outer > 1)
            for (int64_t o = 0; o < p->outer; o++) nn__vec_put(dx + o * len, dy + o * ylen + off, len, fresh);
        }
        off += len;
    }
}

const nn_op_impl nn_op_concat_impl = {concat_forward, concat_backward};

nn_tensor *nn_concat(nn_ctx *ctx, nn_tensor *const *xs, int n, int axis) {
    char s0[64], si[64];
    NN_ASSERT(n >= 1, "concat: no inputs");
    const nn_tensor *x0 = xs[0];
    NN_ASSERT(axis >= 0 && axis < x0->ndim, "concat: axis %d outside rank %d", axis, x0->ndim);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        NN_ASSERT(xs[i] && xs[i]->ndim == x0->ndim, "concat: input %d missing or of another rank", i);
        for (int d = 0; d < x0->ndim; d++)
            NN_ASSERT(d == axis || xs[i]->shape[d] == x0->shape[d], "concat: input %d %s does not match %s on axis %d",
                      i, NN_SHAPE_STR(xs[i], si), NN_SHAPE_STR(x0, s0), axis);
        total += xs[i]->shape[axis];
    }
    nn_node *node = nn__node(ctx, NN_OP_CONCAT, n, (nn_tensor **)xs);
    concat_p *p = NN_NODE_P(node, concat_p);
    p->axis = axis;
    p->outer = 1;
    p->inner = 1;
    for (int d = 0; d < axis; d++) p->outer *= x0->shape[d];
    for (int d = axis + 1; d < x0->ndim; d++) p->inner *= x0->shape[d];
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[axis] = total;
    node->out = nn__tensor(ctx, x0->ndim, shape);
    nn__node_run(ctx, node);
    return node->out;
}
