/* The batch loader: ordering, augmentation, normalisation, detection resizing and boxes,
 * determinism across thread counts, and bad images reported by name. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coco/coco.h"
#include "common/cvshim.h"
#include "common/fileio.h"
#include "common/status.h"
#include "tests/util/testutil.h"

/* ---- classification ---------------------------------------------------------------------- */

static coco_cifar fake_cifar(int n) {
    coco_cifar c = {0};
    c.count = n;
    c.pixels = malloc((size_t)n * COCO_CIFAR_PIXELS);
    c.labels = malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        c.labels[i] = (uint8_t)(i % 10);
        for (int p = 0; p < COCO_CIFAR_PIXELS; p++) c.pixels[(size_t)i * COCO_CIFAR_PIXELS + p] = (uint8_t)(p * 13 + i * 7);
    }
    return c;
}

/* All batches of `epochs` epochs, concatenated (images then labels then samples). */
static size_t run_cls(const coco_cls_source *src, coco_cls_opts o, float **out, int64_t **samples) {
    coco_loader *l;
    cr_assert_eq(coco_loader_cls_new(src, &o, &l), 0, "%s", nd_last_error());
    size_t len = 0, ns = 0;
    *out = NULL;
    *samples = NULL;
    const coco_batch *b;
    while (coco_loader_next(l, &b) == 0 && b) {
        size_t k = (size_t)b->n * 3 * (size_t)b->height * (size_t)b->width;
        *out = realloc(*out, (len + k) * sizeof(float));
        memcpy(*out + len, b->images, k * sizeof(float));
        len += k;
        *samples = realloc(*samples, (ns + (size_t)b->n) * sizeof(int64_t));
        for (int j = 0; j < b->n; j++) {
            cr_expect_eq(b->labels[j], (int32_t)(b->sample[j] % 10), "label follows its sample");
            (*samples)[ns++] = b->sample[j];
        }
    }
    coco_loader_free(l);
    return len;
}

Test(coco_loader, cls_batches_identical_for_0_1_2_threads) {
    coco_cifar c = fake_cifar(50);
    coco_cls_source src = coco_cls_source_cifar(&c);
    coco_cls_opts o;
    coco_cls_opts_default(&o);
    o.batch_size = 8;
    o.epochs = 2;
    o.seed = 11;
    o.pad = 4;
    o.flip = 1;
    o.cutout = 8;
    float *ref, *got;
    int64_t *sref, *sgot;
    o.threads = 0;
    size_t n0 = run_cls(&src, o, &ref, &sref);
    cr_assert_eq(n0, (size_t)100 * 3072);
    for (int t = 1; t <= 2; t++) {
        o.threads = t;
        o.prefetch = t == 1 ? 1 : 3;
        size_t n = run_cls(&src, o, &got, &sgot);
        cr_assert_eq(n, n0);
        cr_expect_eq(memcmp(ref, got, n * sizeof(float)), 0, "%d threads differ", t);
        cr_expect_eq(memcmp(sref, sgot, 100 * sizeof(int64_t)), 0);
        free(got);
        free(sgot);
    }
    /* Each epoch visits every sample once, in a different order. */
    int seen[2][50] = {{0}};
    for (int i = 0; i < 100; i++) seen[i / 50][sref[i]]++;
    for (int e = 0; e < 2; e++)
        for (int i = 0; i < 50; i++) cr_expect_eq(seen[e][i], 1, "epoch %d sample %d", e, i);
    cr_expect_neq(memcmp(sref, sref + 50, 50 * sizeof(int64_t)), 0, "epochs reshuffle");
    int identity = 1;
    for (int i = 0; i < 50; i++) identity &= sref[i] == i;
    cr_expect(!identity, "shuffled");
    /* Another seed, other batches. */
    o.seed = 12;
    o.threads = 1;
    run_cls(&src, o, &got, &sgot);
    cr_expect_neq(memcmp(ref, got, n0 * sizeof(float)), 0);
    free(got), free(sgot), free(ref), free(sref);
    coco_cifar_free(&c);
}

