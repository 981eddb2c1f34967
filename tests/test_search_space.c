#include <criterion/criterion.h>
#include <string.h>

#include "common/rng.h"
#include "common/status.h"
#include "search/search.h"

Test(search_space, decision_counts_and_widths) {
    srch_space a, b, c;
    cr_assert_eq(srch_space_init(&a, SRCH_SPACE_A), 0);
    cr_assert_eq(srch_space_from_name("nasnet-b", &b), 0);
    cr_assert_eq(srch_space_from_name("c", &c), 0);
    cr_expect_eq(srch_space_n_decisions(&a), 50);
    cr_expect_eq(srch_space_n_decisions(&c), 50);
    cr_expect_eq(srch_space_n_decisions(&b), 40);
    cr_expect_eq(srch_space_width(&a, SRCH_DEC_INPUT), 6); /* h_i, h_{i-1}, b0..b3 */
    cr_expect_eq(srch_space_width(&b, SRCH_DEC_INPUT), 7); /* 4 inputs, b0..b2 */
    cr_expect_eq(srch_space_width(&a, SRCH_DEC_OP), 13);
    cr_expect_eq(srch_space_width(&a, SRCH_DEC_COMBINER), 2);
    cr_expect_eq(srch_space_width(&c, SRCH_DEC_COMBINER), 4);
    cr_expect_eq(a.output, NAS_OUT_UNUSED);
    cr_expect_eq(b.output, NAS_OUT_ALL);
    cr_expect_eq(srch_space_from_name("nasnet-d", &a), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "nasnet-d") != NULL);
}

Test(search_space, steps_and_masks) {
    srch_space s;
    srch_space_init(&s, SRCH_SPACE_A);
    /* Expected valid counts for one cell: block b has inputs 2 + b, ops 13, combiners 2. */
    for (int t = 0; t < 50; t++) {
        srch_step st;
        cr_assert_eq(srch_space_step(&s, t, &st), 0);
        cr_expect_eq(st.cell, t < 25 ? NAS_CELL_NORMAL : NAS_CELL_REDUCTION);
        cr_expect_eq(st.block, (t % 25) / 5);
        cr_expect_eq(st.slot, t % 5);
        int want = st.slot < 2 ? 2 + st.block : st.slot < 4 ? 13 : 2;
        cr_expect_eq(st.n_valid, want, "step %d", t);
        uint8_t mask[16];
        memset(mask, 7, sizeof mask);
        cr_assert_eq(srch_space_mask(&s, t, mask, st.width), want);
        for (int v = 0; v < st.width; v++) {
            cr_expect_eq(mask[v], v < want, "step %d value %d", t, v);
            cr_expect_eq(srch_space_valid(&s, t, v), v < want);
        }
        cr_expect_eq(mask[st.width], 7, "mask written past its width");
    }
    uint8_t mask[16];
    cr_expect_eq(srch_space_mask(&s, 0, mask, 13), ND_ERR_INVALID);
    cr_expect_eq(srch_space_mask(&s, 50, mask, 6), ND_ERR_INVALID);
    cr_expect_eq(srch_space_valid(&s, -1, 0), 0);
    /* Block 4's first input may be any of the 6 states. */
    cr_expect_eq(srch_space_mask(&s, 20, mask, 6), 6);
}

Test(search_space, decode_encode_round_trip) {
    for (int k = 0; k < SRCH_SPACE_COUNT; k++) {
        srch_space s;
        srch_space_init(&s, (srch_space_kind)k);
        int n = srch_space_n_decisions(&s);
        int d[64], back[64];
        /* The largest valid value at every step. */
        for (int t = 0; t < n; t++) {
            srch_step st;
            srch_space_step(&s, t, &st);
            d[t] = st.n_valid - 1;
        }
        nas_genotype g, g2;
        cr_assert_eq(srch_space_decode(&s, d, n, &g), 0, "%s", nd_last_error());
        cr_expect_eq(g.n_inputs, s.n_inputs);
        cr_expect_eq(g.n_blocks, s.n_blocks);
        cr_expect_eq(g.cell[1].block[s.n_blocks - 1].input[0], s.n_inputs + s.n_blocks - 2);
        cr_expect_eq(g.cell[0].block[0].op[1], NAS_OP_SEP_CONV_7X7);
        cr_expect_eq(g.cell[0].block[0].combine, s.combiners[s.n_combiners - 1]);
        cr_assert_eq(srch_space_encode(&s, &g, back, n), 0, "%s", nd_last_error());
        cr_expect_arr_eq(d, back, (size_t)n * sizeof(int));
        cr_assert_eq(srch_space_decode(&s, back, n, &g2), 0);
        cr_expect(nas_genotype_equal(&g, &g2));
    }
}

