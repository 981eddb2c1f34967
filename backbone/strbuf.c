#include "backbone/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/status.h"

static int reserve(nas_strbuf *sb, size_t extra) {
    if (sb->failed) return 0;
    if (sb->len + extra + 1 <= sb->cap) return 1;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1) cap *= 2;
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->failed = 1;
        return 0;
    }
    sb->data = p;
    sb->cap = cap;
    return 1;
}

void nas_strbuf_printf(nas_strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(sb, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void nas_strbuf_json_string(nas_strbuf *sb, const char *s) {
    nas_strbuf_printf(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') nas_strbuf_printf(sb, "\\%c", *p);
        else if (*p == '\n') nas_strbuf_printf(sb, "\\n");
        else if (*p == '\t') nas_strbuf_printf(sb, "\\t");
        else if (*p < 0x20) nas_strbuf_printf(sb, "\\u%04x", *p);
        else nas_strbuf_printf(sb, "%c", *p);
    }
    nas_strbuf_printf(sb, "\"");
}

int nas_strbuf_finish(nas_strbuf *sb, char **out) {
    if (!sb->failed && !sb->data) reserve(sb, 0);
    if (sb->failed) {
        free(sb->data);
        *out = NULL;
        return nd_fail(ND_ERR_NOMEM, "out of memory while writing text");
    }
    sb->data[sb->len] = '\0';
    *out = sb->data;
    sb->data = NULL;
    return ND_OK;
}
