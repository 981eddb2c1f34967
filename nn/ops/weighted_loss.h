/* Shared constructor logic of the element-wise weighted losses (bce_with_logits.c, smooth_l1.c):
 * target and weight are copied out of the caller's tensors (not differentiated), and the
 * normaliser is fixed when the op is built. */
#ifndef NN_OPS_WEIGHTED_LOSS_H
#define NN_OPS_WEIGHTED_LOSS_H

#include "nn/nn_impl.h"

typedef struct nn__wloss_saved {
    float *target, *weight; /* weight NULL: all 1 */
    double denom;           /* 0: the loss is 0 */
} nn__wloss_saved;

static inline nn__wloss_saved *nn__wloss_prepare(nn_ctx *ctx, const char *op, nn_tensor *x, nn_tensor *target,
                                                 nn_tensor *weight, float denom) {
    char sx[64], st[64];
    NN_ASSERT(target && nn_tensor_same_shape(x, target), "%s: target %s must match x %s", op,
              target ? NN_SHAPE_STR(target, st) : "NULL", NN_SHAPE_STR(x, sx));
    NN_ASSERT(!weight || nn_tensor_same_shape(x, weight), "%s: weight %s must match x %s", op,
              NN_SHAPE_STR(weight, st), NN_SHAPE_STR(x, sx));
    nn__wloss_saved *s = nn__alloc(ctx, sizeof *s);
    s->target = nn__alloc(ctx, (size_t)x->numel * sizeof(float));
    /* nn_tensor_host: the target and weight may live on a device (copied to the host here). */
    memcpy(s->target, nn_tensor_host(ctx, target), (size_t)x->numel * sizeof(float));
    s->weight = NULL;
    if (weight) {
        s->weight = nn__alloc(ctx, (size_t)x->numel * sizeof(float));
        memcpy(s->weight, nn_tensor_host(ctx, weight), (size_t)x->numel * sizeof(float));
    }
    if (denom > 0.0f) {
        s->denom = denom;
    } else {
        double sw = 0.0;
        for (int64_t i = 0; i < x->numel; i++) sw += s->weight ? s->weight[i] : 1.0;
        s->denom = sw;
    }
    return s;
}

#endif
