/* Ground-truth loading: COCO(annotation_file) and its createIndex, into flat arrays. */
#include "eval/internal.h"

#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KEY(name) (kl == sizeof(name) - 1 && memcmp(k, name, kl) == 0)

void ceval_gt_free(ceval_gt *gt) {
    if (!gt) return;
    free(gt->path);
    ceval_idtab_free(&gt->imgs);
    free(gt->img_listed);
    free(gt->img_h);
    free(gt->img_w);
    free(gt->img_sorted);
    if (gt->cat_name)
        for (int64_t i = 0; i < gt->cats.n; i++) free(gt->cat_name[i]);
    ceval_idtab_free(&gt->cats);
    free(gt->cat_listed);
    free(gt->cat_name);
    free(gt->cat_sorted);
    free(gt->anns);
    free(gt->ann_last);
    free(gt->img_ann_start);
    free(gt->img_ann_idx);
    ceval_segstore_free(&gt->store);
    free(gt);
}

int64_t ceval_gt_num_images(const ceval_gt *gt) { return gt->n_img_sorted; }
int64_t ceval_gt_num_annotations(const ceval_gt *gt) { return gt->nanns; }
int64_t ceval_gt_num_categories(const ceval_gt *gt) { return gt->n_cat_sorted; }

/* An id value: a number (or true/false, which Python treats as 1/0) or a string. */
static int parse_id(ceval_json *j, ceval_id *id) {
    memset(id, 0, sizeof *id);
    ceval_jtype t = ceval_json_peek(j);
    if (t == CEVAL_J_STRING) {
        const char *s;
        size_t n;
        if (ceval_json_string(j, &s, &n)) return j->status;
        if (n > UINT32_MAX) return ceval_json_fail(j, ND_ERR_FORMAT, "id string too long");
        id->is_str = 1;
        id->str = s;
        id->len = (uint32_t)n;
        return 0;
    }
    if (t == CEVAL_J_NUMBER || t == CEVAL_J_TRUE || t == CEVAL_J_FALSE) return ceval_json_number(j, &id->num, 1);
    return ceval_json_fail(j, ND_ERR_FORMAT, "expected an id (a number or a string)");
}

/* Keep per-id side arrays as long as the id table. */
static int grow_img_side(ceval_gt *gt, int64_t *cap) {
    int64_t need = gt->imgs.n > 0 ? gt->imgs.n : 1;
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    uint8_t *l = realloc(gt->img_listed, (size_t)c);
    if (!l) return ND_ERR_NOMEM;
    gt->img_listed = l;
    int32_t *h = realloc(gt->img_h, (size_t)c * sizeof *h);
    if (!h) return ND_ERR_NOMEM;
    gt->img_h = h;
    int32_t *w = realloc(gt->img_w, (size_t)c * sizeof *w);
    if (!w) return ND_ERR_NOMEM;
    gt->img_w = w;
    for (int64_t i = *cap; i < c; i++) { l[i] = 0; h[i] = w[i] = -1; }
    *cap = c;
    return 0;
}

static int grow_cat_side(ceval_gt *gt, int64_t *cap) {
    int64_t need = gt->cats.n > 0 ? gt->cats.n : 1;
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    uint8_t *l = realloc(gt->cat_listed, (size_t)c);
    if (!l) return ND_ERR_NOMEM;
    gt->cat_listed = l;
    char **nm = realloc(gt->cat_name, (size_t)c * sizeof *nm);
    if (!nm) return ND_ERR_NOMEM;
    gt->cat_name = nm;
    for (int64_t i = *cap; i < c; i++) { l[i] = 0; nm[i] = NULL; }
    *cap = c;
    return 0;
}

static int32_t image_dim(double v) {
    return (v >= 0 && v <= 2147483647.0 && v == floor(v)) ? (int32_t)v : -2;
}

