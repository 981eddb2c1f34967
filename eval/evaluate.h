/* The evaluation state shared by eval/run.c, eval/evaluate.c and eval/accumulate.c. */
#ifndef CEVAL_EVALUATE_H
#define CEVAL_EVALUATE_H

#include "eval/internal.h"

typedef struct ceval_ev {
    const ceval_gt *gt;
    const ceval_dets *dt;
    ceval_iou_type iou_type;
    int use_cats;
    int T, R, A, M;
    int64_t K, I;              /* K: categories evaluated (1 when use_cats = 0); I: images */
    double *iou_thrs, *rec_thrs, *area_rng, *vars;
    int64_t *max_dets;         /* sorted */
    int nsig;
    int32_t *pimg;             /* [I] params.imgIds as indices into gt->imgs (-1: unknown id) */
    int32_t *pcat;             /* [ncat_ids] params.catIds as indices into gt->cats (-1: unknown) */
    int64_t ncat_ids;
    double *pcat_num;          /* [ncat_ids] the requested values (NULL: GT defaults) */
    int64_t *cslot;            /* [gt->cats.n] first position of a category in pcat, -1 */
    int64_t *gb_start, *gb_idx, *db_start, *db_idx; /* buckets keyed image slot * ncat_ids + slot */
    int64_t n_gt_used, n_dt_used;
    ceval_rle *gt_rle, *dt_rle; /* segm: masks of the annotations taking part */
    double *gt_rbb, *dt_rbb;    /* segm: their tight boxes [4] */
    /* per unit u = k * I + i */
    int64_t *u_doff;           /* [K*I + 1] prefix of kept detections (<= maxDets[-1]) */
    double *u_scores;          /* kept detections' scores, sorted, per unit */
    uint8_t *u_flags;          /* per unit [D][A][T]: 1 tp, 2 fp, 0 ignored */
    int32_t *u_npig;           /* [K*I][A] GT not ignored */
    int num_threads;
} ceval_ev;

typedef struct ceval_scratch { /* per thread, sized for the largest unit */
    int64_t *order;
    uint8_t *gig, *base_ig, *crowd, *gtm;
} ceval_scratch;

extern const char *const ceval_lbl_det[4];
extern const char *const ceval_lbl_kp[3];
/* Params into ev (defaults where p leaves NULL); ND_ERR_INVALID on bad ones. */
int ceval_setup(ceval_ev *ev, const ceval_gt *gt, const ceval_dets *dt, const ceval_params *p);
int ceval_prepare(ceval_ev *ev);
int64_t ceval_unit_count(const ceval_ev *ev, int64_t k, int64_t i, int gt_side);
int64_t ceval_unit_gt(const ceval_ev *ev, int64_t k, int64_t i, int64_t *out);
int64_t ceval_unit_dt(const ceval_ev *ev, int64_t k, int64_t i, int64_t *out);
void ceval_sort_by_score(int64_t *idx, int64_t n, const double *score, int64_t *tmp);
void ceval_unit_similarity(const ceval_ev *ev, const int64_t *dl, int64_t D, const int64_t *gl, int64_t G,
                           double *o, double *boxbuf, uint8_t *crowd8);
void ceval_unit_match(const ceval_ev *ev, const int64_t *dl, int64_t D, const int64_t *gl, int64_t G,
                      const double *ious, int have_ious, uint8_t *flags, int32_t *npig, ceval_scratch *s);
/* accumulate into r->precision / recall / scores (already filled with -1) */
int ceval_accumulate(const ceval_ev *ev, ceval_result *r);
/* summarize into r->stats and r->per_cat_ap */
void ceval_summarize(ceval_result *r);

#endif
