/* coco: data sets and batches. CIFAR-10/100 binary files, COCO-format detection sets, image
 * folders, a threaded batch loader with augmentation, and the demo data generators that make
 * CIFAR-style and COCO-style sets from real handwritten digits over real photographs.
 *
 * Engine-agnostic: everything here produces plain arrays (uint8 or float, NCHW, row-major);
 * no nn/ type appears. A training loop copies a batch into its own tensors.
 *
 * Errors: functions return 0 or a negative nd_status (common/status.h) and leave a message
 * (nd_last_error()) that names the file, the place in it (record index, JSON path such as
 * `annotations[17].bbox`, image id) and what was expected. No input, however malformed,
 * crashes these functions. Every `_free` accepts NULL and zeroed structs. */
#ifndef COCO_COCO_H
#define COCO_COCO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== CIFAR-10 / CIFAR-100 binary files ================================================= */

enum {
    COCO_CIFAR_SIDE = 32,
    COCO_CIFAR_PIXELS = 3 * 32 * 32 /* 3072 bytes: R plane, then G, then B; rows top first */
};

typedef enum coco_cifar_kind {
    COCO_CIFAR10 = 1, /* record = 1 label byte + 3072 pixel bytes (3073) */
    COCO_CIFAR100 = 2 /* record = coarse label byte + fine label byte + 3072 (3074) */
} coco_cifar_kind;

typedef struct coco_cifar {
    int64_t count;   /* records */
    uint8_t *pixels; /* count x 3 x 32 x 32 (NCHW, uint8) */
    uint8_t *labels; /* count: the CIFAR-10 label, or CIFAR-100's fine label */
    uint8_t *coarse; /* count: CIFAR-100's coarse label; NULL for CIFAR-10 */
} coco_cifar;

/* Parse records from memory and APPEND them to `out` (zero it first for a fresh set).
 * `name` is used in messages only. A length that is not a whole number of records fails with
 * ND_ERR_FORMAT naming `name`, the index of the incomplete record and the record size; a label
 * >= 10 (CIFAR-10) or >= 100 (fine) / >= 20 (coarse) is a format error naming the record.
 * On failure `out` keeps what it had before the call. */
int coco_cifar_parse(const void *data, size_t len, coco_cifar_kind kind, const char *name, coco_cifar *out);
/* Read one file and append its records (as coco_cifar_parse). */
int coco_cifar_read(const char *path, coco_cifar_kind kind, coco_cifar *out);
/* Read a CIFAR-10 folder: data_batch_1.bin .. data_batch_5.bin (train != 0) or
 * test_batch.bin (train == 0), in that order, into a fresh `out` (ND_ERR_NOT_FOUND naming a
 * missing file). Works for the real CIFAR-10 and for `nasdet data digits-cls` output. */
int coco_cifar_read_dir(const char *dir, int train, coco_cifar *out);
void coco_cifar_free(coco_cifar *c);

/* Class names from batches.meta.txt (one a line, blank lines ignored): malloc'ed array of
 * malloc'ed strings; free with coco_names_free. */
int coco_cifar_read_names(const char *dir, char ***names, int32_t *count);
void coco_names_free(char **names, int32_t count);

/* ==== COCO detection data sets ========================================================== */

typedef struct coco_image {
    int64_t id;
    int32_t width, height;
    char *file_name;   /* as in the JSON: relative to the image folder */
    int64_t ann_first; /* this image's annotations are ds->ann_index[ann_first .. +ann_count) */
    int64_t ann_count;
} coco_image;

typedef struct coco_ann {
    int64_t id;
    int64_t image_id;
    int64_t image_index; /* position of image_id in ds->images */
    int64_t category_id; /* COCO category id */
    int32_t class_index; /* contiguous class 0..K-1 (see the category map below) */
    int32_t iscrowd;     /* 0 or 1 */
    double bbox[4];      /* x, y, width, height in pixels of the original image */
    double area;         /* as given; width * height of the box when the JSON has none */
} coco_ann;

typedef struct coco_category {
    int64_t id;
    char *name;
    char *supercategory; /* "" when absent */
} coco_category;

typedef struct coco_dataset {
    int64_t num_images, num_anns;
    int32_t num_classes;        /* K = number of categories */
    coco_image *images;         /* in file order */
    coco_ann *anns;             /* in file order */
    coco_category *categories;  /* sorted by id: categories[k] is class index k */
    int64_t *ann_index;         /* num_anns annotation indices grouped by image (file order
                                   within an image); see coco_image.ann_first */
    int64_t *image_ids_sorted;  /* internal lookup tables (ids sorted with their positions) */
    int64_t *image_pos_sorted;
} coco_dataset;

