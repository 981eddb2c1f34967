/* Backbones of the detector: the dispatch, and the plain convnet (4 stages of two ReLU-BN 3x3
 * convs, stride 2 on the first of each, width doubled per stage: stride 16 at the end). The
 * NASNet backbone lives in model_nasnet.c. */
#include "detector/model_internal.h"

#include <stdio.h>
#include <string.h>

#include "common/status.h"

enum { CONV_STAGES = 4, CONV_PER_STAGE = 2 };

static void add_bn(nn_params *ps, const char *prefix, int64_t c) {
    char name[128];
    snprintf(name, sizeof name, "%s.bn.gamma", prefix);
    nn_init_constant(nn_params_add(ps, name, 1, NN_SHAPE(c), NN_PARAM_NO_DECAY), 1.0f);
    snprintf(name, sizeof name, "%s.bn.beta", prefix);
    nn_params_add(ps, name, 1, NN_SHAPE(c), NN_PARAM_NO_DECAY);
    snprintf(name, sizeof name, "%s.bn.mean", prefix);
    nn_params_add(ps, name, 1, NN_SHAPE(c), NN_PARAM_BUFFER);
    snprintf(name, sizeof name, "%s.bn.var", prefix);
    nn_init_constant(nn_params_add(ps, name, 1, NN_SHAPE(c), NN_PARAM_BUFFER), 1.0f);
}

static int convnet_build(det_model *m, nd_rng *rng) {
    int64_t cin = 3, w = m->cfg.conv_width;
    char name[128];
    for (int s = 0; s < CONV_STAGES; s++, w *= 2) {
        for (int j = 0; j < CONV_PER_STAGE; j++) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "backbone.s%d.c%d", s, j);
            snprintf(name, sizeof name, "%s.w", prefix);
            det_init_he(nn_params_add(m->ps, name, 4, NN_SHAPE(w, cin, 3, 3), 0), rng);
            add_bn(m->ps, prefix, w);
            cin = w;
        }
    }
    m->feat_channels = (int32_t)cin;
    return ND_OK;
}

static nn_tensor *get(det_model *m, const char *name) {
    nn_tensor *t = nn_params_get(m->ps, name);
    NN_ASSERT(t, "detector: parameter %s missing", name);
    return t;
}

static nn_tensor *convnet_forward(det_model *m, nn_ctx *ctx, nn_tensor *x) {
    nn_bn_params bp = {m->cfg.bn_eps, m->cfg.bn_momentum};
    char n1[128], n2[128], n3[128], n4[128], n5[128];
    for (int s = 0; s < CONV_STAGES; s++) {
        for (int j = 0; j < CONV_PER_STAGE; j++) {
            snprintf(n1, sizeof n1, "backbone.s%d.c%d.w", s, j);
            snprintf(n2, sizeof n2, "backbone.s%d.c%d.bn.gamma", s, j);
            snprintf(n3, sizeof n3, "backbone.s%d.c%d.bn.beta", s, j);
            snprintf(n4, sizeof n4, "backbone.s%d.c%d.bn.mean", s, j);
            snprintf(n5, sizeof n5, "backbone.s%d.c%d.bn.var", s, j);
            nn_conv2d_params cp = nn_conv2d_same(j == 0 ? 2 : 1, 1);
            x = nn_conv2d(ctx, x, get(m, n1), NULL, &cp);
            x = nn_batch_norm(ctx, x, get(m, n2), get(m, n3), get(m, n4), get(m, n5), &bp);
            x = nn_relu(ctx, x);
        }
    }
    return x;
}

int det_backbone_build(det_model *m, nd_rng *rng) {
    if (m->cfg.backbone == DET_BACKBONE_CONVNET) return convnet_build(m, rng);
    return det_nasnet_build(m, rng);
}

void det_backbone_forward(det_model *m, nn_ctx *ctx, nn_tensor *x, det_features *f) {
    NN_ASSERT(x->ndim == 4 && x->shape[1] == 3 && x->shape[2] % 16 == 0 && x->shape[3] % 16 == 0,
              "detector: input must be [N,3,H,W] with H, W multiples of 16");
    memset(f, 0, sizeof *f);
    if (m->cfg.backbone == DET_BACKBONE_CONVNET) {
        f->map = convnet_forward(m, ctx, x);
        return;
    }
    det_nasnet_forward(m, ctx, x, f);
}

void det_backbone_free(det_model *m) {
    if (m->cfg.backbone == DET_BACKBONE_NASNET) det_nasnet_free(m);
}
