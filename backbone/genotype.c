/* Genotypes: the op and combiner tables, validation, state bookkeeping and the built-ins.
 * JSON lives in genotype_json.c, drawing in genotype_dot.c. */
#include "backbone/nasnet.h"

#include <string.h>

#include "common/status.h"

/* Names follow the common DARTS/NAS-Bench spelling rather than TF-slim's ("none",
 * "separable_3x3_2") because they say what the op is without knowing TF-slim's conventions. */
static const nas_op_info OPS[NAS_OP_COUNT] = {
    [NAS_OP_IDENTITY] = {"identity", NAS_OPK_IDENTITY, 0, 1},
    [NAS_OP_CONV_1X3_3X1] = {"conv_1x3_3x1", NAS_OPK_FACTORIZED, 3, 1},
    [NAS_OP_CONV_1X7_7X1] = {"conv_1x7_7x1", NAS_OPK_FACTORIZED, 7, 1},
    [NAS_OP_DIL_CONV_3X3] = {"dil_conv_3x3", NAS_OPK_CONV, 3, 2},
    [NAS_OP_AVG_POOL_3X3] = {"avg_pool_3x3", NAS_OPK_AVG_POOL, 3, 1},
    [NAS_OP_MAX_POOL_3X3] = {"max_pool_3x3", NAS_OPK_MAX_POOL, 3, 1},
    [NAS_OP_MAX_POOL_5X5] = {"max_pool_5x5", NAS_OPK_MAX_POOL, 5, 1},
    [NAS_OP_MAX_POOL_7X7] = {"max_pool_7x7", NAS_OPK_MAX_POOL, 7, 1},
    [NAS_OP_CONV_1X1] = {"conv_1x1", NAS_OPK_CONV, 1, 1},
    [NAS_OP_CONV_3X3] = {"conv_3x3", NAS_OPK_CONV, 3, 1},
    [NAS_OP_SEP_CONV_3X3] = {"sep_conv_3x3", NAS_OPK_SEPARABLE, 3, 1},
    [NAS_OP_SEP_CONV_5X5] = {"sep_conv_5x5", NAS_OPK_SEPARABLE, 5, 1},
    [NAS_OP_SEP_CONV_7X7] = {"sep_conv_7x7", NAS_OPK_SEPARABLE, 7, 1},
};

static const char *const COMBINERS[NAS_COMB_COUNT] = {
    [NAS_COMB_ADD] = "add",
    [NAS_COMB_CONCAT] = "concat",
    [NAS_COMB_ADD_LAYERNORM] = "add_layernorm",
    [NAS_COMB_ADD_INSTANCENORM] = "add_instancenorm",
};

static const char *const CELL_NAMES[NAS_CELL_COUNT] = {"normal", "reduction"};

const nas_op_info *nas_op_get(nas_op op) {
    if ((int)op < 0 || op >= NAS_OP_COUNT) return NULL;
    return &OPS[op];
}

const char *nas_op_name(nas_op op) {
    const nas_op_info *info = nas_op_get(op);
    return info ? info->name : "?";
}

int nas_op_from_name(const char *name, nas_op *op) {
    for (int i = 0; i < NAS_OP_COUNT; i++) {
        if (name && strcmp(name, OPS[i].name) == 0) {
            *op = (nas_op)i;
            return ND_OK;
        }
    }
    return nd_fail(ND_ERR_NOT_FOUND,
                   "unknown op \"%s\" (expected one of identity, conv_1x3_3x1, conv_1x7_7x1, dil_conv_3x3, "
                   "avg_pool_3x3, max_pool_3x3, max_pool_5x5, max_pool_7x7, conv_1x1, conv_3x3, sep_conv_3x3, "
                   "sep_conv_5x5, sep_conv_7x7)",
                   name ? name : "(null)");
}

static nas_op_kind op_kind(nas_op op) {
    const nas_op_info *info = nas_op_get(op);
    return info ? info->kind : NAS_OPK_COUNT;
}

