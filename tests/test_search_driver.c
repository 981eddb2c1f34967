/* The search driver with a fast synthetic child: logging, reports, failures, determinism, and
 * kill/resume equivalence with an uninterrupted run (real SIGKILLs in forked processes). */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/rng.h"
#include "common/status.h"
#include "search/search.h"
#include "search/search_driver.h"
#include "tests/util/testutil.h"

/* Synthetic child: reward = 0.8 x (fraction of separable convs) + 0.2 x noise(seed); a child
 * whose seed is 0 mod 11 "fails to build" (ok = 0), one that is 5 mod 13 returns an error
 * status; the process kills itself with SIGKILL when its `kill_at`-th child starts. */
static int calls, kill_at;

static int synth_train(void *user, const nas_genotype *g, uint64_t seed, srch_result *r) {
    (void)user;
    if (++calls == kill_at) raise(SIGKILL);
    int ops = 0, sep = 0;
    for (int c = 0; c < NAS_CELL_COUNT; c++)
        for (int b = 0; b < g->n_blocks; b++)
            for (int k = 0; k < 2; k++) {
                ops++;
                sep += nas_op_is_separable(g->cell[c].block[b].op[k]);
            }
    if (seed % 11 == 0) {
        r->ok = 0;
        snprintf(r->message, sizeof r->message, "synthetic build failure");
        return 0;
    }
    if (seed % 13 == 5) return nd_fail(ND_ERR_NUMERIC, "synthetic divergence");
    nd_rng rng;
    nd_rng_seed(&rng, seed);
    r->ok = 1;
    r->reward = 0.8 * sep / ops + 0.2 * nd_rng_uniform(&rng);
    r->params = 1000 + sep;
    r->macs = 100000 + ops;
    return 0;
}

static void quiet(nd_log_level level, const char *message, void *user) {
    (void)level;
    (void)message;
    (void)user;
}

static srch_driver_config config(const char *dir, srch_strategy s, int64_t children) {
    srch_driver_config c;
    srch_driver_config_default(&c);
    c.run_dir = dir;
    c.strategy = s;
    c.children = children;
    c.hidden = 32;
    c.seed = 42;
    c.top_k = 10;
    c.child_desc = "{\"synthetic\":1}";
    return c;
}

static int run(const srch_driver_config *c, int resume, srch_run_stats *st) {
    srch_child_trainer t = {synth_train, NULL};
    srch_workers *w;
    cr_assert_eq(srch_workers_local_new(&t, &w), 0);
    int rc = srch_driver_run(c, w, resume, st);
    srch_workers_free(w);
    return rc;
}

/* children.jsonl in job order; every job exactly once. */
static srch_child *read_log(const char *dir, int64_t *n) {
    char *path = nd_path_join(dir, "children.jsonl");
    srch_child *ch;
    int cut = 0;
    cr_assert_eq(srch_children_read(path, &ch, n, &cut), 0, "%s", nd_last_error());
    free(path);
    srch_child *byjob = calloc((size_t)*n, sizeof *byjob);
    char *seen = calloc((size_t)*n, 1);
    for (int64_t i = 0; i < *n; i++) {
        int64_t j = ch[i].job_id;
        cr_assert(j >= 0 && j < *n, "job id %lld out of 0..%lld", (long long)j, (long long)*n - 1);
        cr_assert(!seen[j], "job %lld logged twice", (long long)j);
        seen[j] = 1;
        byjob[j] = ch[i];
    }
    free(seen);
    free(ch);
    return byjob;
}

static void expect_same_runs(const char *a, const char *b, int64_t want) {
    int64_t na, nb;
    srch_child *ca = read_log(a, &na), *cb = read_log(b, &nb);
    cr_assert_eq(na, want);
    cr_assert_eq(nb, want);
    for (int64_t i = 0; i < na; i++) {
        cr_expect(nas_genotype_equal(&ca[i].genotype, &cb[i].genotype), "job %lld: different architecture",
                  (long long)i);
        cr_expect_eq(ca[i].seed, cb[i].seed);
        cr_expect_eq(ca[i].batch, cb[i].batch);
        cr_expect_eq(ca[i].result.reward, cb[i].result.reward);
    }
    free(ca);
    free(cb);
}

