/* A small strict pull parser for JSON, private to eval/.
 *
 * Why not cJSON: a COCO val2017-sized results file (500,000 detections) makes a cJSON tree of
 * about 7 million nodes (~450 MB, most of the load time in malloc); the evaluator's target is
 * under 2 s and 400 MB for the whole process. This parser builds no tree: the loaders walk the
 * text once and copy what they need straight into flat arrays.
 *
 * Grammar: RFC 8259, plus the tokens NaN, Infinity and -Infinity, which Python's json module
 * (and so pycocotools) accepts and json.dump writes for non-finite scores. Nesting is limited
 * to CEVAL_JSON_MAX_DEPTH. Every error is recorded with nd_fail as
 *   "<file>:<line>:<col>: <JSON path>: <what was expected>"
 * and the parser stays failed: every later call returns the same negative status. */
#ifndef CEVAL_JSON_H
#define CEVAL_JSON_H

#include <stddef.h>
#include <stdint.h>

#define CEVAL_JSON_MAX_DEPTH 64

typedef enum ceval_jtype {
    CEVAL_J_NONE = 0, CEVAL_J_OBJECT, CEVAL_J_ARRAY, CEVAL_J_STRING, CEVAL_J_NUMBER,
    CEVAL_J_TRUE, CEVAL_J_FALSE, CEVAL_J_NULL
} ceval_jtype;

typedef struct ceval_jpath {
    const char *key;  /* raw key text in the buffer (NULL for an array element) */
    size_t klen;
    int64_t index;    /* array element index */
} ceval_jpath;

typedef struct ceval_json {
    const char *buf;
    size_t len, pos;
    const char *file;
    int status;                 /* 0, or the failure every call now returns */
    int depth;
    ceval_jpath path[CEVAL_JSON_MAX_DEPTH + 1];
    char *scratch;              /* decoded strings that had escapes */
    size_t scratch_cap;
} ceval_json;

/* Start parsing buf[0..len) (need not be NUL-terminated); `file` names it in messages. */
void ceval_json_init(ceval_json *j, const char *buf, size_t len, const char *file);
void ceval_json_free(ceval_json *j);

/* Type of the next value without consuming it (CEVAL_J_NONE on a syntax error). */
ceval_jtype ceval_json_peek(ceval_json *j);

/* Objects: begin, then next() returns 1 with the member's key (decoded; valid until the next
 * string is read) and the parser positioned on its value, or 0 after the closing brace. */
int ceval_json_obj_begin(ceval_json *j);
int ceval_json_obj_next(ceval_json *j, const char **key, size_t *klen);
/* Arrays: begin, then next() returns 1 when an element follows, 0 after the closing bracket. */
int ceval_json_arr_begin(ceval_json *j);
int ceval_json_arr_next(ceval_json *j);

/* Scalars. number() also takes true/false as 1/0 when `allow_bool` (Python: True == 1). */
int ceval_json_number(ceval_json *j, double *v, int allow_bool);
int ceval_json_string(ceval_json *j, const char **s, size_t *n);
/* Skip any value, checking its syntax. */
int ceval_json_skip(ceval_json *j);
/* After the top-level value: only whitespace may follow. */
int ceval_json_end(ceval_json *j);

/* Fail at the current position with "<file>:<line>:<col>: <path>: <message>". */
int ceval_json_fail(ceval_json *j, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Write the current JSON path ("$.annotations[3].bbox") into out. */
void ceval_json_path(const ceval_json *j, char *out, size_t size);

#endif
