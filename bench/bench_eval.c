/* COCO evaluation benchmark: a generator for a COCO val2017-sized synthetic pair, and a
 * library-level timer.
 *
 *   bench_eval gen-bbox DIR [IMAGES]   DIR/gt.json + DIR/dt.json: IMAGES (5000) images, ~7.2 GT
 *                                      per image over 80 COCO category ids with COCO-like sizes
 *                                      (~41% small, 34% medium, 25% large), ~1% crowd, 100
 *                                      detections per image (near-GT boxes, wrong classes,
 *                                      background), fixed seed
 *   bench_eval gen-segm DIR [IMAGES]   the same with polygon GT and compressed-RLE detections
 *   bench_eval time GT DT TYPE         load / evaluate / accumulate with the library, median of 3
 *   bench_eval                         a small pair generated in /tmp, timed (for `make bench`)
 *
 * bench/eval.sh drives it for `make bench-eval`. Figures are printed, never asserted. */
#include "common/fileio.h"
#include "common/rng.h"
#include "common/status.h"
#include "eval/cocoeval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const int COCO_IDS[80] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
                                 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
                                 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};

typedef struct box { double x, y, w, h; int cat; int crowd; } box;

/* A GT box with COCO-like size: sqrt(area) log-uniform over [8, 400] px, clipped to the image. */
static box random_gt(nd_rng *r, int W, int H) {
    box b;
    double s = exp(nd_rng_range(r, log(8.0), log(400.0)));
    double ar = exp(nd_rng_range(r, log(0.4), log(2.5)));
    b.w = fmin(s * sqrt(ar), W - 1.0);
    b.h = fmin(s / sqrt(ar), H - 1.0);
    b.x = nd_rng_range(r, 0, W - b.w);
    b.y = nd_rng_range(r, 0, H - b.h);
    b.cat = COCO_IDS[nd_rng_below(r, 80)];
    b.crowd = nd_rng_uniform(r) < 0.01;
    return b;
}

/* A polygon of n vertices on the ellipse inscribed in b, radii jittered. */
static void ellipse_poly(nd_rng *r, box b, int n, double *xy) {
    double cx = b.x + b.w / 2, cy = b.y + b.h / 2;
    for (int i = 0; i < n; i++) {
        double t = 2 * M_PI * i / n, j = 0.85 + 0.15 * nd_rng_uniform(r);
        xy[2 * i] = round((cx + j * b.w / 2 * cos(t)) * 100) / 100;
        xy[2 * i + 1] = round((cy + j * b.h / 2 * sin(t)) * 100) / 100;
    }
}

