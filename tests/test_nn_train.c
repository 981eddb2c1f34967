/* End to end: a tiny conv net trained on synthetic but learnable images (bars in four
 * orientations under noise) must drive its loss down and classify held-out images; training is
 * bit-for-bit reproducible for a seed, with one thread or two. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

#define IMG 8
#define CLASSES 4
#define BATCH 32

typedef struct net {
    nn_params *ps;
    nn_tensor *c1w, *bn1g, *bn1b, *bn1m, *bn1v, *c2w, *bn2g, *bn2b, *bn2m, *bn2v, *fcw, *fcb;
} net;

static nn_tensor *add_bn(net *n, const char *name, int64_t c, nn_tensor **b, nn_tensor **m, nn_tensor **v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s.gamma", name);
    nn_tensor *g = nn_params_add(n->ps, buf, 1, NN_SHAPE(c), NN_PARAM_NO_DECAY);
    nn_init_constant(g, 1.0f);
    snprintf(buf, sizeof buf, "%s.beta", name);
    *b = nn_params_add(n->ps, buf, 1, NN_SHAPE(c), NN_PARAM_NO_DECAY);
    snprintf(buf, sizeof buf, "%s.mean", name);
    *m = nn_params_add(n->ps, buf, 1, NN_SHAPE(c), NN_PARAM_BUFFER);
    snprintf(buf, sizeof buf, "%s.var", name);
    *v = nn_params_add(n->ps, buf, 1, NN_SHAPE(c), NN_PARAM_BUFFER);
    nn_init_constant(*v, 1.0f);
    return g;
}

static void net_init(net *n, uint64_t seed) {
    nd_rng rng;
    nd_rng_seed(&rng, seed);
    n->ps = nn_params_new();
    n->c1w = nn_params_add(n->ps, "c1.w", 4, NN_SHAPE(8, 1, 3, 3), 0);
    nn_init_variance_scaling(n->c1w, 2.0, NN_FAN_IN, NN_DIST_NORMAL, &rng);
    n->bn1g = add_bn(n, "bn1", 8, &n->bn1b, &n->bn1m, &n->bn1v);
    n->c2w = nn_params_add(n->ps, "c2.w", 4, NN_SHAPE(16, 8, 3, 3), 0);
    nn_init_variance_scaling(n->c2w, 2.0, NN_FAN_IN, NN_DIST_TRUNCATED_NORMAL, &rng);
    n->bn2g = add_bn(n, "bn2", 16, &n->bn2b, &n->bn2m, &n->bn2v);
    n->fcw = nn_params_add(n->ps, "fc.w", 2, NN_SHAPE(CLASSES, 16), 0);
    nn_init_variance_scaling(n->fcw, 1.0, NN_FAN_AVG, NN_DIST_UNIFORM, &rng);
    n->fcb = nn_params_add(n->ps, "fc.b", 1, NN_SHAPE(CLASSES), NN_PARAM_NO_DECAY);
}

static nn_tensor *net_forward(net *n, nn_ctx *ctx, nn_tensor *x) {
    nn_bn_params bp = {1e-3f, 0.1f};
    nn_conv2d_params same = nn_conv2d_same(1, 1);
    nn_pool_params pool = nn_pool_same(3, 2);
    nn_tensor *h = nn_conv2d(ctx, x, n->c1w, NULL, &same);
    h = nn_relu(ctx, nn_batch_norm(ctx, h, n->bn1g, n->bn1b, n->bn1m, n->bn1v, &bp));
    h = nn_max_pool2d(ctx, h, &pool);
    h = nn_conv2d(ctx, h, n->c2w, NULL, &same);
    h = nn_relu(ctx, nn_batch_norm(ctx, h, n->bn2g, n->bn2b, n->bn2m, n->bn2v, &bp));
    h = nn_dropout(ctx, nn_global_avg_pool(ctx, h), 0.1f);
    return nn_linear(ctx, h, n->fcw, n->fcb);
}

/* One image of class c: a bright bar (row, column, diagonal or anti-diagonal) at a random offset,
 * plus Gaussian noise. */
static void make_batch(nd_rng *rng, float *x, int32_t *y, int n) {
    for (int i = 0; i < n; i++) {
        int c = (int)nd_rng_below(rng, CLASSES), off = (int)nd_rng_below(rng, IMG);
        y[i] = c;
        float *im = x + i * IMG * IMG;
        for (int r = 0; r < IMG; r++)
            for (int q = 0; q < IMG; q++) {
                int on = c == 0 ? r == off : c == 1 ? q == off : c == 2 ? (r - q + IMG) % IMG == off : (r + q) % IMG == off;
                im[r * IMG + q] = (on ? 1.0f : 0.0f) + (float)(0.3 * nd_rng_normal(rng));
            }
    }
}

typedef struct result {
    double last_loss, accuracy;
    float fcw[CLASSES * 16];
} result;

