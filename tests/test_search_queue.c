#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/rng.h"
#include "common/status.h"
#include "search/search.h"
#include "tests/util/testutil.h"

static void sample(int i, nas_genotype *g) {
    srch_space s;
    srch_space_init(&s, SRCH_SPACE_A);
    nd_rng r;
    nd_rng_seed(&r, (uint64_t)i);
    int d[50];
    cr_assert_eq(srch_random_sample(&s, &r, d, 50, g), 0);
}

static srch_result result_for(int64_t id, int worker) {
    srch_result r;
    memset(&r, 0, sizeof r);
    r.ok = 1;
    r.reward = 0.5 + 0.01 * (double)id + 1.0 / 3.0 * 1e-9; /* digits that need %.17g */
    r.params = 1000 + id;
    r.macs = (int64_t)1 << 34;
    r.seconds = 20.25;
    r.worker = worker;
    return r;
}

Test(search_queue, out_of_order_results_and_batches) {
    srch_queue *q;
    cr_assert_eq(srch_queue_new(&q), 0);
    nas_genotype g;
    for (int i = 0; i < 5; i++) {
        sample(i, &g);
        int64_t id;
        cr_assert_eq(srch_queue_push(q, i < 3 ? 0 : 1, &g, 100 + (uint64_t)i, &id), 0);
        cr_expect_eq(id, i);
    }
    cr_expect_eq(srch_queue_count(q, SRCH_JOB_PENDING), 5);
    srch_job jobs[5];
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(srch_queue_pull(q, i % 2, &jobs[i]), 1);
        cr_expect_eq(jobs[i].id, i, "lowest id first");
        cr_expect_eq(jobs[i].state, SRCH_JOB_RUNNING);
        cr_expect_eq(jobs[i].seed, 100u + (unsigned)i);
        sample(i, &g);
        cr_expect(nas_genotype_equal(&jobs[i].genotype, &g));
    }
    srch_job none;
    cr_expect_eq(srch_queue_pull(q, 0, &none), 0);
    /* Results of batch 0 arrive in the order 2, 0, 1. */
    int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++) {
        cr_expect_eq(srch_queue_batch_complete(q, 0), 0);
        srch_result r = result_for(order[k], order[k] % 2);
        cr_assert_eq(srch_queue_complete(q, order[k], &r), 0, "%s", nd_last_error());
    }
    cr_expect_eq(srch_queue_batch_complete(q, 0), 1);
    cr_expect_eq(srch_queue_batch_complete(q, 1), 0);
    cr_expect_eq(srch_queue_batch_complete(q, 7), 0, "an empty batch is not complete");
    cr_expect_eq(srch_queue_batch_count(q, 1, SRCH_JOB_RUNNING), 2);
    srch_job out[4];
    cr_assert_eq(srch_queue_batch_jobs(q, 0, out, 4), 3);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(out[i].id, i, "batch jobs come back in id order");
        cr_expect_eq(out[i].state, SRCH_JOB_DONE);
        cr_expect_eq(out[i].result.params, 1000 + i);
    }
    /* A second result for a done job is refused and does not overwrite the first. */
    srch_result late = result_for(1, 9);
    late.reward = 0.0;
    cr_expect_eq(srch_queue_complete(q, 1, &late), ND_ERR_INVALID);
    srch_job j;
    cr_assert_eq(srch_queue_get(q, 1, &j), 0);
    cr_expect_eq(j.result.worker, 1);
    cr_expect_eq(srch_queue_complete(q, 99, &late), ND_ERR_NOT_FOUND);
    late.reward = NAN;
    cr_expect_eq(srch_queue_complete(q, 3, &late), ND_ERR_NUMERIC);
    cr_expect_eq(srch_queue_batch_drop(q, 1), ND_ERR_INVALID);
    cr_expect_eq(srch_queue_batch_drop(q, 0), 3);
    cr_expect_eq(srch_queue_get(q, 0, &j), ND_ERR_NOT_FOUND);
    cr_expect_eq(srch_queue_count(q, SRCH_JOB_RUNNING), 2);
    cr_expect_eq(srch_queue_next_id(q), 5);
    /* A failed child is a result too. */
    srch_result bad = result_for(3, 1);
    bad.ok = 0;
    bad.reward = 0;
    snprintf(bad.message, sizeof bad.message, "NaN loss at step 17");
    cr_expect_eq(srch_queue_complete(q, 3, &bad), 0);
    cr_assert_eq(srch_queue_get(q, 3, &j), 0);
    cr_expect_str_eq(j.result.message, "NaN loss at step 17");
    cr_expect_eq(j.result.ok, 0);
    nas_genotype broken = g;
    broken.cell[0].block[0].input[0] = 9;
    cr_expect_eq(srch_queue_push(q, 2, &broken, 1, NULL), ND_ERR_INVALID);
    srch_queue_free(q);
    srch_queue_free(NULL);
}