static int parse_images(ceval_json *j, ceval_gt *gt, int64_t *imgcap) {
    int r;
    if (ceval_json_arr_begin(j)) return j->status;
    while ((r = ceval_json_arr_next(j)) == 1) {
        const char *k;
        size_t kl;
        int rr, have_id = 0;
        int64_t idx = -1;
        double h = -1, w = -1;
        if (ceval_json_obj_begin(j)) return j->status;
        while ((rr = ceval_json_obj_next(j, &k, &kl)) == 1) {
            if (KEY("id")) {
                ceval_id id;
                if (parse_id(j, &id)) return j->status;
                idx = ceval_idtab_intern(&gt->imgs, &id);
                if (idx < 0 || grow_img_side(gt, imgcap)) return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
                have_id = 1;
            } else if (KEY("height") && ceval_json_peek(j) == CEVAL_J_NUMBER) {
                if (ceval_json_number(j, &h, 0)) return j->status;
            } else if (KEY("width") && ceval_json_peek(j) == CEVAL_J_NUMBER) {
                if (ceval_json_number(j, &w, 0)) return j->status;
            } else if (ceval_json_skip(j)) {
                return j->status;
            }
        }
        if (rr < 0) return rr;
        if (!have_id) return ceval_json_fail(j, ND_ERR_FORMAT, "image without \"id\"");
        gt->img_listed[idx] = 1;
        gt->img_h[idx] = h < 0 && h == -1 ? -1 : image_dim(h);
        gt->img_w[idx] = w < 0 && w == -1 ? -1 : image_dim(w);
    }
    return r;
}

static int parse_categories(ceval_json *j, ceval_gt *gt, int64_t *catcap) {
    int r;
    if (ceval_json_arr_begin(j)) return j->status;
    while ((r = ceval_json_arr_next(j)) == 1) {
        const char *k;
        size_t kl;
        int rr, have_id = 0;
        int64_t idx = -1;
        char *name = NULL;
        if (ceval_json_obj_begin(j)) return j->status;
        while ((rr = ceval_json_obj_next(j, &k, &kl)) == 1) {
            if (KEY("id")) {
                ceval_id id;
                if (parse_id(j, &id)) { free(name); return j->status; }
                idx = ceval_idtab_intern(&gt->cats, &id);
                if (idx < 0 || grow_cat_side(gt, catcap)) {
                    free(name);
                    return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
                }
                have_id = 1;
            } else if (KEY("name") && ceval_json_peek(j) == CEVAL_J_STRING) {
                const char *s;
                size_t n;
                if (ceval_json_string(j, &s, &n)) { free(name); return j->status; }
                free(name);
                name = strndup(s, n);
                if (!name) return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
            } else if (ceval_json_skip(j)) {
                free(name);
                return j->status;
            }
        }
        if (rr < 0) { free(name); return rr; }
        if (!have_id) { free(name); return ceval_json_fail(j, ND_ERR_FORMAT, "category without \"id\""); }
        gt->cat_listed[idx] = 1;
        free(gt->cat_name[idx]);
        gt->cat_name[idx] = name;
    }
    return r;
}

/* A list of numbers; *n counts them, the first 4 land in out. */
static int parse_box(ceval_json *j, double out[4], int *n) {
    int r;
    *n = 0;
    if (ceval_json_arr_begin(j)) return j->status;
    while ((r = ceval_json_arr_next(j)) == 1) {
        double v;
        if (ceval_json_number(j, &v, 1)) return j->status;
        if (*n < 4) out[*n] = v;
        (*n)++;
    }
    return r;
}

