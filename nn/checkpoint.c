/* safetensors checkpoints: 8-byte little-endian header length, a JSON header
 * {name: {"dtype":"F32","shape":[...],"data_offsets":[begin,end]}, "__metadata__": {k: "v"}},
 * then the raw little-endian tensor data, contiguous and in header order. Saved atomically;
 * loaded in two phases (validate everything, then copy) so that a bad file changes nothing. */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

#include "common/fileio.h"
#include "nn/params_impl.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes host floats as little-endian; add byte swapping for this target"
#endif

#define STEP_KEY "nn.step"
#define HEADER_MAX ((uint64_t)100 << 20)

typedef struct item {
    char name[300];
    const nn_tensor *t;
    const float *data;
} item;

static int collect(const nn_params *ps, uint32_t flags, item **out) {
    int64_t cap = ps->n * 4, n = 0;
    item *it = malloc((size_t)(cap ? cap : 1) * sizeof *it);
    if (!it) return -1;
    for (int64_t i = 0; i < ps->n; i++) {
        const nn_param *p = ps->items[i];
        const float *extra[3] = {p->m, p->v, p->ema};
        const char *suffix[3] = {"#m", "#v", "#ema"};
        snprintf(it[n].name, sizeof it[n].name, "%s", p->t.name);
        it[n].t = &p->t;
        it[n++].data = p->t.data;
        if (!(flags & NN_CKPT_OPTIM)) continue;
        for (int k = 0; k < 3; k++)
            if (extra[k]) {
                snprintf(it[n].name, sizeof it[n].name, "%s%s", p->t.name, suffix[k]);
                it[n].t = &p->t;
                it[n++].data = extra[k];
            }
    }
    *out = it;
    return (int)n;
}

int nn_checkpoint_save(const char *path, const nn_params *ps, const nn_meta *meta, uint32_t flags) {
    item *items;
    int n = collect(ps, flags, &items);
    if (n < 0) return nd_fail(ND_ERR_NOMEM, "%s: out of memory", path);
    cJSON *root = cJSON_CreateObject(), *md = cJSON_CreateObject();
    for (int i = 0; meta && i < meta->n; i++) cJSON_AddStringToObject(md, meta->keys[i], meta->values[i]);
    char step[32];
    snprintf(step, sizeof step, "%" PRId64, ps->step);
    if (!cJSON_GetObjectItemCaseSensitive(md, STEP_KEY)) cJSON_AddStringToObject(md, STEP_KEY, step);
    cJSON_AddItemToObject(root, "__metadata__", md);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *shape = cJSON_CreateArray();
        for (int d = 0; d < items[i].t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)items[i].t->shape[d]));
        cJSON_AddItemToObject(e, "shape", shape);
        uint64_t bytes = (uint64_t)items[i].t->numel * 4;
        cJSON *offs = cJSON_CreateArray();
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        cJSON_AddItemToObject(e, "data_offsets", offs);
        cJSON_AddItemToObject(root, items[i].name, e);
        off += bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) {
        free(items);
        return nd_fail(ND_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    /* Pad the header with spaces to a multiple of 8 so the data starts aligned (as the Python
     * writer does). */
    size_t jl = strlen(json), padded = (jl + 7) & ~(size_t)7;
    nd_atomic_file af;
    int rc = nd_atomic_open(&af, path);
    if (rc) {
        free(json);
        free(items);
        return rc;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, af.fp) == 8 && fwrite(json, 1, jl, af.fp) == jl;
    for (size_t i = jl; ok && i < padded; i++) ok = fputc(' ', af.fp) != EOF;
    /* A device store is written through one host buffer: the file is the same whichever device
     * holds the tensors. */
    float *stage = NULL;
    for (int i = 0; ok && i < n; i++) {
        const float *src = items[i].data;
        size_t numel = (size_t)items[i].t->numel;
        if (!ps->be->host) {
            free(stage);
            stage = malloc(numel * sizeof(float) + 1);
            ok = stage != NULL;
            if (!ok) break;
            ps->be->download(stage, src, numel * sizeof(float));
            src = stage;
        }
        ok = fwrite(src, sizeof(float), numel, af.fp) == numel;
    }
    free(stage);
    free(json);
    free(items);
    if (!ok) {
        nd_atomic_abort(&af);
        return nd_fail(ND_ERR_IO, "%s: write failed", path);
    }
    return nd_atomic_commit(&af);
}

/* One tensor of the file, matched to its destination in the store. */
typedef struct match {
    nn_param *p;
    int slot; /* 0 data, 1 m, 2 v, 3 ema */
    const unsigned char *src;
} match;

static int parse_u64(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > 9.007199254740992e15 ||
        j->valuedouble != floor(j->valuedouble))
        return -1;
    *v = (uint64_t)j->valuedouble;
    return 0;
}