static result train(int steps, uint64_t seed) {
    net n;
    net_init(&n, seed);
    nn_ctx *ctx = nn_ctx_new();
    nd_rng data;
    nd_rng_seed(&data, seed + 1);
    float x[BATCH * IMG * IMG];
    int32_t y[BATCH];
    nn_optim_config opt = nn_optim_sgd(0.9, 1, 1e-4);
    result res = {0};
    double tail = 0;
    int tail_n = 0;
    for (int s = 0; s < steps; s++) {
        nn_ctx_reset(ctx);
        nn_ctx_seed(ctx, seed * 1000 + (uint64_t)s);
        nn_params_zero_grad(n.ps);
        make_batch(&data, x, y, BATCH);
        nn_tensor *in = nn_tensor_from(ctx, 4, NN_SHAPE(BATCH, 1, IMG, IMG), x);
        nn_tensor *loss = nn_softmax_cross_entropy(ctx, net_forward(&n, ctx, in), y, 0.0f);
        nn_backward(ctx, loss);
        nn_params_clip_grad_norm(n.ps, 5.0);
        nn_optim_step(n.ps, &opt, nn_lr_warmup(nn_lr_cosine(0.1, s, steps, 0.0), s, 10, 0.1));
        if (s >= steps - 20) {
            tail += loss->data[0];
            tail_n++;
        }
    }
    res.last_loss = tail / tail_n;
    /* Held-out accuracy in evaluation mode (running BN statistics, no dropout, no tape). */
    nn_ctx_set_training(ctx, 0);
    nn_ctx_set_grad(ctx, 0);
    int correct = 0, total = 0;
    for (int b = 0; b < 8; b++) {
        nn_ctx_reset(ctx);
        make_batch(&data, x, y, BATCH);
        nn_tensor *logits = net_forward(&n, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(BATCH, 1, IMG, IMG), x));
        for (int i = 0; i < BATCH; i++) {
            int best = 0;
            for (int c = 1; c < CLASSES; c++)
                if (logits->data[i * CLASSES + c] > logits->data[i * CLASSES + best]) best = c;
            correct += best == y[i];
            total++;
        }
    }
    res.accuracy = (double)correct / total;
    memcpy(res.fcw, n.fcw->data, sizeof res.fcw);
    nn_ctx_free(ctx);
    nn_params_free(n.ps);
    return res;
}

Test(nn_train, tiny_convnet_learns) {
    result r = train(300, 7);
    cr_log_info("mean loss of the last 20 steps %.4f, held-out accuracy %.3f", r.last_loss, r.accuracy);
    cr_expect(r.last_loss < 0.2, "loss %.4f did not fall below 0.2 (chance: %.3f)", r.last_loss, log(CLASSES));
    cr_expect(r.accuracy >= 0.95, "held-out accuracy %.3f < 0.95", r.accuracy);
}

Test(nn_train, reproducible_for_a_seed_and_any_thread_count) {
    nn_set_threads(2);
    result a = train(30, 3);
    result b = train(30, 3);
    nn_set_threads(1);
    result c = train(30, 3);
    nn_set_threads(0);
    cr_expect(memcmp(a.fcw, b.fcw, sizeof a.fcw) == 0, "two runs with one seed differ");
    cr_expect(memcmp(a.fcw, c.fcw, sizeof a.fcw) == 0, "one thread and two threads differ");
    result d = train(30, 4);
    cr_expect(memcmp(a.fcw, d.fcw, sizeof a.fcw) != 0, "another seed gave the same weights");
}

/* A separable-conv / pooling / BN / concat block large enough for the kernels to go parallel:
 * every output and gradient is bit-identical with one thread and with two. */
