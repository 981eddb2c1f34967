/* pad: constant padding of the two spatial dims of an NCHW tensor. */
#include "nn/nn_impl.h"

typedef struct pad_p {
    int32_t t, b, l, r;
    float value;
} pad_p;

/* x [N,C,H,W] -> y [N,C,H+t+b,W+l+r] */
static void pad_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const pad_p *p = NN_NODE_P(node, pad_p);
    const nn_tensor *x = node->ins[0];
    nn_tensor *y = node->out;
    int64_t h = NN_H(x), w = NN_W(x), oh = NN_H(y), ow = NN_W(y);
#pragma omp parallel for schedule(static) if (y->numel > NN_PAR_MIN)
    for (int64_t nc = 0; nc < NN_N(x) * NN_C(x); nc++) {
        float *yp = y->data + nc * oh * ow;
        for (int64_t i = 0; i < oh * ow; i++) yp[i] = p->value;
        for (int64_t i = 0; i < h; i++)
            memcpy(yp + (i + p->t) * ow + p->l, x->data + (nc * h + i) * w, (size_t)w * sizeof(float));
    }
}

/* dy -> dx (+=) from the interior */
static void pad_backward(nn_ctx *ctx, nn_node *node) {
    const pad_p *p = NN_NODE_P(node, pad_p);
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx) return;
    const nn_tensor *x = node->ins[0];
    int64_t h = NN_H(x), w = NN_W(x), oh = NN_H(node->out), ow = NN_W(node->out);
    for (int64_t nc = 0; nc < NN_N(x) * NN_C(x); nc++)
        for (int64_t i = 0; i < h; i++)
            nn__vec_add(dx + (nc * h + i) * w, node->out->grad + nc * oh * ow + (i + p->t) * ow + p->l, w);
}

const nn_op_impl nn_op_pad_impl = {pad_forward, pad_backward};

nn_tensor *nn_pad(nn_ctx *ctx, nn_tensor *x, int32_t t, int32_t b, int32_t l, int32_t r, float value) {
    NN_ASSERT(x->ndim == 4, "pad: x must be [N,C,H,W], has rank %d", x->ndim);
    NN_ASSERT(t >= 0 && b >= 0 && l >= 0 && r >= 0, "pad: negative padding (use nn_crop)");
    nn_node *node = nn__node(ctx, NN_OP_PAD, 1, &x);
    pad_p *p = NN_NODE_P(node, pad_p);
    p->t = t; p->b = b; p->l = l; p->r = r; p->value = value;
    node->out = nn__tensor(ctx, 4, NN_SHAPE(NN_N(x), NN_C(x), NN_H(x) + t + b, NN_W(x) + l + r));
    nn__node_run(ctx, node);
    return node->out;
}
