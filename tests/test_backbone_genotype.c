#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/nasnet.h"
#include "common/fileio.h"
#include "common/status.h"
#include "tests/util/testutil.h"

/* TF-slim nasnet_utils.py, as written there (TF-slim op names), to check the built-in against. */
static const char *const TF_NORMAL_OPS[10] = {"separable_5x5_2", "separable_3x3_2", "separable_5x5_2",
                                              "separable_3x3_2", "avg_pool_3x3",    "none",
                                              "avg_pool_3x3",    "avg_pool_3x3",    "separable_3x3_2",
                                              "none"};
static const int TF_NORMAL_IDX[10] = {0, 1, 1, 1, 0, 1, 1, 1, 0, 0};
static const int TF_NORMAL_USED[7] = {1, 0, 0, 0, 0, 0, 0};
static const char *const TF_REDUCTION_OPS[10] = {"separable_5x5_2", "separable_7x7_2", "max_pool_3x3",
                                                 "separable_7x7_2", "avg_pool_3x3",    "separable_5x5_2",
                                                 "none",            "avg_pool_3x3",    "separable_3x3_2",
                                                 "max_pool_3x3"};
static const int TF_REDUCTION_IDX[10] = {0, 1, 0, 1, 0, 1, 3, 2, 2, 0};
static const int TF_REDUCTION_USED[7] = {1, 1, 1, 0, 0, 0, 0};

static const char *tf_name_to_ours(const char *tf) {
    static const char *const map[][2] = {{"separable_3x3_2", "sep_conv_3x3"}, {"separable_5x5_2", "sep_conv_5x5"},
                                         {"separable_7x7_2", "sep_conv_7x7"}, {"avg_pool_3x3", "avg_pool_3x3"},
                                         {"max_pool_3x3", "max_pool_3x3"},     {"none", "identity"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(tf, map[i][0]) == 0) return map[i][1];
    return "?";
}

static void check_against_tf(const nas_genotype *g, nas_cell_kind kind, const char *const *ops, const int *idx,
                             const int *used) {
    const nas_cell *c = &g->cell[kind];
    for (int i = 0; i < 10; i++) {
        const nas_block *b = &c->block[i / 2];
        cr_expect_eq(b->input[i % 2], idx[i], "%s block %d input %d", nas_cell_kind_name(kind), i / 2, i % 2);
        cr_expect_str_eq(nas_op_name(b->op[i % 2]), tf_name_to_ours(ops[i]), "%s block %d op %d",
                         nas_cell_kind_name(kind), i / 2, i % 2);
        cr_expect_eq(b->combine, NAS_COMB_ADD);
    }
    int out[NAS_MAX_STATES];
    int n = nas_cell_output_states(g, kind, out), j = 0;
    for (int s = 0; s < 7; s++)
        if (!used[s]) {
            cr_assert_lt(j, n);
            cr_expect_eq(out[j], s, "%s output %d", nas_cell_kind_name(kind), j);
            j++;
        }
    cr_expect_eq(n, j);
}

Test(genotype, nasnet_a_matches_tf_slim) {
    nas_genotype g;
    cr_assert_eq(nas_genotype_builtin("nasnet-a", &g), 0);
    cr_assert_eq(nas_genotype_validate(&g), 0, "%s", nd_last_error());
    cr_expect_eq(g.n_inputs, 2);
    cr_expect_eq(g.n_blocks, 5);
    check_against_tf(&g, NAS_CELL_NORMAL, TF_NORMAL_OPS, TF_NORMAL_IDX, TF_NORMAL_USED);
    check_against_tf(&g, NAS_CELL_REDUCTION, TF_REDUCTION_OPS, TF_REDUCTION_IDX, TF_REDUCTION_USED);
    /* MISSION.md: normal output concat[h_{i-1}, b0..b4] (6F), reduction concat[b1..b4] (4F). */
    int out[NAS_MAX_STATES];
    cr_expect_eq(nas_cell_output_states(&g, NAS_CELL_NORMAL, out), 6);
    cr_expect_eq(out[0], 1);
    cr_expect_eq(nas_cell_output_states(&g, NAS_CELL_REDUCTION, out), 4);
    cr_expect_eq(out[0], 3);
    cr_expect_eq(out[3], 6);
    /* The reduction cell's b3 and b4 read earlier blocks (b1 = state 3, b0 = state 2). */
    cr_expect_eq(g.cell[NAS_CELL_REDUCTION].block[3].input[0], 3);
    cr_expect_eq(g.cell[NAS_CELL_REDUCTION].block[3].input[1], 2);
    cr_expect_eq(g.cell[NAS_CELL_REDUCTION].block[4].input[0], 2);
    cr_expect_eq(nas_genotype_builtin("nasnet-b", &g), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "nasnet-b") != NULL);
}

