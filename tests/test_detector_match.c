/* Matching (torchvision Matcher + the crowd rule), balanced sampling, GT appended to
 * proposals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "common/rng.h"
#include "common/status.h"
#include "detector/frcnn.h"
#include "tests/det_fixture.h"

static void expect_matches(const int64_t *got, const int64_t *want, int64_t n, const char *what) {
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "%s[%lld] = %lld, torchvision %lld", what, (long long)i,
                     (long long)got[i], (long long)want[i]);
}

Test(detector_match, boxes_equal_torchvision_matcher) {
    int64_t ng, nb, nr;
    float *gt = fx_f32("match_gt", &ng), *boxes = fx_f32("match_boxes", &nb);
    int64_t *want_rpn = fx_i64("match_rpn", &nr), *want_roi = fx_i64("match_roi", NULL);
    cr_assert_eq(nr, nb / 4);
    int64_t *got = malloc((size_t)nr * sizeof *got);
    det_match_params p;
    det_match_params_rpn(&p);
    cr_assert_eq(det_match_boxes(gt, NULL, ng / 4, boxes, nr, &p, got), 0, "%s", nd_last_error());
    expect_matches(got, want_rpn, nr, "rpn");
    int pos = 0, neg = 0, ign = 0;
    for (int64_t i = 0; i < nr; i++) {
        pos += got[i] >= 0;
        neg += got[i] == DET_MATCH_BELOW;
        ign += got[i] == DET_MATCH_IGNORE;
    }
    cr_expect(pos > 0 && neg > 0 && ign > 0, "fixture covers all three: %d %d %d", pos, neg, ign);
    det_match_params_roi(&p);
    cr_assert_eq(det_match_boxes(gt, NULL, ng / 4, boxes, nr, &p, got), 0);
    expect_matches(got, want_roi, nr, "roi");
    free(gt);
    free(boxes);
    free(want_rpn);
    free(want_roi);
    free(got);
}

Test(detector_match, quality_ties_equal_torchvision) {
    int64_t nq;
    float *q = fx_f32("match_ties_q", &nq);
    int64_t *want_low = fx_i64("match_ties_low", NULL), *want = fx_i64("match_ties_nolow", NULL);
    int64_t got[6];
    cr_assert_eq(nq, 18);
    cr_assert_eq(det_match_quality(q, 3, 6, 0.7f, 0.3f, 1, got), 0);
    expect_matches(got, want_low, 6, "low quality");
    cr_assert_eq(det_match_quality(q, 3, 6, 0.7f, 0.3f, 0, got), 0);
    expect_matches(got, want, 6, "plain");
    free(q);
    free(want_low);
    free(want);
}

Test(detector_match, no_ground_truth_means_all_negative) {
    float boxes[2 * 4] = {0, 0, 10, 10, 5, 5, 20, 20};
    int64_t got[2] = {7, 7};
    det_match_params p;
    det_match_params_rpn(&p);
    cr_assert_eq(det_match_boxes(NULL, NULL, 0, boxes, 2, &p, got), 0);
    cr_expect(got[0] == DET_MATCH_BELOW && got[1] == DET_MATCH_BELOW);
}

Test(detector_match, crowd_boxes_turn_touching_negatives_into_ignored) {
    /* gt 0: a crowd region on the left; gt 1: a real object on the right */
    float gt[2 * 4] = {0, 0, 100, 100, 200, 0, 260, 60};
    uint8_t crowd[2] = {1, 0};
    float boxes[5 * 4] = {
        10, 10, 50, 50,     /* inside the crowd: negative -> ignored */
        90, 0, 130, 40,     /* a quarter inside the crowd */
        140, 140, 180, 180, /* far from both: stays negative */
        200, 0, 260, 60,    /* the real object: positive, index 1 of the caller's array */
        0, 0, 100, 100,     /* exactly the crowd box: still never a positive */
    };
    det_match_params p;
    det_match_params_rpn(&p);
    int64_t got[5];
    cr_assert_eq(det_match_boxes(gt, crowd, 2, boxes, 5, &p, got), 0, "%s", nd_last_error());
    cr_expect_eq(got[0], DET_MATCH_IGNORE);
    cr_expect_eq(got[1], DET_MATCH_IGNORE);
    cr_expect_eq(got[2], DET_MATCH_BELOW);
    cr_expect_eq(got[3], 1);
    cr_expect_eq(got[4], DET_MATCH_IGNORE);
    /* with crowd_ioa 0.5, the box a quarter inside is a plain negative again */
    p.crowd_ioa = 0.5f;
    cr_assert_eq(det_match_boxes(gt, crowd, 2, boxes, 5, &p, got), 0);
    cr_expect_eq(got[0], DET_MATCH_IGNORE);
    cr_expect_eq(got[1], DET_MATCH_BELOW);
    /* without the flags the crowd box is an object like any other */
    cr_assert_eq(det_match_boxes(gt, NULL, 2, boxes, 5, &p, got), 0);
    cr_expect_eq(got[4], 0);
}

