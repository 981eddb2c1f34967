/* The table-driven op test: every op in nn/ops/ops.def has a row. Each row builds the op on
 * small random inputs and checks
 *   - forward against a naive reference written here in double (where the row has one), and
 *   - backward against central finite differences of f(x) = sum(op(x) * R) for a fixed random R.
 * Ops whose semantics a peer defines are also checked against the peer's numbers in
 * test_nn_fixtures.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "nn/nn.h"

#define MAX_IN 4

/* SPREAD and SPREAD2: distinct values 0.05 apart, the two grids offset by 0.025 from each other. */
typedef enum { IN_NORMAL, IN_SPREAD, IN_SPREAD2, IN_POSITIVE, IN_LABEL01 } in_mode;

typedef struct op_case {
    const char *name;
    int nin;
    int ndim[MAX_IN];
    int64_t shape[MAX_IN][4];
    in_mode mode[MAX_IN];
    unsigned check; /* bit i: check the gradient of input i */
    nn_tensor *(*build)(nn_ctx *ctx, nn_tensor **in);
    /* Reference forward in double: fills ref (out->numel values). NULL: gradient check only. */
    void (*ref)(nn_tensor **in, const nn_tensor *out, double *ref);
} op_case;

/* ---- builders and references --------------------------------------------------------------- */

static double at4(const nn_tensor *t, int64_t n, int64_t c, int64_t h, int64_t w) {
    return t->data[((n * t->shape[1] + c) * t->shape[2] + h) * t->shape[3] + w];
}

/* Direct convolution in double with explicit pads (p already resolved). */
static void conv_ref(nn_tensor **in, const nn_tensor *out, double *ref, int sh, int sw, int dh, int dw, int groups,
                     int pt, int pl, int has_bias) {
    const nn_tensor *x = in[0], *w = in[1];
    int64_t cig = x->shape[1] / groups, cog = w->shape[0] / groups;
    for (int64_t n = 0; n < out->shape[0]; n++)
        for (int64_t co = 0; co < out->shape[1]; co++)
            for (int64_t oh = 0; oh < out->shape[2]; oh++)
                for (int64_t ow = 0; ow < out->shape[3]; ow++) {
                    double s = has_bias ? in[2]->data[co] : 0.0;
                    int64_t g = co / cog;
                    for (int64_t ci = 0; ci < cig; ci++)
                        for (int64_t i = 0; i < w->shape[2]; i++)
                            for (int64_t j = 0; j < w->shape[3]; j++) {
                                int64_t ih = oh * sh - pt + i * dh, iw = ow * sw - pl + j * dw;
                                if (ih < 0 || iw < 0 || ih >= x->shape[2] || iw >= x->shape[3]) continue;
                                s += at4(x, n, g * cig + ci, ih, iw) * at4(w, co, ci, i, j);
                            }
                    ref[((n * out->shape[1] + co) * out->shape[2] + oh) * out->shape[3] + ow] = s;
                }
}

static nn_tensor *b_conv_3x3_same_s1(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(1, 1);
    return nn_conv2d(c, in[0], in[1], in[2], &p);
}
static void r_conv_3x3_same_s1(nn_tensor **in, const nn_tensor *o, double *r) { conv_ref(in, o, r, 1, 1, 1, 1, 1, 1, 1, 1); }

