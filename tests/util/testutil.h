/* Helpers shared by the tests: running the CLI, temporary folders, fixture paths. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stddef.h>

/* Run `bin/nasdet ARGS` through the shell (ARGS is shell text), capturing stdout+stderr into a
 * malloc'ed string (*output, may be NULL to discard). Returns the exit code (-1 on spawn error). */
int tu_run_cli(const char *args, char **output);
/* A fresh temporary folder (malloc'ed path), removed by tu_rmtree. */
char *tu_tmpdir(void);
void tu_rmtree(const char *path);
/* Read a whole file as a NUL-terminated malloc'ed string; NULL when it cannot be read. */
char *tu_read_file(const char *path, size_t *len);
int tu_write_file(const char *path, const char *text);

#endif
