/* The detector model: config JSON, shapes, target assignment through the losses, a tiny
 * overfit, determinism, files. Uses the small convnet backbone so that it runs in seconds. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "backbone/nasnet_net.h"
#include "detector/frcnn_model.h"
#include "tests/util/testutil.h"

static void tiny_config(det_model_config *c) {
    det_model_config_default(c);
    c->backbone = DET_BACKBONE_CONVNET;
    c->conv_width = 8;
    c->min_size = c->max_size = 64;
    c->anchors.n_scales = 2;
    c->anchors.scales[0] = 0.0625f, c->anchors.scales[1] = 0.125f; /* 16, 32 px of 256 */
    c->anchors.n_ratios = 1;
    c->anchors.ratios[0] = 1.0f;
    c->anchors.offset_x = c->anchors.offset_y = 8.0f;
    c->rpn_channels = 16;
    c->rpn_batch = 16;
    c->prop_train.pre_nms_top_n = 200, c->prop_train.post_nms_top_n = 50;
    c->prop_test.pre_nms_top_n = 200, c->prop_test.post_nms_top_n = 50;
    c->roi_batch = 32;
    c->head_dim = 32;
    c->detect.score_thresh = 0.05f;
    int64_t ids[2] = {3, 7};
    const char *names[2] = {"cat", "dog"};
    cr_assert_eq(det_model_config_set_classes(c, 2, ids, names), 0, "%s", nd_last_error());
}

/* One 64x64 image: a bright square (class 0, "cat") and a dark one (class 1, "dog"). */
typedef struct toy {
    float img[3 * 64 * 64];
    int32_t vh[1], vw[1];
    int64_t first[2];
    float boxes[8];
    int32_t cls[2];
    uint8_t crowd[2];
    det_batch b;
} toy;

static void make_toy(toy *t) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++) {
                float v = -0.2f;
                if (x >= 6 && x < 26 && y >= 8 && y < 28) v = 0.9f;
                if (x >= 36 && x < 60 && y >= 30 && y < 58) v = c == 1 ? 0.8f : -0.9f;
                t->img[(c * 64 + y) * 64 + x] = v;
            }
    t->vh[0] = t->vw[0] = 64;
    t->first[0] = 0, t->first[1] = 2;
    float bx[8] = {6, 8, 26, 28, 36, 30, 60, 58};
    memcpy(t->boxes, bx, sizeof bx);
    t->cls[0] = 0, t->cls[1] = 1;
    t->crowd[0] = t->crowd[1] = 0;
    det_batch b = {1, 64, 64, t->img, t->vh, t->vw, t->first, t->boxes, t->cls, t->crowd};
    t->b = b;
}

Test(frcnn_model, config_json_round_trip) {
    det_model_config c, d;
    tiny_config(&c);
    char *a = NULL, *b = NULL;
    cr_assert_eq(det_model_config_to_json(&c, &a), 0, "%s", nd_last_error());
    cr_assert_eq(det_model_config_from_json(a, "x", &d), 0, "%s", nd_last_error());
    cr_assert_eq(det_model_config_to_json(&d, &b), 0);
    cr_expect_str_eq(a, b);
    cr_expect_eq(d.num_classes, 2);
    cr_expect_eq(d.category_ids[1], 7);
    cr_expect_str_eq(d.class_names[0], "cat");
    cr_expect_eq(det_model_config_class_of(&d, 7), 1);
    cr_expect_eq(det_model_config_class_of(&d, 5), -1);
    /* a missing key is named */
    char *p = strstr(a, "\"rpn\"");
    cr_assert(p);
    memcpy(p, "\"rpX\"", 5);
    det_model_config e;
    cr_expect_eq(det_model_config_from_json(a, "m.safetensors", &e), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "m.safetensors") && strstr(nd_last_error(), "rpn"), "%s", nd_last_error());
    cr_expect_eq(det_model_config_from_json("[1,2]", "m", &e), ND_ERR_FORMAT);
    free(a), free(b);
    det_model_config_free(&c), det_model_config_free(&d);
}

Test(frcnn_model, config_validation) {
    det_model_config c;
    tiny_config(&c);
    c.anchors.stride_x = 8;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID);
    c.anchors.stride_x = 16;
    c.layout = DET_LAYOUT_NASNET; /* with a convnet backbone */
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "nasnet"), "%s", nd_last_error());
    c.layout = DET_LAYOUT_C4;
    c.min_size = 8;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID);
    c.min_size = 64;
    cr_expect_eq(det_model_config_validate(&c), 0, "%s", nd_last_error());
    int64_t dup[2] = {1, 1};
    cr_expect_eq(det_model_config_set_classes(&c, 2, dup, NULL), ND_ERR_INVALID);
    det_model_config_free(&c);
}

