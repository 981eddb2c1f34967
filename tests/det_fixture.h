/* Reader for tests/fixtures/det_torchvision/torchvision.txt (format described in its
 * make_fixtures.py), shared by the tests/test_detector_*.c files. Header-only because each
 * test file is its own binary and tests/util belongs to the foundation. */
#ifndef DET_FIXTURE_H
#define DET_FIXTURE_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"

#ifndef DET_FIXTURE_PATH /* a test may point the reader at another file of the same format */
#define DET_FIXTURE_PATH "tests/fixtures/det_torchvision/torchvision.txt"
#endif

/* Find array `name` and return a pointer to its values line; *count gets its length. */
static const char *fx_find(const char *text, const char *name, const char *dtype,
                           int64_t *count) {
    size_t len = strlen(name);
    const char *p = text;
    while (p && *p) {
        if (*p != '#' && strncmp(p, name, len) == 0 && p[len] == ' ') {
            const char *q = p + len + 1;
            cr_assert(strncmp(q, dtype, 3) == 0, "fixture %s is not %s", name, dtype);
            *count = strtoll(q + 4, NULL, 10);
            const char *nl = strchr(p, '\n');
            cr_assert_not_null(nl);
            return nl + 1;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    cr_assert_fail("fixture array %s not found in %s", name, DET_FIXTURE_PATH);
    return NULL;
}

static char *fx_text(void) {
    char *text;
    size_t len;
    cr_assert_eq(nd_file_read_all(DET_FIXTURE_PATH, &text, &len), 0, "%s", nd_last_error());
    return text;
}

/* malloc'ed float array `name` (caller frees); *count its length (may be NULL). */
__attribute__((unused)) static float *fx_f32(const char *name, int64_t *count) {
    char *text = fx_text();
    int64_t n;
    const char *p = fx_find(text, name, "f32", &n);
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        char *end;
        v[i] = strtof(p, &end);
        cr_assert(end != p, "fixture %s: bad number %lld", name, (long long)i);
        p = end;
    }
    free(text);
    if (count) *count = n;
    return v;
}

__attribute__((unused)) static int64_t *fx_i64(const char *name, int64_t *count) {
    char *text = fx_text();
    int64_t n;
    const char *p = fx_find(text, name, "i64", &n);
    int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        char *end;
        v[i] = strtoll(p, &end, 10);
        cr_assert(end != p, "fixture %s: bad number %lld", name, (long long)i);
        p = end;
    }
    free(text);
    if (count) *count = n;
    return v;
}

/* |a - b| <= atol + rtol * |b|, element by element, naming the first mismatch. */
__attribute__((unused)) static void fx_expect_close(const float *a, const float *b, int64_t n,
                                                    float atol, float rtol, const char *what) {
    for (int64_t i = 0; i < n; i++) {
        float d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        float lim = atol + rtol * (b[i] < 0 ? -b[i] : b[i]);
        if (!(d <= lim) && !(a[i] != a[i] && b[i] != b[i]))
            cr_assert_fail("%s[%lld]: got %.9g, expected %.9g", what, (long long)i,
                           (double)a[i], (double)b[i]);
    }
}

#endif
