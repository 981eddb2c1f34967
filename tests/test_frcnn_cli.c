/* nasdet train-det and nasdet detect end to end on a tiny generated digits-det set: files of a
 * run, exact --resume, a warm start (--init) over --backbone, COCO results JSON that `nasdet eval` accepts, drawn pictures, and the
 * errors a user can make. */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/status.h"
#include "detector/frcnn_model.h"
#include "tests/util/testutil.h"

static char *run(const char *fmt, const char *a, const char *b, int *code) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, a, b, a, b, a, b);
    char *out = NULL;
    *code = tu_run_cli(cmd, &out);
    return out;
}

static void use_source_data(void) {
    /* the data generators find digits.png under demos/ (tests run from the repo root) */
    char cwd[2048], dir[2100];
    cr_assert(getcwd(cwd, sizeof cwd));
    snprintf(dir, sizeof dir, "%s/demos", cwd);
    setenv("NASDET_DATA_DIR", dir, 1);
}

static char *slurp(const char *dir, const char *name) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return tu_read_file(p, NULL);
}

static size_t file_size(const char *path, char **data) {
    size_t len = 0;
    *data = tu_read_file(path, &len);
    return *data ? len : 0;
}

#define TRAIN_ARGS                                                                                      \
    "train-det --train coco:%s/d/annotations/instances_train.json:%s/d/train "                          \
    "--val coco:%s/d/annotations/instances_val.json:%s/d/val --arch convnet --conv-width 4 "            \
    "--min-size 64 --max-size 64 --anchor-sizes 16,32 --anchor-ratios 0.5,1 --rpn-channels 8 "          \
    "--rpn-batch 32 --roi-batch 16 --head-dim 16 --post-nms-train 50 --post-nms-test 50 --epochs 2 "     \
    "--batch 2 --threads 1 --loader-threads 1 --warmup 2 --log-every 1 --seed 4 --out %s/%s"