Test(frcnn_model, prepare_image_matches_loader_arithmetic) {
    det_model_config c;
    tiny_config(&c);
    c.min_size = 48, c.max_size = 80;
    uint8_t px[100 * 40 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7);
    float *data;
    int32_t h, w, vh, vw;
    float s;
    cr_assert_eq(det_model_prepare_image(&c, px, 100, 40, 3, &data, &h, &w, &vh, &vw, &s), 0, "%s",
                 nd_last_error());
    /* short side 40 -> 48 would make the long side 120 > 80: scale 0.8, 80 x 32 */
    cr_expect_float_eq(s, 0.8f, 1e-6);
    cr_expect_eq(vw, 80);
    cr_expect_eq(vh, 32);
    cr_expect_eq(w, 96); /* padded to the divisor 32 */
    cr_expect_eq(h, 32);
    for (int64_t i = 0; i < 3 * h * w; i++) cr_assert(data[i] >= -1.0f && data[i] <= 1.0f);
    cr_expect_float_eq(data[95], -1.0f, 1e-6, "padding is pixel 0");
    free(data);
    cr_expect_eq(det_model_prepare_image(&c, px, 0, 40, 3, &data, &h, &w, &vh, &vw, &s), ND_ERR_INVALID);
    det_model_config_free(&c);
}

static double train(det_model *m, toy *t, int steps, double *first, det_losses *last) {
    nn_ctx *ctx = nn_ctx_new();
    nn_optim_config opt = nn_optim_sgd(0.9, 0, 1e-4);
    nd_rng rng;
    nd_rng_seed(&rng, 5);
    det_losses l;
    for (int s = 0; s < steps; s++) {
        nn_ctx_reset(ctx);
        nn_params_zero_grad(det_model_params(m));
        cr_assert_eq(det_model_train_step(m, ctx, &t->b, &rng, &l), 0, "%s", nd_last_error());
        if (s == 0) *first = l.total;
        nn_params_clip_grad_norm(det_model_params(m), 10.0);
        nn_optim_step(det_model_params(m), &opt, 0.02);
    }
    nn_ctx_free(ctx);
    *last = l;
    return l.total;
}

Test(frcnn_model, targets_and_tiny_overfit, .timeout = 120) {
    det_model_config c;
    tiny_config(&c);
    det_model *m;
    cr_assert_eq(det_model_new(&c, 1, &m), 0, "%s", nd_last_error());
    toy t;
    make_toy(&t);
    double first;
    det_losses l;
    train(m, &t, 1, &first, &l);
    /* sampling: 16 of the 32 anchors with at most half positive; both objects have positives
     * (low-quality matches); the ROI batch holds the 2 appended GT boxes at least */
    cr_expect(l.rpn_pos >= 2 && l.rpn_pos <= 8, "rpn positives %lld", (long long)l.rpn_pos);
    cr_expect_eq(l.rpn_pos + l.rpn_neg, 16);
    cr_expect(l.roi_pos >= 2 && l.roi_pos <= 8, "roi positives %lld", (long long)l.roi_pos);
    cr_expect(l.roi_pos + l.roi_neg <= 32);
    cr_expect(fabs(l.roi_cls - log(3.0)) < 0.1, "initial CE %g, log 3 expected", l.roi_cls);
    double end = train(m, &t, 80, &first, &l);
    cr_expect(end < 0.25 * first, "loss %g -> %g", first, end);
    /* the overfit model finds both objects with the right classes */
    nn_ctx *ctx = nn_ctx_new();
    det_detections d[1];
    cr_assert_eq(det_model_detect(m, ctx, &t.b, d), 0, "%s", nd_last_error());
    int found[2] = {0, 0};
    for (int64_t j = 0; j < d[0].n; j++) {
        const float *q = d[0].boxes + 4 * j;
        cr_assert(q[0] >= 0 && q[2] <= 64 && q[1] >= 0 && q[3] <= 64 && q[0] <= q[2]);
        if (j) cr_assert_leq(d[0].scores[j], d[0].scores[j - 1]);
        for (int g = 0; g < 2; g++) {
            const float *gb = t.boxes + 4 * g;
            float ix = fminf(q[2], gb[2]) - fmaxf(q[0], gb[0]), iy = fminf(q[3], gb[3]) - fmaxf(q[1], gb[1]);
            float inter = ix > 0 && iy > 0 ? ix * iy : 0;
            float iou = inter / ((q[2] - q[0]) * (q[3] - q[1]) + (gb[2] - gb[0]) * (gb[3] - gb[1]) - inter);
            if (iou > 0.5f && d[0].classes[j] == g && d[0].scores[j] > 0.25f) found[g] = 1;
        }
    }
    for (int64_t j = 0; j < d[0].n; j++)
        cr_log_info("det %g %g %g %g cls %d score %g", d[0].boxes[4 * j], d[0].boxes[4 * j + 1], d[0].boxes[4 * j + 2],
                    d[0].boxes[4 * j + 3], d[0].classes[j], d[0].scores[j]);
    cr_expect(found[0] && found[1], "detections: %lld, loss %g -> %g", (long long)d[0].n, first, end);
    det_detections_free(&d[0]);
    nn_ctx_free(ctx);
    det_model_free(m);
    det_model_config_free(&c);
}

