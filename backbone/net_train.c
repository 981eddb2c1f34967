/* The classification training loop: SGD/RMSProp with a cosine schedule, weight decay, gradient
 * clipping, aux head loss, label smoothing, ScheduledDropPath, cutout, EMA; per-epoch
 * checkpoints and exact resume.
 *
 * Exact resume rests on two facts: every random draw of a step comes from a generator seeded
 * by (seed, step) (drop-path and dropout masks), and every epoch's batches come from a loader
 * seeded by (seed, epoch) (order and augmentation). So a run restarted from the checkpoint of
 * epoch e draws exactly what the uninterrupted run drew from epoch e on; weights, BN
 * statistics, optimizer moments and EMA shadows are all in the checkpoint. */
#include "backbone/net_internal.h"

#include "common/fileio.h"
#include "common/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t nas_mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t x = seed ^ (a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void nas_train_opts_default(nas_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    o->batch_size = 32;
    o->optimizer = NN_OPTIM_SGD;
    o->lr = 0.025;
    o->momentum = 0.9;
    o->rmsprop_decay = 0.9;
    o->rmsprop_eps = 1.0;
    o->weight_decay = -1.0;
    o->clip_norm = 5.0;
    o->aux_weight = 0.4;
    o->drop_path_keep = -1.0;
    o->loader_threads = 1;
    o->eval_batch = 100;
    o->seed = 1;
}

static int64_t data_count(const nas_data *d) {
    int64_t n = d->count > 0 ? d->count : d->src->count - d->first;
    return n;
}

static int check_data(const nas_data *d, const char *what, int32_t classes, int32_t size) {
    if (!d || !d->src) return nd_fail(ND_ERR_INVALID, "%s data: missing", what);
    if (d->src->pixels && (d->src->height != size || d->src->width != size))
        return nd_fail(ND_ERR_INVALID, "%s data: %dx%d images, the network's input is %dx%d", what, d->src->height,
                       d->src->width, size, size);
    if (d->first < 0 || d->count < 0 || d->first + data_count(d) > d->src->count || data_count(d) < 1)
        return nd_fail(ND_ERR_INVALID, "%s data: samples [%lld, +%lld) outside the %lld samples", what,
                       (long long)d->first, (long long)d->count, (long long)d->src->count);
    for (int64_t i = d->first; i < d->first + data_count(d); i++) {
        int64_t y = d->src->labels32 ? d->src->labels32[i] : d->src->labels8 ? d->src->labels8[i] : -1;
        if (y < 0 || y >= classes)
            return nd_fail(ND_ERR_INVALID, "%s data: sample %lld has label %lld, the network has %d classes", what,
                           (long long)i, (long long)y, classes);
    }
    return ND_OK;
}

static void loader_opts(coco_cls_opts *o, const nas_data *d, int32_t batch, int32_t threads, uint64_t seed,
                        int32_t size) {
    coco_cls_opts_default(o);
    /* Image files are resized to the network's input; in-memory images must already have it. */
    if (!d->src->pixels) o->out_height = o->out_width = size;
    o->batch_size = batch;
    o->threads = threads;
    o->seed = seed;
    o->epochs = 1;
    o->first = d->first;
    o->count = d->count;
}

static int64_t argmax_hits_host(const float *ld, int64_t n, int64_t k, const int32_t *labels) {
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *r = ld + i * k;
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (r[j] > r[best]) best = j;
        hits += best == labels[i];
    }
    return hits;
}

static int64_t argmax_hits(nn_ctx *ctx, const nn_tensor *logits, const int32_t *labels) {
    /* the logits may be on a GPU */
    return argmax_hits_host(nn_tensor_host(ctx, logits), logits->shape[0], logits->shape[1], labels);
}

/* Images per forward pass of an evaluation: a no-grad forward still keeps every tensor it makes
 * until the ctx's reset, so a whole evaluation batch of 100 took 2 GB (NASNet-A 2@F16) next to
 * the training step's 0.9 GB; 32 images, a training batch, need less than a training step. */
#define NAS_EVAL_SLICE 32

