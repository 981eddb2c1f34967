#include <criterion/criterion.h>
#include <stdlib.h>

#include "common/args.h"
#include "common/status.h"

static int64_t n_epochs = 3;
static double lr = 0.025;
static const char *out_dir = "run";
static const char *iou = "bbox";
static int resume = 0;

static const nd_opt opts[] = {
    {"epochs", ND_OPT_INT, &n_epochs, "epochs", NULL, NULL},
    {"lr", ND_OPT_DOUBLE, &lr, "learning rate", NULL, NULL},
    {"out", ND_OPT_STRING, &out_dir, "output folder", NULL, "DIR"},
    {"iou-type", ND_OPT_CHOICE, &iou, "IoU type", "bbox|segm|keypoints", NULL},
    {"resume", ND_OPT_FLAG, &resume, "resume", NULL, NULL},
};

Test(args, parses_all_forms) {
    char *argv[] = {"cmd", "--epochs", "7", "--lr=0.5", "a.jpg", "--out", "x", "--iou-type", "segm", "--resume", "--", "--b.jpg"};
    nd_args a;
    cr_assert_eq(nd_args_parse(12, argv, 1, opts, 5, &a), 0, "%s", nd_last_error());
    cr_expect_eq(n_epochs, 7);
    cr_expect_float_eq(lr, 0.5, 1e-12);
    cr_expect_str_eq(out_dir, "x");
    cr_expect_str_eq(iou, "segm");
    cr_expect_eq(resume, 1);
    cr_assert_eq(a.npositional, 2);
    cr_expect_str_eq(a.positional[0], "a.jpg");
    cr_expect_str_eq(a.positional[1], "--b.jpg");
    nd_args_free(&a);
}

Test(args, rejects_bad_input_with_message) {
    nd_args a;
    char *unknown[] = {"cmd", "--bogus", "1"};
    cr_expect_eq(nd_args_parse(3, unknown, 1, opts, 5, &a), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "--bogus") != NULL, "%s", nd_last_error());
    char *notint[] = {"cmd", "--epochs", "3x"};
    cr_expect_eq(nd_args_parse(3, notint, 1, opts, 5, &a), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "integer") != NULL, "%s", nd_last_error());
    char *choice[] = {"cmd", "--iou-type", "boxes"};
    cr_expect_eq(nd_args_parse(3, choice, 1, opts, 5, &a), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "bbox|segm|keypoints") != NULL, "%s", nd_last_error());
    char *missing[] = {"cmd", "--lr"};
    cr_expect_eq(nd_args_parse(2, missing, 1, opts, 5, &a), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "needs a value") != NULL, "%s", nd_last_error());
    char *inf[] = {"cmd", "--lr", "inf"};
    cr_expect_eq(nd_args_parse(3, inf, 1, opts, 5, &a), ND_ERR_INVALID);
}

Test(args, lists) {
    int64_t *iv;
    double *dv;
    int n;
    cr_assert_eq(nd_parse_int_list("1,10,100", &iv, &n), 0);
    cr_expect_eq(n, 3);
    cr_expect_eq(iv[2], 100);
    free(iv);
    cr_assert_eq(nd_parse_double_list("0.5,0.75", &dv, &n), 0);
    cr_expect_eq(n, 2);
    cr_expect_float_eq(dv[1], 0.75, 1e-15);
    free(dv);
    cr_expect_eq(nd_parse_int_list("1,x,3", &iv, &n), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "item 2") != NULL, "%s", nd_last_error());
    cr_expect_eq(nd_parse_int_list("", &iv, &n), ND_ERR_INVALID);
}