Test(frcnn_model, deterministic_for_a_seed) {
    det_model_config c;
    tiny_config(&c);
    toy t;
    make_toy(&t);
    double f1, f2;
    det_losses l1, l2;
    det_model *a, *b;
    cr_assert_eq(det_model_new(&c, 9, &a), 0);
    cr_assert_eq(det_model_new(&c, 9, &b), 0);
    train(a, &t, 3, &f1, &l1);
    train(b, &t, 3, &f2, &l2);
    cr_expect_eq(f1, f2);
    cr_expect_eq(l1.total, l2.total);
    cr_expect_eq(l1.rpn_pos, l2.rpn_pos);
    det_model_free(a), det_model_free(b);
    det_model_config_free(&c);
}

Test(frcnn_model, save_load_gives_same_detections) {
    det_model_config c;
    tiny_config(&c);
    c.detect.score_thresh = 0.0f;
    toy t;
    make_toy(&t);
    det_model *m, *m2 = NULL;
    cr_assert_eq(det_model_new(&c, 2, &m), 0);
    double f;
    det_losses l;
    train(m, &t, 5, &f, &l);
    char *dir = tu_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    cr_assert_eq(det_model_save(m, path, NULL, 0), 0, "%s", nd_last_error());
    nn_meta meta;
    cr_assert_eq(det_model_load(path, &m2, &meta), 0, "%s", nd_last_error());
    cr_expect_str_eq(nn_meta_get(&meta, "det.format"), "nasdet-frcnn");
    cr_expect_str_eq(det_model_cfg(m2)->class_names[1], "dog");
    nn_meta_free(&meta);
    nn_ctx *ctx = nn_ctx_new();
    det_detections d1[1], d2[1];
    cr_assert_eq(det_model_detect(m, ctx, &t.b, d1), 0);
    cr_assert_eq(det_model_detect(m2, ctx, &t.b, d2), 0);
    cr_assert_eq(d1[0].n, d2[0].n);
    cr_expect(d1[0].n > 0);
    cr_expect_arr_eq(d1[0].boxes, d2[0].boxes, (size_t)d1[0].n * 4 * sizeof(float));
    cr_expect_arr_eq(d1[0].scores, d2[0].scores, (size_t)d1[0].n * sizeof(float));
    det_detections_free(&d1[0]), det_detections_free(&d2[0]);
    /* a file that is not a detector model */
    snprintf(path, sizeof path, "%s/plain.safetensors", dir);
    nn_params *ps = nn_params_new();
    nn_params_add(ps, "w", 1, NN_SHAPE(3), 0);
    cr_assert_eq(nn_checkpoint_save(path, ps, NULL, 0), 0);
    det_model *bad = NULL;
    cr_expect_eq(det_model_load(path, &bad, NULL), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "not a detector model"), "%s", nd_last_error());
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    cr_expect_neq(det_model_load(path, &bad, NULL), 0);
    cr_expect_null(bad);
    nn_params_free(ps);
    nn_ctx_free(ctx);
    det_model_free(m), det_model_free(m2);
    det_model_config_free(&c);
    tu_rmtree(dir);
    free(dir);
}

/* ---- NASNet backbones ---------------------------------------------------------------------- */

static void tiny_nasnet(det_model_config *c, det_layout layout) {
    tiny_config(c);
    c->backbone = DET_BACKBONE_NASNET;
    c->layout = layout;
    c->nas_n = 1, c->nas_f = 4, c->stem_filters = 8;
    c->roi_size = layout == DET_LAYOUT_NASNET ? 5 : 7;
    c->roi_batch = 8;
}

Test(frcnn_model, nasnet_layouts_train_and_detect, .timeout = 120) {
    toy t;
    make_toy(&t);
    for (int layout = 0; layout < 2; layout++) {
        det_model_config c;
        tiny_nasnet(&c, (det_layout)layout);
        det_model *m;
        cr_assert_eq(det_model_new(&c, 3, &m), 0, "%s", nd_last_error());
        double first;
        det_losses l;
        double end = train(m, &t, 4, &first, &l);
        cr_expect(isfinite(first) && isfinite(end), "layout %d: losses %g %g", layout, first, end);
        cr_expect(l.roi_pos >= 2, "layout %d: roi positives %lld", layout, (long long)l.roi_pos);
        /* every trainable backbone tensor of the cells the detector uses got a gradient */
        nn_params *ps = det_model_params(m);
        nn_tensor *stem = nn_params_get(ps, "conv0/weights");
        cr_assert(stem, "the NASNet stem is in the detector's store under its classifier name");
        double g = 0;
        for (int64_t i = 0; i < stem->numel; i++) g += fabs(stem->grad[i]);
        cr_expect(g > 0, "layout %d: no gradient reached the stem", layout);
        nn_ctx *ctx = nn_ctx_new();
        det_detections d[1];
        cr_assert_eq(det_model_detect(m, ctx, &t.b, d), 0, "%s", nd_last_error());
        cr_expect(d[0].n <= c.detect.max_dets);
        det_detections_free(&d[0]);
        nn_ctx_free(ctx);
        det_model_free(m);
        det_model_config_free(&c);
    }
}

