/* Optimizers, schedules, gradient clipping, EMA and initialisers. SGD and Adam against PyTorch's
 * numbers (tests/fixtures/nn_ops/optim_*.txt); RMSProp against TF's documented update written
 * out here in double (PyTorch's RMSprop differs: eps outside the root, mean square from 0). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/nn.h"

/* Reads "name ndim dims values" lines into dst (at most cap values) for one name. */
static int64_t read_fix(const char *file, const char *want, float *dst, int64_t cap) {
    char path[256], name[64];
    snprintf(path, sizeof path, "tests/fixtures/nn_ops/%s.txt", file);
    FILE *fp = fopen(path, "r");
    cr_assert(fp != NULL, "cannot open %s", path);
    int nd;
    int64_t got = -1;
    while (fscanf(fp, "%63s %d", name, &nd) == 2) {
        int64_t numel = 1;
        for (int i = 0; i < nd; i++) {
            long long d;
            cr_assert(fscanf(fp, "%lld", &d) == 1);
            numel *= d;
        }
        int match = strcmp(name, want) == 0;
        for (int64_t i = 0; i < numel; i++) {
            float v;
            cr_assert(fscanf(fp, "%f", &v) == 1);
            if (match && i < cap) dst[i] = v;
        }
        if (match) got = numel;
    }
    fclose(fp);
    cr_assert(got > 0, "%s: no tensor %s", path, want);
    return got;
}

static void torch_optim_case(const char *file, nn_optim_config cfg, double lr) {
    float p0[6], grads[18], want[18];
    read_fix(file, "p0", p0, 6);
    read_fix(file, "grads", grads, 18);
    read_fix(file, "p", want, 18);
    nn_params *ps = nn_params_new();
    nn_tensor *p = nn_params_add(ps, "p", 1, NN_SHAPE(6), 0);
    memcpy(p->data, p0, sizeof p0);
    for (int s = 0; s < 3; s++) {
        memcpy(p->grad, grads + 6 * s, 6 * sizeof(float));
        nn_optim_step(ps, &cfg, lr);
        for (int i = 0; i < 6; i++)
            cr_expect_float_eq(p->data[i], want[6 * s + i], 1e-6f, "%s step %d [%d]: %.8g vs torch %.8g", file, s, i,
                               (double)p->data[i], (double)want[6 * s + i]);
    }
    cr_expect_eq(nn_params_step(ps), 3);
    nn_params_free(ps);
}

Test(nn_optim, sgd_and_adam_match_pytorch) {
    torch_optim_case("optim_sgd_nesterov", nn_optim_sgd(0.9, 1, 0.01), 0.1);
    torch_optim_case("optim_sgd_momentum", nn_optim_sgd(0.9, 0, 0.01), 0.1);
    torch_optim_case("optim_adam", nn_optim_adam(0.9, 0.999, 1e-8, 0.01), 0.01);
}

Test(nn_optim, rmsprop_tf_semantics_and_no_decay_flag) {
    nn_params *ps = nn_params_new();
    nn_tensor *w = nn_params_add(ps, "w", 1, NN_SHAPE(3), 0);
    nn_tensor *b = nn_params_add(ps, "b", 1, NN_SHAPE(3), NN_PARAM_NO_DECAY);
    nn_tensor *buf = nn_params_add(ps, "buf", 1, NN_SHAPE(3), NN_PARAM_BUFFER);
    double rw[3] = {0.5, -1.0, 2.0}, ms[3] = {1, 1, 1}, mom[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) w->data[i] = b->data[i] = (float)rw[i];
    buf->data[0] = 7.0f;
    nn_optim_config cfg = nn_optim_rmsprop(0.9, 0.9, 1.0, 4e-5);
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < 3; i++) w->grad[i] = b->grad[i] = (float)(0.3 * (i + 1) * (s % 2 ? -1 : 1));
        double lr = 0.1 * (s + 1);
        for (int i = 0; i < 3; i++) {
            double g = 0.3 * (i + 1) * (s % 2 ? -1 : 1) + 4e-5 * rw[i];
            ms[i] = 0.9 * ms[i] + 0.1 * g * g;
            mom[i] = 0.9 * mom[i] + lr * g / sqrt(ms[i] + 1.0);
            rw[i] -= mom[i];
        }
        nn_optim_step(ps, &cfg, lr);
        for (int i = 0; i < 3; i++) cr_expect_float_eq(w->data[i], (float)rw[i], 2e-6f, "rmsprop step %d [%d]", s, i);
    }
    /* b has the same gradients but no weight decay: it must differ slightly from w. */
    cr_expect(b->data[0] != w->data[0], "NN_PARAM_NO_DECAY parameter decayed");
    cr_expect_float_eq(buf->data[0], 7.0f, 0.0f, "buffers are not optimised");
    nn_params_free(ps);
}

