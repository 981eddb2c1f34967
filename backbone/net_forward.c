/* The forward pass: stem, cells (TF-slim NasNetABaseCell semantics), aux head and head, whole
 * or in parts for the detector. Every decision about layers was made by the builder; this file
 * only runs what it recorded, with shapes computed from the actual input (any H, W). */
#include "backbone/net_internal.h"

#include "common/status.h"

#include <math.h>
#include <string.h>

nn_tensor *nas_bn_apply(const nas_net *net, nn_ctx *ctx, nn_tensor *x, const nas_bn *bn) {
    nn_bn_params p = {net->cfg.bn_eps, net->cfg.bn_momentum};
    return nn_batch_norm(ctx, x, bn->gamma, bn->beta, bn->mean, bn->var, &p);
}

static nn_tensor *conv1x1(nn_ctx *ctx, nn_tensor *x, nn_tensor *w, int stride) {
    nn_conv2d_params p = nn_conv2d_same(stride, 1);
    return nn_conv2d(ctx, x, w, NULL, &p);
}

/* factorized_reduction. Stride 2: path 1 reads pixels [0::2, 0::2] (TF's 1x1 avg-pool stride 2
 * VALID) and path 2 pixels [1::2, 1::2] of the image shifted up-left by one with a zero row
 * and column appended: a 1x1 stride-2 conv on x cropped by one row/column, padded at the
 * bottom/right when the size is odd, gives exactly that without materialising the shift. */
static nn_tensor *fact_red_fwd(const nas_net *net, nn_ctx *ctx, nn_tensor *x, const nas_fr *fr, int relu) {
    int64_t H = x->shape[2], W = x->shape[3];
    if (relu && fr->stride == 2 && H >= 2 && W >= 2 && !nn_ctx_grad_enabled(ctx) && !nn_ctx_training(ctx) &&
        !strcmp(nn_ctx_backend(ctx), "cpu")) {
        /* Inference: the ReLU applied as each path's convolution gathers its pixels, and path 2's
         * shift a negative pad, instead of a rectified copy and a cropped copy of the whole map. */
        nn_conv2d_params p1 = nn_conv2d_pad(2, 0), p2 = nn_conv2d_pad(2, 0);
        p2.pad_t = p2.pad_l = -1;
        p2.pad_b = (int32_t)(H & 1);
        p2.pad_r = (int32_t)(W & 1);
        nn_tensor *ab[2] = {nn_conv2d_fused(ctx, x, 1, fr->w, &p1, NULL, NULL, 0),
                            nn_conv2d_fused(ctx, x, 1, fr->w2, &p2, NULL, NULL, 0)};
        return nas_bn_apply(net, ctx, nn_concat(ctx, ab, 2, 1), &fr->bn);
    }
    if (relu) x = nn_relu(ctx, x);
    if (fr->stride == 1) return nas_bn_apply(net, ctx, conv1x1(ctx, x, fr->w, 1), &fr->bn);
    nn_conv2d_params p1 = nn_conv2d_pad(2, 0);
    nn_tensor *a = nn_conv2d(ctx, x, fr->w, NULL, &p1);
    nn_tensor *b;
    if (H >= 2 && W >= 2) {
        nn_tensor *s = nn_crop(ctx, x, 1, 1, H - 1, W - 1);
        nn_conv2d_params p2 = nn_conv2d_pad(2, 0);
        p2.pad_b = (int32_t)(H & 1);
        p2.pad_r = (int32_t)(W & 1);
        b = nn_conv2d(ctx, s, fr->w2, NULL, &p2);
    } else {
        nn_tensor *s = nn_crop(ctx, nn_pad(ctx, x, 0, 1, 0, 1, 0.0f), 1, 1, H, W);
        b = nn_conv2d(ctx, s, fr->w2, NULL, &p1);
    }
    nn_tensor *ab[2] = {a, b};
    return nas_bn_apply(net, ctx, nn_concat(ctx, ab, 2, 1), &fr->bn);
}

/* ReLU of a state, computed once per cell however many ops read it (NASNet-A's normal cell
 * reads h_{i-1} through ReLU four times): saves the forward and backward passes of the copies. */
