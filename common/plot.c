#include "common/plot.h"
#include "common/cvshim.h"
#include "common/status.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const uint8_t palette[][3] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44}, {255, 127, 14},
                                     {148, 103, 189}, {140, 86, 75}, {23, 190, 207}};
static const uint8_t black[3] = {0, 0, 0}, grey[3] = {215, 215, 215};

/* A "nice" step (1, 2 or 5 times a power of ten) giving about `target` ticks over span. */
static double nice_step(double span, int target) {
    double raw = span / target, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static double yval(const nd_plot *p, double y) { return p->log_y ? log10(y) : y; }

static int point_ok(const nd_plot *p, double x, double y) {
    return isfinite(x) && isfinite(y) && (!p->log_y || y > 0);
}

int nd_plot_write(const char *path, const nd_plot *plot, const nd_plot_series *series, int nseries) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < nseries; s++)
        for (int64_t i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : (double)i, y = series[s].y[i];
            if (!point_ok(plot, x, y)) continue;
            y = yval(plot, y);
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    if (!(x0 <= x1)) return nd_fail(ND_ERR_INVALID, "%s: nothing to plot (no finite points)", path);
    if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
    if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
    double pad = 0.04 * (y1 - y0);
    y0 -= pad, y1 += pad;

    int32_t W = plot->width > 0 ? plot->width : 800, H = plot->height > 0 ? plot->height : 500;
    int32_t left = 70, right = W - 20, top = 40, bottom = H - 50;
    nd_image img;
    int rc = nd_image_alloc(&img, W, H, 3);
    if (rc) return rc;
    memset(img.data, 255, (size_t)W * H * 3);
#define PX(x) ((int32_t)lround(left + ((x) - x0) / (x1 - x0) * (right - left)))
#define PY(y) ((int32_t)lround(bottom - ((y) - y0) / (y1 - y0) * (bottom - top)))
    char buf[64];
    double step = nice_step(y1 - y0, 6);
    for (double t = ceil(y0 / step) * step; t <= y1; t += step) {
        nd_image_draw_line(&img, left, PY(t), right, PY(t), grey, 1);
        snprintf(buf, sizeof buf, plot->log_y ? "%.3g" : "%.4g", plot->log_y ? pow(10, t) : t);
        nd_image_draw_text(&img, buf, 4, PY(t) + 4, 0.4, black, 1, NULL);
    }
    step = nice_step(x1 - x0, 8);
    for (double t = ceil(x0 / step) * step; t <= x1; t += step) {
        nd_image_draw_line(&img, PX(t), bottom, PX(t), bottom + 5, black, 1);
        snprintf(buf, sizeof buf, "%.4g", t);
        nd_image_draw_text(&img, buf, PX(t) - 10, bottom + 20, 0.4, black, 1, NULL);
    }
    nd_image_draw_rect(&img, left, top, right, bottom, black, 1);
    for (int s = 0; s < nseries; s++) {
        const uint8_t *c = palette[s % (int)(sizeof palette / sizeof *palette)];
        int have_prev = 0;
        int32_t px = 0, py = 0;
        for (int64_t i = 0; i < series[s].n; i++) {
            double x = series[s].x ? series[s].x[i] : (double)i, y = series[s].y[i];
            if (!point_ok(plot, x, y)) {
                have_prev = 0;
                continue;
            }
            int32_t qx = PX(x), qy = PY(yval(plot, y));
            if (series[s].style == ND_PLOT_POINTS) nd_image_draw_dot(&img, qx, qy, 3, c);
            else if (have_prev) nd_image_draw_line(&img, px, py, qx, qy, c, 2);
            px = qx, py = qy, have_prev = 1;
        }
        if (series[s].label) {
            int32_t ly = top + 18 + 18 * s;
            nd_image_draw_line(&img, right - 170, ly - 4, right - 145, ly - 4, c, 3);
            nd_image_draw_text(&img, series[s].label, right - 140, ly, 0.45, black, 1, NULL);
        }
    }
#undef PX
#undef PY
    if (plot->title) nd_image_draw_text(&img, plot->title, left, 25, 0.6, black, 1, NULL);
    if (plot->xlabel) nd_image_draw_text(&img, plot->xlabel, (left + right) / 2 - 30, H - 12, 0.5, black, 1, NULL);
    if (plot->ylabel) nd_image_draw_text(&img, plot->ylabel, 4, top - 8, 0.45, black, 1, NULL);
    rc = nd_image_write(path, &img, 95);
    nd_image_free(&img);
    return rc;
}
