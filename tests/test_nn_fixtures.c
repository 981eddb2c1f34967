/* Ops against numbers computed by the peers that define them (PyTorch, torchvision, TF's
 * crop_and_resize formula): tests/fixtures/nn_ops/make_fixtures.py says how each was made. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

#define FIX_MAX 24

typedef struct fix_tensor {
    char name[32];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    float *data;
} fix_tensor;

typedef struct fixture {
    int n;
    fix_tensor t[FIX_MAX];
} fixture;

static void fix_load(fixture *f, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/nn_ops/%s.txt", name);
    FILE *fp = fopen(path, "r");
    cr_assert(fp != NULL, "cannot open %s (tests run from the repository root)", path);
    f->n = 0;
    fix_tensor *t = &f->t[0];
    while (f->n < FIX_MAX && fscanf(fp, "%31s %d", t->name, &t->ndim) == 2) {
        t->numel = 1;
        for (int i = 0; i < 4; i++) t->shape[i] = 1;
        for (int i = 0; i < t->ndim; i++) {
            long long d;
            cr_assert(fscanf(fp, "%lld", &d) == 1, "%s: bad shape", path);
            t->shape[i] = d;
            t->numel *= d;
        }
        t->data = malloc((size_t)t->numel * sizeof(float));
        for (int64_t i = 0; i < t->numel; i++) cr_assert(fscanf(fp, "%f", &t->data[i]) == 1, "%s: bad value", path);
        t = &f->t[++f->n];
    }
    fclose(fp);
}

static void fix_free(fixture *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].data);
}

static fix_tensor *fix_get(fixture *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    cr_assert_fail("fixture tensor '%s' missing", name);
    return NULL;
}

/* A ctx tensor holding the fixture's values (optionally requiring a gradient). */
static nn_tensor *fix_tensor_in(nn_ctx *ctx, fixture *f, const char *name, int grad) {
    fix_tensor *t = fix_get(f, name);
    nn_tensor *x = nn_tensor_from(ctx, t->ndim, t->shape, t->data);
    if (grad) nn_tensor_requires_grad(x);
    return x;
}

static void expect_close(const char *what, const float *got, fixture *f, const char *name, int64_t numel, double tol) {
    fix_tensor *t = fix_get(f, name);
    cr_assert_eq(t->numel, numel, "%s: %s has %lld values, expected %lld", what, name, (long long)t->numel,
                 (long long)numel);
    int bad = 0;
    for (int64_t i = 0; i < numel; i++) {
        double want = t->data[i];
        if (!(fabs(got[i] - want) <= tol * (1.0 + fabs(want)))) {
            if (bad++ < 5) cr_log_error("%s: %s[%lld] = %.7g, peer %.7g", what, name, (long long)i, (double)got[i], want);
        }
    }
    cr_expect_eq(bad, 0, "%s: %d of %lld values of %s differ from the peer", what, bad, (long long)numel, name);
}

static void conv_fixture(const char *name, nn_conv2d_params p, int has_bias) {
    fixture f;
    fix_load(&f, name);
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = fix_tensor_in(ctx, &f, "x", 1), *w = fix_tensor_in(ctx, &f, "w", 1);
    nn_tensor *b = has_bias ? fix_tensor_in(ctx, &f, "b", 1) : NULL;
    nn_tensor *y = nn_conv2d(ctx, x, w, b, &p);
    expect_close(name, y->data, &f, "y", y->numel, 1e-5);
    nn_backward_from(ctx, y, fix_get(&f, "gy")->data);
    expect_close(name, x->grad, &f, "dx", x->numel, 1e-5);
    expect_close(name, w->grad, &f, "dw", w->numel, 1e-5);
    if (b) expect_close(name, b->grad, &f, "db", b->numel, 1e-5);
    nn_ctx_free(ctx);
    fix_free(&f);
}

Test(nn_fixtures, conv2d_against_pytorch) {
    nn_conv2d_params p = {1, 2, 2, 1, 2, 1, 2, 0, 1, 0};
    conv_fixture("conv_groups_dil_asym", p, 1);
    conv_fixture("conv_same_s2", nn_conv2d_same(2, 1), 0);
    p = nn_conv2d_same(2, 1);
    p.groups = 3;
    conv_fixture("conv_dw7_s2_same", p, 1);
    conv_fixture("conv_1x7_same", nn_conv2d_same(1, 1), 1);
    conv_fixture("conv_7x1_same_s2", nn_conv2d_same(2, 1), 1);
    conv_fixture("conv_dil2_same", nn_conv2d_same(1, 2), 1);
}

