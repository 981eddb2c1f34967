/* Network configurations: TF-slim's presets, validation, and the JSON form kept in
 * checkpoints so that a checkpoint alone rebuilds its network. */
#include "backbone/net_internal.h"

#include "common/status.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const PRESETS[] = {"nasnet-a-cifar", "nasnet-a-cifar-large", "nasnet-a-mobile", "nasnet-a-large",
                                      NULL};

const char *const *nas_net_preset_names(void) { return PRESETS; }

/* TF-slim nasnet.py cifar_config / mobile_imagenet_config / large_imagenet_config, with the
 * arg scopes' BN decay/epsilon and L2 weight decay. */
static void cifar_config(nas_net_config *c) {
    memset(c, 0, sizeof *c);
    nas_genotype_builtin("nasnet-a", &c->genotype);
    c->stem = NAS_STEM_CIFAR;
    c->num_cells = 6;
    c->num_conv_filters = 32;
    c->stem_multiplier = 3.0;
    c->filter_scaling_rate = 2.0;
    c->num_reduction_layers = 2;
    c->num_classes = 10;
    c->image_size = 32;
    c->in_channels = 3;
    c->use_aux_head = 1;
    c->skip_reduction_layer_input = 0;
    c->bn_eps = 1e-5f;
    c->bn_momentum = 0.1f; /* decay 0.9 */
    c->drop_path_keep_prob = 0.6;
    c->dense_dropout_keep_prob = 1.0;
    c->total_training_steps = 937500;
    c->weight_decay = 5e-4;
}

static void imagenet_config(nas_net_config *c) {
    cifar_config(c);
    c->stem = NAS_STEM_IMAGENET;
    c->num_classes = 1000;
    c->bn_eps = 1e-3f;
    c->bn_momentum = 0.0003f; /* decay 0.9997 */
    c->dense_dropout_keep_prob = 0.5;
    c->total_training_steps = 250000;
}

int nas_net_preset(const char *name, nas_net_config *cfg) {
    if (name && !strcmp(name, "nasnet-a-cifar")) {
        cifar_config(cfg);
    } else if (name && !strcmp(name, "nasnet-a-cifar-large")) {
        cifar_config(cfg);
        cfg->num_cells = 7;
        cfg->num_conv_filters = 96;
    } else if (name && !strcmp(name, "nasnet-a-mobile")) {
        imagenet_config(cfg);
        cfg->num_cells = 4;
        cfg->num_conv_filters = 44;
        cfg->stem_multiplier = 1.0;
        cfg->image_size = 224;
        cfg->drop_path_keep_prob = 1.0;
        cfg->weight_decay = 4e-5;
    } else if (name && !strcmp(name, "nasnet-a-large")) {
        imagenet_config(cfg);
        cfg->num_cells = 6;
        cfg->num_conv_filters = 168;
        cfg->stem_multiplier = 3.0;
        cfg->image_size = 331;
        cfg->drop_path_keep_prob = 0.7;
        cfg->skip_reduction_layer_input = 1;
        cfg->weight_decay = 5e-5;
    } else {
        return nd_fail(ND_ERR_NOT_FOUND,
                       "unknown architecture \"%s\" (presets: nasnet-a-cifar, nasnet-a-cifar-large, nasnet-a-mobile, "
                       "nasnet-a-large)",
                       name ? name : "(null)");
    }
    snprintf(cfg->genotype.name, sizeof cfg->genotype.name, "nasnet-a");
    return ND_OK;
}

const char *nas_net_config_label(const nas_net_config *cfg, char *buf, size_t size) {
    /* The penultimate width: the last stack's normal cells output (cells concat) x filters. */
    double fs = pow(cfg->filter_scaling_rate, cfg->num_reduction_layers);
    int32_t filt = (int32_t)(cfg->num_conv_filters * fs);
    int outs[NAS_MAX_STATES];
    int n = nas_genotype_validate(&cfg->genotype) == ND_OK
                ? nas_cell_output_states(&cfg->genotype, NAS_CELL_NORMAL, outs)
                : 0;
    snprintf(buf, size, "%d @ %lld", cfg->num_cells, (long long)n * filt);
    return buf;
}

