/* Network builders: TF-slim's exact sizes, parameter names, cells, config validation and JSON,
 * partial forwards for the detector, the drop-path schedule, seeded initialisation. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/nasnet_net.h"
#include "tests/bb_formula.h"

static nas_net_config preset(const char *name) {
    nas_net_config c;
    cr_assert_eq(nas_net_preset(name, &c), 0, "%s", nd_last_error());
    return c;
}

static void expect_cost(nas_net_config c, int64_t params, int64_t macs, int64_t params_aux) {
    nas_cost k;
    cr_assert_eq(nas_net_cost(&c, 0, &k), 0, "%s", nd_last_error());
    cr_expect_eq(k.params, params, "params %lld, TF-slim %lld", (long long)k.params, (long long)params);
    if (macs) cr_expect_eq(k.macs, macs, "macs %lld, TF-slim %lld", (long long)k.macs, (long long)macs);
    if (params_aux)
        cr_expect_eq(k.params + k.aux_params, params_aux, "params with aux %lld, TF-slim %lld",
                     (long long)(k.params + k.aux_params), (long long)params_aux);
    /* The per-layer list adds up to the totals. */
    int64_t p = 0, m = 0;
    for (int64_t i = 0; i < k.n_layers; i++)
        if (!k.layers[i].aux) p += k.layers[i].params, m += k.layers[i].macs;
    cr_expect_eq(p, k.params);
    cr_expect_eq(m, k.macs);
    nas_cost_free(&k);
}

Test(backbone_net, sizes_equal_tf_slim) {
    expect_cost(preset("nasnet-a-mobile"), 5289978, 563638816, 7701218);
    expect_cost(preset("nasnet-a-large"), 88753150, 23783414658LL, 93320934);
    expect_cost(preset("nasnet-a-cifar"), 3346538, 544333312, 4978036);
    nas_net_config c = preset("nasnet-a-cifar");
    c.num_cells = 2;
    expect_cost(c, 1294698, 232185344, 0);
}

Test(backbone_net, with_aux_flag_adds_the_aux_head) {
    nas_net_config c = preset("nasnet-a-mobile");
    nas_cost a, b;
    cr_assert_eq(nas_net_cost(&c, 0, &a), 0);
    cr_assert_eq(nas_net_cost(&c, 1, &b), 0);
    cr_expect_eq(b.params, 7701218);
    cr_expect_eq(b.macs, a.macs + a.aux_macs);
    cr_expect_gt(a.aux_macs, 0);
    nas_cost_free(&a);
    nas_cost_free(&b);
}

Test(backbone_net, presets_carry_tf_slim_hyper_parameters) {
    nas_net_config m = preset("nasnet-a-mobile"), l = preset("nasnet-a-large"), c = preset("nasnet-a-cifar");
    cr_expect_float_eq(m.bn_eps, 1e-3f, 1e-9);
    cr_expect_float_eq(c.bn_eps, 1e-5f, 1e-12);
    cr_expect_float_eq(m.bn_momentum, 0.0003f, 1e-9);
    cr_expect_float_eq(c.bn_momentum, 0.1f, 1e-9);
    cr_expect_eq(m.drop_path_keep_prob, 1.0);
    cr_expect_eq(l.drop_path_keep_prob, 0.7);
    cr_expect_eq(c.drop_path_keep_prob, 0.6);
    cr_expect_eq(l.skip_reduction_layer_input, 1);
    cr_expect_eq(m.skip_reduction_layer_input, 0);
    cr_expect_eq(c.total_training_steps, 937500);
    cr_expect_eq(l.dense_dropout_keep_prob, 0.5);
    nas_net_config cl = preset("nasnet-a-cifar-large");
    char buf[32];
    cr_expect_str_eq(nas_net_config_label(&cl, buf, sizeof buf), "7 @ 2304");
    cr_expect_str_eq(nas_net_config_label(&l, buf, sizeof buf), "6 @ 4032");
    cr_expect_str_eq(nas_net_config_label(&m, buf, sizeof buf), "4 @ 1056");
    cr_expect_neq(nas_net_preset("nasnet-b", &c), 0);
    cr_expect(strstr(nd_last_error(), "nasnet-a-mobile") != NULL);
}

