/* The GPU path of data-parallel gradient averaging (NASDET_USE_NCCL: `make CUDA=1 MPI=1` where NCCL
 * is installed). The gradients of a CUDA store are copied into one device buffer on nn's stream
 * (so after the backward kernels), averaged by one ncclAllReduce (ncclAvg) and copied back on the
 * same stream (so before the optimizer step): they never leave the GPUs. The stop flag rides along
 * as one more float; its average is above 0 when any rank's was set.
 *
 * Set-up, once: rank 0's ncclUniqueId reaches every rank over MPI, then ncclCommInitRank. NCCL
 * wants a GPU of its own per rank, so every rank first tells the others which GPU it holds (host
 * and PCI bus id); when two ranks share one, or some rank's store is not on a GPU, all ranks take
 * the host path (grad_sync.c) by the same decision, instead of some of them waiting in NCCL.
 *
 * Without NASDET_USE_NCCL the functions below say so, and grad_sync.c stages through host memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "dist/dist_internal.h"

#ifdef NASDET_USE_NCCL
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "dist: NCCL 2.10 or newer is needed (ncclAvg); build with NCCL=0 to average through host memory"
#endif

struct dist__nccl {
    ncclComm_t comm;
    cudaStream_t stream;    /* nn's: every kernel and copy of the process is queued on it */
    float *dbuf;            /* numel gradients + the stop flag, device memory */
    int64_t numel;
    float flag;             /* the stop flag's host side */
    cudaEvent_t start, end; /* around the copies and the allreduce: the device time they take */
    char text[64];
};

static int nccl_status(ncclResult_t r, const char *call, const char *file, int line) {
    if (r == ncclSuccess) return ND_OK;
    return nd_fail(ND_ERR_COMM, "nccl: %s failed: %s (%s:%d)", call, ncclGetErrorString(r), file, line);
}

static int cuda_status(cudaError_t e, const char *call, const char *file, int line) {
    if (e == cudaSuccess) return ND_OK;
    return nd_fail(ND_ERR_DEVICE, "cuda: %s failed: %s (%s:%d)", call, cudaGetErrorString(e), file, line);
}

#define NCCL_TRY(call) nccl_status((call), #call, __FILE__, __LINE__)
#define CUDA_TRY(call) cuda_status((call), #call, __FILE__, __LINE__)

/* What one rank tells the others: "host/PCI bus id" of its GPU, or "-" and why it has none. */
enum { GPU_KEY = 192 };

