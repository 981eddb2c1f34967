/* search: the learning half of the NASNet search (to be folded into search/search.h as its
 * sections 5-8): the controller LSTM, its policy updates (PPO, REINFORCE) next to random
 * search, the child-training interface, the driver that runs a search over the work queue
 * with checkpoints and resume, and the run reports (best genotype, top-k, reward plots).
 *
 * A run folder RUN/ holds:
 *   children.jsonl     one line per finished child (section 4 of search.h), in finishing order
 *   checkpoint.safetensors  controller parameters + Adam moments; its metadata holds the run
 *                      config, the sampling RNG, the baseline, counters and the work queue (JSON),
 *                      all in one file written atomically, so it is never half of one state
 *   best.json          the best genotype so far (nas_genotype JSON, named "best-job<id>")
 *   top.json           the top-k children: job, reward, params, macs, seconds, genotype
 *   rewards.png        reward of each child against its index, the running best and the mean
 *                      of the last 20
 *   best_cells.dot     Graphviz text of the best cells (the CLI renders best_cells.png)
 *   timing.json        wall time, time in child training, time outside it, children per hour
 *
 * Threads: a controller and a driver are used by one thread at a time. */
#ifndef SRCH_SEARCH_DRIVER_H
#define SRCH_SEARCH_DRIVER_H

#include <signal.h>
#include <stdint.h>

#include "backbone/nasnet.h"
#include "backbone/nasnet_net.h"
#include "common/progress.h"
#include "common/rng.h"
#include "nn/nn.h"
#include "search/search.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * Section 5: the controller
 *
 * One-layer LSTM (PyTorch gate order, nn_lstm_cell) with `hidden` units. Step 0 reads a
 * learned start vector; step t > 0 reads the embedding of decision t-1, from one table per
 * decision kind (inputs, ops, combiners; embedding size = hidden). Each step has a linear
 * head per decision kind over the kind's full softmax width (srch_space_width); only the
 * first n_valid logits of the step enter its softmax (the space guarantees that valid values
 * are a prefix), so invalid choices have probability exactly 0. Every weight, embedding,
 * bias and the start vector is drawn uniform in [-init_range, init_range] (paper: 0.1).
 *
 * Parameters (names in the nn_params store, saved in checkpoints):
 *   ctrl.start [1,H]; ctrl.lstm.w_ih [4H,H], ctrl.lstm.w_hh [4H,H], ctrl.lstm.b [4H];
 *   ctrl.emb.<kind> [W_kind,H]; ctrl.head.<kind>.w [W_kind,H], ctrl.head.<kind>.b [W_kind]
 *   with <kind> = input, op, combiner.
 * ====================================================================================== */

typedef struct srch_controller srch_controller;

/* A new controller over `space` (copied) with `hidden` units (1..4096), its weights drawn from
 * nd_rng seeded with `seed`. Caller frees with srch_controller_free. ND_ERR_INVALID for a bad
 * hidden size. */
int srch_controller_new(const srch_space *space, int hidden, double init_range, uint64_t seed,
                        srch_controller **out);
void srch_controller_free(srch_controller *c); /* NULL does nothing */

/* The parameter store (owned by the controller): for the optimizer and checkpoints. */
nn_params *srch_controller_params(srch_controller *c);
const srch_space *srch_controller_space(const srch_controller *c);
/* Decisions per sequence (srch_space_n_decisions). */
int srch_controller_n_decisions(const srch_controller *c);

/* Sample n sequences (one forward pass over a batch of n; row i draws its decision at each
 * step with nd_rng_uniform, rows in order, so the RNG state fixes the result).
 * decisions: n x T ints (T = srch_controller_n_decisions), row-major. logp (may be NULL): n
 * log-probabilities of the sampled sequences. Every decision is valid for its step. Runs on
 * one thread (nn_set_threads(1), restored on return): the tensors are too small for more. */
void srch_controller_sample(srch_controller *c, nd_rng *rng, int n, int *decisions, double *logp);