/* SAME with stride 2 on an even input: total pad 1, all of it at the bottom/right. */
static nn_tensor *b_conv_3x3_same_s2(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(2, 1);
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
static void r_conv_3x3_same_s2(nn_tensor **in, const nn_tensor *o, double *r) { conv_ref(in, o, r, 2, 2, 1, 1, 1, 0, 0, 0); }

static nn_tensor *b_conv_1x7(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(1, 1);
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
static void r_conv_1x7(nn_tensor **in, const nn_tensor *o, double *r) { conv_ref(in, o, r, 1, 1, 1, 1, 1, 0, 3, 0); }

static nn_tensor *b_conv_dil_groups(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = {1, 2, 2, 1, 2, 1, 2, 0, 1, 0};
    return nn_conv2d(c, in[0], in[1], in[2], &p);
}
static void r_conv_dil_groups(nn_tensor **in, const nn_tensor *o, double *r) { conv_ref(in, o, r, 1, 2, 2, 1, 2, 1, 0, 1); }

static nn_tensor *b_conv_1x1(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_pad(1, 0);
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
static void r_conv_1x1(nn_tensor **in, const nn_tensor *o, double *r) { conv_ref(in, o, r, 1, 1, 1, 1, 1, 0, 0, 0); }

static nn_tensor *b_conv_dw5_s2(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(2, 1);
    p.groups = 3;
    return nn_conv2d(c, in[0], in[1], in[2], &p);
}
/* 7x7 input, 5x5 kernel, stride 2: OH 4, total pad (4-1)*2+5-7 = 4, 2 each side. */
static void r_conv_dw5_s2(nn_tensor **in, const nn_tensor *o, double *r) { conv_ref(in, o, r, 2, 2, 1, 1, 3, 2, 2, 1); }

/* Kernel wider than the vector path's limit (16): the direct loops. */
static nn_tensor *b_conv_dw_wide(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(2, 1);
    p.groups = 2;
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
/* W 20, k 17, stride 2: OW 10, total pad 18+17-20 = 15 -> 7, 8; H 3, k 1: no pad, OH 2. */
static void r_conv_dw_wide(nn_tensor **in, const nn_tensor *o, double *r) { conv_ref(in, o, r, 2, 2, 1, 1, 2, 0, 7, 0); }

static nn_tensor *b_conv_dw_dil(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(1, 2);
    p.groups = 4;
    return nn_conv2d(c, in[0], in[1], NULL, &p);
}
static void r_conv_dw_dil(nn_tensor **in, const nn_tensor *o, double *r) { conv_ref(in, o, r, 1, 1, 2, 2, 4, 2, 2, 0); }

static void norm_ref(const nn_tensor *x, double *ref, int mode /*0 bn, 1 ln, 2 in*/, const nn_tensor *g,
                     const nn_tensor *b, double eps) {
    int64_t n = x->shape[0], c = x->shape[1], hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
    int64_t ngroups = mode == 0 ? c : (mode == 1 ? n : n * c);
    for (int64_t gi = 0; gi < ngroups; gi++) {
        double s = 0, sq = 0, m = 0;
        for (int64_t b0 = 0; b0 < n; b0++)
            for (int64_t ch = 0; ch < c; ch++) {
                int in_group = mode == 0 ? ch == gi : (mode == 1 ? b0 == gi : b0 * c + ch == gi);
                if (!in_group) continue;
                for (int64_t i = 0; i < hw; i++) {
                    s += x->data[(b0 * c + ch) * hw + i];
                    m++;
                }
            }
        double mean = s / m;
        for (int64_t b0 = 0; b0 < n; b0++)
            for (int64_t ch = 0; ch < c; ch++) {
                int in_group = mode == 0 ? ch == gi : (mode == 1 ? b0 == gi : b0 * c + ch == gi);
                if (!in_group) continue;
                for (int64_t i = 0; i < hw; i++) {
                    double d = x->data[(b0 * c + ch) * hw + i] - mean;
                    sq += d * d;
                }
            }
        double inv = 1.0 / sqrt(sq / m + eps);
        for (int64_t b0 = 0; b0 < n; b0++)
            for (int64_t ch = 0; ch < c; ch++) {
                int in_group = mode == 0 ? ch == gi : (mode == 1 ? b0 == gi : b0 * c + ch == gi);
                if (!in_group) continue;
                for (int64_t i = 0; i < hw; i++) {
                    int64_t k = (b0 * c + ch) * hw + i;
                    ref[k] = (x->data[k] - mean) * inv * (g ? g->data[ch] : 1.0) + (b ? b->data[ch] : 0.0);
                }
            }
    }
}

/* With a gradient to take, nn_conv2d_fused records the separate ops (training-mode batch norm
 * here); its fused inference pass is checked in test_nn_conv_fused.c. */
static nn_tensor *b_conv2d_fused(nn_ctx *c, nn_tensor **in) {
    nn_conv2d_params p = nn_conv2d_same(1, 1);
    nn_bn_tensors t = {in[2], NULL, NULL, NULL};
    nn_bn_params bp = {1e-3f, 0.1f};
    return nn_conv2d_fused(c, in[0], 0, in[1], &p, &t, &bp, 0);
}

static nn_tensor *b_batch_norm(nn_ctx *c, nn_tensor **in) {
    nn_bn_params p = {1e-3f, 0.1f};
    return nn_batch_norm(c, in[0], in[1], in[2], NULL, NULL, &p);
}
static void r_batch_norm(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    norm_ref(in[0], r, 0, in[1], in[2], 1e-3);
}
static nn_tensor *b_batch_norm_2d(nn_ctx *c, nn_tensor **in) {
    nn_bn_params p = {1e-5f, 0.1f};
    return nn_batch_norm(c, in[0], NULL, NULL, NULL, NULL, &p);
}
static void r_batch_norm_2d(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    norm_ref(in[0], r, 0, NULL, NULL, 1e-5);
}
static nn_tensor *b_layer_norm(nn_ctx *c, nn_tensor **in) { return nn_layer_norm(c, in[0], in[1], in[2], 1e-3f); }
static void r_layer_norm(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    norm_ref(in[0], r, 1, in[1], in[2], 1e-3);
}
static nn_tensor *b_instance_norm(nn_ctx *c, nn_tensor **in) { return nn_instance_norm(c, in[0], in[1], in[2], 1e-3f); }
static void r_instance_norm(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    norm_ref(in[0], r, 2, in[1], in[2], 1e-3);
}

#define UNARY(nm, call, expr)                                                          \
    static nn_tensor *b_##nm(nn_ctx *c, nn_tensor **in) { return call; }              \
    static void r_##nm(nn_tensor **in, const nn_tensor *o, double *r) {                \
        for (int64_t i = 0; i < o->numel; i++) {                                       \
            double v = in[0]->data[i];                                                 \
            r[i] = (expr);                                                             \
        }                                                                              \
    }
UNARY(relu, nn_relu(c, in[0]), v > 0 ? v : 0)
UNARY(sigmoid, nn_sigmoid(c, in[0]), 1.0 / (1.0 + exp(-v)))
UNARY(tanh, nn_tanh(c, in[0]), tanh(v))
UNARY(exp, nn_exp(c, in[0]), exp(v))
UNARY(clamp, nn_clamp(c, in[0], -0.5f, 0.7f), v < -0.5 ? -0.5 : (v > 0.7 ? 0.7 : v))
UNARY(scale, nn_scale(c, in[0], -1.5f, 0.25f), -1.5 * v + 0.25)

#define BINARY(nm, call, expr)                                                         \
    static nn_tensor *b_##nm(nn_ctx *c, nn_tensor **in) { return call; }              \
    static void r_##nm(nn_tensor **in, const nn_tensor *o, double *r) {                \
        for (int64_t i = 0; i < o->numel; i++) {                                       \
            double a = in[0]->data[i], b = in[1]->data[in[1]->numel == 1 ? 0 : i];     \
            r[i] = (expr);                                                             \
        }                                                                              \
    }
BINARY(add, nn_add(c, in[0], in[1]), a + b)
BINARY(add_bcast, nn_add(c, in[0], in[1]), a + b)
BINARY(sub, nn_sub(c, in[0], in[1]), a - b)
BINARY(mul, nn_mul(c, in[0], in[1]), a * b)
BINARY(mul_bcast, nn_mul(c, in[0], in[1]), a * b)
BINARY(minimum, nn_minimum(c, in[0], in[1]), a < b ? a : b)

static nn_tensor *b_concat(nn_ctx *c, nn_tensor **in) { return nn_concat(c, in, 3, 1); }
static void r_concat(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    int64_t k = 0;
    for (int64_t n = 0; n < 2; n++)
        for (int t = 0; t < 3; t++) {
            int64_t len = in[t]->numel / 2;
            for (int64_t i = 0; i < len; i++) r[k++] = in[t]->data[n * len + i];
        }
}
static nn_tensor *b_slice(nn_ctx *c, nn_tensor **in) { return nn_slice(c, in[0], 1, 1, 2); }
static void r_slice(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    int64_t k = 0;
    for (int64_t n = 0; n < 2; n++)
        for (int64_t ch = 1; ch < 3; ch++)
            for (int64_t i = 0; i < 9; i++) r[k++] = in[0]->data[(n * 4 + ch) * 9 + i];
}
static nn_tensor *b_split(nn_ctx *c, nn_tensor **in) {
    nn_tensor *o[3];
    nn_split(c, in[0], 1, 3, (const int64_t[]){1, 2, 1}, o);
    /* Use all three pieces so that every gradient path is exercised. */
    return nn_concat(c, (nn_tensor *[]){o[2], o[0], o[1]}, 3, 1);
}
static nn_tensor *b_pad(nn_ctx *c, nn_tensor **in) { return nn_pad(c, in[0], 1, 0, 2, 1, 0.5f); }
static void r_pad(nn_tensor **in, const nn_tensor *o, double *r) {
    for (int64_t n = 0; n < o->shape[0]; n++)
        for (int64_t ch = 0; ch < o->shape[1]; ch++)
            for (int64_t i = 0; i < o->shape[2]; i++)
                for (int64_t j = 0; j < o->shape[3]; j++) {
                    int64_t ih = i - 1, iw = j - 2;
                    int inside = ih >= 0 && ih < in[0]->shape[2] && iw >= 0 && iw < in[0]->shape[3];
                    r[((n * o->shape[1] + ch) * o->shape[2] + i) * o->shape[3] + j] =
                        inside ? at4(in[0], n, ch, ih, iw) : 0.5;
                }
}
static nn_tensor *b_crop(nn_ctx *c, nn_tensor **in) { return nn_crop(c, in[0], 1, 2, 2, 3); }
static void r_crop(nn_tensor **in, const nn_tensor *o, double *r) {
    for (int64_t n = 0; n < o->shape[0]; n++)
        for (int64_t ch = 0; ch < o->shape[1]; ch++)
            for (int64_t i = 0; i < 2; i++)
                for (int64_t j = 0; j < 3; j++)
                    r[((n * o->shape[1] + ch) * 2 + i) * 3 + j] = at4(in[0], n, ch, i + 1, j + 2);
}
static nn_tensor *b_reshape(nn_ctx *c, nn_tensor **in) {
    /* A non-linear op after the view, so the gradient really flows through it. */
    return nn_mul(c, nn_reshape(c, in[0], 2, NN_SHAPE(6, 4)), in[1]);
}
static void r_reshape(nn_tensor **in, const nn_tensor *o, double *r) {
    for (int64_t i = 0; i < o->numel; i++) r[i] = (double)in[0]->data[i] * in[1]->data[i];
}

static nn_tensor *b_permute(nn_ctx *c, nn_tensor **in) { return nn_permute(c, in[0], (const int32_t[]){0, 2, 3, 1}); }
static void r_permute(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    const nn_tensor *x = in[0];
    int64_t k = 0;
    for (int64_t n = 0; n < x->shape[0]; n++)
        for (int64_t h = 0; h < x->shape[2]; h++)
            for (int64_t w = 0; w < x->shape[3]; w++)
                for (int64_t c = 0; c < x->shape[1]; c++) r[k++] = at4(x, n, c, h, w);
}

static void pool_ref(nn_tensor **in, const nn_tensor *o, double *r, int k, int s, int pt, int pl, int is_max,
                     int include_pad) {
    const nn_tensor *x = in[0];
    for (int64_t n = 0; n < o->shape[0]; n++)
        for (int64_t ch = 0; ch < o->shape[1]; ch++)
            for (int64_t i = 0; i < o->shape[2]; i++)
                for (int64_t j = 0; j < o->shape[3]; j++) {
                    double acc = is_max ? -INFINITY : 0.0;
                    int cnt = 0;
                    for (int a = 0; a < k; a++)
                        for (int b = 0; b < k; b++) {
                            int64_t ih = i * s - pt + a, iw = j * s - pl + b;
                            if (ih < 0 || iw < 0 || ih >= x->shape[2] || iw >= x->shape[3]) continue;
                            double v = at4(x, n, ch, ih, iw);
                            acc = is_max ? (v > acc ? v : acc) : acc + v;
                            cnt++;
                        }
                    r[((n * o->shape[1] + ch) * o->shape[2] + i) * o->shape[3] + j] =
                        is_max ? acc : acc / (include_pad ? k * k : cnt);
                }
}
/* 3x3 stride 1 SAME on 5x6: pad 1 all round; stride 2 on 5x6: OH 3 (pad 1,1), OW 3 (pad 0,1). */
static nn_tensor *b_avg_pool_same(nn_ctx *c, nn_tensor **in) {
    nn_pool_params p = nn_pool_same(3, 1);
    return nn_avg_pool2d(c, in[0], &p);
}
static void r_avg_pool_same(nn_tensor **in, const nn_tensor *o, double *r) { pool_ref(in, o, r, 3, 1, 1, 1, 0, 0); }
static nn_tensor *b_avg_pool_s2(nn_ctx *c, nn_tensor **in) {
    nn_pool_params p = nn_pool_same(3, 2);
    return nn_avg_pool2d(c, in[0], &p);
}
static void r_avg_pool_s2(nn_tensor **in, const nn_tensor *o, double *r) { pool_ref(in, o, r, 3, 2, 1, 0, 0, 0); }
static nn_tensor *b_avg_pool_incl(nn_ctx *c, nn_tensor **in) {
    nn_pool_params p = {3, 3, 2, 2, 1, 1, 1, 1, 0, 1};
    return nn_avg_pool2d(c, in[0], &p);
}
static void r_avg_pool_incl(nn_tensor **in, const nn_tensor *o, double *r) { pool_ref(in, o, r, 3, 2, 1, 1, 0, 1); }
static nn_tensor *b_max_pool_same(nn_ctx *c, nn_tensor **in) {
    nn_pool_params p = nn_pool_same(3, 2);
    return nn_max_pool2d(c, in[0], &p);
}
static void r_max_pool_same(nn_tensor **in, const nn_tensor *o, double *r) { pool_ref(in, o, r, 3, 2, 1, 0, 1, 0); }
static nn_tensor *b_max_pool5(nn_ctx *c, nn_tensor **in) {
    nn_pool_params p = nn_pool_same(5, 1);
    return nn_max_pool2d(c, in[0], &p);
}
static void r_max_pool5(nn_tensor **in, const nn_tensor *o, double *r) { pool_ref(in, o, r, 5, 1, 2, 2, 1, 0); }
static nn_tensor *b_gap(nn_ctx *c, nn_tensor **in) { return nn_global_avg_pool(c, in[0]); }
static void r_gap(nn_tensor **in, const nn_tensor *o, double *r) {
    int64_t hw = in[0]->shape[2] * in[0]->shape[3];
    for (int64_t i = 0; i < o->numel; i++) {
        double s = 0;
        for (int64_t j = 0; j < hw; j++) s += in[0]->data[i * hw + j];
        r[i] = s / hw;
    }
}

static nn_tensor *b_linear(nn_ctx *c, nn_tensor **in) { return nn_linear(c, in[0], in[1], in[2]); }
static void r_linear(nn_tensor **in, const nn_tensor *o, double *r) {
    int64_t n = in[0]->shape[0], k = in[0]->shape[1], m = in[1]->shape[0];
    (void)o;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double s = in[2]->data[j];
            for (int64_t q = 0; q < k; q++) s += (double)in[0]->data[i * k + q] * in[1]->data[j * k + q];
            r[i * m + j] = s;
        }
}
static nn_tensor *b_matmul(nn_ctx *c, nn_tensor **in) { return nn_matmul(c, in[0], in[1]); }
static void r_matmul(nn_tensor **in, const nn_tensor *o, double *r) {
    int64_t m = in[0]->shape[0], k = in[0]->shape[1], n = in[1]->shape[1];
    (void)o;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t q = 0; q < k; q++) s += (double)in[0]->data[i * k + q] * in[1]->data[q * n + j];
            r[i * n + j] = s;
        }
}

