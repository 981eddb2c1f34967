/* conv2d: any kernel, stride, dilation, groups, explicit or TF SAME padding.
 * Dense and grouped convolutions go through OpenBLAS sgemm on im2col columns, a chunk of images
 * per GEMM and one chunk per thread (a 1x1 stride-1 convolution runs on the tensors in place,
 * image by image); depthwise (groups == Cin == Cout) has its own vectorised direct
 * kernels (nn/ops/conv2d_dw.c) because a GEMM with one input channel per group is all overhead,
 * and dense stride-1 convolutions with enough channels take the direct kernels of
 * nn/ops/conv2d_direct.c. The weight gradient of dense convolutions other than 1x1 stride 1 has
 * its own direct kernel too (nn/ops/conv2d_wgrad.c: no im2col columns). The fused inference op
 * (nn/ops/conv2d_fused.c) runs the same forward code with a ReLU on the input and an epilogue on
 * the output (nn/ops/conv2d_epi.h). */
#include <omp.h>

#include "nn/nn_impl.h"
#include "nn/ops/conv2d_direct.h"
#include "nn/ops/conv2d_wgrad.h"
#include "nn/ops/conv2d_dw.h"
#include "nn/ops/conv2d_epi.h"

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

/* Work plan of a dense or grouped convolution. Images go in chunks of `nb` (one GEMM per chunk
 * and group, in fixed column blocks: nn__sgemm); chunks run in parallel, one per thread, each
 * thread on its own workspace: an image's columns stay in the thread's cache between im2col and
 * the GEMM. With too few chunks to share out, chunks run one after the other and the threads
 * share each chunk's copies and GEMM blocks instead. Either way every value is computed the same
 * way, so results do not depend on the thread count. The weight gradient sums over chunks in `slots` partial sums: slot s takes chunks
 * s, s + slots, ... in order, and the slots are added in order at the end; the slot count depends
 * on shapes only. */
typedef struct plan {
    int64_t nb, nchunks, slots;
    int par;            /* chunks (backward: slots) in parallel, single-threaded BLAS */
    int64_t per_thread; /* workspace floats of one thread */
} plan;

#define CONV_CHUNK_BYTES ((int64_t)16 << 20)
#define CONV_MAX_SLOTS 8

static plan make_plan(const geom *g, int pointwise, int backward) {
    plan pl;
    /* A 1x1 stride-1 convolution reads and writes the tensors in place, one image per chunk: its
     * "columns" are the input planes themselves. Other kernels batch images until the GEMM is
     * about 256 columns wide (small late-stage feature maps), within a 16 MiB chunk workspace. */
    int64_t per_image = ((backward ? 2 : 1) * g->k + g->cog) * g->ohw;
    if (pointwise) {
        pl.nb = 1;
        per_image = 0;
    } else {
        int64_t want = (256 + g->ohw - 1) / g->ohw;
        int64_t cap = CONV_CHUNK_BYTES / (per_image * (int64_t)sizeof(float));
        pl.nb = want < cap ? want : cap;
        if (pl.nb < 1) pl.nb = 1;
        if (pl.nb > g->n) pl.nb = g->n;
    }
    pl.nchunks = (g->n + pl.nb - 1) / pl.nb;
    pl.per_thread = per_image * pl.nb;
    /* Partial weight-gradient sums: at most 8, and at most 64 MiB of them. */
    int64_t wnum = g->cout * g->k;
    pl.slots = pl.nchunks < CONV_MAX_SLOTS ? pl.nchunks : CONV_MAX_SLOTS;
    int64_t smax = ((int64_t)64 << 20) / (wnum * (int64_t)sizeof(float));
    if (pl.slots > smax) pl.slots = smax;
    if (pl.slots < 1) pl.slots = 1;
    int threads = omp_get_max_threads();
    int64_t units = backward ? pl.slots : pl.nchunks;
    int64_t work = g->n * g->cout * g->ohw * g->k;
    pl.par = threads > 1 && work > NN_PAR_MIN && pl.per_thread * (int64_t)sizeof(float) <= CONV_CHUNK_BYTES &&
             units >= threads && (units % threads == 0 || units >= 4 * threads);
    return pl;
}

/* Images in chunk c: nb, or what is left for the last chunk. */
static int64_t chunk_images(const geom *g, const plan *pl, int64_t c) {
    int64_t n0 = c * pl->nb;
    return g->n - n0 < pl->nb ? g->n - n0 : pl->nb;
}

