/* The box classifier's training path against torchvision's RoIHeads, numerically: the same
 * features, proposals, ground truth and head weights give the same two losses and the same
 * gradients, for the features (through ROIAlign) and for every head weight. This pins the
 * whole ROI path: ground truth appended to the proposals, matching, the background label 0 and
 * the class labels k + 1, the ROIAlign box coordinates and scale, the box-target encoding
 * (10, 10, 5, 5), the class-specific deltas and the loss normalisations.
 * Fixture: tests/fixtures/det_torchvision/make_roi_head.py (every ROI is sampled there, so
 * the draw does not matter). */
#define DET_FIXTURE_PATH "tests/fixtures/det_torchvision/roi_head.txt"
#include "tests/det_fixture.h"

#include <math.h>

#include "detector/model_internal.h"

static void set_param(det_model *m, const char *name, const char *fixture) {
    nn_tensor *t = nn_params_get(m->ps, name);
    cr_assert(t, "no parameter %s", name);
    int64_t n;
    float *v = fx_f32(fixture, &n);
    cr_assert_eq(n, t->numel, "%s: %lld values for %lld", name, (long long)n, (long long)t->numel);
    memcpy(t->data, v, (size_t)n * sizeof *v);
    free(v);
}

static void expect_grad(det_model *m, const char *name, const char *fixture) {
    nn_tensor *t = nn_params_get(m->ps, name);
    int64_t n;
    float *v = fx_f32(fixture, &n);
    cr_assert_eq(n, t->numel);
    fx_expect_close(t->grad, v, n, 2e-6f, 1e-4f, name);
    free(v);
}

Test(frcnn_roi_head, losses_and_gradients_match_torchvision) {
    det_model_config c;
    det_model_config_default(&c);
    c.backbone = DET_BACKBONE_CONVNET;
    c.conv_width = 1; /* 1, 2, 4, 8 channels: an 8-channel feature map as the fixture's */
    c.min_size = 80, c.max_size = 96;
    c.head_dim = 16;
    c.roi_size = 7;
    c.roi_batch = 512, c.roi_pos_fraction = 0.25f;
    int64_t ids[2] = {1, 2};
    cr_assert_eq(det_model_config_set_classes(&c, 2, ids, NULL), 0);
    det_model *m;
    cr_assert_eq(det_model_new(&c, 1, &m), 0, "%s", nd_last_error());
    cr_assert_eq(m->feat_channels, 8);
    set_param(m, "head.fc1.w", "roi_fc1_w"), set_param(m, "head.fc1.b", "roi_fc1_b");
    set_param(m, "head.fc2.w", "roi_fc2_w"), set_param(m, "head.fc2.b", "roi_fc2_b");
    set_param(m, "head.cls.w", "roi_cls_w"), set_param(m, "head.cls.b", "roi_cls_b");
    set_param(m, "head.box.w", "roi_box_w"), set_param(m, "head.box.b", "roi_box_b");

    int64_t nf, ng0, ng1, nl, np0, np1;
    float *fv = fx_f32("roi_feat", &nf), *g0 = fx_f32("roi_gt0", &ng0), *g1 = fx_f32("roi_gt1", &ng1);
    float *p0 = fx_f32("roi_props0", &np0), *p1 = fx_f32("roi_props1", &np1);
    int64_t *lab = fx_i64("roi_labels", &nl);
    cr_assert_eq(nf, 2 * 8 * 6 * 5);
    cr_assert_eq(nl, (ng0 + ng1) / 4);
    float boxes[12];
    int32_t cls[3];
    memcpy(boxes, g0, (size_t)ng0 * sizeof(float));
    memcpy(boxes + ng0, g1, (size_t)ng1 * sizeof(float));
    for (int64_t i = 0; i < nl; i++) cls[i] = (int32_t)lab[i];
    int64_t first[3] = {0, ng0 / 4, nl};
    int32_t vh[2] = {96, 96}, vw[2] = {80, 80};
    det_batch b = {2, 96, 80, NULL, vh, vw, first, boxes, cls, NULL};
    float *props[2] = {p0, p1};
    int64_t nprops[2] = {np0 / 4, np1 / 4};

    nn_ctx *ctx = nn_ctx_new();
    nn_params_zero_grad(m->ps);
    nn_tensor *feat = nn_tensor_from(ctx, 4, NN_SHAPE(2, 8, 6, 5), fv);
    nn_tensor_requires_grad(feat);
    det_features f = {.map = feat};
    nd_rng rng;
    nd_rng_seed(&rng, 1);
    nn_tensor *lc, *lb;
    det_losses out = {0};
    cr_assert_eq(det_roi_head_loss(m, ctx, &b, &f, props, nprops, &rng, &lc, &lb, &out), 0, "%s",
                 nd_last_error());
    cr_expect_eq(out.roi_pos + out.roi_neg, nprops[0] + nprops[1] + nl, "every ROI (and GT box) is sampled");
    float *want_cls = fx_f32("roi_loss_cls", NULL), *want_box = fx_f32("roi_loss_box", NULL);
    cr_expect_float_eq(lc->data[0], want_cls[0], 1e-5f * fabsf(want_cls[0]), "CE %.9g vs %.9g", lc->data[0],
                       want_cls[0]);
    cr_expect_float_eq(lb->data[0], want_box[0], 1e-5f * fabsf(want_box[0]), "box %.9g vs %.9g", lb->data[0],
                       want_box[0]);
    nn_backward(ctx, nn_add(ctx, lc, lb));
    float *gf = fx_f32("roi_grad_feat", NULL);
    cr_assert(feat->grad, "no gradient reached the features");
    fx_expect_close(feat->grad, gf, nf, 2e-6f, 1e-4f, "d loss / d features");
    expect_grad(m, "head.fc1.w", "roi_grad_fc1_w"), expect_grad(m, "head.fc1.b", "roi_grad_fc1_b");
    expect_grad(m, "head.fc2.w", "roi_grad_fc2_w"), expect_grad(m, "head.fc2.b", "roi_grad_fc2_b");
    expect_grad(m, "head.cls.w", "roi_grad_cls_w"), expect_grad(m, "head.cls.b", "roi_grad_cls_b");
    expect_grad(m, "head.box.w", "roi_grad_box_w"), expect_grad(m, "head.box.b", "roi_grad_box_b");
    free(fv), free(g0), free(g1), free(p0), free(p1), free(lab), free(want_cls), free(want_box), free(gf);
    nn_ctx_free(ctx);
    det_model_free(m);
    det_model_config_free(&c);
}
