/* The box classifier (second stage): ROI features, the head, and its training targets.
 *   c4:     ROIAlign (roi_size^2, sampling 2) on the stride-16 (or 8) map -> FC head_dim -> ReLU ->
 *           FC head_dim -> ReLU -> class logits and class-specific deltas. With roi fuse, each
 *           deeper cell goes through ReLU and a 1x1 conv to the map's width and is pooled the
 *           same way; the pooled features are summed before the FC layers (a top-down path
 *           per ROI: the pooling upsamples the coarse cells). The 1x1 convs start at zero, so
 *           training starts from the plain c4 head.
 *   nasnet: crop_and_resize of both cells (model_nasnet.c runs the rest of the NASNet on the
 *           crops and pools) -> class logits and deltas. */
#include "detector/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

int det_roi_head_build(det_model *m, nd_rng *rng) {
    int64_t k1 = m->cfg.num_classes + 1, in;
    if (m->cfg.layout == DET_LAYOUT_C4) {
        int64_t d = m->cfg.head_dim, s = m->cfg.roi_size;
        in = m->feat_channels * s * s;
        for (int i = 0; i < m->cfg.n_roi_fuse; i++) {
            char name[64];
            snprintf(name, sizeof name, "head.fuse%d.w", m->cfg.roi_fuse[i]);
            nn_params_add(m->ps, name, 4, NN_SHAPE(m->feat_channels, m->fuse_channels[i], 1, 1), 0);
            snprintf(name, sizeof name, "head.fuse%d.b", m->cfg.roi_fuse[i]);
            nn_params_add(m->ps, name, 1, NN_SHAPE(m->feat_channels), NN_PARAM_NO_DECAY);
        }
        det_init_he(nn_params_add(m->ps, "head.fc1.w", 2, NN_SHAPE(d, in), 0), rng);
        nn_params_add(m->ps, "head.fc1.b", 1, NN_SHAPE(d), NN_PARAM_NO_DECAY);
        det_init_he(nn_params_add(m->ps, "head.fc2.w", 2, NN_SHAPE(d, d), 0), rng);
        nn_params_add(m->ps, "head.fc2.b", 1, NN_SHAPE(d), NN_PARAM_NO_DECAY);
        in = d;
    } else {
        int rc = det_nasnet_head_build(m, rng, &in);
        if (rc) return rc;
    }
    /* torchvision's FastRCNNPredictor is nn.Linear's default; TF uses small normals. We take
     * N(0, 0.01) for classes and N(0, 0.001) for deltas (Detectron's choice), so that the
     * first steps start from uniform scores and near-zero box corrections. */
    nn_init_normal(nn_params_add(m->ps, "head.cls.w", 2, NN_SHAPE(k1, in), 0), 0.0, 0.01, rng);
    nn_params_add(m->ps, "head.cls.b", 1, NN_SHAPE(k1), NN_PARAM_NO_DECAY);
    nn_init_normal(nn_params_add(m->ps, "head.box.w", 2, NN_SHAPE(4 * k1, in), 0), 0.0, 0.001, rng);
    nn_params_add(m->ps, "head.box.b", 1, NN_SHAPE(4 * k1), NN_PARAM_NO_DECAY);
    return ND_OK;
}

/* crop_and_resize boxes for the nasnet layout: TF normalises by the input size and samples the
 * feature map at y * (fh - 1), as its meta-architecture does. */
static void crop_boxes(const float *rois, int64_t r, float in_h, float in_w, float *boxes, int32_t *ind) {
    for (int64_t i = 0; i < r; i++) {
        const float *q = rois + 5 * i;
        ind[i] = (int32_t)q[0];
        boxes[4 * i + 0] = q[2] / in_h, boxes[4 * i + 1] = q[1] / in_w;
        boxes[4 * i + 2] = q[4] / in_h, boxes[4 * i + 3] = q[3] / in_w;
    }
}

