/* conv2d on the GPU. Dense and grouped convolutions are GEMMs on cuBLAS: forward and the input
 * gradient as strided-batched GEMMs over the images of a chunk (a 1x1 stride-1 convolution reads
 * the input in place; others go through im2col), the weight gradient as one GEMM per group and
 * chunk over channel-major copies of the columns and of dy. Depthwise convolutions
 * (groups == Cin == Cout) are direct kernels: one thread per output (forward) or per input
 * element (input gradient, a gather: no atomics), and one block per weight tap (weight gradient). */
#include "nn/cuda/cuda_common.h"

struct conv_geom {
    int64_t n, cin, h, w, cout, kh, kw, oh, ow, g, cig, cog, k, ohw, hw;
    int32_t sh, sw, dh, dw, pt, pl;
};

static conv_geom geometry(const nn_node *node) {
    const nn_conv2d_params *p = NN_NODE_P(node, nn_conv2d_params);
    const nn_tensor *x = node->ins[0], *w = node->ins[1], *y = node->out;
    conv_geom g;
    g.n = NN_N(x); g.cin = NN_C(x); g.h = NN_H(x); g.w = NN_W(x);
    g.cout = w->shape[0]; g.kh = w->shape[2]; g.kw = w->shape[3];
    g.oh = NN_H(y); g.ow = NN_W(y);
    g.g = p->groups; g.cig = g.cin / g.g; g.cog = g.cout / g.g;
    g.k = g.cig * g.kh * g.kw; g.ohw = g.oh * g.ow; g.hw = g.h * g.w;
    g.sh = p->stride_h; g.sw = p->stride_w; g.dh = p->dil_h; g.dw = p->dil_w; g.pt = p->pad_t; g.pl = p->pad_l;
    return g;
}

static int pointwise(const nn_node *node, const conv_geom &g) {
    const nn_conv2d_params *p = NN_NODE_P(node, nn_conv2d_params);
    return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && p->pad_t == 0 && p->pad_b == 0 && p->pad_l == 0 &&
           p->pad_r == 0;
}

/* Images per pass so that `per_image` floats each fit a 1 GiB workspace. */
static int64_t chunk(const conv_geom &g, int64_t per_image) {
    int64_t c = ((int64_t)256 << 20) / (per_image > 0 ? per_image : 1);
    return c < 1 ? 1 : (c > g.n ? g.n : c);
}

/* im2col of images [n0, n0+m), group gi. row_major 0: col[(i*K + r)*OHW + p] (a [K,OHW] matrix per
 * image); 1: col[r*(m*OHW) + i*OHW + p] (one [K, m*OHW] matrix). */
static void im2col(const float *x, float *col, const conv_geom &g, int64_t n0, int64_t m, int64_t gi, int row_major) {
    conv_geom G = g;
    nn__cu_for(m * g.k * g.ohw, [=] __device__(int64_t e) {
        int64_t p = e % G.ohw, r = (e / G.ohw) % G.k, i = e / (G.ohw * G.k);
        int64_t ci = r / (G.kh * G.kw), ki = (r / G.kw) % G.kh, kj = r % G.kw;
        int64_t ih = (p / G.ow) * G.sh - G.pt + ki * G.dh, iw = (p % G.ow) * G.sw - G.pl + kj * G.dw;
        float v = 0.0f;
        if (ih >= 0 && ih < G.h && iw >= 0 && iw < G.w) v = x[((n0 + i) * G.cin + gi * G.cig + ci) * G.hw + ih * G.w + iw];
        col[row_major ? r * (m * G.ohw) + i * G.ohw + p : e] = v;
    });
}

/* dx (+=) from dcol[(i*K + r)*OHW + p] of images [n0, n0+m), group gi: each input element sums the
 * column entries that read it. */
static void col2im_add(const float *dcol, float *dx, const conv_geom &g, int64_t n0, int64_t m, int64_t gi) {
    conv_geom G = g;
    nn__cu_for(m * g.cig * g.hw, [=] __device__(int64_t e) {
        int64_t iw = e % G.w, ih = (e / G.w) % G.h, ci = (e / G.hw) % G.cig, i = e / (G.hw * G.cig);
        float s = 0.0f;
        for (int64_t ki = 0; ki < G.kh; ki++) {
            int64_t t = ih + G.pt - ki * G.dh;
            if (t < 0 || t % G.sh) continue;
            int64_t oh = t / G.sh;
            if (oh >= G.oh) continue;
            for (int64_t kj = 0; kj < G.kw; kj++) {
                int64_t u = iw + G.pl - kj * G.dw;
                if (u < 0 || u % G.sw) continue;
                int64_t ow = u / G.sw;
                if (ow >= G.ow) continue;
                s += dcol[(i * G.k + (ci * G.kh + ki) * G.kw + kj) * G.ohw + oh * G.ow + ow];
            }
        }
        dx[((n0 + i) * G.cin + gi * G.cig + ci) * G.hw + ih * G.w + iw] += s;
    });
}

