/* dist/ in the default build (no MPI): one rank of one, clear "built without MPI" errors, a
 * refusal to run as several mpirun processes; and the synchronised batch-norm hook of nn/,
 * driven by a stand-in for the cross-rank sum. (The MPI tests are the scripts in tests/mpi.) */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "dist/dist.h"
#include "nn/nn.h"
#include "tests/util/testutil.h"

Test(dist_local, one_rank_without_mpi) {
    if (dist_built_with_mpi()) cr_skip_test("an MPI build: tests/mpi/ covers it");
    cr_assert_eq(dist_init(), ND_OK);
    cr_expect_eq(dist_rank(), 0);
    cr_expect_eq(dist_size(), 1);
    double v[3] = {1, 2, 3};
    cr_expect_eq(dist_allreduce_sum(v, 3), ND_OK);
    cr_expect(v[0] == 1 && v[1] == 2 && v[2] == 3, "one rank: the sum is the buffer");
    cr_expect_eq(dist_barrier(), ND_OK);
    /* What needs MPI says how to get it. */
    cr_expect_eq(dist_sync_bn(1), ND_ERR_UNSUPPORTED);
    cr_expect(strstr(nd_last_error(), "make MPI=1"), "%s", nd_last_error());
    cr_expect_eq(dist_sync_bn(0), ND_OK);
    srch_workers *w = (srch_workers *)1;
    dist_search_config sc;
    dist_search_config_default(&sc);
    cr_expect_eq(dist_search_workers_new(&sc, &w), ND_ERR_UNSUPPORTED);
    cr_expect_null(w);
    cr_expect(strstr(nd_last_error(), "built without MPI"), "%s", nd_last_error());
    /* With one rank the gradient sync leaves the gradients alone. */
    nn_params *ps = nn_params_new();
    nn_tensor *p = nn_params_add(ps, "w", 1, NN_SHAPE(4), 0);
    nn_params_add(ps, "bn.mean", 1, NN_SHAPE(4), NN_PARAM_BUFFER);
    for (int i = 0; i < 4; i++) p->grad[i] = (float)i;
    dist_grad_sync *gs;
    cr_assert_eq(dist_grad_sync_new(ps, &gs), ND_OK);
    cr_expect_eq(dist_grad_sync_numel(gs), 4, "buffers are not synchronised");
    cr_expect_eq(dist_grad_sync_run(gs), ND_OK);
    cr_expect(p->grad[3] == 3.0f);
    cr_expect_eq(dist_bcast_params(ps, 0), ND_OK);
    dist_grad_sync_free(gs);
    nn_params_free(ps);
    dist_finalize();
}

Test(dist_local, refuses_to_run_as_several_mpirun_processes) {
    if (dist_built_with_mpi()) cr_skip_test("an MPI build");
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    cr_expect_eq(dist_init(), ND_ERR_UNSUPPORTED);
    cr_expect(strstr(nd_last_error(), "make MPI=1"), "%s", nd_last_error());
    char *out = NULL;
    int rc = tu_run_cli("search --data cifar:/nonexistent --out /tmp/nasdet-dist-never --children 1", &out);
    cr_expect_eq(rc, 1);
    cr_expect(out && strstr(out, "built without MPI"), "%s", out ? out : "");
    free(out);
    rc = tu_run_cli("train --data cifar:/nonexistent --out /tmp/nasdet-dist-never --arch nasnet-a-cifar", &out);
    cr_expect_eq(rc, 1);
    cr_expect(out && strstr(out, "built without MPI"), "%s", out ? out : "");
    free(out);
    unsetenv("OMPI_COMM_WORLD_SIZE");
}

/* Two replicas holding the same shard x: the cross-rank sum doubles every buffer. Their global
 * batch is [x; x], whose mean and variance are x's; the element count is twice x's. */
static int sum_calls;
static void two_equal_replicas(double *buf, int64_t n, void *user) {
    (void)user;
    sum_calls++;
    for (int64_t i = 0; i < n; i++) buf[i] *= 2;
}

/* BN over x [n,C,H,W] with running statistics on `device`; loss = sum(y * w). Returns y, dx,
 * dgamma, dbeta and the running variance after the update (arrays of the caller). */
static void bn_run(const char *device, const float *x, const float *w, int64_t n, int64_t c, int64_t hw, float *y,
                   float *dx, float *dgamma, float *dbeta, float *rvar) {
    nn_params *ps = nn_params_new();
    nn_tensor *g = nn_params_add(ps, "g", 1, NN_SHAPE(c), 0), *b = nn_params_add(ps, "b", 1, NN_SHAPE(c), 0);
    nn_tensor *rm = nn_params_add(ps, "rm", 1, NN_SHAPE(c), NN_PARAM_BUFFER);
    nn_tensor *rv = nn_params_add(ps, "rv", 1, NN_SHAPE(c), NN_PARAM_BUFFER);
    for (int64_t k = 0; k < c; k++) g->data[k] = 1.0f + 0.25f * (float)k, b->data[k] = 0.1f * (float)k, rv->data[k] = 1;
    cr_assert_eq(nn_params_to_device(ps, device), ND_OK, "%s: %s", device, nd_last_error());
    nn_ctx *ctx = nn_ctx_new_like(ps);
    nn_tensor *xt = nn_tensor_from(ctx, 4, NN_SHAPE(n, c, hw, 1), x);
    nn_tensor_requires_grad(xt);
    nn_bn_params bp = {1e-3f, 0.1f};
    nn_tensor *yt = nn_batch_norm(ctx, xt, g, b, rm, rv, &bp);
    nn_tensor *wt = nn_tensor_from(ctx, 4, NN_SHAPE(n, c, hw, 1), w);
    nn_params_zero_grad(ps);
    nn_backward(ctx, nn_sum(ctx, nn_mul(ctx, yt, wt)));
    memcpy(y, nn_tensor_host(ctx, yt), sizeof(float) * (size_t)(n * c * hw));
    memcpy(dx, nn_tensor_host_grad(ctx, xt), sizeof(float) * (size_t)(n * c * hw));
    memcpy(dgamma, nn_tensor_host_grad(ctx, g), sizeof(float) * (size_t)c);
    memcpy(dbeta, nn_tensor_host_grad(ctx, b), sizeof(float) * (size_t)c);
    memcpy(rvar, nn_tensor_host(ctx, rv), sizeof(float) * (size_t)c);
    nn_ctx_free(ctx);
    nn_params_free(ps);
}

