/* The training API: it learns, --resume is exact (bitwise the same final weights, BN
 * statistics, moments and EMA as an uninterrupted run), divergence and bad labels are statuses,
 * checkpoints reload as networks. Tiny networks on in-memory images keep it fast. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/nasnet_net.h"
#include "common/rng.h"
#include "tests/util/testutil.h"

enum { S = 8, NTRAIN = 64, NEVAL = 32 };

/* Two classes that a tiny net separates: the bright half is the left (0) or the right (1). */
static void make_images(uint8_t *px, uint8_t *labels, int n, uint64_t seed) {
    nd_rng r;
    nd_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int y = (int)nd_rng_below(&r, 2);
        labels[i] = (uint8_t)y;
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < S; h++)
                for (int w = 0; w < S; w++) {
                    int bright = (w < S / 2) == (y == 0);
                    int v = (bright ? 170 : 70) + (int)nd_rng_below(&r, 60) - 30;
                    px[((i * 3 + c) * S + h) * S + w] = (uint8_t)v;
                }
    }
}

typedef struct data {
    uint8_t px[NTRAIN * 3 * S * S], lab[NTRAIN];
    uint8_t epx[NEVAL * 3 * S * S], elab[NEVAL];
    coco_cls_source train, eval;
} data;

static void data_init(data *d) {
    make_images(d->px, d->lab, NTRAIN, 1);
    make_images(d->epx, d->elab, NEVAL, 2);
    d->train = (coco_cls_source){NTRAIN, d->px, 3, S, S, NULL, NULL, d->lab};
    d->eval = (coco_cls_source){NEVAL, d->epx, 3, S, S, NULL, NULL, d->elab};
}

static nas_net_config tiny(void) {
    nas_net_config c;
    nas_net_preset("nasnet-a-cifar", &c);
    c.num_cells = 1;
    c.num_conv_filters = 4;
    c.image_size = S;
    c.num_classes = 2;
    c.use_aux_head = 0;
    return c;
}

static nas_train_opts opts(void) {
    nas_train_opts o;
    nas_train_opts_default(&o);
    o.batch_size = 16;
    o.epochs = 3;
    o.lr = 0.05;
    o.loader_threads = 0;
    return o;
}

Test(backbone_train, learns_an_easy_task, .timeout = 120) {
    static data d;
    data_init(&d);
    nas_net_config c = tiny();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0);
    nas_train_opts o = opts();
    o.epochs = 8;
    o.weight_decay = 0;
    nas_data tr = {&d.train, 0, 0}, ev = {&d.eval, 0, 0};
    nas_train_result r;
    cr_assert_eq(nas_train(net, &tr, &ev, &o, &r), 0, "%s", nd_last_error());
    cr_expect_eq(r.steps, 8 * (NTRAIN / 16));
    cr_expect_eq(r.epochs_done, 8);
    cr_expect_eq(r.eval.count, NEVAL);
    cr_expect_geq(r.eval.accuracy, 0.9, "accuracy %g", r.eval.accuracy);
    cr_expect(isfinite(r.train_loss) && r.train_loss < 0.6, "train loss %g", r.train_loss);
    nas_eval_result e2;
    cr_assert_eq(nas_evaluate(net, &ev, 7, 0, &e2), 0);
    cr_expect_eq(e2.correct, r.eval.correct); /* batch size does not change evaluation */
    nas_net_free(net);
}

/* Evaluation runs the forward pass a few images at a time (training: a training batch, in the
 * training ctx) and computes each batch's loss on the gathered logits. That gives the numbers of
 * one forward of the whole batch because the evaluation-mode forward treats images
 * independently: bit for bit when the slices are multiples of the convolutions' image groups
 * (slices of 16 here, a trained run's final evaluation in slices of 16 against nas_evaluate in
 * slices of 32), and up to rounding for any slicing (5 images: other GEMM shapes). */
