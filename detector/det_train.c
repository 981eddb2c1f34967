/* The detector's training loop on COCO data: batches from coco's loader (background threads,
 * resize, flip, padding), SGD with momentum, linear warm-up then cosine decay per step,
 * gradient clipping, a JSON-lines log of every loss term, a loss plot, per-epoch checkpoints
 * and COCO mAP on the val set.
 *
 * Adam is offered besides SGD because small detectors trained from scratch on a CPU budget
 * get far in few steps with it.
 *
 * Exact resume: every random draw depends only on (seed, epoch) for the loader's order and
 * flips, and on (seed, step) for sampling; the checkpoint holds the weights, BN statistics,
 * optimizer moments, the epoch and the batch index within it. Resuming rebuilds the epoch's
 * loader and skips the batches already done, so the run continues with the same batches
 * and the same draws as an uninterrupted one. */
#include "detector/model_internal.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coco/coco.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/plot.h"
#include "common/progress.h"
#include "common/status.h"

void det_train_opts_default(det_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 12, o->batch = 2;
    o->lr = 0.02, o->momentum = 0.9, o->weight_decay = 1e-4, o->clip_norm = 10.0;
    o->warmup_steps = 200;
    o->seed = 1;
    o->threads = 0, o->loader_threads = 1;
    o->flip = 1;
    o->log_every = 10;
}

/* A loss history for the plot: one point per log line. */
typedef struct history {
    int64_t n, cap;
    double *step, *v[5]; /* total, rpn_cls, rpn_box, roi_cls, roi_box */
} history;

static void hist_push(history *h, double step, const double v[5]) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 256;
        h->step = realloc(h->step, (size_t)h->cap * sizeof(double));
        for (int k = 0; k < 5; k++) h->v[k] = realloc(h->v[k], (size_t)h->cap * sizeof(double));
        ND_ASSERT(h->step && h->v[4], "out of memory for the loss history");
    }
    h->step[h->n] = step;
    for (int k = 0; k < 5; k++) h->v[k][h->n] = v[k];
    h->n++;
}

static void hist_free(history *h) {
    free(h->step);
    for (int k = 0; k < 5; k++) free(h->v[k]);
}

static const char *const term_names[5] = {"loss", "rpn_cls", "rpn_box", "roi_cls", "roi_box"};

/* Rebuild the history from RUN/log.jsonl (resume), keeping lines up to `step`. */
static void hist_reload(history *h, const char *log_path, int64_t upto) {
    char *text = NULL;
    size_t len = 0;
    if (nd_file_read_all(log_path, &text, &len)) {
        nd_error_clear();
        return;
    }
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *s = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
        const cJSON *l = o ? cJSON_GetObjectItemCaseSensitive(o, "loss") : NULL;
        if (cJSON_IsNumber(s) && cJSON_IsNumber(l) && s->valuedouble <= (double)upto) {
            double v[5];
            for (int k = 0; k < 5; k++) {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, term_names[k]);
                v[k] = cJSON_IsNumber(t) ? t->valuedouble : NAN;
            }
            hist_push(h, s->valuedouble, v);
        }
        cJSON_Delete(o);
    }
    free(text);
}

static int write_plot(const history *h, const char *path) {
    if (h->n == 0) return ND_OK;
    nd_plot_series s[5];
    for (int k = 0; k < 5; k++) {
        s[k].label = term_names[k];
        s[k].x = h->step, s[k].y = h->v[k], s[k].n = h->n;
        s[k].style = ND_PLOT_LINE;
    }
    nd_plot p = {"detector training loss", "step", "loss", 0, 0, 1};
    return nd_plot_write(path, &p, s, 5);
}

static uint64_t epoch_seed(uint64_t seed, int64_t epoch) {
    return seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch * 0xBF58476D1CE4E5B9ull + 1;
}

static double lr_at(const det_train_opts *o, int64_t step, int64_t total) {
    double lr = nn_lr_cosine(o->lr, step, total, o->lr * 0.01);
    return nn_lr_warmup(lr, step, o->warmup_steps, 0.1);
}

typedef struct run {
    const det_train_opts *o;
    det_model *m;
    char *ckpt, *model, *log, *plot, *eval_json;
    int64_t step, epoch, batch_in_epoch, total_steps, per_epoch;
    double best_ap;
} run;

