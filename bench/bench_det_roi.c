/* ROIAlign speed (figures only, nothing asserted). bench/det.sh runs it side by side with
 * torchvision.ops.roi_align through bench/det_roi.py on identical data.
 *
 *   bench_det_roi                      our figures for 512 and 2000 rois
 *   bench_det_roi gen K SEED FILE      write a 1x256x50x50 feature map (uniform [-1, 1)) and K
 *                                      rois in an 800x800 image (format below)
 *   bench_det_roi run FILE REPS [OUT]  time nn_roi_align (7x7, scale 1/16, sampling 2, not
 *                                      aligned: torchvision's Faster R-CNN settings) REPS times
 *                                      after one warm-up, forward only; prints "median_ms min_ms
 *                                      threads"; OUT gets the [K,256,7,7] output as float32
 *
 * File: "NDR1", int64 K, 256*50*50 float32 features, K*5 float32 rois (0, x1, y1, x2, y2),
 * little-endian. Roi sizes are log-uniform in 16..400 px, like RPN proposals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "common/status.h"
#include "nn/nn.h"

enum { C = 256, H = 50, W = 50 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int gen(int64_t k, uint64_t seed, const char *path) {
    nd_rng r;
    nd_rng_seed(&r, seed);
    size_t nf = (size_t)C * H * W, bytes = 12 + (nf + (size_t)k * 5) * sizeof(float);
    char *buf = malloc(bytes);
    if (!buf) return nd_fail(ND_ERR_NOMEM, "out of memory");
    memcpy(buf, "NDR1", 4);
    memcpy(buf + 4, &k, sizeof k);
    float *f = (float *)(buf + 12), *rois = f + nf;
    for (size_t i = 0; i < nf; i++) f[i] = (float)nd_rng_range(&r, -1.0, 1.0);
    for (int64_t i = 0; i < k; i++) {
        float w = (float)(16.0 * pow(25.0, nd_rng_uniform(&r))), h = w * (float)nd_rng_range(&r, 0.5, 2.0);
        float x = (float)nd_rng_range(&r, 0, 800 - w), y = (float)nd_rng_range(&r, 0, h < 800 ? 800 - h : 1);
        float *q = rois + 5 * i;
        q[0] = 0, q[1] = x, q[2] = y, q[3] = x + w, q[4] = y + h;
    }
    int st = nd_file_write_atomic(path, buf, bytes);
    free(buf);
    return st;
}

static int run(const char *path, int reps, const char *out) {
    char *data;
    size_t len;
    int st = nd_file_read_all(path, &data, &len);
    if (st) return st;
    int64_t k = 0;
    size_t nf = (size_t)C * H * W;
    if (len >= 12) memcpy(&k, data + 4, sizeof k);
    if (len < 12 || memcmp(data, "NDR1", 4) != 0 || k < 1 || k > (1 << 20) ||
        len != 12 + (nf + (size_t)k * 5) * sizeof(float)) {
        free(data);
        return nd_fail(ND_ERR_FORMAT, "%s: not a roi file (NDR1, K, features, rois)", path);
    }
    const float *f = (const float *)(data + 12), *rois = f + nf;
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    double *t = malloc((size_t)(reps + 1) * sizeof *t);
    nn_tensor *y = NULL;
    for (int i = 0; i <= reps; i++) { /* round 0 is the warm-up */
        nn_ctx_reset(ctx);
        nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(1, C, H, W), f);
        double t0 = nd_time_now();
        y = nn_roi_align(ctx, x, rois, k, 7, 7, 1.0f / 16.0f, 2, 0);
        t[i] = (nd_time_now() - t0) * 1e3;
    }
    qsort(t + 1, (size_t)reps, sizeof *t, cmp_double);
    printf("%.3f %.3f %d\n", t[1 + reps / 2], t[1], nn_get_threads());
    if (out) st = nd_file_write_atomic(out, (const char *)y->data, (size_t)y->numel * sizeof(float));
    free(t);
    nn_ctx_free(ctx);
    free(data);
    return st;
}

int main(int argc, char **argv) {
    int st;
    if (argc == 1) { /* alone (make bench): our figures for both sizes */
        char path[64];
        snprintf(path, sizeof path, "/tmp/nasdet-bench-roi.%ld", (long)getpid());
        printf("ROIAlign 256x50x50, 7x7, sampling 2: rois median_ms min_ms threads\n");
        st = ND_OK;
        for (int64_t k = 512; k <= 2000 && st == 0; k = k == 512 ? 2000 : 4000) {
            if ((st = gen(k, 2000 + (uint64_t)k, path)) == 0) {
                printf("%6lld ", (long long)k);
                st = run(path, 5, NULL);
            }
        }
        remove(path);
    } else if (argc == 5 && strcmp(argv[1], "gen") == 0)
        st = gen(strtoll(argv[2], NULL, 10), strtoull(argv[3], NULL, 10), argv[4]);
    else if ((argc == 4 || argc == 5) && strcmp(argv[1], "run") == 0 && atoi(argv[3]) >= 1)
        st = run(argv[2], atoi(argv[3]), argc == 5 ? argv[4] : NULL);
    else {
        fprintf(stderr, "usage: bench_det_roi gen K SEED FILE | run FILE REPS [OUT]\n");
        return 2;
    }
    if (st) fprintf(stderr, "bench_det_roi: %s\n", nd_last_error());
    return st ? 1 : 0;
}
