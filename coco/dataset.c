/* COCO instances JSON -> coco_dataset. The cJSON tree never leaves this file: parse, validate
 * and copy into our structs, delete. Every message names the file, the JSON path and what was
 * expected, since these files are hand-edited and converted by scripts of every quality. */
#include "coco/coco.h"

#include "common/fileio.h"
#include "common/status.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctx {
    const char *name;
    char path[96]; /* JSON path of the value being read, e.g. "annotations[17].bbox" */
} ctx;

static const char *kind_of(const cJSON *v) {
    if (!v) return "nothing (the key is missing)";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

static int expected(const ctx *c, const char *what, const cJSON *got) {
    return nd_fail(ND_ERR_FORMAT, "%s: %s: expected %s, got %s", c->name, c->path, what, kind_of(got));
}

static void at(ctx *c, const char *array, int64_t i, const char *key) {
    snprintf(c->path, sizeof c->path, "%s[%lld]%s%s", array, (long long)i, key ? "." : "", key ? key : "");
}

/* An integer id: a JSON number with no fraction, exactly representable in a double. */
static int get_int(ctx *c, const cJSON *obj, const char *array, int64_t i, const char *key, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    at(c, array, i, key);
    if (!cJSON_IsNumber(v)) return expected(c, "an integer", v);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
        return nd_fail(ND_ERR_FORMAT, "%s: %s: expected an integer, got %.17g", c->name, c->path, d);
    *out = (int64_t)d;
    return ND_OK;
}

static int get_string(ctx *c, const cJSON *obj, const char *array, int64_t i, const char *key, int optional,
                      char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    at(c, array, i, key);
    if (!v && optional) v = NULL;
    else if (!cJSON_IsString(v) || !v->valuestring) return expected(c, "a string", v);
    *out = strdup(v ? v->valuestring : "");
    return *out ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory");
}

static int cmp_pair(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* Sorted (id, position) pairs; a repeated id fails naming both places. */
static int sorted_ids(ctx *c, const char *array, int64_t n, const int64_t *ids, int64_t **pairs_out) {
    int64_t *pairs = malloc((size_t)(n > 0 ? n : 1) * 2 * sizeof *pairs);
    if (!pairs) return nd_fail(ND_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) pairs[2 * i] = ids[i], pairs[2 * i + 1] = i;
    qsort(pairs, (size_t)n, 2 * sizeof *pairs, cmp_pair);
    for (int64_t i = 1; i < n; i++)
        if (pairs[2 * i] == pairs[2 * i - 2]) {
            at(c, array, pairs[2 * i + 1], "id");
            int rc = nd_fail(ND_ERR_FORMAT, "%s: %s: id %lld is used twice (also %s[%lld]); ids must be unique",
                             c->name, c->path, (long long)pairs[2 * i], array, (long long)pairs[2 * i - 1]);
            free(pairs);
            return rc;
        }
    *pairs_out = pairs;
    return ND_OK;
}

static int64_t find_sorted(const int64_t *ids, const int64_t *pos, int64_t n, int64_t id) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && ids[lo] == id ? pos[lo] : -1;
}

static int cmp_category(const void *a, const void *b) {
    const coco_category *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static int parse_categories(ctx *c, const cJSON *arr, coco_dataset *ds) {
    int64_t n = cJSON_GetArraySize(arr);
    if (n > 1000000) return nd_fail(ND_ERR_FORMAT, "%s: categories: %lld categories, expected at most 1e6", c->name, (long long)n);
    ds->categories = calloc((size_t)(n > 0 ? n : 1), sizeof *ds->categories);
    if (!ds->categories) return nd_fail(ND_ERR_NOMEM, "out of memory");
    int64_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        coco_category *cat = &ds->categories[i];
        if (!cJSON_IsObject(v)) {
            at(c, "categories", i, NULL);
            return expected(c, "an object", v);
        }
        int rc = get_int(c, v, "categories", i, "id", &cat->id);
        ds->num_classes = (int32_t)(i + 1); /* so that coco_dataset_free releases the names */
        if (!rc) rc = get_string(c, v, "categories", i, "name", 0, &cat->name);
        if (!rc) rc = get_string(c, v, "categories", i, "supercategory", 1, &cat->supercategory);
        if (rc) return rc;
        i++;
    }
    int64_t *ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids), *pairs = NULL;
    if (!ids) return nd_fail(ND_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; k < n; k++) ids[k] = ds->categories[k].id;
    int rc = sorted_ids(c, "categories", n, ids, &pairs);
    free(ids);
    free(pairs);
    if (rc) return rc;
    /* Class index k is the k-th category by id: the reversible map the models use. */
    qsort(ds->categories, (size_t)n, sizeof *ds->categories, cmp_category);
    return ND_OK;
}

