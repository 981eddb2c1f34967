/* Structures shared by the files of eval/ (never included from another module). */
#ifndef CEVAL_INTERNAL_H
#define CEVAL_INTERNAL_H

#include "eval/cocoeval.h"
#include "eval/ids.h"
#include "eval/json.h"

#include <stdint.h>

/* A segmentation as written in the file, before it meets an image size. */
enum { CEVAL_SEG_NONE = 0, CEVAL_SEG_POLYS, CEVAL_SEG_RLE, CEVAL_SEG_RLE_LIST };

typedef struct ceval_part {     /* one polygon (n coordinates) or one RLE (n counts) */
    int64_t off;                /* into segs.coords (polygon) or segs.counts (RLE) */
    int64_t n;
    uint32_t h, w;              /* RLE size */
} ceval_part;

typedef struct ceval_seg {
    uint8_t kind;
    int64_t part;               /* first part */
    int64_t nparts;
} ceval_seg;

typedef struct ceval_segstore {  /* growable arenas for every segmentation of one file */
    ceval_seg *segs; int64_t nsegs, capsegs;
    ceval_part *parts; int64_t nparts, capparts;
    double *coords; int64_t ncoords, capcoords;
    uint32_t *counts; int64_t ncounts, capcounts;
    double *kps; int64_t nkps, capkps;   /* keypoint triples */
} ceval_segstore;

void ceval_segstore_free(ceval_segstore *s);
/* Parse a "segmentation" value into s; *seg_index = its index. */
int ceval_seg_parse(ceval_json *j, ceval_segstore *s, int64_t *seg_index);
/* Parse a list of numbers into s->kps; off and n locate it. */
int ceval_kps_parse(ceval_json *j, ceval_segstore *s, int64_t *off, int64_t *n);
/* COCO.annToRLE: polygons (merged), boxes (first list of length 4), RLE as is. h, w: image. */
int ceval_seg_to_rle(const ceval_segstore *s, int64_t seg_index, uint32_t h, uint32_t w, ceval_rle *out);

typedef struct ceval_ann {
    double bbox[4];
    double area;
    double id;
    double iscrowd;             /* as given; 0 when missing */
    int32_t img;                /* index into gt->imgs */
    int32_t cat;                /* index into gt->cats */
    int32_t num_keypoints;
    uint8_t has_bbox, has_area, has_num_kp, has_iscrowd;
    int64_t seg;                /* index into gt->store.segs, -1 none */
    int64_t kp_off, kp_n;       /* keypoints in gt->store.kps, kp_n = -1 none */
    int64_t file_index;         /* position in "annotations" */
} ceval_ann;

struct ceval_gt {
    char *path;
    ceval_idtab imgs;           /* every image id seen (images and annotations) */
    uint8_t *img_listed;        /* [imgs.n] listed in "images" */
    int32_t *img_h, *img_w;     /* [imgs.n] -1 when absent (last listing wins, as a dict) */
    int32_t *img_sorted;        /* listed images sorted by id: params.imgIds */
    int64_t n_img_sorted;
    ceval_idtab cats;           /* every category id seen */
    uint8_t *cat_listed;
    char **cat_name;            /* [cats.n] */
    int32_t *cat_sorted;        /* listed categories sorted: params.catIds */
    int64_t n_cat_sorted;
    ceval_ann *anns;
    int64_t nanns;
    int64_t *ann_last;          /* [nanns] index of the last annotation with the same id */
    int64_t *img_ann_start;     /* [imgs.n + 1] imgToAnns as CSR over img_ann_idx */
    int64_t *img_ann_idx;
    int64_t n_missing_iscrowd;
    ceval_segstore store;
};

typedef struct ceval_dt {
    double bbox[4];
    double score;
    double area;
    int32_t img;                /* index into gt->imgs */
    int32_t cat;                /* index into gt->cats, -1 when not a GT category */
    int64_t seg;                /* -1: none (bbox branch: the box is the polygon) */
    int64_t kp_off, kp_n;       /* kp_n = -1 none */
    uint8_t has_bbox;
    uint8_t bbox_of_mask;       /* bbox = toBbox(segmentation), computed at load */
} ceval_dt;

struct ceval_dets {
    const ceval_gt *gt;
    ceval_dt *d;
    int64_t n, cap;
    int branch;                 /* 0 bbox, 1 segmentation, 2 keypoints */
    ceval_segstore store;
};

int ceval_grow(void **p, int64_t *cap, int64_t need, size_t elem);

/* maskApi's rleIou for one pair, given both masks' tight boxes (x, y, w, h). */
double ceval_rle_iou_pair(const ceval_rle *dt, const double *dt_box, const ceval_rle *gt, const double *gt_box, int crowd);

/* Numpy's pairwise summation (np.add.reduce over a contiguous float64 array). */
double ceval_np_sum(const double *a, int64_t n);

#endif
