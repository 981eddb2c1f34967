/* NMS: equal to torchvision.ops.nms / batched_nms on stored fixtures, and equal to a plain
 * transcription of torchvision's CPU loop on many random sets that stress the spatial index
 * (huge boxes, degenerate boxes, ties, classes, every threshold range). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "common/rng.h"
#include "common/status.h"
#include "detector/frcnn.h"
#include "tests/det_fixture.h"

static void expect_keep(const int64_t *got, int64_t n_got, const int64_t *want, int64_t n_want,
                        const char *what) {
    cr_assert_eq(n_got, n_want, "%s: kept %lld boxes, torchvision %lld", what, (long long)n_got,
                 (long long)n_want);
    for (int64_t i = 0; i < n_want; i++)
        cr_assert_eq(got[i], want[i], "%s: keep[%lld] = %lld, torchvision %lld", what,
                     (long long)i, (long long)got[i], (long long)want[i]);
}

static void check_fixture(const char *set, const char *keep_name, double thresh) {
    char name[64];
    int64_t nb, ns, nk;
    snprintf(name, sizeof name, "%s_boxes", set);
    float *boxes = fx_f32(name, &nb);
    snprintf(name, sizeof name, "%s_scores", set);
    float *scores = fx_f32(name, &ns);
    int64_t *want = fx_i64(keep_name, &nk);
    cr_assert_eq(nb, 4 * ns);
    int64_t *keep = malloc((size_t)ns * sizeof *keep), n_keep = -1;
    cr_assert_eq(det_nms(boxes, scores, ns, thresh, 0, keep, &n_keep), 0, "%s", nd_last_error());
    expect_keep(keep, n_keep, want, nk, keep_name);
    free(boxes);
    free(scores);
    free(want);
    free(keep);
}

Test(detector_nms, torchvision_ties) {
    check_fixture("nms_ties", "nms_ties_keep_03", 0.3);
    check_fixture("nms_ties", "nms_ties_keep_05", 0.5);
    check_fixture("nms_ties", "nms_ties_keep_07", 0.7);
}

Test(detector_nms, torchvision_degenerate_boxes) {
    check_fixture("nms_degen", "nms_degen_keep_00", 0.0);
    check_fixture("nms_degen", "nms_degen_keep_05", 0.5);
    check_fixture("nms_degen", "nms_degen_keep_m05", -0.5);
}

Test(detector_nms, torchvision_clustered) {
    check_fixture("nms_clustered", "nms_clustered_keep_05", 0.5);
}

static void check_batched(const char *set, const char *keep_name, double thresh) {
    char name[64];
    int64_t nb, ns, ni, nk;
    snprintf(name, sizeof name, "%s_boxes", set);
    float *boxes = fx_f32(name, &nb);
    snprintf(name, sizeof name, "%s_scores", set);
    float *scores = fx_f32(name, &ns);
    snprintf(name, sizeof name, "%s_idxs", set);
    int64_t *idxs = fx_i64(name, &ni);
    int64_t *want = fx_i64(keep_name, &nk);
    cr_assert(nb == 4 * ns && ni == ns);
    int64_t *keep = malloc((size_t)ns * sizeof *keep), n_keep = -1;
    cr_assert_eq(det_nms_batched(boxes, scores, idxs, ns, thresh, 0, keep, &n_keep), 0, "%s",
                 nd_last_error());
    expect_keep(keep, n_keep, want, nk, keep_name);
    free(boxes);
    free(scores);
    free(idxs);
    free(want);
    free(keep);
}

Test(detector_nms, torchvision_batched) {
    check_batched("bnms_small", "bnms_small_keep_05", 0.5);
    check_batched("bnms_large", "bnms_large_keep_06", 0.6);
}

/* ---- against a transcription of torchvision's CPU loop -------------------------------------- */

static const float *g_scores;
static int cmp_desc_stable(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (g_scores[i] > g_scores[j]) return -1;
    if (g_scores[i] < g_scores[j]) return 1;
    return (i > j) - (i < j);
}

