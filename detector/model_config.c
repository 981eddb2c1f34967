/* The detector's configuration: defaults, class table, validation. Its JSON form lives in
 * model_config_json.c. */
#include "detector/frcnn_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/args.h"
#include "common/status.h"

static const char *const layout_names[] = {"c4", "nasnet"};
static const char *const backbone_names[] = {"nasnet", "convnet"};

const char *det_layout_name(det_layout l) {
    return (unsigned)l < 2 ? layout_names[l] : "?";
}
int det_layout_parse(const char *name) {
    for (int i = 0; i < 2; i++)
        if (name && strcmp(name, layout_names[i]) == 0) return i;
    return -1;
}
const char *det_backbone_name(det_backbone_kind b) {
    return (unsigned)b < 2 ? backbone_names[b] : "?";
}
int det_backbone_parse(const char *name) {
    for (int i = 0; i < 2; i++)
        if (name && strcmp(name, backbone_names[i]) == 0) return i;
    return -1;
}

void det_model_config_default(det_model_config *c) {
    memset(c, 0, sizeof *c);
    c->layout = DET_LAYOUT_C4;
    c->backbone = DET_BACKBONE_NASNET;
    nas_genotype_builtin("nasnet-a", &c->genotype);
    c->nas_n = 4, c->nas_f = 44, c->stem_filters = 32; /* NASNet-A Mobile */
    c->conv_width = 32;
    c->bn_momentum = 0.1f, c->bn_eps = 1e-3f;
    c->min_size = 800, c->max_size = 1333, c->size_divisor = 32;
    det_anchor_params_default(&c->anchors);
    c->rpn_channels = 512;
    det_match_params_rpn(&c->rpn_match);
    c->rpn_batch = 256, c->rpn_pos_fraction = 0.5f;
    det_proposal_params_default(&c->prop_train);
    det_proposal_params_default(&c->prop_test);
    c->prop_test.pre_nms_top_n = 1000, c->prop_test.post_nms_top_n = 300;
    c->roi_size = 7, c->head_dim = 1024;
    det_match_params_roi(&c->roi_match);
    c->roi_batch = 512, c->roi_pos_fraction = 0.25f;
    c->rpn_beta = c->roi_beta = 1.0f / 9.0f;
    det_detect_params_default(&c->detect);
}

static void free_classes(det_model_config *c) {
    if (c->class_names)
        for (int32_t k = 0; k < c->num_classes; k++) free(c->class_names[k]);
    free(c->class_names);
    free(c->category_ids);
    c->class_names = NULL, c->category_ids = NULL, c->num_classes = 0;
}

void det_model_config_free(det_model_config *c) {
    if (c) free_classes(c);
}

int det_model_config_set_classes(det_model_config *c, int32_t k, const int64_t *ids,
                                 const char *const *names) {
    if (k < 1) return nd_fail(ND_ERR_INVALID, "a detector needs at least one class, got %d", k);
    for (int32_t i = 0; i < k; i++)
        for (int32_t j = 0; j < i; j++)
            if (ids[i] == ids[j])
                return nd_fail(ND_ERR_INVALID, "category id %lld appears twice in the class table",
                               (long long)ids[i]);
    int64_t *nid = malloc((size_t)k * sizeof *nid);
    char **nn = calloc((size_t)k, sizeof *nn);
    if (!nid || !nn) goto oom;
    for (int32_t i = 0; i < k; i++) {
        nid[i] = ids[i];
        char buf[48];
        const char *s = names && names[i] ? names[i] : NULL;
        if (!s) snprintf(buf, sizeof buf, "class %lld", (long long)ids[i]), s = buf;
        if (!(nn[i] = strdup(s))) goto oom;
    }
    free_classes(c);
    c->num_classes = k, c->category_ids = nid, c->class_names = nn;
    return ND_OK;
oom:
    if (nn)
        for (int32_t i = 0; i < k; i++) free(nn[i]);
    free(nn);
    free(nid);
    return nd_fail(ND_ERR_NOMEM, "out of memory copying %d class names", k);
}

int det_model_config_copy(det_model_config *dst, const det_model_config *src) {
    *dst = *src;
    dst->num_classes = 0, dst->category_ids = NULL, dst->class_names = NULL;
    if (src->num_classes > 0)
        return det_model_config_set_classes(dst, src->num_classes, src->category_ids,
                                            (const char *const *)src->class_names);
    return ND_OK;
}

int32_t det_model_config_class_of(const det_model_config *c, int64_t category_id) {
    for (int32_t k = 0; k < c->num_classes; k++)
        if (c->category_ids[k] == category_id) return k;
    return -1;
}

#define CHECK(cond, ...) \
    do { if (!(cond)) return nd_fail(ND_ERR_INVALID, "detector config: " __VA_ARGS__); } while (0)

