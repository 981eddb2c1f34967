/* The real child of the search: the CIFAR skeleton built from a sampled genotype with small
 * N and F, trained briefly through the backbone's training API on the first part of a
 * CIFAR-format training set; its accuracy on the held-out end of that set is the reward. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/nasnet_net.h"
#include "coco/coco.h"
#include "common/status.h"
#include "search/search_driver.h"

struct srch_cifar_child {
    srch_cifar_child_config cfg;
    coco_cifar data;
    coco_cls_source src;
    int64_t n_train, first_val, n_val;
    int32_t classes;
};

void srch_cifar_child_config_default(srch_cifar_child_config *c) {
    memset(c, 0, sizeof *c);
    c->n_cells = 2;
    c->filters = 8;
    c->batch = 64;
    c->epochs = 1;
    c->val = 5000;
    c->lr = 0.05;
    c->weight_decay = 5e-4;
}

char *srch_cifar_child_describe(const srch_cifar_child_config *c) {
    char *text = malloc(512);
    if (!text) return NULL;
    /* The data folder is left out: a moved data set is still the same experiment. */
    snprintf(text, 512,
             "{\"N\":%d,\"F\":%d,\"batch\":%d,\"epochs\":%d,\"steps\":%" PRId64 ",\"train_subset\":%" PRId64
             ",\"val\":%" PRId64 ",\"val_subset\":%" PRId64 ",\"optimizer\":\"%s\",\"lr\":%.17g,\"weight_decay\":%.17g}",
             c->n_cells, c->filters, c->batch, c->epochs, c->steps, c->train_subset, c->val, c->val_subset,
             c->adam ? "adam" : "sgd", c->lr, c->weight_decay);
    /* Named only when not the default, so that runs started before the option resume. */
    if (c->conv_init != NAS_INIT_TF_SLIM) {
        size_t n = strlen(text);
        snprintf(text + n - 1, 512 - (n - 1), ",\"init\":\"%s\"}", nas_conv_init_name(c->conv_init));
    }
    return text;
}

int srch_cifar_child_new(const srch_cifar_child_config *cfg, srch_cifar_child **out) {
    *out = NULL;
    if (!cfg->data_dir) return nd_fail(ND_ERR_INVALID, "the child needs a data folder");
    if (cfg->n_cells < 1 || cfg->filters < 2 || cfg->batch < 1 || (cfg->steps <= 0 && cfg->epochs < 1) ||
        cfg->train_subset < 0 || cfg->val < 1 || cfg->val_subset < 0 || !(cfg->lr > 0) || cfg->weight_decay < 0)
        return nd_fail(ND_ERR_INVALID,
                       "child settings: N %d (>= 1), F %d (>= 2), batch %d (>= 1), epochs %d or steps %lld (>= 1), "
                       "validation %lld (>= 1), lr %g (> 0)",
                       cfg->n_cells, cfg->filters, cfg->batch, cfg->epochs, (long long)cfg->steps, (long long)cfg->val,
                       cfg->lr);
    srch_cifar_child *c = calloc(1, sizeof *c);
    if (!c) return nd_fail(ND_ERR_NOMEM, "out of memory");
    c->cfg = *cfg;
    int rc = coco_cifar_read_dir(cfg->data_dir, 1, &c->data);
    if (!rc && c->data.count <= cfg->val)
        rc = nd_fail(ND_ERR_INVALID, "%s: %lld training images cannot give %lld validation images and a training part",
                     cfg->data_dir, (long long)c->data.count, (long long)cfg->val);
    if (rc) {
        srch_cifar_child_free(c);
        return rc;
    }
    c->first_val = c->data.count - cfg->val;
    c->n_val = cfg->val_subset > 0 && cfg->val_subset < cfg->val ? cfg->val_subset : cfg->val;
    c->n_train = cfg->train_subset > 0 && cfg->train_subset < c->first_val ? cfg->train_subset : c->first_val;
    int max_label = 0;
    for (int64_t i = 0; i < c->data.count; i++)
        if (c->data.labels[i] > max_label) max_label = c->data.labels[i];
    c->classes = max_label + 1;
    c->src = coco_cls_source_cifar(&c->data);
    c->cfg.data_dir = NULL; /* borrowed only for the read */
    *out = c;
    return ND_OK;
}

void srch_cifar_child_free(srch_cifar_child *c) {
    if (!c) return;
    coco_cifar_free(&c->data);
    free(c);
}

static int cifar_train(void *user, const nas_genotype *g, uint64_t seed, srch_result *r) {
    srch_cifar_child *c = user;
    nas_net_config nc;
    int rc = nas_net_preset("nasnet-a-cifar", &nc);
    if (rc) return rc;
    nc.genotype = *g;
    nc.num_cells = c->cfg.n_cells;
    nc.num_conv_filters = c->cfg.filters;
    nc.num_classes = c->classes;
    nc.use_aux_head = 0;           /* a few epochs: the aux head only slows the child */
    nc.drop_path_keep_prob = 1.0;  /* regularisation for long runs; off for short children */
    nc.weight_decay = c->cfg.weight_decay;
    nc.conv_init = c->cfg.conv_init;
    nas_cost cost;
    memset(&cost, 0, sizeof cost);
    rc = nas_net_cost(&nc, 0, &cost);
    if (rc) {
        r->ok = 0;
        snprintf(r->message, sizeof r->message, "build: %s", nd_last_error());
        return 0;
    }
    r->macs = cost.macs;
    nas_cost_free(&cost);
    nas_net *net;
    rc = nas_net_new(&nc, NULL, NULL, seed, &net);
    if (!rc && c->cfg.device && (rc = nn_params_to_device(nas_net_params(net), c->cfg.device))) nas_net_free(net);
    if (rc) {
        r->ok = 0;
        snprintf(r->message, sizeof r->message, "build: %s", nd_last_error());
        return 0;
    }
    r->params = nas_net_num_params(net, 0);
    if (c->cfg.threads > 0) nn_set_threads(c->cfg.threads);
    nas_train_opts o;
    nas_train_opts_default(&o);
    o.epochs = c->cfg.epochs;
    o.steps = c->cfg.steps;
    o.batch_size = c->cfg.batch;
    o.optimizer = c->cfg.adam ? NN_OPTIM_ADAM : NN_OPTIM_SGD;
    o.lr = c->cfg.lr;
    o.lr_min = 0;
    o.momentum = 0.9;
    o.nesterov = 1;
    o.weight_decay = c->cfg.weight_decay;
    o.aux_weight = 0;
    o.drop_path_keep = 1.0;
    o.pad = 0;                     /* digits are centred; flips would change them */
    o.flip = 0;
    o.cutout = 0;
    o.seed = seed;
    o.loader_threads = 1;
    o.eval_every = 0;
    o.eval_batch = 250;
    nas_data train = {&c->src, 0, c->n_train}, val = {&c->src, c->first_val, c->n_val};
    nas_train_result tr;
    rc = nas_train(net, &train, &val, &o, &tr);
    if (rc == 0 && !isfinite(tr.eval.accuracy)) rc = nd_fail(ND_ERR_NUMERIC, "validation accuracy is not finite");
    if (rc == 0) {
        r->ok = 1;
        r->reward = tr.eval.accuracy;
    } else {
        r->ok = 0;
        r->reward = 0;
        snprintf(r->message, sizeof r->message, "%s", nd_last_error());
    }
    nas_net_free(net);
    return 0;
}

srch_child_trainer srch_cifar_child_trainer(srch_cifar_child *c) {
    srch_child_trainer t = {cifar_train, c};
    return t;
}
