/* String key/value metadata for checkpoints. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/nn_impl.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    NN_ASSERT(d != NULL, "out of memory");
    memcpy(d, s, n);
    return d;
}

void nn_meta_init(nn_meta *m) { memset(m, 0, sizeof *m); }

void nn_meta_free(nn_meta *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

void nn_meta_set(nn_meta *m, const char *key, const char *value) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0) {
            free(m->values[i]);
            m->values[i] = dup_str(value);
            return;
        }
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 16;
        char **k = realloc(m->keys, (size_t)cap * sizeof *k);
        NN_ASSERT(k != NULL, "out of memory");
        m->keys = k;
        char **v = realloc(m->values, (size_t)cap * sizeof *v);
        NN_ASSERT(v != NULL, "out of memory");
        m->values = v;
        m->cap = cap;
    }
    m->keys[m->n] = dup_str(key);
    m->values[m->n] = dup_str(value);
    m->n++;
}

const char *nn_meta_get(const nn_meta *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0) return m->values[i];
    return NULL;
}

void nn_meta_set_int(nn_meta *m, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    nn_meta_set(m, key, buf);
}

int nn_meta_get_int(const nn_meta *m, const char *key, int64_t *v) {
    const char *s = nn_meta_get(m, key);
    if (!s) return nd_fail(ND_ERR_NOT_FOUND, "metadata: no key '%s'", key);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) return nd_fail(ND_ERR_FORMAT, "metadata: '%s' is '%s', expected an integer", key, s);
    *v = x;
    return ND_OK;
}

void nn_meta_set_rng(nn_meta *m, const char *key, const nd_rng *rng) {
    char buf[80];
    snprintf(buf, sizeof buf, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, rng->s[0], rng->s[1],
             rng->s[2], rng->s[3]);
    nn_meta_set(m, key, buf);
}

int nn_meta_get_rng(const nn_meta *m, const char *key, nd_rng *rng) {
    const char *s = nn_meta_get(m, key);
    if (!s) return nd_fail(ND_ERR_NOT_FOUND, "metadata: no key '%s'", key);
    if (strlen(s) != 64) return nd_fail(ND_ERR_FORMAT, "metadata: '%s' is not 64 hex digits", key);
    nd_rng r;
    for (int i = 0; i < 4; i++) {
        uint64_t v = 0;
        for (int j = 0; j < 16; j++) {
            char ch = s[i * 16 + j];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : (ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1);
            if (d < 0) return nd_fail(ND_ERR_FORMAT, "metadata: '%s' is not 64 hex digits", key);
            v = v << 4 | (uint64_t)d;
        }
        r.s[i] = v;
    }
    *rng = r;
    return ND_OK;
}
