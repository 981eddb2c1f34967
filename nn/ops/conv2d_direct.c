/* Direct stride-1 convolution over zero-padded planes (the kernels are in conv2d_flat.c). Per
 * image: pad the input planes into a workspace, run the flat correlation into an output buffer
 * with the padded row length, copy the valid columns out. A 1x1 convolution without padding reads
 * and writes the tensors in place. With at least as many images as threads, each thread takes
 * whole images with its own workspace; otherwise the threads split each image's positions, or,
 * when the positions are too few to share out evenly (the 7x7 and 14x14 maps of a network's
 * last stages at batch 1), its output channels. Either way each output value is the same sum in
 * the same order (see conv2d_direct.h). */
#include "nn/ops/conv2d_direct.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops/conv2d_dw.h"

#define DIRECT_MAX_IMAGE_BYTES ((int64_t)32 << 20)

/* One direction of the direct convolution on a batch: in [N, ci, ih, iw] planes padded into
 * [ph, pw] with the input at (top, left), taps offsets off, weights w for co output
 * channels, out [N, co, oh, ow] with oh = ph - (kh-1)*dh, ow = pw - (kw-1)*dw. */
typedef struct flat_job {
    const float *in;
    int64_t ci, ih, iw, ph, pw, top, left;
    const int64_t *off;
    int64_t taps;
    nn_flat_w w;
    int64_t co, oh, ow;
    float *out;
    int accumulate; /* add into out instead of storing */
    int inplace;    /* 1x1, unpadded: in and out are the flat planes themselves */
    int relu_in;    /* convolve max(in, 0) */
    const nn_conv_epi *epi;
} flat_job;

/* Workspace floats of one image: padded input planes and the padded-width output. */
static int64_t image_floats(const flat_job *j) {
    if (j->inplace) return 0;
    return j->ci * j->ph * j->pw + (j->pw == j->ow ? 0 : j->co * j->oh * j->pw) + 16;
}

/* Positions [0, valid) of the flat output: the last row stops at its last valid column. */
static int64_t flat_valid(const flat_job *j) { return (j->oh - 1) * j->pw + j->ow; }

static void pad_planes(const flat_job *j, int64_t b, float *pad, int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++)
        nn__dw_pad_plane(j->in + (b * j->ci + c) * j->ih * j->iw, j->ih, j->iw, 1, 1, pad + c * j->ph * j->pw, j->ph,
                         j->pw, j->top, j->left, j->relu_in);
}

/* tmp [co, oh*pw] -> out image b [co, oh, ow] (= or +=), channels [c0, c1). */
static void copy_out(const flat_job *j, int64_t b, const float *tmp, int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++)
        for (int64_t r = 0; r < j->oh; r++) {
            float *o = j->out + ((b * j->co + c) * j->oh + r) * j->ow;
            const float *s = tmp + c * j->oh * j->pw + r * j->pw;
            if (j->accumulate)
                nn__vec_add(o, s, j->ow);
            else
                memcpy(o, s, (size_t)j->ow * sizeof(float));
        }
}

/* Image b on one thread with workspace ws. */
static void image_serial(const flat_job *j, int64_t b, float *ws) {
    int64_t hw = j->oh * j->ow;
    if (j->inplace) {
        nn__flat_corr(j->in + b * j->ci * hw, hw, j->ci, j->off, j->taps, &j->w, j->co, 0, j->co,
                      j->out + b * j->co * hw, hw, 0, hw, j->accumulate, j->relu_in, j->epi);
        return;
    }
    float *pad = ws, *tmp = ws + j->ci * j->ph * j->pw;
    pad_planes(j, b, pad, 0, j->ci);
    int direct = j->pw == j->ow; /* no discarded columns: write the output in place */
    float *dst = direct ? j->out + b * j->co * hw : tmp;
    nn__flat_corr(pad, j->ph * j->pw, j->ci, j->off, j->taps, &j->w, j->co, 0, j->co, dst, j->oh * j->pw, 0,
                  flat_valid(j), direct && j->accumulate, 0, j->epi);
    if (!direct) copy_out(j, b, tmp, 0, j->co);
}

/* Work of `len` positions for one channel tile, in half-vectors: each 48-position block (one
 * packed input block, one pass over the weights) costs its vectors of 16 and about half a vector
 * more. */
static int64_t span_cost(int64_t len) { return len <= 0 ? 0 : 2 * ((len + 15) / 16) + (len + 47) / 48; }

