/* conv2d: any kernel, stride, dilation, groups, explicit or TF SAME padding.
 * Dense and grouped convolutions go through OpenBLAS sgemm on im2col columns of several images
 * at once (one wide GEMM instead of many thin ones; a 1x1 stride-1 convolution of a large image
 * runs on the input in place); depthwise (groups == Cin == Cout) has its own vectorised direct
 * kernels (nn/ops/conv2d_dw.c) because a GEMM with one input channel per group is all overhead. */
#include <cblas.h>

#include "nn/nn_impl.h"
#include "nn/ops/conv2d_dw.h"

NN_NODE_PARAMS_FIT(nn_conv2d_params);

nn_conv2d_params nn_conv2d_same(int32_t stride, int32_t dilation) {
    nn_conv2d_params p = {stride, stride, dilation, dilation, 1, 0, 0, 0, 0, 1};
    return p;
}

nn_conv2d_params nn_conv2d_pad(int32_t stride, int32_t pad) {
    nn_conv2d_params p = {stride, stride, 1, 1, 1, pad, pad, pad, pad, 0};
    return p;
}

typedef struct geom {
    int64_t n, cin, h, w, cout, kh, kw, oh, ow, g, cig, cog, k, ohw;
} geom;

static geom geometry(const nn_node *node) {
    const nn_conv2d_params *p = NN_NODE_P(node, nn_conv2d_params);
    const nn_tensor *x = node->ins[0], *w = node->ins[1], *y = node->out;
    geom g;
    g.n = NN_N(x); g.cin = NN_C(x); g.h = NN_H(x); g.w = NN_W(x);
    g.cout = w->shape[0]; g.kh = w->shape[2]; g.kw = w->shape[3];
    g.oh = NN_H(y); g.ow = NN_W(y);
    g.g = p->groups; g.cig = g.cin / g.g; g.cog = g.cout / g.g;
    g.k = g.cig * g.kh * g.kw; g.ohw = g.oh * g.ow;
    return g;
}

static int is_pointwise(const nn_conv2d_params *p, const geom *g) {
    return g->kh == 1 && g->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_t == 0 && p->pad_b == 0 &&
           p->pad_l == 0 && p->pad_r == 0;
}

/* Images per GEMM: as many as fit a 64 MiB workspace (columns, GEMM output and, in backward,
 * the column gradient), at least one. Batching images turns many thin GEMMs into one wide one.
 * The count depends only on shapes, so the order in which the weight gradient sums over images
 * does not depend on the number of threads. */
static int64_t chunk_images(const geom *g, int pointwise) {
    /* A 1x1 stride-1 convolution runs image by image on the tensors in place: its "columns" are
     * the input planes themselves, so batching images would only add copies (im2col, the output
     * transpose, and col2im in backward: a third of a small NASNet child's step, measured with
     * perf), while OpenBLAS's small-matrix kernels keep the per-image GEMMs efficient. */
    if (pointwise) return 1;
    int64_t per = (2 * g->k + g->cog) * g->ohw * (int64_t)sizeof(float);
    int64_t c = ((int64_t)64 << 20) / (per > 0 ? per : 1);
    return c < 1 ? 1 : (c > g->n ? g->n : c);
}

/* x [N,Cin,H,W], images [n0, n0+m), group gi -> col [Cig*KH*KW, m*OH*OW] (row stride m*OH*OW,
 * image i in columns [i*OHW, (i+1)*OHW)); zeros where the window leaves the image. Every
 * (image, row) pair is written by one thread. */
