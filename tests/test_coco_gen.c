/* The demo data generators through the CLI: output the readers accept, byte-identical for a
 * seed (also across OpenMP thread counts), disjoint digit instances per split. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coco/coco.h"
#include "coco/gen_internal.h"
#include "common/fileio.h"
#include "common/status.h"
#include "tests/util/testutil.h"

/* The CLI finds digits.png through nd_data_path; from a build folder other than bin/ the
 * source tree's demos/ must be named. Tests run from the repository root. */
static void data_dir(void) {
    if (!getenv("NASDET_DATA_DIR")) {
        char *cwd = realpath(".", NULL);
        char *d = nd_path_join(cwd, "demos");
        setenv("NASDET_DATA_DIR", d, 1);
        free(d);
        free(cwd);
    }
}

static void gen(const char *what, const char *dir, const char *extra) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "data %s --out '%s' %s", what, dir, extra);
    char *out = NULL;
    int rc = tu_run_cli(cmd, &out);
    cr_assert_eq(rc, 0, "nasdet %s -> %d: %s", cmd, rc, out);
    free(out);
}

static int same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = tu_read_file(a, &la), *y = tu_read_file(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x), free(y);
    return same;
}

static int same_tree(const char *a, const char *b, const char *const *files, int n) {
    for (int i = 0; i < n; i++) {
        char *pa = nd_path_join(a, files[i]), *pb = nd_path_join(b, files[i]);
        int s = same_file(pa, pb);
        free(pa), free(pb);
        if (!s) return 0;
    }
    return 1;
}

static const char *const cls_files[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin",
                                        "batches.meta.txt"};

Test(coco_gen, digits_cls_reads_back_and_is_deterministic) {
    data_dir();
    char *root = tu_tmpdir();
    char *a = nd_path_join(root, "a"), *b = nd_path_join(root, "b"), *c = nd_path_join(root, "c");
    gen("digits-cls", a, "--train 52 --test 20 --seed 3");
    setenv("OMP_NUM_THREADS", "1", 1);
    gen("digits-cls", b, "--train 52 --test 20 --seed 3");
    unsetenv("OMP_NUM_THREADS");
    gen("digits-cls", c, "--train 52 --test 20 --seed 4");
    cr_expect(same_tree(a, b, cls_files, 7), "same seed, 1 thread or many: same bytes");
    char *ta = nd_path_join(a, "test_batch.bin"), *tc = nd_path_join(c, "test_batch.bin");
    cr_expect(!same_file(ta, tc), "another seed, other images");
    free(ta), free(tc);
    coco_cifar train, test;
    cr_assert_eq(coco_cifar_read_dir(a, 1, &train), 0, "%s", nd_last_error());
    cr_assert_eq(coco_cifar_read_dir(a, 0, &test), 0, "%s", nd_last_error());
    cr_expect_eq(train.count, 52);
    cr_expect_eq(test.count, 20);
    char *b1 = nd_path_join(a, "data_batch_1.bin"), *b5 = nd_path_join(a, "data_batch_5.bin");
    size_t l1, l5;
    free(tu_read_file(b1, &l1)), free(tu_read_file(b5, &l5));
    cr_expect_eq(l1, 11 * 3073, "52 = 11 + 11 + 10 + 10 + 10");
    cr_expect_eq(l5, 10 * 3073);
    /* Real pictures, not blank: pixel values vary within an image and labels vary. */
    int labels_seen = 0;
    for (int64_t i = 0; i < train.count; i++) {
        labels_seen |= 1 << train.labels[i];
        int lo = 255, hi = 0;
        for (int p = 0; p < COCO_CIFAR_PIXELS; p++) {
            int v = train.pixels[i * COCO_CIFAR_PIXELS + p];
            lo = v < lo ? v : lo, hi = v > hi ? v : hi;
        }
        cr_expect(hi - lo > 40, "image %lld is nearly flat", (long long)i);
    }
    cr_expect(__builtin_popcount((unsigned)labels_seen) >= 8, "labels %x", labels_seen);
    char **names;
    int32_t n;
    cr_assert_eq(coco_cifar_read_names(a, &names, &n), 0);
    cr_expect_eq(n, 10);
    cr_expect_str_eq(names[7], "7");
    coco_names_free(names, n);
    coco_cifar_free(&train), coco_cifar_free(&test);
    free(b1), free(b5), free(a), free(b), free(c);
    tu_rmtree(root);
    free(root);
}

