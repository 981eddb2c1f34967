/* det_model_config <-> JSON (the "det.config" metadata of a model file). Every field is
 * written, and every field is required when reading: a model file must describe its model
 * completely, and a missing key means a file from something else. */
#include "detector/frcnn_model.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

enum { CONFIG_VERSION = 1 };

/* ---- writing ------------------------------------------------------------------------------ */

static cJSON *num_array(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    return a;
}

static cJSON *props_json(const det_proposal_params *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pre_nms_top_n", (double)p->pre_nms_top_n);
    cJSON_AddNumberToObject(o, "post_nms_top_n", (double)p->post_nms_top_n);
    cJSON_AddNumberToObject(o, "nms", (double)p->nms_thresh);
    cJSON_AddNumberToObject(o, "min_size", (double)p->min_size);
    cJSON_AddNumberToObject(o, "score_thresh", (double)p->score_thresh);
    float cw[5] = {p->coder.wx, p->coder.wy, p->coder.ww, p->coder.wh, p->coder.clip};
    cJSON_AddItemToObject(o, "coder", num_array(cw, 5));
    return o;
}

static cJSON *match_json(const det_match_params *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "fg_iou", (double)m->high);
    cJSON_AddNumberToObject(o, "bg_iou", (double)m->low);
    cJSON_AddBoolToObject(o, "low_quality", m->allow_low_quality != 0);
    cJSON_AddNumberToObject(o, "crowd_ioa", (double)m->crowd_ioa);
    return o;
}

int det_model_config_to_json(const det_model_config *c, char **text) {
    int rc = det_model_config_validate(c);
    if (rc) return rc;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", CONFIG_VERSION);
    cJSON_AddStringToObject(o, "layout", det_layout_name(c->layout));
    cJSON_AddStringToObject(o, "backbone", det_backbone_name(c->backbone));
    char *g = NULL;
    if (nas_genotype_to_json(&c->genotype, 0, &g) == 0) {
        cJSON_AddItemToObject(o, "genotype", cJSON_Parse(g));
        free(g);
    } else {
        cJSON_AddNullToObject(o, "genotype");
    }
    cJSON_AddNumberToObject(o, "N", c->nas_n);
    cJSON_AddNumberToObject(o, "F", c->nas_f);
    cJSON_AddNumberToObject(o, "stem_filters", c->stem_filters);
    cJSON_AddBoolToObject(o, "skip_reduction_input", c->skip_reduction_input != 0);
    cJSON_AddNumberToObject(o, "conv_width", c->conv_width);
    cJSON_AddNumberToObject(o, "bn_momentum", (double)c->bn_momentum);
    cJSON_AddNumberToObject(o, "bn_eps", (double)c->bn_eps);
    cJSON_AddNumberToObject(o, "min_size", c->min_size);
    cJSON_AddNumberToObject(o, "max_size", c->max_size);
    cJSON_AddNumberToObject(o, "size_divisor", c->size_divisor);
    cJSON_AddStringToObject(o, "normalization", "[-1,1]");

    const det_anchor_params *a = &c->anchors;
    cJSON *an = cJSON_AddObjectToObject(o, "anchors");
    cJSON_AddItemToObject(an, "scales", num_array(a->scales, a->n_scales));
    cJSON_AddItemToObject(an, "ratios", num_array(a->ratios, a->n_ratios));
    float base[2] = {a->base_h, a->base_w}, stride[2] = {a->stride_y, a->stride_x},
          off[2] = {a->offset_y, a->offset_x};
    cJSON_AddItemToObject(an, "base", num_array(base, 2));
    cJSON_AddItemToObject(an, "stride", num_array(stride, 2));
    cJSON_AddItemToObject(an, "offset", num_array(off, 2));

    cJSON *rpn = cJSON_AddObjectToObject(o, "rpn");
    cJSON_AddNumberToObject(rpn, "channels", c->rpn_channels);
    cJSON_AddItemToObject(rpn, "match", match_json(&c->rpn_match));
    cJSON_AddNumberToObject(rpn, "batch", (double)c->rpn_batch);
    cJSON_AddNumberToObject(rpn, "pos_fraction", (double)c->rpn_pos_fraction);
    cJSON_AddNumberToObject(rpn, "beta", (double)c->rpn_beta);
    cJSON_AddItemToObject(rpn, "train", props_json(&c->prop_train));
    cJSON_AddItemToObject(rpn, "test", props_json(&c->prop_test));

    cJSON *roi = cJSON_AddObjectToObject(o, "roi");
    cJSON_AddNumberToObject(roi, "size", c->roi_size);
    cJSON_AddNumberToObject(roi, "head_dim", c->head_dim);
    if (c->n_roi_fuse > 0) { /* written only when used: older models stay byte-identical */
        float fuse[DET_MAX_ROI_FUSE];
        for (int i = 0; i < c->n_roi_fuse; i++) fuse[i] = (float)c->roi_fuse[i];
        cJSON_AddItemToObject(roi, "fuse", num_array(fuse, c->n_roi_fuse));
    }
    cJSON_AddItemToObject(roi, "match", match_json(&c->roi_match));
    cJSON_AddNumberToObject(roi, "batch", (double)c->roi_batch);
    cJSON_AddNumberToObject(roi, "pos_fraction", (double)c->roi_pos_fraction);
    cJSON_AddNumberToObject(roi, "beta", (double)c->roi_beta);

    const det_detect_params *d = &c->detect;
    cJSON *de = cJSON_AddObjectToObject(o, "detect");
    if (c->test_passes.n_sizes > 0) { /* written only when used: older models stay byte-identical */
        float sizes[DET_MAX_TEST_SIZES];
        for (int i = 0; i < c->test_passes.n_sizes; i++) sizes[i] = (float)c->test_passes.sizes[i];
        cJSON_AddItemToObject(de, "test_sizes", num_array(sizes, c->test_passes.n_sizes));
        cJSON_AddNumberToObject(de, "test_small", (double)c->test_passes.small);
        if (c->test_passes.fuse_max > 0) {
            float fuse[2] = {c->test_passes.fuse_min, c->test_passes.fuse_max};
            cJSON_AddItemToObject(de, "test_fuse", num_array(fuse, 2));
        }
    }
    cJSON_AddNumberToObject(de, "score_thresh", (double)d->score_thresh);
    cJSON_AddNumberToObject(de, "nms", (double)d->nms_thresh);
    cJSON_AddNumberToObject(de, "max_dets", (double)d->max_dets);
    cJSON_AddNumberToObject(de, "min_size", (double)d->min_size);
    float dw[5] = {d->coder.wx, d->coder.wy, d->coder.ww, d->coder.wh, d->coder.clip};
    cJSON_AddItemToObject(de, "coder", num_array(dw, 5));

    cJSON *cl = cJSON_AddArrayToObject(o, "classes");
    for (int32_t k = 0; k < c->num_classes; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "category_id", (double)c->category_ids[k]);
        cJSON_AddStringToObject(e, "name", c->class_names[k]);
        cJSON_AddItemToArray(cl, e);
    }
    *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *text ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory writing the detector config");
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct reader {
    const char *name;
    int rc;
} reader;

