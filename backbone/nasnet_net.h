/* backbone, section 2: NASNet networks built from a genotype, their cost, and training.
 *
 * A network is a stem, then cells, then a head:
 *   CIFAR stem     l1_stem_3x3 (3x3 conv, F * stem_multiplier filters, stride 1) + BN;
 *   ImageNet stem  conv0 (3x3 conv, 32 * stem_multiplier filters, stride 2, VALID) + BN, then
 *                  two reduction cells cell_stem_0 / cell_stem_1 (filter scaling 1/4, 1/2);
 *   cells          (R + 1) stacks of N normal cells with R reduction cells between them
 *                  (R = num_reduction_layers, 2 for every preset); filters double at each
 *                  reduction; TF-slim's _build_nasnet_base wiring, skip_reduction_layer_input
 *                  included;
 *   head           ReLU -> global average pool -> dropout -> FC (final_layer/FC);
 *   aux head       (training only, when enabled) after the last normal cell before the 2nd
 *                  reduction: ReLU -> avg-pool 5x5/3 VALID -> 1x1 conv 128 -> BN -> ReLU ->
 *                  conv over the remaining map (768) -> BN -> ReLU -> FC.
 * Images are NCHW float32, normally scaled to [-1, 1].
 *
 * Cells are numbered in build order over the whole network, ImageNet stem cells included:
 * nas_net_cell_info() gives each one's kind, TF-slim name, output width, stride and size.
 *
 * Parameter names are TF-slim's variable names (so a TF checkpoint maps 1:1, see
 * nas_import), joined with '/', e.g.
 *   conv0/weights                           [32,3,3,3]   (all conv weights OIHW)
 *   conv0_bn/gamma, beta, moving_mean, moving_variance   (the last two are buffers)
 *   cell_stem_0/1x1/weights, cell_stem_0/beginning_bn/gamma, ...
 *   cell_4/prev_1x1/weights, cell_4/prev_bn/...                (1x1 matching of h_{i-1})
 *   reduction_cell_0/path1_conv/weights, .../path2_conv/weights, .../final_path_bn/...
 *   cell_0/comb_iter_0/left/separable_5x5_1/depthwise_weights   [C,1,5,5]
 *   cell_0/comb_iter_0/left/separable_5x5_1/pointwise_weights   [F,C,1,1]
 *   cell_0/comb_iter_0/left/bn_sep_5x5_1/gamma, ... separable_5x5_2, bn_sep_5x5_2
 *   cell_0/comb_iter_2/right/1x1/weights, .../bn_1/...          (identity/pool projections)
 *   cell_0/comb_iter_1/left/conv_3x3/weights, .../bn_conv_3x3/  (ops TF-slim lacks:
 *      conv_1x1, conv_3x3, dil_conv_3x3 (weights + bn_dil_conv_3x3), conv_1x7_7x1
 *      (conv_1x7/weights, conv_7x1/weights, bn_conv_1x7_7x1), likewise conv_1x3_3x1)
 *   cell_0/comb_iter_3/combine_norm/gamma, beta  (add_layernorm / add_instancenorm blocks)
 *   cell_0/reduction_3/path1_conv/...      (an output state resized to the last state's shape;
 *                                           stride 1: path_conv/weights, path_bn/...)
 *   cell_0/input_2/...                     (NASNet-B's h_{i-2}, h_{i-3}, as prev_* for h_{i-1})
 *   aux_logits/proj/weights, aux_logits/aux_bn0/..., aux_logits/Conv/weights,
 *   aux_logits/aux_bn1/..., aux_logits/FC/weights [K,768], aux_logits/FC/biases
 *   final_layer/FC/weights [K,C], final_layer/FC/biases [K]
 * Normal cells are cell_0, cell_1, ... (numbered over all stacks), reduction cells
 * reduction_cell_0, reduction_cell_1. With a prefix (nas_net_new) every name becomes
 * "<prefix>/<name>". FC biases and BN gamma/beta carry NN_PARAM_NO_DECAY; moving statistics
 * are NN_PARAM_BUFFER. The names and their order are stable: checkpoints rely on them.
 *
 * Errors: functions return 0 or a negative nd_status with a message (nd_last_error()). */