Test(search_driver, run_logs_every_child_and_writes_reports) {
    nd_log_set_handler(quiet, NULL);
    char *dir = tu_tmpdir();
    srch_driver_config c = config(dir, SRCH_STRATEGY_PPO, 50);
    srch_run_stats st;
    cr_assert_eq(run(&c, 0, &st), 0, "%s", nd_last_error());
    cr_expect_eq(st.children_done, 50);
    cr_expect_eq(st.children_this_call, 50);
    int64_t n;
    srch_child *ch = read_log(dir, &n);
    cr_assert_eq(n, 50);
    int failed = 0;
    for (int64_t i = 0; i < n; i++) {
        cr_expect_eq(ch[i].batch, i / 20, "batches of 20, the last one of 10");
        if (ch[i].seed % 11 == 0 || ch[i].seed % 13 == 5) {
            failed++;
            cr_expect(!ch[i].result.ok && ch[i].result.reward == 0, "failed child %lld gets reward 0", (long long)i);
            cr_expect(strstr(ch[i].result.message, "synthetic") != NULL, "message: %s", ch[i].result.message);
        } else {
            cr_expect(ch[i].result.ok && ch[i].result.reward > 0);
        }
        cr_expect_eq(ch[i].result.worker, 0);
        cr_expect(ch[i].result.seconds >= 0);
    }
    cr_expect_eq(st.failed, failed);
    cr_expect_gt(failed, 0, "the seeds hit the failure cases at least once (%d)", failed);
    /* Reports agree with the log. */
    srch_run_summary sum;
    cr_assert_eq(srch_summary_read(dir, &sum), 0);
    cr_expect_eq(sum.children, 50);
    cr_expect_eq(sum.failed, failed);
    cr_expect_eq(sum.best, st.best_reward);
    cr_expect(sum.top5_mean <= sum.best && sum.top25_mean <= sum.top5_mean && sum.mean <= sum.top25_mean);
    char *best_path = nd_path_join(dir, "best.json");
    nas_genotype best;
    cr_assert_eq(nas_genotype_load(best_path, &best), 0, "%s", nd_last_error());
    nas_genotype want = ch[sum.best_job].genotype;
    snprintf(want.name, sizeof want.name, "best-job%lld", (long long)sum.best_job);
    cr_expect(nas_genotype_equal(&best, &want), "best.json holds the best child's genotype");
    const char *files[] = {"top.json", "rewards.png", "best_cells.dot", "timing.jsonl", "checkpoint.safetensors"};
    for (int i = 0; i < 5; i++) {
        char *p = nd_path_join(dir, files[i]);
        size_t len = 0;
        char *text = tu_read_file(p, &len);
        cr_expect(text && len > 20, "%s written", files[i]);
        if (i == 0) cr_expect(text && strstr(text, "\"rank\":\t10") != NULL, "top.json lists 10 children");
        free(text);
        free(p);
    }
    free(best_path);
    free(ch);
    /* A finished run does nothing more when resumed with the same budget, and continues
     * from the saved controller with a larger one. */
    cr_assert_eq(run(&c, 1, &st), 0, "%s", nd_last_error());
    cr_expect_eq(st.children_this_call, 0);
    c.children = 60;
    cr_assert_eq(run(&c, 1, &st), 0, "%s", nd_last_error());
    cr_expect_eq(st.children_this_call, 10);
    ch = read_log(dir, &n);
    cr_expect_eq(n, 60);
    free(ch);
    tu_rmtree(dir);
    free(dir);
}

Test(search_driver, same_seed_same_architectures) {
    nd_log_set_handler(quiet, NULL);
    for (int s = 0; s < SRCH_STRATEGY_COUNT; s++) {
        char *a = tu_tmpdir(), *b = tu_tmpdir(), *c3 = tu_tmpdir();
        srch_driver_config ca = config(a, (srch_strategy)s, 30), cb = config(b, (srch_strategy)s, 30),
                           cc = config(c3, (srch_strategy)s, 30);
        cc.seed = 43;
        cr_assert_eq(run(&ca, 0, NULL), 0, "%s", nd_last_error());
        cr_assert_eq(run(&cb, 0, NULL), 0, "%s", nd_last_error());
        cr_assert_eq(run(&cc, 0, NULL), 0, "%s", nd_last_error());
        expect_same_runs(a, b, 30);
        int64_t n1, n2;
        srch_child *x = read_log(a, &n1), *y = read_log(c3, &n2);
        int same = 0;
        for (int64_t i = 0; i < n1; i++) same += nas_genotype_equal(&x[i].genotype, &y[i].genotype);
        cr_expect_eq(same, 0, "%s: another seed, other architectures", srch_strategy_name((srch_strategy)s));
        free(x);
        free(y);
        tu_rmtree(a);
        tu_rmtree(b);
        tu_rmtree(c3);
        free(a);
        free(b);
        free(c3);
    }
}

