/* Classification batches: decode (files) or copy (memory), pad-and-crop, flip, normalise,
 * cutout; NCHW floats. Each item's choices come from its own random stream. */
#include "coco/loader_internal.h"

#include "common/cvshim.h"
#include "common/status.h"

#include <string.h>

/* The source image of one item as an accessor: pixel (c, y, x), 0 outside. */
typedef struct src_view {
    const uint8_t *px;
    int32_t channels, height, width;
    int chw; /* 1: planes (memory source); 0: interleaved (decoded file) */
} src_view;

static inline float src_at(const src_view *v, int32_t c, int32_t y, int32_t x) {
    if (y < 0 || x < 0 || y >= v->height || x >= v->width) return 0.0f;
    int32_t cc = v->channels == 1 ? 0 : c;
    size_t i = v->chw ? ((size_t)cc * (size_t)v->height + (size_t)y) * (size_t)v->width + (size_t)x
                      : ((size_t)y * (size_t)v->width + (size_t)x) * (size_t)v->channels + (size_t)cc;
    return v->px[i];
}

static int load_file(const coco_loader *l, int64_t sample, nd_image *out, int32_t *orig_h, int32_t *orig_w) {
    nd_image img = {0};
    const char *path = l->src.paths[sample];
    int rc = nd_image_read(path, 3, &img);
    if (rc) return nd_fail_context(rc, "sample %lld: ", (long long)sample);
    *orig_h = img.height, *orig_w = img.width;
    if (img.width != l->cls.out_width || img.height != l->cls.out_height) {
        int shrink = img.width > l->cls.out_width || img.height > l->cls.out_height;
        rc = nd_image_resize(&img, l->cls.out_width, l->cls.out_height, shrink ? ND_INTERP_AREA : ND_INTERP_LINEAR, out);
        nd_image_free(&img);
        if (rc) return nd_fail_context(rc, "%s: ", path);
    } else {
        *out = img;
    }
    return ND_OK;
}

int batch_cls_build(const coco_loader *l, loader_slot *s, int64_t epoch, int64_t first, int32_t n) {
    const coco_cls_opts *o = &l->cls;
    int32_t H = o->out_height, W = o->out_width;
    coco_batch *b = &s->b;
    b->channels = 3, b->height = H, b->width = W;
    b->num_boxes = 0;
    int rc = loader_slot_images(s, (size_t)n * 3 * (size_t)H * (size_t)W);
    if (rc) return rc;
    for (int32_t j = 0; j < n; j++) {
        int64_t pos = first + j, sample = loader_item(l, epoch, pos);
        nd_rng rng;
        loader_item_rng(l, epoch, pos, &rng);
        /* Draw every choice up front, in a fixed order, so that options never shift the stream
         * of later choices. */
        int32_t dx = o->pad ? (int32_t)nd_rng_below(&rng, (uint64_t)(2 * o->pad + 1)) - o->pad : 0;
        int32_t dy = o->pad ? (int32_t)nd_rng_below(&rng, (uint64_t)(2 * o->pad + 1)) - o->pad : 0;
        int flip = o->flip && nd_rng_below(&rng, 2);
        int32_t cy = o->cutout ? (int32_t)nd_rng_below(&rng, (uint64_t)H) : 0;
        int32_t cx = o->cutout ? (int32_t)nd_rng_below(&rng, (uint64_t)W) : 0;

        nd_image img = {0};
        src_view v;
        int32_t orig_h = l->src.height, orig_w = l->src.width;
        if (l->src.pixels) {
            v.px = l->src.pixels + (size_t)sample * (size_t)l->src.channels * (size_t)l->src.height * (size_t)l->src.width;
            v.channels = l->src.channels, v.height = l->src.height, v.width = l->src.width, v.chw = 1;
        } else {
            if ((rc = load_file(l, sample, &img, &orig_h, &orig_w))) return rc;
            v.px = img.data, v.channels = img.channels, v.height = img.height, v.width = img.width, v.chw = 0;
        }
        float *dst = b->images + (size_t)j * 3 * (size_t)H * (size_t)W;
        for (int32_t c = 0; c < 3; c++) {
            float scale = 1.0f / (255.0f * l->std[c]), shift = -l->mean[c] / l->std[c];
            for (int32_t y = 0; y < H; y++)
                for (int32_t x = 0; x < W; x++) {
                    int32_t sx = flip ? W - 1 - x : x;
                    /* Padding is zero pixels, as torchvision's RandomCrop(padding=p) does. */
                    float p = src_at(&v, c, y + dy, sx + dx);
                    dst[((size_t)c * (size_t)H + (size_t)y) * (size_t)W + (size_t)x] = p * scale + shift;
                }
        }
        nd_image_free(&img);
        if (o->cutout) {
            int32_t y0 = cy - o->cutout / 2, x0 = cx - o->cutout / 2;
            for (int32_t c = 0; c < 3; c++)
                for (int32_t y = y0 < 0 ? 0 : y0; y < y0 + o->cutout && y < H; y++)
                    for (int32_t x = x0 < 0 ? 0 : x0; x < x0 + o->cutout && x < W; x++)
                        dst[((size_t)c * (size_t)H + (size_t)y) * (size_t)W + (size_t)x] = 0.0f;
        }
        b->sample[j] = sample;
        b->labels[j] = l->src.labels8 ? l->src.labels8[sample] : l->src.labels32[sample];
        b->flipped[j] = flip;
        b->image_ids[j] = sample;
        b->orig_h[j] = orig_h, b->orig_w[j] = orig_w;
        b->valid_h[j] = H, b->valid_w[j] = W;
        b->scale[j] = 1.0f;
    }
    b->box_first[0] = 0;
    return ND_OK;
}