static void im2col(const float *x, float *col, const geom *g, const nn_conv2d_params *p, int64_t n0, int64_t m,
                   int64_t gi) {
    int64_t ld = m * g->ohw;
#pragma omp parallel for schedule(static) if (m * g->k * g->ohw > NN_PAR_MIN)
    for (int64_t ir = 0; ir < m * g->k; ir++) {
        int64_t i = ir / g->k, r = ir % g->k;
        int64_t ci = r / (g->kh * g->kw), kh = (r / g->kw) % g->kh, kw = r % g->kw;
        const float *xc = x + ((n0 + i) * g->cin + gi * g->cig + ci) * g->h * g->w;
        float *dst = col + r * ld + i * g->ohw;
        if (g->kh == 1 && g->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_t == 0 && p->pad_l == 0 &&
            g->oh == g->h && g->ow == g->w) {
            memcpy(dst, xc, (size_t)g->ohw * sizeof(float));
            continue;
        }
        for (int64_t oh = 0; oh < g->oh; oh++) {
            int64_t ih = oh * p->stride_h - p->pad_t + kh * p->dil_h;
            float *d = dst + oh * g->ow;
            if (ih < 0 || ih >= g->h) {
                memset(d, 0, (size_t)g->ow * sizeof(float));
                continue;
            }
            const float *xr = xc + ih * g->w;
            int64_t off = kw * p->dil_w - p->pad_l;
            for (int64_t ow = 0; ow < g->ow; ow++) {
                int64_t iw = ow * p->stride_w + off;
                d[ow] = (iw >= 0 && iw < g->w) ? xr[iw] : 0.0f;
            }
        }
    }
}

/* col [Cig*KH*KW, m*OH*OW] -> dx [N,Cin,H,W] (+=) for images [n0, n0+m), group gi. One thread owns
 * an (image, input channel) plane and adds its KH*KW rows in a fixed order, so the sums do not
 * depend on scheduling. */
static void col2im_add(const float *col, float *dx, const geom *g, const nn_conv2d_params *p, int64_t n0, int64_t m,
                       int64_t gi) {
    int64_t ld = m * g->ohw;
#pragma omp parallel for schedule(static) if (m * g->k * g->ohw > NN_PAR_MIN)
    for (int64_t ic = 0; ic < m * g->cig; ic++) {
        int64_t i = ic / g->cig, ci = ic % g->cig;
        float *dxc = dx + ((n0 + i) * g->cin + gi * g->cig + ci) * g->h * g->w;
        for (int64_t kh = 0; kh < g->kh; kh++)
            for (int64_t kw = 0; kw < g->kw; kw++) {
                const float *src = col + ((ci * g->kh + kh) * g->kw + kw) * ld + i * g->ohw;
                for (int64_t oh = 0; oh < g->oh; oh++) {
                    int64_t ih = oh * p->stride_h - p->pad_t + kh * p->dil_h;
                    if (ih < 0 || ih >= g->h) continue;
                    float *dr = dxc + ih * g->w;
                    const float *s = src + oh * g->ow;
                    int64_t off = kw * p->dil_w - p->pad_l;
                    for (int64_t ow = 0; ow < g->ow; ow++) {
                        int64_t iw = ow * p->stride_w + off;
                        if (iw >= 0 && iw < g->w) dr[iw] += s[ow];
                    }
                }
            }
    }
}

/* y [N,Cout,OHW] group gi, images [n0,n0+m) <-> t [Cog, m*OHW] (image-major columns). */
static void to_columns(const float *y, float *t, const geom *g, int64_t n0, int64_t m, int64_t gi) {
#pragma omp parallel for schedule(static) if (m * g->cog * g->ohw > NN_PAR_MIN)
    for (int64_t ic = 0; ic < m * g->cog; ic++) {
        int64_t i = ic / g->cog, co = ic % g->cog;
        memcpy(t + co * m * g->ohw + i * g->ohw, y + ((n0 + i) * g->cout + gi * g->cog + co) * g->ohw,
               (size_t)g->ohw * sizeof(float));
    }
}
static void from_columns(const float *t, float *y, const geom *g, int64_t n0, int64_t m, int64_t gi) {
#pragma omp parallel for schedule(static) if (m * g->cog * g->ohw > NN_PAR_MIN)
    for (int64_t ic = 0; ic < m * g->cog; ic++) {
        int64_t i = ic / g->cog, co = ic % g->cog;
        memcpy(y + ((n0 + i) * g->cout + gi * g->cog + co) * g->ohw, t + co * m * g->ohw + i * g->ohw,
               (size_t)g->ohw * sizeof(float));
    }
}

/* x [N,Cin,H,W], w [Cout,Cin/G,KH,KW], b [Cout] -> y [N,Cout,OH,OW]:
 * per group and chunk of m images, Y [Cog, m*OHW] = W_g [Cog, K] * col [K, m*OHW]. */