int nas_op_is_identity(nas_op op) { return op_kind(op) == NAS_OPK_IDENTITY; }
int nas_op_is_pool(nas_op op) { return op_kind(op) == NAS_OPK_AVG_POOL || op_kind(op) == NAS_OPK_MAX_POOL; }
int nas_op_is_separable(nas_op op) { return op_kind(op) == NAS_OPK_SEPARABLE; }
int nas_op_is_factorized(nas_op op) { return op_kind(op) == NAS_OPK_FACTORIZED; }
int nas_op_has_weights(nas_op op) {
    nas_op_kind k = op_kind(op);
    return k == NAS_OPK_CONV || k == NAS_OPK_FACTORIZED || k == NAS_OPK_SEPARABLE;
}
int nas_op_kernel(nas_op op) {
    const nas_op_info *info = nas_op_get(op);
    return info ? info->kernel : 0;
}
int nas_op_dilation(nas_op op) {
    const nas_op_info *info = nas_op_get(op);
    return info ? info->dilation : 0;
}

const char *nas_combiner_name(nas_combiner c) {
    if ((int)c < 0 || c >= NAS_COMB_COUNT) return "?";
    return COMBINERS[c];
}

int nas_combiner_from_name(const char *name, nas_combiner *c) {
    for (int i = 0; i < NAS_COMB_COUNT; i++) {
        if (name && strcmp(name, COMBINERS[i]) == 0) {
            *c = (nas_combiner)i;
            return ND_OK;
        }
    }
    return nd_fail(ND_ERR_NOT_FOUND,
                   "unknown combiner \"%s\" (expected one of add, concat, add_layernorm, add_instancenorm)",
                   name ? name : "(null)");
}

const char *nas_cell_kind_name(nas_cell_kind kind) {
    if ((int)kind < 0 || kind >= NAS_CELL_COUNT) return "?";
    return CELL_NAMES[kind];
}

void nas_genotype_init(nas_genotype *g, int n_inputs, int n_blocks) {
    memset(g, 0, sizeof *g);
    g->n_inputs = n_inputs;
    g->n_blocks = n_blocks;
}

static int validate_cell(const nas_genotype *g, nas_cell_kind kind) {
    const nas_cell *c = &g->cell[kind];
    const char *cn = CELL_NAMES[kind];
    int n_states = g->n_inputs + g->n_blocks;
    for (int b = 0; b < g->n_blocks; b++) {
        const nas_block *blk = &c->block[b];
        for (int k = 0; k < 2; k++) {
            int s = blk->input[k];
            if (s < 0 || s >= g->n_inputs + b)
                return nd_fail(ND_ERR_INVALID,
                               "%s.blocks[%d].inputs[%d]: state %d does not exist yet (block %d may read states 0..%d: "
                               "%d cell inputs, then the outputs of earlier blocks)",
                               cn, b, k, s, b, g->n_inputs + b - 1, g->n_inputs);
            if ((int)blk->op[k] < 0 || blk->op[k] >= NAS_OP_COUNT)
                return nd_fail(ND_ERR_INVALID, "%s.blocks[%d].ops[%d]: op value %d is not one of the %d ops", cn, b, k,
                               (int)blk->op[k], NAS_OP_COUNT);
        }
        if ((int)blk->combine < 0 || blk->combine >= NAS_COMB_COUNT)
            return nd_fail(ND_ERR_INVALID, "%s.blocks[%d].combine: combiner value %d is not one of the %d combiners", cn,
                           b, (int)blk->combine, NAS_COMB_COUNT);
    }
    switch (c->output) {
    case NAS_OUT_UNUSED:
    case NAS_OUT_ALL: break;
    case NAS_OUT_LIST:
        if (c->n_out <= 0)
            return nd_fail(ND_ERR_INVALID, "%s.output: the cell has no output (an empty list; give at least one state)",
                           cn);
        if (c->n_out > n_states)
            return nd_fail(ND_ERR_INVALID, "%s.output: %d states listed but the cell has only %d", cn, c->n_out,
                           n_states);
        for (int i = 0; i < c->n_out; i++) {
            if (c->out[i] < 0 || c->out[i] >= n_states)
                return nd_fail(ND_ERR_INVALID, "%s.output[%d]: state %d does not exist (the cell has states 0..%d)", cn,
                               i, c->out[i], n_states - 1);
            /* Increasing order is the concat order; one spelling per output keeps round trips exact. */
            if (i > 0 && c->out[i] <= c->out[i - 1])
                return nd_fail(ND_ERR_INVALID,
                               "%s.output[%d]: state %d after state %d: list each state once, in increasing order", cn,
                               i, c->out[i], c->out[i - 1]);
        }
        break;
    default:
        return nd_fail(ND_ERR_INVALID, "%s.output: output rule value %d is not unused, all or a list", cn,
                       (int)c->output);
    }
    /* A block whose result neither feeds a later block nor the output would be trained for
     * nothing: it is almost always a mistake in a hand-written list. */
    uint8_t used[NAS_MAX_STATES];
    nas_cell_used_states(g, kind, used);
    int out[NAS_MAX_STATES];
    int n_out = nas_cell_output_states(g, kind, out);
    if (n_out == 0)
        return nd_fail(ND_ERR_INVALID, "%s.output: the cell has no output (every state is read by a block)", cn);
    uint8_t in_out[NAS_MAX_STATES] = {0};
    for (int i = 0; i < n_out; i++) in_out[out[i]] = 1;
    for (int b = 0; b < g->n_blocks; b++) {
        int s = g->n_inputs + b;
        if (!used[s] && !in_out[s])
            return nd_fail(ND_ERR_INVALID,
                           "%s.output: block %d (state %d) is neither read by a later block nor part of the output", cn,
                           b, s);
    }
    return ND_OK;
}

