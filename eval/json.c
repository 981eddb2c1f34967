/* Strict JSON pull parser (see json.h for why eval/ does not use cJSON here). */
#include "eval/json.h"

#include "common/status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ceval_json_init(ceval_json *j, const char *buf, size_t len, const char *file) {
    memset(j, 0, sizeof *j);
    j->buf = buf;
    j->len = len;
    j->file = file ? file : "<memory>";
    j->depth = 0;
    j->path[0].key = NULL;
    j->path[0].index = -1;
}

void ceval_json_free(ceval_json *j) {
    free(j->scratch);
    j->scratch = NULL;
    j->scratch_cap = 0;
}

void ceval_json_path(const ceval_json *j, char *out, size_t size) {
    size_t n = 0;
    if (size == 0) return;
    n += (size_t)snprintf(out, size, "$");
    for (int d = 1; d <= j->depth && n < size; d++) {
        const ceval_jpath *p = &j->path[d];
        if (p->key)
            n += (size_t)snprintf(out + n, size - n, ".%.*s", (int)(p->klen > 80 ? 80 : p->klen), p->key);
        else if (p->index >= 0)
            n += (size_t)snprintf(out + n, size - n, "[%lld]", (long long)p->index);
    }
}

int ceval_json_fail(ceval_json *j, int status, const char *fmt, ...) {
    if (j->status) return j->status;
    /* Line and column are counted only here, on failure, so parsing pays nothing for them. */
    size_t line = 1, col = 1, end = j->pos < j->len ? j->pos : j->len;
    for (size_t i = 0; i < end; i++) {
        if (j->buf[i] == '\n') { line++; col = 1; } else col++;
    }
    char path[512], msg[512];
    ceval_json_path(j, path, sizeof path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    j->status = status;
    return nd_fail(status, "%s:%zu:%zu: %s: %s", j->file, line, col, path, msg);
}

static void skip_ws(ceval_json *j) {
    while (j->pos < j->len) {
        char c = j->buf[j->pos];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') j->pos++;
        else break;
    }
}

static int at_end(ceval_json *j) { return j->pos >= j->len; }

static const char *describe(ceval_json *j) {
    if (at_end(j)) return "end of file";
    static _Thread_local char tmp[32];
    unsigned char c = (unsigned char)j->buf[j->pos];
    if (c >= 0x20 && c < 0x7f) snprintf(tmp, sizeof tmp, "'%c'", c);
    else snprintf(tmp, sizeof tmp, "byte 0x%02x", c);
    return tmp;
}

static int has_word(ceval_json *j, const char *w) {
    size_t n = strlen(w);
    return j->len - j->pos >= n && memcmp(j->buf + j->pos, w, n) == 0;
}

ceval_jtype ceval_json_peek(ceval_json *j) {
    if (j->status) return CEVAL_J_NONE;
    skip_ws(j);
    if (at_end(j)) return CEVAL_J_NONE;
    char c = j->buf[j->pos];
    switch (c) {
    case '{': return CEVAL_J_OBJECT;
    case '[': return CEVAL_J_ARRAY;
    case '"': return CEVAL_J_STRING;
    case 't': return CEVAL_J_TRUE;
    case 'f': return CEVAL_J_FALSE;
    case 'n': return CEVAL_J_NULL;
    case 'N': case 'I': case '-': return CEVAL_J_NUMBER;
    default: return (c >= '0' && c <= '9') ? CEVAL_J_NUMBER : CEVAL_J_NONE;
    }
}

static int push(ceval_json *j, int is_obj) {
    if (j->depth >= CEVAL_JSON_MAX_DEPTH)
        return ceval_json_fail(j, ND_ERR_FORMAT, "nesting deeper than %d levels", CEVAL_JSON_MAX_DEPTH);
    j->depth++;
    j->path[j->depth].key = NULL;
    j->path[j->depth].klen = 0;
    j->path[j->depth].index = -1;
    (void)is_obj;
    return 0;
}

int ceval_json_obj_begin(ceval_json *j) {
    if (j->status) return j->status;
    skip_ws(j);
    if (at_end(j) || j->buf[j->pos] != '{')
        return ceval_json_fail(j, ND_ERR_FORMAT, "expected an object, found %s", describe(j));
    j->pos++;
    return push(j, 1);
}

int ceval_json_arr_begin(ceval_json *j) {
    if (j->status) return j->status;
    skip_ws(j);
    if (at_end(j) || j->buf[j->pos] != '[')
        return ceval_json_fail(j, ND_ERR_FORMAT, "expected an array, found %s", describe(j));
    j->pos++;
    return push(j, 0);
}

/* Read a string starting at the opening quote. Strings without escapes are returned in place;
 * the others are decoded into the scratch buffer. */
static int read_string(ceval_json *j, const char **s, size_t *n) {
    skip_ws(j);
    if (at_end(j) || j->buf[j->pos] != '"')
        return ceval_json_fail(j, ND_ERR_FORMAT, "expected a string, found %s", describe(j));
    size_t start = ++j->pos, p = start;
    int escaped = 0;
    while (p < j->len) {
        unsigned char c = (unsigned char)j->buf[p];
        if (c == '"') break;
        if (c < 0x20) {
            j->pos = p;
            return ceval_json_fail(j, ND_ERR_FORMAT, "control character 0x%02x inside a string", c);
        }
        if (c == '\\') { escaped = 1; p += 2; continue; }
        p++;
    }
    if (p >= j->len) {
        j->pos = j->len;
        return ceval_json_fail(j, ND_ERR_FORMAT, "unterminated string");
    }
    if (!escaped) {
        *s = j->buf + start;
        *n = p - start;
        j->pos = p + 1;
        return 0;
    }
    size_t need = p - start + 1;
    if (need > j->scratch_cap) {
        char *t = realloc(j->scratch, need);
        if (!t) return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
        j->scratch = t;
        j->scratch_cap = need;
    }
    size_t o = 0;
    for (size_t i = start; i < p;) {
        char c = j->buf[i];
        if (c != '\\') { j->scratch[o++] = c; i++; continue; }
        char e = j->buf[i + 1];
        i += 2;
        switch (e) {
        case '"': j->scratch[o++] = '"'; break;
        case '\\': j->scratch[o++] = '\\'; break;
        case '/': j->scratch[o++] = '/'; break;
        case 'b': j->scratch[o++] = '\b'; break;
        case 'f': j->scratch[o++] = '\f'; break;
        case 'n': j->scratch[o++] = '\n'; break;
        case 'r': j->scratch[o++] = '\r'; break;
        case 't': j->scratch[o++] = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            for (int k = 0; k < 4; k++, i++) {
                char h = i < p ? j->buf[i] : 0;
                int v = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                        : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                if (v < 0) {
                    j->pos = i;
                    return ceval_json_fail(j, ND_ERR_FORMAT, "bad \\u escape: expected 4 hex digits");
                }
                cp = cp * 16 + (unsigned)v;
            }
            /* A lone surrogate is kept as its 3-byte form, as Python does; a pair is joined. */
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= p && j->buf[i] == '\\' && j->buf[i + 1] == 'u') {
                unsigned lo = 0;
                int ok = 1;
                for (int k = 0; k < 4; k++) {
                    char h = j->buf[i + 2 + k];
                    int v = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                            : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                    if (v < 0) { ok = 0; break; }
                    lo = lo * 16 + (unsigned)v;
                }
                if (ok && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            /* UTF-8 of cp never takes more bytes than its escape did (6 or 12). */
            if (cp < 0x80) j->scratch[o++] = (char)cp;
            else if (cp < 0x800) {
                j->scratch[o++] = (char)(0xC0 | (cp >> 6));
                j->scratch[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                j->scratch[o++] = (char)(0xE0 | (cp >> 12));
                j->scratch[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                j->scratch[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                j->scratch[o++] = (char)(0xF0 | (cp >> 18));
                j->scratch[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                j->scratch[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                j->scratch[o++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            j->pos = i - 1;
            return ceval_json_fail(j, ND_ERR_FORMAT, "bad escape '\\%c' in a string", e >= 0x20 && e < 0x7f ? e : '?');
        }
    }
    j->scratch[o] = 0;
    *s = j->scratch;
    *n = o;
    j->pos = p + 1;
    return 0;
}

/* After a member or element: a comma (returns 1), or the closing char (pops, returns 0). */
static int after_item(ceval_json *j, char close, int64_t count) {
    skip_ws(j);
    if (at_end(j))
        return ceval_json_fail(j, ND_ERR_FORMAT, "unexpected end of file: expected ',' or '%c'", close);
    char c = j->buf[j->pos];
    if (c == close) {
        j->pos++;
        j->depth--;
        return 0;
    }
    if (count == 0) return 1;
    if (c != ',')
        return ceval_json_fail(j, ND_ERR_FORMAT, "expected ',' or '%c', found %s", close, describe(j));
    j->pos++;
    skip_ws(j);
    if (!at_end(j) && j->buf[j->pos] == close)
        return ceval_json_fail(j, ND_ERR_FORMAT, "trailing comma before '%c'", close);
    return 1;
}

int ceval_json_obj_next(ceval_json *j, const char **key, size_t *klen) {
    if (j->status) return j->status;
    ceval_jpath *top = &j->path[j->depth];
    int64_t count = top->index + 1;
    int r = after_item(j, '}', count);
    if (r <= 0) return r;
    top->index = count;
    const char *s;
    size_t n;
    if (read_string(j, &s, &n)) return j->status;
    /* The path keeps the raw key text (escapes undecoded): it is only for messages. */
    top->key = s == j->scratch ? "<escaped key>" : s;
    top->klen = s == j->scratch ? 13 : n;
    skip_ws(j);
    if (at_end(j) || j->buf[j->pos] != ':')
        return ceval_json_fail(j, ND_ERR_FORMAT, "expected ':' after an object key, found %s", describe(j));
    j->pos++;
    *key = s;
    *klen = n;
    return 1;
}

int ceval_json_arr_next(ceval_json *j) {
    if (j->status) return j->status;
    ceval_jpath *top = &j->path[j->depth];
    int r = after_item(j, ']', top->index + 1);
    if (r <= 0) return r;
    top->index++;
    return 1;
}

static const double pow10_tab[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int ceval_json_number(ceval_json *j, double *v, int allow_bool) {
    if (j->status) return j->status;
    skip_ws(j);
    if (allow_bool && has_word(j, "true")) { j->pos += 4; *v = 1; return 0; }
    if (allow_bool && has_word(j, "false")) { j->pos += 5; *v = 0; return 0; }
    if (has_word(j, "NaN")) { j->pos += 3; *v = NAN; return 0; }
    if (has_word(j, "Infinity")) { j->pos += 8; *v = INFINITY; return 0; }
    if (has_word(j, "-Infinity")) { j->pos += 9; *v = -INFINITY; return 0; }
    size_t p = j->pos, start = p;
    int neg = 0;
    if (p < j->len && j->buf[p] == '-') { neg = 1; p++; }
    if (p >= j->len || j->buf[p] < '0' || j->buf[p] > '9')
        return ceval_json_fail(j, ND_ERR_FORMAT, "expected a number, found %s", describe(j));
    uint64_t mant = 0;
    int digits = 0, dexp = 0;
    if (j->buf[p] == '0') {
        p++;
    } else {
        while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9') {
            if (digits < 19) { mant = mant * 10 + (uint64_t)(j->buf[p] - '0'); digits += mant > 0; }
            else dexp++, digits++;
            p++;
        }
    }
    if (p < j->len && j->buf[p] == '.') {
        p++;
        if (p >= j->len || j->buf[p] < '0' || j->buf[p] > '9') {
            j->pos = p;
            return ceval_json_fail(j, ND_ERR_FORMAT, "expected a digit after the decimal point");
        }
        while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9') {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(j->buf[p] - '0');
                digits += mant > 0;
                dexp--;
            } else digits++;
            p++;
        }
    }
    int eexp = 0, has_exp = 0;
    if (p < j->len && (j->buf[p] == 'e' || j->buf[p] == 'E')) {
        has_exp = 1;
        p++;
        int eneg = 0;
        if (p < j->len && (j->buf[p] == '+' || j->buf[p] == '-')) eneg = j->buf[p++] == '-';
        if (p >= j->len || j->buf[p] < '0' || j->buf[p] > '9') {
            j->pos = p;
            return ceval_json_fail(j, ND_ERR_FORMAT, "expected a digit in the exponent");
        }
        while (p < j->len && j->buf[p] >= '0' && j->buf[p] <= '9') {
            if (eexp < 100000) eexp = eexp * 10 + (j->buf[p] - '0');
            p++;
        }
        if (eneg) eexp = -eexp;
    }
    (void)has_exp;
    int e10 = dexp + eexp;
    /* Clinger's fast path: with at most 15 significant digits and |e10| <= 22 both the mantissa
     * and the power of ten are exact doubles, so one IEEE multiply or divide rounds correctly.
     * Everything else goes to strtod, which also rounds correctly (as Python's float() does). */
    if (digits <= 15 && e10 >= -22 && e10 <= 22) {
        double d = (double)mant;
        d = e10 < 0 ? d / pow10_tab[-e10] : d * pow10_tab[e10];
        *v = neg ? -d : d;
    } else {
        char tmp[128];
        size_t n = p - start;
        char *heap = NULL, *s = tmp;
        if (n + 1 > sizeof tmp) {
            heap = malloc(n + 1);
            if (!heap) return ceval_json_fail(j, ND_ERR_NOMEM, "out of memory");
            s = heap;
        }
        memcpy(s, j->buf + start, n);
        s[n] = 0;
        *v = strtod(s, NULL);
        free(heap);
    }
    j->pos = p;
    return 0;
}

int ceval_json_string(ceval_json *j, const char **s, size_t *n) {
    if (j->status) return j->status;
    return read_string(j, s, n);
}

int ceval_json_skip(ceval_json *j) {
    if (j->status) return j->status;
    const char *k;
    size_t kl;
    double d;
    switch (ceval_json_peek(j)) {
    case CEVAL_J_OBJECT: {
        int r;
        if (ceval_json_obj_begin(j)) return j->status;
        while ((r = ceval_json_obj_next(j, &k, &kl)) == 1)
            if (ceval_json_skip(j)) return j->status;
        return r;
    }
    case CEVAL_J_ARRAY: {
        int r;
        if (ceval_json_arr_begin(j)) return j->status;
        while ((r = ceval_json_arr_next(j)) == 1)
            if (ceval_json_skip(j)) return j->status;
        return r;
    }
    case CEVAL_J_STRING: return read_string(j, &k, &kl);
    case CEVAL_J_NUMBER: return ceval_json_number(j, &d, 0);
    case CEVAL_J_TRUE:
        if (has_word(j, "true")) { j->pos += 4; return 0; }
        break;
    case CEVAL_J_FALSE:
        if (has_word(j, "false")) { j->pos += 5; return 0; }
        break;
    case CEVAL_J_NULL:
        if (has_word(j, "null")) { j->pos += 4; return 0; }
        break;
    default: break;
    }
    if (j->status) return j->status;
    return ceval_json_fail(j, ND_ERR_FORMAT, "expected a JSON value, found %s", describe(j));
}

int ceval_json_end(ceval_json *j) {
    if (j->status) return j->status;
    skip_ws(j);
    if (!at_end(j))
        return ceval_json_fail(j, ND_ERR_FORMAT, "extra data after the top-level value: %s", describe(j));
    return 0;
}
