/* nasdet train: train a NASNet classifier on a CIFAR-format folder or an image folder, with a
 * progress line, RUN/log.jsonl, RUN/curves.png, per-epoch atomic checkpoints, --resume and a
 * final test-set evaluation; --eval-only evaluates a checkpoint. */
#include "backbone/nasnet_net.h"
#include "cli/cli.h"
#include "coco/coco.h"
#include "common/fileio.h"
#include "common/plot.h"
#include "common/progress.h"
#include "common/status.h"
#include "dist/dist.h"

#include <cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage =
    "usage: nasdet train --arch PRESET|--genotype G.json --data cifar:DIR|folder:DIR --out RUN [options]\n"
    "       nasdet train --eval-only --checkpoint CKPT --data cifar:DIR|folder:DIR";
static const char *const description =
    "Train a NASNet classifier with the paper's CIFAR recipe (batch 32, lr 0.025 cosine, momentum\n"
    "0.9, weight decay 5e-4, ScheduledDropPath keep 0.6, aux head weight 0.4, gradient clip 5).\n"
    "cifar:DIR reads data_batch_1..5.bin / test_batch.bin (CIFAR-10 or `nasdet data digits-cls`);\n"
    "folder:DIR reads DIR/train/<class>/*.jpg and DIR/test/<class>/ (or DIR/val/<class>/).\n"
    "RUN/ gets log.jsonl (one line per epoch), curves.png, checkpoint.safetensors (every epoch,\n"
    "atomic; --resume continues from it exactly), model.safetensors (final weights, for\n"
    "`nasdet classify`) and result.json (final test accuracy, peak resident memory).\n"
    "Under mpirun (a `make MPI=1` build) with K processes, training is data-parallel: --batch is the\n"
    "global batch, each rank trains on its 1/K of every batch, gradients are averaged with one\n"
    "allreduce per step, and rank 0 writes RUN/. Batch-norm statistics are per rank unless\n"
    "--sync-bn. With --device cuda each rank takes GPU (node-local rank mod GPUs) unless cuda:N\n"
    "names one; gradients go through NCCL on the GPUs where the build has it, else MPI via host\n"
    "memory.";

static volatile int g_stop = 0;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* ---- data ---------------------------------------------------------------------------------- */

typedef struct dataset {
    coco_cifar cifar_train, cifar_test;
    coco_imagefolder folder_train, folder_test;
    coco_cls_source train, test;
    int32_t classes;
    int is_folder;
} dataset;

static void dataset_free(dataset *d) {
    coco_cifar_free(&d->cifar_train);
    coco_cifar_free(&d->cifar_test);
    coco_imagefolder_free(&d->folder_train);
    coco_imagefolder_free(&d->folder_test);
}

static int dataset_open(const char *spec, dataset *d) {
    memset(d, 0, sizeof *d);
    int rc;
    if (!strncmp(spec, "cifar:", 6)) {
        const char *dir = spec + 6;
        rc = coco_cifar_read_dir(dir, 1, &d->cifar_train);
        if (!rc) rc = coco_cifar_read_dir(dir, 0, &d->cifar_test);
        if (rc) return rc;
        d->train = coco_cls_source_cifar(&d->cifar_train);
        d->test = coco_cls_source_cifar(&d->cifar_test);
        char **names = NULL;
        int32_t n = 0;
        d->classes = 10;
        if (coco_cifar_read_names(dir, &names, &n) == 0 && n > 0) d->classes = n;
        coco_names_free(names, n);
        return ND_OK;
    }
    if (!strncmp(spec, "folder:", 7)) {
        const char *dir = spec + 7;
        char *tr = nd_path_join(dir, "train"), *te = nd_path_join(dir, "test");
        if (!nd_path_is_dir(te)) {
            free(te);
            te = nd_path_join(dir, "val");
        }
        rc = coco_imagefolder_read(tr, &d->folder_train);
        if (!rc) rc = coco_imagefolder_read(te, &d->folder_test);
        if (!rc && d->folder_test.num_classes != d->folder_train.num_classes)
            rc = nd_fail(ND_ERR_FORMAT, "%s has %d classes, %s has %d", tr, d->folder_train.num_classes, te,
                         d->folder_test.num_classes);
        free(tr);
        free(te);
        if (rc) return rc;
        d->train = coco_cls_source_folder(&d->folder_train);
        d->test = coco_cls_source_folder(&d->folder_test);
        d->classes = d->folder_train.num_classes;
        d->is_folder = 1;
        return ND_OK;
    }
    return nd_fail(ND_ERR_INVALID, "--data: expected cifar:DIR or folder:DIR, got \"%s\"", spec);
}

