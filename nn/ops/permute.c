/* permute: reorder dimensions (e.g. NCHW -> NHWC for the RPN's per-anchor outputs). */
#include "nn/nn_impl.h"

typedef struct permute_p {
    int32_t perm[NN_MAX_DIMS];
} permute_p;

/* Strides of x's dims taken in output order: out index (i0..i3) reads x at sum i_d * s[d]. */
static void in_strides(const nn_tensor *x, const int32_t *perm, int64_t s[NN_MAX_DIMS]) {
    int64_t xs[NN_MAX_DIMS];
    xs[NN_MAX_DIMS - 1] = 1;
    for (int d = NN_MAX_DIMS - 2; d >= 0; d--) xs[d] = xs[d + 1] * x->shape[d + 1];
    for (int d = 0; d < NN_MAX_DIMS; d++) s[d] = xs[perm[d]];
}

/* x [d0,d1,d2,d3] -> y [d_perm0, .., d_perm3]; backward is the same walk with += */
static void walk(const nn_node *node, float *dst, const float *src, int backward) {
    const permute_p *p = NN_NODE_P(node, permute_p);
    const nn_tensor *y = node->out;
    int64_t s[NN_MAX_DIMS];
    in_strides(node->ins[0], p->perm, s);
    int64_t k = 0;
    for (int64_t a = 0; a < y->shape[0]; a++)
        for (int64_t b = 0; b < y->shape[1]; b++)
            for (int64_t c = 0; c < y->shape[2]; c++)
                for (int64_t d = 0; d < y->shape[3]; d++, k++) {
                    int64_t i = a * s[0] + b * s[1] + c * s[2] + d * s[3];
                    if (backward)
                        dst[i] += src[k];
                    else
                        dst[k] = src[i];
                }
}

static void permute_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    walk(node, node->out->data, node->ins[0]->data, 0);
}

static void permute_backward(nn_ctx *ctx, nn_node *node) {
    float *dx = nn__grad(ctx, node->ins[0]);
    if (dx) walk(node, dx, node->out->grad, 1);
}

const nn_op_impl nn_op_permute_impl = {permute_forward, permute_backward};

nn_tensor *nn_permute(nn_ctx *ctx, nn_tensor *x, const int32_t *perm) {
    char sx[64];
    int seen = 0;
    for (int d = 0; d < x->ndim; d++) {
        NN_ASSERT(perm[d] >= 0 && perm[d] < x->ndim && !(seen & (1 << perm[d])), "permute: %s: perm is not a permutation",
                  NN_SHAPE_STR(x, sx));
        seen |= 1 << perm[d];
    }
    nn_node *node = nn__node(ctx, NN_OP_PERMUTE, 1, &x);
    permute_p *p = NN_NODE_P(node, permute_p);
    int64_t shape[NN_MAX_DIMS];
    for (int d = 0; d < NN_MAX_DIMS; d++) {
        p->perm[d] = d < x->ndim ? perm[d] : d;
        shape[d] = x->shape[p->perm[d]];
    }
    node->out = nn__tensor(ctx, x->ndim, shape);
    nn__node_run(ctx, node);
    return node->out;
}