static int bad(const char *field, const char *fmt, double v) {
    char msg[128];
    snprintf(msg, sizeof msg, fmt, v);
    return nd_fail(ND_ERR_INVALID, "network config: %s = %s", field, msg);
}

int nas_net_config_validate(const nas_net_config *c) {
    if (!c) return nd_fail(ND_ERR_INVALID, "network config: NULL");
    if (c->stem != NAS_STEM_CIFAR && c->stem != NAS_STEM_IMAGENET)
        return bad("stem", "%g (expected cifar or imagenet)", c->stem);
    if (c->num_cells < 1 || c->num_cells > 32) return bad("N (num_cells per stack)", "%g, expected 1..32", c->num_cells);
    if (c->num_conv_filters < 2 || c->num_conv_filters > 4096)
        return bad("F (num_conv_filters)", "%g, expected 2..4096", c->num_conv_filters);
    if (!(c->stem_multiplier > 0 && c->stem_multiplier <= 64))
        return bad("stem_multiplier", "%g, expected (0, 64]", c->stem_multiplier);
    if (!(c->filter_scaling_rate >= 1 && c->filter_scaling_rate <= 8))
        return bad("filter_scaling_rate", "%g, expected [1, 8]", c->filter_scaling_rate);
    if (c->num_reduction_layers < 0 || c->num_reduction_layers > 4)
        return bad("num_reduction_layers", "%g, expected 0..4", c->num_reduction_layers);
    if (c->num_classes < 1 || c->num_classes > 1000000) return bad("num_classes", "%g, expected >= 1", c->num_classes);
    if (c->image_size < 1 || c->image_size > 8192) return bad("image_size", "%g, expected 1..8192", c->image_size);
    if (c->in_channels < 1 || c->in_channels > 4) return bad("in_channels", "%g, expected 1..4", c->in_channels);
    if (!(c->bn_eps > 0 && c->bn_eps < 1)) return bad("bn_eps", "%g, expected (0, 1)", c->bn_eps);
    if (!(c->bn_momentum > 0 && c->bn_momentum <= 1)) return bad("bn_momentum", "%g, expected (0, 1]", c->bn_momentum);
    if (!(c->drop_path_keep_prob > 0 && c->drop_path_keep_prob <= 1))
        return bad("drop_path_keep_prob", "%g, expected (0, 1]", c->drop_path_keep_prob);
    if (!(c->dense_dropout_keep_prob > 0 && c->dense_dropout_keep_prob <= 1))
        return bad("dense_dropout_keep_prob", "%g, expected (0, 1]", c->dense_dropout_keep_prob);
    if (c->total_training_steps < 1) return bad("total_training_steps", "%g, expected >= 1", (double)c->total_training_steps);
    if (!(c->weight_decay >= 0 && c->weight_decay < 1)) return bad("weight_decay", "%g, expected [0, 1)", c->weight_decay);
    int rc = nas_genotype_validate(&c->genotype);
    if (rc) return nd_fail_context(rc, "network config: genotype: ");
    /* Shapes: a dry build (no parameters) checks every cell and the aux head. */
    nas_net tmp;
    rc = nas_net_build(c, NULL, NULL, 0, NULL, &tmp);
    free(tmp.cells);
    return rc ? nd_fail_context(rc, "network config: ") : ND_OK;
}

/* ---- JSON -------------------------------------------------------------------------------- */

