/* bench-gpu: NASNet-A on the CUDA backend. Training images/s of NASNet-A CIFAR (batch 64, 32 px)
 * and NASNet-A Mobile (batch 64, 224 px), and NASNet-A Mobile inference latency (batch 1 and 32),
 * on random data, fp32. bench/gpu.sh prints PyTorch's figures for the same models on the same GPU
 * next to these. Prints "skipped: no GPU" and exits 0 where no CUDA device answers.
 *
 *   bench_gpu [--steps N] [--only cifar|mobile]   (N timed steps after 2 warm-up steps; 5) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backbone/nasnet_net.h"
#include "nn/nn.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct model {
    nn_params *ps;
    nas_net *net;
    nn_ctx *ctx;
    nas_net_config cfg;
} model;

static int model_new(const char *preset, model *m) {
    memset(m, 0, sizeof *m);
    int rc = nas_net_preset(preset, &m->cfg);
    m->ps = nn_params_new();
    if (!rc) rc = nas_net_new(&m->cfg, m->ps, NULL, 1, &m->net);
    if (!rc) rc = nn_params_to_device(m->ps, "cuda");
    if (!rc) m->ctx = nn_ctx_new_like(m->ps);
    return rc;
}

static void model_free(model *m) {
    nn_ctx_free(m->ctx);
    nas_net_free(m->net);
    nn_params_free(m->ps);
}

/* Seconds per step (median of `steps` after two warm-ups) of training (SGD step included) or
 * inference, on a batch of random images. */
static double time_steps(model *m, int32_t batch, int train, int steps) {
    int32_t s = m->cfg.image_size, k = m->cfg.num_classes;
    float *img = malloc((size_t)batch * 3 * s * s * sizeof(float));
    int32_t *lab = malloc((size_t)batch * sizeof(int32_t));
    nd_rng rng;
    nd_rng_seed(&rng, 3);
    for (int64_t i = 0; i < (int64_t)batch * 3 * s * s; i++) img[i] = (float)nd_rng_range(&rng, -1, 1);
    for (int32_t i = 0; i < batch; i++) lab[i] = (int32_t)nd_rng_below(&rng, (uint64_t)k);
    nn_ctx_set_grad(m->ctx, train);
    nn_ctx_set_training(m->ctx, train);
    nn_optim_config oc = nn_optim_rmsprop(0.9, 0.9, 1.0, 4e-5);
    double *t = malloc((size_t)(steps + 2) * sizeof *t);
    for (int i = 0; i < steps + 2; i++) {
        double t0 = now();
        nn_ctx_reset(m->ctx);
        nn_tensor *x = nn_tensor_from(m->ctx, 4, NN_SHAPE(batch, 3, s, s), img);
        nas_net_output out;
        if (nas_net_forward(m->net, m->ctx, x, i, &out)) {
            fprintf(stderr, "bench_gpu: %s\n", nd_last_error());
            exit(1);
        }
        if (train) {
            nn_params_zero_grad(m->ps);
            nn_tensor *loss = nn_softmax_cross_entropy(m->ctx, out.logits, lab, 0.1f);
            if (out.aux_logits) loss = nn_add(m->ctx, loss, nn_scale(m->ctx, nn_softmax_cross_entropy(m->ctx, out.aux_logits, lab, 0.1f), 0.4f, 0.0f));
            nn_backward(m->ctx, loss);
            nn_optim_step(m->ps, &oc, 0.01);
            (void)nn_item(m->ctx, loss); /* the loss read back, as a training loop does */
        } else {
            (void)nn_tensor_host(m->ctx, out.logits);
        }
        nn_ctx_sync(m->ctx);
        t[i] = now() - t0;
    }
    /* median of the timed steps */
    for (int i = 2; i < steps + 2; i++)
        for (int j = i + 1; j < steps + 2; j++)
            if (t[j] < t[i]) {
                double x = t[i];
                t[i] = t[j];
                t[j] = x;
            }
    double med = t[2 + steps / 2];
    free(t), free(img), free(lab);
    return med;
}

#ifndef BENCH_GPU_MAIN
#define BENCH_GPU_MAIN main /* tests/gpu/pack.sh links it into one binary with gpu_check */
#endif
int BENCH_GPU_MAIN(int argc, char **argv) {
    int steps = 5;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_gpu [--steps N] [--only cifar|mobile]\n");
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    if (nn_cuda_device_count() == 0) {
        printf("bench-gpu: skipped: no GPU\n");
        return 0;
    }
    model m;
    if (!only || !strcmp(only, "cifar")) {
        if (model_new("nasnet-a-cifar", &m)) {
            fprintf(stderr, "bench_gpu: %s\n", nd_last_error());
            return 1;
        }
        double t = time_steps(&m, 64, 1, steps);
        printf("nasdet-cuda  nasnet-a-cifar  train  batch 64   %8.1f img/s  (%.1f ms/step)\n", 64 / t, 1e3 * t);
        fflush(stdout);
        model_free(&m);
    }
    if (!only || !strcmp(only, "mobile")) {
        if (model_new("nasnet-a-mobile", &m)) {
            fprintf(stderr, "bench_gpu: %s\n", nd_last_error());
            return 1;
        }
        double t = time_steps(&m, 64, 1, steps);
        printf("nasdet-cuda  nasnet-a-mobile train  batch 64   %8.1f img/s  (%.1f ms/step)\n", 64 / t, 1e3 * t);
        fflush(stdout);
        t = time_steps(&m, 1, 0, steps * 2);
        printf("nasdet-cuda  nasnet-a-mobile infer  batch 1    %8.2f ms\n", 1e3 * t);
        t = time_steps(&m, 32, 0, steps * 2);
        printf("nasdet-cuda  nasnet-a-mobile infer  batch 32   %8.2f ms  (%.1f img/s)\n", 1e3 * t, 32 / t);
        fflush(stdout);
        model_free(&m);
    }
    return 0;
}