#ifndef NAS_NASNET_NET_H
#define NAS_NASNET_NET_H

#include <stddef.h>
#include <stdint.h>

#include "backbone/nasnet.h"
#include "coco/coco.h"
#include "common/progress.h"
#include "nn/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * Section 2: network configurations
 * ====================================================================================== */

typedef enum nas_stem { NAS_STEM_CIFAR = 0, NAS_STEM_IMAGENET = 1 } nas_stem;

/* Initial convolution weights of a fresh network (loaded weights replace them either way).
 * TF-slim: variance scaling, factor 2, FAN_OUT, truncated normal (the reference, for the
 * paper's SGD recipe). Torch: PyTorch's default, uniform with variance 1/(3 fan_in), 2.5-5
 * times smaller; behind batch norm the scale of a weight only sets how far Adam's fixed-size
 * steps move it, so short Adam runs learn much faster from it (README, issue #5). Stored in
 * the config as "conv_init": "tf-slim" | "torch" (absent in older checkpoints: tf-slim). */
typedef enum nas_conv_init { NAS_INIT_TF_SLIM = 0, NAS_INIT_TORCH = 1 } nas_conv_init;
/* "tf-slim" | "torch" -> value; ND_ERR_INVALID naming the choices. */
int nas_conv_init_parse(const char *name, nas_conv_init *out);
const char *nas_conv_init_name(nas_conv_init init);

/* A network. Field names follow TF-slim's HParams. Plain data: copy by assignment. */
typedef struct nas_net_config {
    nas_genotype genotype;
    nas_stem stem;
    int32_t num_cells;                /* N: normal cells per stack (TF-slim num_cells / 3) */
    int32_t num_conv_filters;         /* F: filters of the first stack's cells */
    double stem_multiplier;           /* CIFAR: F * m stem filters; ImageNet: 32 * m */
    double filter_scaling_rate;       /* 2.0 */
    int32_t num_reduction_layers;     /* R, 0..4 (2 in every preset) */
    int32_t num_classes;              /* K >= 1 */
    int32_t image_size;               /* input side the network is built for (aux head size) */
    int32_t in_channels;              /* 3 */
    int32_t use_aux_head;             /* 1: aux head built and used in training */
    int32_t skip_reduction_layer_input; /* 1 for Large */
    float bn_eps;                     /* CIFAR 1e-5, ImageNet 1e-3 */
    float bn_momentum;                /* 1 - TF decay: CIFAR 0.1, ImageNet 0.0003 */
    double drop_path_keep_prob;       /* 0.6 CIFAR, 1.0 Mobile, 0.7 Large (1: off) */
    double dense_dropout_keep_prob;   /* 1.0 CIFAR, 0.5 ImageNet */
    int64_t total_training_steps;     /* drop-path schedule length (nas_train sets it to the
                                         run's steps unless told otherwise) */
    double weight_decay;              /* TF-slim's L2: CIFAR 5e-4, Mobile 4e-5, Large 5e-5 */
    nas_conv_init conv_init;          /* how a fresh network's convolutions start (TF-slim's) */
} nas_net_config;

/* Presets, TF-slim's configs with the built-in NASNet-A genotype:
 *   "nasnet-a-cifar"        6 @ 768,  F=32,  32 px, 10 classes  (cifar_config)
 *   "nasnet-a-cifar-large"  7 @ 2304, F=96,  32 px, 10 classes  (cifar_config, N=7, F=96)
 *   "nasnet-a-mobile"       4 @ 1056, F=44, 224 px, 1000 classes (mobile_imagenet_config)
 *   "nasnet-a-large"        6 @ 4032, F=168, 331 px, 1000 classes (large_imagenet_config)
 * Returns 0 or ND_ERR_NOT_FOUND listing the names. */
int nas_net_preset(const char *name, nas_net_config *cfg);
const char *const *nas_net_preset_names(void);   /* NULL-terminated */

