/* The tape: nodes recorded by ops during forward, run in reverse by nn_backward. */
#include <stdint.h>
#include <stdlib.h>

#include "common/log.h"
#include "nn/nn_impl.h"

const char *const nn_op_names[NN_OP_COUNT] = {
#define X(E, n) #n,
#include "nn/ops/ops.def"
#undef X
};


nn_node *nn__node(nn_ctx *ctx, nn_op op, int nin, nn_tensor **ins) {
    nn_node *node = nn__alloc(ctx, sizeof *node);
    memset(node, 0, offsetof(nn_node, p));
    node->op = op;
    node->nin = nin;
    node->ins = nin <= NN_NODE_MAX_IN ? node->in : nn__alloc(ctx, (size_t)nin * sizeof(nn_tensor *));
    for (int i = 0; i < nin; i++) {
        NN_ASSERT(ins[i] != NULL, "%s: input %d is NULL", nn_op_names[op], i);
        node->ins[i] = ins[i];
    }
    return node;
}

static int node_needs_grad(const nn_ctx *ctx, const nn_node *node) {
    if (!ctx->grad_enabled) return 0;
    for (int i = 0; i < node->nin; i++)
        if (node->ins[i]->flags & NN_TENSOR_REQUIRES_GRAD) return 1;
    return 0;
}

/* An op the ctx's device backend lacks runs on the CPU over host copies: inputs (and, backward,
 * the output and the gradients) are copied to the host arena, the CPU kernel runs, the results go
 * back, and the tensors get their device pointers again. Slow, but every op works everywhere. */
typedef struct swapped {
    nn_tensor *t;
    float *data, *grad;
    uint32_t flags;
} swapped;

static int seen(const swapped *sw, int n, const nn_tensor *t) {
    for (int i = 0; i < n; i++)
        if (sw[i].t == t) return 1;
    return 0;
}

static float *host_copy(nn_ctx *ctx, const float *dev, int64_t numel) {
    float *h = nn__alloc(ctx, (size_t)numel * sizeof(float));
    ctx->backend->download(h, dev, (size_t)numel * sizeof(float));
    return h;
}

static void run_on_host(nn_ctx *ctx, nn_node *node, int backward) {
    const nn_backend *dev = ctx->backend;
    /* A view's output aliases its input's memory: its forward moves no data. */
    if (!backward && (node->out->flags & NN_TENSOR_VIEW)) return;
    swapped *sw = nn__alloc(ctx, (size_t)(node->nin + 1) * sizeof *sw);
    int n = 0;
    for (int i = 0; i <= node->nin; i++) {
        nn_tensor *t = i < node->nin ? node->ins[i] : node->out;
        if (seen(sw, n, t)) continue;
        swapped *s = &sw[n++];
        s->t = t;
        s->data = t->data;
        s->grad = t->grad;
        s->flags = t->flags;
        int is_out = t == node->out;
        /* Forward overwrites the output: it needs no copy in. */
        t->data = (is_out && !backward) ? nn__alloc(ctx, (size_t)t->numel * sizeof(float)) : host_copy(ctx, t->data, t->numel);
        if (!backward) continue;
        if (t->grad)
            t->grad = host_copy(ctx, t->grad, t->numel);
        else if (t->flags & NN_TENSOR_REQUIRES_GRAD)
            t->grad = nn__zalloc(ctx, (size_t)t->numel * sizeof(float));
        t->flags &= ~(uint32_t)NN_TENSOR_DEVICE;
    }
    nn_backend_cpu.run(ctx, node, backward);
    for (int i = 0; i < n; i++) {
        swapped *s = &sw[i];
        nn_tensor *t = s->t;
        if (!backward && t == node->out) dev->upload(s->data, t->data, (size_t)t->numel * sizeof(float));
        if (backward && t->grad && t != node->out) {
            float *g = s->grad ? s->grad : nn__dalloc(ctx, (size_t)t->numel * sizeof(float));
            dev->upload(g, t->grad, (size_t)t->numel * sizeof(float));
            s->grad = g;
        }
        t->data = s->data;
        t->grad = s->grad;
        t->flags = s->flags;
    }
}

static void check_memory(const nn_ctx *ctx, const nn_node *node) {
    int want = !ctx->backend->host;
    for (int i = 0; i < node->nin; i++) {
        const nn_tensor *t = node->ins[i];
        NN_ASSERT(((t->flags & NN_TENSOR_DEVICE) != 0) == want,
                  "%s: input %d%s%s is in %s memory but the ctx runs on %s: move the parameters with "
                  "nn_params_to_device and make inputs in the ctx", nn_op_names[node->op], i, t->name ? " " : "",
                  t->name ? t->name : "", (t->flags & NN_TENSOR_DEVICE) ? "device" : "host", ctx->backend->name);
    }
}

static void run(nn_ctx *ctx, nn_node *node, int backward) {
    const nn_backend *be = ctx->backend;
    if (!backward) check_memory(ctx, node);
    if (be->host || be->supports_op(node->op)) {
        be->run(ctx, node, backward);
        return;
    }
    uint64_t bit = 1ull << (node->op % 64);
    if (!(ctx->warned[node->op / 64] & bit)) {
        ctx->warned[node->op / 64] |= bit;
        ND_WARN("nn: op %s has no %s kernel; running it on the CPU", nn_op_names[node->op], be->name);
    }
    run_on_host(ctx, node, backward);
}

