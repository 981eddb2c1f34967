/* The per-step context: chunked arenas (small objects, host tensor data, device tensor data),
 * modes, the rng and the backend choice. */
#include <stdlib.h>

#include "common/log.h"
#include "nn/nn_impl.h"

#define NN_ARENA_ALIGN 64
#define NN_CHUNK_MIN ((size_t)64 << 20)

/* ---- the arena: chunks in one backend's memory (the CPU's for the host arena) ---------------- */

static nn_chunk *chunk_new(const nn_backend *be, size_t size) {
    nn_chunk *c = malloc(sizeof *c);
    NN_ASSERT(c != NULL, "out of memory: arena chunk header");
    c->base = be->alloc(size);
    NN_ASSERT(c->base != NULL, "out of %s memory: arena chunk of %zu bytes", be->name, size);
    c->size = size;
    c->used = 0;
    c->next = NULL;
    return c;
}

static void arena_free(nn_arena *a, const nn_backend *be) {
    for (nn_chunk *c = a->chunks; c;) {
        nn_chunk *next = c->next;
        be->free(c->base);
        free(c);
        c = next;
    }
    a->chunks = a->cur = NULL;
    a->used = 0;
}

/* Empty the arena for the next step, keeping its memory. A step that spilled over into further
 * chunks (the first step of a run: 64, 128, 256, 512 MB ..., the last mostly untouched reserve)
 * leaves them replaced by one chunk of what it used, in 2 MiB steps and never smaller than the
 * first chunk: the next step of the same shapes fits in it without a gap, and other work
 * between steps (an evaluation pass in the training ctx) reuses the step's pages instead of
 * touching the unused tails of doubled chunks, which would add to the resident memory. The old
 * chunks go first, so the resident peak stays the step's. */
static void arena_reset(nn_arena *a, const nn_backend *be) {
    if (a->chunks && a->chunks->next) {
        size_t step = (size_t)2 << 20, size = (a->used + step - 1) / step * step;
        if (size < a->chunks->size) size = a->chunks->size;
        arena_free(a, be);
        a->chunks = chunk_new(be, size);
    }
    for (nn_chunk *c = a->chunks; c; c = c->next) c->used = 0;
    a->cur = a->chunks;
    a->used = 0;
}

static void *arena_alloc(nn_arena *a, const nn_backend *be, size_t bytes) {
    size_t need = (bytes + NN_ARENA_ALIGN - 1) & ~(size_t)(NN_ARENA_ALIGN - 1);
    if (need == 0) need = NN_ARENA_ALIGN;
    if (!a->chunks) a->chunks = a->cur = chunk_new(be, need > NN_CHUNK_MIN ? need : NN_CHUNK_MIN);
    for (;;) {
        nn_chunk *c = a->cur;
        if (c->size - c->used >= need) {
            void *p = c->base + c->used;
            c->used += need;
            a->used += need;
            if (a->used > a->peak) a->peak = a->used;
            return p;
        }
        if (c->next) {
            a->cur = c->next;
            continue;
        }
        /* Grow geometrically so that a big first step needs few chunks (merged at the reset). */
        size_t size = c->size * 2 > need ? c->size * 2 : need;
        c->next = chunk_new(be, size);
        a->cur = c->next;
    }
}

/* ---- the ctx ---------------------------------------------------------------------------------- */

/* Host memory in use (small objects and host tensor data), and its peak. */
static void host_note_peak(nn_ctx *ctx) {
    size_t used = ctx->host.used + ctx->data.used;
    if (used > ctx->peak) ctx->peak = used;
}

nn_ctx *nn_ctx_new(void) {
    nn_ctx *ctx = calloc(1, sizeof *ctx);
    NN_ASSERT(ctx != NULL, "out of memory: nn_ctx");
    ctx->host.chunks = ctx->host.cur = chunk_new(&nn_backend_cpu, NN_CHUNK_MIN);
    ctx->grad_enabled = 1;
    ctx->training = 1;
    nd_rng_seed(&ctx->rng, 0);
    ctx->backend = &nn_backend_cpu;
    return ctx;
}

