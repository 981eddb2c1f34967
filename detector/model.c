/* The detector model: building, files (weights + config in one safetensors file). */
#include "detector/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

#define CONFIG_KEY "det.config"

void det_init_he(nn_tensor *w, nd_rng *rng) {
    nn_init_variance_scaling(w, 2.0, NN_FAN_IN, NN_DIST_NORMAL, rng);
}

int det_model_new(const det_model_config *cfg, uint64_t seed, det_model **out) {
    *out = NULL;
    int rc = det_model_config_validate(cfg);
    if (rc) return rc;
    det_model *m = calloc(1, sizeof *m);
    if (!m) return nd_fail(ND_ERR_NOMEM, "out of memory");
    if ((rc = det_model_config_copy(&m->cfg, cfg))) {
        free(m);
        return rc;
    }
    m->ps = nn_params_new();
    m->anchors_per_loc = det_anchors_per_location(&m->cfg.anchors);
    /* One stream per part, so that changing one part's size does not reshuffle the others. */
    nd_rng rng;
    nd_rng_seed_stream(&rng, seed, 1);
    if ((rc = det_backbone_build(m, &rng))) goto fail;
    nd_rng_seed_stream(&rng, seed, 2);
    det_rpn_build(m, &rng);
    nd_rng_seed_stream(&rng, seed, 3);
    if ((rc = det_roi_head_build(m, &rng))) goto fail;
    *out = m;
    return ND_OK;
fail:
    det_model_free(m);
    return rc;
}

void det_model_free(det_model *m) {
    if (!m) return;
    det_backbone_free(m);
    nn_params_free(m->ps);
    det_model_config_free(&m->cfg);
    free(m);
}

const det_model_config *det_model_cfg(const det_model *m) { return &m->cfg; }
nn_params *det_model_params(det_model *m) { return m->ps; }

/* The test-time fields of `from` over `to` (shallow: the class table stays to's). */
static void copy_test_settings(det_model_config *to, const det_model_config *from) {
    to->prop_test = from->prop_test;
    to->detect = from->detect;
    to->test_passes = from->test_passes;
}

int det_model_set_test_settings(det_model *m, const det_model_config *c) {
    det_model_config use = m->cfg;
    copy_test_settings(&use, c);
    int rc = det_model_config_validate(&use);
    if (rc == 0) copy_test_settings(&m->cfg, c);
    return rc;
}
int64_t det_model_num_params(const det_model *m) { return nn_params_numel(m->ps); }

int det_model_save(const det_model *m, const char *path, const nn_meta *extra, uint32_t flags) {
    char *cfg = NULL;
    int rc = det_model_config_to_json(&m->cfg, &cfg);
    if (rc) return rc;
    nn_meta meta;
    nn_meta_init(&meta);
    if (extra)
        for (int i = 0; i < extra->n; i++) nn_meta_set(&meta, extra->keys[i], extra->values[i]);
    nn_meta_set(&meta, CONFIG_KEY, cfg);
    nn_meta_set(&meta, "det.format", "nasdet-frcnn");
    free(cfg);
    rc = nn_checkpoint_save(path, m->ps, &meta, flags);
    nn_meta_free(&meta);
    return rc;
}

/* Read only the metadata: load into an empty store, accepting every tensor as extra. */
static int read_meta(const char *path, nn_meta *meta) {
    nn_params *empty = nn_params_new();
    int rc = nn_checkpoint_load(path, empty, meta, NN_CKPT_ALLOW_EXTRA | NN_CKPT_ALLOW_MISSING);
    nn_params_free(empty);
    return rc;
}

int det_model_load(const char *path, det_model **out, nn_meta *meta_out) {
    *out = NULL;
    nn_meta meta;
    int rc = read_meta(path, &meta);
    if (rc) return rc;
    const char *text = nn_meta_get(&meta, CONFIG_KEY);
    if (!text) {
        nn_meta_free(&meta);
        return nd_fail(ND_ERR_FORMAT,
                       "%s: not a detector model (no \"%s\" in its metadata; a backbone checkpoint "
                       "goes to train-det --backbone)",
                       path, CONFIG_KEY);
    }
    det_model_config cfg;
    if ((rc = det_model_config_from_json(text, path, &cfg))) {
        nn_meta_free(&meta);
        return rc;
    }
    det_model *m = NULL;
    rc = det_model_new(&cfg, 0, &m);
    det_model_config_free(&cfg);
    if (rc == 0) rc = nn_checkpoint_load(path, m->ps, NULL, 0);
    if (rc) {
        det_model_free(m);
        nn_meta_free(&meta);
        return rc;
    }
    *out = m;
    if (meta_out) *meta_out = meta;
    else nn_meta_free(&meta);
    return ND_OK;
}