/* Run the search in a forked process that SIGKILLs itself when its k-th child starts. */
static void run_killed_at(const srch_driver_config *c, int resume, int k) {
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        calls = 0;
        kill_at = k;
        srch_child_trainer t = {synth_train, NULL};
        srch_workers *w;
        if (srch_workers_local_new(&t, &w)) _exit(3);
        int rc = srch_driver_run(c, w, resume, NULL);
        _exit(rc == 0 ? 0 : 4);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the search was killed at child %d (status %d)", k,
              status);
}

Test(search_driver, kill_and_resume_equals_uninterrupted) {
    nd_log_set_handler(quiet, NULL);
    for (int s = 0; s < 2; s++) {
        srch_strategy strat = s == 0 ? SRCH_STRATEGY_PPO : SRCH_STRATEGY_RANDOM;
        char *ref = tu_tmpdir(), *dir = tu_tmpdir();
        srch_driver_config cr = config(ref, strat, 70), cd = config(dir, strat, 70);
        cr_assert_eq(run(&cr, 0, NULL), 0, "%s", nd_last_error());
        /* Kills: mid first batch, at the first child of batch 1 (right after an update and a
         * checkpoint), and twice more; each resume re-trains only the child that was running. */
        run_killed_at(&cd, 0, 7);
        run_killed_at(&cd, 1, 15); /* job 6 again, jobs 7..19, update, checkpoint; job 20 dies */
        run_killed_at(&cd, 1, 1);  /* job 20 dies again at once: nothing lost */
        /* A kill during an append leaves a cut line: it must be dropped and its child redone. */
        char *log = nd_path_join(dir, "children.jsonl");
        FILE *f = fopen(log, "a");
        cr_assert_not_null(f);
        fputs("{\"job\": 20, \"batch\": 1, \"seed\": \"12", f);
        fclose(f);
        run_killed_at(&cd, 1, 25);
        srch_run_stats st;
        cr_assert_eq(run(&cd, 1, &st), 0, "%s", nd_last_error());
        cr_expect_eq(st.children_done, 70);
        expect_same_runs(ref, dir, 70);
        /* The controller state that was resumed three times ends where the reference's does. */
        srch_controller *a, *b;
        srch_space sp;
        srch_space_init(&sp, SRCH_SPACE_A);
        cr_assert_eq(srch_controller_new(&sp, 32, 0.1, 1, &a), 0);
        cr_assert_eq(srch_controller_new(&sp, 32, 0.1, 1, &b), 0);
        char *pa = nd_path_join(ref, "checkpoint.safetensors"), *pb = nd_path_join(dir, "checkpoint.safetensors");
        cr_assert_eq(nn_checkpoint_load(pa, srch_controller_params(a), NULL, 0), 0, "%s", nd_last_error());
        cr_assert_eq(nn_checkpoint_load(pb, srch_controller_params(b), NULL, 0), 0, "%s", nd_last_error());
        nn_params *qa = srch_controller_params(a), *qb = srch_controller_params(b);
        for (int64_t i = 0; i < nn_params_count(qa); i++) {
            nn_tensor *x = nn_params_at(qa, i), *y = nn_params_at(qb, i);
            cr_expect_eq(memcmp(x->data, y->data, sizeof(float) * (size_t)x->numel), 0, "%s differs", x->name);
        }
        srch_controller_free(a);
        srch_controller_free(b);
        free(pa);
        free(pb);
        free(log);
        tu_rmtree(ref);
        tu_rmtree(dir);
        free(ref);
        free(dir);
    }
}

