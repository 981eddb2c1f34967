/* The per-step context: a chunked arena, modes, the rng and the backend choice. */
#include <stdlib.h>

#include "common/log.h"
#include "nn/nn_impl.h"

#define NN_ARENA_ALIGN 64
#define NN_CHUNK_MIN ((size_t)64 << 20)

static nn_chunk *chunk_new(size_t size) {
    nn_chunk *c = malloc(sizeof *c);
    NN_ASSERT(c != NULL, "out of memory: arena chunk header");
    c->base = aligned_alloc(NN_ARENA_ALIGN, size);
    NN_ASSERT(c->base != NULL, "out of memory: arena chunk of %zu bytes", size);
    c->size = size;
    c->used = 0;
    c->next = NULL;
    return c;
}

nn_ctx *nn_ctx_new(void) {
    nn_ctx *ctx = calloc(1, sizeof *ctx);
    NN_ASSERT(ctx != NULL, "out of memory: nn_ctx");
    ctx->chunks = ctx->cur = chunk_new(NN_CHUNK_MIN);
    ctx->grad_enabled = 1;
    ctx->training = 1;
    nd_rng_seed(&ctx->rng, 0);
    ctx->backend = &nn_backend_cpu;
    return ctx;
}

void nn_ctx_free(nn_ctx *ctx) {
    if (!ctx) return;
    for (nn_chunk *c = ctx->chunks; c;) {
        nn_chunk *next = c->next;
        free(c->base);
        free(c);
        c = next;
    }
    free(ctx->tape);
    free(ctx->scratch);
    free(ctx);
}

void nn_ctx_reset(nn_ctx *ctx) {
    /* Keep every chunk: the next step typically needs the same memory again. */
    for (nn_chunk *c = ctx->chunks; c; c = c->next) c->used = 0;
    ctx->cur = ctx->chunks;
    ctx->used = 0;
    ctx->tape_len = 0;
}

void *nn__alloc(nn_ctx *ctx, size_t bytes) {
    size_t need = (bytes + NN_ARENA_ALIGN - 1) & ~(size_t)(NN_ARENA_ALIGN - 1);
    if (need == 0) need = NN_ARENA_ALIGN;
    for (;;) {
        nn_chunk *c = ctx->cur;
        if (c->size - c->used >= need) {
            void *p = c->base + c->used;
            c->used += need;
            ctx->used += need;
            if (ctx->used > ctx->peak) ctx->peak = ctx->used;
            return p;
        }
        if (c->next) {
            ctx->cur = c->next;
            continue;
        }
        /* Grow geometrically so that a big step needs few chunks. */
        size_t size = c->size * 2 > need ? c->size * 2 : need;
        if (size < NN_CHUNK_MIN) size = NN_CHUNK_MIN;
        c->next = chunk_new(size);
        ctx->cur = c->next;
    }
}

void *nn__zalloc(nn_ctx *ctx, size_t bytes) {
    void *p = nn__alloc(ctx, bytes);
    memset(p, 0, bytes);
    return p;
}

void *nn_ctx_alloc(nn_ctx *ctx, size_t bytes) { return nn__alloc(ctx, bytes); }

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
size_t nn_ctx_bytes_used(const nn_ctx *ctx) { return ctx->used; }
size_t nn_ctx_bytes_peak(const nn_ctx *ctx) { return ctx->peak; }
int64_t nn_ctx_tape_len(const nn_ctx *ctx) { return ctx->tape_len; }

int nn_ctx_set_backend(nn_ctx *ctx, const char *name) {
    if (strcmp(name, "cpu") == 0) {
        ctx->backend = &nn_backend_cpu;
        return ND_OK;
    }
#ifdef NN_USE_CUDA
    extern const nn_backend nn_backend_cuda;
    if (strcmp(name, "cuda") == 0) {
        ctx->backend = &nn_backend_cuda;
        return ND_OK;
    }
#endif
    return nd_fail(ND_ERR_UNSUPPORTED, "nn: backend '%s' is not available in this build (have: cpu%s)", name,
#ifdef NN_USE_CUDA
                   ", cuda"
#else
                   ""
#endif
    );
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