static int generate(const char *dir, int nimg, int segm) {
    if (nd_mkdirs(dir)) return 1;
    char *gp = nd_path_join(dir, "gt.json"), *dp = nd_path_join(dir, "dt.json");
    nd_atomic_file g, d;
    if (nd_atomic_open(&g, gp) || nd_atomic_open(&d, dp)) { fprintf(stderr, "%s\n", nd_last_error()); return 1; }
    nd_rng r;
    nd_rng_seed(&r, 20171012); /* fixed: the pair is the same on every machine */
    static const int SIZES[4][2] = {{640, 480}, {480, 640}, {640, 427}, {500, 375}};
    fprintf(g.fp, "{\"info\": {\"description\": \"nasdet synthetic COCO val2017-sized pair\"},\n\"images\": [\n");
    int (*dims)[2] = malloc(sizeof *dims * (size_t)nimg);
    for (int i = 0; i < nimg; i++) {
        int s = (int)nd_rng_below(&r, 4);
        dims[i][0] = SIZES[s][0];
        dims[i][1] = SIZES[s][1];
        fprintf(g.fp, "%s{\"id\": %d, \"width\": %d, \"height\": %d, \"file_name\": \"%012d.jpg\"}", i ? ",\n" : "",
                i * 7 + 1, dims[i][0], dims[i][1], i * 7 + 1);
    }
    fprintf(g.fp, "\n],\n\"categories\": [\n");
    for (int c = 0; c < 80; c++)
        fprintf(g.fp, "%s{\"id\": %d, \"name\": \"class%d\", \"supercategory\": \"thing\"}", c ? ",\n" : "", COCO_IDS[c],
                COCO_IDS[c]);
    fprintf(g.fp, "\n],\n\"annotations\": [\n");
    fprintf(d.fp, "[\n");
    long ann_id = 1, ngt = 0, ncrowd = 0, ndt = 0;
    box gts[64];
    double xy[64];
    for (int i = 0; i < nimg; i++) {
        int W = dims[i][0], H = dims[i][1], img = i * 7 + 1;
        int n = (int)nd_rng_below(&r, 14) + 1; /* mean 7.5, minus a few empty images */
        if (nd_rng_uniform(&r) < 0.01) n = 0;
        for (int q = 0; q < n; q++) {
            box b = gts[q] = random_gt(&r, W, H);
            fprintf(g.fp, "%s{\"id\": %ld, \"image_id\": %d, \"category_id\": %d, \"iscrowd\": %d, "
                    "\"bbox\": [%.2f, %.2f, %.2f, %.2f], ", ngt ? ",\n" : "", ann_id++, img, b.cat, b.crowd, b.x, b.y,
                    b.w, b.h);
            if (segm) {
                int nv = 8 + (int)nd_rng_below(&r, 17);
                ellipse_poly(&r, b, nv, xy);
                ceval_rle rle;
                ceval_rle_from_poly(&rle, xy, nv, (uint32_t)H, (uint32_t)W);
                fprintf(g.fp, "\"area\": %u, \"segmentation\": [[", ceval_rle_area(&rle));
                for (int v = 0; v < 2 * nv; v++) fprintf(g.fp, "%s%.2f", v ? ", " : "", xy[v]);
                fprintf(g.fp, "]]}");
                ceval_rle_free(&rle);
            } else {
                fprintf(g.fp, "\"area\": %.4f, \"segmentation\": []}", b.w * b.h * 0.8);
            }
            ngt++;
            ncrowd += b.crowd;
        }
        for (int q = 0; q < 100; q++) {
            box b;
            double u = nd_rng_uniform(&r), score;
            if (n > 0 && u < 0.5) { /* a localisation of a GT, maybe of the wrong class */
                box t = gts[nd_rng_below(&r, (uint64_t)n)];
                double j = 0.02 + 0.25 * nd_rng_uniform(&r);
                b.w = fmax(1, t.w * (1 + j * nd_rng_normal(&r)));
                b.h = fmax(1, t.h * (1 + j * nd_rng_normal(&r)));
                b.x = fmin(fmax(0, t.x + j * t.w * nd_rng_normal(&r)), W - 1);
                b.y = fmin(fmax(0, t.y + j * t.h * nd_rng_normal(&r)), H - 1);
                b.cat = nd_rng_uniform(&r) < 0.8 ? t.cat : COCO_IDS[nd_rng_below(&r, 80)];
                score = 0.3 + 0.7 * nd_rng_uniform(&r) * (1 - j);
            } else {
                b = random_gt(&r, W, H);
                score = 0.6 * nd_rng_uniform(&r);
            }
            fprintf(d.fp, "%s{\"image_id\": %d, \"category_id\": %d, ", ndt ? ",\n" : "", img, b.cat);
            if (segm) {
                int nv = 8 + (int)nd_rng_below(&r, 17);
                ellipse_poly(&r, b, nv, xy);
                ceval_rle rle;
                ceval_rle_from_poly(&rle, xy, nv, (uint32_t)H, (uint32_t)W);
                char *s = ceval_rle_to_string(&rle);
                fprintf(d.fp, "\"segmentation\": {\"size\": [%d, %d], \"counts\": \"", H, W);
                for (char *c = s; *c; c++) fprintf(d.fp, *c == '\\' ? "\\\\" : "%c", *c);
                fprintf(d.fp, "\"}, ");
                free(s);
                ceval_rle_free(&rle);
            } else {
                fprintf(d.fp, "\"bbox\": [%.2f, %.2f, %.2f, %.2f], ", b.x, b.y, b.w, b.h);
            }
            fprintf(d.fp, "\"score\": %.5f}", score);
            ndt++;
        }
    }
    fprintf(g.fp, "\n]}\n");
    fprintf(d.fp, "\n]\n");
    free(dims);
    if (nd_atomic_commit(&g) || nd_atomic_commit(&d)) { fprintf(stderr, "%s\n", nd_last_error()); return 1; }
    printf("generated %s: %d images, %ld GT (%ld crowd), 80 categories, %ld detections (%s)\n", dir, nimg, ngt, ncrowd,
           ndt, segm ? "polygon GT, RLE detections" : "boxes");
    free(gp);
    free(dp);
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int time_lib(const char *gtp, const char *dtp, const char *type, int reps) {
    double tg[8], td[8], te[8], ta[8];
    ceval_result *r = NULL;
    for (int k = 0; k < reps; k++) {
        ceval_gt *gt;
        ceval_dets *dt;
        double t0 = nd_time_now();
        if (ceval_gt_load(gtp, &gt)) { fprintf(stderr, "%s\n", nd_last_error()); return 1; }
        double t1 = nd_time_now();
        if (ceval_dets_load(gt, dtp, &dt)) { fprintf(stderr, "%s\n", nd_last_error()); return 1; }
        double t2 = nd_time_now();
        ceval_params p;
        ceval_params_init(&p, (ceval_iou_type)ceval_iou_type_parse(type));
        ceval_result_free(r);
        if (ceval_evaluate(gt, dt, &p, &r)) { fprintf(stderr, "%s\n", nd_last_error()); return 1; }
        tg[k] = t1 - t0;
        td[k] = t2 - t1;
        te[k] = r->seconds_evaluate;
        ta[k] = r->seconds_accumulate;
        ceval_dets_free(dt);
        ceval_gt_free(gt);
    }
    qsort(tg, (size_t)reps, sizeof *tg, cmp_d);
    qsort(td, (size_t)reps, sizeof *td, cmp_d);
    qsort(te, (size_t)reps, sizeof *te, cmp_d);
    qsort(ta, (size_t)reps, sizeof *ta, cmp_d);
    printf("library (%s, median of %d): load GT %.3f s, load results %.3f s, evaluate %.3f s, accumulate %.3f s; "
           "AP %.4f\n", type, reps, tg[reps / 2], td[reps / 2], te[reps / 2], ta[reps / 2], r->stats[0]);
    ceval_result_free(r);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "gen-bbox") == 0) return generate(argv[2], argc > 3 ? atoi(argv[3]) : 5000, 0);
    if (argc >= 3 && strcmp(argv[1], "gen-segm") == 0) return generate(argv[2], argc > 3 ? atoi(argv[3]) : 500, 1);
    if (argc >= 5 && strcmp(argv[1], "time") == 0) return time_lib(argv[2], argv[3], argv[4], 3);
    if (argc == 1) {
        char dir[64];
        snprintf(dir, sizeof dir, "/tmp/nasdet-bench-eval-%d", (int)getpid());
        int rc = generate(dir, 500, 0);
        char *g = nd_path_join(dir, "gt.json"), *d = nd_path_join(dir, "dt.json");
        if (!rc) rc = time_lib(g, d, "bbox", 3);
        remove(g);
        remove(d);
        rmdir(dir);
        free(g);
        free(d);
        return rc;
    }
    fprintf(stderr, "usage: bench_eval [gen-bbox DIR [IMAGES] | gen-segm DIR [IMAGES] | time GT DT bbox|segm]\n");
    return 2;
}
