/* The driver's checkpoint: one safetensors file holding the controller's weights and Adam
 * moments, with everything else (config, RNG, baseline, batch counters, the work queue as
 * JSON) in its metadata, so one atomic rename moves the whole search state forward. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "search/driver_impl.h"

char *srch_drv_describe(const srch_driver_config *cfg) {
    const srch_policy_config *p = &cfg->policy;
    srch_space s;
    const char *space = srch_space_init(&s, cfg->space) == 0 ? s.name : "?";
    const char *child = cfg->child_desc ? cfg->child_desc : "";
    size_t len = strlen(child) + 512;
    char *text = malloc(len);
    if (!text) return NULL;
    snprintf(text, len,
             "{\"strategy\":\"%s\",\"space\":\"%s\",\"batch\":%d,\"seed\":\"%" PRIu64 "\",\"hidden\":%d,"
             "\"init_range\":%.17g,\"lr\":%.17g,\"entropy_weight\":%.17g,\"baseline_decay\":%.17g,"
             "\"clip_eps\":%.17g,\"epochs\":%d,\"child\":%s}",
             srch_strategy_name(cfg->strategy), space, cfg->batch, cfg->seed, cfg->hidden, cfg->init_range, p->lr,
             p->entropy_weight, p->baseline_decay, p->clip_eps, p->epochs, child[0] ? child : "null");
    return text;
}

static void set_double(nn_meta *m, const char *key, double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    nn_meta_set(m, key, buf);
}

int srch_drv_save(const srch_drv *d) {
    char *queue;
    int rc = srch_queue_to_json(d->q, &queue);
    if (rc) return rc;
    nn_meta m;
    nn_meta_init(&m);
    nn_meta_set(&m, "srch.format", "1");
    nn_meta_set(&m, "srch.run", d->run_desc);
    nn_meta_set_rng(&m, "srch.rng", &d->rng);
    set_double(&m, "srch.baseline", d->policy.baseline);
    nn_meta_set_int(&m, "srch.baseline_set", d->policy.baseline_set);
    nn_meta_set_int(&m, "srch.updates", d->policy.updates);
    nn_meta_set_int(&m, "srch.batch", d->batch);
    nn_meta_set_int(&m, "srch.next_batch", d->next_batch);
    nn_meta_set(&m, "srch.queue", queue);
    free(queue);
    rc = nn_checkpoint_save(d->ckpt_path, srch_controller_params(d->ctrl), &m, NN_CKPT_OPTIM);
    nn_meta_free(&m);
    return rc;
}

static int get_int(const nn_meta *m, const char *path, const char *key, int64_t lo, int64_t hi, int64_t *v) {
    int rc = nn_meta_get_int(m, key, v);
    if (rc) return nd_fail_context(rc, "%s: ", path);
    if (*v < lo || *v > hi)
        return nd_fail(ND_ERR_FORMAT, "%s: metadata %s = %lld, expected %lld..%lld", path, key, (long long)*v,
                       (long long)lo, (long long)hi);
    return ND_OK;
}

int srch_drv_load(srch_drv *d) {
    const char *path = d->ckpt_path;
    nn_meta m;
    int rc = nn_checkpoint_load(path, srch_controller_params(d->ctrl), &m, 0);
    if (rc) return rc;
    const char *fmt = nn_meta_get(&m, "srch.format"), *run = nn_meta_get(&m, "srch.run");
    const char *queue = nn_meta_get(&m, "srch.queue"), *baseline = nn_meta_get(&m, "srch.baseline");
    if (!fmt || strcmp(fmt, "1") != 0 || !run || !queue || !baseline)
        rc = nd_fail(ND_ERR_FORMAT, "%s: not a search checkpoint (metadata srch.format/run/queue/baseline missing)",
                     path);
    if (!rc && strcmp(run, d->run_desc) != 0)
        rc = nd_fail(ND_ERR_INVALID,
                     "%s: this run was started with other settings; resume with the same ones (only --children may "
                     "change)\n  stored: %s\n  given:  %s",
                     path, run, d->run_desc);
    if (!rc) rc = nn_meta_get_rng(&m, "srch.rng", &d->rng);
    if (!rc) {
        char *end;
        d->policy.baseline = strtod(baseline, &end);
        if (end == baseline || *end) rc = nd_fail(ND_ERR_FORMAT, "%s: metadata srch.baseline = \"%s\"", path, baseline);
    }
    int64_t v;
    if (!rc && !(rc = get_int(&m, path, "srch.baseline_set", 0, 1, &v))) d->policy.baseline_set = (int)v;
    if (!rc && !(rc = get_int(&m, path, "srch.updates", 0, INT64_MAX / 2, &v))) d->policy.updates = v;
    if (!rc && !(rc = get_int(&m, path, "srch.next_batch", 0, INT64_MAX / 2, &v))) d->next_batch = v;
    if (!rc && !(rc = get_int(&m, path, "srch.batch", -1, d->next_batch - 1, &v))) d->batch = v;
    if (!rc) {
        srch_queue *q;
        rc = srch_queue_from_json(queue, &q);
        if (rc) rc = nd_fail_context(rc, "%s: metadata srch.queue: ", path);
        else {
            srch_queue_free(d->q);
            d->q = q;
        }
    }
    nn_meta_free(&m);
    return rc;
}
