/* Command-line options: a table of options per command, parsed in one call.
 *
 * Each option names a destination whose current value is the default (shown by the help
 * text). Accepted forms: `--name value`, `--name=value`, and `--flag` for flags. Anything
 * that does not start with "--" is a positional argument; "--" ends the options. */
#ifndef ND_ARGS_H
#define ND_ARGS_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nd_opt_type {
    ND_OPT_FLAG,   /* int: set to 1 when present */
    ND_OPT_INT,    /* int64_t */
    ND_OPT_DOUBLE, /* double */
    ND_OPT_STRING, /* const char * pointing into argv */
    ND_OPT_CHOICE  /* const char *, one of the '|'-separated words in `choices` */
} nd_opt_type;

typedef struct nd_opt {
    const char *name; /* without the leading "--" */
    nd_opt_type type;
    void *dest;
    const char *help;
    const char *choices; /* ND_OPT_CHOICE only, e.g. "bbox|segm|keypoints" */
    const char *metavar; /* shown in help, e.g. "FILE"; NULL for a default by type */
} nd_opt;

typedef struct nd_args {
    const char **positional; /* points into argv; malloc'ed array, free with nd_args_free */
    int npositional;
    int help;                /* --help or -h was given */
} nd_args;

/* Parse argv[first..argc) against `opts` (n entries). On a bad option or value returns
 * ND_ERR_INVALID with a message naming the option and what was expected. */
int nd_args_parse(int argc, char **argv, int first, const nd_opt *opts, int n, nd_args *out);
void nd_args_free(nd_args *args);

/* Print "usage" then one line per option with its default. */
void nd_args_print_help(FILE *fp, const char *usage, const char *description, const nd_opt *opts, int n);

/* "1,2,3" -> malloc'ed array of *count values (caller frees). Errors name the bad item. */
int nd_parse_int_list(const char *text, int64_t **values, int *count);
int nd_parse_double_list(const char *text, double **values, int *count);

#ifdef __cplusplus
}
#endif

#endif
