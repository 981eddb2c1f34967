/* Segmentations and keypoints as read from a file, and COCO.annToRLE over them. */
#include "eval/internal.h"

#include "common/status.h"

#include <stdlib.h>
#include <string.h>

int ceval_grow(void **p, int64_t *cap, int64_t need, size_t elem) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *t = realloc(*p, (size_t)c * elem);
    if (!t) return nd_fail(ND_ERR_NOMEM, "out of memory (%lld items of %zu bytes)", (long long)c, elem);
    *p = t;
    *cap = c;
    return 0;
}

void ceval_segstore_free(ceval_segstore *s) {
    free(s->segs);
    free(s->parts);
    free(s->coords);
    free(s->counts);
    free(s->kps);
    memset(s, 0, sizeof *s);
}

static int push_number(ceval_json *j, double **arr, int64_t *n, int64_t *cap) {
    double v;
    if (ceval_json_number(j, &v, 1)) return j->status;
    if (ceval_grow((void **)arr, cap, *n + 1, sizeof **arr)) return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
    (*arr)[(*n)++] = v;
    return 0;
}

int ceval_kps_parse(ceval_json *j, ceval_segstore *s, int64_t *off, int64_t *n) {
    int r;
    *off = s->nkps;
    if (ceval_json_arr_begin(j)) return j->status;
    while ((r = ceval_json_arr_next(j)) == 1)
        if (push_number(j, &s->kps, &s->nkps, &s->capkps)) return j->status;
    if (r < 0) return r;
    *n = s->nkps - *off;
    return 0;
}

static int new_part(ceval_json *j, ceval_segstore *s, ceval_part **out) {
    if (ceval_grow((void **)&s->parts, &s->capparts, s->nparts + 1, sizeof *s->parts))
        return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
    *out = &s->parts[s->nparts++];
    memset(*out, 0, sizeof **out);
    return 0;
}

/* {"size": [h, w], "counts": "compressed" or [uncompressed runs]}: one RLE part. When
 * `need_list_counts`, a string counts is refused (frUncompressedRLE on a list of dicts). */
static int parse_rle(ceval_json *j, ceval_segstore *s, int need_list_counts) {
    ceval_part *pt;
    if (new_part(j, s, &pt)) return j->status;
    int64_t pidx = s->nparts - 1;
    int have_size = 0, have_counts = 0;
    double h = 0, w = 0;
    const char *k;
    size_t kl;
    int r;
    if (ceval_json_obj_begin(j)) return j->status;
    while ((r = ceval_json_obj_next(j, &k, &kl)) == 1) {
        if (kl == 4 && memcmp(k, "size", 4) == 0) {
            double v[2];
            int n = 0, rr;
            if (ceval_json_arr_begin(j)) return j->status;
            while ((rr = ceval_json_arr_next(j)) == 1) {
                double x;
                if (ceval_json_number(j, &x, 0)) return j->status;
                if (n < 2) v[n] = x;
                n++;
            }
            if (rr < 0) return rr;
            if (n != 2 || !(v[0] >= 0 && v[0] < 4294967296.0 && v[0] == (double)(uint32_t)v[0]) ||
                !(v[1] >= 0 && v[1] < 4294967296.0 && v[1] == (double)(uint32_t)v[1]))
                return ceval_json_fail(j, ND_ERR_FORMAT, "expected \"size\": [height, width] as two non-negative integers");
            h = v[0];
            w = v[1];
            have_size = 1;
        } else if (kl == 6 && memcmp(k, "counts", 6) == 0) {
            pt = &s->parts[pidx];
            pt->off = s->ncounts;
            if (ceval_json_peek(j) == CEVAL_J_STRING) {
                if (need_list_counts)
                    return ceval_json_fail(j, ND_ERR_FORMAT,
                                           "in a list of RLEs each \"counts\" must be a list (uncompressed RLE)");
                const char *str;
                size_t sl;
                ceval_rle tmp;
                if (ceval_json_string(j, &str, &sl)) return j->status;
                if (ceval_rle_from_string(&tmp, str, sl, 0, 0))
                    return ceval_json_fail(j, ND_ERR_FORMAT, "bad compressed RLE: %s", nd_last_error());
                if (ceval_grow((void **)&s->counts, &s->capcounts, s->ncounts + tmp.m, sizeof *s->counts)) {
                    ceval_rle_free(&tmp);
                    return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
                }
                if (tmp.m) memcpy(s->counts + s->ncounts, tmp.cnts, (size_t)tmp.m * sizeof *tmp.cnts);
                s->ncounts += tmp.m;
                ceval_rle_free(&tmp);
            } else {
                int rr;
                if (ceval_json_arr_begin(j)) return j->status;
                while ((rr = ceval_json_arr_next(j)) == 1) {
                    double x;
                    if (ceval_json_number(j, &x, 1)) return j->status;
                    if (!(x >= 0 && x < 4294967296.0))
                        return ceval_json_fail(j, ND_ERR_FORMAT, "RLE count %g: expected an integer in [0, 2^32)", x);
                    if (ceval_grow((void **)&s->counts, &s->capcounts, s->ncounts + 1, sizeof *s->counts))
                        return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
                    s->counts[s->ncounts++] = (uint32_t)x; /* numpy's uint32 cast truncates */
                }
                if (rr < 0) return rr;
            }
            pt = &s->parts[pidx];
            pt->n = s->ncounts - pt->off;
            have_counts = 1;
        } else if (ceval_json_skip(j)) {
            return j->status;
        }
    }
    if (r < 0) return r;
    if (!have_size || !have_counts)
        return ceval_json_fail(j, ND_ERR_FORMAT, "an RLE segmentation needs \"size\" and \"counts\"");
    pt = &s->parts[pidx];
    pt->h = (uint32_t)h;
    pt->w = (uint32_t)w;
    /* maskApi loops forever or reads past the runs when they do not cover the mask */
    uint64_t sum = 0;
    for (int64_t i = 0; i < pt->n; i++) sum += s->counts[pt->off + i];
    if (sum != (uint64_t)pt->h * pt->w)
        return ceval_json_fail(j, ND_ERR_FORMAT, "RLE counts add up to %llu pixels, expected size %ux%u = %llu",
                               (unsigned long long)sum, pt->h, pt->w, (unsigned long long)pt->h * pt->w);
    return 0;
}

