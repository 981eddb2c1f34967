/* Genotype -> Graphviz DOT: one cluster per cell, input states at the top, then per block
 * two op boxes feeding a combiner, and the output concat at the bottom. */
#include "backbone/nasnet.h"

#include <stdio.h>

#include "backbone/strbuf.h"
#include "common/status.h"

/* Human names of the input states: h_i, h_{i-1}, ... as in the paper's figures. */
static void input_label(char *buf, size_t n, int s) {
    if (s == 0) snprintf(buf, n, "h_i");
    else snprintf(buf, n, "h_{i-%d}", s);
}

static void write_cell(nas_strbuf *sb, const nas_genotype *g, nas_cell_kind kind) {
    const char *cn = nas_cell_kind_name(kind);
    const nas_cell *c = &g->cell[kind];
    int reduction = kind == NAS_CELL_REDUCTION;
    nas_strbuf_printf(sb, "  subgraph cluster_%s {\n    label=\"%s cell\";\n    style=rounded;\n    color=gray60;\n", cn,
                      reduction ? "Reduction" : "Normal");
    char label[32];
    nas_strbuf_printf(sb, "    { rank=same;");
    for (int s = 0; s < g->n_inputs; s++) nas_strbuf_printf(sb, " %s_h%d;", cn, s);
    nas_strbuf_printf(sb, " }\n");
    /* Invisible edges keep the inputs in index order, left to right, in every drawing. */
    for (int s = 0; s + 1 < g->n_inputs; s++)
        nas_strbuf_printf(sb, "    %s_h%d -> %s_h%d [style=invis];\n", cn, s, cn, s + 1);
    for (int s = 0; s < g->n_inputs; s++) {
        input_label(label, sizeof label, s);
        nas_strbuf_printf(sb, "    %s_h%d [label=\"%s\", shape=box, style=filled, fillcolor=lightblue];\n", cn, s, label);
    }
    for (int b = 0; b < g->n_blocks; b++) {
        const nas_block *blk = &c->block[b];
        for (int k = 0; k < 2; k++) {
            /* In a reduction cell the ops reading the cell inputs run with stride 2 (TF-slim). */
            int strided = reduction && blk->input[k] < g->n_inputs;
            nas_strbuf_printf(sb, "    %s_b%d_op%d [label=\"%s%s\", shape=box, style=filled, fillcolor=%s];\n", cn, b,
                              k, nas_op_name(blk->op[k]), strided ? " /2" : "",
                              nas_op_is_pool(blk->op[k])       ? "lightgoldenrod"
                              : nas_op_is_identity(blk->op[k]) ? "gray90"
                                                                : "palegreen");
        }
        nas_strbuf_printf(sb, "    %s_b%d [label=\"b%d: %s\\n(state %d)\", shape=ellipse, style=filled, fillcolor=lightpink];\n",
                          cn, b, b, nas_combiner_name(blk->combine), g->n_inputs + b);
    }
    nas_strbuf_printf(sb, "    %s_out [label=\"concat\", shape=ellipse, style=filled, fillcolor=khaki];\n", cn);
    for (int b = 0; b < g->n_blocks; b++) {
        const nas_block *blk = &c->block[b];
        for (int k = 0; k < 2; k++) {
            int s = blk->input[k];
            if (s < g->n_inputs) nas_strbuf_printf(sb, "    %s_h%d -> %s_b%d_op%d;\n", cn, s, cn, b, k);
            else nas_strbuf_printf(sb, "    %s_b%d -> %s_b%d_op%d;\n", cn, s - g->n_inputs, cn, b, k);
            nas_strbuf_printf(sb, "    %s_b%d_op%d -> %s_b%d;\n", cn, b, k, cn, b);
        }
    }
    int out[NAS_MAX_STATES];
    int n_out = nas_cell_output_states(g, kind, out);
    for (int i = 0; i < n_out; i++) {
        if (out[i] < g->n_inputs) nas_strbuf_printf(sb, "    %s_h%d -> %s_out;\n", cn, out[i], cn);
        else nas_strbuf_printf(sb, "    %s_b%d -> %s_out;\n", cn, out[i] - g->n_inputs, cn);
    }
    nas_strbuf_printf(sb, "  }\n");
}

int nas_genotype_to_dot(const nas_genotype *g, unsigned cells, char **dot) {
    *dot = NULL;
    int rc = nas_genotype_validate(g);
    if (rc) return rc;
    unsigned all = (1u << NAS_CELL_NORMAL) | (1u << NAS_CELL_REDUCTION);
    if (cells == 0 || (cells & ~all))
        return nd_fail(ND_ERR_INVALID, "cell mask 0x%x: expected a non-empty set of normal (1) and reduction (2)", cells);
    nas_strbuf sb = {0};
    nas_strbuf_printf(&sb, "digraph genotype {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n");
    nas_strbuf_printf(&sb, "  label=");
    nas_strbuf_json_string(&sb, g->name[0] ? g->name : "genotype");
    nas_strbuf_printf(&sb, ";\n  labelloc=t;\n");
    for (int k = 0; k < NAS_CELL_COUNT; k++)
        if (cells & (1u << k)) write_cell(&sb, g, (nas_cell_kind)k);
    nas_strbuf_printf(&sb, "}\n");
    return nas_strbuf_finish(&sb, dot);
}
