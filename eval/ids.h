/* Interned JSON ids (private to eval/). pycocotools keys its dicts by the JSON value itself:
 * 42 and 42.0 are one id (Python: 42 == 42.0), "42" is another, true is 1. A table maps each
 * distinct value to a dense index. */
#ifndef CEVAL_IDS_H
#define CEVAL_IDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ceval_id {
    double num;       /* when !is_str */
    const char *str;  /* owned copy when is_str */
    uint32_t len;
    uint8_t is_str;
} ceval_id;

typedef struct ceval_idtab {
    ceval_id *ids;
    int64_t n, cap;
    int64_t *slots;   /* open addressing: index + 1, 0 = empty */
    int64_t nslots;
} ceval_idtab;

void ceval_idtab_free(ceval_idtab *t);
/* Index of `id` in t, adding it (and copying its string) when new; negative status on OOM. */
int64_t ceval_idtab_intern(ceval_idtab *t, const ceval_id *id);
/* Index of `id`, or -1. */
int64_t ceval_idtab_find(const ceval_idtab *t, const ceval_id *id);
/* Python's ordering of two ids of the same kind (numbers, or strings by code point). */
int ceval_id_cmp(const ceval_id *a, const ceval_id *b);
/* "42", "3.5" or "\"abc\"" (as Python would print it in a message). */
void ceval_id_format(const ceval_id *id, char *out, size_t size);

#endif