static int64_t reference_nms(const float *b, const float *s, const int64_t *cls, int64_t n,
                             double thresh, int64_t *keep) {
    int64_t *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    char *sup = calloc((size_t)(n ? n : 1), 1);
    float *area = malloc((size_t)(n ? n : 1) * sizeof *area);
    for (int64_t i = 0; i < n; i++) {
        order[i] = i;
        area[i] = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
    }
    g_scores = s;
    qsort(order, (size_t)n, sizeof *order, cmp_desc_stable);
    int64_t k = 0;
    for (int64_t a = 0; a < n; a++) {
        int64_t i = order[a];
        if (sup[i]) continue;
        keep[k++] = i;
        for (int64_t c = a + 1; c < n; c++) {
            int64_t j = order[c];
            if (sup[j] || (cls && cls[i] != cls[j])) continue;
            float xx1 = fmaxf(b[4 * i], b[4 * j]), yy1 = fmaxf(b[4 * i + 1], b[4 * j + 1]);
            float xx2 = fminf(b[4 * i + 2], b[4 * j + 2]), yy2 = fminf(b[4 * i + 3], b[4 * j + 3]);
            float w = fmaxf(0.0f, xx2 - xx1), h = fmaxf(0.0f, yy2 - yy1);
            float inter = w * h;
            float ovr = inter / (area[i] + area[j] - inter);
            if ((double)ovr > thresh) sup[j] = 1;
        }
    }
    free(order);
    free(sup);
    free(area);
    return k;
}

/* Boxes of mixed kinds: clustered, a few covering the whole image, a few degenerate. */
static void random_set(nd_rng *r, int64_t n, float *b, float *s, int64_t *cls, int ties) {
    int centres = 1 + (int)nd_rng_below(r, 40);
    float cx[40], cy[40], sz[40];
    for (int c = 0; c < centres; c++) {
        cx[c] = (float)nd_rng_range(r, 0, 800);
        cy[c] = (float)nd_rng_range(r, 0, 800);
        sz[c] = (float)(8.0 * pow(40.0, nd_rng_uniform(r)));
    }
    for (int64_t i = 0; i < n; i++) {
        int c = (int)nd_rng_below(r, (uint64_t)centres);
        float w = sz[c] * (float)nd_rng_range(r, 0.6, 1.4), h = sz[c] * (float)nd_rng_range(r, 0.6, 1.4);
        float x = cx[c] + sz[c] * (float)nd_rng_range(r, -0.3, 0.3);
        float y = cy[c] + sz[c] * (float)nd_rng_range(r, -0.3, 0.3);
        uint64_t kind = nd_rng_below(r, 100);
        if (kind < 2) { /* huge */
            w = (float)nd_rng_range(r, 500, 1600);
            h = (float)nd_rng_range(r, 500, 1600);
        } else if (kind < 4) { /* empty or inverted */
            w = (float)nd_rng_range(r, -10, 0);
        } else if (kind < 6) {
            h = 0.0f;
        }
        b[4 * i] = x - w / 2;
        b[4 * i + 1] = y - h / 2;
        b[4 * i + 2] = x + w / 2;
        b[4 * i + 3] = y + h / 2;
        if (kind >= 6 && kind < 9 && i > 0) /* exact duplicate of an earlier box */
            for (int q = 0; q < 4; q++) b[4 * i + q] = b[4 * (i - 1) + q];
        s[i] = ties ? (float)nd_rng_below(r, 8) / 8.0f : (float)nd_rng_uniform(r);
        if (cls) cls[i] = (int64_t)nd_rng_below(r, 3) - 1; /* negative ids are ids too */
    }
}

