/* The work queue of child trainings: push, pull, complete, re-queue, batches. */
#include "search/queue_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"

int srch_queue_new(srch_queue **q) {
    *q = calloc(1, sizeof **q);
    if (!*q) return nd_fail(ND_ERR_NOMEM, "out of memory for the work queue");
    pthread_mutex_init(&(*q)->mu, NULL);
    return ND_OK;
}

void srch_queue_free(srch_queue *q) {
    if (!q) return;
    pthread_mutex_destroy(&q->mu);
    free(q->jobs);
    free(q);
}

int srch_queue_append_raw(srch_queue *q, const srch_job *job) {
    if (q->n == q->cap) {
        int64_t cap = q->cap ? q->cap * 2 : 64;
        srch_job *p = realloc(q->jobs, (size_t)cap * sizeof *p);
        if (!p) return nd_fail(ND_ERR_NOMEM, "out of memory for %lld queued jobs", (long long)cap);
        q->jobs = p;
        q->cap = cap;
    }
    q->jobs[q->n++] = *job;
    if (job->id >= q->next_id) q->next_id = job->id + 1;
    return ND_OK;
}

/* Jobs stay sorted by id, so lookups are a binary search. */
static srch_job *find(const srch_queue *q, int64_t id) {
    int64_t lo = 0, hi = q->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (q->jobs[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < q->n && q->jobs[lo].id == id ? &q->jobs[lo] : NULL;
}

int srch_queue_push(srch_queue *q, int64_t batch, const nas_genotype *g, uint64_t seed, int64_t *id) {
    if (batch < 0) return nd_fail(ND_ERR_INVALID, "batch %lld: expected >= 0", (long long)batch);
    int rc = nas_genotype_validate(g);
    if (rc) return nd_fail_context(rc, "queued genotype: ");
    srch_job job;
    memset(&job, 0, sizeof job);
    job.batch = batch;
    job.seed = seed;
    job.genotype = *g;
    job.state = SRCH_JOB_PENDING;
    job.worker = -1;
    pthread_mutex_lock(&q->mu);
    job.id = q->next_id;
    rc = srch_queue_append_raw(q, &job);
    pthread_mutex_unlock(&q->mu);
    if (rc == ND_OK && id) *id = job.id;
    return rc;
}

int srch_queue_pull(srch_queue *q, int worker, srch_job *job) {
    if (worker < 0) return nd_fail(ND_ERR_INVALID, "worker id %d: expected >= 0", worker);
    int got = 0;
    pthread_mutex_lock(&q->mu);
    for (int64_t i = 0; i < q->n; i++) {
        srch_job *j = &q->jobs[i];
        if (j->state != SRCH_JOB_PENDING) continue;
        j->state = SRCH_JOB_RUNNING;
        j->worker = worker;
        j->attempts++;
        *job = *j;
        got = 1;
        break;
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

int srch_queue_complete(srch_queue *q, int64_t id, const srch_result *result) {
    if (!isfinite(result->reward) || !isfinite(result->seconds))
        return nd_fail(ND_ERR_NUMERIC, "job %lld: reward %g and seconds %g must be finite (report a failed child "
                       "with ok = 0 and a finite reward)", (long long)id, result->reward, result->seconds);
    if (result->params < 0 || result->macs < 0 || result->worker < 0)
        return nd_fail(ND_ERR_INVALID, "job %lld: params %lld, macs %lld and worker %d must be >= 0", (long long)id,
                       (long long)result->params, (long long)result->macs, result->worker);
    int rc = ND_OK;
    pthread_mutex_lock(&q->mu);
    srch_job *j = find(q, id);
    if (!j) rc = nd_fail(ND_ERR_NOT_FOUND, "job %lld is not in the queue", (long long)id);
    else if (j->state == SRCH_JOB_DONE)
        rc = nd_fail(ND_ERR_INVALID, "job %lld is already done (by worker %d); the result from worker %d is ignored",
                     (long long)id, j->result.worker, result->worker);
    else {
        j->result = *result;
        j->result.message[SRCH_MESSAGE_MAX - 1] = '\0';
        j->state = SRCH_JOB_DONE;
        j->worker = result->worker;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int srch_queue_requeue(srch_queue *q, int64_t id) {
    int rc = ND_OK;
    pthread_mutex_lock(&q->mu);
    srch_job *j = find(q, id);
    if (!j) rc = nd_fail(ND_ERR_NOT_FOUND, "job %lld is not in the queue", (long long)id);
    else if (j->state != SRCH_JOB_RUNNING)
        rc = nd_fail(ND_ERR_INVALID, "job %lld is not running, it cannot be re-queued", (long long)id);
    else {
        j->state = SRCH_JOB_PENDING;
        j->worker = -1;
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int srch_queue_requeue_worker(srch_queue *q, int worker) {
    int count = 0;
    pthread_mutex_lock(&q->mu);
    for (int64_t i = 0; i < q->n; i++) {
        srch_job *j = &q->jobs[i];
        if (j->state == SRCH_JOB_RUNNING && (worker == SRCH_ANY_WORKER || j->worker == worker)) {
            j->state = SRCH_JOB_PENDING;
            j->worker = -1;
            count++;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return count;
}

/* The const accessors lock too: a worker thread may be changing a job meanwhile. */
static void lock(const srch_queue *q) { pthread_mutex_lock((pthread_mutex_t *)&q->mu); }
static void unlock(const srch_queue *q) { pthread_mutex_unlock((pthread_mutex_t *)&q->mu); }

int srch_queue_get(const srch_queue *q, int64_t id, srch_job *job) {
    lock(q);
    const srch_job *j = find(q, id);
    if (j) *job = *j;
    unlock(q);
    return j ? ND_OK : nd_fail(ND_ERR_NOT_FOUND, "job %lld is not in the queue", (long long)id);
}

int64_t srch_queue_count(const srch_queue *q, srch_job_state state) {
    int64_t c = 0;
    lock(q);
    for (int64_t i = 0; i < q->n; i++) c += q->jobs[i].state == state;
    unlock(q);
    return c;
}

int64_t srch_queue_batch_count(const srch_queue *q, int64_t batch, srch_job_state state) {
    int64_t c = 0;
    lock(q);
    for (int64_t i = 0; i < q->n; i++)
        c += q->jobs[i].batch == batch && (state == SRCH_JOB_STATE_COUNT || q->jobs[i].state == state);
    unlock(q);
    return c;
}

int srch_queue_batch_complete(const srch_queue *q, int64_t batch) {
    int64_t all = 0, done = 0;
    lock(q);
    for (int64_t i = 0; i < q->n; i++)
        if (q->jobs[i].batch == batch) {
            all++;
            done += q->jobs[i].state == SRCH_JOB_DONE;
        }
    unlock(q);
    return all > 0 && done == all;
}

int64_t srch_queue_batch_jobs(const srch_queue *q, int64_t batch, srch_job *out, int64_t max) {
    int64_t c = 0;
    lock(q);
    for (int64_t i = 0; i < q->n && c < max; i++)
        if (q->jobs[i].batch == batch) out[c++] = q->jobs[i];
    unlock(q);
    return c;
}

int srch_queue_batch_drop(srch_queue *q, int64_t batch) {
    if (!srch_queue_batch_complete(q, batch))
        return nd_fail(ND_ERR_INVALID, "batch %lld is not complete (or has no jobs); it cannot be dropped",
                       (long long)batch);
    int removed = 0;
    lock(q);
    int64_t w = 0;
    for (int64_t i = 0; i < q->n; i++) {
        if (q->jobs[i].batch == batch) removed++;
        else q->jobs[w++] = q->jobs[i];
    }
    q->n = w;
    unlock(q);
    return removed;
}

int64_t srch_queue_next_id(const srch_queue *q) {
    lock(q);
    int64_t id = q->next_id;
    unlock(q);
    return id;
}

int64_t srch_queue_reconcile(srch_queue *q, const srch_child *children, int64_t n) {
    int64_t count = 0;
    lock(q);
    for (int64_t i = 0; i < n; i++) {
        srch_job *j = find(q, children[i].job_id);
        if (!j || j->state == SRCH_JOB_DONE) continue;
        /* A log from another run (or a queue from another log) must not complete jobs. */
        if (j->seed != children[i].seed || !nas_genotype_equal(&j->genotype, &children[i].genotype)) {
            ND_WARN("children log record for job %lld does not match the queued job (seed or genotype differ); "
                    "not used", (long long)children[i].job_id);
            continue;
        }
        j->result = children[i].result;
        j->state = SRCH_JOB_DONE;
        j->worker = children[i].result.worker;
        count++;
    }
    unlock(q);
    return count;
}