static void conv2d_forward(nn_ctx *ctx, nn_node *node) {
    const nn_conv2d_params *p = NN_NODE_P(node, nn_conv2d_params);
    geom g = geometry(node);
    const float *x = node->ins[0]->data, *w = node->ins[1]->data;
    const float *b = node->nin > 2 ? node->ins[2]->data : NULL;
    float *y = node->out->data;
    if (g.g == g.cin && g.g == g.cout) {
        nn__dw_forward(ctx, x, w, b, y, g.n, g.cin, g.h, g.w, g.kh, g.kw, g.oh, g.ow, p);
        return;
    }
    int pw = is_pointwise(p, &g);
    int64_t nb = chunk_images(&g, pw);
    float *col = nn__scratch(ctx, (size_t)((g.k + g.cog) * nb * g.ohw) * sizeof(float));
    float *yt = col + g.k * nb * g.ohw;
    for (int64_t gi = 0; gi < g.g; gi++)
        for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
            int64_t m = g.n - n0 < nb ? g.n - n0 : nb, ld = m * g.ohw;
            /* One image: read the input plane directly (1x1) and write the output in place. */
            const float *src = col;
            if (pw && m == 1)
                src = x + (n0 * g.cin + gi * g.cig) * g.h * g.w;
            else
                im2col(x, col, &g, p, n0, m, gi);
            float *dst = m == 1 ? y + (n0 * g.cout + gi * g.cog) * g.ohw : yt;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)g.cog, (int)ld, (int)g.k, 1.0f,
                        w + gi * g.cog * g.k, (int)g.k, src, (int)ld, 0.0f, dst, (int)ld);
            if (m > 1) from_columns(yt, y, &g, n0, m, gi);
        }
    if (b) {
#pragma omp parallel for schedule(static) if (g.n * g.cout * g.ohw > NN_PAR_MIN)
        for (int64_t nc = 0; nc < g.n * g.cout; nc++) {
            float bv = b[nc % g.cout], *yp = y + nc * g.ohw;
            for (int64_t i = 0; i < g.ohw; i++) yp[i] += bv;
        }
    }
}

/* dy [N,Cout,OH,OW] -> dx [N,Cin,H,W] (+=), dw [Cout,Cin/G,KH,KW] (+=), db [Cout] (+=):
 * per group and chunk, dW_g += dY [Cog, m*OHW] * col^T and dcol = W_g^T * dY, folded back. */
static void conv2d_backward(nn_ctx *ctx, nn_node *node) {
    const nn_conv2d_params *p = NN_NODE_P(node, nn_conv2d_params);
    geom g = geometry(node);
    const float *x = node->ins[0]->data, *w = node->ins[1]->data, *dy = node->out->grad;
    float *dx = nn__grad(ctx, node->ins[0]);
    float *dw = nn__grad(ctx, node->ins[1]);
    float *db = node->nin > 2 ? nn__grad(ctx, node->ins[2]) : NULL;
    if (db) {
#pragma omp parallel for schedule(static) if (g.n * g.cout * g.ohw > NN_PAR_MIN)
        for (int64_t co = 0; co < g.cout; co++) {
            double s = 0.0;
            for (int64_t n = 0; n < g.n; n++) {
                const float *d = dy + (n * g.cout + co) * g.ohw;
                float ps = 0.0f;
                for (int64_t i = 0; i < g.ohw; i++) ps += d[i];
                s += ps;
            }
            db[co] += (float)s;
        }
    }
    if (g.g == g.cin && g.g == g.cout) {
        nn__dw_backward(ctx, x, w, dy, dx, dw, g.n, g.cin, g.h, g.w, g.kh, g.kw, g.oh, g.ow, p);
        return;
    }
    int pw = is_pointwise(p, &g);
    int64_t nb = chunk_images(&g, pw);
    float *col = nn__scratch(ctx, (size_t)((2 * g.k + g.cog) * nb * g.ohw) * sizeof(float));
    float *dyt = col + g.k * nb * g.ohw, *dcol = dyt + g.cog * nb * g.ohw;
    for (int64_t gi = 0; gi < g.g; gi++)
        for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
            int64_t m = g.n - n0 < nb ? g.n - n0 : nb, ld = m * g.ohw;
            const float *dys = dyt;
            if (m == 1)
                dys = dy + (n0 * g.cout + gi * g.cog) * g.ohw;
            else
                to_columns(dy, dyt, &g, n0, m, gi);
            const float *wg = w + gi * g.cog * g.k;
            if (dw) {
                const float *src = col;
                if (pw && m == 1)
                    src = x + (n0 * g.cin + gi * g.cig) * g.h * g.w;
                else
                    im2col(x, col, &g, p, n0, m, gi);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g.cog, (int)g.k, (int)ld, 1.0f, dys, (int)ld,
                            src, (int)ld, 1.0f, dw + gi * g.cog * g.k, (int)g.k);
            }
            if (dx) {
                if (pw && m == 1) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.k, (int)ld, (int)g.cog, 1.0f, wg,
                                (int)g.k, dys, (int)ld, 1.0f, dx + (n0 * g.cin + gi * g.cig) * g.h * g.w, (int)ld);
                    continue;
                }
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)g.k, (int)ld, (int)g.cog, 1.0f, wg, (int)g.k,
                            dys, (int)ld, 0.0f, dcol, (int)ld);
                col2im_add(dcol, dx, &g, p, n0, m, gi);
            }
        }
}