int nas_genotype_validate(const nas_genotype *g) {
    if (g->n_inputs < 2 || g->n_inputs > NAS_MAX_INPUTS)
        return nd_fail(ND_ERR_INVALID, "input_states: %d, expected 2..%d (2 for the NASNet-A/C spaces, 4 for B)",
                       g->n_inputs, NAS_MAX_INPUTS);
    if (g->n_blocks < 1 || g->n_blocks > NAS_MAX_BLOCKS)
        return nd_fail(ND_ERR_INVALID, "blocks: %d, expected 1..%d (5 for the NASNet-A/C spaces, 4 for B)",
                       g->n_blocks, NAS_MAX_BLOCKS);
    if (memchr(g->name, '\0', sizeof g->name) == NULL)
        return nd_fail(ND_ERR_INVALID, "name: longer than %d bytes", NAS_NAME_MAX - 1);
    for (int k = 0; k < NAS_CELL_COUNT; k++) {
        int rc = validate_cell(g, (nas_cell_kind)k);
        if (rc) return rc;
    }
    return ND_OK;
}

static int cells_equal(const nas_cell *a, const nas_cell *b, int n_blocks) {
    for (int i = 0; i < n_blocks; i++) {
        const nas_block *x = &a->block[i], *y = &b->block[i];
        if (x->input[0] != y->input[0] || x->input[1] != y->input[1] || x->op[0] != y->op[0] ||
            x->op[1] != y->op[1] || x->combine != y->combine)
            return 0;
    }
    if (a->output != b->output) return 0;
    if (a->output == NAS_OUT_LIST) {
        if (a->n_out != b->n_out) return 0;
        for (int i = 0; i < a->n_out; i++)
            if (a->out[i] != b->out[i]) return 0;
    }
    return 1;
}

int nas_genotype_equal(const nas_genotype *a, const nas_genotype *b) {
    if (a->n_inputs != b->n_inputs || a->n_blocks != b->n_blocks) return 0;
    if (strncmp(a->name, b->name, NAS_NAME_MAX) != 0) return 0;
    if (a->n_blocks < 0 || a->n_blocks > NAS_MAX_BLOCKS) return 0;
    for (int k = 0; k < NAS_CELL_COUNT; k++)
        if (!cells_equal(&a->cell[k], &b->cell[k], a->n_blocks)) return 0;
    return 1;
}

void nas_cell_used_states(const nas_genotype *g, nas_cell_kind kind, uint8_t used[NAS_MAX_STATES]) {
    memset(used, 0, NAS_MAX_STATES);
    const nas_cell *c = &g->cell[kind];
    for (int b = 0; b < g->n_blocks && b < NAS_MAX_BLOCKS; b++)
        for (int k = 0; k < 2; k++) {
            int s = c->block[b].input[k];
            if (s >= 0 && s < NAS_MAX_STATES) used[s] = 1;
        }
}