Test(frcnn_model, backbone_from_classifier_checkpoint) {
    det_model_config c;
    tiny_nasnet(&c, DET_LAYOUT_C4);
    /* a classifier with the same genotype, N, F and stem, as `nasdet train` would save it */
    nas_net_config nc;
    cr_assert_eq(nas_net_preset("nasnet-a-mobile", &nc), 0);
    nc.num_cells = 1, nc.num_conv_filters = 4, nc.stem_multiplier = 0.25, nc.num_classes = 10;
    nc.image_size = 64, nc.use_aux_head = 0;
    nas_net *net;
    cr_assert_eq(nas_net_new(&nc, NULL, NULL, 77, &net), 0, "%s", nd_last_error());
    char *dir = tu_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/cls.safetensors", dir);
    cr_assert_eq(nas_net_save(net, path), 0, "%s", nd_last_error());
    det_model *m;
    cr_assert_eq(det_model_new(&c, 3, &m), 0, "%s", nd_last_error());
    int64_t n = 0;
    cr_assert_eq(det_model_load_backbone(m, path, &n), 0, "%s", nd_last_error());
    cr_expect(n > 10, "%lld tensors", (long long)n);
    nn_tensor *a = nn_params_get(nas_net_params(net), "conv0/weights");
    nn_tensor *b = nn_params_get(det_model_params(m), "conv0/weights");
    cr_assert(a && b);
    cr_expect_arr_eq(a->data, b->data, (size_t)a->numel * sizeof(float));
    /* a checkpoint of another network is refused with a message */
    nas_net_free(net);
    nc.num_conv_filters = 8;
    cr_assert_eq(nas_net_new(&nc, NULL, NULL, 1, &net), 0);
    cr_assert_eq(nas_net_save(net, path), 0);
    cr_expect_neq(det_model_load_backbone(m, path, &n), 0);
    nas_net_free(net);
    det_model_free(m);
    det_model_config_free(&c);
    tu_rmtree(dir);
    free(dir);
}

Test(frcnn_model, empty_images_and_crowd_boxes) {
    det_model_config c;
    tiny_config(&c);
    det_model *m;
    cr_assert_eq(det_model_new(&c, 1, &m), 0);
    toy t;
    make_toy(&t);
    nn_ctx *ctx = nn_ctx_new();
    nd_rng rng;
    nd_rng_seed(&rng, 1);
    det_losses l;
    /* no annotations: everything sampled is background, the box losses are 0 */
    t.b.box_first = (const int64_t[]){0, 0};
    cr_assert_eq(det_model_train_step(m, ctx, &t.b, &rng, &l), 0, "%s", nd_last_error());
    cr_expect_eq(l.rpn_pos, 0);
    cr_expect_eq(l.roi_pos, 0);
    cr_expect(l.rpn_neg > 0 && l.roi_neg > 0);
    cr_expect_eq(l.rpn_box, 0.0);
    cr_expect_eq(l.roi_box, 0.0);
    /* the second box is a crowd region: never a positive, never appended as a proposal */
    nn_ctx_reset(ctx);
    t.b.box_first = t.first;
    t.crowd[1] = 1;
    cr_assert_eq(det_model_train_step(m, ctx, &t.b, &rng, &l), 0, "%s", nd_last_error());
    cr_expect(l.rpn_pos >= 1);
    cr_expect(l.roi_pos >= 1);
    /* a class outside the model's is an input error, not a crash */
    nn_ctx_reset(ctx);
    t.crowd[1] = 0;
    t.cls[1] = 5;
    cr_expect_eq(det_model_train_step(m, ctx, &t.b, &rng, &l), ND_ERR_INVALID);
    nn_ctx_free(ctx);
    det_model_free(m);
    det_model_config_free(&c);
}

/* Feature stride 8 (c4 on a NASNet): the feature map is the last cell before the first
 * reduction, the anchors tile it every 8 pixels, ROIAlign reads it at scale 1/8. Refused where
 * it has no meaning (the nasnet layout, the convnet). */
