/* Network lifetime, accessors, cell queries and the cost summary. */
#include "backbone/net_internal.h"

#include "common/status.h"

#include <stdlib.h>
#include <string.h>

int nas_net_cost(const nas_net_config *cfg, int with_aux, nas_cost *out) {
    memset(out, 0, sizeof *out);
    int rc = nas_net_config_validate(cfg);
    if (rc) return rc;
    nas_net tmp;
    rc = nas_net_build(cfg, NULL, NULL, 0, out, &tmp);
    free(tmp.cells);
    if (rc) {
        nas_cost_free(out);
        return rc;
    }
    if (with_aux) {
        out->params += out->aux_params;
        out->macs += out->aux_macs;
    }
    return ND_OK;
}

void nas_cost_free(nas_cost *c) {
    if (!c) return;
    free(c->layers);
    memset(c, 0, sizeof *c);
}

int nas_net_new(const nas_net_config *cfg, nn_params *ps, const char *prefix, uint64_t seed, nas_net **out) {
    *out = NULL;
    int rc = nas_net_config_validate(cfg);
    if (rc) return rc;
    nas_net *net = calloc(1, sizeof *net);
    if (!net) return nd_fail(ND_ERR_NOMEM, "out of memory for a network");
    int owns = ps == NULL;
    if (owns) ps = nn_params_new();
    rc = nas_net_build(cfg, ps, prefix, seed, NULL, net);
    net->ps = ps;
    net->owns_ps = owns;
    net->prefix_len = prefix && prefix[0] ? strlen(prefix) + 1 : 0;
    if (rc) {
        nas_net_free(net);
        return rc;
    }
    *out = net;
    return ND_OK;
}

void nas_net_free(nas_net *net) {
    if (!net) return;
    if (net->owns_ps) nn_params_free(net->ps);
    free(net->cells);
    free(net);
}

nn_params *nas_net_params(const nas_net *net) { return net->ps; }
const nas_net_config *nas_net_get_config(const nas_net *net) { return &net->cfg; }

int64_t nas_net_num_params(const nas_net *net, int with_aux) {
    /* Count through the built tensors, not the store: a shared store holds other modules too. */
    nas_cost c;
    if (nas_net_cost(&net->cfg, with_aux, &c)) return -1;
    int64_t p = c.params;
    nas_cost_free(&c);
    return p;
}

int nas_net_num_cells(const nas_net *net) { return net->n_cells; }

int nas_net_cell_info(const nas_net *net, int i, nas_cell_info *info) {
    if (i < 0 || i >= net->n_cells)
        return nd_fail(ND_ERR_INVALID, "cell index %d out of range (the network has cells 0..%d)", i, net->n_cells - 1);
    *info = net->cells[i].info;
    return ND_OK;
}

int nas_net_reduction_cell(const nas_net *net, int r) {
    if (r < 0 || r >= net->cfg.num_reduction_layers || r >= 4) return -1;
    return net->red_cell[r];
}

void nas_net_stem_info(const nas_net *net, int32_t *channels, int32_t *height, int32_t *width) {
    if (channels) *channels = net->stem_c;
    if (height) *height = net->stem_h;
    if (width) *width = net->stem_wd;
}

int nas_net_config_cells(const nas_net_config *cfg, nas_cell_info *info, int max) {
    int rc = nas_net_config_validate(cfg);
    if (rc) return rc;
    nas_net tmp;
    rc = nas_net_build(cfg, NULL, NULL, 0, NULL, &tmp);
    if (!rc) {
        for (int i = 0; i < tmp.n_cells && i < max; i++) info[i] = tmp.cells[i].info;
        rc = tmp.n_cells;
    }
    free(tmp.cells);
    return rc;
}
