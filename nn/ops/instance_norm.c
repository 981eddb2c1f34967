/* instance_norm: normalisation per example and channel over H,W, per-channel gamma/beta. */
#include "nn/nn_impl.h"
#include "nn/ops/norm_groups.h"

typedef struct instance_norm_p {
    float eps;
    int32_t gi, bi; /* input index of gamma / beta, or -1 */
} instance_norm_p;

typedef struct instance_norm_saved {
    float *mean, *invstd;
} instance_norm_saved;

static void geometry(const nn_tensor *x, int64_t *groups, int64_t *m, int64_t *hw) {
    *groups = x->shape[0] * x->shape[1];
    *m = x->shape[2] * x->shape[3];
    *hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
}

/* x [N,C,H,W], gamma/beta [C] -> y [same] */
static void instance_norm_forward(nn_ctx *ctx, nn_node *node) {
    const instance_norm_p *p = NN_NODE_P(node, instance_norm_p);
    const nn_tensor *x = node->ins[0];
    int64_t groups, m, hw;
    geometry(x, &groups, &m, &hw);
    instance_norm_saved *s = node->saved = nn__alloc(ctx, sizeof *s);
    s->mean = nn__alloc(ctx, (size_t)groups * sizeof(float));
    s->invstd = nn__alloc(ctx, (size_t)groups * sizeof(float));
    nn__norm_groups_forward(x->data, node->out->data, p->gi >= 0 ? node->ins[p->gi]->data : NULL,
                            p->bi >= 0 ? node->ins[p->bi]->data : NULL, groups, m, x->shape[1], hw, p->eps, s->mean,
                            s->invstd);
}

/* dy -> dx, dgamma, dbeta (+=) */
static void instance_norm_backward(nn_ctx *ctx, nn_node *node) {
    const instance_norm_p *p = NN_NODE_P(node, instance_norm_p);
    const instance_norm_saved *s = node->saved;
    nn_tensor *x = node->ins[0];
    int64_t groups, m, hw;
    geometry(x, &groups, &m, &hw);
    nn__norm_groups_backward(x->data, node->out->grad, p->gi >= 0 ? node->ins[p->gi]->data : NULL, groups, m,
                             x->shape[1], hw, s->mean, s->invstd, nn__grad(ctx, x),
                             p->gi >= 0 ? nn__grad(ctx, node->ins[p->gi]) : NULL,
                             p->bi >= 0 ? nn__grad(ctx, node->ins[p->bi]) : NULL);
}

const nn_op_impl nn_op_instance_norm_impl = {instance_norm_forward, instance_norm_backward};

nn_tensor *nn_instance_norm(nn_ctx *ctx, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, float eps) {
    char sx[64];
    NN_ASSERT(x->ndim == 4, "instance_norm: x %s must be x [N,C,H,W]", NN_SHAPE_STR(x, sx));
    NN_ASSERT(!gamma || gamma->numel == x->shape[1], "instance_norm: gamma must have C elements");
    NN_ASSERT(!beta || beta->numel == x->shape[1], "instance_norm: beta must have C elements");
    NN_ASSERT(eps > 0.0f, "instance_norm: eps must be > 0");
    nn_tensor *ins[3] = {x, NULL, NULL};
    int nin = 1;
    instance_norm_p q = {eps, -1, -1};
    if (gamma) {
        q.gi = nin;
        ins[nin++] = gamma;
    }
    if (beta) {
        q.bi = nin;
        ins[nin++] = beta;
    }
    nn_node *node = nn__node(ctx, NN_OP_INSTANCE_NORM, nin, ins);
    *NN_NODE_P(node, instance_norm_p) = q;
    node->out = nn__tensor_like(ctx, x);
    nn__node_run(ctx, node);
    return node->out;
}