/* ---- run folder: log, curves ------------------------------------------------------------- */

typedef struct run_log {
    char *log_path, *plot_path;
    int64_t n, cap;
    double *epoch, *loss, *acc, *eval_acc;
} run_log;

static void log_push(run_log *r, double e, double loss, double acc, double eacc) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->epoch = realloc(r->epoch, (size_t)r->cap * sizeof(double));
        r->loss = realloc(r->loss, (size_t)r->cap * sizeof(double));
        r->acc = realloc(r->acc, (size_t)r->cap * sizeof(double));
        r->eval_acc = realloc(r->eval_acc, (size_t)r->cap * sizeof(double));
    }
    r->epoch[r->n] = e, r->loss[r->n] = loss, r->acc[r->n] = acc, r->eval_acc[r->n] = eacc;
    r->n++;
}

static void log_free(run_log *r) {
    free(r->log_path);
    free(r->plot_path);
    free(r->epoch);
    free(r->loss);
    free(r->acc);
    free(r->eval_acc);
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

/* On --resume: keep the lines of epochs before `epochs_done` (a crash between the log line
 * and the checkpoint would otherwise repeat an epoch) and reload them for the plot. */
static int log_reload(run_log *r, int64_t epochs_done) {
    char *text = NULL;
    size_t len = 0;
    if (!nd_path_exists(r->log_path)) return ND_OK;
    int rc = nd_file_read_all(r->log_path, &text, &len);
    if (rc) return rc;
    size_t cap = len + 1, out_len = 0;
    char *kept = malloc(cap);
    kept[0] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        double e = o ? jnum(o, "epoch") : NAN;
        if (o && isfinite(e) && e <= (double)epochs_done) {
            log_push(r, e, jnum(o, "loss"), jnum(o, "accuracy"), jnum(o, "test_accuracy"));
            out_len += (size_t)snprintf(kept + out_len, cap - out_len, "%s\n", line);
        }
        cJSON_Delete(o);
    }
    rc = nd_file_write_atomic(r->log_path, kept, out_len);
    free(kept);
    free(text);
    return rc;
}

static int write_plot(const run_log *r) {
    nd_plot_series s[3] = {
        {"train loss", r->epoch, r->loss, r->n, ND_PLOT_LINE},
        {"train accuracy", r->epoch, r->acc, r->n, ND_PLOT_LINE},
        {"test accuracy", r->epoch, r->eval_acc, r->n, ND_PLOT_LINE},
    };
    nd_plot p = {"nasdet train", "epoch", "loss / accuracy", 0, 0, 0};
    int ns = 3;
    int any_eval = 0;
    for (int64_t i = 0; i < r->n; i++) any_eval |= isfinite(r->eval_acc[i]);
    if (!any_eval) ns = 2;
    return nd_plot_write(r->plot_path, &p, s, ns);
}

static int on_epoch(const nas_epoch_stats *st, void *user) {
    run_log *r = user;
    char line[512];
    char ev[64] = "null", el[64] = "null";
    if (isfinite(st->eval_acc)) snprintf(ev, sizeof ev, "%.6f", st->eval_acc);
    if (isfinite(st->eval_loss)) snprintf(el, sizeof el, "%.6f", st->eval_loss);
    snprintf(line, sizeof line,
             "{\"epoch\": %lld, \"step\": %lld, \"loss\": %.6f, \"accuracy\": %.6f, \"test_accuracy\": %s, "
             "\"test_loss\": %s, \"lr\": %.8g, \"time\": %.3f}",
             (long long)st->epoch + 1, (long long)st->step, st->train_loss, st->train_acc, ev, el, st->lr,
             st->seconds);
    if (nd_file_append_line(r->log_path, line)) fprintf(stderr, "nasdet train: warning: %s\n", nd_last_error());
    log_push(r, (double)st->epoch + 1, st->train_loss, st->train_acc, st->eval_acc);
    if (r->n >= 1 && write_plot(r)) fprintf(stderr, "nasdet train: warning: %s\n", nd_last_error());
    fprintf(stderr, "epoch %lld/%lld  loss %.4f  acc %.4f%s%s  lr %.5f  %.1fs\n", (long long)st->epoch + 1,
            (long long)st->epochs, st->train_loss, st->train_acc, isfinite(st->eval_acc) ? "  test acc " : "",
            isfinite(st->eval_acc) ? ev : "", st->lr, st->seconds);
    return 0;
}