/* How a team shares an image's work: by positions, `per` each (a multiple of 16), or, when that
 * leaves the busiest thread more to do, by output channel tiles (*per = 0). 49 positions (a 7x7
 * map) make a full block and a one-position one: by positions the threads would get 32 and 17,
 * two vectors each, but each pass over all the weights for two vectors instead of three. */
static void team_split(int64_t valid, int64_t co, int threads, int64_t *per) {
    int64_t cot = nn__flat_cot(), ct = (co + cot - 1) / cot;
    int64_t pp = ((valid + threads - 1) / threads + 15) / 16 * 16;
    int64_t by_pos = span_cost(pp) * ct, by_ch = (ct + threads - 1) / threads * span_cost(valid);
    *per = by_ch < by_pos ? 0 : pp;
}

/* Image b with the team splitting input channels (padding), output channels (the copy) and
 * positions or output channels (the correlation: team_split). */
static void image_parallel(const flat_job *j, int64_t b, float *ws, int threads) {
    int64_t hw = j->oh * j->ow, valid = j->inplace ? hw : flat_valid(j);
    float *pad = ws, *tmp = ws + j->ci * j->ph * j->pw;
    int direct = j->inplace || j->pw == j->ow;
    const float *src = j->inplace ? j->in + b * j->ci * hw : pad;
    int64_t is = j->inplace ? hw : j->ph * j->pw, os = j->inplace ? hw : j->oh * j->pw;
    float *dst = direct ? j->out + b * j->co * hw : tmp;
    /* Spans of positions, or whole channel tiles, one per thread. */
    int64_t per, cot = nn__flat_cot(), ctiles = (j->co + cot - 1) / cot;
    team_split(valid, j->co, threads, &per);
    int by_ch = per == 0;
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        if (!j->inplace) {
            pad_planes(j, b, pad, j->ci * t / nt, j->ci * (t + 1) / nt);
#pragma omp barrier
        }
        int64_t p0 = 0, p1 = valid, c0 = 0, c1 = j->co;
        if (by_ch) {
            c0 = ctiles * t / nt * cot;
            c1 = ctiles * (t + 1) / nt * cot;
            if (c1 > j->co) c1 = j->co;
        } else {
            p0 = per * t;
            p1 = p0 + per < valid ? p0 + per : valid;
        }
        nn__flat_corr(src, is, j->ci, j->off, j->taps, &j->w, j->co, c0, c1, dst, os, p0, p1,
                      direct && j->accumulate, j->inplace && j->relu_in, j->epi);
        if (!direct) {
#pragma omp barrier
            copy_out(j, b, tmp, j->co * t / nt, j->co * (t + 1) / nt);
        }
    }
}

/* wsrc [wcout, wcin, kh, kw]: packed per call (transpose) or read in place. */
static void run_job(nn_ctx *ctx, const flat_job *j, int64_t n, const float *wsrc, int64_t wcout, int64_t wcin,
                    int64_t kh, int64_t kw, int transpose) {
    int threads = omp_get_max_threads();
    int64_t work = n * j->co * j->oh * j->ow * j->ci * j->taps;
    int par_images = threads > 1 && n >= threads && work > NN_PAR_MIN;
    int teams = par_images ? threads : 1;
    int64_t per = image_floats(j);
    int64_t wfloats = transpose ? nn__flat_packed_size(j->co, j->ci, j->taps) : nn__flat_last_size(j->co, j->ci, j->taps);
    float *wbuf = nn__scratch(ctx, (size_t)(wfloats + per * teams + 16) * sizeof(float));
    flat_job job = *j;
    if (transpose) {
        nn__flat_pack(wsrc, wcout, wcin, kh, kw, 1, wbuf);
        job.w.w = wbuf;
        job.w.last = NULL;
        job.w.packed = 1;
    } else {
        nn__flat_last(wsrc, j->co, j->ci, j->taps, wbuf);
        job.w.w = wsrc;
        job.w.last = wfloats ? wbuf : NULL;
        job.w.packed = 0;
    }
    float *ws = wbuf + (wfloats + 15) / 16 * 16;
    if (par_images) {
#pragma omp parallel for schedule(static)
        for (int64_t b = 0; b < n; b++) image_serial(&job, b, ws + per * omp_get_thread_num());
    } else if (threads > 1 && work > NN_PAR_MIN) {
        for (int64_t b = 0; b < n; b++) image_parallel(&job, b, ws, threads);
    } else {
        for (int64_t b = 0; b < n; b++) image_serial(&job, b, ws);
    }
}