static nn_tensor *relu_of(nn_ctx *ctx, nn_tensor *x, nn_tensor **cache) {
    if (!*cache) *cache = nn_relu(ctx, x);
    return *cache;
}

/* [ReLU] -> conv -> [BN] -> [ReLU]. For inference (no gradient, evaluation mode) one fused pass
 * (nn_conv2d_fused: no ReLU copy, no separate normalisation); otherwise the separate ops, the
 * input ReLU shared through `cache` (NULL: not shared). Both give the same values. */
static nn_tensor *relu_conv_bn(const nas_net *net, nn_ctx *ctx, nn_tensor *x, int relu, nn_tensor **cache,
                               nn_tensor *w, const nn_conv2d_params *cp, const nas_bn *bn, int relu_out) {
    if (!nn_ctx_grad_enabled(ctx) && !nn_ctx_training(ctx)) {
        nn_bn_params p = {net->cfg.bn_eps, net->cfg.bn_momentum};
        nn_bn_tensors t = {bn ? bn->gamma : NULL, bn ? bn->beta : NULL, bn ? bn->mean : NULL, bn ? bn->var : NULL};
        return nn_conv2d_fused(ctx, x, relu, w, cp, &t, bn ? &p : NULL, relu_out);
    }
    if (relu) x = cache ? relu_of(ctx, x, cache) : nn_relu(ctx, x);
    nn_tensor *y = nn_conv2d(ctx, x, w, NULL, cp);
    if (bn) y = nas_bn_apply(net, ctx, y, bn);
    return relu_out ? nn_relu(ctx, y) : y;
}

static nn_tensor *branch_fwd(const nas_net *net, nn_ctx *ctx, nn_tensor *x, nn_tensor **relu_x, const nas_branch *br,
                             float keep) {
    int s = br->stride, k = br->kernel;
    nn_tensor *y = x;
    switch (br->kind) {
    case NAS_OPK_SEPARABLE:
        for (int rep = 0; rep < 2; rep++) {
            nn_conv2d_params dp = nn_conv2d_same(rep == 0 ? s : 1, 1), pp = nn_conv2d_same(1, 1);
            dp.groups = (int32_t)y->shape[1];
            y = relu_conv_bn(net, ctx, y, 1, rep == 0 ? relu_x : NULL, br->w[2 * rep], &dp, NULL, 0);
            y = relu_conv_bn(net, ctx, y, 0, NULL, br->w[2 * rep + 1], &pp, &br->bn[rep], 0);
        }
        break;
    case NAS_OPK_IDENTITY:
        if (br->project) {
            nn_conv2d_params cp = nn_conv2d_same(s, 1);
            y = relu_conv_bn(net, ctx, x, 1, relu_x, br->w[0], &cp, &br->bn[0], 0);
        }
        break;
    case NAS_OPK_AVG_POOL:
    case NAS_OPK_MAX_POOL: {
        nn_pool_params pp = nn_pool_same(k, s);
        pp.count_include_pad = 0; /* TF SAME average pooling ignores the padding */
        y = br->kind == NAS_OPK_AVG_POOL ? nn_avg_pool2d(ctx, y, &pp) : nn_max_pool2d(ctx, y, &pp);
        if (br->project) {
            nn_conv2d_params cp = nn_conv2d_same(1, 1);
            y = relu_conv_bn(net, ctx, y, 0, NULL, br->w[0], &cp, &br->bn[0], 0);
        }
        break;
    }
    case NAS_OPK_CONV: {
        nn_conv2d_params cp = nn_conv2d_same(s, br->dilation);
        y = relu_conv_bn(net, ctx, x, 1, relu_x, br->w[0], &cp, &br->bn[0], 0);
        break;
    }
    case NAS_OPK_FACTORIZED: {
        nn_conv2d_params c1 = nn_conv2d_same(s, 1), c2 = nn_conv2d_same(1, 1);
        y = relu_conv_bn(net, ctx, x, 1, relu_x, br->w[0], &c1, NULL, 0);
        y = relu_conv_bn(net, ctx, y, 0, NULL, br->w[1], &c2, &br->bn[0], 0);
        break;
    }
    default:
        break;
    }
    (void)k;
    if (br->drop && keep < 1.0f) y = nn_drop_path(ctx, y, keep);
    return y;
}

