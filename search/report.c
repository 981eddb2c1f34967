/* Run reports from RUN/children.jsonl: summary figures (best, top-5 and top-25 means, as the
 * paper compares RL with random search), best.json, top.json, the reward plot and the DOT
 * picture of the best cells. Everything is recomputed from the log, so a report never
 * disagrees with it, whatever was resumed or interrupted. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/plot.h"
#include "common/status.h"
#include "search/search_driver.h"

static int by_reward_desc(const void *a, const void *b) {
    const srch_child *x = a, *y = b;
    if (x->result.reward != y->result.reward) return x->result.reward < y->result.reward ? 1 : -1;
    return (x->job_id > y->job_id) - (x->job_id < y->job_id); /* ties: earlier job first */
}

static int by_job(const void *a, const void *b) {
    const srch_child *x = a, *y = b;
    return (x->job_id > y->job_id) - (x->job_id < y->job_id);
}

static double top_mean(const srch_child *sorted, int64_t n, int64_t k) {
    if (k > n) k = n;
    double s = 0;
    for (int64_t i = 0; i < k; i++) s += sorted[i].result.reward;
    return k ? s / (double)k : 0;
}

void srch_summary_compute(const srch_child *children, int64_t n, srch_run_summary *out) {
    memset(out, 0, sizeof *out);
    out->best_job = -1;
    out->best = -1;
    if (n <= 0) return;
    srch_child *s = malloc(sizeof *s * (size_t)n);
    ND_ASSERT(s != NULL, "out of memory summarising %lld children", (long long)n);
    memcpy(s, children, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, by_reward_desc);
    out->children = n;
    out->best = s[0].result.reward;
    out->best_job = s[0].job_id;
    out->top5_mean = top_mean(s, n, 5);
    out->top25_mean = top_mean(s, n, 25);
    out->mean = top_mean(s, n, n);
    double secs = 0;
    for (int64_t i = 0; i < n; i++) {
        out->failed += !s[i].result.ok;
        secs += s[i].result.seconds;
    }
    out->child_seconds_mean = secs / (double)n;
    free(s);
}

/* Every record of RUN/children.jsonl, in job order. */
static int read_run(const char *run_dir, srch_child **ch, int64_t *n) {
    char *path = nd_path_join(run_dir, "children.jsonl");
    if (!path) return nd_fail(ND_ERR_NOMEM, "out of memory");
    int rc = srch_children_read(path, ch, n, NULL);
    if (!rc && *n == 0) rc = nd_fail(ND_ERR_NOT_FOUND, "%s: no child has finished yet", path);
    free(path);
    if (!rc) qsort(*ch, (size_t)*n, sizeof **ch, by_job);
    return rc;
}

int srch_summary_read(const char *run_dir, srch_run_summary *out) {
    srch_child *ch;
    int64_t n;
    int rc = read_run(run_dir, &ch, &n);
    if (!rc) srch_summary_compute(ch, n, out);
    free(ch);
    return rc;
}

static int write_top(const char *run_dir, srch_child *sorted, int64_t n, int top_k, const srch_run_summary *sum) {
    cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray();
    int rc = (root && list) ? ND_OK : nd_fail(ND_ERR_NOMEM, "out of memory writing top.json");
    if (!rc) {
        cJSON_AddNumberToObject(root, "children", (double)n);
        cJSON_AddNumberToObject(root, "failed", (double)sum->failed);
        cJSON_AddNumberToObject(root, "best", sum->best);
        cJSON_AddNumberToObject(root, "mean", sum->mean);
        cJSON_AddNumberToObject(root, "top5_mean", sum->top5_mean);
        cJSON_AddNumberToObject(root, "top25_mean", sum->top25_mean);
        cJSON_AddNumberToObject(root, "child_seconds_mean", sum->child_seconds_mean);
        cJSON_AddItemToObject(root, "top", list);
        list = NULL;
    }
    cJSON *arr = root ? cJSON_GetObjectItem(root, "top") : NULL;
    for (int64_t i = 0; !rc && i < n && i < top_k; i++) {
        const srch_child *c = &sorted[i];
        char *gtext;
        rc = nas_genotype_to_json(&c->genotype, 0, &gtext);
        if (rc) break;
        cJSON *g = cJSON_Parse(gtext);
        free(gtext);
        cJSON *e = cJSON_CreateObject();
        if (!g || !e) {
            cJSON_Delete(g);
            cJSON_Delete(e);
            rc = nd_fail(ND_ERR_NOMEM, "out of memory writing top.json");
            break;
        }
        cJSON_AddNumberToObject(e, "rank", (double)(i + 1));
        cJSON_AddNumberToObject(e, "job", (double)c->job_id);
        cJSON_AddNumberToObject(e, "reward", c->result.reward);
        cJSON_AddNumberToObject(e, "params", (double)c->result.params);
        cJSON_AddNumberToObject(e, "macs", (double)c->result.macs);
        cJSON_AddNumberToObject(e, "seconds", c->result.seconds);
        cJSON_AddItemToObject(e, "genotype", g);
        cJSON_AddItemToArray(arr, e);
    }
    char *text = rc ? NULL : cJSON_Print(root);
    if (!rc && !text) rc = nd_fail(ND_ERR_NOMEM, "out of memory writing top.json");
    if (!rc) {
        char *path = nd_path_join(run_dir, "top.json");
        size_t len = strlen(text);
        text[len] = '\n'; /* cJSON leaves room for the terminator only: rewrite it as a newline */
        rc = path ? nd_file_write_atomic(path, text, len + 1) : nd_fail(ND_ERR_NOMEM, "out of memory");
        text[len] = '\0';
        free(path);
    }
    free(text);
    cJSON_Delete(list);
    cJSON_Delete(root);
    return rc;
}