/* Output columns [*lo, *hi) whose input column ow*s + off lies in [0, w). */
static void col_range(int64_t off, int64_t s, int64_t w, int64_t ow, int64_t *lo, int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = (w - 1 - off) < 0 ? 0 : (w - 1 - off) / s + 1;
    if (b > ow) b = ow;
    *lo = a;
    *hi = b > a ? b : a;
}

/* x [N,Cin,H,W], images [n0, n0+m), group gi -> col [Cig*KH*KW, m*OH*OW] (row stride m*OH*OW,
 * image i in columns [i*OHW, (i+1)*OHW)); zeros where the window leaves the image. Each row is a
 * copy of the valid input span between zero margins (no per-element bounds tests); relu: of
 * max(x, 0) (the fused inference op), so no rectified copy of the whole input is needed. */
static void im2col(const float *x, float *col, const geom *g, const nn_conv2d_params *p, int64_t n0, int64_t m,
                   int64_t gi, int par, int relu) {
    int64_t ld = m * g->ohw;
#pragma omp parallel for schedule(static) if (par && m * g->k * g->ohw > NN_PAR_MIN)
    for (int64_t ir = 0; ir < m * g->k; ir++) {
        int64_t i = ir / g->k, r = ir % g->k;
        int64_t ci = r / (g->kh * g->kw), kh = (r / g->kw) % g->kh, kw = r % g->kw;
        const float *xc = x + ((n0 + i) * g->cin + gi * g->cig + ci) * g->h * g->w;
        float *dst = col + r * ld + i * g->ohw;
        int64_t off = kw * p->dil_w - p->pad_l, lo, hi, sw = p->stride_w;
        col_range(off, sw, g->w, g->ow, &lo, &hi);
        for (int64_t oh = 0; oh < g->oh; oh++) {
            int64_t ih = oh * p->stride_h - p->pad_t + kh * p->dil_h;
            float *d = dst + oh * g->ow;
            if (ih < 0 || ih >= g->h || lo >= hi) {
                memset(d, 0, (size_t)g->ow * sizeof(float));
                continue;
            }
            const float *xr = xc + ih * g->w;
            for (int64_t q = 0; q < lo; q++) d[q] = 0.0f;
            if (relu)
                for (int64_t q = lo; q < hi; q++) d[q] = xr[q * sw + off] > 0.0f ? xr[q * sw + off] : 0.0f;
            else if (sw == 1)
                memcpy(d + lo, xr + lo + off, (size_t)(hi - lo) * sizeof(float));
            else
                for (int64_t q = lo; q < hi; q++) d[q] = xr[q * sw + off];
            for (int64_t q = hi; q < g->ow; q++) d[q] = 0.0f;
        }
    }
}

/* col [Cig*KH*KW, m*OH*OW] -> dx [N,Cin,H,W] (+=) for images [n0, n0+m), group gi. Each input
 * plane adds its KH*KW rows in a fixed order. */
static void col2im_add(const float *col, float *dx, const geom *g, const nn_conv2d_params *p, int64_t n0, int64_t m,
                       int64_t gi, int par) {
    int64_t ld = m * g->ohw;
#pragma omp parallel for schedule(static) if (par && m * g->k * g->ohw > NN_PAR_MIN)
    for (int64_t ic = 0; ic < m * g->cig; ic++) {
        int64_t i = ic / g->cig, ci = ic % g->cig;
        float *dxc = dx + ((n0 + i) * g->cin + gi * g->cig + ci) * g->h * g->w;
        for (int64_t kh = 0; kh < g->kh; kh++)
            for (int64_t kw = 0; kw < g->kw; kw++) {
                const float *src = col + ((ci * g->kh + kh) * g->kw + kw) * ld + i * g->ohw;
                int64_t off = kw * p->dil_w - p->pad_l, lo, hi, sw = p->stride_w;
                col_range(off, sw, g->w, g->ow, &lo, &hi);
                for (int64_t oh = 0; oh < g->oh; oh++) {
                    int64_t ih = oh * p->stride_h - p->pad_t + kh * p->dil_h;
                    if (ih < 0 || ih >= g->h) continue;
                    float *dr = dxc + ih * g->w;
                    const float *s = src + oh * g->ow;
                    if (sw == 1) {
#pragma omp simd
                        for (int64_t q = lo; q < hi; q++) dr[q + off] += s[q];
                    } else {
                        for (int64_t q = lo; q < hi; q++) dr[q * sw + off] += s[q];
                    }
                }
            }
    }
}