/* ScheduledDropPath "v3": keep = 1 - layer_ratio * min(1, step / total) * (1 - keep_prob). */
static float cell_keep(const nas_net *net, int i, nn_ctx *ctx, int64_t step) {
    if (!nn_ctx_training(ctx)) return 1.0f;
    return (float)nas_net_drop_path_keep(net, i, step);
}

double nas_net_drop_path_keep(const nas_net *net, int i, int64_t step) {
    if (i < 0 || i >= net->n_cells) return -1.0;
    double p = net->cfg.drop_path_keep_prob;
    if (p >= 1.0) return 1.0;
    double ratio = (double)step / (double)net->cfg.total_training_steps;
    ratio = ratio > 1.0 ? 1.0 : ratio < 0.0 ? 0.0 : ratio;
    return 1.0 - net->cells[i].layer_ratio * ratio * (1.0 - p);
}

/* One cell. outs: the outputs list ([0] = None). */
static int cell_fwd(const nas_net *net, nn_ctx *ctx, const nas_cellp *cp, nn_tensor **outs, int64_t step,
                    nn_tensor **res) {
    const nas_genotype *g = &net->cfg.genotype;
    const nas_cell *gc = &g->cell[cp->info.kind];
    nn_tensor *x = outs[cp->net_src];
    nn_tensor *st[NAS_MAX_STATES] = {0};
    int I = g->n_inputs;
    for (int j = 1; j < I; j++) {
        const nas_input *in = &cp->in[j];
        nn_tensor *p = in->mode == NAS_IN_RAW ? x : outs[in->src];
        if (!p) return nd_fail(ND_ERR_INVALID, "%s: input %d is missing", cp->info.name, j);
        if (p->ndim != 4 || p->shape[0] != x->shape[0])
            return nd_fail(ND_ERR_INVALID, "%s: input %d has another batch size or rank", cp->info.name, j);
        if (in->mode == NAS_IN_FR) {
            for (int r = 0; r < in->n_fr; r++) p = fact_red_fwd(net, ctx, p, &in->fr[r], r == 0);
        } else if (in->mode == NAS_IN_1X1) {
            nn_conv2d_params c1 = nn_conv2d_same(1, 1);
            p = relu_conv_bn(net, ctx, p, 1, NULL, in->w, &c1, &in->bn, 0);
        }
        if (p->shape[2] != x->shape[2] || p->shape[3] != x->shape[3])
            return nd_fail(ND_ERR_INVALID, "%s: input %d is %lldx%lld after matching, the current input %lldx%lld",
                           cp->info.name, j, (long long)p->shape[2], (long long)p->shape[3], (long long)x->shape[2],
                           (long long)x->shape[3]);
        st[j] = p;
    }
    nn_conv2d_params c1 = nn_conv2d_same(1, 1);
    st[0] = relu_conv_bn(net, ctx, x, 1, NULL, cp->base_w, &c1, &cp->base_bn, 0);
    float keep = cell_keep(net, (int)(cp - net->cells), ctx, step);
    nn_tensor *rl[NAS_MAX_STATES] = {0};
    for (int b = 0; b < g->n_blocks; b++) {
        const nas_block *gb = &gc->block[b];
        int a0 = gb->input[0], a1 = gb->input[1];
        nn_tensor *l = branch_fwd(net, ctx, st[a0], &rl[a0], &cp->br[b][0], keep);
        nn_tensor *r = branch_fwd(net, ctx, st[a1], &rl[a1], &cp->br[b][1], keep);
        nn_tensor *y;
        if (gb->combine == NAS_COMB_CONCAT) {
            nn_tensor *lr[2] = {l, r};
            y = nn_concat(ctx, lr, 2, 1);
        } else {
            y = nn_add(ctx, l, r);
            if (gb->combine == NAS_COMB_ADD_LAYERNORM)
                y = nn_layer_norm(ctx, y, cp->comb_norm[b].gamma, cp->comb_norm[b].beta, net->cfg.bn_eps);
            else if (gb->combine == NAS_COMB_ADD_INSTANCENORM)
                y = nn_instance_norm(ctx, y, cp->comb_norm[b].gamma, cp->comb_norm[b].beta, net->cfg.bn_eps);
        }
        st[I + b] = y;
    }
    nn_tensor *parts[NAS_MAX_STATES];
    for (int k = 0; k < cp->n_out; k++) {
        nn_tensor *t = st[cp->out_state[k]];
        parts[k] = cp->out_fix[k] ? fact_red_fwd(net, ctx, t, &cp->fix[k], 0) : t;
    }
    *res = cp->n_out == 1 ? parts[0] : nn_concat(ctx, parts, cp->n_out, 1);
    return ND_OK;
}