Test(nn_fixtures, batch_norm_against_pytorch) {
    fixture f;
    fix_load(&f, "bn");
    nn_ctx *ctx = nn_ctx_new();
    nn_params *ps = nn_params_new();
    nn_tensor *rm = nn_params_add(ps, "rm", 1, NN_SHAPE(3), NN_PARAM_BUFFER);
    nn_tensor *rv = nn_params_add(ps, "rv", 1, NN_SHAPE(3), NN_PARAM_BUFFER);
    memcpy(rm->data, fix_get(&f, "rm0")->data, 3 * sizeof(float));
    memcpy(rv->data, fix_get(&f, "rv0")->data, 3 * sizeof(float));
    nn_tensor *x = fix_tensor_in(ctx, &f, "x", 1), *g = fix_tensor_in(ctx, &f, "gamma", 1);
    nn_tensor *b = fix_tensor_in(ctx, &f, "beta", 1);
    nn_bn_params p = {1e-3f, 0.1f};
    nn_tensor *y = nn_batch_norm(ctx, x, g, b, rm, rv, &p);
    expect_close("bn", y->data, &f, "y", y->numel, 1e-5);
    expect_close("bn", rm->data, &f, "rm1", 3, 1e-6);
    expect_close("bn", rv->data, &f, "rv1", 3, 1e-6);
    nn_backward_from(ctx, y, fix_get(&f, "gy")->data);
    expect_close("bn", x->grad, &f, "dx", x->numel, 1e-4);
    expect_close("bn", g->grad, &f, "dgamma", 3, 1e-4);
    expect_close("bn", b->grad, &f, "dbeta", 3, 1e-4);
    nn_ctx_set_training(ctx, 0);
    y = nn_batch_norm(ctx, x, g, b, rm, rv, &p);
    expect_close("bn eval", y->data, &f, "y_eval", y->numel, 1e-5);
    nn_params_free(ps);
    nn_ctx_free(ctx);
    fix_free(&f);
}

Test(nn_fixtures, pools_tf_same_against_pytorch) {
    fixture f;
    fix_load(&f, "avgpool_same_s2");
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = fix_tensor_in(ctx, &f, "x", 1);
    nn_pool_params p = nn_pool_same(3, 2);
    nn_tensor *y = nn_avg_pool2d(ctx, x, &p);
    expect_close("avg pool", y->data, &f, "y", y->numel, 1e-5);
    nn_backward_from(ctx, y, fix_get(&f, "gy")->data);
    expect_close("avg pool", x->grad, &f, "dx", x->numel, 1e-5);
    fix_free(&f);
    fix_load(&f, "maxpool_same_s2");
    x = fix_tensor_in(ctx, &f, "x", 1);
    y = nn_max_pool2d(ctx, x, &p);
    expect_close("max pool", y->data, &f, "y", y->numel, 1e-6);
    nn_backward_from(ctx, y, fix_get(&f, "gy")->data);
    expect_close("max pool", x->grad, &f, "dx", x->numel, 1e-6);
    nn_ctx_free(ctx);
    fix_free(&f);
}

static void roi_fixture(const char *name, int sampling, int aligned) {
    fixture f;
    fix_load(&f, name);
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = fix_tensor_in(ctx, &f, "x", 1);
    fix_tensor *rois = fix_get(&f, "rois");
    nn_tensor *y = nn_roi_align(ctx, x, rois->data, rois->shape[0], 3, 4, 0.5f, sampling, aligned);
    expect_close(name, y->data, &f, "y", y->numel, 1e-5);
    nn_backward_from(ctx, y, fix_get(&f, "gy")->data);
    expect_close(name, x->grad, &f, "dx", x->numel, 1e-5);
    nn_ctx_free(ctx);
    fix_free(&f);
}

Test(nn_fixtures, roi_align_against_torchvision) {
    roi_fixture("roi_align_aligned_s2", 2, 1);
    roi_fixture("roi_align_aligned_s0", 0, 1);
    roi_fixture("roi_align_legacy_s2", 2, 0);
    roi_fixture("roi_align_legacy_s0", 0, 0);
}

Test(nn_fixtures, crop_and_resize_against_tf_formula) {
    fixture f;
    fix_load(&f, "crop_and_resize");
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = fix_tensor_in(ctx, &f, "x", 1);
    fix_tensor *boxes = fix_get(&f, "boxes"), *indf = fix_get(&f, "ind");
    int32_t ind[4];
    float bx[16];
    for (int i = 0; i < 4; i++) ind[i] = (int32_t)indf->data[i];
    memcpy(bx, boxes->data, sizeof bx);
    nn_tensor *y = nn_crop_and_resize(ctx, x, bx, ind, 4, 5, 4, -2.0f);
    expect_close("crop_and_resize", y->data, &f, "y", y->numel, 1e-5);
    nn_backward_from(ctx, y, fix_get(&f, "gy")->data);
    expect_close("crop_and_resize", x->grad, &f, "dx", x->numel, 1e-5);
    fix_free(&f);
    fix_load(&f, "crop_and_resize_1x1");
    y = nn_crop_and_resize(ctx, x, bx, ind, 4, 1, 1, 0.0f);
    expect_close("crop_and_resize 1x1", y->data, &f, "y", y->numel, 1e-5);
    nn_ctx_free(ctx);
    fix_free(&f);
}

