/* crop: a spatial window of an NCHW tensor. */
#include "nn/nn_impl.h"

typedef struct crop_p {
    int64_t top, left;
} crop_p;

/* x [N,C,H,W] -> y [N,C,h,w] from (top, left) */
static void crop_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const crop_p *p = NN_NODE_P(node, crop_p);
    const nn_tensor *x = node->ins[0];
    nn_tensor *y = node->out;
    int64_t h = NN_H(x), w = NN_W(x), oh = NN_H(y), ow = NN_W(y);
#pragma omp parallel for schedule(static) if (y->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < NN_N(x) * NN_C(x); nc++)
        for (int64_t i = 0; i < oh; i++)
            memcpy(y->data + (nc * oh + i) * ow, x->data + (nc * h + i + p->top) * w + p->left,
                   (size_t)ow * sizeof(float));
}

/* dy -> dx (+=) in the window */
static void crop_backward(nn_ctx *ctx, nn_node *node) {
    const crop_p *p = NN_NODE_P(node, crop_p);
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const nn_tensor *x = node->ins[0];
    int64_t h = NN_H(x), w = NN_W(x), oh = NN_H(node->out), ow = NN_W(node->out);
#pragma omp parallel for schedule(static) if (node->out->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < NN_N(x) * NN_C(x); nc++)
        for (int64_t i = 0; i < oh; i++)
            nn__vec_add(dx + (nc * h + i + p->top) * w + p->left, node->out->grad + (nc * oh + i) * ow, ow);
}

const nn_op_impl nn_op_crop_impl = {crop_forward, crop_backward};

nn_tensor *nn_crop(nn_ctx *ctx, nn_tensor *x, int64_t top, int64_t left, int64_t h, int64_t w) {
    char sx[64];
    NN_ASSERT(x->ndim == 4, "crop: x must be [N,C,H,W], has rank %d", x->ndim);
    NN_ASSERT(top >= 0 && left >= 0 && h >= 1 && w >= 1 && top + h <= NN_H(x) && left + w <= NN_W(x),
              "crop: window (%lld,%lld) %lldx%lld outside %s", (long long)top, (long long)left, (long long)h,
              (long long)w, NN_SHAPE_STR(x, sx));
    nn_node *node = nn__node(ctx, NN_OP_CROP, 1, &x);
    crop_p *p = NN_NODE_P(node, crop_p);
    p->top = top;
    p->left = left;
    node->out = nn__tensor(ctx, 4, NN_SHAPE(NN_N(x), NN_C(x), h, w));
    nn__node_run(ctx, node);
    return node->out;
}
