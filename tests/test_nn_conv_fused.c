/* The inference paths of convolution: nn_conv2d_fused (ReLU -> conv -> eval batch norm -> ReLU in
 * one pass) against the same ops called one by one (bit for bit) and against a double reference,
 * on every kernel path it takes: the direct kernel in place (1x1, batch 1 and 3, small maps
 * split by channels, short last position blocks, channel counts that leave a short last
 * register tile), the direct kernel on padded planes (3x3, 1x7) and on stride phases (strided
 * stems, negative pads), the GEMM path (every case again under NN_CONV_GEMM=1: a 1x1 convolution's
 * input ReLU then needs a rectified copy), depthwise (the flat stride-1 kernel, the
 * stride-1 row kernel on rows of whole 32-column blocks,
 * dilation, the strided row kernel), each with one thread and with two (bit for bit), with
 * AVX-512 and under NN_NO_AVX512=1. Then the weights change under a model in inference (an
 * optimizer step, a checkpoint load): the next pass must use the new values. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/rng.h"
#include "nn/nn.h"

typedef struct fcase {
    const char *name;
    int64_t x[4], w[4];
    nn_conv2d_params p;
    int relu_in, bn, relu_out; /* bn: 0 none, 1 gamma and beta, 2 neither (1 and 0) */
} fcase;

#define EXPL(s, pt, pb, pl, pr) {s, s, 1, 1, 1, pt, pb, pl, pr, 0}
#define SAME(s) {s, s, 1, 1, 1, 0, 0, 0, 0, 1}
#define DW(c, s, d) {s, s, d, d, c, 0, 0, 0, 0, 1}