Test(search_queue, requeue_dead_worker) {
    srch_queue *q;
    cr_assert_eq(srch_queue_new(&q), 0);
    nas_genotype g;
    for (int i = 0; i < 4; i++) {
        sample(i, &g);
        cr_assert_eq(srch_queue_push(q, 0, &g, (uint64_t)i, NULL), 0);
    }
    srch_job j;
    cr_assert_eq(srch_queue_pull(q, 7, &j), 1); /* job 0 to worker 7 */
    cr_assert_eq(srch_queue_pull(q, 8, &j), 1); /* job 1 to worker 8 */
    cr_assert_eq(srch_queue_pull(q, 7, &j), 1); /* job 2 to worker 7 */
    cr_expect_eq(srch_queue_requeue_worker(q, 7), 2);
    cr_expect_eq(srch_queue_count(q, SRCH_JOB_PENDING), 3);
    /* The re-queued jobs go out again first, same id and seed, attempt 2. */
    cr_assert_eq(srch_queue_pull(q, 9, &j), 1);
    cr_expect_eq(j.id, 0);
    cr_expect_eq(j.seed, 0);
    cr_expect_eq(j.attempts, 2);
    cr_expect_eq(j.worker, 9);
    cr_expect_eq(srch_queue_requeue(q, 3), ND_ERR_INVALID, "pending jobs are not re-queued");
    cr_expect_eq(srch_queue_requeue(q, 1), 0);
    cr_expect_eq(srch_queue_requeue(q, 42), ND_ERR_NOT_FOUND);
    cr_expect_eq(srch_queue_requeue_worker(q, SRCH_ANY_WORKER), 1);
    cr_expect_eq(srch_queue_count(q, SRCH_JOB_RUNNING), 0);
    cr_expect_eq(srch_queue_pull(q, -3, &j), ND_ERR_INVALID);
    srch_queue_free(q);
}

