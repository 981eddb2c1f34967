/* One training step of the whole detector: backbone, RPN (losses and proposals), sampled
 * ROIs through the box classifier, the four losses summed, backward. */
#include "detector/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

static int check_batch(const det_batch *b) {
    if (b->n < 1 || b->height < 16 || b->width < 16 || b->height % 16 || b->width % 16)
        return nd_fail(ND_ERR_INVALID, "detector batch: need n >= 1 and height, width multiples of 16, got %d x %dx%d",
                       b->n, b->height, b->width);
    for (int32_t i = 0; i < b->n; i++)
        if (b->valid_h[i] < 1 || b->valid_h[i] > b->height || b->valid_w[i] < 1 || b->valid_w[i] > b->width)
            return nd_fail(ND_ERR_INVALID, "detector batch: image %d: valid size %dx%d outside the %dx%d batch",
                           i, b->valid_w[i], b->valid_h[i], b->width, b->height);
    return ND_OK;
}

int det_model_train_step(det_model *m, nn_ctx *ctx, const det_batch *b, nd_rng *rng,
                         det_losses *out) {
    memset(out, 0, sizeof *out);
    int rc = check_batch(b);
    if (rc) return rc;
    for (int64_t j = 0; j < b->box_first[b->n]; j++) {
        const float *q = b->boxes + 4 * j;
        if (!(isfinite(q[0]) && isfinite(q[1]) && isfinite(q[2]) && isfinite(q[3])))
            return nd_fail(ND_ERR_NUMERIC, "detector batch: box %lld is not finite", (long long)j);
    }
    nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(b->n, 3, b->height, b->width), b->images);
    det_features f;
    nn_tensor *logits, *deltas;
    det_backbone_forward(m, ctx, x, &f);
    det_rpn_forward(m, ctx, f.map, &logits, &deltas);
    float *anchors = det_rpn_anchors(m, f.map->shape[2], f.map->shape[3]);
    int64_t cap = m->cfg.prop_train.post_nms_top_n;
    float **props = calloc((size_t)b->n, sizeof *props);
    int64_t *nprops = calloc((size_t)b->n, sizeof *nprops);
    if (!anchors || !props || !nprops) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    nn_tensor *l_rpn_cls = NULL, *l_rpn_box = NULL, *l_roi_cls = NULL, *l_roi_box = NULL;
    if (rc == 0) rc = det_rpn_loss(m, ctx, b, anchors, logits, deltas, rng, &l_rpn_cls, &l_rpn_box, out);
    for (int32_t i = 0; i < b->n && rc == 0; i++) {
        if (!(props[i] = malloc((size_t)cap * 4 * sizeof(float)))) {
            rc = nd_fail(ND_ERR_NOMEM, "out of memory");
            break;
        }
        rc = det_rpn_image_proposals(m, b, i, anchors, nn_tensor_to_host(ctx, logits), nn_tensor_to_host(ctx, deltas),
                                     &m->cfg.prop_train, props[i], &nprops[i]);
    }
    if (rc == 0)
        rc = det_roi_head_loss(m, ctx, b, &f, props, nprops, rng, &l_roi_cls, &l_roi_box, out);
    for (int32_t i = 0; props && i < b->n; i++) free(props[i]);
    free(props), free(nprops), free(anchors);
    if (rc) return rc;
    nn_tensor *total = nn_add(ctx, nn_add(ctx, l_rpn_cls, l_rpn_box), nn_add(ctx, l_roi_cls, l_roi_box));
    out->rpn_cls = nn_item(ctx, l_rpn_cls), out->rpn_box = nn_item(ctx, l_rpn_box);
    out->roi_cls = nn_item(ctx, l_roi_cls), out->roi_box = nn_item(ctx, l_roi_box);
    out->total = nn_item(ctx, total);
    if (!isfinite(out->total))
        return nd_fail(ND_ERR_NUMERIC, "detector loss is not finite (rpn %g + %g, roi %g + %g)", out->rpn_cls,
                       out->rpn_box, out->roi_cls, out->roi_box);
    nn_backward(ctx, total);
    return ND_OK;
}
