/* The RLE mask API (cocoapi maskApi semantics) and numpy's pairwise mean. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/status.h"
#include "eval/cocoeval.h"

Test(eval_mask, encode_decode_area_roundtrip) {
    nd_rng r;
    nd_rng_seed(&r, 7);
    for (int it = 0; it < 20; it++) {
        uint32_t h = 1 + (uint32_t)nd_rng_below(&r, 30), w = 1 + (uint32_t)nd_rng_below(&r, 30);
        uint8_t *m = malloc(h * w), *back = malloc(h * w);
        uint32_t ones = 0;
        for (uint32_t i = 0; i < h * w; i++) ones += m[i] = nd_rng_uniform(&r) < 0.3;
        ceval_rle e;
        cr_assert_eq(ceval_rle_encode(&e, m, h, w), 0);
        cr_expect_eq(ceval_rle_area(&e), ones);
        cr_assert_eq(ceval_rle_decode(&e, back), 0);
        cr_expect(memcmp(m, back, h * w) == 0);
        /* the compressed string reads back to the same runs */
        char *s = ceval_rle_to_string(&e);
        ceval_rle d;
        cr_assert_eq(ceval_rle_from_string(&d, s, strlen(s), h, w), 0);
        cr_expect_eq(d.m, e.m);
        cr_expect(memcmp(d.cnts, e.cnts, sizeof *d.cnts * (size_t)d.m) == 0);
        for (const char *c = s; *c; c++) cr_expect(*c >= 48 && *c < 112, "char %d", *c);
        free(s);
        ceval_rle_free(&d);
        ceval_rle_free(&e);
        free(m);
        free(back);
    }
}

Test(eval_mask, integer_box_rasterises_to_its_pixels) {
    const double bb[4] = {2, 3, 4, 5};
    ceval_rle r;
    cr_assert_eq(ceval_rle_from_bbox(&r, bb, 20, 20), 0);
    cr_expect_eq(ceval_rle_area(&r), 20u);
    double tb[4];
    cr_assert_eq(ceval_rle_to_bbox(&r, tb), 0);
    for (int i = 0; i < 4; i++) cr_expect_eq(tb[i], bb[i], "bbox[%d] = %g", i, tb[i]);
    uint8_t m[400];
    cr_assert_eq(ceval_rle_decode(&r, m), 0);
    /* column-major: pixel (x, y) at x*h + y */
    for (int x = 0; x < 20; x++)
        for (int y = 0; y < 20; y++)
            cr_expect_eq(m[x * 20 + y], x >= 2 && x < 6 && y >= 3 && y < 8, "pixel %d,%d", x, y);
    ceval_rle_free(&r);
}

Test(eval_mask, merge_and_iou_agree_with_boxes) {
    const double a[4] = {0, 0, 10, 10}, b[4] = {5, 5, 10, 10};
    ceval_rle rs[2], u, i;
    cr_assert_eq(ceval_rle_from_bbox(&rs[0], a, 32, 32), 0);
    cr_assert_eq(ceval_rle_from_bbox(&rs[1], b, 32, 32), 0);
    cr_assert_eq(ceval_rle_merge(rs, 2, 0, &u), 0);
    cr_assert_eq(ceval_rle_merge(rs, 2, 1, &i), 0);
    cr_expect_eq(ceval_rle_area(&u), 175u);
    cr_expect_eq(ceval_rle_area(&i), 25u);
    double o, ob;
    ceval_rle_iou(&rs[0], 1, &rs[1], 1, NULL, &o);
    ceval_bbox_iou(a, 1, b, 1, NULL, &ob);
    cr_expect_eq(o, 25.0 / 175.0);
    cr_expect_eq(ob, 25.0 / 175.0);
    /* a crowd GT: the union is the detection's area */
    uint8_t crowd = 1;
    ceval_rle_iou(&rs[0], 1, &rs[1], 1, &crowd, &o);
    cr_expect_eq(o, 25.0 / 100.0);
    ceval_bbox_iou(a, 1, b, 1, &crowd, &ob);
    cr_expect_eq(ob, 25.0 / 100.0);
    /* different mask sizes: -1, as maskApi */
    ceval_rle other;
    cr_assert_eq(ceval_rle_from_bbox(&other, b, 16, 32), 0);
    ceval_rle_iou(&rs[0], 1, &other, 1, NULL, &o);
    cr_expect_eq(o, -1.0);
    /* disjoint masks: 0 */
    const double c[4] = {20, 20, 5, 5};
    ceval_rle rc;
    cr_assert_eq(ceval_rle_from_bbox(&rc, c, 32, 32), 0);
    ceval_rle_iou(&rs[0], 1, &rc, 1, NULL, &o);
    cr_expect_eq(o, 0.0);
    ceval_rle_free(&rc);
    ceval_rle_free(&other);
    ceval_rle_free(&u);
    ceval_rle_free(&i);
    ceval_rle_free(&rs[0]);
    ceval_rle_free(&rs[1]);
}

