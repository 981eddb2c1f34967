/* Internal to backbone/: a growable text buffer for the JSON and DOT writers. */
#ifndef NAS_STRBUF_H
#define NAS_STRBUF_H

#include <stddef.h>

typedef struct nas_strbuf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
    int failed; /* an allocation failed: later appends do nothing */
} nas_strbuf;

/* printf-style append. Failure is sticky and reported by nas_strbuf_finish. */
void nas_strbuf_printf(nas_strbuf *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Append `s` as a JSON string literal (quotes and escapes included). */
void nas_strbuf_json_string(nas_strbuf *sb, const char *s);
/* Hand the text to *out (caller frees) and return 0, or free it and return ND_ERR_NOMEM. */
int nas_strbuf_finish(nas_strbuf *sb, char **out);

#endif