Test(detector_match, bad_thresholds_are_a_status) {
    float q[2] = {0.5f, 0.2f};
    int64_t got[2];
    cr_expect_eq(det_match_quality(q, 1, 2, 0.3f, 0.7f, 0, got), ND_ERR_INVALID);
    cr_expect_eq(det_match_quality(q, 1, 2, NAN, 0.3f, 0, got), ND_ERR_INVALID);
    det_match_params p;
    det_match_params_rpn(&p);
    p.crowd_ioa = 2.0f;
    float box[4] = {0, 0, 1, 1};
    cr_expect_eq(det_match_boxes(box, NULL, 1, box, 1, &p, got), ND_ERR_INVALID);
}

Test(detector_sample, balanced_counts_and_seeded) {
    enum { N = 5000 };
    static int64_t matches[N];
    nd_rng r;
    nd_rng_seed(&r, 1);
    int npos = 0, nneg = 0;
    for (int i = 0; i < N; i++) {
        uint64_t k = nd_rng_below(&r, 100);
        matches[i] = k < 2 ? (int64_t)(k + 3) : k < 60 ? DET_MATCH_BELOW : DET_MATCH_IGNORE;
        npos += matches[i] >= 0;
        nneg += matches[i] == DET_MATCH_BELOW;
    }
    cr_assert(npos > 64 && npos < 128, "fixture: %d positives", npos);
    int64_t pos[512], neg[512], np, nn;
    nd_rng a, b;
    nd_rng_seed(&a, 42);
    /* RPN: 256, half positive; fewer positives than 128 -> negatives fill the batch */
    cr_assert_eq(det_sample_balanced(matches, N, 256, 0.5f, &a, pos, &np, neg, &nn), 0);
    cr_expect_eq(np, npos);
    cr_expect_eq(nn, 256 - npos);
    for (int64_t i = 0; i < np; i++) {
        cr_assert(matches[pos[i]] >= 0);
        if (i) cr_assert_gt(pos[i], pos[i - 1], "increasing, no repeats");
    }
    for (int64_t i = 0; i < nn; i++) {
        cr_assert_eq(matches[neg[i]], DET_MATCH_BELOW);
        if (i) cr_assert_gt(neg[i], neg[i - 1]);
    }
    /* ROI: 512 a quarter positive */
    int64_t pos2[512], neg2[512], np2, nn2;
    cr_assert_eq(det_sample_balanced(matches, N, 512, 0.25f, &a, pos2, &np2, neg2, &nn2), 0);
    cr_expect_eq(np2, 128 < npos ? 128 : npos);
    cr_expect_eq(nn2, 512 - np2);
    /* same seed, same draw; another seed, another draw */
    nd_rng_seed(&b, 42);
    int64_t pos3[512], neg3[512], np3, nn3;
    cr_assert_eq(det_sample_balanced(matches, N, 256, 0.5f, &b, pos3, &np3, neg3, &nn3), 0);
    cr_assert(np3 == np && nn3 == nn);
    for (int64_t i = 0; i < nn; i++) cr_assert_eq(neg3[i], neg[i]);
    nd_rng_seed(&b, 43);
    cr_assert_eq(det_sample_balanced(matches, N, 256, 0.5f, &b, pos3, &np3, neg3, &nn3), 0);
    int differ = 0;
    for (int64_t i = 0; i < nn; i++) differ |= neg3[i] != neg[i];
    cr_expect(differ);
}