int ceval_seg_parse(ceval_json *j, ceval_segstore *s, int64_t *seg_index) {
    if (ceval_grow((void **)&s->segs, &s->capsegs, s->nsegs + 1, sizeof *s->segs))
        return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
    int64_t si = s->nsegs++;
    ceval_seg *sg = &s->segs[si];
    sg->part = s->nparts;
    sg->nparts = 0;
    *seg_index = si;
    ceval_jtype t = ceval_json_peek(j);
    if (t == CEVAL_J_OBJECT) {
        if (parse_rle(j, s, 0)) return j->status;
        s->segs[si].kind = CEVAL_SEG_RLE;
        s->segs[si].nparts = 1;
        return 0;
    }
    if (t != CEVAL_J_ARRAY)
        return ceval_json_fail(j, ND_ERR_FORMAT, "expected a segmentation: a list of polygons or an RLE object");
    int r;
    uint8_t kind = CEVAL_SEG_POLYS;
    if (ceval_json_arr_begin(j)) return j->status;
    while ((r = ceval_json_arr_next(j)) == 1) {
        ceval_jtype et = ceval_json_peek(j);
        if (s->nparts == s->segs[si].part) kind = et == CEVAL_J_OBJECT ? CEVAL_SEG_RLE_LIST : CEVAL_SEG_POLYS;
        if (kind == CEVAL_SEG_RLE_LIST) {
            if (et != CEVAL_J_OBJECT)
                return ceval_json_fail(j, ND_ERR_FORMAT, "expected an RLE object like the first element");
            if (parse_rle(j, s, 1)) return j->status;
        } else {
            if (et != CEVAL_J_ARRAY)
                return ceval_json_fail(j, ND_ERR_FORMAT, "expected a polygon (a list of numbers x1, y1, x2, y2, ...)");
            ceval_part *pt;
            if (new_part(j, s, &pt)) return j->status;
            int64_t pidx = s->nparts - 1, off = s->ncoords;
            int rr;
            if (ceval_json_arr_begin(j)) return j->status;
            while ((rr = ceval_json_arr_next(j)) == 1)
                if (push_number(j, &s->coords, &s->ncoords, &s->capcoords)) return j->status;
            if (rr < 0) return rr;
            s->parts[pidx].off = off;
            s->parts[pidx].n = s->ncoords - off;
        }
    }
    if (r < 0) return r;
    s->segs[si].kind = kind;
    s->segs[si].nparts = s->nparts - s->segs[si].part;
    return 0;
}

int ceval_seg_to_rle(const ceval_segstore *s, int64_t seg_index, uint32_t h, uint32_t w, ceval_rle *out) {
    const ceval_seg *sg = &s->segs[seg_index];
    const ceval_part *pt = s->parts + sg->part;
    memset(out, 0, sizeof *out);
    if (sg->kind == CEVAL_SEG_RLE) {
        ceval_rle r = {pt->h, pt->w, pt->n, s->counts + pt->off};
        return ceval_rle_merge(&r, 1, 0, out);
    }
    if (sg->nparts == 0)
        return nd_fail(ND_ERR_FORMAT, "empty segmentation list (pycocotools: IndexError in frPyObjects)");
    ceval_rle *rs = calloc((size_t)sg->nparts, sizeof *rs);
    if (!rs) return nd_fail(ND_ERR_NOMEM, "out of memory");
    int rc = 0;
    /* frPyObjects looks at the first polygon only: 4 numbers means every entry is a box */
    int boxes = sg->kind == CEVAL_SEG_POLYS && pt[0].n == 4;
    if (sg->kind == CEVAL_SEG_POLYS && pt[0].n < 4)
        rc = nd_fail(ND_ERR_FORMAT, "first polygon has %lld coordinates; expected at least 6 (or 4 for a box)",
                     (long long)pt[0].n);
    for (int64_t i = 0; i < sg->nparts && rc == 0; i++) {
        if (sg->kind == CEVAL_SEG_RLE_LIST) {
            ceval_rle r = {pt[i].h, pt[i].w, pt[i].n, s->counts + pt[i].off};
            rc = ceval_rle_merge(&r, 1, 0, &rs[i]);
        } else if (boxes) {
            if (pt[i].n != 4)
                rc = nd_fail(ND_ERR_FORMAT, "segmentation read as boxes (its first list has 4 numbers) "
                             "but list %lld has %lld", (long long)i, (long long)pt[i].n);
            else
                rc = ceval_rle_from_bbox(&rs[i], s->coords + pt[i].off, h, w);
        } else {
            rc = ceval_rle_from_poly(&rs[i], s->coords + pt[i].off, pt[i].n / 2, h, w);
        }
    }
    if (rc == 0) rc = ceval_rle_merge(rs, sg->nparts, 0, out);
    for (int64_t i = 0; i < sg->nparts; i++) ceval_rle_free(&rs[i]);
    free(rs);
    return rc;
}
