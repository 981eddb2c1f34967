/* Data-parallel gradient averaging: every trainable parameter's gradient packed into one float
 * buffer, one MPI_Allreduce (sum), unpacked as sum / K. One fused call per step instead of one
 * per tensor: a NASNet has hundreds of small tensors, and each collective has a fixed latency. */
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
    float *buf;
    int64_t numel;
    volatile int *stop;
    double seconds;
    int64_t calls;
};

int dist_grad_sync_new(nn_params *ps, dist_grad_sync **out) {
    *out = NULL;
    dist_grad_sync *s = calloc(1, sizeof *s);
    if (!s) return nd_fail(ND_ERR_NOMEM, "out of memory for the gradient buffer");
    s->ps = ps;
    for (int64_t i = 0; i < nn_params_count(ps); i++) {
        if (nn_params_flags(ps, i) & NN_PARAM_BUFFER) continue;
        nn_tensor *t = nn_params_at(ps, i);
        if (t->flags & NN_TENSOR_DEVICE) {
            free(s);
            return nd_fail(ND_ERR_UNSUPPORTED, "data-parallel training: parameter %s lives on the GPU; gradients are "
                           "averaged on the host only (no NCCL in this build)", t->name);
        }
        s->numel += t->numel;
    }
    if (dist_size() > 1 && !(s->buf = malloc(sizeof(float) * (size_t)(s->numel + 1)))) {
        long long numel = (long long)s->numel;
        free(s);
        return nd_fail(ND_ERR_NOMEM, "out of memory for a %lld-float gradient buffer", numel);
    }
    *out = s;
    return ND_OK;
}

void dist_grad_sync_free(dist_grad_sync *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

int64_t dist_grad_sync_numel(const dist_grad_sync *s) { return s->numel; }

void dist_grad_sync_set_stop(dist_grad_sync *s, volatile int *stop) { s->stop = stop; }

double dist_grad_sync_seconds(const dist_grad_sync *s, int64_t *calls) {
    if (calls) *calls = s->calls;
    return s->seconds;
}

int dist_grad_sync_run(dist_grad_sync *s) {
    if (dist_size() <= 1) return ND_OK;
#ifdef NASDET_USE_MPI
    double t0 = nd_time_now();
    int64_t count = nn_params_count(s->ps), off = 0;
    for (int64_t i = 0; i < count; i++) {
        if (nn_params_flags(s->ps, i) & NN_PARAM_BUFFER) continue;
        nn_tensor *t = nn_params_at(s->ps, i);
        if (t->grad) memcpy(s->buf + off, t->grad, sizeof(float) * (size_t)t->numel);
        else memset(s->buf + off, 0, sizeof(float) * (size_t)t->numel);
        off += t->numel;
    }
    /* One more float: the stop flag, so that a signal seen by any rank stops all after this step. */
    s->buf[s->numel] = s->stop && *s->stop ? 1.0f : 0.0f;
    for (int64_t o = 0; o < s->numel + 1;) {
        int chunk = s->numel + 1 - o > (1 << 30) ? (1 << 30) : (int)(s->numel + 1 - o);
        if (MPI_Allreduce(MPI_IN_PLACE, s->buf + o, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return nd_fail(ND_ERR_COMM, "MPI_Allreduce of %d gradient floats failed", chunk);
        o += chunk;
    }
    if (s->stop && s->buf[s->numel] > 0) *s->stop = 1;
    float inv = 1.0f / (float)dist_size();
    off = 0;
    for (int64_t i = 0; i < count; i++) {
        if (nn_params_flags(s->ps, i) & NN_PARAM_BUFFER) continue;
        nn_tensor *t = nn_params_at(s->ps, i);
        if (t->grad)
            for (int64_t j = 0; j < t->numel; j++) t->grad[j] = s->buf[off + j] * inv;
        off += t->numel;
    }
    s->seconds += nd_time_now() - t0;
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
