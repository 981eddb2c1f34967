/* Inference: input preparation (as the training loader does it) and detections for a batch. */
#include "detector/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cvshim.h"
#include "common/status.h"

void det_detections_free(det_detections *d) {
    if (!d) return;
    free(d->boxes), free(d->scores), free(d->classes);
    memset(d, 0, sizeof *d);
}

int det_model_prepare_image(const det_model_config *c, const uint8_t *rgb, int32_t width,
                            int32_t height, int32_t channels, float **data, int32_t *h,
                            int32_t *w, int32_t *vh, int32_t *vw, float *scale) {
    *data = NULL;
    if (width < 1 || height < 1 || (channels != 1 && channels != 3) || !rgb)
        return nd_fail(ND_ERR_INVALID, "image of %dx%d pixels with %d channels: expected a non-empty gray or RGB image",
                       width, height, channels);
    /* The same arithmetic as coco's detection loader, so that test-time inputs look like the
     * training batches. */
    double shorter = width < height ? width : height, longer = width < height ? height : width;
    double s = c->min_size / shorter;
    if (longer * s > c->max_size) s = c->max_size / longer;
    int32_t rw = (int32_t)lround(width * s), rh = (int32_t)lround(height * s);
    if (rw < 1) rw = 1;
    if (rh < 1) rh = 1;
    if (rw > c->max_size) rw = c->max_size;
    if (rh > c->max_size) rh = c->max_size;
    nd_image src = {width, height, channels, (uint8_t *)rgb}, rs = {0};
    int rc = nd_image_resize(&src, rw, rh, s < 1 ? ND_INTERP_AREA : ND_INTERP_LINEAR, &rs);
    if (rc) return rc;
    int32_t H = (rh + c->size_divisor - 1) / c->size_divisor * c->size_divisor;
    int32_t W = (rw + c->size_divisor - 1) / c->size_divisor * c->size_divisor;
    float *out = malloc((size_t)3 * (size_t)H * (size_t)W * sizeof *out);
    if (!out) {
        nd_image_free(&rs);
        return nd_fail(ND_ERR_NOMEM, "out of memory for a %dx%d input", W, H);
    }
    /* [-1, 1]: (p / 255 - 0.5) / 0.5; padding is pixel value 0, as in the loader. */
    for (int32_t ch = 0; ch < 3; ch++) {
        float *plane = out + (size_t)ch * (size_t)H * (size_t)W;
        int32_t sc = rs.channels == 3 ? ch : 0;
        for (int32_t y = 0; y < H; y++)
            for (int32_t x = 0; x < W; x++) {
                float p = (y < rh && x < rw) ? rs.data[((size_t)y * (size_t)rw + (size_t)x) * (size_t)rs.channels + (size_t)sc] : 0.0f;
                plane[(size_t)y * (size_t)W + (size_t)x] = p * (2.0f / 255.0f) - 1.0f;
            }
    }
    nd_image_free(&rs);
    *data = out, *h = H, *w = W, *vh = rh, *vw = rw, *scale = (float)s;
    return ND_OK;
}

int det_model_detect(det_model *m, nn_ctx *ctx, const det_batch *b, det_detections *out) {
    return det_detect_with(m, ctx, b, &m->cfg.detect, out);
}

