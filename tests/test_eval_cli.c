/* `nasdet eval` end to end: output format, --json, --per-class, the dict form, and the error
 * behaviour the issue asks for (named unknown image, JSON position and path, empty results,
 * missing iscrowd, bad options). */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/testutil.h"

#define FX "tests/fixtures/coco_eval/"
#define CASE(c) FX "coco/cases/" c

static char *tmp;
static void setup(void) { tmp = tu_tmpdir(); cr_assert(tmp); }
static void teardown(void) { tu_rmtree(tmp); free(tmp); }

static cJSON *expected_item(const char *section, const char *c, const char *it) {
    char *text = tu_read_file(FX "coco/expected.json", NULL);
    cJSON *e = cJSON_Parse(text);
    free(text);
    cJSON *v = cJSON_Duplicate(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, section), c), it), 1);
    cJSON_Delete(e);
    return v;
}

Test(eval_cli, summary_json_and_per_class, .init = setup, .fini = teardown) {
    char args[1024], *out;
    snprintf(args, sizeof args, "eval --gt " CASE("syn_bbox_basic/gt.json") " --dt " CASE("syn_bbox_basic/dt.json")
             " --json %s/out.json --per-class 2>/dev/null", tmp);
    cr_assert_eq(tu_run_cli(args, &out), 0, "%s", out);
    cJSON *text = expected_item("summary_text", "syn_bbox_basic", "bbox");
    cr_expect(strncmp(out, text->valuestring, strlen(text->valuestring)) == 0, "%s", out);
    /* the table: a header, then one row per category with its name and id */
    cr_expect(strstr(out, "category") && strstr(out, "AP50") && strstr(out, "AR@100"), "%s", out);
    cr_expect(strstr(out, "cat13") != NULL && strstr(out, "cat8") != NULL, "%s", out);
    cJSON_Delete(text);
    free(out);

    char path[512];
    snprintf(path, sizeof path, "%s/out.json", tmp);
    char *js = tu_read_file(path, NULL);
    cr_assert(js);
    cJSON *j = cJSON_Parse(js);
    free(js);
    cr_assert(j);
    cr_expect_str_eq(cJSON_GetObjectItem(j, "iou_type")->valuestring, "bbox");
    cJSON *stats = expected_item("stats", "syn_bbox_basic", "bbox"), *mine = cJSON_GetObjectItem(j, "stats");
    cr_assert_eq(cJSON_GetArraySize(mine), 12);
    for (int i = 0; i < 12; i++) /* full precision: the written text reads back to the same double */
        cr_expect(fabs(cJSON_GetArrayItem(mine, i)->valuedouble - cJSON_GetArrayItem(stats, i)->valuedouble) <= 1e-15,
                  "stats[%d]", i);
    cJSON *pc = expected_item("per_category_ap", "syn_bbox_basic", "bbox"), *mpc = cJSON_GetObjectItem(j, "per_category");
    cr_expect_eq(cJSON_GetArraySize(mpc), cJSON_GetArraySize(pc));
    for (cJSON *c = pc->child; c; c = c->next)
        cr_expect(fabs(cJSON_GetObjectItem(mpc, c->string)->valuedouble - c->valuedouble) <= 1e-15, "cat %s", c->string);
    cJSON_Delete(stats);
    cJSON_Delete(pc);
    cJSON_Delete(j);
}

Test(eval_cli, dict_form_results_equal_list_form) {
    char *a, *b;
    cr_assert_eq(tu_run_cli("eval --gt " FX "data/coco/review_object_detection_metrics/toy_example_coco.json --dt "
                            FX "data/coco/review_object_detection_metrics/toy_coco_dets.json", &a), 0);
    cr_assert_eq(tu_run_cli("eval --gt " FX "data/coco/review_object_detection_metrics/toy_example_coco.json --dt "
                            FX "data/coco/derived/rodm_toy_coco_dets.list.json", &b), 0);
    cr_expect_str_eq(a, b);
    cJSON *text = expected_item("summary_text", "rodm_toy", "bbox");
    cr_expect_str_eq(b, text->valuestring);
    cJSON_Delete(text);
    free(a);
    free(b);
}

