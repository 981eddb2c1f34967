/* The CUDA backend against the CPU, on a machine with an NVIDIA GPU (tests/gpu/run.sh builds and
 * runs it; it prints "skipped: no GPU" and exits 0 where none answers).
 *
 *   ops     every op of nn/ops/ops.def, forward and input gradients, CPU vs CUDA on the same
 *           inputs and the same output gradient; error = max |cpu - cuda| / max(max |cpu|, 1e-3)
 *   train   training steps of a small NASNet-A CIFAR net (aux head, drop-path, BN, SGD with
 *           Nesterov, clipping, EMA) from the same initialisation on both: the loss curves, then
 *           the trained weights; and a checkpoint written from the GPU is byte-identical to the
 *           same store written from the host
 *   detect  the shipped detector (demos/models/default.safetensors) on demos/images on both: the
 *           same boxes, classes and scores
 *
 * Usage: gpu_check [ops [FIRST]|train|detect ...] (default: all; FIRST: the op case to start at).
 * Exit status 0 when every check passes, 1 when one fails (an abort is a crash). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backbone/nasnet_net.h"
#include "common/cvshim.h"
#include "common/rng.h"
#include "detector/frcnn_model.h"
#include "nn/nn.h"

#define MAX_IN 4

/* The device under test: "cuda", or GPU_CHECK_DEVICE (e.g. "emulated", the host-memory backend
 * that takes the device path, to try this program where no GPU exists). */
static const char *dev = "cuda";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Normalised error of b against a. */
static double nerr(const float *a, const float *b, int64_t n) {
    double mx = 1e-3, d = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (fabs(a[i]) > mx) mx = fabs(a[i]);
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e; /* NaN counts as the largest error */
    }
    return d / mx;
}

/* ---- the op table ------------------------------------------------------------------------------ */

typedef enum { IN_NORMAL, IN_SPREAD, IN_POSITIVE, IN_LABEL01 } in_mode;
typedef struct op_case {
    const char *name;
    int nin;
    int ndim[MAX_IN];
    int64_t shape[MAX_IN][4];
    in_mode mode[MAX_IN];
    unsigned grad; /* bit i: input i takes a gradient */
    nn_tensor *(*build)(nn_ctx *ctx, nn_tensor **in);
} op_case;