Test(coco_loader, cls_normalises_and_augments_as_documented) {
    coco_cifar c = fake_cifar(3);
    coco_cls_source src = coco_cls_source_cifar(&c);
    coco_cls_opts o;
    coco_cls_opts_default(&o);
    o.batch_size = 3;
    o.shuffle = 0;
    o.threads = 0;
    o.epochs = 1;
    o.mean[1] = 0.25f, o.std[1] = 2.0f;
    float *plain;
    int64_t *s;
    run_cls(&src, o, &plain, &s);
    cr_expect_eq(s[2], 2, "no shuffle: in order");
    /* Sample 1, channel 1, y 3, x 4: (p / 255 - 0.25) / 2. */
    size_t p = 1024 + 3 * 32 + 4;
    float want = ((float)(uint8_t)(p * 13 + 7) / 255.0f - 0.25f) / 2.0f;
    cr_expect_float_eq(plain[3072 + p], want, 1e-6);
    free(s);
    /* Flip always mirrors or not; with flip on, a flipped image is the mirror of the plain one. */
    o.flip = 1;
    int mirrored = 0;
    for (uint64_t seed = 1; seed < 8; seed++) {
        float *f;
        o.seed = seed;
        run_cls(&src, o, &f, &s);
        for (int i = 0; i < 3; i++) {
            int same = 1, mirror = 1;
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    same &= f[i * 3072 + y * 32 + x] == plain[i * 3072 + y * 32 + x];
                    mirror &= f[i * 3072 + y * 32 + x] == plain[i * 3072 + y * 32 + 31 - x];
                }
            cr_expect(same || mirror);
            mirrored += mirror;
        }
        free(f), free(s);
    }
    cr_expect(mirrored > 0 && mirrored < 21, "flips happen about half the time: %d of 21", mirrored);
    /* Cutout zeroes a square (0 is the normalised mean), at most 8x8 pixels per plane. */
    o.flip = 0;
    o.cutout = 8;
    float *cut;
    run_cls(&src, o, &cut, &s);
    int zeros = 0;
    for (int k = 0; k < 3072; k++) zeros += cut[k] == 0.0f && plain[k] != 0.0f;
    cr_expect(zeros > 0 && zeros <= 3 * 64, "%d zeroed", zeros);
    free(cut), free(s), free(plain);
    coco_cifar_free(&c);
}

Test(coco_loader, subset_drop_last_and_endless) {
    coco_cifar c = fake_cifar(20);
    coco_cls_source src = coco_cls_source_cifar(&c);
    coco_cls_opts o;
    coco_cls_opts_default(&o);
    o.batch_size = 4, o.first = 15, o.count = 5, o.drop_last = 1, o.threads = 1;
    coco_loader *l;
    cr_assert_eq(coco_loader_cls_new(&src, &o, &l), 0, "%s", nd_last_error());
    cr_expect_eq(coco_loader_batches_per_epoch(l), 1);
    const coco_batch *b;
    for (int k = 0; k < 5; k++) { /* endless: epochs 0 */
        cr_assert_eq(coco_loader_next(l, &b), 0);
        cr_assert_not_null(b);
        cr_expect_eq(b->epoch, k);
        cr_expect_eq(b->n, 4);
        for (int j = 0; j < 4; j++) cr_expect(b->sample[j] >= 15 && b->sample[j] < 20);
    }
    coco_loader_free(l);
    o.count = 21;
    cr_expect_eq(coco_loader_cls_new(&src, &o, &l), ND_ERR_INVALID);
    coco_cifar_free(&c);
}

/* ---- image folders ----------------------------------------------------------------------- */

static void write_png(const char *dir, const char *name, int w, int h, uint8_t v) {
    nd_image img;
    cr_assert_eq(nd_image_alloc(&img, w, h, 3), 0);
    for (int i = 0; i < w * h * 3; i++) img.data[i] = (uint8_t)(v + i % 3);
    char *p = nd_path_join(dir, name);
    cr_assert_eq(nd_image_write(p, &img, 0), 0, "%s", nd_last_error());
    free(p);
    nd_image_free(&img);
}

