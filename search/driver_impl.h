/* Internal to search/driver*.c: the driver's state and its checkpoint. */
#ifndef SRCH_DRIVER_IMPL_H
#define SRCH_DRIVER_IMPL_H

#include "search/search_driver.h"

typedef struct srch_drv {
    const srch_driver_config *cfg;
    srch_space space;
    srch_controller *ctrl;   /* also for random search, so every run has the same checkpoint */
    nd_rng rng;              /* architecture sampling */
    srch_policy_state policy;
    srch_queue *q;
    int64_t batch;           /* the batch in flight, or -1 */
    int64_t next_batch;      /* number of the next batch to sample */
    char *run_desc;          /* what must match on resume (malloc'ed) */
    char *children_path, *ckpt_path;
} srch_drv;

/* The settings a resumed run must share with the original, as one line of text. */
char *srch_drv_describe(const srch_driver_config *cfg);

/* Write RUN/checkpoint.safetensors (controller + Adam moments; metadata: description, RNG,
 * baseline, batch counters, queue JSON), atomically. */
int srch_drv_save(const srch_drv *d);
/* Load it into d (controller, queue, RNG, baseline, counters). ND_ERR_INVALID when the stored
 * description differs from d->run_desc. */
int srch_drv_load(srch_drv *d);

#endif