static int load_entries(const char *path, const cJSON *root, const unsigned char *data, uint64_t data_len,
                        nn_params *ps, uint32_t flags, match *matches, int *nmatch, nn_meta *meta) {
    int n = 0;
    uint64_t covered = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        const char *name = e->string;
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) return nd_fail(ND_ERR_FORMAT, "%s: __metadata__ is not an object", path);
            for (const cJSON *kv = e->child; kv; kv = kv->next) {
                if (!cJSON_IsString(kv))
                    return nd_fail(ND_ERR_FORMAT, "%s: __metadata__.%s is not a string", path, kv->string);
                if (meta) nn_meta_set(meta, kv->string, kv->valuestring);
            }
            continue;
        }
        if (!cJSON_IsObject(e)) return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' is not an object", path, name);
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
            return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets [begin,end]", path, name);
        if (strcmp(dtype->valuestring, "F32") != 0)
            return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' has dtype %s; only F32 is supported", path, name,
                           dtype->valuestring);
        int nd = cJSON_GetArraySize(shape);
        if (nd > NN_MAX_DIMS) return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' has rank %d > 4", path, name, nd);
        int64_t dims[NN_MAX_DIMS];
        uint64_t numel = 1;
        for (int d = 0; d < nd; d++) {
            uint64_t v;
            if (parse_u64(cJSON_GetArrayItem(shape, d), &v) || v > ((uint64_t)1 << 40))
                return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' shape[%d] is not a valid dimension", path, name, d);
            dims[d] = (int64_t)v;
            numel *= v;
            if (numel > ((uint64_t)1 << 40))
                return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' is impossibly large", path, name);
        }
        uint64_t b, en;
        if (parse_u64(cJSON_GetArrayItem(offs, 0), &b) || parse_u64(cJSON_GetArrayItem(offs, 1), &en) || b > en ||
            en > data_len)
            return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' data_offsets outside the %" PRIu64 " data bytes (truncated file?)",
                           path, name, data_len);
        if (en - b != numel * 4)
            return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' has %" PRIu64 " bytes for %" PRIu64 " F32 elements", path, name,
                           en - b, numel);
        covered += en - b;
        /* Which store tensor and slot does it go to? */
        char base[300];
        snprintf(base, sizeof base, "%s", name);
        int slot = 0;
        char *hash = strchr(base, '#');
        if (hash) {
            slot = strcmp(hash, "#m") == 0 ? 1 : strcmp(hash, "#v") == 0 ? 2 : strcmp(hash, "#ema") == 0 ? 3 : -1;
            *hash = '\0';
        }
        nn_param *p = slot >= 0 ? nn__params_find(ps, base) : NULL;
        if (!p) {
            if (flags & NN_CKPT_ALLOW_EXTRA) continue;
            return nd_fail(ND_ERR_NOT_FOUND, "%s: tensor '%s' is not a parameter of this model", path, name);
        }
        int same = nd == p->t.ndim;
        for (int d = 0; same && d < nd; d++) same = dims[d] == p->t.shape[d];
        if (!same) {
            char want[64];
            return nd_fail(ND_ERR_FORMAT, "%s: tensor '%s' has another shape than the model's %s", path, name,
                           nn_tensor_shape_str(&p->t, want, sizeof want));
        }
        matches[n].p = p;
        matches[n].slot = slot;
        matches[n].src = data + b;
        n++;
    }
    if (covered != data_len)
        return nd_fail(ND_ERR_FORMAT, "%s: tensors cover %" PRIu64 " of %" PRIu64 " data bytes", path, covered, data_len);
    if (!(flags & NN_CKPT_ALLOW_MISSING))
        for (int64_t i = 0; i < ps->n; i++) {
            int found = 0;
            for (int j = 0; j < n && !found; j++) found = matches[j].p == ps->items[i] && matches[j].slot == 0;
            if (!found)
                return nd_fail(ND_ERR_NOT_FOUND, "%s: the model's tensor '%s' is missing from the file", path,
                               ps->items[i]->t.name);
        }
    *nmatch = n;
    return ND_OK;
}

int nn_checkpoint_load(const char *path, nn_params *ps, nn_meta *meta, uint32_t flags) {
    char *buf;
    size_t len;
    int rc = nd_file_read_all(path, &buf, &len);
    if (rc) return rc;
    const unsigned char *u = (const unsigned char *)buf;
    if (len < 8) {
        free(buf);
        return nd_fail(ND_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", path, len);
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)u[i] << (8 * i);
    if (hl < 2 || hl > HEADER_MAX || hl > len - 8 || u[8] != '{') {
        free(buf);
        return nd_fail(ND_ERR_FORMAT, "%s: not a safetensors file (header length %" PRIu64 ", file %zu bytes)", path, hl,
                       len);
    }
    cJSON *root = cJSON_ParseWithLength(buf + 8, (size_t)hl);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        free(buf);
        return nd_fail(ND_ERR_FORMAT, "%s: the safetensors header is not a JSON object", path);
    }
    int count = cJSON_GetArraySize(root);
    match *matches = malloc((size_t)(count ? count : 1) * sizeof *matches);
    nn_meta tmp;
    nn_meta_init(&tmp);
    int nmatch = 0;
    rc = matches ? load_entries(path, root, u + 8 + hl, len - 8 - hl, ps, flags, matches, &nmatch, &tmp)
                 : nd_fail(ND_ERR_NOMEM, "%s: out of memory", path);
    cJSON_Delete(root);
    if (rc == ND_OK) {
        const char *step = nn_meta_get(&tmp, STEP_KEY);
        int64_t st = 0;
        if (step && nn_meta_get_int(&tmp, STEP_KEY, &st) != ND_OK) rc = nd_fail_context(ND_ERR_FORMAT, "%s: ", path);
        if (rc == ND_OK) {
            for (int i = 0; i < nmatch; i++) {
                nn_param *p = matches[i].p;
                float **dst = matches[i].slot == 0 ? &p->t.data
                              : matches[i].slot == 1 ? &p->m
                              : matches[i].slot == 2 ? &p->v
                                                     : &p->ema;
                if (!*dst) *dst = nn__params_array(ps, p->t.numel);
                /* The file's data need not be 4-byte aligned for a host memcpy; the upload of a
                 * device store reads it the same way. */
                ps->be->upload(*dst, matches[i].src, (size_t)p->t.numel * sizeof(float));
            }
            if (step) ps->step = st;
        }
    }
    free(matches);
    free(buf);
    if (rc == ND_OK && meta)
        *meta = tmp;
    else
        nn_meta_free(&tmp);
    return rc;
}
