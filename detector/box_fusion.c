/* Weighted box fusion of test-time passes (Solovyev et al., "Weighted boxes fusion", 2021, with
 * scale-aware trust per pass as in SNIP's multi-scale testing). NMS keeps one pass's box and
 * score; fusion averages the boxes that agree, which places them better, and averages the
 * scores over the passes that should have seen the object, which ranks boxes that several
 * passes agree on above those one pass alone found. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "detector/frcnn.h"

typedef struct cluster {
    double wsum, wbox[4]; /* sum of member scores, and of score x box */
    float box[4];         /* the fused box: wbox / wsum */
    float score;
    int32_t cls;
} cluster;

typedef struct ranked {
    float score;
    int64_t index;
} ranked;

/* Highest score first, equal scores in increasing index. */
static int cmp_ranked(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

static void sort_desc(ranked *r, int64_t n, const float *scores) {
    for (int64_t i = 0; i < n; i++) r[i].score = scores[i], r[i].index = i;
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
}

static float iou(const float *a, const float *b) {
    float ix = fminf(a[2], b[2]) - fmaxf(a[0], b[0]), iy = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    if (!(ix > 0 && iy > 0)) return 0;
    float inter = ix * iy;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

static int trusted(const det_fuse_passes *p, int32_t k, float side_image) {
    float side = side_image * p->scale[k];
    return side >= p->min_side[k] && (p->max_side[k] <= 0 || side < p->max_side[k]);
}

int det_fuse_boxes(const float *boxes, const float *scores, const int32_t *classes, const int32_t *pass,
                   int64_t n, const det_fuse_passes *passes, float iou_thresh, float score_thresh,
                   int64_t max_dets, float *out_boxes, float *out_scores, int32_t *out_classes, int64_t *n_out) {
    ND_ASSERT(passes && n_out && n >= 0, "bad arguments");
    *n_out = 0;
    const int32_t np = passes->n;
    if (np < 1 || !(iou_thresh >= 0 && iou_thresh < 1) || !isfinite(score_thresh) || max_dets < 0)
        return nd_fail(ND_ERR_INVALID, "box fusion: %d passes, IoU threshold %g, max_dets %lld", np,
                       (double)iou_thresh, (long long)max_dets);
    for (int32_t k = 0; k < np; k++)
        if (!(passes->scale[k] > 0 && passes->min_side[k] >= 0 && passes->max_side[k] >= 0))
            return nd_fail(ND_ERR_INVALID, "box fusion: pass %d has scale %g, sides [%g, %g)", k,
                           (double)passes->scale[k], (double)passes->min_side[k], (double)passes->max_side[k]);
    for (int64_t i = 0; i < n; i++)
        if (pass[i] < 0 || pass[i] >= np)
            return nd_fail(ND_ERR_INVALID, "box fusion: box %lld from pass %d of %d", (long long)i, pass[i], np);
        else if (!isfinite(scores[i]))
            return nd_fail(ND_ERR_NUMERIC, "box fusion: box %lld scores %g", (long long)i, (double)scores[i]);
    if (n == 0 || max_dets == 0) return ND_OK;

    ranked *order = malloc((size_t)n * sizeof *order);
    cluster *cl = malloc((size_t)n * sizeof *cl);
    float *best = calloc((size_t)n * (size_t)np, sizeof *best); /* [cluster][pass] best member score */
    float *cl_scores = malloc((size_t)n * sizeof *cl_scores);
    ranked *rank = malloc((size_t)n * sizeof *rank);
    int rc = ND_OK;
    if (!order || !cl || !best || !cl_scores || !rank) {
        rc = nd_fail(ND_ERR_NOMEM, "box fusion: out of memory for %lld boxes", (long long)n);
        goto done;
    }
    sort_desc(order, n, scores);
    int64_t nc = 0;
    for (int64_t o = 0; o < n; o++) {
        int64_t i = order[o].index;
        const float *b = boxes + 4 * i;
        int64_t into = -1;
        float most = iou_thresh;
        for (int64_t c = 0; c < nc; c++) {
            if (cl[c].cls != classes[i]) continue;
            float v = iou(cl[c].box, b);
            if (v > most) most = v, into = c;
        }
        if (into < 0) {
            into = nc++;
            memset(&cl[into], 0, sizeof cl[into]);
            cl[into].cls = classes[i];
        }
        cluster *c = &cl[into];
        double w = scores[i] > 0 ? scores[i] : 0;
        c->wsum += w;
        for (int q = 0; q < 4; q++) c->wbox[q] += w * b[q];
        for (int q = 0; q < 4; q++) c->box[q] = c->wsum > 0 ? (float)(c->wbox[q] / c->wsum) : b[q];
        float *bp = best + into * np + pass[i];
        if (scores[i] > *bp) *bp = scores[i];
    }
    for (int64_t c = 0; c < nc; c++) {
        const float *b = cl[c].box;
        float side = sqrtf(fmaxf(b[2] - b[0], 0) * fmaxf(b[3] - b[1], 0));
        const float *bp = best + c * np;
        double sum = 0, sum_any = 0;
        int32_t nt = 0, n_any = 0;
        for (int32_t k = 0; k < np; k++) {
            if (trusted(passes, k, side)) sum += bp[k], nt++;
            if (bp[k] > 0) sum_any += bp[k], n_any++;
        }
        cl_scores[c] = nt > 0 ? (float)(sum / nt) : n_any > 0 ? (float)(sum_any / n_any) : 0;
    }
    sort_desc(rank, nc, cl_scores);
    int64_t k = 0;
    for (int64_t r = 0; r < nc && k < max_dets; r++) {
        int64_t c = rank[r].index;
        if (!(cl_scores[c] > score_thresh)) break; /* sorted: the rest score no higher */
        memcpy(out_boxes + 4 * k, cl[c].box, 4 * sizeof(float));
        out_scores[k] = cl_scores[c], out_classes[k] = cl[c].cls;
        k++;
    }
    *n_out = k;
done:
    free(order), free(cl), free(best), free(cl_scores), free(rank);
    return rc;
}