/* The log-probability logp [n] and entropy [n] (sum over steps of each step's softmax
 * entropy) of n given sequences, as tensors of ctx that are differentiable with respect to the
 * controller's parameters (built with nn ops; grad must be enabled in ctx for that).
 * Returns 0, or ND_ERR_INVALID (nothing written) when a decision is invalid for its step. */
int srch_controller_logprob(srch_controller *c, nn_ctx *ctx, const int *decisions, int n, nn_tensor **logp,
                            nn_tensor **entropy);

/* ======================================================================================
 * Section 6: policy updates
 *
 * Reward baseline: exponential moving average b <- d b + (1 - d) r over the rewards in job
 * order (d = 0.95), started at the mean reward of the first batch. Advantages of a batch use
 * the baseline from before the batch: A_i = r_i - b.
 * PPO: logp_old = the log-probabilities under the parameters that sampled the batch; then
 * `epochs` full-batch Adam steps on
 *   loss = -mean_i min(ratio_i A_i, clip(ratio_i, 1 - eps, 1 + eps) A_i) - w_ent mean_i H_i,
 *   ratio_i = exp(logp_i - logp_old_i).
 * REINFORCE: one Adam step on loss = -mean_i A_i logp_i - w_ent mean_i H_i.
 * Our choices where the paper is silent: eps = 0.2 and 4 epochs per batch (PPO's common
 * settings for small batches); Adam beta 0.9/0.999, eps 1e-8, no weight decay, no gradient
 * clipping.
 * ====================================================================================== */

typedef enum srch_strategy {
    SRCH_STRATEGY_PPO = 0,
    SRCH_STRATEGY_REINFORCE,
    SRCH_STRATEGY_RANDOM, /* srch_random_sample; no controller update */
    SRCH_STRATEGY_COUNT
} srch_strategy;

/* "ppo", "reinforce", "random"; "?" when out of range. */
const char *srch_strategy_name(srch_strategy s);
/* Name -> strategy; ND_ERR_NOT_FOUND listing the names. */
int srch_strategy_from_name(const char *name, srch_strategy *s);

typedef struct srch_policy_config {
    double lr;             /* Adam learning rate: 0.00035 */
    double entropy_weight; /* 1e-5 */
    double baseline_decay; /* 0.95 */
    double clip_eps;       /* PPO: 0.2 */
    int epochs;            /* PPO: 4 */
} srch_policy_config;

/* The paper's settings and our documented choices (above). */
srch_policy_config srch_policy_config_default(void);

typedef struct srch_policy_state {
    double baseline;
    int baseline_set;      /* 0 until the first batch */
    int64_t updates;       /* updates done */
} srch_policy_state;

typedef struct srch_update_stats {
    double mean_reward, baseline_before, baseline_after;
    double loss;           /* of the last epoch */
    double entropy;        /* mean sequence entropy before the update */
    double clip_fraction;  /* PPO: fraction of sequences whose ratio left [1-eps, 1+eps] in the last epoch */
    double approx_kl;      /* mean(logp_old - logp) after the update */
} srch_update_stats;

/* One update of the controller from n sequences (decisions n x T) and their rewards (finite)
 * with `strategy` (PPO or REINFORCE; RANDOM only moves the baseline). ctx is scratch (reset
 * here). stats may be NULL. One thread, as srch_controller_sample. Returns 0, ND_ERR_INVALID (bad strategy, n < 1, an invalid
 * decision), ND_ERR_NUMERIC (a non-finite reward, loss or gradient: the step that would apply
 * it is skipped; with a non-finite reward nothing changes). */
int srch_policy_update(srch_controller *c, nn_ctx *ctx, srch_strategy strategy, const srch_policy_config *cfg,
                       srch_policy_state *st, const int *decisions, const double *rewards, int n,
                       srch_update_stats *stats);

/* ======================================================================================
 * Section 7: children and workers
 * ====================================================================================== */

/* Trains one child. Fills *result (ok, reward, params, macs, seconds, message; the driver sets
 * `worker`). A child that cannot be built or diverges is not an error of the search: set ok = 0
 * and a message and return 0; the driver then gives it reward 0 and logs it. A negative return
 * is treated the same way (message from nd_last_error). Must be deterministic for (genotype,
 * seed) when the search is to be reproducible. */
