/* The backend seam without a GPU: the "emulated" backend keeps tensors in host memory but takes
 * the device path (NN_TENSOR_DEVICE tensors and stores, every op through the tape's CPU fallback,
 * host access through nn_tensor_host / nn_item). A small network trained on it must match the
 * CPU bit for bit, and its checkpoints must be the CPU's files. tests/gpu/ does the same against
 * the CUDA backend where a GPU exists. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "nn/nn.h"

typedef struct net {
    nn_params *ps;
    nn_tensor *w1, *dw, *g, *b, *rm, *rv, *lw, *lb, *lng;
} net;

static void net_init(net *n) {
    n->ps = nn_params_new();
    n->w1 = nn_params_add(n->ps, "w1", 4, NN_SHAPE(6, 3, 3, 3), 0);
    n->dw = nn_params_add(n->ps, "dw", 4, NN_SHAPE(6, 1, 3, 3), 0);
    n->g = nn_params_add(n->ps, "bn.g", 1, NN_SHAPE(6), NN_PARAM_NO_DECAY);
    n->b = nn_params_add(n->ps, "bn.b", 1, NN_SHAPE(6), NN_PARAM_NO_DECAY);
    n->rm = nn_params_add(n->ps, "bn.mean", 1, NN_SHAPE(6), NN_PARAM_BUFFER);
    n->rv = nn_params_add(n->ps, "bn.var", 1, NN_SHAPE(6), NN_PARAM_BUFFER);
    n->lng = nn_params_add(n->ps, "ln.g", 1, NN_SHAPE(12), NN_PARAM_NO_DECAY);
    n->lw = nn_params_add(n->ps, "fc.w", 2, NN_SHAPE(4, 12), 0);
    n->lb = nn_params_add(n->ps, "fc.b", 1, NN_SHAPE(4), NN_PARAM_NO_DECAY);
    nd_rng rng;
    nd_rng_seed(&rng, 11);
    nn_init_variance_scaling(n->w1, 2.0, NN_FAN_IN, NN_DIST_NORMAL, &rng);
    nn_init_variance_scaling(n->dw, 2.0, NN_FAN_IN, NN_DIST_NORMAL, &rng);
    nn_init_variance_scaling(n->lw, 1.0, NN_FAN_AVG, NN_DIST_UNIFORM, &rng);
    nn_init_constant(n->g, 1.0f);
    nn_init_constant(n->rv, 1.0f);
    nn_init_constant(n->lng, 1.0f);
}

/* conv -> BN -> ReLU -> depthwise -> (h + h) -> concat with a max-pool branch -> avg-pool ->
 * drop-path -> GAP -> layer norm -> dropout -> FC -> CE + a BCE on a slice (host targets). */
static nn_tensor *forward(net *n, nn_ctx *ctx, const float *img, const int32_t *lab) {
    nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(4, 3, 8, 8), img);
    nn_conv2d_params cp = nn_conv2d_same(1, 1);
    nn_bn_params bp = {1e-3f, 0.1f};
    nn_tensor *h = nn_relu(ctx, nn_batch_norm(ctx, nn_conv2d(ctx, x, n->w1, NULL, &cp), n->g, n->b, n->rm, n->rv, &bp));
    nn_conv2d_params dp = nn_conv2d_same(1, 1);
    dp.groups = 6;
    h = nn_conv2d(ctx, h, n->dw, NULL, &dp);
    h = nn_add(ctx, h, h); /* one tensor twice in one node */
    nn_pool_params mp = nn_pool_same(3, 1);
    nn_tensor *cat[2] = {h, nn_max_pool2d(ctx, h, &mp)};
    h = nn_concat(ctx, cat, 2, 1);
    nn_pool_params ap = nn_pool_same(3, 2);
    h = nn_drop_path(ctx, nn_avg_pool2d(ctx, h, &ap), 0.7f);
    nn_tensor *f = nn_reshape(ctx, nn_global_avg_pool(ctx, h), 4, NN_SHAPE(4, 12, 1, 1));
    f = nn_reshape(ctx, nn_layer_norm(ctx, f, n->lng, NULL, 1e-3f), 2, NN_SHAPE(4, 12));
    nn_tensor *logits = nn_linear(ctx, nn_dropout(ctx, f, 0.2f), n->lw, n->lb);
    nn_tensor *t = nn_tensor_new_host(ctx, 2, NN_SHAPE(4, 2));
    for (int i = 0; i < 8; i++) t->data[i] = (float)(i % 3 == 0);
    nn_tensor *bce = nn_bce_with_logits(ctx, nn_slice(ctx, logits, 1, 1, 2), t, NULL, 0.0f);
    return nn_add(ctx, nn_softmax_cross_entropy(ctx, logits, lab, 0.1f), nn_scale(ctx, bce, 0.5f, 0.0f));
}

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