static nn_tensor *b_dropout(nn_ctx *c, nn_tensor **in) { return nn_dropout(c, in[0], 0.3f); }
static nn_tensor *b_drop_path(nn_ctx *c, nn_tensor **in) { return nn_drop_path(c, in[0], 0.6f); }

static const int32_t labels5[5] = {2, 0, -1, 3, 1};
static nn_tensor *b_sce(nn_ctx *c, nn_tensor **in) { return nn_softmax_cross_entropy(c, in[0], labels5, 0.1f); }
static void r_sce(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    int64_t n = in[0]->shape[0], k = in[0]->shape[1], cnt = 0;
    double tot = 0;
    for (int64_t i = 0; i < n; i++) {
        if (labels5[i] < 0) continue;
        double z = 0;
        for (int64_t j = 0; j < k; j++) z += exp(in[0]->data[i * k + j]);
        for (int64_t j = 0; j < k; j++) {
            double q = 0.1 / k + (j == labels5[i] ? 0.9 : 0.0);
            tot -= q * (in[0]->data[i * k + j] - log(z));
        }
        cnt++;
    }
    r[0] = tot / cnt;
}
static nn_tensor *b_log_softmax(nn_ctx *c, nn_tensor **in) { return nn_log_softmax(c, in[0]); }
static void r_log_softmax(nn_tensor **in, const nn_tensor *o, double *r) {
    int64_t n = o->shape[0], k = o->shape[1];
    for (int64_t i = 0; i < n; i++) {
        double z = 0;
        for (int64_t j = 0; j < k; j++) z += exp(in[0]->data[i * k + j]);
        for (int64_t j = 0; j < k; j++) r[i * k + j] = in[0]->data[i * k + j] - log(z);
    }
}
static const int32_t idx5[5] = {1, 3, 0, 0, 2};
static nn_tensor *b_gather(nn_ctx *c, nn_tensor **in) { return nn_gather(c, in[0], idx5); }
static void r_gather(nn_tensor **in, const nn_tensor *o, double *r) {
    for (int64_t i = 0; i < o->numel; i++) r[i] = in[0]->data[i * in[0]->shape[1] + idx5[i]];
}
static nn_tensor *b_bce(nn_ctx *c, nn_tensor **in) { return nn_bce_with_logits(c, in[0], in[1], in[2], 0.0f); }
static void r_bce(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    double s = 0, sw = 0;
    for (int64_t i = 0; i < in[0]->numel; i++) {
        double x = in[0]->data[i], t = in[1]->data[i], w = in[2]->data[i];
        double p = 1 / (1 + exp(-x));
        s += -w * (t * log(p) + (1 - t) * log(1 - p));
        sw += w;
    }
    r[0] = s / sw;
}
static nn_tensor *b_smooth_l1(nn_ctx *c, nn_tensor **in) { return nn_smooth_l1(c, in[0], in[1], NULL, 1.0f / 9.0f, 4.0f); }
static void r_smooth_l1(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    double s = 0, beta = 1.0 / 9.0;
    for (int64_t i = 0; i < in[0]->numel; i++) {
        double d = fabs((double)in[0]->data[i] - in[1]->data[i]);
        s += d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
    }
    r[0] = s / 4.0;
}
static nn_tensor *b_sum(nn_ctx *c, nn_tensor **in) { return nn_sum(c, in[0]); }
static void r_sum(nn_tensor **in, const nn_tensor *o, double *r) {
    (void)o;
    r[0] = 0;
    for (int64_t i = 0; i < in[0]->numel; i++) r[0] += in[0]->data[i];
}
static nn_tensor *b_mean(nn_ctx *c, nn_tensor **in) { return nn_mean(c, in[0]); }
static void r_mean(nn_tensor **in, const nn_tensor *o, double *r) {
    r_sum(in, o, r);
    r[0] /= in[0]->numel;
}

