/* dist: scale-out with MPI. Search workers on other ranks (rank 0 runs the controller and the
 * queue), and data-parallel training (gradients averaged across ranks, rank 0 writes files).
 *
 * Built with `make MPI=1` (mpicc, NASDET_USE_MPI). In the default build every function below
 * exists: the process is one rank of one (dist_rank 0, dist_size 1), and the calls that need
 * MPI fail with ND_ERR_UNSUPPORTED "built without MPI (make MPI=1)". dist_init also fails that
 * way when the default build is launched by mpirun with more than one process, so that K
 * copies of a one-process search never write into the same run folder.
 *
 * Threads: MPI is initialised with MPI_THREAD_FUNNELED; call everything from the main thread.
 * No MPI type appears in this header: it compiles as plain C11 without mpi.h. */
#ifndef DIST_DIST_H
#define DIST_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"
#include "search/search_driver.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * Section 1: the communicator
 * ====================================================================================== */

/* 1 when this build has MPI. */
int dist_built_with_mpi(void);
/* Initialise MPI once (later calls do nothing). Returns 0; ND_ERR_COMM when MPI_Init fails;
 * ND_ERR_UNSUPPORTED in the default build when mpirun started several processes. */
int dist_init(void);
/* MPI_Finalize when dist_init initialised MPI; nothing otherwise. Idempotent. */
void dist_finalize(void);
int dist_rank(void); /* 0 before dist_init and without MPI */
int dist_size(void); /* 1 before dist_init and without MPI */
/* Every rank waits for the others. 0 or ND_ERR_COMM. */
int dist_barrier(void);
/* In place, across all ranks: buf[i] = sum over ranks of buf[i]. 0 or ND_ERR_COMM. */
int dist_allreduce_sum(double *buf, int64_t n);
/* Copy every tensor of the store (parameters and buffers) from rank `root` to the others, in
 * one message per tensor (through host memory for a device store). The stores must have the same
 * tensors in the same order (checked: ND_ERR_INVALID naming the first tensor that differs in
 * size). */
int dist_bcast_params(nn_params *ps, int root);
/* This rank's place among the ranks of its node (MPI_Comm_split_type, shared memory; Open MPI's
 * OMPI_COMM_WORLD_LOCAL_RANK if that split fails): 0 without MPI or with one rank. Collective the
 * first time (every rank calls it), then remembered. */
int dist_local_rank(void);
/* The device a rank trains on for a `--device` value: with several ranks, "cuda" becomes "cuda:L"
 * with L = the local rank modulo the GPUs this process sees, so that the ranks of a node spread
 * over its GPUs, one each while there are enough; anything else ("cpu", "emulated", an explicit
 * "cuda:N", "cuda" with one rank or no GPU) is kept as given. Writes into out (size bytes) and
 * returns out. Collective for "cuda" (every rank calls it with the same value). */
const char *dist_pick_device(const char *requested, char *out, size_t size);
/* On rank 0, every rank's device and node in rank order ("cuda:0@node1, cuda:1@node1"; with one
 * rank, just `device`), into out (size bytes; cut with "..." when longer); other ranks get "".
 * Collective. 0 or ND_ERR_COMM. */
int dist_describe_devices(const char *device, char *out, size_t size);

/* ======================================================================================
 * Section 2: data-parallel training
 *
 * Each rank computes the gradient of the mean loss over its shard of the global batch; the
 * mean of those gradients over K ranks is the gradient of the mean loss over the whole batch.
 * dist_grad_sync packs every trainable parameter's gradient into one float buffer, sums it with
 * one allreduce, and writes back sum / K. Call it after the backward pass and before gradient
 * clipping and the optimizer step: every rank then clips and steps identically, so the weights
 * stay the same on every rank (broadcast them once at the start).
 *
 * The store may live on any device. On GPUs, in a build with NCCL (make CUDA=1 MPI=1 where NCCL
 * is installed) and with a GPU per rank, the buffer stays on the device and the sum is one
 * ncclAllReduce; otherwise it is host memory and one MPI_Allreduce (device gradients are copied
 * down and up again, so MPI needs no GPU support). NASDET_NCCL=0 in the environment keeps GPU
 * gradients on the host path.
 * ====================================================================================== */

typedef struct dist_grad_sync dist_grad_sync;

/* A syncer for the trainable parameters of `ps` (borrowed; its tensors must not change; move it
 * to its device first). With one rank the sync does nothing. Collective with several ranks (the
 * ranks agree on the NCCL path). ND_ERR_NOMEM; ND_ERR_COMM / ND_ERR_DEVICE when setting NCCL up
 * fails (the message names the call). */