static void expect_round_trip(const nas_genotype *g) {
    for (int pretty = 0; pretty < 2; pretty++) {
        char *t1, *t2;
        cr_assert_eq(nas_genotype_to_json(g, pretty, &t1), 0, "%s", nd_last_error());
        nas_genotype back;
        cr_assert_eq(nas_genotype_parse(t1, &back), 0, "%s\n%s", nd_last_error(), t1);
        cr_expect(nas_genotype_equal(g, &back));
        cr_assert_eq(nas_genotype_to_json(&back, pretty, &t2), 0);
        cr_expect_str_eq(t1, t2);
        cr_expect_eq(strchr(t1, '\n') == NULL, !pretty, "compact form is one line");
        free(t1);
        free(t2);
    }
}

static void make_custom(nas_genotype *g, int n_inputs, int n_blocks, nas_output_rule rule) {
    nas_genotype_init(g, n_inputs, n_blocks);
    snprintf(g->name, sizeof g->name, "custom \"q\"\t\\");
    for (int k = 0; k < NAS_CELL_COUNT; k++) {
        for (int b = 0; b < n_blocks; b++) {
            nas_block *blk = &g->cell[k].block[b];
            blk->input[0] = (b + k) % (n_inputs + b);
            blk->input[1] = n_inputs + b - 1;
            blk->op[0] = (nas_op)((b * 3 + k) % NAS_OP_COUNT);
            blk->op[1] = (nas_op)((b * 5 + 7 + k) % NAS_OP_COUNT);
            blk->combine = (nas_combiner)((b + k) % NAS_COMB_COUNT);
        }
        g->cell[k].output = rule;
    }
}

Test(genotype, round_trip_exact) {
    nas_genotype g;
    cr_assert_eq(nas_genotype_builtin("nasnet-a", &g), 0);
    expect_round_trip(&g);
    make_custom(&g, 2, 5, NAS_OUT_UNUSED);
    expect_round_trip(&g);
    make_custom(&g, 4, 4, NAS_OUT_ALL);
    expect_round_trip(&g);
    make_custom(&g, 3, 8, NAS_OUT_UNUSED);
    g.name[0] = '\0';
    expect_round_trip(&g);
}

Test(genotype, demo_file_is_the_builtin) {
    nas_genotype g, f;
    cr_assert_eq(nas_genotype_builtin("nasnet-a", &g), 0);
    char *text;
    cr_assert_eq(nas_genotype_to_json(&g, 1, &text), 0);
    size_t len;
    char *file = tu_read_file("demos/genotypes/nasnet-a.json", &len);
    cr_assert_not_null(file, "demos/genotypes/nasnet-a.json missing (tests run from the repository root)");
    cr_expect_str_eq(file, text, "demos/genotypes/nasnet-a.json differs from the built-in nasnet-a");
    cr_assert_eq(nas_genotype_load("demos/genotypes/nasnet-a.json", &f), 0, "%s", nd_last_error());
    cr_expect(nas_genotype_equal(&g, &f));
    cr_assert_eq(nas_genotype_from_spec("nasnet-a", &f), 0);
    cr_expect(nas_genotype_equal(&g, &f));
    /* nas_genotype_save writes the same bytes. */
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "g.json");
    cr_assert_eq(nas_genotype_save(&g, path), 0, "%s", nd_last_error());
    char *saved = tu_read_file(path, NULL);
    cr_expect_str_eq(saved, file);
    free(saved);
    free(path);
    tu_rmtree(dir);
    free(dir);
    free(file);
    free(text);
}