static void gpu_key(nn_params *ps, char *key) {
    memset(key, 0, GPU_KEY);
    const char *env = getenv("NASDET_NCCL");
    if (env && !strcmp(env, "0")) {
        snprintf(key, GPU_KEY, "-NASDET_NCCL=0 in its environment");
        return;
    }
    if (strcmp(nn_params_device(ps), "cuda") != 0 || !nn_cuda_stream()) {
        snprintf(key, GPU_KEY, "-its parameters are in %s memory, not on a CUDA GPU", nn_params_device(ps));
        return;
    }
    int dev = 0;
    char bus[64] = "";
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetPCIBusId(bus, (int)sizeof bus, dev);
    if (e != cudaSuccess) {
        snprintf(key, GPU_KEY, "-cannot name its GPU: %s", cudaGetErrorString(e));
        cudaGetLastError();
        return;
    }
    char host[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0;
    MPI_Get_processor_name(host, &len);
    snprintf(key, GPU_KEY, "%s/%s", host, bus);
}

/* From every rank's key (the same on every rank, so every rank decides alike): 1 when NCCL can
 * run, else 0 with the reason in why. */
static int nccl_usable(const char *keys, int size, char *why, size_t why_size) {
    for (int i = 0; i < size; i++)
        if (keys[(size_t)i * GPU_KEY] == '-') {
            snprintf(why, why_size, "rank %d: %s", i, keys + (size_t)i * GPU_KEY + 1);
            return 0;
        }
    for (int i = 0; i < size; i++)
        for (int j = i + 1; j < size; j++)
            if (!strcmp(keys + (size_t)i * GPU_KEY, keys + (size_t)j * GPU_KEY)) {
                snprintf(why, why_size, "ranks %d and %d share the GPU %s; NCCL needs one GPU per rank", i, j,
                         keys + (size_t)i * GPU_KEY);
                return 0;
            }
    return 1;
}

void dist__nccl_free(dist__nccl *n) {
    if (!n) return;
    if (n->comm) ncclCommDestroy(n->comm);
    if (n->dbuf) cudaFree(n->dbuf);
    if (n->start) cudaEventDestroy(n->start);
    if (n->end) cudaEventDestroy(n->end);
    free(n);
}

/* The device buffer and the events; 0 or a status. */
static int nccl_buffers(dist__nccl *n) {
    int rc = CUDA_TRY(cudaMalloc((void **)&n->dbuf, sizeof(float) * (size_t)(n->numel + 1)));
    if (!rc) rc = CUDA_TRY(cudaEventCreate(&n->start));
    if (!rc) rc = CUDA_TRY(cudaEventCreate(&n->end));
    return rc;
}

int dist__nccl_new(nn_params *ps, int64_t numel, dist__nccl **out, char *why, size_t why_size) {
    *out = NULL;
    why[0] = '\0';
    int size = dist_size(), rank = dist_rank();
    char key[GPU_KEY];
    gpu_key(ps, key);
    char *keys = malloc((size_t)size * GPU_KEY);
    if (!keys) return nd_fail(ND_ERR_NOMEM, "out of memory");
    if (MPI_Allgather(key, GPU_KEY, MPI_CHAR, keys, GPU_KEY, MPI_CHAR, MPI_COMM_WORLD) != MPI_SUCCESS) {
        free(keys);
        return nd_fail(ND_ERR_COMM, "MPI_Allgather of the ranks' GPUs failed");
    }
    int usable = nccl_usable(keys, size, why, why_size);
    free(keys);
    if (!usable) return ND_OK;

    /* Rank 0 makes the communicator's id; the others learn it, or that rank 0 failed. */
    struct {
        int ok;
        ncclUniqueId id;
    } hello;
    memset(&hello, 0, sizeof hello);
    int rc = ND_OK;
    if (rank == 0) hello.ok = (rc = NCCL_TRY(ncclGetUniqueId(&hello.id))) == ND_OK;
    if (MPI_Bcast(&hello, (int)sizeof hello, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return nd_fail(ND_ERR_COMM, "MPI_Bcast of the NCCL id failed");
    if (!hello.ok) return rank == 0 ? rc : nd_fail(ND_ERR_COMM, "nccl: rank 0 could not make the communicator's id");

    dist__nccl *n = calloc(1, sizeof *n);
    if (!n) return nd_fail(ND_ERR_NOMEM, "out of memory");
    n->numel = numel;
    n->stream = (cudaStream_t)nn_cuda_stream();
    rc = nccl_buffers(n);
    /* Every rank must reach ncclCommInitRank, or those that do wait for ever: agree first. */
    int ok = rc == ND_OK, all_ok = 0;
    if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS && !rc)
        rc = nd_fail(ND_ERR_COMM, "MPI_Allreduce failed");
    if (!rc && !all_ok) rc = nd_fail(ND_ERR_DEVICE, "nccl: another rank could not set up its gradient buffer");
    if (!rc) rc = NCCL_TRY(ncclCommInitRank(&n->comm, size, hello.id, rank));
    int version = 0;
    if (!rc) rc = NCCL_TRY(ncclGetVersion(&version));
    if (rc) {
        dist__nccl_free(n);
        return rc;
    }
    /* NCCL_VERSION_CODE since 2.9: major * 10000 + minor * 100 + patch. */
    snprintf(n->text, sizeof n->text, "NCCL %d.%d.%d", version / 10000, version / 100 % 100, version % 100);
    *out = n;
    return ND_OK;
}

const char *dist__nccl_describe(const dist__nccl *n) { return n->text; }

int dist__nccl_run(dist__nccl *n, nn_params *ps, int *stop, double *seconds) {
    *seconds = 0;
    int rc = CUDA_TRY(cudaEventRecord(n->start, n->stream));
    int64_t count = nn_params_count(ps), off = 0;
    for (int64_t i = 0; !rc && i < count; i++) {
        if (nn_params_flags(ps, i) & NN_PARAM_BUFFER) continue;
        const nn_tensor *t = nn_params_at(ps, i);
        size_t bytes = sizeof(float) * (size_t)t->numel;
        rc = t->grad ? CUDA_TRY(cudaMemcpyAsync(n->dbuf + off, t->grad, bytes, cudaMemcpyDeviceToDevice, n->stream))
                     : CUDA_TRY(cudaMemsetAsync(n->dbuf + off, 0, bytes, n->stream));
        off += t->numel;
    }
    /* From pageable memory the copy has read n->flag when the call returns. */
    n->flag = *stop ? 1.0f : 0.0f;
    if (!rc)
        rc = CUDA_TRY(cudaMemcpyAsync(n->dbuf + n->numel, &n->flag, sizeof(float), cudaMemcpyHostToDevice, n->stream));
    if (!rc)
        rc = NCCL_TRY(ncclAllReduce(n->dbuf, n->dbuf, (size_t)(n->numel + 1), ncclFloat, ncclAvg, n->comm, n->stream));
    off = 0;
    for (int64_t i = 0; !rc && i < count; i++) {
        if (nn_params_flags(ps, i) & NN_PARAM_BUFFER) continue;
        nn_tensor *t = nn_params_at(ps, i);
        if (t->grad)
            rc = CUDA_TRY(cudaMemcpyAsync(t->grad, n->dbuf + off, sizeof(float) * (size_t)t->numel,
                                          cudaMemcpyDeviceToDevice, n->stream));
        off += t->numel;
    }
    if (!rc)
        rc = CUDA_TRY(cudaMemcpyAsync(&n->flag, n->dbuf + n->numel, sizeof(float), cudaMemcpyDeviceToHost, n->stream));
    if (!rc) rc = CUDA_TRY(cudaEventRecord(n->end, n->stream));
    /* The flag is read on the host, so wait here; the optimizer step queued after this call then
     * runs on averaged gradients in any case (same stream). */
    if (!rc) rc = CUDA_TRY(cudaStreamSynchronize(n->stream));
    float ms = 0;
    if (!rc) rc = CUDA_TRY(cudaEventElapsedTime(&ms, n->start, n->end));
    if (rc) return rc;
    *seconds = 1e-3 * (double)ms;
    *stop = n->flag > 0.0f;
    return ND_OK;
}

#else /* no NCCL in this build: dist__nccl_new never makes a communicator */

struct dist__nccl {
    int unused;
};

int dist__nccl_new(nn_params *ps, int64_t numel, dist__nccl **out, char *why, size_t why_size) {
    (void)ps;
    (void)numel;
    *out = NULL;
    snprintf(why, why_size, "this build has none; it needs make CUDA=1 MPI=1 with NCCL installed");
    return ND_OK;
}

int dist__nccl_run(dist__nccl *n, nn_params *ps, int *stop, double *seconds) {
    (void)n;
    (void)ps;
    (void)stop;
    *seconds = 0;
    return nd_fail(ND_ERR_UNSUPPORTED, "data-parallel training: this build has no NCCL");
}

const char *dist__nccl_describe(const dist__nccl *n) {
    (void)n;
    return "no NCCL";
}

void dist__nccl_free(dist__nccl *n) { (void)n; }

#endif
