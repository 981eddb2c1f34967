/* Every case of tests/fixtures/coco_eval/coco/expected.json (computed by pycocotools) through
 * the library: the 12 (10) stats, per-category AP and the printed summary. */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "eval/cocoeval.h"
#include "tests/util/testutil.h"

#define ROOT "tests/fixtures/coco_eval/coco/"

static cJSON *expected(void) {
    char *text = tu_read_file(ROOT "expected.json", NULL);
    cr_assert(text, "cannot read " ROOT "expected.json");
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert(j);
    return j;
}

static void quiet(void) { nd_log_set_level(ND_LOG_ERROR); }

/* Evaluate one case; returns 0 or the failing status. */
static int run_case(cJSON *c, const char *iou_type, int threads, ceval_result **out) {
    char gt_path[512], dt_path[512];
    snprintf(gt_path, sizeof gt_path, ROOT "%s", cJSON_GetObjectItem(c, "gt")->valuestring);
    snprintf(dt_path, sizeof dt_path, ROOT "%s", cJSON_GetObjectItem(c, "dt")->valuestring);
    ceval_gt *gt;
    ceval_dets *dt;
    int rc = ceval_gt_load(gt_path, &gt);
    if (rc) return rc;
    rc = ceval_dets_load(gt, dt_path, &dt);
    if (rc) { ceval_gt_free(gt); return rc; }
    ceval_params p;
    ceval_params_init(&p, (ceval_iou_type)ceval_iou_type_parse(iou_type));
    cJSON *uc = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "params"), "useCats");
    if (uc) p.use_cats = uc->valueint;
    p.num_threads = threads;
    rc = ceval_evaluate(gt, dt, &p, out);
    ceval_dets_free(dt);
    ceval_gt_free(gt);
    return rc;
}

Test(eval_cases, every_case_matches_pycocotools, .init = quiet) {
    cJSON *e = expected(), *cases = cJSON_GetObjectItem(e, "cases");
    int checked = 0;
    for (cJSON *c = cases->child; c; c = c->next) {
        cJSON *types = cJSON_GetObjectItem(c, "iouTypes");
        for (cJSON *t = types->child; t; t = t->next) {
            const char *it = t->valuestring;
            cJSON *err = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "errors"), c->string), it);
            ceval_result *r = NULL;
            int rc = run_case(c, it, 0, &r);
            if (err && strstr(err->valuestring, "AssertionError")) {
                cr_expect_eq(rc, ND_ERR_NOT_FOUND, "%s/%s: expected the unknown-image error", c->string, it);
                cr_expect(strstr(nd_last_error(), "image_id 2299") != NULL, "%s", nd_last_error());
                continue;
            }
            cr_assert_eq(rc, 0, "%s/%s: %s", c->string, it, nd_last_error());
            if (err) { /* loadRes([]) raises; we evaluate the empty set as all zeros */
                /* 0, or -1 where an area range has no GT */
                for (int i = 0; i < r->nstats; i++) cr_expect(r->stats[i] == 0.0 || r->stats[i] == -1.0);
                cr_expect_eq(r->stats[0], 0.0);
                ceval_result_free(r);
                continue;
            }
            cJSON *stats = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "stats"), c->string), it);
            cr_assert_eq(cJSON_GetArraySize(stats), r->nstats, "%s/%s", c->string, it);
            for (int i = 0; i < r->nstats; i++) {
                double want = cJSON_GetArrayItem(stats, i)->valuedouble;
                cr_expect(fabs(r->stats[i] - want) <= 1e-12, "%s/%s stats[%d]: %.17g, pycocotools %.17g", c->string,
                          it, i, r->stats[i], want);
            }
            cJSON *pc = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "per_category_ap"), c->string), it);
            cr_expect_eq(cJSON_GetArraySize(pc), r->K, "%s/%s: categories", c->string, it);
            for (int k = 0; k < r->K; k++) {
                cJSON *w = cJSON_GetObjectItem(pc, r->cat_keys[k]);
                cr_assert(w, "%s/%s: category %s not expected", c->string, it, r->cat_keys[k]);
                cr_expect(fabs(r->per_cat_ap[k] - w->valuedouble) <= 1e-12, "%s/%s cat %s: %.17g vs %.17g", c->string,
                          it, r->cat_keys[k], r->per_cat_ap[k], w->valuedouble);
            }
            char *text = ceval_summary_text(r);
            const char *want =
                cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "summary_text"), c->string), it)->valuestring;
            cr_expect_str_eq(text, want, "%s/%s summary text", c->string, it);
            free(text);
            ceval_result_free(r);
            checked++;
        }
    }
    cr_expect_geq(checked, 20);
    cJSON_Delete(e);
}