/* Replace the first occurrence of `from` in the built-in's text by `to` and parse. */
static int parse_edited(const char *from, const char *to) {
    nas_genotype g;
    cr_assert_eq(nas_genotype_builtin("nasnet-a", &g), 0);
    char *text;
    cr_assert_eq(nas_genotype_to_json(&g, 1, &text), 0);
    char *at = strstr(text, from);
    cr_assert_not_null(at, "fixture text lacks %s", from);
    size_t n = strlen(text) + strlen(to) + 1;
    char *edited = malloc(n);
    snprintf(edited, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    int rc = nas_genotype_parse(edited, &g);
    free(edited);
    free(text);
    return rc;
}

static void expect_error(int rc, int status, const char *a, const char *b) {
    cr_expect_eq(rc, status, "status %d, expected %d: %s", rc, status, nd_last_error());
    cr_expect(strstr(nd_last_error(), a) != NULL, "message \"%s\" lacks \"%s\"", nd_last_error(), a);
    if (b) cr_expect(strstr(nd_last_error(), b) != NULL, "message \"%s\" lacks \"%s\"", nd_last_error(), b);
}

Test(genotype, validation_names_the_place) {
    /* Normal block 2 reads state 5, which does not exist before block 2. */
    expect_error(parse_edited("{\"inputs\": [0, 1], \"ops\": [\"avg_pool_3x3\"", "{\"inputs\": [0, 5], \"ops\": [\"avg_pool_3x3\""),
                 ND_ERR_INVALID, "normal.blocks[2].inputs[1]", "states 0..3");
    expect_error(parse_edited("\"sep_conv_7x7\"", "\"sep_conv_9x9\""), ND_ERR_INVALID, "reduction.blocks[0].ops[1]",
                 "unknown op \"sep_conv_9x9\"");
    expect_error(parse_edited("\"add\"", "\"mul\""), ND_ERR_INVALID, "normal.blocks[0].combine", "unknown combiner");
    expect_error(parse_edited("[3, 4, 5, 6]", "[]"), ND_ERR_INVALID, "reduction.output", "no output");
    expect_error(parse_edited("[3, 4, 5, 6]", "[3, 5, 4, 6]"), ND_ERR_INVALID, "reduction.output[2]", "increasing");
    expect_error(parse_edited("[3, 4, 5, 6]", "[3, 4, 5, 9]"), ND_ERR_INVALID, "reduction.output[3]", "does not exist");
    /* Dropping b4 (state 6) from the output leaves it dangling. */
    expect_error(parse_edited("[3, 4, 5, 6]", "[3, 4, 5]"), ND_ERR_INVALID, "reduction.output", "block 4");
    expect_error(parse_edited("\"blocks\": 5", "\"blocks\": 4"), ND_ERR_INVALID, "normal.blocks", "5 blocks, expected 4");
    expect_error(parse_edited("\"blocks\": 5", "\"blocks\": 9"), ND_ERR_INVALID, "blocks", "1..8");
    expect_error(parse_edited("\"input_states\": 2", "\"input_states\": 2.5"), ND_ERR_FORMAT, "input_states", "integer");
    expect_error(parse_edited("\"combine\": \"add\"", "\"combiner\": \"add\""), ND_ERR_FORMAT, "normal.blocks[0]",
                 "unknown key");
    expect_error(parse_edited("\"output\": [1, 2, 3, 4, 5, 6]", "\"output\": \"some\""), ND_ERR_INVALID, "normal.output",
                 "unknown output rule");
    expect_error(parse_edited("{\"inputs\": [0, 1]", "{\"inputs\": [0]"), ND_ERR_FORMAT, "normal.blocks[0].inputs",
                 "2 state indices");
    expect_error(parse_edited("\"inputs\": [0, 1]", "\"inputs\": [0, 1e300]"), ND_ERR_FORMAT, "normal.blocks[0].inputs[1]",
                 "integer");
    expect_error(parse_edited("\"normal\"", "\"normal2\": {}, \"x\""), ND_ERR_FORMAT, "normal2", "unknown key");
    expect_error(nas_genotype_parse("{\"input_states\": 2,", &(nas_genotype){0}), ND_ERR_FORMAT,
                 "not valid JSON", NULL);
    expect_error(nas_genotype_parse("[1, 2]", &(nas_genotype){0}), ND_ERR_FORMAT, "expected a JSON object", NULL);
    expect_error(nas_genotype_load("/nonexistent/g.json", &(nas_genotype){0}), ND_ERR_IO, "/nonexistent/g.json", NULL);
}

Test(genotype, load_error_names_the_file) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "bad.json");
    cr_assert_eq(tu_write_file(path, "{\"input_states\": 2, \"blocks\": 1, \"normal\": {\"blocks\": "
                                     "[{\"inputs\": [0, 2], \"ops\": [\"identity\", \"identity\"], \"combine\": \"add\"}],"
                                     " \"output\": \"unused\"}, \"reduction\": {\"blocks\": [{\"inputs\": [0, 1], "
                                     "\"ops\": [\"identity\", \"conv_1x1\"], \"combine\": \"concat\"}], \"output\": \"all\"}}"),
                 0);
    nas_genotype g;
    expect_error(nas_genotype_load(path, &g), ND_ERR_INVALID, path, "normal.blocks[0].inputs[1]: state 2");
    free(path);
    tu_rmtree(dir);
    free(dir);
}