Test(backbone_net, cells_of_large_and_their_strides) {
    nas_net_config c = preset("nasnet-a-large");
    nas_cell_info cells[40];
    int n = nas_net_config_cells(&c, cells, 40);
    cr_assert_eq(n, 22);
    cr_expect_str_eq(cells[0].name, "cell_stem_0");
    cr_expect_eq(cells[0].stride, 4);
    cr_expect_eq(cells[0].channels, 168);
    cr_expect_eq(cells[1].channels, 336);
    cr_expect_str_eq(cells[8].name, "reduction_cell_0");
    cr_expect_str_eq(cells[13].name, "cell_10");
    cr_expect_str_eq(cells[14].name, "cell_11");
    cr_expect_eq(cells[14].stride, 16);
    cr_expect_eq(cells[14].height, 21);
    cr_expect_str_eq(cells[15].name, "reduction_cell_1");
    cr_expect_eq(cells[15].stride, 32);
    cr_expect_eq(cells[21].channels, 4032);
    cr_expect_eq(cells[21].height, 11);
    cr_expect_eq(cells[9].cell_num, 9);
}

Test(backbone_net, names_shapes_prefix_and_seeded_init) {
    nas_net_config c = preset("nasnet-a-cifar");
    c.num_cells = 1;
    c.num_conv_filters = 8;
    nn_params *ps = nn_params_new();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, ps, "backbone", 7, &net), 0, "%s", nd_last_error());
    nn_tensor *t = nn_params_get(ps, "backbone/cell_0/comb_iter_0/left/separable_5x5_1/depthwise_weights");
    cr_assert_not_null(t);
    cr_expect_eq(t->shape[0], 8);
    cr_expect_eq(t->shape[1], 1);
    cr_expect_eq(t->shape[2], 5);
    /* cell_0 reads the raw stem (24 channels) as h_{i-1}: its output concat resizes it. */
    cr_expect_not_null(nn_params_get(ps, "backbone/cell_0/reduction_1/path_conv/weights"));
    /* reduction_cell_0 matches cell_0's input (stem, 24 ch) by 1x1; cell_1 reduces cell_0. */
    cr_expect_not_null(nn_params_get(ps, "backbone/reduction_cell_0/prev_1x1/weights"));
    cr_expect_not_null(nn_params_get(ps, "backbone/cell_1/path1_conv/weights"));
    cr_expect_not_null(nn_params_get(ps, "backbone/cell_1/final_path_bn/gamma"));
    cr_expect_not_null(nn_params_get(ps, "backbone/l1_stem_bn/moving_variance"));
    nn_tensor *aux = nn_params_get(ps, "backbone/aux_logits/Conv/weights");
    cr_assert_not_null(aux);
    cr_expect_eq(aux->shape[2], 4); /* after stack 2: 16x16 map -> 5x5/3 VALID pool -> 4x4 */
    cr_expect_eq(nas_net_num_params(net, 1), nn_params_numel(ps));
    /* Same seed, same weights; another seed, others. */
    nas_net *n2, *n3;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 7, &n2), 0);
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 8, &n3), 0);
    nn_tensor *a = nn_params_get(nas_net_params(n2), "l1_stem_3x3/weights");
    nn_tensor *b = nn_params_get(nas_net_params(n3), "l1_stem_3x3/weights");
    nn_tensor *o = nn_params_get(ps, "backbone/l1_stem_3x3/weights");
    cr_assert(a && b && o);
    cr_expect_eq(memcmp(a->data, o->data, (size_t)a->numel * 4), 0);
    cr_expect_neq(memcmp(a->data, b->data, (size_t)a->numel * 4), 0);
    /* FAN_OUT truncated normal (TF-slim): variance about 2 / fan_out, fan_out = 24 * 3 * 3. */
    double var = 0;
    for (int64_t i = 0; i < a->numel; i++) var += (double)a->data[i] * a->data[i];
    var /= (double)a->numel;
    cr_expect(var > 0.5 * 2.0 / 216 && var < 2.0 * 2.0 / 216, "stem weight variance %g", var);
    /* The classifier starts at zero: the uniform prediction (see net_build.c's fc()). */
    nn_tensor *fc = nn_params_get(nas_net_params(n2), "final_layer/FC/weights");
    cr_assert_not_null(fc);
    for (int64_t i = 0; i < fc->numel; i++) cr_assert_eq(fc->data[i], 0.0f);
    /* PyTorch's default: uniform in +-1/sqrt(fan_in), fan_in = 3 * 3 * 3 for the stem. */
    nas_net_config ct = c;
    ct.conv_init = NAS_INIT_TORCH;
    nas_net *n4;
    cr_assert_eq(nas_net_new(&ct, NULL, NULL, 7, &n4), 0);
    nn_tensor *s4 = nn_params_get(nas_net_params(n4), "l1_stem_3x3/weights");
    double var4 = 0, bound = 1.0 / sqrt(27.0);
    for (int64_t i = 0; i < s4->numel; i++) {
        cr_assert(fabsf(s4->data[i]) <= bound + 1e-6, "torch init %g outside +-%g", s4->data[i], bound);
        var4 += (double)s4->data[i] * s4->data[i];
    }
    var4 /= (double)s4->numel;
    cr_expect(var4 > 0.6 / 81 && var4 < 1.5 / 81, "torch stem weight variance %g, expected 1/81", var4);
    nas_net_free(n4);
    nas_net_free(n2);
    nas_net_free(n3);
    nas_net_free(net);
    nn_params_free(ps);
}

