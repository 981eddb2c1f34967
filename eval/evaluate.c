/* COCOeval.evaluate: _prepare, computeIoU / computeOks and evaluateImg, over flat arrays.
 *
 * Work is split into units, one per (category, image) as pycocotools' self.ious; a unit
 * writes only its own slice of the output (offsets fixed before the parallel loop), so the
 * numbers do not depend on the thread count or schedule. */
#include "eval/evaluate.h"

#include "common/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- stable sort of indices by score, highest first (np.argsort(-s, kind='mergesort')) -- */

/* numpy sorts NaN after every number; -s for s = NaN stays NaN, so NaN scores go last */
static int before(double a, double b) {
    if (isnan(a)) return 0;
    if (isnan(b)) return 1;
    return a > b;
}

void ceval_sort_by_score(int64_t *idx, int64_t n, const double *score, int64_t *tmp) {
    if (n < 2) return;
    if (n <= 16) { /* insertion sort is stable */
        for (int64_t i = 1; i < n; i++) {
            int64_t v = idx[i], j = i;
            while (j > 0 && before(score[v], score[idx[j - 1]])) { idx[j] = idx[j - 1]; j--; }
            idx[j] = v;
        }
        return;
    }
    int64_t h = n / 2;
    ceval_sort_by_score(idx, h, score, tmp);
    ceval_sort_by_score(idx + h, n - h, score, tmp);
    if (!before(score[idx[h]], score[idx[h - 1]])) return; /* already in order */
    memcpy(tmp, idx, sizeof *tmp * (size_t)h);
    int64_t i = 0, j = h, o = 0;
    while (i < h && j < n) idx[o++] = before(score[idx[j]], score[tmp[i]]) ? idx[j++] : tmp[i++];
    while (i < h) idx[o++] = tmp[i++];
}

/* ---- buckets: _gts / _dts keyed by (image slot, category slot) -------------------------- */

typedef struct pair3 { int64_t key, item; } pair3;

/* Stable counting sort of (key, item) into CSR start[nkeys + 1] / items. */
static int bucketize(const pair3 *p, int64_t n, int64_t nkeys, int64_t **start, int64_t **items) {
    *start = calloc((size_t)nkeys + 1, sizeof **start);
    *items = malloc(sizeof **items * (size_t)(n ? n : 1));
    if (!*start || !*items) return nd_fail(ND_ERR_NOMEM, "out of memory bucketing %lld annotations", (long long)n);
    for (int64_t i = 0; i < n; i++) (*start)[p[i].key + 1]++;
    for (int64_t k = 0; k < nkeys; k++) (*start)[k + 1] += (*start)[k];
    int64_t *fill = malloc(sizeof *fill * (size_t)(nkeys ? nkeys : 1));
    if (!fill) return nd_fail(ND_ERR_NOMEM, "out of memory");
    memcpy(fill, *start, sizeof *fill * (size_t)nkeys);
    for (int64_t i = 0; i < n; i++) (*items)[fill[p[i].key]++] = p[i].item;
    free(fill);
    return 0;
}

int ceval_prepare(ceval_ev *ev) {
    const ceval_gt *gt = ev->gt;
    const ceval_dets *dt = ev->dt;
    int64_t I = ev->I, NC = ev->ncat_ids;
    int rc = 0;
    int64_t *islot = malloc(sizeof *islot * (size_t)(gt->imgs.n + 1));
    ev->cslot = malloc(sizeof *ev->cslot * (size_t)(gt->cats.n + 1));
    pair3 *p = malloc(sizeof *p * (size_t)(gt->nanns + dt->n + 1));
    if (!islot || !ev->cslot || !p) { rc = nd_fail(ND_ERR_NOMEM, "out of memory"); goto done; }
    for (int64_t i = 0; i < gt->imgs.n; i++) islot[i] = -1;
    for (int64_t i = 0; i < I; i++) if (ev->pimg[i] >= 0) islot[ev->pimg[i]] = i;
    for (int64_t c = 0; c < gt->cats.n; c++) ev->cslot[c] = -1;
    for (int64_t k = 0; k < NC; k++)
        if (ev->pcat[k] >= 0 && ev->cslot[ev->pcat[k]] < 0) ev->cslot[ev->pcat[k]] = k;
    int filter = ev->use_cats && NC > 0; /* getAnnIds ignores an empty catIds */

    /* GT: for image in imgIds, imgToAnns in file order, filtered by category, then loadAnns
     * by id: a duplicated id yields the LAST annotation with it (COCO.anns is a dict). */
    int64_t n = 0;
    for (int64_t i = 0; i < I; i++) {
        int64_t img = ev->pimg[i];
        if (img < 0) continue;
        for (int64_t q = gt->img_ann_start[img]; q < gt->img_ann_start[img + 1]; q++) {
            int64_t a = gt->img_ann_idx[q];
            if (filter && ev->cslot[gt->anns[a].cat] < 0) continue;
            int64_t b = gt->ann_last[a];
            int64_t bi = islot[gt->anns[b].img], bc = ev->cslot[gt->anns[b].cat];
            if (bi < 0 || bc < 0) continue; /* lands in a (image, category) never evaluated */
            p[n].key = bi * NC + bc;
            p[n].item = b;
            n++;
        }
    }
    ev->n_gt_used = n;
    if ((rc = bucketize(p, n, I * NC, &ev->gb_start, &ev->gb_idx))) goto done;
    /* DT: cocoDt.imgToAnns is in file order for each image */
    n = 0;
    for (int64_t d = 0; d < dt->n; d++) {
        int64_t bi = islot[dt->d[d].img], c = dt->d[d].cat;
        if (bi < 0 || c < 0 || ev->cslot[c] < 0) continue;
        p[n].key = bi * NC + ev->cslot[c];
        p[n].item = d;
        n++;
    }
    ev->n_dt_used = n;
    rc = bucketize(p, n, I * NC, &ev->db_start, &ev->db_idx);
done:
    free(islot);
    free(p);
    return rc;
}