/* ROIAlign rows span the aligned/unaligned and sampling variants; exact values against
 * torchvision are in test_nn_fixtures.c, here the gradient. Rois stay away from sample points
 * landing exactly on pixel boundaries (where bilinear weights have kinks). */
static const float rois3[15] = {0, 0.3f, 0.7f, 5.1f, 4.2f, 1, 1.2f, 0.4f, 3.3f, 5.6f, 0, 2.2f, 1.3f, 2.9f, 2.1f};
static nn_tensor *b_roi_align(nn_ctx *c, nn_tensor **in) { return nn_roi_align(c, in[0], rois3, 3, 2, 3, 1.0f, 2, 1); }
static nn_tensor *b_roi_align_adaptive(nn_ctx *c, nn_tensor **in) {
    return nn_roi_align(c, in[0], rois3, 3, 3, 2, 0.9f, 0, 0);
}
static const float boxes3[12] = {0.1f, 0.05f, 0.83f, 0.9f, 0.77f, 0.2f, 0.13f, 0.63f, -0.2f, 0.3f, 0.5f, 1.3f};
static const int32_t bind3[3] = {1, 0, 1};
static nn_tensor *b_crop_and_resize(nn_ctx *c, nn_tensor **in) {
    return nn_crop_and_resize(c, in[0], boxes3, bind3, 3, 3, 4, -1.0f);
}
static const int32_t emb_idx[4] = {2, 0, 2, 4};
static nn_tensor *b_embedding(nn_ctx *c, nn_tensor **in) { return nn_embedding(c, in[0], emb_idx, 4); }
static void r_embedding(nn_tensor **in, const nn_tensor *o, double *r) {
    int64_t d = in[0]->shape[1];
    (void)o;
    for (int64_t i = 0; i < 4; i++)
        for (int64_t j = 0; j < d; j++) r[i * d + j] = in[0]->data[emb_idx[i] * d + j];
}
static nn_tensor *b_lstm(nn_ctx *c, nn_tensor **in) {
    nn_tensor *h, *cc;
    nn_lstm_cell(c, in[0], in[1], in[1], in[2], in[3], NULL, &h, &cc);
    return nn_concat(c, (nn_tensor *[]){h, cc}, 2, 1);
}

