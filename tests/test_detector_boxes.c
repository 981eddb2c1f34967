/* Anchors (TF grid anchors), box coding (torchvision BoxCoder), IoU, clipping, minimum size. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "common/status.h"
#include "detector/frcnn.h"
#include "tests/det_fixture.h"

Test(detector_anchors, default_grid_equals_tf_tile_anchors) {
    det_anchor_params p;
    det_anchor_params_default(&p);
    cr_assert_eq(det_anchors_per_location(&p), 12);
    int64_t n;
    float *want = fx_f32("anc_default", &n);
    cr_assert_eq(n, 3 * 5 * 12 * 4);
    float got[3 * 5 * 12 * 4];
    cr_assert_eq(det_anchors_grid(&p, 3, 5, got), 0, "%s", nd_last_error());
    fx_expect_close(got, want, n, 0.0f, 0.0f, "anchors");
    /* the paper's numbers, by hand: location (0,0), ratio 0.5 (w/h), scale 0.25 of 256 ->
     * h = 64 * sqrt 2, w = 64 / sqrt 2, centred on (0, 0) */
    cr_expect_float_eq(got[2] - got[0], 64.0f / sqrtf(2.0f), 1e-4);
    cr_expect_float_eq(got[3] - got[1], 64.0f * sqrtf(2.0f), 1e-4);
    cr_expect_float_eq(got[0] + got[2], 0.0f, 1e-6);
    /* anchor k = 4: ratio 1, scale 0.25 -> 64 x 64; location (1, 2) starts at 12 * (5 + 2) */
    const float *a = got + 4 * (12 * (1 * 5 + 2) + 4);
    cr_expect_float_eq(a[0], 32.0f - 32.0f, 1e-6);
    cr_expect_float_eq(a[1], 16.0f - 32.0f, 1e-6);
    cr_expect_float_eq(a[2], 32.0f + 32.0f, 1e-6);
    cr_expect_float_eq(a[3], 16.0f + 32.0f, 1e-6);
    free(want);
}

Test(detector_anchors, custom_grid_equals_tf_tile_anchors) {
    det_anchor_params p = {.scales = {0.5f, 1.0f}, .n_scales = 2, .ratios = {1.0f, 3.0f},
                           .n_ratios = 2, .base_h = 64, .base_w = 32, .stride_y = 8,
                           .stride_x = 12, .offset_y = 4, .offset_x = 6};
    int64_t n;
    float *want = fx_f32("anc_custom", &n);
    cr_assert_eq(n, 2 * 3 * 4 * 4);
    float got[2 * 3 * 4 * 4];
    cr_assert_eq(det_anchors_grid(&p, 2, 3, got), 0, "%s", nd_last_error());
    fx_expect_close(got, want, n, 0.0f, 0.0f, "anchors");
    free(want);
}

Test(detector_anchors, bad_parameters_are_a_status) {
    det_anchor_params p;
    float out[64];
    det_anchor_params_default(&p);
    p.n_scales = 0;
    cr_expect_eq(det_anchors_grid(&p, 1, 1, out), ND_ERR_INVALID);
    det_anchor_params_default(&p);
    p.ratios[1] = -1.0f;
    cr_expect_eq(det_anchors_grid(&p, 1, 1, out), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "aspect ratio 1") != NULL, "%s", nd_last_error());
    det_anchor_params_default(&p);
    p.stride_x = NAN;
    cr_expect_eq(det_anchors_grid(&p, 1, 1, out), ND_ERR_INVALID);
    det_anchor_params_default(&p);
    p.n_ratios = DET_ANCHOR_MAX_RATIOS + 1;
    cr_expect_eq(det_anchors_grid(&p, 1, 1, out), ND_ERR_INVALID);
    det_anchor_params_default(&p);
    cr_expect_eq(det_anchors_grid(&p, -1, 4, out), ND_ERR_INVALID);
    cr_expect_eq(det_anchors_grid(&p, 0, 4, NULL), 0);
}

Test(detector_boxes, iou_equals_torchvision) {
    int64_t na, nb, no;
    float *a = fx_f32("iou_a", &na), *b = fx_f32("iou_b", &nb), *want = fx_f32("iou_out", &no);
    cr_assert_eq(no, (na / 4) * (nb / 4));
    float *got = malloc((size_t)no * sizeof *got);
    det_box_iou(a, na / 4, b, nb / 4, got);
    fx_expect_close(got, want, no, 0.0f, 0.0f, "iou");
    cr_expect_float_eq(got[3 * (nb / 4) + 2], 1.0f, 0, "identical boxes");
    free(a);
    free(b);
    free(want);
    free(got);
}

Test(detector_boxes, encode_decode_equal_torchvision) {
    det_box_coder c;
    det_box_coder_default(&c);
    cr_expect_float_eq(c.clip, 4.1351666f, 1e-6);
    int64_t n;
    float *ref = fx_f32("enc_ref", &n), *tgt = fx_f32("enc_target", NULL);
    float *want = fx_f32("enc_deltas", NULL);
    float *got = malloc((size_t)n * sizeof *got);
    det_box_encode(&c, tgt, ref, n / 4, got);
    /* logf and PyTorch's vectorised log may differ by an ulp */
    fx_expect_close(got, want, n, 1e-6f, 1e-6f, "encode");
    /* round trip: decode(encode(t)) = t */
    float *back = malloc((size_t)n * sizeof *back);
    det_box_decode(&c, got, ref, n / 4, back);
    fx_expect_close(back, tgt, n, 1e-3f, 1e-5f, "round trip");
    free(want);
    free(ref);
    float *dref = fx_f32("dec_ref", &n), *d = fx_f32("dec_deltas", NULL);
    want = fx_f32("dec_boxes", NULL);
    det_box_decode(&c, d, dref, n / 4, got);
    fx_expect_close(got, want, n, 1e-4f, 1e-6f, "decode");
    /* the first five have dw/5, dh/5 above the clip: width = exp(clip) * w = 62.5 w */
    float w0 = dref[2] - dref[0];
    cr_expect_float_eq(got[2] - got[0], 62.5f * w0, 1e-3f * w0);
    /* decoding in place (boxes aliasing deltas) gives the same */
    det_box_decode(&c, d, dref, n / 4, d);
    fx_expect_close(d, got, n, 0.0f, 0.0f, "in place");
    free(dref);
    free(d);
    free(tgt);
    free(want);
    free(got);
    free(back);
}

Test(detector_boxes, clip_and_min_size) {
    float b[4 * 4] = {-5, -5, 20, 30, 10, 10, 10.5f, 40, 90, 80, 120, 130, NAN, 0, 5, 5};
    det_boxes_clip(b, 4, 100.0f, 60.0f);
    cr_expect(b[0] == 0 && b[1] == 0 && b[2] == 20 && b[3] == 30);
    cr_expect(b[8] == 90 && b[9] == 60 && b[10] == 100 && b[11] == 60);
    cr_expect(isnan(b[12]), "NaN stays NaN, as torch.clamp");
    int64_t keep[4];
    int64_t k = det_boxes_keep_min_size(b, 4, 1.0f, keep);
    cr_assert_eq(k, 1); /* 0.5 wide, 0 high, NaN wide are dropped */
    cr_expect_eq(keep[0], 0);
    cr_expect_eq(det_boxes_keep_min_size(b, 4, 0.5f, keep), 2);
    cr_expect_eq(keep[1], 1);
}
