/* RUN/children.jsonl: one JSON line per finished child, appended with fsync, read back
 * tolerating the one cut line a kill can leave at the end. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"
#include "search/json_util.h"
#include "search/search.h"

void srch_child_from_job(const srch_job *job, srch_child *child) {
    memset(child, 0, sizeof *child);
    child->job_id = job->id;
    child->batch = job->batch;
    child->seed = job->seed;
    child->result = job->result;
    child->genotype = job->genotype;
}

int srch_child_to_json(const srch_child *c, char **line) {
    *line = NULL;
    if (!isfinite(c->result.reward) || !isfinite(c->result.seconds))
        return nd_fail(ND_ERR_NUMERIC, "job %lld: reward %g and seconds %g must be finite", (long long)c->job_id,
                       c->result.reward, c->result.seconds);
    cJSON *o = cJSON_CreateObject();
    int rc = ND_OK;
    if (!o || !cJSON_AddNumberToObject(o, "job", (double)c->job_id) ||
        !cJSON_AddNumberToObject(o, "batch", (double)c->batch))
        rc = nd_fail(ND_ERR_NOMEM, "out of memory writing a child record");
    if (!rc) rc = srch_json_add_u64(o, "seed", c->seed);
    if (!rc) rc = srch_json_add_result(o, &c->result);
    if (!rc) rc = srch_json_add_genotype(o, "genotype", &c->genotype);
    if (!rc) {
        *line = cJSON_PrintUnformatted(o);
        if (!*line) rc = nd_fail(ND_ERR_NOMEM, "out of memory writing a child record");
    }
    cJSON_Delete(o);
    return rc;
}

int srch_child_from_json(const char *line, srch_child *c) {
    memset(c, 0, sizeof *c);
    cJSON *o = cJSON_Parse(line);
    if (!o) return nd_fail(ND_ERR_FORMAT, "not valid JSON");
    int rc = ND_OK;
    if (!cJSON_IsObject(o)) rc = nd_fail(ND_ERR_FORMAT, "expected a JSON object");
    if (!rc) rc = srch_json_get_int64(o, "job", "", 0, INT64_MAX / 2, &c->job_id);
    if (!rc) rc = srch_json_get_int64(o, "batch", "", 0, INT64_MAX / 2, &c->batch);
    if (!rc) rc = srch_json_get_u64(o, "seed", "", &c->seed);
    if (!rc) rc = srch_json_get_result(o, "", &c->result);
    if (!rc) rc = srch_json_get_genotype(o, "genotype", "", &c->genotype);
    cJSON_Delete(o);
    return rc;
}

int srch_children_append(const char *path, const srch_child *c) {
    char *line;
    int rc = srch_child_to_json(c, &line);
    if (rc) return nd_fail_context(rc, "%s: ", path);
    rc = nd_file_append_line(path, line);
    free(line);
    return rc;
}

int srch_children_read(const char *path, srch_child **children, int64_t *n, int *cut) {
    *children = NULL;
    *n = 0;
    if (cut) *cut = 0;
    char *text;
    size_t len;
    int rc = nd_file_read_all(path, &text, &len);
    if (rc) return rc;
    srch_child *out = NULL;
    int64_t count = 0, cap = 0, line_no = 0;
    size_t pos = 0;
    while (pos < len && !rc) {
        char *line = text + pos;
        char *nl = memchr(line, '\n', len - pos);
        int last_unterminated = nl == NULL;
        size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + (nl ? 1 : 0);
        line_no++;
        if (nl) *nl = '\0';
        if (line_len == 0) continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            srch_child *p = realloc(out, (size_t)cap * sizeof *p);
            if (!p) {
                rc = nd_fail(ND_ERR_NOMEM, "out of memory reading %s", path);
                break;
            }
            out = p;
        }
        /* A NUL inside a line: the file system kept zeros of a write that never landed. */
        int prc = memchr(line, '\0', line_len) ? nd_fail(ND_ERR_FORMAT, "NUL bytes in the line")
                                               : srch_child_from_json(line, &out[count]);
        if (prc == ND_OK) {
            count++;
            continue;
        }
        if (last_unterminated) {
            ND_WARN("%s:%lld: last line is cut off (%zu bytes, the run was killed while writing it); ignoring it",
                    path, (long long)line_no, line_len);
            if (cut) *cut = 1;
            break;
        }
        rc = nd_fail_context(prc, "%s:%lld: ", path, (long long)line_no);
    }
    free(text);
    if (rc) {
        free(out);
        return rc;
    }
    if (count == 0) {
        free(out);
        out = NULL;
    }
    *children = out;
    *n = count;
    return ND_OK;
}

int srch_children_repair(const char *path, size_t *dropped) {
    if (dropped) *dropped = 0;
    if (!nd_path_exists(path)) return ND_OK;
    char *text;
    size_t len;
    int rc = nd_file_read_all(path, &text, &len);
    if (rc) return rc;
    if (len == 0 || text[len - 1] == '\n') {
        free(text);
        return ND_OK;
    }
    size_t start = len;
    while (start > 0 && text[start - 1] != '\n') start--;
    srch_child c;
    /* The last line is kept when a whole record made it to disk and only the newline did not. */
    int keep = memchr(text + start, '\0', len - start) == NULL && srch_child_from_json(text + start, &c) == ND_OK;
    size_t new_len = keep ? len + 1 : start;
    char *fixed = malloc(new_len + 1);
    if (!fixed) {
        free(text);
        return nd_fail(ND_ERR_NOMEM, "out of memory repairing %s", path);
    }
    memcpy(fixed, text, keep ? len : start);
    if (keep) fixed[len] = '\n';
    rc = nd_file_write_atomic(path, fixed, new_len);
    if (rc == ND_OK && dropped) *dropped = keep ? 0 : len - start;
    if (rc == ND_OK && !keep)
        ND_WARN("%s: dropped a cut last line of %zu bytes (the run was killed while writing it)", path, len - start);
    free(fixed);
    free(text);
    return rc;
}
