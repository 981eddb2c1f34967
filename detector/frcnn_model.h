/* detector, part two: the Faster R-CNN model on NASNet features (RPN, ROI crops, box head,
 * losses, training and inference). Built on nn/ (the engine) and the geometry of frcnn.h.
 *
 * Layouts (det_model_config.layout):
 *   DET_LAYOUT_C4      one stride-16 feature map (or stride 8, the last cell before the 1st
 *                      reduction, when anchors.stride is 8); the RPN reads it; each proposal is pooled with
 *                      ROIAlign (roi_size x roi_size, sampling 2) and goes through two FC layers
 *                      of head_dim, then an FC class head (K + 1 logits) and an FC box head
 *                      (4 (K + 1) class-specific deltas). Small enough to train on a CPU.
 *   DET_LAYOUT_NASNET  the paper's (TF object detection's faster_rcnn_nas): the RPN reads the
 *                      concat of the last two cells before the 2nd reduction (stride 16); each
 *                      proposal is cropped (crop_and_resize, roi_size x roi_size, 17 by default)
 *                      from both maps; the crops run through the rest of the NASNet (the 2nd
 *                      reduction cell and the last stack) as the box classifier; ReLU, global
 *                      average pool, FC class and box heads. Needs a NASNet backbone.
 * Backbones (det_model_config.backbone):
 *   DET_BACKBONE_NASNET   any genotype, ImageNet skeleton N @ F (backbone/nasnet_net.h).
 *   DET_BACKBONE_CONVNET  a plain VGG-style stack (4 stages of two ReLU-BN 3x3 convs, the first
 *                         of each with stride 2; conv_width doubled per stage) for fast tests and
 *                         experiments; c4 layout only.
 *
 * Coordinates: boxes are x1, y1, x2, y2 in pixels of the network input (the resized, padded
 * image), as in frcnn.h. Images are NCHW floats normalised to [-1, 1] ((p / 255 - 0.5) / 0.5).
 * Classes: the model predicts K + 1 classes, 0 = background; class index k (0..K-1) of the
 * detector is label k + 1 of the heads and COCO category config.category_ids[k].
 *
 * Files: a model file is a safetensors checkpoint (nn_checkpoint_save) whose metadata key
 * "det.config" holds det_model_config as JSON (layout, backbone genotype JSON, N, F, input
 * sizes, anchors, thresholds, class count, COCO category ids and class names), so that a model
 * file is all `nasdet detect` needs.
 *
 * Errors follow frcnn.h: 0 or a negative nd_status with nd_last_error(); bad shapes from our own
 * code abort through NN_ASSERT. */
#ifndef DET_FRCNN_MODEL_H
#define DET_FRCNN_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backbone/nasnet.h"
#include "detector/frcnn.h"
#include "nn/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration ------------------------------------------------------------------------ */

enum { DET_MAX_ROI_FUSE = 2, DET_MAX_TEST_SIZES = 4, DET_MAX_TRAIN_SIZES = 8 };
/* IoU above which boxes of one class from different test passes are fused (the WBF paper's 0.55;
 * on the digits-det dev set 0.5-0.6 give the same AP50). */
#define DET_FUSE_IOU 0.55f

typedef enum det_layout { DET_LAYOUT_C4 = 0, DET_LAYOUT_NASNET = 1 } det_layout;
typedef enum det_backbone_kind { DET_BACKBONE_NASNET = 0, DET_BACKBONE_CONVNET = 1 } det_backbone_kind;

/* "c4" / "nasnet"; "convnet" / "nasnet". Parsers return -1 for an unknown name. */
const char *det_layout_name(det_layout l);
int det_layout_parse(const char *name);
const char *det_backbone_name(det_backbone_kind b);
int det_backbone_parse(const char *name);

/* Test-time passes of det_model_detect_image beyond the base input (min_size). */
typedef struct det_test_passes {
    int32_t n_sizes;                   /* extra passes (0..4) */
    int32_t sizes[DET_MAX_TEST_SIZES]; /* short side of each (the long-side cap max_size scaled
                                          alike), ascending, above min_size */
    /* Merge by NMS (fuse_max 0): the base pass keeps every object, an extra one only those
     * smaller than `small` (square root of the area, in pixels of the base input): the small
     * ones that the base pass sees on too few feature cells. */
    float small;
    /* Merge by weighted box fusion (fuse_max > 0, det_fuse_boxes): the base pass is trusted for
     * objects of at least fuse_min pixels of its input, each extra pass for those under fuse_max
     * pixels of its own input (larger ones outgrow the anchors and receptive field it was
     * trained with); `small` is unused. */
    float fuse_min, fuse_max;
} det_test_passes;