/* The hook on every device there is: the CPU kernel, the device path's CPU fallback ("emulated"),
 * and the CUDA kernel where a GPU answers (its per-channel sums go through host memory). */
Test(dist_local, synchronised_batch_norm_hook) {
    enum { N = 3, C = 2, HW = 5, E = N * C * HW };
    float x[2 * E], w[2 * E];
    for (int i = 0; i < E; i++) {
        x[i] = x[E + i] = sinf(0.7f * (float)i) * 2.0f + 0.3f;
        w[i] = w[E + i] = cosf(1.3f * (float)i);
    }
    const char *devices[3] = {"cpu", "emulated", "cuda"};
    int ndev = nn_cuda_device_count() > 0 ? 3 : 2;
    for (int d = 0; d < ndev; d++) {
        const char *dev = devices[d];
        /* Reference: plain batch norm over the global batch [x; x]. */
        float y2[2 * E], dx2[2 * E], dg2[C], db2[C], rv2[C];
        bn_run(dev, x, w, 2 * N, C, HW, y2, dx2, dg2, db2, rv2);
        /* One replica with the hook: its half of the output and input gradient, its share of the
         * parameter gradients (half: they are averaged across replicas later), the global running
         * variance (unbiased over 2 N HW elements, not N HW). */
        float y[E], dx[E], dg[C], db[C], rv[C];
        sum_calls = 0;
        nn_set_batch_norm_sync(two_equal_replicas, NULL);
        bn_run(dev, x, w, N, C, HW, y, dx, dg, db, rv);
        nn_set_batch_norm_sync(NULL, NULL);
        cr_expect_eq(sum_calls, 3, "%s: two sums forward (mean, variance), one backward", dev);
        for (int i = 0; i < E; i++) {
            cr_expect_float_eq(y[i], y2[i], 1e-5, "%s: y[%d]", dev, i);
            cr_expect_float_eq(dx[i], dx2[i], 1e-4, "%s: dx[%d]", dev, i);
        }
        for (int k = 0; k < C; k++) {
            cr_expect_float_eq(dg[k], 0.5f * dg2[k], 1e-4, "%s: dgamma[%d]", dev, k);
            cr_expect_float_eq(db[k], 0.5f * db2[k], 1e-4, "%s: dbeta[%d]", dev, k);
            cr_expect_float_eq(rv[k], rv2[k], 1e-6, "%s: running variance[%d]", dev, k);
        }
        /* Without the hook one replica's running variance is that of N HW elements: different. */
        float y1[E], dx1[E], dg1[C], db1[C], rv1[C];
        bn_run(dev, x, w, N, C, HW, y1, dx1, dg1, db1, rv1);
        cr_expect(fabsf(rv1[0] - rv2[0]) > 1e-4f, "%s: the unsynchronised statistics differ: %g vs %g", dev, rv1[0],
                  rv2[0]);
    }
}

/* One GPU per rank: with one rank (or without MPI) every --device value is kept as given, and the
 * device list is this rank's device. */
Test(dist_local, device_per_rank_with_one_rank) {
    if (dist_built_with_mpi()) cr_skip_test("an MPI build: tests/mpi/ covers it");
    cr_assert_eq(dist_init(), ND_OK);
    char buf[32];
    const char *given[4] = {"cpu", "emulated", "cuda", "cuda:3"};
    for (int i = 0; i < 4; i++) cr_expect_str_eq(dist_pick_device(given[i], buf, sizeof buf), given[i]);
    cr_expect_eq(dist_local_rank(), 0);
    char list[64];
    cr_expect_eq(dist_describe_devices("emulated", list, sizeof list), ND_OK);
    cr_expect_str_eq(list, "emulated");
    /* An emulated store syncs like any other: with one rank, not at all. */
    nn_params *ps = nn_params_new();
    nn_tensor *p = nn_params_add(ps, "w", 1, NN_SHAPE(2), 0);
    p->grad[1] = 5.0f;
    cr_assert_eq(nn_params_to_device(ps, "emulated"), ND_OK);
    dist_grad_sync *gs;
    cr_assert_eq(dist_grad_sync_new(ps, &gs), ND_OK);
    cr_expect_str_eq(dist_grad_sync_method(gs), "MPI_Allreduce");
    cr_expect_eq(dist_grad_sync_run(gs), ND_OK);
    cr_expect_eq(dist_bcast_params(ps, 0), ND_OK);
    nn_ctx *ctx = nn_ctx_new_like(ps);
    cr_expect_float_eq(nn_tensor_host_grad(ctx, p)[1], 5.0f, 0.0f);
    nn_ctx_free(ctx);
    dist_grad_sync_free(gs);
    nn_params_free(ps);
    dist_finalize();
}
