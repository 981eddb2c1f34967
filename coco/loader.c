/* The batch loader: worker threads build batches ahead of the consumer into a ring of
 * `prefetch` slots. What a batch holds depends only on (seed, epoch, batch index): the epoch's
 * order is a keyed permutation and each item has its own random stream, so one thread, eight
 * threads or none give the same bytes. */
#include "coco/loader_internal.h"

#include "common/status.h"

#include <stdlib.h>
#include <string.h>

/* ---- the epoch's order: a keyed Feistel permutation with cycle-walking ----------------------
 * It maps a position to a sample in O(1) without storing a shuffled array per epoch, so any
 * worker can build any batch of any epoch. */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t feistel(uint64_t key, int half, uint64_t v) {
    uint64_t mask = (1ull << half) - 1, left = v >> half, right = v & mask;
    for (uint64_t round = 0; round < 4; round++) {
        uint64_t f = mix64(key ^ mix64(right + (round << 56))) & mask;
        uint64_t t = left ^ f;
        left = right;
        right = t;
    }
    return (left << half) | right;
}

int64_t loader_item(const coco_loader *l, int64_t epoch, int64_t pos) {
    uint64_t n = (uint64_t)l->nitems;
    if (!l->shuffle || n < 2) return l->items[pos];
    int bits = 1;
    while ((1ull << bits) < n) bits++;
    int half = (bits + 1) / 2;
    uint64_t key = mix64(l->seed ^ mix64((uint64_t)epoch + 0x9e3779b97f4a7c15ull));
    uint64_t v = (uint64_t)pos;
    do v = feistel(key, half, v); /* a bijection on [0, 4^half): walking the cycle stays in [0, n) */
    while (v >= n);
    return l->items[v];
}

void loader_item_rng(const coco_loader *l, int64_t epoch, int64_t pos, nd_rng *rng) {
    nd_rng_seed_stream(rng, l->seed, (uint64_t)epoch * (uint64_t)l->nitems + (uint64_t)pos);
}

int loader_slot_images(loader_slot *s, size_t floats) {
    if (floats <= s->image_cap) return ND_OK;
    float *p = realloc(s->b.images, floats * sizeof *p);
    if (!p) return nd_fail(ND_ERR_NOMEM, "out of memory for a batch of %zu floats", floats);
    s->b.images = p;
    s->image_cap = floats;
    return ND_OK;
}

int loader_slot_boxes(loader_slot *s, size_t boxes) {
    if (boxes <= s->box_cap) return ND_OK;
    size_t cap = boxes > 2 * s->box_cap ? boxes : 2 * s->box_cap;
    float *bx = realloc(s->b.boxes, cap * 4 * sizeof *bx);
    if (bx) s->b.boxes = bx;
    int32_t *cl = realloc(s->b.box_class, cap * sizeof *cl);
    if (cl) s->b.box_class = cl;
    int64_t *ca = realloc(s->b.box_category, cap * sizeof *ca);
    if (ca) s->b.box_category = ca;
    int64_t *id = realloc(s->b.box_ann_id, cap * sizeof *id);
    if (id) s->b.box_ann_id = id;
    uint8_t *cr = realloc(s->b.box_crowd, cap);
    if (cr) s->b.box_crowd = cr;
    if (!bx || !cl || !ca || !id || !cr) return nd_fail(ND_ERR_NOMEM, "out of memory for %zu boxes", cap);
    s->box_cap = cap;
    return ND_OK;
}

static void slot_free(loader_slot *s) {
    coco_batch *b = &s->b;
    free(b->images), free(b->sample), free(b->labels), free(b->image_ids), free(b->valid_h), free(b->valid_w);
    free(b->orig_h), free(b->orig_w), free(b->scale), free(b->flipped), free(b->box_first), free(b->boxes);
    free(b->box_class), free(b->box_category), free(b->box_ann_id), free(b->box_crowd);
}

static int slot_init(loader_slot *s, int32_t n) {
    memset(s, 0, sizeof *s);
    coco_batch *b = &s->b;
    size_t k = (size_t)n;
    b->sample = calloc(k, sizeof *b->sample);
    b->labels = calloc(k, sizeof *b->labels);
    b->image_ids = calloc(k, sizeof *b->image_ids);
    b->valid_h = calloc(k, sizeof *b->valid_h), b->valid_w = calloc(k, sizeof *b->valid_w);
    b->orig_h = calloc(k, sizeof *b->orig_h), b->orig_w = calloc(k, sizeof *b->orig_w);
    b->scale = calloc(k, sizeof *b->scale);
    b->flipped = calloc(k, sizeof *b->flipped);
    b->box_first = calloc(k + 1, sizeof *b->box_first);
    if (!b->sample || !b->labels || !b->image_ids || !b->valid_h || !b->valid_w || !b->orig_h || !b->orig_w ||
        !b->scale || !b->flipped || !b->box_first)
        return nd_fail(ND_ERR_NOMEM, "out of memory for a batch of %d", n);
    return ND_OK;
}