static int parse_images(ctx *c, const cJSON *arr, coco_dataset *ds) {
    int64_t n = cJSON_GetArraySize(arr);
    ds->images = calloc((size_t)(n > 0 ? n : 1), sizeof *ds->images);
    int64_t *ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    if (!ds->images || !ids) {
        free(ids);
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    int64_t i = 0;
    const cJSON *v;
    int rc = ND_OK;
    cJSON_ArrayForEach(v, arr) {
        coco_image *im = &ds->images[i];
        ds->num_images = i + 1;
        int64_t w = 0, h = 0;
        if (!cJSON_IsObject(v)) {
            at(c, "images", i, NULL);
            rc = expected(c, "an object", v);
        }
        if (!rc) rc = get_int(c, v, "images", i, "id", &im->id);
        if (!rc) rc = get_int(c, v, "images", i, "width", &w);
        if (!rc && (w <= 0 || w > 1000000))
            rc = nd_fail(ND_ERR_FORMAT, "%s: %s: expected a width of 1..1000000 pixels, got %lld", c->name, c->path,
                         (long long)w);
        if (!rc) rc = get_int(c, v, "images", i, "height", &h);
        if (!rc && (h <= 0 || h > 1000000))
            rc = nd_fail(ND_ERR_FORMAT, "%s: %s: expected a height of 1..1000000 pixels, got %lld", c->name, c->path,
                         (long long)h);
        if (!rc) rc = get_string(c, v, "images", i, "file_name", 0, &im->file_name);
        if (rc) break;
        im->width = (int32_t)w, im->height = (int32_t)h;
        ids[i++] = im->id;
    }
    int64_t *pairs = NULL;
    if (!rc) rc = sorted_ids(c, "images", n, ids, &pairs);
    free(ids);
    if (rc) return rc;
    ds->image_ids_sorted = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    ds->image_pos_sorted = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (!ds->image_ids_sorted || !ds->image_pos_sorted) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; !rc && k < n; k++) ds->image_ids_sorted[k] = pairs[2 * k], ds->image_pos_sorted[k] = pairs[2 * k + 1];
    free(pairs);
    return rc;
}

static int parse_bbox(ctx *c, const cJSON *obj, int64_t i, double bbox[4]) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, "bbox");
    at(c, "annotations", i, "bbox");
    if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) != 4) {
        if (cJSON_IsArray(b))
            return nd_fail(ND_ERR_FORMAT, "%s: %s: expected an array of 4 numbers [x, y, width, height], got %d items",
                           c->name, c->path, cJSON_GetArraySize(b));
        return expected(c, "an array of 4 numbers [x, y, width, height]", b);
    }
    int k = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, b) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e9) {
            at(c, "annotations", i, NULL);
            char p[96];
            snprintf(p, sizeof p, "%s.bbox[%d]", c->path, k);
            snprintf(c->path, sizeof c->path, "%s", p);
            return cJSON_IsNumber(v) ? nd_fail(ND_ERR_FORMAT, "%s: %s: expected a finite coordinate, got %g", c->name,
                                               c->path, v->valuedouble)
                                     : expected(c, "a number", v);
        }
        bbox[k++] = v->valuedouble;
    }
    if (bbox[2] < 0 || bbox[3] < 0)
        return nd_fail(ND_ERR_FORMAT, "%s: %s: expected width and height >= 0, got %g x %g", c->name, c->path, bbox[2],
                       bbox[3]);
    return ND_OK;
}