Test(nn_optim, schedules) {
    cr_expect_float_eq(nn_lr_cosine(0.1, 0, 100, 0.0), 0.1, 1e-12);
    cr_expect_float_eq(nn_lr_cosine(0.1, 50, 100, 0.0), 0.05, 1e-12);
    cr_expect_float_eq(nn_lr_cosine(0.1, 100, 100, 0.001), 0.001, 1e-12);
    cr_expect_float_eq(nn_lr_cosine(0.1, 25, 100, 0.0), 0.05 * (1 + cos(M_PI / 4)), 1e-12);
    cr_expect_float_eq(nn_lr_step(1.0, 25, 10, 0.1), 0.01, 1e-12);
    cr_expect_float_eq(nn_lr_exponential(1.0, 15, 10, 0.5, 1), 0.5, 1e-12);
    cr_expect_float_eq(nn_lr_exponential(1.0, 15, 10, 0.5, 0), pow(0.5, 1.5), 1e-12);
    cr_expect_float_eq(nn_lr_warmup(0.4, 0, 10, 0.0), 0.0, 1e-12);
    cr_expect_float_eq(nn_lr_warmup(0.4, 5, 10, 0.0), 0.2, 1e-12);
    cr_expect_float_eq(nn_lr_warmup(0.4, 5, 10, 0.5), 0.3, 1e-12);
    cr_expect_float_eq(nn_lr_warmup(0.4, 10, 10, 0.0), 0.4, 1e-12);
}

Test(nn_optim, clip_grad_norm_and_ema) {
    nn_params *ps = nn_params_new();
    nn_tensor *a = nn_params_add(ps, "a", 1, NN_SHAPE(2), 0);
    nn_tensor *b = nn_params_add(ps, "b", 2, NN_SHAPE(1, 1), 0);
    a->grad[0] = 3.0f;
    a->grad[1] = 0.0f;
    b->grad[0] = 4.0f;
    cr_expect_float_eq(nn_params_clip_grad_norm(ps, 10.0), 5.0, 1e-9);
    cr_expect_float_eq(a->grad[0], 3.0f, 0.0f, "no clipping under the threshold");
    cr_expect_float_eq(nn_params_clip_grad_norm(ps, 1.0), 5.0, 1e-9);
    cr_expect_float_eq(a->grad[0], 0.6f, 1e-7f);
    cr_expect_float_eq(b->grad[0], 0.8f, 1e-7f);

    cr_expect(!nn_params_has_ema(ps));
    a->data[0] = 1.0f;
    nn_params_ema_update(ps, 0.9); /* shadow starts as a copy */
    a->data[0] = 2.0f;
    nn_params_ema_update(ps, 0.9); /* 0.9 * 1 + 0.1 * 2 */
    cr_expect(nn_params_has_ema(ps));
    nn_params_ema_swap(ps);
    cr_expect_float_eq(a->data[0], 1.1f, 1e-6f);
    nn_params_ema_swap(ps);
    cr_expect_float_eq(a->data[0], 2.0f, 0.0f);
    nn_params_free(ps);
}

Test(nn_optim, initialisers_are_seeded_and_scaled) {
    nn_params *ps = nn_params_new();
    nn_tensor *w = nn_params_add(ps, "w", 4, NN_SHAPE(64, 32, 3, 3), 0);
    nn_tensor *w2 = nn_params_add(ps, "w2", 4, NN_SHAPE(64, 32, 3, 3), 0);
    nd_rng r1, r2;
    nd_rng_seed(&r1, 11);
    nd_rng_seed(&r2, 11);
    nn_init_variance_scaling(w, 2.0, NN_FAN_IN, NN_DIST_NORMAL, &r1);
    nn_init_variance_scaling(w2, 2.0, NN_FAN_IN, NN_DIST_NORMAL, &r2);
    cr_expect(memcmp(w->data, w2->data, (size_t)w->numel * sizeof(float)) == 0, "same seed, same weights");
    double s = 0, sq = 0;
    for (int64_t i = 0; i < w->numel; i++) {
        s += w->data[i];
        sq += (double)w->data[i] * w->data[i];
    }
    double var = sq / w->numel - (s / w->numel) * (s / w->numel), want = 2.0 / (32 * 9);
    cr_expect(fabs(var / want - 1.0) < 0.05, "He normal variance %g, expected %g", var, want);
    nn_init_variance_scaling(w, 1.0, NN_FAN_AVG, NN_DIST_UNIFORM, &r1);
    float lim = (float)sqrt(3.0 / (0.5 * (32 * 9 + 64 * 9)));
    for (int64_t i = 0; i < w->numel; i++) cr_assert(fabsf(w->data[i]) <= lim);
    nn_init_variance_scaling(w, 1.0, NN_FAN_OUT, NN_DIST_TRUNCATED_NORMAL, &r1);
    float cut = (float)(2.0 * sqrt(1.0 / (64 * 9)) / 0.87962566103423978);
    sq = 0;
    for (int64_t i = 0; i < w->numel; i++) {
        cr_assert(fabsf(w->data[i]) <= cut * 1.0001f);
        sq += (double)w->data[i] * w->data[i];
    }
    cr_expect(fabs(sq / w->numel / (1.0 / (64 * 9)) - 1.0) < 0.05, "truncated normal keeps the variance");
    nn_init_uniform(w, -0.1, 0.1, &r1);
    for (int64_t i = 0; i < w->numel; i++) cr_assert(w->data[i] >= -0.1f && w->data[i] < 0.1f);
    nn_init_constant(w, 1.0f);
    cr_expect_float_eq(w->data[w->numel - 1], 1.0f, 0.0f);
    nn_params_free(ps);
}