/* y [N,Cout,OHW] group gi, images [n0,n0+m) <-> t [Cog, m*OHW] (image-major columns). */
static void to_columns(const float *y, float *t, const geom *g, int64_t n0, int64_t m, int64_t gi, int par) {
#pragma omp parallel for schedule(static) if (par && m * g->cog * g->ohw > NN_PAR_MIN)
    for (int64_t ic = 0; ic < m * g->cog; ic++) {
        int64_t i = ic / g->cog, co = ic % g->cog;
        memcpy(t + co * m * g->ohw + i * g->ohw, y + ((n0 + i) * g->cout + gi * g->cog + co) * g->ohw,
               (size_t)g->ohw * sizeof(float));
    }
}
static void from_columns(const float *t, float *y, const geom *g, int64_t n0, int64_t m, int64_t gi, int par) {
#pragma omp parallel for schedule(static) if (par && m * g->cog * g->ohw > NN_PAR_MIN)
    for (int64_t ic = 0; ic < m * g->cog; ic++) {
        int64_t i = ic / g->cog, co = ic % g->cog;
        memcpy(y + ((n0 + i) * g->cout + gi * g->cog + co) * g->ohw, t + co * m * g->ohw + i * g->ohw,
               (size_t)g->ohw * sizeof(float));
    }
}

/* One chunk of the forward pass: images [n0, n0+m), every group, into y. ws: the workspace
 * (col [K, m*OHW] then yt [Cog, m*OHW]); par: the copies may start a thread team (chunks are not
 * run in parallel). */
static void forward_chunk(const float *x, const float *w, float *y, const geom *g, const nn_conv2d_params *p, int pw,
                          int64_t n0, int64_t m, float *ws, int par, int relu) {
    int64_t ld = m * g->ohw;
    float *col = ws, *yt = ws + g->k * ld;
    for (int64_t gi = 0; gi < g->g; gi++) {
        const float *src = col;
        if (pw)
            src = x + (n0 * g->cin + gi * g->cig) * g->h * g->w; /* one image, read in place */
        else
            im2col(x, col, g, p, n0, m, gi, par, relu);
        float *dst = m == 1 ? y + (n0 * g->cout + gi * g->cog) * g->ohw : yt;
        nn__sgemm(par, 0, 0, g->cog, ld, g->k, w + gi * g->cog * g->k, g->k, src, ld, 0.0f, dst, ld);
        if (m > 1) from_columns(yt, y, g, n0, m, gi, par);
    }
}

/* x [N,Cin,H,W], w [Cout,Cin/G,KH,KW], b [Cout] -> y [N,Cout,OH,OW]:
 * per group and chunk of m images, Y [Cog, m*OHW] = W_g [Cog, K] * col [K, m*OHW].
 * The fused inference op (conv2d_fused.c) comes through here too, with relu_in (convolve
 * max(x, 0)) and an epilogue; plain convolutions pass 0 and NULL. */
void nn__conv2d_forward_ex(nn_ctx *ctx, nn_node *node, int relu_in, const nn_conv_epi *epi) {
    const nn_conv2d_params *p = NN_NODE_P(node, nn_conv2d_params);
    geom g = geometry(node);
    const float *x = node->ins[0]->data, *w = node->ins[1]->data;
    const float *b = node->nin > 2 ? node->ins[2]->data : NULL;
    float *y = node->out->data;
    if (g.g == g.cin && g.g == g.cout) {
        nn__dw_forward_fused(ctx, x, w, b, y, g.n, g.cin, g.h, g.w, g.kh, g.kw, g.oh, g.ow, p, relu_in, epi);
        return;
    }
    if (!b && nn__direct_forward_ok(p, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.oh, g.ow)) {
        nn__direct_forward(ctx, x, w, y, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.oh, g.ow, p, relu_in, epi);
        return;
    }
    if (nn__direct_forward_ok(p, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.oh, g.ow)) {
        nn__direct_forward(ctx, x, w, y, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.oh, g.ow, p, relu_in, NULL);
    } else {
        int pw = is_pointwise(p, &g);
        if (relu_in && pw) {
            /* The GEMM reads x in place: rectify a copy (im2col rectifies as it copies). */
            int64_t nx = node->ins[0]->numel;
            float *r = nn__alloc(ctx, (size_t)nx * sizeof(float));
#pragma omp parallel for simd schedule(static) if (nx > NN_PAR_MIN)
            for (int64_t i = 0; i < nx; i++) r[i] = x[i] > 0.0f ? x[i] : 0.0f;
            x = r;
        }
        int relu_cols = relu_in && !pw;
        plan pl = make_plan(&g, pw, 0);
        int teams = pl.par ? omp_get_max_threads() : 1;
        float *ws = nn__scratch(ctx, (size_t)(pl.per_thread * teams + 1) * sizeof(float));
        /* Not `parallel for if (pl.par)`: a region with a false if clause is still a region (a
         * team of one), and the copies and GEMM blocks inside would then start nested teams,
         * whose threads libgomp creates and ends at every call. */
        if (pl.par) {
#pragma omp parallel for schedule(static)
            for (int64_t c = 0; c < pl.nchunks; c++)
                forward_chunk(x, w, y, &g, p, pw, c * pl.nb, chunk_images(&g, &pl, c),
                              ws + pl.per_thread * omp_get_thread_num(), 0, relu_cols);
        } else {
            for (int64_t c = 0; c < pl.nchunks; c++)
                forward_chunk(x, w, y, &g, p, pw, c * pl.nb, chunk_images(&g, &pl, c), ws, 1, relu_cols);
        }
    }
    if (b || epi) {
#pragma omp parallel for schedule(static) if (g.n * g.cout * g.ohw > NN_PAR_MIN)
        for (int64_t nc = 0; nc < g.n * g.cout; nc++) {
            float *yp = y + nc * g.ohw;
            if (b) {
                float bv = b[nc % g.cout];
                for (int64_t i = 0; i < g.ohw; i++) yp[i] += bv;
            }
            if (epi) nn__conv_epi_apply(yp, g.ohw, epi, nc % g.cout);
        }
    }
}

