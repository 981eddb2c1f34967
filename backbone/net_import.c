/* Import of pretrained NASNet weights from safetensors files with timm / Cadene names (PyTorch
 * layouts) or TF-slim names (TF layouts). The mapping is a table of name rewrites from each of
 * our parameters to the file's name; every file tensor must be used and every parameter found
 * (the aux head may be absent from the file), shapes must agree, and nothing is written into
 * the store before all of that has been checked. */
#include "backbone/net_internal.h"

#include "common/fileio.h"
#include "common/status.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a minimal safetensors reader ---------------------------------------------------------- */

typedef struct st_tensor {
    char *name;
    int f32;           /* dtype F32; other dtypes are only allowed for ignored tensors */
    int ndim;
    int64_t shape[8];
    size_t begin, end; /* byte offsets into the data section */
    int used;
} st_tensor;

typedef struct st_file {
    char *bytes;
    size_t len;
    const char *data; /* after the header */
    size_t data_len;
    int n;
    st_tensor *t;
} st_file;

static void st_free(st_file *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    free(f->bytes);
    memset(f, 0, sizeof *f);
}

static int st_read(const char *path, st_file *f) {
    memset(f, 0, sizeof *f);
    int rc = nd_file_read_all(path, &f->bytes, &f->len);
    if (rc) return rc;
    if (f->len < 8) {
        size_t len = f->len;
        st_free(f);
        return nd_fail(ND_ERR_FORMAT, "%s: not a safetensors file (%zu bytes)", path, len);
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (uint8_t)f->bytes[i];
    if (hl > f->len - 8) {
        st_free(f);
        return nd_fail(ND_ERR_FORMAT, "%s: header length %llu beyond the file", path, (unsigned long long)hl);
    }
    cJSON *h = cJSON_ParseWithLength(f->bytes + 8, (size_t)hl);
    if (!cJSON_IsObject(h)) {
        cJSON_Delete(h);
        st_free(f);
        return nd_fail(ND_ERR_FORMAT, "%s: the safetensors header is not a JSON object", path);
    }
    f->data = f->bytes + 8 + hl;
    f->data_len = f->len - 8 - (size_t)hl;
    int n = cJSON_GetArraySize(h);
    f->t = calloc((size_t)(n ? n : 1), sizeof *f->t);
    for (cJSON *it = h->child; it && !rc; it = it->next) {
        if (!strcmp(it->string, "__metadata__")) continue;
        st_tensor *t = &f->t[f->n];
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
            cJSON_GetArraySize(sh) > 8) {
            rc = nd_fail(ND_ERR_FORMAT, "%s: tensor \"%s\": expected dtype, shape (<= 8 dims) and data_offsets", path,
                         it->string);
            break;
        }
        t->name = strdup(it->string);
        f->n++;
        t->f32 = !strcmp(dt->valuestring, "F32");
        size_t el = t->f32 ? 4 : 0;
        int64_t numel = 1;
        for (const cJSON *d = sh->child; d; d = d->next) {
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12) {
                rc = nd_fail(ND_ERR_FORMAT, "%s: tensor \"%s\": bad shape", path, t->name);
                break;
            }
            t->shape[t->ndim++] = (int64_t)d->valuedouble;
            numel *= (int64_t)d->valuedouble;
        }
        double b = cJSON_GetArrayItem(off, 0)->valuedouble, e = cJSON_GetArrayItem(off, 1)->valuedouble;
        if (!rc && (!(b >= 0 && e >= b && e <= (double)f->data_len) || (el && (size_t)(e - b) != (size_t)numel * el)))
            rc = nd_fail(ND_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%.0f, %.0f] do not fit its shape or the file",
                         path, t->name, b, e);
        t->begin = (size_t)b, t->end = (size_t)e;
    }
    cJSON_Delete(h);
    if (rc) st_free(f);
    return rc;
}