/* Release the device arena and workspace (before a backend switch and in nn_ctx_free). */
static void device_memory_free(nn_ctx *ctx) {
    arena_free(&ctx->dev, ctx->backend);
    if (ctx->dscratch) ctx->backend->free(ctx->dscratch);
    ctx->dscratch = NULL;
    ctx->dscratch_size = 0;
}

void nn_ctx_free(nn_ctx *ctx) {
    if (!ctx) return;
    device_memory_free(ctx);
    arena_free(&ctx->host, &nn_backend_cpu);
    arena_free(&ctx->data, &nn_backend_cpu);
    free(ctx->tape);
    free(ctx->scratch);
    free(ctx->grad_free);
    free(ctx);
}

void nn_ctx_reset(nn_ctx *ctx) {
    arena_reset(&ctx->host, &nn_backend_cpu);
    arena_reset(&ctx->data, &nn_backend_cpu);
    arena_reset(&ctx->dev, ctx->backend);
    ctx->tape_len = 0;
    ctx->grad_free_len = 0; /* their memory was in the arena just reset */
}

void *nn__alloc(nn_ctx *ctx, size_t bytes) {
    void *p = arena_alloc(&ctx->host, &nn_backend_cpu, bytes);
    host_note_peak(ctx);
    return p;
}

void *nn__zalloc(nn_ctx *ctx, size_t bytes) {
    void *p = nn__alloc(ctx, bytes);
    memset(p, 0, bytes);
    return p;
}

void *nn_ctx_alloc(nn_ctx *ctx, size_t bytes) { return nn__alloc(ctx, bytes); }

/* Tensor memory: the host data arena for a host backend, else the device arena (the same
 * scheme in the backend's memory). */
void *nn__dalloc(nn_ctx *ctx, size_t bytes) {
    if (!ctx->backend->host) return arena_alloc(&ctx->dev, ctx->backend, bytes);
    void *p = arena_alloc(&ctx->data, &nn_backend_cpu, bytes);
    host_note_peak(ctx);
    return p;
}

void *nn__dzalloc(nn_ctx *ctx, size_t bytes) {
    void *p = nn__dalloc(ctx, bytes);
    ctx->backend->zero(p, bytes);
    return p;
}

void *nn__dscratch(nn_ctx *ctx, size_t bytes) {
    if (ctx->backend->host) return nn__scratch(ctx, bytes);
    if (bytes > ctx->dscratch_size) {
        if (ctx->dscratch) ctx->backend->free(ctx->dscratch);
        size_t size = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        ctx->dscratch = ctx->backend->alloc(size);
        NN_ASSERT(ctx->dscratch != NULL, "out of %s memory: workspace of %zu bytes", ctx->backend->name, size);
        ctx->dscratch_size = size;
    }
    return ctx->dscratch;
}

const nn_backend *nn__tensor_backend(const nn_ctx *ctx, const nn_tensor *t) {
    if (!(t->flags & NN_TENSOR_DEVICE)) return &nn_backend_cpu;
    NN_ASSERT(ctx && !ctx->backend->host, "a device tensor reached a %s ctx: move the ctx (nn_ctx_set_backend) "
              "and the parameters (nn_params_to_device) to the same device", ctx ? ctx->backend->name : "NULL");
    return ctx->backend;
}

int nn_ctx_set_retain_grads(nn_ctx *ctx, int retain) {
    int old = ctx->retain_grads;
    ctx->retain_grads = retain != 0;
    return old;
}

int nn_ctx_set_recycle_activations(nn_ctx *ctx, int recycle) {
    int old = ctx->recycle_activations;
    ctx->recycle_activations = recycle != 0;
    return old;
}

int nn__ctx_owns_data(const nn_ctx *ctx, const void *p) {
    const nn_arena *a = ctx->backend->host ? &ctx->data : &ctx->dev;
    const unsigned char *q = p;
    for (const nn_chunk *c = a->chunks; c; c = c->next)
        if (q >= c->base && q < c->base + c->size) return 1;
    return 0;
}