#define S4(a, b, c, d) {a, b, c, d}
static const op_case cases[] = {
    {"conv2d 3x3 same s1 +bias", 3, {4, 4, 1}, {S4(2, 3, 5, 6), S4(4, 3, 3, 3), S4(4, 1, 1, 1)}, {0}, 7, b_conv_3x3_same_s1, r_conv_3x3_same_s1},
    {"conv2d 3x3 same s2 (asymmetric pad)", 2, {4, 4}, {S4(2, 2, 6, 6), S4(3, 2, 3, 3)}, {0}, 3, b_conv_3x3_same_s2, r_conv_3x3_same_s2},
    {"conv2d 1x7 same", 2, {4, 4}, {S4(1, 2, 4, 9), S4(2, 2, 1, 7)}, {0}, 3, b_conv_1x7, r_conv_1x7},
    {"conv2d dilation+groups+explicit pad", 3, {4, 4, 1}, {S4(2, 4, 7, 6), S4(6, 2, 2, 3), S4(6, 1, 1, 1)}, {0}, 7, b_conv_dil_groups, r_conv_dil_groups},
    {"conv2d 1x1 large image (in-place GEMM path)", 2, {4, 4}, {S4(2, 3, 48, 48), S4(4, 3, 1, 1)}, {0}, 3, b_conv_1x1, r_conv_1x1},
    {"conv2d 1x1", 2, {4, 4}, {S4(2, 5, 3, 4), S4(3, 5, 1, 1)}, {0}, 3, b_conv_1x1, r_conv_1x1},
    {"conv2d depthwise 5x5 s2", 3, {4, 4, 1}, {S4(2, 3, 7, 7), S4(3, 1, 5, 5), S4(3, 1, 1, 1)}, {0}, 7, b_conv_dw5_s2, r_conv_dw5_s2},
    {"conv2d depthwise 1x17 s2 (direct loops)", 2, {4, 4}, {S4(1, 2, 3, 20), S4(2, 1, 1, 17)}, {0}, 3, b_conv_dw_wide, r_conv_dw_wide},
    {"conv2d depthwise 3x3 dil2", 2, {4, 4}, {S4(2, 4, 6, 5), S4(4, 1, 3, 3)}, {0}, 3, b_conv_dw_dil, r_conv_dw_dil},
    {"conv2d_fused conv-bn (recorded as separate ops)", 3, {4, 4, 1}, {S4(2, 3, 5, 5), S4(4, 3, 3, 3), S4(4, 1, 1, 1)}, {0}, 7, b_conv2d_fused, NULL},
    {"batch_norm", 3, {4, 1, 1}, {S4(3, 2, 3, 4), S4(2, 1, 1, 1), S4(2, 1, 1, 1)}, {0}, 7, b_batch_norm, r_batch_norm},
    {"batch_norm [N,C]", 1, {2}, {S4(5, 3, 1, 1)}, {0}, 1, b_batch_norm_2d, r_batch_norm_2d},
    {"layer_norm", 3, {4, 1, 1}, {S4(2, 3, 2, 3), S4(3, 1, 1, 1), S4(3, 1, 1, 1)}, {0}, 7, b_layer_norm, r_layer_norm},
    {"instance_norm", 3, {4, 1, 1}, {S4(2, 3, 2, 3), S4(3, 1, 1, 1), S4(3, 1, 1, 1)}, {0}, 7, b_instance_norm, r_instance_norm},
    {"relu", 1, {3}, {S4(2, 3, 4, 1)}, {IN_SPREAD}, 1, b_relu, r_relu},
    {"sigmoid", 1, {2}, {S4(3, 5, 1, 1)}, {0}, 1, b_sigmoid, r_sigmoid},
    {"tanh", 1, {2}, {S4(3, 5, 1, 1)}, {0}, 1, b_tanh, r_tanh},
    {"exp", 1, {2}, {S4(3, 5, 1, 1)}, {0}, 1, b_exp, r_exp},
    {"clamp", 1, {2}, {S4(4, 6, 1, 1)}, {IN_SPREAD}, 1, b_clamp, r_clamp},
    {"scale", 1, {4}, {S4(2, 2, 2, 3)}, {0}, 1, b_scale, r_scale},
    {"add", 2, {4, 4}, {S4(2, 2, 2, 3), S4(2, 2, 2, 3)}, {0}, 3, b_add, r_add},
    {"add broadcast", 2, {2, 1}, {S4(3, 4, 1, 1), S4(1, 1, 1, 1)}, {0}, 3, b_add_bcast, r_add_bcast},
    {"sub", 2, {2, 2}, {S4(3, 4, 1, 1), S4(3, 4, 1, 1)}, {0}, 3, b_sub, r_sub},
    {"mul", 2, {4, 4}, {S4(2, 2, 2, 3), S4(2, 2, 2, 3)}, {0}, 3, b_mul, r_mul},
    {"mul broadcast", 2, {2, 0}, {S4(3, 4, 1, 1), S4(1, 1, 1, 1)}, {0}, 3, b_mul_bcast, r_mul_bcast},
    {"minimum", 2, {2, 2}, {S4(4, 5, 1, 1), S4(4, 5, 1, 1)}, {IN_SPREAD, IN_SPREAD2}, 3, b_minimum, r_minimum},
    {"concat channels", 3, {4, 4, 4}, {S4(2, 1, 2, 3), S4(2, 3, 2, 3), S4(2, 2, 2, 3)}, {0}, 7, b_concat, r_concat},
    {"slice channels", 1, {4}, {S4(2, 4, 3, 3)}, {0}, 1, b_slice, r_slice},
    {"split channels", 1, {4}, {S4(2, 4, 2, 2)}, {0}, 1, b_split, NULL},
    {"pad", 1, {4}, {S4(2, 2, 3, 3)}, {0}, 1, b_pad, r_pad},
    {"crop", 1, {4}, {S4(2, 2, 4, 5)}, {0}, 1, b_crop, r_crop},
    {"reshape", 2, {4, 2}, {S4(2, 3, 2, 2), S4(6, 4, 1, 1)}, {0}, 3, b_reshape, r_reshape},
    {"permute NCHW->NHWC", 1, {4}, {S4(2, 3, 2, 4)}, {0}, 1, b_permute, r_permute},
    {"avg_pool 3x3 same s1", 1, {4}, {S4(2, 2, 5, 6)}, {0}, 1, b_avg_pool_same, r_avg_pool_same},
    {"avg_pool 3x3 same s2", 1, {4}, {S4(2, 2, 5, 6)}, {0}, 1, b_avg_pool_s2, r_avg_pool_s2},
    {"avg_pool count_include_pad", 1, {4}, {S4(1, 2, 5, 5)}, {0}, 1, b_avg_pool_incl, r_avg_pool_incl},
    {"max_pool 3x3 same s2", 1, {4}, {S4(2, 2, 5, 6)}, {IN_SPREAD}, 1, b_max_pool_same, r_max_pool_same},
    {"max_pool 5x5 same s1", 1, {4}, {S4(1, 2, 6, 5)}, {IN_SPREAD}, 1, b_max_pool5, r_max_pool5},
    {"global_avg_pool", 1, {4}, {S4(2, 3, 3, 2)}, {0}, 1, b_gap, r_gap},
    {"linear", 3, {2, 2, 1}, {S4(3, 5, 1, 1), S4(4, 5, 1, 1), S4(4, 1, 1, 1)}, {0}, 7, b_linear, r_linear},
    {"matmul", 2, {2, 2}, {S4(3, 5, 1, 1), S4(5, 2, 1, 1)}, {0}, 3, b_matmul, r_matmul},
    {"dropout", 1, {2}, {S4(4, 6, 1, 1)}, {0}, 1, b_dropout, NULL},
    {"drop_path", 1, {4}, {S4(6, 2, 2, 2)}, {0}, 1, b_drop_path, NULL},
    {"softmax_cross_entropy", 1, {2}, {S4(5, 4, 1, 1)}, {0}, 1, b_sce, r_sce},
    {"log_softmax", 1, {2}, {S4(3, 5, 1, 1)}, {0}, 1, b_log_softmax, r_log_softmax},
    {"gather", 1, {2}, {S4(5, 4, 1, 1)}, {0}, 1, b_gather, r_gather},
    {"bce_with_logits", 3, {2, 2, 2}, {S4(3, 4, 1, 1), S4(3, 4, 1, 1), S4(3, 4, 1, 1)}, {0, IN_LABEL01, IN_POSITIVE}, 1, b_bce, r_bce},
    {"smooth_l1", 2, {2, 2}, {S4(3, 4, 1, 1), S4(3, 4, 1, 1)}, {IN_SPREAD, 0}, 1, b_smooth_l1, r_smooth_l1},
    {"sum", 1, {3}, {S4(2, 3, 4, 1)}, {0}, 1, b_sum, r_sum},
    {"mean", 1, {3}, {S4(2, 3, 4, 1)}, {0}, 1, b_mean, r_mean},
    {"roi_align aligned sampling 2", 1, {4}, {S4(2, 2, 6, 7)}, {0}, 1, b_roi_align, NULL},
    {"roi_align unaligned adaptive", 1, {4}, {S4(2, 2, 6, 7)}, {0}, 1, b_roi_align_adaptive, NULL},
    /* 20 channels: the backward scatters channel blocks of 16, one whole and one partial */
    {"roi_align 20 channels", 1, {4}, {S4(2, 20, 6, 7)}, {0}, 1, b_roi_align, NULL},
    {"crop_and_resize", 1, {4}, {S4(2, 2, 5, 6)}, {0}, 1, b_crop_and_resize, NULL},
    {"embedding", 1, {2}, {S4(5, 3, 1, 1)}, {0}, 1, b_embedding, r_embedding},
    {"lstm_cell (composition)", 4, {2, 2, 2, 2}, {S4(2, 3, 1, 1), S4(2, 4, 1, 1), S4(16, 3, 1, 1), S4(16, 4, 1, 1)}, {0}, 15, b_lstm, NULL},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- the checks ----------------------------------------------------------------------------- */

static void fill(nn_tensor *t, in_mode mode, nd_rng *rng) {
    if (mode == IN_SPREAD || mode == IN_SPREAD2) {
        /* Distinct values at least 0.05 apart, shuffled: no ties for max, no points within the
         * finite-difference step of a kink. */
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(-1.0 + 0.05 * (double)i + (mode == IN_SPREAD ? 0.025 : 0.0));
        for (int64_t i = t->numel - 1; i > 0; i--) {
            int64_t j = (int64_t)nd_rng_below(rng, (uint64_t)(i + 1));
            float tmp = t->data[i];
            t->data[i] = t->data[j];
            t->data[j] = tmp;
        }
        return;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        double u = nd_rng_range(rng, -1.0, 1.0);
        t->data[i] = (float)(mode == IN_POSITIVE ? 0.2 + fabs(u) : mode == IN_LABEL01 ? (u > 0 ? 1.0 : 0.0) : u);
    }
}

static double objective(nn_ctx *ctx, const op_case *oc, nn_tensor **in, const float *r) {
    nn_ctx_seed(ctx, 99);
    nn_tensor *o = oc->build(ctx, in);
    double f = 0;
    for (int64_t i = 0; i < o->numel; i++) f += (double)o->data[i] * r[i];
    return f;
}

static int check_case(const op_case *oc) {
    nd_rng rng;
    nd_rng_seed(&rng, 1234);
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *in[MAX_IN];
    for (int i = 0; i < oc->nin; i++) {
        in[i] = nn_tensor_new(ctx, oc->ndim[i], oc->shape[i]);
        fill(in[i], oc->mode[i], &rng);
        if (oc->check & (1u << i)) nn_tensor_requires_grad(in[i]);
    }
    nn_ctx_seed(ctx, 99);
    nn_tensor *out = oc->build(ctx, in);
    int failures = 0;
    if (oc->ref) {
        double *ref = calloc((size_t)out->numel, sizeof(double));
        oc->ref(in, out, ref);
        for (int64_t i = 0; i < out->numel; i++)
            if (fabs(out->data[i] - ref[i]) > 1e-4 + 1e-4 * fabs(ref[i])) {
                if (failures++ < 5)
                    cr_log_error("%s: forward[%lld] = %.7g, reference %.7g", oc->name, (long long)i, (double)out->data[i],
                                 ref[i]);
            }
        free(ref);
    }
    float *r = malloc((size_t)out->numel * sizeof(float));
    for (int64_t i = 0; i < out->numel; i++) r[i] = (float)nd_rng_range(&rng, -1.0, 1.0);
    nn_backward_from(ctx, out, r);
    cr_expect(nn_ctx_tape_len(ctx) > 0, "%s: nothing recorded on the tape", oc->name);
    nn_ctx_set_grad(ctx, 0);
    for (int i = 0; i < oc->nin; i++) {
        if (!(oc->check & (1u << i))) continue;
        nn_tensor *x = in[i];
        cr_assert(x->grad != NULL, "%s: input %d received no gradient", oc->name, i);
        int64_t stride = x->numel > 48 ? x->numel / 48 + 1 : 1;
        for (int64_t j = 0; j < x->numel; j += stride) {
            float keep = x->data[j];
            const float eps = 1e-2f;
            x->data[j] = keep + eps;
            double fp = objective(ctx, oc, in, r);
            x->data[j] = keep - eps;
            double fm = objective(ctx, oc, in, r);
            x->data[j] = keep;
            double num = (fp - fm) / (2.0 * eps), ana = x->grad[j];
            if (fabs(num - ana) > 1e-3 + 5e-3 * fabs(num)) {
                if (failures++ < 8)
                    cr_log_error("%s: d/d input%d[%lld]: analytic %.6g, numeric %.6g", oc->name, i, (long long)j, ana, num);
            }
        }
    }
    free(r);
    nn_ctx_free(ctx);
    return failures;
}

Test(nn_ops, every_op_forward_and_gradient) {
    int bad = 0;
    for (int k = 0; k < NCASES; k++) {
        int f = check_case(&cases[k]);
        if (f) cr_log_error("FAILED: %s (%d mismatches)", cases[k].name, f);
        bad += f != 0;
    }
    cr_assert_eq(bad, 0, "%d of %d op cases failed", bad, NCASES);
}

/* Every op of ops.def appears in the table above (by the name prefix of a row). */
Test(nn_ops, table_covers_op_list) {
    static const char *ops[] = {
#define X(E, n) #n,
#include "nn/ops/ops.def"
#undef X
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        int found = 0;
        for (int k = 0; k < NCASES && !found; k++) found = strncmp(cases[k].name, ops[i], strlen(ops[i])) == 0;
        /* Op names with an underscore-free prefix match ambiguously (max_pool2d vs max_pool): the
         * table uses the op's name without the "2d" suffix. */
        if (!found && strlen(ops[i]) > 2 && strcmp(ops[i] + strlen(ops[i]) - 2, "2d") == 0)
            for (int k = 0; k < NCASES && !found; k++) found = strncmp(cases[k].name, ops[i], strlen(ops[i]) - 2) == 0;
        cr_expect(found, "op %s has no row in the op test table", ops[i]);
    }
}

/* Dropout and drop-path: identity in evaluation, and in training each example (drop-path) or
 * element (dropout) is either zero or x / keep. */
Test(nn_ops, dropout_and_drop_path_masks) {
    nn_ctx *ctx = nn_ctx_new();
    nd_rng rng;
    nd_rng_seed(&rng, 5);
    nn_tensor *x = nn_tensor_new(ctx, 4, NN_SHAPE(64, 2, 2, 2));
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)nd_rng_range(&rng, 0.5, 1.5);
    nn_tensor *y = nn_drop_path(ctx, x, 0.6f);
    int kept = 0;
    for (int64_t n = 0; n < 64; n++) {
        int zero = y->data[n * 8] == 0.0f;
        kept += !zero;
        for (int64_t i = 0; i < 8; i++) {
            float want = zero ? 0.0f : x->data[n * 8 + i] / 0.6f;
            cr_assert_float_eq(y->data[n * 8 + i], want, 1e-6f);
        }
    }
    cr_expect(kept > 20 && kept < 58, "drop_path kept %d of 64 at keep 0.6", kept);
    y = nn_dropout(ctx, x, 0.25f);
    int zeros = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (y->data[i] == 0.0f)
            zeros++;
        else
            cr_assert_float_eq(y->data[i], x->data[i] / 0.75f, 1e-6f);
    }
    cr_expect(zeros > 80 && zeros < 180, "dropout zeroed %d of 512 at p 0.25", zeros);
    nn_ctx_set_training(ctx, 0);
    cr_expect(nn_drop_path(ctx, x, 0.6f) == x);
    cr_expect(nn_dropout(ctx, x, 0.5f) == x);
    nn_ctx_free(ctx);
}

