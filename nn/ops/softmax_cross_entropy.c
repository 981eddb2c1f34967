/* softmax_cross_entropy: mean over non-ignored examples of -sum_c q_c log softmax(x)_c with
 * q = (1 - s) one_hot(label) + s / C (label smoothing as PyTorch and TF). */
#include <math.h>

#include "nn/nn_impl.h"

typedef struct sce_p {
    float smoothing;
    int64_t count; /* non-ignored examples */
} sce_p;

typedef struct sce_saved {
    float *prob;     /* softmax [N,C] */
    int32_t *labels; /* [N] */
} sce_saved;

/* logits [N,C], labels [N] -> loss [] */
static void softmax_cross_entropy_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const sce_p *p = NN_NODE_P(node, sce_p);
    sce_saved *s = node->saved;
    const nn_tensor *x = node->ins[0];
    int64_t n = x->shape[0], c = x->shape[1];
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *xr = x->data + i * c;
        float *pr = s->prob + i * c;
        float mx = xr[0];
        for (int64_t j = 1; j < c; j++) mx = xr[j] > mx ? xr[j] : mx;
        double z = 0.0;
        for (int64_t j = 0; j < c; j++) z += exp((double)xr[j] - mx);
        double lz = log(z) + mx;
        for (int64_t j = 0; j < c; j++) pr[j] = (float)exp((double)xr[j] - lz);
        if (s->labels[i] < 0) continue;
        double l = 0.0;
        for (int64_t j = 0; j < c; j++) {
            double q = p->smoothing / (double)c + (j == s->labels[i] ? 1.0 - p->smoothing : 0.0);
            if (q != 0.0) l -= q * ((double)xr[j] - lz);
        }
        total += l;
    }
    node->out->data[0] = p->count > 0 ? (float)(total / (double)p->count) : 0.0f;
}

/* dloss -> dlogits += dloss (softmax - q) / count */
static void softmax_cross_entropy_backward(nn_ctx *ctx, nn_node *node) {
    const sce_p *p = NN_NODE_P(node, sce_p);
    const sce_saved *s = node->saved;
    float *dx = nn__grad(ctx, node->ins[0]);
    if (!dx || p->count == 0) return;
    int64_t n = node->ins[0]->shape[0], c = node->ins[0]->shape[1];
    float g = node->out->grad[0] / (float)p->count;
    for (int64_t i = 0; i < n; i++) {
        if (s->labels[i] < 0) continue;
        for (int64_t j = 0; j < c; j++) {
            float q = p->smoothing / (float)c + (j == s->labels[i] ? 1.0f - p->smoothing : 0.0f);
            dx[i * c + j] += g * (s->prob[i * c + j] - q);
        }
    }
}

const nn_op_impl nn_op_softmax_cross_entropy_impl = {softmax_cross_entropy_forward, softmax_cross_entropy_backward};

nn_tensor *nn_softmax_cross_entropy(nn_ctx *ctx, nn_tensor *logits, const int32_t *labels, float label_smoothing) {
    char sx[64];
    NN_ASSERT(logits->ndim == 2, "softmax_cross_entropy: logits %s must be [N,C]", NN_SHAPE_STR(logits, sx));
    NN_ASSERT(label_smoothing >= 0.0f && label_smoothing <= 1.0f, "softmax_cross_entropy: smoothing outside [0,1]");
    int64_t n = logits->shape[0], c = logits->shape[1];
    nn_node *node = nn__node(ctx, NN_OP_SOFTMAX_CROSS_ENTROPY, 1, &logits);
    sce_saved *s = node->saved = nn__alloc(ctx, sizeof *s);
    s->prob = nn__alloc(ctx, (size_t)(n * c) * sizeof(float));
    s->labels = nn__alloc(ctx, (size_t)n * sizeof(int32_t));
    sce_p *p = NN_NODE_P(node, sce_p);
    p->smoothing = label_smoothing;
    p->count = 0;
    for (int64_t i = 0; i < n; i++) {
        NN_ASSERT(labels[i] < c, "softmax_cross_entropy: label %d of example %lld >= %lld classes", labels[i],
                  (long long)i, (long long)c);
        s->labels[i] = labels[i];
        p->count += labels[i] >= 0;
    }
    node->out = nn__tensor(ctx, 0, NULL);
    nn__node_run(ctx, node);
    return node->out;
}
