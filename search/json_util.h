/* Internal to search/: reading and writing the JSON pieces shared by the queue checkpoint and
 * the children log. Getters fail with ND_ERR_FORMAT naming "<path>.<key>". */
#ifndef SRCH_JSON_UTIL_H
#define SRCH_JSON_UTIL_H

#include <cJSON.h>

#include "search/search.h"

/* obj[key] = the genotype's compact JSON (an object, not a string). */
int srch_json_add_genotype(cJSON *obj, const char *key, const nas_genotype *g);
/* 64-bit seeds as decimal strings: a JSON number (a double) would round them. */
int srch_json_add_u64(cJSON *obj, const char *key, uint64_t v);
/* ok, reward, params, macs, seconds, worker, message as keys of obj. */
int srch_json_add_result(cJSON *obj, const srch_result *r);

int srch_json_get_genotype(const cJSON *obj, const char *key, const char *path, nas_genotype *g);
int srch_json_get_u64(const cJSON *obj, const char *key, const char *path, uint64_t *v);
int srch_json_get_int64(const cJSON *obj, const char *key, const char *path, int64_t lo, int64_t hi, int64_t *v);
int srch_json_get_int(const cJSON *obj, const char *key, const char *path, int lo, int hi, int *v);
int srch_json_get_double(const cJSON *obj, const char *key, const char *path, double *v);
int srch_json_get_result(const cJSON *obj, const char *path, srch_result *r);

#endif