/* The numbers printed in cocoapi's results/val2014_fake_eval_res.txt (3 decimals) */
static void check_printed(const char *dt, const char *iou_type, const char *section) {
    char *txt = tu_read_file("tests/fixtures/coco_eval/data/coco/cocoapi/val2014_fake_eval_res.txt", NULL);
    cr_assert(txt);
    char *s = strstr(txt, section);
    cr_assert(s, "no section %s", section);
    double want[12];
    for (int i = 0; i < 12; i++) {
        s = strstr(s, "] = ");
        cr_assert(s);
        want[i] = strtod(s + 4, NULL);
        s += 4;
    }
    free(txt);
    ceval_gt *gt;
    ceval_dets *d;
    cr_assert_eq(ceval_gt_load("tests/fixtures/coco_eval/data/coco/faster_coco_eval/instances_val2014_100.json", &gt), 0,
                 "%s", nd_last_error());
    cr_assert_eq(ceval_dets_load(gt, dt, &d), 0, "%s", nd_last_error());
    ceval_params p;
    ceval_params_init(&p, (ceval_iou_type)ceval_iou_type_parse(iou_type));
    ceval_result *r;
    cr_assert_eq(ceval_evaluate(gt, d, &p, &r), 0, "%s", nd_last_error());
    for (int i = 0; i < 12; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.3f", r->stats[i]);
        cr_expect_eq(strtod(buf, NULL), want[i], "%s stats[%d] = %s, cocoapi printed %.3f", iou_type, i, buf, want[i]);
    }
    ceval_result_free(r);
    ceval_dets_free(d);
    ceval_gt_free(gt);
}

Test(eval_cases, cocoapi_printed_fake_results) {
    check_printed("tests/fixtures/coco_eval/data/coco/cocoapi/instances_val2014_fakebbox100_results.json", "bbox",
                  "type=bbox");
    check_printed("tests/fixtures/coco_eval/data/coco/cocoapi/instances_val2014_fakesegm100_results.json", "segm",
                  "type=segm");
}

/* Results identical, bit for bit, for 1, 2 and 3 threads (precision, recall, scores). */
Test(eval_cases, same_numbers_for_any_thread_count, .init = quiet) {
    cJSON *e = expected(), *cases = cJSON_GetObjectItem(e, "cases");
    const char *names[] = {"syn_many_cats", "syn_crowd", "syn_keypoints"};
    const char *types[] = {"bbox", "segm", "keypoints"};
    for (int c = 0; c < 3; c++) {
        ceval_result *r[3];
        for (int t = 0; t < 3; t++) {
            cr_assert_eq(run_case(cJSON_GetObjectItem(cases, names[c]), types[c], t + 1, &r[t]), 0, "%s", nd_last_error());
        }
        size_t np = (size_t)r[0]->T * r[0]->R * r[0]->K * r[0]->A * r[0]->M;
        for (int t = 1; t < 3; t++) {
            cr_expect(memcmp(r[0]->precision, r[t]->precision, np * sizeof(double)) == 0, "%s precision", names[c]);
            cr_expect(memcmp(r[0]->scores, r[t]->scores, np * sizeof(double)) == 0, "%s scores", names[c]);
            cr_expect(memcmp(r[0]->stats, r[t]->stats, sizeof r[0]->stats) == 0, "%s stats", names[c]);
        }
        for (int t = 0; t < 3; t++) ceval_result_free(r[t]);
    }
    cJSON_Delete(e);
}