/* Build batch `seq` into its slot; record the status and message for the consumer. */
static void build(coco_loader *l, loader_slot *s, int64_t seq) {
    int64_t epoch = seq / l->per_epoch, index = seq % l->per_epoch;
    int64_t first = index * l->batch_size;
    int32_t n = (int32_t)(l->nitems - first < l->batch_size ? l->nitems - first : l->batch_size);
    s->seq = seq;
    s->b.epoch = epoch;
    s->b.index = index;
    s->b.n = n;
    s->rc = l->kind == LOADER_CLS ? batch_cls_build(l, s, epoch, first, n) : batch_det_build(l, s, epoch, first, n);
    if (s->rc) snprintf(s->msg, sizeof s->msg, "%s", nd_last_error());
}

static void *worker_main(void *arg) {
    coco_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        int64_t seq = l->next_build;
        if (seq < l->total && seq < l->released + l->prefetch) {
            loader_slot *s = &l->slots[seq % l->prefetch];
            l->next_build++;
            s->state = SLOT_BUILDING;
            pthread_mutex_unlock(&l->mu);
            build(l, s, seq);
            pthread_mutex_lock(&l->mu);
            s->state = SLOT_READY;
            pthread_cond_broadcast(&l->ready);
        } else {
            pthread_cond_wait(&l->work, &l->mu);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void release_held(coco_loader *l) {
    if (!l->held) return;
    if (l->nworkers) pthread_mutex_lock(&l->mu);
    l->held->state = SLOT_FREE;
    l->released++;
    if (l->nworkers) {
        pthread_cond_broadcast(&l->work);
        pthread_mutex_unlock(&l->mu);
    }
    l->held = NULL;
}

int coco_loader_next(coco_loader *l, const coco_batch **batch) {
    *batch = NULL;
    release_held(l);
    int64_t seq = l->consumed;
    if (seq >= l->total) return ND_OK;
    loader_slot *s = &l->slots[seq % l->prefetch];
    if (l->nworkers == 0) {
        build(l, s, seq);
        s->state = SLOT_READY;
    } else {
        pthread_mutex_lock(&l->mu);
        while (!(s->state == SLOT_READY && s->seq == seq)) pthread_cond_wait(&l->ready, &l->mu);
        pthread_mutex_unlock(&l->mu);
    }
    l->consumed++;
    l->held = s;
    if (s->rc) {
        int rc = s->rc;
        nd_fail(rc, "%s", s->msg); /* the message was set on the worker's thread */
        release_held(l);           /* the failed batch is skipped */
        return rc;
    }
    *batch = &s->b;
    return ND_OK;
}

int64_t coco_loader_batches_per_epoch(const coco_loader *l) { return l->per_epoch; }

void coco_loader_free(coco_loader *l) {
    if (!l) return;
    if (l->nworkers) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->work);
        pthread_mutex_unlock(&l->mu);
        for (int32_t i = 0; i < l->nworkers; i++) pthread_join(l->workers[i], NULL);
    }
    if (l->workers) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->work);
        pthread_cond_destroy(&l->ready);
    }
    for (int32_t i = 0; l->slots && i < l->prefetch; i++) slot_free(&l->slots[i]);
    free(l->slots);
    free(l->workers);
    free(l->items);
    free(l->image_dir);
    free(l);
}

/* Shared part of both constructors: order, slots and threads. `l` owns what it holds so far
 * and is released here on failure. */
