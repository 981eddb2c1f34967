/* `nasdet search` end to end: usage errors, a tiny real search with resume, --rank, --plot. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"
#include "search/search.h"
#include "search/search_driver.h"
#include "tests/util/testutil.h"

/* The CLI finds digits.png through nd_data_path; from a build folder other than bin/ the
 * source tree's demos/ must be named. Tests run from the repository root. */
static void data_dir(void) {
    if (!getenv("NASDET_DATA_DIR")) {
        char *cwd = realpath(".", NULL);
        char *d = nd_path_join(cwd, "demos");
        setenv("NASDET_DATA_DIR", d, 1);
        free(d);
        free(cwd);
    }
}

static int cli(const char *args, char **out) {
    int rc = tu_run_cli(args, out);
    return rc;
}

static int count_lines(const char *path) {
    char *text = tu_read_file(path, NULL);
    int n = 0;
    for (char *p = text; p && *p; p++) n += *p == '\n';
    free(text);
    return n;
}

Test(search_cli, usage_errors) {
    char *out = NULL;
    cr_expect_eq(cli("search --help", &out), 0);
    cr_expect(out && strstr(out, "--strategy") && strstr(out, "--resume"), "%s", out);
    free(out);
    cr_expect_eq(cli("search --out /tmp/nasdet-srch-never", &out), 2, "--data is required");
    free(out);
    cr_expect_eq(cli("search --data cifar:/tmp --out /tmp/nasdet-srch-never --strategy evolution", &out), 2);
    free(out);
    cr_expect_eq(cli("search --data cifar:/tmp --out /tmp/nasdet-srch-never --children 0", &out), 2);
    cr_expect(out && strstr(out, "--children 0"), "%s", out);
    free(out);
    cr_expect_eq(cli("search --data coco:/tmp --out /tmp/nasdet-srch-never", &out), 2);
    free(out);
    cr_expect_eq(cli("search --plot --out /tmp/nasdet-srch-never.png", &out), 2, "--plot needs runs");
    free(out);
    /* An unusable device stops the search before any child (not 100 children of reward 0). */
    cr_expect_eq(cli("search --data cifar:/tmp --out /tmp/nasdet-srch-never --device cuda:99", &out), 1);
    cr_expect(out && strstr(out, "cuda"), "the message names the device: %s", out);
    free(out);
    cr_expect_eq(cli("search --data cifar:/nonexistent-srch --out /tmp/nasdet-srch-never", &out), 1);
    cr_expect(out && strstr(out, "/nonexistent-srch"), "the message names the folder: %s", out);
    free(out);
    cr_expect(!nd_path_exists("/tmp/nasdet-srch-never/children.jsonl"));
}

/* A search small enough for a test: 4 children of 2 SGD steps on 300 digits. */
Test(search_cli, tiny_search_resume_rank_and_plot) {
    data_dir();
    char *dir = tu_tmpdir();
    char *data = nd_path_join(dir, "digits"), *run = nd_path_join(dir, "run"), *run2 = nd_path_join(dir, "rnd");
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "data digits-cls --out '%s' --train 300 --test 10", data);
    cr_assert_eq(cli(cmd, &out), 0, "%s", out);
    free(out);
    const char *child = "--child-steps 2 --child-N 1 --child-F 4 --child-batch 16 --child-val 100 "
                        "--child-val-subset 50 --threads 1 --batch 2 --hidden 16";
    snprintf(cmd, sizeof cmd, "search --data cifar:'%s' --out '%s' --children 3 --seed 5 %s", data, run, child);
    cr_assert_eq(cli(cmd, &out), 0, "%s", out);
    cr_expect(out && strstr(out, "3/3 children"), "%s", out);
    cr_expect(out && strstr(out, "children/hour"), "%s", out);
    free(out);
    char *log = nd_path_join(run, "children.jsonl");
    cr_expect_eq(count_lines(log), 3);
    /* The same command again is refused; with --resume and a larger budget it continues. */
    cr_expect_eq(cli(cmd, &out), 1);
    cr_expect(out && strstr(out, "resume"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "search --data cifar:'%s' --out '%s' --children 4 --seed 5 %s --resume", data, run,
             child);
    cr_assert_eq(cli(cmd, &out), 0, "%s", out);
    free(out);
    cr_expect_eq(count_lines(log), 4);
    srch_child *ch;
    int64_t n;
    cr_assert_eq(srch_children_read(log, &ch, &n, NULL), 0);
    for (int64_t i = 0; i < n; i++) {
        cr_expect_eq(ch[i].job_id, i);
        cr_expect(ch[i].result.ok, "child %lld: %s", (long long)i, ch[i].result.message);
        cr_expect(ch[i].result.reward >= 0 && ch[i].result.reward <= 1);
        cr_expect_gt(ch[i].result.params, 0);
        cr_expect_gt(ch[i].result.macs, 0);
        cr_expect_gt(ch[i].result.seconds, 0);
    }
    free(ch);
    const char *files[] = {"best.json", "top.json", "rewards.png", "best_cells.dot", "checkpoint.safetensors"};
    for (int i = 0; i < 5; i++) {
        char *p = nd_path_join(run, files[i]);
        cr_expect(nd_path_exists(p), "%s written", files[i]);
        free(p);
    }
    /* Another child setting is refused on resume. */
    snprintf(cmd, sizeof cmd, "search --data cifar:'%s' --out '%s' --children 5 --seed 5 %s --child-F 6 --resume",
             data, run, child);
    cr_expect_eq(cli(cmd, &out), 1);
    cr_expect(out && strstr(out, "other settings"), "%s", out);
    free(out);
    /* A set too small for the held-out part is refused before any child runs. */
    snprintf(cmd, sizeof cmd, "search --data cifar:'%s' --out '%s' --children 2 --child-val 5000", data, run2);
    cr_expect_eq(cli(cmd, &out), 1);
    cr_expect(out && strstr(out, "5000 validation images"), "%s", out);
    free(out);
    cr_expect(!nd_path_exists(run2), "nothing written for a refused search");
    /* Random search with the same budget, then both runs in one picture. */
    snprintf(cmd, sizeof cmd, "search --data cifar:'%s' --out '%s' --children 2 --strategy random %s", data, run2,
             child);
    cr_assert_eq(cli(cmd, &out), 0, "%s", out);
    free(out);
    char *png = nd_path_join(dir, "cmp.png");
    snprintf(cmd, sizeof cmd, "search --plot '%s' '%s' --out '%s'", run, run2, png);
    cr_assert_eq(cli(cmd, &out), 0, "%s", out);
    cr_expect(out && strstr(out, "top-5 mean") && strstr(out, "children     4"), "%s", out);
    free(out);
    cr_expect(nd_path_exists(png));
    /* --rank trains given genotypes as children. */
    snprintf(cmd, sizeof cmd,
             "search --data cifar:'%s' --rank nasnet-a,tests/fixtures/srch_cells/all_pool.json --seeds 1 %s", data,
             child);
    cr_assert_eq(cli(cmd, &out), 0, "%s", out);
    cr_expect(out && strstr(out, "nasnet-a") && strstr(out, "all_pool.json") && strstr(out, "mean +- std"), "%s",
              out);
    free(out);
    free(png);
    free(log);
    free(data);
    free(run);
    free(run2);
    tu_rmtree(dir);
    free(dir);
}