static const cJSON *get(reader *r, const cJSON *obj, const char *path, const char *key) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!v && r->rc == 0)
        r->rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: %s%s: missing", r->name, path, key);
    return v;
}

static double num(reader *r, const cJSON *obj, const char *path, const char *key) {
    const cJSON *v = get(r, obj, path, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        if (r->rc == 0)
            r->rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: %s%s: expected a finite number",
                            r->name, path, key);
        return 0;
    }
    return v->valuedouble;
}

static int32_t int32(reader *r, const cJSON *obj, const char *path, const char *key) {
    double v = num(r, obj, path, key);
    if (v != floor(v) || fabs(v) > 2e9) {
        if (r->rc == 0)
            r->rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: %s%s: expected an integer", r->name,
                            path, key);
        return 0;
    }
    return (int32_t)v;
}

static int64_t int64(reader *r, const cJSON *obj, const char *path, const char *key) {
    double v = num(r, obj, path, key);
    if (v != floor(v) || fabs(v) > 9e15) {
        if (r->rc == 0)
            r->rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: %s%s: expected an integer", r->name,
                            path, key);
        return 0;
    }
    return (int64_t)v;
}

static const char *str(reader *r, const cJSON *obj, const char *path, const char *key) {
    const cJSON *v = get(r, obj, path, key);
    if (v && !cJSON_IsString(v)) {
        if (r->rc == 0)
            r->rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: %s%s: expected a string", r->name,
                            path, key);
        return NULL;
    }
    return v ? v->valuestring : NULL;
}

/* Up to `max` numbers; returns the count read. */
static int nums(reader *r, const cJSON *obj, const char *path, const char *key, float *out, int min,
                int max) {
    const cJSON *v = get(r, obj, path, key);
    if (!v) return 0;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < min || n > max) {
        if (r->rc == 0)
            r->rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: %s%s: expected an array of %d to %d numbers",
                            r->name, path, key, min, max);
        return 0;
    }
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) {
            if (r->rc == 0)
                r->rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: %s%s[%d]: expected a number",
                                r->name, path, key, i);
            return 0;
        }
        out[i] = (float)e->valuedouble;
    }
    return n;
}

