/* Import of pretrained weights: a Large-style net saved by tests/fixtures/bb_import/
 * make_fixture.py with timm/Cadene names (PyTorch layouts) and with TF-slim names (TF layouts)
 * imports into nasdet's names and gives the reference's logits; errors name the tensor. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/nasnet_net.h"
#include "tests/bb_formula.h"
#include "tests/util/testutil.h"

#define FIX "tests/fixtures/bb_import/"

static nas_net_config small_large(void) {
    nas_net_config c;
    nas_net_preset("nasnet-a-large", &c);
    c.num_cells = 1;
    c.num_conv_filters = 4;
    c.stem_multiplier = 1.0;
    c.image_size = 96;
    c.num_classes = 5;
    c.use_aux_head = 0;
    return c;
}

static void expect_reference_logits(nas_net *net) {
    float ref[5];
    FILE *fp = fopen(FIX "logits.txt", "r");
    cr_assert(fp);
    char line[256];
    cr_assert(fgets(line, sizeof line, fp));
    for (int i = 0; i < 5; i++) cr_assert(fscanf(fp, "%f", &ref[i]) == 1);
    fclose(fp);
    float *img = malloc(3 * 96 * 96 * sizeof(float));
    bb_formula_image(img, 1, 3, 96, 96);
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    nn_ctx_set_training(ctx, 0);
    nas_net_output out;
    cr_assert_eq(nas_net_forward(net, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(1, 3, 96, 96), img), 0, &out), 0);
    double md = 0, mr = 0;
    for (int i = 0; i < 5; i++) {
        md = fmax(md, fabs(out.logits->data[i] - ref[i]));
        mr = fmax(mr, fabs(ref[i]));
    }
    cr_expect_lt(md / mr, 1e-4, "imported logits: relative error %g", md / mr);
    nn_ctx_free(ctx);
    free(img);
}

Test(backbone_import, timm_names_give_the_reference_logits) {
    nas_net_config c = small_large();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, "model", 1, &net), 0); /* a prefix must not matter */
    cr_assert_eq(nas_import(net, FIX "timm.safetensors", NAS_IMPORT_TIMM), 0, "%s", nd_last_error());
    expect_reference_logits(net);
    nas_net_free(net);
}

Test(backbone_import, tf_slim_names_and_layouts_give_the_reference_logits) {
    nas_net_config c = small_large();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0);
    cr_assert_eq(nas_import(net, FIX "tf.safetensors", NAS_IMPORT_TF_SLIM), 0, "%s", nd_last_error());
    expect_reference_logits(net);
    nas_net_free(net);
}

Test(backbone_import, aux_head_may_be_absent_from_the_file) {
    nas_net_config c = small_large();
    c.use_aux_head = 1;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0, "%s", nd_last_error());
    cr_expect_eq(nas_import(net, FIX "timm.safetensors", NAS_IMPORT_TIMM), 0, "%s", nd_last_error());
    nas_net_free(net);
}

Test(backbone_import, errors_name_the_tensor_and_leave_the_store_alone) {
    nas_net_config c = small_large();
    c.num_classes = 6;
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0);
    nn_tensor *w = nn_params_get(nas_net_params(net), "conv0/weights");
    float before = w->data[3];
    cr_expect_eq(nas_import(net, FIX "timm.safetensors", NAS_IMPORT_TIMM), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "last_linear.weight") && strstr(nd_last_error(), "--classes"), "%s",
              nd_last_error());
    cr_expect_eq(w->data[3], before, "the store changed on a failed import");
    /* A TF-named file read as timm: the first tensor looked for is missing. */
    cr_expect_eq(nas_import(net, FIX "tf.safetensors", NAS_IMPORT_TIMM), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "conv0.conv.weight") != NULL, "%s", nd_last_error());
    nas_net_free(net);
    /* A larger network: the file lacks its cells. */
    c = small_large();
    c.num_cells = 2;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0);
    cr_expect_neq(nas_import(net, FIX "timm.safetensors", NAS_IMPORT_TIMM), 0);
    nas_net_free(net);
    /* A smaller one: the file has extra tensors. */
    nas_net_config cf;
    nas_net_preset("nasnet-a-cifar", &cf);
    cf.num_cells = 1;
    cf.num_conv_filters = 4;
    cr_assert_eq(nas_net_new(&cf, NULL, NULL, 1, &net), 0);
    cr_expect_eq(nas_import(net, FIX "timm.safetensors", NAS_IMPORT_TIMM), ND_ERR_UNSUPPORTED);
    cr_expect(strstr(nd_last_error(), "l1_stem_3x3") != NULL, "%s", nd_last_error());
    nas_net_free(net);
}

Test(backbone_import, malformed_files_are_format_errors) {
    char *dir = tu_tmpdir();
    char path[256];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    nas_net_config c = small_large();
    nas_net *net;
    cr_assert_eq(nas_net_new(&c, NULL, NULL, 1, &net), 0);
    const char *cases[] = {"abc", "\x10\0\0\0\0\0\0\0{\"a\":1}", "\xff\xff\xff\xff\0\0\0\0{}"};
    size_t lens[] = {3, 15, 10};
    for (int i = 0; i < 3; i++) {
        FILE *fp = fopen(path, "wb");
        fwrite(cases[i], 1, lens[i], fp);
        fclose(fp);
        cr_expect_eq(nas_import(net, path, NAS_IMPORT_TIMM), ND_ERR_FORMAT, "case %d: %s", i, nd_last_error());
    }
    cr_expect_eq(nas_import(net, "/nonexistent.safetensors", NAS_IMPORT_TIMM), ND_ERR_IO);
    nas_net_free(net);
    tu_rmtree(dir);
    free(dir);
}