typedef struct det_model_config {
    det_layout layout;
    det_backbone_kind backbone;
    nas_genotype genotype;     /* NASNet backbones */
    int32_t nas_n, nas_f;      /* N normal cells per stack, F filters (N @ 24F for NASNet-A) */
    int32_t stem_filters;      /* NASNet ImageNet stem: 3x3 stride-2 conv width (32 x 3 in the
                                  paper's Large, 32 in Mobile) */
    int32_t skip_reduction_input; /* NASNet: TF-slim's skip_reduction_layer_input (1: Large) */
    int32_t conv_width;        /* convnet: width of the first stage */
    float bn_momentum, bn_eps; /* backbone batch norm (PyTorch-style momentum) */

    int32_t min_size, max_size;/* resize: short side to min_size unless long side > max_size */
    int32_t size_divisor;      /* pad height and width to a multiple of this (>= 16) */

    det_anchor_params anchors; /* stride = the feature stride: 16, or 8 (c4 on a NASNet: the
                                  features are the last cell before the 1st reduction) */
    int32_t rpn_channels;      /* RPN 3x3 conv width (512 in the paper) */
    det_match_params rpn_match;
    int64_t rpn_batch;         /* anchors sampled per image (256) */
    float rpn_pos_fraction;    /* 0.5 */
    det_proposal_params prop_train, prop_test; /* pre/post NMS top-k, NMS, coder */

    int32_t roi_size;          /* ROIAlign output (c4: 7) or crop size (nasnet: 17) */
    int32_t head_dim;          /* c4: width of the two FC layers */
    int32_t n_roi_fuse;        /* c4 on a NASNet: deeper cells that join the ROI features (0..2) */
    int32_t roi_fuse[DET_MAX_ROI_FUSE]; /* their strides (16: the last cell before the 2nd
                                  reduction, 32: the last cell), ascending, above the feature
                                  stride; each goes through ReLU and a 1x1 conv to the feature
                                  width, is pooled like the feature map, and added to its ROI
                                  features, so the box head sees the classifier's deeper cells */
    det_match_params roi_match;
    int64_t roi_batch;         /* proposals sampled per image (512) */
    float roi_pos_fraction;    /* 0.25 */
    float rpn_beta, roi_beta;  /* smooth-L1 beta (1/9) */
    det_detect_params detect;  /* test: score threshold, per-class NMS, detections per image */
    det_test_passes test_passes; /* extra test-time input sizes and how their objects merge */

    int32_t num_classes;       /* K, without background */
    int64_t *category_ids;     /* [K] COCO category id of class k; owned */
    char **class_names;        /* [K] owned strings */
} det_model_config;

/* Paper / torchvision defaults for everything (c4 layout, NASNet-A 4 @ 44 backbone, input
 * 800/1333, the paper's anchors, RPN 512, ROI 7x7 with two FC 1024) and no classes.
 * Release with det_model_config_free. */
void det_model_config_default(det_model_config *c);
void det_model_config_free(det_model_config *c);     /* NULL and zeroed structs are fine */
/* Deep copy (dst must be uninitialised or freed). ND_ERR_NOMEM. */
int det_model_config_copy(det_model_config *dst, const det_model_config *src);
/* Replace the class table with copies of ids[k], names[k] (names may be NULL: "class <id>").
 * ND_ERR_INVALID on k < 1 or duplicate ids. */
int det_model_config_set_classes(det_model_config *c, int32_t k, const int64_t *ids,
                                 const char *const *names);
/* Check ranges and combinations (nasnet layout needs a NASNet backbone; stride 16; ...).
 * ND_ERR_INVALID naming the field. */
int det_model_config_validate(const det_model_config *c);
/* One-line JSON of the whole config, malloc'ed (caller frees). */
int det_model_config_to_json(const det_model_config *c, char **text);
/* Parse what det_model_config_to_json wrote into a fresh *c (free with
 * det_model_config_free); `name` opens messages. ND_ERR_FORMAT naming the key on a missing or
 * mistyped field; then validated. */
int det_model_config_from_json(const char *text, const char *name, det_model_config *c);
/* "512,640" -> c->test_passes.sizes (not validated here); "none" clears them (and fusion).
 * ND_ERR_INVALID naming the text on a bad list. */
int det_model_config_parse_test_sizes(det_model_config *c, const char *list);
/* "MIN,MAX" -> c->test_passes.fuse_min, fuse_max (fusion on; not validated here); "none" turns
 * fusion off (NMS merge). ND_ERR_INVALID naming the text on a bad pair. */
int det_model_config_parse_test_fuse(det_model_config *c, const char *pair);
/* Class index of a COCO category id, or -1. */
int32_t det_model_config_class_of(const det_model_config *c, int64_t category_id);

/* ---- the model ---------------------------------------------------------------------------- */

typedef struct det_model det_model;