static int loader_start(coco_loader *l, int32_t epochs, coco_loader **out) {
    *out = NULL;
    int rc = ND_OK;
    l->per_epoch = l->drop_last ? l->nitems / l->batch_size : (l->nitems + l->batch_size - 1) / l->batch_size;
    if (l->per_epoch == 0)
        rc = nd_fail(ND_ERR_INVALID, "loader: %lld samples make no batch of %d (drop_last)", (long long)l->nitems,
                     l->batch_size);
    l->total = epochs > 0 ? l->per_epoch * epochs : INT64_MAX;
    l->slots = rc ? NULL : calloc((size_t)l->prefetch, sizeof *l->slots);
    if (rc == 0 && !l->slots) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; rc == 0 && i < l->prefetch; i++) rc = slot_init(&l->slots[i], l->batch_size);
    if (rc == 0 && l->threads > 0) {
        l->workers = calloc((size_t)l->threads, sizeof *l->workers);
        if (!l->workers) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
        else {
            pthread_mutex_init(&l->mu, NULL);
            pthread_cond_init(&l->work, NULL);
            pthread_cond_init(&l->ready, NULL);
        }
        for (int32_t i = 0; rc == 0 && i < l->threads; i++) {
            if (pthread_create(&l->workers[i], NULL, worker_main, l) != 0)
                rc = nd_fail(ND_ERR_NOMEM, "loader: could not start worker thread %d", i);
            else l->nworkers = i + 1;
        }
    }
    if (rc) {
        coco_loader_free(l);
        return rc;
    }
    *out = l;
    return ND_OK;
}

void coco_cls_opts_default(coco_cls_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 32;
    o->threads = 2;
    o->prefetch = 4;
    o->shuffle = 1;
    for (int c = 0; c < 3; c++) o->mean[c] = 0.5f, o->std[c] = 0.5f;
}

void coco_det_opts_default(coco_det_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 2;
    o->threads = 2;
    o->prefetch = 4;
    o->shuffle = 1;
    o->min_side = 800;
    o->max_side = 1333;
    o->size_divisor = 32;
    for (int c = 0; c < 3; c++) o->mean[c] = 0.5f, o->std[c] = 0.5f;
}

coco_cls_source coco_cls_source_cifar(const coco_cifar *c) {
    coco_cls_source s = {0};
    s.count = c->count;
    s.pixels = c->pixels;
    s.channels = 3, s.height = COCO_CIFAR_SIDE, s.width = COCO_CIFAR_SIDE;
    s.labels8 = c->labels;
    return s;
}

coco_cls_source coco_cls_source_folder(const coco_imagefolder *f) {
    coco_cls_source s = {0};
    s.count = f->count;
    s.paths = (const char *const *)f->paths;
    s.labels32 = f->labels;
    return s;
}

static int check_common(int32_t batch, int32_t threads, int32_t prefetch, const float mean[3], const float std[3]) {
    if (batch < 1 || batch > 65536) return nd_fail(ND_ERR_INVALID, "loader: batch_size must be 1..65536, got %d", batch);
    if (threads < 0 || threads > 256) return nd_fail(ND_ERR_INVALID, "loader: threads must be 0..256, got %d", threads);
    if (prefetch < 1 || prefetch > 1024)
        return nd_fail(ND_ERR_INVALID, "loader: prefetch must be 1..1024, got %d", prefetch);
    for (int c = 0; c < 3; c++)
        if (!(std[c] > 0) || !(mean[c] == mean[c]))
            return nd_fail(ND_ERR_INVALID, "loader: std[%d] must be > 0 and mean finite (got %g, %g)", c, std[c],
                           mean[c]);
    return ND_OK;
}

