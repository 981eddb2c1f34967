/* The spatial index behind det_nms for thresholds t >= 0 (nms.c says why a search over
 * candidates is exact). Which kept boxes i can suppress box j (IoU > t)? With M = max(w, h)
 * and c the box centre, only those with
 * (a) a similar size: IoU <= min(wi, wj) / max(wi, wj), and likewise for heights, so
 *     t * Mj < Mi < Mj / t; and
 * (b) a near centre: the overlap of two intervals is at most ri + rj - |ci - cj| (r = half
 *     widths) and IoU > t needs an overlap > t * max(wi, wj), so
 *     |ci - cj| < (1 - t) * max(wi, wj) <= (1 - t) * max(Mi, Mj), on each axis.
 * For t = 0, (b) is just "they overlap", which thresholds >= 0 need anyway: with no positive
 * overlap the intersection is 0 (or 0 * inf = NaN), and 0/x or NaN is never > t.
 * Boxes are binned into levels by M (powers of two above the smallest M); each level has a
 * uniform grid over box centres with cells about (1 - t) * (the level's largest M) wide. A
 * query visits the levels whose actual M range passes (a) and, in each, the cells within
 * the radius of (b) around its centre (or the level's kept list when that is shorter). The
 * bounds carry a 0.1% margin plus an absolute one for the double centres: the computed IoU is
 * within a few 1e-7 of the exact one, so no box that torchvision's float test would suppress
 * is missed. Each cell's kept boxes are stored contiguously with their coordinates (capacity
 * counted in advance from every box that could be kept there), so a scan streams memory. */
#include <math.h>
#include <stdlib.h>

#include "common/status.h"
#include "detector/nms_internal.h"

#define MAX_LEVELS 32
#define MARGIN 1.001 /* relative slack on the bounds (a) and (b) */

typedef struct {
    float x1, y1, x2, y2, area;
    int32_t pos;
} entry;

typedef struct {
    int32_t count;       /* boxes (kept or not) of this level */
    float min_m, max_m;  /* their actual range of max(w, h) */
    double inv_c;        /* 1 / cell size */
    int32_t gx, gy;
    int64_t *start;      /* [gx * gy + 1] offsets into entries */
    int32_t *fill;       /* [gx * gy] kept boxes stored per cell */
    entry *entries;
    entry *kept;         /* kept boxes of this level, in order */
    int32_t n_kept;
} level;

typedef struct {
    double ox, oy;       /* smallest centre */
    double slack;        /* absolute error bound of a centre computed in double */
    level lv[MAX_LEVELS];
    int n_levels;
} index_t;

static int32_t cell_of(double v, double origin, double inv, int32_t g) {
    double t = (v - origin) * inv;
    if (!(t > 0.0)) return 0;
    if (t >= (double)(g - 1)) return g - 1;
    return (int32_t)t;
}

static float max_side(const det_nms_boxes *s, int32_t i) {
    float w = s->x2[i] - s->x1[i], h = s->y2[i] - s->y1[i];
    return w > h ? w : h;
}

static double centre_x(const det_nms_boxes *s, int32_t i) {
    return 0.5 * ((double)s->x1[i] + s->x2[i]);
}

static double centre_y(const det_nms_boxes *s, int32_t i) {
    return 0.5 * ((double)s->y1[i] + s->y2[i]);
}

static int64_t cell_index(const index_t *ix, const level *L, const det_nms_boxes *s, int32_t i) {
    return (int64_t)cell_of(centre_y(s, i), ix->oy, L->inv_c, L->gy) * L->gx +
           cell_of(centre_x(s, i), ix->ox, L->inv_c, L->gx);
}

static void free_index(index_t *ix) {
    for (int l = 0; l < ix->n_levels; l++) {
        free(ix->lv[l].start);
        free(ix->lv[l].fill);
        free(ix->lv[l].entries);
        free(ix->lv[l].kept);
    }
}

/* Thresholds this small prune nothing worth having, and the margin below would be smaller
 * than the absolute rounding of a tiny IoU: bound them as thresh = 0 (overlap only). */
static double bound_thresh(double thresh) { return thresh < 1e-6 ? 0.0 : thresh; }