Test(genotype, struct_validation) {
    nas_genotype g;
    make_custom(&g, 2, 5, NAS_OUT_UNUSED);
    cr_assert_eq(nas_genotype_validate(&g), 0, "%s", nd_last_error());
    g.cell[1].block[3].op[1] = NAS_OP_COUNT;
    expect_error(nas_genotype_validate(&g), ND_ERR_INVALID, "reduction.blocks[3].ops[1]", NULL);
    make_custom(&g, 2, 5, NAS_OUT_UNUSED);
    g.cell[0].block[0].input[0] = -1;
    expect_error(nas_genotype_validate(&g), ND_ERR_INVALID, "normal.blocks[0].inputs[0]", NULL);
    make_custom(&g, 2, 5, NAS_OUT_UNUSED);
    g.n_blocks = 0;
    expect_error(nas_genotype_validate(&g), ND_ERR_INVALID, "blocks: 0", NULL);
    make_custom(&g, 2, 5, NAS_OUT_UNUSED);
    g.n_inputs = 5;
    expect_error(nas_genotype_validate(&g), ND_ERR_INVALID, "input_states: 5", NULL);
    char *text;
    cr_expect_eq(nas_genotype_to_json(&g, 1, &text), ND_ERR_INVALID);
    cr_expect_null(text);
}

Test(genotype, unused_and_all_rules) {
    /* b0 = f(h0, h1); b1 = f(b0, h1); b2 = f(b0, b1): h0 read by b0, b2 is the only unread state
     * besides none of the inputs; with "unused" the output is [b2] = state 4; "all" gives 2..4. */
    nas_genotype g;
    nas_genotype_init(&g, 2, 3);
    int ins[3][2] = {{0, 1}, {2, 1}, {2, 3}};
    for (int k = 0; k < 2; k++)
        for (int b = 0; b < 3; b++) {
            g.cell[k].block[b].input[0] = ins[b][0];
            g.cell[k].block[b].input[1] = ins[b][1];
        }
    g.cell[1].output = NAS_OUT_ALL;
    cr_assert_eq(nas_genotype_validate(&g), 0, "%s", nd_last_error());
    uint8_t used[NAS_MAX_STATES];
    nas_cell_used_states(&g, NAS_CELL_NORMAL, used);
    cr_expect(used[0] && used[1] && used[2] && used[3] && !used[4]);
    int out[NAS_MAX_STATES];
    cr_expect_eq(nas_cell_output_states(&g, NAS_CELL_NORMAL, out), 1);
    cr_expect_eq(out[0], 4);
    cr_expect_eq(nas_cell_output_states(&g, NAS_CELL_REDUCTION, out), 3);
    cr_expect_eq(out[0], 2);
    cr_expect_eq(out[2], 4);
    /* An input nobody reads is part of the "unused" output. */
    g.cell[0].block[0].input[0] = 1;
    cr_expect_eq(nas_cell_output_states(&g, NAS_CELL_NORMAL, out), 2);
    cr_expect_eq(out[0], 0);
    cr_expect_eq(out[1], 4);
}

