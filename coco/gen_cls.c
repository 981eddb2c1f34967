/* nasdet data digits-cls: a CIFAR-10 binary set of real digits over real photographs.
 *
 * The task is meant to be learnable but not trivial (measured: a 5-layer CNN trained with Adam
 * for 3 epochs on 20000 images reaches 87% on 5000 test images, not 99.9%): the digit is small or large, rotated, slanted, of any colour, sometimes with
 * little contrast against a cluttered photo; a partial neighbouring digit and stray strokes
 * compete with it; blur and sensor-like noise finish it. */
#include "coco/coco.h"
#include "coco/gen_internal.h"

#include "common/fileio.h"
#include "common/progress.h"
#include "common/status.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { REC = 1 + COCO_CIFAR_PIXELS, SIDE = COCO_CIFAR_SIDE };

static const char *const class_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static void random_stroke(gen_canvas *cv, nd_rng *rng, double max_width) {
    double x0 = nd_rng_range(rng, -4, SIDE + 4), y0 = nd_rng_range(rng, -4, SIDE + 4);
    double ang = nd_rng_range(rng, 0, 2 * M_PI), len = nd_rng_range(rng, 6, 20);
    float bg[3], rgb[3];
    gen_mean_colour(cv, 0, 0, SIDE, SIDE, bg);
    gen_contrast_colour(rng, bg, nd_rng_range(rng, 40, 140), rgb);
    /* One draw per statement: the order of evaluation of function arguments is unspecified in
     * C, and the bytes must not depend on the compiler's choice. */
    double width = nd_rng_range(rng, 1, max_width);
    float opacity = (float)nd_rng_range(rng, 0.5, 1.0);
    gen_stroke(cv, x0, y0, x0 + len * cos(ang), y0 + len * sin(ang), width, rgb, opacity);
}

/* One record: label byte then the R, G and B planes. Depends only on (seed, split, index). */
static void render(const gen_assets *a, uint64_t seed, int split, int64_t index, uint8_t *rec) {
    nd_rng rng;
    nd_rng_seed_stream(&rng, seed, ((uint64_t)(split + 1) << 40) + (uint64_t)index);
    float px[SIDE * SIDE * 3];
    uint8_t rgb8[SIDE * SIDE * 3];
    gen_canvas cv = {SIDE, SIDE, px};
    int32_t label = (int32_t)nd_rng_below(&rng, 10), ink[4];

    gen_background(&cv, a, &rng, 0.03, 0.25);
    if (nd_rng_uniform(&rng) < 0.2) random_stroke(&cv, &rng, 2.5);

    /* A neighbouring digit, mostly outside the frame, as in a crop from a line of digits. */
    if (nd_rng_uniform(&rng) < 0.1) {
        double ang = nd_rng_range(&rng, 0, 2 * M_PI), r = nd_rng_range(&rng, 19, 25);
        gen_glyph n;
        n.cx = 16 + r * cos(ang);
        n.cy = 16 + r * sin(ang);
        n.height = nd_rng_range(&rng, 14, 26);
        n.aspect = nd_rng_range(&rng, 0.8, 1.2);
        n.angle = nd_rng_range(&rng, -0.4, 0.4);
        n.shear = nd_rng_range(&rng, -0.2, 0.2);
        n.opacity = (float)nd_rng_range(&rng, 0.7, 1.0);
        float bg[3];
        gen_mean_colour(&cv, 0, 0, SIDE, SIDE, bg);
        gen_contrast_colour(&rng, bg, nd_rng_range(&rng, 50, 160), n.rgb);
        gen_paste_digit(&cv, a, gen_pick_cell(&rng, (int32_t)nd_rng_below(&rng, 10), split), &n, ink);
    }

    /* The digit itself. */
    gen_glyph g;
    g.height = nd_rng_range(&rng, 16, 26);
    g.aspect = nd_rng_range(&rng, 0.8, 1.2);
    g.angle = clampd(0.12 * nd_rng_normal(&rng), -0.4, 0.4);
    g.shear = nd_rng_range(&rng, -0.2, 0.2);
    g.cx = 16 + nd_rng_range(&rng, -3, 3);
    g.cy = 16 + nd_rng_range(&rng, -3, 3);
    g.opacity = (float)nd_rng_range(&rng, 0.8, 1.0);
    float bg[3];
    gen_mean_colour(&cv, (int32_t)g.cx - 6, (int32_t)g.cy - 6, (int32_t)g.cx + 6, (int32_t)g.cy + 6, bg);
    double contrast = nd_rng_uniform(&rng) < 0.08 ? nd_rng_range(&rng, 45, 75) : nd_rng_range(&rng, 80, 190);
    gen_contrast_colour(&rng, bg, contrast, g.rgb);
    gen_paste_digit(&cv, a, gen_pick_cell(&rng, label, split), &g, ink);

    if (nd_rng_uniform(&rng) < 0.1) random_stroke(&cv, &rng, 1.5); /* a scratch across the digit */
    if (nd_rng_uniform(&rng) < 0.15) gen_blur(&cv);
    gen_quantize(&cv, &rng, nd_rng_range(&rng, 2, 8), rgb8);

    rec[0] = (uint8_t)label;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < SIDE * SIDE; i++) rec[1 + c * SIDE * SIDE + i] = rgb8[i * 3 + c];
}

