/* Direct convolution over zero-padded planes (the kernels are in conv2d_flat.c). Per image: pad
 * the input planes into a workspace, run the flat correlation into an output buffer with the
 * padded row length, copy the valid columns out. A strided forward pass first splits each padded
 * plane into its stride phases, plane (a, b) holding the padded input at rows r*sh + a and columns
 * c*sw + b: tap (i, j) then reads phase (i*dh % sh, j*dw % sw) shifted by (i*dh / sh, j*dw / sw),
 * a stride-1 read, and with each channel's phases side by side every tap is one offset from the
 * channel's first plane, the same for all channels, as the flat kernel wants (a 3x3 stride-2 stem
 * on RGB: 9 taps over 4 phases, no im2col columns). A 1x1 convolution without padding reads and
 * writes the tensors in place. With at least as many images as threads, each thread takes whole
 * images with its own workspace; otherwise the threads split each image's positions, or, when the
 * positions are too few to share out evenly (the 7x7 and 14x14 maps of a network's last stages at
 * batch 1), its output channels. Either way each output value is the same sum in the same order
 * (see conv2d_direct.h). */
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
    int64_t sh, sw;      /* stride: the planes are its phases (1, 1: the padded plane itself) */
    int8_t phase[4][4];  /* strided: plane index of phase (a, b) among a channel's, -1 if unread */
    int64_t planes;      /* planes per input channel */
    int64_t gap;         /* zeros after each channel's planes (shared pad columns, see share_pad) */
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

/* Output rows per band when the output with its discarded columns is too large to stay in L2
 * until copied out (a detector's RGB stem at 768 px: 19 MB), else 0: the whole image at once.
 * Band by band, each band is computed into a buffer of BAND_BYTES and copied out while it is
 * still in cache. The bands change no sum (each output is one kernel call's, the same order). */
#define BAND_BYTES ((int64_t)512 << 10)
static int64_t bands_of(int64_t co, int64_t oh, int64_t pw) {
    int64_t row = co * pw * (int64_t)sizeof(float);
    if (row * oh <= 2 * BAND_BYTES) return 0;
    return BAND_BYTES / row > 1 ? BAND_BYTES / row : 1;
}
static int64_t band_rows(const flat_job *j) {
    return j->inplace || j->pw == j->ow ? 0 : bands_of(j->co, j->oh, j->pw);
}

/* The output buffer: one band, or the whole image (none when the output is written in place). */
static int64_t tmp_floats(const flat_job *j) {
    if (j->inplace || j->pw == j->ow) return 0;
    int64_t br = band_rows(j);
    return j->co * (br ? br : j->oh) * j->pw;
}

/* Workspace floats of one image: padded input planes and the output buffer. */
static int64_t image_floats(const flat_job *j) {
    if (j->inplace) return 0;
    return j->ci * (j->planes * j->ph * j->pw + j->gap) + tmp_floats(j) + 16;
}

/* Input stride between channels in the workspace. */
static int64_t channel_floats(const flat_job *j) { return j->planes * j->ph * j->pw + j->gap; }

/* Stride 1: a padded row's right zeros and the next row's left zeros can be the same values.
 * With the row pitch shortened by the smaller of the two pads, a tap reaching past its row's end
 * reads the next row's left padding, still zeros, and every output row computes that many fewer
 * discarded columns (3x3 SAME on a 16x16 map: 17 columns a row instead of 18, 5.6% of the
 * multiply-adds). The last row of a plane reaches as far past the plane, hence the gap of zeros
 * after it. */
static void share_pad(flat_job *j, int64_t left, int64_t right) {
    int64_t shared = left < right ? left : right;
    if (shared <= 0) return;
    j->pw -= shared;
    j->gap = shared;
}

/* phase_planes for column stride 2 (the stems): each padded input row is laid out whole, then
 * split into its even and odd columns by nn__dw_column_phases (vector shuffles), instead of
 * gathering every other value one at a time. */
