/* CIFAR-10 / CIFAR-100 binary records. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "coco/coco.h"
#include "common/fileio.h"
#include "common/status.h"
#include "tests/util/testutil.h"

static uint8_t *records(int n, int label_bytes) {
    size_t rec = (size_t)label_bytes + COCO_CIFAR_PIXELS;
    uint8_t *buf = malloc((size_t)n * rec);
    for (int i = 0; i < n; i++) {
        uint8_t *r = buf + (size_t)i * rec;
        r[0] = (uint8_t)(i % (label_bytes == 1 ? 10 : 20));
        if (label_bytes == 2) r[1] = (uint8_t)(i * 7 % 100);
        for (int p = 0; p < COCO_CIFAR_PIXELS; p++) r[label_bytes + p] = (uint8_t)(p * 3 + i);
    }
    return buf;
}

Test(coco_cifar, parses_cifar10_records_in_order) {
    uint8_t *buf = records(4, 1);
    coco_cifar c = {0};
    cr_assert_eq(coco_cifar_parse(buf, 4 * 3073, COCO_CIFAR10, "mem", &c), 0, "%s", nd_last_error());
    cr_assert_eq(c.count, 4);
    cr_expect_eq(c.coarse, NULL);
    cr_expect_eq(c.labels[3], 3);
    /* Planes as stored: pixel (c=1, y=2, x=5) of record 2 is byte 1 + 1024 + 2*32 + 5. */
    cr_expect_eq(c.pixels[2 * 3072 + 1024 + 69], (uint8_t)((1024 + 69) * 3 + 2));
    /* Appending a second buffer. */
    cr_assert_eq(coco_cifar_parse(buf, 3073, COCO_CIFAR10, "mem", &c), 0);
    cr_expect_eq(c.count, 5);
    cr_expect_eq(c.labels[4], 0);
    coco_cifar_free(&c);
    free(buf);
}

Test(coco_cifar, parses_cifar100_two_label_bytes) {
    uint8_t *buf = records(3, 2);
    coco_cifar c = {0};
    cr_assert_eq(coco_cifar_parse(buf, 3 * 3074, COCO_CIFAR100, "mem", &c), 0, "%s", nd_last_error());
    cr_expect_eq(c.coarse[2], 2);
    cr_expect_eq(c.labels[2], 14);
    cr_expect_eq(c.pixels[3072 + 10], (uint8_t)(30 + 1));
    /* The same bytes read as CIFAR-10 are not whole records. */
    coco_cifar d = {0};
    cr_expect_eq(coco_cifar_parse(buf, 3 * 3074, COCO_CIFAR10, "mem", &d), ND_ERR_FORMAT);
    coco_cifar_free(&c);
    free(buf);
}

Test(coco_cifar, truncated_file_names_file_record_and_size) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "data_batch_1.bin");
    uint8_t *buf = records(3, 1);
    cr_assert_eq(nd_file_write_atomic(path, buf, 3 * 3073 - 100), 0);
    coco_cifar c = {0};
    cr_assert_eq(coco_cifar_read(path, COCO_CIFAR10, &c), ND_ERR_FORMAT);
    const char *m = nd_last_error();
    cr_expect(strstr(m, "data_batch_1.bin") && strstr(m, "record 2 is incomplete") && strstr(m, "2973 of 3073"),
              "%s", m);
    cr_expect_eq(c.count, 0);
    /* A folder with batch 1 broken and the rest missing. */
    cr_expect_eq(coco_cifar_read_dir(dir, 1, &c), ND_ERR_FORMAT);
    cr_assert_eq(nd_file_write_atomic(path, buf, 3 * 3073), 0);
    cr_expect_eq(coco_cifar_read_dir(dir, 1, &c), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "data_batch_2.bin: missing"), "%s", nd_last_error());
    cr_expect_eq(c.pixels, NULL);
    free(path);
    free(buf);
    tu_rmtree(dir);
    free(dir);
}

Test(coco_cifar, bad_label_names_record) {
    uint8_t *buf = records(3, 1);
    buf[3073 * 1] = 10;
    coco_cifar c = {0};
    cr_assert_eq(coco_cifar_parse(buf, 3 * 3073, COCO_CIFAR10, "x.bin", &c), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "x.bin: record 1 (byte offset 3073): label 10, expected 0..9"), "%s",
              nd_last_error());
    cr_expect_eq(c.count, 0, "a failed parse leaves the set unchanged");
    free(buf);
}

Test(coco_cifar, empty_buffer_is_zero_records) {
    coco_cifar c = {0};
    cr_expect_eq(coco_cifar_parse("", 0, COCO_CIFAR10, "e", &c), 0);
    cr_expect_eq(c.count, 0);
    coco_cifar_free(&c);
}
