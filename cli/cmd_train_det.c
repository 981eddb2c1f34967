/* nasdet train-det: train a Faster R-CNN detector on COCO-format data. */
#include "cli/cli.h"
#include "cli/cli_det.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backbone/nasnet_net.h"
#include "coco/coco.h"
#include "common/fileio.h"
#include "common/status.h"
#include "detector/frcnn_model.h"
#include "dist/dist.h"

/* "coco:ANN.json:IMG_DIR" -> two malloc'ed strings. */
static int parse_source(const char *opt, const char *spec, char **ann, char **dir) {
    *ann = *dir = NULL;
    if (!spec) return ND_OK;
    const char *s = strncmp(spec, "coco:", 5) == 0 ? spec + 5 : NULL;
    const char *colon = s ? strchr(s, ':') : NULL;
    if (!s || !colon || colon == s || !colon[1])
        return nd_fail(ND_ERR_INVALID, "--%s: expected coco:ANNOTATIONS.json:IMAGE_DIR, got \"%s\"", opt, spec);
    *ann = strndup(s, (size_t)(colon - s));
    *dir = strdup(colon + 1);
    return (*ann && *dir) ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory");
}

/* A comma list of 1 to `max` numbers (whole numbers when `integers`) into out; the count, or a
 * negative status naming `opt`. */
static int parse_list(const char *opt, const char *text, int max, int integers, double *out) {
    double *v = NULL;
    int n = 0, rc = nd_parse_double_list(text, &v, &n);
    if (rc) return nd_fail_context(rc, "%s: ", opt);
    if (n < 1 || n > max) rc = nd_fail(ND_ERR_INVALID, "%s: 1 to %d values, got %d", opt, max, n);
    for (int i = 0; rc == 0 && i < n; i++) {
        if (integers && v[i] != floor(v[i]))
            rc = nd_fail(ND_ERR_INVALID, "%s: %g is not a whole number", opt, v[i]);
        out[i] = v[i];
    }
    free(v);
    return rc ? rc : n;
}

/* --train-sizes 320,512 -> the short sides drawn per batch; the long side follows (max_size
 * scaled alike), which the loader bounds. */
static int set_train_sizes(det_train_opts *o, const det_model_config *c, const char *list) {
    double v[DET_MAX_TRAIN_SIZES];
    int n = parse_list("--train-sizes", list, DET_MAX_TRAIN_SIZES, 1, v);
    if (n < 0) return n;
    for (int i = 0; i < n; i++) {
        if (v[i] < 16 || (double)c->max_size * v[i] / c->min_size > 8192)
            return nd_fail(ND_ERR_INVALID, "--train-sizes: %g is out of range (16 to %d for min/max size %d/%d)", v[i],
                           8192 * c->min_size / c->max_size, c->min_size, c->max_size);
        o->train_sizes[i] = (int32_t)v[i];
    }
    o->n_train_sizes = n;
    return ND_OK;
}

/* Anchor sizes in pixels -> scales of the 256-px base. */
static int set_anchors(det_anchor_params *a, const char *sizes, const char *ratios) {
    double v[DET_ANCHOR_MAX_SCALES > DET_ANCHOR_MAX_RATIOS ? DET_ANCHOR_MAX_SCALES : DET_ANCHOR_MAX_RATIOS];
    int n;
    if (sizes) {
        if ((n = parse_list("--anchor-sizes", sizes, DET_ANCHOR_MAX_SCALES, 0, v)) < 0) return n;
        for (int i = 0; i < n; i++) a->scales[i] = (float)(v[i] / a->base_h);
        a->n_scales = n;
    }
    if (ratios) {
        if ((n = parse_list("--anchor-ratios", ratios, DET_ANCHOR_MAX_RATIOS, 0, v)) < 0) return n;
        for (int i = 0; i < n; i++) a->ratios[i] = (float)v[i];
        a->n_ratios = n;
    }
    return ND_OK;
}

/* --roi-fuse 16,32 -> the config's fused strides (the config check validates them). */
static int set_roi_fuse(det_model_config *c, const char *list) {
    double v[DET_MAX_ROI_FUSE];
    int n = list ? parse_list("--roi-fuse", list, DET_MAX_ROI_FUSE, 1, v) : 0;
    if (n < 0) return n;
    for (int i = 0; i < n; i++) c->roi_fuse[i] = (int32_t)v[i];
    c->n_roi_fuse = n;
    return ND_OK;
}

