/* Detection on one image at several input sizes (test-time scales). The base pass runs at the
 * size the model was trained at; larger sizes help the small objects (a digit 12 px tall covers
 * 1.5 cells of a stride-8 map at the base size, 2.4 at 1.6x), while the large ones outgrow the
 * anchors and the receptive field there, so each pass keeps only the objects of the sizes it
 * sees well. The passes are merged either by the model's per-class NMS (each object from one
 * pass) or by weighted box fusion (det_fuse_boxes: boxes and scores averaged over the passes;
 * on the digits-det dev set +0.03 AP and +0.008 AP50 over NMS, from better placed boxes and
 * from ranking the boxes that several passes agree on first). */
#include "detector/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

/* The detections of all passes so far, in image pixels (growing arrays), each with its pass. */
typedef struct pass_out {
    float *boxes, *scores;
    int32_t *classes, *pass;
    int64_t n, cap;
} pass_out;

static int grow(pass_out *o, int64_t need) {
    if (o->n + need <= o->cap) return ND_OK;
    int64_t cap = (o->n + need) * 2;
    float *b = realloc(o->boxes, (size_t)cap * 4 * sizeof *b);
    if (b) o->boxes = b;
    float *s = realloc(o->scores, (size_t)cap * sizeof *s);
    if (s) o->scores = s;
    int32_t *c = realloc(o->classes, (size_t)cap * sizeof *c);
    if (c) o->classes = c;
    int32_t *p = realloc(o->pass, (size_t)cap * sizeof *p);
    if (p) o->pass = p;
    if (!b || !s || !c || !p) return nd_fail(ND_ERR_NOMEM, "out of memory");
    o->cap = cap;
    return ND_OK;
}

static void pass_out_free(pass_out *o) { free(o->boxes), free(o->scores), free(o->classes), free(o->pass); }

/* Pass number `pass` at input short side `size` (long side capped at max_size scaled alike),
 * appended to o with boxes in image pixels, clipped: those whose side (square root of the
 * area) in this pass's input pixels is in [min_side, max_side) (max_side 0: no limit). *scale
 * gets the pass's input / image. */
static int run_pass(det_model *m, nn_ctx *ctx, const det_model_config *c, int32_t pass, int32_t size,
                    const uint8_t *rgb, int32_t width, int32_t height, int32_t channels, float min_side,
                    float max_side, float *scale, pass_out *o) {
    det_model_config pc = *c; /* shallow: only the sizes change, the class table is shared */
    pc.max_size = (int32_t)lround((double)c->max_size * size / c->min_size);
    pc.min_size = size;
    float *data = NULL;
    int32_t h, w, vh, vw;
    int rc = det_model_prepare_image(&pc, rgb, width, height, channels, &data, &h, &w, &vh, &vw, scale);
    if (rc) return rc;
    det_detections d = {0};
    int64_t first[2] = {0, 0};
    det_batch b = {1, h, w, data, &vh, &vw, first, NULL, NULL, NULL};
    rc = det_detect_with(m, ctx, &b, &c->detect, &d);
    free(data);
    if (rc == 0) rc = grow(o, d.n);
    for (int64_t j = 0; j < d.n && rc == 0; j++) {
        float q[4];
        for (int k = 0; k < 4; k++) q[k] = d.boxes[4 * j + k] / *scale;
        q[0] = fminf(fmaxf(q[0], 0), (float)width), q[2] = fminf(fmaxf(q[2], 0), (float)width);
        q[1] = fminf(fmaxf(q[1], 0), (float)height), q[3] = fminf(fmaxf(q[3], 0), (float)height);
        float side = sqrtf((q[2] - q[0]) * (q[3] - q[1])) * *scale;
        if (side < min_side || (max_side > 0 && side >= max_side)) continue;
        memcpy(o->boxes + 4 * o->n, q, sizeof q);
        o->scores[o->n] = d.scores[j], o->classes[o->n] = d.classes[j], o->pass[o->n] = pass;
        o->n++;
    }
    det_detections_free(&d);
    return rc;
}