/* Evaluate in `ctx` (left reset, with its grad and training modes as they were): the loader
 * gives batches of `batch` images; each goes through the network `slice` images at a time, and
 * the batch's loss is computed on the gathered logits. Every op of the evaluation-mode forward
 * treats images independently (batch norm uses its running statistics), so the logits, and with
 * them the loss and the hits, are those of one forward of the whole batch: bit for bit when the
 * slice is a multiple of the image groups the convolutions hand to one GEMM (16 or 32 images
 * for NASNet-A on CIFAR: a 20-step 2@F16 run evaluates as before to the last digit), else up
 * to rounding. */
static int evaluate_in(nas_net *net, nn_ctx *ctx, const nas_data *data, int32_t batch, int32_t slice, int use_ema,
                       nas_eval_result *res) {
    memset(res, 0, sizeof *res);
    int rc = check_data(data, "evaluation", net->cfg.num_classes, net->cfg.image_size);
    if (rc) return rc;
    if (batch < 1) batch = 100;
    if (slice < 1 || slice > batch) slice = batch;
    coco_cls_opts o;
    loader_opts(&o, data, batch, 1, 0, net->cfg.image_size);
    o.shuffle = 0;
    coco_loader *l = NULL;
    rc = coco_loader_cls_new(data->src, &o, &l);
    if (rc) return rc;
    int64_t k = net->cfg.num_classes;
    float *logits = malloc((size_t)batch * (size_t)k * sizeof *logits);
    if (!logits) {
        coco_loader_free(l);
        return nd_fail(ND_ERR_NOMEM, "out of memory for %d x %lld logits", batch, (long long)k);
    }
    int swapped = use_ema && nn_params_has_ema(net->ps);
    if (swapped) nn_params_ema_swap(net->ps);
    int old_grad = nn_ctx_set_grad(ctx, 0), old_training = nn_ctx_set_training(ctx, 0);
    double loss_sum = 0;
    for (;;) {
        const coco_batch *b;
        rc = coco_loader_next(l, &b);
        if (rc || !b) break;
        size_t image = (size_t)b->channels * (size_t)b->height * (size_t)b->width;
        for (int32_t i0 = 0; i0 < b->n && !rc; i0 += slice) {
            int32_t m = b->n - i0 < slice ? b->n - i0 : slice;
            nn_ctx_reset(ctx);
            nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(m, b->channels, b->height, b->width), b->images + i0 * image);
            nas_net_output out;
            rc = nas_net_forward(net, ctx, x, 0, &out);
            if (!rc && (out.logits->shape[0] != m || out.logits->shape[1] != k))
                rc = nd_fail(ND_ERR_INVALID, "evaluation: the network gave logits of %lld x %lld for %d images of %lld "
                             "classes", (long long)out.logits->shape[0], (long long)out.logits->shape[1], m, (long long)k);
            if (!rc) memcpy(logits + (size_t)i0 * (size_t)k, nn_tensor_host(ctx, out.logits), (size_t)m * (size_t)k * sizeof *logits);
        }
        if (rc) break;
        nn_ctx_reset(ctx);
        nn_tensor *lt = nn_tensor_from(ctx, 2, NN_SHAPE(b->n, k), logits);
        nn_tensor *loss = nn_softmax_cross_entropy(ctx, lt, b->labels, 0.0f);
        loss_sum += (double)nn_item(ctx, loss) * b->n;
        res->correct += argmax_hits_host(logits, b->n, k, b->labels);
        res->count += b->n;
    }
    nn_ctx_reset(ctx);
    nn_ctx_set_grad(ctx, old_grad);
    nn_ctx_set_training(ctx, old_training);
    if (swapped) nn_params_ema_swap(net->ps);
    free(logits);
    coco_loader_free(l);
    if (rc) return rc;
    res->accuracy = res->count ? (double)res->correct / (double)res->count : 0.0;
    res->loss = res->count ? loss_sum / (double)res->count : 0.0;
    return ND_OK;
}