static void conv2d_forward(nn_ctx *ctx, nn_node *node) { nn__conv2d_forward_ex(ctx, node, 0, NULL); }

/* One chunk of the backward pass, images [n0, n0+m), every group: dws [Cout, K] (the chunk's
 * slot; = when first, else +=) and dx (= when dx_fresh, else +=). ws: the workspace (col,
 * dcol [K, m*OHW], dyt [Cog, m*OHW]); par as forward_chunk. */
static void backward_chunk(const float *x, const float *w, const float *dy, float *dx, int dx_fresh, float *dws,
                           int first, const geom *g, const nn_conv2d_params *p, int pw, int64_t n0, int64_t m,
                           float *ws, int par) {
    int64_t ld = m * g->ohw;
    float *col = ws, *dcol = ws + g->k * ld, *dyt = dcol + g->k * ld;
    for (int64_t gi = 0; gi < g->g; gi++) {
        const float *dys = dyt;
        if (m == 1)
            dys = dy + (n0 * g->cout + gi * g->cog) * g->ohw;
        else
            to_columns(dy, dyt, g, n0, m, gi, par);
        const float *wg = w + gi * g->cog * g->k;
        const float *xs = pw ? x + (n0 * g->cin + gi * g->cig) * g->h * g->w : col;
        if (dws) {
            if (!pw) im2col(x, col, g, p, n0, m, gi, par, 0);
            nn__sgemm(par, 0, 1, g->cog, g->k, ld, dys, ld, xs, ld, first ? 0.0f : 1.0f, dws + gi * g->cog * g->k,
                      g->k);
        }
        if (!dx) continue;
        if (pw) {
            nn__sgemm(par, 1, 0, g->k, ld, g->cog, wg, g->k, dys, ld, dx_fresh ? 0.0f : 1.0f,
                      dx + (n0 * g->cin + gi * g->cig) * g->h * g->w, ld);
            continue;
        }
        nn__sgemm(par, 1, 0, g->k, ld, g->cog, wg, g->k, dys, ld, 0.0f, dcol, ld);
        if (dx_fresh)
            for (int64_t i = 0; i < m; i++)
                memset(dx + ((n0 + i) * g->cin + gi * g->cig) * g->h * g->w, 0,
                       (size_t)(g->cig * g->h * g->w) * sizeof(float));
        col2im_add(dcol, dx, g, p, n0, m, gi, par);
    }
}

/* Slot s's chunks s, s + slots, ... in order; the first one writes the slot's partial sum. */
static void backward_slot(const float *x, const float *w, const float *dy, float *dx, int dx_fresh, float *dw,
                          float *parts, int64_t nparts, const geom *g, const nn_conv2d_params *p, int pw,
                          const plan *pl, int64_t s, float *ws, int par) {
    float *dws = dw ? (nparts ? parts + s * g->cout * g->k : dw) : NULL;
    for (int64_t c = s; c < pl->nchunks; c += pl->slots)
        backward_chunk(x, w, dy, dx, dx_fresh, dws, nparts && c == s, g, p, pw, c * pl->nb, chunk_images(g, pl, c), ws,
                       par);
}

/* dy [N,Cout,OH,OW] -> dx [N,Cin,H,W] (+=, or = into a fresh gradient), dw [Cout,Cin/G,KH,KW] (+=),
 * db [Cout] (+=): per group and chunk, dW_g += dY [Cog, m*OHW] * col^T and dcol = W_g^T * dY,
 * folded back. */
