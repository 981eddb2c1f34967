/* Detection batches: decode, resize keeping the aspect ratio (short side to min_side, long
 * side at most max_side), optional horizontal flip, pad to a common size, boxes mapped along
 * and category ids turned into class indices. */
#include "coco/loader_internal.h"

#include "common/cvshim.h"
#include "common/fileio.h"
#include "common/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int32_t round_up(int32_t v, int32_t d) { return (v + d - 1) / d * d; }

int64_t batch_det_max_side(const coco_det_opts *o, int32_t side) {
    return llround((double)o->max_side * side / o->min_side);
}

/* The batch's short side and long-side limit: min_side / max_side, or under multi-scale
 * training one of scale_sides drawn for this batch (its own stream: the per-image draws,
 * such as the flip, stay what they are without it). */
static void batch_sides(const coco_loader *l, int64_t epoch, int64_t first, int32_t *min_side, int32_t *max_side) {
    const coco_det_opts *o = &l->det;
    *min_side = o->min_side, *max_side = o->max_side;
    if (o->n_scale_sides < 1) return;
    nd_rng rng;
    nd_rng_seed_stream(&rng, l->seed ^ 0x5CA1E5ull, (uint64_t)epoch * (uint64_t)l->nitems + (uint64_t)first);
    *min_side = o->scale_sides[nd_rng_below(&rng, (uint64_t)o->n_scale_sides)];
    *max_side = (int32_t)batch_det_max_side(o, *min_side);
}

/* Decode image `idx` and resize it: short side to min_side unless the long side would pass
 * max_side; reports the scale. */
static int load_resized(const coco_loader *l, int64_t idx, int32_t min_side, int32_t max_side, nd_image *out,
                        float *scale) {
    const coco_image *im = &l->ds->images[idx];
    char *path = nd_path_join(l->image_dir, im->file_name);
    if (!path) return nd_fail(ND_ERR_NOMEM, "out of memory");
    nd_image img = {0};
    int rc = nd_image_read(path, 3, &img);
    if (rc) {
        rc = nd_fail_context(rc, "image id %lld (%s): ", (long long)im->id, im->file_name);
        free(path);
        return rc;
    }
    /* Boxes are in the JSON's pixel frame: a file of another size would silently misplace them. */
    if (img.width != im->width || img.height != im->height) {
        rc = nd_fail(ND_ERR_FORMAT, "%s: image id %lld is %dx%d pixels but the annotations say %dx%d", path,
                     (long long)im->id, img.width, img.height, im->width, im->height);
        nd_image_free(&img);
        free(path);
        return rc;
    }
    free(path);
    double shorter = img.width < img.height ? img.width : img.height;
    double longer = img.width < img.height ? img.height : img.width;
    double s = min_side / shorter;
    if (longer * s > max_side) s = max_side / longer;
    int32_t w = (int32_t)lround(img.width * s), h = (int32_t)lround(img.height * s);
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    if (w > max_side) w = max_side;
    if (h > max_side) h = max_side;
    if (w == img.width && h == img.height) {
        *out = img;
    } else {
        rc = nd_image_resize(&img, w, h, s < 1 ? ND_INTERP_AREA : ND_INTERP_LINEAR, out);
        nd_image_free(&img);
        if (rc) return rc;
    }
    *scale = (float)s;
    return ND_OK;
}

