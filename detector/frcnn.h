/* detector: Faster R-CNN on NASNet features.
 *
 * This part is the non-differentiable half of the detector: plain functions over float arrays
 * (anchors, box coding, IoU, NMS, matching, sampling, proposal generation and detection
 * post-processing), with no engine types. The model itself (RPN head, ROI crops, box head,
 * losses, train/infer) builds on nn/ and on these functions.
 *
 * Conventions:
 * - A box is 4 floats x1, y1, x2, y2 in pixels of the (resized) input image; an array of n
 *   boxes is n*4 floats, row-major. Width is x2 - x1 (no "+1"), as in torchvision.
 * - Counts and indices are int64_t; caller-provided output arrays must hold the stated
 *   number of elements. Functions never keep pointers to their arguments.
 * - Functions that can fail on data (NaN, bad parameters, out of memory) return 0 or a
 *   negative nd_status with the message in nd_last_error() (common/status.h). Pure geometry
 *   helpers whose only preconditions are shapes return void and abort (ND_ASSERT) when a
 *   caller passes a negative count or a NULL array: those are bugs, not input.
 * - Where a peer defines the semantics (torchvision 0.14's ops and detection/_utils.py, TF
 *   object detection's grid anchors), the function says so and tests/test_detector_*.c
 *   compare against numbers that peer computed (tests/fixtures/det_torchvision/). */
#ifndef DET_FRCNN_H
#define DET_FRCNN_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- anchors ------------------------------------------------------------------------------ */

#define DET_ANCHOR_MAX_SCALES 8
#define DET_ANCHOR_MAX_RATIOS 8

/* Grid anchors as TF object detection's GridAnchorGenerator (faster_rcnn_nas's
 * first_stage_anchor_generator):
 *   height = scale / sqrt(ratio) * base_h,  width = scale * sqrt(ratio) * base_w
 *   (ratio = width / height; float arithmetic in this order),
 *   centre of grid cell (i, j) = (offset_y + i * stride_y, offset_x + j * stride_x)
 *   (offset 0 by default, as TF's proto: the first centre is the image's top-left corner),
 *   box = centre -/+ size / 2, not rounded.
 * Order: anchor index = (i * feat_w + j) * K + k with K = n_ratios * n_scales and
 * k = r * n_scales + s (ratio-major, scale inner), as TF's meshgrid/reshape gives it. */
typedef struct det_anchor_params {
    float scales[DET_ANCHOR_MAX_SCALES];
    int n_scales;
    float ratios[DET_ANCHOR_MAX_RATIOS]; /* width / height */
    int n_ratios;
    float base_h, base_w;     /* pixels; 256 x 256 in the paper */
    float stride_y, stride_x; /* pixels between neighbouring centres; the feature stride */
    float offset_y, offset_x; /* centre of the first cell's anchors */
} det_anchor_params;

/* The paper's anchors: scales 0.25, 0.5, 1, 2 of 256 px, ratios 0.5, 1, 2, stride 16,
 * offset 0 (12 anchors per location). */
void det_anchor_params_default(det_anchor_params *p);
/* K, the number of anchors per feature-map location (n_scales * n_ratios). */
int64_t det_anchors_per_location(const det_anchor_params *p);
/* Write feat_h * feat_w * K anchors (x1, y1, x2, y2) into `anchors` (that many * 4 floats).
 * Fails with ND_ERR_INVALID on counts out of [1, DET_ANCHOR_MAX_*], non-positive or
 * non-finite scales, ratios, base sizes or strides, non-finite offsets, or negative dims. */
int det_anchors_grid(const det_anchor_params *p, int64_t feat_h, int64_t feat_w, float *anchors);

/* ---- box coding (torchvision BoxCoder) ---------------------------------------------------- */

typedef struct det_box_coder {
    float wx, wy, ww, wh; /* weights of dx, dy, dw, dh */
    float clip;           /* upper clamp of dw/wh and dh/hh before exp() at decode */
} det_box_coder;

/* Weights (10, 10, 5, 5), clip log(1000/16). (torchvision's RPN uses (1, 1, 1, 1); TF's
 * faster_rcnn_nas uses (10, 10, 5, 5) in both stages.) */
void det_box_coder_default(det_box_coder *c);

