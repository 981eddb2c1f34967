/* ceval_evaluate: _prepare's checks and masks, the per-unit loop of evaluate(), then
 * accumulate and summarize. */
#include "eval/evaluate.h"

#include "common/fileio.h"
#include "common/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void ceval_result_free(ceval_result *r) {
    if (!r) return;
    free(r->iou_thrs);
    free(r->rec_thrs);
    free(r->max_dets);
    free(r->area_rng);
    if (r->cat_keys)
        for (int i = 0; i < r->K; i++) free(r->cat_keys[i]);
    if (r->cat_names)
        for (int i = 0; i < r->K; i++) free(r->cat_names[i]);
    free(r->cat_keys);
    free(r->cat_names);
    free(r->precision);
    free(r->recall);
    free(r->scores);
    free(r->per_cat_ap);
    free(r);
}

static void ev_free(ceval_ev *ev) {
    free(ev->iou_thrs); free(ev->rec_thrs); free(ev->area_rng); free(ev->vars); free(ev->max_dets);
    free(ev->pimg); free(ev->pcat); free(ev->pcat_num); free(ev->cslot);
    free(ev->gb_start); free(ev->gb_idx); free(ev->db_start); free(ev->db_idx);
    if (ev->gt_rle) for (int64_t i = 0; i < ev->gt->nanns; i++) ceval_rle_free(&ev->gt_rle[i]);
    if (ev->dt_rle) for (int64_t i = 0; i < ev->dt->n; i++) ceval_rle_free(&ev->dt_rle[i]);
    free(ev->gt_rle); free(ev->dt_rle); free(ev->gt_rbb); free(ev->dt_rbb);
    free(ev->u_doff); free(ev->u_scores); free(ev->u_flags); free(ev->u_npig);
}

