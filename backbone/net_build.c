/* The network builder: walks TF-slim's _build_nasnet_base with shapes only, deciding per cell
 * how each input is matched and which layers exist, creating the parameters (when given a
 * store) and recording every layer's parameters and multiply-adds. One walk serves
 * nas_net_new, nas_net_cost and nas_net_config_validate, so the cost always describes exactly
 * the layers that run. */
#include "backbone/net_internal.h"

#include "common/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the walk's state ------------------------------------------------------------------- */

typedef struct shape3 {
    int32_t c, h, w;
} shape3;

typedef struct builder {
    const nas_net_config *cfg;
    nn_params *ps;       /* NULL: shapes and cost only */
    const char *prefix;
    nd_rng rng;
    nas_cost *cost;      /* NULL: not recorded */
    int aux;             /* recording the aux head */
    int failed;          /* an allocation failed */
    char scope[192];     /* current scope, e.g. "cell_0/comb_iter_0/left" */
} builder;

static void cost_add(builder *b, const char *name, int64_t params, int64_t macs) {
    nas_cost *c = b->cost;
    if (!c || b->failed) return;
    if (b->aux) {
        c->aux_params += params;
        c->aux_macs += macs;
    } else {
        c->params += params;
        c->macs += macs;
    }
    if ((c->n_layers & (c->n_layers - 1)) == 0) { /* grow at powers of two */
        int64_t cap = c->n_layers ? c->n_layers * 2 : 64;
        nas_cost_layer *p = realloc(c->layers, (size_t)cap * sizeof *p);
        if (!p) {
            b->failed = 1;
            return;
        }
        c->layers = p;
    }
    nas_cost_layer *l = &c->layers[c->n_layers++];
    snprintf(l->name, sizeof l->name, "%s", name);
    l->params = params;
    l->macs = macs;
    l->aux = b->aux;
}

static nn_tensor *param(builder *b, const char *scope, const char *leaf, int ndim, const int64_t *shape,
                        uint32_t flags) {
    if (!b->ps) return NULL;
    char name[320];
    if (b->prefix && b->prefix[0])
        snprintf(name, sizeof name, "%s/%s/%s", b->prefix, scope, leaf);
    else
        snprintf(name, sizeof name, "%s/%s", scope, leaf);
    return nn_params_add(b->ps, name, ndim, shape, flags);
}

/* scope[/sub] into out (truncated to n - 1 bytes; names are far shorter). */
static void join(char *out, size_t n, const char *scope, const char *sub) {
    size_t a = strlen(scope), c = sub ? strlen(sub) : 0, k = 0;
    char tmp[512];
    for (size_t i = 0; i < a && k < sizeof tmp - 1; i++) tmp[k++] = scope[i];
    if (c && k < sizeof tmp - 1) tmp[k++] = '/';
    for (size_t i = 0; i < c && k < sizeof tmp - 1; i++) tmp[k++] = sub[i];
    if (k > n - 1) k = n - 1;
    memcpy(out, tmp, k);
    out[k] = '\0';
}

/* A conv without bias: weights OIHW [cout, cin/groups, kh, kw]; out_h x out_w outputs.
 * TF-slim initialises with variance_scaling(factor 2, FAN_OUT, truncated normal); TF's fan_out
 * of a depthwise kernel [kh,kw,C,1] is kh*kw, which is our FAN_IN of [C,1,kh,kw]. PyTorch's
 * default (kaiming_uniform with a = sqrt 5) is uniform with variance 1/(3 fan_in). */