/* Sizes, ranges, genotype validity, and that every cell keeps a spatial size >= 1 (and the
 * aux head's pooling window fits, when enabled). ND_ERR_INVALID naming the field. */
int nas_net_config_validate(const nas_net_config *cfg);

/* One-line JSON of the whole config (genotype included) in a malloc'ed string (caller frees);
 * stored in checkpoint metadata under "nas.config" so a checkpoint rebuilds its network. */
int nas_net_config_to_json(const nas_net_config *cfg, char **text);
/* Parse that JSON (unknown keys rejected) and validate. ND_ERR_FORMAT / ND_ERR_INVALID. */
int nas_net_config_from_json(const char *text, nas_net_config *cfg);

/* A config from command-line style choices: a preset (arch; NULL: "nasnet-a-cifar", or
 * "nasnet-a-mobile" when stem is "imagenet"), a genotype (NULL: the preset's; else a built-in
 * name or a JSON file), then overrides where > 0 / non-NULL: N, F, stem ("cifar" |
 * "imagenet": only the stem changes), input size, classes; aux: -1 keep, 0 off, 1 on.
 * Validates the result. Errors name the option. */
typedef struct nas_net_choice {
    const char *arch, *genotype, *stem;
    int32_t N, F, input, classes;
    int32_t aux;
} nas_net_choice;
int nas_net_config_choose(const nas_net_choice *ch, nas_net_config *cfg);

/* "N @ P" (e.g. "6 @ 768") into buf: N normal cells per stack, P penultimate width. */
const char *nas_net_config_label(const nas_net_config *cfg, char *buf, size_t size);

/* ======================================================================================
 * Section 3: cost (no parameters allocated)
 * ====================================================================================== */

typedef struct nas_cost_layer {
    char name[128];   /* conv: the weight's name ("cell_0/comb_iter_0/left/separable_5x5_1/
                         depthwise_weights"); BN and FC: their scope ("final_layer/FC") */
    int64_t params;   /* trainable elements (conv/FC weights and biases, BN gamma/beta) */
    int64_t macs;     /* multiply-adds for one image (conv and FC only) */
    int32_t aux;      /* 1: belongs to the aux head */
} nas_cost_layer;

typedef struct nas_cost {
    int64_t params, macs;           /* without the aux head unless with_aux */
    int64_t aux_params, aux_macs;   /* the aux head alone (0 when the config has none) */
    int64_t n_layers;
    nas_cost_layer *layers;         /* n_layers entries (aux ones included always); malloc'ed */
} nas_cost;

/* Trainable parameters and conv/FC multiply-adds at cfg->image_size, exactly as TF-slim's
 * graph (e.g. Mobile 224/1000: 5,289,978 and 563,638,816). Fails on an invalid config. */
int nas_net_cost(const nas_net_config *cfg, int with_aux, nas_cost *out);
void nas_cost_free(nas_cost *c);   /* NULL and zeroed structs are fine */

/* ======================================================================================
 * Section 4: networks
 * ====================================================================================== */

typedef struct nas_net nas_net;

/* Build the network's parameters. ps: a store to add them to (borrowed; the caller frees it
 * after nas_net_free), or NULL for a store owned by the network. prefix: NULL/"" or a scope
 * put in front of every name ("<prefix>/..."), for a store shared with a detector head.
 * Weights are drawn from `seed` (TF-slim's variance_scaling FAN_OUT, factor 2, truncated
 * normal; BN gamma 1, beta 0, moving mean 0, variance 1; FC biases 0): the same seed gives the
 * same weights. Fails (ND_ERR_INVALID) on an invalid config; *out is then NULL. */
int nas_net_new(const nas_net_config *cfg, nn_params *ps, const char *prefix, uint64_t seed, nas_net **out);
void nas_net_free(nas_net *net);   /* NULL is fine; frees the store only when it owns it */

nn_params *nas_net_params(const nas_net *net);
const nas_net_config *nas_net_get_config(const nas_net *net);
/* Trainable elements in this network's parameters (aux head included when built). */
int64_t nas_net_num_params(const nas_net *net, int with_aux);

/* ---- cells ---- */