/* No-grad mode records nothing; eval-mode batch norm uses and keeps the running statistics;
 * training mode updates them with momentum and the unbiased variance. */
Test(nn_ops, modes_and_batch_norm_running_stats) {
    nn_ctx *ctx = nn_ctx_new();
    nn_params *ps = nn_params_new();
    nn_tensor *rm = nn_params_add(ps, "bn.mean", 1, NN_SHAPE(2), NN_PARAM_BUFFER);
    nn_tensor *rv = nn_params_add(ps, "bn.var", 1, NN_SHAPE(2), NN_PARAM_BUFFER);
    nn_tensor *g = nn_params_add(ps, "bn.gamma", 1, NN_SHAPE(2), NN_PARAM_NO_DECAY);
    nn_init_constant(rv, 1.0f);
    nn_init_constant(g, 2.0f);
    float xs[8] = {1, 2, 3, 4, 10, 10, 14, 14}; /* [2,2,2,1]: ch0 {1,2,10,10}, ch1 {3,4,14,14} */
    nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(2, 2, 2, 1), xs);
    nn_bn_params p = {1e-3f, 0.1f};
    nn_batch_norm(ctx, x, g, NULL, rm, rv, &p);
    cr_expect(nn_ctx_tape_len(ctx) == 1, "a parameter input records a node");
    /* ch0 mean 5.75, unbiased var = sum sq dev / 3 = (22.5625+14.0625+18.0625*2)/3 = 24.25 */
    cr_expect_float_eq(rm->data[0], 0.575f, 1e-5f);
    cr_expect_float_eq(rv->data[0], 0.9f + 0.1f * 24.25f, 1e-4f);
    nn_ctx_reset(ctx);
    nn_ctx_set_training(ctx, 0);
    nn_ctx_set_grad(ctx, 0);
    x = nn_tensor_from(ctx, 4, NN_SHAPE(2, 2, 2, 1), xs);
    float m0 = rm->data[0], v0 = rv->data[0];
    nn_tensor *y = nn_batch_norm(ctx, x, g, NULL, rm, rv, &p);
    cr_expect(nn_ctx_tape_len(ctx) == 0, "no-grad mode records nothing");
    cr_expect_float_eq(rm->data[0], m0, 0.0f, "eval mode leaves running mean");
    cr_expect_float_eq(y->data[0], 2.0f * (1.0f - m0) / sqrtf(v0 + 1e-3f), 1e-5f);
    nn_params_free(ps);
    nn_ctx_free(ctx);
}