Test(detector_nms, equals_torchvision_loop_on_random_sets) {
    static const double thresholds[] = {0.0, 0.3, 0.5, 0.7, 0.95, 1.0, -0.2};
    static const int64_t sizes[] = {0, 1, 2, 7, 60, 400, 2500};
    nd_rng r;
    nd_rng_seed(&r, 6);
    int64_t cap = 2500;
    float *b = malloc((size_t)cap * 4 * sizeof *b), *s = malloc((size_t)cap * sizeof *s);
    int64_t *cls = malloc((size_t)cap * sizeof *cls);
    int64_t *want = malloc((size_t)cap * sizeof *want), *got = malloc((size_t)cap * sizeof *got);
    int trials = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t ti = 0; ti < sizeof thresholds / sizeof *thresholds; ti++)
            for (int variant = 0; variant < 4; variant++) {
                int64_t n = sizes[si];
                int ties = variant & 1, batched = variant >> 1;
                if (n > 400 && thresholds[ti] < 0) continue; /* quadratic, and trivial */
                random_set(&r, n, b, s, batched ? cls : NULL, ties);
                int64_t nw = reference_nms(b, s, batched ? cls : NULL, n, thresholds[ti], want);
                int64_t ng = -1;
                int st = batched ? det_nms_batched(b, s, cls, n, thresholds[ti], 0, got, &ng)
                                 : det_nms(b, s, n, thresholds[ti], 0, got, &ng);
                cr_assert_eq(st, 0, "%s", nd_last_error());
                cr_assert_eq(ng, nw, "n %lld thresh %g variant %d: kept %lld, reference %lld",
                             (long long)n, thresholds[ti], variant, (long long)ng, (long long)nw);
                for (int64_t i = 0; i < nw; i++)
                    cr_assert_eq(got[i], want[i], "n %lld thresh %g variant %d: keep[%lld]",
                                 (long long)n, thresholds[ti], variant, (long long)i);
                /* max_keep gives exactly the first max_keep of the full answer */
                int64_t lim = nw / 2 + 1, nl = -1;
                st = batched ? det_nms_batched(b, s, cls, n, thresholds[ti], lim, got, &nl)
                             : det_nms(b, s, n, thresholds[ti], lim, got, &nl);
                cr_assert_eq(st, 0);
                cr_assert_eq(nl, nw < lim ? nw : lim);
                for (int64_t i = 0; i < nl; i++) cr_assert_eq(got[i], want[i]);
                trials++;
            }
    cr_expect_gt(trials, 150);
    free(b);
    free(s);
    free(cls);
    free(want);
    free(got);
}