/* ---- per-unit lists --------------------------------------------------------------------- */

/* Append the bucket lists of unit (k, i): one category slot, or (useCats = 0) every catId in
 * params order, as evaluateImg concatenates them. */
static int64_t gather(const ceval_ev *ev, int64_t k, int64_t i, const int64_t *start, const int64_t *items,
                      int64_t *out) {
    int64_t n = 0, NC = ev->ncat_ids;
    if (ev->use_cats) {
        int64_t key = i * NC + k;
        for (int64_t q = start[key]; q < start[key + 1]; q++) out[n++] = items[q];
        return n;
    }
    for (int64_t j = 0; j < NC; j++) {
        int64_t c = ev->pcat[j];
        if (c < 0 || ev->cslot[c] < 0) continue;
        int64_t key = i * NC + ev->cslot[c];
        for (int64_t q = start[key]; q < start[key + 1]; q++) {
            if (out) out[n] = items[q];
            n++;
        }
    }
    return n;
}

int64_t ceval_unit_count(const ceval_ev *ev, int64_t k, int64_t i, int gt_side) {
    if (ev->use_cats) {
        int64_t key = i * ev->ncat_ids + k;
        const int64_t *s = gt_side ? ev->gb_start : ev->db_start;
        return s[key + 1] - s[key];
    }
    return gather(ev, k, i, gt_side ? ev->gb_start : ev->db_start, gt_side ? ev->gb_idx : ev->db_idx, NULL);
}

int64_t ceval_unit_gt(const ceval_ev *ev, int64_t k, int64_t i, int64_t *out) {
    return gather(ev, k, i, ev->gb_start, ev->gb_idx, out);
}
int64_t ceval_unit_dt(const ceval_ev *ev, int64_t k, int64_t i, int64_t *out) {
    return gather(ev, k, i, ev->db_start, ev->db_idx, out);
}

/* ---- similarity: computeIoU / computeOks ------------------------------------------------ */

static void oks(const ceval_ev *ev, const int64_t *dl, int64_t D, const int64_t *gl, int64_t G, double *o) {
    const ceval_gt *gt = ev->gt;
    const ceval_dets *dt = ev->dt;
    int k = ev->nsig;
    double e[64];
    const double eps = 2.220446049250313e-16; /* np.spacing(1) */
    for (int64_t jg = 0; jg < G; jg++) {
        const ceval_ann *a = &gt->anns[gl[jg]];
        const double *g = gt->store.kps + a->kp_off;
        int k1 = 0;
        for (int q = 0; q < k; q++) k1 += g[3 * q + 2] > 0;
        const double *bb = a->bbox;
        double x0 = bb[0] - bb[2], x1 = bb[0] + bb[2] * 2, y0 = bb[1] - bb[3], y1 = bb[1] + bb[3] * 2;
        for (int64_t jd = 0; jd < D; jd++) {
            const double *d = dt->store.kps + dt->d[dl[jd]].kp_off;
            int ne = 0;
            for (int q = 0; q < k; q++) {
                double dx, dy;
                if (k1 > 0) {
                    dx = d[3 * q] - g[3 * q];
                    dy = d[3 * q + 1] - g[3 * q + 1];
                } else {
                    double xd = d[3 * q], yd = d[3 * q + 1];
                    dx = fmax(0.0, x0 - xd) + fmax(0.0, xd - x1);
                    dy = fmax(0.0, y0 - yd) + fmax(0.0, yd - y1);
                    /* np.max over (0, v) propagates NaN */
                    if (isnan(x0 - xd) || isnan(xd - x1)) dx = NAN;
                    if (isnan(y0 - yd) || isnan(yd - y1)) dy = NAN;
                }
                double v = (dx * dx + dy * dy) / ev->vars[q] / (a->area + eps) / 2;
                if (k1 > 0 && !(g[3 * q + 2] > 0)) continue;
                e[ne++] = exp(-v);
            }
            o[jd * G + jg] = ne ? ceval_np_sum(e, ne) / ne : NAN;
        }
    }
}

