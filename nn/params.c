/* The long-lived parameter store: named tensors, their gradients and optimizer state. */
#include <math.h>
#include <stdlib.h>

#include "nn/params_impl.h"

#define NN_PARAM_NAME_MAX 255

float *nn__param_array(int64_t n) {
    size_t bytes = ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    NN_ASSERT(p != NULL, "out of memory: parameter array of %lld floats", (long long)n);
    memset(p, 0, bytes);
    return p;
}

float *nn__params_array(const nn_params *ps, int64_t n) {
    if (ps->be->host) return nn__param_array(n);
    size_t bytes = ((size_t)n * sizeof(float) + 63) & ~(size_t)63;
    float *p = ps->be->alloc(bytes ? bytes : 64);
    NN_ASSERT(p != NULL, "out of %s memory: parameter array of %lld floats", ps->be->name, (long long)n);
    ps->be->zero(p, bytes ? bytes : 64);
    return p;
}

nn_params *nn_params_new(void) {
    nn_params *ps = calloc(1, sizeof *ps);
    NN_ASSERT(ps != NULL, "out of memory: nn_params");
    ps->be = &nn_backend_cpu;
    return ps;
}

void nn_params_free(nn_params *ps) {
    if (!ps) return;
    for (int64_t i = 0; i < ps->n; i++) {
        nn_param *p = ps->items[i];
        ps->be->free(p->t.data);
        ps->be->free(p->t.grad);
        ps->be->free(p->m);
        ps->be->free(p->v);
        ps->be->free(p->ema);
        free((char *)p->t.name);
        free(p);
    }
    free(ps->items);
    free(ps);
}

nn_param *nn__params_find(const nn_params *ps, const char *name) {
    for (int64_t i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i]->t.name, name) == 0) return ps->items[i];
    return NULL;
}

nn_tensor *nn_params_add(nn_params *ps, const char *name, int ndim, const int64_t *shape, uint32_t flags) {
    NN_ASSERT(name && name[0] && strlen(name) <= NN_PARAM_NAME_MAX, "nn_params_add: name empty or longer than %d",
              NN_PARAM_NAME_MAX);
    NN_ASSERT(!strchr(name, '#'), "nn_params_add: '%s': '#' is reserved for optimizer state names", name);
    NN_ASSERT(nn__params_find(ps, name) == NULL, "nn_params_add: duplicate parameter name '%s'", name);
    NN_ASSERT(ndim >= 0 && ndim <= NN_MAX_DIMS, "nn_params_add: '%s' rank %d", name, ndim);
    nn_param *p = calloc(1, sizeof *p);
    NN_ASSERT(p != NULL, "out of memory: parameter '%s'", name);
    int64_t numel = 1;
    for (int i = 0; i < NN_MAX_DIMS; i++) {
        p->t.shape[i] = i < ndim ? shape[i] : 1;
        NN_ASSERT(p->t.shape[i] >= 1, "nn_params_add: '%s' dim %d is %lld", name, i, (long long)p->t.shape[i]);
        numel *= p->t.shape[i];
    }
    p->t.ndim = ndim;
    p->t.numel = numel;
    p->t.data = nn__params_array(ps, numel);
    p->flags = flags;
    p->t.flags = NN_TENSOR_PARAM | (ps->be->host ? 0u : (uint32_t)NN_TENSOR_DEVICE);
    if (!(flags & NN_PARAM_BUFFER)) {
        p->t.flags |= NN_TENSOR_REQUIRES_GRAD;
        p->t.grad = nn__params_array(ps, numel);
    }
    char *copy = malloc(strlen(name) + 1);
    NN_ASSERT(copy != NULL, "out of memory");
    strcpy(copy, name);
    p->t.name = copy;
    if (ps->n == ps->cap) {
        int64_t cap = ps->cap ? ps->cap * 2 : 64;
        nn_param **items = realloc(ps->items, (size_t)cap * sizeof *items);
        NN_ASSERT(items != NULL, "out of memory: parameter table");
        ps->items = items;
        ps->cap = cap;
    }
    ps->items[ps->n++] = p;
    return &p->t;
}

nn_tensor *nn_params_get(const nn_params *ps, const char *name) {
    nn_param *p = nn__params_find(ps, name);
    return p ? &p->t : NULL;
}

int64_t nn_params_count(const nn_params *ps) { return ps->n; }

nn_tensor *nn_params_at(const nn_params *ps, int64_t i) {
    NN_ASSERT(i >= 0 && i < ps->n, "nn_params_at: %lld outside [0,%lld)", (long long)i, (long long)ps->n);
    return &ps->items[i]->t;
}

uint32_t nn_params_flags(const nn_params *ps, int64_t i) {
    NN_ASSERT(i >= 0 && i < ps->n, "nn_params_flags: %lld outside [0,%lld)", (long long)i, (long long)ps->n);
    return ps->items[i]->flags;
}

int64_t nn_params_numel(const nn_params *ps) {
    int64_t n = 0;
    for (int64_t i = 0; i < ps->n; i++)
        if (!(ps->items[i]->flags & NN_PARAM_BUFFER)) n += ps->items[i]->t.numel;
    return n;
}