static void phase_planes_w2(const flat_job *j, const float *x, float *dst) {
    int64_t n = 2 * j->pw, x0 = j->left > 0 ? j->left : 0, x1 = j->left + j->iw < n ? j->left + j->iw : n;
    float row[n + 16], unread[j->pw + 16];
    for (int64_t a = 0; a < j->sh; a++) {
        if (j->phase[a][0] < 0 && j->phase[a][1] < 0) continue;
        float *ev = j->phase[a][0] < 0 ? NULL : dst + j->phase[a][0] * j->ph * j->pw;
        float *od = j->phase[a][1] < 0 ? NULL : dst + j->phase[a][1] * j->ph * j->pw;
        for (int64_t r = 0; r < j->ph; r++) {
            float *e = ev ? ev + r * j->pw : unread, *o = od ? od + r * j->pw : unread;
            int64_t y = r * j->sh + a - j->top;
            if (y < 0 || y >= j->ih || x1 <= x0) {
                memset(e, 0, (size_t)j->pw * sizeof(float));
                memset(o, 0, (size_t)j->pw * sizeof(float));
                continue;
            }
            const float *src = x + y * j->iw + (x0 - j->left);
            memset(row, 0, (size_t)x0 * sizeof(float));
            if (j->relu_in)
                for (int64_t c = 0; c < x1 - x0; c++) row[x0 + c] = src[c] > 0.0f ? src[c] : 0.0f;
            else
                memcpy(row + x0, src, (size_t)(x1 - x0) * sizeof(float));
            memset(row + x1, 0, (size_t)(n - x1) * sizeof(float));
            nn__dw_column_phases(row, n, 1, e, o);
        }
    }
}

/* The read phases of x [ih, iw] padded at (top, left): dst plane phase[a][b] [ph, pw] = the
 * padded input at (r*sh + a, c*sw + b), zeros outside x; relu: max(x, 0). */
static void phase_planes(const flat_job *j, const float *x, float *dst) {
    if (j->sw == 2) {
        phase_planes_w2(j, x, dst);
        return;
    }
    for (int64_t a = 0; a < j->sh; a++)
        for (int64_t b = 0; b < j->sw; b++) {
            if (j->phase[a][b] < 0) continue;
            float *pl = dst + j->phase[a][b] * j->ph * j->pw;
            /* Columns c with 0 <= c*sw + b - left < iw. */
            int64_t c0 = j->left - b > 0 ? (j->left - b + j->sw - 1) / j->sw : 0;
            int64_t c1 = (j->iw + j->left - b + j->sw - 1) / j->sw;
            if (c1 > j->pw) c1 = j->pw;
            if (c1 < c0) c1 = c0;
            for (int64_t r = 0; r < j->ph; r++) {
                float *o = pl + r * j->pw;
                int64_t y = r * j->sh + a - j->top;
                if (y < 0 || y >= j->ih) {
                    memset(o, 0, (size_t)j->pw * sizeof(float));
                    continue;
                }
                const float *src = x + y * j->iw + (c0 * j->sw + b - j->left);
                for (int64_t c = 0; c < c0; c++) o[c] = 0.0f;
                if (j->relu_in)
                    for (int64_t c = c0; c < c1; c++, src += j->sw) o[c] = *src > 0.0f ? *src : 0.0f;
                else
                    for (int64_t c = c0; c < c1; c++, src += j->sw) o[c] = *src;
                for (int64_t c = c1; c < j->pw; c++) o[c] = 0.0f;
            }
        }
}

/* Positions [0, valid) of the flat output: the last row stops at its last valid column. */
static int64_t flat_valid(const flat_job *j) { return (j->oh - 1) * j->pw + j->ow; }

static void pad_planes(const flat_job *j, int64_t b, float *pad, int64_t c0, int64_t c1) {
    if (j->sh > 1 || j->sw > 1) {
        for (int64_t c = c0; c < c1; c++)
            phase_planes(j, j->in + (b * j->ci + c) * j->ih * j->iw, pad + c * channel_floats(j));
        return;
    }
    for (int64_t c = c0; c < c1; c++) {
        float *pl = pad + c * channel_floats(j);
        nn__dw_pad_plane(j->in + (b * j->ci + c) * j->ih * j->iw, j->ih, j->iw, 1, 1, pl, j->ph, j->pw, j->top,
                         j->left, j->relu_in);
        if (j->gap) memset(pl + j->ph * j->pw, 0, (size_t)j->gap * sizeof(float));
    }
}

/* tmp [co, rows*pw] (channel stride cs) -> rows [r0, r0 + rows) of out image b [co, oh, ow] (= or
 * +=), channels [c0, c1). */
static void copy_rows(const flat_job *j, int64_t b, const float *tmp, int64_t cs, int64_t r0, int64_t rows,
                      int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c++)
        for (int64_t r = r0; r < r0 + rows; r++) {
            float *o = j->out + ((b * j->co + c) * j->oh + r) * j->ow;
            const float *s = tmp + c * cs + (r - r0) * j->pw;
            if (j->accumulate)
                nn__vec_add(o, s, j->ow);
            else
                memcpy(o, s, (size_t)j->ow * sizeof(float));
        }
}

/* tmp [co, oh*pw] -> out image b, channels [c0, c1). */
static void copy_out(const flat_job *j, int64_t b, const float *tmp, int64_t c0, int64_t c1) {
    copy_rows(j, b, tmp, j->oh * j->pw, 0, j->oh, c0, c1);
}

