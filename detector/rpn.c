/* Region proposal network: the head (3x3 conv, objectness and box-delta 1x1 convs), its
 * training targets and losses, and proposals from its outputs. The geometry (anchors,
 * matching, sampling, NMS) is frcnn.h's; this file glues it to tensors. */
#include "detector/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

void det_rpn_build(det_model *m, nd_rng *rng) {
    int64_t c = m->feat_channels, r = m->cfg.rpn_channels, a = m->anchors_per_loc;
    /* torchvision's RPNHead: N(0, 0.01) weights, zero biases. */
    nn_init_normal(nn_params_add(m->ps, "rpn.conv.w", 4, NN_SHAPE(r, c, 3, 3), 0), 0.0, 0.01, rng);
    nn_params_add(m->ps, "rpn.conv.b", 1, NN_SHAPE(r), NN_PARAM_NO_DECAY);
    nn_init_normal(nn_params_add(m->ps, "rpn.cls.w", 4, NN_SHAPE(a, r, 1, 1), 0), 0.0, 0.01, rng);
    nn_params_add(m->ps, "rpn.cls.b", 1, NN_SHAPE(a), NN_PARAM_NO_DECAY);
    nn_init_normal(nn_params_add(m->ps, "rpn.box.w", 4, NN_SHAPE(4 * a, r, 1, 1), 0), 0.0, 0.01, rng);
    nn_params_add(m->ps, "rpn.box.b", 1, NN_SHAPE(4 * a), NN_PARAM_NO_DECAY);
}

void det_rpn_forward(det_model *m, nn_ctx *ctx, nn_tensor *map, nn_tensor **logits,
                     nn_tensor **deltas) {
    nn_conv2d_params p3 = nn_conv2d_same(1, 1), p1 = nn_conv2d_same(1, 1);
    nn_tensor *t = nn_conv2d(ctx, map, nn_params_get(m->ps, "rpn.conv.w"),
                             nn_params_get(m->ps, "rpn.conv.b"), &p3);
    t = nn_relu(ctx, t);
    *logits = nn_conv2d(ctx, t, nn_params_get(m->ps, "rpn.cls.w"), nn_params_get(m->ps, "rpn.cls.b"), &p1);
    *deltas = nn_conv2d(ctx, t, nn_params_get(m->ps, "rpn.box.w"), nn_params_get(m->ps, "rpn.box.b"), &p1);
}

float *det_rpn_anchors(const det_model *m, int64_t h, int64_t w) {
    float *a = malloc((size_t)(h * w * m->anchors_per_loc) * 4 * sizeof *a);
    if (!a) return NULL;
    /* The config was validated, so this cannot fail on parameters. */
    int rc = det_anchors_grid(&m->cfg.anchors, h, w, a);
    NN_ASSERT(rc == 0, "detector: anchors: %s", nd_last_error());
    return a;
}