Test(backbone_net, config_validation_and_json_round_trip) {
    nas_net_config c = preset("nasnet-a-cifar");
    c.num_conv_filters = 0;
    cr_expect_eq(nas_net_config_validate(&c), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "num_conv_filters") != NULL, "%s", nd_last_error());
    c = preset("nasnet-a-cifar");
    c.image_size = 8; /* the aux head's 5x5 window does not fit the 2x2 map */
    cr_expect_eq(nas_net_config_validate(&c), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "aux") != NULL, "%s", nd_last_error());
    c.use_aux_head = 0;
    cr_expect_eq(nas_net_config_validate(&c), 0, "%s", nd_last_error());

    nas_net_config l = preset("nasnet-a-large"), back;
    char *j1, *j2;
    cr_assert_eq(nas_net_config_to_json(&l, &j1), 0);
    cr_assert_eq(nas_net_config_from_json(j1, &back), 0, "%s", nd_last_error());
    cr_assert_eq(nas_net_config_to_json(&back, &j2), 0);
    cr_expect_str_eq(j1, j2);
    cr_expect(nas_genotype_equal(&l.genotype, &back.genotype));
    free(j2);
    /* An unknown key is an error, not ignored. */
    char *bad = malloc(strlen(j1) + 32);
    strcpy(bad, j1);
    strcpy(bad + strlen(bad) - 1, ", \"num_cels\": 3}");
    cr_expect_eq(nas_net_config_from_json(bad, &back), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "num_cels") != NULL, "%s", nd_last_error());
    cr_expect_neq(nas_net_config_from_json("[1,2]", &back), 0);
    /* conv_init round-trips, and a config written before it existed reads as tf-slim. */
    l.conv_init = NAS_INIT_TORCH;
    char *j3;
    cr_assert_eq(nas_net_config_to_json(&l, &j3), 0);
    cr_assert_eq(nas_net_config_from_json(j3, &back), 0, "%s", nd_last_error());
    cr_expect_eq(back.conv_init, NAS_INIT_TORCH);
    char *key = strstr(j3, ",\"conv_init\":\"torch\"");
    cr_assert_not_null(key, "%s", j3);
    memmove(key, key + strlen(",\"conv_init\":\"torch\""), strlen(key + strlen(",\"conv_init\":\"torch\"")) + 1);
    cr_assert_eq(nas_net_config_from_json(j3, &back), 0, "%s", nd_last_error());
    cr_expect_eq(back.conv_init, NAS_INIT_TF_SLIM);
    free(j3);
    free(bad);
    free(j1);

    nas_net_choice ch = {NULL, "nasnet-a", "imagenet", 2, 16, 96, 7, 0};
    cr_assert_eq(nas_net_config_choose(&ch, &c), 0, "%s", nd_last_error());
    cr_expect_eq(c.stem, NAS_STEM_IMAGENET);
    cr_expect_eq(c.num_classes, 7);
    cr_expect_eq(c.use_aux_head, 0);
    ch.stem = "tiny";
    cr_expect_eq(nas_net_config_choose(&ch, &c), ND_ERR_INVALID);
}

