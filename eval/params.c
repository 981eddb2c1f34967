/* COCOeval.Params: defaults as pycocotools builds them, and the checks on given ones. */
#include "eval/evaluate.h"

#include "common/status.h"

#include <stdlib.h>
#include <string.h>

const char *const ceval_lbl_det[4] = {"all", "small", "medium", "large"};
const char *const ceval_lbl_kp[3] = {"all", "medium", "large"};
static const double SIGMAS[17] = {.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89};

const char *ceval_iou_type_name(ceval_iou_type t) {
    return t == CEVAL_SEGM ? "segm" : t == CEVAL_KEYPOINTS ? "keypoints" : "bbox";
}

int ceval_iou_type_parse(const char *name) {
    if (!name) return -1;
    if (strcmp(name, "bbox") == 0) return CEVAL_BBOX;
    if (strcmp(name, "segm") == 0) return CEVAL_SEGM;
    if (strcmp(name, "keypoints") == 0) return CEVAL_KEYPOINTS;
    return -1;
}

void ceval_params_init(ceval_params *p, ceval_iou_type iou_type) {
    memset(p, 0, sizeof *p);
    p->iou_type = iou_type;
    p->use_cats = 1;
}

/* np.linspace(start, stop, num): i*step + start, the last one forced to stop. */
static void linspace(double *out, double start, double stop, int num) {
    double step = (stop - start) / (num - 1);
    for (int i = 0; i < num; i++) out[i] = i * step + start;
    out[num - 1] = stop;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int ceval_setup(ceval_ev *ev, const ceval_gt *gt, const ceval_dets *dt, const ceval_params *p) {
    ev->gt = gt;
    ev->dt = dt;
    ev->iou_type = p->iou_type;
    ev->use_cats = p->use_cats != 0;
    ev->num_threads = p->num_threads;
    if (p->iou_type != CEVAL_BBOX && p->iou_type != CEVAL_SEGM && p->iou_type != CEVAL_KEYPOINTS)
        return nd_fail(ND_ERR_INVALID, "unknown iou type %d", (int)p->iou_type);
    if (dt && dt->gt != gt) return nd_fail(ND_ERR_INVALID, "the detections were loaded against another ground truth");
    int kp = p->iou_type == CEVAL_KEYPOINTS;
    ev->T = p->iou_thrs ? p->n_iou_thrs : 10;
    ev->R = p->rec_thrs ? p->n_rec_thrs : 101;
    ev->M = p->max_dets ? p->n_max_dets : (kp ? 1 : 3);
    ev->A = kp ? 3 : 4;
    ev->nsig = p->kpt_sigmas ? p->n_kpt_sigmas : 17;
    if (ev->T < 1 || ev->R < 1 || ev->M < 1 || ev->nsig < 1 || ev->nsig > 64)
        return nd_fail(ND_ERR_INVALID, "parameters need at least one IoU threshold, recall threshold and maxDets "
                       "(and 1..64 keypoint sigmas)");
    if (p->area_rng && p->n_area_rng != ev->A)
        return nd_fail(ND_ERR_INVALID, "%d area ranges given; %s needs %d (%s)", p->n_area_rng,
                       ceval_iou_type_name(p->iou_type), ev->A, kp ? "all, medium, large" : "all, small, medium, large");
    ev->iou_thrs = malloc(sizeof(double) * (size_t)ev->T);
    ev->rec_thrs = malloc(sizeof(double) * (size_t)ev->R);
    ev->max_dets = malloc(sizeof(int64_t) * (size_t)ev->M);
    ev->area_rng = malloc(sizeof(double) * 2 * (size_t)ev->A);
    ev->vars = malloc(sizeof(double) * (size_t)ev->nsig);
    if (!ev->iou_thrs || !ev->rec_thrs || !ev->max_dets || !ev->area_rng || !ev->vars)
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    if (p->iou_thrs) memcpy(ev->iou_thrs, p->iou_thrs, sizeof(double) * (size_t)ev->T);
    else linspace(ev->iou_thrs, .5, 0.95, 10);
    if (p->rec_thrs) memcpy(ev->rec_thrs, p->rec_thrs, sizeof(double) * (size_t)ev->R);
    else linspace(ev->rec_thrs, .0, 1.00, 101);
    if (p->max_dets) memcpy(ev->max_dets, p->max_dets, sizeof(int64_t) * (size_t)ev->M);
    else if (kp) ev->max_dets[0] = 20;
    else { ev->max_dets[0] = 1; ev->max_dets[1] = 10; ev->max_dets[2] = 100; }
    for (int m = 0; m < ev->M; m++)
        if (ev->max_dets[m] < 0) return nd_fail(ND_ERR_INVALID, "maxDets must not be negative");
    qsort(ev->max_dets, (size_t)ev->M, sizeof(int64_t), cmp_i64); /* p.maxDets = sorted(p.maxDets) */
    if (p->area_rng) {
        memcpy(ev->area_rng, p->area_rng, sizeof(double) * 2 * (size_t)ev->A);
    } else if (kp) {
        const double a[6] = {0, 1e5 * 1e5, 32 * 32, 96 * 96, 96 * 96, 1e5 * 1e5};
        memcpy(ev->area_rng, a, sizeof a);
    } else {
        const double a[8] = {0, 1e5 * 1e5, 0, 32 * 32, 32 * 32, 96 * 96, 96 * 96, 1e5 * 1e5};
        memcpy(ev->area_rng, a, sizeof a);
    }
    for (int q = 0; q < ev->nsig; q++) {
        double s = p->kpt_sigmas ? p->kpt_sigmas[q] : SIGMAS[q] / 10.0; /* np.array([...])/10.0 */
        ev->vars[q] = (s * 2) * (s * 2);
    }
    /* imgIds: np.unique (sorted, distinct); default sorted GT image ids */
    if (p->img_ids) {
        double *u = malloc(sizeof(double) * (size_t)(p->n_img_ids + 1));
        ev->pimg = malloc(sizeof(int32_t) * (size_t)(p->n_img_ids + 1));
        if (!u || !ev->pimg) { free(u); return nd_fail(ND_ERR_NOMEM, "out of memory"); }
        memcpy(u, p->img_ids, sizeof(double) * (size_t)p->n_img_ids);
        qsort(u, (size_t)p->n_img_ids, sizeof(double), cmp_double);
        int64_t n = 0;
        for (int64_t i = 0; i < p->n_img_ids; i++)
            if (n == 0 || u[i] != u[n - 1]) u[n++] = u[i];
        for (int64_t i = 0; i < n; i++) {
            ceval_id id = {.num = u[i]};
            ev->pimg[i] = (int32_t)ceval_idtab_find(&gt->imgs, &id);
        }
        ev->I = n;
        free(u);
    } else {
        ev->I = gt->n_img_sorted;
        ev->pimg = malloc(sizeof(int32_t) * (size_t)(ev->I + 1));
        if (!ev->pimg) return nd_fail(ND_ERR_NOMEM, "out of memory");
        memcpy(ev->pimg, gt->img_sorted, sizeof(int32_t) * (size_t)ev->I);
    }
    /* catIds: np.unique when useCats; with useCats = 0 they are concatenated as given */
    if (p->cat_ids) {
        double *u = malloc(sizeof(double) * (size_t)(p->n_cat_ids + 1));
        ev->pcat = malloc(sizeof(int32_t) * (size_t)(p->n_cat_ids + 1));
        if (!u || !ev->pcat) { free(u); return nd_fail(ND_ERR_NOMEM, "out of memory"); }
        memcpy(u, p->cat_ids, sizeof(double) * (size_t)p->n_cat_ids);
        int64_t n = p->n_cat_ids;
        if (ev->use_cats) {
            qsort(u, (size_t)n, sizeof(double), cmp_double);
            n = 0;
            for (int64_t i = 0; i < p->n_cat_ids; i++)
                if (n == 0 || u[i] != u[n - 1]) u[n++] = u[i];
        }
        for (int64_t i = 0; i < n; i++) {
            ceval_id id = {.num = u[i]};
            ev->pcat[i] = (int32_t)ceval_idtab_find(&gt->cats, &id);
        }
        ev->ncat_ids = n;
        ev->pcat_num = u;
    } else {
        ev->ncat_ids = gt->n_cat_sorted;
        ev->pcat = malloc(sizeof(int32_t) * (size_t)(ev->ncat_ids + 1));
        if (!ev->pcat) return nd_fail(ND_ERR_NOMEM, "out of memory");
        memcpy(ev->pcat, gt->cat_sorted, sizeof(int32_t) * (size_t)ev->ncat_ids);
    }
    ev->K = ev->use_cats ? ev->ncat_ids : 1;
    return 0;
}

