#include "tests/util/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *nasdet_bin(void) {
    const char *b = getenv("NASDET_BIN");
    return b && *b ? b : "bin/nasdet";
}

int tu_run_cli(const char *args, char **output) {
    size_t n = strlen(args) + strlen(nasdet_bin()) + 32;
    char *cmd = malloc(n);
    snprintf(cmd, n, "%s %s 2>&1", nasdet_bin(), args);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap) buf = realloc(buf, cap *= 2);
        size_t got = fread(buf + len, 1, cap - len - 1, p);
        if (got == 0) break;
        len += got;
    }
    buf[len] = '\0';
    int status = pclose(p);
    if (output) *output = buf;
    else free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *tu_tmpdir(void) {
    char tmpl[] = "/tmp/nasdet-test-XXXXXX";
    if (!mkdtemp(tmpl)) return NULL;
    return strdup(tmpl);
}

void tu_rmtree(const char *path) {
    if (!path || strncmp(path, "/tmp/nasdet-test-", 17) != 0) return; /* never anything else */
    size_t n = strlen(path) + 16;
    char *cmd = malloc(n);
    snprintf(cmd, n, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
    free(cmd);
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    buf[got] = '\0';
    if (len) *len = got;
    return buf;
}

int tu_write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    fputs(text, fp);
    return fclose(fp);
}
