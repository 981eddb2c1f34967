/* The search driver: sample a batch into the work queue, collect the children's results in any
 * order, log each one, update the controller when the batch is complete, checkpoint. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"
#include "search/driver_impl.h"

void srch_driver_config_default(srch_driver_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->space = SRCH_SPACE_A;
    cfg->strategy = SRCH_STRATEGY_PPO;
    cfg->children = 100;
    cfg->batch = 20;
    cfg->seed = 1;
    cfg->hidden = 100;
    cfg->init_range = 0.1;
    cfg->policy = srch_policy_config_default();
    cfg->top_k = 25;
}

/* Sub-streams of the run seed, so that each use of randomness is independent of the others. */
enum { STREAM_SAMPLE = 1, STREAM_CONTROLLER = 2, STREAM_CHILD = 1u << 20 };

static uint64_t child_seed(uint64_t seed, int64_t job) {
    nd_rng r;
    nd_rng_seed_stream(&r, seed, STREAM_CHILD + (uint64_t)job);
    return nd_rng_u64(&r);
}

/* Sample the next batch (n architectures) into the queue. */
static int sample_batch(srch_drv *d, int n) {
    int T = srch_space_n_decisions(&d->space);
    int *dec = malloc(sizeof(int) * (size_t)T * (size_t)n);
    if (!dec) return nd_fail(ND_ERR_NOMEM, "out of memory sampling a batch");
    int rc = ND_OK;
    if (d->cfg->strategy == SRCH_STRATEGY_RANDOM) {
        for (int i = 0; !rc && i < n; i++) rc = srch_random_sample(&d->space, &d->rng, dec + (size_t)i * T, T, NULL);
    } else {
        srch_controller_sample(d->ctrl, &d->rng, n, dec, NULL);
    }
    for (int i = 0; !rc && i < n; i++) {
        nas_genotype g;
        rc = srch_space_decode(&d->space, dec + (size_t)i * T, T, &g);
        int64_t id = srch_queue_next_id(d->q);
        if (!rc) rc = srch_queue_push(d->q, d->next_batch, &g, child_seed(d->cfg->seed, id), NULL);
    }
    free(dec);
    if (rc) return rc;
    d->batch = d->next_batch++;
    return ND_OK;
}

/* The complete batch in flight: update the controller from its jobs (in id order, whatever
 * order they finished in) and drop it from the queue. */
static int finish_batch(srch_drv *d, nn_ctx *ctx) {
    int64_t n = srch_queue_batch_count(d->q, d->batch, SRCH_JOB_STATE_COUNT);
    int T = srch_space_n_decisions(&d->space);
    srch_job *jobs = malloc(sizeof *jobs * (size_t)n);
    int *dec = malloc(sizeof(int) * (size_t)T * (size_t)n);
    double *rw = malloc(sizeof(double) * (size_t)n);
    int rc = (!jobs || !dec || !rw) ? nd_fail(ND_ERR_NOMEM, "out of memory finishing a batch") : ND_OK;
    if (!rc) n = srch_queue_batch_jobs(d->q, d->batch, jobs, n);
    for (int64_t i = 0; !rc && i < n; i++) {
        rc = srch_space_encode(&d->space, &jobs[i].genotype, dec + (size_t)i * T, T);
        rw[i] = jobs[i].result.ok ? jobs[i].result.reward : 0.0;
    }
    srch_update_stats us;
    if (!rc)
        rc = srch_policy_update(d->ctrl, ctx, d->cfg->strategy, &d->cfg->policy, &d->policy, dec, rw, (int)n, &us);
    if (rc == ND_ERR_NUMERIC) {
        /* A poisoned update must not end the search: skip it, keep sampling. */
        ND_WARN("batch %lld: controller update skipped: %s", (long long)d->batch, nd_last_error());
        rc = ND_OK;
    } else if (!rc && d->cfg->strategy == SRCH_STRATEGY_RANDOM) {
        ND_INFO("batch %lld (%lld children): mean reward %.4f", (long long)d->batch, (long long)n, us.mean_reward);
    } else if (!rc) {
        ND_INFO("batch %lld (%lld children): mean reward %.4f, baseline %.4f -> %.4f, entropy %.2f, loss %.4g, "
                "clipped %.2f, kl %.2g",
                (long long)d->batch, (long long)n, us.mean_reward, us.baseline_before, us.baseline_after, us.entropy,
                us.loss, us.clip_fraction, us.approx_kl);
    }
    if (!rc && srch_queue_batch_drop(d->q, d->batch) < 0) rc = ND_ERR_INVALID;
    if (!rc) d->batch = -1;
    free(jobs);
    free(dec);
    free(rw);
    return rc;
}