Test(backbone_net, drop_path_schedule_is_tf_slim_v3) {
    nas_net_config c = preset("nasnet-a-cifar");
    c.num_cells = 2; /* 6 normal + 2 reduction = 8 cells: total_num_cells 8 */
    c.num_conv_filters = 4;
    c.total_training_steps = 1000;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0, "%s", nd_last_error());
    cr_expect_float_eq(nas_net_drop_path_keep(net, 0, 0), 1.0, 1e-12);
    /* keep = 1 - (cell_num+1)/total * min(1, step/T) * (1 - 0.6) */
    cr_expect_float_eq(nas_net_drop_path_keep(net, 0, 500), 1.0 - 1.0 / 8 * 0.5 * 0.4, 1e-6);
    cr_expect_float_eq(nas_net_drop_path_keep(net, 7, 1000), 0.6, 1e-6);
    cr_expect_float_eq(nas_net_drop_path_keep(net, 7, 5000), 0.6, 1e-6);
    cr_expect_float_eq(nas_net_drop_path_keep(net, 3, 250), 1.0 - 4.0 / 8 * 0.25 * 0.4, 1e-6);
    nas_net_free(net);
    nas_net_config m = preset("nasnet-a-mobile");
    m.image_size = 64;
    m.use_aux_head = 0;
    cr_assert_eq(nas_net_new(&m, NULL, NULL, 1, &net), 0, "%s", nd_last_error());
    cr_expect_float_eq(nas_net_drop_path_keep(net, 10, 250000), 1.0, 1e-12); /* Mobile: off */
    nas_net_free(net);
    nas_net_config l = preset("nasnet-a-large");
    l.num_cells = 1;
    l.num_conv_filters = 8;
    l.image_size = 64;
    l.use_aux_head = 0;
    cr_assert_eq(nas_net_new(&l, NULL, NULL, 1, &net), 0, "%s", nd_last_error());
    /* Large: stem cells count (total 1*3 + 2 + 2 = 7); cell_stem_0 is cell_num 0. */
    cr_expect_float_eq(nas_net_drop_path_keep(net, 0, 250000), 1.0 - 1.0 / 7 * 0.3, 1e-6);
    cr_expect_float_eq(nas_net_drop_path_keep(net, 6, 250000), 0.7, 1e-6);
    cr_expect_float_eq(nas_net_drop_path_keep(net, 7, 0), -1.0, 0);
    nas_net_free(net);
}

/* Forward, forward_to + forward_from + head give the same logits. */
static void check_split(nas_net_config c, int split_at, int batch) {
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 3, &net), 0, "%s", nd_last_error());
    bb_formula_fill(nas_net_params(net), 0);
    int S = c.image_size;
    float *img = malloc((size_t)batch * 3 * S * S * sizeof(float));
    bb_formula_image(img, batch, 3, S, S);
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    nn_ctx_set_training(ctx, 0);
    nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(batch, 3, S, S), img);
    nas_net_output out;
    cr_assert_eq(nas_net_forward(net, ctx, x, 0, &out), 0, "%s", nd_last_error());
    nn_tensor *cur, *prev, *fin;
    cr_assert_eq(nas_net_forward_to(net, ctx, x, split_at, 0, &cur, &prev), 0, "%s", nd_last_error());
    nas_cell_info ci;
    cr_assert_eq(nas_net_cell_info(net, split_at, &ci), 0);
    cr_expect_eq(cur->shape[1], ci.channels);
    cr_expect_eq(cur->shape[2], ci.height);
    cr_assert_eq(nas_net_forward_from(net, ctx, split_at + 1, cur, prev, 0, &fin), 0, "%s", nd_last_error());
    nn_tensor *logits = nas_net_head(net, ctx, fin);
    for (int64_t i = 0; i < logits->numel; i++) cr_expect_eq(logits->data[i], out.logits->data[i]);
    nn_ctx_free(ctx);
    free(img);
    nas_net_free(net);
}

Test(backbone_net, partial_forwards_compose_to_the_whole) {
    nas_net_config c = preset("nasnet-a-cifar");
    c.num_cells = 2;
    c.num_conv_filters = 8;
    c.image_size = 16;
    c.use_aux_head = 0;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 3, &net), 0);
    int r1 = nas_net_reduction_cell(net, 1);
    cr_expect_eq(r1, 5);
    cr_expect_eq(nas_net_reduction_cell(net, 2), -1);
    nas_net_free(net);
    check_split(c, r1 - 1, 2);
    check_split(c, 0, 2);
    /* Large style (skip_reduction_layer_input): split before reduction 1, as the detector does. */
    nas_net_config l = preset("nasnet-a-large");
    l.num_cells = 2;
    l.num_conv_filters = 8;
    l.image_size = 64;
    l.num_classes = 5;
    l.use_aux_head = 0;
    cr_assert_eq(nas_net_new(&l, NULL, NULL, 3, &net), 0);
    int lr1 = nas_net_reduction_cell(net, 1);
    cr_expect_eq(lr1, 7); /* stem cells 0-1, cells 2-3, reduction 4, cells 5-6, reduction 7 */
    /* Starting right after a reduction cell needs the state before its input: refused. */
    nn_ctx *ctx = nn_ctx_new();
    nn_tensor *a = nn_tensor_new(ctx, 4, NN_SHAPE(1, 64, 4, 4)), *fin;
    cr_expect_eq(nas_net_forward_from(net, ctx, lr1 + 1, a, a, 0, &fin), ND_ERR_UNSUPPORTED);
    cr_expect_eq(nas_net_forward_from(net, ctx, 99, a, a, 0, &fin), ND_ERR_INVALID);
    nn_ctx_free(ctx);
    nas_net_free(net);
    check_split(l, lr1 - 1, 2);
}

