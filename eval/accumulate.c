/* COCOeval.accumulate and summarize, and numpy's summation that their means depend on. */
#include "eval/evaluate.h"

#include "common/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* numpy's pairwise_sum for float64 (numpy/core/src/umath/loops_utils.h.src): below 8 a plain
 * loop, up to 128 eight interleaved accumulators, above that split in two at a multiple of 8.
 * The reduction hands it blocks of at most 8192 elements (the ufunc buffer size) and adds the
 * block sums left to right. A plain loop differs in the last bits, and stats are compared at
 * 1e-12 or better. */
static double pairwise(const double *a, int64_t n) {
    if (n < 8) {
        double res = 0.;
        for (int64_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = a[j];
        int64_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise(a, n2) + pairwise(a + n2, n - n2);
}

double ceval_np_sum(const double *a, int64_t n) {
    double res = 0.;
    for (int64_t off = 0; off < n; off += 8192) res += pairwise(a + off, n - off < 8192 ? n - off : 8192);
    return res;
}

double ceval_np_mean(const double *a, int64_t n) { return ceval_np_sum(a, n) / (double)n; }

static int nthreads(int requested) {
#ifdef _OPENMP
    return requested > 0 ? requested : omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

/* One precision/recall curve from the true-positive events of a detection list sorted by
 * score: npos = number of true positives, ev_pos[j] / ev_fp[j] = position and false-positive
 * count of the (j+1)-th one, nd = list length. Exactly what accumulate() computes with full
 * arrays (rc = tp/npig, pr = tp/(fp+tp+eps), right-to-left maximum, searchsorted 'left'),
 * without them: between two true positives rc is flat and pr only falls, so
 *   - the first index with rc >= thr is the position of the j*-th true positive, with
 *     smallest count j* with j* / npig >= thr (or index 0 when j* = 0), and
 *   - the envelope there is the largest pr at true positives from j* on. */
static void curve(int64_t nd, int64_t npos, const int64_t *ev_pos, const int64_t *ev_fp, int64_t npig, const double *rec_thrs,
                  int R, const double *sc_sorted, const int64_t *sel, double *suffix, double *prec_out, int64_t pstride,
                  double *score_out, double *recall_out) {
    const double eps = 2.220446049250313e-16; /* np.spacing(1) */
    const double dn = (double)npig;
    *recall_out = nd ? (double)npos / dn : 0;
    /* suffix[j] = max pr over true positives j.. (0-based) */
    double run = 0;
    for (int64_t j = npos - 1; j >= 0; j--) {
        double tp = (double)(j + 1), p = tp / ((double)ev_fp[j] + tp + eps);
        if (j == npos - 1 || p > run) run = p;
        suffix[j] = run;
    }
    int stop = 0;
    for (int r = 0; r < R; r++) {
        double qv = 0, sv = 0, thr = rec_thrs[r];
        if (!stop) {
            int64_t idx = -1, js = -1; /* js: true positives needed, 0-based event index + 1 */
            if (nd > 0 && !isnan(thr)) {
                double guess = ceil(thr * dn);
                int64_t j = guess <= 0 ? 0 : guess > (double)npos + 1 ? npos + 1 : (int64_t)guess;
                while (j > 0 && (double)(j - 1) / dn >= thr) j--;
                while (j <= npos && !((double)j / dn >= thr)) j++;
                if (j == 0) { idx = 0; js = 0; }
                else if (j <= npos) { idx = ev_pos[j - 1]; js = j; }
            }
            if (idx < 0) {
                stop = 1; /* past the end: this and every later threshold stay 0 */
            } else {
                /* envelope at idx: the best precision from idx on */
                if (js == 0) qv = npos ? suffix[0] : 0;
                else qv = suffix[js - 1];
                sv = sc_sorted[sel[idx]];
            }
        }
        prec_out[(int64_t)r * pstride] = qv;
        score_out[(int64_t)r * pstride] = sv;
    }
}

int ceval_accumulate(const ceval_ev *ev, ceval_result *r) {
    const int64_t I = ev->I, K = ev->K;
    const int T = ev->T, R = ev->R, A = ev->A, M = ev->M;
    const int64_t AT = (int64_t)A * T;
    int64_t maxn = 0;
    for (int64_t k = 0; k < K; k++) {
        int64_t n = ev->u_doff[(k + 1) * I] - ev->u_doff[k * I];
        if (n > maxn) maxn = n;
    }
    int failed = 0;
    #pragma omp parallel num_threads(nthreads(ev->num_threads)) reduction(|| : failed)
    {
        size_t n1 = (size_t)(maxn + 1);
        int64_t *pos = malloc(sizeof(int64_t) * n1);  /* index inside its unit */
        int64_t *ord = malloc(sizeof(int64_t) * n1);  /* entries by score */
        int64_t *sel = malloc(sizeof(int64_t) * n1);  /* entries kept for one maxDet */
        int64_t *tmp = malloc(sizeof(int64_t) * n1);
        double *sc = malloc(sizeof(double) * n1);
        double *suffix = malloc(sizeof(double) * n1);
        int64_t *evp = malloc(sizeof(int64_t) * n1 * (size_t)AT); /* [x][j] true-positive events */
        int64_t *evf = malloc(sizeof(int64_t) * n1 * (size_t)AT);
        int64_t *ntp = malloc(sizeof(int64_t) * (size_t)AT), *nfp = malloc(sizeof(int64_t) * (size_t)AT);
        int64_t *npig = malloc(sizeof(int64_t) * (size_t)A);
        const uint8_t **src = malloc(sizeof(uint8_t *) * n1);
        int ok = pos && ord && sel && tmp && sc && suffix && evp && evf && ntp && nfp && npig && src;
        if (!ok) failed = 1;
        #pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < K; k++) {
            if (!ok) continue;
            for (int a = 0; a < A; a++) {
                npig[a] = 0;
                for (int64_t i = 0; i < I; i++) npig[a] += ev->u_npig[(k * I + i) * A + a];
            }
            /* Every kept detection of category k in image order, sorted once by score (stable).
             * For a smaller maxDet, np.argsort of the shorter concatenation gives the same
             * order as filtering this one: both are stable over the same relative order. */
            int64_t nall = 0;
            for (int64_t i = 0; i < I; i++) {
                int64_t u = k * I + i, D = ev->u_doff[u + 1] - ev->u_doff[u];
                for (int64_t j = 0; j < D; j++) {
                    pos[nall] = j;
                    sc[nall] = ev->u_scores[ev->u_doff[u] + j];
                    src[nall] = ev->u_flags + (ev->u_doff[u] + j) * AT;
                    ord[nall] = nall;
                    nall++;
                }
            }
            ceval_sort_by_score(ord, nall, sc, tmp);
            for (int m = 0; m < M; m++) {
                int64_t maxdet = ev->max_dets[m], nd = 0;
                for (int64_t q = 0; q < nall; q++)
                    if (pos[ord[q]] < maxdet) sel[nd++] = ord[q];
                /* one pass over the sorted list collects every curve's true positives */
                for (int64_t x = 0; x < AT; x++) ntp[x] = nfp[x] = 0;
                for (int64_t q = 0; q < nd; q++) {
                    const uint8_t *f = src[sel[q]];
                    for (int64_t x = 0; x < AT; x++) {
                        if (f[x] == 1) {
                            evp[x * (int64_t)n1 + ntp[x]] = q;
                            evf[x * (int64_t)n1 + ntp[x]] = nfp[x];
                            ntp[x]++;
                        } else if (f[x] == 2) {
                            nfp[x]++;
                        }
                    }
                }
                for (int a = 0; a < A; a++) {
                    if (npig[a] == 0) continue; /* precision and recall stay -1 */
                    for (int t = 0; t < T; t++) {
                        int64_t x = (int64_t)a * T + t;
                        size_t ri = (((size_t)t * (size_t)K + (size_t)k) * (size_t)A + (size_t)a) * (size_t)M + (size_t)m;
                        size_t pi = ((((size_t)t * (size_t)R) * (size_t)K + (size_t)k) * (size_t)A + (size_t)a) * (size_t)M +
                                    (size_t)m;
                        curve(nd, ntp[x], evp + x * (int64_t)n1, evf + x * (int64_t)n1, npig[a], ev->rec_thrs, R, sc, sel,
                              suffix, r->precision + pi, (int64_t)K * A * M, r->scores + pi, &r->recall[ri]);
                    }
                }
            }
        }
        free(pos); free(ord); free(sel); free(tmp); free(sc); free(suffix); free(evp); free(evf);
        free(ntp); free(nfp); free(npig); free(src);
    }
    if (failed) return nd_fail(ND_ERR_NOMEM, "out of memory in accumulate");
    return 0;
}

/* _summarize: mean of the entries > -1 of precision[t, :, :, aind, mind] (or recall), in
 * numpy's C order (t, r, k, then the broadcast maxDets matches), -1 when there are none. */
static double summarize_one(const ceval_result *r, int ap, double iou_thr, int has_thr, const char *area,
                            int64_t maxdet, double *buf) {
    int aind = -1;
    for (int a = 0; a < r->A; a++)
        if (strcmp(r->area_lbl[a], area) == 0) { aind = a; break; }
    int64_t n = 0;
    if (aind < 0) return -1;
    for (int t = 0; t < r->T; t++) {
        if (has_thr && !(r->iou_thrs[t] == iou_thr)) continue;
        int rn = ap ? r->R : 1;
        for (int rr = 0; rr < rn; rr++)
            for (int k = 0; k < r->K; k++)
                for (int m = 0; m < r->M; m++) {
                    if (r->max_dets[m] != maxdet) continue;
                    double v = ap ? r->precision[((((size_t)t * r->R + rr) * r->K + k) * r->A + aind) * r->M + m]
                                  : r->recall[(((size_t)t * r->K + k) * r->A + aind) * r->M + m];
                    if (v > -1) buf[n++] = v;
                }
    }
    return n ? ceval_np_mean(buf, n) : -1;
}

void ceval_summarize(ceval_result *r) {
    size_t cap = (size_t)r->T * r->R * r->K * r->M + 1;
    double *buf = malloc(sizeof(double) * cap);
    if (!buf) { /* cannot happen after accumulate's allocations of the same size; be safe */
        for (int i = 0; i < 12; i++) r->stats[i] = -1;
        r->nstats = r->iou_type == CEVAL_KEYPOINTS ? 10 : 12;
        return;
    }
    if (r->iou_type == CEVAL_KEYPOINTS) {
        r->nstats = 10;
        r->stats[0] = summarize_one(r, 1, 0, 0, "all", 20, buf);
        r->stats[1] = summarize_one(r, 1, .5, 1, "all", 20, buf);
        r->stats[2] = summarize_one(r, 1, .75, 1, "all", 20, buf);
        r->stats[3] = summarize_one(r, 1, 0, 0, "medium", 20, buf);
        r->stats[4] = summarize_one(r, 1, 0, 0, "large", 20, buf);
        r->stats[5] = summarize_one(r, 0, 0, 0, "all", 20, buf);
        r->stats[6] = summarize_one(r, 0, .5, 1, "all", 20, buf);
        r->stats[7] = summarize_one(r, 0, .75, 1, "all", 20, buf);
        r->stats[8] = summarize_one(r, 0, 0, 0, "medium", 20, buf);
        r->stats[9] = summarize_one(r, 0, 0, 0, "large", 20, buf);
        r->stats[10] = r->stats[11] = 0;
    } else {
        /* maxDets[0..2] of the sorted list; fewer than 3 is an IndexError in pycocotools,
         * here those lines use the last one */
        int64_t m0 = r->max_dets[0], m1 = r->max_dets[r->M > 1 ? 1 : r->M - 1], m2 = r->max_dets[r->M > 2 ? 2 : r->M - 1];
        r->nstats = 12;
        r->stats[0] = summarize_one(r, 1, 0, 0, "all", 100, buf);
        r->stats[1] = summarize_one(r, 1, .5, 1, "all", m2, buf);
        r->stats[2] = summarize_one(r, 1, .75, 1, "all", m2, buf);
        r->stats[3] = summarize_one(r, 1, 0, 0, "small", m2, buf);
        r->stats[4] = summarize_one(r, 1, 0, 0, "medium", m2, buf);
        r->stats[5] = summarize_one(r, 1, 0, 0, "large", m2, buf);
        r->stats[6] = summarize_one(r, 0, 0, 0, "all", m0, buf);
        r->stats[7] = summarize_one(r, 0, 0, 0, "all", m1, buf);
        r->stats[8] = summarize_one(r, 0, 0, 0, "all", m2, buf);
        r->stats[9] = summarize_one(r, 0, 0, 0, "small", m2, buf);
        r->stats[10] = summarize_one(r, 0, 0, 0, "medium", m2, buf);
        r->stats[11] = summarize_one(r, 0, 0, 0, "large", m2, buf);
    }
    /* per category: precision[:, :, k, area all, last maxDets] */
    for (int k = 0; k < r->K; k++) {
        int64_t n = 0;
        for (int t = 0; t < r->T; t++)
            for (int rr = 0; rr < r->R; rr++) {
                double v = r->precision[((((size_t)t * r->R + rr) * r->K + k) * r->A + 0) * r->M + (r->M - 1)];
                if (v > -1) buf[n++] = v;
            }
        r->per_cat_ap[k] = n ? ceval_np_mean(buf, n) : -1;
    }
    free(buf);
}