/* Open or create the run state. */
static int drv_open(srch_drv *d, const srch_driver_config *cfg, int resume, double *best, int64_t *best_job) {
    memset(d, 0, sizeof *d);
    d->cfg = cfg;
    d->batch = -1;
    *best = -1;
    *best_job = -1;
    if (!cfg->run_dir || !cfg->run_dir[0]) return nd_fail(ND_ERR_INVALID, "the search needs a run folder");
    if (cfg->children < 1 || cfg->batch < 1 || cfg->batch > 100000)
        return nd_fail(ND_ERR_INVALID, "children %lld and batch %d must be >= 1", (long long)cfg->children,
                       cfg->batch);
    if (cfg->strategy < 0 || cfg->strategy >= SRCH_STRATEGY_COUNT)
        return nd_fail(ND_ERR_INVALID, "unknown strategy %d", (int)cfg->strategy);
    int rc = srch_space_init(&d->space, cfg->space);
    if (!rc) rc = nd_mkdirs(cfg->run_dir);
    if (rc) return rc;
    d->children_path = nd_path_join(cfg->run_dir, "children.jsonl");
    d->ckpt_path = nd_path_join(cfg->run_dir, "checkpoint.safetensors");
    d->run_desc = srch_drv_describe(cfg);
    if (!d->children_path || !d->ckpt_path || !d->run_desc) return nd_fail(ND_ERR_NOMEM, "out of memory");
    nd_rng init;
    nd_rng_seed_stream(&init, cfg->seed, STREAM_CONTROLLER);
    rc = srch_queue_new(&d->q);
    if (!rc) rc = srch_controller_new(&d->space, cfg->hidden, cfg->init_range, nd_rng_u64(&init), &d->ctrl);
    if (rc) return rc;
    if (!resume) {
        if (nd_path_exists(d->ckpt_path) || nd_path_exists(d->children_path))
            return nd_fail(ND_ERR_INVALID, "%s already holds a search (checkpoint.safetensors or children.jsonl): "
                           "resume it, or choose another folder", cfg->run_dir);
        nd_rng_seed_stream(&d->rng, cfg->seed, STREAM_SAMPLE);
        return ND_OK;
    }
    if (!nd_path_exists(d->ckpt_path))
        return nd_fail(ND_ERR_NOT_FOUND, "%s: no checkpoint.safetensors to resume from", cfg->run_dir);
    rc = srch_drv_load(d);
    if (rc) return rc;
    /* Children logged after the checkpoint are results, not work: put them back. */
    size_t dropped = 0;
    rc = srch_children_repair(d->children_path, &dropped);
    if (rc) return rc;
    if (dropped) ND_WARN("%s: dropped a cut last line (%zu bytes) left by a kill", d->children_path, dropped);
    srch_child *ch = NULL;
    int64_t n = 0;
    if (nd_path_exists(d->children_path)) {
        rc = srch_children_read(d->children_path, &ch, &n, NULL);
        if (rc) return rc;
    }
    int64_t back = srch_queue_reconcile(d->q, ch, n);
    int requeued = srch_queue_requeue_worker(d->q, SRCH_ANY_WORKER);
    for (int64_t i = 0; i < n; i++)
        if (ch[i].result.reward > *best) {
            *best = ch[i].result.reward;
            *best_job = ch[i].job_id;
        }
    free(ch);
    ND_INFO("resumed %s: %lld children logged, %lld of them after the checkpoint, %d running jobs re-queued",
            cfg->run_dir, (long long)n, (long long)back, requeued);
    return ND_OK;
}

static void drv_close(srch_drv *d) {
    srch_controller_free(d->ctrl);
    srch_queue_free(d->q);
    free(d->run_desc);
    free(d->children_path);
    free(d->ckpt_path);
}

static int64_t done_count(const srch_drv *d) {
    return srch_queue_next_id(d->q) - srch_queue_count(d->q, SRCH_JOB_PENDING) -
           srch_queue_count(d->q, SRCH_JOB_RUNNING);
}

/* One line per call in RUN/timing.jsonl: the honest cost of the search. */
static void write_timing(const srch_drv *d, const srch_run_stats *s) {
    char *path = nd_path_join(d->cfg->run_dir, "timing.jsonl");
    if (!path) return;
    char line[768];
    double frac = s->wall_seconds > 0 ? s->overhead_seconds / s->wall_seconds : 0;
    snprintf(line, sizeof line,
             "{\"strategy\":\"%s\",\"children_done\":%lld,\"children_this_call\":%lld,\"failed\":%lld,"
             "\"wall_seconds\":%.3f,\"child_seconds\":%.3f,\"overhead_seconds\":%.3f,\"overhead_fraction\":%.5f,"
             "\"controller_seconds\":%.3f,\"report_seconds\":%.3f,\"children_per_hour\":%.2f,\"best_reward\":%.6f}",
             srch_strategy_name(d->cfg->strategy), (long long)s->children_done, (long long)s->children_this_call,
             (long long)s->failed, s->wall_seconds, s->child_seconds, s->overhead_seconds, frac,
             s->controller_seconds, s->report_seconds,
             s->wall_seconds > 0 ? 3600.0 * (double)s->children_this_call / s->wall_seconds : 0.0, s->best_reward);
    if (nd_file_append_line(path, line)) ND_WARN("%s", nd_last_error());
    free(path);
}