Test(nn_fixtures, losses_against_pytorch) {
    fixture f;
    nn_ctx *ctx = nn_ctx_new();
    fix_load(&f, "sce");
    nn_tensor *x = fix_tensor_in(ctx, &f, "logits", 1);
    int32_t labels[6];
    for (int i = 0; i < 6; i++) labels[i] = (int32_t)fix_get(&f, "labels")->data[i];
    nn_tensor *l = nn_softmax_cross_entropy(ctx, x, labels, 0.1f);
    expect_close("softmax CE", l->data, &f, "loss", 1, 1e-6);
    nn_backward(ctx, l);
    expect_close("softmax CE", x->grad, &f, "dlogits", x->numel, 1e-6);
    fix_free(&f);

    fix_load(&f, "bce");
    x = fix_tensor_in(ctx, &f, "x", 1);
    l = nn_bce_with_logits(ctx, x, fix_tensor_in(ctx, &f, "t", 0), fix_tensor_in(ctx, &f, "w", 0), 0.0f);
    expect_close("bce", l->data, &f, "loss", 1, 1e-6);
    nn_backward(ctx, l);
    expect_close("bce", x->grad, &f, "dx", x->numel, 1e-6);
    fix_free(&f);

    fix_load(&f, "sl1");
    x = fix_tensor_in(ctx, &f, "x", 1);
    l = nn_smooth_l1(ctx, x, fix_tensor_in(ctx, &f, "t", 0), fix_tensor_in(ctx, &f, "w", 0), 1.0f / 9.0f, 7.0f);
    expect_close("smooth L1", l->data, &f, "loss", 1, 1e-6);
    nn_backward(ctx, l);
    expect_close("smooth L1", x->grad, &f, "dx", x->numel, 1e-6);
    fix_free(&f);
    nn_ctx_free(ctx);
}

static void norm_fixture(const char *name, int layer) {
    fixture f;
    fix_load(&f, name);
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = fix_tensor_in(ctx, &f, "x", 1), *g = fix_tensor_in(ctx, &f, "gamma", 1);
    nn_tensor *b = fix_tensor_in(ctx, &f, "beta", 1);
    nn_tensor *y = layer ? nn_layer_norm(ctx, x, g, b, 1e-3f) : nn_instance_norm(ctx, x, g, b, 1e-3f);
    expect_close(name, y->data, &f, "y", y->numel, 1e-5);
    nn_backward_from(ctx, y, fix_get(&f, "gy")->data);
    expect_close(name, x->grad, &f, "dx", x->numel, 1e-4);
    expect_close(name, g->grad, &f, "dgamma", 3, 1e-4);
    expect_close(name, b->grad, &f, "dbeta", 3, 1e-4);
    nn_ctx_free(ctx);
    fix_free(&f);
}

Test(nn_fixtures, norms_log_softmax_lstm_against_pytorch) {
    norm_fixture("layer_norm", 1);
    norm_fixture("instance_norm", 0);
    fixture f;
    fix_load(&f, "log_softmax");
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = fix_tensor_in(ctx, &f, "x", 1);
    nn_tensor *y = nn_log_softmax(ctx, x);
    expect_close("log_softmax", y->data, &f, "y", y->numel, 1e-6);
    nn_backward_from(ctx, y, fix_get(&f, "gy")->data);
    expect_close("log_softmax", x->grad, &f, "dx", x->numel, 1e-5);
    fix_free(&f);

    fix_load(&f, "lstm");
    x = fix_tensor_in(ctx, &f, "x", 1);
    nn_tensor *wih = fix_tensor_in(ctx, &f, "w_ih", 1), *whh = fix_tensor_in(ctx, &f, "w_hh", 1);
    nn_tensor *h1, *c1;
    nn_lstm_cell(ctx, x, fix_tensor_in(ctx, &f, "h0", 0), fix_tensor_in(ctx, &f, "c0", 0), wih, whh,
                 fix_tensor_in(ctx, &f, "b", 0), &h1, &c1);
    expect_close("lstm", h1->data, &f, "h1", h1->numel, 1e-5);
    expect_close("lstm", c1->data, &f, "c1", c1->numel, 1e-5);
    nn_tensor *cat = nn_concat(ctx, (nn_tensor *[]){h1, c1}, 2, 1);
    float seed[16];
    memcpy(seed, fix_get(&f, "gh")->data, 8 * sizeof(float));
    for (int i = 0; i < 2; i++) {
        memcpy(seed + i * 8, fix_get(&f, "gh")->data + i * 4, 4 * sizeof(float));
        memcpy(seed + i * 8 + 4, fix_get(&f, "gc")->data + i * 4, 4 * sizeof(float));
    }
    nn_backward_from(ctx, cat, seed);
    expect_close("lstm", x->grad, &f, "dx", x->numel, 1e-5);
    expect_close("lstm", wih->grad, &f, "dw_ih", wih->numel, 1e-5);
    expect_close("lstm", whh->grad, &f, "dw_hh", whh->numel, 1e-5);
    nn_ctx_free(ctx);
    fix_free(&f);
}