typedef struct nas_cell_info {
    char name[32];        /* TF-slim scope: "cell_stem_0", "reduction_cell_1", "cell_7" */
    nas_cell_kind kind;
    int32_t is_stem;      /* 1 for the ImageNet stem cells */
    int32_t cell_num;     /* TF-slim's true_cell_num: position for drop path (stem cells 0, 1) */
    int32_t filters;      /* filter_size = int(F * filter_scaling) */
    int32_t channels;     /* output width */
    int32_t stride;       /* output stride relative to the input image (CIFAR 1,2,4; ImageNet
                             stem cells 4, 8, then 8, 16, 32) */
    int32_t height, width;/* output size at cfg->image_size */
} nas_cell_info;

int nas_net_num_cells(const nas_net *net);
/* The cells of a config without building parameters: fills info[0..min(n, max)) and returns
 * n, the number of cells, or a negative status for an invalid config. */
int nas_net_config_cells(const nas_net_config *cfg, nas_cell_info *info, int max);
/* Info of cell i in [0, nas_net_num_cells); ND_ERR_INVALID otherwise. */
int nas_net_cell_info(const nas_net *net, int i, nas_cell_info *info);
/* Index of the r-th reduction cell between stacks (r in [0, R), stem cells excluded), or -1.
 * The cell before it (index - 1) is the last normal cell of stack r: for Large, reduction 1 is
 * cell 15 and cells 13, 14 are TF-slim's Cell_10, Cell_11 (the detector's RPN features). */
int nas_net_reduction_cell(const nas_net *net, int r);
/* The drop-path keep probability of cell i's ops at global step `step` in training (1 when
 * drop path is off); TF-slim's schedule, see nas_net_forward. -1 for a bad index. */
double nas_net_drop_path_keep(const nas_net *net, int i, int64_t step);
/* Channels and spatial size of the stem output (before any cell) at cfg->image_size. */
void nas_net_stem_info(const nas_net *net, int32_t *channels, int32_t *height, int32_t *width);

/* ---- forward ----
 * x: [B, in_channels, H, W]. H and W may differ from cfg->image_size (a detector feeds larger
 * images); the aux head then runs only when its pooled map keeps the built size.
 * `step` is the global training step for ScheduledDropPath (TF-slim "v3": keep = 1 -
 * (cell_num+1)/total_num_cells * min(1, step/total_training_steps) * (1 - keep_prob), every op
 * output except identity dropped per example, kept ones divided by keep); drop path, dropout
 * and BN batch statistics act only when the ctx is in training mode. All results live in ctx.
 * Failures (ND_ERR_INVALID): x of the wrong rank/channels, a map that shrinks below 1 pixel,
 * a cell index out of range. */
typedef struct nas_net_output {
    nn_tensor *logits;     /* [B, K] */
    nn_tensor *aux_logits; /* [B, K] in training with the aux head; else NULL */
    nn_tensor *features;   /* [B, C, h, w]: the last cell's output (before the head's ReLU) */
} nas_net_output;
int nas_net_forward(nas_net *net, nn_ctx *ctx, nn_tensor *x, int64_t step, nas_net_output *out);

/* Stem and cells 0..last_cell (last_cell = -1: the stem only). *cur = cell last_cell's
 * output, *prev = the output before it (the two states the next cell reads; *prev is NULL
 * right after a CIFAR stem, where TF-slim's cell_outputs[-2] is None). No aux head. */
int nas_net_forward_to(nas_net *net, nn_ctx *ctx, nn_tensor *x, int last_cell, int64_t step,
                       nn_tensor **cur, nn_tensor **prev);
/* Stem and cells 0..last_cell (>= 0), keeping every cell's output: cells[i] for i in
 * 0..last_cell (for features taken from several depths). No aux head. */
int nas_net_forward_cells(nas_net *net, nn_ctx *ctx, nn_tensor *x, int last_cell, int64_t step,
                          nn_tensor **cells);