static nn_tensor *b_conv3(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(1, 1);
    return nn_conv2d(c, in[0], in[1], in[2], &p);
}
static nn_tensor *b_conv3_s2(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(2, 1);
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
static nn_tensor *b_conv_dil_groups(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = {1, 2, 2, 1, 2, 1, 2, 0, 1, 0};
    return nn_conv2d(c, in[0], in[1], in[2], &p);
}
static nn_tensor *b_conv1x1(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_pad(1, 0);
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
static nn_tensor *b_conv1x7(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(1, 1);
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
static nn_tensor *b_dw5_s2(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(2, 1);
    p.groups = (int32_t)in[0]->shape[1];
    return nn_conv2d(c, in[0], in[1], in[2], &p);
}
static nn_tensor *b_dw3_dil2(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(1, 2);
    p.groups = (int32_t)in[0]->shape[1];
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
static nn_tensor *b_bn(nn_ctx *c, nn_tensor **in) {
    nn_bn_params p = {1e-3f, 0.1f};
    return nn_batch_norm(c, in[0], in[1], in[2], NULL, NULL, &p);
}
/* Synchronised batch norm (data-parallel --sync-bn) as one of two equal replicas: the replica sum
 * doubles every buffer. The CUDA kernel copies its per-channel sums to the host for the sum and
 * back; the CPU kernel sums in place: both must agree. check_ops switches the hook off after the
 * case. */
static void two_equal_replicas(double *buf, int64_t n, void *user) {
    (void)user;
    for (int64_t i = 0; i < n; i++) buf[i] *= 2;
}
static nn_tensor *b_bn_sync(nn_ctx *c, nn_tensor **in) {
    nn_set_batch_norm_sync(two_equal_replicas, NULL);
    nn_bn_params p = {1e-3f, 0.1f};
    return nn_batch_norm(c, in[0], in[1], in[2], NULL, NULL, &p);
}
static nn_tensor *b_ln(nn_ctx *c, nn_tensor **in) { return nn_layer_norm(c, in[0], in[1], in[2], 1e-3f); }
static nn_tensor *b_in(nn_ctx *c, nn_tensor **in) { return nn_instance_norm(c, in[0], in[1], in[2], 1e-3f); }
static nn_tensor *b_relu(nn_ctx *c, nn_tensor **in) { return nn_relu(c, in[0]); }
static nn_tensor *b_sigmoid(nn_ctx *c, nn_tensor **in) { return nn_sigmoid(c, in[0]); }
static nn_tensor *b_tanh(nn_ctx *c, nn_tensor **in) { return nn_tanh(c, in[0]); }
static nn_tensor *b_exp(nn_ctx *c, nn_tensor **in) { return nn_exp(c, in[0]); }
static nn_tensor *b_clamp(nn_ctx *c, nn_tensor **in) { return nn_clamp(c, in[0], -0.4f, 0.3f); }
static nn_tensor *b_add(nn_ctx *c, nn_tensor **in) { return nn_add(c, in[0], in[1]); }
static nn_tensor *b_sub(nn_ctx *c, nn_tensor **in) { return nn_sub(c, in[0], in[1]); }
static nn_tensor *b_mul(nn_ctx *c, nn_tensor **in) { return nn_mul(c, in[0], in[1]); }
static nn_tensor *b_minimum(nn_ctx *c, nn_tensor **in) { return nn_minimum(c, in[0], in[1]); }
static nn_tensor *b_scale(nn_ctx *c, nn_tensor **in) { return nn_scale(c, in[0], -1.5f, 0.25f); }
static nn_tensor *b_concat(nn_ctx *c, nn_tensor **in) { return nn_concat(c, in, 3, 1); }
static nn_tensor *b_slice(nn_ctx *c, nn_tensor **in) { return nn_slice(c, in[0], 1, 2, 3); }
static nn_tensor *b_pad(nn_ctx *c, nn_tensor **in) { return nn_pad(c, in[0], 1, 0, 2, 1, 0.5f); }
static nn_tensor *b_crop(nn_ctx *c, nn_tensor **in) { return nn_crop(c, in[0], 1, 2, 4, 5); }
static nn_tensor *b_reshape(nn_ctx *c, nn_tensor **in) {
    return nn_mul(c, nn_reshape(c, in[0], 2, NN_SHAPE(in[0]->shape[0], in[0]->numel / in[0]->shape[0])), in[1]);
}
static nn_tensor *b_permute(nn_ctx *c, nn_tensor **in) { return nn_permute(c, in[0], (const int32_t[]){0, 2, 3, 1}); }
static nn_tensor *b_avg_same(nn_ctx *c, nn_tensor **in) {
    nn_pool_params p = nn_pool_same(3, 1);
    return nn_avg_pool2d(c, in[0], &p);
}
static nn_tensor *b_avg_s2_incl(nn_ctx *c, nn_tensor **in) {
    nn_pool_params p = nn_pool_same(3, 2);
    p.count_include_pad = 1;
    return nn_avg_pool2d(c, in[0], &p);
}
static nn_tensor *b_max_s2(nn_ctx *c, nn_tensor **in) {
    nn_pool_params p = nn_pool_same(3, 2);
    return nn_max_pool2d(c, in[0], &p);
}
static nn_tensor *b_gap(nn_ctx *c, nn_tensor **in) { return nn_global_avg_pool(c, in[0]); }
static nn_tensor *b_linear(nn_ctx *c, nn_tensor **in) { return nn_linear(c, in[0], in[1], in[2]); }
static nn_tensor *b_matmul(nn_ctx *c, nn_tensor **in) { return nn_matmul(c, in[0], in[1]); }
static nn_tensor *b_dropout(nn_ctx *c, nn_tensor **in) { return nn_dropout(c, in[0], 0.3f); }
static nn_tensor *b_drop_path(nn_ctx *c, nn_tensor **in) { return nn_drop_path(c, in[0], 0.6f); }
static int32_t labels[64], idx[64]; /* labels may be -1 (ignored); idx in [0, 10) */
static nn_tensor *b_sce(nn_ctx *c, nn_tensor **in) { return nn_softmax_cross_entropy(c, in[0], labels, 0.1f); }
static nn_tensor *b_log_softmax(nn_ctx *c, nn_tensor **in) { return nn_log_softmax(c, in[0]); }
static nn_tensor *b_gather(nn_ctx *c, nn_tensor **in) { return nn_gather(c, in[0], idx); }
static nn_tensor *b_bce(nn_ctx *c, nn_tensor **in) { return nn_bce_with_logits(c, in[0], in[1], in[2], 0.0f); }
static nn_tensor *b_smooth_l1(nn_ctx *c, nn_tensor **in) { return nn_smooth_l1(c, in[0], in[1], in[2], 1.0f / 9.0f, 4.0f); }
static nn_tensor *b_sum(nn_ctx *c, nn_tensor **in) { return nn_sum(c, in[0]); }
static nn_tensor *b_mean(nn_ctx *c, nn_tensor **in) { return nn_mean(c, in[0]); }
static float rois[8 * 5];
static nn_tensor *b_roi_align(nn_ctx *c, nn_tensor **in) { return nn_roi_align(c, in[0], rois, 8, 7, 7, 0.5f, 2, 1); }
static nn_tensor *b_roi_align_adaptive(nn_ctx *c, nn_tensor **in) { return nn_roi_align(c, in[0], rois, 8, 3, 2, 0.9f, 0, 0); }
static float boxes[8 * 4];
static int32_t box_ind[8];
static nn_tensor *b_crop_and_resize(nn_ctx *c, nn_tensor **in) {
    return nn_crop_and_resize(c, in[0], boxes, box_ind, 8, 6, 5, -1.0f);
}
static nn_tensor *b_embedding(nn_ctx *c, nn_tensor **in) { return nn_embedding(c, in[0], idx, 12); }

#define S4(a, b, c, d) {a, b, c, d}
static const op_case cases[] = {
    {"conv2d 3x3 same +bias", 3, {4, 4, 1}, {S4(4, 16, 12, 12), S4(24, 16, 3, 3), S4(24, 1, 1, 1)}, {0}, 7, b_conv3},
    {"conv2d 3x3 same s2", 2, {4, 4}, {S4(3, 8, 13, 14), S4(12, 8, 3, 3)}, {0}, 3, b_conv3_s2},
    {"conv2d dilation+groups+pad", 3, {4, 4, 1}, {S4(2, 4, 7, 6), S4(6, 2, 2, 3), S4(6, 1, 1, 1)}, {0}, 7, b_conv_dil_groups},
    {"conv2d 1x1", 2, {4, 4}, {S4(4, 32, 9, 10), S4(20, 32, 1, 1)}, {0}, 3, b_conv1x1},
    {"conv2d 1x7 same", 2, {4, 4}, {S4(2, 6, 8, 9), S4(5, 6, 1, 7)}, {0}, 3, b_conv1x7},
    {"conv2d depthwise 5x5 s2 +bias", 3, {4, 4, 1}, {S4(3, 12, 11, 11), S4(12, 1, 5, 5), S4(12, 1, 1, 1)}, {0}, 7, b_dw5_s2},
    {"conv2d depthwise 3x3 dil2", 2, {4, 4}, {S4(2, 8, 9, 8), S4(8, 1, 3, 3)}, {0}, 3, b_dw3_dil2},
    {"batch_norm", 3, {4, 1, 1}, {S4(6, 5, 7, 7), S4(5, 1, 1, 1), S4(5, 1, 1, 1)}, {0}, 7, b_bn},
    {"batch_norm synchronised", 3, {4, 1, 1}, {S4(6, 5, 7, 7), S4(5, 1, 1, 1), S4(5, 1, 1, 1)}, {0}, 7, b_bn_sync},
    {"layer_norm", 3, {4, 1, 1}, {S4(2, 3, 4, 3), S4(3, 1, 1, 1), S4(3, 1, 1, 1)}, {0}, 7, b_ln},
    {"instance_norm", 3, {4, 1, 1}, {S4(2, 3, 4, 3), S4(3, 1, 1, 1), S4(3, 1, 1, 1)}, {0}, 7, b_in},
    {"relu", 1, {4}, {S4(4, 6, 9, 9)}, {IN_SPREAD}, 1, b_relu},
    {"sigmoid", 1, {2}, {S4(30, 7, 1, 1)}, {0}, 1, b_sigmoid},
    {"tanh", 1, {2}, {S4(30, 7, 1, 1)}, {0}, 1, b_tanh},
    {"exp", 1, {2}, {S4(30, 7, 1, 1)}, {0}, 1, b_exp},
    {"clamp", 1, {2}, {S4(40, 6, 1, 1)}, {IN_SPREAD}, 1, b_clamp},
    {"scale", 1, {4}, {S4(2, 3, 4, 5)}, {0}, 1, b_scale},
    {"add", 2, {4, 4}, {S4(3, 4, 5, 6), S4(3, 4, 5, 6)}, {0}, 3, b_add},
    {"add broadcast", 2, {4, 0}, {S4(3, 4, 5, 6), S4(1, 1, 1, 1)}, {0}, 3, b_add},
    {"sub", 2, {2, 2}, {S4(30, 4, 1, 1), S4(30, 4, 1, 1)}, {0}, 3, b_sub},
    {"mul", 2, {4, 4}, {S4(3, 4, 5, 6), S4(3, 4, 5, 6)}, {0}, 3, b_mul},
    {"mul broadcast", 2, {2, 0}, {S4(30, 4, 1, 1), S4(1, 1, 1, 1)}, {0}, 3, b_mul},
    {"minimum", 2, {2, 2}, {S4(40, 5, 1, 1), S4(40, 5, 1, 1)}, {IN_SPREAD, IN_NORMAL}, 3, b_minimum},
    {"concat channels", 3, {4, 4, 4}, {S4(2, 1, 5, 3), S4(2, 3, 5, 3), S4(2, 2, 5, 3)}, {0}, 7, b_concat},
    {"slice channels", 1, {4}, {S4(2, 6, 3, 3)}, {0}, 1, b_slice},
    {"pad", 1, {4}, {S4(2, 2, 5, 4)}, {0}, 1, b_pad},
    {"crop", 1, {4}, {S4(2, 2, 7, 8)}, {0}, 1, b_crop},
    {"reshape", 2, {4, 2}, {S4(2, 3, 2, 2), S4(2, 12, 1, 1)}, {0}, 3, b_reshape},
    {"permute NCHW->NHWC", 1, {4}, {S4(2, 3, 4, 5)}, {0}, 1, b_permute},
    {"avg_pool 3x3 same s1", 1, {4}, {S4(2, 3, 9, 10)}, {0}, 1, b_avg_same},
    {"avg_pool 3x3 s2 count_include_pad", 1, {4}, {S4(2, 3, 9, 10)}, {0}, 1, b_avg_s2_incl},
    {"max_pool 3x3 same s2", 1, {4}, {S4(2, 3, 9, 10)}, {IN_SPREAD}, 1, b_max_s2},
    {"global_avg_pool", 1, {4}, {S4(4, 6, 7, 7)}, {0}, 1, b_gap},
    {"linear", 3, {2, 2, 1}, {S4(9, 33, 1, 1), S4(17, 33, 1, 1), S4(17, 1, 1, 1)}, {0}, 7, b_linear},
    {"matmul", 2, {2, 2}, {S4(13, 21, 1, 1), S4(21, 11, 1, 1)}, {0}, 3, b_matmul},
    {"dropout", 1, {2}, {S4(40, 16, 1, 1)}, {0}, 1, b_dropout},
    {"drop_path", 1, {4}, {S4(16, 2, 3, 3)}, {0}, 1, b_drop_path},
    {"softmax_cross_entropy", 1, {2}, {S4(40, 10, 1, 1)}, {0}, 1, b_sce},
    {"log_softmax", 1, {2}, {S4(12, 10, 1, 1)}, {0}, 1, b_log_softmax},
    {"gather", 1, {2}, {S4(40, 10, 1, 1)}, {0}, 1, b_gather},
    {"bce_with_logits", 3, {2, 2, 2}, {S4(20, 9, 1, 1), S4(20, 9, 1, 1), S4(20, 9, 1, 1)}, {0, IN_LABEL01, IN_POSITIVE}, 1, b_bce},
    {"smooth_l1", 3, {2, 2, 2}, {S4(20, 8, 1, 1), S4(20, 8, 1, 1), S4(20, 8, 1, 1)}, {IN_SPREAD, 0, IN_POSITIVE}, 1, b_smooth_l1},
    {"sum", 1, {3}, {S4(4, 5, 6, 1)}, {0}, 1, b_sum},
    {"mean", 1, {3}, {S4(4, 5, 6, 1)}, {0}, 1, b_mean},
    {"roi_align aligned 7x7", 1, {4}, {S4(2, 4, 12, 14)}, {0}, 1, b_roi_align},
    {"roi_align unaligned adaptive", 1, {4}, {S4(2, 4, 12, 14)}, {0}, 1, b_roi_align_adaptive},
    {"crop_and_resize", 1, {4}, {S4(2, 3, 10, 12)}, {0}, 1, b_crop_and_resize},
    {"embedding", 1, {2}, {S4(10, 6, 1, 1)}, {0}, 1, b_embedding},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static void fill(float *v, int64_t n, in_mode mode, nd_rng *rng) {
    if (mode == IN_SPREAD) { /* distinct values 0.05 apart, shuffled: no ties for max/relu kinks */
        for (int64_t i = 0; i < n; i++) v[i] = (float)(-0.5 * (double)n * 0.05 + 0.05 * (double)i + 0.025);
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)nd_rng_below(rng, (uint64_t)(i + 1));
            float t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double u = nd_rng_range(rng, -1.0, 1.0);
        v[i] = (float)(mode == IN_POSITIVE ? 0.2 + fabs(u) : mode == IN_LABEL01 ? (u > 0 ? 1.0 : 0.0) : u);
    }
}

typedef struct run_result {
    float *out;
    int64_t out_n;
    float *grad[MAX_IN];
} run_result;

/* Build the case on `device` from the host inputs; copy out the output and the input gradients. */
static int run_case(const op_case *oc, const char *device, float **hin, const int64_t *numel, const float *r,
                    run_result *res) {
    nn_ctx *ctx = nn_ctx_new();
    int rc = nn_ctx_set_backend(ctx, device);
    if (rc) {
        nn_ctx_free(ctx);
        return rc;
    }
    nn_tensor *in[MAX_IN];
    for (int i = 0; i < oc->nin; i++) {
        in[i] = nn_tensor_from(ctx, oc->ndim[i], oc->shape[i], hin[i]);
        if (oc->grad & (1u << i)) nn_tensor_requires_grad(in[i]);
    }
    nn_ctx_seed(ctx, 99);
    nn_tensor *out = oc->build(ctx, in);
    res->out_n = out->numel;
    res->out = malloc((size_t)out->numel * sizeof(float));
    memcpy(res->out, nn_tensor_host(ctx, out), (size_t)out->numel * sizeof(float));
    nn_backward_from(ctx, out, r);
    for (int i = 0; i < oc->nin; i++) {
        res->grad[i] = NULL;
        const float *g = nn_tensor_host_grad(ctx, in[i]);
        if (!g) continue;
        res->grad[i] = malloc((size_t)numel[i] * sizeof(float));
        memcpy(res->grad[i], g, (size_t)numel[i] * sizeof(float));
    }
    nn_ctx_free(ctx);
    return 0;
}

static int check_ops(int first) {
    const double tol = 1e-4;
    nd_rng rng;
    nd_rng_seed(&rng, 77);
    for (int i = 0; i < 64; i++) {
        idx[i] = (int32_t)(i * 7 % 10);
        labels[i] = i % 9 == 4 ? -1 : idx[i]; /* some ignored */
    }
    for (int i = 0; i < 8; i++) {
        float x1 = (float)nd_rng_range(&rng, -2, 20), y1 = (float)nd_rng_range(&rng, -2, 18);
        float rw = (float)nd_rng_range(&rng, 1, 14), rh = (float)nd_rng_range(&rng, 1, 12);
        float roi[5] = {(float)(i % 2), x1, y1, x1 + rw, y1 + rh};
        memcpy(rois + 5 * i, roi, sizeof roi);
        float by = (float)nd_rng_range(&rng, -0.2, 0.8), bx = (float)nd_rng_range(&rng, -0.2, 0.8);
        float box[4] = {by, bx, by + (float)nd_rng_range(&rng, -0.3, 0.6), bx + (float)nd_rng_range(&rng, 0.1, 0.6)};
        memcpy(boxes + 4 * i, box, sizeof box);
        box_ind[i] = i % 2;
    }
    int bad = 0;
    printf("== ops: CPU vs %s, error = max|cpu-dev| / max(max|cpu|, 1e-3), tolerance %.0e\n", dev, tol);
    for (int k = first; k < NCASES; k++) {
        const op_case *oc = &cases[k];
        float *hin[MAX_IN];
        int64_t numel[MAX_IN];
        for (int i = 0; i < oc->nin; i++) {
            numel[i] = 1;
            for (int d = 0; d < oc->ndim[i]; d++) numel[i] *= oc->shape[i][d];
            hin[i] = malloc((size_t)numel[i] * sizeof(float));
            fill(hin[i], numel[i], oc->mode[i], &rng);
        }
        /* the output gradient: the CPU run tells the output size */
        run_result a, b;
        float *r = malloc(1 << 20);
        for (int i = 0; i < (1 << 18); i++) r[i] = (float)nd_rng_range(&rng, -1.0, 1.0);
        int rc = run_case(oc, "cpu", hin, numel, r, &a);
        if (!rc) rc = run_case(oc, dev, hin, numel, r, &b);
        nn_set_batch_norm_sync(NULL, NULL); /* a case may have switched it on (b_bn_sync) */
        if (rc) {
            printf("  FAIL %-36s %s\n", oc->name, nd_last_error());
            fflush(stdout);
            bad++;
            continue;
        }
        double ef = nerr(a.out, b.out, a.out_n), eg = 0.0;
        int grads_ok = 1;
        for (int i = 0; i < oc->nin; i++) {
            if ((a.grad[i] == NULL) != (b.grad[i] == NULL)) grads_ok = 0;
            if (a.grad[i] && b.grad[i]) {
                double e = nerr(a.grad[i], b.grad[i], numel[i]);
                if (!(e <= eg)) eg = e;
            }
        }
        int ok = grads_ok && ef <= tol && eg <= tol;
        printf("  %s %-36s forward %.2e  gradients %.2e%s\n", ok ? "ok  " : "FAIL", oc->name, ef, eg,
               grads_ok ? "" : "  (a gradient is missing on one side)");
        fflush(stdout); /* tests/gpu/run.sh counts these lines to resume after a crash */
        bad += !ok;
        for (int i = 0; i < oc->nin; i++) free(hin[i]), free(a.grad[i]), free(b.grad[i]);
        free(a.out), free(b.out), free(r);
    }
    printf("ops: %d of %d cases agree%s\n", NCASES - first - bad, NCASES - first, first ? " (from a later case on)" : "");
    return bad;
}

/* ---- training ------------------------------------------------------------------------------------ */

typedef struct trainer {
    nn_params *ps;
    nas_net *net;
    nn_ctx *ctx;
} trainer;

static int trainer_new(const nas_net_config *cfg, const char *device, trainer *t) {
    t->ps = nn_params_new();
    int rc = nas_net_new(cfg, t->ps, NULL, 1, &t->net);
    if (!rc) rc = nn_params_to_device(t->ps, device);
    if (!rc) t->ctx = nn_ctx_new_like(t->ps);
    return rc;
}

static void trainer_free(trainer *t) {
    nn_ctx_free(t->ctx);
    nas_net_free(t->net);
    nn_params_free(t->ps);
}

/* One SGD step on batch `step`; returns the loss. */
static double train_step(trainer *t, const float *images, const int32_t *lab, int32_t batch, int64_t step, int64_t steps) {
    nn_ctx *ctx = t->ctx;
    nn_ctx_reset(ctx);
    nn_params_zero_grad(t->ps);
    nn_ctx_seed(ctx, 1000 + (uint64_t)step);
    nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(batch, 3, 32, 32), images);
    nas_net_output out;
    if (nas_net_forward(t->net, ctx, x, step, &out)) return NAN;
    nn_tensor *loss = nn_softmax_cross_entropy(ctx, out.logits, lab, 0.1f);
    if (out.aux_logits) loss = nn_add(ctx, loss, nn_scale(ctx, nn_softmax_cross_entropy(ctx, out.aux_logits, lab, 0.1f), 0.4f, 0.0f));
    nn_backward(ctx, loss);
    nn_params_clip_grad_norm(t->ps, 5.0);
    nn_optim_config oc = nn_optim_sgd(0.9, 1, 5e-4);
    nn_optim_step(t->ps, &oc, nn_lr_cosine(0.05, step, steps, 0.0));
    nn_params_ema_update(t->ps, 0.9);
    return nn_item(ctx, loss);
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

static int check_train(void) {
    const int32_t batch = 32;
    const int64_t steps = 12;
    const double tol = 2e-3;
    nas_net_config cfg;
    nas_net_preset("nasnet-a-cifar", &cfg);
    cfg.num_cells = 1;
    cfg.num_conv_filters = 12;
    cfg.total_training_steps = steps;
    printf("== train: NASNet-A CIFAR N=%d F=%d (aux head, drop-path %.2f), batch %d, %lld SGD steps on each device\n",
           cfg.num_cells, cfg.num_conv_filters, cfg.drop_path_keep_prob, batch, (long long)steps);
    trainer cpu = {0}, gpu = {0};
    int rc = trainer_new(&cfg, "cpu", &cpu);
    if (!rc) rc = trainer_new(&cfg, dev, &gpu);
    if (rc) {
        printf("  FAIL setting up: %s\n", nd_last_error());
        return 1;
    }
    nd_rng rng;
    nd_rng_seed(&rng, 5);
    float *images = malloc((size_t)batch * 3 * 32 * 32 * sizeof(float));
    int32_t lab[64];
    int bad = 0;
    double tc = 0, tg = 0;
    for (int64_t s = 0; s < steps; s++) {
        /* learnable data: the label sets the mean of one colour channel */
        for (int32_t i = 0; i < batch; i++) {
            lab[i] = (int32_t)nd_rng_below(&rng, 10);
            for (int64_t j = 0; j < 3 * 32 * 32; j++)
                images[i * 3 * 1024 + j] = (float)(nd_rng_range(&rng, -1, 1) + (j / 1024 == lab[i] % 3 ? 0.1 * lab[i] : 0.0));
        }
        double t0 = now();
        double lc = train_step(&cpu, images, lab, batch, s, steps);
        double t1 = now();
        double lg = train_step(&gpu, images, lab, batch, s, steps);
        nn_ctx_sync(gpu.ctx);
        double t2 = now();
        tc += t1 - t0, tg += t2 - t1;
        double rel = fabs(lc - lg) / fmax(fabs(lc), 1e-6);
        int ok = rel <= tol;
        bad += !ok;
        printf("  step %2lld  loss cpu %.6f  %s %.6f  rel diff %.1e %s\n", (long long)s, lc, dev, lg, rel, ok ? "" : "FAIL");
        fflush(stdout);
    }
    /* The trained weights (and the EMA shadows, through a swap): float rounding differences grow
     * over SGD steps (the loss curves above are the criterion), so the check is on the whole
     * store, ||cpu - cuda|| / ||cpu||; the worst single tensor's normalised error is printed too. */
    double rel[2] = {0, 0}, worst[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        double d2 = 0, n2 = 0;
        for (int64_t i = 0; i < nn_params_count(cpu.ps); i++) {
            nn_tensor *a = nn_params_at(cpu.ps, i), *b = nn_params_at(gpu.ps, i);
            const float *hb = nn_tensor_host(gpu.ctx, b);
            double e = nerr(a->data, hb, a->numel);
            if (!(e <= worst[pass])) worst[pass] = e;
            for (int64_t j = 0; j < a->numel; j++) {
                d2 += ((double)a->data[j] - hb[j]) * ((double)a->data[j] - hb[j]);
                n2 += (double)a->data[j] * a->data[j];
            }
        }
        rel[pass] = sqrt(d2 / (n2 > 0 ? n2 : 1));
        nn_params_ema_swap(cpu.ps);
        nn_params_ema_swap(gpu.ps);
    }
    int wok = rel[0] <= 1e-3 && rel[1] <= 1e-3;
    bad += !wok;
    printf("  weights after training: ||cpu - %s|| / ||cpu|| = %.1e (EMA shadows %.1e); worst tensor %.1e (EMA %.1e) %s\n",
           dev, rel[0], rel[1], worst[0], worst[1], wok ? "" : "FAIL");
    /* checkpoints: written from the device, then from the host copy of the same store */
    const char *fa = "/tmp/nasdet_gpu_check_a.safetensors", *fb = "/tmp/nasdet_gpu_check_b.safetensors";
    rc = nn_checkpoint_save(fa, gpu.ps, NULL, NN_CKPT_OPTIM);
    if (!rc) rc = nn_params_to_device(gpu.ps, "cpu");
    if (!rc) rc = nn_checkpoint_save(fb, gpu.ps, NULL, NN_CKPT_OPTIM);
    int same = !rc && files_equal(fa, fb);
    bad += !same;
    printf("  checkpoint written from the GPU %s the one written from the host%s\n", same ? "is byte-identical to" : "DIFFERS FROM",
           rc ? nd_last_error() : "");
    /* and back: a store loaded on the GPU from that file resumes with the same values */
    if (!rc) rc = nn_params_to_device(gpu.ps, dev);
    if (!rc) rc = nn_checkpoint_load(fb, gpu.ps, NULL, 0);
    if (!rc) rc = nn_checkpoint_save(fa, gpu.ps, NULL, NN_CKPT_OPTIM);
    same = !rc && files_equal(fa, fb);
    bad += !same;
    printf("  checkpoint loaded onto the GPU and written again %s\n", same ? "is byte-identical" : "DIFFERS");
    printf("train: %s (time in the steps: cpu %.2f s, %s %.2f s)\n", bad ? "FAILED" : "loss curves agree", tc, dev, tg);
    remove(fa), remove(fb);
    free(images);
    trainer_free(&cpu);
    trainer_free(&gpu);
    return bad;
}

/* ---- detection ------------------------------------------------------------------------------------ */

/* A binary PPM (P6, maxval 255) into img (the packed device build of tests/gpu/pack.sh has no
 * image codecs: pack.sh hands it the demo images decoded to PPM). */
static int read_ppm(const char *path, nd_image *img) {
    FILE *f = fopen(path, "rb");
    int w, h, mx, ok = f && fscanf(f, "P6 %d %d %d", &w, &h, &mx) == 3 && w > 0 && h > 0 && w < 100000 && h < 100000 &&
                        mx == 255 && fgetc(f) != EOF;
    if (ok) {
        img->data = malloc((size_t)w * h * 3);
        ok = img->data && fread(img->data, 1, (size_t)w * h * 3, f) == (size_t)w * h * 3;
        img->width = w, img->height = h, img->channels = 3;
    }
    if (f) fclose(f);
    return ok ? 0 : nd_fail(ND_ERR_FORMAT, "%s: not a binary PPM (P6, 8 bit)", path);
}

static int check_detect(const char *model, const char *const *images, int nimages) {
    printf("== detect: %s on %d images, cpu vs %s\n", model, nimages, dev);
    det_model *mc = NULL, *mg = NULL;
    int rc = det_model_load(model, &mc, NULL);
    if (!rc) rc = det_model_load(model, &mg, NULL);
    if (!rc) rc = nn_params_to_device(det_model_params(mg), dev);
    if (rc) {
        printf("  FAIL loading: %s\n", nd_last_error());
        det_model_free(mc), det_model_free(mg);
        return 1;
    }
    nn_ctx *cc = nn_ctx_new_like(det_model_params(mc)), *cg = nn_ctx_new_like(det_model_params(mg));
    nn_ctx_set_grad(cc, 0), nn_ctx_set_grad(cg, 0);
    nn_ctx_set_training(cc, 0), nn_ctx_set_training(cg, 0);
    int bad = 0;
    double tc = 0, tg = 0;
    for (int i = 0; i < nimages; i++) {
        nd_image img = {0};
        size_t len = strlen(images[i]);
        int rrc = len > 4 && !strcmp(images[i] + len - 4, ".ppm") ? read_ppm(images[i], &img) : nd_image_read(images[i], 3, &img);
        if (rrc) {
            printf("  FAIL %s: %s\n", images[i], nd_last_error());
            bad++;
            continue;
        }
        float *data = NULL, scale = 1;
        int32_t h, w, vh, vw;
        rc = det_model_prepare_image(det_model_cfg(mc), img.data, img.width, img.height, img.channels, &data, &h, &w, &vh,
                                     &vw, &scale);
        det_detections dc = {0}, dg = {0};
        int64_t first[2] = {0, 0};
        det_batch b = {1, h, w, data, &vh, &vw, first, NULL, NULL, NULL};
        double t0 = now();
        if (!rc) rc = det_model_detect(mc, cc, &b, &dc);
        double t1 = now();
        if (!rc) rc = det_model_detect(mg, cg, &b, &dg);
        double t2 = now();
        tc += t1 - t0, tg += t2 - t1;
        if (rc) {
            printf("  FAIL %s: %s\n", images[i], nd_last_error());
            bad++;
        } else {
            /* the boxes above 0.05 must match one for one; scores within 1e-3, boxes within 0.5 px */
            int64_t nc = 0, ng = 0, diff = 0;
            double db = 0, ds = 0;
            for (int64_t j = 0; j < dc.n; j++) nc += dc.scores[j] >= 0.05f;
            for (int64_t j = 0; j < dg.n; j++) ng += dg.scores[j] >= 0.05f;
            for (int64_t j = 0; j < nc && j < ng; j++) {
                diff += dc.classes[j] != dg.classes[j];
                ds = fmax(ds, fabs(dc.scores[j] - dg.scores[j]));
                for (int k = 0; k < 4; k++) db = fmax(db, fabs(dc.boxes[4 * j + k] - dg.boxes[4 * j + k]));
            }
            int ok = nc == ng && diff == 0 && ds <= 1e-3 && db <= 0.5;
            bad += !ok;
            printf("  %s %-28s %lld boxes (cpu) %lld (%s); max box diff %.2e px, score diff %.1e, class mismatches %lld\n",
                   ok ? "ok  " : "FAIL", images[i], (long long)nc, (long long)ng, dev, db, ds, (long long)diff);
        }
        det_detections_free(&dc), det_detections_free(&dg);
        free(data);
        nd_image_free(&img);
        nn_ctx_reset(cc), nn_ctx_reset(cg);
    }
    printf("detect: %s (time: cpu %.2f s, %s %.2f s)\n", bad ? "FAILED" : "same boxes on both", tc, dev, tg);
    nn_ctx_free(cc), nn_ctx_free(cg);
    det_model_free(mc), det_model_free(mg);
    return bad;
}

/* The packed device build links this program and bench_gpu into one binary (tests/gpu/pack.sh):
 * it renames the mains. */
#ifndef GPU_CHECK_MAIN
#define GPU_CHECK_MAIN main
#endif
int GPU_CHECK_MAIN(int argc, char **argv) {
    if (getenv("GPU_CHECK_DEVICE")) dev = getenv("GPU_CHECK_DEVICE");
    int n = nn_cuda_device_count();
    if (n == 0 && !strcmp(dev, "cuda")) {
        nn_ctx *probe = nn_ctx_new();
        int cpu_build = nn_ctx_set_backend(probe, "cuda") == ND_ERR_UNSUPPORTED;
        nn_ctx_free(probe);
        printf("skipped: no GPU (%s)\n", cpu_build ? "a CPU build: make CUDA=1" : "no CUDA device answers");
        return 0;
    }
    int all = argc < 2, bad = 0;
    double t0 = now();
    for (int i = 1; i < argc || all; i++) {
        const char *what = all ? "all" : argv[i];
        int any = 0;
        if (!strcmp(what, "ops") || all) {
            int first = 0;
            if (!all && i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9') first = atoi(argv[++i]);
            bad += check_ops(first);
            any = 1;
        }
        if (!strcmp(what, "train") || all) bad += check_train(), any = 1;
        if (!strcmp(what, "detect") || all) {
            /* GPU_CHECK_IMAGES: a space-separated list instead of the demo images */
            const char *imgs[16] = {"demos/images/digits-val-000001.jpg", "demos/images/digits-val-000003.jpg",
                                    "demos/images/digits-val-000006.jpg", "demos/images/apple.jpg"};
            int ni = 4;
            char *list = getenv("GPU_CHECK_IMAGES") ? strdup(getenv("GPU_CHECK_IMAGES")) : NULL;
            if (list) {
                ni = 0;
                for (char *tok = strtok(list, " "); tok && ni < 16; tok = strtok(NULL, " ")) imgs[ni++] = tok;
            }
            bad += check_detect("demos/models/default.safetensors", imgs, ni);
            free(list);
            any = 1;
        }
        if (!any) {
            fprintf(stderr, "gpu_check: unknown part '%s' (ops, train, detect)\n", what);
            return 2;
        }
        if (all) break;
    }
    printf("gpu_check: %s (%.1f s)\n", bad ? "FAILED" : "all checks passed", now() - t0);
    return bad ? 1 : 0;
}
