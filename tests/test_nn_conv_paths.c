/* Every kernel path of dense convolution on shapes large enough for the threaded branches:
 * the direct stride-1 kernels (whole images per thread, one image split across threads, 1x1 in
 * place, padded planes with dilation and uneven pads), the direct strided forward pass (stride
 * phases: column stride 2 split by shuffles, others gathered, phases no tap reads left out;
 * large outputs in row bands), the
 * direct weight gradient (any stride and
 * dilation, short last channel tiles), the im2col + GEMM chunks (strides,
 * groups, and everything under NN_CONV_GEMM=1), each with AVX-512 and, under NN_NO_AVX512=1, with the AVX2
 * kernels. Each case checks forward, input, weight and bias gradients against a direct double
 * reference, with the input gradient reached twice (the first backward stores into a fresh buffer,
 * the second adds), and one thread against two bit for bit. Criterion runs every test in its own
 * process, so the environment switches set at the start of a test apply to all of it. The last
 * test holds linear and matmul (the other BLAS users) to the same thread independence. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "nn/nn.h"

typedef struct conv_case {
    const char *name;
    int64_t x[4], w[4];
    nn_conv2d_params p; /* explicit pads (same = 0) */
    int bias;
} conv_case;

static const conv_case cases[] = {
    {"3x3 pad 1 +bias, 4 images (images per thread)", {4, 8, 20, 20}, {12, 8, 3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 1},
    {"3x3 pad 1, 1 image (positions per thread)", {1, 8, 20, 20}, {12, 8, 3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 0},
    {"1x1, 3 images (in place)", {3, 40, 16, 16}, {36, 40, 1, 1}, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, 0},
    {"1x1, 1 image (in place, split)", {1, 40, 16, 16}, {36, 40, 1, 1}, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, 0},
    {"1x1, 1 image 7x7 (channels per thread)", {1, 200, 7, 7}, {44, 200, 1, 1}, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, 0},
    {"1x1, 1 image 14x14 (short last block)", {1, 72, 14, 14}, {20, 72, 1, 1}, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, 1},
    {"1x1 20->13 (short sums, short last channel tile)", {3, 20, 16, 16}, {13, 20, 1, 1}, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}, 0},
    {"3x3 RGB stem (3 input channels)", {4, 3, 20, 20}, {16, 3, 3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 1},
    {"3x3 16->6, 1 image (fewer outputs than a register tile)", {1, 16, 24, 24}, {6, 16, 3, 3},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 1},
    {"3x3 pad 1 on 7x7, 2 images (output rows shorter than a vector)", {2, 16, 7, 7}, {16, 16, 3, 3},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 0},
    {"5x5 pad 2, 1 image 28x28 (rows across blocks, positions per thread)", {1, 8, 28, 28}, {16, 8, 5, 5},
     {1, 1, 1, 1, 1, 2, 2, 2, 2, 0}, 1},
    {"5x5 dilation 2, uneven pads", {2, 8, 18, 21}, {9, 8, 5, 5}, {1, 1, 2, 2, 1, 3, 1, 0, 4, 0}, 1},
    {"1x7 pad 3 (padded rows of another width)", {2, 8, 9, 30}, {9, 8, 1, 7}, {1, 1, 1, 1, 1, 0, 0, 3, 3, 0}, 0},
    {"3x3 stride 2, 32 images (direct forward; GEMM chunks backward)", {32, 8, 12, 12}, {10, 8, 3, 3}, {2, 2, 1, 1, 1, 1, 0, 1, 0, 0}, 1},
    {"3x3 groups 2 (GEMM)", {8, 8, 10, 10}, {6, 4, 3, 3}, {1, 1, 1, 1, 2, 1, 1, 1, 1, 0}, 0},
    {"3x3 20->37, 3 images (weight-gradient tiles with short last blocks)", {3, 20, 11, 13}, {37, 20, 3, 3},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 1},
    {"1x1 stride 2 (factorized reduction: one phase read)", {4, 24, 10, 9}, {36, 24, 1, 1}, {2, 2, 1, 1, 1, 0, 0, 0, 0, 0}, 0},
    {"3x3 stride 2 RGB stem, SAME on an even size (pads 0/1), 1 image (positions per thread)", {1, 3, 64, 64},
     {32, 3, 3, 3}, {2, 2, 1, 1, 1, 0, 1, 0, 1, 0}, 0},
    {"3x3 stride 2 RGB stem, odd sizes, pads 1/1, 2 images", {2, 3, 45, 39}, {16, 3, 3, 3},
     {2, 2, 1, 1, 1, 1, 1, 1, 1, 0}, 1},
    {"3x3 stride 2 RGB stem, 1 image 320x320 (the output in row bands, threads sharing them)", {1, 3, 320, 320},
     {32, 3, 3, 3}, {2, 2, 1, 1, 1, 0, 1, 0, 1, 0}, 0},
    /* Wide rather than large: the weight gradient's sums stay short enough for the tolerance. */
    {"3x3 8->288, 2 images 32x32 (row bands, an image per thread)", {2, 8, 32, 32}, {288, 8, 3, 3},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, 1},
    {"3x3 stride 3, uneven pads (phases gathered)", {2, 5, 23, 26}, {7, 5, 3, 3}, {3, 3, 1, 1, 1, 1, 1, 2, 0, 0}, 0},
    {"5x5 stride 2 dilation 2 (three phases unread)", {2, 6, 21, 21}, {8, 6, 5, 5}, {2, 2, 2, 2, 1, 4, 3, 4, 3, 0}, 1},
    {"3x2 stride 2x1 dilation 1x2, 70 images", {70, 9, 20, 21}, {33, 9, 3, 2},
     {2, 1, 1, 2, 1, 1, 2, 0, 1, 0}, 0},
    /* depthwise with a stride, outputs of 1024+ positions: the backward pass runs one stride-1
     * problem per phase */
    {"depthwise 7x7 stride 2, SAME-like pads", {2, 3, 67, 65}, {3, 1, 7, 7}, {2, 2, 1, 1, 3, 2, 3, 2, 3, 0}, 1},
    {"depthwise 5x5 stride 2 pad 2, even size", {1, 3, 64, 64}, {3, 1, 5, 5}, {2, 2, 1, 1, 3, 2, 2, 2, 2, 0}, 0},
    {"depthwise 3x3 stride 3x2, uneven pads", {1, 4, 97, 70}, {4, 1, 3, 3}, {3, 2, 1, 1, 4, 0, 1, 1, 0, 0}, 1},
    {"depthwise 2x2 stride 3 (phases no tap reaches)", {1, 3, 96, 100}, {3, 1, 2, 2}, {3, 3, 1, 1, 3, 0, 0, 0, 0, 0}, 0},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static int64_t out_dim(int64_t in, int64_t k, int s, int d, int pa, int pb) { return (in + pa + pb - d * (k - 1) - 1) / s + 1; }

/* y, and for the output gradient r: dx, dw, db, all in double. */
static void reference(const conv_case *c, const float *x, const float *w, const float *b, const float *r, double *y,
                      double *dx, double *dw, double *db) {
    const nn_conv2d_params *p = &c->p;
    int64_t n = c->x[0], cin = c->x[1], h = c->x[2], wd = c->x[3], cout = c->w[0], cig = c->w[1], kh = c->w[2],
            kw = c->w[3];
    int64_t oh = out_dim(h, kh, p->stride_h, p->dil_h, p->pad_t, p->pad_b);
    int64_t ow = out_dim(wd, kw, p->stride_w, p->dil_w, p->pad_l, p->pad_r);
    int64_t cog = cout / p->groups;
    memset(dx, 0, (size_t)(n * cin * h * wd) * sizeof(double));
    memset(dw, 0, (size_t)(cout * cig * kh * kw) * sizeof(double));
    memset(db, 0, (size_t)cout * sizeof(double));
    for (int64_t b0 = 0; b0 < n; b0++)
        for (int64_t co = 0; co < cout; co++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    int64_t yi = ((b0 * cout + co) * oh + i) * ow + j;
                    double s = b ? b[co] : 0.0, g = r[yi];
                    db[co] += g;
                    for (int64_t ci = 0; ci < cig; ci++)
                        for (int64_t u = 0; u < kh; u++)
                            for (int64_t v = 0; v < kw; v++) {
                                int64_t ih = i * p->stride_h - p->pad_t + u * p->dil_h;
                                int64_t iw = j * p->stride_w - p->pad_l + v * p->dil_w;
                                if (ih < 0 || iw < 0 || ih >= h || iw >= wd) continue;
                                int64_t xi = ((b0 * cin + co / cog * cig + ci) * h + ih) * wd + iw;
                                int64_t wi = ((co * cig + ci) * kh + u) * kw + v;
                                s += (double)x[xi] * w[wi];
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                    y[yi] = s;
                }
}

typedef struct run_out {
    int64_t ny, nx, nw, nb;
    float *y, *dx, *dw, *db;
} run_out;

/* y = conv(x) computed twice and added, so x, w and b each receive the gradient r from two
 * nodes: 2 * the reference gradients. */
static run_out run(const conv_case *c, int threads, const float *xs, const float *ws, const float *bs, const float *r) {
    nn_set_threads(threads);
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = nn_tensor_from(ctx, 4, c->x, xs), *w = nn_tensor_from(ctx, 4, c->w, ws);
    nn_tensor *b = c->bias ? nn_tensor_from(ctx, 1, NN_SHAPE(c->w[0]), bs) : NULL;
    nn_tensor_requires_grad(x);
    nn_tensor_requires_grad(w);
    if (b) nn_tensor_requires_grad(b);
    nn_tensor *y1 = nn_conv2d(ctx, x, w, b, &c->p), *y2 = nn_conv2d(ctx, x, w, b, &c->p);
    nn_tensor *y = nn_add(ctx, y1, y2);
    nn_backward_from(ctx, y, r);
    run_out o = {y1->numel, x->numel, w->numel, b ? b->numel : 0, NULL, NULL, NULL, NULL};
    o.y = malloc((size_t)o.ny * sizeof(float));
    o.dx = malloc((size_t)o.nx * sizeof(float));
    o.dw = malloc((size_t)o.nw * sizeof(float));
    o.db = malloc((size_t)(o.nb + 1) * sizeof(float));
    memcpy(o.y, y1->data, (size_t)o.ny * sizeof(float));
    memcpy(o.dx, x->grad, (size_t)o.nx * sizeof(float));
    memcpy(o.dw, w->grad, (size_t)o.nw * sizeof(float));
    if (b) memcpy(o.db, b->grad, (size_t)o.nb * sizeof(float));
    nn_ctx_free(ctx);
    nn_set_threads(0);
    return o;
}

static void run_free(run_out *o) {
    free(o->y), free(o->dx), free(o->dw), free(o->db);
}

static int close_all(const char *what, const char *name, const float *got, const double *want, double scale,
                     int64_t n) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double ref = scale * want[i];
        if (fabs(got[i] - ref) > 1e-4 * (1.0 + fabs(ref))) {
            if (bad++ < 4) cr_log_error("%s: %s[%lld] = %.7g, reference %.7g", name, what, (long long)i, (double)got[i], ref);
        }
    }
    return bad;
}

static int same_bits(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

static void check_all_cases(void) {
    int failed = 0;
    for (int k = 0; k < NCASES; k++) {
        const conv_case *c = &cases[k];
        nd_rng rng;
        nd_rng_seed(&rng, 77 + (uint64_t)k);
        int64_t nx = c->x[0] * c->x[1] * c->x[2] * c->x[3], nw = c->w[0] * c->w[1] * c->w[2] * c->w[3];
        int64_t oh = out_dim(c->x[2], c->w[2], c->p.stride_h, c->p.dil_h, c->p.pad_t, c->p.pad_b);
        int64_t ow = out_dim(c->x[3], c->w[3], c->p.stride_w, c->p.dil_w, c->p.pad_l, c->p.pad_r);
        int64_t ny = c->x[0] * c->w[0] * oh * ow;
        float *x = malloc((size_t)nx * sizeof(float)), *w = malloc((size_t)nw * sizeof(float));
        float *b = malloc((size_t)c->w[0] * sizeof(float)), *r = malloc((size_t)ny * sizeof(float));
        for (int64_t i = 0; i < nx; i++) x[i] = (float)nd_rng_range(&rng, -1, 1);
        for (int64_t i = 0; i < nw; i++) w[i] = (float)nd_rng_range(&rng, -1, 1);
        for (int64_t i = 0; i < c->w[0]; i++) b[i] = (float)nd_rng_range(&rng, -1, 1);
        for (int64_t i = 0; i < ny; i++) r[i] = (float)nd_rng_range(&rng, -1, 1);
        double *y = malloc((size_t)ny * sizeof(double)), *dx = malloc((size_t)nx * sizeof(double));
        double *dw = malloc((size_t)nw * sizeof(double)), *db = malloc((size_t)c->w[0] * sizeof(double));
        reference(c, x, w, c->bias ? b : NULL, r, y, dx, dw, db);
        run_out two = run(c, 2, x, w, b, r), one = run(c, 1, x, w, b, r);
        cr_assert_eq(two.ny, ny, "%s: output size", c->name);
        int bad = close_all("y", c->name, two.y, y, 1.0, ny) + close_all("dx", c->name, two.dx, dx, 2.0, nx) +
                  close_all("dw", c->name, two.dw, dw, 2.0, nw);
        if (c->bias) bad += close_all("db", c->name, two.db, db, 2.0, c->w[0]);
        int same = same_bits(one.y, two.y, ny) && same_bits(one.dx, two.dx, nx) && same_bits(one.dw, two.dw, nw) &&
                   same_bits(one.db, two.db, two.nb);
        if (!same)
            cr_log_error("%s: one thread and two threads differ (y %d, dx %d, dw %d, db %d)", c->name,
                         !same_bits(one.y, two.y, ny), !same_bits(one.dx, two.dx, nx), !same_bits(one.dw, two.dw, nw),
                         !same_bits(one.db, two.db, two.nb));
        if (bad || !same) {
            cr_log_error("FAILED: %s", c->name);
            failed++;
        }
        run_free(&one), run_free(&two);
        free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
    }
    cr_assert_eq(failed, 0, "%d of %d convolution cases failed", failed, NCASES);
}

Test(nn_conv_paths, default_kernels) { check_all_cases(); }

Test(nn_conv_paths, avx2_kernels) {
    setenv("NN_NO_AVX512", "1", 1);
    check_all_cases();
}

Test(nn_conv_paths, gemm_path_for_every_shape) {
    setenv("NN_CONV_GEMM", "1", 1);
    check_all_cases();
}

/* linear and matmul forward and backward with one thread and with two, on shapes where OpenBLAS's
 * own threading changes the sums (a long reduction into a 9 x 200 result). */
static void blas_ops(int threads, float *out, int64_t *nout) {
    nn_set_threads(threads);
    nd_rng rng;
    nd_rng_seed(&rng, 5);
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = nn_tensor_new(ctx, 2, NN_SHAPE(476, 200)), *w = nn_tensor_new(ctx, 2, NN_SHAPE(9, 200));
    nn_tensor *b = nn_tensor_new(ctx, 2, NN_SHAPE(9, 700));
    nn_tensor *ts[3] = {x, w, b};
    for (int i = 0; i < 3; i++) {
        for (int64_t j = 0; j < ts[i]->numel; j++) ts[i]->data[j] = (float)nd_rng_range(&rng, -1, 1);
        nn_tensor_requires_grad(ts[i]);
    }
    nn_tensor *y = nn_linear(ctx, x, w, NULL);  /* [476, 9] */
    nn_tensor *z = nn_matmul(ctx, y, b);        /* [476, 700] */
    nn_backward(ctx, nn_sum(ctx, nn_mul(ctx, z, z)));
    int64_t k = 0;
    const nn_tensor *res[4] = {z, x, w, b};
    for (int i = 0; i < 4; i++) {
        const float *v = i == 0 ? res[i]->data : res[i]->grad;
        for (int64_t j = 0; j < res[i]->numel; j++) out[k++] = v[j];
    }
    *nout = k;
    nn_ctx_free(ctx);
    nn_set_threads(0);
}

Test(nn_conv_paths, linear_and_matmul_independent_of_thread_count) {
    int64_t cap = 476 * 700 + 476 * 200 + 9 * 200 + 9 * 700, na = 0, nb = 0;
    float *a = malloc((size_t)cap * sizeof(float)), *b = malloc((size_t)cap * sizeof(float));
    blas_ops(1, a, &na);
    blas_ops(2, b, &nb);
    cr_assert_eq(na, cap);
    cr_assert_eq(nb, cap);
    int64_t diff = 0;
    for (int64_t i = 0; i < cap; i++) diff += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    cr_expect_eq(diff, 0, "%lld of %lld values differ between 1 and 2 threads", (long long)diff, (long long)cap);
    free(a), free(b);
}

/* Products whose C fits one column block but has 256+ rows are split by rows (nn__sgemm): a
 * linear layer [300, 40] x [260, 40]^T, forward and both gradients (dW = dy^T x reads A
 * transposed) against double sums. */
Test(nn_conv_paths, row_split_gemm_matches_double_sums) {
    nd_rng rng;
    nd_rng_seed(&rng, 9);
    nn_ctx *ctx = nn_ctx_new();
    enum { N = 300, K = 40, O = 260 };
    nn_tensor *x = nn_tensor_new(ctx, 2, NN_SHAPE(N, K)), *w = nn_tensor_new(ctx, 2, NN_SHAPE(O, K));
    for (int64_t j = 0; j < x->numel; j++) x->data[j] = (float)nd_rng_range(&rng, -1, 1);
    for (int64_t j = 0; j < w->numel; j++) w->data[j] = (float)nd_rng_range(&rng, -1, 1);
    nn_tensor_requires_grad(x);
    nn_tensor_requires_grad(w);
    nn_tensor *y = nn_linear(ctx, x, w, NULL);
    nn_backward(ctx, nn_scale(ctx, nn_sum(ctx, nn_mul(ctx, y, y)), 0.5f, 0.0f)); /* dy = y */
    double *yr = malloc(sizeof(double) * N * O);
    int bad = 0;
    for (int i = 0; i < N; i++)
        for (int o = 0; o < O; o++) {
            double acc = 0;
            for (int k = 0; k < K; k++) acc += (double)x->data[i * K + k] * w->data[o * K + k];
            yr[i * O + o] = acc;
            bad += fabs(y->data[i * O + o] - acc) > 1e-4 * (1 + fabs(acc));
        }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            double acc = 0;
            for (int o = 0; o < O; o++) acc += yr[i * O + o] * w->data[o * K + k];
            bad += fabs(x->grad[i * K + k] - acc) > 1e-4 * (1 + fabs(acc));
        }
    for (int o = 0; o < O; o++)
        for (int k = 0; k < K; k++) {
            double acc = 0;
            for (int i = 0; i < N; i++) acc += yr[i * O + o] * x->data[i * K + k];
            bad += fabs(w->grad[o * K + k] - acc) > 1e-4 * (1 + fabs(acc));
        }
    cr_expect_eq(bad, 0, "%d values off the double sums", bad);
    free(yr);
    nn_ctx_free(ctx);
}

/* linear on the 1x1 register tiles (AVX-512, products of 2^20 or more): forward, dx and dw of
 * [20, 4100] x [53, 4100]^T + bias (partial channel tiles and masked tails of positions on every
 * product), the backward reached twice so that both gradients also add onto what is there,
 * against double sums, and one thread against two bit for bit. */
enum { FL_N = 20, FL_K = 4100, FL_O = 53 };

static void flat_linear(int threads, float *y_out, float *dx, float *dw) {
    nn_set_threads(threads);
    nd_rng rng;
    nd_rng_seed(&rng, 11);
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *x = nn_tensor_new(ctx, 2, NN_SHAPE(FL_N, FL_K)), *w = nn_tensor_new(ctx, 2, NN_SHAPE(FL_O, FL_K));
    for (int64_t j = 0; j < x->numel; j++) x->data[j] = (float)nd_rng_range(&rng, -1, 1);
    for (int64_t j = 0; j < w->numel; j++) w->data[j] = (float)nd_rng_range(&rng, -1, 1);
    nn_tensor *b = nn_tensor_new(ctx, 1, NN_SHAPE(FL_O));
    for (int64_t j = 0; j < FL_O; j++) b->data[j] = (float)j / FL_O; /* the tiles add onto the bias */
    nn_tensor_requires_grad(x);
    nn_tensor_requires_grad(w);
    nn_tensor *y = nn_linear(ctx, x, w, b);
    nn_tensor *loss = nn_scale(ctx, nn_sum(ctx, nn_mul(ctx, y, y)), 0.5f, 0.0f); /* dy = y */
    nn_backward(ctx, loss);
    nn_backward(ctx, loss); /* the second pass adds: 2 dy */
    memcpy(y_out, y->data, sizeof(float) * FL_N * FL_O);
    memcpy(dx, x->grad, sizeof(float) * FL_N * FL_K);
    memcpy(dw, w->grad, sizeof(float) * FL_O * FL_K);
    nn_ctx_free(ctx);
    nn_set_threads(0);
}

Test(nn_conv_paths, linear_on_register_tiles) {
    float *y1 = malloc(sizeof(float) * FL_N * FL_O), *y2 = malloc(sizeof(float) * FL_N * FL_O);
    float *dx1 = malloc(sizeof(float) * FL_N * FL_K), *dw1 = malloc(sizeof(float) * FL_O * FL_K);
    float *dx2 = malloc(sizeof(float) * FL_N * FL_K), *dw2 = malloc(sizeof(float) * FL_O * FL_K);
    flat_linear(1, y1, dx1, dw1);
    flat_linear(2, y2, dx2, dw2);
    cr_expect(same_bits(y1, y2, FL_N * FL_O) && same_bits(dx1, dx2, FL_N * FL_K) && same_bits(dw1, dw2, FL_O * FL_K),
              "1 and 2 threads differ");
    /* the same data, in double; the gradients from the float forward's y (= dy), so that only
     * the backward's own rounding is measured */
    nd_rng rng;
    nd_rng_seed(&rng, 11);
    double *x = malloc(sizeof(double) * FL_N * FL_K), *w = malloc(sizeof(double) * FL_O * FL_K);
    double *y = malloc(sizeof(double) * FL_N * FL_O);
    for (int64_t j = 0; j < FL_N * FL_K; j++) x[j] = (float)nd_rng_range(&rng, -1, 1);
    for (int64_t j = 0; j < FL_O * FL_K; j++) w[j] = (float)nd_rng_range(&rng, -1, 1);
    int bad_y = 0, bad_dx = 0, bad_dw = 0;
    for (int i = 0; i < FL_N; i++)
        for (int o = 0; o < FL_O; o++) {
            double acc = 0;
            for (int k = 0; k < FL_K; k++) acc += x[i * FL_K + k] * w[o * FL_K + k];
            acc += (double)(float)((double)o / FL_O);
            y[i * FL_O + o] = acc;
            bad_y += fabs(y1[i * FL_O + o] - acc) > 1e-4 * (1 + fabs(acc));
        }
    for (int i = 0; i < FL_N; i++)
        for (int k = 0; k < FL_K; k++) {
            double acc = 0;
            for (int o = 0; o < FL_O; o++) acc += 2 * (double)y1[i * FL_O + o] * w[o * FL_K + k];
            bad_dx += fabs(dx1[i * FL_K + k] - acc) > 1e-4 * (1 + fabs(acc));
        }
    for (int o = 0; o < FL_O; o++)
        for (int k = 0; k < FL_K; k++) {
            double acc = 0;
            for (int i = 0; i < FL_N; i++) acc += 2 * (double)y1[i * FL_O + o] * x[i * FL_K + k];
            bad_dw += fabs(dw1[o * FL_K + k] - acc) > 1e-4 * (1 + fabs(acc));
        }
    cr_expect(bad_y == 0 && bad_dx == 0 && bad_dw == 0, "values off the double sums: y %d, dx %d, dw %d", bad_y,
              bad_dx, bad_dw);
    free(x), free(w), free(y), free(y1), free(y2), free(dx1), free(dw1), free(dx2), free(dw2);
}