static int check_props(const det_proposal_params *p, const char *which) {
    CHECK(p->pre_nms_top_n >= 0 && p->post_nms_top_n >= 1 && p->post_nms_top_n <= 100000,
          "%s proposals: pre_nms_top_n must be >= 0 and post_nms_top_n in 1..100000", which);
    CHECK(p->nms_thresh > 0 && p->nms_thresh <= 1, "%s proposals: nms must be in (0, 1]", which);
    CHECK(isfinite(p->min_size) && p->min_size >= 0, "%s proposals: min_size must be >= 0", which);
    CHECK(p->coder.wx > 0 && p->coder.wy > 0 && p->coder.ww > 0 && p->coder.wh > 0 &&
              isfinite(p->coder.clip),
          "%s proposals: box coder weights must be > 0", which);
    return ND_OK;
}

static int check_match(const det_match_params *m, const char *which) {
    CHECK(m->low >= 0 && m->high <= 1 && m->low <= m->high,
          "%s: IoU thresholds must satisfy 0 <= bg <= fg <= 1", which);
    return ND_OK;
}

int det_model_config_validate(const det_model_config *c) {
    CHECK(c->layout == DET_LAYOUT_C4 || c->layout == DET_LAYOUT_NASNET, "layout must be c4 or nasnet");
    CHECK(c->backbone == DET_BACKBONE_NASNET || c->backbone == DET_BACKBONE_CONVNET,
          "backbone must be nasnet or convnet");
    CHECK(!(c->layout == DET_LAYOUT_NASNET && c->backbone != DET_BACKBONE_NASNET),
          "the nasnet layout needs a NASNet backbone (its box classifier is the NASNet's last cells)");
    if (c->backbone == DET_BACKBONE_NASNET) {
        if (nas_genotype_validate(&c->genotype))
            return nd_fail_context(ND_ERR_INVALID, "detector config: genotype: ");
        CHECK(c->nas_n >= 1 && c->nas_n <= 16, "N must be in 1..16, got %d", c->nas_n);
        CHECK(c->nas_f >= 2 && c->nas_f <= 1024 && c->nas_f % 2 == 0, "F must be even, 2..1024, got %d",
              c->nas_f);
        CHECK(c->stem_filters >= 1 && c->stem_filters <= 1024, "stem_filters must be in 1..1024");
    } else {
        CHECK(c->conv_width >= 1 && c->conv_width <= 512, "conv_width must be in 1..512");
    }
    CHECK(c->bn_momentum > 0 && c->bn_momentum <= 1 && c->bn_eps > 0, "bn momentum in (0,1], eps > 0");
    CHECK(c->min_size >= 16 && c->max_size >= c->min_size && c->max_size <= 4096,
          "sizes: need 16 <= min_size <= max_size <= 4096, got %d / %d", c->min_size, c->max_size);
    CHECK(c->size_divisor >= 16 && c->size_divisor % 16 == 0 && c->size_divisor <= 256,
          "size_divisor must be a multiple of 16 up to 256");
    /* The anchor stride is the feature stride: 16 (the paper's), or 8 for the c4 layout on a
     * NASNet, whose feature map is then the last cell before the first reduction (small objects
     * cover a 2x2 area of cells there rather than one). */
    CHECK(c->anchors.stride_x == c->anchors.stride_y &&
              (c->anchors.stride_x == 16.0f ||
               (c->anchors.stride_x == 8.0f && c->layout == DET_LAYOUT_C4 && c->backbone == DET_BACKBONE_NASNET)),
          "anchor stride must be 16 (the feature stride), or 8 for the c4 layout on a NASNet, got %gx%g",
          (double)c->anchors.stride_x, (double)c->anchors.stride_y);
    float scratch[DET_ANCHOR_MAX_SCALES * DET_ANCHOR_MAX_RATIOS * 4];
    if (det_anchors_grid(&c->anchors, 1, 1, scratch))
        return nd_fail_context(ND_ERR_INVALID, "detector config: anchors: ");
    CHECK(c->rpn_channels >= 1 && c->rpn_channels <= 4096, "rpn channels must be in 1..4096");
    int rc;
    if ((rc = check_match(&c->rpn_match, "rpn")) || (rc = check_match(&c->roi_match, "roi"))) return rc;
    CHECK(c->rpn_batch >= 1 && c->rpn_pos_fraction >= 0 && c->rpn_pos_fraction <= 1,
          "rpn batch >= 1, positive fraction in [0, 1]");
    CHECK(c->roi_batch >= 1 && c->roi_pos_fraction >= 0 && c->roi_pos_fraction <= 1,
          "roi batch >= 1, positive fraction in [0, 1]");
    if ((rc = check_props(&c->prop_train, "train")) || (rc = check_props(&c->prop_test, "test"))) return rc;
    CHECK(c->roi_size >= 1 && c->roi_size <= 64, "roi size must be in 1..64");
    CHECK(c->layout != DET_LAYOUT_C4 || (c->head_dim >= 1 && c->head_dim <= 16384),
          "head_dim must be in 1..16384");
    CHECK(c->n_roi_fuse >= 0 && c->n_roi_fuse <= DET_MAX_ROI_FUSE, "roi fuse: at most %d strides",
          DET_MAX_ROI_FUSE);
    CHECK(c->n_roi_fuse == 0 || (c->layout == DET_LAYOUT_C4 && c->backbone == DET_BACKBONE_NASNET),
          "roi fuse needs the c4 layout on a NASNet backbone");
    for (int i = 0; i < c->n_roi_fuse; i++)
        CHECK((c->roi_fuse[i] == 16 || c->roi_fuse[i] == 32) && c->roi_fuse[i] > c->anchors.stride_x &&
                  (i == 0 || c->roi_fuse[i] > c->roi_fuse[i - 1]),
              "roi fuse strides must be 16 or 32, ascending and above the feature stride %g, got %d",
              (double)c->anchors.stride_x, c->roi_fuse[i]);
    CHECK(c->test_passes.n_sizes >= 0 && c->test_passes.n_sizes <= DET_MAX_TEST_SIZES, "at most %d test sizes",
          DET_MAX_TEST_SIZES);
    for (int i = 0; i < c->test_passes.n_sizes; i++)
        CHECK(c->test_passes.sizes[i] > (i ? c->test_passes.sizes[i - 1] : c->min_size) && c->test_passes.sizes[i] <= 8192,
              "test sizes must be ascending, above min_size %d and at most 8192, got %d", c->min_size,
              c->test_passes.sizes[i]);
    const det_test_passes *tp = &c->test_passes;
    CHECK(isfinite(tp->fuse_min) && isfinite(tp->fuse_max) && tp->fuse_min >= 0 && tp->fuse_max >= 0,
          "test_fuse: sizes must be >= 0, got %g, %g", (double)tp->fuse_min, (double)tp->fuse_max);
    CHECK(tp->fuse_max == 0 || tp->n_sizes > 0, "test_fuse needs test sizes to fuse");
    CHECK(tp->n_sizes == 0 || tp->fuse_max > 0 || (isfinite(tp->small) && tp->small > 0),
          "test_small must be > 0 with test sizes merged by NMS");
    CHECK(c->rpn_beta >= 0 && c->roi_beta >= 0, "smooth-L1 beta must be >= 0");
    CHECK(c->detect.score_thresh >= 0 && c->detect.score_thresh < 1 && c->detect.nms_thresh > 0 &&
              c->detect.nms_thresh <= 1 && c->detect.max_dets >= 1 && c->detect.max_dets <= 100000,
          "detect: score_thresh in [0,1), nms in (0,1], max_dets in 1..100000");
    CHECK(c->num_classes >= 1 && c->category_ids && c->class_names,
          "no classes (the class table comes from the training set's categories)");
    return ND_OK;
}