static int parse_annotations(ctx *c, const cJSON *arr, coco_dataset *ds) {
    int64_t n = cJSON_GetArraySize(arr);
    ds->anns = calloc((size_t)(n > 0 ? n : 1), sizeof *ds->anns);
    int64_t *ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    if (!ds->anns || !ids) {
        free(ids);
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    int64_t i = 0;
    const cJSON *v;
    int rc = ND_OK;
    cJSON_ArrayForEach(v, arr) {
        coco_ann *an = &ds->anns[i];
        if (!cJSON_IsObject(v)) {
            at(c, "annotations", i, NULL);
            rc = expected(c, "an object", v);
            break;
        }
        if ((rc = get_int(c, v, "annotations", i, "id", &an->id))) break;
        if ((rc = get_int(c, v, "annotations", i, "image_id", &an->image_id))) break;
        an->image_index = coco_dataset_find_image(ds, an->image_id);
        if (an->image_index < 0) {
            rc = nd_fail(ND_ERR_NOT_FOUND, "%s: %s: image id %lld is not in \"images\"", c->name, c->path,
                         (long long)an->image_id);
            break;
        }
        if ((rc = get_int(c, v, "annotations", i, "category_id", &an->category_id))) break;
        an->class_index = coco_category_to_class(ds, an->category_id);
        if (an->class_index < 0) {
            rc = nd_fail(ND_ERR_NOT_FOUND, "%s: %s: category id %lld is not in \"categories\"", c->name, c->path,
                         (long long)an->category_id);
            break;
        }
        if ((rc = parse_bbox(c, v, i, an->bbox))) break;
        const cJSON *area = cJSON_GetObjectItemCaseSensitive(v, "area");
        at(c, "annotations", i, "area");
        if (!area) an->area = an->bbox[2] * an->bbox[3];
        else if (!cJSON_IsNumber(area) || !isfinite(area->valuedouble) || area->valuedouble < 0) {
            rc = cJSON_IsNumber(area) ? nd_fail(ND_ERR_FORMAT, "%s: %s: expected a finite area >= 0, got %g", c->name,
                                                c->path, area->valuedouble)
                                      : expected(c, "a number", area);
            break;
        } else an->area = area->valuedouble;
        const cJSON *crowd = cJSON_GetObjectItemCaseSensitive(v, "iscrowd");
        at(c, "annotations", i, "iscrowd");
        if (crowd && !(cJSON_IsNumber(crowd) && (crowd->valuedouble == 0 || crowd->valuedouble == 1))) {
            rc = cJSON_IsNumber(crowd)
                     ? nd_fail(ND_ERR_FORMAT, "%s: %s: expected 0 or 1, got %g", c->name, c->path, crowd->valuedouble)
                     : expected(c, "0 or 1", crowd);
            break;
        }
        an->iscrowd = crowd ? (int32_t)crowd->valuedouble : 0;
        ids[i++] = an->id;
    }
    ds->num_anns = i;
    int64_t *pairs = NULL;
    if (!rc) rc = sorted_ids(c, "annotations", n, ids, &pairs);
    free(ids);
    free(pairs);
    return rc;
}

/* Group annotation indices by image (counting sort: stable, so file order within an image). */
static int build_index(coco_dataset *ds) {
    ds->ann_index = malloc((size_t)(ds->num_anns > 0 ? ds->num_anns : 1) * sizeof *ds->ann_index);
    if (!ds->ann_index) return nd_fail(ND_ERR_NOMEM, "out of memory");
    for (int64_t a = 0; a < ds->num_anns; a++) ds->images[ds->anns[a].image_index].ann_count++;
    int64_t start = 0;
    for (int64_t i = 0; i < ds->num_images; i++) {
        ds->images[i].ann_first = start;
        start += ds->images[i].ann_count;
        ds->images[i].ann_count = 0;
    }
    for (int64_t a = 0; a < ds->num_anns; a++) {
        coco_image *im = &ds->images[ds->anns[a].image_index];
        ds->ann_index[im->ann_first + im->ann_count++] = a;
    }
    return ND_OK;
}

static int required_array(ctx *c, const cJSON *root, const char *key, int optional, const cJSON **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = v;
    snprintf(c->path, sizeof c->path, "%s", key);
    if (!v && optional) return ND_OK;
    return cJSON_IsArray(v) ? ND_OK : expected(c, "an array", v);
}

/* Whether the text ends with an object, array or string still open: the mark of a truncated
 * file, which deserves saying so rather than only where the parser stopped. */
static int ends_open(const char *json, size_t len) {
    int64_t depth = 0;
    int in_string = 0;
    for (size_t k = 0; k < len; k++) {
        char ch = json[k];
        if (in_string) {
            if (ch == '\\') k++;
            else if (ch == '"') in_string = 0;
        } else if (ch == '"') in_string = 1;
        else if (ch == '{' || ch == '[') depth++;
        else if (ch == '}' || ch == ']') depth--;
    }
    return in_string || depth > 0;
}

int coco_dataset_parse(const char *json, size_t len, const char *name, coco_dataset *out) {
    memset(out, 0, sizeof *out);
    ctx c = {name ? name : "<memory>", ""};
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        /* Line and column of where cJSON gave up: usually the truncation point. */
        size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0, line = 1, col = 1;
        for (size_t k = 0; k < off; k++) {
            if (json[k] == '\n') line++, col = 1;
            else col++;
        }
        return nd_fail(ND_ERR_FORMAT, "%s: not valid JSON: parse error at line %zu, column %zu (byte %zu of %zu)%s",
                       c.name, line, col, off, len,
                       ends_open(json, len) ? ": the file ends early, inside an object, array or string (truncated?)"
                                            : "");
    }
    int rc = ND_OK;
    const cJSON *images, *anns, *cats;
    if (!cJSON_IsObject(root)) {
        snprintf(c.path, sizeof c.path, "(top level)");
        rc = expected(&c, "an object with \"images\", \"annotations\" and \"categories\"", root);
    }
    if (!rc) rc = required_array(&c, root, "images", 0, &images);
    if (!rc) rc = required_array(&c, root, "annotations", 1, &anns);
    if (!rc) rc = required_array(&c, root, "categories", 0, &cats);
    if (!rc) rc = parse_categories(&c, cats, out);
    if (!rc) rc = parse_images(&c, images, out);
    if (!rc && anns) rc = parse_annotations(&c, anns, out);
    if (!rc) rc = build_index(out);
    cJSON_Delete(root);
    if (rc) coco_dataset_free(out);
    return rc;
}

