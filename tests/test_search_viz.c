/* nasdet viz end to end: PNG and DOT output, errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "tests/util/testutil.h"

static unsigned be32(const unsigned char *p) {
    return (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
}

Test(viz, writes_png) {
    char *dir = tu_tmpdir();
    char args[512], *out;
    snprintf(args, sizeof args, "viz --genotype demos/genotypes/nasnet-a.json --out %s/cell.png", dir);
    int rc = tu_run_cli(args, &out);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    char *png = nd_path_join(dir, "cell.png");
    size_t len = 0;
    unsigned char *data = (unsigned char *)tu_read_file(png, &len);
    cr_assert_not_null(data);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    cr_assert_gt(len, 1000u);
    cr_expect_eq(memcmp(data, sig, 8), 0, "PNG signature");
    cr_expect_eq(memcmp(data + 12, "IHDR", 4), 0);
    unsigned w = be32(data + 16), h = be32(data + 20);
    /* Two cells side by side, each several op boxes wide: a real drawing, not an empty page. */
    cr_expect(w > 400 && w < 20000 && h > 200 && h < 20000, "%u x %u", w, h);
    cr_expect(w > h, "both cells side by side");
    free(data);
    free(png);
    tu_rmtree(dir);
    free(dir);
}

Test(viz, writes_dot_text_and_svg) {
    char *dir = tu_tmpdir();
    char args[512], *out;
    snprintf(args, sizeof args, "viz --genotype nasnet-a --cell normal --out %s/cell.dot", dir);
    cr_assert_eq(tu_run_cli(args, &out), 0, "%s", out);
    free(out);
    char *path = nd_path_join(dir, "cell.dot");
    char *dot = tu_read_file(path, NULL);
    cr_assert_not_null(dot);
    cr_expect(strncmp(dot, "digraph", 7) == 0);
    cr_expect_not_null(strstr(dot, "normal_h1 -> normal_out;"), "NASNet-A's normal cell outputs h_{i-1}");
    cr_expect_not_null(strstr(dot, "normal_h0 -> normal_b4_op0;"));
    cr_expect_not_null(strstr(dot, "normal_h0 -> normal_b4_op1;"));
    cr_expect_not_null(strstr(dot, "normal_b2_op1 [label=\"identity\""));
    cr_expect_null(strstr(dot, "reduction"));
    free(dot);
    free(path);
    snprintf(args, sizeof args, "viz --genotype nasnet-a --cell reduction --out %s/cell.svg", dir);
    cr_assert_eq(tu_run_cli(args, &out), 0, "%s", out);
    free(out);
    path = nd_path_join(dir, "cell.svg");
    char *svg = tu_read_file(path, NULL);
    cr_assert_not_null(svg);
    cr_expect_not_null(strstr(svg, "<svg"));
    cr_expect_not_null(strstr(svg, "sep_conv_7x7 /2"));
    free(svg);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

Test(viz, errors) {
    char *dir = tu_tmpdir();
    char args[512], *out;
    snprintf(args, sizeof args, "viz --genotype nasnet-a --out %s/cell.jpg", dir);
    cr_expect_eq(tu_run_cli(args, &out), 2);
    cr_expect_not_null(strstr(out, ".png"), "%s", out);
    free(out);
    cr_expect_eq(tu_run_cli("viz --out x.png", &out), 2);
    cr_expect_not_null(strstr(out, "--genotype"), "%s", out);
    free(out);
    char *bad = nd_path_join(dir, "bad.json");
    cr_assert_eq(tu_write_file(bad, "{\"input_states\": 2, \"blocks\": 1, \"normal\": {\"blocks\": [{\"inputs\": [0, 1],"
                                    " \"ops\": [\"sep_conv_9x9\", \"identity\"], \"combine\": \"add\"}], \"output\": "
                                    "\"unused\"}, \"reduction\": {}}"),
                 0);
    snprintf(args, sizeof args, "viz --genotype %s --out %s/cell.png", bad, dir);
    cr_expect_eq(tu_run_cli(args, &out), 1);
    cr_expect_not_null(strstr(out, "bad.json: normal.blocks[0].ops[0]: unknown op \"sep_conv_9x9\""), "%s", out);
    free(out);
    /* Without Graphviz on PATH the message says what to install; no picture is left behind. */
    snprintf(args, sizeof args, "viz --genotype nasnet-a --out %s/nodot.png", dir);
    char *old_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", "/nonexistent", 1);
    cr_expect_eq(tu_run_cli(args, &out), 1);
    setenv("PATH", old_path, 1);
    free(old_path);
    cr_expect_not_null(strstr(out, "graphviz"), "%s", out);
    free(out);
    char *png = nd_path_join(dir, "nodot.png");
    cr_expect_eq(nd_path_exists(png), 0);
    free(png);
    free(bad);
    tu_rmtree(dir);
    free(dir);
}
