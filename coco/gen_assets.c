/* The real material behind the demo data: 5000 handwritten digits and 20 photographs. */
#include "coco/gen_internal.h"

#include "common/datapath.h"
#include "common/fileio.h"
#include "common/status.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot &&
           (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
            !strcasecmp(dot, ".bmp"));
}

/* Photos are listed and sorted by name so that a seed picks the same photo on every machine,
 * whatever order the file system returns. */
static int load_photos(gen_assets *a, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return nd_fail(ND_ERR_IO, "%s: cannot open the photo folder", dir);
    char **names = NULL;
    int32_t n = 0, cap = 0;
    int rc = ND_OK;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_image_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **grown = realloc(names, (size_t)cap * sizeof *names);
            if (!grown) { rc = nd_fail(ND_ERR_NOMEM, "out of memory listing %s", dir); break; }
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) { rc = nd_fail(ND_ERR_NOMEM, "out of memory"); break; }
        n++;
    }
    closedir(d);
    if (rc == ND_OK && n == 0) rc = nd_fail(ND_ERR_NOT_FOUND, "%s: no photographs (.jpg/.png) found", dir);
    if (rc == ND_OK) {
        qsort(names, (size_t)n, sizeof *names, cmp_str);
        a->photos = calloc((size_t)n, sizeof *a->photos);
        if (!a->photos) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    for (int32_t i = 0; rc == ND_OK && i < n; i++) {
        char *path = nd_path_join(dir, names[i]);
        rc = path ? nd_image_read(path, 3, &a->photos[i]) : nd_fail(ND_ERR_NOMEM, "out of memory");
        free(path);
        if (rc == ND_OK && (a->photos[i].width < 64 || a->photos[i].height < 64))
            rc = nd_fail(ND_ERR_FORMAT, "%s/%s: a background photo must be at least 64x64", dir, names[i]);
        if (rc == ND_OK) a->nphotos = i + 1;
    }
    for (int32_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static void find_ink(gen_assets *a) {
    for (int32_t cell = 0; cell < 10 * GEN_PER_CLASS; cell++) {
        int32_t ox = (cell % GEN_CELLS_PER_ROW) * GEN_CELL, oy = (cell / GEN_CELLS_PER_ROW) * GEN_CELL;
        int32_t x0 = GEN_CELL, y0 = GEN_CELL, x1 = -1, y1 = -1;
        for (int32_t y = 0; y < GEN_CELL; y++)
            for (int32_t x = 0; x < GEN_CELL; x++)
                if (a->digits.data[(size_t)(oy + y) * (size_t)a->digits.width + (size_t)(ox + x)] >= 90) {
                    if (x < x0) x0 = x;
                    if (x > x1) x1 = x;
                    if (y < y0) y0 = y;
                    if (y > y1) y1 = y;
                }
        if (x1 < 0) x0 = y0 = 0, x1 = y1 = GEN_CELL - 1; /* no ink: use the whole cell */
        a->ink[cell][0] = (uint8_t)x0, a->ink[cell][1] = (uint8_t)y0;
        a->ink[cell][2] = (uint8_t)x1, a->ink[cell][3] = (uint8_t)y1;
    }
}

int gen_assets_load(gen_assets *a) {
    memset(a, 0, sizeof *a);
    char path[PATH_MAX];
    int rc = nd_data_path("data/digits.png", path, sizeof path);
    if (rc) return rc;
    if ((rc = nd_image_read(path, 1, &a->digits))) return rc;
    if (a->digits.width != GEN_CELL * GEN_CELLS_PER_ROW || a->digits.height != GEN_CELL * 10 * GEN_ROWS_PER_CLASS) {
        rc = nd_fail(ND_ERR_FORMAT, "%s: expected 2000x1000 pixels (5000 digits of 20x20), got %dx%d", path,
                     a->digits.width, a->digits.height);
        gen_assets_free(a);
        return rc;
    }
    find_ink(a);
    if ((rc = nd_data_path("data/photos", path, sizeof path)) || (rc = load_photos(a, path))) gen_assets_free(a);
    return rc;
}

void gen_assets_free(gen_assets *a) {
    if (!a) return;
    nd_image_free(&a->digits);
    for (int32_t i = 0; i < a->nphotos; i++) nd_image_free(&a->photos[i]);
    free(a->photos);
    a->photos = NULL;
    a->nphotos = 0;
}

int32_t gen_pick_cell(nd_rng *rng, int32_t cls, int split) {
    int32_t k = split == 0 ? (int32_t)nd_rng_below(rng, GEN_TRAIN_PER_CLASS)
                           : GEN_TRAIN_PER_CLASS + (int32_t)nd_rng_below(rng, GEN_PER_CLASS - GEN_TRAIN_PER_CLASS);
    /* Position k within the class runs along its 5 rows: row k / 100, column k % 100. */
    return cls * GEN_PER_CLASS + k;
}