/* Deltas that turn each `ref` box (anchor or proposal) into the matching `target` box:
 *   dx = wx * (tcx - rcx) / rw,  dy = wy * (tcy - rcy) / rh,
 *   dw = ww * log(tw / rw),      dh = wh * log(th / rh)      (centres cx = x1 + 0.5 * w).
 * target, ref: [n, 4]; deltas: [n, 4] out. torchvision's encode_single(reference_boxes =
 * target, proposals = ref). Degenerate boxes give inf/NaN deltas, as there; callers encode
 * only positive boxes against non-degenerate references. */
void det_box_encode(const det_box_coder *c, const float *target, const float *ref, int64_t n,
                    float *deltas);

/* Inverse of det_box_encode: boxes[i] = apply deltas[i] to ref[i], dw/ww and dh/wh clamped
 * from above at c->clip. ref: [n, 4]; deltas, boxes: [n, 4] (boxes may alias deltas). */
void det_box_decode(const det_box_coder *c, const float *deltas, const float *ref, int64_t n,
                    float *boxes);

/* ---- box geometry ------------------------------------------------------------------------- */

/* Pairwise IoU as torchvision.ops.box_iou: iou[i * m + j] = inter / (area_i + area_j - inter)
 * with inter = max(0, w) * max(0, h). a: [n, 4], b: [m, 4], iou: [n, m] out. 0/0 gives NaN
 * (two empty boxes), as torchvision. */
void det_box_iou(const float *a, int64_t n, const float *b, int64_t m, float *iou);

/* Clamp x to [0, img_w] and y to [0, img_h] in place (torchvision clip_boxes_to_image; NaN
 * stays NaN). */
void det_boxes_clip(float *boxes, int64_t n, float img_w, float img_h);

/* Indices of the boxes whose width and height are both >= min_size (torchvision
 * remove_small_boxes; NaN sizes are removed), in increasing order, into keep[<= n].
 * Returns how many. */
int64_t det_boxes_keep_min_size(const float *boxes, int64_t n, float min_size, int64_t *keep);

/* ---- non-maximum suppression -------------------------------------------------------------- */

/* torchvision.ops.nms exactly: boxes visited by score, highest first, equal scores in
 * increasing index (torchvision's stable sort); a box is dropped when its IoU with an already
 * kept box is > iou_thresh; IoU in float as torchvision's CPU kernel, compared in double.
 * keep[<= n] receives the kept indices in visiting order; *n_keep their count. max_keep > 0
 * stops after that many (the same first max_keep torchvision would return); 0: no limit.
 * A spatial index makes it near-linear on realistic boxes (worst case: about torchvision's
 * work); single-threaded and deterministic.
 * Fails with ND_ERR_NUMERIC on a NaN/inf coordinate or score or a NaN threshold,
 * ND_ERR_INVALID on n > INT32_MAX or max_keep < 0, ND_ERR_NOMEM. */
int det_nms(const float *boxes, const float *scores, int64_t n, double iou_thresh,
            int64_t max_keep, int64_t *keep, int64_t *n_keep);

/* NMS applied independently per category (torchvision.ops.batched_nms): boxes with different
 * idxs[i] never suppress each other. The kept indices come in decreasing score, equal scores
 * in increasing index (torchvision's coordinate-offset path, used for <= 1000 boxes on CPU;
 * its per-class path, used above that, orders equal scores of different classes arbitrarily
 * and is otherwise the same). IoU is always computed on the given coordinates (the offset
 * path shifts them first, which can move an IoU by a rounding step). Same failures as det_nms. */
int det_nms_batched(const float *boxes, const float *scores, const int64_t *idxs, int64_t n,
                    double iou_thresh, int64_t max_keep, int64_t *keep, int64_t *n_keep);

/* ---- matching and sampling ---------------------------------------------------------------- */

#define DET_MATCH_BELOW (-1)   /* best quality < low: a negative (background) */
#define DET_MATCH_IGNORE (-2)  /* between thresholds, or negative touching a crowd box */

/* torchvision's Matcher over a quality matrix q[m, n] (row g: ground truth g, column p: box p):
 * matches[p] = argmax_g q[g, p] (first on ties) when that max >= high; DET_MATCH_BELOW when
 * < low; DET_MATCH_IGNORE otherwise. With allow_low_quality, every box p that reaches the
 * highest quality of some ground truth g (ties included) takes its argmax again, whatever its
 * level (torchvision's set_low_quality_matches_; note: a ground truth that overlaps nothing
 * has highest quality 0 and so revives every box with quality 0 - drop empty ground-truth
 * boxes first). m == 0: all DET_MATCH_BELOW (torchvision's RPN treats an image without boxes
 * so). A NaN quality (IoU 0/0 of two empty boxes) counts as lower than any number (torchvision
 * would propagate it). Fails with ND_ERR_INVALID when low > high or either is NaN. */