/* Parse a COCO instances JSON ("images", "annotations", "categories"; other keys such as
 * "info", "licenses" and an annotation's "segmentation" are ignored) from memory into a fresh
 * `out`. `name` (the file name) opens every message. Validated once here:
 *   images[i]: integer id (unique), positive integer width/height, string file_name;
 *   annotations[i]: integer id, image_id of a listed image, category_id of a listed
 *   category, bbox = 4 finite numbers with w, h >= 0, optional number area (>= 0), optional
 *   iscrowd 0/1; categories[i]: integer id (unique), string name.
 * Failures: ND_ERR_FORMAT with "<name>: <json path>: expected ..., got ..." (e.g.
 * "val.json: annotations[17].bbox: expected an array of 4 numbers, got a string"), or
 * ND_ERR_NOT_FOUND for an unknown image_id / category_id naming the id and the annotation. */
int coco_dataset_parse(const char *json, size_t len, const char *name, coco_dataset *out);
int coco_dataset_read(const char *path, coco_dataset *out);
void coco_dataset_free(coco_dataset *ds);

/* Position of an image id in ds->images, or -1. O(log n). */
int64_t coco_dataset_find_image(const coco_dataset *ds, int64_t image_id);
/* The reversible category map: class index k <-> categories[k].id (categories sorted by id).
 * coco_category_to_class returns -1 for an unknown id; coco_class_to_category returns -1 for
 * k outside 0..K-1. */
int32_t coco_category_to_class(const coco_dataset *ds, int64_t category_id);
int64_t coco_class_to_category(const coco_dataset *ds, int32_t class_index);

/* ==== Image folders (ImageNet style: ROOT/<class>/<image>) ================================ */

typedef struct coco_imagefolder {
    int32_t num_classes;
    char **class_names; /* sorted (strcmp); class index = position */
    int64_t count;
    char **paths;       /* full paths, sorted by class then file name */
    int32_t *labels;    /* count */
} coco_imagefolder;

/* List ROOT's sub-folders (hidden ones skipped) as classes and their files with an image
 * extension (.jpg .jpeg .png .bmp, any case) as samples. Fails when ROOT is not a readable
 * folder or holds no class folder. Files are not opened here: an unreadable image is reported
 * by the loader that decodes it. */
int coco_imagefolder_read(const char *root, coco_imagefolder *out);
void coco_imagefolder_free(coco_imagefolder *f);

/* ==== Batches ============================================================================= */

/* A classification source: either images in memory (CIFAR) or files (image folders).
 * The loader only borrows these pointers: they must outlive it. */
typedef struct coco_cls_source {
    int64_t count;
    const uint8_t *pixels;     /* count x channels x height x width uint8 (NCHW), or NULL */
    int32_t channels, height, width; /* for `pixels` */
    const char *const *paths;  /* count image files (decoded as RGB), used when pixels is NULL */
    const int32_t *labels32;   /* count labels, or NULL ... */
    const uint8_t *labels8;    /* ... or these (CIFAR); exactly one of the two */
} coco_cls_source;

/* Views of the readers' results as sources. */
coco_cls_source coco_cls_source_cifar(const coco_cifar *c);
coco_cls_source coco_cls_source_folder(const coco_imagefolder *f);

typedef struct coco_cls_opts {
    int32_t batch_size;   /* images per batch (default 32) */
    int32_t threads;      /* background workers (default 2); 0 = build batches in the calling thread */
    int32_t prefetch;     /* batch buffers: the one the caller holds + prefetch-1 built ahead
                             (default 4; >= 1) */
    uint64_t seed;        /* fixes shuffling and augmentation, whatever the thread count */
    int32_t shuffle;      /* reshuffle every epoch (default 1) */
    int32_t drop_last;    /* skip a last partial batch (default 0) */
    int32_t epochs;       /* stop after this many epochs; 0 = endless (default 0) */
    int64_t first, count; /* use samples [first, first+count) only; count 0 = to the end
                             (e.g. the search's 45k/5k split of CIFAR-10 train) */
    int32_t out_height, out_width; /* output size; 0 = the source's (required for files:
                                      files are resized to it) */
    int32_t pad;          /* pad-and-random-crop: zero-pad by this many pixels, crop back */
    int32_t flip;         /* random horizontal flip with probability 1/2 */
    int32_t cutout;       /* side of a random square set to zero after normalising; 0 = off */
    float mean[3], std[3];/* out = (pixel / 255 - mean[c]) / std[c] (default 0.5 / 0.5: [-1, 1]) */
} coco_cls_opts;

enum { COCO_MAX_SCALE_SIDES = 8 };

typedef struct coco_det_opts {
    int32_t batch_size;   /* default 2 */
    int32_t threads, prefetch; /* as coco_cls_opts */
    uint64_t seed;
    int32_t shuffle, drop_last, epochs; /* as coco_cls_opts */
    int32_t min_side;     /* resize so the short side is min_side ... (default 800) */
    int32_t max_side;     /* ... unless the long side would exceed max_side (default 1333) */
    int32_t flip;         /* random horizontal flip with probability 1/2 (boxes follow) */
    int32_t size_divisor; /* pad height and width up to a multiple of this (default 32) */
    int32_t fixed_size;   /* pad every batch to the same max_side x max_side (rounded up to
                             size_divisor; under multi-scale the largest drawn max_side), so
                             tensors can be allocated once */
    int32_t skip_empty;   /* leave out images without annotations (default 0) */
    /* Multi-scale training: with n_scale_sides > 0 each batch draws its short side from
     * scale_sides (uniformly, fixed by seed, epoch and batch) instead of min_side, and its
     * long-side limit is max_side scaled alike; all images of a batch share the draw. */
    int32_t scale_sides[COCO_MAX_SCALE_SIDES];
    int32_t n_scale_sides;
    float mean[3], std[3];/* as coco_cls_opts */
} coco_det_opts;

