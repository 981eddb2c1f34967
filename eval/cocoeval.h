/* COCO evaluation: pycocotools' COCOeval (cocoapi 8c9bcc3) in C, with the same numbers.
 *
 * Typical use (load the ground truth once, evaluate any number of result sets):
 *
 *     ceval_gt *gt;      ceval_gt_load("instances_val2017.json", &gt);
 *     ceval_dets *dt;    ceval_dets_load(gt, "results.json", &dt);
 *     ceval_params p;    ceval_params_init(&p, CEVAL_BBOX);
 *     ceval_result *r;   ceval_evaluate(gt, dt, &p, &r);
 *     r->stats[0] is AP@[.5:.95]; ceval_summary_text(r, &text) gives pycocotools' printout.
 *     ceval_result_free(r); ceval_dets_free(dt); ceval_gt_free(gt);
 *
 * A training loop passes its detections as C arrays with ceval_dets_from_boxes() instead.
 * Semantics follow COCO.loadRes, COCOeval.evaluate/accumulate/summarize exactly, including
 * stable score sorting, crowd and ignore rules, numpy's linspace thresholds and numpy's
 * pairwise summation in means. Deliberate differences, all where pycocotools raises: an empty
 * result set evaluates to all-zero stats (with a warning); a GT annotation without "iscrowd"
 * counts as iscrowd 0 (with a warning); results may also be a dict with an "annotations" list.
 *
 * Every function that can fail returns 0 or a negative nd_status and records a message
 * (nd_last_error) naming the file, the place (line:column and JSON path, or the annotation)
 * and what was expected. Nothing here prints; warnings go through nd_log. Evaluation runs on
 * OpenMP threads; results are identical for any thread count. */
#ifndef CEVAL_COCOEVAL_H
#define CEVAL_COCOEVAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ceval_iou_type { CEVAL_BBOX = 0, CEVAL_SEGM = 1, CEVAL_KEYPOINTS = 2 } ceval_iou_type;

/* "bbox", "segm", "keypoints"; parse returns -1 for an unknown name. */
const char *ceval_iou_type_name(ceval_iou_type t);
int ceval_iou_type_parse(const char *name);

/* ---- ground truth ------------------------------------------------------------------------ */

typedef struct ceval_gt ceval_gt; /* opaque; immutable once loaded, may be shared by threads */

/* Load a COCO ground-truth file (dict with "images", "annotations", "categories"). The caller
 * frees *out with ceval_gt_free. Fails with ND_ERR_IO (unreadable), ND_ERR_FORMAT (bad JSON or
 * a field of the wrong type, with position and JSON path). */
int ceval_gt_load(const char *path, ceval_gt **out);
/* The same from text in memory (text[0..len), need not be NUL-terminated); `name` is used in
 * messages. */
int ceval_gt_parse(const char *text, size_t len, const char *name, ceval_gt **out);
void ceval_gt_free(ceval_gt *gt);

int64_t ceval_gt_num_images(const ceval_gt *gt);      /* entries of "images" (distinct ids) */
int64_t ceval_gt_num_annotations(const ceval_gt *gt);
int64_t ceval_gt_num_categories(const ceval_gt *gt);  /* entries of "categories" */

/* ---- detections (results) ---------------------------------------------------------------- */

typedef struct ceval_dets ceval_dets; /* opaque; bound to the ceval_gt it was loaded against */

/* Load a results file (a JSON list, or a dict with an "annotations" list) with COCO.loadRes
 * semantics: the first result picks the branch (bbox > segmentation > keypoints), area and
 * ids are recomputed, a result whose image_id is not a GT image is an error naming it. An
 * empty list loads as zero detections with a warning. `gt` must outlive *out. */
int ceval_dets_load(const ceval_gt *gt, const char *path, ceval_dets **out);
int ceval_dets_parse(const ceval_gt *gt, const char *text, size_t len, const char *name, ceval_dets **out);

/* One box detection passed in memory: ids as in the GT file (numbers), bbox = x, y, w, h. */
typedef struct ceval_det {
    int64_t image_id;
    int64_t category_id;
    double score;
    double bbox[4];
} ceval_det;

/* Detections from an array of n boxes (the loadRes bbox branch: area = w*h, the box is also
 * its segmentation polygon). The array is copied. Fails with ND_ERR_NOT_FOUND naming the
 * first image_id that is not a GT image. */
int ceval_dets_from_boxes(const ceval_gt *gt, const ceval_det *dets, int64_t n, ceval_dets **out);
int64_t ceval_dets_count(const ceval_dets *dt);
void ceval_dets_free(ceval_dets *dt);

/* ---- parameters -------------------------------------------------------------------------- */

/* COCOeval.Params. Arrays are borrowed (not copied) and must live until ceval_evaluate
 * returns; NULL (with count 0) means pycocotools' default. */
typedef struct ceval_params {
    ceval_iou_type iou_type;
    int use_cats;                 /* 1 (default): per category; 0: all categories as one */
    const double *img_ids;        /* default: every GT image */
    int64_t n_img_ids;
    const double *cat_ids;        /* default: every GT category */
    int64_t n_cat_ids;
    const double *iou_thrs;       /* default: linspace(.5, .95, 10) as numpy makes it */
    int n_iou_thrs;
    const double *rec_thrs;       /* default: linspace(0, 1, 101) */
    int n_rec_thrs;
    const int64_t *max_dets;      /* default: 1, 10, 100 (keypoints: 20); sorted before use */
    int n_max_dets;
    const double *area_rng;       /* n_area_rng pairs lo, hi (inclusive); one per label: */
    int n_area_rng;               /*   all, small, medium, large (keypoints: all, medium, large) */
    const double *kpt_sigmas;     /* default: COCO's 17 person keypoint sigmas */
    int n_kpt_sigmas;
    int num_threads;              /* 0: OpenMP's default */
} ceval_params;