/* An optional array of up to `max` integers (keys newer than some model files): the count, 0
 * when absent. */
static int optional_ints(reader *r, const cJSON *obj, const char *path, const char *key, int32_t *out, int max) {
    if (!obj || !cJSON_GetObjectItemCaseSensitive(obj, key)) return 0;
    float v[8] = {0};
    int n = nums(r, obj, path, key, v, 0, max < 8 ? max : 8);
    for (int i = 0; i < n; i++) {
        out[i] = (int32_t)v[i];
        if (r->rc == 0 && (float)out[i] != v[i])
            r->rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: %s%s[%d]: expected an integer", r->name, path, key, i);
    }
    return n;
}

static void read_coder(reader *r, const cJSON *o, const char *path, det_box_coder *c) {
    float v[5] = {0};
    nums(r, o, path, "coder", v, 5, 5);
    c->wx = v[0], c->wy = v[1], c->ww = v[2], c->wh = v[3], c->clip = v[4];
}

static void read_props(reader *r, const cJSON *o, const char *path, det_proposal_params *p) {
    p->pre_nms_top_n = int64(r, o, path, "pre_nms_top_n");
    p->post_nms_top_n = int64(r, o, path, "post_nms_top_n");
    p->nms_thresh = (float)num(r, o, path, "nms");
    p->min_size = (float)num(r, o, path, "min_size");
    p->score_thresh = (float)num(r, o, path, "score_thresh");
    read_coder(r, o, path, &p->coder);
}

static void read_match(reader *r, const cJSON *o, const char *path, det_match_params *m) {
    m->high = (float)num(r, o, path, "fg_iou");
    m->low = (float)num(r, o, path, "bg_iou");
    const cJSON *lq = get(r, o, path, "low_quality");
    m->allow_low_quality = lq && cJSON_IsTrue(lq);
    m->crowd_ioa = (float)num(r, o, path, "crowd_ioa");
}

