/* dist: what the module's files share (not for other modules). */
#ifndef DIST_DIST_INTERNAL_H
#define DIST_DIST_INTERNAL_H

#include <stddef.h>

#include "dist/dist.h"

/* nd_fail(ND_ERR_UNSUPPORTED, "<what>: built without MPI (make MPI=1)"). */
int dist__unsupported(const char *what);
/* Rank 0 gave `lost` worker ranks up: dist_finalize then ends the job with MPI_Abort instead of
 * waiting in MPI_Finalize for ranks that may never come back. */
void dist__abandon_at_finalize(int lost);

/* The GPU path of data-parallel gradient averaging (grad_sync_nccl.c): NCCL over a fused device
 * buffer. dist__nccl_new is collective (every rank calls it, with its store): it makes *out only
 * when this build has NCCL and every rank's store is on a GPU of its own; otherwise *out is NULL,
 * `why` (why_size bytes) says why, and the caller averages through host memory. Errors: ND_ERR_COMM
 * (an MPI or NCCL call), ND_ERR_DEVICE (a CUDA call), each naming the call, file and line. */
typedef struct dist__nccl dist__nccl;
int dist__nccl_new(nn_params *ps, int64_t numel, dist__nccl **out, char *why, size_t why_size);
/* Average the trainable gradients of ps (the store given to dist__nccl_new) across ranks in place
 * on the GPUs; *stop becomes 1 when any rank's was 1; *seconds gets the device time from the
 * first copy in to the last copy out. Synchronises with the device before it returns. */
int dist__nccl_run(dist__nccl *n, nn_params *ps, int *stop, double *seconds);
/* "NCCL 2.28.9" (the library's version). */
const char *dist__nccl_describe(const dist__nccl *n);
void dist__nccl_free(dist__nccl *n); /* NULL does nothing */

#endif