static int check_input(const nas_net *net, const nn_tensor *x) {
    if (!x || x->ndim != 4 || x->shape[1] != net->cfg.in_channels)
        return nd_fail(ND_ERR_INVALID, "network input: expected [B,%d,H,W]", net->cfg.in_channels);
    int64_t min = net->cfg.stem == NAS_STEM_IMAGENET ? 3 : 1;
    if (x->shape[2] < min || x->shape[3] < min)
        return nd_fail(ND_ERR_INVALID, "network input: %lldx%lld is too small", (long long)x->shape[2],
                       (long long)x->shape[3]);
    return ND_OK;
}

static nn_tensor *stem_fwd(const nas_net *net, nn_ctx *ctx, nn_tensor *x) {
    nn_conv2d_params p = net->cfg.stem == NAS_STEM_IMAGENET ? nn_conv2d_pad(2, 0) : nn_conv2d_same(1, 1);
    return relu_conv_bn(net, ctx, x, 0, NULL, net->stem_w, &p, &net->stem_bn, 0);
}

static nn_tensor *aux_fwd(const nas_net *net, nn_ctx *ctx, nn_tensor *x) {
    nn_pool_params pp = nn_pool_valid(5, 3);
    nn_tensor *a = nn_avg_pool2d(ctx, nn_relu(ctx, x), &pp);
    if (a->shape[2] != net->aux_pool_h || a->shape[3] != net->aux_pool_w) return NULL;
    a = nn_relu(ctx, nas_bn_apply(net, ctx, conv1x1(ctx, a, net->aux_proj_w, 1), &net->aux_bn0));
    nn_conv2d_params cp = nn_conv2d_pad(1, 0);
    a = nn_relu(ctx, nas_bn_apply(net, ctx, nn_conv2d(ctx, a, net->aux_conv_w, NULL, &cp), &net->aux_bn1));
    a = nn_reshape(ctx, a, 2, NN_SHAPE(a->shape[0], a->shape[1]));
    return nn_linear(ctx, a, net->aux_fc_w, net->aux_fc_b);
}

nn_tensor *nas_net_head(nas_net *net, nn_ctx *ctx, nn_tensor *features) {
    nn_tensor *h = nn_global_avg_pool(ctx, nn_relu(ctx, features));
    double keep = net->cfg.dense_dropout_keep_prob;
    if (keep < 1.0) h = nn_dropout(ctx, h, (float)(1.0 - keep));
    return nn_linear(ctx, h, net->fc_w, net->fc_b);
}

/* Cells [first, last] over an outputs list (outs has n_cells + 2 entries). */
static int run_cells(nas_net *net, nn_ctx *ctx, nn_tensor **outs, int first, int last, int64_t step,
                     nn_tensor **aux) {
    for (int i = first; i <= last; i++) {
        int rc = cell_fwd(net, ctx, &net->cells[i], outs, step, &outs[2 + i]);
        if (rc) return rc;
        if (aux && i == net->aux_after && nn_ctx_training(ctx)) *aux = aux_fwd(net, ctx, outs[2 + i]);
    }
    return ND_OK;
}

