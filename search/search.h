/* search: the NASNet architecture search.
 *
 * Sections: 1. the search space (decision sequence <-> genotype, valid choices, masks);
 * 2. random search; 3. the work queue of child trainings; 4. the children.jsonl log.
 * (The controller, PPO and the driver add their sections after these.)
 *
 * Threads: the space functions and the log functions keep no state. A srch_queue is guarded by
 * its own mutex, so in-process worker threads may pull and complete jobs while the driver
 * pushes and checkpoints. */
#ifndef SRCH_SEARCH_H
#define SRCH_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "backbone/nasnet.h"
#include "common/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * Section 1: the search space
 *
 * A decision sequence is 2 cells (Normal first, then Reduction) x B blocks x 5 decisions, in
 * the order input A, input B, op A, op B, combiner; step t of the sequence is
 *   cell = t / (5B), block = (t / 5) % B, slot = t % 5.
 * A decision's value is an index: for an input, the state index (valid: 0 .. I + block - 1);
 * for an op, an index into space->ops; for a combiner, an index into space->combiners.
 * Every valid choice set is a prefix 0 .. n_valid - 1 of a fixed-width softmax (width by
 * kind, srch_space_width), which is what a controller with one classifier per kind needs.
 * ====================================================================================== */

typedef enum srch_space_kind {
    SRCH_SPACE_A = 0, /* NASNet-A: 2 inputs, 5 blocks, add/concat, output = unused states */
    SRCH_SPACE_B,     /* NASNet-B: 4 inputs, 4 blocks, add/concat/add_layernorm/add_instancenorm,
                       * output = all block outputs (paper, appendix B) */
    SRCH_SPACE_C,     /* NASNet-C: as A plus add_layernorm/add_instancenorm */
    SRCH_SPACE_COUNT
} srch_space_kind;

typedef struct srch_space {
    srch_space_kind kind;
    const char *name;             /* "nasnet-a", "nasnet-b", "nasnet-c" */
    int n_inputs;                 /* I */
    int n_blocks;                 /* B */
    int n_ops;
    nas_op ops[NAS_OP_COUNT];     /* op decision value -> op */
    int n_combiners;
    nas_combiner combiners[NAS_COMB_COUNT]; /* combiner decision value -> combiner */
    nas_output_rule output;       /* the output rule of every decoded cell */
} srch_space;

typedef enum srch_decision_kind { SRCH_DEC_INPUT = 0, SRCH_DEC_OP, SRCH_DEC_COMBINER, SRCH_DEC_COUNT } srch_decision_kind;

typedef struct srch_step {
    nas_cell_kind cell;
    int block;
    int slot;                /* 0 input A, 1 input B, 2 op A, 3 op B, 4 combiner */
    srch_decision_kind kind;
    int n_valid;             /* valid values: 0 .. n_valid - 1 */
    int width;               /* srch_space_width(space, kind) */
} srch_step;

/* Fill *space with a variant. Returns 0 or ND_ERR_INVALID for an unknown kind. */
int srch_space_init(srch_space *space, srch_space_kind kind);
/* By name: "nasnet-a", "nasnet-b", "nasnet-c" (also "a", "b", "c"). ND_ERR_NOT_FOUND lists them. */
int srch_space_from_name(const char *name, srch_space *space);

/* 2 * 5 * B: 50 for the A and C spaces, 40 for B. */
int srch_space_n_decisions(const srch_space *space);
/* Softmax width for a decision kind: inputs I + B - 1, ops n_ops, combiners n_combiners. */
int srch_space_width(const srch_space *space, srch_decision_kind kind);
/* Describe step t. Returns 0 or ND_ERR_INVALID when t is outside 0 .. n_decisions - 1. */
int srch_space_step(const srch_space *space, int t, srch_step *step);
/* mask[0 .. width) = 1 for the valid values of step t, 0 for the rest (width = the step's
 * srch_space_width). Returns the number of valid values, or ND_ERR_INVALID for a bad t or a
 * width that differs from the step's. */
int srch_space_mask(const srch_space *space, int t, uint8_t *mask, int width);
/* Is value v valid at step t? */
int srch_space_valid(const srch_space *space, int t, int v);

/* decisions[0 .. n) -> *g (n must be srch_space_n_decisions). The genotype takes the space's
 * sizes and output rule and an empty name. Returns 0 or ND_ERR_INVALID naming the first bad
 * step ("step 12 (normal block 2, op A): value 13, expected 0..12"). */
