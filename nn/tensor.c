/* Tensors in a ctx arena. */
#include <stdio.h>

#include "nn/nn_impl.h"

nn_tensor *nn__tensor(nn_ctx *ctx, int ndim, const int64_t *shape) {
    NN_ASSERT(ndim >= 0 && ndim <= NN_MAX_DIMS, "tensor rank %d outside 0..%d", ndim, NN_MAX_DIMS);
    nn_tensor *t = nn__alloc(ctx, sizeof *t);
    int64_t numel = 1;
    for (int i = 0; i < NN_MAX_DIMS; i++) {
        t->shape[i] = i < ndim ? shape[i] : 1;
        if (i < ndim) NN_ASSERT(shape[i] >= 1, "tensor dim %d is %lld (must be >= 1)", i, (long long)shape[i]);
        numel *= t->shape[i];
    }
    t->ndim = ndim;
    t->numel = numel;
    t->flags = ctx->backend->host ? 0 : NN_TENSOR_DEVICE;
    t->grad = NULL;
    t->name = NULL;
    t->data = nn__dalloc(ctx, (size_t)numel * sizeof(float));
    return t;
}

nn_tensor *nn_tensor_new(nn_ctx *ctx, int ndim, const int64_t *shape) {
    nn_tensor *t = nn__tensor(ctx, ndim, shape);
    ctx->backend->zero(t->data, (size_t)t->numel * sizeof(float));
    return t;
}

nn_tensor *nn_tensor_from(nn_ctx *ctx, int ndim, const int64_t *shape, const float *data) {
    nn_tensor *t = nn__tensor(ctx, ndim, shape);
    ctx->backend->upload(t->data, data, (size_t)t->numel * sizeof(float));
    return t;
}

nn_tensor *nn_tensor_full(nn_ctx *ctx, int ndim, const int64_t *shape, float value) {
    nn_tensor *t = nn__tensor(ctx, ndim, shape);
    float *h = ctx->backend->host ? t->data : nn__alloc(ctx, (size_t)t->numel * sizeof(float));
    for (int64_t i = 0; i < t->numel; i++) h[i] = value;
    if (h != t->data) ctx->backend->upload(t->data, h, (size_t)t->numel * sizeof(float));
    return t;
}

const float *nn_tensor_host(nn_ctx *ctx, const nn_tensor *t) {
    const nn_backend *be = nn__tensor_backend(ctx, t);
    if (be->host) return t->data;
    float *h = nn__alloc(ctx, (size_t)t->numel * sizeof(float));
    be->download(h, t->data, (size_t)t->numel * sizeof(float));
    return h;
}

const float *nn_tensor_host_grad(nn_ctx *ctx, const nn_tensor *t) {
    if (!t->grad) return NULL;
    const nn_backend *be = nn__tensor_backend(ctx, t);
    if (be->host) return t->grad;
    float *h = nn__alloc(ctx, (size_t)t->numel * sizeof(float));
    be->download(h, t->grad, (size_t)t->numel * sizeof(float));
    return h;
}

float nn_item(nn_ctx *ctx, const nn_tensor *t) {
    NN_ASSERT(t->numel >= 1, "nn_item: empty tensor");
    const nn_backend *be = nn__tensor_backend(ctx, t);
    if (be->host) return t->data[0];
    float v;
    be->download(&v, t->data, sizeof v);
    return v;
}

nn_tensor *nn_tensor_to_host(nn_ctx *ctx, nn_tensor *t) {
    if (!(t->flags & NN_TENSOR_DEVICE)) return t;
    nn_tensor *h = nn__alloc(ctx, sizeof *h);
    *h = *t;
    h->data = (float *)nn_tensor_host(ctx, t);
    h->grad = NULL;
    h->flags = 0;
    return h;
}

