/* Run-length encoded masks: the arithmetic of cocoapi's common/maskApi.c, rewritten with
 * bounds checks. Counts are uint32 and wrap exactly as maskApi's do; the places where maskApi
 * reads past an array or loops forever on inconsistent input are errors here instead (the
 * loaders reject RLEs whose counts do not add up to h*w). */
#include "eval/cocoeval.h"
#include "eval/internal.h"

#include "common/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Beyond these the rasteriser would need gigabytes; no real annotation comes close. */
#define POLY_MAX_COORD 1e8
#define POLY_MAX_POINTS ((int64_t)1 << 25)

static uint32_t umin(uint32_t a, uint32_t b) { return a < b ? a : b; }
static uint32_t umax(uint32_t a, uint32_t b) { return a > b ? a : b; }

void ceval_rle_free(ceval_rle *r) {
    if (!r) return;
    free(r->cnts);
    r->cnts = NULL;
    r->m = 0;
}

static int rle_set(ceval_rle *r, uint32_t h, uint32_t w, int64_t m, const uint32_t *cnts) {
    r->h = h;
    r->w = w;
    r->m = m;
    r->cnts = NULL;
    if (m == 0) return 0;
    r->cnts = malloc((size_t)m * sizeof *r->cnts);
    if (!r->cnts) return nd_fail(ND_ERR_NOMEM, "out of memory for an RLE of %lld runs", (long long)m);
    if (cnts) memcpy(r->cnts, cnts, (size_t)m * sizeof *cnts);
    return 0;
}

int ceval_rle_encode(ceval_rle *r, const uint8_t *mask, uint32_t h, uint32_t w) {
    size_t a = (size_t)h * w;
    uint32_t *cnts = malloc((a + 1) * sizeof *cnts);
    if (!cnts) return nd_fail(ND_ERR_NOMEM, "out of memory encoding a %ux%u mask", h, w);
    int64_t k = 0;
    uint8_t p = 0;
    uint32_t c = 0;
    for (size_t j = 0; j < a; j++) {
        uint8_t v = mask[j] != 0;
        if (v != p) { cnts[k++] = c; c = 0; p = v; }
        c++;
    }
    cnts[k++] = c;
    int rc = rle_set(r, h, w, k, cnts);
    free(cnts);
    return rc;
}

int ceval_rle_decode(const ceval_rle *r, uint8_t *mask) {
    size_t total = (size_t)r->h * r->w, o = 0;
    uint8_t v = 0;
    for (int64_t j = 0; j < r->m; j++) {
        if (r->cnts[j] > total - o)
            return nd_fail(ND_ERR_FORMAT, "RLE counts exceed the mask size %ux%u", r->h, r->w);
        memset(mask + o, v, r->cnts[j]);
        o += r->cnts[j];
        v = !v;
    }
    if (o != total) return nd_fail(ND_ERR_FORMAT, "RLE counts cover %zu of %zu pixels", o, total);
    return 0;
}

uint32_t ceval_rle_area(const ceval_rle *r) {
    uint32_t a = 0;
    for (int64_t j = 1; j < r->m; j += 2) a += r->cnts[j];
    return a;
}

int ceval_rle_to_bbox(const ceval_rle *r, double bb[4]) {
    uint32_t h = r->h, w = r->w, xs = w, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
    int64_t m = (r->m / 2) * 2;
    if (m == 0) {
        bb[0] = bb[1] = bb[2] = bb[3] = 0;
        return 0;
    }
    if (h == 0) return nd_fail(ND_ERR_FORMAT, "RLE of height 0 with %lld runs", (long long)r->m);
    for (int64_t j = 0; j < m; j++) {
        cc += r->cnts[j];
        uint32_t t = cc - (uint32_t)(j % 2), x = t / h, y = t - x * h; /* t % h, (t - y) / h */
        if (j % 2 == 0) xp = x;
        else if (xp < x) { ys = 0; ye = h - 1; }
        xs = umin(xs, x); xe = umax(xe, x); ys = umin(ys, y); ye = umax(ye, y);
    }
    /* maskApi stores these uint32 differences in doubles: xe - xs + 1 wraps like they do. */
    bb[0] = xs; bb[2] = (uint32_t)(xe - xs + 1);
    bb[1] = ys; bb[3] = (uint32_t)(ye - ys + 1);
    return 0;
}