Test(search_space, decode_rejects_bad_values) {
    srch_space s;
    srch_space_init(&s, SRCH_SPACE_A);
    int d[50] = {0};
    nas_genotype g;
    d[10] = 4; /* normal block 2, input A: states 0..3 exist */
    cr_expect_eq(srch_space_decode(&s, d, 50, &g), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "step 10 (normal block 2, input A): value 4, expected 0..3") != NULL, "%s",
              nd_last_error());
    d[10] = 0;
    d[49] = 2; /* reduction block 4 combiner: add or concat only in the A space */
    cr_expect_eq(srch_space_decode(&s, d, 50, &g), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "reduction block 4, combiner") != NULL, "%s", nd_last_error());
    d[49] = 0;
    cr_expect_eq(srch_space_decode(&s, d, 49, &g), ND_ERR_INVALID);
    cr_expect_eq(srch_space_decode(&s, d, 50, &g), 0, "%s", nd_last_error());
}

Test(search_space, encode_rejects_what_the_space_lacks) {
    srch_space a, b;
    srch_space_init(&a, SRCH_SPACE_A);
    srch_space_init(&b, SRCH_SPACE_B);
    int d[50];
    nas_genotype g;
    cr_assert_eq(nas_genotype_builtin("nasnet-a", &g), 0);
    /* TF-slim's NASNet-A hard-codes its output lists: not a point of the "unused" A space. */
    cr_expect_eq(srch_space_encode(&a, &g, d, 50), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "normal.output") != NULL, "%s", nd_last_error());
    cr_expect_eq(srch_space_encode(&b, &g, d, 40), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "input states") != NULL, "%s", nd_last_error());
    g.cell[0].output = g.cell[1].output = NAS_OUT_UNUSED;
    cr_assert_eq(srch_space_encode(&a, &g, d, 50), 0, "%s", nd_last_error());
    /* NASNet-A's ops and inputs, in the sequence order. */
    cr_expect_eq(d[0], 0);
    cr_expect_eq(d[1], 1);
    cr_expect_eq(d[2], NAS_OP_SEP_CONV_5X5);
    cr_expect_eq(d[3], NAS_OP_SEP_CONV_3X3);
    cr_expect_eq(d[4], 0);
    cr_expect_eq(d[25 + 15], 3); /* reduction b3 input A = b1 */
    g.cell[0].block[1].combine = NAS_COMB_ADD_LAYERNORM;
    cr_expect_eq(srch_space_encode(&a, &g, d, 50), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "normal.blocks[1].combine: add_layernorm") != NULL, "%s", nd_last_error());
    srch_space c;
    srch_space_init(&c, SRCH_SPACE_C);
    cr_expect_eq(srch_space_encode(&c, &g, d, 50), 0, "%s", nd_last_error());
    cr_expect_eq(d[9], 2);
}

Test(search_random, samples_valid_and_deterministic) {
    for (int k = 0; k < SRCH_SPACE_COUNT; k++) {
        srch_space s;
        srch_space_init(&s, (srch_space_kind)k);
        int n = srch_space_n_decisions(&s);
        nd_rng r1, r2;
        nd_rng_seed(&r1, 42);
        nd_rng_seed(&r2, 42);
        int hits[64][16];
        memset(hits, 0, sizeof hits);
        const int draws = 2000;
        for (int i = 0; i < draws; i++) {
            int d1[64], d2[64], back[64];
            nas_genotype g1, g2;
            cr_assert_eq(srch_random_sample(&s, &r1, d1, n, &g1), 0, "%s", nd_last_error());
            cr_assert_eq(srch_random_sample(&s, &r2, d2, n, &g2), 0);
            cr_assert_arr_eq(d1, d2, (size_t)n * sizeof(int));
            cr_assert(nas_genotype_equal(&g1, &g2));
            cr_assert_eq(nas_genotype_validate(&g1), 0);
            cr_assert_eq(srch_space_encode(&s, &g1, back, n), 0, "%s", nd_last_error());
            cr_assert_arr_eq(d1, back, (size_t)n * sizeof(int));
            for (int t = 0; t < n; t++) {
                cr_assert(srch_space_valid(&s, t, d1[t]), "step %d value %d", t, d1[t]);
                hits[t][d1[t]]++;
            }
        }
        /* Uniform: every valid value shows up, none far from draws / n_valid (13 ops: ~154 each). */
        for (int t = 0; t < n; t++) {
            srch_step st;
            srch_space_step(&s, t, &st);
            double expect = (double)draws / st.n_valid;
            for (int v = 0; v < st.n_valid; v++)
                cr_expect(hits[t][v] > 0.6 * expect && hits[t][v] < 1.4 * expect, "space %d step %d value %d: %d of %d",
                          k, t, v, hits[t][v], draws);
        }
    }
    /* Another seed gives another sequence. */
    srch_space s;
    srch_space_init(&s, SRCH_SPACE_A);
    nd_rng r1, r2;
    nd_rng_seed(&r1, 1);
    nd_rng_seed(&r2, 2);
    int d1[50], d2[50];
    srch_random_sample(&s, &r1, d1, 50, NULL);
    srch_random_sample(&s, &r2, d2, 50, NULL);
    cr_expect(memcmp(d1, d2, sizeof d1) != 0);
    cr_expect_eq(srch_random_sample(&s, &r1, d1, 40, NULL), ND_ERR_INVALID);
}