/* The radius of (b) for a query of size mj against the boxes of L. */
static double radius(const index_t *ix, const level *L, double mj, double thresh) {
    double reach = 1.0 - bound_thresh(thresh) / MARGIN;
    if (reach < 0.0) reach = 0.0;
    return reach * fmax(mj, (double)L->max_m) * MARGIN + ix->slack;
}

/* Levels, centre grids and per-cell capacities for the indexed boxes (lvl[i] >= 0). */
static int build_index(const det_nms_boxes *s, const int8_t *lvl, double thresh, index_t *ix) {
    double minx = INFINITY, miny = INFINITY, maxx = -INFINITY, maxy = -INFINITY, big = 0;
    for (int l = 0; l < MAX_LEVELS; l++) ix->lv[l] = (level){.min_m = INFINITY, .max_m = 0};
    for (int32_t i = 0; i < s->n; i++) {
        if (lvl[i] < 0) continue;
        level *L = &ix->lv[lvl[i]];
        float m = max_side(s, i);
        L->count++;
        if (m < L->min_m) L->min_m = m;
        if (m > L->max_m) L->max_m = m;
        if (lvl[i] + 1 > ix->n_levels) ix->n_levels = lvl[i] + 1;
        double cx = centre_x(s, i), cy = centre_y(s, i);
        minx = fmin(minx, cx);
        miny = fmin(miny, cy);
        maxx = fmax(maxx, cx);
        maxy = fmax(maxy, cy);
        big = fmax(big, fmax(fmax(fabs(s->x1[i]), fabs(s->x2[i])),
                             fmax(fabs(s->y1[i]), fabs(s->y2[i]))));
    }
    ix->ox = minx;
    ix->oy = miny;
    ix->slack = 1e-12 * big + 1e-30;
    double span_x = maxx - minx, span_y = maxy - miny;
    for (int l = 0; l < ix->n_levels; l++) {
        level *L = &ix->lv[l];
        if (L->count == 0) continue;
        /* a cell as wide as the search radius of a box of the level's largest size, but no
         * more than ~2 cells per box */
        double c = fmax(radius(ix, L, L->max_m, thresh), 1e-3 * L->max_m);
        double cap = 2.0 * L->count + 16.0;
        double gx = fmax(1.0, ceil(span_x / c)), gy = fmax(1.0, ceil(span_y / c));
        while (gx * gy > cap) {
            c *= 1.01 * sqrt(gx * gy / cap);
            gx = fmax(1.0, ceil(span_x / c));
            gy = fmax(1.0, ceil(span_y / c));
        }
        L->gx = (int32_t)gx;
        L->gy = (int32_t)gy;
        L->inv_c = 1.0 / c;
        int64_t cells = (int64_t)L->gx * L->gy;
        L->start = calloc((size_t)cells + 1, sizeof *L->start);
        L->fill = calloc((size_t)cells, sizeof *L->fill);
        L->kept = malloc((size_t)L->count * sizeof *L->kept);
        L->entries = malloc((size_t)L->count * sizeof *L->entries);
        if (!L->start || !L->fill || !L->kept || !L->entries)
            return nd_fail(ND_ERR_NOMEM, "nms: out of memory");
    }
    /* capacity of each cell = boxes of its level centred in it */
    for (int32_t i = 0; i < s->n; i++)
        if (lvl[i] >= 0) ix->lv[lvl[i]].start[cell_index(ix, &ix->lv[lvl[i]], s, i) + 1]++;
    for (int l = 0; l < ix->n_levels; l++) {
        level *L = &ix->lv[l];
        int64_t cells = (int64_t)L->gx * L->gy;
        for (int64_t c = 0; c < cells; c++) L->start[c + 1] += L->start[c];
    }
    return ND_OK;
}

static int entry_suppresses(const entry *e, const det_nms_boxes *s, int32_t j, double thresh) {
    if (!det_nms_suppresses(e->x1, e->y1, e->x2, e->y2, e->area, s->x1[j], s->y1[j], s->x2[j],
                            s->y2[j], s->area[j], thresh))
        return 0;
    return s->cls == NULL || s->cls[e->pos] == s->cls[j];
}

