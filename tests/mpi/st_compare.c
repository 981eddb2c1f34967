/* st_compare A.safetensors B.safetensors TOL: compare every float32 tensor of two safetensors
 * files by name; print the largest difference; exit 0 when every element satisfies
 * |a - b| <= TOL * (1 + |a|), 1 when one does not (or the files hold different tensors), 2 on
 * a read error. For the MPI equivalence tests (weights after K-rank vs 1-rank training). */
#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"

typedef struct st_file {
    char *bytes;
    size_t len;
    cJSON *header;
    const char *data;
} st_file;

static int st_open(const char *path, st_file *f) {
    memset(f, 0, sizeof *f);
    if (nd_file_read_all(path, &f->bytes, &f->len) || f->len < 8) {
        fprintf(stderr, "%s: cannot read\n", path);
        return 2;
    }
    uint64_t n = 0;
    memcpy(&n, f->bytes, 8);
    if (n > f->len - 8) {
        fprintf(stderr, "%s: bad header length\n", path);
        return 2;
    }
    f->header = cJSON_ParseWithLength(f->bytes + 8, (size_t)n);
    if (!f->header) {
        fprintf(stderr, "%s: bad JSON header\n", path);
        return 2;
    }
    f->data = f->bytes + 8 + n;
    return 0;
}

/* The float32 tensor `name` of f: pointer and element count, or NULL. */
static const float *st_tensor(const st_file *f, const char *name, int64_t *numel) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(f->header, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "F32") || cJSON_GetArraySize(off) != 2) return NULL;
    double a = cJSON_GetArrayItem(off, 0)->valuedouble, b = cJSON_GetArrayItem(off, 1)->valuedouble;
    *numel = (int64_t)((b - a) / 4);
    return (const float *)(f->data + (size_t)a);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: st_compare A.safetensors B.safetensors TOL\n");
        return 2;
    }
    double tol = atof(argv[3]);
    st_file a, b;
    if (st_open(argv[1], &a) || st_open(argv[2], &b)) return 2;
    int bad = 0, tensors = 0;
    double worst = 0;
    const char *worst_name = "";
    for (const cJSON *t = a.header->child; t; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) continue;
        int64_t na = 0, nb = 0;
        const float *pa = st_tensor(&a, t->string, &na), *pb = st_tensor(&b, t->string, &nb);
        if (!pa) continue;
        if (!pb || na != nb) {
            printf("%s: missing or of another size in %s\n", t->string, argv[2]);
            bad = 1;
            continue;
        }
        tensors++;
        for (int64_t i = 0; i < na; i++) {
            float x, y;
            memcpy(&x, pa + i, 4);
            memcpy(&y, pb + i, 4);
            double d = fabs((double)x - (double)y) / (1.0 + fabs((double)x));
            if (!(d <= worst)) {
                worst = isnan(d) ? INFINITY : d;
                worst_name = t->string;
            }
        }
    }
    printf("%d tensors compared; largest |a-b|/(1+|a|) = %.3g (%s); tolerance %.3g\n", tensors, worst, worst_name,
           tol);
    if (tensors == 0) bad = 1;
    cJSON_Delete(a.header);
    cJSON_Delete(b.header);
    free(a.bytes);
    free(b.bytes);
    return bad || !(worst <= tol);
}