const nn_op_impl nn_op_conv2d_impl = {conv2d_forward, conv2d_backward};

nn_tensor *nn_conv2d(nn_ctx *ctx, nn_tensor *x, nn_tensor *w, nn_tensor *b, const nn_conv2d_params *p) {
    char sx[64], sw[64];
    NN_ASSERT(x->ndim == 4 && w->ndim == 4, "conv2d: x %s and w %s must be rank 4", NN_SHAPE_STR(x, sx),
              NN_SHAPE_STR(w, sw));
    NN_ASSERT(p->stride_h >= 1 && p->stride_w >= 1 && p->dil_h >= 1 && p->dil_w >= 1 && p->groups >= 1,
              "conv2d: stride, dilation and groups must be >= 1");
    int64_t cin = NN_C(x), cout = w->shape[0];
    NN_ASSERT(cin % p->groups == 0 && cout % p->groups == 0 && w->shape[1] == cin / p->groups,
              "conv2d: x %s, w %s do not fit groups=%d", NN_SHAPE_STR(x, sx), NN_SHAPE_STR(w, sw), p->groups);
    NN_ASSERT(!b || (b->numel == cout), "conv2d: bias must have %lld elements", (long long)cout);
    nn_conv2d_params q = *p;
    int64_t kh = w->shape[2], kw = w->shape[3], oh, ow;
    if (q.same) {
        nn__same_pad(NN_H(x), (int32_t)kh, q.stride_h, q.dil_h, &oh, &q.pad_t, &q.pad_b);
        nn__same_pad(NN_W(x), (int32_t)kw, q.stride_w, q.dil_w, &ow, &q.pad_l, &q.pad_r);
        q.same = 0;
    } else {
        NN_ASSERT(q.pad_t >= 0 && q.pad_b >= 0 && q.pad_l >= 0 && q.pad_r >= 0, "conv2d: negative padding");
        oh = (NN_H(x) + q.pad_t + q.pad_b - q.dil_h * (kh - 1) - 1) / q.stride_h + 1;
        ow = (NN_W(x) + q.pad_l + q.pad_r - q.dil_w * (kw - 1) - 1) / q.stride_w + 1;
        NN_ASSERT(NN_H(x) + q.pad_t + q.pad_b >= q.dil_h * (kh - 1) + 1 &&
                      NN_W(x) + q.pad_l + q.pad_r >= q.dil_w * (kw - 1) + 1,
                  "conv2d: kernel %s larger than padded input %s", NN_SHAPE_STR(w, sw), NN_SHAPE_STR(x, sx));
    }
    nn_tensor *ins[3] = {x, w, b};
    nn_node *node = nn__node(ctx, NN_OP_CONV2D, b ? 3 : 2, ins);
    *NN_NODE_P(node, nn_conv2d_params) = q;
    node->out = nn__tensor(ctx, 4, NN_SHAPE(NN_N(x), cout, oh, ow));
    nn__node_run(ctx, node);
    return node->out;
}
