#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cvshim.h"
#include "common/fileio.h"
#include "common/plot.h"
#include "common/status.h"
#include "tests/util/testutil.h"

Test(plot, writes_a_png_with_the_curves) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "loss.png");
    double y[50], acc[50];
    for (int i = 0; i < 50; i++) y[i] = 2.3 * exp(-i / 10.0), acc[i] = 1 - y[i] / 2.3;
    y[7] = NAN; /* skipped, not fatal */
    nd_plot_series s[2] = {{"loss", NULL, y, 50, ND_PLOT_LINE}, {"accuracy", NULL, acc, 50, ND_PLOT_POINTS}};
    nd_plot p = {"training", "step", "value", 640, 400, 0};
    cr_assert_eq(nd_plot_write(path, &p, s, 2), 0, "%s", nd_last_error());
    nd_image img;
    cr_assert_eq(nd_image_read(path, 3, &img), 0, "%s", nd_last_error());
    cr_expect_eq(img.width, 640);
    cr_expect_eq(img.height, 400);
    /* The first series' colour appears somewhere in the plot area. */
    int found = 0;
    for (int64_t i = 0; i < (int64_t)img.width * img.height; i++)
        found |= img.data[3 * i] == 31 && img.data[3 * i + 1] == 119 && img.data[3 * i + 2] == 180;
    cr_expect(found);
    nd_image_free(&img);
    double none[2] = {NAN, INFINITY};
    nd_plot_series bad = {"x", NULL, none, 2, ND_PLOT_LINE};
    cr_expect_eq(nd_plot_write(path, &p, &bad, 1), ND_ERR_INVALID);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