Test(frcnn_model, c4_at_feature_stride_8) {
    det_model_config c;
    tiny_nasnet(&c, DET_LAYOUT_C4);
    c.anchors.stride_x = c.anchors.stride_y = 8.0f;
    c.anchors.offset_x = c.anchors.offset_y = 4.0f;
    cr_assert_eq(det_model_config_validate(&c), 0, "%s", nd_last_error());
    c.anchors.stride_y = 16.0f;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "unequal strides");
    c.anchors.stride_y = 8.0f;
    c.layout = DET_LAYOUT_NASNET;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "nasnet layout at stride 8");
    c.layout = DET_LAYOUT_C4;
    c.backbone = DET_BACKBONE_CONVNET;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "convnet at stride 8");
    c.backbone = DET_BACKBONE_NASNET;
    c.anchors.stride_x = c.anchors.stride_y = 4.0f;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "stride 4");
    c.anchors.stride_x = c.anchors.stride_y = 8.0f;
    /* the config survives a JSON round trip */
    char *js = NULL;
    det_model_config d;
    cr_assert_eq(det_model_config_to_json(&c, &js), 0);
    cr_assert_eq(det_model_config_from_json(js, "x", &d), 0, "%s", nd_last_error());
    cr_expect_eq(d.anchors.stride_x, 8.0f);
    free(js);
    det_model_config_free(&d);

    toy t;
    make_toy(&t);
    det_model *m;
    cr_assert_eq(det_model_new(&c, 3, &m), 0, "%s", nd_last_error());
    double first;
    det_losses l;
    train(m, &t, 1, &first, &l);
    /* 64x64 input: an 8x8 map of 2 anchors, 128 in all; the two boxes get positives */
    cr_expect(l.rpn_pos >= 2, "rpn positives %lld", (long long)l.rpn_pos);
    cr_expect(l.roi_pos >= 2, "roi positives %lld", (long long)l.roi_pos);
    cr_expect(isfinite(first));
    /* cells past the first reduction are not used: their weights get no gradient, the stem does */
    nn_params *ps = det_model_params(m);
    nn_tensor *stem = nn_params_get(ps, "conv0/weights");
    cr_assert(stem);
    double g = 0;
    for (int64_t i = 0; i < stem->numel; i++) g += fabs(stem->grad[i]);
    cr_expect(g > 0, "no gradient reached the stem");
    int64_t unused = 0, with_grad = 0;
    for (int64_t i = 0; i < nn_params_count(ps); i++) {
        nn_tensor *p = nn_params_at(ps, i);
        if (!p->name || strncmp(p->name, "cell_1/", 7) != 0 || !p->grad) continue;
        unused++;
        for (int64_t j = 0; j < p->numel; j++) with_grad += p->grad[j] != 0.0f;
    }
    cr_expect(unused > 0, "cell_1 exists in the store");
    cr_expect_eq(with_grad, 0, "cell_1 (after the first reduction) got a gradient");
    double end = train(m, &t, 60, &first, &l);
    cr_expect(end < 0.5 * first, "loss %g -> %g", first, end);
    nn_ctx *ctx = nn_ctx_new();
    det_detections d1[1];
    cr_assert_eq(det_model_detect(m, ctx, &t.b, d1), 0, "%s", nd_last_error());
    cr_expect(d1[0].n >= 1);
    det_detections_free(&d1[0]);
    nn_ctx_free(ctx);
    det_model_free(m);
    det_model_config_free(&c);
}

static double grad_abs_sum(nn_params *ps, const char *prefix) {
    double g = 0;
    for (int64_t i = 0; i < nn_params_count(ps); i++) {
        nn_tensor *p = nn_params_at(ps, i);
        if (!p->name || strncmp(p->name, prefix, strlen(prefix)) != 0 || !p->grad) continue;
        for (int64_t j = 0; j < p->numel; j++) g += fabsf(p->grad[j]);
    }
    return g;
}

/* ROI fuse (c4 at stride 8): the stride-16 and stride-32 cells join the ROI features through
 * zero-initialised 1x1 convs, so the first step equals the plain head's; training then reaches
 * those cells, which the plain stride-8 head never uses. */