static nn_tensor *conv(builder *b, const char *sub, const char *leaf, int32_t cout, int32_t cin, int32_t groups,
                       int32_t kh, int32_t kw, int32_t out_h, int32_t out_w) {
    char sc[256], full[320];
    join(sc, sizeof sc, b->scope, sub);
    join(full, sizeof full, sc, leaf);
    int32_t cin_g = cin / groups;
    cost_add(b, full, (int64_t)cout * cin_g * kh * kw, (int64_t)out_h * out_w * cout * cin_g * kh * kw);
    nn_tensor *t = param(b, sc, leaf, 4, NN_SHAPE(cout, cin_g, kh, kw), 0);
    if (t && b->cfg->conv_init == NAS_INIT_TORCH) nn_init_variance_scaling(t, 1.0 / 3.0, NN_FAN_IN, NN_DIST_UNIFORM, &b->rng);
    else if (t) nn_init_variance_scaling(t, 2.0, groups > 1 ? NN_FAN_IN : NN_FAN_OUT, NN_DIST_TRUNCATED_NORMAL, &b->rng);
    return t;
}

static nas_bn bn(builder *b, const char *sub, int32_t c) {
    char sc[256];
    join(sc, sizeof sc, b->scope, sub);
    cost_add(b, sc, 2 * (int64_t)c, 0);
    nas_bn r = {0};
    r.gamma = param(b, sc, "gamma", 1, NN_SHAPE(c), NN_PARAM_NO_DECAY);
    r.beta = param(b, sc, "beta", 1, NN_SHAPE(c), NN_PARAM_NO_DECAY);
    r.mean = param(b, sc, "moving_mean", 1, NN_SHAPE(c), NN_PARAM_BUFFER);
    r.var = param(b, sc, "moving_variance", 1, NN_SHAPE(c), NN_PARAM_BUFFER);
    if (r.gamma) nn_init_constant(r.gamma, 1.0f);
    if (r.var) nn_init_constant(r.var, 1.0f);
    return r;
}

/* Gamma/beta of a layer or instance norm after an add. */
static nas_bn norm(builder *b, const char *sub, int32_t c) {
    char sc[256];
    join(sc, sizeof sc, b->scope, sub);
    cost_add(b, sc, 2 * (int64_t)c, 0);
    nas_bn r = {0};
    r.gamma = param(b, sc, "gamma", 1, NN_SHAPE(c), NN_PARAM_NO_DECAY);
    r.beta = param(b, sc, "beta", 1, NN_SHAPE(c), NN_PARAM_NO_DECAY);
    if (r.gamma) nn_init_constant(r.gamma, 1.0f);
    return r;
}

static void fc(builder *b, const char *sub, int32_t out, int32_t in, nn_tensor **w, nn_tensor **bias) {
    char sc[256];
    join(sc, sizeof sc, b->scope, sub);
    cost_add(b, sc, (int64_t)out * in + out, (int64_t)out * in);
    *w = param(b, sc, "weights", 2, NN_SHAPE(out, in), 0);
    *bias = param(b, sc, "biases", 1, NN_SHAPE(out), NN_PARAM_NO_DECAY);
    /* Zeros, not TF-slim's FAN_OUT variance scaling: with 10 outputs that draws weights of
     * std 0.5 over hundreds of positive pooled features, so the first logits spread by +-6
     * and the first loss is 6-14 (measured) instead of ln K; the clipped gradient then spends
     * hundreds of steps shrinking the logits before any feature learns. From zeros the
     * classifier starts at the uniform prediction and its gradient reaches the features at
     * the second step (as in Goyal et al.'s zero-initialised last layer). */
    if (*w) nn_init_constant(*w, 0.0f);
}

/* factorized_reduction(x, out, stride) under scope/sub: returns the output shape. */
static shape3 fact_red(builder *b, const char *sub, shape3 in, int32_t out, int stride, nas_fr *fr) {
    char saved[192];
    memcpy(saved, b->scope, sizeof saved);
    if (sub && sub[0]) join(b->scope, sizeof b->scope, saved, sub);
    fr->stride = stride;
    shape3 o = {out, nas_same_out(in.h, stride), nas_same_out(in.w, stride)};
    if (stride == 1) {
        fr->w = conv(b, "path_conv", "weights", out, in.c, 1, 1, 1, o.h, o.w);
        fr->bn = bn(b, "path_bn", out);
    } else {
        fr->w = conv(b, "path1_conv", "weights", out / 2, in.c, 1, 1, 1, o.h, o.w);
        fr->w2 = conv(b, "path2_conv", "weights", out / 2, in.c, 1, 1, 1, o.h, o.w);
        fr->bn = bn(b, "final_path_bn", out);
    }
    memcpy(b->scope, saved, sizeof saved);
    return o;
}

