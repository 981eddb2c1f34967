/* Status codes and the last error message.
 *
 * Library functions that can fail on bad input or environment return an int status: 0 (ND_OK)
 * on success, a negative nd_status on failure, after recording a human-readable message with
 * nd_fail(). The message is per thread and stays until the next failure or nd_error_clear().
 * Bugs in our own code are not statuses: they abort through ND_ASSERT. */
#ifndef ND_STATUS_H
#define ND_STATUS_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nd_status {
    ND_OK = 0,
    ND_ERR_IO = -1,          /* a file or folder could not be opened, read or written */
    ND_ERR_FORMAT = -2,      /* malformed input: JSON, image, binary record, checkpoint */
    ND_ERR_INVALID = -3,     /* an argument or value out of its allowed range */
    ND_ERR_NOMEM = -4,       /* allocation failed or an arena is full */
    ND_ERR_UNSUPPORTED = -5, /* a valid request this build cannot serve */
    ND_ERR_NOT_FOUND = -6,   /* a named thing (id, tensor, file in a list) does not exist */
    ND_ERR_NUMERIC = -7,     /* NaN or infinity where a finite number was required */
    ND_ERR_DEVICE = -8,      /* CUDA or another accelerator call failed */
    ND_ERR_COMM = -9,        /* MPI or another communication failure */
    ND_ERR_INTERRUPTED = -10 /* stopped on request (signal); state was saved */
} nd_status;

/* Short name of a status code, e.g. "format error". Never NULL. */
const char *nd_status_name(int status);

/* Record the message for `status` (printf-style) and return `status`, so that a failing
 * function can say `return nd_fail(ND_ERR_FORMAT, "%s: expected ...", path);`. */
int nd_fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Put `prefix` (printf-style) in front of the current message, e.g. the file name when a
 * lower layer only knew the JSON path. Returns `status` unchanged. */
int nd_fail_context(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The last message recorded on this thread ("" when none). Valid until the next nd_fail. */
const char *nd_last_error(void);
void nd_error_clear(void);

/* Abort with file, line and message: for broken invariants of our own code, never for input. */
void nd_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5), noreturn))
#endif
    ;
#define ND_ASSERT(cond, ...) \
    do { if (!(cond)) nd_assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

#ifdef __cplusplus
}
#endif

#endif