/* Cells first_cell..last from the states (cur, prev) that cell first_cell reads (prev may be
 * NULL where forward_to gives NULL); *out = the last cell's output (before the head). Batch
 * sizes of cur/prev are free (ROI crops). ND_ERR_UNSUPPORTED when a cell from first_cell on
 * needs an older state than prev (skip_reduction_layer_input right after a reduction cell, or
 * a 4-input genotype): start at a reduction cell or a cell not right after one. */
int nas_net_forward_from(nas_net *net, nn_ctx *ctx, int first_cell, nn_tensor *cur, nn_tensor *prev,
                         int64_t step, nn_tensor **out);
/* The classifier head on a last-cell output: ReLU -> global average pool -> dropout -> FC. */
nn_tensor *nas_net_head(nas_net *net, nn_ctx *ctx, nn_tensor *features);

/* ======================================================================================
 * Section 5: training and evaluation (used by `nasdet train` and by the search's children)
 * ====================================================================================== */

/* Samples [first, first + count) of a source (count 0: to the end). */
typedef struct nas_data {
    const coco_cls_source *src; /* borrowed */
    int64_t first, count;
} nas_data;

typedef struct nas_epoch_stats {
    int64_t epoch;        /* 0-based, the epoch just finished */
    int64_t epochs;       /* planned epochs */
    int64_t step;         /* optimizer steps done so far */
    double train_loss;    /* mean of the total loss (main + aux_weight * aux) over the epoch */
    double train_acc;     /* training accuracy (on augmented batches, drop path on) */
    double lr;            /* learning rate of the epoch's last step */
    double seconds;       /* wall time of this epoch */
    double eval_acc;      /* NaN when not evaluated this epoch */
    double eval_loss;     /* NaN when not evaluated */
} nas_epoch_stats;

/* Called after every epoch (and after its checkpoint is written). Non-zero stops training
 * (nas_train then returns ND_ERR_INTERRUPTED after the final evaluation is skipped). */
typedef int (*nas_epoch_fn)(const nas_epoch_stats *stats, void *user);

typedef struct nas_train_opts {
    int64_t epochs;          /* epochs to train (>= 1), ignored when steps > 0 */
    int64_t steps;           /* > 0: train this many steps instead (last epoch cut short) */
    int32_t batch_size;      /* 32 */
    nn_optim_kind optimizer; /* NN_OPTIM_SGD (momentum 0.9, not Nesterov), NN_OPTIM_RMSPROP or NN_OPTIM_ADAM
                                (betas 0.9, 0.999, eps 1e-8; weight decay 0 unless set) */
    double lr;               /* 0.025: cosine from lr to lr_min over the run */
    double lr_min;           /* 0 */
    double momentum;         /* 0.9 */
    int32_t nesterov;        /* 0 */
    double rmsprop_decay;    /* 0.9 */
    double rmsprop_eps;      /* 1.0 */
    double weight_decay;     /* < 0: the config's (CIFAR 5e-4) */
    double clip_norm;        /* global gradient norm clip, 5; 0: off */
    double aux_weight;       /* 0.4 (used when the config has an aux head) */
    double label_smoothing;  /* 0 */
    double drop_path_keep;   /* < 0: the config's keep_prob; 1: off */
    int64_t drop_path_total_steps; /* 0: the run's total steps */
    int32_t pad;             /* pad-and-crop augmentation (4 for CIFAR); 0: off */
    int32_t flip;            /* horizontal flips (not for digits) */
    int32_t cutout;          /* cutout square side (16 for CIFAR); 0: off */
    double ema_decay;        /* > 0: keep an EMA of the weights and evaluate with it */
    uint64_t seed;           /* weights are not drawn here: data order, augmentation, masks */
    int32_t loader_threads;  /* background batch workers (1) */
    int32_t eval_every;      /* evaluate `eval` every k epochs (0: only at the end) */
    int32_t eval_batch;      /* 100 */
    const char *checkpoint;  /* NULL, or a file written atomically after every epoch (weights,
                                optimizer moments, EMA, config, epoch, step) */
    int32_t resume;          /* 1: when `checkpoint` exists, load it and continue after its
                                epoch: the final weights equal an uninterrupted run's */
    nd_progress *progress;   /* optional; counts images; the extra text is "loss L acc A" */
    nas_epoch_fn on_epoch;   /* optional */
    void *user;
    const volatile int *stop;/* optional: when *stop becomes non-zero, stop after the step,
                                write the checkpoint of the last finished epoch is kept */
    /* Data-parallel training (dist/, `mpirun nasdet train`): shard_count replicas draw the same
     * global batches of batch_size images (batch_size % shard_count == 0); this one trains on
     * rows [shard_rank * b, (shard_rank + 1) * b) of each, b = batch_size / shard_count.
     * grad_sync (may be NULL) is called after the backward pass and before clipping, to average
     * the gradients across replicas (dist_grad_sync_cb). no_checkpoint_write: read
     * `checkpoint` on resume but never write it (replicas other than rank 0). Loss and accuracy
     * statistics are this replica's shard's. Defaults 0, 0 (0 or 1 replicas: the whole batch). */
    int32_t shard_rank, shard_count;
    int (*grad_sync)(nn_params *ps, void *user);
    void *grad_sync_user;
    int32_t no_checkpoint_write;
} nas_train_opts;

