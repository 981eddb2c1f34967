/* Weighted box fusion of test-time passes (det_fuse_boxes): hand-worked cases for the fused
 * box (score-weighted mean), the score (mean over the passes trusted for the box's size), the
 * clustering (per class, by IoU with the fused box), the ordering and limits, and bad input. */
#include <criterion/criterion.h>
#include <math.h>

#include "common/status.h"
#include "detector/frcnn.h"

/* Two passes: the base (scale 1, trusted from 10 px up) and one at 2x trusted under 40 px of
 * its own input, i.e. under 20 image pixels. */
static const float scale2[2] = {1, 2}, min2[2] = {10, 0}, max2[2] = {0, 40};
static const det_fuse_passes two = {2, scale2, min2, max2};

typedef struct fused {
    float boxes[16 * 4], scores[16];
    int32_t classes[16];
    int64_t n;
} fused;

static int fuse(const float *boxes, const float *scores, const int32_t *classes, const int32_t *pass, int64_t n,
                const det_fuse_passes *p, float score_thresh, int64_t max_dets, fused *f) {
    return det_fuse_boxes(boxes, scores, classes, pass, n, p, 0.55f, score_thresh, max_dets, f->boxes, f->scores,
                          f->classes, &f->n);
}

Test(fusion, agreeing_passes_average_box_and_score) {
    /* a 16x16 object both passes trust: boxes 1 px apart, scores .9 and .6 */
    float boxes[] = {10, 10, 26, 26, 11, 11, 27, 27};
    float scores[] = {0.9f, 0.6f};
    int32_t classes[] = {3, 3}, pass[] = {0, 1};
    fused f;
    cr_assert_eq(fuse(boxes, scores, classes, pass, 2, &two, 0, 100, &f), 0, "%s", nd_last_error());
    cr_assert_eq(f.n, 1);
    cr_expect_eq(f.classes[0], 3);
    for (int q = 0; q < 4; q++) { /* (.9 * 10 + .6 * 11) / 1.5 = 10.4 */
        float want = (0.9f * boxes[q] + 0.6f * boxes[4 + q]) / 1.5f;
        cr_expect_float_eq(f.boxes[q], want, 1e-5f, "coordinate %d: %g, want %g", q, f.boxes[q], want);
    }
    cr_expect_float_eq(f.scores[0], 0.75f, 1e-6f);
}

Test(fusion, a_box_one_trusted_pass_missed_is_damped) {
    /* only the base pass found this 16x16 object, which the 2x pass also trusts: (.8 + 0) / 2 */
    float boxes[] = {10, 10, 26, 26};
    float scores[] = {0.8f};
    int32_t classes[] = {1}, pass[] = {0};
    fused f;
    cr_assert_eq(fuse(boxes, scores, classes, pass, 1, &two, 0, 100, &f), 0);
    cr_assert_eq(f.n, 1);
    cr_expect_float_eq(f.scores[0], 0.4f, 1e-6f);
    /* a 30x30 one is beyond the 2x pass (60 px of its input): the base alone decides */
    float big[] = {10, 10, 40, 40};
    cr_assert_eq(fuse(big, scores, classes, pass, 1, &two, 0, 100, &f), 0);
    cr_expect_float_eq(f.scores[0], 0.8f, 1e-6f);
    /* a 6x6 one is below the base's 10 px: the 2x pass alone decides; here it found it */
    float small[] = {10, 10, 16, 16};
    int32_t pass1[] = {1};
    cr_assert_eq(fuse(small, scores, classes, pass1, 1, &two, 0, 100, &f), 0);
    cr_expect_float_eq(f.scores[0], 0.8f, 1e-6f);
    /* where no pass is trusted for the fused size, the contributing ones are averaged */
    const float mn[2] = {50, 0}, mx[2] = {0, 8};
    det_fuse_passes none = {2, scale2, mn, mx};
    cr_assert_eq(fuse(boxes, scores, classes, pass, 1, &none, 0, 100, &f), 0);
    cr_expect_float_eq(f.scores[0], 0.8f, 1e-6f);
}

