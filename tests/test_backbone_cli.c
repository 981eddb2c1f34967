/* The backbone commands end to end: `nasdet info` (TF-slim's numbers, JSON, errors),
 * `nasdet train` on a tiny digits set (run folder, log, plot, result, --resume rules,
 * --eval-only), `nasdet classify` and `nasdet import`. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"
#include "tests/util/testutil.h"

static void data_dir(void) {
    if (!getenv("NASDET_DATA_DIR")) {
        char *cwd = realpath(".", NULL);
        char *d = nd_path_join(cwd, "demos");
        setenv("NASDET_DATA_DIR", d, 1);
        free(d);
        free(cwd);
    }
}

static char *run_ok(const char *args) {
    char *out = NULL;
    int rc = tu_run_cli(args, &out);
    cr_assert_eq(rc, 0, "nasdet %s -> %d:\n%s", args, rc, out);
    return out;
}

static int run_rc(const char *args, char **out) { return tu_run_cli(args, out); }

Test(backbone_cli, info_prints_tf_slim_numbers) {
    char *o = run_ok("info --arch nasnet-a-mobile --json");
    cr_expect(strstr(o, "\"params\": 5289978") && strstr(o, "\"macs\": 563638816"), "%s", o);
    free(o);
    o = run_ok("info --arch nasnet-a-large");
    cr_expect(strstr(o, "88,753,150") && strstr(o, "23,783,414,658") && strstr(o, "6 @ 4032"), "%s", o);
    free(o);
    o = run_ok("info --arch nasnet-a-cifar --aux --json");
    cr_expect(strstr(o, "\"params\": 4978036"), "%s", o);
    free(o);
    o = run_ok("info --genotype nasnet-a --N 2 --F 32 --classes 10 --json --verbose");
    cr_expect(strstr(o, "\"params\": 1294698") && strstr(o, "\"layers\": [") &&
                  strstr(o, "cell_0/comb_iter_0/left/separable_5x5_1/depthwise_weights"),
              "%.400s", o);
    free(o);
    char *err = NULL;
    cr_expect_eq(run_rc("info --arch nasnet-z", &err), 1);
    cr_expect(strstr(err, "unknown architecture") != NULL, "%s", err);
    free(err);
    /* --aux on a map too small for the aux head's pooling is an error; without --aux the
     * network is counted as training builds it then (no aux head). */
    cr_expect_eq(run_rc("info --arch nasnet-a-cifar --input 8 --aux", &err), 1);
    cr_expect(strstr(err, "aux") != NULL, "%s", err);
    free(err);
    o = run_ok("info --arch nasnet-a-mobile --N 1 --F 8 --input 32 --classes 10 --json");
    cr_expect(strstr(o, "\"params\": 76616") && strstr(o, "\"aux_params\": 0"), "%s", o);
    free(o);
    cr_expect_eq(run_rc("info", &err), 2);
    free(err);
}