Test(eval_cli, use_cats_0) {
    char *out;
    cr_assert_eq(tu_run_cli("eval --gt " CASE("syn_many_cats/gt.json") " --dt " CASE("syn_many_cats/dt.json")
                            " --use-cats 0", &out), 0);
    cJSON *text = expected_item("summary_text", "syn_usecats0", "bbox");
    cr_expect_str_eq(out, text->valuestring);
    cJSON_Delete(text);
    free(out);
}

Test(eval_cli, unknown_image_id_is_named) {
    char *out;
    cr_expect_eq(tu_run_cli("eval --gt " FX "data/coco/faster_coco_eval/gt_ignore_test.json --dt "
                            FX "data/coco/faster_coco_eval/dt_ignore_test.json", &out), 1);
    cr_expect(strstr(out, "image_id 2299") != NULL, "%s", out);
    cr_expect(strstr(out, "dt_ignore_test.json:") != NULL, "%s", out);
    free(out);
}

static int run_with(const char *gt_text, const char *dt_text, const char *extra, char **out) {
    char gp[512], dp[512], args[2048];
    snprintf(gp, sizeof gp, "%s/gt.json", tmp);
    snprintf(dp, sizeof dp, "%s/dt.json", tmp);
    cr_assert_eq(tu_write_file(gp, gt_text), 0);
    cr_assert_eq(tu_write_file(dp, dt_text), 0);
    snprintf(args, sizeof args, "eval --gt %s --dt %s %s", gp, dp, extra ? extra : "");
    return tu_run_cli(args, out);
}

static const char *GT =
    "{\"images\": [{\"id\": 1, \"width\": 100, \"height\": 80}, {\"id\": 2, \"width\": 50, \"height\": 50}],\n"
    " \"categories\": [{\"id\": 1, \"name\": \"thing\"}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"bbox\": [10, 10, 40, 30], \"area\": 1200, \"iscrowd\": 0},\n"
    "  {\"id\": 2, \"image_id\": 2, \"category_id\": 1, \"bbox\": [5, 5, 20, 20], \"area\": 400, \"iscrowd\": 0}]}\n";

Test(eval_cli, malformed_json_gives_file_position_and_path, .init = setup, .fini = teardown) {
    char *out;
    cr_expect_eq(run_with(GT, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.9, \"bbox\": [10, 10, 40, 30]},\n"
                              " {\"image_id\": 2, \"category_id\": 1, \"score\": 0.8, \"bbox\": [5, 5, 20 20]}]", NULL, &out),
                 1);
    cr_expect(strstr(out, "dt.json:2:") != NULL, "%s", out);
    cr_expect(strstr(out, "$[1].bbox") != NULL, "%s", out);
    free(out);
    cr_expect_eq(run_with(GT, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.9, \"bbox\": [10, 10, 40]}]", NULL, &out), 1);
    cr_expect(strstr(out, "bbox") != NULL && strstr(out, "$[0]") != NULL, "%s", out);
    free(out);
    cr_expect_eq(run_with("{\"images\": [{\"id\": 1}], \"annotations\": [{\"id\": 1, \"image_id\": 1,}]}", "[]", NULL, &out), 1);
    cr_expect(strstr(out, "gt.json:1:") != NULL && strstr(out, "$.annotations[0]") != NULL, "%s", out);
    free(out);
    cr_expect_eq(run_with(GT, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.9, \"bbox\": [1,2,3,4]}] x", NULL, &out), 1);
    cr_expect(strstr(out, "extra data") != NULL, "%s", out);
    free(out);
}

Test(eval_cli, empty_results_give_zeros_with_a_warning, .init = setup, .fini = teardown) {
    char *out;
    cr_expect_eq(run_with(GT, "[]", NULL, &out), 0);
    cr_expect(strstr(out, "warning") != NULL && strstr(out, "no results") != NULL, "%s", out);
    cr_expect(strstr(out, "area=   all | maxDets=100 ] = 0.000") != NULL, "%s", out);
    free(out);
    cr_expect_eq(run_with(GT, "{\"annotations\": []}", NULL, &out), 0);
    free(out);
}

