/* Backward's recycling of activation memory (nn_ctx_set_recycle_activations, on in nas_train):
 * on a NASNet-A training step with the aux head and drop path, every parameter gradient is the
 * same bit for bit as without it, over several steps of one ctx (a reset must forget the recycled
 * memory), and the step's arena peak is smaller. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "backbone/nasnet_net.h"

enum { S = 32, B = 4, STEPS = 3 };

static nas_net_config small_net(void) {
    nas_net_config c;
    nas_net_preset("nasnet-a-cifar", &c);
    c.num_cells = 1;
    c.num_conv_filters = 6;
    c.image_size = S;
    c.num_classes = 3;
    c.use_aux_head = 1;
    c.drop_path_keep_prob = 0.7;
    c.total_training_steps = 10;
    return c;
}

/* STEPS optimizer steps from the same weights; the gradients of every parameter after each step
 * go to `grads`; returns the arena peak. */
static size_t run(int recycle, float *grads, int64_t cap) {
    nas_net_config c = small_net();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 3, &net), 0, "%s", nd_last_error());
    nn_params *ps = nas_net_params(net);
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_recycle_activations(ctx, recycle);
    nn_optim_config oc = nn_optim_sgd(0.9, 0, 5e-4);
    static float x[B * 3 * S * S];
    int32_t labels[B];
    for (int i = 0; i < B * 3 * S * S; i++) x[i] = (float)((i * 7919) % 255) / 127.5f - 1.0f;
    for (int i = 0; i < B; i++) labels[i] = i % 3;
    int64_t off = 0;
    for (int s = 0; s < STEPS; s++) {
        nn_ctx_reset(ctx);
        nn_ctx_seed(ctx, 100 + (uint64_t)s);
        nn_params_zero_grad(ps);
        nas_net_output o;
        cr_assert_eq(nas_net_forward(net, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(B, 3, S, S), x), s, &o), 0);
        cr_assert_not_null(o.aux_logits, "the step exercises the aux head");
        nn_tensor *loss = nn_softmax_cross_entropy(ctx, o.logits, labels, 0.1f);
        loss = nn_add(ctx, loss, nn_scale(ctx, nn_softmax_cross_entropy(ctx, o.aux_logits, labels, 0.1f), 0.4f, 0));
        nn_backward(ctx, loss);
        for (int64_t i = 0; i < nn_params_count(ps); i++) {
            nn_tensor *t = nn_params_at(ps, i);
            if (!t->grad) continue;
            cr_assert(off + t->numel <= cap);
            memcpy(grads + off, t->grad, sizeof(float) * (size_t)t->numel);
            off += t->numel;
        }
        nn_optim_step(ps, &oc, 0.05);
    }
    size_t peak = nn_ctx_bytes_peak(ctx);
    nn_ctx_free(ctx);
    nas_net_free(net);
    return peak;
}

Test(backbone_recycle, gradients_are_exact_and_the_step_is_smaller, .timeout = 120) {
    enum { CAP = 1 << 23 }; /* the aux head's 768-channel convolution has most of the weights */
    float *kept = calloc(CAP, sizeof(float)), *recycled = calloc(CAP, sizeof(float));
    size_t peak_kept = run(0, kept, CAP);
    size_t peak_recycled = run(1, recycled, CAP);
    cr_expect_eq(memcmp(kept, recycled, sizeof(float) * CAP), 0, "recycling activations changed a gradient");
    cr_expect(peak_recycled < peak_kept, "arena peak %zu recycled, %zu not", peak_recycled, peak_kept);
    cr_log_info("arena peak %zu bytes recycled, %zu not", peak_recycled, peak_kept);
    free(kept);
    free(recycled);
}