Test(backbone_cli, train_eval_only_classify, .timeout = 300) {
    data_dir();
    char *dir = tu_tmpdir();
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "data digits-cls --out %s/d --train 64 --test 32", dir);
    free(run_ok(cmd));
    snprintf(cmd, sizeof cmd,
             "train --data cifar:%s/d --N 1 --F 4 --no-aux --epochs 2 --batch 16 --train-limit 32 --lr 0.05 --out %s/run "
             "--threads 2 --bn-momentum 0.5",
             dir, dir);
    char *o = run_ok(cmd);
    cr_expect(strstr(o, "\"test_images\": 32") && strstr(o, "\"epochs\": 2"), "%s", o);
    free(o);
    const char *files[] = {"log.jsonl", "curves.png", "checkpoint.safetensors", "model.safetensors", "result.json"};
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof cmd, "%s/run/%s", dir, files[i]);
        cr_expect(nd_path_exists(cmd), "%s missing", cmd);
    }
    snprintf(cmd, sizeof cmd, "%s/run/log.jsonl", dir);
    char *log = tu_read_file(cmd, NULL);
    cr_assert_not_null(log);
    int lines = 0;
    for (char *p = log; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 2, "%s", log);
    cr_expect(strstr(log, "\"epoch\": 2") && strstr(log, "\"lr\"") && strstr(log, "\"time\""), "%s", log);
    free(log);
    /* --bn-momentum is kept in the model's config; outside (0, 1] it is refused. */
    snprintf(cmd, sizeof cmd, "%s/run/model.safetensors", dir);
    size_t model_bytes = 0;
    char *model = tu_read_file(cmd, &model_bytes);
    cr_assert_not_null(model);
    cr_expect(memmem(model, model_bytes, "bn_momentum\\\":0.5", strlen("bn_momentum\\\":0.5")) != NULL,
              "bn_momentum 0.5 not in the model's config");
    free(model);
    char *err = NULL;
    snprintf(cmd, sizeof cmd, "train --data cifar:%s/d --N 1 --F 4 --bn-momentum 2 --out %s/bad", dir, dir);
    cr_expect_eq(run_rc(cmd, &err), 1);
    cr_expect(strstr(err, "bn_momentum") != NULL, "%s", err);
    free(err);
    /* The same run folder again without --resume is refused; with --resume of a finished run the
     * log keeps its two lines. */
    snprintf(cmd, sizeof cmd,
             "train --data cifar:%s/d --N 1 --F 4 --no-aux --epochs 2 --batch 16 --lr 0.05 --out %s/run", dir, dir);
    cr_expect_eq(run_rc(cmd, &err), 1);
    cr_expect(strstr(err, "--resume") != NULL, "%s", err);
    free(err);
    /* A resume with another network is refused. */
    snprintf(cmd, sizeof cmd,
             "train --data cifar:%s/d --N 1 --F 6 --no-aux --epochs 2 --batch 16 --lr 0.05 --out %s/run --resume", dir,
             dir);
    cr_expect_eq(run_rc(cmd, &err), 1);
    cr_expect(strstr(err, "another network") != NULL, "%s", err);
    free(err);
    /* --eval-only reproduces the final test accuracy. */
    snprintf(cmd, sizeof cmd, "%s/run/result.json", dir);
    char *res = tu_read_file(cmd, NULL);
    cr_assert_not_null(res);
    snprintf(cmd, sizeof cmd, "train --eval-only --checkpoint %s/run/checkpoint.safetensors --data cifar:%s/d", dir,
             dir);
    o = run_ok(cmd);
    char acc[64];
    const char *p = strstr(res, "\"test_accuracy\": ");
    cr_assert_not_null(p);
    snprintf(acc, sizeof acc, "%.40s", p);
    char *comma = strchr(acc, ',');
    cr_assert_not_null(comma);
    *comma = '\0';
    cr_expect(strstr(o, acc) != NULL, "eval-only %s vs run %s", o, acc);
    /* ... and its loss, bit for bit: the run evaluated in slices of its training batch (16), the
     * evaluation alone in slices of 32. */
    p = strstr(res, "\"test_loss\": ");
    cr_assert_not_null(p);
    snprintf(acc, sizeof acc, "%.40s", p);
    comma = strchr(acc, ',');
    cr_assert_not_null(comma);
    *comma = '\0';
    cr_expect(strstr(o, acc) != NULL, "eval-only %s vs run %s", o, acc);
    free(o);
    /* The run reports its peak resident memory. */
    p = strstr(res, "\"peak_rss_mb\": ");
    cr_assert_not_null(p, "%s", res);
    double peak = atof(p + strlen("\"peak_rss_mb\": "));
    cr_expect(peak > 1 && peak < 4096, "peak_rss_mb %g", peak);
    free(res);
    /* classify with the run's model and the data set's names. */
    snprintf(cmd, sizeof cmd,
             "classify --model %s/run/model.safetensors --labels %s/d/batches.meta.txt --json --topk 10 "
             "demos/images/digits-val-000001.jpg",
             dir, dir);
    o = run_ok(cmd);
    cr_expect(strstr(o, "\"probability\"") && strstr(o, "\"class\": 9") != NULL, "%s", o);
    free(o);
    snprintf(cmd, sizeof cmd, "classify --model %s/run/model.safetensors --preprocess none demos/images/apple.jpg",
             dir);
    cr_expect_eq(run_rc(cmd, &err), 1);
    cr_expect(strstr(err, "input size") != NULL, "%s", err);
    free(err);
    tu_rmtree(dir);
    free(dir);
}

Test(backbone_cli, import_then_classify) {
    char *dir = tu_tmpdir();
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "import --from timm tests/fixtures/bb_import/timm.safetensors --arch nasnet-a-large --N 1 --F 4 --input 96 "
             "--classes 5 --stem-multiplier 1 --out %s/m.safetensors",
             dir);
    free(run_ok(cmd));
    snprintf(cmd, sizeof cmd, "classify --model %s/m.safetensors --topk 5 --json demos/images/apple.jpg", dir);
    char *o = run_ok(cmd);
    cr_expect(strstr(o, "\"class\": 4") && strstr(o, "\"label\": \"class 0\""), "%s", o);
    free(o);
    char *err = NULL;
    snprintf(cmd, sizeof cmd,
             "import --from timm tests/fixtures/bb_import/timm.safetensors --arch nasnet-a-large --out %s/x.safetensors",
             dir);
    cr_expect_eq(run_rc(cmd, &err), 1);
    cr_expect(strstr(err, "timm.safetensors") != NULL, "%s", err);
    free(err);
    tu_rmtree(dir);
    free(dir);
}