static int cmp_u32(const void *pa, const void *pb) {
    uint32_t c = *(const uint32_t *)pa, d = *(const uint32_t *)pb;
    return c > d ? 1 : c < d ? -1 : 0;
}

int ceval_rle_from_poly(ceval_rle *r, const double *xy, int64_t k, uint32_t h, uint32_t w) {
    const double scale = 5;
    memset(r, 0, sizeof *r);
    for (int64_t j = 0; j < 2 * k; j++)
        if (!(fabs(xy[j]) <= POLY_MAX_COORD))
            return nd_fail(ND_ERR_INVALID, "polygon coordinate %g is not finite or beyond %g", xy[j], POLY_MAX_COORD);
    int *x = malloc(sizeof(int) * (size_t)(k + 1)), *y = malloc(sizeof(int) * (size_t)(k + 1));
    int *u = NULL, *v = NULL;
    uint32_t *a = NULL, *b = NULL;
    int rc = ND_ERR_NOMEM;
    if (!x || !y) goto done;
    /* upsample by 5 and walk every boundary pixel of the upsampled polygon */
    for (int64_t j = 0; j < k; j++) x[j] = (int)(scale * xy[j * 2 + 0] + .5);
    for (int64_t j = 0; j < k; j++) y[j] = (int)(scale * xy[j * 2 + 1] + .5);
    if (k > 0) { x[k] = x[0]; y[k] = y[0]; }
    int64_t m = 0;
    for (int64_t j = 0; j < k; j++) m += umax((uint32_t)abs(x[j] - x[j + 1]), (uint32_t)abs(y[j] - y[j + 1])) + 1;
    if (m > POLY_MAX_POINTS) {
        rc = nd_fail(ND_ERR_INVALID, "polygon too large to rasterise (%lld boundary points)", (long long)m);
        goto done;
    }
    u = malloc(sizeof(int) * (size_t)(m + 1));
    v = malloc(sizeof(int) * (size_t)(m + 1));
    if (!u || !v) goto done;
    m = 0;
    for (int64_t j = 0; j < k; j++) {
        int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1], t;
        int dx = abs(xe - xs), dy = abs(ys - ye);
        int flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
        if (flip) { t = xs; xs = xe; xe = t; t = ys; ys = ye; ye = t; }
        if (dx == 0 && dy == 0) {
            /* maskApi computes 0/0 here and casts NaN to int; the point's y is never read
             * because its neighbours share its x, so any finite value gives the same mask. */
            u[m] = xs; v[m] = ys; m++;
            continue;
        }
        double s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
        if (dx >= dy) {
            for (int d = 0; d <= dx; d++) {
                t = flip ? dx - d : d;
                u[m] = t + xs; v[m] = (int)(ys + s * t + .5); m++;
            }
        } else {
            for (int d = 0; d <= dy; d++) {
                t = flip ? dy - d : d;
                v[m] = t + ys; u[m] = (int)(xs + s * t + .5); m++;
            }
        }
    }
    /* points where x changes, downsampled back to pixel columns */
    int64_t np = m, nb = 0;
    free(x); free(y);
    x = malloc(sizeof(int) * (size_t)(np + 1));
    y = malloc(sizeof(int) * (size_t)(np + 1));
    if (!x || !y) goto done;
    for (int64_t j = 1; j < np; j++) {
        if (u[j] == u[j - 1]) continue;
        double xd = (double)(u[j] < u[j - 1] ? u[j] : u[j] - 1);
        xd = (xd + .5) / scale - .5;
        if (floor(xd) != xd || xd < 0 || (w > 0 && xd > (double)(w - 1))) continue;
        double yd = (double)(v[j] < v[j - 1] ? v[j] : v[j - 1]);
        yd = (yd + .5) / scale - .5;
        if (yd < 0) yd = 0;
        else if (yd > h) yd = h;
        yd = ceil(yd);
        x[nb] = (int)xd; y[nb] = (int)yd; nb++;
    }
    /* run lengths from the sorted boundary positions (column-major index x*h + y) */
    int64_t na = nb;
    a = malloc(sizeof(uint32_t) * (size_t)(na + 1));
    b = malloc(sizeof(uint32_t) * (size_t)(na + 1));
    if (!a || !b) goto done;
    for (int64_t j = 0; j < na; j++) a[j] = (uint32_t)((int64_t)x[j] * (int64_t)(int)h + y[j]);
    a[na++] = (uint32_t)((uint64_t)h * w);
    qsort(a, (size_t)na, sizeof *a, cmp_u32);
    uint32_t prev = 0;
    for (int64_t j = 0; j < na; j++) { uint32_t t = a[j]; a[j] -= prev; prev = t; }
    int64_t j = 0, mb = 0;
    b[mb++] = a[j++];
    while (j < na) {
        if (a[j] > 0) b[mb++] = a[j++];
        else { j++; if (j < na) b[mb - 1] += a[j++]; }
    }
    rc = rle_set(r, h, w, mb, b);