void nn_params_zero_grad(nn_params *ps) {
    for (int64_t i = 0; i < ps->n; i++)
        if (ps->items[i]->t.grad) ps->be->zero(ps->items[i]->t.grad, (size_t)ps->items[i]->t.numel * sizeof(float));
}

#ifdef NN_USE_CUDA
/* The device store: per-tensor sums of squares on the device (in double), scaled in place. */
static double clip_device(nn_params *ps, double max_norm) {
    nn__cuda_sumsq_begin();
    for (int64_t i = 0; i < ps->n; i++)
        if (ps->items[i]->t.grad) nn__cuda_sumsq_add(ps->items[i]->t.grad, ps->items[i]->t.numel);
    double norm = sqrt(nn__cuda_sumsq_end());
    if (max_norm > 0.0 && norm > max_norm)
        for (int64_t i = 0; i < ps->n; i++)
            if (ps->items[i]->t.grad) nn__cuda_scale(ps->items[i]->t.grad, (float)(max_norm / norm), ps->items[i]->t.numel);
    return norm;
}
#endif

double nn_params_clip_grad_norm(nn_params *ps, double max_norm) {
#ifdef NN_USE_CUDA
    if (ps->be == &nn_backend_cuda) return clip_device(ps, max_norm);
#endif
    double sq = 0.0;
    for (int64_t i = 0; i < ps->n; i++) {
        const nn_tensor *t = &ps->items[i]->t;
        if (!t->grad) continue;
        for (int64_t j = 0; j < t->numel; j++) sq += (double)t->grad[j] * t->grad[j];
    }
    double norm = sqrt(sq);
    if (max_norm > 0.0 && norm > max_norm) {
        float s = (float)(max_norm / norm);
        for (int64_t i = 0; i < ps->n; i++) {
            nn_tensor *t = &ps->items[i]->t;
            if (!t->grad) continue;
            for (int64_t j = 0; j < t->numel; j++) t->grad[j] *= s;
        }
    }
    return norm;
}

int64_t nn_params_step(const nn_params *ps) { return ps->step; }

/* One array of n floats from memory `from` into a new array in memory `to` (through the host
 * when neither side is the host); the old one is freed. NULL stays NULL. */
static float *move_array(float *src, int64_t n, const nn_backend *from, const nn_backend *to) {
    if (!src) return NULL;
    size_t bytes = (size_t)n * sizeof(float);
    size_t cap = (bytes + 63) & ~(size_t)63;
    float *dst = to->alloc(cap ? cap : 64);
    NN_ASSERT(dst != NULL, "out of %s memory: parameter array of %lld floats", to->name, (long long)n);
    if (from->host) {
        to->upload(dst, src, bytes);
    } else if (to->host) {
        from->download(dst, src, bytes);
    } else {
        float *h = nn__param_array(n);
        from->download(h, src, bytes);
        to->upload(dst, h, bytes);
        free(h);
    }
    from->free(src);
    return dst;
}

int nn_params_to_device(nn_params *ps, const char *device) {
    const nn_backend *to = NULL;
    int rc = nn__backend_by_name(device, &to);
    if (rc) return rc;
    if (to == ps->be) return ND_OK;
    for (int64_t i = 0; i < ps->n; i++) {
        nn_param *p = ps->items[i];
        int64_t n = p->t.numel;
        p->t.data = move_array(p->t.data, n, ps->be, to);
        p->t.grad = move_array(p->t.grad, n, ps->be, to);
        p->m = move_array(p->m, n, ps->be, to);
        p->v = move_array(p->v, n, ps->be, to);
        p->ema = move_array(p->ema, n, ps->be, to);
        if (to->host)
            p->t.flags &= ~(uint32_t)NN_TENSOR_DEVICE;
        else
            p->t.flags |= NN_TENSOR_DEVICE;
    }
    ps->be = to;
    return ND_OK;
}

const char *nn_params_device(const nn_params *ps) { return ps->be->name; }

void nn_params_grads_get(const nn_params *ps, float *host) {
    int64_t off = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        const nn_param *p = ps->items[i];
        if (p->flags & NN_PARAM_BUFFER) continue;
        size_t bytes = (size_t)p->t.numel * sizeof(float);
        if (p->t.grad)
            ps->be->download(host + off, p->t.grad, bytes);
        else
            memset(host + off, 0, bytes);
        off += p->t.numel;
    }
}

void nn_params_grads_set(nn_params *ps, const float *host) {
    int64_t off = 0;
    for (int64_t i = 0; i < ps->n; i++) {
        nn_param *p = ps->items[i];
        if (p->flags & NN_PARAM_BUFFER) continue;
        if (p->t.grad) ps->be->upload(p->t.grad, host + off, (size_t)p->t.numel * sizeof(float));
        off += p->t.numel;
    }
}

nn_ctx *nn_ctx_new_like(const nn_params *ps) {
    nn_ctx *ctx = nn_ctx_new();
    /* The store's device was selected when it moved there: the switch cannot fail. */
    if (!ps->be->host) ctx->backend = ps->be;
    return ctx;
}