Test(frcnn_model, c4_roi_fuse_of_deeper_cells, .timeout = 120) {
    det_model_config c;
    tiny_nasnet(&c, DET_LAYOUT_C4);
    c.anchors.stride_x = c.anchors.stride_y = 8.0f;
    c.anchors.offset_x = c.anchors.offset_y = 4.0f;
    c.n_roi_fuse = 2, c.roi_fuse[0] = 16, c.roi_fuse[1] = 32;
    cr_assert_eq(det_model_config_validate(&c), 0, "%s", nd_last_error());
    /* refused where it has no meaning */
    c.roi_fuse[0] = 32, c.roi_fuse[1] = 16;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "descending strides");
    c.roi_fuse[0] = 8, c.roi_fuse[1] = 16;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "the feature stride itself");
    c.roi_fuse[0] = 16, c.roi_fuse[1] = 32;
    c.layout = DET_LAYOUT_NASNET;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "nasnet layout");
    c.layout = DET_LAYOUT_C4;
    c.anchors.stride_x = c.anchors.stride_y = 16.0f;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "16 at feature stride 16");
    c.anchors.stride_x = c.anchors.stride_y = 8.0f;
    /* the JSON keeps the strides; a config without them reads as no fuse (older model files) */
    char *js = NULL;
    det_model_config d;
    cr_assert_eq(det_model_config_to_json(&c, &js), 0);
    cr_assert_eq(det_model_config_from_json(js, "x", &d), 0, "%s", nd_last_error());
    cr_expect(d.n_roi_fuse == 2 && d.roi_fuse[0] == 16 && d.roi_fuse[1] == 32);
    det_model_config_free(&d);
    char *fuse = strstr(js, "\"fuse\"");
    cr_assert(fuse);
    memcpy(fuse, "\"fusX\"", 6);
    cr_assert_eq(det_model_config_from_json(js, "x", &d), 0, "%s", nd_last_error());
    cr_expect_eq(d.n_roi_fuse, 0);
    free(js);
    det_model_config_free(&d);

    toy t;
    make_toy(&t);
    det_model_config plain;
    cr_assert_eq(det_model_config_copy(&plain, &c), 0);
    plain.n_roi_fuse = 0;
    det_model *m, *p;
    cr_assert_eq(det_model_new(&c, 3, &m), 0, "%s", nd_last_error());
    cr_assert_eq(det_model_new(&plain, 3, &p), 0, "%s", nd_last_error());
    nn_params *ps = det_model_params(m);
    nn_tensor *w16 = nn_params_get(ps, "head.fuse16.w"), *w32 = nn_params_get(ps, "head.fuse32.w");
    cr_assert(w16 && w32 && nn_params_get(ps, "head.fuse32.b"));
    cr_expect(w16->ndim == 4 && w16->shape[1] < w32->shape[1] && w16->shape[0] == w32->shape[0],
              "1x1 convs from the deeper cells' widths to the map's");
    double first_m, first_p;
    det_losses lm, lp;
    train(m, &t, 1, &first_m, &lm);
    train(p, &t, 1, &first_p, &lp);
    cr_expect_eq(first_m, first_p, "zero 1x1 convs: the first loss is the plain head's");
    cr_expect(grad_abs_sum(ps, "head.fuse16.w") > 0 && grad_abs_sum(ps, "head.fuse32.w") > 0,
              "the 1x1 convs learn from the first step");
    train(m, &t, 2, &first_m, &lm);
    cr_expect(grad_abs_sum(ps, "cell_1/") > 0 && grad_abs_sum(ps, "cell_2/") > 0,
              "the stride-16 and stride-32 cells get gradients once the 1x1 convs are non-zero");
    cr_expect_eq(grad_abs_sum(det_model_params(p), "cell_1/"), 0.0, "the plain head never reaches cell_1");
    double end = train(m, &t, 60, &first_m, &lm);
    cr_expect(end < 0.5 * first_m, "loss %g -> %g", first_m, end);
    nn_ctx *ctx = nn_ctx_new();
    det_detections d1[1];
    cr_assert_eq(det_model_detect(m, ctx, &t.b, d1), 0, "%s", nd_last_error());
    cr_expect(d1[0].n >= 1);
    det_detections_free(&d1[0]);
    nn_ctx_free(ctx);
    det_model_free(m), det_model_free(p);
    det_model_config_free(&c), det_model_config_free(&plain);
}

/* ---- test-time sizes ----------------------------------------------------------------------- */