static void block_grads(int threads, float *out) {
    nn_set_threads(threads);
    nd_rng rng;
    nd_rng_seed(&rng, 21);
    nn_params *ps = nn_params_new();
    nn_tensor *dw5 = nn_params_add(ps, "dw5", 4, NN_SHAPE(16, 1, 5, 5), 0);
    nn_tensor *dw3s2 = nn_params_add(ps, "dw3s2", 4, NN_SHAPE(16, 1, 3, 3), 0);
    nn_tensor *pw = nn_params_add(ps, "pw", 4, NN_SHAPE(24, 16, 1, 1), 0);
    nn_tensor *g = nn_params_add(ps, "g", 1, NN_SHAPE(24), 0);
    for (int64_t i = 0; i < nn_params_count(ps); i++) nn_init_uniform(nn_params_at(ps, i), -1, 1, &rng);
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = nn_tensor_new(ctx, 4, NN_SHAPE(6, 16, 24, 24));
    nn_init_uniform(x, -1, 1, &rng);
    nn_tensor_requires_grad(x);
    nn_conv2d_params s1 = nn_conv2d_same(1, 1), s2 = nn_conv2d_same(2, 1), one = nn_conv2d_pad(1, 0);
    s1.groups = s2.groups = 16;
    nn_pool_params ap = nn_pool_same(3, 1), mp = nn_pool_same(3, 2);
    nn_bn_params bp = {1e-3f, 0.1f};
    nn_tensor *a = nn_conv2d(ctx, nn_relu(ctx, nn_conv2d(ctx, x, dw5, NULL, &s1)), pw, NULL, &one);
    a = nn_batch_norm(ctx, a, g, NULL, NULL, NULL, &bp);
    nn_tensor *b = nn_avg_pool2d(ctx, nn_conv2d(ctx, x, dw3s2, NULL, &s2), &ap);
    nn_tensor *c = nn_concat(ctx, (nn_tensor *[]){nn_max_pool2d(ctx, a, &mp), b}, 2, 1);
    nn_tensor *loss = nn_mean(ctx, nn_mul(ctx, c, c));
    nn_backward(ctx, loss);
    int64_t k = 0;
    out[k++] = loss->data[0];
    for (int64_t i = 0; i < x->numel; i += 7) out[k++] = x->grad[i];
    for (int64_t p = 0; p < nn_params_count(ps); p++) {
        nn_tensor *t = nn_params_at(ps, p);
        for (int64_t i = 0; i < t->numel; i++) out[k++] = t->grad[i];
    }
    nn_ctx_free(ctx);
    nn_params_free(ps);
    nn_set_threads(0);
}

Test(nn_train, kernels_independent_of_thread_count) {
    enum { NOUT = 1 + 55296 / 7 + 1 + 400 + 144 + 384 + 24 };
    float *a = calloc(NOUT, sizeof(float)), *b = calloc(NOUT, sizeof(float));
    block_grads(1, a);
    block_grads(2, b);
    cr_expect(a[0] > 0.0f, "loss is positive");
    int64_t diff = 0;
    for (int i = 0; i < NOUT; i++) diff += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    cr_expect_eq(diff, 0, "%lld of %d values differ between 1 and 2 threads", (long long)diff, NOUT);
    free(a);
    free(b);
}

/* One training step's parameter gradients and the arena peak, with intermediate gradients
 * recycled during backward (the default) or retained. */
static size_t step_grads(int retain, float *grads, int64_t n_grads, int *intermediate_grad) {
    net n;
    net_init(&n, 11);
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_retain_grads(ctx, retain);
    nd_rng data;
    nd_rng_seed(&data, 12);
    float x[BATCH * IMG * IMG];
    int32_t y[BATCH];
    make_batch(&data, x, y, BATCH);
    nn_ctx_seed(ctx, 5);
    nn_tensor *in = nn_tensor_from(ctx, 4, NN_SHAPE(BATCH, 1, IMG, IMG), x);
    nn_tensor_requires_grad(in);
    nn_conv2d_params same = nn_conv2d_same(1, 1);
    nn_tensor *first = nn_conv2d(ctx, in, n.c1w, NULL, &same); /* an intermediate: net_forward's first op again */
    nn_tensor *loss = nn_add(ctx, nn_softmax_cross_entropy(ctx, net_forward(&n, ctx, in), y, 0.0f),
                             nn_scale(ctx, nn_mean(ctx, first), 0.1f, 0));
    nn_backward(ctx, loss);
    *intermediate_grad = first->grad != NULL;
    cr_assert_not_null(in->grad, "a leaf input keeps its gradient");
    int64_t off = 0;
    for (int64_t i = 0; i < nn_params_count(n.ps); i++) {
        nn_tensor *t = nn_params_at(n.ps, i);
        if (!t->grad) continue;
        cr_assert(off + t->numel <= n_grads);
        memcpy(grads + off, t->grad, sizeof(float) * (size_t)t->numel);
        off += t->numel;
    }
    memcpy(grads + off, in->grad, sizeof(float) * BATCH * IMG * IMG);
    size_t peak = nn_ctx_bytes_peak(ctx);
    nn_ctx_free(ctx);
    nn_params_free(n.ps);
    return peak;
}

Test(nn_train, recycled_gradients_are_exact_and_save_memory) {
    enum { MAXG = 8192 };
    static float kept[MAXG], recycled[MAXG];
    int kept_inter, recycled_inter;
    size_t peak_kept = step_grads(1, kept, MAXG, &kept_inter);
    size_t peak_recycled = step_grads(0, recycled, MAXG, &recycled_inter);
    cr_expect_eq(memcmp(kept, recycled, sizeof kept), 0, "recycling changed a gradient");
    cr_expect(kept_inter, "retain: an intermediate's gradient stays readable");
    cr_expect(!recycled_inter, "default: an intermediate's gradient is released after its backward");
    cr_expect(peak_recycled < peak_kept, "arena peak %zu recycled, %zu kept", peak_recycled, peak_kept);
    cr_log_info("arena peak %zu bytes recycled, %zu kept", peak_recycled, peak_kept);
}
