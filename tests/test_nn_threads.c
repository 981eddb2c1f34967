/* The thread team is made once: ops must not start threads on every call. A parallel region with
 * a false `if` clause is still a region (a team of one), and a parallel region inside it is a
 * nested team, whose threads libgomp creates and ends each time: that once cost NASNet-A Mobile
 * at batch 1 60 ms of its 100 ms on 2 threads. Here pthread_create is wrapped to count calls
 * while convolutions run on every path (GEMM with and without chunk parallelism, the direct
 * kernel, depthwise), forward and backward, and a NASNet forward pass in inference. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include "backbone/nasnet_net.h"
#include "common/status.h"
#include "nn/nn.h"

static int threads_created;

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* Sanitizers wrap pthread_create themselves; the count is taken without them. */
#define COUNTING 1
int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
    __atomic_add_fetch(&threads_created, 1, __ATOMIC_SEQ_CST);
    return real(t, a, fn, arg);
}
#else
#define COUNTING 0
#endif

static nn_tensor *filled(nn_ctx *ctx, int ndim, const int64_t *shape, float scale) {
    nn_tensor *t = nn_tensor_new(ctx, ndim, shape);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = scale * (float)((i * 7919) % 97 - 48) / 48.0f;
    return t;
}

typedef struct conv_case {
    int64_t x[4], w[4];
    nn_conv2d_params p;
} conv_case;

/* Each op once forward (and backward), in a ctx of its own. */
static void run_convs(void) {
    static const conv_case cases[] = {
        {{1, 64, 56, 56}, {64, 64, 1, 1}, {2, 2, 1, 1, 1, 0, 0, 0, 0, 0}},  /* GEMM, one chunk: copies share a team */
        {{4, 64, 28, 28}, {64, 64, 1, 1}, {2, 2, 1, 1, 1, 0, 0, 0, 0, 0}},  /* GEMM, chunks in parallel */
        {{1, 3, 64, 64}, {32, 3, 3, 3}, {2, 2, 1, 1, 1, 0, 0, 0, 0, 0}},    /* short sums: GEMM */
        {{1, 44, 28, 28}, {44, 44, 1, 1}, {1, 1, 1, 1, 1, 0, 0, 0, 0, 0}},  /* direct, one image */
        {{4, 32, 20, 20}, {32, 32, 3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 0}},  /* direct, padded */
        {{1, 32, 56, 56}, {32, 1, 5, 5}, {2, 2, 1, 1, 32, 2, 2, 2, 2, 0}},  /* depthwise, strided */
        {{2, 32, 28, 28}, {32, 1, 3, 3}, {1, 1, 1, 1, 32, 1, 1, 1, 1, 0}},  /* depthwise */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_ctx *ctx = nn_ctx_new();
        nn_tensor *x = filled(ctx, 4, cases[i].x, 1.0f), *w = filled(ctx, 4, cases[i].w, 0.1f);
        nn_tensor_requires_grad(x);
        nn_tensor_requires_grad(w);
        nn_tensor *y = nn_conv2d(ctx, x, w, NULL, &cases[i].p);
        nn_backward(ctx, nn_sum(ctx, y));
        nn_ctx_free(ctx);
    }
}

static void run_nasnet_inference(nas_net *net) {
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    nn_ctx_set_training(ctx, 0);
    nas_net_output o;
    cr_assert_eq(nas_net_forward(net, ctx, filled(ctx, 4, NN_SHAPE(1, 3, 64, 64), 1.0f), 0, &o), 0);
    nn_ctx_free(ctx);
}

Test(nn_threads, ops_start_no_threads_after_the_first_call) {
    if (!COUNTING) cr_skip_test("pthread_create cannot be counted under a sanitizer");
    nn_set_threads(2);
    nas_net_config c;
    nas_net_preset("nasnet-a-mobile", &c);
    c.num_cells = 1;
    c.image_size = 64;
    c.use_aux_head = 0;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0, "%s", nd_last_error());
    run_convs(); /* the first calls make the team */
    run_nasnet_inference(net);
    int before = __atomic_load_n(&threads_created, __ATOMIC_SEQ_CST);
    run_convs();
    run_nasnet_inference(net);
    int made = __atomic_load_n(&threads_created, __ATOMIC_SEQ_CST) - before;
    cr_expect_eq(made, 0, "%d threads started by ops after the team existed", made);
    nas_net_free(net);
}
