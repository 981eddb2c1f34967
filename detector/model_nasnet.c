/* The NASNet backbone of the detector (ImageNet skeleton, any genotype, N @ F), built by
 * backbone/nasnet_net.h into the detector's parameter store under the classifier's own names
 * (so a `nasdet train` checkpoint initialises it by name).
 *   c4:     stem + cells up to the last normal cell before the 2nd reduction (stride 16); that
 *           cell's output is the feature map. At anchor stride 8, the cells up to the last one
 *           before the 1st reduction instead (finer cells for small objects, and cheaper).
 *           With roi fuse, the net also runs on to the last cell of each fused stride (16: the
 *           cell before the 2nd reduction, 32: the last cell) for the box head.
 *   nasnet: the RPN reads concat(that cell, the one before it), as faster_rcnn_nas's
 *           concat(Cell_10, Cell_11) in Large; the box classifier runs the 2nd reduction cell
 *           and the last stack on crops of both, then ReLU + global average pool. */
#include "detector/model_internal.h"

#include <stdlib.h>

#include "backbone/nasnet_net.h"
#include "common/status.h"

struct det_nasnet {
    nas_net *net;
    int split;      /* index of the 2nd reduction cell: cells 0..split-1 are the backbone */
    int feat_cell;  /* c4: the cell whose output is the feature map (split - 1, or the last cell
                       before the 1st reduction at feature stride 8) */
    int fuse_cell[DET_MAX_ROI_FUSE]; /* c4 roi fuse: the cell of each fused stride */
    int last_cell;  /* the deepest cell the backbone forward runs */
    int64_t cur_c, prev_c, head_c;
};

/* The last cell at `stride` (8, 16: the one before the 1st or 2nd reduction; 32: the net's last
 * cell), checked to have that stride; its index and width. */
static int cell_at_stride(const det_nasnet *d, int stride, int *cell, int64_t *channels) {
    int r = stride == 8 ? 0 : stride == 16 ? 1 : -1;
    *cell = r >= 0 ? nas_net_reduction_cell(d->net, r) - 1 : nas_net_num_cells(d->net) - 1;
    nas_cell_info ci;
    if (*cell < 0 || nas_net_cell_info(d->net, *cell, &ci))
        return nd_fail(ND_ERR_INVALID, "detector backbone: no cell at stride %d", stride);
    if (ci.stride != stride)
        return nd_fail(ND_ERR_INVALID, "detector backbone: cell %s has stride %d, %d expected", ci.name, ci.stride,
                       stride);
    *channels = ci.channels;
    return ND_OK;
}

static int net_config(const det_model_config *c, nas_net_config *n) {
    int rc = nas_net_preset("nasnet-a-mobile", n);
    if (rc) return rc;
    n->genotype = c->genotype;
    n->stem = NAS_STEM_IMAGENET;
    n->num_cells = c->nas_n;
    n->num_conv_filters = c->nas_f;
    n->stem_multiplier = c->stem_filters / 32.0;
    n->num_reduction_layers = 2;
    n->num_classes = 1;        /* the classifier head is built but never used by the detector */
    n->image_size = c->max_size;
    n->use_aux_head = 0;
    n->skip_reduction_layer_input = c->skip_reduction_input;
    n->bn_eps = c->bn_eps;
    n->bn_momentum = c->bn_momentum;
    n->drop_path_keep_prob = 1.0; /* detection fine-tuning runs without drop path */
    n->dense_dropout_keep_prob = 1.0;
    return nas_net_config_validate(n);
}

int det_nasnet_build(det_model *m, nd_rng *rng) {
    nas_net_config nc;
    int rc = net_config(&m->cfg, &nc);
    if (rc) return nd_fail_context(rc, "detector backbone: ");
    det_nasnet *d = calloc(1, sizeof *d);
    if (!d) return nd_fail(ND_ERR_NOMEM, "out of memory");
    m->nas = d;
    if ((rc = nas_net_new(&nc, m->ps, NULL, nd_rng_u64(rng), &d->net))) return rc;
    d->split = nas_net_reduction_cell(d->net, 1);
    if (d->split < 2) return nd_fail(ND_ERR_INVALID, "detector backbone: no second reduction cell");
    if ((rc = cell_at_stride(d, 16, &d->feat_cell, &d->cur_c))) return rc;
    nas_cell_info ci;
    nas_net_cell_info(d->net, d->split - 2, &ci);
    d->prev_c = ci.channels;
    /* c4 at stride 8: stop before the first reduction; the later cells stay unused (unless fused) */
    if (m->cfg.layout == DET_LAYOUT_C4 && m->cfg.anchors.stride_x == 8.0f &&
        (rc = cell_at_stride(d, 8, &d->feat_cell, &d->cur_c)))
        return rc;
    d->last_cell = m->cfg.layout == DET_LAYOUT_C4 ? d->feat_cell : d->split - 1;
    for (int i = 0; i < m->cfg.n_roi_fuse; i++) {
        int64_t ch;
        if ((rc = cell_at_stride(d, m->cfg.roi_fuse[i], &d->fuse_cell[i], &ch))) return rc;
        m->fuse_channels[i] = (int32_t)ch;
        if (d->fuse_cell[i] > d->last_cell) d->last_cell = d->fuse_cell[i];
    }
    nas_net_cell_info(d->net, nas_net_num_cells(d->net) - 1, &ci);
    d->head_c = ci.channels;
    m->feat_channels = (int32_t)(m->cfg.layout == DET_LAYOUT_C4 ? d->cur_c : d->cur_c + d->prev_c);
    return ND_OK;
}

void det_nasnet_forward(det_model *m, nn_ctx *ctx, nn_tensor *x, det_features *f) {
    det_nasnet *d = m->nas;
    nn_tensor *cells[128];
    NN_ASSERT(d->last_cell < 128, "detector: more than 128 cells");
    int rc = nas_net_forward_cells(d->net, ctx, x, d->last_cell, 0, cells);
    NN_ASSERT(rc == 0, "detector: NASNet forward: %s", nd_last_error());
    if (m->cfg.layout == DET_LAYOUT_C4) {
        f->map = cells[d->feat_cell];
        for (int i = 0; i < m->cfg.n_roi_fuse; i++) f->fuse[i] = cells[d->fuse_cell[i]];
        return;
    }
    f->cur = cells[d->split - 1], f->prev = cells[d->split - 2];
    nn_tensor *pair[2] = {f->cur, f->prev};
    f->map = nn_concat(ctx, pair, 2, 1);
}

void det_nasnet_free(det_model *m) {
    if (!m->nas) return;
    nas_net_free(m->nas->net);
    free(m->nas);
    m->nas = NULL;
}

int det_nasnet_head_build(det_model *m, nd_rng *rng, int64_t *channels) {
    (void)rng; /* the cells' weights were drawn with the backbone */
    if (!m->nas) return nd_fail(ND_ERR_INVALID, "the nasnet layout needs a NASNet backbone");
    *channels = m->nas->head_c;
    return ND_OK;
}

nn_tensor *det_nasnet_head_forward(det_model *m, nn_ctx *ctx, nn_tensor *cur_crops,
                                   nn_tensor *prev_crops) {
    nn_tensor *out = NULL;
    int rc = nas_net_forward_from(m->nas->net, ctx, m->nas->split, cur_crops, prev_crops, 0, &out);
    NN_ASSERT(rc == 0, "detector: NASNet box classifier: %s", nd_last_error());
    return nn_global_avg_pool(ctx, nn_relu(ctx, out));
}