Test(search_driver, stop_resume_and_refusals) {
    nd_log_set_handler(quiet, NULL);
    char *ref = tu_tmpdir(), *dir = tu_tmpdir();
    srch_driver_config cr = config(ref, SRCH_STRATEGY_REINFORCE, 45), cd = config(dir, SRCH_STRATEGY_REINFORCE, 45);
    cr_assert_eq(run(&cr, 0, NULL), 0);
    cd.stop_after = 13;
    srch_run_stats st;
    cr_expect_eq(run(&cd, 0, &st), ND_ERR_INTERRUPTED);
    cr_expect_eq(st.children_this_call, 13);
    /* Starting afresh in a folder that holds a search is refused. */
    cr_expect_eq(run(&cd, 0, NULL), ND_ERR_INVALID);
    /* Resuming with other settings is refused, naming both. */
    srch_driver_config other = cd;
    other.seed = 7;
    cr_expect_eq(run(&other, 1, NULL), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "\"seed\":\"7\"") != NULL, "%s", nd_last_error());
    other = cd;
    other.child_desc = "{\"synthetic\":2}";
    cr_expect_eq(run(&other, 1, NULL), ND_ERR_INVALID);
    cr_expect_eq(run(&cd, 1, &st), ND_ERR_INTERRUPTED);
    cr_expect_eq(st.children_done, 26);
    volatile sig_atomic_t stop = 1;
    cd.stop_after = 0;
    cd.stop = &stop;
    cr_expect_eq(run(&cd, 1, &st), ND_ERR_INTERRUPTED);
    cr_expect_eq(st.children_this_call, 0);
    cd.stop = NULL;
    cr_assert_eq(run(&cd, 1, &st), 0, "%s", nd_last_error());
    expect_same_runs(ref, dir, 45);
    /* Nothing to resume from. */
    char *empty = tu_tmpdir();
    srch_driver_config ce = config(empty, SRCH_STRATEGY_PPO, 5);
    cr_expect_eq(run(&ce, 1, NULL), ND_ERR_NOT_FOUND);
    /* The two runs side by side. */
    char *png = nd_path_join(empty, "cmp.png");
    const char *runs[2] = {ref, dir};
    cr_expect_eq(srch_report_plot_runs(runs, 2, png), 0, "%s", nd_last_error());
    cr_expect(nd_path_exists(png));
    cr_expect_eq(srch_report_plot_runs(runs, 0, png), ND_ERR_INVALID);
    const char *missing[1] = {"/nonexistent/run"};
    cr_expect_neq(srch_report_plot_runs(missing, 1, png), 0);
    free(png);
    tu_rmtree(empty);
    tu_rmtree(ref);
    tu_rmtree(dir);
    free(empty);
    free(ref);
    free(dir);
}

Test(search_driver, ppo_search_beats_random_on_synthetic_children) {
    nd_log_set_handler(quiet, NULL);
    char *a = tu_tmpdir(), *b = tu_tmpdir();
    srch_driver_config ca = config(a, SRCH_STRATEGY_PPO, 300), cb = config(b, SRCH_STRATEGY_RANDOM, 300);
    /* A wiring check: rewards must reach the sequences that earned them, through the queue,
     * the log and the update. With the failures' zero rewards as noise the paper's learning
     * rate needs more than 300 children (measured 0.274 vs 0.254), so this uses 0.003. */
    ca.hidden = cb.hidden = 100;
    ca.policy.lr = 0.003;
    cr_assert_eq(run(&ca, 0, NULL), 0, "%s", nd_last_error());
    cr_assert_eq(run(&cb, 0, NULL), 0, "%s", nd_last_error());
    int64_t na, nb;
    srch_child *x = read_log(a, &na), *y = read_log(b, &nb);
    double ma = 0, mb = 0;
    for (int64_t i = 200; i < 300; i++) {
        ma += x[i].result.reward / 100;
        mb += y[i].result.reward / 100;
    }
    srch_run_summary sa, sb;
    srch_summary_compute(x, na, &sa);
    srch_summary_compute(y, nb, &sb);
    fprintf(stderr, "synthetic children 200..299: mean reward ppo %.3f random %.3f; top-25 mean ppo %.3f random %.3f\n", ma,
                mb, sa.top25_mean, sb.top25_mean);
    cr_expect(ma > mb + 0.15, "PPO %.3f vs random %.3f", ma, mb);
    free(x);
    free(y);
    tu_rmtree(a);
    tu_rmtree(b);
    free(a);
    free(b);
}