Test(genotype, op_properties) {
    cr_expect_eq(NAS_OP_COUNT, 13);
    for (int i = 0; i < NAS_OP_COUNT; i++) {
        nas_op op;
        cr_assert_eq(nas_op_from_name(nas_op_name((nas_op)i), &op), 0);
        cr_expect_eq((int)op, i);
    }
    nas_op op;
    expect_error(nas_op_from_name("sep_conv_4x4", &op), ND_ERR_NOT_FOUND, "sep_conv_4x4", "sep_conv_3x3");
    cr_expect(nas_op_is_identity(NAS_OP_IDENTITY));
    cr_expect(!nas_op_has_weights(NAS_OP_IDENTITY));
    int pools = 0, seps = 0, facts = 0;
    for (int i = 0; i < NAS_OP_COUNT; i++) {
        pools += nas_op_is_pool((nas_op)i);
        seps += nas_op_is_separable((nas_op)i);
        facts += nas_op_is_factorized((nas_op)i);
    }
    cr_expect_eq(pools, 4);
    cr_expect_eq(seps, 3);
    cr_expect_eq(facts, 2);
    cr_expect_eq(nas_op_kernel(NAS_OP_SEP_CONV_7X7), 7);
    cr_expect_eq(nas_op_kernel(NAS_OP_CONV_1X7_7X1), 7);
    cr_expect_eq(nas_op_kernel(NAS_OP_MAX_POOL_5X5), 5);
    cr_expect_eq(nas_op_kernel(NAS_OP_CONV_1X1), 1);
    cr_expect_eq(nas_op_dilation(NAS_OP_DIL_CONV_3X3), 2);
    cr_expect_eq(nas_op_dilation(NAS_OP_CONV_3X3), 1);
    cr_expect_eq(nas_op_get(NAS_OP_AVG_POOL_3X3)->kind, NAS_OPK_AVG_POOL);
    cr_expect_null(nas_op_get(NAS_OP_COUNT));
    cr_expect_str_eq(nas_op_name((nas_op)-1), "?");
    nas_combiner c;
    cr_assert_eq(nas_combiner_from_name("add_instancenorm", &c), 0);
    cr_expect_eq(c, NAS_COMB_ADD_INSTANCENORM);
    cr_expect_str_eq(nas_combiner_name(NAS_COMB_ADD_LAYERNORM), "add_layernorm");
}

Test(genotype, dot_has_nodes_and_edges) {
    nas_genotype g;
    cr_assert_eq(nas_genotype_builtin("nasnet-a", &g), 0);
    char *dot;
    cr_assert_eq(nas_genotype_to_dot(&g, 1u << NAS_CELL_REDUCTION, &dot), 0);
    cr_expect(strncmp(dot, "digraph", 7) == 0);
    cr_expect_null(strstr(dot, "normal_"), "only the reduction cell was asked for");
    /* b3 = identity(b1) + avg3x3(b0): edges from the block nodes, stride 1, no "/2". */
    cr_expect_not_null(strstr(dot, "reduction_b1 -> reduction_b3_op0;"));
    cr_expect_not_null(strstr(dot, "reduction_b0 -> reduction_b3_op1;"));
    cr_expect_not_null(strstr(dot, "reduction_b3_op0 [label=\"identity\""));
    cr_expect_not_null(strstr(dot, "reduction_b0_op1 [label=\"sep_conv_7x7 /2\""));
    cr_expect_not_null(strstr(dot, "reduction_h0 -> reduction_b4_op1;"));
    /* Output: b1..b4 in, b0 and the inputs not. */
    cr_expect_not_null(strstr(dot, "reduction_b1 -> reduction_out;"));
    cr_expect_not_null(strstr(dot, "reduction_b4 -> reduction_out;"));
    cr_expect_null(strstr(dot, "reduction_b0 -> reduction_out;"));
    cr_expect_null(strstr(dot, "reduction_h1 -> reduction_out;"));
    free(dot);
    cr_assert_eq(nas_genotype_to_dot(&g, 3, &dot), 0);
    cr_expect_not_null(strstr(dot, "normal_h1 -> normal_out;"));
    cr_expect_not_null(strstr(dot, "subgraph cluster_normal"));
    cr_expect_not_null(strstr(dot, "subgraph cluster_reduction"));
    /* 2 x (10 op inputs + 10 op->combiner) + 6 + 4 output edges. */
    int edges = 0;
    int invisible = 0;
    for (const char *p = dot; (p = strstr(p, " -> ")); p++) {
        const char *eol = strchr(p, '\n');
        const char *inv = strstr(p, "style=invis");
        if (inv && inv < eol) invisible++;
        else edges++;
    }
    cr_expect_eq(invisible, 2, "one invisible edge per cell keeps h_i left of h_{i-1}");
    cr_expect_eq(edges, 40 + 10);
    free(dot);
    cr_expect_eq(nas_genotype_to_dot(&g, 0, &dot), ND_ERR_INVALID);
}
