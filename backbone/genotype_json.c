/* Genotype <-> JSON. Reading goes through cJSON and copies into nas_genotype in this file
 * (the tree never leaves it); writing is by hand so that the file form keeps one block per
 * line, which is how people read and edit cells. */
#include "backbone/nasnet.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backbone/strbuf.h"
#include "common/fileio.h"
#include "common/status.h"

enum { PATH_MAX_LEN = 96 };

/* JSON paths for messages; vsnprintf because a path that does not fit is cut, harmlessly. */
static void path_fmt(char *buf, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void path_fmt(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* Every key of `obj` must be in `allowed` (NULL-terminated) and appear once. */
static int check_keys(const cJSON *obj, const char *path, const char *const *allowed, const char *expected) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        int known = 0;
        for (int i = 0; allowed[i]; i++)
            if (it->string && strcmp(it->string, allowed[i]) == 0) known = 1;
        if (!known)
            return nd_fail(ND_ERR_FORMAT, "%s%s\"%s\": unknown key (expected %s)", path, *path ? ": " : "",
                           it->string ? it->string : "", expected);
        for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
            if (strcmp(prev->string, it->string) == 0)
                return nd_fail(ND_ERR_FORMAT, "%s%s\"%s\": key given twice", path, *path ? ": " : "", it->string);
    }
    return ND_OK;
}

/* An integer-valued JSON number in [lo, hi]; the range test comes first so that no huge or
 * NaN double is ever converted to int. */
static int get_int(const cJSON *item, const char *path, int lo, int hi, int *out) {
    if (!cJSON_IsNumber(item)) return nd_fail(ND_ERR_FORMAT, "%s: expected an integer", path);
    double v = item->valuedouble;
    if (!(v >= -1e9 && v <= 1e9) || (double)(int)v != v)
        return nd_fail(ND_ERR_FORMAT, "%s: expected an integer, found %g", path, v);
    if ((int)v < lo || (int)v > hi)
        return nd_fail(ND_ERR_INVALID, "%s: %d is out of range, expected %d..%d", path, (int)v, lo, hi);
    *out = (int)v;
    return ND_OK;
}

static const cJSON *require(const cJSON *obj, const char *key, const char *path) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) nd_fail(ND_ERR_FORMAT, "%s%s\"%s\" is missing", path, *path ? ": " : "", key);
    return it;
}

static int parse_block(const cJSON *jb, const char *path, nas_block *blk) {
    static const char *const keys[] = {"inputs", "ops", "combine", NULL};
    char p[PATH_MAX_LEN];
    if (!cJSON_IsObject(jb)) return nd_fail(ND_ERR_FORMAT, "%s: expected an object with inputs, ops, combine", path);
    int rc = check_keys(jb, path, keys, "inputs, ops, combine");
    if (rc) return rc;
    const cJSON *inputs = require(jb, "inputs", path), *ops = require(jb, "ops", path);
    const cJSON *comb = require(jb, "combine", path);
    if (!inputs || !ops || !comb) return ND_ERR_FORMAT;
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 2)
        return nd_fail(ND_ERR_FORMAT, "%s.inputs: expected an array of 2 state indices", path);
    if (!cJSON_IsArray(ops) || cJSON_GetArraySize(ops) != 2)
        return nd_fail(ND_ERR_FORMAT, "%s.ops: expected an array of 2 op names", path);
    for (int k = 0; k < 2; k++) {
        path_fmt(p, sizeof p, "%s.inputs[%d]", path, k);
        const cJSON *ji = cJSON_GetArrayItem(inputs, k);
        if (!cJSON_IsNumber(ji)) return nd_fail(ND_ERR_FORMAT, "%s: expected a state index (integer)", p);
        /* The range check is the validator's, which explains which states exist. */
        rc = get_int(ji, p, -1000, 1000, &blk->input[k]);
        if (rc) return rc;
        path_fmt(p, sizeof p, "%s.ops[%d]", path, k);
        const cJSON *jo = cJSON_GetArrayItem(ops, k);
        if (!cJSON_IsString(jo)) return nd_fail(ND_ERR_FORMAT, "%s: expected an op name (string)", p);
        if (nas_op_from_name(jo->valuestring, &blk->op[k])) return nd_fail_context(ND_ERR_INVALID, "%s: ", p);
    }
    path_fmt(p, sizeof p, "%s.combine", path);
    if (!cJSON_IsString(comb)) return nd_fail(ND_ERR_FORMAT, "%s: expected a combiner name (string)", p);
    if (nas_combiner_from_name(comb->valuestring, &blk->combine)) return nd_fail_context(ND_ERR_INVALID, "%s: ", p);
    return ND_OK;
}

