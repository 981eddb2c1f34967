/* Detection on one image at several input sizes (test-time scales). The base pass runs at the
 * size the model was trained at; each extra, larger size adds only the objects the base pass
 * sees too small (a digit 12 px tall covers 1.5 cells of a stride-8 map at the base size, 2.4
 * at 1.6x), since the large ones outgrow the anchors and the receptive field there. The passes
 * are merged by the model's per-class NMS. */
#include "detector/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

/* The detections of all passes so far, in image pixels (growing arrays). */
typedef struct pass_out {
    float *boxes, *scores;
    int32_t *classes;
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
    if (!b || !s || !c) return nd_fail(ND_ERR_NOMEM, "out of memory");
    o->cap = cap;
    return ND_OK;
}

/* One pass at input short side `size` (long side capped at max_size scaled alike), appended to
 * o with boxes in image pixels, clipped. keep_below 0: the base pass, which sets *base_scale
 * (input / image); keep_below > 0: only boxes with sqrt(area) * *base_scale < keep_below. */
static int run_pass(det_model *m, nn_ctx *ctx, const det_model_config *c, int32_t size, const uint8_t *rgb,
                    int32_t width, int32_t height, int32_t channels, float keep_below, float *base_scale,
                    pass_out *o) {
    det_model_config pc = *c; /* shallow: only the sizes change, the class table is shared */
    pc.max_size = (int32_t)lround((double)c->max_size * size / c->min_size);
    pc.min_size = size;
    float *data = NULL, scale = 1;
    int32_t h, w, vh, vw;
    int rc = det_model_prepare_image(&pc, rgb, width, height, channels, &data, &h, &w, &vh, &vw, &scale);
    if (rc) return rc;
    det_detections d = {0};
    int64_t first[2] = {0, 0};
    det_batch b = {1, h, w, data, &vh, &vw, first, NULL, NULL, NULL};
    rc = det_detect_with(m, ctx, &b, &c->detect, &d);
    free(data);
    if (rc == 0) rc = grow(o, d.n);
    if (keep_below <= 0) *base_scale = scale;
    for (int64_t j = 0; j < d.n && rc == 0; j++) {
        float q[4];
        for (int k = 0; k < 4; k++) q[k] = d.boxes[4 * j + k] / scale;
        q[0] = fminf(fmaxf(q[0], 0), (float)width), q[2] = fminf(fmaxf(q[2], 0), (float)width);
        q[1] = fminf(fmaxf(q[1], 0), (float)height), q[3] = fminf(fmaxf(q[3], 0), (float)height);
        if (keep_below > 0 && sqrtf((q[2] - q[0]) * (q[3] - q[1])) * *base_scale >= keep_below) continue;
        memcpy(o->boxes + 4 * o->n, q, sizeof q);
        o->scores[o->n] = d.scores[j], o->classes[o->n] = d.classes[j];
        o->n++;
    }
    det_detections_free(&d);
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
    use.n_test_sizes = c->n_test_sizes, use.test_small = c->test_small;
    memcpy(use.test_sizes, c->test_sizes, sizeof use.test_sizes);
    int rc = det_model_config_validate(&use);
    if (rc) return rc;
    pass_out o = {0};
    float base_scale = 1;
    rc = run_pass(m, ctx, &use, use.min_size, rgb, width, height, channels, 0, &base_scale, &o);
    for (int i = 0; i < use.n_test_sizes && rc == 0; i++)
        rc = run_pass(m, ctx, &use, use.test_sizes[i], rgb, width, height, channels, use.test_small, &base_scale, &o);
    int64_t *idx = NULL, *keep = NULL, nk = 0;
    if (rc == 0 && use.n_test_sizes == 0) { /* one pass: already NMS'ed and sorted */
        out->boxes = o.boxes, out->scores = o.scores, out->classes = o.classes, out->n = o.n;
        return ND_OK;
    }
    if (rc == 0 && o.n > 0) {
        idx = malloc((size_t)o.n * sizeof *idx), keep = malloc((size_t)o.n * sizeof *keep);
        if (!idx || !keep) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
        for (int64_t j = 0; rc == 0 && j < o.n; j++) idx[j] = o.classes[j];
        if (rc == 0)
            rc = det_nms_batched(o.boxes, o.scores, idx, o.n, use.detect.nms_thresh, use.detect.max_dets, keep, &nk);
    }
    if (rc == 0) {
        int64_t n1 = nk ? nk : 1;
        out->boxes = malloc((size_t)n1 * 4 * sizeof *out->boxes);
        out->scores = malloc((size_t)n1 * sizeof *out->scores);
        out->classes = malloc((size_t)n1 * sizeof *out->classes);
        if (!out->boxes || !out->scores || !out->classes) rc = nd_fail(ND_ERR_NOMEM, "out of memory");
        for (int64_t j = 0; rc == 0 && j < nk; j++) {
            memcpy(out->boxes + 4 * j, o.boxes + 4 * keep[j], 4 * sizeof(float));
            out->scores[j] = o.scores[keep[j]], out->classes[j] = o.classes[keep[j]];
        }
        out->n = rc == 0 ? nk : 0;
    }
    if (rc) det_detections_free(out);
    free(idx), free(keep), free(o.boxes), free(o.scores), free(o.classes);
    return rc;
}
