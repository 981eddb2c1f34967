/* Internal to backbone/: the built form of a network (what the builder decided per cell and
 * which parameter each layer reads), shared by the builder, the forward pass, the trainer and
 * the importer. Never included from outside backbone/. */
#ifndef NAS_NET_INTERNAL_H
#define NAS_NET_INTERNAL_H

#include "backbone/nasnet_net.h"

typedef struct nas_bn {
    nn_tensor *gamma, *beta, *mean, *var; /* mean/var NULL for the layer/instance norm of a
                                             combiner, which has no running statistics */
} nas_bn;

/* TF-slim factorized_reduction: stride 1 = 1x1 conv + BN; stride 2 = two 1x1 convs on the
 * even and the one-pixel-shifted odd pixels, concatenated, + BN. */
typedef struct nas_fr {
    int stride;
    nn_tensor *w, *w2; /* stride 1: w; stride 2: w (path1), w2 (path2) */
    nas_bn bn;
} nas_fr;

/* One op applied to one state. */
typedef struct nas_branch {
    nas_op op;
    nas_op_kind kind;
    int stride, kernel, dilation;
    int project;        /* identity / pool: 1x1 conv + BN (identity: ReLU first) */
    nn_tensor *w[4];    /* separable: dw1, pw1, dw2, pw2; conv: w[0]; 1xk-kx1: w[0], w[1];
                           projection: w[0] */
    nas_bn bn[2];       /* separable: bn[0], bn[1]; others: bn[0] */
    int drop;           /* drop path after it (every op except identity) */
} nas_branch;

/* How input state j >= 1 of a cell (h_{i-1}, ...) is made from an earlier output. */
enum { NAS_IN_RAW = 0, NAS_IN_SAME, NAS_IN_1X1, NAS_IN_FR };
typedef struct nas_input {
    int mode;
    int src;            /* index into the outputs list (see nas_net); -1 with NAS_IN_RAW */
    int n_fr;           /* NAS_IN_FR: number of stride-2 reductions (1; 2 for a 4x gap) */
    nas_fr fr[2];
    nn_tensor *w;       /* NAS_IN_1X1 */
    nas_bn bn;
} nas_input;

typedef struct nas_cellp {
    nas_cell_info info;
    int stride;                        /* 1 normal, 2 reduction */
    int net_src;                       /* outputs-list index of the current input */
    nas_input in[NAS_MAX_INPUTS];      /* in[0] unused: h_i is made by the base 1x1 */
    nn_tensor *base_w;
    nas_bn base_bn;
    nas_branch br[NAS_MAX_BLOCKS][2];
    nas_bn comb_norm[NAS_MAX_BLOCKS];
    int n_out;
    int out_state[NAS_MAX_STATES];
    int out_fix[NAS_MAX_STATES];       /* 1: resized by fix[k] before the concat */
    nas_fr fix[NAS_MAX_STATES];
    float layer_ratio;                 /* (cell_num + 1) / total_num_cells, for drop path */
} nas_cellp;

/* The outputs list, as TF-slim's cell_outputs: [0] = None, [1] = the stem output, [2 + i] =
 * cell i's output. A cell reads indices < its own 2 + i. */
struct nas_net {
    nas_net_config cfg;
    nn_params *ps;
    int owns_ps;
    size_t prefix_len;        /* bytes of "<prefix>/" in front of every parameter name */
    nn_tensor *stem_w;
    nas_bn stem_bn;
    int32_t stem_c, stem_h, stem_wd;
    int n_cells;
    nas_cellp *cells;
    int red_cell[4];          /* index of reduction cell r (between stacks) */
    int aux_after;            /* cell after which the aux head runs; -1: none */
    int aux_pool_h, aux_pool_w; /* pooled map size the aux conv was built for */
    nn_tensor *aux_proj_w, *aux_conv_w, *aux_fc_w, *aux_fc_b;
    nas_bn aux_bn0, aux_bn1;
    nn_tensor *fc_w, *fc_b;
    int64_t aux_params;
};

/* TF SAME output size. */
static inline int32_t nas_same_out(int32_t h, int32_t s) { return (h + s - 1) / s; }

/* The builder (net_build.c): fill `net` for `cfg` (validated by the caller), creating the
 * parameters in ps (NULL: shapes only) and adding every layer's cost to `cost` (may be NULL;
 * zeroed by the caller). On failure net->cells may be allocated: the caller frees it. */
int nas_net_build(const nas_net_config *cfg, nn_params *ps, const char *prefix, uint64_t seed, nas_cost *cost,
                  nas_net *net);
/* Cells in the network and TF-slim's total_num_cells (drop-path depth denominator). */
int nas_net_stack_counts(const nas_net_config *cfg, int *n_cells, int *total_num_cells);

/* Run the branch / cell / stem pieces (net_forward.c). */
nn_tensor *nas_bn_apply(const nas_net *net, nn_ctx *ctx, nn_tensor *x, const nas_bn *bn);

/* Key mixing for per-step and per-epoch seeds (net_train.c, shared with tests through the
 * behaviour only). */
uint64_t nas_mix_seed(uint64_t seed, uint64_t a, uint64_t b);

#endif