Test(eval_cli, missing_iscrowd_reads_as_0_with_a_warning, .init = setup, .fini = teardown) {
    const char *gt = "{\"images\": [{\"id\": 1}], \"categories\": [{\"id\": 1}], \"annotations\": [\n"
                     "  {\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"bbox\": [10, 10, 40, 30], \"area\": 1200}]}";
    char *out;
    cr_expect_eq(run_with(gt, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.9, \"bbox\": [10, 10, 40, 30]}]",
                          NULL, &out), 0);
    cr_expect(strstr(out, "iscrowd") != NULL && strstr(out, "warning") != NULL, "%s", out);
    cr_expect(strstr(out, "area=   all | maxDets=100 ] = 1.000") != NULL, "%s", out);
    free(out);
}

Test(eval_cli, wrong_kind_of_results_fail_cleanly, .init = setup, .fini = teardown) {
    char *out;
    /* keypoint results asked to be scored as masks */
    cr_expect_eq(run_with(GT, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.9, \"keypoints\": [1, 2, 2]}]",
                          "--iou-type segm", &out), 1);
    cr_expect(strstr(out, "segmentation") != NULL, "%s", out);
    free(out);
    /* a GT without keypoints asked for keypoints */
    cr_expect_eq(run_with(GT, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.9, \"bbox\": [10, 10, 40, 30]}]",
                          "--iou-type keypoints", &out), 1);
    cr_expect(strstr(out, "num_keypoints") != NULL, "%s", out);
    free(out);
    /* not JSON at all, and a missing file */
    cr_expect_eq(run_with(GT, "\x01\x02", NULL, &out), 1);
    free(out);
    cr_expect_eq(tu_run_cli("eval --gt /nonexistent/gt.json --dt /nonexistent/dt.json", &out), 1);
    cr_expect(strstr(out, "/nonexistent/gt.json") != NULL, "%s", out);
    free(out);
}

Test(eval_cli, bad_command_lines_exit_2) {
    char *out;
    cr_expect_eq(tu_run_cli("eval --gt a.json", &out), 2);
    free(out);
    cr_expect_eq(tu_run_cli("eval --gt a.json --dt b.json --iou-type boxes", &out), 2);
    free(out);
    cr_expect_eq(tu_run_cli("eval --gt a.json --dt b.json --img-ids 1,x", &out), 2);
    free(out);
    cr_expect_eq(tu_run_cli("eval --gt a.json --dt b.json --area-rng 0:1,2", &out), 2);
    free(out);
    cr_expect_eq(tu_run_cli("eval --help", &out), 0);
    cr_expect(strstr(out, "--iou-type") != NULL);
    free(out);
}

Test(eval_cli, options_restrict_the_evaluation, .init = setup, .fini = teardown) {
    char *out;
    /* image 2 only: its one detection is perfect */
    cr_expect_eq(run_with(GT, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.9, \"bbox\": [60, 50, 10, 10]},"
                              " {\"image_id\": 2, \"category_id\": 1, \"score\": 0.8, \"bbox\": [5, 5, 20, 20]}]",
                          "--img-ids 2 --max-dets 1,5,10 --iou-thrs 0.5,0.75 --area-rng 0:1e10,0:1024,1024:9216,9216:1e10",
                          &out), 0);
    cr_expect(strstr(out, "IoU=0.50:0.75 | area=   all | maxDets=100 ] = -1.000") != NULL, "%s", out);
    cr_expect(strstr(out, "IoU=0.50      | area=   all | maxDets= 10 ] = 1.000") != NULL, "%s", out);
    cr_expect(strstr(out, "Average Recall     (AR) @[ IoU=0.50:0.75 | area=   all | maxDets=  1 ] = 1.000") != NULL,
              "%s", out);
    free(out);
}
