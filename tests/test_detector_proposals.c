/* RPN proposals and detection post-processing against torchvision's filter_proposals and
 * postprocess_detections; the conv-layout helper. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "common/status.h"
#include "detector/frcnn.h"
#include "tests/det_fixture.h"

Test(detector_proposals, equal_torchvision_filter_proposals) {
    int64_t na, nw, ns;
    float *anchors = fx_f32("prop_anchors", &na), *obj = fx_f32("prop_objectness", NULL);
    float *deltas = fx_f32("prop_deltas", NULL), *want = fx_f32("prop_boxes", &nw);
    float *want_s = fx_f32("prop_scores", &ns);
    int64_t n = na / 4;
    /* the fixture's anchors are TF grid anchors with stride 16, offset 8: ours match them */
    det_anchor_params ap;
    det_anchor_params_default(&ap);
    ap.scales[0] = 0.125f, ap.scales[1] = 0.25f, ap.scales[2] = 0.5f, ap.scales[3] = 1.0f;
    ap.offset_x = ap.offset_y = 8.0f;
    float *mine = malloc((size_t)na * sizeof *mine);
    cr_assert_eq(det_anchors_grid(&ap, 5, 7, mine), 0);
    fx_expect_close(mine, anchors, na, 0.0f, 0.0f, "anchors");
    det_proposal_params p;
    det_proposal_params_default(&p);
    p.pre_nms_top_n = 200;
    p.post_nms_top_n = 60;
    float boxes[60 * 4], scores[60];
    int64_t src[60], got = -1;
    cr_assert_eq(det_rpn_proposals(anchors, obj, deltas, n, 144.0f, 112.0f, &p, boxes, scores, src,
                                   &got),
                 0, "%s", nd_last_error());
    cr_assert_eq(got, ns, "proposals: %lld, torchvision %lld", (long long)got, (long long)ns);
    fx_expect_close(boxes, want, nw, 1e-4f, 1e-5f, "boxes");
    fx_expect_close(scores, want_s, ns, 1e-6f, 1e-6f, "scores");
    for (int64_t i = 0; i < got; i++) {
        cr_expect_float_eq(scores[i], 1.0f / (1.0f + expf(-obj[src[i]])), 1e-6, "source anchor");
        if (i) cr_assert_leq(scores[i], scores[i - 1]);
        cr_assert(boxes[4 * i] >= 0 && boxes[4 * i + 2] <= 144 && boxes[4 * i + 3] <= 112);
    }
    /* score threshold: keeps exactly those >= thresh */
    p.score_thresh = scores[10];
    cr_assert_eq(det_rpn_proposals(anchors, obj, deltas, n, 144.0f, 112.0f, &p, boxes, scores,
                                   NULL, &got),
                 0);
    cr_expect_eq(got, 11);
    /* a NaN logit is a status, not a crash */
    obj[3] = NAN;
    cr_expect_eq(det_rpn_proposals(anchors, obj, deltas, n, 144.0f, 112.0f, &p, boxes, scores,
                                   NULL, &got),
                 ND_ERR_NUMERIC);
    cr_expect_eq(det_rpn_proposals(anchors, obj, deltas, n, 0.0f, 112.0f, &p, boxes, scores,
                                   NULL, &got),
                 ND_ERR_INVALID);
    free(anchors);
    free(obj);
    free(deltas);
    free(want);
    free(want_s);
    free(mine);
}