Test(search_queue, json_save_load_exact) {
    srch_queue *q, *back;
    cr_assert_eq(srch_queue_new(&q), 0);
    nas_genotype g;
    for (int i = 0; i < 6; i++) {
        sample(i, &g);
        cr_assert_eq(srch_queue_push(q, i / 3, &g, UINT64_MAX - (uint64_t)i, NULL), 0);
    }
    srch_job j;
    for (int i = 0; i < 4; i++) cr_assert_eq(srch_queue_pull(q, i, &j), 1);
    srch_result r = result_for(1, 1);
    cr_assert_eq(srch_queue_complete(q, 1, &r), 0);
    r = result_for(2, 2);
    cr_assert_eq(srch_queue_complete(q, 2, &r), 0);
    r = result_for(0, 0);
    cr_assert_eq(srch_queue_complete(q, 0, &r), 0);
    cr_assert_eq(srch_queue_batch_drop(q, 0), 3);
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "queue.json");
    cr_assert_eq(srch_queue_save(q, path), 0, "%s", nd_last_error());
    cr_assert_eq(srch_queue_load(path, &back), 0, "%s", nd_last_error());
    cr_expect_eq(srch_queue_next_id(back), 6);
    cr_expect_eq(srch_queue_count(back, SRCH_JOB_RUNNING), 1);
    cr_expect_eq(srch_queue_count(back, SRCH_JOB_PENDING), 2);
    for (int64_t id = 3; id < 6; id++) {
        srch_job a, b;
        cr_assert_eq(srch_queue_get(q, id, &a), 0);
        cr_assert_eq(srch_queue_get(back, id, &b), 0);
        cr_expect_eq(a.seed, b.seed, "64-bit seeds survive");
        cr_expect_eq(a.state, b.state);
        cr_expect_eq(a.worker, b.worker);
        cr_expect_eq(a.attempts, b.attempts);
        cr_expect_eq(a.batch, b.batch);
        cr_expect(nas_genotype_equal(&a.genotype, &b.genotype));
    }
    /* Resume: the job that was running belongs to a dead process. */
    cr_expect_eq(srch_queue_requeue_worker(back, SRCH_ANY_WORKER), 1);
    r = result_for(4, 0);
    cr_assert_eq(srch_queue_pull(back, 0, &j), 1);
    cr_expect_eq(j.id, 3);
    cr_assert_eq(srch_queue_complete(back, 3, &r), 0);
    char *t1, *t2;
    srch_queue *again;
    cr_assert_eq(srch_queue_to_json(back, &t1), 0);
    cr_assert_eq(srch_queue_from_json(t1, &again), 0, "%s", nd_last_error());
    cr_assert_eq(srch_queue_to_json(again, &t2), 0);
    cr_expect_str_eq(t1, t2, "save -> load -> save is identical");
    cr_assert_eq(srch_queue_get(again, 3, &j), 0);
    cr_expect_eq(j.result.reward, r.reward, "rewards survive bit for bit");
    cr_expect_eq(j.result.macs, r.macs);
    free(t1);
    free(t2);
    srch_queue_free(again);
    /* Errors name the place. */
    cr_assert_eq(tu_write_file(path, "{\"format\": \"nasdet-search-queue\", \"version\": 1, \"next_id\": 2, \"jobs\": "
                                     "[{\"id\": 0, \"batch\": 0, \"seed\": \"-5\", \"state\": \"pending\", "
                                     "\"worker\": -1, \"attempts\": 0}]}"),
                 0);
    srch_queue *bad = (srch_queue *)1;
    cr_expect_eq(srch_queue_load(path, &bad), ND_ERR_FORMAT);
    cr_expect_null(bad);
    cr_expect(strstr(nd_last_error(), "queue.json: jobs[0].seed") != NULL, "%s", nd_last_error());
    cr_assert_eq(tu_write_file(path, "{\"format\": \"something\"}"), 0);
    cr_expect_eq(srch_queue_load(path, &bad), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "format") != NULL, "%s", nd_last_error());
    srch_queue_free(q);
    srch_queue_free(back);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

typedef struct {
    srch_queue *q;
    int worker;
    int done;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg *a = p;
    srch_job j;
    while (srch_queue_pull(a->q, a->worker, &j) == 1) {
        srch_result r = result_for(j.id, a->worker);
        if (srch_queue_complete(a->q, j.id, &r) == 0) a->done++;
    }
    return NULL;
}

Test(search_queue, threads_share_the_queue) {
    srch_queue *q;
    cr_assert_eq(srch_queue_new(&q), 0);
    nas_genotype g;
    sample(1, &g);
    for (int i = 0; i < 200; i++) cr_assert_eq(srch_queue_push(q, 0, &g, (uint64_t)i, NULL), 0);
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){q, i, 0};
        pthread_create(&th[i], NULL, worker_main, &args[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += args[i].done;
    }
    cr_expect_eq(total, 200, "every job trained exactly once");
    cr_expect_eq(srch_queue_batch_complete(q, 0), 1);
    srch_queue_free(q);
}