Test(backbone_train, evaluation_in_slices_equals_one_forward_of_the_batch, .timeout = 120) {
    static data d;
    data_init(&d);
    nas_net_config c = tiny();
    c.num_cells = 2;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 4, &net), 0);
    nas_train_opts o = opts();
    o.epochs = 2;
    nas_data tr = {&d.train, 0, 0}, ev = {&d.eval, 0, 0};
    nas_train_result r;
    cr_assert_eq(nas_train(net, &tr, &ev, &o, &r), 0, "%s", nd_last_error());
    cr_assert_eq(r.eval.count, NEVAL);
    nas_eval_result e;
    cr_assert_eq(nas_evaluate(net, &ev, 100, 0, &e), 0, "%s", nd_last_error());
    cr_expect_eq(e.correct, r.eval.correct);
    cr_expect(e.loss == r.eval.loss, "loss %.17g in slices of 16, %.17g in one slice", r.eval.loss, e.loss);

    /* The forward itself: all 32 images at once, then in slices of 16 and of 5 (the last of 2). */
    float x[NEVAL * 3 * S * S];
    for (int i = 0; i < NEVAL * 3 * S * S; i++) x[i] = (float)d.epx[i] / 127.5f - 1.0f;
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    nn_ctx_set_training(ctx, 0);
    nas_net_output whole;
    cr_assert_eq(nas_net_forward(net, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(NEVAL, 3, S, S), x), 0, &whole), 0);
    int64_t k = whole.logits->shape[1], fsz = whole.features->numel / NEVAL;
    float *lw = malloc(sizeof(float) * (size_t)(NEVAL * k)), *fw = malloc(sizeof(float) * (size_t)(NEVAL * fsz));
    memcpy(lw, whole.logits->data, sizeof(float) * (size_t)(NEVAL * k));
    memcpy(fw, whole.features->data, sizeof(float) * (size_t)(NEVAL * fsz));
    double spread = 0;
    for (int64_t i = 0; i < NEVAL * k; i++) spread += fabs(lw[i] - lw[0]);
    cr_assert_gt(spread, 0, "the trained classifier gives the images different logits");
    for (int slice = 16; slice >= 5; slice -= 11)
        for (int i0 = 0; i0 < NEVAL; i0 += slice) {
            int m = NEVAL - i0 < slice ? NEVAL - i0 : slice;
            nn_ctx_reset(ctx);
            nas_net_output part;
            cr_assert_eq(nas_net_forward(net, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(m, 3, S, S), x + i0 * 3 * S * S),
                                         0, &part), 0);
            if (slice == 16) {
                cr_expect_eq(memcmp(part.logits->data, lw + i0 * k, sizeof(float) * (size_t)(m * k)), 0,
                             "logits of images %d..%d differ from the whole batch's", i0, i0 + m - 1);
                cr_expect_eq(memcmp(part.features->data, fw + i0 * fsz, sizeof(float) * (size_t)(m * fsz)), 0,
                             "features of images %d..%d differ from the whole batch's", i0, i0 + m - 1);
            }
            for (int64_t j = 0; j < m * k; j++)
                cr_expect_float_eq(part.logits->data[j], lw[i0 * k + j], 1e-5f * (1.0f + fabsf(lw[i0 * k + j])),
                                   "slices of %d: logit %lld of image %d: %.9g, whole batch %.9g", slice, (long long)(j % k),
                                   i0 + (int)(j / k), part.logits->data[j], lw[i0 * k + j]);
        }
    free(lw);
    free(fw);
    nn_ctx_free(ctx);
    nas_net_free(net);
}

/* The classifier starts at the uniform prediction (zero-initialised FC), so a fresh network's
 * loss is ln K whatever its features: TF-slim's FAN_OUT init started it at 6-14 on digits and
 * stalled learning for hundreds of steps. */
Test(backbone_train, a_fresh_network_predicts_uniformly, .timeout = 60) {
    static data d;
    data_init(&d);
    nas_net_config c = tiny();
    c.num_classes = 5;
    c.num_cells = 3;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 3, &net), 0, "%s", nd_last_error());
    /* Labels 0/1 fit the 5 classes; evaluation runs the eval-mode forward on every image. */
    nas_data ev = {&d.eval, 0, 0};
    nas_eval_result e;
    cr_assert_eq(nas_evaluate(net, &ev, 8, 0, &e), 0, "%s", nd_last_error());
    cr_expect_float_eq(e.loss, log(5.0), 1e-6, "first loss %.9g, ln 5 = %.9g", e.loss, log(5.0));
    nas_net_free(net);
}

Test(backbone_train, adam_learns_the_easy_task, .timeout = 120) {
    static data d;
    data_init(&d);
    nas_net_config c = tiny();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0);
    nas_train_opts o = opts();
    o.epochs = 6;
    o.optimizer = NN_OPTIM_ADAM;
    o.lr = 0.01;
    nas_data tr = {&d.train, 0, 0}, ev = {&d.eval, 0, 0};
    nas_train_result r;
    cr_assert_eq(nas_train(net, &tr, &ev, &o, &r), 0, "%s", nd_last_error());
    cr_expect_geq(r.eval.accuracy, 0.9, "accuracy %g", r.eval.accuracy);
    nas_net_free(net);
}

static int stop_after_first(const nas_epoch_stats *st, void *user) {
    (void)user;
    return st->epoch == 0;
}

