/* In-process workers: the driver's thread trains one child at a time. Behind the same two
 * functions the MPI pool (dist/search_workers.c) keeps one job per worker rank in flight. */
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"
#include "search/search_driver.h"

typedef struct local_workers {
    srch_workers base; /* first: the pool is used through a srch_workers pointer */
    srch_child_trainer trainer;
} local_workers;

static int local_next_result(srch_workers *w, srch_queue *q, int64_t *id, srch_result *result) {
    local_workers *lw = (local_workers *)w;
    srch_job job;
    int got = srch_queue_pull(q, 0, &job);
    if (got <= 0) return got;
    memset(result, 0, sizeof *result);
    double t0 = nd_time_now();
    nd_error_clear();
    int rc = lw->trainer.train(lw->trainer.user, &job.genotype, job.seed, result);
    double seconds = nd_time_now() - t0;
    if (rc < 0) {
        /* A trainer error is the child's failure, not the search's. */
        result->ok = 0;
        snprintf(result->message, sizeof result->message, "%s: %s", nd_status_name(rc),
                 nd_last_error()[0] ? nd_last_error() : "child training failed");
    }
    result->seconds = seconds; /* the whole child: build, training and validation */
    result->worker = 0;
    *id = job.id;
    return 1;
}

static void local_free(srch_workers *w) { free(w); }

int srch_workers_local_new(const srch_child_trainer *trainer, srch_workers **out) {
    *out = NULL;
    if (!trainer || !trainer->train) return nd_fail(ND_ERR_INVALID, "local workers need a child trainer");
    local_workers *lw = calloc(1, sizeof *lw);
    if (!lw) return nd_fail(ND_ERR_NOMEM, "out of memory for the workers");
    lw->base.next_result = local_next_result;
    lw->base.free = local_free;
    lw->trainer = *trainer;
    *out = &lw->base;
    return ND_OK;
}

void srch_workers_free(srch_workers *w) {
    if (w) w->free(w);
}