typedef int (*srch_child_train_fn)(void *user, const nas_genotype *g, uint64_t seed, srch_result *result);

typedef struct srch_child_trainer {
    srch_child_train_fn train;
    void *user;
} srch_child_trainer;

/* Workers behind the queue: `next_result` hands pending jobs of q to idle workers (through
 * srch_queue_pull) and returns once one job has finished, with its id and result (the driver
 * completes it in the queue). Returns 1 with a result, 0 when no job is pending or running,
 * or a negative status (the workers are unusable). The in-process pool below trains one job at
 * a time in the calling thread; an MPI pool implements the same two functions. */
typedef struct srch_workers srch_workers;
struct srch_workers {
    int (*next_result)(srch_workers *w, srch_queue *q, int64_t *id, srch_result *result);
    void (*free)(srch_workers *w);
};

/* In-process workers: one worker (id 0) training with `trainer` (copied). A result's `seconds`
 * is the wall time of the whole trainer->train call (build, training, validation). */
int srch_workers_local_new(const srch_child_trainer *trainer, srch_workers **out);
void srch_workers_free(srch_workers *w); /* NULL does nothing */

/* The real child: a CIFAR-skeleton NASNet (backbone's builder) with N cells per stack and F
 * filters, trained with SGD momentum 0.9 + Nesterov, cosine learning rate, weight decay, on
 * the first part of a CIFAR-format training set; reward = accuracy on the last `val`
 * training images. */
typedef struct srch_cifar_child_config {
    const char *data_dir;   /* CIFAR-10 binary folder (data_batch_1..5.bin) */
    int n_cells;            /* N: 2 */
    int filters;            /* F: 8 */
    int batch;              /* 64 */
    int epochs;             /* passes over the training subset; used when steps == 0 */
    int64_t steps;          /* fixed number of SGD steps (> 0 overrides epochs) */
    int64_t train_subset;   /* training images used (0: all but the validation part) */
    int64_t val;            /* held-out validation images at the end of the set: 5000 */
    int64_t val_subset;     /* validation images scored (0: all `val`) */
    int adam;               /* 0: SGD with Nesterov momentum 0.9; 1: Adam (betas 0.9, 0.999) */
    double lr;              /* initial learning rate of the cosine schedule */
    double weight_decay;
    nas_conv_init conv_init;  /* NAS_INIT_TF_SLIM or NAS_INIT_TORCH */
    int threads;            /* kernel threads (0: all cores) */
    const char *device;     /* where children train: NULL or "cpu", "cuda", "cuda:N" (borrowed) */
} srch_cifar_child_config;

void srch_cifar_child_config_default(srch_cifar_child_config *cfg);

typedef struct srch_cifar_child srch_cifar_child;
/* Load the data set once (ND_ERR_IO / ND_ERR_FORMAT / ND_ERR_INVALID with a message naming the
 * folder when it cannot serve the split). The trainer borrows the returned object. */
int srch_cifar_child_new(const srch_cifar_child_config *cfg, srch_cifar_child **out);
void srch_cifar_child_free(srch_cifar_child *c);
srch_child_trainer srch_cifar_child_trainer(srch_cifar_child *c);
/* The config as one line of JSON (malloc'ed, caller frees) stored in the run checkpoint, so
 * that --resume can refuse a different child setting. */
char *srch_cifar_child_describe(const srch_cifar_child_config *cfg);

