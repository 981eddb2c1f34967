/* Detector benchmarks (figures only, nothing asserted). bench/det.sh runs this side by side
 * with torchvision (bench/det_nms.py); run alone it prints our own figures.
 *
 *   bench_det                          NMS on 1k / 5k / 20k clustered boxes, our timings only
 *   bench_det gen N SEED FILE          write N clustered boxes + scores (format below)
 *   bench_det nms FILE THRESH REPS [KEEP_OUT]
 *                                      time det_nms REPS times (after one warm-up); prints
 *                                      "median_ms min_ms kept"; KEEP_OUT gets the kept indices
 *                                      as little-endian int64
 *   bench_det calib                    OpenBLAS sgemm GFLOP/s (1024^3), the machine's pace
 *
 * Box file: "NDB1", int64 n, n*4 float32 boxes (x1 y1 x2 y2), n float32 scores, little-endian.
 * The boxes imitate RPN proposals: about n/50 objects in an 800x800 image, object sizes
 * log-uniform in 16..400 px, each box jittered around its object (centre +-25%, size x0.6..1.4),
 * scores uniform in [0, 1). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "common/status.h"
#include "detector/frcnn.h"

static void gen_boxes(int64_t n, uint64_t seed, float *boxes, float *scores) {
    nd_rng r;
    nd_rng_seed(&r, seed);
    int64_t n_obj = n / 50 > 1 ? n / 50 : 1;
    float *obj = malloc((size_t)n_obj * 4 * sizeof *obj);
    for (int64_t o = 0; o < n_obj; o++) {
        obj[4 * o] = (float)nd_rng_range(&r, 0, 800);
        obj[4 * o + 1] = (float)nd_rng_range(&r, 0, 800);
        obj[4 * o + 2] = (float)(16.0 * pow(25.0, nd_rng_uniform(&r)));
        obj[4 * o + 3] = obj[4 * o + 2] * (float)nd_rng_range(&r, 0.5, 2.0);
    }
    for (int64_t i = 0; i < n; i++) {
        const float *o = obj + 4 * (int64_t)nd_rng_below(&r, (uint64_t)n_obj);
        float cx = o[0] + o[2] * (float)nd_rng_range(&r, -0.25, 0.25);
        float cy = o[1] + o[3] * (float)nd_rng_range(&r, -0.25, 0.25);
        float w = o[2] * (float)nd_rng_range(&r, 0.6, 1.4), h = o[3] * (float)nd_rng_range(&r, 0.6, 1.4);
        boxes[4 * i] = cx - w / 2;
        boxes[4 * i + 1] = cy - h / 2;
        boxes[4 * i + 2] = cx + w / 2;
        boxes[4 * i + 3] = cy + h / 2;
        scores[i] = (float)nd_rng_uniform(&r);
    }
    free(obj);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median and min of REPS timed runs, in ms */
static int time_nms(const float *boxes, const float *scores, int64_t n, double thresh, int reps,
                    int64_t *keep, int64_t *n_keep, double *median, double *best) {
    double *t = malloc((size_t)reps * sizeof *t);
    int st = det_nms(boxes, scores, n, thresh, 0, keep, n_keep); /* warm-up */
    for (int i = 0; i < reps && st == 0; i++) {
        double t0 = nd_time_now();
        st = det_nms(boxes, scores, n, thresh, 0, keep, n_keep);
        t[i] = (nd_time_now() - t0) * 1e3;
    }
    if (st == 0) {
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        *median = t[reps / 2];
        *best = t[0];
    }
    free(t);
    return st;
}

static int write_file(const char *path, const void *a, size_t na, const void *b, size_t nb,
                      const void *c, size_t nc) {
    FILE *f = fopen(path, "wb");
    if (!f) return nd_fail(ND_ERR_IO, "%s: cannot write", path);
    int ok = fwrite(a, 1, na, f) == na && fwrite(b, 1, nb, f) == nb && fwrite(c, 1, nc, f) == nc;
    ok &= fclose(f) == 0;
    return ok ? ND_OK : nd_fail(ND_ERR_IO, "%s: write failed", path);
}