/* t[c*(m*plane) + i*plane + p] = src[((n0+i)*ctot + c0 + c)*plane + p]: channels [c0, c0+nc) of images
 * [n0, n0+m) as one channel-major matrix [nc, m*plane]. */
static void to_channel_major(const float *src, float *t, int64_t ctot, int64_t c0, int64_t nc, int64_t plane, int64_t n0,
                             int64_t m) {
    nn__cu_for(nc * m * plane, [=] __device__(int64_t e) {
        int64_t p = e % plane, i = (e / plane) % m, c = e / (plane * m);
        t[e] = src[((n0 + i) * ctot + c0 + c) * plane + p];
    });
}

/* ---- depthwise -------------------------------------------------------------------------------- */
static void dw_forward(const float *x, const float *w, const float *b, float *y, const conv_geom &g) {
    conv_geom G = g;
    nn__cu_for(g.n * g.cout * g.ohw, [=] __device__(int64_t e) {
        int64_t p = e % G.ohw, nc = e / G.ohw, c = nc % G.cin;
        int64_t oh = p / G.ow, ow = p % G.ow;
        const float *xp = x + nc * G.hw, *wk = w + c * G.kh * G.kw;
        float s = b ? b[c] : 0.0f;
        for (int64_t ki = 0; ki < G.kh; ki++) {
            int64_t ih = oh * G.sh - G.pt + ki * G.dh;
            if (ih < 0 || ih >= G.h) continue;
            for (int64_t kj = 0; kj < G.kw; kj++) {
                int64_t iw = ow * G.sw - G.pl + kj * G.dw;
                if (iw >= 0 && iw < G.w) s += xp[ih * G.w + iw] * wk[ki * G.kw + kj];
            }
        }
        y[e] = s;
    });
}

static void dw_backward(nn_ctx *ctx, const float *x, const float *w, const float *dy, float *dx, float *dw,
                        const conv_geom &g) {
    conv_geom G = g;
    if (dx)
        nn__cu_for(g.n * g.cin * g.hw, [=] __device__(int64_t e) {
            int64_t iw = e % G.w, ih = (e / G.w) % G.h, nc = e / G.hw, c = nc % G.cin;
            const float *gp = dy + nc * G.ohw, *wk = w + c * G.kh * G.kw;
            float s = 0.0f;
            for (int64_t ki = 0; ki < G.kh; ki++) {
                int64_t t = ih + G.pt - ki * G.dh;
                if (t < 0 || t % G.sh) continue;
                int64_t oh = t / G.sh;
                if (oh >= G.oh) continue;
                for (int64_t kj = 0; kj < G.kw; kj++) {
                    int64_t u = iw + G.pl - kj * G.dw;
                    if (u < 0 || u % G.sw) continue;
                    int64_t ow = u / G.sw;
                    if (ow < G.ow) s += gp[oh * G.ow + ow] * wk[ki * G.kw + kj];
                }
            }
            dx[e] += s;
        });
    if (dw) {
        int64_t taps = g.kh * g.kw, rows = g.cin * taps;
        double *tmp = (double *)nn__dalloc(ctx, (size_t)rows * sizeof(double));
        nn__cu_rowsum(rows, g.n * g.ohw, [=] __device__(int64_t r, int64_t j) {
            int64_t c = r / taps, ki = (r % taps) / G.kw, kj = r % G.kw;
            int64_t n = j / G.ohw, p = j % G.ohw;
            int64_t ih = (p / G.ow) * G.sh - G.pt + ki * G.dh, iw = (p % G.ow) * G.sw - G.pl + kj * G.dw;
            if (ih < 0 || ih >= G.h || iw < 0 || iw >= G.w) return 0.0f;
            int64_t nc = n * G.cin + c;
            return dy[nc * G.ohw + p] * x[nc * G.hw + ih * G.w + iw];
        }, tmp);
        nn__cu_for(rows, [=] __device__(int64_t r) { dw[r] += (float)tmp[r]; });
    }
}

