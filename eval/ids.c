#include "eval/ids.h"

#include "common/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ceval_idtab_free(ceval_idtab *t) {
    if (!t) return;
    for (int64_t i = 0; i < t->n; i++)
        if (t->ids[i].is_str) free((char *)t->ids[i].str);
    free(t->ids);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static uint64_t hash_id(const ceval_id *id) {
    uint64_t h;
    if (id->is_str) {
        h = 1469598103934665603ull;
        for (uint32_t i = 0; i < id->len; i++) h = (h ^ (unsigned char)id->str[i]) * 1099511628211ull;
        return h ^ 0x5bd1e995u;
    }
    double d = id->num == 0 ? 0.0 : id->num; /* -0.0 == 0.0 */
    if (isnan(d)) d = NAN;
    memcpy(&h, &d, sizeof h);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static int id_eq(const ceval_id *a, const ceval_id *b) {
    if (a->is_str != b->is_str) return 0;
    if (a->is_str) return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    return a->num == b->num;
}

int64_t ceval_idtab_find(const ceval_idtab *t, const ceval_id *id) {
    if (t->nslots == 0) return -1;
    uint64_t mask = (uint64_t)t->nslots - 1;
    for (uint64_t s = hash_id(id) & mask;; s = (s + 1) & mask) {
        int64_t v = t->slots[s];
        if (v == 0) return -1;
        if (id_eq(&t->ids[v - 1], id)) return v - 1;
    }
}

static int rehash(ceval_idtab *t, int64_t nslots) {
    int64_t *slots = calloc((size_t)nslots, sizeof *slots);
    if (!slots) return nd_fail(ND_ERR_NOMEM, "out of memory for an id table of %lld entries", (long long)nslots);
    uint64_t mask = (uint64_t)nslots - 1;
    for (int64_t i = 0; i < t->n; i++) {
        uint64_t s = hash_id(&t->ids[i]) & mask;
        while (slots[s]) s = (s + 1) & mask;
        slots[s] = i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

int64_t ceval_idtab_intern(ceval_idtab *t, const ceval_id *id) {
    int64_t f = ceval_idtab_find(t, id);
    if (f >= 0) return f;
    if ((t->n + 1) * 2 > t->nslots && rehash(t, t->nslots ? t->nslots * 2 : 64)) return ND_ERR_NOMEM;
    if (t->n == t->cap) {
        int64_t cap = t->cap ? t->cap * 2 : 64;
        ceval_id *ids = realloc(t->ids, (size_t)cap * sizeof *ids);
        if (!ids) return nd_fail(ND_ERR_NOMEM, "out of memory for ids");
        t->ids = ids;
        t->cap = cap;
    }
    ceval_id c = *id;
    if (c.is_str) {
        char *s = malloc((size_t)c.len + 1);
        if (!s) return nd_fail(ND_ERR_NOMEM, "out of memory for ids");
        memcpy(s, id->str, c.len);
        s[c.len] = 0;
        c.str = s;
    } else if (c.num == 0) {
        c.num = 0.0;
    }
    t->ids[t->n] = c;
    uint64_t mask = (uint64_t)t->nslots - 1, s = hash_id(&c) & mask;
    while (t->slots[s]) s = (s + 1) & mask;
    t->slots[s] = t->n + 1;
    return t->n++;
}

int ceval_id_cmp(const ceval_id *a, const ceval_id *b) {
    if (a->is_str) {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->str, b->str, n); /* UTF-8 byte order == code point order */
        return c ? c : (a->len > b->len) - (a->len < b->len);
    }
    return (a->num > b->num) - (a->num < b->num);
}

void ceval_id_format(const ceval_id *id, char *out, size_t size) {
    if (id->is_str) {
        snprintf(out, size, "\"%.*s\"", (int)(id->len > 60 ? 60 : id->len), id->str);
    } else if (id->num == floor(id->num) && fabs(id->num) < 1e17) {
        snprintf(out, size, "%.0f", id->num);
    } else {
        snprintf(out, size, "%.17g", id->num);
    }
}
