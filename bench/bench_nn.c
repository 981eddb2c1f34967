/* nn benchmarks: sgemm calibration, per-op forward and forward+backward timings on NASNet
 * shapes, a whole NASNet-A normal cell, and the peak resident memory of a training step.
 *
 *   bench_nn                  human-readable table of our own timings
 *   bench_nn --tsv [FILTER]   one line per case: name, forward ms, forward+backward ms (medians)
 *   bench_nn --sgemm          sgemm GFLOP/s on 2048^3 (calibration figure)
 *   bench_nn --mem            peak RSS (MiB) before and after NASNet-A cell training steps
 * Threads: 2, or $BENCH_THREADS. BENCH_CLOCK=cpu times with the process's CPU time instead of
 * the wall clock: with one thread on a machine shared with other jobs, it compares kernels by
 * the work they do rather than by the time slices they get.
 *
 * bench/nn.sh runs this next to bench/nn_torch.py (the same cases in PyTorch) and prints ratios.
 * Figures are printed, never asserted. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/fileio.h"
#include "bench/bench_clock.h"
#include "common/rng.h"
#include "nn/nn.h"

/* ---- model pieces --------------------------------------------------------------------------- */

static nd_rng g_rng;
static nn_params *g_ps;
static int g_id;

static nn_tensor *param(int ndim, const int64_t *shape, int fan_init) {
    char name[32];
    snprintf(name, sizeof name, "p%d", g_id++);
    nn_tensor *t = nn_params_add(g_ps, name, ndim, shape, 0);
    if (fan_init)
        nn_init_variance_scaling(t, 2.0, NN_FAN_IN, NN_DIST_NORMAL, &g_rng);
    else
        nn_init_constant(t, 1.0f);
    return t;
}

static nn_tensor *buffer(int64_t c, float v) {
    char name[32];
    snprintf(name, sizeof name, "b%d", g_id++);
    nn_tensor *t = nn_params_add(g_ps, name, 1, NN_SHAPE(c), NN_PARAM_BUFFER);
    nn_init_constant(t, v);
    return t;
}

typedef struct bn_layer {
    nn_tensor *g, *b, *m, *v;
} bn_layer;

static bn_layer bn_new(int64_t c) {
    bn_layer l = {param(1, NN_SHAPE(c), 0), NULL, buffer(c, 0.0f), buffer(c, 1.0f)};
    char name[32];
    snprintf(name, sizeof name, "p%d", g_id++);
    l.b = nn_params_add(g_ps, name, 1, NN_SHAPE(c), NN_PARAM_NO_DECAY);
    return l;
}

static nn_tensor *bn_apply(nn_ctx *ctx, const bn_layer *l, nn_tensor *x) {
    nn_bn_params p = {1e-3f, 0.1f};
    return nn_batch_norm(ctx, x, l->g, l->b, l->m, l->v, &p);
}

/* ReLU -> 1x1 conv -> BN */
typedef struct rcb {
    nn_tensor *w;
    bn_layer bn;
} rcb;
static rcb rcb_new(int64_t cin, int64_t cout) {
    rcb r = {param(4, NN_SHAPE(cout, cin, 1, 1), 1), bn_new(cout)};
    return r;
}
static nn_tensor *rcb_apply(nn_ctx *ctx, const rcb *r, nn_tensor *x) {
    nn_conv2d_params p = nn_conv2d_pad(1, 0);
    return bn_apply(ctx, &r->bn, nn_conv2d(ctx, nn_relu(ctx, x), r->w, NULL, &p));
}

/* Separable conv as NASNet applies it: (ReLU -> depthwise kxk -> pointwise 1x1 -> BN) twice. */
typedef struct sep {
    int k;
    nn_tensor *dw[2], *pw[2];
    bn_layer bn[2];
} sep;
static sep sep_new(int64_t c, int k) {
    sep s;
    s.k = k;
    for (int i = 0; i < 2; i++) {
        s.dw[i] = param(4, NN_SHAPE(c, 1, k, k), 1);
        s.pw[i] = param(4, NN_SHAPE(c, c, 1, 1), 1);
        s.bn[i] = bn_new(c);
    }
    return s;
}
static nn_tensor *sep_half(nn_ctx *ctx, const sep *s, int i, nn_tensor *x) {
    nn_conv2d_params dp = nn_conv2d_same(1, 1), pp = nn_conv2d_pad(1, 0);
    dp.groups = (int32_t)x->shape[1];
    x = nn_conv2d(ctx, nn_relu(ctx, x), s->dw[i], NULL, &dp);
    return bn_apply(ctx, &s->bn[i], nn_conv2d(ctx, x, s->pw[i], NULL, &pp));
}
static nn_tensor *sep_apply(nn_ctx *ctx, const sep *s, nn_tensor *x) {
    return sep_half(ctx, s, 1, sep_half(ctx, s, 0, x));
}

