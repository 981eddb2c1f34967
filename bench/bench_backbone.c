/* bench-backbone: NASNet-A training throughput and peak memory (CIFAR N=2, F=32 and F=16,
 * batch 32) and NASNet-A Mobile inference latency (batch 1 and 8), with an sgemm calibration
 * figure, since the machine's speed drifts. Figures are printed, never asserted.
 *
 *   bench_backbone [--steps S] [--runs R] [--threads T] [--aux] [--infer-only] [--batch B]
 *
 * --batch B times inference at batch B alone (for profiling one batch size).
 * BENCH_CLOCK=cpu times inference with the process's CPU time (all threads together) instead of
 * the wall clock: on a machine shared with other work, a figure that waiting does not inflate.
 *
 * The same measurements in PyTorch: bench/backbone_torch.py (bench/backbone.sh runs both). */
#include "backbone/nasnet_net.h"
#include "common/fileio.h"
#include "bench/bench_clock.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static long vm_hwm_kb(void) {
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (fp && fgets(line, sizeof line, fp))
        if (!strncmp(line, "VmHWM:", 6)) kb = atol(line + 6);
    if (fp) fclose(fp);
    return kb;
}

/* Start a new VmHWM from the current resident size (Linux 4.0 on), so that each configuration's
 * "process peak" is its own and not the largest one run before it in this process. */
static void vm_hwm_restart(void) {
    FILE *fp = fopen("/proc/self/clear_refs", "w");
    if (fp) fputs("5", fp), fclose(fp);
}

static double sgemm_gflops(void) {
    int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n), *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t = nd_time_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double g = 2.0 * n * n * n / (nd_time_now() - t) / 1e9;
        if (g > best) best = g;
    }
    free(a), free(b), free(c);
    return best;
}

static void bench_train(int F, int steps, int aux) {
    vm_hwm_restart();
    nas_net_config c;
    nas_net_preset("nasnet-a-cifar", &c);
    c.num_cells = 2;
    c.num_conv_filters = F;
    c.use_aux_head = aux;
    if (!aux) c.drop_path_keep_prob = 1.0;
    c.total_training_steps = 1000;
    nas_net *net;
    if (nas_net_new(&c, NULL, NULL, 1, &net)) {
        fprintf(stderr, "%s\n", nd_last_error());
        return;
    }
    nn_params *ps = nas_net_params(net);
    int B = 32;
    float *img = malloc(sizeof(float) * B * 3 * 32 * 32);
    int32_t lab[32];
    for (int i = 0; i < B * 3 * 32 * 32; i++) img[i] = (float)((i * 7919) % 255) / 127.5f - 1.0f;
    for (int i = 0; i < B; i++) lab[i] = i % 10;
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_recycle_activations(ctx, 1); /* as `nasdet train` runs its steps */
    nn_optim_config oc = nn_optim_sgd(0.9, 0, 5e-4);
    double *t = malloc(sizeof(double) * (size_t)steps);
    for (int s = -1; s < steps; s++) { /* one warm-up step */
        double t0 = nd_time_now();
        nn_ctx_reset(ctx);
        nn_params_zero_grad(ps);
        nas_net_output o;
        nas_net_forward(net, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(B, 3, 32, 32), img), s + 1, &o);
        nn_tensor *loss = nn_softmax_cross_entropy(ctx, o.logits, lab, 0.0f);
        if (o.aux_logits) loss = nn_add(ctx, loss, nn_scale(ctx, nn_softmax_cross_entropy(ctx, o.aux_logits, lab, 0), 0.4f, 0));
        nn_backward(ctx, loss);
        nn_params_clip_grad_norm(ps, 5.0);
        nn_optim_step(ps, &oc, 0.025);
        if (s >= 0) t[s] = nd_time_now() - t0;
    }
    double m = median(t, steps);
    double param_mb = (double)nn_params_numel(ps) * 4 * 3 / 1e6; /* weights, gradients, momentum */
    printf("train  nasnet-a-cifar N=2 F=%-3d batch 32%s: %8.1f ms/step  %6.2f img/s  arena peak %7.1f MB  "
           "params+grads+momentum %5.1f MB  process peak %7.1f MB\n",
           F, aux ? " +aux+droppath" : "", m * 1e3, B / m, nn_ctx_bytes_peak(ctx) / 1e6, param_mb, vm_hwm_kb() / 1e3);
    free(t);
    free(img);
    nn_ctx_free(ctx);
    nas_net_free(net);
}


static void bench_infer(int B, int runs) {
    nas_net_config c;
    nas_net_preset("nasnet-a-mobile", &c);
    nas_net *net;
    if (nas_net_new(&c, NULL, NULL, 1, &net)) {
        fprintf(stderr, "%s\n", nd_last_error());
        return;
    }
    float *img = malloc(sizeof(float) * B * 3 * 224 * 224);
    /* In 64 bits: i * 7919 overflows an int from batch 2 on, and gcc, free to assume a signed
     * product never overflows, once concluded from it that B was 1 and ran batch 8 as batch 1. */
    for (int64_t i = 0; i < (int64_t)B * 3 * 224 * 224; i++) img[i] = (float)((i * 7919) % 255) / 127.5f - 1.0f;
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    nn_ctx_set_training(ctx, 0);
    double *t = malloc(sizeof(double) * (size_t)runs);
    /* Two passes untimed: the first reset after a pass that spilled into doubled chunks merges
     * them into one new chunk, whose pages the second pass touches for the first time. */
    for (int r = -2; r < runs; r++) {
        double t0 = bench_now();
        nn_ctx_reset(ctx);
        nas_net_output o;
        int rc = nas_net_forward(net, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(B, 3, 224, 224), img), 0, &o);
        if (r >= 0) t[r] = bench_now() - t0;
        if (rc) {
            fprintf(stderr, "infer batch %d: %s\n", B, nd_last_error());
            break;
        }
    }
    const char *clk = getenv("BENCH_CLOCK");
    double best = t[0];
    for (int r = 1; r < runs; r++) best = t[r] < best ? t[r] : best;
    printf("infer  nasnet-a-mobile 224 batch %d: %8.1f ms%s (median of %d; min %.1f)  arena peak %.1f MB\n", B,
           median(t, runs) * 1e3, clk && !strcmp(clk, "cpu") ? " cpu" : "", runs, best * 1e3,
           nn_ctx_bytes_peak(ctx) / 1e6);
    free(t);
    free(img);
    nn_ctx_free(ctx);
    nas_net_free(net);
}

int main(int argc, char **argv) {
    int steps = 3, runs = 5, threads = 2, aux = 0, infer_only = 0, batch = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--aux")) aux = 1;
        else if (!strcmp(argv[i], "--infer-only")) infer_only = 1; /* for profiling inference alone */
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]), infer_only = 1;
        else {
            fprintf(stderr, "usage: bench_backbone [--steps S] [--runs R] [--threads T] [--aux] [--infer-only] "
                            "[--batch B]\n");
            return 2;
        }
    }
    if (steps < 1 || runs < 1 || batch < 0) return 2;
    nn_set_threads(threads);
    printf("nasdet bench-backbone: %d threads; sgemm 1024 %.1f GFLOP/s\n", threads, sgemm_gflops());
    if (!infer_only) {
        bench_train(32, steps, aux);
        bench_train(16, steps, aux);
    }
    if (batch) {
        bench_infer(batch, runs);
    } else {
        bench_infer(1, runs);
        bench_infer(8, runs > 2 ? runs / 2 : 1);
    }
    printf("sgemm 1024 after: %.1f GFLOP/s\n", sgemm_gflops());
    return 0;
}
