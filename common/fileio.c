#include "common/fileio.h"
#include "common/status.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int nd_file_read_all(const char *path, char **data, size_t *len) {
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    *data = NULL;
    *len = 0;
    if (!fp) return nd_fail(ND_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* Read in growing chunks rather than trusting ftell: works for pipes and /proc too. */
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            char *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                fclose(fp);
                return nd_fail(ND_ERR_NOMEM, "%s: out of memory after %zu bytes", path, n);
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        int e = errno;
        free(buf);
        fclose(fp);
        return nd_fail(ND_ERR_IO, "%s: read error: %s", path, strerror(e));
    }
    fclose(fp);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return ND_OK;
}

static void atomic_release(nd_atomic_file *af) {
    free(af->final_path);
    free(af->tmp_path);
    af->final_path = af->tmp_path = NULL;
    af->fp = NULL;
}

int nd_atomic_open(nd_atomic_file *af, const char *path) {
    size_t n = strlen(path) + 32;
    memset(af, 0, sizeof *af);
    af->final_path = strdup(path);
    af->tmp_path = malloc(n);
    if (!af->final_path || !af->tmp_path) {
        atomic_release(af);
        return nd_fail(ND_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int e = errno;
        int rc = nd_fail(ND_ERR_IO, "%s: cannot write: %s", af->tmp_path, strerror(e));
        atomic_release(af);
        return rc;
    }
    return ND_OK;
}

static void fsync_parent(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int nd_atomic_commit(nd_atomic_file *af) {
    int rc = ND_OK;
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0 || ferror(af->fp))
        rc = nd_fail(ND_ERR_IO, "%s: write failed: %s", af->final_path, strerror(errno));
    if (fclose(af->fp) != 0 && rc == ND_OK)
        rc = nd_fail(ND_ERR_IO, "%s: close failed: %s", af->final_path, strerror(errno));
    if (rc == ND_OK && rename(af->tmp_path, af->final_path) != 0)
        rc = nd_fail(ND_ERR_IO, "%s: rename failed: %s", af->final_path, strerror(errno));
    if (rc != ND_OK) unlink(af->tmp_path);
    else fsync_parent(af->final_path);
    atomic_release(af);
    return rc;
}

void nd_atomic_abort(nd_atomic_file *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    atomic_release(af);
}

int nd_file_write_atomic(const char *path, const void *data, size_t len) {
    nd_atomic_file af;
    int rc = nd_atomic_open(&af, path);
    if (rc) return rc;
    if (len && fwrite(data, 1, len, af.fp) != len) {
        rc = nd_fail(ND_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        nd_atomic_abort(&af);
        return rc;
    }
    return nd_atomic_commit(&af);
}

int nd_file_append_line(const char *path, const char *line) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return nd_fail(ND_ERR_IO, "%s: cannot append: %s", path, strerror(errno));
    size_t n = strlen(line);
    /* One write per line (line + '\n' together) so that concurrent appenders never interleave. */
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return nd_fail(ND_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(buf, line, n);
    buf[n] = '\n';
    ssize_t w = write(fd, buf, n + 1);
    free(buf);
    int rc = ND_OK;
    if (w != (ssize_t)(n + 1) || fsync(fd) != 0)
        rc = nd_fail(ND_ERR_IO, "%s: append failed: %s", path, strerror(errno));
    close(fd);
    return rc;
}

int nd_mkdirs(const char *path) {
    if (!path[0]) return nd_fail(ND_ERR_INVALID, "empty folder name");
    char *p = strdup(path);
    if (!p) return nd_fail(ND_ERR_NOMEM, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int rc = nd_fail(ND_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
                free(p);
                return rc;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    free(p);
    if (!nd_path_is_dir(path)) return nd_fail(ND_ERR_IO, "%s: exists and is not a folder", path);
    return ND_OK;
}

int nd_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int nd_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *nd_path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (!s) return NULL;
    memcpy(s, a, na);
    size_t k = na;
    if (na && a[na - 1] != '/') s[k++] = '/';
    memcpy(s + k, b, nb + 1);
    return s;
}

const char *nd_path_basename(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

double nd_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