int nas_net_config_to_json(const nas_net_config *c, char **text) {
    char *gj = NULL;
    int rc = nas_genotype_to_json(&c->genotype, 0, &gj);
    if (rc) return rc;
    cJSON *o = cJSON_CreateObject();
    cJSON *g = cJSON_Parse(gj);
    free(gj);
    if (!o || !g) {
        cJSON_Delete(o);
        cJSON_Delete(g);
        return nd_fail(ND_ERR_NOMEM, "out of memory writing a network config");
    }
    cJSON_AddItemToObject(o, "genotype", g);
    cJSON_AddStringToObject(o, "stem", c->stem == NAS_STEM_IMAGENET ? "imagenet" : "cifar");
    cJSON_AddNumberToObject(o, "num_cells", c->num_cells);
    cJSON_AddNumberToObject(o, "num_conv_filters", c->num_conv_filters);
    cJSON_AddNumberToObject(o, "stem_multiplier", c->stem_multiplier);
    cJSON_AddNumberToObject(o, "filter_scaling_rate", c->filter_scaling_rate);
    cJSON_AddNumberToObject(o, "num_reduction_layers", c->num_reduction_layers);
    cJSON_AddNumberToObject(o, "num_classes", c->num_classes);
    cJSON_AddNumberToObject(o, "image_size", c->image_size);
    cJSON_AddNumberToObject(o, "in_channels", c->in_channels);
    cJSON_AddNumberToObject(o, "use_aux_head", c->use_aux_head);
    cJSON_AddNumberToObject(o, "skip_reduction_layer_input", c->skip_reduction_layer_input);
    cJSON_AddNumberToObject(o, "bn_eps", c->bn_eps);
    cJSON_AddNumberToObject(o, "bn_momentum", c->bn_momentum);
    cJSON_AddNumberToObject(o, "drop_path_keep_prob", c->drop_path_keep_prob);
    cJSON_AddNumberToObject(o, "dense_dropout_keep_prob", c->dense_dropout_keep_prob);
    cJSON_AddNumberToObject(o, "total_training_steps", (double)c->total_training_steps);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddStringToObject(o, "conv_init", nas_conv_init_name(c->conv_init));
    *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *text ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory writing a network config");
}

static int num(const cJSON *o, const char *key, double *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it) return nd_fail(ND_ERR_FORMAT, "network config: missing \"%s\"", key);
    if (!cJSON_IsNumber(it)) return nd_fail(ND_ERR_FORMAT, "network config: \"%s\": expected a number", key);
    *v = it->valuedouble;
    return ND_OK;
}

