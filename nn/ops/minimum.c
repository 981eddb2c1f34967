/* minimum: y = min(a, b), ties send the gradient to a. b may have one element (broadcast). */
#include "nn/nn_impl.h"

/* a [any], b [same] or [1] -> y [same as a] */
static void minimum_forward(nn_ctx *ctx, nn_node *node) {
    (void)ctx;
    const float *a = node->ins[0]->data, *b = node->ins[1]->data;
    int64_t bs = node->ins[1]->numel == 1 ? 0 : 1, n = node->out->numel;
    float *y = node->out->data;
#pragma omp parallel for simd schedule(static) if (n > NN_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float av = a[i], bv = b[i * bs];
        y[i] = av <= bv ? av : bv;
    }
}

/* dy -> da (+=), db (+=; summed in index order when b was broadcast) */
static void minimum_backward(nn_ctx *ctx, nn_node *node) {
    const float *a = node->ins[0]->data, *b = node->ins[1]->data, *dy = node->out->grad;
    float *da = nn__grad(ctx, node->ins[0]), *db = nn__grad(ctx, node->ins[1]);
    int64_t bs = node->ins[1]->numel == 1 ? 0 : 1, n = node->out->numel;
    (void)a;
    (void)b;
    if (da)
        for (int64_t i = 0; i < n; i++) {
            float av = a[i], bv = b[i * bs], g = dy[i];
            (void)av;
            (void)bv;
            da[i] += av <= bv ? g : 0.0f;
        }
    if (db) {
        if (bs) {
            for (int64_t i = 0; i < n; i++) {
                float av = a[i], bv = b[i], g = dy[i];
                (void)av;
                (void)bv;
                db[i] += av <= bv ? 0.0f : g;
            }
        } else {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) {
                float av = a[i], bv = b[0], g = dy[i];
                (void)av;
                (void)bv;
                s += av <= bv ? 0.0f : g;
            }
            db[0] += (float)s;
        }
    }
}

const nn_op_impl nn_op_minimum_impl = {minimum_forward, minimum_backward};

nn_tensor *nn_minimum(nn_ctx *ctx, nn_tensor *a, nn_tensor *b) { return nn__binary(ctx, NN_OP_MINIMUM, a, b); }