/* The in-memory API gives the file API's numbers; the GT is loaded once for several sets. */
Test(eval_cases, boxes_in_memory_match_the_file) {
    ceval_gt *gt;
    cr_assert_eq(ceval_gt_load(ROOT "cases/syn_bbox_basic/gt.json", &gt), 0, "%s", nd_last_error());
    char *text = tu_read_file(ROOT "cases/syn_bbox_basic/dt.json", NULL);
    cJSON *arr = cJSON_Parse(text);
    free(text);
    int n = cJSON_GetArraySize(arr);
    ceval_det *dets = calloc((size_t)n, sizeof *dets);
    int i = 0;
    for (cJSON *d = arr->child; d; d = d->next, i++) {
        dets[i].image_id = (int64_t)cJSON_GetObjectItem(d, "image_id")->valuedouble;
        dets[i].category_id = (int64_t)cJSON_GetObjectItem(d, "category_id")->valuedouble;
        dets[i].score = cJSON_GetObjectItem(d, "score")->valuedouble;
        for (int q = 0; q < 4; q++) dets[i].bbox[q] = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "bbox"), q)->valuedouble;
    }
    cJSON_Delete(arr);
    ceval_dets *a, *b;
    cr_assert_eq(ceval_dets_from_boxes(gt, dets, n, &a), 0, "%s", nd_last_error());
    cr_assert_eq(ceval_dets_load(gt, ROOT "cases/syn_bbox_basic/dt.json", &b), 0);
    cr_expect_eq(ceval_dets_count(a), n);
    ceval_params p;
    ceval_params_init(&p, CEVAL_BBOX);
    ceval_result *ra, *rb;
    cr_assert_eq(ceval_evaluate(gt, a, &p, &ra), 0);
    cr_assert_eq(ceval_evaluate(gt, b, &p, &rb), 0);
    cr_expect(memcmp(ra->stats, rb->stats, sizeof ra->stats) == 0);
    cr_expect_gt(ra->stats[0], 0.1);
    /* segm from in-memory boxes: each box is its polygon, as loadRes' bbox branch */
    p.iou_type = CEVAL_SEGM;
    ceval_result *sa, *sb;
    cr_assert_eq(ceval_evaluate(gt, a, &p, &sa), 0, "%s", nd_last_error());
    cr_assert_eq(ceval_evaluate(gt, b, &p, &sb), 0);
    cr_expect(memcmp(sa->stats, sb->stats, sizeof sa->stats) == 0);
    /* an unknown image id is named */
    dets[3].image_id = 987654;
    ceval_dets *c;
    cr_expect_eq(ceval_dets_from_boxes(gt, dets, n, &c), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "987654") != NULL, "%s", nd_last_error());
    ceval_result_free(ra); ceval_result_free(rb); ceval_result_free(sa); ceval_result_free(sb);
    ceval_dets_free(a); ceval_dets_free(b);
    free(dets);
    ceval_gt_free(gt);
}

/* Params: a subset of images and categories, custom maxDets and thresholds behave as
 * pycocotools' (checked here by consistency with recomputation on a filtered file). */
