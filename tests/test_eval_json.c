/* eval/'s JSON parser: strict grammar, exact numbers, and errors that name line:column and
 * the JSON path. (A unit test of the module's own internal header.) */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/status.h"
#include "eval/cocoeval.h"
#include "eval/json.h"

static int parse_number(const char *text, double *v) {
    ceval_json j;
    ceval_json_init(&j, text, strlen(text), "n.json");
    int rc = ceval_json_number(&j, v, 0);
    if (!rc) rc = ceval_json_end(&j);
    ceval_json_free(&j);
    return rc;
}

Test(eval_json, numbers_round_like_strtod) {
    const char *fixed[] = {"0", "-0", "1", "0.1", "123.456", "1e-7", "2.5E+3", "9007199254740993", "0.30000000000000004",
                           "1.7976931348623157e308", "4.9e-324", "123456789012345678901234567890", "0.000001234",
                           "-3.14159265358979323846", "1e23", "8.589973e9"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        double v;
        cr_assert_eq(parse_number(fixed[i], &v), 0, "%s: %s", fixed[i], nd_last_error());
        cr_expect_eq(v, strtod(fixed[i], NULL), "%s", fixed[i]);
    }
    nd_rng r;
    nd_rng_seed(&r, 3);
    for (int i = 0; i < 20000; i++) {
        char buf[64];
        int digits = 1 + (int)nd_rng_below(&r, 17), e = (int)nd_rng_below(&r, 40) - 20;
        snprintf(buf, sizeof buf, "%.*e", digits, (nd_rng_uniform(&r) - 0.5) * pow(10, e));
        double v;
        cr_assert_eq(parse_number(buf, &v), 0, "%s", buf);
        cr_assert_eq(v, strtod(buf, NULL), "%s", buf);
        snprintf(buf, sizeof buf, "%.*f", digits % 8, nd_rng_uniform(&r) * 1000);
        cr_assert_eq(parse_number(buf, &v), 0, "%s", buf);
        cr_assert_eq(v, strtod(buf, NULL), "%s", buf);
    }
    double v;
    cr_expect_eq(parse_number("NaN", &v), 0);
    cr_expect(isnan(v));
    cr_expect_eq(parse_number("-Infinity", &v), 0);
    cr_expect(isinf(v) && v < 0);
    const char *bad[] = {"01", "1.", ".5", "+1", "1e", "-", "0x10", "1.5e+", "nan", "inf", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_neq(parse_number(bad[i], &v), 0, "'%s' accepted", bad[i]);
}

Test(eval_json, strings_and_escapes) {
    const char *text = "[\"a\\\"b\\\\c\\/d\\n\", \"\\u00e9\\ud83d\\ude00\"]";
    ceval_json j;
    ceval_json_init(&j, text, strlen(text), "s.json");
    const char *s;
    size_t n;
    cr_assert_eq(ceval_json_arr_begin(&j), 0);
    cr_assert_eq(ceval_json_arr_next(&j), 1);
    cr_assert_eq(ceval_json_string(&j, &s, &n), 0);
    cr_expect(n == 8 && memcmp(s, "a\"b\\c/d\n", 8) == 0);
    cr_assert_eq(ceval_json_arr_next(&j), 1);
    cr_assert_eq(ceval_json_string(&j, &s, &n), 0);
    cr_expect(n == 6 && memcmp(s, "\xc3\xa9\xf0\x9f\x98\x80", 6) == 0);
    cr_expect_eq(ceval_json_arr_next(&j), 0);
    cr_expect_eq(ceval_json_end(&j), 0);
    ceval_json_free(&j);
}

/* Each bad document fails with file:line:col and the JSON path in the message. */
Test(eval_json, errors_name_position_and_path) {
    struct { const char *text, *where, *path; } cases[] = {
        {"{\"images\": [{\"id\": 1}, {\"id\": 2,}]}", "g.json:1:33", "$.images[1]"},
        {"{\"images\": [],\n \"annotations\": [\n  {\"id\": 1, \"image_id\": tru}]}", "g.json:3:", "$.annotations[0].image_id"},
        {"{\"images\": [{\"id\": 1}]", "g.json:1:", "$"},
        {"{\"images\": [{\"id\": \"abc}]}", "g.json:1:", "$.images[0].id"},
        {"{\"categories\": [{\"name\": \"x\"}]}", "g.json:1:", "$.categories[0]"},
        {"{\"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"segmentation\": {\"size\": [2, 2], "
         "\"counts\": [1, 2]}}]}", "g.json:1:", "$.annotations[0].segmentation"},
        {"[1, 2]", "g.json:1:1", "$"},
        {"", "g.json:1:1", "$"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ceval_gt *gt;
        int rc = ceval_gt_parse(cases[i].text, strlen(cases[i].text), "g.json", &gt);
        cr_expect_neq(rc, 0, "case %zu accepted", i);
        if (rc) {
            cr_expect(strstr(nd_last_error(), cases[i].where) != NULL, "case %zu: %s", i, nd_last_error());
            cr_expect(strstr(nd_last_error(), cases[i].path) != NULL, "case %zu: %s", i, nd_last_error());
        } else {
            ceval_gt_free(gt);
        }
    }
    /* too deep */
    char deep[400];
    memset(deep, '[', 200);
    deep[200] = 0;
    ceval_gt *gt;
    cr_expect_eq(ceval_gt_parse(deep, 200, "d.json", &gt), ND_ERR_FORMAT);
}

Test(eval_json, results_branches_and_ids) {
    const char *gtt = "{\"images\": [{\"id\": 1, \"width\": 10, \"height\": 10}, {\"id\": \"x\"}],"
                      " \"categories\": [{\"id\": 1}], \"annotations\": []}";
    ceval_gt *gt;
    cr_assert_neq(ceval_gt_parse(gtt, strlen(gtt), "g.json", &gt), 0, "mixed image id types cannot be sorted");
    cr_expect(strstr(nd_last_error(), "mix") != NULL, "%s", nd_last_error());
    gtt = "{\"images\": [{\"id\": 1, \"width\": 10, \"height\": 10}, {\"id\": 2.0}],"
          " \"categories\": [{\"id\": 1}], \"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 1,"
          " \"bbox\": [0, 0, 4, 4], \"area\": 16, \"iscrowd\": 0}]}";
    cr_assert_eq(ceval_gt_parse(gtt, strlen(gtt), "g.json", &gt), 0, "%s", nd_last_error());
    cr_expect_eq(ceval_gt_num_images(gt), 2);
    ceval_dets *dt;
    /* 2 and 2.0 are one id (Python: 2 == 2.0); "1" is not 1 */
    const char *ok = "[{\"image_id\": 2, \"category_id\": 1, \"score\": 1, \"bbox\": [0, 0, 1, 1]}]";
    cr_expect_eq(ceval_dets_parse(gt, ok, strlen(ok), "d.json", &dt), 0, "%s", nd_last_error());
    ceval_dets_free(dt);
    const char *str = "[{\"image_id\": \"1\", \"category_id\": 1, \"score\": 1, \"bbox\": [0, 0, 1, 1]}]";
    cr_expect_eq(ceval_dets_parse(gt, str, strlen(str), "d.json", &dt), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "\"1\"") != NULL, "%s", nd_last_error());
    /* the first result decides: bbox branch, so a later result without bbox is an error */
    const char *mix = "[{\"image_id\": 1, \"category_id\": 1, \"score\": 1, \"bbox\": [0, 0, 1, 1]},"
                      " {\"image_id\": 1, \"category_id\": 1, \"score\": 1, \"keypoints\": [1, 1, 1]}]";
    cr_expect_eq(ceval_dets_parse(gt, mix, strlen(mix), "d.json", &dt), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "$[1]") != NULL, "%s", nd_last_error());
    /* no score */
    const char *ns = "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 1, 1]}]";
    cr_expect_eq(ceval_dets_parse(gt, ns, strlen(ns), "d.json", &dt), ND_ERR_FORMAT);
    /* a perfect keypoint-branch result is scored as a box from the keypoints' extent */
    const char *kp = "[{\"image_id\": 1, \"category_id\": 1, \"score\": 1, \"keypoints\": [0, 0, 2, 4, 4, 2]}]";
    cr_assert_eq(ceval_dets_parse(gt, kp, strlen(kp), "d.json", &dt), 0, "%s", nd_last_error());
    ceval_params p;
    ceval_params_init(&p, CEVAL_BBOX);
    ceval_result *r;
    cr_assert_eq(ceval_evaluate(gt, dt, &p, &r), 0, "%s", nd_last_error());
    /* precision tp / (tp + fp + eps) with one true positive is 0.9999999999999998, not 1, as
     * in pycocotools; the mean over the 101 recall thresholds stays just below 1 */
    cr_expect(r->stats[1] > 0.9999999 && r->stats[1] < 1.0, "%.17g", r->stats[1]);
    ceval_result_free(r);
    ceval_dets_free(dt);
    ceval_gt_free(gt);
}