/* Render records [first, first + n) of `split` and write them as one CIFAR binary file. */
static int write_batch(const char *dir, const char *name, const gen_assets *a, uint64_t seed, int split, int64_t first,
                       int64_t n, nd_progress *prog, int64_t *done) {
    uint8_t *buf = malloc((size_t)(n > 0 ? n : 1) * REC);
    if (!buf) return nd_fail(ND_ERR_NOMEM, "out of memory for %lld records", (long long)n);
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; i++) {
        render(a, seed, split, first + i, buf + (size_t)i * REC);
        int64_t d;
#pragma omp atomic capture
        d = ++*done;
        if (omp_get_thread_num() == 0) nd_progress_update(prog, d, NULL);
    }
    char *path = nd_path_join(dir, name);
    int rc = path ? nd_file_write_atomic(path, buf, (size_t)n * REC) : nd_fail(ND_ERR_NOMEM, "out of memory");
    free(path);
    free(buf);
    return rc;
}

int coco_gen_digits_cls(const char *dir, const coco_gen_opts *opts) {
    if (opts->train < 5 || opts->test < 1 || opts->train > 10000000 || opts->test > 10000000)
        return nd_fail(ND_ERR_INVALID, "digits-cls: need 5 <= train <= 1e7 and 1 <= test <= 1e7 (got %lld, %lld)",
                       (long long)opts->train, (long long)opts->test);
    int rc = nd_mkdirs(dir);
    if (rc) return rc;
    gen_assets *a = malloc(sizeof *a);
    if (!a) return nd_fail(ND_ERR_NOMEM, "out of memory");
    if ((rc = gen_assets_load(a))) {
        free(a);
        return rc;
    }
    nd_progress prog;
    nd_progress_init(&prog, opts->progress, "digits-cls", "img", opts->train + opts->test);
    int64_t done = 0, first = 0;
    /* CIFAR-10 splits train over 5 files; the first n % 5 files take one extra record. */
    for (int b = 0; b < 5 && rc == 0; b++) {
        int64_t n = opts->train / 5 + (b < opts->train % 5);
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b + 1);
        rc = write_batch(dir, name, a, opts->seed, 0, first, n, &prog, &done);
        first += n;
    }
    if (rc == 0) rc = write_batch(dir, "test_batch.bin", a, opts->seed, 1, 0, opts->test, &prog, &done);
    if (rc == 0) {
        char meta[128] = "";
        for (int c = 0; c < 10; c++) {
            strcat(meta, class_names[c]);
            strcat(meta, "\n");
        }
        char *path = nd_path_join(dir, "batches.meta.txt");
        rc = path ? nd_file_write_atomic(path, meta, strlen(meta)) : nd_fail(ND_ERR_NOMEM, "out of memory");
        free(path);
    }
    if (rc == 0) nd_progress_finish(&prog, done, NULL);
    gen_assets_free(a);
    free(a);
    return rc;
}
