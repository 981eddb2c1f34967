/* Results loading with COCO.loadRes semantics (cocoapi 8c9bcc3):
 * - the FIRST result picks one branch for the whole file: caption > bbox (present and not
 *   []) > segmentation > keypoints;
 * - bbox branch: area = w*h, the box becomes the segmentation polygon when none is given;
 * - segmentation branch: area = mask area, bbox = toBbox(mask) unless given; only compressed
 *   RLE is accepted there (pycocotools raises on anything else);
 * - keypoints branch: bbox and area from the extent of all keypoints, (0, 0) ones included;
 * - every image_id must be a GT image (pycocotools asserts; we name the id).
 * Given "area", "id" and "iscrowd" values never matter: loadRes overwrites them. */
#include "eval/internal.h"

#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KEY(name) (kl == sizeof(name) - 1 && memcmp(k, name, kl) == 0)

enum { BRANCH_BBOX = 0, BRANCH_SEGM = 1, BRANCH_KP = 2 };

void ceval_dets_free(ceval_dets *dt) {
    if (!dt) return;
    free(dt->d);
    ceval_segstore_free(&dt->store);
    free(dt);
}

int64_t ceval_dets_count(const ceval_dets *dt) { return dt ? dt->n : 0; }

/* One result as read, before the branch rules. */
typedef struct raw_res {
    ceval_id img_id;
    char img_str[96];           /* copy of a string image id (the parser's buffer moves on) */
    double cat_num;
    ceval_id cat_id;
    char cat_str[96];
    int have_img, have_cat, have_score, have_caption, bbox_n; /* bbox_n: -1 absent */
    double score, bbox[4];
    int64_t seg, kp_off, kp_n;
} raw_res;

static int parse_id_into(ceval_json *j, ceval_id *id, char *store, size_t cap) {
    memset(id, 0, sizeof *id);
    ceval_jtype t = ceval_json_peek(j);
    if (t == CEVAL_J_STRING) {
        const char *s;
        size_t n;
        if (ceval_json_string(j, &s, &n)) return j->status;
        if (n >= cap) return ceval_json_fail(j, ND_ERR_FORMAT, "id string longer than %zu bytes", cap - 1);
        memcpy(store, s, n);
        store[n] = 0;
        id->is_str = 1;
        id->str = store;
        id->len = (uint32_t)n;
        return 0;
    }
    if (t == CEVAL_J_NUMBER || t == CEVAL_J_TRUE || t == CEVAL_J_FALSE) return ceval_json_number(j, &id->num, 1);
    return ceval_json_fail(j, ND_ERR_FORMAT, "expected an id (a number or a string)");
}

static int parse_result(ceval_json *j, ceval_dets *dt, raw_res *rr) {
    memset(rr, 0, sizeof *rr);
    rr->bbox_n = -1;
    rr->seg = -1;
    rr->kp_n = -1;
    const char *k;
    size_t kl;
    int r;
    if (ceval_json_obj_begin(j)) return j->status;
    while ((r = ceval_json_obj_next(j, &k, &kl)) == 1) {
        if (KEY("image_id")) {
            if (parse_id_into(j, &rr->img_id, rr->img_str, sizeof rr->img_str)) return j->status;
            rr->have_img = 1;
        } else if (KEY("category_id")) {
            if (parse_id_into(j, &rr->cat_id, rr->cat_str, sizeof rr->cat_str)) return j->status;
            rr->have_cat = 1;
        } else if (KEY("score")) {
            if (ceval_json_number(j, &rr->score, 1)) return j->status;
            rr->have_score = 1;
        } else if (KEY("bbox") && ceval_json_peek(j) == CEVAL_J_ARRAY) {
            int rb, n = 0;
            if (ceval_json_arr_begin(j)) return j->status;
            while ((rb = ceval_json_arr_next(j)) == 1) {
                double v;
                if (ceval_json_number(j, &v, 1)) return j->status;
                if (n < 4) rr->bbox[n] = v;
                n++;
            }
            if (rb < 0) return rb;
            rr->bbox_n = n;
        } else if (KEY("segmentation") && ceval_json_peek(j) != CEVAL_J_NULL) {
            if (ceval_seg_parse(j, &dt->store, &rr->seg)) return j->status;
        } else if (KEY("keypoints") && ceval_json_peek(j) == CEVAL_J_ARRAY) {
            if (ceval_kps_parse(j, &dt->store, &rr->kp_off, &rr->kp_n)) return j->status;
        } else if (KEY("caption")) {
            rr->have_caption = 1;
            if (ceval_json_skip(j)) return j->status;
        } else if (ceval_json_skip(j)) {
            return j->status;
        }
    }
    return r < 0 ? r : 0;
}

