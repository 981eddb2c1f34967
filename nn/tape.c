/* The tape: nodes recorded by ops during forward, run in reverse by nn_backward. */
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

static void run(nn_ctx *ctx, nn_node *node, int backward) {
    const nn_backend *be = ctx->backend;
    if (be != &nn_backend_cpu && !be->supports_op(node->op)) {
        uint64_t bit = 1ull << (node->op % 64);
        if (!(ctx->warned[node->op / 64] & bit)) {
            ctx->warned[node->op / 64] |= bit;
            ND_WARN("nn: op %s has no %s kernel; running it on the CPU", nn_op_names[node->op], be->name);
        }
        be = &nn_backend_cpu;
    }
    be->run(ctx, node, backward);
}

void nn__node_run(nn_ctx *ctx, nn_node *node) {
    NN_ASSERT(node->out != NULL, "%s: constructor made no output", nn_op_names[node->op]);
    int record = node_needs_grad(ctx, node);
    if (record) node->out->flags |= NN_TENSOR_REQUIRES_GRAD;
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

static void run_tape(nn_ctx *ctx) {
    for (int64_t i = ctx->tape_len - 1; i >= 0; i--) {
        nn_node *node = ctx->tape[i];
        /* A node whose output no gradient reached contributes nothing. */
        if (!node->out->grad) continue;
        run(ctx, node, 1);
    }
}

void nn_backward(nn_ctx *ctx, nn_tensor *loss) {
    NN_ASSERT(loss->numel == 1, "nn_backward: loss must have one element, has %lld", (long long)loss->numel);
    float one = 1.0f;
    nn_backward_from(ctx, loss, &one);
}

void nn_backward_from(nn_ctx *ctx, nn_tensor *t, const float *grad) {
    float *g = nn__grad(ctx, t);
    if (!g) return; /* nothing upstream requires a gradient */
    for (int64_t i = 0; i < t->numel; i++) g[i] += grad[i];
    run_tape(ctx);
}