/* Build the parameters for `cfg` (copied) and initialise them from `seed` (He init for convs
 * and FC layers, N(0, 0.01) for the RPN and class heads, N(0, 0.001) for box deltas).
 * ND_ERR_INVALID for a bad config; ND_ERR_UNSUPPORTED when the backbone cannot be built. */
int det_model_new(const det_model_config *cfg, uint64_t seed, det_model **out);
void det_model_free(det_model *m);                    /* NULL is fine */
const det_model_config *det_model_cfg(const det_model *m);
/* Replace m's test-time settings (test proposal counts, detect thresholds, test passes), which
 * do not change what the weights mean, with those of `c`, another config of the same model.
 * ND_ERR_INVALID (m unchanged) when they do not validate. */
int det_model_set_test_settings(det_model *m, const det_model_config *c);
/* The parameter store (owned by the model): for optimizers and checkpoints. */
nn_params *det_model_params(det_model *m);
/* Number of trainable values. */
int64_t det_model_num_params(const det_model *m);

/* Save weights + "det.config" (+ `extra` metadata, may be NULL) atomically; flags as
 * nn_checkpoint_save (NN_CKPT_OPTIM for resumable training checkpoints). */
int det_model_save(const det_model *m, const char *path, const nn_meta *extra, uint32_t flags);
/* Build a model from a model file alone. meta (may be NULL) receives all metadata (free with
 * nn_meta_free). ND_ERR_IO / ND_ERR_FORMAT naming the file when it is not a detector model. */
int det_model_load(const char *path, det_model **out, nn_meta *meta);
/* Load the same model's weights (and optimizer moments) from `path` into m, for --resume.
 * The file's config must equal m's apart from the test-time settings (test proposal counts,
 * detection thresholds, test sizes), which keep m's. meta as above. */
int det_model_load_weights(det_model *m, const char *path, nn_meta *meta);
/* Initialise the backbone from a classification checkpoint of `nasdet train` (tensors whose
 * names match the backbone's; classifier and aux-head tensors are skipped). *n_loaded receives
 * the number of backbone tensors taken from the file. ND_ERR_FORMAT when none matches. */
int det_model_load_backbone(det_model *m, const char *path, int64_t *n_loaded);

/* ---- batches, losses, detections ---------------------------------------------------------- */

/* One input batch (borrowed arrays). Ground truth is only read by det_model_train_step. */
typedef struct det_batch {
    int32_t n, height, width;     /* height and width multiples of 16 */
    const float *images;          /* [n, 3, height, width], normalised */
    const int32_t *valid_h, *valid_w; /* [n] size of the image inside the padding */
    const int64_t *box_first;     /* [n + 1] image i owns boxes [box_first[i], box_first[i+1]) */
    const float *boxes;           /* [num_boxes, 4] x1 y1 x2 y2, input pixels */
    const int32_t *box_class;     /* [num_boxes] class index 0..K-1 */
    const uint8_t *box_crowd;     /* [num_boxes] 1 for crowd regions (ignored); may be NULL */
} det_batch;

typedef struct det_losses {
    double rpn_cls, rpn_box, roi_cls, roi_box, total;
    int64_t rpn_pos, rpn_neg, roi_pos, roi_neg; /* sampled counts, summed over the batch */
} det_losses;

/* Forward both stages with targets, and run the backward pass: gradients accumulate in the
 * model's parameters (the caller zeroes them, clips, and steps the optimizer). ctx is reset
 * by the caller before; it must be in training mode with gradients on. Sampling draws come
 * from rng. ND_ERR_NUMERIC when a loss is not finite (gradients are then not computed);
 * ND_ERR_INVALID for a box with a class outside 0..K-1 or a bad batch shape. */
int det_model_train_step(det_model *m, nn_ctx *ctx, const det_batch *b, nd_rng *rng,
                         det_losses *out);

/* Detections of one image, in the input's pixel frame. */
typedef struct det_detections {
    int64_t n;
    float *boxes;     /* [n, 4] x1 y1 x2 y2; owned */
    float *scores;    /* [n], decreasing; owned */
    int32_t *classes; /* [n] class index 0..K-1; owned */
} det_detections;
void det_detections_free(det_detections *d);        /* frees the arrays, zeroes; NULL is fine */

/* Inference on a batch (ground truth ignored): out[b->n] receive the detections of each image
 * (score > cfg.detect.score_thresh, per-class NMS, at most max_dets), boxes clipped to the
 * valid area. The ctx is reset here and used without gradients in evaluation mode (its
 * previous modes are restored). ND_ERR_NUMERIC on NaN scores, ND_ERR_NOMEM. */
int det_model_detect(det_model *m, nn_ctx *ctx, const det_batch *b, det_detections *out);