static const fcase cases[] = {
    {"1x1 batch 3, relu-conv-bn", {3, 40, 12, 12}, {36, 40, 1, 1}, EXPL(1, 0, 0, 0, 0), 1, 1, 0},
    {"1x1 batch 1 7x7 (channels per thread), all three", {1, 176, 7, 7}, {44, 176, 1, 1}, EXPL(1, 0, 0, 0, 0), 1, 1, 1},
    {"1x1 batch 1 14x14, conv-bn-relu", {1, 88, 14, 14}, {88, 88, 1, 1}, EXPL(1, 0, 0, 0, 0), 0, 1, 1},
    {"1x1 batch 2 28x28, bn without gamma/beta", {2, 44, 28, 28}, {22, 44, 1, 1}, EXPL(1, 0, 0, 0, 0), 1, 2, 0},
    {"1x1 relu only", {2, 64, 9, 9}, {11, 64, 1, 1}, EXPL(1, 0, 0, 0, 0), 1, 0, 1},
    {"3x3 SAME (padded planes)", {2, 16, 13, 13}, {20, 16, 3, 3}, SAME(1), 1, 1, 1},
    {"1x7 SAME (padded rows)", {1, 12, 10, 10}, {12, 12, 1, 7}, SAME(1), 1, 1, 0},
    {"1x1 stride 2 (direct, one phase, rectified as read)", {2, 32, 11, 11}, {11, 32, 1, 1}, SAME(2), 1, 1, 0},
    {"3x3 stride 2 stem (direct on stride phases, short sums)", {2, 3, 17, 17}, {16, 3, 3, 3}, EXPL(2, 0, 0, 0, 0), 0, 1, 1},
    {"1x1 stride 2, negative pads (crop) top-left, odd size", {2, 24, 11, 11}, {10, 24, 1, 1}, EXPL(2, -1, 1, -1, 1), 1, 1, 0},
    {"1x1 stride 2, negative pads, even size, batch 1", {1, 40, 28, 28}, {44, 40, 1, 1}, EXPL(2, -1, 0, -1, 0), 1, 0, 0},
    {"3x3 stride 3x1, relu-conv (stride phases gathered one by one)", {2, 8, 14, 12}, {10, 8, 3, 3},
     {3, 1, 1, 1, 1, 1, 0, 1, 1, 0}, 1, 1, 0},
    {"3x3 stride 2, negative pads on every side", {1, 8, 13, 13}, {9, 8, 3, 3}, EXPL(2, -1, -2, -2, 1), 0, 1, 1},
    {"depthwise 3x3 7x7 (flat kernel)", {2, 24, 7, 7}, {24, 1, 3, 3}, DW(24, 1, 1), 1, 0, 0},
    {"depthwise 5x5 28x28 (flat kernel, long planes)", {1, 8, 28, 28}, {8, 1, 5, 5}, DW(8, 1, 1), 1, 1, 1},
    {"depthwise 3x3 dilation 2", {2, 6, 15, 15}, {6, 1, 3, 3}, DW(6, 1, 2), 1, 1, 0},
    {"depthwise 7x7 32x32 (row kernel: whole 32-column rows)", {2, 5, 32, 32}, {5, 1, 7, 7}, DW(5, 1, 1), 1, 1, 1},
    {"depthwise 3x3 dilation 2 on 64 columns (row kernel)", {1, 3, 9, 64}, {3, 1, 3, 3}, DW(3, 1, 2), 0, 1, 1},
    {"depthwise 7x7 stride 2 (row kernel)", {1, 10, 23, 23}, {10, 1, 7, 7}, DW(10, 2, 1), 1, 1, 1},
    {"depthwise 5x5 stride 2 batch 3", {3, 33, 14, 14}, {33, 1, 5, 5}, DW(33, 2, 1), 0, 1, 0},
    {"depthwise 4x4 stride 2 (even kernel: column phases of 2 and 2)", {2, 5, 17, 18}, {5, 1, 4, 4}, DW(5, 2, 1), 1, 1, 0},
    {"depthwise 1x3 stride 2 explicit pads", {1, 7, 9, 40}, {7, 1, 1, 3}, {2, 2, 1, 1, 7, 0, 1, 1, 0, 0}, 1, 0, 1},
    {"depthwise 3x1 stride 2 (one column phase)", {1, 4, 11, 11}, {4, 1, 3, 1}, DW(4, 2, 1), 0, 1, 1},
    {"depthwise 7x7 stride 2 on 111x111 (the Mobile stem)", {1, 3, 111, 111}, {3, 1, 7, 7}, DW(3, 2, 1), 1, 1, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

typedef struct model {
    nn_params *ps;
    nn_tensor *w, *gamma, *beta, *mean, *var;
} model;

static model model_new(const fcase *c, uint64_t seed) {
    model m;
    nd_rng rng;
    nd_rng_seed(&rng, seed);
    int64_t co = c->w[0];
    m.ps = nn_params_new();
    m.w = nn_params_add(m.ps, "w", 4, c->w, 0);
    m.gamma = nn_params_add(m.ps, "gamma", 1, NN_SHAPE(co), 0);
    m.beta = nn_params_add(m.ps, "beta", 1, NN_SHAPE(co), 0);
    m.mean = nn_params_add(m.ps, "mean", 1, NN_SHAPE(co), NN_PARAM_BUFFER);
    m.var = nn_params_add(m.ps, "var", 1, NN_SHAPE(co), NN_PARAM_BUFFER);
    nn_init_uniform(m.w, -0.5, 0.5, &rng);
    nn_init_uniform(m.gamma, 0.5, 1.5, &rng);
    nn_init_uniform(m.beta, -0.5, 0.5, &rng);
    nn_init_uniform(m.mean, -0.3, 0.3, &rng);
    nn_init_uniform(m.var, 0.2, 2.0, &rng);
    return m;
}

static nn_bn_tensors bn_tensors(const fcase *c, const model *m) {
    nn_bn_tensors t = {c->bn == 1 ? m->gamma : NULL, c->bn == 1 ? m->beta : NULL, m->mean, m->var};
    return t;
}

static const nn_bn_params bnp = {1e-3f, 0.1f};

/* The layer as separate ops (nn_relu, nn_conv2d, nn_batch_norm, nn_relu). */
static nn_tensor *separate(nn_ctx *ctx, const fcase *c, const model *m, nn_tensor *x) {
    nn_conv2d_params p = c->p;
    if (!p.same && (p.pad_t < 0 || p.pad_b < 0 || p.pad_l < 0 || p.pad_r < 0)) {
        /* Negative pads: the crop they stand for, then the non-negative ones. */
        int64_t t = p.pad_t < 0 ? -p.pad_t : 0, b = p.pad_b < 0 ? -p.pad_b : 0;
        int64_t l = p.pad_l < 0 ? -p.pad_l : 0, r = p.pad_r < 0 ? -p.pad_r : 0;
        x = nn_crop(ctx, x, t, l, x->shape[2] - t - b, x->shape[3] - l - r);
        p.pad_t = p.pad_t < 0 ? 0 : p.pad_t;
        p.pad_b = p.pad_b < 0 ? 0 : p.pad_b;
        p.pad_l = p.pad_l < 0 ? 0 : p.pad_l;
        p.pad_r = p.pad_r < 0 ? 0 : p.pad_r;
    }
    nn_tensor *y = nn_conv2d(ctx, c->relu_in ? nn_relu(ctx, x) : x, m->w, NULL, &p);
    nn_bn_tensors t = bn_tensors(c, m);
    if (c->bn) y = nn_batch_norm(ctx, y, t.gamma, t.beta, t.running_mean, t.running_var, &bnp);
    return c->relu_out ? nn_relu(ctx, y) : y;
}

static nn_tensor *fused(nn_ctx *ctx, const fcase *c, const model *m, nn_tensor *x) {
    nn_bn_tensors t = bn_tensors(c, m);
    return nn_conv2d_fused(ctx, x, c->relu_in, m->w, &c->p, &t, c->bn ? &bnp : NULL, c->relu_out);
}

/* An inference ctx (no gradient, evaluation mode) with `threads` threads. */
static nn_ctx *infer_ctx(int threads) {
    nn_set_threads(threads);
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    nn_ctx_set_training(ctx, 0);
    return ctx;
}

/* The layer in double: relu, convolution (TF SAME or explicit pads), batch norm, relu. */
static double *reference(const fcase *c, const model *m, const float *x, int64_t *ny) {
    const nn_conv2d_params *p = &c->p;
    int64_t n = c->x[0], cin = c->x[1], h = c->x[2], wd = c->x[3], co = c->w[0], cig = c->w[1], kh = c->w[2],
            kw = c->w[3], g = p->groups, cog = co / g;
    int64_t pt = p->pad_t, pl = p->pad_l, oh, ow;
    if (p->same) {
        oh = (h + p->stride_h - 1) / p->stride_h;
        ow = (wd + p->stride_w - 1) / p->stride_w;
        int64_t th = (oh - 1) * p->stride_h + p->dil_h * (kh - 1) + 1 - h, tw = (ow - 1) * p->stride_w + p->dil_w * (kw - 1) + 1 - wd;
        pt = th > 0 ? th / 2 : 0;
        pl = tw > 0 ? tw / 2 : 0;
    } else {
        oh = (h + p->pad_t + p->pad_b - p->dil_h * (kh - 1) - 1) / p->stride_h + 1;
        ow = (wd + p->pad_l + p->pad_r - p->dil_w * (kw - 1) - 1) / p->stride_w + 1;
    }
    *ny = n * co * oh * ow;
    double *y = malloc((size_t)*ny * sizeof(double));
    for (int64_t b = 0; b < n; b++)
        for (int64_t o = 0; o < co; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = 0.0;
                    for (int64_t ci = 0; ci < cig; ci++)
                        for (int64_t u = 0; u < kh; u++)
                            for (int64_t v = 0; v < kw; v++) {
                                int64_t ih = i * p->stride_h - pt + u * p->dil_h, iw = j * p->stride_w - pl + v * p->dil_w;
                                if (ih < 0 || iw < 0 || ih >= h || iw >= wd) continue;
                                double xv = x[((b * cin + o / cog * cig + ci) * h + ih) * wd + iw];
                                if (c->relu_in && xv < 0) xv = 0;
                                s += xv * m->w->data[((o * cig + ci) * kh + u) * kw + v];
                            }
                    if (c->bn) {
                        double ga = c->bn == 1 ? m->gamma->data[o] : 1.0, be = c->bn == 1 ? m->beta->data[o] : 0.0;
                        s = (s - m->mean->data[o]) / sqrt((double)m->var->data[o] + 1e-3) * ga + be;
                    }
                    if (c->relu_out && s < 0) s = 0;
                    y[((b * co + o) * oh + i) * ow + j] = s;
                }
    return y;
}

static int check_case(const fcase *c, int k) {
    model m = model_new(c, 100 + (uint64_t)k);
    nd_rng rng;
    nd_rng_seed(&rng, 200 + (uint64_t)k);
    int64_t nx = c->x[0] * c->x[1] * c->x[2] * c->x[3], ny;
    float *xs = malloc((size_t)nx * sizeof(float));
    for (int64_t i = 0; i < nx; i++) xs[i] = (float)nd_rng_range(&rng, -1, 1);
    double *ref = reference(c, &m, xs, &ny);
    int bad = 0;
    float *first = NULL;
    for (int threads = 1; threads <= 2; threads++) {
        nn_ctx *ctx = infer_ctx(threads);
        nn_tensor *x = nn_tensor_from(ctx, 4, c->x, xs);
        nn_tensor *yf = fused(ctx, c, &m, x);
        cr_expect(nn_ctx_tape_len(ctx) == 0, "%s: inference records nothing", c->name);
        nn_tensor *ys = separate(ctx, c, &m, x);
        cr_assert_eq(yf->numel, ny, "%s: output size %lld, reference %lld", c->name, (long long)yf->numel,
                     (long long)ny);
        cr_assert_eq(ys->numel, ny, "%s: separate ops' output size", c->name);
        if (memcmp(yf->data, ys->data, (size_t)ny * sizeof(float))) {
            for (int64_t i = 0, shown = 0; i < ny && shown < 3; i++)
                if (yf->data[i] != ys->data[i])
                    cr_log_error("%s (%d threads): fused[%lld] = %.9g, separate ops %.9g", c->name, threads,
                                 (long long)i, (double)yf->data[i], (double)ys->data[i]), shown++;
            bad++;
        }
        for (int64_t i = 0, shown = 0; i < ny; i++)
            if (fabs(yf->data[i] - ref[i]) > 1e-4 * (1.0 + fabs(ref[i]))) {
                if (shown++ < 3)
                    cr_log_error("%s: y[%lld] = %.7g, reference %.7g", c->name, (long long)i, (double)yf->data[i],
                                 ref[i]);
                bad++;
            }
        if (threads == 1) {
            first = malloc((size_t)ny * sizeof(float));
            memcpy(first, yf->data, (size_t)ny * sizeof(float));
        } else if (memcmp(first, yf->data, (size_t)ny * sizeof(float))) {
            cr_log_error("%s: one thread and two threads differ", c->name);
            bad++;
        }
        nn_ctx_free(ctx);
    }
    nn_set_threads(0);
    free(first), free(xs), free(ref);
    nn_params_free(m.ps);
    return bad;
}

static void check_all(void) {
    int failed = 0;
    for (int k = 0; k < NCASES; k++)
        if (check_case(&cases[k], k)) {
            cr_log_error("FAILED: %s", cases[k].name);
            failed++;
        }
    cr_assert_eq(failed, 0, "%d of %d fused cases failed", failed, NCASES);
}

Test(nn_conv_fused, equals_separate_ops_and_reference) { check_all(); }

Test(nn_conv_fused, avx2_kernels) {
    setenv("NN_NO_AVX512", "1", 1);
    check_all();
}

/* Where a gradient is needed, or batch norm must use batch statistics, the call records the
 * separate ops: same values, and the gradient reaches the input and the weights. */
Test(nn_conv_fused, gemm_path) {
    setenv("NN_CONV_GEMM", "1", 1);
    check_all();
}

Test(nn_conv_fused, records_separate_ops_when_training) {
    const fcase *c = &cases[0];
    model m = model_new(c, 7);
    nn_ctx *ctx = nn_ctx_new();
    nd_rng rng;
    nd_rng_seed(&rng, 8);
    nn_tensor *x = nn_tensor_new(ctx, 4, c->x);
    nn_init_uniform(x, -1, 1, &rng);
    nn_tensor_requires_grad(x);
    nn_tensor *y = fused(ctx, c, &m, x);
    cr_expect_eq(nn_ctx_tape_len(ctx), 3, "relu, conv and batch norm recorded (got %lld)",
                 (long long)nn_ctx_tape_len(ctx));
    nn_backward(ctx, nn_sum(ctx, y));
    cr_expect(x->grad != NULL && m.w->grad != NULL, "gradients reach x and w");
    nn_ctx_free(ctx);
    nn_params_free(m.ps);
}

/* The kernels read the weights where they are on every call: after an optimizer step or a
 * checkpoint load, the next inference pass gives the reference values of the new weights (a
 * stale copy of the old ones would not). */
static void expect_reference(const fcase *c, const model *m, const float *xs, const char *when) {
    int64_t ny;
    double *ref = reference(c, m, xs, &ny);
    nn_ctx *ctx = infer_ctx(2);
    nn_tensor *y = fused(ctx, c, m, nn_tensor_from(ctx, 4, c->x, xs));
    int bad = 0;
    for (int64_t i = 0; i < ny; i++) bad += fabs(y->data[i] - ref[i]) > 1e-4 * (1.0 + fabs(ref[i]));
    cr_expect_eq(bad, 0, "%s: %d of %lld outputs differ from the reference of the current weights", when, bad,
                 (long long)ny);
    nn_ctx_free(ctx);
    nn_set_threads(0);
    free(ref);
}

Test(nn_conv_fused, new_weights_after_optimizer_step_and_checkpoint_load) {
    const int picks[] = {1, 5, 10}; /* direct 1x1, padded 3x3, depthwise */
    char path[64];
    snprintf(path, sizeof path, "/tmp/nasdet_fused_%d.safetensors", (int)getpid());
    for (int q = 0; q < 3; q++) {
        const fcase *c = &cases[picks[q]];
        model m = model_new(c, 300 + (uint64_t)q);
        nd_rng rng;
        nd_rng_seed(&rng, 400 + (uint64_t)q);
        int64_t nx = c->x[0] * c->x[1] * c->x[2] * c->x[3];
        float *xs = malloc((size_t)nx * sizeof(float));
        for (int64_t i = 0; i < nx; i++) xs[i] = (float)nd_rng_range(&rng, -1, 1);
        expect_reference(c, &m, xs, c->name);
        cr_assert_eq(nn_checkpoint_save(path, m.ps, NULL, 0), 0);
        /* An SGD step with made-up gradients moves w, gamma and beta. */
        nn_tensor *ts[3] = {m.w, m.gamma, m.beta};
        for (int t = 0; t < 3; t++)
            for (int64_t i = 0; i < ts[t]->numel; i++) ts[t]->grad[i] = (float)nd_rng_range(&rng, -1, 1);
        float w0 = m.w->data[0];
        nn_optim_config oc = nn_optim_sgd(0.0, 0, 0.0);
        nn_optim_step(m.ps, &oc, 0.5);
        cr_assert(m.w->data[0] != w0, "the step moved the weights");
        expect_reference(c, &m, xs, "after an optimizer step");
        /* Back to the saved weights. */
        cr_assert_eq(nn_checkpoint_load(path, m.ps, NULL, 0), 0);
        expect_reference(c, &m, xs, "after a checkpoint load");
        free(xs);
        nn_params_free(m.ps);
    }
    unlink(path);
}
