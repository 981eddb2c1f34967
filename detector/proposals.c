/* RPN outputs -> proposals for one image (torchvision's filter_proposals, one level). */
#include <math.h>
#include <stdlib.h>

#include "common/status.h"
#include "detector/frcnn.h"
#include "detector/score_sort.h"

void det_rpn_to_anchor_order(const float *src, int64_t a, int64_t k, int64_t h, int64_t w,
                             float *dst) {
    ND_ASSERT(a >= 0 && k >= 0 && h >= 0 && w >= 0, "negative dims");
    ND_ASSERT(a * k * h * w == 0 || (src && dst), "NULL array");
    int64_t hw = h * w;
    for (int64_t ai = 0; ai < a; ai++)
        for (int64_t c = 0; c < k; c++) {
            const float *plane = src + (ai * k + c) * hw;
            for (int64_t pix = 0; pix < hw; pix++) dst[(pix * a + ai) * k + c] = plane[pix];
        }
}

void det_proposal_params_default(det_proposal_params *p) {
    ND_ASSERT(p != NULL, "NULL params");
    p->pre_nms_top_n = 2000;
    p->post_nms_top_n = 500;
    p->nms_thresh = 0.7f;
    p->min_size = 1e-3f;
    p->score_thresh = 0.0f;
    det_box_coder_default(&p->coder);
}

static int check_coder(const det_box_coder *c, const char *who) {
    if (!(isfinite(c->wx) && isfinite(c->wy) && isfinite(c->ww) && isfinite(c->wh) &&
          c->wx != 0 && c->wy != 0 && c->ww != 0 && c->wh != 0) || isnan(c->clip))
        return nd_fail(ND_ERR_INVALID, "%s: box coder weights must be finite and non-zero", who);
    return ND_OK;
}

int det_rpn_proposals(const float *anchors, const float *objectness, const float *deltas,
                      int64_t n, float img_w, float img_h, const det_proposal_params *p,
                      float *out_boxes, float *out_scores, int64_t *out_anchor,
                      int64_t *n_out) {
    ND_ASSERT(p != NULL && n_out != NULL, "NULL argument");
    *n_out = 0;
    if (n < 0 || n > INT32_MAX)
        return nd_fail(ND_ERR_INVALID, "proposals: %lld anchors", (long long)n);
    if (p->pre_nms_top_n < 0 || p->post_nms_top_n < 0)
        return nd_fail(ND_ERR_INVALID, "proposals: negative top-n (%lld before, %lld after NMS)",
                       (long long)p->pre_nms_top_n, (long long)p->post_nms_top_n);
    if (!isfinite(p->nms_thresh) || !isfinite(p->min_size) || !isfinite(p->score_thresh))
        return nd_fail(ND_ERR_INVALID, "proposals: NMS, min size and score thresholds must be "
                                       "finite");
    if (!(isfinite(img_w) && isfinite(img_h) && img_w > 0 && img_h > 0))
        return nd_fail(ND_ERR_INVALID, "proposals: image size %gx%g", (double)img_w,
                       (double)img_h);
    int st = check_coder(&p->coder, "proposals");
    if (st) return st;
    if (n == 0 || p->post_nms_top_n == 0) return ND_OK;
    ND_ASSERT(anchors && objectness && deltas && out_boxes && out_scores, "NULL array");
    for (int64_t i = 0; i < n; i++)
        if (isnan(objectness[i]))
            return nd_fail(ND_ERR_NUMERIC, "proposals: objectness of anchor %lld is NaN",
                           (long long)i);

    int32_t m = (int32_t)n;
    int32_t k = (p->pre_nms_top_n > 0 && p->pre_nms_top_n < n) ? (int32_t)p->pre_nms_top_n : m;
    int32_t *order = malloc((size_t)m * sizeof *order);
    float *ref = malloc((size_t)k * 4 * sizeof *ref);
    float *boxes = malloc((size_t)k * 4 * sizeof *boxes);
    float *scores = malloc((size_t)k * sizeof *scores);
    int64_t *src = malloc((size_t)k * sizeof *src);
    int64_t *idx = malloc((size_t)k * sizeof *idx);
    if (!order || !ref || !boxes || !scores || !src || !idx) {
        st = nd_fail(ND_ERR_NOMEM, "proposals: out of memory for %lld anchors", (long long)n);
        goto done;
    }
    /* top k by logit: the sigmoid is monotone, so this is also the top k by score */
    st = det_sort_by_score(objectness, m, order);
    if (st) goto done;
    for (int32_t i = 0; i < k; i++) {
        const float *a = anchors + 4 * (int64_t)order[i], *d = deltas + 4 * (int64_t)order[i];
        for (int c = 0; c < 4; c++) {
            ref[4 * i + c] = a[c];
            boxes[4 * i + c] = d[c];
        }
    }
    det_box_decode(&p->coder, boxes, ref, k, boxes);
    det_boxes_clip(boxes, k, img_w, img_h);
    /* drop small boxes and low scores, compacting in place (order is kept) */
    int32_t kept = 0;
    for (int32_t i = 0; i < k; i++) {
        const float *b = boxes + 4 * (int64_t)i;
        float score = 1.0f / (1.0f + expf(-objectness[order[i]]));
        if (!(b[2] - b[0] >= p->min_size && b[3] - b[1] >= p->min_size)) continue;
        if (!(score >= p->score_thresh)) continue;
        for (int c = 0; c < 4; c++) boxes[4 * kept + c] = b[c];
        scores[kept] = score;
        src[kept] = order[i];
        kept++;
    }
    int64_t n_keep = 0;
    st = det_nms(boxes, scores, kept, p->nms_thresh, p->post_nms_top_n, idx, &n_keep);
    if (st) goto done;
    for (int64_t i = 0; i < n_keep; i++) {
        for (int c = 0; c < 4; c++) out_boxes[4 * i + c] = boxes[4 * idx[i] + c];
        out_scores[i] = scores[idx[i]];
        if (out_anchor) out_anchor[i] = src[idx[i]];
    }
    *n_out = n_keep;
done:
    free(order);
    free(ref);
    free(boxes);
    free(scores);
    free(src);
    free(idx);
    return st;
}