/* ======================================================================================
 * Section 8: the driver and the reports
 *
 * Loop: when no batch is in flight, sample min(batch, children - sampled) architectures
 * (controller, or uniform for random search) into the queue as the next batch and checkpoint;
 * then take results from the workers in any order, append each to children.jsonl; when the
 * batch is complete, update the controller with its jobs in id order, drop the batch, write
 * the reports, sample the next batch and checkpoint. The updates are synchronous: every batch
 * is sampled by the parameters that its update starts from, as PPO requires.
 *
 * Checkpoint and resume: the checkpoint is written after each batch is sampled. A kill at any
 * moment loses nothing: on resume the checkpoint gives the controller, RNG, baseline and the
 * in-flight batch; children.jsonl is repaired (a cut last line dropped) and its records for
 * that batch are put back into the queue (srch_queue_reconcile), so no logged child is trained
 * again and only the children that were running are retrained, with their original seeds.
 * The same seed gives the same architectures, interrupted or not.
 * ====================================================================================== */

typedef struct srch_driver_config {
    const char *run_dir;        /* created if missing */
    srch_space_kind space;      /* SRCH_SPACE_A */
    srch_strategy strategy;
    int64_t children;           /* total budget of children for the run (>= 1) */
    int batch;                  /* architectures per batch / controller update: 20 */
    uint64_t seed;
    int hidden;                 /* controller LSTM units: 100 */
    double init_range;          /* 0.1 */
    srch_policy_config policy;
    int top_k;                  /* entries in top.json: 25 */
    const char *child_desc;     /* text describing the child setting (may be NULL); stored in
                                   the checkpoint and compared on resume */
    nd_progress *progress;      /* may be NULL; its total is set to the children left in this
                                   call, its extra text to "done D/K  best B  last L" */
    int64_t stop_after;         /* > 0: return ND_ERR_INTERRUPTED after this many children
                                   finished in this call (time-boxed runs, tests) */
    volatile sig_atomic_t *stop;/* may be NULL: when it becomes non-zero, return
                                   ND_ERR_INTERRUPTED after the current child */
} srch_driver_config;

/* Defaults: space A, PPO, 100 children, batch 20, seed 1, hidden 100, init 0.1, policy
 * defaults, top 25; run_dir NULL (required). */
void srch_driver_config_default(srch_driver_config *cfg);

typedef struct srch_run_stats {
    int64_t children_done;      /* in the whole run, resumed parts included */
    int64_t children_this_call;
    int64_t failed;             /* children with ok = 0 in this call */
    double best_reward;         /* over the whole run; -1 when none */
    int64_t best_job;
    double wall_seconds;        /* this call */
    double child_seconds;       /* this call: time inside trainer->train */
    double overhead_seconds;    /* wall - child */
    double controller_seconds;  /* of the overhead: sampling and updates */
    double report_seconds;      /* of the overhead: reports and checkpoints */
} srch_run_stats;

/* Run (resume = 0: RUN/ must not hold a checkpoint; 1: continue from it, failing with
 * ND_ERR_INVALID when the stored config differs in strategy, space, batch, seed, hidden or
 * child_desc; `children` may be raised). Returns 0 when the budget is done,
 * ND_ERR_INTERRUPTED when stopped (state saved), or the status of an I/O or format failure.
 * stats may be NULL. */
int srch_driver_run(const srch_driver_config *cfg, srch_workers *workers, int resume, srch_run_stats *stats);

/* Reports from RUN/children.jsonl. */
typedef struct srch_run_summary {
    int64_t children, failed;
    double best, mean, top5_mean, top25_mean; /* top-k means over min(k, children) */
    int64_t best_job;
    double child_seconds_mean;
} srch_run_summary;

/* Summarise children[0..n) (any order). */
void srch_summary_compute(const srch_child *children, int64_t n, srch_run_summary *out);
/* Read RUN/children.jsonl and summarise it (ND_ERR_IO when missing, ND_ERR_NOT_FOUND when
 * empty). */
int srch_summary_read(const char *run_dir, srch_run_summary *out);
/* Write best.json, top.json (top_k entries), rewards.png and best_cells.dot into RUN/. */
int srch_report_write(const char *run_dir, int top_k);
/* One PNG comparing runs: for each run its child rewards (points), running best and mean of
 * the last 20 children (lines), labelled with the run folder's name. n_runs 1..4. */
int srch_report_plot_runs(const char *const *run_dirs, int n_runs, const char *out_png);

#ifdef __cplusplus
}
#endif

#endif