void nn__node_run(nn_ctx *ctx, nn_node *node) {
    NN_ASSERT(node->out != NULL, "%s: constructor made no output", nn_op_names[node->op]);
    int record = node_needs_grad(ctx, node);
    if (record) node->out->flags |= NN_TENSOR_REQUIRES_GRAD;
    /* Views (reshape) copy their header from the input: the output is in the ctx's memory. */
    if (!ctx->backend->host) node->out->flags |= NN_TENSOR_DEVICE;
    run(ctx, node, 0);
    if (!record) return;
    if (ctx->tape_len == ctx->tape_cap) {
        int64_t cap = ctx->tape_cap ? ctx->tape_cap * 2 : 1024;
        nn_node **tape = realloc(ctx->tape, (size_t)cap * sizeof *tape);
        NN_ASSERT(tape != NULL, "out of memory: tape of %lld nodes", (long long)cap);
        ctx->tape = tape;
        ctx->tape_cap = cap;
    }
    ctx->tape[ctx->tape_len++] = node;
}

/* The memory of one activation and the first tape node that makes or reads it: once that node's
 * backward has run, no backward step reads the memory again (backward runs the tape in reverse,
 * and a node's backward reads only its own inputs, output and saved buffers). Keyed by the data
 * pointer, so a view (reshape: the same pointer) keeps its base alive as long as itself. */
typedef struct data_use {
    void *p;
    size_t bytes;
    int64_t first;
} data_use;

static int use_by_pointer(const void *a, const void *b) {
    const data_use *x = a, *y = b;
    if (x->p != y->p) return (uintptr_t)x->p < (uintptr_t)y->p ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

static int use_by_first_desc(const void *a, const void *b) {
    const data_use *x = a, *y = b;
    return (x->first < y->first) - (x->first > y->first);
}

/* The activations of the tape in the ctx's own tensor memory (never parameters or the caller's
 * memory), ordered by first use, latest first; NULL (count 0) when there are none. */
static data_use *recyclable_activations(nn_ctx *ctx, int64_t *count) {
    *count = 0;
    int64_t cap = 0;
    for (int64_t i = 0; i < ctx->tape_len; i++) cap += ctx->tape[i]->nin + 1;
    data_use *u = cap ? malloc((size_t)cap * sizeof *u) : NULL;
    if (!u) return NULL; /* not recycled: only memory, never a wrong result */
    int64_t n = 0;
    for (int64_t i = 0; i < ctx->tape_len; i++) {
        const nn_node *node = ctx->tape[i];
        for (int j = 0; j <= node->nin; j++) {
            const nn_tensor *t = j < node->nin ? node->ins[j] : node->out;
            u[n++] = (data_use){t->data, (size_t)t->numel * sizeof(float), i};
        }
    }
    qsort(u, (size_t)n, sizeof *u, use_by_pointer);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if ((i == 0 || u[i].p != u[i - 1].p) && nn__ctx_owns_data(ctx, u[i].p)) u[m++] = u[i];
    qsort(u, (size_t)m, sizeof *u, use_by_first_desc);
    *count = m;
    return u;
}

static void run_tape(nn_ctx *ctx) {
    int64_t ndead = 0, k = 0;
    data_use *dead = ctx->recycle_activations && !ctx->retain_grads ? recyclable_activations(ctx, &ndead) : NULL;
    for (int64_t i = ctx->tape_len - 1; i >= 0; i--) {
        nn_node *node = ctx->tape[i];
        /* A node whose output no gradient reached contributes nothing. */
        if (node->out->grad) {
            run(ctx, node, 1);
            nn__grad_release(ctx, node->out);
        }
        /* Activations first used here are read by no backward step still to run. */
        for (; k < ndead && dead[k].first == i; k++) nn__grad_free_push(ctx, dead[k].p, dead[k].bytes);
    }
    free(dead);
}

/* Whether a node of the tape made t (then its gradient has one reader, that node's backward). */
static int made_on_tape(const nn_ctx *ctx, const nn_tensor *t) {
    for (int64_t i = ctx->tape_len - 1; i >= 0; i--)
        if (ctx->tape[i]->out == t) return 1;
    return 0;
}

void nn_backward(nn_ctx *ctx, nn_tensor *loss) {
    NN_ASSERT(loss->numel == 1, "nn_backward: loss must have one element, has %lld", (long long)loss->numel);
    float one = 1.0f;
    nn_backward_from(ctx, loss, &one);
}

void nn_backward_from(nn_ctx *ctx, nn_tensor *t, const float *grad) {
    const nn_backend *be = nn__tensor_backend(ctx, t);
    if (be->host) {
        if (!(t->flags & NN_TENSOR_REQUIRES_GRAD)) return; /* nothing upstream requires a gradient */
        if (!t->grad && !ctx->retain_grads && made_on_tape(ctx, t)) {
            /* t's gradient is read only by the node that made t, and released right after it
             * (nn__grad_release): the op can read the caller's seed in place, no copy. */
            t->grad = (float *)grad;
            ctx->borrowed_grad = grad;
            run_tape(ctx);
            if (t->grad == grad) t->grad = NULL;
            ctx->borrowed_grad = NULL;
            return;
        }
        /* A leaf keeps its gradient: the seed is copied in (or added, when backward already ran). */
        int fresh;
        float *g = nn__grad_first(ctx, t, &fresh);
        int64_t n = t->numel, block = 16384;
#pragma omp parallel for schedule(static) if (n > NN_PAR_MIN)
        for (int64_t i = 0; i < n; i += block) nn__vec_put(g + i, grad + i, n - i < block ? n - i : block, fresh);
    } else {
        float *g = nn__grad(ctx, t);
        if (!g) return;
        float *h = host_copy(ctx, g, t->numel);
        for (int64_t i = 0; i < t->numel; i++) h[i] += grad[i];
        be->upload(g, h, (size_t)t->numel * sizeof(float));
    }
    run_tape(ctx);
}