nn_tensor *nn_tensor_new_host(nn_ctx *ctx, int ndim, const int64_t *shape) {
    const nn_backend *be = ctx->backend;
    ctx->backend = &nn_backend_cpu; /* nn__tensor allocates in the ctx backend's memory */
    nn_tensor *t = nn__tensor(ctx, ndim, shape);
    ctx->backend = be;
    memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

void nn_tensor_set(nn_ctx *ctx, nn_tensor *t, const float *host) {
    nn__tensor_backend(ctx, t)->upload(t->data, host, (size_t)t->numel * sizeof(float));
}

void nn_tensor_requires_grad(nn_tensor *t) { t->flags |= NN_TENSOR_REQUIRES_GRAD; }

int nn_tensor_same_shape(const nn_tensor *a, const nn_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *nn_tensor_shape_str(const nn_tensor *t, char *buf, size_t size) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (int i = 0; i < t->ndim && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (off < size) snprintf(buf + off, size - off, "]");
    return buf;
}

/* The bytes a buffer of `bytes` spans in the arena, which aligns every allocation to 64. */
static size_t span(size_t bytes) { return bytes ? (bytes + 63) & ~(size_t)63 : 64; }

/* The front of the smallest free block that holds `bytes` (the rest of it stays free), or NULL.
 * The list is short: its blocks are merged with their neighbours as they come back, and they
 * are the gradients released and not yet reused (and, with recycle_activations, the memory of
 * activations backward is done with). */
static void *grad_reuse(nn_ctx *ctx, size_t bytes) {
    size_t need = span(bytes);
    int64_t best = -1;
    for (int64_t i = ctx->grad_free_len - 1; i >= 0; i--)
        if (ctx->grad_free[i].bytes >= need && (best < 0 || ctx->grad_free[i].bytes < ctx->grad_free[best].bytes)) {
            best = i;
            if (ctx->grad_free[i].bytes == need) break;
        }
    if (best < 0) return NULL;
    nn_grad_buf *b = &ctx->grad_free[best];
    void *p = b->p;
    if (b->bytes == need) {
        *b = ctx->grad_free[--ctx->grad_free_len];
    } else {
        b->p = (unsigned char *)b->p + need;
        b->bytes -= need;
    }
    return p;
}

void nn__grad_release(nn_ctx *ctx, nn_tensor *t) {
    if (t->grad && t->grad == ctx->borrowed_grad) {
        /* The caller's seed (nn_backward_from): not ours to recycle. */
        t->grad = NULL;
        ctx->borrowed_grad = NULL;
        return;
    }
    if (ctx->retain_grads || !t->grad) return;
    nn__grad_free_push(ctx, t->grad, (size_t)t->numel * sizeof(float));
    t->grad = NULL;
}

void nn__grad_free_push(nn_ctx *ctx, void *p, size_t bytes) {
    /* Merge with the free blocks right below and right above (the list never holds two
     * neighbours), so that the memory of several dead tensors can hold one larger gradient. */
    unsigned char *lo = p;
    size_t n = span(bytes);
    for (int64_t i = 0; i < ctx->grad_free_len;) {
        unsigned char *q = ctx->grad_free[i].p;
        size_t qn = ctx->grad_free[i].bytes;
        if (q + qn == lo || lo + n == q) {
            if (q < lo) lo = q;
            n += qn;
            ctx->grad_free[i] = ctx->grad_free[--ctx->grad_free_len];
            continue;
        }
        i++;
    }
    p = lo;
    bytes = n;
    if (ctx->grad_free_len == ctx->grad_free_cap) {
        int64_t cap = ctx->grad_free_cap ? ctx->grad_free_cap * 2 : 256;
        nn_grad_buf *list = realloc(ctx->grad_free, (size_t)cap * sizeof *list);
        if (!list) return; /* not reused: only memory, never a wrong result */
        ctx->grad_free = list;
        ctx->grad_free_cap = cap;
    }
    ctx->grad_free[ctx->grad_free_len++] = (nn_grad_buf){p, bytes};
}

float *nn__host_temp(nn_ctx *ctx, size_t bytes) {
    if (!ctx->backend->host) return nn__alloc(ctx, bytes);
    float *p = grad_reuse(ctx, bytes);
    return p ? p : nn__dalloc(ctx, bytes);
}

void nn__host_temp_release(nn_ctx *ctx, float *p, size_t bytes) {
    if (ctx->backend->host) nn__grad_free_push(ctx, p, bytes);
}

float *nn__grad(nn_ctx *ctx, nn_tensor *t) {
    if (!(t->flags & NN_TENSOR_REQUIRES_GRAD)) return NULL;
    if (!t->grad) {
        size_t bytes = (size_t)t->numel * sizeof(float);
        t->grad = grad_reuse(ctx, bytes);
        if (t->grad) ctx->backend->zero(t->grad, bytes);
        else t->grad = nn__dzalloc(ctx, bytes);
    }
    return t->grad;
}

int nn__grad_pass(nn_ctx *ctx, nn_tensor *from, nn_tensor *to) {
    if (!(to->flags & NN_TENSOR_REQUIRES_GRAD) || to->grad || (to->flags & NN_TENSOR_PARAM)) return 0;
    if (!from->grad || from->grad == ctx->borrowed_grad || ctx->retain_grads || from->numel != to->numel) return 0;
    if (!nn__ctx_owns_data(ctx, from->grad)) return 0;
    to->grad = from->grad;
    from->grad = NULL;
    return 1;
}

float *nn__grad_first(nn_ctx *ctx, nn_tensor *t, int *fresh) {
    *fresh = 0;
    if (!(t->flags & NN_TENSOR_REQUIRES_GRAD)) return NULL;
    if (!t->grad) {
        size_t bytes = (size_t)t->numel * sizeof(float);
        t->grad = grad_reuse(ctx, bytes);
        if (!t->grad) t->grad = nn__dalloc(ctx, bytes);
        *fresh = 1;
    }
    return t->grad;
}

nn_tensor *nn__tensor_like(nn_ctx *ctx, const nn_tensor *x) { return nn__tensor(ctx, x->ndim, x->shape); }

nn_tensor *nn__unary(nn_ctx *ctx, nn_op op, nn_tensor *x, const void *params, size_t psize) {
    NN_ASSERT(psize <= NN_NODE_PARAM_BYTES, "op parameters too large");
    nn_node *node = nn__node(ctx, op, 1, &x);
    if (params) memcpy(node->p, params, psize);
    node->out = nn__tensor_like(ctx, x);
    nn__node_run(ctx, node);
    return node->out;
}

nn_tensor *nn__binary(nn_ctx *ctx, nn_op op, nn_tensor *a, nn_tensor *b) {
    char sa[64], sb[64];
    NN_ASSERT(a && b, "%s: NULL input", nn_op_names[op]);
    NN_ASSERT(nn_tensor_same_shape(a, b) || b->numel == 1, "%s: shapes %s and %s differ", nn_op_names[op],
              NN_SHAPE_STR(a, sa), NN_SHAPE_STR(b, sb));
    nn_tensor *ins[2] = {a, b};
    nn_node *node = nn__node(ctx, op, 2, ins);
    node->out = nn__tensor_like(ctx, a);
    nn__node_run(ctx, node);
    return node->out;
}