Test(frcnn_cli, train_resume_detect_eval, .timeout = 240) {
    use_source_data();
    char *t = tu_tmpdir(), *out;
    int code;
    out = run("data digits-det --out %s/d --train 6 --val 3 --size 64 --seed 2", t, NULL, &code);
    cr_assert_eq(code, 0, "%s", out);
    free(out);

    /* an uninterrupted run */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, TRAIN_ARGS, t, t, t, t, t, "a");
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "layout c4") && strstr(out, "10 classes"), "%s", out);
    cr_expect(strstr(out, "val AP"), "%s", out);
    free(out);
    char ra[2048];
    snprintf(ra, sizeof ra, "%s/a", t);
    char *log = slurp(ra, "log.jsonl");
    cr_assert(log);
    /* 6 images, batch 2: 3 steps an epoch, one line each, then an eval line per epoch */
    int steps = 0, evals = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cr_assert(j, "log line is not JSON: %s", line);
        if (cJSON_GetObjectItem(j, "AP")) {
            evals++;
            cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(j, "AP50")));
        } else {
            steps++;
            const char *keys[] = {"step", "lr", "loss", "rpn_cls", "rpn_box", "roi_cls", "roi_box"};
            for (int k = 0; k < 7; k++) cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(j, keys[k])), "%s in %s", keys[k], line);
        }
        cJSON_Delete(j);
    }
    free(log);
    cr_expect_eq(steps, 6);
    cr_expect_eq(evals, 2);
    char *png = slurp(ra, "loss.png"), *ev = slurp(ra, "eval.json");
    cr_expect(png && memcmp(png, "\x89PNG", 4) == 0, "loss.png");
    cr_expect(ev && strstr(ev, "\"AP\""), "eval.json");
    free(png), free(ev);

    /* the same run stopped after 4 steps (mid epoch 2), then resumed: identical weights */
    snprintf(cmd, sizeof cmd, TRAIN_ARGS " --max-steps 4", t, t, t, t, t, "b");
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "stopped at step 4"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, TRAIN_ARGS " --resume", t, t, t, t, t, "b");
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "resuming"), "%s", out);
    free(out);
    char pa[2048], pb[2048], *da, *db;
    snprintf(pa, sizeof pa, "%s/a/model.safetensors", t);
    snprintf(pb, sizeof pb, "%s/b/model.safetensors", t);
    size_t la = file_size(pa, &da), lb = file_size(pb, &db);
    cr_assert(la > 0 && la == lb, "model sizes %zu %zu", la, lb);
    cr_expect(memcmp(da, db, la) == 0, "resumed run differs from the uninterrupted one");
    free(da), free(db);

    /* multi-scale training: also stopped and resumed exactly (the sides are drawn per batch
     * from the seed, not from the run's history) */
    snprintf(cmd, sizeof cmd, TRAIN_ARGS " --train-sizes 48,64,96", t, t, t, t, t, "c");
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, TRAIN_ARGS " --train-sizes 48,64,96 --max-steps 4", t, t, t, t, t, "e");
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, TRAIN_ARGS " --train-sizes 48,64,96 --resume", t, t, t, t, t, "e");
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    snprintf(pa, sizeof pa, "%s/c/model.safetensors", t);
    snprintf(pb, sizeof pb, "%s/e/model.safetensors", t);
    la = file_size(pa, &da), lb = file_size(pb, &db);
    cr_assert(la > 0 && la == lb, "model sizes %zu %zu", la, lb);
    cr_expect(memcmp(da, db, la) == 0, "resumed multi-scale run differs from the uninterrupted one");
    snprintf(pb, sizeof pb, "%s/a/model.safetensors", t);
    free(db);
    lb = file_size(pb, &db);
    cr_expect(la != lb || memcmp(da, db, la) != 0, "multi-scale training changed nothing");
    free(da), free(db);
    free(out);
    snprintf(cmd, sizeof cmd, TRAIN_ARGS " --train-sizes 64,8", t, t, t, t, t, "f");
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--train-sizes: 8 is out of range"), "%s", out);
    free(out);

    /* detect on the val folder with --gt, then nasdet eval of the JSON */
    snprintf(cmd, sizeof cmd,
             "detect --model %s/a/model.safetensors --score-thresh 0 --gt %s/d/annotations/instances_val.json "
             "--out-json %s/r.json --out-dir %s/drawn %s/d/val",
             t, t, t, t, t);
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "detect: 3 images"), "%s", out);
    free(out);
    char *rj = slurp(t, "r.json");
    cJSON *arr = cJSON_Parse(rj);
    cr_assert(cJSON_IsArray(arr), "r.json: %s", rj ? rj : "(missing)");
    for (cJSON *e = arr->child; e; e = e->next) {
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(e, "image_id")));
        double cat = cJSON_GetObjectItem(e, "category_id")->valuedouble;
        cr_assert(cat >= 1 && cat <= 10, "category %g", cat);
        cJSON *bb = cJSON_GetObjectItem(e, "bbox");
        cr_assert(cJSON_GetArraySize(bb) == 4);
        cr_assert(cJSON_GetArrayItem(bb, 2)->valuedouble >= 0);
        double s = cJSON_GetObjectItem(e, "score")->valuedouble;
        cr_assert(s >= 0 && s <= 1);
    }
    cJSON_Delete(arr);
    free(rj);
    char drawn[2048];
    snprintf(drawn, sizeof drawn, "%s/drawn/000001.jpg", t);
    char *dj = tu_read_file(drawn, NULL);
    cr_expect(dj, "drawn picture %s", drawn);
    free(dj);
    snprintf(cmd, sizeof cmd, "eval --gt %s/d/annotations/instances_val.json --dt %s/r.json", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "Average Precision"), "%s", out);
    free(out);
    /* an extra test size: said on stderr, and still a valid run */
    snprintf(cmd, sizeof cmd, "detect --model %s/a/model.safetensors --test-sizes 96 --test-small 20 %s/d/val", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "objects under 20 px also 96") && strstr(out, "detect: 3 images"), "%s", out);
    free(out);
    /* fused sizes, from the command line and stored in the model by det-settings */
    snprintf(cmd, sizeof cmd, "detect --model %s/a/model.safetensors --test-sizes 96 --test-fuse 8,40 %s/d/val", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "(objects from 8 px), 96 (objects under 40 px of each); boxes fused") &&
                  strstr(out, "detect: 3 images"),
              "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "det-settings %s/a/model.safetensors --test-sizes 96 --test-fuse 8,40 --det-score 0.02 --out %s/f.safetensors",
             t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "boxes fused") && strstr(out, "score > 0.02") && strstr(out, "wrote"), "%s", out);
    free(out);
    /* the rest of the metadata (training state) comes along */
    char *fm = slurp(t, "f.safetensors"), *am = slurp(t, "a/model.safetensors");
    cr_expect(am && strstr(am + 8, "\"train.step\""), "the trained model has no train.step"); /* past the length */
    cr_expect(fm && strstr(fm + 8, "\"train.step\"") && strstr(fm + 8, "test_fuse"), "det-settings dropped metadata");
    free(fm), free(am);
    snprintf(cmd, sizeof cmd, "det-settings %s/f.safetensors", t);
    cr_expect_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "(objects from 8 px), 96") && strstr(out, "score > 0.02"), "%s", out);
    free(out);
    /* the stored settings are what detect runs, and the weights are the same: the same boxes */
    snprintf(cmd, sizeof cmd, "detect --model %s/f.safetensors --score-thresh 0.02 --out-json %s/f1.json %s/d/val", t,
             t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "boxes fused"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "detect --model %s/a/model.safetensors --score-thresh 0.02 --test-sizes 96 --test-fuse 8,40 --out-json "
             "%s/f2.json %s/d/val",
             t, t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    free(out);
    char *f1 = slurp(t, "f1.json"), *f2 = slurp(t, "f2.json");
    cr_expect(f1 && f2 && strcmp(f1, f2) == 0, "stored settings give other detections");
    free(f1), free(f2);
    snprintf(cmd, sizeof cmd, "det-settings %s/f.safetensors --test-fuse 8", t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--test-fuse") && strstr(out, "MIN,MAX"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "det-settings %s/f.safetensors --det-score 1.5", t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "score_thresh"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "det-settings %s/d/annotations/instances_val.json", t);
    cr_expect_eq(tu_run_cli(cmd, &out), 1, "%s", out);
    free(out);
    tu_rmtree(t);
    free(t);
}

/* A small untrained model file (via the library) for the error paths. */
static void write_model(const char *path) {
    det_model_config c;
    det_model_config_default(&c);
    c.backbone = DET_BACKBONE_CONVNET, c.conv_width = 4, c.min_size = c.max_size = 64;
    c.rpn_channels = 8, c.head_dim = 8;
    int64_t ids[2] = {1, 2};
    const char *names[2] = {"a", "b"};
    cr_assert_eq(det_model_config_set_classes(&c, 2, ids, names), 0);
    det_model *m;
    cr_assert_eq(det_model_new(&c, 1, &m), 0, "%s", nd_last_error());
    cr_assert_eq(det_model_save(m, path, NULL, 0), 0, "%s", nd_last_error());
    det_model_free(m);
    det_model_config_free(&c);
}

/* `train-det` on T/d's train set with a convnet and `opts` is a usage error (exit 2) whose
 * message holds `want` (unless NULL). */
static void expect_train_det_usage(const char *t, const char *opts, const char *want) {
    char cmd[4096], *out;
    snprintf(cmd, sizeof cmd,
             "train-det --train coco:%s/d/annotations/instances_train.json:%s/d/train --arch convnet %s --out %s/r", t,
             t, opts, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s: %s", opts, out);
    if (want) cr_expect(strstr(out, want), "%s: %s", opts, out);
    free(out);
}

Test(frcnn_cli, detect_skips_unreadable_and_reports_errors, .timeout = 60) {
    use_source_data();
    char *t = tu_tmpdir(), *out, cmd[4096], p[2048];
    int code;
    snprintf(p, sizeof p, "%s/m.safetensors", t);
    write_model(p);
    out = run("data digits-det --out %s/d --train 2 --val 1 --size 64 --seed 3", t, NULL, &code);
    cr_assert_eq(code, 0, "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/d/train/broken.jpg", t);
    tu_write_file(p, "this is not a JPEG");
    snprintf(p, sizeof p, "%s/list.txt", t);
    char list[1024];
    snprintf(list, sizeof list, "# images\n%s/d/val/000001.jpg\n\n", t);
    tu_write_file(p, list);
    snprintf(cmd, sizeof cmd, "detect --model %s/m.safetensors --out-json %s/r.json %s/d/train @%s/list.txt", t, t, t, t);
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "broken.jpg") && strstr(out, "skipped"), "%s", out);
    cr_expect(strstr(out, "detect: 3 images") && strstr(out, "1 unreadable skipped"), "%s", out);
    free(out);
    char *rj = slurp(t, "r.json");
    cr_expect(rj && rj[0] == '[', "r.json");
    free(rj);

    /* errors */
    snprintf(cmd, sizeof cmd, "detect --model %s/nope.safetensors %s/d/val", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 1, "%s", out);
    cr_expect(strstr(out, "nope.safetensors"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "detect --model %s/m.safetensors", t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "detect --model %s/m.safetensors --score-thresh 2 %s/d/val", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "detect --model %s/d/annotations/instances_val.json %s/d/val", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 1, "%s", out);
    free(out);
    /* test sizes: a list of sizes above the model's input size (64) */
    snprintf(cmd, sizeof cmd, "detect --model %s/m.safetensors --test-sizes 96,x %s/d/val", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "--test-sizes"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "detect --model %s/m.safetensors --test-sizes 32 %s/d/val", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "above min_size"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "detect --model %s/m.safetensors %s/d/train/broken.jpg", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 1, "%s", out);
    cr_expect(strstr(out, "no image could be read"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "train-det --train %s/d/annotations/instances_train.json --arch convnet --out %s/r", t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    cr_expect(strstr(out, "coco:ANNOTATIONS.json:IMAGE_DIR"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "train-det --train coco:%s/d/annotations/instances_train.json:%s/d/train --out %s/r", t, t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 2, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "train-det --train coco:%s/missing.json:%s/d/train --arch convnet --out %s/r", t, t, t);
    cr_expect_eq(tu_run_cli(cmd, &out), 1, "%s", out);
    cr_expect(strstr(out, "missing.json"), "%s", out);
    free(out);
    expect_train_det_usage(t, "--layout nasnet", NULL); /* the nasnet layout needs a NASNet */
    expect_train_det_usage(t, "--roi-fuse 16.5", "--roi-fuse: 16.5 is not a whole number");
    expect_train_det_usage(t, "--feature-stride 4", "--feature-stride"); /* 8 or 16 only */
    tu_rmtree(t);
    free(t);
}

/* Runs one CLI command built from fmt and asserts that it succeeded. */
static void cli_ok(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char *out = NULL;
    cr_assert_eq(tu_run_cli(cmd, &out), 0, "%s: %s", cmd, out ? out : "");
    free(out);
}

/* Largest difference between the trainable weights of two detector models of one config. */
static double max_weight_diff(const char *a, const char *b) {
    det_model *ma = NULL, *mb = NULL;
    cr_assert_eq(det_model_load(a, &ma, NULL), 0, "%s: %s", a, nd_last_error());
    cr_assert_eq(det_model_load(b, &mb, NULL), 0, "%s: %s", b, nd_last_error());
    nn_params *pa = det_model_params(ma), *pb = det_model_params(mb);
    cr_assert_eq(nn_params_count(pa), nn_params_count(pb));
    double worst = 0.0;
    for (int64_t i = 0; i < nn_params_count(pa); i++) {
        if (nn_params_flags(pa, i) & NN_PARAM_BUFFER) continue;
        const nn_tensor *x = nn_params_at(pa, i), *y = nn_params_at(pb, i);
        cr_assert_eq(x->numel, y->numel);
        for (int64_t k = 0; k < x->numel; k++) {
            double d = fabs((double)x->data[k] - (double)y->data[k]);
            if (d > worst) worst = d;
        }
    }
    det_model_free(ma), det_model_free(mb);
    return worst;
}

#define NAS_ARGS                                                                                        \
    "train-det --train coco:%s/d/annotations/instances_train.json:%s/d/train "                          \
    "--backbone %s/bb/model.safetensors --layout c4 --feature-stride 8 --min-size 64 --max-size 64 "    \
    "--anchor-sizes 16,32 --anchor-ratios 0.5,1 --rpn-channels 8 --rpn-batch 32 --roi-batch 16 "        \
    "--head-dim 16 --post-nms-train 50 --batch 2 --threads 1 --loader-threads 1 --warmup 0 --seed 4 "

/* A warm start (--init) given with --backbone keeps the detector's own trained backbone: the
 * classifier checkpoint is loaded first and the detector's weights over it. With a learning rate
 * too small to move a float, the warm-started run ends where its init model ended, while a run
 * from the backbone alone ends far from it. */
Test(frcnn_cli, init_with_backbone_keeps_the_detector_weights, .timeout = 120) {
    use_source_data();
    char *t = tu_tmpdir(), *out;
    int code;
    out = run("data digits-cls --out %s/c --train 16 --test 8 --seed 1", t, NULL, &code);
    cr_assert_eq(code, 0, "%s", out);
    free(out);
    out = run("data digits-det --out %s/d --train 4 --val 2 --size 64 --seed 2", t, NULL, &code);
    cr_assert_eq(code, 0, "%s", out);
    free(out);
    cli_ok("train --arch nasnet-a-mobile --N 1 --F 4 --input 32 --no-aux --data cifar:%s/c --batch 8 --steps 1 "
           "--eval-every 0 --threads 1 --out %s/bb",
           t, t);
    cli_ok(NAS_ARGS "--lr 0.05 --max-steps 4 --out %s/a", t, t, t, t);
    cli_ok(NAS_ARGS "--lr 1e-12 --max-steps 1 --init %s/a/model.safetensors --out %s/b", t, t, t, t, t);
    cli_ok(NAS_ARGS "--lr 1e-12 --max-steps 1 --out %s/c2", t, t, t, t);
    char a[2100], b[2100], c[2100];
    snprintf(a, sizeof a, "%s/a/model.safetensors", t);
    snprintf(b, sizeof b, "%s/b/model.safetensors", t);
    snprintf(c, sizeof c, "%s/c2/model.safetensors", t);
    double warm = max_weight_diff(a, b), cold = max_weight_diff(a, c);
    cr_expect(warm < 1e-6, "the warm start moved the weights by %g", warm);
    cr_expect(cold > 1e-3, "four steps at lr 0.05 moved no weight more than %g", cold);
    tu_rmtree(t);
    free(t);
}