Test(fusion, clusters_by_class_and_overlap) {
    float boxes[] = {
        0,  0,  16, 16, /* class 1, pass 0; 16 px: both passes trusted */
        0,  0,  16, 16, /* class 2, same place: never fused with class 1 */
        10, 0,  26, 16, /* class 1, IoU 6*16 / (2*256 - 96) = 0.23 with the first: its own cluster */
        1,  0,  17, 16, /* class 1, pass 1, IoU 15/17 with the first: joins it */
        0,  1,  16, 17, /* class 1, pass 1 again: also joins; the pass's best score counts once */
    };
    float scores[] = {0.9f, 0.7f, 0.5f, 0.6f, 0.3f};
    int32_t classes[] = {1, 2, 1, 1, 1}, pass[] = {0, 0, 0, 1, 1};
    fused f;
    cr_assert_eq(fuse(boxes, scores, classes, pass, 5, &two, 0, 100, &f), 0, "%s", nd_last_error());
    cr_assert_eq(f.n, 3);
    /* class 1 fused: (.9 + .6) / 2; class 2 alone: .7 / 2; the far class-1 box: .5 / 2 */
    cr_expect_eq(f.classes[0], 1);
    cr_expect_float_eq(f.scores[0], 0.75f, 1e-6f);
    cr_expect_eq(f.classes[1], 2);
    cr_expect_float_eq(f.scores[1], 0.35f, 1e-6f);
    cr_expect_eq(f.classes[2], 1);
    cr_expect_float_eq(f.scores[2], 0.25f, 1e-6f);
    float w = 0.9f + 0.6f + 0.3f, want_x1 = (0.6f * 1) / w, want_y2 = (0.9f * 16 + 0.6f * 16 + 0.3f * 17) / w;
    cr_expect_float_eq(f.boxes[0], want_x1, 1e-5f);
    cr_expect_float_eq(f.boxes[3], want_y2, 1e-5f);
    cr_expect_arr_eq(f.boxes + 8, boxes + 8, 4 * sizeof(float));
    /* threshold (strictly above) and max_dets, best first */
    cr_assert_eq(fuse(boxes, scores, classes, pass, 5, &two, 0.35f, 100, &f), 0);
    cr_expect_eq(f.n, 1);
    cr_assert_eq(fuse(boxes, scores, classes, pass, 5, &two, 0, 2, &f), 0);
    cr_expect(f.n == 2 && f.classes[1] == 2);
    cr_assert_eq(fuse(boxes, scores, classes, pass, 0, &two, 0, 2, &f), 0);
    cr_expect_eq(f.n, 0);
}

Test(fusion, single_pass_nms_output_is_unchanged) {
    /* boxes that per-class NMS at 0.5 kept overlap each other by at most 0.5 < 0.55: nothing
     * fuses, and with one pass each keeps its box and score, in score order */
    float boxes[] = {0, 0, 10, 10, 5, 0, 15, 10, 30, 30, 40, 44, 0, 0, 10, 10};
    float scores[] = {0.3f, 0.8f, 0.5f, 0.3f};
    int32_t classes[] = {0, 0, 0, 1}, pass[] = {0, 0, 0, 0};
    const float sc[1] = {1}, mn[1] = {0}, mx[1] = {0};
    det_fuse_passes one = {1, sc, mn, mx};
    fused f;
    cr_assert_eq(fuse(boxes, scores, classes, pass, 4, &one, 0, 100, &f), 0);
    cr_assert_eq(f.n, 4);
    const int order[4] = {1, 2, 0, 3}; /* by score, equal scores in input order */
    for (int k = 0; k < 4; k++) {
        cr_expect_arr_eq(f.boxes + 4 * k, boxes + 4 * order[k], 4 * sizeof(float), "rank %d", k);
        cr_expect_eq(f.scores[k], scores[order[k]]);
        cr_expect_eq(f.classes[k], classes[order[k]]);
    }
}

Test(fusion, bad_input) {
    float boxes[] = {0, 0, 10, 10};
    float scores[] = {0.5f}, nan_score[] = {NAN};
    int32_t classes[] = {0}, bad_pass[] = {2}, pass[] = {0};
    fused f;
    cr_expect_eq(fuse(boxes, scores, classes, bad_pass, 1, &two, 0, 100, &f), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "pass 2 of 2"), "%s", nd_last_error());
    cr_expect_eq(fuse(boxes, nan_score, classes, pass, 1, &two, 0, 100, &f), ND_ERR_NUMERIC);
    const float zero[2] = {0, 0};
    det_fuse_passes bad_scale = {2, zero, min2, max2};
    cr_expect_eq(fuse(boxes, scores, classes, pass, 1, &bad_scale, 0, 100, &f), ND_ERR_INVALID);
    cr_expect_eq(det_fuse_boxes(boxes, scores, classes, pass, 1, &two, 1.5f, 0, 100, f.boxes, f.scores, f.classes,
                                &f.n),
                 ND_ERR_INVALID);
}