static int nthreads(int requested) {
#ifdef _OPENMP
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

static int fail_ann(const ceval_gt *gt, int64_t a, const char *what) {
    char img[128];
    ceval_id_format(&gt->imgs.ids[gt->anns[a].img], img, sizeof img);
    return nd_fail(ND_ERR_FORMAT, "%s: annotations[%lld] (id %.17g, image %s): %s", gt->path,
                   (long long)gt->anns[a].file_index, gt->anns[a].id, img, what);
}

static int fail_dt(const ceval_dets *dt, int64_t d, const char *what) {
    char img[128];
    ceval_id_format(&dt->gt->imgs.ids[dt->d[d].img], img, sizeof img);
    return nd_fail(ND_ERR_FORMAT, "results[%lld] (image %s): %s", (long long)d, img, what);
}

static int image_size(const ceval_gt *gt, int32_t img, uint32_t *h, uint32_t *w) {
    if (gt->img_h[img] < 0 || gt->img_w[img] < 0) return -1;
    *h = (uint32_t)gt->img_h[img];
    *w = (uint32_t)gt->img_w[img];
    return 0;
}

/* What evaluate() reads from each annotation taking part, checked once, serially, so that
 * the parallel loop cannot fail and errors name the first culprit in file order. */
static int validate(ceval_ev *ev) {
    const ceval_gt *gt = ev->gt;
    const ceval_dets *dt = ev->dt;
    int64_t ngt = ev->gb_start[ev->I * ev->ncat_ids], ndt = ev->db_start[ev->I * ev->ncat_ids];
    for (int64_t q = 0; q < ngt; q++) {
        int64_t a = ev->gb_idx[q];
        const ceval_ann *an = &gt->anns[a];
        if (!an->has_area) return fail_ann(gt, a, "no numeric \"area\" (evaluateImg needs it)");
        if (ev->iou_type == CEVAL_BBOX && an->has_bbox != 1)
            return fail_ann(gt, a, "no \"bbox\" of 4 numbers (needed for iouType bbox)");
        if (ev->iou_type == CEVAL_KEYPOINTS && !an->has_num_kp)
            return fail_ann(gt, a, "no numeric \"num_keypoints\" (needed for iouType keypoints)");
        uint32_t h, w;
        if (ev->iou_type == CEVAL_SEGM) {
            if (an->seg < 0) return fail_ann(gt, a, "no \"segmentation\" (needed for iouType segm)");
            if (image_size(gt, an->img, &h, &w)) return fail_ann(gt, a, "its image has no valid height/width");
        }
    }
    for (int64_t q = 0; q < ndt; q++) {
        int64_t d = ev->db_idx[q];
        if (ev->iou_type == CEVAL_BBOX && dt->d[d].has_bbox != 1) return fail_dt(dt, d, "no \"bbox\" of 4 numbers");
        uint32_t h, w;
        if (ev->iou_type == CEVAL_SEGM) {
            if (dt->d[d].seg < 0 && dt->branch != 0)
                return fail_dt(dt, d, "no \"segmentation\" (keypoint results cannot be scored as masks)");
            if (image_size(gt, dt->d[d].img, &h, &w)) return fail_dt(dt, d, "its image has no valid height/width");
        }
    }
    if (ev->iou_type == CEVAL_KEYPOINTS && ev->use_cats) {
        /* computeOks reads keypoints and bbox only where a unit has both GT and detections */
        int64_t *gl = malloc(sizeof *gl * (size_t)(ngt + 1)), *dl = malloc(sizeof *dl * (size_t)(ndt + 1));
        if (!gl || !dl) { free(gl); free(dl); return nd_fail(ND_ERR_NOMEM, "out of memory"); }
        int rc = 0;
        for (int64_t k = 0; k < ev->K && !rc; k++)
            for (int64_t i = 0; i < ev->I && !rc; i++) {
                int64_t G = ceval_unit_gt(ev, k, i, gl), D = ceval_unit_dt(ev, k, i, dl);
                if (!G || !D) continue;
                for (int64_t g = 0; g < G && !rc; g++) {
                    const ceval_ann *an = &gt->anns[gl[g]];
                    if (an->kp_n != 3 * ev->nsig) {
                        char msg[96];
                        snprintf(msg, sizeof msg, "\"keypoints\" must hold %d numbers", 3 * ev->nsig);
                        rc = fail_ann(gt, gl[g], msg);
                    } else if (an->has_bbox != 1) {
                        rc = fail_ann(gt, gl[g], "no \"bbox\" of 4 numbers (computeOks needs it)");
                    }
                }
                for (int64_t d = 0; d < D && !rc; d++)
                    if (dt->d[dl[d]].kp_n != 3 * ev->nsig) {
                        char msg[96];
                        snprintf(msg, sizeof msg, "\"keypoints\" must hold %d numbers", 3 * ev->nsig);
                        rc = fail_dt(dt, dl[d], msg);
                    }
            }
        free(gl);
        free(dl);
        if (rc) return rc;
    }
    return 0;
}

/* _toMask: every GT and DT segmentation taking part, in parallel; the first failure in file
 * order is reported. */
static int make_masks(ceval_ev *ev) {
    const ceval_gt *gt = ev->gt;
    const ceval_dets *dt = ev->dt;
    int64_t ngt = ev->gb_start[ev->I * ev->ncat_ids], ndt = ev->db_start[ev->I * ev->ncat_ids];
    ev->gt_rle = calloc((size_t)gt->nanns + 1, sizeof *ev->gt_rle);
    ev->dt_rle = calloc((size_t)dt->n + 1, sizeof *ev->dt_rle);
    ev->gt_rbb = calloc(4 * ((size_t)gt->nanns + 1), sizeof(double));
    ev->dt_rbb = calloc(4 * ((size_t)dt->n + 1), sizeof(double));
    if (!ev->gt_rbb || !ev->dt_rbb) return nd_fail(ND_ERR_NOMEM, "out of memory");
    int *gst = calloc((size_t)ngt + 1, sizeof *gst), *dst = calloc((size_t)ndt + 1, sizeof *dst);
    if (!ev->gt_rle || !ev->dt_rle || !gst || !dst) {
        free(gst); free(dst);
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    /* a GT index can appear twice (duplicate ids): convert each distinct one once */
    uint8_t *done = calloc((size_t)gt->nanns + 1, 1);
    int64_t *pending = malloc(sizeof *pending * (size_t)(ngt + 1)), nt = 0;
    if (!done || !pending) { free(done); free(pending); free(gst); free(dst); return nd_fail(ND_ERR_NOMEM, "out of memory"); }
    for (int64_t q = 0; q < ngt; q++)
        if (!done[ev->gb_idx[q]]) { done[ev->gb_idx[q]] = 1; pending[nt++] = ev->gb_idx[q]; }
    int nth = ev->num_threads;
    #pragma omp parallel for schedule(dynamic, 64) num_threads(nthreads(nth))
    for (int64_t q = 0; q < nt; q++) {
        const ceval_ann *an = &gt->anns[pending[q]];
        uint32_t h = (uint32_t)gt->img_h[an->img], w = (uint32_t)gt->img_w[an->img];
        gst[q] = ceval_seg_to_rle(&gt->store, an->seg, h, w, &ev->gt_rle[pending[q]]);
        if (!gst[q]) gst[q] = ceval_rle_to_bbox(&ev->gt_rle[pending[q]], ev->gt_rbb + 4 * pending[q]);
    }
    #pragma omp parallel for schedule(dynamic, 64) num_threads(nthreads(nth))
    for (int64_t q = 0; q < ndt; q++) {
        int64_t d = ev->db_idx[q];
        const ceval_dt *x = &dt->d[d];
        uint32_t h = (uint32_t)gt->img_h[x->img], w = (uint32_t)gt->img_w[x->img];
        if (x->seg >= 0) {
            dst[q] = ceval_seg_to_rle(&dt->store, x->seg, h, w, &ev->dt_rle[d]);
        } else {
            /* loadRes' bbox branch: segmentation = [[x1, y1, x1, y2, x2, y2, x2, y1]] */
            double x1 = x->bbox[0], x2 = x->bbox[0] + x->bbox[2], y1 = x->bbox[1], y2 = x->bbox[1] + x->bbox[3];
            double xy[8] = {x1, y1, x1, y2, x2, y2, x2, y1};
            dst[q] = ceval_rle_from_poly(&ev->dt_rle[d], xy, 4, h, w);
        }
        if (!dst[q] && x->bbox_of_mask) memcpy(ev->dt_rbb + 4 * d, x->bbox, sizeof x->bbox);
        else if (!dst[q]) dst[q] = ceval_rle_to_bbox(&ev->dt_rle[d], ev->dt_rbb + 4 * d);
    }
    int rc = 0;
    int64_t bad_g = -1, bad_d = -1;
    for (int64_t q = 0; q < nt; q++)
        if (gst[q] && (bad_g < 0 || pending[q] < bad_g)) bad_g = pending[q];
    for (int64_t q = 0; q < ndt; q++)
        if (dst[q] && (bad_d < 0 || ev->db_idx[q] < bad_d)) bad_d = ev->db_idx[q];
    if (bad_g >= 0 || bad_d >= 0) {
        /* redo the first failure serially to get its message on this thread */
        ceval_rle tmp;
        double bb[4];
        char msg[600];
        if (bad_g >= 0) {
            const ceval_ann *an = &gt->anns[bad_g];
            if (ceval_seg_to_rle(&gt->store, an->seg, (uint32_t)gt->img_h[an->img], (uint32_t)gt->img_w[an->img], &tmp) == 0)
                ceval_rle_to_bbox(&tmp, bb);
            ceval_rle_free(&tmp);
            snprintf(msg, sizeof msg, "segmentation: %s", nd_last_error());
            rc = fail_ann(gt, bad_g, msg);
        } else {
            const ceval_dt *x = &dt->d[bad_d];
            uint32_t h = (uint32_t)gt->img_h[x->img], w = (uint32_t)gt->img_w[x->img];
            if ((x->seg >= 0 ? ceval_seg_to_rle(&dt->store, x->seg, h, w, &tmp) : ceval_rle_from_bbox(&tmp, x->bbox, h, w)) == 0)
                ceval_rle_to_bbox(&tmp, bb);
            ceval_rle_free(&tmp);
            snprintf(msg, sizeof msg, "segmentation: %s", nd_last_error());
            rc = fail_dt(dt, bad_d, msg);
        }
    }
    free(done); free(pending); free(gst); free(dst);
    return rc;
}

static int run_units(ceval_ev *ev) {
    int64_t U = ev->K * ev->I, maxdet = ev->max_dets[ev->M - 1];
    int64_t maxG = 0, maxD = 0;
    ev->u_doff = malloc(sizeof *ev->u_doff * (size_t)(U + 1));
    ev->u_npig = calloc((size_t)(U * ev->A + 1), sizeof *ev->u_npig);
    if (!ev->u_doff || !ev->u_npig) return nd_fail(ND_ERR_NOMEM, "out of memory");
    ev->u_doff[0] = 0;
    for (int64_t u = 0; u < U; u++) {
        int64_t k = u / ev->I, i = u % ev->I;
        int64_t D = ceval_unit_count(ev, k, i, 0), G = ceval_unit_count(ev, k, i, 1);
        if (D > maxD) maxD = D;
        if (G > maxG) maxG = G;
        ev->u_doff[u + 1] = ev->u_doff[u] + (D < maxdet ? D : maxdet);
    }
    int64_t ND = ev->u_doff[U];
    ev->u_scores = malloc(sizeof(double) * (size_t)(ND + 1));
    ev->u_flags = malloc((size_t)(ND * ev->A * ev->T + 1));
    if (!ev->u_scores || !ev->u_flags) return nd_fail(ND_ERR_NOMEM, "out of memory for %lld detections", (long long)ND);
    int failed = 0;
    int nth = ev->num_threads;
    #pragma omp parallel num_threads(nthreads(nth)) reduction(|| : failed)
    {
        int64_t *gl = malloc(sizeof(int64_t) * (size_t)(maxG + 1));
        int64_t *dl = malloc(sizeof(int64_t) * (size_t)(maxD + 1));
        int64_t *pos = malloc(sizeof(int64_t) * (size_t)(maxD + 1));
        int64_t *tmp = malloc(sizeof(int64_t) * (size_t)(maxD + 1));
        double *sc = malloc(sizeof(double) * (size_t)(maxD + 1));
        int64_t kd = maxD < maxdet ? maxD : maxdet;
        double *ious = malloc(sizeof(double) * (size_t)(kd * maxG + 1));
        double *boxes = malloc(sizeof(double) * 4 * (size_t)(kd + maxG + 1));
        uint8_t *crowd8 = malloc((size_t)maxG + 1);
        ceval_scratch s;
        s.order = malloc(sizeof(int64_t) * (size_t)(maxG + 1));
        s.gig = malloc((size_t)maxG + 1);
        s.base_ig = malloc((size_t)maxG + 1);
        s.crowd = malloc((size_t)maxG + 1);
        s.gtm = malloc((size_t)maxG + 1);
        int ok = gl && dl && pos && tmp && sc && ious && boxes && crowd8 && s.order && s.gig && s.base_ig &&
                 s.crowd && s.gtm;
        if (!ok) failed = 1;
        #pragma omp for schedule(dynamic, 16)
        for (int64_t u = 0; u < U; u++) {
            if (!ok) continue;
            int64_t k = u / ev->I, i = u % ev->I;
            int64_t G = ceval_unit_gt(ev, k, i, gl), D0 = ceval_unit_dt(ev, k, i, dl);
            if (G == 0 && D0 == 0) continue; /* evaluateImg returns None */
            for (int64_t j = 0; j < D0; j++) { pos[j] = j; sc[j] = ev->dt->d[dl[j]].score; }
            ceval_sort_by_score(pos, D0, sc, tmp);
            int64_t D = ev->u_doff[u + 1] - ev->u_doff[u];
            for (int64_t j = 0; j < D; j++) tmp[j] = dl[pos[j]];
            memcpy(dl, tmp, sizeof(int64_t) * (size_t)D);
            double *us = ev->u_scores + ev->u_doff[u];
            for (int64_t j = 0; j < D; j++) us[j] = ev->dt->d[dl[j]].score;
            /* computeOks ignores useCats: with useCats = 0 it finds no GT under category -1 */
            int have = G > 0 && D > 0 && !(ev->iou_type == CEVAL_KEYPOINTS && !ev->use_cats);
            if (have) ceval_unit_similarity(ev, dl, D, gl, G, ious, boxes, crowd8);
            ceval_unit_match(ev, dl, D, gl, G, ious, have, ev->u_flags + ev->u_doff[u] * ev->A * ev->T,
                             ev->u_npig + u * ev->A, &s);
        }
        free(gl); free(dl); free(pos); free(tmp); free(sc); free(ious); free(boxes); free(crowd8);
        free(s.order); free(s.gig); free(s.base_ig); free(s.crowd); free(s.gtm);
    }
    if (failed) return nd_fail(ND_ERR_NOMEM, "out of memory for per-thread buffers");
    return 0;
}

static char *format_key(const ceval_id *id) {
    char buf[128];
    if (id->is_str) snprintf(buf, sizeof buf, "%.*s", (int)(id->len > 100 ? 100 : id->len), id->str);
    else ceval_id_format(id, buf, sizeof buf);
    return strdup(buf);
}

int ceval_evaluate(const ceval_gt *gt, const ceval_dets *dt, const ceval_params *p, ceval_result **out) {
    *out = NULL;
    if (!gt || !p) return nd_fail(ND_ERR_INVALID, "ceval_evaluate: NULL ground truth or parameters");
    ceval_dets empty = {0};
    if (!dt) { empty.gt = gt; dt = &empty; }
    ceval_ev ev;
    memset(&ev, 0, sizeof ev);
    ceval_result *r = NULL;
    int rc = ceval_setup(&ev, gt, dt, p);
    double t0 = nd_time_now();
    if (!rc) rc = ceval_prepare(&ev);
    if (!rc) rc = validate(&ev);
    if (!rc && ev.iou_type == CEVAL_SEGM) rc = make_masks(&ev);
    if (!rc) rc = run_units(&ev);
    double t1 = nd_time_now();
    if (!rc) {
        r = calloc(1, sizeof *r);
        if (!r) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        r->iou_type = ev.iou_type;
        r->T = ev.T; r->R = ev.R; r->K = (int)ev.K; r->A = ev.A; r->M = ev.M;
        /* shared with ev until the end, then owned by r */
        r->iou_thrs = ev.iou_thrs;
        r->rec_thrs = ev.rec_thrs;
        r->max_dets = ev.max_dets;
        r->area_rng = ev.area_rng;
        r->area_lbl = ev.iou_type == CEVAL_KEYPOINTS ? ceval_lbl_kp : ceval_lbl_det;
        r->n_images = ev.I;
        r->n_gt = ev.n_gt_used;
        r->n_dt = ev.n_dt_used;
        size_t np_ = (size_t)r->T * r->R * r->K * r->A * r->M, nr = (size_t)r->T * r->K * r->A * r->M;
        r->precision = malloc(sizeof(double) * (np_ + 1));
        r->scores = malloc(sizeof(double) * (np_ + 1));
        r->recall = malloc(sizeof(double) * (nr + 1));
        r->per_cat_ap = malloc(sizeof(double) * ((size_t)r->K + 1));
        r->cat_keys = calloc((size_t)r->K + 1, sizeof(char *));
        r->cat_names = calloc((size_t)r->K + 1, sizeof(char *));
        if (!r->precision || !r->scores || !r->recall || !r->per_cat_ap || !r->cat_keys || !r->cat_names) {
            rc = nd_fail(ND_ERR_NOMEM, "out of memory for the results");
        } else {
            for (size_t q = 0; q < np_; q++) r->precision[q] = r->scores[q] = -1;
            for (size_t q = 0; q < nr; q++) r->recall[q] = -1;
            for (int k = 0; k < r->K; k++) {
                if (!ev.use_cats) {
                    r->cat_keys[k] = strdup("-1");
                    r->cat_names[k] = strdup("(all categories)");
                } else if (ev.pcat[k] >= 0) {
                    r->cat_keys[k] = format_key(&gt->cats.ids[ev.pcat[k]]);
                    const char *nm = gt->cat_name[ev.pcat[k]];
                    r->cat_names[k] = strdup(nm ? nm : "");
                } else { /* a requested id no GT category has */
                    ceval_id id = {.num = ev.pcat_num[k]};
                    r->cat_keys[k] = format_key(&id);
                    r->cat_names[k] = strdup("");
                }
                if (!r->cat_keys[k] || !r->cat_names[k]) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
            }
        }
    }
    if (!rc) rc = ceval_accumulate(&ev, r);
    double t2 = nd_time_now();
    if (r) ev.iou_thrs = NULL, ev.rec_thrs = NULL, ev.max_dets = NULL, ev.area_rng = NULL;
    if (!rc) {
        ceval_summarize(r);
        r->seconds_evaluate = t1 - t0;
        r->seconds_accumulate = t2 - t1;
        *out = r;
    } else {
        ceval_result_free(r);
    }
    ev_free(&ev);
    return rc;
}