/* Reward per child, running best and the mean of the last `window` children, x = job + 1. */
typedef struct curves {
    double *x, *y, *best, *mean;
    int64_t n;
} curves;

static int make_curves(const srch_child *ch, int64_t n, curves *c) {
    c->n = n;
    c->x = malloc(sizeof(double) * (size_t)n * 4);
    if (!c->x) return nd_fail(ND_ERR_NOMEM, "out of memory plotting rewards");
    c->y = c->x + n;
    c->best = c->y + n;
    c->mean = c->best + n;
    const int window = 20;
    double best = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        c->x[i] = (double)ch[i].job_id + 1;
        c->y[i] = ch[i].result.reward;
        best = fmax(best, c->y[i]);
        c->best[i] = best;
        sum += c->y[i];
        if (i >= window) sum -= c->y[i - window];
        c->mean[i] = sum / (double)(i < window ? i + 1 : window);
    }
    return ND_OK;
}

int srch_report_write(const char *run_dir, int top_k) {
    srch_child *ch;
    int64_t n;
    int rc = read_run(run_dir, &ch, &n);
    if (rc) return rc;
    srch_run_summary sum;
    srch_summary_compute(ch, n, &sum);
    curves cv;
    rc = make_curves(ch, n, &cv);
    if (!rc) {
        nd_plot_series ser[3] = {
            {"reward of each child", cv.x, cv.y, n, ND_PLOT_POINTS},
            {"running best", cv.x, cv.best, n, ND_PLOT_LINE},
            {"mean of the last 20", cv.x, cv.mean, n, ND_PLOT_LINE},
        };
        nd_plot p = {"search rewards", "child", "validation accuracy (reward)", 0, 0, 0};
        char *path = nd_path_join(run_dir, "rewards.png");
        rc = path ? nd_plot_write(path, &p, ser, 3) : nd_fail(ND_ERR_NOMEM, "out of memory");
        free(path);
        free(cv.x);
    }
    qsort(ch, (size_t)n, sizeof *ch, by_reward_desc);
    if (!rc) rc = write_top(run_dir, ch, n, top_k > 0 ? top_k : 1, &sum);
    nas_genotype best = ch[0].genotype;
    snprintf(best.name, sizeof best.name, "best-job%lld", (long long)ch[0].job_id);
    char *path = nd_path_join(run_dir, "best.json");
    if (!rc) rc = path ? nas_genotype_save(&best, path) : nd_fail(ND_ERR_NOMEM, "out of memory");
    free(path);
    char *dot = NULL;
    if (!rc) rc = nas_genotype_to_dot(&best, (1u << NAS_CELL_NORMAL) | (1u << NAS_CELL_REDUCTION), &dot);
    path = nd_path_join(run_dir, "best_cells.dot");
    if (!rc) rc = path ? nd_file_write_atomic(path, dot, strlen(dot)) : nd_fail(ND_ERR_NOMEM, "out of memory");
    free(path);
    free(dot);
    free(ch);
    return rc;
}

int srch_report_plot_runs(const char *const *run_dirs, int n_runs, const char *out_png) {
    if (n_runs < 1 || n_runs > 4) return nd_fail(ND_ERR_INVALID, "plot 1 to 4 runs, not %d", n_runs);
    curves cv[4];
    char labels[4][3][160];
    nd_plot_series ser[12];
    int ns = 0, rc = ND_OK, made = 0;
    for (int r = 0; r < n_runs && !rc; r++) {
        srch_child *ch;
        int64_t n;
        rc = read_run(run_dirs[r], &ch, &n);
        if (!rc) rc = make_curves(ch, n, &cv[r]);
        free(ch);
        if (rc) break;
        made++;
        /* The folder's own name tells the runs apart ("runs/ppo/" -> "ppo"). */
        char name[128];
        snprintf(name, sizeof name, "%s", run_dirs[r]);
        size_t len = strlen(name);
        while (len > 1 && name[len - 1] == '/') name[--len] = '\0';
        const char *base = nd_path_basename(name);
        /* Short labels: the legend is drawn inside the chart. */
        snprintf(labels[r][0], sizeof labels[r][0], "%s: reward", base);
        snprintf(labels[r][1], sizeof labels[r][1], "%s: best", base);
        snprintf(labels[r][2], sizeof labels[r][2], "%s: mean(20)", base);
        ser[ns++] = (nd_plot_series){labels[r][0], cv[r].x, cv[r].y, n, ND_PLOT_POINTS};
        ser[ns++] = (nd_plot_series){labels[r][1], cv[r].x, cv[r].best, n, ND_PLOT_LINE};
        ser[ns++] = (nd_plot_series){labels[r][2], cv[r].x, cv[r].mean, n, ND_PLOT_LINE};
    }
    if (!rc) {
        nd_plot p = {"search rewards by run", "child", "validation accuracy (reward)", 1000, 600, 0};
        rc = nd_plot_write(out_png, &p, ser, ns);
    }
    for (int r = 0; r < made; r++) free(cv[r].x);
    return rc;
}