Test(detector_nms, identical_boxes_keep_the_first_of_equal_scores) {
    float b[3 * 4] = {0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10};
    float s[3] = {0.5f, 0.5f, 0.5f};
    int64_t keep[3], n = -1;
    cr_assert_eq(det_nms(b, s, 3, 0.5, 0, keep, &n), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(keep[0], 0);
    /* IoU exactly 1 is not > 1 */
    cr_assert_eq(det_nms(b, s, 3, 1.0, 0, keep, &n), 0);
    cr_expect_eq(n, 3);
}

Test(detector_nms, bad_input_is_a_status) {
    float b[2 * 4] = {0, 0, 10, 10, 1, 1, 11, 11};
    float s[2] = {0.9f, NAN};
    int64_t keep[2], n = -1;
    cr_expect_eq(det_nms(b, s, 2, 0.5, 0, keep, &n), ND_ERR_NUMERIC);
    cr_expect_eq(n, 0);
    s[1] = 0.1f;
    b[5] = INFINITY;
    cr_expect_eq(det_nms(b, s, 2, 0.5, 0, keep, &n), ND_ERR_NUMERIC);
    cr_expect(strstr(nd_last_error(), "box 1") != NULL, "%s", nd_last_error());
    b[5] = 1;
    cr_expect_eq(det_nms(b, s, 2, NAN, 0, keep, &n), ND_ERR_NUMERIC);
    cr_expect_eq(det_nms(b, s, 2, 0.5, -1, keep, &n), ND_ERR_INVALID);
    cr_expect_eq(det_nms(b, s, -1, 0.5, 0, keep, &n), ND_ERR_INVALID);
    cr_expect_eq(det_nms(NULL, NULL, 0, 0.5, 0, NULL, &n), 0);
    cr_expect_eq(n, 0);
}

/* Cases at the edges of the index's pruning bounds: nested boxes whose IoU is exactly the
 * ratio of their sizes (the size bound is tight there), IoU right at the threshold one float
 * step either side, sizes over 10 orders of magnitude (more levels than the index keeps),
 * far-off coordinates, boxes of subnormal area and a threshold of almost 0. */
Test(detector_nms, equals_torchvision_loop_at_the_bounds) {
    enum { N = 600 };
    float *b = malloc(N * 4 * sizeof *b), *s = malloc(N * sizeof *s);
    int64_t want[N], got[N], ng;
    static const double thresholds[] = {0.0, 1e-9, 0.5, 0.7, 0.9};
    for (size_t ti = 0; ti < sizeof thresholds / sizeof *thresholds; ti++) {
        float t = (float)thresholds[ti];
        /* pairs: a wide box and a nested one of width ~ t * 10, stepping through floats */
        int n = 0;
        for (int k = -30; k < 30; k++, n += 2) {
            float w = t * 10.0f;
            for (int q = 0; q < (k < 0 ? -k : k); q++) w = nextafterf(w, k < 0 ? 0.0f : 100.0f);
            float y = 2.0f * (float)(k + 30); /* x stays 0: w keeps its last bits */
            float pair[8] = {0, y, 10, y + 1, 0, y, w, y + 1};
            for (int q = 0; q < 8; q++) b[4 * n + q] = pair[q];
            s[n] = 1.0f;
            s[n + 1] = 0.5f;
        }
        int64_t nw = reference_nms(b, s, NULL, n, t, want);
        cr_assert_eq(det_nms(b, s, n, t, 0, got, &ng), 0);
        cr_assert_eq(ng, nw, "nested, thresh %g", (double)t);
        if (t > 0) cr_expect(nw > n / 2 + 5 && nw < n - 5, "both sides of the threshold: %lld",
                             (long long)nw);
        for (int64_t i = 0; i < nw; i++) cr_assert_eq(got[i], want[i]);
    }
    nd_rng r;
    nd_rng_seed(&r, 11);
    for (int trial = 0; trial < 10; trial++) {
        double offset = trial < 4 ? 0.0 : 1e6 * (trial - 3);
        double scale = trial >= 8 ? 1e-22 : 1.0; /* areas in float's subnormal range */
        for (int i = 0; i < N; i++) {
            double size = pow(10.0, nd_rng_range(&r, -4, 6)); /* 1e-4 .. 1e6 */
            if (i % 3) size = (b[4 * (i - 1) + 2] - b[4 * (i - 1)]) / scale; /* similar neighbours */
            double x = offset + nd_rng_range(&r, 0, 1e3), y = offset + nd_rng_range(&r, 0, 1e3);
            double w = size * nd_rng_range(&r, 0.8, 1.25), h = size * nd_rng_range(&r, 0.2, 5);
            b[4 * i] = (float)(x * scale);
            b[4 * i + 1] = (float)(y * scale);
            b[4 * i + 2] = (float)((x + w) * scale);
            b[4 * i + 3] = (float)((y + h) * scale);
            s[i] = (float)nd_rng_uniform(&r);
        }
        for (size_t ti = 0; ti < sizeof thresholds / sizeof *thresholds; ti++) {
            int64_t nw = reference_nms(b, s, NULL, N, thresholds[ti], want);
            cr_assert_eq(det_nms(b, s, N, thresholds[ti], 0, got, &ng), 0);
            cr_assert_eq(ng, nw, "trial %d thresh %g", trial, thresholds[ti]);
            for (int64_t i = 0; i < nw; i++) cr_assert_eq(got[i], want[i]);
        }
    }
    free(b);
    free(s);
}