int det_match_quality(const float *q, int64_t m, int64_t n, float high, float low,
                      int allow_low_quality, int64_t *matches);

typedef struct det_match_params {
    float high, low;       /* fg if IoU >= high; bg if < low; between: ignored */
    int allow_low_quality; /* give each ground truth its best box(es) */
    float crowd_ioa;       /* a negative whose area lies inside a crowd box by more than
                            * this fraction becomes DET_MATCH_IGNORE (0: any overlap) */
} det_match_params;

/* RPN: 0.7 / 0.3, low-quality matches on, crowd_ioa 0. */
void det_match_params_rpn(det_match_params *p);
/* Box head: 0.5 / 0.5, low-quality matches off, crowd_ioa 0. */
void det_match_params_roi(det_match_params *p);

/* Match boxes[n] (anchors or proposals) to ground truth gt[m] by IoU with det_match_quality,
 * using only the ground truth whose is_crowd[g] is 0 (is_crowd may be NULL: none is crowd).
 * Crowd rule (COCO iscrowd regions are unlabelled crowds, so nothing inside them may be
 * taught as background): a box left DET_MATCH_BELOW whose intersection with some crowd box
 * covers more than crowd_ioa of the box's own area becomes DET_MATCH_IGNORE. Positives stay
 * positives. matches[n] out: an index into gt (never a crowd one), DET_MATCH_BELOW or
 * DET_MATCH_IGNORE. Fails with ND_ERR_INVALID on bad thresholds, ND_ERR_NUMERIC on a NaN or
 * infinite coordinate, ND_ERR_NOMEM. */
int det_match_boxes(const float *gt, const uint8_t *is_crowd, int64_t m, const float *boxes,
                    int64_t n, const det_match_params *p, int64_t *matches);

/* torchvision's BalancedPositiveNegativeSampler with a seeded generator: from matches[n]
 * (>= 0 positive, DET_MATCH_BELOW negative, anything else skipped) draw without replacement
 * n_pos = min(#positive, (int64_t)(batch * pos_fraction)) positives and
 * n_neg = min(#negative, batch - n_pos) negatives. pos[<= batch] and neg[<= batch] receive
 * the drawn indices in increasing order. Same rng state + same input => same draw. Fails with
 * ND_ERR_INVALID when batch < 0 or pos_fraction is outside [0, 1], ND_ERR_NOMEM. */
int det_sample_balanced(const int64_t *matches, int64_t n, int64_t batch, float pos_fraction,
                        nd_rng *rng, int64_t *pos, int64_t *n_pos, int64_t *neg,
                        int64_t *n_neg);

/* Append the ground truth boxes to the proposals, as torchvision's add_gt_proposals (so every
 * object has at least one perfect proposal during training): out[n + m', 4] = proposals, then
 * the m' non-crowd gt boxes in order (is_crowd may be NULL). Returns n + m'. out must hold
 * (n + m) * 4 floats and must not overlap the inputs. */
int64_t det_proposals_append_gt(const float *proposals, int64_t n, const float *gt,
                                const uint8_t *is_crowd, int64_t m, float *out);

/* ---- proposals (RPN output -> boxes) ------------------------------------------------------ */

/* RPN head outputs come as conv maps [A * k, H, W] (channel = a * k + c); the anchors and
 * det_rpn_proposals use the order (H, W, A, k). Converts src [A*k, H, W] into dst [H, W, A, k]
 * (k = 1 for objectness, 4 for deltas). dst must not overlap src. */
void det_rpn_to_anchor_order(const float *src, int64_t a, int64_t k, int64_t h, int64_t w,
                             float *dst);

typedef struct det_proposal_params {
    int64_t pre_nms_top_n;  /* best-scoring anchors decoded before NMS (0: all) */
    int64_t post_nms_top_n; /* proposals kept after NMS */
    float nms_thresh;       /* IoU above which a lower-scoring proposal is dropped */
    float min_size;         /* boxes narrower or lower than this (after clipping) are dropped */
    float score_thresh;     /* proposals with sigmoid(objectness) < this are dropped */
    det_box_coder coder;
} det_proposal_params;

/* pre 2000, post 500 (the paper: "at most 500 proposals"), NMS 0.7, min size 1e-3, score 0,
 * coder det_box_coder_default. */