Test(eval_cases, params_subset_and_thresholds) {
    ceval_gt *gt;
    ceval_dets *dt;
    cr_assert_eq(ceval_gt_load(ROOT "cases/syn_bbox_basic/gt.json", &gt), 0);
    cr_assert_eq(ceval_dets_load(gt, ROOT "cases/syn_bbox_basic/dt.json", &dt), 0);
    ceval_params p;
    ceval_params_init(&p, CEVAL_BBOX);
    const double cats[] = {13, 1, 1}; /* np.unique sorts and drops the repeat */
    p.cat_ids = cats;
    p.n_cat_ids = 3;
    ceval_result *r, *full;
    cr_assert_eq(ceval_evaluate(gt, dt, &p, &r), 0, "%s", nd_last_error());
    cr_assert_eq(r->K, 2);
    cr_expect_str_eq(r->cat_keys[0], "1");
    cr_expect_str_eq(r->cat_keys[1], "13");
    ceval_params_init(&p, CEVAL_BBOX);
    cr_assert_eq(ceval_evaluate(gt, dt, &p, &full), 0);
    /* per-category AP does not depend on which other categories are evaluated */
    for (int k = 0; k < full->K; k++) {
        if (strcmp(full->cat_keys[k], "1") == 0) cr_expect_eq(full->per_cat_ap[k], r->per_cat_ap[0]);
        if (strcmp(full->cat_keys[k], "13") == 0) cr_expect_eq(full->per_cat_ap[k], r->per_cat_ap[1]);
    }
    ceval_result_free(r);
    /* one IoU threshold at .5: AP equals the default run's AP50 */
    const double thr[] = {0.5};
    p.iou_thrs = thr;
    p.n_iou_thrs = 1;
    cr_assert_eq(ceval_evaluate(gt, dt, &p, &r), 0);
    cr_expect_eq(r->stats[0], full->stats[1]);
    cr_expect_eq(r->stats[2], -1.0); /* no threshold equals .75 */
    char *text = ceval_summary_text(r);
    cr_expect(strstr(text, "IoU=0.50:0.50 |") != NULL, "%s", text);
    free(text);
    ceval_result_free(r);
    /* maxDets are sorted before use */
    ceval_params_init(&p, CEVAL_BBOX);
    const int64_t md[] = {100, 1, 10};
    p.max_dets = md;
    p.n_max_dets = 3;
    cr_assert_eq(ceval_evaluate(gt, dt, &p, &r), 0);
    cr_expect(memcmp(r->stats, full->stats, sizeof r->stats) == 0);
    ceval_result_free(r);
    /* wrong number of area ranges */
    const double ar[] = {0, 1e10};
    p.area_rng = ar;
    p.n_area_rng = 1;
    cr_expect_eq(ceval_evaluate(gt, dt, &p, &r), ND_ERR_INVALID);
    ceval_result_free(full);
    ceval_dets_free(dt);
    ceval_gt_free(gt);
}

/* pycocotools' computeOks ignores useCats: with useCats = 0 it looks up category -1, finds no
 * GT, and no detection ever matches; AP is 0, not the pooled value. */
Test(eval_cases, keypoints_with_use_cats_0_match_nothing, .init = quiet) {
    cJSON *e = expected(), *c = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "cases"), "syn_keypoints");
    cJSON_AddItemToObject(cJSON_GetObjectItem(c, "params"), "useCats", cJSON_CreateNumber(0));
    ceval_result *r;
    cr_assert_eq(run_case(c, "keypoints", 0, &r), 0, "%s", nd_last_error());
    cr_expect_eq(r->K, 1);
    cr_expect_eq(r->stats[0], 0.0);
    cr_expect_eq(r->stats[5], 0.0);
    ceval_result_free(r);
    /* custom sigmas: 17 of them, all larger, can only raise OKS and so AP */
    ceval_gt *gt;
    ceval_dets *dt;
    cr_assert_eq(ceval_gt_load(ROOT "cases/syn_keypoints/gt.json", &gt), 0);
    cr_assert_eq(ceval_dets_load(gt, ROOT "cases/syn_keypoints/dt.json", &dt), 0);
    ceval_params p;
    ceval_params_init(&p, CEVAL_KEYPOINTS);
    ceval_result *base, *wide;
    cr_assert_eq(ceval_evaluate(gt, dt, &p, &base), 0);
    double s[17];
    for (int i = 0; i < 17; i++) s[i] = 0.2;
    p.kpt_sigmas = s;
    p.n_kpt_sigmas = 17;
    cr_assert_eq(ceval_evaluate(gt, dt, &p, &wide), 0, "%s", nd_last_error());
    cr_expect_gt(wide->stats[0], base->stats[0]);
    /* a sigma count that does not fit the keypoints is an error, not a crash */
    p.n_kpt_sigmas = 5;
    ceval_result *bad;
    cr_expect_eq(ceval_evaluate(gt, dt, &p, &bad), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "keypoints") != NULL, "%s", nd_last_error());
    ceval_result_free(base);
    ceval_result_free(wide);
    ceval_dets_free(dt);
    ceval_gt_free(gt);
    cJSON_Delete(e);
}
