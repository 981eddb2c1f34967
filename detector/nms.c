/* Non-maximum suppression with torchvision's exact semantics, made fast by a spatial index.
 *
 * torchvision's CPU kernel visits boxes by decreasing score (stable sort) and compares every
 * kept box with every later one: O(n * kept). A box is dropped exactly when some *kept* box
 * before it has IoU > thresh with it (the kernel suppresses only from kept boxes), so we ask
 * instead, for each box in visiting order, "does an earlier kept box overlap me enough?" and
 * answer it from an index of the kept boxes that returns every box that could (nms_grid.c).
 * Each candidate's IoU is computed with the same float operations as torchvision's loop
 * (nms_internal.h), so every comparison, and the kept list, is the same.
 * thresh < 0 (every pair with a defined IoU suppresses, overlapping or not) and boxes of
 * subnormal area use the plain loop. Categories (batched NMS) only add "same category" to the suppression test. */
#include <math.h>
#include <stdlib.h>

#include "common/status.h"
#include "detector/frcnn.h"
#include "detector/nms_internal.h"
#include "detector/score_sort.h"

static void nms_plain(const det_nms_boxes *s, double thresh, int64_t max_keep, int32_t *keep_pos,
                      int32_t *n_keep) {
    int32_t kept = 0;
    for (int32_t j = 0; j < s->n && (max_keep == 0 || kept < max_keep); j++) {
        int dropped = 0;
        for (int32_t t = 0; t < kept && !dropped; t++) {
            int32_t i = keep_pos[t];
            dropped = (s->cls == NULL || s->cls[i] == s->cls[j]) &&
                      det_nms_suppresses(s->x1[i], s->y1[i], s->x2[i], s->y2[i], s->area[i],
                                         s->x1[j], s->y1[j], s->x2[j], s->y2[j], s->area[j],
                                         thresh);
        }
        if (!dropped) keep_pos[kept++] = j;
    }
    *n_keep = kept;
}

static int nms_impl(const float *boxes, const float *scores, const int64_t *idxs, int64_t n,
                    double thresh, int64_t max_keep, int64_t *keep, int64_t *n_keep) {
    ND_ASSERT(n_keep != NULL, "NULL n_keep");
    *n_keep = 0;
    if (n < 0 || n > INT32_MAX)
        return nd_fail(ND_ERR_INVALID, "nms: %lld boxes (expected 0..%d)", (long long)n,
                       INT32_MAX);
    if (max_keep < 0)
        return nd_fail(ND_ERR_INVALID, "nms: max_keep %lld < 0", (long long)max_keep);
    if (isnan(thresh)) return nd_fail(ND_ERR_NUMERIC, "nms: IoU threshold is NaN");
    if (n == 0) return ND_OK;
    ND_ASSERT(boxes && scores && keep, "NULL array");
    for (int64_t i = 0; i < n; i++) {
        const float *b = boxes + 4 * i;
        if (!isfinite(scores[i]))
            return nd_fail(ND_ERR_NUMERIC, "nms: score %lld is %g", (long long)i,
                           (double)scores[i]);
        if (!(isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3])))
            return nd_fail(ND_ERR_NUMERIC, "nms: box %lld has a non-finite coordinate",
                           (long long)i);
    }
    int32_t m = (int32_t)n;
    float *f = malloc((size_t)m * 5 * sizeof *f);
    int32_t *order = malloc((size_t)m * sizeof *order);
    int32_t *keep_pos = malloc((size_t)m * sizeof *keep_pos);
    int64_t *cls = idxs ? malloc((size_t)m * sizeof *cls) : NULL;
    int st = ND_OK;
    if (!f || !order || !keep_pos || (idxs && !cls)) {
        st = nd_fail(ND_ERR_NOMEM, "nms: out of memory for %lld boxes", (long long)n);
        goto done;
    }
    st = det_sort_by_score(scores, m, order);
    if (st) goto done;
    /* structure of arrays in visiting order: the scans below stream through them */
    float *x1 = f, *y1 = f + m, *x2 = f + 2 * (size_t)m, *y2 = f + 3 * (size_t)m;
    float *area = f + 4 * (size_t)m;
    for (int32_t k = 0; k < m; k++) {
        const float *b = boxes + 4 * (int64_t)order[k];
        x1[k] = b[0];
        y1[k] = b[1];
        x2[k] = b[2];
        y2[k] = b[3];
        area[k] = (b[2] - b[0]) * (b[3] - b[1]);
        if (cls) cls[k] = idxs[order[k]];
    }
    /* The index's bounds hold for the exact IoU with a margin for float rounding; an area
     * near the subnormal range (boxes under ~1e-15 px) loses that precision, so such input
     * takes the plain loop too. */
    int tiny = 0;
    for (int32_t k = 0; k < m; k++)
        tiny |= x2[k] > x1[k] && y2[k] > y1[k] && area[k] < 1e-30f;
    det_nms_boxes s = {m, x1, y1, x2, y2, area, cls};
    int32_t kept = 0;
    if (thresh >= 0.0 && !tiny) st = det_nms_grid(&s, thresh, max_keep, keep_pos, &kept);
    else nms_plain(&s, thresh, max_keep, keep_pos, &kept);
    if (st == ND_OK) {
        for (int32_t k = 0; k < kept; k++) keep[k] = order[keep_pos[k]];
        *n_keep = kept;
    }
done:
    free(f);
    free(order);
    free(keep_pos);
    free(cls);
    return st;
}

int det_nms(const float *boxes, const float *scores, int64_t n, double iou_thresh,
            int64_t max_keep, int64_t *keep, int64_t *n_keep) {
    return nms_impl(boxes, scores, NULL, n, iou_thresh, max_keep, keep, n_keep);
}

int det_nms_batched(const float *boxes, const float *scores, const int64_t *idxs, int64_t n,
                    double iou_thresh, int64_t max_keep, int64_t *keep, int64_t *n_keep) {
    ND_ASSERT(n <= 0 || idxs != NULL, "NULL idxs");
    return nms_impl(boxes, scores, idxs, n, iou_thresh, max_keep, keep, n_keep);
}
