/* nasdet data digits-det: a COCO-format detection set of real digits over real photographs. */
#include "coco/coco.h"
#include "coco/gen_internal.h"

#include "common/fileio.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/status.h"

#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DIGITS = 8 };

typedef struct det_box {
    int32_t cls;
    int32_t x, y, w, h; /* tight ink box, pixels */
} det_box;

typedef struct det_result {
    int32_t n;
    det_box box[MAX_DIGITS];
    int rc; /* status of writing the JPEG */
} det_result;

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

static double iou(const double a[4], const double b[4]) {
    double iw = fmin(a[2], b[2]) - fmax(a[0], b[0]), ih = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (iw <= 0 || ih <= 0) return 0;
    double inter = iw * ih;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/* Paint one image into `rgb` (size x size x 3) and list its digits. Depends only on
 * (seed, split, index). */
static void render(const gen_assets *a, uint64_t seed, int split, int64_t index, int32_t size, float *px,
                   uint8_t *rgb, det_result *res) {
    nd_rng rng;
    nd_rng_seed_stream(&rng, seed ^ 0xD37EC7ull, ((uint64_t)(split + 1) << 40) + (uint64_t)index);
    gen_canvas cv = {size, size, px};
    gen_background(&cv, a, &rng, 0.3, 1.0);

    /* Clutter that is not a digit: strokes a detector must learn to ignore. */
    for (int s = (int)nd_rng_below(&rng, 4); s > 0; s--) {
        double x0 = nd_rng_range(&rng, 0, size), y0 = nd_rng_range(&rng, 0, size);
        double ang = nd_rng_range(&rng, 0, 2 * M_PI), len = nd_rng_range(&rng, 10, size * 0.3);
        float bg[3], col[3];
        gen_mean_colour(&cv, 0, 0, size, size, bg);
        gen_contrast_colour(&rng, bg, nd_rng_range(&rng, 40, 150), col);
        double width = nd_rng_range(&rng, 1, 4); /* one draw per statement: argument order is unspecified */
        float opacity = (float)nd_rng_range(&rng, 0.6, 1.0);
        gen_stroke(&cv, x0, y0, x0 + len * cos(ang), y0 + len * sin(ang), width, col, opacity);
    }

    /* Ink 12 to 120 px (at size 320): the drawn height starts at 13 because the tight box of
     * pixels with coverage >= 0.35 is about a pixel smaller than the glyph's nominal height. */
    double hmax = fmin(120.0, size * 0.375), hmin = fmin(13.0, hmax);
    int32_t want = 1 + (int32_t)nd_rng_below(&rng, MAX_DIGITS);
    double placed[MAX_DIGITS][4];
    res->n = 0;
    for (int32_t d = 0; d < want; d++) {
        int32_t cls = (int32_t)nd_rng_below(&rng, 10), cell = gen_pick_cell(&rng, cls, split);
        gen_glyph g;
        double bounds[4];
        int ok = 0;
        /* Rejection sampling: fully inside the image, overlapping earlier digits by at most
         * IoU 0.3 (so some digits partly cover others, none hides another). */
        for (int attempt = 0; attempt < 40 && !ok; attempt++) {
            g.height = hmin * pow(hmax / hmin, nd_rng_uniform(&rng)); /* log-uniform: many small */
            g.aspect = nd_rng_range(&rng, 0.8, 1.2);
            g.angle = clampd(0.15 * nd_rng_normal(&rng), -0.4, 0.4);
            g.shear = nd_rng_range(&rng, -0.15, 0.15);
            g.cx = nd_rng_range(&rng, 0, size);
            g.cy = nd_rng_range(&rng, 0, size);
            gen_glyph_bounds(a, cell, &g, bounds);
            ok = bounds[0] >= 1 && bounds[1] >= 1 && bounds[2] <= size - 1 && bounds[3] <= size - 1 &&
                 bounds[2] - bounds[0] <= hmax && bounds[3] - bounds[1] <= hmax;
            for (int32_t k = 0; ok && k < res->n; k++) ok = iou(bounds, placed[k]) <= 0.3;
        }
        if (!ok) continue;
        float bg[3];
        gen_mean_colour(&cv, (int32_t)bounds[0], (int32_t)bounds[1], (int32_t)bounds[2] + 1, (int32_t)bounds[3] + 1,
                        bg);
        double contrast = nd_rng_uniform(&rng) < 0.1 ? nd_rng_range(&rng, 40, 70) : nd_rng_range(&rng, 70, 180);
        gen_contrast_colour(&rng, bg, contrast, g.rgb);
        g.opacity = (float)nd_rng_range(&rng, 0.85, 1.0);
        int32_t ink[4];
        if (!gen_paste_digit(&cv, a, cell, &g, ink)) continue;
        memcpy(placed[res->n], bounds, sizeof bounds);
        det_box *b = &res->box[res->n++];
        b->cls = cls;
        b->x = ink[0], b->y = ink[1], b->w = ink[2] - ink[0] + 1, b->h = ink[3] - ink[1] + 1;
    }
    if (nd_rng_uniform(&rng) < 0.2) gen_blur(&cv);
    gen_quantize(&cv, &rng, nd_rng_range(&rng, 1, 6), rgb);
}

/* Image files are written plainly (not one fsync each: thousands would dominate the run);
 * the annotation file, written last and atomically, is what makes a set complete. */
static int write_jpeg(const char *path, int32_t size, uint8_t *rgb) {
    nd_image img = {size, size, 3, rgb};
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = nd_image_encode(&img, ".jpg", 90, &buf, &len);
    if (rc) return nd_fail_context(rc, "%s: ", path);
    FILE *fp = fopen(path, "wb");
    if (!fp) rc = nd_fail(ND_ERR_IO, "%s: cannot create the image file", path);
    else {
        if (fwrite(buf, 1, len, fp) != len) rc = nd_fail(ND_ERR_IO, "%s: write failed (disk full?)", path);
        if (fclose(fp) != 0 && rc == 0) rc = nd_fail(ND_ERR_IO, "%s: write failed (disk full?)", path);
    }
    free(buf);
    return rc;
}

static int add_number(cJSON *obj, const char *key, double v) {
    return cJSON_AddNumberToObject(obj, key, v) != NULL;
}

static cJSON *build_json(const char *split_name, int64_t n, int32_t size, const det_result *res, uint64_t seed) {
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    cJSON *info = ok ? cJSON_AddObjectToObject(root, "info") : NULL;
    if (info) {
        char desc[160];
        snprintf(desc, sizeof desc, "nasdet digits-det %s split, seed %llu: real handwritten digits over photographs",
                 split_name, (unsigned long long)seed);
        ok = cJSON_AddStringToObject(info, "description", desc) && cJSON_AddStringToObject(info, "version", "1.0");
    }
    ok = ok && info && cJSON_AddArrayToObject(root, "licenses");
    cJSON *images = ok ? cJSON_AddArrayToObject(root, "images") : NULL;
    cJSON *anns = images ? cJSON_AddArrayToObject(root, "annotations") : NULL;
    cJSON *cats = anns ? cJSON_AddArrayToObject(root, "categories") : NULL;
    ok = cats != NULL;
    int64_t ann_id = 1;
    for (int64_t i = 0; ok && i < n; i++) {
        cJSON *im = cJSON_CreateObject();
        char file[32];
        snprintf(file, sizeof file, "%06lld.jpg", (long long)(i + 1));
        ok = im && cJSON_AddItemToArray(images, im) && add_number(im, "id", (double)(i + 1)) &&
             cJSON_AddStringToObject(im, "file_name", file) && add_number(im, "width", size) &&
             add_number(im, "height", size);
        for (int32_t k = 0; ok && k < res[i].n; k++) {
            const det_box *b = &res[i].box[k];
            cJSON *an = cJSON_CreateObject();
            double bbox[4] = {b->x, b->y, b->w, b->h};
            cJSON *arr = cJSON_CreateDoubleArray(bbox, 4);
            ok = an && cJSON_AddItemToArray(anns, an) && add_number(an, "id", (double)ann_id++) &&
                 add_number(an, "image_id", (double)(i + 1)) && add_number(an, "category_id", b->cls + 1) &&
                 arr && cJSON_AddItemToObject(an, "bbox", arr) && add_number(an, "area", (double)b->w * b->h) &&
                 add_number(an, "iscrowd", 0);
        }
    }
    for (int c = 0; ok && c < 10; c++) {
        cJSON *cat = cJSON_CreateObject();
        char name[2] = {(char)('0' + c), 0};
        ok = cat && cJSON_AddItemToArray(cats, cat) && add_number(cat, "id", c + 1) &&
             cJSON_AddStringToObject(cat, "name", name) && cJSON_AddStringToObject(cat, "supercategory", "digit");
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static int gen_split(const char *dir, const char *split_name, int split, int64_t n, const gen_assets *a,
                     const coco_gen_opts *opts, nd_progress *prog, int64_t *done) {
    char *folder = nd_path_join(dir, split_name);
    det_result *res = calloc((size_t)n, sizeof *res);
    int rc = folder && res ? nd_mkdirs(folder) : nd_fail(ND_ERR_NOMEM, "out of memory");
    int32_t size = opts->size;
    if (rc == 0) {
#pragma omp parallel
        {
            float *px = malloc((size_t)size * (size_t)size * 3 * sizeof *px);
            uint8_t *rgb = malloc((size_t)size * (size_t)size * 3);
            char path[4096];
#pragma omp for schedule(dynamic, 4)
            for (int64_t i = 0; i < n; i++) {
                if (!px || !rgb) {
                    res[i].rc = nd_fail(ND_ERR_NOMEM, "out of memory for a %dx%d image", size, size);
                    continue;
                }
                render(a, opts->seed, split, i, size, px, rgb, &res[i]);
                snprintf(path, sizeof path, "%s/%06lld.jpg", folder, (long long)(i + 1));
                res[i].rc = write_jpeg(path, size, rgb);
                if (res[i].rc) {
                    /* Statuses and messages are per thread: log it here, report it below. */
                    nd_log(ND_LOG_ERROR, "%s", nd_last_error());
                }
                int64_t d;
#pragma omp atomic capture
                d = ++*done;
                if (omp_get_thread_num() == 0) nd_progress_update(prog, d, NULL);
            }
            free(px);
            free(rgb);
        }
        for (int64_t i = 0; i < n && rc == 0; i++)
            if (res[i].rc) rc = nd_fail(res[i].rc, "%s/%06lld.jpg: could not be written (%s)", folder,
                                        (long long)(i + 1), nd_status_name(res[i].rc));
    }
    if (rc == 0) {
        cJSON *root = build_json(split_name, n, size, res, opts->seed);
        char *text = root ? cJSON_PrintUnformatted(root) : NULL;
        cJSON_Delete(root);
        char name[64];
        snprintf(name, sizeof name, "annotations/instances_%s.json", split_name);
        char *path = nd_path_join(dir, name);
        if (!text || !path) rc = nd_fail(ND_ERR_NOMEM, "out of memory writing %s", name);
        else rc = nd_file_write_atomic(path, text, strlen(text));
        free(path);
        free(text);
    }
    free(res);
    free(folder);
    return rc;
}

int coco_gen_digits_det(const char *dir, const coco_gen_opts *opts) {
    if (opts->train < 1 || opts->test < 1 || opts->train > 1000000 || opts->test > 1000000)
        return nd_fail(ND_ERR_INVALID, "digits-det: need 1 <= train, val <= 1e6 (got %lld, %lld)",
                       (long long)opts->train, (long long)opts->test);
    if (opts->size < 64 || opts->size > 4096)
        return nd_fail(ND_ERR_INVALID, "digits-det: size must be 64..4096 pixels, got %d", opts->size);
    char *ann_dir = nd_path_join(dir, "annotations");
    int rc = ann_dir ? nd_mkdirs(ann_dir) : nd_fail(ND_ERR_NOMEM, "out of memory");
    free(ann_dir);
    if (rc) return rc;
    gen_assets *a = malloc(sizeof *a);
    if (!a) return nd_fail(ND_ERR_NOMEM, "out of memory");
    if ((rc = gen_assets_load(a))) {
        free(a);
        return rc;
    }
    nd_progress prog;
    nd_progress_init(&prog, opts->progress, "digits-det", "img", opts->train + opts->test);
    int64_t done = 0;
    rc = gen_split(dir, "train", 0, opts->train, a, opts, &prog, &done);
    if (rc == 0) rc = gen_split(dir, "val", 1, opts->test, a, opts, &prog, &done);
    if (rc == 0) nd_progress_finish(&prog, done, NULL);
    gen_assets_free(a);
    free(a);
    return rc;
}
