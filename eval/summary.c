/* Text and JSON renderings of a ceval_result. */
#include "eval/evaluate.h"

#include "common/fileio.h"
#include "common/status.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf { char *s; size_t n, cap; int oom; } sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (need < 0) { b->oom = 1; return; }
        if (b->s && b->n + (size_t)need < b->cap) { b->n += (size_t)need; return; }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + (size_t)need + 1) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) { b->oom = 1; return; }
        b->s = t;
        b->cap = cap;
    }
}

static char *sb_take(sbuf *b) {
    if (b->oom) { free(b->s); nd_fail(ND_ERR_NOMEM, "out of memory"); return NULL; }
    if (!b->s) return strdup("");
    return b->s;
}

/* ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}' */
static void line(sbuf *b, const ceval_result *r, int ap, int has_thr, double thr, const char *area, int64_t md,
                 double v) {
    char iou[64];
    if (has_thr) snprintf(iou, sizeof iou, "%0.2f", thr);
    else snprintf(iou, sizeof iou, "%0.2f:%0.2f", r->iou_thrs[0], r->iou_thrs[r->T - 1]);
    sb_printf(b, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3lld ] = %0.3f\n",
              ap ? "Average Precision" : "Average Recall", ap ? "(AP)" : "(AR)", iou, area, (long long)md, v);
}

char *ceval_summary_text(const ceval_result *r) {
    sbuf b = {0};
    if (r->iou_type == CEVAL_KEYPOINTS) {
        static const struct { int ap, thr; double t; const char *area; } L[10] = {
            {1, 0, 0, "all"}, {1, 1, .5, "all"}, {1, 1, .75, "all"}, {1, 0, 0, "medium"}, {1, 0, 0, "large"},
            {0, 0, 0, "all"}, {0, 1, .5, "all"}, {0, 1, .75, "all"}, {0, 0, 0, "medium"}, {0, 0, 0, "large"}};
        for (int i = 0; i < 10; i++) line(&b, r, L[i].ap, L[i].thr, L[i].t, L[i].area, 20, r->stats[i]);
    } else {
        int64_t m0 = r->max_dets[0], m1 = r->max_dets[r->M > 1 ? 1 : r->M - 1], m2 = r->max_dets[r->M > 2 ? 2 : r->M - 1];
        line(&b, r, 1, 0, 0, "all", 100, r->stats[0]);
        line(&b, r, 1, 1, .5, "all", m2, r->stats[1]);
        line(&b, r, 1, 1, .75, "all", m2, r->stats[2]);
        line(&b, r, 1, 0, 0, "small", m2, r->stats[3]);
        line(&b, r, 1, 0, 0, "medium", m2, r->stats[4]);
        line(&b, r, 1, 0, 0, "large", m2, r->stats[5]);
        line(&b, r, 0, 0, 0, "all", m0, r->stats[6]);
        line(&b, r, 0, 0, 0, "all", m1, r->stats[7]);
        line(&b, r, 0, 0, 0, "all", m2, r->stats[8]);
        line(&b, r, 0, 0, 0, "small", m2, r->stats[9]);
        line(&b, r, 0, 0, 0, "medium", m2, r->stats[10]);
        line(&b, r, 0, 0, 0, "large", m2, r->stats[11]);
    }
    return sb_take(&b);
}

/* mean over entries > -1 at one IoU threshold (or all), area "all", last maxDets */
static double cat_mean(const ceval_result *r, int k, int ap, int has_thr, double thr, double *buf) {
    int64_t n = 0;
    for (int t = 0; t < r->T; t++) {
        if (has_thr && !(r->iou_thrs[t] == thr)) continue;
        if (ap) {
            for (int rr = 0; rr < r->R; rr++) {
                double v = r->precision[((((size_t)t * r->R + rr) * r->K + k) * r->A) * r->M + (r->M - 1)];
                if (v > -1) buf[n++] = v;
            }
        } else {
            double v = r->recall[(((size_t)t * r->K + k) * r->A) * r->M + (r->M - 1)];
            if (v > -1) buf[n++] = v;
        }
    }
    return n ? ceval_np_mean(buf, n) : -1;
}

char *ceval_per_class_text(const ceval_result *r) {
    sbuf b = {0};
    double *buf = malloc(sizeof(double) * ((size_t)r->T * r->R + 1));
    if (!buf) { nd_fail(ND_ERR_NOMEM, "out of memory"); return NULL; }
    int w = 8;
    for (int k = 0; k < r->K; k++) {
        int l = (int)strlen(r->cat_names[k]);
        if (l > w) w = l;
    }
    if (w > 40) w = 40;
    char ar[32];
    snprintf(ar, sizeof ar, "AR@%lld", (long long)r->max_dets[r->M - 1]);
    sb_printf(&b, "%-*s %8s %7s %7s %7s %7s\n", w, "category", "id", "AP", "AP50", "AP75", ar);
    for (int k = 0; k < r->K; k++) {
        double ap = r->per_cat_ap[k], ap50 = cat_mean(r, k, 1, 1, .5, buf), ap75 = cat_mean(r, k, 1, 1, .75, buf),
               rec = cat_mean(r, k, 0, 0, 0, buf);
        sb_printf(&b, "%-*.*s %8s %7.3f %7.3f %7.3f %7.3f\n", w, w, r->cat_names[k], r->cat_keys[k], ap, ap50, ap75, rec);
    }
    free(buf);
    return sb_take(&b);
}

/* Shortest text that reads back as the same double (what Python's repr gives, up to form). */
static void fmt_double(char *out, size_t size, double v) {
    if (isnan(v)) { snprintf(out, size, "NaN"); return; }
    if (isinf(v)) { snprintf(out, size, v > 0 ? "Infinity" : "-Infinity"); return; }
    for (int p = 1; p <= 17; p++) {
        snprintf(out, size, "%.*g", p, v);
        if (strtod(out, NULL) == v) break;
    }
    if (!strpbrk(out, ".eE")) { /* keep it visibly a float, as Python writes 0.0 */
        size_t n = strlen(out);
        if (n + 2 < size) memcpy(out + n, ".0", 3);
    }
}

static void json_str(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
        else if (c < 0x20) sb_printf(b, "\\u%04x", c);
        else sb_printf(b, "%c", c);
    }
    sb_printf(b, "\"");
}

int ceval_result_write_json(const ceval_result *r, const char *path) {
    sbuf b = {0};
    char num[64];
    sb_printf(&b, "{\"iou_type\": \"%s\", \"stats\": [", ceval_iou_type_name(r->iou_type));
    for (int i = 0; i < r->nstats; i++) {
        fmt_double(num, sizeof num, r->stats[i]);
        sb_printf(&b, "%s%s", i ? ", " : "", num);
    }
    sb_printf(&b, "], \"per_category\": {");
    for (int k = 0; k < r->K; k++) {
        fmt_double(num, sizeof num, r->per_cat_ap[k]);
        sb_printf(&b, "%s", k ? ", " : "");
        json_str(&b, r->cat_keys[k]);
        sb_printf(&b, ": %s", num);
    }
    sb_printf(&b, "}}\n");
    char *text = sb_take(&b);
    if (!text) return ND_ERR_NOMEM;
    int rc = nd_file_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}
