/* Internal to the detector model (detector/model*.c, rpn*.c, roi_head*.c, det_*.c): the model
 * struct and the stage functions. Not a public header: other modules use frcnn_model.h. */
#ifndef DET_MODEL_INTERNAL_H
#define DET_MODEL_INTERNAL_H

#include "detector/frcnn_model.h"

/* The box classifier's NASNet part (nasnet layout), when the backbone builder provides one. */
typedef struct det_nasnet det_nasnet;

struct det_model {
    det_model_config cfg;
    nn_params *ps;
    int32_t feat_channels; /* channels of the map the RPN reads (and ROIAlign, c4) */
    int32_t fuse_channels[DET_MAX_ROI_FUSE]; /* c4 roi fuse: channels of each deeper cell */
    int64_t anchors_per_loc;
    det_nasnet *nas;       /* NASNet backbone state (NULL for convnet) */
};

/* What the backbone gives the heads. */
typedef struct det_features {
    nn_tensor *map;        /* [N, feat_channels, H/s, W/s] at the feature stride s: the RPN's
                              input (and c4's ROIAlign); nasnet layout: concat(cur, prev) */
    nn_tensor *cur, *prev; /* nasnet layout: the last two cells before the 2nd reduction (the
                              crops' sources); NULL for c4 */
    nn_tensor *fuse[DET_MAX_ROI_FUSE]; /* c4 roi fuse: the deeper cells' outputs, in
                              cfg.roi_fuse order (NULL past cfg.n_roi_fuse) */
} det_features;

/* Features of the whole batch. x: [N, 3, H, W] with H, W multiples of 16. */
void det_backbone_forward(det_model *m, nn_ctx *ctx, nn_tensor *x, det_features *f);
/* Add the backbone's parameters to m->ps and set m->feat_channels. */
int det_backbone_build(det_model *m, nd_rng *rng);
void det_backbone_free(det_model *m);
/* The NASNet backbone (model_nasnet.c), as det_backbone_*. */
int det_nasnet_build(det_model *m, nd_rng *rng);
void det_nasnet_forward(det_model *m, nn_ctx *ctx, nn_tensor *x, det_features *f);
void det_nasnet_free(det_model *m);
/* nasnet layout's box classifier: the rest of the NASNet (2nd reduction cell and last stack)
 * on crops of the two cells [R, C_cur, s, s], [R, C_prev, s, s], then ReLU and global
 * average pool -> [R, *channels]. */
int det_nasnet_head_build(det_model *m, nd_rng *rng, int64_t *channels);
nn_tensor *det_nasnet_head_forward(det_model *m, nn_ctx *ctx, nn_tensor *cur_crops,
                                   nn_tensor *prev_crops);

/* RPN head: 3x3 conv + ReLU, then 1x1 convs to objectness [N, A, h, w] and deltas [N, 4A, h, w]
 * (channel a * 4 + c). */
void det_rpn_build(det_model *m, nd_rng *rng);
void det_rpn_forward(det_model *m, nn_ctx *ctx, nn_tensor *map, nn_tensor **logits,
                     nn_tensor **deltas);
/* Anchors of an h x w feature map: [h * w * A, 4], malloc'ed. */
float *det_rpn_anchors(const det_model *m, int64_t h, int64_t w);
/* RPN losses for the batch (BCE over the sampled anchors / number sampled; smooth-L1 over the
 * positives / number sampled). Fills the rpn fields of `out`. */
int det_rpn_loss(det_model *m, nn_ctx *ctx, const det_batch *b, const float *anchors,
                 nn_tensor *logits, nn_tensor *deltas, nd_rng *rng, nn_tensor **loss_cls,
                 nn_tensor **loss_box, det_losses *out);
/* Proposals of image i from the (detached) RPN outputs; boxes [cap, 4] with cap =
 * p->post_nms_top_n; *n the count. */
int det_rpn_image_proposals(det_model *m, const det_batch *b, int32_t i, const float *anchors,
                            nn_tensor *logits, nn_tensor *deltas, const det_proposal_params *p,
                            float *boxes, int64_t *n);

/* ROI head (box classifier): parameters, and the forward over rois [R, 5] (batch index, x1, y1,
 * x2, y2 in input pixels) -> class logits [R, K+1] and deltas [R, 4(K+1)]. */
int det_roi_head_build(det_model *m, nd_rng *rng);
void det_roi_head_forward(det_model *m, nn_ctx *ctx, const det_features *f, const float *rois,
                          int64_t r, nn_tensor **logits, nn_tensor **deltas);
/* Sample training rois for the batch (proposals + gt, matched and balanced) and compute the
 * head losses (CE mean; smooth-L1 on the class-specific deltas of positives / R). */
int det_roi_head_loss(det_model *m, nn_ctx *ctx, const det_batch *b, const det_features *f,
                      float *const *props,
                      const int64_t *n_props, nd_rng *rng, nn_tensor **loss_cls,
                      nn_tensor **loss_box, det_losses *out);

/* det_model_detect with other final-detection settings (score threshold, NMS, max_dets). */
int det_detect_with(det_model *m, nn_ctx *ctx, const det_batch *b, const det_detect_params *dp,
                    det_detections *out);

/* Ground truth of image i that can be matched: boxes [*m, 4] and crowd flags [*m], copied into
 * caller arrays of capacity box_first[i+1] - box_first[i]; boxes of (nearly) zero size are
 * dropped (they would match everything with IoU 0, see det_match_quality). class_of (may be
 * NULL) receives the class indices. */
int64_t det_image_gt(const det_batch *b, int32_t i, float *boxes, uint8_t *crowd, int32_t *class_of);

/* ND_ERR_INVALID unless the coco_dataset `ds`'s categories (sorted by id) are exactly the
 * config's classes; `path` names the file in the message. */
int det_check_dataset_classes(const det_model_config *c, const void *ds, const char *path);

/* He-normal init for conv / FC weights. */
void det_init_he(nn_tensor *w, nd_rng *rng);

#endif