int srch_space_decode(const srch_space *space, const int *decisions, int n, nas_genotype *g);
/* *g -> decisions[0 .. n). Fails with ND_ERR_INVALID when g is not a point of the space (sizes,
 * an op or combiner the space lacks, a different output rule: TF-slim's NASNet-A, with its
 * hand-written output lists, is not a point of the A space). decode(encode(g)) == g for every
 * g that encodes, and encode(decode(d)) == d for every valid d. */
int srch_space_encode(const srch_space *space, const nas_genotype *g, int *decisions, int n);

/* ======================================================================================
 * Section 2: random search
 * ====================================================================================== */

/* Draw every decision uniformly over its valid values (nd_rng_below), in step order, into
 * decisions[0 .. n) (n = srch_space_n_decisions), and decode them into *g when g is not NULL.
 * The same RNG state gives the same sequence. Returns 0 or ND_ERR_INVALID for a wrong n. */
int srch_random_sample(const srch_space *space, nd_rng *rng, int *decisions, int n, nas_genotype *g);

/* ======================================================================================
 * Section 3: the work queue
 *
 * The driver pushes jobs (a genotype to train, a seed, the batch it belongs to); workers pull
 * them and report results in any order; a batch is complete when all its jobs are done. Job ids
 * are 0, 1, 2, ... in push order and never reused. Pull hands out the pending job with the
 * lowest id, so a re-queued job goes out again before newer ones. A job held by a worker that
 * died is put back with srch_queue_requeue_worker (its id and seed unchanged, so the child it
 * trains is the same). The first result for a job stands: a late result from a worker whose
 * job was re-queued and finished elsewhere is refused with ND_ERR_INVALID, so no child counts
 * twice.
 *
 * Resume: srch_queue_save writes the queue atomically; after srch_queue_load, jobs that were
 * running when it was saved belong to workers that are gone: call
 * srch_queue_requeue_worker(q, SRCH_ANY_WORKER). Results logged to children.jsonl after the
 * last save are put back with srch_queue_reconcile, so nothing is lost or trained twice.
 * ====================================================================================== */

enum { SRCH_MESSAGE_MAX = 256, SRCH_ANY_WORKER = -1 };

typedef enum srch_job_state { SRCH_JOB_PENDING = 0, SRCH_JOB_RUNNING, SRCH_JOB_DONE, SRCH_JOB_STATE_COUNT } srch_job_state;

typedef struct srch_result {
    int ok;                          /* 1 trained, 0 failed (build error, NaN, ...) */
    double reward;                   /* validation accuracy; the driver decides a failed child's */
    int64_t params;                  /* trainable parameters of the child */
    int64_t macs;                    /* multiply-adds of one forward pass */
    double seconds;                  /* wall time of the child's training */
    int worker;                      /* who trained it */
    char message[SRCH_MESSAGE_MAX];  /* why it failed ("" when ok) */
} srch_result;

typedef struct srch_job {
    int64_t id;
    int64_t batch;        /* the driver's batch number (e.g. the controller update it feeds) */
    uint64_t seed;        /* the child's training seed */
    nas_genotype genotype;
    srch_job_state state;
    int worker;           /* holder while running, trainer when done; -1 while pending */
    int attempts;         /* how many times it was handed out */
    srch_result result;   /* meaningful when done */
} srch_job;

typedef struct srch_queue srch_queue;

/* A new empty queue (caller frees with srch_queue_free). Returns 0 or ND_ERR_NOMEM. */
int srch_queue_new(srch_queue **q);
void srch_queue_free(srch_queue *q); /* NULL does nothing */

/* Add a job; *id (may be NULL) receives its id. The genotype must be valid (ND_ERR_INVALID
 * otherwise); batch >= 0. */
int srch_queue_push(srch_queue *q, int64_t batch, const nas_genotype *g, uint64_t seed, int64_t *id);
/* Hand the lowest-id pending job to `worker` (>= 0): copies it into *job, marks it running.
 * Returns 1 when a job was handed out, 0 when none is pending, ND_ERR_INVALID for a bad worker. */
int srch_queue_pull(srch_queue *q, int worker, srch_job *job);
/* Record the result of job `id` (pending or running) and mark it done. ND_ERR_NOT_FOUND for an
 * unknown id (or one whose batch was dropped), ND_ERR_INVALID when it is already done. */