/* c4: ROIAlign of the map, plus each fused cell through ReLU and its 1x1 conv. */
static nn_tensor *c4_pool(det_model *m, nn_ctx *ctx, const det_features *f, const float *rois, int64_t r) {
    const int32_t s = m->cfg.roi_size;
    nn_tensor *pooled = nn_roi_align(ctx, f->map, rois, r, s, s, 1.0f / m->cfg.anchors.stride_x, 2, 0);
    nn_conv2d_params p1 = nn_conv2d_same(1, 1);
    for (int i = 0; i < m->cfg.n_roi_fuse; i++) {
        char w[64], b[64];
        snprintf(w, sizeof w, "head.fuse%d.w", m->cfg.roi_fuse[i]);
        snprintf(b, sizeof b, "head.fuse%d.b", m->cfg.roi_fuse[i]);
        nn_tensor *lat = nn_conv2d(ctx, nn_relu(ctx, f->fuse[i]), nn_params_get(m->ps, w), nn_params_get(m->ps, b), &p1);
        pooled = nn_add(ctx, pooled, nn_roi_align(ctx, lat, rois, r, s, s, 1.0f / (float)m->cfg.roi_fuse[i], 2, 0));
    }
    return pooled;
}

void det_roi_head_forward(det_model *m, nn_ctx *ctx, const det_features *f, const float *rois,
                          int64_t r, nn_tensor **logits, nn_tensor **deltas) {
    const int32_t s = m->cfg.roi_size;
    nn_tensor *x;
    if (m->cfg.layout == DET_LAYOUT_C4) {
        nn_tensor *pooled = c4_pool(m, ctx, f, rois, r);
        x = nn_reshape(ctx, pooled, 2, NN_SHAPE(r, pooled->shape[1] * s * s));
        x = nn_relu(ctx, nn_linear(ctx, x, nn_params_get(m->ps, "head.fc1.w"),
                                   nn_params_get(m->ps, "head.fc1.b")));
        x = nn_relu(ctx, nn_linear(ctx, x, nn_params_get(m->ps, "head.fc2.w"),
                                   nn_params_get(m->ps, "head.fc2.b")));
    } else {
        float in_h = (float)(f->map->shape[2] * 16), in_w = (float)(f->map->shape[3] * 16);
        float *boxes = nn_ctx_alloc(ctx, (size_t)r * 4 * sizeof *boxes);
        int32_t *ind = nn_ctx_alloc(ctx, (size_t)r * sizeof *ind);
        crop_boxes(rois, r, in_h, in_w, boxes, ind);
        nn_tensor *cc = nn_crop_and_resize(ctx, f->cur, boxes, ind, r, s, s, 0.0f);
        nn_tensor *pc = nn_crop_and_resize(ctx, f->prev, boxes, ind, r, s, s, 0.0f);
        x = det_nasnet_head_forward(m, ctx, cc, pc);
    }
    *logits = nn_linear(ctx, x, nn_params_get(m->ps, "head.cls.w"), nn_params_get(m->ps, "head.cls.b"));
    *deltas = nn_linear(ctx, x, nn_params_get(m->ps, "head.box.w"), nn_params_get(m->ps, "head.box.b"));
}