/* One image, in its own pixels: the batch path at the model's input size, plus one pass per
 * cfg.test_passes.sizes, merged as cfg.test_passes says (NMS: per-class NMS at
 * cfg.detect.nms_thresh over the base pass and the extra passes' small objects; fusion:
 * det_fuse_boxes at DET_FUSE_IOU, scores > cfg.detect.score_thresh), then the best
 * cfg.detect.max_dets. Boxes are clipped to the image. `c` may be NULL (the model's config) or
 * another config of the same model whose test fields (test_passes, detect) override the
 * model's. */
int det_model_detect_image(det_model *m, nn_ctx *ctx, const det_model_config *c, const uint8_t *rgb,
                           int32_t width, int32_t height, int32_t channels, det_detections *out);

/* Prepare one RGB (or gray, converted) image as the model's input, as the training loader
 * does (resize keeping the aspect ratio with min/max size, normalise to [-1, 1], pad to the
 * size divisor). *data is malloc'ed [3, *h, *w] (caller frees); *vh, *vw the resized size;
 * *scale = resized / original. */
int det_model_prepare_image(const det_model_config *c, const uint8_t *rgb, int32_t width,
                            int32_t height, int32_t channels, float **data, int32_t *h,
                            int32_t *w, int32_t *vh, int32_t *vw, float *scale);

/* ---- training and evaluation on COCO data ------------------------------------------------- */

typedef struct det_train_opts {
    const char *train_ann, *train_dir; /* COCO instances JSON and its image folder */
    const char *val_ann, *val_dir;     /* may be NULL: no per-epoch evaluation */
    const char *out_dir;               /* RUN/: model.safetensors, checkpoint.safetensors,
                                          log.jsonl, loss.png, eval.json */
    int32_t epochs, batch;
    int32_t adam;                      /* 1: Adam (beta 0.9, 0.999, eps 1e-8) instead of SGD */
    double lr, momentum, weight_decay, clip_norm;
    int64_t warmup_steps;              /* linear warm-up from lr/10 */
    uint64_t seed;
    int32_t threads;                   /* kernel threads (<= 0: all cores) */
    int32_t loader_threads;            /* background image loading workers */
    int32_t flip;                      /* horizontal flip augmentation */
    int32_t train_sizes[DET_MAX_TRAIN_SIZES]; /* multi-scale training: each batch's short side is
                                          one of these (max_size scaled alike); none: min_size */
    int32_t n_train_sizes;
    int32_t resume;                    /* continue RUN/checkpoint.safetensors exactly */
    int64_t max_steps;                 /* stop after this many steps in all (0: no limit) */
    int64_t val_max_images;            /* evaluate on the first N val images (0: all) */
    double time_limit_s;               /* stop (saving) after this many seconds (0: none) */
    int32_t log_every;                 /* steps between log lines (>= 1) */
    int64_t checkpoint_every;          /* also checkpoint every this many steps (0: per epoch) */
    FILE *progress;                    /* progress line destination; NULL: silent */
    /* Data-parallel training (dist/, `mpirun nasdet train-det`): shard_count replicas draw the
     * same global batches; this one trains on rows [n * shard_rank / shard_count, n *
     * (shard_rank + 1) / shard_count) of each (none when a last batch has fewer images than
     * replicas: it then adds zero gradients). grad_sync (may be NULL) averages the gradients
     * across replicas after the backward pass, before clipping. no_writes: write nothing into
     * out_dir (replicas other than rank 0), but read its checkpoint on resume. time_limit_s
     * must be 0 (replicas would stop at different steps); max_steps stops them together. */
    int32_t shard_rank, shard_count;
    int (*grad_sync)(nn_params *ps, void *user);
    void *grad_sync_user;
    int32_t no_writes;
} det_train_opts;

void det_train_opts_default(det_train_opts *o);

/* Train `m` (built by the caller from the config and, optionally, a backbone checkpoint) on
 * COCO data: SGD with momentum, warm-up then cosine decay per step, gradient clipping; per
 * epoch: checkpoint (atomic), COCO mAP on the val set (appended to log.jsonl and eval.json),
 * loss plot. With resume, m's weights, optimizer state, step and rng come from
 * RUN/checkpoint.safetensors. The classes of m's config must match the train set's categories.
 * Returns 0, ND_ERR_INTERRUPTED when stopped by max_steps/time_limit (state saved), or an
 * error with a message naming the file. */
int det_train_run(det_model *m, const det_train_opts *o);

/* COCO bbox evaluation of `m` on a data set: runs det_model_detect over every image (or the
 * first max_images), maps boxes back to original pixels and evaluates with eval/cocoeval.
 * stats[12] receives the 12 COCO numbers (AP, AP50, ...). `progress` may be NULL. */
int det_evaluate_coco(det_model *m, const char *ann_path, const char *img_dir, int64_t max_images,
                      int32_t batch, int32_t loader_threads, FILE *progress, double stats[12]);

#ifdef __cplusplus
}
#endif

#endif