static int save_state(run *r, int with_optim) {
    if (r->o->no_writes) return ND_OK; /* data-parallel: rank 0 writes */
    nn_meta meta;
    nn_meta_init(&meta);
    nn_meta_set_int(&meta, "train.epoch", r->epoch);
    nn_meta_set_int(&meta, "train.batch_in_epoch", r->batch_in_epoch);
    nn_meta_set_int(&meta, "train.step", r->step);
    nn_meta_set_int(&meta, "train.seed", (int64_t)r->o->seed);
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", r->best_ap);
    nn_meta_set(&meta, "train.best_ap", buf);
    int rc = with_optim ? det_model_save(r->m, r->ckpt, &meta, NN_CKPT_OPTIM) : ND_OK;
    if (rc == 0) rc = det_model_save(r->m, r->model, &meta, 0);
    nn_meta_free(&meta);
    return rc;
}

static int log_json(const char *path, cJSON *o) {
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!line) return nd_fail(ND_ERR_NOMEM, "out of memory");
    int rc = nd_file_append_line(path, line);
    free(line);
    return rc;
}

static int evaluate_epoch(run *r) {
    const det_train_opts *o = r->o;
    double stats[12];
    double t0 = nd_time_now();
    int rc = det_evaluate_coco(r->m, o->val_ann, o->val_dir, o->val_max_images, o->batch, o->loader_threads,
                               NULL, stats);
    if (rc) return rc;
    static const char *const names[12] = {"AP", "AP50", "AP75", "APs", "APm", "APl",
                                          "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "epoch", (double)r->epoch); /* epochs done */
    cJSON_AddNumberToObject(j, "step", (double)r->step);
    for (int k = 0; k < 12; k++) cJSON_AddNumberToObject(j, names[k], stats[k]);
    cJSON_AddNumberToObject(j, "eval_sec", nd_time_now() - t0);
    char *text = cJSON_PrintUnformatted(j);
    if (text) {
        nd_file_write_atomic(r->eval_json, text, strlen(text));
        free(text);
    }
    if ((rc = log_json(r->log, j))) return rc;
    if (stats[0] > r->best_ap) r->best_ap = stats[0];
    if (o->progress)
        fprintf(o->progress, "epoch %lld: val AP %.4f AP50 %.4f AP75 %.4f (%.0f s)\n", (long long)r->epoch,
                stats[0], stats[1], stats[2], nd_time_now() - t0);
    return ND_OK;
}

/* Data-parallel: this replica's rows of the global batch b, box indices rebased into `first`
 * (b->n + 1 entries). */
static det_batch det_batch_shard(const det_batch *b, int32_t rank, int32_t count, int64_t *first) {
    int32_t lo = (int32_t)((int64_t)b->n * rank / count), hi = (int32_t)((int64_t)b->n * (rank + 1) / count);
    det_batch s = *b;
    int64_t base = b->box_first[lo];
    s.n = hi - lo;
    s.images += (size_t)lo * 3 * (size_t)b->height * (size_t)b->width;
    s.valid_h += lo, s.valid_w += lo;
    for (int32_t i = 0; i <= s.n; i++) first[i] = b->box_first[lo + i] - base;
    s.box_first = first;
    s.boxes += 4 * base, s.box_class += base;
    if (s.box_crowd) s.box_crowd += base;
    return s;
}

int det_train_run(det_model *m, const det_train_opts *o) {
    if (o->epochs < 1 || o->batch < 1 || !(o->lr > 0) || o->log_every < 1 || !o->out_dir || !o->train_ann ||
        !o->train_dir)
        return nd_fail(ND_ERR_INVALID, "train-det: need --train, --out, epochs >= 1, batch >= 1, lr > 0");
    if (o->shard_count > 1 && o->time_limit_s > 0)
        return nd_fail(ND_ERR_INVALID, "train-det: data-parallel training stops with --max-steps, not --time-limit");
    if (o->threads > 0) nn_set_threads(o->threads);
    run r = {0};
    r.o = o, r.m = m, r.best_ap = -1;
    coco_dataset ds = {0};
    coco_loader *ld = NULL;
    nn_ctx *ctx = NULL;
    history h = {0};
    int rc = nd_mkdirs(o->out_dir);
    if (rc == 0) rc = coco_dataset_read(o->train_ann, &ds);
    if (rc == 0) rc = det_check_dataset_classes(&m->cfg, &ds, o->train_ann);
    r.ckpt = nd_path_join(o->out_dir, "checkpoint.safetensors");
    r.model = nd_path_join(o->out_dir, "model.safetensors");
    r.log = nd_path_join(o->out_dir, "log.jsonl");
    r.plot = nd_path_join(o->out_dir, "loss.png");
    r.eval_json = nd_path_join(o->out_dir, "eval.json");
    if (rc == 0 && !(r.ckpt && r.model && r.log && r.plot && r.eval_json)) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    r.per_epoch = (ds.num_images + o->batch - 1) / o->batch;
    if (rc == 0 && r.per_epoch < 1) rc = nd_fail(ND_ERR_INVALID, "%s: no images to train on", o->train_ann);
    r.total_steps = r.per_epoch * o->epochs;
    if (rc == 0 && o->resume && nd_path_exists(r.ckpt)) {
        nn_meta meta;
        if ((rc = det_model_load_weights(m, r.ckpt, &meta)) == 0) {
            int64_t seed = 0;
            rc = nn_meta_get_int(&meta, "train.epoch", &r.epoch);
            if (rc == 0) rc = nn_meta_get_int(&meta, "train.batch_in_epoch", &r.batch_in_epoch);
            if (rc == 0) rc = nn_meta_get_int(&meta, "train.step", &r.step);
            if (rc == 0) rc = nn_meta_get_int(&meta, "train.seed", &seed);
            const char *b = nn_meta_get(&meta, "train.best_ap");
            if (b) r.best_ap = atof(b);
            if (rc == 0 && (uint64_t)seed != o->seed)
                rc = nd_fail(ND_ERR_INVALID, "%s: written with --seed %lld, resumed with %llu", r.ckpt,
                             (long long)seed, (unsigned long long)o->seed);
            if (rc) rc = nd_fail_context(rc, "%s: ", r.ckpt);
            nn_meta_free(&meta);
        }
        if (rc == 0) {
            if (!o->no_writes) hist_reload(&h, r.log, r.step);
            if (o->progress)
                fprintf(o->progress, "resuming %s at epoch %lld, batch %lld (step %lld)\n", r.ckpt,
                        (long long)r.epoch + 1, (long long)r.batch_in_epoch, (long long)r.step);
        }
    } else if (rc == 0 && !o->no_writes) {
        /* a fresh run: the log starts empty */
        rc = nd_file_write_atomic(r.log, "", 0);
    }
    nn_optim_config opt = o->adam ? nn_optim_adam(0.9, 0.999, 1e-8, o->weight_decay)
                                  : nn_optim_sgd(o->momentum, 0, o->weight_decay);
    ctx = nn_ctx_new_like(det_model_params(m)); /* on the model's device */
    nd_progress pr;
    nd_progress_init(&pr, o->progress, "train-det", "step", r.total_steps);
    double acc[5] = {0}, t_start = nd_time_now(), t_log = t_start;
    int64_t acc_n = 0, acc_pos[2] = {0, 0}, steps_this_call = 0;
    int stopped = 0;
    while (rc == 0 && r.epoch < o->epochs && !stopped) {
        coco_det_opts lo;
        coco_det_opts_default(&lo);
        lo.batch_size = o->batch, lo.threads = o->loader_threads, lo.seed = epoch_seed(o->seed, r.epoch);
        lo.shuffle = 1, lo.epochs = 1, lo.flip = o->flip;
        lo.min_side = m->cfg.min_size, lo.max_side = m->cfg.max_size, lo.size_divisor = m->cfg.size_divisor;
        lo.n_scale_sides = o->n_train_sizes;
        memcpy(lo.scale_sides, o->train_sizes, sizeof(int32_t) * (size_t)o->n_train_sizes);
        if ((rc = coco_loader_det_new(&ds, o->train_dir, &lo, &ld))) break;
        for (int64_t bi = 0;; bi++) {
            const coco_batch *cb = NULL;
            int lr_ = coco_loader_next(ld, &cb);
            if (lr_) {
                ND_WARN("train-det: %s (batch skipped)", nd_last_error());
                if (bi >= r.batch_in_epoch) r.batch_in_epoch = bi + 1;
                continue;
            }
            if (!cb) break;
            if (bi < r.batch_in_epoch) continue; /* done before the resume */
            if ((o->max_steps > 0 && steps_this_call >= o->max_steps) ||
                (o->time_limit_s > 0 && nd_time_now() - t_start >= o->time_limit_s)) {
                stopped = 1;
                break;
            }
            det_batch b = {cb->n, cb->height, cb->width, cb->images, cb->valid_h, cb->valid_w,
                           cb->box_first, cb->boxes, cb->box_class, cb->box_crowd};
            nn_ctx_reset(ctx);
            nn_ctx_seed(ctx, epoch_seed(o->seed, r.step));
            nn_params_zero_grad(m->ps);
            nd_rng rng;
            nd_rng_seed_stream(&rng, o->seed, (uint64_t)r.step);
            det_losses l;
            memset(&l, 0, sizeof l);
            int64_t *shard_first = NULL; /* data-parallel: this replica's rows */
            if (o->shard_count > 1 && !(shard_first = malloc(sizeof(int64_t) * ((size_t)b.n + 1)))) {
                rc = nd_fail(ND_ERR_NOMEM, "out of memory");
                break;
            }
            if (shard_first) b = det_batch_shard(&b, o->shard_rank, o->shard_count, shard_first);
            if (b.n > 0) rc = det_model_train_step(m, ctx, &b, &rng, &l);
            free(shard_first);
            if (rc == 0 && o->grad_sync) rc = o->grad_sync(m->ps, o->grad_sync_user);
            if (rc) {
                rc = nd_fail_context(rc, "train-det: step %lld (epoch %lld batch %lld): ", (long long)r.step,
                                     (long long)r.epoch + 1, (long long)bi);
                break;
            }
            if (o->clip_norm > 0) nn_params_clip_grad_norm(m->ps, o->clip_norm);
            double lr = lr_at(o, r.step, r.total_steps);
            nn_optim_step(m->ps, &opt, lr);
            r.step++, steps_this_call++;
            r.batch_in_epoch = bi + 1;
            double v[5] = {l.total, l.rpn_cls, l.rpn_box, l.roi_cls, l.roi_box};
            for (int k = 0; k < 5; k++) acc[k] += v[k];
            acc_pos[0] += l.rpn_pos, acc_pos[1] += l.roi_pos;
            acc_n++;
            if (acc_n == o->log_every) {
                cJSON *j = cJSON_CreateObject();
                cJSON_AddNumberToObject(j, "step", (double)r.step);
                cJSON_AddNumberToObject(j, "epoch", (double)r.epoch + (double)(bi + 1) / (double)r.per_epoch);
                cJSON_AddNumberToObject(j, "lr", lr);
                for (int k = 0; k < 5; k++) cJSON_AddNumberToObject(j, term_names[k], (acc[k] /= (double)acc_n));
                cJSON_AddNumberToObject(j, "rpn_pos", (double)acc_pos[0] / (double)acc_n);
                cJSON_AddNumberToObject(j, "roi_pos", (double)acc_pos[1] / (double)acc_n);
                double now = nd_time_now();
                cJSON_AddNumberToObject(j, "sec_per_step", (now - t_log) / (double)acc_n);
                t_log = now;
                if (o->no_writes) {
                    cJSON_Delete(j);
                } else {
                    hist_push(&h, (double)r.step, acc);
                    if ((rc = log_json(r.log, j))) break;
                }
                char extra[96];
                snprintf(extra, sizeof extra, "epoch %lld loss %.4f", (long long)r.epoch + 1, acc[0]);
                nd_progress_update(&pr, r.step, extra);
                memset(acc, 0, sizeof acc);
                acc_pos[0] = acc_pos[1] = 0;
                acc_n = 0;
            }
            if (o->checkpoint_every > 0 && r.step % o->checkpoint_every == 0) {
                if ((rc = save_state(&r, 1))) break;
                write_plot(&h, r.plot);
            }
        }
        coco_loader_free(ld);
        ld = NULL;
        if (rc || stopped) break;
        /* end of the epoch: the saved state starts the next epoch at batch 0 */
        r.epoch++, r.batch_in_epoch = 0;
        rc = save_state(&r, 1);
        if (rc == 0 && o->val_ann && o->val_dir && !o->no_writes) {
            rc = evaluate_epoch(&r);
            if (rc == 0) rc = save_state(&r, 1); /* with the best AP so far */
        }
        if (rc == 0) write_plot(&h, r.plot);
    }
    if (rc == 0 && stopped) {
        rc = save_state(&r, 1);
        write_plot(&h, r.plot);
        if (rc == 0) rc = nd_fail(ND_ERR_INTERRUPTED, "stopped at step %lld (epoch %lld, batch %lld); --resume continues",
                                  (long long)r.step, (long long)r.epoch + 1, (long long)r.batch_in_epoch);
    } else if (rc == 0) {
        nd_progress_finish(&pr, r.step, NULL);
        write_plot(&h, r.plot);
    }
    coco_loader_free(ld);
    coco_dataset_free(&ds);
    nn_ctx_free(ctx);
    hist_free(&h);
    free(r.ckpt), free(r.model), free(r.log), free(r.plot), free(r.eval_json);
    return rc;
}
