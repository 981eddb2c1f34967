/* Small line and scatter charts written as PNG: loss and accuracy curves of training runs,
 * rewards of a search. Axes are scaled to the data with round tick values. */
#ifndef ND_PLOT_H
#define ND_PLOT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nd_plot_style { ND_PLOT_LINE = 0, ND_PLOT_POINTS = 1 } nd_plot_style;

typedef struct nd_plot_series {
    const char *label;  /* legend text; NULL: not in the legend */
    const double *x;    /* n values; NULL: 0, 1, 2, ... */
    const double *y;    /* n values; non-finite values are skipped */
    int64_t n;
    nd_plot_style style;
} nd_plot_series;

typedef struct nd_plot {
    const char *title, *xlabel, *ylabel; /* may be NULL */
    int32_t width, height;               /* pixels; 0: 800 x 500 */
    int log_y;                           /* 1: logarithmic y axis (positive values only) */
} nd_plot;

/* Draw the series into a PNG (or JPEG, by extension) at `path`, written atomically.
 * Fails with ND_ERR_INVALID when there is no finite point to draw. */
int nd_plot_write(const char *path, const nd_plot *plot, const nd_plot_series *series, int nseries);

#ifdef __cplusplus
}
#endif

#endif