int coco_dataset_read(const char *path, coco_dataset *out) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    int rc = nd_file_read_all(path, &text, &len);
    if (rc) return rc;
    rc = coco_dataset_parse(text, len, path, out);
    free(text);
    return rc;
}

void coco_dataset_free(coco_dataset *ds) {
    if (!ds) return;
    for (int64_t i = 0; ds->images && i < ds->num_images; i++) free(ds->images[i].file_name);
    for (int32_t k = 0; ds->categories && k < ds->num_classes; k++) {
        free(ds->categories[k].name);
        free(ds->categories[k].supercategory);
    }
    free(ds->images);
    free(ds->anns);
    free(ds->categories);
    free(ds->ann_index);
    free(ds->image_ids_sorted);
    free(ds->image_pos_sorted);
    memset(ds, 0, sizeof *ds);
}

int64_t coco_dataset_find_image(const coco_dataset *ds, int64_t image_id) {
    if (!ds->image_ids_sorted) return -1;
    return find_sorted(ds->image_ids_sorted, ds->image_pos_sorted, ds->num_images, image_id);
}

int32_t coco_category_to_class(const coco_dataset *ds, int64_t category_id) {
    int32_t lo = 0, hi = ds->num_classes;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (ds->categories[mid].id < category_id) lo = mid + 1;
        else hi = mid;
    }
    return lo < ds->num_classes && ds->categories[lo].id == category_id ? lo : -1;
}

int64_t coco_class_to_category(const coco_dataset *ds, int32_t class_index) {
    return class_index >= 0 && class_index < ds->num_classes ? ds->categories[class_index].id : -1;
}
