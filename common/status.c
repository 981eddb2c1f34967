#include "common/status.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char last_error[2048];

const char *nd_status_name(int status) {
    switch (status) {
    case ND_OK: return "ok";
    case ND_ERR_IO: return "I/O error";
    case ND_ERR_FORMAT: return "format error";
    case ND_ERR_INVALID: return "invalid value";
    case ND_ERR_NOMEM: return "out of memory";
    case ND_ERR_UNSUPPORTED: return "unsupported";
    case ND_ERR_NOT_FOUND: return "not found";
    case ND_ERR_NUMERIC: return "numeric error";
    case ND_ERR_DEVICE: return "device error";
    case ND_ERR_COMM: return "communication error";
    case ND_ERR_INTERRUPTED: return "interrupted";
    default: return "unknown error";
    }
}

int nd_fail(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

int nd_fail_context(int status, const char *fmt, ...) {
    char prefix[1024], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t np = strnlen(prefix, sizeof last_error - 1);
    size_t no = strnlen(old, sizeof last_error - 1 - np);
    memcpy(last_error, prefix, np);
    memcpy(last_error + np, old, no);
    last_error[np + no] = '\0';
    return status;
}

const char *nd_last_error(void) { return last_error; }

void nd_error_clear(void) { last_error[0] = '\0'; }

void nd_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d: internal error: assertion '%s' failed: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