/* TF-slim's op names for the scopes: "5x5" etc. */
static void kstr(char *out, size_t n, int k) { snprintf(out, n, "%dx%d", k, k); }

/* _apply_conv_operation for one branch; returns the output shape. */
static shape3 branch(builder *b, nas_op op, shape3 in, int32_t filt, int stride, nas_branch *br) {
    const nas_op_info *oi = nas_op_get(op);
    br->op = op;
    br->kind = oi->kind;
    br->stride = stride;
    br->kernel = oi->kernel;
    br->dilation = oi->dilation;
    br->drop = oi->kind != NAS_OPK_IDENTITY;
    shape3 o = {filt, nas_same_out(in.h, stride), nas_same_out(in.w, stride)};
    int k = oi->kernel;
    char ks[16], sub[64], bsub[64];
    kstr(ks, sizeof ks, k);
    switch (oi->kind) {
    case NAS_OPK_SEPARABLE:
        for (int rep = 0; rep < 2; rep++) {
            int32_t cin = rep == 0 ? in.c : filt;
            snprintf(sub, sizeof sub, "separable_%s_%d", ks, rep + 1);
            snprintf(bsub, sizeof bsub, "bn_sep_%s_%d", ks, rep + 1);
            br->w[2 * rep] = conv(b, sub, "depthwise_weights", cin, cin, cin, k, k, o.h, o.w);
            br->w[2 * rep + 1] = conv(b, sub, "pointwise_weights", filt, cin, 1, 1, 1, o.h, o.w);
            br->bn[rep] = bn(b, bsub, filt);
        }
        break;
    case NAS_OPK_IDENTITY:
        if (stride > 1 || in.c != filt) {
            br->project = 1;
            br->w[0] = conv(b, "1x1", "weights", filt, in.c, 1, 1, 1, o.h, o.w);
            br->bn[0] = bn(b, "bn_1", filt);
        } else {
            o = in;
        }
        break;
    case NAS_OPK_AVG_POOL:
    case NAS_OPK_MAX_POOL:
        if (in.c != filt) {
            br->project = 1;
            br->w[0] = conv(b, "1x1", "weights", filt, in.c, 1, 1, 1, o.h, o.w);
            br->bn[0] = bn(b, "bn_1", filt);
        }
        break;
    case NAS_OPK_CONV: {
        const char *nm = nas_op_name(op); /* conv_1x1, conv_3x3, dil_conv_3x3 */
        snprintf(bsub, sizeof bsub, "bn_%s", nm);
        br->w[0] = conv(b, nm, "weights", filt, in.c, 1, k, k, o.h, o.w);
        br->bn[0] = bn(b, bsub, filt);
        break;
    }
    case NAS_OPK_FACTORIZED: {
        char s1[32], s2[32];
        snprintf(s1, sizeof s1, "conv_1x%d", k);
        snprintf(s2, sizeof s2, "conv_%dx1", k);
        snprintf(bsub, sizeof bsub, "bn_conv_1x%d_%dx1", k, k);
        br->w[0] = conv(b, s1, "weights", filt, in.c, 1, 1, k, o.h, o.w);
        br->w[1] = conv(b, s2, "weights", filt, filt, 1, k, 1, o.h, o.w);
        br->bn[0] = bn(b, bsub, filt);
        break;
    }
    default:
        break;
    }
    return o;
}

