#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "search/search.h"
#include "tests/util/testutil.h"

static void make_child(int i, srch_child *c) {
    memset(c, 0, sizeof *c);
    srch_space s;
    srch_space_init(&s, i % 2 ? SRCH_SPACE_B : SRCH_SPACE_A);
    nd_rng r;
    nd_rng_seed(&r, (uint64_t)i + 11);
    int d[50];
    cr_assert_eq(srch_random_sample(&s, &r, d, srch_space_n_decisions(&s), &c->genotype), 0);
    c->job_id = i;
    c->batch = i / 2;
    c->seed = 0xfedcba9876543210ull + (uint64_t)i;
    c->result.ok = i != 2;
    c->result.reward = i == 2 ? 0.0 : 0.1 * i + 1e-12;
    c->result.params = 12345 + i;
    c->result.macs = 678901234567 + i;
    c->result.seconds = 19.75 + i;
    c->result.worker = i % 3;
    if (i == 2) snprintf(c->result.message, sizeof c->result.message, "diverged: \"NaN\" loss\tat step 3");
}

static void expect_same(const srch_child *a, const srch_child *b) {
    cr_expect_eq(a->job_id, b->job_id);
    cr_expect_eq(a->batch, b->batch);
    cr_expect_eq(a->seed, b->seed);
    cr_expect_eq(a->result.ok, b->result.ok);
    cr_expect_eq(a->result.reward, b->result.reward);
    cr_expect_eq(a->result.params, b->result.params);
    cr_expect_eq(a->result.macs, b->result.macs);
    cr_expect_eq(a->result.seconds, b->result.seconds);
    cr_expect_eq(a->result.worker, b->result.worker);
    cr_expect_str_eq(a->result.message, b->result.message);
    cr_expect(nas_genotype_equal(&a->genotype, &b->genotype));
}

static void quiet(nd_log_level level, const char *message, void *user) {
    (void)level;
    (void)message;
    (*(int *)user)++;
}

Test(search_children, append_read_and_cut_last_line) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "children.jsonl");
    srch_child c[4];
    for (int i = 0; i < 4; i++) {
        make_child(i, &c[i]);
        cr_assert_eq(srch_children_append(path, &c[i]), 0, "%s", nd_last_error());
    }
    srch_child *got;
    int64_t n;
    int cut = -1;
    cr_assert_eq(srch_children_read(path, &got, &n, &cut), 0, "%s", nd_last_error());
    cr_assert_eq(n, 4);
    cr_expect_eq(cut, 0);
    for (int i = 0; i < 4; i++) expect_same(&c[i], &got[i]);
    free(got);
    /* Each record is one line naming the genotype as an object. */
    char *text = tu_read_file(path, NULL);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 4);
    cr_expect(strstr(text, "\"genotype\":{\"input_states\":") != NULL);
    /* A kill in mid-write: the 5th line is half there. */
    srch_child c4;
    make_child(4, &c4);
    char *line;
    cr_assert_eq(srch_child_to_json(&c4, &line), 0);
    size_t half = strlen(line) / 2;
    FILE *fp = fopen(path, "ab");
    fwrite(line, 1, half, fp);
    fclose(fp);
    int warnings = 0;
    nd_log_set_handler(quiet, &warnings);
    cr_assert_eq(srch_children_read(path, &got, &n, &cut), 0, "%s", nd_last_error());
    cr_expect_eq(n, 4);
    cr_expect_eq(cut, 1);
    cr_expect_eq(warnings, 1);
    free(got);
    /* Repair drops the cut line, so the next append starts on a line of its own. */
    size_t dropped = 0;
    cr_assert_eq(srch_children_repair(path, &dropped), 0);
    cr_expect_eq(dropped, half);
    cr_assert_eq(srch_children_append(path, &c4), 0);
    cr_assert_eq(srch_children_read(path, &got, &n, &cut), 0, "%s", nd_last_error());
    cr_expect_eq(n, 5);
    cr_expect_eq(cut, 0);
    expect_same(&c4, &got[4]);
    free(got);
    /* A whole record whose newline did not land is kept and terminated. */
    fp = fopen(path, "ab");
    fputs(line, fp);
    fclose(fp);
    cr_assert_eq(srch_children_read(path, &got, &n, &cut), 0);
    cr_expect_eq(n, 6);
    cr_expect_eq(cut, 0);
    free(got);
    cr_assert_eq(srch_children_repair(path, &dropped), 0);
    cr_expect_eq(dropped, 0);
    free(text);
    text = tu_read_file(path, NULL);
    cr_expect_eq(text[strlen(text) - 1], '\n');
    nd_log_set_handler(NULL, NULL);
    free(text);
    free(line);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