int nas_cell_output_states(const nas_genotype *g, nas_cell_kind kind, int out[NAS_MAX_STATES]) {
    const nas_cell *c = &g->cell[kind];
    int n_states = g->n_inputs + g->n_blocks, n = 0;
    if (c->output == NAS_OUT_LIST) {
        for (int i = 0; i < c->n_out && i < NAS_MAX_STATES; i++) out[n++] = c->out[i];
        return n;
    }
    if (c->output == NAS_OUT_ALL) {
        for (int s = g->n_inputs; s < n_states; s++) out[n++] = s;
        return n;
    }
    uint8_t used[NAS_MAX_STATES];
    nas_cell_used_states(g, kind, used);
    for (int s = 0; s < n_states && s < NAS_MAX_STATES; s++)
        if (!used[s]) out[n++] = s;
    return n;
}

/* ---- built-ins ------------------------------------------------------------------------ */

static void set_block(nas_cell *c, int b, int in_a, nas_op op_a, int in_b, nas_op op_b) {
    c->block[b].input[0] = in_a;
    c->block[b].input[1] = in_b;
    c->block[b].op[0] = op_a;
    c->block[b].op[1] = op_b;
    c->block[b].combine = NAS_COMB_ADD;
}

/* TF-slim nasnet_utils.py, NasNetANormalCell and NasNetAReductionCell: block i reads
 * hiddenstate_indices[2i] with operations[2i] and hiddenstate_indices[2i+1] with
 * operations[2i+1], and adds. The output is the concat of the states whose
 * used_hiddenstates entry is 0; those lists are hand-written in TF-slim and differ from the
 * "unused" rule (the normal cell outputs h_{i-1}, which b0 reads; the reduction cell outputs
 * b1, which b3 reads), so NASNet-A carries explicit lists. */
static void builtin_nasnet_a(nas_genotype *g) {
    nas_genotype_init(g, 2, 5);
    strcpy(g->name, "nasnet-a");
    nas_cell *n = &g->cell[NAS_CELL_NORMAL];
    set_block(n, 0, 0, NAS_OP_SEP_CONV_5X5, 1, NAS_OP_SEP_CONV_3X3);
    set_block(n, 1, 1, NAS_OP_SEP_CONV_5X5, 1, NAS_OP_SEP_CONV_3X3);
    set_block(n, 2, 0, NAS_OP_AVG_POOL_3X3, 1, NAS_OP_IDENTITY);
    set_block(n, 3, 1, NAS_OP_AVG_POOL_3X3, 1, NAS_OP_AVG_POOL_3X3);
    set_block(n, 4, 0, NAS_OP_SEP_CONV_3X3, 0, NAS_OP_IDENTITY);
    n->output = NAS_OUT_LIST; /* used_hiddenstates = [1, 0, 0, 0, 0, 0, 0] */
    n->n_out = 6;
    for (int i = 0; i < 6; i++) n->out[i] = 1 + i;
    nas_cell *r = &g->cell[NAS_CELL_REDUCTION];
    set_block(r, 0, 0, NAS_OP_SEP_CONV_5X5, 1, NAS_OP_SEP_CONV_7X7);
    set_block(r, 1, 0, NAS_OP_MAX_POOL_3X3, 1, NAS_OP_SEP_CONV_7X7);
    set_block(r, 2, 0, NAS_OP_AVG_POOL_3X3, 1, NAS_OP_SEP_CONV_5X5);
    set_block(r, 3, 3, NAS_OP_IDENTITY, 2, NAS_OP_AVG_POOL_3X3);
    set_block(r, 4, 2, NAS_OP_SEP_CONV_3X3, 0, NAS_OP_MAX_POOL_3X3);
    r->output = NAS_OUT_LIST; /* used_hiddenstates = [1, 1, 1, 0, 0, 0, 0] */
    r->n_out = 4;
    for (int i = 0; i < 4; i++) r->out[i] = 3 + i;
}

static const char *const BUILTIN_NAMES[] = {"nasnet-a", NULL};

const char *const *nas_genotype_builtin_names(void) { return BUILTIN_NAMES; }

int nas_genotype_builtin(const char *name, nas_genotype *g) {
    if (name && strcmp(name, "nasnet-a") == 0) {
        builtin_nasnet_a(g);
        return ND_OK;
    }
    return nd_fail(ND_ERR_NOT_FOUND,
                   "no built-in genotype \"%s\" (built-in: nasnet-a; NASNet-B and -C exist only as figures, "
                   "write them as JSON)",
                   name ? name : "(null)");
}
