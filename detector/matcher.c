/* Matching boxes (anchors, proposals) to ground truth: torchvision's Matcher, plus the crowd
 * rule of frcnn.h. */
#include <math.h>
#include <stdlib.h>

#include "common/status.h"
#include "detector/frcnn.h"

void det_match_params_rpn(det_match_params *p) {
    ND_ASSERT(p != NULL, "NULL params");
    *p = (det_match_params){.high = 0.7f, .low = 0.3f, .allow_low_quality = 1, .crowd_ioa = 0.0f};
}

void det_match_params_roi(det_match_params *p) {
    ND_ASSERT(p != NULL, "NULL params");
    *p = (det_match_params){.high = 0.5f, .low = 0.5f, .allow_low_quality = 0, .crowd_ioa = 0.0f};
}

int det_match_quality(const float *q, int64_t m, int64_t n, float high, float low,
                      int allow_low_quality, int64_t *matches) {
    if (isnan(high) || isnan(low) || low > high)
        return nd_fail(ND_ERR_INVALID, "match: thresholds low %g, high %g (need low <= high)",
                       (double)low, (double)high);
    if (m < 0 || n < 0)
        return nd_fail(ND_ERR_INVALID, "match: %lld x %lld quality matrix", (long long)m,
                       (long long)n);
    if (n == 0) return ND_OK;
    ND_ASSERT(matches != NULL && (m == 0 || q != NULL), "NULL array");
    if (m == 0) {
        for (int64_t p = 0; p < n; p++) matches[p] = DET_MATCH_BELOW;
        return ND_OK;
    }
    float *best = malloc((size_t)n * sizeof *best);
    float *highest = malloc((size_t)m * sizeof *highest);
    if (!best || !highest) {
        free(best);
        free(highest);
        return nd_fail(ND_ERR_NOMEM, "match: out of memory");
    }
    /* argmax over ground truth, first on ties (torch.max(dim=0) on the CPU); a NaN quality
     * (0/0: an empty box against an empty box) never wins */
    for (int64_t p = 0; p < n; p++) {
        best[p] = -INFINITY;
        matches[p] = 0;
    }
    for (int64_t g = 0; g < m; g++) {
        const float *row = q + g * n;
        for (int64_t p = 0; p < n; p++)
            if (row[p] > best[p]) {
                best[p] = row[p];
                matches[p] = g;
            }
    }
    if (allow_low_quality) {
        for (int64_t g = 0; g < m; g++) {
            const float *row = q + g * n;
            float h = -INFINITY;
            for (int64_t p = 0; p < n; p++)
                if (row[p] > h) h = row[p];
            highest[g] = h;
        }
    }
    for (int64_t p = 0; p < n; p++) {
        int revived = 0;
        if (allow_low_quality)
            for (int64_t g = 0; g < m && !revived; g++) revived = q[g * n + p] == highest[g];
        if (revived) continue; /* keeps its argmax, whatever its quality */
        if (best[p] < low) matches[p] = DET_MATCH_BELOW;
        else if (best[p] < high) matches[p] = DET_MATCH_IGNORE;
    }
    free(best);
    free(highest);
    return ND_OK;
}

int det_match_boxes(const float *gt, const uint8_t *is_crowd, int64_t m, const float *boxes,
                    int64_t n, const det_match_params *p, int64_t *matches) {
    ND_ASSERT(p != NULL, "NULL params");
    if (m < 0 || n < 0)
        return nd_fail(ND_ERR_INVALID, "match: %lld ground truth, %lld boxes", (long long)m,
                       (long long)n);
    if (!(p->crowd_ioa >= 0.0f && p->crowd_ioa <= 1.0f))
        return nd_fail(ND_ERR_INVALID, "match: crowd_ioa %g outside [0, 1]",
                       (double)p->crowd_ioa);
    if (n == 0)
        return det_match_quality(NULL, 0, 0, p->high, p->low, p->allow_low_quality, matches);
    ND_ASSERT(boxes && matches && (m == 0 || gt), "NULL array");
    for (int64_t i = 0; i < 4 * m; i++)
        if (!isfinite(gt[i]))
            return nd_fail(ND_ERR_NUMERIC, "match: ground truth box %lld is not finite",
                           (long long)(i / 4));
    for (int64_t i = 0; i < 4 * n; i++)
        if (!isfinite(boxes[i]))
            return nd_fail(ND_ERR_NUMERIC, "match: box %lld is not finite", (long long)(i / 4));
    int64_t m_real = 0, m_crowd = 0;
    for (int64_t g = 0; g < m; g++) {
        if (is_crowd && is_crowd[g]) m_crowd++;
        else m_real++;
    }
    float *real = malloc((size_t)(m_real ? m_real : 1) * 4 * sizeof *real);
    int64_t *real_index = malloc((size_t)(m_real ? m_real : 1) * sizeof *real_index);
    float *iou = malloc((size_t)(m_real ? m_real : 1) * (size_t)n * sizeof *iou);
    if (!real || !real_index || !iou) {
        free(real);
        free(real_index);
        free(iou);
        return nd_fail(ND_ERR_NOMEM, "match: out of memory for %lld x %lld IoU",
                       (long long)m_real, (long long)n);
    }
    for (int64_t g = 0, k = 0; g < m; g++) {
        if (is_crowd && is_crowd[g]) continue;
        for (int c = 0; c < 4; c++) real[4 * k + c] = gt[4 * g + c];
        real_index[k++] = g;
    }
    det_box_iou(real, m_real, boxes, n, iou);
    int st = det_match_quality(iou, m_real, n, p->high, p->low, p->allow_low_quality, matches);
    if (st == ND_OK) {
        for (int64_t i = 0; i < n; i++)
            if (matches[i] >= 0) matches[i] = real_index[matches[i]];
        for (int64_t i = 0; i < n && m_crowd > 0; i++) {
            if (matches[i] != DET_MATCH_BELOW) continue;
            const float *b = boxes + 4 * i;
            float area = (b[2] - b[0]) * (b[3] - b[1]);
            if (!(area > 0.0f)) continue;
            for (int64_t g = 0; g < m; g++) {
                if (!is_crowd[g]) continue;
                const float *c = gt + 4 * g;
                float w = fminf(b[2], c[2]) - fmaxf(b[0], c[0]);
                float h = fminf(b[3], c[3]) - fmaxf(b[1], c[1]);
                if (!(w > 0.0f && h > 0.0f)) continue;
                if (w * h / area > p->crowd_ioa) {
                    matches[i] = DET_MATCH_IGNORE;
                    break;
                }
            }
        }
    }
    free(real);
    free(real_index);
    free(iou);
    return st;
}