/* NASNet-A normal cell (inputs: 0 = h_i, 1 = h_{i-1}, both mapped to F channels first). */
typedef struct cell {
    rcb in0, in1;
    sep s0a, s0b, s1a, s1b, s4;
} cell;
static cell cell_new(int64_t cin, int64_t f) {
    cell c = {rcb_new(cin, f), rcb_new(cin, f), sep_new(f, 5), sep_new(f, 3), sep_new(f, 5), sep_new(f, 3), sep_new(f, 3)};
    return c;
}
static nn_tensor *cell_apply(nn_ctx *ctx, const cell *c, nn_tensor *h, nn_tensor *hprev) {
    nn_pool_params ap = nn_pool_same(3, 1);
    nn_tensor *x0 = rcb_apply(ctx, &c->in0, h), *x1 = rcb_apply(ctx, &c->in1, hprev);
    nn_tensor *b0 = nn_add(ctx, sep_apply(ctx, &c->s0a, x0), sep_apply(ctx, &c->s0b, x1));
    nn_tensor *b1 = nn_add(ctx, sep_apply(ctx, &c->s1a, x1), sep_apply(ctx, &c->s1b, x1));
    nn_tensor *b2 = nn_add(ctx, nn_avg_pool2d(ctx, x0, &ap), x1);
    nn_tensor *b3 = nn_add(ctx, nn_avg_pool2d(ctx, x1, &ap), nn_avg_pool2d(ctx, x1, &ap));
    nn_tensor *b4 = nn_add(ctx, sep_apply(ctx, &c->s4, x0), x0);
    return nn_concat(ctx, (nn_tensor *[]){x1, b0, b1, b2, b3, b4}, 6, 1);
}

/* ---- cases ---------------------------------------------------------------------------------- */

typedef struct bcase {
    const char *name;
    int nin;
    int64_t in[2][4];
    /* kind selects the op; k/stride/cout its parameters */
    enum { K_CONV, K_DW, K_SEP, K_BN, K_RELU, K_AVG, K_MAX, K_CONCAT, K_ADD, K_CELL, K_LINEAR } kind;
    int k, stride;
    int64_t cout;
} bcase;