static int parse_annotations(ceval_json *j, ceval_gt *gt, int64_t *imgcap, int64_t *catcap) {
    int r;
    int64_t cap = 0;
    if (ceval_json_arr_begin(j)) return j->status;
    while ((r = ceval_json_arr_next(j)) == 1) {
        if (ceval_grow((void **)&gt->anns, &cap, gt->nanns + 1, sizeof *gt->anns))
            return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
        ceval_ann *a = &gt->anns[gt->nanns];
        memset(a, 0, sizeof *a);
        a->seg = -1;
        a->kp_n = -1;
        a->file_index = gt->nanns;
        int have_id = 0, have_img = 0, have_cat = 0, rr;
        const char *k;
        size_t kl;
        if (ceval_json_obj_begin(j)) return j->status;
        while ((rr = ceval_json_obj_next(j, &k, &kl)) == 1) {
            if (KEY("id")) {
                if (ceval_json_peek(j) != CEVAL_J_NUMBER && ceval_json_peek(j) != CEVAL_J_TRUE &&
                    ceval_json_peek(j) != CEVAL_J_FALSE)
                    return ceval_json_fail(j, ND_ERR_FORMAT, "expected a numeric annotation id");
                if (ceval_json_number(j, &a->id, 1)) return j->status;
                have_id = 1;
            } else if (KEY("image_id")) {
                ceval_id id;
                if (parse_id(j, &id)) return j->status;
                int64_t idx = ceval_idtab_intern(&gt->imgs, &id);
                if (idx < 0 || idx > INT32_MAX || grow_img_side(gt, imgcap))
                    return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
                a->img = (int32_t)idx;
                have_img = 1;
            } else if (KEY("category_id")) {
                ceval_id id;
                if (parse_id(j, &id)) return j->status;
                int64_t idx = ceval_idtab_intern(&gt->cats, &id);
                if (idx < 0 || idx > INT32_MAX || grow_cat_side(gt, catcap))
                    return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
                a->cat = (int32_t)idx;
                have_cat = 1;
            } else if (KEY("bbox") && ceval_json_peek(j) == CEVAL_J_ARRAY) {
                int n;
                if (parse_box(j, a->bbox, &n)) return j->status;
                a->has_bbox = n == 4 ? 1 : 2;
            } else if (KEY("area") && ceval_json_peek(j) == CEVAL_J_NUMBER) {
                if (ceval_json_number(j, &a->area, 0)) return j->status;
                a->has_area = 1;
            } else if (KEY("iscrowd") && ceval_json_peek(j) != CEVAL_J_NULL) {
                if (ceval_json_number(j, &a->iscrowd, 1)) return j->status;
                a->has_iscrowd = 1;
            } else if (KEY("num_keypoints") && ceval_json_peek(j) == CEVAL_J_NUMBER) {
                double v;
                if (ceval_json_number(j, &v, 0)) return j->status;
                a->num_keypoints = v == 0 ? 0 : 1; /* only `== 0` is ever asked */
                a->has_num_kp = 1;
            } else if (KEY("keypoints") && ceval_json_peek(j) == CEVAL_J_ARRAY) {
                if (ceval_kps_parse(j, &gt->store, &a->kp_off, &a->kp_n)) return j->status;
            } else if (KEY("segmentation") && ceval_json_peek(j) != CEVAL_J_NULL) {
                int64_t si;
                if (ceval_seg_parse(j, &gt->store, &si)) return j->status;
                a = &gt->anns[gt->nanns];
                a->seg = si;
            } else if (ceval_json_skip(j)) {
                return j->status;
            }
        }
        if (rr < 0) return rr;
        if (!have_id || !have_img || !have_cat)
            return ceval_json_fail(j, ND_ERR_FORMAT, "annotation without \"%s\"",
                                   !have_id ? "id" : !have_img ? "image_id" : "category_id");
        if (!a->has_iscrowd) gt->n_missing_iscrowd++;
        gt->nanns++;
    }
    return r;
}

static _Thread_local const ceval_idtab *g_sort_tab; /* qsort has no context argument */
static int cmp_idx(const void *pa, const void *pb) {
    const ceval_id *a = &g_sort_tab->ids[*(const int32_t *)pa], *b = &g_sort_tab->ids[*(const int32_t *)pb];
    return ceval_id_cmp(a, b);
}

/* sorted(ids listed) as pycocotools' Params; strings and numbers together cannot be sorted. */
static int sort_listed(const ceval_idtab *t, const uint8_t *listed, int32_t **out, int64_t *n, const char *what,
                       const char *path) {
    int64_t c = 0, nstr = 0;
    for (int64_t i = 0; i < t->n; i++) if (listed[i]) { c++; nstr += t->ids[i].is_str; }
    *out = malloc(sizeof **out * (size_t)(c ? c : 1));
    if (!*out) return nd_fail(ND_ERR_NOMEM, "out of memory");
    c = 0;
    for (int64_t i = 0; i < t->n; i++) if (listed[i]) (*out)[c++] = (int32_t)i;
    *n = c;
    if (nstr && nstr != c)
        return nd_fail(ND_ERR_FORMAT, "%s: %s ids mix numbers and strings; they cannot be sorted (pycocotools "
                       "raises TypeError)", path, what);
    g_sort_tab = t;
    qsort(*out, (size_t)c, sizeof **out, cmp_idx);
    return 0;
}