int nas_net_config_from_json(const char *text, nas_net_config *c) {
    static const char *const KEYS[] = {"genotype", "stem", "num_cells", "num_conv_filters", "stem_multiplier",
                                       "filter_scaling_rate", "num_reduction_layers", "num_classes", "image_size",
                                       "in_channels", "use_aux_head", "skip_reduction_layer_input", "bn_eps",
                                       "bn_momentum", "drop_path_keep_prob", "dense_dropout_keep_prob",
                                       "total_training_steps", "weight_decay", "conv_init", NULL};
    cJSON *o = cJSON_Parse(text);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return nd_fail(ND_ERR_FORMAT, "network config: not a JSON object");
    }
    int rc = ND_OK;
    memset(c, 0, sizeof *c);
    for (const cJSON *it = o->child; it && !rc; it = it->next) {
        int known = 0;
        for (int k = 0; KEYS[k]; k++) known |= it->string && !strcmp(it->string, KEYS[k]);
        if (!known) rc = nd_fail(ND_ERR_FORMAT, "network config: unknown key \"%s\"", it->string ? it->string : "?");
    }
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "genotype");
    const cJSON *stem = cJSON_GetObjectItemCaseSensitive(o, "stem");
    if (!rc && !cJSON_IsObject(g)) rc = nd_fail(ND_ERR_FORMAT, "network config: \"genotype\": expected an object");
    if (!rc) {
        char *gt = cJSON_PrintUnformatted(g);
        rc = gt ? nas_genotype_parse(gt, &c->genotype) : nd_fail(ND_ERR_NOMEM, "out of memory");
        free(gt);
        if (rc) nd_fail_context(rc, "network config: genotype: ");
    }
    if (!rc && !(cJSON_IsString(stem) && (!strcmp(stem->valuestring, "cifar") || !strcmp(stem->valuestring, "imagenet"))))
        rc = nd_fail(ND_ERR_FORMAT, "network config: \"stem\": expected \"cifar\" or \"imagenet\"");
    if (!rc) c->stem = !strcmp(stem->valuestring, "imagenet") ? NAS_STEM_IMAGENET : NAS_STEM_CIFAR;
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(o, "conv_init");
    if (!rc && init && !(cJSON_IsString(init) && !nas_conv_init_parse(init->valuestring, &c->conv_init)))
        rc = nd_fail(ND_ERR_FORMAT, "network config: \"conv_init\": expected \"tf-slim\" or \"torch\"");
    double v[16];
    static const char *const NUMS[] = {"num_cells", "num_conv_filters", "stem_multiplier", "filter_scaling_rate",
                                       "num_reduction_layers", "num_classes", "image_size", "in_channels",
                                       "use_aux_head", "skip_reduction_layer_input", "bn_eps", "bn_momentum",
                                       "drop_path_keep_prob", "dense_dropout_keep_prob", "total_training_steps",
                                       "weight_decay"};
    for (int k = 0; k < 16 && !rc; k++) rc = num(o, NUMS[k], &v[k]);
    cJSON_Delete(o);
    if (rc) return rc;
    for (int k = 0; k < 16; k++)
        if (!isfinite(v[k]) || fabs(v[k]) > 1e12) return nd_fail(ND_ERR_INVALID, "network config: \"%s\" out of range", NUMS[k]);
    c->num_cells = (int32_t)v[0];
    c->num_conv_filters = (int32_t)v[1];
    c->stem_multiplier = v[2];
    c->filter_scaling_rate = v[3];
    c->num_reduction_layers = (int32_t)v[4];
    c->num_classes = (int32_t)v[5];
    c->image_size = (int32_t)v[6];
    c->in_channels = (int32_t)v[7];
    c->use_aux_head = v[8] != 0;
    c->skip_reduction_layer_input = v[9] != 0;
    c->bn_eps = (float)v[10];
    c->bn_momentum = (float)v[11];
    c->drop_path_keep_prob = v[12];
    c->dense_dropout_keep_prob = v[13];
    c->total_training_steps = (int64_t)v[14];
    c->weight_decay = v[15];
    return nas_net_config_validate(c);
}

int nas_conv_init_parse(const char *name, nas_conv_init *out) {
    if (name && !strcmp(name, "tf-slim")) *out = NAS_INIT_TF_SLIM;
    else if (name && !strcmp(name, "torch")) *out = NAS_INIT_TORCH;
    else return nd_fail(ND_ERR_INVALID, "unknown convolution init \"%s\" (expected tf-slim or torch)", name ? name : "(null)");
    return ND_OK;
}

const char *nas_conv_init_name(nas_conv_init init) { return init == NAS_INIT_TORCH ? "torch" : "tf-slim"; }

int nas_net_config_choose(const nas_net_choice *ch, nas_net_config *cfg) {
    const char *arch = ch->arch;
    if (!arch) arch = ch->stem && !strcmp(ch->stem, "imagenet") ? "nasnet-a-mobile" : "nasnet-a-cifar";
    int rc = nas_net_preset(arch, cfg);
    if (rc) return rc;
    if (ch->genotype) {
        rc = nas_genotype_from_spec(ch->genotype, &cfg->genotype);
        if (rc) return nd_fail_context(rc, "--genotype %s: ", ch->genotype);
    }
    if (ch->stem) {
        if (!strcmp(ch->stem, "cifar"))
            cfg->stem = NAS_STEM_CIFAR;
        else if (!strcmp(ch->stem, "imagenet"))
            cfg->stem = NAS_STEM_IMAGENET;
        else
            return nd_fail(ND_ERR_INVALID, "--stem: expected cifar or imagenet, got \"%s\"", ch->stem);
    }
    if (ch->N > 0) cfg->num_cells = ch->N;
    if (ch->F > 0) cfg->num_conv_filters = ch->F;
    if (ch->input > 0) cfg->image_size = ch->input;
    if (ch->classes > 0) cfg->num_classes = ch->classes;
    if (ch->aux >= 0) cfg->use_aux_head = ch->aux != 0;
    return nas_net_config_validate(cfg);
}
