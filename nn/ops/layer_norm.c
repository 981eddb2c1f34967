/* layer_norm: normalisation per example over C,H,W (TF's layer_norm with begin_norm_axis=1), per-channel gamma/beta. */
#include "nn/nn_impl.h"
#include "nn/ops/norm_groups.h"

typedef struct layer_norm_p {
    float eps;
    int32_t gi, bi; /* input index of gamma / beta, or -1 */
} layer_norm_p;

typedef struct layer_norm_saved {
    float *mean, *invstd;
} layer_norm_saved;

static void geometry(const nn_tensor *x, int64_t *groups, int64_t *m, int64_t *hw) {
    *groups = x->shape[0];
    *m = x->numel / x->shape[0];
    *hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
}

/* x [N,C,H,W] or [N,C], gamma/beta [C] -> y [same] */
static void layer_norm_forward(nn_ctx *ctx, nn_node *node) {
    const layer_norm_p *p = NN_NODE_P(node, layer_norm_p);
    const nn_tensor *x = node->ins[0];
    int64_t groups, m, hw;
    geometry(x, &groups, &m, &hw);
    layer_norm_saved *s = node->saved = nn__alloc(ctx, sizeof *s);
    s->mean = nn__alloc(ctx, (size_t)groups * sizeof(float));
    s->invstd = nn__alloc(ctx, (size_t)groups * sizeof(float));
    nn__norm_groups_forward(x->data, node->out->data, p->gi >= 0 ? node->ins[p->gi]->data : NULL,
                            p->bi >= 0 ? node->ins[p->bi]->data : NULL, groups, m, x->shape[1], hw, p->eps, s->mean,
                            s->invstd);
}

/* dy -> dx, dgamma, dbeta (+=) */
static void layer_norm_backward(nn_ctx *ctx, nn_node *node) {
    const layer_norm_p *p = NN_NODE_P(node, layer_norm_p);
    const layer_norm_saved *s = node->saved;
    nn_tensor *x = node->ins[0];
    int64_t groups, m, hw;
    geometry(x, &groups, &m, &hw);
    nn__norm_groups_backward(x->data, node->out->grad, p->gi >= 0 ? node->ins[p->gi]->data : NULL, groups, m,
                             x->shape[1], hw, s->mean, s->invstd, nn__grad(ctx, x),
                             p->gi >= 0 ? nn__grad(ctx, node->ins[p->gi]) : NULL,
                             p->bi >= 0 ? nn__grad(ctx, node->ins[p->bi]) : NULL);
}

const nn_op_impl nn_op_layer_norm_impl = {layer_norm_forward, layer_norm_backward};

nn_tensor *nn_layer_norm(nn_ctx *ctx, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, float eps) {
    char sx[64];
    NN_ASSERT(x->ndim == 4 || x->ndim == 2, "layer_norm: x %s must be x [N,C,H,W] or [N,C]", NN_SHAPE_STR(x, sx));
    NN_ASSERT(!gamma || gamma->numel == x->shape[1], "layer_norm: gamma must have C elements");
    NN_ASSERT(!beta || beta->numel == x->shape[1], "layer_norm: beta must have C elements");
    NN_ASSERT(eps > 0.0f, "layer_norm: eps must be > 0");
    nn_tensor *ins[3] = {x, NULL, NULL};
    int nin = 1;
    layer_norm_p q = {eps, -1, -1};
    if (gamma) {
        q.gi = nin;
        ins[nin++] = gamma;
    }
    if (beta) {
        q.bi = nin;
        ins[nin++] = beta;
    }
    nn_node *node = nn__node(ctx, NN_OP_LAYER_NORM, nin, ins);
    *NN_NODE_P(node, layer_norm_p) = q;
    node->out = nn__tensor_like(ctx, x);
    nn__node_run(ctx, node);
    return node->out;
}
