/* backbone: NASNet cells and networks.
 *
 * Section 1, genotypes: what a cell pair (Normal, Reduction) is made of, its JSON format, the
 * built-in NASNet-A, and the facts about ops and states that the network builders need.
 * (The builder section follows it.)
 *
 * States of a cell. A cell with I input states and B blocks has I + B states, numbered:
 *   0 = h_i      the current input (the previous cell's output, after 1x1 conv + BN),
 *   1 = h_{i-1}  the input before that (matched in shape by a 1x1 conv or a factorized
 *                reduction),
 *   2, 3 = h_{i-2}, h_{i-3} (only with I = 4, the NASNet-B space),
 *   I + b = the output of block b (b = 0..B-1).
 * Block b reads two states with index < I + b, applies one op to each and combines the two
 * results. The cell's output is the channel concat of a set of states, in index order, chosen
 * by the cell's output rule.
 *
 * JSON format (written by nas_genotype_to_json, read by nas_genotype_parse):
 *   {
 *     "name": "nasnet-a",              optional, at most NAS_NAME_MAX - 1 bytes
 *     "input_states": 2,               I, 2..NAS_MAX_INPUTS
 *     "blocks": 5,                     B, 1..NAS_MAX_BLOCKS; both cells have B blocks
 *     "normal": {
 *       "blocks": [
 *         {"inputs": [0, 1], "ops": ["sep_conv_5x5", "sep_conv_3x3"], "combine": "add"},
 *         ...                          B entries
 *       ],
 *       "output": "unused"             "unused", "all", or a list of state indices
 *     },
 *     "reduction": { same shape }
 *   }
 * Unknown keys are rejected (a misspelt key would otherwise be ignored silently). Errors
 * name the JSON path, e.g. "reduction.blocks[3].inputs[1]: state 6 does not exist yet
 * (block 3 may read states 0..4)". */
#ifndef NAS_NASNET_H
#define NAS_NASNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * Section 1: genotypes
 * ====================================================================================== */

enum {
    NAS_MAX_INPUTS = 4, /* input states of a cell: 2 (NASNet-A/C spaces), 4 (NASNet-B space) */
    NAS_MAX_BLOCKS = 8, /* blocks per cell: 5 (A/C), 4 (B); room for larger searches */
    NAS_MAX_STATES = NAS_MAX_INPUTS + NAS_MAX_BLOCKS,
    NAS_NAME_MAX = 64
};

/* The 13 ops of the search space. The order is the search space's op order (the controller's
 * op decision is an index into it) and never changes. */
typedef enum nas_op {
    NAS_OP_IDENTITY = 0,
    NAS_OP_CONV_1X3_3X1,  /* 1x3 conv then 3x1 conv */
    NAS_OP_CONV_1X7_7X1,  /* 1x7 conv then 7x1 conv */
    NAS_OP_DIL_CONV_3X3,  /* 3x3 conv, dilation 2 */
    NAS_OP_AVG_POOL_3X3,
    NAS_OP_MAX_POOL_3X3,
    NAS_OP_MAX_POOL_5X5,
    NAS_OP_MAX_POOL_7X7,
    NAS_OP_CONV_1X1,
    NAS_OP_CONV_3X3,
    NAS_OP_SEP_CONV_3X3,  /* depthwise-separable, applied twice (TF-slim's separable_3x3_2) */
    NAS_OP_SEP_CONV_5X5,
    NAS_OP_SEP_CONV_7X7,
    NAS_OP_COUNT
} nas_op;

/* What kind of layer an op becomes. */
typedef enum nas_op_kind {
    NAS_OPK_IDENTITY = 0, /* none: 1x1 conv + BN only when stride or width must change */
    NAS_OPK_AVG_POOL,     /* SAME padding, padding not counted in the average */
    NAS_OPK_MAX_POOL,     /* SAME padding */
    NAS_OPK_CONV,         /* ReLU -> conv kxk (dilation d) -> BN */
    NAS_OPK_FACTORIZED,   /* ReLU -> conv 1xk -> conv kx1 -> BN */
    NAS_OPK_SEPARABLE,    /* 2 x [ReLU -> depthwise kxk -> pointwise 1x1 -> BN], stride on the 1st */
    NAS_OPK_COUNT
} nas_op_kind;

typedef struct nas_op_info {
    const char *name;  /* JSON name, e.g. "sep_conv_5x5" */
    nas_op_kind kind;
    int kernel;        /* k of kxk (or of 1xk then kx1); 0 for identity */
    int dilation;      /* 2 for dil_conv_3x3, else 1 */
} nas_op_info;

/* Properties of `op`; NULL when op is not in [0, NAS_OP_COUNT). */
const nas_op_info *nas_op_get(nas_op op);
/* JSON name of `op`, or "?" when op is out of range. */
const char *nas_op_name(nas_op op);
/* Name -> op. Returns 0, or ND_ERR_NOT_FOUND with a message listing the known names. */
int nas_op_from_name(const char *name, nas_op *op);
int nas_op_is_identity(nas_op op);
int nas_op_is_pool(nas_op op);       /* avg or max pool */
int nas_op_is_separable(nas_op op);
int nas_op_is_factorized(nas_op op); /* 1xk then kx1 */
int nas_op_has_weights(nas_op op);   /* conv kinds; pools and identity have none of their own */
int nas_op_kernel(nas_op op);
int nas_op_dilation(nas_op op);

/* How a block joins its two op outputs. */
typedef enum nas_combiner {
    NAS_COMB_ADD = 0,
    NAS_COMB_CONCAT,           /* along channels: the block output has twice the width */
    NAS_COMB_ADD_LAYERNORM,    /* add, then layer norm (NASNet-B/C spaces) */
    NAS_COMB_ADD_INSTANCENORM, /* add, then instance norm (NASNet-B/C spaces) */
    NAS_COMB_COUNT
} nas_combiner;