/* Apply the branch's rules to one result and append it. */
static int add_result(ceval_json *j, ceval_dets *dt, const raw_res *rr) {
    const ceval_gt *gt = dt->gt;
    if (!rr->have_img) return ceval_json_fail(j, ND_ERR_FORMAT, "result without \"image_id\"");
    if (!rr->have_cat) return ceval_json_fail(j, ND_ERR_FORMAT, "result without \"category_id\"");
    if (!rr->have_score) return ceval_json_fail(j, ND_ERR_FORMAT, "result without \"score\"");
    int64_t img = ceval_idtab_find(&gt->imgs, &rr->img_id);
    if (img < 0 || !gt->img_listed[img]) {
        char s[128];
        ceval_id_format(&rr->img_id, s, sizeof s);
        return ceval_json_fail(j, ND_ERR_NOT_FOUND,
                               "image_id %s is not an image of the ground truth %s (pycocotools: \"Results do not "
                               "correspond to current coco set\")", s, gt->path);
    }
    int64_t cat = ceval_idtab_find(&gt->cats, &rr->cat_id);
    ceval_dt d;
    memset(&d, 0, sizeof d);
    d.img = (int32_t)img;
    d.cat = (int32_t)cat; /* -1: no GT category has this id */
    d.score = rr->score;
    d.seg = rr->seg;
    d.kp_off = rr->kp_off;
    d.kp_n = rr->kp_n;
    if (dt->branch == BRANCH_BBOX) {
        if (rr->bbox_n != 4)
            return ceval_json_fail(j, ND_ERR_FORMAT, "expected \"bbox\": [x, y, w, h] (the first result has a box, "
                                   "so every result needs one)");
        memcpy(d.bbox, rr->bbox, sizeof d.bbox);
        d.has_bbox = 1;
        d.area = d.bbox[2] * d.bbox[3];
    } else if (dt->branch == BRANCH_SEGM) {
        if (rr->seg < 0 || dt->store.segs[rr->seg].kind != CEVAL_SEG_RLE)
            return ceval_json_fail(j, ND_ERR_FORMAT, "expected \"segmentation\" as a compressed RLE {\"size\", "
                                   "\"counts\": string} (the results are read as masks, as the first one is)");
        const ceval_part *pt = &dt->store.parts[dt->store.segs[rr->seg].part];
        if (dt->store.segs[rr->seg].nparts != 1 || pt->n < 0)
            return ceval_json_fail(j, ND_ERR_FORMAT, "bad RLE");
        ceval_rle rle = {pt->h, pt->w, pt->n, dt->store.counts + pt->off};
        d.area = ceval_rle_area(&rle);
        if (rr->bbox_n >= 0) {
            memcpy(d.bbox, rr->bbox, sizeof d.bbox);
            d.has_bbox = rr->bbox_n == 4 ? 1 : 2;
        } else {
            if (ceval_rle_to_bbox(&rle, d.bbox))
                return ceval_json_fail(j, ND_ERR_FORMAT, "%s", nd_last_error());
            d.has_bbox = 1;
            d.bbox_of_mask = 1;
        }
    } else {
        if (rr->kp_n <= 0)
            return ceval_json_fail(j, ND_ERR_FORMAT, "expected a non-empty \"keypoints\" list (the first result "
                                   "has keypoints only)");
        if (rr->kp_n < 2) return ceval_json_fail(j, ND_ERR_FORMAT, "\"keypoints\" needs x, y pairs");
        const double *s = dt->store.kps + rr->kp_off;
        double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
        int nan = 0;
        for (int64_t i = 0; i < rr->kp_n; i += 3) {
            nan |= isnan(s[i]);
            x0 = fmin(x0, s[i]);
            x1 = fmax(x1, s[i]);
        }
        for (int64_t i = 1; i < rr->kp_n; i += 3) {
            nan |= isnan(s[i]);
            y0 = fmin(y0, s[i]);
            y1 = fmax(y1, s[i]);
        }
        if (nan) x0 = x1 = y0 = y1 = NAN; /* np.min/np.max propagate NaN */
        d.bbox[0] = x0;
        d.bbox[1] = y0;
        d.bbox[2] = x1 - x0;
        d.bbox[3] = y1 - y0;
        d.has_bbox = 1;
        d.area = (x1 - x0) * (y1 - y0);
    }
    if (ceval_grow((void **)&dt->d, &dt->cap, dt->n + 1, sizeof *dt->d))
        return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
    dt->d[dt->n++] = d;
    return 0;
}