int det_rpn_loss(det_model *m, nn_ctx *ctx, const det_batch *b, const float *anchors,
                 nn_tensor *logits, nn_tensor *deltas, nd_rng *rng, nn_tensor **loss_cls,
                 nn_tensor **loss_box, det_losses *out) {
    const int64_t A = m->anchors_per_loc, h = logits->shape[2], w = logits->shape[3];
    const int64_t hw = h * w, na = hw * A, n = b->n;
    /* Targets in the conv layout of the outputs: objectness channel a, deltas channel a*4 + c. */
    /* Host tensors (filled here; the losses copy them) whatever device the ctx runs on. */
    nn_tensor *obj_t = nn_tensor_new_host(ctx, 4, logits->shape), *obj_w = nn_tensor_new_host(ctx, 4, logits->shape);
    nn_tensor *box_t = nn_tensor_new_host(ctx, 4, deltas->shape), *box_w = nn_tensor_new_host(ctx, 4, deltas->shape);
    int64_t maxgt = 1;
    for (int32_t i = 0; i < n; i++)
        if (b->box_first[i + 1] - b->box_first[i] > maxgt) maxgt = b->box_first[i + 1] - b->box_first[i];
    float *gt = malloc((size_t)maxgt * 4 * sizeof *gt), *enc = malloc(4 * sizeof *enc * (size_t)na);
    uint8_t *crowd = malloc((size_t)maxgt);
    int64_t *matches = malloc((size_t)na * sizeof *matches);
    int64_t *pos = malloc((size_t)m->cfg.rpn_batch * sizeof *pos);
    int64_t *neg = malloc((size_t)m->cfg.rpn_batch * sizeof *neg);
    int rc = (gt && enc && crowd && matches && pos && neg) ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory");
    int64_t sampled = 0;
    for (int32_t i = 0; i < n && rc == 0; i++) {
        int64_t ng = det_image_gt(b, i, gt, crowd, NULL);
        if ((rc = det_match_boxes(gt, crowd, ng, anchors, na, &m->cfg.rpn_match, matches))) break;
        int64_t np = 0, nn_ = 0;
        if ((rc = det_sample_balanced(matches, na, m->cfg.rpn_batch, m->cfg.rpn_pos_fraction, rng, pos,
                                      &np, neg, &nn_)))
            break;
        float *ot = obj_t->data + i * A * hw, *ow = obj_w->data + i * A * hw;
        float *bt = box_t->data + i * 4 * A * hw, *bw = box_w->data + i * 4 * A * hw;
        for (int64_t k = 0; k < np + nn_; k++) {
            int64_t idx = k < np ? pos[k] : neg[k - np];
            int64_t loc = idx / A, a = idx % A; /* anchor order (y, x, a) */
            ot[a * hw + loc] = k < np ? 1.0f : 0.0f;
            ow[a * hw + loc] = 1.0f;
        }
        for (int64_t k = 0; k < np; k++) {
            int64_t idx = pos[k], loc = idx / A, a = idx % A;
            det_box_encode(&m->cfg.prop_train.coder, gt + 4 * matches[idx], anchors + 4 * idx, 1, enc);
            for (int c = 0; c < 4; c++) {
                bt[(a * 4 + c) * hw + loc] = enc[c];
                bw[(a * 4 + c) * hw + loc] = 1.0f;
            }
        }
        sampled += np + nn_;
        out->rpn_pos += np, out->rpn_neg += nn_;
    }
    free(gt), free(enc), free(crowd), free(matches), free(pos), free(neg);
    if (rc) return rc;
    float denom = sampled > 0 ? (float)sampled : 1.0f;
    *loss_cls = nn_bce_with_logits(ctx, logits, obj_t, obj_w, denom);
    *loss_box = nn_smooth_l1(ctx, deltas, box_t, box_w, m->cfg.rpn_beta, denom);
    return ND_OK;
}

int det_rpn_image_proposals(det_model *m, const det_batch *b, int32_t i, const float *anchors,
                            nn_tensor *logits, nn_tensor *deltas, const det_proposal_params *p,
                            float *boxes, int64_t *n) {
    const int64_t A = m->anchors_per_loc, h = logits->shape[2], w = logits->shape[3];
    const int64_t na = h * w * A;
    float *obj = malloc((size_t)na * sizeof *obj), *del = malloc((size_t)na * 4 * sizeof *del);
    float *scores = malloc((size_t)p->post_nms_top_n * sizeof *scores);
    int rc = (obj && del && scores) ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory");
    if (rc == 0) {
        det_rpn_to_anchor_order(logits->data + (int64_t)i * A * h * w, A, 1, h, w, obj);
        det_rpn_to_anchor_order(deltas->data + (int64_t)i * 4 * A * h * w, A, 4, h, w, del);
        rc = det_rpn_proposals(anchors, obj, del, na, (float)b->valid_w[i], (float)b->valid_h[i], p,
                               boxes, scores, NULL, n);
    }
    free(obj), free(del), free(scores);
    return rc;
}
