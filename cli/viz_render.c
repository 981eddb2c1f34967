/* Rendering DOT text with Graphviz's `dot` program, for `nasdet viz` and for commands that
 * draw cells of their results (the search's best cells). `dot` runs with an argv array (no
 * shell), reads the DOT text on its stdin and writes the picture to its stdout, which we write
 * to the output file atomically: a failed or killed `dot` never leaves half a picture. */
#include "cli/viz_render.h"

#include "cli/cli.h"
#include "common/fileio.h"
#include "common/status.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Write all of `data` to fd, retrying short writes. */
static int write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Run `dot -T<format>` on `dot_text`; the picture goes to *image (malloc'ed). */
static int run_dot(const char *command, const char *format, const char *dot_text, char **image, size_t *image_len) {
    int in_pipe[2], out_pipe[2];
    *image = NULL;
    *image_len = 0;
    if (pipe(in_pipe) != 0) return cli_error(command, CLI_EXIT_FAIL, "pipe: %s", strerror(errno));
    if (pipe(out_pipe) != 0) {
        close(in_pipe[0]);
        close(in_pipe[1]);
        return cli_error(command, CLI_EXIT_FAIL, "pipe: %s", strerror(errno));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, in_pipe[1]);
    posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
    char type[16];
    snprintf(type, sizeof type, "-T%s", format);
    char *argv[] = {"dot", type, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "dot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in_pipe[0]);
    close(out_pipe[1]);
    if (err != 0) {
        close(in_pipe[1]);
        close(out_pipe[0]);
        if (err == ENOENT)
            return cli_error(command, CLI_EXIT_FAIL,
                             "Graphviz's `dot` program was not found on PATH: install it (Debian: apt-get install "
                             "graphviz), or write --out FILE.dot and render it elsewhere");
        return cli_error(command, CLI_EXIT_FAIL, "could not run `dot`: %s", strerror(err));
    }
    /* A dot that dies early must not kill us with SIGPIPE: the write fails and we report it. */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    int write_failed = write_all(in_pipe[1], dot_text, strlen(dot_text));
    close(in_pipe[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int oom = buf == NULL;
    for (;;) {
        if (!oom && len == cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) oom = 1;
            else {
                buf = p;
                cap *= 2;
            }
        }
        char sink[4096];
        ssize_t n = oom ? read(out_pipe[0], sink, sizeof sink) : read(out_pipe[0], buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (!oom) len += (size_t)n;
    }
    close(out_pipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    signal(SIGPIPE, old);
    if (oom) {
        free(buf);
        return cli_error(command, CLI_EXIT_FAIL, "out of memory reading the picture from `dot`");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || write_failed || len == 0) {
        free(buf);
        if (WIFEXITED(status))
            return cli_error(command, CLI_EXIT_FAIL, "`dot -T%s` failed (exit code %d); its messages are above", format,
                             WEXITSTATUS(status));
        return cli_error(command, CLI_EXIT_FAIL, "`dot -T%s` was killed by signal %d", format,
                         WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    *image = buf;
    *image_len = len;
    return CLI_EXIT_OK;
}

const char *cli_render_format(const char *path) {
    const char *base = nd_path_basename(path);
    const char *ext = strrchr(base, '.');
    if (!ext) return NULL;
    static const char *const known[][2] = {{".png", "png"}, {".svg", "svg"}, {".pdf", "pdf"},
                                           {".dot", "dot"}, {".gv", "dot"}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(ext, known[i][0]) == 0) return known[i][1];
    return NULL;
}

int cli_render_dot(const char *command, const char *dot_text, const char *out_path) {
    const char *format = cli_render_format(out_path);
    if (!format)
        return cli_error(command, CLI_EXIT_USAGE,
                         "%s: unknown picture format, expected a name ending in .png, .svg, .pdf or .dot", out_path);
    if (strcmp(format, "dot") == 0)
        return nd_file_write_atomic(out_path, dot_text, strlen(dot_text)) ? cli_fail(command) : CLI_EXIT_OK;
    char *image;
    size_t len;
    int rc = run_dot(command, format, dot_text, &image, &len);
    if (rc != CLI_EXIT_OK) return rc;
    if (nd_file_write_atomic(out_path, image, len)) rc = cli_fail(command);
    free(image);
    return rc;
}