/* "add", "concat", "add_layernorm", "add_instancenorm"; "?" when out of range. */
const char *nas_combiner_name(nas_combiner c);
int nas_combiner_from_name(const char *name, nas_combiner *c); /* 0 or ND_ERR_NOT_FOUND */

/* Which states a cell outputs (concatenated along channels, in index order). */
typedef enum nas_output_rule {
    NAS_OUT_UNUSED = 0, /* the paper's rule: every state no block reads (inputs included) */
    NAS_OUT_ALL,        /* NASNet-B: every state created in the cell (all block outputs),
                         * used or not (paper, appendix B) */
    NAS_OUT_LIST,       /* an explicit list: TF-slim's NASNet-A hard-codes its concat lists,
                         * which include states that blocks also read */
    NAS_OUT_COUNT
} nas_output_rule;

typedef struct nas_block {
    int input[2];        /* state indices, each < I + b for block b */
    nas_op op[2];        /* op[k] is applied to state input[k] */
    nas_combiner combine;
} nas_block;

typedef struct nas_cell {
    nas_block block[NAS_MAX_BLOCKS];  /* the first B are meaningful, the rest zero */
    nas_output_rule output;
    int n_out;                        /* NAS_OUT_LIST only: entries in out[] */
    int out[NAS_MAX_STATES];          /* NAS_OUT_LIST only: strictly increasing state indices */
} nas_cell;

typedef enum nas_cell_kind { NAS_CELL_NORMAL = 0, NAS_CELL_REDUCTION = 1, NAS_CELL_COUNT } nas_cell_kind;

/* A cell pair. Plain data (no pointers): copy it by assignment or memcpy. Make one with
 * nas_genotype_init, so that unused entries are zero and nas_genotype_equal is meaningful. */
typedef struct nas_genotype {
    char name[NAS_NAME_MAX]; /* "" when unnamed */
    int n_inputs;            /* I */
    int n_blocks;            /* B */
    nas_cell cell[NAS_CELL_COUNT];
} nas_genotype;

/* "normal" or "reduction" ("?" when out of range). */
const char *nas_cell_kind_name(nas_cell_kind kind);

/* Zero `g` and set its sizes (not validated here: nas_genotype_validate does that). */
void nas_genotype_init(nas_genotype *g, int n_inputs, int n_blocks);

/* Check sizes, input indices, op and combiner values, the output rule, that the cell has an
 * output and that every block's result reaches it (read by a later block or output). Returns 0
 * or ND_ERR_INVALID with a message naming the JSON path of the first problem. */
int nas_genotype_validate(const nas_genotype *g);

/* 1 when a and b describe the same cells (names included), else 0. */
int nas_genotype_equal(const nas_genotype *a, const nas_genotype *b);

/* Parse JSON text into *g and validate it. Returns 0, ND_ERR_FORMAT (not JSON, wrong types,
 * unknown keys) or ND_ERR_INVALID (values), with a message naming the JSON path; *g is
 * unspecified on failure. */
int nas_genotype_parse(const char *text, nas_genotype *g);
/* nas_genotype_parse on the content of a file; messages start with the file name. */
int nas_genotype_load(const char *path, nas_genotype *g);
/* A built-in name (see nas_genotype_builtin) or a JSON file path. */
int nas_genotype_from_spec(const char *spec, nas_genotype *g);

/* The canonical JSON text of a valid genotype in a malloc'ed string (caller frees): `pretty`
 * = 1 gives the multi-line file form ending in a newline, 0 one line with no newline (for JSON
 * lines logs). Writing, parsing and writing again gives identical text. Returns 0, or
 * ND_ERR_INVALID when g is not valid, ND_ERR_NOMEM. */
int nas_genotype_to_json(const nas_genotype *g, int pretty, char **text);
/* Write the pretty form to `path` atomically. */
int nas_genotype_save(const nas_genotype *g, const char *path);

/* Built-in genotypes: "nasnet-a" (TF-slim's NasNetANormalCell / NasNetAReductionCell, with
 * their hard-coded output lists). Returns 0 or ND_ERR_NOT_FOUND listing the known names. */
int nas_genotype_builtin(const char *name, nas_genotype *g);
/* NULL-terminated list of the built-in names. */
const char *const *nas_genotype_builtin_names(void);

/* used[s] = 1 when some block of the cell reads state s, for s < I + B (others set to 0).
 * `used` has NAS_MAX_STATES entries. g must be valid. */
void nas_cell_used_states(const nas_genotype *g, nas_cell_kind kind, uint8_t used[NAS_MAX_STATES]);
/* The states the cell concatenates into its output, in concat order (increasing index), in
 * out[0..n) where n is returned (>= 1 for a valid genotype). g must be valid. */
int nas_cell_output_states(const nas_genotype *g, nas_cell_kind kind, int out[NAS_MAX_STATES]);

/* Graphviz DOT text drawing the cells selected by `cells` (a bit mask: 1 << NAS_CELL_NORMAL,
 * 1 << NAS_CELL_REDUCTION, or both) into a malloc'ed string (caller frees). Node names:
 * "<cell>_h<s>" for input states, "<cell>_b<b>_op<k>" for ops, "<cell>_b<b>" for a block's
 * combiner (its output state), "<cell>_out" for the output concat. Returns 0, ND_ERR_INVALID
 * (invalid genotype or empty mask), ND_ERR_NOMEM. */
int nas_genotype_to_dot(const nas_genotype *g, unsigned cells, char **dot);

#ifdef __cplusplus
}
#endif

#endif