static const bcase cases[] = {
    {"conv1x1 192->32 @32x32 b32", 1, {{32, 192, 32, 32}}, K_CONV, 1, 1, 32},
    {"conv1x1 32->32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_CONV, 1, 1, 32},
    {"conv1x1 264->44 @28x28 b8", 1, {{8, 264, 28, 28}}, K_CONV, 1, 1, 44},
    {"conv1x1 256->256 @14x14 b8", 1, {{8, 256, 14, 14}}, K_CONV, 1, 1, 256},
    {"conv3x3 3->96 @32x32 b32", 1, {{32, 3, 32, 32}}, K_CONV, 3, 1, 96},
    {"conv3x3 64->64 @16x16 b32", 1, {{32, 64, 16, 16}}, K_CONV, 3, 1, 64},
    {"conv3x3 s2 3->32 @320x320 b2", 1, {{2, 3, 320, 320}}, K_CONV, 3, 2, 32}, /* the detector's stem */
    {"dw3x3 32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_DW, 3, 1, 0},
    {"dw5x5 32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_DW, 5, 1, 0},
    {"dw7x7 32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_DW, 7, 1, 0},
    {"dw5x5 s2 64 @32x32 b32", 1, {{32, 64, 32, 32}}, K_DW, 5, 2, 0},
    {"dw7x7 s2 32 @159x159 b2", 1, {{2, 32, 159, 159}}, K_DW, 7, 2, 0}, /* the detector's stem cell */
    {"sep3x3 32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_SEP, 3, 1, 0},
    {"sep5x5 32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_SEP, 5, 1, 0},
    {"sep7x7 32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_SEP, 7, 1, 0},
    {"sep3x3 44 @28x28 b8", 1, {{8, 44, 28, 28}}, K_SEP, 3, 1, 0},
    {"bn 64 @32x32 b32", 1, {{32, 64, 32, 32}}, K_BN, 0, 0, 0},
    {"relu 192 @32x32 b32", 1, {{32, 192, 32, 32}}, K_RELU, 0, 0, 0},
    {"avgpool3x3 same 32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_AVG, 3, 1, 0},
    {"maxpool3x3 same 32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_MAX, 3, 1, 0},
    {"maxpool3x3 s2 64 @32x32 b32", 1, {{32, 64, 32, 32}}, K_MAX, 3, 2, 0},
    {"concat 6x32 @32x32 b32", 1, {{32, 32, 32, 32}}, K_CONCAT, 0, 0, 0},
    {"add 32 @32x32 b32", 2, {{32, 32, 32, 32}, {32, 32, 32, 32}}, K_ADD, 0, 0, 0},
    /* the detector's box head: 256 ROIs of 96 x 7 x 7 features into 256 */
    {"linear 4704->256 b256", 1, {{256, 4704, 1, 1}}, K_LINEAR, 0, 0, 256},
    {"nasnet-a normal cell F=32 @32x32 b32", 2, {{32, 192, 32, 32}, {32, 192, 32, 32}}, K_CELL, 0, 0, 32},
    {"nasnet-a normal cell F=44 @28x28 b8", 2, {{8, 264, 28, 28}, {8, 264, 28, 28}}, K_CELL, 0, 0, 44},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

typedef struct built {
    nn_tensor *w, *bias;
    sep s;
    bn_layer bn;
    cell c;
} built;

static void build_params(const bcase *bc, built *b) {
    int64_t c = bc->in[0][1];
    switch (bc->kind) {
    case K_CONV: b->w = param(4, NN_SHAPE(bc->cout, c, bc->k, bc->k), 1); break;
    case K_DW: b->w = param(4, NN_SHAPE(c, 1, bc->k, bc->k), 1); break;
    case K_SEP: b->s = sep_new(c, bc->k); break;
    case K_BN: b->bn = bn_new(c); break;
    case K_CELL: b->c = cell_new(c, bc->cout); break;
    case K_LINEAR:
        b->w = param(2, NN_SHAPE(bc->cout, c), 1);
        b->bias = param(1, NN_SHAPE(bc->cout), 0);
        break;
    default: break;
    }
}

static nn_tensor *run_case(nn_ctx *ctx, const bcase *bc, const built *b, nn_tensor **in) {
    switch (bc->kind) {
    case K_CONV: {
        nn_conv2d_params p = nn_conv2d_same(bc->stride, 1);
        return nn_conv2d(ctx, in[0], b->w, NULL, &p);
    }
    case K_DW: {
        nn_conv2d_params p = nn_conv2d_same(bc->stride, 1);
        p.groups = (int32_t)in[0]->shape[1];
        return nn_conv2d(ctx, in[0], b->w, NULL, &p);
    }
    case K_SEP: return sep_apply(ctx, &b->s, in[0]);
    case K_BN: return bn_apply(ctx, &b->bn, in[0]);
    case K_RELU: return nn_relu(ctx, in[0]);
    case K_AVG: {
        nn_pool_params p = nn_pool_same(bc->k, bc->stride);
        return nn_avg_pool2d(ctx, in[0], &p);
    }
    case K_MAX: {
        nn_pool_params p = nn_pool_same(bc->k, bc->stride);
        return nn_max_pool2d(ctx, in[0], &p);
    }
    case K_CONCAT: return nn_concat(ctx, in, 6, 1); /* six inputs made by time_case */
    case K_ADD: return nn_add(ctx, in[0], in[1]);
    case K_CELL: return cell_apply(ctx, &b->c, in[0], in[1]);
    case K_LINEAR: return nn_linear(ctx, nn_reshape(ctx, in[0], 2, NN_SHAPE(in[0]->shape[0], in[0]->shape[1])), b->w, b->bias);
    }
    return NULL;
}


static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median milliseconds of forward (train mode, no tape) and forward+backward. */
static void time_case(const bcase *bc, int reps, double *fwd_ms, double *fb_ms) {
    g_ps = nn_params_new();
    nd_rng_seed(&g_rng, 1);
    built b;
    memset(&b, 0, sizeof b);
    build_params(bc, &b);
    nn_ctx *ctx = nn_ctx_new();
    float *data[2] = {NULL, NULL};
    for (int i = 0; i < bc->nin; i++) {
        int64_t n = bc->in[i][0] * bc->in[i][1] * bc->in[i][2] * bc->in[i][3];
        data[i] = malloc((size_t)n * sizeof(float));
        for (int64_t j = 0; j < n; j++) data[i][j] = (float)nd_rng_range(&g_rng, -1, 1);
    }
    double *t = malloc((size_t)reps * sizeof(double));
    for (int mode = 0; mode < 2; mode++) {
        nn_ctx_set_grad(ctx, mode);
        for (int r = -2; r < reps; r++) {
            nn_ctx_reset(ctx);
            nn_params_zero_grad(g_ps);
            nn_tensor *in[6];
            int nt = bc->kind == K_CONCAT ? 6 : bc->nin;
            for (int i = 0; i < nt; i++) {
                in[i] = nn_tensor_from(ctx, 4, bc->in[i < bc->nin ? i : 0], data[i < bc->nin ? i : 0]);
                if (mode) nn_tensor_requires_grad(in[i]);
            }
            double t0 = bench_now();
            nn_tensor *y = run_case(ctx, bc, &b, in);
            if (mode) {
                /* d out = 1, filled by the thread team in vectors as PyTorch's ones_like is (a
                 * plain `parallel for` stored one float at a time: 2 ms of a 25 MB case). */
                float *g = nn_ctx_alloc(ctx, (size_t)y->numel * sizeof(float));
#pragma omp parallel for simd schedule(static) if (y->numel > 65536)
                for (int64_t j = 0; j < y->numel; j++) g[j] = 1.0f;
                nn_backward_from(ctx, y, g);
            }
            double t1 = bench_now();
            if (r >= 0) t[r] = (t1 - t0) * 1e3;
        }
        *(mode ? fb_ms : fwd_ms) = median(t, reps);
    }
    free(t);
    free(data[0]);
    free(data[1]);
    nn_ctx_free(ctx);
    nn_params_free(g_ps);
}

static double sgemm_gflops(int n) {
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float));
    float *c = malloc((size_t)n * n * sizeof(float));
    for (int64_t i = 0; i < (int64_t)n * n; i++) a[i] = b[i] = 0.001f * (float)(i % 1000);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = nd_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = nd_time_now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

static double rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
    /* 2 threads (the machine's cores) unless BENCH_THREADS says otherwise; nn_torch.py reads it too. */
    const char *bt = getenv("BENCH_THREADS");
    nn_set_threads(bt ? atoi(bt) : 2);
    if (argc > 1 && strcmp(argv[1], "--sgemm") == 0) {
        printf("sgemm 2048^3, %d threads: %.1f GFLOP/s\n", nn_get_threads(), sgemm_gflops(2048));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--mem") == 0) {
        /* Peak RSS of training steps of one NASNet-A normal cell (F=32, 32x32, batch 32). */
        const bcase *bc = &cases[NCASES - 2];
        double before = rss_mib();
        double f, fb;
        time_case(bc, 3, &f, &fb);
        printf("peak RSS: %.0f MiB at start, %.0f MiB after cell training steps (%s)\n", before, rss_mib(), bc->name);
        return 0;
    }
    int tsv = argc > 1 && strcmp(argv[1], "--tsv") == 0;
    const char *filter = tsv && argc > 2 ? argv[2] : NULL;
    if (!tsv) printf("%-40s %10s %10s\n", "case", "fwd ms", "fwd+bwd ms");
    for (int i = 0; i < NCASES; i++) {
        if (filter && !strstr(cases[i].name, filter)) continue;
        int reps = cases[i].kind == K_CELL ? 3 : 7;
        double f, fb;
        time_case(&cases[i], reps, &f, &fb);
        if (tsv)
            printf("%s\t%.4f\t%.4f\n", cases[i].name, f, fb);
        else
            printf("%-40s %10.3f %10.3f\n", cases[i].name, f, fb);
        fflush(stdout);
    }
    return 0;
}
