#include "common/progress.h"
#include "common/fileio.h"

#include <unistd.h>

void nd_progress_init(nd_progress *p, FILE *out, const char *label, const char *unit, int64_t total) {
    p->out = out;
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->is_tty = out && isatty(fileno(out));
    p->start = nd_time_now();
    p->last_draw = 0;
    p->period = 10.0;
}

static void format_duration(double s, char *buf, size_t n) {
    if (s < 0 || s > 1e8) {
        snprintf(buf, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, n, "%02ld:%02ld", t / 60, t % 60);
}

static void draw(nd_progress *p, int64_t done, const char *extra, int final) {
    double now = nd_time_now(), elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    char eta[32], took[32];
    format_duration(rate > 0 && p->total > 0 ? (double)(p->total - done) / rate : -1, eta, sizeof eta);
    format_duration(elapsed, took, sizeof took);
    const char *lead = p->is_tty ? "\r\033[K" : "";
    if (p->total > 0)
        fprintf(p->out, "%s%s %lld/%lld (%.0f%%) %.2f %s/s %s %s%s%s", lead, p->label, (long long)done,
                (long long)p->total, 100.0 * (double)done / (double)p->total, rate, p->unit,
                final ? "took" : "ETA", final ? took : eta, extra ? "  " : "", extra ? extra : "");
    else
        fprintf(p->out, "%s%s %lld %.2f %s/s elapsed %s%s%s", lead, p->label, (long long)done, rate, p->unit,
                took, extra ? "  " : "", extra ? extra : "");
    if (!p->is_tty || final) fputc('\n', p->out);
    fflush(p->out);
    p->last_draw = now;
}

void nd_progress_update(nd_progress *p, int64_t done, const char *extra) {
    if (!p || !p->out) return;
    double now = nd_time_now();
    double gap = p->is_tty ? 0.1 : p->period;
    if (now - p->last_draw < gap) return;
    if (!p->is_tty && p->last_draw == 0 && now - p->start < gap) return;
    draw(p, done, extra, 0);
}

void nd_progress_finish(nd_progress *p, int64_t done, const char *extra) {
    if (!p || !p->out) return;
    draw(p, done, extra, 1);
}