int nas_evaluate(nas_net *net, const nas_data *data, int32_t batch, int use_ema, nas_eval_result *res) {
    nn_ctx *ctx = nn_ctx_new_like(net->ps); /* on the parameters' device */
    int rc = evaluate_in(net, ctx, data, batch, NAS_EVAL_SLICE, use_ema, res);
    nn_ctx_free(ctx);
    return rc;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

static int save_ckpt(nas_net *net, const char *path, int64_t epoch, int64_t step, uint64_t seed) {
    nn_meta m;
    nn_meta_init(&m);
    char *cj = NULL;
    int rc = nas_net_config_to_json(&net->cfg, &cj);
    if (!rc) {
        nn_meta_set(&m, "nas.config", cj);
        nn_meta_set_int(&m, "nas.epoch", epoch);
        nn_meta_set_int(&m, "nas.step", step);
        char s[32];
        snprintf(s, sizeof s, "%llu", (unsigned long long)seed);
        nn_meta_set(&m, "nas.seed", s);
        rc = nn_checkpoint_save(path, net->ps, &m, NN_CKPT_OPTIM);
    }
    free(cj);
    nn_meta_free(&m);
    return rc;
}

/* Only the config, from a checkpoint's metadata. */
static int read_ckpt_meta(const char *path, nn_meta *m) {
    nn_params *empty = nn_params_new();
    int rc = nn_checkpoint_load(path, empty, m, NN_CKPT_ALLOW_EXTRA);
    nn_params_free(empty);
    return rc;
}

static int load_ckpt(nas_net *net, const char *path, uint64_t seed, int64_t *epoch, int64_t *step) {
    nn_meta m;
    int rc = read_ckpt_meta(path, &m);
    if (rc) return rc;
    const char *cj = nn_meta_get(&m, "nas.config");
    char *ours = NULL;
    if (!cj) rc = nd_fail(ND_ERR_FORMAT, "%s: not a nasdet training checkpoint (no nas.config)", path);
    if (!rc) rc = nas_net_config_to_json(&net->cfg, &ours);
    if (!rc && strcmp(cj, ours))
        rc = nd_fail(ND_ERR_INVALID, "%s: the checkpoint is of another network or run (config %s, this run %s)", path,
                     cj, ours);
    const char *s = nn_meta_get(&m, "nas.seed");
    char want[32];
    snprintf(want, sizeof want, "%llu", (unsigned long long)seed);
    if (!rc && (!s || strcmp(s, want)))
        rc = nd_fail(ND_ERR_INVALID, "%s: the checkpoint was made with seed %s, this run uses %s", path, s ? s : "?",
                     want);
    if (!rc) rc = nn_meta_get_int(&m, "nas.epoch", epoch);
    if (!rc) rc = nn_meta_get_int(&m, "nas.step", step);
    free(ours);
    nn_meta_free(&m);
    if (rc) return rc;
    return nn_checkpoint_load(path, net->ps, NULL, 0);
}

int nas_net_save(const nas_net *net, const char *path) {
    nn_meta m;
    nn_meta_init(&m);
    char *cj = NULL;
    int rc = nas_net_config_to_json(&net->cfg, &cj);
    if (!rc) {
        nn_meta_set(&m, "nas.config", cj);
        rc = nn_checkpoint_save(path, net->ps, &m, 0);
    }
    free(cj);
    nn_meta_free(&m);
    return rc;
}

int nas_net_load(const char *path, nas_net **out) {
    *out = NULL;
    nn_meta m;
    int rc = read_ckpt_meta(path, &m);
    if (rc) return rc;
    const char *cj = nn_meta_get(&m, "nas.config");
    nas_net_config cfg;
    if (!cj) rc = nd_fail(ND_ERR_FORMAT, "%s: no nas.config in the metadata (not a nasdet NASNet model)", path);
    if (!rc) rc = nas_net_config_from_json(cj, &cfg);
    if (rc) nd_fail_context(rc, "%s: ", path);
    nn_meta_free(&m);
    if (rc) return rc;
    nas_net *net;
    rc = nas_net_new(&cfg, NULL, NULL, 0, &net);
    if (rc) return rc;
    rc = nn_checkpoint_load(path, net->ps, NULL, 0);
    if (rc) {
        nas_net_free(net);
        return rc;
    }
    *out = net;
    return ND_OK;
}

/* ---- training ---------------------------------------------------------------------------- */

static int check_opts(const nas_train_opts *o) {
    if (o->steps <= 0 && o->epochs < 1) return nd_fail(ND_ERR_INVALID, "training: epochs must be >= 1");
    if (o->batch_size < 2) return nd_fail(ND_ERR_INVALID, "training: batch size must be >= 2 (batch norm)");
    if (o->optimizer != NN_OPTIM_SGD && o->optimizer != NN_OPTIM_RMSPROP && o->optimizer != NN_OPTIM_ADAM)
        return nd_fail(ND_ERR_INVALID, "training: optimizer must be SGD, RMSProp or Adam");
    if (!(o->lr > 0 && isfinite(o->lr)) || !(o->lr_min >= 0)) return nd_fail(ND_ERR_INVALID, "training: lr must be > 0");
    if (!(o->momentum >= 0 && o->momentum < 1)) return nd_fail(ND_ERR_INVALID, "training: momentum must be in [0, 1)");
    if (!(o->clip_norm >= 0)) return nd_fail(ND_ERR_INVALID, "training: clip must be >= 0");
    if (!(o->aux_weight >= 0)) return nd_fail(ND_ERR_INVALID, "training: aux weight must be >= 0");
    if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
        return nd_fail(ND_ERR_INVALID, "training: label smoothing must be in [0, 1)");
    if (o->drop_path_keep >= 0 && !(o->drop_path_keep > 0 && o->drop_path_keep <= 1))
        return nd_fail(ND_ERR_INVALID, "training: drop-path keep must be in (0, 1]");
    if (!(o->ema_decay >= 0 && o->ema_decay < 1)) return nd_fail(ND_ERR_INVALID, "training: EMA decay must be in [0, 1)");
    if (o->cutout < 0 || o->pad < 0) return nd_fail(ND_ERR_INVALID, "training: cutout and pad must be >= 0");
    if (o->resume && !o->checkpoint) return nd_fail(ND_ERR_INVALID, "training: resume needs a checkpoint path");
    if (o->shard_count > 1 && (o->shard_rank < 0 || o->shard_rank >= o->shard_count || o->batch_size % o->shard_count))
        return nd_fail(ND_ERR_INVALID, "training: batch %d must split evenly over %d replicas (replica %d)",
                       o->batch_size, o->shard_count, o->shard_rank);
    return ND_OK;
}

typedef struct epoch_acc {
    double loss_sum;
    int64_t hits, seen;
} epoch_acc;

/* One optimizer step on a batch. */
static int train_step(nas_net *net, nn_ctx *ctx, const coco_batch *b, const nas_train_opts *o,
                      const nn_optim_config *oc, int64_t step, int64_t total, uint64_t seed, double *lr_out,
                      epoch_acc *acc) {
    coco_batch shard = *b; /* data-parallel: this replica's rows of the global batch */
    if (o->shard_count > 1) {
        int32_t per = b->n / o->shard_count;
        shard.n = per;
        shard.images += (size_t)o->shard_rank * per * b->channels * b->height * b->width;
        shard.labels += (size_t)o->shard_rank * per;
        b = &shard;
    }
    nn_ctx_reset(ctx);
    nn_params_zero_grad(net->ps);
    nn_ctx_seed(ctx, nas_mix_seed(seed, (uint64_t)step, 1));
    nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(b->n, b->channels, b->height, b->width), b->images);
    nas_net_output out;
    int rc = nas_net_forward(net, ctx, x, step, &out);
    if (rc) return rc;
    float ls = (float)o->label_smoothing;
    nn_tensor *loss = nn_softmax_cross_entropy(ctx, out.logits, b->labels, ls);
    if (out.aux_logits && o->aux_weight > 0) {
        nn_tensor *al = nn_softmax_cross_entropy(ctx, out.aux_logits, b->labels, ls);
        loss = nn_add(ctx, loss, nn_scale(ctx, al, (float)o->aux_weight, 0.0f));
    }
    double lv = nn_item(ctx, loss);
    if (!isfinite(lv)) return nd_fail(ND_ERR_NUMERIC, "training diverged at step %lld: the loss is %g", (long long)step, lv);
    int64_t hits = argmax_hits(ctx, out.logits, b->labels); /* backward recycles the logits' memory */
    nn_backward(ctx, loss);
    if (o->grad_sync && (rc = o->grad_sync(net->ps, o->grad_sync_user))) return rc; /* data-parallel */
    double gn = nn_params_clip_grad_norm(net->ps, o->clip_norm);
    if (!isfinite(gn))
        return nd_fail(ND_ERR_NUMERIC, "training diverged at step %lld: the gradient norm is %g", (long long)step, gn);
    double lr = nn_lr_cosine(o->lr, step, total, o->lr_min);
    nn_optim_step(net->ps, oc, lr);
    if (o->ema_decay > 0) nn_params_ema_update(net->ps, o->ema_decay);
    *lr_out = lr;
    acc->loss_sum += lv * b->n;
    acc->hits += hits;
    acc->seen += b->n;
    return ND_OK;
}

