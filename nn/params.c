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

nn_params *nn_params_new(void) {
    nn_params *ps = calloc(1, sizeof *ps);
    NN_ASSERT(ps != NULL, "out of memory: nn_params");
    return ps;
}

void nn_params_free(nn_params *ps) {
    if (!ps) return;
    for (int64_t i = 0; i < ps->n; i++) {
        nn_param *p = ps->items[i];
        free(p->t.data);
        free(p->t.grad);
        free(p->m);
        free(p->v);
        free(p->ema);
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
    p->t.data = nn__param_array(numel);
    p->flags = flags;
    p->t.flags = NN_TENSOR_PARAM;
    if (!(flags & NN_PARAM_BUFFER)) {
        p->t.flags |= NN_TENSOR_REQUIRES_GRAD;
        p->t.grad = nn__param_array(numel);
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
        if (ps->items[i]->t.grad) memset(ps->items[i]->t.grad, 0, (size_t)ps->items[i]->t.numel * sizeof(float));
}

double nn_params_clip_grad_norm(nn_params *ps, double max_norm) {
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