Test(detector_sample, draw_is_uniform) {
    /* 4 positives, take 2 each time: each should be drawn about half the time */
    int64_t matches[10] = {0, -1, 1, -1, 2, -1, 3, -2, -1, -1};
    int hits[10] = {0};
    nd_rng r;
    nd_rng_seed(&r, 7);
    for (int t = 0; t < 4000; t++) {
        int64_t pos[4], neg[4], np, nn;
        cr_assert_eq(det_sample_balanced(matches, 10, 4, 0.5f, &r, pos, &np, neg, &nn), 0);
        cr_assert(np == 2 && nn == 2);
        for (int i = 0; i < 2; i++) hits[pos[i]]++, hits[neg[i]]++;
    }
    for (int i = 0; i < 10; i++) {
        if (matches[i] >= 0) cr_expect(hits[i] > 1800 && hits[i] < 2200, "pos %d: %d", i, hits[i]);
        else if (matches[i] == -1) cr_expect(hits[i] > 1400 && hits[i] < 1800, "neg %d: %d", i, hits[i]);
        else cr_expect_eq(hits[i], 0);
    }
}

Test(detector_sample, bad_arguments_are_a_status) {
    int64_t m[1] = {0}, pos[1], neg[1], np, nn;
    nd_rng r;
    nd_rng_seed(&r, 1);
    cr_expect_eq(det_sample_balanced(m, 1, 1, 1.5f, &r, pos, &np, neg, &nn), ND_ERR_INVALID);
    cr_expect_eq(det_sample_balanced(m, 1, -1, 0.5f, &r, pos, &np, neg, &nn), ND_ERR_INVALID);
}

Test(detector_sample, gt_appended_to_proposals) {
    float props[2 * 4] = {0, 0, 1, 1, 2, 2, 3, 3};
    float gt[3 * 4] = {10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 60, 60};
    uint8_t crowd[3] = {0, 1, 0};
    float out[5 * 4];
    cr_assert_eq(det_proposals_append_gt(props, 2, gt, crowd, 3, out), 4);
    cr_expect(out[4] == 2 && out[8] == 10 && out[12] == 50 && out[15] == 60);
    cr_assert_eq(det_proposals_append_gt(props, 2, gt, NULL, 3, out), 5);
    cr_expect(out[12] == 30);
}

Test(detector_match, nan_quality_never_wins_and_bad_boxes_are_a_status) {
    /* column 0: NaN for gt 0, 0.8 for gt 1 -> gt 1; column 1: NaN everywhere -> negative */
    float q[2 * 2] = {NAN, NAN, 0.8f, NAN};
    int64_t got[2];
    cr_assert_eq(det_match_quality(q, 2, 2, 0.7f, 0.3f, 1, got), 0);
    cr_expect_eq(got[0], 1);
    cr_expect_eq(got[1], DET_MATCH_BELOW);
    float gt[4] = {0, 0, NAN, 10}, boxes[4] = {0, 0, 10, 10};
    det_match_params p;
    det_match_params_rpn(&p);
    cr_expect_eq(det_match_boxes(gt, NULL, 1, boxes, 1, &p, got), ND_ERR_NUMERIC);
    gt[2] = 10;
    boxes[3] = INFINITY;
    cr_expect_eq(det_match_boxes(gt, NULL, 1, boxes, 1, &p, got), ND_ERR_NUMERIC);
}
