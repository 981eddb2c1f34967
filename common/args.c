#include "common/args.h"
#include "common/status.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int parse_int(const char *text, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *text, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int choice_ok(const char *choices, const char *value) {
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

static int set_value(const nd_opt *o, const char *value) {
    switch (o->type) {
    case ND_OPT_INT:
        if (parse_int(value, o->dest))
            return nd_fail(ND_ERR_INVALID, "--%s: expected an integer, got '%s'", o->name, value);
        return 0;
    case ND_OPT_DOUBLE:
        if (parse_double(value, o->dest))
            return nd_fail(ND_ERR_INVALID, "--%s: expected a number, got '%s'", o->name, value);
        return 0;
    case ND_OPT_CHOICE:
        if (!choice_ok(o->choices, value))
            return nd_fail(ND_ERR_INVALID, "--%s: expected one of %s, got '%s'", o->name, o->choices, value);
        /* fall through */
    case ND_OPT_STRING:
        *(const char **)o->dest = value;
        return 0;
    case ND_OPT_FLAG:
        break;
    }
    return nd_fail(ND_ERR_INVALID, "--%s takes no value", o->name);
}

int nd_args_parse(int argc, char **argv, int first, const nd_opt *opts, int n, nd_args *out) {
    int only_positional = 0;
    memset(out, 0, sizeof *out);
    out->positional = calloc((size_t)(argc > 0 ? argc : 1), sizeof *out->positional);
    if (!out->positional) return nd_fail(ND_ERR_NOMEM, "out of memory");
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || a[1] == '\0' || (a[1] != '-' && strcmp(a, "-h") != 0)) {
            out->positional[out->npositional++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            out->help = 1;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const nd_opt *o = NULL;
        for (int k = 0; k < n; k++)
            if (strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0) o = &opts[k];
        if (!o) {
            nd_args_free(out);
            return nd_fail(ND_ERR_INVALID, "unknown option '--%.*s'", (int)len, name);
        }
        if (o->type == ND_OPT_FLAG) {
            if (eq) {
                nd_args_free(out);
                return nd_fail(ND_ERR_INVALID, "--%s takes no value", o->name);
            }
            *(int *)o->dest = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) {
                nd_args_free(out);
                return nd_fail(ND_ERR_INVALID, "--%s needs a value", o->name);
            }
            value = argv[++i];
        }
        if (set_value(o, value)) {
            nd_args_free(out);
            return ND_ERR_INVALID;
        }
    }
    return ND_OK;
}

void nd_args_free(nd_args *args) {
    free(args->positional);
    args->positional = NULL;
    args->npositional = 0;
}

static void format_default(const nd_opt *o, char *buf, size_t n) {
    buf[0] = '\0';
    switch (o->type) {
    case ND_OPT_FLAG: break;
    case ND_OPT_INT: snprintf(buf, n, " (default %lld)", (long long)*(int64_t *)o->dest); break;
    case ND_OPT_DOUBLE: snprintf(buf, n, " (default %g)", *(double *)o->dest); break;
    case ND_OPT_STRING:
    case ND_OPT_CHOICE: {
        const char *v = *(const char **)o->dest;
        if (v) snprintf(buf, n, " (default %s)", v);
        break;
    }
    }
}

void nd_args_print_help(FILE *fp, const char *usage, const char *description, const nd_opt *opts, int n) {
    fprintf(fp, "usage: %s\n", usage);
    if (description && *description) fprintf(fp, "\n%s\n", description);
    fprintf(fp, "\noptions:\n");
    for (int k = 0; k < n; k++) {
        const nd_opt *o = &opts[k];
        char left[96], dflt[160];
        const char *meta = o->metavar;
        if (!meta) meta = o->type == ND_OPT_INT ? "N" : o->type == ND_OPT_DOUBLE ? "X"
                        : o->type == ND_OPT_CHOICE ? o->choices : "VALUE";
        if (o->type == ND_OPT_FLAG) snprintf(left, sizeof left, "--%s", o->name);
        else snprintf(left, sizeof left, "--%s %s", o->name, meta);
        format_default(o, dflt, sizeof dflt);
        fprintf(fp, "  %-30s %s%s\n", left, o->help ? o->help : "", dflt);
    }
    fprintf(fp, "  %-30s %s\n", "--help", "show this help");
}

static int parse_list(const char *text, void **values, int *count, int as_int) {
    size_t elem = as_int ? sizeof(int64_t) : sizeof(double);
    int cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    char *buf = malloc(cap * elem), *copy = strdup(text);
    if (!buf || !copy) {
        free(buf);
        free(copy);
        return nd_fail(ND_ERR_NOMEM, "out of memory");
    }
    int k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int bad = as_int ? parse_int(tok, (int64_t *)(buf + k * elem)) : parse_double(tok, (double *)(buf + k * elem));
        if (bad) {
            int rc = nd_fail(ND_ERR_INVALID, "item %d of '%s': expected %s, got '%s'", k + 1, text,
                             as_int ? "an integer" : "a number", tok);
            free(buf);
            free(copy);
            return rc;
        }
        k++;
    }
    free(copy);
    if (k == 0) {
        free(buf);
        return nd_fail(ND_ERR_INVALID, "'%s': expected a comma-separated list", text);
    }
    *values = buf;
    *count = k;
    return ND_OK;
}

int nd_parse_int_list(const char *text, int64_t **values, int *count) {
    return parse_list(text, (void **)values, count, 1);
}

int nd_parse_double_list(const char *text, double **values, int *count) {
    return parse_list(text, (void **)values, count, 0);
}