Test(eval_mask, polygon_edge_cases) {
    ceval_rle r;
    /* a triangle: inside pixels only, never more than its box */
    const double tri[6] = {1, 1, 9, 1, 1, 9};
    cr_assert_eq(ceval_rle_from_poly(&r, tri, 3, 12, 12), 0);
    uint32_t a = ceval_rle_area(&r);
    cr_expect(a > 25 && a < 50, "triangle area %u", a);
    ceval_rle_free(&r);
    /* repeated vertices (maskApi divides 0/0 there) and a polygon partly outside the image */
    const double dup[10] = {1, 1, 1, 1, 6, 1, 6, 6, 1, 6};
    cr_assert_eq(ceval_rle_from_poly(&r, dup, 5, 10, 10), 0);
    cr_expect_eq(ceval_rle_area(&r), 25u);
    ceval_rle_free(&r);
    const double out[8] = {-5, -5, 50, -5, 50, 50, -5, 50};
    cr_assert_eq(ceval_rle_from_poly(&r, out, 4, 10, 10), 0);
    cr_expect_eq(ceval_rle_area(&r), 100u);
    ceval_rle_free(&r);
    /* empty polygon: an empty mask */
    cr_assert_eq(ceval_rle_from_poly(&r, NULL, 0, 4, 4), 0);
    cr_expect_eq(ceval_rle_area(&r), 0u);
    ceval_rle_free(&r);
    /* non-finite and absurd coordinates are errors, not undefined behaviour */
    const double bad[6] = {0, 0, NAN, 1, 1, 1};
    cr_expect_eq(ceval_rle_from_poly(&r, bad, 3, 4, 4), ND_ERR_INVALID);
    const double huge[6] = {0, 0, 1e30, 1, 1, 1};
    cr_expect_eq(ceval_rle_from_poly(&r, huge, 3, 4, 4), ND_ERR_INVALID);
    const double wide[6] = {0, 0, 9e7, 0, 0, 9e7};
    cr_expect_eq(ceval_rle_from_poly(&r, wide, 3, 4, 4), ND_ERR_INVALID);
}

Test(eval_mask, malformed_strings_and_runs_fail) {
    ceval_rle r;
    cr_expect_neq(ceval_rle_from_string(&r, "a", 1, 4, 4), 0); /* 'a' - 48 has the continuation bit */
    cr_expect_neq(ceval_rle_from_string(&r, "oooooooo0", 9, 4, 4), 0);
    cr_assert_eq(ceval_rle_from_string(&r, "", 0, 4, 4), 0);
    cr_expect_eq(r.m, 0);
    double bb[4];
    cr_expect_eq(ceval_rle_to_bbox(&r, bb), 0);
    cr_expect_eq(bb[2], 0.0);
    ceval_rle_free(&r);
    uint32_t cnts[2] = {3, 20};
    ceval_rle bad = {4, 4, 2, cnts};
    uint8_t m[16];
    cr_expect_eq(ceval_rle_decode(&bad, m), ND_ERR_FORMAT);
    ceval_rle zero_h = {0, 4, 2, cnts};
    cr_expect_eq(ceval_rle_to_bbox(&zero_h, bb), ND_ERR_FORMAT);
}

Test(eval_mask, np_mean_is_pairwise) {
    double a[10];
    for (int i = 0; i < 10; i++) a[i] = 0.1;
    /* the classic: sum() gives 0.9999999999999999, np.sum 1.0 */
    cr_expect_eq(ceval_np_mean(a, 10), 0.1);
    double naive = 0;
    for (int i = 0; i < 10; i++) naive += a[i];
    cr_expect_neq(naive / 10, 0.1);
    /* 8 accumulators, then the tail, for 8 < n <= 128 */
    double b[21], r[8];
    for (int i = 0; i < 21; i++) b[i] = 1.0 / (i + 3);
    for (int j = 0; j < 8; j++) r[j] = b[j] + b[8 + j];
    double want = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (int i = 16; i < 21; i++) want += b[i];
    cr_expect_eq(ceval_np_mean(b, 21), want / 21);
    /* n > 128 splits at a multiple of 8 below n/2; n > 8192 is summed in blocks */
    static double c[20000];
    for (int i = 0; i < 20000; i++) c[i] = 1.0 / (1 + i % 97);
    double s1 = ceval_np_mean(c, 8192) * 8192, s2 = ceval_np_mean(c + 8192, 8192) * 8192,
           s3 = ceval_np_mean(c + 16384, 20000 - 16384) * (20000 - 16384);
    cr_expect_eq(ceval_np_mean(c, 20000), ((0.0 + s1) + s2 + s3) / 20000);
}