/* Fan-out: a tensor used twice gets the sum of both gradients; parameter gradients accumulate
 * across backward calls until zeroed. */
Test(nn_ops, gradients_accumulate) {
    nn_ctx *ctx = nn_ctx_new();
    nn_params *ps = nn_params_new();
    nn_tensor *w = nn_params_add(ps, "w", 1, NN_SHAPE(3), 0);
    nn_init_constant(w, 2.0f);
    nn_tensor *y = nn_sum(ctx, nn_add(ctx, nn_mul(ctx, w, w), w)); /* d/dw = 2w + 1 = 5 */
    nn_backward(ctx, y);
    cr_expect_float_eq(w->grad[1], 5.0f, 1e-6f);
    nn_ctx_reset(ctx);
    y = nn_sum(ctx, nn_scale(ctx, w, 3.0f, 0.0f));
    nn_backward(ctx, y);
    cr_expect_float_eq(w->grad[1], 8.0f, 1e-6f);
    nn_params_zero_grad(ps);
    cr_expect_float_eq(w->grad[1], 0.0f, 0.0f);
    nn_params_free(ps);
    nn_ctx_free(ctx);
}

/* nn_backward_from reads the caller's seed in place when an op made the tensor (its gradient has
 * that op's backward as only reader): the seed is never written, never kept and never recycled
 * into later gradients of the ctx; a leaf seeded directly gets its own copy. */
