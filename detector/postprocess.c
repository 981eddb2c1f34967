/* Box head outputs -> final detections for one image (torchvision's
 * RoIHeads.postprocess_detections). */
#include <math.h>
#include <stdlib.h>

#include "common/status.h"
#include "detector/frcnn.h"

void det_detect_params_default(det_detect_params *p) {
    ND_ASSERT(p != NULL, "NULL params");
    p->score_thresh = 0.05f;
    p->nms_thresh = 0.5f;
    p->max_dets = 100;
    p->min_size = 1e-2f;
    det_box_coder_default(&p->coder);
}

int det_detect_postprocess(const float *proposals, const float *probs, const float *deltas,
                           int64_t n, int64_t c, float img_w, float img_h,
                           const det_detect_params *p, float *out_boxes, float *out_scores,
                           int64_t *out_labels, int64_t *n_out) {
    ND_ASSERT(p != NULL && n_out != NULL, "NULL argument");
    *n_out = 0;
    if (c < 2 || n < 0 || (n > 0 && c - 1 > INT32_MAX / n))
        return nd_fail(ND_ERR_INVALID, "detect: %lld proposals x %lld classes (need >= 2 "
                                       "classes, background included)",
                       (long long)n, (long long)c);
    if (p->max_dets < 0 || !isfinite(p->score_thresh) || !isfinite(p->nms_thresh) ||
        !isfinite(p->min_size))
        return nd_fail(ND_ERR_INVALID, "detect: bad parameters (max_dets %lld, thresholds must "
                                       "be finite)",
                       (long long)p->max_dets);
    if (!(isfinite(img_w) && isfinite(img_h) && img_w > 0 && img_h > 0))
        return nd_fail(ND_ERR_INVALID, "detect: image size %gx%g", (double)img_w,
                       (double)img_h);
    const det_box_coder *cd = &p->coder;
    if (!(isfinite(cd->wx) && isfinite(cd->wy) && isfinite(cd->ww) && isfinite(cd->wh) &&
          cd->wx != 0 && cd->wy != 0 && cd->ww != 0 && cd->wh != 0) || isnan(cd->clip))
        return nd_fail(ND_ERR_INVALID, "detect: box coder weights must be finite and non-zero");
    if (n == 0 || p->max_dets == 0) return ND_OK;
    ND_ASSERT(proposals && probs && deltas && out_boxes && out_scores && out_labels,
              "NULL array");
    for (int64_t i = 0; i < n * c; i++)
        if (!isfinite(probs[i]))
            return nd_fail(ND_ERR_NUMERIC, "detect: class probability %lld of proposal %lld is "
                                           "%g",
                           (long long)(i % c), (long long)(i / c), (double)probs[i]);

    /* candidates in torchvision's flattened order: proposal-major, class inner, so that
     * equal scores break ties the same way */
    int64_t cap = n * (c - 1);
    float *boxes = malloc((size_t)cap * 4 * sizeof *boxes);
    float *scores = malloc((size_t)cap * sizeof *scores);
    int64_t *labels = malloc((size_t)cap * sizeof *labels);
    int64_t *keep = malloc((size_t)cap * sizeof *keep);
    int st = ND_OK;
    if (!boxes || !scores || !labels || !keep) {
        st = nd_fail(ND_ERR_NOMEM, "detect: out of memory for %lld candidates", (long long)cap);
        goto done;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 1; j < c; j++) {
            float s = probs[i * c + j];
            if (!(s > p->score_thresh)) continue;
            float *b = boxes + 4 * k;
            det_box_decode(cd, deltas + (i * c + j) * 4, proposals + 4 * i, 1, b);
            det_boxes_clip(b, 1, img_w, img_h);
            if (!(b[2] - b[0] >= p->min_size && b[3] - b[1] >= p->min_size)) continue;
            scores[k] = s;
            labels[k] = j;
            k++;
        }
    int64_t n_keep = 0;
    st = det_nms_batched(boxes, scores, labels, k, p->nms_thresh, p->max_dets, keep, &n_keep);
    if (st) goto done;
    for (int64_t i = 0; i < n_keep; i++) {
        for (int q = 0; q < 4; q++) out_boxes[4 * i + q] = boxes[4 * keep[i] + q];
        out_scores[i] = scores[keep[i]];
        out_labels[i] = labels[keep[i]];
    }
    *n_out = n_keep;
done:
    free(boxes);
    free(scores);
    free(labels);
    free(keep);
    return st;
}