/* Band k of image b (rows of band_rows(j)) from the padded planes into tmp, then out. */
static void band(const flat_job *j, int64_t b, const float *pad, float *tmp, int64_t k) {
    int64_t br = band_rows(j), r0 = k * br, rows = j->oh - r0 < br ? j->oh - r0 : br;
    int64_t p0 = r0 * j->pw, p1 = (r0 + rows) * j->pw, valid = flat_valid(j);
    if (p1 > valid) p1 = valid;
    nn__flat_corr(pad + p0, channel_floats(j), j->ci, j->off, j->taps, &j->w, j->co, 0, j->co, tmp, br * j->pw, 0,
                  p1 - p0, 0, 0, j->epi);
    copy_rows(j, b, tmp, br * j->pw, r0, rows, 0, j->co);
}

/* Image b on one thread with workspace ws. */
static void image_serial(const flat_job *j, int64_t b, float *ws) {
    int64_t hw = j->oh * j->ow;
    if (j->inplace) {
        nn__flat_corr(j->in + b * j->ci * hw, hw, j->ci, j->off, j->taps, &j->w, j->co, 0, j->co,
                      j->out + b * j->co * hw, hw, 0, hw, j->accumulate, j->relu_in, j->epi);
        return;
    }
    float *pad = ws, *tmp = ws + j->ci * channel_floats(j);
    pad_planes(j, b, pad, 0, j->ci);
    int64_t br = band_rows(j);
    if (br) {
        for (int64_t k = 0; k < (j->oh + br - 1) / br; k++) band(j, b, pad, tmp, k);
        return;
    }
    int direct = j->pw == j->ow; /* no discarded columns: write the output in place */
    float *dst = direct ? j->out + b * j->co * hw : tmp;
    nn__flat_corr(pad, channel_floats(j), j->ci, j->off, j->taps, &j->w, j->co, 0, j->co, dst, j->oh * j->pw, 0,
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

/* Image b in bands, the team splitting input channels (padding), then whole bands, each thread
 * with its own band buffer after the planes. */
static void image_bands_parallel(const flat_job *j, int64_t b, float *ws, int threads) {
    float *pad = ws, *tmp = ws + j->ci * channel_floats(j);
    int64_t br = band_rows(j), nb = (j->oh + br - 1) / br;
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        pad_planes(j, b, pad, j->ci * t / nt, j->ci * (t + 1) / nt);
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t k = 0; k < nb; k++) band(j, b, pad, tmp + t * tmp_floats(j), k);
    }
}

/* Image b with the team splitting input channels (padding), output channels (the copy) and
 * positions or output channels (the correlation: team_split). */