int det_roi_head_loss(det_model *m, nn_ctx *ctx, const det_batch *b, const det_features *f,
                      float *const *props,
                      const int64_t *n_props, nd_rng *rng, nn_tensor **loss_cls,
                      nn_tensor **loss_box, det_losses *out) {
    const int64_t k1 = m->cfg.num_classes + 1, per = m->cfg.roi_batch;
    int64_t maxgt = 1, maxp = 1;
    for (int32_t i = 0; i < b->n; i++) {
        int64_t g = b->box_first[i + 1] - b->box_first[i];
        if (g > maxgt) maxgt = g;
        if (n_props[i] + g > maxp) maxp = n_props[i] + g;
    }
    float *gt = malloc((size_t)maxgt * 4 * sizeof *gt), *all = malloc((size_t)maxp * 4 * sizeof *all);
    uint8_t *crowd = malloc((size_t)maxgt);
    int32_t *cls = malloc((size_t)maxgt * sizeof *cls);
    int64_t *matches = malloc((size_t)maxp * sizeof *matches);
    int64_t *pos = malloc((size_t)per * sizeof *pos), *neg = malloc((size_t)per * sizeof *neg);
    float *rois = nn_ctx_alloc(ctx, (size_t)(per * b->n) * 5 * sizeof *rois);
    int32_t *labels = nn_ctx_alloc(ctx, (size_t)(per * b->n) * sizeof *labels);
    float *tgt = malloc((size_t)(per * b->n) * 4 * sizeof *tgt);
    int64_t *tcls = malloc((size_t)(per * b->n) * sizeof *tcls);
    int rc = (gt && all && crowd && cls && matches && pos && neg && tgt && tcls)
                 ? ND_OK
                 : nd_fail(ND_ERR_NOMEM, "out of memory");
    int64_t r = 0;
    for (int32_t i = 0; i < b->n && rc == 0; i++) {
        int64_t ng = det_image_gt(b, i, gt, crowd, cls);
        for (int64_t g = 0; g < ng && rc == 0; g++)
            if (cls[g] < 0 || cls[g] >= m->cfg.num_classes)
                rc = nd_fail(ND_ERR_INVALID, "ground truth class %d outside 0..%d", cls[g],
                             m->cfg.num_classes - 1);
        if (rc) break;
        int64_t np = det_proposals_append_gt(props[i], n_props[i], gt, crowd, ng, all);
        if ((rc = det_match_boxes(gt, crowd, ng, all, np, &m->cfg.roi_match, matches))) break;
        int64_t npos = 0, nneg = 0;
        if ((rc = det_sample_balanced(matches, np, per, m->cfg.roi_pos_fraction, rng, pos, &npos, neg, &nneg)))
            break;
        for (int64_t k = 0; k < npos + nneg; k++, r++) {
            int64_t idx = k < npos ? pos[k] : neg[k - npos];
            float *q = rois + 5 * r;
            q[0] = (float)i;
            memcpy(q + 1, all + 4 * idx, 4 * sizeof(float));
            if (k < npos) {
                int64_t g = matches[idx];
                labels[r] = cls[g] + 1;
                det_box_encode(&m->cfg.detect.coder, gt + 4 * g, all + 4 * idx, 1, tgt + 4 * r);
                tcls[r] = cls[g] + 1;
            } else {
                labels[r] = 0;
                tcls[r] = 0;
            }
        }
        out->roi_pos += npos, out->roi_neg += nneg;
    }
    free(gt), free(all), free(crowd), free(cls), free(matches), free(pos), free(neg);
    if (rc == 0 && r == 0) rc = nd_fail(ND_ERR_INVALID, "no training rois in the batch");
    if (rc) {
        free(tgt), free(tcls);
        return rc;
    }
    nn_tensor *logits, *deltas;
    det_roi_head_forward(m, ctx, f, rois, r, &logits, &deltas);
    *loss_cls = nn_softmax_cross_entropy(ctx, logits, labels, 0.0f);
    /* Only the deltas of each positive's own class are trained (class-specific boxes). */
    nn_tensor *bt = nn_tensor_new_host(ctx, 2, NN_SHAPE(r, 4 * k1)), *bw = nn_tensor_new_host(ctx, 2, NN_SHAPE(r, 4 * k1));
    for (int64_t j = 0; j < r; j++) {
        if (tcls[j] <= 0) continue;
        for (int c = 0; c < 4; c++) {
            bt->data[j * 4 * k1 + tcls[j] * 4 + c] = tgt[4 * j + c];
            bw->data[j * 4 * k1 + tcls[j] * 4 + c] = 1.0f;
        }
    }
    *loss_box = nn_smooth_l1(ctx, deltas, bt, bw, m->cfg.roi_beta, (float)r);
    free(tgt), free(tcls);
    return ND_OK;
}