int nas_train(nas_net *net, const nas_data *train, const nas_data *eval, const nas_train_opts *o,
              nas_train_result *res) {
    memset(res, 0, sizeof *res);
    int rc = check_opts(o);
    if (!rc) rc = check_data(train, "training", net->cfg.num_classes, net->cfg.image_size);
    if (!rc && eval) rc = check_data(eval, "evaluation", net->cfg.num_classes, net->cfg.image_size);
    if (rc) return rc;
    int64_t n = data_count(train);
    int64_t per_epoch = n / o->batch_size; /* drop_last: batch norm never sees a tiny batch */
    if (per_epoch < 1)
        return nd_fail(ND_ERR_INVALID, "training: %lld samples make no full batch of %d", (long long)n, o->batch_size);
    int64_t total = o->steps > 0 ? o->steps : o->epochs * per_epoch;
    int64_t epochs = (total + per_epoch - 1) / per_epoch;
    /* The run's schedule becomes part of the network's config (and its checkpoint). */
    net->cfg.total_training_steps = o->drop_path_total_steps > 0 ? o->drop_path_total_steps : total;
    if (o->drop_path_keep >= 0) net->cfg.drop_path_keep_prob = o->drop_path_keep;
    /* Adam's default is no weight decay: an L2 term inside Adam is rescaled by the adaptive step
     * and fights it; the config's decay is SGD's and RMSProp's. */
    double wd = o->weight_decay >= 0 ? o->weight_decay : o->optimizer == NN_OPTIM_ADAM ? 0.0 : net->cfg.weight_decay;
    nn_optim_config oc = o->optimizer == NN_OPTIM_RMSPROP ? nn_optim_rmsprop(o->rmsprop_decay, o->momentum, o->rmsprop_eps, wd)
                         : o->optimizer == NN_OPTIM_ADAM  ? nn_optim_adam(0.9, 0.999, 1e-8, wd)
                                                          : nn_optim_sgd(o->momentum, o->nesterov, wd);
    int64_t epoch0 = 0, step = 0;
    if (o->resume && nd_path_exists(o->checkpoint)) {
        rc = load_ckpt(net, o->checkpoint, o->seed, &epoch0, &step);
        if (rc) return rc;
        if (epoch0 > epochs || step > total)
            return nd_fail(ND_ERR_INVALID, "%s: the checkpoint is past this run's end (epoch %lld of %lld)",
                           o->checkpoint, (long long)epoch0, (long long)epochs);
    }
    res->epochs_done = epoch0;
    res->steps = step;
    nn_ctx *ctx = nn_ctx_new_like(net->ps); /* on the parameters' device */
    /* Backward reuses the memory of activations it is done with for gradients (a fifth of the
     * step's memory); train_step reads the loss and the logits before it. */
    nn_ctx_set_recycle_activations(ctx, 1);
    /* Evaluation runs in the training step's ctx, a training batch at a time: it fits in the
     * memory the step already holds instead of adding an arena of its own. */
    int32_t eval_slice = o->batch_size / (o->shard_count > 1 ? o->shard_count : 1);
    double t_start = nd_time_now();
    int64_t images = 0;
    for (int64_t e = epoch0; e < epochs && step < total && !rc; e++) {
        coco_cls_opts lo;
        loader_opts(&lo, train, o->batch_size, o->loader_threads, nas_mix_seed(o->seed, (uint64_t)e, 2),
                    net->cfg.image_size);
        lo.drop_last = 1;
        lo.pad = o->pad;
        lo.flip = o->flip;
        lo.cutout = o->cutout;
        coco_loader *l = NULL;
        rc = coco_loader_cls_new(train->src, &lo, &l);
        if (rc) break;
        double t0 = nd_time_now(), lr = 0;
        epoch_acc acc = {0};
        while (step < total) {
            const coco_batch *b;
            rc = coco_loader_next(l, &b);
            if (rc || !b) break;
            rc = train_step(net, ctx, b, o, &oc, step, total, o->seed, &lr, &acc);
            if (rc) break;
            step++;
            images += b->n;
            if (o->progress) {
                char extra[96];
                snprintf(extra, sizeof extra, "epoch %lld/%lld loss %.4f acc %.4f", (long long)e + 1, (long long)epochs,
                         acc.loss_sum / (double)acc.seen, (double)acc.hits / (double)acc.seen);
                nd_progress_update(o->progress, step * o->batch_size, extra);
            }
            if (o->stop && *o->stop) break;
        }
        coco_loader_free(l);
        if (rc) break;
        if (o->stop && *o->stop && step < total && (step % per_epoch) != 0) {
            rc = nd_fail(ND_ERR_INTERRUPTED, "training stopped at step %lld (checkpoint of epoch %lld kept)",
                         (long long)step, (long long)e);
            break;
        }
        nas_epoch_stats st = {e, epochs, step, acc.seen ? acc.loss_sum / (double)acc.seen : NAN,
                              acc.seen ? (double)acc.hits / (double)acc.seen : NAN, lr, nd_time_now() - t0, NAN, NAN};
        res->epochs_done = e + 1;
        res->steps = step;
        res->train_loss = st.train_loss;
        res->train_acc = st.train_acc;
        if (eval && o->eval_every > 0 && (e + 1) % o->eval_every == 0 && e + 1 < epochs) {
            nas_eval_result er;
            rc = evaluate_in(net, ctx, eval, o->eval_batch, eval_slice, o->ema_decay > 0, &er);
            if (rc) break;
            st.eval_acc = er.accuracy;
            st.eval_loss = er.loss;
        }
        int last = e + 1 >= epochs || step >= total;
        if (last && eval) {
            rc = evaluate_in(net, ctx, eval, o->eval_batch, eval_slice, o->ema_decay > 0, &res->eval);
            if (rc) break;
            st.eval_acc = res->eval.accuracy;
            st.eval_loss = res->eval.loss;
        }
        if (o->checkpoint && !o->no_checkpoint_write) {
            rc = save_ckpt(net, o->checkpoint, e + 1, step, o->seed);
            if (rc) break;
        }
        if (o->on_epoch && o->on_epoch(&st, o->user) && !last) {
            rc = nd_fail(ND_ERR_INTERRUPTED, "training stopped after epoch %lld", (long long)e + 1);
            break;
        }
        if (o->stop && *o->stop && !last) {
            rc = nd_fail(ND_ERR_INTERRUPTED, "training stopped after epoch %lld", (long long)e + 1);
            break;
        }
    }
    res->seconds = nd_time_now() - t_start;
    res->images_per_sec = res->seconds > 0 ? (double)images / res->seconds : 0;
    if (o->progress && !rc) nd_progress_finish(o->progress, step * o->batch_size, NULL);
    if (!rc && eval && res->eval.count == 0) rc = evaluate_in(net, ctx, eval, o->eval_batch, eval_slice, o->ema_decay > 0, &res->eval);
    nn_ctx_free(ctx);
    return rc;
}
