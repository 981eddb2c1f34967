/* conv2d_fused: ReLU -> conv2d -> eval batch norm -> ReLU in one pass, for inference (nn.h,
 * nn_conv2d_fused). Each of a NASNet cell's ReLU-conv-BN layers run as separate ops reads and
 * writes its activations three or four times (the ReLU copy, the convolution, the normalisation,
 * the ReLU); fused, the ReLU happens as the convolution reads its input (in the padding or
 * input-packing copies its kernels make anyway) and the normalisation and ReLU as it stores each
 * output. Only built when no gradient is needed, so the op has no backward pass; otherwise the
 * constructor records the separate ops. The values equal the separate ops' bit for bit: the
 * convolution sums are the same (same kernels, same order), the normalisation is the same
 * multiply then add (bn_affine.h), and ReLU is exact. */
#include "nn/nn_impl.h"
#include "nn/ops/bn_affine.h"
#include "nn/ops/conv2d_epi.h"

/* The conv2d parameters first: nn/ops/conv2d.c reads them as nn_conv2d_params. */
typedef struct fused_p {
    nn_conv2d_params conv; /* explicit pads */
    float eps;
    int32_t relu_in, relu_out, bn;
    nn_tensor *gamma, *beta, *mean, *var;
} fused_p;
NN_NODE_PARAMS_FIT(fused_p);

/* x [N,Cin,H,W], w [Cout,Cin/G,KH,KW] -> y [N,Cout,OH,OW] */
static void fused_forward(nn_ctx *ctx, nn_node *node) {
    const fused_p *p = NN_NODE_P(node, fused_p);
    int64_t c = node->out->shape[1];
    nn_conv_epi e = {NULL, NULL, p->relu_out};
    if (p->bn) {
        float *scale = nn__alloc(ctx, (size_t)(2 * c) * sizeof(float)), *shift = scale + c, inv;
        const float *g = p->gamma ? p->gamma->data : NULL, *b = p->beta ? p->beta->data : NULL;
        for (int64_t ch = 0; ch < c; ch++)
            nn__bn_affine(p->mean->data[ch], p->var->data[ch], p->eps, g, b, ch, &inv, &scale[ch], &shift[ch]);
        e.scale = scale;
        e.shift = shift;
    }
    nn__conv2d_forward_ex(ctx, node, p->relu_in, e.scale || e.relu ? &e : NULL);
}

static void fused_backward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    (void)node;
    NN_ASSERT(0, "conv2d_fused: no backward pass (the op is built only when no gradient is needed)");
}

const nn_op_impl nn_op_conv2d_fused_impl = {fused_forward, fused_backward};

static int needs_grad(const nn_ctx *ctx, nn_tensor *const *ts, int n) {
    if (!ctx->grad_enabled) return 0;
    for (int i = 0; i < n; i++)
        if (ts[i] && (ts[i]->flags & NN_TENSOR_REQUIRES_GRAD)) return 1;
    return 0;
}

nn_tensor *nn_conv2d_fused(nn_ctx *ctx, nn_tensor *x, int relu_in, nn_tensor *w, const nn_conv2d_params *p,
                           const nn_bn_tensors *bn_t, const nn_bn_params *bn, int relu_out) {
    NN_ASSERT(!bn || bn_t, "conv2d_fused: batch norm without its tensors");
    nn_tensor *ts[4] = {x, w, bn ? bn_t->gamma : NULL, bn ? bn_t->beta : NULL};
    /* The fused pass: CPU memory, no gradient, and batch norm (if any) with running statistics
     * (training-mode batch norm needs the whole convolution's output before it can normalise). */
    int fused = ctx->backend->host && !needs_grad(ctx, ts, 4) && (!bn || !ctx->training);
    /* Negative explicit pads crop the input (the window starts inside it): im2col's bounds
     * handle them, so they are taken only where the pass is fused and goes through im2col. */
    int crop = !p->same && (p->pad_t < 0 || p->pad_b < 0 || p->pad_l < 0 || p->pad_r < 0);
    NN_ASSERT(!crop || (fused && p->groups == 1 && (p->stride_h > 1 || p->stride_w > 1)),
              "conv2d_fused: negative pads need the fused pass (no gradient, CPU), groups 1 and a stride > 1");
    if (!fused) {
        nn_tensor *y = nn_conv2d(ctx, relu_in ? nn_relu(ctx, x) : x, w, NULL, p);
        if (bn) y = nn_batch_norm(ctx, y, bn_t->gamma, bn_t->beta, bn_t->running_mean, bn_t->running_var, bn);
        return relu_out ? nn_relu(ctx, y) : y;
    }
    NN_ASSERT(!bn || (bn_t->running_mean && bn_t->running_var), "conv2d_fused: evaluation needs running statistics");
    NN_ASSERT(!bn || bn->eps > 0.0f, "conv2d_fused: eps must be > 0");
    int64_t cout = w->shape[0];
    NN_ASSERT(!bn || (bn_t->running_mean->numel == cout && bn_t->running_var->numel == cout &&
                      (!bn_t->gamma || bn_t->gamma->numel == cout) && (!bn_t->beta || bn_t->beta->numel == cout)),
              "conv2d_fused: batch-norm tensors must have %lld elements", (long long)cout);
    fused_p q;
    memset(&q, 0, sizeof q);
    nn_conv2d_params pc = *p;
    if (crop) {
        NN_ASSERT(NN_H(x) + p->pad_t + p->pad_b >= p->dil_h * (w->shape[2] - 1) + 1 &&
                      NN_W(x) + p->pad_l + p->pad_r >= p->dil_w * (w->shape[3] - 1) + 1,
                  "conv2d_fused: the pads crop away the whole input");
        pc.pad_t = pc.pad_b = pc.pad_l = pc.pad_r = 0;
    }
    q.conv = nn__conv2d_resolve(x, w, NULL, &pc);
    if (crop) {
        q.conv.pad_t = p->pad_t;
        q.conv.pad_b = p->pad_b;
        q.conv.pad_l = p->pad_l;
        q.conv.pad_r = p->pad_r;
    }
    q.eps = bn ? bn->eps : 0.0f;
    q.relu_in = relu_in != 0;
    q.relu_out = relu_out != 0;
    q.bn = bn != NULL;
    if (bn) {
        q.gamma = bn_t->gamma;
        q.beta = bn_t->beta;
        q.mean = bn_t->running_mean;
        q.var = bn_t->running_var;
    }
    nn_tensor *ins[2] = {x, w};
    nn_node *node = nn__node(ctx, NN_OP_CONV2D_FUSED, 2, ins);
    *NN_NODE_P(node, fused_p) = q;
    int64_t oh, ow;
    nn__conv2d_out_hw(x, w, &q.conv, &oh, &ow);
    node->out = nn__tensor(ctx, 4, NN_SHAPE(NN_N(x), cout, oh, ow));
    nn__node_run(ctx, node);
    return node->out;
}