void ceval_params_init(ceval_params *p, ceval_iou_type iou_type);

/* ---- evaluation -------------------------------------------------------------------------- */

typedef struct ceval_result {
    ceval_iou_type iou_type;
    int T, R, K, A, M;            /* iou thresholds, recall thresholds, categories, areas, maxDets */
    double *iou_thrs;             /* [T] */
    double *rec_thrs;             /* [R] */
    int64_t *max_dets;            /* [M], sorted */
    double *area_rng;             /* [A][2] */
    const char *const *area_lbl;  /* [A] static strings */
    char **cat_keys;              /* [K] category id as text ("-1" when use_cats = 0) */
    char **cat_names;             /* [K] category name ("" when unknown) */
    double *precision;            /* [T][R][K][A][M], -1 where there is no GT */
    double *recall;               /* [T][K][A][M] */
    double *scores;               /* [T][R][K][A][M], score at each recall threshold */
    double stats[12];             /* AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl */
    int nstats;                   /* 12; 10 for keypoints (AP, AP50, AP75, APm, APl, AR...) */
    double *per_cat_ap;           /* [K] mean precision (area all, last maxDets), -1 if none */
    int64_t n_images, n_gt, n_dt; /* evaluated images, GT and DT annotations taking part */
    double seconds_evaluate, seconds_accumulate;
} ceval_result;

/* evaluate + accumulate + summarize. *out is freed with ceval_result_free. Fails with
 * ND_ERR_INVALID (bad parameters), ND_ERR_FORMAT (an annotation lacks what the iou type needs:
 * area, bbox, segmentation, keypoints, image size), ND_ERR_NOMEM. */
int ceval_evaluate(const ceval_gt *gt, const ceval_dets *dt, const ceval_params *p, ceval_result **out);
void ceval_result_free(ceval_result *r);

/* pycocotools' printed summary, byte for byte (12 or 10 lines), malloc'ed; caller frees.
 * stats[0] always uses maxDets 100 (keypoints 20; -1 when that value is not in max_dets), the
 * others maxDets[0..2] of the sorted list; with fewer than 3 (an IndexError in pycocotools)
 * the missing ones are taken as the last. */
char *ceval_summary_text(const ceval_result *r);
/* A table of AP, AP50, AP75 and AR@maxDets per category with names, malloc'ed. */
char *ceval_per_class_text(const ceval_result *r);
/* {"iou_type":..., "stats":[...], "per_category":{"<catId>": AP, ...}} with full double
 * precision (shortest round-trip), written atomically. */
int ceval_result_write_json(const ceval_result *r, const char *path);
/* np.mean as numpy computes it (pairwise summation), for n > 0. */
double ceval_np_mean(const double *a, int64_t n);

/* ---- run-length encoded masks (cocoapi maskApi) ------------------------------------------ */

/* A binary h x w mask in column-major order as alternating run lengths, starting with zeros.
 * cnts is malloc'ed (NULL when m == 0); free with ceval_rle_free. */
typedef struct ceval_rle {
    uint32_t h, w;
    int64_t m;
    uint32_t *cnts;
} ceval_rle;

void ceval_rle_free(ceval_rle *r);
/* Mask (column-major, h*w bytes, nonzero = inside) -> RLE. */
int ceval_rle_encode(ceval_rle *r, const uint8_t *mask, uint32_t h, uint32_t w);
/* RLE -> mask of h*w bytes (0/1); fails when the counts do not add up to h*w. */
int ceval_rle_decode(const ceval_rle *r, uint8_t *mask);
/* Polygon of k points (xy[2k]) rasterised exactly as maskApi's rleFrPoly. Fails with
 * ND_ERR_INVALID on non-finite or absurdly large coordinates. */
int ceval_rle_from_poly(ceval_rle *r, const double *xy, int64_t k, uint32_t h, uint32_t w);
/* Box x, y, w, h as the polygon of its 4 corners. */
int ceval_rle_from_bbox(ceval_rle *r, const double bb[4], uint32_t h, uint32_t w);
/* Union (intersect = 0) or intersection of n RLEs; sizes must agree (else an empty 0x0 RLE,
 * as maskApi). */
int ceval_rle_merge(const ceval_rle *rs, int64_t n, int intersect, ceval_rle *out);
uint32_t ceval_rle_area(const ceval_rle *r);
/* Tight box x, y, w, h (all 0 for an empty RLE). Fails on a nonempty RLE with h == 0. */
int ceval_rle_to_bbox(const ceval_rle *r, double bb[4]);
/* COCO's compressed string (LEB128-like, chars 48..111), malloc'ed, NUL-terminated. */
char *ceval_rle_to_string(const ceval_rle *r);
int ceval_rle_from_string(ceval_rle *r, const char *s, size_t n, uint32_t h, uint32_t w);
/* IoU of m detections against n ground truths into o[d*n + g] (pycocotools' iou(dt, gt)[d, g]);
 * a crowd GT uses the detection's area as the union. Mask sizes that differ give -1. */
void ceval_rle_iou(const ceval_rle *dt, int64_t m, const ceval_rle *gt, int64_t n, const uint8_t *iscrowd,
                   double *o);
/* The same for boxes (x, y, w, h; dt[4m], gt[4n]). */
void ceval_bbox_iou(const double *dt, int64_t m, const double *gt, int64_t n, const uint8_t *iscrowd,
                    double *o);

#ifdef __cplusplus
}
#endif

#endif
