#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/cvshim.h"
#include "common/fileio.h"
#include "common/status.h"
#include "tests/util/testutil.h"

Test(image, decodes_real_photo_and_digits) {
    nd_image img;
    cr_assert_eq(nd_image_read("demos/data/photos/fruits.jpg", 3, &img), 0, "%s", nd_last_error());
    cr_expect(img.width > 100 && img.height > 100);
    cr_expect_eq(img.channels, 3);
    nd_image_free(&img);
    cr_assert_eq(nd_image_read("demos/data/digits.png", 0, &img), 0, "%s", nd_last_error());
    cr_expect_eq(img.width, 2000);
    cr_expect_eq(img.height, 1000);
    cr_expect_eq(img.channels, 1);
    nd_image_free(&img);
}

Test(image, png_round_trip_is_exact_and_rgb_ordered) {
    nd_image img, back;
    cr_assert_eq(nd_image_alloc(&img, 7, 5, 3), 0);
    for (int i = 0; i < 7 * 5 * 3; i++) img.data[i] = (uint8_t)(i * 37);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(nd_image_encode(&img, ".png", 0, &buf, &len), 0);
    cr_assert_eq(nd_image_decode(buf, len, 3, &back), 0);
    cr_expect_eq(back.width, 7);
    cr_expect_eq(memcmp(img.data, back.data, 7 * 5 * 3), 0);
    free(buf);
    nd_image_free(&back);
    /* A pure red pixel stays red (R first) through JPEG too. */
    memset(img.data, 0, 7 * 5 * 3);
    for (int i = 0; i < 35; i++) img.data[3 * i] = 255;
    cr_assert_eq(nd_image_encode(&img, ".jpg", 100, &buf, &len), 0);
    cr_assert_eq(nd_image_decode(buf, len, 3, &back), 0);
    cr_expect(back.data[0] > 200 && back.data[1] < 60 && back.data[2] < 60);
    free(buf);
    nd_image_free(&back);
    nd_image_free(&img);
}

Test(image, corrupt_truncated_and_missing_give_status) {
    nd_image img;
    char *jpg;
    size_t len;
    cr_assert_eq(nd_file_read_all("demos/data/photos/fruits.jpg", &jpg, &len), 0);
    /* Only the header: must not crash; may decode partially or fail cleanly. */
    int rc = nd_image_decode(jpg, 200, 3, &img);
    cr_expect(rc == 0 || rc == ND_ERR_FORMAT);
    nd_image_free(&img);
    const char garbage[] = "this is not an image at all";
    cr_expect_eq(nd_image_decode(garbage, sizeof garbage, 3, &img), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "not a readable image") != NULL, "%s", nd_last_error());
    /* A PNG header that declares a 100000 x 100000 image. */
    static const uint8_t huge_png[] = {0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00,
                                       0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x01, 0x86, 0xa0, 0x00, 0x01,
                                       0x86, 0xa0, 0x08, 0x02, 0x00, 0x00, 0x00, 0x27, 0x30, 0x9c, 0x9f};
    cr_expect_neq(nd_image_decode(huge_png, sizeof huge_png, 3, &img), 0);
    cr_expect_eq(nd_image_read("demos/data/photos/does-not-exist.jpg", 3, &img), ND_ERR_IO);
    cr_expect(strstr(nd_last_error(), "does-not-exist.jpg") != NULL);
    free(jpg);
}

Test(image, resize_warp_letterbox_draw) {
    nd_image img, out;
    cr_assert_eq(nd_image_alloc(&img, 40, 20, 3), 0);
    memset(img.data, 100, 40 * 20 * 3);
    cr_assert_eq(nd_image_resize(&img, 20, 10, ND_INTERP_AREA, &out), 0);
    cr_expect_eq(out.data[0], 100);
    nd_image_free(&out);
    double scale;
    int32_t ox, oy;
    cr_assert_eq(nd_image_letterbox(&img, 32, 32, 0, &out, &scale, &ox, &oy), 0);
    cr_expect_float_eq(scale, 0.8, 1e-12);
    cr_expect_eq(ox, 0);
    cr_expect_eq(oy, 8);
    cr_expect_eq(out.data[0], 0);
    cr_expect_eq(out.data[(10 * 32 + 5) * 3], 100);
    nd_image_free(&out);
    const double shift[6] = {1, 0, 5, 0, 1, 0}; /* move right by 5 px */
    const uint8_t border[3] = {7, 7, 7};
    cr_assert_eq(nd_image_warp_affine(&img, shift, 40, 20, ND_INTERP_LINEAR, border, &out), 0);
    cr_expect_eq(out.data[0], 7);
    cr_expect_eq(out.data[(0 * 40 + 10) * 3], 100);
    nd_image_free(&out);
    const uint8_t red[3] = {255, 0, 0}, black[3] = {0, 0, 0};
    cr_expect_eq(nd_image_draw_rect(&img, 2, 2, 30, 15, red, 1), 0);
    cr_expect_eq(img.data[(2 * 40 + 10) * 3], 255);
    cr_expect_eq(nd_image_draw_text(&img, "7 0.98", 2, 12, 0.4, red, 1, black), 0);
    cr_expect_eq(nd_image_crop(&img, 30, 10, 20, 5, &out), ND_ERR_INVALID);
    cr_expect_eq(nd_image_crop(&img, 30, 10, 10, 5, &out), 0);
    nd_image_free(&out);
    nd_image_free(&img);
    nd_image_free(NULL);
}