int det_model_config_from_json(const char *text, const char *name, det_model_config *c) {
    det_model_config_default(c);
    cJSON *o = cJSON_Parse(text);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return nd_fail(ND_ERR_FORMAT, "%s: detector config is not a JSON object", name);
    }
    reader r = {name, 0};
    int64_t version = int64(&r, o, "", "version");
    if (r.rc == 0 && version != CONFIG_VERSION)
        r.rc = nd_fail(ND_ERR_FORMAT, "%s: detector config version %lld, this build reads %d", name,
                       (long long)version, CONFIG_VERSION);
    const char *s = str(&r, o, "", "layout");
    int v = s ? det_layout_parse(s) : 0;
    if (r.rc == 0 && v < 0)
        r.rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: layout: expected \"c4\" or \"nasnet\", got \"%s\"",
                       name, s);
    c->layout = (det_layout)(v < 0 ? 0 : v);
    s = str(&r, o, "", "backbone");
    v = s ? det_backbone_parse(s) : 0;
    if (r.rc == 0 && v < 0)
        r.rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: backbone: expected \"nasnet\" or \"convnet\", got \"%s\"",
                       name, s);
    c->backbone = (det_backbone_kind)(v < 0 ? 0 : v);
    const cJSON *g = get(&r, o, "", "genotype");
    if (r.rc == 0 && cJSON_IsObject(g)) {
        char *gt = cJSON_PrintUnformatted(g);
        if (!gt || nas_genotype_parse(gt, &c->genotype))
            r.rc = nd_fail_context(ND_ERR_FORMAT, "%s: detector config: genotype: ", name);
        free(gt);
    } else if (r.rc == 0 && c->backbone == DET_BACKBONE_NASNET) {
        r.rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: genotype: expected an object", name);
    }
    c->nas_n = int32(&r, o, "", "N");
    c->nas_f = int32(&r, o, "", "F");
    c->stem_filters = int32(&r, o, "", "stem_filters");
    const cJSON *sk = get(&r, o, "", "skip_reduction_input");
    c->skip_reduction_input = sk && cJSON_IsTrue(sk);
    c->conv_width = int32(&r, o, "", "conv_width");
    c->bn_momentum = (float)num(&r, o, "", "bn_momentum");
    c->bn_eps = (float)num(&r, o, "", "bn_eps");
    c->min_size = int32(&r, o, "", "min_size");
    c->max_size = int32(&r, o, "", "max_size");
    c->size_divisor = int32(&r, o, "", "size_divisor");

    const cJSON *an = get(&r, o, "", "anchors");
    det_anchor_params *a = &c->anchors;
    a->n_scales = nums(&r, an, "anchors.", "scales", a->scales, 1, DET_ANCHOR_MAX_SCALES);
    a->n_ratios = nums(&r, an, "anchors.", "ratios", a->ratios, 1, DET_ANCHOR_MAX_RATIOS);
    float two[2] = {0};
    nums(&r, an, "anchors.", "base", two, 2, 2), a->base_h = two[0], a->base_w = two[1];
    nums(&r, an, "anchors.", "stride", two, 2, 2), a->stride_y = two[0], a->stride_x = two[1];
    nums(&r, an, "anchors.", "offset", two, 2, 2), a->offset_y = two[0], a->offset_x = two[1];

    const cJSON *rpn = get(&r, o, "", "rpn");
    c->rpn_channels = int32(&r, rpn, "rpn.", "channels");
    read_match(&r, get(&r, rpn, "rpn.", "match"), "rpn.match.", &c->rpn_match);
    c->rpn_batch = int64(&r, rpn, "rpn.", "batch");
    c->rpn_pos_fraction = (float)num(&r, rpn, "rpn.", "pos_fraction");
    c->rpn_beta = (float)num(&r, rpn, "rpn.", "beta");
    read_props(&r, get(&r, rpn, "rpn.", "train"), "rpn.train.", &c->prop_train);
    read_props(&r, get(&r, rpn, "rpn.", "test"), "rpn.test.", &c->prop_test);

    const cJSON *roi = get(&r, o, "", "roi");
    c->roi_size = int32(&r, roi, "roi.", "size");
    c->head_dim = int32(&r, roi, "roi.", "head_dim");
    c->n_roi_fuse = optional_ints(&r, roi, "roi.", "fuse", c->roi_fuse, DET_MAX_ROI_FUSE);
    read_match(&r, get(&r, roi, "roi.", "match"), "roi.match.", &c->roi_match);
    c->roi_batch = int64(&r, roi, "roi.", "batch");
    c->roi_pos_fraction = (float)num(&r, roi, "roi.", "pos_fraction");
    c->roi_beta = (float)num(&r, roi, "roi.", "beta");

    const cJSON *de = get(&r, o, "", "detect");
    c->detect.score_thresh = (float)num(&r, de, "detect.", "score_thresh");
    c->detect.nms_thresh = (float)num(&r, de, "detect.", "nms");
    c->detect.max_dets = int64(&r, de, "detect.", "max_dets");
    c->test_passes.n_sizes = optional_ints(&r, de, "detect.", "test_sizes", c->test_passes.sizes, DET_MAX_TEST_SIZES);
    if (c->test_passes.n_sizes > 0) c->test_passes.small = (float)num(&r, de, "detect.", "test_small");
    if (de && cJSON_GetObjectItemCaseSensitive(de, "test_fuse")) { /* newer than some model files */
        float fuse[2] = {0, 0};
        if (nums(&r, de, "detect.", "test_fuse", fuse, 2, 2) == 2)
            c->test_passes.fuse_min = fuse[0], c->test_passes.fuse_max = fuse[1];
    }
    c->detect.min_size = (float)num(&r, de, "detect.", "min_size");
    read_coder(&r, de, "detect.", &c->detect.coder);

    const cJSON *cl = get(&r, o, "", "classes");
    int k = cl && cJSON_IsArray(cl) ? cJSON_GetArraySize(cl) : 0;
    if (r.rc == 0 && k < 1)
        r.rc = nd_fail(ND_ERR_FORMAT, "%s: detector config: classes: expected a non-empty array", name);
    if (r.rc == 0) {
        int64_t *ids = calloc((size_t)k, sizeof *ids);
        const char **names = calloc((size_t)k, sizeof *names);
        if (!ids || !names) r.rc = nd_fail(ND_ERR_NOMEM, "out of memory");
        int i = 0;
        char path[48];
        for (const cJSON *e = cl->child; e && r.rc == 0; e = e->next, i++) {
            snprintf(path, sizeof path, "classes[%d].", i);
            ids[i] = int64(&r, e, path, "category_id");
            names[i] = str(&r, e, path, "name");
        }
        if (r.rc == 0) r.rc = det_model_config_set_classes(c, k, ids, names);
        free(ids);
        free(names);
    }
    cJSON_Delete(o);
    if (r.rc == 0 && det_model_config_validate(c)) r.rc = nd_fail_context(ND_ERR_FORMAT, "%s: ", name);
    if (r.rc) det_model_config_free(c);
    return r.rc;
}
