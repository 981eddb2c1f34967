/* Internal to coco/: the batch loader's state, shared by loader.c (threads, order, ring of
 * prefetched batches) and the batch builders batch_cls.c and batch_det.c. */
#ifndef COCO_LOADER_INTERNAL_H
#define COCO_LOADER_INTERNAL_H

#include "coco/coco.h"
#include "common/rng.h"

#include <pthread.h>
#include <stddef.h>

enum { LOADER_CLS = 1, LOADER_DET = 2 };
enum { SLOT_FREE = 0, SLOT_BUILDING = 1, SLOT_READY = 2 };

typedef struct loader_slot {
    coco_batch b;      /* what the consumer sees; arrays below are its storage */
    int64_t seq;       /* global batch number held (epoch * per_epoch + index) */
    int state;
    int rc;            /* status of building it, with its message */
    char msg[1024];
    size_t image_cap;  /* floats allocated in b.images */
    size_t box_cap;    /* boxes allocated */
} loader_slot;

struct coco_loader {
    int kind;
    /* classification */
    coco_cls_source src;
    coco_cls_opts cls;
    /* detection */
    const coco_dataset *ds;
    char *image_dir;
    coco_det_opts det;
    /* common */
    int32_t batch_size, threads, prefetch, shuffle, drop_last;
    uint64_t seed;
    float mean[3], std[3];
    int64_t *items, nitems; /* the samples an epoch visits, before shuffling */
    int64_t per_epoch, total; /* batches per epoch; in all (INT64_MAX: endless) */

    loader_slot *slots;     /* prefetch of them; batch seq lives in slots[seq % prefetch] */
    pthread_t *workers;
    int32_t nworkers;       /* started */
    pthread_mutex_t mu;
    pthread_cond_t work, ready;
    int64_t next_build;     /* next batch a worker claims */
    int64_t released;       /* batches the consumer is done with */
    int64_t consumed;       /* batches handed to the consumer */
    loader_slot *held;      /* the batch the consumer holds */
    int stop;
};

/* Sample index (into the source, or into ds->images) of the item at `pos` of epoch `epoch`. */
int64_t loader_item(const coco_loader *l, int64_t epoch, int64_t pos);
/* A generator for one item's augmentation: a function of (seed, epoch, position) only. */
void loader_item_rng(const coco_loader *l, int64_t epoch, int64_t pos, nd_rng *rng);
/* Make sure b.images holds `floats` values; fails with ND_ERR_NOMEM. */
int loader_slot_images(loader_slot *s, size_t floats);
int loader_slot_boxes(loader_slot *s, size_t boxes);

/* Fill slot `s` with batch `index` of `epoch`, items [first, first + n) of that epoch. Return a
 * status with its message set on this thread. */
int batch_cls_build(const coco_loader *l, loader_slot *s, int64_t epoch, int64_t first, int32_t n);
int batch_det_build(const coco_loader *l, loader_slot *s, int64_t epoch, int64_t first, int32_t n);
/* Multi-scale: the long-side limit that goes with short side `side` (max_side scaled alike). */
int64_t batch_det_max_side(const coco_det_opts *o, int32_t side);

#endif