/* The paper's CIFAR defaults (above). */
void nas_train_opts_default(nas_train_opts *o);

typedef struct nas_eval_result {
    int64_t count;   /* images evaluated */
    int64_t correct; /* top-1 hits */
    double accuracy; /* correct / count */
    double loss;     /* mean cross-entropy (no smoothing) */
} nas_eval_result;

typedef struct nas_train_result {
    int64_t epochs_done;   /* epochs finished (resumed ones included) */
    int64_t steps;         /* optimizer steps done */
    double train_loss, train_acc; /* last epoch */
    double seconds;        /* this call's wall time */
    double images_per_sec; /* this call's training throughput */
    nas_eval_result eval;  /* final evaluation on `eval` (count 0 when eval is NULL) */
} nas_train_result;

/* Train `net` on `train` and evaluate on `eval` (may be NULL). Labels must be < num_classes.
 * Returns 0; ND_ERR_NUMERIC when the loss or gradient norm stops being finite ("diverged at
 * step S"), leaving the network as it was at that step (the caller's process goes on);
 * ND_ERR_INTERRUPTED when stopped; ND_ERR_INVALID for bad options or data; ND_ERR_IO /
 * ND_ERR_FORMAT for checkpoint trouble (a checkpoint of another network is refused). */
int nas_train(nas_net *net, const nas_data *train, const nas_data *eval, const nas_train_opts *opts,
              nas_train_result *res);

/* Top-1 accuracy and mean loss of `net` (evaluation mode: running BN statistics) on `data`,
 * `batch` images at a time; uses the EMA weights when the store has them and use_ema != 0. */
int nas_evaluate(nas_net *net, const nas_data *data, int32_t batch, int use_ema, nas_eval_result *res);

/* Load a checkpoint written by nas_train (or nas_import / nas_net_save) into a new network:
 * the config comes from its "nas.config" metadata. *out is the caller's (nas_net_free). */
int nas_net_load(const char *path, nas_net **out);
/* Save weights (no optimizer state) with the config in the metadata, atomically. */
int nas_net_save(const nas_net *net, const char *path);

/* ======================================================================================
 * Section 6: import of pretrained weights
 * ====================================================================================== */

typedef enum nas_import_from {
    NAS_IMPORT_TIMM = 0,     /* PyTorch state dict with timm / Cadene pretrainedmodels names */
    NAS_IMPORT_TF_SLIM = 1   /* TF-slim variable names and TF layouts (HWIO, [in,out] FC) */
} nas_import_from;

/* Read the safetensors file `in` (float32 tensors), map every tensor onto `net`'s parameters
 * (a name table; shapes checked; every tensor of the file used, every parameter found except
 * the aux head when the file has none), and write the values into the store. 1001-class
 * files (TF's background class) load into a 1001-class net. Errors name the missing, extra or
 * mis-shaped tensor. The store is unchanged on failure. */
int nas_import(nas_net *net, const char *in, nas_import_from from);

#ifdef __cplusplus
}
#endif

#endif