int det_detect_with(det_model *m, nn_ctx *ctx, const det_batch *b, const det_detect_params *dp,
                    det_detections *out) {
    for (int32_t i = 0; i < b->n; i++) memset(&out[i], 0, sizeof out[i]);
    if (b->n < 1 || b->height % 16 || b->width % 16 || b->height < 16 || b->width < 16)
        return nd_fail(ND_ERR_INVALID, "detector input: need n >= 1 and height, width multiples of 16");
    nn_ctx_reset(ctx);
    int old_grad = nn_ctx_set_grad(ctx, 0), old_train = nn_ctx_set_training(ctx, 0);
    const det_model_config *c = &m->cfg;
    const int64_t k1 = c->num_classes + 1, cap = c->prop_test.post_nms_top_n, md = dp->max_dets;
    nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(b->n, 3, b->height, b->width), b->images);
    det_features f;
    nn_tensor *logits, *deltas;
    det_backbone_forward(m, ctx, x, &f);
    det_rpn_forward(m, ctx, f.map, &logits, &deltas);
    float *anchors = det_rpn_anchors(m, f.map->shape[2], f.map->shape[3]);
    float *props = malloc((size_t)(b->n * cap) * 4 * sizeof *props);
    float *rois = malloc((size_t)(b->n * cap) * 5 * sizeof *rois);
    int64_t *np = calloc((size_t)b->n, sizeof *np);
    float *ob = malloc((size_t)md * 4 * sizeof *ob), *os = malloc((size_t)md * sizeof *os);
    int64_t *ol = malloc((size_t)md * sizeof *ol);
    int rc = (anchors && props && rois && np && ob && os && ol) ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory");
    int64_t r = 0;
    /* Host copies of the RPN outputs (the tensors themselves when the ctx runs on the CPU). */
    nn_tensor *hlogits = nn_tensor_to_host(ctx, logits), *hdeltas = nn_tensor_to_host(ctx, deltas);
    for (int32_t i = 0; i < b->n && rc == 0; i++) {
        float *p = props + (size_t)(i * cap) * 4;
        if ((rc = det_rpn_image_proposals(m, b, i, anchors, hlogits, hdeltas, &c->prop_test, p, &np[i]))) break;
        for (int64_t j = 0; j < np[i]; j++, r++) {
            rois[5 * r] = (float)i;
            memcpy(rois + 5 * r + 1, p + 4 * j, 4 * sizeof(float));
        }
    }
    nn_tensor *cls = NULL, *del = NULL;
    if (rc == 0 && r > 0) {
        det_roi_head_forward(m, ctx, &f, rois, r, &cls, &del);
        cls = nn_tensor_to_host(ctx, cls), del = nn_tensor_to_host(ctx, del);
        /* softmax in place on the logits (no tape: gradients are off) */
        for (int64_t j = 0; j < r; j++) {
            float *row = cls->data + j * k1, mx = row[0], sum = 0;
            for (int64_t k = 1; k < k1; k++) mx = row[k] > mx ? row[k] : mx;
            for (int64_t k = 0; k < k1; k++) sum += (row[k] = expf(row[k] - mx));
            for (int64_t k = 0; k < k1; k++) row[k] /= sum;
        }
    }
    int64_t off = 0;
    for (int32_t i = 0; i < b->n && rc == 0; i++) {
        int64_t cnt = 0;
        if (np[i] > 0) {
            rc = det_detect_postprocess(props + (size_t)(i * cap) * 4, cls->data + off * k1, del->data + off * 4 * k1,
                                        np[i], k1, (float)b->valid_w[i], (float)b->valid_h[i], dp, ob, os,
                                        ol, &cnt);
            if (rc) break;
        }
        off += np[i];
        det_detections *d = &out[i];
        d->boxes = malloc((size_t)(cnt ? cnt : 1) * 4 * sizeof *d->boxes);
        d->scores = malloc((size_t)(cnt ? cnt : 1) * sizeof *d->scores);
        d->classes = malloc((size_t)(cnt ? cnt : 1) * sizeof *d->classes);
        if (!d->boxes || !d->scores || !d->classes) {
            rc = nd_fail(ND_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(d->boxes, ob, (size_t)cnt * 4 * sizeof *ob);
        memcpy(d->scores, os, (size_t)cnt * sizeof *os);
        for (int64_t j = 0; j < cnt; j++) d->classes[j] = (int32_t)(ol[j] - 1);
        d->n = cnt;
    }
    free(anchors), free(props), free(rois), free(np), free(ob), free(os), free(ol);
    if (rc)
        for (int32_t i = 0; i < b->n; i++) det_detections_free(&out[i]);
    nn_ctx_set_grad(ctx, old_grad);
    nn_ctx_set_training(ctx, old_train);
    return rc;
}
