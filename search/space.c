/* The search space: the decision sequence the controller samples and its genotype. */
#include "search/search.h"

#include <string.h>

#include "common/status.h"

enum { SLOTS = 5 };

static const char *const SPACE_NAMES[SRCH_SPACE_COUNT] = {"nasnet-a", "nasnet-b", "nasnet-c"};
static const char *const SLOT_NAMES[SLOTS] = {"input A", "input B", "op A", "op B", "combiner"};

int srch_space_init(srch_space *space, srch_space_kind kind) {
    if ((int)kind < 0 || kind >= SRCH_SPACE_COUNT)
        return nd_fail(ND_ERR_INVALID, "search space kind %d: expected 0..%d", (int)kind, SRCH_SPACE_COUNT - 1);
    memset(space, 0, sizeof *space);
    space->kind = kind;
    space->name = SPACE_NAMES[kind];
    /* Appendix B: NASNet-B feeds all 4 block outputs to the next cell, which therefore has 4
     * input states; the number of blocks has to match that. */
    space->n_inputs = kind == SRCH_SPACE_B ? 4 : 2;
    space->n_blocks = kind == SRCH_SPACE_B ? 4 : 5;
    space->n_ops = NAS_OP_COUNT;
    for (int i = 0; i < NAS_OP_COUNT; i++) space->ops[i] = (nas_op)i;
    space->n_combiners = kind == SRCH_SPACE_A ? 2 : 4;
    for (int i = 0; i < space->n_combiners; i++) space->combiners[i] = (nas_combiner)i;
    space->output = kind == SRCH_SPACE_B ? NAS_OUT_ALL : NAS_OUT_UNUSED;
    return ND_OK;
}

int srch_space_from_name(const char *name, srch_space *space) {
    static const char *const SHORT[SRCH_SPACE_COUNT] = {"a", "b", "c"};
    for (int k = 0; k < SRCH_SPACE_COUNT; k++)
        if (name && (strcmp(name, SPACE_NAMES[k]) == 0 || strcmp(name, SHORT[k]) == 0))
            return srch_space_init(space, (srch_space_kind)k);
    return nd_fail(ND_ERR_NOT_FOUND, "unknown search space \"%s\" (expected nasnet-a, nasnet-b or nasnet-c)",
                   name ? name : "(null)");
}

int srch_space_n_decisions(const srch_space *space) { return NAS_CELL_COUNT * SLOTS * space->n_blocks; }

int srch_space_width(const srch_space *space, srch_decision_kind kind) {
    switch (kind) {
    case SRCH_DEC_INPUT: return space->n_inputs + space->n_blocks - 1;
    case SRCH_DEC_OP: return space->n_ops;
    case SRCH_DEC_COMBINER: return space->n_combiners;
    default: return 0;
    }
}

int srch_space_step(const srch_space *space, int t, srch_step *step) {
    int n = srch_space_n_decisions(space);
    if (t < 0 || t >= n) return nd_fail(ND_ERR_INVALID, "decision step %d: expected 0..%d", t, n - 1);
    step->cell = (nas_cell_kind)(t / (SLOTS * space->n_blocks));
    step->block = (t / SLOTS) % space->n_blocks;
    step->slot = t % SLOTS;
    step->kind = step->slot < 2 ? SRCH_DEC_INPUT : step->slot < 4 ? SRCH_DEC_OP : SRCH_DEC_COMBINER;
    step->n_valid = step->kind == SRCH_DEC_INPUT ? space->n_inputs + step->block : srch_space_width(space, step->kind);
    step->width = srch_space_width(space, step->kind);
    return ND_OK;
}

int srch_space_mask(const srch_space *space, int t, uint8_t *mask, int width) {
    srch_step st;
    int rc = srch_space_step(space, t, &st);
    if (rc) return rc;
    if (width != st.width)
        return nd_fail(ND_ERR_INVALID, "decision step %d: mask width %d, expected %d", t, width, st.width);
    for (int v = 0; v < width; v++) mask[v] = v < st.n_valid;
    return st.n_valid;
}