done:
    if (rc == ND_ERR_NOMEM && !r->cnts && (!u || !v || !x || !y || !a || !b))
        nd_fail(ND_ERR_NOMEM, "out of memory rasterising a polygon");
    free(x); free(y); free(u); free(v); free(a); free(b);
    return rc;
}

int ceval_rle_from_bbox(ceval_rle *r, const double bb[4], uint32_t h, uint32_t w) {
    double xs = bb[0], xe = xs + bb[2], ys = bb[1], ye = ys + bb[3];
    double xy[8] = {xs, ys, xs, ye, xe, ye, xe, ys};
    return ceval_rle_from_poly(r, xy, 4, h, w);
}

int ceval_rle_merge(const ceval_rle *rs, int64_t n, int intersect, ceval_rle *out) {
    memset(out, 0, sizeof *out);
    if (n == 0) return 0;
    uint32_t h = rs[0].h, w = rs[0].w;
    if (n == 1) return rle_set(out, h, w, rs[0].m, rs[0].cnts);
    int64_t cap = rs[0].m + 2, m = rs[0].m;
    for (int64_t i = 1; i < n; i++) cap += rs[i].m;
    uint32_t *cur = malloc(sizeof *cur * (size_t)cap), *nxt = malloc(sizeof *nxt * (size_t)cap);
    if (!cur || !nxt) {
        free(cur); free(nxt);
        return nd_fail(ND_ERR_NOMEM, "out of memory merging %lld masks", (long long)n);
    }
    if (m) memcpy(cur, rs[0].cnts, sizeof *cur * (size_t)m);
    for (int64_t i = 1; i < n; i++) {
        const ceval_rle *B = &rs[i];
        if (B->h != h || B->w != w) { h = w = 0; m = 0; break; }
        int64_t am = m, a = 1, bi = 1, nm = 0;
        uint32_t ca = am ? cur[0] : 0, cb = B->m ? B->cnts[0] : 0, cc = 0, ct = 1, c;
        int v = 0, va = 0, vb = 0, vp;
        while (ct > 0) {
            c = umin(ca, cb); cc += c; ct = 0;
            ca -= c; if (!ca && a < am) { ca = cur[a++]; va = !va; } ct += ca;
            cb -= c; if (!cb && bi < B->m) { cb = B->cnts[bi++]; vb = !vb; } ct += cb;
            vp = v; v = intersect ? (va && vb) : (va || vb);
            if (v != vp || ct == 0) { nxt[nm++] = cc; cc = 0; }
            /* an exhausted side with the other still running cannot progress (maskApi would
             * spin forever): consistent RLEs never get here */
            if (c == 0 && ct > 0 && ((!ca && a >= am) || (!cb && bi >= B->m))) {
                if (!ca && a >= am) { cc += cb; cb = 0; } else { cc += ca; ca = 0; }
                nxt[nm++] = cc; cc = 0; ct = 0;
            }
        }
        uint32_t *t = cur; cur = nxt; nxt = t;
        m = nm;
    }
    int rc = rle_set(out, h, w, m, cur);
    free(cur); free(nxt);
    return rc;
}

char *ceval_rle_to_string(const ceval_rle *r) {
    char *s = malloc((size_t)r->m * 7 + 1);
    if (!s) { nd_fail(ND_ERR_NOMEM, "out of memory"); return NULL; }
    size_t p = 0;
    for (int64_t i = 0; i < r->m; i++) {
        long long x = (long long)r->cnts[i];
        if (i > 2) x -= (long long)r->cnts[i - 2];
        int more = 1;
        while (more) {
            char c = (char)(x & 0x1f);
            x >>= 5; /* arithmetic shift, as maskApi on every compiler it is built with */
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            c += 48;
            s[p++] = c;
        }
    }
    s[p] = 0;
    return s;
}

