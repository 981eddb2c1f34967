/* Internal to detector/: the boxes NMS works on, in visiting order, and torchvision's exact
 * pairwise test, shared by nms.c (API, sorting, plain loop) and nms_grid.c (spatial index). */
#ifndef DET_NMS_INTERNAL_H
#define DET_NMS_INTERNAL_H

#include <stdint.h>

typedef struct det_nms_boxes {
    int32_t n;
    const float *x1, *y1, *x2, *y2, *area; /* [n], visiting order; area = (x2-x1)*(y2-y1) */
    const int64_t *cls;                    /* [n] categories in visiting order, or NULL */
} det_nms_boxes;

/* Does the kept box (a) suppress the later box (b)? The IoU is computed with the float
 * operations of torchvision's CPU kernel in its order (std::max(p, q) is (p < q) ? q : p,
 * std::min(p, q) is (q < p) ? q : p) and compared in double, so the answer is torchvision's. */
static inline int det_nms_suppresses(float ax1, float ay1, float ax2, float ay2, float aarea,
                                     float bx1, float by1, float bx2, float by2, float barea,
                                     double thresh) {
    float xx1 = (ax1 < bx1) ? bx1 : ax1, yy1 = (ay1 < by1) ? by1 : ay1;
    float xx2 = (bx2 < ax2) ? bx2 : ax2, yy2 = (by2 < ay2) ? by2 : ay2;
    float dw = xx2 - xx1, dh = yy2 - yy1;
    float w = (0.0f < dw) ? dw : 0.0f, h = (0.0f < dh) ? dh : 0.0f;
    float inter = w * h;
    float ovr = inter / (aarea + barea - inter);
    return (double)ovr > thresh;
}

/* Greedy NMS for thresh >= 0 through a multi-level grid (nms_grid.c). keep_pos[<= n] gets the
 * kept visiting positions, *n_keep their count; max_keep > 0 stops early. 0 or ND_ERR_NOMEM. */
int det_nms_grid(const det_nms_boxes *s, double thresh, int64_t max_keep, int32_t *keep_pos,
                 int32_t *n_keep);

#endif
