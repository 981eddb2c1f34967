#include "search/json_util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

static const char *dot(const char *path) { return *path ? "." : ""; }

int srch_json_add_genotype(cJSON *obj, const char *key, const nas_genotype *g) {
    char *text;
    int rc = nas_genotype_to_json(g, 0, &text);
    if (rc) return rc;
    cJSON *raw = cJSON_AddRawToObject(obj, key, text);
    free(text);
    return raw ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory writing JSON");
}

int srch_json_add_u64(cJSON *obj, const char *key, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_AddStringToObject(obj, key, buf) ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory writing JSON");
}

/* cJSON prints doubles with 15 digits when they read back within an epsilon, which loses the
 * last bits; the shortest of 15..17 digits that reads back exactly is written instead. */
static int add_double(cJSON *obj, const char *key, double v) {
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    return cJSON_AddRawToObject(obj, key, buf) != NULL;
}

int srch_json_add_result(cJSON *obj, const srch_result *r) {
    /* Integers up to 2^53 are exact as JSON numbers; multiply-adds of the largest NASNet are
     * about 2^35. cJSON prints doubles with enough digits to read back the same value. */
    if (!cJSON_AddNumberToObject(obj, "worker", r->worker) || !cJSON_AddBoolToObject(obj, "ok", r->ok != 0) ||
        !add_double(obj, "reward", r->reward) ||
        !cJSON_AddNumberToObject(obj, "params", (double)r->params) ||
        !cJSON_AddNumberToObject(obj, "macs", (double)r->macs) ||
        !add_double(obj, "seconds", r->seconds) || !cJSON_AddStringToObject(obj, "message", r->message))
        return nd_fail(ND_ERR_NOMEM, "out of memory writing JSON");
    return ND_OK;
}

static const cJSON *get(const cJSON *obj, const char *key, const char *path) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) nd_fail(ND_ERR_FORMAT, "%s%s%s: missing", path, dot(path), key);
    return it;
}

int srch_json_get_genotype(const cJSON *obj, const char *key, const char *path, nas_genotype *g) {
    const cJSON *it = get(obj, key, path);
    if (!it) return ND_ERR_FORMAT;
    if (!cJSON_IsObject(it)) return nd_fail(ND_ERR_FORMAT, "%s%s%s: expected a genotype object", path, dot(path), key);
    char *text = cJSON_PrintUnformatted(it);
    if (!text) return nd_fail(ND_ERR_NOMEM, "out of memory reading JSON");
    int rc = nas_genotype_parse(text, g);
    free(text);
    if (rc) return nd_fail_context(rc, "%s%s%s: ", path, dot(path), key);
    return ND_OK;
}

int srch_json_get_u64(const cJSON *obj, const char *key, const char *path, uint64_t *v) {
    const cJSON *it = get(obj, key, path);
    if (!it) return ND_ERR_FORMAT;
    const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
    char *end = NULL;
    errno = 0;
    unsigned long long x = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (!s || !end || *end || errno)
        return nd_fail(ND_ERR_FORMAT, "%s%s%s: expected an unsigned 64-bit integer as a decimal string", path,
                       dot(path), key);
    *v = (uint64_t)x;
    return ND_OK;
}

int srch_json_get_int64(const cJSON *obj, const char *key, const char *path, int64_t lo, int64_t hi, int64_t *v) {
    const cJSON *it = get(obj, key, path);
    if (!it) return ND_ERR_FORMAT;
    double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    /* Range before conversion: a huge or NaN double must never reach an integer cast. */
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || floor(d) != d)
        return nd_fail(ND_ERR_FORMAT, "%s%s%s: expected an integer", path, dot(path), key);
    int64_t x = (int64_t)d;
    if (x < lo || x > hi)
        return nd_fail(ND_ERR_FORMAT, "%s%s%s: %lld out of range %lld..%lld", path, dot(path), key, (long long)x,
                       (long long)lo, (long long)hi);
    *v = x;
    return ND_OK;
}

int srch_json_get_int(const cJSON *obj, const char *key, const char *path, int lo, int hi, int *v) {
    int64_t x;
    int rc = srch_json_get_int64(obj, key, path, lo, hi, &x);
    if (rc == ND_OK) *v = (int)x;
    return rc;
}

int srch_json_get_double(const cJSON *obj, const char *key, const char *path, double *v) {
    const cJSON *it = get(obj, key, path);
    if (!it) return ND_ERR_FORMAT;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return nd_fail(ND_ERR_FORMAT, "%s%s%s: expected a finite number", path, dot(path), key);
    *v = it->valuedouble;
    return ND_OK;
}

int srch_json_get_result(const cJSON *obj, const char *path, srch_result *r) {
    memset(r, 0, sizeof *r);
    int rc;
    if ((rc = srch_json_get_int(obj, "worker", path, -1, 1 << 30, &r->worker))) return rc;
    const cJSON *ok = get(obj, "ok", path);
    if (!ok) return ND_ERR_FORMAT;
    if (!cJSON_IsBool(ok)) return nd_fail(ND_ERR_FORMAT, "%s%sok: expected true or false", path, dot(path));
    r->ok = cJSON_IsTrue(ok);
    if ((rc = srch_json_get_double(obj, "reward", path, &r->reward))) return rc;
    if ((rc = srch_json_get_int64(obj, "params", path, 0, INT64_MAX, &r->params))) return rc;
    if ((rc = srch_json_get_int64(obj, "macs", path, 0, INT64_MAX, &r->macs))) return rc;
    if ((rc = srch_json_get_double(obj, "seconds", path, &r->seconds))) return rc;
    const cJSON *msg = get(obj, "message", path);
    if (!msg) return ND_ERR_FORMAT;
    if (!cJSON_IsString(msg)) return nd_fail(ND_ERR_FORMAT, "%s%smessage: expected a string", path, dot(path));
    snprintf(r->message, sizeof r->message, "%s", msg->valuestring);
    return ND_OK;
}