int coco_loader_cls_new(const coco_cls_source *src, const coco_cls_opts *opts, coco_loader **out) {
    *out = NULL;
    int rc = check_common(opts->batch_size, opts->threads, opts->prefetch, opts->mean, opts->std);
    if (rc) return rc;
    if (src->count < 1) return nd_fail(ND_ERR_INVALID, "loader: the source has no samples");
    if ((src->labels8 != NULL) == (src->labels32 != NULL))
        return nd_fail(ND_ERR_INVALID, "loader: give exactly one of labels8 and labels32");
    if ((src->pixels != NULL) == (src->paths != NULL))
        return nd_fail(ND_ERR_INVALID, "loader: give exactly one of pixels and paths");
    coco_cls_opts o = *opts;
    if (src->pixels) {
        if ((src->channels != 1 && src->channels != 3) || src->height < 1 || src->width < 1)
            return nd_fail(ND_ERR_INVALID, "loader: in-memory images must have 1 or 3 channels and a size, got %dx%dx%d",
                           src->channels, src->height, src->width);
        if (!o.out_height) o.out_height = src->height;
        if (!o.out_width) o.out_width = src->width;
        if (o.out_height != src->height || o.out_width != src->width)
            return nd_fail(ND_ERR_INVALID, "loader: in-memory images are %dx%d; resizing them (to %dx%d) is not supported",
                           src->height, src->width, o.out_height, o.out_width);
    } else if (o.out_height < 1 || o.out_width < 1 || o.out_height > 8192 || o.out_width > 8192) {
        return nd_fail(ND_ERR_INVALID, "loader: images read from files need out_height and out_width (1..8192)");
    }
    if (o.pad < 0 || o.pad > 1024 || o.cutout < 0 || o.cutout > 8192)
        return nd_fail(ND_ERR_INVALID, "loader: pad must be 0..1024 and cutout 0..8192 (got %d, %d)", o.pad, o.cutout);
    if (o.first < 0 || o.first >= src->count || o.count < 0 || o.count > src->count - o.first)
        return nd_fail(ND_ERR_INVALID, "loader: samples [%lld, +%lld) lie outside the source's %lld", (long long)o.first,
                       (long long)o.count, (long long)src->count);
    if (o.epochs < 0) return nd_fail(ND_ERR_INVALID, "loader: epochs must be >= 0");
    coco_loader *l = calloc(1, sizeof *l);
    if (!l) return nd_fail(ND_ERR_NOMEM, "out of memory");
    l->kind = LOADER_CLS;
    l->src = *src;
    l->cls = o;
    l->batch_size = o.batch_size, l->threads = o.threads, l->prefetch = o.prefetch;
    l->shuffle = o.shuffle, l->drop_last = o.drop_last, l->seed = o.seed;
    memcpy(l->mean, o.mean, sizeof l->mean);
    memcpy(l->std, o.std, sizeof l->std);
    l->nitems = o.count ? o.count : src->count - o.first;
    l->items = malloc((size_t)l->nitems * sizeof *l->items);
    if (!l->items) {
        free(l);
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < l->nitems; i++) l->items[i] = o.first + i;
    return loader_start(l, o.epochs, out);
}

int coco_loader_det_new(const coco_dataset *ds, const char *image_dir, const coco_det_opts *opts, coco_loader **out) {
    *out = NULL;
    int rc = check_common(opts->batch_size, opts->threads, opts->prefetch, opts->mean, opts->std);
    if (rc) return rc;
    const coco_det_opts *o = opts;
    if (o->min_side < 1 || o->max_side < o->min_side || o->max_side > 8192)
        return nd_fail(ND_ERR_INVALID, "loader: need 1 <= min_side <= max_side <= 8192 (got %d, %d)", o->min_side,
                       o->max_side);
    if (o->size_divisor < 1 || o->size_divisor > 1024)
        return nd_fail(ND_ERR_INVALID, "loader: size_divisor must be 1..1024, got %d", o->size_divisor);
    if (o->epochs < 0) return nd_fail(ND_ERR_INVALID, "loader: epochs must be >= 0");
    if (o->n_scale_sides < 0 || o->n_scale_sides > COCO_MAX_SCALE_SIDES)
        return nd_fail(ND_ERR_INVALID, "loader: 0..%d multi-scale sides, got %d", COCO_MAX_SCALE_SIDES,
                       o->n_scale_sides);
    for (int32_t i = 0; i < o->n_scale_sides; i++) {
        if (o->scale_sides[i] < 1 || batch_det_max_side(o, o->scale_sides[i]) > 8192)
            return nd_fail(ND_ERR_INVALID, "loader: multi-scale side %d out of range (1..%d for max_side %d)",
                           o->scale_sides[i], (int)(8192LL * o->min_side / o->max_side), o->max_side);
    }
    coco_loader *l = calloc(1, sizeof *l);
    if (!l) return nd_fail(ND_ERR_NOMEM, "out of memory");
    l->kind = LOADER_DET;
    l->ds = ds;
    l->det = *o;
    l->batch_size = o->batch_size, l->threads = o->threads, l->prefetch = o->prefetch;
    l->shuffle = o->shuffle, l->drop_last = o->drop_last, l->seed = o->seed;
    memcpy(l->mean, o->mean, sizeof l->mean);
    memcpy(l->std, o->std, sizeof l->std);
    l->image_dir = strdup(image_dir ? image_dir : ".");
    l->items = malloc((size_t)(ds->num_images > 0 ? ds->num_images : 1) * sizeof *l->items);
    if (!l->image_dir || !l->items) {
        free(l->image_dir);
        free(l->items);
        free(l);
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < ds->num_images; i++)
        if (!o->skip_empty || ds->images[i].ann_count > 0) l->items[l->nitems++] = i;
    if (l->nitems == 0) {
        free(l->image_dir);
        free(l->items);
        free(l);
        return nd_fail(ND_ERR_INVALID, "loader: the data set has no images%s", o->skip_empty ? " with annotations" : "");
    }
    return loader_start(l, o->epochs, out);
}