static float box_iou(const float *a, const float *b) {
    float ix = fminf(a[2], b[2]) - fmaxf(a[0], b[0]), iy = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    float inter = ix > 0 && iy > 0 ? ix * iy : 0;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

Test(frcnn_model, test_sizes_config_and_merge, .timeout = 120) {
    det_model_config c;
    tiny_config(&c);
    c.detect.score_thresh = 0.01f;
    /* config: parsed, validated, kept by the JSON, absent in older files */
    cr_expect_eq(det_model_config_parse_test_sizes(&c, "96,abc"), ND_ERR_INVALID);
    cr_assert_eq(det_model_config_parse_test_sizes(&c, "96,128"), 0, "%s", nd_last_error());
    c.test_passes.small = 20;
    cr_assert_eq(det_model_config_validate(&c), 0, "%s", nd_last_error());
    char *js = NULL;
    det_model_config d;
    cr_assert_eq(det_model_config_to_json(&c, &js), 0);
    cr_assert_eq(det_model_config_from_json(js, "x", &d), 0, "%s", nd_last_error());
    cr_expect(d.test_passes.n_sizes == 2 && d.test_passes.sizes[1] == 128 && d.test_passes.small == 20.0f);
    det_model_config_free(&d);
    free(js);
    c.test_passes.sizes[1] = 90;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "descending");
    c.test_passes.sizes[0] = 48, c.test_passes.n_sizes = 1;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "below min_size");
    c.test_passes.sizes[0] = 96, c.test_passes.small = 0;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "no size limit");
    /* fusion: parsed, kept by the JSON, needs sizes; "none" sizes clear it */
    c.test_passes.small = 20;
    cr_expect_eq(det_model_config_parse_test_fuse(&c, "40"), ND_ERR_INVALID);
    cr_expect_eq(det_model_config_parse_test_fuse(&c, "40,0"), ND_ERR_INVALID);
    cr_assert_eq(det_model_config_parse_test_fuse(&c, "40,128"), 0, "%s", nd_last_error());
    cr_assert_eq(det_model_config_validate(&c), 0, "%s", nd_last_error());
    cr_assert_eq(det_model_config_to_json(&c, &js), 0);
    cr_assert_eq(det_model_config_from_json(js, "x", &d), 0, "%s", nd_last_error());
    cr_expect(d.test_passes.fuse_min == 40.0f && d.test_passes.fuse_max == 128.0f);
    det_model_config_free(&d);
    free(js);
    cr_assert_eq(det_model_config_parse_test_fuse(&c, "none"), 0);
    cr_expect(c.test_passes.fuse_max == 0 && c.test_passes.n_sizes == 1);
    cr_assert_eq(det_model_config_to_json(&c, &js), 0);
    cr_expect_null(strstr(js, "test_fuse"), "written only when used");
    free(js);
    c.test_passes.fuse_max = 128;
    cr_assert_eq(det_model_config_parse_test_sizes(&c, "none"), 0);
    cr_expect_eq(c.test_passes.n_sizes, 0);
    cr_expect_eq(c.test_passes.fuse_max, 0, "no sizes, nothing to fuse");
    c.test_passes.fuse_max = 128;
    cr_expect_eq(det_model_config_validate(&c), ND_ERR_INVALID, "fusion without sizes");
    c.test_passes.fuse_max = 0;
    cr_assert_eq(det_model_config_to_json(&c, &js), 0);
    cr_expect_null(strstr(js, "test_sizes"), "written only when used");
    free(js);

    toy t;
    make_toy(&t);
    det_model *m;
    cr_assert_eq(det_model_new(&c, 4, &m), 0);
    double first;
    det_losses l;
    train(m, &t, 40, &first, &l);
    uint8_t rgb[64 * 64 * 3];
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 64; x++)
            for (int ch = 0; ch < 3; ch++)
                rgb[(y * 64 + x) * 3 + ch] = (uint8_t)lroundf((t.img[(ch * 64 + y) * 64 + x] + 1.0f) * 127.5f);
    nn_ctx *ctx = nn_ctx_new();
    /* one size: the batch path on the prepared image */
    det_detections base, batch[1], merged, none;
    cr_assert_eq(det_model_detect_image(m, ctx, NULL, rgb, 64, 64, 3, &base), 0, "%s", nd_last_error());
    float *data;
    int32_t h, w, vh, vw;
    float scale;
    cr_assert_eq(det_model_prepare_image(&c, rgb, 64, 64, 3, &data, &h, &w, &vh, &vw, &scale), 0);
    int64_t f0[2] = {0, 0};
    det_batch b = {1, h, w, data, &vh, &vw, f0, NULL, NULL, NULL};
    cr_assert_eq(det_model_detect(m, ctx, &b, batch), 0);
    free(data);
    cr_assert(base.n >= 2 && base.n == batch[0].n, "%lld vs %lld", (long long)base.n, (long long)batch[0].n);
    cr_expect_arr_eq(base.boxes, batch[0].boxes, (size_t)base.n * 4 * sizeof(float));
    /* an extra size whose objects are all over the limit adds nothing */
    det_model_config o = c; /* shallow: test fields only */
    o.test_passes.n_sizes = 1, o.test_passes.sizes[0] = 96, o.test_passes.small = 1e-3f;
    cr_assert_eq(det_model_detect_image(m, ctx, &o, rgb, 64, 64, 3, &none), 0, "%s", nd_last_error());
    cr_assert_eq(none.n, base.n);
    cr_expect_arr_eq(none.boxes, base.boxes, (size_t)base.n * 4 * sizeof(float));
    cr_expect_arr_eq(none.scores, base.scores, (size_t)base.n * sizeof(float));
    /* everything kept: the per-class NMS of both passes, best first; each base detection is kept
     * or suppressed by a kept one of its class scoring at least as high */
    o.test_passes.small = 1e6f;
    cr_assert_eq(det_model_detect_image(m, ctx, &o, rgb, 64, 64, 3, &merged), 0, "%s", nd_last_error());
    cr_assert(merged.n >= 1 && merged.n <= c.detect.max_dets);
    for (int64_t j = 1; j < merged.n; j++) cr_expect_geq(merged.scores[j - 1], merged.scores[j]);
    for (int64_t j = 0; j < merged.n; j++) {
        const float *q = merged.boxes + 4 * j;
        cr_expect(q[0] >= 0 && q[1] >= 0 && q[2] <= 64 && q[3] <= 64, "box %lld outside the image", (long long)j);
    }
    int64_t from_extra = 0;
    for (int64_t j = 0; j < merged.n; j++) {
        int in_base = 0;
        for (int64_t k = 0; k < base.n; k++)
            in_base |= !memcmp(merged.boxes + 4 * j, base.boxes + 4 * k, 4 * sizeof(float));
        from_extra += !in_base;
    }
    cr_expect(from_extra > 0, "the 96-px pass contributed no box");
    for (int64_t k = 0; k < base.n; k++) {
        int covered = 0;
        for (int64_t j = 0; j < merged.n && !covered; j++)
            covered = merged.classes[j] == base.classes[k] && merged.scores[j] >= base.scores[k] &&
                      (box_iou(merged.boxes + 4 * j, base.boxes + 4 * k) > c.detect.nms_thresh ||
                       !memcmp(merged.boxes + 4 * j, base.boxes + 4 * k, 4 * sizeof(float)));
        cr_expect(covered, "base detection %lld neither kept nor suppressed", (long long)k);
    }
    /* fused, with the extra pass trusted for nothing: the base pass's detections as they are
     * (its per-class NMS left no two boxes of a class overlapping by more than DET_FUSE_IOU) */
    det_detections fused_base, fused_both;
    o.test_passes.fuse_min = 0, o.test_passes.fuse_max = 1e-3f;
    cr_assert_eq(det_model_detect_image(m, ctx, &o, rgb, 64, 64, 3, &fused_base), 0, "%s", nd_last_error());
    cr_assert_eq(fused_base.n, base.n);
    cr_expect_arr_eq(fused_base.boxes, base.boxes, (size_t)base.n * 4 * sizeof(float));
    cr_expect_arr_eq(fused_base.scores, base.scores, (size_t)base.n * sizeof(float));
    cr_expect_arr_eq(fused_base.classes, base.classes, (size_t)base.n * sizeof(int32_t));
    /* both trusted for everything: best first, inside the image, above the threshold, and the
     * scores are means over the two passes, no longer the base pass's alone */
    o.test_passes.fuse_max = 1e6f;
    cr_assert_eq(det_model_detect_image(m, ctx, &o, rgb, 64, 64, 3, &fused_both), 0, "%s", nd_last_error());
    cr_assert(fused_both.n >= 1 && fused_both.n <= c.detect.max_dets);
    float best_base = 0;
    for (int64_t k = 0; k < base.n; k++) best_base = fmaxf(best_base, base.scores[k]);
    for (int64_t j = 0; j < fused_both.n; j++) {
        const float *q = fused_both.boxes + 4 * j;
        cr_expect(q[0] >= 0 && q[1] >= 0 && q[2] <= 64 && q[3] <= 64, "box %lld outside the image", (long long)j);
        cr_expect(fused_both.scores[j] > c.detect.score_thresh && fused_both.scores[j] <= 1);
        if (j) cr_expect_geq(fused_both.scores[j - 1], fused_both.scores[j]);
    }
    cr_expect_neq(fused_both.scores[0], best_base, "the 96-px pass changed no score");
    det_detections_free(&fused_base), det_detections_free(&fused_both);
    o.test_passes.fuse_max = 0;
    o.test_passes.sizes[0] = 32;
    det_detections refused;
    cr_expect_eq(det_model_detect_image(m, ctx, &o, rgb, 64, 64, 3, &refused), ND_ERR_INVALID, "size below min_size");
    cr_expect_eq(refused.n, 0);
    det_detections_free(&base), det_detections_free(&batch[0]), det_detections_free(&merged),
        det_detections_free(&none);

    /* a warm start ignores test-time settings, not the architecture */
    char *dir = tu_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    cr_assert_eq(det_model_save(m, path, NULL, 0), 0, "%s", nd_last_error());
    det_model_config c2;
    cr_assert_eq(det_model_config_copy(&c2, &c), 0);
    c2.test_passes.n_sizes = 1, c2.test_passes.sizes[0] = 80, c2.test_passes.small = 9, c2.detect.score_thresh = 0.2f;
    det_model *m2;
    cr_assert_eq(det_model_new(&c2, 1, &m2), 0);
    cr_expect_eq(det_model_load_weights(m2, path, NULL), 0, "%s", nd_last_error());
    det_model_free(m2);
    c2.head_dim = 16;
    cr_assert_eq(det_model_new(&c2, 1, &m2), 0);
    cr_expect_eq(det_model_load_weights(m2, path, NULL), ND_ERR_INVALID);
    det_model_free(m2);
    det_model_config_free(&c2);
    tu_rmtree(dir);
    free(dir);
    nn_ctx_free(ctx);
    det_model_free(m);
    det_model_config_free(&c);
}
