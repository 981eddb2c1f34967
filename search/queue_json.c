/* Work queue checkpoints: the whole queue as one JSON document, written atomically. */
#include "search/queue_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"
#include "search/json_util.h"

static const char *const STATE_NAMES[SRCH_JOB_STATE_COUNT] = {"pending", "running", "done"};
static const char *const FORMAT = "nasdet-search-queue";
enum { FORMAT_VERSION = 1 };

static int job_to_json(const srch_job *j, cJSON *arr) {
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        return nd_fail(ND_ERR_NOMEM, "out of memory writing the queue");
    }
    int rc;
    if (!cJSON_AddNumberToObject(o, "id", (double)j->id) || !cJSON_AddNumberToObject(o, "batch", (double)j->batch) ||
        !cJSON_AddStringToObject(o, "state", STATE_NAMES[j->state]) ||
        !cJSON_AddNumberToObject(o, "worker", j->worker) || !cJSON_AddNumberToObject(o, "attempts", j->attempts))
        return nd_fail(ND_ERR_NOMEM, "out of memory writing the queue");
    if ((rc = srch_json_add_u64(o, "seed", j->seed))) return rc;
    if ((rc = srch_json_add_genotype(o, "genotype", &j->genotype)))
        return nd_fail_context(rc, "job %lld: ", (long long)j->id);
    if (j->state == SRCH_JOB_DONE) {
        cJSON *r = cJSON_AddObjectToObject(o, "result");
        if (!r) return nd_fail(ND_ERR_NOMEM, "out of memory writing the queue");
        if ((rc = srch_json_add_result(r, &j->result))) return rc;
    }
    return ND_OK;
}

int srch_queue_to_json(const srch_queue *q, char **text) {
    *text = NULL;
    cJSON *root = cJSON_CreateObject();
    int rc = ND_OK;
    pthread_mutex_lock((pthread_mutex_t *)&q->mu);
    if (!root || !cJSON_AddStringToObject(root, "format", FORMAT) ||
        !cJSON_AddNumberToObject(root, "version", FORMAT_VERSION) ||
        !cJSON_AddNumberToObject(root, "next_id", (double)q->next_id))
        rc = nd_fail(ND_ERR_NOMEM, "out of memory writing the queue");
    cJSON *arr = rc ? NULL : cJSON_AddArrayToObject(root, "jobs");
    if (!rc && !arr) rc = nd_fail(ND_ERR_NOMEM, "out of memory writing the queue");
    for (int64_t i = 0; !rc && i < q->n; i++) rc = job_to_json(&q->jobs[i], arr);
    pthread_mutex_unlock((pthread_mutex_t *)&q->mu);
    if (!rc) {
        *text = cJSON_Print(root);
        if (!*text) rc = nd_fail(ND_ERR_NOMEM, "out of memory writing the queue");
    }
    cJSON_Delete(root);
    return rc;
}

static int job_from_json(const cJSON *o, const char *path, int64_t prev_id, srch_job *j) {
    memset(j, 0, sizeof *j);
    if (!cJSON_IsObject(o)) return nd_fail(ND_ERR_FORMAT, "%s: expected a job object", path);
    int rc;
    if ((rc = srch_json_get_int64(o, "id", path, 0, INT64_MAX / 2, &j->id))) return rc;
    if (j->id <= prev_id)
        return nd_fail(ND_ERR_FORMAT, "%s.id: %lld after %lld, ids must increase", path, (long long)j->id,
                       (long long)prev_id);
    if ((rc = srch_json_get_int64(o, "batch", path, 0, INT64_MAX / 2, &j->batch))) return rc;
    if ((rc = srch_json_get_u64(o, "seed", path, &j->seed))) return rc;
    if ((rc = srch_json_get_int(o, "worker", path, -1, 1 << 30, &j->worker))) return rc;
    if ((rc = srch_json_get_int(o, "attempts", path, 0, 1 << 30, &j->attempts))) return rc;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "state");
    int state = -1;
    for (int s = 0; s < SRCH_JOB_STATE_COUNT; s++)
        if (cJSON_IsString(st) && strcmp(st->valuestring, STATE_NAMES[s]) == 0) state = s;
    if (state < 0) return nd_fail(ND_ERR_FORMAT, "%s.state: expected \"pending\", \"running\" or \"done\"", path);
    j->state = (srch_job_state)state;
    if ((rc = srch_json_get_genotype(o, "genotype", path, &j->genotype))) return rc;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "result");
    if (j->state == SRCH_JOB_DONE) {
        char rp[96];
        snprintf(rp, sizeof rp, "%.80s.result", path);
        if (!cJSON_IsObject(r)) return nd_fail(ND_ERR_FORMAT, "%s: a done job needs a result object", rp);
        if ((rc = srch_json_get_result(r, rp, &j->result))) return rc;
    } else if (r) {
        return nd_fail(ND_ERR_FORMAT, "%s.result: only a done job has a result", path);
    }
    return ND_OK;
}

int srch_queue_from_json(const char *text, srch_queue **out) {
    *out = NULL;
    cJSON *root = cJSON_Parse(text);
    if (!root) return nd_fail(ND_ERR_FORMAT, "not valid JSON");
    srch_queue *q = NULL;
    int rc = ND_OK;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(root, "jobs");
    int version = 0;
    int64_t next_id = 0;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, FORMAT) != 0)
        rc = nd_fail(ND_ERR_FORMAT, "format: expected \"%s\"", FORMAT);
    else if ((rc = srch_json_get_int(root, "version", "", FORMAT_VERSION, FORMAT_VERSION, &version)))
        rc = nd_fail_context(rc, "(a queue written by another version of nasdet) ");
    else if ((rc = srch_json_get_int64(root, "next_id", "", 0, INT64_MAX / 2, &next_id))) {
    } else if (!cJSON_IsArray(jobs))
        rc = nd_fail(ND_ERR_FORMAT, "jobs: expected an array");
    if (!rc) rc = srch_queue_new(&q);
    int64_t prev = -1, i = 0;
    for (const cJSON *o = rc ? NULL : jobs->child; o && !rc; o = o->next, i++) {
        char path[32];
        snprintf(path, sizeof path, "jobs[%lld]", (long long)i);
        srch_job j;
        rc = job_from_json(o, path, prev, &j);
        if (!rc) rc = srch_queue_append_raw(q, &j);
        prev = j.id;
    }
    if (!rc && next_id < q->next_id)
        rc = nd_fail(ND_ERR_FORMAT, "next_id: %lld, but job %lld exists", (long long)next_id, (long long)prev);
    if (!rc) q->next_id = next_id;
    cJSON_Delete(root);
    if (rc) {
        srch_queue_free(q);
        return rc;
    }
    *out = q;
    return ND_OK;
}

int srch_queue_save(const srch_queue *q, const char *path) {
    char *text;
    int rc = srch_queue_to_json(q, &text);
    if (rc) return nd_fail_context(rc, "%s: ", path);
    rc = nd_file_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

int srch_queue_load(const char *path, srch_queue **q) {
    char *text;
    size_t len;
    *q = NULL;
    int rc = nd_file_read_all(path, &text, &len);
    if (rc) return rc;
    rc = srch_queue_from_json(text, q);
    free(text);
    return rc ? nd_fail_context(rc, "%s: ", path) : ND_OK;
}