Test(search_children, bad_line_in_the_middle_is_an_error) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "children.jsonl");
    srch_child c;
    make_child(0, &c);
    cr_assert_eq(srch_children_append(path, &c), 0);
    cr_assert_eq(nd_file_append_line(path, "{\"job\": 1, \"batch\": 0}"), 0);
    cr_assert_eq(srch_children_append(path, &c), 0);
    srch_child *got;
    int64_t n;
    int cut;
    cr_expect_eq(srch_children_read(path, &got, &n, &cut), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "children.jsonl:2: seed") != NULL, "%s", nd_last_error());
    cr_expect_null(got);
    cr_expect_eq(srch_children_read("/nonexistent/children.jsonl", &got, &n, &cut), ND_ERR_IO);
    cr_expect_eq(srch_children_repair("/nonexistent-dir-x/children.jsonl", NULL), 0, "nothing to repair");
    /* An empty file has no records. */
    cr_assert_eq(tu_write_file(path, ""), 0);
    cr_assert_eq(srch_children_read(path, &got, &n, &cut), 0);
    cr_expect_eq(n, 0);
    cr_expect_null(got);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

Test(search_children, reconcile_queue_with_log) {
    /* Results appended to the log after the last queue checkpoint are not trained again. */
    srch_queue *q;
    cr_assert_eq(srch_queue_new(&q), 0);
    srch_child c[3];
    for (int i = 0; i < 3; i++) {
        make_child(2 * i, &c[i]); /* even: A space genotypes */
        c[i].job_id = i;
        c[i].batch = 0;
        int64_t id;
        cr_assert_eq(srch_queue_push(q, 0, &c[i].genotype, c[i].seed, &id), 0);
        cr_assert_eq(id, i);
    }
    srch_job j;
    cr_assert_eq(srch_queue_pull(q, 0, &j), 1);
    cr_assert_eq(srch_queue_pull(q, 1, &j), 1);
    cr_assert_eq(srch_queue_complete(q, 0, &c[0].result), 0);
    /* The log has jobs 0 and 1, and a record for a job the queue never had. */
    srch_child extra = c[2];
    extra.job_id = 77;
    srch_child logged[3] = {c[0], c[1], extra};
    srch_child wrong = c[2];
    wrong.seed ^= 1;
    int warnings = 0;
    nd_log_set_handler(quiet, &warnings);
    cr_expect_eq(srch_queue_reconcile(q, &wrong, 1), 0, "a record from another run is not used");
    cr_expect_eq(warnings, 1);
    nd_log_set_handler(NULL, NULL);
    cr_expect_eq(srch_queue_reconcile(q, logged, 3), 1);
    cr_assert_eq(srch_queue_get(q, 1, &j), 0);
    cr_expect_eq(j.state, SRCH_JOB_DONE);
    cr_expect_eq(j.result.reward, c[1].result.reward);
    cr_expect_eq(srch_queue_requeue_worker(q, SRCH_ANY_WORKER), 0);
    cr_expect_eq(srch_queue_count(q, SRCH_JOB_PENDING), 1);
    /* A done job becomes a log record with everything in it. */
    srch_child back;
    srch_child_from_job(&j, &back);
    expect_same(&c[1], &back);
    srch_queue_free(q);
}