static void image_parallel(const flat_job *j, int64_t b, float *ws, int threads) {
    if (band_rows(j)) {
        image_bands_parallel(j, b, ws, threads);
        return;
    }
    int64_t hw = j->oh * j->ow, valid = j->inplace ? hw : flat_valid(j);
    float *pad = ws, *tmp = ws + j->ci * channel_floats(j);
    int direct = j->inplace || j->pw == j->ow;
    const float *src = j->inplace ? j->in + b * j->ci * hw : pad;
    int64_t is = j->inplace ? hw : channel_floats(j), os = j->inplace ? hw : j->oh * j->pw;
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
    /* A team on one image in bands: a band buffer for each thread. */
    if (!par_images && threads > 1 && band_rows(j)) per += (threads - 1) * tmp_floats(j);
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

/* Phase-plane rows and columns of a forward pass (the padded plane itself at stride 1). */
static int64_t phase_rows(int64_t o, int64_t k, int64_t d, int64_t s) { return o + (k - 1) * d / s; }

int nn__direct_ok(const nn_conv2d_params *p, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kh, int64_t kw,
                  int64_t oh, int64_t ow) {
    if (p->stride_h != 1 || p->stride_w != 1) return 0;
    if (!nn__direct_forward_ok(p, cin, h, w, cout, kh, kw, oh, ow)) return 0;
    int64_t bh = h + (kh - 1) * p->dil_h, bw = w + (kw - 1) * p->dil_w;
    int64_t br = bands_of(cin, h, bw);
    return (cout * bh * bw + cin * (br ? br : h) * bw) * (int64_t)sizeof(float) <= DIRECT_MAX_IMAGE_BYTES;
}

int nn__direct_forward_ok(const nn_conv2d_params *p, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kh,
                          int64_t kw, int64_t oh, int64_t ow) {
    (void)h;
    (void)w;
    if (p->groups != 1 || p->stride_h < 1 || p->stride_w < 1 || p->stride_h > 4 || p->stride_w > 4) return 0;
    if (nn__conv_force_gemm()) return 0;
    /* No lower bound on channels or sums: a register tile with idle channels (4 or 6 outputs) or
     * a short sum (an RGB stem's 3 x 3x3) still ran 1.2-3x faster than im2col + GEMM (one-thread
     * A/B in one process, 2026-12-05: 3->96 3x3 @32x32 b32 forward 3.08 -> 1.82 ms, 16->4 3x3
     * 1.67 -> 0.78 ms, 1x1 16->64 1.00 -> 0.44 ms). */
    int64_t planes = (int64_t)p->stride_h * p->stride_w;
    int64_t ph = phase_rows(oh, kh, p->dil_h, p->stride_h), pw = phase_rows(ow, kw, p->dil_w, p->stride_w);
    int64_t br = bands_of(cout, oh, pw); /* the output buffer: a band, or the whole output */
    return (cin * planes * ph * pw + cout * (br ? br : oh) * pw) * (int64_t)sizeof(float) <= DIRECT_MAX_IMAGE_BYTES;
}

/* The phases the taps read, numbered in order (j->planes of them; stride 1: the one plane), and
 * each tap's offset from its channel's first plane. Needs j's stride, ph and pw. */
static void set_taps(nn_ctx *ctx, flat_job *j, int64_t kh, int64_t kw, int64_t dh, int64_t dw) {
    memset(j->phase, -1, sizeof j->phase);
    for (int64_t i = 0; i < kh; i++)
        for (int64_t jj = 0; jj < kw; jj++) j->phase[i * dh % j->sh][jj * dw % j->sw] = 0;
    j->planes = 0;
    for (int64_t a = 0; a < j->sh; a++)
        for (int64_t b = 0; b < j->sw; b++)
            if (j->phase[a][b] == 0) j->phase[a][b] = (int8_t)j->planes++;
    int64_t *off = nn__alloc(ctx, (size_t)(kh * kw) * sizeof(int64_t));
    for (int64_t i = 0; i < kh; i++)
        for (int64_t jj = 0; jj < kw; jj++) {
            int64_t r = i * dh, c = jj * dw;
            off[i * kw + jj] = j->phase[r % j->sh][c % j->sw] * j->ph * j->pw + r / j->sh * j->pw + c / j->sw;
        }
    j->taps = kh * kw;
    j->off = off;
}

void nn__direct_forward(nn_ctx *ctx, const float *x, const float *w, float *y, int64_t n, int64_t cin, int64_t h,
                        int64_t wd, int64_t cout, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                        const nn_conv2d_params *p, int relu_in, const nn_conv_epi *epi) {
    flat_job j;
    memset(&j, 0, sizeof j);
    j.relu_in = relu_in;
    j.epi = epi;
    j.in = x;
    j.ci = cin;
    j.ih = h;
    j.iw = wd;
    j.sh = p->stride_h;
    j.sw = p->stride_w;
    j.ph = phase_rows(oh, kh, p->dil_h, j.sh);
    j.pw = phase_rows(ow, kw, p->dil_w, j.sw);
    j.top = p->pad_t;
    j.left = p->pad_l;
    if (j.sh == 1 && j.sw == 1) share_pad(&j, p->pad_l, p->pad_r);
    set_taps(ctx, &j, kh, kw, p->dil_h, p->dil_w);
    j.co = cout;
    j.oh = oh;
    j.ow = ow;
    j.out = y;
    j.accumulate = 0;
    j.inplace = kh == 1 && kw == 1 && j.sh == 1 && j.sw == 1 && p->pad_t == 0 && p->pad_b == 0 && p->pad_l == 0 &&
                p->pad_r == 0;
    run_job(ctx, &j, n, w, cout, cin, kh, kw, 0);
}

void nn__direct_backward_dx(nn_ctx *ctx, const float *dy, const float *w, float *dx, int fresh, int64_t n, int64_t cin,
                            int64_t h, int64_t wd, int64_t cout, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                            const nn_conv2d_params *p) {
    flat_job j;
    memset(&j, 0, sizeof j);
    j.sh = j.sw = 1;
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
    share_pad(&j, j.left, (kw - 1) * p->dil_w - p->pad_r);
    set_taps(ctx, &j, kh, kw, p->dil_h, p->dil_w);
    j.co = cin;
    j.oh = h;
    j.ow = wd;
    j.out = dx;
    j.accumulate = !fresh;
    j.inplace = kh == 1 && kw == 1 && p->pad_t == 0 && p->pad_b == 0 && p->pad_l == 0 && p->pad_r == 0;
    run_job(ctx, &j, n, w, cin, cout, kh, kw, 1);
}
