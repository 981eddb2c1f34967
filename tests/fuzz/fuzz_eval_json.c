/* libFuzzer target: the evaluator's JSON loaders and everything after them (make fuzz).
 * Input: "GT\0RESULTS" (with no NUL byte, the input is the results for a small fixed GT and
 * is also tried as a GT). Any input must give results or a status with a message; evaluation
 * of whatever loads must not crash for any iou type; numbers must be in [-1, 1] or NaN. */
#include "common/log.h"
#include "common/status.h"
#include "eval/cocoeval.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char GT[] =
    "{\"images\": [{\"id\": 1, \"width\": 40, \"height\": 30}, {\"id\": 2, \"width\": 20, \"height\": 20}],"
    " \"categories\": [{\"id\": 1, \"name\": \"a\"}, {\"id\": 2, \"name\": \"b\"}],"
    " \"annotations\": ["
    "  {\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"bbox\": [2, 2, 10, 8], \"area\": 80, \"iscrowd\": 0,"
    "   \"segmentation\": [[2, 2, 12, 2, 12, 10, 2, 10]], \"num_keypoints\": 1,"
    "   \"keypoints\": [3,3,2, 0,0,0, 0,0,0, 0,0,0, 0,0,0, 0,0,0, 0,0,0, 0,0,0, 0,0,0, 0,0,0, 0,0,0, 0,0,0, 0,0,0,"
    "                  0,0,0, 0,0,0, 0,0,0, 5,5,1]},"
    "  {\"id\": 2, \"image_id\": 2, \"category_id\": 2, \"bbox\": [0, 0, 5, 5], \"area\": 25, \"iscrowd\": 1,"
    "   \"segmentation\": {\"size\": [20, 20], \"counts\": [0, 5, 15, 5, 375]}, \"num_keypoints\": 0}]}";

static void check(const ceval_result *r) {
    for (int i = 0; i < r->nstats; i++)
        if (!(isnan(r->stats[i]) || (r->stats[i] >= -1 && r->stats[i] <= 1))) abort();
    char *t = ceval_summary_text(r);
    free(t);
    t = ceval_per_class_text(r);
    free(t);
}

static void evaluate_all(const ceval_gt *gt, const ceval_dets *dt) {
    for (int type = 0; type < 3; type++)
        for (int uc = 0; uc < 2; uc++) {
            ceval_params p;
            ceval_params_init(&p, (ceval_iou_type)type);
            p.use_cats = uc;
            p.num_threads = 1;
            ceval_result *r;
            if (ceval_evaluate(gt, dt, &p, &r) == 0) {
                check(r);
                ceval_result_free(r);
            } else if (nd_last_error()[0] == '\0') {
                abort();
            }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nd_log_set_level(ND_LOG_QUIET);
    nd_error_clear();
    const char *text = (const char *)data;
    const char *nul = memchr(text, 0, size);
    ceval_gt *gt = NULL;
    size_t gl = nul ? (size_t)(nul - text) : size;
    if (ceval_gt_parse(text, gl, "gt.json", &gt) != 0) {
        if (nd_last_error()[0] == '\0') abort();
        gt = NULL;
    }
    const char *res = nul ? nul + 1 : text;
    size_t rl = nul ? size - gl - 1 : size;
    if (!gt || !nul) {
        ceval_gt_free(gt);
        if (ceval_gt_parse(GT, sizeof GT - 1, "fixed.json", &gt) != 0) abort();
    }
    ceval_dets *dt;
    if (ceval_dets_parse(gt, res, rl, "results.json", &dt) == 0) {
        evaluate_all(gt, dt);
        ceval_dets_free(dt);
    } else if (nd_last_error()[0] == '\0') {
        abort();
    }
    /* the compressed RLE decoder on raw bytes */
    ceval_rle r;
    if (ceval_rle_from_string(&r, text, size < 256 ? size : 256, 4, 4) == 0) {
        double bb[4];
        ceval_rle_to_bbox(&r, bb);
        char *s = ceval_rle_to_string(&r);
        free(s);
        ceval_rle_free(&r);
    }
    ceval_gt_free(gt);
    return 0;
}