Test(nn_ops, seed_gradient_read_in_place_never_kept) {
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = nn_tensor_full(ctx, 1, NN_SHAPE(4), 2.0f);
    nn_tensor_requires_grad(x);
    float seed[4] = {1, 2, 3, 4}, keep[4];
    memcpy(keep, seed, sizeof seed);
    nn_tensor *y = nn_scale(ctx, nn_relu(ctx, x), 3.0f, 0.0f);
    nn_backward_from(ctx, y, seed);
    cr_expect(memcmp(seed, keep, sizeof seed) == 0, "the seed was written");
    cr_expect(y->grad != seed, "the tensor kept the caller's seed");
    for (int i = 0; i < 4; i++) cr_expect_float_eq(x->grad[i], 3.0f * keep[i], 0.0f);
    /* A second pass allocates and recycles gradients of the same size: none may be the seed. */
    float ones[4] = {1, 1, 1, 1};
    nn_tensor *z = nn_scale(ctx, nn_relu(ctx, nn_scale(ctx, x, 1.0f, 0.0f)), 1.0f, 0.0f);
    nn_backward_from(ctx, z, ones);
    cr_expect(memcmp(seed, keep, sizeof seed) == 0, "a later backward wrote into the seed");
    for (int i = 0; i < 4; i++) cr_expect_float_eq(x->grad[i], 3.0f * keep[i] + 1.0f, 0.0f);
    nn_tensor *leaf = nn_tensor_new(ctx, 1, NN_SHAPE(4));
    nn_tensor_requires_grad(leaf);
    nn_backward_from(ctx, leaf, seed);
    cr_expect(leaf->grad != NULL && leaf->grad != seed, "a leaf's gradient must be its own copy");
    cr_expect_float_eq(leaf->grad[2], 3.0f, 0.0f);
    nn_ctx_free(ctx);
}

/* add, sub, reshape and relu hand their output gradient's buffer to an input that has none yet
 * (nn__grad_pass; relu masks it in place): fan-out before and after the hand-over, one tensor
 * on both sides (x + x, x - x), and retain_grads (which keeps every intermediate gradient, so
 * nothing changes hands) all give the analytic gradients. x = [1, 2, 3, 4], c = [1, -2, 3, 0.5]:
 *   t = x + b;  u = t + x;  v = reshape(u) * c;  d = (x + x) - (b - b) * x;  e = relu(x - 2.5)
 *   loss = sum(v) + sum(d * c) + sum(e * c)
 *   ->  dx = 2c + 2c - (b - b) c + c [x > 2.5] = 4c + [0, 0, c2, c3],  db = c + (c x - c x) = c. */
static void pass_case(int retain, float *gx, float *gb, float *gt) {
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_retain_grads(ctx, retain);
    float xs[4] = {1, 2, 3, 4}, bs[4] = {0.5f, -1, 2, 7}, cs[4] = {1, -2, 3, 0.5f};
    nn_tensor *x = nn_tensor_from(ctx, 1, NN_SHAPE(4), xs), *b = nn_tensor_from(ctx, 1, NN_SHAPE(4), bs);
    nn_tensor *c = nn_tensor_from(ctx, 2, NN_SHAPE(2, 2), cs), *c1 = nn_tensor_from(ctx, 1, NN_SHAPE(4), cs);
    nn_tensor_requires_grad(x);
    nn_tensor_requires_grad(b);
    nn_tensor *t = nn_add(ctx, x, b);
    nn_tensor *u = nn_add(ctx, t, x);
    nn_tensor *v = nn_mul(ctx, nn_reshape(ctx, u, 2, NN_SHAPE(2, 2)), c);
    nn_tensor *d = nn_sub(ctx, nn_add(ctx, x, x), nn_mul(ctx, nn_sub(ctx, b, b), x));
    nn_tensor *e = nn_relu(ctx, nn_sub(ctx, x, nn_tensor_full(ctx, 1, NN_SHAPE(4), 2.5f)));
    nn_tensor *loss = nn_add(ctx, nn_add(ctx, nn_sum(ctx, v), nn_sum(ctx, nn_mul(ctx, d, c1))),
                             nn_sum(ctx, nn_mul(ctx, e, c1)));
    nn_backward(ctx, loss);
    for (int i = 0; i < 4; i++) {
        gx[i] = x->grad[i];
        gb[i] = b->grad[i];
        gt[i] = retain ? t->grad[i] : 0.0f;
    }
    nn_ctx_free(ctx);
}

Test(nn_ops, gradient_buffers_change_hands) {
    static const float c[4] = {1, -2, 3, 0.5f};
    for (int retain = 0; retain <= 1; retain++) {
        float gx[4], gb[4], gt[4];
        pass_case(retain, gx, gb, gt);
        for (int i = 0; i < 4; i++) {
            float want = 4.0f * c[i] + (i >= 2 ? c[i] : 0.0f);
            cr_expect_float_eq(gx[i], want, 1e-6f, "retain %d: dx[%d] = %g, want %g", retain, i, gx[i], want);
            cr_expect_float_eq(gb[i], c[i], 1e-6f, "retain %d: db[%d] = %g", retain, i, gb[i]);
            if (retain) cr_expect_float_eq(gt[i], c[i], 1e-6f, "retained dt[%d] = %g", i, gt[i]);
        }
    }
}

/* Large concats take the threaded paths (whole slabs per thread, or pieces of every input's copy
 * when there are few slabs, as at batch 1; outputs of 16 MiB and more through streaming stores,
 * from slabs of odd lengths that start off the stores' alignment): every value lands where a plain
 * copy puts it, for 1 and 2 threads, batch 1, 3 and 8, inputs longer and shorter than a piece. */
Test(nn_ops, large_concat_threaded) {
    static const int64_t ch[2][3] = {{40, 3, 57}, {201, 203, 197}};
    static const int64_t batch[3] = {1, 3, 8};
    for (int threads = 1; threads <= 2; threads++)
        for (int k = 0; k < 3; k++) {
            int64_t n = batch[k];
            const int64_t *c = ch[n == 8]; /* batch 8: 17.3 MB, streamed */
            nn_set_threads(threads);
            nn_ctx *ctx = nn_ctx_new();
            nn_tensor *in[3];
            for (int i = 0; i < 3; i++) {
                in[i] = nn_tensor_new(ctx, 4, NN_SHAPE(n, c[i], 31, 29));
                for (int64_t j = 0; j < in[i]->numel; j++) in[i]->data[j] = (float)(i * 1000000 + j);
            }
            nn_tensor *y = nn_concat(ctx, in, 3, 1);
            int64_t plane = 31 * 29, bad = 0, total = c[0] + c[1] + c[2];
            for (int64_t b = 0; b < n; b++) {
                int64_t c0 = 0;
                for (int i = 0; i < 3; i++) {
                    for (int64_t j = 0; j < c[i] * plane; j++)
                        bad += y->data[(b * total + c0) * plane + j] != in[i]->data[b * c[i] * plane + j];
                    c0 += c[i];
                }
            }
            cr_expect_eq(bad, 0, "threads %d batch %lld: %lld values misplaced", threads, (long long)n, (long long)bad);
            nn_ctx_free(ctx);
        }
    nn_set_threads(0);
}