Test(coco_loader, image_folder_classes_sorted_and_files_resized) {
    char *root = tu_tmpdir();
    char *a = nd_path_join(root, "zebra"), *b = nd_path_join(root, "ant");
    nd_mkdirs(a), nd_mkdirs(b);
    write_png(a, "2.png", 10, 8, 100);
    write_png(a, "1.png", 10, 8, 50);
    write_png(b, "x.png", 6, 6, 200);
    char *note = nd_path_join(a, "notes.txt");
    tu_write_file(note, "not an image");
    coco_imagefolder f;
    cr_assert_eq(coco_imagefolder_read(root, &f), 0, "%s", nd_last_error());
    cr_assert_eq(f.num_classes, 2);
    cr_expect_str_eq(f.class_names[0], "ant");
    cr_assert_eq(f.count, 3);
    cr_expect_eq(f.labels[0], 0);
    cr_expect(strstr(f.paths[1], "zebra/1.png") != NULL, "%s", f.paths[1]);
    coco_cls_source src = coco_cls_source_folder(&f);
    coco_cls_opts o;
    coco_cls_opts_default(&o);
    o.batch_size = 3, o.shuffle = 0, o.threads = 2, o.epochs = 1, o.out_height = 4, o.out_width = 5;
    o.mean[0] = o.mean[1] = o.mean[2] = 0, o.std[0] = o.std[1] = o.std[2] = 1;
    coco_loader *l;
    cr_assert_eq(coco_loader_cls_new(&src, &o, &l), 0, "%s", nd_last_error());
    const coco_batch *bt;
    cr_assert_eq(coco_loader_next(l, &bt), 0, "%s", nd_last_error());
    cr_assert_not_null(bt);
    cr_expect_eq(bt->height, 4);
    cr_expect_eq(bt->width, 5);
    cr_expect_eq(bt->labels[1], 1);
    cr_expect_eq(bt->orig_w[1], 10, "size before resizing");
    /* A flat image stays flat when resized: R of sample 1 is 50/255 everywhere. */
    cr_expect_float_eq(bt->images[60 + 7], 50.0f / 255.0f, 1e-6);
    cr_expect_float_eq(bt->images[20 + 7], 201.0f / 255.0f, 1e-6);
    cr_expect_eq(coco_loader_next(l, &bt), 0);
    cr_expect_null(bt, "one epoch only");
    coco_loader_free(l);
    coco_imagefolder_free(&f);
    /* Not a folder / no classes. */
    cr_expect_eq(coco_imagefolder_read(note, &f), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "notes.txt: not a folder"), "%s", nd_last_error());
    cr_expect_eq(coco_imagefolder_read(b, &f), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "no class sub-folders"), "%s", nd_last_error());
    free(note), free(a), free(b);
    tu_rmtree(root);
    free(root);
}

/* ---- detection --------------------------------------------------------------------------- */

/* Four images (40x20, 20x40, 30x30, 16x16) with boxes; image 4 has none. */
static char *det_fixture(coco_dataset *ds) {
    char *dir = tu_tmpdir();
    write_png(dir, "a.png", 40, 20, 10);
    write_png(dir, "b.png", 20, 40, 60);
    write_png(dir, "c.png", 30, 30, 120);
    write_png(dir, "d.png", 16, 16, 180);
    const char *json =
        "{\"images\": [{\"id\": 10, \"file_name\": \"a.png\", \"width\": 40, \"height\": 20},"
        "{\"id\": 20, \"file_name\": \"b.png\", \"width\": 20, \"height\": 40},"
        "{\"id\": 30, \"file_name\": \"c.png\", \"width\": 30, \"height\": 30},"
        "{\"id\": 40, \"file_name\": \"d.png\", \"width\": 16, \"height\": 16}],"
        "\"annotations\": [{\"id\": 1, \"image_id\": 10, \"category_id\": 7, \"bbox\": [2, 4, 10, 6]},"
        "{\"id\": 2, \"image_id\": 10, \"category_id\": 3, \"bbox\": [20, 0, 20, 20], \"iscrowd\": 1},"
        "{\"id\": 3, \"image_id\": 20, \"category_id\": 7, \"bbox\": [0, 0, 5, 5]},"
        "{\"id\": 4, \"image_id\": 30, \"category_id\": 3, \"bbox\": [1, 1, 2, 2]}],"
        "\"categories\": [{\"id\": 7, \"name\": \"seven\"}, {\"id\": 3, \"name\": \"three\"}]}";
    cr_assert_eq(coco_dataset_parse(json, strlen(json), "det.json", ds), 0, "%s", nd_last_error());
    return dir;
}

