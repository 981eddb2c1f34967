#include "cli/cli.h"
#include "common/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_parse(int argc, char **argv, const char *usage, const char *description, const nd_opt *opts, int nopts,
              nd_args *args, int *exit_code) {
    if (nd_args_parse(argc, argv, 1, opts, nopts, args) != 0) {
        fprintf(stderr, "nasdet %s: error: %s\n(see 'nasdet %s --help')\n", argv[0], nd_last_error(), argv[0]);
        *exit_code = CLI_EXIT_USAGE;
        return 1;
    }
    if (args->help) {
        nd_args_print_help(stdout, usage, description, opts, nopts);
        nd_args_free(args);
        *exit_code = CLI_EXIT_OK;
        return 1;
    }
    return 0;
}

int cli_fail(const char *command) {
    fprintf(stderr, "nasdet %s: error: %s\n", command, nd_last_error());
    return CLI_EXIT_FAIL;
}

int cli_error(const char *command, int code, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "nasdet %s: error: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_unavailable(const char *command, int issue, const char *what) {
    fprintf(stderr,
            "nasdet %s: this command is not available in this version: %s lands with issue #%d.\n",
            command, what, issue);
    return CLI_EXIT_UNAVAILABLE;
}

double cli_peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb < 0 ? -1.0 : (double)kb / 1024.0;
}
