/* Data-parallel gradient averaging: every trainable parameter's gradient packed into one float
 * buffer, one allreduce, unpacked as sum / K. One fused call per step instead of one per tensor: a
 * NASNet has hundreds of small tensors, and each collective has a fixed latency.
 *
 * Two paths. On GPUs, with NCCL in the build and a GPU per rank, the buffer stays on the device
 * (grad_sync_nccl.c). Everywhere else it is host memory and the sum is one MPI_Allreduce: a CPU
 * store's gradients are copied in directly, a device store's (CUDA without NCCL, the "emulated"
 * test backend) are downloaded and uploaded again through nn's host-access API, so no CUDA-aware
 * MPI is needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"
#include "dist/dist_internal.h"

#ifdef NASDET_USE_MPI
#include <mpi.h>
#endif

struct dist_grad_sync {
    nn_params *ps;
    float *buf;       /* the host path: numel gradients + the stop flag */
    dist__nccl *nccl; /* the GPU path, or NULL */
    int64_t numel;
    volatile int *stop;
    double seconds;
    int64_t calls;
    char method[320];
};

int dist_grad_sync_new(nn_params *ps, dist_grad_sync **out) {
    *out = NULL;
    dist_grad_sync *s = calloc(1, sizeof *s);
    if (!s) return nd_fail(ND_ERR_NOMEM, "out of memory for the gradient buffer");
    s->ps = ps;
    s->numel = nn_params_numel(ps);
    const char *device = nn_params_device(ps);
    snprintf(s->method, sizeof s->method, "MPI_Allreduce");
    if (dist_size() <= 1) {
        *out = s;
        return ND_OK;
    }
    char why[256] = "";
    int rc = dist__nccl_new(ps, s->numel, &s->nccl, why, sizeof why); /* collective */
    if (rc) {
        free(s);
        return rc;
    }
    if (s->nccl) {
        snprintf(s->method, sizeof s->method, "%s ncclAllReduce on the GPUs", dist__nccl_describe(s->nccl));
    } else {
        if (strcmp(device, "cpu") != 0)
            snprintf(s->method, sizeof s->method, "MPI_Allreduce over host copies of the %s gradients (no NCCL: %s)",
                     device, why);
        if (!(s->buf = malloc(sizeof(float) * (size_t)(s->numel + 1)))) {
            long long numel = (long long)s->numel;
            free(s);
            return nd_fail(ND_ERR_NOMEM, "out of memory for a %lld-float gradient buffer", numel);
        }
    }
    *out = s;
    return ND_OK;
}

void dist_grad_sync_free(dist_grad_sync *s) {
    if (!s) return;
    dist__nccl_free(s->nccl);
    free(s->buf);
    free(s);
}

int64_t dist_grad_sync_numel(const dist_grad_sync *s) { return s->numel; }

const char *dist_grad_sync_method(const dist_grad_sync *s) { return s->method; }

void dist_grad_sync_set_stop(dist_grad_sync *s, volatile int *stop) { s->stop = stop; }

double dist_grad_sync_seconds(const dist_grad_sync *s, int64_t *calls) {
    if (calls) *calls = s->calls;
    return s->seconds;
}

#ifdef NASDET_USE_MPI
/* The host path: gradients (and the stop flag as one more float) in host memory, one
 * MPI_Allreduce in chunks that fit an int count, sum / K back into the store. */
static int sync_on_host(dist_grad_sync *s, int *stop) {
    nn_params_grads_get(s->ps, s->buf);
    s->buf[s->numel] = *stop ? 1.0f : 0.0f;
    for (int64_t o = 0; o < s->numel + 1;) {
        int chunk = s->numel + 1 - o > (1 << 30) ? (1 << 30) : (int)(s->numel + 1 - o);
        if (MPI_Allreduce(MPI_IN_PLACE, s->buf + o, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return nd_fail(ND_ERR_COMM, "MPI_Allreduce of %d gradient floats failed", chunk);
        o += chunk;
    }
    *stop = s->buf[s->numel] > 0;
    float inv = 1.0f / (float)dist_size();
    for (int64_t j = 0; j < s->numel; j++) s->buf[j] *= inv;
    nn_params_grads_set(s->ps, s->buf);
    return ND_OK;
}
#endif

int dist_grad_sync_run(dist_grad_sync *s) {
    if (dist_size() <= 1) return ND_OK;
#ifdef NASDET_USE_MPI
    /* The stop flag travels with the gradients, so that a signal seen by any rank stops all after
     * this step. */
    int stop = s->stop && *s->stop;
    int rc;
    if (s->nccl) {
        double sec = 0;
        rc = dist__nccl_run(s->nccl, s->ps, &stop, &sec);
        s->seconds += sec;
    } else {
        double t0 = nd_time_now();
        rc = sync_on_host(s, &stop);
        s->seconds += nd_time_now() - t0;
    }
    if (rc) return rc;
    if (s->stop && stop) *s->stop = 1;
    s->calls++;
    return ND_OK;
#else
    (void)s;
    return dist__unsupported("gradient averaging");
#endif
}

int dist_grad_sync_cb(nn_params *ps, void *user) {
    (void)ps;
    return dist_grad_sync_run(user);
}