static int read_boxes(const char *path, int64_t *n, float **boxes, float **scores) {
    char *data;
    size_t len;
    int st = nd_file_read_all(path, &data, &len);
    if (st) return st;
    int64_t m = 0;
    if (len >= 12) memcpy(&m, data + 4, sizeof m);
    if (len < 12 || memcmp(data, "NDB1", 4) != 0 || m < 0 || m > (1 << 26) ||
        len != 12 + (size_t)m * 20) {
        free(data);
        return nd_fail(ND_ERR_FORMAT, "%s: not a box file (NDB1, n, boxes, scores)", path);
    }
    *boxes = malloc((size_t)(m ? m : 1) * 4 * sizeof **boxes);
    *scores = malloc((size_t)(m ? m : 1) * sizeof **scores);
    memcpy(*boxes, data + 12, (size_t)m * 16);
    memcpy(*scores, data + 12 + (size_t)m * 16, (size_t)m * 4);
    *n = m;
    free(data);
    return ND_OK;
}

static double sgemm_gflops(void) {
    enum { N = 1024 };
    float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N);
    float *c = malloc(sizeof(float) * N * N);
    for (int i = 0; i < N * N; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = nd_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c,
                    N);
        double t = nd_time_now() - t0;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * N * N * N / best / 1e9;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_det [gen N SEED FILE | nms FILE THRESH REPS [KEEP_OUT] | "
                    "calib]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "calib") == 0) {
        printf("%.1f\n", sgemm_gflops());
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "gen") == 0) {
        int64_t n = strtoll(argv[2], NULL, 10);
        if (n < 0 || n > (1 << 26)) return usage();
        float *boxes = malloc((size_t)(n ? n : 1) * 16), *scores = malloc((size_t)(n ? n : 1) * 4);
        gen_boxes(n, strtoull(argv[3], NULL, 10), boxes, scores);
        char head[12];
        memcpy(head, "NDB1", 4);
        memcpy(head + 4, &n, 8);
        int st = write_file(argv[4], head, 12, boxes, (size_t)n * 16, scores, (size_t)n * 4);
        free(boxes);
        free(scores);
        if (st) fprintf(stderr, "bench_det: %s\n", nd_last_error());
        return st ? 1 : 0;
    }
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "nms") == 0) {
        int64_t n = 0;
        float *boxes = NULL, *scores = NULL;
        if (read_boxes(argv[2], &n, &boxes, &scores)) {
            fprintf(stderr, "bench_det: %s\n", nd_last_error());
            return 1;
        }
        int reps = atoi(argv[4]);
        if (reps < 1) reps = 1;
        int64_t *keep = malloc((size_t)(n ? n : 1) * sizeof *keep), kept = 0;
        double med = 0, best = 0;
        int st = time_nms(boxes, scores, n, atof(argv[3]), reps, keep, &kept, &med, &best);
        if (st == 0 && argc == 6)
            st = write_file(argv[5], keep, (size_t)kept * 8, "", 0, "", 0);
        if (st == 0) printf("%.4f %.4f %lld\n", med, best, (long long)kept);
        else fprintf(stderr, "bench_det: %s\n", nd_last_error());
        free(boxes);
        free(scores);
        free(keep);
        return st ? 1 : 0;
    }
    if (argc != 1) return usage();
    printf("det_nms on clustered boxes (no torchvision here: run `make bench-det` for the side by "
           "side); sgemm %.0f GFLOP/s\n",
           sgemm_gflops());
    printf("%8s %6s %8s %12s %10s\n", "boxes", "iou", "kept", "median ms", "min ms");
    static const int64_t sizes[] = {1000, 5000, 20000};
    static const double thr[] = {0.5, 0.7};
    for (int s = 0; s < 3; s++)
        for (int t = 0; t < 2; t++) {
            int64_t n = sizes[s];
            float *boxes = malloc((size_t)n * 16), *scores = malloc((size_t)n * 4);
            int64_t *keep = malloc((size_t)n * sizeof *keep), kept = 0;
            gen_boxes(n, 1000 + (uint64_t)n, boxes, scores);
            double med = 0, best = 0;
            if (time_nms(boxes, scores, n, thr[t], 21, keep, &kept, &med, &best) == 0)
                printf("%8lld %6.2f %8lld %12.3f %10.3f\n", (long long)n, thr[t], (long long)kept,
                       med, best);
            else
                printf("%8lld failed: %s\n", (long long)n, nd_last_error());
            free(boxes);
            free(scores);
            free(keep);
        }
    return 0;
}