/* ---- the op ------------------------------------------------------------------------------------ */
static void conv2d_fwd(nn_ctx *ctx, nn_node *node) {
    conv_geom g = geometry(node);
    const float *x = node->ins[0]->data, *w = node->ins[1]->data;
    const float *b = node->nin > 2 ? node->ins[2]->data : NULL;
    float *y = node->out->data;
    if (g.g == g.cin && g.g == g.cout) {
        dw_forward(x, w, b, y, g);
        return;
    }
    int pw = pointwise(node, g);
    int64_t nb = pw ? g.n : chunk(g, g.k * g.ohw);
    float *col = pw ? NULL : (float *)nn__dscratch(ctx, (size_t)(nb * g.k * g.ohw) * sizeof(float));
    for (int64_t gi = 0; gi < g.g; gi++)
        for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
            int64_t m = g.n - n0 < nb ? g.n - n0 : nb;
            const float *src;
            int64_t sb;
            if (pw) {
                src = x + (n0 * g.cin + gi * g.cig) * g.hw;
                sb = g.cin * g.hw;
            } else {
                im2col(x, col, g, n0, m, gi, 0);
                src = col;
                sb = g.k * g.ohw;
            }
            nn__cu_gemm_batched(0, 0, g.cog, g.ohw, g.k, 1.0f, w + gi * g.cog * g.k, g.k, 0, src, g.ohw, sb, 0.0f,
                                y + (n0 * g.cout + gi * g.cog) * g.ohw, g.ohw, g.cout * g.ohw, m);
        }
    if (b) {
        int64_t ohw = g.ohw, cout = g.cout;
        nn__cu_for(g.n * g.cout * g.ohw, [=] __device__(int64_t e) { y[e] += b[(e / ohw) % cout]; });
    }
}

static void conv2d_bwd(nn_ctx *ctx, nn_node *node) {
    conv_geom g = geometry(node);
    const float *x = node->ins[0]->data, *w = node->ins[1]->data, *dy = node->out->grad;
    float *dx = nn__grad(ctx, node->ins[0]);
    float *dw = nn__grad(ctx, node->ins[1]);
    float *db = node->nin > 2 ? nn__grad(ctx, node->ins[2]) : NULL;
    if (db) {
        double *tmp = (double *)nn__dalloc(ctx, (size_t)g.cout * sizeof(double));
        int64_t ohw = g.ohw, cout = g.cout;
        nn__cu_rowsum(g.cout, g.n * g.ohw, [=] __device__(int64_t co, int64_t j) {
            return dy[((j / ohw) * cout + co) * ohw + j % ohw];
        }, tmp);
        nn__cu_for(g.cout, [=] __device__(int64_t co) { db[co] += (float)tmp[co]; });
    }
    if (g.g == g.cin && g.g == g.cout) {
        dw_backward(ctx, x, w, dy, dx, dw, g);
        return;
    }
    int pw = pointwise(node, g);
    /* Workspace per image: dy channel-major [cog, ohw], columns channel-major [K, ohw] and the
     * column gradient [K, ohw]. */
    int64_t nb = chunk(g, g.cog * g.ohw + 2 * g.k * g.ohw);
    float *dyt = (float *)nn__dscratch(ctx, (size_t)(nb * (g.cog * g.ohw + 2 * g.k * g.ohw)) * sizeof(float));
    float *colt = dyt + nb * g.cog * g.ohw, *dcol = colt + nb * g.k * g.ohw;
    for (int64_t gi = 0; gi < g.g; gi++)
        for (int64_t n0 = 0; n0 < g.n; n0 += nb) {
            int64_t m = g.n - n0 < nb ? g.n - n0 : nb;
            const float *wg = w + gi * g.cog * g.k;
            const float *dyg = dy + (n0 * g.cout + gi * g.cog) * g.ohw;
            if (dw) {
                to_channel_major(dy, dyt, g.cout, gi * g.cog, g.cog, g.ohw, n0, m);
                if (pw)
                    to_channel_major(x, colt, g.cin, gi * g.cig, g.cig, g.hw, n0, m);
                else
                    im2col(x, colt, g, n0, m, gi, 1);
                /* dW_g [cog, K] += dyt [cog, m*OHW] * colt^T */
                nn__cu_gemm(0, 1, g.cog, g.k, m * g.ohw, 1.0f, dyt, m * g.ohw, colt, m * g.ohw, 1.0f,
                            dw + gi * g.cog * g.k, g.k);
            }
            if (dx) {
                if (pw) {
                    /* dX_i [cig, HW] += W_g^T [K=cig, cog] * dY_i [cog, OHW] */
                    nn__cu_gemm_batched(1, 0, g.k, g.ohw, g.cog, 1.0f, wg, g.k, 0, dyg, g.ohw, g.cout * g.ohw, 1.0f,
                                        dx + (n0 * g.cin + gi * g.cig) * g.hw, g.hw, g.cin * g.hw, m);
                } else {
                    nn__cu_gemm_batched(1, 0, g.k, g.ohw, g.cog, 1.0f, wg, g.k, 0, dyg, g.ohw, g.cout * g.ohw, 0.0f, dcol,
                                        g.ohw, g.k * g.ohw, m);
                    col2im_add(dcol, dx, g, n0, m, gi);
                }
            }
        }
}

void nn__cu_register_conv(nn_cu_op *ops) { ops[NN_OP_CONV2D] = nn_cu_op{conv2d_fwd, conv2d_bwd}; }