Test(coco_gen, digits_det_reads_back_and_is_deterministic) {
    data_dir();
    char *root = tu_tmpdir();
    char *a = nd_path_join(root, "a"), *b = nd_path_join(root, "b");
    gen("digits-det", a, "--train 5 --val 3 --size 96 --seed 9");
    setenv("OMP_NUM_THREADS", "1", 1);
    gen("digits-det", b, "--train 5 --val 3 --size 96 --seed 9");
    unsetenv("OMP_NUM_THREADS");
    static const char *const files[] = {"annotations/instances_train.json", "annotations/instances_val.json",
                                        "train/000001.jpg", "train/000005.jpg", "val/000003.jpg"};
    cr_expect(same_tree(a, b, files, 5), "same seed: same bytes");
    const char *splits[2] = {"train", "val"};
    for (int s = 0; s < 2; s++) {
        char name[64];
        snprintf(name, sizeof name, "annotations/instances_%s.json", splits[s]);
        char *json = nd_path_join(a, name), *imgs = nd_path_join(a, splits[s]);
        coco_dataset ds;
        cr_assert_eq(coco_dataset_read(json, &ds), 0, "%s", nd_last_error());
        cr_expect_eq(ds.num_images, s == 0 ? 5 : 3);
        cr_assert_eq(ds.num_classes, 10);
        for (int k = 0; k < 10; k++) {
            cr_expect_eq(ds.categories[k].id, k + 1);
            cr_expect_eq(ds.categories[k].name[0], '0' + k);
        }
        cr_expect(ds.num_anns >= ds.num_images, "1 to 8 digits an image");
        for (int64_t i = 0; i < ds.num_anns; i++) {
            const coco_ann *an = &ds.anns[i];
            cr_expect_eq(an->id, i + 1);
            cr_expect_eq(an->iscrowd, 0);
            cr_expect(an->bbox[0] >= 0 && an->bbox[1] >= 0 && an->bbox[0] + an->bbox[2] <= 96 &&
                      an->bbox[1] + an->bbox[3] <= 96);
            cr_expect(an->bbox[3] >= 6 && an->bbox[3] <= 40, "digit height %g", an->bbox[3]);
            cr_expect_float_eq(an->area, an->bbox[2] * an->bbox[3], 1e-9);
        }
        for (int64_t i = 0; i < ds.num_images; i++) {
            cr_expect_eq(ds.images[i].id, i + 1);
            cr_expect_eq(ds.images[i].ann_count <= 8, 1);
        }
        /* The loader reads every picture. */
        coco_det_opts o;
        coco_det_opts_default(&o);
        o.batch_size = 4, o.threads = 1, o.epochs = 1, o.min_side = 96, o.max_side = 96;
        coco_loader *l;
        cr_assert_eq(coco_loader_det_new(&ds, imgs, &o, &l), 0, "%s", nd_last_error());
        const coco_batch *bt;
        int64_t seen = 0, boxes = 0;
        int rc;
        while ((rc = coco_loader_next(l, &bt)) == 0 && bt) seen += bt->n, boxes += bt->num_boxes;
        cr_expect_eq(rc, 0, "%s", nd_last_error());
        cr_expect_eq(seen, ds.num_images);
        cr_expect_eq(boxes, ds.num_anns);
        coco_loader_free(l);
        coco_dataset_free(&ds);
        free(json), free(imgs);
    }
    free(a), free(b);
    tu_rmtree(root);
    free(root);
}

Test(coco_gen, splits_use_disjoint_digit_cells) {
    nd_rng rng;
    nd_rng_seed(&rng, 1);
    for (int i = 0; i < 2000; i++) {
        int32_t cls = i % 10;
        int32_t tr = gen_pick_cell(&rng, cls, 0), te = gen_pick_cell(&rng, cls, 1);
        cr_expect(tr >= cls * 500 && tr < cls * 500 + 400, "train cell %d of class %d", tr, cls);
        cr_expect(te >= cls * 500 + 400 && te < cls * 500 + 500, "test cell %d of class %d", te, cls);
    }
}

Test(coco_gen, cli_errors_are_clear) {
    data_dir();
    char *out = NULL;
    cr_expect_eq(tu_run_cli("data digits-cls", &out), 2);
    cr_expect(strstr(out, "--out DIR is required"), "%s", out);
    free(out);
    cr_expect_eq(tu_run_cli("data digits-foo --out /tmp/x", &out), 2);
    cr_expect(strstr(out, "expected one generator"), "%s", out);
    free(out);
    cr_expect_eq(tu_run_cli("data digits-det --out /tmp/x --test 3", &out), 2);
    cr_expect(strstr(out, "takes --val"), "%s", out);
    free(out);
    cr_expect_eq(tu_run_cli("data digits-cls --out /tmp/nasdet-never --train 2", &out), 1);
    cr_expect(strstr(out, "need 5 <= train"), "%s", out);
    free(out);
    cr_expect_eq(tu_run_cli("data --help", &out), 0);
    cr_expect(strstr(out, "digits-det"), "%s", out);
    free(out);
}