static int parse_output(const cJSON *jo, const char *path, nas_cell *c) {
    char p[PATH_MAX_LEN];
    if (cJSON_IsString(jo)) {
        if (strcmp(jo->valuestring, "unused") == 0) c->output = NAS_OUT_UNUSED;
        else if (strcmp(jo->valuestring, "all") == 0) c->output = NAS_OUT_ALL;
        else
            return nd_fail(ND_ERR_INVALID, "%s: unknown output rule \"%s\" (expected \"unused\", \"all\" or a list of "
                           "state indices)", path, jo->valuestring);
        return ND_OK;
    }
    if (!cJSON_IsArray(jo))
        return nd_fail(ND_ERR_FORMAT, "%s: expected \"unused\", \"all\" or a list of state indices", path);
    int n = cJSON_GetArraySize(jo);
    if (n == 0) return nd_fail(ND_ERR_INVALID, "%s: the cell has no output (an empty list)", path);
    if (n > NAS_MAX_STATES)
        return nd_fail(ND_ERR_INVALID, "%s: %d states listed, a cell has at most %d", path, n, NAS_MAX_STATES);
    c->output = NAS_OUT_LIST;
    c->n_out = n;
    for (int i = 0; i < n; i++) {
        path_fmt(p, sizeof p, "%s[%d]", path, i);
        int rc = get_int(cJSON_GetArrayItem(jo, i), p, -1000, 1000, &c->out[i]);
        if (rc) return rc;
    }
    return ND_OK;
}

static int parse_cell(const cJSON *root, nas_cell_kind kind, nas_genotype *g) {
    static const char *const keys[] = {"blocks", "output", NULL};
    const char *cn = nas_cell_kind_name(kind);
    const cJSON *jc = require(root, cn, "");
    if (!jc) return ND_ERR_FORMAT;
    if (!cJSON_IsObject(jc)) return nd_fail(ND_ERR_FORMAT, "%s: expected an object with blocks and output", cn);
    int rc = check_keys(jc, cn, keys, "blocks, output");
    if (rc) return rc;
    char p[PATH_MAX_LEN];
    path_fmt(p, sizeof p, "%s", cn);
    const cJSON *blocks = require(jc, "blocks", p), *output = require(jc, "output", p);
    if (!blocks || !output) return ND_ERR_FORMAT;
    path_fmt(p, sizeof p, "%s.blocks", cn);
    if (!cJSON_IsArray(blocks)) return nd_fail(ND_ERR_FORMAT, "%s: expected an array of blocks", p);
    int n = cJSON_GetArraySize(blocks);
    if (n != g->n_blocks)
        return nd_fail(ND_ERR_INVALID, "%s: %d blocks, expected %d (the top-level \"blocks\")", p, n, g->n_blocks);
    nas_cell *c = &g->cell[kind];
    int b = 0;
    for (const cJSON *jb = blocks->child; jb; jb = jb->next, b++) {
        path_fmt(p, sizeof p, "%s.blocks[%d]", cn, b);
        rc = parse_block(jb, p, &c->block[b]);
        if (rc) return rc;
    }
    path_fmt(p, sizeof p, "%s.output", cn);
    return parse_output(output, p, c);
}

static int parse_root(const cJSON *root, nas_genotype *g) {
    static const char *const keys[] = {"name", "input_states", "blocks", "normal", "reduction", NULL};
    if (!cJSON_IsObject(root))
        return nd_fail(ND_ERR_FORMAT, "expected a JSON object with input_states, blocks, normal, reduction");
    int rc = check_keys(root, "", keys, "name, input_states, blocks, normal, reduction");
    if (rc) return rc;
    const cJSON *ji = require(root, "input_states", ""), *jb = require(root, "blocks", "");
    if (!ji || !jb) return ND_ERR_FORMAT;
    int n_inputs, n_blocks;
    if ((rc = get_int(ji, "input_states", 2, NAS_MAX_INPUTS, &n_inputs))) return rc;
    if ((rc = get_int(jb, "blocks", 1, NAS_MAX_BLOCKS, &n_blocks))) return rc;
    nas_genotype_init(g, n_inputs, n_blocks);
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (jn) {
        if (!cJSON_IsString(jn)) return nd_fail(ND_ERR_FORMAT, "name: expected a string");
        if (strlen(jn->valuestring) >= NAS_NAME_MAX)
            return nd_fail(ND_ERR_INVALID, "name: longer than %d bytes", NAS_NAME_MAX - 1);
        strcpy(g->name, jn->valuestring);
    }
    for (int k = 0; k < NAS_CELL_COUNT; k++)
        if ((rc = parse_cell(root, (nas_cell_kind)k, g))) return rc;
    return nas_genotype_validate(g);
}

