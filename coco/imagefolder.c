/* ImageNet-style folders: ROOT/<class name>/<image file>. Sorting class names and file names
 * makes class indices and sample order the same on every machine. */
#include "coco/coco.h"

#include "common/fileio.h"
#include "common/status.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct names {
    char **v;
    int64_t n, cap;
} names;

static int names_push(names *l, const char *s) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 64;
        char **grown = realloc(l->v, (size_t)cap * sizeof *grown);
        if (!grown) return nd_fail(ND_ERR_NOMEM, "out of memory");
        l->v = grown, l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return nd_fail(ND_ERR_NOMEM, "out of memory");
    l->n++;
    return ND_OK;
}

static void names_free(names *l) {
    for (int64_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int is_image(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
                   !strcasecmp(dot, ".bmp"));
}

/* Entries of `dir` (hidden ones skipped) that are folders (want_dirs) or image files, sorted. */
static int list(const char *dir, int want_dirs, names *out) {
    DIR *d = opendir(dir);
    if (!d) return nd_fail(ND_ERR_IO, "%s: cannot open the folder", dir);
    int rc = ND_OK;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char *full = nd_path_join(dir, e->d_name);
        if (!full) {
            rc = nd_fail(ND_ERR_NOMEM, "out of memory");
            break;
        }
        int isdir = nd_path_is_dir(full);
        free(full);
        if (want_dirs ? isdir : (!isdir && is_image(e->d_name))) rc = names_push(out, e->d_name);
    }
    closedir(d);
    if (rc == 0 && out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return rc;
}

int coco_imagefolder_read(const char *root, coco_imagefolder *out) {
    memset(out, 0, sizeof *out);
    if (!nd_path_is_dir(root)) return nd_fail(ND_ERR_NOT_FOUND, "%s: not a folder (expected ROOT/<class>/<image>)", root);
    names classes = {0}, paths = {0};
    int32_t *labels = NULL;
    int rc = list(root, 1, &classes);
    if (rc == 0 && classes.n == 0)
        rc = nd_fail(ND_ERR_NOT_FOUND, "%s: no class sub-folders (expected ROOT/<class>/<image>)", root);
    if (rc == 0 && classes.n > INT32_MAX / 2) rc = nd_fail(ND_ERR_INVALID, "%s: too many class folders", root);
    for (int64_t k = 0; rc == 0 && k < classes.n; k++) {
        char *dir = nd_path_join(root, classes.v[k]);
        names files = {0};
        rc = dir ? list(dir, 0, &files) : nd_fail(ND_ERR_NOMEM, "out of memory");
        int64_t base = paths.n;
        for (int64_t i = 0; rc == 0 && i < files.n; i++) {
            char *p = nd_path_join(dir, files.v[i]);
            rc = p ? names_push(&paths, p) : nd_fail(ND_ERR_NOMEM, "out of memory");
            free(p);
        }
        if (rc == 0 && paths.n > base) {
            int32_t *grown = realloc(labels, (size_t)paths.n * sizeof *labels);
            if (!grown) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
            else {
                labels = grown;
                for (int64_t i = base; i < paths.n; i++) labels[i] = (int32_t)k;
            }
        }
        names_free(&files);
        free(dir);
    }
    if (rc) {
        names_free(&classes);
        names_free(&paths);
        free(labels);
        return rc;
    }
    out->num_classes = (int32_t)classes.n;
    out->class_names = classes.v;
    out->count = paths.n;
    out->paths = paths.v;
    out->labels = labels;
    return ND_OK;
}

void coco_imagefolder_free(coco_imagefolder *f) {
    if (!f) return;
    for (int32_t k = 0; f->class_names && k < f->num_classes; k++) free(f->class_names[k]);
    for (int64_t i = 0; f->paths && i < f->count; i++) free(f->paths[i]);
    free(f->class_names);
    free(f->paths);
    free(f->labels);
    memset(f, 0, sizeof *f);
}