/* The file's config with m's test-time settings (test proposals, detection thresholds, test
 * sizes), which do not change what the weights mean, as JSON. */
static int file_config_as_trained(const det_model *m, const char *text, const char *path, char **json) {
    det_model_config f;
    int rc = det_model_config_from_json(text, path, &f);
    if (rc) return rc;
    copy_test_settings(&f, &m->cfg);
    rc = det_model_config_to_json(&f, json);
    det_model_config_free(&f);
    return rc;
}

int det_model_load_weights(det_model *m, const char *path, nn_meta *meta_out) {
    nn_meta meta;
    int rc = read_meta(path, &meta);
    if (rc) return rc;
    const char *text = nn_meta_get(&meta, CONFIG_KEY);
    char *mine = NULL, *theirs = NULL;
    if (!text) {
        rc = nd_fail(ND_ERR_FORMAT, "%s: not a detector checkpoint (no \"%s\" metadata)", path, CONFIG_KEY);
    } else if ((rc = det_model_config_to_json(&m->cfg, &mine)) == 0 &&
               (rc = file_config_as_trained(m, text, path, &theirs)) == 0 && strcmp(mine, theirs) != 0) {
        rc = nd_fail(ND_ERR_INVALID,
                     "%s: the checkpoint's detector config differs from this run's (resume with the "
                     "same options)",
                     path);
    }
    free(mine), free(theirs);
    if (rc == 0) rc = nn_checkpoint_load(path, m->ps, NULL, 0);
    if (rc == 0 && meta_out) *meta_out = meta;
    else nn_meta_free(&meta);
    return rc;
}

int det_model_load_backbone(det_model *m, const char *path, int64_t *n_loaded) {
    /* Load into a store that holds only our backbone tensors (same names as the classifier's
     * builder gives them), skipping the file's head tensors, then copy them over. */
    nn_params *tmp = nn_params_new();
    int64_t nb = 0;
    for (int64_t i = 0; i < nn_params_count(m->ps); i++) {
        nn_tensor *t = nn_params_at(m->ps, i);
        /* the detector's own heads, and the classifier's head and aux head (other shapes) */
        if (strncmp(t->name, "rpn.", 4) == 0 || strncmp(t->name, "head.", 5) == 0 ||
            strncmp(t->name, "final_layer/", 12) == 0 || strncmp(t->name, "aux_logits/", 11) == 0)
            continue;
        nn_params_add(tmp, t->name, t->ndim, t->shape, nn_params_flags(m->ps, i));
        nb++;
    }
    /* First pass: which of them does the file hold? Missing ones keep NaN, so we can count. */
    for (int64_t i = 0; i < nn_params_count(tmp); i++) nn_init_constant(nn_params_at(tmp, i), NAN);
    int rc = nn_checkpoint_load(path, tmp, NULL, NN_CKPT_ALLOW_EXTRA | NN_CKPT_ALLOW_MISSING);
    int64_t got = 0;
    if (rc == 0) {
        for (int64_t i = 0; i < nn_params_count(tmp); i++) {
            nn_tensor *t = nn_params_at(tmp, i);
            if (t->numel > 0 && isnan(t->data[0])) continue;
            nn_tensor *dst = nn_params_get(m->ps, t->name);
            memcpy(dst->data, t->data, (size_t)t->numel * sizeof(float));
            got++;
        }
        if (got == 0)
            rc = nd_fail(ND_ERR_FORMAT,
                         "%s: no tensor matches the detector's backbone (%lld tensors, e.g. \"%s\"): "
                         "was it trained with the same genotype, N and F?",
                         path, (long long)nb, nb ? nn_params_at(tmp, 0)->name : "");
    }
    nn_params_free(tmp);
    if (n_loaded) *n_loaded = got;
    return rc;
}

int64_t det_image_gt(const det_batch *b, int32_t i, float *boxes, uint8_t *crowd, int32_t *class_of) {
    int64_t m = 0;
    for (int64_t j = b->box_first[i]; j < b->box_first[i + 1]; j++) {
        const float *s = b->boxes + 4 * j;
        if (!(s[2] - s[0] >= 1e-2f && s[3] - s[1] >= 1e-2f)) continue;
        memcpy(boxes + 4 * m, s, 4 * sizeof(float));
        crowd[m] = b->box_crowd ? b->box_crowd[j] : 0;
        if (class_of) class_of[m] = b->box_class[j];
        m++;
    }
    return m;
}