Test(coco_loader, det_resizes_pads_flips_and_maps_boxes) {
    coco_dataset ds;
    char *dir = det_fixture(&ds);
    coco_det_opts o;
    coco_det_opts_default(&o);
    o.batch_size = 2, o.shuffle = 0, o.threads = 0, o.epochs = 1, o.skip_empty = 1;
    o.min_side = 40, o.max_side = 60, o.size_divisor = 16;
    coco_loader *l;
    cr_assert_eq(coco_loader_det_new(&ds, dir, &o, &l), 0, "%s", nd_last_error());
    cr_expect_eq(coco_loader_batches_per_epoch(l), 2, "3 non-empty images in batches of 2");
    const coco_batch *b;
    cr_assert_eq(coco_loader_next(l, &b), 0, "%s", nd_last_error());
    /* a: 40x20 -> short side 40 would make it 80 wide > 60, so scale 1.5 -> 60x30.
     * b: 20x40 -> 1.5 too (long side 60) -> 30x60. Batch padded to 64x64. */
    cr_assert_eq(b->n, 2);
    cr_expect_eq(b->image_ids[0], 10);
    cr_expect_float_eq(b->scale[0], 1.5f, 1e-6);
    cr_expect_eq(b->valid_w[0], 60);
    cr_expect_eq(b->valid_h[0], 30);
    cr_expect_eq(b->valid_h[1], 60);
    cr_expect_eq(b->height, 64);
    cr_expect_eq(b->width, 64);
    cr_expect_eq(b->orig_w[1], 20);
    cr_assert_eq(b->num_boxes, 3);
    cr_expect_eq(b->box_first[1], 2);
    cr_expect_eq(b->box_first[2], 3);
    cr_expect_float_eq(b->boxes[0], 3.0f, 1e-5);
    cr_expect_float_eq(b->boxes[1], 6.0f, 1e-5);
    cr_expect_float_eq(b->boxes[2], 18.0f, 1e-5);
    cr_expect_float_eq(b->boxes[3], 15.0f, 1e-5);
    cr_expect_eq(b->box_class[0], 1, "category 7 is class 1 (ids sorted: 3, 7)");
    cr_expect_eq(b->box_class[1], 0);
    cr_expect_eq(b->box_category[1], 3);
    cr_expect_eq(b->box_crowd[1], 1);
    cr_expect_eq(b->box_ann_id[2], 3);
    /* Pixels: flat value 10 inside (default normalisation to [-1, 1]); padding is pixel 0. */
    cr_expect_float_eq(b->images[5 * 64 + 5], 10.0f / 127.5f - 1.0f, 1e-5);
    cr_expect_float_eq(b->images[40 * 64 + 5], -1.0f, 1e-6);
    cr_expect_float_eq(b->images[5 * 64 + 62], -1.0f, 1e-6);
    cr_assert_eq(coco_loader_next(l, &b), 0);
    cr_expect_eq(b->n, 1);
    cr_expect_eq(b->image_ids[0], 30);
    cr_expect_eq(coco_loader_next(l, &b), 0);
    cr_expect_null(b);
    coco_loader_free(l);

    /* Flip: boxes mirrored inside the valid width; fixed size pads to max_side. */
    o.flip = 1, o.fixed_size = 1, o.batch_size = 1, o.skip_empty = 0;
    int flips = 0;
    for (uint64_t seed = 0; seed < 6; seed++) {
        o.seed = seed;
        cr_assert_eq(coco_loader_det_new(&ds, dir, &o, &l), 0, "%s", nd_last_error());
        cr_expect_eq(coco_loader_batches_per_epoch(l), 4);
        while (coco_loader_next(l, &b) == 0 && b) {
            cr_expect_eq(b->height, 64);
            if (b->image_ids[0] != 10) continue;
            float x1 = b->flipped[0] ? 60 - 18.0f : 3.0f;
            cr_expect_float_eq(b->boxes[0], x1, 1e-5);
            cr_expect_float_eq(b->boxes[2], x1 + 15.0f, 1e-5);
            flips += b->flipped[0];
        }
        coco_loader_free(l);
    }
    cr_expect(flips > 0 && flips < 6, "%d flips of 6", flips);
    coco_dataset_free(&ds);
    tu_rmtree(dir);
    free(dir);
}

/* Multi-scale: each batch's short side is one of the listed sides (the long-side limit scaled
 * alike), shared by its images, boxes scaled with it; the draw is fixed by seed, epoch and
 * batch, and every side turns up. */