/* ---- cells ------------------------------------------------------------------------------ */

/* The outputs list's shapes: [0] = None, [1] = stem, [2 + i] = cell i. */
typedef struct walk {
    shape3 *out;
    int n;
} walk;

/* One cell: NasNetABaseCell.__call__ with shapes. srcs[j] = outputs index of input j
 * (srcs[0] = net; -1 = None). */
static int cell(builder *b, nas_net *net, int idx, nas_cell_kind kind, int is_stem, const char *name,
                double scaling, int cell_num, const int *srcs, walk *wk) {
    const nas_net_config *cfg = b->cfg;
    const nas_genotype *g = &cfg->genotype;
    const nas_cell *gc = &g->cell[kind];
    nas_cellp *cp = &net->cells[idx];
    memset(cp, 0, sizeof *cp);
    int32_t filt = (int32_t)(cfg->num_conv_filters * scaling);
    int stride = kind == NAS_CELL_REDUCTION ? 2 : 1;
    if (filt < 1)
        return nd_fail(ND_ERR_INVALID, "%s: filter_size %d (F=%d x scaling %g) must be >= 1", name, filt,
                       cfg->num_conv_filters, scaling);
    snprintf(cp->info.name, sizeof cp->info.name, "%s", name);
    cp->info.kind = kind;
    cp->info.is_stem = is_stem;
    cp->info.cell_num = cell_num;
    cp->info.filters = filt;
    cp->stride = stride;
    cp->net_src = srcs[0];
    shape3 st[NAS_MAX_STATES];
    shape3 cur = wk->out[srcs[0]];
    if (cur.h < 1 || cur.w < 1) return nd_fail(ND_ERR_INVALID, "%s: input map is empty", name);

    /* _reduce_prev_layer for h_{i-1} (and h_{i-2}, h_{i-3} in a 4-input space). */
    for (int j = 1; j < g->n_inputs; j++) {
        nas_input *in = &cp->in[j];
        in->src = srcs[j];
        shape3 p = srcs[j] < 0 ? cur : wk->out[srcs[j]];
        char saved[192];
        memcpy(saved, b->scope, sizeof saved);
        if (j == 1)
            snprintf(b->scope, sizeof b->scope, "%s", name);
        else
            snprintf(b->scope, sizeof b->scope, "%s/input_%d", name, j);
        if (srcs[j] < 0) {
            in->mode = NAS_IN_RAW;
        } else if (p.h != cur.h || p.w != cur.w) {
            in->mode = NAS_IN_FR;
            if (filt & 1) {
                memcpy(b->scope, saved, sizeof saved);
                return nd_fail(ND_ERR_INVALID, "%s: filter_size %d must be even for a factorized reduction", name, filt);
            }
            while (p.h != cur.h || p.w != cur.w) {
                if (in->n_fr == 2 || nas_same_out(p.h, 2) < cur.h || nas_same_out(p.w, 2) < cur.w) {
                    memcpy(b->scope, saved, sizeof saved);
                    return nd_fail(ND_ERR_INVALID, "%s: input %d is %dx%d, cannot be reduced to %dx%d", name, j, p.h,
                                   p.w, cur.h, cur.w);
                }
                char sub[32] = "";
                if (in->n_fr) snprintf(sub, sizeof sub, "reduce_%d", in->n_fr);
                p = fact_red(b, sub, p, filt, 2, &in->fr[in->n_fr]);
                in->n_fr++;
            }
        } else if (p.c != filt) {
            in->mode = NAS_IN_1X1;
            in->w = conv(b, "prev_1x1", "weights", filt, p.c, 1, 1, 1, p.h, p.w);
            in->bn = bn(b, "prev_bn", filt);
            p.c = filt;
        } else {
            in->mode = NAS_IN_SAME;
        }
        memcpy(b->scope, saved, sizeof saved);
        st[j] = p;
    }
    /* _cell_base: h_i = BN(1x1(ReLU(net))). */
    snprintf(b->scope, sizeof b->scope, "%s", name);
    cp->base_w = conv(b, "1x1", "weights", filt, cur.c, 1, 1, 1, cur.h, cur.w);
    cp->base_bn = bn(b, "beginning_bn", filt);
    st[0] = (shape3){filt, cur.h, cur.w};

    int I = g->n_inputs;
    for (int blk = 0; blk < g->n_blocks; blk++) {
        const nas_block *gb = &gc->block[blk];
        shape3 o[2];
        for (int side = 0; side < 2; side++) {
            int s = gb->input[side];
            snprintf(b->scope, sizeof b->scope, "%s/comb_iter_%d/%s", name, blk, side ? "right" : "left");
            o[side] = branch(b, gb->op[side], st[s], filt, s < I ? stride : 1, &cp->br[blk][side]);
        }
        if (o[0].h != o[1].h || o[0].w != o[1].w || (gb->combine != NAS_COMB_CONCAT && o[0].c != o[1].c))
            return nd_fail(ND_ERR_INVALID, "%s: block %d combines %dx%dx%d with %dx%dx%d", name, blk, o[0].c, o[0].h,
                           o[0].w, o[1].c, o[1].h, o[1].w);
        shape3 r = o[0];
        if (gb->combine == NAS_COMB_CONCAT) r.c = o[0].c + o[1].c;
        if (gb->combine == NAS_COMB_ADD_LAYERNORM || gb->combine == NAS_COMB_ADD_INSTANCENORM) {
            snprintf(b->scope, sizeof b->scope, "%s/comb_iter_%d", name, blk);
            cp->comb_norm[blk] = norm(b, "combine_norm", r.c);
        }
        st[I + blk] = r;
    }

    /* _combine_unused_states: states whose shape differs from the last state's are resized. */
    int outs[NAS_MAX_STATES];
    int n = nas_cell_output_states(g, kind, outs);
    shape3 last = st[I + g->n_blocks - 1];
    int32_t c_out = 0;
    cp->n_out = n;
    for (int k = 0; k < n; k++) {
        int s = outs[k];
        cp->out_state[k] = s;
        shape3 x = st[s];
        if (x.h != last.h || x.w != last.w || x.c != last.c) {
            int fs = (x.h != last.h || x.w != last.w) ? 2 : 1;
            if (fs == 2 && (nas_same_out(x.h, 2) != last.h || nas_same_out(x.w, 2) != last.w))
                return nd_fail(ND_ERR_INVALID, "%s: output state %d (%dx%d) cannot be matched to %dx%d", name, s, x.h,
                               x.w, last.h, last.w);
            if (last.c & 1)
                return nd_fail(ND_ERR_INVALID, "%s: output width %d must be even", name, last.c);
            char sub[32];
            snprintf(sub, sizeof sub, "reduction_%d", s);
            snprintf(b->scope, sizeof b->scope, "%s", name);
            x = fact_red(b, sub, x, last.c, fs, &cp->fix[k]);
            cp->out_fix[k] = 1;
        }
        c_out += x.c;
    }
    shape3 res = {c_out, last.h, last.w};
    wk->out[wk->n++] = res;
    cp->info.channels = res.c;
    cp->info.height = res.h;
    cp->info.width = res.w;
    return b->failed ? nd_fail(ND_ERR_NOMEM, "out of memory building %s", name) : ND_OK;
}