void det_proposal_params_default(det_proposal_params *p);

/* One image's proposals, as torchvision's RegionProposalNetwork.filter_proposals for one
 * feature level: take the pre_nms_top_n anchors with the highest objectness logit (equal
 * logits: lower index first), decode their deltas, clip to the image, drop boxes smaller than
 * min_size and scores below score_thresh (score = sigmoid(logit)), NMS, keep the first
 * post_nms_top_n. anchors: [n, 4], objectness: [n] logits, deltas: [n, 4], all in anchor order.
 * out_boxes[post_nms_top_n, 4], out_scores[post_nms_top_n] (probabilities, decreasing),
 * out_anchor[post_nms_top_n] (which anchor each came from; may be NULL); *n_out the count.
 * Fails with ND_ERR_NUMERIC on a NaN objectness, ND_ERR_INVALID on bad parameters or image
 * size, ND_ERR_NOMEM. */
int det_rpn_proposals(const float *anchors, const float *objectness, const float *deltas,
                      int64_t n, float img_w, float img_h, const det_proposal_params *p,
                      float *out_boxes, float *out_scores, int64_t *out_anchor,
                      int64_t *n_out);

/* ---- detections (box head output -> final boxes) ------------------------------------------ */

typedef struct det_detect_params {
    float score_thresh;  /* keep class scores > this (0.05) */
    float nms_thresh;    /* per-class NMS (0.5; the nasnet config uses 0.6) */
    int64_t max_dets;    /* detections per image (100) */
    float min_size;      /* drop boxes smaller than this after clipping (1e-2) */
    det_box_coder coder;
} det_detect_params;

void det_detect_params_default(det_detect_params *p);

/* One image's detections, as torchvision's RoIHeads.postprocess_detections: decode every
 * (proposal, class) pair with that class's deltas, clip to the image, drop class 0
 * (background), keep scores > score_thresh, drop boxes smaller than min_size, per-class NMS,
 * keep the best max_dets. proposals: [n, 4]; probs: [n, c] class probabilities (softmax
 * output, column 0 background); deltas: [n, c, 4]. out_boxes[max_dets, 4],
 * out_scores[max_dets] (decreasing), out_labels[max_dets] (1..c-1), *n_out the count.
 * Fails with ND_ERR_NUMERIC on a NaN or infinite probability, ND_ERR_INVALID on c < 2 or bad
 * parameters, ND_ERR_NOMEM. */
int det_detect_postprocess(const float *proposals, const float *probs, const float *deltas,
                           int64_t n, int64_t c, float img_w, float img_h,
                           const det_detect_params *p, float *out_boxes, float *out_scores,
                           int64_t *out_labels, int64_t *n_out);

/* ---- test-time pass fusion ---------------------------------------------------------------- */

/* The input passes of det_fuse_boxes: pass p's input is scale[p] x the image, and it is trusted
 * for objects whose side (square root of the area) in its own input pixels lies in
 * [min_side[p], max_side[p]) (max_side 0: no upper limit). */
typedef struct det_fuse_passes {
    int32_t n;
    const float *scale, *min_side, *max_side; /* [n] */
} det_fuse_passes;

/* Weighted box fusion of the detections of several passes over one image (the boxes in image
 * pixels, each with its class and pass). Visited by score, highest first (equal scores in
 * increasing index), a box joins the cluster of its class whose fused box it overlaps most, if
 * that IoU is > iou_thresh, else it starts one. A cluster's box is the score-weighted mean of
 * its members; its score is the mean, over the passes trusted for its box's size, of each
 * pass's best member score (0 for a pass that found nothing there), so a box that one pass
 * alone sees is damped and one all passes agree on keeps its score (where no pass is trusted
 * for the fused size, the mean runs over the passes that contributed). Clusters scoring
 * > score_thresh are written best first (equal scores in order of creation), at most max_dets,
 * to out_boxes[max_dets * 4], out_scores, out_classes; *n_out their count. Deterministic.
 * ND_ERR_INVALID on a pass index out of range or bad parameters, ND_ERR_NOMEM. */
int det_fuse_boxes(const float *boxes, const float *scores, const int32_t *classes, const int32_t *pass,
                   int64_t n, const det_fuse_passes *passes, float iou_thresh, float score_thresh,
                   int64_t max_dets, float *out_boxes, float *out_scores, int32_t *out_classes, int64_t *n_out);

#ifdef __cplusplus
}
#endif

#endif