void ceval_unit_similarity(const ceval_ev *ev, const int64_t *dl, int64_t D, const int64_t *gl, int64_t G,
                           double *o, double *boxbuf, uint8_t *crowd8) {
    const ceval_gt *gt = ev->gt;
    for (int64_t g = 0; g < G; g++) {
        double c = gt->anns[gl[g]].iscrowd;
        /* maskUtils.iou takes np.array(iscrowd, dtype=np.uint8) of int(iscrowd) */
        crowd8[g] = (uint8_t)(int64_t)(fabs(c) < 9e18 ? c : 0);
    }
    if (ev->iou_type == CEVAL_KEYPOINTS) {
        oks(ev, dl, D, gl, G, o);
    } else if (ev->iou_type == CEVAL_BBOX) {
        double *db = boxbuf, *gb = boxbuf + 4 * D;
        for (int64_t d = 0; d < D; d++) memcpy(db + 4 * d, ev->dt->d[dl[d]].bbox, 4 * sizeof(double));
        for (int64_t g = 0; g < G; g++) memcpy(gb + 4 * g, gt->anns[gl[g]].bbox, 4 * sizeof(double));
        ceval_bbox_iou(db, D, gb, G, crowd8, o);
    } else {
        for (int64_t d = 0; d < D; d++)
            for (int64_t g = 0; g < G; g++)
                o[d * G + g] = ceval_rle_iou_pair(&ev->dt_rle[dl[d]], ev->dt_rbb + 4 * dl[d], &ev->gt_rle[gl[g]],
                                                  ev->gt_rbb + 4 * gl[g], crowd8[g]);
    }
}

/* ---- evaluateImg ------------------------------------------------------------------------ */

/* One unit for every area range: writes flags[d][a][t] (1 true positive, 2 false positive,
 * 0 ignored) and npig[a]. dl is sorted by score and cut to maxDets[-1]; ious is D x G in gl
 * order (empty when have_ious is 0, e.g. no GT). */
void ceval_unit_match(const ceval_ev *ev, const int64_t *dl, int64_t D, const int64_t *gl, int64_t G,
                      const double *ious, int have_ious, uint8_t *flags, int32_t *npig, ceval_scratch *s) {
    const ceval_gt *gt = ev->gt;
    int T = ev->T;
    for (int64_t g = 0; g < G; g++) {
        const ceval_ann *a = &gt->anns[gl[g]];
        s->base_ig[g] = a->iscrowd != 0; /* gt['ignore'] = iscrowd, an explicit "ignore" is discarded */
        if (ev->iou_type == CEVAL_KEYPOINTS && a->num_keypoints == 0) s->base_ig[g] = 1;
        double c = a->iscrowd;
        s->crowd[g] = (int64_t)(fabs(c) < 9e18 ? c : 0) != 0; /* not iscrowd[gind]: Python int */
    }
    for (int a = 0; a < ev->A; a++) {
        double lo = ev->area_rng[2 * a], hi = ev->area_rng[2 * a + 1];
        int64_t ng = 0;
        /* gtind: stable argsort of _ignore, not-ignored first */
        for (int pass = 0; pass < 2; pass++)
            for (int64_t g = 0; g < G; g++) {
                double ar = gt->anns[gl[g]].area;
                int ig = s->base_ig[g] || ar < lo || ar > hi;
                if (ig == pass) { s->order[ng] = g; s->gig[ng] = (uint8_t)ig; ng++; }
            }
        int32_t np_ = 0;
        for (int64_t g = 0; g < G; g++) np_ += s->gig[g] == 0;
        npig[a] = np_;
        for (int t = 0; t < T; t++) {
            uint8_t *gtm = s->gtm;
            memset(gtm, 0, (size_t)G);
            /* layout [d][a][t]: accumulate reads one detection's A*T flags together */
            uint8_t *f = flags + (int64_t)a * T + t;
            const int64_t stride = (int64_t)ev->A * T;
            double thr = ev->iou_thrs[t];
            for (int64_t d = 0; d < D; d++) {
                int64_t m = -1;
                if (have_ious) {
                    const double cap = 1 - 1e-10;
                    double best = cap < thr ? cap : thr; /* Python's min([t, 1-1e-10]) */
                    for (int64_t gi = 0; gi < G; gi++) {
                        if (gtm[gi] && !s->crowd[s->order[gi]]) continue;
                        if (m > -1 && s->gig[m] == 0 && s->gig[gi] == 1) break;
                        double v = ious[d * G + s->order[gi]];
                        if (v < best) continue;
                        best = v;
                        m = gi;
                    }
                }
                int matched = 0, ig = 0;
                if (m > -1) {
                    ig = s->gig[m];
                    matched = gt->anns[gl[s->order[m]]].id != 0; /* accumulate tests the id's truth */
                    gtm[m] = 1;
                }
                if (!matched) {
                    double ar = ev->dt->d[dl[d]].area;
                    if (ar < lo || ar > hi) ig = 1;
                }
                f[d * stride] = ig ? 0 : matched ? 1 : 2;
            }
        }
    }
}