/* ---- the network ------------------------------------------------------------------------ */

int nas_net_stack_counts(const nas_net_config *cfg, int *n_cells, int *total_num_cells) {
    int R = cfg->num_reduction_layers, N = cfg->num_cells;
    int stem = cfg->stem == NAS_STEM_IMAGENET ? 2 : 0;
    *n_cells = N * (R + 1) + R + stem;
    *total_num_cells = N * (R + 1) + R + stem;
    return ND_OK;
}

int nas_net_build(const nas_net_config *cfg, nn_params *ps, const char *prefix, uint64_t seed, nas_cost *cost,
                  nas_net *net) {
    builder b = {0};
    b.cfg = cfg;
    b.ps = ps;
    b.prefix = prefix;
    b.cost = cost;
    nd_rng_seed(&b.rng, seed);
    memset(net, 0, sizeof *net);
    net->cfg = *cfg;
    net->aux_after = -1;
    for (int r = 0; r < 4; r++) net->red_cell[r] = -1;
    int n_cells, total;
    nas_net_stack_counts(cfg, &n_cells, &total);
    net->cells = calloc((size_t)n_cells, sizeof *net->cells);
    walk wk = {calloc((size_t)n_cells + 2, sizeof(shape3)), 0};
    if (!net->cells || !wk.out) {
        free(wk.out);
        return nd_fail(ND_ERR_NOMEM, "out of memory for a %d-cell network", n_cells);
    }
    int rc = ND_OK;
    int32_t H = cfg->image_size;
    int32_t stride = 1;
    wk.out[wk.n++] = (shape3){0, 0, 0}; /* None */

    /* Stem. */
    int imagenet = cfg->stem == NAS_STEM_IMAGENET;
    if (imagenet) {
        int32_t c0 = (int32_t)(32 * cfg->stem_multiplier);
        int32_t h0 = (H - 3) / 2 + 1;
        if (H < 3) {
            free(wk.out);
            return nd_fail(ND_ERR_INVALID, "image_size %d: the ImageNet stem needs at least 3 pixels", H);
        }
        snprintf(b.scope, sizeof b.scope, "conv0");
        net->stem_w = conv(&b, "", "weights", c0, cfg->in_channels, 1, 3, 3, h0, h0);
        snprintf(b.scope, sizeof b.scope, "conv0_bn");
        net->stem_bn = bn(&b, "", c0);
        wk.out[wk.n++] = (shape3){c0, h0, h0};
        stride = 2;
    } else {
        int32_t c0 = (int32_t)(cfg->num_conv_filters * cfg->stem_multiplier);
        snprintf(b.scope, sizeof b.scope, "l1_stem_3x3");
        net->stem_w = conv(&b, "", "weights", c0, cfg->in_channels, 1, 3, 3, H, H);
        snprintf(b.scope, sizeof b.scope, "l1_stem_bn");
        net->stem_bn = bn(&b, "", c0);
        wk.out[wk.n++] = (shape3){c0, H, H};
    }
    net->stem_c = wk.out[1].c, net->stem_h = wk.out[1].h, net->stem_wd = wk.out[1].w;

    int idx = 0, true_cell = 0;
    char name[32];
    int srcs[NAS_MAX_INPUTS];
    int I = cfg->genotype.n_inputs;
    /* Inputs j >= 1 of a cell whose h_{i-1} is outputs[p]: outputs[p], outputs[p-1], ...;
     * index 0 (and anything before) is TF-slim's None. */
#define SET_SRCS(netsrc, p)                                             \
    do {                                                                \
        srcs[0] = (netsrc);                                             \
        for (int j_ = 1; j_ < I; j_++) {                                \
            int s_ = (p) - (j_ - 1);                                    \
            srcs[j_] = s_ >= 1 ? s_ : -1;                               \
        }                                                               \
    } while (0)
    if (imagenet) {
        double fs = 1.0 / (cfg->filter_scaling_rate * cfg->filter_scaling_rate);
        for (int k = 0; k < 2 && rc == ND_OK; k++) {
            snprintf(name, sizeof name, "cell_stem_%d", k);
            SET_SRCS(wk.n - 1, wk.n - 2);
            rc = cell(&b, net, idx, NAS_CELL_REDUCTION, 1, name, fs, true_cell, srcs, &wk);
            stride *= 2;
            net->cells[idx].info.stride = stride;
            idx++, true_cell++;
            fs *= cfg->filter_scaling_rate;
        }
    }
    int R = cfg->num_reduction_layers, N = cfg->num_cells, num_cells = N * (R + 1);
    double fs = 1.0;
    int normal_i = 0, red_i = 0;
    for (int cn = 0; cn < num_cells && rc == ND_OK; cn++) {
        int is_red = 0;
        for (int r = 1; r <= R; r++)
            if (cn == (int)((double)r / (R + 1) * num_cells)) is_red = 1;
        int prev_i = wk.n - 2; /* skip_reduction_layer_input reads it before the reduction */
        if (is_red) {
            fs *= cfg->filter_scaling_rate;
            snprintf(name, sizeof name, "reduction_cell_%d", red_i);
            SET_SRCS(wk.n - 1, wk.n - 2);
            rc = cell(&b, net, idx, NAS_CELL_REDUCTION, 0, name, fs, true_cell, srcs, &wk);
            if (rc) break;
            stride *= 2;
            net->cells[idx].info.stride = stride;
            net->red_cell[red_i++] = idx;
            idx++, true_cell++;
        }
        if (!cfg->skip_reduction_layer_input) prev_i = wk.n - 2;
        snprintf(name, sizeof name, "cell_%d", normal_i++);
        SET_SRCS(wk.n - 1, prev_i);
        rc = cell(&b, net, idx, NAS_CELL_NORMAL, 0, name, fs, true_cell, srcs, &wk);
        if (rc) break;
        net->cells[idx].info.stride = stride;
        idx++, true_cell++;
        if (cfg->use_aux_head && R >= 2 && cn == (int)(2.0 / (R + 1) * num_cells) - 1) {
            /* Aux head on this cell's output (TF-slim _build_aux_head). */
            net->aux_after = idx - 1;
            shape3 a = wk.out[wk.n - 1];
            if (a.h < 5 || a.w < 5) {
                rc = nd_fail(ND_ERR_INVALID,
                             "use_aux_head: the map after %s is %dx%d, smaller than the aux head's 5x5 pooling "
                             "window (use a larger image_size or no aux head)",
                             name, a.h, a.w);
                break;
            }
            int32_t ph = (a.h - 5) / 3 + 1, pw = (a.w - 5) / 3 + 1;
            net->aux_pool_h = ph, net->aux_pool_w = pw;
            b.aux = 1;
            snprintf(b.scope, sizeof b.scope, "aux_logits");
            net->aux_proj_w = conv(&b, "proj", "weights", 128, a.c, 1, 1, 1, ph, pw);
            net->aux_bn0 = bn(&b, "aux_bn0", 128);
            net->aux_conv_w = conv(&b, "Conv", "weights", 768, 128, 1, ph, pw, 1, 1);
            net->aux_bn1 = bn(&b, "aux_bn1", 768);
            fc(&b, "FC", cfg->num_classes, 768, &net->aux_fc_w, &net->aux_fc_b);
            net->aux_params = (int64_t)128 * a.c + 2 * 128 + (int64_t)768 * 128 * ph * pw + 2 * 768 +
                              (int64_t)cfg->num_classes * 768 + cfg->num_classes;
            b.aux = 0;
        }
    }
#undef SET_SRCS
    if (rc == ND_OK) {
        net->n_cells = idx;
        for (int i = 0; i < idx; i++)
            net->cells[i].layer_ratio = (float)((net->cells[i].info.cell_num + 1) / (double)total);
        snprintf(b.scope, sizeof b.scope, "final_layer");
        fc(&b, "FC", cfg->num_classes, wk.out[wk.n - 1].c, &net->fc_w, &net->fc_b);
        if (b.failed) rc = nd_fail(ND_ERR_NOMEM, "out of memory recording the cost");
    }
    free(wk.out);
    return rc;
}