static int train_det_main(int argc, char **argv);

/* MPI (when built with it and started by mpirun) lives for the whole command. */
int cli_cmd_train_det(int argc, char **argv) {
    int code = train_det_main(argc, argv);
    dist_finalize();
    return code;
}

static int train_det_main(int argc, char **argv) {
    const char *train = NULL, *val = NULL, *backbone = NULL, *arch = NULL, *genotype = NULL, *out = NULL;
    const char *layout = "c4", *anchor_sizes = NULL, *anchor_ratios = NULL, *roi_fuse = NULL, *test_sizes = NULL,
               *test_fuse = NULL;
    const char *train_sizes = NULL;
    double test_small = 0;
    int64_t feat_stride = 16;
    int64_t N = 0, F = 0, stem = 0, conv_width = 32, min_size = 800, max_size = 1333, rpn_channels = 0;
    int64_t rpn_batch = 256, roi_batch = 512, roi_size = 0, head_dim = 1024, pre_train = 2000, post_train = 500;
    int64_t pre_test = 1000, post_test = 300, epochs = 12, batch = 2, seed = 1, threads = 0, loader_threads = 1;
    int64_t warmup = 200, max_steps = 0, val_max = 0, log_every = 10, ckpt_every = 0;
    double lr = 0.02, momentum = 0.9, wd = 1e-4, clip = 10.0, time_limit = 0, det_nms = 0.5, det_score = 0.05;
    int no_flip = 0, resume = 0, sync_bn = 0;
    const char *optim = "sgd", *init = NULL, *device = "cpu";
    nd_opt opts[] = {
        {"train", ND_OPT_STRING, &train, "training data", NULL, "coco:ANN.json:IMG_DIR"},
        {"val", ND_OPT_STRING, &val, "validation data (COCO mAP after every epoch)", NULL, "coco:ANN.json:IMG_DIR"},
        {"backbone", ND_OPT_STRING, &backbone, "initialise the backbone from a `nasdet train` checkpoint", NULL, "CKPT"},
        {"arch", ND_OPT_STRING, &arch, "backbone preset: nasnet-a-mobile, nasnet-a-large, convnet", NULL, "PRESET"},
        {"genotype", ND_OPT_STRING, &genotype, "NASNet backbone from a genotype (JSON file or built-in name)", NULL, "G"},
        {"layout", ND_OPT_CHOICE, &layout, "c4: ROIAlign + FC head; nasnet: the paper's (crops through the last cells)", "c4|nasnet", NULL},
        {"N", ND_OPT_INT, &N, "normal cells per stack (0: the preset's)", NULL, NULL},
        {"F", ND_OPT_INT, &F, "filters of the first stack (0: the preset's)", NULL, NULL},
        {"stem-filters", ND_OPT_INT, &stem, "ImageNet stem conv width (0: the preset's)", NULL, NULL},
        {"conv-width", ND_OPT_INT, &conv_width, "convnet backbone: first stage width", NULL, NULL},
        {"min-size", ND_OPT_INT, &min_size, "resize the short side to this", NULL, "PX"},
        {"max-size", ND_OPT_INT, &max_size, "... unless the long side exceeds this", NULL, "PX"},
        {"train-sizes", ND_OPT_STRING, &train_sizes,
         "multi-scale training: each batch's short side drawn from LIST (max size scaled alike; default: min size)",
         NULL, "LIST"},
        {"anchor-sizes", ND_OPT_STRING, &anchor_sizes, "anchor sizes in pixels (default 64,128,256,512)", NULL, "LIST"},
        {"anchor-ratios", ND_OPT_STRING, &anchor_ratios, "anchor width/height ratios (default 0.5,1,2)", NULL, "LIST"},
        {"feature-stride", ND_OPT_INT, &feat_stride, "16, or 8 (c4 on a NASNet: the last cell before the 1st reduction; small objects)", NULL, NULL},
        {"rpn-channels", ND_OPT_INT, &rpn_channels, "RPN 3x3 conv width (0: 512, or 256 for convnet)", NULL, NULL},
        {"rpn-batch", ND_OPT_INT, &rpn_batch, "anchors sampled per image", NULL, NULL},
        {"roi-batch", ND_OPT_INT, &roi_batch, "proposals sampled per image", NULL, NULL},
        {"roi-size", ND_OPT_INT, &roi_size, "ROIAlign / crop size (0: 7 for c4, 17 for nasnet)", NULL, NULL},
        {"head-dim", ND_OPT_INT, &head_dim, "c4: width of the two FC layers", NULL, NULL},
        {"test-sizes", ND_OPT_STRING, &test_sizes,
         "detect: extra input sizes (short side) run for small objects, stored in the model", NULL, "LIST"},
        {"test-small", ND_OPT_DOUBLE, &test_small,
         "detect: extra sizes keep objects under this size in base-input pixels (0: min size / 6)", NULL, "PX"},
        {"test-fuse", ND_OPT_STRING, &test_fuse,
         "detect: fuse the sizes' boxes; the base input sees objects of at least MIN px, each extra size those "
         "under MAX px of its own input (default: NMS merge)", NULL, "MIN,MAX"},
        {"roi-fuse", ND_OPT_STRING, &roi_fuse,
         "c4 on a NASNet: strides of deeper cells (16, 32) whose features join each ROI's (1x1 conv, added)", NULL,
         "LIST"},
        {"pre-nms-train", ND_OPT_INT, &pre_train, "proposals before NMS in training", NULL, NULL},
        {"post-nms-train", ND_OPT_INT, &post_train, "proposals after NMS in training", NULL, NULL},
        {"pre-nms-test", ND_OPT_INT, &pre_test, "proposals before NMS at test time", NULL, NULL},
        {"post-nms-test", ND_OPT_INT, &post_test, "proposals after NMS at test time", NULL, NULL},
        {"det-nms", ND_OPT_DOUBLE, &det_nms, "per-class NMS IoU of the final detections", NULL, NULL},
        {"det-score", ND_OPT_DOUBLE, &det_score, "score threshold stored in the model", NULL, NULL},
        {"epochs", ND_OPT_INT, &epochs, "epochs", NULL, NULL},
        {"batch", ND_OPT_INT, &batch, "images per batch", NULL, NULL},
        {"lr", ND_OPT_DOUBLE, &lr, "learning rate (warm-up, then cosine to lr/100)", NULL, NULL},
        {"optim", ND_OPT_CHOICE, &optim, "optimizer (give the same one to --resume)", "sgd|adam", NULL},
        {"momentum", ND_OPT_DOUBLE, &momentum, "SGD momentum", NULL, NULL},
        {"weight-decay", ND_OPT_DOUBLE, &wd, "L2 weight decay", NULL, NULL},
        {"warmup", ND_OPT_INT, &warmup, "linear warm-up steps", NULL, NULL},
        {"clip", ND_OPT_DOUBLE, &clip, "gradient norm clip (0: off)", NULL, NULL},
        {"no-flip", ND_OPT_FLAG, &no_flip, "no horizontal flip augmentation", NULL, NULL},
        {"seed", ND_OPT_INT, &seed, "random seed (weights, data order, sampling)", NULL, NULL},
        {"threads", ND_OPT_INT, &threads, "compute threads (0: all cores)", NULL, NULL},
        {"device", ND_OPT_STRING, &device, "cpu, cuda or cuda:N (GPU N; needs a CUDA=1 build)", NULL, "DEV"},
        {"loader-threads", ND_OPT_INT, &loader_threads, "background image loading threads", NULL, NULL},
        {"max-steps", ND_OPT_INT, &max_steps, "stop after this many steps (resumable)", NULL, NULL},
        {"time-limit", ND_OPT_DOUBLE, &time_limit, "stop after this many minutes (resumable)", NULL, "MIN"},
        {"val-max-images", ND_OPT_INT, &val_max, "evaluate on the first N val images only (0: all)", NULL, NULL},
        {"log-every", ND_OPT_INT, &log_every, "steps per line of RUN/log.jsonl", NULL, NULL},
        {"checkpoint-every", ND_OPT_INT, &ckpt_every, "also checkpoint every this many steps (0: every epoch)", NULL, NULL},
        {"out", ND_OPT_STRING, &out, "run folder: model.safetensors, checkpoint.safetensors, log.jsonl, loss.png, eval.json", NULL, "RUN"},
        {"resume", ND_OPT_FLAG, &resume, "continue RUN/checkpoint.safetensors exactly", NULL, NULL},
        {"init", ND_OPT_STRING, &init, "start from the weights of a detector model with the same config (warm start)", NULL, "MODEL"},
        {"sync-bn", ND_OPT_FLAG, &sync_bn, "MPI: batch-norm statistics over the global batch (default: per rank)", NULL, NULL},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]);
    nd_args args;
    int code;
    if (cli_parse(argc, argv,
                  "nasdet train-det --train coco:ANN.json:IMG_DIR [--val coco:ANN.json:IMG_DIR]\n"
                  "       (--backbone CKPT | --arch PRESET | --genotype G.json) --out RUN [options]",
                  "Train a Faster R-CNN detector on NASNet features (any COCO-format data; the category map is\n"
                  "saved in the model). RUN/model.safetensors is all `nasdet detect --model` needs.\n"
                  "Under mpirun (a `make MPI=1` build) with K processes, training is data-parallel: --batch is\n"
                  "the global batch, each rank trains on its share of every batch, gradients are averaged with\n"
                  "one allreduce per step, rank 0 writes RUN/; stop with --max-steps (not --time-limit). With\n"
                  "--device cuda each rank takes GPU (node-local rank mod GPUs) unless cuda:N names one;\n"
                  "gradients go through NCCL on the GPUs where the build has it, else MPI via host memory.",
                  opts, nopts, &args, &code))
        return code;
    const char *cmd = argv[0];
    char *tr_ann = NULL, *tr_dir = NULL, *va_ann = NULL, *va_dir = NULL;
    det_model_config cfg;
    det_model_config_default(&cfg);
    coco_dataset ds = {0};
    det_model *m = NULL;
    int rc = ND_OK, exit_code = CLI_EXIT_OK;
    if (args.npositional) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "unexpected argument \"%s\"", args.positional[0]);
        goto done;
    }
    if (!train || !out) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "--train and --out are required (see 'nasdet train-det --help')");
        goto done;
    }
    if (dist_init() || dist_sync_bn(sync_bn)) goto fail;
    if (dist_size() > 1 && time_limit > 0) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "--time-limit: data-parallel ranks would stop at different steps; "
                              "use --max-steps under mpirun");
        goto done;
    }
    if ((backbone != NULL) + (arch != NULL) + (genotype != NULL) > 1) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "give one of --backbone, --arch, --genotype");
        goto done;
    }
    if ((rc = parse_source("train", train, &tr_ann, &tr_dir)) || (rc = parse_source("val", val, &va_ann, &va_dir))) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "%s", nd_last_error());
        goto done;
    }
    char *ckpt = nd_path_join(out, "checkpoint.safetensors");
    int resuming = resume && ckpt && nd_path_exists(ckpt);
    if (resuming) {
        /* the run's own config, whatever the options say */
        rc = det_model_load(ckpt, &m, NULL);
        free(ckpt);
        if (rc) goto fail;
    } else {
        free(ckpt);
        /* backbone */
        if (arch && strcmp(arch, "convnet") == 0) {
            cfg.backbone = DET_BACKBONE_CONVNET;
            cfg.conv_width = (int32_t)conv_width;
        } else if (backbone) {
            nas_net *net = NULL;
            if ((rc = nas_net_load(backbone, &net))) goto fail;
            const nas_net_config *nc = nas_net_get_config(net);
            cfg.genotype = nc->genotype;
            cfg.nas_n = nc->num_cells, cfg.nas_f = nc->num_conv_filters;
            cfg.stem_filters = (int32_t)lround(32 * nc->stem_multiplier);
            cfg.skip_reduction_input = nc->skip_reduction_layer_input;
            nas_net_free(net);
        } else if (arch) {
            nas_net_config nc;
            if ((rc = nas_net_preset(arch, &nc))) goto fail;
            if (nc.stem != NAS_STEM_IMAGENET) {
                exit_code = cli_error(cmd, CLI_EXIT_USAGE, "--arch %s: a detector needs an ImageNet-skeleton preset", arch);
                goto done;
            }
            cfg.genotype = nc.genotype;
            cfg.nas_n = nc.num_cells, cfg.nas_f = nc.num_conv_filters;
            cfg.stem_filters = (int32_t)lround(32 * nc.stem_multiplier);
            cfg.skip_reduction_input = nc.skip_reduction_layer_input;
        } else if (genotype) {
            if ((rc = nas_genotype_from_spec(genotype, &cfg.genotype))) goto fail;
        } else {
            exit_code = cli_error(cmd, CLI_EXIT_USAGE, "give the backbone: --backbone CKPT, --arch PRESET or --genotype G.json");
            goto done;
        }
        if (N > 0) cfg.nas_n = (int32_t)N;
        if (F > 0) cfg.nas_f = (int32_t)F;
        if (stem > 0) cfg.stem_filters = (int32_t)stem;
        cfg.layout = (det_layout)det_layout_parse(layout);
        cfg.min_size = (int32_t)min_size, cfg.max_size = (int32_t)max_size;
        if ((rc = set_anchors(&cfg.anchors, anchor_sizes, anchor_ratios))) {
            exit_code = cli_error(cmd, CLI_EXIT_USAGE, "%s", nd_last_error());
            goto done;
        }
        if (feat_stride != 8 && feat_stride != 16) {
            exit_code = cli_error(cmd, CLI_EXIT_USAGE, "--feature-stride: 8 or 16, got %lld", (long long)feat_stride);
            goto done;
        }
        cfg.anchors.stride_x = cfg.anchors.stride_y = (float)feat_stride;
        cfg.rpn_channels = (int32_t)(rpn_channels > 0 ? rpn_channels : cfg.backbone == DET_BACKBONE_CONVNET ? 256 : 512);
        cfg.rpn_batch = rpn_batch, cfg.roi_batch = roi_batch;
        cfg.roi_size = (int32_t)(roi_size > 0 ? roi_size : cfg.layout == DET_LAYOUT_NASNET ? 17 : 7);
        cfg.head_dim = (int32_t)head_dim;
        if ((rc = set_roi_fuse(&cfg, roi_fuse))) {
            exit_code = cli_error(cmd, CLI_EXIT_USAGE, "%s", nd_last_error());
            goto done;
        }
        if ((exit_code = cli_det_test_passes(cmd, &cfg, test_sizes, test_small, test_fuse))) goto done;
        cfg.prop_train.pre_nms_top_n = pre_train, cfg.prop_train.post_nms_top_n = post_train;
        cfg.prop_test.pre_nms_top_n = pre_test, cfg.prop_test.post_nms_top_n = post_test;
        cfg.detect.nms_thresh = (float)det_nms, cfg.detect.score_thresh = (float)det_score;
        /* classes: the training set's categories, sorted by id */
        if ((rc = coco_dataset_read(tr_ann, &ds))) goto fail;
        if (ds.num_classes < 1) {
            exit_code = cli_error(cmd, CLI_EXIT_FAIL, "%s: no categories", tr_ann);
            goto done;
        }
        int64_t *ids = malloc((size_t)ds.num_classes * sizeof *ids);
        const char **names = malloc((size_t)ds.num_classes * sizeof *names);
        if (!ids || !names) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
        for (int32_t k = 0; rc == 0 && k < ds.num_classes; k++)
            ids[k] = ds.categories[k].id, names[k] = ds.categories[k].name;
        if (rc == 0) rc = det_model_config_set_classes(&cfg, ds.num_classes, ids, names);
        free(ids), free(names);
        if (rc == 0 && (rc = det_model_config_validate(&cfg))) {
            exit_code = cli_error(cmd, CLI_EXIT_USAGE, "%s", nd_last_error());
            goto done;
        }
        if (rc == 0) rc = det_model_new(&cfg, (uint64_t)seed, &m);
        if (rc) goto fail;
        /* --backbone (which may also set the architecture) first, --init after it: a warm start
         * given both keeps the detector's own trained backbone, not the classifier's. */
        if (backbone) {
            int64_t n = 0;
            if ((rc = det_model_load_backbone(m, backbone, &n))) goto fail;
            printf("backbone: %lld tensors from %s\n", (long long)n, backbone);
        }
        if (init) {
            if ((rc = det_model_load_weights(m, init, NULL))) goto fail;
            printf("init: weights from %s (backbone included)\n", init);
        }
    }
    const det_model_config *c = det_model_cfg(m);
    char arch_text[160];
    if (c->backbone == DET_BACKBONE_CONVNET)
        snprintf(arch_text, sizeof arch_text, "convnet width %d", c->conv_width);
    else
        snprintf(arch_text, sizeof arch_text, "NASNet %s %d @ F=%d", c->genotype.name[0] ? c->genotype.name : "genotype",
                 c->nas_n, c->nas_f);
    printf("train-det: layout %s, %s, %d classes, input %d/%d, %lld parameters\n", det_layout_name(c->layout), arch_text,
           c->num_classes, c->min_size, c->max_size, (long long)det_model_num_params(m));
    fflush(stdout);
    det_train_opts o;
    det_train_opts_default(&o);
    o.train_ann = tr_ann, o.train_dir = tr_dir, o.val_ann = va_ann, o.val_dir = va_dir, o.out_dir = out;
    o.epochs = (int32_t)epochs, o.batch = (int32_t)batch, o.lr = lr, o.momentum = momentum;
    o.weight_decay = wd, o.clip_norm = clip, o.warmup_steps = warmup, o.seed = (uint64_t)seed;
    o.threads = (int32_t)threads, o.loader_threads = (int32_t)loader_threads, o.flip = !no_flip;
    o.resume = resuming, o.max_steps = max_steps, o.val_max_images = val_max, o.time_limit_s = time_limit * 60.0;
    o.log_every = (int32_t)(log_every > 0 ? log_every : 1);
    o.checkpoint_every = ckpt_every;
    o.adam = strcmp(optim, "adam") == 0;
    if (train_sizes && (rc = set_train_sizes(&o, c, train_sizes))) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "%s", nd_last_error());
        goto done;
    }
    o.progress = dist_rank() == 0 ? stdout : NULL;
    char rank_device[32];
    device = dist_pick_device(device, rank_device, sizeof rank_device); /* one GPU per rank under mpirun */
    if ((rc = nn_params_to_device(det_model_params(m), device))) goto fail;
    dist_grad_sync *gs = NULL;
    if (dist_size() > 1) {
        /* Data-parallel: the same weights everywhere, this rank's share, averaged gradients. */
        char devices[1024];
        if ((rc = dist_bcast_params(det_model_params(m), 0)) || (rc = dist_grad_sync_new(det_model_params(m), &gs)) ||
            (rc = dist_describe_devices(device, devices, sizeof devices))) {
            dist_grad_sync_free(gs);
            goto fail;
        }
        if (dist_rank() == 0) {
            printf("train-det: data-parallel over %d ranks on %s; gradients: %s\n", dist_size(), devices,
                   dist_grad_sync_method(gs));
            fflush(stdout);
        }
        o.shard_rank = dist_rank(), o.shard_count = dist_size();
        o.grad_sync = dist_grad_sync_cb, o.grad_sync_user = gs;
        o.no_writes = dist_rank() != 0;
    }
    rc = det_train_run(m, &o);
    if (gs && dist_rank() == 0) {
        int64_t calls = 0;
        double sec = dist_grad_sync_seconds(gs, &calls);
        printf("train-det: data-parallel over %d ranks: %lld gradient floats per step, allreduce %.2f ms per step\n",
               dist_size(), (long long)dist_grad_sync_numel(gs), calls ? 1e3 * sec / (double)calls : 0.0);
    }
    dist_grad_sync_free(gs);
    if (rc == ND_ERR_INTERRUPTED) {
        if (dist_rank() == 0) printf("train-det: %s\n", nd_last_error());
        rc = ND_OK;
    }
    if (rc) goto fail;
    if (dist_rank() == 0) printf("train-det: wrote %s/model.safetensors\n", out);
    goto done;
fail:
    exit_code = cli_fail(cmd);
done:
    free(tr_ann), free(tr_dir), free(va_ann), free(va_dir);
    coco_dataset_free(&ds);
    det_model_free(m);
    det_model_config_free(&cfg);
    nd_args_free(&args);
    return exit_code;
}