int nn_ctx_set_grad(nn_ctx *ctx, int enabled) {
    int old = ctx->grad_enabled;
    ctx->grad_enabled = enabled != 0;
    return old;
}
int nn_ctx_grad_enabled(const nn_ctx *ctx) { return ctx->grad_enabled; }

int nn_ctx_set_training(nn_ctx *ctx, int training) {
    int old = ctx->training;
    ctx->training = training != 0;
    return old;
}
int nn_ctx_training(const nn_ctx *ctx) { return ctx->training; }

void nn_ctx_seed(nn_ctx *ctx, uint64_t seed) { nd_rng_seed(&ctx->rng, seed); }
nd_rng *nn_ctx_rng(nn_ctx *ctx) { return &ctx->rng; }
size_t nn_ctx_bytes_used(const nn_ctx *ctx) { return ctx->host.used + ctx->data.used; }
size_t nn_ctx_bytes_peak(const nn_ctx *ctx) { return ctx->peak; }
size_t nn_ctx_bytes_reserved(const nn_ctx *ctx) {
    size_t n = 0;
    const nn_arena *arenas[3] = {&ctx->host, &ctx->data, &ctx->dev};
    for (int i = 0; i < 3; i++)
        for (const nn_chunk *c = arenas[i]->chunks; c; c = c->next) n += c->size;
    return n;
}
int64_t nn_ctx_tape_len(const nn_ctx *ctx) { return ctx->tape_len; }

int nn__backend_by_name(const char *name, const nn_backend **out) {
    if (strcmp(name, "cpu") == 0) {
        *out = &nn_backend_cpu;
    } else if (strcmp(name, "emulated") == 0) {
        *out = &nn_backend_emulated;
    } else if (strncmp(name, "cuda", 4) == 0 && (name[4] == '\0' || name[4] == ':')) {
#ifdef NN_USE_CUDA
        int rc = nn__cuda_select(name);
        if (rc) return rc;
        *out = &nn_backend_cuda;
#else
        return nd_fail(ND_ERR_UNSUPPORTED, "nn: device '%s' needs a CUDA build (make CUDA=1); this one has: cpu", name);
#endif
    } else {
        return nd_fail(ND_ERR_INVALID, "nn: unknown device '%s' (expected cpu, cuda or cuda:N)", name);
    }
    return ND_OK;
}

int nn_ctx_set_backend(nn_ctx *ctx, const char *name) {
    const nn_backend *be = NULL;
    int rc = nn__backend_by_name(name, &be);
    if (rc) return rc;
    if (be != ctx->backend) {
        device_memory_free(ctx);
        nn_ctx_reset(ctx);
        ctx->backend = be;
    }
    return ND_OK;
}

int nn_cuda_device_count(void) {
#ifdef NN_USE_CUDA
    return nn__cuda_device_count();
#else
    return 0;
#endif
}

void *nn_cuda_stream(void) {
#ifdef NN_USE_CUDA
    return nn__cuda_stream_handle();
#else
    return NULL;
#endif
}

void nn_ctx_sync(nn_ctx *ctx) {
#ifdef NN_USE_CUDA
    if (ctx->backend == &nn_backend_cuda) nn__cuda_sync();
#else
    (void)ctx;
#endif
}

const char *nn_ctx_backend(const nn_ctx *ctx) { return ctx->backend->name; }

void *nn__scratch(nn_ctx *ctx, size_t bytes) {
    if (bytes > ctx->scratch_size) {
        free(ctx->scratch);
        size_t size = (bytes + 4095) & ~(size_t)4095;
        ctx->scratch = aligned_alloc(NN_ARENA_ALIGN, size);
        NN_ASSERT(ctx->scratch != NULL, "out of memory: scratch of %zu bytes", size);
        ctx->scratch_size = size;
    }
    return ctx->scratch;
}