/* Every tensor of both stores (moments and EMA shadows are compared through checkpoints). */
static void expect_same_files(const char *a, const char *b) {
    size_t la, lb;
    char *x = tu_read_file(a, &la), *y = tu_read_file(b, &lb);
    cr_assert(x && y);
    cr_expect_eq(la, lb);
    cr_expect_eq(memcmp(x, y, la < lb ? la : lb), 0, "%s and %s differ", a, b);
    free(x);
    free(y);
}

Test(backbone_train, resume_gives_the_uninterrupted_weights, .timeout = 120) {
    static data d;
    data_init(&d);
    char *dir = tu_tmpdir();
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    nas_net_config c = tiny();
    nas_train_opts o = opts();
    o.ema_decay = 0.9;            /* EMA shadows must resume too */
    o.drop_path_keep = 0.6;       /* masks drawn per step */
    o.cutout = 4;                 /* augmentation drawn per epoch */
    o.pad = 2;
    nas_data tr = {&d.train, 0, 0};
    nas_train_result r;
    nas_net *n1, *n2;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 5, &n1), 0);
    o.checkpoint = a;
    cr_assert_eq(nas_train(n1, &tr, NULL, &o, &r), 0, "%s", nd_last_error());

    cr_assert_eq(nas_net_new(&c, NULL, NULL, 5, &n2), 0);
    o.checkpoint = b;
    o.on_epoch = stop_after_first;
    cr_assert_eq(nas_train(n2, &tr, NULL, &o, &r), ND_ERR_INTERRUPTED);
    cr_expect_eq(r.epochs_done, 1);
    nas_net_free(n2);
    /* A fresh process: new network, same seed, --resume. */
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 5, &n2), 0);
    o.on_epoch = NULL;
    o.resume = 1;
    cr_assert_eq(nas_train(n2, &tr, NULL, &o, &r), 0, "%s", nd_last_error());
    cr_expect_eq(r.epochs_done, 3);
    nn_params *p1 = nas_net_params(n1), *p2 = nas_net_params(n2);
    cr_assert_eq(nn_params_count(p1), nn_params_count(p2));
    for (int64_t i = 0; i < nn_params_count(p1); i++) {
        nn_tensor *x = nn_params_at(p1, i), *y = nn_params_at(p2, i);
        cr_expect_eq(memcmp(x->data, y->data, (size_t)x->numel * sizeof(float)), 0, "%s differs after resume",
                     x->name);
    }
    expect_same_files(a, b);
    /* A checkpoint reloads as a network with the same config. */
    nas_net *n3;
    cr_assert_eq(nas_net_load(a, &n3), 0, "%s", nd_last_error());
    cr_expect_eq(nas_net_get_config(n3)->num_conv_filters, 4);
    nn_tensor *w = nn_params_get(nas_net_params(n3), "final_layer/FC/weights");
    cr_expect_eq(memcmp(w->data, nn_params_get(p1, "final_layer/FC/weights")->data, (size_t)w->numel * 4), 0);
    nas_net_free(n3);
    /* Resuming with another seed is refused with a message. */
    nas_net *n4;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 5, &n4), 0);
    o.seed = 99;
    cr_expect_eq(nas_train(n4, &tr, NULL, &o, &r), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "seed") != NULL, "%s", nd_last_error());
    nas_net_free(n4);
    nas_net_free(n1);
    nas_net_free(n2);
    tu_rmtree(dir);
    free(dir);
}

Test(backbone_train, divergence_is_a_status_not_an_abort) {
    static data d;
    data_init(&d);
    nas_net_config c = tiny();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0);
    nas_train_opts o = opts();
    o.lr = 1e30;
    o.clip_norm = 0;
    o.epochs = 4;
    nas_data tr = {&d.train, 0, 0};
    nas_train_result r;
    cr_expect_eq(nas_train(net, &tr, NULL, &o, &r), ND_ERR_NUMERIC);
    cr_expect(strstr(nd_last_error(), "diverged") != NULL, "%s", nd_last_error());
    nas_net_free(net);
}

Test(backbone_train, bad_labels_and_options_are_refused) {
    static data d;
    data_init(&d);
    d.lab[5] = 7;
    nas_net_config c = tiny();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0);
    nas_train_opts o = opts();
    nas_data tr = {&d.train, 0, 0};
    nas_train_result r;
    cr_expect_eq(nas_train(net, &tr, NULL, &o, &r), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "sample 5 has label 7") != NULL, "%s", nd_last_error());
    d.lab[5] = 1;
    o.batch_size = 1;
    cr_expect_eq(nas_train(net, &tr, NULL, &o, &r), ND_ERR_INVALID);
    o = opts();
    nas_data beyond = {&d.train, 60, 10};
    cr_expect_eq(nas_train(net, &beyond, NULL, &o, &r), ND_ERR_INVALID);
    nas_net_free(net);
}