Test(coco_loader, det_multi_scale_draws_a_side_per_batch) {
    coco_dataset ds;
    char *dir = det_fixture(&ds);
    coco_det_opts o;
    coco_det_opts_default(&o);
    o.batch_size = 1, o.shuffle = 0, o.threads = 0, o.epochs = 8, o.seed = 3;
    o.min_side = 30, o.max_side = 60, o.size_divisor = 1;
    o.scale_sides[0] = 30, o.scale_sides[1] = 45, o.n_scale_sides = 2;
    int seen[2] = {0, 0}, draws[2][8], nd[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        coco_loader *l;
        cr_assert_eq(coco_loader_det_new(&ds, dir, &o, &l), 0, "%s", nd_last_error());
        const coco_batch *b;
        while (coco_loader_next(l, &b) == 0 && b) {
            float s = b->scale[0];
            if (b->image_ids[0] == 10) { /* 40x20: short side 30 -> 60x30, 45 -> capped by 90 -> 90x45 */
                int big = b->valid_w[0] == 90;
                cr_expect(big ? b->valid_h[0] == 45 && fabsf(s - 2.25f) < 1e-6f
                              : b->valid_w[0] == 60 && b->valid_h[0] == 30 && fabsf(s - 1.5f) < 1e-6f,
                          "%dx%d scale %g", b->valid_w[0], b->valid_h[0], (double)s);
                cr_expect_float_eq(b->boxes[0], 2.0f * s, 1e-5);
                cr_expect_float_eq(b->boxes[3], 10.0f * s, 1e-5);
            }
            if (b->image_ids[0] == 30) { /* 30x30: 30 or 45 */
                cr_expect(b->valid_w[0] == 30 || b->valid_w[0] == 45, "%d", b->valid_w[0]);
                seen[b->valid_w[0] == 45]++;
                if (nd[pass] < 8) draws[pass][nd[pass]++] = b->valid_w[0];
            }
        }
        coco_loader_free(l);
    }
    cr_expect(seen[0] > 0 && seen[1] > 0, "both sides drawn (%d, %d)", seen[0], seen[1]);
    cr_assert_eq(nd[0], 8);
    cr_assert_eq(nd[1], 8);
    cr_expect_eq(memcmp(draws[0], draws[1], sizeof draws[0]), 0, "the same seed draws the same sides");
    o.scale_sides[1] = 0;
    coco_loader *l;
    cr_expect_eq(coco_loader_det_new(&ds, dir, &o, &l), ND_ERR_INVALID);
    o.n_scale_sides = COCO_MAX_SCALE_SIDES + 1;
    cr_expect_eq(coco_loader_det_new(&ds, dir, &o, &l), ND_ERR_INVALID);
    coco_dataset_free(&ds);
    tu_rmtree(dir);
    free(dir);
}

static size_t run_det(const coco_dataset *ds, const char *dir, coco_det_opts o, float **out) {
    coco_loader *l;
    cr_assert_eq(coco_loader_det_new(ds, dir, &o, &l), 0, "%s", nd_last_error());
    size_t len = 0;
    *out = NULL;
    const coco_batch *b;
    while (coco_loader_next(l, &b) == 0 && b) {
        size_t k = (size_t)b->n * 3 * (size_t)b->height * (size_t)b->width;
        *out = realloc(*out, (len + k + 4 * (size_t)b->num_boxes) * sizeof(float));
        memcpy(*out + len, b->images, k * sizeof(float));
        memcpy(*out + len + k, b->boxes, 4 * (size_t)b->num_boxes * sizeof(float));
        len += k + 4 * (size_t)b->num_boxes;
    }
    coco_loader_free(l);
    return len;
}

Test(coco_loader, det_batches_identical_for_1_and_2_threads) {
    coco_dataset ds;
    char *dir = det_fixture(&ds);
    coco_det_opts o;
    coco_det_opts_default(&o);
    o.batch_size = 3, o.epochs = 3, o.flip = 1, o.min_side = 24, o.max_side = 48, o.seed = 5;
    float *a, *b;
    o.threads = 1;
    size_t na = run_det(&ds, dir, o, &a);
    o.threads = 2, o.prefetch = 2;
    size_t nb = run_det(&ds, dir, o, &b);
    cr_assert_eq(na, nb);
    cr_expect_eq(memcmp(a, b, na * sizeof(float)), 0);
    free(a), free(b);
    coco_dataset_free(&ds);
    tu_rmtree(dir);
    free(dir);
}

