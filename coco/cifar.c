/* CIFAR-10 and CIFAR-100 binary files: fixed-size records, no header. */
#include "coco/coco.h"

#include "common/fileio.h"
#include "common/status.h"

#include <stdlib.h>
#include <string.h>

static size_t record_size(coco_cifar_kind kind) { return (kind == COCO_CIFAR100 ? 2u : 1u) + COCO_CIFAR_PIXELS; }

/* Grow `out` to hold `extra` more records; on failure `out` is unchanged. */
static int reserve(coco_cifar *out, int64_t extra, int want_coarse) {
    size_t n = (size_t)(out->count + extra);
    uint8_t *px = realloc(out->pixels, n * COCO_CIFAR_PIXELS);
    if (!px) return nd_fail(ND_ERR_NOMEM, "out of memory for %zu CIFAR images", n);
    out->pixels = px;
    uint8_t *lb = realloc(out->labels, n);
    if (!lb) return nd_fail(ND_ERR_NOMEM, "out of memory for %zu CIFAR labels", n);
    out->labels = lb;
    if (want_coarse) {
        uint8_t *co = realloc(out->coarse, n);
        if (!co) return nd_fail(ND_ERR_NOMEM, "out of memory for %zu CIFAR labels", n);
        out->coarse = co;
    }
    return ND_OK;
}

int coco_cifar_parse(const void *data, size_t len, coco_cifar_kind kind, const char *name, coco_cifar *out) {
    if (!name) name = "<memory>";
    if (kind != COCO_CIFAR10 && kind != COCO_CIFAR100)
        return nd_fail(ND_ERR_INVALID, "%s: unknown CIFAR kind %d", name, (int)kind);
    int is100 = kind == COCO_CIFAR100;
    if (out->count > 0 && (out->coarse != NULL) != is100)
        return nd_fail(ND_ERR_INVALID, "%s: cannot append %s records to a %s set", name, is100 ? "CIFAR-100" : "CIFAR-10",
                       is100 ? "CIFAR-10" : "CIFAR-100");
    size_t rec = record_size(kind);
    if (len % rec != 0)
        return nd_fail(ND_ERR_FORMAT,
                       "%s: truncated: record %zu is incomplete (%zu of %zu bytes; a %s record is %zu bytes, the "
                       "file is %zu bytes)",
                       name, len / rec, len % rec, rec, is100 ? "CIFAR-100" : "CIFAR-10", rec, len);
    int64_t n = (int64_t)(len / rec);
    const uint8_t *p = data;
    /* Check every label before touching `out`, so a bad file leaves it as it was. */
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *r = p + (size_t)i * rec;
        if (!is100 && r[0] >= 10)
            return nd_fail(ND_ERR_FORMAT, "%s: record %lld (byte offset %zu): label %u, expected 0..9", name,
                           (long long)i, (size_t)i * rec, r[0]);
        if (is100 && (r[0] >= 20 || r[1] >= 100))
            return nd_fail(ND_ERR_FORMAT,
                           "%s: record %lld (byte offset %zu): labels coarse %u / fine %u, expected 0..19 / 0..99",
                           name, (long long)i, (size_t)i * rec, r[0], r[1]);
    }
    if (n == 0) return ND_OK;
    int rc = reserve(out, n, is100);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *r = p + (size_t)i * rec;
        size_t j = (size_t)(out->count + i);
        if (is100) out->coarse[j] = r[0];
        out->labels[j] = r[is100];
        memcpy(out->pixels + j * COCO_CIFAR_PIXELS, r + 1 + is100, COCO_CIFAR_PIXELS);
    }
    out->count += n;
    return ND_OK;
}

int coco_cifar_read(const char *path, coco_cifar_kind kind, coco_cifar *out) {
    char *data;
    size_t len;
    int rc = nd_file_read_all(path, &data, &len);
    if (rc) return rc;
    rc = coco_cifar_parse(data, len, kind, path, out);
    free(data);
    return rc;
}

int coco_cifar_read_dir(const char *dir, int train, coco_cifar *out) {
    memset(out, 0, sizeof *out);
    int rc = ND_OK;
    for (int b = 1; b <= (train ? 5 : 1) && rc == 0; b++) {
        char name[32];
        snprintf(name, sizeof name, train ? "data_batch_%d.bin" : "test_batch.bin", b);
        char *path = nd_path_join(dir, name);
        if (!path) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
        else if (!nd_path_exists(path))
            rc = nd_fail(ND_ERR_NOT_FOUND, "%s: missing (a CIFAR-10 folder holds data_batch_1..5.bin and test_batch.bin)",
                         path);
        else rc = coco_cifar_read(path, COCO_CIFAR10, out);
        free(path);
    }
    if (rc) coco_cifar_free(out);
    return rc;
}

void coco_cifar_free(coco_cifar *c) {
    if (!c) return;
    free(c->pixels);
    free(c->labels);
    free(c->coarse);
    memset(c, 0, sizeof *c);
}

int coco_cifar_read_names(const char *dir, char ***names, int32_t *count) {
    *names = NULL;
    *count = 0;
    char *path = nd_path_join(dir, "batches.meta.txt");
    if (!path) return nd_fail(ND_ERR_NOMEM, "out of memory");
    char *text;
    size_t len;
    int rc = nd_file_read_all(path, &text, &len);
    free(path);
    if (rc) return rc;
    char **out = NULL;
    int32_t n = 0;
    for (char *line = text, *next; line && *line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = '\0';
        if (!l) continue;
        char **grown = realloc(out, (size_t)(n + 1) * sizeof *out);
        if (!grown || !(grown[n] = strdup(line))) {
            if (grown) out = grown;
            rc = nd_fail(ND_ERR_NOMEM, "out of memory");
            break;
        }
        out = grown;
        n++;
    }
    free(text);
    if (rc) {
        coco_names_free(out, n);
        return rc;
    }
    *names = out;
    *count = n;
    return ND_OK;
}

void coco_names_free(char **names, int32_t count) {
    for (int32_t i = 0; names && i < count; i++) free(names[i]);
    free(names);
}