int nas_net_forward(nas_net *net, nn_ctx *ctx, nn_tensor *x, int64_t step, nas_net_output *out) {
    memset(out, 0, sizeof *out);
    int rc = check_input(net, x);
    if (rc) return rc;
    nn_tensor *outs[2 + 128];
    if (net->n_cells > 128) return nd_fail(ND_ERR_UNSUPPORTED, "more than 128 cells");
    outs[0] = NULL;
    outs[1] = stem_fwd(net, ctx, x);
    rc = run_cells(net, ctx, outs, 0, net->n_cells - 1, step, &out->aux_logits);
    if (rc) return rc;
    out->features = outs[1 + net->n_cells];
    out->logits = nas_net_head(net, ctx, out->features);
    return ND_OK;
}

/* Stem and cells 0..last_cell into outs[1 .. last_cell + 2] (outs[0]: no state). */
static int forward_states(nas_net *net, nn_ctx *ctx, nn_tensor *x, int last_cell, int64_t step, nn_tensor **outs,
                          const char *fn) {
    if (last_cell < -1 || last_cell >= net->n_cells)
        return nd_fail(ND_ERR_INVALID, "%s: cell %d out of range (-1..%d)", fn, last_cell, net->n_cells - 1);
    int rc = check_input(net, x);
    if (rc) return rc;
    if (net->n_cells > 128) return nd_fail(ND_ERR_UNSUPPORTED, "more than 128 cells");
    outs[0] = NULL;
    outs[1] = stem_fwd(net, ctx, x);
    return run_cells(net, ctx, outs, 0, last_cell, step, NULL);
}

int nas_net_forward_to(nas_net *net, nn_ctx *ctx, nn_tensor *x, int last_cell, int64_t step, nn_tensor **cur,
                       nn_tensor **prev) {
    *cur = *prev = NULL;
    nn_tensor *outs[2 + 128];
    int rc = forward_states(net, ctx, x, last_cell, step, outs, "forward_to");
    if (rc) return rc;
    *cur = outs[2 + last_cell];
    *prev = outs[1 + last_cell];
    return ND_OK;
}

int nas_net_forward_cells(nas_net *net, nn_ctx *ctx, nn_tensor *x, int last_cell, int64_t step,
                          nn_tensor **cells) {
    nn_tensor *outs[2 + 128];
    int rc = forward_states(net, ctx, x, last_cell, step, outs, "forward_cells");
    if (rc) return rc;
    for (int i = 0; i <= last_cell; i++) cells[i] = outs[2 + i];
    return ND_OK;
}

int nas_net_forward_from(nas_net *net, nn_ctx *ctx, int first_cell, nn_tensor *cur, nn_tensor *prev, int64_t step,
                         nn_tensor **out) {
    *out = NULL;
    if (first_cell < 0 || first_cell >= net->n_cells)
        return nd_fail(ND_ERR_INVALID, "forward_from: cell %d out of range (0..%d)", first_cell, net->n_cells - 1);
    if (!cur || cur->ndim != 4) return nd_fail(ND_ERR_INVALID, "forward_from: the current state must be [B,C,H,W]");
    /* Every state a later cell reads must be cur (index first_cell + 1), prev (first_cell) or
     * made from first_cell on. */
    for (int i = first_cell; i < net->n_cells; i++) {
        const nas_cellp *cp = &net->cells[i];
        int lo = cp->net_src;
        for (int j = 1; j < net->cfg.genotype.n_inputs; j++)
            if (cp->in[j].mode != NAS_IN_RAW && cp->in[j].src < lo) lo = cp->in[j].src;
        if (lo < first_cell || (lo == first_cell && !prev && first_cell >= 1))
            return nd_fail(ND_ERR_UNSUPPORTED, "forward_from: %s reads a state older than the two given to cell %d",
                           cp->info.name, first_cell);
    }
    nn_tensor *outs[2 + 128] = {0};
    if (net->n_cells > 128) return nd_fail(ND_ERR_UNSUPPORTED, "more than 128 cells");
    outs[1 + first_cell] = cur;
    outs[first_cell] = prev;
    int rc = run_cells(net, ctx, outs, first_cell, net->n_cells - 1, step, NULL);
    if (rc) return rc;
    *out = outs[1 + net->n_cells];
    return ND_OK;
}