int dist_grad_sync_new(nn_params *ps, dist_grad_sync **out);
void dist_grad_sync_free(dist_grad_sync *s); /* NULL does nothing */
/* Average the gradients across ranks (see above). 0, ND_ERR_COMM, or ND_ERR_DEVICE (NCCL path). */
int dist_grad_sync_run(dist_grad_sync *s);
/* Seconds spent averaging (pack, allreduce, unpack; on the NCCL path the device time they take)
 * and the number of calls. */
double dist_grad_sync_seconds(const dist_grad_sync *s, int64_t *calls);
/* Elements sent per call (the sum of the trainable parameters' sizes). */
int64_t dist_grad_sync_numel(const dist_grad_sync *s);
/* How the gradients travel, for the log: "MPI_Allreduce", "NCCL 2.28.9 ncclAllReduce on the
 * GPUs", or "MPI_Allreduce over host copies of the cuda gradients (no NCCL: <why>)". */
const char *dist_grad_sync_method(const dist_grad_sync *s);
/* A stop flag (a signal handler's) shared across ranks: each sync sends it along with the
 * gradients, and when any rank's is set every rank's becomes 1, so that all stop after the
 * same step instead of waiting forever for each other. NULL: none. */
void dist_grad_sync_set_stop(dist_grad_sync *s, volatile int *stop);
/* The callback shape of nas_train_opts.grad_sync: user is a dist_grad_sync. */
int dist_grad_sync_cb(nn_params *ps, void *user);

/* Synchronised batch norm: while on, every training-mode nn_batch_norm normalises with the
 * mean and variance over the whole global batch (its per-channel sums are summed across ranks)
 * and its backward pass sums the per-channel gradient terms across ranks, as PyTorch's
 * SyncBatchNorm; running statistics then agree on every rank. All ranks must run the same
 * batch-norm layers in the same order. On a GPU the per-channel sums are copied to the host for
 * the MPI_Allreduce and back (a few hundred bytes per layer). Off by default (statistics per
 * rank). 0, or ND_ERR_UNSUPPORTED without MPI when on != 0. */
int dist_sync_bn(int on);

/* ======================================================================================
 * Section 3: search workers over MPI
 *
 * Rank 0 runs srch_driver_run with the pool from dist_search_workers_new; ranks 1..K-1 run
 * dist_search_worker_main. Rank 0 hands one job (id, seed, genotype as JSON) to each idle
 * worker and waits for results in any order; the driver's batches keep the sampled
 * architectures independent of K and of the order of completion.
 *
 * Failures: a worker trains each child in a forked process, so a child that crashes, is
 * killed or runs past `job_timeout` seconds (the worker kills it) costs only that child: the
 * worker reports it and rank 0 puts the job back into the queue (the same id and seed, so the
 * same child), up to `max_attempts` hand-outs, after which the job is logged as failed
 * (reward 0). A worker rank that sends nothing for job_timeout + `grace` seconds is given up:
 * its job is re-queued and it gets no more work (a late answer brings it back). A dead MPI
 * rank ends the whole job under Open MPI (no ULFM in Debian's 4.1): resume the search with
 * --resume and any number of ranks.
 * ====================================================================================== */

typedef struct dist_search_config {
    double job_timeout;   /* seconds per child (0: no limit) */
    double grace;         /* extra seconds before rank 0 gives a silent worker up: 60 */
    int max_attempts;     /* hand-outs of one job before it is logged as failed: 3 */
    const char *child_desc; /* the child setting (srch_cifar_child_describe); every worker must
                               report the same text, or the pool is refused */
} dist_search_config;

void dist_search_config_default(dist_search_config *cfg);

/* Rank 0: a pool of the K-1 other ranks. Waits for each worker's greeting (its child setting
 * and whether it could load its data); any mismatch or failure stops every worker and fails
 * with ND_ERR_INVALID naming the rank. ND_ERR_UNSUPPORTED without MPI or with one rank.
 * srch_workers_free tells every worker to stop. */
int dist_search_workers_new(const dist_search_config *cfg, srch_workers **out);

/* Ranks 1..K-1: greet rank 0, then train every job it sends with `trainer` (NULL when the
 * data could not be loaded: the greeting then carries load_error) until told to stop.
 * Returns 0 after the stop, ND_ERR_COMM when rank 0 is unreachable. */
int dist_search_worker_main(const dist_search_config *cfg, const srch_child_trainer *trainer,
                            const char *load_error);

#ifdef __cplusplus
}
#endif

#endif