Test(coco_loader, det_corrupt_and_missing_images_are_named_and_skipped) {
    coco_dataset ds;
    char *dir = det_fixture(&ds);
    /* b.png becomes garbage, c.png disappears. */
    char *b_png = nd_path_join(dir, "b.png"), *c_png = nd_path_join(dir, "c.png");
    char *bytes;
    size_t len;
    cr_assert_eq(nd_file_read_all(b_png, &bytes, &len), 0);
    cr_assert_eq(nd_file_write_atomic(b_png, bytes, len / 3), 0); /* truncated PNG */
    free(bytes);
    cr_assert_eq(nd_file_write_atomic(b_png, "\xff\xd8\xff\xe0 not really a jpeg", 22), 0);
    remove(c_png);
    for (int threads = 0; threads <= 2; threads++) {
        coco_det_opts o;
        coco_det_opts_default(&o);
        o.batch_size = 1, o.shuffle = 0, o.threads = threads, o.epochs = 1, o.min_side = 16, o.max_side = 64;
        coco_loader *l;
        cr_assert_eq(coco_loader_det_new(&ds, dir, &o, &l), 0, "%s", nd_last_error());
        const coco_batch *bt;
        cr_expect_eq(coco_loader_next(l, &bt), 0);
        cr_expect_eq(bt->image_ids[0], 10);
        cr_expect_eq(coco_loader_next(l, &bt), ND_ERR_FORMAT);
        cr_expect_null(bt);
        cr_expect(strstr(nd_last_error(), "b.png") && strstr(nd_last_error(), "image id 20"), "%s", nd_last_error());
        int rc = coco_loader_next(l, &bt);
        cr_expect(rc == ND_ERR_IO || rc == ND_ERR_FORMAT || rc == ND_ERR_NOT_FOUND, "rc %d", rc);
        cr_expect(strstr(nd_last_error(), "c.png") && strstr(nd_last_error(), "image id 30"), "%s", nd_last_error());
        cr_expect_eq(coco_loader_next(l, &bt), 0, "the loader goes on after a bad image");
        cr_expect_eq(bt->image_ids[0], 40);
        coco_loader_free(l);
    }
    /* A file whose size disagrees with the JSON. */
    write_png(dir, "c.png", 31, 30, 0);
    coco_det_opts o;
    coco_det_opts_default(&o);
    o.batch_size = 4, o.shuffle = 0, o.threads = 0, o.epochs = 1;
    write_png(dir, "b.png", 20, 40, 0);
    coco_loader *l;
    cr_assert_eq(coco_loader_det_new(&ds, dir, &o, &l), 0);
    const coco_batch *bt;
    cr_expect_eq(coco_loader_next(l, &bt), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "c.png: image id 30 is 31x30 pixels but the annotations say 30x30"), "%s",
              nd_last_error());
    coco_loader_free(l);
    free(b_png), free(c_png);
    coco_dataset_free(&ds);
    tu_rmtree(dir);
    free(dir);
}

Test(coco_loader, rejects_bad_options) {
    coco_cifar c = fake_cifar(4);
    coco_cls_source src = coco_cls_source_cifar(&c);
    coco_cls_opts o;
    coco_cls_opts_default(&o);
    coco_loader *l;
    o.batch_size = 0;
    cr_expect_eq(coco_loader_cls_new(&src, &o, &l), ND_ERR_INVALID);
    coco_cls_opts_default(&o);
    o.std[2] = 0;
    cr_expect_eq(coco_loader_cls_new(&src, &o, &l), ND_ERR_INVALID);
    coco_cls_opts_default(&o);
    o.out_width = 16;
    cr_expect_eq(coco_loader_cls_new(&src, &o, &l), ND_ERR_INVALID);
    cr_expect(strstr(nd_last_error(), "resizing"), "%s", nd_last_error());
    coco_cls_opts_default(&o);
    o.batch_size = 5, o.drop_last = 1;
    cr_expect_eq(coco_loader_cls_new(&src, &o, &l), ND_ERR_INVALID);
    cr_expect_null(l);
    coco_cifar_free(&c);
}