void coco_cls_opts_default(coco_cls_opts *o);
void coco_det_opts_default(coco_det_opts *o);

/* A batch. Owned by the loader; valid until the next coco_loader_next or coco_loader_free. */
typedef struct coco_batch {
    int64_t epoch;        /* 0-based */
    int64_t index;        /* batch index within the epoch */
    int32_t n;            /* images in this batch (<= batch_size) */
    int32_t channels, height, width;
    float *images;        /* n x 3 x height x width, normalised (padding is 0 before
                             normalisation, i.e. -mean/std after) */
    int64_t *sample;      /* n: the sample's index in the source (cls) or in ds->images (det) */
    int32_t *labels;      /* n: class label (cls); -1 (det) */
    int64_t *image_ids;   /* n: COCO image id (det); the sample index (cls) */
    int32_t *valid_h, *valid_w; /* n: size of the image inside the padding (cls: height, width) */
    int32_t *orig_h, *orig_w;   /* n: size before resizing */
    float *scale;         /* n: resized = original * scale, same for x and y (cls: 1) */
    int32_t *flipped;     /* n: 1 when flipped horizontally */
    /* detection (num_boxes is 0 for classification) */
    int64_t *box_first;   /* n + 1: image i owns boxes [box_first[i], box_first[i+1]) */
    int64_t num_boxes;
    float *boxes;         /* num_boxes x 4: x1, y1, x2, y2 in batch pixels (after resize
                             and flip); original = batch / scale, unflipped by the caller */
    int32_t *box_class;   /* num_boxes: contiguous class index */
    int64_t *box_category;/* num_boxes: COCO category id */
    int64_t *box_ann_id;  /* num_boxes: annotation id */
    uint8_t *box_crowd;   /* num_boxes: iscrowd */
} coco_batch;

typedef struct coco_loader coco_loader;

/* A classification loader over `src` (borrowed). Fails with ND_ERR_INVALID on bad options or
 * a source whose sizes disagree. */
int coco_loader_cls_new(const coco_cls_source *src, const coco_cls_opts *opts, coco_loader **out);
/* A detection loader over `ds` (borrowed) whose files are under `image_dir`. */
int coco_loader_det_new(const coco_dataset *ds, const char *image_dir, const coco_det_opts *opts,
                        coco_loader **out);
/* The next batch, in order (epoch 0 batch 0, 1, ...). Returns 0 with *batch set; 0 with
 * *batch NULL after the last epoch; or a negative status when the batch could not be built
 * (e.g. ND_ERR_FORMAT "<file>: not a readable image ..." for a corrupt image), in which case
 * that batch is skipped and the next call continues with the following one. Blocks only when
 * the workers are behind. Not thread-safe: one consumer. */
int coco_loader_next(coco_loader *l, const coco_batch **batch);
/* Batches in one epoch (after drop_last / skip_empty). */
int64_t coco_loader_batches_per_epoch(const coco_loader *l);
/* Stop the workers and release everything (batches included). */
void coco_loader_free(coco_loader *l);

/* ==== Demo data generators (real digits over real photographs) =========================== */

typedef struct coco_gen_opts {
    uint64_t seed;
    int64_t train, test; /* images per split (digits-det: train and val) */
    int32_t size;        /* digits-det image side (default 320) */
    FILE *progress;      /* progress line destination; NULL = silent */
} coco_gen_opts;

/* Write a CIFAR-10 binary set into `dir` (created): data_batch_1..5.bin (train split over 5
 * files as evenly as possible: 10000 each for 50000), test_batch.bin, batches.meta.txt.
 * Each 32x32 image holds one real digit from digits.png (found with nd_data_path), scaled,
 * rotated, coloured and pasted on a random crop of a real photograph with clutter and noise;
 * the label is the digit. Train and test draw from disjoint digit instances (first 80% of
 * each class's cells for train, last 20% for test). Byte-identical for a seed, whatever the
 * number of OpenMP threads. */
int coco_gen_digits_cls(const char *dir, const coco_gen_opts *opts);
/* Write a COCO-format detection set into `dir`: train/NNNNNN.jpg, val/NNNNNN.jpg (size x size
 * photo backgrounds with 1-8 digits of 12-120 px, some partly overlapping) and
 * annotations/instances_{train,val}.json (categories 1..10 named "0".."9"; bbox tight around
 * each digit's ink; area = bbox width * height; iscrowd 0). Disjoint digit instances per split
 * as above; byte-identical for a seed. The JSON files are written last, atomically: a set
 * without them is incomplete. */
int coco_gen_digits_det(const char *dir, const coco_gen_opts *opts);

#ifdef __cplusplus
}
#endif

#endif
