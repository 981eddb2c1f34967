/* Files: whole-file reads, atomic writes, folders, paths and time.
 *
 * Atomic writes go to "<path>.tmp.<pid>", are flushed and fsync'ed, then renamed over `path`
 * and the folder is fsync'ed: a crash leaves either the old file or the new one, never half
 * of one. Checkpoints, logs rewritten in place and outputs all go through here. */
#ifndef ND_FILEIO_H
#define ND_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read the whole file into a malloc'ed buffer (caller frees) with a NUL after the last byte
 * (not counted in *len). Fails with ND_ERR_IO and a message naming the file. */
int nd_file_read_all(const char *path, char **data, size_t *len);

typedef struct nd_atomic_file {
    FILE *fp;           /* write here between open and commit */
    char *final_path;
    char *tmp_path;
} nd_atomic_file;

int nd_atomic_open(nd_atomic_file *af, const char *path);
/* Flush, fsync, rename into place, fsync the folder. Closes and releases `af` either way. */
int nd_atomic_commit(nd_atomic_file *af);
/* Drop the temporary file; the old file, if any, is untouched. */
void nd_atomic_abort(nd_atomic_file *af);
/* Write `len` bytes as the whole new content of `path`, atomically. */
int nd_file_write_atomic(const char *path, const void *data, size_t len);

/* Append one line (a '\n' is added) to `path` and fsync, for logs that must survive a kill. */
int nd_file_append_line(const char *path, const char *line);

/* mkdir -p. */
int nd_mkdirs(const char *path);
int nd_path_exists(const char *path);
int nd_path_is_dir(const char *path);
/* "a" + "b" -> "a/b" into a malloc'ed string (caller frees). */
char *nd_path_join(const char *a, const char *b);
/* Pointer to the last path component inside `path` (no copy). */
const char *nd_path_basename(const char *path);

/* Seconds on a monotonic clock, for timing and rates. */
double nd_time_now(void);

#ifdef __cplusplus
}
#endif

#endif
