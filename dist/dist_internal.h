/* dist: what the module's files share (not for other modules). */
#ifndef DIST_DIST_INTERNAL_H
#define DIST_DIST_INTERNAL_H

#include "dist/dist.h"

/* nd_fail(ND_ERR_UNSUPPORTED, "<what>: built without MPI (make MPI=1)"). */
int dist__unsupported(const char *what);
/* Rank 0 gave `lost` worker ranks up: dist_finalize then ends the job with MPI_Abort instead of
 * waiting in MPI_Finalize for ranks that may never come back. */
void dist__abandon_at_finalize(int lost);

#endif