Test(backbone_net, bad_input_is_a_status) {
    nas_net_config c = preset("nasnet-a-cifar");
    c.num_cells = 1;
    c.num_conv_filters = 4;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 3, &net), 0);
    nn_ctx *ctx = nn_ctx_new();
    nas_net_output out;
    nn_tensor *x = nn_tensor_new(ctx, 4, NN_SHAPE(1, 1, 32, 32));
    cr_expect_eq(nas_net_forward(net, ctx, x, 0, &out), ND_ERR_INVALID);
    nn_ctx_free(ctx);
    nas_net_free(net);
    nas_net *bad = (nas_net *)1;
    c.num_classes = 0;
    cr_expect_eq(nas_net_new(&c, NULL, NULL, 3, &bad), ND_ERR_INVALID);
    cr_expect_null(bad);
}

/* The NASNet-B/C search-space variants build and train: 4 input states (h_{i-2}, h_{i-3} made
 * by factorized reductions), every op kind, concat and add+LN/IN combiners, "all" outputs. */
Test(backbone_net, nasnet_b_space_genotype_builds_and_backpropagates) {
    static const char *g =
        "{\"name\": \"b-like\", \"input_states\": 4, \"blocks\": 4,"
        " \"normal\": {\"blocks\": ["
        "  {\"inputs\": [0, 3], \"ops\": [\"conv_1x7_7x1\", \"dil_conv_3x3\"], \"combine\": \"add_layernorm\"},"
        "  {\"inputs\": [2, 4], \"ops\": [\"max_pool_5x5\", \"conv_1x1\"], \"combine\": \"concat\"},"
        "  {\"inputs\": [1, 5], \"ops\": [\"identity\", \"conv_3x3\"], \"combine\": \"add_instancenorm\"},"
        "  {\"inputs\": [6, 0], \"ops\": [\"conv_1x3_3x1\", \"max_pool_7x7\"], \"combine\": \"add\"}],"
        "  \"output\": \"all\"},"
        " \"reduction\": {\"blocks\": ["
        "  {\"inputs\": [0, 3], \"ops\": [\"sep_conv_3x3\", \"identity\"], \"combine\": \"add\"},"
        "  {\"inputs\": [1, 2], \"ops\": [\"avg_pool_3x3\", \"sep_conv_7x7\"], \"combine\": \"concat\"},"
        "  {\"inputs\": [4, 5], \"ops\": [\"identity\", \"max_pool_3x3\"], \"combine\": \"add\"},"
        "  {\"inputs\": [6, 0], \"ops\": [\"sep_conv_5x5\", \"conv_1x1\"], \"combine\": \"add\"}],"
        "  \"output\": \"all\"}}";
    nas_net_config c = preset("nasnet-a-cifar");
    cr_assert_eq(nas_genotype_parse(g, &c.genotype), 0, "%s", nd_last_error());
    c.num_cells = 1;
    c.num_conv_filters = 4;
    c.image_size = 16;
    c.use_aux_head = 0;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 2, &net), 0, "%s", nd_last_error());
    cr_expect_not_null(nn_params_get(nas_net_params(net), "cell_1/input_2/path1_conv/weights"));
    cr_expect_not_null(nn_params_get(nas_net_params(net), "cell_0/comb_iter_0/combine_norm/gamma"));
    nas_cost k;
    cr_assert_eq(nas_net_cost(&c, 0, &k), 0);
    cr_expect_eq(k.params, nn_params_numel(nas_net_params(net)));
    nas_cost_free(&k);
    nn_ctx *ctx = nn_ctx_new();
    float img[2 * 3 * 16 * 16];
    bb_formula_image(img, 2, 3, 16, 16);
    nas_net_output out;
    cr_assert_eq(nas_net_forward(net, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(2, 3, 16, 16), img), 0, &out), 0, "%s",
                 nd_last_error());
    int32_t lab[2] = {1, 3};
    nn_tensor *loss = nn_softmax_cross_entropy(ctx, out.logits, lab, 0.0f);
    nn_backward(ctx, loss);
    cr_expect(isfinite(loss->data[0]));
    double gn = nn_params_clip_grad_norm(nas_net_params(net), 0);
    cr_expect(isfinite(gn) && gn > 0, "gradient norm %g", gn);
    nn_ctx_free(ctx);
    nas_net_free(net);
}