int srch_driver_run(const srch_driver_config *cfg, srch_workers *workers, int resume, srch_run_stats *stats) {
    double t_start = nd_time_now();
    srch_run_stats s;
    memset(&s, 0, sizeof s);
    srch_drv d;
    int rc = drv_open(&d, cfg, resume, &s.best_reward, &s.best_job);
    nn_ctx *ctx = rc ? NULL : nn_ctx_new();
    int64_t start_done = rc ? 0 : done_count(&d);
    if (!rc && cfg->progress) cfg->progress->total = cfg->children > start_done ? cfg->children - start_done : 0;
    int need_report = 0;
    while (!rc) {
        double t0 = nd_time_now();
        if (d.batch >= 0 && srch_queue_batch_complete(d.q, d.batch)) {
            rc = finish_batch(&d, ctx);
            double t1 = nd_time_now();
            s.controller_seconds += t1 - t0;
            if (!rc) rc = srch_report_write(cfg->run_dir, cfg->top_k);
            need_report = 0;
            s.report_seconds += nd_time_now() - t1;
            if (rc) break;
            t0 = nd_time_now();
        }
        if (d.batch < 0) {
            int64_t sampled = srch_queue_next_id(d.q);
            if (sampled >= cfg->children) {
                rc = srch_drv_save(&d); /* the final controller, for a later, larger budget */
                s.report_seconds += nd_time_now() - t0;
                break;
            }
            int64_t left = cfg->children - sampled;
            rc = sample_batch(&d, (int)(left < cfg->batch ? left : cfg->batch));
            double t1 = nd_time_now();
            s.controller_seconds += t1 - t0;
            if (!rc) rc = srch_drv_save(&d);
            s.report_seconds += nd_time_now() - t1;
            if (rc) break;
        }
        if ((cfg->stop && *cfg->stop) || (cfg->stop_after > 0 && s.children_this_call >= cfg->stop_after)) {
            rc = nd_fail(ND_ERR_INTERRUPTED, "search stopped after %lld children in this call; resume to continue",
                         (long long)s.children_this_call);
            break;
        }
        int64_t id;
        srch_result res;
        double t2 = nd_time_now();
        int got = workers->next_result(workers, d.q, &id, &res);
        double t3 = nd_time_now();
        if (got < 0) {
            rc = got;
            break;
        }
        if (got == 0) {
            rc = nd_fail(ND_ERR_INVALID, "batch %lld is not complete but no job is pending or running",
                         (long long)d.batch);
            break;
        }
        /* Time inside the worker beyond the child's own seconds is the queue's overhead. */
        s.child_seconds += res.seconds < t3 - t2 ? res.seconds : t3 - t2;
        if (!res.ok || !isfinite(res.reward)) {
            if (res.ok) snprintf(res.message, sizeof res.message, "non-finite reward %g", res.reward);
            res.ok = 0;
            res.reward = 0;
            s.failed++;
            ND_WARN("child job %lld failed, reward 0: %s", (long long)id, res.message);
        }
        rc = srch_queue_complete(d.q, id, &res);
        srch_job job;
        if (!rc) rc = srch_queue_get(d.q, id, &job);
        if (!rc) {
            srch_child ch;
            srch_child_from_job(&job, &ch);
            rc = srch_children_append(d.children_path, &ch);
        }
        if (rc) break;
        need_report = 1;
        s.children_this_call++;
        if (res.reward > s.best_reward) {
            s.best_reward = res.reward;
            s.best_job = id;
        }
        if (cfg->progress) {
            char extra[128];
            snprintf(extra, sizeof extra, "done %lld/%lld  best %.4f  last %.4f", (long long)done_count(&d),
                     (long long)cfg->children, s.best_reward, res.reward);
            nd_progress_update(cfg->progress, s.children_this_call, extra);
        }
    }
    if (ctx) {
        double t0 = nd_time_now();
        /* Reports cover every logged child, also when stopping mid-batch. */
        if (need_report && srch_report_write(cfg->run_dir, cfg->top_k))
            ND_WARN("reports not written: %s", nd_last_error());
        s.report_seconds += nd_time_now() - t0;
        s.children_done = done_count(&d);
        s.wall_seconds = nd_time_now() - t_start;
        s.overhead_seconds = s.wall_seconds - s.child_seconds;
        write_timing(&d, &s);
        if (cfg->progress) {
            char extra[128];
            snprintf(extra, sizeof extra, "done %lld/%lld  best %.4f", (long long)s.children_done,
                     (long long)cfg->children, s.best_reward);
            nd_progress_finish(cfg->progress, s.children_this_call, extra);
        }
    }
    nn_ctx_free(ctx);
    drv_close(&d);
    if (stats) *stats = s;
    return rc;
}