static st_tensor *st_find(st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

/* Exact name, or the one tensor whose name ends with "/<name>" (a TF scope in front). */
static st_tensor *st_find_suffix(st_file *f, const char *name) {
    st_tensor *t = st_find(f, name), *hit = NULL;
    if (t) return t;
    size_t n = strlen(name);
    for (int i = 0; i < f->n; i++) {
        size_t m = strlen(f->t[i].name);
        if (m > n && f->t[i].name[m - n - 1] == '/' && !strcmp(f->t[i].name + m - n, name)) {
            if (hit) return NULL; /* ambiguous */
            hit = &f->t[i];
        }
    }
    return hit;
}

/* ---- timm / Cadene names ----------------------------------------------------------------- */

static const char *bn_leaf(const char *leaf) {
    if (!strcmp(leaf, "gamma")) return "weight";
    if (!strcmp(leaf, "beta")) return "bias";
    if (!strcmp(leaf, "moving_mean")) return "running_mean";
    if (!strcmp(leaf, "moving_variance")) return "running_var";
    return NULL;
}

/* Normal cells in the file, numbered as there (Cadene's mobile skips numbers): our cell_k is
 * the k-th smallest number. */
typedef struct cell_ranks {
    int n;
    int num[256];
} cell_ranks;

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void ranks_collect(const st_file *f, cell_ranks *r) {
    r->n = 0;
    for (int i = 0; i < f->n; i++) {
        const char *s = f->t[i].name;
        if (strncmp(s, "cell_", 5) || !isdigit((unsigned char)s[5])) continue;
        int k = atoi(s + 5), seen = 0;
        for (int j = 0; j < r->n; j++) seen |= r->num[j] == k;
        if (!seen && r->n < 256) r->num[r->n++] = k;
    }
    qsort(r->num, (size_t)r->n, sizeof(int), cmp_int);
}

/* Our name -> timm's, or 0 when it has no counterpart. */
static int timm_name(const char *ours, const cell_ranks *ranks, char *out, size_t n) {
    char buf[320];
    snprintf(buf, sizeof buf, "%s", ours);
    char *part[8];
    int np = 0;
    for (char *s = strtok(buf, "/"); s && np < 8; s = strtok(NULL, "/")) part[np++] = s;
    if (np == 2 && !strcmp(part[0], "conv0") && !strcmp(part[1], "weights")) return snprintf(out, n, "conv0.conv.weight"), 1;
    if (np == 2 && !strcmp(part[0], "conv0_bn") && bn_leaf(part[1]))
        return snprintf(out, n, "conv0.bn.%s", bn_leaf(part[1])), 1;
    if (np == 3 && !strcmp(part[0], "final_layer") && !strcmp(part[1], "FC"))
        return snprintf(out, n, "last_linear.%s", !strcmp(part[2], "weights") ? "weight" : "bias"), 1;
    if (np < 3) return 0;
    char cell[32];
    if (!strncmp(part[0], "cell_stem_", 10) || !strncmp(part[0], "reduction_cell_", 15)) {
        snprintf(cell, sizeof cell, "%s", part[0]);
    } else if (!strncmp(part[0], "cell_", 5)) {
        int k = atoi(part[0] + 5);
        if (k < 0 || k >= ranks->n) return 0;
        snprintf(cell, sizeof cell, "cell_%d", ranks->num[k]);
    } else {
        return 0;
    }
    const char *a = part[1], *leaf = part[np - 1];
    if (np == 3) {
        if (!strcmp(a, "1x1")) return snprintf(out, n, "%s.conv_1x1.conv.weight", cell), 1;
        if (!strcmp(a, "prev_1x1")) return snprintf(out, n, "%s.conv_prev_1x1.conv.weight", cell), 1;
        if (!strcmp(a, "path1_conv")) return snprintf(out, n, "%s.path_1.conv.weight", cell), 1;
        if (!strcmp(a, "path2_conv")) return snprintf(out, n, "%s.path_2.conv.weight", cell), 1;
        if (!bn_leaf(leaf)) return 0;
        if (!strcmp(a, "beginning_bn")) return snprintf(out, n, "%s.conv_1x1.bn.%s", cell, bn_leaf(leaf)), 1;
        if (!strcmp(a, "prev_bn")) return snprintf(out, n, "%s.conv_prev_1x1.bn.%s", cell, bn_leaf(leaf)), 1;
        if (!strcmp(a, "final_path_bn")) return snprintf(out, n, "%s.final_path_bn.%s", cell, bn_leaf(leaf)), 1;
        return 0;
    }
    /* <cell>/comb_iter_K/<side>/separable_kxk_R/<dw|pw> and .../bn_sep_kxk_R/<bn> */
    if (np == 5 && !strncmp(a, "comb_iter_", 10)) {
        const char *side = part[2], *layer = part[3];
        const char *r = strrchr(layer, '_');
        if (!r) return 0;
        if (!strncmp(layer, "separable_", 10)) {
            const char *conv = !strcmp(leaf, "depthwise_weights") ? "depthwise_conv2d"
                               : !strcmp(leaf, "pointwise_weights") ? "pointwise_conv2d"
                                                                     : NULL;
            if (!conv) return 0;
            return snprintf(out, n, "%s.%s_%s.separable_%s.%s.weight", cell, a, side, r + 1, conv), 1;
        }
        if (!strncmp(layer, "bn_sep_", 7) && bn_leaf(leaf))
            return snprintf(out, n, "%s.%s_%s.bn_sep_%s.%s", cell, a, side, r + 1, bn_leaf(leaf)), 1;
    }
    return 0;
}

static int ignored_tensor(const char *name) {
    const char *s = strrchr(name, '.');
    return s && !strcmp(s, ".num_batches_tracked");
}

/* ---- layout conversion -------------------------------------------------------------------- */

/* Check that file tensor t fits parameter p (in the file's layout) and copy it (to dst, p's
 * layout) when dst is not NULL. TF layouts: conv [kh,kw,in,out], depthwise [kh,kw,C,1],
 * FC [in,out]; PyTorch's are ours. */
static int fits(const st_tensor *t, const nn_tensor *p, int tf, const char *data, float *dst) {
    int64_t want[4];
    int nd = p->ndim;
    for (int d = 0; d < nd; d++) want[d] = p->shape[d];
    int is_dw = tf && nd == 4 && p->shape[1] == 1 && strstr(p->name, "depthwise_weights") != NULL;
    if (tf && nd == 4) {
        /* OIHW -> HWIO; depthwise [C,1,kh,kw] -> [kh,kw,C,1] */
        int64_t o = p->shape[0], i = p->shape[1], h = p->shape[2], w = p->shape[3];
        if (is_dw)
            want[0] = h, want[1] = w, want[2] = o, want[3] = 1;
        else
            want[0] = h, want[1] = w, want[2] = i, want[3] = o;
    } else if (tf && nd == 2) {
        want[0] = p->shape[1], want[1] = p->shape[0];
    }
    int same = t->f32 && t->ndim == nd;
    for (int d = 0; same && d < nd; d++) same = t->shape[d] == want[d];
    if (!same) return 0;
    if (!dst) return 1;
    const float *src = (const float *)(const void *)(data + t->begin);
    if (tf && nd == 4) {
        int64_t o = p->shape[0], i = p->shape[1], h = p->shape[2], w = p->shape[3];
        for (int64_t a = 0; a < o; a++)
            for (int64_t b = 0; b < i; b++)
                for (int64_t y = 0; y < h; y++)
                    for (int64_t x = 0; x < w; x++) {
                        float v;
                        if (is_dw)
                            memcpy(&v, src + (y * w + x) * o + a, 4);
                        else
                            memcpy(&v, src + ((y * w + x) * i + b) * o + a, 4);
                        dst[((a * i + b) * h + y) * w + x] = v;
                    }
    } else if (tf && nd == 2) {
        int64_t o = p->shape[0], i = p->shape[1];
        for (int64_t a = 0; a < o; a++)
            for (int64_t b = 0; b < i; b++) memcpy(&dst[a * i + b], src + b * o + a, 4);
    } else {
        memcpy(dst, src, (size_t)p->numel * 4);
    }
    return 1;
}

static void shape_str(const st_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

int nas_import(nas_net *net, const char *in, nas_import_from from) {
    if (from != NAS_IMPORT_TIMM && from != NAS_IMPORT_TF_SLIM) return nd_fail(ND_ERR_INVALID, "import: unknown source");
    st_file f;
    int rc = st_read(in, &f);
    if (rc) return rc;
    cell_ranks ranks;
    ranks_collect(&f, &ranks);
    nn_params *ps = net->ps;
    int64_t np = nn_params_count(ps);
    st_tensor **src = calloc((size_t)(np ? np : 1), sizeof *src);
    int tf = from == NAS_IMPORT_TF_SLIM;
    int file_has_aux = 0;
    for (int i = 0; i < f.n; i++) file_has_aux |= strstr(f.t[i].name, "aux") != NULL;
    /* Our names carry the network's prefix, if any: find where the TF-slim name starts. */
    for (int64_t k = 0; k < np && !rc; k++) {
        nn_tensor *p = nn_params_at(ps, k);
        const char *ours = p->name + net->prefix_len;
        int is_aux = !strncmp(ours, "aux_logits/", 11);
        char fname[320];
        st_tensor *t = NULL;
        if (tf) {
            t = st_find_suffix(&f, ours);
            snprintf(fname, sizeof fname, "%s", ours);
        } else if (timm_name(ours, &ranks, fname, sizeof fname)) {
            t = st_find(&f, fname);
        } else if (!is_aux) {
            rc = nd_fail(ND_ERR_UNSUPPORTED,
                         "%s: %s has no timm/Cadene counterpart (those files hold NASNet-A ImageNet models)", in, ours);
            break;
        }
        if (!t) {
            if (is_aux && !file_has_aux) continue;
            rc = nd_fail(ND_ERR_NOT_FOUND, "%s: missing tensor \"%s\" (for nasdet's %s)", in, fname, ours);
            break;
        }
        if (t->used) {
            rc = nd_fail(ND_ERR_FORMAT, "%s: tensor \"%s\" would be used twice", in, t->name);
            break;
        }
        if (!fits(t, p, tf, f.data, NULL)) {
            char have[96], want[96];
            shape_str(t, have, sizeof have);
            nn_tensor_shape_str(p, want, sizeof want);
            int fc = strstr(ours, "FC/") != NULL;
            rc = nd_fail(ND_ERR_FORMAT, "%s: tensor \"%s\" is %s%s, nasdet's %s is %s (%s layout)%s", in, t->name,
                         t->f32 ? "" : "not float32, ", have, ours, want, tf ? "TF" : "PyTorch",
                         fc ? ": build the network with the file's number of classes (--classes)" : "");
            break;
        }
        t->used = 1;
        src[k] = t;
    }
    for (int i = 0; i < f.n && !rc; i++)
        if (!f.t[i].used && !ignored_tensor(f.t[i].name))
            rc = nd_fail(ND_ERR_FORMAT, "%s: extra tensor \"%s\" matches no parameter of this network", in, f.t[i].name);
    for (int64_t k = 0; k < np && !rc; k++) {
        nn_tensor *p = nn_params_at(ps, k);
        if (src[k]) fits(src[k], p, tf, f.data, p->data);
    }
    free(src);
    st_free(&f);
    return rc;
}