Test(detector_proposals, infinite_deltas_are_clipped_or_dropped) {
    float anchors[3 * 4] = {0, 0, 32, 32, 10, 10, 60, 60, 40, 40, 80, 80};
    float obj[3] = {3.0f, 2.0f, 1.0f};
    float deltas[3 * 4] = {INFINITY, 0, 0, 0, NAN, 0, 0, 0, 0, 0, -INFINITY, 0};
    det_proposal_params p;
    det_proposal_params_default(&p);
    float boxes[3 * 4], scores[3];
    int64_t src[3], got = -1;
    cr_assert_eq(det_rpn_proposals(anchors, obj, deltas, 3, 100, 100, &p, boxes, scores, src, &got),
                 0, "%s", nd_last_error());
    /* anchor 0 slides to +inf and is clipped to a zero-width box at x = 100: dropped; anchor 1
     * is NaN: dropped; anchor 2 gets width 0: dropped */
    cr_expect_eq(got, 0);
}

Test(detector_proposals, conv_layout_to_anchor_order) {
    /* A = 2 anchors, k = 4, H = 2, W = 3: src[(a*4 + c) * 6 + y*3 + x] */
    float src[2 * 4 * 6], dst[2 * 4 * 6];
    for (int i = 0; i < 48; i++) src[i] = (float)i;
    det_rpn_to_anchor_order(src, 2, 4, 2, 3, dst);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int a = 0; a < 2; a++)
                for (int c = 0; c < 4; c++)
                    cr_assert_eq(dst[((y * 3 + x) * 2 + a) * 4 + c], src[(a * 4 + c) * 6 + y * 3 + x]);
}

Test(detector_postprocess, equals_torchvision_postprocess_detections) {
    int64_t np, nprob, nw, ns, nl;
    float *props = fx_f32("post_proposals", &np), *probs = fx_f32("post_probs", &nprob);
    float *deltas = fx_f32("post_deltas", NULL), *want = fx_f32("post_boxes", &nw);
    float *want_s = fx_f32("post_scores", &ns);
    int64_t *want_l = fx_i64("post_labels", &nl);
    int64_t n = np / 4, c = nprob / n;
    cr_assert_eq(c, 6);
    det_detect_params p;
    det_detect_params_default(&p);
    float boxes[100 * 4], scores[100];
    int64_t labels[100], got = -1;
    cr_assert_eq(det_detect_postprocess(props, probs, deltas, n, c, 200.0f, 160.0f, &p, boxes,
                                        scores, labels, &got),
                 0, "%s", nd_last_error());
    cr_assert_eq(got, ns, "detections: %lld, torchvision %lld", (long long)got, (long long)ns);
    cr_assert_eq(got, 100, "fixture reaches the detections-per-image cap");
    fx_expect_close(boxes, want, nw, 1e-4f, 1e-5f, "boxes");
    fx_expect_close(scores, want_s, ns, 0.0f, 0.0f, "scores");
    for (int64_t i = 0; i < nl; i++) cr_assert_eq(labels[i], want_l[i], "label %lld", (long long)i);
    /* max_dets 5 gives the first five of the full answer */
    p.max_dets = 5;
    cr_assert_eq(det_detect_postprocess(props, probs, deltas, n, c, 200.0f, 160.0f, &p, boxes,
                                        scores, labels, &got),
                 0);
    cr_expect_eq(got, 5);
    for (int64_t i = 0; i < 5; i++) cr_expect_eq(labels[i], want_l[i]);
    p.max_dets = 100;
    p.score_thresh = 2.0f; /* probabilities never exceed 1 */
    cr_assert_eq(det_detect_postprocess(props, probs, deltas, n, c, 200.0f, 160.0f, &p, boxes,
                                        scores, labels, &got),
                 0);
    cr_expect_eq(got, 0);
    cr_expect_eq(det_detect_postprocess(props, probs, deltas, n, 1, 200.0f, 160.0f, &p, boxes,
                                        scores, labels, &got),
                 ND_ERR_INVALID);
    probs[7] = NAN;
    cr_expect_eq(det_detect_postprocess(props, probs, deltas, n, c, 200.0f, 160.0f, &p, boxes,
                                        scores, labels, &got),
                 ND_ERR_NUMERIC);
    free(props);
    free(probs);
    free(deltas);
    free(want);
    free(want_s);
    free(want_l);
}