int srch_queue_complete(srch_queue *q, int64_t id, const srch_result *result);
/* Put running job `id` back to pending. ND_ERR_NOT_FOUND / ND_ERR_INVALID (not running). */
int srch_queue_requeue(srch_queue *q, int64_t id);
/* Put every job running on `worker` (or on any, SRCH_ANY_WORKER) back to pending; returns how
 * many. */
int srch_queue_requeue_worker(srch_queue *q, int worker);

/* Copy job `id` into *job. 0 or ND_ERR_NOT_FOUND. */
int srch_queue_get(const srch_queue *q, int64_t id, srch_job *job);
/* Number of jobs in a state (all batches). */
int64_t srch_queue_count(const srch_queue *q, srch_job_state state);
/* Number of jobs of `batch` in a state (state = SRCH_JOB_STATE_COUNT: all of them). */
int64_t srch_queue_batch_count(const srch_queue *q, int64_t batch, srch_job_state state);
/* 1 when `batch` has at least one job and all its jobs are done, else 0. */
int srch_queue_batch_complete(const srch_queue *q, int64_t batch);
/* Copy up to `max` jobs of `batch` into out[], in id order (so what the driver does with a
 * batch does not depend on the order results arrived in); returns how many were copied. */
int64_t srch_queue_batch_jobs(const srch_queue *q, int64_t batch, srch_job *out, int64_t max);
/* Forget a complete batch (after its results are logged and used), keeping checkpoints small.
 * Returns the number of jobs removed, ND_ERR_INVALID when the batch is not complete. */
int srch_queue_batch_drop(srch_queue *q, int64_t batch);
/* The id the next push will get. */
int64_t srch_queue_next_id(const srch_queue *q);

/* The whole queue as JSON text (malloc'ed, caller frees); seeds are written as decimal
 * strings so that 64-bit values survive. from_json restores it exactly (states included).
 * Errors name the JSON path. */
int srch_queue_to_json(const srch_queue *q, char **text);
int srch_queue_from_json(const char *text, srch_queue **q);
/* Atomic write / read of that JSON; messages start with the file name. */
int srch_queue_save(const srch_queue *q, const char *path);
int srch_queue_load(const char *path, srch_queue **q);

/* ======================================================================================
 * Section 4: the children log (RUN/children.jsonl)
 *
 * One JSON object per line, one line per finished child:
 *   {"job": 17, "batch": 0, "seed": "1234", "worker": 0, "ok": true, "reward": 0.91,
 *    "params": 12345, "macs": 678901, "seconds": 20.5, "message": "", "genotype": {...}}
 * Lines are appended with nd_file_append_line (one write, then fsync), so a kill leaves at
 * most one cut line at the end of the file.
 * ====================================================================================== */

typedef struct srch_child {
    int64_t job_id;
    int64_t batch;
    uint64_t seed;
    srch_result result;      /* reward, params, macs, seconds, worker, ok, message */
    nas_genotype genotype;
} srch_child;

/* A done job as a log record. */
void srch_child_from_job(const srch_job *job, srch_child *child);
/* The record as one line of JSON (no newline), malloc'ed (caller frees). */
int srch_child_to_json(const srch_child *child, char **line);
/* Parse one line; errors name the key. */
int srch_child_from_json(const char *line, srch_child *child);
/* Append the record to `path` (created if missing). */
int srch_children_append(const char *path, const srch_child *child);
/* Read every record: *children (malloc'ed, caller frees; NULL when none) and *n. A last line
 * that does not end in a newline and does not parse (a kill in mid-write) is skipped, *cut is
 * set to 1 and a warning logged; a complete unterminated last line is kept. Any other bad
 * line fails with ND_ERR_FORMAT naming the file and line number. A missing file is ND_ERR_IO. */
int srch_children_read(const char *path, srch_child **children, int64_t *n, int *cut);
/* Make the file safe to append to after a kill: drop a cut last line, terminate a complete
 * unterminated one. Rewrites atomically only when needed. *dropped (may be NULL) gets the
 * number of bytes removed. A missing file is fine (nothing to repair). */
int srch_children_repair(const char *path, size_t *dropped);
/* Mark done, with their logged results, the queue's jobs that appear in children[0 .. n) but
 * are not done in q (results logged after the last queue checkpoint). Jobs the queue no
 * longer holds are ignored. Returns how many jobs were completed. */
int64_t srch_queue_reconcile(srch_queue *q, const srch_child *children, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
