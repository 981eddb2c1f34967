/* Internal to search/: the work queue's representation, shared by queue.c (operations) and
 * queue_json.c (checkpoints). */
#ifndef SRCH_QUEUE_IMPL_H
#define SRCH_QUEUE_IMPL_H

#include <pthread.h>

#include "search/search.h"

struct srch_queue {
    pthread_mutex_t mu;
    srch_job *jobs;   /* sorted by id, increasing; dropped batches leave no holes */
    int64_t n;
    int64_t cap;
    int64_t next_id;
};

/* Append a job as it is (id must exceed the last one's); caller holds the lock or owns q
 * exclusively. Returns 0 or ND_ERR_NOMEM. */
int srch_queue_append_raw(srch_queue *q, const srch_job *job);

#endif