int ceval_rle_from_string(ceval_rle *r, const char *s, size_t n, uint32_t h, uint32_t w) {
    uint32_t *cnts = malloc(sizeof *cnts * (n + 1));
    if (!cnts) return nd_fail(ND_ERR_NOMEM, "out of memory decoding an RLE string of %zu chars", n);
    int64_t m = 0;
    size_t p = 0;
    while (p < n) {
        int64_t x = 0;
        int k = 0, more = 1;
        while (more) {
            if (p >= n || k >= 6) {
                free(cnts);
                return nd_fail(ND_ERR_FORMAT, p >= n ? "RLE string ends inside a run (char %zu)"
                                                     : "RLE string run too long at char %zu", p);
            }
            int c = (signed char)(s[p] - 48);
            x |= (int64_t)(c & 0x1f) << (5 * k);
            more = c & 0x20;
            p++; k++;
            if (!more && (c & 0x10)) x |= (int64_t)(~(uint64_t)0 << (5 * k));
        }
        if (m > 2) x += (int64_t)cnts[m - 2];
        cnts[m++] = (uint32_t)x;
    }
    int rc = rle_set(r, h, w, m, cnts);
    free(cnts);
    return rc;
}

void ceval_bbox_iou(const double *dt, int64_t m, const double *gt, int64_t n, const uint8_t *iscrowd,
                    double *o) {
    for (int64_t g = 0; g < n; g++) {
        const double *G = gt + g * 4;
        double ga = G[2] * G[3];
        int crowd = iscrowd && iscrowd[g];
        for (int64_t d = 0; d < m; d++) {
            const double *D = dt + d * 4;
            double da = D[2] * D[3];
            o[d * n + g] = 0;
            double w = fmin(D[2] + D[0], G[2] + G[0]) - fmax(D[0], G[0]);
            if (w <= 0) continue;
            double h = fmin(D[3] + D[1], G[3] + G[1]) - fmax(D[1], G[1]);
            if (h <= 0) continue;
            double i = w * h, u = crowd ? da : da + ga - i;
            o[d * n + g] = i / u;
        }
    }
}

/* One pair, with the tight boxes of both masks already known (maskApi recomputes them for
 * every call; the evaluator computes them once per mask). */
double ceval_rle_iou_pair(const ceval_rle *A, const double *db, const ceval_rle *B, const double *gb, int crowd) {
    uint8_t cr = (uint8_t)(crowd != 0);
    double bo;
    ceval_bbox_iou(db, 1, gb, 1, &cr, &bo);
    if (!(bo > 0)) return bo;
    if (A->h != B->h || A->w != B->w) return -1;
    int64_t a = 1, b = 1;
    uint32_t ca = A->cnts[0], cb = B->cnts[0], c, i = 0, u = 0, ct = 1;
    int va = 0, vb = 0;
    while (ct > 0) {
        c = umin(ca, cb);
        if (va || vb) { u += c; if (va && vb) i += c; }
        ct = 0;
        ca -= c; if (!ca && a < A->m) { ca = A->cnts[a++]; va = !va; } ct += ca;
        cb -= c; if (!cb && b < B->m) { cb = B->cnts[b++]; vb = !vb; } ct += cb;
        if (c == 0 && ct > 0 && ((!ca && a >= A->m) || (!cb && b >= B->m))) break;
    }
    if (i == 0) u = 1;
    else if (crowd) u = ceval_rle_area(A);
    return (double)i / (double)u;
}

void ceval_rle_iou(const ceval_rle *dt, int64_t m, const ceval_rle *gt, int64_t n, const uint8_t *iscrowd,
                   double *o) {
    for (int64_t g = 0; g < n; g++) {
        double gb[4];
        if (ceval_rle_to_bbox(&gt[g], gb)) gb[0] = gb[1] = gb[2] = gb[3] = 0;
        for (int64_t d = 0; d < m; d++) {
            double db[4];
            if (ceval_rle_to_bbox(&dt[d], db)) db[0] = db[1] = db[2] = db[3] = 0;
            o[d * n + g] = ceval_rle_iou_pair(&dt[d], db, &gt[g], gb, iscrowd && iscrowd[g]);
        }
    }
}