static int alloc_detections(det_detections *out, int64_t n) {
    int64_t n1 = n ? n : 1;
    out->boxes = malloc((size_t)n1 * 4 * sizeof *out->boxes);
    out->scores = malloc((size_t)n1 * sizeof *out->scores);
    out->classes = malloc((size_t)n1 * sizeof *out->classes);
    if (!out->boxes || !out->scores || !out->classes) return nd_fail(ND_ERR_NOMEM, "out of memory");
    return ND_OK;
}

/* Per-class NMS over all passes' boxes, best max_dets first. */
static int merge_nms(const pass_out *o, const det_detect_params *dp, det_detections *out) {
    size_t n1 = (size_t)(o->n ? o->n : 1);
    int64_t *idx = malloc(n1 * sizeof *idx), *keep = malloc(n1 * sizeof *keep);
    int64_t nk = 0;
    int rc = idx && keep ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory");
    for (int64_t j = 0; rc == 0 && j < o->n; j++) idx[j] = o->classes[j];
    if (rc == 0) rc = det_nms_batched(o->boxes, o->scores, idx, o->n, dp->nms_thresh, dp->max_dets, keep, &nk);
    if (rc == 0) rc = alloc_detections(out, nk);
    for (int64_t j = 0; rc == 0 && j < nk; j++) {
        memcpy(out->boxes + 4 * j, o->boxes + 4 * keep[j], 4 * sizeof(float));
        out->scores[j] = o->scores[keep[j]], out->classes[j] = o->classes[keep[j]];
    }
    out->n = rc == 0 ? nk : 0;
    free(idx), free(keep);
    return rc;
}

int det_model_detect_image(det_model *m, nn_ctx *ctx, const det_model_config *c, const uint8_t *rgb,
                           int32_t width, int32_t height, int32_t channels, det_detections *out) {
    memset(out, 0, sizeof *out);
    const det_model_config *mc = det_model_cfg(m);
    if (!c) c = mc;
    /* Overrides come from a copy of the model's config: the architecture must not differ. */
    det_model_config use = *mc;
    use.detect = c->detect;
    use.test_passes = c->test_passes;
    int rc = det_model_config_validate(&use);
    if (rc) return rc;
    const det_test_passes *tp = &use.test_passes;
    const int fuse = tp->fuse_max > 0;
    const int32_t np = 1 + tp->n_sizes;
    float scale[1 + DET_MAX_TEST_SIZES], min_side[1 + DET_MAX_TEST_SIZES], max_side[1 + DET_MAX_TEST_SIZES];
    for (int32_t p = 0; p < np; p++) {
        int32_t size = p == 0 ? use.min_size : tp->sizes[p - 1];
        if (fuse) min_side[p] = p == 0 ? tp->fuse_min : 0, max_side[p] = p == 0 ? 0 : tp->fuse_max;
        else min_side[p] = 0, max_side[p] = p == 0 ? 0 : tp->small * (float)size / (float)use.min_size;
    }
    pass_out o = {0};
    for (int32_t p = 0; p < np && rc == 0; p++)
        rc = run_pass(m, ctx, &use, p, p == 0 ? use.min_size : tp->sizes[p - 1], rgb, width, height, channels,
                      min_side[p], max_side[p], &scale[p], &o);
    if (rc == 0 && np == 1) { /* one pass: already NMS'ed and sorted */
        out->boxes = o.boxes, out->scores = o.scores, out->classes = o.classes, out->n = o.n;
        free(o.pass);
        return ND_OK;
    }
    if (rc == 0 && fuse) {
        det_fuse_passes fp = {np, scale, min_side, max_side};
        int64_t cap = o.n < use.detect.max_dets ? o.n : use.detect.max_dets;
        if ((rc = alloc_detections(out, cap)) == 0)
            rc = det_fuse_boxes(o.boxes, o.scores, o.classes, o.pass, o.n, &fp, DET_FUSE_IOU, use.detect.score_thresh,
                                use.detect.max_dets, out->boxes, out->scores, out->classes, &out->n);
    } else if (rc == 0) {
        rc = merge_nms(&o, &use.detect, out);
    }
    if (rc) det_detections_free(out);
    pass_out_free(&o);
    return rc;
}
