#include "common/datapath.h"
#include "common/fileio.h"
#include "common/status.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NASDET_DATADIR
#define NASDET_DATADIR "/usr/local/share/nasdet"
#endif

static int exe_dir(char *out, size_t n) {
    ssize_t len = readlink("/proc/self/exe", out, n - 1);
    if (len <= 0) return -1;
    out[len] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash) return -1;
    *slash = '\0';
    return 0;
}

int nd_data_path(const char *relative, char *out, size_t out_size) {
    /* Candidate roots: the environment override, then the executable's ancestors (bin/ in a
     * source tree, build/<variant>/bin/ for SAN=1 or DEBUG=1 builds, PREFIX/bin when installed),
     * each tried as <ancestor>/demos and <ancestor>/share/nasdet, then the compiled-in folder. */
    enum { MAX_ROOTS = 12 };
    char roots[MAX_ROOTS][PATH_MAX];
    int nroots = 0;
    const char *env = getenv("NASDET_DATA_DIR");
    if (env && *env) snprintf(roots[nroots++], PATH_MAX, "%s", env);
    char dir[PATH_MAX];
    if (exe_dir(dir, sizeof dir) == 0) {
        for (int up = 0; up < 4 && nroots + 2 < MAX_ROOTS; up++) {
            char *slash = strrchr(dir, '/');
            if (!slash || slash == dir) break;
            *slash = '\0';
            snprintf(roots[nroots++], PATH_MAX, "%.*s/demos", PATH_MAX - 16, dir);
            snprintf(roots[nroots++], PATH_MAX, "%.*s/share/nasdet", PATH_MAX - 24, dir);
        }
    }
    snprintf(roots[nroots++], PATH_MAX, "%s", NASDET_DATADIR);
    for (int i = 0; i < nroots; i++) {
        snprintf(out, out_size, "%s/%s", roots[i], relative);
        if (nd_path_exists(out)) {
            char *real = realpath(out, NULL);
            if (real) {
                snprintf(out, out_size, "%s", real);
                free(real);
            }
            return ND_OK;
        }
    }
    out[0] = '\0';
    return nd_fail(ND_ERR_NOT_FOUND,
                   "data file '%s' not found under $NASDET_DATA_DIR, the demos/ or share/nasdet/ folders above the "
                   "executable, or %s (set NASDET_DATA_DIR to the folder that holds it)",
                   relative, NASDET_DATADIR);
}