static int level_suppresses(const index_t *ix, const level *L, const det_nms_boxes *s, int32_t j,
                            double mj, double thresh) {
    double r = radius(ix, L, mj, thresh), cx = centre_x(s, j), cy = centre_y(s, j);
    int32_t x0 = cell_of(cx - r, ix->ox, L->inv_c, L->gx), x1 = cell_of(cx + r, ix->ox, L->inv_c, L->gx);
    int32_t y0 = cell_of(cy - r, ix->oy, L->inv_c, L->gy), y1 = cell_of(cy + r, ix->oy, L->inv_c, L->gy);
    if ((int64_t)(x1 - x0 + 1) * (y1 - y0 + 1) >= L->n_kept) {
        for (int32_t k = 0; k < L->n_kept; k++)
            if (entry_suppresses(&L->kept[k], s, j, thresh)) return 1;
        return 0;
    }
    for (int32_t y = y0; y <= y1; y++)
        for (int32_t x = x0; x <= x1; x++) {
            int64_t c = (int64_t)y * L->gx + x;
            const entry *e = L->entries + L->start[c], *end = e + L->fill[c];
            for (; e < end; e++)
                if (entry_suppresses(e, s, j, thresh)) return 1;
        }
    return 0;
}

static void insert(const index_t *ix, level *L, const det_nms_boxes *s, int32_t j) {
    entry e = {s->x1[j], s->y1[j], s->x2[j], s->y2[j], s->area[j], j};
    int64_t c = cell_index(ix, L, s, j);
    L->kept[L->n_kept++] = e;
    L->entries[L->start[c] + L->fill[c]++] = e;
}

int det_nms_grid(const det_nms_boxes *s, double thresh, int64_t max_keep, int32_t *keep_pos,
                 int32_t *n_keep) {
    int32_t n = s->n, kept = 0;
    int8_t *lvl = malloc((size_t)(n ? n : 1));
    if (!lvl) return nd_fail(ND_ERR_NOMEM, "nms: out of memory");
    /* boxes with positive width and height are indexed; the others can neither suppress nor
     * be suppressed (no positive overlap, see the top) and are simply kept */
    float s0 = INFINITY;
    for (int32_t i = 0; i < n; i++) {
        int proper = s->x2[i] > s->x1[i] && s->y2[i] > s->y1[i];
        lvl[i] = proper ? 0 : -1;
        if (proper && max_side(s, i) < s0) s0 = max_side(s, i);
    }
    for (int32_t i = 0; i < n; i++) {
        if (lvl[i] < 0) continue;
        int e;
        frexp((double)max_side(s, i) / s0, &e); /* ratio in [2^(e-1), 2^e) */
        lvl[i] = (int8_t)(e - 1 < MAX_LEVELS - 1 ? e - 1 : MAX_LEVELS - 1);
    }
    index_t ix = {0};
    int st = build_index(s, lvl, thresh, &ix);
    for (int32_t j = 0; st == ND_OK && j < n && (max_keep == 0 || kept < max_keep); j++) {
        if (lvl[j] < 0) {
            keep_pos[kept++] = j;
            continue;
        }
        /* (a): the levels worth visiting have max(w, h) within [lo, hi] */
        double mj = max_side(s, j), tb = bound_thresh(thresh);
        double lo = tb / MARGIN * mj / MARGIN;
        double hi = tb > 0 ? mj * MARGIN / (tb / MARGIN) : INFINITY;
        /* own level first, then outwards: a suppressor is most often of about the same size,
         * and the search stops at the first one */
        int dropped = 0;
        for (int d = 0; d < 2 * ix.n_levels && !dropped; d++) {
            int l = lvl[j] + ((d & 1) ? -(d + 1) / 2 : d / 2);
            if (l < 0 || l >= ix.n_levels) continue;
            const level *L = &ix.lv[l];
            if (L->n_kept == 0 || L->max_m < lo || L->min_m > hi) continue;
            dropped = level_suppresses(&ix, L, s, j, mj, thresh);
        }
        if (dropped) continue;
        keep_pos[kept++] = j;
        insert(&ix, &ix.lv[lvl[j]], s, j);
    }
    free_index(&ix);
    free(lvl);
    *n_keep = kept;
    return st;
}