/* ---- the command --------------------------------------------------------------------------- */

static int eval_only(const char *cmd, const char *ckpt, dataset *d, int64_t test_limit, int64_t threads,
                     const char *device) {
    nas_net *net;
    if (nas_net_load(ckpt, &net)) return cli_fail(cmd);
    if (nn_params_to_device(nas_net_params(net), device)) {
        nas_net_free(net);
        return cli_fail(cmd);
    }
    nn_set_threads((int)threads);
    nas_data te = {&d->test, 0, test_limit > 0 && test_limit < d->test.count ? test_limit : 0};
    nas_eval_result r;
    int rc = nas_evaluate(net, &te, 100, 1, &r);
    nas_net_free(net);
    if (rc) return cli_fail(cmd);
    printf("{\"checkpoint\": \"%s\", \"test_images\": %lld, \"test_accuracy\": %.6f, \"test_loss\": %.6f}\n", ckpt,
           (long long)r.count, r.accuracy, r.loss);
    return CLI_EXIT_OK;
}

static int train_main(int argc, char **argv);

/* MPI (when built with it and started by mpirun) lives for the whole command. */
int cli_cmd_train(int argc, char **argv) {
    int code = train_main(argc, argv);
    dist_finalize();
    return code;
}

static int train_main(int argc, char **argv) {
    const char *cmd = argv[0];
    const char *arch = NULL, *genotype = NULL, *stem = NULL, *data = NULL, *out = NULL, *optimizer = "sgd", *init = "tf-slim";
    const char *checkpoint = NULL, *device = "cpu";
    int64_t N = 0, F = 0, input = 0, classes = 0, epochs = 600, steps = 0, batch = 32, cutout = 0, pad = 4, seed = 1,
            threads = 0, eval_every = 1, train_limit = 0, test_limit = 0, loader_threads = 1;
    double lr = 0.025, wd = -1, keep = -1, aux_weight = 0.4, smoothing = 0, clip = 5, ema = 0, bn_momentum = -1;
    int resume = 0, only_eval = 0, flip = 0, no_aux = 0, sync_bn = 0;
    nd_opt opts[] = {
        {"arch", ND_OPT_STRING, &arch, "preset: nasnet-a-cifar, nasnet-a-cifar-large, nasnet-a-mobile, nasnet-a-large",
         NULL, "PRESET"},
        {"genotype", ND_OPT_STRING, &genotype, "cells: a built-in name or a genotype JSON file", NULL, "G"},
        {"N", ND_OPT_INT, &N, "normal cells per stack (0: the preset's)", NULL, "n"},
        {"F", ND_OPT_INT, &F, "num_conv_filters (0: the preset's)", NULL, "f"},
        {"stem", ND_OPT_CHOICE, &stem, "stem kind (default: the preset's)", "cifar|imagenet", NULL},
        {"input", ND_OPT_INT, &input, "input size (0: the preset's)", NULL, "S"},
        {"classes", ND_OPT_INT, &classes, "classes (0: from the data)", NULL, "K"},
        {"no-aux", ND_OPT_FLAG, &no_aux, "build without the aux head", NULL, NULL},
        {"data", ND_OPT_STRING, &data, "cifar:DIR or folder:DIR", NULL, "SPEC"},
        {"out", ND_OPT_STRING, &out, "run folder (created)", NULL, "RUN"},
        {"epochs", ND_OPT_INT, &epochs, "epochs (the paper: 600)", NULL, "E"},
        {"steps", ND_OPT_INT, &steps, "train this many steps instead of --epochs (0: off)", NULL, "S"},
        {"batch", ND_OPT_INT, &batch, "batch size", NULL, "B"},
        {"lr", ND_OPT_DOUBLE, &lr, "initial learning rate (single cosine period to 0)", NULL, "LR"},
        {"wd", ND_OPT_DOUBLE, &wd, "weight decay (-1: the preset's, 5e-4 for CIFAR)", NULL, "WD"},
        {"init", ND_OPT_CHOICE, &init,
         "initial conv weights: TF-slim's variance scaling, or PyTorch's smaller default (faster with Adam)",
         "tf-slim|torch", NULL},
        {"drop-path-keep", ND_OPT_DOUBLE, &keep, "ScheduledDropPath keep probability (-1: the preset's)", NULL, "P"},
        {"bn-momentum", ND_OPT_DOUBLE, &bn_momentum,
         "batch-norm running-average momentum, 1 - TF's decay (-1: the preset's: 0.1 CIFAR, 0.0003 ImageNet, whose "
         "running statistics need tens of thousands of steps to settle)",
         NULL, "M"},
        {"aux-weight", ND_OPT_DOUBLE, &aux_weight, "aux head loss weight", NULL, "W"},
        {"cutout", ND_OPT_INT, &cutout, "cutout square side (16 for CIFAR-10; 0: off)", NULL, "PX"},
        {"pad", ND_OPT_INT, &pad, "pad-and-random-crop augmentation (0: off)", NULL, "PX"},
        {"flip", ND_OPT_FLAG, &flip, "random horizontal flips (not for digits)", NULL, NULL},
        {"label-smoothing", ND_OPT_DOUBLE, &smoothing, "label smoothing", NULL, "S"},
        {"clip", ND_OPT_DOUBLE, &clip, "global gradient norm clip (0: off)", NULL, "C"},
        {"optimizer", ND_OPT_CHOICE, &optimizer, "optimizer (rmsprop: decay 0.9, eps 1.0; adam: betas 0.9, 0.999, wd 0 unless --wd)",
         "sgd|rmsprop|adam", NULL},
        {"ema", ND_OPT_DOUBLE, &ema, "parameter EMA decay, e.g. 0.9999 (0: off)", NULL, "D"},
        {"seed", ND_OPT_INT, &seed, "seed of weights, data order, augmentation and drop path", NULL, "S"},
        {"threads", ND_OPT_INT, &threads, "compute threads (0: all cores)", NULL, "T"},
        {"device", ND_OPT_STRING, &device, "cpu, cuda or cuda:N (GPU N; needs a CUDA=1 build)", NULL, "DEV"},
        {"loader-threads", ND_OPT_INT, &loader_threads, "batch-building threads", NULL, "T"},
        {"eval-every", ND_OPT_INT, &eval_every, "evaluate the test set every k epochs (0: only at the end)", NULL, "K"},
        {"train-limit", ND_OPT_INT, &train_limit, "use only the first N training images (0: all)", NULL, "N"},
        {"test-limit", ND_OPT_INT, &test_limit, "use only the first N test images (0: all)", NULL, "N"},
        {"resume", ND_OPT_FLAG, &resume, "continue RUN/checkpoint.safetensors exactly", NULL, NULL},
        {"eval-only", ND_OPT_FLAG, &only_eval, "evaluate --checkpoint on the test set and exit", NULL, NULL},
        {"checkpoint", ND_OPT_STRING, &checkpoint, "checkpoint for --eval-only", NULL, "CKPT"},
        {"sync-bn", ND_OPT_FLAG, &sync_bn, "MPI: batch-norm statistics over the global batch (default: per rank)",
         NULL, NULL},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), code;
    nd_args args;
    if (cli_parse(argc, argv, usage, description, opts, nopts, &args, &code)) return code;
    int npos = args.npositional;
    nd_args_free(&args);
    if (npos) return cli_error(cmd, CLI_EXIT_USAGE, "unexpected argument (see 'nasdet train --help')");
    if (!data) return cli_error(cmd, CLI_EXIT_USAGE, "--data cifar:DIR|folder:DIR is required\n%s", usage);
    if (only_eval && !checkpoint) return cli_error(cmd, CLI_EXIT_USAGE, "--eval-only needs --checkpoint CKPT");
    if (!only_eval && !out) return cli_error(cmd, CLI_EXIT_USAGE, "--out RUN is required\n%s", usage);
    if (batch < 2 || epochs < 1 || steps < 0 || threads < 0 || loader_threads < 0 || eval_every < 0 || seed < 0 ||
        cutout < 0 || pad < 0 || train_limit < 0 || test_limit < 0)
        return cli_error(cmd, CLI_EXIT_USAGE,
                         "--batch must be >= 2, --epochs >= 1; --steps, --threads, --seed, --cutout, --pad and the "
                         "limits >= 0");

    if (dist_init() || dist_sync_bn(sync_bn)) return cli_fail(cmd);
    int ranks = dist_size(), rank0 = dist_rank() == 0;
    if (ranks > 1 && (only_eval || batch % ranks))
        return cli_error(cmd, CLI_EXIT_USAGE, only_eval ? "--eval-only runs in one process, not under mpirun"
                                                        : "--batch %lld must split evenly over the %d MPI ranks",
                         (long long)batch, ranks);
    dataset d;
    if (dataset_open(data, &d)) {
        dataset_free(&d);
        return cli_fail(cmd);
    }
    if (only_eval) {
        int rc = eval_only(cmd, checkpoint, &d, test_limit, threads, device);
        dataset_free(&d);
        return rc;
    }
    nas_net_choice ch = {arch, genotype, stem, (int32_t)N, (int32_t)F, (int32_t)input,
                         (int32_t)(classes > 0 ? classes : d.classes), no_aux ? 0 : -1};
    nas_net_config cfg;
    int bad_cfg = nas_net_config_choose(&ch, &cfg) || nas_conv_init_parse(init, &cfg.conv_init);
    if (!bad_cfg && bn_momentum != -1) {
        cfg.bn_momentum = (float)bn_momentum;
        bad_cfg = nas_net_config_validate(&cfg) != 0;
    }
    if (bad_cfg) {
        dataset_free(&d);
        return cli_fail(cmd);
    }
    if (!d.is_folder && cfg.image_size != d.train.height) {
        dataset_free(&d);
        return cli_error(cmd, CLI_EXIT_USAGE, "%s holds %dx%d images; the network's input is %d (use --input %d)", data,
                         d.train.height, d.train.width, cfg.image_size, d.train.height);
    }
    nn_set_threads((int)threads);
    nas_net *net = NULL;
    char rank_device[32];
    device = dist_pick_device(device, rank_device, sizeof rank_device); /* one GPU per rank under mpirun */
    if (nas_net_new(&cfg, NULL, NULL, (uint64_t)seed, &net) || nn_params_to_device(nas_net_params(net), device) ||
        nd_mkdirs(out)) {
        nas_net_free(net); /* NULL when the build failed */
        dataset_free(&d);
        return cli_fail(cmd);
    }
    run_log rl = {0};
    rl.log_path = nd_path_join(out, "log.jsonl");
    rl.plot_path = nd_path_join(out, "curves.png");
    char *ckpt = nd_path_join(out, "checkpoint.safetensors");
    char *model = nd_path_join(out, "model.safetensors");
    int rc = ND_OK;
    if (!resume && nd_path_exists(ckpt)) {
        rc = nd_fail(ND_ERR_INVALID, "%s exists: continue it with --resume or choose another --out", ckpt);
    } else if (!resume && rank0) {
        rc = nd_file_write_atomic(rl.log_path, "", 0);
    }
    /* Data-parallel: the same weights everywhere, this rank's shard, averaged gradients. */
    dist_grad_sync *gs = NULL;
    char devices[1024] = "";
    if (!rc && ranks > 1) rc = dist_bcast_params(nas_net_params(net), 0);
    if (!rc && ranks > 1) rc = dist_grad_sync_new(nas_net_params(net), &gs);
    if (!rc && ranks > 1) rc = dist_describe_devices(device, devices, sizeof devices);
    if (gs) dist_grad_sync_set_stop(gs, &g_stop);

    nas_train_opts o;
    nas_train_opts_default(&o);
    o.epochs = epochs;
    o.steps = steps;
    o.batch_size = (int32_t)batch;
    o.optimizer = !strcmp(optimizer, "rmsprop") ? NN_OPTIM_RMSPROP : !strcmp(optimizer, "adam") ? NN_OPTIM_ADAM : NN_OPTIM_SGD;
    o.lr = lr;
    o.weight_decay = wd;
    o.drop_path_keep = keep;
    o.aux_weight = aux_weight;
    o.cutout = (int32_t)cutout;
    o.pad = (int32_t)pad;
    o.flip = flip;
    o.label_smoothing = smoothing;
    o.clip_norm = clip;
    o.ema_decay = ema;
    o.seed = (uint64_t)seed;
    o.loader_threads = (int32_t)loader_threads;
    o.eval_every = (int32_t)eval_every;
    o.checkpoint = ckpt;
    o.resume = resume;
    o.on_epoch = rank0 ? on_epoch : NULL;
    o.user = &rl;
    o.stop = &g_stop;
    if (gs) {
        o.shard_rank = dist_rank();
        o.shard_count = ranks;
        o.grad_sync = dist_grad_sync_cb;
        o.grad_sync_user = gs;
        o.no_checkpoint_write = !rank0;
    }
    if (!rc && rank0 && resume && nd_path_exists(ckpt)) {
        /* Trim the log to the checkpoint's epoch before training appends to it. */
        nas_net *tmp = NULL;
        rc = nas_net_load(ckpt, &tmp);
        nas_net_free(tmp);
        if (!rc) {
            nn_meta m;
            nn_params *empty = nn_params_new();
            rc = nn_checkpoint_load(ckpt, empty, &m, NN_CKPT_ALLOW_EXTRA);
            nn_params_free(empty);
            int64_t done = 0;
            if (!rc) rc = nn_meta_get_int(&m, "nas.epoch", &done);
            if (!rc) nn_meta_free(&m);
            if (!rc) rc = log_reload(&rl, done);
        }
    }
    nas_train_result res;
    memset(&res, 0, sizeof res);
    if (!rc) {
        nas_data tr = {&d.train, 0, train_limit > 0 && train_limit < d.train.count ? train_limit : 0};
        nas_data te = {&d.test, 0, test_limit > 0 && test_limit < d.test.count ? test_limit : 0};
        int64_t n = tr.count ? tr.count : tr.src->count;
        int64_t total = steps > 0 ? steps : epochs * (n / batch);
        nd_progress pr;
        nd_progress_init(&pr, stderr, "train", "img", total * batch);
        o.progress = rank0 ? &pr : NULL;
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        char label[64];
        if (rank0)
            fprintf(stderr, "training %s (%s, %lld params) on %lld images, %lld test images, %lld steps%s\n",
                    cfg.genotype.name[0] ? cfg.genotype.name : "genotype",
                    nas_net_config_label(&cfg, label, sizeof label), (long long)nas_net_num_params(net, 0), (long long)n,
                    (long long)(te.count ? te.count : te.src->count), (long long)total,
                    ranks > 1 ? (sync_bn ? ", data-parallel over MPI ranks, synchronised BN"
                                         : ", data-parallel over MPI ranks") : "");
        if (rank0 && gs)
            fprintf(stderr, "data-parallel: %d ranks on %s; gradients: %s\n", ranks, devices,
                    dist_grad_sync_method(gs));
        rc = nas_train(net, &tr, &te, &o, &res);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    if (gs && rank0) {
        int64_t calls = 0;
        double sec = dist_grad_sync_seconds(gs, &calls);
        fprintf(stderr, "data-parallel: %d ranks, %lld gradient floats per step; allreduce %.2f ms per step "
                "(%.1f%% of %.1f ms per step)\n", ranks, (long long)dist_grad_sync_numel(gs),
                calls ? 1e3 * sec / (double)calls : 0.0, res.seconds > 0 ? 100.0 * sec / res.seconds : 0.0,
                calls ? 1e3 * res.seconds / (double)calls : 0.0);
    }
    dist_grad_sync_free(gs);
    if (!rank0) goto done; /* rank 0 writes the run folder */
    if (!rc) rc = nas_net_save(net, model);
    if (!rc) {
        char text[512];
        int n = snprintf(text, sizeof text,
                         "{\"test_accuracy\": %.6f, \"test_loss\": %.6f, \"test_images\": %lld, \"epochs\": %lld, "
                         "\"steps\": %lld, \"seconds\": %.1f, \"images_per_sec\": %.2f, \"train_loss\": %.6f, "
                         "\"train_accuracy\": %.6f, \"peak_rss_mb\": %.1f}\n",
                         res.eval.accuracy, res.eval.loss, (long long)res.eval.count, (long long)res.epochs_done,
                         (long long)res.steps, res.seconds, res.images_per_sec, res.train_loss, res.train_acc,
                         cli_peak_rss_mb());
        char *rp = nd_path_join(out, "result.json");
        rc = nd_file_write_atomic(rp, text, (size_t)n);
        free(rp);
        if (!rc) printf("%s", text);
    }
done:;
    int exit_code = rc ? cli_fail(cmd) : CLI_EXIT_OK;
    free(ckpt);
    free(model);
    log_free(&rl);
    nas_net_free(net);
    dataset_free(&d);
    return exit_code;
}