int det_model_config_parse_test_fuse(det_model_config *c, const char *pair) {
    if (strcmp(pair, "none") == 0) {
        c->test_passes.fuse_min = c->test_passes.fuse_max = 0;
        return ND_OK;
    }
    double *v = NULL;
    int n = 0;
    int bad = nd_parse_double_list(pair, &v, &n) || n != 2 || !(v[0] >= 0 && v[1] > 0 && v[1] <= 1e5 && v[0] <= 1e5);
    if (!bad) c->test_passes.fuse_min = (float)v[0], c->test_passes.fuse_max = (float)v[1];
    free(v);
    if (bad)
        return nd_fail(ND_ERR_INVALID, "test fuse \"%s\": expected MIN,MAX in pixels (MIN >= 0, MAX > 0), or none",
                       pair);
    return ND_OK;
}

int det_model_config_parse_test_sizes(det_model_config *c, const char *list) {
    if (strcmp(list, "none") == 0) { /* one pass: nothing to merge either */
        c->test_passes.n_sizes = 0;
        c->test_passes.fuse_min = c->test_passes.fuse_max = 0;
        return ND_OK;
    }
    double *v = NULL;
    int n = 0;
    if (nd_parse_double_list(list, &v, &n) || n < 1 || n > DET_MAX_TEST_SIZES) {
        free(v);
        return nd_fail(ND_ERR_INVALID, "test sizes \"%s\": expected 1 to %d sizes in pixels, or none", list,
                       DET_MAX_TEST_SIZES);
    }
    int rc = ND_OK;
    for (int i = 0; i < n; i++) {
        if (v[i] != floor(v[i]) || v[i] < 1 || v[i] > 8192)
            rc = nd_fail(ND_ERR_INVALID, "test sizes \"%s\": %g is not a size in pixels", list, v[i]);
        c->test_passes.sizes[i] = (int32_t)v[i];
    }
    c->test_passes.n_sizes = rc ? 0 : n;
    free(v);
    return rc;
}