static int build_index(ceval_gt *gt) {
    /* last annotation with each id: COCO.anns is a dict, the last assignment wins */
    ceval_idtab ids = {0};
    int64_t *last = NULL;
    int rc = 0;
    gt->ann_last = malloc(sizeof *gt->ann_last * (size_t)(gt->nanns + 1));
    int64_t *slot = malloc(sizeof *slot * (size_t)(gt->nanns + 1));
    last = malloc(sizeof *last * (size_t)(gt->nanns + 1));
    gt->img_ann_start = calloc((size_t)gt->imgs.n + 1, sizeof *gt->img_ann_start);
    gt->img_ann_idx = malloc(sizeof *gt->img_ann_idx * (size_t)(gt->nanns + 1));
    if (!gt->ann_last || !slot || !last || !gt->img_ann_start || !gt->img_ann_idx) {
        rc = nd_fail(ND_ERR_NOMEM, "out of memory indexing %lld annotations", (long long)gt->nanns);
        goto done;
    }
    for (int64_t i = 0; i < gt->nanns; i++) {
        ceval_id id = {.num = gt->anns[i].id};
        slot[i] = ceval_idtab_intern(&ids, &id);
        if (slot[i] < 0) { rc = ND_ERR_NOMEM; goto done; }
        last[slot[i]] = i;
    }
    for (int64_t i = 0; i < gt->nanns; i++) gt->ann_last[i] = last[slot[i]];
    /* imgToAnns: per image, annotations in file order */
    for (int64_t i = 0; i < gt->nanns; i++) gt->img_ann_start[gt->anns[i].img + 1]++;
    for (int64_t i = 0; i < gt->imgs.n; i++) gt->img_ann_start[i + 1] += gt->img_ann_start[i];
    {
        int64_t *fill = malloc(sizeof *fill * (size_t)(gt->imgs.n + 1)); /* write cursors */
        if (!fill) { rc = nd_fail(ND_ERR_NOMEM, "out of memory"); goto done; }
        for (int64_t i = 0; i < gt->imgs.n; i++) fill[i] = gt->img_ann_start[i];
        for (int64_t i = 0; i < gt->nanns; i++) gt->img_ann_idx[fill[gt->anns[i].img]++] = i;
        free(fill);
    }
done:
    free(slot);
    free(last);
    ceval_idtab_free(&ids);
    return rc;
}

int ceval_gt_parse(const char *text, size_t len, const char *name, ceval_gt **out) {
    *out = NULL;
    ceval_gt *gt = calloc(1, sizeof *gt);
    if (!gt) return nd_fail(ND_ERR_NOMEM, "out of memory");
    gt->path = strdup(name ? name : "<memory>");
    ceval_json j;
    ceval_json_init(&j, text, len, gt->path);
    int64_t imgcap = 0, catcap = 0;
    int seen_img = 0, seen_ann = 0, seen_cat = 0, r;
    const char *k;
    size_t kl;
    if (ceval_json_obj_begin(&j)) goto fail;
    while ((r = ceval_json_obj_next(&j, &k, &kl)) == 1) {
        int *seen = KEY("images") ? &seen_img : KEY("annotations") ? &seen_ann : KEY("categories") ? &seen_cat : NULL;
        if (seen && *seen) {
            ceval_json_fail(&j, ND_ERR_FORMAT, "duplicate key \"%.*s\"", (int)kl, k);
            goto fail;
        }
        if (seen) *seen = 1;
        if (KEY("images") ? parse_images(&j, gt, &imgcap)
            : KEY("annotations") ? parse_annotations(&j, gt, &imgcap, &catcap)
            : KEY("categories") ? parse_categories(&j, gt, &catcap)
            : ceval_json_skip(&j))
            goto fail;
    }
    if (r < 0 || ceval_json_end(&j)) goto fail;
    ceval_json_free(&j);
    int rc = 0;
    /* side arrays exist even for a file without images or categories */
    if (grow_img_side(gt, &imgcap) || grow_cat_side(gt, &catcap))
        rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    if (!rc) rc = build_index(gt);
    if (!rc) rc = sort_listed(&gt->imgs, gt->img_listed, &gt->img_sorted, &gt->n_img_sorted, "image", gt->path);
    if (!rc) rc = sort_listed(&gt->cats, gt->cat_listed, &gt->cat_sorted, &gt->n_cat_sorted, "category", gt->path);
    if (rc) {
        ceval_gt_free(gt);
        return rc;
    }
    if (gt->n_missing_iscrowd)
        ND_WARN("%s: %lld annotation(s) without \"iscrowd\" are read as iscrowd 0 (pycocotools would raise KeyError)",
                gt->path, (long long)gt->n_missing_iscrowd);
    *out = gt;
    return 0;
fail:
    ceval_json_free(&j);
    ceval_gt_free(gt);
    return j.status ? j.status : ND_ERR_FORMAT;
}

int ceval_gt_load(const char *path, ceval_gt **out) {
    char *data;
    size_t len;
    *out = NULL;
    if (nd_file_read_all(path, &data, &len)) return ND_ERR_IO;
    int rc = ceval_gt_parse(data, len, path, out);
    free(data);
    return rc;
}
