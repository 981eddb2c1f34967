/* The element-wise two-input ops (add, sub, mul, minimum) differ only in three expressions;
 * this macro writes their forward and backward kernels once. In the expressions, `av` and `bv`
 * are the inputs at one element and `g` is the output gradient there:
 *   Y   the output,  DA  the gradient for a,  DB  the gradient for b,
 *   PASS  1 when DA is g itself (add, sub): a takes the output gradient's buffer as its own
 *         when it has none yet (nn__grad_pass), no copy.
 * a [any], b [same] or [1] (broadcast) -> y [same as a]. Backward accumulates (+=), or stores
 * (=) into a gradient this op is the first to reach (nn__grad_first); when b was broadcast its
 * gradient is summed in index order in double, so it does not depend on threads. */
#ifndef NN_OPS_BINARY_KERNEL_H
#define NN_OPS_BINARY_KERNEL_H

#include "nn/nn_impl.h"

/* One element-wise loop over i in [0, n): BV is b's value there (b[i], or b0 when broadcast).
 * Written out once per access pattern: with b[i * stride] and a stride unknown at compile time
 * gcc could not vectorise the loop and ran every add of a NASNet cell one float at a time. */
#define NN_BINARY_LOOP(n, BV, BODY)                                                                \
    _Pragma("omp parallel for simd schedule(static) if (n > NN_PAR_MIN)")                          \
    for (int64_t i = 0; i < n; i++) {                                                              \
        float av = a[i], bv = (BV);                                                                \
        (void)av, (void)bv;                                                                        \
        BODY;                                                                                      \
    }

#define NN_BINARY_OP(name, ENUM, Y, DA, DB, PASS)                                                  \
    static void name##_forward(nn_ctx *ctx, nn_node *node) {                                       \
        (void)ctx;                                                                                 \
        const float *a = node->ins[0]->data, *b = node->ins[1]->data;                              \
        int64_t n = node->out->numel;                                                              \
        float *y = node->out->data;                                                                \
        if (node->ins[1]->numel == 1) {                                                            \
            const float b0 = b[0];                                                                 \
            NN_BINARY_LOOP(n, b0, y[i] = (Y))                                                      \
        } else {                                                                                   \
            NN_BINARY_LOOP(n, b[i], y[i] = (Y))                                                    \
        }                                                                                          \
    }                                                                                              \
    static void name##_backward(nn_ctx *ctx, nn_node *node) {                                      \
        const float *a = node->ins[0]->data, *b = node->ins[1]->data, *dy = node->out->grad;       \
        int64_t n = node->out->numel;                                                              \
        int bcast = node->ins[1]->numel == 1, fresh;                                               \
        const float b0 = b[0];                                                                     \
        /* a's gradient is complete before b's is looked up: a and b may be one tensor. */         \
        float *da = NULL;                                                                          \
        if (!((PASS) && nn__grad_pass(ctx, node->out, node->ins[0])))                              \
            da = nn__grad_first(ctx, node->ins[0], &fresh);                                        \
        if (da && bcast && fresh) {                                                                \
            NN_BINARY_LOOP(n, b0, float g = dy[i]; da[i] = (DA))                                   \
        } else if (da && bcast) {                                                                  \
            NN_BINARY_LOOP(n, b0, float g = dy[i]; da[i] += (DA))                                  \
        } else if (da && fresh) {                                                                  \
            NN_BINARY_LOOP(n, b[i], float g = dy[i]; da[i] = (DA))                                 \
        } else if (da) {                                                                           \
            NN_BINARY_LOOP(n, b[i], float g = dy[i]; da[i] += (DA))                                \
        }                                                                                          \
        if (bcast) {                                                                               \
            float *db = nn__grad(ctx, node->ins[1]);                                               \
            if (!db) return;                                                                       \
            double s = 0.0;                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float av = a[i], bv = b0, g = dy[i];                                               \
                (void)av, (void)bv;                                                                \
                s += (DB);                                                                         \
            }                                                                                      \
            db[0] += (float)s;                                                                     \
            return;                                                                                \
        }                                                                                          \
        float *db = nn__grad_first(ctx, node->ins[1], &fresh);                                     \
        if (db && fresh) {                                                                         \
            NN_BINARY_LOOP(n, b[i], float g = dy[i]; db[i] = (DB))                                 \
        } else if (db) {                                                                           \
            NN_BINARY_LOOP(n, b[i], float g = dy[i]; db[i] += (DB))                                \
        }                                                                                          \
    }                                                                                              \
    const nn_op_impl nn_op_##name##_impl = {name##_forward, name##_backward};                      \
    nn_tensor *nn_##name(nn_ctx *ctx, nn_tensor *a, nn_tensor *b) { return nn__binary(ctx, ENUM, a, b); }

#endif