int nn__conv_force_gemm(void) {
    static int cached = -1;
    if (cached < 0) {
        /* NN_CONV_GEMM=1 sends every dense convolution through im2col + GEMM (tests, comparisons). */
        const char *e = getenv("NN_CONV_GEMM");
        cached = e && e[0] == '1';
    }
    return cached;
}

int nn__direct_ok(const nn_conv2d_params *p, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw,
                  int64_t oh, int64_t ow) {
    if (p->groups != 1 || p->stride_h != 1 || p->stride_w != 1 || nn__conv_force_gemm()) return 0;
    /* No lower bound on channels or sums: a register tile with idle channels (4 or 6 outputs) or
     * a short sum (an RGB stem's 3 x 3x3) still ran 1.2-3x faster than im2col + GEMM (one-thread
     * A/B in one process, 2026-12-05: 3->96 3x3 @32x32 b32 forward 3.08 -> 1.82 ms, 16->4 3x3
     * 1.67 -> 0.78 ms, 1x1 16->64 1.00 -> 0.44 ms). */
    int64_t ph = oh + (kh - 1) * p->dil_h, pw = ow + (kw - 1) * p->dil_w;
    int64_t bh = h + (kh - 1) * p->dil_h, bw = w + (kw - 1) * p->dil_w;
    int64_t fwd = cin * ph * pw + cout * oh * pw, bwd = cout * bh * bw + cin * h * bw;
    return (fwd > bwd ? fwd : bwd) * (int64_t)sizeof(float) <= DIRECT_MAX_IMAGE_BYTES;
}

static int64_t *tap_offsets(nn_ctx *ctx, int64_t kh, int64_t kw, int64_t dh, int64_t dw, int64_t pw) {
    int64_t *off = nn__alloc(ctx, (size_t)(kh * kw) * sizeof(int64_t));
    for (int64_t i = 0; i < kh; i++)
        for (int64_t jj = 0; jj < kw; jj++) off[i * kw + jj] = i * dh * pw + jj * dw;
    return off;
}

void nn__direct_forward(nn_ctx *ctx, const float *x, const float *w, float *y, int64_t n, int64_t cin, int64_t h,
                        int64_t wd, int64_t cout, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                        const nn_conv2d_params *p, int relu_in, const nn_conv_epi *epi) {
    flat_job j;
    j.relu_in = relu_in;
    j.epi = epi;
    j.in = x;
    j.ci = cin;
    j.ih = h;
    j.iw = wd;
    j.ph = oh + (kh - 1) * p->dil_h;
    j.pw = ow + (kw - 1) * p->dil_w;
    j.top = p->pad_t;
    j.left = p->pad_l;
    j.taps = kh * kw;
    j.off = tap_offsets(ctx, kh, kw, p->dil_h, p->dil_w, j.pw);
    j.co = cout;
    j.oh = oh;
    j.ow = ow;
    j.out = y;
    j.accumulate = 0;
    j.inplace = kh == 1 && kw == 1 && p->pad_t == 0 && p->pad_b == 0 && p->pad_l == 0 && p->pad_r == 0;
    run_job(ctx, &j, n, w, cout, cin, kh, kw, 0);
}

void nn__direct_backward_dx(nn_ctx *ctx, const float *dy, const float *w, float *dx, int fresh, int64_t n, int64_t cin,
                            int64_t h, int64_t wd, int64_t cout, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                            const nn_conv2d_params *p) {
    flat_job j;
    j.relu_in = 0;
    j.epi = NULL;
    j.in = dy;
    j.ci = cout;
    j.ih = oh;
    j.iw = ow;
    j.ph = h + (kh - 1) * p->dil_h;
    j.pw = wd + (kw - 1) * p->dil_w;
    j.top = (kh - 1) * p->dil_h - p->pad_t;
    j.left = (kw - 1) * p->dil_w - p->pad_l;
    j.taps = kh * kw;
    j.off = tap_offsets(ctx, kh, kw, p->dil_h, p->dil_w, j.pw);
    j.co = cin;
    j.oh = h;
    j.ow = wd;
    j.out = dx;
    j.accumulate = !fresh;
    j.inplace = kh == 1 && kw == 1 && p->pad_t == 0 && p->pad_b == 0 && p->pad_l == 0 && p->pad_r == 0;
    run_job(ctx, &j, n, w, cin, cout, kh, kw, 1);
}
