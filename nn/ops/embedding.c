/* embedding: rows of a table by index. */
#include "nn/nn_impl.h"

/* table [V,D], idx [n] -> y [n,D] */
static void embedding_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const int32_t *idx = node->saved;
    int64_t n = node->out->shape[0], d = node->out->shape[1];
    for (int64_t i = 0; i < n; i++)
        memcpy(node->out->data + i * d, node->ins[0]->data + idx[i] * d, (size_t)d * sizeof(float));
}

/* dy [n,D] -> dtable[idx[i]] += dy[i], rows added in index order */
static void embedding_backward(nn_ctx *ctx, nn_node *node) {
    float *dt = nn__grad(ctx, node->ins[0]);
    if (!dt) return;
    const int32_t *idx = node->saved;
    int64_t n = node->out->shape[0], d = node->out->shape[1];
    for (int64_t i = 0; i < n; i++) nn__vec_add(dt + idx[i] * d, node->out->grad + i * d, d);
}

const nn_op_impl nn_op_embedding_impl = {embedding_forward, embedding_backward};

nn_tensor *nn_embedding(nn_ctx *ctx, nn_tensor *table, const int32_t *idx, int64_t n) {
    char st[64];
    NN_ASSERT(table->ndim == 2, "embedding: table %s must be [V,D]", NN_SHAPE_STR(table, st));
    NN_ASSERT(n >= 1, "embedding: no indices");
    nn_node *node = nn__node(ctx, NN_OP_EMBEDDING, 1, &table);
    int32_t *copy = node->saved = nn__alloc(ctx, (size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        NN_ASSERT(idx[i] >= 0 && idx[i] < table->shape[0], "embedding: index %d outside [0,%lld)", idx[i],
                  (long long)table->shape[0]);
        copy[i] = idx[i];
    }
    node->out = nn__tensor(ctx, 2, NN_SHAPE(n, table->shape[1]));
    nn__node_run(ctx, node);
    return node->out;
}