Test(nn_backend, emulated_device_trains_like_the_cpu) {
    net a, b;
    net_init(&a);
    net_init(&b);
    cr_assert_eq(nn_params_to_device(b.ps, "emulated"), 0);
    cr_expect_str_eq(nn_params_device(b.ps), "emulated");
    cr_expect(b.w1->flags & NN_TENSOR_DEVICE);
    nn_ctx *ca = nn_ctx_new_like(a.ps), *cb = nn_ctx_new_like(b.ps);
    cr_expect_str_eq(nn_ctx_backend(ca), "cpu");
    cr_expect_str_eq(nn_ctx_backend(cb), "emulated");
    nd_rng rng;
    nd_rng_seed(&rng, 3);
    float img[4 * 3 * 64];
    int32_t lab[4] = {0, 3, -1, 2};
    nn_optim_config oc = nn_optim_adam(0.9, 0.999, 1e-8, 1e-4);
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < 4 * 3 * 64; i++) img[i] = (float)nd_rng_range(&rng, -1, 1);
        float la = 0, lb = 0;
        for (int k = 0; k < 2; k++) {
            net *n = k ? &b : &a;
            nn_ctx *c = k ? cb : ca;
            nn_ctx_reset(c);
            nn_params_zero_grad(n->ps);
            nn_ctx_seed(c, 100 + (uint64_t)step);
            nn_tensor *loss = forward(n, c, img, lab);
            nn_backward(c, loss);
            nn_params_clip_grad_norm(n->ps, 1.0);
            nn_optim_step(n->ps, &oc, 0.01);
            nn_params_ema_update(n->ps, 0.5);
            *(k ? &lb : &la) = nn_item(c, loss);
        }
        cr_expect(isfinite(la) && la > 0, "loss %g", (double)la);
        cr_expect_eq(memcmp(&la, &lb, sizeof la), 0, "step %d: loss cpu %.9g, emulated %.9g", step, (double)la, (double)lb);
    }
    for (int64_t i = 0; i < nn_params_count(a.ps); i++) {
        nn_tensor *ta = nn_params_at(a.ps, i), *tb = nn_params_at(b.ps, i);
        cr_expect_eq(memcmp(ta->data, nn_tensor_host(cb, tb), (size_t)ta->numel * 4), 0, "%s differs", ta->name);
    }
    const char *fa = "/tmp/nn_backend_a.safetensors", *fb = "/tmp/nn_backend_b.safetensors";
    cr_assert_eq(nn_checkpoint_save(fa, a.ps, NULL, NN_CKPT_OPTIM), 0);
    cr_assert_eq(nn_checkpoint_save(fb, b.ps, NULL, NN_CKPT_OPTIM), 0);
    cr_expect(files_equal(fa, fb), "checkpoints of the two devices differ");
    /* load into the device store, back to the host: the same file again */
    cr_assert_eq(nn_checkpoint_load(fa, b.ps, NULL, 0), 0);
    cr_assert_eq(nn_params_to_device(b.ps, "cpu"), 0);
    cr_expect(!(b.w1->flags & NN_TENSOR_DEVICE));
    cr_assert_eq(nn_checkpoint_save(fb, b.ps, NULL, NN_CKPT_OPTIM), 0);
    cr_expect(files_equal(fa, fb), "checkpoint after load and move back differs");
    remove(fa), remove(fb);
    nn_ctx_free(ca), nn_ctx_free(cb);
    nn_params_free(a.ps), nn_params_free(b.ps);
}