int batch_det_build(const coco_loader *l, loader_slot *s, int64_t epoch, int64_t first, int32_t n) {
    const coco_det_opts *o = &l->det;
    coco_batch *b = &s->b;
    nd_image imgs[n];
    memset(imgs, 0, sizeof imgs);
    int rc = ND_OK;
    int32_t H = 1, W = 1, min_side, max_side;
    size_t boxes = 0;
    batch_sides(l, epoch, first, &min_side, &max_side);
    for (int32_t j = 0; j < n && rc == 0; j++) {
        int64_t pos = first + j, idx = loader_item(l, epoch, pos);
        nd_rng rng;
        loader_item_rng(l, epoch, pos, &rng);
        int flip = o->flip && nd_rng_below(&rng, 2);
        if ((rc = load_resized(l, idx, min_side, max_side, &imgs[j], &b->scale[j]))) break;
        const coco_image *im = &l->ds->images[idx];
        b->sample[j] = idx;
        b->image_ids[j] = im->id;
        b->labels[j] = -1;
        b->orig_h[j] = im->height, b->orig_w[j] = im->width;
        b->valid_h[j] = imgs[j].height, b->valid_w[j] = imgs[j].width;
        b->flipped[j] = flip;
        if (imgs[j].height > H) H = imgs[j].height;
        if (imgs[j].width > W) W = imgs[j].width;
        boxes += (size_t)im->ann_count;
    }
    if (rc == 0) {
        if (o->fixed_size) { /* the largest any batch can be */
            H = W = o->max_side;
            for (int32_t i = 0; i < o->n_scale_sides; i++) {
                int32_t side = (int32_t)batch_det_max_side(o, o->scale_sides[i]);
                if (side > H) H = W = side;
            }
        }
        H = round_up(H, o->size_divisor), W = round_up(W, o->size_divisor);
        b->channels = 3, b->height = H, b->width = W;
        rc = loader_slot_images(s, (size_t)n * 3 * (size_t)H * (size_t)W);
    }
    if (rc == 0) rc = loader_slot_boxes(s, boxes > 0 ? boxes : 1);
    int64_t nb = 0;
    for (int32_t j = 0; j < n && rc == 0; j++) {
        const nd_image *img = &imgs[j];
        float *dst = b->images + (size_t)j * 3 * (size_t)H * (size_t)W;
        int flip = b->flipped[j];
        for (int32_t c = 0; c < 3; c++) {
            float scale = 1.0f / (255.0f * l->std[c]), shift = -l->mean[c] / l->std[c];
            float *plane = dst + (size_t)c * (size_t)H * (size_t)W;
            for (int32_t y = 0; y < H; y++) {
                float *row = plane + (size_t)y * (size_t)W;
                if (y >= img->height) {
                    for (int32_t x = 0; x < W; x++) row[x] = shift; /* padding: pixel value 0 */
                    continue;
                }
                const uint8_t *src = img->data + (size_t)y * (size_t)img->width * 3 + (size_t)c;
                for (int32_t x = 0; x < img->width; x++)
                    row[x] = src[(size_t)(flip ? img->width - 1 - x : x) * 3] * scale + shift;
                for (int32_t x = img->width; x < W; x++) row[x] = shift;
            }
        }
        const coco_image *im = &l->ds->images[b->sample[j]];
        float sc = b->scale[j], vw = (float)img->width;
        b->box_first[j] = nb;
        for (int64_t k = 0; k < im->ann_count; k++) {
            const coco_ann *a = &l->ds->anns[l->ds->ann_index[im->ann_first + k]];
            float x1 = (float)a->bbox[0] * sc, y1 = (float)a->bbox[1] * sc;
            float x2 = (float)(a->bbox[0] + a->bbox[2]) * sc, y2 = (float)(a->bbox[1] + a->bbox[3]) * sc;
            if (flip) {
                float t = vw - x2;
                x2 = vw - x1;
                x1 = t;
            }
            float *bx = b->boxes + 4 * nb;
            bx[0] = x1, bx[1] = y1, bx[2] = x2, bx[3] = y2;
            b->box_class[nb] = a->class_index;
            b->box_category[nb] = a->category_id;
            b->box_ann_id[nb] = a->id;
            b->box_crowd[nb] = (uint8_t)a->iscrowd;
            nb++;
        }
    }
    b->box_first[n] = nb;
    b->num_boxes = nb;
    for (int32_t j = 0; j < n; j++) nd_image_free(&imgs[j]);
    return rc;
}