static int parse_results(ceval_json *j, ceval_dets *dt) {
    int r;
    if (ceval_json_arr_begin(j)) return j->status;
    raw_res rr;
    while ((r = ceval_json_arr_next(j)) == 1) {
        if (parse_result(j, dt, &rr)) return j->status;
        if (dt->n == 0) {
            if (rr.have_caption)
                return ceval_json_fail(j, ND_ERR_UNSUPPORTED, "caption results cannot be evaluated by COCOeval");
            if (rr.bbox_n > 0) dt->branch = BRANCH_BBOX;
            else if (rr.seg >= 0) dt->branch = BRANCH_SEGM;
            else if (rr.kp_n >= 0) dt->branch = BRANCH_KP;
            else
                return ceval_json_fail(j, ND_ERR_FORMAT, "the first result has no \"bbox\", \"segmentation\" or "
                                       "\"keypoints\": nothing to evaluate");
        }
        if (add_result(j, dt, &rr)) return j->status;
    }
    return r;
}

int ceval_dets_parse(const ceval_gt *gt, const char *text, size_t len, const char *name, ceval_dets **out) {
    *out = NULL;
    ceval_dets *dt = calloc(1, sizeof *dt);
    if (!dt) return nd_fail(ND_ERR_NOMEM, "out of memory");
    dt->gt = gt;
    ceval_json j;
    ceval_json_init(&j, text, len, name);
    ceval_jtype t = ceval_json_peek(&j);
    if (t == CEVAL_J_OBJECT) {
        /* the dict form: {"annotations": [...], ...} as some tools write it */
        const char *k;
        size_t kl;
        int r, found = 0;
        if (ceval_json_obj_begin(&j) == 0) {
            while ((r = ceval_json_obj_next(&j, &k, &kl)) == 1) {
                if (KEY("annotations") && !found) {
                    found = 1;
                    if (parse_results(&j, dt)) break;
                } else if (ceval_json_skip(&j)) {
                    break;
                }
            }
            if (!j.status && !found)
                ceval_json_fail(&j, ND_ERR_FORMAT, "expected a list of results or a dict with an \"annotations\" list");
        }
    } else if (t == CEVAL_J_ARRAY) {
        parse_results(&j, dt);
    } else {
        ceval_json_fail(&j, ND_ERR_FORMAT, "expected a list of results, found %s",
                        t == CEVAL_J_NONE ? "no JSON value" : "another JSON value");
    }
    if (!j.status) ceval_json_end(&j);
    ceval_json_free(&j);
    if (j.status) {
        ceval_dets_free(dt);
        return j.status;
    }
    if (dt->n == 0)
        ND_WARN("%s: no results; every number will be 0 (pycocotools' loadRes raises IndexError here)", name);
    *out = dt;
    return 0;
}

int ceval_dets_load(const ceval_gt *gt, const char *path, ceval_dets **out) {
    char *data;
    size_t len;
    *out = NULL;
    if (nd_file_read_all(path, &data, &len)) return ND_ERR_IO;
    int rc = ceval_dets_parse(gt, data, len, path, out);
    free(data);
    return rc;
}

int ceval_dets_from_boxes(const ceval_gt *gt, const ceval_det *dets, int64_t n, ceval_dets **out) {
    *out = NULL;
    if (n < 0 || (n > 0 && !dets)) return nd_fail(ND_ERR_INVALID, "ceval_dets_from_boxes: %lld detections", (long long)n);
    ceval_dets *dt = calloc(1, sizeof *dt);
    if (!dt) return nd_fail(ND_ERR_NOMEM, "out of memory");
    dt->gt = gt;
    dt->branch = BRANCH_BBOX;
    dt->d = malloc(sizeof *dt->d * (size_t)(n ? n : 1));
    if (!dt->d) {
        free(dt);
        return nd_fail(ND_ERR_NOMEM, "out of memory for %lld detections", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) {
        ceval_id iid = {.num = (double)dets[i].image_id}, cid = {.num = (double)dets[i].category_id};
        int64_t img = ceval_idtab_find(&gt->imgs, &iid);
        if (img < 0 || !gt->img_listed[img]) {
            ceval_dets_free(dt);
            return nd_fail(ND_ERR_NOT_FOUND, "detection %lld: image_id %lld is not an image of the ground truth %s",
                           (long long)i, (long long)dets[i].image_id, gt->path);
        }
        int64_t cat = ceval_idtab_find(&gt->cats, &cid);
        ceval_dt *d = &dt->d[i];
        memset(d, 0, sizeof *d);
        d->img = (int32_t)img;
        d->cat = (int32_t)cat;
        d->score = dets[i].score;
        memcpy(d->bbox, dets[i].bbox, sizeof d->bbox);
        d->has_bbox = 1;
        d->area = d->bbox[2] * d->bbox[3];
        d->seg = -1;
        d->kp_n = -1;
    }
    dt->n = dt->cap = n;
    if (n == 0) ND_WARN("no detections; every number will be 0");
    *out = dt;
    return 0;
}