Test(nn_backend, host_access_and_names) {
    nn_ctx *ctx = nn_ctx_new();
    cr_expect_eq(nn_ctx_set_backend(ctx, "tpu"), ND_ERR_INVALID);
    /* "cuda": a CPU build says how to get one; a CUDA build without a GPU says none answered */
    if (nn_cuda_device_count() == 0) {
        int rc = nn_ctx_set_backend(ctx, "cuda");
        cr_expect(rc == ND_ERR_UNSUPPORTED || rc == ND_ERR_DEVICE, "rc %d", rc);
        if (rc == ND_ERR_UNSUPPORTED) cr_expect(strstr(nd_last_error(), "CUDA=1") != NULL, "message: %s", nd_last_error());
        cr_expect_str_eq(nn_ctx_backend(ctx), "cpu");
    }
    cr_assert_eq(nn_ctx_set_backend(ctx, "emulated"), 0);
    float v[6] = {1, -2, 3, -4, 5, -6};
    nn_tensor *t = nn_tensor_from(ctx, 2, NN_SHAPE(2, 3), v);
    cr_expect(t->flags & NN_TENSOR_DEVICE);
    cr_expect_eq(memcmp(nn_tensor_host(ctx, t), v, sizeof v), 0);
    nn_tensor *h = nn_tensor_to_host(ctx, t);
    cr_expect(h != t && !(h->flags & NN_TENSOR_DEVICE) && h->data[4] == 5.0f);
    nn_tensor *s = nn_sum(ctx, nn_relu(ctx, t));
    cr_expect_float_eq(nn_item(ctx, s), 9.0f, 0.0f);
    float w[6] = {0, 0, 0, 0, 0, 7};
    nn_tensor_set(ctx, t, w);
    cr_expect_float_eq(nn_item(ctx, nn_sum(ctx, t)), 7.0f, 0.0f);
    nn_tensor *f = nn_tensor_full(ctx, 1, NN_SHAPE(5), 2.5f);
    cr_expect_float_eq(nn_tensor_host(ctx, f)[4], 2.5f, 0.0f);
    nn_tensor *hn = nn_tensor_new_host(ctx, 1, NN_SHAPE(3));
    cr_expect(!(hn->flags & NN_TENSOR_DEVICE) && hn->data[2] == 0.0f);
    cr_expect_eq(nn_tensor_to_host(ctx, hn), hn);
    nn_ctx_free(ctx);
}

/* The packed gradients of data-parallel averaging (dist/): store order, trainable tensors only,
 * the same on the host and through the device path; set writes them back. */
Test(nn_backend, gradients_as_one_host_buffer) {
    for (int k = 0; k < 2; k++) {
        nn_params *ps = nn_params_new();
        nn_tensor *a = nn_params_add(ps, "a", 1, NN_SHAPE(3), 0);
        nn_params_add(ps, "running", 1, NN_SHAPE(4), NN_PARAM_BUFFER);
        nn_tensor *b = nn_params_add(ps, "b", 2, NN_SHAPE(2, 2), 0);
        for (int i = 0; i < 3; i++) a->grad[i] = (float)(i + 1);
        for (int i = 0; i < 4; i++) b->grad[i] = (float)(-10 - i);
        if (k) cr_assert_eq(nn_params_to_device(ps, "emulated"), 0);
        cr_assert_eq(nn_params_numel(ps), 7);
        float g[7] = {0}, want[7] = {1, 2, 3, -10, -11, -12, -13};
        nn_params_grads_get(ps, g);
        cr_expect_eq(memcmp(g, want, sizeof g), 0, "%s: packed gradients", nn_params_device(ps));
        for (int i = 0; i < 7; i++) g[i] *= 0.5f;
        nn_params_grads_set(ps, g);
        nn_ctx *ctx = nn_ctx_new_like(ps);
        cr_expect_float_eq(nn_tensor_host_grad(ctx, a)[2], 1.5f, 0.0f);
        cr_expect_float_eq(nn_tensor_host_grad(ctx, b)[3], -6.5f, 0.0f);
        nn_ctx_free(ctx);
        nn_params_free(ps);
    }
}
