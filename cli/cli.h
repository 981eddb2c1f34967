/* The nasdet command line: one function per command (cli/cmd_<name>.c), dispatched by main.c.
 * Each gets argv with argv[0] = the command name and returns the process exit code:
 * CLI_EXIT_OK, CLI_EXIT_FAIL (the job failed: bad input, I/O), CLI_EXIT_USAGE (bad command
 * line), CLI_EXIT_UNAVAILABLE (the command is not part of this version). */
#ifndef CLI_H
#define CLI_H

#include "common/args.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_UNAVAILABLE = 3 };

int cli_cmd_detect(int argc, char **argv);
int cli_cmd_eval(int argc, char **argv);
int cli_cmd_train(int argc, char **argv);
int cli_cmd_train_det(int argc, char **argv);
int cli_cmd_det_settings(int argc, char **argv);
int cli_cmd_search(int argc, char **argv);
int cli_cmd_info(int argc, char **argv);
int cli_cmd_data(int argc, char **argv);
int cli_cmd_viz(int argc, char **argv);
int cli_cmd_import(int argc, char **argv);
int cli_cmd_classify(int argc, char **argv);

/* Parse options for `command`; on --help prints the help and returns 1 with *exit_code = 0;
 * on a bad option prints the message and a hint and returns 1 with *exit_code = 2. Returns 0
 * when the command should go on. */
int cli_parse(int argc, char **argv, const char *usage, const char *description, const nd_opt *opts, int nopts,
              nd_args *args, int *exit_code);

/* Print "nasdet COMMAND: error: <last library error>" and return CLI_EXIT_FAIL. */
int cli_fail(const char *command);
/* Print "nasdet COMMAND: error: <formatted message>" and return `code`. */
int cli_error(const char *command, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* For a command whose issue has not landed in this version: say so and exit non-zero. */
int cli_unavailable(const char *command, int issue, const char *what);

/* This process's peak resident memory so far (VmHWM) in MiB, or -1 where /proc cannot tell. */
double cli_peak_rss_mb(void);

#endif