int srch_space_valid(const srch_space *space, int t, int v) {
    srch_step st;
    if (t < 0 || t >= srch_space_n_decisions(space)) return 0;
    srch_space_step(space, t, &st);
    return v >= 0 && v < st.n_valid;
}

static int bad_value(const srch_step *st, int t, int v) {
    return nd_fail(ND_ERR_INVALID, "step %d (%s block %d, %s): value %d, expected 0..%d", t,
                   nas_cell_kind_name(st->cell), st->block, SLOT_NAMES[st->slot], v, st->n_valid - 1);
}

int srch_space_decode(const srch_space *space, const int *decisions, int n, nas_genotype *g) {
    int want = srch_space_n_decisions(space);
    if (n != want) return nd_fail(ND_ERR_INVALID, "%d decisions, the %s space has %d", n, space->name, want);
    nas_genotype_init(g, space->n_inputs, space->n_blocks);
    for (int t = 0; t < n; t++) {
        srch_step st;
        srch_space_step(space, t, &st);
        int v = decisions[t];
        if (v < 0 || v >= st.n_valid) return bad_value(&st, t, v);
        nas_block *blk = &g->cell[st.cell].block[st.block];
        switch (st.slot) {
        case 0:
        case 1: blk->input[st.slot] = v; break;
        case 2:
        case 3: blk->op[st.slot - 2] = space->ops[v]; break;
        default: blk->combine = space->combiners[v]; break;
        }
    }
    for (int k = 0; k < NAS_CELL_COUNT; k++) g->cell[k].output = space->output;
    /* Every decoded sequence is a valid genotype by construction; checking keeps that promise
     * honest if a space variant ever breaks it. */
    return nas_genotype_validate(g);
}

static int index_of_op(const srch_space *space, nas_op op) {
    for (int i = 0; i < space->n_ops; i++)
        if (space->ops[i] == op) return i;
    return -1;
}

static int index_of_combiner(const srch_space *space, nas_combiner c) {
    for (int i = 0; i < space->n_combiners; i++)
        if (space->combiners[i] == c) return i;
    return -1;
}

int srch_space_encode(const srch_space *space, const nas_genotype *g, int *decisions, int n) {
    int want = srch_space_n_decisions(space);
    if (n != want) return nd_fail(ND_ERR_INVALID, "%d decisions, the %s space has %d", n, space->name, want);
    int rc = nas_genotype_validate(g);
    if (rc) return rc;
    if (g->n_inputs != space->n_inputs || g->n_blocks != space->n_blocks)
        return nd_fail(ND_ERR_INVALID, "genotype has %d input states and %d blocks, the %s space %d and %d",
                       g->n_inputs, g->n_blocks, space->name, space->n_inputs, space->n_blocks);
    static const char *const RULES[NAS_OUT_COUNT] = {"\"unused\"", "\"all\"", "an explicit list"};
    for (int k = 0; k < NAS_CELL_COUNT; k++)
        if (g->cell[k].output != space->output)
            return nd_fail(ND_ERR_INVALID, "%s.output: %s, but cells of the %s space output %s",
                           nas_cell_kind_name((nas_cell_kind)k), RULES[g->cell[k].output], space->name,
                           RULES[space->output]);
    for (int t = 0; t < n; t++) {
        srch_step st;
        srch_space_step(space, t, &st);
        const nas_block *blk = &g->cell[st.cell].block[st.block];
        int v;
        switch (st.slot) {
        case 0:
        case 1: v = blk->input[st.slot]; break;
        case 2:
        case 3:
            v = index_of_op(space, blk->op[st.slot - 2]);
            if (v < 0)
                return nd_fail(ND_ERR_INVALID, "%s.blocks[%d].ops[%d]: %s is not an op of the %s space",
                               nas_cell_kind_name(st.cell), st.block, st.slot - 2, nas_op_name(blk->op[st.slot - 2]),
                               space->name);
            break;
        default:
            v = index_of_combiner(space, blk->combine);
            if (v < 0)
                return nd_fail(ND_ERR_INVALID, "%s.blocks[%d].combine: %s is not a combiner of the %s space",
                               nas_cell_kind_name(st.cell), st.block, nas_combiner_name(blk->combine), space->name);
            break;
        }
        decisions[t] = v;
    }
    return ND_OK;
}