int nas_genotype_parse(const char *text, nas_genotype *g) {
    if (!text) return nd_fail(ND_ERR_INVALID, "no genotype text");
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text ? (long)(at - text) : -1;
        return nd_fail(ND_ERR_FORMAT, "not valid JSON (error near byte %ld)", off);
    }
    int rc = parse_root(root, g);
    cJSON_Delete(root);
    return rc;
}

int nas_genotype_load(const char *path, nas_genotype *g) {
    char *text;
    size_t len;
    int rc = nd_file_read_all(path, &text, &len);
    if (rc) return rc;
    if (strlen(text) != len) {
        free(text);
        return nd_fail(ND_ERR_FORMAT, "%s: contains a NUL byte, not a JSON text file", path);
    }
    rc = nas_genotype_parse(text, g);
    free(text);
    if (rc) return nd_fail_context(rc, "%s: ", path);
    return ND_OK;
}

int nas_genotype_from_spec(const char *spec, nas_genotype *g) {
    if (!spec) return nd_fail(ND_ERR_INVALID, "no genotype given");
    for (const char *const *n = nas_genotype_builtin_names(); *n; n++)
        if (strcmp(*n, spec) == 0) return nas_genotype_builtin(spec, g);
    return nas_genotype_load(spec, g);
}

/* ---- writing ---------------------------------------------------------------------------- */

static void write_cell(nas_strbuf *sb, const nas_genotype *g, nas_cell_kind kind, int pretty) {
    const nas_cell *c = &g->cell[kind];
    const char *nl = pretty ? "\n" : "", *sp = pretty ? " " : "";
    nas_strbuf_printf(sb, "%s\"%s\":%s{%s%s\"blocks\":%s[%s", pretty ? "  " : "", nas_cell_kind_name(kind), sp, nl,
                      pretty ? "    " : "", sp, nl);
    for (int b = 0; b < g->n_blocks; b++) {
        const nas_block *blk = &c->block[b];
        nas_strbuf_printf(sb, "%s{\"inputs\":%s[%d,%s%d],%s\"ops\":%s[\"%s\",%s\"%s\"],%s\"combine\":%s\"%s\"}%s%s",
                          pretty ? "      " : "", sp, blk->input[0], sp, blk->input[1], sp, sp, nas_op_name(blk->op[0]),
                          sp, nas_op_name(blk->op[1]), sp, sp, nas_combiner_name(blk->combine),
                          b + 1 < g->n_blocks ? "," : "", nl);
    }
    nas_strbuf_printf(sb, "%s],%s%s\"output\":%s", pretty ? "    " : "", nl, pretty ? "    " : "", sp);
    if (c->output == NAS_OUT_UNUSED) nas_strbuf_printf(sb, "\"unused\"");
    else if (c->output == NAS_OUT_ALL) nas_strbuf_printf(sb, "\"all\"");
    else {
        nas_strbuf_printf(sb, "[");
        for (int i = 0; i < c->n_out; i++) nas_strbuf_printf(sb, "%s%d", i ? (pretty ? ", " : ",") : "", c->out[i]);
        nas_strbuf_printf(sb, "]");
    }
    nas_strbuf_printf(sb, "%s%s}", nl, pretty ? "  " : "");
}

int nas_genotype_to_json(const nas_genotype *g, int pretty, char **text) {
    *text = NULL;
    int rc = nas_genotype_validate(g);
    if (rc) return rc;
    nas_strbuf sb = {0};
    const char *nl = pretty ? "\n" : "", *in = pretty ? "  " : "", *sp = pretty ? " " : "";
    nas_strbuf_printf(&sb, "{%s", nl);
    if (g->name[0]) {
        nas_strbuf_printf(&sb, "%s\"name\":%s", in, sp);
        nas_strbuf_json_string(&sb, g->name);
        nas_strbuf_printf(&sb, ",%s", nl);
    }
    nas_strbuf_printf(&sb, "%s\"input_states\":%s%d,%s%s\"blocks\":%s%d,%s", in, sp, g->n_inputs, nl, in, sp,
                      g->n_blocks, nl);
    write_cell(&sb, g, NAS_CELL_NORMAL, pretty);
    nas_strbuf_printf(&sb, ",%s", nl);
    write_cell(&sb, g, NAS_CELL_REDUCTION, pretty);
    nas_strbuf_printf(&sb, "%s}%s", nl, nl);
    return nas_strbuf_finish(&sb, text);
}

int nas_genotype_save(const nas_genotype *g, const char *path) {
    char *text;
    int rc = nas_genotype_to_json(g, 1, &text);
    if (rc) return nd_fail_context(rc, "%s: ", path);
    rc = nd_file_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}
