/* COCO evaluation of a detector on a COCO-format data set: detect every image through coco's
 * loader (no flip, no shuffle), map boxes back to the original pixels, evaluate with
 * eval/cocoeval.h in memory. */
#include "detector/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coco/coco.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/status.h"
#include "eval/cocoeval.h"

/* Class table of the model against the data set's categories (sorted by id = class index). */
static int check_classes(const det_model_config *c, const coco_dataset *ds, const char *path) {
    if (ds->num_classes != c->num_classes)
        return nd_fail(ND_ERR_INVALID, "%s: %d categories, the model has %d classes", path, ds->num_classes,
                       c->num_classes);
    for (int32_t k = 0; k < c->num_classes; k++)
        if (ds->categories[k].id != c->category_ids[k])
            return nd_fail(ND_ERR_INVALID, "%s: category %d has id %lld, the model's class %d is category %lld",
                           path, k, (long long)ds->categories[k].id, k, (long long)c->category_ids[k]);
    return ND_OK;
}

int det_check_dataset_classes(const det_model_config *c, const void *ds, const char *path) {
    return check_classes(c, (const coco_dataset *)ds, path);
}

int det_evaluate_coco(det_model *m, const char *ann_path, const char *img_dir, int64_t max_images,
                      int32_t batch, int32_t loader_threads, FILE *progress, double stats[12]) {
    const det_model_config *c = &m->cfg;
    coco_dataset ds = {0};
    ceval_gt *gt = NULL;
    ceval_dets *dt = NULL;
    ceval_result *res = NULL;
    coco_loader *ld = NULL;
    nn_ctx *ctx = NULL;
    ceval_det *dets = NULL;
    double *img_ids = NULL;
    int64_t n_dets = 0, cap = 0, n_img = 0;
    int rc = coco_dataset_read(ann_path, &ds);
    if (rc == 0) rc = check_classes(c, &ds, ann_path);
    if (rc == 0) rc = ceval_gt_load(ann_path, &gt);
    coco_det_opts o;
    coco_det_opts_default(&o);
    o.batch_size = batch > 0 ? batch : 1;
    o.threads = loader_threads, o.shuffle = 0, o.flip = 0, o.epochs = 1;
    o.min_side = c->min_size, o.max_side = c->max_size, o.size_divisor = c->size_divisor;
    if (rc == 0) rc = coco_loader_det_new(&ds, img_dir, &o, &ld);
    int64_t total = max_images > 0 && max_images < ds.num_images ? max_images : ds.num_images;
    if (rc == 0) {
        img_ids = malloc((size_t)(total > 0 ? total : 1) * sizeof *img_ids);
        ctx = nn_ctx_new_like(det_model_params(m)); /* on the model's device */
        if (!img_ids) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    nd_progress pr;
    nd_progress_init(&pr, progress, "eval", "img", total);
    while (rc == 0 && n_img < total) {
        const coco_batch *cb = NULL;
        int lr = coco_loader_next(ld, &cb);
        if (lr) {
            ND_WARN("evaluation: %s (batch skipped)", nd_last_error());
            continue;
        }
        if (!cb) break;
        det_batch b = {cb->n, cb->height, cb->width, cb->images, cb->valid_h, cb->valid_w,
                       cb->box_first, cb->boxes, cb->box_class, cb->box_crowd};
        det_detections *d = calloc((size_t)cb->n, sizeof *d);
        if (!d) {
            rc = nd_fail(ND_ERR_NOMEM, "out of memory");
            break;
        }
        if ((rc = det_model_detect(m, ctx, &b, d))) {
            free(d);
            break;
        }
        for (int32_t i = 0; i < cb->n && n_img < total; i++) {
            img_ids[n_img++] = (double)cb->image_ids[i];
            if (n_dets + d[i].n > cap) {
                int64_t nc = (cap ? cap * 2 : 1024) + d[i].n;
                ceval_det *nd = realloc(dets, (size_t)nc * sizeof *nd);
                if (!nd) {
                    rc = nd_fail(ND_ERR_NOMEM, "out of memory");
                    break;
                }
                dets = nd, cap = nc;
            }
            float s = cb->scale[i], ow = (float)cb->orig_w[i], oh = (float)cb->orig_h[i];
            for (int64_t j = 0; j < d[i].n; j++) {
                const float *q = d[i].boxes + 4 * j;
                float x1 = fminf(fmaxf(q[0] / s, 0), ow), y1 = fminf(fmaxf(q[1] / s, 0), oh);
                float x2 = fminf(fmaxf(q[2] / s, 0), ow), y2 = fminf(fmaxf(q[3] / s, 0), oh);
                ceval_det *e = &dets[n_dets++];
                e->image_id = cb->image_ids[i];
                e->category_id = c->category_ids[d[i].classes[j]];
                e->score = d[i].scores[j];
                e->bbox[0] = x1, e->bbox[1] = y1, e->bbox[2] = x2 - x1, e->bbox[3] = y2 - y1;
            }
        }
        for (int32_t i = 0; i < cb->n; i++) det_detections_free(&d[i]);
        free(d);
        nd_progress_update(&pr, n_img, NULL);
    }
    if (rc == 0) {
        nd_progress_finish(&pr, n_img, NULL);
        rc = ceval_dets_from_boxes(gt, dets, n_dets, &dt);
    }
    if (rc == 0) {
        ceval_params p;
        ceval_params_init(&p, CEVAL_BBOX);
        p.img_ids = img_ids, p.n_img_ids = n_img;
        rc = ceval_evaluate(gt, dt, &p, &res);
    }
    if (rc == 0) memcpy(stats, res->stats, 12 * sizeof(double));
    ceval_result_free(res);
    ceval_dets_free(dt);
    ceval_gt_free(gt);
    coco_loader_free(ld);
    coco_dataset_free(&ds);
    nn_ctx_free(ctx);
    free(dets), free(img_ids);
    return rc;
}