static void conv2d_backward(nn_ctx *ctx, nn_node *node) {
    const nn_conv2d_params *p = NN_NODE_P(node, nn_conv2d_params);
    geom g = geometry(node);
    const float *x = node->ins[0]->data, *w = node->ins[1]->data, *dy = node->out->grad;
    float *dw = nn__grad(ctx, node->ins[1]);
    float *db = node->nin > 2 ? nn__grad(ctx, node->ins[2]) : NULL;
    int dx_fresh;
    float *dx = nn__grad_first(ctx, node->ins[0], &dx_fresh);
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
        nn__dw_backward(ctx, x, w, dy, dx, dx_fresh, dw, g.n, g.cin, g.h, g.w, g.kh, g.kw, g.oh, g.ow, p);
        return;
    }
    if (dx && nn__direct_ok(p, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.oh, g.ow)) {
        nn__direct_backward_dx(ctx, dy, w, dx, dx_fresh, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.oh, g.ow, p);
        dx = NULL; /* done */
    }
    int pw = is_pointwise(p, &g);
    if (dw && !pw && nn__wgrad_ok(p, g.cin)) {
        nn__wgrad_direct(ctx, x, dy, dw, g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw, g.oh, g.ow, p);
        dw = NULL;
    }
    if (!dx && !dw) return;
    plan pl = make_plan(&g, pw, 1);
    int teams = pl.par ? omp_get_max_threads() : 1;
    int64_t wnum = g.cout * g.k;
    /* One slot accumulates straight into dw; several sum into partials added in order below. */
    int64_t nparts = dw && pl.slots > 1 ? pl.slots : 0;
    float *parts = nn__scratch(ctx, (size_t)(nparts * wnum + pl.per_thread * teams + 1) * sizeof(float));
    float *ws = parts + nparts * wnum;
    /* As in the forward pass: no region at all when the slots run one after the other. */
    if (pl.par) {
#pragma omp parallel for schedule(static)
        for (int64_t s = 0; s < pl.slots; s++)
            backward_slot(x, w, dy, dx, dx_fresh, dw, parts, nparts, &g, p, pw, &pl, s,
                          ws + pl.per_thread * omp_get_thread_num(), 0);
    } else {
        for (int64_t s = 0; s < pl.slots; s++)
            backward_slot(x, w, dy, dx, dx_fresh, dw, parts, nparts, &g, p, pw, &pl, s, ws, 1);
    }
    if (nparts) {
#pragma omp parallel for schedule(static) if (wnum * nparts > NN_PAR_MIN)
        for (int64_t j = 0; j < wnum; j++) {
            float s = parts[j];
            for (int64_t q = 1; q < nparts; q++) s += parts[q * wnum + j];
            dw[j] += s;
        }
    }
}

const nn_op_impl nn_op_conv2d_impl = {conv2d_forward, conv2d_backward};

nn_conv2d_params nn__conv2d_resolve(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                                    const nn_conv2d_params *p) {
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
        NN_ASSERT(NN_H(x) + q.pad_t + q.pad_b >= q.dil_h * (kh - 1) + 1 &&
                      NN_W(x) + q.pad_l + q.pad_r >= q.dil_w * (kw - 1) + 1,
                  "conv2d: kernel %s larger than padded input %s", NN_SHAPE_STR(w, sw), NN_SHAPE_STR(x, sx));
    }
    return q;
}

void nn__conv2d_out_hw(const nn_tensor *x, const nn_tensor *w, const nn_conv2d_params *q, int64_t *oh, int64_t *ow) {
    *oh = (NN_H(x) + q->pad_t + q->pad_b - q->dil_h * (w->shape[2] - 1) - 1) / q->stride_h + 1;
    *ow = (NN_W(x) + q->pad_l + q->pad_r - q->dil_w * (w->shape[3] - 1) - 1) / q->stride_w + 1;
}

nn_tensor *nn_conv2d(nn_ctx *ctx, nn_tensor *x, nn_tensor *w, nn_tensor *b, const nn_conv2d_params *p) {
    nn_conv2d_params q = nn__conv2d_resolve(x, w, b, p);
    int64_t oh, ow;
    nn__conv2d_out_hw(x, w, &q, &oh, &ow);
    nn_tensor *ins[3] = {x, w, b};
    nn_node *node = nn__node(ctx, NN_OP_CONV2D, b ? 3 : 2, ins);
    *NN_NODE_P(node, nn_conv2d_params) = q;
    node->out = nn__tensor(ctx, 4, NN_SHAPE(NN_N(x), w->shape[0], oh, ow));
    nn__node_run(ctx, node);
    return node->out;
}
