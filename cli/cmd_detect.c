/* nasdet detect: run a Faster R-CNN model on images; COCO results JSON and drawn pictures. */
#include "cli/cli.h"
#include "cli/cli_det.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "coco/coco.h"
#include "common/cvshim.h"
#include "common/datapath.h"
#include "common/fileio.h"
#include "common/status.h"
#include "detector/frcnn_model.h"

#define DEFAULT_MODEL "models/default.safetensors"

typedef struct strlist {
    char **v;
    int64_t n, cap;
} strlist;

static int list_push(strlist *l, const char *s) {
    if (l->n == l->cap) {
        int64_t nc = l->cap ? 2 * l->cap : 64;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv) return nd_fail(ND_ERR_NOMEM, "out of memory");
        l->v = nv, l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(s))) return nd_fail(ND_ERR_NOMEM, "out of memory");
    l->n++;
    return ND_OK;
}

static void list_free(strlist *l) {
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    static const char *const ext[] = {".jpg", ".jpeg", ".png", ".bmp"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(dot, ext[i]) == 0) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A folder: its image files (by extension), sorted by name; sub-folders are not entered. */
static int add_folder(strlist *l, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return nd_fail(ND_ERR_IO, "%s: cannot open the folder", dir);
    strlist names = {0};
    int rc = ND_OK;
    for (struct dirent *e; rc == 0 && (e = readdir(d));)
        if (e->d_name[0] != '.' && is_image_name(e->d_name)) rc = list_push(&names, e->d_name);
    closedir(d);
    if (names.n) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    for (int64_t i = 0; i < names.n && rc == 0; i++) {
        char *p = nd_path_join(dir, names.v[i]);
        rc = p ? list_push(l, p) : nd_fail(ND_ERR_NOMEM, "out of memory");
        free(p);
    }
    if (rc == 0 && names.n == 0) fprintf(stderr, "nasdet detect: warning: %s: no image files (.jpg .jpeg .png .bmp)\n", dir);
    list_free(&names);
    return rc;
}

/* @list.txt: one path a line; blank lines and lines starting with '#' skipped. */
static int add_list(strlist *l, const char *path) {
    char *text = NULL;
    size_t len = 0;
    int rc = nd_file_read_all(path, &text, &len);
    if (rc) return rc;
    for (char *line = strtok(text, "\r\n"); line && rc == 0; line = strtok(NULL, "\r\n")) {
        while (*line == ' ' || *line == '\t') line++;
        if (*line && *line != '#') rc = nd_path_is_dir(line) ? add_folder(l, line) : list_push(l, line);
    }
    free(text);
    return rc;
}

/* A stable image id without --gt: FNV-1a of the file's base name, in [1, 2^31). */
static int64_t stable_id(const char *path) {
    uint32_t h = 2166136261u;
    for (const char *p = nd_path_basename(path); *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    return (int64_t)(h & 0x7FFFFFFF) | 1;
}

static void class_colour(int32_t k, uint8_t rgb[3]) {
    static const uint8_t pal[10][3] = {{230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200},
                                       {245, 130, 48}, {145, 30, 180}, {70, 240, 240}, {240, 50, 230},
                                       {210, 245, 60}, {250, 190, 190}};
    memcpy(rgb, pal[k % 10], 3);
}

static int draw(nd_image *img, const det_model_config *c, const float *boxes, const float *scores,
                const int32_t *cls, int64_t n) {
    int32_t th = img->width + img->height > 1200 ? 3 : 2;
    double ts = img->width + img->height > 1200 ? 0.8 : 0.45;
    for (int64_t j = n - 1; j >= 0; j--) { /* best last, on top */
        const float *q = boxes + 4 * j;
        uint8_t col[3], white[3] = {255, 255, 255};
        class_colour(cls[j], col);
        int rc = nd_image_draw_rect(img, (int32_t)q[0], (int32_t)q[1], (int32_t)q[2], (int32_t)q[3], col, th);
        char label[160];
        snprintf(label, sizeof label, "%s %.2f", c->class_names[cls[j]], scores[j]);
        int32_t tw, tht, base;
        if (rc == 0) rc = nd_image_text_size(label, ts, 1, &tw, &tht, &base);
        int32_t ty = (int32_t)q[1] - 3 > tht ? (int32_t)q[1] - 3 : (int32_t)q[1] + tht + 3;
        if (rc == 0) rc = nd_image_draw_text(img, label, (int32_t)q[0], ty, ts, white, 1, col);
        if (rc) return rc;
    }
    return ND_OK;
}

/* Output picture name: the input's base name, kept as .jpg/.png, else .png. */
static char *drawn_path(const char *dir, const char *in) {
    const char *base = nd_path_basename(in);
    const char *dot = strrchr(base, '.');
    char name[1024];
    if (dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0))
        snprintf(name, sizeof name, "%s", base);
    else
        snprintf(name, sizeof name, "%.*s.png", dot ? (int)(dot - base) : (int)strlen(base), base);
    return nd_path_join(dir, name);
}

/* --gt: image id of a file by base name. */
static int64_t gt_image_id(const coco_dataset *gt, const char *path) {
    const char *b = nd_path_basename(path);
    for (int64_t i = 0; i < gt->num_images; i++)
        if (strcmp(nd_path_basename(gt->images[i].file_name), b) == 0) return gt->images[i].id;
    return -1;
}

int cli_cmd_detect(int argc, char **argv) {
    const char *model_path = NULL, *out_json = NULL, *out_dir = NULL, *gt_path = NULL, *device = "cpu";
    const char *test_sizes = NULL, *test_fuse = NULL;
    double score_thresh = 0.3, test_small = 0;
    int64_t threads = 0;
    nd_opt opts[] = {
        {"model", ND_OPT_STRING, &model_path, "detector model file (default: the shipped " DEFAULT_MODEL ")", NULL, "FILE"},
        {"score-thresh", ND_OPT_DOUBLE, &score_thresh, "keep detections scoring at least this", NULL, "S"},
        {"test-sizes", ND_OPT_STRING, &test_sizes,
         "extra input sizes (short side) for small objects, or none (default: the model's)", NULL, "LIST"},
        {"test-small", ND_OPT_DOUBLE, &test_small,
         "extra sizes keep objects under this size, in pixels of the base input (0: the model's, else min size / 6)", NULL, "PX"},
        {"test-fuse", ND_OPT_STRING, &test_fuse,
         "fuse the sizes' boxes (weighted box fusion): the base input sees objects of at least MIN px, each extra "
         "size those under MAX px of its own input; none: NMS with --test-small (default: the model's)", NULL, "MIN,MAX"},
        {"out-json", ND_OPT_STRING, &out_json, "write COCO results JSON here", NULL, "FILE"},
        {"out-dir", ND_OPT_STRING, &out_dir, "write pictures with boxes drawn into this folder", NULL, "DIR"},
        {"gt", ND_OPT_STRING, &gt_path, "COCO annotations: image ids by file name (for nasdet eval)", NULL, "ANN.json"},
        {"threads", ND_OPT_INT, &threads, "compute threads (0: all cores)", NULL, "N"},
        {"device", ND_OPT_STRING, &device, "cpu, cuda or cuda:N (GPU N; needs a CUDA=1 build)", NULL, "DEV"},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]);
    nd_args args;
    int code;
    if (cli_parse(argc, argv, "nasdet detect [options] INPUT...",
                  "Find objects in images (files, folders of images, or @list.txt with one path a line)\n"
                  "with a Faster R-CNN model. Prints one line per image and a total; unreadable images are\n"
                  "reported and skipped. `detect --gt ANN.json --out-json r.json` then\n"
                  "`nasdet eval --gt ANN.json --dt r.json` evaluates a model.",
                  opts, nopts, &args, &code))
        return code;
    const char *cmd = argv[0];
    int rc = ND_OK;
    strlist inputs = {0};
    det_model *m = NULL;
    coco_dataset gt = {0};
    nn_ctx *ctx = NULL;
    cJSON *results = NULL;
    int exit_code = CLI_EXIT_OK;
    if (args.npositional == 0) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "no input images (see 'nasdet detect --help')");
        goto done;
    }
    if (!(score_thresh >= 0 && score_thresh <= 1)) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "--score-thresh must be in [0, 1], got %g", score_thresh);
        goto done;
    }
    for (int i = 0; i < args.npositional && rc == 0; i++) {
        const char *in = args.positional[i];
        if (in[0] == '@') rc = add_list(&inputs, in + 1);
        else if (nd_path_is_dir(in)) rc = add_folder(&inputs, in);
        else rc = list_push(&inputs, in);
    }
    if (rc) goto fail;
    char found[4096];
    if (!model_path) {
        if ((rc = nd_data_path(DEFAULT_MODEL, found, sizeof found))) goto fail;
        model_path = found;
    }
    if ((rc = det_model_load(model_path, &m, NULL))) goto fail;
    if ((rc = nn_params_to_device(det_model_params(m), device))) goto fail;
    if (gt_path && (rc = coco_dataset_read(gt_path, &gt))) goto fail;
    if (out_dir && (rc = nd_mkdirs(out_dir))) goto fail;
    if (threads > 0) nn_set_threads((int)threads);
    const det_model_config *c = det_model_cfg(m);
    det_model_config test = *c; /* shallow: only the test fields change */
    if ((exit_code = cli_det_test_passes(cmd, &test, test_sizes, test_small, test_fuse))) goto done;
    /* the model computes every detection the user keeps: down to --score-thresh where that is
     * below its own threshold (fused scores are means over the passes, so a fused box can
     * score under every pass's threshold) */
    if (score_thresh < test.detect.score_thresh) test.detect.score_thresh = (float)score_thresh;
    if ((rc = det_model_config_validate(&test))) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "%s", nd_last_error());
        goto done;
    }
    if (test.test_passes.n_sizes > 0) cli_det_print_passes(stderr, "nasdet detect: ", c->min_size, &test.test_passes);
    ctx = nn_ctx_new_like(det_model_params(m)); /* on the model's device */
    results = cJSON_CreateArray();
    int64_t done_n = 0, skipped = 0, objects = 0;
    double t_all = 0;
    for (int64_t i = 0; i < inputs.n; i++) {
        const char *path = inputs.v[i];
        nd_image img = {0};
        if ((rc = nd_image_read(path, 3, &img))) {
            fprintf(stderr, "nasdet detect: warning: %s; skipped\n", nd_last_error());
            skipped++;
            rc = ND_OK;
            continue;
        }
        int64_t image_id = gt_path ? gt_image_id(&gt, path) : stable_id(path);
        if (gt_path && image_id < 0)
            fprintf(stderr, "nasdet detect: warning: %s: no image named %s in %s; its detections are left out of the JSON\n",
                    path, nd_path_basename(path), gt_path);
        double t0 = nd_time_now();
        det_detections d = {0};
        rc = det_model_detect_image(m, ctx, &test, img.data, img.width, img.height, img.channels, &d);
        if (rc) {
            nd_image_free(&img);
            goto fail;
        }
        double ms = (nd_time_now() - t0) * 1000.0;
        t_all += ms;
        /* thresholded (boxes are in the image's pixels) */
        int64_t kept = 0;
        for (int64_t j = 0; j < d.n; j++) {
            if (d.scores[j] < score_thresh) continue;
            memmove(d.boxes + 4 * kept, d.boxes + 4 * j, 4 * sizeof *d.boxes);
            d.scores[kept] = d.scores[j], d.classes[kept] = d.classes[j];
            kept++;
        }
        if (image_id >= 0)
            for (int64_t j = 0; j < kept; j++) {
                const float *q = d.boxes + 4 * j;
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "image_id", (double)image_id);
                cJSON_AddNumberToObject(e, "category_id", (double)c->category_ids[d.classes[j]]);
                double bb[4] = {round(q[0] * 100) / 100, round(q[1] * 100) / 100, round((q[2] - q[0]) * 100) / 100,
                                round((q[3] - q[1]) * 100) / 100};
                cJSON_AddItemToObject(e, "bbox", cJSON_CreateDoubleArray(bb, 4));
                cJSON_AddNumberToObject(e, "score", round(d.scores[j] * 1e5) / 1e5);
                cJSON_AddItemToArray(results, e);
            }
        if (out_dir) {
            char *op = drawn_path(out_dir, path);
            rc = op ? draw(&img, c, d.boxes, d.scores, d.classes, kept) : nd_fail(ND_ERR_NOMEM, "out of memory");
            if (rc == 0) rc = nd_image_write(op, &img, 92);
            free(op);
        }
        printf("%s: %lld object%s, %.1f ms\n", path, (long long)kept, kept == 1 ? "" : "s", ms);
        objects += kept, done_n++;
        det_detections_free(&d);
        nd_image_free(&img);
        if (rc) goto fail;
    }
    printf("detect: %lld image%s, %lld object%s, %.1f ms/image%s", (long long)done_n, done_n == 1 ? "" : "s",
           (long long)objects, objects == 1 ? "" : "s", done_n ? t_all / (double)done_n : 0.0,
           skipped ? "" : "\n");
    if (skipped) printf(", %lld unreadable skipped\n", (long long)skipped);
    if (out_json) {
        char *text = cJSON_Print(results);
        rc = text ? nd_file_write_atomic(out_json, text, strlen(text)) : nd_fail(ND_ERR_NOMEM, "out of memory");
        free(text);
        if (rc) goto fail;
    }
    if (done_n == 0) exit_code = cli_error(cmd, CLI_EXIT_FAIL, "no image could be read");
    goto done;
fail:
    exit_code = cli_fail(cmd);
done:
    cJSON_Delete(results);
    nn_ctx_free(ctx);
    coco_dataset_free(&gt);
    det_model_free(m);
    list_free(&inputs);
    nd_args_free(&args);
    return exit_code;
}
